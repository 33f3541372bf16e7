//! PRIME: GEM handle <-> dma-buf fd (spec/kernel.md "PRIME").
//!
//! Owns: the process-wide registry of model dma-bufs (which object a dma-buf file belongs to) and
//! the count of fds the model itself holds on each. Locks: `REGISTRY`, then `MODEL_FDS` (a leaf),
//! both taken after `SimFile::ctx` and `GemObject::state`, never while waiting.
//!
//! A dma-buf is the object's memfd (made at the first export if no CPU map made it before, see
//! gem.rs): export opens it again (`/proc/self/fd/N`, so RDWR and CLOEXEC
//! are the caller's), giving a real fd that can be dup'ed, passed over a socket to another process
//! and mmap'ed there. The memfd's name (`msm-sim-bo:<device>:<object>`) marks it as a model
//! dma-buf even in a process whose registry has never seen it, where it imports as foreign.
//! Its DMA_BUF_IOCTL_* requests reach [`dmabuf_ioctl`] through `sim::fd_ioctl`.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

use super::dispatch::typed;
use super::fdid::{self, FileId};
use super::gem::GemObject;
use super::resv::{Resv, Usage};
use super::{SimFile, DMABUF_PREFIX};
use crate::uapi::*;
use crate::Errno;

struct Entry {
    /// The dma-buf's reference on its object (the kernel's dma_buf->priv holds a GEM ref).
    obj: Arc<GemObject>,
}

static REGISTRY: Mutex<Option<HashMap<FileId, Entry>>> = Mutex::new(None);
static MODEL_FDS: Mutex<Option<HashMap<FileId, usize>>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<HashMap<FileId, Entry>>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn model_fds() -> MutexGuard<'static, Option<HashMap<FileId, usize>>> {
    MODEL_FDS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The model opened an fd of file `id` for itself (an object's backing memfd).
pub(super) fn model_fd_opened(id: FileId) {
    *model_fds()
        .get_or_insert_with(HashMap::new)
        .entry(id)
        .or_default() += 1;
}

/// The model closed one of its own fds of file `id`.
pub(super) fn model_fd_closed(id: FileId) {
    let mut m = model_fds();
    if let Some(map) = m.as_mut() {
        if let Some(n) = map.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                map.remove(&id);
            }
        }
    }
}

/// How many fds of each model dma-buf userspace holds right now (all open fds of the file, minus
/// the model's own).
pub(super) fn user_dmabuf_fds() -> HashMap<FileId, usize> {
    let reg = registry();
    let known: Vec<FileId> = reg
        .as_ref()
        .map(|r| r.keys().copied().collect())
        .unwrap_or_default();
    count_user_fds(&known)
}

fn count_user_fds(known: &[FileId]) -> HashMap<FileId, usize> {
    let mut counts: HashMap<FileId, usize> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return counts;
    };
    for e in dir.flatten() {
        let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok()) else {
            continue;
        };
        if let Ok(id) = fdid::file_id(fd) {
            if known.contains(&id) {
                *counts.entry(id).or_default() += 1;
            }
        }
    }
    let own = model_fds();
    for (id, n) in counts.iter_mut() {
        *n = n.saturating_sub(own.as_ref().and_then(|m| m.get(id)).copied().unwrap_or(0));
    }
    counts.retain(|_, n| *n > 0);
    counts
}

/// Drops registry entries no userspace fd refers to any more (the dma-buf file was released).
///
/// The registry stays locked from the scan to the pruning: an export that registers its dma-buf
/// meanwhile would otherwise be pruned by a scan that ran before its fd existed.
pub(super) fn collect_garbage() {
    let mut reg = registry();
    let known: Vec<FileId> = reg
        .as_ref()
        .map(|r| r.keys().copied().collect())
        .unwrap_or_default();
    let live = count_user_fds(&known);
    if let Some(r) = reg.as_mut() {
        r.retain(|id, _| live.contains_key(id));
    }
}

/// The object a model dma-buf of this process belongs to.
fn registered(id: FileId) -> Option<Arc<GemObject>> {
    registry()
        .as_ref()
        .and_then(|r| r.get(&id))
        .map(|e| e.obj.clone())
}

/// Whether a dma-buf this device exported from `obj` is still registered (its display `vma_ref`;
/// imports do not count). Released dma-bufs are forgotten only by [`collect_garbage`].
pub(super) fn exported_dmabuf_alive(obj: &Arc<GemObject>) -> bool {
    // An object without a memfd was never exported.
    !obj.imported
        && obj
            .memfd_id()
            .and_then(registered)
            .is_some_and(|o| Arc::ptr_eq(&o, obj))
}

/// The name of the file behind `fd` (`/memfd:msm-sim-bo:1:2 (deleted)` for a model dma-buf).
fn fd_target(fd: RawFd) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// `dma_buf_fd` for an object: a new fd on its dma-buf file (the object's memfd, made now if the
/// object has none yet).
fn export_fd(obj: &GemObject, flags: u32) -> Result<(OwnedFd, FileId), Errno> {
    let memory = obj.backing()?;
    let mode = if flags & DRM_RDWR != 0 {
        libc::O_RDWR
    } else {
        libc::O_RDONLY
    };
    let cloexec = if flags & DRM_CLOEXEC != 0 {
        libc::O_CLOEXEC
    } else {
        0
    };
    let path =
        std::ffi::CString::new(format!("/proc/self/fd/{}", memory.fd.as_raw_fd())).expect("no NUL");
    // SAFETY: open(2) of a NUL-terminated path; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), mode | cloexec) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a new fd nobody else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, memory.id))
}

pub(super) fn handle_to_fd(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_prime_handle| {
        if a.flags & !(DRM_CLOEXEC | DRM_RDWR) != 0 {
            return Err(Errno::EINVAL);
        }
        let ctx = file.ctx();
        let obj = SimFile::lookup(&ctx, a.handle).ok_or(Errno::ENOENT)?;
        if obj.flags & MSM_BO_NO_SHARE != 0 {
            return Err(Errno::EPERM);
        }
        let (fd, id) = export_fd(&obj, a.flags)?;
        {
            let mut st = obj.lock();
            st.exported = true;
            st.has_pages = true;
        }
        registry()
            .get_or_insert_with(HashMap::new)
            .entry(id)
            .or_insert(Entry { obj: obj.clone() });
        // The exporting file knows its own dma-buf (drm_prime_add_buf_handle).
        drop(ctx);
        file.ctx().prime_cache.entry(id).or_insert(a.handle);
        a.fd = fd.into_raw_fd();
        Ok(())
    })
}

pub(super) fn fd_to_handle(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_prime_handle| {
        // dma_buf_get: EBADF for a bad fd, EINVAL for a file that is not a dma-buf.
        let id = fdid::file_id(a.fd)?;
        let target = fd_target(a.fd).unwrap_or_default();
        let is_model_dmabuf = target.starts_with(&format!("/memfd:{DMABUF_PREFIX}"));
        if !is_model_dmabuf {
            return Err(Errno::EINVAL);
        }
        let mut ctx = file.ctx();
        // The same dma-buf imported before in this file: the same handle.
        if let Some(&h) = ctx.prime_cache.get(&id) {
            a.handle = h;
            return Ok(());
        }
        let obj = match registered(id) {
            // Exported by this device: the same object, a new handle in this file.
            Some(obj) if obj.dev_uid == file.dev.uid => obj,
            // A dma-buf of another device (or another process): a new WC object over its memory.
            _ => {
                // SAFETY: lseek on a valid fd (checked by file_id above).
                let size_B = unsafe { libc::lseek(a.fd, 0, libc::SEEK_END) };
                if size_B <= 0 {
                    return Err(Errno::EINVAL);
                }
                // The importer maps the memory through its own objects, whatever access mode the
                // dma-buf fd was opened with, so it opens the file again read/write.
                let path =
                    std::ffi::CString::new(format!("/proc/self/fd/{}", a.fd)).expect("no NUL");
                // SAFETY: open(2) of a NUL-terminated path; the result is checked.
                let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
                if raw < 0 {
                    return Err(Errno::last());
                }
                // SAFETY: a new fd nobody else owns.
                let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
                let obj = GemObject::with_memfd(
                    file.dev.uid,
                    file.dev.next_object_id(),
                    size_B as u64,
                    MSM_BO_WC,
                    true,
                    memfd,
                    Resv::new(),
                )?;
                registry()
                    .get_or_insert_with(HashMap::new)
                    .entry(id)
                    .or_insert(Entry { obj: obj.clone() });
                obj
            }
        };
        let h = SimFile::new_handle(&mut ctx, obj);
        ctx.prime_cache.insert(id, h);
        a.handle = h;
        Ok(())
    })
}

/// The reservation object behind dma-buf `fd`: its object's, for a dma-buf this process exported
/// or imported; an empty one for a model dma-buf of another process (its fences are not visible
/// here). `None` when `fd` is not a model dma-buf.
fn dmabuf_resv(fd: RawFd) -> Option<Arc<Resv>> {
    let id = fdid::file_id(fd).ok()?;
    if let Some(obj) = registered(id) {
        return Some(obj.resv.clone());
    }
    let target = fd_target(fd)?;
    target
        .starts_with(&format!("/memfd:{DMABUF_PREFIX}"))
        .then(Resv::new)
}

/// The dma-buf ioctl type letter (uapi/linux/dma-buf.h `DMA_BUF_BASE`).
pub const DMA_BUF_BASE: u32 = b'b' as u32;

/// An ioctl on dma-buf `fd` (`dma_buf_ioctl`); `None` when `fd` is not a model dma-buf, or for
/// DMA_BUF_SET_NAME, which the model does not answer.
pub fn dmabuf_ioctl(fd: RawFd, request: u32, arg: u64) -> Option<Result<(), Errno>> {
    let resv = dmabuf_resv(fd)?;
    Some(match request {
        DMA_BUF_IOCTL_SYNC => crate::sim::user::read::<dma_buf_sync>(arg).and_then(|s| {
            // begin/end_cpu_access: the model's memory is coherent, only the flags are checked.
            if s.flags & !DMA_BUF_SYNC_VALID_FLAGS_MASK != 0 || s.flags & DMA_BUF_SYNC_RW == 0 {
                Err(Errno::EINVAL)
            } else {
                Ok(())
            }
        }),
        DMA_BUF_IOCTL_EXPORT_SYNC_FILE => export_sync_file(&resv, arg),
        DMA_BUF_IOCTL_IMPORT_SYNC_FILE => import_sync_file(&resv, arg),
        // DMA_BUF_SET_NAME_A/B: the kernel has them, the model does not; the caller reports it.
        r if ioc_nr(u64::from(r)) == 1 => return None,
        _ => Err(Errno::ENOTTY),
    })
}

/// Whether `flags` of an EXPORT/IMPORT_SYNC_FILE argument are valid: read, write or both, no
/// other bit.
fn sync_file_flags_ok(flags: u32) -> bool {
    let flags = u64::from(flags);
    flags & !DMA_BUF_SYNC_RW == 0 && flags & DMA_BUF_SYNC_RW != 0
}

/// The sync files a dma-buf exports are charged to no model file (the kernel's belong to the
/// dma-buf, not to a DRM file).
const NO_FILE: u64 = 0;

fn export_sync_file(resv: &Resv, arg: u64) -> Result<(), Errno> {
    let mut a: dma_buf_sync_file = crate::sim::user::read(arg)?;
    if !sync_file_flags_ok(a.flags) {
        return Err(Errno::EINVAL);
    }
    let fd = super::sync_file::reserve()?;
    // dma_resv_get_singleton for dma_resv_usage_rw(write): a stub when nothing is pending.
    let usage = Resv::usage_rw(u64::from(a.flags) & DMA_BUF_SYNC_WRITE != 0);
    let fence = super::sync_file::merge_fences(&resv.pending(usage));
    let raw = fd.raw();
    a.fd = raw;
    crate::sim::user::write(arg, &a)?;
    // fd_install: the caller owns the fd now.
    let _ = fd.install(fence, NO_FILE).into_raw_fd();
    Ok(())
}

fn import_sync_file(resv: &Resv, arg: u64) -> Result<(), Errno> {
    let a: dma_buf_sync_file = crate::sim::user::read(arg)?;
    if !sync_file_flags_ok(a.flags) {
        return Err(Errno::EINVAL);
    }
    let fence = super::sync_file::import(a.fd).ok_or(Errno::EINVAL)?;
    let usage = if u64::from(a.flags) & DMA_BUF_SYNC_WRITE != 0 {
        Usage::Write
    } else {
        Usage::Read
    };
    resv.add(fence, usage);
    Ok(())
}
