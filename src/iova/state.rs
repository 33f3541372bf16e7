//! The allocator proper, in granule units: holes in size bins, a sampled address index, the live
//! map and the deferred frees.
//!
//! Owns: [`HeapState`]. Takes no locks itself; [`super::VaHeap`] keeps it in a mutex. It reads
//! [`Timelines`] (a leaf lock) only when the timelines' generation changed.
//!
//! The address index ("anchors") holds about one block in [`ANCHOR_ONE_IN`], chosen at random when
//! the block is made, keyed by its last unit, plus always the last block of the heap. Finding the
//! block that holds an address is one B-tree search for the first anchor at or above it and a walk
//! down the address links, [`ANCHOR_ONE_IN`] blocks on average: O(log n) expected. Because only
//! sampled blocks are in the tree, allocations and frees touch it 1 time in [`ANCHOR_ONE_IN`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::bins::{bin_at_least, bin_min, bin_of, Bins, NBINS};
use super::blocks::{Slab, State, NIL};
use super::deferred::Deferred;
use super::fence::{Fence, Timelines};
use super::live::LiveMap;
use super::place::{place, Request};

/// Why a fixed-address request failed, in units; the heap turns it into a [`super::VaError`].
pub(crate) enum FixedMiss {
    Taken,
    Deferred(Vec<Fence>),
}

/// Why a free failed: the range is not a live allocation of that size.
pub(crate) struct NotLive;

/// Holes of the request's own size classes tried before a bigger class is split (bottom-up).
const PROBES: usize = 4;

/// On average one block in this many is in the anchor index.
pub(crate) const ANCHOR_ONE_IN: u64 = 16;

pub(crate) struct HeapState {
    slab: Slab,
    bins: Bins,
    /// Anchor blocks (any state) by last unit; the heap's last block is always one.
    anchors: BTreeMap<u64, u32>,
    /// xorshift64 state choosing anchors.
    rng: u64,
    /// Live nodes by first unit: frees are checked against it in O(1).
    live: LiveMap,
    deferred: Deferred,
    timelines: Arc<Timelines>,
    free_units: u64,
    deferred_units: u64,
    start: u64,
    end: u64,
}

impl HeapState {
    /// A heap over units `[start, end)`, `start < end`.
    pub fn new(start: u64, end: u64, timelines: Arc<Timelines>) -> HeapState {
        let mut s = HeapState {
            slab: Slab::default(),
            bins: Bins::default(),
            anchors: BTreeMap::new(),
            rng: 0x2545_f491_4f6c_dd1d,
            live: LiveMap::default(),
            deferred: Deferred::default(),
            timelines,
            free_units: end - start,
            deferred_units: 0,
            start,
            end,
        };
        let n = s.slab.alloc(start, end - start, State::Free);
        s.slab[n].anchor = true;
        s.anchors.insert(end - 1, n);
        s.bins.insert(&mut s.slab, n);
        s.deferred.seen_generation = s.timelines.generation();
        s
    }

    pub fn free_units(&self) -> u64 {
        self.free_units
    }

    pub fn deferred_units(&self) -> u64 {
        self.deferred_units
    }

    /// The hole and start for `req`, or `None` if no hole holds it.
    ///
    /// Bottom-up first tries up to [`PROBES`] holes of the request's own size classes (below the
    /// sure-fit class), so a fitting small hole is used before a bigger one is split; top-down
    /// first tries the largest bin. Then the fast path (O(1)): a hole from the first non-empty bin
    /// whose every hole is at least `req.sure_fit()` units. Exact fallback, only when no such hole
    /// exists: every hole in the bins from `bin_of(units)` up is tried.
    fn find(&self, req: &Request) -> Option<(u32, u64)> {
        let sure = req.sure_fit();
        let sure_bin = bin_at_least(sure);
        let first_fit = |bin: usize| {
            let h = self.bins.head(bin);
            let n = &self.slab[h];
            Some((
                h,
                place(n.start, n.end(), req).expect("a hole of sure_fit units fits"),
            ))
        };
        if req.top_down {
            if let Some(b) = self.bins.last().filter(|&b| b >= sure_bin) {
                return first_fit(b);
            }
        } else if let Some(found) = self.scan(req, bin_of(req.units), sure_bin, PROBES) {
            // A hole of the request's own size class that holds it: splits no bigger hole.
            return Some(found);
        }
        if let Some(b) = self.bins.first_from(sure_bin) {
            return first_fit(b);
        }
        self.scan(req, bin_of(req.units), NBINS, usize::MAX)
    }

    /// The first hole in bins `[from, to)` that holds `req`, trying at most `budget` holes.
    #[inline]
    fn scan(&self, req: &Request, from: usize, to: usize, mut budget: usize) -> Option<(u32, u64)> {
        let mut bin = from;
        while let Some(b) = self.bins.first_from(bin).filter(|&b| b < to) {
            let mut h = self.bins.head(b);
            while h != NIL {
                if budget == 0 {
                    return None;
                }
                budget -= 1;
                let n = &self.slab[h];
                if let Some(c) = place(n.start, n.end(), req) {
                    return Some((h, c));
                }
                h = n.bin_next;
            }
            bin = b + 1;
        }
        None
    }

    pub fn alloc(&mut self, req: &Request) -> Option<u64> {
        self.reclaim();
        let (h, c) = self.find(req)?;
        self.carve(h, c, req.units, State::Used);
        Some(c)
    }

    /// As [`Self::alloc`], but the allocation is not entered in the live map: it is named by the
    /// returned (node, tag) and freed only by [`Self::free_handle`], which needs no lookup.
    pub fn alloc_handle(&mut self, req: &Request) -> Option<(u64, u32, u32)> {
        self.reclaim();
        let (h, c) = self.find(req)?;
        let x = self.carve(h, c, req.units, State::Held);
        Some((c, x, self.slab[x].tag))
    }

    /// Frees the allocation `alloc_handle` returned as (`start`, `node`, `tag`) with `units`
    /// units: O(1), no lookup. A stale or foreign handle (the node was freed since, so its tag
    /// moved on, or it holds another range) is `NotLive` and changes nothing.
    pub fn free_handle(
        &mut self,
        start: u64,
        units: u64,
        node: u32,
        tag: u32,
    ) -> Result<(), NotLive> {
        let n = self.slab.nodes.get(node as usize).ok_or(NotLive)?;
        if n.state != State::Held || n.tag != tag || n.start != start || n.units != units {
            return Err(NotLive);
        }
        // A node that stays as a hole (no free neighbour to merge into) must not match this
        // handle again once it is carved anew.
        self.slab[node].tag = tag.wrapping_add(1);
        self.release(node);
        Ok(())
    }

    /// A new node, in the anchor index with probability 1 / [`ANCHOR_ONE_IN`]. Not linked yet.
    fn new_node(&mut self, start: u64, units: u64, state: State) -> u32 {
        let x = self.slab.alloc(start, units, state);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng % ANCHOR_ONE_IN == 0 {
            self.slab[x].anchor = true;
            self.anchors.insert(start + units - 1, x);
        }
        x
    }

    /// Unlinks and frees node `x`, dropping it from the anchor index.
    fn drop_node(&mut self, x: u32) {
        if self.slab[x].anchor {
            self.anchors.remove(&self.slab[x].last());
        }
        self.slab.release(x);
    }

    /// Takes `[c, c + units)` out of free node `h`, which holds it, as a node in `state` (`Used`:
    /// entered in the live map; `Held`: not). Returns that node.
    fn carve(&mut self, h: u32, c: u64, units: u64, state: State) -> u32 {
        self.bins.remove(&mut self.slab, h);
        let (s, e) = (self.slab[h].start, self.slab[h].end());
        let (left, right) = (c - s, e - (c + units));
        let u;
        if right > 0 {
            // The hole keeps its last unit, hence its anchor key.
            self.slab[h].start = c + units;
            self.slab[h].units = right;
            self.bins.insert(&mut self.slab, h);
            u = self.new_node(c, units, state);
            self.slab.link_before(u, h);
            if left > 0 {
                let l = self.new_node(s, left, State::Free);
                self.slab.link_before(l, u);
                self.bins.insert(&mut self.slab, l);
            }
        } else if left > 0 {
            self.slab[h].units = left;
            self.bins.insert(&mut self.slab, h);
            u = self.new_node(c, units, state);
            self.slab.link_after(u, h);
            if self.slab[h].anchor {
                // `u` now ends where `h` ended: hand it the anchor key (this keeps the heap's last
                // block an anchor) without restructuring the tree. If `u` drew an anchor itself,
                // it already replaced `h` under that key.
                self.slab[h].anchor = false;
                self.slab[u].anchor = true;
                self.anchors.insert(e - 1, u);
            }
        } else {
            self.slab[h].state = state;
            u = h;
        }
        if state == State::Used {
            self.live.insert(c, u);
        }
        self.free_units -= units;
        u
    }

    /// Turns node `x` (live or deferred) into a hole merged with free neighbours.
    fn release(&mut self, x: u32) {
        let units = self.slab[x].units;
        let (prev, next) = (self.slab[x].addr_prev, self.slab[x].addr_next);
        let survivor = if next != NIL && self.slab[next].state == State::Free {
            self.bins.remove(&mut self.slab, next);
            self.slab[next].start = self.slab[x].start;
            self.slab[next].units += units;
            self.drop_node(x);
            next
        } else {
            self.slab[x].state = State::Free;
            x
        };
        if prev != NIL && self.slab[prev].state == State::Free {
            self.bins.remove(&mut self.slab, prev);
            self.slab[survivor].start = self.slab[prev].start;
            self.slab[survivor].units += self.slab[prev].units;
            self.drop_node(prev);
        }
        self.bins.insert(&mut self.slab, survivor);
        self.free_units += units;
    }

    /// Removes and returns the live node at `start` if it has exactly `units` units (one hash
    /// lookup); otherwise changes nothing.
    fn take_live(&mut self, start: u64, units: u64) -> Result<u32, NotLive> {
        match self.live.remove(start) {
            Some(x) if self.slab[x].units == units => Ok(x),
            Some(x) => {
                self.live.insert(start, x);
                Err(NotLive)
            }
            None => Err(NotLive),
        }
    }

    pub fn free(&mut self, start: u64, units: u64) -> Result<(), NotLive> {
        let x = self.take_live(start, units)?;
        self.release(x);
        Ok(())
    }

    /// Frees `[start, +units)` once `fence` signalled; `key` lets a re-import take it back.
    pub fn free_after(
        &mut self,
        start: u64,
        units: u64,
        fence: Fence,
        key: Option<u64>,
    ) -> Result<(), NotLive> {
        let x = self.take_live(start, units)?;
        let (wide, done) = self.timelines.widen(fence);
        if done.is_some_and(|d| wide <= d) {
            self.release(x);
            return Ok(());
        }
        let n = &mut self.slab[x];
        n.state = State::Deferred;
        n.tag = n.tag.wrapping_add(1);
        let tag = n.tag;
        self.deferred.push(fence, wide, x, tag, key);
        self.deferred_units += units;
        Ok(())
    }

    /// Turns every deferred range whose fence has signalled into a hole. One atomic load when
    /// nothing was published since the last call.
    #[inline]
    pub fn reclaim(&mut self) {
        let generation = self.timelines.generation();
        if generation != self.deferred.seen_generation {
            self.reclaim_due(generation);
        }
    }

    #[cold]
    fn reclaim_due(&mut self, generation: u64) {
        self.deferred.seen_generation = generation;
        for (x, tag) in self.deferred.due(&self.timelines) {
            let n = self.slab[x];
            if n.state == State::Deferred && n.tag == tag {
                self.deferred.forget(x);
                self.deferred_units -= n.units;
                self.release(x);
            }
        }
    }

    /// Gives back the deferred range tagged `key` if it still waits and satisfies `req`
    /// (same size, aligned, not crossing); otherwise allocates as [`Self::alloc`].
    pub fn alloc_keyed(&mut self, key: u64, req: &Request) -> Option<u64> {
        self.reclaim();
        if let Some(x) = self.deferred.take_key(key) {
            let n = self.slab[x];
            let fits = n.state == State::Deferred
                && n.units == req.units
                && place(n.start, n.end(), req) == Some(n.start);
            if fits {
                self.deferred.forget(x);
                self.deferred_units -= n.units;
                self.slab[x].state = State::Used;
                self.live.insert(n.start, x);
                return Some(n.start);
            }
        }
        self.alloc(req)
    }

    /// The block holding unit `at` (inside the heap): O(log n) expected (see the module docs).
    fn block_at(&self, at: u64) -> u32 {
        let (_, &anchor) = self
            .anchors
            .range(at..)
            .next()
            .expect("the last block is an anchor");
        let mut x = anchor;
        while self.slab[x].start > at {
            x = self.slab[x].addr_prev;
        }
        x
    }

    /// Allocates exactly `[start, start + units)`, inside the heap, in O(log n) expected; on a
    /// miss, plus O(k) for the k free or deferred blocks overlapping the request before the first
    /// live one.
    pub fn alloc_addr(&mut self, start: u64, units: u64) -> Result<(), FixedMiss> {
        self.reclaim();
        let end = start + units;
        let mut x = self.block_at(start);
        if self.slab[x].state == State::Free && self.slab[x].end() >= end {
            self.carve(x, start, units, State::Used);
            return Ok(());
        }
        // Not one hole: is it covered by holes and deferred ranges only?
        let mut fences = Vec::new();
        loop {
            let n = &self.slab[x];
            match n.state {
                State::Used | State::Held => return Err(FixedMiss::Taken),
                State::Deferred => fences.extend(self.deferred.fence_of(x)),
                _ => {}
            }
            if n.end() >= end {
                return Err(if fences.is_empty() {
                    FixedMiss::Taken
                } else {
                    FixedMiss::Deferred(fences)
                });
            }
            x = n.addr_next;
        }
    }

    /// Holes as (first unit, units), in address order. O(n).
    pub fn holes(&self) -> Vec<(u64, u64)> {
        self.blocks_of(State::Free)
    }

    /// Deferred ranges as (first unit, units), in address order. O(n).
    pub fn deferred_ranges(&self) -> Vec<(u64, u64)> {
        self.blocks_of(State::Deferred)
    }

    fn blocks_of(&self, state: State) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut x = self.block_at(self.start);
        while x != NIL {
            let n = &self.slab[x];
            if n.state == state {
                out.push((n.start, n.units));
            }
            x = n.addr_next;
        }
        out
    }

    /// The largest hole in units. O(holes in the largest bin).
    pub fn largest_hole(&self) -> u64 {
        let Some(b) = self.bins.last() else { return 0 };
        let mut best = bin_min(b);
        let mut h = self.bins.head(b);
        while h != NIL {
            best = best.max(self.slab[h].units);
            h = self.slab[h].bin_next;
        }
        best
    }

    /// Checks every structural invariant; for tests. O(n log n).
    pub fn check(&self) -> Result<(), String> {
        let first = (0..self.slab.nodes.len() as u32)
            .find(|&i| self.slab[i].state != State::Vacant && self.slab[i].addr_prev == NIL)
            .ok_or("no first block")?;
        let (mut at, mut x, mut count, mut anchors, mut used) =
            (self.start, first, 0usize, 0usize, 0);
        let (mut free, mut deferred, mut prev_free) = (0u64, 0u64, false);
        while x != NIL {
            let n = self.slab[x];
            if n.start != at || n.units == 0 {
                return Err(format!(
                    "block {x} at {} (+{}) expected at {at}",
                    n.start, n.units
                ));
            }
            if n.anchor {
                if self.anchors.get(&n.last()) != Some(&x) {
                    return Err(format!("anchor at {at} not indexed"));
                }
                anchors += 1;
            } else if n.addr_next == NIL {
                return Err("the last block is not an anchor".into());
            }
            match n.state {
                State::Free => {
                    if prev_free {
                        return Err(format!("adjacent holes at {at}"));
                    }
                    free += n.units;
                }
                State::Deferred => deferred += n.units,
                State::Used => {
                    used += 1;
                    if self.live.get(n.start) != Some(x) {
                        return Err(format!("live block at {at} not in the live map"));
                    }
                }
                State::Held => {}
                State::Vacant => return Err(format!("vacant node {x} linked")),
            }
            prev_free = n.state == State::Free;
            at = n.end();
            count += 1;
            x = n.addr_next;
        }
        if at != self.end {
            return Err(format!("blocks end at {at}, heap at {}", self.end));
        }
        if used != self.live.len() {
            return Err(format!(
                "{used} live blocks, {} in the live map",
                self.live.len()
            ));
        }
        if count != self.slab.live_count() || anchors != self.anchors.len() {
            return Err(format!(
                "{count} blocks linked, {} in the slab; {anchors} anchors, {} indexed",
                self.slab.live_count(),
                self.anchors.len()
            ));
        }
        if free != self.free_units || deferred != self.deferred_units {
            return Err(format!(
                "free {free}/{} deferred {deferred}/{}",
                self.free_units, self.deferred_units
            ));
        }
        let mut binned = 0;
        for b in 0..NBINS {
            let mut h = self.bins.head(b);
            if (self.bins.first_from(b) == Some(b)) != (h != NIL) {
                return Err(format!("bitmap of bin {b} wrong"));
            }
            while h != NIL {
                let n = self.slab[h];
                if n.state != State::Free || bin_of(n.units) != b {
                    return Err(format!("node {h} in wrong bin {b}"));
                }
                binned += n.units;
                h = n.bin_next;
            }
        }
        if binned != free {
            return Err(format!("{binned} units binned, {free} free"));
        }
        Ok(())
    }
}
