//! The kernel's page-table preallocation rule for one VM_BIND job (spec/kernel.md "Page tables,
//! preallocation and the throttle"), computed on the winsys side to size jobs before sending them.
//!
//! Owns: pure arithmetic; no locks.
//!
//! Walking the ops in array order and skipping UNMAPs, an op joins the current group when the
//! 2 MiB-aligned-down end of the previous op equals the 2 MiB-aligned-down start of this one. Each
//! group `[first.iova, last.end)` costs, for each span S of 512 GiB, 1 GiB and 2 MiB,
//! `(end rounded up to S - start rounded down to S) / S` pages. Arithmetic wraps as u64, as the
//! kernel's does.

use super::op::BindOp;

const SPANS_B: [u64; 3] = [512 << 30, 1 << 30, 2 << 20];
const GROUP_ALIGN_B: u64 = 2 << 20;

/// Pages the kernel preallocates for the group `[start, end)`.
pub fn group_pages(start: u64, end: u64) -> u64 {
    SPANS_B
        .iter()
        .map(|&s| {
            let hi = end.wrapping_add(s - 1) & !(s - 1);
            let lo = start & !(s - 1);
            hi.wrapping_sub(lo) / s
        })
        .sum()
}

/// Pages the kernel preallocates for a job of `ops`, in this order.
pub fn job_pages(ops: &[BindOp]) -> u64 {
    let mut total = 0;
    let mut group: Option<(u64, u64)> = None;
    for op in ops.iter().filter(|o| !o.is_unmap()) {
        let end = op.iova.wrapping_add(op.range_B);
        group = match group {
            Some((start, prev_end))
                if prev_end & !(GROUP_ALIGN_B - 1) == op.iova & !(GROUP_ALIGN_B - 1) =>
            {
                Some((start, end))
            }
            Some((start, prev_end)) => {
                total += group_pages(start, prev_end);
                Some((op.iova, end))
            }
            None => Some((op.iova, end)),
        };
    }
    if let Some((start, end)) = group {
        total += group_pages(start, end);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const VA: u64 = 0x1_0000_0000;

    #[test]
    fn one_4kib_map_costs_3_pages() {
        assert_eq!(job_pages(&[BindOp::map(VA, 4096, 1, 0)]), 3);
    }

    #[test]
    fn unsorted_small_maps_cost_3_each_and_sorted_ones_share() {
        let far = |i: u64| BindOp::map(VA + i * (64 << 20), 4096, 1, 0);
        assert_eq!(job_pages(&[far(3), far(1), far(2)]), 9);
        let near: Vec<BindOp> = (0..8)
            .map(|i| BindOp::map(VA + i * 4096, 4096, 1, 0))
            .collect();
        assert_eq!(job_pages(&near), 3);
    }

    #[test]
    fn unmaps_cost_nothing() {
        assert_eq!(job_pages(&[BindOp::unmap(VA, 1 << 30)]), 0);
    }

    #[test]
    fn a_4gib_map_costs_its_2mib_tables_plus_upper_levels() {
        // 2048 last-level tables, 4 (or 5) 1 GiB-level, 1 top-level.
        assert_eq!(job_pages(&[BindOp::map(VA, 4 << 30, 1, 0)]), 2048 + 4 + 1);
    }
}
