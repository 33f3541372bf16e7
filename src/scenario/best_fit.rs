//! Reference policy for the fragmentation comparison: exact best fit, the smallest hole that holds
//! the request (aligned), the lowest address among holes of that size, placed at the hole's lowest
//! aligned address. Not one of issue 5's baselines: it answers whether a size-ordered policy (the
//! family offset-allocator's size classes approximate) could keep the heap as compact as
//! util_vma_heap's address-ordered first fit.
//!
//! Owns: the holes, by address and by (size, address), in page units. Takes no locks.

use std::collections::{BTreeMap, BTreeSet};

pub struct BestFit {
    by_start: BTreeMap<u64, u64>,
    by_size: BTreeSet<(u64, u64)>,
}

impl BestFit {
    /// A heap over `[start, start + pages)`, in pages.
    pub fn new(start: u64, pages: u64) -> BestFit {
        let mut h = BestFit {
            by_start: BTreeMap::new(),
            by_size: BTreeSet::new(),
        };
        h.add(start, pages);
        h
    }

    fn add(&mut self, start: u64, pages: u64) {
        self.by_start.insert(start, pages);
        self.by_size.insert((pages, start));
    }

    fn take(&mut self, start: u64, pages: u64) {
        self.by_start.remove(&start);
        self.by_size.remove(&(pages, start));
    }

    /// `align` in pages, a power of two. `None` if no hole holds the request.
    pub fn alloc(&mut self, pages: u64, align: u64) -> Option<u64> {
        let (size, start, at) = self
            .by_size
            .range((pages, 0)..)
            .find_map(|&(size, start)| {
                let at = start.checked_next_multiple_of(align)?;
                (at.checked_add(pages)? <= start + size).then_some((size, start, at))
            })?;
        self.take(start, size);
        if at > start {
            self.add(start, at - start);
        }
        if at + pages < start + size {
            self.add(at + pages, start + size - (at + pages));
        }
        Some(at)
    }

    /// Frees a range `alloc` returned, merging it with the holes beside it.
    pub fn free(&mut self, start: u64, pages: u64) {
        let (mut lo, mut hi) = (start, start + pages);
        if let Some((&s, &n)) = self.by_start.range(..start).next_back() {
            if s + n == start {
                self.take(s, n);
                lo = s;
            }
        }
        if let Some(&n) = self.by_start.get(&hi) {
            self.take(hi, n);
            hi += n;
        }
        self.add(lo, hi - lo);
    }

    pub fn largest_hole_pages(&self) -> u64 {
        self.by_size.last().map_or(0, |&(size, _)| size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_smallest_hole_that_holds_the_aligned_request() {
        let mut h = BestFit::new(0, 100);
        let a = h.alloc(10, 1).unwrap();
        let b = h.alloc(3, 1).unwrap();
        let c = h.alloc(20, 1).unwrap();
        let d = h.alloc(4, 1).unwrap();
        assert_eq!((a, b, c, d), (0, 10, 13, 33));
        h.free(a, 10);
        h.free(c, 20);
        // Holes [0, 10), [13, 33), [37, 100): 8 pages go to the 10-page hole, 12 to the 20-page one.
        assert_eq!(h.alloc(8, 1), Some(0));
        assert_eq!(h.alloc(12, 1), Some(13));
        // 6 pages at 8-page alignment: [25, 33) cannot hold it aligned ([32, 38) crosses its end).
        assert_eq!(h.alloc(6, 8), Some(40));
        h.free(40, 6);
        h.free(0, 8);
        h.free(13, 12);
        h.free(b, 3);
        h.free(d, 4);
        assert_eq!(h.largest_hole_pages(), 100);
        assert_eq!(h.by_start.len(), 1);
    }
}
