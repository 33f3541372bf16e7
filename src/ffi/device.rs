//! C API of the device: open (from a DRM fd or on the kernel model), probe results, destroy.
//!
//! Owns: the `msmws_device` handle (a boxed [`Device`]) and its record of the queues and syncobjs
//! the driver made through it. Locks: `msmws_device::made` only, a leaf (held across the one
//! ioctl that makes or releases such an object, so the record and the file agree); otherwise a
//! device is immutable after the probe, so every function here is safe to call from several
//! threads on the same device, except `msmws_device_destroy`, which must be the last call on it.

use std::ffi::{c_char, c_int, CStr};
use std::os::fd::{FromRawFd, OwnedFd};

use super::{borrow, boundary, check_out, write_out, FfiError};
use crate::sim::{Node, Sim};
use crate::Device;

/// An opened, probed msm device. Opaque.
pub struct msmws_device {
    /// Shared with the buffers made on it (`msmws_bo`), which keep it alive.
    pub(crate) inner: std::sync::Arc<Device>,
    /// The kernel model behind a device made by `msmws_device_new_sim` (its debug API); `None`
    /// for any other device.
    pub(crate) sim: Option<Sim>,
    /// Submitqueues and syncobjs the driver made through this handle: the only ones
    /// `msmws_device_submitqueue_close` and `msmws_device_syncobj_destroy` take. The file also
    /// holds the library's own (a GPU VM's bind queues and timelines), which a stray id must
    /// not reach.
    pub(crate) made: std::sync::Mutex<Made>,
}

/// See [`msmws_device::made`].
#[derive(Debug, Default)]
pub(crate) struct Made {
    pub queues: std::collections::HashSet<u32>,
    pub syncobjs: std::collections::HashSet<u32>,
}

impl msmws_device {
    pub(crate) fn made(&self) -> std::sync::MutexGuard<'_, Made> {
        self.made.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Userspace allocates GPU addresses and maps them with VM_BIND (UAPI 1.13).
pub const MSMWS_VM_MODE_VM_BIND: u32 = 1;
/// Userspace allocates GPU addresses and pins BOs with GEM_INFO(SET_IOVA).
pub const MSMWS_VM_MODE_USERSPACE_IOVA: u32 = 2;
/// The kernel picks each BO's address (GEM_INFO(GET_IOVA)).
pub const MSMWS_VM_MODE_KERNEL_IOVA: u32 = 3;
// Literals so cbindgen can write them into the header; a test keeps them equal to `VmMode`.

/// What the device probe found. Filled by `msmws_device_get_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct msmws_device_info {
    pub uapi_major: u32,
    pub uapi_minor: u32,
    pub uapi_patchlevel: u32,
    /// `MSM_PARAM_GPU_ID`; 0 on parts identified only by `chip_id` (a7xx).
    pub gpu_id: u32,
    /// `MSM_PARAM_CHIP_ID` (upper 32 bits: speed bin on parts without a GPU id).
    pub chip_id: u64,
    pub gmem_size_B: u64,
    pub gmem_base: u64,
    /// Usable GPU VA range; both 0 in `MSMWS_VM_MODE_KERNEL_IOVA`.
    pub va_start: u64,
    pub va_size_B: u64,
    pub priorities: u32,
    /// One of `MSMWS_VM_MODE_*`.
    pub vm_mode: u32,
    pub highest_bank_bit: u32,
    pub ubwc_swizzle: u32,
    pub macrotile_mode: u32,
    pub raytracing: bool,
    /// NUL-terminated, e.g. "a750".
    pub chip_name: [c_char; 32],
}

/// What the probe leaves out (a driver may never need it). Filled by `msmws_device_get_extras`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct msmws_device_extras {
    /// `MSM_PARAM_MAX_FREQ`.
    pub max_freq_Hz: u64,
    /// `MSM_PARAM_UCHE_TRAP_BASE` (0 on kernels without it).
    pub uche_trap_base: u64,
    /// `MSM_PARAM_HAS_PRR`: VM_BIND's MAP_NULL (sparse residency) is supported.
    pub has_prr: bool,
    /// `DRM_CAP_SYNCOBJ_TIMELINE`.
    pub timeline_syncobjs: bool,
}

fn into_handle(dev: Device, sim: Option<Sim>, out: *mut *mut msmws_device) {
    let raw = Box::into_raw(Box::new(msmws_device {
        inner: std::sync::Arc::new(dev),
        sim,
        made: Default::default(),
    }));
    // SAFETY: `out` was checked non-null by the caller of this helper before any work was done.
    unsafe { write_out(out, raw) }
}

/// Duplicates a caller's fd (F_DUPFD_CLOEXEC), so the library owns its own.
fn dup_fd(fd: c_int) -> Result<OwnedFd, FfiError> {
    if fd < 0 {
        return Err(FfiError::invalid(format!("fd {fd} is negative")));
    }
    // SAFETY: fcntl on an arbitrary int is safe; a closed fd gives EBADF.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        let errno = crate::Errno::last();
        return Err(FfiError::new(
            errno,
            format!("cannot duplicate fd {fd}: {errno}"),
        ));
    }
    // SAFETY: `dup` is a new fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// `msmws_device_new_from_fd_flags`: probe without trying VM_BIND, so the fd's file stays in the
/// mode every other driver expects (a probe-only file, such as a Vulkan physical device's).
pub const MSMWS_PROBE_NO_VM_BIND: u32 = 1;

/// Probes the msm device open on `fd` and returns a new device in `*out`.
///
/// Ownership: the library duplicates `fd` (F_DUPFD_CLOEXEC); the caller keeps and closes its own.
/// The dup shares the caller's open file, so VM_BIND mode is chosen only if nothing has created
/// that file's GPU VM yet (any GET_PARAM does): pass a freshly opened fd to get VM_BIND.
/// Release the device with `msmws_device_destroy`.
///
/// Returns 0; -EINVAL for a NULL `out` or a negative fd; -EBADF for a closed fd; -ENODEV when the
/// fd is not an msm DRM device or its UAPI is older than 1.6; or the errno of a failed probe ioctl.
#[no_mangle]
pub extern "C" fn msmws_device_new_from_fd(fd: c_int, out: *mut *mut msmws_device) -> c_int {
    msmws_device_new_from_fd_flags(fd, 0, out)
}

/// `msmws_device_new_from_fd` with `MSMWS_PROBE_*` flags: `MSMWS_PROBE_NO_VM_BIND` leaves
/// EN_VM_BIND untried (the device is then in userspace or kernel iova mode). Returns the same
/// errors, and -EINVAL for an unknown flag.
#[no_mangle]
pub extern "C" fn msmws_device_new_from_fd_flags(
    fd: c_int,
    flags: u32,
    out: *mut *mut msmws_device,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        let options = probe_options(flags)?;
        into_handle(Device::from_fd_with(dup_fd(fd)?, options)?, None, out);
        Ok(())
    })
}

/// `msmws_device_new_from_fd_flags` for a caller that has read the fd's DRM VERSION itself and
/// found the "msm" driver (turnip's drmGetVersion at enumeration): `major`, `minor` and
/// `patchlevel` are its answer, and the probe does not ask again.
///
/// Returns the errors of `msmws_device_new_from_fd_flags`; -ENODEV for a UAPI older than 1.6.
#[no_mangle]
pub extern "C" fn msmws_device_new_from_fd_version(
    fd: c_int,
    flags: u32,
    major: i32,
    minor: i32,
    patchlevel: i32,
    out: *mut *mut msmws_device,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        let options = probe_options(flags)?;
        let version = crate::kernel::ioctl::DrmVersion {
            major,
            minor,
            patchlevel,
            name: "msm".into(),
            date: String::new(),
            desc: String::new(),
        };
        let dev = Device::from_fd_with_version(dup_fd(fd)?, options, version)?;
        into_handle(dev, None, out);
        Ok(())
    })
}

/// The probe options of `MSMWS_PROBE_*` `flags`.
fn probe_options(flags: u32) -> Result<crate::ProbeOptions, FfiError> {
    if flags & !MSMWS_PROBE_NO_VM_BIND != 0 {
        return Err(FfiError::invalid(format!("unknown probe flags {flags:#x}")));
    }
    Ok(crate::ProbeOptions {
        allow_vm_bind: flags & MSMWS_PROBE_NO_VM_BIND == 0,
        ..Default::default()
    })
}

/// Opens a device on `fd`, a freshly opened file of the node that `known` (filled by
/// `msmws_device_get_info` on an earlier device) was probed on, without probing it again: the
/// GPU's parameters are `known`'s; the only probe ioctl is, when `known` has per-process page
/// tables and UAPI >= 1.13, EN_VM_BIND, whose answer sets the new device's mode. `fd` is not
/// checked with VERSION: it must be a file of the node `known` came from. A driver that probes a node once at enumeration opens its devices this way.
///
/// Ownership as for `msmws_device_new_from_fd`. Returns 0; -EINVAL for a NULL argument, a
/// negative fd or a `known` whose `vm_mode` is not an `MSMWS_VM_MODE_*`; -EBADF, -ENODEV or an
/// ioctl's errno as for `msmws_device_new_from_fd`.
#[no_mangle]
pub extern "C" fn msmws_device_new_from_fd_like(
    fd: c_int,
    known: *const msmws_device_info,
    out: *mut *mut msmws_device,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        // SAFETY: a non-null `known` points to one struct the caller owns (API contract).
        let known = unsafe { borrow(known, "known") }?;
        let known = info_from_c(known)?;
        into_handle(Device::from_fd_like(dup_fd(fd)?, &known)?, None, out);
        Ok(())
    })
}

/// The Rust form of a C `msmws_device_info`, as `msmws_device_get_info` wrote it.
fn info_from_c(c: &msmws_device_info) -> Result<crate::DeviceInfo, FfiError> {
    use crate::VmMode;
    let mode = match c.vm_mode {
        MSMWS_VM_MODE_VM_BIND => VmMode::VmBind,
        MSMWS_VM_MODE_USERSPACE_IOVA => VmMode::UserspaceIova,
        MSMWS_VM_MODE_KERNEL_IOVA => VmMode::KernelIova,
        m => {
            return Err(FfiError::invalid(format!(
                "known->vm_mode {m} is not a mode"
            )))
        }
    };
    let name_len = c
        .chip_name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(c.chip_name.len());
    let chip_name: Vec<u8> = c.chip_name[..name_len].iter().map(|&b| b as u8).collect();
    Ok(crate::DeviceInfo {
        source: "a caller's msmws_device_info".into(),
        uapi_major: c.uapi_major,
        uapi_minor: c.uapi_minor,
        uapi_patchlevel: c.uapi_patchlevel,
        chip_name: String::from_utf8_lossy(&chip_name).into_owned(),
        gpu_id: c.gpu_id,
        chip_id: c.chip_id,
        gmem_size_B: c.gmem_size_B,
        gmem_base: c.gmem_base,
        priorities: c.priorities,
        va_start: c.va_start,
        va_size_B: c.va_size_B,
        raytracing: c.raytracing,
        highest_bank_bit: c.highest_bank_bit,
        ubwc_swizzle: c.ubwc_swizzle,
        macrotile_mode: c.macrotile_mode,
        mode,
        mode_reason: String::new(),
    })
}

/// Creates a kernel model device of chip profile `profile` ("a618", "a660" or "a750"), opens a
/// file on its primary node (DRM master, so flip chains can flip; flips complete as they are
/// made) and probes it; returns the new device in `*out`.
///
/// Release it with `msmws_device_destroy`. Returns 0, or -EINVAL for a NULL argument or an
/// unknown profile (the message lists the known ones).
#[no_mangle]
pub extern "C" fn msmws_device_new_sim(
    profile: *const c_char,
    out: *mut *mut msmws_device,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        if profile.is_null() {
            return Err(FfiError::invalid("profile is NULL"));
        }
        // SAFETY: non-null and, per the documented contract, a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(profile) }.to_string_lossy();
        let sim = Device::sim_model(&name)?;
        into_handle(Device::on_sim_node(&sim, Node::Primary)?, Some(sim), out);
        Ok(())
    })
}

/// Copies the probe results of `dev` into `*info`.
///
/// Thread-safe. Returns 0, or -EINVAL for a NULL argument.
#[no_mangle]
pub extern "C" fn msmws_device_get_info(
    dev: *const msmws_device,
    info: *mut msmws_device_info,
) -> c_int {
    boundary(|| {
        check_out(info, "info")?;
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        let i = dev.inner.info();
        let mut chip_name = [0 as c_char; 32];
        for (dst, src) in chip_name.iter_mut().zip(i.chip_name.bytes().take(31)) {
            *dst = src as c_char;
        }
        let c = msmws_device_info {
            uapi_major: i.uapi_major,
            uapi_minor: i.uapi_minor,
            uapi_patchlevel: i.uapi_patchlevel,
            gpu_id: i.gpu_id,
            chip_id: i.chip_id,
            gmem_size_B: i.gmem_size_B,
            gmem_base: i.gmem_base,
            va_start: i.va_start,
            va_size_B: i.va_size_B,
            priorities: i.priorities,
            vm_mode: i.mode as u32,
            highest_bank_bit: i.highest_bank_bit,
            ubwc_swizzle: i.ubwc_swizzle,
            macrotile_mode: i.macrotile_mode,
            raytracing: i.raytracing,
            chip_name,
        };
        // SAFETY: checked non-null above; the caller provides storage for one struct.
        unsafe { write_out(info, c) };
        Ok(())
    })
}

/// Reads what the probe leaves out (`msmws_device_extras`) into `*extras`: one GET_PARAM or
/// GET_CAP each on the first call, none afterwards.
///
/// Thread-safe. Returns 0, -EINVAL for a NULL argument, or the errno of a refused GET_PARAM.
#[no_mangle]
pub extern "C" fn msmws_device_get_extras(
    dev: *const msmws_device,
    extras: *mut msmws_device_extras,
) -> c_int {
    boundary(|| {
        check_out(extras, "extras")?;
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        let e = dev.inner.extras()?;
        let c = msmws_device_extras {
            max_freq_Hz: e.max_freq_Hz,
            uche_trap_base: e.uche_trap_base,
            has_prr: e.has_prr,
            timeline_syncobjs: e.timeline_syncobjs,
        };
        // SAFETY: checked non-null above; the caller provides storage for one struct.
        unsafe { write_out(extras, c) };
        Ok(())
    })
}

/// Creates a syncobj (not signalled) on the device's file and writes its handle to `*handle`: the
/// fences a driver names in a submit's `signals` and in the `users` of a free or an unmap. A driver
/// that opened the device from its own fd may as well call drmSyncobjCreate on that fd (the device
/// shares its open file); a model device (`msmws_device_new_sim`) has no fd of its own.
///
/// Thread-safe. Returns 0, -EINVAL for a NULL argument, or the kernel's errno. Destroy it with
/// `msmws_device_syncobj_destroy`.
#[no_mangle]
pub extern "C" fn msmws_device_syncobj_create(dev: *const msmws_device, handle: *mut u32) -> c_int {
    boundary(|| {
        check_out(handle, "handle")?;
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        let h = crate::kernel::ioctl::syncobj_create(dev.inner.kernel(), false)?;
        dev.made().syncobjs.insert(h);
        // SAFETY: checked non-null above; the caller provides storage for one u32.
        unsafe { write_out(handle, h) };
        Ok(())
    })
}

/// Destroys syncobj `handle`, made by `msmws_device_syncobj_create` on `dev`. Fences already taken
/// from it (by a submit or a bind that waits for it) are not affected.
///
/// Thread-safe. Returns 0, or -EINVAL for a NULL `dev` or any other handle (destroyed already,
/// made elsewhere, or one of the library's own, such as a GPU VM's timelines); nothing is
/// destroyed then.
#[no_mangle]
pub extern "C" fn msmws_device_syncobj_destroy(dev: *const msmws_device, handle: u32) -> c_int {
    boundary(|| {
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        let mut made = dev.made();
        if !made.syncobjs.contains(&handle) {
            return Err(FfiError::invalid(format!(
                "syncobj {handle} was not made by msmws_device_syncobj_create on this device \
                 (or is destroyed already)"
            )));
        }
        crate::kernel::ioctl::syncobj_destroy(dev.inner.kernel(), handle)?;
        made.syncobjs.remove(&handle);
        Ok(())
    })
}

/// On a model device (`msmws_device_new_sim`): waits until its GPU has run every queued job
/// (submits and VM_BIND jobs), for at most `timeout_ns`. A test's way to let the model finish
/// before it checks or tears down, as a driver would wait for its fences on hardware.
///
/// Thread-safe. Returns 0, -ETIME when jobs are still queued at the timeout (for example ones
/// waiting for a fence nobody signals), -EINVAL for a NULL `dev`, -EOPNOTSUPP on a real device.
#[no_mangle]
pub extern "C" fn msmws_device_sim_wait_idle(dev: *const msmws_device, timeout_ns: u64) -> c_int {
    boundary(|| {
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        let sim = dev
            .sim
            .as_ref()
            .ok_or_else(|| FfiError::new(crate::Errno::EOPNOTSUPP, "not a kernel model device"))?;
        if !sim.gpu_wait_idle(std::time::Duration::from_nanos(timeout_ns)) {
            return Err(FfiError::new(
                crate::Errno::ETIME,
                format!(
                    "{} GPU job(s) still queued after {timeout_ns} ns",
                    sim.gpu_pending()
                ),
            ));
        }
        Ok(())
    })
}

/// Destroys a device handle. NULL is accepted and does nothing. The file is closed once the last
/// buffer (`msmws_bo`) or flip chain made on the device is released too.
///
/// Must be the last call on `dev`; no other thread may be using it.
#[no_mangle]
pub extern "C" fn msmws_device_destroy(dev: *mut msmws_device) {
    // The return value is dropped: destroy cannot fail, and a panic in a destructor is contained.
    let _ = boundary(|| {
        if !dev.is_null() {
            // SAFETY: `dev` came from Box::into_raw in into_handle and is destroyed exactly once
            // (API contract).
            drop(unsafe { Box::from_raw(dev) });
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VmMode;
    use std::ptr;

    #[test]
    fn vm_mode_constants_match_the_enum() {
        assert_eq!(MSMWS_VM_MODE_VM_BIND, VmMode::VmBind as u32);
        assert_eq!(MSMWS_VM_MODE_USERSPACE_IOVA, VmMode::UserspaceIova as u32);
        assert_eq!(MSMWS_VM_MODE_KERNEL_IOVA, VmMode::KernelIova as u32);
    }

    #[test]
    fn sim_device_round_trip_and_bad_input() {
        let mut dev = ptr::null_mut();
        assert_eq!(msmws_device_new_sim(c"a750".as_ptr(), &mut dev), 0);
        let mut info = std::mem::MaybeUninit::<msmws_device_info>::zeroed();
        assert_eq!(msmws_device_get_info(dev, info.as_mut_ptr()), 0);
        // SAFETY: filled by the successful call above.
        let info = unsafe { info.assume_init() };
        assert_eq!(info.vm_mode, MSMWS_VM_MODE_VM_BIND);
        let mut extras = std::mem::MaybeUninit::<msmws_device_extras>::zeroed();
        assert_eq!(msmws_device_get_extras(dev, extras.as_mut_ptr()), 0);
        // SAFETY: filled by the successful call above.
        let extras = unsafe { extras.assume_init() };
        assert!(extras.has_prr && extras.timeline_syncobjs);
        assert_eq!(msmws_device_get_extras(dev, ptr::null_mut()), -libc::EINVAL);
        assert_eq!(msmws_device_get_info(dev, ptr::null_mut()), -libc::EINVAL);
        assert_eq!(
            msmws_device_get_info(ptr::null(), &mut info.clone()),
            -libc::EINVAL
        );
        msmws_device_destroy(dev);
        msmws_device_destroy(ptr::null_mut());

        let mut dev = ptr::null_mut();
        assert_eq!(
            msmws_device_new_sim(c"a999".as_ptr(), &mut dev),
            -libc::EINVAL
        );
        assert!(dev.is_null(), "a failed call leaves *out untouched");
        assert_eq!(msmws_device_new_sim(ptr::null(), &mut dev), -libc::EINVAL);
        assert_eq!(
            msmws_device_new_sim(c"a750".as_ptr(), ptr::null_mut()),
            -libc::EINVAL
        );
        assert_eq!(msmws_device_new_from_fd(-1, &mut dev), -libc::EINVAL);
        assert_eq!(msmws_device_new_from_fd(999_999, &mut dev), -libc::EBADF);
    }

    #[test]
    fn syncobjs_and_the_model_wait_only_where_they_apply() {
        let mut dev = ptr::null_mut();
        assert_eq!(msmws_device_new_sim(c"a660".as_ptr(), &mut dev), 0);
        let mut h = 0;
        assert_eq!(msmws_device_syncobj_create(dev, &mut h), 0);
        assert_ne!(h, 0);
        assert_eq!(msmws_device_sim_wait_idle(dev, 0), 0, "nothing queued");
        assert_eq!(msmws_device_syncobj_destroy(dev, h), 0);
        assert_eq!(msmws_device_syncobj_destroy(dev, h), -libc::EINVAL);
        assert_eq!(msmws_device_syncobj_destroy(ptr::null(), 1), -libc::EINVAL);
        msmws_device_destroy(dev);

        // A device over some other file (here a model file, but not made by new_sim) has no model
        // to wait for.
        let sim = crate::sim::Sim::new("a660").unwrap();
        let other = crate::Device::new(Box::new(sim.open().unwrap()), Default::default()).unwrap();
        let dev = Box::into_raw(Box::new(msmws_device {
            inner: std::sync::Arc::new(other),
            sim: None,
            made: Default::default(),
        }));
        assert_eq!(msmws_device_sim_wait_idle(dev, 0), -libc::EOPNOTSUPP);
        msmws_device_destroy(dev);
    }
}
