//! Generic DRM structs (from drm-sys) and the request codes of the core DRM ioctls this crate
//! issues or the kernel model answers. drm-sys carries the structs but not the request codes.

pub use drm_sys::{
    drm_auth, drm_event, drm_event_vblank, drm_format_modifier, drm_format_modifier_blob,
    drm_gem_close, drm_get_cap, drm_mode_atomic, drm_mode_card_res, drm_mode_create_blob,
    drm_mode_create_dumb, drm_mode_crtc, drm_mode_crtc_lut, drm_mode_crtc_page_flip,
    drm_mode_destroy_blob, drm_mode_destroy_dumb, drm_mode_fb_cmd, drm_mode_fb_cmd2,
    drm_mode_fb_dirty_cmd, drm_mode_get_blob, drm_mode_get_connector, drm_mode_get_encoder,
    drm_mode_get_plane, drm_mode_get_plane_res, drm_mode_get_property, drm_mode_map_dumb,
    drm_mode_modeinfo, drm_mode_obj_get_properties, drm_mode_obj_set_property,
    drm_mode_property_enum, drm_prime_handle, drm_set_client_cap, drm_syncobj_array,
    drm_syncobj_create, drm_syncobj_destroy, drm_syncobj_handle, drm_syncobj_timeline_array,
    drm_syncobj_timeline_wait, drm_syncobj_transfer, drm_syncobj_wait, drm_unique, drm_version,
    drm_wait_vblank, drm_wait_vblank_reply, drm_wait_vblank_request, DRM_CAP_PRIME,
    DRM_CAP_SYNCOBJ, DRM_CAP_SYNCOBJ_TIMELINE, DRM_CAP_TIMESTAMP_MONOTONIC, DRM_CLOEXEC,
    DRM_PRIME_CAP_EXPORT, DRM_PRIME_CAP_IMPORT, DRM_RDWR, DRM_SYNCOBJ_CREATE_SIGNALED,
    DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE, DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_TIMELINE,
    DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE, DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_TIMELINE,
    DRM_SYNCOBJ_QUERY_FLAGS_LAST_SUBMITTED, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL,
    DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE,
    DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT,
};

use super::ioc::{io, ior, iow, iowr};

pub const DRM_IOCTL_VERSION: u64 = iowr::<drm_version>(0x00);
pub const DRM_IOCTL_GEM_CLOSE: u64 = iow::<drm_gem_close>(0x09);
pub const DRM_IOCTL_GET_UNIQUE: u64 = iowr::<drm_unique>(0x01);
pub const DRM_IOCTL_GET_MAGIC: u64 = ior::<drm_auth>(0x02);
pub const DRM_IOCTL_GET_CAP: u64 = iowr::<drm_get_cap>(0x0c);
pub const DRM_IOCTL_SET_CLIENT_CAP: u64 = iow::<drm_set_client_cap>(0x0d);
pub const DRM_IOCTL_AUTH_MAGIC: u64 = iow::<drm_auth>(0x11);
pub const DRM_IOCTL_SET_MASTER: u64 = io(0x1e);
pub const DRM_IOCTL_DROP_MASTER: u64 = io(0x1f);
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: u64 = iowr::<drm_prime_handle>(0x2d);
pub const DRM_IOCTL_PRIME_FD_TO_HANDLE: u64 = iowr::<drm_prime_handle>(0x2e);
pub const DRM_IOCTL_WAIT_VBLANK: u64 = iowr::<drm_wait_vblank>(0x3a);
pub const DRM_IOCTL_MODE_GETRESOURCES: u64 = iowr::<drm_mode_card_res>(0xa0);
pub const DRM_IOCTL_MODE_GETCRTC: u64 = iowr::<drm_mode_crtc>(0xa1);
pub const DRM_IOCTL_MODE_SETCRTC: u64 = iowr::<drm_mode_crtc>(0xa2);
pub const DRM_IOCTL_MODE_GETENCODER: u64 = iowr::<drm_mode_get_encoder>(0xa6);
pub const DRM_IOCTL_MODE_GETCONNECTOR: u64 = iowr::<drm_mode_get_connector>(0xa7);
pub const DRM_IOCTL_MODE_GETPROPERTY: u64 = iowr::<drm_mode_get_property>(0xaa);
pub const DRM_IOCTL_MODE_GETPROPBLOB: u64 = iowr::<drm_mode_get_blob>(0xac);
pub const DRM_IOCTL_MODE_ADDFB: u64 = iowr::<drm_mode_fb_cmd>(0xae);
pub const DRM_IOCTL_MODE_RMFB: u64 = iowr::<u32>(0xaf);
pub const DRM_IOCTL_MODE_GETGAMMA: u64 = iowr::<drm_mode_crtc_lut>(0xa4);
pub const DRM_IOCTL_MODE_SETGAMMA: u64 = iowr::<drm_mode_crtc_lut>(0xa5);
pub const DRM_IOCTL_MODE_DIRTYFB: u64 = iowr::<drm_mode_fb_dirty_cmd>(0xb1);
pub const DRM_IOCTL_MODE_PAGE_FLIP: u64 = iowr::<drm_mode_crtc_page_flip>(0xb0);
pub const DRM_IOCTL_MODE_CREATE_DUMB: u64 = iowr::<drm_mode_create_dumb>(0xb2);
pub const DRM_IOCTL_MODE_MAP_DUMB: u64 = iowr::<drm_mode_map_dumb>(0xb3);
pub const DRM_IOCTL_MODE_DESTROY_DUMB: u64 = iowr::<drm_mode_destroy_dumb>(0xb4);
pub const DRM_IOCTL_MODE_GETPLANERESOURCES: u64 = iowr::<drm_mode_get_plane_res>(0xb5);
pub const DRM_IOCTL_MODE_GETPLANE: u64 = iowr::<drm_mode_get_plane>(0xb6);
pub const DRM_IOCTL_MODE_ADDFB2: u64 = iowr::<drm_mode_fb_cmd2>(0xb8);
pub const DRM_IOCTL_MODE_OBJ_GETPROPERTIES: u64 = iowr::<drm_mode_obj_get_properties>(0xb9);
pub const DRM_IOCTL_MODE_OBJ_SETPROPERTY: u64 = iowr::<drm_mode_obj_set_property>(0xba);
pub const DRM_IOCTL_MODE_ATOMIC: u64 = iowr::<drm_mode_atomic>(0xbc);
pub const DRM_IOCTL_MODE_CREATEPROPBLOB: u64 = iowr::<drm_mode_create_blob>(0xbd);
pub const DRM_IOCTL_MODE_DESTROYPROPBLOB: u64 = iowr::<drm_mode_destroy_blob>(0xbe);
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
const _: () = assert!(DRM_IOCTL_GET_UNIQUE == 0xc010_6401);
const _: () = assert!(DRM_IOCTL_GET_MAGIC == 0x8004_6402);
const _: () = assert!(DRM_IOCTL_SET_CLIENT_CAP == 0x4010_640d);
const _: () = assert!(DRM_IOCTL_AUTH_MAGIC == 0x4004_6411);
const _: () = assert!(DRM_IOCTL_SET_MASTER == 0x641e);
const _: () = assert!(DRM_IOCTL_DROP_MASTER == 0x641f);
const _: () = assert!(DRM_IOCTL_WAIT_VBLANK == 0xc018_643a);
const _: () = assert!(DRM_IOCTL_MODE_GETRESOURCES == 0xc040_64a0);
const _: () = assert!(DRM_IOCTL_MODE_GETCRTC == 0xc068_64a1);
const _: () = assert!(DRM_IOCTL_MODE_SETCRTC == 0xc068_64a2);
const _: () = assert!(DRM_IOCTL_MODE_GETENCODER == 0xc014_64a6);
const _: () = assert!(DRM_IOCTL_MODE_GETCONNECTOR == 0xc050_64a7);
const _: () = assert!(DRM_IOCTL_MODE_GETPROPERTY == 0xc040_64aa);
const _: () = assert!(DRM_IOCTL_MODE_GETPROPBLOB == 0xc010_64ac);
const _: () = assert!(DRM_IOCTL_MODE_ADDFB == 0xc01c_64ae);
const _: () = assert!(DRM_IOCTL_MODE_CREATE_DUMB == 0xc020_64b2);
const _: () = assert!(DRM_IOCTL_MODE_MAP_DUMB == 0xc010_64b3);
const _: () = assert!(DRM_IOCTL_MODE_DESTROY_DUMB == 0xc004_64b4);
const _: () = assert!(DRM_IOCTL_MODE_GETPLANERESOURCES == 0xc010_64b5);
const _: () = assert!(DRM_IOCTL_MODE_GETPLANE == 0xc020_64b6);
const _: () = assert!(DRM_IOCTL_MODE_OBJ_GETPROPERTIES == 0xc020_64b9);
const _: () = assert!(DRM_IOCTL_MODE_OBJ_SETPROPERTY == 0xc018_64ba);
const _: () = assert!(DRM_IOCTL_MODE_ATOMIC == 0xc038_64bc);
const _: () = assert!(DRM_IOCTL_MODE_CREATEPROPBLOB == 0xc010_64bd);
const _: () = assert!(DRM_IOCTL_MODE_DESTROYPROPBLOB == 0xc004_64be);
const _: () = assert!(DRM_IOCTL_MODE_RMFB == 0xc004_64af);
const _: () = assert!(DRM_IOCTL_MODE_GETGAMMA == 0xc020_64a4);
const _: () = assert!(DRM_IOCTL_MODE_SETGAMMA == 0xc020_64a5);
const _: () = assert!(DRM_IOCTL_MODE_DIRTYFB == 0xc018_64b1);
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
