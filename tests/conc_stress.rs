//! Concurrency stress (issue 14, "Concurrency"): 4 threads on one VM_BIND device of the kernel
//! model, each doing a random mix of the driver's calls: alloc (a GPU buffer, or a private buffer
//! object that may come from the cache), free, export, import, map (a CPU map, or a buffer object
//! into the VM) and unmap, bind (flushing the queued VM_BINDs), submit and wait. The threads share the device's
//! handle table, buffer cache and fence book, the VM's bind queue and address allocator, and the
//! dma-bufs they export (any thread may import any of them).
//!
//! At the end, with every thread's remaining buffers still alive and everything flushed:
//! - the model's VMA list equals the winsys's mirror (`BindVm::mapped`), and both equal the buffers
//!   the threads hold, address for address and handle for handle;
//! - the address allocator's live ranges are exactly those buffers' ranges (nothing deferred);
//!
//! After freeing everything: no VMA, an empty mirror, a fully free allocator, no double
//! GEM_CLOSE, no submit that faulted, and an empty leak report.
//!
//! Operations: `MSMWS_CONC_STRESS_OPS` in total (default 20,000). The 1,000,000-operation run
//! is `MSMWS_CONC_STRESS_OPS=1000000 cargo test --release --test conc_stress` (ci/test runs it;
//! docs/reliability.md has the times).

mod bo_common;

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bo_common::{device_on, sim_with};
use msm_winsys::bind::{GpuBuffer, GpuVm, Target};
use msm_winsys::bo::{Bo, BoFlags};
use msm_winsys::iova::Fence;
use msm_winsys::kernel::ioctl::{self, SyncPoint};
use msm_winsys::sim::SimOptions;
use msm_winsys::uapi::MSM_BO_WC;
use msm_winsys::{Device, Errno, ErrnoError, VmMode};
use proptest::prelude::Rng as _;
use proptest::test_runner::{RngAlgorithm, TestRng};

const THREADS: usize = 4;
/// Buffers a thread keeps at most of each kind, so the VM stays small and every op finds work.
const MAX_HELD: usize = 24;
const MAX_BOS: usize = 6;
/// dma-bufs in the shared pool.
const MAX_FDS: usize = 8;

/// The kinds of operation, for the per-kind counts the test prints.
const KINDS: [&str; 9] = [
    "alloc", "free", "export", "import", "map", "unmap", "bind", "submit", "wait",
];

/// A fixed random sequence per thread (proptest's generator, seeded by the thread's number).
struct Rng(TestRng);

impl Rng {
    fn new(thread: usize) -> Rng {
        let mut seed = [0x5a; 32];
        seed[0] = thread as u8;
        Rng(TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
    }
    fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }
}

/// A GPU buffer a thread owns and the timeline point of the last submit that used it (0: none).
#[derive(Clone, Copy)]
struct Held {
    buf: GpuBuffer,
    last_use: u64,
}

struct Worker {
    dev: Arc<Device>,
    vm: Arc<GpuVm>,
    /// dma-bufs any thread may import.
    fds: Arc<Mutex<Vec<OwnedFd>>>,
    rng: Rng,
    queue: u32,
    /// This thread's timeline syncobj: submit n signals point n.
    timeline: u32,
    point: u64,
    last_seqno: u32,
    /// Buffers from `GpuVm::create_buffer`.
    bufs: Vec<Held>,
    /// Buffer objects (new private, new shared, imported).
    bos: Vec<Bo>,
    /// Buffer objects mapped into the VM with `map_bo`.
    mapped: Vec<(Held, Bo)>,
    counts: [u64; KINDS.len()],
}

impl Worker {
    fn users(&self, h: &Held) -> Vec<SyncPoint> {
        if h.last_use == 0 {
            return vec![];
        }
        vec![SyncPoint {
            handle: self.timeline,
            point: h.last_use,
        }]
    }

    fn step(&mut self) {
        let k = self.dev.kernel();
        let kind = self.rng.below(KINDS.len());
        match KINDS[kind] {
            "alloc" => {
                let size_B = 4096 * (1 + self.rng.below(16) as u64);
                if self.rng.below(4) == 0 {
                    // A private buffer object: the cache may hand out one another thread freed.
                    if self.bos.len() < MAX_BOS {
                        self.bos
                            .push(Bo::new(&self.dev, size_B, BoFlags::WC).unwrap());
                    }
                } else if self.bufs.len() < MAX_HELD {
                    let buf = self.vm.create_buffer(k, size_B, MSM_BO_WC).unwrap();
                    self.bufs.push(Held { buf, last_use: 0 });
                }
            }
            "free" => {
                if !self.bufs.is_empty() {
                    let h = self.bufs.swap_remove(self.rng.below(self.bufs.len()));
                    let users = self.users(&h);
                    self.vm.free_buffer(k, h.buf, &users, false).unwrap();
                } else if !self.bos.is_empty() {
                    self.bos.swap_remove(self.rng.below(self.bos.len()));
                }
            }
            "export" => {
                let bo = match self.bos.len() {
                    0 => {
                        let size_B = 4096 * (1 + self.rng.below(8) as u64);
                        let bo = Bo::new(&self.dev, size_B, BoFlags::WC | BoFlags::SHARED);
                        self.bos.push(bo.unwrap());
                        self.bos.last().unwrap()
                    }
                    n => &self.bos[self.rng.below(n)],
                };
                let fd = bo.export_dmabuf().unwrap();
                let mut fds = self.fds.lock().unwrap();
                if fds.len() == MAX_FDS {
                    // The dma-buf may die here, or live on in other threads' imports.
                    fds.swap_remove(self.rng.below(MAX_FDS));
                }
                fds.push(fd);
            }
            "import" => {
                let fd = {
                    let fds = self.fds.lock().unwrap();
                    if fds.is_empty() {
                        return;
                    }
                    fds[self.rng.below(fds.len())].try_clone().unwrap()
                };
                let bo = Bo::import_dmabuf(&self.dev, fd.as_fd()).unwrap();
                if self.bos.len() == MAX_BOS {
                    self.bos.swap_remove(self.rng.below(MAX_BOS));
                }
                self.bos.push(bo);
            }
            "map" if self.rng.below(2) == 0 => {
                // A CPU map of a buffer this thread holds: written and read back.
                let handle = match (self.bufs.len(), self.bos.len()) {
                    (0, 0) => return,
                    (0, n) => self.bos[self.rng.below(n)].handle(),
                    (n, _) => self.bufs[self.rng.below(n)].buf.handle,
                };
                let mut map = ioctl::gem_map(k, handle, 4096).unwrap();
                map[0] = kind as u8;
                assert_eq!(map[0], kind as u8);
            }
            "map" => {
                if !self.bos.is_empty() && self.mapped.len() < MAX_HELD {
                    let bo = self.bos[self.rng.below(self.bos.len())].clone();
                    let buf = match self.vm.map_bo(k, &bo) {
                        Ok(buf) => buf,
                        // Without VM_BIND an object has one address per VM: a buffer this or
                        // another thread mapped already is refused (gpu_vm_modes.rs).
                        Err(e) if self.vm.mode() != VmMode::VmBind && e.errno() == Errno::EBUSY => {
                            return
                        }
                        Err(e) => panic!("{e}"),
                    };
                    self.mapped.push((Held { buf, last_use: 0 }, bo));
                }
            }
            "unmap" => {
                if !self.mapped.is_empty() {
                    let (h, _bo) = self.mapped.swap_remove(self.rng.below(self.mapped.len()));
                    let users = self.users(&h);
                    self.vm.unmap_bo(k, h.buf, &users).unwrap();
                }
            }
            "bind" => {
                // The queued MAPs and UNMAPs of every thread go out with whoever flushes.
                if self.rng.below(4) == 0 {
                    self.vm.flush(k).unwrap();
                } else {
                    self.vm.flush_ready(k).unwrap();
                }
            }
            "submit" => {
                let n = self.bufs.len() + self.mapped.len();
                if n == 0 {
                    return;
                }
                self.point += 1;
                let point = self.point;
                let mut uses = Vec::new();
                for _ in 0..1 + self.rng.below(3) {
                    let i = self.rng.below(n);
                    let h = if i < self.bufs.len() {
                        &mut self.bufs[i]
                    } else {
                        let (h, bo) = &mut self.mapped[i - self.bufs.len()];
                        // The cache must not hand this object out before the submit is done.
                        bo.add_fence(Fence::Syncobj {
                            handle: self.timeline,
                            point,
                        });
                        h
                    };
                    h.last_use = point;
                    uses.push(h.buf);
                }
                let cmds = [(uses[0].iova, 64)];
                let signal = [SyncPoint {
                    handle: self.timeline,
                    point,
                }];
                self.last_seqno = self
                    .vm
                    .submit(k, self.queue, &cmds, &uses, &[], &signal)
                    .unwrap();
            }
            "wait" => {
                if self.point == 0 {
                    return;
                }
                if self.rng.below(2) == 0 {
                    let deadline = ioctl::monotonic_now_ns() + 10_000_000_000;
                    let p = SyncPoint {
                        handle: self.timeline,
                        point: self.point,
                    };
                    ioctl::syncobj_timeline_wait(k, &[p], deadline as i64).unwrap();
                    // What a driver does after a wait: tell the fence book.
                    self.dev
                        .bo_manager()
                        .timelines()
                        .signal_syncobj(self.timeline, self.point);
                } else {
                    ioctl::wait_fence(k, self.queue, self.last_seqno, 10_000_000_000).unwrap();
                }
            }
            _ => unreachable!(),
        }
        self.counts[kind] += 1;
    }
}

/// A VM's mappings as maximal runs (iova, end, handle, object offset): the kernel keeps each
/// MAP as one VMA, the mirror may merge neighbours; what each address points at is what counts.
fn runs(mut v: Vec<(u64, u64, u32, u64)>) -> Vec<(u64, u64, u32, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64, u32, u64)> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(l) if l.1 == r.0 && l.2 == r.2 && l.3 + (l.1 - l.0) == r.3 => l.1 = r.1,
            _ => out.push(r),
        }
    }
    out
}

/// `[start, end)` minus `holes`, as (iova, end) runs.
fn complement(start: u64, end: u64, holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = start;
    for &(h, len) in holes {
        if h > at {
            out.push((at, h));
        }
        at = h + len;
    }
    if at < end {
        out.push((at, end));
    }
    out
}

/// Ranges merged into maximal runs.
fn merged(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(l) if l.1 == r.0 => l.1 = r.1,
            _ => out.push(r),
        }
    }
    out
}

#[test]
fn four_threads_alloc_free_share_map_bind_submit_and_wait_on_one_device() {
    stress(SimOptions::default(), VmMode::VmBind);
}

/// The same without VM_BIND (UAPI 1.12: SET_IOVA at allocator addresses, freed buffers kept as
/// zombies until a reclaim pass sees their users done).
#[test]
fn the_same_in_set_iova_mode() {
    let options = SimOptions {
        uapi_minor: 12,
        ..Default::default()
    };
    stress(options, VmMode::UserspaceIova);
}

fn stress(options: SimOptions, mode: VmMode) {
    let total: u64 = std::env::var("MSMWS_CONC_STRESS_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let s = sim_with("a750", options);
    let t = device_on(&s);
    assert_eq!(t.dev.info().mode, mode);
    let k = t.dev.kernel();
    let vm = Arc::new(GpuVm::new(&t.dev).unwrap());
    let fds = Arc::new(Mutex::new(Vec::new()));

    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|n| {
            let mut w = Worker {
                dev: t.dev.clone(),
                vm: vm.clone(),
                fds: fds.clone(),
                rng: Rng::new(n),
                queue: ioctl::submitqueue_new(k, 0, 0).unwrap(),
                timeline: ioctl::syncobj_create(k, false).unwrap(),
                point: 0,
                last_seqno: 0,
                bufs: vec![],
                bos: vec![],
                mapped: vec![],
                counts: [0; KINDS.len()],
            };
            let ops = total / THREADS as u64 + u64::from((n as u64) < total % THREADS as u64);
            std::thread::spawn(move || {
                for _ in 0..ops {
                    w.step();
                }
                w
            })
        })
        .collect();
    let workers: Vec<Worker> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let elapsed = start.elapsed();
    let mut counts = [0u64; KINDS.len()];
    for w in &workers {
        for (c, n) in counts.iter_mut().zip(w.counts) {
            *c += n;
        }
    }
    let done: u64 = counts.iter().sum();
    let per_kind: Vec<String> = KINDS
        .iter()
        .zip(counts)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    eprintln!(
        "conc_stress ({}): {THREADS} threads, {total} operations ({done} did something: {}) in \
         {elapsed:.2?}",
        mode.name(),
        per_kind.join(", ")
    );
    let table = t.dev.bo_manager().stats();
    eprintln!(
        "conc_stress: {} import hits, {} takeovers of a dying buffer's handle, {} GEM_CLOSEs; \
         {:?}; {:?}",
        table.import_hits,
        table.import_takeovers,
        table.closes,
        t.dev.bo_manager().cache_stats(),
        vm.bind_vm().map(|b| b.stats())
    );

    // Everything queued goes out, every job runs, every timeline is published.
    vm.flush(k).unwrap();
    assert!(s.gpu_wait_idle(Duration::from_secs(30)));
    vm.flush(k).unwrap();
    let heap = vm.va_heap().unwrap();
    heap.reclaim();

    // The model's VMAs, the winsys's mirror and the buffers the threads hold agree.
    let held: Vec<(u64, u64, u32, u64)> = workers
        .iter()
        .flat_map(|w| w.bufs.iter().chain(w.mapped.iter().map(|(h, _)| h)))
        .map(|h| (h.buf.iova, h.buf.iova + h.buf.size_B, h.buf.handle, 0))
        .collect();
    let model: Vec<(u64, u64, u32, u64)> = t
        .file
        .vmas()
        .iter()
        .map(|v| {
            assert!(!v.null, "no MAP_NULL was queued: {v:?}");
            let handle = v.handle.expect("every mapped object still has its handle");
            (v.iova, v.iova + v.range_B, handle, v.obj_offset_B)
        })
        .collect();
    if let Some(bind) = vm.bind_vm() {
        let mirror: Vec<(u64, u64, u32, u64)> = bind
            .mapped()
            .iter()
            .map(|op| match op.target {
                Some(Target::Bo { handle, offset_B }) => (op.iova, op.end(), handle, offset_B),
                other => panic!("the mirror maps {other:?} at {:#x}", op.iova),
            })
            .collect();
        assert_eq!(runs(model.clone()), runs(mirror), "model VMAs vs mirror");
    } else {
        assert_eq!(vm.zombies(), 0, "every freed buffer was reclaimed");
    }
    assert_eq!(
        runs(model),
        runs(held.clone()),
        "model VMAs vs held buffers"
    );
    let info = t.dev.info();
    assert_eq!(heap.deferred_ranges(), vec![], "every fence was published");
    assert_eq!(
        merged(complement(
            info.va_start,
            info.va_start + info.va_size_B,
            &heap.holes()
        )),
        merged(held.iter().map(|h| (h.0, h.1)).collect()),
        "allocator's live ranges vs held buffers"
    );
    heap.check_invariants().unwrap();

    // Free everything; the VM, the mirror and the allocator end empty.
    for w in workers {
        for h in &w.bufs {
            vm.free_buffer(k, h.buf, &w.users(h), false).unwrap();
        }
        for (h, _) in &w.mapped {
            vm.unmap_bo(k, h.buf, &w.users(h)).unwrap();
        }
        ioctl::submitqueue_close(k, w.queue).unwrap();
        drop(w.bos);
        drop(w.mapped);
        vm.flush(k).unwrap();
        ioctl::syncobj_destroy(k, w.timeline).unwrap();
    }
    assert!(s.gpu_wait_idle(Duration::from_secs(30)));
    vm.flush(k).unwrap();
    heap.reclaim();
    let left = t.file.vmas();
    assert!(left.is_empty(), "VMAs left: {left:?}");
    assert!(vm.bind_vm().is_none_or(|b| b.mapped().is_empty()));
    assert_eq!(vm.zombies(), 0);
    assert_eq!(heap.free_size(), info.va_size_B);
    assert!(
        s.devcoredumps().is_empty(),
        "a submit faulted: {:?}",
        s.devcoredumps()
    );
    Arc::try_unwrap(vm)
        .expect("the threads are done")
        .destroy(k)
        .unwrap();
    assert!(s.gpu_wait_idle(Duration::from_secs(30)));
    drop(fds);
    let (leaks, double_closes) = t.finish();
    assert_eq!(
        double_closes, 0,
        "GEM_CLOSE of a handle the file does not have"
    );
    assert!(leaks.is_empty(), "{leaks:?}");
}
