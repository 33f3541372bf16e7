//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod submit;

use std::ffi::c_void;

use msm_winsys::kernel::Kernel;
use msm_winsys::sim::{Sim, SimFile, SimOptions};
use msm_winsys::Errno;

/// Issues a raw ioctl with `arg`, as a C client would.
pub fn raw<T>(k: &dyn Kernel, request: u64, arg: &mut T) -> Result<(), Errno> {
    // SAFETY: `arg` is a live, writable T; tests only pass uAPI structs whose embedded pointers
    // point at live buffers or are deliberately bogus addresses (which the model reports as EFAULT).
    unsafe { k.ioctl(request, arg as *mut T as *mut c_void) }
}

/// A fresh file on a new model device of `profile`.
pub fn file(profile: &str) -> SimFile {
    Sim::new(profile).unwrap().open().unwrap()
}

/// A fresh file on a new model device with `options`.
pub fn file_with(profile: &str, options: SimOptions) -> SimFile {
    Sim::with_options(profile, options).unwrap().open().unwrap()
}

/// An absolute CLOCK_MONOTONIC time `from_now_ns` from now, as the msm timeouts take it.
pub fn abs_timeout(from_now_ns: i64) -> msm_winsys::uapi::drm_msm_timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let t = now.tv_sec * 1_000_000_000 + now.tv_nsec + from_now_ns;
    msm_winsys::uapi::drm_msm_timespec {
        tv_sec: t / 1_000_000_000,
        tv_nsec: t % 1_000_000_000,
    }
}
