//! The heap's address range split into arenas, one lock each, so threads allocate in parallel.
//!
//! Owns: [`Arenas`]: the arenas ([`HeapState`] behind a [`SpinLock`] each), the routing hints
//! (first unit of each arena), the first cuts, and which arena each thread allocates in. Locks:
//! arena locks, always taken in increasing arena order when more than one is held; a thread
//! holding one never waits for a lower one. `Arenas::homes` (a mutex) is taken with no arena lock
//! held: once per thread and heap, and when a thread meets another in its arena. [`Timelines`] (a
//! leaf) is read under an arena lock.
//!
//! # Why arenas
//! One lock around the whole heap cannot let two threads allocate faster than one: the work is
//! all inside it, and every hand-over moves the tree's hot cache lines between cores (measured
//! 0.54-0.92x the one-thread throughput with two threads). Every thread starts in arena 0, the
//! bottom of the heap. A thread that finds its arena's lock taken when it allocates (another
//! thread is in there) moves to the arena with the fewest threads, if its own has at least two
//! more; from then on the two touch different trees and different locks.
//!
//! # What stays exact
//! Arenas split the range at movable boundaries; a boundary only ever moves across free space, so
//! every allocation lies inside one arena, and a hole may be cut in two by a boundary. A request
//! tries its thread's arena, then every arena in address order (top-down: from the top), and
//! between two arenas the hole that spans their boundary, if any (all arenas locked: the boundary
//! then moves so the allocation ends up inside one arena). So:
//! - `NoSpace` only if no hole holds the request, counting holes across boundaries (when no other
//!   thread changes the heap meanwhile);
//! - a thread in arena 0 (every thread until threads meet: a single-threaded user, or threads
//!   that take turns) gets exactly util_vma_heap's first fit over the whole heap, the lowest valid
//!   address of all holes; top-down requests always get the highest valid address of all holes;
//! - a thread moved to another arena gets first fit inside it first, then as above.
//!
//! A free that leaves a hole against a boundary an allocation moved lets the boundary go back
//! toward its first cut (all arenas locked, across free space only), so arenas emptied by a big
//! allocation get their share back once it is freed. Fixed-address requests and frees go to the
//! arena holding the address (routing reads the boundaries without a lock and checks them under
//! the arena's lock); a fixed range across a boundary locks all arenas and moves the boundary.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use super::fence::{Fence, Timelines};
use super::lock::{SpinGuard, SpinLock};
use super::place::{place, Request};
use super::state::{FixedMiss, HeapState, NotLive};
use crate::sync;

/// At most this many arenas per heap.
pub(crate) const MAX_ARENAS: usize = 4;

static NEXT_HEAP_ID: AtomicU64 = AtomicU64::new(1);

/// Threads a heap remembers the arena of; past this, it forgets them all and counts afresh (a
/// thread that comes back gets the next arena in turn), so a process that keeps making threads
/// does not grow the map without bound.
const MAX_HOMES: usize = 1024;

thread_local! {
    /// The last (heap id, home arena) pairs this thread looked up, newest first: the common case
    /// costs no lock.
    static HOMES: Cell<[(u64, usize); 4]> = const { Cell::new([(0, 0); 4]) };
}

pub(crate) struct Arenas {
    arenas: Box<[SpinLock<HeapState>]>,
    /// First unit of each arena: a routing hint, exact only under that arena's lock.
    bounds: Box<[sync::AtomicU64]>,
    /// First unit of each arena as first cut: where [`Arenas::rebalance`] moves boundaries back to.
    cuts: Box<[u64]>,
    /// Which arena each thread allocates in.
    homes: Mutex<HashMap<ThreadId, usize>>,
    id: u64,
}

type Guards<'a> = Vec<SpinGuard<'a, HeapState>>;

impl Arenas {
    /// `count` arenas (at least 1) splitting units `[start, end)` evenly.
    pub fn new(start: u64, end: u64, count: usize, timelines: &Arc<Timelines>) -> Arenas {
        let n = u128::from(end - start);
        let units = usize::try_from(end - start).unwrap_or(usize::MAX);
        let count = count.clamp(1, MAX_ARENAS).min(units);
        let cut = |j: usize| start + (n * j as u128 / count as u128) as u64;
        Arenas {
            arenas: (0..count)
                .map(|j| SpinLock::new(HeapState::new(cut(j), cut(j + 1), timelines.clone())))
                .collect(),
            bounds: (0..count).map(|j| sync::AtomicU64::new(cut(j))).collect(),
            cuts: (0..count).map(cut).collect(),
            homes: Mutex::new(HashMap::new()),
            id: NEXT_HEAP_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn count(&self) -> usize {
        self.arenas.len()
    }

    /// This thread's arena: arena 0 until it meets another thread there ([`Self::contended`]).
    fn home(&self) -> usize {
        let cache = HOMES.get();
        if let Some(&(_, home)) = cache.iter().find(|(id, _)| *id == self.id) {
            return home;
        }
        let home = {
            let mut homes = self.homes.lock().unwrap_or_else(|e| e.into_inner());
            if homes.len() >= MAX_HOMES {
                homes.clear();
            }
            *homes.entry(std::thread::current().id()).or_insert(0)
        };
        self.remember_home(home);
        home
    }

    fn remember_home(&self, home: usize) {
        let mut cache = HOMES.get();
        match cache.iter().position(|(id, _)| *id == self.id) {
            Some(i) => cache[i].1 = home,
            None => {
                cache.rotate_right(1);
                cache[0] = (self.id, home);
            }
        }
        HOMES.set(cache);
    }

    /// This thread found its arena `home` locked by another: if `home` has at least two threads
    /// more than another arena, the thread moves to the arena with the fewest. Returns its arena
    /// from now on.
    #[cold]
    fn contended(&self, home: usize) -> usize {
        let k = self.arenas.len();
        let new = {
            let mut homes = self.homes.lock().unwrap_or_else(|e| e.into_inner());
            // Counted, not kept: this runs only when threads meet, over at most MAX_HOMES.
            let threads_in = |j: usize| homes.values().filter(|&&h| h == j).count();
            let (best, least) = (0..k)
                .filter(|&j| j != home)
                .map(|j| (j, threads_in(j)))
                .min_by_key(|&(_, n)| n)
                .expect("two arenas or more");
            if threads_in(home) < least + 2 {
                return home;
            }
            homes.insert(std::thread::current().id(), best);
            best
        };
        self.remember_home(new);
        new
    }

    fn lock_all(&self) -> Guards<'_> {
        self.arenas.iter().map(|a| a.lock()).collect()
    }

    /// Runs `f` on the arena that holds unit `at` (inside the heap), under its lock; `f` gets the
    /// arena's index too.
    fn at<R>(&self, at: u64, f: impl FnOnce(usize, &mut HeapState) -> R) -> R {
        loop {
            let i = self
                .bounds
                .iter()
                .rposition(|b| b.load(Ordering::Relaxed) <= at)
                .unwrap_or(0);
            let mut g = self.arenas[i].lock();
            if g.holds(at) {
                return f(i, &mut g);
            }
            // A boundary moved since the hint was read; it only moves under both arenas' locks.
        }
    }

    pub fn alloc(&self, req: &Request) -> Option<u64> {
        let k = self.arenas.len();
        if k == 1 {
            return self.arenas[0].lock().alloc(req);
        }
        if req.top_down {
            for i in (0..k).rev() {
                if let Some(at) = self.arenas[i].lock().alloc(req) {
                    return Some(at);
                }
                if i > 0 {
                    if let Some(at) = self.alloc_across(req, i - 1) {
                        return Some(at);
                    }
                }
            }
            return None;
        }
        let mut home = self.home();
        let mut g = match self.arenas[home].try_lock() {
            Some(g) => g,
            None => {
                home = self.contended(home);
                self.arenas[home].lock()
            }
        };
        if let Some(at) = g.alloc(req) {
            return Some(at);
        }
        drop(g);
        for i in 0..k {
            if i != home {
                if let Some(at) = self.arenas[i].lock().alloc(req) {
                    return Some(at);
                }
            }
            if i + 1 < k {
                if let Some(at) = self.alloc_across(req, i) {
                    return Some(at);
                }
            }
        }
        None
    }

    /// Allocates in the hole that spans the boundary above arena `i`, if there is one and it
    /// holds `req`. Locks every arena.
    #[cold]
    fn alloc_across(&self, req: &Request, i: usize) -> Option<u64> {
        let mut g = self.lock_all();
        for s in g.iter_mut() {
            s.reclaim();
        }
        let (s, e) = run_across(&g, i)?;
        let at = place(s, e, req)?;
        let a = self.claim(&mut g, at, at + req.units);
        let done = g[a].alloc_addr(at, req.units);
        debug_assert!(done.is_ok(), "a claimed range is one hole");
        Some(at)
    }

    /// Moves boundaries so that `[lo, hi)`, free in every arena it touches, lies inside the arena
    /// holding `lo`; returns that arena.
    fn claim(&self, g: &mut Guards<'_>, lo: u64, hi: u64) -> usize {
        let a = (0..g.len())
            .rposition(|j| g[j].holds(lo))
            .expect("an arena holds the range");
        for (j, arena) in g.iter_mut().enumerate().skip(a) {
            let (s, e) = arena.range();
            let want = if j == a {
                (s, e.max(hi))
            } else {
                (s.max(hi), e.max(hi))
            };
            if want != (s, e) {
                arena.set_range(want.0, want.1);
                self.bounds[j].store(want.0, Ordering::Relaxed);
            }
        }
        a
    }

    /// The range last freed with `key`, if it still waits and fits `req`; else as [`Self::alloc`].
    /// Keys are per arena, so the newest range with the key wins and the others forget it. Locks
    /// every arena (an import, not a hot path).
    pub fn alloc_keyed(&self, key: u64, req: &Request) -> Option<u64> {
        {
            let mut g = self.lock_all();
            for s in g.iter_mut() {
                s.reclaim();
            }
            let newest = (0..g.len())
                .filter_map(|j| Some((g[j].key_seq(key)?, j)))
                .max()
                .map(|(_, j)| j);
            if let Some(n) = newest {
                for (j, s) in g.iter_mut().enumerate() {
                    if j != n {
                        s.drop_key(key);
                    }
                }
                if let Some(at) = g[n].revive_keyed(key, req) {
                    return Some(at);
                }
            }
        }
        self.alloc(req)
    }

    /// `[start, start + units)` exactly; the range is inside the heap.
    pub fn alloc_addr(&self, start: u64, units: u64) -> Result<(), FixedMiss> {
        let end = start + units;
        let inside = self.at(start, |_, s| {
            (end <= s.range().1).then(|| s.alloc_addr(start, units))
        });
        if let Some(r) = inside {
            return r;
        }
        // Across a boundary: every arena it touches must hold only holes there.
        let mut g = self.lock_all();
        for s in g.iter_mut() {
            s.reclaim();
        }
        let mut fences = Vec::new();
        for s in g.iter() {
            s.blockers(start, end, &mut fences)?;
        }
        if !fences.is_empty() {
            return Err(FixedMiss::Deferred(fences));
        }
        let a = self.claim(&mut g, start, end);
        g[a].alloc_addr(start, units)
    }

    pub fn free(&self, start: u64, units: u64) -> Result<(), NotLive> {
        let helps = self.at(start, |j, s| {
            let (hole_start, hole_end) = s.free(start, units)?;
            Ok(self.hole_helps_rebalance(j, s.range(), hole_start, hole_end))
        })?;
        if helps {
            self.rebalance();
        }
        Ok(())
    }

    /// Whether a hole `[hole_start, hole_end)` of arena `j` (range `lo..hi`) lets a boundary that
    /// an earlier allocation moved go back toward its first cut.
    fn hole_helps_rebalance(
        &self,
        j: usize,
        (lo, hi): (u64, u64),
        hole_start: u64,
        hole_end: u64,
    ) -> bool {
        let k = self.arenas.len();
        (j > 0 && hole_start == lo && lo < self.cuts[j])
            || (j + 1 < k && hole_end == hi && hi > self.cuts[j + 1])
    }

    /// Moves every boundary back toward its first cut, across free space only, so that arenas an
    /// allocation across boundaries emptied or shrank get their share back. Locks every arena.
    #[cold]
    fn rebalance(&self) {
        let mut g = self.lock_all();
        // One boundary's move can clear another's way (through an empty arena): a few passes.
        for _ in 0..g.len() {
            let mut moved = false;
            for j in 1..g.len() {
                let (b, cut) = (g[j].range().0, self.cuts[j]);
                let to = if cut > b {
                    // Arena j reaches below its cut: it gives back the bottom of its first hole.
                    g[j].lead_hole().map_or(b, |(_, end)| cut.min(end))
                } else {
                    // Arena j - 1 reaches above its cut: it gives back the top of its last hole.
                    g[j - 1].tail_hole().map_or(b, |(start, _)| cut.max(start))
                };
                if to != b {
                    let below = g[j - 1].range().0;
                    let above = g[j].range().1;
                    g[j - 1].set_range(below, to);
                    g[j].set_range(to, above);
                    self.bounds[j].store(to, Ordering::Relaxed);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// A range freed with a key supersedes older ranges freed with it in the other arenas (as one
    /// arena's key map does by itself).
    pub fn free_after(
        &self,
        start: u64,
        units: u64,
        fence: Fence,
        key: Option<u64>,
    ) -> Result<(), NotLive> {
        let seq = self.at(start, |_, s| {
            s.free_after(start, units, fence, key)
                .map(|()| key.and_then(|k| s.key_seq(k)))
        })?;
        if let (Some(k), Some(seq)) = (key, seq) {
            for a in self.arenas.iter() {
                let mut g = a.lock();
                if g.key_seq(k).is_some_and(|other| other < seq) {
                    g.drop_key(k);
                }
            }
        }
        Ok(())
    }

    pub fn reclaim(&self) {
        for a in self.arenas.iter() {
            a.lock().reclaim();
        }
    }

    pub fn free_units(&self) -> u64 {
        self.arenas.iter().map(|a| a.lock().free_units()).sum()
    }

    pub fn deferred_units(&self) -> u64 {
        self.arenas.iter().map(|a| a.lock().deferred_units()).sum()
    }

    /// Holes in address order, those cut by a boundary joined.
    pub fn holes(&self) -> Vec<(u64, u64)> {
        let g = self.lock_all();
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (s, u) in g.iter().flat_map(|s| s.holes()) {
            match out.last_mut() {
                Some((ps, pu)) if *ps + *pu == s => *pu += u,
                _ => out.push((s, u)),
            }
        }
        out
    }

    pub fn deferred_ranges(&self) -> Vec<(u64, u64)> {
        let g = self.lock_all();
        g.iter().flat_map(|s| s.deferred_ranges()).collect()
    }

    /// The largest hole (joined across boundaries), or `None` if an arena is busy.
    pub fn try_largest_hole(&self) -> Option<u64> {
        let g: Guards<'_> = self
            .arenas
            .iter()
            .map(|a| a.try_lock())
            .collect::<Option<_>>()?;
        Some(largest_hole(&g))
    }

    /// The largest hole (joined across boundaries), after reclaiming signalled deferred frees.
    /// Locks every arena.
    pub fn largest_hole(&self) -> u64 {
        let mut g = self.lock_all();
        for s in g.iter_mut() {
            s.reclaim();
        }
        largest_hole(&g)
    }

    pub fn check(&self, start: u64, end: u64) -> Result<(), String> {
        let g = self.lock_all();
        let mut at = start;
        for (j, s) in g.iter().enumerate() {
            s.check()?;
            let (lo, hi) = s.range();
            if lo != at || self.bounds[j].load(Ordering::Relaxed) != lo {
                return Err(format!("arena {j} starts at {lo}, expected {at}"));
            }
            at = hi;
        }
        if at != end {
            return Err(format!("arenas end at {at}, heap at {end}"));
        }
        Ok(())
    }
}

/// The largest hole of the locked arenas, holes cut by a boundary joined.
fn largest_hole(g: &Guards<'_>) -> u64 {
    let inside = g.iter().map(|s| s.largest_hole()).max().unwrap_or(0);
    let across = (0..g.len() - 1)
        .filter_map(|i| run_across(g, i))
        .map(|(s, e)| e - s)
        .max()
        .unwrap_or(0);
    inside.max(across)
}

/// The hole spanning the boundary above arena `i` (through arenas that are all free), as
/// `[start, end)` in units, if there is free space on both sides of it.
fn run_across(g: &Guards<'_>, i: usize) -> Option<(u64, u64)> {
    let b = g[i].range().1;
    let mut s = b;
    for a in g[..=i].iter().rev() {
        if a.range().0 == a.range().1 {
            continue;
        }
        if let Some((hs, _)) = a.tail_hole() {
            s = hs;
        }
        if !a.all_free() {
            break;
        }
    }
    let mut e = b;
    for a in g[i + 1..].iter() {
        if a.range().0 == a.range().1 {
            continue;
        }
        if let Some((_, he)) = a.lead_hole() {
            e = he;
        }
        if !a.all_free() {
            break;
        }
    }
    (s < b && b < e).then_some((s, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(units: u64, top_down: bool) -> Request {
        Request {
            units,
            align: 1,
            no_cross_shift: None,
            top_down,
        }
    }

    fn ranges(a: &Arenas) -> Vec<(u64, u64)> {
        a.arenas.iter().map(|x| x.lock().range()).collect()
    }

    #[test]
    fn boundaries_go_back_to_their_cuts_once_the_space_is_free_again() {
        let a = Arenas::new(0, 64, 4, &Arc::new(Timelines::new()));
        let cuts = vec![(0, 16), (16, 32), (32, 48), (48, 64)];
        assert_eq!(ranges(&a), cuts);
        // Across three boundaries: arena 0 takes [0, 40), arena 1 is left empty.
        assert_eq!(a.alloc(&req(40, false)), Some(0));
        assert_eq!(ranges(&a), vec![(0, 40), (40, 40), (40, 48), (48, 64)]);
        a.check(0, 64).unwrap();
        a.free(0, 40).unwrap();
        assert_eq!(ranges(&a), cuts);
        // The same from the top, with a live block below that stays where it is.
        assert_eq!(a.alloc(&req(4, false)), Some(0));
        assert_eq!(a.alloc(&req(20, true)), Some(44));
        assert_eq!(ranges(&a), vec![(0, 16), (16, 32), (32, 64), (64, 64)]);
        a.free(44, 20).unwrap();
        assert_eq!(ranges(&a), cuts);
        a.check(0, 64).unwrap();
        assert_eq!(a.holes(), vec![(4, 60)]);
    }

    #[test]
    fn a_thread_moves_to_another_arena_only_when_it_meets_another_in_its_own() {
        let a = Arenas::new(0, 1 << 20, 2, &Arc::new(Timelines::new()));
        // Alone, this thread allocates in arena 0, from the bottom.
        assert_eq!(a.alloc(&req(1, false)), Some(0));
        assert_eq!(a.home(), 0);
        // A second thread that finds arena 0 busy moves to arena 1 and allocates there.
        let busy = a.arenas[0].lock();
        let at = std::thread::scope(|s| s.spawn(|| a.alloc(&req(1, false))).join().unwrap());
        drop(busy);
        assert_eq!(at, Some(1 << 19));
        // This thread, now alone in arena 0, stays there even when it meets the other.
        assert_eq!(a.contended(0), 0);
        a.check(0, 1 << 20).unwrap();
    }
}
