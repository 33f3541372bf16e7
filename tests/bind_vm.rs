//! The winsys's VM_BIND path on the kernel model: batching, cancelling, per-buffer bind waits,
//! deferred unmaps, the ENOMEM fallback and device loss that explains itself.

mod common;

use std::time::Duration;

use common::{file_with, readable};
use msm_winsys::bind::{BindError, BindOp, BindVm};
use msm_winsys::kernel::ioctl::{self, SyncPoint};
use msm_winsys::sim::{Clock, Injection, SimFile, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::Errno;

const VA: u64 = 0x1_0000_0000;
const K: u64 = 4096;

fn vm_bind_file(clock: Clock) -> SimFile {
    let f = file_with(
        "a750",
        SimOptions {
            clock,
            ..Default::default()
        },
    );
    ioctl::set_param(&f, MSM_PARAM_EN_VM_BIND, 1).unwrap();
    f
}

fn bo(f: &SimFile, size: u64) -> u32 {
    ioctl::gem_new(f, size, MSM_BO_WC).unwrap()
}

#[test]
fn many_buffer_maps_become_one_sorted_job_with_minimal_prealloc() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    // 100 buffers of 16 KiB, queued in a scrambled order.
    let mut order: Vec<u64> = (0..100).collect();
    order.reverse();
    order.swap(3, 70);
    let mut handles = vec![];
    for i in order {
        handles.push(bo(&f, 16 * K));
        vm.map(BindOp::map(
            VA + i * 16 * K,
            16 * K,
            *handles.last().unwrap(),
            0,
        ));
    }
    vm.flush(&f).unwrap();
    let s = vm.stats();
    assert_eq!(s.vm_bind_ioctls, 1);
    assert_eq!(s.ops_sent, 100, "different buffers cannot merge");
    // 6.25 MiB of contiguous addresses in one group: 4 last-level tables + 1 + 1, exactly the
    // tables the mappings need (sent one by one, unsorted, they would cost 3 each: 300).
    assert_eq!(f.last_prealloc(), 6);
    assert_eq!(s.prealloc_pages, 6);
    f.sim().gpu_run_until_idle();
    assert_eq!(f.vm_mappings().len(), 100);
    finish(f, vm, &handles);
}

#[test]
fn a_buffer_freed_before_its_map_was_flushed_costs_no_ioctl_and_frees_at_once() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let h = bo(&f, 64 * K);
    vm.map(BindOp::map(VA, 64 * K, h, 0));
    vm.unmap_freed(VA, 64 * K, &[]);
    let released = vm.flush(&f).unwrap();
    assert_eq!(vm.stats().vm_bind_ioctls, 0);
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].fence, None);
    finish(f, vm, &[h]);
}

#[test]
fn the_unmap_of_a_freed_buffer_waits_for_its_users_and_its_range_returns_after_it() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let h = bo(&f, 64 * K);
    vm.map(BindOp::map(VA, 64 * K, h, 0));
    vm.flush(&f).unwrap();
    // A submit that uses the buffer and signals a syncobj when done.
    let done = ioctl::syncobj_create(&f, false).unwrap();
    vm.submit(
        &f,
        0,
        &[(VA, 64)],
        &[(VA, 64 * K)],
        &[],
        &[SyncPoint {
            handle: done,
            point: 0,
        }],
    )
    .unwrap();
    vm.unmap_freed(
        VA,
        64 * K,
        &[SyncPoint {
            handle: done,
            point: 0,
        }],
    );
    let released = vm.flush(&f).unwrap();
    let fence = released[0]
        .fence
        .expect("the range returns after the unmap job");
    assert_eq!(fence.handle, vm.timelines()[1]);
    // Nothing has run: the map job, then the submit, then the unmap job, in that order.
    assert!(f.sim().gpu_step());
    assert!(f.pte(VA).is_some(), "mapped once the map job ran");
    f.sim().gpu_run_until_idle();
    assert!(f.pte(VA).is_none(), "unmapped once the submit was done");
    assert_eq!(ioctl::syncobj_query(&f, fence.handle).unwrap(), fence.point);
    assert!(
        f.sim().devcoredumps().is_empty(),
        "the submit never saw an unmapped address"
    );
    ioctl::syncobj_destroy(&f, done).unwrap();
    finish(f, vm, &[h]);
}

#[test]
fn a_submit_waits_only_for_the_bind_that_mapped_what_it_uses() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let handles = [bo(&f, 64 * K), bo(&f, 64 * K)];
    vm.map(BindOp::map(VA, 64 * K, handles[0], 0));
    vm.flush(&f).unwrap(); // map job 1
    vm.map(BindOp::map(VA + (1 << 30), 64 * K, handles[1], 0));
    vm.flush(&f).unwrap(); // map job 2, unrelated
    let waits = vm.waits_for(&f, &[(VA, 64 * K)]).unwrap();
    assert_eq!(
        waits,
        vec![SyncPoint {
            handle: vm.timelines()[0],
            point: 1
        }]
    );
    f.sim().gpu_run_until_idle();
    finish(f, vm, &handles);
}

#[test]
fn a_submit_flushes_pending_binds_of_what_it_uses() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let h = bo(&f, 64 * K);
    vm.map(BindOp::map(VA, 64 * K, h, 0));
    vm.submit(&f, 0, &[(VA, 64)], &[], &[], &[]).unwrap();
    assert_eq!(vm.pending_ops(), 0);
    f.sim().gpu_run_until_idle();
    assert!(f.sim().devcoredumps().is_empty());
    finish(f, vm, &[h]);
}

#[test]
fn enomem_falls_back_to_smaller_jobs_keeping_the_effect() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let handles: Vec<u32> = (0..8).map(|_| bo(&f, 64 * K)).collect();
    for (i, &h) in (0..).zip(&handles) {
        vm.map(BindOp::map(VA + i * (64 << 20), 64 * K, h, 0));
    }
    f.sim().inject(Injection {
        point: "VM_BIND".into(),
        nth: 1,
        errno: Errno::ENOMEM,
    });
    vm.flush(&f).unwrap();
    assert_eq!(vm.stats().enomem_fallbacks, 1);
    f.sim().gpu_run_until_idle();
    assert_eq!(f.vm_mappings().len(), 8);
    finish(f, vm, &handles);
}

#[test]
fn enomem_down_to_one_op_per_ioctl() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let handles: Vec<u32> = (0..4).map(|_| bo(&f, 64 * K)).collect();
    for (i, &h) in (0..).zip(&handles) {
        vm.map(BindOp::map(VA + i * (64 << 20), 64 * K, h, 0));
    }
    // The whole job (call 1) and both halves (calls 2 and 5) fail: the four ops go one by one.
    for n in [1, 2, 5] {
        f.sim().inject(Injection {
            point: "VM_BIND".into(),
            nth: n,
            errno: Errno::ENOMEM,
        });
    }
    vm.flush(&f).unwrap();
    let s = vm.stats();
    assert_eq!(s.enomem_fallbacks, 3);
    assert_eq!(s.vm_bind_ioctls, 3 + 4);
    f.sim().gpu_run_until_idle();
    assert_eq!(f.vm_mappings().len(), 4);
    finish(f, vm, &handles);
}

#[test]
fn a_lost_vm_reports_its_last_operations_and_the_devcoredump() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let handles = [bo(&f, 64 * K), bo(&f, 64 * K)];
    vm.map(BindOp::map(VA, 64 * K, handles[0], 0));
    vm.flush(&f).unwrap();
    f.sim().gpu_run_until_idle();
    // A job that reads an unmapped address (address 0: the model injects it) faults; the VM
    // becomes unusable. A command buffer outside every mapping the winsys refuses up front.
    f.sim().inject(Injection {
        point: "SUBMIT:fault".into(),
        nth: 1,
        errno: Errno::EIO,
    });
    vm.submit(&f, 0, &[(VA, 64)], &[], &[], &[]).unwrap();
    f.sim().gpu_run_until_idle();
    vm.map(BindOp::map(VA + (2 << 20), 64 * K, handles[1], 0));
    match vm.flush(&f) {
        Err(BindError::DeviceLost(r)) => {
            assert!(
                r.recent_ops
                    .iter()
                    .any(|l| l.starts_with("map 0x0001000000")),
                "{:?}",
                r.recent_ops
            );
            let dump = r.devcoredump.clone().expect("the model left a devcoredump");
            assert!(dump.contains(&format!("iova={:#018x}", 0)), "{dump}");
            let text = BindError::DeviceLost(r).to_string();
            assert!(
                text.contains("device lost") && text.contains("last VM operations"),
                "{text}"
            );
        }
        other => panic!("expected device loss, got {other:?}"),
    }
    // And it stays lost.
    assert!(matches!(vm.flush(&f), Err(BindError::DeviceLost(_))));
    assert!(matches!(
        vm.submit(&f, 0, &[(VA, 64)], &[], &[], &[]),
        Err(BindError::DeviceLost(_))
    ));
    // An unusable VM takes no more VM_BIND: its one mapping goes only with the file's close.
    vm.destroy(&f).unwrap();
    for h in handles {
        ioctl::gem_close(&f, h).unwrap();
    }
    let report = f.close();
    assert_eq!(report.vmas, vec![(VA, 64 * K)], "{report:?}");
    assert!(report.handles.is_empty() && report.queues.is_empty() && report.syncobjs == 0);
}

#[test]
fn jobs_stay_within_the_budget_and_the_kernel_throttle_never_stalls() {
    let f = vm_bind_file(Clock::Async {
        latency: Duration::from_micros(200),
    });
    let vm = BindVm::new(1024);
    let h = bo(&f, 64 * K);
    // 2000 scattered 64 KiB maps: ~3 pages each, so ~6000 pages in at least 6 jobs.
    for i in 0..2000u64 {
        vm.map(BindOp::map(
            VA + ((i * 7919) % 4096) * (4 << 20),
            64 * K,
            h,
            0,
        ));
    }
    vm.flush(&f).unwrap();
    let s = vm.stats();
    assert!(s.jobs >= 6, "{s:?}");
    assert!(f.last_prealloc() <= 1024);
    assert!(f.sim().gpu_wait_idle(Duration::from_secs(10)));
    assert_eq!(f.vm_mappings().len(), 2000);
    let (in_flight, waiters) = f.prealloc_in_flight();
    assert_eq!((in_flight, waiters), (0, 0));
    finish(f, vm, &[h]);
}

#[test]
fn flush_ready_holds_unmaps_of_busy_buffers_and_sends_them_with_the_next_frame_once_idle() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let frame = ioctl::syncobj_create(&f, false).unwrap();
    let handles = [bo(&f, 64 * K), bo(&f, 64 * K)];
    vm.map(BindOp::map(VA, 64 * K, handles[0], 0));
    vm.submit(
        &f,
        0,
        &[(VA, 64)],
        &[],
        &[],
        &[SyncPoint {
            handle: frame,
            point: 1,
        }],
    )
    .unwrap();
    // The buffer is freed while its submit has not run; the next frame's buffer is created.
    vm.unmap_freed(
        VA,
        64 * K,
        &[SyncPoint {
            handle: frame,
            point: 1,
        }],
    );
    vm.map(BindOp::map(VA + (1 << 20), 64 * K, handles[1], 0));
    let ioctls = vm.stats().vm_bind_ioctls;
    assert!(
        vm.flush_ready(&f).unwrap().is_empty(),
        "the freed range is not released yet"
    );
    assert_eq!(
        vm.stats().vm_bind_ioctls,
        ioctls + 1,
        "one job: the new map alone"
    );
    assert_eq!(
        vm.pending_ops(),
        1,
        "the unmap waits in the winsys, not in a bind job"
    );
    f.sim().gpu_run_until_idle();
    // The submit is done: the unmap rides the map queue, no in-fences needed.
    let released = vm.flush_ready(&f).unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].fence.map(|p| p.handle), Some(vm.timelines()[0]));
    f.sim().gpu_run_until_idle();
    assert!(f.pte(VA).is_none());
    assert!(f.sim().devcoredumps().is_empty());
    ioctl::syncobj_destroy(&f, frame).unwrap();
    finish(f, vm, &handles);
}

/// Unmaps everything, waits for the GPU, releases the queues and closes the file: the model's
/// leak report must then be empty.
fn finish(f: SimFile, vm: BindVm, handles: &[u32]) {
    for op in vm.mapped() {
        vm.unmap_freed(op.iova, op.range_B, &[]);
    }
    vm.flush(&f).unwrap();
    f.sim().gpu_run_until_idle();
    assert!(f.sim().gpu_wait_idle(Duration::from_secs(10)));
    vm.destroy(&f).unwrap();
    for &h in handles {
        ioctl::gem_close(&f, h).unwrap();
    }
    let report = f.close();
    assert!(report.is_empty(), "leaks: {report:?}");
}

#[test]
fn a_failed_setup_releases_the_queues_and_timelines_it_made() {
    // Found by ci/fault-sweep: vkCreateDevice failing on the second VM_BIND queue or a timeline
    // left the others on the file. SUBMITQUEUE_NEW and SYNCOBJ_CREATE allocate (kzalloc /
    // drm_syncobj_create: ENOMEM). The queues are made by the first flush with a job; a refused
    // one leaves the ops queued, and the next flush makes them and sends.
    for (point, nth) in [
        ("SUBMITQUEUE_NEW", 2),
        ("SYNCOBJ_CREATE", 1),
        ("SYNCOBJ_CREATE", 2),
    ] {
        let f = vm_bind_file(Clock::Manual);
        f.sim().inject(Injection {
            point: point.into(),
            nth,
            errno: Errno::ENOMEM,
        });
        let vm = BindVm::new(1024);
        let h = bo(&f, 64 * K);
        vm.map(BindOp::map(VA, 64 * K, h, 0));
        assert!(matches!(
            vm.flush(&f),
            Err(BindError::Kernel(e)) if e.errno == Errno::ENOMEM
        ));
        assert_eq!(vm.pending_ops(), 1, "{point}:{nth}");
        vm.flush(&f).unwrap();
        assert_eq!(vm.stats().jobs, 1);
        vm.unmap_freed(VA, 64 * K, &[]);
        vm.flush(&f).unwrap();
        ioctl::gem_close(&f, h).unwrap();
        vm.destroy(&f).unwrap();
        let report = f.close();
        assert!(report.is_empty(), "{point}:{nth}: {report:?}");
    }
}

#[test]
fn a_vm_that_binds_nothing_makes_no_queue() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    // A buffer made and freed between two flushes: its map and unmap cancel out.
    let h = bo(&f, 64 * K);
    vm.map(BindOp::map(VA, 64 * K, h, 0));
    vm.unmap_freed(VA, 64 * K, &[]);
    vm.flush(&f).unwrap();
    assert_eq!(vm.timelines(), [0, 0]);
    assert_eq!(vm.stats().vm_bind_ioctls, 0);
    ioctl::gem_close(&f, h).unwrap();
    vm.destroy(&f).unwrap();
    assert!(f.close().is_empty());
}

#[test]
fn a_full_cycle_leaves_nothing_behind() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let handles: Vec<u32> = (0..16).map(|_| bo(&f, 64 * K)).collect();
    for (i, &h) in handles.iter().enumerate() {
        vm.map(BindOp::map(VA + i as u64 * 64 * K, 64 * K, h, 0));
    }
    let done = ioctl::syncobj_create(&f, false).unwrap();
    vm.submit(
        &f,
        0,
        &[(VA, 64)],
        &[(VA, 16 * 64 * K)],
        &[],
        &[SyncPoint {
            handle: done,
            point: 1,
        }],
    )
    .unwrap();
    f.sim().gpu_run_until_idle();
    ioctl::syncobj_destroy(&f, done).unwrap();
    finish(f, vm, &handles);
}

#[test]
fn submit_takes_and_gives_sync_files() {
    use std::os::fd::AsRawFd;
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let h = bo(&f, 64 * K);
    vm.map(BindOp::map(VA, 64 * K, h, 0));
    let fences = ioctl::Fences {
        fence_fd_out: true,
        ..Default::default()
    };
    let (_, out) = vm.submit_with(&f, 0, &[(VA, 64)], &[], fences).unwrap();
    let out = out.expect("an out-fence sync file");
    // The next submit waits for the first through its sync file.
    let fences = ioctl::Fences {
        fence_fd_in: Some(out.as_raw_fd()),
        ..Default::default()
    };
    vm.submit_with(&f, 0, &[(VA, 64)], &[], fences).unwrap();
    assert!(
        !readable(out.as_raw_fd()),
        "not signalled before the GPU ran"
    );
    f.sim().gpu_run_until_idle();
    assert!(readable(out.as_raw_fd()));
    drop(out);
    finish(f, vm, &[h]);
}

/// A submit whose use is the whole address range (a driver keeping every buffer resident, as
/// turnip does) waits for the newest bind of each queue, found without walking the mappings,
/// and runs without a fault; a smaller range still waits only for the binds it touches.
#[test]
fn a_whole_range_use_waits_for_the_newest_binds() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let handles = [bo(&f, 64 * K), bo(&f, 64 * K)];
    vm.map(BindOp::map(VA, 64 * K, handles[0], 0));
    vm.flush(&f).unwrap();
    vm.map(BindOp::map(VA + (1 << 20), 64 * K, handles[1], 0));
    vm.flush(&f).unwrap();
    let everything = [(VA, 1u64 << 40)];
    let waits = vm.waits_for(&f, &everything).unwrap();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!(waits[0].point, 2, "the second (newest) map job");
    // Only the first buffer: its own job, the first point.
    let first = vm.waits_for(&f, &[(VA, 64 * K)]).unwrap();
    assert_eq!(first.iter().map(|p| p.point).collect::<Vec<_>>(), [1]);
    vm.submit(&f, 0, &[(VA + (1 << 20), 64)], &everything, &[], &[])
        .unwrap();
    f.sim().gpu_run_until_idle();
    assert!(f.sim().devcoredumps().is_empty());
    finish(f, vm, &handles);
}

/// The kernel refuses a one-op VM_BIND with ENOMEM at the ioctl (the op array's allocation), at
/// pinning the BO's pages or at preallocating page tables; all of these come before any op is
/// applied, so the VM is unchanged and usable (msm_ioctl_vm_bind: only a failed op i > 0 or a
/// failed job marks it unusable). Found by ci/fault-sweep (`VM_BIND:pin|prealloc:6:ENOMEM`):
/// the winsys declared the device lost. The refused op is sent again by the next flush.
#[test]
fn a_one_op_bind_refused_with_enomem_is_not_a_loss_and_the_next_flush_sends_it() {
    for point in ["VM_BIND", "VM_BIND:pin", "VM_BIND:prealloc"] {
        let f = vm_bind_file(Clock::Manual);
        let vm = BindVm::new(1024);
        let h = bo(&f, 64 * K);
        vm.map(BindOp::map(VA, 64 * K, h, 0));
        f.sim().inject(Injection {
            point: point.into(),
            nth: 1,
            errno: Errno::ENOMEM,
        });
        match vm.flush(&f) {
            Err(BindError::Kernel(e)) if e.errno == Errno::ENOMEM => {}
            other => panic!("{point}: expected ENOMEM, got {other:?}"),
        }
        f.sim().gpu_run_until_idle();
        assert!(f.vm_mappings().is_empty(), "{point}: nothing was mapped");
        assert_eq!(vm.stats().ops_sent, 0, "{point}");
        vm.flush(&f).unwrap();
        f.sim().gpu_run_until_idle();
        assert_eq!(f.vm_mappings().len(), 1, "{point}");
        assert_eq!(vm.stats().ops_sent, 1, "{point}");
        assert_eq!(vm.stats().jobs, 1, "{point}");
        finish(f, vm, &[h]);
    }
}

/// A teardown's unmaps refused down to one op per ioctl (ENOMEM at the whole job, at its first
/// half and at one single op): the ops the kernel took stay done, the rest stay queued and the
/// next flush sends them, signalling the job's point, so every VMA is released and the freed
/// ranges come back with that point as their fence. Found by ci/fault-sweep
/// (`VM_BIND:6:ENOMEM` on vk_churn: "the VM state is unknown", 37 VMAs left at close).
#[test]
fn teardown_unmaps_refused_with_enomem_are_sent_by_the_next_flush() {
    // (injected VM_BIND calls, unmaps the kernel took before the single refused op)
    for (calls, taken) in [([1, 2, 3], 0usize), ([1, 2, 4], 1)] {
        let f = vm_bind_file(Clock::Manual);
        let vm = BindVm::new(1024);
        let handles: Vec<u32> = (0..4).map(|_| bo(&f, 64 * K)).collect();
        let at = |i: u64| VA + i * (64 << 20);
        for (i, &h) in (0..).zip(&handles) {
            vm.map(BindOp::map(at(i), 64 * K, h, 0));
        }
        vm.flush(&f).unwrap();
        f.sim().gpu_run_until_idle();
        for i in 0..4 {
            vm.unmap_freed(at(i), 64 * K, &[]);
        }
        for nth in calls {
            f.sim().inject(Injection {
                point: "VM_BIND".into(),
                nth,
                errno: Errno::ENOMEM,
            });
        }
        match vm.flush(&f) {
            Err(BindError::Kernel(e)) if e.errno == Errno::ENOMEM => {}
            other => panic!("{calls:?}: expected ENOMEM, got {other:?}"),
        }
        f.sim().gpu_run_until_idle();
        assert_eq!(f.vm_mappings().len(), 4 - taken, "{calls:?}");
        let unmap_point = vm.last_points();
        let released = vm.flush(&f).unwrap();
        assert_eq!(
            vm.last_points(),
            unmap_point,
            "no new job: the same one, resent"
        );
        assert_eq!(released.len(), 4, "{calls:?}: {released:?}");
        let timelines = vm.timelines();
        for r in &released {
            let p = r.fence.expect("the ranges return after their unmap job");
            assert!(
                timelines.contains(&p.handle) && p.point == unmap_point[0].max(unmap_point[1]),
                "{r:?}"
            );
            assert_eq!(ioctl::syncobj_query(&f, p.handle).unwrap(), p.point - 1);
        }
        f.sim().gpu_run_until_idle();
        assert!(f.vm_mappings().is_empty(), "{calls:?}");
        assert_eq!(vm.stats().ops_sent, 8, "{calls:?}");
        finish(f, vm, &handles);
    }
}

/// A flush whose look at an unmap's users fails (SYNCOBJ_QUERY allocates its handle array in
/// drm_syncobj_array_find: ENOMEM) changes nothing: every queued op stays pending for the next
/// flush. It dropped them all, so a freed buffer's VMA stayed and a new buffer was never mapped.
#[test]
fn a_flush_whose_fence_query_fails_keeps_every_op_pending() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let handles: Vec<u32> = (0..3).map(|_| bo(&f, 64 * K)).collect();
    let at = |i: u64| VA + i * (64 << 20);
    vm.map(BindOp::map(at(0), 64 * K, handles[0], 0));
    vm.map(BindOp::map(at(1), 64 * K, handles[1], 0));
    vm.flush(&f).unwrap();
    let done = ioctl::syncobj_create(&f, false).unwrap();
    let done1 = [SyncPoint {
        handle: done,
        point: 1,
    }];
    vm.submit(&f, 0, &[(at(0), 64)], &[(at(0), 64 * K)], &[], &done1)
        .unwrap();
    vm.unmap_freed(at(0), 64 * K, &done1);
    vm.map(BindOp::map(at(2), 64 * K, handles[2], 0));
    // The unmap's users (the map timeline's progress is not asked with so few pages in flight).
    f.sim().inject(Injection {
        point: "SYNCOBJ_QUERY".into(),
        nth: 1,
        errno: Errno::ENOMEM,
    });
    match vm.flush_ready(&f) {
        Err(BindError::Kernel(e)) if e.errno == Errno::ENOMEM => {}
        other => panic!("expected ENOMEM, got {other:?}"),
    }
    assert_eq!(vm.pending_ops(), 2);
    f.sim().gpu_run_until_idle();
    let released = vm.flush(&f).unwrap();
    assert_eq!(released.len(), 1, "{released:?}");
    f.sim().gpu_run_until_idle();
    let mapped: Vec<u64> = f.vm_mappings().iter().map(|m| m.0).collect();
    assert_eq!(mapped, vec![at(1), at(2)]);
    ioctl::syncobj_destroy(&f, done).unwrap();
    finish(f, vm, &handles);
}

/// A command buffer outside every live mapping would fault and cost the whole VM: the winsys
/// refuses the submit (EINVAL, naming the address), makes no SUBMIT, and the VM stays usable.
/// The same for a command buffer in a freed buffer whose unmap is still held back for its users.
#[test]
fn a_submit_outside_every_mapping_is_refused_and_changes_nothing() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let handles = [bo(&f, 64 * K), bo(&f, 64 * K)];
    vm.map(BindOp::map(VA, 64 * K, handles[0], 0));
    vm.map(BindOp::map(VA + 64 * K, 64 * K, handles[1], 0));
    let refused = |cmd: (u64, u32)| match vm.submit(&f, 0, &[cmd], &[], &[], &[]) {
        Err(BindError::Kernel(e)) => {
            assert_eq!(e.errno, Errno::EINVAL, "{e}");
            assert!(
                e.call.contains(&format!("{:#x}", cmd.0))
                    && (e.call.contains("outside") || e.call.contains("overflows")),
                "{e}"
            );
        }
        other => panic!("expected EINVAL for {cmd:x?}, got {other:?}"),
    };
    refused((VA + (2 << 20), 64));
    refused((VA - 4096, 64));
    // Crossing the end of the last mapping.
    refused((VA + 128 * K - 32, 64));
    refused((u64::MAX - 8, 64));
    match vm.submit(&f, 0, &[(VA, 64)], &[(u64::MAX - 8, 64)], &[], &[]) {
        Err(BindError::Kernel(e)) => assert_eq!(e.errno, Errno::EINVAL, "{e}"),
        other => panic!("an overflowing use: {other:?}"),
    }
    assert_eq!(vm.stats().submits, 0);
    // Two adjacent mappings cover a command buffer spanning both.
    vm.submit(&f, 0, &[(VA + 64 * K - 32, 64)], &[], &[], &[])
        .unwrap();
    f.sim().gpu_run_until_idle();
    // The second buffer is freed while a submit may still use it: its unmap is held back, and a
    // new command buffer there is refused all the same.
    let users = ioctl::syncobj_create(&f, false).unwrap();
    let user = SyncPoint {
        handle: users,
        point: 1,
    };
    vm.submit(&f, 0, &[(VA + 64 * K, 64)], &[], &[], &[user])
        .unwrap();
    vm.unmap_freed(VA + 64 * K, 64 * K, &[user]);
    vm.flush(&f).unwrap();
    refused((VA + 64 * K, 64));
    vm.submit(&f, 0, &[(VA, 64)], &[], &[], &[]).unwrap();
    f.sim().gpu_run_until_idle();
    vm.map(BindOp::unmap(VA, 64 * K));
    vm.flush(&f).unwrap();
    vm.destroy(&f).unwrap();
    f.sim().gpu_run_until_idle();
    ioctl::syncobj_destroy(&f, users).unwrap();
    for h in handles {
        ioctl::gem_close(&f, h).unwrap();
    }
    let report = f.close();
    assert!(report.is_empty(), "{report:?}");
}

/// vkQueueBindSparse with chained batches: the second batch waits for the first's signal. Both
/// go out in one flush, on the wait queue in order, and the job must not wait for a point it
/// signals itself (the kernel has no fence there yet: EINVAL, and the batch would be lost).
#[test]
fn a_sparse_batch_waiting_for_an_earlier_batch_of_the_same_flush_is_sent() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let backing = bo(&f, 64 * K);
    let sync = ioctl::syncobj_create(&f, false).unwrap();
    let at = |point| SyncPoint {
        handle: sync,
        point,
    };
    vm.sparse(&[BindOp::map_null(VA, 256 * K)], &[], &[at(1)]);
    vm.sparse(&[BindOp::map(VA, 64 * K, backing, 0)], &[at(1)], &[at(2)]);
    vm.flush(&f).unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(ioctl::syncobj_query(&f, sync).unwrap(), 2);
    assert!(f.gpu_mapped(VA, 256 * K));
    vm.sparse(&[BindOp::unmap(VA, 256 * K)], &[at(2)], &[at(3)]);
    vm.flush(&f).unwrap();
    f.sim().gpu_run_until_idle();
    vm.destroy(&f).unwrap();
    ioctl::syncobj_destroy(&f, sync).unwrap();
    ioctl::gem_close(&f, backing).unwrap();
    let report = f.close();
    assert!(report.is_empty(), "{report:?}");
}

/// A MAP the kernel refuses on its own every time (ENOMEM for that one op: an object that can
/// never be pinned) would hold back everything queued after it forever: after three refused
/// flushes in a row it is dropped, the range reads as unmapped (a submit there is refused) and
/// the rest goes out. Found by the c_abi fuzz target (a 2^47-byte object).
#[test]
fn a_map_refused_with_enomem_three_flushes_in_a_row_is_dropped() {
    let f = vm_bind_file(Clock::Manual);
    let vm = BindVm::new(1024);
    let handles = [bo(&f, 64 * K), bo(&f, 64 * K)];
    vm.map(BindOp::map(VA, 64 * K, handles[0], 0));
    vm.flush(&f).unwrap();
    // Every pin of the next three VM_BINDs fails.
    for nth in 1..=3 {
        f.sim().inject(Injection {
            point: "VM_BIND:pin".into(),
            nth,
            errno: Errno::ENOMEM,
        });
    }
    vm.map(BindOp::map(VA + (1 << 20), 64 * K, handles[1], 0));
    for _ in 0..3 {
        match vm.flush(&f) {
            Err(BindError::Kernel(e)) => assert_eq!(e.errno, Errno::ENOMEM),
            other => panic!("{other:?}"),
        }
    }
    vm.flush(&f).unwrap();
    f.sim().gpu_run_until_idle();
    assert!(!f.gpu_mapped(VA + (1 << 20), 64 * K));
    match vm.submit(&f, 0, &[(VA + (1 << 20), 64)], &[], &[], &[]) {
        Err(BindError::Kernel(e)) => assert_eq!(e.errno, Errno::EINVAL),
        other => panic!("{other:?}"),
    }
    vm.submit(&f, 0, &[(VA, 64)], &[], &[], &[]).unwrap();
    f.sim().gpu_run_until_idle();
    vm.map(BindOp::unmap(VA, 64 * K));
    vm.flush(&f).unwrap();
    f.sim().gpu_run_until_idle();
    vm.destroy(&f).unwrap();
    for h in handles {
        ioctl::gem_close(&f, h).unwrap();
    }
    let report = f.close();
    assert!(report.is_empty(), "{report:?}");
}
