//! The importer's validation rules of docs/metadata.md, one test per rule, plus the exporter's.
//! Field offsets are written out here as docs/metadata.md gives them, so the tests pin the format.

use ash::vk;
use msm_winsys::metadata::layout::{
    self, DRM_FORMAT_MOD_LINEAR, DRM_FORMAT_MOD_QCOM_COMPRESSED, DRM_FORMAT_MOD_QCOM_TILED3,
};
use msm_winsys::metadata::{
    decode, encode, freedreno_modifier, plan, reseal, Identity, ImageDesc, ImageLayout, Imported,
    MetadataError, TileMode, V1_SIZE_B,
};

const US: Identity = Identity {
    chip_id: 0x4305_0a01,
    driver_id: 0x1234_5678_9abc_def0,
};

fn errno(e: &MetadataError) -> i32 {
    e.errno_of().0
}

fn rgba(width: u32, height: u32) -> ImageDesc {
    ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, width, height)
}

/// A valid record of a 256x256 UBWC image, its layout and the exact buffer size.
fn ubwc_record() -> (Vec<u8>, ImageLayout) {
    let d = rgba(256, 256).layers(2);
    let l = plan(&d, DRM_FORMAT_MOD_QCOM_COMPRESSED).unwrap();
    assert!(l.ubwc);
    (encode(&US, &d, &l).unwrap().as_bytes().to_vec(), l)
}

fn linear_record() -> (Vec<u8>, ImageLayout) {
    let d = rgba(100, 64);
    let l = plan(&d, DRM_FORMAT_MOD_LINEAR).unwrap();
    (encode(&US, &d, &l).unwrap().as_bytes().to_vec(), l)
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Edits a record the way a hostile writer would: change bytes, then fix the checksum.
fn hostile(mut b: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&mut b);
    reseal(&mut b);
    b
}

fn err(b: &[u8], bo_size_B: u64) -> MetadataError {
    decode(b, &US, bo_size_B).expect_err("decode accepted a record it must refuse")
}

#[test]
fn valid_record_round_trips_to_the_same_layout() {
    let (b, l) = ubwc_record();
    assert_eq!(b.len(), V1_SIZE_B);
    match decode(&b, &US, l.size_B).unwrap() {
        Imported::Image(i) => {
            assert_eq!(i.layout, l);
            assert!(!i.newer_version());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn length_zero_is_no_metadata_enodata() {
    let e = err(&[], 1 << 20);
    assert_eq!(e, MetadataError::NoMetadata);
    assert_eq!(errno(&e), libc::ENODATA);
}

#[test]
fn longer_than_128_bytes_is_e2big() {
    let e = err(&[0u8; 129], 1 << 20);
    assert!(matches!(e, MetadataError::TooLong { len_B: 129 }));
    assert_eq!(errno(&e), libc::E2BIG);
}

#[test]
fn legacy_8_byte_modifier_is_accepted_and_flagged_legacy() {
    for m in [DRM_FORMAT_MOD_LINEAR, DRM_FORMAT_MOD_QCOM_COMPRESSED] {
        let got = decode(&m.to_le_bytes(), &US, 4096).unwrap();
        assert_eq!(got, Imported::Legacy { modifier: m });
        assert_eq!(got.modifier(), m);
    }
}

#[test]
fn legacy_8_byte_foreign_modifier_is_einval() {
    let e = err(&0x0100_0000_0000_0001u64.to_le_bytes(), 4096);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "modifier",
            ..
        }
    ));
    assert_eq!(errno(&e), libc::EINVAL);
}

#[test]
fn shorter_than_a_header_is_emsgsize() {
    for len in [1, 7, 9, 19] {
        let e = err(&vec![0u8; len], 4096);
        assert!(
            matches!(e, MetadataError::SizeMismatch { .. }),
            "{len}: {e}"
        );
        assert_eq!(errno(&e), libc::EMSGSIZE);
    }
}

#[test]
fn truncated_record_is_emsgsize() {
    let (b, l) = ubwc_record();
    let e = err(&b[..64], l.size_B);
    assert_eq!(
        e,
        MetadataError::SizeMismatch {
            len_B: 64,
            expected_B: V1_SIZE_B
        }
    );
    assert_eq!(errno(&e), libc::EMSGSIZE);
}

#[test]
fn version_1_of_another_size_is_emsgsize() {
    let (b, l) = ubwc_record();
    let b = hostile(b, |b| {
        b.resize(128, 0);
        put_u16(b, 14, 128);
    });
    let e = err(&b, l.size_B);
    assert!(matches!(
        e,
        MetadataError::SizeMismatch {
            len_B: 128,
            expected_B: 124
        }
    ));
}

#[test]
fn foreign_bytes_without_magic_are_enomsg() {
    let (b, l) = ubwc_record();
    let b = hostile(b, |b| put_u32(b, 8, u32::from_le_bytes(*b"XXXX")));
    let e = err(&b, l.size_B);
    assert!(matches!(e, MetadataError::BadMagic { .. }));
    assert_eq!(errno(&e), libc::ENOMSG);
}

#[test]
fn version_0_is_eprotonosupport() {
    let (b, l) = ubwc_record();
    let e = err(&hostile(b, |b| put_u16(b, 12, 0)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::UnsupportedVersion { version: 0, .. }
    ));
    assert_eq!(errno(&e), libc::EPROTONOSUPPORT);
}

#[test]
fn newer_version_holding_the_v1_fields_is_accepted_and_flagged() {
    let (b, l) = ubwc_record();
    // Version 2 appends 4 bytes and sets a flag bit version 1 does not know.
    let b = hostile(b, |b| {
        put_u16(b, 12, 2);
        put_u16(b, 14, 128);
        b[59] |= 0x80;
        b.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    });
    match decode(&b, &US, l.size_B).unwrap() {
        Imported::Image(i) => {
            assert_eq!(i.version, 2);
            assert!(i.newer_version());
            assert_eq!(i.layout, l);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn newer_version_shorter_than_v1_is_eprotonosupport() {
    let (b, l) = ubwc_record();
    let b = hostile(b[..64].to_vec(), |b| {
        put_u16(b, 12, 2);
        put_u16(b, 14, 64);
    });
    let e = err(&b, l.size_B);
    assert!(matches!(
        e,
        MetadataError::UnsupportedVersion {
            version: 2,
            size_B: 64
        }
    ));
    assert_eq!(errno(&e), libc::EPROTONOSUPPORT);
}

#[test]
fn bad_checksum_is_ebadmsg() {
    let (mut b, l) = ubwc_record();
    b[44] ^= 1; // width, without resealing
    let e = err(&b, l.size_B);
    assert!(matches!(e, MetadataError::BadChecksum { .. }));
    assert_eq!(errno(&e), libc::EBADMSG);
}

#[test]
fn other_gpu_is_device_mismatch_exdev() {
    let (b, l) = ubwc_record();
    let them = Identity {
        chip_id: 0x0606_0001,
        ..US
    };
    let e = decode(&b, &them, l.size_B).unwrap_err();
    assert!(matches!(e, MetadataError::DeviceMismatch { .. }));
    assert_eq!(errno(&e), libc::EXDEV);
}

#[test]
fn other_driver_build_is_driver_mismatch_eproto() {
    let (b, l) = ubwc_record();
    let them = Identity { driver_id: 1, ..US };
    let e = decode(&b, &them, l.size_B).unwrap_err();
    assert!(matches!(e, MetadataError::DriverMismatch { .. }));
    assert_eq!(errno(&e), libc::EPROTO);
}

#[test]
fn unknown_vk_format_is_einval() {
    let (b, l) = ubwc_record();
    let bc1 = vk::Format::BC1_RGB_UNORM_BLOCK.as_raw() as u32;
    let e = err(&hostile(b, |b| put_u32(b, 20, bc1)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "vk_format",
            ..
        }
    ));
    assert_eq!(errno(&e), libc::EINVAL);
}

#[test]
fn fourcc_not_of_the_format_is_einval() {
    let (b, l) = ubwc_record();
    let e = err(&hostile(b, |b| put_u32(b, 40, 0x3231_564e)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "drm_fourcc",
            ..
        }
    ));
}

#[test]
fn zero_or_huge_extent_is_einval() {
    let (b, l) = ubwc_record();
    let e = err(&hostile(b.clone(), |b| put_u32(b, 44, 0)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField { field: "width", .. }
    ));
    let e = err(&hostile(b, |b| put_u32(b, 48, u32::MAX)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "height",
            ..
        }
    ));
}

#[test]
fn more_mip_levels_than_the_extent_allows_is_einval() {
    let (b, l) = ubwc_record();
    // 256x256 has 9 levels at most; 255 would shift widths past 64 bits if not refused.
    let e = err(&hostile(b, |b| b[56] = 255), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "mip_levels",
            ..
        }
    ));
}

#[test]
fn unknown_tile_mode_is_einval() {
    let (b, l) = ubwc_record();
    let e = err(&hostile(b, |b| b[58] = 1), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "tile_mode",
            ..
        }
    ));
}

#[test]
fn reserved_bits_set_in_version_1_are_einval() {
    let (b, l) = ubwc_record();
    let e = err(&hostile(b.clone(), |b| b[59] |= 0x80), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "ubwc_flags",
            ..
        }
    ));
    let e = err(&hostile(b.clone(), |b| b[123] = 1), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "reserved",
            ..
        }
    ));
    let e = err(&hostile(b, |b| put_u32(b, 60, 1 << 30)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "create_flags",
            ..
        }
    ));
}

#[test]
fn values_in_a_plane_the_format_lacks_are_einval() {
    let (b, l) = ubwc_record();
    let e = err(&hostile(b.clone(), |b| put_u32(b, 84 + 4, 64)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "planes",
            ..
        }
    ));
    let e = err(&hostile(b, |b| b[122] = 2), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "plane_count",
            ..
        }
    ));
}

#[test]
fn modifier_disagreeing_with_tile_mode_is_eilseq() {
    // Bytes 0..8 say LINEAR while the record says TILE6_3 + UBWC: freedreno would read linear.
    let (b, l) = ubwc_record();
    let b = hostile(b, |b| {
        b[..8].copy_from_slice(&DRM_FORMAT_MOD_LINEAR.to_le_bytes())
    });
    let e = err(&b, l.size_B);
    assert!(matches!(
        e,
        MetadataError::ModifierMismatch {
            tile_mode: 3,
            ubwc: true,
            ..
        }
    ));
    assert_eq!(errno(&e), libc::EILSEQ);
}

#[test]
fn pitch_smaller_than_width_times_bytes_per_pixel_is_edom() {
    let (b, l) = linear_record();
    // 100 pixels x 4 bytes = 400 > 256.
    let e = err(&hostile(b, |b| put_u32(b, 68 + 4, 256)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::PitchTooSmall {
            plane: 0,
            level: 0,
            pitch_B: 256,
            min_B: 400
        }
    ));
    assert_eq!(errno(&e), libc::EDOM);
}

#[test]
fn ubwc_pitch_smaller_than_a_row_of_blocks_is_edom() {
    let (b, l) = ubwc_record();
    // 256 pixels / 16 per block = 16 blocks per row.
    let e = err(&hostile(b, |b| put_u16(b, 116, 8)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::PitchTooSmall {
            pitch_B: 8,
            min_B: 16,
            ..
        }
    ));
}

#[test]
fn plane_past_the_end_of_the_buffer_is_erange() {
    let (b, l) = linear_record();
    let e = err(&b, l.size_B - 1);
    assert!(matches!(
        e,
        MetadataError::OutOfBounds {
            what: "pixel data",
            ..
        }
    ));
    assert_eq!(errno(&e), libc::ERANGE);
    // A hostile offset that puts the plane past the buffer.
    let e = err(&hostile(b, |b| put_u32(b, 68, u32::MAX - 4095)), l.size_B);
    assert!(matches!(e, MetadataError::OutOfBounds { .. }));
}

#[test]
fn last_layer_past_the_end_is_erange() {
    let (b, l) = ubwc_record();
    let stride = l.planes[0].params.layer_stride_B as u32;
    let e = err(&hostile(b, |b| put_u32(b, 68 + 8, stride * 2)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::OutOfBounds {
            what: "pixel data",
            ..
        }
    ));
}

#[test]
fn ubwc_metadata_past_the_end_is_erange() {
    let (b, l) = ubwc_record();
    let e = err(
        &hostile(b, |b| put_u32(b, 68 + 12, l.size_B as u32)),
        l.size_B,
    );
    assert!(matches!(
        e,
        MetadataError::OutOfBounds {
            what: "UBWC metadata",
            ..
        }
    ));
}

#[test]
fn layer_stride_smaller_than_a_layer_is_einval() {
    let (b, l) = ubwc_record();
    let e = err(&hostile(b, |b| put_u32(b, 68 + 8, 4096)), l.size_B);
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "layer_stride_B",
            ..
        }
    ));
}

#[test]
fn offsets_near_2_pow_64_are_eoverflow_not_a_wrapped_layout() {
    let d = rgba(64, 64).layers(4);
    let l = plan(&d, DRM_FORMAT_MOD_QCOM_TILED3).unwrap();
    let mut p = l.params();
    p[0].offset_B = u64::MAX - 100;
    let e = layout::validate(&d, TileMode::Tile6_3, false, &p, u64::MAX).unwrap_err();
    assert!(matches!(e, MetadataError::Overflow { .. }), "{e}");
    assert_eq!(errno(&e), libc::EOVERFLOW);
    let mut p = l.params();
    p[0].layer_stride_B = u64::MAX / 2;
    let e = layout::validate(&d, TileMode::Tile6_3, false, &p, u64::MAX).unwrap_err();
    assert!(matches!(e, MetadataError::Overflow { .. }), "{e}");
}

#[test]
fn freedreno_today_reads_the_right_modifier_from_every_record() {
    for m in [
        DRM_FORMAT_MOD_LINEAR,
        layout::DRM_FORMAT_MOD_QCOM_TILED2,
        DRM_FORMAT_MOD_QCOM_TILED3,
        DRM_FORMAT_MOD_QCOM_COMPRESSED,
    ] {
        let d = rgba(128, 128);
        let l = plan(&d, m).unwrap();
        let e = encode(&US, &d, &l).unwrap();
        assert_eq!(freedreno_modifier(e.as_bytes()), Some(m));
    }
    assert_eq!(freedreno_modifier(&[1, 2, 3]), None);
}

#[test]
fn exporting_a_sparse_image_is_eopnotsupp() {
    let d = rgba(64, 64);
    let l = plan(&d, DRM_FORMAT_MOD_LINEAR).unwrap();
    let e = encode(&US, &d.flags(vk::ImageCreateFlags::SPARSE_BINDING), &l).unwrap_err();
    assert!(matches!(e, MetadataError::Unrepresentable { .. }));
    assert_eq!(errno(&e), libc::EOPNOTSUPP);
}

#[test]
fn exporting_a_layout_past_4_gib_is_eopnotsupp() {
    // 16384 x 16384 x 16 bytes = 4 GiB per layer: the second layer's end does not fit 32 bits.
    let d = ImageDesc::new_2d(vk::Format::R32G32B32A32_SFLOAT, 16384, 16384).layers(2);
    let l = plan(&d, DRM_FORMAT_MOD_QCOM_TILED3).unwrap();
    let e = encode(&US, &d, &l).unwrap_err();
    assert!(matches!(e, MetadataError::Unrepresentable { .. }), "{e}");
}

#[test]
fn exporting_a_layout_that_is_not_the_descriptions_is_einval() {
    let d = rgba(64, 64);
    let mut l = plan(&d, DRM_FORMAT_MOD_LINEAR).unwrap();
    l.size_B += 1;
    let e = encode(&US, &d, &l).unwrap_err();
    assert!(matches!(
        e,
        MetadataError::InvalidField {
            field: "layout",
            ..
        }
    ));
}

#[test]
fn transfer_usage_bits_are_dropped_not_refused() {
    let d = rgba(64, 64).usage(vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST);
    let l = plan(&d.masked(), DRM_FORMAT_MOD_LINEAR).unwrap();
    let e = encode(&US, &d, &l).unwrap();
    let Imported::Image(i) = decode(e.as_bytes(), &US, l.size_B).unwrap() else {
        panic!("not a full record");
    };
    assert_eq!(i.desc.usage, vk::ImageUsageFlags::SAMPLED);
}

#[test]
fn every_rule_has_its_own_errno() {
    let all = [
        MetadataError::NoMetadata,
        MetadataError::TooLong { len_B: 0 },
        MetadataError::SizeMismatch {
            len_B: 0,
            expected_B: 0,
        },
        MetadataError::BadMagic { found: 0 },
        MetadataError::UnsupportedVersion {
            version: 0,
            size_B: 0,
        },
        MetadataError::BadChecksum {
            stored: 0,
            computed: 0,
        },
        MetadataError::DeviceMismatch { ours: 0, theirs: 0 },
        MetadataError::DriverMismatch { ours: 0, theirs: 0 },
        MetadataError::InvalidField {
            field: "",
            value: 0,
            why: "",
        },
        MetadataError::ModifierMismatch {
            modifier: 0,
            tile_mode: 0,
            ubwc: false,
        },
        MetadataError::PitchTooSmall {
            plane: 0,
            level: 0,
            pitch_B: 0,
            min_B: 0,
        },
        MetadataError::OutOfBounds {
            plane: 0,
            what: "",
            end_B: 0,
            bo_size_B: 0,
        },
        MetadataError::Overflow { plane: 0, what: "" },
        MetadataError::Unrepresentable {
            field: "",
            value: 0,
        },
    ];
    let mut errnos: Vec<i32> = all.iter().map(errno).collect();
    errnos.sort();
    errnos.dedup();
    assert_eq!(errnos.len(), all.len());
}
