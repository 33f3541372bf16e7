//! Fences a freed range can wait on, and the book of completed points the device publishes.
//!
//! Owns: [`Fence`], [`Timelines`] (completed point per queue and per syncobj) and the
//! [`FenceWait`] hook. Locks: `Timelines::completed` (a mutex, a leaf: nothing is called while it is
//! held). Heaps read it while holding their own state lock, so the order is heap state ->
//! timelines; the device publishes without touching any heap lock.
//!
//! No ioctl happens here. The device learns that fences completed from the waits and submits it
//! already does and publishes that with [`Timelines::signal_queue`] / [`Timelines::signal_syncobj`];
//! a heap notices through one atomic load of the generation counter on its next call.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::sync::{AtomicU64, Mutex};
use crate::Errno;

/// A point a freed range waits for before it can be handed out again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fence {
    /// A submitqueue's 32-bit fence seqno, compared with wrap-around as the kernel does
    /// (`(s32)(a - b) >= 0`).
    Queue { queue_id: u32, seqno: u32 },
    /// A syncobj point; `point` 0 is a binary syncobj (signalled once any point is published).
    Syncobj { handle: u32, point: u64 },
}

/// One timeline a fence belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Timeline {
    Queue(u32),
    Syncobj(u32),
}

impl Fence {
    pub(crate) fn timeline(self) -> Timeline {
        match self {
            Fence::Queue { queue_id, .. } => Timeline::Queue(queue_id),
            Fence::Syncobj { handle, .. } => Timeline::Syncobj(handle),
        }
    }
}

/// Completed progress of one timeline. Queue seqnos are widened to 64 bits relative to the last
/// completed one, so later comparisons are plain integer ones across 2^32 wraps.
#[derive(Clone, Copy, Debug)]
struct Progress {
    /// Last completed raw seqno (queues) or point (syncobjs).
    raw: u64,
    /// Widened completed point; `None` for a syncobj that never signalled.
    wide: Option<u64>,
}

/// Start of the widened seqno space: seqno 0 (the kernel never hands it out) counts as completed,
/// and up to 2^31 older seqnos stay representable below it.
const QUEUE_BASE: u64 = 1 << 32;

/// Completed fence points, shared by the device (writer) and any number of heaps (readers).
#[derive(Debug, Default)]
pub struct Timelines {
    completed: Mutex<HashMap<Timeline, Progress>>,
    generation: AtomicU64,
}

impl Timelines {
    pub fn new() -> Timelines {
        Timelines::default()
    }

    /// Publishes that queue `queue_id` completed every seqno up to `seqno` (wrap-aware; an older
    /// seqno than already published changes nothing).
    pub fn signal_queue(&self, queue_id: u32, seqno: u32) {
        let mut map = self.completed.lock().unwrap_or_else(|p| p.into_inner());
        let p = map.entry(Timeline::Queue(queue_id)).or_insert(Progress {
            raw: 0,
            wide: Some(QUEUE_BASE),
        });
        let ahead = seqno.wrapping_sub(p.raw as u32) as i32;
        if ahead > 0 {
            p.raw = seqno as u64;
            p.wide = p.wide.map(|w| w + ahead as u64);
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Publishes that syncobj `handle` reached `point` (a binary syncobj: any point, e.g. 0).
    pub fn signal_syncobj(&self, handle: u32, point: u64) {
        let mut map = self.completed.lock().unwrap_or_else(|p| p.into_inner());
        let p = map
            .entry(Timeline::Syncobj(handle))
            .or_insert(Progress { raw: 0, wide: None });
        if p.wide.is_none_or(|w| point > w) {
            p.raw = point;
            p.wide = Some(point);
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Publishes `fence` as signalled (after an explicit wait succeeded).
    pub fn signal(&self, fence: Fence) {
        match fence {
            Fence::Queue { queue_id, seqno } => self.signal_queue(queue_id, seqno),
            Fence::Syncobj { handle, point } => self.signal_syncobj(handle, point),
        }
    }

    /// Whether `fence` is known to have signalled.
    pub fn is_signalled(&self, fence: Fence) -> bool {
        let (wide, done) = self.widen(fence);
        done.is_some_and(|d| wide <= d)
    }

    /// Changes every time a point is published; one atomic load tells a heap whether to look.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// `fence` as a widened point on its timeline, and that timeline's completed widened point.
    pub(crate) fn widen(&self, fence: Fence) -> (u64, Option<u64>) {
        let map = self.completed.lock().unwrap_or_else(|p| p.into_inner());
        match fence {
            Fence::Queue { queue_id, seqno } => {
                let p = map.get(&Timeline::Queue(queue_id)).copied();
                let p = p.unwrap_or(Progress {
                    raw: 0,
                    wide: Some(QUEUE_BASE),
                });
                let diff = seqno.wrapping_sub(p.raw as u32) as i32 as i64;
                let done = p.wide.unwrap_or(QUEUE_BASE);
                (done.wrapping_add_signed(diff), Some(done))
            }
            Fence::Syncobj { handle, point } => (
                point,
                map.get(&Timeline::Syncobj(handle)).and_then(|p| p.wide),
            ),
        }
    }

    /// The completed widened point of every timeline in `which`, in the same order.
    pub(crate) fn completed_of(&self, which: impl Iterator<Item = Timeline>) -> Vec<Option<u64>> {
        let map = self.completed.lock().unwrap_or_else(|p| p.into_inner());
        which
            .map(|t| match map.get(&t) {
                Some(p) => p.wide,
                None if matches!(t, Timeline::Queue(_)) => Some(QUEUE_BASE),
                None => None,
            })
            .collect()
    }
}

/// How a heap waits for a fence when asked to (a fixed-address request that only collides with
/// deferred ranges). The device implements it with WAIT_FENCE / SYNCOBJ_WAIT; it may ioctl, it is
/// only ever called from an explicit waiting call, never from the allocation path, and never with
/// a heap lock held.
pub trait FenceWait {
    /// Blocks until `fence` signalled (`Ok`) or `timeout` passed (`Err(ETIMEDOUT)`), or fails with
    /// the kernel's errno.
    fn wait(&self, fence: Fence, timeout: Duration) -> Result<(), Errno>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_seqnos_compare_across_the_32_bit_wrap() {
        let t = Timelines::new();
        let near_wrap = u32::MAX - 5;
        t.signal_queue(1, near_wrap);
        assert!(t.is_signalled(Fence::Queue {
            queue_id: 1,
            seqno: near_wrap - 100
        }));
        assert!(!t.is_signalled(Fence::Queue {
            queue_id: 1,
            seqno: 3
        }));
        t.signal_queue(1, 10); // wrapped
        assert!(t.is_signalled(Fence::Queue {
            queue_id: 1,
            seqno: 3
        }));
        assert!(t.is_signalled(Fence::Queue {
            queue_id: 1,
            seqno: near_wrap
        }));
        assert!(!t.is_signalled(Fence::Queue {
            queue_id: 1,
            seqno: 11
        }));
        let g = t.generation();
        t.signal_queue(1, 9); // older: nothing changes
        assert_eq!(t.generation(), g);
        assert!(!t.is_signalled(Fence::Queue {
            queue_id: 2,
            seqno: 1
        }));
    }

    #[test]
    fn syncobj_points_are_monotonic() {
        let t = Timelines::new();
        assert!(!t.is_signalled(Fence::Syncobj {
            handle: 3,
            point: 0
        }));
        t.signal_syncobj(3, 5);
        assert!(t.is_signalled(Fence::Syncobj {
            handle: 3,
            point: 5
        }));
        assert!(!t.is_signalled(Fence::Syncobj {
            handle: 3,
            point: 6
        }));
    }
}

/// Model-checked (`--cfg shuttle`, docs/reliability.md): the fence book's publishes and reads
/// from several threads, across the 32-bit wrap of a queue's seqnos.
#[cfg(all(test, shuttle))]
mod shuttle_tests {
    use std::sync::Arc;

    use shuttle::thread;

    use super::*;
    use crate::iova::{AllocFlags, VaHeap, PAGE_B};
    use crate::sync::check;

    const NEAR_WRAP: u32 = u32::MAX - 1;

    fn q1(seqno: u32) -> Fence {
        Fence::Queue { queue_id: 1, seqno }
    }

    fn s9(point: u64) -> Fence {
        Fence::Syncobj { handle: 9, point }
    }

    /// Queue 1 stands at `NEAR_WRAP`; two threads publish seqnos past it (2, after the wrap,
    /// and u32::MAX, before it) and, with `syncobjs`, a third publishes points 4 then 3 of
    /// syncobj 9, in any order. Returns the publishing threads.
    fn publish_all(t: &Arc<Timelines>, syncobjs: bool) -> Vec<thread::JoinHandle<()>> {
        t.signal_queue(1, NEAR_WRAP);
        let publish = |f: &'static [Fence]| {
            let t = t.clone();
            thread::spawn(move || f.iter().for_each(|&f| t.signal(f)))
        };
        let mut threads = vec![
            publish(&[Fence::Queue {
                queue_id: 1,
                seqno: 2,
            }]),
            publish(&[Fence::Queue {
                queue_id: 1,
                seqno: u32::MAX,
            }]),
        ];
        if syncobjs {
            threads.push(publish(&[
                Fence::Syncobj {
                    handle: 9,
                    point: 4,
                },
                Fence::Syncobj {
                    handle: 9,
                    point: 3,
                },
            ]));
        }
        threads
    }

    /// What every schedule must end with: the newest point of each timeline, whatever order
    /// the publishes landed in.
    fn assert_final(t: &Timelines, syncobjs: bool) {
        assert!(t.is_signalled(q1(u32::MAX)) && t.is_signalled(q1(2)));
        assert!(!t.is_signalled(q1(3)));
        if syncobjs {
            assert!(t.is_signalled(s9(4)) && !t.is_signalled(s9(5)));
        }
    }

    /// A reader meanwhile sees a consistent book: the generation never goes back, and a seqno
    /// past the wrap is never signalled while one before it is not.
    #[test]
    fn shuttle_fence_book_every_schedule() {
        check::dfs("fence book", || {
            let t = Arc::new(Timelines::new());
            // Two publishers and a reader: every schedule of more threads is beyond a depth-first
            // search (shuttle has no partial-order reduction); the PCT test below adds them.
            let publishers = publish_all(&t, false);
            let r = t.clone();
            let reader = thread::spawn(move || {
                let g1 = r.generation();
                let after_wrap = r.is_signalled(q1(1));
                let before_wrap = r.is_signalled(q1(u32::MAX));
                assert!(r.generation() >= g1);
                assert!(!after_wrap || before_wrap, "seqno 1 before u32::MAX");
            });
            for p in publishers {
                p.join().unwrap();
            }
            reader.join().unwrap();
            assert_final(&t, false);
        });
    }

    /// A heap reads the book while it changes: a range freed after seqno 1 (past the wrap) is
    /// handed out only once that seqno is published, and is free at the end with no further
    /// publish.
    #[test]
    fn shuttle_fence_book_read_by_a_heap() {
        check::pct("fence book read by a heap", 20_000, 3, || {
            let t = Arc::new(Timelines::new());
            let heap = Arc::new(VaHeap::with_options(0, 4 * PAGE_B, PAGE_B, t.clone(), 1).unwrap());
            t.signal_queue(1, NEAR_WRAP);
            let r = heap.alloc(PAGE_B, PAGE_B, AllocFlags::BOTTOM_UP).unwrap();
            heap.free_after(r, PAGE_B, q1(1), None).unwrap();
            let publishers = publish_all(&t, true);
            let (h, tl) = (heap.clone(), t.clone());
            let allocator = thread::spawn(move || {
                let x = h.alloc(PAGE_B, PAGE_B, AllocFlags::BOTTOM_UP).unwrap();
                assert!(x != r || tl.is_signalled(q1(1)), "reused before its fence");
                x
            });
            for p in publishers {
                p.join().unwrap();
            }
            let x = allocator.join().unwrap();
            assert_final(&t, true);
            heap.free(x, PAGE_B).unwrap();
            assert_eq!(
                heap.largest_hole(),
                4 * PAGE_B,
                "the deferred range was lost"
            );
            heap.check_invariants().unwrap();
        });
    }
}
