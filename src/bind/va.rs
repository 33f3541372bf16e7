//! The winsys's mirror of a VM's address space: what every address points at after the binds the
//! winsys has sent, and the diff that turns a list of pending binds into the fewest disjoint ops.
//!
//! Owns: one interval map. No locks of its own: the caller (the bind queue) holds its lock.
//!
//! Segments are stored as the kernel would hold them only in meaning, not in shape: the kernel
//! never merges adjacent mappings, the mirror does not care, because only what each address points
//! at matters for planning.

use std::collections::BTreeMap;

use super::op::{BindOp, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seg {
    end: u64,
    target: Target,
    dump: bool,
}

/// Address -> target map of a VM, at byte granularity over half-open ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaMirror {
    segs: BTreeMap<u64, Seg>,
}

impl VaMirror {
    pub fn new() -> VaMirror {
        VaMirror::default()
    }

    /// Number of segments (a measure of the mirror's size).
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    /// Removes `[start, end)`, trimming segments that straddle its edges (their object offset
    /// moves with their start).
    fn carve(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // What of segment `seg` (starting at `s`) lies past `end` stays, starting at `end`.
        let keep_tail = |segs: &mut BTreeMap<u64, Seg>, s: u64, seg: Seg| {
            if seg.end > end {
                let target = seg.target.advanced(end - s);
                segs.insert(
                    end,
                    Seg {
                        end: seg.end,
                        target,
                        ..seg
                    },
                );
            }
        };
        // A segment starting before `start` may reach into the range.
        if let Some((&s, &seg)) = self.segs.range(..start).next_back() {
            if seg.end > start {
                self.segs.insert(s, Seg { end: start, ..seg });
                keep_tail(&mut self.segs, s, seg);
            }
        }
        let inside: Vec<u64> = self.segs.range(start..end).map(|(&s, _)| s).collect();
        for s in inside {
            let seg = self.segs.remove(&s).expect("key listed above");
            keep_tail(&mut self.segs, s, seg);
        }
    }

    /// Applies one op as drm_gpuvm would (overlapped mappings removed or trimmed, then the new one).
    pub fn apply(&mut self, op: &BindOp) {
        self.carve(op.iova, op.end());
        if let Some(target) = op.target {
            if op.range_B > 0 {
                self.segs.insert(
                    op.iova,
                    Seg {
                        end: op.end(),
                        target,
                        dump: op.dump,
                    },
                );
            }
        }
    }

    /// What `addr` points at, if anything, and whether it is dumped.
    pub fn at(&self, addr: u64) -> Option<(Target, bool)> {
        let (&s, seg) = self.segs.range(..=addr).next_back()?;
        (addr < seg.end).then(|| (seg.target.advanced(addr - s), seg.dump))
    }

    /// Whether every byte of `[start, start + len_B)` is mapped (to an object or to the null
    /// page): what the GPU may read without faulting. An empty range asks about `start` alone.
    pub fn covers(&self, start: u64, len_B: u64) -> bool {
        let Some(end) = start.checked_add(len_B.max(1)) else {
            return false;
        };
        let mut at = start;
        while at < end {
            match self.segs.range(..=at).next_back() {
                Some((_, seg)) if seg.end > at => at = seg.end,
                _ => return false,
            }
        }
        true
    }

    /// The part of the mirror inside the sorted, disjoint `ranges`.
    pub fn restrict(&self, ranges: &[(u64, u64)]) -> VaMirror {
        let mut out = VaMirror::new();
        for &(start, end) in ranges {
            let first = self
                .segs
                .range(..start)
                .next_back()
                .map(|(&s, _)| s)
                .unwrap_or(start);
            for (&s, seg) in self.segs.range(first..end) {
                let lo = s.max(start);
                let hi = seg.end.min(end);
                if lo < hi {
                    out.segs.insert(
                        lo,
                        Seg {
                            end: hi,
                            target: seg.target.advanced(lo - s),
                            dump: seg.dump,
                        },
                    );
                }
            }
        }
        out
    }

    /// Every boundary of the mirror's segments.
    fn boundaries(&self) -> impl Iterator<Item = u64> + '_ {
        self.segs.iter().flat_map(|(&s, seg)| [s, seg.end])
    }

    /// Mapped segments as ops (for tests and debug dumps), sorted by address.
    pub fn as_ops(&self) -> Vec<BindOp> {
        self.segs
            .iter()
            .map(|(&s, seg)| BindOp {
                iova: s,
                range_B: seg.end - s,
                target: Some(seg.target),
                dump: seg.dump,
            })
            .collect()
    }
}

/// The ops that turn `from` into `to`: sorted by address, disjoint, and merged wherever one op
/// continues the previous (same object, contiguous address and offset, same flags). Because they
/// are disjoint, the kernel may apply them in any order with the same result, so sorting them
/// (which is what makes its preallocation groups share tables) is safe.
pub fn diff(from: &VaMirror, to: &VaMirror) -> Vec<BindOp> {
    let mut cuts: Vec<u64> = from.boundaries().chain(to.boundaries()).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<BindOp> = Vec::new();
    for w in cuts.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        let (a, b) = (from.at(lo), to.at(lo));
        if a == b {
            continue;
        }
        let op = match b {
            Some((target, dump)) => BindOp {
                iova: lo,
                range_B: hi - lo,
                target: Some(target),
                dump,
            },
            None => BindOp::unmap(lo, hi - lo),
        };
        match out.last_mut() {
            Some(prev) if prev.continues_into(&op) => prev.range_B += op.range_B,
            _ => out.push(op),
        }
    }
    out
}

/// Sorted, disjoint, merged union of the ranges `ops` touch.
pub fn touched_ranges(ops: &[BindOp]) -> Vec<(u64, u64)> {
    let mut r: Vec<(u64, u64)> = ops
        .iter()
        .filter(|o| o.range_B > 0)
        .map(|o| (o.iova, o.end()))
        .collect();
    r.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(r.len());
    for (s, e) in r {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 0x1_0000_0000;
    const K: u64 = 4096;

    #[test]
    fn map_in_the_middle_keeps_prev_and_next_with_adjusted_offsets() {
        let mut m = VaMirror::new();
        m.apply(&BindOp::map(A, 16 * K, 7, 0));
        m.apply(&BindOp::map(A + 4 * K, 4 * K, 9, 0));
        assert_eq!(
            m.at(A + 3 * K),
            Some((
                Target::Bo {
                    handle: 7,
                    offset_B: 3 * K
                },
                false
            ))
        );
        assert_eq!(
            m.at(A + 5 * K),
            Some((
                Target::Bo {
                    handle: 9,
                    offset_B: K
                },
                false
            ))
        );
        assert_eq!(
            m.at(A + 8 * K),
            Some((
                Target::Bo {
                    handle: 7,
                    offset_B: 8 * K
                },
                false
            ))
        );
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn map_then_unmap_before_flush_cancels() {
        let m = VaMirror::new();
        let mut after = m.clone();
        after.apply(&BindOp::map(A, 8 * K, 1, 0));
        after.apply(&BindOp::unmap(A, 8 * K));
        assert!(diff(&m, &after).is_empty());
    }

    #[test]
    fn contiguous_maps_of_one_object_merge_and_come_out_sorted() {
        let m = VaMirror::new();
        let mut after = m.clone();
        after.apply(&BindOp::map(A + 4 * K, 4 * K, 1, 4 * K));
        after.apply(&BindOp::map(A, 4 * K, 1, 0));
        after.apply(&BindOp::map(A + 64 * K, 4 * K, 2, 0));
        assert_eq!(
            diff(&m, &after),
            vec![
                BindOp::map(A, 8 * K, 1, 0),
                BindOp::map(A + 64 * K, 4 * K, 2, 0)
            ]
        );
    }

    #[test]
    fn remapping_what_is_already_there_is_dropped() {
        let mut m = VaMirror::new();
        m.apply(&BindOp::map(A, 8 * K, 1, 0));
        let mut after = m.clone();
        after.apply(&BindOp::map(A, 8 * K, 1, 0));
        assert!(diff(&m, &after).is_empty());
    }

    #[test]
    fn restrict_clips_segments_to_the_ranges() {
        let mut m = VaMirror::new();
        m.apply(&BindOp::map(A, 16 * K, 1, 0));
        let r = m.restrict(&[(A + 4 * K, A + 6 * K)]);
        assert_eq!(r.as_ops(), vec![BindOp::map(A + 4 * K, 2 * K, 1, 4 * K)]);
    }
}
