//! The formats the layout model knows: bytes per pixel and subsampling of each plane, and the
//! DRM fourcc that stands for the same memory layout.
//!
//! Owns: a constant table. Takes no locks.
//!
//! An importer can only check "pitch at least width x bytes per pixel" for a format it knows, so a
//! record naming any other VkFormat is refused (`InvalidField`), never guessed at.

use ash::vk;

/// One plane of a format: bytes per texel block and the chroma subsampling divisors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneFormat {
    /// Bytes per pixel of one sample (the layout multiplies by the sample count).
    pub cpp_B: u32,
    /// Horizontal divisor: the plane is `ceil(width / hsub)` pixels wide.
    pub hsub: u32,
    /// Vertical divisor: the plane is `ceil(height / vsub)` rows high.
    pub vsub: u32,
    /// Whether the plane is compressed when the image is UBWC: the separate stencil plane of
    /// D32S8 never is (turnip's `tu_image_init`), whatever the image's flag says.
    pub ubwc: bool,
}

/// A format the layout model knows.
#[derive(Debug, Clone, Copy)]
pub struct FormatInfo {
    pub format: vk::Format,
    /// The DRM fourcc of the same layout (`drm_fourcc.h`), or 0 when there is none (depth formats,
    /// 32-bit float colour).
    pub drm_fourcc: u32,
    pub planes: &'static [PlaneFormat],
    /// Depth/stencil: the hardware has no linear depth, so a linear request becomes TILE6_3.
    pub depth_stencil: bool,
}

const fn fourcc(code: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*code)
}

const fn one(cpp_B: u32) -> PlaneFormat {
    sub(cpp_B, 1, 1)
}

const fn sub(cpp_B: u32, hsub: u32, vsub: u32) -> PlaneFormat {
    PlaneFormat {
        cpp_B,
        hsub,
        vsub,
        ubwc: true,
    }
}

/// The S8 plane of a separate-stencil depth format: never UBWC.
const fn separate_stencil() -> PlaneFormat {
    PlaneFormat {
        ubwc: false,
        ..one(1)
    }
}

macro_rules! fmt {
    ($f:ident, $cc:expr, [$($p:expr),+]) => {
        FormatInfo { format: vk::Format::$f, drm_fourcc: $cc, planes: &[$($p),+], depth_stencil: false }
    };
    ($f:ident, $cc:expr, [$($p:expr),+], ds) => {
        FormatInfo { format: vk::Format::$f, drm_fourcc: $cc, planes: &[$($p),+], depth_stencil: true }
    };
}

/// Every format the layout model knows.
pub static FORMATS: &[FormatInfo] = &[
    fmt!(R8_UNORM, fourcc(b"R8  "), [one(1)]),
    fmt!(R8G8_UNORM, fourcc(b"GR88"), [one(2)]),
    fmt!(R16_UNORM, fourcc(b"R16 "), [one(2)]),
    fmt!(R5G6B5_UNORM_PACK16, fourcc(b"RG16"), [one(2)]),
    fmt!(R8G8B8_UNORM, fourcc(b"BG24"), [one(3)]),
    fmt!(R8G8B8A8_UNORM, fourcc(b"AB24"), [one(4)]),
    fmt!(R8G8B8A8_SRGB, fourcc(b"AB24"), [one(4)]),
    // No DRM fourcc is signed; turnip compresses it where the hardware's UBWC treats SNORM and
    // UNORM alike (a7xx), so GL must learn that from the record, not from its own rules.
    fmt!(R8G8B8A8_SNORM, 0, [one(4)]),
    fmt!(B8G8R8A8_UNORM, fourcc(b"AR24"), [one(4)]),
    fmt!(B8G8R8A8_SRGB, fourcc(b"AR24"), [one(4)]),
    fmt!(A2B10G10R10_UNORM_PACK32, fourcc(b"AB30"), [one(4)]),
    fmt!(A2R10G10B10_UNORM_PACK32, fourcc(b"AR30"), [one(4)]),
    fmt!(R32_SFLOAT, 0, [one(4)]),
    fmt!(R16G16B16A16_SFLOAT, fourcc(b"AB4H"), [one(8)]),
    fmt!(R32G32B32A32_SFLOAT, 0, [one(16)]),
    fmt!(D16_UNORM, 0, [one(2)], ds),
    fmt!(D24_UNORM_S8_UINT, 0, [one(4)], ds),
    fmt!(D32_SFLOAT, 0, [one(4)], ds),
    // Two planes, as turnip stores it: Z32_FLOAT (UBWC when the image is), then S8 (never).
    fmt!(D32_SFLOAT_S8_UINT, 0, [one(4), separate_stencil()], ds),
    // Multi-planar YUV: luma plane, then chroma plane(s), as NV12/P010/YU12/NV16 lay them out.
    fmt!(
        G8_B8R8_2PLANE_420_UNORM,
        fourcc(b"NV12"),
        [one(1), sub(2, 2, 2)]
    ),
    fmt!(
        G8_B8R8_2PLANE_422_UNORM,
        fourcc(b"NV16"),
        [one(1), sub(2, 2, 1)]
    ),
    fmt!(
        G10X6_B10X6R10X6_2PLANE_420_UNORM_3PACK16,
        fourcc(b"P010"),
        [one(2), sub(4, 2, 2)]
    ),
    fmt!(
        G8_B8_R8_3PLANE_420_UNORM,
        fourcc(b"YU12"),
        [one(1), sub(1, 2, 2), sub(1, 2, 2)]
    ),
];

/// The table entry of `format`, if the model knows it.
pub fn lookup(format: vk::Format) -> Option<&'static FormatInfo> {
    FORMATS.iter().find(|f| f.format == format)
}

/// The table entry of a raw `VkFormat` number from a record.
pub fn lookup_raw(raw: u32) -> Option<&'static FormatInfo> {
    i32::try_from(raw)
        .ok()
        .and_then(|r| lookup(vk::Format::from_raw(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourccs_read_as_drm_fourcc_h_spells_them() {
        // DRM_FORMAT_NV12 = fourcc_code('N', 'V', '1', '2') = 0x3231564e.
        assert_eq!(
            lookup(vk::Format::G8_B8R8_2PLANE_420_UNORM)
                .unwrap()
                .drm_fourcc,
            0x3231_564e
        );
        // DRM_FORMAT_ABGR8888 = fourcc_code('A', 'B', '2', '4') = 0x34324241.
        assert_eq!(
            lookup(vk::Format::R8G8B8A8_UNORM).unwrap().drm_fourcc,
            0x3432_4241
        );
        assert!(lookup(vk::Format::BC1_RGB_UNORM_BLOCK).is_none());
        assert!(lookup_raw(u32::MAX).is_none());
    }
}
