//! The simulated GPU: each submitqueue runs its jobs in order once their in-fences have signalled,
//! checks every address the job touches against its VM, and raises GPU faults (FAULTS counters and
//! a devcoredump) for unmapped ones.
//!
//! Two clocks: `Clock::Manual`, where nothing runs until a test calls [`Gpu::step`] or
//! [`Gpu::run_until_idle`], and `Clock::Async`, where a background thread runs each job `latency`
//! after it became runnable (for race tests and for winsys users that just want a device).
//!
//! Owns: queued jobs, device-wide fault counters and captured devcoredumps.
//! Locks: `Gpu::state` (a leaf for submitters: taken after `SimFile::ctx`); jobs are executed with
//! it released, so fence callbacks may submit or kick.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::fence::Fence;
use super::gem::GemObject;
use super::queue::Queue;
use super::vm::Vm;
use crate::Errno;

/// How simulated time passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Jobs run only when a test steps the GPU.
    Manual,
    /// A background thread runs each job `latency` after it became runnable.
    Async { latency: Duration },
}

/// One submit as the GPU sees it.
#[derive(Debug)]
pub struct Job {
    pub queue: Arc<Queue>,
    pub vm: Arc<Vm>,
    pub seqno: u32,
    /// Dependencies: explicit in-fences and implicit-sync fences.
    pub in_fences: Vec<Arc<Fence>>,
    /// Command buffers: (GPU address, size in bytes).
    pub cmds: Vec<(u64, u64)>,
    /// Extra ranges the job reads or writes (declared by tests through the debug API).
    pub touches: Vec<(u64, u64)>,
    /// Objects kept alive and pinned until the job retires.
    pub objects: Vec<Arc<GemObject>>,
    pub out: Arc<Fence>,
    /// The submitting task (COMM / CMDLINE overrides) for the devcoredump.
    pub comm: String,
    pub cmdline: String,
    /// When it became runnable (Async clock).
    ready_at: Option<Instant>,
    /// The scheduler lane it runs on, in order: its queue's, or the VM's for bind jobs (all
    /// VM_BIND queues of a file share one scheduler).
    pub lane: u64,
    /// A VM_BIND job: page-table steps instead of commands.
    pub bind: Option<super::vm_bind::BindWork>,
}

impl Job {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        queue: Arc<Queue>,
        vm: Arc<Vm>,
        seqno: u32,
        in_fences: Vec<Arc<Fence>>,
        cmds: Vec<(u64, u64)>,
        touches: Vec<(u64, u64)>,
        objects: Vec<Arc<GemObject>>,
        out: Arc<Fence>,
        comm: String,
        cmdline: String,
    ) -> Job {
        Job {
            lane: queue.key,
            bind: None,
            queue,
            vm,
            seqno,
            in_fences,
            cmds,
            touches,
            objects,
            out,
            comm,
            cmdline,
            ready_at: None,
        }
    }

    fn runnable(&self) -> bool {
        self.in_fences.iter().all(|f| f.is_signalled())
    }
}

/// What a GPU fault left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Devcoredump {
    pub queue_id: u32,
    pub seqno: u32,
    pub iova: u64,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct GpuState {
    /// Per submitqueue, jobs in submission order (keyed by the queue's unique key).
    queues: Vec<(u64, VecDeque<Job>)>,
    /// Faults not attributed to a VM.
    pub global_faults: u64,
    pub suspends: u64,
    pub devcoredumps: Vec<Devcoredump>,
    shutdown: bool,
    /// Jobs taken off their queue and still executing: they count as busy until done, so
    /// waiting for an idle GPU also waits for the job that is running (its fences, the
    /// preallocated pages it releases).
    running: usize,
}

#[derive(Debug)]
pub struct Gpu {
    pub clock: Clock,
    pub chip_name: &'static str,
    state: Mutex<GpuState>,
    cv: Condvar,
}

impl Gpu {
    pub fn new(clock: Clock, chip_name: &'static str) -> Arc<Gpu> {
        let gpu = Arc::new(Gpu {
            clock,
            chip_name,
            state: Mutex::default(),
            cv: Condvar::new(),
        });
        if let Clock::Async { latency } = clock {
            let weak = Arc::downgrade(&gpu);
            std::thread::Builder::new()
                .name("msm-sim-gpu".into())
                .spawn(move || Gpu::run_async(weak, latency))
                .expect("spawn the model GPU thread");
        }
        gpu
    }

    pub fn lock(&self) -> MutexGuard<'_, GpuState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a job; it runs after the jobs queued before it on the same queue.
    pub fn push(self: &Arc<Gpu>, job: Job) {
        // Wake the GPU thread whenever a dependency signals.
        for f in &job.in_fences {
            let gpu = Arc::downgrade(self);
            f.on_signal(move || {
                if let Some(g) = gpu.upgrade() {
                    g.cv.notify_all();
                }
            });
        }
        let key = job.lane;
        let mut st = self.lock();
        match st.queues.iter_mut().find(|(k, _)| *k == key) {
            Some((_, q)) => q.push_back(job),
            None => st.queues.push((key, VecDeque::from([job]))),
        }
        drop(st);
        self.cv.notify_all();
    }

    /// Takes the first runnable head-of-queue job (the oldest queue first).
    fn take_runnable(
        st: &mut GpuState,
        now: Instant,
        latency: Duration,
    ) -> (Option<Job>, Option<Instant>) {
        let mut next_due: Option<Instant> = None;
        for (_, q) in st.queues.iter_mut() {
            let Some(head) = q.front_mut() else { continue };
            if !head.runnable() {
                continue;
            }
            let ready = *head.ready_at.get_or_insert(now);
            let due = ready + latency;
            if due <= now {
                return (q.pop_front(), None);
            }
            next_due = Some(next_due.map_or(due, |d: Instant| d.min(due)));
        }
        (None, next_due)
    }

    /// Runs one runnable job, if any (Manual clock). Returns whether one ran.
    pub fn step(self: &Arc<Gpu>) -> bool {
        let job = {
            let mut st = self.lock();
            let job = Gpu::take_runnable(&mut st, Instant::now(), Duration::ZERO).0;
            st.running += usize::from(job.is_some());
            job
        };
        match job {
            Some(job) => {
                self.execute(job);
                self.lock().running -= 1;
                true
            }
            None => false,
        }
    }

    /// Runs jobs until none is runnable (Manual clock). Returns how many ran.
    pub fn run_until_idle(self: &Arc<Gpu>) -> usize {
        let mut n = 0;
        while self.step() {
            n += 1;
        }
        n
    }

    /// Jobs queued and not yet run.
    pub fn pending(&self) -> usize {
        self.lock().queues.iter().map(|(_, q)| q.len()).sum()
    }

    /// Jobs queued or still executing (what waiting for an idle GPU waits for).
    pub fn busy(&self) -> usize {
        let st = self.lock();
        st.queues.iter().map(|(_, q)| q.len()).sum::<usize>() + st.running
    }

    fn run_async(gpu: Weak<Gpu>, latency: Duration) {
        loop {
            let Some(g) = gpu.upgrade() else { return };
            let mut st = g.lock();
            if st.shutdown {
                return;
            }
            let (job, next_due) = Gpu::take_runnable(&mut st, Instant::now(), latency);
            match job {
                Some(job) => {
                    st.running += 1;
                    drop(st);
                    g.execute(job);
                    g.lock().running -= 1;
                }
                None => {
                    // Sleep until the next job is due, something is pushed or a fence signals;
                    // wake up now and then so a dropped device lets the thread end.
                    let wait = next_due.map_or(Duration::from_millis(50), |d| {
                        d.saturating_duration_since(Instant::now())
                    });
                    let _ = g.cv.wait_timeout(st, wait.min(Duration::from_millis(50)));
                }
            }
        }
    }

    /// Stops the background thread (device teardown).
    pub fn shutdown(&self) {
        let never_ran: Vec<Job> = {
            let mut st = self.lock();
            st.shutdown = true;
            st.queues.drain(..).flat_map(|(_, q)| q).collect()
        };
        self.cv.notify_all();
        // The device is going away: jobs that never ran are cancelled, as the scheduler does at
        // teardown. Their fences signal (ECANCELED), so whatever waits on them (a VM's close,
        // a sync file) lets go instead of holding the VM forever.
        for job in never_ran {
            job.out.signal_error(Errno::ECANCELED);
        }
    }

    /// Runs a job: checks its addresses, raises a fault if one is unmapped, then retires it.
    fn execute(&self, mut job: Job) {
        if let Some(work) = job.bind.take() {
            work.run(&job.vm, &job.out);
            return;
        }
        // Submits to an unusable VM_BIND VM run with no commands.
        let skip = job.vm.vm_bind && job.vm.is_unusable();
        let unmapped = {
            let vm = job.vm.lock();
            job.cmds
                .iter()
                .chain(job.touches.iter())
                .filter(|_| !skip)
                .find(|(iova, len)| !job.vm.gpu_mapped(&vm, *iova, (*len).max(1)))
                .map(|(iova, _)| *iova)
        };
        if let Some(iova) = unmapped {
            job.vm.lock().faults += 1;
            job.queue.fault();
            let text = self.devcoredump_text(&job, iova);
            self.lock().devcoredumps.push(Devcoredump {
                queue_id: job.queue.id,
                seqno: job.seqno,
                iova,
                text,
            });
            job.vm.mark_unusable_if_vm_bind();
            // Recovery retires the faulting submit with an error.
            job.out.signal_error(Errno(libc::EIO));
        } else {
            job.out.signal();
        }
        job.queue.retire(job.seqno);
        for obj in &job.objects {
            obj.lock().pin_count -= 1;
        }
    }

    fn devcoredump_text(&self, job: &Job, iova: u64) -> String {
        let vm = job.vm.lock();
        let mut t = String::new();
        t += "kernel: msm-winsys kernel model\nmodule: msm\n";
        t += &format!("comm: {}\ncmdline: {}\n", job.comm, job.cmdline);
        t += &format!("revision: {}\n", self.chip_name);
        t += &format!("fault-info:\n  - ttbr0=vm{}\n  - iova={:#018x}\n  - dir=READ\n  - type=TRANSLATION\n  - source=CP\n", job.vm.id, iova);
        t += &format!(
            "submit:\n  - queue: {}\n  - seqno: {}\n",
            job.queue.id, job.seqno
        );
        for (i, (a, len)) in job.cmds.iter().enumerate() {
            t += &format!("  - cmd[{i}]: iova={a:#018x} size={len}\n");
        }
        t += "mappings:\n";
        for v in vm.vmas.values() {
            t += &format!(
                "  - {:#018x}-{:#018x} obj={} offset={:#x}\n",
                v.iova,
                v.iova + v.range_B,
                v.obj_id,
                v.obj_offset_B
            );
        }
        t += &vm.log_text();
        t
    }
}
