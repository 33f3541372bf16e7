//! Property tests of VM_BIND planning against a page-granular oracle: whatever the pending ops,
//! the planned ops leave every page pointing where applying the pending ops in order would, are
//! sorted, disjoint and fully merged, and split jobs stay within their preallocation budget.

use std::collections::BTreeMap;

use msm_winsys::bind::{plan, prealloc::job_pages, split, BindOp, Target, VaMirror};
use proptest::prelude::*;

const BASE: u64 = 0x1_0000_0000;
const PAGE: u64 = 4096;
/// 2048 pages: 8 MiB, so ops cross 2 MiB table boundaries.
const PAGES: u64 = 2048;

/// The oracle: what each page points at, as (handle or 0 for the zero page, page offset in object).
fn oracle(ops: &[BindOp]) -> BTreeMap<u64, (u32, u64, bool)> {
    let mut m = BTreeMap::new();
    for op in ops {
        for p in 0..op.range_B / PAGE {
            let addr = op.iova + p * PAGE;
            match op.target {
                None => {
                    m.remove(&addr);
                }
                Some(Target::Null) => {
                    m.insert(addr, (0, 0, op.dump));
                }
                Some(Target::Bo { handle, offset_B }) => {
                    m.insert(addr, (handle, offset_B + p * PAGE, op.dump));
                }
            }
        }
    }
    m
}

fn op_strategy() -> impl Strategy<Value = BindOp> {
    (
        0..PAGES,
        1u64..256,
        0u8..4,
        1u32..4,
        0u64..64,
        any::<bool>(),
    )
        .prop_map(|(start, len, kind, handle, off, dump)| {
            let len = len.min(PAGES - start).max(1);
            let (iova, range_B) = (BASE + start * PAGE, len * PAGE);
            let mut op = match kind {
                0 => BindOp::unmap(iova, range_B),
                1 => BindOp::map_null(iova, range_B),
                _ => BindOp::map(iova, range_B, handle, off * PAGE),
            };
            op.dump = dump && !op.is_unmap();
            op
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn planned_ops_have_the_same_effect_sorted_disjoint_merged(
        committed in prop::collection::vec(op_strategy(), 0..12),
        pending in prop::collection::vec(op_strategy(), 0..24),
    ) {
        let mut mirror = VaMirror::new();
        for op in &committed {
            mirror.apply(op);
        }
        let planned = plan(&mirror, &pending);
        let want = oracle(&[committed.clone(), pending.clone()].concat());
        let got = oracle(&[committed.clone(), planned.clone()].concat());
        prop_assert_eq!(got, want);
        for w in planned.windows(2) {
            prop_assert!(w[0].end() <= w[1].iova, "sorted and disjoint: {:?}", w);
            prop_assert!(!w[0].continues_into(&w[1]), "merged: {:?}", w);
        }
        prop_assert!(planned.iter().all(|o| o.range_B > 0));
        // Applying the plan to the mirror gives the same mirror as applying the pending ops.
        let mut a = mirror.clone();
        let mut b = mirror.clone();
        planned.iter().for_each(|o| a.apply(o));
        pending.iter().for_each(|o| b.apply(o));
        prop_assert_eq!(oracle(&a.as_ops()), oracle(&b.as_ops()));
    }

    #[test]
    fn split_jobs_stay_within_budget_and_keep_the_effect(
        pending in prop::collection::vec(op_strategy(), 0..40),
        budget in 3u64..40,
    ) {
        let planned = plan(&VaMirror::new(), &pending);
        let jobs = split(&planned, budget);
        for j in &jobs {
            prop_assert!(job_pages(j) <= budget, "job of {} pages over budget {}", job_pages(j), budget);
        }
        let flat: Vec<BindOp> = jobs.concat();
        prop_assert_eq!(oracle(&flat), oracle(&pending));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The winsys sizes its jobs with its own copy of the kernel's preallocation rule; it must
    /// agree with the model's, op list for op list, in any order.
    #[test]
    fn winsys_prealloc_count_agrees_with_the_model(ops in prop::collection::vec(op_strategy(), 0..40)) {
        use msm_winsys::uapi::{MSM_VM_BIND_OP_MAP, MSM_VM_BIND_OP_MAP_NULL, MSM_VM_BIND_OP_UNMAP};
        let shape: Vec<(u32, u64, u64)> = ops
            .iter()
            .map(|o| {
                let op = match o.target {
                    None => MSM_VM_BIND_OP_UNMAP,
                    Some(Target::Null) => MSM_VM_BIND_OP_MAP_NULL,
                    Some(Target::Bo { .. }) => MSM_VM_BIND_OP_MAP,
                };
                (op, o.iova, o.range_B)
            })
            .collect();
        prop_assert_eq!(job_pages(&ops), msm_winsys::sim::vm_bind::prealloc_count(&shape) as u64);
    }
}
