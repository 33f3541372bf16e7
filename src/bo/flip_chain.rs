//! Flip chains: the buffers a swapchain or a compositor flips between on one CRTC.
//!
//! Owns: one reference ([`Bo`], i.e. the GEM handle) and one framebuffer per buffer in the chain,
//! until the buffer is removed or the chain dropped. Holding the handle is what keeps a fixed
//! kernel's display mapping (`vma_ref`, spec/kernel.md "Display (KMS) VM") alive across flips, so
//! flipping back to a buffer costs no map, and flipping away no unmap and no TLB invalidation.
//! Locks: `FlipChain::entries` (a mutex, taken alone; import under it takes the table lock).

use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Bo, BoError, FbLayout};
use crate::kernel::ioctl;
use crate::Device;

#[derive(Debug)]
struct Entry {
    bo: Bo,
    fb_id: u32,
}

#[derive(Debug, Default)]
struct Entries {
    /// Index -> entry; removed entries leave `None` so indices stay stable.
    slots: Vec<Option<Entry>>,
    /// The index being scanned out.
    current: Option<usize>,
}

/// Buffers flipped on one CRTC, each kept referenced and framebuffer'ed until removed.
#[derive(Debug)]
pub struct FlipChain {
    dev: Arc<Device>,
    crtc_id: u32,
    entries: Mutex<Entries>,
}

impl FlipChain {
    /// An empty chain flipping on `crtc_id`.
    pub fn new(dev: &Arc<Device>, crtc_id: u32) -> FlipChain {
        FlipChain {
            dev: dev.clone(),
            crtc_id,
            entries: Mutex::default(),
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `bo` (a new reference is kept) with a framebuffer of `layout`; returns its index.
    pub fn add(&self, bo: &Bo, layout: FbLayout) -> Result<usize, BoError> {
        if !Arc::ptr_eq(bo.device(), &self.dev) {
            return Err(BoError::Invalid(
                "the buffer belongs to another device than the flip chain".into(),
            ));
        }
        let fb_id = ioctl::mode_addfb2(self.dev.kernel(), bo.handle(), layout)?;
        let mut e = self.entries();
        e.slots.push(Some(Entry {
            bo: bo.clone(),
            fb_id,
        }));
        Ok(e.slots.len() - 1)
    }

    /// The compositor side: imports a client's dma-buf and keeps its handle for as long as the
    /// buffer stays in the chain (a re-import of a buffer already in it returns the same handle).
    pub fn import_dmabuf(&self, fd: BorrowedFd<'_>, layout: FbLayout) -> Result<usize, BoError> {
        let bo = Bo::import_dmabuf(&self.dev, fd)?;
        self.add(&bo, layout)
    }

    /// Flips the CRTC to buffer `index` (the kernel pins it and unpins the one it replaces).
    pub fn flip(&self, index: usize) -> Result<(), BoError> {
        let mut e = self.entries();
        let fb_id = e
            .slots
            .get(index)
            .and_then(|s| s.as_ref())
            .ok_or(BoError::NoSuchEntry { index })?
            .fb_id;
        ioctl::mode_page_flip(self.dev.kernel(), self.crtc_id, fb_id)?;
        e.current = Some(index);
        Ok(())
    }

    /// Removes buffer `index`: its framebuffer goes, then its reference. Not while on screen.
    pub fn remove(&self, index: usize) -> Result<(), BoError> {
        let mut e = self.entries();
        if e.current == Some(index) {
            return Err(BoError::OnScreen { index });
        }
        let entry = e
            .slots
            .get_mut(index)
            .and_then(Option::take)
            .ok_or(BoError::NoSuchEntry { index })?;
        drop(e);
        ioctl::mode_rmfb(self.dev.kernel(), entry.fb_id)?;
        Ok(())
    }

    /// The buffer at `index`.
    pub fn bo(&self, index: usize) -> Option<Bo> {
        self.entries()
            .slots
            .get(index)
            .and_then(|s| s.as_ref().map(|e| e.bo.clone()))
    }

    /// The framebuffer id of buffer `index`.
    pub fn fb_id(&self, index: usize) -> Option<u32> {
        self.entries()
            .slots
            .get(index)
            .and_then(|s| s.as_ref().map(|e| e.fb_id))
    }

    /// The buffer being scanned out.
    pub fn current(&self) -> Option<usize> {
        self.entries().current
    }

    /// Buffers in the chain.
    pub fn len(&self) -> usize {
        self.entries().slots.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn crtc_id(&self) -> u32 {
        self.crtc_id
    }
}

impl Drop for FlipChain {
    fn drop(&mut self) {
        // Framebuffers first (the one on screen turns the CRTC off, as RMFB does), then the
        // references. Errors cannot be reported from a drop; the kernel drops the framebuffers
        // with the file anyway.
        let e = std::mem::take(&mut *self.entries());
        for entry in e.slots.into_iter().flatten() {
            let _ = ioctl::mode_rmfb(self.dev.kernel(), entry.fb_id);
        }
    }
}
