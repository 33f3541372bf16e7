//! The live map: first unit of every live allocation -> its node, so a free is checked and found
//! in O(1).
//!
//! Owns: one open-addressing table. Takes no locks; it lives inside the heap's mutex.
//!
//! Why not `HashMap`: a free is usually a cache miss on the table. Here key and value share one
//! 16-byte slot (linear probing, at most half full, Fibonacci hashing, backward-shift deletion so
//! there are no tombstones), so a lookup usually touches one cache line instead of hashbrown's
//! control byte line plus bucket line.

const EMPTY: u64 = u64::MAX; // unit addresses are below 2^63, so never a key

#[derive(Clone, Copy)]
struct Slot {
    key: u64,
    node: u32,
}

pub(crate) struct LiveMap {
    slots: Vec<Slot>,
    len: usize,
    /// `64 - log2(slots.len())`: the hash is the top bits of a Fibonacci product.
    shift: u32,
}

impl Default for LiveMap {
    fn default() -> Self {
        LiveMap::with_log2_capacity(6)
    }
}

impl LiveMap {
    fn with_log2_capacity(bits: u32) -> LiveMap {
        LiveMap {
            slots: vec![
                Slot {
                    key: EMPTY,
                    node: 0
                };
                1 << bits
            ],
            len: 0,
            shift: 64 - bits,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn find(&self, key: u64) -> usize {
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].key;
            if k == key || k == EMPTY {
                return i;
            }
            i = (i + 1) & self.mask();
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, key: u64) -> Option<u32> {
        let s = self.slots[self.find(key)];
        (s.key == key).then_some(s.node)
    }

    /// Inserts or replaces.
    pub fn insert(&mut self, key: u64, node: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let i = self.find(key);
        if self.slots[i].key == EMPTY {
            self.len += 1;
        }
        self.slots[i] = Slot { key, node };
    }

    pub fn remove(&mut self, key: u64) -> Option<u32> {
        let mut hole = self.find(key);
        if self.slots[hole].key != key {
            return None;
        }
        let node = self.slots[hole].node;
        self.len -= 1;
        // Backward shift: pull later entries of the probe run into the hole when their home
        // position allows it, so lookups never need tombstones.
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let k = self.slots[j].key;
            if k == EMPTY {
                break;
            }
            let from_home = j.wrapping_sub(self.home(k)) & mask;
            let from_hole = j.wrapping_sub(hole) & mask;
            if from_home >= from_hole {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole].key = EMPTY;
        Some(node)
    }

    fn grow(&mut self) {
        let bits = 64 - self.shift + 1;
        let old = std::mem::replace(self, LiveMap::with_log2_capacity(bits));
        for s in old.slots.into_iter().filter(|s| s.key != EMPTY) {
            let i = self.find(s.key);
            self.slots[i] = s;
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn matches_a_hash_map_through_growth_and_removals() {
        let mut m = LiveMap::default();
        let mut r: HashMap<u64, u32> = HashMap::new();
        let mut x = 12345u64;
        for i in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 3000; // many collisions and re-inserts
            if i % 3 == 0 {
                assert_eq!(m.remove(key), r.remove(&key));
            } else {
                m.insert(key, i);
                r.insert(key, i);
            }
            assert_eq!(m.len(), r.len());
        }
        for k in 0..3000 {
            assert_eq!(m.get(k), r.get(&k).copied());
        }
    }
}
