//! C API of the standalone GPU address heap (`msmws_va_heap_*`), a drop-in for Mesa's
//! `util_vma_heap` that any driver can use.
//!
//! Owns: the `msmws_va_heap` handle (a boxed [`VaHeap`]). Locks: the heap's arena locks (see
//! `crate::iova`); every function here is safe to call from several threads on the same heap,
//! except `msmws_va_heap_destroy`, which must be the last call on it. A heap used from one thread
//! places every request exactly where util_vma_heap would; from several, each thread starts in
//! its own part of the range so they allocate in parallel.
//!
//! Errors (negative errno; `msmws_last_error_message()` says which and why):
//! - `-EINVAL`: NULL pointer, zero size, alignment not a power of two, unknown flag bits, a no-cross
//!   boundary smaller than the request, a heap range not page-aligned or past 2^64, a fixed address
//!   not page-aligned or outside the heap;
//! - `-ENOSPC`: no hole holds the request (util_vma_heap returns 0 here);
//! - `-EEXIST`: a fixed-address request overlaps a live allocation;
//! - `-EBUSY`: a fixed-address request overlaps only ranges freed after a fence that has not
//!   signalled yet (signal it, or wait for it, and retry);
//! - `-ENOENT`: a free of a range that is not a live allocation of that address and size (sizes
//!   compare in 4 KiB pages, as they are allocated): never allocated, already freed, or freed
//!   after a fence.
//!
//! Every failing call changes nothing.

// C callers cannot see `unsafe`; each function documents its pointer contract instead, and null
// pointers are checked before use.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::c_int;

use super::{borrow, boundary, check_out, write_out, FfiError};
use crate::iova::{AllocFlags, Fence, VaHeap};

/// A GPU address heap. Opaque.
pub struct msmws_va_heap {
    inner: VaHeap,
}

/// `flags` bit of `msmws_va_heap_alloc`: the highest valid address of all holes (bottom-up, the
/// default, gives the lowest, util_vma_heap's first fit).
pub const MSMWS_VA_HEAP_ALLOC_TOP_DOWN: u32 = 1;
/// `flags` bits 8..15 of `msmws_va_heap_alloc`: never cross a multiple of `1 << shift` bytes,
/// written as `shift << MSMWS_VA_HEAP_NO_CROSS_SHIFT_OFFSET` (0 = no such rule; 12..=63 otherwise).
pub const MSMWS_VA_HEAP_NO_CROSS_SHIFT_OFFSET: u32 = 8;
/// Mask of the no-cross shift field in `flags`.
pub const MSMWS_VA_HEAP_NO_CROSS_SHIFT_MASK: u32 = 0xff00;

/// Creates a heap of GPU addresses `[start, start + size)`, both multiples of 4096 bytes (4 KiB
/// pages), `start + size <= 2^64` (so `[4096, 2^64)` is `start = 4096, size = 2^64 - 4096`).
///
/// On success `*out` owns the heap; release it with `msmws_va_heap_destroy`. Thread-safe.
/// Returns 0 or -EINVAL (NULL `out`, empty or misaligned range, range past 2^64).
#[no_mangle]
pub extern "C" fn msmws_va_heap_create(
    start: u64,
    size: u64,
    out: *mut *mut msmws_va_heap,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        let heap = VaHeap::new(start, size)?;
        let raw = Box::into_raw(Box::new(msmws_va_heap { inner: heap }));
        // SAFETY: `out` was checked non-null above; the caller promises it is writable.
        unsafe { write_out(out, raw) };
        Ok(())
    })
}

/// Destroys a heap made by `msmws_va_heap_create`. NULL is ignored. Outstanding allocations and
/// deferred frees are simply forgotten. Must be the last call on `heap`, from one thread.
#[no_mangle]
pub extern "C" fn msmws_va_heap_destroy(heap: *mut msmws_va_heap) {
    boundary(|| {
        if !heap.is_null() {
            // SAFETY: `heap` came from Box::into_raw in msmws_va_heap_create and the caller promises
            // this is the last call on it, so nothing else uses it.
            drop(unsafe { Box::from_raw(heap) });
        }
        Ok(())
    });
}

fn heap_ref<'a>(heap: *const msmws_va_heap) -> Result<&'a VaHeap, FfiError> {
    // SAFETY: a non-null `heap` is a live handle from msmws_va_heap_create (the caller's promise).
    Ok(&unsafe { borrow(heap, "heap") }?.inner)
}

/// Allocates `size` bytes (rounded up to 4 KiB) aligned to `align` (a power of two; below 4 KiB
/// means 4 KiB) and writes the address to `*addr_out`.
///
/// `flags`: `MSMWS_VA_HEAP_ALLOC_TOP_DOWN` and/or a no-cross shift (see
/// `MSMWS_VA_HEAP_NO_CROSS_SHIFT_OFFSET`), per call. The lowest valid address of all holes
/// (top-down: the highest), as util_vma_heap's first fit, in O(log n). Thread-safe. Returns 0, -EINVAL (NULL pointer, zero size, bad alignment or flags,
/// no-cross boundary smaller than `size`) or -ENOSPC (no hole holds it); `*addr_out` is written
/// only on success.
#[no_mangle]
pub extern "C" fn msmws_va_heap_alloc(
    heap: *const msmws_va_heap,
    size: u64,
    align: u64,
    flags: u32,
    addr_out: *mut u64,
) -> c_int {
    boundary(|| {
        let heap = heap_ref(heap)?;
        check_out(addr_out, "addr_out")?;
        let addr = heap.alloc(size, align, AllocFlags::from_bits(flags)?)?;
        // SAFETY: `addr_out` was checked non-null above; the caller promises it is writable.
        unsafe { write_out(addr_out, addr) };
        Ok(())
    })
}

/// Allocates exactly `[addr, addr + size)` (capture/replay), `addr` page-aligned, `size` rounded
/// up to 4 KiB. O(log n). Thread-safe. Returns 0, -EINVAL (NULL heap, zero size, misaligned or
/// outside the heap), -EEXIST (overlaps a live allocation) or -EBUSY (overlaps only ranges freed
/// after a fence that has not signalled).
#[no_mangle]
pub extern "C" fn msmws_va_heap_alloc_addr(
    heap: *const msmws_va_heap,
    addr: u64,
    size: u64,
) -> c_int {
    boundary(|| Ok(heap_ref(heap)?.alloc_addr(addr, size)?))
}

/// Frees an allocation, given with the address and size it was allocated with. O(log n).
/// Thread-safe. Returns 0, -EINVAL (NULL heap) or -ENOENT (not a live allocation of this address
/// and size in 4 KiB pages: never allocated, freed twice, or freed after a fence); failures
/// change nothing.
#[no_mangle]
pub extern "C" fn msmws_va_heap_free(heap: *const msmws_va_heap, addr: u64, size: u64) -> c_int {
    boundary(|| Ok(heap_ref(heap)?.free(addr, size)?))
}

/// Frees an allocation once seqno `seqno` of submitqueue `queue_id` has completed (compared with
/// 32-bit wrap-around, as the kernel does); until then no allocation returns it. Immediately if
/// that seqno is already known complete. Thread-safe. Returns 0, -EINVAL (NULL heap) or -ENOENT
/// (as `msmws_va_heap_free`).
#[no_mangle]
pub extern "C" fn msmws_va_heap_free_after(
    heap: *const msmws_va_heap,
    addr: u64,
    size: u64,
    queue_id: u32,
    seqno: u32,
) -> c_int {
    boundary(|| {
        let fence = Fence::Queue { queue_id, seqno };
        Ok(heap_ref(heap)?.free_after(addr, size, fence, None)?)
    })
}

/// Tells the heap that submitqueue `queue_id` completed every seqno up to `seqno` (learned from a
/// wait or submit the caller already did; no ioctl). Ranges freed after those seqnos become free
/// on the heap's next call. Thread-safe. Returns 0 or -EINVAL (NULL heap).
#[no_mangle]
pub extern "C" fn msmws_va_heap_signal_queue(
    heap: *const msmws_va_heap,
    queue_id: u32,
    seqno: u32,
) -> c_int {
    boundary(|| {
        let heap = heap_ref(heap)?;
        heap.timelines().signal_queue(queue_id, seqno);
        heap.reclaim();
        Ok(())
    })
}

/// Bytes currently free (not allocated, not waiting on a fence). O(arenas). Thread-safe. Returns
/// 0 for a NULL heap.
#[no_mangle]
pub extern "C" fn msmws_va_heap_free_size(heap: *const msmws_va_heap) -> u64 {
    read_size(heap, VaHeap::free_size)
}

/// A size `read` reports of `heap`, or 0 for a NULL heap (the error is recorded).
fn read_size(heap: *const msmws_va_heap, read: impl FnOnce(&VaHeap) -> u64) -> u64 {
    let mut size_B = 0;
    boundary(|| {
        size_B = read(heap_ref(heap)?);
        Ok(())
    });
    size_B
}

/// The size in bytes of the largest free range, as util_vma_heap_get_max_free_continuous_size
/// (turnip's replay path allocates the whole of it). Deferred ranges whose fences have signalled
/// count as free. Thread-safe. Returns 0 for a NULL heap or a full one.
#[no_mangle]
pub extern "C" fn msmws_va_heap_largest_free(heap: *const msmws_va_heap) -> u64 {
    read_size(heap, VaHeap::largest_hole)
}
