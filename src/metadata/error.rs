//! Errors of the layout-metadata codec: one variant, and one errno, per rule an importer checks.
//!
//! Owns: nothing but the error type. Takes no locks.

use std::fmt;

use crate::Errno;
use crate::ErrnoError;

/// Why metadata could not be encoded or was refused on import.
///
/// Each import rule of docs/metadata.md has its own variant and its own errno, so a C caller can
/// tell "no metadata, guess as before" from "hostile or foreign metadata, refuse the import".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// Length 0: the buffer carries no metadata, or the kernel returned none. `ENODATA`.
    NoMetadata,
    /// More bytes than the kernel's 128-byte limit. `E2BIG`.
    TooLong { len_B: usize },
    /// The length is neither the legacy 8 bytes nor the record's own `size_B`, or too short to
    /// hold a header. `EMSGSIZE`.
    SizeMismatch { len_B: usize, expected_B: usize },
    /// Longer than 8 bytes but no magic: written by someone else in some other format. `ENOMSG`.
    BadMagic { found: u32 },
    /// Version 0, or a newer version whose record is shorter than version 1's (so the version-1
    /// fields cannot all be read at their version-1 offsets). `EPROTONOSUPPORT`.
    UnsupportedVersion { version: u16, size_B: usize },
    /// CRC-32C over the record does not match. `EBADMSG`.
    BadChecksum { stored: u32, computed: u32 },
    /// Exported by another GPU (chip id differs). `EXDEV`.
    DeviceMismatch { ours: u64, theirs: u64 },
    /// Exported by another driver build (driver id differs), whose layout rules may differ. `EPROTO`.
    DriverMismatch { ours: u64, theirs: u64 },
    /// A field holds a value the format does not allow (unknown format, zero extent, too many mip
    /// levels, reserved bits set, ...). `EINVAL`.
    InvalidField {
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    /// The DRM format modifier in bytes 0..8 disagrees with the tile mode and UBWC flag, so
    /// today's freedreno (which reads only the modifier) would see another layout. `EILSEQ`.
    ModifierMismatch {
        modifier: u64,
        tile_mode: u8,
        ubwc: bool,
    },
    /// A pitch smaller than one row of the plane (width x bytes per pixel), or a UBWC metadata
    /// pitch smaller than one byte per block. `EDOM`.
    PitchTooSmall {
        plane: usize,
        level: u32,
        pitch_B: u64,
        min_B: u64,
    },
    /// Some byte of a plane or of its UBWC metadata lies past the end of the buffer. `ERANGE`.
    OutOfBounds {
        plane: usize,
        what: &'static str,
        end_B: u64,
        bo_size_B: u64,
    },
    /// Offset, pitch or size arithmetic overflowed 64 bits. `EOVERFLOW`.
    Overflow { plane: usize, what: &'static str },
    /// Exporter side: the image or layout cannot be described by this format (a value does not
    /// fit its field, an unsupported combination). `EOPNOTSUPP`.
    Unrepresentable { field: &'static str, value: u64 },
}

impl MetadataError {
    /// The errno C callers see for this error (negated by the C ABI).
    pub fn errno_of(&self) -> Errno {
        use MetadataError::*;
        Errno(match self {
            NoMetadata => libc::ENODATA,
            TooLong { .. } => libc::E2BIG,
            SizeMismatch { .. } => libc::EMSGSIZE,
            BadMagic { .. } => libc::ENOMSG,
            UnsupportedVersion { .. } => libc::EPROTONOSUPPORT,
            BadChecksum { .. } => libc::EBADMSG,
            DeviceMismatch { .. } => libc::EXDEV,
            DriverMismatch { .. } => libc::EPROTO,
            InvalidField { .. } => libc::EINVAL,
            ModifierMismatch { .. } => libc::EILSEQ,
            PitchTooSmall { .. } => libc::EDOM,
            OutOfBounds { .. } => libc::ERANGE,
            Overflow { .. } => libc::EOVERFLOW,
            Unrepresentable { .. } => libc::EOPNOTSUPP,
        })
    }
}

impl MetadataError {
    /// The variant's name, for tables and logs (`"OutOfBounds"`).
    pub fn name(&self) -> &'static str {
        use MetadataError::*;
        match self {
            NoMetadata => "NoMetadata",
            TooLong { .. } => "TooLong",
            SizeMismatch { .. } => "SizeMismatch",
            BadMagic { .. } => "BadMagic",
            UnsupportedVersion { .. } => "UnsupportedVersion",
            BadChecksum { .. } => "BadChecksum",
            DeviceMismatch { .. } => "DeviceMismatch",
            DriverMismatch { .. } => "DriverMismatch",
            InvalidField { .. } => "InvalidField",
            ModifierMismatch { .. } => "ModifierMismatch",
            PitchTooSmall { .. } => "PitchTooSmall",
            OutOfBounds { .. } => "OutOfBounds",
            Overflow { .. } => "Overflow",
            Unrepresentable { .. } => "Unrepresentable",
        }
    }

    /// The symbolic name of [`MetadataError::errno_of`] (`"ERANGE"`).
    pub fn errno_name(&self) -> &'static str {
        use MetadataError::*;
        match self {
            NoMetadata => "ENODATA",
            TooLong { .. } => "E2BIG",
            SizeMismatch { .. } => "EMSGSIZE",
            BadMagic { .. } => "ENOMSG",
            UnsupportedVersion { .. } => "EPROTONOSUPPORT",
            BadChecksum { .. } => "EBADMSG",
            DeviceMismatch { .. } => "EXDEV",
            DriverMismatch { .. } => "EPROTO",
            InvalidField { .. } => "EINVAL",
            ModifierMismatch { .. } => "EILSEQ",
            PitchTooSmall { .. } => "EDOM",
            OutOfBounds { .. } => "ERANGE",
            Overflow { .. } => "EOVERFLOW",
            Unrepresentable { .. } => "EOPNOTSUPP",
        }
    }
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MetadataError::*;
        match self {
            NoMetadata => write!(f, "the buffer has no layout metadata (length 0)"),
            TooLong { len_B } => {
                write!(f, "layout metadata of {len_B} bytes is longer than the kernel's 128")
            }
            SizeMismatch { len_B, expected_B } => write!(
                f,
                "layout metadata of {len_B} bytes where {expected_B} were expected (truncated or padded)"
            ),
            BadMagic { found } => write!(
                f,
                "foreign layout metadata: magic {found:#010x} is not msm-winsys's {:#010x}",
                super::MAGIC
            ),
            UnsupportedVersion { version, size_B } => write!(
                f,
                "layout metadata version {version} ({size_B} bytes) cannot be read by version {} \
                 (needs at least {} bytes)",
                super::VERSION,
                super::V1_SIZE_B
            ),
            BadChecksum { stored, computed } => write!(
                f,
                "layout metadata checksum {stored:#010x} does not match its contents ({computed:#010x})"
            ),
            DeviceMismatch { ours, theirs } => write!(
                f,
                "layout metadata is from GPU chip id {theirs:#x}, this device is {ours:#x}"
            ),
            DriverMismatch { ours, theirs } => write!(
                f,
                "layout metadata is from driver build {theirs:#018x}, this driver is {ours:#018x}"
            ),
            InvalidField { field, value, why } => {
                write!(f, "layout metadata field {field} = {value:#x}: {why}")
            }
            ModifierMismatch {
                modifier,
                tile_mode,
                ubwc,
            } => write!(
                f,
                "layout metadata modifier {modifier:#x} disagrees with tile mode {tile_mode} \
                 (ubwc {ubwc}); a modifier-only reader would use another layout"
            ),
            PitchTooSmall {
                plane,
                level,
                pitch_B,
                min_B,
            } => write!(
                f,
                "plane {plane} level {level}: pitch {pitch_B} bytes is less than a row ({min_B} bytes)"
            ),
            OutOfBounds {
                plane,
                what,
                end_B,
                bo_size_B,
            } => write!(
                f,
                "plane {plane}: {what} ends at byte {end_B}, past the {bo_size_B}-byte buffer"
            ),
            Overflow { plane, what } => {
                write!(f, "plane {plane}: {what} overflows 64 bits")
            }
            Unrepresentable { field, value } => write!(
                f,
                "cannot describe this image in layout metadata: {field} = {value:#x} does not fit"
            ),
        }
    }
}

impl std::error::Error for MetadataError {}

impl ErrnoError for MetadataError {
    fn errno(&self) -> Errno {
        self.errno_of()
    }
}
