//! Device probe: reads what the GPU behind a [`Kernel`] is, and chooses the VM mode: VM_BIND when
//! UAPI >= 1.13 and EN_VM_BIND succeeds on a fresh fd; else userspace iova when VA_START/VA_SIZE
//! answer; else kernel-chosen iova.
//!
//! Owns: the device's [`Kernel`] (its fd) and the probed [`DeviceInfo`]. Locks: none yet; the
//! probe happens before the device is shared, and afterwards `info` is immutable.
//!
//! This module sees only the `Kernel` trait, never a backend: the constructors that open one (a
//! real node: `Device::open_path`, `open_default`, `from_fd`; the model: `Device::new_sim`,
//! `on_sim`) live in `crate::backend`, the layer above (docs/layering.md).

use std::fmt;

use crate::kernel::{ioctl, Kernel, KernelError};
use crate::uapi::*;
use crate::Errno;
use crate::ErrnoError;

/// The oldest UAPI the winsys drives: 1.6 brought syncobjs on SUBMIT (turnip's floor too).
pub const MIN_UAPI_MINOR: i32 = 6;

/// How GPU addresses are managed for this device's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum VmMode {
    /// Userspace allocates addresses and maps them with VM_BIND (UAPI 1.13).
    VmBind = 1,
    /// Userspace allocates addresses and pins BOs there with GEM_INFO(SET_IOVA).
    UserspaceIova = 2,
    /// The kernel picks each BO's address (GEM_INFO(GET_IOVA)).
    KernelIova = 3,
}

impl VmMode {
    pub fn name(self) -> &'static str {
        match self {
            VmMode::VmBind => "VM_BIND",
            VmMode::UserspaceIova => "userspace iova",
            VmMode::KernelIova => "kernel iova",
        }
    }
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Where the device came from: a node path, `fd N` or `sim:<profile>`.
    pub source: String,
    pub uapi_major: u32,
    pub uapi_minor: u32,
    pub uapi_patchlevel: u32,
    /// `a618`, `a750`, ... (from GPU_ID, or from CHIP_ID on parts without one).
    pub chip_name: String,
    pub gpu_id: u32,
    pub chip_id: u64,
    pub gmem_size_B: u64,
    pub gmem_base: u64,
    pub priorities: u32,
    /// Usable GPU VA range of this context; both 0 in kernel-iova mode.
    pub va_start: u64,
    pub va_size_B: u64,
    pub raytracing: bool,
    pub highest_bank_bit: u32,
    pub ubwc_swizzle: u32,
    pub macrotile_mode: u32,
    pub mode: VmMode,
    /// Why that mode: the probe's outcome in one sentence.
    pub mode_reason: String,
}

/// What the probe does not ask, because a driver may never need it (turnip 25.0.7 asks none of
/// these): read on the first [`Device::extras`], one GET_PARAM or GET_CAP each, then kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceExtras {
    pub max_freq_Hz: u64,
    pub has_prr: bool,
    pub uche_trap_base: u64,
    /// DRM_CAP_SYNCOBJ_TIMELINE.
    pub timeline_syncobjs: bool,
}

/// Choices the probe leaves to the caller (turnip has debug options for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    pub allow_vm_bind: bool,
    pub allow_userspace_iova: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            allow_vm_bind: true,
            allow_userspace_iova: true,
        }
    }
}

/// Why a device could not be opened or probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// The backend could not open a kernel file (a missing node, a node of another driver, an
    /// unknown model profile): its errno and its sentence, as the backend gave them.
    Open {
        errno: Errno,
        message: String,
    },
    Kernel(KernelError),
    NotMsm {
        source: String,
        driver: String,
    },
    TooOld {
        source: String,
        major: i32,
        minor: i32,
    },
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::Open { message, .. } => f.write_str(message),
            DeviceError::Kernel(e) => write!(f, "device probe: {e}"),
            DeviceError::NotMsm { source, driver } => {
                write!(f, "{source} is driven by \"{driver}\", not \"msm\"")
            }
            DeviceError::TooOld {
                source,
                major,
                minor,
            } => {
                write!(
                    f,
                    "{source} has msm UAPI {major}.{minor}; at least 1.{MIN_UAPI_MINOR} is needed"
                )
            }
        }
    }
}

impl std::error::Error for DeviceError {}

impl ErrnoError for DeviceError {
    fn errno(&self) -> Errno {
        match self {
            DeviceError::Open { errno, .. } => *errno,
            DeviceError::Kernel(e) => e.errno,
            DeviceError::NotMsm { .. } | DeviceError::TooOld { .. } => Errno::ENODEV,
        }
    }
}

impl DeviceError {
    /// A backend's failure to open a kernel file, kept as its errno and its sentence.
    pub fn open(e: &impl ErrnoError) -> DeviceError {
        DeviceError::Open {
            errno: e.errno(),
            message: e.to_string(),
        }
    }
}

impl From<KernelError> for DeviceError {
    fn from(e: KernelError) -> Self {
        DeviceError::Kernel(e)
    }
}

/// An opened, probed msm device.
#[derive(Debug)]
pub struct Device {
    kernel: Box<dyn Kernel>,
    info: DeviceInfo,
    extras: std::sync::OnceLock<DeviceExtras>,
    /// GEM handles, the buffer cache (`crate::bo`).
    bos: crate::bo::BoManager,
}

impl Drop for Device {
    fn drop(&mut self) {
        // Live buffers hold the device, so only cached handles can be left: close them.
        self.bos.release_all(self);
    }
}

impl Device {
    /// Probes `kernel`, which should be a fresh file (see [`VmMode::VmBind`]).
    pub fn new(kernel: Box<dyn Kernel>, options: ProbeOptions) -> Result<Device, DeviceError> {
        let info = probe(kernel.as_ref(), options, None)?;
        Ok(Device::with_info(kernel, info))
    }

    /// [`Self::new`] on a file whose VERSION answer the caller already has (its own msm check, or
    /// a driver's drmGetVersion): the probe does not ask again.
    pub fn new_with_version(
        kernel: Box<dyn Kernel>,
        options: ProbeOptions,
        version: ioctl::DrmVersion,
    ) -> Result<Device, DeviceError> {
        let info = probe(kernel.as_ref(), options, Some(version))?;
        Ok(Device::with_info(kernel, info))
    }

    fn with_info(kernel: Box<dyn Kernel>, info: DeviceInfo) -> Device {
        Device {
            kernel,
            info,
            extras: Default::default(),
            bos: Default::default(),
        }
    }

    /// A device on `kernel`, a fresh file of the GPU that `known` was probed on (another file of
    /// the same node): takes `known`'s answers, which are the GPU's and the same on every file,
    /// and asks the kernel only what belongs to this file, see [`adopt`]. A driver that probed the
    /// node once (turnip, at physical-device enumeration) opens each logical device this way.
    pub fn new_like(
        kernel: Box<dyn Kernel>,
        known: &DeviceInfo,
        options: ProbeOptions,
    ) -> Result<Device, DeviceError> {
        let info = adopt(kernel.as_ref(), known, options)?;
        Ok(Device::with_info(kernel, info))
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The parameters the probe leaves out, read on the first call (4 ioctls) and kept: they are
    /// the GPU's and never change. Two threads racing on the first call may both read them.
    pub fn extras(&self) -> Result<DeviceExtras, KernelError> {
        if let Some(e) = self.extras.get() {
            return Ok(*e);
        }
        let k = self.kernel();
        let e = DeviceExtras {
            max_freq_Hz: ioctl::get_param(k, MSM_PARAM_MAX_FREQ)?,
            has_prr: optional_param(k, MSM_PARAM_HAS_PRR)? != 0,
            uche_trap_base: optional_param(k, MSM_PARAM_UCHE_TRAP_BASE)?,
            timeline_syncobjs: matches!(ioctl::get_cap(k, DRM_CAP_SYNCOBJ_TIMELINE as u64), Ok(1)),
        };
        Ok(*self.extras.get_or_init(|| e))
    }

    pub fn kernel(&self) -> &dyn Kernel {
        self.kernel.as_ref()
    }

    /// The device's buffer table and cache (buffers themselves: [`crate::bo::Bo`]).
    pub fn bo_manager(&self) -> &crate::bo::BoManager {
        &self.bos
    }
}

/// The chip's marketing-style name, as Mesa's freedreno_devices names it.
fn chip_name(gpu_id: u32, chip_id: u64) -> String {
    if gpu_id != 0 {
        return format!("a{gpu_id}");
    }
    match chip_id as u32 {
        0x4305_1401 => "a750".into(),
        id => format!("chip {id:#010x}"),
    }
}

/// A parameter newer kernels have and older ones reject with EINVAL: absent means 0.
fn optional_param(k: &dyn Kernel, param: u32) -> Result<u64, KernelError> {
    match ioctl::get_param(k, param) {
        Err(e) if e.errno == Errno::EINVAL => Ok(0),
        r => r,
    }
}

fn probe(
    k: &dyn Kernel,
    options: ProbeOptions,
    version: Option<ioctl::DrmVersion>,
) -> Result<DeviceInfo, DeviceError> {
    let source = k.describe();
    let v = match version {
        Some(v) => v,
        None => ioctl::version_brief(k).map_err(|e| match e.errno {
            // Not a DRM file at all: as for a DRM device of another driver.
            Errno::ENOTTY => DeviceError::Open {
                errno: Errno::ENODEV,
                message: format!("{source} is not a DRM device: {e}"),
            },
            _ => DeviceError::Kernel(e),
        })?,
    };
    if v.name != "msm" {
        return Err(DeviceError::NotMsm {
            source,
            driver: v.name,
        });
    }
    if v.major != 1 || v.minor < MIN_UAPI_MINOR {
        return Err(DeviceError::TooOld {
            source,
            major: v.major,
            minor: v.minor,
        });
    }

    // EN_VM_BIND must come before anything that creates the VM, and GET_PARAM does: ask first.
    let (mut mode, mut mode_reason) = if !options.allow_vm_bind {
        (None, "VM_BIND not allowed by the caller".to_string())
    } else if v.minor < 13 {
        (
            None,
            format!("UAPI 1.{} has no VM_BIND (needs 1.13)", v.minor),
        )
    } else {
        match ioctl::set_param(k, MSM_PARAM_EN_VM_BIND, 1) {
            Ok(()) => (Some(VmMode::VmBind), "EN_VM_BIND accepted".to_string()),
            Err(e) if e.errno == Errno::EBUSY => (
                None,
                "EN_VM_BIND refused (EBUSY): this fd's VM already exists; pass a fresh fd"
                    .to_string(),
            ),
            Err(e) => (
                None,
                format!(
                    "EN_VM_BIND refused ({}): no per-process page tables",
                    e.errno
                ),
            ),
        }
    };

    let gpu_id = ioctl::get_param(k, MSM_PARAM_GPU_ID)? as u32;
    let chip_id = ioctl::get_param(k, MSM_PARAM_CHIP_ID)?;
    // VA_SIZE only when VA_START answered: without per-process page tables both are refused.
    let va = ioctl::get_param(k, MSM_PARAM_VA_START)
        .ok()
        .and_then(|start| Some((start, ioctl::get_param(k, MSM_PARAM_VA_SIZE).ok()?)));
    if mode.is_none() {
        (mode, mode_reason) = match va {
            Some(_) if options.allow_userspace_iova => (
                Some(VmMode::UserspaceIova),
                format!("{mode_reason}; VA_START/VA_SIZE answer, so SET_IOVA"),
            ),
            Some(_) => (
                Some(VmMode::KernelIova),
                format!("{mode_reason}; userspace iova not allowed by the caller"),
            ),
            None => (
                Some(VmMode::KernelIova),
                format!("{mode_reason}; VA_START/VA_SIZE refused, so GET_IOVA"),
            ),
        };
    }
    let mode = mode.unwrap_or(VmMode::KernelIova);
    let (va_start, va_size_B) = if mode == VmMode::KernelIova {
        (0, 0)
    } else {
        va.unwrap_or((0, 0))
    };

    Ok(DeviceInfo {
        source,
        uapi_major: v.major as u32,
        uapi_minor: v.minor as u32,
        uapi_patchlevel: v.patchlevel as u32,
        chip_name: chip_name(gpu_id, chip_id),
        gpu_id,
        chip_id,
        gmem_size_B: ioctl::get_param(k, MSM_PARAM_GMEM_SIZE)?,
        gmem_base: optional_param(k, MSM_PARAM_GMEM_BASE)?,
        priorities: ioctl::get_param(k, MSM_PARAM_PRIORITIES)? as u32,
        va_start,
        va_size_B,
        raytracing: optional_param(k, MSM_PARAM_RAYTRACING)? != 0,
        highest_bank_bit: optional_param(k, MSM_PARAM_HIGHEST_BANK_BIT)? as u32,
        ubwc_swizzle: optional_param(k, MSM_PARAM_UBWC_SWIZZLE)? as u32,
        macrotile_mode: optional_param(k, MSM_PARAM_MACROTILE_MODE)? as u32,
        mode,
        mode_reason,
    })
}

/// The probe of a further file of a probed device. Every parameter and the UAPI version are the
/// GPU's, so they are `known`'s; only the file's VM mode can differ: EN_VM_BIND (the one ioctl)
/// is tried when the UAPI has it and `known` found per-process page tables (userspace iova or
/// VM_BIND: the kernel refuses EN_VM_BIND without them), and the VA range is the same either way,
/// the range of a private VM.
fn adopt(
    k: &dyn Kernel,
    known: &DeviceInfo,
    options: ProbeOptions,
) -> Result<DeviceInfo, DeviceError> {
    let mut info = known.clone();
    info.source = k.describe();
    let userspace_va = known.mode != VmMode::KernelIova;
    let (mode, reason) = if userspace_va && options.allow_vm_bind && known.uapi_minor >= 13 {
        match ioctl::set_param(k, MSM_PARAM_EN_VM_BIND, 1) {
            Ok(()) => (VmMode::VmBind, "EN_VM_BIND accepted".to_string()),
            Err(e) if options.allow_userspace_iova => (
                VmMode::UserspaceIova,
                format!(
                    "EN_VM_BIND refused ({}); the known VA range, so SET_IOVA",
                    e.errno
                ),
            ),
            Err(e) => (
                VmMode::KernelIova,
                format!(
                    "EN_VM_BIND refused ({}); userspace iova not allowed",
                    e.errno
                ),
            ),
        }
    } else if userspace_va && options.allow_userspace_iova {
        (VmMode::UserspaceIova, "as probed: SET_IOVA".to_string())
    } else {
        (VmMode::KernelIova, "as probed: GET_IOVA".to_string())
    };
    if mode == VmMode::KernelIova {
        (info.va_start, info.va_size_B) = (0, 0);
    }
    info.mode = mode;
    info.mode_reason = format!("{reason} (adopted the probe of {})", known.source);
    Ok(info)
}
