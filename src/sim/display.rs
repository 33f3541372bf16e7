//! The display (KMS) side of the model: framebuffers (MODE_ADDFB2 / MODE_RMFB), one CRTC flipped
//! with MODE_PAGE_FLIP, the display engine's VM and the `vma_ref` rule that decides when a
//! buffer's display mapping is torn down (spec/kernel.md "Display (KMS) VM and scanout buffers").
//!
//! Owns: the device's framebuffers, the CRTC's current framebuffer and mode, the display VMAs and
//! their counters ([`DisplayStats`]). Locks: `Display::state`, taken after `SimFile::ctx` and
//! before `GemObject::state` (and so before the PRIME registry, read under the object lock).
//! Framebuffers removed under it are dropped after it is released.
//!
//! `vma_ref` of an object = its open userspace GEM handles (all files) + 1 while a dma-buf this
//! device exported from it is alive + its scanout pins. With the fix (`SimOptions::
//! display_vma_ref_fix`, the default) the display VMA made by the first pin stays until
//! `vma_ref` drops to 0; before the fix every unpin tears it down. Each teardown costs a TLB
//! invalidation, modelled as 5 ms for a 1080p XRGB8888 buffer, proportional to size.
//!
//! When the last fd of a dma-buf is closed the model only learns it from `/proc/self/fd`: every
//! display ioctl (ADDFB2, RMFB, PAGE_FLIP) first forgets released dma-bufs (`prime::
//! collect_garbage`), then tears down the display VMAs whose `vma_ref` is 0. So a closed dma-buf
//! fd is noticed at the next display ioctl, deterministically. GEM_CLOSE and file close are
//! noticed at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::dispatch::typed;
use super::gem::{GemObject, Madv};
use super::{prime, SimDevice, SimFile};
use crate::uapi::*;
use crate::Errno;

/// The model's one CRTC (DRM mode object ids are small integers shared by all object kinds).
pub const CRTC_ID: u32 = 0x31;
/// Framebuffer ids are the lowest free id from here (so they never collide with the CRTC's).
const FB_ID_BASE: u32 = 0x40;
/// `mode_config.max_width` / `max_height` (a model choice).
pub const MAX_FB_DIMENSION: u32 = 16384;
/// Bytes of a 1920x1080 XRGB8888 framebuffer: its teardown is modelled as 5 ms of TLB invalidation.
pub const BYTES_1080P: u64 = 1920 * 1080 * 4;
const TLB_US_1080P: u64 = 5000;

const DRM_FORMAT_MOD_LINEAR: u64 = 0;
const DRM_FORMAT_MOD_QCOM_COMPRESSED: u64 = 0x0500_0000_0000_0001;

/// Bytes per pixel of the single-plane formats the model's display takes.
fn cpp(fourcc: u32) -> Option<u32> {
    match &fourcc.to_le_bytes() {
        b"XR24" | b"AR24" | b"XB24" | b"AB24" => Some(4),
        b"RG16" => Some(2),
        _ => None,
    }
}

/// Counters of the display side (debug API: [`super::Sim::display_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DisplayStats {
    /// Successful PAGE_FLIPs.
    pub flips: u64,
    /// Scanout pins and unpins.
    pub pins: u64,
    pub unpins: u64,
    /// Buffers mapped into / unmapped from the display VM.
    pub maps: u64,
    pub unmaps: u64,
    /// Modelled TLB-invalidation time of those unmaps, in microseconds.
    pub tlb_invalidate_us: u64,
    /// Display VMAs now.
    pub mapped: usize,
    /// Framebuffers now.
    pub framebuffers: usize,
}

impl DisplayStats {
    /// Modelled TLB-invalidation time in milliseconds.
    pub fn tlb_invalidate_ms(&self) -> f64 {
        self.tlb_invalidate_us as f64 / 1000.0
    }
}

#[derive(Debug)]
struct Framebuffer {
    /// The file that made it (only it may RMFB it).
    owner: u64,
    obj: Arc<GemObject>,
    width: u32,
    height: u32,
    fourcc: u32,
}

#[derive(Debug)]
struct DisplayVma {
    obj: Weak<GemObject>,
    size_B: u64,
    /// Scanout pins of the object.
    pins: u32,
}

#[derive(Debug, Default)]
struct State {
    fbs: BTreeMap<u32, Framebuffer>,
    /// The framebuffer on the CRTC, and the mode the first flip set (width, height).
    crtc_fb: Option<u32>,
    mode: Option<(u32, u32)>,
    /// Display VMAs by object id.
    vmas: HashMap<u64, DisplayVma>,
    stats: DisplayStats,
}

/// The display engine of one model device.
#[derive(Debug, Default)]
pub(super) struct Display {
    state: Mutex<State>,
}

impl Display {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `vma_ref` of `obj` besides `pins`: open GEM handles + a live dma-buf this device exported.
fn refs_besides_pins(obj: &Arc<GemObject>) -> u32 {
    let handles = obj.lock().handle_count;
    handles + prime::exported_dmabuf_alive(obj) as u32
}

fn tlb_cost_us(size_B: u64) -> u64 {
    (size_B as u128 * TLB_US_1080P as u128 / BYTES_1080P as u128) as u64
}

impl State {
    fn unmap(&mut self, obj_id: u64) {
        if let Some(v) = self.vmas.remove(&obj_id) {
            self.stats.unmaps += 1;
            self.stats.tlb_invalidate_us += tlb_cost_us(v.size_B);
        }
    }

    /// Tears down the unpinned display VMAs whose `vma_ref` is 0 (with the fix; before it,
    /// unpinned VMAs do not exist).
    fn sweep(&mut self) {
        let dead: Vec<u64> = self
            .vmas
            .iter()
            .filter(|(_, v)| {
                v.pins == 0 && v.obj.upgrade().is_none_or(|o| refs_besides_pins(&o) == 0)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in dead {
            self.unmap(id);
        }
    }

    /// Scanout pin: maps the object into the display VM on first use.
    fn pin(&mut self, obj: &Arc<GemObject>) -> Result<(), Errno> {
        {
            let mut st = obj.lock();
            if st.madv != Madv::WillNeed {
                return Err(Errno::EBUSY);
            }
            st.pin_count += 1;
            st.has_pages = true;
        }
        self.stats.pins += 1;
        if !self.vmas.contains_key(&obj.id) {
            self.stats.maps += 1;
        }
        let v = self.vmas.entry(obj.id).or_insert_with(|| DisplayVma {
            obj: Arc::downgrade(obj),
            size_B: obj.size_B,
            pins: 0,
        });
        v.pins += 1;
        Ok(())
    }

    fn unpin(&mut self, obj: &Arc<GemObject>, fix: bool) {
        {
            let mut st = obj.lock();
            st.pin_count = st.pin_count.saturating_sub(1);
        }
        self.stats.unpins += 1;
        let Some(v) = self.vmas.get_mut(&obj.id) else {
            return;
        };
        v.pins -= 1;
        if v.pins > 0 {
            return;
        }
        // Before the fix every unpin unmaps; with it, only the last `vma_ref` does ("vma_put").
        if !fix || refs_besides_pins(obj) == 0 {
            self.unmap(obj.id);
        }
    }
}

impl SimDevice {
    fn display(&self) -> MutexGuard<'_, State> {
        self.display.lock()
    }
}

/// After a GEM handle went away (GEM_CLOSE): the object's display VMA goes with its last
/// `vma_ref`.
pub(super) fn handle_closed(dev: &SimDevice, obj: &Arc<GemObject>) {
    if !dev.options.display_vma_ref_fix {
        return;
    }
    let mut d = dev.display();
    let unmap = d
        .vmas
        .get(&obj.id)
        .is_some_and(|v| v.pins == 0 && refs_besides_pins(obj) == 0);
    if unmap {
        d.unmap(obj.id);
    }
}

/// File close (`drm_fb_release`): its framebuffers go (the one on screen turns the CRTC off),
/// then display VMAs left without a `vma_ref`.
pub(super) fn file_closed(file: &SimFile) {
    let dev = &file.dev;
    let removed: Vec<Framebuffer> = {
        let mut d = dev.display();
        let ids: Vec<u32> = d
            .fbs
            .iter()
            .filter(|(_, fb)| fb.owner == file.id)
            .map(|(&id, _)| id)
            .collect();
        let mut removed = Vec::new();
        for id in ids {
            let fb = d.fbs.remove(&id).expect("listed above");
            if d.crtc_fb == Some(id) {
                d.crtc_fb = None;
                d.unpin(&fb.obj, dev.options.display_vma_ref_fix);
            }
            removed.push(fb);
        }
        if dev.options.display_vma_ref_fix {
            d.sweep();
        }
        d.stats.framebuffers = d.fbs.len();
        d.stats.mapped = d.vmas.len();
        removed
    };
    // Objects may die here: outside the display lock.
    drop(removed);
}

/// MODE_ADDFB2 (drm_mode_addfb2 -> framebuffer_check -> msm_framebuffer_create), one plane.
pub(super) fn addfb2(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |r: &mut drm_mode_fb_cmd2| {
        use drm_sys::{DRM_MODE_FB_INTERLACED, DRM_MODE_FB_MODIFIERS};
        if r.flags & !(DRM_MODE_FB_INTERLACED | DRM_MODE_FB_MODIFIERS) != 0 {
            return Err(Errno::EINVAL);
        }
        if r.width > MAX_FB_DIMENSION || r.height > MAX_FB_DIMENSION {
            return Err(Errno::EINVAL);
        }
        // framebuffer_check
        let cpp = cpp(r.pixel_format).ok_or(Errno::EINVAL)?;
        if r.width == 0 || r.height == 0 {
            return Err(Errno::EINVAL);
        }
        let modifiers = r.flags & DRM_MODE_FB_MODIFIERS != 0;
        if r.handles[0] == 0 {
            return Err(Errno::EINVAL);
        }
        let min_pitch = r.width as u64 * cpp as u64;
        if min_pitch > u32::MAX as u64 {
            return Err(Errno::ERANGE);
        }
        if r.height as u64 * r.pitches[0] as u64 + r.offsets[0] as u64 > u32::MAX as u64 {
            return Err(Errno::ERANGE);
        }
        if (r.pitches[0] as u64) < min_pitch {
            return Err(Errno::EINVAL);
        }
        if r.modifier[0] != 0 && !modifiers {
            return Err(Errno::EINVAL);
        }
        for i in 1..4 {
            if r.modifier[i] != 0 || r.handles[i] != 0 || r.pitches[i] != 0 || r.offsets[i] != 0 {
                return Err(Errno::EINVAL);
            }
        }
        // The plane must take the format with that modifier.
        if ![DRM_FORMAT_MOD_LINEAR, DRM_FORMAT_MOD_QCOM_COMPRESSED].contains(&r.modifier[0]) {
            return Err(Errno::EINVAL);
        }
        // msm_framebuffer_create: an unknown handle is ENXIO.
        let obj = SimFile::lookup(&file.ctx(), r.handles[0]).ok_or(Errno(libc::ENXIO))?;
        // msm_framebuffer_init: the object must hold the last byte of the last line.
        let min_size = (r.height as u64 - 1) * r.pitches[0] as u64
            + r.width as u64 * cpp as u64
            + r.offsets[0] as u64;
        if obj.size_B < min_size {
            return Err(Errno::EINVAL);
        }
        // spec/kernel.md: NO_SHARE objects cannot back a framebuffer.
        if obj.flags & MSM_BO_NO_SHARE != 0 {
            return Err(Errno::EINVAL);
        }
        prime::collect_garbage();
        let mut d = file.dev.display();
        let mut id = FB_ID_BASE;
        while d.fbs.contains_key(&id) {
            id += 1;
        }
        d.fbs.insert(
            id,
            Framebuffer {
                owner: file.id,
                obj,
                width: r.width,
                height: r.height,
                fourcc: r.pixel_format,
            },
        );
        if file.dev.options.display_vma_ref_fix {
            d.sweep();
        }
        d.stats.framebuffers = d.fbs.len();
        d.stats.mapped = d.vmas.len();
        r.fb_id = id;
        Ok(())
    })
}

/// MODE_RMFB (drm_mode_rmfb): only the owner may remove it; on screen, the CRTC turns off.
pub(super) fn rmfb(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |fb_id: &mut u32| {
        prime::collect_garbage();
        let fix = file.dev.options.display_vma_ref_fix;
        let fb = {
            let mut d = file.dev.display();
            match d.fbs.get(fb_id) {
                Some(fb) if fb.owner == file.id => {}
                _ => return Err(Errno::ENOENT),
            }
            let fb = d.fbs.remove(fb_id).expect("checked above");
            if d.crtc_fb == Some(*fb_id) {
                d.crtc_fb = None;
                d.unpin(&fb.obj, fix);
            }
            if fix {
                d.sweep();
            }
            d.stats.framebuffers = d.fbs.len();
            d.stats.mapped = d.vmas.len();
            fb
        };
        drop(fb);
        Ok(())
    })
}

/// MODE_PAGE_FLIP (drm_mode_page_flip_ioctl + the atomic helper): pins the new framebuffer's
/// object, then unpins the old one.
pub(super) fn page_flip(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_crtc_page_flip| {
        use drm_sys::{
            DRM_MODE_PAGE_FLIP_ASYNC, DRM_MODE_PAGE_FLIP_FLAGS, DRM_MODE_PAGE_FLIP_TARGET,
        };
        if a.flags & !DRM_MODE_PAGE_FLIP_FLAGS != 0 {
            return Err(Errno::EINVAL);
        }
        // No async flips (mode_config.async_page_flip is false).
        if a.flags & DRM_MODE_PAGE_FLIP_ASYNC != 0 {
            return Err(Errno::EINVAL);
        }
        if a.flags & DRM_MODE_PAGE_FLIP_TARGET == DRM_MODE_PAGE_FLIP_TARGET {
            return Err(Errno::EINVAL);
        }
        if a.crtc_id != CRTC_ID {
            return Err(Errno::ENOENT);
        }
        // msm's CRTC has no page_flip_target.
        if a.flags & DRM_MODE_PAGE_FLIP_TARGET != 0 {
            return Err(Errno::EINVAL);
        }
        prime::collect_garbage();
        let fix = file.dev.options.display_vma_ref_fix;
        let mut d = file.dev.display();
        let (new_obj, w, h, fourcc) = match d.fbs.get(&a.fb_id) {
            Some(fb) => (fb.obj.clone(), fb.width, fb.height, fb.fourcc),
            None => return Err(Errno::ENOENT),
        };
        let old = d
            .crtc_fb
            .and_then(|id| d.fbs.get(&id))
            .map(|fb| (fb.obj.clone(), fb.fourcc));
        if let Some((mw, mh)) = d.mode.filter(|_| d.crtc_fb.is_some()) {
            // drm_crtc_check_viewport: the framebuffer must cover the mode.
            if w < mw || h < mh {
                return Err(Errno::ENOSPC);
            }
        }
        if let Some((_, old_fourcc)) = &old {
            if *old_fourcc != fourcc {
                return Err(Errno::EINVAL);
            }
        }
        // prepare_fb pins the new buffer (mapping it on first use), cleanup_fb unpins the old.
        d.pin(&new_obj)?;
        if d.crtc_fb.is_none() {
            // No SETCRTC in the model: a flip on a dark CRTC is the modeset, at this size.
            d.mode = Some((w, h));
        }
        d.crtc_fb = Some(a.fb_id);
        if let Some((old_obj, _)) = &old {
            d.unpin(old_obj, fix);
        }
        if fix {
            d.sweep();
        }
        d.stats.flips += 1;
        d.stats.mapped = d.vmas.len();
        drop(d);
        drop(old);
        Ok(())
    })
}

impl super::Sim {
    /// Display-side counters: flips, pins, display-VM maps and unmaps, modelled TLB time.
    pub fn display_stats(&self) -> DisplayStats {
        let d = self.dev.display();
        let mut s = d.stats;
        s.mapped = d.vmas.len();
        s.framebuffers = d.fbs.len();
        s
    }

    /// Whether the object behind `handle` of `file` is mapped in the display VM (debug API).
    pub fn display_mapped(&self, file: &SimFile, handle: u32) -> bool {
        let Some(obj) = SimFile::lookup(&file.ctx(), handle) else {
            return false;
        };
        self.dev.display().vmas.contains_key(&obj.id)
    }
}
