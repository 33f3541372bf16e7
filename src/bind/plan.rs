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

/// The largest range one MAP may cover and still cost at most `budget` pages on its own, in whole
/// 2 MiB tables (an unaligned start can touch one table more, and the upper levels cost up to 2 more
/// per GiB crossing group, hence the margin).
fn max_chunk_B(budget: u64) -> u64 {
    const TABLE_B: u64 = 2 << 20;
    // Per 2 MiB of range: 1 last-level table, plus 1/512 of a 1 GiB-level one; margin for edges.
    let tables = budget.saturating_sub(4).max(1);
    tables * 512 / 513 * TABLE_B
}

/// Splits one op into pieces of at most `chunk_B`, cut at multiples of `chunk_B` from the op's
/// start (the pieces are contiguous, so the kernel maps exactly the same thing).
fn chunks(op: BindOp, chunk_B: u64) -> impl Iterator<Item = BindOp> {
    let n = op.range_B.div_ceil(chunk_B).max(1);
    (0..n).map(move |i| {
        let start = i * chunk_B;
        let len = chunk_B.min(op.range_B - start);
        BindOp {
            iova: op.iova + start,
            range_B: len,
            target: op.target.map(|t| t.advanced(start)),
            dump: op.dump,
        }
    })
}

/// Splits sorted ops into jobs whose preallocation is at most `budget` pages each, keeping their
/// order (so the ops of one job stay sorted and share tables). A MAP that alone would exceed the
/// budget is cut into contiguous pieces first.
pub fn split(ops: &[BindOp], budget: u64) -> Vec<Vec<BindOp>> {
    let budget = budget.max(3);
    let chunk_B = max_chunk_B(budget);
    let mut jobs: Vec<Vec<BindOp>> = Vec::new();
    let mut job: Vec<BindOp> = Vec::new();
    // The kernel's grouping, tracked incrementally: pages of closed groups and the open group.
    let mut closed = 0u64;
    let mut open: Option<(u64, u64)> = None;
    let pieces = ops.iter().flat_map(|&op| {
        let big = !op.is_unmap() && group_pages(op.iova, op.end()) > budget;
        chunks(op, if big { chunk_B } else { u64::MAX })
    });
    for op in pieces {
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
