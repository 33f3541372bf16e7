//! Metadata on a buffer object: written with GEM_INFO(SET_METADATA) when an export carries an
//! image layout, read and validated with GEM_INFO(GET_METADATA) on import.
//!
//! Owns: nothing; the kernel stores the bytes. Takes no locks (the kernel serialises per object).

use std::fmt;

use super::{decode, Encoded, Identity, Imported, MetadataError};
use crate::kernel::{ioctl, Kernel, KernelError};
use crate::Errno;
use crate::ErrnoError;

/// Why metadata could not be stored or loaded: the kernel refused, or the bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoMetadataError {
    Kernel(KernelError),
    Metadata(MetadataError),
}

impl fmt::Display for BoMetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoMetadataError::Kernel(e) => write!(f, "{e}"),
            BoMetadataError::Metadata(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BoMetadataError {}

impl ErrnoError for BoMetadataError {
    fn errno(&self) -> Errno {
        match self {
            BoMetadataError::Kernel(e) => e.errno,
            BoMetadataError::Metadata(e) => e.errno(),
        }
    }
}

/// Stores an encoded record with the object `handle` (exporter side).
pub fn store(k: &dyn Kernel, handle: u32, record: &Encoded) -> Result<(), BoMetadataError> {
    ioctl::gem_set_metadata(k, handle, record.as_bytes()).map_err(BoMetadataError::Kernel)
}

/// Reads and validates the metadata of the object `handle` of `bo_size_B` bytes (importer side).
///
/// "No metadata" is `MetadataError::NoMetadata` (ENODATA), whether the object has none or an old
/// kernel returned nothing (an all-zero buffer); the caller then falls back to its own guess.
pub fn load(
    k: &dyn Kernel,
    handle: u32,
    bo_size_B: u64,
    ours: &Identity,
) -> Result<Imported, BoMetadataError> {
    let bytes = ioctl::gem_get_metadata(k, handle).map_err(BoMetadataError::Kernel)?;
    if bytes.iter().all(|&b| b == 0) {
        return Err(BoMetadataError::Metadata(MetadataError::NoMetadata));
    }
    decode(&bytes, ours, bo_size_B).map_err(BoMetadataError::Metadata)
}
