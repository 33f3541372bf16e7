//! C API of GPU memory (`msmws_gpu_vm_*`): buffers at GPU addresses, frees that wait for the
//! submits using them, submits by address — the same calls whatever mode the kernel is in
//! (VM_BIND, SET_IOVA, kernel iova).
//!
//! Owns: the `msmws_gpu_vm` handle (a boxed [`GpuVm`] and a reference on its device). Locks: those
//! of `crate::bind`; every function is thread-safe except `msmws_gpu_vm_destroy`, which must be
//! the last call on its object.
//!
//! Errors (negative errno; `msmws_last_error_message()` says which and why): `-EINVAL` for NULL
//! pointers or bad sizes, `-ENOSPC` when the address space is full, `-EPIPE` when the GPU VM was
//! lost (the message then carries the last VM operations and the kernel's devcoredump), otherwise
//! the kernel's errno.

use std::ffi::c_int;
use std::sync::Arc;

use super::bo::msmws_bo;
use super::device::msmws_device;
use super::{borrow, boundary, check_out, slice, write_out, FfiError};
use crate::bind::{GpuBuffer, GpuVm, Placement};
use crate::kernel::ioctl::{Fences, SyncPoint};
use crate::Device;
use std::os::fd::IntoRawFd;

/// GPU memory of one device. Opaque.
pub struct msmws_gpu_vm {
    dev: Arc<Device>,
    vm: GpuVm,
}

/// A buffer at a GPU address.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct msmws_gpu_buffer {
    /// GEM handle (closed by the library when the buffer is freed).
    pub handle: u32,
    pub pad: u32,
    pub iova: u64,
    pub size_B: u64,
}

/// A syncobj and a point on it (0 for a binary syncobj).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct msmws_sync_point {
    pub handle: u32,
    pub pad: u32,
    pub point: u64,
}

/// A command buffer: `size_B` bytes of commands at GPU address `iova`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct msmws_cmd {
    pub iova: u64,
    pub size_B: u32,
    pub pad: u32,
}

fn points(p: &[msmws_sync_point]) -> Vec<SyncPoint> {
    p.iter()
        .map(|p| SyncPoint {
            handle: p.handle,
            point: p.point,
        })
        .collect()
}

impl From<GpuBuffer> for msmws_gpu_buffer {
    fn from(b: GpuBuffer) -> Self {
        msmws_gpu_buffer {
            handle: b.handle,
            pad: 0,
            iova: b.iova,
            size_B: b.size_B,
        }
    }
}

/// The arguments of the two "give this address back after these users" calls.
///
/// # Safety
/// Non-null pointers must be live for the call and `users` must hold `n_users` elements.
unsafe fn release_args<'a>(
    vm: *const msmws_gpu_vm,
    buffer: *const msmws_gpu_buffer,
    users: *const msmws_sync_point,
    n_users: u32,
) -> super::FfiResult<(&'a msmws_gpu_vm, GpuBuffer, Vec<SyncPoint>)> {
    // SAFETY: guaranteed by the caller.
    let (vm, b, users) = unsafe {
        (
            borrow(vm, "vm")?,
            borrow(buffer, "buffer")?,
            slice(users, n_users as usize, "users")?,
        )
    };
    Ok((vm, to_buffer(b), points(users)))
}

fn to_buffer(b: &msmws_gpu_buffer) -> GpuBuffer {
    GpuBuffer {
        handle: b.handle,
        iova: b.iova,
        size_B: b.size_B,
    }
}

/// `msmws_gpu_vm_create_with` flag: turn on the free-buffer cache. A freed private buffer placed
/// anywhere (`msmws_gpu_vm_create_buffer`, freed with `shared` false) keeps its handle and GPU
/// mapping and serves a later `msmws_gpu_vm_create_buffer` of the same flags and a close size
/// (its `size_B` may then be up to 1.5 times the request's bucket) once its users are done;
/// buffers cached over 250 ms are made DONTNEED, over 1 s (or past 256 MiB) freed for real.
pub const MSMWS_GPU_VM_CACHE: u32 = 1;

/// `msmws_gpu_vm_create` with `MSMWS_GPU_VM_*` `flags`. Returns its errors, and -EINVAL for an
/// unknown flag.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_create_with(
    dev: *const msmws_device,
    flags: u32,
    out: *mut *mut msmws_gpu_vm,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        if flags & !MSMWS_GPU_VM_CACHE != 0 {
            return Err(FfiError::invalid(format!(
                "unknown gpu_vm flags {flags:#x}"
            )));
        }
        // SAFETY: a non-null `dev` is a live device (API contract).
        let dev = unsafe { borrow(dev, "dev") }?.inner.clone();
        let vm = GpuVm::new(&dev)?;
        if flags & MSMWS_GPU_VM_CACHE != 0 {
            vm.enable_cache();
        }
        let raw = Box::into_raw(Box::new(msmws_gpu_vm { dev, vm }));
        // SAFETY: checked non-null above.
        unsafe { write_out(out, raw) };
        Ok(())
    })
}

/// Creates the GPU memory of `dev` (in the mode its probe chose) into `*out`.
///
/// The object holds a reference on the device. Release it with `msmws_gpu_vm_destroy`.
/// Returns 0, -EINVAL for a NULL argument, or -ENOMEM. No ioctl: the VM_BIND queues are made by
/// the first flush or submit that sends a bind.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_create(
    dev: *const msmws_device,
    out: *mut *mut msmws_gpu_vm,
) -> c_int {
    msmws_gpu_vm_create_with(dev, 0, out)
}

/// A new buffer of `size_B` bytes (`MSMWS_BO_*` cache and usage flags) at a GPU address.
///
/// Thread-safe. Returns 0, -EINVAL, -ENOSPC or the kernel's errno; `*out` is written on success.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_create_buffer(
    vm: *const msmws_gpu_vm,
    size_B: u64,
    flags: u32,
    out: *mut msmws_gpu_buffer,
) -> c_int {
    create_buffer(vm, size_B, flags, Placement::Any, out)
}

/// The body of both buffer-creating calls.
fn create_buffer(
    vm: *const msmws_gpu_vm,
    size_B: u64,
    flags: u32,
    placement: Placement,
    out: *mut msmws_gpu_buffer,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        // SAFETY: a non-null `vm` is live (API contract).
        let vm = unsafe { borrow(vm, "vm") }?;
        if size_B == 0 {
            return Err(FfiError::invalid("size_B is 0"));
        }
        let b = vm
            .vm
            .create_buffer_at(vm.dev.kernel(), size_B, flags, placement)?;
        // SAFETY: checked non-null above.
        unsafe { write_out(out, b.into()) };
        Ok(())
    })
}

/// [`msmws_gpu_vm_create_buffer`] for buffers whose address an app captures and replays
/// (VK_KHR_buffer_device_address capture/replay): `iova` 0 takes the highest free range (away
/// from ordinary buffers, so a replay finds these addresses free), any other page-aligned `iova`
/// exactly that address. A range still held by freed buffers gets a flush, then a wait of at
/// most 3 s for their users (as stock turnip waits for its zombies).
///
/// Thread-safe. Returns 0, -EINVAL, -ENOSPC, -EEXIST (the range is in use), -ETIMEDOUT (its
/// frees' users did not finish in time),
/// -EOPNOTSUPP (kernel-iova mode: the kernel picks addresses), or the kernel's errno; `*out` is
/// written on success.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_create_buffer_at(
    vm: *const msmws_gpu_vm,
    size_B: u64,
    flags: u32,
    iova: u64,
    out: *mut msmws_gpu_buffer,
) -> c_int {
    let placement = match iova {
        0 => Placement::Top,
        a => Placement::At(a),
    };
    create_buffer(vm, size_B, flags, placement, out)
}

/// What a GPU VM has done so far (VM_BIND mode; all 0 in the legacy modes except the reclaim
/// counters). Filled by `msmws_gpu_vm_get_stats`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct msmws_gpu_vm_stats {
    /// Map/unmap operations the driver's calls queued.
    pub ops_queued: u64,
    /// Operations sent to the kernel after planning (merged, cancelled, sorted).
    pub ops_sent: u64,
    pub vm_bind_ioctls: u64,
    pub bind_jobs: u64,
    /// Page-table pages the kernel preallocated for the jobs sent (its own rule).
    pub prealloc_pages: u64,
    /// Jobs re-sent smaller after ENOMEM.
    pub enomem_fallbacks: u64,
    /// Times a flush waited for an earlier job so the kernel's throttle would not stall.
    pub throttle_waits: u64,
    pub submits: u64,
    /// Bind points submits waited for.
    pub submit_bind_waits: u64,
    /// Legacy modes: reclaim passes, and freed buffers they closed.
    pub reclaim_passes: u64,
    pub reclaimed: u64,
    /// The free-buffer cache (`MSMWS_GPU_VM_CACHE`): creates it served, creates it could not,
    /// buffers made DONTNEED, freed for age or budget, found purged, and cached now.
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_advised: u64,
    pub cache_expired: u64,
    pub cache_purged: u64,
    pub cache_cached: u64,
}

/// Copies the VM's counters into `*stats` (for a driver's debug output and for measurements).
///
/// Thread-safe. Returns 0, or -EINVAL for a NULL argument.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_get_stats(
    vm: *const msmws_gpu_vm,
    stats: *mut msmws_gpu_vm_stats,
) -> c_int {
    boundary(|| {
        check_out(stats, "stats")?;
        // SAFETY: a non-null `vm` is live (API contract).
        let vm = unsafe { borrow(vm, "vm") }?;
        let b = vm.vm.bind_vm().map(|b| b.stats()).unwrap_or_default();
        let (reclaim_passes, reclaimed) = vm.vm.reclaim_stats();
        let c = vm.vm.cache_stats();
        let out = msmws_gpu_vm_stats {
            ops_queued: b.ops_queued,
            ops_sent: b.ops_sent,
            vm_bind_ioctls: b.vm_bind_ioctls,
            bind_jobs: b.jobs,
            prealloc_pages: b.prealloc_pages,
            enomem_fallbacks: b.enomem_fallbacks,
            throttle_waits: b.throttle_waits,
            submits: b.submits,
            submit_bind_waits: b.submit_bind_waits,
            reclaim_passes,
            reclaimed,
            cache_hits: c.hits,
            cache_misses: c.misses,
            cache_advised: c.advised,
            cache_expired: c.expired,
            cache_purged: c.purged,
            cache_cached: c.cached,
        };
        // SAFETY: checked non-null above.
        unsafe { write_out(stats, out) };
        Ok(())
    })
}

/// Frees `buffer` once the `n_users` points in `users` (the submits that may still use it) have
/// signalled; its address is reused only after that. `shared`: it was exported or imported.
/// A syncobj in `users` that this VM's submits signal must stay alive until the VM has been
/// flushed after that point signalled (or destroyed). Any other may be destroyed right after this
/// call: its point, if not yet signalled (or a binary syncobj's fence), is transferred to the VM's
/// own timeline (one SYNCOBJ_QUERY, and a SYNCOBJ_TRANSFER when not signalled).
///
/// Thread-safe. Returns 0, -EINVAL (also for a buffer that is not a live buffer of this VM:
/// freed already, or mapped with `msmws_gpu_vm_map_bo`; or a user point with no fence yet),
/// -ENOENT (a user that is no syncobj), or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_free_buffer(
    vm: *const msmws_gpu_vm,
    buffer: *const msmws_gpu_buffer,
    users: *const msmws_sync_point,
    n_users: u32,
    shared: bool,
) -> c_int {
    boundary(|| {
        // SAFETY: the API contract of this function is release_args's.
        let (vm, b, users) = unsafe { release_args(vm, buffer, users, n_users) }?;
        vm.vm.free_buffer(vm.dev.kernel(), b, &users, shared)?;
        Ok(())
    })
}

/// Gives a shared buffer (`msmws_bo`, imported or exported) a GPU address in this VM, written to
/// `*out`. The VM holds its own reference on the buffer until `msmws_gpu_vm_unmap_bo`, so the
/// caller may unref its `msmws_bo` meanwhile.
///
/// Thread-safe. Returns 0, -EINVAL, -ENOSPC, -EBUSY without VM_BIND when the buffer already has
/// an address in this VM (mapped; with userspace addresses also unmapped and not yet reclaimed:
/// the kernel gives an object one address per VM, and that address stays set on it), or the
/// kernel's errno.
///
/// In kernel-iova mode (no per-process page tables) every file shares the kernel's one VM, and a
/// handle close in any of them unmaps the object for all: an imported buffer loses its address
/// when its exporter closes its handle, and the kernel may give that address to the next
/// buffer. msm-winsys then drops the first buffer from the submits' BO table; its
/// `msmws_gpu_vm_unmap_bo` still releases it.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_map_bo(
    vm: *const msmws_gpu_vm,
    bo: *const msmws_bo,
    out: *mut msmws_gpu_buffer,
) -> c_int {
    boundary(|| {
        check_out(out, "out")?;
        // SAFETY: non-null pointers are live objects of this library (API contract).
        let (vm, bo) = unsafe { (borrow(vm, "vm")?, borrow(bo, "bo")?) };
        let b = vm.vm.map_bo(vm.dev.kernel(), &bo.bo)?;
        // SAFETY: checked non-null above.
        unsafe { write_out(out, b.into()) };
        Ok(())
    })
}

/// Takes back the address `msmws_gpu_vm_map_bo` gave once the `n_users` points in `users` have
/// signalled, then drops the VM's reference on the buffer (its GEM handle stays the buffer's).
///
/// Thread-safe. Returns 0, -EINVAL for NULL pointers or a buffer not mapped by map_bo (or
/// already unmapped, or with another handle or size than map_bo gave), or the kernel's errno for
/// a user syncobj that does not exist (ENOENT on the model); nothing is done then. Users are
/// taken as `msmws_gpu_vm_free_buffer` takes them: a syncobj this VM's submits do not signal may
/// be destroyed right after this call.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_unmap_bo(
    vm: *const msmws_gpu_vm,
    buffer: *const msmws_gpu_buffer,
    users: *const msmws_sync_point,
    n_users: u32,
) -> c_int {
    boundary(|| {
        // SAFETY: the API contract of this function is release_args's.
        let (vm, b, users) = unsafe { release_args(vm, buffer, users, n_users) }?;
        vm.vm.unmap_bo(vm.dev.kernel(), b, &users)?;
        Ok(())
    })
}

/// Submits `n_cmds` command buffers on submitqueue `queue_id`. `uses` lists the buffers the
/// commands may access (in VM_BIND mode the submit waits only for their binds); it waits for
/// `waits` and signals `signals`. The queue's seqno goes to `*seqno` (may be NULL).
///
/// Thread-safe. Returns 0, -EINVAL, -EPIPE (the VM was lost; the message explains), or the
/// kernel's errno.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn msmws_gpu_vm_submit(
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
    seqno: *mut u32,
) -> c_int {
    // SAFETY: the caller's pointers satisfy this function's contract, which is submit's.
    unsafe {
        submit(
            vm,
            queue_id,
            (cmds, n_cmds),
            (uses, n_uses),
            (waits, n_waits),
            (signals, n_signals),
            (-1, std::ptr::null_mut()),
            seqno,
        )
    }
}

/// `GpuVm::madvise` of `buffer` on `vm` (for `crate::ffi::gl`, which cannot see the VM).
pub(super) fn madvise(
    vm: &msmws_gpu_vm,
    buffer: &msmws_gpu_buffer,
    willneed: bool,
) -> super::FfiResult<bool> {
    Ok(vm
        .vm
        .madvise(vm.dev.kernel(), to_buffer(buffer), willneed)?)
}

/// The body of `msmws_gpu_vm_submit` and `msmws_gpu_vm_submit_fence_fd` (`crate::ffi::gl`):
/// arrays as (pointer, count), sync files as (in-fence fd or -1, out-fence fd pointer or NULL).
///
/// # Safety
/// Non-null pointers must be live for the call, each array must hold its count of elements and
/// the out pointers must be writable.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn submit(
    vm: *const msmws_gpu_vm,
    queue_id: u32,
    cmds: (*const msmws_cmd, u32),
    uses: (*const msmws_gpu_buffer, u32),
    waits: (*const msmws_sync_point, u32),
    signals: (*const msmws_sync_point, u32),
    sync_files: (c_int, *mut c_int),
    seqno: *mut u32,
) -> c_int {
    boundary(|| {
        // SAFETY: guaranteed by the caller.
        let (vm, cmds, uses, waits, signals) = unsafe {
            (
                borrow(vm, "vm")?,
                slice(cmds.0, cmds.1 as usize, "cmds")?,
                slice(uses.0, uses.1 as usize, "uses")?,
                slice(waits.0, waits.1 as usize, "waits")?,
                slice(signals.0, signals.1 as usize, "signals")?,
            )
        };
        let (in_fence_fd, out_fence_fd) = sync_files;
        if in_fence_fd < -1 {
            return Err(FfiError::invalid(format!(
                "in_fence_fd {in_fence_fd}: -1 or a sync file"
            )));
        }
        let cmds: Vec<(u64, u32)> = cmds.iter().map(|c| (c.iova, c.size_B)).collect();
        let uses: Vec<GpuBuffer> = uses.iter().map(to_buffer).collect();
        let (waits, signals) = (points(waits), points(signals));
        let fences = Fences {
            wait: &waits,
            signal: &signals,
            fence_fd_in: (in_fence_fd >= 0).then_some(in_fence_fd),
            fence_fd_out: !out_fence_fd.is_null(),
        };
        let (s, fd) = vm
            .vm
            .submit_with(vm.dev.kernel(), queue_id, &cmds, &uses, fences)?;
        if let Some(fd) = fd {
            // SAFETY: non-null (the kernel was asked for an out fence only then), writable.
            unsafe { write_out(out_fence_fd, fd.into_raw_fd()) };
        }
        if !seqno.is_null() {
            // SAFETY: non-null, and the caller provides storage for one u32.
            unsafe { write_out(seqno, s) };
        }
        Ok(())
    })
}

/// Sends every pending bind (VM_BIND) or reclaims idle freed buffers (legacy modes).
///
/// Thread-safe. Returns 0, -EPIPE, or the kernel's errno.
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_flush(vm: *const msmws_gpu_vm) -> c_int {
    boundary(|| {
        // SAFETY: a non-null `vm` is live (API contract).
        let vm = unsafe { borrow(vm, "vm") }?;
        vm.vm.flush(vm.dev.kernel())?;
        Ok(())
    })
}

/// Flushes, releases the kernel objects (bind queues, timelines) and frees `vm`. NULL is accepted.
/// Buffers still live in it (never freed, or mapped by map_bo and never unmapped) are freed too:
/// nothing could name them afterwards. Call it once the GPU is done with them.
///
/// Must be the last call on `vm`. Returns 0 or the errno of the final flush (the object is freed
/// either way).
#[no_mangle]
pub extern "C" fn msmws_gpu_vm_destroy(vm: *mut msmws_gpu_vm) -> c_int {
    boundary(|| {
        if vm.is_null() {
            return Ok(());
        }
        // SAFETY: `vm` came from Box::into_raw in msmws_gpu_vm_create; destroyed once (contract).
        let vm = unsafe { Box::from_raw(vm) };
        let msmws_gpu_vm { dev, vm } = *vm;
        vm.destroy(dev.kernel())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::device::{msmws_device_destroy, msmws_device_new_sim};
    use super::*;
    use std::ptr;

    /// Capture/replay on each address mode: a replayable buffer comes from the top of the space,
    /// its address can be asked for again once freed, and a taken address is EEXIST.
    #[test]
    fn create_buffer_at_captures_and_replays() {
        for profile in [c"a750", c"a660"] {
            let mut dev = ptr::null_mut();
            assert_eq!(msmws_device_new_sim(profile.as_ptr(), &mut dev), 0);
            let mut vm = ptr::null_mut();
            assert_eq!(msmws_gpu_vm_create(dev, &mut vm), 0);
            let (mut low, mut cap, mut again) = Default::default();
            assert_eq!(msmws_gpu_vm_create_buffer(vm, 4096, 0x20000, &mut low), 0);
            assert_eq!(
                msmws_gpu_vm_create_buffer_at(vm, 65536, 0x20000, 0, &mut cap),
                0
            );
            assert!(
                cap.iova > low.iova,
                "{profile:?}: replayable buffers come from the top"
            );
            assert_eq!(
                msmws_gpu_vm_create_buffer_at(vm, 4096, 0x20000, cap.iova, &mut again),
                -libc::EEXIST
            );
            // Freed with no users: the replay gets the same address at once.
            assert_eq!(msmws_gpu_vm_free_buffer(vm, &cap, ptr::null(), 0, false), 0);
            assert_eq!(msmws_gpu_vm_flush(vm), 0);
            assert_eq!(
                msmws_gpu_vm_create_buffer_at(vm, 65536, 0x20000, cap.iova, &mut again),
                0
            );
            assert_eq!(again.iova, cap.iova);
            assert_eq!(
                msmws_gpu_vm_create_buffer_at(vm, 4096, 0x20000, cap.iova + 1, &mut cap),
                -libc::EINVAL
            );
            assert_eq!(
                msmws_gpu_vm_create_buffer_at(vm, 0, 0x20000, 0, &mut cap),
                -libc::EINVAL
            );
            for b in [&low, &again] {
                assert_eq!(msmws_gpu_vm_free_buffer(vm, b, ptr::null(), 0, false), 0);
            }
            let mut stats = msmws_gpu_vm_stats::default();
            assert_eq!(msmws_gpu_vm_get_stats(vm, &mut stats), 0);
            // Both profiles are VM_BIND: three maps and three unmaps went through the planner.
            assert_eq!(stats.ops_queued, 6, "{profile:?}: {stats:?}");
            assert!(stats.vm_bind_ioctls >= 1, "{profile:?}: {stats:?}");
            assert_eq!(msmws_gpu_vm_get_stats(vm, ptr::null_mut()), -libc::EINVAL);
            assert_eq!(msmws_gpu_vm_destroy(vm), 0);
            msmws_device_destroy(dev);
        }
    }
}
