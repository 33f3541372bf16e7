//! Ranges freed "after fence F": who waits on what, and which ranges a re-import may take back.
//!
//! Owns: one min-queue of widened fence points per timeline, the fence and optional key of every
//! deferred range. Takes no locks; it lives inside its arena's lock and reads [`Timelines`] (a leaf
//! lock) only when the timelines' generation changed.
//!
//! A deferred range is named by its first unit (it cannot move or merge while it waits). Queue
//! entries are never searched for: a range revived by a re-import, or freed again at the same
//! address after a reclaim, carries a new sequence number, so its stale queue entry is dropped when
//! its point passes (lazy deletion).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use super::fence::{Fence, Timeline, Timelines};

#[derive(Clone, Copy, Debug)]
struct DeferInfo {
    fence: Fence,
    key: Option<u64>,
    seq: u64,
}

/// One timeline's waiting ranges: (widened point, first unit, sequence number), smallest first.
type PointQueue = BinaryHeap<Reverse<(u64, u64, u64)>>;

/// Sequence numbers of deferred frees, process-wide so that the arenas of a heap can tell which of
/// two ranges freed with the same key is the newer.
static NEXT_SEQ: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
pub(crate) struct Deferred {
    queues: HashMap<Timeline, PointQueue>,
    info: HashMap<u64, DeferInfo>,
    by_key: HashMap<u64, u64>,
    /// The timelines' generation when the queues were last compared with them.
    pub seen_generation: u64,
}

impl Deferred {
    /// Parks the range starting at `start` until `fence` (widened: `wide`) signals.
    pub fn push(&mut self, fence: Fence, wide: u64, start: u64, key: Option<u64>) {
        let seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        self.queues
            .entry(fence.timeline())
            .or_default()
            .push(Reverse((wide, start, seq)));
        if let Some(k) = key {
            if let Some(old) = self.by_key.insert(k, start) {
                // The key moved to a newer range; the older one just waits to be reclaimed.
                if let Some(i) = self.info.get_mut(&old) {
                    i.key = None;
                }
            }
        }
        self.info.insert(start, DeferInfo { fence, key, seq });
    }

    pub fn fence_of(&self, start: u64) -> Option<Fence> {
        self.info.get(&start).map(|i| i.fence)
    }

    /// When the range tagged with `key` was freed (a sequence number: larger is newer).
    pub fn key_seq(&self, key: u64) -> Option<u64> {
        let start = self.by_key.get(&key)?;
        self.info.get(start).map(|i| i.seq)
    }

    /// The deferred range tagged with `key`, removed from the key map.
    pub fn take_key(&mut self, key: u64) -> Option<u64> {
        let start = self.by_key.remove(&key)?;
        if let Some(i) = self.info.get_mut(&start) {
            i.key = None;
        }
        Some(start)
    }

    /// Forgets the range at `start` (revived by a re-import); its queue entry goes stale.
    pub fn forget(&mut self, start: u64) {
        if let Some(DeferInfo { key: Some(k), .. }) = self.info.remove(&start) {
            if self.by_key.get(&k) == Some(&start) {
                self.by_key.remove(&k);
            }
        }
    }

    /// Pops and forgets every range whose fence has signalled according to `timelines`; returns
    /// their first units.
    pub fn due(&mut self, timelines: &Timelines) -> Vec<u64> {
        self.queues.retain(|_, q| !q.is_empty());
        let names: Vec<Timeline> = self.queues.keys().copied().collect();
        let done = timelines.completed_of(names.iter().copied());
        let mut out = Vec::new();
        for (t, done) in names.iter().zip(done) {
            let Some(done) = done else { continue };
            let q = self.queues.get_mut(t).expect("listed above");
            while let Some(&Reverse((wide, start, seq))) = q.peek() {
                if wide > done {
                    break;
                }
                q.pop();
                if self.info.get(&start).is_some_and(|i| i.seq == seq) {
                    out.push(start);
                }
            }
        }
        for &s in &out {
            self.forget(s);
        }
        out
    }
}
