//! The kernel boundary: the [`Kernel`] trait (raw `ioctl(request, *mut arg)`, CPU mapping of a GEM
//! mmap offset, the file descriptor) and the typed ioctl helpers in [`ioctl`], the only code in the
//! winsys that packs uAPI structs.
//!
//! Owns: the backends' common contract. Locks: none here; each backend documents its own.
//!
//! Two backends implement it: [`drm::DrmKernel`] for a real `/dev/dri` node and the kernel model
//! in [`crate::sim`]. The winsys above never knows which one it talks to: `crate::backend` opens
//! them, and this module names neither (docs/layering.md).

use std::ffi::c_void;
use std::fmt;
use std::os::fd::BorrowedFd;

use crate::Errno;

pub mod drm;
pub mod ioctl;

pub use ioctl::KernelError;

/// One open file of an msm DRM device, at the level of raw ioctls.
///
/// Implementations are used from several threads at once, as a device fd is.
pub trait Kernel: Send + Sync + fmt::Debug {
    /// Issues `request` on this file with `arg`, exactly as `ioctl(2)` would, and returns the
    /// kernel's errno on failure.
    ///
    /// # Safety
    /// `arg` must point to a live object of `uapi::ioc_size(request)` bytes, readable and (for
    /// requests with `IOC_READ`) writable, and every user pointer inside it must be valid for what
    /// that ioctl reads or writes, as for the real system call.
    unsafe fn ioctl(&self, request: u64, arg: *mut c_void) -> Result<(), Errno>;

    /// Maps `size_B` bytes of this file at GEM mmap offset `offset_B` (from GEM_INFO GET_OFFSET),
    /// shared and read/write, as `mmap(2)` on the device fd would.
    fn map(&self, offset_B: u64, size_B: usize) -> Result<memmap2::MmapMut, Errno>;

    /// The file descriptor; it stays open as long as `self` lives and is closed on drop.
    fn fd(&self) -> BorrowedFd<'_>;

    /// Opens a new, independent file of the same device (a "fresh fd" with its own context and VM).
    fn reopen(&self) -> Result<Box<dyn Kernel>, Errno>;

    /// Where this file came from, for messages: a device path or `sim:<profile>`.
    fn describe(&self) -> String;

    /// The newest devcoredump the kernel left for this device (after a GPU fault or hang), if
    /// any can be read: what a device-loss report shows.
    fn devcoredump(&self) -> Option<String> {
        None
    }
}

/// A shared file is still the same file: lets a test or a scenario keep a handle on the model
/// file it gave a `Device`, for the model's debug API.
impl<K: Kernel + ?Sized> Kernel for std::sync::Arc<K> {
    unsafe fn ioctl(&self, request: u64, arg: *mut c_void) -> Result<(), Errno> {
        // SAFETY: the caller's guarantees are passed on unchanged.
        unsafe { (**self).ioctl(request, arg) }
    }

    fn map(&self, offset_B: u64, size_B: usize) -> Result<memmap2::MmapMut, Errno> {
        (**self).map(offset_B, size_B)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        (**self).fd()
    }

    fn reopen(&self) -> Result<Box<dyn Kernel>, Errno> {
        (**self).reopen()
    }

    fn describe(&self) -> String {
        (**self).describe()
    }

    fn devcoredump(&self) -> Option<String> {
        (**self).devcoredump()
    }
}
