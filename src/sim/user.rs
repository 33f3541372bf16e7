//! User memory as the kernel sees it: `copy_from_user` / `copy_to_user` on pointers the caller
//! passed, with EFAULT (not a crash of the test process) for an address that is not mapped.
//!
//! Owns: nothing; stateless. The model runs in the caller's process, so "user memory" is this
//! process's memory, read and written with `process_vm_readv`/`process_vm_writev` on our own pid,
//! which the kernel checks page by page exactly as copy_from_user would.

use std::mem::{size_of, MaybeUninit};

use crate::Errno;

/// Types that are plain old data: every bit pattern is a valid value and there is no padding the
/// model could leak. All uAPI structs qualify.
///
/// # Safety
/// Implement only for `#[repr(C)]` types made of integers (and arrays/unions of them).
pub unsafe trait Plain: Copy + 'static {}

macro_rules! plain {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: a `#[repr(C)]` uAPI struct of integer fields; any bit pattern is valid.
        unsafe impl Plain for $t {}
    )* };
}

use crate::uapi::*;
plain!(
    u8,
    u16,
    u32,
    u64,
    i32,
    i64,
    drm_version,
    drm_get_cap,
    drm_gem_close,
    drm_prime_handle,
    drm_syncobj_create,
    drm_syncobj_destroy,
    drm_syncobj_handle,
    drm_syncobj_wait,
    drm_syncobj_timeline_wait,
    drm_syncobj_array,
    drm_syncobj_timeline_array,
    drm_syncobj_transfer,
    drm_mode_fb_cmd2,
    drm_mode_crtc_page_flip,
    drm_auth,
    drm_unique,
    drm_wait_vblank,
    drm_set_client_cap,
    drm_mode_card_res,
    drm_mode_crtc,
    drm_mode_modeinfo,
    drm_mode_get_encoder,
    drm_mode_get_connector,
    drm_mode_get_plane_res,
    drm_mode_get_plane,
    drm_mode_get_property,
    drm_mode_property_enum,
    drm_mode_get_blob,
    drm_mode_create_blob,
    drm_mode_destroy_blob,
    drm_mode_obj_get_properties,
    drm_mode_obj_set_property,
    drm_mode_atomic,
    drm_mode_fb_cmd,
    drm_mode_fb_dirty_cmd,
    drm_mode_crtc_lut,
    drm_mode_create_dumb,
    drm_mode_map_dumb,
    drm_mode_destroy_dumb,
    drm_event_vblank,
    drm_format_modifier_blob,
    drm_format_modifier,
    drm_msm_param,
    drm_msm_gem_new,
    drm_msm_gem_info,
    drm_msm_gem_cpu_prep,
    drm_msm_gem_cpu_fini,
    drm_msm_syncobj,
    drm_msm_gem_submit_reloc,
    sync_merge_data,
    sync_fence_info,
    sync_file_info,
    sync_set_deadline,
    dma_buf_sync,
    dma_buf_sync_file,
    drm_msm_gem_submit_cmd,
    drm_msm_gem_submit_bo,
    drm_msm_gem_submit,
    drm_msm_wait_fence,
    drm_msm_gem_madvise,
    drm_msm_submitqueue,
    drm_msm_submitqueue_query,
    drm_msm_vm_bind_op,
    drm_msm_vm_bind,
);

fn transfer(addr: u64, len: usize, local: *mut u8, write: bool) -> Result<(), Errno> {
    if len == 0 {
        return Ok(());
    }
    if addr == 0 || addr.checked_add(len as u64).is_none() {
        return Err(Errno::EFAULT);
    }
    let local = libc::iovec {
        iov_base: local.cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: `local` covers a buffer of `len` bytes owned by the caller; the remote side is only
    // accessed by the kernel, which checks it and reports EFAULT instead of faulting.
    let n = unsafe {
        if write {
            libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0)
        } else {
            libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0)
        }
    };
    if n == len as isize {
        Ok(())
    } else {
        // A partial copy means the range ran into an unmapped page: EFAULT, as copy_*_user.
        Err(Errno::EFAULT)
    }
}

/// `copy_from_user` of `len` bytes.
pub fn read_bytes(addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; len];
    transfer(addr, len, buf.as_mut_ptr(), false)?;
    Ok(buf)
}

/// `copy_to_user` of `data`.
pub fn write_bytes(addr: u64, data: &[u8]) -> Result<(), Errno> {
    transfer(addr, data.len(), data.as_ptr() as *mut u8, true)
}

/// `copy_from_user` of one `T`.
pub fn read<T: Plain>(addr: u64) -> Result<T, Errno> {
    let mut v = MaybeUninit::<T>::zeroed();
    transfer(addr, size_of::<T>(), v.as_mut_ptr().cast(), false)?;
    // SAFETY: zero-initialised and then fully overwritten; `T: Plain` accepts any bit pattern.
    Ok(unsafe { v.assume_init() })
}

/// `copy_to_user` of one `T`.
pub fn write<T: Plain>(addr: u64, value: &T) -> Result<(), Errno> {
    transfer(addr, size_of::<T>(), value as *const T as *mut u8, true)
}

/// Reads `count` elements `stride` bytes apart, taking `min(stride, size_of::<T>())` bytes of each
/// and zero-filling the rest, as the kernel does for strided uAPI arrays.
pub fn read_strided<T: Plain>(addr: u64, count: u32, stride: u32) -> Result<Vec<T>, Errno> {
    let take = (stride as usize).min(size_of::<T>());
    // The count is the caller's: reserve only what a few pages of user memory could hold and
    // grow as elements are really read, so a huge count with a bad pointer is EFAULT, not an
    // allocation of up to 2^32 elements (found by the sim_ioctl fuzz target).
    let mut out = Vec::with_capacity((count as usize).min(4096));
    for i in 0..count as u64 {
        let at = addr.checked_add(i * stride as u64).ok_or(Errno::EFAULT)?;
        let mut v = MaybeUninit::<T>::zeroed();
        transfer(at, take, v.as_mut_ptr().cast(), false)?;
        // SAFETY: zero-initialised, partly overwritten with user bytes; any bit pattern is valid.
        out.push(unsafe { v.assume_init() });
    }
    Ok(out)
}

/// Reads a whole array of `count` `T`s.
pub fn read_array<T: Plain>(addr: u64, count: u32) -> Result<Vec<T>, Errno> {
    read_strided(addr, count, size_of::<T>() as u32)
}

/// Views a `Plain` value as bytes (for the ioctl argument copy).
pub fn bytes_of<T: Plain>(v: &T) -> &[u8] {
    // SAFETY: `T: Plain` has no padding-dependent invariants; reading its bytes is defined.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()) }
}

/// Builds a `Plain` value from bytes, zero-extending a short buffer (drm_ioctl's behaviour for an
/// argument smaller than the kernel's struct).
pub fn from_bytes<T: Plain>(b: &[u8]) -> T {
    let mut v = MaybeUninit::<T>::zeroed();
    let n = b.len().min(size_of::<T>());
    // SAFETY: copies at most size_of::<T>() bytes into zeroed storage; any bit pattern is valid.
    unsafe {
        std::ptr::copy_nonoverlapping(b.as_ptr(), v.as_mut_ptr().cast::<u8>(), n);
        v.assume_init()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmapped_address_is_efault_not_a_crash() {
        assert_eq!(read::<u64>(8), Err(Errno::EFAULT));
        assert_eq!(read::<u64>(0), Err(Errno::EFAULT));
        assert_eq!(write(16, &1u32), Err(Errno::EFAULT));
    }

    #[test]
    fn reads_and_writes_live_memory() {
        let mut x = 0x1234_5678u32;
        assert_eq!(read::<u32>(&x as *const u32 as u64), Ok(0x1234_5678));
        write(&mut x as *mut u32 as u64, &7u32).unwrap();
        assert_eq!(x, 7);
    }

    #[test]
    fn a_huge_count_at_a_bad_address_is_efault_without_allocating_it() {
        // 2^32 - 1 elements of 40 bytes would be 160 GiB: an abort, were it reserved up front.
        type Op = crate::uapi::drm_msm_vm_bind_op;
        assert_eq!(read_array::<Op>(8, u32::MAX).err(), Some(Errno::EFAULT));
        let words = [7u64; 4];
        assert_eq!(
            read_array::<u64>(words.as_ptr() as u64, u32::MAX).err(),
            Some(Errno::EFAULT),
            "reads stop at the first unmapped page"
        );
    }

    #[test]
    fn strided_reads_take_min_of_stride_and_size() {
        let words = [1u64, 2, 3, 4];
        let v: Vec<u64> = read_strided(words.as_ptr() as u64, 2, 16).unwrap();
        assert_eq!(v, vec![1, 3]);
        let v: Vec<u64> = read_strided(words.as_ptr() as u64, 2, 0).unwrap();
        assert_eq!(v, vec![0, 0], "stride 0 reads nothing of each element");
    }
}
