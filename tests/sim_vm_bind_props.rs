//! Property tests of the model's VM_BIND against independent oracles, through the raw ioctls:
//! random MAP / MAP_NULL / UNMAP sequences against a page-granular oracle (what each page maps,
//! in the VA tree and, once the jobs ran, in the page tables) and against an interval oracle of
//! drm_gpuvm's split rules (the exact VMA boundaries); and the preallocation count against an
//! independent implementation of the spec's grouping rule and formula.

mod common;

use common::{file_with, raw};
use msm_winsys::kernel::{ioctl, Kernel};
use msm_winsys::sim::vm::Pte;
use msm_winsys::sim::{Clock, SimFile, SimOptions};
use msm_winsys::uapi::*;
use proptest::prelude::*;

const VA: u64 = 0x1_0000_0000;
const PAGE: u64 = 4096;
/// The window the sequences play in: 48 pages straddling a 2 MiB boundary.
const BASE: u64 = VA + (2 << 20) - 24 * PAGE;
const PAGES: u64 = 48;
/// Each BO is this many pages.
const BO_PAGES: u64 = 16;

#[derive(Debug, Clone)]
enum Op {
    Map {
        bo: usize,
        offset: u64,
        page: u64,
        pages: u64,
    },
    MapNull {
        page: u64,
        pages: u64,
    },
    Unmap {
        page: u64,
        pages: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let span = (0..PAGES).prop_flat_map(|p| (Just(p), 0..=(PAGES - p).min(BO_PAGES)));
    prop_oneof![
        (0..2usize, span.clone(), 0..BO_PAGES).prop_map(|(bo, (page, pages), off)| Op::Map {
            bo,
            offset: off.min(BO_PAGES - pages),
            page,
            pages,
        }),
        span.clone()
            .prop_map(|(page, pages)| Op::MapNull { page, pages }),
        span.prop_map(|(page, pages)| Op::Unmap { page, pages }),
    ]
}

/// What a page maps: (bo index or None for the zero page, page offset in the BO).
type Target = (Option<usize>, u64);

/// One VMA as the interval oracle sees it: start page, pages, target of its first page.
type Interval = (u64, u64, Target);

fn advance(t: Target, pages: u64) -> Target {
    match t {
        (Some(b), o) => (Some(b), o + pages),
        (None, _) => (None, 0),
    }
}

/// drm_gpuvm's split rule, written from the spec: every interval the walk over `[a, a + n)` visits
/// (for n == 0, those strictly straddling `a`) loses the covered part; its prev/next remnants keep
/// their BO offset. Nothing is merged.
fn oracle_split(tree: &mut Vec<Interval>, a: u64, n: u64) {
    let mut out = Vec::new();
    for &(s, len, t) in tree.iter() {
        let e = s + len;
        let visited = if n == 0 {
            s < a && a < e
        } else {
            s < a + n && e > a
        };
        if !visited {
            out.push((s, len, t));
            continue;
        }
        if s < a {
            out.push((s, a - s, t));
        }
        if e > a + n {
            out.push((a + n, e - (a + n), advance(t, a + n - s)));
        }
    }
    out.sort();
    *tree = out;
}

/// A case's file. A failing `prop_assert` returns from the case early, with the file still holding
/// its objects: the guard then closes the file without the leak check, so the report shows the
/// assertion, not the leaks it cut short. A case that ran to its end calls `done`, which drops the
/// file under the check.
struct CaseFile(Option<SimFile>);

impl CaseFile {
    fn done(mut self) {
        drop(self.0.take());
    }
}

impl std::ops::Deref for CaseFile {
    type Target = SimFile;
    fn deref(&self) -> &SimFile {
        self.0.as_ref().expect("a case's file until done")
    }
}

impl Drop for CaseFile {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f.close();
        }
    }
}

fn vb_file() -> CaseFile {
    let f = file_with(
        "a750",
        SimOptions {
            clock: Clock::Manual,
            ..Default::default()
        },
    );
    ioctl::set_param(&f, MSM_PARAM_EN_VM_BIND, 1).unwrap();
    CaseFile(Some(f))
}

fn gem_new(k: &dyn Kernel) -> u32 {
    let mut a = drm_msm_gem_new {
        size: BO_PAGES * PAGE,
        flags: MSM_BO_WC,
        handle: 0,
    };
    raw(k, DRM_IOCTL_MSM_GEM_NEW, &mut a).unwrap();
    a.handle
}

fn bind_queue(k: &dyn Kernel) -> u32 {
    let mut a = drm_msm_submitqueue {
        flags: MSM_SUBMITQUEUE_VM_BIND,
        prio: 0,
        id: 0,
    };
    raw(k, DRM_IOCTL_MSM_SUBMITQUEUE_NEW, &mut a).unwrap();
    a.id
}

fn vm_bind(k: &dyn Kernel, q: u32, ops: &[drm_msm_vm_bind_op]) {
    let mut a = drm_msm_vm_bind {
        queue_id: q,
        nr_ops: ops.len() as u32,
        fence_fd: -1,
        ..Default::default()
    };
    if ops.len() == 1 {
        a.u.op = ops[0];
    } else {
        a.u.ops = ops.as_ptr() as u64;
    }
    raw(k, DRM_IOCTL_MSM_VM_BIND, &mut a).unwrap();
}

/// A well-behaved client's teardown: one UNMAP of the whole VA range on bind queue `q` and its
/// job, then the queue and the BOs are closed. Queued jobs run first: a job over the throttle
/// limit would keep the UNMAP waiting forever on the manual clock.
fn unmap_all_and_close(f: &SimFile, q: u32, handles: &[u32]) {
    f.sim().gpu_run_until_idle();
    let all = drm_msm_vm_bind_op {
        op: MSM_VM_BIND_OP_UNMAP,
        iova: VA,
        range: f.sim().profile().va_size_B(),
        ..Default::default()
    };
    vm_bind(f, q, &[all]);
    f.sim().gpu_run_until_idle();
    ioctl::submitqueue_close(f, q).unwrap();
    for &h in handles {
        ioctl::gem_close(f, h).unwrap();
    }
}

fn uapi_op(o: &Op, handles: &[u32]) -> drm_msm_vm_bind_op {
    let (op, handle, obj_offset, page, pages) = match *o {
        Op::Map {
            bo,
            offset,
            page,
            pages,
        } => (MSM_VM_BIND_OP_MAP, handles[bo], offset, page, pages),
        Op::MapNull { page, pages } => (MSM_VM_BIND_OP_MAP_NULL, 0, 0, page, pages),
        Op::Unmap { page, pages } => (MSM_VM_BIND_OP_UNMAP, 0, 0, page, pages),
    };
    drm_msm_vm_bind_op {
        op,
        handle,
        obj_offset: obj_offset * PAGE,
        iova: BASE + page * PAGE,
        range: pages * PAGE,
        flags: 0,
        pad: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn va_tree_and_page_tables_follow_the_oracles(
        batches in prop::collection::vec(prop::collection::vec(op(), 1..4), 1..12)
    ) {
        let case = vb_file();
        let f: &SimFile = &case;
        let q = bind_queue(f);
        let handles = [gem_new(f), gem_new(f)];
        let obj_ids: Vec<u64> = {
            // Learn the model ids of the two BOs by mapping and unmapping them once.
            let probe = [
                uapi_op(&Op::Map { bo: 0, offset: 0, page: 0, pages: 1 }, &handles),
                uapi_op(&Op::Map { bo: 1, offset: 0, page: 1, pages: 1 }, &handles),
            ];
            vm_bind(f, q, &probe);
            let ids = f.vmas().iter().map(|v| v.obj_id).collect();
            vm_bind(f, q, &[uapi_op(&Op::Unmap { page: 0, pages: 2 }, &handles)]);
            ids
        };
        let mut pages: Vec<Option<Target>> = vec![None; PAGES as usize];
        let mut tree: Vec<Interval> = Vec::new();
        for batch in &batches {
            let uops: Vec<_> = batch.iter().map(|o| uapi_op(o, &handles)).collect();
            vm_bind(f, q, &uops);
            for o in batch {
                match *o {
                    Op::Map { bo, offset, page, pages: n } => {
                        oracle_split(&mut tree, page, n);
                        for i in 0..n {
                            pages[(page + i) as usize] = Some((Some(bo), offset + i));
                        }
                        if n > 0 {
                            tree.push((page, n, (Some(bo), offset)));
                        }
                    }
                    Op::MapNull { page, pages: n } => {
                        oracle_split(&mut tree, page, n);
                        for i in 0..n {
                            pages[(page + i) as usize] = Some((None, 0));
                        }
                        if n > 0 {
                            tree.push((page, n, (None, 0)));
                        }
                    }
                    Op::Unmap { page, pages: n } => {
                        oracle_split(&mut tree, page, n);
                        for i in 0..n {
                            pages[(page + i) as usize] = None;
                        }
                    }
                }
                tree.sort();
            }
            // Exact boundaries.
            let got: Vec<Interval> = f
                .vmas()
                .iter()
                .map(|v| {
                    let t = if v.null {
                        (None, 0)
                    } else {
                        (obj_ids.iter().position(|&id| id == v.obj_id), v.obj_offset_B / PAGE)
                    };
                    ((v.iova - BASE) / PAGE, v.range_B / PAGE, t)
                })
                .collect();
            prop_assert_eq!(&got, &tree);
            // Page by page, the VA tree says what the oracle says.
            let mut from_tree: Vec<Option<Target>> = vec![None; PAGES as usize];
            for &(s, n, t) in &got {
                for i in 0..n {
                    from_tree[(s + i) as usize] = Some(advance(t, i));
                }
            }
            prop_assert_eq!(&from_tree, &pages);
        }
        // Once the jobs ran, the page tables say it too.
        f.sim().gpu_run_until_idle();
        for (i, want) in pages.iter().enumerate() {
            let got = f.pte(BASE + i as u64 * PAGE).map(|p| match p {
                Pte::Zero => (None, 0),
                Pte::Bo { obj_id, offset_B } => {
                    (obj_ids.iter().position(|&id| id == obj_id), offset_B / PAGE)
                }
            });
            prop_assert_eq!(got, *want, "page {}", i);
        }
        prop_assert!(!f.vm_unusable());
        unmap_all_and_close(f, q, &handles);
        case.done();
    }
}

// ---- the preallocation count ----------------------------------------------------------------

/// The spec's rule, written independently: groups by index, then a block count per span with
/// i128 arithmetic reduced modulo 2^64 (the kernel's wrapping u64), summed modulo 2^32.
fn expected_prealloc(ops: &[(u32, u64, u64)]) -> u32 {
    let maps: Vec<(u64, u64)> = ops
        .iter()
        .filter(|o| o.0 != MSM_VM_BIND_OP_UNMAP)
        .map(|o| (o.1, o.2))
        .collect();
    let block = |x: u64| x >> 21;
    let mut groups: Vec<(usize, usize)> = Vec::new();
    for i in 0..maps.len() {
        let joins = i > 0 && block(maps[i - 1].0.wrapping_add(maps[i - 1].1)) == block(maps[i].0);
        if joins {
            groups.last_mut().unwrap().1 = i;
        } else {
            groups.push((i, i));
        }
    }
    let m = 1i128 << 64;
    let mut total: u64 = 0;
    for (first, last) in groups {
        let start = maps[first].0 as i128;
        let end = (maps[last].0 as i128 + maps[last].1 as i128) % m;
        let mut pages: i128 = 0;
        for shift in [39u32, 30, 21] {
            let s = 1i128 << shift;
            let up = ((end + s - 1) % m) / s * s;
            let down = start / s * s;
            pages += (up - down).rem_euclid(m) >> shift;
        }
        total = total.wrapping_add((pages.rem_euclid(m) as u64) & 0xffff_ffff);
    }
    total as u32
}

fn prealloc_op() -> impl Strategy<Value = (u32, u64, u64)> {
    // Addresses anywhere in the first 1 TiB of the VA (across 512 GiB, 1 GiB and 2 MiB lines),
    // often near each other so groups form; ranges up to 64 MiB.
    let near = (0u64..64, 0u64..16)
        .prop_map(|(b, p)| VA + (1 << 30) - (32 << 21) + b * (1 << 21) / 4 + p * PAGE);
    let far = (0u64..(1 << 28)).prop_map(|p| VA + p * PAGE);
    (
        prop_oneof![Just(MSM_VM_BIND_OP_MAP_NULL), Just(MSM_VM_BIND_OP_UNMAP)],
        prop_oneof![3 => near, 1 => far],
        prop_oneof![3 => (0u64..8).prop_map(|p| p * PAGE), 1 => (0u64..(1 << 14)).prop_map(|p| p * PAGE)],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn prealloc_count_matches_an_independent_implementation(
        ops in prop::collection::vec(prealloc_op(), 0..24)
    ) {
        let case = vb_file();
        let f: &SimFile = &case;
        let q = bind_queue(f);
        let uops: Vec<drm_msm_vm_bind_op> = ops
            .iter()
            .map(|&(op, iova, range)| drm_msm_vm_bind_op { op, iova, range, ..Default::default() })
            .collect();
        vm_bind(f, q, &uops);
        prop_assert_eq!(f.last_prealloc(), expected_prealloc(&ops) as u64);
        prop_assert_eq!(
            msm_winsys::sim::vm_bind::prealloc_count(&ops),
            expected_prealloc(&ops)
        );
        unmap_all_and_close(f, q, &[]);
        case.done();
    }
}

#[test]
fn the_independent_prealloc_agrees_with_the_spec_examples() {
    // One 4 KiB map: 3 pages; unsorted small maps: 3 each.
    assert_eq!(expected_prealloc(&[(1, VA, PAGE)]), 3);
    let unsorted: Vec<_> = (0..5)
        .map(|i| (2, VA + (4 - i) * (2 << 20), PAGE))
        .collect();
    assert_eq!(expected_prealloc(&unsorted), 15);
}
