//! GPU VMs and their address space as the kernel tracks it (`drm_mm` / `drm_gpuvm`), for the
//! kernel-chosen (GET_IOVA) and userspace-chosen (SET_IOVA) iova modes and for VM_BIND mode; the
//! fault check the simulated GPU makes against it.
//!
//! VM_BIND VMs (spec/kernel.md "VM_BIND (mode on)") also have: the drm_gpuvm split/merge steps
//! ([`VmInner::sm_map`], [`VmInner::sm_unmap`]) that change the VA tree at ioctl time and produce
//! page-table steps ([`PtStep`]) run later by the bind job; the page tables themselves (4 levels,
//! 4 KiB leaves, table pages never freed while the VM lives); the VM log ring; the prealloc
//! throttle; the fences file close waits for.
//!
//! Owns: one VM's mappings, page tables, log and fault counter.
//! Locks: `Vm::bind_lock` (serialises VM_BIND ioctls from pin to push, like the VM's resv lock in
//! the kernel) -> object state locks -> `Vm::inner` -> `Gpu::state`. `Vm::inner` is taken after a
//! file's `ctx` and after an object's state lock, never before them. `Vm::throttle` is a leaf,
//! waited on with no other lock held.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use super::fence::Fence;
use super::gem::GemObject;
use super::resv::Resv;
use crate::Errno;

/// What a VMA maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmaKind {
    /// Pages of a buffer object.
    Bo,
    /// MAP_NULL: every page maps the shared zero page (PRR).
    Null,
}

/// One mapping of (part of) an object at `[iova, iova + range_B)`.
#[derive(Debug, Clone)]
pub struct Vma {
    pub iova: u64,
    pub range_B: u64,
    pub obj: Weak<GemObject>,
    /// 0 for MAP_NULL mappings.
    pub obj_id: u64,
    pub obj_offset_B: u64,
    pub kind: VmaKind,
    /// VM_BIND mode: the VMA holds its object until it is unmapped or the file closes. `None` for
    /// kernel-managed VMAs (the object's own list tracks those) and MAP_NULL ones.
    pub held: Option<Arc<GemObject>>,
    /// MSM_VM_BIND_OP_DUMP: include in devcoredumps (kept by the prev/next remnants of a split).
    pub dump: bool,
    /// Its pages are (or will be, once the bind job runs) in the page tables; false after a purge.
    pub mapped: bool,
}

impl Vma {
    /// A kernel-managed mapping of the whole of `obj` (GET_IOVA / SET_IOVA / legacy submits).
    pub fn legacy(iova: u64, obj: &Arc<GemObject>) -> Vma {
        Vma {
            iova,
            range_B: obj.size_B,
            obj: Arc::downgrade(obj),
            obj_id: obj.id,
            obj_offset_B: 0,
            kind: VmaKind::Bo,
            held: None,
            dump: false,
            mapped: true,
        }
    }

    fn end(&self) -> u64 {
        self.iova + self.range_B
    }
}

/// What a leaf PTE points at: a page of an object (by id and byte offset) or the zero page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pte {
    Bo { obj_id: u64, offset_B: u64 },
    Zero,
}

impl Pte {
    /// The target `delta` bytes further on.
    fn advance(self, delta: u64) -> Pte {
        match self {
            Pte::Bo { obj_id, offset_B } => Pte::Bo {
                obj_id,
                offset_B: offset_B + delta,
            },
            Pte::Zero => Pte::Zero,
        }
    }
}

/// One page-table update a bind job performs when it runs (`struct msm_vm_op`).
#[derive(Debug, Clone)]
pub enum PtStep {
    Map {
        iova: u64,
        range_B: u64,
        target: Pte,
        queue_id: u32,
    },
    Unmap {
        iova: u64,
        range_B: u64,
        queue_id: u32,
    },
}

/// One entry of the VM log (`struct msm_gem_vm_log_entry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub op: &'static str,
    pub iova: u64,
    pub range_B: u64,
    pub queue_id: u32,
}

/// Bits of address each level's table entry spans: L0 entries 512 GiB, L1 1 GiB, L2 2 MiB.
const TABLE_SHIFTS: [u32; 3] = [39, 30, 21];

#[derive(Debug, Default)]
pub struct VmInner {
    /// Mappings by start address; never overlapping.
    pub vmas: BTreeMap<u64, Vma>,
    /// VM_BIND MAPs of range 0: drm_gpuvm inserts an empty VA that no lookup finds; it holds its
    /// object until the file closes.
    pub empty_vmas: Vec<Vma>,
    /// GPU faults attributed to this VM.
    pub faults: u64,
    /// VM_BIND VMs: the leaf PTEs as runs `start -> (end, target at start)`, written by bind jobs.
    pub ptes: BTreeMap<u64, (u64, Pte)>,
    /// VM_BIND VMs: resident table pages below the root, per level (index = iova >> span bits).
    tables: [BTreeSet<u64>; 3],
    /// The VM log ring (empty when off) and the next slot to write.
    log: Vec<Option<LogEntry>>,
    log_idx: usize,
    /// Fences of VM_BIND-mode submits not known to have signalled (`vm->last_fence`).
    last_fences: Vec<Arc<Fence>>,
    /// The file closed and its VMAs were torn down: queued bind jobs are cancelled.
    pub closed: bool,
}

/// A GPU address space: a file's private VM, or the device's global one.
#[derive(Debug)]
pub struct Vm {
    pub id: u64,
    pub va_start: u64,
    pub va_size_B: u64,
    /// A per-process VM (false: the device-global VM of parts without per-process page tables).
    pub per_process: bool,
    /// The VM's own reservation object, shared with its NO_SHARE objects.
    pub resv: Arc<Resv>,
    /// Created for a VM_BIND-mode context.
    pub vm_bind: bool,
    /// A failed bind or a GPU fault in VM_BIND mode made it unusable (SUBMIT/VM_BIND: EPIPE).
    unusable: AtomicBool,
    inner: Mutex<VmInner>,
    /// Serialises VM_BIND ioctls from pinning to pushing the job (the VM resv lock).
    bind_lock: Mutex<()>,
    /// The prealloc throttle (`vm->prealloc_throttle`).
    throttle: Mutex<Throttle>,
    throttle_cv: Condvar,
    /// The GPU scheduler lane every VM_BIND queue of the file shares (`vm->sched`).
    pub bind_lane: u64,
    bind_seqno: AtomicU64,
    /// The preallocated page count of the last VM_BIND job (debug API).
    pub last_prealloc: AtomicU64,
}

/// The prealloc throttle's state.
#[derive(Debug, Default)]
struct Throttle {
    /// `atomic_t in_flight`: preallocated pages of jobs not yet freed (an int, as in the kernel).
    in_flight: i32,
    /// Bumped by [`Vm::interrupt_throttled`] (a signal): waiters return EINTR.
    interrupts: u64,
    /// Threads waiting to be admitted (debug API).
    waiters: u32,
    /// VM_BIND calls that found more than the limit in flight and had to wait.
    stalls: u64,
}

/// The throttle admits a job while at most this many preallocated pages are in flight.
pub const THROTTLE_PAGES: i32 = 1024;

impl Vm {
    pub fn new(va_start: u64, va_size_B: u64, per_process: bool, vm_bind: bool) -> Arc<Vm> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        Arc::new(Vm {
            id,
            va_start,
            va_size_B,
            per_process,
            resv: Resv::new(),
            vm_bind,
            unusable: AtomicBool::new(false),
            inner: Mutex::default(),
            bind_lock: Mutex::default(),
            throttle: Mutex::default(),
            throttle_cv: Condvar::new(),
            bind_lane: 1 << 63 | id,
            bind_seqno: AtomicU64::new(1),
            last_prealloc: AtomicU64::new(0),
        })
    }

    /// Sets up the VM log of a VM_BIND VM: `1 << min(shift, 8)` entries, none when `shift` is 0.
    pub fn init_log(&self, shift: u32) {
        let shift = shift.min(8);
        if self.vm_bind && shift > 0 {
            let mut inner = self.lock();
            inner.log = vec![None; 1 << shift];
            inner.log_idx = 0;
        }
    }

    /// The bind lock (see the module head).
    pub fn bind_lock(&self) -> MutexGuard<'_, ()> {
        self.bind_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A seqno for the next bind job's fence.
    pub fn next_bind_seqno(&self) -> u64 {
        self.bind_seqno.fetch_add(1, Ordering::Relaxed)
    }

    /// Marks the VM unusable (`msm_gem_vm_unusable`), VM_BIND or not.
    pub fn mark_unusable(&self) {
        self.unusable.store(true, Ordering::Release);
    }

    fn throttle(&self) -> MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits (interruptibly) until at most [`THROTTLE_PAGES`] preallocated pages are in flight,
    /// then adds `count`, however large. EINTR when [`Vm::interrupt_throttled`] is called while
    /// waiting. Takes only the throttle lock; call with no other lock held.
    pub fn throttle_admit(&self, count: u32) -> Result<(), Errno> {
        let mut t = self.throttle();
        let generation = t.interrupts;
        if t.in_flight > THROTTLE_PAGES {
            t.stalls += 1;
        }
        t.waiters += 1;
        while t.in_flight > THROTTLE_PAGES {
            if t.interrupts != generation {
                t.waiters -= 1;
                return Err(Errno::EINTR);
            }
            t = self.throttle_cv.wait(t).unwrap_or_else(|p| p.into_inner());
        }
        t.waiters -= 1;
        t.in_flight = t.in_flight.wrapping_add(count as i32);
        Ok(())
    }

    /// A job holding `count` preallocated pages was freed: wakes throttled binds.
    pub fn throttle_release(&self, count: u32) {
        let mut t = self.throttle();
        t.in_flight = t.in_flight.wrapping_sub(count as i32);
        drop(t);
        self.throttle_cv.notify_all();
    }

    /// A signal to every thread waiting in the throttle: they return EINTR.
    pub fn interrupt_throttled(&self) {
        self.throttle().interrupts += 1;
        self.throttle_cv.notify_all();
    }

    /// How many VM_BIND calls had to wait in the throttle so far.
    pub fn throttle_stalls(&self) -> u64 {
        self.throttle().stalls
    }

    /// (preallocated pages in flight, threads waiting in the throttle).
    pub fn throttle_state(&self) -> (i32, u32) {
        let t = self.throttle();
        (t.in_flight, t.waiters)
    }

    /// Records the fence of a VM_BIND-mode submit (file close waits for it).
    pub fn add_last_fence(&self, fence: Arc<Fence>) {
        let mut inner = self.lock();
        inner.last_fences.retain(|f| !f.is_signalled());
        inner.last_fences.push(fence);
    }

    /// File close of a VM_BIND VM (`msm_gem_vm_close`): once every submit fence has signalled,
    /// unmaps and closes every VMA, logged as "close" on queue 0. The kernel blocks close until
    /// then; the model returns at once and runs the teardown from the last fence's signal.
    pub fn close_when_idle(self: &Arc<Vm>) {
        let pending: Vec<Arc<Fence>> = {
            let mut inner = self.lock();
            inner.last_fences.retain(|f| !f.is_signalled());
            inner.last_fences.clone()
        };
        match pending.last() {
            None => self.teardown(),
            Some(_) => {
                let left = Arc::new(std::sync::atomic::AtomicUsize::new(pending.len()));
                for f in pending {
                    let (vm, left) = (self.clone(), left.clone());
                    f.on_signal(move || {
                        if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                            vm.teardown();
                        }
                    });
                }
            }
        }
    }

    fn teardown(&self) {
        let dropped = {
            let mut inner = self.lock();
            inner.closed = true;
            let vmas: Vec<Vma> = std::mem::take(&mut inner.vmas).into_values().collect();
            let empty = std::mem::take(&mut inner.empty_vmas);
            for v in vmas.iter().chain(empty.iter()) {
                if v.mapped {
                    inner.log("close", v.iova, v.range_B, 0);
                    inner.clear_ptes(v.iova, v.iova + v.range_B);
                }
            }
            (vmas, empty)
        };
        // Objects are released with no VM lock held (their drop may take other VMs' locks).
        drop(dropped);
    }

    /// Purging `obj_id`: its VM_BIND mappings here are unmapped (logged "purge", queue 0) but stay
    /// in the VA tree, as `put_iova_spaces(obj, NULL, false, "purge")` leaves them.
    pub fn purge_object(&self, obj_id: u64) {
        let mut inner = self.lock();
        let hit: Vec<u64> = inner
            .vmas
            .values()
            .filter(|v| v.obj_id == obj_id && v.kind == VmaKind::Bo && v.mapped)
            .map(|v| v.iova)
            .collect();
        for iova in hit {
            let (a, r) = {
                let v = inner.vmas.get_mut(&iova).expect("collected above");
                v.mapped = false;
                (v.iova, v.range_B)
            };
            inner.log("purge", a, r, 0);
            inner.clear_ptes(a, a + r);
        }
    }

    pub fn is_unusable(&self) -> bool {
        self.unusable.load(Ordering::Acquire)
    }

    /// A GPU fault in a VM_BIND context leaves the VM unusable; legacy VMs recover.
    pub fn mark_unusable_if_vm_bind(&self) {
        if self.vm_bind {
            self.mark_unusable();
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, VmInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn va_end(&self) -> u64 {
        self.va_start + self.va_size_B
    }

    /// `drm_mm_insert_node_in_range` in best-fit mode: the smallest hole inside `[start, end)` that
    /// holds `size_B`, at its lowest address. ENOSPC when none does.
    pub fn insert_in_range(
        inner: &VmInner,
        size_B: u64,
        start: u64,
        end: u64,
    ) -> Result<u64, Errno> {
        let mut best: Option<(u64, u64)> = None; // (hole size, address)
        let mut cursor = start;
        let consider = |hole_start: u64, hole_end: u64, best: &mut Option<(u64, u64)>| {
            if hole_end > hole_start && hole_end - hole_start >= size_B {
                let hole = hole_end - hole_start;
                if best.is_none_or(|(b, _)| hole < b) {
                    *best = Some((hole, hole_start));
                }
            }
        };
        // Mappings never overlap, so only the last one starting below `start` can reach into the
        // range: the walk starts there, and a range-limited search (SET_IOVA's fixed address)
        // costs O(log n), not a walk over every mapping below it.
        let first = inner
            .vmas
            .range(..start)
            .next_back()
            .map_or(start, |(&iova, _)| iova);
        for vma in inner.vmas.range(first..).map(|(_, v)| v) {
            let vma_end = vma.iova + vma.range_B;
            if vma_end <= start {
                continue;
            }
            if vma.iova >= end {
                break;
            }
            consider(cursor, vma.iova.min(end), &mut best);
            cursor = cursor.max(vma_end);
        }
        consider(cursor, end, &mut best);
        best.map(|(_, a)| a).ok_or(Errno::ENOSPC)
    }

    /// Allocates an address for an object of `size_B` in `[start, end)` clipped to the VM's range.
    pub fn alloc(&self, inner: &VmInner, size_B: u64, start: u64, end: u64) -> Result<u64, Errno> {
        let start = start.max(self.va_start);
        let end = end.min(self.va_end());
        if start >= end {
            return Err(Errno::ENOSPC);
        }
        Vm::insert_in_range(inner, size_B, start, end)
    }

    /// The mapping that contains `iova`, if any.
    pub fn lookup(inner: &VmInner, iova: u64) -> Option<&Vma> {
        inner
            .vmas
            .range(..=iova)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| iova < v.iova + v.range_B)
    }

    /// Whether the GPU can access every byte of `[iova, iova + len)`: in VM_BIND VMs what the page
    /// tables hold (bind jobs write them), elsewhere what the VA tree holds.
    pub fn gpu_mapped(&self, inner: &VmInner, iova: u64, len: u64) -> bool {
        if self.vm_bind {
            inner.ptes_cover(iova, len)
        } else {
            Vm::range_mapped(inner, iova, len)
        }
    }

    /// Whether every byte of `[iova, iova + len)` is mapped (to anything).
    pub fn range_mapped(inner: &VmInner, iova: u64, len: u64) -> bool {
        let Some(end) = iova.checked_add(len) else {
            return false;
        };
        let mut at = iova;
        while at < end {
            match Vm::lookup(inner, at) {
                Some(v) => at = v.iova + v.range_B,
                None => return false,
            }
        }
        true
    }
}

/// The VMAs a drm_gpuvm walk over `[addr, addr + range)` visits: those whose interval meets
/// `[addr, addr + range - 1]` as the interval tree sees it, so for `range == 0` the ones that
/// strictly straddle `addr` (drm_gpuvm splits those; a quirk the model keeps).
fn walk_keys(vmas: &BTreeMap<u64, Vma>, addr: u64, range: u64) -> Vec<u64> {
    let end = addr + range;
    vmas.range(..end)
        .rev()
        .take_while(|(_, v)| v.end() > addr)
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

impl VmInner {
    /// `vm_log`: writes one entry into the ring, if the VM has one.
    pub fn log(&mut self, op: &'static str, iova: u64, range_B: u64, queue_id: u32) {
        if self.log.is_empty() {
            return;
        }
        let idx = self.log_idx;
        self.log[idx] = Some(LogEntry {
            op,
            iova,
            range_B,
            queue_id,
        });
        self.log_idx = (idx + 1) & (self.log.len() - 1);
    }

    /// The entries the kernel dumps, oldest first: the whole ring once it wrapped, otherwise
    /// entries `0 .. idx - 1` — one fewer than it holds (the kernel's `MAX(0, first - 1)` quirk).
    /// Empty when there is no log or nothing was logged.
    pub fn log_dump(&self) -> Vec<LogEntry> {
        if self.log.is_empty() || self.log[0].is_none() {
            return Vec::new();
        }
        let len = self.log.len();
        let (first, n) = match self.log[self.log_idx] {
            None => (0, self.log_idx.saturating_sub(1)),
            Some(_) => (self.log_idx, len),
        };
        (0..n)
            .filter_map(|i| self.log[(i + first) & (len - 1)].clone())
            .collect()
    }

    /// Every entry the ring holds, oldest first (debug API; no quirk).
    pub fn log_entries(&self) -> Vec<LogEntry> {
        let len = self.log.len();
        (0..len)
            .filter_map(|i| self.log[(i + self.log_idx) % len.max(1)].clone())
            .collect()
    }

    /// The devcoredump's `vm-log:` section, byte for byte the kernel's format; empty without
    /// entries.
    pub fn log_text(&self) -> String {
        let entries = self.log_dump();
        if entries.is_empty() {
            return String::new();
        }
        let mut t = String::from("vm-log:\n");
        for e in entries {
            t += &format!(
                "  - {}:{}: 0x{:016x}-0x{:016x}\n",
                e.op,
                e.queue_id,
                e.iova,
                e.iova.wrapping_add(e.range_B)
            );
        }
        t
    }

    /// Resident page-table pages, the root included.
    pub fn pt_pages(&self) -> u64 {
        1 + self.tables.iter().map(|t| t.len() as u64).sum::<u64>()
    }

    /// Clears the leaf PTEs of `[start, end)`; table pages stay.
    pub fn clear_ptes(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let hit: Vec<u64> = self
            .ptes
            .range(..end)
            .rev()
            .take_while(|(_, (e, _))| *e > start)
            .map(|(k, _)| *k)
            .collect();
        for k in hit {
            let (e, target) = self.ptes.remove(&k).expect("collected above");
            if k < start {
                self.ptes.insert(k, (start, target));
            }
            if e > end {
                self.ptes.insert(end, (e, target.advance(end - k)));
            }
        }
    }

    /// Writes the leaf PTEs of `[iova, iova + range_B)` (4 KiB pages) to `target` onwards,
    /// allocating the table pages on the way.
    pub fn write_ptes(&mut self, iova: u64, range_B: u64, target: Pte) {
        if range_B == 0 {
            return;
        }
        let end = iova + range_B;
        self.clear_ptes(iova, end);
        self.ptes.insert(iova, (end, target));
        for (level, shift) in TABLE_SHIFTS.iter().enumerate() {
            for idx in (iova >> shift)..=((end - 1) >> shift) {
                self.tables[level].insert(idx);
            }
        }
    }

    /// Whether every page of `[iova, iova + len)` has a valid leaf PTE.
    pub fn ptes_cover(&self, iova: u64, len: u64) -> bool {
        let Some(end) = iova.checked_add(len) else {
            return false;
        };
        let mut at = iova;
        while at < end {
            match self.ptes.range(..=at).next_back() {
                Some((_, (e, _))) if *e > at => at = *e,
                _ => return false,
            }
        }
        true
    }

    /// The PTE of the page at `iova`, if valid.
    pub fn pte(&self, iova: u64) -> Option<Pte> {
        let (k, (e, t)) = self.ptes.range(..=iova).next_back()?;
        (*e > iova).then(|| t.advance((iova & !0xfff) - k))
    }

    /// One drm_gpuvm step over an existing VMA at `key` for a request over `[addr, addr+range)`:
    /// removed whole (unmap) or replaced by its prev/next remnants (remap), each keeping the BO
    /// offset of its first page, the DUMP flag and the mapped state; a page-table unmap of the
    /// part that goes is queued if the VMA was mapped. Removed VMAs go to `dropped`.
    fn split_one(
        &mut self,
        key: u64,
        addr: u64,
        range: u64,
        queue_id: u32,
        steps: &mut Vec<PtStep>,
        dropped: &mut Vec<Vma>,
    ) {
        let va = self.vmas.remove(&key).expect("walked above");
        let req_end = addr + range;
        let prev = (va.iova < addr).then(|| Vma {
            range_B: addr - va.iova,
            ..va.clone()
        });
        let next = (va.end() > req_end).then(|| Vma {
            iova: req_end,
            range_B: va.end() - req_end,
            obj_offset_B: va.obj_offset_B + (req_end - va.iova),
            ..va.clone()
        });
        if va.mapped {
            let from = prev.as_ref().map_or(va.iova, Vma::end);
            let to = next.as_ref().map_or(va.end(), |n| n.iova);
            steps.push(PtStep::Unmap {
                iova: from,
                range_B: to - from,
                queue_id,
            });
        }
        for remnant in [prev, next].into_iter().flatten() {
            self.vmas.insert(remnant.iova, remnant);
        }
        dropped.push(va);
    }

    /// `drm_gpuvm_sm_unmap` with msm's steps: every VMA the walk visits is removed or trimmed.
    pub fn sm_unmap(
        &mut self,
        addr: u64,
        range: u64,
        queue_id: u32,
        steps: &mut Vec<PtStep>,
        dropped: &mut Vec<Vma>,
    ) {
        for key in walk_keys(&self.vmas, addr, range) {
            self.split_one(key, addr, range, queue_id, steps, dropped);
        }
    }

    /// `drm_gpuvm_sm_map` with msm's steps: as [`VmInner::sm_unmap`], then one new VMA (never
    /// merged with its neighbours) and a page-table map step.
    pub fn sm_map(
        &mut self,
        new: Vma,
        queue_id: u32,
        steps: &mut Vec<PtStep>,
        dropped: &mut Vec<Vma>,
    ) {
        self.sm_unmap(new.iova, new.range_B, queue_id, steps, dropped);
        let target = match new.kind {
            VmaKind::Bo => Pte::Bo {
                obj_id: new.obj_id,
                offset_B: new.obj_offset_B,
            },
            VmaKind::Null => Pte::Zero,
        };
        steps.push(PtStep::Map {
            iova: new.iova,
            range_B: new.range_B,
            target,
            queue_id,
        });
        if new.range_B == 0 {
            self.empty_vmas.push(new);
        } else {
            self.vmas.insert(new.iova, new);
        }
    }

    /// Runs one page-table step of a bind job: logs it, then writes or clears PTEs.
    pub fn run_step(&mut self, step: &PtStep) {
        match *step {
            PtStep::Map {
                iova,
                range_B,
                target,
                queue_id,
            } => {
                self.log("map", iova, range_B, queue_id);
                self.write_ptes(iova, range_B, target);
            }
            PtStep::Unmap {
                iova,
                range_B,
                queue_id,
            } => {
                self.log("unmap", iova, range_B, queue_id);
                self.clear_ptes(iova, iova + range_B);
            }
        }
    }
}
