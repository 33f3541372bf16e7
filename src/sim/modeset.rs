//! Commits to the model's display pipeline: SETCRTC, PAGE_FLIP, ATOMIC, OBJ_SETPROPERTY and the
//! kernel's own commits (a framebuffer removed while on a plane, the fbdev console restored) and
//! the atomic check (drivers/gpu/drm/drm_crtc.c, drm_plane.c `drm_mode_page_flip_ioctl`,
//! drm_atomic_uapi.c, drm_atomic.c `drm_atomic_check_only`, drm_atomic_helper.c,
//! drm_mode_object.c, drm_framebuffer.c `drm_framebuffer_remove`). The vblank that completes a
//! commit is vblank.rs's.
//!
//! Owns: the committed [`KmsState`] and the pending commit (both in the display state). Locks:
//! the display state's (see display.rs); fences are signalled and in-fences waited with it
//! released.
//!
//! A commit is checked in the kernel's order (planes, CRTC, routing and modeset), then: TEST_ONLY
//! stops; a nonblocking commit while the previous one has not reached its vblank is EBUSY; a
//! blocking one waits for it. Planes get their new framebuffers pinned before the old ones are
//! unpinned (prepare_fb / cleanup_fb; the model unpins at once rather than after the vblank, so
//! counters do not depend on timing). The commit then completes at the next vblank, when its
//! flip-complete event is queued to the file and its out-fence signals; a blocking commit
//! returns after that. A commit that leaves the CRTC off completes at once.

use std::os::fd::IntoRawFd;
use std::sync::{Arc, MutexGuard, Weak};
use std::time::Instant;

use super::display::{self, Framebuffer, State};
use super::event::EventQueue;
use super::fence::Fence;
use super::kms::{self, need_kms, prop, Object};
use super::vblank::{Shared, VblankClock, EVENT_B};
use super::{prime, user, SimDevice, SimFile};
use crate::uapi::*;
use crate::Errno;

pub use super::display::CRTC_ID;

pub const DRM_MODE_ATOMIC_TEST_ONLY: u32 = 0x0100;
pub const DRM_MODE_ATOMIC_NONBLOCK: u32 = 0x0200;
pub const DRM_MODE_ATOMIC_ALLOW_MODESET: u32 = 0x0400;
const DRM_MODE_PAGE_FLIP_EVENT: u32 = 0x01;
const DRM_MODE_PAGE_FLIP_ASYNC: u32 = 0x02;
const DRM_MODE_ATOMIC_FLAGS: u32 = DRM_MODE_PAGE_FLIP_EVENT
    | DRM_MODE_PAGE_FLIP_ASYNC
    | DRM_MODE_ATOMIC_TEST_ONLY
    | DRM_MODE_ATOMIC_NONBLOCK
    | DRM_MODE_ATOMIC_ALLOW_MODESET;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlaneState {
    pub fb: Option<u32>,
    /// On the CRTC.
    pub crtc: bool,
    pub crtc_x: i32,
    pub crtc_y: i32,
    pub crtc_w: u32,
    pub crtc_h: u32,
    /// 16.16 fixed point.
    pub src_x: u32,
    pub src_y: u32,
    pub src_w: u32,
    pub src_h: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrtcState {
    pub active: bool,
    /// The mode; `Some` is the kernel's `enable`.
    pub mode: Option<drm_mode_modeinfo>,
    /// The MODE_ID blob (0: none).
    pub mode_blob: u32,
    pub vrr: bool,
}

/// The committed (or proposed) state of the pipeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KmsState {
    pub crtc: CrtcState,
    /// Primary, overlay.
    pub planes: [PlaneState; 2],
    /// The connector is routed to the CRTC.
    pub connector_crtc: bool,
}

impl KmsState {
    /// The CRTC lit with `fb` full screen in `mode`, panned to (x, y).
    pub fn lit(fb: u32, mode: drm_mode_modeinfo, x: u32, y: u32) -> KmsState {
        let (w, h) = (mode.hdisplay as u32, mode.vdisplay as u32);
        KmsState {
            crtc: CrtcState {
                active: true,
                mode: Some(mode),
                mode_blob: 0,
                vrr: false,
            },
            planes: [
                PlaneState {
                    fb: Some(fb),
                    crtc: true,
                    crtc_x: 0,
                    crtc_y: 0,
                    crtc_w: w,
                    crtc_h: h,
                    src_x: x << 16,
                    src_y: y << 16,
                    src_w: w << 16,
                    src_h: h << 16,
                },
                PlaneState::default(),
            ],
            connector_crtc: true,
        }
    }
}

/// A commit waiting for its vblank.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) queued_at: Instant,
    /// The file's queue and `user_data` of its flip-complete event.
    pub(super) event: Option<(Weak<EventQueue>, u64)>,
    pub(super) out_fence: Option<Arc<Fence>>,
}

/// What a commit changes and how it is made.
#[derive(Debug, Default)]
struct Commit {
    new: KmsState,
    planes: [bool; 2],
    /// The CRTC is part of the commit's state.
    crtc: bool,
    connector: bool,
    allow_modeset: bool,
    test_only: bool,
    nonblock: bool,
    event: Option<(Arc<EventQueue>, u64)>,
    /// OUT_FENCE_PTR: where to write the out-fence fd.
    out_fence_ptr: u64,
    flip: bool,
    /// The file whose ioctl made it (0: the kernel), for out-fence fd ownership.
    file: u64,
}

impl Commit {
    fn on(d: &State) -> Commit {
        Commit {
            new: d.kms.clone(),
            ..Default::default()
        }
    }

    /// Puts plane `i` in the commit; a plane on (or leaving) the CRTC brings the CRTC along
    /// (`drm_atomic_set_crtc_for_plane` gets the CRTC's state).
    fn touch_plane(&mut self, old: &KmsState, i: usize) {
        self.planes[i] = true;
        if old.planes[i].crtc || self.new.planes[i].crtc {
            self.crtc = true;
        }
    }
}

/// `drm_mode_convert_umode` + `drm_mode_validate_basic`: ERANGE for a clock past INT_MAX, EINVAL
/// for bad flags, a bad aspect ratio or impossible timings.
fn check_umode(m: &drm_mode_modeinfo) -> Result<(), Errno> {
    if m.clock > i32::MAX as u32 || m.vrefresh > i32::MAX as u32 {
        return Err(Errno::ERANGE);
    }
    const PIC_AR_MASK: u32 = 0xf << 19;
    const FLAG_3D_MASK: u32 = 0x1f << 14;
    const FLAG_ALL: u32 = 0x3ff | 0x3000 | FLAG_3D_MASK;
    if (m.flags & PIC_AR_MASK) >> 19 > 4 {
        return Err(Errno::EINVAL);
    }
    let flags = m.flags & !PIC_AR_MASK;
    if flags & !FLAG_ALL != 0 || flags & FLAG_3D_MASK > 8 << 14 || m.clock == 0 {
        return Err(Errno::EINVAL);
    }
    let h_ok = m.hdisplay != 0
        && m.hsync_start >= m.hdisplay
        && m.hsync_end >= m.hsync_start
        && m.htotal >= m.hsync_end;
    let v_ok = m.vdisplay != 0
        && m.vsync_start >= m.vdisplay
        && m.vsync_end >= m.vsync_start
        && m.vtotal >= m.vsync_end;
    if !h_ok || !v_ok {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Whether the panel can show `m`: a DSI panel drives only its own timings.
fn panel_takes(m: &drm_mode_modeinfo) -> bool {
    let p = kms::panel_mode();
    (
        m.clock,
        m.hdisplay,
        m.hsync_start,
        m.hsync_end,
        m.htotal,
        m.vdisplay,
        m.vsync_start,
        m.vsync_end,
        m.vtotal,
    ) == (
        p.clock,
        p.hdisplay,
        p.hsync_start,
        p.hsync_end,
        p.htotal,
        p.vdisplay,
        p.vsync_start,
        p.vsync_end,
        p.vtotal,
    )
}

/// `drm_atomic_check_only` with msm's `drm_atomic_helper_check`, as far as the model goes.
fn check(d: &State, c: &Commit) -> Result<(), Errno> {
    let old = &d.kms;
    let new = &c.new;
    // drm_atomic_plane_check
    for i in (0..2).filter(|&i| c.planes[i]) {
        let p = &new.planes[i];
        if p.crtc != p.fb.is_some() {
            return Err(Errno::EINVAL);
        }
        let Some(fb) = p.fb else { continue };
        let (w, h, fourcc, modifier) = display::fb_info(d, fb).ok_or(Errno::EINVAL)?;
        if !kms::plane_takes(fourcc, modifier) {
            return Err(Errno::EINVAL);
        }
        if p.crtc_w > i32::MAX as u32
            || p.crtc_x > i32::MAX - p.crtc_w as i32
            || p.crtc_h > i32::MAX as u32
            || p.crtc_y > i32::MAX - p.crtc_h as i32
        {
            return Err(Errno::ERANGE);
        }
        let (fw, fh) = ((w as u64) << 16, (h as u64) << 16);
        let (sx, sy, sw, sh) = (
            p.src_x as u64,
            p.src_y as u64,
            p.src_w as u64,
            p.src_h as u64,
        );
        if sw > fw || sx > fw - sw || sh > fh || sy > fh - sh {
            return Err(Errno::ENOSPC);
        }
    }
    if c.crtc {
        // drm_atomic_crtc_check
        if new.crtc.active && new.crtc.mode.is_none() {
            return Err(Errno::EINVAL);
        }
        // An out-fence is an event the file does not see (prepare_signaling).
        let event = c.event.is_some() || c.out_fence_ptr != 0;
        if event && !new.crtc.active && !old.crtc.active {
            return Err(Errno::EINVAL);
        }
    }
    // drm_atomic_helper_check_modeset: the CRTC is enabled exactly when a connector drives it,
    // and the DSI bridge takes only the panel's mode.
    if (c.crtc || c.connector) && new.crtc.mode.is_some() != new.connector_crtc {
        return Err(Errno::EINVAL);
    }
    if let Some(m) = &new.crtc.mode {
        if !panel_takes(m) {
            return Err(Errno::EINVAL);
        }
    }
    let needs_modeset = new.crtc.mode != old.crtc.mode
        || new.crtc.active != old.crtc.active
        || new.connector_crtc != old.connector_crtc;
    if !c.allow_modeset && needs_modeset {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Checks and, unless TEST_ONLY, applies `c` (see the module documentation); fences complete
/// once the display lock is released.
fn commit(shared: &Arc<Shared>, d: MutexGuard<'_, State>, c: Commit) -> Result<(), Errno> {
    let mut fences = Vec::new();
    let r = commit_locked(shared, d, c, &mut fences);
    for f in fences {
        f.signal();
    }
    r
}

fn commit_locked(
    shared: &Arc<Shared>,
    mut d: MutexGuard<'_, State>,
    mut c: Commit,
    fences: &mut Vec<Arc<Fence>>,
) -> Result<(), Errno> {
    // prepare_signaling: an event needs a CRTC in the commit, and room in the file's queue.
    if let Some((q, _)) = &c.event {
        if !c.crtc {
            return Err(Errno::EINVAL);
        }
        q.reserve(EVENT_B)?;
    }
    let unreserve = |c: &Commit| {
        if let Some((q, _)) = &c.event {
            q.unreserve(EVENT_B);
        }
    };
    if let Err(e) = check(&d, &c) {
        unreserve(&c);
        return Err(e);
    }
    if c.test_only {
        return Ok(());
    }
    // drm_atomic_helper_setup_commit's stall check.
    if c.crtc && d.pending.is_some() {
        if c.nonblock {
            unreserve(&c);
            return Err(Errno::EBUSY);
        }
        d = shared.wait_idle(d, fences);
    }
    // prepare_fb: pin every new framebuffer before anything changes.
    let mut pinned = Vec::new();
    for i in (0..2).filter(|&i| c.planes[i]) {
        if let Some(fb) = c.new.planes[i].fb {
            if let Err(e) = d.pin(fb) {
                for fb in pinned {
                    d.unpin(fb);
                }
                unreserve(&c);
                return Err(e);
            }
            pinned.push(fb);
        }
    }
    let out_fence = if c.out_fence_ptr != 0 {
        // drm_crtc_create_fence: the driver's name, the CRTC's "CRTC:<id>-<name>" timeline.
        let fence = Fence::named(
            super::fence::new_context(),
            1,
            "msm",
            std::sync::Arc::from(format!("CRTC:{}-crtc-0", super::display::CRTC_ID)),
        );
        match super::sync_file::export(fence.clone(), c.file) {
            Ok(fd) => {
                let raw = fd.into_raw_fd();
                if let Err(e) = user::write(c.out_fence_ptr, &raw) {
                    // SAFETY: `raw` came from into_raw_fd just above and was handed to nobody.
                    drop(unsafe {
                        <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw)
                    });
                    for fb in pinned {
                        d.unpin(fb);
                    }
                    unreserve(&c);
                    return Err(e);
                }
                Some(fence)
            }
            Err(e) => {
                for fb in pinned {
                    d.unpin(fb);
                }
                unreserve(&c);
                return Err(e);
            }
        }
    } else {
        None
    };
    let old = std::mem::replace(&mut d.kms, c.new.clone());
    if old.crtc.active && !c.new.crtc.active {
        shared.crtc_off(&mut d);
    }
    // cleanup_fb: unpin what the planes showed before.
    for i in (0..2).filter(|&i| c.planes[i]) {
        if let Some(fb) = old.planes[i].fb {
            d.unpin(fb);
        }
    }
    d.sweep_blobs();
    if c.flip {
        d.stats.flips += 1;
    } else {
        d.stats.commits += 1;
    }
    if c.crtc || out_fence.is_some() {
        d.pending = Some(Pending {
            queued_at: Instant::now(),
            event: c.event.take().map(|(q, ud)| (Arc::downgrade(&q), ud)),
            out_fence,
        });
        // A CRTC that is off has no vblank to wait for; Immediate completes everything now.
        if !c.new.crtc.active || shared.clock == VblankClock::Immediate {
            fences.extend(shared.fire(&mut d));
        } else if c.nonblock {
            shared.start_worker();
            shared.changed.notify_all();
        } else {
            d = shared.wait_idle(d, fences);
        }
    }
    d.sweep();
    if let Some(fb) = c.new.planes[0]
        .fb
        .filter(|&fb| c.planes[0] && old.planes[0].fb != Some(fb))
    {
        d.scanned_out(fb);
    }
    Ok(())
}

/// `drm_framebuffer_remove`: takes framebuffer `fb_id` off every plane showing it (the CRTC goes
/// off with its primary plane) in a blocking kernel commit, then removes it.
pub(super) fn remove_fb(dev: &SimDevice, fb_id: u32) -> Option<Framebuffer> {
    let shared = &dev.display.shared;
    let d = shared.lock();
    let mut c = Commit::on(&d);
    c.allow_modeset = true;
    for i in 0..2 {
        if d.kms.planes[i].fb == Some(fb_id) {
            if i == 0 && d.kms.planes[0].crtc {
                c.new.crtc = CrtcState::default();
                c.new.connector_crtc = false;
                c.connector = true;
            }
            c.new.planes[i] = PlaneState::default();
            c.touch_plane(&d.kms, i);
        }
    }
    let mut fences = Vec::new();
    let mut d = if c.planes.contains(&true) {
        // A kernel commit disabling planes cannot fail a check; an unpin cannot fail.
        let _ = commit_locked(shared, d, c, &mut fences);
        shared.lock()
    } else {
        d
    };
    let fb = d.fbs.remove(&fb_id);
    d.sweep_blobs();
    d.sweep();
    drop(d);
    for f in fences {
        f.signal();
    }
    fb
}

/// `drm_lastclose` -> fbdev restore: the console framebuffer back on the CRTC, the overlay off.
pub(super) fn restore_console(dev: &SimDevice) {
    let shared = &dev.display.shared;
    let d = shared.lock();
    let Some(console) = d.console() else { return };
    let mut c = Commit::on(&d);
    c.new = KmsState::lit(console, kms::panel_mode(), 0, 0);
    c.new.crtc.mode_blob = d.kms.crtc.mode_blob;
    c.new.crtc.vrr = d.kms.crtc.vrr;
    // Nothing changed since the console was last shown: no commit (and no vblank to wait for).
    if c.new == d.kms && d.blobs.contains_key(&d.kms.crtc.mode_blob) {
        return;
    }
    c.allow_modeset = true;
    c.crtc = true;
    c.connector = true;
    c.planes = [true, true];
    let mut fences = Vec::new();
    let mut d = {
        let r = commit_locked(shared, d, c, &mut fences);
        debug_assert!(r.is_ok(), "restoring the console: {r:?}");
        shared.lock()
    };
    if d.kms.crtc.mode_blob == 0 || !d.blobs.contains_key(&d.kms.crtc.mode_blob) {
        let id = d.alloc_id();
        d.blobs.insert(id, mode_blob(&kms::panel_mode()));
        d.kms.crtc.mode_blob = id;
    }
    drop(d);
    for f in fences {
        f.signal();
    }
}

fn mode_blob(m: &drm_mode_modeinfo) -> display::Blob {
    display::Blob {
        owner: None,
        permanent: false,
        data: user::bytes_of(m).to_vec(),
    }
}

/// SETCRTC (`drm_mode_setcrtc` -> `drm_atomic_helper_set_config`), a blocking commit.
pub(super) fn set_crtc(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    super::dispatch::typed(kdata, |r: &mut drm_mode_crtc| {
        need_kms(file)?;
        let aspect_ok = file.ctx().caps.aspect_ratio;
        if r.x & 0xffff_0000 != 0 || r.y & 0xffff_0000 != 0 {
            return Err(Errno::ERANGE);
        }
        prime::collect_garbage();
        let shared = &file.dev.display.shared;
        let mut d = shared.lock();
        if kms::find(&d, r.crtc_id, kms::DRM_MODE_OBJECT_CRTC).is_none() {
            return Err(Errno::ENOENT);
        }
        let mut fb = None;
        let mut mode = None;
        if r.mode_valid != 0 {
            let id = if r.fb_id == u32::MAX {
                d.kms.planes[0].fb.ok_or(Errno::EINVAL)?
            } else {
                r.fb_id
            };
            let (w, h, fourcc, modifier) = display::fb_info(&d, id).ok_or(Errno::ENOENT)?;
            if !aspect_ok && r.mode.flags & (0xf << 19) != 0 {
                return Err(Errno::EINVAL);
            }
            check_umode(&r.mode)?;
            if !kms::plane_takes(fourcc, modifier) {
                return Err(Errno::EINVAL);
            }
            // drm_crtc_check_viewport
            let (hd, vd) = (r.mode.hdisplay as u64, r.mode.vdisplay as u64);
            if hd > w as u64
                || r.x as u64 > w as u64 - hd
                || vd > h as u64
                || r.y as u64 > h as u64 - vd
            {
                return Err(Errno::ENOSPC);
            }
            fb = Some(id);
            mode = Some(r.mode);
        }
        if r.count_connectors == 0 && mode.is_some() {
            return Err(Errno::EINVAL);
        }
        if r.count_connectors > 0 && (mode.is_none() || fb.is_none()) {
            return Err(Errno::EINVAL);
        }
        if r.count_connectors > 1 {
            return Err(Errno::EINVAL);
        }
        if r.count_connectors == 1 {
            let id: u32 = user::read(r.set_connectors_ptr)?;
            if kms::find(&d, id, kms::DRM_MODE_OBJECT_CONNECTOR).is_none() {
                return Err(Errno::ENOENT);
            }
        }
        let mut c = Commit::on(&d);
        c.allow_modeset = true;
        c.crtc = true;
        c.connector = true;
        c.planes[0] = true;
        match (fb, mode) {
            (Some(fb), Some(mut m)) => {
                m.flags &= !(0xf << 19);
                let blob = if d.kms.crtc.mode == Some(m) {
                    d.kms.crtc.mode_blob
                } else {
                    let id = d.alloc_id();
                    d.blobs.insert(id, mode_blob(&m));
                    id
                };
                c.new = KmsState::lit(fb, m, r.x, r.y);
                c.new.planes[1] = d.kms.planes[1].clone();
                c.new.crtc.mode_blob = blob;
                c.new.crtc.vrr = d.kms.crtc.vrr;
            }
            _ => {
                c.new.crtc = CrtcState {
                    vrr: d.kms.crtc.vrr,
                    ..Default::default()
                };
                c.new.planes[0] = PlaneState::default();
                c.new.connector_crtc = false;
            }
        }
        c.file = file.id;
        let mut fences = Vec::new();
        let r = commit_locked(shared, d, c, &mut fences);
        d = shared.lock();
        d.sweep_blobs();
        drop(d);
        for f in fences {
            f.signal();
        }
        r
    })
}

/// MODE_PAGE_FLIP (`drm_mode_page_flip_ioctl` -> `drm_atomic_helper_page_flip`), nonblocking:
/// EBUSY while the previous commit has not reached its vblank.
pub(super) fn page_flip(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    super::dispatch::typed(kdata, |a: &mut drm_mode_crtc_page_flip| {
        use drm_sys::{DRM_MODE_PAGE_FLIP_FLAGS, DRM_MODE_PAGE_FLIP_TARGET};
        need_kms(file)?;
        if a.flags & !DRM_MODE_PAGE_FLIP_FLAGS != 0 {
            return Err(Errno::EINVAL);
        }
        // `reserved` is page_flip_target's `sequence`: only meaningful with a TARGET flag.
        if a.reserved != 0 && a.flags & DRM_MODE_PAGE_FLIP_TARGET == 0 {
            return Err(Errno::EINVAL);
        }
        if a.flags & DRM_MODE_PAGE_FLIP_TARGET == DRM_MODE_PAGE_FLIP_TARGET {
            return Err(Errno::EINVAL);
        }
        // No async flips (mode_config.async_page_flip is false).
        if a.flags & DRM_MODE_PAGE_FLIP_ASYNC != 0 {
            return Err(Errno::EINVAL);
        }
        let events = file.events.clone();
        prime::collect_garbage();
        let shared = &file.dev.display.shared;
        let d = shared.lock();
        if kms::find(&d, a.crtc_id, kms::DRM_MODE_OBJECT_CRTC).is_none() {
            return Err(Errno::ENOENT);
        }
        // msm's CRTC has no page_flip_target.
        if a.flags & DRM_MODE_PAGE_FLIP_TARGET != 0 {
            return Err(Errno::EINVAL);
        }
        let primary = &d.kms.planes[0];
        let Some(old_fb) = primary.fb else {
            return Err(Errno::EBUSY);
        };
        let (w, h, fourcc, _) = display::fb_info(&d, a.fb_id).ok_or(Errno::ENOENT)?;
        // drm_crtc_check_viewport against the plane's position and the CRTC's mode.
        if let Some(m) = &d.kms.crtc.mode {
            let (x, y) = (primary.src_x as u64 >> 16, primary.src_y as u64 >> 16);
            let (hd, vd) = (m.hdisplay as u64, m.vdisplay as u64);
            if hd > w as u64 || x > w as u64 - hd || vd > h as u64 || y > h as u64 - vd {
                return Err(Errno::ENOSPC);
            }
        }
        let (_, _, old_fourcc, _) = display::fb_info(&d, old_fb).ok_or(Errno::EBUSY)?;
        if old_fourcc != fourcc {
            return Err(Errno::EINVAL);
        }
        let mut c = Commit::on(&d);
        c.new.planes[0].fb = Some(a.fb_id);
        c.touch_plane(&d.kms, 0);
        c.crtc = true;
        c.nonblock = true;
        c.flip = true;
        c.allow_modeset = false;
        c.file = file.id;
        if a.flags & DRM_MODE_PAGE_FLIP_EVENT != 0 {
            c.event = Some((events, a.user_data));
        }
        commit(shared, d, c)
    })
}

/// Applies one property to the commit (`drm_atomic_set_property`).
fn set_property(d: &State, c: &mut Commit, obj: Object, prop_id: u32, v: u64) -> Result<(), Errno> {
    let def = kms::prop_def(prop_id).ok_or(Errno::ENOENT)?;
    // drm_property_change_valid_get
    if !def.value_ok(v) {
        return Err(Errno::EINVAL);
    }
    match prop_id {
        prop::FB_ID if v != 0 && display::fb_info(d, v as u32).is_none() => {
            return Err(Errno::EINVAL)
        }
        prop::CRTC_ID if v != 0 && v != CRTC_ID as u64 => return Err(Errno::EINVAL),
        prop::MODE_ID if v != 0 && !d.blobs.contains_key(&(v as u32)) => return Err(Errno::EINVAL),
        _ => {}
    }
    let old = d.kms.clone();
    match obj {
        Object::Connector => {
            c.connector = true;
            // drm_atomic_connector_set_property: DPMS only goes through the legacy path;
            // link-status is taken but only the hardware ever makes it Bad.
            if prop_id == prop::DPMS {
                return Err(Errno::EINVAL);
            }
            if prop_id == prop::CRTC_ID {
                if old.connector_crtc || v != 0 {
                    c.crtc = true;
                }
                c.new.connector_crtc = v != 0;
            }
        }
        Object::Crtc => {
            c.crtc = true;
            match prop_id {
                prop::ACTIVE => c.new.crtc.active = v != 0,
                prop::MODE_ID => {
                    // drm_atomic_set_mode_prop_for_crtc
                    if v == 0 {
                        c.new.crtc.mode = None;
                        c.new.crtc.mode_blob = 0;
                    } else if v as u32 != c.new.crtc.mode_blob {
                        let data = &d.blobs[&(v as u32)].data;
                        if data.len() != std::mem::size_of::<drm_mode_modeinfo>() {
                            return Err(Errno::EINVAL);
                        }
                        let m: drm_mode_modeinfo = user::from_bytes(data);
                        check_umode(&m)?;
                        let mut m = m;
                        m.flags &= !(0xf << 19);
                        c.new.crtc.mode = Some(m);
                        c.new.crtc.mode_blob = v as u32;
                    }
                }
                prop::VRR_ENABLED => c.new.crtc.vrr = v != 0,
                prop::OUT_FENCE_PTR => {
                    if v != 0 {
                        user::write(v, &-1i32)?;
                    }
                    c.out_fence_ptr = v;
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        Object::Plane(i) => {
            let p = &mut c.new.planes[i];
            match prop_id {
                prop::FB_ID => p.fb = (v != 0).then_some(v as u32),
                prop::CRTC_ID => p.crtc = v != 0,
                prop::IN_FENCE_FD => {
                    // Waited for before the commit (see `atomic`); here only validated.
                    if v as i64 != -1 && super::sync_file::import(v as i32).is_none() {
                        return Err(Errno::EINVAL);
                    }
                }
                prop::CRTC_X => p.crtc_x = v as i64 as i32,
                prop::CRTC_Y => p.crtc_y = v as i64 as i32,
                prop::CRTC_W => p.crtc_w = v as u32,
                prop::CRTC_H => p.crtc_h = v as u32,
                prop::SRC_X => p.src_x = v as u32,
                prop::SRC_Y => p.src_y = v as u32,
                prop::SRC_W => p.src_w = v as u32,
                prop::SRC_H => p.src_h = v as u32,
                _ => return Err(Errno::EINVAL),
            }
            c.touch_plane(&old, i);
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(())
}

/// The in-fences an ATOMIC request names (IN_FENCE_FD values other than -1), as far as its
/// arrays can be read; errors are left to the real walk.
fn in_fences(a: &drm_mode_atomic) -> Vec<i32> {
    let mut fds = Vec::new();
    let mut k = 0u64;
    for i in 0..a.count_objs as u64 {
        let Ok(n) = user::read::<u32>(a.count_props_ptr + 4 * i) else {
            break;
        };
        for _ in 0..n {
            let (Ok(p), Ok(v)) = (
                user::read::<u32>(a.props_ptr + 4 * k),
                user::read::<u64>(a.prop_values_ptr + 8 * k),
            ) else {
                return fds;
            };
            if p == prop::IN_FENCE_FD && v as i64 != -1 {
                fds.push(v as i32);
            }
            k += 1;
        }
    }
    fds
}

/// The kernel's loop over an ATOMIC request: object by object, reading each id, count, property
/// and value from user memory as it goes (EFAULT where that fails), ENOENT for an unknown object,
/// one without properties or a property it does not have, then the property's own checks.
fn apply_request(d: &State, c: &mut Commit, a: &drm_mode_atomic) -> Result<(), Errno> {
    let mut k = 0u64;
    for i in 0..a.count_objs as u64 {
        let obj_id: u32 = user::read(a.objs_ptr + 4 * i)?;
        let obj = kms::find(d, obj_id, kms::DRM_MODE_OBJECT_ANY).ok_or(Errno::ENOENT)?;
        let attached = obj.props().ok_or(Errno::ENOENT)?;
        let n: u32 = user::read(a.count_props_ptr + 4 * i)?;
        for _ in 0..n {
            let p: u32 = user::read(a.props_ptr + 4 * k)?;
            if !attached.contains(&p) {
                return Err(Errno::ENOENT);
            }
            let v: u64 = user::read(a.prop_values_ptr + 8 * k)?;
            set_property(d, c, obj, p, v)?;
            k += 1;
        }
    }
    Ok(())
}

/// ATOMIC (`drm_mode_atomic_ioctl`).
///
/// IN_FENCE_FD fences are waited for before the commit is made, in the ioctl, rather than by
/// the commit worker; a NONBLOCK commit with an unsignalled in-fence therefore blocks.
pub(super) fn atomic(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    super::dispatch::typed(kdata, |a: &mut drm_mode_atomic| {
        need_kms(file)?;
        if !file.ctx().caps.atomic {
            return Err(Errno::EINVAL);
        }
        if a.flags & !DRM_MODE_ATOMIC_FLAGS != 0 || a.reserved != 0 {
            return Err(Errno::EINVAL);
        }
        if a.flags & DRM_MODE_PAGE_FLIP_ASYNC != 0 {
            return Err(Errno::EINVAL);
        }
        if a.flags & DRM_MODE_ATOMIC_TEST_ONLY != 0 && a.flags & DRM_MODE_PAGE_FLIP_EVENT != 0 {
            return Err(Errno::EINVAL);
        }
        // In-fences first, with no lock held (see above).
        if a.flags & DRM_MODE_ATOMIC_TEST_ONLY == 0 {
            for fd in in_fences(a) {
                if let Some(f) = super::sync_file::import(fd) {
                    f.wait(None)?;
                }
            }
        }
        prime::collect_garbage();
        let shared = &file.dev.display.shared;
        let d = shared.lock();
        let mut c = Commit::on(&d);
        apply_request(&d, &mut c, a)?;
        c.allow_modeset = a.flags & DRM_MODE_ATOMIC_ALLOW_MODESET != 0;
        c.test_only = a.flags & DRM_MODE_ATOMIC_TEST_ONLY != 0;
        c.nonblock = a.flags & DRM_MODE_ATOMIC_NONBLOCK != 0;
        c.file = file.id;
        if c.test_only {
            c.out_fence_ptr = 0;
        }
        if a.flags & DRM_MODE_PAGE_FLIP_EVENT != 0 {
            c.event = Some((file.events.clone(), a.user_data));
        }
        commit(shared, d, c)
    })
}

/// OBJ_SETPROPERTY (`drm_mode_obj_set_property_ioctl` -> `set_property_atomic`): a blocking
/// commit of one property, modesets allowed. DPMS turns the connector's CRTC on or off.
pub(super) fn obj_set_property(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    super::dispatch::typed(kdata, |a: &mut drm_mode_obj_set_property| {
        need_kms(file)?;
        let shared = &file.dev.display.shared;
        let d = shared.lock();
        let obj = kms::find(&d, a.obj_id, a.obj_type).ok_or(Errno::ENOENT)?;
        let attached = obj.props().ok_or(Errno::EINVAL)?;
        if !attached.contains(&a.prop_id) {
            return Err(Errno::EINVAL);
        }
        let mut c = Commit::on(&d);
        c.allow_modeset = true;
        c.file = file.id;
        if a.prop_id == prop::DPMS {
            // drm_atomic_connector_commit_dpms
            if !kms::prop_def(prop::DPMS).expect("exists").value_ok(a.value) {
                return Err(Errno::EINVAL);
            }
            if d.kms.connector_crtc {
                c.crtc = true;
                c.new.crtc.active = a.value == 0;
            }
        } else {
            set_property(&d, &mut c, obj, a.prop_id, a.value)?;
        }
        commit(shared, d, c)
    })
}
