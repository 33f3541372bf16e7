//! The allocator alone in a tight loop, for profilers (`perf record`, `valgrind --tool=callgrind`):
//! the benchmark (`cargo bench --bench iova`) also runs the baselines, which would drown the
//! profile.
//!
//! `cargo run --release --example iova_loop -- [LIVE] [PAIRS] [ALIGNED]`: fills LIVE allocations
//! (default 100000), then runs PAIRS (default 1000000) of "free a random one, allocate a new one"
//! and prints ns per pair. Sizes as the benchmark's (4 KiB..64 MiB, mostly small); ALIGNED = 1
//! (default) mixes 4 KiB / 64 KiB / 2 MiB alignments as the benchmark does, 0 asks for 4 KiB only.

use std::time::Instant;

use msm_winsys::iova::{AllocFlags, VaHeap};

const PAGE_B: u64 = 4096;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let live = args.first().copied().unwrap_or(100_000) as usize;
    let pairs = args.get(1).copied().unwrap_or(1_000_000);
    let aligned = args.get(2).copied().unwrap_or(1) == 1;

    let mut x = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut request = || {
        let u = (next() >> 11) as f64 / (1u64 << 53) as f64;
        let k = (15.0 * u.powi(4)) as u32;
        let pages = ((1u64 << k) + next() % (1u64 << k)).min(16384);
        let align_pages = match (aligned, next() % 20) {
            (false, _) | (true, 0..=14) => 1,
            (true, 15..=17) => 16,
            _ => 512,
        };
        (pages * PAGE_B, align_pages * PAGE_B, next())
    };

    let heap = VaHeap::new(PAGE_B, u64::from(u32::MAX) * PAGE_B).expect("heap");
    let mut held = Vec::with_capacity(live);
    for _ in 0..live {
        let (size_B, align_B, _) = request();
        let addr = heap.alloc(size_B, align_B, AllocFlags::BOTTOM_UP);
        held.push((addr.expect("the heap holds the fill"), size_B));
    }
    let t = Instant::now();
    for _ in 0..pairs {
        let (size_B, align_B, pick) = request();
        let (addr, old_B) = held.swap_remove((pick % held.len() as u64) as usize);
        heap.free(addr, old_B).expect("a live allocation");
        let addr = heap.alloc(size_B, align_B, AllocFlags::BOTTOM_UP);
        held.push((addr.expect("the heap holds the churn"), size_B));
    }
    println!(
        "{:.0} ns/pair",
        t.elapsed().as_nanos() as f64 / pairs as f64
    );
}
