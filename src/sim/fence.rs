//! Fences: the model's `dma_fence`. A fence signals once, optionally with an error, wakes its
//! waiters and runs its callbacks (which is how sync files, syncobjs and queued GPU jobs learn of
//! it).
//!
//! Owns: each fence's state. Locks: `Fence::state` only, never held while running callbacks, so a
//! callback may take any other lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::Errno;

type Callback = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct FenceState {
    signalled: bool,
    error: Option<Errno>,
    /// CLOCK_MONOTONIC at signalling (`dma_fence.timestamp`), for sync-file info.
    timestamp_ns: u64,
    callbacks: Vec<Callback>,
}

/// A one-shot completion, shared by whoever waits on it.
pub struct Fence {
    /// Unique per fence in this process, for messages and devcoredumps.
    pub id: u64,
    /// The timeline it belongs to (`dma_fence.context`) and its position there.
    pub context: u64,
    pub seqno: u64,
    /// `dma_fence_ops.get_driver_name` / `get_timeline_name`, as sync-file info reports them.
    pub driver_name: &'static str,
    pub timeline_name: Arc<str>,
    /// The fences of a `dma_fence_array` (what `dma_fence_unwrap` walks); empty otherwise.
    parts: Vec<Arc<Fence>>,
    state: Mutex<FenceState>,
    cv: Condvar,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Fence(#{} {}:{} {})",
            self.id,
            self.context,
            self.seqno,
            if self.is_signalled() {
                "signalled"
            } else {
                "pending"
            }
        )
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A new fence context (`dma_fence_context_alloc`).
pub fn new_context() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Fence {
    /// An unsignalled fence at `seqno` on timeline `context`, named as the kernel's private
    /// fences without a driver of their own are (dma_fence_array's "unbound" timeline).
    pub fn new(context: u64, seqno: u64) -> Arc<Fence> {
        Fence::named(context, seqno, "dma_fence_array", Arc::from("unbound"))
    }

    /// An unsignalled fence with the names its kernel counterpart reports (`drm_sched` and the
    /// ring for submits, `msm` and the CRTC for out-fences).
    pub fn named(
        context: u64,
        seqno: u64,
        driver_name: &'static str,
        timeline_name: Arc<str>,
    ) -> Arc<Fence> {
        Arc::new(Fence {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            context,
            seqno,
            driver_name,
            timeline_name,
            parts: Vec::new(),
            state: Mutex::default(),
            cv: Condvar::new(),
        })
    }

    /// An already signalled fence (`dma_fence_get_stub`).
    pub fn signalled() -> Arc<Fence> {
        let f = Fence::named(0, 0, "stub", Arc::from("stub"));
        f.signal();
        f
    }

    /// A fence signalled at `timestamp_ns` (`dma_fence_allocate_private_stub`).
    pub fn signalled_at(timestamp_ns: u64) -> Arc<Fence> {
        let f = Fence::signalled();
        f.lock().timestamp_ns = timestamp_ns;
        f
    }

    /// `dma_fence_array_create` (signal on all): a fence on a new timeline that signals once
    /// every one of `parts` has, with the first error among them.
    pub fn array(parts: Vec<Arc<Fence>>) -> Arc<Fence> {
        let array = Arc::new(Fence {
            parts,
            ..Arc::into_inner(Fence::new(new_context(), 1)).expect("a new fence has one owner")
        });
        let remaining = Arc::new(AtomicU64::new(array.parts.len() as u64));
        if array.parts.is_empty() {
            array.signal();
        }
        for part in &array.parts {
            // Weak both ways: an array nobody holds any more need not be signalled, and a part's
            // callback must not keep the array (which holds the part) alive.
            let (weak_array, weak_part) = (Arc::downgrade(&array), Arc::downgrade(part));
            let remaining = remaining.clone();
            part.on_signal(move || {
                let Some(array) = weak_array.upgrade() else {
                    return;
                };
                if let Some(e) = weak_part.upgrade().and_then(|p| p.error()) {
                    let mut s = array.lock();
                    s.error = s.error.or(Some(e));
                }
                if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    let error = array.error();
                    array.finish(error);
                }
            });
        }
        array
    }

    /// `dma_fence_unwrap_for_each`: the fences of an array, or the fence itself.
    pub fn unwrap(self: &Arc<Self>) -> Vec<Arc<Fence>> {
        if self.parts.is_empty() {
            vec![self.clone()]
        } else {
            self.parts.clone()
        }
    }

    fn lock(&self) -> MutexGuard<'_, FenceState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signals the fence (a no-op if it already is), waking waiters and running callbacks.
    pub fn signal(&self) {
        self.finish(None);
    }

    /// Signals the fence with an error (a GPU fault, a cancelled job).
    pub fn signal_error(&self, error: Errno) {
        self.finish(Some(error));
    }

    fn finish(&self, error: Option<Errno>) {
        let callbacks = {
            let mut s = self.lock();
            if s.signalled {
                return;
            }
            s.signalled = true;
            s.error = error;
            // The kernel's `ktime_get` at signalling.
            s.timestamp_ns = super::gem::monotonic_ns() as u64;
            std::mem::take(&mut s.callbacks)
        };
        self.cv.notify_all();
        for cb in callbacks {
            cb();
        }
    }

    pub fn is_signalled(&self) -> bool {
        self.lock().signalled
    }

    /// `dma_fence_get_status`: 0 while pending, 1 once signalled, the negative errno of a
    /// fence signalled with an error.
    pub fn status(&self) -> i32 {
        let s = self.lock();
        match (s.signalled, s.error) {
            (false, _) => 0,
            (true, None) => 1,
            (true, Some(e)) => -e.0,
        }
    }

    /// CLOCK_MONOTONIC nanoseconds at which it signalled; 0 while pending.
    pub fn timestamp_ns(&self) -> u64 {
        self.lock().timestamp_ns
    }

    /// The error it signalled with, if any.
    pub fn error(&self) -> Option<Errno> {
        self.lock().error
    }

    /// Waits until signalled or until `deadline` (`None`: forever). ETIMEDOUT on timeout.
    pub fn wait(&self, deadline: Option<Instant>) -> Result<(), Errno> {
        let mut s = self.lock();
        while !s.signalled {
            match deadline {
                None => s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Errno::ETIMEDOUT);
                    }
                    s = self
                        .cv
                        .wait_timeout(s, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        Ok(())
    }

    /// Runs `cb` once the fence signals: now, on this thread, if it already has.
    pub fn on_signal(&self, cb: impl FnOnce() + Send + 'static) {
        {
            let mut s = self.lock();
            if !s.signalled {
                s.callbacks.push(Box::new(cb));
                return;
            }
        }
        cb();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[test]
    fn signal_wakes_waiter_and_runs_callbacks_once() {
        let f = Fence::new(new_context(), 1);
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        f.on_signal(move || r.store(true, Ordering::SeqCst));
        let g = f.clone();
        let t = std::thread::spawn(move || g.wait(None));
        f.signal();
        f.signal();
        assert_eq!(t.join().unwrap(), Ok(()));
        assert!(ran.load(Ordering::SeqCst));
    }

    #[test]
    fn wait_with_past_deadline_times_out() {
        let f = Fence::new(new_context(), 1);
        assert_eq!(f.wait(Some(Instant::now())), Err(Errno::ETIMEDOUT));
        assert_eq!(
            f.wait(Some(Instant::now() + Duration::from_millis(5))),
            Err(Errno::ETIMEDOUT)
        );
        assert!(Fence::signalled().wait(Some(Instant::now())).is_ok());
    }
}
