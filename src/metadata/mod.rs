//! Layout metadata between a Vulkan exporter and a GL importer (EXT_external_objects): the
//! versioned, self-checking record the winsys stores with MSM_INFO_SET_METADATA on export and
//! reads with MSM_INFO_GET_METADATA on import. docs/metadata.md describes it byte by byte.
//!
//! Owns: the record format ([`codec`]), the Adreno layout model it describes ([`layout`]), the
//! format table ([`format`]) and the importer's validation rules, each with its own
//! [`MetadataError`] variant and errno. Takes no locks: everything here is a pure function of its
//! arguments and safe to call from any thread.
//!
//! The first 8 bytes are the DRM format modifier, as turnip writes today, so an importer that reads
//! only `struct fdl_metadata { uint64_t modifier; }` still finds it ([`codec::freedreno_modifier`]).
//! A compositor importing a hostile client's buffer gets either an error or a layout whose every
//! byte lies inside the buffer: the checksum catches accidents, the bounds rules catch malice.

mod bo;
pub mod codec;
mod error;
pub mod format;
pub mod layout;

pub use bo::{load, store, BoMetadataError};
pub use codec::{
    decode, encode, freedreno_modifier, inspect, reseal, Encoded, Imported, ImportedImage,
};
pub use error::MetadataError;
pub use layout::{
    expand, plan, validate, ImageDesc, ImageLayout, LevelLayout, PlaneLayout, PlaneParams, TileMode,
};

/// The kernel's limit on metadata per buffer object (MSM_INFO_SET_METADATA: more is EOVERFLOW).
pub const MAX_SIZE_B: usize = crate::uapi::MSM_METADATA_MAX_B as usize;
/// What turnip writes today: `struct fdl_metadata { uint64_t modifier; }`.
pub const LEGACY_SIZE_B: usize = 8;
/// Bytes of a version-1 record. Bytes 124..128 are left for later versions to append to.
pub const V1_SIZE_B: usize = 124;
/// The version this code writes.
pub const VERSION: u16 = 1;
/// Bytes 8..12: "MSWL" (msm-winsys layout), read as a little-endian u32.
pub const MAGIC: u32 = u32::from_le_bytes(*b"MSWL");
/// Most planes a format has (3-plane YUV).
pub const MAX_PLANES: usize = 3;

/// Who exported a buffer: the GPU and the driver build. An importer refuses metadata from another
/// GPU or another driver build, because both change the layout rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Identity {
    /// `MSM_PARAM_CHIP_ID` of the exporting device.
    pub chip_id: u64,
    /// The first 8 bytes of the driver UUID (`VkPhysicalDeviceIDProperties::driverUUID`,
    /// `GL_DRIVER_UUID_EXT`). Mesa derives turnip's and freedreno's from the same build, so one
    /// Mesa build agrees with itself.
    pub driver_id: u64,
}

impl Identity {
    /// The identity from a chip id and a full 16-byte driver UUID (its first 8 bytes are kept).
    pub fn from_driver_uuid(chip_id: u64, driver_uuid: &[u8; 16]) -> Identity {
        let mut id = [0u8; 8];
        id.copy_from_slice(&driver_uuid[..8]);
        Identity {
            chip_id,
            driver_id: u64::from_le_bytes(id),
        }
    }
}
