//! `drm_ioctl()` for the model: finds the handler by command number, copies the argument in and
//! out by the direction bits the caller's request and the kernel's table agree on, zero-extends a
//! short argument, and copies out even when the handler failed — all as drivers/gpu/drm/drm_ioctl.c.
//!
//! Owns: the ioctl table. Locks: none here; handlers take the file's locks.

use super::auth::{DRM_MASTER, DRM_RENDER_ALLOW};
use super::user::{self, bytes_of, from_bytes, Plain};
use super::{auth, display, dumb, gem, kms, modeset, param, prime, queue, submit, syncobj};
use super::{vblank, vm_bind, SimFile};
use crate::uapi::*;
use crate::Errno;

type Handler = fn(&SimFile, &mut [u8]) -> Result<(), Errno>;

/// The kernel's table entry: its name (for fault injection), its own request code (size and
/// direction), its `DRM_*` permission flags and the handler.
struct Entry {
    name: &'static str,
    cmd: u64,
    flags: u32,
    handler: Handler,
}

/// drm_ioctl.c's `drm_ioctls[]` and msm_drv.c's `msm_ioctls[]`: every msm ioctl, and the core
/// GEM, PRIME, syncobj, VERSION and GET_CAP ioctls, are DRM_RENDER_ALLOW; the KMS ioctls are
/// not (render files get EACCES), and those that change the display need DRM_MASTER.
fn entry(nr: u32) -> Option<Entry> {
    const R: u32 = DRM_RENDER_ALLOW;
    let e = |name, cmd, handler| {
        Some(Entry {
            name,
            cmd,
            flags: R,
            handler,
        })
    };
    let k = |name, cmd, flags, handler| {
        Some(Entry {
            name,
            cmd,
            flags,
            handler,
        })
    };
    const MSM: u32 = DRM_COMMAND_BASE;
    match nr {
        0x00 => e("VERSION", DRM_IOCTL_VERSION, param::version),
        0x01 => k("GET_UNIQUE", DRM_IOCTL_GET_UNIQUE, 0, auth::get_unique),
        0x02 => k("GET_MAGIC", DRM_IOCTL_GET_MAGIC, 0, auth::get_magic),
        0x09 => e("GEM_CLOSE", DRM_IOCTL_GEM_CLOSE, gem::gem_close),
        0x0c => e("GET_CAP", DRM_IOCTL_GET_CAP, param::get_cap),
        0x0d => k(
            "SET_CLIENT_CAP",
            DRM_IOCTL_SET_CLIENT_CAP,
            0,
            kms::set_client_cap,
        ),
        0x11 => k(
            "AUTH_MAGIC",
            DRM_IOCTL_AUTH_MAGIC,
            DRM_MASTER,
            auth::auth_magic,
        ),
        0x1e => k("SET_MASTER", DRM_IOCTL_SET_MASTER, 0, auth::set_master),
        0x1f => k("DROP_MASTER", DRM_IOCTL_DROP_MASTER, 0, auth::drop_master),
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
        0x3a => k("WAIT_VBLANK", DRM_IOCTL_WAIT_VBLANK, 0, vblank::wait_vblank),
        0xa0 => k(
            "MODE_GETRESOURCES",
            DRM_IOCTL_MODE_GETRESOURCES,
            0,
            kms::get_resources,
        ),
        0xa1 => k("MODE_GETCRTC", DRM_IOCTL_MODE_GETCRTC, 0, kms::get_crtc),
        0xa2 => k(
            "MODE_SETCRTC",
            DRM_IOCTL_MODE_SETCRTC,
            DRM_MASTER,
            modeset::set_crtc,
        ),
        0xa4 => k("MODE_GETGAMMA", DRM_IOCTL_MODE_GETGAMMA, 0, kms::get_gamma),
        0xa5 => k(
            "MODE_SETGAMMA",
            DRM_IOCTL_MODE_SETGAMMA,
            DRM_MASTER,
            kms::set_gamma,
        ),
        0xa6 => k(
            "MODE_GETENCODER",
            DRM_IOCTL_MODE_GETENCODER,
            0,
            kms::get_encoder,
        ),
        0xa7 => k(
            "MODE_GETCONNECTOR",
            DRM_IOCTL_MODE_GETCONNECTOR,
            0,
            kms::get_connector,
        ),
        0xaa => k(
            "MODE_GETPROPERTY",
            DRM_IOCTL_MODE_GETPROPERTY,
            0,
            kms::get_property,
        ),
        0xac => k(
            "MODE_GETPROPBLOB",
            DRM_IOCTL_MODE_GETPROPBLOB,
            0,
            kms::get_prop_blob,
        ),
        0xae => k("MODE_ADDFB", DRM_IOCTL_MODE_ADDFB, 0, display::addfb),
        0xaf => k("MODE_RMFB", DRM_IOCTL_MODE_RMFB, 0, display::rmfb),
        0xb0 => k(
            "MODE_PAGE_FLIP",
            DRM_IOCTL_MODE_PAGE_FLIP,
            DRM_MASTER,
            modeset::page_flip,
        ),
        0xb1 => k(
            "MODE_DIRTYFB",
            DRM_IOCTL_MODE_DIRTYFB,
            DRM_MASTER,
            display::dirty_fb,
        ),
        0xb2 => k(
            "MODE_CREATE_DUMB",
            DRM_IOCTL_MODE_CREATE_DUMB,
            0,
            dumb::create_dumb,
        ),
        0xb3 => k("MODE_MAP_DUMB", DRM_IOCTL_MODE_MAP_DUMB, 0, dumb::map_dumb),
        0xb4 => k(
            "MODE_DESTROY_DUMB",
            DRM_IOCTL_MODE_DESTROY_DUMB,
            0,
            dumb::destroy_dumb,
        ),
        0xb5 => k(
            "MODE_GETPLANERESOURCES",
            DRM_IOCTL_MODE_GETPLANERESOURCES,
            0,
            kms::get_plane_resources,
        ),
        0xb6 => k("MODE_GETPLANE", DRM_IOCTL_MODE_GETPLANE, 0, kms::get_plane),
        0xb8 => k("MODE_ADDFB2", DRM_IOCTL_MODE_ADDFB2, 0, display::addfb2),
        0xb9 => k(
            "MODE_OBJ_GETPROPERTIES",
            DRM_IOCTL_MODE_OBJ_GETPROPERTIES,
            0,
            kms::obj_get_properties,
        ),
        0xba => k(
            "MODE_OBJ_SETPROPERTY",
            DRM_IOCTL_MODE_OBJ_SETPROPERTY,
            DRM_MASTER,
            modeset::obj_set_property,
        ),
        0xbc => k(
            "MODE_ATOMIC",
            DRM_IOCTL_MODE_ATOMIC,
            DRM_MASTER,
            modeset::atomic,
        ),
        0xbd => k(
            "MODE_CREATEPROPBLOB",
            DRM_IOCTL_MODE_CREATEPROPBLOB,
            0,
            kms::create_prop_blob,
        ),
        0xbe => k(
            "MODE_DESTROYPROPBLOB",
            DRM_IOCTL_MODE_DESTROYPROPBLOB,
            0,
            kms::destroy_prop_blob,
        ),
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
    // drm_ioctl_kernel: the permission check comes after the copy-in, and the copy-out happens
    // whatever it says.
    let mut ret = file
        .dev
        .auth
        .permit(file.id, entry.flags, file.dev.options.cap_sys_admin)
        .and_then(|()| file.inject(entry.name))
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
