//! The DRM core syncobj ioctls (drm_syncobj.c, as of the ~7.0 kernels), each check in the
//! kernel's order with the kernel's errno. msm has DRIVER_SYNCOBJ always and
//! DRIVER_SYNCOBJ_TIMELINE when `SimOptions::timeline_syncobjs` is set; without it the timeline
//! ioctls (TIMELINE_WAIT, QUERY, TRANSFER, TIMELINE_SIGNAL) are EOPNOTSUPP.
//!
//! Locks: see the parent module; handlers take `SyncobjTable::inner` and `Syncobj::state` briefly
//! and never hold either while waiting.

use std::os::fd::IntoRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drm_sys::{
    DRM_SYNCOBJ_CREATE_SIGNALED, DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
    DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE, DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
    DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE, DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED,
    DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
    DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
};

use super::super::dispatch::typed;
use super::super::fence::Fence;
use super::super::gem::monotonic_ns;
use super::super::kmalloc::kcalloc;
use super::super::{sync_file, user, SimFile};
use super::{export_fd, import_fd, unwrap_merge, SubmitWait, Syncobj, Waker};
use crate::uapi::*;
use crate::Errno;

/// The kernel's ETIME (62): what syncobj waits return on timeout (not ETIMEDOUT).
const ETIME: Errno = Errno(libc::ETIME);

/// How long `drm_syncobj_find_fence` with WAIT_FOR_SUBMIT waits for a fence to appear.
const WAIT_FOR_SUBMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// `drm_core_check_feature(dev, DRIVER_SYNCOBJ_TIMELINE)`.
fn check_timeline(file: &SimFile) -> Result<(), Errno> {
    if file.dev.options.timeline_syncobjs {
        Ok(())
    } else {
        Err(Errno::EOPNOTSUPP)
    }
}

/// `drm_syncobj_array_find`: copies `count` handles in (ENOMEM past kmalloc's limit, EFAULT) and
/// looks each up (ENOENT).
fn array_find(file: &SimFile, handles: u64, count: u32) -> Result<Vec<Arc<Syncobj>>, Errno> {
    kcalloc(count, 4)?;
    let size = count as u64 * 4;
    let bytes = user::read_bytes(handles, size as usize)?;
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes(c.try_into().expect("4 bytes")))
        .map(|h| file.syncobjs.get(h).ok_or(Errno::ENOENT))
        .collect()
}

/// `copy_from_user` of `count` points, or all zero for a null pointer.
fn read_points(points: u64, count: u32) -> Result<Vec<u64>, Errno> {
    kcalloc(count, 8)?;
    let size = count as u64 * 8;
    if points == 0 {
        return Ok(vec![0; count as usize]);
    }
    let bytes = user::read_bytes(points, size as usize)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

/// `drm_timeout_abs_to_jiffies`: an absolute CLOCK_MONOTONIC time in ns; 0 or a time already
/// past means "poll once". `None`: too far away to matter (wait forever).
fn deadline_from_abs_ns(timeout_nsec: i64) -> Option<Instant> {
    let now_i = Instant::now();
    if timeout_nsec == 0 {
        return Some(now_i);
    }
    let now = monotonic_ns();
    if timeout_nsec <= now {
        return Some(now_i);
    }
    now_i.checked_add(Duration::from_nanos((timeout_nsec - now) as u64))
}

/// `drm_syncobj_find_fence`: the fence for `point` of `handle`; with WAIT_FOR_SUBMIT waits up to
/// 5 s for it to be submitted (ETIME). Unknown flags EINVAL, unknown handle ENOENT, no fence or
/// point not submitted EINVAL.
fn find_fence(file: &SimFile, handle: u32, point: u64, flags: u32) -> Result<Arc<Fence>, Errno> {
    if flags & !DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT != 0 {
        return Err(Errno::EINVAL);
    }
    let s = file.syncobjs.get(handle).ok_or(Errno::ENOENT)?;
    match s.find_fence(point) {
        Ok(f) => return Ok(f),
        Err(e) if flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT == 0 => return Err(e),
        Err(_) => {}
    }
    let deadline = Instant::now() + WAIT_FOR_SUBMIT_TIMEOUT;
    let waker = Arc::new(Waker::default());
    let w = SubmitWait::new(point, waker.clone());
    s.add_waiter(&w);
    let r = loop {
        let seen = waker.generation();
        if let Some(f) = w.found() {
            break Ok(f);
        }
        if !waker.wait_past(seen, Some(deadline)) && w.found().is_none() {
            break Err(ETIME);
        }
    };
    s.remove_waiter(&w);
    r
}

/// `drm_syncobj_array_wait_timeout`: returns the index written to `first_signaled` (~0 when a
/// WAIT_ALL wait found nothing signalled on its first pass, as the kernel leaves it).
fn array_wait(
    syncobjs: &[Arc<Syncobj>],
    points: u64,
    flags: u32,
    deadline: Option<Instant>,
) -> Result<u32, Errno> {
    let count = syncobjs.len();
    let wait_all = flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL != 0;
    let available = flags & DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE != 0;
    let for_submit = flags
        & (DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE)
        != 0;
    let mut first = u32::MAX;
    let mut point_of = vec![0u64; count];
    let mut fences: Vec<Option<Arc<Fence>>> = vec![None; count];
    let mut signalled = 0usize;
    for (i, s) in syncobjs.iter().enumerate() {
        if points != 0 {
            point_of[i] = user::read::<u64>(points + 8 * i as u64)?;
        }
        let f = match s.find_fence(point_of[i]) {
            Ok(f) => f,
            Err(_) if for_submit => continue,
            Err(e) => return Err(e),
        };
        if available || f.is_signalled() {
            if signalled == 0 {
                first = i as u32;
            }
            signalled += 1;
        }
        fences[i] = Some(f);
    }
    if signalled == count || (signalled > 0 && !wait_all) {
        return Ok(first);
    }

    let waker = Arc::new(Waker::default());
    let mut submit_waits: Vec<Option<Arc<SubmitWait>>> = vec![None; count];
    if for_submit {
        for (i, s) in syncobjs.iter().enumerate() {
            if fences[i].is_none() {
                let w = SubmitWait::new(point_of[i], waker.clone());
                s.add_waiter(&w);
                submit_waits[i] = Some(w);
            }
        }
    }
    let mut watched = vec![false; count];
    let r = loop {
        let seen = waker.generation();
        for (i, w) in submit_waits.iter().enumerate() {
            if fences[i].is_none() {
                fences[i] = w.as_ref().and_then(|w| w.found());
            }
        }
        let mut done = None;
        let mut signalled = 0;
        for (i, f) in fences.iter().enumerate() {
            let Some(f) = f else { continue };
            if available || f.is_signalled() {
                if wait_all {
                    signalled += 1;
                } else {
                    done = Some(Ok(i as u32));
                    break;
                }
            }
        }
        if let Some(d) = done {
            break d;
        }
        if signalled == count {
            break Ok(first);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Err(ETIME);
        }
        for (i, f) in fences.iter().enumerate() {
            if let (Some(f), false) = (f, watched[i]) {
                waker.watch(f);
                watched[i] = true;
            }
        }
        waker.wait_past(seen, deadline);
    };
    for (s, w) in syncobjs.iter().zip(&submit_waits) {
        if let Some(w) = w {
            s.remove_waiter(w);
        }
    }
    r
}

/// The checks HANDLE_TO_FD and FD_TO_HANDLE share: pad, then flags (both ioctls know a sync-file
/// bit and TIMELINE, with the same values); the point, which counts only with TIMELINE.
fn handle_args_point(a: &drm_syncobj_handle) -> Result<u64, Errno> {
    const _: () = assert!(
        DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE
            == DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE
            && DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE == DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE
    );
    if a.pad != 0 {
        return Err(Errno::EINVAL);
    }
    let valid =
        DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE | DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE;
    if a.flags & !valid != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(if a.flags & DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE != 0 {
        a.point
    } else {
        0
    })
}

pub(in crate::sim) fn create(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_create| {
        if a.flags & !DRM_SYNCOBJ_CREATE_SIGNALED != 0 {
            return Err(Errno::EINVAL);
        }
        let s = Syncobj::new(a.flags & DRM_SYNCOBJ_CREATE_SIGNALED != 0);
        a.handle = file.syncobjs.insert(s)?;
        Ok(())
    })
}

pub(in crate::sim) fn destroy(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_destroy| {
        if a.pad != 0 {
            return Err(Errno::EINVAL);
        }
        let s = file.syncobjs.remove(a.handle).ok_or(Errno::EINVAL)?;
        drop(s);
        Ok(())
    })
}

/// HANDLE_TO_FD. `point` counts only with the TIMELINE flag (the ~7.0 fix; 6.15-6.19 also
/// rejected a stray non-zero `point` without it); an opaque export with a point is EINVAL.
pub(in crate::sim) fn handle_to_fd(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_handle| {
        let point = handle_args_point(a)?;
        if a.flags & DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE != 0 {
            // drm_syncobj_export_sync_file: the fd is reserved before the fence is looked up.
            let fd = sync_file::reserve()?;
            let fence = find_fence(file, a.handle, point, 0)?;
            a.fd = fd.install(fence, file.id).into_raw_fd();
            return Ok(());
        }
        if point != 0 {
            return Err(Errno::EINVAL);
        }
        let s = file.syncobjs.get(a.handle).ok_or(Errno::EINVAL)?;
        a.fd = export_fd(s)?.into_raw_fd();
        Ok(())
    })
}

/// FD_TO_HANDLE: a syncobj fd (any DRM device's, as in the kernel) gives a new handle to the same
/// syncobj; with IMPORT_SYNC_FILE the sync file's fence replaces the fence of `handle` (or is
/// added as `point` with the TIMELINE flag).
pub(in crate::sim) fn fd_to_handle(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_handle| {
        let point = handle_args_point(a)?;
        if a.flags & DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE != 0 {
            let fence = sync_file::import(a.fd).ok_or(Errno::EINVAL)?;
            let s = file.syncobjs.get(a.handle).ok_or(Errno::ENOENT)?;
            if point != 0 {
                s.add_point(point, fence);
            } else {
                s.replace_fence(Some(fence));
            }
            return Ok(());
        }
        if point != 0 {
            return Err(Errno::EINVAL);
        }
        // fdget failing and a file that is not a syncobj are both EINVAL.
        let s = import_fd(a.fd).ok_or(Errno::EINVAL)?;
        a.handle = file.syncobjs.insert(s)?;
        Ok(())
    })
}

/// WAIT and TIMELINE_WAIT after the feature check: flags outside `possible` EINVAL; no handles
/// succeeds at once (since 6.4; it was EINVAL before) leaving `first_signaled` alone (`None`);
/// otherwise the handles are looked up and waited on until the absolute `timeout_nsec`.
fn wait_ioctl(
    file: &SimFile,
    possible: u32,
    flags: u32,
    handles: u64,
    count: u32,
    points: u64,
    timeout_nsec: i64,
) -> Result<Option<u32>, Errno> {
    if flags & !possible != 0 {
        return Err(Errno::EINVAL);
    }
    if count == 0 {
        return Ok(None);
    }
    let syncobjs = array_find(file, handles, count)?;
    // WAIT_DEADLINE only passes a hint to the fences; the model's GPU has no clock to boost.
    let deadline = deadline_from_abs_ns(timeout_nsec);
    array_wait(&syncobjs, points, flags, deadline).map(Some)
}

pub(in crate::sim) fn wait(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_wait| {
        let possible = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL
            | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT
            | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE;
        let (h, n, t) = (a.handles, a.count_handles, a.timeout_nsec);
        if let Some(first) = wait_ioctl(file, possible, a.flags, h, n, 0, t)? {
            a.first_signaled = first;
        }
        Ok(())
    })
}

pub(in crate::sim) fn timeline_wait(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_timeline_wait| {
        check_timeline(file)?;
        let possible = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL
            | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT
            | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE
            | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE;
        let (h, n, p, t) = (a.handles, a.count_handles, a.points, a.timeout_nsec);
        if let Some(first) = wait_ioctl(file, possible, a.flags, h, n, p, t)? {
            a.first_signaled = first;
        }
        Ok(())
    })
}

pub(in crate::sim) fn reset(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_array| {
        if a.pad != 0 || a.count_handles == 0 {
            return Err(Errno::EINVAL);
        }
        for s in array_find(file, a.handles, a.count_handles)? {
            s.replace_fence(None);
        }
        Ok(())
    })
}

pub(in crate::sim) fn signal(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_array| {
        if a.pad != 0 || a.count_handles == 0 {
            return Err(Errno::EINVAL);
        }
        for s in array_find(file, a.handles, a.count_handles)? {
            s.replace_fence(Some(Fence::signalled()));
        }
        Ok(())
    })
}

pub(in crate::sim) fn timeline_signal(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_timeline_array| {
        check_timeline(file)?;
        if a.flags != 0 || a.count_handles == 0 {
            return Err(Errno::EINVAL);
        }
        let syncobjs = array_find(file, a.handles, a.count_handles)?;
        let points = read_points(a.points, a.count_handles)?;
        for (s, p) in syncobjs.iter().zip(points) {
            s.add_point(p, Fence::signalled());
        }
        Ok(())
    })
}

pub(in crate::sim) fn query(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_timeline_array| {
        check_timeline(file)?;
        if a.flags & !DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED != 0 || a.count_handles == 0 {
            return Err(Errno::EINVAL);
        }
        let last_submitted = a.flags & DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED != 0;
        for (i, s) in array_find(file, a.handles, a.count_handles)?
            .iter()
            .enumerate()
        {
            let point = s.query(last_submitted);
            let at = a.points.wrapping_add(8 * i as u64);
            user::write(at, &point)?;
        }
        Ok(())
    })
}

pub(in crate::sim) fn transfer(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_syncobj_transfer| {
        check_timeline(file)?;
        if a.pad != 0 {
            return Err(Errno::EINVAL);
        }
        let dst = file.syncobjs.get(a.dst_handle).ok_or(Errno::ENOENT)?;
        let fence = find_fence(file, a.src_handle, a.src_point, a.flags)?;
        if a.dst_point != 0 {
            dst.add_point(a.dst_point, unwrap_merge(fence));
        } else {
            dst.replace_fence(Some(fence));
        }
        Ok(())
    })
}
