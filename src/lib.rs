//! msm-winsys: everything Mesa's Adreno drivers (turnip, freedreno) need from the Linux msm kernel
//! driver, with a model of that driver so all of it runs without an Adreno GPU.
//!
//! Layers, top to bottom (nothing calls upward; docs/layering.md has the allowed arrows, which
//! tests/layering.rs enforces):
//! - [`ffi`]: the C ABI (`include/msm_winsys.h`): opaque handles, negative-errno results, panic boundary.
//! - [`backend`]: opens a real node or a model file and probes a [`Device`] on it.
//! - [`device`]: probe and mode choice; [`iova`]: the GPU address allocator; [`bind`], [`bo`],
//!   [`metadata`]: binding, buffers, layout metadata.
//! - [`kernel`]: the raw-ioctl boundary (`Kernel` trait) and the typed ioctl helpers that pack uAPI structs.
//! - [`uapi`]: the msm uAPI as `#[repr(C)]` structs under their kernel names.
//! - Backends: [`kernel::drm`] (a real `/dev/dri` node) and [`sim`] (the msm kernel model).
//! - [`errno`]: errno values and the [`ErrnoError`] trait every error implements.
#![allow(non_snake_case)] // unit suffixes in names: `size_B`, `offset_B`
#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
pub mod bind;
pub mod bo;
pub mod device;
pub mod errno;
pub mod ffi;
pub mod iova;
pub mod kernel;
pub mod metadata;
#[cfg(all(test, shuttle))]
mod model_check;
#[cfg(feature = "cli")]
pub mod scenario;
pub mod sim;
mod sync;
pub mod uapi;

pub use device::{Device, DeviceError, DeviceExtras, DeviceInfo, ProbeOptions, VmMode};
pub use errno::{Errno, ErrnoError};
