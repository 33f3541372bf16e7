//! The holes of one address range in an address-ordered B+tree whose inner nodes keep, for each
//! child, its first unit and its "room": the most units an allocation could take from one of its
//! holes, plain and at up to three alignments ([`Levels`]). Live allocations and deferred frees are
//! not here: they are the gaps between holes, named in the arena's live and deferred maps
//! (`state.rs`).
//!
//! Owns: [`Tree`], its leaf and inner-node pools. Takes no locks; it lives inside an arena's lock.
//!
//! Why this shape: the room summaries give exact address-ordered first fit (the lowest, or for
//! top-down the highest, hole where the request fits) in O(log n), as Linux's drm_mm does with the
//! largest hole in each subtree of its augmented rbtree; keeping room per alignment also skips the
//! holes that are big enough but cannot hold an aligned request. A B+tree instead of a binary tree
//! because a descent touches a handful of wide nodes instead of one node per level: with 64 holes
//! per leaf and 16 children per inner node, 2M holes are 4 inner levels, and all but the last fit
//! in a few hundred KiB.
//!
//! Why holes only: a carve at a hole's edge (every bottom-up or top-down request that is not
//! pushed inwards by alignment) and a free next to a hole just resize one entry in place, with no
//! array shift, and a leaf's entries are all candidates for the room scans. A tree may be empty
//! (an arena with no free unit): then its root is a leaf with no entries.
//!
//! Hot operations rewrite one leaf in place and refresh the summaries along the descent path,
//! stopping where nothing changed. Only when a leaf overflows or empties, or the holes to change
//! sit in two leaves, does an operation fall back to the recursive insert / remove by key, which
//! splits full nodes and drops empty ones. Nodes are never merged: a tree keeps the height of the
//! most holes it ever held.

use super::place::{place, Request};

/// One hole, in granule units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hole {
    pub start: u64,
    /// At least 1.
    pub units: u64,
}

impl Hole {
    pub const fn new(start: u64, units: u64) -> Hole {
        Hole { start, units }
    }
    pub fn end(&self) -> u64 {
        self.start + self.units
    }
}

const LEAF_CAP: usize = 64;
const INNER_CAP: usize = 16;
/// 64 * 16^11 holes: more than any heap can hold.
const MAX_HEIGHT: usize = 12;
const NIL: u32 = u32::MAX;

/// How many alignment levels a tree summarises. For a summarised level (alignment `2^level`
/// units), a subtree keeps the most units an allocation so aligned could take from one of its
/// holes, so an aligned request skips subtrees whose holes are big enough but cannot hold it at
/// that alignment (first fit would otherwise visit every small hole below the first fitting one,
/// as util_vma_heap does). Level 0 (plain size) always; the others are the first alignments the
/// heap is asked for (a driver uses two or three: 4 KiB pages, 64 KiB, 2 MiB). A request at any
/// other alignment uses the largest summarised level below its own: a bound that is never too
/// small, so the search stays exact, only less pruned. Summarising every level instead would cost
/// every update work per level whether used or not (measured 2-3x slower with 16 levels).
const SLOTS: usize = 4;

/// Largest unit count an allocation aligned to `2^level` fits in `[start, end)`.
fn aligned_room(start: u64, end: u64, level: u8) -> u64 {
    let mask = (1u64 << level) - 1;
    end.saturating_sub(start.saturating_add(mask) & !mask)
}

/// The alignment level of `align` units (a power of two).
fn level_of(align: u64) -> u8 {
    align.trailing_zeros() as u8
}

/// Which alignment level each summary slot holds; slot 0 is level 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Levels {
    n: usize,
    level: [u8; SLOTS],
}

impl Levels {
    const PLAIN: Levels = Levels {
        n: 1,
        level: [0; SLOTS],
    };

    fn iter(self) -> std::ops::Range<usize> {
        0..self.n
    }

    /// The slot whose level is the largest at or below `level`.
    fn slot_for(self, level: u8) -> usize {
        (0..self.n)
            .filter(|&j| self.level[j] <= level)
            .max_by_key(|&j| self.level[j])
            .unwrap_or(0)
    }
}

/// Room per summarised level, by slot (see [`Levels`]).
#[derive(Clone, Copy, Debug)]
struct Rooms([u64; SLOTS]);

const NO_ROOM: Rooms = Rooms([0; SLOTS]);

impl Rooms {
    fn same(&self, o: &Rooms, lv: Levels) -> bool {
        lv.iter().all(|j| self.0[j] == o.0[j])
    }
    /// Every slot equal, summarised or not (for the checks: the others must stay 0).
    fn same_all(&self, o: &Rooms) -> bool {
        (0..SLOTS).all(|j| self.0[j] == o.0[j])
    }
}

/// What a parent keeps of each child: its first unit and its holes' room per alignment level.
#[derive(Clone, Copy)]
struct Summary {
    first: u64,
    room: Rooms,
}

/// Holes as parallel arrays so the summary scan and the key search vectorise. Slots past `len`
/// hold `start = u64::MAX`, `units = 0`.
#[derive(Clone)]
struct Leaf {
    len: usize,
    /// Neighbouring leaves in address order (`NIL` at the ends).
    prev: u32,
    next: u32,
    start: [u64; LEAF_CAP],
    units: [u64; LEAF_CAP],
    /// Room per level over this leaf's holes (kept up to date by every change).
    room: Rooms,
}

impl Summary {
    fn same(&self, o: &Summary, lv: Levels) -> bool {
        self.first == o.first && self.room.same(&o.room, lv)
    }
}

impl Leaf {
    fn get(&self, i: usize) -> Hole {
        Hole::new(self.start[i], self.units[i])
    }
    fn put(&mut self, i: usize, h: Hole) {
        self.start[i] = h.start;
        self.units[i] = h.units;
    }
    /// Moves slots `from..len` to start at `to`, and clears the slots left behind past the new
    /// end (when moving down).
    fn shift(&mut self, from: usize, to: usize, new_len: usize) {
        let len = self.len;
        if from != to {
            self.start.copy_within(from..len, to);
            self.units.copy_within(from..len, to);
        }
        for i in new_len..len {
            self.put(i, VACANT);
        }
        self.len = new_len;
    }
    fn summary(&self) -> Summary {
        Summary {
            first: self.start[0],
            room: self.room,
        }
    }
    fn recompute(&mut self, lv: Levels) {
        self.rescan(lv, (1 << lv.n) - 1);
    }
    /// Recomputes the rooms of the slots in mask `stale`, in one pass over the holes.
    fn rescan(&mut self, lv: Levels, stale: u32) {
        let mut masks = [0u64; SLOTS]; // alignment mask of each stale slot
        let mut slots = [0usize; SLOTS];
        let mut n = 0;
        for j in lv.iter().filter(|j| stale & (1 << j) != 0) {
            (slots[n], masks[n]) = (j, (1u64 << lv.level[j]) - 1);
            n += 1;
        }
        let mut best = [0u64; SLOTS];
        for i in 0..self.len {
            let (start, units) = (self.start[i], self.units[i]);
            let end = start + units;
            for k in 0..n {
                // A hole's room is at most its size: skip those that cannot beat `best`.
                if units > best[k] {
                    let at = start.saturating_add(masks[k]) & !masks[k];
                    best[k] = best[k].max(end.saturating_sub(at));
                }
            }
        }
        for k in 0..n {
            self.room.0[slots[k]] = best[k];
        }
    }
}

const VACANT: Hole = Hole::new(u64::MAX, 0);

/// Children's summaries as parallel arrays. Slots past `len`: `first = u64::MAX`, room 0.
#[derive(Clone)]
struct Inner {
    len: usize,
    first: [u64; INNER_CAP],
    /// By slot, then child: a search scans one slot over the children (two cache lines).
    room: [[u64; INNER_CAP]; SLOTS],
    child: [u32; INNER_CAP],
    /// Largest room per level over the children (kept up to date by every change).
    sum: Rooms,
}

impl Inner {
    fn set(&mut self, i: usize, s: Summary) {
        self.first[i] = s.first;
        for j in 0..SLOTS {
            self.room[j][i] = s.room.0[j];
        }
    }
    fn slot_summary(&self, i: usize) -> Summary {
        Summary {
            first: self.first[i],
            room: self.child_rooms(i),
        }
    }
    fn summary(&self) -> Summary {
        Summary {
            first: self.first[0],
            room: self.sum,
        }
    }
    fn child_rooms(&self, i: usize) -> Rooms {
        let mut r = NO_ROOM;
        for j in 0..SLOTS {
            r.0[j] = self.room[j][i];
        }
        r
    }
    fn recompute(&mut self, lv: Levels) {
        for k in lv.iter() {
            self.sum.0[k] = self.level_max(k);
        }
    }
    fn level_max(&self, k: usize) -> u64 {
        self.room[k].iter().copied().max().unwrap_or(0)
    }
    /// Child `i`'s summary changed from `old` to `new`: updates the slot and this node's sums,
    /// rescanning a level only when its maximum may have shrunk.
    fn update_slot(&mut self, i: usize, old: &Summary, new: &Summary, lv: Levels) {
        self.set(i, *new);
        for k in lv.iter() {
            if new.room.0[k] >= self.sum.0[k] {
                self.sum.0[k] = new.room.0[k];
            } else if old.room.0[k] == self.sum.0[k] {
                self.sum.0[k] = self.level_max(k);
            }
        }
    }
    /// Moves slots `from..len` to start at `to`; clears what is left behind past the new end.
    fn shift(&mut self, from: usize, to: usize, new_len: usize, lv: Levels) {
        let len = self.len;
        self.first.copy_within(from..len, to);
        for j in 0..SLOTS {
            self.room[j].copy_within(from..len, to);
        }
        self.child.copy_within(from..len, to);
        for i in new_len..len {
            self.first[i] = u64::MAX;
            for j in 0..SLOTS {
                self.room[j][i] = 0;
            }
            self.child[i] = NIL;
        }
        self.len = new_len;
        self.recompute(lv);
    }
    /// The child holding unit `key` (the last whose first unit is at or below it; 0 if none).
    fn child_for(&self, key: u64) -> usize {
        self.first[..self.len]
            .partition_point(|&f| f <= key)
            .saturating_sub(1)
    }
}

/// A position in the tree: the descent path (inner node and child slot per level, root first),
/// then leaf and slot (from [`Tree::find`]: the hole's slot; from [`Tree::locate`]: how many of the
/// leaf's holes start at or below the address). Valid until the tree is next changed.
#[derive(Clone, Copy)]
pub(crate) struct Cursor {
    node: [u32; MAX_HEIGHT],
    child: [u8; MAX_HEIGHT],
    leaf: u32,
    pub slot: usize,
}

impl Cursor {
    const fn empty() -> Cursor {
        Cursor {
            node: [NIL; MAX_HEIGHT],
            child: [0; MAX_HEIGHT],
            leaf: NIL,
            slot: 0,
        }
    }
}

/// Puts `node` in a slot of `pool` that `spare` lists as free, or in a new one; returns its index.
fn take_slot<T>(pool: &mut Vec<T>, spare: &mut Vec<u32>, node: T) -> u32 {
    match spare.pop() {
        Some(i) => {
            pool[i as usize] = node;
            i
        }
        None => {
            pool.push(node);
            (pool.len() - 1) as u32
        }
    }
}

pub(crate) struct Tree {
    leaves: Vec<Leaf>,
    spare_leaves: Vec<u32>,
    inners: Vec<Inner>,
    spare_inners: Vec<u32>,
    root: u32,
    /// Inner levels above the leaves (0: the root is a leaf).
    height: usize,
    first_leaf: u32,
    /// Holes held (0: the root is an empty leaf).
    count: usize,
    /// The alignment levels summarised (see [`Levels`]).
    levels: Levels,
}

impl Tree {
    /// A tree with no hole.
    pub fn new() -> Tree {
        let mut t = Tree {
            leaves: Vec::new(),
            spare_leaves: Vec::new(),
            inners: Vec::new(),
            spare_inners: Vec::new(),
            root: 0,
            height: 0,
            first_leaf: 0,
            count: 0,
            levels: Levels::PLAIN,
        };
        t.clear();
        t
    }

    /// Drops every hole (the summarised levels stay).
    pub fn clear(&mut self) {
        self.leaves.clear();
        self.spare_leaves.clear();
        self.inners.clear();
        self.spare_inners.clear();
        let l = self.new_leaf();
        self.root = l;
        self.first_leaf = l;
        self.height = 0;
        self.count = 0;
    }

    fn new_leaf(&mut self) -> u32 {
        let leaf = Leaf {
            len: 0,
            prev: NIL,
            next: NIL,
            start: [u64::MAX; LEAF_CAP],
            units: [0; LEAF_CAP],
            room: NO_ROOM,
        };
        take_slot(&mut self.leaves, &mut self.spare_leaves, leaf)
    }

    fn new_inner(&mut self) -> u32 {
        let inner = Inner {
            len: 0,
            first: [u64::MAX; INNER_CAP],
            room: [[0; INNER_CAP]; SLOTS],
            child: [NIL; INNER_CAP],
            sum: NO_ROOM,
        };
        take_slot(&mut self.inners, &mut self.spare_inners, inner)
    }

    fn leaf(&self, l: u32) -> &Leaf {
        &self.leaves[l as usize]
    }

    fn inner(&self, n: u32) -> &Inner {
        &self.inners[n as usize]
    }

    /// The summary of `node` at `level` (0: a leaf).
    fn summary(&self, node: u32, level: usize) -> Summary {
        if level == 0 {
            self.leaf(node).summary()
        } else {
            self.inner(node).summary()
        }
    }

    /// Recomputes inner `node`'s entry for child `i` (the child is at `level - 1`).
    fn refresh_slot(&mut self, node: u32, i: usize, level: usize) {
        let child = self.inner(node).child[i];
        let s = self.summary(child, level - 1);
        let n = &mut self.inners[node as usize];
        n.set(i, s);
        n.recompute(self.levels);
    }

    /// The largest hole in units (0: none). O(1).
    pub fn largest_hole(&self) -> u64 {
        self.summary(self.root, self.height).room.0[0]
    }

    /// The hole at a cursor from [`Self::find`].
    pub fn get(&self, c: &Cursor) -> Hole {
        self.leaf(c.leaf).get(c.slot)
    }

    /// Where unit `at` is, or would be inserted: the leaf that would hold a hole starting at `at`,
    /// and how many of its holes start at or below `at`. See [`Self::before`], [`Self::after`].
    pub fn locate(&self, at: u64) -> Cursor {
        let mut c = Cursor::empty();
        let mut node = self.root;
        for d in 0..self.height {
            let n = self.inner(node);
            let i = n.child_for(at);
            c.node[d] = node;
            c.child[d] = i as u8;
            node = n.child[i];
        }
        let l = self.leaf(node);
        c.leaf = node;
        c.slot = l.start[..l.len].partition_point(|&s| s <= at);
        c
    }

    /// The last hole starting at or below a [`Self::locate`] cursor's address, if any.
    pub fn before(&self, c: &Cursor) -> Option<Hole> {
        let l = self.leaf(c.leaf);
        if c.slot > 0 {
            return Some(l.get(c.slot - 1));
        }
        // Only the leftmost leaf has no hole at or below the address, unless the holes before
        // it sit in the previous leaf (the address is below this leaf's first key).
        (l.prev != NIL).then(|| {
            let p = self.leaf(l.prev);
            p.get(p.len - 1)
        })
    }

    /// The first hole starting above a [`Self::locate`] cursor's address, if any.
    pub fn after(&self, c: &Cursor) -> Option<Hole> {
        let l = self.leaf(c.leaf);
        if c.slot < l.len {
            return Some(l.get(c.slot));
        }
        (l.next != NIL).then(|| self.leaf(l.next).get(0))
    }

    /// The holes from the first starting above a [`Self::locate`] cursor's address, in order.
    pub fn iter_from(&self, c: &Cursor) -> impl Iterator<Item = Hole> + '_ {
        let (mut leaf, mut slot) = (c.leaf, c.slot);
        std::iter::from_fn(move || {
            while leaf != NIL {
                let l = self.leaf(leaf);
                if slot < l.len {
                    slot += 1;
                    return Some(l.get(slot - 1));
                }
                leaf = l.next;
                slot = 0;
            }
            None
        })
    }

    /// Every hole in address order.
    pub fn iter(&self) -> impl Iterator<Item = Hole> + '_ {
        let mut c = Cursor::empty();
        c.leaf = self.first_leaf;
        self.iter_from(&c)
    }

    /// The hole where `req` fits at the lowest address (bottom-up) or the highest (top-down), and
    /// the start in it; `None` if no hole holds it.
    pub fn find(&mut self, req: &Request) -> Option<(Cursor, u64)> {
        let mut c = Cursor::empty();
        let level = level_of(req.align);
        let mut slot = self.levels.slot_for(level);
        if self.levels.level[slot] != level && self.levels.n < SLOTS {
            self.track(level);
            slot = self.levels.n - 1;
        }
        // Depth-first, leftmost (top-down: rightmost) child with room first; back up a level
        // when a subtree had room by its summary but no hole that takes the request (no-cross, or
        // an alignment bounded by a lower level's summary).
        let mut d = 0;
        let mut node = self.root;
        let mut from = [None::<usize>; MAX_HEIGHT];
        loop {
            if d == self.height {
                if let Some((i, at)) = self.fit_in_leaf(node, req) {
                    c.leaf = node;
                    c.slot = i;
                    return Some((c, at));
                }
            } else if let Some(i) = self.child_with_room(node, slot, req, from[d]) {
                c.node[d] = node;
                c.child[d] = i as u8;
                from[d] = Some(i);
                node = self.inner(node).child[i];
                d += 1;
                if d < self.height {
                    from[d] = None;
                }
                continue;
            }
            // Nothing below `node`: try the next child of its parent.
            if d == 0 {
                return None;
            }
            d -= 1;
            node = c.node[d];
        }
    }

    /// The first child of `node` (top-down: the last) past `after` whose room at summary slot
    /// `slot` can hold `req`.
    fn child_with_room(
        &self,
        node: u32,
        slot: usize,
        req: &Request,
        after: Option<usize>,
    ) -> Option<usize> {
        let n = self.inner(node);
        let room = &n.room[slot];
        if req.top_down {
            let end = after.unwrap_or(n.len);
            (0..end).rev().find(|&i| room[i] >= req.units)
        } else {
            let begin = after.map_or(0, |i| i + 1);
            (begin..n.len).find(|&i| room[i] >= req.units)
        }
    }

    /// The first hole of `leaf` (top-down: the last) that holds `req`, and where.
    fn fit_in_leaf(&self, leaf: u32, req: &Request) -> Option<(usize, u64)> {
        let l = self.leaf(leaf);
        let fits = |i: usize| {
            if l.units[i] < req.units {
                return None;
            }
            place(l.start[i], l.start[i] + l.units[i], req).map(|at| (i, at))
        };
        if req.top_down {
            (0..l.len).rev().find_map(fits)
        } else {
            (0..l.len).find_map(fits)
        }
    }

    /// The alignment levels summarised, in slot order.
    #[cfg(test)]
    pub fn tracked_levels(&self) -> Vec<u8> {
        self.levels.level[..self.levels.n].to_vec()
    }

    /// Starts keeping summaries for alignment `level`: one O(n) pass, at most once per level.
    #[cold]
    fn track(&mut self, level: u8) {
        self.levels.level[self.levels.n] = level;
        self.levels.n += 1;
        self.rebuild(self.root, self.height);
    }

    fn rebuild(&mut self, node: u32, height: usize) {
        if height == 0 {
            self.leaves[node as usize].recompute(self.levels);
            return;
        }
        for i in 0..self.inner(node).len {
            self.rebuild(self.inner(node).child[i], height - 1);
            let s = self.summary(self.inner(node).child[i], height - 1);
            self.inners[node as usize].set(i, s);
        }
        self.inners[node as usize].recompute(self.levels);
    }

    /// Refreshes the summaries on the cursor's path after its leaf changed in place; stops where
    /// nothing changed.
    fn refresh_path(&mut self, c: &Cursor, mut old: Summary) {
        let mut new = self.leaf(c.leaf).summary();
        for d in (0..self.height).rev() {
            if new.same(&old, self.levels) {
                break;
            }
            let (node, i) = (c.node[d], usize::from(c.child[d]));
            let n = &mut self.inners[node as usize];
            let before = n.summary();
            n.update_slot(i, &old, &new, self.levels);
            old = before;
            new = n.summary();
        }
    }

    /// Replaces the holes `old` (0 to 2, consecutive, in order) with `with` (0 to 2, in order,
    /// between the holes around `old`). `pos` is the slot of `old[0]` in the cursor's leaf, or
    /// where `with` goes when `old` is empty; it may lie outside the leaf (e.g. -1: the hole is the
    /// previous leaf's last), which takes the slow path.
    pub fn replace(&mut self, c: &Cursor, pos: isize, old: &[Hole], with: &[Hole]) {
        debug_assert!(old.len() <= 2 && with.len() <= 2);
        let len = self.leaf(c.leaf).len;
        let new_len = len + with.len() - old.len().min(len);
        // The fast path keeps the leaf non-empty (an empty leaf is dropped by the slow path),
        // unless it is the root: a tree with no hole is an empty root leaf.
        let fast = pos >= 0
            && pos as usize + old.len() <= len
            && new_len <= LEAF_CAP
            && (new_len > 0 || self.height == 0);
        if !fast {
            self.replace_slow(old, with);
            return;
        }
        let (lo, hi) = (pos as usize, pos as usize + old.len());
        let l = &mut self.leaves[c.leaf as usize];
        debug_assert!(old.iter().zip(lo..hi).all(|(h, i)| l.get(i) == *h));
        let old_summary = l.summary();
        if with.len() != old.len() {
            l.shift(hi, lo + with.len(), new_len);
        }
        for (i, h) in with.iter().enumerate() {
            l.put(lo + i, *h);
        }
        self.count = self.count + with.len() - old.len();
        // Each level's room grows to the best new hole, or is rescanned if the hole that gave it
        // is gone. A hole's room never exceeds its size, so most rooms need not be computed.
        let lv = self.levels;
        let mut stale = 0u32; // slots to rescan
        for j in lv.iter() {
            let (cur, level) = (l.room.0[j], lv.level[j]);
            let room = |h: &Hole| aligned_room(h.start, h.end(), level);
            let added = with
                .iter()
                .filter(|h| h.units > cur)
                .map(room)
                .max()
                .unwrap_or(0);
            if added > cur {
                l.room.0[j] = added;
            } else if cur > 0 && old.iter().any(|h| h.units >= cur && room(h) == cur) {
                stale |= 1 << j;
            }
        }
        if stale != 0 {
            l.rescan(lv, stale);
        }
        self.refresh_path(c, old_summary);
    }

    /// [`Self::replace`] through the recursive operations: remove `old`, insert `with`.
    #[cold]
    fn replace_slow(&mut self, old: &[Hole], with: &[Hole]) {
        for h in old {
            self.remove(h.start);
        }
        for &h in with {
            self.insert(h);
        }
    }

    /// The first hole.
    pub fn first(&self) -> Option<Hole> {
        let l = self.leaf(self.first_leaf);
        (l.len > 0).then(|| l.get(0))
    }

    /// The last hole.
    pub fn last(&self) -> Option<Hole> {
        let mut node = self.root;
        for _ in 0..self.height {
            let n = self.inner(node);
            node = n.child[n.len - 1];
        }
        let l = self.leaf(node);
        (l.len > 0).then(|| l.get(l.len - 1))
    }

    /// Replaces the holes `old` with `with`, wherever they are (by key; not for hot paths).
    pub fn swap(&mut self, old: &[Hole], with: &[Hole]) {
        self.replace_slow(old, with);
    }

    /// Inserts a hole that starts where no hole starts now.
    fn insert(&mut self, h: Hole) {
        self.count += 1;
        if let Some(right) = self.insert_rec(self.root, self.height, h) {
            let old = self.root;
            let r = self.new_inner();
            self.inners[r as usize].len = 2;
            self.inners[r as usize].child[0] = old;
            self.inners[r as usize].child[1] = right;
            self.root = r;
            self.height += 1;
            self.refresh_slot(r, 0, self.height);
            self.refresh_slot(r, 1, self.height);
        }
    }

    /// Inserts `h` below `node`; returns the new right sibling if `node` had to split.
    fn insert_rec(&mut self, node: u32, height: usize, h: Hole) -> Option<u32> {
        if height == 0 {
            return self.insert_in_leaf(node, h);
        }
        let i = self.inner(node).child_for(h.start);
        let split = self.insert_rec(self.inner(node).child[i], height - 1, h);
        self.refresh_slot(node, i, height);
        let right = split?;
        if self.inner(node).len < INNER_CAP {
            self.inner_insert(node, i + 1, right, height);
            return None;
        }
        // Split: the upper half moves to a new node, then the child goes into its half.
        let new = self.new_inner();
        let half = INNER_CAP / 2;
        let upper = self.inners[node as usize].clone();
        {
            let m = &mut self.inners[new as usize];
            m.first[..INNER_CAP - half].copy_from_slice(&upper.first[half..]);
            for j in 0..SLOTS {
                m.room[j][..INNER_CAP - half].copy_from_slice(&upper.room[j][half..]);
            }
            m.child[..INNER_CAP - half].copy_from_slice(&upper.child[half..]);
            m.len = INNER_CAP - half;
            m.recompute(self.levels);
        }
        self.inners[node as usize].shift(INNER_CAP, INNER_CAP, half, self.levels);
        if i < half {
            self.inner_insert(node, i + 1, right, height);
        } else {
            self.inner_insert(new, i + 1 - half, right, height);
        }
        Some(new)
    }

    /// Puts `child` (a node at `height - 1`) into inner `node` at slot `at`; `node` has room.
    fn inner_insert(&mut self, node: u32, at: usize, child: u32, height: usize) {
        let n = &mut self.inners[node as usize];
        let len = n.len;
        n.shift(at, at + 1, len + 1, self.levels);
        n.child[at] = child;
        self.refresh_slot(node, at, height);
    }

    fn insert_in_leaf(&mut self, leaf: u32, h: Hole) -> Option<u32> {
        let l = &self.leaves[leaf as usize];
        let at = l.start[..l.len]
            .iter()
            .take_while(|&&x| x < h.start)
            .count();
        let (target, at, split) = if l.len < LEAF_CAP {
            (leaf, at, None)
        } else {
            let new = self.new_leaf();
            let half = LEAF_CAP / 2;
            let upper = self.leaves[leaf as usize].clone();
            let m = &mut self.leaves[new as usize];
            m.start[..LEAF_CAP - half].copy_from_slice(&upper.start[half..]);
            m.units[..LEAF_CAP - half].copy_from_slice(&upper.units[half..]);
            m.len = LEAF_CAP - half;
            m.recompute(self.levels);
            m.prev = leaf;
            m.next = upper.next;
            if upper.next != NIL {
                self.leaves[upper.next as usize].prev = new;
            }
            let l = &mut self.leaves[leaf as usize];
            l.next = new;
            l.shift(LEAF_CAP, LEAF_CAP, half);
            l.recompute(self.levels);
            if at <= half {
                (leaf, at, Some(new))
            } else {
                (new, at - half, Some(new))
            }
        };
        let l = &mut self.leaves[target as usize];
        let len = l.len;
        l.shift(at, at + 1, len + 1);
        l.put(at, h);
        l.recompute(self.levels);
        split
    }

    /// Removes the hole that starts at `start`.
    fn remove(&mut self, start: u64) {
        if self.count == 1 {
            // The last hole: back to an empty root leaf (emptying it by the recursive path would
            // drop the root too).
            debug_assert_eq!(self.first().map(|h| h.start), Some(start));
            self.clear();
            return;
        }
        self.count -= 1;
        self.remove_rec(self.root, self.height, start);
        while self.height > 0 && self.inner(self.root).len == 1 {
            let old = self.root;
            self.root = self.inner(old).child[0];
            self.spare_inners.push(old);
            self.height -= 1;
        }
    }

    /// Returns whether `node` is now empty (and was dropped).
    fn remove_rec(&mut self, node: u32, height: usize, start: u64) -> bool {
        if height == 0 {
            let l = &mut self.leaves[node as usize];
            let slot = l.start[..l.len]
                .iter()
                .position(|&x| x == start)
                .expect("the hole to remove exists");
            let len = l.len;
            l.shift(slot + 1, slot, len - 1);
            l.recompute(self.levels);
            if l.len > 0 {
                return false;
            }
            let (prev, next) = (l.prev, l.next);
            if prev != NIL {
                self.leaves[prev as usize].next = next;
            } else {
                self.first_leaf = next;
            }
            if next != NIL {
                self.leaves[next as usize].prev = prev;
            }
            self.spare_leaves.push(node);
            return true;
        }
        let i = self.inner(node).child_for(start);
        if !self.remove_rec(self.inner(node).child[i], height - 1, start) {
            self.refresh_slot(node, i, height);
            return false;
        }
        let n = &mut self.inners[node as usize];
        let len = n.len;
        n.shift(i + 1, i, len - 1, self.levels);
        if n.len > 0 {
            return false;
        }
        self.spare_inners.push(node);
        true
    }

    /// Checks the summaries, key order, vacant slots, leaf links and the hole count; for tests.
    pub fn check(&self) -> Result<(), String> {
        let mut leaves = Vec::new();
        self.check_node(self.root, self.height, &mut leaves)?;
        let mut l = self.first_leaf;
        let mut prev = NIL;
        for &want in &leaves {
            if l != want || self.leaf(l).prev != prev {
                return Err(format!("leaf list out of order at leaf {want}"));
            }
            prev = l;
            l = self.leaf(l).next;
        }
        if l != NIL {
            return Err("leaf list longer than the tree".into());
        }
        let n = leaves.iter().map(|&l| self.leaf(l).len).sum::<usize>();
        if n != self.count {
            return Err(format!(
                "{n} holes in the leaves, count says {}",
                self.count
            ));
        }
        Ok(())
    }

    fn check_node(&self, node: u32, height: usize, leaves: &mut Vec<u32>) -> Result<(), String> {
        if height == 0 {
            let l = self.leaf(node);
            let sorted = l.start[..l.len].windows(2).all(|w| w[0] < w[1]);
            let vacant = (l.len..LEAF_CAP).all(|i| l.get(i) == VACANT);
            let mut fresh = l.clone();
            fresh.recompute(self.levels);
            let empty = l.len == 0 && !(node == self.root && self.height == 0);
            if empty || !sorted || !vacant || !fresh.room.same_all(&l.room) {
                return Err(format!("leaf {node} empty, unsorted or with stale slots"));
            }
            leaves.push(node);
            return Ok(());
        }
        let n = self.inner(node);
        if n.len == 0 || (node == self.root && n.len < 2) {
            return Err(format!("inner {node} has {} children", n.len));
        }
        let vacant = (n.len..INNER_CAP).all(|i| {
            n.first[i] == u64::MAX && n.child[i] == NIL && n.child_rooms(i).same_all(&NO_ROOM)
        });
        let mut fresh = n.clone();
        fresh.recompute(self.levels);
        if !vacant || !fresh.sum.same_all(&n.sum) {
            return Err(format!("inner {node} has stale slots or sums"));
        }
        for i in 0..n.len {
            let want = self.summary(n.child[i], height - 1);
            let got = n.slot_summary(i);
            if got.first != want.first || !got.room.same_all(&want.room) {
                return Err(format!("inner {node} slot {i}: stale summary"));
            }
            if i > 0 && n.first[i - 1] >= n.first[i] {
                return Err(format!("inner {node} keys unsorted"));
            }
            self.check_node(n.child[i], height - 1, leaves)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holes(t: &Tree) -> Vec<(u64, u64)> {
        t.iter().map(|h| (h.start, h.units)).collect()
    }

    /// Carves unit `at` out of the hole holding it, as the arena would.
    fn carve(t: &mut Tree, at: u64) {
        let c = t.locate(at);
        let h = t.before(&c).expect("a hole holds the unit");
        assert!(h.start <= at && at < h.end());
        let mut with = Vec::new();
        if at > h.start {
            with.push(Hole::new(h.start, at - h.start));
        }
        if at + 1 < h.end() {
            with.push(Hole::new(at + 1, h.end() - at - 1));
        }
        t.replace(&c, c.slot as isize - 1, &[h], &with);
    }

    /// Gives unit `at` back, merging with the holes that touch it.
    fn release(t: &mut Tree, at: u64) {
        let c = t.locate(at);
        let p = t.before(&c).filter(|h| h.end() == at);
        let n = t.after(&c).filter(|h| h.start == at + 1);
        let start = p.map_or(at, |p| p.start);
        let end = n.map_or(at + 1, |n| n.end());
        let old: Vec<Hole> = p.into_iter().chain(n).collect();
        let pos = c.slot as isize - isize::from(p.is_some());
        t.replace(&c, pos, &old, &[Hole::new(start, end - start)]);
    }

    #[test]
    fn grows_and_shrinks_through_splits_and_empty_nodes() {
        // Under Miri a smaller tree (still two levels of inner nodes): 2,500 units took 131 s.
        let n = if cfg!(miri) { 1200 } else { 5000u64 };
        let mut t = Tree::new();
        t.swap(&[], &[Hole::new(0, n)]);
        // Carve every odd unit from the bottom: each carve splits the top hole, every split path
        // runs, and the even units stay holes.
        for i in (1..n).step_by(2) {
            carve(&mut t, i);
        }
        t.check().unwrap();
        assert!(t.height >= 2);
        assert_eq!(t.largest_hole(), 1);
        assert_eq!(t.tracked_levels(), vec![0]);
        // Free the odd units in a scattered order, merging as the heap would.
        let mut order: Vec<u64> = (1..n).step_by(2).collect();
        let mut x = 7u64;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            release(&mut t, i);
        }
        t.check().unwrap();
        assert_eq!(holes(&t), vec![(0, n)]);
        assert_eq!(t.height, 0);
        assert_eq!(t.largest_hole(), n);
        // Carve everything: a tree may hold no hole, and then take one back.
        for &i in &order {
            carve(&mut t, i - 1);
        }
        t.check().unwrap();
        for i in (1..n).step_by(2) {
            carve(&mut t, i);
        }
        t.check().unwrap();
        assert_eq!(holes(&t), vec![]);
        assert_eq!(t.largest_hole(), 0);
        release(&mut t, 7);
        t.check().unwrap();
        assert_eq!(holes(&t), vec![(7, 1)]);
    }
}
