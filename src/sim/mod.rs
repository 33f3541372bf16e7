//! The msm kernel model: answers the same raw ioctls as the real driver, decoding the same structs
//! and user pointers, errno for errno (spec/kernel.md). It is the only kernel these machines have,
//! so every rule it implements is pinned by a test that asserts the exact errno.
//!
//! Owns: the model device ([`Sim`], shared by all its files), open files ([`SimFile`]), the
//! debug API (GPU stepping, memory pressure, fault injection, devcoredumps, leak reports).
//! Locks, in nesting order (never taken the other way round):
//! 1. `SimFile::ctx` — one file's handles, queues, VM pointer and settings;
//! 2. `Vm::bind_lock` — serialises one VM's VM_BIND ioctls from pin to push (never taken with
//!    `ctx` held);
//!    also at this level, the display state (display.rs, modeset.rs, vblank.rs) — framebuffers,
//!    blobs, the KMS state, vblanks, display VMAs; taken after `ctx`, never with `bind_lock`;
//! 3. `GemObject::state` — one object's name, metadata, madvise state, mappings;
//! 4. leaves: `Vm::inner`, `Queue::state`, `Resv::fences`, the syncobj table, `Gpu::state`,
//!    `SimDevice::{offsets, objects, injections}`, the PRIME registry, a file's event queue,
//!    `Auth::state` (never taken with `ctx` held); `Vm::throttle` (waited on with no other lock
//!    held).
//!
//! No lock is held while waiting on a fence. Each open file has a real file descriptor (an
//! eventfd that polls readable while DRM events are queued, event.rs), so fd passing, dup, close
//! and poll behave as on a device node; dma-bufs and sync files are real fds too.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::c_void;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::kernel::Kernel;
use crate::Errno;
use fdid::FileId;
use gem::GemObject;
use queue::Queue;
use syncobj::SyncobjTable;
use vm::Vm;

mod auth;
mod dispatch;
pub mod display;
mod dumb;
mod event;
pub mod fdid;
pub mod fence;
mod gem;
pub mod gpu;
mod kmalloc;
pub mod kms;
pub mod modeset;
mod param;
mod prime;
pub mod profile;
mod queue;
pub mod resv;
mod submit;
pub mod sync_file;
mod syncobj;
pub mod user;
pub mod vblank;
pub mod vm;
pub mod vm_bind;

pub use auth::Node;
pub use dispatch::ioctl_name;
pub use display::DisplayStats;
pub use event::EVENT_SPACE_B;
pub use gem::MapTarget;
pub use gpu::{Clock, Devcoredump};
pub use profile::{ChipProfile, PROFILES};
pub use vblank::VblankClock;

/// Names of model dma-buf memfds start with this, followed by `<device uid>:<object id>`.
pub(crate) const DMABUF_PREFIX: &str = "msm-sim-bo:";

/// Raises this process's soft limit on open files to its hard limit, once.
///
/// Every model buffer object that is CPU-mapped or exported is a memfd, which a real kernel does
/// not cost its client; without this a client mapping a few thousand buffers would meet EMFILE
/// from the model and never from a device. (Buffers never mapped nor exported cost no fd.)
fn raise_fd_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a struct we own; failure leaves the limit as it was.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    });
}

/// Knobs a test or a user of `msmws` sets on the model device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOptions {
    /// UAPI minor version reported by DRM_IOCTL_VERSION (major is 1). 13 = VM_BIND; older values
    /// hide what came later (HAS_PRR, EN_VM_BIND and AQE need 13).
    pub uapi_minor: u32,
    /// Per-process page tables (an IOMMU that supports them). Without, VA_START/VA_SIZE and
    /// EN_VM_BIND fail with EINVAL and SET_IOVA with EOPNOTSUPP, as on such kernels.
    pub per_process_pgtables: bool,
    /// Whether the caller is `perfmon_capable()` (SET_PARAM SYSPROF).
    pub perfmon_capable: bool,
    /// Whether DRM_CAP_SYNCOBJ_TIMELINE is advertised (kernels from 6.15).
    pub timeline_syncobjs: bool,
    /// Reproduce the pre-v7.1 bug where GET_METADATA returned 0 even when it failed.
    pub get_metadata_returns_0: bool,
    /// How simulated GPU time passes.
    pub clock: Clock,
    /// The msm module parameter `vm_log_shift`: VM_BIND VMs keep a log of `1 << min(shift, 8)`
    /// page-table ops; 0 (the kernel's default) keeps none.
    pub vm_log_shift: u32,
    /// The display `vma_ref` fix (spec/kernel.md "Display (KMS) VM"): a buffer stays mapped in
    /// the display VM while userspace holds a GEM handle or dma-buf of it. `false` models the
    /// kernel before it, which unmapped at every unpin (flip away).
    pub display_vma_ref_fix: bool,
    /// The device drives a display (DRIVER_MODESET, as msm with its DPU on a phone or laptop).
    /// Without (a GPU-only device, e.g. msm's `separate_gpu_kms`), every KMS ioctl is
    /// EOPNOTSUPP and GET_CAP answers only the generic caps.
    pub kms: bool,
    /// fbdev emulation lights the CRTC with a console framebuffer at boot and again when the
    /// last file closes (display.rs).
    pub fbdev_console: bool,
    /// How vblanks happen (modeset.rs).
    pub vblank: VblankClock,
    /// Whether the caller is `capable(CAP_SYS_ADMIN)`: files are authenticated from the start,
    /// and SET_MASTER/DROP_MASTER pass their permission check (auth.rs).
    pub cap_sys_admin: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            uapi_minor: 13,
            per_process_pgtables: true,
            perfmon_capable: false,
            timeline_syncobjs: true,
            get_metadata_returns_0: false,
            clock: Clock::Async {
                latency: Duration::ZERO,
            },
            vm_log_shift: 0,
            display_vma_ref_fix: true,
            kms: true,
            fbdev_console: true,
            vblank: VblankClock::Realtime,
            cap_sys_admin: false,
        }
    }
}

/// Why a model device could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    UnknownProfile(String),
    UnsupportedVersion(u32),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::UnknownProfile(p) => {
                let known: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
                write!(
                    f,
                    "unknown chip profile \"{p}\" (known: {})",
                    known.join(", ")
                )
            }
            SimError::UnsupportedVersion(m) => write!(f, "UAPI 1.{m} is not modelled (6..=13 are)"),
        }
    }
}

impl std::error::Error for SimError {}

impl crate::ErrnoError for SimError {
    fn errno(&self) -> Errno {
        Errno::EINVAL
    }
}

/// Makes the `nth` (1-based) ioctl whose name matches `point` fail with `errno`.
///
/// Points are ioctl names as in `DRM_IOCTL_MSM_<NAME>` / `DRM_IOCTL_<NAME>` (`"GEM_NEW"`,
/// `"VM_BIND"`, `"PRIME_FD_TO_HANDLE"`, ...), `"*"` for any ioctl, or an inner point:
/// `"GEM_INFO:SET_METADATA"` / `"GEM_INFO:GET_METADATA"` (the interruptible object lock, EINTR);
/// for VM_BIND: `"VM_BIND:pin"` (pinning fails: ENOMEM, or EBUSY), `"VM_BIND:prealloc"` (table
/// preallocation fails: ENOMEM), `"VM_BIND:op<N>"` (op N fails while it is applied to the VA tree:
/// the ioctl fails, and for N > 0 the VM becomes unusable), `"VM_BIND:job"` (the job's first
/// page-table map fails when it runs: the VM becomes unusable; the errno is not seen by anyone).
/// Events that are not calls: `"SUBMIT:fault"` (the `nth` submit's job faults when it runs, as if
/// its commands read an unmapped address: a GPU fault, and in VM_BIND mode a lost VM; the errno
/// is not used, and `"*"` rules do not count these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    pub point: String,
    pub nth: u32,
    pub errno: Errno,
}

#[derive(Debug)]
struct InjectionState {
    rule: Injection,
    seen: u32,
    fired: bool,
}

/// What became of one injection rule so far (debug API: a fault-injection run says whether its
/// rule fired, or the program never made that many calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectionStatus {
    pub rule: Injection,
    /// Calls that matched the point (the rule fires at the `nth`).
    pub hits: u32,
    /// Whether the rule's errno was returned (it was the nth hit and no earlier rule took it).
    pub fired: bool,
}

/// One VMA of a file's VM as the debug API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmaInfo {
    pub iova: u64,
    pub range_B: u64,
    /// A MAP_NULL mapping (the zero page).
    pub null: bool,
    /// The object's model id (0 for MAP_NULL).
    pub obj_id: u64,
    /// The lowest GEM handle of the object in this file, if it still has one.
    pub handle: Option<u32>,
    pub obj_offset_B: u64,
    pub dump: bool,
    /// Its pages are mapped (false after a purge).
    pub mapped: bool,
}

/// What a file still held when it was closed; empty when the client cleaned up after itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeakReport {
    /// GEM handles still open.
    pub handles: Vec<u32>,
    /// Syncobj handles still open.
    pub syncobjs: usize,
    /// Submitqueues (other than the default queue 0) not closed.
    pub queues: Vec<u32>,
    /// Mappings left in the file's VM: (iova, size).
    pub vmas: Vec<(u64, u64)>,
    /// Real fds made through this file (dma-bufs, sync files) still open in this process.
    pub open_fds: Vec<String>,
    /// Framebuffers the file made and did not remove (file close removes them).
    pub framebuffers: Vec<u32>,
    /// Property blobs the file made and did not destroy (file close destroys them).
    pub blobs: Vec<u32>,
}

impl LeakReport {
    pub fn is_empty(&self) -> bool {
        *self == LeakReport::default()
    }

    /// One short line: how many of each kind, e.g. `2000 GEM handles, 3 syncobjs, 2 queues`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = [
            (self.handles.len(), "GEM handle"),
            (self.syncobjs, "syncobj"),
            (self.queues.len(), "submitqueue"),
            (self.vmas.len(), "VMA"),
            (self.open_fds.len(), "open fd entry"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" }))
        .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

#[derive(Debug)]
struct SimDevice {
    /// Unique per model device in this process.
    uid: u64,
    profile: ChipProfile,
    options: SimOptions,
    born: Instant,
    gpu: Arc<gpu::Gpu>,
    /// The shared VM of parts without per-process page tables.
    global_vm: Arc<Vm>,
    offsets: Mutex<gem::Offsets>,
    next_object: AtomicU64,
    /// Every object ever made on this device that is still alive (for purging).
    objects: Mutex<Vec<Weak<GemObject>>>,
    injections: Mutex<Vec<InjectionState>>,
    /// Framebuffers, the KMS state, vblanks and the display VM.
    display: vblank::Display,
    /// The current DRM master and each file's node and authentication.
    auth: auth::Auth,
}

impl SimDevice {
    fn next_object_id(&self) -> u64 {
        self.next_object.fetch_add(1, Ordering::Relaxed)
    }

    fn track(&self, obj: &Arc<GemObject>) {
        let mut objs = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        // Dead entries go when the list is full, and the list is then kept at most half full, so
        // a GEM_NEW costs amortized O(1) however many objects are alive (a pruning on every
        // GEM_NEW made 100k live objects quadratic).
        if objs.len() == objs.capacity() {
            objs.retain(|w| w.strong_count() > 0);
            let live = objs.len();
            objs.reserve(live.max(16));
        }
        objs.push(Arc::downgrade(obj));
    }
}

impl Drop for SimDevice {
    fn drop(&mut self) {
        self.gpu.shutdown();
    }
}

/// A model msm device. Cloning gives another handle to the same device.
#[derive(Debug, Clone)]
pub struct Sim {
    dev: Arc<SimDevice>,
}

impl Sim {
    /// A model device of chip profile `name` (`a618`, `a660`, `a750`) with default options.
    pub fn new(name: &str) -> Result<Sim, SimError> {
        Sim::with_options(name, SimOptions::default())
    }

    pub fn with_options(name: &str, options: SimOptions) -> Result<Sim, SimError> {
        raise_fd_limit();
        static NEXT_UID: AtomicU64 = AtomicU64::new(1);
        let profile =
            ChipProfile::by_name(name).ok_or_else(|| SimError::UnknownProfile(name.into()))?;
        if !(6..=13).contains(&options.uapi_minor) {
            return Err(SimError::UnsupportedVersion(options.uapi_minor));
        }
        let uid = NEXT_UID.fetch_add(1, Ordering::Relaxed);
        let dev = SimDevice {
            uid,
            profile: profile.clone(),
            gpu: gpu::Gpu::new(options.clock, profile.name),
            // Without per-process page tables every file shares one VM: [16 MiB, 4 GiB).
            global_vm: Vm::new(0x100_0000, 0xff00_0000, false, false),
            display: vblank::Display::new(&options, uid),
            options,
            born: Instant::now(),
            offsets: Mutex::default(),
            next_object: AtomicU64::new(1),
            objects: Mutex::default(),
            injections: Mutex::default(),
            auth: Default::default(),
        };
        Ok(Sim { dev: Arc::new(dev) })
    }

    pub fn profile(&self) -> &ChipProfile {
        &self.dev.profile
    }

    pub fn options(&self) -> &SimOptions {
        &self.dev.options
    }

    /// Opens a new file on the render node (as `open("/dev/dri/renderD128")`).
    pub fn open(&self) -> Result<SimFile, Errno> {
        self.open_node(Node::Render)
    }

    /// Opens a new file on `node`. The first file opened on the primary node while the device
    /// has no master becomes master (auth.rs).
    pub fn open_node(&self, node: Node) -> Result<SimFile, Errno> {
        let events = Arc::new(event::EventQueue::new()?);
        static NEXT_FILE_ID: AtomicU64 = AtomicU64::new(1);
        let ctx = FileCtx {
            queues: BTreeMap::from([(0, queue::default_queue(self.dev.profile.nr_rings))]),
            next_queue_id: 1,
            ..Default::default()
        };
        let id = NEXT_FILE_ID.fetch_add(1, Ordering::Relaxed);
        self.dev
            .auth
            .opened(id, node, self.dev.options.cap_sys_admin);
        Ok(SimFile {
            id,
            dev: self.dev.clone(),
            node,
            events,
            ctx: Mutex::new(ctx),
            syncobjs: SyncobjTable::default(),
            closed: false,
        })
    }

    // ---- Debug API (docs/kernel-model.md) ---------------------------------------------------

    /// Runs one runnable GPU job (`Clock::Manual`). Returns whether one ran.
    pub fn gpu_step(&self) -> bool {
        self.dev.gpu.step()
    }

    /// Runs GPU jobs until none is runnable (`Clock::Manual`). Returns how many ran.
    pub fn gpu_run_until_idle(&self) -> usize {
        self.dev.gpu.run_until_idle()
    }

    /// GPU jobs queued and not yet run.
    pub fn gpu_pending(&self) -> usize {
        self.dev.gpu.pending()
    }

    /// Waits (real time, up to `timeout`) until the asynchronous GPU has run everything runnable.
    pub fn gpu_wait_idle(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while self.dev.gpu.busy() > 0 {
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        true
    }

    /// The devcoredumps captured so far (one per GPU fault), oldest first.
    pub fn devcoredumps(&self) -> Vec<Devcoredump> {
        self.dev.gpu.lock().devcoredumps.clone()
    }

    /// GEM objects of this device still alive (debug API): once every file is closed, every fd
    /// and CPU map of its objects released and the GPU idle, 0; more means the model leaked one.
    pub fn live_objects(&self) -> usize {
        let o = self.dev.objects.lock().unwrap_or_else(|p| p.into_inner());
        o.iter().filter(|w| w.strong_count() > 0).count()
    }

    /// Tells the model memory is short: purges every purgeable DONTNEED object, as the shrinker
    /// would. Returns the number of pages freed.
    pub fn memory_pressure(&self) -> u64 {
        let objs: Vec<Arc<GemObject>> = {
            let o = self.dev.objects.lock().unwrap_or_else(|p| p.into_inner());
            o.iter().filter_map(Weak::upgrade).collect()
        };
        gem::purge(&objs, &self.dev)
    }

    /// Adds a fault injection rule (see [`Injection`]).
    pub fn inject(&self, rule: Injection) {
        self.dev
            .injections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(InjectionState {
                rule,
                seen: 0,
                fired: false,
            });
    }

    /// Each rule added by [`Sim::inject`], in order, with its hit count and whether it fired.
    pub fn injections(&self) -> Vec<InjectionStatus> {
        self.dev
            .injections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|r| InjectionStatus {
                rule: r.rule.clone(),
                hits: r.seen,
                fired: r.fired,
            })
            .collect()
    }

    /// Removes every injection rule.
    pub fn clear_injections(&self) {
        self.dev
            .injections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Per-file context (`struct msm_context` plus the file's DRM tables).
#[derive(Debug, Default)]
struct FileCtx {
    /// GEM handles (`file->object_idr`).
    handles: HashMap<u32, Arc<GemObject>>,
    /// Closed handles below the highest open one: with `handles` they fill 1..=their total
    /// count, so the lowest free handle is the first of these, or the next after that range.
    free_handles: BTreeSet<u32>,
    /// dma-bufs imported into this file and their handles (`drm_prime_file_private`).
    prime_cache: HashMap<FileId, u32>,
    /// The GPU VM, created lazily by the first VM-touching ioctl.
    vm: Option<Arc<Vm>>,
    /// EN_VM_BIND was set before the VM was made.
    vm_bind: bool,
    queues: BTreeMap<u32, Arc<Queue>>,
    next_queue_id: u32,
    comm: Option<String>,
    cmdline: Option<String>,
    sysprof: u64,
    /// SET_CLIENT_CAP settings.
    caps: kms::ClientCaps,
}

/// One open file of a model device. Implements [`Kernel`].
#[derive(Debug)]
pub struct SimFile {
    /// Unique per open file in this process (for leak reports and fd ownership).
    id: u64,
    dev: Arc<SimDevice>,
    node: Node,
    /// DRM events for this file; its eventfd is the file's fd (event.rs).
    events: Arc<event::EventQueue>,
    ctx: Mutex<FileCtx>,
    /// This file's syncobj handles (locked inside `SyncobjTable`).
    syncobjs: SyncobjTable,
    /// Set by [`SimFile::close`], which hands the leak report to its caller: dropping the file
    /// then checks nothing (see [`LEAK_CHECK_ENV`]).
    closed: bool,
}

/// With `MSMWS_SIM_LEAK_CHECK=panic` in the environment, a [`SimFile`] dropped while it still
/// holds anything a client should have released (its leak report is not empty) panics with the
/// report, after the usual postclose teardown; with `=abort` it prints the report and aborts the
/// process (for C tests, where the C API's panic boundary would contain a panic). It is a test
/// suite's check that every test, and every winsys object a test used, cleans up: the
/// repository's `.cargo/config.toml` sets `panic` for `cargo test`, `tests/c/meson.build` sets
/// `abort`. A file ended with [`SimFile::close`] is never checked: its caller has the report.
///
/// A program that reports leaks itself (`msmws scenario`, whose runs `cargo run` starts with the
/// same cargo config) overrides the environment with [`set_leak_check`]`(LeakCheck::Record)` and
/// collects what was dropped with [`take_recorded_leaks`].
pub const LEAK_CHECK_ENV: &str = "MSMWS_SIM_LEAK_CHECK";

/// What dropping a [`SimFile`] that still holds objects does (see [`LEAK_CHECK_ENV`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeakCheck {
    /// Nothing: the model tears the file down as the kernel's postclose does.
    Off,
    /// Panic with the report (`MSMWS_SIM_LEAK_CHECK=panic`).
    Panic,
    /// Print the report and abort (`MSMWS_SIM_LEAK_CHECK=abort`).
    Abort,
    /// Keep the report for [`take_recorded_leaks`].
    Record,
}

/// 0 = not chosen yet (read the environment), else `LeakCheck as u8 + 1`.
static LEAK_CHECK: AtomicU8 = AtomicU8::new(0);
static RECORDED_LEAKS: Mutex<Vec<(u64, LeakReport)>> = Mutex::new(Vec::new());

/// Overrides [`LEAK_CHECK_ENV`] for the rest of the process.
pub fn set_leak_check(mode: LeakCheck) {
    LEAK_CHECK.store(mode as u8 + 1, Ordering::Relaxed);
}

/// The reports of files dropped holding objects under [`LeakCheck::Record`] since the last call,
/// with each file's id.
/// An ioctl on an fd the model handed out that is not a device file: a sync file
/// (`SYNC_IOC_*`) or a dma-buf (`DMA_BUF_IOCTL_*`). These are real fds (a socket, a memfd)
/// whose own ioctls know nothing of the model, so a caller standing in for the kernel (the
/// LD_PRELOAD shim) asks here first. `None` when `fd` is not such a model object, or when
/// `request` is not of the sync-file or dma-buf type (generic ioctls such as FIONBIO are the
/// fd's own); otherwise the kernel's answer, ENOTTY for a request that file type lacks.
///
/// # Safety
/// `arg` is the caller's ioctl argument: the model reads and writes it as the kernel would
/// (EFAULT for an address that is not mapped), so it must not point at memory the model must
/// not change.
pub unsafe fn fd_ioctl(
    fd: std::os::fd::RawFd,
    request: u32,
    arg: *mut c_void,
) -> Option<Result<(), Errno>> {
    let arg = arg as u64;
    match crate::uapi::ioc_type(u64::from(request)) {
        sync_file::SYNC_IOC_MAGIC => sync_file::ioctl(fd, request, arg),
        prime::DMA_BUF_BASE => prime::dmabuf_ioctl(fd, request, arg),
        _ => None,
    }
}

pub fn take_recorded_leaks() -> Vec<(u64, LeakReport)> {
    std::mem::take(&mut *RECORDED_LEAKS.lock().unwrap_or_else(|p| p.into_inner()))
}

fn leak_check() -> LeakCheck {
    const MODES: [LeakCheck; 4] = [
        LeakCheck::Off,
        LeakCheck::Panic,
        LeakCheck::Abort,
        LeakCheck::Record,
    ];
    match LEAK_CHECK.load(Ordering::Relaxed) {
        0 => {
            let mode = match std::env::var(LEAK_CHECK_ENV).as_deref() {
                Ok("panic") => LeakCheck::Panic,
                Ok("abort") => LeakCheck::Abort,
                Ok("record") => LeakCheck::Record,
                _ => LeakCheck::Off,
            };
            // A concurrent set_leak_check wins over the environment.
            let _ = LEAK_CHECK.compare_exchange(
                0,
                mode as u8 + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            leak_check()
        }
        n => MODES[n as usize - 1],
    }
}

impl SimFile {
    fn ctx(&self) -> MutexGuard<'_, FileCtx> {
        // A panic while holding the lock is a model bug already reported by that panic; keep going.
        self.ctx.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails with the injected errno if a rule for `point` says this is its nth hit.
    fn inject(&self, point: &str) -> Result<(), Errno> {
        let fired = self.fire(point, true);
        // EPIPE is how VM_BIND and SUBMIT answer on an unusable VM_BIND-mode VM, and that VM
        // stays unusable: an injected EPIPE loses the VM first, so every later call agrees.
        if fired == Some(Errno::EPIPE) && matches!(point, "VM_BIND" | "GEM_SUBMIT") {
            if let Some(vm) = &self.ctx().vm {
                vm.mark_unusable_if_vm_bind();
            }
        }
        fired.map_or(Ok(()), Err)
    }

    /// Whether an injection rule for the event `point` fires now. Events are not kernel calls:
    /// only rules naming the point exactly count them (a `"*"` rule counts ioctls only).
    fn injected(&self, point: &str) -> bool {
        self.fire(point, false).is_some()
    }

    /// Counts a hit of `point` on every rule naming it (and on `"*"` rules if `any` counts
    /// too); returns the errno of the first rule whose hit this is.
    fn fire(&self, point: &str, any: bool) -> Option<Errno> {
        let mut rules = self
            .dev
            .injections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut fired = None;
        for r in rules
            .iter_mut()
            .filter(|r| r.rule.point == point || (any && r.rule.point == "*"))
        {
            r.seen += 1;
            if r.seen == r.rule.nth && fired.is_none() {
                fired = Some(r.rule.errno);
                r.fired = true;
            }
        }
        fired
    }

    /// The device this file belongs to.
    pub fn sim(&self) -> Sim {
        Sim {
            dev: self.dev.clone(),
        }
    }

    /// The object behind `handle`: its device-wide id (the same in every file that has a
    /// handle to it, never reused) and its size in bytes (debug API).
    pub fn object_of(&self, handle: u32) -> Option<(u64, u64)> {
        SimFile::lookup(&self.ctx(), handle).map(|o| (o.id, o.size_B))
    }

    /// Whether this file's context is in VM_BIND mode (debug API).
    pub fn is_vm_bind(&self) -> bool {
        self.ctx().vm_bind
    }

    /// Whether this file's VM has been created (debug API).
    pub fn vm_created(&self) -> bool {
        self.ctx().vm.is_some()
    }

    /// Whether this file's VM has been marked unusable (debug API).
    pub fn vm_unusable(&self) -> bool {
        self.ctx().vm.as_ref().is_some_and(|v| v.is_unusable())
    }

    /// The mappings of this file's VM as (iova, size, object id, object offset) (debug API).
    pub fn vm_mappings(&self) -> Vec<(u64, u64, u64, u64)> {
        let Some(vm) = self.ctx().vm.clone() else {
            return vec![];
        };
        let inner = vm.lock();
        inner
            .vmas
            .values()
            .map(|v| (v.iova, v.range_B, v.obj_id, v.obj_offset_B))
            .collect()
    }

    /// The VMAs of this file's VM, sorted by iova (debug API).
    pub fn vmas(&self) -> Vec<VmaInfo> {
        let Some(vm) = self.ctx().vm.clone() else {
            return vec![];
        };
        let handles: Vec<(u32, Arc<GemObject>)> = {
            let ctx = self.ctx();
            ctx.handles.iter().map(|(h, o)| (*h, o.clone())).collect()
        };
        let inner = vm.lock();
        inner
            .vmas
            .values()
            .map(|v| VmaInfo {
                iova: v.iova,
                range_B: v.range_B,
                null: v.kind == vm::VmaKind::Null,
                obj_id: v.obj_id,
                handle: (v.kind == vm::VmaKind::Bo)
                    .then(|| {
                        let mut hs: Vec<u32> = handles
                            .iter()
                            .filter(|(_, o)| o.id == v.obj_id)
                            .map(|(h, _)| *h)
                            .collect();
                        hs.sort_unstable();
                        hs.first().copied()
                    })
                    .flatten(),
                obj_offset_B: v.obj_offset_B,
                dump: v.dump,
                mapped: v.mapped,
            })
            .collect()
    }

    /// This file's VM, to observe it after the file closed (debug API).
    pub fn vm_debug(&self) -> Option<Arc<Vm>> {
        self.ctx().vm.clone()
    }

    /// Resident page-table pages of this file's VM_BIND VM, the root included; `None` without
    /// one (debug API).
    pub fn pt_pages(&self) -> Option<u64> {
        let vm = self.ctx().vm.clone().filter(|v| v.vm_bind)?;
        let pages = vm.lock().pt_pages();
        Some(pages)
    }

    /// Whether the GPU can access `[iova, iova + len)` now: the page tables of a VM_BIND VM, the
    /// VA tree otherwise (debug API).
    pub fn gpu_mapped(&self, iova: u64, len: u64) -> bool {
        let Some(vm) = self.ctx().vm.clone() else {
            return false;
        };
        let inner = vm.lock();
        vm.gpu_mapped(&inner, iova, len)
    }

    /// The leaf PTE of the page at `iova` in a VM_BIND VM (debug API).
    pub fn pte(&self, iova: u64) -> Option<vm::Pte> {
        let vm = self.ctx().vm.clone()?;
        let pte = vm.lock().pte(iova);
        pte
    }

    /// Every entry the VM log ring holds, oldest first (debug API; the devcoredump's `vm-log:`
    /// section is [`SimFile::vm_log_text`], which has the kernel's quirk).
    pub fn vm_log(&self) -> Vec<vm::LogEntry> {
        self.ctx()
            .vm
            .clone()
            .map(|vm| vm.lock().log_entries())
            .unwrap_or_default()
    }

    /// The `vm-log:` section as the kernel prints it (empty without entries) (debug API).
    pub fn vm_log_text(&self) -> String {
        self.ctx()
            .vm
            .clone()
            .map(|vm| vm.lock().log_text())
            .unwrap_or_default()
    }

    /// (preallocated page-table pages in flight, threads waiting in the throttle) (debug API).
    pub fn prealloc_in_flight(&self) -> (i32, u32) {
        self.ctx()
            .vm
            .clone()
            .map(|vm| vm.throttle_state())
            .unwrap_or_default()
    }

    /// How many VM_BIND calls on this file's VM had to wait in the 1024-page throttle (debug API).
    pub fn throttle_stalls(&self) -> u64 {
        self.ctx()
            .vm
            .clone()
            .map(|vm| vm.throttle_stalls())
            .unwrap_or_default()
    }

    /// The preallocated page count of this file's last admitted VM_BIND job (debug API).
    pub fn last_prealloc(&self) -> u64 {
        self.ctx()
            .vm
            .clone()
            .map(|vm| vm.last_prealloc.load(Ordering::Relaxed))
            .unwrap_or_default()
    }

    /// Sends a signal to the threads waiting in this file's VM_BIND throttle: they return EINTR
    /// (debug API).
    pub fn interrupt_vm_bind(&self) {
        if let Some(vm) = self.ctx().vm.clone() {
            vm.interrupt_throttled();
        }
    }

    /// The COMM and CMDLINE overrides set through SET_PARAM (debug API).
    pub fn task_overrides(&self) -> (Option<String>, Option<String>) {
        let ctx = self.ctx();
        (ctx.comm.clone(), ctx.cmdline.clone())
    }

    /// GEM_SUBMIT with extra address ranges the job is declared to touch: a test's way to say
    /// "this submit reads that buffer", so an unmapped one faults (debug API).
    ///
    /// # Safety
    /// As for the raw ioctl: the pointers inside `arg` must be valid for what SUBMIT reads.
    pub unsafe fn submit_touching(
        &self,
        arg: &mut crate::uapi::drm_msm_gem_submit,
        touches: &[(u64, u64)],
    ) -> Result<(), Errno> {
        self.inject("GEM_SUBMIT")?;
        submit::submit(self, arg, touches.to_vec())
    }

    /// What `mmap(offset_B, size_B)` on this file maps, with `drm_gem_mmap`'s checks and errnos
    /// (EINVAL for an offset that is not the start of an object at least `size_B` long, EACCES
    /// when this file holds no handle of it). For a caller that maps the memory itself, as the
    /// LD_PRELOAD shim does for a program's `mmap` of the device fd.
    pub fn mmap_target(&self, offset_B: u64, size_B: u64) -> Result<MapTarget, Errno> {
        gem::mmap_target(self, offset_B, size_B)
    }

    /// `write(2)` on the device file. DRM_GEM_FOPS has no `.write`, so `vfs_write` fails: EBADF
    /// when the file was not opened for writing (`writable`: the caller knows the open flags,
    /// the model file does not), else EINVAL (no FMODE_CAN_WRITE). Nothing is written.
    pub fn write(&self, writable: bool) -> Result<usize, Errno> {
        Err(if writable {
            Errno::EINVAL
        } else {
            Errno::EBADF
        })
    }

    /// `lseek(2)` on the device file. DRM files use `noop_llseek` (DRM_GEM_FOPS), which moves
    /// nothing and returns the file position, always 0 (drm_read does not advance it); the VFS
    /// (`ksys_lseek`) rejects a `whence` above SEEK_MAX with EINVAL first.
    pub fn llseek(&self, _offset_B: i64, whence: i32) -> Result<u64, Errno> {
        const SEEK_MAX: i32 = libc::SEEK_HOLE;
        if !(0..=SEEK_MAX).contains(&whence) {
            return Err(Errno::EINVAL);
        }
        Ok(0)
    }

    /// What this file still holds (debug API; the same report `close` returns).
    pub fn leak_report(&self) -> LeakReport {
        let ctx = self.ctx();
        let mut handles: Vec<u32> = ctx.handles.keys().copied().collect();
        handles.sort_unstable();
        let vmas = match &ctx.vm {
            Some(vm) if vm.per_process => vm
                .lock()
                .vmas
                .values()
                .map(|v| (v.iova, v.range_B))
                .collect(),
            _ => vec![],
        };
        prime::collect_garbage();
        let mut open_fds = sync_file::open_fds_created_by(self.id);
        let live = prime::user_dmabuf_fds();
        for (id, n) in live {
            if ctx.handles.values().any(|o| o.memfd_id() == Some(id))
                || ctx.prime_cache.contains_key(&id)
            {
                open_fds.push(format!("{n} dma-buf fd(s) of file {}:{}", id.0, id.1));
            }
        }
        drop(ctx);
        let (framebuffers, blobs) = display::held_by(&self.dev, self.id);
        LeakReport {
            handles,
            syncobjs: self.syncobjs.len(),
            queues: {
                let ctx = self.ctx();
                ctx.queues.keys().copied().filter(|&q| q != 0).collect()
            },
            vmas,
            open_fds,
            framebuffers,
            blobs,
        }
    }

    /// The node this file was opened on.
    pub fn node(&self) -> Node {
        self.node
    }

    /// Whether this file is the device's current DRM master (debug API).
    pub fn is_master(&self) -> bool {
        self.dev.auth.is_current_master(self.id)
    }

    /// Whether this file is authenticated (debug API).
    pub fn is_authenticated(&self) -> bool {
        self.dev.auth.is_authenticated(self.id)
    }

    /// `read(2)` on the device fd (`drm_read`): whole DRM events only. Blocks until one is
    /// queued, unless `nonblock` (EAGAIN when none is). Stops before the first event that does
    /// not fit in what is left of `buf`; a buffer too small for the first event returns 0 and
    /// leaves it queued.
    pub fn read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        self.events.read(buf, nonblock)
    }

    /// Events queued for this file and not yet read (debug API).
    pub fn events_queued(&self) -> usize {
        self.events.len()
    }

    /// Closes the file and returns what it still held (empty when the client cleaned up).
    pub fn close(mut self) -> LeakReport {
        let report = self.leak_report();
        self.closed = true;
        drop(self);
        report
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mode = leak_check();
        let check = mode != LeakCheck::Off && !self.closed && !std::thread::panicking();
        let leaks = check.then(|| self.leak_report()).filter(|r| !r.is_empty());
        self.postclose();
        if let Some(r) = leaks {
            let what = format!(
                "{LEAK_CHECK_ENV}: model file {} dropped holding {}",
                self.id,
                r.summary()
            );
            match mode {
                LeakCheck::Record => RECORDED_LEAKS
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((self.id, r)),
                LeakCheck::Abort => {
                    eprintln!("{what}: {r:?}");
                    std::process::abort();
                }
                _ => panic!("{what}: {r:?}"),
            }
        }
    }
}

impl SimFile {
    /// The kernel's postclose: what the file held goes away.
    fn postclose(&mut self) {
        // postclose: handles, syncobjs and queues go; objects die with their last reference.
        let mut ctx = self.ctx.lock().unwrap_or_else(|p| p.into_inner());
        for (_, obj) in ctx.handles.drain() {
            obj.lock().handle_count -= 1;
        }
        ctx.free_handles.clear();
        ctx.queues.clear();
        let vm = ctx.vm.take();
        drop(ctx);
        let last_file = self.dev.auth.closed(self.id);
        display::file_closed(self, last_file);
        self.syncobjs.clear();
        // A VM_BIND VM unmaps and closes every VMA once its last fence signalled.
        if let Some(vm) = vm.filter(|v| v.vm_bind) {
            vm.close_when_idle();
        }
    }
}

impl Kernel for SimFile {
    unsafe fn ioctl(&self, request: u64, arg: *mut c_void) -> Result<(), Errno> {
        dispatch::ioctl(self, request, arg as u64)
    }

    fn map(&self, offset_B: u64, size_B: usize) -> Result<memmap2::MmapMut, Errno> {
        gem::map(self, offset_B, size_B)
    }

    /// The file's fd: an eventfd that polls readable (POLLIN) exactly while the file has DRM
    /// events queued; read them with [`SimFile::read`] (event.rs). It is created blocking, so
    /// its O_NONBLOCK status flag is whatever the client sets.
    fn fd(&self) -> BorrowedFd<'_> {
        self.events.fd().as_fd()
    }

    fn reopen(&self) -> Result<Box<dyn Kernel>, Errno> {
        Ok(Box::new(self.sim().open_node(self.node)?))
    }

    fn describe(&self) -> String {
        format!("sim:{}", self.dev.profile.name)
    }

    fn devcoredump(&self) -> Option<String> {
        self.sim().devcoredumps().pop().map(|d| d.text)
    }
}
