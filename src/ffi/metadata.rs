//! C API of the layout metadata (`msmws_metadata_*`): the exporter's layout model and encoder and
//! the importer's decoder and bounds check, on plain `#[repr(C)]` structs (docs/metadata.md).
//!
//! Owns: nothing beyond the call; no handles, no allocation the caller must free.
//! Locks: none. Every function is a pure function of its arguments, safe from any thread at once.
//!
//! Errors (negative errno; `msmws_last_error_message()` says which and why): `-EINVAL` for NULL
//! pointers, too small output buffers and invalid fields, and on import one errno per rule:
//! `-ENODATA` (no metadata), `-E2BIG` (over 128 bytes), `-EMSGSIZE` (truncated or wrong size),
//! `-ENOMSG` (no magic), `-EPROTONOSUPPORT` (unreadable version), `-EBADMSG` (checksum),
//! `-EXDEV` (other GPU), `-EPROTO` (other driver build), `-EILSEQ` (modifier disagrees with the
//! tile mode), `-EDOM` (pitch below a row), `-ERANGE` (past the buffer), `-EOVERFLOW` (64-bit
//! overflow); on export `-EOPNOTSUPP` (not describable). Failing calls write no output.

// C callers cannot see `unsafe`; each function documents its pointer contract instead, and null
// pointers are checked before use.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::c_int;

use ash::vk;

use super::{boundary, check_out, write_out, FfiError, FfiResult};
use crate::metadata::{
    self, layout, Identity, ImageDesc, ImageLayout, Imported, LevelLayout, PlaneParams, TileMode,
};

/// Most bytes of metadata (the kernel's limit); an encode buffer of this size always suffices.
// A literal for cbindgen; `the_c_limit_is_the_kernels` checks it is the kernel's limit.
pub const MSMWS_METADATA_MAX_SIZE: u32 = 128;
/// `flags` bit of `msmws_metadata_decode`: the legacy 8-byte form; only `modifier`, `tile_mode`
/// and `ubwc` of the layout are set (the importer computes the rest itself, as today).
pub const MSMWS_METADATA_LEGACY: u32 = 1;
/// `flags` bit of `msmws_metadata_decode`: written by a newer version, read through its
/// version-1 fields.
pub const MSMWS_METADATA_NEWER_VERSION: u32 = 2;

/// Who exported a buffer: `chip_id` is MSM_PARAM_CHIP_ID, `driver_id` the first 8 bytes of the
/// driver UUID read as a little-endian u64.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct msmws_metadata_identity {
    pub chip_id: u64,
    pub driver_id: u64,
}

/// The layout-relevant part of a `VkImageCreateInfo` (2D images). `samples` is the count (1, 2,
/// 4, 8), `create_flags` and `usage` are `VkImageCreateFlags` and `VkImageUsageFlags`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct msmws_image_desc {
    pub vk_format: u32,
    pub drm_fourcc: u32,
    pub width: u32,
    pub height: u32,
    pub depth: u32,
    pub mip_levels: u32,
    pub array_layers: u32,
    pub samples: u32,
    pub create_flags: u32,
    pub usage: u32,
}

/// One plane: the five values the record stores (inputs to encode/validate) and two derived
/// sizes (outputs only; ignored on input).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct msmws_plane_layout {
    pub offset_B: u64,
    pub pitch_B: u64,
    pub layer_stride_B: u64,
    pub ubwc_offset_B: u64,
    pub ubwc_pitch_B: u64,
    /// Output: bytes of all levels of one layer.
    pub layer_size_B: u64,
    /// Output: bytes of the UBWC metadata of all levels of one layer.
    pub ubwc_layer_stride_B: u64,
}

/// A whole image's layout. `tile_mode` is `a6xx_tile_mode` (0, 2, 3), `ubwc` 0 or 1; `modifier`
/// and `size_B` are outputs (ignored on input).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct msmws_image_layout {
    pub modifier: u64,
    pub size_B: u64,
    pub tile_mode: u32,
    pub ubwc: u32,
    pub plane_count: u32,
    pub pad: u32,
    pub planes: [msmws_plane_layout; 3],
}

/// One mip level of one plane, layer 0 (layer `i` is `i * layer_stride_B` further).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct msmws_level_layout {
    pub offset_B: u64,
    pub pitch_B: u64,
    pub size_B: u64,
    pub ubwc_offset_B: u64,
    pub ubwc_pitch_B: u64,
    pub ubwc_size_B: u64,
}

fn read<'a, T>(ptr: *const T, what: &str) -> FfiResult<&'a T> {
    // SAFETY: a non-null `ptr` points to a readable `T` (each function's documented contract).
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::invalid(format!("{what} is NULL")))
}

fn desc_from_c(d: &msmws_image_desc) -> ImageDesc {
    ImageDesc {
        format: vk::Format::from_raw(d.vk_format as i32),
        drm_fourcc: d.drm_fourcc,
        extent: vk::Extent3D {
            width: d.width,
            height: d.height,
            depth: d.depth,
        },
        mip_levels: d.mip_levels,
        array_layers: d.array_layers,
        samples: vk::SampleCountFlags::from_raw(d.samples),
        flags: vk::ImageCreateFlags::from_raw(d.create_flags),
        usage: vk::ImageUsageFlags::from_raw(d.usage),
    }
}

fn desc_to_c(d: &ImageDesc) -> msmws_image_desc {
    msmws_image_desc {
        vk_format: d.format.as_raw() as u32,
        drm_fourcc: d.drm_fourcc,
        width: d.extent.width,
        height: d.extent.height,
        depth: d.extent.depth,
        mip_levels: d.mip_levels,
        array_layers: d.array_layers,
        samples: d.sample_count(),
        create_flags: d.flags.as_raw(),
        usage: d.usage.as_raw(),
    }
}

fn layout_to_c(l: &ImageLayout) -> msmws_image_layout {
    let mut c = msmws_image_layout {
        modifier: l.modifier,
        size_B: l.size_B,
        tile_mode: l.tile_mode as u32,
        ubwc: l.ubwc.into(),
        plane_count: l.planes.len() as u32,
        ..Default::default()
    };
    for (cp, p) in c.planes.iter_mut().zip(&l.planes) {
        *cp = msmws_plane_layout {
            offset_B: p.params.offset_B,
            pitch_B: p.params.pitch_B,
            layer_stride_B: p.params.layer_stride_B,
            ubwc_offset_B: p.params.ubwc_offset_B,
            ubwc_pitch_B: p.params.ubwc_pitch_B,
            layer_size_B: p.layer_size_B,
            ubwc_layer_stride_B: p.ubwc_layer_stride_B,
        };
    }
    c
}

/// The full layout a C layout's stored values give for `desc` (not yet bounds-checked).
fn expand_c(d: &msmws_image_desc, l: &msmws_image_layout) -> FfiResult<ImageLayout> {
    expand_desc(&desc_from_c(d), l)
}

fn expand_desc(desc: &ImageDesc, l: &msmws_image_layout) -> FfiResult<ImageLayout> {
    let tile_mode = u8::try_from(l.tile_mode)
        .ok()
        .and_then(TileMode::from_raw)
        .ok_or_else(|| FfiError::invalid(format!("tile_mode {} is not 0, 2 or 3", l.tile_mode)))?;
    if l.ubwc > 1 {
        return Err(FfiError::invalid(format!("ubwc {} is not 0 or 1", l.ubwc)));
    }
    let n = l.plane_count as usize;
    if n == 0 || n > l.planes.len() {
        return Err(FfiError::invalid(format!("plane_count {n} is not 1..=3")));
    }
    let params: Vec<PlaneParams> = l.planes[..n]
        .iter()
        .map(|p| PlaneParams {
            offset_B: p.offset_B,
            pitch_B: p.pitch_B,
            layer_stride_B: p.layer_stride_B,
            ubwc_offset_B: p.ubwc_offset_B,
            ubwc_pitch_B: p.ubwc_pitch_B,
        })
        .collect();
    Ok(layout::expand(desc, tile_mode, l.ubwc == 1, &params)?)
}

/// The exporter's layout model: the layout of `desc` when the driver asks for `modifier`
/// (DRM_FORMAT_MOD_LINEAR, QCOM_TILED2, QCOM_TILED3 or QCOM_COMPRESSED; the result may fall back,
/// see docs/metadata.md; usage and create flags that do not change a layout are ignored). Writes
/// `*layout_out` on success only. Thread-safe.
/// Returns 0, -EINVAL (NULL pointer, invalid description or modifier) or -EOVERFLOW.
#[no_mangle]
pub extern "C" fn msmws_metadata_plan(
    desc: *const msmws_image_desc,
    modifier: u64,
    layout_out: *mut msmws_image_layout,
) -> c_int {
    boundary(|| {
        let d = read(desc, "desc")?;
        check_out(layout_out, "layout_out")?;
        let l = layout::plan(&desc_from_c(d).masked(), modifier)?;
        // SAFETY: `layout_out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(layout_out, layout_to_c(&l)) };
        Ok(())
    })
}

/// The DRM fourcc the record stores for `vk_format` (`msmws_image_desc.drm_fourcc`): 0 for a
/// format without one or one msm-winsys does not know. Thread-safe; no errors.
#[no_mangle]
pub extern "C" fn msmws_metadata_drm_fourcc(vk_format: u32) -> u32 {
    crate::metadata::format::lookup_raw(vk_format).map_or(0, |f| f.drm_fourcc)
}

/// Encodes the record for an exported image into `out` (`out_size` bytes; 128 always suffice) and
/// writes its length to `*len_out`: the bytes to store with MSM_INFO_SET_METADATA.
///
/// `layout` must be the layout of `desc` (from `msmws_metadata_plan`, or the driver's own per-plane
/// values with the derived fields ignored). Create flags and usage bits that do not change the
/// layout (transfer usage, ...) are dropped, not refused. The caller keeps ownership of every
/// buffer.
/// Thread-safe. Returns 0, -EINVAL (NULL pointer, `out_size` too small, invalid description or a
/// layout that is not the description's) or -EOPNOTSUPP (sparse, or values too large for the
/// format); nothing is written on failure.
#[no_mangle]
pub extern "C" fn msmws_metadata_encode(
    identity: *const msmws_metadata_identity,
    desc: *const msmws_image_desc,
    layout: *const msmws_image_layout,
    out: *mut u8,
    out_size: u32,
    len_out: *mut u32,
) -> c_int {
    boundary(|| {
        let id = read(identity, "identity")?;
        let d = read(desc, "desc")?;
        let l = read(layout, "layout")?;
        check_out(out, "out")?;
        check_out(len_out, "len_out")?;
        // A driver passes its whole VkImageCreateInfo: the bits the record does not carry
        // (transfer usage, ...) do not change the layout. `encode` still sees them all, to
        // refuse what it cannot describe (sparse).
        let desc = desc_from_c(d);
        let full = expand_desc(&desc.masked(), l)?;
        let ident = Identity {
            chip_id: id.chip_id,
            driver_id: id.driver_id,
        };
        let enc = metadata::encode(&ident, &desc, &full)?;
        let bytes = enc.as_bytes();
        if bytes.len() > out_size as usize {
            return Err(FfiError::invalid(format!(
                "out_size {out_size} is smaller than the {}-byte record",
                bytes.len()
            )));
        }
        // SAFETY: `out` is non-null and the caller promises `out_size` writable bytes, which we
        // checked hold `bytes`; a Rust array never overlaps the caller's buffer.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len()) };
        // SAFETY: `len_out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(len_out, bytes.len() as u32) };
        Ok(())
    })
}

/// Decodes and validates `len` bytes of metadata read from a buffer of `bo_size_B` bytes, for an
/// importer whose identity is `*ours`.
///
/// On success writes the exporter's image to `*desc_out`, its layout (every plane's last byte
/// inside the buffer) to `*layout_out`, and `MSMWS_METADATA_LEGACY` / `_NEWER_VERSION` bits to
/// `*flags_out`. For the legacy 8-byte form only `modifier`, `tile_mode` and `ubwc` are set and
/// `*desc_out` is zeroed. `data` may be NULL when `len` is 0. Reads at most `len` bytes (and
/// none when `len` > 128). Thread-safe. Returns 0 or one errno per rule (see the top of this file);
/// nothing is written on failure.
#[no_mangle]
pub extern "C" fn msmws_metadata_decode(
    data: *const u8,
    len: u32,
    ours: *const msmws_metadata_identity,
    bo_size_B: u64,
    desc_out: *mut msmws_image_desc,
    layout_out: *mut msmws_image_layout,
    flags_out: *mut u32,
) -> c_int {
    boundary(|| {
        let id = read(ours, "ours")?;
        check_out(desc_out, "desc_out")?;
        check_out(layout_out, "layout_out")?;
        check_out(flags_out, "flags_out")?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if len as usize > metadata::MAX_SIZE_B {
            return Err(metadata::MetadataError::TooLong {
                len_B: len as usize,
            }
            .into());
        } else if data.is_null() {
            return Err(FfiError::invalid("data is NULL"));
        } else {
            // SAFETY: `data` is non-null and the caller promises `len` readable bytes.
            unsafe { std::slice::from_raw_parts(data, len as usize) }
        };
        let ident = Identity {
            chip_id: id.chip_id,
            driver_id: id.driver_id,
        };
        let (d, l, flags) = match metadata::decode(bytes, &ident, bo_size_B)? {
            Imported::Legacy { modifier } => {
                let (tile_mode, ubwc) =
                    layout::from_modifier(modifier).expect("decode checked the modifier");
                let l = msmws_image_layout {
                    modifier,
                    tile_mode: tile_mode as u32,
                    ubwc: ubwc.into(),
                    ..Default::default()
                };
                (msmws_image_desc::default(), l, MSMWS_METADATA_LEGACY)
            }
            Imported::Image(i) => {
                let flags = if i.newer_version() {
                    MSMWS_METADATA_NEWER_VERSION
                } else {
                    0
                };
                (desc_to_c(&i.desc), layout_to_c(&i.layout), flags)
            }
        };
        // SAFETY: the three out-pointers were checked non-null; the caller promises they are
        // writable.
        unsafe {
            write_out(desc_out, d);
            write_out(layout_out, l);
            write_out(flags_out, flags);
        }
        Ok(())
    })
}

/// Checks a layout against a buffer of `bo_size_B` bytes with the importer's rules (every
/// level's pitch holds a row, layers do not overlap, every byte of every plane and its UBWC
/// metadata inside the buffer, 64-bit arithmetic checked), for a layout that came some other way
/// than `msmws_metadata_decode`. Reads only the stored fields of `*layout`. Thread-safe.
/// Returns 0, -EINVAL, -EDOM, -ERANGE or -EOVERFLOW.
#[no_mangle]
pub extern "C" fn msmws_metadata_validate(
    desc: *const msmws_image_desc,
    layout: *const msmws_image_layout,
    bo_size_B: u64,
) -> c_int {
    boundary(|| {
        let full = expand_c(read(desc, "desc")?, read(layout, "layout")?)?;
        full.check_fits(bo_size_B)?;
        Ok(())
    })
}

/// Writes mip level `level` of plane `plane` of a layout (layer 0) to `*level_out`, after the same
/// checks as `msmws_metadata_validate` against `bo_size_B`. Thread-safe. Returns 0, the errnos of
/// `msmws_metadata_validate`, or -EINVAL for a plane or level the image lacks.
#[no_mangle]
pub extern "C" fn msmws_metadata_level(
    desc: *const msmws_image_desc,
    layout: *const msmws_image_layout,
    bo_size_B: u64,
    plane: u32,
    level: u32,
    level_out: *mut msmws_level_layout,
) -> c_int {
    boundary(|| {
        check_out(level_out, "level_out")?;
        let full = expand_c(read(desc, "desc")?, read(layout, "layout")?)?;
        full.check_fits(bo_size_B)?;
        let lv: &LevelLayout = full
            .planes
            .get(plane as usize)
            .and_then(|p| p.levels.get(level as usize))
            .ok_or_else(|| {
                FfiError::invalid(format!("the image has no plane {plane} level {level}"))
            })?;
        let c = msmws_level_layout {
            offset_B: lv.offset_B,
            pitch_B: lv.pitch_B,
            size_B: lv.size_B,
            ubwc_offset_B: lv.ubwc_offset_B,
            ubwc_pitch_B: lv.ubwc_pitch_B,
            ubwc_size_B: lv.ubwc_size_B,
        };
        // SAFETY: `level_out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(level_out, c) };
        Ok(())
    })
}

/// Today's freedreno's reading of metadata bytes: the first 8 as `struct fdl_metadata`'s
/// modifier. Writes it to `*modifier_out`. Thread-safe. Returns 0, -EINVAL (NULL pointer) or
/// -ENODATA (fewer than 8 bytes).
#[no_mangle]
pub extern "C" fn msmws_metadata_freedreno_modifier(
    data: *const u8,
    len: u32,
    modifier_out: *mut u64,
) -> c_int {
    boundary(|| {
        check_out(modifier_out, "modifier_out")?;
        if (len as usize) < metadata::LEGACY_SIZE_B {
            return Err(metadata::MetadataError::NoMetadata.into());
        }
        if data.is_null() {
            return Err(FfiError::invalid("data is NULL"));
        }
        // SAFETY: `data` is non-null and the caller promises `len` (>= 8) readable bytes.
        let bytes = unsafe { std::slice::from_raw_parts(data, metadata::LEGACY_SIZE_B) };
        let m = metadata::freedreno_modifier(bytes).unwrap_or_default();
        // SAFETY: `modifier_out` was checked non-null; the caller promises it is writable.
        unsafe { write_out(modifier_out, m) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drm_fourcc_of_a_vk_format_is_the_tables() {
        let rgba = vk::Format::R8G8B8A8_UNORM.as_raw() as u32;
        assert_eq!(
            msmws_metadata_drm_fourcc(rgba),
            u32::from_le_bytes(*b"AB24")
        );
        let d32 = vk::Format::D32_SFLOAT.as_raw() as u32;
        assert_eq!(msmws_metadata_drm_fourcc(d32), 0);
        assert_eq!(msmws_metadata_drm_fourcc(u32::MAX), 0);
    }

    fn rgba(width: u32, height: u32) -> msmws_image_desc {
        msmws_image_desc {
            vk_format: vk::Format::R8G8B8A8_UNORM.as_raw() as u32,
            drm_fourcc: u32::from_le_bytes(*b"AB24"),
            width,
            height,
            depth: 1,
            mip_levels: 1,
            array_layers: 1,
            samples: 1,
            create_flags: 0,
            usage: vk::ImageUsageFlags::SAMPLED.as_raw(),
        }
    }

    /// Encodes `l` for `d` and decodes the record again against a buffer of the layout's size:
    /// the record, and what it decodes to.
    fn encode_decode(
        id: &msmws_metadata_identity,
        d: &msmws_image_desc,
        l: &msmws_image_layout,
    ) -> (Vec<u8>, msmws_image_desc, msmws_image_layout) {
        let mut buf = vec![0u8; MSMWS_METADATA_MAX_SIZE as usize];
        let mut len = 0u32;
        let rc = msmws_metadata_encode(id, d, l, buf.as_mut_ptr(), buf.len() as u32, &mut len);
        assert_eq!(rc, 0);
        assert_eq!(len, 124);
        buf.truncate(len as usize);
        let (mut d2, mut l2, mut flags) = Default::default();
        let rc = msmws_metadata_decode(
            buf.as_ptr(),
            len,
            id,
            l.size_B,
            &mut d2,
            &mut l2,
            &mut flags,
        );
        assert_eq!((rc, flags), (0, 0));
        (buf, d2, l2)
    }

    #[test]
    fn the_c_limit_is_the_kernels() {
        assert_eq!(MSMWS_METADATA_MAX_SIZE, crate::uapi::MSM_METADATA_MAX_B);
    }

    /// turnip on a7xx compresses RGBA8 SNORM (freedreno's own rules never do): the record must
    /// carry it for a GL importer to honour the UBWC choice.
    #[test]
    fn a_compressed_snorm_image_round_trips() {
        let id = msmws_metadata_identity {
            chip_id: 0x43050a01,
            driver_id: 7,
        };
        let d = msmws_image_desc {
            vk_format: vk::Format::R8G8B8A8_SNORM.as_raw() as u32,
            drm_fourcc: msmws_metadata_drm_fourcc(vk::Format::R8G8B8A8_SNORM.as_raw() as u32),
            ..rgba(256, 256)
        };
        assert_eq!(d.drm_fourcc, 0);
        let mut l = msmws_image_layout::default();
        let compressed = layout::DRM_FORMAT_MOD_QCOM_COMPRESSED;
        assert_eq!(msmws_metadata_plan(&d, compressed, &mut l), 0);
        assert_eq!(l.ubwc, 1);
        let (_, d2, l2) = encode_decode(&id, &d, &l);
        assert_eq!((d2.vk_format, l2.ubwc), (d.vk_format, 1));
        assert_eq!(l2.planes[0].ubwc_pitch_B, l.planes[0].ubwc_pitch_B);
    }

    #[test]
    fn plan_encode_decode_round_trip_through_c() {
        let id = msmws_metadata_identity {
            chip_id: 1,
            driver_id: 2,
        };
        let d = rgba(640, 480);
        let mut l = msmws_image_layout::default();
        assert_eq!(
            msmws_metadata_plan(&d, layout::DRM_FORMAT_MOD_QCOM_COMPRESSED, &mut l),
            0
        );
        let (buf, mut d2, mut l2) = encode_decode(&id, &d, &l);
        assert_eq!(l2.planes[0].offset_B, l.planes[0].offset_B);
        assert_eq!(l2.modifier, layout::DRM_FORMAT_MOD_QCOM_COMPRESSED);
        let mut flags = 0;
        assert_eq!(
            msmws_metadata_decode(
                buf.as_ptr(),
                buf.len() as u32,
                &id,
                l.size_B - 1,
                &mut d2,
                &mut l2,
                &mut flags
            ),
            -libc::ERANGE
        );
        assert_eq!(msmws_metadata_validate(&d, &l, l.size_B), 0);
        let mut lv = msmws_level_layout::default();
        assert_eq!(msmws_metadata_level(&d, &l, l.size_B, 0, 0, &mut lv), 0);
        assert_eq!(lv.offset_B, l.planes[0].offset_B);
        assert_eq!(
            msmws_metadata_level(&d, &l, l.size_B, 0, 1, &mut lv),
            -libc::EINVAL
        );
    }
}
