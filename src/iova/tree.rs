//! Every block of one address range (hole, live allocation or deferred free) in an address-ordered
//! B+tree whose inner nodes keep, for each child, its first unit and the largest hole below it.
//!
//! Owns: [`Tree`], its leaf and inner-node pools. Takes no locks; it lives inside an arena's lock.
//!
//! Why this shape: the largest-hole summaries give exact address-ordered first fit (the lowest, or
//! for top-down the highest, hole where the request fits) in O(log n) plus the holes that are big
//! enough but fail alignment or no-cross, as Linux's drm_mm does with its augmented rbtree. A
//! B+tree instead of a binary tree because a lookup then misses the cache about once (the leaf):
//! the inner levels of a 1M-block tree are a few hundred KiB and stay cached, where an rbtree node
//! per block costs a miss per level. The same descent finds the block holding an address, so the
//! heap needs no separate live map: a free is checked against the block itself.
//!
//! Hot operations (carve a hole, merge a freed block with its neighbours) rewrite one leaf in place
//! and refresh the summaries along the descent path. Only when a leaf overflows, or the blocks to
//! merge sit in two leaves, does an operation fall back to the recursive insert / remove by key,
//! which splits full nodes and drops empty ones.

use super::place::{place, Request};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// A hole.
    Free,
    /// A live allocation.
    Used,
    /// Freed after a fence that has not signalled yet.
    Deferred,
}

/// One range of the heap, in granule units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub start: u64,
    /// At least 1.
    pub units: u64,
    pub state: State,
}

impl Block {
    pub const fn new(start: u64, units: u64, state: State) -> Block {
        Block {
            start,
            units,
            state,
        }
    }
    pub fn end(&self) -> u64 {
        self.start + self.units
    }
    pub fn is_free(&self) -> bool {
        self.state == State::Free
    }
    /// The block's size if it is a hole, else 0: what the summaries take the maximum of.
    fn hole(&self) -> u64 {
        if self.is_free() {
            self.units
        } else {
            0
        }
    }
}

const LEAF_CAP: usize = 32;
const INNER_CAP: usize = 16;
/// 32 * 16^14 blocks: more than a 2^64-unit heap can hold.
const MAX_HEIGHT: usize = 15;
const NIL: u32 = u32::MAX;
const NO_BLOCK: Block = Block::new(0, 0, State::Used);

#[derive(Clone)]
struct Leaf {
    len: usize,
    /// Neighbouring leaves in address order (`NIL` at the ends).
    prev: u32,
    next: u32,
    b: [Block; LEAF_CAP],
}

#[derive(Clone)]
struct Inner {
    len: usize,
    /// First unit of each child's subtree.
    first: [u64; INNER_CAP],
    /// Largest hole in each child's subtree (0: none).
    max: [u64; INNER_CAP],
    child: [u32; INNER_CAP],
}

/// A block's position: the descent path (inner node, child slot) from the root, then leaf and slot.
/// Valid until the tree is next changed.
#[derive(Clone, Copy)]
pub(crate) struct Cursor {
    path: [(u32, u8); MAX_HEIGHT],
    leaf: u32,
    slot: usize,
}

impl Cursor {
    const fn empty() -> Cursor {
        Cursor {
            path: [(NIL, 0); MAX_HEIGHT],
            leaf: NIL,
            slot: 0,
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
}

impl Tree {
    /// A tree holding the one block `b`.
    pub fn new(b: Block) -> Tree {
        let mut t = Tree {
            leaves: Vec::new(),
            spare_leaves: Vec::new(),
            inners: Vec::new(),
            spare_inners: Vec::new(),
            root: 0,
            height: 0,
            first_leaf: 0,
        };
        let l = t.new_leaf();
        t.leaves[l as usize].b[0] = b;
        t.leaves[l as usize].len = 1;
        t.root = l;
        t.first_leaf = l;
        t
    }

    fn new_leaf(&mut self) -> u32 {
        let leaf = Leaf {
            len: 0,
            prev: NIL,
            next: NIL,
            b: [NO_BLOCK; LEAF_CAP],
        };
        match self.spare_leaves.pop() {
            Some(i) => {
                self.leaves[i as usize] = leaf;
                i
            }
            None => {
                self.leaves.push(leaf);
                (self.leaves.len() - 1) as u32
            }
        }
    }

    fn new_inner(&mut self) -> u32 {
        let inner = Inner {
            len: 0,
            first: [0; INNER_CAP],
            max: [0; INNER_CAP],
            child: [NIL; INNER_CAP],
        };
        match self.spare_inners.pop() {
            Some(i) => {
                self.inners[i as usize] = inner;
                i
            }
            None => {
                self.inners.push(inner);
                (self.inners.len() - 1) as u32
            }
        }
    }

    fn leaf(&self, l: u32) -> &Leaf {
        &self.leaves[l as usize]
    }

    fn inner(&self, n: u32) -> &Inner {
        &self.inners[n as usize]
    }

    /// (first unit, largest hole) of the subtree `node` at `level` (0: a leaf).
    fn summary(&self, node: u32, level: usize) -> (u64, u64) {
        if level == 0 {
            let l = self.leaf(node);
            let max = l.b[..l.len].iter().map(Block::hole).max().unwrap_or(0);
            (l.b[0].start, max)
        } else {
            let n = self.inner(node);
            (n.first[0], n.max[..n.len].iter().copied().max().unwrap_or(0))
        }
    }

    /// Recomputes inner `node`'s entry for child `i` (the child is at `level - 1`).
    fn refresh_slot(&mut self, node: u32, i: usize, level: usize) {
        let child = self.inner(node).child[i];
        let (first, max) = self.summary(child, level - 1);
        let n = &mut self.inners[node as usize];
        n.first[i] = first;
        n.max[i] = max;
    }

    /// The largest hole in units (0: none). O(1) in the tree's height.
    pub fn largest_hole(&self) -> u64 {
        self.summary(self.root, self.height).1
    }

    pub fn get(&self, c: &Cursor) -> Block {
        self.leaf(c.leaf).b[c.slot]
    }

    /// The block holding unit `at`, which must be inside the tree's range.
    pub fn locate(&self, at: u64) -> Cursor {
        let mut c = Cursor::empty();
        let mut node = self.root;
        for d in 0..self.height {
            let n = self.inner(node);
            let i = n.first[1..n.len].iter().take_while(|&&f| f <= at).count();
            c.path[d] = (node, i as u8);
            node = n.child[i];
        }
        let l = self.leaf(node);
        c.leaf = node;
        c.slot = l.b[1..l.len].iter().take_while(|b| b.start <= at).count();
        c
    }

    /// The block before the cursor's, if any.
    pub fn prev_block(&self, c: &Cursor) -> Option<Block> {
        let l = self.leaf(c.leaf);
        if c.slot > 0 {
            return Some(l.b[c.slot - 1]);
        }
        (l.prev != NIL).then(|| {
            let p = self.leaf(l.prev);
            p.b[p.len - 1]
        })
    }

    /// The block after the cursor's, if any.
    pub fn next_block(&self, c: &Cursor) -> Option<Block> {
        let l = self.leaf(c.leaf);
        if c.slot + 1 < l.len {
            return Some(l.b[c.slot + 1]);
        }
        (l.next != NIL).then(|| self.leaf(l.next).b[0])
    }

    /// The blocks from the cursor's on, in address order.
    pub fn iter_from(&self, c: &Cursor) -> impl Iterator<Item = Block> + '_ {
        let (mut leaf, mut slot) = (c.leaf, c.slot);
        std::iter::from_fn(move || {
            while leaf != NIL {
                let l = self.leaf(leaf);
                if slot < l.len {
                    slot += 1;
                    return Some(l.b[slot - 1]);
                }
                leaf = l.next;
                slot = 0;
            }
            None
        })
    }

    /// Every block in address order.
    pub fn iter(&self) -> impl Iterator<Item = Block> + '_ {
        let mut c = Cursor::empty();
        c.leaf = self.first_leaf;
        self.iter_from(&c)
    }

    /// The hole where `req` fits at the lowest address (bottom-up) or the highest (top-down), and
    /// the start in it; `None` if no hole holds it.
    pub fn find(&self, req: &Request) -> Option<(Cursor, u64)> {
        let mut c = Cursor::empty();
        let at = self.find_in(self.root, self.height, req, &mut c)?;
        Some((c, at))
    }

    fn find_in(&self, node: u32, level: usize, req: &Request, c: &mut Cursor) -> Option<u64> {
        if level == 0 {
            let l = self.leaf(node);
            let fits = |slot: usize| {
                let b = &l.b[slot];
                if b.hole() < req.units {
                    return None;
                }
                place(b.start, b.end(), req).map(|at| (slot, at))
            };
            let found = if req.top_down {
                (0..l.len).rev().find_map(fits)
            } else {
                (0..l.len).find_map(fits)
            };
            let (slot, at) = found?;
            c.leaf = node;
            c.slot = slot;
            return Some(at);
        }
        let d = self.height - level;
        let n = self.inner(node);
        let mut try_child = |i: usize| {
            if n.max[i] < req.units {
                return None;
            }
            c.path[d] = (node, i as u8);
            self.find_in(n.child[i], level - 1, req, c)
        };
        if req.top_down {
            (0..n.len).rev().find_map(&mut try_child)
        } else {
            (0..n.len).find_map(&mut try_child)
        }
    }

    /// Refreshes the summaries on the cursor's path after its leaf changed in place; stops where
    /// nothing changed.
    fn refresh_path(&mut self, c: &Cursor) {
        for d in (0..self.height).rev() {
            let (node, i) = c.path[d];
            let i = usize::from(i);
            let old = {
                let n = self.inner(node);
                (n.first[i], n.max[i])
            };
            self.refresh_slot(node, i, self.height - d);
            let n = self.inner(node);
            if (n.first[i], n.max[i]) == old {
                break;
            }
        }
    }

    /// Replaces the blocks from `before` blocks before the cursor's to `after` blocks after it
    /// with `with` (1 to 3 blocks, in order; `with[0]` starts where the first replaced block did).
    pub fn replace(&mut self, c: &Cursor, before: usize, after: usize, with: &[Block]) {
        debug_assert!(!with.is_empty() && with.len() <= 3);
        let len = self.leaf(c.leaf).len;
        let in_leaf = c.slot >= before && c.slot + after < len;
        let new_len = (len + with.len()).saturating_sub(before + after + 1);
        if !in_leaf || new_len > LEAF_CAP {
            let mut starts = [0u64; 3];
            let mut b = self.prev_start_of(c, before);
            for s in starts.iter_mut().take(before + after + 1) {
                *s = b;
                b = self.block_after_start(b);
            }
            self.replace_slow(&starts[..before + after + 1], with);
            return;
        }
        let (lo, hi) = (c.slot - before, c.slot + after + 1);
        let l = &mut self.leaves[c.leaf as usize];
        l.b.copy_within(hi..len, lo + with.len());
        l.b[lo..lo + with.len()].copy_from_slice(with);
        l.len = new_len;
        self.refresh_path(c);
    }

    /// Start of the block `k` (0..=1) blocks before the cursor's.
    fn prev_start_of(&self, c: &Cursor, k: usize) -> u64 {
        match k {
            0 => self.get(c).start,
            _ => self.prev_block(c).expect("a block to merge with").start,
        }
    }

    /// Start of the block right after the one starting at `start`.
    fn block_after_start(&self, start: u64) -> u64 {
        let c = self.locate(start);
        self.next_block(&c).map_or(u64::MAX, |b| b.start)
    }

    /// [`Self::replace`] through the recursive operations: remove all but the first block,
    /// overwrite the first, insert the rest.
    fn replace_slow(&mut self, starts: &[u64], with: &[Block]) {
        for &s in &starts[1..] {
            self.remove(s);
        }
        debug_assert_eq!(with[0].start, starts[0]);
        self.set_rec(self.root, self.height, with[0]);
        for &b in &with[1..] {
            self.insert(b);
        }
    }

    fn child_for(&self, node: u32, key: u64) -> usize {
        let n = self.inner(node);
        n.first[1..n.len].iter().take_while(|&&f| f <= key).count()
    }

    /// Overwrites the block that starts at `b.start`.
    fn set_rec(&mut self, node: u32, level: usize, b: Block) {
        if level == 0 {
            let l = &mut self.leaves[node as usize];
            let slot = l.b[..l.len]
                .iter()
                .position(|x| x.start == b.start)
                .expect("the block to overwrite exists");
            l.b[slot] = b;
            return;
        }
        let i = self.child_for(node, b.start);
        self.set_rec(self.inner(node).child[i], level - 1, b);
        self.refresh_slot(node, i, level);
    }

    /// Inserts a block that starts where no block starts now.
    fn insert(&mut self, b: Block) {
        if let Some(right) = self.insert_rec(self.root, self.height, b) {
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

    /// Inserts `b` below `node`; returns the new right sibling if `node` had to split.
    fn insert_rec(&mut self, node: u32, level: usize, b: Block) -> Option<u32> {
        if level == 0 {
            return self.insert_in_leaf(node, b);
        }
        let i = self.child_for(node, b.start);
        let split = self.insert_rec(self.inner(node).child[i], level - 1, b);
        self.refresh_slot(node, i, level);
        let right = split?;
        if self.inner(node).len < INNER_CAP {
            self.inner_insert(node, i + 1, right, level);
            return None;
        }
        // Split: the upper half moves to a new node, then the child goes into its half.
        let new = self.new_inner();
        let half = INNER_CAP / 2;
        let (a, z) = (node as usize, new as usize);
        let moved = {
            let n = &self.inners[a];
            (n.first, n.max, n.child)
        };
        {
            let m = &mut self.inners[z];
            m.first[..half].copy_from_slice(&moved.0[half..]);
            m.max[..half].copy_from_slice(&moved.1[half..]);
            m.child[..half].copy_from_slice(&moved.2[half..]);
            m.len = INNER_CAP - half;
        }
        self.inners[a].len = half;
        if i + 1 <= half {
            self.inner_insert(node, i + 1, right, level);
        } else {
            self.inner_insert(new, i + 1 - half, right, level);
        }
        Some(new)
    }

    /// Puts `child` (a node at `level - 1`) into inner `node` at slot `at`; `node` has room.
    fn inner_insert(&mut self, node: u32, at: usize, child: u32, level: usize) {
        let n = &mut self.inners[node as usize];
        let len = n.len;
        n.first.copy_within(at..len, at + 1);
        n.max.copy_within(at..len, at + 1);
        n.child.copy_within(at..len, at + 1);
        n.child[at] = child;
        n.len += 1;
        self.refresh_slot(node, at, level);
    }

    fn insert_in_leaf(&mut self, leaf: u32, b: Block) -> Option<u32> {
        let l = &mut self.leaves[leaf as usize];
        let at = l.b[..l.len].iter().take_while(|x| x.start < b.start).count();
        if l.len < LEAF_CAP {
            let len = l.len;
            l.b.copy_within(at..len, at + 1);
            l.b[at] = b;
            l.len += 1;
            return None;
        }
        let new = self.new_leaf();
        let half = LEAF_CAP / 2;
        let upper: [Block; LEAF_CAP] = self.leaves[leaf as usize].b;
        let next = self.leaves[leaf as usize].next;
        {
            let m = &mut self.leaves[new as usize];
            m.b[..LEAF_CAP - half].copy_from_slice(&upper[half..]);
            m.len = LEAF_CAP - half;
            m.prev = leaf;
            m.next = next;
        }
        if next != NIL {
            self.leaves[next as usize].prev = new;
        }
        self.leaves[leaf as usize].next = new;
        self.leaves[leaf as usize].len = half;
        let (target, at) = if at <= half {
            (leaf, at)
        } else {
            (new, at - half)
        };
        let l = &mut self.leaves[target as usize];
        let len = l.len;
        l.b.copy_within(at..len, at + 1);
        l.b[at] = b;
        l.len += 1;
        Some(new)
    }

    /// Removes the block that starts at `start`. The tree keeps at least one block.
    fn remove(&mut self, start: u64) {
        self.remove_rec(self.root, self.height, start);
        while self.height > 0 && self.inner(self.root).len == 1 {
            let old = self.root;
            self.root = self.inner(old).child[0];
            self.spare_inners.push(old);
            self.height -= 1;
        }
    }

    /// Returns whether `node` is now empty (and was dropped).
    fn remove_rec(&mut self, node: u32, level: usize, start: u64) -> bool {
        if level == 0 {
            let l = &mut self.leaves[node as usize];
            let slot = l.b[..l.len]
                .iter()
                .position(|x| x.start == start)
                .expect("the block to remove exists");
            let len = l.len;
            l.b.copy_within(slot + 1..len, slot);
            l.len -= 1;
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
        let i = self.child_for(node, start);
        if !self.remove_rec(self.inner(node).child[i], level - 1, start) {
            self.refresh_slot(node, i, level);
            return false;
        }
        let n = &mut self.inners[node as usize];
        let len = n.len;
        n.first.copy_within(i + 1..len, i);
        n.max.copy_within(i + 1..len, i);
        n.child.copy_within(i + 1..len, i);
        n.len -= 1;
        if n.len > 0 {
            return false;
        }
        self.spare_inners.push(node);
        true
    }

    /// Checks the summaries, key order and leaf links; for tests.
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
        Ok(())
    }

    fn check_node(&self, node: u32, level: usize, leaves: &mut Vec<u32>) -> Result<(), String> {
        if level == 0 {
            let l = self.leaf(node);
            if l.len == 0 || l.b[..l.len].windows(2).any(|w| w[0].start >= w[1].start) {
                return Err(format!("leaf {node} empty or unsorted"));
            }
            leaves.push(node);
            return Ok(());
        }
        let n = self.inner(node);
        if n.len == 0 || (node == self.root && n.len < 2) {
            return Err(format!("inner {node} has {} children", n.len));
        }
        for i in 0..n.len {
            if (n.first[i], n.max[i]) != self.summary(n.child[i], level - 1) {
                return Err(format!("inner {node} slot {i}: stale summary"));
            }
            if i > 0 && n.first[i - 1] >= n.first[i] {
                return Err(format!("inner {node} keys unsorted"));
            }
            self.check_node(n.child[i], level - 1, leaves)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(t: &Tree) -> Vec<(u64, u64, State)> {
        t.iter().map(|b| (b.start, b.units, b.state)).collect()
    }

    #[test]
    fn grows_and_shrinks_through_splits_and_empty_nodes() {
        let n = 5000u64;
        let mut t = Tree::new(Block::new(0, n, State::Free));
        // Carve unit i as its own block, one at a time from the bottom: every split path runs.
        for i in 0..n - 1 {
            let c = t.locate(i);
            let b = t.get(&c);
            assert_eq!((b.start, b.units), (i, n - i));
            t.replace(
                &c,
                0,
                0,
                &[
                    Block::new(i, 1, State::Used),
                    Block::new(i + 1, n - i - 1, State::Free),
                ],
            );
        }
        t.check().unwrap();
        assert!(t.height >= 2);
        assert_eq!(t.largest_hole(), 1);
        // Free every other block in a scattered order, merging as the heap would.
        let mut order: Vec<u64> = (0..n - 1).collect();
        let mut x = 7u64;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let c = t.locate(i);
            let b = t.get(&c);
            assert_eq!(b.state, State::Used);
            let p = t.prev_block(&c).filter(Block::is_free);
            let nx = t.next_block(&c).filter(Block::is_free);
            let start = p.map_or(b.start, |p| p.start);
            let end = nx.map_or(b.end(), |n| n.end());
            t.replace(
                &c,
                p.is_some() as usize,
                nx.is_some() as usize,
                &[Block::new(start, end - start, State::Free)],
            );
        }
        t.check().unwrap();
        assert_eq!(blocks(&t), vec![(0, n, State::Free)]);
        assert_eq!(t.height, 0);
        assert_eq!(t.largest_hole(), n);
    }
}
