//! One test per rule of the GPU address heap (issue 5): direction, no-cross, fixed addresses,
//! bad frees, the full 64-bit range, deferred frees and re-imports, threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use msm_winsys::iova::{AllocFlags, Fence, FenceWait, Timelines, VaError, VaHeap};
use msm_winsys::Errno;
use msm_winsys::ErrnoError;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const PAGE: u64 = 4 * KIB;

/// Seqno `seqno` of submitqueue `queue_id`.
fn queue(queue_id: u32, seqno: u32) -> Fence {
    Fence::Queue { queue_id, seqno }
}

/// Sets up two 4 MiB allocations at 0 and 4 MiB in a 64 MiB heap, the first freed after queue 3's
/// seqno 10; returns the heap and the second allocation.
fn heap_with_deferred_at_0() -> (VaHeap, u64) {
    let h = VaHeap::new(0, 64 * MIB).unwrap();
    let a = h.alloc(4 * MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    let b = h.alloc(4 * MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    assert_eq!((a, b), (0, 4 * MIB));
    h.free_after(a, 4 * MIB, queue(3, 10), None).unwrap();
    (h, b)
}

fn ok(h: &VaHeap) {
    h.check_invariants().unwrap();
}

#[test]
fn top_down_no_cross_never_crosses_4mib() {
    let h = VaHeap::new(MIB, 8 * MIB).unwrap();
    let a = h
        .alloc(3 * MIB, PAGE, AllocFlags::TOP_DOWN.no_cross(22))
        .unwrap();
    assert_eq!(
        a,
        5 * MIB,
        "highest start in [1 MiB, 9 MiB) whose range stays below 8 MiB"
    );
    assert_eq!(a / (4 * MIB), (a + 3 * MIB - 1) / (4 * MIB));
    ok(&h);
}

#[test]
fn hole_4_to_9_mib_no_cross_gives_5_to_8() {
    let h = VaHeap::new(4 * MIB, 5 * MIB).unwrap();
    assert_eq!(
        h.alloc(3 * MIB, PAGE, AllocFlags::TOP_DOWN.no_cross(22)),
        Ok(5 * MIB)
    );
    ok(&h);
}

#[test]
fn bottom_up_no_cross_moves_start_to_next_boundary() {
    let h = VaHeap::new(2 * MIB, 7 * MIB).unwrap();
    assert_eq!(
        h.alloc(3 * MIB, PAGE, AllocFlags::BOTTOM_UP.no_cross(22)),
        Ok(4 * MIB)
    );
    ok(&h);
}

#[test]
fn no_cross_that_can_never_hold_the_size_is_einval() {
    let h = VaHeap::new(0, GIB).unwrap();
    let e = h
        .alloc(5 * MIB, PAGE, AllocFlags::BOTTOM_UP.no_cross(22))
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert_eq!(h.free_size(), GIB);
}

#[test]
fn top_down_takes_the_top_and_bottom_up_the_bottom() {
    let h = VaHeap::new(GIB, 4 * GIB).unwrap();
    assert_eq!(h.alloc(MIB, PAGE, AllocFlags::TOP_DOWN), Ok(5 * GIB - MIB));
    assert_eq!(h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP), Ok(GIB));
    assert_eq!(
        h.alloc(MIB, PAGE, AllocFlags::TOP_DOWN),
        Ok(5 * GIB - 2 * MIB)
    );
    ok(&h);
}

#[test]
fn any_power_of_two_alignment_is_honoured() {
    let h = VaHeap::new(PAGE, (1 << 50) - PAGE).unwrap();
    for shift in [0u32, 12, 13, 20, 32, 40, 48] {
        let align = 1u64 << shift;
        let a = h.alloc(3 * PAGE, align, AllocFlags::BOTTOM_UP).unwrap();
        assert_eq!(a % align.max(PAGE), 0, "align 2^{shift}");
        let b = h.alloc(3 * PAGE, align, AllocFlags::TOP_DOWN).unwrap();
        assert_eq!(b % align.max(PAGE), 0, "align 2^{shift} top-down");
    }
    ok(&h);
    assert_eq!(
        h.alloc(PAGE, 3 * PAGE, AllocFlags::BOTTOM_UP)
            .unwrap_err()
            .errno(),
        Errno::EINVAL
    );
    assert_eq!(
        h.alloc(PAGE, 0, AllocFlags::BOTTOM_UP).unwrap_err().errno(),
        Errno::EINVAL
    );
}

#[test]
fn fixed_address_taken_is_distinct_from_no_space() {
    let h = VaHeap::new(GIB, GIB).unwrap();
    h.alloc_addr(GIB + 16 * MIB, MIB).unwrap();
    let taken = h.alloc_addr(GIB + 16 * MIB + 512 * KIB, MIB).unwrap_err();
    assert!(matches!(taken, VaError::AddressTaken { .. }));
    assert_eq!(taken.errno(), Errno::EEXIST);
    let full = h.alloc(2 * GIB, PAGE, AllocFlags::BOTTOM_UP).unwrap_err();
    assert!(matches!(full, VaError::NoSpace { .. }));
    assert_eq!(full.errno(), Errno::ENOSPC);
    // Outside the heap or misaligned is a bad argument, not "taken".
    assert_eq!(h.alloc_addr(0, MIB).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        h.alloc_addr(GIB + 1, MIB).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(h.free_size(), GIB - MIB);
    ok(&h);
}

#[test]
fn fixed_address_carves_any_part_of_a_hole() {
    let h = VaHeap::new(0, 64 * MIB).unwrap();
    h.alloc_addr(8 * MIB, MIB).unwrap(); // middle
    h.alloc_addr(0, MIB).unwrap(); // bottom edge
    h.alloc_addr(63 * MIB, MIB).unwrap(); // top edge
    h.alloc_addr(MIB, 7 * MIB).unwrap(); // exactly a whole hole
    assert_eq!(h.holes(), vec![(9 * MIB, 54 * MIB)]);
    ok(&h);
}

#[test]
fn double_free_is_error_and_changes_nothing() {
    let h = VaHeap::new(0, GIB).unwrap();
    let a = h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    let b = h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    h.free(a, MIB).unwrap();
    let before = (h.holes(), h.free_size());
    let e = h.free(a, MIB).unwrap_err();
    assert!(matches!(e, VaError::NotAllocated { .. }));
    assert_eq!(e.errno(), Errno::ENOENT);
    assert_eq!((h.holes(), h.free_size()), before);
    h.free(b, MIB).unwrap();
    assert_eq!(h.holes(), vec![(0, GIB)]);
    ok(&h);
}

#[test]
fn free_of_a_range_not_allocated_as_such_is_error_and_changes_nothing() {
    let h = VaHeap::new(0, GIB).unwrap();
    let a = h.alloc(2 * MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    for (addr, size) in [
        (a, MIB),
        (a + MIB, MIB),
        (a + 1, 2 * MIB),
        (GIB * 2, MIB),
        (a, 0),
        (a + 2 * MIB, PAGE),
    ] {
        assert_eq!(
            h.free(addr, size).unwrap_err().errno(),
            Errno::ENOENT,
            "free({addr:#x}, {size:#x})"
        );
    }
    assert_eq!(h.free_size(), GIB - 2 * MIB);
    h.free(a, 2 * MIB).unwrap();
    ok(&h);
}

#[test]
fn sizes_round_up_to_the_page_and_free_takes_the_same_size() {
    let h = VaHeap::new(0, MIB).unwrap();
    let a = h.alloc(100, 1, AllocFlags::BOTTOM_UP).unwrap();
    assert_eq!(h.free_size(), MIB - PAGE);
    h.free(a, 100).unwrap();
    assert_eq!(h.free_size(), MIB);
}

#[test]
fn full_range_heap_4096_to_2_pow_64() {
    let h = VaHeap::new(4096, 0u64.wrapping_sub(4096)).unwrap();
    assert_eq!(h.free_size(), u64::MAX - 4095);
    let top = h.alloc(GIB, GIB, AllocFlags::TOP_DOWN).unwrap();
    assert_eq!(top, 0u64.wrapping_sub(GIB));
    assert_eq!(h.alloc(4096, 4096, AllocFlags::BOTTOM_UP), Ok(4096));
    let huge = h.alloc(1 << 62, 1 << 62, AllocFlags::BOTTOM_UP).unwrap();
    assert_eq!(huge, 1 << 62);
    h.alloc_addr(0u64.wrapping_sub(2 * GIB), GIB).unwrap();
    assert!(matches!(
        h.alloc_addr(0u64.wrapping_sub(GIB), 4096),
        Err(VaError::AddressTaken { .. })
    ));
    ok(&h);
    h.free(top, GIB).unwrap();
    h.free(huge, 1 << 62).unwrap();
    h.free(4096, 4096).unwrap();
    h.free(0u64.wrapping_sub(2 * GIB), GIB).unwrap();
    assert_eq!(h.holes(), vec![(4096, 0u64.wrapping_sub(4096))]);
    assert!(
        VaHeap::new(8192, 0u64.wrapping_sub(4096)).is_err(),
        "past 2^64"
    );
}

#[test]
fn never_fails_while_a_hole_fits_even_in_the_same_size_class() {
    // Holes of 17 pages share a size class with 16-page ones: a TLSF's rounded search skips them.
    let h = VaHeap::new(0, 64 * PAGE).unwrap();
    h.alloc_addr(17 * PAGE, 47 * PAGE).unwrap();
    assert_eq!(h.alloc(17 * PAGE, PAGE, AllocFlags::BOTTOM_UP), Ok(0));
    // An exactly aligned hole is found though it is smaller than size + align - 1.
    let h = VaHeap::new(0, 8 * MIB).unwrap();
    h.alloc_addr(0, 2 * MIB).unwrap();
    h.alloc_addr(4 * MIB, 4 * MIB).unwrap();
    assert_eq!(h.alloc(2 * MIB, 2 * MIB, AllocFlags::TOP_DOWN), Ok(2 * MIB));
    ok(&h);
}

#[test]
fn fill_leaves_no_holes_and_freeing_all_restores_the_first_hole() {
    let h = VaHeap::new(GIB, 64 * MIB).unwrap();
    let mut live = Vec::new();
    let mut size = PAGE;
    while let Ok(a) = h.alloc(size, PAGE, AllocFlags::BOTTOM_UP) {
        live.push((a, size));
        size = if size >= 4 * MIB { PAGE } else { size * 3 };
    }
    while let Ok(a) = h.alloc(PAGE, PAGE, AllocFlags::TOP_DOWN) {
        live.push((a, PAGE));
    }
    assert_eq!(h.free_size(), 0);
    assert!(h.holes().is_empty());
    for (i, &(a, s)) in live.iter().enumerate().rev().filter(|(i, _)| i % 2 == 0) {
        let _ = i;
        h.free(a, s).unwrap();
    }
    for (a, s) in live.iter().skip(1).step_by(2) {
        h.free(*a, *s).unwrap();
    }
    assert_eq!(h.holes(), vec![(GIB, 64 * MIB)]);
    ok(&h);
}

#[test]
fn deferred_free_is_not_reused_until_its_queue_fence_signals() {
    let h = VaHeap::new(0, 2 * MIB).unwrap();
    let a = h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    let b = h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    h.free_after(a, MIB, queue(1, 7), None).unwrap();
    assert_eq!(h.free_size(), 0);
    assert_eq!(h.deferred_size(), MIB);
    assert_eq!(
        h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP)
            .unwrap_err()
            .errno(),
        Errno::ENOSPC
    );
    h.timelines().signal_queue(1, 6);
    assert!(h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).is_err());
    h.timelines().signal_queue(2, 7); // another queue
    assert!(h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).is_err());
    h.timelines().signal_queue(1, 7);
    assert_eq!(h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP), Ok(a));
    h.free(a, MIB).unwrap();
    h.free(b, MIB).unwrap();
    assert_eq!(h.holes(), vec![(0, 2 * MIB)]);
    ok(&h);
}

#[test]
fn deferred_free_compares_queue_seqnos_across_the_wrap() {
    let h = VaHeap::new(0, MIB).unwrap();
    h.timelines().signal_queue(1, u32::MAX - 1);
    let a = h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    h.free_after(a, MIB, queue(1, 2), None).unwrap(); // after the wrap
    h.timelines().signal_queue(1, u32::MAX);
    h.reclaim();
    assert_eq!(h.free_size(), 0);
    h.timelines().signal_queue(1, 2);
    h.reclaim();
    assert_eq!(h.free_size(), MIB);
    // A fence already signalled frees at once.
    let a = h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    h.free_after(a, MIB, queue(1, u32::MAX - 3), None).unwrap();
    assert_eq!(h.free_size(), MIB);
}

#[test]
fn deferred_free_on_a_syncobj_point() {
    let h = VaHeap::new(0, MIB).unwrap();
    let a = h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    h.free_after(
        a,
        MIB,
        Fence::Syncobj {
            handle: 9,
            point: 3,
        },
        None,
    )
    .unwrap();
    h.timelines().signal_syncobj(9, 2);
    h.reclaim();
    assert_eq!(h.free_size(), 0);
    h.timelines().signal_syncobj(9, 3);
    h.reclaim();
    assert_eq!(h.free_size(), MIB);
}

#[test]
fn deferred_free_of_a_range_not_allocated_is_error_and_changes_nothing() {
    let h = VaHeap::new(0, 4 * MIB).unwrap();
    let f = queue(0, 1);
    assert_eq!(
        h.free_after(0, MIB, f, None).unwrap_err().errno(),
        Errno::ENOENT
    );
    let a = h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    h.free_after(a, MIB, f, None).unwrap();
    assert_eq!(
        h.free_after(a, MIB, f, None).unwrap_err().errno(),
        Errno::ENOENT,
        "twice"
    );
    assert_eq!(
        h.free(a, MIB).unwrap_err().errno(),
        Errno::ENOENT,
        "free after free_after"
    );
    assert_eq!((h.free_size(), h.deferred_size()), (3 * MIB, MIB));
    ok(&h);
}

#[test]
fn reimported_dmabuf_gets_its_deferred_address_back() {
    let h = VaHeap::new(0, GIB).unwrap();
    let key = 0xdead_beef;
    let a = h
        .alloc_keyed(key, 8 * MIB, PAGE, AllocFlags::BOTTOM_UP)
        .unwrap();
    let _other = h.alloc(MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    h.free_after(a, 8 * MIB, queue(0, 5), Some(key)).unwrap();
    assert_eq!(
        h.alloc_keyed(key, 8 * MIB, PAGE, AllocFlags::BOTTOM_UP),
        Ok(a)
    );
    assert_eq!(h.deferred_size(), 0);
    // Its old fence signalling later must not free the revived range.
    h.timelines().signal_queue(0, 5);
    h.reclaim();
    assert_eq!(h.free_size(), GIB - 9 * MIB);
    h.free(a, 8 * MIB).unwrap();
    // Another key, or a different size, does not take a deferred range.
    let b = h.alloc(8 * MIB, PAGE, AllocFlags::BOTTOM_UP).unwrap();
    h.free_after(b, 8 * MIB, queue(0, 6), Some(1)).unwrap();
    assert_ne!(
        h.alloc_keyed(2, 8 * MIB, PAGE, AllocFlags::BOTTOM_UP),
        Ok(b)
    );
    assert_ne!(
        h.alloc_keyed(1, 4 * MIB, PAGE, AllocFlags::BOTTOM_UP),
        Ok(b)
    );
    ok(&h);
}

struct CountingWaiter {
    timelines: Arc<Timelines>,
    calls: AtomicUsize,
    signals: bool,
}

impl FenceWait for CountingWaiter {
    fn wait(&self, fence: Fence, _timeout: Duration) -> Result<(), Errno> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.signals {
            return Err(Errno::ETIMEDOUT);
        }
        if let Fence::Queue { queue_id, seqno } = fence {
            self.timelines.signal_queue(queue_id, seqno);
        }
        Ok(())
    }
}

#[test]
fn fixed_address_blocked_only_by_deferred_frees_is_ebusy_and_can_wait() {
    let (h, b) = heap_with_deferred_at_0();
    let a = 0;
    h.free_after(b, 4 * MIB, queue(4, 20), None).unwrap();
    // Spans both deferred ranges and part of the hole above them.
    let e = h.alloc_addr(a + MIB, 8 * MIB).unwrap_err();
    assert_eq!(e.errno(), Errno::EBUSY);
    let VaError::AddressDeferred { fences, .. } = e else {
        panic!()
    };
    assert_eq!(fences.len(), 2);

    let never = CountingWaiter {
        timelines: h.timelines().clone(),
        calls: 0.into(),
        signals: false,
    };
    let e = h
        .alloc_addr_wait(a + MIB, 8 * MIB, &never, Duration::from_millis(10))
        .unwrap_err();
    assert_eq!(e.errno(), Errno::ETIMEDOUT);
    assert_eq!(
        h.deferred_size(),
        8 * MIB,
        "a timed-out wait changes nothing"
    );

    let waiter = CountingWaiter {
        timelines: h.timelines().clone(),
        calls: 0.into(),
        signals: true,
    };
    // No deadline at all (Duration::MAX once overflowed the clock and panicked).
    h.alloc_addr_wait(a + MIB, 8 * MIB, &waiter, Duration::MAX)
        .unwrap();
    assert_eq!(waiter.calls.load(Ordering::SeqCst), 2);
    assert_eq!(h.holes(), vec![(0, MIB), (9 * MIB, 55 * MIB)]);
    ok(&h);
}

#[test]
fn fixed_address_blocked_by_a_live_range_is_taken_even_next_to_deferred_ones() {
    let (h, _b) = heap_with_deferred_at_0();
    let a = 0;
    assert_eq!(h.alloc_addr(a, 8 * MIB).unwrap_err().errno(), Errno::EEXIST);
}

#[test]
fn errors_map_to_errnos_a_c_caller_can_tell_apart() {
    let errs = [
        VaError::InvalidArgument(String::new()).errno(),
        VaError::NoSpace {
            size_B: 0,
            align_B: 0,
        }
        .errno(),
        VaError::AddressTaken { iova: 0, size_B: 0 }.errno(),
        VaError::AddressDeferred {
            iova: 0,
            size_B: 0,
            fences: vec![],
        }
        .errno(),
        VaError::NotAllocated { iova: 0, size_B: 0 }.errno(),
        VaError::TimedOut { iova: 0, size_B: 0 }.errno(),
    ];
    assert_eq!(
        errs,
        [
            Errno::EINVAL,
            Errno::ENOSPC,
            Errno::EEXIST,
            Errno::EBUSY,
            Errno::ENOENT,
            Errno::ETIMEDOUT
        ]
    );
}

#[test]
fn bad_flags_and_heap_ranges_are_einval() {
    assert!(AllocFlags::from_bits(2).is_err());
    assert!(AllocFlags::from_bits(64 << 8).is_err());
    assert_eq!(
        AllocFlags::from_bits(1 | (32 << 8)).unwrap(),
        AllocFlags::TOP_DOWN.no_cross(32)
    );
    for (start, size) in [(0, 0), (1, PAGE), (0, PAGE + 1)] {
        assert_eq!(
            VaHeap::new(start, size).err().unwrap().errno(),
            Errno::EINVAL
        );
    }
}

#[test]
fn two_threads_allocate_and_free_at_once() {
    let h = Arc::new(VaHeap::new(GIB, 64 * GIB).unwrap());
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                let mut live = Vec::new();
                for i in 0..20_000u64 {
                    let size = PAGE << (i % 7);
                    let flags = if t == 0 {
                        AllocFlags::BOTTOM_UP
                    } else {
                        AllocFlags::TOP_DOWN
                    };
                    live.push((h.alloc(size, PAGE << (i % 3), flags).unwrap(), size));
                    if i % 3 == 0 {
                        let (a, s) = live.swap_remove((i as usize * 7) % live.len());
                        h.free(a, s).unwrap();
                    }
                }
                live
            })
        })
        .collect();
    let mut all: Vec<(u64, u64)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    for w in all.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "overlap {:x?}", w);
    }
    ok(&h);
    for (a, s) in all {
        h.free(a, s).unwrap();
    }
    assert_eq!(h.holes(), vec![(GIB, 64 * GIB)]);
}

fn arena_heap(start: u64, size: u64, arenas: usize) -> VaHeap {
    VaHeap::with_options(start, size, PAGE, Arc::new(Timelines::new()), arenas).unwrap()
}

#[test]
fn a_request_only_the_whole_heap_holds_spans_every_arena() {
    let h = arena_heap(MIB, 16 * PAGE, 4);
    assert_eq!(h.arena_count(), 4);
    assert_eq!(h.alloc(16 * PAGE, PAGE, AllocFlags::BOTTOM_UP), Ok(MIB));
    assert!(h.holes().is_empty());
    ok(&h);
    h.free(MIB, 16 * PAGE).unwrap();
    assert_eq!(h.holes(), vec![(MIB, 16 * PAGE)]);
    ok(&h);
    // The same top-down, and a fixed range across three arenas.
    assert_eq!(h.alloc(16 * PAGE, PAGE, AllocFlags::TOP_DOWN), Ok(MIB));
    h.free(MIB, 16 * PAGE).unwrap();
    h.alloc_addr(MIB + 3 * PAGE, 10 * PAGE).unwrap();
    assert_eq!(
        h.holes(),
        vec![(MIB, 3 * PAGE), (MIB + 13 * PAGE, 3 * PAGE)]
    );
    ok(&h);
}

#[test]
fn single_threaded_placement_does_not_depend_on_the_arenas() {
    // First fit over the whole heap, whatever the split: the same addresses with 1 and 4 arenas.
    let one = arena_heap(0, 256 * PAGE, 1);
    let four = arena_heap(0, 256 * PAGE, 4);
    let mut live = Vec::new();
    let mut x = 99u64;
    for i in 0..4000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if i % 3 == 2 && !live.is_empty() {
            let (a, s) = live.swap_remove((x % live.len() as u64) as usize);
            one.free(a, s).unwrap();
            four.free(a, s).unwrap();
            continue;
        }
        let size = PAGE * (1 + x % 24);
        let align = PAGE << (x % 4);
        let flags = if x % 5 == 0 {
            AllocFlags::TOP_DOWN
        } else {
            AllocFlags::BOTTOM_UP
        };
        let (a, b) = (
            one.alloc(size, align, flags),
            four.alloc(size, align, flags),
        );
        assert_eq!(a, b, "request {i}");
        if let Ok(a) = a {
            live.push((a, size));
        }
    }
    ok(&one);
    ok(&four);
    assert_eq!(one.holes(), four.holes());
}

#[test]
fn fixed_range_across_arenas_reports_what_is_in_the_way() {
    let h = arena_heap(0, 64 * PAGE, 2);
    // A live page in arena 1 and a deferred one in arena 0, both inside the fixed range.
    h.alloc_addr(40 * PAGE, PAGE).unwrap();
    assert!(matches!(
        h.alloc_addr(30 * PAGE, 20 * PAGE),
        Err(VaError::AddressTaken { .. })
    ));
    h.free(40 * PAGE, PAGE).unwrap();
    h.alloc_addr(20 * PAGE, PAGE).unwrap();
    h.free_after(20 * PAGE, PAGE, queue(1, 5), None).unwrap();
    match h.alloc_addr(10 * PAGE, 40 * PAGE) {
        Err(VaError::AddressDeferred { fences, .. }) => assert_eq!(fences, vec![queue(1, 5)]),
        other => panic!("{other:?}"),
    }
    ok(&h);
    h.timelines().signal_queue(1, 5);
    h.alloc_addr(10 * PAGE, 40 * PAGE).unwrap();
    ok(&h);
    assert_eq!(h.holes(), vec![(0, 10 * PAGE), (50 * PAGE, 14 * PAGE)]);
}

#[test]
fn threads_free_each_others_allocations_in_a_nearly_full_heap() {
    // Two threads, each in its own arena, allocating until the heap is full and freeing what the
    // other made: routing, cross-arena frees and boundary moves under contention.
    let h = Arc::new(arena_heap(0, 4096 * PAGE, 2));
    let shared = Arc::new(std::sync::Mutex::new(Vec::<(u64, u64)>::new()));
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let (h, shared) = (h.clone(), shared.clone());
            std::thread::spawn(move || {
                let mut x = 7 + t;
                for _ in 0..20_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let size = PAGE * (1 + x % 64);
                    match h.alloc(size, PAGE, AllocFlags::BOTTOM_UP) {
                        Ok(a) => shared.lock().unwrap().push((a, size)),
                        Err(VaError::NoSpace { .. }) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                    let victim = {
                        let mut s = shared.lock().unwrap();
                        (x % 2 == 0 && !s.is_empty()).then(|| {
                            let i = (x as usize / 2) % s.len();
                            s.swap_remove(i)
                        })
                    };
                    if let Some((a, s)) = victim {
                        h.free(a, s).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    ok(&h);
    let mut all = shared.lock().unwrap().clone();
    all.sort();
    for w in all.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "overlap {:x?}", w);
    }
    for (a, s) in all {
        h.free(a, s).unwrap();
    }
    assert_eq!(h.holes(), vec![(0, 4096 * PAGE)]);
    ok(&h);
}

#[test]
fn largest_hole_joins_holes_cut_by_arena_boundaries_and_counts_signalled_frees() {
    let h = arena_heap(0, 64 * PAGE, 4);
    assert_eq!(h.largest_hole(), 64 * PAGE);
    h.alloc_addr(10 * PAGE, PAGE).unwrap();
    h.alloc_addr(50 * PAGE, PAGE).unwrap();
    // [11, 50) spans two boundaries (16 and 32, 48 pages).
    assert_eq!(h.largest_hole(), 39 * PAGE);
    h.free_after(50 * PAGE, PAGE, queue(2, 7), None).unwrap();
    assert_eq!(h.largest_hole(), 39 * PAGE);
    h.timelines().signal_queue(2, 7);
    // No reclaim call in between: the query reclaims.
    assert_eq!(h.largest_hole(), 53 * PAGE);
    assert_eq!(h.try_largest_hole(), Some(53 * PAGE));
    ok(&h);
}
