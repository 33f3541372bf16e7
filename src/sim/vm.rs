//! GPU VMs and their address space as the kernel tracks it (`drm_mm` / `drm_gpuvm`), for the
//! kernel-chosen (GET_IOVA) and userspace-chosen (SET_IOVA) iova modes, and the fault check the
//! simulated GPU makes against it.
//!
//! Owns: one VM's mappings and fault counter. Locks: `Vm::inner`; taken after a file's `ctx` and
//! after an object's state lock, never before them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::gem::GemObject;
use super::resv::Resv;
use crate::Errno;

/// One mapping of (part of) an object at `[iova, iova + range_B)`.
#[derive(Debug, Clone)]
pub struct Vma {
    pub iova: u64,
    pub range_B: u64,
    pub obj: Weak<GemObject>,
    pub obj_id: u64,
    pub obj_offset_B: u64,
}

#[derive(Debug, Default)]
pub struct VmInner {
    /// Mappings by start address; never overlapping.
    pub vmas: BTreeMap<u64, Vma>,
    /// GPU faults attributed to this VM.
    pub faults: u64,
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
}

impl Vm {
    pub fn new(va_start: u64, va_size_B: u64, per_process: bool, vm_bind: bool) -> Arc<Vm> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(Vm {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            va_start,
            va_size_B,
            per_process,
            resv: Resv::new(),
            vm_bind,
            unusable: AtomicBool::new(false),
            inner: Mutex::default(),
        })
    }

    pub fn is_unusable(&self) -> bool {
        self.unusable.load(Ordering::Acquire)
    }

    /// A GPU fault in a VM_BIND context leaves the VM unusable; legacy VMs recover.
    pub fn mark_unusable_if_vm_bind(&self) {
        if self.vm_bind {
            self.unusable.store(true, Ordering::Release);
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
        for vma in inner.vmas.values() {
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
