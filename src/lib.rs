//! msm-winsys: everything Mesa's Adreno drivers (turnip, freedreno) need from the Linux msm kernel
//! driver, with a model of that driver so all of it runs without an Adreno GPU.
//!
//! Layers, top to bottom (nothing calls upward; README.md has the map):
//! - [`ffi`]: the C ABI (`include/msm_winsys.h`): opaque handles, negative-errno results, panic boundary.
//! - [`device`]: probe and mode choice; [`iova`]: the GPU address allocator.
//! - [`kernel`]: the raw-ioctl boundary (`Kernel` trait) and the typed ioctl helpers that pack uAPI structs.
//! - [`uapi`]: the msm uAPI as `#[repr(C)]` structs under their kernel names.
//! - Backends: [`kernel::drm`] (a real `/dev/dri` node) and [`sim`] (the msm kernel model).
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
#[cfg(feature = "cli")]
pub mod scenario;
pub mod sim;
pub mod uapi;

pub use device::{Device, DeviceError, DeviceInfo, ProbeOptions, VmMode};
pub use errno::{Errno, ErrnoError};
