//! The handle table: GEM handle -> live buffer, and the only code that opens and closes handles.
//!
//! Owns: `BoTable::entries` (a mutex; lock 1 of `crate::bo`), the ownership rule of every handle,
//! and the device's [`BoManager`] (table + cache + the fence book the idle check reads).
//!
//! Ownership rule: the buffer a table entry points to owns that handle, and only the owner closes
//! it, with the table lock held for handles PRIME can reach. Import runs PRIME_FD_TO_HANDLE and the
//! lookup under the same lock, so:
//! - if the entry's buffer is alive, import returns it with its count raised;
//! - if it is dying (its count already reached 0 but its release has not taken the lock yet), import
//!   makes a new buffer for the same handle and replaces the entry: ownership moves to the new
//!   buffer, and the dying one, seeing it no longer owns the entry, closes nothing.
//!
//! No retry sentinel and no window: a handle import hands out is never closed under its feet.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::buffer::{BoInner, Origin};
use super::cache::BoCache;
use super::{Bo, BoError, BoFlags};
use crate::iova::Timelines;
use crate::kernel::ioctl;
use crate::sync::{Mutex, MutexGuard};
use crate::Device;

/// Counters of the table (for tests and `msmws`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Buffers in the table now.
    pub live: usize,
    /// Imports that found the buffer already live and raised its count.
    pub import_hits: u64,
    /// Imports that took over a handle whose previous buffer was mid-release.
    pub import_takeovers: u64,
    /// GEM_CLOSE ioctls issued.
    pub closes: u64,
}

/// Everything buffer-related a [`Device`] owns: the handle table, the cache and the fence book.
#[derive(Debug, Default)]
pub struct BoManager {
    entries: Mutex<HashMap<u32, Weak<BoInner>>>,
    pub(super) cache: BoCache,
    timelines: Arc<Timelines>,
    import_hits: AtomicU64,
    import_takeovers: AtomicU64,
    pub(super) closes: AtomicU64,
}

impl BoManager {
    pub(super) fn entries(&self) -> MutexGuard<'_, HashMap<u32, Weak<BoInner>>> {
        // A panic while holding the lock leaves the map consistent (single inserts/removes).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The book of completed fences the cache's idle check reads (no ioctl). Whoever learns that
    /// a submit finished (a wait, a fence poll) publishes it here.
    pub fn timelines(&self) -> &Arc<Timelines> {
        &self.timelines
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            live: self.entries().len(),
            import_hits: self.import_hits.load(Ordering::Relaxed),
            import_takeovers: self.import_takeovers.load(Ordering::Relaxed),
            closes: self.closes.load(Ordering::Relaxed),
        }
    }

    /// Cache counters.
    pub fn cache_stats(&self) -> super::CacheStats {
        self.cache.stats()
    }

    /// How long a freed buffer stays cached (default 1 s). Zero disables the cache.
    pub fn set_cache_max_age(&self, age: std::time::Duration) {
        self.cache.set_max_age(age);
    }

    /// Closes every cached buffer now.
    pub fn cache_flush(&self, dev: &Device) {
        self.cache.flush(dev);
    }

    /// Closes the cached buffers older than the maximum age now (the reaper thread does this on
    /// its own; this is for callers that want it at a known point).
    pub fn cache_expire(&self, dev: &Device) {
        self.cache.expire(dev);
    }

    /// Called by `Device`'s drop: closes the cached handles (live buffers hold the device, so
    /// there are none when it drops).
    pub(crate) fn release_all(&self, dev: &Device) {
        self.cache.flush(dev);
    }

    /// Inserts a buffer for a handle nobody else can know yet (fresh from GEM_NEW or the cache).
    pub(super) fn insert_private(&self, bo: &Arc<BoInner>) {
        let old = self.entries().insert(bo.handle, Arc::downgrade(bo));
        debug_assert!(
            old.is_none_or(|w| w.strong_count() == 0),
            "handle {} was already live in the table",
            bo.handle
        );
    }

    /// The final release of `bo` (its count reached 0): closes its handle if it still owns it.
    /// Returns whether it owned it (so the caller may cache instead of close: see `Bo` drop).
    pub(super) fn release(&self, bo: &BoInner, cache_it: bool) {
        let dev = &bo.dev;
        let mut entries = self.entries();
        let owns = entries
            .get(&bo.handle)
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), bo));
        if !owns {
            // An import took the handle over while this buffer was dying: the new buffer owns it.
            return;
        }
        entries.remove(&bo.handle);
        if bo.shared() {
            // PRIME can hand this handle out: close it before anyone can import it again.
            self.close(dev, bo.handle);
            return;
        }
        drop(entries);
        // Private: nobody can reach this handle any more, so no lock is needed from here on.
        if cache_it {
            if let Some(cached) = self.cache.put(bo, dev) {
                self.close(dev, cached);
            }
            return;
        }
        self.close(dev, bo.handle);
    }

    pub(super) fn close(&self, dev: &Device, handle: u32) {
        self.closes.fetch_add(1, Ordering::Relaxed);
        // A failure here means the handle was not ours any more: a bug worth shouting about in
        // debug builds, and nothing to do about it in release ones.
        let r = ioctl::gem_close(dev.kernel(), handle);
        debug_assert!(r.is_ok(), "{r:?}");
    }

    /// Creates a buffer (from the cache when an idle one of the right bucket and flags exists).
    pub(super) fn new_bo(
        &self,
        dev: &Arc<Device>,
        size_B: u64,
        flags: BoFlags,
    ) -> Result<Bo, BoError> {
        flags.check(size_B)?;
        let kflags = flags.kernel_bits();
        let cacheable = !flags.contains(BoFlags::SHARED) && self.cache.enabled();
        if cacheable {
            if let Some((handle, bucket_B)) = self.cache.take(dev, size_B, kflags) {
                let inner = BoInner::new(dev.clone(), handle, bucket_B, kflags, Origin::Cached);
                self.insert_private(&inner);
                return Ok(Bo(inner));
            }
        }
        // Cacheable buffers get their bucket's size so any later request of that bucket fits.
        let alloc_B = match cacheable
            .then(|| super::cache::bucket_size(size_B))
            .flatten()
        {
            Some(b) => b,
            None => size_B,
        };
        let handle = ioctl::gem_new(dev.kernel(), alloc_B, kflags)?;
        let origin = if flags.contains(BoFlags::SHARED) {
            Origin::NewShared
        } else {
            Origin::New
        };
        let size_B = alloc_B.next_multiple_of(4096);
        let inner = BoInner::new(dev.clone(), handle, size_B, kflags, origin);
        self.insert_private(&inner);
        Ok(Bo(inner))
    }

    /// PRIME import with dedupe (see the module comment for why it is race-free).
    pub(super) fn import(&self, dev: &Arc<Device>, fd: BorrowedFd<'_>) -> Result<Bo, BoError> {
        let raw = fd.as_raw_fd();
        // The size, read before any lock: lseek(fd, 0, SEEK_END), then back to the start.
        // SAFETY: lseek on a borrowed, open fd; it only moves the file offset.
        let end = unsafe { libc::lseek(raw, 0, libc::SEEK_END) };
        // SAFETY: as above.
        unsafe { libc::lseek(raw, 0, libc::SEEK_SET) };
        let mut entries = self.entries();
        let handle = ioctl::prime_fd_to_handle(dev.kernel(), raw)?;
        if let Some(live) = entries.get(&handle).and_then(Weak::upgrade) {
            self.import_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Bo(live));
        }
        if entries.contains_key(&handle) {
            self.import_takeovers.fetch_add(1, Ordering::Relaxed);
        }
        if end <= 0 {
            // The kernel took the import but the size is unreadable: give the handle back.
            entries.remove(&handle);
            self.close(dev, handle);
            return Err(BoError::Invalid(format!(
                "dma-buf fd {raw}: lseek(SEEK_END) gave {end}, not a size"
            )));
        }
        let inner = BoInner::new(dev.clone(), handle, end as u64, 0, Origin::Imported);
        entries.insert(handle, Arc::downgrade(&inner));
        Ok(Bo(inner))
    }

    /// Marks `bo` shared before it is exported; from then on its release closes under the lock.
    pub(super) fn export(&self, bo: &BoInner) -> Result<std::os::fd::OwnedFd, BoError> {
        if bo.flags & crate::uapi::MSM_BO_NO_SHARE != 0 {
            return Err(BoError::NoShare { handle: bo.handle });
        }
        // Set under the table lock so a concurrent release (of another reference) sees it.
        {
            let _entries = self.entries();
            bo.set_shared();
        }
        Ok(ioctl::prime_handle_to_fd(bo.dev.kernel(), bo.handle)?)
    }
}
