//! `drm_ioctl()` for the model: finds the handler by command number, copies the argument in and
//! out by the direction bits the caller's request and the kernel's table agree on, zero-extends a
//! short argument, and copies out even when the handler failed — all as drivers/gpu/drm/drm_ioctl.c.
//!
//! Owns: the ioctl table. Locks: none here; handlers take the file's locks.

use super::user::{self, bytes_of, from_bytes, Plain};
use super::{display, gem, param, prime, queue, submit, syncobj, vm_bind, SimFile};
use crate::uapi::*;
use crate::Errno;

type Handler = fn(&SimFile, &mut [u8]) -> Result<(), Errno>;

/// The kernel's table entry: its name (for fault injection), its own request code (size and
/// direction) and the handler.
struct Entry {
    name: &'static str,
    cmd: u64,
    handler: Handler,
}

fn entry(nr: u32) -> Option<Entry> {
    let e = |name, cmd, handler| Some(Entry { name, cmd, handler });
    const MSM: u32 = DRM_COMMAND_BASE;
    match nr {
        0x00 => e("VERSION", DRM_IOCTL_VERSION, param::version),
        0x09 => e("GEM_CLOSE", DRM_IOCTL_GEM_CLOSE, gem::gem_close),
        0x0c => e("GET_CAP", DRM_IOCTL_GET_CAP, param::get_cap),
        0x2d => e(
            "PRIME_HANDLE_TO_FD",
            DRM_IOCTL_PRIME_HANDLE_TO_FD,
            prime::handle_to_fd,
        ),
        0x2e => e(
            "PRIME_FD_TO_HANDLE",
            DRM_IOCTL_PRIME_FD_TO_HANDLE,
            prime::fd_to_handle,
        ),
        0xaf => e("MODE_RMFB", DRM_IOCTL_MODE_RMFB, display::rmfb),
        0xb0 => e(
            "MODE_PAGE_FLIP",
            DRM_IOCTL_MODE_PAGE_FLIP,
            display::page_flip,
        ),
        0xb8 => e("MODE_ADDFB2", DRM_IOCTL_MODE_ADDFB2, display::addfb2),
        0xbf => e("SYNCOBJ_CREATE", DRM_IOCTL_SYNCOBJ_CREATE, syncobj::create),
        0xc0 => e(
            "SYNCOBJ_DESTROY",
            DRM_IOCTL_SYNCOBJ_DESTROY,
            syncobj::destroy,
        ),
        0xc1 => e(
            "SYNCOBJ_HANDLE_TO_FD",
            DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD,
            syncobj::handle_to_fd,
        ),
        0xc2 => e(
            "SYNCOBJ_FD_TO_HANDLE",
            DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE,
            syncobj::fd_to_handle,
        ),
        0xc3 => e("SYNCOBJ_WAIT", DRM_IOCTL_SYNCOBJ_WAIT, syncobj::wait),
        0xc4 => e("SYNCOBJ_RESET", DRM_IOCTL_SYNCOBJ_RESET, syncobj::reset),
        0xc5 => e("SYNCOBJ_SIGNAL", DRM_IOCTL_SYNCOBJ_SIGNAL, syncobj::signal),
        0xca => e(
            "SYNCOBJ_TIMELINE_WAIT",
            DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT,
            syncobj::timeline_wait,
        ),
        0xcb => e("SYNCOBJ_QUERY", DRM_IOCTL_SYNCOBJ_QUERY, syncobj::query),
        0xcc => e(
            "SYNCOBJ_TRANSFER",
            DRM_IOCTL_SYNCOBJ_TRANSFER,
            syncobj::transfer,
        ),
        0xcd => e(
            "SYNCOBJ_TIMELINE_SIGNAL",
            DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL,
            syncobj::timeline_signal,
        ),
        n if n == MSM + DRM_MSM_GET_PARAM => {
            e("GET_PARAM", DRM_IOCTL_MSM_GET_PARAM, param::get_param)
        }
        n if n == MSM + DRM_MSM_SET_PARAM => {
            e("SET_PARAM", DRM_IOCTL_MSM_SET_PARAM, param::set_param)
        }
        n if n == MSM + DRM_MSM_GEM_NEW => e("GEM_NEW", DRM_IOCTL_MSM_GEM_NEW, gem::gem_new),
        n if n == MSM + DRM_MSM_GEM_INFO => e("GEM_INFO", DRM_IOCTL_MSM_GEM_INFO, gem::gem_info),
        n if n == MSM + DRM_MSM_GEM_CPU_PREP => e(
            "GEM_CPU_PREP",
            DRM_IOCTL_MSM_GEM_CPU_PREP,
            gem::gem_cpu_prep,
        ),
        n if n == MSM + DRM_MSM_GEM_CPU_FINI => e(
            "GEM_CPU_FINI",
            DRM_IOCTL_MSM_GEM_CPU_FINI,
            gem::gem_cpu_fini,
        ),
        n if n == MSM + DRM_MSM_GEM_SUBMIT => {
            e("GEM_SUBMIT", DRM_IOCTL_MSM_GEM_SUBMIT, submit::gem_submit)
        }
        n if n == MSM + DRM_MSM_WAIT_FENCE => {
            e("WAIT_FENCE", DRM_IOCTL_MSM_WAIT_FENCE, queue::wait_fence)
        }
        n if n == MSM + DRM_MSM_GEM_MADVISE => {
            e("GEM_MADVISE", DRM_IOCTL_MSM_GEM_MADVISE, gem::gem_madvise)
        }
        n if n == MSM + DRM_MSM_SUBMITQUEUE_NEW => e(
            "SUBMITQUEUE_NEW",
            DRM_IOCTL_MSM_SUBMITQUEUE_NEW,
            queue::submitqueue_new,
        ),
        n if n == MSM + DRM_MSM_SUBMITQUEUE_CLOSE => e(
            "SUBMITQUEUE_CLOSE",
            DRM_IOCTL_MSM_SUBMITQUEUE_CLOSE,
            queue::submitqueue_close,
        ),
        n if n == MSM + DRM_MSM_SUBMITQUEUE_QUERY => e(
            "SUBMITQUEUE_QUERY",
            DRM_IOCTL_MSM_SUBMITQUEUE_QUERY,
            queue::submitqueue_query,
        ),
        n if n == MSM + DRM_MSM_VM_BIND => e("VM_BIND", DRM_IOCTL_MSM_VM_BIND, vm_bind::vm_bind),
        _ => None,
    }
}

/// The model's name of `request` (`"GEM_NEW"`, `"VERSION"`, ...), found by command number as
/// `drm_ioctl` finds its table entry; `None` when the model has no handler for that number (the
/// kernel may still have one: such a request is answered EINVAL by the model, and a caller that
/// stands in for a real device, such as the LD_PRELOAD shim, reports it as unanswered).
pub fn ioctl_name(request: u64) -> Option<&'static str> {
    entry(ioc_nr(request)).map(|e| e.name)
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
    let mut ret = file
        .inject(entry.name)
        .and_then(|()| (entry.handler)(file, &mut kdata));
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
