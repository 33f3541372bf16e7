//! KMS helpers for the display tests: raw SETCRTC, framebuffers, events.

use msm_winsys::kernel::Kernel;
use msm_winsys::sim::kms::{panel_mode, CONNECTOR_ID};
use msm_winsys::sim::{Node, Sim, SimFile, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::Errno;

use super::raw;

pub const XR24: u32 = u32::from_le_bytes(*b"XR24");
pub const AR24: u32 = u32::from_le_bytes(*b"AR24");

/// The first primary-node file of a new device with `options`: the device's master.
pub fn master_with(options: SimOptions) -> SimFile {
    let f = Sim::with_options("a750", options)
        .unwrap()
        .open_node(Node::Primary)
        .unwrap();
    assert!(f.is_master());
    f
}

/// SETCRTC of `fb_id` on `crtc_id` with the panel's mode and the connector; `None` turns the
/// CRTC off.
pub fn set_crtc(k: &dyn Kernel, crtc_id: u32, fb_id: Option<u32>) -> Result<(), Errno> {
    let conn = CONNECTOR_ID;
    let mut a = drm_mode_crtc {
        crtc_id,
        ..Default::default()
    };
    if let Some(fb) = fb_id {
        a.fb_id = fb;
        a.mode_valid = 1;
        a.mode = panel_mode();
        a.count_connectors = 1;
        a.set_connectors_ptr = &conn as *const u32 as u64;
    }
    raw(k, DRM_IOCTL_MODE_SETCRTC, &mut a)
}

/// A 1920x1080 XRGB8888 framebuffer command for `handle`.
pub fn fb_cmd(handle: u32, w: u32, h: u32) -> drm_mode_fb_cmd2 {
    drm_mode_fb_cmd2 {
        width: w,
        height: h,
        pixel_format: XR24,
        handles: [handle, 0, 0, 0],
        pitches: [w * 4, 0, 0, 0],
        ..Default::default()
    }
}

pub fn addfb(k: &dyn Kernel, mut c: drm_mode_fb_cmd2) -> Result<u32, Errno> {
    raw(k, DRM_IOCTL_MODE_ADDFB2, &mut c).map(|()| c.fb_id)
}

pub fn rmfb(k: &dyn Kernel, fb: u32) -> Result<(), Errno> {
    let mut a = fb;
    raw(k, DRM_IOCTL_MODE_RMFB, &mut a)
}

/// The framebuffers `k`'s file made (GETRESOURCES lists only the caller's).
pub fn own_fbs(k: &dyn Kernel) -> Vec<u32> {
    let mut ids = [0u32; 64];
    let mut res = drm_mode_card_res {
        fb_id_ptr: ids.as_mut_ptr() as u64,
        count_fbs: ids.len() as u32,
        ..Default::default()
    };
    raw(k, DRM_IOCTL_MODE_GETRESOURCES, &mut res).unwrap();
    ids[..res.count_fbs as usize].to_vec()
}

pub fn flip_with(
    k: &dyn Kernel,
    crtc_id: u32,
    fb_id: u32,
    flags: u32,
    user_data: u64,
) -> Result<(), Errno> {
    let mut a = drm_mode_crtc_page_flip {
        crtc_id,
        fb_id,
        flags,
        user_data,
        ..Default::default()
    };
    raw(k, DRM_IOCTL_MODE_PAGE_FLIP, &mut a)
}

/// Reads every queued event without blocking, decoded as vblank events.
pub fn read_events(f: &SimFile) -> Vec<drm_event_vblank> {
    let mut buf = [0u8; 4096];
    let n = match f.read(&mut buf, true) {
        Ok(n) => n,
        Err(Errno::EAGAIN) => 0,
        Err(e) => panic!("read: {e:?}"),
    };
    buf[..n]
        .chunks(32)
        .map(|c| {
            let mut e = drm_event_vblank::default();
            // SAFETY: drm_event_vblank is 32 bytes of integers; `c` has 32 bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    c.as_ptr(),
                    (&mut e as *mut drm_event_vblank).cast(),
                    32,
                )
            };
            e
        })
        .collect()
}
