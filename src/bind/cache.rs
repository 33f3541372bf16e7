//! The free-buffer cache of a [`super::GpuVm`]: a freed private buffer keeps its GEM handle and
//! its GPU address (its mapping, in every mode) and waits here for a new request of the same
//! flags and a close size, so a buffer reused from it costs no ioctl at all.
//!
//! Owns: the cached buffers (each with the users its free named) and their ages. Locks: none of
//! its own; the `GpuVm` keeps it behind one mutex (a leaf: never held across an ioctl or a wait).
//!
//! - Sizes: the buckets of the device's buffer cache (`crate::bo::cache`): a cacheable request is
//!   made at its bucket's size, and is served by a cached buffer of its bucket or of a larger one
//!   up to 1.5 times the bucket's size, so mixed sizes still meet a match.
//! - Reuse only after the free's users are done, as the fence book knows them: the caller
//!   supplies the idle test, and refreshes the book at most once per submit when a candidate
//!   looks busy (see `GpuVm::create_buffer_at`).
//! - MADVISE lazily: a buffer cached longer than [`ADVISE_AGE`] (250 ms) is made DONTNEED (the
//!   kernel may purge it under memory pressure) and WILLNEED again on reuse, once no free has come
//!   for that long (while frees keep coming the cache turns over: a teardown of 100k buffers made
//!   7,729 DONTNEED calls on buffers the budget freed next); a young buffer costs nothing.
//! - Expiry: a buffer cached longer than [`MAX_AGE`], or the oldest ones while the cache holds
//!   more than [`BUDGET_B`], are freed for real (unmapped after their users, handle closed).
//!   The checks run on the `GpuVm`'s create and free calls, at most every [`CHECK_PERIOD`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::gpu_vm::GpuBuffer;
use crate::kernel::ioctl::SyncPoint;

/// A cached buffer older than this is made DONTNEED.
pub const ADVISE_AGE: Duration = Duration::from_millis(250);
/// A cached buffer older than this is freed.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Bytes the cache may hold; past it the oldest buffers are freed.
pub const BUDGET_B: u64 = 256 << 20;
/// How often the age checks run (they look at the oldest buffer of each bucket).
pub const CHECK_PERIOD: Duration = Duration::from_millis(10);

/// A freed buffer waiting for reuse.
#[derive(Debug)]
pub struct Cached {
    pub buf: GpuBuffer,
    pub flags: u32,
    /// The fences its free named: reuse waits for all of them.
    pub users: Vec<SyncPoint>,
    since: Instant,
    /// Made DONTNEED: WILLNEED before reuse, which may find it purged.
    pub advised: bool,
}

/// Counters of the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmCacheStats {
    pub cached: u64,
    pub cached_B: u64,
    pub hits: u64,
    pub misses: u64,
    /// Reuses that found the buffer purged by the kernel (freed, never handed out).
    pub purged: u64,
    /// Buffers freed for age or budget.
    pub expired: u64,
    /// MADVISE(DONTNEED) calls.
    pub advised: u64,
}

#[derive(Debug, Default)]
pub struct VmCache {
    /// (bucket, MSM_BO_* flags) -> buffers, oldest first.
    buckets: HashMap<(u32, u32), VecDeque<Cached>>,
    next_check: Option<Instant>,
    /// The last `put`: while frees keep coming the cache is turning over (reused or pushed out by
    /// the budget soon), and a DONTNEED would be a wasted ioctl.
    last_put: Option<Instant>,
    pub stats: VmCacheStats,
}

/// The size a cacheable request of `size_B` is made with, and its bucket; `None` if uncacheable.
pub fn bucket_of(size_B: u64) -> Option<(u32, u64)> {
    crate::bo::cache::bucket(size_B)
}

impl VmCache {
    /// Parks `buf` (bucket-sized, private, placed anywhere) freed with `users`.
    pub fn put(&mut self, buf: GpuBuffer, flags: u32, users: &[SyncPoint]) {
        let Some((index, _)) = bucket_of(buf.size_B) else {
            return;
        };
        self.stats.cached += 1;
        self.stats.cached_B += buf.size_B;
        let now = Instant::now();
        self.last_put = Some(now);
        self.buckets
            .entry((index, flags))
            .or_default()
            .push_back(Cached {
                buf,
                flags,
                users: users.to_vec(),
                since: now,
                advised: false,
            });
    }

    /// The oldest buffer with `flags` whose users `idle` says are done, of `size_B`'s bucket or a
    /// larger one up to 1.5 times its size. `None` (a miss) when every candidate is busy.
    pub fn take(
        &mut self,
        size_B: u64,
        flags: u32,
        idle: impl Fn(&[SyncPoint]) -> bool,
    ) -> Option<Cached> {
        let (first, bucket_B) = bucket_of(size_B)?;
        let limit_B = bucket_B + bucket_B / 2;
        let mut index = first;
        while bucket_size_of(index).is_some_and(|b| b <= limit_B) {
            let key = (index, flags);
            if let Some(q) = self.buckets.get_mut(&key) {
                if q.front().is_some_and(|c| idle(&c.users)) {
                    let c = q.pop_front().expect("front exists");
                    if q.is_empty() {
                        self.buckets.remove(&key);
                    }
                    self.stats.cached -= 1;
                    self.stats.cached_B -= c.buf.size_B;
                    self.stats.hits += 1;
                    return Some(c);
                }
            }
            index += 1;
        }
        self.stats.misses += 1;
        None
    }

    /// The timelines the oldest candidates for a request of `size_B` and `flags` wait on: what a
    /// refresh of the fence book must ask about.
    pub fn candidate_timelines(&self, size_B: u64, flags: u32) -> Vec<u32> {
        let Some((first, bucket_B)) = bucket_of(size_B) else {
            return vec![];
        };
        let limit_B = bucket_B + bucket_B / 2;
        let mut handles: Vec<u32> = (first..)
            .take_while(|&i| bucket_size_of(i).is_some_and(|b| b <= limit_B))
            .filter_map(|i| self.buckets.get(&(i, flags))?.front())
            .flat_map(|c| c.users.iter().filter(|u| u.point != 0).map(|u| u.handle))
            .collect();
        handles.sort_unstable();
        handles.dedup();
        handles
    }

    /// Whether the age checks are due (at most every [`CHECK_PERIOD`], or over the budget).
    pub fn due(&self, now: Instant) -> bool {
        self.stats.cached_B > BUDGET_B || self.next_check.is_none_or(|t| now >= t)
    }

    /// The age checks: returns the handles to make DONTNEED now (marked advised) and the buffers
    /// to free for real (too old, or the oldest while over the budget).
    pub fn maintain(&mut self, now: Instant) -> (Vec<u32>, Vec<Cached>) {
        self.next_check = Some(now + CHECK_PERIOD);
        let (mut advise, mut free) = (Vec::new(), Vec::new());
        self.buckets.retain(|_, q| {
            while q
                .front()
                .is_some_and(|c| now.duration_since(c.since) >= MAX_AGE)
            {
                free.push(q.pop_front().expect("front exists"));
            }
            !q.is_empty()
        });
        for c in &free {
            self.stats.cached -= 1;
            self.stats.cached_B -= c.buf.size_B;
        }
        // Over the budget first: a buffer about to be freed is not worth a DONTNEED.
        while self.stats.cached_B > BUDGET_B {
            let Some(c) = self.pop_oldest() else { break };
            free.push(c);
        }
        // Each bucket is oldest first and is advised from its front, so the advised buffers and
        // the old enough ones are two prefixes: two binary searches, then only the new ones.
        let turning_over = self
            .last_put
            .is_some_and(|t| now.duration_since(t) < ADVISE_AGE);
        for q in self.buckets.values_mut().filter(|_| !turning_over) {
            let advised = q.partition_point(|c| c.advised);
            let old = q.partition_point(|c| now.duration_since(c.since) >= ADVISE_AGE);
            for c in q.range_mut(advised..old.max(advised)) {
                c.advised = true;
                advise.push(c.buf.handle);
            }
        }
        self.stats.expired += free.len() as u64;
        self.stats.advised += advise.len() as u64;
        (advise, free)
    }

    /// Takes every cached buffer out (teardown).
    pub fn drain(&mut self) -> Vec<Cached> {
        self.stats.cached = 0;
        self.stats.cached_B = 0;
        self.buckets.drain().flat_map(|(_, q)| q).collect()
    }

    fn pop_oldest(&mut self) -> Option<Cached> {
        let key = *self
            .buckets
            .iter()
            .filter_map(|(k, q)| q.front().map(|c| (k, c.since)))
            .min_by_key(|&(_, since)| since)?
            .0;
        let q = self.buckets.get_mut(&key)?;
        let c = q.pop_front()?;
        if q.is_empty() {
            self.buckets.remove(&key);
        }
        self.stats.cached -= 1;
        self.stats.cached_B -= c.buf.size_B;
        Some(c)
    }
}

/// The size of bucket `index`'s buffers, `None` past the largest.
fn bucket_size_of(index: u32) -> Option<u64> {
    crate::bo::cache::bucket_size_of_index(index)
}
