//! The GpuVm's free-buffer cache in each kernel mode: a freed private buffer comes back, with
//! its handle and address, for a create of the same flags and a close size once its users are
//! done, with no ioctl but one refresh of the fence book per submit; a busy one is never handed
//! out; teardown leaves nothing on the file.

mod bo_common;
mod common;

use std::sync::{Arc, Mutex};

use bo_common::Observed;
use msm_winsys::bind::{GpuBuffer, GpuVm};
use msm_winsys::device::ProbeOptions;
use msm_winsys::kernel::ioctl::{self, SyncPoint};
use msm_winsys::sim::{Clock, Sim, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::Device;

struct Setup {
    sim: Sim,
    file: Arc<msm_winsys::sim::SimFile>,
    dev: Device,
    requests: Arc<Mutex<Vec<u64>>>,
}

fn setup(options: SimOptions) -> Setup {
    let sim = Sim::with_options(
        "a660",
        SimOptions {
            clock: Clock::Manual,
            ..options
        },
    )
    .unwrap();
    let file = Arc::new(sim.open().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let k = Observed::new(
        file.clone(),
        Box::new(move |request, _| seen.lock().unwrap().push(request)),
    );
    let dev = Device::new(Box::new(k), ProbeOptions::default()).unwrap();
    Setup {
        sim,
        file,
        dev,
        requests,
    }
}

fn at(done: u32, point: u64) -> [SyncPoint; 1] {
    [SyncPoint {
        handle: done,
        point,
    }]
}

/// Destroys `vm` (then the `syncobjs` its frees named, as a driver does), and asserts the
/// file's leak report is empty.
fn close_clean(s: Setup, vm: GpuVm, syncobjs: &[u32], what: &str) {
    s.sim.gpu_run_until_idle();
    vm.destroy(s.dev.kernel()).unwrap();
    s.sim.gpu_run_until_idle();
    for &h in syncobjs {
        ioctl::syncobj_destroy(s.dev.kernel(), h).unwrap();
    }
    drop(s.dev);
    let report = Arc::try_unwrap(s.file)
        .expect("the device let go of its file")
        .close();
    assert!(report.is_empty(), "{what}: {report:?}");
}

#[test]
fn a_freed_buffer_comes_back_with_no_ioctl_once_its_submit_is_done() {
    for (mode, options) in common::vm_modes() {
        let s = setup(options);
        assert_eq!(s.dev.info().mode, mode);
        let k = s.dev.kernel();
        let vm = GpuVm::new(&s.dev).unwrap();
        vm.enable_cache();
        let done = ioctl::syncobj_create(k, false).unwrap();
        // 20 KiB: bucket 20 pages.
        let a = vm.create_buffer(k, 20 << 10, MSM_BO_WC).unwrap();
        assert_eq!(a.size_B, 20 << 10);
        vm.submit(k, 0, &[(a.iova, 64)], &[a], &[], &at(done, 1))
            .unwrap();
        vm.free_buffer(k, a, &at(done, 1), false).unwrap();

        // Its submit has not run: a create gets a new buffer.
        let b = vm.create_buffer(k, 20 << 10, MSM_BO_WC).unwrap();
        assert_ne!(b.handle, a.handle, "{mode:?}");
        s.sim.gpu_run_until_idle();
        // No submit since the last refresh: the next may come after 2 ms.
        std::thread::sleep(std::time::Duration::from_millis(3));

        // Done now: the cache learns it with one query, and hands `a` back whole.
        s.requests.lock().unwrap().clear();
        let c = vm.create_buffer(k, 18 << 10, MSM_BO_WC).unwrap();
        assert_eq!(c, a, "{mode:?}");
        assert_eq!(
            *s.requests.lock().unwrap(),
            [DRM_IOCTL_SYNCOBJ_QUERY],
            "{mode:?}"
        );

        // Freed with no users: back at once, with no ioctl at all; other flags do not match.
        s.requests.lock().unwrap().clear();
        vm.free_buffer(k, c, &[], false).unwrap();
        let d = vm.create_buffer(k, 20 << 10, MSM_BO_WC).unwrap();
        assert_eq!(d, a, "{mode:?}");
        assert!(s.requests.lock().unwrap().is_empty(), "{mode:?}");
        vm.free_buffer(k, d, &[], false).unwrap();
        let e = vm
            .create_buffer(k, 20 << 10, MSM_BO_CACHED_COHERENT)
            .unwrap();
        assert_ne!(e.handle, a.handle, "{mode:?}");
        let st = vm.cache_stats();
        assert_eq!((st.hits, st.cached), (2, 1), "{mode:?}: {st:?}");

        // The cached buffer is still usable by a submit after reuse (mapped, in the BO table).
        let f = vm.create_buffer(k, 20 << 10, MSM_BO_WC).unwrap();
        assert_eq!(f, a);
        vm.submit(k, 0, &[(f.iova, 64)], &[f], &[], &at(done, 2))
            .unwrap();
        s.sim.gpu_run_until_idle();
        assert!(s.sim.devcoredumps().is_empty(), "{mode:?}");
        for x in [b, e, f] {
            vm.free_buffer(k, x, &at(done, 2), false).unwrap();
        }
        close_clean(s, vm, &[done], &format!("{mode:?}"));
    }
}

#[test]
fn a_larger_cached_buffer_serves_a_close_request_but_not_a_much_smaller_one() {
    let s = setup(SimOptions::default());
    let k = s.dev.kernel();
    let vm = GpuVm::new(&s.dev).unwrap();
    vm.enable_cache();
    let big = vm.create_buffer(k, 40 << 10, MSM_BO_WC).unwrap();
    vm.free_buffer(k, big, &[], false).unwrap();
    // 8 pages is a bucket of its own, far below 10 pages * 1.5: a new buffer.
    let small = vm.create_buffer(k, 4 << 12, MSM_BO_WC).unwrap();
    assert_ne!(small.handle, big.handle);
    // 32 KiB -> bucket 8 pages: 10 pages is within 1.5 times, so `big` serves it.
    let near = vm.create_buffer(k, 32 << 10, MSM_BO_WC).unwrap();
    assert_eq!(near, big);
    for b in [small, near] {
        vm.free_buffer(k, b, &[], false).unwrap();
    }
    close_clean(s, vm, &[], "sizes");
}

#[test]
fn shared_and_replayable_buffers_are_never_cached() {
    let s = setup(SimOptions::default());
    let k = s.dev.kernel();
    let vm = GpuVm::new(&s.dev).unwrap();
    vm.enable_cache();
    let top = vm
        .create_buffer_at(k, 8 << 10, MSM_BO_WC, msm_winsys::bind::Placement::Top)
        .unwrap();
    vm.free_buffer(k, top, &[], false).unwrap();
    let any: GpuBuffer = vm.create_buffer(k, 8 << 10, MSM_BO_WC).unwrap();
    vm.free_buffer(k, any, &[], true).unwrap();
    assert_eq!(vm.cache_stats().cached, 0);
    close_clean(s, vm, &[], "uncached");
}

#[test]
fn an_old_cached_buffer_is_made_dontneed_once_frees_stop_and_willneed_on_reuse() {
    let s = setup(SimOptions::default());
    let k = s.dev.kernel();
    let vm = GpuVm::new(&s.dev).unwrap();
    vm.enable_cache();
    let a = vm.create_buffer(k, 8 << 10, MSM_BO_WC).unwrap();
    vm.free_buffer(k, a, &[], false).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Another size: a miss, and the age check advises `a` (no free for 250 ms).
    let b = vm.create_buffer(k, 64 << 10, MSM_BO_WC).unwrap();
    assert_eq!(vm.cache_stats().advised, 1);
    s.requests.lock().unwrap().clear();
    let c = vm.create_buffer(k, 8 << 10, MSM_BO_WC).unwrap();
    assert_eq!(c, a);
    assert_eq!(*s.requests.lock().unwrap(), [DRM_IOCTL_MSM_GEM_MADVISE]);
    for x in [b, c] {
        vm.free_buffer(k, x, &[], false).unwrap();
    }
    close_clean(s, vm, &[], "advised");
}
