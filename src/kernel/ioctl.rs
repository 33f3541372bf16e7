//! Typed helpers for each ioctl: the one place that packs uAPI structs for the winsys.
//!
//! Owns: struct packing and the `KernelError` context (which ioctl, which argument). Takes no locks.

use std::ffi::c_void;
use std::fmt;
use std::mem::size_of;

use super::Kernel;
use crate::uapi::*;
use crate::Errno;
use crate::ErrnoError;

/// A failed ioctl: the kernel's errno plus which call it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    pub errno: Errno,
    /// The ioctl and its interesting argument, e.g. `GET_PARAM(VA_START)`.
    pub call: String,
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.call, self.errno)
    }
}

impl std::error::Error for KernelError {}

impl ErrnoError for KernelError {
    fn errno(&self) -> Errno {
        self.errno
    }
}

/// Issues `request` with `arg`, mapping failure to a [`KernelError`] named by `call`.
fn call<T>(
    k: &dyn Kernel,
    request: u64,
    arg: &mut T,
    call: impl FnOnce() -> String,
) -> Result<(), KernelError> {
    debug_assert_eq!(
        ioc_size(request),
        size_of::<T>(),
        "request code and argument type disagree"
    );
    // SAFETY: `arg` is a live, writable `T` whose size is the one encoded in `request`; the
    // structs passed here carry user pointers only where the helper built them from live buffers.
    unsafe { k.ioctl(request, arg as *mut T as *mut c_void) }.map_err(|errno| KernelError {
        errno,
        call: call(),
    })
}

/// What DRM_IOCTL_VERSION reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrmVersion {
    pub major: i32,
    pub minor: i32,
    pub patchlevel: i32,
    pub name: String,
    pub date: String,
    pub desc: String,
}

/// DRM_IOCTL_VERSION, in the usual two passes: lengths first, then the strings.
pub fn version(k: &dyn Kernel) -> Result<DrmVersion, KernelError> {
    let mut v = drm_version::default();
    call(k, DRM_IOCTL_VERSION, &mut v, || "VERSION".into())?;
    // The kernel reports each string's full length; allocate that and ask again.
    let mut name = vec![0u8; v.name_len as usize];
    let mut date = vec![0u8; v.date_len as usize];
    let mut desc = vec![0u8; v.desc_len as usize];
    v.name = name.as_mut_ptr().cast();
    v.date = date.as_mut_ptr().cast();
    v.desc = desc.as_mut_ptr().cast();
    call(k, DRM_IOCTL_VERSION, &mut v, || "VERSION".into())?;
    let text = |mut b: Vec<u8>, len: usize| {
        b.truncate(len.min(b.len()));
        String::from_utf8_lossy(&b).into_owned()
    };
    Ok(DrmVersion {
        major: v.version_major,
        minor: v.version_minor,
        patchlevel: v.version_patchlevel,
        name: text(name, v.name_len as usize),
        date: text(date, v.date_len as usize),
        desc: text(desc, v.desc_len as usize),
    })
}

/// DRM_IOCTL_VERSION in one pass: the numbers and the driver name, without date and description.
/// The kernel copies at most the buffer's length of each string and reports its full length, so a
/// name longer than the buffer comes back cut, which is enough to tell "msm" from anything else.
pub fn version_brief(k: &dyn Kernel) -> Result<DrmVersion, KernelError> {
    let mut name = [0u8; 32];
    let mut v = drm_version {
        name_len: name.len() as _,
        name: name.as_mut_ptr().cast(),
        ..Default::default()
    };
    call(k, DRM_IOCTL_VERSION, &mut v, || "VERSION".into())?;
    let len = (v.name_len as usize).min(name.len());
    Ok(DrmVersion {
        major: v.version_major,
        minor: v.version_minor,
        patchlevel: v.version_patchlevel,
        name: String::from_utf8_lossy(&name[..len]).into_owned(),
        date: String::new(),
        desc: String::new(),
    })
}

/// DRM_IOCTL_GET_CAP.
pub fn get_cap(k: &dyn Kernel, capability: u64) -> Result<u64, KernelError> {
    let mut arg = drm_get_cap {
        capability,
        value: 0,
    };
    call(k, DRM_IOCTL_GET_CAP, &mut arg, || {
        format!("GET_CAP({capability:#x})")
    })?;
    Ok(arg.value)
}

/// The name of an `MSM_PARAM_*`, for messages.
pub fn param_name(param: u32) -> &'static str {
    match param {
        MSM_PARAM_GPU_ID => "GPU_ID",
        MSM_PARAM_GMEM_SIZE => "GMEM_SIZE",
        MSM_PARAM_CHIP_ID => "CHIP_ID",
        MSM_PARAM_MAX_FREQ => "MAX_FREQ",
        MSM_PARAM_TIMESTAMP => "TIMESTAMP",
        MSM_PARAM_GMEM_BASE => "GMEM_BASE",
        MSM_PARAM_PRIORITIES => "PRIORITIES",
        MSM_PARAM_PP_PGTABLE => "PP_PGTABLE",
        MSM_PARAM_FAULTS => "FAULTS",
        MSM_PARAM_SUSPENDS => "SUSPENDS",
        MSM_PARAM_SYSPROF => "SYSPROF",
        MSM_PARAM_COMM => "COMM",
        MSM_PARAM_CMDLINE => "CMDLINE",
        MSM_PARAM_VA_START => "VA_START",
        MSM_PARAM_VA_SIZE => "VA_SIZE",
        MSM_PARAM_HIGHEST_BANK_BIT => "HIGHEST_BANK_BIT",
        MSM_PARAM_RAYTRACING => "RAYTRACING",
        MSM_PARAM_UBWC_SWIZZLE => "UBWC_SWIZZLE",
        MSM_PARAM_MACROTILE_MODE => "MACROTILE_MODE",
        MSM_PARAM_UCHE_TRAP_BASE => "UCHE_TRAP_BASE",
        MSM_PARAM_HAS_PRR => "HAS_PRR",
        MSM_PARAM_EN_VM_BIND => "EN_VM_BIND",
        MSM_PARAM_AQE => "AQE",
        _ => "unknown",
    }
}

/// MSM GET_PARAM on the 3D pipe.
pub fn get_param(k: &dyn Kernel, param: u32) -> Result<u64, KernelError> {
    let mut arg = drm_msm_param {
        pipe: MSM_PIPE_3D0,
        param,
        ..Default::default()
    };
    call(k, DRM_IOCTL_MSM_GET_PARAM, &mut arg, || {
        format!("GET_PARAM({})", param_name(param))
    })?;
    Ok(arg.value)
}

/// MSM SET_PARAM of a by-value parameter (`len` = 0).
pub fn set_param(k: &dyn Kernel, param: u32, value: u64) -> Result<(), KernelError> {
    let mut arg = drm_msm_param {
        pipe: MSM_PIPE_3D0,
        param,
        value,
        ..Default::default()
    };
    call(k, DRM_IOCTL_MSM_SET_PARAM, &mut arg, || {
        format!("SET_PARAM({})", param_name(param))
    })
}

/// MSM SET_PARAM of a string parameter (`COMM`, `CMDLINE`): passed by pointer with its length.
pub fn set_param_str(k: &dyn Kernel, param: u32, value: &str) -> Result<(), KernelError> {
    let len = u32::try_from(value.len()).map_err(|_| KernelError {
        errno: Errno::EINVAL,
        call: format!("SET_PARAM({})", param_name(param)),
    })?;
    let mut arg = drm_msm_param {
        pipe: MSM_PIPE_3D0,
        param,
        value: value.as_ptr() as u64,
        len,
        pad: 0,
    };
    call(k, DRM_IOCTL_MSM_SET_PARAM, &mut arg, || {
        format!("SET_PARAM({})", param_name(param))
    })
}

fn gem_info(k: &dyn Kernel, arg: &mut drm_msm_gem_info, what: &str) -> Result<(), KernelError> {
    let handle = arg.handle;
    call(k, DRM_IOCTL_MSM_GEM_INFO, arg, || {
        format!("GEM_INFO({what}, handle {handle})")
    })
}

/// GEM_INFO(SET_METADATA): stores up to 128 opaque bytes with the object (more is EOVERFLOW).
pub fn gem_set_metadata(k: &dyn Kernel, handle: u32, bytes: &[u8]) -> Result<(), KernelError> {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    let mut arg = drm_msm_gem_info {
        handle,
        info: MSM_INFO_SET_METADATA,
        value: bytes.as_ptr() as u64,
        len,
        pad: 0,
    };
    gem_info(k, &mut arg, "SET_METADATA")
}

/// GEM_INFO(GET_METADATA): the object's metadata, empty when it has none.
///
/// One call with a buffer of the kernel's largest metadata (128 bytes: SET_METADATA refuses more
/// with EOVERFLOW), which the kernel fills, setting `len` to the stored length: no length query
/// first, and no race with a thread storing longer metadata in between. Importers read metadata
/// at every import; the length query doubled that (freedreno on msm-winsys made two GEM_INFO per
/// import where stock makes one). The buffer starts zeroed: kernels before the v7.1 fix return 0
/// even when the read failed, leaving it and `len` untouched, and the caller must be able to tell
/// (zeros are never valid metadata of this project's format).
pub fn gem_get_metadata(k: &dyn Kernel, handle: u32) -> Result<Vec<u8>, KernelError> {
    let mut buf = vec![0u8; MSM_METADATA_MAX_B as usize];
    let mut arg = drm_msm_gem_info {
        handle,
        info: MSM_INFO_GET_METADATA,
        value: buf.as_mut_ptr() as u64,
        len: MSM_METADATA_MAX_B,
        ..Default::default()
    };
    gem_info(k, &mut arg, "GET_METADATA")?;
    buf.truncate(arg.len.min(MSM_METADATA_MAX_B) as usize);
    Ok(buf)
}

// ---- GEM objects, PRIME, MADVISE, KMS (used by `crate::bo`) --------------------------------------

/// MSM GEM_NEW: a new object of `size_B` bytes (the kernel rounds up to a page) with `MSM_BO_*`
/// `flags`; returns its handle.
pub fn gem_new(k: &dyn Kernel, size_B: u64, flags: u32) -> Result<u32, KernelError> {
    let mut arg = drm_msm_gem_new {
        size: size_B,
        flags,
        handle: 0,
    };
    call(k, DRM_IOCTL_MSM_GEM_NEW, &mut arg, || {
        format!("GEM_NEW(size {size_B:#x}, flags {flags:#x})")
    })?;
    if arg.handle == 0 {
        return Err(KernelError {
            errno: Errno(libc::EPROTO),
            call: "GEM_NEW returned handle 0".into(),
        });
    }
    Ok(arg.handle)
}

/// GEM_CLOSE: drops this file's handle.
pub fn gem_close(k: &dyn Kernel, handle: u32) -> Result<(), KernelError> {
    let mut arg = drm_gem_close { handle, pad: 0 };
    call(k, DRM_IOCTL_GEM_CLOSE, &mut arg, || {
        format!("GEM_CLOSE(handle {handle})")
    })
}

/// PRIME_HANDLE_TO_FD with `DRM_CLOEXEC | DRM_RDWR`: a new dma-buf fd of `handle`.
pub fn prime_handle_to_fd(
    k: &dyn Kernel,
    handle: u32,
) -> Result<std::os::fd::OwnedFd, KernelError> {
    use std::os::fd::FromRawFd;
    let mut arg = drm_prime_handle {
        handle,
        flags: DRM_CLOEXEC | DRM_RDWR,
        fd: -1,
    };
    call(k, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut arg, || {
        format!("PRIME_HANDLE_TO_FD(handle {handle})")
    })?;
    if arg.fd < 0 {
        return Err(KernelError {
            errno: Errno(libc::EPROTO),
            call: format!("PRIME_HANDLE_TO_FD(handle {handle}) returned fd {}", arg.fd),
        });
    }
    // SAFETY: the kernel just installed this fd for us; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(arg.fd) })
}

/// PRIME_FD_TO_HANDLE: this file's handle of the dma-buf `fd` (the same handle for a dma-buf the
/// file already knows).
pub fn prime_fd_to_handle(k: &dyn Kernel, fd: std::os::fd::RawFd) -> Result<u32, KernelError> {
    let mut arg = drm_prime_handle {
        handle: 0,
        flags: 0,
        fd,
    };
    call(k, DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut arg, || {
        format!("PRIME_FD_TO_HANDLE(fd {fd})")
    })?;
    Ok(arg.handle)
}

/// MSM GEM_MADVISE: `madv` is `MSM_MADV_WILLNEED` or `MSM_MADV_DONTNEED`; returns `retained`
/// (false: the object was purged and its contents are gone for good).
pub fn gem_madvise(k: &dyn Kernel, handle: u32, madv: u32) -> Result<bool, KernelError> {
    let mut arg = drm_msm_gem_madvise {
        handle,
        madv,
        retained: 0,
    };
    call(k, DRM_IOCTL_MSM_GEM_MADVISE, &mut arg, || {
        format!("GEM_MADVISE(handle {handle}, madv {madv})")
    })?;
    Ok(arg.retained != 0)
}

/// MSM GEM_CPU_PREP: waits until the GPU is done with `handle` for the CPU access `op`
/// (`MSM_PREP_READ` / `_WRITE`, `MSM_PREP_NOSYNC` to only ask), for at most `timeout_ns` from
/// now (the kernel takes an absolute CLOCK_MONOTONIC time). EBUSY (NOSYNC) or ETIMEDOUT when the
/// object is still busy.
pub fn gem_cpu_prep(
    k: &dyn Kernel,
    handle: u32,
    op: u32,
    timeout_ns: u64,
) -> Result<(), KernelError> {
    let deadline = monotonic_now_ns()
        .saturating_add(timeout_ns)
        .min(i64::MAX as u64);
    let mut arg = drm_msm_gem_cpu_prep {
        handle,
        op,
        timeout: drm_msm_timespec {
            tv_sec: (deadline / 1_000_000_000) as i64,
            tv_nsec: (deadline % 1_000_000_000) as i64,
        },
    };
    call(k, DRM_IOCTL_MSM_GEM_CPU_PREP, &mut arg, || {
        format!("GEM_CPU_PREP(handle {handle}, op {op:#x})")
    })
}

/// SUBMITQUEUE_QUERY(FAULTS): the faults and hangs charged to submitqueue `queue_id`.
pub fn submitqueue_faults(k: &dyn Kernel, queue_id: u32) -> Result<u32, KernelError> {
    let mut faults: u32 = 0;
    let mut arg = drm_msm_submitqueue_query {
        data: &mut faults as *mut u32 as u64,
        id: queue_id,
        param: MSM_SUBMITQUEUE_PARAM_FAULTS,
        len: size_of::<u32>() as u32,
        pad: 0,
    };
    call(k, DRM_IOCTL_MSM_SUBMITQUEUE_QUERY, &mut arg, || {
        format!("SUBMITQUEUE_QUERY(queue {queue_id}, FAULTS)")
    })?;
    Ok(faults)
}

/// MSM GEM_INFO of a by-value kind (`GET_OFFSET`, `GET_IOVA`, `SET_IOVA`, `GET_FLAGS`).
pub fn gem_info_value(
    k: &dyn Kernel,
    handle: u32,
    info: u32,
    value: u64,
) -> Result<u64, KernelError> {
    let mut arg = drm_msm_gem_info {
        handle,
        info,
        value,
        len: 0,
        pad: 0,
    };
    call(k, DRM_IOCTL_MSM_GEM_INFO, &mut arg, || {
        format!("GEM_INFO(handle {handle}, kind {info})")
    })?;
    Ok(arg.value)
}

/// A CPU map of the first `size_B` bytes of GEM handle `handle`: GEM_INFO(GET_OFFSET), then an
/// mmap of the device file at that offset, shared and read/write.
///
/// GET_OFFSET answers 0, and succeeds, when the kernel found no room for the object in its fake
/// offset space (`msm_gem_mmap_offset`; an object of more than about 1 TiB never fits): that is
/// ENOSPC here, before an mmap at offset 0 could fail with a less telling EINVAL.
pub fn gem_map(
    k: &dyn Kernel,
    handle: u32,
    size_B: usize,
) -> Result<memmap2::MmapMut, KernelError> {
    let offset_B = gem_info_value(k, handle, MSM_INFO_GET_OFFSET, 0)?;
    if offset_B == 0 {
        return Err(KernelError {
            errno: Errno::ENOSPC,
            call: format!(
                "GEM_INFO(GET_OFFSET, handle {handle}) (no mmap offset: the kernel's offset space \
                 has no room for the object)"
            ),
        });
    }
    k.map(offset_B, size_B).map_err(|errno| KernelError {
        errno,
        call: format!("mmap(handle {handle}, offset {offset_B:#x}, {size_B} bytes)"),
    })
}

/// A single-plane framebuffer for MODE_ADDFB2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbLayout {
    pub width: u32,
    pub height: u32,
    /// DRM fourcc, e.g. `DRM_FORMAT_XRGB8888` = `u32::from_le_bytes(*b"XR24")`.
    pub fourcc: u32,
    pub pitch_B: u32,
    pub offset_B: u32,
}

/// MODE_ADDFB2 of one plane backed by `handle`; returns the framebuffer id.
pub fn mode_addfb2(k: &dyn Kernel, handle: u32, fb: FbLayout) -> Result<u32, KernelError> {
    let mut arg = drm_mode_fb_cmd2 {
        width: fb.width,
        height: fb.height,
        pixel_format: fb.fourcc,
        handles: [handle, 0, 0, 0],
        pitches: [fb.pitch_B, 0, 0, 0],
        offsets: [fb.offset_B, 0, 0, 0],
        ..Default::default()
    };
    call(k, DRM_IOCTL_MODE_ADDFB2, &mut arg, || {
        format!("MODE_ADDFB2(handle {handle}, {}x{})", fb.width, fb.height)
    })?;
    Ok(arg.fb_id)
}

/// MODE_RMFB.
pub fn mode_rmfb(k: &dyn Kernel, fb_id: u32) -> Result<(), KernelError> {
    let mut arg = fb_id;
    call(k, DRM_IOCTL_MODE_RMFB, &mut arg, || {
        format!("MODE_RMFB(fb {fb_id})")
    })
}

/// MODE_GETCRTC: the framebuffer `crtc_id` scans out (0 when it is off).
pub fn mode_crtc_fb(k: &dyn Kernel, crtc_id: u32) -> Result<u32, KernelError> {
    let mut arg = drm_mode_crtc {
        crtc_id,
        ..Default::default()
    };
    call(k, DRM_IOCTL_MODE_GETCRTC, &mut arg, || {
        format!("MODE_GETCRTC(crtc {crtc_id})")
    })?;
    Ok(arg.fb_id)
}

/// MODE_PAGE_FLIP of `crtc_id` to `fb_id` (no flags: no event is asked for).
pub fn mode_page_flip(k: &dyn Kernel, crtc_id: u32, fb_id: u32) -> Result<(), KernelError> {
    let mut arg = drm_mode_crtc_page_flip {
        crtc_id,
        fb_id,
        ..Default::default()
    };
    call(k, DRM_IOCTL_MODE_PAGE_FLIP, &mut arg, || {
        format!("MODE_PAGE_FLIP(crtc {crtc_id}, fb {fb_id})")
    })
}

// ---- Submitqueues, syncobjs, VM_BIND and VM_BIND-mode SUBMIT --------------------------------

/// SUBMITQUEUE_NEW: a new queue with `flags` (`MSM_SUBMITQUEUE_*`) at `prio`; returns its id.
pub fn submitqueue_new(k: &dyn Kernel, flags: u32, prio: u32) -> Result<u32, KernelError> {
    let mut arg = drm_msm_submitqueue { flags, prio, id: 0 };
    call(k, DRM_IOCTL_MSM_SUBMITQUEUE_NEW, &mut arg, || {
        format!("SUBMITQUEUE_NEW(flags {flags:#x}, prio {prio})")
    })?;
    Ok(arg.id)
}

/// WAIT_FENCE: waits until seqno `fence` of submitqueue `queue_id` has retired, for at most
/// `timeout_ns` from now (the kernel takes an absolute CLOCK_MONOTONIC time). ETIMEDOUT when it
/// has not retired by then, as msm_wait_fence returns.
pub fn wait_fence(
    k: &dyn Kernel,
    queue_id: u32,
    fence: u32,
    timeout_ns: u64,
) -> Result<(), KernelError> {
    let now = monotonic_now_ns();
    let deadline = now.saturating_add(timeout_ns).min(i64::MAX as u64);
    let mut arg = drm_msm_wait_fence {
        fence,
        flags: 0,
        timeout: drm_msm_timespec {
            tv_sec: (deadline / 1_000_000_000) as i64,
            tv_nsec: (deadline % 1_000_000_000) as i64,
        },
        queueid: queue_id,
    };
    call(k, DRM_IOCTL_MSM_WAIT_FENCE, &mut arg, || {
        format!("WAIT_FENCE(queue {queue_id}, fence {fence})")
    })
}

/// CLOCK_MONOTONIC now, in ns: the clock the kernel's absolute timeouts use.
pub fn monotonic_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// SUBMITQUEUE_CLOSE.
pub fn submitqueue_close(k: &dyn Kernel, id: u32) -> Result<(), KernelError> {
    let mut arg = id;
    call(k, DRM_IOCTL_MSM_SUBMITQUEUE_CLOSE, &mut arg, || {
        format!("SUBMITQUEUE_CLOSE({id})")
    })
}

/// SYNCOBJ_CREATE, signalled or not.
pub fn syncobj_create(k: &dyn Kernel, signalled: bool) -> Result<u32, KernelError> {
    let flags = if signalled {
        DRM_SYNCOBJ_CREATE_SIGNALED
    } else {
        0
    };
    let mut arg = drm_syncobj_create { handle: 0, flags };
    call(k, DRM_IOCTL_SYNCOBJ_CREATE, &mut arg, || {
        "SYNCOBJ_CREATE".into()
    })?;
    Ok(arg.handle)
}

/// SYNCOBJ_DESTROY.
pub fn syncobj_destroy(k: &dyn Kernel, handle: u32) -> Result<(), KernelError> {
    let mut arg = drm_syncobj_destroy { handle, pad: 0 };
    call(k, DRM_IOCTL_SYNCOBJ_DESTROY, &mut arg, || {
        format!("SYNCOBJ_DESTROY({handle})")
    })
}

/// SYNCOBJ_TRANSFER: point `dst_point` of timeline `dst` gets the fence of `src` at `src_point`
/// (0: a binary syncobj's fence). EINVAL when `src` has no fence there yet, ENOENT for a handle
/// that is not a syncobj of this file.
pub fn syncobj_transfer(k: &dyn Kernel, src: SyncPoint, dst: SyncPoint) -> Result<(), KernelError> {
    let mut arg = drm_syncobj_transfer {
        src_handle: src.handle,
        dst_handle: dst.handle,
        src_point: src.point,
        dst_point: dst.point,
        flags: 0,
        pad: 0,
    };
    call(k, DRM_IOCTL_SYNCOBJ_TRANSFER, &mut arg, || {
        format!(
            "SYNCOBJ_TRANSFER({}@{} -> {}@{})",
            src.handle, src.point, dst.handle, dst.point
        )
    })
}

/// SYNCOBJ_QUERY of one timeline syncobj: its last signalled point.
pub fn syncobj_query(k: &dyn Kernel, handle: u32) -> Result<u64, KernelError> {
    let handles = [handle];
    let mut points = [0u64];
    let mut arg = drm_syncobj_timeline_array {
        handles: handles.as_ptr() as u64,
        points: points.as_mut_ptr() as u64,
        count_handles: 1,
        flags: 0,
    };
    call(k, DRM_IOCTL_SYNCOBJ_QUERY, &mut arg, || {
        format!("SYNCOBJ_QUERY({handle})")
    })?;
    Ok(points[0])
}

/// SYNCOBJ_TIMELINE_WAIT for every `(handle, point)` until the absolute CLOCK_MONOTONIC time
/// `deadline_ns` (i64::MAX: forever). ETIME on timeout, as the kernel reports it.
pub fn syncobj_timeline_wait(
    k: &dyn Kernel,
    points: &[SyncPoint],
    deadline_ns: i64,
) -> Result<(), KernelError> {
    let handles: Vec<u32> = points.iter().map(|p| p.handle).collect();
    let values: Vec<u64> = points.iter().map(|p| p.point).collect();
    let mut arg = drm_syncobj_timeline_wait {
        handles: handles.as_ptr() as u64,
        points: values.as_ptr() as u64,
        timeout_nsec: deadline_ns,
        count_handles: handles.len() as u32,
        flags: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL | DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
        ..Default::default()
    };
    call(k, DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &mut arg, || {
        format!("SYNCOBJ_TIMELINE_WAIT({} points)", points.len())
    })
}

/// A syncobj and a timeline point on it (0 for a binary syncobj).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncPoint {
    pub handle: u32,
    pub point: u64,
}

fn pack_syncobjs(points: &[SyncPoint]) -> Vec<drm_msm_syncobj> {
    points
        .iter()
        .map(|p| drm_msm_syncobj {
            handle: p.handle,
            flags: 0,
            point: p.point,
        })
        .collect()
}

/// The fences around one VM_BIND or SUBMIT.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fences<'a> {
    pub wait: &'a [SyncPoint],
    pub signal: &'a [SyncPoint],
    /// A sync file to wait for.
    pub fence_fd_in: Option<std::os::fd::RawFd>,
    /// Ask for an out-fence sync file.
    pub fence_fd_out: bool,
}

/// What one VM_BIND op does, as the uAPI can say it (`drm_msm_vm_bind_op::op` and its object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmBindKind {
    /// `MSM_VM_BIND_OP_UNMAP`.
    Unmap,
    /// `MSM_VM_BIND_OP_MAP` of GEM object `handle` from byte `obj_offset_B` of it.
    Map { handle: u32, obj_offset_B: u64 },
    /// `MSM_VM_BIND_OP_MAP_NULL`: the shared zero page.
    MapNull,
}

/// One op of a VM_BIND job, typed: what [`vm_bind`] packs into a `drm_msm_vm_bind_op`. The
/// winsys's bind planner (`crate::bind`) converts its own ops into these (`From<&BindOp>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmBindOp {
    pub kind: VmBindKind,
    pub iova: u64,
    pub range_B: u64,
    /// `MSM_VM_BIND_OP_DUMP`: include the mapping in devcoredumps.
    pub dump: bool,
}

fn pack_bind_op(op: VmBindOp) -> drm_msm_vm_bind_op {
    let (kind, handle, obj_offset) = match op.kind {
        VmBindKind::Unmap => (MSM_VM_BIND_OP_UNMAP, 0, 0),
        VmBindKind::MapNull => (MSM_VM_BIND_OP_MAP_NULL, 0, 0),
        VmBindKind::Map {
            handle,
            obj_offset_B,
        } => (MSM_VM_BIND_OP_MAP, handle, obj_offset_B),
    };
    drm_msm_vm_bind_op {
        op: kind,
        handle,
        obj_offset,
        iova: op.iova,
        range: op.range_B,
        flags: if op.dump { MSM_VM_BIND_OP_DUMP } else { 0 },
        pad: 0,
    }
}

/// VM_BIND of `ops` on VM_BIND queue `queue_id`, as one job. Returns the out fence fd if asked.
/// `ops` are [`VmBindOp`]s or anything that converts into them (the planner's `&BindOp`).
pub fn vm_bind(
    k: &dyn Kernel,
    queue_id: u32,
    ops: impl IntoIterator<Item = impl Into<VmBindOp>>,
    fences: Fences<'_>,
) -> Result<Option<std::os::fd::OwnedFd>, KernelError> {
    use std::os::fd::FromRawFd;
    let packed: Vec<drm_msm_vm_bind_op> =
        ops.into_iter().map(|op| pack_bind_op(op.into())).collect();
    let (ins, outs) = (pack_syncobjs(fences.wait), pack_syncobjs(fences.signal));
    let mut arg = drm_msm_vm_bind {
        flags: if fences.fence_fd_in.is_some() {
            MSM_VM_BIND_FENCE_FD_IN
        } else {
            0
        } | if fences.fence_fd_out {
            MSM_VM_BIND_FENCE_FD_OUT
        } else {
            0
        },
        nr_ops: packed.len() as u32,
        fence_fd: fences.fence_fd_in.unwrap_or(-1),
        queue_id,
        in_syncobjs: if ins.is_empty() {
            0
        } else {
            ins.as_ptr() as u64
        },
        out_syncobjs: if outs.is_empty() {
            0
        } else {
            outs.as_ptr() as u64
        },
        nr_in_syncobjs: ins.len() as u32,
        nr_out_syncobjs: outs.len() as u32,
        syncobj_stride: std::mem::size_of::<drm_msm_syncobj>() as u32,
        op_stride: std::mem::size_of::<drm_msm_vm_bind_op>() as u32,
        u: drm_msm_vm_bind_ops { ops: 0 },
    };
    // One op travels inline in the union; more go by pointer.
    arg.u = match packed.as_slice() {
        [one] => drm_msm_vm_bind_ops { op: *one },
        many => drm_msm_vm_bind_ops {
            ops: many.as_ptr() as u64,
        },
    };
    call(k, DRM_IOCTL_MSM_VM_BIND, &mut arg, || {
        format!("VM_BIND(queue {queue_id}, {} ops)", packed.len())
    })?;
    // SAFETY: on success with FENCE_FD_OUT the kernel installed a new fd that we now own.
    Ok(fences
        .fence_fd_out
        .then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(arg.fence_fd) }))
}

/// GEM_SUBMIT in VM_BIND mode: commands by GPU address `(iova, size_B)`, no BO table.
/// Returns the queue seqno and the out fence fd if asked.
pub fn submit_by_iova(
    k: &dyn Kernel,
    queue_id: u32,
    cmds: &[(u64, u32)],
    fences: Fences<'_>,
) -> Result<(u32, Option<std::os::fd::OwnedFd>), KernelError> {
    let packed: Vec<drm_msm_gem_submit_cmd> = cmds
        .iter()
        .map(|&(iova, size)| {
            let mut c = drm_msm_gem_submit_cmd {
                r#type: MSM_SUBMIT_CMD_BUF,
                size,
                ..Default::default()
            };
            c.set_iova(iova);
            c
        })
        .collect();
    gem_submit(k, queue_id, &[], &packed, 0, fences)
}

/// The one place that packs `drm_msm_gem_submit`: the table, the commands, `flags` beyond the
/// pipe and the fence flags, and every fence of `fences`.
fn gem_submit(
    k: &dyn Kernel,
    queue_id: u32,
    bos: &[drm_msm_gem_submit_bo],
    cmds: &[drm_msm_gem_submit_cmd],
    flags: u32,
    fences: Fences<'_>,
) -> Result<(u32, Option<std::os::fd::OwnedFd>), KernelError> {
    use std::os::fd::FromRawFd;
    let (ins, outs) = (pack_syncobjs(fences.wait), pack_syncobjs(fences.signal));
    let mut all_flags = MSM_PIPE_3D0 | flags;
    for (on, bit) in [
        (fences.fence_fd_in.is_some(), MSM_SUBMIT_FENCE_FD_IN),
        (fences.fence_fd_out, MSM_SUBMIT_FENCE_FD_OUT),
        (!ins.is_empty(), MSM_SUBMIT_SYNCOBJ_IN),
        (!outs.is_empty(), MSM_SUBMIT_SYNCOBJ_OUT),
    ] {
        if on {
            all_flags |= bit;
        }
    }
    let mut arg = drm_msm_gem_submit {
        flags: all_flags,
        nr_bos: bos.len() as u32,
        bos: bos.as_ptr() as u64,
        nr_cmds: cmds.len() as u32,
        cmds: cmds.as_ptr() as u64,
        fence_fd: fences.fence_fd_in.unwrap_or(-1),
        queueid: queue_id,
        in_syncobjs: ins.as_ptr() as u64,
        out_syncobjs: outs.as_ptr() as u64,
        nr_in_syncobjs: ins.len() as u32,
        nr_out_syncobjs: outs.len() as u32,
        syncobj_stride: std::mem::size_of::<drm_msm_syncobj>() as u32,
        ..Default::default()
    };
    call(k, DRM_IOCTL_MSM_GEM_SUBMIT, &mut arg, || {
        format!(
            "GEM_SUBMIT(queue {queue_id}, {} bos, {} cmds)",
            bos.len(),
            cmds.len()
        )
    })?;
    // SAFETY: on success with FENCE_FD_OUT the kernel installed a new fd that we now own.
    let fd = fences
        .fence_fd_out
        .then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(arg.fence_fd) });
    Ok((arg.fence, fd))
}

/// One command of a legacy submit: `size_B` bytes at `offset_B` into BO-table entry `bo_index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableCmd {
    pub bo_index: u32,
    pub offset_B: u32,
    pub size_B: u32,
}

/// The BO table of legacy submits, kept packed as the kernel reads it so a submit passes it as
/// is: O(1) to add and remove a buffer, never rebuilt per submit. Every entry is READ|WRITE
/// (explicit sync is through syncobjs, as turnip does).
#[derive(Debug, Default)]
pub struct BoTable {
    entries: Vec<drm_msm_gem_submit_bo>,
    index: std::collections::HashMap<u32, u32>,
}

impl BoTable {
    /// Adds `handle` (at GPU address `iova`, the kernel's `presumed`); returns its index.
    pub fn insert(&mut self, handle: u32, iova: u64) -> u32 {
        let at = self.entries.len() as u32;
        self.index.insert(handle, at);
        self.entries.push(drm_msm_gem_submit_bo {
            flags: MSM_SUBMIT_BO_READ | MSM_SUBMIT_BO_WRITE,
            handle,
            presumed: iova,
        });
        at
    }

    /// Removes `handle`: the last entry moves into its slot.
    pub fn remove(&mut self, handle: u32) {
        let Some(i) = self.index.remove(&handle) else {
            return;
        };
        self.entries.swap_remove(i as usize);
        if let Some(moved) = self.entries.get(i as usize).map(|b| b.handle) {
            self.index.insert(moved, i);
        }
    }

    /// Where `handle` sits in the table.
    pub fn index_of(&self, handle: u32) -> Option<u32> {
        self.index.get(&handle).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// GEM_SUBMIT without VM_BIND: the BO table and commands into it. `flags` adds
/// `MSM_SUBMIT_NO_IMPLICIT` and the like.
pub fn submit_with_table(
    k: &dyn Kernel,
    queue_id: u32,
    table: &BoTable,
    cmds: &[TableCmd],
    flags: u32,
    fences: Fences<'_>,
) -> Result<(u32, Option<std::os::fd::OwnedFd>), KernelError> {
    let packed: Vec<drm_msm_gem_submit_cmd> = cmds
        .iter()
        .map(|c| drm_msm_gem_submit_cmd {
            r#type: MSM_SUBMIT_CMD_BUF,
            submit_idx: c.bo_index,
            submit_offset: c.offset_B,
            size: c.size_B,
            ..Default::default()
        })
        .collect();
    gem_submit(k, queue_id, &table.entries, &packed, flags, fences)
}
