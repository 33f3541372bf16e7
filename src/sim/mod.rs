//! The msm kernel model: answers the same raw ioctls as the real driver, decoding the same structs
//! and user pointers, errno for errno (spec/kernel.md). It is the only kernel these machines have,
//! so every rule it implements is pinned by a test that asserts the exact errno.
//!
//! Owns: the model device ([`Sim`], shared by all its files) and open files ([`SimFile`]).
//! Locks, in nesting order (never taken the other way round):
//! 1. `SimFile::ctx` — one file's context (its VM state and per-file settings);
//! 2. `SimDevice::state` — device-wide counters.
//!
//! Each open file has a real file descriptor (a memfd), so fd passing, dup and close behave as on
//! a device node; the model recognises ioctls only through the [`SimFile`] that owns the fd.

use std::ffi::c_void;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::kernel::Kernel;
use crate::Errno;
use syncobj::SyncobjTable;

mod dispatch;
pub mod fdid;
pub mod fence;
mod param;
pub mod profile;
pub mod sync_file;
mod syncobj;
pub mod user;

pub use profile::{ChipProfile, PROFILES};

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
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            uapi_minor: 13,
            per_process_pgtables: true,
            perfmon_capable: false,
            timeline_syncobjs: true,
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

impl crate::ffi::ErrnoError for SimError {
    fn errno(&self) -> Errno {
        Errno::EINVAL
    }
}

/// Device-wide state.
#[derive(Debug, Default)]
struct DeviceState {
    /// Faults not attributed to a VM (`gpu->global_faults`).
    global_faults: u64,
    suspends: u64,
}

#[derive(Debug)]
struct SimDevice {
    profile: ChipProfile,
    options: SimOptions,
    born: Instant,
    state: Mutex<DeviceState>,
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
        let profile =
            ChipProfile::by_name(name).ok_or_else(|| SimError::UnknownProfile(name.into()))?;
        if !(6..=13).contains(&options.uapi_minor) {
            return Err(SimError::UnsupportedVersion(options.uapi_minor));
        }
        let dev = SimDevice {
            profile: profile.clone(),
            options,
            born: Instant::now(),
            state: Mutex::default(),
        };
        Ok(Sim { dev: Arc::new(dev) })
    }

    pub fn profile(&self) -> &ChipProfile {
        &self.dev.profile
    }

    pub fn options(&self) -> &SimOptions {
        &self.dev.options
    }

    /// Opens a new file of the device (as `open("/dev/dri/renderD128")`).
    pub fn open(&self) -> Result<SimFile, Errno> {
        // SAFETY: memfd_create with a static NUL-terminated name; the result is checked.
        let raw = unsafe { libc::memfd_create(c"msm-sim-file".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(Errno::last());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        static NEXT_FILE_ID: AtomicU64 = AtomicU64::new(1);
        Ok(SimFile {
            id: NEXT_FILE_ID.fetch_add(1, Ordering::Relaxed),
            dev: self.dev.clone(),
            fd,
            ctx: Mutex::default(),
            syncobjs: SyncobjTable::default(),
        })
    }
}

/// Per-file context (`struct msm_context`).
#[derive(Debug, Default)]
struct FileCtx {
    /// The GPU VM exists (made lazily by the first VM-touching ioctl).
    vm_created: bool,
    /// EN_VM_BIND was set before the VM was made.
    vm_bind: bool,
    /// Faults attributed to this file's VM.
    vm_faults: u64,
    comm: Option<String>,
    cmdline: Option<String>,
    sysprof: u64,
}

/// One open file of a model device. Implements [`Kernel`].
#[derive(Debug)]
pub struct SimFile {
    /// Unique per open file in this process (for leak reports and fd ownership).
    id: u64,
    dev: Arc<SimDevice>,
    fd: OwnedFd,
    ctx: Mutex<FileCtx>,
    /// This file's syncobj handles (locked inside `SyncobjTable`).
    syncobjs: SyncobjTable,
}

impl SimFile {
    fn ctx(&self) -> MutexGuard<'_, FileCtx> {
        // A panic while holding the lock is a model bug already reported by that panic; keep going.
        self.ctx.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dev_state(&self) -> MutexGuard<'_, DeviceState> {
        self.dev.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device this file belongs to.
    pub fn sim(&self) -> Sim {
        Sim {
            dev: self.dev.clone(),
        }
    }

    /// Whether this file's context is in VM_BIND mode (debug API).
    pub fn is_vm_bind(&self) -> bool {
        self.ctx().vm_bind
    }

    /// Whether this file's VM has been created (debug API).
    pub fn vm_created(&self) -> bool {
        self.ctx().vm_created
    }

    /// The COMM and CMDLINE overrides set through SET_PARAM (debug API).
    pub fn task_overrides(&self) -> (Option<String>, Option<String>) {
        let ctx = self.ctx();
        (ctx.comm.clone(), ctx.cmdline.clone())
    }
}

impl Kernel for SimFile {
    unsafe fn ioctl(&self, request: u64, arg: *mut c_void) -> Result<(), Errno> {
        dispatch::ioctl(self, request, arg as u64)
    }

    fn map(&self, _offset_B: u64, _size_B: usize) -> Result<memmap2::MmapMut, Errno> {
        // No GEM objects yet, so no mmap offset is valid (drm_gem_mmap: EINVAL).
        Err(Errno::EINVAL)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn reopen(&self) -> Result<Box<dyn Kernel>, Errno> {
        Ok(Box::new(self.sim().open()?))
    }

    fn describe(&self) -> String {
        format!("sim:{}", self.dev.profile.name)
    }
}
