//! Sync files and dma-bufs as Mesa's EGL and WSI use them: the model's answers to SYNC_IOC_*
//! (drivers/dma-buf/sync_file.c) and DMA_BUF_IOCTL_* (drivers/dma-buf/dma-buf.c) on the real
//! fds it hands out, through `sim::fd_ioctl`.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use common::submit::Submit;
use common::{file_with, gem_close, queue_new, raw, readable, wc_bo};
use msm_winsys::sim::fence::{new_context, Fence};
use msm_winsys::sim::{fd_ioctl, sync_file, Clock, SimFile, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::Errno;

fn manual() -> SimFile {
    file_with(
        "a750",
        SimOptions {
            clock: Clock::Manual,
            ..Default::default()
        },
    )
}

/// `ioctl(fd, request, arg)` through the model's entry for non-device fds.
fn io<T>(fd: RawFd, request: u32, arg: &mut T) -> Option<Result<(), Errno>> {
    // SAFETY: `arg` is a live, exclusively borrowed value of the request's argument type.
    unsafe { fd_ioctl(fd, request, (arg as *mut T).cast()) }
}

fn c_str(b: &[u8]) -> &str {
    std::str::from_utf8(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]).unwrap()
}

/// SYNC_IOC_FILE_INFO both ways: the count call, then the array call.
fn file_info(fd: RawFd) -> (sync_file_info, Vec<sync_fence_info>) {
    let mut info = sync_file_info::default();
    io(fd, SYNC_IOC_FILE_INFO, &mut info).unwrap().unwrap();
    let mut fences = vec![sync_fence_info::default(); info.num_fences as usize];
    let mut full = sync_file_info {
        num_fences: info.num_fences,
        sync_fence_info: fences.as_mut_ptr() as u64,
        ..Default::default()
    };
    io(fd, SYNC_IOC_FILE_INFO, &mut full).unwrap().unwrap();
    assert_eq!(full.num_fences, info.num_fences);
    assert_eq!(full.name, info.name);
    (full, fences)
}

fn own(raw: RawFd) -> OwnedFd {
    assert!(raw >= 0);
    // SAFETY: a new fd the model just returned to us.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

#[test]
fn file_info_of_a_submit_fence_names_the_scheduler_and_follows_its_signal() {
    // sync_fill_fence_info: the out-fence is the scheduler's finished fence (driver
    // "drm_sched", timeline the ring's scheduler: queue 0 sits at the middle priority,
    // DIV_ROUND_UP(4 rings * 3 - 1, 2) = 6 on a750, so ring 2); status 0 while pending, 1 once
    // signalled, with the signal's CLOCK_MONOTONIC timestamp; num_fences 0 asks for the count.
    let f = manual();
    let a = Submit::new()
        .with(|a| a.flags |= MSM_SUBMIT_FENCE_FD_OUT)
        .run(&f)
        .unwrap();
    let fd = own(a.fence_fd);
    let (info, fences) = file_info(fd.as_raw_fd());
    assert_eq!(info.num_fences, 1);
    assert_eq!(info.status, 0);
    assert_eq!(c_str(&fences[0].driver_name), "drm_sched");
    assert_eq!(c_str(&fences[0].obj_name), "ring2");
    assert_eq!((fences[0].status, fences[0].timestamp_ns), (0, 0));
    // sync_file_get_name: "<driver>-<timeline><context>-<seqno>".
    let name = c_str(&info.name).to_string();
    assert!(name.starts_with("drm_sched-ring2"), "{name}");
    assert!(name.ends_with(&format!("-{}", a.fence)), "{name}");
    let before_ns = common::monotonic_ns() as u64;
    assert!(f.sim().gpu_step());
    let (info, fences) = file_info(fd.as_raw_fd());
    assert_eq!((info.status, fences[0].status), (1, 1));
    assert!(fences[0].timestamp_ns >= before_ns);
    // A queue at priority 3 runs on ring 1 (prio / NR_SCHED_PRIORITIES).
    let q = queue_new(&f, 0, 3).unwrap();
    let b = Submit::new()
        .with(|a| {
            a.flags |= MSM_SUBMIT_FENCE_FD_OUT;
            a.queueid = q;
        })
        .run(&f)
        .unwrap();
    let fd_b = own(b.fence_fd);
    assert_eq!(c_str(&file_info(fd_b.as_raw_fd()).1[0].obj_name), "ring1");
    f.sim().gpu_run_until_idle();
    let mut id = q;
    raw(&f, DRM_IOCTL_MSM_SUBMITQUEUE_CLOSE, &mut id).unwrap();
}

#[test]
fn file_info_checks_flags_pad_and_the_array_size() {
    // sync_file_ioctl_fence_info: flags or pad set -> EINVAL; a nonzero num_fences smaller
    // than the fence count -> EINVAL; a bad array pointer -> EFAULT; a bad argument -> EFAULT.
    let (a, b) = (Fence::new(new_context(), 1), Fence::new(new_context(), 1));
    let fd = sync_file::export(Fence::array(vec![a.clone(), b.clone()]), 0x5f1e_0001).unwrap();
    let fd = fd.as_raw_fd();
    let mut info = sync_file_info {
        flags: 1,
        ..Default::default()
    };
    assert_eq!(
        io(fd, SYNC_IOC_FILE_INFO, &mut info),
        Some(Err(Errno::EINVAL))
    );
    info = sync_file_info {
        pad: 1,
        ..Default::default()
    };
    assert_eq!(
        io(fd, SYNC_IOC_FILE_INFO, &mut info),
        Some(Err(Errno::EINVAL))
    );
    let mut one = [sync_fence_info::default(); 1];
    info = sync_file_info {
        num_fences: 1,
        sync_fence_info: one.as_mut_ptr() as u64,
        ..Default::default()
    };
    assert_eq!(
        io(fd, SYNC_IOC_FILE_INFO, &mut info),
        Some(Err(Errno::EINVAL))
    );
    info = sync_file_info {
        num_fences: 2,
        sync_fence_info: 8,
        ..Default::default()
    };
    assert_eq!(
        io(fd, SYNC_IOC_FILE_INFO, &mut info),
        Some(Err(Errno::EFAULT))
    );
    // SAFETY: a bad pointer is the point: the model reads it as copy_from_user does.
    let r = unsafe { fd_ioctl(fd, SYNC_IOC_FILE_INFO, 8 as *mut _) };
    assert_eq!(r, Some(Err(Errno::EFAULT)));
    // An array's status: pending until each part signals; an error wins.
    let (info, fences) = file_info(fd);
    assert_eq!((info.num_fences, info.status), (2, 0));
    assert_eq!(c_str(&fences[0].driver_name), "dma_fence_array");
    a.signal_error(Errno::EIO);
    b.signal();
    let (info, fences) = file_info(fd);
    assert_eq!((fences[0].status, fences[1].status), (-libc::EIO, 1));
    assert_eq!(info.status, -libc::EIO);
    let mut count = sync_file_info::default();
    io(fd, SYNC_IOC_FILE_INFO, &mut count).unwrap().unwrap();
    assert_eq!(
        count.status,
        -libc::EIO,
        "the whole's status: the array's error"
    );
}

fn merge(fd: RawFd, fd2: RawFd, name: &str) -> Result<sync_merge_data, Errno> {
    let mut m = sync_merge_data {
        fd2,
        ..Default::default()
    };
    m.name[..name.len()].copy_from_slice(name.as_bytes());
    io(fd, SYNC_IOC_MERGE, &mut m).unwrap().map(|()| m)
}

#[test]
fn merge_keeps_the_pending_fences_the_later_per_timeline_under_the_given_name() {
    // sync_file_ioctl_merge + dma_fence_unwrap_merge: flags/pad -> EINVAL, fd2 not a sync
    // file -> ENOENT; the result holds the unsignalled fences, one per context (the later),
    // signals when all have, and carries the caller's name.
    let ctx = new_context();
    let (a1, a2, b) = (
        Fence::new(ctx, 1),
        Fence::new(ctx, 2),
        Fence::new(new_context(), 7),
    );
    let done = Fence::signalled();
    let id = 0x5f1e_0002;
    let fa1 = sync_file::export(a1.clone(), id).unwrap();
    let fa2 = sync_file::export(a2.clone(), id).unwrap();
    let fb = sync_file::export(b.clone(), id).unwrap();
    let fdone = sync_file::export(done, id).unwrap();
    let mut m = sync_merge_data {
        fd2: fb.as_raw_fd(),
        flags: 1,
        ..Default::default()
    };
    assert_eq!(
        io(fa1.as_raw_fd(), SYNC_IOC_MERGE, &mut m),
        Some(Err(Errno::EINVAL))
    );
    m.flags = 0;
    m.pad = 1;
    assert_eq!(
        io(fa1.as_raw_fd(), SYNC_IOC_MERGE, &mut m),
        Some(Err(Errno::EINVAL))
    );
    let not_sync = std::fs::File::open("/proc/self/stat").unwrap();
    assert_eq!(
        merge(fa1.as_raw_fd(), not_sync.as_raw_fd(), "x"),
        Err(Errno::ENOENT)
    );

    let ab = own(merge(fa1.as_raw_fd(), fb.as_raw_fd(), "frame")
        .unwrap()
        .fence);
    let abab = own(merge(ab.as_raw_fd(), fa2.as_raw_fd(), "again")
        .unwrap()
        .fence);
    let (info, fences) = file_info(abab.as_raw_fd());
    assert_eq!(c_str(&info.name), "again");
    assert_eq!(info.num_fences, 2, "a1 is replaced by the later a2");
    assert!(fences
        .iter()
        .all(|i| c_str(&i.driver_name) == "dma_fence_array"));
    // Merging with a signalled fence keeps only the pending one: that fence itself.
    let only_b = own(merge(fb.as_raw_fd(), fdone.as_raw_fd(), "b").unwrap().fence);
    let (info, fences) = file_info(only_b.as_raw_fd());
    assert_eq!(
        (info.num_fences, c_str(&fences[0].driver_name)),
        (1, "dma_fence_array")
    );
    assert!(Arc::ptr_eq(
        &sync_file::import(only_b.as_raw_fd()).unwrap(),
        &b
    ));
    // Nothing pending: a signalled stub.
    let stub = own(merge(fdone.as_raw_fd(), fdone.as_raw_fd(), "s")
        .unwrap()
        .fence);
    let (info, fences) = file_info(stub.as_raw_fd());
    assert_eq!((info.status, c_str(&fences[0].driver_name)), (1, "stub"));

    assert!(!readable(abab.as_raw_fd()));
    a2.signal();
    b.signal();
    assert!(
        readable(abab.as_raw_fd()),
        "the merged file signals with its last fence"
    );
    assert!(!readable(ab.as_raw_fd()), "a1 is still pending");
    a1.signal();
    assert!(readable(ab.as_raw_fd()));
}

#[test]
fn set_deadline_checks_only_pad_and_other_requests_are_enotty() {
    let fd = sync_file::export(Fence::new(new_context(), 1), 0x5f1e_0003).unwrap();
    let fd = fd.as_raw_fd();
    let mut d = sync_set_deadline {
        deadline_ns: 1,
        pad: 1,
    };
    assert_eq!(
        io(fd, SYNC_IOC_SET_DEADLINE, &mut d),
        Some(Err(Errno::EINVAL))
    );
    d.pad = 0;
    assert_eq!(io(fd, SYNC_IOC_SET_DEADLINE, &mut d), Some(Ok(())));
    // sync_file_ioctl's default: ENOTTY (here SYNC_IOC_MERGE with a wrong size).
    let mut x = 0u64;
    assert_eq!(
        io(fd, SYNC_IOC_MERGE & !(0x3fff << 16) | (8 << 16), &mut x),
        Some(Err(Errno::ENOTTY))
    );
    // A dma-buf request on a sync file, or any request on an fd that is not the model's:
    // not the model's business.
    assert_eq!(io(fd, DMA_BUF_IOCTL_SYNC, &mut x), None);
    let other = std::fs::File::open("/proc/self/stat").unwrap();
    assert_eq!(io(other.as_raw_fd(), SYNC_IOC_SET_DEADLINE, &mut d), None);
    assert_eq!(io(-1, SYNC_IOC_SET_DEADLINE, &mut d), None);
}

/// A PRIME export of a new WC buffer: (handle, dma-buf fd).
fn dmabuf(f: &SimFile) -> (u32, OwnedFd) {
    let h = wc_bo(f, 4096);
    let mut p = drm_prime_handle {
        handle: h,
        flags: DRM_CLOEXEC | DRM_RDWR,
        fd: -1,
    };
    raw(f, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut p).unwrap();
    (h, own(p.fd))
}

fn sync_arg(flags: u32, fd: RawFd) -> dma_buf_sync_file {
    dma_buf_sync_file { flags, fd }
}

#[test]
fn dma_buf_sync_file_export_and_import_follow_the_reservation() {
    // dma_buf_export_sync_file / dma_buf_import_sync_file: flags must be READ, WRITE or both
    // (EINVAL otherwise); import of a non-sync-file fd is EINVAL; an imported WRITE fence is
    // what both readers and writers wait for, a READ fence only writers.
    let f = manual();
    let (h, buf) = dmabuf(&f);
    let buf = buf.as_raw_fd();
    for bad in [0, 4, 1 | 4] {
        let mut a = sync_arg(bad, -1);
        assert_eq!(
            io(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &mut a),
            Some(Err(Errno::EINVAL))
        );
        assert_eq!(
            io(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &mut a),
            Some(Err(Errno::EINVAL))
        );
    }
    let mut a = sync_arg(DMA_BUF_SYNC_WRITE as u32, buf);
    assert_eq!(
        io(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &mut a),
        Some(Err(Errno::EINVAL))
    );

    // Idle: a signalled stub.
    let mut a = sync_arg(DMA_BUF_SYNC_RW as u32, -1);
    io(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &mut a)
        .unwrap()
        .unwrap();
    let idle = own(a.fd);
    let (info, fences) = file_info(idle.as_raw_fd());
    assert_eq!((info.status, c_str(&fences[0].driver_name)), (1, "stub"));

    // A reader's fence: writers wait for it, readers do not.
    let reader = Fence::new(new_context(), 1);
    let rfd = sync_file::export(reader.clone(), 0x5f1e_0004).unwrap();
    let mut a = sync_arg(DMA_BUF_SYNC_READ as u32, rfd.as_raw_fd());
    assert_eq!(
        io(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &mut a),
        Some(Ok(()))
    );
    let export = |flags: u64| {
        let mut a = sync_arg(flags as u32, -1);
        io(buf, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &mut a)
            .unwrap()
            .unwrap();
        own(a.fd)
    };
    let for_read = export(DMA_BUF_SYNC_READ);
    assert!(readable(for_read.as_raw_fd()));
    let for_write = export(DMA_BUF_SYNC_WRITE);
    assert!(Arc::ptr_eq(
        &sync_file::import(for_write.as_raw_fd()).unwrap(),
        &reader
    ));
    // A writer's fence: everyone waits; with the reader still pending, writers get both.
    let writer = Fence::new(new_context(), 1);
    let wfd = sync_file::export(writer.clone(), 0x5f1e_0004).unwrap();
    let mut a = sync_arg(DMA_BUF_SYNC_WRITE as u32, wfd.as_raw_fd());
    assert_eq!(
        io(buf, DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &mut a),
        Some(Ok(()))
    );
    assert_eq!(
        file_info(export(DMA_BUF_SYNC_READ).as_raw_fd())
            .0
            .num_fences,
        1
    );
    let both = export(DMA_BUF_SYNC_RW);
    assert_eq!(file_info(both.as_raw_fd()).0.num_fences, 2);
    assert!(!readable(both.as_raw_fd()));
    reader.signal();
    writer.signal();
    assert!(readable(both.as_raw_fd()));
    gem_close(&f, h).unwrap();
}

#[test]
fn dma_buf_ioctl_sync_checks_only_its_flags() {
    // DMA_BUF_IOCTL_SYNC: unknown bits -> EINVAL, neither READ nor WRITE -> EINVAL; begin and
    // end of CPU access are otherwise no-ops on the model's coherent memory. Other dma-buf
    // requests: ENOTTY; SET_NAME (the kernel has it) is left to the caller.
    let f = manual();
    let (h, buf) = dmabuf(&f);
    let buf = buf.as_raw_fd();
    for (flags, want) in [
        (0, Err(Errno::EINVAL)),
        (DMA_BUF_SYNC_END, Err(Errno::EINVAL)),
        (DMA_BUF_SYNC_READ | 8, Err(Errno::EINVAL)),
        (DMA_BUF_SYNC_READ, Ok(())),
        (DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END, Ok(())),
    ] {
        let mut s = dma_buf_sync { flags };
        assert_eq!(
            io(buf, DMA_BUF_IOCTL_SYNC, &mut s),
            Some(want),
            "{flags:#x}"
        );
    }
    let mut x = 0u64;
    let set_name = DMA_BUF_IOCTL_SYNC + 1;
    assert_eq!(io(buf, set_name, &mut x), None);
    assert_eq!(
        io(buf, DMA_BUF_IOCTL_SYNC + 9, &mut x),
        Some(Err(Errno::ENOTTY))
    );
    // A sync-file request on a dma-buf is not the model's (the memfd answers ENOTTY).
    assert_eq!(io(buf, SYNC_IOC_SET_DEADLINE, &mut x), None);
    gem_close(&f, h).unwrap();
}
