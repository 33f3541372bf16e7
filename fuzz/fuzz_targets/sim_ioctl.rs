//! Fuzz target of the kernel model's ioctl decoding: random request numbers and argument structs
//! through `SimFile`'s raw `ioctl(request, *mut arg)`, as a hostile process would call the real
//! driver. Nothing may panic, and the model must answer EFAULT for every pointer that does not
//! lead to mapped memory, never touch memory through it.
//!
//! Pointers. The model reads and writes user memory with process_vm_readv/writev (src/sim/user.rs):
//! an unmapped address is EFAULT, but a mapped one is really read or written. So every buffer the
//! model may reach lives in this target's arena, each ending against a 64 KiB PROT_NONE guard (a
//! length that runs past a buffer faults there, as past the end of a user mapping), and every
//! pointer is either one the fuzzer asked for (into a buffer, into a guard, NULL, low, non-canonical
//! or wrapping) or a raw input value; a raw 8-byte value that happens to be a mapped address
//! outside the arena (the heap, ASan's shadow) is flipped to a non-canonical one first, so the
//! model can never write to memory the fuzzer does not own.
//!
//! Waits. Timeouts in the argument (GEM_CPU_PREP, WAIT_FENCE, SYNCOBJ_WAIT, SYNCOBJ_TIMELINE_WAIT)
//! are cut to at most 1 ms from now; the GPU runs jobs at once and vblanks come at once, so no
//! input can stall the fuzzer.
//!
//! Each run ends by closing every fd the model handed out; then the files' leak reports must name
//! no open fd, and once both files are closed and the GPU idle the device must hold no object
//! (LeakSanitizer catches anything kept alive by a reference cycle).
#![no_main]
#![allow(non_snake_case)] // unit suffixes

use std::collections::BTreeSet;
use std::ffi::c_void;
use std::mem::offset_of;
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

#[path = "../common/input.rs"]
mod input;
#[path = "../common/threads.rs"]
mod threads;

use input::Input;
use msm_winsys::kernel::Kernel;
use msm_winsys::sim::{Clock, Node, Sim, SimFile, SimOptions, VblankClock};
use msm_winsys::uapi::*;

/// Every request the model has a handler for, with its own size and direction.
const REQUESTS: &[u64] = &[
    DRM_IOCTL_VERSION,
    DRM_IOCTL_GET_UNIQUE,
    DRM_IOCTL_GET_MAGIC,
    DRM_IOCTL_GEM_CLOSE,
    DRM_IOCTL_GET_CAP,
    DRM_IOCTL_SET_CLIENT_CAP,
    DRM_IOCTL_AUTH_MAGIC,
    DRM_IOCTL_SET_MASTER,
    DRM_IOCTL_DROP_MASTER,
    DRM_IOCTL_PRIME_HANDLE_TO_FD,
    DRM_IOCTL_PRIME_FD_TO_HANDLE,
    DRM_IOCTL_WAIT_VBLANK,
    DRM_IOCTL_MODE_GETRESOURCES,
    DRM_IOCTL_MODE_GETCRTC,
    DRM_IOCTL_MODE_SETCRTC,
    DRM_IOCTL_MODE_GETGAMMA,
    DRM_IOCTL_MODE_SETGAMMA,
    DRM_IOCTL_MODE_GETENCODER,
    DRM_IOCTL_MODE_GETCONNECTOR,
    DRM_IOCTL_MODE_GETPROPERTY,
    DRM_IOCTL_MODE_GETPROPBLOB,
    DRM_IOCTL_MODE_ADDFB,
    DRM_IOCTL_MODE_RMFB,
    DRM_IOCTL_MODE_PAGE_FLIP,
    DRM_IOCTL_MODE_DIRTYFB,
    DRM_IOCTL_MODE_CREATE_DUMB,
    DRM_IOCTL_MODE_MAP_DUMB,
    DRM_IOCTL_MODE_DESTROY_DUMB,
    DRM_IOCTL_MODE_GETPLANERESOURCES,
    DRM_IOCTL_MODE_GETPLANE,
    DRM_IOCTL_MODE_ADDFB2,
    DRM_IOCTL_MODE_OBJ_GETPROPERTIES,
    DRM_IOCTL_MODE_OBJ_SETPROPERTY,
    DRM_IOCTL_MODE_ATOMIC,
    DRM_IOCTL_MODE_CREATEPROPBLOB,
    DRM_IOCTL_MODE_DESTROYPROPBLOB,
    DRM_IOCTL_SYNCOBJ_CREATE,
    DRM_IOCTL_SYNCOBJ_DESTROY,
    DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD,
    DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE,
    DRM_IOCTL_SYNCOBJ_WAIT,
    DRM_IOCTL_SYNCOBJ_RESET,
    DRM_IOCTL_SYNCOBJ_SIGNAL,
    DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
    DRM_IOCTL_SYNCOBJ_QUERY,
    DRM_IOCTL_SYNCOBJ_TRANSFER,
    DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL,
    DRM_IOCTL_MSM_GET_PARAM,
    DRM_IOCTL_MSM_SET_PARAM,
    DRM_IOCTL_MSM_GEM_NEW,
    DRM_IOCTL_MSM_GEM_INFO,
    DRM_IOCTL_MSM_GEM_CPU_PREP,
    DRM_IOCTL_MSM_GEM_CPU_FINI,
    DRM_IOCTL_MSM_GEM_SUBMIT,
    DRM_IOCTL_MSM_WAIT_FENCE,
    DRM_IOCTL_MSM_GEM_MADVISE,
    DRM_IOCTL_MSM_SUBMITQUEUE_NEW,
    DRM_IOCTL_MSM_SUBMITQUEUE_CLOSE,
    DRM_IOCTL_MSM_SUBMITQUEUE_QUERY,
    DRM_IOCTL_MSM_VM_BIND,
];

const PAGE_B: usize = 4096;
/// Bytes of one arena slot a buffer may use (a request's argument is at most 16383 bytes).
const SLOT_DATA_B: usize = 16 << 10;
/// PROT_NONE bytes after each slot's data: a copy that runs past a buffer faults here.
const GUARD_B: usize = 64 << 10;
const SLOT_B: usize = SLOT_DATA_B + GUARD_B;
/// Slot 0 holds the argument, slots 1.. the buffers its pointers lead to.
const SLOTS: usize = 5;
const MAX_AUX_B: usize = 2048;
const MAX_OPS: usize = 24;

/// The arena: `SLOTS` slots of `SLOT_DATA_B` read/write bytes, each followed by a guard.
struct Arena {
    base: usize,
}

impl Arena {
    fn get() -> &'static Arena {
        static ARENA: OnceLock<Arena> = OnceLock::new();
        ARENA.get_or_init(|| {
            let len = SLOTS * SLOT_B;
            // SAFETY: a fresh anonymous mapping at an address the kernel picks; nothing else
            // refers to it, and it lives (never unmapped) for the whole process.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED, "arena mmap");
            for i in 0..SLOTS {
                // SAFETY: the data part of slot `i`, inside the mapping made above.
                let rc = unsafe {
                    libc::mprotect(
                        p.cast::<u8>().add(i * SLOT_B).cast(),
                        SLOT_DATA_B,
                        libc::PROT_READ | libc::PROT_WRITE,
                    )
                };
                assert_eq!(rc, 0, "arena mprotect");
            }
            Arena { base: p as usize }
        })
    }

    fn contains(&self, addr: u64) -> bool {
        (self.base as u64..(self.base + SLOTS * SLOT_B) as u64).contains(&addr)
    }

    /// Places `bytes` (zero-padded to `len_B`) at the end of slot `slot`'s data, against its
    /// guard, and returns its address.
    fn place(&self, slot: usize, bytes: &[u8], len_B: usize) -> usize {
        let len_B = len_B.min(SLOT_DATA_B);
        let at = self.base + slot * SLOT_B + SLOT_DATA_B - len_B;
        let n = bytes.len().min(len_B);
        // SAFETY: `[at, at + len_B)` is inside slot `slot`'s read/write data, which only this
        // single-threaded target touches between ioctls.
        unsafe {
            std::ptr::write_bytes(at as *mut u8, 0, len_B);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, n);
        }
        at
    }

    fn guard(&self, slot: usize) -> usize {
        self.base + slot * SLOT_B + SLOT_DATA_B
    }
}

/// Whether `addr` is mapped readable in this process (the kernel's view, so no fault here).
fn mapped(addr: u64) -> bool {
    let mut b = 0u8;
    let local = libc::iovec {
        iov_base: (&mut b as *mut u8).cast(),
        iov_len: 1,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: 1,
    };
    // SAFETY: the local side is one byte we own; the kernel checks the remote side.
    unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) == 1 }
}

/// The fds open in this process now.
fn open_fds() -> BTreeSet<RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A request: mostly one the model knows (so the fuzzer spends its time in handlers), sometimes
/// with another size or direction than the kernel's, sometimes any number at all.
fn request(inp: &mut Input) -> u64 {
    let pick = inp.u8();
    if pick >= 0xf0 {
        return u64::from(inp.u32());
    }
    let mut req = REQUESTS[usize::from(pick) % REQUESTS.len()];
    let vary = inp.u8();
    if vary & 1 != 0 {
        // _IOC_SIZE: 14 bits at 16.
        req = (req & !(0x3fff << 16)) | (u64::from(inp.u16() & 0x3fff) << 16);
    }
    if vary & 2 != 0 {
        // _IOC_DIR: 2 bits at 30.
        req = (req & !(3 << 30)) | (u64::from((vary >> 2) & 3) << 30);
    }
    canonical_if_it_makes_fds(req)
}

/// The requests that hand the caller a new fd in their argument, where this target reads it.
const FD_MAKERS: &[u64] = &[
    DRM_IOCTL_PRIME_HANDLE_TO_FD,
    DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD,
    DRM_IOCTL_MSM_GEM_SUBMIT,
    DRM_IOCTL_MSM_VM_BIND,
];

/// A request that makes an fd keeps the kernel's size and direction (drm_ioctl matches by
/// number alone): with a shorter copy-out the caller would never see its fd, which then leaks
/// from the fuzzer's process as it would from any program that did that.
fn canonical_if_it_makes_fds(req: u64) -> u64 {
    FD_MAKERS
        .iter()
        .copied()
        .find(|&r| ioc_nr(r) == ioc_nr(req))
        .unwrap_or(req)
}

/// The fd a successful `req` wrote to its argument at `arg`, if it made one.
fn fd_made(req: u64, arg: usize) -> Option<RawFd> {
    let at = |off: usize| {
        // SAFETY: `off` is a field of the request's own struct, which fills the argument.
        unsafe { ((arg + off) as *const i32).read_unaligned() }
    };
    let flags = |off: usize| at(off) as u32;
    let nr = ioc_nr(req);
    if nr == ioc_nr(DRM_IOCTL_PRIME_HANDLE_TO_FD) {
        Some(at(offset_of!(drm_prime_handle, fd)))
    } else if nr == ioc_nr(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD) {
        Some(at(offset_of!(drm_syncobj_handle, fd)))
    } else if nr == ioc_nr(DRM_IOCTL_MSM_GEM_SUBMIT)
        && flags(offset_of!(drm_msm_gem_submit, flags)) & MSM_SUBMIT_FENCE_FD_OUT != 0
    {
        Some(at(offset_of!(drm_msm_gem_submit, fence_fd)))
    } else if nr == ioc_nr(DRM_IOCTL_MSM_VM_BIND)
        && flags(offset_of!(drm_msm_vm_bind, flags)) & MSM_VM_BIND_FENCE_FD_OUT != 0
    {
        Some(at(offset_of!(drm_msm_vm_bind, fence_fd)))
    } else {
        None
    }
    .filter(|&fd| fd >= 0)
}

fn write_u64(addr: usize, v: u64) {
    // SAFETY: callers pass an address inside an arena slot's data with 8 bytes left.
    unsafe { (addr as *mut u64).write_unaligned(v) }
}

fn read_u64(addr: usize) -> u64 {
    // SAFETY: as `write_u64`.
    unsafe { (addr as *const u64).read_unaligned() }
}

/// Cuts an absolute CLOCK_MONOTONIC timeout at `at` (ns, or a timespec) to 1 ms from now.
fn clamp_timeouts(req: u64, arg: usize, arg_B: usize) {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let soon_ns = (now.tv_sec * 1_000_000_000 + now.tv_nsec + 1_000_000) as u64;
    let nr = ioc_nr(req);
    let ns_at = |off: usize| {
        if off + 8 <= arg_B {
            let v = read_u64(arg + off) as i64;
            if v > soon_ns as i64 {
                write_u64(arg + off, soon_ns);
            }
        }
    };
    let ts_at = |off: usize| {
        if off + 16 <= arg_B {
            let (s, n) = (read_u64(arg + off) as i64, read_u64(arg + off + 8) as i64);
            let t = i128::from(s) * 1_000_000_000 + i128::from(n);
            if t > i128::from(soon_ns) {
                write_u64(arg + off, soon_ns / 1_000_000_000);
                write_u64(arg + off + 8, soon_ns % 1_000_000_000);
            }
        }
    };
    if nr == ioc_nr(DRM_IOCTL_SYNCOBJ_WAIT) {
        ns_at(offset_of!(drm_syncobj_wait, timeout_nsec));
    } else if nr == ioc_nr(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT) {
        ns_at(offset_of!(drm_syncobj_timeline_wait, timeout_nsec));
    } else if nr == ioc_nr(DRM_IOCTL_MSM_GEM_CPU_PREP) {
        ts_at(offset_of!(drm_msm_gem_cpu_prep, timeout));
    } else if nr == ioc_nr(DRM_IOCTL_MSM_WAIT_FENCE) {
        ts_at(offset_of!(drm_msm_wait_fence, timeout));
    }
}

fn is_socket(fd: RawFd) -> bool {
    // SAFETY: fstat writes one struct stat we own; a bad fd is an error, not UB.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
    }
}

struct Run {
    sim: Sim,
    files: Vec<SimFile>,
    /// Fds the model handed to this process in this run (dma-bufs, sync files, syncobj fds).
    made: Vec<RawFd>,
    maps: Vec<memmap2::MmapMut>,
}

impl Run {
    fn ioctl(&mut self, inp: &mut Input) {
        let arena = Arena::get();
        let file = usize::from(inp.u8() & 1) % self.files.len();
        let req = request(inp);
        let arg_B = ioc_size(req).max(8);
        let arg_bytes = inp.bytes(arg_B).to_vec();
        let arg = arena.place(0, &arg_bytes, arg_B);
        let mut bufs = vec![(arg, arg_B)];
        for slot in 1..=usize::from(inp.u8() % SLOTS as u8) {
            let len_B = (usize::from(inp.u16()) % MAX_AUX_B + 8) & !7;
            let bytes = inp.bytes(len_B).to_vec();
            bufs.push((arena.place(slot, &bytes, len_B), len_B));
        }
        // Raw 8-byte values that are mapped addresses outside the arena must not reach the
        // model as pointers (see the top of this file); other values, iovas and sizes among
        // them, stay as the fuzzer wrote them.
        for &(at, len_B) in &bufs {
            for off in (0..len_B.saturating_sub(7)).step_by(8) {
                let v = read_u64(at + off);
                if v >= 0x1_0000 && !arena.contains(v) && mapped(v) {
                    write_u64(at + off, v | 1 << 63);
                }
            }
        }
        for _ in 0..inp.u8() % 8 {
            let (at, len_B) = bufs[usize::from(inp.u8()) % bufs.len()];
            let off = usize::from(inp.u16()) % len_B;
            let kind = inp.u8();
            let x = u64::from(inp.u16());
            if kind % 9 == 8 {
                // An fd field: one the model handed out in this run (or a closed number).
                let fd = match self.made.len() {
                    0 => inp.u8() as i32,
                    n => self.made[usize::from(inp.u8()) % n],
                };
                let off = off.min(len_B - 4) & !3;
                // SAFETY: 4 bytes inside the buffer's arena slot.
                unsafe { ((at + off) as *mut i32).write_unaligned(fd) };
                continue;
            }
            let value = match kind % 9 {
                0 | 1 => {
                    let (to, to_B) = bufs[usize::from(inp.u8()) % bufs.len()];
                    // Mostly inside the buffer, sometimes up to 64 bytes past its end (into
                    // the guard): element arrays whose count runs past their memory.
                    (to + ((x as usize % (to_B + 64)) & !7)) as u64
                }
                2 => (arena.guard(usize::from(inp.u8()) % SLOTS) + x as usize) as u64,
                3 => 0,
                4 => x % PAGE_B as u64,
                5 => 1 << 63 | u64::from(inp.u32()) << 16 | x,
                6 => u64::MAX - x,
                // The last user page, which Linux never maps (TASK_SIZE is 2^47 - 4 KiB).
                _ => (1u64 << 47) - 1 - x % PAGE_B as u64,
            };
            write_u64(at + (off.min(len_B - 8) & !7), value);
        }
        clamp_timeouts(req, arg, arg_B);
        let atomic = ioc_nr(req) == ioc_nr(DRM_IOCTL_MODE_ATOMIC);
        let fds_before = if atomic { open_fds() } else { BTreeSet::new() };
        // SAFETY: `arg` is `arg_B >= ioc_size(req)` bytes of the arena; every pointer in it (and
        // in the buffers it leads to) is an arena address, or an address nothing is mapped at,
        // so whatever the model copies to or from user memory stays in memory this target owns.
        let r = unsafe { self.files[file].ioctl(req, arg as *mut c_void) };
        if r.is_err() {
            return;
        }
        if let Some(fd) = fd_made(req, arg) {
            self.made.push(fd);
        }
        if atomic {
            // An out-fence goes through a pointer in the property values. It is the caller's
            // end of a socket pair (src/sim/sync_file.rs), made first and so the lower number;
            // the model keeps the other end.
            let new: Vec<RawFd> = open_fds().difference(&fds_before).copied().collect();
            if let Some(&fd) = new.iter().find(|&&fd| is_socket(fd)) {
                self.made.push(fd);
            }
        }
    }

    fn step(&mut self, inp: &mut Input) {
        match inp.u8() % 16 {
            0..=10 => self.ioctl(inp),
            11 => {
                // A CPU map of whatever GEM_INFO or MAP_DUMB gave (or any offset).
                let file = usize::from(inp.u8() & 1) % self.files.len();
                let offset_B = inp.u64();
                let size_B = (usize::from(inp.u8()) + 1) * PAGE_B;
                if let Ok(mut m) = self.files[file].map(offset_B, size_B) {
                    m[size_B - 1] = 0xa5;
                    self.maps.push(m);
                }
            }
            12 => {
                let file = usize::from(inp.u8() & 1) % self.files.len();
                let mut buf = vec![0u8; usize::from(inp.u8()) * 4];
                let _ = self.files[file].read(&mut buf, true);
            }
            13 => {
                if !self.made.is_empty() {
                    let fd = self.made.remove(usize::from(inp.u8()) % self.made.len());
                    // SAFETY: an fd the model handed to this process in this run; nothing
                    // else refers to it.
                    unsafe { libc::close(fd) };
                }
            }
            14 => {
                self.sim.gpu_wait_idle(Duration::from_millis(1));
            }
            _ => {
                self.sim.memory_pressure();
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    static BASELINE: OnceLock<usize> = OnceLock::new();
    let baseline = *BASELINE.get_or_init(threads::count);
    let mut inp = Input(data);
    let cfg = inp.u8();
    let options = SimOptions {
        uapi_minor: 6 + u32::from(cfg >> 5),
        per_process_pgtables: cfg & 4 == 0,
        kms: cfg & 8 == 0,
        timeline_syncobjs: cfg & 16 == 0,
        clock: Clock::Async {
            latency: Duration::ZERO,
        },
        vblank: VblankClock::Immediate,
        ..Default::default()
    };
    let profile = ["a750", "a660", "a618", "a750"][usize::from(cfg & 3)];
    let sim = Sim::with_options(profile, options).expect("valid options");
    let files = vec![
        sim.open_node(Node::Primary).expect("open primary"),
        sim.open_node(Node::Render).expect("open render"),
    ];
    let mut run = Run {
        sim,
        files,
        made: vec![],
        maps: vec![],
    };
    for _ in 0..MAX_OPS {
        if inp.is_empty() {
            break;
        }
        run.step(&mut inp);
    }
    let Run {
        sim,
        files,
        made,
        maps,
        ..
    } = run;
    for fd in made {
        // SAFETY: fds the model handed out in this run, not closed yet, owned by nobody else.
        unsafe { libc::close(fd) };
    }
    drop(maps);
    for f in files {
        let report = f.close();
        assert!(
            report.open_fds.is_empty(),
            "every fd of the run is closed, yet the model reports {:?}",
            report.open_fds
        );
    }
    sim.gpu_wait_idle(Duration::from_secs(5));
    assert_eq!(
        sim.live_objects(),
        0,
        "every file, fd and map is gone: no GEM object may live on"
    );
    drop(sim);
    // The GPU thread sees the device gone at once.
    threads::settle(baseline, Duration::from_secs(1));
});
