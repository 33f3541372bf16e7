//! Waits for the model's detached threads (its GPU thread) to finish after a device is dropped,
//! so that every allocation of a run is freed within the run: libFuzzer then skips its
//! per-input LeakSanitizer pass (a full heap scan, 30x slower than the run) unless something
//! really was left allocated.

use std::time::{Duration, Instant};

/// Threads of this process now.
pub fn count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Waits (at most `limit`) until the process has no more than `baseline` threads.
pub fn settle(baseline: usize, limit: Duration) {
    let end = Instant::now() + limit;
    while count() > baseline && Instant::now() < end {
        std::thread::sleep(Duration::from_micros(50));
    }
}
