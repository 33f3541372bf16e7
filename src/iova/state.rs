//! One arena of the allocator, in granule units: every block of `[start, end)` in an augmented
//! B+tree (`tree.rs`) and the ranges waiting on fences (`deferred.rs`).
//!
//! Owns: [`HeapState`]. Takes no locks itself; [`super::VaHeap`] keeps each arena in its own lock.
//! It reads [`Timelines`] (a leaf lock) only when the timelines' generation changed.
//!
//! Placement is exact address-ordered first fit within the arena: bottom-up takes the lowest
//! valid start of all its holes, top-down the highest, with alignment and no-cross applied
//! (`place.rs`). That is util_vma_heap's policy, found in O(log n) instead of O(holes).
//!
//! An arena may be empty (`start == end`, no tree) after the heap moved its range into a
//! neighbour; [`HeapState::set_range`] moves only free space, so an allocation never straddles two
//! arenas.

use std::sync::Arc;

use super::deferred::Deferred;
use super::fence::{Fence, Timelines};
use super::place::{place, Request};
use super::tree::{Block, Cursor, State, Tree};

/// Why a fixed-address request failed, in units; the heap turns it into a [`super::VaError`].
pub(crate) enum FixedMiss {
    Taken,
    Deferred(Vec<Fence>),
}

/// Why a free failed: the range is not a live allocation of that size.
#[derive(Debug)]
pub(crate) struct NotLive;

pub(crate) struct HeapState {
    /// `None` while the arena is empty.
    tree: Option<Tree>,
    deferred: Deferred,
    timelines: Arc<Timelines>,
    free_units: u64,
    deferred_units: u64,
    start: u64,
    end: u64,
}

impl HeapState {
    /// An arena over units `[start, end)`, all free (empty if `start == end`).
    pub fn new(start: u64, end: u64, timelines: Arc<Timelines>) -> HeapState {
        let mut deferred = Deferred::default();
        deferred.seen_generation = timelines.generation();
        HeapState {
            tree: (start < end).then(|| Tree::new(Block::new(start, end - start, State::Free))),
            deferred,
            timelines,
            free_units: end - start,
            deferred_units: 0,
            start,
            end,
        }
    }

    pub fn free_units(&self) -> u64 {
        self.free_units
    }

    pub fn deferred_units(&self) -> u64 {
        self.deferred_units
    }

    /// The arena's units `[start, end)`.
    pub fn range(&self) -> (u64, u64) {
        (self.start, self.end)
    }

    /// Whether unit `at` is inside the arena.
    pub fn holds(&self, at: u64) -> bool {
        self.start <= at && at < self.end
    }

    fn tree(&self) -> &Tree {
        self.tree.as_ref().expect("a call routed to an empty arena")
    }

    fn tree_mut(&mut self) -> &mut Tree {
        self.tree.as_mut().expect("a call routed to an empty arena")
    }

    /// The arena's first block if it is a hole, as (first unit, end).
    pub fn lead_hole(&self) -> Option<(u64, u64)> {
        let b = self.tree.as_ref()?.first();
        b.is_free().then(|| (b.start, b.end()))
    }

    /// The arena's last block if it is a hole, as (first unit, end).
    pub fn tail_hole(&self) -> Option<(u64, u64)> {
        let b = self.tree.as_ref()?.last();
        b.is_free().then(|| (b.start, b.end()))
    }

    /// Whether the whole arena is one hole (or empty).
    pub fn all_free(&self) -> bool {
        self.free_units == self.end - self.start
    }

    /// Moves the arena to `[lo, hi)`: the units given up must be free here, the units taken on
    /// free in the neighbour that gives them up. The heap holds both arenas' locks.
    pub fn set_range(&mut self, lo: u64, hi: u64) {
        if lo >= hi {
            debug_assert!(self.all_free());
            self.tree = None;
            self.free_units = 0;
            (self.start, self.end) = (lo, lo);
            return;
        }
        if self.all_free() {
            // One hole or none: whatever moved, the arena is one hole again. (Edge by edge, a
            // range that moves both ways could otherwise remove the only block.)
            let levels = self.tree.as_ref().map(Tree::tracked_levels);
            let mut tree = Tree::new(Block::new(lo, hi - lo, State::Free));
            if let Some(levels) = levels {
                tree.track_levels(levels);
            }
            self.tree = Some(tree);
            self.free_units = hi - lo;
            (self.start, self.end) = (lo, hi);
            return;
        }
        // A block in use stays inside the new range, so neither edge removes the last block.
        let tree = self.tree.as_mut().expect("an arena with blocks in use");
        // The top first: the bottom may then rekey a block that the top just resized.
        if hi > self.end {
            let last = tree.last();
            if last.is_free() {
                tree.set_last(Block::new(last.start, hi - last.start, State::Free));
            } else {
                tree.push_last(Block::new(self.end, hi - self.end, State::Free));
            }
            self.free_units += hi - self.end;
        } else if hi < self.end {
            let last = tree.last();
            debug_assert!(last.is_free() && last.start <= hi, "giving up units in use");
            if last.start == hi {
                tree.remove_block(last.start);
            } else {
                tree.set_last(Block::new(last.start, hi - last.start, State::Free));
            }
            self.free_units -= self.end - hi;
        }
        self.end = hi;
        if lo < self.start {
            let first = tree.first();
            let end = if first.is_free() {
                first.end()
            } else {
                self.start
            };
            if first.is_free() {
                tree.set_first(Block::new(lo, end - lo, State::Free));
            } else {
                tree.insert_first(Block::new(lo, end - lo, State::Free));
            }
            self.free_units += self.start - lo;
        } else if lo > self.start {
            let first = tree.first();
            debug_assert!(
                first.is_free() && first.end() >= lo,
                "giving up units in use"
            );
            if first.end() == lo {
                tree.remove_block(first.start);
            } else {
                tree.set_first(Block::new(lo, first.end() - lo, State::Free));
            }
            self.free_units -= lo - self.start;
        }
        self.start = lo;
    }

    pub fn alloc(&mut self, req: &Request) -> Option<u64> {
        self.reclaim();
        let (c, at) = self.tree.as_mut()?.find(req)?;
        self.carve(&c, at, req.units);
        Some(at)
    }

    /// Takes `[at, at + units)` out of the hole at `c`, which holds it, as a live allocation.
    fn carve(&mut self, c: &Cursor, at: u64, units: u64) {
        let h = self.tree().get(c);
        let mut with = [Block::new(0, 0, State::Free); 3];
        let mut n = 0;
        if at > h.start {
            with[n] = Block::new(h.start, at - h.start, State::Free);
            n += 1;
        }
        with[n] = Block::new(at, units, State::Used);
        n += 1;
        if at + units < h.end() {
            with[n] = Block::new(at + units, h.end() - (at + units), State::Free);
            n += 1;
        }
        self.tree_mut().replace(c, 0, 0, &with[..n]);
        self.free_units -= units;
    }

    /// Turns the block at `c` (live or deferred) into a hole merged with free neighbours; returns
    /// that hole as (first unit, end).
    fn release(&mut self, c: &Cursor) -> (u64, u64) {
        let tree = self.tree_mut();
        let x = tree.get(c);
        let prev = tree.prev_block(c).filter(Block::is_free);
        let next = tree.next_block(c).filter(Block::is_free);
        let start = prev.map_or(x.start, |p| p.start);
        let end = next.map_or(x.end(), |n| n.end());
        tree.replace(
            c,
            usize::from(prev.is_some()),
            usize::from(next.is_some()),
            &[Block::new(start, end - start, State::Free)],
        );
        self.free_units += x.units;
        (start, end)
    }

    /// The live block at `start` with exactly `units` units.
    fn live_at(&self, start: u64, units: u64) -> Result<Cursor, NotLive> {
        if !self.holds(start) {
            return Err(NotLive);
        }
        let c = self.tree().locate(start);
        let b = self.tree().get(&c);
        if b.state != State::Used || b.start != start || b.units != units {
            return Err(NotLive);
        }
        Ok(c)
    }

    /// Frees a live allocation; returns the hole it became part of, as (first unit, end).
    pub fn free(&mut self, start: u64, units: u64) -> Result<(u64, u64), NotLive> {
        let c = self.live_at(start, units)?;
        Ok(self.release(&c))
    }

    /// Frees `[start, +units)` once `fence` signalled; `key` lets a re-import take it back.
    pub fn free_after(
        &mut self,
        start: u64,
        units: u64,
        fence: Fence,
        key: Option<u64>,
    ) -> Result<(), NotLive> {
        let c = self.live_at(start, units)?;
        let (wide, done) = self.timelines.widen(fence);
        if done.is_some_and(|d| wide <= d) {
            self.release(&c);
            return Ok(());
        }
        self.tree_mut()
            .replace(&c, 0, 0, &[Block::new(start, units, State::Deferred)]);
        self.deferred.push(fence, wide, start, key);
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
        for start in self.deferred.due(&self.timelines) {
            let c = self.tree().locate(start);
            let b = self.tree().get(&c);
            debug_assert!(b.start == start && b.state == State::Deferred);
            self.deferred_units -= b.units;
            self.release(&c);
        }
    }

    /// When the range tagged `key` in this arena was freed (larger is newer), if it still waits.
    pub fn key_seq(&self, key: u64) -> Option<u64> {
        self.deferred.key_seq(key)
    }

    /// Forgets `key` here: a newer range in another arena has it.
    pub fn drop_key(&mut self, key: u64) {
        self.deferred.take_key(key);
    }

    /// Gives back the deferred range tagged `key` if this arena holds it, it still waits and it
    /// satisfies `req` (same size, aligned, not crossing). The key is forgotten either way.
    pub fn revive_keyed(&mut self, key: u64, req: &Request) -> Option<u64> {
        self.reclaim();
        if let Some(start) = self.deferred.take_key(key) {
            let c = self.tree().locate(start);
            let b = self.tree().get(&c);
            let fits = b.state == State::Deferred
                && b.start == start
                && b.units == req.units
                && place(b.start, b.end(), req) == Some(b.start);
            if fits {
                self.deferred.forget(start);
                self.deferred_units -= b.units;
                self.tree_mut()
                    .replace(&c, 0, 0, &[Block::new(start, b.units, State::Used)]);
                return Some(start);
            }
        }
        None
    }

    /// Allocates exactly `[start, start + units)`, which must lie inside the arena, in
    /// O(log n); on a miss, plus O(k) for the k blocks overlapping the request.
    pub fn alloc_addr(&mut self, start: u64, units: u64) -> Result<(), FixedMiss> {
        self.reclaim();
        let end = start + units;
        let c = self.tree().locate(start);
        let b = self.tree().get(&c);
        if b.is_free() && b.end() >= end {
            self.carve(&c, start, units);
            return Ok(());
        }
        let mut fences = Vec::new();
        self.blockers(start, end, &mut fences)?;
        Err(if fences.is_empty() {
            FixedMiss::Taken
        } else {
            FixedMiss::Deferred(fences)
        })
    }

    /// What stands in `[start, end)` (clipped to the arena): `Taken` if a live allocation does,
    /// else the fences of the deferred ranges there are added to `fences`.
    pub fn blockers(&self, start: u64, end: u64, fences: &mut Vec<Fence>) -> Result<(), FixedMiss> {
        let (start, end) = (start.max(self.start), end.min(self.end));
        if start >= end {
            return Ok(());
        }
        let c = self.tree().locate(start);
        for b in self.tree().iter_from(&c) {
            match b.state {
                State::Used => return Err(FixedMiss::Taken),
                State::Deferred => fences.extend(self.deferred.fence_of(b.start)),
                State::Free => {}
            }
            if b.end() >= end {
                break;
            }
        }
        Ok(())
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
        let Some(tree) = &self.tree else {
            return Vec::new();
        };
        tree.iter()
            .filter(|b| b.state == state)
            .map(|b| (b.start, b.units))
            .collect()
    }

    /// The largest hole in units. O(1).
    pub fn largest_hole(&self) -> u64 {
        self.tree.as_ref().map_or(0, Tree::largest_hole)
    }

    /// Checks every structural invariant; for tests. O(n).
    pub fn check(&self) -> Result<(), String> {
        let Some(tree) = &self.tree else {
            return if self.start == self.end && self.free_units == 0 && self.deferred_units == 0 {
                Ok(())
            } else {
                Err(format!("empty arena at {} with units", self.start))
            };
        };
        tree.check()?;
        let (mut at, mut free, mut deferred, mut prev_free) = (self.start, 0u64, 0u64, false);
        for b in tree.iter() {
            if b.start != at || b.units == 0 {
                return Err(format!(
                    "block at {} (+{}) expected at {at}",
                    b.start, b.units
                ));
            }
            match b.state {
                State::Free if prev_free => return Err(format!("adjacent holes at {at}")),
                State::Free => free += b.units,
                State::Deferred => {
                    if self.deferred.fence_of(b.start).is_none() {
                        return Err(format!("deferred block at {at} has no fence"));
                    }
                    deferred += b.units
                }
                State::Used => {}
            }
            prev_free = b.is_free();
            at = b.end();
        }
        if at != self.end {
            return Err(format!("blocks end at {at}, arena at {}", self.end));
        }
        if free != self.free_units || deferred != self.deferred_units {
            return Err(format!(
                "free {free}/{} deferred {deferred}/{}",
                self.free_units, self.deferred_units
            ));
        }
        Ok(())
    }
}
