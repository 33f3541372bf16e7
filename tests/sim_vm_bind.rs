//! VM_BIND in the kernel model, one test per rule of spec/kernel.md "VM_BIND (mode on)" and its
//! subsections ("How ops change the VA tree", "Page tables, preallocation and the throttle",
//! "Unusable VMs and the VM log"), each asserting the exact errno or the exact VA tree, page
//! tables, log or devcoredump text. Everything goes through the raw ioctl boundary; the debug API
//! only observes (VMAs, PTEs, table pages, the log) and steps the GPU.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use common::{file_with, gem_close, queue_new, raw, readable, wc_bo};
use msm_winsys::kernel::{ioctl, Kernel};
use msm_winsys::sim::vm::Pte;
use msm_winsys::sim::{Clock, Injection, LeakReport, SimFile, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::Errno;

const VA: u64 = 0x1_0000_0000;
const PAGE: u64 = 4096;
const MB2: u64 = 2 << 20;

fn opts(shift: u32) -> SimOptions {
    SimOptions {
        clock: Clock::Manual,
        vm_log_shift: shift,
        ..Default::default()
    }
}

/// A fresh VM_BIND-mode file (manual clock, log of 2^shift entries).
fn vb_file_with(profile: &str, o: SimOptions) -> SimFile {
    let f = file_with(profile, o);
    ioctl::set_param(&f, MSM_PARAM_EN_VM_BIND, 1).unwrap();
    f
}

fn vb_file() -> SimFile {
    vb_file_with("a750", opts(8))
}

fn madvise(k: &dyn Kernel, handle: u32, madv: u32) {
    let mut a = drm_msm_gem_madvise {
        handle,
        madv,
        retained: 0,
    };
    raw(k, DRM_IOCTL_MSM_GEM_MADVISE, &mut a).unwrap();
}

fn bind_queue(k: &dyn Kernel) -> u32 {
    queue_new(k, MSM_SUBMITQUEUE_VM_BIND, 0).unwrap()
}

fn syncobj_create(k: &dyn Kernel, flags: u32) -> u32 {
    let mut a = drm_syncobj_create { handle: 0, flags };
    raw(k, DRM_IOCTL_SYNCOBJ_CREATE, &mut a).unwrap();
    a.handle
}

fn syncobj_signalled(k: &dyn Kernel, handle: u32) -> bool {
    let handles = [handle];
    let mut a = drm_syncobj_wait {
        handles: handles.as_ptr() as u64,
        timeout_nsec: 0,
        count_handles: 1,
        flags: 0,
        first_signaled: 0,
        pad: 0,
        deadline_nsec: 0,
    };
    raw(k, DRM_IOCTL_SYNCOBJ_WAIT, &mut a).is_ok()
}

fn map(handle: u32, obj_offset: u64, iova: u64, range: u64) -> drm_msm_vm_bind_op {
    drm_msm_vm_bind_op {
        op: MSM_VM_BIND_OP_MAP,
        handle,
        obj_offset,
        iova,
        range,
        flags: 0,
        pad: 0,
    }
}

fn map_null(iova: u64, range: u64) -> drm_msm_vm_bind_op {
    drm_msm_vm_bind_op {
        op: MSM_VM_BIND_OP_MAP_NULL,
        iova,
        range,
        ..Default::default()
    }
}

fn unmap(iova: u64, range: u64) -> drm_msm_vm_bind_op {
    drm_msm_vm_bind_op {
        op: MSM_VM_BIND_OP_UNMAP,
        iova,
        range,
        ..Default::default()
    }
}

/// A VM_BIND call being built: the struct plus the arrays its pointers point at.
struct Bind {
    a: drm_msm_vm_bind,
    ops: Vec<drm_msm_vm_bind_op>,
    ins: Vec<drm_msm_syncobj>,
    outs: Vec<drm_msm_syncobj>,
}

impl Bind {
    fn new(queue_id: u32, ops: &[drm_msm_vm_bind_op]) -> Bind {
        Bind {
            a: drm_msm_vm_bind {
                queue_id,
                fence_fd: -1,
                syncobj_stride: 16,
                op_stride: 40,
                ..Default::default()
            },
            ops: ops.to_vec(),
            ins: vec![],
            outs: vec![],
        }
    }

    fn with(mut self, f: impl FnOnce(&mut drm_msm_vm_bind)) -> Bind {
        f(&mut self.a);
        self
    }

    fn wait(mut self, handle: u32, flags: u32, point: u64) -> Bind {
        self.ins.push(drm_msm_syncobj {
            handle,
            flags,
            point,
        });
        self
    }

    fn signal(mut self, handle: u32, flags: u32, point: u64) -> Bind {
        self.outs.push(drm_msm_syncobj {
            handle,
            flags,
            point,
        });
        self
    }

    fn run(&mut self, k: &dyn Kernel) -> Result<drm_msm_vm_bind, Errno> {
        let mut a = self.a;
        a.nr_ops = self.ops.len() as u32;
        if self.ops.len() == 1 {
            a.u.op = self.ops[0];
        } else {
            a.u.ops = self.ops.as_ptr() as u64;
        }
        if !self.ins.is_empty() {
            a.in_syncobjs = self.ins.as_ptr() as u64;
            a.nr_in_syncobjs = self.ins.len() as u32;
        }
        if !self.outs.is_empty() {
            a.out_syncobjs = self.outs.as_ptr() as u64;
            a.nr_out_syncobjs = self.outs.len() as u32;
        }
        raw(k, DRM_IOCTL_MSM_VM_BIND, &mut a).map(|()| a)
    }
}

impl Bind {
    /// The call as built with `with`, without filling `nr_ops` and the op pointer from `ops`.
    fn run_raw(&mut self, k: &dyn Kernel) -> Result<drm_msm_vm_bind, Errno> {
        let mut a = self.a;
        raw(k, DRM_IOCTL_MSM_VM_BIND, &mut a).map(|()| a)
    }
}

fn bind(k: &dyn Kernel, q: u32, ops: &[drm_msm_vm_bind_op]) -> Result<(), Errno> {
    Bind::new(q, ops).run(k).map(drop)
}

/// The VA tree as (iova, range, obj_offset, null).
fn tree(f: &SimFile) -> Vec<(u64, u64, u64, bool)> {
    f.vmas()
        .iter()
        .map(|v| (v.iova, v.range_B, v.obj_offset_B, v.null))
        .collect()
}

fn log(f: &SimFile) -> Vec<(String, u32, u64, u64)> {
    f.vm_log()
        .iter()
        .map(|e| (e.op.to_string(), e.queue_id, e.iova, e.range_B))
        .collect()
}

fn submit_cmd(k: &dyn Kernel, iova: u64) -> Result<(), Errno> {
    let cmds = [drm_msm_gem_submit_cmd {
        r#type: MSM_SUBMIT_CMD_BUF,
        size: 64,
        ..Default::default()
    }
    .with_iova(iova)];
    let mut a = drm_msm_gem_submit {
        flags: MSM_PIPE_3D0,
        nr_cmds: 1,
        cmds: cmds.as_ptr() as u64,
        ..Default::default()
    };
    raw(k, DRM_IOCTL_MSM_GEM_SUBMIT, &mut a)
}

trait WithIova {
    fn with_iova(self, iova: u64) -> Self;
}

impl WithIova for drm_msm_gem_submit_cmd {
    fn with_iova(mut self, iova: u64) -> Self {
        self.set_iova(iova);
        self
    }
}

/// A syncobj carrying the fence of a submit that has not run yet.
fn pending_syncobj(k: &dyn Kernel) -> u32 {
    let handle = syncobj_create(k, 0);
    let mut s = drm_msm_syncobj {
        handle,
        flags: 0,
        point: 0,
    };
    let mut sa = drm_msm_gem_submit {
        flags: MSM_PIPE_3D0 | MSM_SUBMIT_SYNCOBJ_OUT,
        out_syncobjs: &mut s as *mut _ as u64,
        nr_out_syncobjs: 1,
        syncobj_stride: 16,
        ..Default::default()
    };
    raw(k, DRM_IOCTL_MSM_GEM_SUBMIT, &mut sa).unwrap();
    handle
}

fn errno_of(f: &SimFile, q: u32, op: drm_msm_vm_bind_op) -> Result<(), Errno> {
    bind(f, q, &[op])
}

/// A well-behaved client's teardown of its VA space: one UNMAP of the whole range on bind queue
/// `q`, then its job runs. Queued jobs run first: a job over the throttle limit would keep the
/// UNMAP waiting forever on the manual clock.
fn unmap_all(f: &SimFile, q: u32) {
    f.sim().gpu_run_until_idle();
    let size = f.sim().profile().va_size_B();
    bind(f, q, &[unmap(VA, size)]).unwrap();
    f.sim().gpu_run_until_idle();
}

/// Ends a test whose VM went unusable: every VM_BIND, an UNMAP included, is EPIPE from then on,
/// so the mappings in `vmas` are what the file's close is left to release, and nothing else.
fn close_unusable(f: SimFile, q: u32, handles: &[u32], vmas: Vec<(u64, u64)>) {
    close_all(&f, &[q], handles, &[]);
    let report = f.close();
    assert_eq!(
        report,
        LeakReport {
            vmas,
            ..Default::default()
        }
    );
}

/// Closes what a test opened: submitqueues, GEM handles, syncobjs.
fn close_all(f: &SimFile, queues: &[u32], handles: &[u32], syncobjs: &[u32]) {
    for &q in queues {
        ioctl::submitqueue_close(f, q).unwrap();
    }
    for &h in handles {
        gem_close(f, h).unwrap();
    }
    for &s in syncobjs {
        ioctl::syncobj_destroy(f, s).unwrap();
    }
}

// ---- the ioctl's checks, in order ---------------------------------------------------------

#[test]
fn unusable_vm_is_epipe_before_anything_else() {
    let f = vb_file();
    let q = bind_queue(&f);
    submit_cmd(&f, 0x1_2345_6000).unwrap();
    f.sim().gpu_run_until_idle();
    assert!(f.vm_unusable());
    // Even with unknown flags and an unknown queue, EPIPE comes first.
    let r = Bind::new(999, &[]).with(|a| a.flags = 0x80).run(&f);
    assert_eq!(r.err(), Some(Errno::EPIPE));
    assert_eq!(bind(&f, q, &[]), Err(Errno::EPIPE));
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn context_not_in_vm_bind_mode_is_einval() {
    let f = file_with("a750", opts(0));
    assert_eq!(bind(&f, 0, &[]), Err(Errno::EINVAL));
}

#[test]
fn unknown_bind_flags_are_einval() {
    let f = vb_file();
    let q = bind_queue(&f);
    let r = Bind::new(q, &[]).with(|a| a.flags = 0x4).run(&f);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn unknown_queue_is_enoent() {
    let f = vb_file();
    assert_eq!(bind(&f, 7, &[]), Err(Errno::ENOENT));
}

#[test]
fn queue_without_the_vm_bind_flag_is_einval() {
    let f = vb_file();
    assert_eq!(bind(&f, 0, &[]), Err(Errno::EINVAL));
    let plain = queue_new(&f, 0, 0).unwrap();
    assert_eq!(bind(&f, plain, &[]), Err(Errno::EINVAL));
    close_all(&f, &[plain], &[], &[]);
}

#[test]
fn bad_in_fence_fd_is_einval() {
    let f = vb_file();
    let q = bind_queue(&f);
    let r = Bind::new(q, &[])
        .with(|a| {
            a.flags = MSM_VM_BIND_FENCE_FD_IN;
            a.fence_fd = 1_000_000;
        })
        .run(&f);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    let r = Bind::new(q, &[])
        .with(|a| {
            a.flags = MSM_VM_BIND_FENCE_FD_IN;
            a.fence_fd = file.as_raw_fd();
        })
        .run(&f);
    assert_eq!(r.err(), Some(Errno::EINVAL), "not a sync file");
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn in_syncobj_unknown_flags_are_einval() {
    let f = vb_file();
    let q = bind_queue(&f);
    let s = syncobj_create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    let r = Bind::new(q, &[]).wait(s, 2, 0).run(&f);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    close_all(&f, &[q], &[], &[s]);
}

#[test]
fn in_syncobj_point_without_timeline_support_is_eopnotsupp() {
    let o = SimOptions {
        timeline_syncobjs: false,
        ..opts(0)
    };
    let f = vb_file_with("a750", o);
    let q = bind_queue(&f);
    let s = syncobj_create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    // The point is checked before the flags.
    let r = Bind::new(q, &[]).wait(s, 2, 5).run(&f);
    assert_eq!(r.err(), Some(Errno::EOPNOTSUPP));
    let r = Bind::new(q, &[]).signal(s, 0, 5).run(&f);
    assert_eq!(r.err(), Some(Errno::EOPNOTSUPP), "out-syncobj point too");
    close_all(&f, &[q], &[], &[s]);
}

#[test]
fn in_syncobj_unknown_handle_is_enoent_and_empty_one_einval() {
    let f = vb_file();
    let q = bind_queue(&f);
    let r = Bind::new(q, &[]).wait(77, 0, 0).run(&f);
    assert_eq!(r.err(), Some(Errno::ENOENT));
    let empty = syncobj_create(&f, 0);
    let r = Bind::new(q, &[]).wait(empty, 0, 0).run(&f);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    close_all(&f, &[q], &[], &[empty]);
}

#[test]
fn out_syncobj_flags_or_unknown_handle_are_einval() {
    let f = vb_file();
    let q = bind_queue(&f);
    let s = syncobj_create(&f, 0);
    let r = Bind::new(q, &[]).signal(s, 1, 0).run(&f);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    let r = Bind::new(q, &[]).signal(99, 0, 0).run(&f);
    assert_eq!(r.err(), Some(Errno::EINVAL));
    close_all(&f, &[q], &[], &[s]);
}

#[test]
fn syncobjs_are_read_only_when_their_pointer_is_non_zero() {
    let f = vb_file();
    let q = bind_queue(&f);
    let r = Bind::new(q, &[])
        .with(|a| {
            a.nr_in_syncobjs = 5;
            a.nr_out_syncobjs = 5;
        })
        .run(&f);
    assert!(r.is_ok(), "{r:?}");
    // A non-zero pointer is read even without... a count of 0 reads nothing.
    let r = Bind::new(q, &[])
        .with(|a| {
            a.in_syncobjs = 8;
            a.nr_in_syncobjs = 1;
        })
        .run(&f);
    assert_eq!(r.err(), Some(Errno::EFAULT));
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn syncobj_elements_are_read_with_at_most_16_bytes_of_stride() {
    let f = vb_file();
    let q = bind_queue(&f);
    let s = syncobj_create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    // 24-byte elements: the extra 8 bytes of each are ignored.
    let words: [u64; 6] = [s as u64, 0, u64::MAX, s as u64, 0, u64::MAX];
    let r = Bind::new(q, &[])
        .with(|a| {
            a.in_syncobjs = words.as_ptr() as u64;
            a.nr_in_syncobjs = 2;
            a.syncobj_stride = 24;
        })
        .run(&f);
    assert!(r.is_ok(), "{r:?}");
    close_all(&f, &[q], &[], &[s]);
}

#[test]
fn every_op_rule_is_einval() {
    let f = vb_file();
    let q = bind_queue(&f);
    let h = wc_bo(&f, 16 * PAGE);
    let end = VA + f.sim().profile().va_size_B();
    let cases: Vec<(&str, drm_msm_vm_bind_op)> = vec![
        ("unknown op flag", {
            let mut o = map(h, 0, VA, PAGE);
            o.flags = 2;
            o
        }),
        ("misaligned iova", map(h, 0, VA + 0x800, PAGE)),
        ("misaligned obj_offset", map(h, 0x800, VA, PAGE)),
        ("misaligned range", map(h, 0, VA, 0x800)),
        ("below VA_START", map(h, 0, VA - PAGE, PAGE)),
        ("past the VA end", map_null(end - PAGE, 2 * PAGE)),
        ("overflowing range", unmap(u64::MAX - 0xfff, 2 * PAGE)),
        ("MAP with handle 0", map(0, 0, VA, PAGE)),
        ("UNMAP with a handle", {
            let mut o = unmap(VA, PAGE);
            o.handle = h;
            o
        }),
        ("MAP_NULL with a handle", {
            let mut o = map_null(VA, PAGE);
            o.handle = h;
            o
        }),
        ("unknown op", {
            let mut o = unmap(VA, PAGE);
            o.op = 3;
            o
        }),
        ("unknown handle", map(h + 1, 0, VA, PAGE)),
        ("past the BO's end", map(h, 8 * PAGE, VA, 9 * PAGE)),
    ];
    for (what, op) in cases {
        assert_eq!(errno_of(&f, q, op), Err(Errno::EINVAL), "{what}");
    }
    // The edges are fine.
    assert_eq!(errno_of(&f, q, map_null(end - PAGE, PAGE)), Ok(()));
    assert_eq!(errno_of(&f, q, map(h, 8 * PAGE, VA, 8 * PAGE)), Ok(()));
    unmap_all(&f, q);
    close_all(&f, &[q], &[h], &[]);
}

#[test]
fn map_null_without_prr_is_einval() {
    let f = vb_file_with("a618", opts(0));
    let q = bind_queue(&f);
    assert_eq!(errno_of(&f, q, map_null(VA, PAGE)), Err(Errno::EINVAL));
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn every_op_is_checked_before_anything_changes() {
    let f = vb_file();
    let q = bind_queue(&f);
    let h = wc_bo(&f, PAGE);
    let r = bind(&f, q, &[map(h, 0, VA, PAGE), map(h, 0, VA + 0x10, PAGE)]);
    assert_eq!(r, Err(Errno::EINVAL));
    assert!(f.vmas().is_empty());
    // An unknown handle is found in the second pass, still before anything changes.
    let r = bind(&f, q, &[map(h, 0, VA, PAGE), map(9, 0, VA + PAGE, PAGE)]);
    assert_eq!(r, Err(Errno::EINVAL));
    assert!(f.vmas().is_empty());
    assert!(!f.vm_unusable());
    close_all(&f, &[q], &[h], &[]);
}

#[test]
fn bad_ops_pointer_is_efault() {
    let f = vb_file();
    let q = bind_queue(&f);
    let mut b = Bind::new(q, &[]);
    let mut a = b.a;
    a.nr_ops = 2;
    a.u.ops = 8;
    assert_eq!(raw(&f, DRM_IOCTL_MSM_VM_BIND, &mut a), Err(Errno::EFAULT));
    b.ops = vec![];
    assert!(b.run(&f).is_ok());
    close_all(&f, &[q], &[], &[]);
}

/// KMALLOC_MAX_SIZE (arm64, 4 KiB pages): the largest table the kernel allocates for a count the
/// caller chooses.
const KMALLOC_MAX_B: u32 = 4 << 20;

#[test]
fn an_op_table_past_the_largest_kmalloc_is_enomem_before_any_op_is_read() {
    // vm_bind_job_create kzallocs the job with 40 bytes per op before reading the ops: past the
    // largest kmalloc that is ENOMEM, below it the unmapped table is EFAULT.
    let f = vb_file();
    let q = bind_queue(&f);
    let fits = KMALLOC_MAX_B / 40;
    for (nr_ops, want) in [
        (fits + 1, Errno::ENOMEM),
        (u32::MAX, Errno::ENOMEM),
        (fits, Errno::EFAULT),
    ] {
        let r = Bind::new(q, &[])
            .with(|a| {
                a.nr_ops = nr_ops;
                a.u.ops = 8;
            })
            .run_raw(&f);
        assert_eq!(r.err(), Some(want), "{nr_ops} ops");
    }
    assert!(tree(&f).is_empty());
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn syncobj_tables_past_the_largest_kmalloc_are_enomem_before_any_entry_is_read() {
    // msm_syncobj_parse_deps kcallocs one pointer per in-syncobj, msm_syncobj_parse_post_deps
    // one 24-byte post_dep per out-syncobj, each before reading the first entry.
    let f = vb_file();
    let q = bind_queue(&f);
    let cases: [(u32, bool, Errno); 4] = [
        (KMALLOC_MAX_B / 8 + 1, true, Errno::ENOMEM),
        (KMALLOC_MAX_B / 8, true, Errno::EFAULT),
        (KMALLOC_MAX_B / 24 + 1, false, Errno::ENOMEM),
        (KMALLOC_MAX_B / 24, false, Errno::EFAULT),
    ];
    for (count, ins, want) in cases {
        let r = Bind::new(q, &[])
            .with(|a| {
                if ins {
                    a.in_syncobjs = 8;
                    a.nr_in_syncobjs = count;
                } else {
                    a.out_syncobjs = 8;
                    a.nr_out_syncobjs = count;
                }
            })
            .run(&f);
        assert_eq!(
            r.err(),
            Some(want),
            "{count} {}",
            if ins { "in" } else { "out" }
        );
    }
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn an_in_syncobj_point_is_truncated_to_32_bits() {
    // drm_sched_job_add_syncobj_dependency takes the point as a u32: a wait for point 2^32 + 1
    // is a wait for point 1, which the first bind signals.
    let f = vb_file();
    let q = bind_queue(&f);
    let s = syncobj_create(&f, 0);
    Bind::new(q, &[]).signal(s, 0, 1).run(&f).unwrap();
    let r = Bind::new(q, &[]).wait(s, 0, (1 << 32) + 1).run(&f);
    assert!(r.is_ok(), "{r:?}");
    // Point 2^32 + 2 is point 2, which nothing has signalled or submitted: EINVAL, as for 2.
    let r = Bind::new(q, &[]).wait(s, 0, (1 << 32) + 2).run(&f);
    assert_eq!(r.err(), Bind::new(q, &[]).wait(s, 0, 2).run(&f).err());
    close_all(&f, &[q], &[], &[s]);
}

#[test]
fn one_op_is_inline_and_op_stride_and_pad_are_ignored() {
    let f = vb_file();
    let q = bind_queue(&f);
    let h = wc_bo(&f, PAGE);
    let r = Bind::new(q, &[map(h, 0, VA, PAGE)])
        .with(|a| a.op_stride = 12345)
        .run(&f);
    assert!(r.is_ok());
    // Two ops are read 40 bytes apart whatever op_stride says; pad is not checked.
    let mut ops = [map(h, 0, VA + PAGE, PAGE), map(h, 0, VA + 2 * PAGE, PAGE)];
    ops[1].pad = 0xdead;
    let r = Bind::new(q, &ops).with(|a| a.op_stride = 7).run(&f);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(f.vmas().len(), 3);
    unmap_all(&f, q);
    close_all(&f, &[q], &[h], &[]);
}

#[test]
fn zero_ops_is_a_pure_sync_point() {
    let f = vb_file();
    let q = bind_queue(&f);
    let inp = pending_syncobj(&f);
    let out = syncobj_create(&f, 0);
    Bind::new(q, &[])
        .wait(inp, 0, 0)
        .signal(out, 0, 0)
        .run(&f)
        .unwrap();
    assert!(!syncobj_signalled(&f, out));
    assert!(f.sim().gpu_step(), "the submit");
    assert!(
        f.sim().gpu_step(),
        "the bind job, now that its in-fence signalled"
    );
    assert!(syncobj_signalled(&f, out));
    close_all(&f, &[q], &[], &[inp, out]);
}

#[test]
fn range_zero_is_not_rejected() {
    let f = vb_file();
    let q = bind_queue(&f);
    let h = wc_bo(&f, PAGE);
    assert_eq!(bind(&f, q, &[map(h, 0, VA, 0)]), Ok(()));
    assert_eq!(bind(&f, q, &[unmap(VA, 0)]), Ok(()));
    assert_eq!(bind(&f, q, &[map_null(VA, 0)]), Ok(()));
    assert!(f.vmas().is_empty(), "an empty VA is invisible");
    close_all(&f, &[q], &[h], &[]);
}

#[test]
fn dontneed_or_purged_bo_is_ebusy() {
    let f = vb_file();
    let q = bind_queue(&f);
    let h = wc_bo(&f, PAGE);
    madvise(&f, h, MSM_MADV_DONTNEED);
    assert_eq!(bind(&f, q, &[map(h, 0, VA, PAGE)]), Err(Errno::EBUSY));
    // Mapped once so it has pages, then purged.
    madvise(&f, h, MSM_MADV_WILLNEED);
    bind(&f, q, &[map(h, 0, VA, PAGE)]).unwrap();
    f.sim().gpu_run_until_idle();
    madvise(&f, h, MSM_MADV_DONTNEED);
    assert_eq!(f.sim().memory_pressure(), 1);
    madvise(&f, h, MSM_MADV_WILLNEED);
    assert_eq!(bind(&f, q, &[map(h, 0, VA, PAGE)]), Err(Errno::EBUSY));
    assert!(!f.vm_unusable(), "op-0-before failures leave the VM usable");
    unmap_all(&f, q);
    close_all(&f, &[q], &[h], &[]);
}

#[test]
fn pin_failure_is_enomem_and_changes_nothing() {
    let f = vb_file();
    let q = bind_queue(&f);
    let h = wc_bo(&f, PAGE);
    f.sim().inject(Injection {
        point: "VM_BIND:pin".into(),
        nth: 1,
        errno: Errno::ENOMEM,
    });
    assert_eq!(bind(&f, q, &[map(h, 0, VA, PAGE)]), Err(Errno::ENOMEM));
    assert!(f.vmas().is_empty());
    assert_eq!(
        f.prealloc_in_flight(),
        (0, 0),
        "the failed job left the throttle"
    );
    assert_eq!(bind(&f, q, &[map(h, 0, VA, PAGE)]), Ok(()));
    unmap_all(&f, q);
    close_all(&f, &[q], &[h], &[]);
}

#[test]
fn prealloc_failure_is_enomem() {
    let f = vb_file();
    let q = bind_queue(&f);
    f.sim().inject(Injection {
        point: "VM_BIND:prealloc".into(),
        nth: 1,
        errno: Errno::ENOMEM,
    });
    assert_eq!(bind(&f, q, &[map_null(VA, PAGE)]), Err(Errno::ENOMEM));
    // A job needing more table memory than the model has is ENOMEM too.
    let huge = map_null(VA, (1u64 << 47) - VA);
    assert_eq!(bind(&f, q, &[huge]), Err(Errno::ENOMEM));
    assert!(!f.vm_unusable());
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn op_0_failing_fails_the_ioctl_only() {
    let f = vb_file();
    let q = bind_queue(&f);
    let h = wc_bo(&f, PAGE);
    f.sim().inject(Injection {
        point: "VM_BIND:op0".into(),
        nth: 1,
        errno: Errno::ENOMEM,
    });
    let r = bind(&f, q, &[map(h, 0, VA, PAGE), map(h, 0, VA + PAGE, PAGE)]);
    assert_eq!(r, Err(Errno::ENOMEM));
    assert!(!f.vm_unusable());
    assert!(f.vmas().is_empty());
    assert_eq!(bind(&f, q, &[map(h, 0, VA, PAGE)]), Ok(()));
    unmap_all(&f, q);
    close_all(&f, &[q], &[h], &[]);
}

#[test]
fn a_later_op_failing_makes_the_vm_unusable() {
    let f = vb_file();
    let q = bind_queue(&f);
    let h = wc_bo(&f, PAGE);
    f.sim().inject(Injection {
        point: "VM_BIND:op1".into(),
        nth: 1,
        errno: Errno::ENOMEM,
    });
    let r = bind(&f, q, &[map(h, 0, VA, PAGE), map(h, 0, VA + PAGE, PAGE)]);
    assert_eq!(r, Err(Errno::ENOMEM));
    assert!(f.vm_unusable());
    assert_eq!(bind(&f, q, &[]), Err(Errno::EPIPE));
    assert_eq!(submit_cmd(&f, VA), Err(Errno::EPIPE));
    close_unusable(f, q, &[h], vec![(VA, PAGE)]);
}

#[test]
fn a_failed_job_makes_the_vm_unusable_and_queued_submits_run_empty() {
    let f = vb_file();
    let q = bind_queue(&f);
    let h = wc_bo(&f, PAGE);
    f.sim().inject(Injection {
        point: "VM_BIND:job".into(),
        nth: 1,
        errno: Errno::ENOMEM,
    });
    bind(&f, q, &[map(h, 0, VA, PAGE)]).unwrap();
    // A submit queued before the bind job runs would fault at an unmapped address...
    submit_cmd(&f, 0x1_4000_0000).unwrap();
    assert!(!f.vm_unusable(), "the failure shows when the job runs");
    assert_eq!(f.sim().gpu_run_until_idle(), 2);
    assert!(f.vm_unusable());
    // ...but it ran with no commands: no fault.
    assert!(f.sim().devcoredumps().is_empty());
    assert!(!f.gpu_mapped(VA, PAGE), "the failed map wrote nothing");
    assert_eq!(bind(&f, q, &[]), Err(Errno::EPIPE));
    assert_eq!(submit_cmd(&f, VA), Err(Errno::EPIPE));
    close_unusable(f, q, &[h], vec![(VA, PAGE)]);
}

#[test]
fn a_gpu_fault_in_a_vm_bind_context_makes_vm_bind_epipe() {
    let f = vb_file();
    let q = bind_queue(&f);
    submit_cmd(&f, VA).unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(bind(&f, q, &[]), Err(Errno::EPIPE));
    close_all(&f, &[q], &[], &[]);
}

// ---- how ops change the VA tree -----------------------------------------------------------

#[test]
fn map_over_the_middle_keeps_prev_and_next_with_their_offsets() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, 16 * PAGE);
    let b = wc_bo(&f, 16 * PAGE);
    bind(&f, q, &[map(a, 2 * PAGE, VA, 8 * PAGE)]).unwrap();
    bind(&f, q, &[map(b, 0, VA + 3 * PAGE, 2 * PAGE)]).unwrap();
    assert_eq!(
        tree(&f),
        vec![
            (VA, 3 * PAGE, 2 * PAGE, false),
            (VA + 3 * PAGE, 2 * PAGE, 0, false),
            (VA + 5 * PAGE, 3 * PAGE, 7 * PAGE, false),
        ]
    );
    let v = f.vmas();
    assert_eq!(v[0].handle, Some(a));
    assert_eq!(v[1].handle, Some(b));
    assert_eq!(v[2].handle, Some(a));
    unmap_all(&f, q);
    close_all(&f, &[q], &[a, b], &[]);
}

#[test]
fn map_over_several_mappings_removes_or_trims_each() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, 16 * PAGE);
    let ops: Vec<_> = (0..4)
        .map(|i| map(a, i * PAGE, VA + i * 2 * PAGE, 2 * PAGE))
        .collect();
    bind(&f, q, &ops).unwrap();
    bind(&f, q, &[map_null(VA + PAGE, 5 * PAGE)]).unwrap();
    assert_eq!(
        tree(&f),
        vec![
            (VA, PAGE, 0, false),
            (VA + PAGE, 5 * PAGE, 0, true),
            (VA + 6 * PAGE, 2 * PAGE, 3 * PAGE, false),
        ]
    );
    unmap_all(&f, q);
    close_all(&f, &[q], &[a], &[]);
}

#[test]
fn adjacent_mappings_are_never_merged() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, 4 * PAGE);
    bind(&f, q, &[map(a, 0, VA, PAGE), map(a, PAGE, VA + PAGE, PAGE)]).unwrap();
    assert_eq!(
        tree(&f),
        vec![(VA, PAGE, 0, false), (VA + PAGE, PAGE, PAGE, false)]
    );
    unmap_all(&f, q);
    close_all(&f, &[q], &[a], &[]);
}

#[test]
fn remapping_the_identical_range_unmaps_then_maps() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, PAGE);
    bind(&f, q, &[map(a, 0, VA, PAGE)]).unwrap();
    bind(&f, q, &[map(a, 0, VA, PAGE)]).unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(
        log(&f),
        vec![
            ("map".into(), q, VA, PAGE),
            ("unmap".into(), q, VA, PAGE),
            ("map".into(), q, VA, PAGE),
        ]
    );
    assert_eq!(tree(&f), vec![(VA, PAGE, 0, false)]);
    unmap_all(&f, q);
    close_all(&f, &[q], &[a], &[]);
}

#[test]
fn unmap_trims_or_removes_and_an_empty_range_does_nothing() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, 8 * PAGE);
    bind(&f, q, &[map(a, 0, VA, 8 * PAGE)]).unwrap();
    bind(&f, q, &[unmap(VA + 2 * PAGE, 2 * PAGE)]).unwrap();
    assert_eq!(
        tree(&f),
        vec![
            (VA, 2 * PAGE, 0, false),
            (VA + 4 * PAGE, 4 * PAGE, 4 * PAGE, false)
        ]
    );
    // Nothing mapped there: nothing happens.
    bind(&f, q, &[unmap(VA + 0x100_0000, 16 * PAGE)]).unwrap();
    bind(&f, q, &[unmap(VA + 4 * PAGE, 4 * PAGE)]).unwrap();
    assert_eq!(tree(&f), vec![(VA, 2 * PAGE, 0, false)]);
    unmap_all(&f, q);
    close_all(&f, &[q], &[a], &[]);
}

#[test]
fn one_bo_can_be_mapped_at_several_addresses_and_in_part() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, 4 * PAGE);
    bind(
        &f,
        q,
        &[map(a, PAGE, VA, PAGE), map(a, 0, VA + MB2, 4 * PAGE)],
    )
    .unwrap();
    f.sim().gpu_run_until_idle();
    let id = f.vmas()[0].obj_id;
    assert_eq!(
        f.pte(VA),
        Some(Pte::Bo {
            obj_id: id,
            offset_B: PAGE
        })
    );
    assert_eq!(
        f.pte(VA + MB2 + 3 * PAGE),
        Some(Pte::Bo {
            obj_id: id,
            offset_B: 3 * PAGE
        })
    );
    unmap_all(&f, q);
    close_all(&f, &[q], &[a], &[]);
}

#[test]
fn map_null_maps_the_zero_page() {
    let f = vb_file();
    let q = bind_queue(&f);
    bind(&f, q, &[map_null(VA, 4 * PAGE)]).unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(f.pte(VA + 3 * PAGE), Some(Pte::Zero));
    assert!(f.gpu_mapped(VA, 4 * PAGE));
    assert!(f.vmas()[0].null);
    unmap_all(&f, q);
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn closing_the_gem_handle_does_not_unmap() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, PAGE);
    bind(&f, q, &[map(a, 0, VA, PAGE)]).unwrap();
    f.sim().gpu_run_until_idle();
    gem_close(&f, a).unwrap();
    let v = f.vmas();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].handle, None, "no handle left, the VMA holds the BO");
    assert!(f.gpu_mapped(VA, PAGE));
    submit_cmd(&f, VA).unwrap();
    f.sim().gpu_run_until_idle();
    assert!(f.sim().devcoredumps().is_empty());
    unmap_all(&f, q);
    close_all(&f, &[q], &[], &[]);
}

// ---- the job: fences, order, page tables --------------------------------------------------

#[test]
fn ops_change_the_tree_at_once_and_the_page_tables_when_the_job_runs() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, PAGE);
    let out = syncobj_create(&f, 0);
    let r = Bind::new(q, &[map(a, 0, VA, PAGE)])
        .with(|a| a.flags = MSM_VM_BIND_FENCE_FD_OUT)
        .signal(out, 0, 0)
        .run(&f)
        .unwrap();
    // SAFETY: the model returned a new sync-file fd.
    let fd = unsafe { OwnedFd::from_raw_fd(r.fence_fd) };
    assert_eq!(f.vmas().len(), 1);
    assert!(!f.gpu_mapped(VA, PAGE));
    assert!(!syncobj_signalled(&f, out));
    // A submit that runs before the bind job faults.
    submit_cmd(&f, VA).unwrap();
    assert!(f.sim().gpu_step(), "one of the two jobs");
    assert!(f.sim().gpu_step());
    assert!(f.gpu_mapped(VA, PAGE));
    assert!(syncobj_signalled(&f, out));
    assert!(readable(fd.as_raw_fd()), "the out fence fd signalled");
    drop(fd);
    unmap_all(&f, q);
    close_all(&f, &[q], &[a], &[out]);
}

#[test]
fn the_job_waits_for_its_in_fence_fd() {
    let f = vb_file();
    let q = bind_queue(&f);
    let mut sa = drm_msm_gem_submit {
        flags: MSM_PIPE_3D0 | MSM_SUBMIT_FENCE_FD_OUT,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MSM_GEM_SUBMIT, &mut sa).unwrap();
    // SAFETY: a new sync-file fd from the model.
    let in_fd = unsafe { OwnedFd::from_raw_fd(sa.fence_fd) };
    let out = syncobj_create(&f, 0);
    Bind::new(q, &[map_null(VA, PAGE)])
        .with(|a| {
            a.flags = MSM_VM_BIND_FENCE_FD_IN;
            a.fence_fd = in_fd.as_raw_fd();
        })
        .signal(out, 0, 0)
        .run(&f)
        .unwrap();
    assert_eq!(f.sim().gpu_pending(), 2);
    f.sim().gpu_run_until_idle();
    assert!(syncobj_signalled(&f, out));
    assert!(f.gpu_mapped(VA, PAGE));
    drop(in_fd);
    unmap_all(&f, q);
    close_all(&f, &[q], &[], &[out]);
}

#[test]
fn vm_bind_queues_of_a_file_share_one_scheduler() {
    let f = vb_file();
    let q1 = bind_queue(&f);
    let q2 = bind_queue(&f);
    let blocker = pending_syncobj(&f);
    Bind::new(q1, &[map_null(VA, PAGE)])
        .wait(blocker, 0, 0)
        .run(&f)
        .unwrap();
    bind(&f, q2, &[map_null(VA + PAGE, PAGE)]).unwrap();
    // Only the submit can run: q2's job is behind q1's on the shared scheduler.
    assert!(f.sim().gpu_step());
    assert!(!f.gpu_mapped(VA + PAGE, PAGE) || f.gpu_mapped(VA, PAGE));
    f.sim().gpu_run_until_idle();
    assert_eq!(
        log(&f),
        vec![
            ("map".into(), q1, VA, PAGE),
            ("map".into(), q2, VA + PAGE, PAGE)
        ]
    );
    unmap_all(&f, q1);
    close_all(&f, &[q1, q2], &[], &[blocker]);
}

#[test]
fn wait_fence_does_not_work_on_vm_bind_queues() {
    let f = vb_file();
    let q = bind_queue(&f);
    bind(&f, q, &[map_null(VA, PAGE)]).unwrap();
    let mut a = drm_msm_wait_fence {
        fence: 1,
        flags: 0,
        timeout: drm_msm_timespec::default(),
        queueid: q,
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_MSM_WAIT_FENCE, &mut a),
        Err(Errno::EINVAL)
    );
    unmap_all(&f, q);
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn page_tables_have_4_levels_4k_leaves_and_are_never_freed() {
    let f = vb_file();
    let q = bind_queue(&f);
    assert_eq!(f.pt_pages(), Some(1), "the root comes with the VM");
    bind(&f, q, &[map_null(VA, PAGE)]).unwrap();
    assert_eq!(
        f.pt_pages(),
        Some(1),
        "tables are written when the job runs"
    );
    f.sim().gpu_run_until_idle();
    assert_eq!(f.pt_pages(), Some(4));
    // Same 2 MiB block: nothing new. Next 2 MiB block: one more leaf table.
    bind(
        &f,
        q,
        &[map_null(VA + PAGE, PAGE), map_null(VA + MB2, PAGE)],
    )
    .unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(f.pt_pages(), Some(5));
    // Another 1 GiB: one L2 and one L3 table. A 2 MiB map is 512 leaf PTEs, no block.
    bind(&f, q, &[map_null(VA + (1 << 30), MB2)]).unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(f.pt_pages(), Some(7));
    assert!(f.pte(VA + (1 << 30) + MB2 - PAGE).is_some());
    bind(&f, q, &[unmap(VA, 1 << 31)]).unwrap();
    f.sim().gpu_run_until_idle();
    assert!(!f.gpu_mapped(VA, PAGE));
    assert_eq!(f.pt_pages(), Some(7), "never freed while the VM lives");
    close_all(&f, &[q], &[], &[]);
}

// ---- preallocation and the throttle -------------------------------------------------------

#[test]
fn prealloc_follows_the_grouping_rule() {
    let f = vb_file();
    let q = bind_queue(&f);
    bind(&f, q, &[map_null(VA, PAGE)]).unwrap();
    assert_eq!(f.last_prealloc(), 3);
    // Sorted 4 KiB maps in one 2 MiB block: one group.
    let ops: Vec<_> = (0..8).map(|i| map_null(VA + i * PAGE, PAGE)).collect();
    bind(&f, q, &ops).unwrap();
    assert_eq!(f.last_prealloc(), 3);
    // Unsorted: 3 each. UNMAPs are skipped and do not break a group.
    let ops = [
        map_null(VA + 3 * MB2, PAGE),
        unmap(VA, PAGE),
        map_null(VA + MB2, PAGE),
        map_null(VA + MB2 + PAGE, PAGE),
    ];
    bind(&f, q, &ops).unwrap();
    assert_eq!(f.last_prealloc(), 6);
    assert_eq!(f.prealloc_in_flight().0, 12);
    f.sim().gpu_run_until_idle();
    assert_eq!(
        f.prealloc_in_flight(),
        (0, 0),
        "freed jobs leave the throttle"
    );
    unmap_all(&f, q);
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn a_job_over_1024_pages_is_admitted_alone_and_the_next_waits_until_it_is_freed() {
    let f = vb_file();
    let q = bind_queue(&f);
    // 600 maps, each in its own 2 MiB block of its own... 3 pages each: 1800 > 1024.
    let ops: Vec<_> = (0..600)
        .map(|i| map_null(VA + (599 - i) * MB2, PAGE))
        .collect();
    bind(&f, q, &ops).unwrap();
    let big = f.last_prealloc() as i32;
    assert!(big > 1024, "{big}");
    assert_eq!(
        f.prealloc_in_flight(),
        (big, 0),
        "admitted although over the limit"
    );
    std::thread::scope(|s| {
        let t = s.spawn(|| bind(&f, q, &[map_null(VA + (1 << 32), PAGE)]));
        while f.prealloc_in_flight().1 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!t.is_finished(), "the second VM_BIND waits");
        assert!(f.sim().gpu_step(), "the big job runs and is freed");
        assert_eq!(t.join().unwrap(), Ok(()));
    });
    assert_eq!(f.prealloc_in_flight(), (3, 0));
    unmap_all(&f, q);
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn the_throttle_wait_is_interruptible() {
    let f = vb_file();
    let q = bind_queue(&f);
    let ops: Vec<_> = (0..400)
        .map(|i| map_null(VA + (399 - i) * MB2, PAGE))
        .collect();
    bind(&f, q, &ops).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| bind(&f, q, &[map_null(VA + (1 << 32), PAGE)]));
        while f.prealloc_in_flight().1 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        f.interrupt_vm_bind();
        assert_eq!(t.join().unwrap(), Err(Errno::EINTR));
    });
    assert_eq!(f.vmas().len(), 400, "the interrupted bind changed nothing");
    unmap_all(&f, q);
    close_all(&f, &[q], &[], &[]);
}

// ---- the VM log, close, purge, devcoredump ------------------------------------------------

#[test]
fn the_log_is_off_by_default_and_capped_at_256_entries() {
    let f = vb_file_with("a750", opts(0));
    let q = bind_queue(&f);
    bind(&f, q, &[map_null(VA, PAGE)]).unwrap();
    f.sim().gpu_run_until_idle();
    assert!(f.vm_log().is_empty());
    unmap_all(&f, q);
    close_all(&f, &[q], &[], &[]);
    let f = vb_file_with("a750", opts(12));
    let q = bind_queue(&f);
    let ops: Vec<_> = (0..300).map(|i| map_null(VA + i * PAGE, PAGE)).collect();
    bind(&f, q, &ops).unwrap();
    f.sim().gpu_run_until_idle();
    let l = f.vm_log();
    assert_eq!(l.len(), 256);
    assert_eq!(
        l[0].iova,
        VA + 44 * PAGE,
        "the oldest entries were overwritten"
    );
    unmap_all(&f, q);
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn a_split_logs_the_unmapped_middle_with_the_queue_id() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, 8 * PAGE);
    bind(
        &f,
        q,
        &[map(a, 0, VA, 8 * PAGE), unmap(VA + 2 * PAGE, PAGE)],
    )
    .unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(
        log(&f),
        vec![
            ("map".into(), q, VA, 8 * PAGE),
            ("unmap".into(), q, VA + 2 * PAGE, PAGE),
        ]
    );
    unmap_all(&f, q);
    close_all(&f, &[q], &[a], &[]);
}

#[test]
fn file_close_waits_for_the_last_fence_then_closes_every_vma_on_queue_0() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, 4 * PAGE);
    bind(&f, q, &[map(a, 0, VA, 4 * PAGE), map_null(VA + MB2, PAGE)]).unwrap();
    f.sim().gpu_run_until_idle();
    submit_cmd(&f, VA).unwrap();
    let vm = f.vm_debug().unwrap();
    let sim = f.sim();
    // What close does with everything the file still holds is the point: the report lists it all.
    let report = f.close();
    assert_eq!(
        report,
        LeakReport {
            handles: vec![a],
            queues: vec![q],
            vmas: vec![(VA, 4 * PAGE), (VA + MB2, PAGE)],
            ..Default::default()
        }
    );
    assert_eq!(vm.lock().vmas.len(), 2, "the last submit has not run yet");
    sim.gpu_run_until_idle();
    let inner = vm.lock();
    assert!(inner.vmas.is_empty());
    let tail: Vec<_> = inner
        .log_entries()
        .iter()
        .rev()
        .take(2)
        .map(|e| (e.op, e.queue_id, e.iova, e.range_B))
        .collect();
    assert_eq!(
        tail,
        vec![("close", 0, VA + MB2, PAGE), ("close", 0, VA, 4 * PAGE)]
    );
    assert!(!inner.ptes_cover(VA, PAGE));
    assert!(
        sim.devcoredumps().is_empty(),
        "nothing was unmapped under the submit"
    );
}

#[test]
fn purge_unmaps_vm_bind_mappings_logged_as_purge_but_keeps_the_vma() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, PAGE);
    bind(&f, q, &[map(a, 0, VA, PAGE)]).unwrap();
    f.sim().gpu_run_until_idle();
    madvise(&f, a, MSM_MADV_DONTNEED);
    assert_eq!(f.sim().memory_pressure(), 1);
    assert_eq!(log(&f).last(), Some(&("purge".into(), 0, VA, PAGE)));
    assert_eq!(f.vmas().len(), 1);
    assert!(!f.vmas()[0].mapped);
    assert!(!f.gpu_mapped(VA, PAGE));
    // Unmapping it later queues no page-table unmap (nothing is mapped).
    bind(&f, q, &[unmap(VA, PAGE)]).unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(log(&f).len(), 2);
    close_all(&f, &[q], &[a], &[]);
}

fn fault_dump(f: &SimFile) -> String {
    submit_cmd(f, 0x7_0000_0000).unwrap();
    f.sim().gpu_run_until_idle();
    let dumps = f.sim().devcoredumps();
    dumps.last().unwrap().text.clone()
}

fn vm_log_section(text: &str) -> String {
    let start = text.find("vm-log:\n").expect("a vm-log section");
    text[start..].to_string()
}

#[test]
fn devcoredump_vm_log_unwrapped_dumps_one_entry_fewer() {
    let f = vb_file_with("a750", opts(3));
    let q = bind_queue(&f);
    bind(&f, q, &[map_null(VA, PAGE), map_null(VA + MB2, 2 * PAGE)]).unwrap();
    bind(&f, q, &[unmap(VA, PAGE)]).unwrap();
    f.sim().gpu_run_until_idle();
    assert_eq!(f.vm_log().len(), 3);
    let text = fault_dump(&f);
    assert_eq!(
        vm_log_section(&text),
        format!(
            "vm-log:\n  - map:{q}: 0x0000000100000000-0x0000000100001000\n  - map:{q}: 0x0000000100200000-0x0000000100202000\n"
        )
    );
    close_unusable(f, q, &[], vec![(VA + MB2, 2 * PAGE)]);
}

#[test]
fn devcoredump_vm_log_wrapped_dumps_the_whole_ring_oldest_first() {
    let f = vb_file_with("a750", opts(2));
    let q = bind_queue(&f);
    let ops: Vec<_> = (0..6).map(|i| map_null(VA + i * PAGE, PAGE)).collect();
    bind(&f, q, &ops).unwrap();
    f.sim().gpu_run_until_idle();
    let text = fault_dump(&f);
    let mut want = String::from("vm-log:\n");
    for i in 2..6u64 {
        let a = VA + i * PAGE;
        want += &format!("  - map:{q}: 0x{a:016x}-0x{:016x}\n", a + PAGE);
    }
    assert_eq!(vm_log_section(&text), want);
    close_unusable(f, q, &[], (0..6).map(|i| (VA + i * PAGE, PAGE)).collect());
}

#[test]
fn no_vm_log_section_without_entries() {
    let f = vb_file_with("a750", opts(0));
    let q = bind_queue(&f);
    assert!(!fault_dump(&f).contains("vm-log:"));
    close_all(&f, &[q], &[], &[]);
}

#[test]
fn after_a_failed_map_the_job_skips_later_maps_but_still_unmaps() {
    let f = vb_file();
    let q = bind_queue(&f);
    bind(&f, q, &[map_null(VA + 2 * PAGE, PAGE)]).unwrap();
    f.sim().gpu_run_until_idle();
    f.sim().inject(Injection {
        point: "VM_BIND:job".into(),
        nth: 1,
        errno: Errno::ENOMEM,
    });
    let ops = [
        map_null(VA, PAGE),
        unmap(VA + 2 * PAGE, PAGE),
        map_null(VA + 4 * PAGE, PAGE),
    ];
    bind(&f, q, &ops).unwrap();
    f.sim().gpu_run_until_idle();
    assert!(f.vm_unusable());
    assert_eq!(
        log(&f),
        vec![
            ("map".into(), q, VA + 2 * PAGE, PAGE),
            ("map".into(), q, VA, PAGE),
            ("unmap".into(), q, VA + 2 * PAGE, PAGE),
        ],
        "the failed map is logged, the unmap runs, the last map is skipped"
    );
    assert_eq!(f.pte(VA), None);
    assert_eq!(f.pte(VA + 2 * PAGE), None);
    assert_eq!(f.pte(VA + 4 * PAGE), None);
    close_unusable(f, q, &[], vec![(VA, PAGE), (VA + 4 * PAGE, PAGE)]);
}

#[test]
fn split_remnants_keep_the_dump_flag() {
    let f = vb_file();
    let q = bind_queue(&f);
    let a = wc_bo(&f, 4 * PAGE);
    let mut m = map(a, 0, VA, 4 * PAGE);
    m.flags = MSM_VM_BIND_OP_DUMP;
    bind(&f, q, &[m, unmap(VA + PAGE, PAGE)]).unwrap();
    let v = f.vmas();
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|v| v.dump));
    // MAP_NULL takes no DUMP.
    bind(&f, q, &[map_null(VA + MB2, PAGE)]).unwrap();
    assert!(!f.vmas()[2].dump);
    unmap_all(&f, q);
    close_all(&f, &[q], &[a], &[]);
}

/// Pinning gets the object's pages from shmem (`msm_gem_get_pages`): an object larger than the
/// machine's memory (GEM_NEW takes up to 2^63 bytes) never gets them, and the MAP is ENOMEM with
/// nothing pinned or mapped. The same for a legacy GET_IOVA. Found by the c_abi fuzz target: a
/// 2^47-byte buffer was mapped page by page until the fuzzer ran out of memory.
#[test]
fn mapping_an_object_larger_than_memory_is_enomem() {
    let f = vb_file();
    let q = bind_queue(&f);
    let h = wc_bo(&f, 1 << 47);
    assert_eq!(errno_of(&f, q, map(h, 0, VA, 1 << 47)), Err(Errno::ENOMEM));
    assert!(tree(&f).is_empty());
    close_all(&f, &[q], &[h], &[]);

    let legacy = common::file("a660");
    let h = wc_bo(&legacy, 1 << 47);
    assert_eq!(
        ioctl::gem_info_value(&legacy, h, MSM_INFO_GET_IOVA, 0).map_err(|e| e.errno),
        Err(Errno::ENOMEM)
    );
    gem_close(&legacy, h).unwrap();
}
