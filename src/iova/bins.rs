//! Size bins: holes grouped by size class with two bitmaps, so "some hole of at least N units" is
//! found in O(1) (TLSF, two levels).
//!
//! Owns: the bin heads and bitmaps; the list links live in the nodes (`blocks.rs`). Takes no
//! locks; it lives inside the heap's mutex.
//!
//! Classes: sizes 1..8 have a bin each; above that, each power of two is split into 8 bins
//! (3 mantissa bits), so a bin's sizes differ by less than 12.5 %. 62 first-level classes x 8 cover
//! every size below 2^64 in 496 bins.

use super::blocks::{Slab, NIL};

const SL_BITS: u32 = 3;
const SL: usize = 1 << SL_BITS;
const FL: usize = 62;
pub(crate) const NBINS: usize = FL * SL;

/// The bin that holds holes of exactly `units` units (`units >= 1`).
pub(crate) fn bin_of(units: u64) -> usize {
    if units < SL as u64 {
        return units as usize;
    }
    let log = 63 - units.leading_zeros();
    let fl = (log - SL_BITS + 1) as usize;
    let sl = ((units >> (log - SL_BITS)) as usize) & (SL - 1);
    fl * SL + sl
}

/// The smallest size a hole in `bin` can have.
pub(crate) fn bin_min(bin: usize) -> u64 {
    let (fl, sl) = (bin / SL, (bin % SL) as u64);
    if fl == 0 {
        sl
    } else {
        (SL as u64 + sl) << (fl - 1)
    }
}

/// The first bin whose every hole has at least `units` units; `NBINS` if there is none.
pub(crate) fn bin_at_least(units: u64) -> usize {
    let b = bin_of(units);
    if bin_min(b) == units {
        b
    } else {
        b + 1
    }
}

pub(crate) struct Bins {
    heads: [u32; NBINS],
    fl_map: u64,
    sl_map: [u8; FL],
}

impl Default for Bins {
    fn default() -> Self {
        Bins {
            heads: [NIL; NBINS],
            fl_map: 0,
            sl_map: [0; FL],
        }
    }
}

impl Bins {
    pub fn head(&self, bin: usize) -> u32 {
        self.heads[bin]
    }

    pub fn insert(&mut self, slab: &mut Slab, i: u32) {
        let bin = bin_of(slab[i].units);
        let head = self.heads[bin];
        slab[i].bin_prev = NIL;
        slab[i].bin_next = head;
        if head != NIL {
            slab[head].bin_prev = i;
        }
        self.heads[bin] = i;
        self.fl_map |= 1 << (bin / SL);
        self.sl_map[bin / SL] |= 1 << (bin % SL);
    }

    /// Removes `i`, which must be in the bin matching its current size.
    pub fn remove(&mut self, slab: &mut Slab, i: u32) {
        let bin = bin_of(slab[i].units);
        let (prev, next) = (slab[i].bin_prev, slab[i].bin_next);
        if prev != NIL {
            slab[prev].bin_next = next;
        } else {
            self.heads[bin] = next;
            if next == NIL {
                self.sl_map[bin / SL] &= !(1 << (bin % SL));
                if self.sl_map[bin / SL] == 0 {
                    self.fl_map &= !(1 << (bin / SL));
                }
            }
        }
        if next != NIL {
            slab[next].bin_prev = prev;
        }
    }

    /// The first non-empty bin at or above `bin`.
    pub fn first_from(&self, bin: usize) -> Option<usize> {
        if bin >= NBINS {
            return None;
        }
        let (fl, sl) = (bin / SL, bin % SL);
        let here = self.sl_map[fl] & (0xffu8 << sl);
        if here != 0 {
            return Some(fl * SL + here.trailing_zeros() as usize);
        }
        let above = self.fl_map & (!0u64).checked_shl(fl as u32 + 1).unwrap_or(0);
        if above == 0 {
            return None;
        }
        let fl = above.trailing_zeros() as usize;
        Some(fl * SL + self.sl_map[fl].trailing_zeros() as usize)
    }

    /// The highest non-empty bin.
    pub fn last(&self) -> Option<usize> {
        if self.fl_map == 0 {
            return None;
        }
        let fl = 63 - self.fl_map.leading_zeros() as usize;
        Some(fl * SL + 7 - self.sl_map[fl].leading_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_contiguous_and_cover_u64() {
        assert_eq!(bin_of(1), 1);
        assert_eq!(bin_of(7), 7);
        assert_eq!(bin_of(8), 8);
        assert_eq!(bin_of(15), 15);
        assert_eq!(bin_of(16), 16);
        assert_eq!(bin_of(17), 16);
        assert_eq!(bin_of(18), 17);
        assert_eq!(bin_of(u64::MAX), NBINS - 1);
        for b in 1..NBINS {
            assert_eq!(bin_of(bin_min(b)), b);
            if b + 1 < NBINS {
                assert_eq!(bin_of(bin_min(b + 1) - 1), b);
            }
        }
        for u in [9u64, 100, 1000, 1 << 40, (1 << 40) + 1] {
            let b = bin_at_least(u);
            assert!(bin_min(b) >= u && bin_min(b - 1) < u);
        }
    }
}
