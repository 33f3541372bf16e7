//! Property tests of the GPU address heap against a reference model: a plain list of holes,
//! live ranges and deferred ranges, searched by brute force.
//!
//! Checked after every step: never `NoSpace` while some hole holds the request; results aligned,
//! inside one hole, not crossing the no-cross boundary, and at the lowest (bottom-up) or highest
//! (top-down) valid start among all holes: address-ordered first fit, what `msm_winsys::iova`
//! promises; fixed-address results (success, taken, deferred) as the model says; holes and free
//! size equal the model's; every structural invariant. At the end: filling with pages leaves no
//! hole, and freeing everything restores the single starting hole. Every case runs on a heap split
//! into 1 to 4 arenas: used from one thread, placement must not depend on the split.

#![allow(non_snake_case)] // unit suffixes: `base_B`

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use msm_winsys::iova::{AllocFlags, Fence, Timelines, VaError, VaHeap};
use proptest::prelude::*;

const PAGE: u64 = 4096;

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        pages: u64,
        align_log: u32,
        top_down: bool,
        no_cross_log: Option<u32>,
        key: Option<u64>,
    },
    AllocAddr {
        page: u64,
        pages: u64,
    },
    Free {
        pick: usize,
    },
    FreeAfter {
        pick: usize,
        queue: u32,
        seqno: u32,
        key: Option<u64>,
    },
    Signal {
        queue: u32,
        seqno: u32,
    },
    BadFree {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..48, 0u32..7, any::<bool>(), prop::option::of(2u32..9), prop::option::of(0u64..4))
            .prop_map(|(pages, align_log, top_down, no_cross_log, key)| Op::Alloc {
                pages, align_log, top_down, no_cross_log, key
            }),
        2 => (0u64..1024, 1u64..32).prop_map(|(page, pages)| Op::AllocAddr { page, pages }),
        4 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        3 => (any::<usize>(), 0u32..2, 1u32..12, prop::option::of(0u64..4))
            .prop_map(|(pick, queue, seqno, key)| Op::FreeAfter { pick, queue, seqno, key }),
        2 => (0u32..2, 0u32..12).prop_map(|(queue, seqno)| Op::Signal { queue, seqno }),
        1 => any::<usize>().prop_map(|pick| Op::BadFree { pick }),
    ]
}

#[derive(Clone, Copy, Debug)]
struct Deferred {
    addr: u128,
    size: u128,
    queue: u32,
    seqno: u32,
}

/// The reference: byte ranges as `u128` so a heap may end at 2^64.
struct Model {
    holes: BTreeMap<u128, u128>,
    live: Vec<(u128, u128)>,
    deferred: Vec<Deferred>,
    keys: HashMap<u64, u128>,
    completed: [u32; 2],
}

impl Model {
    fn add_hole(&mut self, s: u128, e: u128) {
        let (mut s, mut e) = (s, e);
        if let Some((&ps, &pe)) = self.holes.range(..s).next_back() {
            assert!(pe <= s, "model: overlapping free");
            if pe == s {
                self.holes.remove(&ps);
                s = ps;
            }
        }
        if let Some(ne) = self.holes.remove(&e) {
            e = ne;
        }
        self.holes.insert(s, e);
    }

    fn take(&mut self, s: u128, e: u128) {
        let (&hs, &he) = self.holes.range(..=s).next_back().expect("inside a hole");
        assert!(he >= e);
        self.holes.remove(&hs);
        if hs < s {
            self.holes.insert(hs, s);
        }
        if e < he {
            self.holes.insert(e, he);
        }
    }

    fn signal(&mut self) {
        let done = self.completed;
        let (due, wait): (Vec<_>, Vec<_>) = self
            .deferred
            .iter()
            .partition(|d| d.seqno <= done[d.queue as usize]);
        self.deferred = wait;
        for d in due {
            self.keys.retain(|_, a| *a != d.addr);
            self.add_hole(d.addr, d.addr + d.size);
        }
    }

    fn hole_of(&self, s: u128, e: u128) -> Option<(u128, u128)> {
        let (&hs, &he) = self.holes.range(..=s).next_back()?;
        (he >= e).then_some((hs, he))
    }
}

fn valid(c: u128, size: u128, align: u128, no_cross: Option<u32>) -> bool {
    c % align == 0 && no_cross.is_none_or(|k| c >> k == (c + size - 1) >> k)
}

/// Every valid start in hole `[s, e)`, by brute force.
fn starts(s: u128, e: u128, size: u128, align: u128, no_cross: Option<u32>) -> Vec<u128> {
    let mut out = Vec::new();
    let mut c = s.div_ceil(align) * align;
    while c + size <= e {
        if valid(c, size, align, no_cross) {
            out.push(c);
        }
        c += align;
    }
    out
}

fn run(base_B: u64, heap_pages: u64, arenas: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let timelines = Arc::new(Timelines::new());
    let h = VaHeap::with_options(base_B, heap_pages * PAGE, PAGE, timelines, arenas).unwrap();
    let base = base_B as u128;
    let mut m = Model {
        holes: BTreeMap::from([(base, base + (heap_pages * PAGE) as u128)]),
        live: vec![],
        deferred: vec![],
        keys: HashMap::new(),
        completed: [0; 2],
    };
    for op in ops {
        match *op {
            Op::Alloc {
                pages,
                align_log,
                top_down,
                no_cross_log,
                key,
            } => {
                let (size, align) = ((pages * PAGE) as u128, (PAGE << align_log) as u128);
                let no_cross = no_cross_log.map(|l| l + 12);
                let mut flags = if top_down {
                    AllocFlags::TOP_DOWN
                } else {
                    AllocFlags::BOTTOM_UP
                };
                flags.no_cross_shift = no_cross.map(|k| k as u8);
                let got = match key {
                    Some(k) => h.alloc_keyed(k, size as u64, align as u64, flags),
                    None => h.alloc(size as u64, align as u64, flags),
                };
                if no_cross.is_some_and(|k| size > 1 << k) {
                    prop_assert!(matches!(got, Err(VaError::InvalidArgument(_))), "{got:?}");
                    continue;
                }
                // A re-import takes its deferred range back when it still waits and matches.
                let revived = key.and_then(|k| m.keys.remove(&k)).and_then(|a| {
                    let i = m.deferred.iter().position(|d| d.addr == a)?;
                    let d = m.deferred[i];
                    (d.size == size && valid(a, size, align, no_cross))
                        .then(|| m.deferred.remove(i))
                });
                if let Some(d) = revived {
                    prop_assert_eq!(got, Ok(d.addr as u64), "re-import must get its range back");
                    m.live.push((d.addr, d.size));
                    continue;
                }
                let every: Vec<u128> = m
                    .holes
                    .iter()
                    .flat_map(|(&s, &e)| starts(s, e, size, align, no_cross))
                    .collect();
                let fits = !every.is_empty();
                match got {
                    Err(VaError::NoSpace { .. }) => {
                        prop_assert!(!fits, "NoSpace though a hole fits: {op:?}")
                    }
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                    Ok(a) => {
                        let a = a as u128;
                        let (hs, he) = m.hole_of(a, a + size).ok_or_else(|| {
                            TestCaseError::fail(format!(
                                "{a:#x} (+{size:#x}) is not inside one hole"
                            ))
                        })?;
                        let all = starts(hs, he, size, align, no_cross);
                        prop_assert!(all.contains(&a), "{a:#x} misaligned or crossing: {op:?}");
                        // First fit: the lowest (highest) valid start of all holes.
                        let want = if top_down {
                            every.last()
                        } else {
                            every.first()
                        };
                        prop_assert_eq!(Some(&a), want, "not first fit: {:?}", op);
                        m.take(a, a + size);
                        m.live.push((a, size));
                    }
                }
            }
            Op::AllocAddr { page, pages } => {
                let (a, size) = (base + (page * PAGE) as u128, (pages * PAGE) as u128);
                let got = h.alloc_addr(a as u64, size as u64);
                if a + size > base + (heap_pages * PAGE) as u128 {
                    prop_assert!(matches!(got, Err(VaError::InvalidArgument(_))), "{got:?}");
                } else if m.hole_of(a, a + size).is_some() {
                    prop_assert_eq!(got, Ok(()));
                    m.take(a, a + size);
                    m.live.push((a, size));
                } else if m
                    .live
                    .iter()
                    .copied()
                    .any(|(s, z)| s < a + size && a < s + z)
                {
                    prop_assert!(matches!(got, Err(VaError::AddressTaken { .. })), "{got:?}");
                } else {
                    prop_assert!(
                        matches!(got, Err(VaError::AddressDeferred { .. })),
                        "{got:?}"
                    );
                }
            }
            Op::Free { pick } if !m.live.is_empty() => {
                let (a, size) = m.live.swap_remove(pick % m.live.len());
                prop_assert_eq!(h.free(a as u64, size as u64), Ok(()));
                m.add_hole(a, a + size);
                // A second free is refused and changes nothing.
                let before = h.holes();
                prop_assert!(
                    matches!(
                        h.free(a as u64, size as u64),
                        Err(VaError::NotAllocated { .. })
                    ),
                    "a double free was accepted"
                );
                prop_assert_eq!(h.holes(), before);
            }
            Op::FreeAfter {
                pick,
                queue,
                seqno,
                key,
            } if !m.live.is_empty() => {
                let (a, size) = m.live.swap_remove(pick % m.live.len());
                let fence = Fence::Queue {
                    queue_id: queue,
                    seqno,
                };
                prop_assert_eq!(h.free_after(a as u64, size as u64, fence, key), Ok(()));
                if seqno <= m.completed[queue as usize] {
                    m.add_hole(a, a + size);
                } else {
                    m.deferred.push(Deferred {
                        addr: a,
                        size,
                        queue,
                        seqno,
                    });
                    if let Some(k) = key {
                        m.keys.insert(k, a);
                    }
                }
            }
            Op::Signal { queue, seqno } => {
                h.timelines().signal_queue(queue, seqno);
                let c = &mut m.completed[queue as usize];
                *c = (*c).max(seqno);
                m.signal();
                h.reclaim();
            }
            Op::BadFree { pick } => {
                // A hole or a deferred range, or a live one with the wrong size: error, no change.
                // Or the tail of a live one.
                let bad = match pick % 4 {
                    0 => m.holes.iter().next().map(|(&s, _)| (s, PAGE as u128)),
                    1 => m.deferred.first().map(|d| (d.addr, d.size)),
                    2 => m
                        .live
                        .iter()
                        .find(|&&(_, z)| z > PAGE as u128)
                        .map(|&(a, z)| (a + PAGE as u128, z - PAGE as u128)),
                    _ => m.live.first().map(|&(a, z)| (a, z + PAGE as u128)),
                };
                if let Some((a, z)) = bad {
                    let before = h.holes();
                    let got = h.free(a as u64, z as u64);
                    prop_assert!(
                        matches!(got, Err(VaError::NotAllocated { .. })),
                        "{:?}",
                        got
                    );
                    prop_assert_eq!(h.holes(), before);
                }
            }
            _ => {}
        }
        h.check_invariants().map_err(TestCaseError::fail)?;
        let holes: Vec<(u64, u64)> = m
            .holes
            .iter()
            .map(|(&s, &e)| (s as u64, (e - s) as u64))
            .collect();
        prop_assert_eq!(h.holes(), holes, "after {:?}", op);
        let deferred: u128 = m.deferred.iter().map(|d| d.size).sum();
        prop_assert_eq!(h.deferred_size() as u128, deferred);
    }

    // Fill with pages: no hole may remain.
    while let Ok(a) = h.alloc(PAGE, PAGE, AllocFlags::BOTTOM_UP) {
        m.live.push((a as u128, PAGE as u128));
    }
    prop_assert!(h.holes().is_empty());
    prop_assert_eq!(h.free_size(), 0);
    // Free everything, deferred ones by signalling: the starting hole comes back.
    for &(a, z) in &m.live {
        prop_assert_eq!(h.free(a as u64, z as u64), Ok(()));
    }
    h.timelines().signal_queue(0, 1000);
    h.timelines().signal_queue(1, 1000);
    h.reclaim();
    prop_assert_eq!(h.holes(), vec![(base_B, heap_pages * PAGE)]);
    prop_assert_eq!(h.free_size(), heap_pages * PAGE);
    h.check_invariants().map_err(TestCaseError::fail)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn heap_matches_the_reference_model(heap_pages in 64u64..1024, arenas in 1usize..=4, ops in prop::collection::vec(op(), 1..120)) {
        run(16 << 20, heap_pages, arenas, &ops)?;
    }

    #[test]
    fn heap_at_the_bottom_of_the_full_range_matches_the_model(arenas in 1usize..=4, ops in prop::collection::vec(op(), 1..80)) {
        // Mesa's test heap starts at 4096.
        run(4096, 1023, arenas, &ops)?;
    }

    #[test]
    fn heap_ending_at_2_pow_64_matches_the_model(heap_pages in 64u64..1024, arenas in 1usize..=4, ops in prop::collection::vec(op(), 1..80)) {
        run(0u64.wrapping_sub(heap_pages * PAGE), heap_pages, arenas, &ops)?;
    }
}
