//! C API of buffer objects and flip chains (`msmws_bo_*`, `msmws_flip_chain_*`).
//!
//! Owns: the `msmws_bo` handle (a counted reference: `msmws_bo_ref` / `msmws_bo_unref`; the GEM
//! handle is closed, or the buffer cached, when the last reference goes) and the
//! `msmws_flip_chain` handle (a boxed [`FlipChain`]). Locks: those of `crate::bo` (the table lock
//! on import and final release); every function is thread-safe except the `_destroy` and the last
//! `_unref`, which must be the last call on their object.
//!
//! Errors (negative errno; `msmws_last_error_message()` says which and why): `-EINVAL` for NULL
//! pointers, a zero size, unknown or contradictory flags (`MSMWS_BO_SHARED` with
//! `MSMWS_BO_NO_SHARE`), a bad flip-chain index; `-EPERM` for exporting a `MSMWS_BO_NO_SHARE`
//! buffer; `-EBUSY` for removing the buffer on screen; otherwise the kernel's errno.

use std::ffi::c_int;
use std::os::fd::{BorrowedFd, IntoRawFd};
use std::sync::Arc;

use super::device::msmws_device;
use super::{borrow, boundary, check_out, write_out, FfiError, FfiResult};
use crate::bo::{Bo, BoFlags, FbLayout, FlipChain};

/// A buffer object reference. Opaque.
pub struct msmws_bo {
    pub(crate) bo: Bo,
}

/// A flip chain: buffers flipped on one CRTC, each kept (GEM handle and framebuffer) until
/// removed. Opaque.
pub struct msmws_flip_chain {
    inner: FlipChain,
}

/// `MSM_BO_SCANOUT`.
pub const MSMWS_BO_SCANOUT: u32 = 0x1;
/// `MSM_BO_GPU_READONLY`.
pub const MSMWS_BO_GPU_READONLY: u32 = 0x2;
/// `MSM_BO_NO_SHARE`: shares the VM's reservation; can never be exported or scanned out.
pub const MSMWS_BO_NO_SHARE: u32 = 0x4;
/// `MSM_BO_CACHED`.
pub const MSMWS_BO_CACHED: u32 = 0x10000;
/// `MSM_BO_WC`.
pub const MSMWS_BO_WC: u32 = 0x20000;
/// `MSM_BO_CACHED_COHERENT`.
pub const MSMWS_BO_CACHED_COHERENT: u32 = 0x80000;
/// Created to be shared (exported, scanned out): never from the cache, never NO_SHARE.
pub const MSMWS_BO_SHARED: u32 = 0x8000_0000;
/// The CRTC of the kernel model's display (`msmws_device_new_sim` devices).
pub const MSMWS_SIM_CRTC_ID: u32 = 0x31;
/// `DRM_FORMAT_XRGB8888` ('XR24').
pub const MSMWS_DRM_FORMAT_XRGB8888: u32 = 0x3432_5258;
// Literals so cbindgen can write them into the header; a test keeps them equal to the crate's.

/// One plane of a framebuffer for `msmws_flip_chain_add_bo` / `_import_dmabuf`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct msmws_fb_layout {
    pub width: u32,
    pub height: u32,
    /// DRM fourcc, e.g. `MSMWS_DRM_FORMAT_XRGB8888`.
    pub fourcc: u32,
    pub pitch_B: u32,
    pub offset_B: u32,
}

fn dev_ref<'a>(dev: *const msmws_device) -> FfiResult<&'a Arc<crate::Device>> {
    // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
    Ok(&unsafe { borrow(dev, "dev") }?.inner)
}

fn bo_ref<'a>(bo: *const msmws_bo) -> FfiResult<&'a Bo> {
    // SAFETY: a non-null `bo` is a live reference from this library (API contract).
    Ok(&unsafe { borrow(bo, "bo") }?.bo)
}

fn chain_ref<'a>(chain: *const msmws_flip_chain) -> FfiResult<&'a FlipChain> {
    // SAFETY: a non-null `chain` is a live flip chain from msmws_flip_chain_create (API contract).
    Ok(&unsafe { borrow(chain, "chain") }?.inner)
}

/// A caller's fd for the duration of one call; negative is -EINVAL (a closed one is EBADF later).
fn fd_ref<'a>(fd: c_int) -> FfiResult<BorrowedFd<'a>> {
    if fd < 0 {
        return Err(FfiError::invalid(format!("fd {fd} is negative")));
    }
    // SAFETY: non-negative, and the caller keeps it open for the duration of the call (API
    // contract); a closed fd is reported by the kernel as EBADF.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

fn give_bo(bo: Bo, out: *mut *mut msmws_bo) {
    let raw = Arc::into_raw(Arc::new(msmws_bo { bo })) as *mut msmws_bo;
    // SAFETY: `out` was checked non-null by the caller before any work was done.
    unsafe { write_out(out, raw) }
}

fn flags_from_c(flags: u32) -> FfiResult<BoFlags> {
    BoFlags::from_bits(flags)
        .ok_or_else(|| FfiError::invalid(format!("unknown buffer flag bits {flags:#x}")))
}

fn layout_from_c(layout: *const msmws_fb_layout) -> FfiResult<FbLayout> {
    // SAFETY: a non-null `layout` points to a readable msmws_fb_layout (API contract).
    let l = unsafe { borrow(layout, "layout") }?;
    Ok(FbLayout {
        width: l.width,
        height: l.height,
        fourcc: l.fourcc,
        pitch_B: l.pitch_B,
        offset_B: l.offset_B,
    })
}

/// Creates a buffer of at least `size_B` bytes with `MSMWS_BO_*` `flags` (exactly one of CACHED,
/// WC, CACHED_COHERENT). Private buffers (no `MSMWS_BO_SHARED`) may come from the buffer cache.
///
/// On success `*out` holds a new reference; release it with `msmws_bo_unref`. The buffer keeps
/// the device alive. Thread-safe. Returns 0, -EINVAL, or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_bo_new(
    dev: *const msmws_device,
    size_B: u64,
    flags: u32,
    out: *mut *mut msmws_bo,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        let dev = dev_ref(dev)?;
        let bo = Bo::new(dev, size_B, flags_from_c(flags)?)?;
        give_bo(bo, out);
        Ok(())
    })
}

/// Imports the dma-buf `fd` (which stays the caller's). Importing a dma-buf whose buffer is
/// live returns that buffer (the same GEM handle) with its count raised; this is race-free
/// against a concurrent final release of that buffer.
///
/// On success `*out` holds a new reference (release it with `msmws_bo_unref`). Thread-safe.
/// Returns 0, -EINVAL (NULL pointer, negative fd, not a dma-buf), -EBADF, or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_bo_import_dmabuf(
    dev: *const msmws_device,
    fd: c_int,
    out: *mut *mut msmws_bo,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        let dev = dev_ref(dev)?;
        let bo = Bo::import_dmabuf(dev, fd_ref(fd)?)?;
        give_bo(bo, out);
        Ok(())
    })
}

/// Exports `bo` as a new dma-buf fd (O_CLOEXEC, read/write) written to `*fd_out`; the caller
/// owns and closes it. A buffer exported once is never cached.
///
/// Thread-safe. Returns 0, -EINVAL (NULL pointer), -EPERM (a `MSMWS_BO_NO_SHARE` buffer; the
/// kernel is not asked), or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_bo_export_dmabuf(bo: *const msmws_bo, fd_out: *mut c_int) -> c_int {
    boundary(|| {
        check_out(fd_out, "fd_out")?;
        let fd = bo_ref(bo)?.export_dmabuf()?;
        // SAFETY: checked non-null above; the caller promises it is writable.
        unsafe { write_out(fd_out, fd.into_raw_fd()) };
        Ok(())
    })
}

/// Takes one more reference on `bo` and returns `bo` (NULL stays NULL). Thread-safe.
#[no_mangle]
pub extern "C" fn msmws_bo_ref(bo: *mut msmws_bo) -> *mut msmws_bo {
    if !bo.is_null() {
        // SAFETY: a non-null `bo` came from Arc::into_raw in this module and is still referenced
        // by the caller (API contract).
        unsafe { Arc::increment_strong_count(bo as *const msmws_bo) };
    }
    bo
}

/// Drops one reference on `bo`; the last one closes the GEM handle (or caches the buffer). NULL
/// is ignored. Thread-safe; `bo` must not be used by the caller afterwards.
#[no_mangle]
pub extern "C" fn msmws_bo_unref(bo: *mut msmws_bo) {
    let _ = boundary(|| {
        if !bo.is_null() {
            // SAFETY: `bo` came from Arc::into_raw in this module; this call gives back one of
            // the caller's references (API contract).
            drop(unsafe { Arc::from_raw(bo as *const msmws_bo) });
        }
        Ok(())
    });
}

/// The GEM handle of `bo` in its device's file; 0 for NULL.
#[no_mangle]
pub extern "C" fn msmws_bo_handle(bo: *const msmws_bo) -> u32 {
    bo_ref(bo).map_or(0, Bo::handle)
}

/// The size of `bo` in bytes (a page multiple; for an import, the dma-buf's size); 0 for NULL.
#[no_mangle]
pub extern "C" fn msmws_bo_size(bo: *const msmws_bo) -> u64 {
    bo_ref(bo).map_or(0, Bo::size_B)
}

/// Creates an empty flip chain on CRTC `crtc_id` of `dev` (`MSMWS_SIM_CRTC_ID` on a model
/// device). Release it with `msmws_flip_chain_destroy`. Thread-safe. Returns 0 or -EINVAL.
#[no_mangle]
pub extern "C" fn msmws_flip_chain_create(
    dev: *const msmws_device,
    crtc_id: u32,
    out: *mut *mut msmws_flip_chain,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        let dev = dev_ref(dev)?;
        let raw = Box::into_raw(Box::new(msmws_flip_chain {
            inner: FlipChain::new(dev, crtc_id),
        }));
        // SAFETY: checked non-null above; the caller promises it is writable.
        unsafe { write_out(out, raw) };
        Ok(())
    })
}

/// Adds `bo` to the chain with a framebuffer of `*layout` (MODE_ADDFB2); the chain keeps its own
/// reference (and so the GEM handle) until the buffer is removed or the chain destroyed. Writes
/// the buffer's index to `*index_out`. Thread-safe. Returns 0, -EINVAL, or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_flip_chain_add_bo(
    chain: *const msmws_flip_chain,
    bo: *const msmws_bo,
    layout: *const msmws_fb_layout,
    index_out: *mut u32,
) -> c_int {
    boundary(|| {
        check_out(index_out, "index_out")?;
        let chain = chain_ref(chain)?;
        let bo = bo_ref(bo)?;
        let i = chain.add(bo, layout_from_c(layout)?)?;
        // SAFETY: checked non-null above; the caller promises it is writable.
        unsafe { write_out(index_out, i as u32) };
        Ok(())
    })
}

/// The compositor side: imports the client's dma-buf `fd` (which stays the caller's), keeps its
/// GEM handle while the buffer is in the chain, and adds a framebuffer of `*layout`. Writes the
/// index to `*index_out`. Thread-safe. Returns 0, -EINVAL, -EBADF, or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_flip_chain_import_dmabuf(
    chain: *const msmws_flip_chain,
    fd: c_int,
    layout: *const msmws_fb_layout,
    index_out: *mut u32,
) -> c_int {
    boundary(|| {
        check_out(index_out, "index_out")?;
        let chain = chain_ref(chain)?;
        let i = chain.import_dmabuf(fd_ref(fd)?, layout_from_c(layout)?)?;
        // SAFETY: checked non-null above; the caller promises it is writable.
        unsafe { write_out(index_out, i as u32) };
        Ok(())
    })
}

/// Flips the chain's CRTC to buffer `index` (MODE_PAGE_FLIP). Thread-safe. Returns 0, -EINVAL
/// (NULL chain, unknown index), or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_flip_chain_flip(chain: *const msmws_flip_chain, index: u32) -> c_int {
    boundary(|| Ok(chain_ref(chain)?.flip(index as usize)?))
}

/// Removes buffer `index`: its framebuffer, then the chain's reference. Thread-safe. Returns 0,
/// -EINVAL (NULL chain, unknown index), -EBUSY (it is on screen), or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_flip_chain_remove(chain: *const msmws_flip_chain, index: u32) -> c_int {
    boundary(|| Ok(chain_ref(chain)?.remove(index as usize)?))
}

/// Destroys a flip chain: removes every framebuffer (the one on screen turns the CRTC off) and
/// drops every reference it kept. NULL is ignored. Must be the last call on `chain`.
#[no_mangle]
pub extern "C" fn msmws_flip_chain_destroy(chain: *mut msmws_flip_chain) {
    let _ = boundary(|| {
        if !chain.is_null() {
            // SAFETY: `chain` came from Box::into_raw in msmws_flip_chain_create and this is the
            // last call on it (API contract).
            drop(unsafe { Box::from_raw(chain) });
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi::*;

    #[test]
    fn constants_match_the_crate() {
        assert_eq!(MSMWS_BO_SCANOUT, MSM_BO_SCANOUT);
        assert_eq!(MSMWS_BO_GPU_READONLY, MSM_BO_GPU_READONLY);
        assert_eq!(MSMWS_BO_NO_SHARE, MSM_BO_NO_SHARE);
        assert_eq!(MSMWS_BO_CACHED, MSM_BO_CACHED);
        assert_eq!(MSMWS_BO_WC, MSM_BO_WC);
        assert_eq!(MSMWS_BO_CACHED_COHERENT, MSM_BO_CACHED_COHERENT);
        assert_eq!(MSMWS_BO_SHARED, BoFlags::SHARED.bits());
        assert_eq!(MSMWS_SIM_CRTC_ID, crate::sim::display::CRTC_ID);
        assert_eq!(MSMWS_DRM_FORMAT_XRGB8888, crate::bo::DRM_FORMAT_XRGB8888);
    }
}
