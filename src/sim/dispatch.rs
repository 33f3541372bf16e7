//! `drm_ioctl()` for the model: finds the handler by command number, copies the argument in and
//! out by the direction bits the caller's request and the kernel's table agree on, zero-extends a
//! short argument, and copies out even when the handler failed — all as drivers/gpu/drm/drm_ioctl.c.
//!
//! Owns: the ioctl table. Locks: none here; handlers take the file's locks.

use super::user::{self, bytes_of, from_bytes, Plain};
use super::{param, SimFile};
use crate::uapi::*;
use crate::Errno;

type Handler = fn(&SimFile, &mut [u8]) -> Result<(), Errno>;

/// The kernel's table entry: its own request code (size and direction) and the handler.
struct Entry {
    cmd: u64,
    handler: Handler,
}

fn entry(nr: u32) -> Option<Entry> {
    let e = |cmd, handler| Some(Entry { cmd, handler });
    const MSM: u32 = DRM_COMMAND_BASE;
    match nr {
        0x00 => e(DRM_IOCTL_VERSION, param::version),
        0x0c => e(DRM_IOCTL_GET_CAP, param::get_cap),
        n if n == MSM + DRM_MSM_GET_PARAM => e(DRM_IOCTL_MSM_GET_PARAM, param::get_param),
        n if n == MSM + DRM_MSM_SET_PARAM => e(DRM_IOCTL_MSM_SET_PARAM, param::set_param),
        _ => None,
    }
}

pub(super) fn ioctl(file: &SimFile, request: u64, arg: u64) -> Result<(), Errno> {
    // drm_ioctl: an ioctl number without a table entry is EINVAL.
    let Some(entry) = entry(ioc_nr(request)) else {
        return Err(Errno::EINVAL);
    };
    let user_size = ioc_size(request);
    let dirs = ioc_dir(request) & ioc_dir(entry.cmd);
    let in_size = if dirs & IOC_WRITE != 0 { user_size } else { 0 };
    let out_size = if dirs & IOC_READ != 0 { user_size } else { 0 };
    let ksize = in_size.max(out_size).max(ioc_size(entry.cmd));

    let mut kdata = vec![0u8; ksize];
    if in_size > 0 {
        let bytes = user::read_bytes(arg, in_size)?;
        kdata[..in_size].copy_from_slice(&bytes);
    }
    let mut ret = (entry.handler)(file, &mut kdata);
    // The kernel copies the argument back even when the handler failed.
    if out_size > 0 && user::write_bytes(arg, &kdata[..out_size]).is_err() {
        ret = Err(Errno::EFAULT);
    }
    ret
}

/// Runs `f` on the argument decoded as `T`, then stores it back for the copy-out.
pub(super) fn typed<T: Plain>(
    kdata: &mut [u8],
    f: impl FnOnce(&mut T) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut v: T = from_bytes(kdata);
    let r = f(&mut v);
    let b = bytes_of(&v);
    kdata[..b.len()].copy_from_slice(b);
    r
}
