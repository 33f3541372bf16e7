//! One arena of the allocator, in granule units: the holes of `[start, end)` in an augmented
//! B+tree (`tree.rs`), the live allocations in a hash map and the deferred frees in an ordered map,
//! both keyed by first unit, and the fences the deferred ones wait on (`deferred.rs`). Holes, live
//! and deferred ranges tile the arena.
//!
//! Owns: [`HeapState`]. Takes no locks itself; [`super::VaHeap`] keeps each arena in its own lock.
//! It reads [`Timelines`] (a leaf lock) only when the timelines' generation changed.
//!
//! Placement is exact address-ordered first fit within the arena: bottom-up takes the lowest
//! valid start of all its holes, top-down the highest, with alignment and no-cross applied
//! (`place.rs`). That is util_vma_heap's policy, found in O(log n) instead of O(holes).
//!
//! Why the allocated ranges are not in the tree: the tree then changes only where a hole does (a
//! carve at a hole's edge or a free next to a hole resizes one entry in place), a deferred free or
//! a revival moves one entry between the maps, and the tree is about half as large. A free is
//! checked against the live map (exact first unit and size), as util_vma_heap's callers expect.
//!
//! An arena may be empty (`start == end`, no hole and no range) after the heap moved its range
//! into a neighbour; [`HeapState::set_range`] moves only free space, so an allocation never
//! straddles two arenas.

use std::collections::hash_map::Entry;
use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::deferred::Deferred;
use super::fence::{Fence, Timelines};
use super::place::{place, Request};
use super::tree::{Cursor, Hole, Tree};

/// Why a fixed-address request failed, in units; the heap turns it into a [`super::VaError`].
pub(crate) enum FixedMiss {
    Taken,
    Deferred(Vec<Fence>),
}

/// Why a free failed: the range is not a live allocation of that size.
#[derive(Debug)]
pub(crate) struct NotLive;

pub(crate) struct HeapState {
    /// The holes (empty while no unit is free).
    tree: Tree,
    /// Live allocations, first unit -> units. A hash map: a free checks its range in O(1).
    live: FxHashMap<u64, u64>,
    /// Ranges freed after a fence that has not signalled, first unit -> units, in address order,
    /// so that a fixed-address miss finds those in its way in O(log d) (the live map is not
    /// ordered). Holes, live and deferred ranges tile the arena.
    deferred_ranges: BTreeMap<u64, u64>,
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
        let mut tree = Tree::new();
        if start < end {
            tree.swap(&[], &[Hole::new(start, end - start)]);
        }
        HeapState {
            tree,
            live: FxHashMap::default(),
            deferred_ranges: BTreeMap::new(),
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

    /// The hole at the arena's first unit, if any, as (first unit, end).
    pub fn lead_hole(&self) -> Option<(u64, u64)> {
        let h = self.tree.first().filter(|h| h.start == self.start)?;
        Some((h.start, h.end()))
    }

    /// The hole that ends at the arena's end, if any, as (first unit, end).
    pub fn tail_hole(&self) -> Option<(u64, u64)> {
        let h = self.tree.last().filter(|h| h.end() == self.end)?;
        Some((h.start, h.end()))
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
            self.tree.clear();
            self.free_units = 0;
            (self.start, self.end) = (lo, lo);
            return;
        }
        if self.all_free() {
            // One hole or none: whatever moved, the arena is one hole again. (Edge by edge, a
            // range that moves both ways could otherwise drop a hole twice.)
            self.tree.clear();
            self.tree.swap(&[], &[Hole::new(lo, hi - lo)]);
            self.free_units = hi - lo;
            (self.start, self.end) = (lo, hi);
            return;
        }
        // A range in use stays inside the new range, so the lead and tail holes are distinct.
        let tail = self.tail_hole().map(|(s, e)| Hole::new(s, e - s));
        if hi > self.end {
            match tail {
                Some(t) => self.tree.swap(&[t], &[Hole::new(t.start, hi - t.start)]),
                None => self.tree.swap(&[], &[Hole::new(self.end, hi - self.end)]),
            }
            self.free_units += hi - self.end;
        } else if hi < self.end {
            let t = tail.expect("giving up units in use");
            debug_assert!(t.start <= hi, "giving up units in use");
            let with = [Hole::new(t.start, hi - t.start)];
            self.tree.swap(&[t], &with[..usize::from(t.start < hi)]);
            self.free_units -= self.end - hi;
        }
        self.end = hi;
        let lead = self.lead_hole().map(|(s, e)| Hole::new(s, e - s));
        if lo < self.start {
            match lead {
                Some(l) => self.tree.swap(&[l], &[Hole::new(lo, l.end() - lo)]),
                None => self.tree.swap(&[], &[Hole::new(lo, self.start - lo)]),
            }
            self.free_units += self.start - lo;
        } else if lo > self.start {
            let l = lead.expect("giving up units in use");
            debug_assert!(l.end() >= lo, "giving up units in use");
            let with = [Hole::new(lo, l.end() - lo)];
            self.tree.swap(&[l], &with[..usize::from(lo < l.end())]);
            self.free_units -= lo - self.start;
        }
        self.start = lo;
    }

    pub fn alloc(&mut self, req: &Request) -> Option<u64> {
        self.reclaim();
        let (c, at) = self.tree.find(req)?;
        let h = self.tree.get(&c);
        self.carve(&c, c.slot as isize, h, at, req.units);
        Some(at)
    }

    /// Takes `[at, at + units)` out of hole `h` (at slot `pos` of the cursor's leaf, see
    /// [`Tree::replace`]) as a live allocation.
    fn carve(&mut self, c: &Cursor, pos: isize, h: Hole, at: u64, units: u64) {
        let mut with = [Hole::new(0, 0); 2];
        let mut n = 0;
        if at > h.start {
            with[n] = Hole::new(h.start, at - h.start);
            n += 1;
        }
        if at + units < h.end() {
            with[n] = Hole::new(at + units, h.end() - (at + units));
            n += 1;
        }
        self.tree.replace(c, pos, &[h], &with[..n]);
        self.live.insert(at, units);
        self.free_units -= units;
    }

    /// Turns `[start, +units)`, just taken out of the live or deferred ranges, into a hole merged
    /// with the holes that touch it; returns that hole as (first unit, end).
    fn release(&mut self, start: u64, units: u64) -> (u64, u64) {
        let end = start + units;
        let c = self.tree.locate(start);
        let prev = self.tree.before(&c).filter(|h| h.end() == start);
        let next = self.tree.after(&c).filter(|h| h.start == end);
        let merged_start = prev.map_or(start, |p| p.start);
        let merged_end = next.map_or(end, |n| n.end());
        let (old, n) = match (prev, next) {
            (Some(p), Some(n)) => ([p, n], 2),
            (Some(p), None) => ([p, p], 1),
            (None, Some(n)) => ([n, n], 1),
            (None, None) => ([Hole::new(0, 0); 2], 0),
        };
        // `c.slot` is where a hole starting at `start` would go: the previous hole sits just
        // before it.
        let pos = c.slot as isize - isize::from(prev.is_some());
        let merged = Hole::new(merged_start, merged_end - merged_start);
        self.tree.replace(&c, pos, &old[..n], &[merged]);
        self.free_units += units;
        (merged_start, merged_end)
    }

    /// Frees a live allocation; returns the hole it became part of, as (first unit, end).
    pub fn free(&mut self, start: u64, units: u64) -> Result<(u64, u64), NotLive> {
        self.take_live(start, units)?;
        Ok(self.release(start, units))
    }

    /// Removes the live allocation `[start, +units)` from the live map, with one hash lookup that
    /// both checks and removes it.
    fn take_live(&mut self, start: u64, units: u64) -> Result<(), NotLive> {
        match self.live.entry(start) {
            Entry::Occupied(e) if *e.get() == units => {
                e.remove();
                Ok(())
            }
            _ => Err(NotLive),
        }
    }

    /// Frees `[start, +units)` once `fence` signalled; `key` lets a re-import take it back.
    pub fn free_after(
        &mut self,
        start: u64,
        units: u64,
        fence: Fence,
        key: Option<u64>,
    ) -> Result<(), NotLive> {
        self.take_live(start, units)?;
        let (wide, done) = self.timelines.widen(fence);
        if done.is_some_and(|d| wide <= d) {
            self.release(start, units);
            return Ok(());
        }
        self.deferred_ranges.insert(start, units);
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
            let units = self
                .deferred_ranges
                .remove(&start)
                .expect("a deferred range");
            self.deferred_units -= units;
            self.release(start, units);
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
        let start = self.deferred.take_key(key)?;
        let units = *self.deferred_ranges.get(&start)?;
        if units != req.units || place(start, start + units, req) != Some(start) {
            return None;
        }
        self.deferred_ranges.remove(&start);
        self.live.insert(start, units);
        self.deferred_units -= units;
        self.deferred.forget(start);
        Some(start)
    }

    /// Allocates exactly `[start, start + units)`, which must lie inside the arena, in
    /// O(log n); a miss costs O(log n + k) more, k the holes and deferred ranges in the way.
    pub fn alloc_addr(&mut self, start: u64, units: u64) -> Result<(), FixedMiss> {
        self.reclaim();
        let end = start + units;
        let c = self.tree.locate(start);
        if let Some(h) = self.tree.before(&c).filter(|h| h.end() >= end) {
            // The hole is the last at or below `start`: just before the cursor's slot.
            self.carve(&c, c.slot as isize - 1, h, start, units);
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
    /// else the fences of the deferred ranges there are added to `fences`. O(log n + k), k the
    /// holes and deferred ranges overlapping the request.
    pub fn blockers(&self, start: u64, end: u64, fences: &mut Vec<Fence>) -> Result<(), FixedMiss> {
        let (start, end) = (start.max(self.start), end.min(self.end));
        if start >= end {
            return Ok(());
        }
        // Holes, live and deferred ranges tile the arena, so a live allocation is in the way
        // exactly when holes and deferred ranges leave part of the request uncovered.
        let overlap = |s: u64, e: u64| e.min(end).saturating_sub(s.max(start));
        let c = self.tree.locate(start);
        let below = self.tree.before(&c).into_iter();
        let mut covered: u64 = below
            .chain(self.tree.iter_from(&c).take_while(|h| h.start < end))
            .map(|h| overlap(h.start, h.end()))
            .sum();
        let mut found = Vec::new();
        // Ranges do not overlap: going down from the last one starting below `end`, the first
        // that ends at or before `start` ends the search.
        for (&s, &units) in self.deferred_ranges.range(..end).rev() {
            if s + units <= start {
                break;
            }
            covered += overlap(s, s + units);
            found.extend(self.deferred.fence_of(s));
        }
        if covered < end - start {
            return Err(FixedMiss::Taken);
        }
        fences.extend(found);
        Ok(())
    }

    /// Holes as (first unit, units), in address order. O(n).
    pub fn holes(&self) -> Vec<(u64, u64)> {
        self.tree.iter().map(|h| (h.start, h.units)).collect()
    }

    /// Deferred ranges as (first unit, units), in address order. O(d).
    pub fn deferred_ranges(&self) -> Vec<(u64, u64)> {
        self.deferred_ranges.iter().map(|(&s, &u)| (s, u)).collect()
    }

    /// The largest hole in units. O(1).
    pub fn largest_hole(&self) -> u64 {
        self.tree.largest_hole()
    }

    /// Checks every structural invariant; for tests. O(n).
    pub fn check(&self) -> Result<(), String> {
        self.tree.check()?;
        let (mut free, mut deferred, mut seen) = (0u64, 0u64, 0usize);
        // Walks the live and deferred ranges that must tile `[at, to)` exactly.
        let mut ranges = |mut at: u64, to: u64| -> Result<(), String> {
            while at < to {
                let units = match (self.live.get(&at), self.deferred_ranges.get(&at)) {
                    (Some(&u), None) => u,
                    (None, Some(&u)) => {
                        if self.deferred.fence_of(at).is_none() {
                            return Err(format!("deferred range at {at} has no fence"));
                        }
                        deferred += u;
                        u
                    }
                    (None, None) => return Err(format!("unit {at} is neither a hole nor a range")),
                    (Some(_), Some(_)) => return Err(format!("range at {at} live and deferred")),
                };
                if units == 0 || at + units > to {
                    return Err(format!("range at {at} (+{units}) overlaps a hole"));
                }
                seen += 1;
                at += units;
            }
            Ok(())
        };
        let mut at = self.start;
        let mut prev_end = None;
        for h in self.tree.iter() {
            if h.units == 0 || h.start < at || h.end() > self.end {
                return Err(format!(
                    "hole at {} (+{}) expected at {at} or above",
                    h.start, h.units
                ));
            }
            if prev_end == Some(h.start) {
                return Err(format!("adjacent holes at {}", h.start));
            }
            ranges(at, h.start)?;
            free += h.units;
            at = h.end();
            prev_end = Some(at);
        }
        ranges(at, self.end)?;
        let mapped = self.live.len() + self.deferred_ranges.len();
        if seen != mapped {
            return Err(format!(
                "{mapped} ranges mapped, {seen} inside the arena between its holes"
            ));
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
