//! Fuzz target of the layout-metadata decoder: any 0..=128 bytes, against any buffer size, must
//! never panic and never yield a layout with a byte past the buffer (docs/metadata.md).
//!
//! Input: 8 bytes of buffer size (little-endian), then the record (the rest, up to 128 bytes).
//! Each input is decoded twice: as an importer with a fixed identity, and as one whose identity
//! is taken from the record's own chip/driver fields, so the fuzzer reaches the layout rules
//! without having to guess an identity.
#![no_main]
#![allow(non_snake_case)] // unit suffixes: `bo_size_B`

use libfuzzer_sys::fuzz_target;
use msm_winsys::metadata::{decode, Identity, ImageLayout, Imported};

/// The bounds property, in 128-bit arithmetic, independent of the decoder's own checks.
fn assert_in_bounds(l: &ImageLayout, bo_size_B: u64) {
    let bo = u128::from(bo_size_B);
    let last = u128::from(l.array_layers) - 1;
    for p in &l.planes {
        for lv in &p.levels {
            assert!(u128::from(lv.pitch_B) >= u128::from(lv.width_px) * u128::from(p.cpp_B));
            let end = u128::from(lv.offset_B)
                + last * u128::from(p.params.layer_stride_B)
                + u128::from(lv.size_B);
            assert!(end <= bo, "pixels past the buffer: {l:?}");
            if l.ubwc {
                let end = u128::from(lv.ubwc_offset_B)
                    + last * u128::from(p.ubwc_layer_stride_B)
                    + u128::from(lv.ubwc_size_B);
                assert!(end <= bo, "UBWC metadata past the buffer: {l:?}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&data[..8]);
    let bo_size_B = u64::from_le_bytes(size);
    let record = &data[8..data.len().min(8 + 128)];

    let fixed = Identity {
        chip_id: 0x4305_0a01,
        driver_id: 42,
    };
    let mut own = fixed;
    if record.len() >= 40 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&record[24..32]);
        own.chip_id = u64::from_le_bytes(b);
        b.copy_from_slice(&record[32..40]);
        own.driver_id = u64::from_le_bytes(b);
    }
    for id in [fixed, own] {
        if let Ok(Imported::Image(i)) = decode(record, &id, bo_size_B) {
            assert_in_bounds(&i.layout, bo_size_B);
        }
    }
});
