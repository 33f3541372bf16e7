//! Ranges freed "after fence F": who waits on what, and which ranges a re-import may take back.
//!
//! Owns: one min-queue of widened fence points per timeline, the fence and optional key of every
//! deferred node. Takes no locks; it lives inside the heap's mutex and reads [`Timelines`] (a leaf
//! lock) only when the timelines' generation changed.
//!
//! Entries are never searched for: a node revived by a re-import or reused after a reclaim carries
//! a new tag, so its stale queue entry is dropped when its point passes (lazy deletion).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::fence::{Fence, Timeline, Timelines};

#[derive(Clone, Copy, Debug)]
pub(crate) struct DeferInfo {
    pub fence: Fence,
    pub key: Option<u64>,
}

/// One timeline's waiting ranges: (widened point, node, tag), smallest point first.
type PointQueue = BinaryHeap<Reverse<(u64, u32, u32)>>;

#[derive(Default)]
pub(crate) struct Deferred {
    queues: HashMap<Timeline, PointQueue>,
    info: HashMap<u32, DeferInfo>,
    by_key: HashMap<u64, u32>,
    /// The timelines' generation when the queues were last compared with them.
    pub seen_generation: u64,
}

impl Deferred {
    pub fn push(&mut self, fence: Fence, wide: u64, node: u32, tag: u32, key: Option<u64>) {
        self.queues
            .entry(fence.timeline())
            .or_default()
            .push(Reverse((wide, node, tag)));
        if let Some(k) = key {
            if let Some(old) = self.by_key.insert(k, node) {
                // The key moved to a newer range; the older one just waits to be reclaimed.
                if let Some(i) = self.info.get_mut(&old) {
                    i.key = None;
                }
            }
        }
        self.info.insert(node, DeferInfo { fence, key });
    }

    pub fn fence_of(&self, node: u32) -> Option<Fence> {
        self.info.get(&node).map(|i| i.fence)
    }

    /// The deferred node tagged with `key`, removed from the key map.
    pub fn take_key(&mut self, key: u64) -> Option<u32> {
        let node = self.by_key.remove(&key)?;
        if let Some(i) = self.info.get_mut(&node) {
            i.key = None;
        }
        Some(node)
    }

    /// Forgets `node`'s fence and key (it was reclaimed or revived); its queue entry goes stale.
    pub fn forget(&mut self, node: u32) {
        if let Some(DeferInfo { key: Some(k), .. }) = self.info.remove(&node) {
            if self.by_key.get(&k) == Some(&node) {
                self.by_key.remove(&k);
            }
        }
    }

    /// Pops every entry whose fence has signalled according to `timelines`: (node, tag) pairs,
    /// some of which may be stale.
    pub fn due(&mut self, timelines: &Timelines) -> Vec<(u32, u32)> {
        self.queues.retain(|_, q| !q.is_empty());
        let names: Vec<Timeline> = self.queues.keys().copied().collect();
        let done = timelines.completed_of(names.iter().copied());
        let mut out = Vec::new();
        for (t, done) in names.iter().zip(done) {
            let Some(done) = done else { continue };
            let q = self.queues.get_mut(t).expect("listed above");
            while let Some(&Reverse((wide, node, tag))) = q.peek() {
                if wide > done {
                    break;
                }
                q.pop();
                out.push((node, tag));
            }
        }
        out
    }
}
