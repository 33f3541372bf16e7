//! [`VaHeap`]: the thread-safe, byte-addressed face of the allocator.
//!
//! Owns: argument checking and byte <-> granule-unit conversion. Locks: those of its [`Arenas`]
//! (see `arenas.rs` for their order); none is held while waiting for a fence ([`FenceWait`] is
//! called with no lock held).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::arenas::{Arenas, MAX_ARENAS};
use super::error::VaError;
use super::fence::{Fence, FenceWait, Timelines};
use super::place::Request;
use super::state::FixedMiss;
use crate::Errno;

/// Per-call placement options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocFlags {
    /// Place at the top of the chosen hole, preferring the largest holes (see the module docs).
    pub top_down: bool,
    /// Never cross a multiple of `1 << shift` bytes (1..=63); `None` for no such rule.
    pub no_cross_shift: Option<u8>,
}

impl AllocFlags {
    pub const BOTTOM_UP: AllocFlags = AllocFlags {
        top_down: false,
        no_cross_shift: None,
    };
    pub const TOP_DOWN: AllocFlags = AllocFlags {
        top_down: true,
        no_cross_shift: None,
    };

    /// The same flags with the no-cross rule at `1 << shift` bytes.
    pub const fn no_cross(self, shift: u8) -> AllocFlags {
        AllocFlags {
            no_cross_shift: Some(shift),
            ..self
        }
    }

    /// Bit 0 = top-down; bits 8..15 = no-cross shift (0 = none). Other bits are `EINVAL`.
    pub fn from_bits(bits: u32) -> Result<AllocFlags, VaError> {
        if bits & !0xff01 != 0 {
            return Err(VaError::InvalidArgument(format!(
                "unknown allocation flag bits {:#x}",
                bits & !0xff01
            )));
        }
        let shift = (bits >> 8) as u8;
        if shift > 63 {
            return Err(VaError::InvalidArgument(format!(
                "no-cross shift {shift} is above 63"
            )));
        }
        Ok(AllocFlags {
            top_down: bits & 1 != 0,
            no_cross_shift: (shift != 0).then_some(shift),
        })
    }
}

/// The default granule: 4 KiB pages.
pub const PAGE_B: u64 = 4096;

/// A GPU address range allocator over any range of the 64-bit space. `Send + Sync`.
pub struct VaHeap {
    arenas: Arenas,
    timelines: Arc<Timelines>,
    granule_shift: u32,
    start_B: u64,
    end_B: u128,
}

impl VaHeap {
    /// A heap over `[start_B, start_B + size_B)` with 4 KiB pages, its own [`Timelines`] and one
    /// arena per CPU (up to 4; see [`Self::with_options`]).
    pub fn new(start_B: u64, size_B: u64) -> Result<VaHeap, VaError> {
        VaHeap::with_options(
            start_B,
            size_B,
            PAGE_B,
            Arc::new(Timelines::new()),
            default_arenas(),
        )
    }

    /// A heap with granule `granule_B` (a power of two, at least 2): every address and size is a
    /// multiple of it, sizes are rounded up to it. `timelines` may be shared with other heaps.
    /// `arenas` (1 to 4) is how many parts the range is split into so that threads allocate in
    /// parallel (see the module docs: threads that never meet get the same placement with any
    /// number; with 1, every call takes the one lock).
    pub fn with_options(
        start_B: u64,
        size_B: u64,
        granule_B: u64,
        timelines: Arc<Timelines>,
        arenas: usize,
    ) -> Result<VaHeap, VaError> {
        let bad = |why: String| Err(VaError::InvalidArgument(why));
        if granule_B < 2 || !granule_B.is_power_of_two() {
            return bad(format!(
                "granule {granule_B:#x} is not a power of two of at least 2"
            ));
        }
        if size_B == 0 || start_B % granule_B != 0 || size_B % granule_B != 0 {
            return bad(format!(
                "heap [{start_B:#x}, +{size_B:#x}) is empty or not a multiple of the {granule_B:#x}-byte granule"
            ));
        }
        let end_B = start_B as u128 + size_B as u128;
        if end_B > 1u128 << 64 {
            return bad(format!("heap [{start_B:#x}, +{size_B:#x}) goes past 2^64"));
        }
        let shift = granule_B.trailing_zeros();
        if !(1..=MAX_ARENAS).contains(&arenas) {
            return bad(format!("{arenas} arenas: 1 to {MAX_ARENAS} are possible"));
        }
        let (start, end) = (start_B >> shift, (end_B >> shift) as u64);
        Ok(VaHeap {
            arenas: Arenas::new(start, end, arenas, &timelines),
            timelines,
            granule_shift: shift,
            start_B,
            end_B,
        })
    }

    fn units(&self, size_B: u64) -> Result<u64, VaError> {
        if size_B == 0 {
            return Err(VaError::InvalidArgument("size is zero".into()));
        }
        let g = self.granule_shift;
        Ok((size_B >> g) + u64::from(size_B & ((1 << g) - 1) != 0))
    }

    fn request(&self, size_B: u64, align_B: u64, flags: AllocFlags) -> Result<Request, VaError> {
        let units = self.units(size_B)?;
        if !align_B.is_power_of_two() {
            return Err(VaError::InvalidArgument(format!(
                "alignment {align_B:#x} is not a power of two"
            )));
        }
        let g = self.granule_shift;
        let no_cross_shift = match flags.no_cross_shift {
            None => None,
            Some(k) => {
                let k = u32::from(k);
                if k > 63 || k < g || units > 1u64 << (k - g) {
                    return Err(VaError::InvalidArgument(format!(
                        "{size_B:#x} bytes can never avoid crossing a multiple of 2^{k} (granule 2^{g})"
                    )));
                }
                Some(k - g)
            }
        };
        Ok(Request {
            units,
            align: (align_B >> g).max(1),
            no_cross_shift,
            top_down: flags.top_down,
        })
    }

    /// Units of a range the caller says it holds; `None` if it cannot be one of ours.
    fn range_units(&self, iova: u64, size_B: u64) -> Option<(u64, u64)> {
        let units = self.units(size_B).ok()?;
        let g = self.granule_shift;
        let inside = iova >= self.start_B && (iova as u128) + ((units as u128) << g) <= self.end_B;
        (iova & ((1 << g) - 1) == 0 && inside).then_some((iova >> g, units))
    }

    /// Allocates `size_B` bytes (rounded up to the granule) aligned to `align_B` (a power of two).
    /// First fit: the lowest valid address of all holes (top-down: the highest), O(log n); see the
    /// module docs for a heap used from several threads.
    pub fn alloc(&self, size_B: u64, align_B: u64, flags: AllocFlags) -> Result<u64, VaError> {
        let req = self.request(size_B, align_B, flags)?;
        let start = self
            .arenas
            .alloc(&req)
            .ok_or(VaError::NoSpace { size_B, align_B })?;
        Ok(start << self.granule_shift)
    }

    /// As [`Self::alloc`], but first gives back the range last freed with `key` (e.g. a dma-buf's
    /// identity) if it is still waiting on its fence and has this size, alignment and no-cross rule:
    /// a re-imported buffer keeps its address.
    pub fn alloc_keyed(
        &self,
        key: u64,
        size_B: u64,
        align_B: u64,
        flags: AllocFlags,
    ) -> Result<u64, VaError> {
        let req = self.request(size_B, align_B, flags)?;
        let start = self
            .arenas
            .alloc_keyed(key, &req)
            .ok_or(VaError::NoSpace { size_B, align_B })?;
        Ok(start << self.granule_shift)
    }

    /// Allocates exactly `[iova, iova + size_B)` (capture/replay). `AddressTaken` if it overlaps a
    /// live allocation, `AddressDeferred` if it overlaps only ranges still waiting on fences.
    pub fn alloc_addr(&self, iova: u64, size_B: u64) -> Result<(), VaError> {
        let (start, units) = self.range_units(iova, size_B).ok_or_else(|| {
            VaError::InvalidArgument(format!(
                "[{iova:#x}, +{size_B:#x}) is empty, not granule-aligned or outside the heap"
            ))
        })?;
        match self.arenas.alloc_addr(start, units) {
            Ok(()) => Ok(()),
            Err(FixedMiss::Taken) => Err(VaError::AddressTaken { iova, size_B }),
            Err(FixedMiss::Deferred(fences)) => Err(VaError::AddressDeferred {
                iova,
                size_B,
                fences,
            }),
        }
    }

    /// [`Self::alloc_addr`], waiting with `waiter` (no lock held) for the fences of deferred ranges
    /// in the way, for at most `timeout` in total. Each fence that signals is published to the
    /// heap's [`Timelines`].
    pub fn alloc_addr_wait(
        &self,
        iova: u64,
        size_B: u64,
        waiter: &dyn FenceWait,
        timeout: Duration,
    ) -> Result<(), VaError> {
        // A timeout too long to add to the clock (`Duration::MAX`) means no deadline.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let fences = match self.alloc_addr(iova, size_B) {
                Err(VaError::AddressDeferred { fences, .. }) => fences,
                other => return other,
            };
            for fence in fences {
                if self.timelines.is_signalled(fence) {
                    continue;
                }
                let left =
                    deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
                if left.is_zero() {
                    return Err(VaError::TimedOut { iova, size_B });
                }
                match waiter.wait(fence, left) {
                    Ok(()) => self.timelines.signal(fence),
                    Err(Errno::ETIMEDOUT) => return Err(VaError::TimedOut { iova, size_B }),
                    Err(e) => return Err(VaError::Wait(e)),
                }
            }
        }
    }

    /// Frees a live allocation, given as allocated: same address, and a size that rounds to the
    /// same number of granules (the heap keeps sizes in granules). Anything else is
    /// `NotAllocated` and changes nothing. O(log n).
    pub fn free(&self, iova: u64, size_B: u64) -> Result<(), VaError> {
        let (start, units) = self
            .range_units(iova, size_B)
            .ok_or(VaError::NotAllocated { iova, size_B })?;
        self.arenas
            .free(start, units)
            .map_err(|_| VaError::NotAllocated { iova, size_B })
    }

    /// Frees a live allocation once `fence` has signalled (immediately if it already has). Until
    /// then the range is handed out by nothing but [`Self::alloc_keyed`] with the same `key`.
    pub fn free_after(
        &self,
        iova: u64,
        size_B: u64,
        fence: Fence,
        key: Option<u64>,
    ) -> Result<(), VaError> {
        let (start, units) = self
            .range_units(iova, size_B)
            .ok_or(VaError::NotAllocated { iova, size_B })?;
        self.arenas
            .free_after(start, units, fence, key)
            .map_err(|_| VaError::NotAllocated { iova, size_B })
    }

    /// How many arenas the range is split into.
    pub fn arena_count(&self) -> usize {
        self.arenas.count()
    }

    /// The completed-fence book this heap reads; the device publishes to it.
    pub fn timelines(&self) -> &Arc<Timelines> {
        &self.timelines
    }

    /// Bytes in holes (deferred ranges not included). O(arenas).
    pub fn free_size(&self) -> u64 {
        self.arenas.free_units() << self.granule_shift
    }

    /// Bytes waiting on fences. O(arenas).
    pub fn deferred_size(&self) -> u64 {
        self.arenas.deferred_units() << self.granule_shift
    }

    /// Turns ranges whose fences have signalled into holes now (every call does it anyway).
    pub fn reclaim(&self) {
        self.arenas.reclaim()
    }

    /// Holes as `(iova, size_B)` in address order. O(n), takes the lock: for tests and tools.
    pub fn holes(&self) -> Vec<(u64, u64)> {
        self.in_bytes(self.arenas.holes())
    }

    /// Deferred ranges as `(iova, size_B)` in address order. O(n): for tests and tools.
    pub fn deferred_ranges(&self) -> Vec<(u64, u64)> {
        self.in_bytes(self.arenas.deferred_ranges())
    }

    fn in_bytes(&self, ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
        let g = self.granule_shift;
        ranges.into_iter().map(|(s, u)| (s << g, u << g)).collect()
    }

    /// The largest hole in bytes (util_vma_heap_get_max_free_continuous_size), after turning
    /// deferred frees whose fences signalled into holes. O(arenas) plus the reclaim.
    pub fn largest_hole(&self) -> u64 {
        self.arenas.largest_hole() << self.granule_shift
    }

    /// The largest hole in bytes, or `None` when the heap is busy (a debug read: never blocks).
    pub fn try_largest_hole(&self) -> Option<u64> {
        Some(self.arenas.try_largest_hole()? << self.granule_shift)
    }

    /// Checks every structural invariant (for tests). O(n log n).
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let g = self.granule_shift;
        let end = (self.end_B >> g) as u64;
        self.arenas.check(self.start_B >> g, end)
    }
}

/// One arena per CPU, at most [`MAX_ARENAS`].
fn default_arenas() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_ARENAS)
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<VaHeap>();
};

/// Model-checked (`--cfg shuttle`, docs/reliability.md): the deferred-free list against the
/// threads that publish fences, allocate and revive ranges at the same time.
#[cfg(all(test, shuttle))]
mod shuttle_tests {
    use std::sync::Arc;

    use shuttle::thread;

    use super::*;
    use crate::sync::check;

    const PAGES: u64 = 16;

    /// A range freed after a fence, in a heap of two arenas: one thread frees it, one publishes
    /// the fence, one publishes another queue's, one allocates twice and, with `revive`, one
    /// re-imports by the key the range was freed with. In every schedule:
    /// an allocation overlaps the range only once the fence is published (or the key revived
    /// it and gave it back); no two threads hold overlapping ranges; and once everything is
    /// freed the whole heap is one hole with no new publish (the publish was not missed by an
    /// arena that compared generations concurrently), and every invariant holds.
    fn deferred_free_round(revive: bool) {
        let timelines = Arc::new(Timelines::new());
        let heap = Arc::new(
            VaHeap::with_options(0x10_0000, PAGES * PAGE_B, PAGE_B, timelines.clone(), 2).unwrap(),
        );
        let size_B = 2 * PAGE_B;
        let r = heap.alloc(size_B, PAGE_B, AllocFlags::BOTTOM_UP).unwrap();
        let fence = Fence::Queue {
            queue_id: 1,
            seqno: 1,
        };
        let overlaps_r = move |x: u64| x < r + size_B && r < x + size_B;

        let h = heap.clone();
        let key = revive.then_some(7);
        let freer = thread::spawn(move || h.free_after(r, size_B, fence, key).unwrap());
        let t = timelines.clone();
        let publisher = thread::spawn(move || t.signal_queue(1, 1));
        // Another queue's publish: an arena may be mid-reclaim for it when the first one lands.
        let t = timelines.clone();
        let other = thread::spawn(move || t.signal_queue(2, 1));
        let (h, t) = (heap.clone(), timelines.clone());
        let allocator = thread::spawn(move || {
            let mut got = Vec::new();
            for _ in 0..2 {
                let x = h.alloc(size_B, PAGE_B, AllocFlags::BOTTOM_UP).unwrap();
                assert!(
                    !overlaps_r(x) || t.is_signalled(fence),
                    "{x:#x} handed out while its free still waits on {fence:?}"
                );
                got.push(x);
            }
            got
        });
        let h = heap.clone();
        let reimporter = revive.then(|| {
            thread::spawn(move || {
                thread::yield_now();
                h.alloc_keyed(7, size_B, PAGE_B, AllocFlags::BOTTOM_UP)
                    .unwrap()
            })
        });
        freer.join().unwrap();
        publisher.join().unwrap();
        other.join().unwrap();
        let mut held = allocator.join().unwrap();
        held.extend(reimporter.map(|t| t.join().unwrap()));
        held.sort_unstable();
        for w in held.windows(2) {
            assert!(w[0] + size_B <= w[1], "two threads hold {held:x?}");
        }
        for x in held {
            heap.free(x, size_B).unwrap();
        }
        assert_eq!(heap.largest_hole(), PAGES * PAGE_B, "a range was lost");
        assert_eq!(heap.deferred_size(), 0);
        heap.check_invariants().unwrap();
    }

    #[test]
    fn shuttle_deferred_free_against_publishes_and_allocs() {
        let round = || deferred_free_round(false);
        check::pct("deferred free (PCT)", 20_000, 3, round);
        check::dfs_bounded("deferred free (depth first)", 20_000, round);
    }

    #[test]
    fn shuttle_deferred_free_against_publishes_allocs_and_a_revival() {
        let round = || deferred_free_round(true);
        check::pct("deferred free and revival (PCT)", 20_000, 3, round);
        check::dfs_bounded("deferred free and revival (depth first)", 20_000, round);
    }
}
