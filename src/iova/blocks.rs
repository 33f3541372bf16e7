//! Blocks: every range of the heap (free, live or waiting on a fence) as a node in a slab, linked in
//! address order.
//!
//! Owns: the node slab and the address-ordered neighbour links. Takes no locks; it lives inside
//! the heap's mutex.
//!
//! Nodes are addressed by `u32` index so the links are small and a `Vec` holds them all; freed
//! indices are reused through a free list. `NIL` marks "no node".

pub(crate) const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// A hole: in a size bin.
    Free,
    /// Handed out; in the live map.
    Used,
    /// Handed out by `alloc_handle`; in no map (the caller's handle names the node).
    Held,
    /// Freed after a fence that has not signalled yet; in no bin.
    Deferred,
    /// An unused slab slot on the free list.
    Vacant,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    /// First unit.
    pub start: u64,
    /// Length in units, at least 1.
    pub units: u64,
    pub addr_prev: u32,
    pub addr_next: u32,
    /// Size-bin list links; meaningful only while `state == Free`.
    pub bin_prev: u32,
    pub bin_next: u32,
    pub state: State,
    /// Bumped each time the node is deferred, so a stale entry in a fence queue is recognised.
    pub tag: u32,
    /// In the heap's sampled address index (keyed by `last()`).
    pub anchor: bool,
}

impl Node {
    /// Last unit (inclusive), the key of the anchor index.
    pub fn last(&self) -> u64 {
        self.start + self.units - 1
    }
    pub fn end(&self) -> u64 {
        self.start + self.units
    }
}

#[derive(Default)]
pub(crate) struct Slab {
    pub nodes: Vec<Node>,
    vacant: Vec<u32>,
}

impl Slab {
    pub fn alloc(&mut self, start: u64, units: u64, state: State) -> u32 {
        let node = Node {
            start,
            units,
            addr_prev: NIL,
            addr_next: NIL,
            bin_prev: NIL,
            bin_next: NIL,
            state,
            tag: 0,
            anchor: false,
        };
        match self.vacant.pop() {
            Some(i) => {
                let tag = self.nodes[i as usize].tag;
                self.nodes[i as usize] = Node { tag, ..node };
                i
            }
            None => {
                let i = u32::try_from(self.nodes.len()).expect("more than 2^32 blocks in one heap");
                assert!(i != NIL, "more than 2^32 - 1 blocks in one heap");
                self.nodes.push(node);
                i
            }
        }
    }

    /// Unlinks `i` from the address list and puts its slot on the free list.
    pub fn release(&mut self, i: u32) {
        let Node {
            addr_prev,
            addr_next,
            ..
        } = self.nodes[i as usize];
        if addr_prev != NIL {
            self.nodes[addr_prev as usize].addr_next = addr_next;
        }
        if addr_next != NIL {
            self.nodes[addr_next as usize].addr_prev = addr_prev;
        }
        let n = &mut self.nodes[i as usize];
        n.state = State::Vacant;
        // A reused slot must not match a stale fence-queue entry.
        n.tag = n.tag.wrapping_add(1);
        self.vacant.push(i);
    }

    /// Links `new` into the address list right before `at`.
    pub fn link_before(&mut self, new: u32, at: u32) {
        let prev = self.nodes[at as usize].addr_prev;
        self.nodes[new as usize].addr_prev = prev;
        self.nodes[new as usize].addr_next = at;
        self.nodes[at as usize].addr_prev = new;
        if prev != NIL {
            self.nodes[prev as usize].addr_next = new;
        }
    }

    /// Links `new` into the address list right after `at`.
    pub fn link_after(&mut self, new: u32, at: u32) {
        let next = self.nodes[at as usize].addr_next;
        self.nodes[new as usize].addr_next = next;
        self.nodes[new as usize].addr_prev = at;
        self.nodes[at as usize].addr_next = new;
        if next != NIL {
            self.nodes[next as usize].addr_prev = new;
        }
    }

    pub fn live_count(&self) -> usize {
        self.nodes.len() - self.vacant.len()
    }
}

impl std::ops::Index<u32> for Slab {
    type Output = Node;
    fn index(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }
}

impl std::ops::IndexMut<u32> for Slab {
    fn index_mut(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[i as usize]
    }
}
