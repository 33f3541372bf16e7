//! Vblanks of the model's CRTC and what waits for them (drivers/gpu/drm/drm_vblank.c): the
//! vblank counter, the thread that makes `Realtime` vblanks, completing the pending commit
//! (modeset.rs) with its flip-complete event and out-fence, and WAIT_VBLANK with its events.
//!
//! Owns: [`Display`] — the display state (display.rs) behind its lock, the condition variable
//! commits and waits sleep on, and the vblank thread. Locks: `Shared::state`, as display.rs
//! describes; fences are signalled with it released.
//!
//! Vblanks (`SimOptions::vblank`): `Realtime` — every 1/60 s of real time since the device was
//! made, driven by a thread started by the first commit or event that waits for one; `Manual` —
//! only when the test calls [`super::Sim::vblank`], or when a blocking commit has to wait for one
//! (the wait is the vblank); `Immediate` — every commit completes as it is made and every wait
//! target is reached at once (an infinitely fast display, for tests about something else).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::display::State;
use super::event::EventQueue;
use super::fence::Fence;
use super::kms::FRAME_NS;
use super::{user, SimFile, SimOptions};
use crate::uapi::*;
use crate::Errno;

pub use super::display::CRTC_ID;

/// Bytes of a `drm_event_vblank`.
pub(super) const EVENT_B: usize = std::mem::size_of::<drm_event_vblank>();

/// How vblanks happen in the model (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VblankClock {
    #[default]
    Realtime,
    Manual,
    Immediate,
}

pub const DRM_EVENT_VBLANK: u32 = 0x01;
pub const DRM_EVENT_FLIP_COMPLETE: u32 = 0x02;

/// `drm_vblank_passed`: whether vblank `seq` is at or after `target` (with wrap-around).
fn passed(seq: u64, target: u64) -> bool {
    seq.wrapping_sub(target) <= 1 << 23
}

/// A `drm_event_vblank` of `kind` (DRM_EVENT_VBLANK or DRM_EVENT_FLIP_COMPLETE).
fn vblank_event(kind: u32, user_data: u64, seq: u64, t_ns: i64) -> Vec<u8> {
    let ev = drm_event_vblank {
        base: drm_event {
            type_: kind,
            length: EVENT_B as u32,
        },
        user_data,
        tv_sec: (t_ns / 1_000_000_000) as u32,
        tv_usec: ((t_ns % 1_000_000_000) / 1000) as u32,
        sequence: seq as u32,
        crtc_id: CRTC_ID,
    };
    user::bytes_of(&ev).to_vec()
}

/// A WAIT_VBLANK with DRM_VBLANK_EVENT waiting for its vblank.
#[derive(Debug)]
pub(super) struct VblankWait {
    seq: u64,
    queue: Weak<EventQueue>,
    user_data: u64,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// Notified whenever a commit is queued or completes, and at shutdown.
    pub(super) changed: Condvar,
    pub(super) clock: VblankClock,
    born: Instant,
    /// CLOCK_MONOTONIC at `born`, in ns.
    born_ns: i64,
    worker: AtomicBool,
    shutdown: AtomicBool,
}

/// The display engine of one model device.
#[derive(Debug)]
pub(super) struct Display {
    pub(super) shared: Arc<Shared>,
}

impl Display {
    pub(super) fn new(options: &SimOptions, dev_uid: u64) -> Display {
        Display {
            shared: Arc::new(Shared {
                state: Mutex::new(State::new(options, dev_uid)),
                changed: Condvar::new(),
                clock: options.vblank,
                born: Instant::now(),
                born_ns: super::gem::monotonic_ns(),
                worker: AtomicBool::new(false),
                shutdown: AtomicBool::new(false),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        let _guard = self.shared.lock();
        self.shared.changed.notify_all();
    }
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn wait<'a>(&self, d: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(d).unwrap_or_else(|p| p.into_inner())
    }

    /// A vblank: number `seq`, at CLOCK_MONOTONIC `t_ns`. Sends the vblank events it reaches
    /// and, if `commit`, completes the pending commit; returns that commit's out-fence, to be
    /// signalled once the lock is released.
    pub(super) fn vblank_at(
        &self,
        d: &mut State,
        seq: u64,
        t_ns: i64,
        commit: bool,
    ) -> Option<Arc<Fence>> {
        d.vblank_seq = seq;
        d.vblank_ns = t_ns;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut d.vblank_waits)
            .into_iter()
            .partition(|w| passed(seq, w.seq));
        d.vblank_waits = later;
        for w in due {
            if let Some(q) = w.queue.upgrade() {
                q.push(vblank_event(DRM_EVENT_VBLANK, w.user_data, seq, t_ns));
                d.stats.events += 1;
            }
        }
        self.changed.notify_all();
        let p = if commit {
            d.pending.take()?
        } else {
            return None;
        };
        d.stats.vblanks += 1;
        if let Some((q, user_data)) = p.event.and_then(|(q, ud)| q.upgrade().map(|q| (q, ud))) {
            q.push(vblank_event(DRM_EVENT_FLIP_COMPLETE, user_data, seq, t_ns));
            d.stats.events += 1;
        }
        p.out_fence
    }

    /// `drm_crtc_vblank_off`: the vblank events still waiting are sent at the current count.
    pub(super) fn crtc_off(&self, d: &mut State) {
        let (seq, t_ns) = self.count(d);
        for w in std::mem::take(&mut d.vblank_waits) {
            if let Some(q) = w.queue.upgrade() {
                q.push(vblank_event(DRM_EVENT_VBLANK, w.user_data, seq, t_ns));
                d.stats.events += 1;
            }
        }
    }

    /// The vblank counter now and the time of its last vblank (`drm_vblank_count_and_time`).
    pub(super) fn count(&self, d: &State) -> (u64, i64) {
        if self.clock == VblankClock::Realtime {
            let k = self.born.elapsed().as_nanos() as u64 / FRAME_NS;
            (k, self.born_ns + (k * FRAME_NS) as i64)
        } else {
            (d.vblank_seq, d.vblank_ns)
        }
    }

    /// A vblank now, completing the pending commit (`Manual`, `Immediate`, or a commit that
    /// turns the CRTC off, whose completion needs no vblank).
    pub(super) fn fire(&self, d: &mut State) -> Option<Arc<Fence>> {
        let (seq, t_ns) = match self.clock {
            VblankClock::Realtime => self.count(d),
            _ => (d.vblank_seq + 1, super::gem::monotonic_ns()),
        };
        self.vblank_at(d, seq, t_ns, true)
    }

    /// Vblank `seq` in `Realtime`: (its CLOCK_MONOTONIC time, its Instant).
    pub(super) fn realtime_vblank(&self, seq: u64) -> (i64, Instant) {
        let at_ns = seq * FRAME_NS;
        (
            self.born_ns + at_ns as i64,
            self.born + Duration::from_nanos(at_ns),
        )
    }

    /// Starts the `Realtime` vblank thread on first use.
    pub(super) fn start_worker(self: &Arc<Self>) {
        if self.clock != VblankClock::Realtime || self.worker.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.clone();
        std::thread::Builder::new()
            .name("msm-sim-vblank".into())
            .spawn(move || shared.worker_loop())
            .expect("spawning the vblank thread");
    }

    /// The `Realtime` thread: sleeps until the vblank that completes the pending commit or
    /// reaches the first queued vblank event, whichever comes first.
    fn worker_loop(&self) {
        let mut d = self.lock();
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            // The vblank after the commit was queued.
            let commit_seq = d.pending.as_ref().map(|p| {
                p.queued_at.saturating_duration_since(self.born).as_nanos() as u64 / FRAME_NS + 1
            });
            let wait_seq = d.vblank_waits.iter().map(|w| w.seq).min();
            let Some(next) = commit_seq.into_iter().chain(wait_seq).min() else {
                d = self.wait(d);
                continue;
            };
            let (t_ns, due) = self.realtime_vblank(next);
            let now = Instant::now();
            if now < due {
                d = self
                    .changed
                    .wait_timeout(d, due - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            let fence = self.vblank_at(&mut d, next, t_ns, commit_seq == Some(next));
            drop(d);
            if let Some(f) = fence {
                f.signal();
            }
            d = self.lock();
        }
    }

    /// Waits until no commit is pending: the thread's vblank in `Realtime`, an inline one
    /// otherwise. Fences to signal are appended to `fences`.
    pub(super) fn wait_idle<'a>(
        self: &Arc<Self>,
        mut d: MutexGuard<'a, State>,
        fences: &mut Vec<Arc<Fence>>,
    ) -> MutexGuard<'a, State> {
        while d.pending.is_some() {
            if self.clock == VblankClock::Realtime {
                self.start_worker();
                // The thread may be asleep with nothing pending when it last looked.
                self.changed.notify_all();
                d = self.wait(d);
            } else {
                fences.extend(self.fire(&mut d));
            }
        }
        d
    }
}

const _DRM_VBLANK_RELATIVE: u32 = 0x1;
const _DRM_VBLANK_TYPES_MASK: u32 = 0x1;
const _DRM_VBLANK_HIGH_CRTC_MASK: u32 = 0x3e;
const _DRM_VBLANK_EVENT: u32 = 0x0400_0000;
const _DRM_VBLANK_NEXTONMISS: u32 = 0x1000_0000;
const _DRM_VBLANK_SECONDARY: u32 = 0x2000_0000;
const _DRM_VBLANK_SIGNAL: u32 = 0x4000_0000;
const _DRM_VBLANK_FLAGS_MASK: u32 =
    _DRM_VBLANK_EVENT | _DRM_VBLANK_SIGNAL | _DRM_VBLANK_SECONDARY | _DRM_VBLANK_NEXTONMISS;
/// `drm_wait_vblank_ioctl` gives up after 3 s.
const WAIT_VBLANK_TIMEOUT: Duration = Duration::from_secs(3);

/// WAIT_VBLANK (`drm_wait_vblank_ioctl`): SIGNAL or unknown type bits -> EINVAL; a CRTC index
/// other than 0 -> EINVAL; the CRTC off (no vblank to count) -> EINVAL; then, for a RELATIVE or
/// ABSOLUTE (32-bit, widened around the counter) target: with EVENT a DRM_EVENT_VBLANK for the
/// file at that vblank (at once if it passed; no room -> ENOMEM), otherwise a wait for it (no
/// vblank within 3 s -> EBUSY); the reply is the counter and its vblank's time.
pub(super) fn wait_vblank(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    super::dispatch::typed(kdata, |w: &mut drm_wait_vblank| {
        // SAFETY: both members of the union are plain integers: any bytes are a valid request.
        let mut req = unsafe { w.request };
        if req.type_ & _DRM_VBLANK_SIGNAL != 0 {
            return Err(Errno::EINVAL);
        }
        if req.type_
            & !(_DRM_VBLANK_TYPES_MASK | _DRM_VBLANK_FLAGS_MASK | _DRM_VBLANK_HIGH_CRTC_MASK)
            != 0
        {
            return Err(Errno::EINVAL);
        }
        let flags = req.type_ & _DRM_VBLANK_FLAGS_MASK;
        let high = req.type_ & _DRM_VBLANK_HIGH_CRTC_MASK;
        let pipe = if high != 0 {
            high >> 1
        } else {
            (flags & _DRM_VBLANK_SECONDARY != 0) as u32
        };
        if pipe >= 1 {
            return Err(Errno::EINVAL);
        }
        let shared = &file.dev.display.shared;
        let mut d = shared.lock();
        // drm_vblank_get: no vblank interrupt on a CRTC that is off.
        if !d.kms.crtc.active {
            return Err(Errno::EINVAL);
        }
        let (seq, _) = shared.count(&d);
        let mut target = if req.type_ & _DRM_VBLANK_RELATIVE != 0 {
            let t = seq + req.sequence as u64;
            req.sequence = t as u32;
            req.type_ &= !_DRM_VBLANK_RELATIVE;
            t
        } else {
            // widen_32_to_64
            seq.wrapping_add((req.sequence.wrapping_sub(seq as u32) as i32) as i64 as u64)
        };
        if flags & _DRM_VBLANK_NEXTONMISS != 0 && passed(seq, target) {
            target = seq + 1;
            req.type_ &= !_DRM_VBLANK_NEXTONMISS;
            req.sequence = target as u32;
        }
        w.request = req;
        if flags & _DRM_VBLANK_EVENT != 0 {
            file.events.reserve(EVENT_B)?;
            let (seq, t_ns) = shared.count(&d);
            let reply_seq = if passed(seq, target) {
                file.events
                    .push(vblank_event(DRM_EVENT_VBLANK, req.signal, seq, t_ns));
                d.stats.events += 1;
                seq
            } else {
                d.vblank_waits.push(VblankWait {
                    seq: target,
                    queue: Arc::downgrade(&file.events),
                    user_data: req.signal,
                });
                if shared.clock == VblankClock::Immediate {
                    shared.vblank_at(&mut d, target, super::gem::monotonic_ns(), false);
                } else {
                    shared.start_worker();
                    shared.changed.notify_all();
                }
                target
            };
            // Only the sequence of the reply is written; the rest is the request's bytes.
            w.reply.sequence = reply_seq as u32;
            return Ok(());
        }
        let end = Instant::now() + WAIT_VBLANK_TIMEOUT;
        let mut timed_out = false;
        loop {
            let (now_seq, _) = shared.count(&d);
            if passed(now_seq, target) || !d.kms.crtc.active {
                break;
            }
            if shared.clock == VblankClock::Immediate {
                shared.vblank_at(&mut d, target, super::gem::monotonic_ns(), false);
                continue;
            }
            let now = Instant::now();
            if now >= end {
                timed_out = true;
                break;
            }
            // Realtime: the clock moves on its own; Manual: another thread calls Sim::vblank.
            let left = match shared.clock {
                VblankClock::Realtime => shared
                    .realtime_vblank(target)
                    .1
                    .saturating_duration_since(now),
                _ => end - now,
            };
            d = shared
                .changed
                .wait_timeout(d, left.min(end - now).max(Duration::from_micros(100)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let (now_seq, t_ns) = shared.count(&d);
        w.reply.sequence = now_seq as u32;
        w.reply.tval_sec = t_ns / 1_000_000_000;
        w.reply.tval_usec = (t_ns % 1_000_000_000) / 1000;
        if timed_out {
            Err(Errno::EBUSY)
        } else {
            Ok(())
        }
    })
}

impl super::Sim {
    /// A vblank now, completing the pending commit (`VblankClock::Manual`; debug API). Returns
    /// whether a commit completed.
    pub fn vblank(&self) -> bool {
        let shared = &self.dev.display.shared;
        let mut d = shared.lock();
        let had = d.pending.is_some();
        let fence = shared.fire(&mut d);
        drop(d);
        if let Some(f) = fence {
            f.signal();
        }
        had
    }

    /// Whether a commit is waiting for its vblank (debug API).
    pub fn commit_pending(&self) -> bool {
        self.dev.display.shared.lock().pending.is_some()
    }
}
