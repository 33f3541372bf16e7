//! The kernel ABI: the msm uAPI (`include/uapi/drm/msm_drm.h`, UAPI 1.13) as `#[repr(C)]` structs
//! and constants under their kernel names, plus the generic DRM request codes this crate uses.
//!
//! Owns: layouts only; no behaviour and no locks. Every struct and request code carries a
//! compile-time size/offset assertion, and `tests/uapi_libdrm.rs` checks the pre-VM_BIND structs
//! against Debian libdrm-dev's real `msm_drm.h` with a C compiler.
//!
//! Generic DRM structs (`drm_version`, `drm_gem_close`, `drm_prime_handle`, `drm_syncobj_*`,
//! `drm_get_cap`, `drm_mode_*`) come from drm-rs's `drm-sys` and are re-exported here unchanged.
#![allow(non_camel_case_types)]

mod drm;
mod ioc;
mod msm;
mod sync;

pub use drm::*;
pub use ioc::{ioc_dir, ioc_nr, ioc_size, ioc_type, DRM_COMMAND_BASE, IOC_READ, IOC_WRITE};
pub use msm::*;
pub use sync::*;
