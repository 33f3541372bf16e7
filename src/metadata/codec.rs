//! The record's bytes: encoding on export, decoding and validation on import.
//!
//! Owns: the byte layout of docs/metadata.md and the order in which an importer checks it.
//! Takes no locks.
//!
//! Every multi-byte field is little-endian (as the Arm CPUs next to an Adreno run), at the offset
//! docs/metadata.md gives; the decoder reads bytes, never casts, so any slice of any length is safe
//! to hand it.

use ash::vk;

use super::layout::{self, ImageDesc, ImageLayout, PlaneParams, TileMode};
use super::{
    Identity, MetadataError, LEGACY_SIZE_B, MAGIC, MAX_PLANES, MAX_SIZE_B, V1_SIZE_B, VERSION,
};

// Byte offsets of the version-1 fields (docs/metadata.md).
const OFF_MODIFIER: usize = 0;
const OFF_MAGIC: usize = 8;
const OFF_VERSION: usize = 12;
const OFF_SIZE: usize = 14;
const OFF_CHECKSUM: usize = 16;
const OFF_VK_FORMAT: usize = 20;
const OFF_CHIP_ID: usize = 24;
const OFF_DRIVER_ID: usize = 32;
const OFF_FOURCC: usize = 40;
const OFF_WIDTH: usize = 44;
const OFF_HEIGHT: usize = 48;
const OFF_DEPTH: usize = 52;
const OFF_LAYERS: usize = 54;
const OFF_MIPS: usize = 56;
const OFF_SAMPLES: usize = 57;
const OFF_TILE_MODE: usize = 58;
const OFF_UBWC_FLAGS: usize = 59;
const OFF_CREATE_FLAGS: usize = 60;
const OFF_USAGE: usize = 64;
/// Plane `i`: offset, pitch, layer stride, UBWC offset (4 x u32) at `OFF_PLANES + 16 * i`.
const OFF_PLANES: usize = 68;
const PLANE_B: usize = 16;
/// Plane `i`'s UBWC pitch (u16) at `OFF_UBWC_PITCH + 2 * i`.
const OFF_UBWC_PITCH: usize = 116;
const OFF_PLANE_COUNT: usize = 122;
const OFF_RESERVED: usize = 123;
/// The smallest record whose header (through the checksum) can be read.
const HEADER_B: usize = 20;

/// `ubwc_flags` bit 0: the image is UBWC-compressed. Other bits are reserved (zero in version 1).
pub const UBWC_FLAG_ENABLED: u8 = 1;

const _: () = assert!(OFF_RESERVED + 1 == V1_SIZE_B && V1_SIZE_B <= MAX_SIZE_B);
const _: () = assert!(OFF_PLANES + MAX_PLANES * PLANE_B == OFF_UBWC_PITCH);

/// An encoded record: up to 128 bytes for MSM_INFO_SET_METADATA.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    bytes: [u8; MAX_SIZE_B],
    len: usize,
}

impl Encoded {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Today's 8-byte form, `struct fdl_metadata { uint64_t modifier; }`: what an exporter writes
    /// when an unmodified freedreno must read it (its 8-byte GET_METADATA fails with ETOOSMALL on
    /// a full record). The importer then has only the modifier, with no bounds guarantee.
    pub fn legacy(modifier: u64) -> Encoded {
        let mut bytes = [0u8; MAX_SIZE_B];
        bytes[..LEGACY_SIZE_B].copy_from_slice(&modifier.to_le_bytes());
        Encoded {
            bytes,
            len: LEGACY_SIZE_B,
        }
    }
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encoded({} bytes)", self.len)
    }
}

/// What an importer learns from a buffer's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Today's 8-byte form: only a modifier. Accepted; the importer computes the layout itself,
    /// as freedreno does today, with no bounds guarantee from the exporter.
    Legacy { modifier: u64 },
    /// A full record: the exporter's image and its layout, checked against the buffer.
    Image(Box<ImportedImage>),
}

impl Imported {
    /// The DRM format modifier, whichever form carried it.
    pub fn modifier(&self) -> u64 {
        match self {
            Imported::Legacy { modifier } => *modifier,
            Imported::Image(i) => i.layout.modifier,
        }
    }
}

/// A decoded, validated full record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The record's version; greater than [`VERSION`] when a newer exporter wrote it and the fields
    /// this version knows were read from their version-1 offsets.
    pub version: u16,
    pub identity: Identity,
    pub desc: ImageDesc,
    pub layout: ImageLayout,
}

impl ImportedImage {
    pub fn newer_version(&self) -> bool {
        self.version > VERSION
    }
}

/// CRC-32C (Castagnoli, reflected, init and final xor 0xffffffff) of `bytes` with the checksum
/// field counted as zero.
fn checksum(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for (i, &b) in bytes.iter().enumerate() {
        let b = if (OFF_CHECKSUM..OFF_CHECKSUM + 4).contains(&i) {
            0
        } else {
            b
        };
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82f6_3b78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fn get<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}
fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(get(b, off))
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(get(b, off))
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(get(b, off))
}
fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

/// Recomputes the checksum of a record in place (over its `size_B` field's length, or the whole
/// slice if that is shorter). For tests and tools that edit records; a hostile writer can do the
/// same, which is why the importer's bounds rules never rely on the checksum.
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < HEADER_B {
        return;
    }
    let size_B = usize::from(u16_at(bytes, OFF_SIZE)).min(bytes.len());
    let sum = checksum(&bytes[..size_B.max(HEADER_B)]);
    put(bytes, OFF_CHECKSUM, &sum.to_le_bytes());
}

/// What today's freedreno takes from metadata bytes: the first 8 as the modifier of
/// `struct fdl_metadata` (native endianness; little-endian on every Adreno host), or nothing when
/// fewer than 8 bytes are there. Every record this module writes passes this check.
pub fn freedreno_modifier(bytes: &[u8]) -> Option<u64> {
    (bytes.len() >= LEGACY_SIZE_B).then(|| u64_at(bytes, OFF_MODIFIER))
}

fn unrepresentable(field: &'static str, value: u64) -> MetadataError {
    MetadataError::Unrepresentable { field, value }
}

fn fit_u32(field: &'static str, v: u64) -> Result<u32, MetadataError> {
    u32::try_from(v).map_err(|_| unrepresentable(field, v))
}

/// Encodes the record for an exported image.
///
/// `desc` is the image's create info (flag and usage bits that do not change the layout are
/// dropped); `layout` must be the layout of `desc` ([`layout::plan`] makes one, or
/// [`layout::expand`] from a driver's own per-plane values). Fails with `InvalidField` for an
/// invalid description or a layout that is not the one `desc` gives, and `Unrepresentable` for
/// sparse images or values too large for their field (offsets and strides past 4 GiB, UBWC pitches
/// past 64 KiB).
pub fn encode(
    identity: &Identity,
    desc: &ImageDesc,
    layout: &ImageLayout,
) -> Result<Encoded, MetadataError> {
    if desc.flags.intersects(layout::REFUSED_CREATE_FLAGS) {
        return Err(unrepresentable("create_flags", desc.flags.as_raw().into()));
    }
    let desc = desc.masked();
    desc.check()?;
    let params = layout.params();
    let again = layout::expand(&desc, layout.tile_mode, layout.ubwc, &params)?;
    if again != *layout {
        return Err(MetadataError::InvalidField {
            field: "layout",
            value: layout.size_B,
            why: "not the layout the image description gives for these per-plane values",
        });
    }
    let mut b = [0u8; MAX_SIZE_B];
    put(&mut b, OFF_MODIFIER, &layout.modifier.to_le_bytes());
    put(&mut b, OFF_MAGIC, &MAGIC.to_le_bytes());
    put(&mut b, OFF_VERSION, &VERSION.to_le_bytes());
    put(&mut b, OFF_SIZE, &(V1_SIZE_B as u16).to_le_bytes());
    put(&mut b, OFF_VK_FORMAT, &desc.format.as_raw().to_le_bytes());
    put(&mut b, OFF_CHIP_ID, &identity.chip_id.to_le_bytes());
    put(&mut b, OFF_DRIVER_ID, &identity.driver_id.to_le_bytes());
    put(&mut b, OFF_FOURCC, &desc.drm_fourcc.to_le_bytes());
    put(&mut b, OFF_WIDTH, &desc.extent.width.to_le_bytes());
    put(&mut b, OFF_HEIGHT, &desc.extent.height.to_le_bytes());
    // check() bounded these: depth 1, layers <= 2048, mips <= 15, samples <= 8.
    put(&mut b, OFF_DEPTH, &(desc.extent.depth as u16).to_le_bytes());
    put(
        &mut b,
        OFF_LAYERS,
        &(desc.array_layers as u16).to_le_bytes(),
    );
    b[OFF_MIPS] = desc.mip_levels as u8;
    b[OFF_SAMPLES] = desc.sample_count() as u8;
    b[OFF_TILE_MODE] = layout.tile_mode as u8;
    b[OFF_UBWC_FLAGS] = if layout.ubwc { UBWC_FLAG_ENABLED } else { 0 };
    put(&mut b, OFF_CREATE_FLAGS, &desc.flags.as_raw().to_le_bytes());
    put(&mut b, OFF_USAGE, &desc.usage.as_raw().to_le_bytes());
    for (i, p) in params.iter().enumerate() {
        let o = OFF_PLANES + PLANE_B * i;
        put(&mut b, o, &fit_u32("offset_B", p.offset_B)?.to_le_bytes());
        put(&mut b, o + 4, &fit_u32("pitch_B", p.pitch_B)?.to_le_bytes());
        put(
            &mut b,
            o + 8,
            &fit_u32("layer_stride_B", p.layer_stride_B)?.to_le_bytes(),
        );
        put(
            &mut b,
            o + 12,
            &fit_u32("ubwc_offset_B", p.ubwc_offset_B)?.to_le_bytes(),
        );
        let ubwc_pitch = u16::try_from(p.ubwc_pitch_B)
            .map_err(|_| unrepresentable("ubwc_pitch_B", p.ubwc_pitch_B))?;
        put(&mut b, OFF_UBWC_PITCH + 2 * i, &ubwc_pitch.to_le_bytes());
    }
    b[OFF_PLANE_COUNT] = params.len() as u8;
    let sum = checksum(&b[..V1_SIZE_B]);
    put(&mut b, OFF_CHECKSUM, &sum.to_le_bytes());
    Ok(Encoded {
        bytes: b,
        len: V1_SIZE_B,
    })
}

/// Decodes and validates metadata as an importer of the writer's own device and driver build
/// would (the identity is taken from the record): for tools that show what a record says, such as
/// the shim's report. Every other rule applies; an importer must use [`decode`].
pub fn inspect(bytes: &[u8], bo_size_B: u64) -> Result<Imported, MetadataError> {
    let theirs = if bytes.len() >= OFF_DRIVER_ID + 8 {
        Identity {
            chip_id: u64_at(bytes, OFF_CHIP_ID),
            driver_id: u64_at(bytes, OFF_DRIVER_ID),
        }
    } else {
        Identity {
            chip_id: 0,
            driver_id: 0,
        }
    };
    decode(bytes, &theirs, bo_size_B)
}

/// Decodes and validates metadata read from a buffer of `bo_size_B` bytes, for an importer whose
/// own identity is `ours`.
///
/// The rules, in the order they are checked (docs/metadata.md, "Import rules"):
/// 1. length 0: `NoMetadata`; more than 128: `TooLong`;
/// 2. exactly 8 bytes: the legacy modifier-only form, accepted as [`Imported::Legacy`] when the
///    modifier is one of this hardware's (else `InvalidField`);
/// 3. under 20 bytes: `SizeMismatch`; no magic: `BadMagic`;
/// 4. version 0, or a newer version shorter than version 1's 124 bytes: `UnsupportedVersion`;
///    `size_B` not the length read (or not 124 for version 1): `SizeMismatch`;
/// 5. CRC-32C: `BadChecksum`;
/// 6. chip id: `DeviceMismatch`; driver id: `DriverMismatch`;
/// 7. fields (format, extent, levels, samples, tile mode, flags, planes, reserved bytes):
///    `InvalidField`; modifier against tile mode and UBWC: `ModifierMismatch`;
/// 8. the layout: `PitchTooSmall`, `Overflow`, `OutOfBounds`, or a layer stride smaller than a
///    layer (`InvalidField`).
///
/// A newer version is read through its version-1 fields; its extra bytes and unknown flag bits
/// are ignored, and the result says `newer_version()`.
pub fn decode(bytes: &[u8], ours: &Identity, bo_size_B: u64) -> Result<Imported, MetadataError> {
    let len_B = bytes.len();
    if len_B == 0 {
        return Err(MetadataError::NoMetadata);
    }
    if len_B > MAX_SIZE_B {
        return Err(MetadataError::TooLong { len_B });
    }
    if len_B == LEGACY_SIZE_B {
        let modifier = u64_at(bytes, OFF_MODIFIER);
        return match layout::from_modifier(modifier) {
            Some(_) => Ok(Imported::Legacy { modifier }),
            None => Err(MetadataError::InvalidField {
                field: "modifier",
                value: modifier,
                why: "not LINEAR, QCOM_TILED2, QCOM_TILED3 or QCOM_COMPRESSED",
            }),
        };
    }
    if len_B < HEADER_B {
        return Err(MetadataError::SizeMismatch {
            len_B,
            expected_B: V1_SIZE_B,
        });
    }
    let magic = u32_at(bytes, OFF_MAGIC);
    if magic != MAGIC {
        return Err(MetadataError::BadMagic { found: magic });
    }
    let version = u16_at(bytes, OFF_VERSION);
    let size_B = usize::from(u16_at(bytes, OFF_SIZE));
    if version == 0 || (version > VERSION && size_B < V1_SIZE_B) {
        return Err(MetadataError::UnsupportedVersion { version, size_B });
    }
    if size_B != len_B {
        return Err(MetadataError::SizeMismatch {
            len_B,
            expected_B: size_B,
        });
    }
    if version == VERSION && size_B != V1_SIZE_B {
        return Err(MetadataError::SizeMismatch {
            len_B,
            expected_B: V1_SIZE_B,
        });
    }
    let stored = u32_at(bytes, OFF_CHECKSUM);
    let computed = checksum(bytes);
    if stored != computed {
        return Err(MetadataError::BadChecksum { stored, computed });
    }
    let theirs = Identity {
        chip_id: u64_at(bytes, OFF_CHIP_ID),
        driver_id: u64_at(bytes, OFF_DRIVER_ID),
    };
    if theirs.chip_id != ours.chip_id {
        return Err(MetadataError::DeviceMismatch {
            ours: ours.chip_id,
            theirs: theirs.chip_id,
        });
    }
    if theirs.driver_id != ours.driver_id {
        return Err(MetadataError::DriverMismatch {
            ours: ours.driver_id,
            theirs: theirs.driver_id,
        });
    }
    let newer = version > VERSION;
    let bad = |field, value: u64, why| MetadataError::InvalidField { field, value, why };

    let raw_format = u32_at(bytes, OFF_VK_FORMAT);
    let mut flags = vk::ImageCreateFlags::from_raw(u32_at(bytes, OFF_CREATE_FLAGS));
    let mut usage = vk::ImageUsageFlags::from_raw(u32_at(bytes, OFF_USAGE));
    let mut ubwc_flags = bytes[OFF_UBWC_FLAGS];
    if newer {
        flags &= layout::LAYOUT_CREATE_FLAGS;
        usage &= layout::LAYOUT_USAGE;
        ubwc_flags &= UBWC_FLAG_ENABLED;
    } else if bytes[OFF_RESERVED] != 0 {
        return Err(bad(
            "reserved",
            bytes[OFF_RESERVED].into(),
            "must be zero in version 1",
        ));
    }
    if ubwc_flags & !UBWC_FLAG_ENABLED != 0 {
        return Err(bad(
            "ubwc_flags",
            ubwc_flags.into(),
            "reserved bits set in version 1",
        ));
    }
    let desc = ImageDesc {
        format: vk::Format::from_raw(raw_format as i32),
        drm_fourcc: u32_at(bytes, OFF_FOURCC),
        extent: vk::Extent3D {
            width: u32_at(bytes, OFF_WIDTH),
            height: u32_at(bytes, OFF_HEIGHT),
            depth: u16_at(bytes, OFF_DEPTH).into(),
        },
        mip_levels: bytes[OFF_MIPS].into(),
        array_layers: u16_at(bytes, OFF_LAYERS).into(),
        samples: vk::SampleCountFlags::from_raw(bytes[OFF_SAMPLES].into()),
        flags,
        usage,
    };
    let info = desc.check()?;
    let raw_tile = bytes[OFF_TILE_MODE];
    let tile_mode = TileMode::from_raw(raw_tile).ok_or(bad(
        "tile_mode",
        raw_tile.into(),
        "not TILE6_LINEAR (0), TILE6_2 (2) or TILE6_3 (3)",
    ))?;
    let ubwc = ubwc_flags & UBWC_FLAG_ENABLED != 0;
    let modifier = u64_at(bytes, OFF_MODIFIER);
    if layout::from_modifier(modifier) != Some((tile_mode, ubwc)) {
        return Err(MetadataError::ModifierMismatch {
            modifier,
            tile_mode: raw_tile,
            ubwc,
        });
    }
    let plane_count = usize::from(bytes[OFF_PLANE_COUNT]);
    if plane_count != info.planes.len() {
        return Err(bad(
            "plane_count",
            plane_count as u64,
            "not the plane count of vk_format",
        ));
    }
    let mut params = Vec::with_capacity(plane_count);
    for i in 0..MAX_PLANES {
        let o = OFF_PLANES + PLANE_B * i;
        let p = PlaneParams {
            offset_B: u32_at(bytes, o).into(),
            pitch_B: u32_at(bytes, o + 4).into(),
            layer_stride_B: u32_at(bytes, o + 8).into(),
            ubwc_offset_B: u32_at(bytes, o + 12).into(),
            ubwc_pitch_B: u16_at(bytes, OFF_UBWC_PITCH + 2 * i).into(),
        };
        if i < plane_count {
            if !ubwc && (p.ubwc_offset_B != 0 || p.ubwc_pitch_B != 0) {
                return Err(bad(
                    "ubwc_offset_B",
                    p.ubwc_offset_B,
                    "UBWC values on an image without UBWC",
                ));
            }
            params.push(p);
        } else if p != PlaneParams::default() {
            return Err(bad(
                "planes",
                i as u64,
                "values in a plane the format lacks",
            ));
        }
    }
    let layout = layout::validate(&desc, tile_mode, ubwc, &params, bo_size_B)?;
    Ok(Imported::Image(Box::new(ImportedImage {
        version,
        identity: theirs,
        desc,
        layout,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The CRC-32C check value of "123456789" is 0xe3069283 (RFC 3720, B.4).
        let mut crc = !0u32;
        for &b in b"123456789" {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0x82f6_3b78 & (crc & 1).wrapping_neg());
            }
        }
        assert_eq!(!crc, 0xe306_9283);
    }

    #[test]
    fn round_trip_one_image() {
        let id = Identity {
            chip_id: 0x4305_0a01,
            driver_id: 7,
        };
        let d = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 300, 200);
        let l = layout::plan(&d, layout::DRM_FORMAT_MOD_QCOM_COMPRESSED).unwrap();
        let e = encode(&id, &d, &l).unwrap();
        assert_eq!(e.as_bytes().len(), V1_SIZE_B);
        assert_eq!(freedreno_modifier(e.as_bytes()), Some(l.modifier));
        match decode(e.as_bytes(), &id, l.size_B).unwrap() {
            Imported::Image(i) => {
                assert_eq!(i.layout, l);
                assert_eq!(i.desc, d);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inspect_reads_a_record_as_its_writer_and_keeps_every_other_rule() {
        let id = Identity {
            chip_id: 0x4305_0a01,
            driver_id: 7,
        };
        let d = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 300, 200);
        let l = layout::plan(&d, layout::DRM_FORMAT_MOD_QCOM_TILED3).unwrap();
        let e = encode(&id, &d, &l).unwrap();
        match inspect(e.as_bytes(), l.size_B).unwrap() {
            Imported::Image(i) => assert_eq!((i.identity, i.layout), (id, l.clone())),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            inspect(e.as_bytes(), l.size_B - 1),
            Err(MetadataError::OutOfBounds { .. })
        ));
        let legacy = Encoded::legacy(layout::DRM_FORMAT_MOD_QCOM_TILED3);
        assert_eq!(
            inspect(legacy.as_bytes(), 0),
            Ok(Imported::Legacy {
                modifier: layout::DRM_FORMAT_MOD_QCOM_TILED3
            })
        );
    }
}
