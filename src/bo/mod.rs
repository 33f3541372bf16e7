//! Buffer objects: the handle table, PRIME import and export, the buffer cache, flip chains.
//!
//! Owns: every GEM handle the winsys opened on a device's file (through [`BoManager`], one per
//! [`Device`]), the buffers handed to clients ([`Bo`], a counted reference), the cached free
//! buffers, and flip chains ([`FlipChain`]). docs/buffers.md tells the whole story.
//!
//! Locks, in nesting order (never taken the other way round):
//! 1. `BoTable::entries` — handle -> buffer. Held across PRIME_FD_TO_HANDLE + lookup/insert on
//!    import, and across entry removal + GEM_CLOSE on the final release of a buffer whose handle
//!    PRIME can hand out (exported or imported). That one lock is what makes import race-free
//!    against a final release: a handle returned by import is never closed by anyone else.
//! 2. `BoInner::fences` — a leaf: the buffer's last-use fences, read on release.
//! 3. `FlipChain::entries` — taken alone; it calls into the table (1) while held, never the other
//!    way round.
//!
//! `BoCache::state` is a leaf of its own: it is never held together with the table lock and
//! never across an ioctl. `iova::Timelines::completed` (the idle check) is taken under it.

use std::fmt;
use std::sync::Arc;

use crate::kernel::KernelError;
use crate::ErrnoError;
use crate::{Device, Errno};

mod buffer;
pub(crate) mod cache;
mod flip_chain;
mod table;

pub use buffer::{Bo, BoFlags};
pub use cache::{CacheStats, MAX_CACHED_SIZE_B};
pub use flip_chain::FlipChain;
pub use table::{BoManager, TableStats};

pub use crate::kernel::ioctl::FbLayout;

/// `DRM_FORMAT_XRGB8888` ('XR24').
pub const DRM_FORMAT_XRGB8888: u32 = u32::from_le_bytes(*b"XR24");
/// `DRM_FORMAT_ARGB8888` ('AR24').
pub const DRM_FORMAT_ARGB8888: u32 = u32::from_le_bytes(*b"AR24");

/// Why a buffer operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoError {
    /// The kernel refused an ioctl.
    Kernel(KernelError),
    /// Export of a buffer created with `NO_SHARE` (the kernel would answer EPERM).
    NoShare { handle: u32 },
    /// Bad input; nothing changed.
    Invalid(String),
    /// A flip chain index that is not in the chain.
    NoSuchEntry { index: usize },
    /// The buffer is on screen; flip away first.
    OnScreen { index: usize },
}

impl fmt::Display for BoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoError::Kernel(e) => write!(f, "{e}"),
            BoError::NoShare { handle } => write!(
                f,
                "buffer (GEM handle {handle}) was created NO_SHARE (private to this device's VM) \
                 and cannot be exported; create it with BoFlags::SHARED to share it"
            ),
            BoError::Invalid(m) => write!(f, "{m}"),
            BoError::NoSuchEntry { index } => write!(f, "flip chain has no buffer {index}"),
            BoError::OnScreen { index } => write!(
                f,
                "flip chain buffer {index} is being scanned out; flip to another one first"
            ),
        }
    }
}

impl std::error::Error for BoError {}

impl ErrnoError for BoError {
    fn errno(&self) -> Errno {
        match self {
            BoError::Kernel(e) => e.errno,
            BoError::NoShare { .. } => Errno::EPERM,
            BoError::Invalid(_) | BoError::NoSuchEntry { .. } => Errno::EINVAL,
            BoError::OnScreen { .. } => Errno::EBUSY,
        }
    }
}

impl From<KernelError> for BoError {
    fn from(e: KernelError) -> Self {
        BoError::Kernel(e)
    }
}

/// Shorthand for the device type buffers hold on to.
pub type DeviceRef = Arc<Device>;
