use msm_winsys::iova::{AllocFlags, VaHeap};
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let live: usize = args.get(1).map_or(100_000, |s| s.parse().unwrap());
    let pairs: usize = args.get(2).map_or(1_000_000, |s| s.parse().unwrap());
    let aligned: bool = args.get(3).map_or(true, |s| s == "1");
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut req = || {
        let u = (rnd() >> 11) as f64 / (1u64 << 53) as f64;
        let k = (15.0 * u.powi(4)) as u32;
        let pages = ((1u64 << k) + rnd() % (1u64 << k)).min(16384);
        let a = if aligned {
            match rnd() % 20 {
                0..=14 => 1,
                15..=17 => 16,
                _ => 512,
            }
        } else {
            1
        };
        (pages * 4096, a * 4096, rnd())
    };
    let h = VaHeap::new(4096, u32::MAX as u64 * 4096).unwrap();
    let mut v = Vec::new();
    for _ in 0..live {
        let (s, a, _) = req();
        v.push((h.alloc(s, a, AllocFlags::BOTTOM_UP).unwrap(), s));
    }
    let t = Instant::now();
    for _ in 0..pairs {
        let (s, a, p) = req();
        let i = (p % v.len() as u64) as usize;
        let (addr, sz) = v.swap_remove(i);
        h.free(addr, sz).unwrap();
        v.push((h.alloc(s, a, AllocFlags::BOTTOM_UP).unwrap(), s));
    }
    println!(
        "{:.0} ns/pair",
        t.elapsed().as_nanos() as f64 / pairs as f64
    );
}
