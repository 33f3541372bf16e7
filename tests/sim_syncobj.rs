//! The kernel model's DRM syncobj ioctls and sync files (drm_syncobj.c, sync_file.c,
//! dma-fence-chain.c), one test per rule, each asserting the exact errno.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use common::{file, file_with, monotonic_ns, raw, readable};
use drm_sys::*;
use msm_winsys::kernel::{ioctl, Kernel};
use msm_winsys::sim::fence::{new_context, Fence};
use msm_winsys::sim::{sync_file, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::Errno;

const ETIME: Errno = Errno(libc::ETIME);
/// An address no test maps: copy_from_user/copy_to_user there is EFAULT.
const BAD_PTR: u64 = 16;

fn create(k: &dyn Kernel, flags: u32) -> u32 {
    let mut a = drm_syncobj_create { handle: 0, flags };
    raw(k, DRM_IOCTL_SYNCOBJ_CREATE, &mut a).unwrap();
    a.handle
}

/// Destroys the test's syncobjs: under the leak check a file must close holding none.
fn destroy(k: &dyn Kernel, handles: &[u32]) {
    for &h in handles {
        ioctl::syncobj_destroy(k, h).unwrap();
    }
}

fn pending() -> Arc<Fence> {
    Fence::new(new_context(), 1)
}

fn sync_file_of(fence: &Arc<Fence>) -> OwnedFd {
    sync_file::export(fence.clone(), 0).unwrap()
}

fn fd_to_handle(
    k: &dyn Kernel,
    fd: RawFd,
    handle: u32,
    flags: u32,
    point: u64,
) -> Result<u32, Errno> {
    let mut a = drm_syncobj_handle {
        handle,
        flags,
        fd,
        pad: 0,
        point,
    };
    raw(k, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &mut a).map(|()| a.handle)
}

fn handle_to_fd(k: &dyn Kernel, handle: u32, flags: u32, point: u64) -> Result<OwnedFd, Errno> {
    let mut a = drm_syncobj_handle {
        handle,
        flags,
        fd: -1,
        pad: 0,
        point,
    };
    raw(k, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut a)?;
    // SAFETY: the model just installed this fd for us.
    Ok(unsafe { OwnedFd::from_raw_fd(a.fd) })
}

/// Puts `fence` into syncobj `h` (binary) through a sync-file import.
fn attach(k: &dyn Kernel, h: u32, fence: &Arc<Fence>) {
    let fd = sync_file_of(fence);
    let flags = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE;
    fd_to_handle(k, fd.as_raw_fd(), h, flags, 0).unwrap();
}

/// Adds `fence` as timeline point `point` of syncobj `h`.
fn attach_point(k: &dyn Kernel, h: u32, point: u64, fence: &Arc<Fence>) {
    let fd = sync_file_of(fence);
    let flags =
        DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE | DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE;
    fd_to_handle(k, fd.as_raw_fd(), h, flags, point).unwrap();
}

/// An absolute CLOCK_MONOTONIC timeout `ms` from now.
fn in_ms(ms: i64) -> i64 {
    monotonic_ns() + ms * 1_000_000
}

fn wait(k: &dyn Kernel, handles: &[u32], flags: u32, timeout_nsec: i64) -> Result<u32, Errno> {
    let mut a = drm_syncobj_wait {
        handles: handles.as_ptr() as u64,
        timeout_nsec,
        count_handles: handles.len() as u32,
        flags,
        first_signaled: 0xdead,
        ..Default::default()
    };
    raw(k, DRM_IOCTL_SYNCOBJ_WAIT, &mut a).map(|()| a.first_signaled)
}

fn timeline_wait(
    k: &dyn Kernel,
    handles: &[u32],
    points: &[u64],
    flags: u32,
    timeout_nsec: i64,
) -> Result<u32, Errno> {
    let mut a = drm_syncobj_timeline_wait {
        handles: handles.as_ptr() as u64,
        points: points.as_ptr() as u64,
        timeout_nsec,
        count_handles: handles.len() as u32,
        flags,
        ..Default::default()
    };
    raw(k, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut a).map(|()| a.first_signaled)
}

fn array(handles: &[u32]) -> drm_syncobj_array {
    drm_syncobj_array {
        handles: handles.as_ptr() as u64,
        count_handles: handles.len() as u32,
        pad: 0,
    }
}

fn timeline_array(handles: &[u32], points: &mut [u64], flags: u32) -> drm_syncobj_timeline_array {
    drm_syncobj_timeline_array {
        handles: handles.as_ptr() as u64,
        points: points.as_mut_ptr() as u64,
        count_handles: handles.len() as u32,
        flags,
    }
}

fn query(k: &dyn Kernel, h: u32, flags: u32) -> Result<u64, Errno> {
    let mut p = [u64::MAX];
    let mut a = timeline_array(&[h], &mut p, flags);
    raw(k, DRM_IOCTL_SYNCOBJ_QUERY, &mut a).map(|()| p[0])
}

fn timeline_signal(k: &dyn Kernel, h: u32, point: u64) -> Result<(), Errno> {
    let mut p = [point];
    let mut a = timeline_array(&[h], &mut p, 0);
    raw(k, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &mut a)
}

fn transfer(k: &dyn Kernel, t: drm_syncobj_transfer) -> Result<(), Errno> {
    let mut t = t;
    raw(k, DRM_IOCTL_SYNCOBJ_TRANSFER, &mut t)
}

fn no_timelines() -> SimOptions {
    SimOptions {
        timeline_syncobjs: false,
        ..Default::default()
    }
}

// ---- CREATE / DESTROY ----------------------------------------------------------------------

#[test]
fn create_unknown_flag_is_einval() {
    let mut a = drm_syncobj_create {
        handle: 0,
        flags: 2,
    };
    assert_eq!(
        raw(&file("a618"), DRM_IOCTL_SYNCOBJ_CREATE, &mut a),
        Err(Errno::EINVAL)
    );
}

#[test]
fn create_hands_out_the_lowest_free_handle_from_one() {
    let f = file("a618");
    assert_eq!((create(&f, 0), create(&f, 0), create(&f, 0)), (1, 2, 3));
    let mut d = drm_syncobj_destroy { handle: 2, pad: 0 };
    raw(&f, DRM_IOCTL_SYNCOBJ_DESTROY, &mut d).unwrap();
    assert_eq!(create(&f, 0), 2);
    destroy(&f, &[1, 2, 3]);
}

#[test]
fn create_signaled_holds_a_signalled_fence_and_plain_create_none() {
    let f = file("a618");
    let s = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    assert_eq!(wait(&f, &[s], 0, 0), Ok(0));
    let e = create(&f, 0);
    assert_eq!(wait(&f, &[e], 0, 0), Err(Errno::EINVAL));
    destroy(&f, &[s, e]);
}

#[test]
fn destroy_nonzero_pad_is_einval() {
    let f = file("a618");
    let mut d = drm_syncobj_destroy {
        handle: create(&f, 0),
        pad: 1,
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_SYNCOBJ_DESTROY, &mut d),
        Err(Errno::EINVAL)
    );
    destroy(&f, &[d.handle]);
}

#[test]
fn destroy_unknown_handle_is_einval() {
    let f = file("a618");
    let mut d = drm_syncobj_destroy { handle: 7, pad: 0 };
    assert_eq!(
        raw(&f, DRM_IOCTL_SYNCOBJ_DESTROY, &mut d),
        Err(Errno::EINVAL)
    );
    d.handle = create(&f, 0);
    raw(&f, DRM_IOCTL_SYNCOBJ_DESTROY, &mut d).unwrap();
    assert_eq!(
        raw(&f, DRM_IOCTL_SYNCOBJ_DESTROY, &mut d),
        Err(Errno::EINVAL),
        "twice"
    );
}

// ---- HANDLE_TO_FD / FD_TO_HANDLE -------------------------------------------------------------

#[test]
fn handle_to_fd_nonzero_pad_is_einval() {
    let f = file("a618");
    let mut a = drm_syncobj_handle {
        handle: create(&f, 0),
        pad: 1,
        ..Default::default()
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD, &mut a),
        Err(Errno::EINVAL)
    );
    destroy(&f, &[a.handle]);
}

#[test]
fn handle_to_fd_unknown_flag_is_einval() {
    let f = file("a618");
    let h = create(&f, 0);
    assert_eq!(handle_to_fd(&f, h, 4, 0).unwrap_err(), Errno::EINVAL);
    destroy(&f, &[h]);
}

#[test]
fn handle_to_fd_unknown_handle_is_einval() {
    assert_eq!(
        handle_to_fd(&file("a618"), 9, 0, 0).unwrap_err(),
        Errno::EINVAL
    );
}

#[test]
fn handle_to_fd_timeline_point_without_export_sync_file_is_einval() {
    let f = file("a618");
    let h = create(&f, 0);
    let flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE;
    assert_eq!(handle_to_fd(&f, h, flags, 3).unwrap_err(), Errno::EINVAL);
    assert!(
        handle_to_fd(&f, h, flags, 0).is_ok(),
        "point 0 with the flag is an opaque export"
    );
    destroy(&f, &[h]);
}

#[test]
fn handle_to_fd_point_without_timeline_flag_is_ignored() {
    let f = file("a618");
    let h = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    assert!(handle_to_fd(&f, h, 0, 3).is_ok());
    let flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE;
    assert!(
        handle_to_fd(&f, h, flags, 3).is_ok(),
        "binary export: point 3 not looked up"
    );
    destroy(&f, &[h]);
}

#[test]
fn export_sync_file_unknown_handle_is_enoent() {
    let flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE;
    assert_eq!(
        handle_to_fd(&file("a618"), 9, flags, 0).unwrap_err(),
        Errno::ENOENT
    );
}

#[test]
fn export_sync_file_without_fence_is_einval() {
    let f = file("a618");
    let h = create(&f, 0);
    let flags = DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE;
    assert_eq!(handle_to_fd(&f, h, flags, 0).unwrap_err(), Errno::EINVAL);
    destroy(&f, &[h]);
}

#[test]
fn export_sync_file_carries_the_syncobj_fence_at_export_time() {
    let f = file("a618");
    let h = create(&f, 0);
    let fence = pending();
    attach(&f, h, &fence);
    let sf = handle_to_fd(&f, h, DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, 0).unwrap();
    let mut r = array(&[h]);
    raw(&f, DRM_IOCTL_SYNCOBJ_RESET, &mut r).unwrap();
    assert!(Arc::ptr_eq(
        &sync_file::import(sf.as_raw_fd()).unwrap(),
        &fence
    ));
    destroy(&f, &[h]);
}

#[test]
fn export_sync_file_of_a_timeline_point_not_submitted_is_einval() {
    let f = file("a660");
    let h = create(&f, 0);
    let fence = pending();
    attach_point(&f, h, 2, &fence);
    let flags =
        DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE | DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE;
    assert_eq!(handle_to_fd(&f, h, flags, 3).unwrap_err(), Errno::EINVAL);
    let sf = handle_to_fd(&f, h, flags, 2).unwrap();
    assert!(!readable(sf.as_raw_fd()));
    fence.signal();
    assert!(readable(sf.as_raw_fd()));
    destroy(&f, &[h]);
}

#[test]
fn fd_to_handle_nonzero_pad_is_einval() {
    let f = file("a618");
    let mut a = drm_syncobj_handle {
        fd: 0,
        pad: 1,
        ..Default::default()
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &mut a),
        Err(Errno::EINVAL)
    );
}

#[test]
fn fd_to_handle_unknown_flag_is_einval() {
    assert_eq!(fd_to_handle(&file("a618"), 0, 0, 4, 0), Err(Errno::EINVAL));
}

#[test]
fn fd_to_handle_bad_fd_is_einval() {
    assert_eq!(fd_to_handle(&file("a618"), -1, 0, 0, 0), Err(Errno::EINVAL));
    assert_eq!(
        fd_to_handle(&file("a618"), 1_000_000, 0, 0, 0),
        Err(Errno::EINVAL)
    );
}

#[test]
fn fd_to_handle_of_an_fd_that_is_not_a_syncobj_is_einval() {
    let f = file("a618");
    let other = std::fs::File::open("/proc/self/stat").unwrap();
    assert_eq!(
        fd_to_handle(&f, other.as_raw_fd(), 0, 0, 0),
        Err(Errno::EINVAL)
    );
    let sf = sync_file_of(&pending());
    assert_eq!(
        fd_to_handle(&f, sf.as_raw_fd(), 0, 0, 0),
        Err(Errno::EINVAL),
        "a sync file"
    );
}

#[test]
fn fd_to_handle_timeline_point_without_import_sync_file_is_einval() {
    let f = file("a618");
    let h = create(&f, 0);
    let fd = handle_to_fd(&f, h, 0, 0).unwrap();
    let flags = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE;
    assert_eq!(
        fd_to_handle(&f, fd.as_raw_fd(), 0, flags, 1),
        Err(Errno::EINVAL)
    );
    destroy(&f, &[h]);
}

#[test]
fn syncobj_fd_imported_in_a_second_file_shares_the_syncobj() {
    let a = file("a660");
    let b = a.sim().open().unwrap();
    let ha = create(&a, 0);
    let fd = handle_to_fd(&a, ha, 0, 0).unwrap();
    let hb = fd_to_handle(&b, fd.as_raw_fd(), 0, 0, 0).unwrap();
    let hb2 = fd_to_handle(&b, fd.as_raw_fd(), 0, 0, 0).unwrap();
    assert_ne!(hb, hb2, "every import is a new handle");
    drop(fd);
    let fence = pending();
    attach(&a, ha, &fence);
    assert_eq!(
        wait(&b, &[hb], 0, 0),
        Err(ETIME),
        "b sees a's fence, pending"
    );
    fence.signal();
    assert_eq!(wait(&b, &[hb2], 0, 0), Ok(0));
    let mut r = array(&[hb]);
    raw(&b, DRM_IOCTL_SYNCOBJ_RESET, &mut r).unwrap();
    assert_eq!(
        wait(&a, &[ha], 0, 0),
        Err(Errno::EINVAL),
        "a sees b's reset"
    );
    destroy(&a, &[ha]);
    destroy(&b, &[hb, hb2]);
}

#[test]
fn syncobj_outlives_its_handle_while_an_fd_holds_it() {
    let a = file("a660");
    let h = create(&a, DRM_SYNCOBJ_CREATE_SIGNALED);
    let fd = handle_to_fd(&a, h, 0, 0).unwrap();
    let mut d = drm_syncobj_destroy { handle: h, pad: 0 };
    raw(&a, DRM_IOCTL_SYNCOBJ_DESTROY, &mut d).unwrap();
    let h2 = fd_to_handle(&a, fd.as_raw_fd(), 0, 0, 0).unwrap();
    assert_eq!(wait(&a, &[h2], 0, 0), Ok(0));
    destroy(&a, &[h2]);
}

#[test]
fn import_sync_file_bad_fd_is_einval() {
    let f = file("a618");
    let flags = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE;
    let h = create(&f, 0);
    assert_eq!(fd_to_handle(&f, -1, h, flags, 0), Err(Errno::EINVAL));
    let exported = create(&f, 0);
    let syncobj_fd = handle_to_fd(&f, exported, 0, 0).unwrap();
    assert_eq!(
        fd_to_handle(&f, syncobj_fd.as_raw_fd(), 1, flags, 0),
        Err(Errno::EINVAL)
    );
    destroy(&f, &[h, exported]);
}

#[test]
fn import_sync_file_unknown_handle_is_enoent() {
    let sf = sync_file_of(&pending());
    let flags = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE;
    assert_eq!(
        fd_to_handle(&file("a618"), sf.as_raw_fd(), 5, flags, 0),
        Err(Errno::ENOENT)
    );
}

#[test]
fn import_sync_file_with_timeline_point_adds_a_point() {
    let f = file("a660");
    let h = create(&f, 0);
    let fence = pending();
    attach_point(&f, h, 4, &fence);
    assert_eq!(query(&f, h, DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED), Ok(4));
    assert_eq!(query(&f, h, 0), Ok(0));
    fence.signal();
    assert_eq!(query(&f, h, 0), Ok(4));
    destroy(&f, &[h]);
}

// ---- WAIT ------------------------------------------------------------------------------------

#[test]
fn wait_unknown_flag_is_einval() {
    let f = file("a618");
    let h = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    let flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE; // only TIMELINE_WAIT knows it
    assert_eq!(wait(&f, &[h], flags, 0), Err(Errno::EINVAL));
    destroy(&f, &[h]);
}

#[test]
fn wait_with_no_handles_succeeds() {
    let f = file("a618");
    let mut a = drm_syncobj_wait {
        handles: BAD_PTR,
        first_signaled: 7,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_SYNCOBJ_WAIT, &mut a).unwrap();
    assert_eq!(a.first_signaled, 7, "left alone");
}

#[test]
fn wait_bad_handles_pointer_is_efault() {
    let f = file("a618");
    let mut a = drm_syncobj_wait {
        handles: BAD_PTR,
        count_handles: 1,
        ..Default::default()
    };
    assert_eq!(raw(&f, DRM_IOCTL_SYNCOBJ_WAIT, &mut a), Err(Errno::EFAULT));
}

#[test]
fn wait_handle_count_past_kmalloc_limit_is_enomem() {
    let f = file("a618");
    let mut a = drm_syncobj_wait {
        handles: BAD_PTR,
        count_handles: u32::MAX,
        ..Default::default()
    };
    assert_eq!(raw(&f, DRM_IOCTL_SYNCOBJ_WAIT, &mut a), Err(Errno::ENOMEM));
}

#[test]
fn wait_unknown_handle_is_enoent() {
    let f = file("a618");
    let h = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    assert_eq!(wait(&f, &[h, 42], 0, 0), Err(Errno::ENOENT));
    destroy(&f, &[h]);
}

#[test]
fn wait_on_a_syncobj_without_fence_is_einval() {
    let f = file("a618");
    let (s, e) = (create(&f, DRM_SYNCOBJ_CREATE_SIGNALED), create(&f, 0));
    assert_eq!(wait(&f, &[s, e], 0, in_ms(1000)), Err(Errno::EINVAL));
    destroy(&f, &[s, e]);
}

#[test]
fn wait_timeout_is_etime() {
    let f = file("a618");
    let h = create(&f, 0);
    attach(&f, h, &pending());
    assert_eq!(wait(&f, &[h], 0, 0), Err(ETIME), "0 polls");
    assert_eq!(wait(&f, &[h], 0, -5), Err(ETIME), "a past time polls");
    assert_eq!(wait(&f, &[h], 0, in_ms(20)), Err(ETIME));
    destroy(&f, &[h]);
}

#[test]
fn wait_returns_when_another_thread_signals() {
    let f = file("a618");
    let h = create(&f, 0);
    let fence = pending();
    attach(&f, h, &fence);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        fence.signal();
    });
    assert_eq!(wait(&f, &[h], 0, in_ms(10_000)), Ok(0));
    t.join().unwrap();
    destroy(&f, &[h]);
}

#[test]
fn wait_any_reports_the_first_signalled_index() {
    let f = file("a618");
    let hs = [create(&f, 0), create(&f, 0), create(&f, 0)];
    let fences = [pending(), pending(), pending()];
    for (h, fe) in hs.iter().zip(&fences) {
        attach(&f, *h, fe);
    }
    fences[2].signal();
    fences[1].signal();
    assert_eq!(wait(&f, &hs, 0, 0), Ok(1));
    let g = fences[0].clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        g.signal();
    });
    assert_eq!(wait(&f, &hs[..1], 0, in_ms(10_000)), Ok(0));
    t.join().unwrap();
    destroy(&f, &hs);
}

#[test]
fn wait_all_needs_every_fence_and_reports_the_first_already_signalled() {
    let f = file("a618");
    let hs = [create(&f, 0), create(&f, DRM_SYNCOBJ_CREATE_SIGNALED)];
    let fence = pending();
    attach(&f, hs[0], &fence);
    let all = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL;
    assert_eq!(wait(&f, &hs, all, 0), Err(ETIME));
    fence.signal();
    assert_eq!(wait(&f, &hs, all, 0), Ok(0));
    destroy(&f, &hs);
}

#[test]
fn wait_all_that_had_to_sleep_reports_index_of_first_signalled_on_entry_or_all_ones() {
    let f = file("a618");
    let h = create(&f, 0);
    let fence = pending();
    attach(&f, h, &fence);
    let g = fence.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        g.signal();
    });
    let all = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL;
    assert_eq!(wait(&f, &[h], all, in_ms(10_000)), Ok(u32::MAX));
    t.join().unwrap();
    destroy(&f, &[h]);
}

#[test]
fn wait_for_submit_waits_for_a_fence_to_be_attached() {
    let f = Arc::new(file("a618"));
    let h = create(&*f, 0);
    let fence = pending();
    let (f2, fence2) = (f.clone(), fence.clone());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        attach(&*f2, h, &fence2);
        std::thread::sleep(Duration::from_millis(20));
        fence2.signal();
    });
    let flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
    assert_eq!(wait(&*f, &[h], flags, in_ms(10_000)), Ok(0));
    assert!(fence.is_signalled());
    t.join().unwrap();
    destroy(&*f, &[h]);
}

#[test]
fn wait_for_submit_without_a_fence_times_out_with_etime() {
    let f = file("a618");
    let h = create(&f, 0);
    let flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
    assert_eq!(wait(&f, &[h], flags, in_ms(20)), Err(ETIME));
    destroy(&f, &[h]);
}

#[test]
fn wait_deadline_flag_is_accepted() {
    let f = file("a618");
    let h = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    assert_eq!(
        wait(&f, &[h], DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE, 0),
        Ok(0)
    );
    destroy(&f, &[h]);
}

// ---- timeline ioctls ------------------------------------------------------------------------

#[test]
fn timeline_ioctls_without_timeline_support_are_eopnotsupp() {
    let f = file_with("a618", no_timelines());
    let h = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    assert_eq!(timeline_wait(&f, &[h], &[0], 0, 0), Err(Errno::EOPNOTSUPP));
    assert_eq!(query(&f, h, 0), Err(Errno::EOPNOTSUPP));
    assert_eq!(timeline_signal(&f, h, 1), Err(Errno::EOPNOTSUPP));
    let t = drm_syncobj_transfer {
        src_handle: h,
        dst_handle: h,
        ..Default::default()
    };
    assert_eq!(transfer(&f, t), Err(Errno::EOPNOTSUPP));
    assert_eq!(wait(&f, &[h], 0, 0), Ok(0), "binary WAIT is always there");
    destroy(&f, &[h]);
}

#[test]
fn timeline_wait_unknown_flag_is_einval() {
    let f = file("a660");
    let h = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    assert_eq!(timeline_wait(&f, &[h], &[0], 0x10, 0), Err(Errno::EINVAL));
    destroy(&f, &[h]);
}

#[test]
fn timeline_wait_for_a_point_not_submitted_is_einval() {
    let f = file("a660");
    let h = create(&f, 0);
    timeline_signal(&f, h, 1).unwrap();
    assert_eq!(timeline_wait(&f, &[h], &[1], 0, 0), Ok(0));
    assert_eq!(timeline_wait(&f, &[h], &[2], 0, 0), Err(Errno::EINVAL));
    destroy(&f, &[h]);
}

#[test]
fn timeline_wait_bad_points_pointer_is_efault() {
    let f = file("a660");
    let h = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    let mut a = drm_syncobj_timeline_wait {
        handles: [h].as_ptr() as u64,
        points: BAD_PTR,
        count_handles: 1,
        ..Default::default()
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut a),
        Err(Errno::EFAULT)
    );
    destroy(&f, &[h]);
}

#[test]
fn timeline_wait_null_points_means_point_zero() {
    let f = file("a660");
    let h = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    let mut a = drm_syncobj_timeline_wait {
        handles: [h].as_ptr() as u64,
        points: 0,
        count_handles: 1,
        ..Default::default()
    };
    assert_eq!(raw(&f, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut a), Ok(()));
    destroy(&f, &[h]);
}

#[test]
fn timeline_wait_available_returns_once_the_point_is_submitted_not_signalled() {
    let f = Arc::new(file("a660"));
    let h = create(&*f, 0);
    let fence = pending();
    let (f2, fence2) = (f.clone(), fence.clone());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        attach_point(&*f2, h, 3, &fence2);
    });
    let flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE;
    assert_eq!(timeline_wait(&*f, &[h], &[3], flags, in_ms(10_000)), Ok(0));
    assert!(!fence.is_signalled());
    t.join().unwrap();
    assert_eq!(timeline_wait(&*f, &[h], &[3], 0, 0), Err(ETIME));
    destroy(&*f, &[h]);
}

#[test]
fn timeline_point_signals_only_after_every_earlier_point() {
    let f = file("a660");
    let h = create(&f, 0);
    let (p1, p2) = (pending(), pending());
    attach_point(&f, h, 1, &p1);
    attach_point(&f, h, 2, &p2);
    p2.signal();
    assert_eq!(timeline_wait(&f, &[h], &[2], 0, 0), Err(ETIME));
    assert_eq!(query(&f, h, 0), Ok(0));
    p1.signal();
    assert_eq!(timeline_wait(&f, &[h], &[2], 0, 0), Ok(0));
    assert_eq!(query(&f, h, 0), Ok(2));
    destroy(&f, &[h]);
}

#[test]
fn timeline_signal_nonzero_flags_is_einval() {
    let f = file("a660");
    let h = [create(&f, 0)];
    let mut p = [1u64];
    let mut a = timeline_array(&h, &mut p, 1);
    assert_eq!(
        raw(&f, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &mut a),
        Err(Errno::EINVAL)
    );
    destroy(&f, &h);
}

#[test]
fn timeline_signal_zero_handles_is_einval() {
    let f = file("a660");
    let mut a = timeline_array(&[], &mut [], 0);
    assert_eq!(
        raw(&f, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &mut a),
        Err(Errno::EINVAL)
    );
}

#[test]
fn timeline_signal_bad_points_pointer_is_efault() {
    let f = file("a660");
    let h = [create(&f, 0)];
    let mut a = timeline_array(&h, &mut [], 0);
    a.points = BAD_PTR;
    assert_eq!(
        raw(&f, DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &mut a),
        Err(Errno::EFAULT)
    );
    destroy(&f, &h);
}

#[test]
fn timeline_signal_unknown_handle_is_enoent() {
    assert_eq!(timeline_signal(&file("a660"), 3, 1), Err(Errno::ENOENT));
}

#[test]
fn query_unknown_flag_is_einval() {
    let f = file("a660");
    let h = create(&f, 0);
    assert_eq!(query(&f, h, 2), Err(Errno::EINVAL));
    destroy(&f, &[h]);
}

#[test]
fn query_zero_handles_is_einval() {
    let f = file("a660");
    let mut a = timeline_array(&[], &mut [], 0);
    assert_eq!(raw(&f, DRM_IOCTL_SYNCOBJ_QUERY, &mut a), Err(Errno::EINVAL));
}

#[test]
fn query_bad_points_pointer_is_efault() {
    let f = file("a660");
    let h = [create(&f, 0)];
    let mut a = timeline_array(&h, &mut [], 0);
    a.points = BAD_PTR;
    assert_eq!(raw(&f, DRM_IOCTL_SYNCOBJ_QUERY, &mut a), Err(Errno::EFAULT));
    destroy(&f, &h);
}

#[test]
fn query_reports_last_signalled_and_last_submitted_points() {
    let f = file("a660");
    let h = create(&f, 0);
    assert_eq!(query(&f, h, 0), Ok(0), "no fence");
    timeline_signal(&f, h, 3).unwrap();
    let fence = pending();
    attach_point(&f, h, 8, &fence);
    assert_eq!(query(&f, h, 0), Ok(3));
    assert_eq!(query(&f, h, DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED), Ok(8));
    fence.signal();
    assert_eq!(query(&f, h, 0), Ok(8));
    let b = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    assert_eq!(query(&f, b, 0), Ok(0), "a binary fence is point 0");
    destroy(&f, &[h, b]);
}

// ---- RESET / SIGNAL -------------------------------------------------------------------------

#[test]
fn reset_and_signal_nonzero_pad_is_einval() {
    let f = file("a618");
    let h = [create(&f, 0)];
    for req in [DRM_IOCTL_SYNCOBJ_RESET, DRM_IOCTL_SYNCOBJ_SIGNAL] {
        let mut a = drm_syncobj_array {
            pad: 1,
            ..array(&h)
        };
        assert_eq!(raw(&f, req, &mut a), Err(Errno::EINVAL));
    }
    destroy(&f, &h);
}

#[test]
fn reset_and_signal_zero_handles_is_einval() {
    let f = file("a618");
    for req in [DRM_IOCTL_SYNCOBJ_RESET, DRM_IOCTL_SYNCOBJ_SIGNAL] {
        assert_eq!(raw(&f, req, &mut array(&[])), Err(Errno::EINVAL));
    }
}

#[test]
fn reset_and_signal_unknown_handle_is_enoent() {
    let f = file("a618");
    for req in [DRM_IOCTL_SYNCOBJ_RESET, DRM_IOCTL_SYNCOBJ_SIGNAL] {
        assert_eq!(raw(&f, req, &mut array(&[4])), Err(Errno::ENOENT));
    }
}

#[test]
fn reset_and_signal_bad_handles_pointer_is_efault() {
    let f = file("a618");
    for req in [DRM_IOCTL_SYNCOBJ_RESET, DRM_IOCTL_SYNCOBJ_SIGNAL] {
        let mut a = drm_syncobj_array {
            handles: BAD_PTR,
            count_handles: 1,
            pad: 0,
        };
        assert_eq!(raw(&f, req, &mut a), Err(Errno::EFAULT));
    }
}

#[test]
fn signal_then_reset_toggles_the_binary_state() {
    let f = file("a618");
    let h = [create(&f, 0)];
    raw(&f, DRM_IOCTL_SYNCOBJ_SIGNAL, &mut array(&h)).unwrap();
    assert_eq!(wait(&f, &h, 0, 0), Ok(0));
    raw(&f, DRM_IOCTL_SYNCOBJ_RESET, &mut array(&h)).unwrap();
    assert_eq!(wait(&f, &h, 0, 0), Err(Errno::EINVAL));
    destroy(&f, &h);
}

// ---- TRANSFER -------------------------------------------------------------------------------

#[test]
fn transfer_nonzero_pad_is_einval() {
    let f = file("a660");
    let h = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    let t = drm_syncobj_transfer {
        src_handle: h,
        dst_handle: h,
        pad: 1,
        ..Default::default()
    };
    assert_eq!(transfer(&f, t), Err(Errno::EINVAL));
    destroy(&f, &[h]);
}

#[test]
fn transfer_unknown_destination_is_enoent_before_the_source_is_looked_at() {
    let f = file("a660");
    let t = drm_syncobj_transfer {
        src_handle: 8,
        dst_handle: 9,
        flags: 0x40,
        ..Default::default()
    };
    assert_eq!(transfer(&f, t), Err(Errno::ENOENT));
}

#[test]
fn transfer_unknown_flag_is_einval() {
    let f = file("a660");
    let h = create(&f, DRM_SYNCOBJ_CREATE_SIGNALED);
    let t = drm_syncobj_transfer {
        src_handle: 8,
        dst_handle: h,
        flags: 1,
        ..Default::default()
    };
    assert_eq!(transfer(&f, t), Err(Errno::EINVAL));
    destroy(&f, &[h]);
}

#[test]
fn transfer_unknown_source_is_enoent() {
    let f = file("a660");
    let h = create(&f, 0);
    let t = drm_syncobj_transfer {
        src_handle: 8,
        dst_handle: h,
        dst_point: 1,
        ..Default::default()
    };
    assert_eq!(transfer(&f, t), Err(Errno::ENOENT));
    destroy(&f, &[h]);
}

#[test]
fn transfer_from_a_source_without_fence_is_einval() {
    let f = file("a660");
    let (s, d) = (create(&f, 0), create(&f, 0));
    let t = drm_syncobj_transfer {
        src_handle: s,
        dst_handle: d,
        ..Default::default()
    };
    assert_eq!(transfer(&f, t), Err(Errno::EINVAL));
    let t = drm_syncobj_transfer {
        src_point: 2,
        dst_point: 1,
        ..t
    };
    assert_eq!(transfer(&f, t), Err(Errno::EINVAL));
    destroy(&f, &[s, d]);
}

#[test]
fn transfer_binary_to_timeline_point_and_back() {
    let f = file("a660");
    let (bin, tl, out) = (create(&f, 0), create(&f, 0), create(&f, 0));
    let fence = pending();
    attach(&f, bin, &fence);
    let t = drm_syncobj_transfer {
        src_handle: bin,
        dst_handle: tl,
        dst_point: 5,
        ..Default::default()
    };
    transfer(&f, t).unwrap();
    assert_eq!(query(&f, tl, DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED), Ok(5));
    let t = drm_syncobj_transfer {
        src_handle: tl,
        dst_handle: out,
        src_point: 5,
        ..Default::default()
    };
    transfer(&f, t).unwrap();
    assert_eq!(wait(&f, &[out], 0, 0), Err(ETIME));
    fence.signal();
    assert_eq!(wait(&f, &[out], 0, 0), Ok(0));
    assert_eq!(query(&f, tl, 0), Ok(5));
    destroy(&f, &[bin, tl, out]);
}

#[test]
fn transfer_wait_for_submit_waits_for_the_source_point() {
    let f = Arc::new(file("a660"));
    let (src, dst) = (create(&*f, 0), create(&*f, 0));
    let f2 = f.clone();
    let th = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        timeline_signal(&*f2, src, 2).unwrap();
    });
    let t = drm_syncobj_transfer {
        src_handle: src,
        dst_handle: dst,
        src_point: 2,
        flags: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
        ..Default::default()
    };
    transfer(&*f, t).unwrap();
    th.join().unwrap();
    assert_eq!(wait(&*f, &[dst], 0, 0), Ok(0));
    destroy(&*f, &[src, dst]);
}

// ---- sync files -----------------------------------------------------------------------------

#[test]
fn sync_file_survives_dup_and_close_of_the_original() {
    const OWNER: u64 = 0x51_0001;
    let fence = pending();
    let fd = sync_file::export(fence.clone(), OWNER).unwrap();
    let dup = fd.try_clone().unwrap();
    drop(fd);
    assert!(Arc::ptr_eq(
        &sync_file::import(dup.as_raw_fd()).unwrap(),
        &fence
    ));
    assert_eq!(sync_file::open_fds_created_by(OWNER).len(), 1);
    drop(dup);
    assert!(
        sync_file::open_fds_created_by(OWNER).is_empty(),
        "forgotten once all are closed"
    );
}

#[test]
fn sync_file_poll_becomes_ready_when_the_fence_signals() {
    let fence = pending();
    let fd = sync_file_of(&fence);
    let dup = fd.try_clone().unwrap();
    assert!(!readable(fd.as_raw_fd()));
    fence.signal();
    assert!(readable(fd.as_raw_fd()) && readable(dup.as_raw_fd()));
}

#[test]
fn sync_file_of_a_signalled_fence_is_ready_at_once() {
    let fd = sync_file_of(&Fence::signalled());
    assert!(readable(fd.as_raw_fd()));
}

#[test]
fn foreign_fd_is_not_a_sync_file() {
    let other = std::fs::File::open("/proc/self/stat").unwrap();
    assert!(sync_file::import(other.as_raw_fd()).is_none());
    assert!(sync_file::import(-1).is_none());
}
