//! Generic DRM structs (from drm-sys) and the request codes of the core DRM ioctls this crate
//! issues or the kernel model answers. drm-sys carries the structs but not the request codes.

pub use drm_sys::{
    drm_gem_close, drm_get_cap, drm_mode_crtc_page_flip, drm_mode_fb_cmd2, drm_prime_handle,
    drm_syncobj_array, drm_syncobj_create, drm_syncobj_destroy, drm_syncobj_handle,
    drm_syncobj_timeline_array, drm_syncobj_timeline_wait, drm_syncobj_transfer, drm_syncobj_wait,
    drm_version, DRM_CAP_PRIME, DRM_CAP_SYNCOBJ, DRM_CAP_SYNCOBJ_TIMELINE,
    DRM_CAP_TIMESTAMP_MONOTONIC, DRM_CLOEXEC, DRM_PRIME_CAP_EXPORT, DRM_PRIME_CAP_IMPORT, DRM_RDWR,
    DRM_SYNCOBJ_CREATE_SIGNALED, DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
    DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE, DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
    DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE, DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED,
    DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
    DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
};

use super::ioc::{iow, iowr};

pub const DRM_IOCTL_VERSION: u64 = iowr::<drm_version>(0x00);
pub const DRM_IOCTL_GEM_CLOSE: u64 = iow::<drm_gem_close>(0x09);
pub const DRM_IOCTL_GET_CAP: u64 = iowr::<drm_get_cap>(0x0c);
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: u64 = iowr::<drm_prime_handle>(0x2d);
pub const DRM_IOCTL_PRIME_FD_TO_HANDLE: u64 = iowr::<drm_prime_handle>(0x2e);
pub const DRM_IOCTL_MODE_RMFB: u64 = iowr::<u32>(0xaf);
pub const DRM_IOCTL_MODE_PAGE_FLIP: u64 = iowr::<drm_mode_crtc_page_flip>(0xb0);
pub const DRM_IOCTL_MODE_ADDFB2: u64 = iowr::<drm_mode_fb_cmd2>(0xb8);
pub const DRM_IOCTL_SYNCOBJ_CREATE: u64 = iowr::<drm_syncobj_create>(0xbf);
pub const DRM_IOCTL_SYNCOBJ_DESTROY: u64 = iowr::<drm_syncobj_destroy>(0xc0);
pub const DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD: u64 = iowr::<drm_syncobj_handle>(0xc1);
pub const DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: u64 = iowr::<drm_syncobj_handle>(0xc2);
pub const DRM_IOCTL_SYNCOBJ_WAIT: u64 = iowr::<drm_syncobj_wait>(0xc3);
pub const DRM_IOCTL_SYNCOBJ_RESET: u64 = iowr::<drm_syncobj_array>(0xc4);
pub const DRM_IOCTL_SYNCOBJ_SIGNAL: u64 = iowr::<drm_syncobj_array>(0xc5);
pub const DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT: u64 = iowr::<drm_syncobj_timeline_wait>(0xca);
pub const DRM_IOCTL_SYNCOBJ_QUERY: u64 = iowr::<drm_syncobj_timeline_array>(0xcb);
pub const DRM_IOCTL_SYNCOBJ_TRANSFER: u64 = iowr::<drm_syncobj_transfer>(0xcc);
pub const DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL: u64 = iowr::<drm_syncobj_timeline_array>(0xcd);

// Request codes as the kernel headers spell them on 64-bit Linux (drm.h).
const _: () = assert!(DRM_IOCTL_VERSION == 0xc040_6400);
const _: () = assert!(DRM_IOCTL_GEM_CLOSE == 0x4008_6409);
const _: () = assert!(DRM_IOCTL_GET_CAP == 0xc010_640c);
const _: () = assert!(DRM_IOCTL_PRIME_HANDLE_TO_FD == 0xc00c_642d);
const _: () = assert!(DRM_IOCTL_PRIME_FD_TO_HANDLE == 0xc00c_642e);
const _: () = assert!(DRM_IOCTL_MODE_RMFB == 0xc004_64af);
const _: () = assert!(DRM_IOCTL_MODE_PAGE_FLIP == 0xc018_64b0);
const _: () = assert!(DRM_IOCTL_MODE_ADDFB2 == 0xc068_64b8);
const _: () = assert!(DRM_IOCTL_SYNCOBJ_CREATE == 0xc008_64bf);
const _: () = assert!(DRM_IOCTL_SYNCOBJ_DESTROY == 0xc008_64c0);
// drm_syncobj_handle grew a `point` member (24 bytes) in newer kernels; drm_ioctl accepts the older 16-byte
// form too, zero-extending it. drm-sys has the new layout.
const _: () = assert!(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD == 0xc018_64c1);
const _: () = assert!(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE == 0xc018_64c2);
const _: () = assert!(DRM_IOCTL_SYNCOBJ_WAIT == 0xc028_64c3);
const _: () = assert!(DRM_IOCTL_SYNCOBJ_RESET == 0xc010_64c4);
const _: () = assert!(DRM_IOCTL_SYNCOBJ_SIGNAL == 0xc010_64c5);
const _: () = assert!(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT == 0xc030_64ca);
const _: () = assert!(DRM_IOCTL_SYNCOBJ_QUERY == 0xc018_64cb);
const _: () = assert!(DRM_IOCTL_SYNCOBJ_TRANSFER == 0xc020_64cc);
const _: () = assert!(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL == 0xc018_64cd);
