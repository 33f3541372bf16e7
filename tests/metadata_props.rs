//! Property tests of the layout-metadata codec: every image the model can lay out round-trips to
//! the same layout, and no input of 0..=128 bytes (random, or a valid record mutated and
//! re-checksummed as a hostile client would) panics or yields a layout reaching past the buffer.

use ash::vk;
use proptest::prelude::*;

use msm_winsys::metadata::format::FORMATS;
use msm_winsys::metadata::layout::{
    DRM_FORMAT_MOD_LINEAR, DRM_FORMAT_MOD_QCOM_COMPRESSED, DRM_FORMAT_MOD_QCOM_TILED2,
    DRM_FORMAT_MOD_QCOM_TILED3,
};
use msm_winsys::metadata::{
    decode, encode, plan, reseal, Identity, ImageDesc, ImageLayout, Imported,
};

const US: Identity = Identity {
    chip_id: 0x4305_0a01,
    driver_id: 42,
};

/// Checks, in 128-bit arithmetic and without the library's own checker, that every byte of every
/// level of every layer of every plane (and of its UBWC metadata) is inside `bo_size_B`, and that
/// every pitch holds a row.
fn assert_in_bounds(l: &ImageLayout, bo_size_B: u64) {
    let bo = u128::from(bo_size_B);
    let last = u128::from(l.array_layers) - 1;
    for p in &l.planes {
        for lv in &p.levels {
            assert!(
                u128::from(lv.pitch_B) >= u128::from(lv.width_px) * u128::from(p.cpp_B),
                "pitch below a row: {l:?}"
            );
            let end = u128::from(lv.offset_B)
                + last * u128::from(p.params.layer_stride_B)
                + u128::from(lv.size_B);
            assert!(end <= bo, "level past the buffer ({end} > {bo}): {l:?}");
            if l.ubwc {
                let end = u128::from(lv.ubwc_offset_B)
                    + last * u128::from(p.ubwc_layer_stride_B)
                    + u128::from(lv.ubwc_size_B);
                assert!(end <= bo, "UBWC level past the buffer: {l:?}");
            }
        }
    }
}

fn image() -> impl Strategy<Value = (ImageDesc, u64)> {
    (
        0..FORMATS.len(),
        1u32..=2048,
        1u32..=2048,
        1u32..=12,
        1u32..=8,
        0u32..4,
        any::<u8>(),
        prop_oneof![
            Just(DRM_FORMAT_MOD_LINEAR),
            Just(DRM_FORMAT_MOD_QCOM_TILED2),
            Just(DRM_FORMAT_MOD_QCOM_TILED3),
            Just(DRM_FORMAT_MOD_QCOM_COMPRESSED),
        ],
    )
        .prop_map(|(f, w, h, mips, layers, samples_log2, bits, modifier)| {
            let info = &FORMATS[f];
            let mut d = ImageDesc::new_2d(info.format, w, h).layers(layers);
            if info.planes.len() > 1 {
                d.extent.width = w.next_multiple_of(2);
                d.extent.height = h.next_multiple_of(2);
            } else if samples_log2 > 0 && bits & 0x80 != 0 {
                d = d.samples(vk::SampleCountFlags::from_raw(1 << samples_log2));
            } else {
                let max = 32 - d.extent.width.max(d.extent.height).leading_zeros();
                d = d.mips(mips.min(max));
            }
            let mut flags = vk::ImageCreateFlags::empty();
            if bits & 1 != 0 {
                flags |= vk::ImageCreateFlags::MUTABLE_FORMAT;
            }
            if bits & 2 != 0 {
                flags |= vk::ImageCreateFlags::TYPE_2D_ARRAY_COMPATIBLE;
            }
            if bits & 4 != 0 && d.extent.width == d.extent.height && layers >= 6 {
                flags |= vk::ImageCreateFlags::CUBE_COMPATIBLE;
            }
            let mut usage = vk::ImageUsageFlags::SAMPLED;
            if bits & 8 != 0 {
                usage |= vk::ImageUsageFlags::STORAGE;
            }
            if bits & 16 != 0 {
                usage |= vk::ImageUsageFlags::COLOR_ATTACHMENT;
            }
            (d.flags(flags).usage(usage), modifier)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_planned_image_round_trips((desc, modifier) in image()) {
        let l = plan(&desc, modifier).unwrap();
        let e = encode(&US, &desc, &l).unwrap();
        match decode(e.as_bytes(), &US, l.size_B).unwrap() {
            Imported::Image(i) => {
                prop_assert_eq!(&i.layout, &l);
                prop_assert_eq!(i.desc, desc);
            }
            other => prop_assert!(false, "{:?}", other),
        }
        assert_in_bounds(&l, l.size_B);
        // One byte less and the importer must refuse.
        prop_assert!(decode(e.as_bytes(), &US, l.size_B - 1).is_err());
    }

    #[test]
    fn any_0_to_128_bytes_never_panic_nor_reach_past_the_buffer(
        bytes in proptest::collection::vec(any::<u8>(), 0..=128),
        bo_size_B in any::<u64>(),
    ) {
        if let Ok(Imported::Image(i)) = decode(&bytes, &US, bo_size_B) {
            assert_in_bounds(&i.layout, bo_size_B);
        }
    }

    #[test]
    fn hostile_edits_of_a_valid_record_never_reach_past_the_buffer(
        (desc, modifier) in image(),
        edits in proptest::collection::vec((0usize..124, any::<u8>()), 1..6),
        shrink_B in 0u64..65536,
    ) {
        let l = plan(&desc, modifier).unwrap();
        let mut b = encode(&US, &desc, &l).unwrap().as_bytes().to_vec();
        for (at, v) in edits {
            b[at] = v;
        }
        reseal(&mut b);
        let bo = l.size_B.saturating_sub(shrink_B);
        if let Ok(Imported::Image(i)) = decode(&b, &US, bo) {
            assert_in_bounds(&i.layout, bo);
        }
    }
}
