//! C API of what a driver's kernel backend needs besides buffers and submits (turnip's `tu_knl`
//! entries, see docs/mesa.md): the device's counters (GPU timestamp, faults, suspends),
//! submitqueues with priorities, waits for a queue's seqno, CPU maps of GEM handles and the raw
//! metadata bytes of a GEM handle.
//!
//! Owns: nothing of its own; every call acts on the device's open file. Locks: none; the kernel
//! serialises what needs it, so every function is thread-safe.

use std::ffi::{c_int, c_void};

use super::device::msmws_device;
use super::{borrow, boundary, check_out, slice, write_out, FfiError};
use crate::kernel::ioctl;
use crate::uapi::*;
use crate::Errno;

/// `msmws_device_query`: the GPU's always-on counter (`MSM_PARAM_TIMESTAMP`), in its ticks.
pub const MSMWS_QUERY_TIMESTAMP: u32 = 1;
/// `msmws_device_query`: GPU faults and hangs of this device so far (`MSM_PARAM_FAULTS`); a
/// change tells a driver its device is lost.
pub const MSMWS_QUERY_FAULTS: u32 = 2;
/// `msmws_device_query`: how often the GPU was suspended (`MSM_PARAM_SUSPENDS`).
pub const MSMWS_QUERY_SUSPENDS: u32 = 3;

/// `flags` bit of `msmws_device_submitqueue_new`: the queue may be preempted by higher-priority
/// ones (`MSM_SUBMITQUEUE_ALLOW_PREEMPT`; a6xx and later).
pub const MSMWS_SUBMITQUEUE_ALLOW_PREEMPT: u32 = 1;
// A literal so cbindgen can write it; a test keeps it equal to the uAPI bit.

/// Reads one of the device's counters (`MSMWS_QUERY_*`) into `*value`.
///
/// Thread-safe. Returns 0, -EINVAL (NULL pointer, unknown `what`) or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_device_query(
    dev: *const msmws_device,
    what: u32,
    value: *mut u64,
) -> c_int {
    boundary(|| {
        check_out(value, "value")?;
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        let param = match what {
            MSMWS_QUERY_TIMESTAMP => MSM_PARAM_TIMESTAMP,
            MSMWS_QUERY_FAULTS => MSM_PARAM_FAULTS,
            MSMWS_QUERY_SUSPENDS => MSM_PARAM_SUSPENDS,
            _ => return Err(FfiError::invalid(format!("unknown query {what}"))),
        };
        let v = ioctl::get_param(dev.inner.kernel(), param)?;
        // SAFETY: checked non-null above; the caller provides storage for one u64.
        unsafe { write_out(value, v) };
        Ok(())
    })
}

/// Creates a submitqueue of priority `priority` (0 is the highest; below
/// `msmws_device_info.priorities`) with `MSMWS_SUBMITQUEUE_*` `flags`, and writes its id to
/// `*queue_id`. In VM_BIND mode the queue runs on the device's VM as every other queue does.
///
/// Thread-safe. Returns 0, -EINVAL (NULL pointer, unknown flag bits, or a priority the kernel
/// does not have), or the kernel's errno. Close it with `msmws_device_submitqueue_close`.
#[no_mangle]
pub extern "C" fn msmws_device_submitqueue_new(
    dev: *const msmws_device,
    priority: u32,
    flags: u32,
    queue_id: *mut u32,
) -> c_int {
    boundary(|| {
        check_out(queue_id, "queue_id")?;
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        if flags & !MSMWS_SUBMITQUEUE_ALLOW_PREEMPT != 0 {
            return Err(FfiError::invalid(format!(
                "unknown submitqueue flags {flags:#x}"
            )));
        }
        let id = ioctl::submitqueue_new(dev.inner.kernel(), flags, priority)?;
        dev.made().queues.insert(id);
        // SAFETY: checked non-null above; the caller provides storage for one u32.
        unsafe { write_out(queue_id, id) };
        Ok(())
    })
}

/// Closes submitqueue `queue_id`, made by `msmws_device_submitqueue_new` on `dev`. Submits already
/// queued on it still run.
///
/// Thread-safe. Returns 0, -EINVAL for a NULL `dev`, or -ENOENT for any other queue (closed
/// already, made elsewhere, or one of the library's own, such as a GPU VM's bind queues); nothing
/// is closed then.
#[no_mangle]
pub extern "C" fn msmws_device_submitqueue_close(dev: *const msmws_device, queue_id: u32) -> c_int {
    boundary(|| {
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        let mut made = dev.made();
        if !made.queues.contains(&queue_id) {
            return Err(FfiError::new(
                crate::Errno::ENOENT,
                format!(
                    "submitqueue {queue_id} was not made by msmws_device_submitqueue_new on this \
                     device (or is closed already)"
                ),
            ));
        }
        ioctl::submitqueue_close(dev.inner.kernel(), queue_id)?;
        made.queues.remove(&queue_id);
        Ok(())
    })
}

/// Waits until seqno `seqno` of submitqueue `queue_id` (what `msmws_gpu_vm_submit` wrote to
/// `*seqno`) has retired, for at most `timeout_ns`; 0 only checks. Seqno 0 is always retired.
///
/// Thread-safe. Returns 0, -ETIMEDOUT (not retired in time), -EINVAL (NULL `dev`, or a seqno
/// the queue has not handed out yet), -ENOENT (no such queue) or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_device_wait_seqno(
    dev: *const msmws_device,
    queue_id: u32,
    seqno: u32,
    timeout_ns: u64,
) -> c_int {
    boundary(|| {
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        ioctl::wait_fence(dev.inner.kernel(), queue_id, seqno, timeout_ns)?;
        Ok(())
    })
}

/// Maps the `size_B` bytes of GEM handle `handle` (a `msmws_gpu_buffer`'s or a `msmws_bo`'s)
/// for the CPU, shared and read/write, and writes the address to `*map_out`. With a non-NULL
/// `placed_addr` the map replaces whatever is mapped at that page-aligned address
/// (VK_EXT_map_memory_placed); otherwise the kernel picks the address.
///
/// The map belongs to the caller: release it with `munmap(map, size_B)`. It keeps the object's
/// memory alive even after the handle is closed, as any DRM CPU map does.
/// Thread-safe. Returns 0, -EINVAL (NULL pointer, zero size, misaligned `placed_addr`, a size
/// larger than the object), -ENOENT (no such handle), -ENOSPC (the kernel has no mmap offset
/// for the object: its fake offset space, about 1 TiB, is full or smaller than the object) or the
/// errno of mmap/mremap.
#[no_mangle]
pub extern "C" fn msmws_device_map(
    dev: *const msmws_device,
    handle: u32,
    size_B: u64,
    placed_addr: *mut c_void,
    map_out: *mut *mut c_void,
) -> c_int {
    boundary(|| {
        check_out(map_out, "map_out")?;
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        let len = usize::try_from(size_B)
            .ok()
            .filter(|&l| l > 0)
            .ok_or_else(|| FfiError::invalid(format!("size_B {size_B:#x}")))?;
        if placed_addr as usize % 4096 != 0 {
            return Err(FfiError::invalid(format!(
                "placed_addr {placed_addr:p} is not page-aligned"
            )));
        }
        let map = ioctl::gem_map(dev.inner.kernel(), handle, len)?;
        let ptr = map.as_ptr() as *mut c_void;
        // The caller owns the map from here on and releases it with munmap.
        std::mem::forget(map);
        let ptr = if placed_addr.is_null() {
            ptr
        } else {
            // SAFETY: `ptr` is the start of our own mapping of `len` bytes, which nothing else
            // refers to; MREMAP_FIXED moves it over `placed_addr`, which the caller gave us to
            // replace (the API contract of a placed map).
            let moved = unsafe {
                libc::mremap(
                    ptr,
                    len,
                    len,
                    libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                    placed_addr,
                )
            };
            if moved == libc::MAP_FAILED {
                let e = Errno::last();
                // SAFETY: the failed mremap left our mapping where it was.
                unsafe { libc::munmap(ptr, len) };
                return Err(FfiError::new(e, format!("mremap to {placed_addr:p}: {e}")));
            }
            moved
        };
        // SAFETY: checked non-null above.
        unsafe { write_out(map_out, ptr) };
        Ok(())
    })
}

/// Stores `len` bytes of metadata with GEM handle `handle` (MSM_INFO_SET_METADATA; at most
/// `MSMWS_METADATA_MAX_SIZE`), for the importers of its dma-buf. `msmws_metadata_encode` writes
/// the record this project defines; stock drivers store `struct fdl_metadata`.
///
/// Thread-safe. Returns 0, -EINVAL (NULL `dev`, NULL `data` with `len` > 0), -EOVERFLOW (too
/// long), -ENOENT (no such handle) or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_device_set_metadata(
    dev: *const msmws_device,
    handle: u32,
    data: *const u8,
    len: u32,
) -> c_int {
    boundary(|| {
        // SAFETY: a non-null `dev` is a live device (API contract); `data` holds `len` bytes.
        let (dev, bytes) = unsafe { (borrow(dev, "dev")?, slice(data, len as usize, "data")?) };
        ioctl::gem_set_metadata(dev.inner.kernel(), handle, bytes)?;
        Ok(())
    })
}

/// Reads the metadata of GEM handle `handle` into `out` (`out_size` bytes) and writes its length
/// to `*len_out` (0 when the object has none).
///
/// Thread-safe. Returns 0, -EINVAL (NULL pointer), -ERANGE (`out_size` smaller than the metadata;
/// `*len_out` then holds the size needed), -ENOENT (no such handle) or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_device_get_metadata(
    dev: *const msmws_device,
    handle: u32,
    out: *mut u8,
    out_size: u32,
    len_out: *mut u32,
) -> c_int {
    boundary(|| {
        check_out(len_out, "len_out")?;
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        if out.is_null() && out_size > 0 {
            return Err(FfiError::invalid("out is NULL but out_size is not 0"));
        }
        let bytes = ioctl::gem_get_metadata(dev.inner.kernel(), handle)?;
        let len = bytes.len() as u32;
        // SAFETY: checked non-null above.
        unsafe { write_out(len_out, len) };
        if len > out_size {
            return Err(FfiError::new(
                Errno::ERANGE,
                format!("metadata of {len} bytes, buffer of {out_size}"),
            ));
        }
        // SAFETY: `out` holds `out_size` >= `len` writable bytes (API contract); `bytes` is ours.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len()) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::device::{msmws_device_destroy, msmws_device_new_sim};
    use super::*;
    use std::ptr;

    fn sim(profile: &std::ffi::CStr) -> *mut msmws_device {
        let mut dev = ptr::null_mut();
        assert_eq!(msmws_device_new_sim(profile.as_ptr(), &mut dev), 0);
        dev
    }

    #[test]
    fn constants_match_the_uapi() {
        assert_eq!(
            MSMWS_SUBMITQUEUE_ALLOW_PREEMPT,
            MSM_SUBMITQUEUE_ALLOW_PREEMPT
        );
    }

    /// The device's file also holds the library's own queues and syncobjs (a VM_BIND-mode GPU
    /// VM's two bind queues and two timelines, ids 1 and 2 of each on a fresh file): a driver's
    /// stray id must not close them. Found by the c_abi fuzz target: closing queue 1 made the VM's
    /// final unmap fail (ENOENT) and left its VMA until the file closed.
    #[test]
    fn queues_and_syncobjs_the_driver_did_not_make_are_refused() {
        use super::super::device::{msmws_device_syncobj_create, msmws_device_syncobj_destroy};
        use super::super::gpu_vm::*;
        let dev = sim(c"a750");
        let mut vm = ptr::null_mut();
        assert_eq!(msmws_gpu_vm_create(dev, &mut vm), 0);
        for id in [0, 1, 2, 3] {
            assert_eq!(msmws_device_submitqueue_close(dev, id), -libc::ENOENT);
            assert_eq!(msmws_device_syncobj_destroy(dev, id), -libc::EINVAL);
        }
        let (mut q, mut h) = (0, 0);
        assert_eq!(msmws_device_submitqueue_new(dev, 0, 0, &mut q), 0);
        assert_eq!(msmws_device_syncobj_create(dev, &mut h), 0);
        let mut buf = msmws_gpu_buffer::default();
        assert_eq!(msmws_gpu_vm_create_buffer(vm, 8192, 0x20000, &mut buf), 0);
        assert_eq!(msmws_gpu_vm_free_buffer(vm, &buf, ptr::null(), 0, false), 0);
        assert_eq!(msmws_gpu_vm_destroy(vm), 0, "its bind queues are intact");
        assert_eq!(msmws_device_submitqueue_close(dev, q), 0);
        assert_eq!(msmws_device_submitqueue_close(dev, q), -libc::ENOENT);
        assert_eq!(msmws_device_syncobj_destroy(dev, h), 0);
        assert_eq!(msmws_device_syncobj_destroy(dev, h), -libc::EINVAL);
        msmws_device_destroy(dev);
    }

    #[test]
    fn counters_queues_and_seqno_waits() {
        let dev = sim(c"a660");
        let mut v = u64::MAX;
        assert_eq!(msmws_device_query(dev, MSMWS_QUERY_FAULTS, &mut v), 0);
        assert_eq!(v, 0);
        assert_eq!(msmws_device_query(dev, MSMWS_QUERY_TIMESTAMP, &mut v), 0);
        assert_eq!(msmws_device_query(dev, MSMWS_QUERY_SUSPENDS, &mut v), 0);
        assert_eq!(msmws_device_query(dev, 99, &mut v), -libc::EINVAL);
        assert_eq!(
            msmws_device_query(dev, MSMWS_QUERY_FAULTS, ptr::null_mut()),
            -libc::EINVAL
        );

        let mut q = 0;
        assert_eq!(msmws_device_submitqueue_new(dev, 1, 0, &mut q), 0);
        assert_ne!(q, 0);
        assert_eq!(
            msmws_device_submitqueue_new(dev, 0, 2, &mut q),
            -libc::EINVAL
        );
        // msm_submitqueue_create: a priority past the ring's levels is EINVAL.
        assert_eq!(
            msmws_device_submitqueue_new(dev, 1000, 0, &mut q),
            -libc::EINVAL
        );
        // Seqno 0 has always retired; one not yet handed out is EINVAL (msm_wait_fence).
        assert_eq!(msmws_device_wait_seqno(dev, q, 0, 0), 0);
        assert_eq!(msmws_device_wait_seqno(dev, q, 5, 0), -libc::EINVAL);
        assert_eq!(msmws_device_wait_seqno(dev, 4242, 0, 0), -libc::ENOENT);
        assert_eq!(msmws_device_submitqueue_close(dev, q), 0);
        assert_eq!(msmws_device_submitqueue_close(dev, q), -libc::ENOENT);
        msmws_device_destroy(dev);
    }

    /// A buffer larger than the kernel's whole mmap offset space (about 1 TiB) gets offset 0
    /// from GET_OFFSET: ENOSPC with a sentence, not an mmap at offset 0 (nor, as the c_abi fuzz
    /// target first found, a panic in the model's offset arithmetic).
    #[test]
    fn map_of_a_buffer_with_no_mmap_offset_is_enospc() {
        let dev = sim(c"a750");
        let mut bo = ptr::null_mut();
        assert_eq!(
            super::super::bo::msmws_bo_new(dev, 2 << 40, 0x20000, &mut bo),
            0
        );
        let handle = super::super::bo::msmws_bo_handle(bo);
        let mut map = ptr::null_mut();
        assert_eq!(
            msmws_device_map(dev, handle, 4096, ptr::null_mut(), &mut map),
            -libc::ENOSPC
        );
        assert!(map.is_null());
        // SAFETY: the library's last-error sentence is a NUL-terminated string it owns.
        let msg = unsafe { std::ffi::CStr::from_ptr(crate::ffi::msmws_last_error_message()) };
        assert!(msg.to_string_lossy().contains("no mmap offset"), "{msg:?}");
        super::super::bo::msmws_bo_unref(bo);
        msmws_device_destroy(dev);
    }

    #[test]
    fn cpu_map_and_metadata_of_a_handle() {
        use super::super::gpu_vm::*;
        let dev = sim(c"a750");
        let mut vm = ptr::null_mut();
        assert_eq!(msmws_gpu_vm_create(dev, &mut vm), 0);
        let mut buf = msmws_gpu_buffer::default();
        assert_eq!(msmws_gpu_vm_create_buffer(vm, 8192, 0x20000, &mut buf), 0);

        let mut map = ptr::null_mut();
        assert_eq!(
            msmws_device_map(dev, buf.handle, 8192, ptr::null_mut(), &mut map),
            0
        );
        // SAFETY: `map` is our fresh 8 KiB read/write map.
        unsafe { *(map as *mut u32) = 0xc0ffee };
        // A placed map of the same object sees the same memory.
        // SAFETY: reserving an anonymous range to place the map over, as a driver would.
        let hole = unsafe {
            libc::mmap(
                ptr::null_mut(),
                8192,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let mut placed = ptr::null_mut();
        assert_eq!(
            msmws_device_map(dev, buf.handle, 8192, hole, &mut placed),
            0
        );
        assert_eq!(placed, hole);
        // SAFETY: both are live maps of the same object.
        assert_eq!(unsafe { *(placed as *const u32) }, 0xc0ffee);
        let mut other = ptr::null_mut();
        assert_eq!(
            msmws_device_map(dev, buf.handle, 1 << 20, ptr::null_mut(), &mut other),
            -libc::EINVAL
        );
        assert_eq!(
            msmws_device_map(dev, 777, 4096, ptr::null_mut(), &mut other),
            -libc::ENOENT
        );
        assert_eq!(
            msmws_device_map(dev, buf.handle, 4096, 8 as *mut c_void, &mut other),
            -libc::EINVAL
        );
        // SAFETY: the maps are ours and unused from here on.
        unsafe {
            libc::munmap(map, 8192);
            libc::munmap(placed, 8192);
        }

        let mut out = [0u8; 16];
        let mut len = 99;
        assert_eq!(
            msmws_device_get_metadata(dev, buf.handle, out.as_mut_ptr(), 16, &mut len),
            0
        );
        assert_eq!(len, 0);
        assert_eq!(
            msmws_device_set_metadata(dev, buf.handle, b"abcdefgh".as_ptr(), 8),
            0
        );
        assert_eq!(
            msmws_device_get_metadata(dev, buf.handle, out.as_mut_ptr(), 4, &mut len),
            -libc::ERANGE
        );
        assert_eq!(len, 8);
        assert_eq!(
            msmws_device_get_metadata(dev, buf.handle, out.as_mut_ptr(), 16, &mut len),
            0
        );
        assert_eq!(&out[..8], b"abcdefgh");
        // msm_ioctl_gem_info: more than 128 bytes is EOVERFLOW.
        let big = [1u8; 129];
        assert_eq!(
            msmws_device_set_metadata(dev, buf.handle, big.as_ptr(), 129),
            -libc::EOVERFLOW
        );
        assert_eq!(
            msmws_device_set_metadata(dev, 777, big.as_ptr(), 8),
            -libc::ENOENT
        );

        assert_eq!(msmws_gpu_vm_free_buffer(vm, &buf, ptr::null(), 0, false), 0);
        assert_eq!(msmws_gpu_vm_destroy(vm), 0);
        msmws_device_destroy(dev);
    }
}
