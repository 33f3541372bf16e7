//! The buffer cache: freed private buffers wait here, MADVISE(DONTNEED), for a new request of the
//! same bucket and flags.
//!
//! Owns: the cached handles (closed by expiry, flush or device drop) and the reaper thread.
//! Locks: `BoCache::state` (a leaf: never held with the table lock, never across an ioctl);
//! `iova::Timelines::completed` is read under it for the idle check.
//!
//! - Buckets: one per page count up to 16 pages, then four per power of two (quarter steps) up to
//!   64 MiB; the bucket index is arithmetic on the size and the (bucket, flags) pair is one hash
//!   lookup, so finding a candidate is O(1). Flags must match exactly.
//! - Idle check: the oldest buffer of the bucket is taken only if every fence of its last use is
//!   in the device's fence book (`BoManager::timelines`), with no ioctl; otherwise the request is a
//!   miss (newer ones are busier still).
//! - MADVISE: DONTNEED when cached, WILLNEED when reused; `retained == 0` means the kernel purged
//!   it: the handle is closed and the buffer is never handed out.
//! - Expiry: a buffer cached longer than the maximum age (1 s by default) is closed by a reaper
//!   thread that runs while the cache is not empty, so expiry never waits for another free.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::buffer::BoInner;
use crate::iova::{Fence, Timelines};
use crate::kernel::ioctl;
use crate::uapi::{MSM_MADV_DONTNEED, MSM_MADV_WILLNEED};
use crate::Device;

const PAGE_B: u64 = 4096;
/// Buffers bigger than this are never cached.
pub const MAX_CACHED_SIZE_B: u64 = 64 << 20;
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(1);

/// Bucket index and bucket size of a request, `None` when too big to cache.
pub(crate) fn bucket(size_B: u64) -> Option<(u32, u64)> {
    let pages = size_B.div_ceil(PAGE_B).max(1);
    if pages * PAGE_B > MAX_CACHED_SIZE_B {
        return None;
    }
    if pages <= 16 {
        return Some(((pages - 1) as u32, pages * PAGE_B));
    }
    // Quarter steps between powers of two: 20, 24, 28, 32, 40, 48, 56, 64, 80, ... pages.
    let e = 63 - (pages - 1).leading_zeros() as u64; // floor(log2(pages - 1)) >= 4
    let step = 1u64 << (e - 2);
    let q = (pages - 1) >> (e - 2); // 4..=7
    let index = 16 + (e - 4) * 4 + (q - 4);
    Some((index as u32, (q + 1) * step * PAGE_B))
}

/// The size of the buffers of bucket `index` (the inverse of [`bucket`]), `None` past the last.
pub(crate) fn bucket_size_of_index(index: u32) -> Option<u64> {
    let size_B = if index < 16 {
        (index as u64 + 1) * PAGE_B
    } else {
        let (e, q) = (4 + (index as u64 - 16) / 4, 4 + (index as u64 - 16) % 4);
        (q + 1) * (1u64 << (e - 2)) * PAGE_B
    };
    (size_B <= MAX_CACHED_SIZE_B).then_some(size_B)
}

/// The size a cacheable buffer of `size_B` is created with (its bucket's), `None` if uncacheable.
pub(super) fn bucket_size(size_B: u64) -> Option<u64> {
    bucket(size_B).map(|(_, b)| b)
}

#[derive(Debug)]
struct Cached {
    handle: u32,
    size_B: u64,
    fences: Vec<Fence>,
    since: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// (bucket, MSM_BO_* flags) -> buffers, oldest first.
    buckets: HashMap<(u32, u32), VecDeque<Cached>>,
    count: usize,
    reaper_running: bool,
}

/// Counters of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Buffers cached now.
    pub cached: usize,
    pub hits: u64,
    pub misses: u64,
    /// Reuse attempts that found the buffer purged (closed, never handed out).
    pub purged: u64,
    /// Buffers closed because they were cached too long.
    pub expired: u64,
}

#[derive(Debug)]
pub(crate) struct BoCache {
    state: Mutex<State>,
    /// Nanoseconds; 0 disables the cache.
    max_age_ns: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    purged: AtomicU64,
    expired: AtomicU64,
}

impl Default for BoCache {
    fn default() -> Self {
        BoCache {
            state: Mutex::default(),
            max_age_ns: AtomicU64::new(DEFAULT_MAX_AGE.as_nanos() as u64),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            purged: AtomicU64::new(0),
            expired: AtomicU64::new(0),
        }
    }
}

impl BoCache {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn max_age(&self) -> Duration {
        Duration::from_nanos(self.max_age_ns.load(Ordering::Relaxed))
    }

    pub(super) fn enabled(&self) -> bool {
        self.max_age_ns.load(Ordering::Relaxed) != 0
    }

    pub(super) fn set_max_age(&self, age: Duration) {
        self.max_age_ns.store(
            age.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            cached: self.state().count,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            purged: self.purged.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
        }
    }

    /// Parks a released private buffer. Returns its handle back when it cannot be cached (the
    /// caller closes it).
    pub(super) fn put(&self, bo: &BoInner, dev: &Arc<Device>) -> Option<u32> {
        let Some((index, bucket_B)) = bucket(bo.size_B) else {
            return Some(bo.handle);
        };
        if !self.enabled() || bucket_B != bo.size_B {
            return Some(bo.handle);
        }
        // DONTNEED first, with no lock held: from now on the kernel may purge it.
        if ioctl::gem_madvise(dev.kernel(), bo.handle, MSM_MADV_DONTNEED).is_err() {
            return Some(bo.handle);
        }
        let spawn = {
            let mut st = self.state();
            st.buckets
                .entry((index, bo.flags))
                .or_default()
                .push_back(Cached {
                    handle: bo.handle,
                    size_B: bo.size_B,
                    fences: bo.fences(),
                    since: Instant::now(),
                });
            st.count += 1;
            !std::mem::replace(&mut st.reaper_running, true)
        };
        if spawn {
            let weak = Arc::downgrade(dev);
            let period =
                (self.max_age() / 4).clamp(Duration::from_millis(1), Duration::from_millis(250));
            let spawned = std::thread::Builder::new()
                .name("msmws-bo-cache".into())
                .spawn(move || reaper(weak, period));
            if spawned.is_err() {
                // No thread: expiry falls back to the next take/put; say so in the state.
                self.state().reaper_running = false;
            }
        }
        None
    }

    /// An idle cached buffer of `size_B`'s bucket with exactly `flags`, made WILLNEED; its
    /// handle and size. Purged ones met on the way are closed.
    pub(super) fn take(&self, dev: &Device, size_B: u64, flags: u32) -> Option<(u32, u64)> {
        let (index, _) = bucket(size_B)?;
        self.expire(dev);
        let timelines: &Timelines = dev.bo_manager().timelines();
        loop {
            let c = {
                let mut st = self.state();
                let q = st.buckets.get_mut(&(index, flags))?;
                let idle = q
                    .front()
                    .is_some_and(|c| c.fences.iter().all(|f| timelines.is_signalled(*f)));
                if !idle {
                    self.misses.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                let c = q.pop_front().expect("front exists");
                if q.is_empty() {
                    st.buckets.remove(&(index, flags));
                }
                st.count -= 1;
                c
            };
            match ioctl::gem_madvise(dev.kernel(), c.handle, MSM_MADV_WILLNEED) {
                Ok(true) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Some((c.handle, c.size_B));
                }
                // Purged (or gone): its contents are lost for good; close it and look again.
                _ => {
                    self.purged.fetch_add(1, Ordering::Relaxed);
                    dev.bo_manager().close(dev, c.handle);
                }
            }
        }
    }

    /// Closes every buffer cached longer than the maximum age. Returns whether the cache is empty.
    pub(super) fn expire(&self, dev: &Device) -> bool {
        let max_age = self.max_age();
        let now = Instant::now();
        let (old, empty) = {
            let mut st = self.state();
            let mut old = Vec::new();
            st.buckets.retain(|_, q| {
                while q
                    .front()
                    .is_some_and(|c| now.duration_since(c.since) >= max_age)
                {
                    old.push(q.pop_front().expect("front exists").handle);
                }
                !q.is_empty()
            });
            st.count -= old.len();
            (old, st.count == 0)
        };
        let n = old.len() as u64;
        for h in old {
            dev.bo_manager().close(dev, h);
        }
        // Counted once closed: whoever sees the count sees the handles gone.
        self.expired.fetch_add(n, Ordering::Relaxed);
        empty
    }

    /// Closes every cached buffer.
    pub(super) fn flush(&self, dev: &Device) {
        let all: Vec<u32> = {
            let mut st = self.state();
            st.count = 0;
            st.buckets
                .drain()
                .flat_map(|(_, q)| q.into_iter().map(|c| c.handle))
                .collect()
        };
        for h in all {
            dev.bo_manager().close(dev, h);
        }
    }

    /// The reaper's exit test, under the lock `put` decides to spawn under.
    fn reaper_may_exit(&self) -> bool {
        let mut st = self.state();
        if st.count == 0 {
            st.reaper_running = false;
            true
        } else {
            false
        }
    }
}

/// Expires cached buffers every `period` while the device lives and the cache is not empty.
fn reaper(dev: Weak<Device>, period: Duration) {
    loop {
        std::thread::sleep(period);
        let Some(dev) = dev.upgrade() else { return };
        let cache = &dev.bo_manager().cache;
        cache.expire(&dev);
        if cache.reaper_may_exit() {
            return;
        }
    }
}
