//! Placement of one request inside one hole: alignment, direction and the no-cross rule.
//!
//! Owns: nothing; pure functions on granule units. Takes no locks.
//!
//! Everything here is in granule units (pages by default), so a hole's exclusive end fits in a
//! `u64` even for a heap that reaches 2^64 bytes.

/// One allocation request in granule units, already validated by the heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// Size in units, at least 1.
    pub units: u64,
    /// Alignment in units, a power of two.
    pub align: u64,
    /// Never cross a multiple of `1 << shift` units; `units <= 1 << shift` is checked by the caller.
    pub no_cross_shift: Option<u32>,
    pub top_down: bool,
}

fn crosses(start: u64, units: u64, shift: u32) -> bool {
    (start >> shift) != ((start + units - 1) >> shift)
}

/// The start of the request inside hole `[start, end)`, or `None` if it does not fit.
///
/// Bottom-up gives the lowest valid start in the hole, top-down the highest; both are exact (no
/// valid placement is missed). No-cross: bottom-up moves a crossing candidate up to the boundary it
/// crosses; top-down moves its end down to that boundary.
pub(crate) fn place(start: u64, end: u64, req: &Request) -> Option<u64> {
    if end - start < req.units {
        return None;
    }
    if !req.top_down {
        let mut c = start.checked_add(req.align - 1)? & !(req.align - 1);
        if let Some(k) = req.no_cross_shift {
            if crosses(c, req.units, k) {
                // The next boundary is a multiple of `align` when align <= 2^k; when align > 2^k an
                // aligned start is itself on a boundary and cannot cross.
                c = ((c >> k) + 1) << k;
            }
        }
        (c <= end - req.units).then_some(c)
    } else {
        let mut c = (end - req.units) & !(req.align - 1);
        if let Some(k) = req.no_cross_shift {
            if crosses(c, req.units, k) {
                // Every start between here and the boundary B also crosses B, so the highest valid
                // start ends at B: align_down(B - units). It fits below B because units <= 2^k.
                let boundary = ((c + req.units - 1) >> k) << k;
                c = (boundary - req.units) & !(req.align - 1);
            }
        }
        (c >= start).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 256; // 1 MiB in 4 KiB units

    fn req(units: u64, align: u64, shift: Option<u32>, top_down: bool) -> Request {
        Request {
            units,
            align,
            no_cross_shift: shift,
            top_down,
        }
    }

    #[test]
    fn top_down_no_cross_moves_end_to_boundary() {
        let r = req(3 * MIB, 1, Some(10), true); // 4 MiB = 1024 units = 2^10
        assert_eq!(place(MIB, 9 * MIB, &r), Some(5 * MIB));
        assert_eq!(place(4 * MIB, 9 * MIB, &r), Some(5 * MIB));
        assert_eq!(place(6 * MIB, 9 * MIB, &r), None);
    }

    #[test]
    fn bottom_up_no_cross_moves_start_to_boundary() {
        let r = req(3 * MIB, 1, Some(10), false);
        assert_eq!(place(MIB, 9 * MIB, &r), Some(MIB));
        assert_eq!(place(2 * MIB, 9 * MIB, &r), Some(4 * MIB));
        assert_eq!(place(6 * MIB, 9 * MIB, &r), None);
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "3 million comparisons of plain arithmetic: not done after 4 minutes under Miri"
    )]
    fn exhaustive_small_holes_match_brute_force() {
        for shift in [None, Some(2), Some(3)] {
            for align in [1u64, 2, 4, 8] {
                for units in 1..=8u64 {
                    if shift.is_some_and(|k| units > 1 << k) {
                        continue;
                    }
                    for s in 0..24u64 {
                        for e in s..32u64 {
                            for top_down in [false, true] {
                                let r = req(units, align, shift, top_down);
                                let ok = |c: u64| {
                                    c % align == 0
                                        && c >= s
                                        && c + units <= e
                                        && !shift.is_some_and(|k| crosses(c, units, k))
                                };
                                let all: Vec<u64> = (s..e).filter(|&c| ok(c)).collect();
                                let want = if top_down {
                                    all.last().copied()
                                } else {
                                    all.first().copied()
                                };
                                assert_eq!(place(s, e, &r), want, "{r:?} in [{s},{e})");
                            }
                        }
                    }
                }
            }
        }
    }
}
