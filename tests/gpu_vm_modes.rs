//! The same driver-level sequence in all three kernel modes (VM_BIND, SET_IOVA, kernel iova) on
//! the model: buffers created at addresses, submits by address that never fault, freed buffers
//! reclaimed only after their users are done, and all of it through one API.

mod common;

use msm_winsys::bind::{GpuBuffer, GpuVm, Placement};
use msm_winsys::device::ProbeOptions;
use msm_winsys::kernel::ioctl::{self, SyncPoint};
use msm_winsys::sim::{Clock, LeakReport, Sim, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::{Device, VmMode};

fn device(options: SimOptions) -> (Sim, Device) {
    let (sim, _file, dev) = device_with_file(options);
    (sim, dev)
}

/// Creates 20 buffers, submits over them, frees half while the submit is pending, runs the GPU,
/// submits over the rest, frees everything. Returns (zombies left before the GPU ran, after).
fn frame(sim: &Sim, dev: &Device, vm: &GpuVm) -> (usize, usize) {
    let k = dev.kernel();
    let done = ioctl::syncobj_create(k, false).unwrap();
    let bufs: Vec<GpuBuffer> = (0..20)
        .map(|i| vm.create_buffer(k, 4096 * (1 + i % 3), MSM_BO_WC).unwrap())
        .collect();
    let cmds: Vec<(u64, u32)> = bufs.iter().map(|b| (b.iova, 64)).collect();
    vm.submit(k, 0, &cmds, &bufs, &[], &at(done, 1)).unwrap();
    for b in &bufs[..10] {
        vm.free_buffer(k, *b, &at(done, 1), false).unwrap();
    }
    vm.flush(k).unwrap();
    let before = vm.zombies();
    sim.gpu_run_until_idle();
    vm.flush(k).unwrap();
    let after = vm.zombies();
    let rest = &bufs[10..];
    let cmds: Vec<(u64, u32)> = rest.iter().map(|b| (b.iova, 64)).collect();
    vm.submit(k, 0, &cmds, rest, &[], &at(done, 2)).unwrap();
    for b in rest {
        vm.free_buffer(k, *b, &at(done, 2), false).unwrap();
    }
    sim.gpu_run_until_idle();
    vm.flush(k).unwrap();
    sim.gpu_run_until_idle();
    assert!(
        sim.devcoredumps().is_empty(),
        "no submit saw an unmapped address: {:?}",
        sim.devcoredumps()
    );
    ioctl::syncobj_destroy(k, done).unwrap();
    (before, after)
}

#[test]
fn vm_bind_mode() {
    let (sim, dev) = device(SimOptions::default());
    assert_eq!(dev.info().mode, VmMode::VmBind);
    let vm = GpuVm::new(&dev).unwrap();
    frame(&sim, &dev, &vm);
    let s = vm.bind_vm().unwrap().stats();
    assert!(s.vm_bind_ioctls <= 4, "{s:?}");
    vm.destroy(dev.kernel()).unwrap();
}

#[test]
fn set_iova_mode_reclaims_zombies_only_after_their_submit() {
    let (sim, dev) = device(SimOptions {
        uapi_minor: 12,
        ..Default::default()
    });
    assert_eq!(dev.info().mode, VmMode::UserspaceIova);
    let vm = GpuVm::new(&dev).unwrap();
    let (before, after) = frame(&sim, &dev, &vm);
    assert_eq!((before, after), (10, 0));
    assert_eq!(vm.zombies(), 0);
    let (passes, reclaimed) = vm.reclaim_stats();
    assert_eq!(reclaimed, 20);
    assert!(
        passes <= 8,
        "reclaim is a pass per submit or flush, not per buffer: {passes}"
    );
    vm.destroy(dev.kernel()).unwrap();
}

#[test]
fn kernel_iova_mode() {
    let (sim, dev) = device(SimOptions {
        per_process_pgtables: false,
        ..Default::default()
    });
    assert_eq!(dev.info().mode, VmMode::KernelIova);
    let vm = GpuVm::new(&dev).unwrap();
    let (before, after) = frame(&sim, &dev, &vm);
    assert_eq!((before, after), (10, 0));
    vm.destroy(dev.kernel()).unwrap();
}

#[test]
fn set_iova_addresses_are_reused_only_after_reclaim() {
    let (sim, dev) = device(SimOptions {
        uapi_minor: 12,
        ..Default::default()
    });
    let vm = GpuVm::new(&dev).unwrap();
    let k = dev.kernel();
    let done = ioctl::syncobj_create(k, false).unwrap();
    let a = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
    vm.submit(k, 0, &[(a.iova, 64)], &[a], &[], &at(done, 1))
        .unwrap();
    vm.free_buffer(k, a, &at(done, 1), false).unwrap();
    let b = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
    assert_ne!(b.iova, a.iova, "a's range is still in use by the GPU");
    sim.gpu_run_until_idle();
    vm.flush(k).unwrap();
    let c = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
    assert_eq!(c.iova, a.iova, "reclaimed and handed out again");
    for buf in [b, c] {
        vm.free_buffer(k, buf, &[], false).unwrap();
    }
    ioctl::syncobj_destroy(k, done).unwrap();
    finish(&sim, &dev, vm);
}

#[test]
fn vm_bind_mode_flushes_when_the_pending_budget_is_reached() {
    let (sim, dev) = device(SimOptions::default());
    let vm = GpuVm::new(&dev).unwrap();
    let k = dev.kernel();
    let bufs: Vec<GpuBuffer> = (0..msm_winsys::bind::PENDING_OPS_BUDGET)
        .map(|_| vm.create_buffer(k, 4096, MSM_BO_WC).unwrap())
        .collect();
    let s = vm.bind_vm().unwrap().stats();
    assert_eq!(
        s.vm_bind_ioctls, 1,
        "one flush at the budget, no submit needed: {s:?}"
    );
    assert_eq!(vm.bind_vm().unwrap().pending_ops(), 0);
    for buf in bufs {
        vm.free_buffer(k, buf, &[], false).unwrap();
    }
    finish(&sim, &dev, vm);
}

/// An exported buffer of the sharing layer gets an address, is used, and is unmapped after its
/// user; the Bo keeps its handle (and can still be exported) throughout.
fn shared_buffer_cycle(options: SimOptions) {
    use msm_winsys::bo::{Bo, BoFlags};
    use std::sync::Arc;
    let (sim, dev) = device(options);
    let dev = Arc::new(dev);
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let bo = Bo::new(&dev, 64 << 10, BoFlags::SHARED | BoFlags::WC).unwrap();
    let _scanout = bo.export_dmabuf().unwrap();
    let buf = vm.map_bo(k, &bo).unwrap();
    assert_eq!(buf.handle, bo.handle());
    let done = ioctl::syncobj_create(k, false).unwrap();
    vm.submit(k, 0, &[(buf.iova, 64)], &[buf], &[], &at(done, 1))
        .unwrap();
    vm.unmap_bo(k, buf, &at(done, 1)).unwrap();
    assert!(vm.unmap_bo(k, buf, &[]).is_err(), "unmapped once only");
    sim.gpu_run_until_idle();
    vm.flush(k).unwrap();
    sim.gpu_run_until_idle();
    assert!(sim.devcoredumps().is_empty());
    // The buffer is the Bo's again: still alive, still exportable, mappable at a new address.
    assert!(bo.export_dmabuf().is_ok());
    let again = vm.map_bo(k, &bo).unwrap();
    vm.unmap_bo(k, again, &[]).unwrap();
    vm.flush(k).unwrap();
    ioctl::syncobj_destroy(k, done).unwrap();
    finish(&sim, &dev, vm);
}

#[test]
fn shared_buffers_in_vm_bind_mode() {
    shared_buffer_cycle(SimOptions::default());
}

#[test]
fn shared_buffers_in_set_iova_mode() {
    shared_buffer_cycle(SimOptions {
        uapi_minor: 12,
        ..Default::default()
    });
}

#[test]
fn submits_tell_the_buffer_cache_when_a_cached_buffer_went_idle() {
    use msm_winsys::bo::{Bo, BoFlags};
    use msm_winsys::iova::Fence;
    use std::sync::Arc;
    let sim = a750_manual_clock();
    let dev =
        Arc::new(Device::new(Box::new(sim.open().unwrap()), ProbeOptions::default()).unwrap());
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let frame = ioctl::syncobj_create(k, false).unwrap();
    // A private buffer used by a submit that signals frame:1, then released to the cache.
    let bo = Bo::new(&dev, 64 << 10, BoFlags::WC).unwrap();
    let handle = bo.handle();
    bo.add_fence(Fence::Syncobj {
        handle: frame,
        point: 1,
    });
    let buf = vm.map_bo(k, &bo).unwrap();
    vm.submit(
        k,
        0,
        &[(buf.iova, 64)],
        &[buf],
        &[],
        &[SyncPoint {
            handle: frame,
            point: 1,
        }],
    )
    .unwrap();
    vm.unmap_bo(
        k,
        buf,
        &[SyncPoint {
            handle: frame,
            point: 1,
        }],
    )
    .unwrap();
    drop(bo);
    // Busy: a new buffer of that size does not come from the cache.
    let hits = dev.bo_manager().cache_stats().hits;
    let other = Bo::new(&dev, 64 << 10, BoFlags::WC).unwrap();
    assert_eq!(dev.bo_manager().cache_stats().hits, hits);
    assert_ne!(other.handle(), handle);
    sim.gpu_run_until_idle();
    vm.flush(k).unwrap(); // learns frame:1 with one query and tells the fence book
    let again = Bo::new(&dev, 64 << 10, BoFlags::WC).unwrap();
    assert_eq!(
        dev.bo_manager().cache_stats().hits,
        hits + 1,
        "the idle buffer was reused"
    );
    assert_eq!(again.handle(), handle);
    drop((again, other));
    ioctl::syncobj_destroy(k, frame).unwrap();
    finish(&sim, &dev, vm);
}

/// Lets the GPU finish, then releases the VM's kernel objects; the device's file is checked for
/// leaks when the test drops it (`MSMWS_SIM_LEAK_CHECK`).
fn finish(sim: &Sim, dev: &Device, vm: GpuVm) {
    sim.gpu_run_until_idle();
    vm.destroy(dev.kernel()).unwrap();
    // The last unmaps ride bind jobs that run after the flush in `destroy`.
    sim.gpu_run_until_idle();
}

/// Drops the test's device, which holds the other reference on `file`, and closes the file.
fn close_file(file: std::sync::Arc<msm_winsys::sim::SimFile>, dev: Device) -> LeakReport {
    drop(dev);
    std::sync::Arc::try_unwrap(file)
        .expect("the device let go of its file")
        .close()
}

/// Point `point` of timeline syncobj `done`, as a one-entry users or signals list.
fn at(done: u32, point: u64) -> [SyncPoint; 1] {
    [SyncPoint {
        handle: done,
        point,
    }]
}

/// A driver tearing down a lost device: `destroy` reports the loss (EPIPE) and still releases the
/// VM's bind queues and timelines. Only the mapping the lost VM could not unmap stays, until the
/// file closes (msm_gem_vm_close: an unusable VM takes no more VM_BIND).
#[test]
fn destroying_a_lost_vm_releases_its_queues_and_timelines() {
    use std::sync::Arc;
    let sim = a750_manual_clock();
    let file = Arc::new(sim.open().unwrap());
    let dev = Device::new(Box::new(file.clone()), ProbeOptions::default()).unwrap();
    assert_eq!(dev.info().mode, VmMode::VmBind);
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let buf = vm.create_buffer(k, 65536, MSM_BO_WC).unwrap();
    vm.submit(k, 0, &[(buf.iova, 64)], &[buf], &[], &[])
        .unwrap();
    sim.gpu_run_until_idle();
    // A job that faults (injected: it reads address 0) makes the VM unusable.
    sim.inject(msm_winsys::sim::Injection {
        point: "SUBMIT:fault".into(),
        nth: 1,
        errno: msm_winsys::Errno::EIO,
    });
    vm.submit(k, 0, &[(buf.iova, 64)], &[buf], &[], &[])
        .unwrap();
    sim.gpu_run_until_idle();
    vm.free_buffer(k, buf, &[], false).unwrap();
    let e = vm.destroy(k).unwrap_err();
    assert_eq!(
        msm_winsys::ErrnoError::errno(&e),
        msm_winsys::Errno::EPIPE,
        "{e}"
    );
    let report = close_file(file, dev);
    assert!(
        report.queues.is_empty() && report.syncobjs == 0,
        "{report:?}"
    );
    assert!(report.handles.is_empty(), "{report:?}");
    assert_eq!(report.vmas.len(), 1, "{report:?}");
}

/// An a750 model whose GPU runs only when the test says so.
fn a750_manual_clock() -> Sim {
    Sim::with_options(
        "a750",
        SimOptions {
            clock: Clock::Manual,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Capture/replay while the GPU is still busy: the replayed address is held by a free whose
/// submit has not finished (VM_BIND: its unmap too; SET_IOVA: a zombie). `create_buffer_at`
/// flushes, waits for those fences and gets the address, as stock turnip waits for its zombies.
fn replay_while_busy(options: SimOptions) {
    let sim = Sim::with_options(
        "a660",
        SimOptions {
            clock: Clock::Async {
                latency: std::time::Duration::from_millis(20),
            },
            ..options
        },
    )
    .unwrap();
    let dev = Device::new(Box::new(sim.open().unwrap()), ProbeOptions::default()).unwrap();
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let done = ioctl::syncobj_create(k, false).unwrap();
    let cap = vm
        .create_buffer_at(k, 65536, MSM_BO_WC, Placement::Top)
        .unwrap();
    vm.submit(k, 0, &[(cap.iova, 64)], &[cap], &[], &at(done, 1))
        .unwrap();
    vm.free_buffer(k, cap, &at(done, 1), false).unwrap();
    let again = vm
        .create_buffer_at(k, 65536, MSM_BO_WC, Placement::At(cap.iova))
        .unwrap();
    assert_eq!(again.iova, cap.iova);
    // A live buffer's address is refused.
    let e = vm
        .create_buffer_at(k, 4096, MSM_BO_WC, Placement::At(cap.iova))
        .unwrap_err();
    assert_eq!(msm_winsys::ErrnoError::errno(&e), msm_winsys::Errno::EEXIST);
    sim.gpu_run_until_idle();
    vm.free_buffer(k, again, &[], false).unwrap();
    ioctl::syncobj_destroy(k, done).unwrap();
    finish(&sim, &dev, vm);
}

#[test]
fn replay_waits_for_the_frees_holding_its_address_in_vm_bind_mode() {
    replay_while_busy(SimOptions::default());
}

#[test]
fn replay_waits_for_the_frees_holding_its_address_in_set_iova_mode() {
    replay_while_busy(SimOptions {
        uapi_minor: 12,
        ..Default::default()
    });
}

/// A device on `options`' model whose file the test gets back to close and read its leak report.
fn device_with_file(
    options: SimOptions,
) -> (Sim, std::sync::Arc<msm_winsys::sim::SimFile>, Device) {
    let sim = Sim::with_options(
        "a660",
        SimOptions {
            clock: Clock::Manual,
            ..options
        },
    )
    .unwrap();
    let file = std::sync::Arc::new(sim.open().unwrap());
    let dev = Device::new(Box::new(file.clone()), ProbeOptions::default()).unwrap();
    (sim, file, dev)
}

/// Makes the `nth` call of `point` (an ioctl name or an inner VM_BIND point) fail with ENOMEM.
fn inject_enomem(sim: &Sim, point: &str, nth: u32) {
    sim.inject(msm_winsys::sim::Injection {
        point: point.into(),
        nth,
        errno: msm_winsys::Errno::ENOMEM,
    });
}

/// Destroys `vm`, lets the GPU finish, drops `dev`, closes `file` and asserts that its leak
/// report is empty (`what` names the case).
fn close_clean(
    sim: &Sim,
    file: std::sync::Arc<msm_winsys::sim::SimFile>,
    dev: Device,
    vm: GpuVm,
    what: &str,
) {
    close_clean_shared(sim, file, std::sync::Arc::new(dev), vm, what);
}

/// GEM_NEW (shmem allocation) and GEM_INFO SET_IOVA/GET_IOVA (VMA allocation) can fail with
/// ENOMEM. A refused creation must leave no handle, no mapping and no address taken: the next
/// buffer gets the address the failed one would have had. Found by ci/fault-sweep
/// (`GEM_NEW:4:ENOMEM`, `GEM_INFO:3:ENOMEM`).
#[test]
fn a_buffer_creation_refused_with_enomem_leaves_nothing_behind() {
    let vm_bind = SimOptions::default();
    let set_iova = SimOptions {
        uapi_minor: 12,
        ..Default::default()
    };
    let kernel_iova = SimOptions {
        per_process_pgtables: false,
        ..Default::default()
    };
    for (options, point) in [
        (vm_bind, "GEM_NEW"),
        (set_iova.clone(), "GEM_NEW"),
        (set_iova, "GEM_INFO"),
        (kernel_iova.clone(), "GEM_NEW"),
        (kernel_iova, "GEM_INFO"),
    ] {
        let (sim, file, dev) = device_with_file(options);
        let mode = dev.info().mode;
        let k = dev.kernel();
        let vm = GpuVm::new(&dev).unwrap();
        let first = vm.create_buffer(k, 8192, MSM_BO_WC).unwrap();
        inject_enomem(&sim, point, 1);
        let e = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap_err();
        assert_eq!(
            msm_winsys::ErrnoError::errno(&e),
            msm_winsys::Errno::ENOMEM,
            "{mode:?} {point}: {e}"
        );
        assert_eq!(
            file.leak_report().handles.len(),
            1,
            "{mode:?} {point}: only the first buffer's handle"
        );
        let next = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
        assert_eq!(
            next.iova,
            first.iova + first.size_B,
            "{mode:?} {point}: the failed buffer took no address"
        );
        vm.flush(k).unwrap();
        sim.gpu_run_until_idle();
        let mapped = file.vm_mappings().len();
        if mode == VmMode::VmBind {
            assert_eq!(mapped, 2, "{mode:?} {point}: no map of the failed buffer");
        }
        for buf in [first, next] {
            vm.free_buffer(k, buf, &[], false).unwrap();
        }
        close_clean(&sim, file, dev, vm, &format!("{mode:?} {point}"));
    }
}

/// A device's teardown whose unmap job the kernel refuses with ENOMEM: the VM is still usable,
/// so `destroy` sends the unmap again and the VMA goes before the file closes. Found by
/// ci/fault-sweep (`VM_BIND:6:ENOMEM` on vk_churn: 37 VMAs left, reported as a device loss).
#[test]
fn destroy_sends_again_an_unmap_refused_with_enomem() {
    let (sim, file, dev) = device_with_file(SimOptions::default());
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let buf = vm.create_buffer(k, 65536, MSM_BO_WC).unwrap();
    vm.flush(k).unwrap();
    sim.gpu_run_until_idle();
    vm.free_buffer(k, buf, &[], false).unwrap();
    inject_enomem(&sim, "VM_BIND", 1);
    close_clean(&sim, file, dev, vm, "");
}

/// A reclaim pass whose SET_IOVA(0) of a shared zombie is refused (GEM_INFO allocates: ENOMEM)
/// keeps that zombie and the later ones for the next pass instead of dropping them with their
/// handles.
#[test]
fn a_failed_reclaim_keeps_its_zombies_for_the_next_pass() {
    let (sim, file, dev) = device_with_file(SimOptions {
        uapi_minor: 12,
        ..Default::default()
    });
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let bufs: Vec<GpuBuffer> = (0..3)
        .map(|_| vm.create_buffer(k, 4096, MSM_BO_WC).unwrap())
        .collect();
    for b in &bufs {
        vm.free_buffer(k, *b, &[], true).unwrap();
    }
    inject_enomem(&sim, "GEM_INFO", 2);
    let e = vm.flush(k).unwrap_err();
    assert_eq!(msm_winsys::ErrnoError::errno(&e), msm_winsys::Errno::ENOMEM);
    assert_eq!(vm.zombies(), 2, "the first was reclaimed, the rest wait");
    assert_eq!(file.leak_report().handles.len(), 2);
    vm.flush(k).unwrap();
    assert_eq!(vm.zombies(), 0);
    close_clean(&sim, file, dev, vm, "");
}

/// The flush a buffer creation makes at the pending budget is refused down to a single op
/// (ENOMEM at every piece on the way): the buffer is still created, since its MAP is queued and
/// names its handle (failing the creation made the caller close a handle a queued MAP named),
/// and the next flush maps everything.
#[test]
fn a_refused_budget_flush_does_not_fail_the_buffer_that_triggered_it() {
    let (sim, file, dev) = device_with_file(SimOptions::default());
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let budget = msm_winsys::bind::PENDING_OPS_BUDGET;
    let mut bufs: Vec<GpuBuffer> = (0..budget - 1)
        .map(|_| vm.create_buffer(k, 4096, MSM_BO_WC).unwrap())
        .collect();
    // The 4096-op job, then each first half down to one op: 13 VM_BIND calls.
    for nth in 1..=13 {
        inject_enomem(&sim, "VM_BIND", nth);
    }
    bufs.push(vm.create_buffer(k, 4096, MSM_BO_WC).unwrap());
    assert!(file.vm_mappings().is_empty());
    vm.flush(k).unwrap();
    sim.gpu_run_until_idle();
    assert_eq!(file.vm_mappings().len(), budget);
    for b in bufs {
        vm.free_buffer(k, b, &[], false).unwrap();
    }
    close_clean(&sim, file, dev, vm, "");
}

/// `create_buffer_at` reserves its address before GEM_NEW; when the reclaim pass of the
/// SET_IOVA path then fails (a shared zombie's SET_IOVA(0) refused with ENOMEM), the reserved
/// address must go back: it stayed taken, and a replay of it waited 3 s for nothing.
#[test]
fn a_failed_create_at_gives_back_its_reserved_address() {
    let (sim, file, dev) = device_with_file(SimOptions {
        uapi_minor: 12,
        ..Default::default()
    });
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let old = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
    vm.free_buffer(k, old, &[], true).unwrap();
    let at = old.iova + (1 << 20);
    inject_enomem(&sim, "GEM_INFO", 1);
    let e = vm
        .create_buffer_at(k, 4096, MSM_BO_WC, Placement::At(at))
        .unwrap_err();
    assert_eq!(msm_winsys::ErrnoError::errno(&e), msm_winsys::Errno::ENOMEM);
    assert_eq!(vm.zombies(), 1, "the zombie waits for the next pass");
    let start = std::time::Instant::now();
    let buf = vm
        .create_buffer_at(k, 4096, MSM_BO_WC, Placement::At(at))
        .unwrap();
    assert_eq!(buf.iova, at);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(1),
        "no wait: the address was free"
    );
    vm.free_buffer(k, buf, &[], false).unwrap();
    close_clean(&sim, file, dev, vm, "");
}

/// A device of UAPI 1.`uapi_minor` on a manual GPU clock, and its GPU VM.
fn manual_vm(uapi_minor: u32) -> (Sim, Device, GpuVm) {
    let (sim, dev) = device(SimOptions {
        uapi_minor,
        clock: Clock::Manual,
        ..Default::default()
    });
    let vm = GpuVm::new(&dev).unwrap();
    (sim, dev, vm)
}

/// A driver bug the winsys can see: a command buffer outside every live buffer (never created,
/// freed, crossing a buffer's end, or overflowing the address space) would fault the GPU, and on
/// a VM_BIND kernel cost the whole VM. In every mode the submit is EINVAL naming the address, no
/// SUBMIT reaches the kernel, and the next valid submit runs without a fault.
#[test]
fn a_submit_outside_every_live_buffer_is_refused_in_every_mode() {
    for uapi_minor in [13, 12, 9] {
        let (sim, dev, vm) = manual_vm(uapi_minor);
        let k = dev.kernel();
        let buf = vm.create_buffer(k, 8192, MSM_BO_WC).unwrap();
        let freed = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
        vm.free_buffer(k, freed, &[], false).unwrap();
        // A rule that never fires counts the SUBMIT ioctls.
        sim.inject(msm_winsys::sim::Injection {
            point: "GEM_SUBMIT".into(),
            nth: u32::MAX,
            errno: msm_winsys::Errno::EIO,
        });
        let submits = || sim.injections()[0].hits;
        let before = submits();
        for cmd in [
            (buf.iova + 8192, 64),
            (buf.iova + 8192 - 32, 64),
            (freed.iova, 64),
            (u64::MAX - 8, 64),
        ] {
            let e = vm.submit(k, 0, &[cmd], &[buf], &[], &[]).unwrap_err();
            assert_eq!(msm_winsys::ErrnoError::errno(&e), msm_winsys::Errno::EINVAL);
            assert!(e.to_string().contains(&format!("{:#x}", cmd.0)), "{e}");
        }
        assert_eq!(
            submits(),
            before,
            "UAPI 1.{uapi_minor}: nothing was submitted"
        );
        vm.submit(k, 0, &[(buf.iova + 4096, 64)], &[buf], &[], &[])
            .unwrap();
        sim.gpu_run_until_idle();
        assert!(sim.devcoredumps().is_empty(), "UAPI 1.{uapi_minor}");
        vm.free_buffer(k, buf, &[], false).unwrap();
        vm.destroy(k).unwrap();
    }
}

/// Frees the winsys can see are bugs: a buffer freed twice (after its address went to a new
/// buffer), a made-up one, or one of `map_bo` given to `free_buffer`. Each is EINVAL and changes
/// nothing: the new buffer at the reused address stays mapped and its handle open.
#[test]
fn a_free_of_no_live_buffer_is_refused_in_every_mode() {
    for uapi_minor in [13, 12, 9] {
        let (sim, dev, vm) = manual_vm(uapi_minor);
        let k = dev.kernel();
        let old = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
        vm.free_buffer(k, old, &[], false).unwrap();
        vm.flush(k).unwrap();
        sim.gpu_run_until_idle();
        vm.flush(k).unwrap();
        let new = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
        let mut stale = vec![
            old,
            GpuBuffer {
                size_B: 8192,
                ..new
            },
            GpuBuffer {
                handle: new.handle + 100,
                ..new
            },
        ];
        if uapi_minor != 9 {
            // With an allocator the address comes back (the kernel picks its own otherwise).
            assert_eq!(new.iova, old.iova, "UAPI 1.{uapi_minor}");
        }
        if old == new {
            // The kernel gave the lowest free handle again: the same buffer as far as anyone
            // can tell, so that free is the new buffer's own.
            stale.remove(0);
        }
        for b in stale {
            let e = vm.free_buffer(k, b, &[], false).unwrap_err();
            assert_eq!(
                msm_winsys::ErrnoError::errno(&e),
                msm_winsys::Errno::EINVAL,
                "UAPI 1.{uapi_minor} {b:?}"
            );
            assert!(e.to_string().contains("not a live buffer"), "{e}");
        }
        vm.flush(k).unwrap();
        sim.gpu_run_until_idle();
        vm.submit(k, 0, &[(new.iova, 64)], &[new], &[], &[])
            .unwrap();
        sim.gpu_run_until_idle();
        assert!(
            sim.devcoredumps().is_empty(),
            "UAPI 1.{uapi_minor}: still mapped"
        );
        vm.free_buffer(k, new, &[], false).unwrap();
        vm.destroy(k).unwrap();
    }
}

/// Without VM_BIND an object has one address per VM, and the kernel answers a SET_IOVA at a
/// second address by unmapping the first and failing with EBUSY (msm_gem_set_iova: "clears the
/// old mapping"); GET_IOVA hands out the first address again. A second `map_bo` of a mapped
/// buffer (the same dma-buf imported twice, which the handle table dedupes to one `Bo`) must
/// therefore be refused before the kernel is asked: EBUSY, and the first mapping still there,
/// still usable by a submit. Found while writing the concurrency stress for SET_IOVA mode
/// (tests/conc_stress.rs): before the fix the first mapping was gone.
fn second_map_of_a_mapped_buffer(options: SimOptions) {
    use msm_winsys::bo::{Bo, BoFlags};
    use msm_winsys::ErrnoError;
    use std::sync::Arc;
    let (sim, file, dev) = device_with_file(options);
    let dev = Arc::new(dev);
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let bo = Bo::new(&dev, 64 << 10, BoFlags::SHARED | BoFlags::WC).unwrap();
    let first = vm.map_bo(k, &bo).unwrap();
    let e = vm.map_bo(k, &bo).unwrap_err();
    assert_eq!(e.errno(), msm_winsys::Errno::EBUSY, "{e}");
    assert!(e.to_string().contains(&format!("{:#x}", first.iova)), "{e}");
    assert!(
        file.gpu_mapped(first.iova, first.size_B),
        "the first mapping was lost"
    );
    assert_eq!(file.vmas().len(), 1);
    vm.submit(k, 0, &[(first.iova, 64)], &[first], &[], &[])
        .unwrap();
    sim.gpu_run_until_idle();
    assert!(sim.devcoredumps().is_empty(), "{:?}", sim.devcoredumps());
    // Once unmapped and reclaimed, the buffer can be mapped again.
    vm.unmap_bo(k, first, &[]).unwrap();
    vm.flush(k).unwrap();
    let again = vm.map_bo(k, &bo).unwrap();
    vm.unmap_bo(k, again, &[]).unwrap();
    vm.flush(k).unwrap();
    drop(bo);
    let dev = Arc::try_unwrap(dev).unwrap();
    close_clean(&sim, file, dev, vm, "second map");
}

#[test]
fn set_iova_mode_refuses_a_second_map_of_a_mapped_buffer_and_keeps_the_first() {
    second_map_of_a_mapped_buffer(SimOptions {
        uapi_minor: 12,
        ..Default::default()
    });
}

#[test]
fn kernel_iova_mode_refuses_a_second_map_of_a_mapped_buffer_and_keeps_the_first() {
    second_map_of_a_mapped_buffer(SimOptions {
        per_process_pgtables: false,
        ..Default::default()
    });
}

/// A buffer a GL driver parks in its own cache is MADVISE(DONTNEED). The kernel refuses a submit
/// naming a DONTNEED object with EBUSY (msm_gem_pin_pages_locked, reached from
/// submit_pin_objects), and a legacy-mode submit names every buffer of the VM: `GpuVm::madvise`
/// takes a parked buffer out of that table and puts it back when taken back (found by piglit's
/// ext_external_objects-vk-depth-display on freedreno-on-msm-winsys, kernel-iova mode). VM_BIND
/// refuses to map a DONTNEED object the same way: a MAP still queued is sent before parking.
#[test]
fn a_parked_buffer_is_left_out_of_legacy_submits() {
    for options in [
        SimOptions {
            uapi_minor: 12,
            ..Default::default()
        },
        SimOptions {
            per_process_pgtables: false,
            ..Default::default()
        },
        SimOptions::default(),
    ] {
        let (sim, file, dev) = device_with_file(options.clone());
        let k = dev.kernel();
        let vm = GpuVm::new(&dev).unwrap();
        let used = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
        let parked = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
        assert!(vm.madvise(k, parked, false).unwrap(), "retained");
        vm.submit(k, 0, &[(used.iova, 64)], &[used], &[], &[])
            .unwrap();
        if vm.bind_vm().is_none() {
            // Commands in a parked buffer are a driver bug: refused, not a panic.
            let e = vm
                .submit(k, 0, &[(parked.iova, 64)], &[parked], &[], &[])
                .unwrap_err();
            assert_eq!(msm_winsys::ErrnoError::errno(&e), msm_winsys::Errno::EINVAL);
        }
        assert!(vm.madvise(k, parked, true).unwrap(), "retained");
        vm.submit(k, 0, &[(parked.iova, 64)], &[parked], &[], &[])
            .unwrap();
        sim.gpu_run_until_idle();
        assert!(sim.devcoredumps().is_empty(), "{:?}", sim.devcoredumps());
        vm.free_buffer(k, used, &[], false).unwrap();
        vm.free_buffer(k, parked, &[], false).unwrap();
        close_clean(&sim, file, dev, vm, &format!("{options:?}"));
    }
}

/// With the free-buffer cache on, a freed buffer stays mapped in the cache: freeing it a second
/// time is still refused (EINVAL), so the cache never holds a handle that was closed under it,
/// and the buffer it hands out again is live (its free is accepted).
#[test]
fn a_second_free_of_a_cached_buffer_is_refused_in_every_mode() {
    for uapi_minor in [13, 12, 9] {
        let (sim, dev, vm) = manual_vm(uapi_minor);
        let k = dev.kernel();
        vm.enable_cache();
        let buf = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
        vm.free_buffer(k, buf, &[], false).unwrap();
        let e = vm.free_buffer(k, buf, &[], false).unwrap_err();
        assert_eq!(
            msm_winsys::ErrnoError::errno(&e),
            msm_winsys::Errno::EINVAL,
            "UAPI 1.{uapi_minor}"
        );
        let again = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
        assert_eq!(again, buf, "UAPI 1.{uapi_minor}: reused from the cache");
        vm.submit(k, 0, &[(again.iova, 64)], &[again], &[], &[])
            .unwrap();
        sim.gpu_run_until_idle();
        assert!(sim.devcoredumps().is_empty(), "UAPI 1.{uapi_minor}");
        vm.free_buffer(k, again, &[], false).unwrap();
        vm.destroy(k).unwrap();
    }
}

/// [`close_clean`] for a device shared with `Bo`s (all gone once `vm` is destroyed).
fn close_clean_shared(
    sim: &Sim,
    file: std::sync::Arc<msm_winsys::sim::SimFile>,
    dev: std::sync::Arc<Device>,
    vm: GpuVm,
    what: &str,
) {
    finish(sim, &dev, vm);
    let dev = std::sync::Arc::try_unwrap(dev).expect("no Bo outlives the test's own");
    let report = close_file(file, dev);
    assert!(report.is_empty(), "{what}: {report:?}");
}

/// A driver that destroys the VM with buffers it never freed, one of them a shared buffer still
/// mapped: after `destroy` nothing can name them, so the VM frees them itself and the file is
/// left holding nothing. Found by the c_abi fuzz target (create_buffer_at, then
/// msmws_gpu_vm_destroy: handle 1 and its VMA stayed until the file closed).
#[test]
fn destroy_frees_the_buffers_and_mappings_the_driver_left() {
    use msm_winsys::bo::{Bo, BoFlags};
    for (mode, options) in common::vm_modes() {
        let (sim, file, dev) = device_with_file(options);
        assert_eq!(dev.info().mode, mode);
        let dev = std::sync::Arc::new(dev);
        let k = dev.kernel();
        let vm = GpuVm::new(&dev).unwrap();
        vm.create_buffer(k, 8192, MSM_BO_WC).unwrap();
        if mode != VmMode::KernelIova {
            vm.create_buffer_at(k, 4096, MSM_BO_WC, Placement::Top)
                .unwrap();
        }
        let bo = Bo::new(&dev, 64 << 10, BoFlags::SHARED | BoFlags::WC).unwrap();
        vm.map_bo(k, &bo).unwrap();
        drop(bo);
        close_clean_shared(&sim, file, dev, vm, &format!("{mode:?}"));
    }
}

/// A buffer freed twice: the second free is EINVAL and changes nothing, even when a new buffer
/// got the same GEM handle (the kernel reuses the lowest free handle) and maybe the same address
/// in between: before, it closed the new buffer's handle and unmapped (part of) its range. The
/// same for a made-up buffer, and for an unmap of a shared buffer with another size than it was
/// mapped with.
#[test]
fn a_double_free_is_einval_and_spares_the_buffer_that_reused_its_handle() {
    use msm_winsys::bo::{Bo, BoFlags};
    use msm_winsys::ErrnoError;
    for (mode, options) in common::vm_modes() {
        let (sim, file, dev) = device_with_file(options);
        let dev = std::sync::Arc::new(dev);
        let k = dev.kernel();
        let vm = GpuVm::new(&dev).unwrap();
        let a = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
        vm.free_buffer(k, a, &[], false).unwrap();
        vm.flush(k).unwrap();
        sim.gpu_run_until_idle();
        vm.flush(k).unwrap();
        let b = vm.create_buffer(k, 8192, MSM_BO_WC).unwrap();
        assert_eq!(b.handle, a.handle, "{mode:?}: the kernel reuses the handle");
        let e = vm.free_buffer(k, a, &[], false).unwrap_err();
        assert_eq!(e.errno(), msm_winsys::Errno::EINVAL, "{mode:?}");
        assert!(e.to_string().contains("not a live buffer"), "{e}");
        let made_up = GpuBuffer {
            size_B: b.size_B * 2,
            ..b
        };
        assert!(vm.free_buffer(k, made_up, &[], false).is_err(), "{mode:?}");
        // b is whole: its handle is open and a submit over all of it does not fault.
        assert!(ioctl::gem_info_value(k, b.handle, MSM_INFO_GET_FLAGS, 0).is_ok());
        vm.submit(k, 0, &[(b.iova + 4096, 64)], &[b], &[], &[])
            .unwrap();
        sim.gpu_run_until_idle();
        assert!(sim.devcoredumps().is_empty(), "{mode:?}");

        let bo = Bo::new(&dev, 64 << 10, BoFlags::SHARED | BoFlags::WC).unwrap();
        let m = vm.map_bo(k, &bo).unwrap();
        let wrong = GpuBuffer { size_B: 4096, ..m };
        assert!(vm.unmap_bo(k, wrong, &[]).is_err(), "{mode:?}");
        vm.unmap_bo(k, m, &[]).unwrap();
        assert!(
            vm.unmap_bo(k, m, &[]).is_err(),
            "{mode:?}: unmapped once only"
        );
        drop(bo);
        vm.free_buffer(k, b, &[], false).unwrap();
        close_clean_shared(&sim, file, dev, vm, &format!("{mode:?}"));
    }
}

/// A command or a declared use whose range wraps past 2^64 is EINVAL and the VM goes on. Found
/// by the c_abi fuzz target: a `uses` entry of (2^64 - 4096, 2^64 - 4096) overflowed the VM_BIND
/// wait computation (a panic under overflow checks); the legacy command lookup had the same sum
/// on a command's address, which wrapped into "inside the last buffer" without the checks.
#[test]
fn a_submit_range_that_wraps_past_2_64_is_einval() {
    use msm_winsys::ErrnoError;
    for (mode, options) in common::vm_modes() {
        let (sim, file, dev) = device_with_file(options);
        let k = dev.kernel();
        let vm = GpuVm::new(&dev).unwrap();
        let last = u64::MAX - 4095;
        let e = vm.submit(k, 0, &[(last, 8192)], &[], &[], &[]).unwrap_err();
        assert_eq!(e.errno(), msm_winsys::Errno::EINVAL, "{mode:?}: {e}");
        let wraps = GpuBuffer {
            handle: 1,
            iova: last,
            size_B: last,
        };
        if mode == VmMode::VmBind {
            let e = vm.submit(k, 0, &[], &[wraps], &[], &[]).unwrap_err();
            assert_eq!(e.errno(), msm_winsys::Errno::EINVAL, "{e}");
            assert!(e.to_string().contains("overflows the address space"), "{e}");
        }
        let b = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
        vm.submit(k, 0, &[(b.iova, 64)], &[b], &[], &[]).unwrap();
        sim.gpu_run_until_idle();
        assert!(sim.devcoredumps().is_empty(), "{mode:?}");
        vm.free_buffer(k, b, &[], false).unwrap();
        close_clean(&sim, file, dev, vm, &format!("{mode:?}"));
    }
}

/// Kernel-iova mode: every file shares the kernel's one VM, and a handle close in any file unmaps
/// the object there for all (msm_gem_close -> put_iova_spaces on the file's VM, which without
/// per-process page tables is the global one). An importer's buffer loses its address when the
/// exporter closes its handle, and GET_IOVA hands that address to the next object. The importer's
/// VM must take the first buffer out of its BO table, map the second, and still let the driver
/// unmap the first (found by piglit's ext_external_objects-vk-image-overwrite on
/// freedreno-on-msm-winsys: the unmap was EINVAL and the next submits EINVAL).
#[test]
fn kernel_iova_mode_survives_an_exporter_taking_the_address_away() {
    use msm_winsys::bo::{Bo, BoFlags};
    use std::os::fd::AsFd;
    use std::sync::Arc;
    let options = SimOptions {
        per_process_pgtables: false,
        ..Default::default()
    };
    let (sim, file, dev) = device_with_file(options);
    let dev = Arc::new(dev);
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let exporter_file = Arc::new(sim.open().unwrap());
    let exporter =
        Arc::new(Device::new(Box::new(exporter_file.clone()), ProbeOptions::default()).unwrap());
    let ek = exporter.kernel();

    let first = Bo::new(&exporter, 64 << 10, BoFlags::SHARED | BoFlags::WC).unwrap();
    let first_at = ioctl::gem_info_value(ek, first.handle(), MSM_INFO_GET_IOVA, 0).unwrap();
    let fd = first.export_dmabuf().unwrap();
    let imported = Bo::import_dmabuf(&dev, fd.as_fd()).unwrap();
    let a = vm.map_bo(k, &imported).unwrap();
    assert_eq!(a.iova, first_at, "one VM: the exporter's address");
    drop(imported);
    drop(fd);
    // The exporter closes its handle: the object's one mapping goes, for the importer too.
    drop(first);
    assert!(!file.gpu_mapped(a.iova, a.size_B));

    let second = Bo::new(&exporter, 64 << 10, BoFlags::SHARED | BoFlags::WC).unwrap();
    let second_at = ioctl::gem_info_value(ek, second.handle(), MSM_INFO_GET_IOVA, 0).unwrap();
    assert_eq!(second_at, a.iova, "the kernel hands the address out again");
    let fd = second.export_dmabuf().unwrap();
    let imported = Bo::import_dmabuf(&dev, fd.as_fd()).unwrap();
    let b = vm.map_bo(k, &imported).unwrap();
    assert_eq!(b.iova, a.iova);
    assert_ne!(b.handle, a.handle);
    // Submits name only the buffer that is mapped there now.
    vm.submit(k, 0, &[(b.iova, 64)], &[b], &[], &[]).unwrap();
    sim.gpu_run_until_idle();
    assert!(sim.devcoredumps().is_empty(), "{:?}", sim.devcoredumps());
    // The driver releases the first buffer as it would have: only its handle goes.
    vm.unmap_bo(k, a, &[]).unwrap();
    vm.flush(k).unwrap();
    assert!(
        file.gpu_mapped(b.iova, b.size_B),
        "the second buffer keeps its mapping"
    );
    let e = vm.unmap_bo(k, a, &[]).unwrap_err();
    assert_eq!(msm_winsys::ErrnoError::errno(&e), msm_winsys::Errno::EINVAL);
    // The second buffer is mapped again after its unmap, at its (kernel-kept) address.
    vm.unmap_bo(k, b, &[]).unwrap();
    let again = vm.map_bo(k, &imported).unwrap();
    assert_eq!(again.iova, b.iova);
    vm.unmap_bo(k, again, &[]).unwrap();
    // A private buffer of this VM loses its address the same way when another file that imported
    // it closes its handle; its free is still accepted and closes the handle.
    let private = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
    let private_fd = ioctl::prime_handle_to_fd(k, private.handle).unwrap();
    let h = ioctl::prime_fd_to_handle(ek, std::os::fd::AsRawFd::as_raw_fd(&private_fd)).unwrap();
    ioctl::gem_info_value(ek, h, MSM_INFO_GET_IOVA, 0).unwrap();
    ioctl::gem_close(ek, h).unwrap();
    drop(private_fd);
    let next = vm.create_buffer(k, 4096, MSM_BO_WC).unwrap();
    assert_eq!(
        next.iova, private.iova,
        "the kernel hands the address out again"
    );
    vm.free_buffer(k, private, &[], false).unwrap();
    vm.submit(k, 0, &[(next.iova, 64)], &[next], &[], &[])
        .unwrap();
    sim.gpu_run_until_idle();
    assert!(sim.devcoredumps().is_empty(), "{:?}", sim.devcoredumps());
    vm.free_buffer(k, next, &[], false).unwrap();
    drop(imported);
    drop(fd);
    drop(second);
    drop(exporter);
    let report = Arc::try_unwrap(exporter_file)
        .expect("the exporter let go of its file")
        .close();
    assert!(report.is_empty(), "exporter: {report:?}");
    close_clean_shared(&sim, file, dev, vm, "kernel iova, address taken away");
}

/// A free waiting for a syncobj the driver owns (not one this VM's submits signal) that the
/// driver destroys before the free is flushed: the VM took the fence into its own timeline at the
/// free, so the unmap still waits for the GPU and then goes. Before, the flush's query of the
/// destroyed syncobj failed every flush (VM_BIND), or the zombie waited for `destroy` (legacy).
/// The same for a binary syncobj, whose fence no query can see.
#[test]
fn a_free_waiting_for_a_syncobj_the_driver_destroys_still_completes() {
    for (mode, options) in common::vm_modes() {
        for binary in [false, true] {
            let (sim, file, dev) = device_with_file(options.clone());
            let k = dev.kernel();
            let vm = GpuVm::new(&dev).unwrap();
            let b = vm.create_buffer(k, 65536, MSM_BO_WC).unwrap();
            let t = ioctl::syncobj_create(k, false).unwrap();
            vm.submit(k, 0, &[(b.iova, 64)], &[b], &[], &at(t, 1))
                .unwrap();
            // The driver's own syncobj, carrying the submit's fence.
            let s = ioctl::syncobj_create(k, false).unwrap();
            let point = u64::from(!binary);
            ioctl::syncobj_transfer(
                k,
                SyncPoint {
                    handle: t,
                    point: 1,
                },
                SyncPoint { handle: s, point },
            )
            .unwrap();
            vm.free_buffer(k, b, &at(s, point), false).unwrap();
            ioctl::syncobj_destroy(k, s).unwrap();
            vm.flush(k).unwrap();
            // VM_BIND: the unmap job waits in the kernel for the fence (no devcoredump below).
            if mode != VmMode::VmBind {
                assert!(
                    file.gpu_mapped(b.iova, b.size_B),
                    "{mode:?}: unmapped while the GPU may use it"
                );
            }
            sim.gpu_run_until_idle();
            vm.flush(k).unwrap();
            sim.gpu_run_until_idle();
            assert!(
                !file.gpu_mapped(b.iova, b.size_B),
                "{mode:?}, binary {binary}: the free never completed"
            );
            assert!(sim.devcoredumps().is_empty(), "{:?}", sim.devcoredumps());
            ioctl::syncobj_destroy(k, t).unwrap();
            close_clean(&sim, file, dev, vm, &format!("{mode:?}"));
        }
    }
}

/// VM_BIND: a driver that only submits and frees, and never flushes the VM (freedreno's backend),
/// must get freed addresses back. The ranges a submit's flush released went back to the
/// allocator only at a flush, and an allocation with no room failed with ENOSPC with every
/// address freed (found measuring fbo-readpixels on a618: the 256th 16 MiB buffer). Now a
/// submit hands them back, and an allocation with no room flushes, waits for the GPU and
/// tries again.
#[test]
fn a_driver_that_never_flushes_gets_its_freed_addresses_back() {
    let sim = Sim::with_options("a618", SimOptions::default()).unwrap();
    let file = std::sync::Arc::new(sim.open().unwrap());
    let dev = Device::new(Box::new(file.clone()), ProbeOptions::default()).unwrap();
    assert_eq!(dev.info().mode, VmMode::VmBind);
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let size_B = dev.info().va_size_B / 8;
    let done = ioctl::syncobj_create(k, false).unwrap();
    for i in 1..=32u64 {
        let b = vm
            .create_buffer(k, size_B, MSM_BO_WC)
            .unwrap_or_else(|e| panic!("buffer {i}: {e}"));
        vm.submit(k, 0, &[(b.iova, 64)], &[b], &[], &at(done, i))
            .unwrap();
        vm.free_buffer(k, b, &at(done, i), false).unwrap();
    }
    ioctl::syncobj_timeline_wait(k, &at(done, 32), i64::MAX).unwrap();
    assert!(sim.devcoredumps().is_empty(), "{:?}", sim.devcoredumps());
    vm.destroy(k).unwrap();
    ioctl::syncobj_destroy(k, done).unwrap();
    assert!(sim.gpu_wait_idle(std::time::Duration::from_secs(10)));
    let report = close_file(file, dev);
    assert!(report.is_empty(), "{report:?}");
}

/// A buffer too large to ever be pinned (16 TiB: ENOMEM at every MAP) is planned as thousands of
/// jobs (its page tables are far past the kernel's throttle bound). Once its MAP is dropped after
/// three refused flushes, the other pieces go with it, and a free drops whatever is left: before,
/// every piece was sent (and refused) on its own, or emptied jobs went out one ioctl each, 8,225
/// VM_BINDs for this buffer and minutes for a larger one (found by the c_abi fuzz target: a
/// timeout on a 165 TiB buffer).
#[test]
fn a_map_that_can_never_be_pinned_costs_a_few_ioctls() {
    for free_first in [false, true] {
        let (sim, file, dev) = device_with_file(SimOptions::default());
        let k = dev.kernel();
        let vm = GpuVm::new(&dev).unwrap();
        let b = vm.create_buffer(k, 1 << 44, MSM_BO_WC).unwrap();
        for _ in 0..2 {
            let e = vm.flush(k).unwrap_err();
            assert_eq!(msm_winsys::ErrnoError::errno(&e), msm_winsys::Errno::ENOMEM);
        }
        if free_first {
            vm.free_buffer(k, b, &[], false).unwrap();
        } else {
            // The third refusal drops the MAP, every piece of it.
            let e = vm.flush(k).unwrap_err();
            assert_eq!(msm_winsys::ErrnoError::errno(&e), msm_winsys::Errno::ENOMEM);
            vm.flush(k).unwrap();
            vm.free_buffer(k, b, &[], false).unwrap();
        }
        vm.flush(k).unwrap();
        let s = vm.bind_vm().unwrap().stats();
        assert!(s.vm_bind_ioctls <= 6, "free first {free_first}: {s:?}");
        close_clean(&sim, file, dev, vm, &format!("free first {free_first}"));
    }
}

/// A submit whose bind the kernel refuses with ENOMEM fails and leaves the MAP queued; the
/// driver then frees the buffer (its only submit failed, so it names no user) and tears the
/// device down: nothing may be left, and no op may name a closed handle. Found by
/// ci/fault-sweep (`VM_BIND:5:ENOMEM` on piglit's fbo-blit, freedreno on msm-winsys: the final
/// flush failed with EINVAL and 26 VMAs stayed) and by the c_abi fuzz target (finding 9: a
/// 2^47-byte buffer, which can never be pinned).
#[test]
fn a_buffer_freed_after_its_map_was_refused_leaves_nothing() {
    let (sim, file, dev, vm, buf) = a_buffer_whose_map_was_refused();
    vm.free_buffer(dev.kernel(), buf, &[], false).unwrap();
    close_clean(&sim, file, dev, vm, "");
}

/// A VM_BIND-mode buffer whose first submit failed: the kernel refused its MAP with ENOMEM,
/// which stays planned, unsent, for the next flush.
fn a_buffer_whose_map_was_refused() -> (
    Sim,
    std::sync::Arc<msm_winsys::sim::SimFile>,
    Device,
    GpuVm,
    GpuBuffer,
) {
    let (sim, file, dev) = device_with_file(SimOptions::default());
    let k = dev.kernel();
    let vm = GpuVm::new(&dev).unwrap();
    let buf = vm.create_buffer(k, 65536, MSM_BO_WC).unwrap();
    inject_enomem(&sim, "VM_BIND", 1);
    let e = vm
        .submit(k, 0, &[(buf.iova, 64)], &[buf], &[], &[])
        .unwrap_err();
    assert_eq!(msm_winsys::ErrnoError::errno(&e), msm_winsys::Errno::ENOMEM);
    (sim, file, dev, vm, buf)
}

/// The same refused MAP, then the driver parks the buffer in its own cache (DONTNEED) before
/// any other flush: the MAP must reach the kernel first, since VM_BIND refuses to pin a
/// DONTNEED object (EBUSY, which loses the VM). Found by ci/fault-sweep (`VM_BIND:4:ENOMEM` on
/// piglit's fbo-blit, freedreno on msm-winsys).
#[test]
fn a_buffer_parked_after_its_map_was_refused_is_mapped_first() {
    let (sim, file, dev, vm, buf) = a_buffer_whose_map_was_refused();
    let k = dev.kernel();
    vm.madvise(k, buf, false).unwrap();
    vm.flush(k).unwrap();
    sim.gpu_run_until_idle();
    assert_eq!(
        file.vm_mappings().len(),
        1,
        "the MAP went out before DONTNEED"
    );
    assert!(vm.madvise(k, buf, true).unwrap(), "still retained");
    vm.free_buffer(k, buf, &[], false).unwrap();
    close_clean(&sim, file, dev, vm, "");
}

/// An unmap of a shared buffer whose users name a syncobj that does not exist is refused and
/// changes nothing, as a free is: accepted, its unmap (or zombie) could never be flushed, every
/// later flush failed with ENOENT, and destroy left the mappings to the file's close (found by
/// the c_abi fuzz target).
#[test]
fn an_unmap_waiting_for_a_syncobj_that_does_not_exist_is_refused() {
    use msm_winsys::bo::{Bo, BoFlags};
    for (mode, options) in common::vm_modes() {
        let (sim, file, dev) = device_with_file(options);
        let dev = std::sync::Arc::new(dev);
        let k = dev.kernel();
        let vm = GpuVm::new(&dev).unwrap();
        let bo = Bo::new(&dev, 4096, BoFlags::SHARED | BoFlags::WC).unwrap();
        let buf = vm.map_bo(k, &bo).unwrap();
        drop(bo);
        let e = vm.unmap_bo(k, buf, &at(0xffff_ff00, 75)).unwrap_err();
        assert_eq!(
            msm_winsys::ErrnoError::errno(&e),
            msm_winsys::Errno::ENOENT,
            "{mode:?}"
        );
        vm.flush(k).unwrap();
        vm.unmap_bo(k, buf, &[]).unwrap();
        close_clean_shared(&sim, file, dev, vm, &format!("{mode:?}"));
    }
}
