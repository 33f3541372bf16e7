//! Benchmark baseline: an address allocator that behaves like Mesa's `util_vma_heap`
//! (src/util/vma.c), written here from its documented behaviour.
//!
//! Owns: one doubly linked list of holes kept in address order, highest first, each node a
//! separate slot (as util_vma_heap mallocs one per hole). Takes no locks (the benchmark is single
//! threaded; Mesa wraps it in the driver's mutex).
//!
//! Behaviour reproduced: bottom-up allocation is first fit from the lowest hole upward, top-down
//! from the highest hole downward; a free walks from the highest hole down to find its neighbours
//! and merges with them; a fixed-address request walks from the top to the hole below it. All of
//! them are O(number of holes). No-cross is not modelled (the benchmark does not use it).

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Hole {
    offset: u64,
    size: u64,
    /// Neighbour with the next higher address.
    higher: u32,
    /// Neighbour with the next lower address.
    lower: u32,
}

/// The util_vma_heap-like list allocator.
pub struct ListHeap {
    slots: Vec<Hole>,
    spare: Vec<u32>,
    highest: u32,
    lowest: u32,
}

impl ListHeap {
    /// A heap over `[start, start + size)`.
    pub fn new(start: u64, size: u64) -> ListHeap {
        let mut h = ListHeap {
            slots: Vec::new(),
            spare: Vec::new(),
            highest: NIL,
            lowest: NIL,
        };
        h.free(start, size);
        h
    }

    fn new_slot(&mut self, offset: u64, size: u64) -> u32 {
        let hole = Hole {
            offset,
            size,
            higher: NIL,
            lower: NIL,
        };
        match self.spare.pop() {
            Some(i) => {
                self.slots[i as usize] = hole;
                i
            }
            None => {
                self.slots.push(hole);
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn unlink(&mut self, i: u32) {
        let Hole { higher, lower, .. } = self.slots[i as usize];
        match higher {
            NIL => self.highest = lower,
            h => self.slots[h as usize].lower = lower,
        }
        match lower {
            NIL => self.lowest = higher,
            l => self.slots[l as usize].higher = higher,
        }
        self.spare.push(i);
    }

    /// Inserts slot `i` right below `higher` (or at the top when `higher` is NIL).
    fn link_below(&mut self, i: u32, higher: u32) {
        let lower = if higher == NIL {
            self.highest
        } else {
            self.slots[higher as usize].lower
        };
        self.slots[i as usize].higher = higher;
        self.slots[i as usize].lower = lower;
        match higher {
            NIL => self.highest = i,
            h => self.slots[h as usize].lower = i,
        }
        match lower {
            NIL => self.lowest = i,
            l => self.slots[l as usize].higher = i,
        }
    }

    /// Carves `[offset, offset + size)` out of hole `i`, which holds it.
    fn carve(&mut self, i: u32, offset: u64, size: u64) {
        let Hole {
            offset: ho,
            size: hs,
            higher,
            ..
        } = self.slots[i as usize];
        let below = offset - ho;
        let above = hs - below - size;
        match (below, above) {
            (0, 0) => self.unlink(i),
            (_, 0) => self.slots[i as usize].size = below,
            (0, _) => {
                self.slots[i as usize].offset += size;
                self.slots[i as usize].size = above;
            }
            _ => {
                // A middle allocation splits the hole: the upper part is a new hole above it.
                self.slots[i as usize].size = below;
                let up = self.new_slot(offset + size, above);
                self.link_below(up, higher);
            }
        }
    }

    /// First fit: from the lowest hole up (bottom-up) or the highest down (top-down).
    pub fn alloc(&mut self, size: u64, align: u64, top_down: bool) -> Option<u64> {
        let mut i = if top_down { self.highest } else { self.lowest };
        while i != NIL {
            let h = self.slots[i as usize];
            if h.size >= size {
                let offset = if top_down {
                    (h.offset + (h.size - size)) / align * align
                } else {
                    h.offset.div_ceil(align) * align
                };
                if offset >= h.offset && offset - h.offset <= h.size - size {
                    self.carve(i, offset, size);
                    return Some(offset);
                }
            }
            i = if top_down { h.lower } else { h.higher };
        }
        None
    }

    /// Exactly `[offset, offset + size)`, if one hole holds it.
    pub fn alloc_addr(&mut self, offset: u64, size: u64) -> bool {
        let mut i = self.highest;
        while i != NIL {
            let h = self.slots[i as usize];
            if h.offset <= offset {
                if h.size < offset - h.offset + size {
                    return false;
                }
                self.carve(i, offset, size);
                return true;
            }
            i = h.lower;
        }
        false
    }

    /// Returns `[offset, offset + size)` to the heap, merging with adjacent holes.
    pub fn free(&mut self, offset: u64, size: u64) {
        // Walk from the top to the first hole at or below `offset`.
        let (mut high, mut low) = (NIL, self.highest);
        while low != NIL && self.slots[low as usize].offset > offset {
            high = low;
            low = self.slots[low as usize].lower;
        }
        let end = offset + size;
        let high_adj = high != NIL && self.slots[high as usize].offset == end;
        let low_adj = low != NIL && {
            let l = self.slots[low as usize];
            l.offset + l.size == offset
        };
        match (low_adj, high_adj) {
            (true, true) => {
                let extra = size + self.slots[high as usize].size;
                self.slots[low as usize].size += extra;
                self.unlink(high);
            }
            (true, false) => self.slots[low as usize].size += size,
            (false, true) => {
                self.slots[high as usize].offset = offset;
                self.slots[high as usize].size += size;
            }
            (false, false) => {
                let i = self.new_slot(offset, size);
                self.link_below(i, high);
            }
        }
    }

    /// Holes as (offset, size), highest first. O(n).
    pub fn holes(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut i = self.highest;
        while i != NIL {
            let h = self.slots[i as usize];
            out.push((h.offset, h.size));
            i = h.lower;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_first_fit_with_merging() {
        let mut h = ListHeap::new(0x1000, 0x10000);
        assert_eq!(h.alloc(0x1000, 0x1000, false), Some(0x1000));
        assert_eq!(h.alloc(0x1000, 0x4000, false), Some(0x4000));
        assert_eq!(
            h.alloc(0x1000, 0x1000, false),
            Some(0x2000),
            "first fit from the bottom"
        );
        assert_eq!(h.alloc(0x1000, 0x1000, true), Some(0x10000));
        assert!(h.alloc_addr(0x8000, 0x1000));
        assert!(!h.alloc_addr(0x8000, 0x1000));
        for (o, s) in [
            (0x1000, 0x1000),
            (0x4000, 0x1000),
            (0x2000, 0x1000),
            (0x10000, 0x1000),
            (0x8000, 0x1000),
        ] {
            h.free(o, s);
        }
        assert_eq!(h.holes(), vec![(0x1000, 0x10000)]);
    }
}
