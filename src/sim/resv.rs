//! Reservation objects: the fences attached to a buffer (`dma_resv`), by usage.
//!
//! Owns: one set of fences. Locks: `Resv::fences`, a leaf lock (nothing else is taken under it).
//! NO_SHARE buffers share their VM's `Resv`, as in the kernel.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::fence::Fence;
use crate::Errno;

/// `enum dma_resv_usage`, in the kernel's order: waiting for a usage includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Usage {
    Kernel,
    Write,
    Read,
    /// Bookkeeping only (VM_BIND-mode submits): never waited on by implicit sync or CPU_PREP.
    Bookkeep,
}

#[derive(Debug, Default)]
pub struct Resv {
    fences: Mutex<Vec<(Arc<Fence>, Usage)>>,
}

impl Resv {
    pub fn new() -> Arc<Resv> {
        Arc::new(Resv::default())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Arc<Fence>, Usage)>> {
        self.fences.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `fence` with `usage`, dropping fences that have signalled.
    pub fn add(&self, fence: Arc<Fence>, usage: Usage) {
        let mut f = self.lock();
        f.retain(|(x, _)| !x.is_signalled());
        f.push((fence, usage));
    }

    /// The unsignalled fences a waiter for `usage` must wait on (`dma_resv_iter` with that usage).
    pub fn pending(&self, usage: Usage) -> Vec<Arc<Fence>> {
        self.lock()
            .iter()
            .filter(|(f, u)| *u <= usage && !f.is_signalled())
            .map(|(f, _)| f.clone())
            .collect()
    }

    /// Whether any fence of any usage, bookkeeping included, is pending (the object is busy).
    pub fn busy(&self) -> bool {
        !self.pending(Usage::Bookkeep).is_empty()
    }

    /// `dma_resv_wait_timeout`: waits for the fences of `usage` until `deadline`.
    pub fn wait(&self, usage: Usage, deadline: Option<Instant>) -> Result<(), Errno> {
        // The lock is not held while waiting: fences are signalled by other threads.
        self.pending(usage)
            .iter()
            .try_for_each(|f| f.wait(deadline))
    }

    /// `dma_resv_usage_rw`: a writer waits for readers and writers, a reader for writers only.
    pub fn usage_rw(write: bool) -> Usage {
        if write {
            Usage::Read
        } else {
            Usage::Write
        }
    }
}
