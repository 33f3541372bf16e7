//! Errors of the address heap and the errno each one is at the C ABI.
//!
//! Owns: [`VaError`]. Takes no locks.

use std::fmt;

use super::fence::Fence;
use crate::Errno;
use crate::ErrnoError;

/// Why a heap call failed. Every failing call changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaError {
    /// A bad argument (zero size, alignment not a power of two, unknown flags, a no-cross boundary
    /// smaller than the request, a heap range that is not granule-aligned or overflows 2^64, a
    /// fixed address outside the heap). `EINVAL`.
    InvalidArgument(String),
    /// No hole holds a range of this size with this alignment and no-cross rule. `ENOSPC`.
    NoSpace { size_B: u64, align_B: u64 },
    /// A fixed-address request overlaps a live allocation. `EEXIST`.
    AddressTaken { iova: u64, size_B: u64 },
    /// A fixed-address request overlaps only holes and ranges still waiting on these fences; wait
    /// for them (`VaHeap::alloc_addr_wait`) and retry. `EBUSY`.
    AddressDeferred {
        iova: u64,
        size_B: u64,
        fences: Vec<Fence>,
    },
    /// A free of a range that is not a live allocation of exactly this size (never allocated,
    /// already freed, or freed after a fence). `ENOENT`.
    NotAllocated { iova: u64, size_B: u64 },
    /// An explicit wait for deferred ranges ran out of time. `ETIMEDOUT`.
    TimedOut { iova: u64, size_B: u64 },
    /// The fence wait hook failed with this errno.
    Wait(Errno),
}

impl fmt::Display for VaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaError::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            VaError::NoSpace { size_B, align_B } => {
                write!(f, "no free GPU address range of {size_B:#x} bytes aligned to {align_B:#x}")
            }
            VaError::AddressTaken { iova, size_B } => write!(
                f,
                "GPU address range [{iova:#x}, +{size_B:#x}) overlaps a live allocation"
            ),
            VaError::AddressDeferred { iova, size_B, fences } => write!(
                f,
                "GPU address range [{iova:#x}, +{size_B:#x}) is still waiting on {} fence(s), e.g. {:?}",
                fences.len(),
                fences.first()
            ),
            VaError::NotAllocated { iova, size_B } => write!(
                f,
                "GPU address range [{iova:#x}, +{size_B:#x}) is not a live allocation of this size \
                 (never allocated, or already freed)"
            ),
            VaError::TimedOut { iova, size_B } => write!(
                f,
                "timed out waiting for the fences of GPU address range [{iova:#x}, +{size_B:#x})"
            ),
            VaError::Wait(e) => write!(f, "waiting for a fence failed with {e}"),
        }
    }
}

impl std::error::Error for VaError {}

impl ErrnoError for VaError {
    fn errno(&self) -> Errno {
        match self {
            VaError::InvalidArgument(_) => Errno::EINVAL,
            VaError::NoSpace { .. } => Errno::ENOSPC,
            VaError::AddressTaken { .. } => Errno::EEXIST,
            VaError::AddressDeferred { .. } => Errno::EBUSY,
            VaError::NotAllocated { .. } => Errno::ENOENT,
            VaError::TimedOut { .. } => Errno::ETIMEDOUT,
            VaError::Wait(e) => *e,
        }
    }
}
