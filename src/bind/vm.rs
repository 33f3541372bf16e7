//! A VM in VM_BIND mode as the winsys drives it: binds are queued, planned and flushed as few,
//! small, sorted VM_BIND jobs; submits wait only for the bind jobs that mapped what they use; a
//! failed bind explains itself.
//!
//! Owns: two VM_BIND submitqueues and a timeline syncobj for each (made by the first flush that
//! has a job to send, so a VM that never binds anything costs no ioctl), the mirror of what has been
//! sent, the pending ops, which job mapped each range, the jobs in flight and a log of recent VM
//! operations. Locks: `BindVm::state` (one mutex), held across the VM_BIND ioctls of a flush so
//! jobs reach the kernel in the order they were planned; never held while waiting on a fence
//! except the bounded throttle wait, which only a flush does.
//!
//! # Two queues
//! - The *map* queue carries MAPs of addresses that were empty. Nothing there waits: a new
//!   buffer's mapping is never held up by GPU work.
//! - The *wait* queue carries everything that replaces or removes a mapping the GPU may be using:
//!   the UNMAP of a freed buffer waits (as in-fences of its job) for the submits that used it and
//!   for the map job that created the mapping; sparse binds with their own waits and signals go
//!   there too. A freed range goes back to the address allocator with the wait-queue job's timeline
//!   point as its fence, so no new mapping can be written to it before the unmap has run.
//!
//! # What a submit waits for
//! Every sent MAP records its job's (timeline, point) for its address range. A submit names the
//! ranges it may access (the buffers its command buffers reference, which the driver tracks anyway);
//! it waits for the highest point recorded on those ranges that is not yet known to have signalled,
//! and for nothing else. That is safe because the GPU can reach only mapped addresses, a mapping
//! exists on the GPU once its job has run, and each queue's jobs run in order, so the point that
//! mapped a range is the only bind the submit depends on.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use super::op::BindOp;
use super::plan::{plan, split, KERNEL_THROTTLE_PAGES};
use super::prealloc::job_pages;
use super::va::VaMirror;
use crate::kernel::ioctl::{self, Fences, SyncPoint};
use crate::kernel::{Kernel, KernelError};
use crate::uapi::MSM_SUBMITQUEUE_VM_BIND;
use crate::Errno;
use crate::ErrnoError;

/// How many recent VM operations a device-loss report shows.
const LOG_ENTRIES: usize = 64;

/// Why a bind or submit failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// The kernel refused a call; nothing of that call happened.
    Kernel(KernelError),
    /// The VM is unusable (EPIPE): the context is lost. The report says what happened last.
    DeviceLost(Box<LossReport>),
}

impl BindError {
    /// A refusal that left the kernel's VM as it was, so the same call may simply be made again:
    /// ENOMEM (an allocation: the ioctl's, its pinning, its page-table preallocation) and
    /// EINTR/EAGAIN (interrupted in the throttle wait or an interruptible lock, before anything
    /// was taken).
    pub fn changed_nothing(&self) -> bool {
        matches!(self, BindError::Kernel(e)
            if matches!(e.errno, Errno::ENOMEM | Errno::EINTR | Errno::EAGAIN))
    }
}

/// What the winsys knows when a VM is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossReport {
    /// The call that found the VM unusable.
    pub call: String,
    /// The winsys's own log of its last VM operations, oldest first.
    pub recent_ops: Vec<String>,
    /// The kernel's devcoredump, when the kernel left one.
    pub devcoredump: Option<String>,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Kernel(e) => write!(f, "{e}"),
            BindError::DeviceLost(r) => {
                writeln!(
                    f,
                    "device lost: {} found the GPU VM unusable (EPIPE)",
                    r.call
                )?;
                writeln!(f, "last VM operations (oldest first):")?;
                for op in &r.recent_ops {
                    writeln!(f, "  {op}")?;
                }
                match &r.devcoredump {
                    Some(d) => write!(f, "kernel devcoredump:\n{d}"),
                    None => write!(f, "no kernel devcoredump"),
                }
            }
        }
    }
}

impl std::error::Error for BindError {}

impl ErrnoError for BindError {
    fn errno(&self) -> Errno {
        match self {
            BindError::Kernel(e) => e.errno,
            BindError::DeviceLost(_) => Errno::EPIPE,
        }
    }
}

/// Counters of what the VM has done (for scenarios and debugging).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindStats {
    /// Ops the driver queued.
    pub ops_queued: u64,
    /// Ops sent to the kernel after planning.
    pub ops_sent: u64,
    pub vm_bind_ioctls: u64,
    pub jobs: u64,
    /// Page-table pages the kernel preallocated for the jobs sent (its own rule).
    pub prealloc_pages: u64,
    /// Jobs re-sent smaller after ENOMEM.
    pub enomem_fallbacks: u64,
    /// Times a flush waited for an earlier job so the kernel's throttle would not stall.
    pub throttle_waits: u64,
    pub submits: u64,
    /// Bind points submits waited for.
    pub submit_bind_waits: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Map,
    Wait,
}

#[derive(Debug)]
struct Pending {
    op: BindOp,
    /// Fences the op must wait for (an UNMAP's users, a sparse batch's waits).
    waits: Vec<SyncPoint>,
    /// Forced onto the wait queue (sparse binds).
    ordered: bool,
}

/// A range returned by a flush: free it in the allocator after `fence` (None: at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub iova: u64,
    pub range_B: u64,
    pub fence: Option<SyncPoint>,
}

#[derive(Debug, Default)]
struct State {
    mirror: VaMirror,
    pending: Vec<Pending>,
    /// Sparse signals for the end of the next flush's wait-queue work.
    pending_signals: Vec<SyncPoint>,
    /// Ranges whose UNMAP is pending and which return to the allocator once it is ordered.
    pending_frees: Vec<(u64, u64)>,
    /// Last assigned and last known signalled point of each queue's timeline.
    points: [u64; 2],
    done: [u64; 2],
    /// Which (queue, point) mapped each range: start -> (end, queue, point).
    mapped_by: BTreeMap<u64, (u64, Queue, u64)>,
    /// Jobs not known to be done: (queue, point, preallocated pages).
    in_flight: VecDeque<(Queue, u64, u64)>,
    /// Recent sent ops, formatted only when a report or `recent_ops` asks (a formatted line per op
    /// cost more than planning it).
    log: VecDeque<Logged>,
    stats: BindStats,
    lost: Option<Box<LossReport>>,
    /// Planned jobs not yet sent, in order.
    backlog: VecDeque<Job>,
    /// Ranges released by flushes the caller did not see (a submit's), for the next flush to return.
    released: Vec<Released>,
    /// The MAP the kernel last refused on its own (ENOMEM for that one op) and how many flushes
    /// in a row it was refused.
    refused: Option<(BindOp, u32)>,
}

/// Flushes in a row a lone MAP may be refused with ENOMEM before it is dropped: memory pressure
/// passes, an object that can never be pinned (larger than memory) does not, and would hold back
/// everything queued after it forever.
pub(super) const MAP_REFUSALS_BEFORE_DROP: u32 = 3;

/// Which job ordered what: (queue, timeline point, address ranges of its ops).
type PlannedJob = (Queue, u64, Vec<(u64, u64)>);

/// A planned VM_BIND job.
#[derive(Debug)]
struct Job {
    queue: Queue,
    point: u64,
    ops: Vec<BindOp>,
    waits: Vec<SyncPoint>,
    signals: Vec<SyncPoint>,
    pages: u64,
}

/// One GPU VM in VM_BIND mode.
#[derive(Debug)]
pub struct BindVm {
    /// The queues and their timelines, once a flush has needed them.
    made: std::sync::OnceLock<Made>,
    /// Largest preallocation of one job (the kernel throttles above 1024 in flight).
    budget_pages: u64,
    state: Mutex<State>,
}

/// The entries of `mapped_by` (start -> (end, queue, point), ranges that never overlap) that meet
/// [start, end): the last one starting below `start` if it reaches past it, then those starting
/// inside. O(log n + k); a scan of every range below `end` made each bind O(live mappings).
fn overlapping(
    mapped_by: &BTreeMap<u64, (u64, Queue, u64)>,
    start: u64,
    end: u64,
) -> impl Iterator<Item = (u64, (u64, Queue, u64))> + '_ {
    let below = mapped_by
        .range(..start)
        .next_back()
        .filter(|(_, &(e, _, _))| e > start);
    below
        .into_iter()
        .chain(mapped_by.range(start..end.max(start)))
        .map(|(&s, &v)| (s, v))
}

/// The two VM_BIND queues (map, wait) and the timeline each signals.
#[derive(Debug, Clone, Copy)]
struct Made {
    queues: [u32; 2],
    timelines: [u32; 2],
}

/// One sent op of the log: the op, its VM_BIND queue and job point.
#[derive(Debug, Clone, Copy)]
struct Logged {
    op: BindOp,
    queue: u32,
    point: u64,
}

impl Logged {
    fn line(&self) -> String {
        format!(
            "{} queue {} job {}",
            describe(&self.op),
            self.queue,
            self.point
        )
    }
}

fn qi(q: Queue) -> usize {
    q as usize
}

fn describe(op: &BindOp) -> String {
    use super::op::Target;
    let range = format!("{:#014x}-{:#014x}", op.iova, op.end());
    match op.target {
        None => format!("unmap {range}"),
        Some(Target::Null) => format!("map_null {range}"),
        Some(Target::Bo { handle, offset_B }) => {
            format!("map {range} handle {handle} offset {offset_B:#x}")
        }
    }
}

impl BindVm {
    /// Binding on a file already in VM_BIND mode. Nothing is asked of the kernel until a flush has
    /// a job to send: then the two VM_BIND queues and their timelines are made.
    pub fn new(budget_pages: u64) -> BindVm {
        BindVm {
            made: std::sync::OnceLock::new(),
            budget_pages: budget_pages.clamp(3, KERNEL_THROTTLE_PAGES),
            state: Mutex::default(),
        }
    }

    /// Makes the queues and timelines (the caller holds the state lock, so only one thread gets
    /// here). A creation that fails releases what it made (the kernel can refuse any of the four
    /// with ENOMEM) and leaves the VM as it was, for the next flush to try again.
    fn make(&self, k: &dyn Kernel) -> Result<Made, BindError> {
        if let Some(m) = self.made.get() {
            return Ok(*m);
        }
        let mut queues = Vec::with_capacity(2);
        let mut timelines = Vec::with_capacity(2);
        let made = (|| {
            for _ in 0..2 {
                queues.push(ioctl::submitqueue_new(k, MSM_SUBMITQUEUE_VM_BIND, 0)?);
            }
            for _ in 0..2 {
                timelines.push(ioctl::syncobj_create(k, false)?);
            }
            Ok(())
        })();
        if let Err(e) = made {
            // Best effort: the creation's error is the one to report.
            for &q in &queues {
                let _ = ioctl::submitqueue_close(k, q);
            }
            for &t in &timelines {
                let _ = ioctl::syncobj_destroy(k, t);
            }
            return Err(BindError::Kernel(e));
        }
        let m = Made {
            queues: [queues[0], queues[1]],
            timelines: [timelines[0], timelines[1]],
        };
        Ok(*self.made.get_or_init(|| m))
    }

    /// Queue `q`'s VM_BIND submitqueue; only called once a job exists, so the queues do.
    fn queue(&self, q: Queue) -> u32 {
        self.made.get().map_or(0, |m| m.queues[qi(q)])
    }

    /// Queue `q`'s timeline; only called for points that exist, so the timelines do.
    fn timeline(&self, q: Queue) -> u32 {
        self.made.get().map_or(0, |m| m.timelines[qi(q)])
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Releases the queues and timelines (after the last flush). Each is released even if an
    /// earlier one failed; the first error is returned.
    pub fn destroy(self, k: &dyn Kernel) -> Result<(), KernelError> {
        let Some(m) = self.made.get() else {
            return Ok(());
        };
        let queues = m.queues.iter().map(|&q| ioctl::submitqueue_close(k, q));
        let timelines = m.timelines.iter().map(|&t| ioctl::syncobj_destroy(k, t));
        queues
            .chain(timelines)
            .collect::<Vec<_>>()
            .into_iter()
            .collect()
    }

    /// Queues a MAP (or MAP_NULL) of `op`.
    pub fn map(&self, op: BindOp) {
        let mut st = self.lock();
        st.stats.ops_queued += 1;
        st.pending.push(Pending {
            op,
            waits: vec![],
            ordered: false,
        });
    }

    /// Queues the UNMAP of a freed buffer's range, to run after `users` (the submits that may still
    /// use it). The range is returned by the flush that orders the unmap.
    pub fn unmap_freed(&self, iova: u64, range_B: u64, users: &[SyncPoint]) {
        let mut st = self.lock();
        // A MAP of this range the kernel refused (ENOMEM) may still wait in the backlog, naming
        // the buffer's handle, which the caller closes next: sent later, it would name no object
        // (EINVAL) and, refused as a planned job, lose the VM with every unmap behind it (found
        // by the c_abi fuzz target, a 2^47-byte buffer, and by ci/fault-sweep, VM_BIND:5:ENOMEM
        // on piglit fbo-blit). Never taken, it mapped nothing: it goes. The range is the
        // buffer's alone, so every op in it maps this buffer.
        self.drop_unsent_maps(&mut st, None, (iova, iova.saturating_add(range_B)));
        st.stats.ops_queued += 1;
        st.pending.push(Pending {
            op: BindOp::unmap(iova, range_B),
            waits: users.to_vec(),
            ordered: false,
        });
        st.pending_frees.push((iova, range_B));
    }

    /// Queues a sparse bind batch: its ops run after `waits`, and `signals` fire once they have.
    pub fn sparse(&self, ops: &[BindOp], waits: &[SyncPoint], signals: &[SyncPoint]) {
        let mut st = self.lock();
        st.stats.ops_queued += ops.len() as u64;
        for (i, op) in ops.iter().enumerate() {
            let waits = if i == 0 { waits.to_vec() } else { vec![] };
            st.pending.push(Pending {
                op: *op,
                waits,
                ordered: true,
            });
        }
        st.pending_signals.extend_from_slice(signals);
    }

    pub fn stats(&self) -> BindStats {
        self.lock().stats
    }

    /// Ops queued and not yet flushed.
    pub fn pending_ops(&self) -> usize {
        self.lock().pending.len()
    }

    /// Drops the backlog's MAPs (of `handle`, or of any object) inside `[start, end)`, which the
    /// kernel never took, reading their ranges as unmapped, and the jobs that only signalled their
    /// own points on the way. O(backlog ops).
    fn drop_unsent_maps(&self, st: &mut State, handle: Option<u32>, (start, end): (u64, u64)) {
        let names = |op: &BindOp| {
            !op.is_unmap()
                && op.iova >= start
                && op.end() <= end
                && handle.is_none_or(|h| op.handle() == Some(h))
        };
        let mut dropped = Vec::new();
        for job in st.backlog.iter_mut() {
            if job.ops.iter().any(names) {
                dropped.extend(
                    job.ops
                        .iter()
                        .filter(|op| names(op))
                        .map(|op| (job.queue, *op)),
                );
                job.ops.retain(|op| !names(op));
                job.pages = job_pages(&job.ops);
            }
        }
        for (q, op) in dropped {
            Self::commit(st, &BindOp::unmap(op.iova, op.range_B), q, 0);
            if st.refused.is_some_and(|(o, _)| o == op) {
                st.refused = None;
            }
        }
        // A MAP past the budget was planned as many jobs; emptied, they would go out one ioctl
        // each. Only the last job of each queue must still signal its point (later points stand
        // for earlier ones on a timeline), and any job that waits or signals for the driver.
        let last: Vec<(Queue, u64)> = [Queue::Map, Queue::Wait]
            .iter()
            .filter_map(|&q| {
                st.backlog
                    .iter()
                    .filter(|j| j.queue == q)
                    .map(|j| (q, j.point))
                    .next_back()
            })
            .collect();
        let own = |j: &Job| self.timeline(j.queue);
        st.backlog.retain(|j| {
            !j.ops.is_empty()
                || !j.waits.is_empty()
                || j.signals.iter().any(|p| p.handle != own(j))
                || last.contains(&(j.queue, j.point))
        });
    }

    /// Whether a MAP of GEM handle `handle` is queued and not yet sent: pending, or planned and
    /// still in the backlog (a job the kernel refused with ENOMEM waits there, first, for the
    /// next flush). O(pending and backlog ops).
    pub fn maps_pending(&self, handle: u32) -> bool {
        let names = |op: &BindOp| op.handle() == Some(handle);
        let st = self.lock();
        st.pending.iter().any(|p| names(&p.op))
            || st.backlog.iter().any(|j| j.ops.iter().any(names))
    }

    /// What the winsys has sent as mapped, as ops sorted by address (for teardown and debugging).
    pub fn mapped(&self) -> Vec<BindOp> {
        self.lock().mirror.as_ops()
    }

    /// The winsys's log of its last VM operations.
    pub fn recent_ops(&self) -> Vec<String> {
        self.lock().log.iter().map(Logged::line).collect()
    }

    /// Preallocated pages of the jobs not known to be done.
    fn in_flight_pages(st: &State) -> u64 {
        st.in_flight.iter().map(|j| j.2).sum()
    }

    /// Learns which jobs are done (one query per timeline) and drops them from the in-flight list.
    fn refresh_done(&self, k: &dyn Kernel, st: &mut State) -> Result<(), BindError> {
        for q in [Queue::Map, Queue::Wait] {
            if st.done[qi(q)] < st.points[qi(q)] {
                st.done[qi(q)] =
                    ioctl::syncobj_query(k, self.timeline(q)).map_err(BindError::Kernel)?;
            }
        }
        let done = st.done;
        st.in_flight.retain(|&(q, p, _)| p > done[qi(q)]);
        Ok(())
    }

    fn lost(&self, k: &dyn Kernel, st: &mut State, call: String) -> BindError {
        let report = Box::new(LossReport {
            call,
            recent_ops: st.log.iter().map(Logged::line).collect(),
            devcoredump: k.devcoredump(),
        });
        st.lost = Some(report.clone());
        BindError::DeviceLost(report)
    }

    fn log(st: &mut State, line: Logged) {
        if st.log.len() == LOG_ENTRIES {
            st.log.pop_front();
        }
        st.log.push_back(line);
    }

    /// Sends one job, halving it on ENOMEM down to one op per ioctl: the first piece waits for
    /// `waits`, the last signals `signals`, and the queue's order keeps the rest in between.
    /// `sent` counts the leading ops the kernel took, so a failure leaves the rest to resend.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        k: &dyn Kernel,
        st: &mut State,
        q: Queue,
        ops: &[BindOp],
        waits: &[SyncPoint],
        signals: &[SyncPoint],
        sent: &mut usize,
    ) -> Result<(), BindError> {
        let fences = Fences {
            wait: waits,
            signal: signals,
            ..Default::default()
        };
        st.stats.vm_bind_ioctls += 1;
        match ioctl::vm_bind(k, self.queue(q), ops, fences) {
            Ok(_) => {
                *sent += ops.len();
                Ok(())
            }
            Err(e) if e.errno == Errno::ENOMEM && ops.len() > 1 => {
                st.stats.enomem_fallbacks += 1;
                let (a, b) = ops.split_at(ops.len() / 2);
                self.send(k, st, q, a, waits, &[], sent)?;
                self.send(k, st, q, b, &[], signals, sent)
            }
            Err(e) if e.errno == Errno::EPIPE => Err(self.lost(k, st, e.call)),
            Err(e) => Err(BindError::Kernel(e)),
        }
    }

    /// Sends everything pending, as few jobs as the budget allows (an explicit flush). Returns the
    /// ranges freed by `unmap_freed` whose unmaps are now ordered (by this flush or by one a submit
    /// made since the last flush), with the fence after which the allocator may hand them out again.
    ///
    /// ENOMEM (even for a job sent one op per ioctl) is not a loss: the kernel's VM is unchanged
    /// by the refused op, and the ops not yet taken stay queued, first, for the next flush or
    /// submit. Only EPIPE, or any other refusal of a planned job, loses the device.
    pub fn flush(&self, k: &dyn Kernel) -> Result<Vec<Released>, BindError> {
        self.flush_inner(k, true, true)
    }

    /// Like [`Self::flush`], but returns instead of waiting when the kernel's throttle would
    /// stall: the rest goes out at the next flush or submit (vkQueueBindSparse can return at once).
    pub fn flush_async(&self, k: &dyn Kernel) -> Result<Vec<Released>, BindError> {
        self.flush_inner(k, true, false)
    }

    /// Sends what can go without waiting: maps, and the unmaps whose users are known to be done.
    /// Unmaps of buffers the GPU may still be using stay queued for a later flush, so they never
    /// hold up the map queue and the frame's binds go out as one job.
    pub fn flush_ready(&self, k: &dyn Kernel) -> Result<Vec<Released>, BindError> {
        self.flush_inner(k, false, true)
    }

    /// Whether every point in `waits` is known to have signalled (one query per syncobj).
    fn all_signalled(
        &self,
        k: &dyn Kernel,
        waits: &[SyncPoint],
        cache: &mut Vec<(u32, u64)>,
    ) -> Result<bool, BindError> {
        for w in waits {
            let done = match cache.iter().find(|(h, _)| *h == w.handle) {
                Some(&(_, d)) => d,
                None => {
                    let d = ioctl::syncobj_query(k, w.handle).map_err(BindError::Kernel)?;
                    cache.push((w.handle, d));
                    d
                }
            };
            // A binary syncobj (point 0) reports 0 whatever its state: never assume it is done.
            if w.point == 0 || done < w.point {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn flush_inner(
        &self,
        k: &dyn Kernel,
        force: bool,
        block: bool,
    ) -> Result<Vec<Released>, BindError> {
        let mut st = self.lock();
        if let Some(r) = &st.lost {
            return Err(BindError::DeviceLost(r.clone()));
        }
        if st.pending.is_empty() && st.pending_signals.is_empty() {
            self.drain(k, &mut st, block)?;
            return Ok(std::mem::take(&mut st.released));
        }
        if self.made.get().is_none() {
            // The queues are made only when something will be sent: ops that cancel out (a
            // buffer made and freed between two flushes) and nothing to signal need none.
            let all: Vec<BindOp> = st.pending.iter().map(|p| p.op).collect();
            let sends = !st.pending_signals.is_empty()
                || st.pending.iter().any(|p| p.ordered)
                || !plan(&st.mirror, &all).is_empty();
            if sends {
                self.make(k)?;
            }
        }
        // Knowing which jobs are done only trims the waits of later jobs and submits (a wait for
        // a signalled point costs the kernel nothing) and the in-flight count, which `drain`
        // refreshes itself before the throttle: asking at every flush cost one SYNCOBJ_QUERY per
        // submit in a GL driver that maps one new buffer per draw (piglit fbo-readpixels).
        if Self::in_flight_pages(&st) > KERNEL_THROTTLE_PAGES / 2 {
            self.refresh_done(k, &mut st)?;
        }

        // Whether each pending op's own waits are known done, asked only where it matters (an
        // unmap that may be held back, an op replacing a live mapping) and before anything
        // changes: a failed query then leaves every op pending for the next flush.
        let mut cache = Vec::new();
        let mut idle = Vec::with_capacity(st.pending.len());
        for p in &st.pending {
            let live = !st.mirror.restrict(&[(p.op.iova, p.op.end())]).is_empty();
            let asked = !p.ordered && (live || (!force && p.op.is_unmap()));
            idle.push(!asked || self.all_signalled(k, &p.waits, &mut cache)?);
        }
        let mut pending = std::mem::take(&mut st.pending);

        // Hold back the unmaps whose users may still run, unless a later op touches their range.
        let mut held: Vec<Pending> = Vec::new();
        if !force {
            let mut keep = Vec::with_capacity(pending.len());
            for (i, p) in pending.iter().enumerate() {
                let hold = p.op.is_unmap()
                    && !p.ordered
                    && !idle[i]
                    && !pending[i + 1..]
                        .iter()
                        .any(|q| q.op.iova < p.op.end() && p.op.iova < q.op.end());
                keep.push(!hold);
            }
            let mut it = keep.iter();
            let (send, hold): (Vec<Pending>, Vec<Pending>) = pending
                .into_iter()
                .partition(|_| it.next().copied().unwrap_or(true));
            pending = send;
            held = hold;
            let mut it = keep.iter();
            idle.retain(|_| it.next().copied().unwrap_or(true));
        }
        let mut frees = std::mem::take(&mut st.pending_frees);
        let held_frees: Vec<(u64, u64)> = frees
            .iter()
            .copied()
            .filter(|&(iova, len)| {
                held.iter()
                    .any(|h| h.op.iova == iova && h.op.range_B == len)
            })
            .collect();
        frees.retain(|f| !held_frees.contains(f));
        st.pending_frees = held_frees;
        st.pending = held;

        let all: Vec<BindOp> = pending.iter().map(|p| p.op).collect();
        let planned = plan(&st.mirror, &all);

        // Ops whose own waits are not known done, or that belong to a sparse batch, go to the
        // wait queue; everything else (new maps, unmaps of idle buffers) to the map queue.
        let mut waits: Vec<SyncPoint> = Vec::new();
        let mut must_wait: Vec<(u64, u64)> = Vec::new();
        for (p, &idle) in pending.iter().zip(&idle) {
            let live = !st.mirror.restrict(&[(p.op.iova, p.op.end())]).is_empty();
            if p.ordered || (live && !idle) {
                waits.extend(p.waits.iter().copied());
                must_wait.push((p.op.iova, p.op.end()));
            }
        }
        let (mut map_ops, mut wait_ops) = (Vec::new(), Vec::new());
        for op in planned {
            if must_wait.iter().any(|&(s, e)| op.iova < e && s < op.end()) {
                wait_ops.push(op);
            } else {
                map_ops.push(op);
            }
        }
        // The wait queue must also follow the map jobs that made what it changes.
        for op in &wait_ops {
            for (_, (_, q, point)) in overlapping(&st.mapped_by, op.iova, op.end()) {
                if q == Queue::Map && point > st.done[qi(q)] {
                    waits.push(SyncPoint {
                        handle: self.timeline(q),
                        point,
                    });
                }
            }
        }
        waits.sort_unstable();
        waits.dedup();
        let signals = std::mem::take(&mut st.pending_signals);
        // A batch waiting for what an earlier batch of this flush signals (vkQueueBindSparse's
        // chained semaphores) is already ordered after it on the wait queue; a job waiting for
        // its own signal point would be refused (EINVAL: no fence at that point yet).
        waits.retain(|w| !signals.contains(w));

        // Plan the jobs now (points, mirror, who-mapped-what), send them in order as the
        // kernel's throttle admits them.
        let mut planned_jobs: Vec<PlannedJob> = Vec::new();
        let map_jobs = split(&map_ops, self.budget_pages);
        let mut wait_jobs = split(&wait_ops, self.budget_pages);
        if wait_jobs.is_empty() && (!signals.is_empty() || !waits.is_empty()) {
            wait_jobs.push(vec![]); // a pure sync point carrying the batch's fences
        }
        for (q, jobs) in [(Queue::Map, map_jobs), (Queue::Wait, wait_jobs)] {
            let n = jobs.len();
            for (i, ops) in jobs.into_iter().enumerate() {
                st.points[qi(q)] += 1;
                let point = st.points[qi(q)];
                let mut job_signals = vec![SyncPoint {
                    handle: self.timeline(q),
                    point,
                }];
                if q == Queue::Wait && i + 1 == n {
                    job_signals.extend_from_slice(&signals);
                }
                let job_waits = if q == Queue::Wait && i == 0 {
                    waits.clone()
                } else {
                    vec![]
                };
                for op in &ops {
                    Self::commit(&mut st, op, q, point);
                }
                planned_jobs.push((q, point, ops.iter().map(|o| (o.iova, o.end())).collect()));
                let pages = job_pages(&ops);
                st.backlog.push_back(Job {
                    queue: q,
                    point,
                    ops,
                    waits: job_waits,
                    signals: job_signals,
                    pages,
                });
            }
        }
        // A freed range returns after the job that unmapped it; one nothing had mapped (its map
        // was cancelled before any flush) returns at once.
        for (iova, range_B) in frees {
            let job = planned_jobs
                .iter()
                .rev()
                .find(|(_, _, r)| r.iter().any(|&(s, e)| iova < e && s < iova + range_B));
            let fence = job.map(|&(q, point, _)| SyncPoint {
                handle: self.timeline(q),
                point,
            });
            st.released.push(Released {
                iova,
                range_B,
                fence,
            });
        }
        // Recorded before sending: a send refused with ENOMEM keeps its job in the backlog, and
        // the ranges it unmaps still return (after its point, which only that job signals).
        self.drain(k, &mut st, block)?;
        Ok(std::mem::take(&mut st.released))
    }

    /// Sends planned jobs in order. The kernel admits a job only while at most 1024 preallocated
    /// pages are in flight and otherwise blocks the ioctl; the winsys never lets it: a job that
    /// would stall waits in the backlog (`block` false: for a later call) or the caller waits for
    /// the oldest job in flight first (`block` true), counted in `BindStats::throttle_waits`.
    fn drain(&self, k: &dyn Kernel, st: &mut State, block: bool) -> Result<(), BindError> {
        let in_flight = Self::in_flight_pages;
        while !st.backlog.is_empty() {
            if in_flight(st) > KERNEL_THROTTLE_PAGES {
                self.refresh_done(k, st)?;
            }
            while in_flight(st) > KERNEL_THROTTLE_PAGES {
                if !block {
                    return Ok(());
                }
                let &(q, point, _) = st.in_flight.front().expect("in flight is not empty");
                st.stats.throttle_waits += 1;
                let p = SyncPoint {
                    handle: self.timeline(q),
                    point,
                };
                ioctl::syncobj_timeline_wait(k, &[p], i64::MAX).map_err(BindError::Kernel)?;
                st.done[qi(q)] = st.done[qi(q)].max(point);
                st.in_flight.pop_front();
            }
            let mut job = st.backlog.pop_front().expect("not empty");
            let mut sent = 0;
            let r = self.send(
                k,
                st,
                job.queue,
                &job.ops,
                &job.waits,
                &job.signals,
                &mut sent,
            );
            if let Err(e) = r {
                if e.changed_nothing() && st.lost.is_none() {
                    // A refused single op (the ioctl, its pinning or its page-table
                    // preallocation) changed nothing in the kernel's VM, which stays usable
                    // (spec/kernel.md "VM_BIND"). The mirror already holds the whole job: its
                    // unsent ops stay first in the backlog and go out with the next flush or
                    // submit, which sends nothing before them. The sent pieces consumed the
                    // in-fences; the timeline point is signalled by the last piece only.
                    self.account(st, &job.ops[..sent], job.queue, job.point);
                    job.ops.drain(..sent);
                    if sent > 0 {
                        job.waits.clear();
                    }
                    let enomem = matches!(&e, BindError::Kernel(ke) if ke.errno == Errno::ENOMEM);
                    if let Some(&op) = job.ops.first().filter(|op| enomem && !op.is_unmap()) {
                        let n = match st.refused {
                            Some((o, n)) if o == op => n + 1,
                            _ => 1,
                        };
                        st.refused = Some((op, n));
                        if n >= MAP_REFUSALS_BEFORE_DROP {
                            // Dropped: the range reads as unmapped (a submit there is refused),
                            // the job still goes out to signal its point. So do the other
                            // pieces of that MAP (one per job past the budget), which the kernel
                            // would refuse the same way, each three flushes in a row.
                            job.ops.remove(0);
                            Self::commit(st, &BindOp::unmap(op.iova, op.range_B), job.queue, 0);
                            st.refused = None;
                            job.pages = job_pages(&job.ops);
                            st.backlog.push_front(job);
                            if let Some(handle) = op.handle() {
                                self.drop_unsent_maps(st, Some(handle), (op.iova, u64::MAX));
                            }
                            return Err(e);
                        }
                    }
                    job.pages = job_pages(&job.ops);
                    st.backlog.push_front(job);
                    return Err(e);
                }
                // The mirror already holds this job: the VM's state is unknown from here on.
                if st.lost.is_none() {
                    let report = Box::new(LossReport {
                        call: format!(
                            "{e} (a planned bind job was refused; the VM state is unknown)"
                        ),
                        recent_ops: st.log.iter().map(Logged::line).collect(),
                        devcoredump: k.devcoredump(),
                    });
                    st.lost = Some(report);
                }
                st.backlog.clear();
                return Err(e);
            }
            st.refused = None;
            st.stats.jobs += 1;
            st.stats.prealloc_pages += job.pages;
            st.in_flight.push_back((job.queue, job.point, job.pages));
            self.account(st, &job.ops, job.queue, job.point);
        }
        Ok(())
    }

    /// Counts and logs `ops` the kernel took as part of job `point` on `q`.
    fn account(&self, st: &mut State, ops: &[BindOp], q: Queue, point: u64) {
        st.stats.ops_sent += ops.len() as u64;
        for &op in ops {
            let line = Logged {
                op,
                queue: self.queue(q),
                point,
            };
            Self::log(st, line);
        }
    }

    /// Records a sent op in the mirror and in the map of who mapped what.
    fn commit(st: &mut State, op: &BindOp, q: Queue, point: u64) {
        st.mirror.apply(op);
        let stale: Vec<u64> = overlapping(&st.mapped_by, op.iova, op.end())
            .map(|(s, _)| s)
            .collect();
        for s in stale {
            let (end, oq, opoint) = st.mapped_by.remove(&s).expect("listed above");
            if s < op.iova {
                st.mapped_by.insert(s, (op.iova, oq, opoint));
            }
            if end > op.end() {
                st.mapped_by.insert(op.end(), (end, oq, opoint));
            }
        }
        if !op.is_unmap() {
            st.mapped_by.insert(op.iova, (op.end(), q, point));
        }
    }

    /// The bind points a submit touching `ranges` must wait for (flushing first if a pending op
    /// touches them): at most one per queue, the highest not yet known to be done.
    ///
    /// A range that wraps past 2^64 is EINVAL, before anything is flushed.
    pub fn waits_for(
        &self,
        k: &dyn Kernel,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<SyncPoint>, BindError> {
        if let Some(&(s, len)) = ranges
            .iter()
            .find(|&&(s, len)| s.checked_add(len).is_none())
        {
            return Err(BindError::Kernel(KernelError {
                errno: Errno::EINVAL,
                call: format!("submit touching {s:#x}+{len:#x}: the range wraps past 2^64"),
            }));
        }
        let touches = {
            let st = self.lock();
            st.pending.iter().any(|p| {
                ranges
                    .iter()
                    .any(|&(s, len)| p.op.iova < s.saturating_add(len) && s < p.op.end())
            })
        };
        if touches {
            // What this flush releases is kept for the caller (`take_released`). The flush took
            // the whole list, so it goes back as it was: extending an empty list by the taken one
            // copied every range released since the caller last looked, at every submit.
            let released = self.flush_ready(k)?;
            let mut st = self.lock();
            let newer = std::mem::replace(&mut st.released, released);
            st.released.extend(newer);
        }
        {
            // A submit may only wait for points that exist: send whatever is still held back.
            let mut st = self.lock();
            self.drain(k, &mut st, true)?;
        }
        let st = self.lock();
        let mut best = [0u64; 2];
        // A range covering every mapping (a driver that keeps its whole VM resident says so with
        // the whole address range) waits for the last point of each queue: O(1) instead of a
        // walk over every mapping, and the same waits (mappings never overlap, so the first and
        // the last by address bound them all).
        let span = st
            .mapped_by
            .first_key_value()
            .zip(st.mapped_by.last_key_value())
            .map(|((&first, _), (_, &(end, _, _)))| (first, end));
        let covers_all = |&(s, len): &(u64, u64)| {
            span.is_some_and(|(first, end)| s <= first && s.saturating_add(len) >= end)
        };
        if ranges.iter().any(covers_all) {
            for q in [Queue::Map, Queue::Wait] {
                if st.points[qi(q)] > st.done[qi(q)] {
                    best[qi(q)] = st.points[qi(q)];
                }
            }
        }
        for &(s, len) in ranges.iter().filter(|r| !covers_all(r)) {
            for (_, (_, q, point)) in overlapping(&st.mapped_by, s, s.saturating_add(len)) {
                if point > st.done[qi(q)] {
                    best[qi(q)] = best[qi(q)].max(point);
                }
            }
        }
        Ok([Queue::Map, Queue::Wait]
            .iter()
            .filter(|&&q| best[qi(q)] > 0)
            .map(|&q| SyncPoint {
                handle: self.timeline(q),
                point: best[qi(q)],
            })
            .collect())
    }

    /// A VM_BIND-mode submit of `cmds` (GPU address, size) on `queue_id` that may access `uses`
    /// (address, size) ranges: waits for their bind jobs and for `waits`, signals `signals`.
    /// Returns the queue seqno.
    pub fn submit(
        &self,
        k: &dyn Kernel,
        queue_id: u32,
        cmds: &[(u64, u32)],
        uses: &[(u64, u64)],
        waits: &[SyncPoint],
        signals: &[SyncPoint],
    ) -> Result<u32, BindError> {
        let fences = Fences {
            wait: waits,
            signal: signals,
            ..Default::default()
        };
        self.submit_with(k, queue_id, cmds, uses, fences)
            .map(|(seqno, _)| seqno)
    }

    /// [`Self::submit`] with every fence the kernel offers: syncobjs (binary or timeline points),
    /// an in-fence sync file and, if asked, an out-fence sync file.
    pub fn submit_with(
        &self,
        k: &dyn Kernel,
        queue_id: u32,
        cmds: &[(u64, u32)],
        uses: &[(u64, u64)],
        fences: Fences<'_>,
    ) -> Result<(u32, Option<std::os::fd::OwnedFd>), BindError> {
        let mut all_uses: Vec<(u64, u64)> = uses.to_vec();
        all_uses.extend(cmds.iter().map(|&(a, s)| (a, s as u64)));
        if let Some(&(iova, len_B)) = all_uses
            .iter()
            .find(|&&(iova, len_B)| iova.checked_add(len_B).is_none())
        {
            return Err(BindError::Kernel(KernelError {
                errno: Errno::EINVAL,
                call: format!("submit: range {iova:#x}+{len_B:#x} overflows the address space"),
            }));
        }
        let mut w = self.waits_for(k, &all_uses)?;
        let mut st = self.lock();
        // The binds this submit touches are sent by now, so the mirror is what the GPU will see,
        // less the unmaps of freed buffers held back for their users. A command buffer outside
        // that is a driver bug that would fault and cost the whole VM: refuse it instead.
        let live = |&&(iova, size_B): &&(u64, u32)| {
            let end = iova.saturating_add(u64::from(size_B).max(1));
            st.mirror.covers(iova, size_B.into())
                && !st
                    .pending
                    .iter()
                    .any(|p| p.op.is_unmap() && p.op.iova < end && iova < p.op.end())
        };
        if let Some(&(iova, size_B)) = cmds.iter().find(|c| !live(c)) {
            return Err(BindError::Kernel(KernelError {
                errno: Errno::EINVAL,
                call: format!(
                    "submit: command buffer {iova:#x}+{size_B:#x} is outside every live mapping \
                     (the GPU would fault and the VM would be lost)"
                ),
            }));
        }
        st.stats.submit_bind_waits += w.len() as u64;
        st.stats.submits += 1;
        w.extend_from_slice(fences.wait);
        match ioctl::submit_by_iova(k, queue_id, cmds, Fences { wait: &w, ..fences }) {
            Ok(r) => Ok(r),
            Err(e) if e.errno == Errno::EPIPE => Err(self.lost(k, &mut st, e.call)),
            Err(e) => Err(BindError::Kernel(e)),
        }
    }

    /// The timelines (map queue, wait queue): points of both signal as jobs complete.
    /// Both 0 while no job was ever sent.
    pub fn timelines(&self) -> [u32; 2] {
        self.made.get().map_or([0; 2], |m| m.timelines)
    }

    /// Ranges released by flushes the caller did not make (a submit's), with their fences.
    pub fn take_released(&self) -> Vec<Released> {
        std::mem::take(&mut self.lock().released)
    }

    /// The last point of each bind timeline sent so far: waiting for them waits for every job
    /// sent (a job still in the backlog has no fence yet).
    pub fn sent_points(&self) -> Vec<SyncPoint> {
        let points = self.lock().points;
        let Some(made) = self.made.get() else {
            return Vec::new();
        };
        (0..2)
            .filter(|&i| points[i] > 0)
            .map(|i| SyncPoint {
                handle: made.timelines[i],
                point: points[i],
            })
            .collect()
    }

    /// Learns how far both timelines are (one query each, only for a queue with jobs not known
    /// done: none once everything sent is known complete) and returns (timeline, last done point)
    /// of each queue that exists.
    pub fn done_points(&self, k: &dyn Kernel) -> Result<Vec<(u32, u64)>, BindError> {
        let mut st = self.lock();
        self.refresh_done(k, &mut st)?;
        Ok(self.made.get().map_or(vec![], |m| {
            vec![(m.timelines[0], st.done[0]), (m.timelines[1], st.done[1])]
        }))
    }

    /// The last point assigned on each timeline (map queue, wait queue).
    pub fn last_points(&self) -> [u64; 2] {
        self.lock().points
    }
}
