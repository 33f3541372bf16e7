//! Typed helpers for each ioctl: the one place that packs uAPI structs for the winsys.
//!
//! Owns: struct packing and the `KernelError` context (which ioctl, which argument). Takes no locks.

use std::ffi::c_void;
use std::fmt;
use std::mem::size_of;

use super::Kernel;
use crate::ffi::ErrnoError;
use crate::uapi::*;
use crate::Errno;

/// A failed ioctl: the kernel's errno plus which call it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelError {
    pub errno: Errno,
    /// The ioctl and its interesting argument, e.g. `GET_PARAM(VA_START)`.
    pub call: String,
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.call, self.errno)
    }
}

impl std::error::Error for KernelError {}

impl ErrnoError for KernelError {
    fn errno(&self) -> Errno {
        self.errno
    }
}

/// Issues `request` with `arg`, mapping failure to a [`KernelError`] named by `call`.
fn call<T>(
    k: &dyn Kernel,
    request: u64,
    arg: &mut T,
    call: impl FnOnce() -> String,
) -> Result<(), KernelError> {
    debug_assert_eq!(
        ioc_size(request),
        size_of::<T>(),
        "request code and argument type disagree"
    );
    // SAFETY: `arg` is a live, writable `T` whose size is the one encoded in `request`; the
    // structs passed here carry user pointers only where the helper built them from live buffers.
    unsafe { k.ioctl(request, arg as *mut T as *mut c_void) }.map_err(|errno| KernelError {
        errno,
        call: call(),
    })
}

/// What DRM_IOCTL_VERSION reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrmVersion {
    pub major: i32,
    pub minor: i32,
    pub patchlevel: i32,
    pub name: String,
    pub date: String,
    pub desc: String,
}

/// DRM_IOCTL_VERSION, in the usual two passes: lengths first, then the strings.
pub fn version(k: &dyn Kernel) -> Result<DrmVersion, KernelError> {
    let mut v = drm_version::default();
    call(k, DRM_IOCTL_VERSION, &mut v, || "VERSION".into())?;
    // The kernel reports each string's full length; allocate that and ask again.
    let mut name = vec![0u8; v.name_len as usize];
    let mut date = vec![0u8; v.date_len as usize];
    let mut desc = vec![0u8; v.desc_len as usize];
    v.name = name.as_mut_ptr().cast();
    v.date = date.as_mut_ptr().cast();
    v.desc = desc.as_mut_ptr().cast();
    call(k, DRM_IOCTL_VERSION, &mut v, || "VERSION".into())?;
    let text = |mut b: Vec<u8>, len: usize| {
        b.truncate(len.min(b.len()));
        String::from_utf8_lossy(&b).into_owned()
    };
    Ok(DrmVersion {
        major: v.version_major,
        minor: v.version_minor,
        patchlevel: v.version_patchlevel,
        name: text(name, v.name_len as usize),
        date: text(date, v.date_len as usize),
        desc: text(desc, v.desc_len as usize),
    })
}

/// DRM_IOCTL_GET_CAP.
pub fn get_cap(k: &dyn Kernel, capability: u64) -> Result<u64, KernelError> {
    let mut arg = drm_get_cap {
        capability,
        value: 0,
    };
    call(k, DRM_IOCTL_GET_CAP, &mut arg, || {
        format!("GET_CAP({capability:#x})")
    })?;
    Ok(arg.value)
}

/// The name of an `MSM_PARAM_*`, for messages.
pub fn param_name(param: u32) -> &'static str {
    match param {
        MSM_PARAM_GPU_ID => "GPU_ID",
        MSM_PARAM_GMEM_SIZE => "GMEM_SIZE",
        MSM_PARAM_CHIP_ID => "CHIP_ID",
        MSM_PARAM_MAX_FREQ => "MAX_FREQ",
        MSM_PARAM_TIMESTAMP => "TIMESTAMP",
        MSM_PARAM_GMEM_BASE => "GMEM_BASE",
        MSM_PARAM_PRIORITIES => "PRIORITIES",
        MSM_PARAM_PP_PGTABLE => "PP_PGTABLE",
        MSM_PARAM_FAULTS => "FAULTS",
        MSM_PARAM_SUSPENDS => "SUSPENDS",
        MSM_PARAM_SYSPROF => "SYSPROF",
        MSM_PARAM_COMM => "COMM",
        MSM_PARAM_CMDLINE => "CMDLINE",
        MSM_PARAM_VA_START => "VA_START",
        MSM_PARAM_VA_SIZE => "VA_SIZE",
        MSM_PARAM_HIGHEST_BANK_BIT => "HIGHEST_BANK_BIT",
        MSM_PARAM_RAYTRACING => "RAYTRACING",
        MSM_PARAM_UBWC_SWIZZLE => "UBWC_SWIZZLE",
        MSM_PARAM_MACROTILE_MODE => "MACROTILE_MODE",
        MSM_PARAM_UCHE_TRAP_BASE => "UCHE_TRAP_BASE",
        MSM_PARAM_HAS_PRR => "HAS_PRR",
        MSM_PARAM_EN_VM_BIND => "EN_VM_BIND",
        MSM_PARAM_AQE => "AQE",
        _ => "unknown",
    }
}

/// MSM GET_PARAM on the 3D pipe.
pub fn get_param(k: &dyn Kernel, param: u32) -> Result<u64, KernelError> {
    let mut arg = drm_msm_param {
        pipe: MSM_PIPE_3D0,
        param,
        ..Default::default()
    };
    call(k, DRM_IOCTL_MSM_GET_PARAM, &mut arg, || {
        format!("GET_PARAM({})", param_name(param))
    })?;
    Ok(arg.value)
}

/// MSM SET_PARAM of a by-value parameter (`len` = 0).
pub fn set_param(k: &dyn Kernel, param: u32, value: u64) -> Result<(), KernelError> {
    let mut arg = drm_msm_param {
        pipe: MSM_PIPE_3D0,
        param,
        value,
        ..Default::default()
    };
    call(k, DRM_IOCTL_MSM_SET_PARAM, &mut arg, || {
        format!("SET_PARAM({})", param_name(param))
    })
}

/// MSM SET_PARAM of a string parameter (`COMM`, `CMDLINE`): passed by pointer with its length.
pub fn set_param_str(k: &dyn Kernel, param: u32, value: &str) -> Result<(), KernelError> {
    let len = u32::try_from(value.len()).map_err(|_| KernelError {
        errno: Errno::EINVAL,
        call: format!("SET_PARAM({})", param_name(param)),
    })?;
    let mut arg = drm_msm_param {
        pipe: MSM_PIPE_3D0,
        param,
        value: value.as_ptr() as u64,
        len,
        pad: 0,
    };
    call(k, DRM_IOCTL_MSM_SET_PARAM, &mut arg, || {
        format!("SET_PARAM({})", param_name(param))
    })
}

fn gem_info(k: &dyn Kernel, arg: &mut drm_msm_gem_info, what: &str) -> Result<(), KernelError> {
    let handle = arg.handle;
    call(k, DRM_IOCTL_MSM_GEM_INFO, arg, || format!("GEM_INFO({what}, handle {handle})"))
}

/// GEM_INFO(SET_METADATA): stores up to 128 opaque bytes with the object (more is EOVERFLOW).
pub fn gem_set_metadata(k: &dyn Kernel, handle: u32, bytes: &[u8]) -> Result<(), KernelError> {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    let mut arg = drm_msm_gem_info {
        handle,
        info: MSM_INFO_SET_METADATA,
        value: bytes.as_ptr() as u64,
        len,
        pad: 0,
    };
    gem_info(k, &mut arg, "SET_METADATA")
}

/// GEM_INFO(GET_METADATA): the object's metadata, empty when it has none.
///
/// Asks for the length first, then for that many bytes; if another thread stored longer metadata
/// in between (ETOOSMALL), asks again. The buffer is zeroed before each read: kernels before the
/// v7.1 fix return 0 even when the read failed, leaving it untouched, and the caller must be able
/// to tell (zeros are never valid metadata of this project's format).
pub fn gem_get_metadata(k: &dyn Kernel, handle: u32) -> Result<Vec<u8>, KernelError> {
    const ATTEMPTS: usize = 4;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let mut arg = drm_msm_gem_info { handle, info: MSM_INFO_GET_METADATA, ..Default::default() };
        gem_info(k, &mut arg, "GET_METADATA length")?;
        if arg.len == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; arg.len as usize];
        arg.value = buf.as_mut_ptr() as u64;
        match gem_info(k, &mut arg, "GET_METADATA") {
            Ok(()) => {
                buf.truncate(arg.len as usize);
                return Ok(buf);
            }
            Err(e) if e.errno == Errno::ETOOSMALL => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt failed with ETOOSMALL"))
}
