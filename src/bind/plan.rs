//! Turning pending binds into VM_BIND jobs: cancel, drop, merge, sort, then split so each job's
//! preallocation (by the kernel's own rule) stays within a budget and never trips the kernel's
//! 1024-page throttle.
//!
//! Owns: pure functions; no locks.

use super::op::BindOp;
use super::prealloc::{group_pages, job_pages};
use super::va::{diff, touched_ranges, VaMirror};

/// The kernel's throttle: it stalls a VM while more than this many preallocated pages are in flight.
pub const KERNEL_THROTTLE_PAGES: u64 = 1024;

/// The fewest ops with the same effect as applying `pending` in order to `committed`: sorted by
/// address, disjoint, merged. A MAP whose range was unmapped again before the flush disappears,
/// and so does any op that leaves an address as it was.
pub fn plan(committed: &VaMirror, pending: &[BindOp]) -> Vec<BindOp> {
    let dirty = touched_ranges(pending);
    let before = committed.restrict(&dirty);
    let mut after = before.clone();
    for op in pending {
        after.apply(op);
    }
    diff(&before, &after)
}

/// Cuts one op into contiguous pieces that each cost at most `budget` pages on their own (`budget`
/// is at least 3, what one 4 KiB map costs): from each piece's start, the piece runs to the
/// furthest 2 MiB boundary (or the op's end) that keeps its cost within budget, found by bisection.
/// Contiguous pieces of one op map exactly what the op maps.
fn pieces(op: BindOp, budget: u64) -> Vec<BindOp> {
    const TABLE_B: u64 = 2 << 20;
    if op.is_unmap() || group_pages(op.iova, op.end()) <= budget {
        return vec![op];
    }
    let mut out = Vec::new();
    let mut at = op.iova;
    while at < op.end() {
        let base = at & !(TABLE_B - 1);
        let end_of = |k: u64| (base + k * TABLE_B).min(op.end());
        // k = 1 (to the next table boundary) always fits: it costs 3 pages.
        let (mut lo, mut hi) = (1u64, (op.end() - base).div_ceil(TABLE_B));
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if group_pages(at, end_of(mid)) <= budget {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let end = end_of(lo);
        out.push(BindOp {
            iova: at,
            range_B: end - at,
            target: op.target.map(|t| t.advanced(at - op.iova)),
            dump: op.dump,
        });
        at = end;
    }
    out
}

/// Splits sorted ops into jobs whose preallocation is at most `budget` pages each, keeping their
/// order (so the ops of one job stay sorted and share tables). A MAP that alone would exceed the
/// budget is cut into contiguous pieces first.
pub fn split(ops: &[BindOp], budget: u64) -> Vec<Vec<BindOp>> {
    let budget = budget.max(3);
    let mut jobs: Vec<Vec<BindOp>> = Vec::new();
    let mut job: Vec<BindOp> = Vec::new();
    // The kernel's grouping, tracked incrementally: pages of closed groups and the open group.
    let mut closed = 0u64;
    let mut open: Option<(u64, u64)> = None;
    for op in ops.iter().flat_map(|&op| pieces(op, budget)) {
        if op.is_unmap() {
            job.push(op);
            continue;
        }
        let joined = match open {
            Some((s, e)) if e & !((2 << 20) - 1) == op.iova & !((2 << 20) - 1) => {
                Some((closed, (s, op.end())))
            }
            Some((s, e)) => Some((closed + group_pages(s, e), (op.iova, op.end()))),
            None => Some((closed, (op.iova, op.end()))),
        };
        let (c, g) = joined.expect("always some");
        if c + group_pages(g.0, g.1) > budget && !job.is_empty() {
            jobs.push(std::mem::take(&mut job));
            closed = 0;
            open = Some((op.iova, op.end()));
        } else {
            closed = c;
            open = Some(g);
        }
        job.push(op);
    }
    if !job.is_empty() {
        jobs.push(job);
    }
    debug_assert!(jobs.iter().all(|j| job_pages(j) <= budget || j.len() == 1));
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 0x1_0000_0000;

    #[test]
    fn a_huge_map_is_cut_into_jobs_within_the_budget() {
        let jobs = split(&[BindOp::map(A, 8 << 30, 1, 0)], 1024);
        assert!(jobs.len() >= 4, "{}", jobs.len());
        assert!(
            jobs.iter().all(|j| job_pages(j) <= 1024),
            "{:?}",
            jobs.iter().map(|j| job_pages(j)).collect::<Vec<_>>()
        );
        let total: u64 = jobs.iter().flatten().map(|o| o.range_B).sum();
        assert_eq!(total, 8 << 30);
    }

    #[test]
    fn many_small_scattered_maps_are_split_at_the_budget() {
        let ops: Vec<BindOp> = (0..1000)
            .map(|i| BindOp::map(A + i * (4 << 20), 4096, 1, 0))
            .collect();
        let jobs = split(&ops, 1024);
        assert!(jobs.iter().all(|j| job_pages(j) <= 1024));
        assert_eq!(jobs.iter().map(Vec::len).sum::<usize>(), 1000);
    }

    #[test]
    fn unmaps_never_force_a_split() {
        let ops: Vec<BindOp> = (0..5000)
            .map(|i| BindOp::unmap(A + i * (4 << 20), 4096))
            .collect();
        assert_eq!(split(&ops, 1024).len(), 1);
    }
}
