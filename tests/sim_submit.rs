//! Submitqueues, GEM_SUBMIT, WAIT_FENCE and the simulated GPU in the kernel model, one test per
//! rule of spec/kernel.md ("SUBMITQUEUE", "GEM_SUBMIT, in the kernel's order", "WAIT_FENCE"),
//! each asserting the exact errno; plus deterministic and asynchronous fence tests and GPU faults
//! with their devcoredump.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::submit::Submit;
use common::{abs_timeout, file, file_with, gem_close, queue_new, raw, readable, wc_bo};
use msm_winsys::kernel::{ioctl, Kernel};
use msm_winsys::sim::{Clock, Injection, SimFile, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::Errno;

fn manual(profile: &str) -> SimFile {
    file_with(
        profile,
        SimOptions {
            clock: Clock::Manual,
            ..Default::default()
        },
    )
}

fn queue_close(k: &dyn Kernel, mut id: u32) -> Result<(), Errno> {
    raw(k, DRM_IOCTL_MSM_SUBMITQUEUE_CLOSE, &mut id)
}

fn query_faults(k: &dyn Kernel, id: u32) -> Result<u32, Errno> {
    let mut faults = 0u32;
    let mut a = drm_msm_submitqueue_query {
        data: &mut faults as *mut u32 as u64,
        id,
        param: MSM_SUBMITQUEUE_PARAM_FAULTS,
        len: 4,
        pad: 0,
    };
    raw(k, DRM_IOCTL_MSM_SUBMITQUEUE_QUERY, &mut a).map(|()| faults)
}

fn wait_fence(k: &dyn Kernel, queueid: u32, fence: u32, from_now_ns: i64) -> Result<(), Errno> {
    let mut a = drm_msm_wait_fence {
        fence,
        flags: 0,
        timeout: abs_timeout(from_now_ns),
        queueid,
    };
    raw(k, DRM_IOCTL_MSM_WAIT_FENCE, &mut a)
}

fn syncobj_create(k: &dyn Kernel, flags: u32) -> u32 {
    let mut a = drm_syncobj_create { handle: 0, flags };
    raw(k, DRM_IOCTL_SYNCOBJ_CREATE, &mut a).unwrap();
    a.handle
}

// ---- SUBMITQUEUE ----------------------------------------------------------------------------

#[test]
fn submitqueue_new_unknown_flag_is_einval() {
    assert_eq!(queue_new(&file("a750"), 0x4, 0), Err(Errno::EINVAL));
}

#[test]
fn vm_bind_queue_outside_vm_bind_mode_is_einval() {
    assert_eq!(
        queue_new(&file("a750"), MSM_SUBMITQUEUE_VM_BIND, 0),
        Err(Errno::EINVAL)
    );
}

#[test]
fn vm_bind_queue_with_nonzero_prio_is_einval() {
    let f = file("a750");
    ioctl::set_param(&f, MSM_PARAM_EN_VM_BIND, 1).unwrap();
    assert_eq!(
        queue_new(&f, MSM_SUBMITQUEUE_VM_BIND, 1),
        Err(Errno::EINVAL)
    );
    let q = queue_new(&f, MSM_SUBMITQUEUE_VM_BIND, 0);
    assert!(q.is_ok());
    queue_close(&f, q.unwrap()).unwrap();
}

#[test]
fn allow_preempt_on_a_single_ring_gpu_is_einval() {
    assert_eq!(
        queue_new(&file("a618"), MSM_SUBMITQUEUE_ALLOW_PREEMPT, 0),
        Err(Errno::EINVAL)
    );
    let f = file("a750");
    let q = queue_new(&f, MSM_SUBMITQUEUE_ALLOW_PREEMPT, 0);
    assert!(q.is_ok());
    queue_close(&f, q.unwrap()).unwrap();
}

#[test]
fn prio_at_or_above_priorities_is_einval() {
    let f = file("a618");
    assert_eq!(queue_new(&f, 0, 3), Err(Errno::EINVAL));
    let q = queue_new(&f, 0, 2);
    assert!(q.is_ok());
    let f750 = file("a750");
    let q750 = queue_new(&f750, 0, 11);
    assert!(q750.is_ok());
    queue_close(&f, q.unwrap()).unwrap();
    queue_close(&f750, q750.unwrap()).unwrap();
}

#[test]
fn queue_ids_count_up_and_are_never_reused() {
    let f = file("a750");
    assert_eq!(queue_new(&f, 0, 0), Ok(1));
    queue_close(&f, 1).unwrap();
    assert_eq!(queue_new(&f, 0, 0), Ok(2));
    queue_close(&f, 2).unwrap();
}

#[test]
fn closing_queue_0_is_enoent() {
    assert_eq!(queue_close(&file("a750"), 0), Err(Errno::ENOENT));
}

#[test]
fn closing_an_unknown_or_closed_queue_is_enoent() {
    let f = file("a750");
    assert_eq!(queue_close(&f, 5), Err(Errno::ENOENT));
    let q = queue_new(&f, 0, 0).unwrap();
    queue_close(&f, q).unwrap();
    assert_eq!(queue_close(&f, q), Err(Errno::ENOENT));
}

#[test]
fn query_nonzero_pad_is_einval() {
    let mut faults = 0u32;
    let mut a = drm_msm_submitqueue_query {
        data: &mut faults as *mut u32 as u64,
        id: 0,
        param: 0,
        len: 4,
        pad: 1,
    };
    assert_eq!(
        raw(&file("a750"), DRM_IOCTL_MSM_SUBMITQUEUE_QUERY, &mut a),
        Err(Errno::EINVAL)
    );
}

#[test]
fn query_unknown_queue_is_enoent() {
    assert_eq!(query_faults(&file("a750"), 9), Err(Errno::ENOENT));
}

#[test]
fn query_unknown_param_is_einval() {
    let mut faults = 0u32;
    let mut a = drm_msm_submitqueue_query {
        data: &mut faults as *mut u32 as u64,
        id: 0,
        param: 1,
        len: 4,
        pad: 0,
    };
    assert_eq!(
        raw(&file("a750"), DRM_IOCTL_MSM_SUBMITQUEUE_QUERY, &mut a),
        Err(Errno::EINVAL)
    );
}

#[test]
fn query_copies_at_most_len_bytes() {
    let mut buf = [0xffu8; 8];
    let mut a = drm_msm_submitqueue_query {
        data: buf.as_mut_ptr() as u64,
        id: 0,
        param: 0,
        len: 2,
        pad: 0,
    };
    raw(&file("a750"), DRM_IOCTL_MSM_SUBMITQUEUE_QUERY, &mut a).unwrap();
    assert_eq!(buf, [0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
}

#[test]
fn query_to_unmapped_memory_is_efault() {
    let mut a = drm_msm_submitqueue_query {
        data: 8,
        id: 0,
        param: 0,
        len: 4,
        pad: 0,
    };
    assert_eq!(
        raw(&file("a750"), DRM_IOCTL_MSM_SUBMITQUEUE_QUERY, &mut a),
        Err(Errno::EFAULT)
    );
}

// ---- GEM_SUBMIT: step 1 ---------------------------------------------------------------------

#[test]
fn submit_creates_the_vm_so_en_vm_bind_is_then_ebusy() {
    let f = file("a750");
    Submit::new().run(&f).unwrap();
    assert_eq!(
        ioctl::set_param(&f, MSM_PARAM_EN_VM_BIND, 1).map_err(|e| e.errno),
        Err(Errno::EBUSY)
    );
}

#[test]
fn submit_nonzero_pad_is_einval() {
    assert_eq!(
        Submit::new().with(|a| a.pad = 1).run(&file("a750")).err(),
        Some(Errno::EINVAL)
    );
}

#[test]
fn submit_wrong_pipe_is_einval() {
    assert_eq!(
        Submit::new()
            .with(|a| a.flags = MSM_PIPE_2D0)
            .run(&file("a750"))
            .err(),
        Some(Errno::EINVAL)
    );
}

#[test]
fn submit_unknown_upper_flag_is_einval() {
    assert_eq!(
        Submit::new()
            .with(|a| a.flags |= 0x0100_0000)
            .run(&file("a750"))
            .err(),
        Some(Errno::EINVAL)
    );
}

#[test]
fn submit_sudo_without_privilege_is_einval() {
    assert_eq!(
        Submit::new()
            .with(|a| a.flags |= MSM_SUBMIT_SUDO)
            .run(&file("a750"))
            .err(),
        Some(Errno::EINVAL)
    );
}

#[test]
fn submit_to_unknown_queue_is_enoent() {
    assert_eq!(
        Submit::new()
            .with(|a| a.queueid = 7)
            .run(&file("a750"))
            .err(),
        Some(Errno::ENOENT)
    );
}

#[test]
fn submit_to_a_vm_bind_queue_is_einval() {
    let f = file("a750");
    ioctl::set_param(&f, MSM_PARAM_EN_VM_BIND, 1).unwrap();
    let q = queue_new(&f, MSM_SUBMITQUEUE_VM_BIND, 0).unwrap();
    assert_eq!(
        Submit::new().with(|a| a.queueid = q).run(&f).err(),
        Some(Errno::EINVAL)
    );
    queue_close(&f, q).unwrap();
}

// ---- step 2: explicit fences ----------------------------------------------------------------

#[test]
fn fence_fd_in_that_is_not_a_sync_file_is_einval() {
    let f = file("a750");
    let not_sync = std::fs::File::open("/proc/self/stat").unwrap();
    let r = Submit::new().with(|a| {
        a.flags |= MSM_SUBMIT_FENCE_FD_IN;
        a.fence_fd = not_sync.as_raw_fd();
    });
    assert_eq!({ r }.run(&f).err(), Some(Errno::EINVAL));
}

#[test]
fn in_syncobj_with_unknown_flag_is_einval() {
    let f = file("a750");
    let s = syncobj_create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    let mut sub = Submit::new();
    sub.in_syncobjs.push(drm_msm_syncobj {
        handle: s,
        flags: 2,
        point: 0,
    });
    assert_eq!(sub.run(&f).err(), Some(Errno::EINVAL));
    ioctl::syncobj_destroy(&f, s).unwrap();
}

#[test]
fn in_syncobj_unknown_handle_is_enoent() {
    let f = file("a750");
    let mut sub = Submit::new();
    sub.in_syncobjs.push(drm_msm_syncobj {
        handle: 77,
        flags: 0,
        point: 0,
    });
    assert_eq!(sub.run(&f).err(), Some(Errno::ENOENT));
}

#[test]
fn in_syncobj_without_a_fence_is_einval() {
    let f = file("a750");
    let s = syncobj_create(&f, 0);
    let mut sub = Submit::new();
    sub.in_syncobjs.push(drm_msm_syncobj {
        handle: s,
        flags: 0,
        point: 0,
    });
    assert_eq!(sub.run(&f).err(), Some(Errno::EINVAL));
    ioctl::syncobj_destroy(&f, s).unwrap();
}

#[test]
fn in_syncobj_reset_applies_after_success() {
    let f = file("a750");
    let s = syncobj_create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    let mut sub = Submit::new();
    sub.in_syncobjs.push(drm_msm_syncobj {
        handle: s,
        flags: MSM_SYNCOBJ_RESET,
        point: 0,
    });
    sub.run(&f).unwrap();
    let mut again = Submit::new();
    again.in_syncobjs.push(drm_msm_syncobj {
        handle: s,
        flags: 0,
        point: 0,
    });
    assert_eq!(
        again.run(&f).err(),
        Some(Errno::EINVAL),
        "the syncobj was reset"
    );
    ioctl::syncobj_destroy(&f, s).unwrap();
}

#[test]
fn in_syncobjs_from_unmapped_memory_are_efault() {
    let f = file("a750");
    let sub = Submit::new().with(|a| {
        a.flags |= MSM_SUBMIT_SYNCOBJ_IN;
        a.nr_in_syncobjs = 1;
        a.in_syncobjs = 8;
        a.syncobj_stride = 16;
    });
    assert_eq!({ sub }.run(&f).err(), Some(Errno::EFAULT));
}

#[test]
fn out_syncobj_with_flags_is_einval() {
    let f = file("a750");
    let s = syncobj_create(&f, 0);
    let mut sub = Submit::new();
    sub.out_syncobjs.push(drm_msm_syncobj {
        handle: s,
        flags: MSM_SYNCOBJ_RESET,
        point: 0,
    });
    assert_eq!(sub.run(&f).err(), Some(Errno::EINVAL));
    ioctl::syncobj_destroy(&f, s).unwrap();
}

#[test]
fn out_syncobj_unknown_handle_is_einval() {
    let f = file("a750");
    let mut sub = Submit::new();
    sub.out_syncobjs.push(drm_msm_syncobj {
        handle: 31,
        flags: 0,
        point: 0,
    });
    assert_eq!(sub.run(&f).err(), Some(Errno::EINVAL));
}

#[test]
fn out_syncobj_gets_the_submit_fence() {
    let f = manual("a750");
    let s = syncobj_create(&f, 0);
    let mut sub = Submit::new();
    sub.out_syncobjs.push(drm_msm_syncobj {
        handle: s,
        flags: 0,
        point: 0,
    });
    sub.run(&f).unwrap();
    let mut next = Submit::new();
    next.in_syncobjs.push(drm_msm_syncobj {
        handle: s,
        flags: 0,
        point: 0,
    });
    assert!(next.run(&f).is_ok(), "the syncobj now has a fence");
    assert_eq!(f.sim().gpu_run_until_idle(), 2);
    ioctl::syncobj_destroy(&f, s).unwrap();
}

// ---- step 3: the BO table -------------------------------------------------------------------

#[test]
fn bo_with_unknown_flag_is_einval() {
    let f = file("a750");
    let h = wc_bo(&f, 4096);
    assert_eq!(
        Submit::new().bo(h, MSM_SUBMIT_BO_READ | 0x10).run(&f).err(),
        Some(Errno::EINVAL)
    );
    gem_close(&f, h).unwrap();
}

#[test]
fn bo_neither_read_nor_write_is_einval() {
    let f = file("a750");
    let h = wc_bo(&f, 4096);
    assert_eq!(
        Submit::new().bo(h, MSM_SUBMIT_BO_DUMP).run(&f).err(),
        Some(Errno::EINVAL)
    );
    gem_close(&f, h).unwrap();
}

#[test]
fn bo_unknown_handle_is_einval() {
    assert_eq!(
        Submit::new()
            .bo(9, MSM_SUBMIT_BO_READ)
            .run(&file("a750"))
            .err(),
        Some(Errno::EINVAL)
    );
}

#[test]
fn bo_twice_in_the_table_is_ealready() {
    let f = file("a750");
    let h = wc_bo(&f, 4096);
    let r = Submit::new()
        .bo(h, MSM_SUBMIT_BO_READ)
        .bo(h, MSM_SUBMIT_BO_WRITE)
        .run(&f);
    assert_eq!(r.err(), Some(Errno::EALREADY));
    gem_close(&f, h).unwrap();
}

#[test]
fn bo_table_from_unmapped_memory_is_efault() {
    let f = file("a750");
    let r = Submit::new().with(|a| {
        a.nr_bos = 1;
        a.bos = 8;
    });
    let mut r = r;
    r.bos.clear();
    // `run` would overwrite the pointer, so issue it by hand.
    assert_eq!(
        raw(&f, DRM_IOCTL_MSM_GEM_SUBMIT, &mut r.arg),
        Err(Errno::EFAULT)
    );
}

// ---- step 4: commands -----------------------------------------------------------------------

#[test]
fn cmd_with_unknown_type_is_einval() {
    let f = file("a750");
    let h = wc_bo(&f, 4096);
    let mut s = Submit::new().bo(h, MSM_SUBMIT_BO_READ).cmd(0, 0, 64);
    s.cmds[0].r#type = 4;
    assert_eq!(s.run(&f).err(), Some(Errno::EINVAL));
    gem_close(&f, h).unwrap();
}

#[test]
fn cmd_size_not_a_multiple_of_4_is_einval() {
    let f = file("a750");
    let h = wc_bo(&f, 4096);
    assert_eq!(
        Submit::new()
            .bo(h, MSM_SUBMIT_BO_READ)
            .cmd(0, 0, 62)
            .run(&f)
            .err(),
        Some(Errno::EINVAL)
    );
    gem_close(&f, h).unwrap();
}

#[test]
fn cmd_submit_idx_past_the_table_is_einval() {
    let f = file("a750");
    let h = wc_bo(&f, 4096);
    assert_eq!(
        Submit::new()
            .bo(h, MSM_SUBMIT_BO_READ)
            .cmd(1, 0, 64)
            .run(&f)
            .err(),
        Some(Errno::EINVAL)
    );
    gem_close(&f, h).unwrap();
}

#[test]
fn cmd_of_size_0_is_einval() {
    let f = file("a750");
    let h = wc_bo(&f, 4096);
    assert_eq!(
        Submit::new()
            .bo(h, MSM_SUBMIT_BO_READ)
            .cmd(0, 0, 0)
            .run(&f)
            .err(),
        Some(Errno::EINVAL)
    );
    gem_close(&f, h).unwrap();
}

#[test]
fn cmd_running_past_its_bo_is_einval() {
    let f = file("a750");
    let h = wc_bo(&f, 4096);
    assert_eq!(
        Submit::new()
            .bo(h, MSM_SUBMIT_BO_READ)
            .cmd(0, 4032, 128)
            .run(&f)
            .err(),
        Some(Errno::EINVAL)
    );
    gem_close(&f, h).unwrap();
}

#[test]
fn cmd_with_relocs_on_a6xx_is_einval() {
    let f = file("a618");
    let h = wc_bo(&f, 4096);
    let mut s = Submit::new().bo(h, MSM_SUBMIT_BO_READ).cmd(0, 0, 64);
    s.cmds[0].nr_relocs = 1;
    assert_eq!(s.run(&f).err(), Some(Errno::EINVAL));
    gem_close(&f, h).unwrap();
}

#[test]
fn vm_bind_mode_cmd_with_submit_idx_offset_or_relocs_is_einval() {
    let f = file("a750");
    ioctl::set_param(&f, MSM_PARAM_EN_VM_BIND, 1).unwrap();
    let edits: [fn(&mut drm_msm_gem_submit_cmd); 3] = [
        |c| c.submit_idx = 1,
        |c| c.submit_offset = 4,
        |c| c.nr_relocs = 1,
    ];
    for edit in edits {
        let mut s = Submit::new().cmd_iova(0x1_0000_0000, 64);
        edit(&mut s.cmds[0]);
        assert_eq!(s.run(&f).err(), Some(Errno::EINVAL));
    }
}

#[test]
fn a_submit_with_no_commands_is_accepted() {
    let f = file("a750");
    assert_eq!(Submit::new().run(&f).map(|a| a.fence), Ok(1));
}

// ---- step 6: seqnos -------------------------------------------------------------------------

#[test]
fn seqnos_are_per_queue_from_1() {
    let f = file("a750");
    let q = queue_new(&f, 0, 0).unwrap();
    assert_eq!(Submit::new().run(&f).map(|a| a.fence), Ok(1));
    assert_eq!(Submit::new().run(&f).map(|a| a.fence), Ok(2));
    assert_eq!(
        Submit::new()
            .with(|a| a.queueid = q)
            .run(&f)
            .map(|a| a.fence),
        Ok(1)
    );
    queue_close(&f, q).unwrap();
}

#[test]
fn fence_sn_in_of_0_is_einval() {
    let f = file("a750");
    assert_eq!(
        Submit::new()
            .with(|a| a.flags |= MSM_SUBMIT_FENCE_SN_IN)
            .run(&f)
            .err(),
        Some(Errno::EINVAL)
    );
}

#[test]
fn fence_sn_in_still_in_flight_is_einval() {
    let f = manual("a750");
    let sn = |n| {
        Submit::new().with(move |a| {
            a.flags |= MSM_SUBMIT_FENCE_SN_IN;
            a.fence = n;
        })
    };
    assert_eq!(sn(10).run(&f).map(|a| a.fence), Ok(10));
    assert_eq!(sn(10).run(&f).err(), Some(Errno::EINVAL));
    f.sim().gpu_run_until_idle();
    assert_eq!(
        sn(10).run(&f).map(|a| a.fence),
        Ok(10),
        "free again once retired"
    );
}

// ---- VM_BIND-mode submits and unusable VMs --------------------------------------------------

#[test]
fn gpu_fault_in_vm_bind_mode_makes_the_vm_unusable_so_submit_is_epipe() {
    let f = manual("a750");
    ioctl::set_param(&f, MSM_PARAM_EN_VM_BIND, 1).unwrap();
    Submit::new().cmd_iova(0x1_0000_0000, 64).run(&f).unwrap();
    f.sim().gpu_run_until_idle();
    assert!(f.vm_unusable());
    assert_eq!(Submit::new().run(&f).err(), Some(Errno::EPIPE));
}

#[test]
fn gpu_fault_in_legacy_mode_leaves_the_vm_usable() {
    let f = manual("a750");
    let h = wc_bo(&f, 4096);
    let mut s = Submit::new().bo(h, MSM_SUBMIT_BO_READ).cmd(0, 0, 64);
    s.run(&f).unwrap();
    f.sim().gpu_run_until_idle();
    assert!(!f.vm_unusable());
    assert!(Submit::new().run(&f).is_ok());
    f.sim().gpu_run_until_idle();
    gem_close(&f, h).unwrap();
}

// ---- the simulated GPU: order, clocks, faults -----------------------------------------------

#[test]
fn deterministic_clock_runs_nothing_until_stepped() {
    let f = manual("a750");
    let a = Submit::new()
        .with(|a| a.flags |= MSM_SUBMIT_FENCE_FD_OUT)
        .run(&f)
        .unwrap();
    // SAFETY: the model returned a new sync-file fd.
    let fd = unsafe { OwnedFd::from_raw_fd(a.fence_fd) };
    assert!(!readable(fd.as_raw_fd()));
    assert_eq!(wait_fence(&f, 0, a.fence, 0), Err(Errno::ETIMEDOUT));
    assert!(f.sim().gpu_step());
    assert!(readable(fd.as_raw_fd()), "the out fence fd signalled");
    assert_eq!(wait_fence(&f, 0, a.fence, 0), Ok(()));
    assert!(!f.sim().gpu_step());
}

#[test]
fn a_job_waits_for_its_in_fence_and_its_queue_order() {
    let f = manual("a750");
    let q1 = queue_new(&f, 0, 0).unwrap();
    // q1: job A. queue 0: job B waits for A's fence fd; job C queued after B.
    let a = Submit::new().with(|x| {
        x.queueid = q1;
        x.flags |= MSM_SUBMIT_FENCE_FD_OUT;
    });
    let a = { a }.run(&f).unwrap();
    // SAFETY: a new sync-file fd from the model.
    let a_fd = unsafe { OwnedFd::from_raw_fd(a.fence_fd) };
    let b = Submit::new().with(|x| {
        x.flags |= MSM_SUBMIT_FENCE_FD_IN;
        x.fence_fd = a_fd.as_raw_fd();
    });
    let b = { b }.run(&f).unwrap();
    let c = Submit::new().run(&f).unwrap();
    // Only A is runnable: B waits on A, C waits behind B.
    assert!(f.sim().gpu_step());
    assert_eq!(wait_fence(&f, q1, a.fence, 0), Ok(()));
    assert_eq!(wait_fence(&f, 0, b.fence, 0), Err(Errno::ETIMEDOUT));
    assert!(f.sim().gpu_step());
    assert_eq!(wait_fence(&f, 0, b.fence, 0), Ok(()));
    assert_eq!(wait_fence(&f, 0, c.fence, 0), Err(Errno::ETIMEDOUT));
    assert!(f.sim().gpu_step());
    assert_eq!(wait_fence(&f, 0, c.fence, 0), Ok(()));
    drop(a_fd);
    queue_close(&f, q1).unwrap();
}

#[test]
fn implicit_sync_orders_a_writer_after_a_reader_on_another_queue() {
    let f = manual("a750");
    let h = wc_bo(&f, 4096);
    let q1 = queue_new(&f, 0, 0).unwrap();
    let r = Submit::new().bo(h, MSM_SUBMIT_BO_READ).run(&f).unwrap();
    let w = Submit::new()
        .bo(h, MSM_SUBMIT_BO_WRITE)
        .with(|a| a.queueid = q1)
        .run(&f)
        .unwrap();
    let free = Submit::new()
        .bo(h, MSM_SUBMIT_BO_WRITE | MSM_SUBMIT_BO_NO_IMPLICIT)
        .with(|a| a.queueid = q1);
    drop(free);
    // Run in whatever order the GPU picks: the writer never runs before the reader.
    assert!(f.sim().gpu_step());
    assert_eq!(wait_fence(&f, 0, r.fence, 0), Ok(()));
    assert_eq!(wait_fence(&f, q1, w.fence, 0), Err(Errno::ETIMEDOUT));
    assert!(f.sim().gpu_step());
    assert_eq!(wait_fence(&f, q1, w.fence, 0), Ok(()));
    gem_close(&f, h).unwrap();
    queue_close(&f, q1).unwrap();
}

#[test]
fn no_implicit_skips_implicit_sync() {
    let f = manual("a750");
    let h = wc_bo(&f, 4096);
    let q1 = queue_new(&f, 0, 0).unwrap();
    Submit::new().bo(h, MSM_SUBMIT_BO_WRITE).run(&f).unwrap();
    let w = Submit::new().bo(h, MSM_SUBMIT_BO_WRITE).with(|a| {
        a.queueid = q1;
        a.flags |= MSM_SUBMIT_NO_IMPLICIT;
    });
    let w = { w }.run(&f).unwrap();
    // Both are runnable at once; run the q1 job first by stepping until it is done.
    f.sim().gpu_run_until_idle();
    assert_eq!(wait_fence(&f, q1, w.fence, 0), Ok(()));
    gem_close(&f, h).unwrap();
    queue_close(&f, q1).unwrap();
}

#[test]
fn async_clock_signals_after_its_latency() {
    let f = file_with(
        "a750",
        SimOptions {
            clock: Clock::Async {
                latency: Duration::from_millis(30),
            },
            ..Default::default()
        },
    );
    let t0 = Instant::now();
    let a = Submit::new().run(&f).unwrap();
    assert_eq!(wait_fence(&f, 0, a.fence, 0), Err(Errno::ETIMEDOUT));
    assert_eq!(wait_fence(&f, 0, a.fence, 5_000_000_000), Ok(()));
    assert!(t0.elapsed() >= Duration::from_millis(30));
}

#[test]
fn async_clock_survives_many_racing_submitters() {
    let f = std::sync::Arc::new(file_with(
        "a750",
        SimOptions {
            clock: Clock::Async {
                latency: Duration::from_micros(50),
            },
            ..Default::default()
        },
    ));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let f = f.clone();
            std::thread::spawn(move || {
                let q = queue_new(f.as_ref(), 0, 0).unwrap();
                let mut last = 0;
                for _ in 0..50 {
                    last = Submit::new()
                        .with(|a| a.queueid = q)
                        .run(f.as_ref())
                        .unwrap()
                        .fence;
                }
                assert_eq!(wait_fence(f.as_ref(), q, last, 5_000_000_000), Ok(()));
                queue_close(f.as_ref(), q).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn gpu_fault_counts_and_captures_a_devcoredump() {
    let f = manual("a660");
    ioctl::set_param_str(&f, MSM_PARAM_COMM, "deqp-vk").unwrap();
    let h = wc_bo(&f, 4096);
    let iova = ioctl::gem_info_value(&f, h, MSM_INFO_GET_IOVA, 0).unwrap();
    // A submit whose command is fine but which is declared to read an unmapped range.
    let mut sub = Submit::new().bo(h, MSM_SUBMIT_BO_READ).cmd(0, 0, 64);
    let unmapped = iova + 0x10_0000;
    // SAFETY: the builder owns the arrays the packed submit points at, across the call.
    unsafe { f.submit_touching(sub.pack(), &[(unmapped, 256)]) }.unwrap();
    assert_eq!(ioctl::get_param(&f, MSM_PARAM_FAULTS).unwrap(), 0);
    f.sim().gpu_run_until_idle();
    assert_eq!(ioctl::get_param(&f, MSM_PARAM_FAULTS).unwrap(), 1);
    assert_eq!(query_faults(&f, 0), Ok(1));
    let dumps = f.sim().devcoredumps();
    assert_eq!(dumps.len(), 1);
    let text = &dumps[0].text;
    println!("{text}");
    assert!(text.contains(&format!("iova={unmapped:#018x}")), "{text}");
    assert!(text.contains("comm: deqp-vk"), "{text}");
    assert!(
        text.contains(&format!("{iova:#018x}")),
        "the mappings are listed: {text}"
    );
    gem_close(&f, h).unwrap();
}

#[test]
fn a_command_at_an_unmapped_address_faults() {
    let f = manual("a750");
    ioctl::set_param(&f, MSM_PARAM_EN_VM_BIND, 1).unwrap();
    Submit::new().cmd_iova(0x1_2345_6000, 64).run(&f).unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(query_faults(&f, 0), Ok(1));
    assert_eq!(f.sim().devcoredumps()[0].iova, 0x1_2345_6000);
}

/// The injected GPU fault (`SUBMIT:fault`, a debug event, not a kernel call): the nth submit
/// succeeds and its job faults at address 0 when it runs; `"*"` rules do not count it.
#[test]
fn an_injected_submit_fault_faults_the_nth_job_at_address_zero() {
    let f = manual("a750");
    let sim = f.sim();
    sim.inject(Injection {
        point: "SUBMIT:fault".into(),
        nth: 2,
        errno: Errno::EIO,
    });
    sim.inject(Injection {
        point: "*".into(),
        nth: 100,
        errno: Errno::ENOMEM,
    });
    // The commands are in a mapped buffer, so only the injection can fault.
    let h = wc_bo(&f, 4096);
    let mut s = Submit::new().bo(h, MSM_SUBMIT_BO_READ).cmd(0, 0, 64);
    s.run(&f).unwrap();
    sim.gpu_run_until_idle();
    assert_eq!(query_faults(&f, 0), Ok(0));
    s.run(&f).unwrap();
    sim.gpu_run_until_idle();
    assert_eq!(query_faults(&f, 0), Ok(1));
    assert_eq!(sim.devcoredumps()[0].iova, 0);
    let st = sim.injections();
    assert!(st[0].fired && st[0].hits == 2, "{st:?}");
    assert!(!st[1].fired && st[1].hits == 5, "ioctls only: {st:?}");
    gem_close(&f, h).unwrap();
}

// ---- WAIT_FENCE -----------------------------------------------------------------------------

#[test]
fn wait_fence_unknown_flag_is_einval() {
    let f = file("a750");
    let mut a = drm_msm_wait_fence {
        fence: 0,
        flags: 2,
        timeout: abs_timeout(0),
        queueid: 0,
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_MSM_WAIT_FENCE, &mut a),
        Err(Errno::EINVAL)
    );
}

#[test]
fn wait_fence_unknown_queue_is_enoent() {
    assert_eq!(wait_fence(&file("a750"), 4, 0, 0), Err(Errno::ENOENT));
}

#[test]
fn wait_fence_after_the_last_fence_is_einval() {
    let f = file("a750");
    assert_eq!(
        wait_fence(&f, 0, 1, 0),
        Err(Errno::EINVAL),
        "fence 1 on a fresh queue"
    );
}

#[test]
fn wait_fence_0_returns_at_once() {
    assert_eq!(wait_fence(&file("a750"), 0, 0, 0), Ok(()));
}

#[test]
fn wait_fence_of_a_retired_seqno_returns_0() {
    let f = manual("a750");
    let a = Submit::new().run(&f).unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(wait_fence(&f, 0, a.fence, -1_000_000_000), Ok(()));
}

#[test]
fn wait_fence_timing_out_is_etimedout_even_with_a_past_deadline() {
    let f = manual("a750");
    let a = Submit::new().run(&f).unwrap();
    assert_eq!(
        wait_fence(&f, 0, a.fence, -1_000_000_000),
        Err(Errno::ETIMEDOUT)
    );
    assert_eq!(wait_fence(&f, 0, a.fence, 2_000_000), Err(Errno::ETIMEDOUT));
    f.sim().gpu_run_until_idle();
}

#[test]
fn wait_fence_is_write_only() {
    let f = file("a750");
    let mut a = drm_msm_wait_fence {
        fence: 0,
        flags: 0,
        timeout: abs_timeout(0),
        queueid: 0,
    };
    let before = a;
    raw(&f, DRM_IOCTL_MSM_WAIT_FENCE, &mut a).unwrap();
    assert_eq!(a, before);
}

#[test]
fn leak_report_lists_queues_and_syncobjs_and_is_empty_after_cleanup() {
    let f = file("a750");
    let q = queue_new(&f, 0, 0).unwrap();
    let s = syncobj_create(&f, 0);
    let r = f.leak_report();
    assert_eq!((r.queues, r.syncobjs), (vec![q], 1));
    queue_close(&f, q).unwrap();
    raw(
        &f,
        DRM_IOCTL_SYNCOBJ_DESTROY,
        &mut drm_syncobj_destroy { handle: s, pad: 0 },
    )
    .unwrap();
    assert!(f.close().is_empty());
}

/// submit_create (msm_gem_submit.c) kzallocs the submit with its BO and command tables in one
/// piece: tables past the largest kmalloc (4 MiB) are ENOMEM, before any of them is read from
/// user memory, so a NULL table pointer does not matter. Found by the sim_ioctl fuzz target: the
/// model reserved nr_bos elements up front (27 GB) before reading the first.
#[test]
fn submit_tables_past_the_largest_kmalloc_are_enomem() {
    let f = file("a660");
    for (nr_bos, nr_cmds) in [(0x2000_0000, 0), (0, 0x0100_0000), (u32::MAX, u32::MAX)] {
        let mut a = drm_msm_gem_submit {
            flags: MSM_PIPE_3D0,
            nr_bos,
            nr_cmds,
            ..Default::default()
        };
        assert_eq!(
            raw(&f, DRM_IOCTL_MSM_GEM_SUBMIT, &mut a),
            Err(Errno::ENOMEM),
            "{nr_bos:#x} BOs, {nr_cmds:#x} commands"
        );
    }
    // msm_syncobj_parse_deps / _post_deps kcalloc a table per syncobj entry first: the same,
    // even with a stride of 0 (which reads nothing of each entry). Found by the sim_ioctl fuzz
    // target: the model zero-filled 2^32 entries first (64 GB).
    for flag in [MSM_SUBMIT_SYNCOBJ_IN, MSM_SUBMIT_SYNCOBJ_OUT] {
        let mut a = drm_msm_gem_submit {
            flags: MSM_PIPE_3D0 | flag,
            nr_in_syncobjs: u32::MAX,
            nr_out_syncobjs: u32::MAX,
            syncobj_stride: 0,
            ..Default::default()
        };
        assert_eq!(
            raw(&f, DRM_IOCTL_MSM_GEM_SUBMIT, &mut a),
            Err(Errno::ENOMEM),
            "{flag:#x}"
        );
    }
    // A table that fits is read: NULL is EFAULT then.
    let mut a = drm_msm_gem_submit {
        flags: MSM_PIPE_3D0,
        nr_bos: 1000,
        ..Default::default()
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_MSM_GEM_SUBMIT, &mut a),
        Err(Errno::EFAULT)
    );
}
