//! An arena's lock: test-and-test-and-set with exponential backoff, then yielding the CPU.
//!
//! Owns: [`SpinLock`]. Each arena of a heap has one (see `arenas.rs` for the order they are taken
//! in).
//!
//! Why not `std::sync::Mutex`: an arena's critical sections are a few hundred ns. Once a futex
//! mutex has parked a waiter, every unlock is a FUTEX_WAKE syscall that costs more than the
//! critical section. Here unlock is one release store; a waiter re-reads the lock (read-only, no
//! cache-line ping-pong) after exponentially longer pauses, and after at most `MAX_BACKOFF_SPINS`
//! pauses per look (a few microseconds of overshoot at worst) it yields so a preempted holder can
//! finish. Threads mostly take different arenas' locks; contention is the exception (a free of
//! another thread's allocation, a request that only fits outside the thread's arena).
//!
//! A panic while the lock is held releases it (the guard's drop); the arena's state is then as
//! consistent as the last completed step, as with a poisoned mutex taken anyway.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;

use crate::sync::AtomicBool;

/// Longest busy-wait between two looks at a held lock; past it a waiter yields the CPU.
#[cfg(not(all(test, shuttle)))]
const MAX_BACKOFF_SPINS: u32 = 1 << 10;
/// Under the model checker (`crate::sync`) a waiter yields at every look: shuttle interleaves
/// threads only at its own primitives, and a waiter that spun without yielding could be
/// scheduled again and again while the holder never runs.
#[cfg(all(test, shuttle))]
const MAX_BACKOFF_SPINS: u32 = 0;

pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `data` to one thread at a time (acquire/release on
// `locked`), so sharing a `SpinLock<T>` is as safe as sending `T` between threads.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: owning the lock owns the `T`.
unsafe impl<T: Send> Send for SpinLock<T> {}

pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    pub fn new(data: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            data: UnsafeCell::new(data),
        }
    }

    // Under shuttle the bound is 0, so the spin branch is never taken (see the constant).
    #[cfg_attr(all(test, shuttle), allow(clippy::absurd_extreme_comparisons))]
    pub fn lock(&self) -> SpinGuard<'_, T> {
        let mut backoff = 1u32;
        loop {
            if !self.locked.swap(true, Ordering::Acquire) {
                return SpinGuard { lock: self };
            }
            // Back off exponentially: the holder keeps the heap's cache lines for several calls in
            // a row instead of both cores pulling them back and forth on every call.
            while self.locked.load(Ordering::Relaxed) {
                if backoff <= MAX_BACKOFF_SPINS {
                    for _ in 0..backoff {
                        std::hint::spin_loop();
                    }
                    backoff *= 2;
                } else {
                    crate::sync::yield_now();
                }
            }
        }
    }

    /// The lock if it is free right now: how an allocation notices another thread in its arena,
    /// and how debug reads avoid waiting. The guard is built only on success: building one and
    /// dropping it would release another's lock.
    pub fn try_lock(&self) -> Option<SpinGuard<'_, T>> {
        let free =
            !self.locked.load(Ordering::Relaxed) && !self.locked.swap(true, Ordering::Acquire);
        free.then(|| SpinGuard { lock: self })
    }
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this thread holds the lock, and `&mut self` makes
        // this the only reference through it.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_other_threads() {
        // Under Miri (its data-race detector checks the acquire/release pairs) fewer rounds.
        let rounds = if cfg!(miri) { 500 } else { 10_000 };
        let lock = SpinLock::new(0u64);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..rounds {
                        *lock.lock() += 1;
                    }
                });
            }
        });
        assert_eq!(*lock.lock(), 4 * rounds);
        let held = lock.lock();
        assert!(lock.try_lock().is_none());
        // A failed try_lock must leave the lock held (it once built and dropped a guard, which
        // released the holder's lock).
        assert!(lock.locked.load(Ordering::Relaxed));
        drop(held);
        assert!(lock.try_lock().is_some());
    }
}
