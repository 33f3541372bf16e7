//! The locks and atomics of the code the model-checked tests cover: std's in every build, shuttle's
//! in the crate's own unit tests built with `--cfg shuttle` (docs/reliability.md, "Concurrency").
//!
//! Owns: nothing; a switch of names. Covered: the handle table's lock (`bo::table`), the fence
//! book (`iova::fence`) and the arenas' spin locks and boundary hints (`iova::lock`,
//! `iova::arenas`). Shuttle can only interleave threads at its own primitives, so these are the
//! ones whose interleavings the tests explore; every other lock stays std's and is taken and
//! released between two such points (none is held across one).
//!
//! The behaviour is the same under both: shuttle's `Mutex` and atomics have std's API and
//! semantics (sequentially consistent atomics; shuttle does not model weaker orderings, which is
//! what `cargo +nightly miri` and ThreadSanitizer are for). The one difference is how a spin lock
//! waits, see `iova::lock`.

#[cfg(not(all(test, shuttle)))]
pub(crate) use std::{
    sync::atomic::{AtomicBool, AtomicU64},
    sync::{Mutex, MutexGuard},
    thread::yield_now,
};

#[cfg(all(test, shuttle))]
pub(crate) use shuttle::{
    sync::atomic::{AtomicBool, AtomicU64},
    sync::{Mutex, MutexGuard},
    thread::yield_now,
};

/// How the model-checked tests run: every schedule depth first, the first schedules depth first,
/// or random schedules biased toward few preemptions (PCT). Each says how many schedules ran.
/// `MSMWS_SHUTTLE_SCHEDULES=N` caps every run at N schedules (ci/test's cheap pass).
#[cfg(all(test, shuttle))]
pub(crate) mod check {
    use shuttle::scheduler::{DfsScheduler, PctScheduler};
    use shuttle::{Config, Runner};

    fn cap() -> Option<usize> {
        std::env::var("MSMWS_SHUTTLE_SCHEDULES").ok()?.parse().ok()
    }

    /// Runs `f` under every schedule (unless capped). Returns how many ran.
    pub fn dfs(name: &str, f: impl Fn() + Send + Sync + 'static) -> usize {
        let n = Runner::new(DfsScheduler::new(cap(), false), Config::default()).run(f);
        let all = if cap().is_some_and(|c| n >= c) {
            "capped by MSMWS_SHUTTLE_SCHEDULES"
        } else {
            "all of them"
        };
        eprintln!("shuttle: {name}: {n} schedules (depth first, {all})");
        n
    }

    /// Runs `f` under its first `max` schedules depth first: for tests whose every schedule is
    /// too many (spin-lock waits multiply them).
    pub fn dfs_bounded(name: &str, max: usize, f: impl Fn() + Send + Sync + 'static) {
        let max = cap().map_or(max, |c| c.min(max));
        let n = Runner::new(DfsScheduler::new(Some(max), false), Config::default()).run(f);
        eprintln!("shuttle: {name}: {n} schedules (depth first, first {max})");
    }

    /// Runs `f` under `iterations` random schedules with at most `depth - 1` preemptions each
    /// (PCT: a bug that needs d ordered steps is found with probability 1 / (n k^(d-1)) per run).
    pub fn pct(name: &str, iterations: usize, depth: usize, f: impl Fn() + Send + Sync + 'static) {
        let iterations = cap().map_or(iterations, |c| c.min(iterations));
        let n = Runner::new(PctScheduler::new(depth, iterations), Config::default()).run(f);
        eprintln!("shuttle: {name}: {n} schedules (PCT, depth {depth})");
    }
}
