//! GEM objects: GEM_NEW, GEM_INFO (every kind), MADVISE and purging, CPU_PREP / CPU_FINI,
//! GEM_CLOSE, GEM mmap offsets and CPU maps (spec/kernel.md "GEM objects", "Kernel-chosen and
//! userspace-chosen iova without VM_BIND", "MADVISE details", "CPU_PREP / CPU_FINI").
//!
//! Owns: objects (`GemObject`, shared by `Arc` between handles, dma-bufs and VMAs).
//! Locks, in order: `SimFile::ctx` -> `GemObject::state` -> `Vm::inner` -> `SimDevice::objects`.
//! Waits on fences happen with no lock held.
//!
//! Object memory is a memfd of the object's size, so CPU maps of an exporter and of an importer
//! (in this process or another) see the same bytes, and a dma-buf is a real fd of that memfd.
//!
//! The memfd is made lazily, by [`GemObject::backing`], the first time something needs the bytes
//! or the file's identity: a CPU map (`mmap_target`) or a PRIME export. The simulated GPU never
//! reads or writes object memory, so pins, GPU maps and submits leave it unmade, and so does a
//! purge (a purged object without one gets an empty memfd, as a purged object's is truncated).
//! A kernel charges its client no fd per buffer; made eagerly, a client with more live buffers
//! than RLIMIT_NOFILE would meet EMFILE at GEM_NEW from the model only. Imports of a foreign
//! dma-buf have their memfd (a reopened fd of that dma-buf) from the start. The backing is made
//! under `GemObject::state`, so a purge and a first map or export see one order.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::dispatch::typed;
use super::fdid::{self, FileId};
use super::resv::{Resv, Usage};
use super::vm::{Vm, Vma};
use super::{user, FileCtx, SimFile, DMABUF_PREFIX};
use crate::uapi::*;
use crate::Errno;

pub const PAGE_SIZE: u64 = 4096;
/// `char name[32]` in `struct msm_gem_object`.
const NAME_LEN: usize = 32;
/// DRM_FILE_PAGE_OFFSET_START on 64-bit, in bytes: fake mmap offsets start at 4 GiB.
const MMAP_OFFSET_START: u64 = 0x1_0000_0000;
/// The end of the fake offset space: DRM_FILE_PAGE_OFFSET_SIZE is `(0xFFFFFFFF >> PAGE_SHIFT) *
/// 256` pages (drm_gem.c), a little under 1 TiB.
const MMAP_OFFSET_END: u64 = MMAP_OFFSET_START + 0xF_FFFF * 256 * PAGE_SIZE;

/// MADVISE state (`msm_obj->madv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Madv {
    WillNeed,
    DontNeed,
    Purged,
}

#[derive(Debug)]
pub struct ObjState {
    pub name: String,
    pub metadata: Vec<u8>,
    pub madv: Madv,
    /// Backing pages exist (allocated on first CPU map, pin or GPU use).
    pub has_pages: bool,
    pub mmap_offset: Option<u64>,
    /// A dma-buf of this object exists (it was exported, or it was imported from one).
    pub exported: bool,
    /// Open userspace GEM handles over all files (part of the display `vma_ref`).
    pub handle_count: u32,
    /// Where the object is mapped in kernel-managed VMs (GET_IOVA / SET_IOVA): one per VM.
    pub vmas: Vec<(Weak<Vm>, u64)>,
    /// Pins by in-flight submits and scanout.
    pub pin_count: u32,
    /// VM_BIND VMs that may map it (purging unmaps it there).
    pub bind_vms: Vec<Weak<Vm>>,
}

/// An object's memory: a memfd of the object's size (empty once purged), counted as one of the
/// model's own fds while open.
#[derive(Debug)]
pub struct Backing {
    pub fd: OwnedFd,
    pub id: FileId,
}

impl Backing {
    fn new(fd: OwnedFd) -> Result<Backing, Errno> {
        let id = fdid::file_id(fd.as_raw_fd())?;
        super::prime::model_fd_opened(id);
        Ok(Backing { fd, id })
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        super::prime::model_fd_closed(self.id);
    }
}

/// A buffer object.
#[derive(Debug)]
pub struct GemObject {
    pub id: u64,
    /// The model device that created (or imported) it.
    pub dev_uid: u64,
    pub size_B: u64,
    /// `MSM_BO_*` as created (imports get WC).
    pub flags: u32,
    /// Made from a dma-buf of another device (`drm_gem_is_imported`).
    pub imported: bool,
    /// The object's memory and the file behind its dma-buf, made on first need ([`Self::backing`]).
    memfd: OnceLock<Arc<Backing>>,
    /// Its own reservation object, or its VM's for NO_SHARE objects.
    pub resv: Arc<Resv>,
    state: Mutex<ObjState>,
}

impl GemObject {
    pub fn lock(&self) -> MutexGuard<'_, ObjState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new object of `size_B` bytes; its memfd is made on first need.
    pub fn create(
        dev_uid: u64,
        id: u64,
        size_B: u64,
        flags: u32,
        resv: Arc<Resv>,
    ) -> Arc<GemObject> {
        GemObject::new(dev_uid, id, size_B, flags, false, OnceLock::new(), resv)
    }

    /// An object over an existing memfd (a foreign dma-buf import).
    pub fn with_memfd(
        dev_uid: u64,
        id: u64,
        size_B: u64,
        flags: u32,
        imported: bool,
        memfd: OwnedFd,
        resv: Arc<Resv>,
    ) -> Result<Arc<GemObject>, Errno> {
        let backing = OnceLock::from(Arc::new(Backing::new(memfd)?));
        Ok(GemObject::new(
            dev_uid, id, size_B, flags, imported, backing, resv,
        ))
    }

    fn new(
        dev_uid: u64,
        id: u64,
        size_B: u64,
        flags: u32,
        imported: bool,
        memfd: OnceLock<Arc<Backing>>,
        resv: Arc<Resv>,
    ) -> Arc<GemObject> {
        Arc::new(GemObject {
            id,
            dev_uid,
            size_B,
            flags,
            imported,
            memfd,
            resv,
            state: Mutex::new(ObjState {
                name: String::new(),
                metadata: Vec::new(),
                madv: Madv::WillNeed,
                has_pages: imported,
                mmap_offset: None,
                exported: imported,
                handle_count: 0,
                vmas: Vec::new(),
                pin_count: 0,
                bind_vms: Vec::new(),
            }),
        })
    }

    /// The identity of the object's memfd, if it has one yet (an object without one was never
    /// mapped or exported, so no dma-buf of it exists).
    pub fn memfd_id(&self) -> Option<FileId> {
        self.memfd.get().map(|b| b.id)
    }

    /// The object's memfd, made now if it has none yet (`msm-sim-bo:<device>:<object>`, of the
    /// object's size, or empty for a purged object). Call without `state` held. Failing to make
    /// it is ENOMEM, as a failed page allocation is in the kernel.
    pub fn backing(&self) -> Result<Arc<Backing>, Errno> {
        if let Some(b) = self.memfd.get() {
            return Ok(b.clone());
        }
        // Made under the state lock, so a purge either truncates it or comes after and is seen.
        let st = self.lock();
        if let Some(b) = self.memfd.get() {
            return Ok(b.clone());
        }
        let size_B = if st.madv == Madv::Purged {
            0
        } else {
            self.size_B
        };
        let name = std::ffi::CString::new(format!("{DMABUF_PREFIX}{}:{}", self.dev_uid, self.id))
            .expect("no NUL in name");
        // SAFETY: memfd_create with a NUL-terminated name; the result is checked.
        let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(Errno::ENOMEM);
        }
        // SAFETY: a new fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ftruncate on our own fd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size_B as libc::off_t) } != 0 {
            return Err(Errno::ENOMEM);
        }
        let b = Arc::new(Backing::new(fd).map_err(|_| Errno::ENOMEM)?);
        // Cannot be set already: every setter holds `state`.
        let _ = self.memfd.set(b.clone());
        drop(st);
        Ok(b)
    }

    /// Whether the GPU may still be using it: any pending fence, bookkeeping included.
    pub fn busy(&self) -> bool {
        self.resv.busy()
    }
}

impl Drop for GemObject {
    fn drop(&mut self) {
        // The last reference is gone: its kernel-managed mappings go with it.
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for (vm, iova) in st.vmas.drain(..) {
            if let Some(vm) = vm.upgrade() {
                vm.lock().vmas.remove(&iova);
            }
        }
        // The memfd, if any, is closed (and uncounted) by `Backing::drop`.
    }
}

impl SimFile {
    /// The object behind `handle` in this file.
    pub(super) fn lookup(ctx: &FileCtx, handle: u32) -> Option<Arc<GemObject>> {
        ctx.handles.get(&handle).cloned()
    }

    /// `drm_gem_handle_create`: the lowest free handle from 1 (idr_alloc(1, 0)).
    pub(super) fn new_handle(ctx: &mut FileCtx, obj: Arc<GemObject>) -> u32 {
        let h = ctx.free_handles.pop_first().unwrap_or_else(|| {
            debug_assert!(!ctx.handles.contains_key(&(ctx.handles.len() as u32 + 1)));
            ctx.handles.len() as u32 + 1
        });
        obj.lock().handle_count += 1;
        ctx.handles.insert(h, obj);
        h
    }

    /// `drm_gem_handle_delete`: EINVAL for an unknown handle.
    pub(super) fn delete_handle(ctx: &mut FileCtx, handle: u32) -> Result<Arc<GemObject>, Errno> {
        let obj = ctx.handles.remove(&handle).ok_or(Errno::EINVAL)?;
        ctx.free_handles.insert(handle);
        ctx.prime_cache.retain(|_, h| *h != handle);
        obj.lock().handle_count -= 1;
        Ok(obj)
    }

    /// The file's VM, created on first use (`msm_context_vm`).
    pub(super) fn vm(&self, ctx: &mut FileCtx) -> Arc<Vm> {
        if let Some(vm) = &ctx.vm {
            return vm.clone();
        }
        let vm = if self.dev.options.per_process_pgtables {
            Vm::new(
                super::profile::VA_START,
                self.dev.profile.va_size_B(),
                true,
                ctx.vm_bind,
            )
        } else {
            self.dev.global_vm.clone()
        };
        vm.init_log(self.dev.options.vm_log_shift);
        ctx.vm = Some(vm.clone());
        vm
    }
}

pub(super) fn gem_new(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_gem_new| {
        if a.flags & !MSM_BO_FLAGS != 0 {
            return Err(Errno::EINVAL);
        }
        let size_B = a
            .size
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(Errno::EINVAL)?;
        if size_B == 0 {
            return Err(Errno::EINVAL);
        }
        match a.flags & MSM_BO_CACHE_MASK {
            MSM_BO_CACHED | MSM_BO_WC => {}
            MSM_BO_CACHED_COHERENT if file.dev.profile.cached_coherent => {}
            _ => return Err(Errno::EINVAL),
        }
        let mut ctx = file.ctx();
        // NO_SHARE objects share the VM's reservation object, so the VM is made here.
        let resv = if a.flags & MSM_BO_NO_SHARE != 0 {
            file.vm(&mut ctx).resv.clone()
        } else {
            Resv::new()
        };
        let obj = GemObject::create(
            file.dev.uid,
            file.dev.next_object_id(),
            size_B,
            a.flags,
            resv,
        );
        file.dev.track(&obj);
        a.handle = SimFile::new_handle(&mut ctx, obj);
        Ok(())
    })
}

pub(super) fn gem_close(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_gem_close| {
        if a.pad != 0 {
            return Err(Errno::EINVAL);
        }
        let mut ctx = file.ctx();
        let obj = SimFile::delete_handle(&mut ctx, a.handle)?;
        // Without VM_BIND, closing a handle also takes the object out of this file's VM, even
        // when a dma-buf or another file keeps the object alive (`msm_gem_close`).
        let vm = ctx.vm.clone().filter(|_| !ctx.vm_bind);
        drop(ctx);
        // The display VMA goes with the object's last `vma_ref` (display.rs).
        super::display::handle_closed(&file.dev, &obj);
        if let Some(vm) = vm {
            // First the kernel waits, not interruptibly and with no timeout, for all of the
            // object's GPU work, so the address is free for reuse when the close returns.
            obj.resv.wait(Usage::Bookkeep, None)?;
            clear_iova(&vm, &obj);
        }
        Ok(())
    })
}

/// CLOCK_MONOTONIC now, in ns: the clock of the uAPI's absolute timeouts.
pub(super) fn monotonic_ns() -> i64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec * 1_000_000_000 + now.tv_nsec
}

/// Converts an absolute CLOCK_MONOTONIC timespec into an `Instant` deadline.
pub(super) fn deadline(ts: &drm_msm_timespec) -> Instant {
    let now_ns = monotonic_ns() as i128;
    let then_ns = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    let left = (then_ns - now_ns).clamp(0, u64::MAX as i128) as u64;
    Instant::now() + Duration::from_nanos(left)
}

pub(super) fn gem_info(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_gem_info| {
        if a.pad != 0 {
            return Err(Errno::EINVAL);
        }
        match a.info {
            MSM_INFO_GET_OFFSET | MSM_INFO_GET_IOVA | MSM_INFO_SET_IOVA | MSM_INFO_GET_FLAGS => {
                // Value returned as an immediate, not by pointer.
                if a.len != 0 {
                    return Err(Errno::EINVAL);
                }
            }
            MSM_INFO_SET_NAME
            | MSM_INFO_GET_NAME
            | MSM_INFO_SET_METADATA
            | MSM_INFO_GET_METADATA => {}
            _ => return Err(Errno::EINVAL),
        }
        let mut ctx = file.ctx();
        let obj = SimFile::lookup(&ctx, a.handle).ok_or(Errno::ENOENT)?;
        match a.info {
            MSM_INFO_GET_OFFSET => {
                a.value = file.dev.mmap_offset(&obj);
                Ok(())
            }
            MSM_INFO_GET_IOVA => {
                a.value = get_iova(file, &mut ctx, &obj)?;
                Ok(())
            }
            MSM_INFO_SET_IOVA => set_iova(file, &mut ctx, &obj, a.value),
            MSM_INFO_GET_FLAGS => {
                if obj.imported {
                    return Err(Errno::EINVAL);
                }
                a.value = (obj.flags & MSM_BO_FLAGS) as u64;
                Ok(())
            }
            MSM_INFO_SET_NAME => {
                // Leave room for the terminating NUL.
                if a.len as usize >= NAME_LEN {
                    return Err(Errno::EINVAL);
                }
                let mut st = obj.lock();
                let bytes = match user::read_bytes(a.value, a.len as usize) {
                    Ok(b) => b,
                    Err(e) => {
                        st.name.clear();
                        return Err(e);
                    }
                };
                // The name stops at the first unprintable byte.
                let printable = bytes
                    .iter()
                    .take_while(|b| (0x20..0x7f).contains(*b))
                    .count();
                st.name = String::from_utf8_lossy(&bytes[..printable]).into_owned();
                Ok(())
            }
            MSM_INFO_GET_NAME => {
                let name = obj.lock().name.clone();
                if a.value != 0 && (a.len as usize) < name.len() {
                    return Err(Errno::ETOOSMALL);
                }
                a.len = name.len() as u32;
                if a.value != 0 {
                    user::write_bytes(a.value, name.as_bytes())?;
                }
                Ok(())
            }
            MSM_INFO_SET_METADATA => {
                if a.len > MSM_METADATA_MAX_B {
                    return Err(Errno::EOVERFLOW);
                }
                // Copied from user memory before the object lock is taken, as the kernel does.
                let buf = user::read_bytes(a.value, a.len as usize)?;
                file.inject("GEM_INFO:SET_METADATA")?; // msm_gem_lock_interruptible: EINTR
                obj.lock().metadata = buf;
                Ok(())
            }
            MSM_INFO_GET_METADATA => {
                if a.value == 0 {
                    a.len = obj.lock().metadata.len() as u32;
                    return Ok(());
                }
                // The interruptible object lock (an injection point), then the copy.
                let ret = file.inject("GEM_INFO:GET_METADATA").and_then(|()| {
                    let buf = obj.lock().metadata.clone();
                    if (a.len as usize) < buf.len() {
                        Err(Errno::ETOOSMALL)
                    } else {
                        user::write_bytes(a.value, &buf).map(|()| a.len = buf.len() as u32)
                    }
                });
                // Kernels before the v7.1 fix returned 0 whatever happened.
                if file.dev.options.get_metadata_returns_0 {
                    Ok(())
                } else {
                    ret
                }
            }
            _ => unreachable!("kinds were checked above"),
        }
    })
}

/// GET_IOVA: the object's address in this file's VM, mapping it at a kernel-chosen one if needed.
fn get_iova(file: &SimFile, ctx: &mut FileCtx, obj: &Arc<GemObject>) -> Result<u64, Errno> {
    if ctx.vm_bind {
        return Err(Errno::EINVAL);
    }
    pin_iova(file, ctx, obj)
}

/// The object's address in the file's VM for a legacy submit or GET_IOVA (mapped if needed).
pub(super) fn pin_iova(
    file: &SimFile,
    ctx: &mut FileCtx,
    obj: &Arc<GemObject>,
) -> Result<u64, Errno> {
    let vm = file.vm(ctx);
    map_in_vm(&vm, obj, None)
}

/// `msm_gem_get_pages` for an object that has none yet: its pages come from shmem, so an object
/// larger than the machine's memory can never get them (ENOMEM). Only that one rule: the model
/// does not count the pages of all objects against the memory. (Found by the c_abi fuzz target:
/// a 2^47-byte object, which GEM_NEW accepts, was mapped page by page until the fuzzer ran out of
/// memory.)
pub(super) fn pages_fit(obj: &GemObject) -> Result<(), Errno> {
    static RAM_B: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ram_B = *RAM_B.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
        u64::try_from(pages).map_or(u64::MAX, |p| p.saturating_mul(PAGE_SIZE))
    });
    if obj.size_B > ram_B {
        Err(Errno::ENOMEM)
    } else {
        Ok(())
    }
}

/// `get_vma_locked` + pin: the existing mapping of `obj` in `vm`, or a new one at `fixed` (or at a
/// kernel-chosen address when `fixed` is None).
fn map_in_vm(vm: &Arc<Vm>, obj: &Arc<GemObject>, fixed: Option<u64>) -> Result<u64, Errno> {
    let mut st = obj.lock();
    if obj.flags & MSM_BO_NO_SHARE != 0 && !Arc::ptr_eq(&obj.resv, &vm.resv) {
        return Err(Errno::EINVAL);
    }
    if let Some((_, iova)) = st
        .vmas
        .iter()
        .find(|(v, _)| v.upgrade().is_some_and(|v| Arc::ptr_eq(&v, vm)))
    {
        return Ok(*iova);
    }
    if st.madv != Madv::WillNeed {
        return Err(Errno::EBUSY);
    }
    pages_fit(obj)?;
    let mut inner = vm.lock();
    let iova = match fixed {
        Some(iova) => {
            let end = iova.checked_add(obj.size_B).ok_or(Errno::ENOSPC)?;
            let got = vm.alloc(&inner, obj.size_B, iova, end)?;
            debug_assert_eq!(got, iova);
            got
        }
        None => vm.alloc(&inner, obj.size_B, 0, u64::MAX)?,
    };
    inner.vmas.insert(iova, Vma::legacy(iova, obj));
    st.vmas.push((Arc::downgrade(vm), iova));
    st.has_pages = true;
    Ok(iova)
}

/// Unmaps `obj` from `vm` at once, whatever the GPU is doing (`clear_iova`).
pub(super) fn clear_iova(vm: &Arc<Vm>, obj: &GemObject) {
    let mut st = obj.lock();
    st.vmas.retain(|(v, iova)| match v.upgrade() {
        Some(v) if Arc::ptr_eq(&v, vm) => {
            vm.lock().vmas.remove(iova);
            false
        }
        Some(_) => true,
        None => false,
    });
}

fn set_iova(
    file: &SimFile,
    ctx: &mut FileCtx,
    obj: &Arc<GemObject>,
    iova: u64,
) -> Result<(), Errno> {
    let vm = file.vm(ctx);
    if ctx.vm_bind {
        return Err(Errno::EINVAL);
    }
    if !vm.per_process {
        return Err(Errno::EOPNOTSUPP);
    }
    if iova == 0 {
        clear_iova(&vm, obj);
        return Ok(());
    }
    let got = map_in_vm(&vm, obj, Some(iova))?;
    if got != iova {
        // The kernel warns, clears the old mapping and fails.
        clear_iova(&vm, obj);
        return Err(Errno::EBUSY);
    }
    Ok(())
}

pub(super) fn gem_madvise(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_gem_madvise| {
        let madv = match a.madv {
            MSM_MADV_WILLNEED => Madv::WillNeed,
            MSM_MADV_DONTNEED => Madv::DontNeed,
            _ => return Err(Errno::EINVAL),
        };
        let ctx = file.ctx();
        let obj = SimFile::lookup(&ctx, a.handle).ok_or(Errno::ENOENT)?;
        let mut st = obj.lock();
        if st.madv != Madv::Purged {
            st.madv = madv;
        }
        a.retained = (st.madv != Madv::Purged) as u32;
        Ok(())
    })
}

pub(super) fn gem_cpu_prep(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_gem_cpu_prep| {
        if a.op & !MSM_PREP_FLAGS != 0 {
            return Err(Errno::EINVAL);
        }
        let obj = SimFile::lookup(&file.ctx(), a.handle).ok_or(Errno::ENOENT)?;
        let usage = Resv::usage_rw(a.op & MSM_PREP_WRITE != 0);
        // Bookkeeping fences (VM_BIND-mode submits) are never waited on here.
        let pending = obj.resv.pending(usage);
        if pending.is_empty() {
            return Ok(());
        }
        let deadline = deadline(&a.timeout);
        if a.op & MSM_PREP_NOSYNC != 0 || deadline <= Instant::now() {
            return Err(Errno::EBUSY);
        }
        pending.iter().try_for_each(|f| f.wait(Some(deadline)))
    })
}

pub(super) fn gem_cpu_fini(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_gem_cpu_fini| {
        SimFile::lookup(&file.ctx(), a.handle)
            .map(drop)
            .ok_or(Errno::ENOENT)
    })
}

/// What `mmap(offset_B, size_B)` on a device file maps: the memory of one object, checked as
/// `drm_gem_mmap` checks it. Holds the object's memory open while the caller maps it.
#[derive(Debug)]
pub struct MapTarget {
    memory: Arc<Backing>,
}

impl MapTarget {
    /// The object's memory (a memfd of its size); map it at [`MapTarget::memfd_offset_B`].
    pub fn memfd(&self) -> BorrowedFd<'_> {
        self.memory.fd.as_fd()
    }

    /// Where in [`MapTarget::memfd`] the mapping starts (0: the kernel only maps whole objects
    /// from their start, `drm_vma_offset_exact_lookup_locked`).
    pub fn memfd_offset_B(&self) -> u64 {
        0
    }
}

/// `drm_gem_mmap` up to the point where the memory is mapped.
pub(super) fn mmap_target(file: &SimFile, offset_B: u64, size_B: u64) -> Result<MapTarget, Errno> {
    // drm_vma_offset_exact_lookup_locked: a node starting exactly at the offset and at least
    // `size_B` long (vma_pages rounds up), else EINVAL — before the access check.
    let obj = file
        .dev
        .object_at_offset(offset_B)
        .filter(|o| size_B != 0 && size_B <= o.size_B)
        .ok_or(Errno::EINVAL)?;
    // drm_vma_node_is_allowed: only files holding a handle may map it.
    if !file.ctx().handles.values().any(|o| Arc::ptr_eq(o, &obj)) {
        return Err(Errno::EACCES);
    }
    // The pages (msm_gem_fault's get_pages; the model makes them at map time): ENOMEM.
    let memory = obj.backing()?;
    obj.lock().has_pages = true;
    Ok(MapTarget { memory })
}

/// The CPU map of a GEM mmap offset through `file` (`drm_gem_mmap`).
pub(super) fn map(file: &SimFile, offset_B: u64, size_B: usize) -> Result<memmap2::MmapMut, Errno> {
    let target = mmap_target(file, offset_B, size_B as u64)?;
    // SAFETY: the memfd is the object's memory, shared by design with every other map of it and
    // with the (simulated) GPU; users of the map treat it as shared memory, never as Rust data.
    unsafe {
        memmap2::MmapOptions::new()
            .len(size_B)
            .offset(target.memfd_offset_B())
            .map_mut(target.memfd().as_raw_fd())
    }
    .map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::ENOMEM)))
}

/// Purges DONTNEED objects that have pages, are idle, unpinned and were never shared, as the
/// shrinker does under memory pressure; returns how many pages were freed.
pub(super) fn purge(objects: &[Arc<GemObject>], dev: &super::SimDevice) -> u64 {
    let mut freed = 0;
    for obj in objects {
        let mut st = obj.lock();
        if st.madv != Madv::DontNeed
            || !st.has_pages
            || st.exported
            || st.pin_count > 0
            || obj.busy()
        {
            continue;
        }
        // Drop GPU mappings, the pages (existing CPU maps now SIGBUS), and the mmap offset.
        for (vm, iova) in st.vmas.drain(..) {
            if let Some(vm) = vm.upgrade() {
                vm.lock().vmas.remove(&iova);
            }
        }
        // VM_BIND mappings stay in the VA tree, unmapped (logged "purge").
        for vm in st.bind_vms.iter().filter_map(Weak::upgrade) {
            vm.purge_object(obj.id);
        }
        // An object never mapped nor exported has no memfd; one made later starts empty.
        if let Some(b) = obj.memfd.get() {
            // SAFETY: ftruncate on the object's own memfd.
            unsafe { libc::ftruncate(b.fd.as_raw_fd(), 0) };
        }
        if let Some(off) = st.mmap_offset.take() {
            dev.release_offset(off);
        }
        st.has_pages = false;
        st.madv = Madv::Purged;
        freed += obj.size_B / PAGE_SIZE;
    }
    freed
}

/// The device's mmap offset space (`drm_vma_offset_manager`, a `drm_mm` over
/// `[MMAP_OFFSET_START, MMAP_OFFSET_END)`).
#[derive(Debug)]
pub struct Offsets {
    /// Where the next offset goes while the space has never been filled (the common case, and
    /// O(log n)); after that, the first hole that fits.
    next: u64,
    /// Offset -> (size, object). An entry whose object is gone is free space: the kernel
    /// removes the node when it frees the object (`drm_gem_free_mmap_offset`).
    by_offset: std::collections::BTreeMap<u64, (u64, Weak<GemObject>)>,
}

impl Offsets {
    /// `drm_vma_offset_add`: `size_B` bytes of offset space, or None when no hole holds them
    /// (drm_mm's ENOSPC).
    fn alloc(&mut self, size_B: u64) -> Option<u64> {
        if let Some(end) = self
            .next
            .checked_add(size_B)
            .filter(|&e| e <= MMAP_OFFSET_END)
        {
            let o = self.next;
            self.next = end;
            return Some(o);
        }
        self.by_offset.retain(|_, (_, obj)| obj.strong_count() > 0);
        let mut hole_start = MMAP_OFFSET_START;
        for (&o, &(len_B, _)) in &self.by_offset {
            if o - hole_start >= size_B {
                return Some(hole_start);
            }
            hole_start = o + len_B;
        }
        (MMAP_OFFSET_END - hole_start >= size_B).then_some(hole_start)
    }
}

impl Default for Offsets {
    fn default() -> Self {
        Offsets {
            next: MMAP_OFFSET_START,
            by_offset: Default::default(),
        }
    }
}

impl super::SimDevice {
    /// `msm_gem_mmap_offset`: the object's fake mmap offset, allocated on first use; 0 when
    /// the offset space has no room for it (the kernel logs "could not allocate mmap offset"
    /// and returns 0, so GET_OFFSET and MAP_DUMB succeed with offset 0, which no mmap accepts).
    /// An object larger than the whole space (about 1 TiB; GEM_NEW takes up to 2^63 bytes)
    /// never gets one.
    pub(super) fn mmap_offset(&self, obj: &Arc<GemObject>) -> u64 {
        let mut st = obj.lock();
        if let Some(o) = st.mmap_offset {
            return o;
        }
        let mut offs = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        let Some(o) = offs.alloc(obj.size_B) else {
            return 0;
        };
        offs.by_offset.insert(o, (obj.size_B, Arc::downgrade(obj)));
        st.mmap_offset = Some(o);
        o
    }

    fn object_at_offset(&self, offset_B: u64) -> Option<Arc<GemObject>> {
        let offs = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        offs.by_offset.get(&offset_B).and_then(|(_, o)| o.upgrade())
    }

    fn release_offset(&self, offset_B: u64) {
        self.offsets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_offset
            .remove(&offset_B);
    }
}
