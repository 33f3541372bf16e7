//! A buffer object: a counted reference to one GEM handle of a device's file.
//!
//! Owns: [`Bo`] (clone = one more reference; the handle is closed, or the buffer cached, exactly
//! once, when the last reference goes) and [`BoFlags`]. Locks: `BoInner::fences` (a leaf); the
//! release takes the table lock (see `table.rs`).

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::BoError;
use crate::iova::Fence;
use crate::uapi::*;
use crate::Device;

bitflags::bitflags! {
    /// How a buffer is created: the kernel's `MSM_BO_*` bits plus the winsys's own `SHARED`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct BoFlags: u32 {
        const SCANOUT = MSM_BO_SCANOUT;
        const GPU_READONLY = MSM_BO_GPU_READONLY;
        /// Shares the VM's reservation (cheap submits); can never be exported or scanned out.
        const NO_SHARE = MSM_BO_NO_SHARE;
        const CACHED = MSM_BO_CACHED;
        const WC = MSM_BO_WC;
        const CACHED_COHERENT = MSM_BO_CACHED_COHERENT;
        /// Created to be shared (exported, scanned out): never NO_SHARE, never from the cache.
        const SHARED = 1 << 31;
    }
}

impl BoFlags {
    /// The bits GEM_NEW sees.
    pub fn kernel_bits(self) -> u32 {
        self.bits() & MSM_BO_FLAGS
    }

    /// Checks a creation request; nothing reaches the kernel when this fails.
    pub(super) fn check(self, size_B: u64) -> Result<(), BoError> {
        if size_B == 0 {
            return Err(BoError::Invalid("buffer size is 0".into()));
        }
        if size_B.checked_next_multiple_of(4096).is_none() {
            return Err(BoError::Invalid(format!(
                "buffer size {size_B:#x} overflows"
            )));
        }
        if self.contains(BoFlags::SHARED | BoFlags::NO_SHARE) {
            return Err(BoError::Invalid(
                "a buffer created for sharing (SHARED) cannot be NO_SHARE".into(),
            ));
        }
        let cache = self.bits() & MSM_BO_CACHE_MASK;
        if ![MSM_BO_CACHED, MSM_BO_WC, MSM_BO_CACHED_COHERENT].contains(&cache) {
            return Err(BoError::Invalid(format!(
                "exactly one of CACHED, WC, CACHED_COHERENT is needed (got {cache:#x})"
            )));
        }
        Ok(())
    }
}

/// Where a buffer's handle came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// GEM_NEW for a private buffer: cacheable until it is exported.
    New,
    /// Taken from the cache.
    Cached,
    /// GEM_NEW with `BoFlags::SHARED`.
    NewShared,
    /// PRIME_FD_TO_HANDLE.
    Imported,
}

#[derive(Debug)]
pub(crate) struct BoInner {
    pub(super) dev: Arc<Device>,
    pub(super) handle: u32,
    pub(super) size_B: u64,
    /// `MSM_BO_*` as created; 0 for imports (the kernel does not tell).
    pub(super) flags: u32,
    origin: Origin,
    /// PRIME can hand this handle out (exported, imported or created SHARED).
    shared: AtomicBool,
    /// Fences of the last GPU use; the cache's idle check reads them.
    fences: Mutex<Vec<Fence>>,
}

impl BoInner {
    pub(super) fn new(
        dev: Arc<Device>,
        handle: u32,
        size_B: u64,
        flags: u32,
        origin: Origin,
    ) -> Arc<BoInner> {
        Arc::new(BoInner {
            dev,
            handle,
            size_B,
            flags,
            origin,
            shared: AtomicBool::new(matches!(origin, Origin::NewShared | Origin::Imported)),
            fences: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn shared(&self) -> bool {
        self.shared.load(Ordering::Acquire)
    }

    pub(super) fn set_shared(&self) {
        self.shared.store(true, Ordering::Release);
    }

    pub(super) fn fences(&self) -> Vec<Fence> {
        self.fences
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for BoInner {
    fn drop(&mut self) {
        let cache_it = matches!(self.origin, Origin::New | Origin::Cached) && !self.shared();
        let dev = self.dev.clone();
        dev.bo_manager().release(self, cache_it);
    }
}

/// A buffer object: one counted reference. Clone it to share; the last drop closes the GEM
/// handle (or parks an idle private buffer in the cache).
#[derive(Debug, Clone)]
pub struct Bo(pub(crate) Arc<BoInner>);

impl Bo {
    /// A new buffer of at least `size_B` bytes. Private buffers (no `SHARED`) may come from the
    /// cache and may be bigger (their bucket's size).
    pub fn new(dev: &Arc<Device>, size_B: u64, flags: BoFlags) -> Result<Bo, BoError> {
        dev.bo_manager().new_bo(dev, size_B, flags)
    }

    /// Imports a dma-buf. The same dma-buf imported again while a buffer of it is live returns
    /// that buffer with its count raised (same handle). `fd` stays the caller's.
    pub fn import_dmabuf(dev: &Arc<Device>, fd: BorrowedFd<'_>) -> Result<Bo, BoError> {
        dev.bo_manager().import(dev, fd)
    }

    /// Exports a new dma-buf fd (CLOEXEC | RDWR). A `NO_SHARE` buffer fails with
    /// [`BoError::NoShare`] (EPERM) and the kernel is not asked. An exported buffer is never
    /// cached.
    pub fn export_dmabuf(&self) -> Result<OwnedFd, BoError> {
        self.0.dev.bo_manager().export(&self.0)
    }

    /// Exports an image: stores its layout `record` with the object (GEM_INFO SET_METADATA)
    /// first, so no importer can ever see the dma-buf without it, then exports as
    /// [`Self::export_dmabuf`] does.
    pub fn export_image(&self, record: &crate::metadata::Encoded) -> Result<OwnedFd, BoError> {
        crate::metadata::store(self.0.dev.kernel(), self.0.handle, record).map_err(
            |e| match e {
                crate::metadata::BoMetadataError::Kernel(k) => BoError::Kernel(k),
                other => BoError::Invalid(other.to_string()),
            },
        )?;
        self.export_dmabuf()
    }

    /// Imports an image's dma-buf and reads its layout metadata, checked against this buffer's
    /// size and against `ours` (the importing device and driver). The buffer comes back whatever
    /// the metadata says: "no metadata" means fall back to the modifier or a guess, anything else
    /// that failed means the exporter's layout must not be trusted.
    pub fn import_image(
        dev: &Arc<Device>,
        fd: BorrowedFd<'_>,
        ours: &crate::metadata::Identity,
    ) -> Result<
        (
            Bo,
            Result<crate::metadata::Imported, crate::metadata::BoMetadataError>,
        ),
        BoError,
    > {
        let bo = Bo::import_dmabuf(dev, fd)?;
        let layout = crate::metadata::load(dev.kernel(), bo.handle(), bo.size_B(), ours);
        Ok((bo, layout))
    }

    pub fn handle(&self) -> u32 {
        self.0.handle
    }

    pub fn size_B(&self) -> u64 {
        self.0.size_B
    }

    /// `MSM_BO_*` as created; 0 for an imported buffer.
    pub fn kernel_flags(&self) -> u32 {
        self.0.flags
    }

    pub fn is_shared(&self) -> bool {
        self.0.shared()
    }

    pub fn is_imported(&self) -> bool {
        self.0.origin == Origin::Imported
    }

    pub fn device(&self) -> &Arc<Device> {
        &self.0.dev
    }

    /// Records that a GPU job using this buffer signals `fence`; the cache will not hand the
    /// buffer out again before the device's fence book says it signalled.
    pub fn add_fence(&self, fence: Fence) {
        let mut f = self.0.fences.lock().unwrap_or_else(|p| p.into_inner());
        f.retain(|old| old.timeline() != fence.timeline());
        f.push(fence);
    }

    /// Current number of references (for tests and the C API's debug output).
    pub fn ref_count(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// Whether two references are the same buffer.
    pub fn ptr_eq(a: &Bo, b: &Bo) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}
