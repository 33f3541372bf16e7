//! The driver-facing GPU memory API, the same in all three kernel modes: create a buffer at an
//! address, free it once the submits that used it are done, submit commands by address.
//!
//! Owns: the address allocator and, per mode, either a [`BindVm`] (VM_BIND) or the legacy state
//! (the incremental BO table and the zombie list). Locks: `GpuVm::legacy` (one mutex) in the
//! legacy modes, the `BindVm`'s own lock in VM_BIND mode; neither is held while waiting.
//!
//! - VM_BIND: buffers get an address from the allocator and a MAP queued on the [`BindVm`];
//!   freeing queues the UNMAP and returns the address once that unmap is ordered.
//! - Userspace iova (SET_IOVA, UAPI 1.6-1.12): GEM_NEW + SET_IOVA at an allocator address.
//! - Kernel iova: GEM_NEW + GET_IOVA.
//!
//! In both legacy modes a freed buffer becomes a zombie until the submits that used it are done;
//! one reclaim pass (before a submit, or on flush) learns that with one SYNCOBJ_QUERY per
//! timeline, not one WAIT_FENCE per buffer, then closes the handle (which takes its mapping with
//! it; SET_IOVA(0) is needed only for a shared buffer, whose object outlives the handle) and frees
//! the address. The BO table a legacy submit needs is kept incrementally: O(1) per create and
//! free, never rebuilt from every buffer per submit.
//!
//! With the free-buffer cache on ([`GpuVm::enable_cache`], `super::cache`), a freed private
//! buffer placed anywhere keeps its handle and its mapping and is handed out again by a later
//! create of the same flags and a close size once its users are done: no ioctl either way. The
//! cache's lock (`GpuVm::cache`) is a leaf, never held with `legacy` nor across an ioctl.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::cache::{bucket_of, Cached, VmCache, VmCacheStats};
use super::op::BindOp;
use super::vm::{BindError, BindVm};
use crate::bo::Bo;
use crate::iova::{AllocFlags, Fence, Timelines, VaHeap};
use crate::kernel::ioctl::{self, BoTable, Fences, SyncPoint, TableCmd};
use crate::kernel::{Kernel, KernelError};
use crate::uapi::*;
use crate::{Device, Errno, VmMode};

/// Pending binds past this many are flushed without waiting for a submit: the planning cost and
/// the memory of a pending list stay bounded, and a job still fits the kernel's budget after
/// merging.
pub const PENDING_OPS_BUDGET: usize = 4096;

/// Where a new buffer's address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The lowest hole that fits (ordinary buffers).
    Any,
    /// The highest hole that fits: buffers whose addresses an app may capture and replay, kept
    /// away from ordinary ones so a replay finds their addresses free.
    Top,
    /// Exactly this address (a replayed capture).
    At(u64),
}

/// How long a replayed address waits for the frees still holding it (stock turnip: 3 s).
pub const REPLAY_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits for the fences of freed address ranges on the kernel: syncobj points with
/// SYNCOBJ_TIMELINE_WAIT, queue seqnos with WAIT_FENCE.
struct KernelFences<'a>(&'a dyn Kernel);

impl crate::iova::FenceWait for KernelFences<'_> {
    fn wait(&self, fence: Fence, timeout: std::time::Duration) -> Result<(), Errno> {
        let timeout_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        match fence {
            Fence::Syncobj { handle, point } => {
                let deadline = ioctl::monotonic_now_ns()
                    .saturating_add(timeout_ns)
                    .min(i64::MAX as u64);
                ioctl::syncobj_timeline_wait(
                    self.0,
                    &[SyncPoint { handle, point }],
                    deadline as i64,
                )
            }
            Fence::Queue { queue_id, seqno } => {
                ioctl::wait_fence(self.0, queue_id, seqno, timeout_ns)
            }
        }
        .map_err(|e| match e.errno {
            Errno::ETIME => Errno::ETIMEDOUT,
            other => other,
        })
    }
}

/// Kernel-iova mode: freed buffers waiting for their users (each holding its object's memory)
/// before a submit or an import reclaims them; see `GpuVm::reclaim_due`.
const KERNEL_IOVA_ZOMBIES: usize = 32;
const KERNEL_IOVA_ZOMBIES_B: u64 = 64 << 20;

/// A GPU buffer with its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuBuffer {
    pub handle: u32,
    pub iova: u64,
    pub size_B: u64,
}

#[derive(Debug)]
struct Zombie {
    buf: GpuBuffer,
    users: Vec<SyncPoint>,
    shared: bool,
    /// A buffer of the sharing layer: its `Bo` owns the handle, so reclaim unmaps and lets go of
    /// this reference instead of closing the handle.
    bo: Option<Bo>,
}

impl Legacy {
    /// Adds a buffer to the BO table (O(1)) and the address index.
    fn remember(&mut self, buf: GpuBuffer) {
        self.table.insert(buf.handle, buf.iova);
        self.by_iova.insert(buf.iova, buf);
    }

    /// Takes a buffer out of the BO table (O(1)) and the address index.
    fn forget(&mut self, buf: &GpuBuffer) {
        self.table.remove(buf.handle);
        self.by_iova.remove(&buf.iova);
    }

    /// Kernel-iova mode: the kernel just gave `[iova, iova + size_B)` to the object `handle`, so
    /// every other buffer this VM had there has lost its mapping (see [`Legacy::lost`]). They
    /// leave the BO table and the address index, and wait in `lost` for the driver's free or
    /// unmap.
    fn evict_overlapping(&mut self, handle: u32, iova: u64, size_B: u64) {
        let end = iova.saturating_add(size_B);
        // Live mappings do not overlap, so their ends are sorted as their starts are.
        let stale: Vec<GpuBuffer> = self
            .by_iova
            .range(..end)
            .rev()
            .take_while(|(_, b)| b.iova + b.size_B > iova)
            .map(|(_, b)| *b)
            .filter(|b| b.handle != handle)
            .collect();
        for b in stale {
            self.forget(&b);
            let bo = self.mapped_bos.remove(&b.iova);
            if self.shared_at.get(&b.handle) == Some(&b.iova) {
                self.shared_at.remove(&b.handle);
            }
            self.lost.insert((b.iova, b.handle), (b, bo));
        }
    }
}

#[derive(Debug, Default)]
struct Legacy {
    /// The BO table submits pass.
    table: BoTable,
    /// Buffers by address, to turn a command's address into (table index, offset).
    by_iova: BTreeMap<u64, GpuBuffer>,
    zombies: Vec<Zombie>,
    /// Buffers of the sharing layer mapped through `map_bo`, by address.
    mapped_bos: HashMap<u64, Bo>,
    /// Legacy modes: the address of each object of the sharing layer that has one in this VM
    /// (mapped, or unmapped but not yet reclaimed), by handle; 0 while a `map_bo` places it.
    /// The kernel gives an object one address per VM (see `GpuVm::map_bo`).
    shared_at: HashMap<u32, u64>,
    /// Kernel-iova mode: buffers whose mapping the kernel took away, by address and handle, with
    /// their `Bo` for a `map_bo` one. Without per-process page tables every file shares one VM,
    /// and a handle close in any file unmaps the object there for all of them (msm_gem_close ->
    /// put_iova_spaces on the file's VM): a buffer imported here loses its address when its
    /// exporter closes its own handle, and GET_IOVA hands that address to the next object. The
    /// driver still frees or unmaps these; that only releases the handle.
    lost: HashMap<(u64, u32), (GpuBuffer, Option<Bo>)>,
    /// Reclaim statistics: passes and handles closed.
    reclaim_passes: u64,
    reclaimed: u64,
}

/// GPU memory of one device file, in whatever mode the probe chose.
pub struct GpuVm {
    mode: VmMode,
    /// The device's book of completed fences (what the buffer cache's idle check reads), and the
    /// syncobjs this VM's submits signal: each flush learns how far they got, one query each.
    fence_book: Arc<Timelines>,
    watched: Mutex<Vec<u32>>,
    /// The VM's own timeline syncobj and its last point: the fences of frees' users the driver
    /// may destroy are transferred there (`own_users`). Made at first need, destroyed with the VM.
    own_timeline: Mutex<Option<(u32, u64)>>,
    /// None in kernel-iova mode (the kernel picks addresses).
    heap: Option<VaHeap>,
    bind: Option<BindVm>,
    /// VM_BIND mode: the buffers of [`Self::create_buffer`] not yet freed, by address, so a free
    /// must name one of them (the legacy modes keep `Legacy::by_iova` for their BO table).
    live: Mutex<HashMap<u64, GpuBuffer>>,
    legacy: Mutex<Legacy>,
    cache: Mutex<CacheState>,
    /// Submits so far, and the count and time (ns since `born`) of the last refresh of the fence
    /// book for the cache: a busy-looking candidate refreshes it at most once per submit, or
    /// once per [`REFRESH_PERIOD`] while no submit comes.
    submits: std::sync::atomic::AtomicU64,
    refreshed_at: std::sync::atomic::AtomicU64,
    refreshed_ns: std::sync::atomic::AtomicU64,
    born: std::time::Instant,
}

/// How often the cache may ask how far the GPU got when no submit has happened since it last
/// asked (a frame's allocations then share one query).
const REFRESH_PERIOD: std::time::Duration = std::time::Duration::from_millis(2);

/// The free-buffer cache and what it needs to know of live buffers.
#[derive(Debug, Default)]
struct CacheState {
    on: bool,
    cache: VmCache,
    /// Indexed by GEM handle: `CACHEABLE | flags` for a live buffer the cache may take when it is
    /// freed (private, placed anywhere, bucket-sized), 0 otherwise. Handles are small and dense.
    cacheable: Vec<u32>,
}

const CACHEABLE: u32 = 1 << 31;

impl CacheState {
    fn mark(&mut self, handle: u32, flags: u32) {
        let i = handle as usize;
        if self.cacheable.len() <= i {
            self.cacheable.resize(i + 1, 0);
        }
        self.cacheable[i] = CACHEABLE | flags;
    }

    /// The flags of `handle` if the cache may take it; clears the mark either way.
    fn unmark(&mut self, handle: u32) -> Option<u32> {
        let v = std::mem::take(self.cacheable.get_mut(handle as usize)?);
        (v & CACHEABLE != 0).then_some(v & !CACHEABLE)
    }
}

/// Whether every user is a timeline point the fence book has seen signal.
fn users_done(book: &Timelines, users: &[SyncPoint]) -> bool {
    users.iter().all(|u| {
        u.point != 0
            && book.is_signalled(Fence::Syncobj {
                handle: u.handle,
                point: u.point,
            })
    })
}

/// Waits for `points` until [`REPLAY_WAIT`] from now. Running out of time is not an error: the
/// caller's allocation then reports the space as taken.
fn wait_at_most_replay(k: &dyn Kernel, points: &[SyncPoint]) -> Result<(), BindError> {
    if points.is_empty() {
        return Ok(());
    }
    let deadline = ioctl::monotonic_now_ns().saturating_add(REPLAY_WAIT.as_nanos() as u64);
    match ioctl::syncobj_timeline_wait(k, points, deadline.min(i64::MAX as u64) as i64) {
        Err(e) if e.errno == Errno::ETIME || e.errno == Errno::ETIMEDOUT => Ok(()),
        r => r.map_err(kerr),
    }
}

fn kerr(e: KernelError) -> BindError {
    BindError::Kernel(e)
}

impl std::fmt::Debug for GpuVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuVm")
            .field("mode", &self.mode)
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

impl GpuVm {
    /// GPU memory for `dev` in the mode its probe chose.
    pub fn new(dev: &Device) -> Result<GpuVm, BindError> {
        let info = dev.info();
        let heap = match info.mode {
            VmMode::KernelIova => None,
            _ => Some(VaHeap::new(info.va_start, info.va_size_B).map_err(|e| {
                kerr(KernelError {
                    errno: Errno::EINVAL,
                    call: format!("address heap: {e}"),
                })
            })?),
        };
        let bind = match info.mode {
            VmMode::VmBind => Some(BindVm::new(super::KERNEL_THROTTLE_PAGES)),
            _ => None,
        };
        Ok(GpuVm {
            mode: info.mode,
            fence_book: dev.bo_manager().timelines().clone(),
            watched: Mutex::default(),
            own_timeline: Mutex::default(),
            heap,
            bind,
            live: Mutex::default(),
            legacy: Mutex::default(),
            cache: Mutex::default(),
            submits: Default::default(),
            refreshed_at: Default::default(),
            refreshed_ns: Default::default(),
            born: std::time::Instant::now(),
        })
    }

    /// Turns the free-buffer cache on (see the module docs); off by default.
    pub fn enable_cache(&self) {
        self.cache().on = true;
    }

    /// The free-buffer cache's counters.
    pub fn cache_stats(&self) -> VmCacheStats {
        self.cache().cache.stats
    }

    fn cache(&self) -> MutexGuard<'_, CacheState> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A cached buffer for a request of `size_B` (a bucket size) and `flags` whose users are
    /// done, made WILLNEED again if it had been advised; `None` on a miss. The fence book is
    /// refreshed (one SYNCOBJ_QUERY per timeline the candidates name) at most once per submit.
    fn reuse(&self, k: &dyn Kernel, size_B: u64, flags: u32) -> Option<GpuBuffer> {
        let mut refreshed = false;
        loop {
            let taken = {
                let mut st = self.cache();
                let book = &self.fence_book;
                st.cache.take(size_B, flags, |u| users_done(book, u))
            };
            let c = match taken {
                Some(c) => c,
                None => {
                    if refreshed || !self.may_refresh() {
                        return None;
                    }
                    let handles = self.cache().cache.candidate_timelines(size_B, flags);
                    if handles.is_empty() {
                        return None;
                    }
                    for h in handles {
                        if let Ok(point) = ioctl::syncobj_query(k, h) {
                            self.fence_book.signal_syncobj(h, point);
                        }
                    }
                    refreshed = true;
                    continue;
                }
            };
            if c.advised {
                match ioctl::gem_madvise(k, c.buf.handle, MSM_MADV_WILLNEED) {
                    Ok(true) => {}
                    // Purged (or refused): its pages are gone; free it for real, look again.
                    _ => {
                        self.cache().cache.stats.purged += 1;
                        self.release(k, c);
                        continue;
                    }
                }
            }
            self.cache().mark(c.buf.handle, c.flags);
            if self.bind.is_none() {
                self.legacy().remember(c.buf);
            } else {
                self.live().insert(c.buf.iova, c.buf);
            }
            return Some(c.buf);
        }
    }

    /// Whether the fence book may be refreshed now (a submit since the last refresh, or
    /// [`REFRESH_PERIOD`] gone by); if so, records the refresh.
    fn may_refresh(&self) -> bool {
        use std::sync::atomic::Ordering;
        let n = self.submits.load(Ordering::Relaxed);
        let now_ns = self.born.elapsed().as_nanos() as u64;
        let last_ns = self.refreshed_ns.load(Ordering::Relaxed);
        let stale = now_ns.saturating_sub(last_ns) >= REFRESH_PERIOD.as_nanos() as u64;
        if self.refreshed_at.load(Ordering::Relaxed) == n && !stale {
            return false;
        }
        self.refreshed_at.store(n, Ordering::Relaxed);
        self.refreshed_ns.store(now_ns, Ordering::Relaxed);
        true
    }

    /// Frees a buffer the cache gave up for real: unmapped after its users, handle closed.
    fn release(&self, k: &dyn Kernel, c: Cached) {
        match &self.bind {
            Some(vm) => {
                vm.unmap_freed(c.buf.iova, c.buf.size_B, &c.users);
                // EINVAL only (a handle that is not ours): nothing to retry.
                let _ = ioctl::gem_close(k, c.buf.handle);
            }
            None => self.bury(c.buf, &c.users, false, None),
        }
    }

    /// The cache's age and budget checks (see `super::cache`), when due.
    fn maintain_cache(&self, k: &dyn Kernel) {
        let now = std::time::Instant::now();
        let (advise, free) = {
            let mut st = self.cache();
            if !st.on || !st.cache.due(now) {
                return;
            }
            st.cache.maintain(now)
        };
        for h in advise {
            // Best effort: a buffer left WILLNEED is only not purgeable.
            let _ = ioctl::gem_madvise(k, h, MSM_MADV_DONTNEED);
        }
        for c in free {
            self.release(k, c);
        }
    }

    pub fn mode(&self) -> VmMode {
        self.mode
    }

    /// The VM_BIND state, in VM_BIND mode.
    pub fn bind_vm(&self) -> Option<&BindVm> {
        self.bind.as_ref()
    }

    /// The address allocator (None in kernel-iova mode), for tests and debugging that compare
    /// its live ranges with the kernel's view of the VM.
    pub fn va_heap(&self) -> Option<&VaHeap> {
        self.heap.as_ref()
    }

    fn legacy(&self) -> MutexGuard<'_, Legacy> {
        self.legacy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new buffer of `size_B` bytes (`MSM_BO_*` flags), mapped at an address.
    pub fn create_buffer(
        &self,
        k: &dyn Kernel,
        size_B: u64,
        flags: u32,
    ) -> Result<GpuBuffer, BindError> {
        self.create_buffer_at(k, size_B, flags, Placement::Any)
    }

    /// [`Self::create_buffer`] at an address chosen by `placement`. `Top` and `At` need an
    /// address allocator (EOPNOTSUPP in kernel-iova mode). An `At` address still held by a freed
    /// buffer whose users have not finished is EBUSY after one flush; one in use is EEXIST.
    pub fn create_buffer_at(
        &self,
        k: &dyn Kernel,
        size_B: u64,
        flags: u32,
        placement: Placement,
    ) -> Result<GpuBuffer, BindError> {
        if placement != Placement::Any && self.heap.is_none() {
            return Err(kerr(KernelError {
                errno: Errno::EOPNOTSUPP,
                call: "a chosen GPU address: the kernel picks addresses in this mode".into(),
            }));
        }
        let mut size_B = size_B.checked_next_multiple_of(4096).ok_or_else(|| {
            kerr(KernelError {
                errno: Errno::EINVAL,
                call: format!("buffer of {size_B:#x} bytes"),
            })
        })?;
        let cacheable = placement == Placement::Any && self.cache().on;
        if cacheable {
            self.maintain_cache(k);
            if let Some((_, bucket_B)) = bucket_of(size_B) {
                size_B = bucket_B;
                if let Some(buf) = self.reuse(k, size_B, flags) {
                    return Ok(buf);
                }
            }
        }
        if let Placement::At(iova) = placement {
            self.reserve_at(k, iova, size_B)?;
        }
        let handle = match ioctl::gem_new(k, size_B, flags) {
            Ok(h) => h,
            Err(e) => {
                if let (Placement::At(iova), Some(heap)) = (placement, &self.heap) {
                    heap.free(iova, size_B).ok();
                }
                return Err(kerr(e));
            }
        };
        let iova = match self.place(k, handle, size_B, placement) {
            Ok(iova) => iova,
            Err(e) => {
                ioctl::gem_close(k, handle).ok();
                // `place` gives back only addresses it took itself.
                if let (Placement::At(iova), Some(heap)) = (placement, &self.heap) {
                    heap.free(iova, size_B).ok();
                }
                return Err(e);
            }
        };
        let buf = GpuBuffer {
            handle,
            iova,
            size_B,
        };
        if self.bind.is_none() {
            self.legacy().remember(buf);
        } else {
            self.live().insert(iova, buf);
        }
        if cacheable && bucket_of(size_B).is_some_and(|(_, b)| b == size_B) {
            self.cache().mark(handle, flags);
        }
        Ok(buf)
    }

    fn live(&self) -> MutexGuard<'_, HashMap<u64, GpuBuffer>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A free naming no live buffer of [`Self::create_buffer`] (freed twice, made up, or a
    /// [`Self::map_bo`] buffer, which [`Self::unmap_bo`] releases): honouring it would unmap or
    /// close what now belongs to another buffer.
    fn not_live(buf: &GpuBuffer) -> BindError {
        kerr(KernelError {
            errno: Errno::EINVAL,
            call: format!(
                "free of handle {} at {:#x}+{:#x}: not a live buffer of this VM (freed twice?)",
                buf.handle, buf.iova, buf.size_B
            ),
        })
    }

    /// Frees `buf` once `users` (the submits that may still use it) are done. `shared`: the buffer
    /// was exported or imported, so its object may outlive the handle.
    ///
    /// A buffer that is not live in this VM (freed already, or never made by it) is EINVAL and
    /// changes nothing.
    pub fn free_buffer(
        &self,
        k: &dyn Kernel,
        buf: GpuBuffer,
        users: &[SyncPoint],
        shared: bool,
    ) -> Result<(), BindError> {
        let owned = self.own_users(k, users)?;
        let users = &owned[..];
        // Only a live buffer of this VM: one freed already (its address may be another buffer's
        // by now) or a `map_bo` one would unmap or close what is not the caller's.
        match &self.bind {
            Some(_) => {
                let mut live = self.live();
                if live.get(&buf.iova) != Some(&buf) {
                    return Err(Self::not_live(&buf));
                }
                live.remove(&buf.iova);
            }
            None => {
                let mut l = self.legacy();
                if let Some((b, None)) = l.lost.get(&(buf.iova, buf.handle)) {
                    if *b != buf {
                        return Err(Self::not_live(&buf));
                    }
                    l.lost.remove(&(buf.iova, buf.handle));
                    l.zombies.push(Zombie {
                        buf,
                        users: users.to_vec(),
                        shared,
                        bo: None,
                    });
                    return Ok(());
                }
                if l.by_iova.get(&buf.iova) != Some(&buf) || l.mapped_bos.contains_key(&buf.iova) {
                    return Err(Self::not_live(&buf));
                }
            }
        }
        let cached = {
            let mut st = self.cache();
            match st.unmark(buf.handle) {
                Some(flags) if st.on && !shared => {
                    st.cache.put(buf, flags, users);
                    true
                }
                _ => false,
            }
        };
        if cached {
            if self.bind.is_none() {
                // Out of the BO table: a DONTNEED buffer must not be in a submit's.
                self.legacy().forget(&buf);
            }
            self.maintain_cache(k);
            return Ok(());
        }
        match &self.bind {
            Some(vm) => {
                vm.unmap_freed(buf.iova, buf.size_B, users);
                // The VMA holds the object; the handle is not needed any more (`unmap_freed`
                // dropped a MAP of it the kernel never took).
                ioctl::gem_close(k, buf.handle).map_err(kerr)?;
                Ok(())
            }
            None => {
                self.bury(buf, users, shared, None);
                Ok(())
            }
        }
    }

    /// The users a free waits for, as syncobjs this VM can count on until it is destroyed. Those
    /// its own submits signal (`watched`) are taken as they are. Any other is the driver's to
    /// destroy whenever it likes, and a free still waiting for it could then never be flushed or
    /// reclaimed, holding every later flush back: a point it has passed is dropped (one
    /// SYNCOBJ_QUERY), and one it has not passed (or a binary syncobj's fence) is transferred to
    /// the VM's own timeline (SYNCOBJ_TRANSFER, made at first need), so the free waits for the
    /// same fence through a syncobj nobody else destroys. A syncobj that does not exist, or a point
    /// with no fence yet, is refused and changes nothing (found by the c_abi fuzz target).
    fn own_users(&self, k: &dyn Kernel, users: &[SyncPoint]) -> Result<Vec<SyncPoint>, BindError> {
        let watched = self
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let refused = |u: &SyncPoint, e: KernelError| {
            kerr(KernelError {
                errno: e.errno,
                call: format!(
                    "a free waiting for syncobj {} point {} (no such syncobj, or no fence there \
                     yet?): {}",
                    u.handle, u.point, e.call
                ),
            })
        };
        let mut owned = Vec::with_capacity(users.len());
        for &u in users {
            if watched.contains(&u.handle) {
                owned.push(u);
                continue;
            }
            let done = ioctl::syncobj_query(k, u.handle).map_err(|e| refused(&u, e))?;
            if u.point != 0 && done >= u.point {
                continue;
            }
            let mut own = self.own_timeline.lock().unwrap_or_else(|p| p.into_inner());
            let (handle, last) = match *own {
                Some(t) => t,
                None => {
                    let h = ioctl::syncobj_create(k, false).map_err(kerr)?;
                    self.watched
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(h);
                    *own = Some((h, 0));
                    (h, 0)
                }
            };
            let to = SyncPoint {
                handle,
                point: last + 1,
            };
            ioctl::syncobj_transfer(k, u, to).map_err(|e| refused(&u, e))?;
            *own = Some((handle, to.point));
            owned.push(to);
        }
        Ok(owned)
    }

    /// Without VM_BIND: `buf` waits as a zombie until `users` are done ([`Zombie`]), holding
    /// `bo` until then if the VM mapped a shared `Bo`.
    fn bury(&self, buf: GpuBuffer, users: &[SyncPoint], shared: bool, bo: Option<Bo>) {
        let mut l = self.legacy();
        l.forget(&buf);
        // Kernel-iova mode: the object keeps its one address while any handle of this file names
        // it, and GET_IOVA gives that address again, so the object may be mapped again now; with
        // SET_IOVA its address stays set on it until the reclaim.
        if bo.is_some() && self.heap.is_none() && l.shared_at.get(&buf.handle) == Some(&buf.iova) {
            l.shared_at.remove(&buf.handle);
        }
        l.zombies.push(Zombie {
            buf,
            users: users.to_vec(),
            shared,
            bo,
        });
    }

    /// Gives the object `handle` of `size_B` bytes its address in this VM, as the mode does it:
    /// an allocator address and a queued MAP (VM_BIND), an allocator address and SET_IOVA, or the
    /// kernel's GET_IOVA.
    ///
    /// `Placement::At` addresses were reserved by [`Self::reserve_at`] already, and the caller
    /// gives them back if this fails.
    fn place(
        &self,
        k: &dyn Kernel,
        handle: u32,
        size_B: u64,
        placement: Placement,
    ) -> Result<u64, BindError> {
        let alloc = |heap: &VaHeap| {
            let flags = match placement {
                Placement::Any => AllocFlags::BOTTOM_UP,
                Placement::Top => AllocFlags::TOP_DOWN,
                Placement::At(iova) => return Ok(iova),
            };
            heap.alloc(size_B, 4096, flags).map_err(|e| {
                kerr(KernelError {
                    errno: Errno::ENOSPC,
                    call: format!("address for {size_B:#x} bytes: {e}"),
                })
            })
        };
        match (&self.bind, &self.heap) {
            (Some(vm), Some(heap)) => {
                let iova = match alloc(heap) {
                    Ok(iova) => iova,
                    Err(e) if !matches!(placement, Placement::At(_)) => {
                        self.make_room(k)?;
                        alloc(heap).map_err(|_| e)?
                    }
                    Err(e) => return Err(e),
                };
                vm.map(BindOp::map(iova, size_B, handle, 0));
                if vm.pending_ops() >= PENDING_OPS_BUDGET {
                    // Only bounds the pending list, so its failure does not fail the buffer:
                    // the map is queued (or planned) and the caller keeps the handle it names.
                    // Failing here made the caller close a handle a queued MAP still named. A
                    // refused send stays queued for the next flush or submit, which report
                    // the error (or the loss) themselves.
                    let _ = self.flush_with(k, false);
                }
                Ok(iova)
            }
            (None, Some(heap)) => {
                self.reclaim(k)?;
                let iova = alloc(heap)?;
                if let Err(e) = ioctl::gem_info_value(k, handle, MSM_INFO_SET_IOVA, iova) {
                    if !matches!(placement, Placement::At(_)) {
                        heap.free(iova, size_B).ok();
                    }
                    return Err(kerr(e));
                }
                Ok(iova)
            }
            _ => {
                let iova = ioctl::gem_info_value(k, handle, MSM_INFO_GET_IOVA, 0).map_err(kerr)?;
                self.legacy().evict_overlapping(handle, iova, size_B);
                Ok(iova)
            }
        }
    }

    /// Takes `[iova, iova + size_B)` from the allocator for a replayed buffer. A range held back
    /// by frees gets one flush (legacy modes: a reclaim pass) and then, for frees still waiting
    /// on their users or unmaps, a wait of at most [`REPLAY_WAIT`] for those fences before the
    /// answer is ETIMEDOUT: replay is debug tooling, and stock turnip waits for its zombies there
    /// too. A range of a live buffer (or of a zombie still in use) is EEXIST.
    fn reserve_at(&self, k: &dyn Kernel, iova: u64, size_B: u64) -> Result<(), BindError> {
        let heap = self.heap.as_ref().expect("checked by the caller");
        let va = |e: crate::iova::VaError| {
            kerr(KernelError {
                errno: crate::ErrnoError::errno(&e),
                call: format!("address {iova:#x} for {size_B:#x} bytes: {e}"),
            })
        };
        match heap.alloc_addr(iova, size_B) {
            // Deferred: freed ranges whose unmap is still pending get it sent, then the fences
            // in the way are waited for (the unmaps' bind jobs, the frees' users). Taken: in the
            // legacy modes a freed buffer holds its range until a reclaim pass closes it.
            Err(crate::iova::VaError::AddressDeferred { .. })
            | Err(crate::iova::VaError::AddressTaken { .. }) => {
                self.wait_for_zombies_in(k, iova, size_B)?;
                self.flush_with(k, true)?;
                heap.alloc_addr_wait(iova, size_B, &KernelFences(k), REPLAY_WAIT)
                    .map_err(va)
            }
            r => r.map_err(va),
        }
    }

    /// Legacy modes: waits (at most [`REPLAY_WAIT`]) for the users of the zombies overlapping
    /// `[iova, iova + size_B)`, so the next reclaim pass closes them and frees their ranges.
    fn wait_for_zombies_in(&self, k: &dyn Kernel, iova: u64, size_B: u64) -> Result<(), BindError> {
        let users: Vec<SyncPoint> = self
            .legacy()
            .zombies
            .iter()
            .filter(|z| z.buf.iova < iova + size_B && iova < z.buf.iova + z.buf.size_B)
            .flat_map(|z| z.users.iter().copied())
            .filter(|u| u.point != 0)
            .collect();
        // Timed out: the allocation after it reports the range as taken.
        wait_at_most_replay(k, &users)
    }

    /// Gives a buffer of the sharing layer (an imported or exported [`Bo`]) a GPU address in this
    /// VM. The VM keeps a reference on the `Bo` while it is mapped, so its handle cannot be closed
    /// under the mapping; release it with [`Self::unmap_bo`].
    ///
    /// Without VM_BIND an object has one address per VM: a buffer already mapped here (with
    /// SET_IOVA, also one unmapped until the reclaim after its users) is EBUSY, and the kernel is
    /// not asked. It must not be: SET_IOVA at a second address makes the kernel drop the first
    /// mapping and fail (msm_gem_set_iova), and GET_IOVA would hand out the first address again.
    pub fn map_bo(&self, k: &dyn Kernel, bo: &Bo) -> Result<GpuBuffer, BindError> {
        let (handle, size_B) = (bo.handle(), bo.size_B());
        let legacy = self.bind.is_none();
        if legacy {
            // Reclaim first: an unmapped buffer whose users are done gets its address back.
            self.reclaim_due(k)?;
            let mut l = self.legacy();
            if let Some(&iova) = l.shared_at.get(&handle) {
                let at = match iova {
                    0 => "being mapped by another thread".to_string(),
                    _ if self.heap.is_none() => format!("at {iova:#x} until it is unmapped"),
                    _ => format!("at {iova:#x} until it is unmapped and reclaimed"),
                };
                return Err(kerr(KernelError {
                    errno: Errno::EBUSY,
                    call: format!(
                        "a second address for handle {handle}: it has one in this VM, {at}, and \
                         without VM_BIND an object has one address per VM"
                    ),
                }));
            }
            l.shared_at.insert(handle, 0);
        }
        let iova = match self.place(k, handle, size_B, Placement::Any) {
            Ok(iova) => iova,
            Err(e) => {
                if legacy {
                    self.legacy().shared_at.remove(&handle);
                }
                return Err(e);
            }
        };
        let buf = GpuBuffer {
            handle,
            iova,
            size_B,
        };
        let mut l = self.legacy();
        if legacy {
            l.remember(buf);
            l.shared_at.insert(handle, iova);
        }
        l.mapped_bos.insert(iova, bo.clone());
        Ok(buf)
    }

    /// Takes back the address [`Self::map_bo`] gave, once `users` are done, and drops the VM's
    /// reference on the `Bo` then (the handle stays the `Bo`'s).
    ///
    /// `users` are taken as [`Self::free_buffer`] takes them: a syncobj that does not exist is
    /// refused before anything changes (found by the c_abi fuzz target: an unmap naming one made
    /// every later flush fail, and the mappings stayed until the file closed).
    pub fn unmap_bo(
        &self,
        k: &dyn Kernel,
        buf: GpuBuffer,
        users: &[SyncPoint],
    ) -> Result<(), BindError> {
        let owned = self.own_users(k, users)?;
        let users = &owned[..];
        let bo = {
            let mut l = self.legacy();
            // The same address may hold another shared buffer by now: only this one is removed.
            let this = l
                .mapped_bos
                .get(&buf.iova)
                .is_some_and(|bo| bo.handle() == buf.handle && bo.size_B() == buf.size_B);
            if !this {
                // Its mapping was taken away by the kernel (`Legacy::lost`): only the
                // reference goes, after the users.
                if let Some((b, Some(_))) = l.lost.get(&(buf.iova, buf.handle)) {
                    if *b == buf {
                        let (_, bo) = l.lost.remove(&(buf.iova, buf.handle)).expect("just read");
                        l.zombies.push(Zombie {
                            buf,
                            users: users.to_vec(),
                            shared: true,
                            bo,
                        });
                        return Ok(());
                    }
                }
            }
            this.then(|| l.mapped_bos.remove(&buf.iova)).flatten()
        };
        let Some(bo) = bo else {
            return Err(kerr(KernelError {
                errno: Errno::EINVAL,
                call: format!("no shared buffer mapped at {:#x}", buf.iova),
            }));
        };
        self.unmap_bo_now(buf, bo, users);
        Ok(())
    }

    fn unmap_bo_now(&self, buf: GpuBuffer, bo: Bo, users: &[SyncPoint]) {
        match &self.bind {
            // The VMA holds the object until the unmap runs; the Bo reference can go now.
            Some(vm) => {
                vm.unmap_freed(buf.iova, buf.size_B, users);
                drop(bo);
            }
            None => self.bury(buf, users, true, Some(bo)),
        }
    }

    /// MADVISE for a buffer a driver parks in its own cache (`willneed` false) or takes back
    /// (true); returns `retained` (false: purged, the contents are gone). The kernel pins no
    /// DONTNEED object (EBUSY, msm_gem_pin_pages_locked): in the legacy modes a parked buffer
    /// leaves the BO table every submit passes until taken back; in VM_BIND mode its MAP, if
    /// still queued, is sent before it is parked.
    pub fn madvise(
        &self,
        k: &dyn Kernel,
        buf: GpuBuffer,
        willneed: bool,
    ) -> Result<bool, BindError> {
        let madv = if willneed {
            MSM_MADV_WILLNEED
        } else {
            MSM_MADV_DONTNEED
        };
        if let Some(vm) = &self.bind {
            // VM_BIND refuses to map a DONTNEED object (EBUSY, the same pin): the buffer's MAP,
            // if still queued, goes to the kernel before the buffer is parked. Other pending ops
            // wait for the next submit or flush, as they would have.
            if !willneed && vm.maps_pending(buf.handle) {
                self.flush_ready(k)?;
            }
            return ioctl::gem_madvise(k, buf.handle, madv).map_err(kerr);
        }
        let mut l = self.legacy();
        let retained = ioctl::gem_madvise(k, buf.handle, madv).map_err(kerr)?;
        let known = l
            .by_iova
            .get(&buf.iova)
            .is_some_and(|b| b.handle == buf.handle);
        if !willneed {
            l.table.remove(buf.handle);
        } else if retained && known && l.table.index_of(buf.handle).is_none() {
            l.table.insert(buf.handle, buf.iova);
        }
        Ok(retained)
    }

    /// Tells the device's fence book how far the timelines this VM's submits signal have got (one
    /// SYNCOBJ_QUERY each, per flush, never per allocation), so the buffer cache sees a buffer
    /// with those fences as idle. Binary syncobjs report no points and are not watched.
    fn publish(&self, k: &dyn Kernel) -> Result<(), BindError> {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        // A syncobj the driver has destroyed since is simply no longer watched.
        watched.retain(|&h| match ioctl::syncobj_query(k, h) {
            Ok(point) => {
                self.fence_book.signal_syncobj(h, point);
                true
            }
            Err(_) => false,
        });
        Ok(())
    }

    /// [`Self::reclaim`] when it is due: with SET_IOVA at every chance (zombies hold addresses
    /// the allocator needs back); in kernel-iova mode, where the kernel's addresses do not wait
    /// for zombies, only once they hold [`KERNEL_IOVA_ZOMBIES`] buffers or
    /// [`KERNEL_IOVA_ZOMBIES_B`] bytes (an explicit flush reclaims too). A pass costs a
    /// SYNCOBJ_QUERY per syncobj the zombies wait for: once per submit and per import it made
    /// freedreno-on-msm-winsys ask more than stock freedreno, whose GEM_CLOSE waits in the kernel.
    fn reclaim_due(&self, k: &dyn Kernel) -> Result<(), BindError> {
        if self.heap.is_none() {
            let l = self.legacy();
            let bytes: u64 = l.zombies.iter().map(|z| z.buf.size_B).sum();
            if l.zombies.len() < KERNEL_IOVA_ZOMBIES && bytes < KERNEL_IOVA_ZOMBIES_B {
                return Ok(());
            }
        }
        self.reclaim(k)
    }

    /// Legacy modes: closes the zombies whose users are done, learning that with one query per
    /// syncobj, and frees their addresses.
    fn reclaim(&self, k: &dyn Kernel) -> Result<(), BindError> {
        let mut l = self.legacy();
        if l.zombies.is_empty() {
            return Ok(());
        }
        l.reclaim_passes += 1;
        let mut done: HashMap<u32, u64> = HashMap::new();
        let mut keep = Vec::new();
        let mut zombies = std::mem::take(&mut l.zombies).into_iter();
        let mut result = Ok(());
        // A failed query or SET_IOVA(0) keeps that zombie and every later one for the next pass:
        // a zombie dropped here would be a handle nobody closes.
        for z in zombies.by_ref() {
            match self.reclaim_one(k, &z, &mut done) {
                Ok(false) => keep.push(z),
                Ok(true) => {
                    match z.bo {
                        // The Bo closes the handle when its last reference goes.
                        Some(bo) => {
                            if l.shared_at.get(&z.buf.handle) == Some(&z.buf.iova) {
                                l.shared_at.remove(&z.buf.handle);
                            }
                            drop(bo)
                        }
                        None => {
                            // EINVAL only (a handle that is not ours): nothing to retry.
                            let _ = ioctl::gem_close(k, z.buf.handle);
                        }
                    }
                    if let Some(heap) = &self.heap {
                        heap.free(z.buf.iova, z.buf.size_B).ok();
                    }
                    l.reclaimed += 1;
                }
                Err(e) => {
                    keep.push(z);
                    result = Err(e);
                    break;
                }
            }
        }
        keep.extend(zombies);
        l.zombies = keep;
        result
    }

    /// Whether zombie `z`'s users are done (`done` caches one query per syncobj); if so, a shared
    /// one is unmapped (its object may outlive the handle), ready to be closed.
    fn reclaim_one(
        &self,
        k: &dyn Kernel,
        z: &Zombie,
        done: &mut HashMap<u32, u64>,
    ) -> Result<bool, BindError> {
        for u in &z.users {
            let d = match done.get(&u.handle) {
                Some(&d) => d,
                None => {
                    let d = match ioctl::syncobj_query(k, u.handle) {
                        Ok(d) => d,
                        // The driver destroyed that syncobj: its point can no longer be seen,
                        // so the zombie waits for `destroy` (the GPU is idle then). An error
                        // here would fail every later flush.
                        Err(e) if matches!(e.errno, Errno::ENOENT | Errno::EINVAL) => 0,
                        Err(e) => return Err(kerr(e)),
                    };
                    done.insert(u.handle, d);
                    d
                }
            };
            if u.point == 0 || d < u.point {
                return Ok(false);
            }
        }
        if z.shared && self.heap.is_some() {
            ioctl::gem_info_value(k, z.buf.handle, MSM_INFO_SET_IOVA, 0).map_err(kerr)?;
        }
        Ok(true)
    }

    /// Zombies not yet reclaimed (legacy modes).
    pub fn zombies(&self) -> usize {
        self.legacy().zombies.len()
    }

    /// Sends pending binds (VM_BIND) or reclaims idle zombies (legacy), and returns freed
    /// addresses to the allocator. Publishes how far the submits' timelines got to the device's
    /// fence book (for the `Bo` cache); the VM's own flushes (budget, replay, teardown) do not,
    /// since the free-buffer cache refreshes the book itself when it needs to.
    pub fn flush(&self, k: &dyn Kernel) -> Result<(), BindError> {
        self.publish(k)?;
        self.flush_with(k, true)
    }

    /// Like [`Self::flush`], but unmaps of buffers still in use stay queued (no in-fence waits):
    /// what a frame's end calls.
    pub fn flush_ready(&self, k: &dyn Kernel) -> Result<(), BindError> {
        self.publish(k)?;
        self.flush_with(k, false)
    }

    /// VM_BIND: hands ranges whose unmaps are ordered back to the allocator, reusable once their
    /// fences have signalled.
    fn give_back(heap: &VaHeap, released: Vec<super::vm::Released>) {
        for r in released {
            match r.fence {
                Some(p) => heap.free_after(
                    r.iova,
                    r.range_B,
                    Fence::Syncobj {
                        handle: p.handle,
                        point: p.point,
                    },
                    None,
                ),
                None => heap.free(r.iova, r.range_B),
            }
            .ok();
        }
    }

    /// VM_BIND: the allocator has no room. Freed ranges come back once their unmaps are sent and
    /// done: a full flush sends what is held back, then the jobs in flight (and through them the
    /// users of the freed buffers) are waited for, at most [`REPLAY_WAIT`], and a second flush
    /// hands their ranges over. A driver that never flushes (freedreno's backend only submits)
    /// ran out of addresses with every one of them freed (found measuring fbo-readpixels on a618).
    fn make_room(&self, k: &dyn Kernel) -> Result<(), BindError> {
        let (Some(vm), Some(heap)) = (&self.bind, &self.heap) else {
            return Ok(());
        };
        self.flush_with(k, true)?;
        if heap.deferred_size() == 0 {
            return Ok(());
        }
        // Timed out: the allocation reports the space as taken.
        wait_at_most_replay(k, &vm.sent_points())?;
        self.flush_with(k, true)
    }

    fn flush_with(&self, k: &dyn Kernel, all: bool) -> Result<(), BindError> {
        match (&self.bind, &self.heap) {
            (Some(vm), Some(heap)) => {
                let released = if all {
                    vm.flush(k)?
                } else {
                    vm.flush_ready(k)?
                };
                Self::give_back(heap, released);
                for (h, done) in vm.done_points(k)? {
                    heap.timelines().signal_syncobj(h, done);
                }
                Ok(())
            }
            _ => self.reclaim(k),
        }
    }

    /// Submits `cmds` (address, size) on `queue_id`; `uses` are the buffers the commands may
    /// access. Waits for `waits` (and, in VM_BIND mode, the binds of `uses`), signals `signals`.
    pub fn submit(
        &self,
        k: &dyn Kernel,
        queue_id: u32,
        cmds: &[(u64, u32)],
        uses: &[GpuBuffer],
        waits: &[SyncPoint],
        signals: &[SyncPoint],
    ) -> Result<u32, BindError> {
        let fences = Fences {
            wait: waits,
            signal: signals,
            ..Default::default()
        };
        self.submit_with(k, queue_id, cmds, uses, fences)
            .map(|(seqno, _)| seqno)
    }

    /// [`Self::submit`] with every fence the kernel offers: syncobjs, an in-fence sync file and,
    /// if asked, an out-fence sync file (returned with the seqno). What GL needs for
    /// EGL_ANDROID_native_fence_sync and for KMS's in/out fences.
    pub fn submit_with(
        &self,
        k: &dyn Kernel,
        queue_id: u32,
        cmds: &[(u64, u32)],
        uses: &[GpuBuffer],
        fences: Fences<'_>,
    ) -> Result<(u32, Option<std::os::fd::OwnedFd>), BindError> {
        self.submits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        {
            let mut w = self.watched.lock().unwrap_or_else(|p| p.into_inner());
            for p in fences.signal.iter().filter(|p| p.point != 0) {
                if !w.contains(&p.handle) {
                    w.push(p.handle);
                }
            }
        }
        if let Some(vm) = &self.bind {
            let ranges: Vec<(u64, u64)> = uses.iter().map(|b| (b.iova, b.size_B)).collect();
            let r = vm.submit_with(k, queue_id, cmds, &ranges, fences);
            // What the submit's flush released goes back now: a driver that only submits would
            // otherwise never see those addresses again.
            if let Some(heap) = &self.heap {
                Self::give_back(heap, vm.take_released());
            }
            return r;
        }
        self.reclaim_due(k)?;
        let l = self.legacy();
        let mut table_cmds = Vec::with_capacity(cmds.len());
        for &(iova, size_B) in cmds {
            let buf = l
                .by_iova
                .range(..=iova)
                .next_back()
                .map(|(_, b)| *b)
                .filter(|b| {
                    iova.checked_add(size_B.into())
                        .is_some_and(|end| end <= b.iova + b.size_B)
                });
            let Some(buf) = buf else {
                return Err(kerr(KernelError {
                    errno: Errno::EINVAL,
                    call: format!("command at {iova:#x} is in no live buffer"),
                }));
            };
            // Live buffers are in the table unless parked DONTNEED (`Self::madvise`).
            let Some(bo_index) = l.table.index_of(buf.handle) else {
                return Err(kerr(KernelError {
                    errno: Errno::EINVAL,
                    call: format!("command at {iova:#x} is in a buffer parked DONTNEED"),
                }));
            };
            table_cmds.push(TableCmd {
                bo_index,
                offset_B: (iova - buf.iova) as u32,
                size_B,
            });
        }
        // Explicit sync through the syncobjs, as turnip does: no implicit sync on every BO.
        ioctl::submit_with_table(
            k,
            queue_id,
            &l.table,
            &table_cmds,
            MSM_SUBMIT_NO_IMPLICIT,
            fences,
        )
        .map_err(|e| {
            if e.errno == Errno::EPIPE {
                BindError::DeviceLost(Box::new(super::LossReport {
                    call: e.call.clone(),
                    recent_ops: vec![],
                    devcoredump: k.devcoredump(),
                }))
            } else {
                kerr(e)
            }
        })
    }

    /// (reclaim passes, zombies reclaimed) in the legacy modes.
    pub fn reclaim_stats(&self) -> (u64, u64) {
        let l = self.legacy();
        (l.reclaim_passes, l.reclaimed)
    }

    /// Releases everything this object owns on the kernel side (after the GPU is idle).
    ///
    /// The bind queues and timelines are released even when the final flush fails (a lost VM
    /// reports EPIPE there): a driver tearing down a lost device must not leak them. The flush's
    /// error is returned first.
    ///
    /// A final flush refused with ENOMEM is tried once more (its unsent binds stay queued, the
    /// VM is usable): the unmaps must reach the kernel or the VMAs stay until the file closes.
    ///
    /// Buffers the driver did not free or unmap are freed first: after `destroy` nothing could
    /// name them any more, and their handles and mappings would stay until the file closes. Legacy
    /// zombies still waiting for their users then are closed anyway (the GPU is idle, and a
    /// submit holds its own references to the objects).
    pub fn destroy(self, k: &dyn Kernel) -> Result<(), BindError> {
        // What the driver left (never freed, never unmapped) goes now: the GPU is idle, and
        // nobody else would close those handles or unmap those ranges.
        self.cache().on = false;
        let left: Vec<GpuBuffer> = match &self.bind {
            Some(_) => self.live().values().copied().collect(),
            None => {
                let l = self.legacy();
                l.by_iova
                    .values()
                    .filter(|b| !l.mapped_bos.contains_key(&b.iova))
                    .copied()
                    .collect()
            }
        };
        for b in left {
            let _ = self.free_buffer(k, b, &[], false);
        }
        let shared: Vec<GpuBuffer> = self
            .legacy()
            .mapped_bos
            .iter()
            .map(|(&iova, bo)| GpuBuffer {
                handle: bo.handle(),
                iova,
                size_B: bo.size_B(),
            })
            .collect();
        for b in shared {
            let _ = self.unmap_bo(k, b, &[]);
        }
        // Kernel-iova mode: buffers whose mapping the kernel took away (`Legacy::lost`) and the
        // driver never released: only their handles are left.
        for (_, (b, bo)) in std::mem::take(&mut self.legacy().lost) {
            match bo {
                Some(bo) => drop(bo),
                None => {
                    let _ = ioctl::gem_close(k, b.handle);
                }
            }
        }
        let cached = self.cache().cache.drain();
        for c in cached {
            self.release(k, c);
        }
        // Nobody reads the fence book after this: the final flush does not publish to it.
        // A refused flush is tried again: its unsent binds stay queued, and a MAP refused every
        // time is dropped after a few tries (`bind::vm`), so the unmaps behind it still go.
        // Legacy modes: a flush would only reclaim, one SYNCOBJ_QUERY per syncobj, what the loop
        // below closes anyway.
        let mut flushed = match self.bind {
            Some(_) => self.flush_with(k, true),
            None => Ok(()),
        };
        for _ in 0..=super::vm::MAP_REFUSALS_BEFORE_DROP {
            if !flushed.as_ref().is_err_and(BindError::changed_nothing) {
                break;
            }
            flushed = self.flush_with(k, true);
        }
        // The GPU is idle: zombies still waiting for users that never signal (a failed submit,
        // a syncobj the driver destroyed) are closed now, or nobody would close them.
        for z in std::mem::take(&mut self.legacy().zombies) {
            if z.shared && self.heap.is_some() {
                // Its object may outlive the handle: take the address back, as reclaim does.
                let _ = ioctl::gem_info_value(k, z.buf.handle, MSM_INFO_SET_IOVA, 0);
            }
            match z.bo {
                Some(bo) => drop(bo),
                None => {
                    let _ = ioctl::gem_close(k, z.buf.handle);
                }
            }
        }
        let released = match self.bind {
            Some(vm) => vm.destroy(k).map_err(kerr),
            None => Ok(()),
        };
        // Sent jobs and submits hold their own references to the fences it carried.
        let own = self
            .own_timeline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((handle, _)) = own {
            let _ = ioctl::syncobj_destroy(k, handle);
        }
        flushed.and(released)
    }
}
