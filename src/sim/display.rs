//! The display side of the model: framebuffers (MODE_ADDFB / ADDFB2 / RMFB), the scanout pins
//! that commits (modeset.rs) take on them, the display engine's VM and the `vma_ref` rule that
//! decides when a buffer's display mapping is torn down (spec/kernel.md "Display (KMS) VM and
//! scanout buffers").
//!
//! Owns: the device's display state [`State`] — framebuffers, property blobs, the committed KMS
//! state and the pending commit (modeset.rs), the vblank counter and waits (vblank.rs), the
//! display VMAs and their counters ([`DisplayStats`]). Locks: `vblank::Shared::state`, taken
//! after `SimFile::ctx` and before `GemObject::state` (and so before the PRIME registry, read
//! under the object lock) and a file's event queue (event.rs, a leaf). Framebuffers removed under it are dropped after it is
//! released; fences are signalled after it is released.
//!
//! `vma_ref` of an object = its open userspace GEM handles (all files) + 1 while a dma-buf this
//! device exported from it is alive + its scanout pins. With the fix (`SimOptions::
//! display_vma_ref_fix`, the default) the display VMA made by the first pin stays until
//! `vma_ref` drops to 0; before the fix every unpin tears it down. Each teardown costs a TLB
//! invalidation, modelled as 5 ms for a 1080p XRGB8888 buffer, proportional to size.
//!
//! When the last fd of a dma-buf is closed the model only learns it from `/proc/self/fd`: every
//! display ioctl that pins or unpins first forgets released dma-bufs (`prime::collect_garbage`),
//! then tears down the display VMAs whose `vma_ref` is 0. So a closed dma-buf fd is noticed at
//! the next such ioctl, deterministically. GEM_CLOSE and file close are noticed at once.
//!
//! The fbdev console (`SimOptions::fbdev_console`): a kernel-owned XRGB8888 framebuffer of the
//! panel's size lit on the CRTC at boot, as fbdev emulation does, and lit again when the last
//! file of the device closes (`drm_lastclose` restores fbdev). Its buffer is pinned by the
//! kernel for the device's life, so its pins and its display mapping are not counted in
//! [`DisplayStats`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, MutexGuard, Weak};

use super::dispatch::typed;
use super::gem::{GemObject, Madv};
use super::kms::{self, Object, MAX_FB_DIMENSION};
use super::modeset::KmsState;
use super::resv::Resv;
use super::{prime, user, SimDevice, SimFile, SimOptions};
use crate::uapi::*;
use crate::Errno;

/// The model's one CRTC (DRM mode object ids are small integers shared by all object kinds).
pub const CRTC_ID: u32 = 0x31;
/// Framebuffers and blobs made at run time take the lowest free id from here.
const DYNAMIC_ID_BASE: u32 = 0x40;
/// Bytes of a 1920x1080 XRGB8888 framebuffer: its teardown is modelled as 5 ms of TLB invalidation.
pub const BYTES_1080P: u64 = 1920 * 1080 * 4;
const TLB_US_1080P: u64 = 5000;
/// The fbdev console's framebuffer owner (no file).
const KERNEL: u64 = 0;

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
    /// Successful commits other than PAGE_FLIPs: SETCRTC, ATOMIC (not TEST_ONLY),
    /// OBJ_SETPROPERTY, and the kernel's own (RMFB or file close turning the CRTC off).
    pub commits: u64,
    /// Flip-complete events queued to files.
    pub events: u64,
    /// Vblanks that completed a commit.
    pub vblanks: u64,
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
    /// Framebuffers made by files, now.
    pub framebuffers: usize,
    /// Scanout flips: successful commits (PAGE_FLIP, ATOMIC, SETCRTC, ...) that put a different
    /// file framebuffer on the primary plane.
    pub scanouts: u64,
    /// The steady state: the scanouts after the last one that showed an object never scanned
    /// out before (once every buffer of the client's chain has been on screen), and the display
    /// VM maps and unmaps those commits made. The teardown after the last scanout is not in it.
    pub steady_scanouts: u64,
    pub steady_maps: u64,
    pub steady_unmaps: u64,
}

impl DisplayStats {
    /// Modelled TLB-invalidation time in milliseconds.
    pub fn tlb_invalidate_ms(&self) -> f64 {
        self.tlb_invalidate_us as f64 / 1000.0
    }
}

#[derive(Debug)]
pub(super) struct Framebuffer {
    /// The file that made it (only it may RMFB it); [`KERNEL`] for the fbdev console.
    pub owner: u64,
    pub obj: Arc<GemObject>,
    pub width: u32,
    pub height: u32,
    pub fourcc: u32,
    pub modifier: u64,
}

/// A property blob (`struct drm_property_blob`).
#[derive(Debug)]
pub(super) struct Blob {
    /// The file that made it with CREATEPROPBLOB and has not destroyed it.
    pub owner: Option<u64>,
    /// A kernel blob that lives as long as the device (IN_FORMATS).
    pub permanent: bool,
    pub data: Vec<u8>,
}

/// The counters at one scanout, to measure the steady state from.
#[derive(Debug, Clone, Copy, Default)]
struct ScanoutMark {
    scanouts: u64,
    maps: u64,
    unmaps: u64,
}

#[derive(Debug)]
struct DisplayVma {
    obj: Weak<GemObject>,
    size_B: u64,
    /// Scanout pins of the object.
    pins: u32,
}

#[derive(Debug)]
pub(super) struct State {
    pub fbs: BTreeMap<u32, Framebuffer>,
    pub blobs: BTreeMap<u32, Blob>,
    /// The committed KMS state.
    pub kms: KmsState,
    /// The commit waiting for its vblank (modeset.rs).
    pub pending: Option<super::modeset::Pending>,
    /// The last vblank (`Manual`, `Immediate`; `Realtime` counts from the clock) and its
    /// CLOCK_MONOTONIC time.
    pub vblank_seq: u64,
    pub vblank_ns: i64,
    /// WAIT_VBLANK events waiting for their vblank.
    pub vblank_waits: Vec<super::vblank::VblankWait>,
    /// Display VMAs by object id.
    vmas: HashMap<u64, DisplayVma>,
    pub stats: DisplayStats,
    /// `SimOptions::display_vma_ref_fix`.
    fix: bool,
    /// Objects ever scanned out on the primary plane (ids are never reused), the counters at the
    /// last scanout of a new one and at the last scanout: [`DisplayStats`]'s steady state.
    scanned: HashSet<u64>,
    steady_from: ScanoutMark,
    last_scanout: ScanoutMark,
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
    pub(super) fn new(options: &SimOptions, dev_uid: u64) -> State {
        let mut s = State {
            fbs: BTreeMap::new(),
            blobs: kms::boot_blobs().into_iter().collect(),
            kms: KmsState::default(),
            pending: None,
            vblank_seq: 0,
            vblank_ns: super::gem::monotonic_ns(),
            vblank_waits: Vec::new(),
            vmas: HashMap::new(),
            stats: DisplayStats::default(),
            fix: options.display_vma_ref_fix,
            scanned: HashSet::new(),
            steady_from: ScanoutMark::default(),
            last_scanout: ScanoutMark::default(),
        };
        if options.kms && options.fbdev_console {
            let mode = kms::panel_mode();
            let (w, h) = (mode.hdisplay as u32, mode.vdisplay as u32);
            // No memfd unless mapped: the console's pixels are never touched.
            let obj = GemObject::create(
                dev_uid,
                0,
                (w as u64 * h as u64 * 4).next_multiple_of(4096),
                MSM_BO_SCANOUT | MSM_BO_WC,
                Resv::new(),
            );
            let id = s.alloc_id();
            s.fbs.insert(
                id,
                Framebuffer {
                    owner: KERNEL,
                    obj,
                    width: w,
                    height: h,
                    fourcc: u32::from_le_bytes(*b"XR24"),
                    modifier: kms::DRM_FORMAT_MOD_LINEAR,
                },
            );
            s.kms = KmsState::lit(id, mode, 0, 0);
            let blob = s.alloc_id();
            s.blobs.insert(
                blob,
                Blob {
                    owner: None,
                    permanent: false,
                    data: super::user::bytes_of(&mode).to_vec(),
                },
            );
            s.kms.crtc.mode_blob = blob;
        }
        s
    }

    /// `idr_alloc(1, 0)` above the fixed objects: the lowest id no framebuffer or blob holds.
    pub(super) fn alloc_id(&self) -> u32 {
        let mut id = DYNAMIC_ID_BASE;
        while self.fbs.contains_key(&id) || self.blobs.contains_key(&id) {
            id += 1;
        }
        id
    }

    /// The console framebuffer, if the device has one.
    pub(super) fn console(&self) -> Option<u32> {
        self.fbs
            .iter()
            .find(|(_, fb)| fb.owner == KERNEL)
            .map(|(&id, _)| id)
    }

    /// Frees blobs that nobody owns and the committed state does not use.
    pub(super) fn sweep_blobs(&mut self) {
        let used = self.kms.crtc.mode_blob;
        self.blobs
            .retain(|&id, b| b.permanent || b.owner.is_some() || id == used);
    }

    /// The current value of property `prop` on `obj` (`drm_atomic_get_property`).
    pub(super) fn prop_value(&self, obj: Object, prop: u32) -> u64 {
        use kms::prop::*;
        let k = &self.kms;
        match (obj, prop) {
            (Object::Connector, DPMS) => {
                if k.connector_crtc && k.crtc.active {
                    0
                } else {
                    3
                }
            }
            (Object::Connector, CRTC_ID) => (k.connector_crtc as u64) * CRTC_ID as u64,
            (Object::Crtc, ACTIVE) => k.crtc.active as u64,
            (Object::Crtc, MODE_ID) => k.crtc.mode_blob as u64,
            (Object::Crtc, VRR_ENABLED) => k.crtc.vrr as u64,
            (Object::Plane(i), p) => {
                let pl = &k.planes[i];
                match p {
                    TYPE => (i == 0) as u64,
                    FB_ID => pl.fb.unwrap_or(0) as u64,
                    IN_FENCE_FD => -1i64 as u64,
                    CRTC_ID => (pl.crtc as u64) * CRTC_ID as u64,
                    CRTC_X => pl.crtc_x as i64 as u64,
                    CRTC_Y => pl.crtc_y as i64 as u64,
                    CRTC_W => pl.crtc_w as u64,
                    CRTC_H => pl.crtc_h as u64,
                    SRC_X => pl.src_x as u64,
                    SRC_Y => pl.src_y as u64,
                    SRC_W => pl.src_w as u64,
                    SRC_H => pl.src_h as u64,
                    IN_FORMATS => 0x2e + i as u64,
                    _ => 0,
                }
            }
            // EDID (a DSI panel has none), link-status Good, non-desktop 0, OUT_FENCE_PTR 0.
            _ => 0,
        }
    }

    fn unmap(&mut self, obj_id: u64) {
        if let Some(v) = self.vmas.remove(&obj_id) {
            self.stats.unmaps += 1;
            self.stats.tlb_invalidate_us += tlb_cost_us(v.size_B);
        }
    }

    /// Tears down the unpinned display VMAs whose `vma_ref` is 0 (with the fix; before it,
    /// unpinned VMAs do not exist), and refreshes the gauges.
    pub(super) fn sweep(&mut self) {
        if self.fix {
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
        self.refresh();
    }

    /// Brings the gauges of [`DisplayStats`] up to date.
    fn refresh(&mut self) {
        self.stats.framebuffers = self.fbs.values().filter(|f| f.owner != KERNEL).count();
        self.stats.mapped = self.vmas.len();
        let (from, last) = (self.steady_from, self.last_scanout);
        self.stats.steady_scanouts = last.scanouts - from.scanouts;
        self.stats.steady_maps = last.maps - from.maps;
        self.stats.steady_unmaps = last.unmaps - from.unmaps;
    }

    /// A commit put framebuffer `fb_id` on the primary plane in place of another, and made
    /// (with its unpins and sweep) every map and unmap it will: one scanout flip. The console's
    /// framebuffer is the kernel's, not a client's flip.
    pub(super) fn scanned_out(&mut self, fb_id: u32) {
        let Some(fb) = self.fbs.get(&fb_id) else {
            return;
        };
        if fb.owner == KERNEL {
            return;
        }
        let new = self.scanned.insert(fb.obj.id);
        self.stats.scanouts += 1;
        self.last_scanout = ScanoutMark {
            scanouts: self.stats.scanouts,
            maps: self.stats.maps,
            unmaps: self.stats.unmaps,
        };
        if new {
            self.steady_from = self.last_scanout;
        }
        self.refresh();
    }

    /// Scanout pin (`msm_framebuffer_prepare`): maps the object into the display VM on first
    /// use. A DONTNEED or purged object cannot be pinned (EBUSY).
    pub(super) fn pin(&mut self, fb_id: u32) -> Result<(), Errno> {
        let Some(fb) = self.fbs.get(&fb_id) else {
            return Ok(());
        };
        if fb.owner == KERNEL {
            return Ok(());
        }
        let obj = fb.obj.clone();
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
            obj: Arc::downgrade(&obj),
            size_B: obj.size_B,
            pins: 0,
        });
        v.pins += 1;
        Ok(())
    }

    /// Scanout unpin (`msm_framebuffer_cleanup`).
    pub(super) fn unpin(&mut self, fb_id: u32) {
        let Some(fb) = self.fbs.get(&fb_id) else {
            return;
        };
        if fb.owner == KERNEL {
            return;
        }
        let obj = fb.obj.clone();
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
        if !self.fix || refs_besides_pins(&obj) == 0 {
            self.unmap(obj.id);
        }
    }
}

impl SimDevice {
    pub(super) fn display(&self) -> MutexGuard<'_, State> {
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
    d.refresh();
}

/// File close (`drm_fb_release`, `drm_property_destroy_user_blobs`): its framebuffers go (one
/// on screen is taken off it by a kernel commit, turning the CRTC off if it was the primary
/// plane's), its blobs go; then display VMAs left without a `vma_ref`. When it was the device's
/// last file, the fbdev console comes back (`drm_lastclose`).
pub(super) fn file_closed(file: &SimFile, last_file: bool) {
    let (ids, _) = held_by(&file.dev, file.id);
    let mut removed = Vec::new();
    for id in ids {
        if let Some(fb) = super::modeset::remove_fb(&file.dev, id) {
            removed.push(fb);
        }
    }
    {
        let mut d = file.dev.display();
        for b in d.blobs.values_mut() {
            if b.owner == Some(file.id) {
                b.owner = None;
            }
        }
        d.sweep_blobs();
        d.sweep();
    }
    if last_file {
        super::modeset::restore_console(&file.dev);
    }
    // Objects may die here: outside the display lock.
    drop(removed);
}

/// What a file still holds on the display side, for its leak report: (framebuffers, blobs).
pub(super) fn held_by(dev: &SimDevice, file: u64) -> (Vec<u32>, Vec<u32>) {
    let d = dev.display();
    let fbs = d
        .fbs
        .iter()
        .filter(|(_, fb)| fb.owner == file)
        .map(|(&id, _)| id)
        .collect();
    let blobs = d
        .blobs
        .iter()
        .filter(|(_, b)| b.owner == Some(file))
        .map(|(&id, _)| id)
        .collect();
    (fbs, blobs)
}

/// One framebuffer plane as ADDFB / ADDFB2 describe it.
struct FbRequest {
    width: u32,
    height: u32,
    fourcc: u32,
    modifiers: bool,
    handles: [u32; 4],
    pitches: [u32; 4],
    offsets: [u32; 4],
    modifier: [u64; 4],
}

/// `drm_internal_framebuffer_create` -> `framebuffer_check` -> `msm_framebuffer_create`, one
/// plane; returns the new framebuffer's id.
fn create_fb(file: &SimFile, r: &FbRequest) -> Result<u32, Errno> {
    if r.width > MAX_FB_DIMENSION || r.height > MAX_FB_DIMENSION {
        return Err(Errno::EINVAL);
    }
    // framebuffer_check
    let cpp = cpp(r.fourcc).ok_or(Errno::EINVAL)?;
    if r.width == 0 || r.height == 0 {
        return Err(Errno::EINVAL);
    }
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
    if r.modifier[0] != 0 && !r.modifiers {
        return Err(Errno::EINVAL);
    }
    for i in 1..4 {
        if r.modifier[i] != 0 || r.handles[i] != 0 || r.pitches[i] != 0 || r.offsets[i] != 0 {
            return Err(Errno::EINVAL);
        }
    }
    // Some plane must take the format with that modifier.
    if !kms::plane_takes(r.fourcc, r.modifier[0]) {
        return Err(Errno::EINVAL);
    }
    // msm_framebuffer_create: an unknown handle is ENXIO.
    let obj = SimFile::lookup(&file.ctx(), r.handles[0]).ok_or(Errno(libc::ENXIO))?;
    // msm_framebuffer_init: the object must hold the last byte of the last line.
    let min_size = (r.height as u64 - 1) * r.pitches[0] as u64 + min_pitch + r.offsets[0] as u64;
    if obj.size_B < min_size {
        return Err(Errno::EINVAL);
    }
    // spec/kernel.md: NO_SHARE objects cannot back a framebuffer.
    if obj.flags & MSM_BO_NO_SHARE != 0 {
        return Err(Errno::EINVAL);
    }
    prime::collect_garbage();
    let mut d = file.dev.display();
    let id = d.alloc_id();
    d.fbs.insert(
        id,
        Framebuffer {
            owner: file.id,
            obj,
            width: r.width,
            height: r.height,
            fourcc: r.fourcc,
            modifier: r.modifier[0],
        },
    );
    d.sweep();
    Ok(id)
}

/// MODE_ADDFB2 (`drm_mode_addfb2`).
pub(super) fn addfb2(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |r: &mut drm_mode_fb_cmd2| {
        use drm_sys::{DRM_MODE_FB_INTERLACED, DRM_MODE_FB_MODIFIERS};
        kms::need_kms(file)?;
        if r.flags & !(DRM_MODE_FB_INTERLACED | DRM_MODE_FB_MODIFIERS) != 0 {
            return Err(Errno::EINVAL);
        }
        r.fb_id = create_fb(
            file,
            &FbRequest {
                width: r.width,
                height: r.height,
                fourcc: r.pixel_format,
                modifiers: r.flags & DRM_MODE_FB_MODIFIERS != 0,
                handles: r.handles,
                pitches: r.pitches,
                offsets: r.offsets,
                modifier: r.modifier,
            },
        )?;
        Ok(())
    })
}

/// MODE_ADDFB (`drm_mode_addfb`): the legacy (bpp, depth) pair picks the format
/// (`drm_driver_legacy_fb_format`); an unknown pair is EINVAL.
pub(super) fn addfb(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |r: &mut drm_mode_fb_cmd| {
        kms::need_kms(file)?;
        let fourcc = match (r.bpp, r.depth) {
            (16, 16) => *b"RG16",
            (32, 24) => *b"XR24",
            (32, 32) => *b"AR24",
            _ => return Err(Errno::EINVAL),
        };
        r.fb_id = create_fb(
            file,
            &FbRequest {
                width: r.width,
                height: r.height,
                fourcc: u32::from_le_bytes(fourcc),
                modifiers: false,
                handles: [r.handle, 0, 0, 0],
                pitches: [r.pitch, 0, 0, 0],
                offsets: [0; 4],
                modifier: [0; 4],
            },
        )?;
        Ok(())
    })
}

/// MODE_RMFB (`drm_mode_rmfb`): only the owner may remove it (ENOENT otherwise); one in use is
/// first taken off its plane by a kernel commit (the CRTC goes off with its primary plane).
pub(super) fn rmfb(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |fb_id: &mut u32| {
        kms::need_kms(file)?;
        prime::collect_garbage();
        {
            let d = file.dev.display();
            match d.fbs.get(fb_id) {
                Some(fb) if fb.owner == file.id => {}
                _ => return Err(Errno::ENOENT),
            }
        }
        let fb = super::modeset::remove_fb(&file.dev, *fb_id);
        file.dev.display().sweep();
        drop(fb);
        Ok(())
    })
}

/// `DRM_MODE_FB_DIRTY_*` and `DRM_MODE_FB_DIRTY_MAX_CLIPS` (uapi drm_mode.h).
const DRM_MODE_FB_DIRTY_ANNOTATE_COPY: u32 = 0x01;
const DRM_MODE_FB_DIRTY_FLAGS: u32 = 0x03;
const DRM_MODE_FB_DIRTY_MAX_CLIPS: i32 = 256;
/// `sizeof(struct drm_clip_rect)`: four u16.
const DRM_CLIP_RECT_B: usize = 8;

/// MODE_DIRTYFB (`drm_mode_dirtyfb_ioctl`): any file's framebuffer (ENOENT otherwise); clips and
/// their pointer both or neither, in pairs for ANNOTATE_COPY, at most 256, readable. msm's fbs
/// have a `dirty` hook (`msm_framebuffer_dirtyfb`), which has nothing to flush on a video-mode
/// display such as the model's: 0.
pub(super) fn dirty_fb(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |r: &mut drm_mode_fb_dirty_cmd| {
        kms::need_kms(file)?;
        if !file.dev.display().fbs.contains_key(&r.fb_id) {
            return Err(Errno::ENOENT);
        }
        // The kernel holds the count in an int.
        let num_clips = r.num_clips as i32;
        if (num_clips == 0) != (r.clips_ptr == 0) {
            return Err(Errno::EINVAL);
        }
        let flags = r.flags & DRM_MODE_FB_DIRTY_FLAGS;
        if flags & DRM_MODE_FB_DIRTY_ANNOTATE_COPY != 0 && num_clips % 2 != 0 {
            return Err(Errno::EINVAL);
        }
        if num_clips != 0 {
            if !(0..=DRM_MODE_FB_DIRTY_MAX_CLIPS).contains(&num_clips) {
                return Err(Errno::EINVAL);
            }
            user::read_bytes(r.clips_ptr, num_clips as usize * DRM_CLIP_RECT_B)?;
        }
        Ok(())
    })
}

/// Whether `fb_id` is a framebuffer (any file's) and its (width, height, fourcc, modifier).
pub(super) fn fb_info(d: &State, fb_id: u32) -> Option<(u32, u32, u32, u64)> {
    d.fbs
        .get(&fb_id)
        .map(|fb| (fb.width, fb.height, fb.fourcc, fb.modifier))
}

impl super::Sim {
    /// Display-side counters: flips, commits, events, pins, display-VM maps and unmaps,
    /// modelled TLB time.
    pub fn display_stats(&self) -> DisplayStats {
        let mut d = self.dev.display();
        d.refresh();
        d.stats
    }

    /// Whether the object behind `handle` of `file` is mapped in the display VM (debug API).
    pub fn display_mapped(&self, file: &SimFile, handle: u32) -> bool {
        let Some(obj) = SimFile::lookup(&file.ctx(), handle) else {
            return false;
        };
        self.dev.display().vmas.contains_key(&obj.id)
    }
}
