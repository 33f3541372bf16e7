//! Submitqueues: SUBMITQUEUE_NEW / CLOSE / QUERY, per-queue seqnos and in-flight fences
//! (spec/kernel.md "SUBMITQUEUE", "WAIT_FENCE").
//!
//! Owns: one queue's seqno allocator, its in-flight fences and fault count.
//! Locks: `Queue::state`, a leaf (taken after `SimFile::ctx`; never held while waiting).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::dispatch::typed;
use super::fence::{new_context, Fence};
use super::gem::deadline;
use super::{user, FileCtx, SimFile};
use crate::uapi::*;
use crate::Errno;

#[derive(Debug, Default)]
pub struct QueueState {
    pub faults: u32,
    /// Next seqno to try (allocated cyclically in [1, i32::MAX]).
    next_seqno: u32,
    /// The last seqno handed out (`queue->last_fence`).
    pub last_fence: u32,
    /// Fences of submits not yet retired, by seqno (`queue->fence_idr`).
    inflight: HashMap<u32, Arc<Fence>>,
}

#[derive(Debug)]
pub struct Queue {
    pub id: u32,
    /// Unique in the process (ids are only unique per file).
    pub key: u64,
    pub flags: u32,
    pub prio: u32,
    pub fence_context: u64,
    /// The scheduler's name its fences report as their timeline (msm names each ring's
    /// scheduler after the ring's buffer, "ring<n>"; the ring is `prio / NR_SCHED_PRIORITIES`).
    pub timeline: Arc<str>,
    state: Mutex<QueueState>,
}

/// `fence_after`: seqno `a` is later than `b`, with 32-bit wrap.
pub fn fence_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Queue {
    pub fn new(id: u32, flags: u32, prio: u32) -> Arc<Queue> {
        static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
        Arc::new(Queue {
            id,
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            flags,
            prio,
            fence_context: new_context(),
            timeline: Arc::from(format!("ring{}", prio / 3)),
            state: Mutex::new(QueueState {
                next_seqno: 1,
                ..Default::default()
            }),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_vm_bind(&self) -> bool {
        self.flags & MSM_SUBMITQUEUE_VM_BIND != 0
    }

    /// Allocates the submit's seqno: the user's with FENCE_SN_IN (EINVAL for 0 or one in flight),
    /// otherwise the next free one cyclically from 1. Registers `fence` under it.
    pub fn assign_seqno(
        &self,
        user_seqno: Option<u32>,
        make_fence: impl FnOnce(u32) -> Arc<Fence>,
    ) -> Result<(u32, Arc<Fence>), Errno> {
        let mut st = self.lock();
        let seqno = match user_seqno {
            Some(0) => return Err(Errno::EINVAL),
            Some(s) if st.inflight.contains_key(&s) => return Err(Errno::EINVAL),
            Some(s) => s,
            None => {
                let mut s = st.next_seqno;
                while st.inflight.contains_key(&s) {
                    s = if s >= i32::MAX as u32 { 1 } else { s + 1 };
                }
                st.next_seqno = if s >= i32::MAX as u32 { 1 } else { s + 1 };
                s
            }
        };
        let fence = make_fence(seqno);
        st.inflight.insert(seqno, fence.clone());
        st.last_fence = seqno;
        Ok((seqno, fence))
    }

    /// The submit with `seqno` has retired: its seqno is freed.
    pub fn retire(&self, seqno: u32) {
        self.lock().inflight.remove(&seqno);
    }

    pub fn fault(&self) {
        let mut st = self.lock();
        st.faults = st.faults.saturating_add(1);
    }

    /// The in-flight fence of `seqno`, if that submit has not retired.
    pub fn fence(&self, seqno: u32) -> Option<Arc<Fence>> {
        self.lock().inflight.get(&seqno).cloned()
    }
}

/// The default queue 0 every file gets at open, at the middle priority.
pub(super) fn default_queue(nr_rings: u32) -> Arc<Queue> {
    let prios = nr_rings * 3;
    Queue::new(0, 0, (prios - 1).div_ceil(2))
}

pub(super) fn submitqueue_new(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_submitqueue| {
        if a.flags & !MSM_SUBMITQUEUE_FLAGS != 0 {
            return Err(Errno::EINVAL);
        }
        let mut ctx = file.ctx();
        if a.flags & MSM_SUBMITQUEUE_VM_BIND != 0 {
            if !ctx.vm_bind {
                return Err(Errno::EINVAL);
            }
            if a.prio != 0 {
                return Err(Errno::EINVAL);
            }
            file.vm(&mut ctx);
        } else {
            if a.flags & MSM_SUBMITQUEUE_ALLOW_PREEMPT != 0 && file.dev.profile.nr_rings == 1 {
                return Err(Errno::EINVAL);
            }
            if a.prio >= file.dev.profile.priorities() {
                return Err(Errno::EINVAL);
            }
        }
        let id = ctx.next_queue_id;
        ctx.next_queue_id += 1;
        ctx.queues.insert(id, Queue::new(id, a.flags, a.prio));
        a.id = id;
        Ok(())
    })
}

pub(super) fn submitqueue_close(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |id: &mut u32| {
        // The default queue cannot be closed.
        if *id == 0 {
            return Err(Errno::ENOENT);
        }
        file.ctx().queues.remove(id).map(drop).ok_or(Errno::ENOENT)
    })
}

pub(super) fn submitqueue_query(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_submitqueue_query| {
        if a.pad != 0 {
            return Err(Errno::EINVAL);
        }
        let q = lookup(&file.ctx(), a.id)?;
        if a.param != MSM_SUBMITQUEUE_PARAM_FAULTS {
            return Err(Errno::EINVAL);
        }
        let faults = q.lock().faults;
        let n = (a.len as usize).min(4);
        user::write_bytes(a.data, &faults.to_ne_bytes()[..n])
    })
}

pub(super) fn lookup(ctx: &FileCtx, id: u32) -> Result<Arc<Queue>, Errno> {
    ctx.queues.get(&id).cloned().ok_or(Errno::ENOENT)
}

pub(super) fn wait_fence(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_wait_fence| {
        if a.flags & !MSM_WAIT_FENCE_FLAGS != 0 {
            return Err(Errno::EINVAL);
        }
        let q = lookup(&file.ctx(), a.queueid)?;
        let last = q.lock().last_fence;
        if fence_after(a.fence, last) {
            return Err(Errno::EINVAL);
        }
        // Fence 0, or a seqno whose submit has retired: already signalled.
        let Some(f) = (a.fence != 0).then(|| q.fence(a.fence)).flatten() else {
            return Ok(());
        };
        f.wait(Some(deadline(&a.timeout)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fence_after_wraps() {
        assert!(fence_after(2, 1));
        assert!(!fence_after(1, 1));
        assert!(fence_after(1, u32::MAX));
        assert!(!fence_after(u32::MAX, 1));
    }

    #[test]
    fn default_queue_priority_is_the_middle() {
        assert_eq!(default_queue(1).prio, 1);
        assert_eq!(default_queue(4).prio, 6);
    }
}
