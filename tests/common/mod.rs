//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod kms;
pub mod submit;

use std::ffi::c_void;
use std::os::fd::RawFd;

use msm_winsys::kernel::Kernel;
use msm_winsys::sim::{Sim, SimFile, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::{Errno, VmMode};

/// Issues a raw ioctl with `arg`, as a C client would.
pub fn raw<T>(k: &dyn Kernel, request: u64, arg: &mut T) -> Result<(), Errno> {
    // SAFETY: `arg` is a live, writable T; tests only pass uAPI structs whose embedded pointers
    // point at live buffers or are deliberately bogus addresses (which the model reports as EFAULT).
    unsafe { k.ioctl(request, arg as *mut T as *mut c_void) }
}

/// Each GPU VM mode with the model options that give it: VM_BIND (the default), userspace
/// addresses (UAPI 1.12, no VM_BIND), kernel addresses (no per-process page tables).
pub fn vm_modes() -> [(VmMode, SimOptions); 3] {
    [
        (VmMode::VmBind, SimOptions::default()),
        (
            VmMode::UserspaceIova,
            SimOptions {
                uapi_minor: 12,
                ..Default::default()
            },
        ),
        (
            VmMode::KernelIova,
            SimOptions {
                per_process_pgtables: false,
                ..Default::default()
            },
        ),
    ]
}

/// A fresh file on a new model device of `profile`.
pub fn file(profile: &str) -> SimFile {
    Sim::new(profile).unwrap().open().unwrap()
}

/// A fresh file on a new model device with `options`.
pub fn file_with(profile: &str, options: SimOptions) -> SimFile {
    Sim::with_options(profile, options).unwrap().open().unwrap()
}

/// CLOCK_MONOTONIC now, in ns: the clock the kernel's absolute timeouts use.
pub fn monotonic_ns() -> i64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec * 1_000_000_000 + now.tv_nsec
}

/// An absolute CLOCK_MONOTONIC time `from_now_ns` from now, as the msm timeouts take it.
pub fn abs_timeout(from_now_ns: i64) -> drm_msm_timespec {
    let t = monotonic_ns() + from_now_ns;
    drm_msm_timespec {
        tv_sec: t / 1_000_000_000,
        tv_nsec: t % 1_000_000_000,
    }
}

/// Whether `fd` polls readable right now (a signalled sync file).
pub fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd we own, timeout 0.
    unsafe { libc::poll(&mut p, 1, 0) };
    p.revents & libc::POLLIN != 0
}

/// GEM_NEW through the raw ioctl: the new handle or the errno.
pub fn gem_new(k: &dyn Kernel, size: u64, flags: u32) -> Result<u32, Errno> {
    let mut a = drm_msm_gem_new {
        size,
        flags,
        handle: 0,
    };
    raw(k, DRM_IOCTL_MSM_GEM_NEW, &mut a).map(|()| a.handle)
}

/// A write-combined object of `size` bytes, for tests about something else.
pub fn wc_bo(k: &dyn Kernel, size: u64) -> u32 {
    gem_new(k, size, MSM_BO_WC).unwrap()
}

/// GEM_CLOSE through the raw ioctl.
pub fn gem_close(k: &dyn Kernel, handle: u32) -> Result<(), Errno> {
    raw(
        k,
        DRM_IOCTL_GEM_CLOSE,
        &mut drm_gem_close { handle, pad: 0 },
    )
}

/// SUBMITQUEUE_NEW through the raw ioctl: the queue id or the errno.
pub fn queue_new(k: &dyn Kernel, flags: u32, prio: u32) -> Result<u32, Errno> {
    let mut a = drm_msm_submitqueue { flags, prio, id: 0 };
    raw(k, DRM_IOCTL_MSM_SUBMITQUEUE_NEW, &mut a).map(|()| a.id)
}
