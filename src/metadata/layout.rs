//! The image layout model: what an Adreno a6xx/a7xx driver (turnip, freedreno's fdl6) places where
//! in a buffer for one image, and the bounds check an importer runs on a layout it was handed.
//!
//! Owns: the layout rules of docs/metadata.md ("Layout model"). Takes no locks.
//!
//! The rules follow fdl6's shape (pitch alignment by tile mode and bytes per pixel, tiled heights
//! aligned to 16 or 32 rows, UBWC metadata before the pixels, every UBWC level 4 KiB aligned,
//! array layers 4 KiB apart, one layout per plane of a multi-planar format) without being
//! bit-exact to it. Both sides of an export use [`expand`], so the exporter's layout and the one an
//! importer rebuilds from the record agree by construction; [`plan`] is the exporter's choice.
//!
//! All arithmetic on values from a record is checked: a hostile record yields an error, never a
//! wrapped offset or a layout reaching past the buffer.

use ash::vk;

use super::format::{self, FormatInfo, PlaneFormat};
use super::MetadataError;

/// `DRM_FORMAT_MOD_LINEAR`.
pub const DRM_FORMAT_MOD_LINEAR: u64 = 0;
const DRM_FORMAT_MOD_VENDOR_QCOM: u64 = 0x05 << 56;
/// `DRM_FORMAT_MOD_QCOM_COMPRESSED`: TILE6_3 with UBWC.
pub const DRM_FORMAT_MOD_QCOM_COMPRESSED: u64 = DRM_FORMAT_MOD_VENDOR_QCOM | 1;
/// `DRM_FORMAT_MOD_QCOM_TILED2`: TILE6_2, no UBWC.
pub const DRM_FORMAT_MOD_QCOM_TILED2: u64 = DRM_FORMAT_MOD_VENDOR_QCOM | 2;
/// `DRM_FORMAT_MOD_QCOM_TILED3`: TILE6_3, no UBWC.
pub const DRM_FORMAT_MOD_QCOM_TILED3: u64 = DRM_FORMAT_MOD_VENDOR_QCOM | 3;

/// Largest width or height the model accepts (Adreno's 16384-texel limit).
pub const MAX_DIMENSION: u32 = 16384;
/// Largest array layer count (turnip's `maxImageArrayLayers`).
pub const MAX_ARRAY_LAYERS: u32 = 2048;
/// UBWC levels, array layers and planes start on 4 KiB boundaries.
pub const PAGE_B: u64 = 4096;

/// `enum a6xx_tile_mode`, with the hardware's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TileMode {
    /// `TILE6_LINEAR`.
    Linear = 0,
    /// `TILE6_2`.
    Tile6_2 = 2,
    /// `TILE6_3`, the mode UBWC needs.
    Tile6_3 = 3,
}

impl TileMode {
    pub fn from_raw(raw: u8) -> Option<TileMode> {
        match raw {
            0 => Some(TileMode::Linear),
            2 => Some(TileMode::Tile6_2),
            3 => Some(TileMode::Tile6_3),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TileMode::Linear => "linear",
            TileMode::Tile6_2 => "tile6_2",
            TileMode::Tile6_3 => "tile6_3",
        }
    }
}

/// The DRM format modifier of a tile mode and UBWC choice, as turnip writes it today.
pub fn modifier_of(tile_mode: TileMode, ubwc: bool) -> u64 {
    match (tile_mode, ubwc) {
        (TileMode::Linear, _) => DRM_FORMAT_MOD_LINEAR,
        (TileMode::Tile6_2, _) => DRM_FORMAT_MOD_QCOM_TILED2,
        (TileMode::Tile6_3, false) => DRM_FORMAT_MOD_QCOM_TILED3,
        (TileMode::Tile6_3, true) => DRM_FORMAT_MOD_QCOM_COMPRESSED,
    }
}

/// The tile mode and UBWC flag a modifier stands for; `None` for modifiers not of this hardware.
pub fn from_modifier(modifier: u64) -> Option<(TileMode, bool)> {
    match modifier {
        DRM_FORMAT_MOD_LINEAR => Some((TileMode::Linear, false)),
        DRM_FORMAT_MOD_QCOM_TILED2 => Some((TileMode::Tile6_2, false)),
        DRM_FORMAT_MOD_QCOM_TILED3 => Some((TileMode::Tile6_3, false)),
        DRM_FORMAT_MOD_QCOM_COMPRESSED => Some((TileMode::Tile6_3, true)),
        _ => None,
    }
}

/// The `VkImageCreateFlags` that change an Adreno layout (or whether UBWC may be used), and so
/// travel in the record. Other bits (SPARSE_*) are refused by the encoder; the rest are not stored.
pub const LAYOUT_CREATE_FLAGS: vk::ImageCreateFlags = vk::ImageCreateFlags::from_raw(
    vk::ImageCreateFlags::MUTABLE_FORMAT.as_raw()
        | vk::ImageCreateFlags::CUBE_COMPATIBLE.as_raw()
        | vk::ImageCreateFlags::TYPE_2D_ARRAY_COMPATIBLE.as_raw()
        | vk::ImageCreateFlags::BLOCK_TEXEL_VIEW_COMPATIBLE.as_raw()
        | vk::ImageCreateFlags::EXTENDED_USAGE.as_raw()
        | vk::ImageCreateFlags::DISJOINT.as_raw()
        | vk::ImageCreateFlags::ALIAS.as_raw()
        | vk::ImageCreateFlags::PROTECTED.as_raw()
        | vk::ImageCreateFlags::SUBSAMPLED_EXT.as_raw()
        | vk::ImageCreateFlags::SAMPLE_LOCATIONS_COMPATIBLE_DEPTH_EXT.as_raw(),
);

/// Create flags the format cannot describe (sparse images have page-aligned mip tails).
pub const REFUSED_CREATE_FLAGS: vk::ImageCreateFlags = vk::ImageCreateFlags::from_raw(
    vk::ImageCreateFlags::SPARSE_BINDING.as_raw()
        | vk::ImageCreateFlags::SPARSE_RESIDENCY.as_raw()
        | vk::ImageCreateFlags::SPARSE_ALIASED.as_raw(),
);

/// The `VkImageUsageFlags` that change an Adreno layout or its UBWC choice. Transfer bits do not
/// and are not stored.
pub const LAYOUT_USAGE: vk::ImageUsageFlags = vk::ImageUsageFlags::from_raw(
    vk::ImageUsageFlags::SAMPLED.as_raw()
        | vk::ImageUsageFlags::STORAGE.as_raw()
        | vk::ImageUsageFlags::COLOR_ATTACHMENT.as_raw()
        | vk::ImageUsageFlags::DEPTH_STENCIL_ATTACHMENT.as_raw()
        | vk::ImageUsageFlags::INPUT_ATTACHMENT.as_raw()
        | vk::ImageUsageFlags::FRAGMENT_DENSITY_MAP_EXT.as_raw()
        | vk::ImageUsageFlags::HOST_TRANSFER_EXT.as_raw(),
);

/// What the importer never sees in EXT_external_objects: the exporter's `VkImageCreateInfo`,
/// restricted to what decides a 2D image's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageDesc {
    pub format: vk::Format,
    /// DRM fourcc of `format` (the table's value; 0 for formats without one).
    pub drm_fourcc: u32,
    /// `depth` must be 1: 3D images are not modelled (see docs/metadata.md).
    pub extent: vk::Extent3D,
    pub mip_levels: u32,
    pub array_layers: u32,
    pub samples: vk::SampleCountFlags,
    pub flags: vk::ImageCreateFlags,
    pub usage: vk::ImageUsageFlags,
}

impl ImageDesc {
    /// A single-level, single-layer, single-sample sampled 2D image of `format`; the fourcc comes
    /// from the format table (0 when the model does not know the format, which `check` refuses).
    pub fn new_2d(format: vk::Format, width: u32, height: u32) -> ImageDesc {
        ImageDesc {
            format,
            drm_fourcc: format::lookup(format).map_or(0, |f| f.drm_fourcc),
            extent: vk::Extent3D {
                width,
                height,
                depth: 1,
            },
            mip_levels: 1,
            array_layers: 1,
            samples: vk::SampleCountFlags::TYPE_1,
            flags: vk::ImageCreateFlags::empty(),
            usage: vk::ImageUsageFlags::SAMPLED,
        }
    }

    pub fn mips(mut self, mip_levels: u32) -> ImageDesc {
        self.mip_levels = mip_levels;
        self
    }

    pub fn layers(mut self, array_layers: u32) -> ImageDesc {
        self.array_layers = array_layers;
        self
    }

    pub fn samples(mut self, samples: vk::SampleCountFlags) -> ImageDesc {
        self.samples = samples;
        self
    }

    pub fn flags(mut self, flags: vk::ImageCreateFlags) -> ImageDesc {
        self.flags = flags;
        self
    }

    pub fn usage(mut self, usage: vk::ImageUsageFlags) -> ImageDesc {
        self.usage = usage;
        self
    }

    /// The sample count as a number (the flag's bit value: 1, 2, 4, 8).
    pub fn sample_count(&self) -> u32 {
        self.samples.as_raw()
    }

    /// The same image with only the flag and usage bits the record carries.
    pub fn masked(mut self) -> ImageDesc {
        self.flags &= LAYOUT_CREATE_FLAGS;
        self.usage &= LAYOUT_USAGE;
        self
    }

    /// Checks the description against the model's rules and returns its format's table entry.
    pub fn check(&self) -> Result<&'static FormatInfo, MetadataError> {
        let bad = |field, value: u64, why| Err(MetadataError::InvalidField { field, value, why });
        let Some(info) = format::lookup(self.format) else {
            return bad(
                "vk_format",
                self.format.as_raw() as u32 as u64,
                "not a format the layout model knows",
            );
        };
        if self.drm_fourcc != info.drm_fourcc {
            return bad(
                "drm_fourcc",
                self.drm_fourcc.into(),
                "not the fourcc of vk_format",
            );
        }
        let vk::Extent3D {
            width,
            height,
            depth,
        } = self.extent;
        if width == 0 || width > MAX_DIMENSION {
            return bad("width", width.into(), "not in 1..=16384");
        }
        if height == 0 || height > MAX_DIMENSION {
            return bad("height", height.into(), "not in 1..=16384");
        }
        if depth != 1 {
            return bad("depth", depth.into(), "3D images are not modelled");
        }
        if self.array_layers == 0 || self.array_layers > MAX_ARRAY_LAYERS {
            return bad("array_layers", self.array_layers.into(), "not in 1..=2048");
        }
        let samples = self.sample_count();
        if !matches!(samples, 1 | 2 | 4 | 8) || self.samples.as_raw().count_ones() != 1 {
            return bad("samples", samples.into(), "not 1, 2, 4 or 8");
        }
        let max_levels = 32 - width.max(height).leading_zeros();
        if self.mip_levels == 0 || self.mip_levels > max_levels {
            return bad(
                "mip_levels",
                self.mip_levels.into(),
                "zero or more than log2(max(width, height)) + 1",
            );
        }
        if samples > 1 && self.mip_levels > 1 {
            return bad(
                "mip_levels",
                self.mip_levels.into(),
                "multisampled images have one level",
            );
        }
        if info.planes.len() > 1 {
            if self.mip_levels > 1 || samples > 1 {
                return bad(
                    "mip_levels",
                    self.mip_levels.into(),
                    "multi-planar images have one level and one sample",
                );
            }
            let chroma = info.planes[1];
            if width % chroma.hsub != 0 || height % chroma.vsub != 0 {
                return bad(
                    "width",
                    width.into(),
                    "multi-planar extent not a multiple of the chroma subsampling",
                );
            }
        }
        if !(self.flags & !LAYOUT_CREATE_FLAGS).is_empty() {
            return bad(
                "create_flags",
                self.flags.as_raw().into(),
                "bits outside the layout-relevant set",
            );
        }
        if !(self.usage & !LAYOUT_USAGE).is_empty() {
            return bad(
                "usage",
                self.usage.as_raw().into(),
                "bits outside the layout-relevant set",
            );
        }
        if self.flags.contains(vk::ImageCreateFlags::CUBE_COMPATIBLE)
            && (width != height || self.array_layers < 6)
        {
            return bad(
                "create_flags",
                self.flags.as_raw().into(),
                "cube-compatible needs width == height and at least 6 layers",
            );
        }
        Ok(info)
    }
}

/// Where one plane starts and its level-0 pitches: what the record stores per plane. Everything
/// else about the plane follows from these, the [`ImageDesc`] and the tile mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PlaneParams {
    /// Byte offset in the buffer of level 0, layer 0 of the pixel data.
    pub offset_B: u64,
    /// Bytes from one row (of tiles, when tiled) of level 0 to the next.
    pub pitch_B: u64,
    /// Bytes from one array layer to the next (all levels of a layer are contiguous).
    pub layer_stride_B: u64,
    /// Byte offset in the buffer of the UBWC metadata of level 0, layer 0 (0 without UBWC).
    pub ubwc_offset_B: u64,
    /// Bytes per row of UBWC metadata blocks at level 0 (0 without UBWC).
    pub ubwc_pitch_B: u64,
}

/// One mip level of one plane, layer 0. Layer `i` is `i * layer_stride_B` further (pixels) and
/// `i * ubwc_layer_stride_B` further (UBWC metadata).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LevelLayout {
    pub offset_B: u64,
    pub pitch_B: u64,
    /// Bytes of this level in one layer (rows, aligned, times pitch).
    pub size_B: u64,
    pub width_px: u64,
    pub height_px: u64,
    pub ubwc_offset_B: u64,
    pub ubwc_pitch_B: u64,
    pub ubwc_size_B: u64,
    /// Width in UBWC blocks (the least `ubwc_pitch_B` that holds a row of them).
    pub ubwc_width_blocks: u64,
}

/// One plane, every level.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlaneLayout {
    pub params: PlaneParams,
    /// Bytes per pixel of this plane including samples.
    pub cpp_B: u32,
    /// Bytes of all levels of one layer.
    pub layer_size_B: u64,
    /// Bytes of the UBWC metadata of all levels of one layer (0 without UBWC).
    pub ubwc_layer_stride_B: u64,
    pub levels: Vec<LevelLayout>,
}

/// A whole image: tile mode, UBWC, and every level of every plane.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageLayout {
    pub modifier: u64,
    pub tile_mode: TileMode,
    pub ubwc: bool,
    pub array_layers: u32,
    pub planes: Vec<PlaneLayout>,
    /// One past the last byte any plane or UBWC metadata uses.
    pub size_B: u64,
}

impl ImageLayout {
    /// The record's per-plane values.
    pub fn params(&self) -> Vec<PlaneParams> {
        self.planes.iter().map(|p| p.params).collect()
    }

    /// The importer's bounds rule: every level's pitch holds a row, layers do not overlap, and the
    /// last byte of every plane and of its UBWC metadata is inside a buffer of `bo_size_B` bytes.
    pub fn check_fits(&self, bo_size_B: u64) -> Result<(), MetadataError> {
        let layers = u64::from(self.array_layers);
        for (i, p) in self.planes.iter().enumerate() {
            let ck = |v: Option<u64>, what| v.ok_or(MetadataError::Overflow { plane: i, what });
            for (l, lv) in p.levels.iter().enumerate() {
                let min_B = ck(lv.width_px.checked_mul(p.cpp_B.into()), "row size")?;
                if lv.pitch_B < min_B {
                    return Err(MetadataError::PitchTooSmall {
                        plane: i,
                        level: l as u32,
                        pitch_B: lv.pitch_B,
                        min_B,
                    });
                }
                if self.ubwc && lv.ubwc_pitch_B < lv.ubwc_width_blocks {
                    return Err(MetadataError::PitchTooSmall {
                        plane: i,
                        level: l as u32,
                        pitch_B: lv.ubwc_pitch_B,
                        min_B: lv.ubwc_width_blocks,
                    });
                }
            }
            if p.params.layer_stride_B < p.layer_size_B {
                return Err(MetadataError::InvalidField {
                    field: "layer_stride_B",
                    value: p.params.layer_stride_B,
                    why: "smaller than one layer, so layers would overlap",
                });
            }
            let last_layer_B = ck(
                (layers - 1).checked_mul(p.params.layer_stride_B),
                "layer offset",
            )?;
            let end_B = ck(
                p.params
                    .offset_B
                    .checked_add(last_layer_B)
                    .and_then(|v| v.checked_add(p.layer_size_B)),
                "pixel data end",
            )?;
            if end_B > bo_size_B {
                return Err(MetadataError::OutOfBounds {
                    plane: i,
                    what: "pixel data",
                    end_B,
                    bo_size_B,
                });
            }
            if self.ubwc {
                let meta_B = ck(layers.checked_mul(p.ubwc_layer_stride_B), "UBWC size")?;
                let end_B = ck(
                    p.params.ubwc_offset_B.checked_add(meta_B),
                    "UBWC metadata end",
                )?;
                if end_B > bo_size_B {
                    return Err(MetadataError::OutOfBounds {
                        plane: i,
                        what: "UBWC metadata",
                        end_B,
                        bo_size_B,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Pitch alignment in bytes: linear rows are 64 pixels apart at the least (of the next power of
/// two of `cpp_B`); tiled rows 128 bytes (1 byte per pixel), 256 (2) or 64 pixels (wider).
pub fn pitch_align_B(tile_mode: TileMode, cpp_B: u32) -> u64 {
    let pot = u64::from(cpp_B.next_power_of_two());
    match (tile_mode, cpp_B) {
        (TileMode::Linear, _) => 64 * pot,
        (_, 1) => 128,
        (_, 2) => 256,
        _ => 64 * pot,
    }
}

/// Row alignment of tiled levels: 32 rows at 1 byte per pixel, else 16; linear levels none.
fn height_align(tile_mode: TileMode, cpp_B: u32) -> u64 {
    match (tile_mode, cpp_B) {
        (TileMode::Linear, _) => 1,
        (_, 1) => 32,
        _ => 16,
    }
}

/// UBWC compression block (width, height) in pixels by bytes per pixel; `None`: no UBWC.
pub fn ubwc_block(cpp_B: u32) -> Option<(u64, u64)> {
    match cpp_B {
        1 | 2 | 4 => Some((16, 4)),
        8 => Some((8, 4)),
        16 => Some((4, 4)),
        32 => Some((4, 2)),
        _ => None,
    }
}

/// Smallest width with UBWC (fdl's FDL_MIN_UBWC_WIDTH).
pub const MIN_UBWC_WIDTH: u32 = 16;
/// UBWC metadata rows are a multiple of 64 bytes wide.
const UBWC_PITCH_ALIGN_B: u64 = 64;

/// Whether the exporter may compress this image: every plane has a UBWC block size, the image is
/// at least 16 wide, and nothing in its flags or usage lets it be viewed or written in a way UBWC
/// does not follow (mutable or block-texel views, storage, host copies).
pub fn ubwc_allowed(desc: &ImageDesc, info: &FormatInfo) -> bool {
    let samples = desc.sample_count();
    let no_ubwc_flags =
        vk::ImageCreateFlags::MUTABLE_FORMAT | vk::ImageCreateFlags::BLOCK_TEXEL_VIEW_COMPATIBLE;
    let no_ubwc_usage = vk::ImageUsageFlags::STORAGE | vk::ImageUsageFlags::HOST_TRANSFER_EXT;
    info.planes
        .iter()
        .all(|p| !p.ubwc || ubwc_block(p.cpp_B * samples).is_some())
        && desc.extent.width >= MIN_UBWC_WIDTH
        && !desc.flags.intersects(no_ubwc_flags)
        && !desc.usage.intersects(no_ubwc_usage)
}

fn align(v: u64, a: u64) -> Option<u64> {
    debug_assert!(a.is_power_of_two());
    v.checked_add(a - 1).map(|v| v & !(a - 1))
}

fn plane_extent(desc: &ImageDesc, p: &PlaneFormat) -> (u64, u64) {
    (
        u64::from(desc.extent.width.div_ceil(p.hsub)),
        u64::from(desc.extent.height.div_ceil(p.vsub)),
    )
}

/// The exporter's choice: the layout of `desc` when the driver wants `modifier` (LINEAR,
/// QCOM_TILED2, QCOM_TILED3 or QCOM_COMPRESSED).
///
/// Linear depth/stencil or multisampled images become TILE6_3 (the hardware has no linear form of
/// them); QCOM_COMPRESSED becomes TILE6_3 without UBWC where [`ubwc_allowed`] says no. Planes are
/// placed one after another, each on a 4 KiB boundary; a UBWC plane's metadata (all layers)
/// comes first, its pixels after.
pub fn plan(desc: &ImageDesc, modifier: u64) -> Result<ImageLayout, MetadataError> {
    let info = desc.check()?;
    let (mut tile_mode, want_ubwc) =
        from_modifier(modifier).ok_or(MetadataError::InvalidField {
            field: "modifier",
            value: modifier,
            why: "not LINEAR, QCOM_TILED2, QCOM_TILED3 or QCOM_COMPRESSED",
        })?;
    let samples = desc.sample_count();
    if tile_mode == TileMode::Linear && (info.depth_stencil || samples > 1) {
        tile_mode = TileMode::Tile6_3;
    }
    let ubwc = want_ubwc && ubwc_allowed(desc, info);
    let layers = u64::from(desc.array_layers);
    let mut params = Vec::with_capacity(info.planes.len());
    let mut next_B = 0u64;
    for (i, pf) in info.planes.iter().enumerate() {
        let ov = |what| MetadataError::Overflow { plane: i, what };
        let cpp_B = pf.cpp_B * samples;
        let (width, _) = plane_extent(desc, pf);
        let pitch_B =
            align(width * u64::from(cpp_B), pitch_align_B(tile_mode, cpp_B)).ok_or(ov("pitch"))?;
        let ubwc = ubwc && pf.ubwc;
        let ubwc_pitch_B = if ubwc {
            let (bw, _) = ubwc_block(cpp_B).expect("ubwc_allowed checked the block size");
            let w0 = if desc.mip_levels > 1 {
                width.next_power_of_two()
            } else {
                width
            };
            align(w0.div_ceil(bw), UBWC_PITCH_ALIGN_B).ok_or(ov("UBWC pitch"))?
        } else {
            0
        };
        let geo = geometry(desc, pf, tile_mode, ubwc, pitch_B, ubwc_pitch_B, i)?;
        let ubwc_offset_B = if ubwc { next_B } else { 0 };
        let meta_B = layers
            .checked_mul(geo.ubwc_layer_size_B)
            .ok_or(ov("UBWC size"))?;
        let offset_B = next_B.checked_add(meta_B).ok_or(ov("plane offset"))?;
        let layer_stride_B = align(geo.layer_size_B, PAGE_B).ok_or(ov("layer stride"))?;
        let end_B = layers
            .checked_mul(layer_stride_B)
            .and_then(|s| s.checked_add(offset_B))
            .ok_or(ov("plane end"))?;
        next_B = align(end_B, PAGE_B).ok_or(ov("plane end"))?;
        params.push(PlaneParams {
            offset_B,
            pitch_B,
            layer_stride_B,
            ubwc_offset_B,
            ubwc_pitch_B,
        });
    }
    expand(desc, tile_mode, ubwc, &params)
}

/// Levels of one plane relative to its layer start, from the level-0 pitches.
struct Geometry {
    levels: Vec<LevelLayout>,
    layer_size_B: u64,
    ubwc_layer_size_B: u64,
}

fn geometry(
    desc: &ImageDesc,
    pf: &PlaneFormat,
    tile_mode: TileMode,
    ubwc: bool,
    pitch0_B: u64,
    ubwc_pitch0_B: u64,
    plane: usize,
) -> Result<Geometry, MetadataError> {
    let ov = |what| MetadataError::Overflow { plane, what };
    let cpp_B = pf.cpp_B * desc.sample_count();
    let (width, height) = plane_extent(desc, pf);
    let pa = pitch_align_B(tile_mode, cpp_B);
    let ha = height_align(tile_mode, cpp_B);
    let mips = desc.mip_levels;
    // UBWC metadata of a mipmapped image is laid out for power-of-two sizes, 64 rows aligned.
    let (ubwc_w0, ubwc_h0, ubwc_ha) = if mips > 1 {
        (width.next_power_of_two(), height.next_power_of_two(), 64)
    } else {
        (width, height, 16)
    };
    let block = if ubwc { ubwc_block(cpp_B) } else { None };
    if ubwc && block.is_none() {
        return Err(MetadataError::InvalidField {
            field: "ubwc_flags",
            value: 1,
            why: "UBWC on a format whose bytes per pixel have no UBWC block",
        });
    }
    let mut levels = Vec::with_capacity(mips as usize);
    let mut offset_B = 0u64;
    let mut ubwc_offset_B = 0u64;
    for l in 0..mips {
        // `l` < 15: check() bounds mip_levels by log2 of a 16384 extent.
        let width_px = (width >> l).max(1);
        let height_px = (height >> l).max(1);
        let pitch_B = if l == 0 {
            pitch0_B
        } else {
            align((pitch0_B >> l).max(1), pa).ok_or(ov("level pitch"))?
        };
        let mut rows = align(height_px, ha).ok_or(ov("level rows"))?;
        if l == mips - 1 {
            // The 16x4 blits may over-fetch the last level: keep 4 rows of slack.
            rows = align(rows, 4).ok_or(ov("level rows"))?;
        }
        let size_B = rows.checked_mul(pitch_B).ok_or(ov("level size"))?;
        let mut lv = LevelLayout {
            offset_B,
            pitch_B,
            size_B,
            width_px,
            height_px,
            ..LevelLayout::default()
        };
        offset_B = offset_B.checked_add(size_B).ok_or(ov("level offset"))?;
        if let Some((bw, bh)) = block {
            offset_B = align(offset_B, PAGE_B).ok_or(ov("level offset"))?;
            let ubwc_pitch_B = if l == 0 {
                ubwc_pitch0_B
            } else {
                align((ubwc_pitch0_B >> l).max(1), UBWC_PITCH_ALIGN_B).ok_or(ov("UBWC pitch"))?
            };
            let rows0 = align(ubwc_h0.div_ceil(bh), ubwc_ha).ok_or(ov("UBWC rows"))?;
            let rows = align((rows0 >> l).max(1), ubwc_ha).ok_or(ov("UBWC rows"))?;
            let ubwc_size_B = rows
                .checked_mul(ubwc_pitch_B)
                .and_then(|s| align(s, PAGE_B))
                .ok_or(ov("UBWC level size"))?;
            lv.ubwc_offset_B = ubwc_offset_B;
            lv.ubwc_pitch_B = ubwc_pitch_B;
            lv.ubwc_size_B = ubwc_size_B;
            lv.ubwc_width_blocks = (ubwc_w0 >> l).max(1).div_ceil(bw);
            ubwc_offset_B = ubwc_offset_B
                .checked_add(ubwc_size_B)
                .ok_or(ov("UBWC offset"))?;
        }
        levels.push(lv);
    }
    Ok(Geometry {
        levels,
        layer_size_B: offset_B,
        ubwc_layer_size_B: ubwc_offset_B,
    })
}

/// The full layout from the per-plane values a record carries. Used by the exporter (after
/// [`plan`]) and by the importer (after decoding), so both get the same levels. Checks that the
/// description is valid and the tile mode possible, but not the buffer bounds: call
/// [`ImageLayout::check_fits`] (or [`validate`]) for that.
pub fn expand(
    desc: &ImageDesc,
    tile_mode: TileMode,
    ubwc: bool,
    params: &[PlaneParams],
) -> Result<ImageLayout, MetadataError> {
    let info = desc.check()?;
    if params.len() != info.planes.len() {
        return Err(MetadataError::InvalidField {
            field: "plane_count",
            value: params.len() as u64,
            why: "not the plane count of vk_format",
        });
    }
    if ubwc && tile_mode != TileMode::Tile6_3 {
        return Err(MetadataError::InvalidField {
            field: "ubwc_flags",
            value: 1,
            why: "UBWC needs tile mode TILE6_3",
        });
    }
    if tile_mode == TileMode::Linear && (info.depth_stencil || desc.sample_count() > 1) {
        return Err(MetadataError::InvalidField {
            field: "tile_mode",
            value: 0,
            why: "depth/stencil and multisampled images cannot be linear",
        });
    }
    let layers = u64::from(desc.array_layers);
    let mut planes = Vec::with_capacity(params.len());
    let mut size_B = 0u64;
    for (i, (pf, pp)) in info.planes.iter().zip(params).enumerate() {
        let ov = |what| MetadataError::Overflow { plane: i, what };
        if ubwc && !pf.ubwc {
            let stray = [
                ("ubwc_offset_B", pp.ubwc_offset_B),
                ("ubwc_pitch_B", pp.ubwc_pitch_B),
            ];
            if let Some(&(field, value)) = stray.iter().find(|(_, v)| *v != 0) {
                return Err(MetadataError::InvalidField {
                    field,
                    value,
                    why: "UBWC values on a plane that is never compressed",
                });
            }
        }
        let ubwc = ubwc && pf.ubwc;
        let (ubwc_offset_B, ubwc_pitch_B) = if ubwc {
            (pp.ubwc_offset_B, pp.ubwc_pitch_B)
        } else {
            (0, 0)
        };
        let geo = geometry(desc, pf, tile_mode, ubwc, pp.pitch_B, ubwc_pitch_B, i)?;
        let mut levels = geo.levels;
        for lv in &mut levels {
            lv.offset_B = lv
                .offset_B
                .checked_add(pp.offset_B)
                .ok_or(ov("level offset"))?;
            if ubwc {
                lv.ubwc_offset_B = lv
                    .ubwc_offset_B
                    .checked_add(ubwc_offset_B)
                    .ok_or(ov("UBWC level offset"))?;
            }
        }
        let pixel_end_B = (layers - 1)
            .checked_mul(pp.layer_stride_B)
            .and_then(|v| v.checked_add(pp.offset_B))
            .and_then(|v| v.checked_add(geo.layer_size_B))
            .ok_or(ov("pixel data end"))?;
        let meta_end_B = layers
            .checked_mul(geo.ubwc_layer_size_B)
            .and_then(|v| v.checked_add(ubwc_offset_B))
            .ok_or(ov("UBWC metadata end"))?;
        size_B = size_B.max(pixel_end_B).max(meta_end_B);
        planes.push(PlaneLayout {
            params: PlaneParams {
                ubwc_offset_B,
                ubwc_pitch_B,
                ..*pp
            },
            cpp_B: pf.cpp_B * desc.sample_count(),
            layer_size_B: geo.layer_size_B,
            ubwc_layer_stride_B: geo.ubwc_layer_size_B,
            levels,
        });
    }
    Ok(ImageLayout {
        modifier: modifier_of(tile_mode, ubwc),
        tile_mode,
        ubwc,
        array_layers: desc.array_layers,
        planes,
        size_B,
    })
}

/// [`expand`] then [`ImageLayout::check_fits`]: the layout, only if it stays inside `bo_size_B`.
pub fn validate(
    desc: &ImageDesc,
    tile_mode: TileMode,
    ubwc: bool,
    params: &[PlaneParams],
    bo_size_B: u64,
) -> Result<ImageLayout, MetadataError> {
    let layout = expand(desc, tile_mode, ubwc, params)?;
    layout.check_fits(bo_size_B)?;
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_rgba_pitch_is_64_pixels_aligned() {
        let d = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 100, 10);
        let l = plan(&d, DRM_FORMAT_MOD_LINEAR).unwrap();
        assert_eq!(l.planes[0].params.pitch_B, 128 * 4);
        // 10 rows, the last level padded to 12.
        assert_eq!(l.planes[0].layer_size_B, 12 * 512);
        assert_eq!(l.size_B, 12 * 512);
        assert_eq!(l.planes[0].params.layer_stride_B, 8192);
        l.check_fits(l.size_B).unwrap();
    }

    #[test]
    fn ubwc_metadata_comes_first_and_is_page_aligned() {
        let d = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 256, 256);
        let l = plan(&d, DRM_FORMAT_MOD_QCOM_COMPRESSED).unwrap();
        assert!(l.ubwc);
        let p = &l.planes[0];
        assert_eq!(p.params.ubwc_offset_B, 0);
        // 256/16 = 16 blocks -> 64-byte pitch; 256/4 = 64 rows; 4 KiB.
        assert_eq!(p.params.ubwc_pitch_B, 64);
        assert_eq!(p.ubwc_layer_stride_B, 4096);
        assert_eq!(p.params.offset_B, 4096);
    }

    /// turnip's D32S8 at 160x160 (`TU_DEBUG=layout`): a UBWC Z32_FLOAT plane (metadata at 0,
    /// pixels at 0x1000, pitch 768) and an S8 plane never compressed, on the next 4 KiB (pitch
    /// 256, 40960 bytes).
    #[test]
    fn d32s8_stencil_plane_is_never_compressed() {
        let d = ImageDesc::new_2d(vk::Format::D32_SFLOAT_S8_UINT, 160, 160)
            .usage(vk::ImageUsageFlags::DEPTH_STENCIL_ATTACHMENT);
        let l = plan(&d, DRM_FORMAT_MOD_QCOM_COMPRESSED).unwrap();
        assert!(l.ubwc);
        let (z, s) = (&l.planes[0].params, &l.planes[1].params);
        assert_eq!(
            (z.offset_B, z.pitch_B, z.ubwc_offset_B, z.ubwc_pitch_B),
            (4096, 768, 0, 64)
        );
        assert_eq!(z.layer_stride_B, 122880);
        assert_eq!(
            (s.offset_B, s.pitch_B, s.ubwc_offset_B, s.ubwc_pitch_B),
            (126976, 256, 0, 0)
        );
        assert_eq!(s.layer_stride_B, 40960);
        assert_eq!(l.planes[1].ubwc_layer_stride_B, 0);
        l.check_fits(l.size_B).unwrap();

        // UBWC values on the stencil plane are not the image's layout.
        let mut params = l.params();
        params[1].ubwc_pitch_B = 64;
        let e = expand(&d, l.tile_mode, true, &params).unwrap_err();
        assert!(matches!(
            e,
            MetadataError::InvalidField {
                field: "ubwc_pitch_B",
                value: 64,
                ..
            }
        ));
    }

    #[test]
    fn mutable_format_disables_ubwc() {
        let d = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 256, 256)
            .flags(vk::ImageCreateFlags::MUTABLE_FORMAT);
        let l = plan(&d, DRM_FORMAT_MOD_QCOM_COMPRESSED).unwrap();
        assert!(!l.ubwc);
        assert_eq!(l.modifier, DRM_FORMAT_MOD_QCOM_TILED3);
    }
}
