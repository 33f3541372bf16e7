//! C API calls a GL driver needs beyond what turnip uses (freedreno's msmws backend,
//! `src/freedreno/drm/msmws` in mesa/patches): the buffer cache's MADVISE, CPU_PREP for shared
//! buffers, a submitqueue's own fault count (GL robustness), and submits with sync-file in- and
//! out-fences (EGL_ANDROID_native_fence_sync, KMS's IN_FENCE_FD / OUT_FENCE_PTR).
//!
//! Owns: nothing; every call borrows a device or a GPU VM. Locks: those of `crate::bind` for the
//! submit; the others take none of their own. All are thread-safe.

use std::ffi::c_int;

use super::device::msmws_device;
use super::gpu_vm::{self, msmws_cmd, msmws_gpu_buffer, msmws_gpu_vm, msmws_sync_point};
use super::{borrow, boundary, check_out, write_out, FfiError};
use crate::kernel::ioctl;

/// `msmws_device_cpu_prep`: the CPU will read (`MSM_PREP_READ`).
pub const MSMWS_PREP_READ: u32 = 0x01;
/// `msmws_device_cpu_prep`: the CPU will write (`MSM_PREP_WRITE`).
pub const MSMWS_PREP_WRITE: u32 = 0x02;
/// `msmws_device_cpu_prep`: do not wait, only ask (`MSM_PREP_NOSYNC`): -EBUSY when busy.
pub const MSMWS_PREP_NOSYNC: u32 = 0x04;
// Literals so the header has numbers; the uAPI's values, as freedreno passes them through
// (checked by the test `prep_flags_are_the_uapi_ones`).

/// Tells the kernel whether the contents of `buffer` (a `msmws_gpu_vm_create_buffer` or
/// `msmws_gpu_vm_map_bo` result of `vm`) are still needed (MADVISE): `willneed` false lets it
/// purge the pages under memory pressure (a buffer parked in a driver's cache), true asks for
/// them back. `*retained` is false when the object was purged: its contents are lost and the
/// driver must not reuse it (free it). Without VM_BIND a parked buffer is also left out of the
/// BO table submits pass (the kernel refuses a submit naming a DONTNEED object) until taken back.
///
/// Thread-safe. Returns 0, -EINVAL (NULL pointer, a handle the file does not have) or the
/// kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_madvise(
    vm: *const msmws_gpu_vm,
    buffer: *const msmws_gpu_buffer,
    willneed: bool,
    retained: *mut bool,
) -> c_int {
    boundary(|| {
        check_out(retained, "retained")?;
        // SAFETY: non-null pointers are live for the call (API contract).
        let (vm, buffer) = unsafe { (borrow(vm, "vm")?, borrow(buffer, "buffer")?) };
        let r = gpu_vm::madvise(vm, buffer, willneed)?;
        // SAFETY: checked non-null above; the caller provides storage for one bool.
        unsafe { write_out(retained, r) };
        Ok(())
    })
}

/// Waits until the GPU is done with GEM handle `handle` for a CPU access `op`
/// (`MSMWS_PREP_READ` / `_WRITE`, with `MSMWS_PREP_NOSYNC` to only ask), for at most
/// `timeout_ns`: the kernel's view, which includes other processes' use of a shared buffer
/// (implicit sync), where a driver's own fences know only its own submits.
///
/// Thread-safe. Returns 0, -EBUSY (NOSYNC and busy), -ETIMEDOUT, -EINVAL (NULL `dev`, unknown
/// `op` bits), -ENOENT (no such handle) or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_device_cpu_prep(
    dev: *const msmws_device,
    handle: u32,
    op: u32,
    timeout_ns: u64,
) -> c_int {
    boundary(|| {
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        if op & !(MSMWS_PREP_READ | MSMWS_PREP_WRITE | MSMWS_PREP_NOSYNC) != 0 {
            return Err(FfiError::invalid(format!(
                "unknown cpu_prep op bits {op:#x}"
            )));
        }
        ioctl::gem_cpu_prep(dev.inner.kernel(), handle, op, timeout_ns)?;
        Ok(())
    })
}

/// Writes to `*faults` the GPU faults and hangs charged to submitqueue `queue_id` so far
/// (SUBMITQUEUE_QUERY(FAULTS)): a GL context's "was it my fault" for robustness, where
/// `msmws_device_query(MSMWS_QUERY_FAULTS)` counts the whole device's.
///
/// Thread-safe. Returns 0, -EINVAL (NULL pointer), -ENOENT (no such queue) or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_device_submitqueue_faults(
    dev: *const msmws_device,
    queue_id: u32,
    faults: *mut u64,
) -> c_int {
    boundary(|| {
        check_out(faults, "faults")?;
        // SAFETY: a non-null `dev` is a live device from msmws_device_new_* (API contract).
        let dev = unsafe { borrow(dev, "dev") }?;
        let n = ioctl::submitqueue_faults(dev.inner.kernel(), queue_id)?;
        // SAFETY: checked non-null above; the caller provides storage for one u64.
        unsafe { write_out(faults, u64::from(n)) };
        Ok(())
    })
}

/// `msmws_gpu_vm_submit` with sync-file fences: the submit also waits for the sync file
/// `in_fence_fd` (-1: none; it stays the caller's), and with a non-NULL `out_fence_fd` writes a
/// new sync file (O_CLOEXEC, the caller's to close) that signals when the commands are done.
///
/// Thread-safe. Returns 0, -EINVAL (NULL pointers with non-zero counts, a command in no live
/// buffer), -EBADF (a bad `in_fence_fd`), -EPIPE (the VM was lost) or the kernel's errno;
/// `*seqno` and `*out_fence_fd` are written only on success.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_submit_fence_fd(
    vm: *const msmws_gpu_vm,
    queue_id: u32,
    cmds: *const msmws_cmd,
    n_cmds: u32,
    uses: *const msmws_gpu_buffer,
    n_uses: u32,
    waits: *const msmws_sync_point,
    n_waits: u32,
    signals: *const msmws_sync_point,
    n_signals: u32,
    in_fence_fd: c_int,
    out_fence_fd: *mut c_int,
    seqno: *mut u32,
) -> c_int {
    // SAFETY: the caller's pointers satisfy this function's contract, which is submit's.
    unsafe {
        gpu_vm::submit(
            vm,
            queue_id,
            (cmds, n_cmds),
            (uses, n_uses),
            (waits, n_waits),
            (signals, n_signals),
            (in_fence_fd, out_fence_fd),
            seqno,
        )
    }
}

#[cfg(test)]
mod prep_tests {
    use super::*;
    use crate::uapi::{MSM_PREP_NOSYNC, MSM_PREP_READ, MSM_PREP_WRITE};

    #[test]
    fn prep_flags_are_the_uapi_ones() {
        assert_eq!(
            (MSMWS_PREP_READ, MSMWS_PREP_WRITE, MSMWS_PREP_NOSYNC),
            (MSM_PREP_READ, MSM_PREP_WRITE, MSM_PREP_NOSYNC)
        );
    }
}
