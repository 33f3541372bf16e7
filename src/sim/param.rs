//! DRM_IOCTL_VERSION, GET_CAP, and MSM GET_PARAM / SET_PARAM (spec/kernel.md "Files, VMs and the
//! VA range", "Chip profiles"; drm_ioctl.c, msm_drv.c, adreno_gpu.c).
//!
//! Locks: `SimFile::ctx`, then `SimDevice::state` (for counters).

use super::dispatch::typed;
use super::profile::VA_START;
use super::{user, SimFile};
use crate::uapi::*;
use crate::Errno;

const DRIVER_NAME: &str = "msm";
const DRIVER_DATE: &str = "20130625";
const DRIVER_DESC: &str = "MSM Snapdragon DRM";
const PAGE_SIZE: u32 = 4096;

/// `drm_copy_field`: copies at most the caller's length, always reports the full length.
fn copy_field(
    buf: *mut std::ffi::c_char,
    buf_len: &mut drm_sys::__kernel_size_t,
    value: &str,
) -> Result<(), Errno> {
    let n = value.len().min(*buf_len as usize);
    *buf_len = value.len() as _;
    if n > 0 && !buf.is_null() {
        user::write_bytes(buf as u64, &value.as_bytes()[..n])?;
    }
    Ok(())
}

pub(super) fn version(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |v: &mut drm_version| {
        v.version_major = 1;
        v.version_minor = file.dev.options.uapi_minor as i32;
        v.version_patchlevel = 0;
        copy_field(v.name, &mut v.name_len, DRIVER_NAME)?;
        copy_field(v.date, &mut v.date_len, DRIVER_DATE)?;
        copy_field(v.desc, &mut v.desc_len, DRIVER_DESC)
    })
}

/// `drm_getcap`: the four generic caps are answered on any node; the others only on a KMS
/// device (kms.rs; on either node), and are EOPNOTSUPP on a GPU-only one (`SimOptions::kms`
/// false), where unknown caps are EOPNOTSUPP too, as the kernel checks DRIVER_MODESET first.
pub(super) fn get_cap(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |c: &mut drm_get_cap| {
        c.value = 0;
        c.value = match c.capability as u32 {
            DRM_CAP_TIMESTAMP_MONOTONIC => 1,
            DRM_CAP_PRIME => (DRM_PRIME_CAP_IMPORT | DRM_PRIME_CAP_EXPORT) as u64,
            DRM_CAP_SYNCOBJ => 1,
            DRM_CAP_SYNCOBJ_TIMELINE => file.dev.options.timeline_syncobjs as u64,
            _ if !file.dev.options.kms => return Err(Errno::EOPNOTSUPP),
            cap => super::kms::kms_cap(cap as u64)?,
        };
        Ok(())
    })
}

/// The 19.2 MHz always-on counter that TIMESTAMP reads, derived from the model's clock.
fn gpu_timestamp(file: &SimFile) -> u64 {
    let ns = file.dev.born.elapsed().as_nanos();
    (ns * 192 / 10_000) as u64
}

pub(super) fn get_param(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_param| {
        // msm_ioctl_get_param
        if a.pipe != MSM_PIPE_3D0 || a.pad != 0 {
            return Err(Errno::EINVAL);
        }
        // adreno_get_param: the VM is created (lazily) before anything else is looked at.
        let mut ctx = file.ctx();
        file.vm(&mut ctx);
        if a.len != 0 {
            return Err(Errno::EINVAL);
        }
        let p = &file.dev.profile;
        let o = &file.dev.options;
        let vm_bind_era = o.uapi_minor >= 13;
        a.value = match a.param {
            MSM_PARAM_GPU_ID => p.gpu_id as u64,
            MSM_PARAM_GMEM_SIZE => p.gmem_size_B,
            MSM_PARAM_GMEM_BASE => p.gmem_base,
            MSM_PARAM_CHIP_ID => p.chip_id_param(),
            MSM_PARAM_MAX_FREQ => p.max_freq_Hz,
            MSM_PARAM_TIMESTAMP => gpu_timestamp(file),
            MSM_PARAM_PRIORITIES => p.priorities() as u64,
            MSM_PARAM_PP_PGTABLE => 0,
            MSM_PARAM_FAULTS => {
                let vm_faults = ctx.vm.as_ref().map_or(0, |vm| vm.lock().faults);
                file.dev.gpu.lock().global_faults + vm_faults
            }
            MSM_PARAM_SUSPENDS => file.dev.gpu.lock().suspends,
            MSM_PARAM_VA_START if o.per_process_pgtables => VA_START,
            MSM_PARAM_VA_SIZE if o.per_process_pgtables => p.va_size_B(),
            MSM_PARAM_HIGHEST_BANK_BIT => p.highest_bank_bit,
            MSM_PARAM_RAYTRACING => p.raytracing as u64,
            MSM_PARAM_UBWC_SWIZZLE => p.ubwc_swizzle,
            MSM_PARAM_MACROTILE_MODE => p.macrotile_mode,
            MSM_PARAM_UCHE_TRAP_BASE => p.uche_trap_base,
            MSM_PARAM_HAS_PRR if vm_bind_era => p.has_prr as u64,
            MSM_PARAM_AQE if vm_bind_era => p.aqe as u64,
            // VA_* without per-process page tables, write-only and unknown params.
            _ => return Err(Errno::EINVAL),
        };
        Ok(())
    })
}

pub(super) fn set_param(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_param| {
        if a.pipe != MSM_PIPE_3D0 || a.pad != 0 {
            return Err(Errno::EINVAL);
        }
        // adreno_set_param: string params may be up to a page, every other one is by value.
        match a.param {
            MSM_PARAM_COMM | MSM_PARAM_CMDLINE if a.len > PAGE_SIZE => return Err(Errno::EINVAL),
            MSM_PARAM_COMM | MSM_PARAM_CMDLINE => {}
            _ if a.len != 0 => return Err(Errno::EINVAL),
            _ => {}
        }
        let o = &file.dev.options;
        match a.param {
            MSM_PARAM_COMM | MSM_PARAM_CMDLINE => {
                let bytes = user::read_bytes(a.value, a.len as usize)?;
                let s = String::from_utf8_lossy(&bytes).into_owned();
                let mut ctx = file.ctx();
                if a.param == MSM_PARAM_COMM {
                    ctx.comm = Some(s);
                } else {
                    ctx.cmdline = Some(s);
                }
                Ok(())
            }
            MSM_PARAM_SYSPROF => {
                if !o.perfmon_capable {
                    return Err(Errno::EPERM);
                }
                if a.value > 2 {
                    return Err(Errno::EINVAL);
                }
                file.ctx().sysprof = a.value;
                Ok(())
            }
            MSM_PARAM_EN_VM_BIND if o.uapi_minor >= 13 => {
                if !o.per_process_pgtables {
                    return Err(Errno::EINVAL);
                }
                let mut ctx = file.ctx();
                if ctx.vm.is_some() {
                    return Err(Errno::EBUSY);
                }
                ctx.vm_bind = a.value != 0;
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    })
}
