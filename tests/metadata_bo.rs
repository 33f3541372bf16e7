//! Layout metadata through the kernel: the exporter stores the record with GEM_INFO(SET_METADATA),
//! the importer (another file, as a compositor or GL would be) reads it back with the length
//! query and validates it against the buffer it imported.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use ash::vk;
use common::{file_with, gem_close, raw, wc_bo};
use msm_winsys::kernel::Kernel;
use msm_winsys::metadata::{
    self, layout, BoMetadataError, Identity, ImageDesc, Imported, MetadataError,
};
use msm_winsys::sim::{Injection, Sim, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::Errno;

const ID: Identity = Identity {
    chip_id: 0xffff_4305_1401,
    driver_id: 0x1234_5678_9abc_def0,
};

fn share(from: &dyn Kernel, handle: u32, to: &dyn Kernel) -> u32 {
    let mut e = drm_prime_handle {
        handle,
        flags: DRM_CLOEXEC | DRM_RDWR,
        fd: -1,
    };
    raw(from, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut e).unwrap();
    // SAFETY: a new fd from the model.
    let fd = unsafe { OwnedFd::from_raw_fd(e.fd) };
    let mut i = drm_prime_handle {
        handle: 0,
        flags: 0,
        fd: fd.as_raw_fd(),
    };
    raw(to, DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut i).unwrap();
    i.handle
}

/// A UBWC 1920x1080 RGBA8 image exported from `exporter`; returns (handle, layout, bo size).
fn export_image(exporter: &dyn Kernel) -> (u32, metadata::ImageLayout, u64) {
    let desc = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 1920, 1080);
    let lay = metadata::plan(&desc, layout::DRM_FORMAT_MOD_QCOM_COMPRESSED).unwrap();
    let size_B = lay.size_B.next_multiple_of(4096);
    let h = wc_bo(exporter, size_B);
    let rec = metadata::encode(&ID, &desc, &lay).unwrap();
    metadata::store(exporter, h, &rec).unwrap();
    (h, lay, size_B)
}

#[test]
fn gl_importer_reconstructs_the_vulkan_exporters_layout() {
    let sim = Sim::new("a750").unwrap();
    let (vk_file, gl_file) = (sim.open().unwrap(), sim.open().unwrap());
    let (h, lay, size_B) = export_image(&vk_file);
    let hi = share(&vk_file, h, &gl_file);
    match metadata::load(&gl_file, hi, size_B, &ID).unwrap() {
        Imported::Image(img) => assert_eq!(img.layout, lay),
        other => panic!("expected a full record, got {other:?}"),
    }
    gem_close(&gl_file, hi).unwrap();
    gem_close(&vk_file, h).unwrap();
}

#[test]
fn a_buffer_without_metadata_is_no_metadata() {
    let f = Sim::new("a750").unwrap().open().unwrap();
    let h = wc_bo(&f, 4096);
    assert_eq!(
        metadata::load(&f, h, 4096, &ID),
        Err(BoMetadataError::Metadata(MetadataError::NoMetadata))
    );
    gem_close(&f, h).unwrap();
}

#[test]
fn a_buffer_smaller_than_the_layout_is_refused() {
    let sim = Sim::new("a750").unwrap();
    let (a, b) = (sim.open().unwrap(), sim.open().unwrap());
    let (h, _, size_B) = export_image(&a);
    let hi = share(&a, h, &b);
    let e = metadata::load(&b, hi, size_B - 4096, &ID).unwrap_err();
    assert_eq!(msm_winsys::ErrnoError::errno(&e), Errno::ERANGE);
    gem_close(&b, hi).unwrap();
    gem_close(&a, h).unwrap();
}

/// An import reads the record with one GEM_INFO: a buffer of the kernel's largest metadata (128
/// bytes), no length query first (which doubled the calls of every import).
#[test]
fn metadata_is_read_with_one_call() {
    let f = Sim::new("a750").unwrap().open().unwrap();
    let (h, lay, size_B) = export_image(&f);
    // A rule that never fires counts the GEM_INFO calls.
    f.sim().inject(Injection {
        point: "GEM_INFO".into(),
        nth: u32::MAX,
        errno: Errno::ENOMEM,
    });
    match metadata::load(&f, h, size_B, &ID).unwrap() {
        Imported::Image(img) => assert_eq!(img.layout, lay),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.sim().injections()[0].hits, 1);
    gem_close(&f, h).unwrap();
}

#[test]
fn an_old_kernel_that_returned_nothing_is_no_metadata_not_garbage() {
    // Pre-v7.1 kernels return 0 from a failed GET_METADATA and copy nothing.
    let f = file_with(
        "a750",
        SimOptions {
            get_metadata_returns_0: true,
            ..Default::default()
        },
    );
    let (h, _, size_B) = export_image(&f);
    f.sim().inject(Injection {
        point: "GEM_INFO:GET_METADATA".into(),
        nth: 1,
        errno: Errno::ETOOSMALL,
    });
    assert_eq!(
        metadata::load(&f, h, size_B, &ID),
        Err(BoMetadataError::Metadata(MetadataError::NoMetadata))
    );
    gem_close(&f, h).unwrap();
}

#[test]
fn a_record_longer_than_128_bytes_is_refused_by_the_kernel() {
    let f = Sim::new("a750").unwrap().open().unwrap();
    let h = wc_bo(&f, 4096);
    let e = msm_winsys::kernel::ioctl::gem_set_metadata(&f, h, &[1u8; 129]).unwrap_err();
    assert_eq!(e.errno, Errno::EOVERFLOW);
    gem_close(&f, h).unwrap();
}

#[test]
fn a_compositor_imports_an_exported_image_through_the_buffer_api() {
    use msm_winsys::bo::{Bo, BoFlags};
    use msm_winsys::device::ProbeOptions;
    use std::os::fd::AsFd;
    use std::sync::Arc;
    // Vulkan and GL on the same GPU: two files of one device.
    let sim = Sim::new("a750").unwrap();
    let open = || {
        let file = Box::new(sim.open().unwrap());
        Arc::new(msm_winsys::Device::new(file, ProbeOptions::default()).unwrap())
    };
    let (client, compositor) = (open(), open());
    let desc = ImageDesc::new_2d(vk::Format::R8G8B8A8_UNORM, 1920, 1080);
    let lay = metadata::plan(&desc, layout::DRM_FORMAT_MOD_QCOM_COMPRESSED).unwrap();
    let bo = Bo::new(&client, lay.size_B, BoFlags::SHARED | BoFlags::WC).unwrap();
    let fd = bo
        .export_image(&metadata::encode(&ID, &desc, &lay).unwrap())
        .unwrap();
    let (imported, layout) = Bo::import_image(&compositor, fd.as_fd(), &ID).unwrap();
    assert_eq!(imported.size_B(), bo.size_B());
    match layout.unwrap() {
        Imported::Image(img) => assert_eq!(img.layout, lay),
        other => panic!("{other:?}"),
    }
    // Another device (another GPU) imports a new object of its own: no metadata crosses.
    let elsewhere = Arc::new(msm_winsys::Device::new_sim("a750").unwrap());
    let (_, layout) = Bo::import_image(&elsewhere, fd.as_fd(), &ID).unwrap();
    assert_eq!(
        layout,
        Err(BoMetadataError::Metadata(MetadataError::NoMetadata))
    );
}

#[test]
fn the_legacy_form_serves_an_8_byte_reader_like_todays_freedreno() {
    let f = Sim::new("a750").unwrap().open().unwrap();
    let h = wc_bo(&f, 4096);
    let rec = metadata::Encoded::legacy(layout::DRM_FORMAT_MOD_QCOM_COMPRESSED);
    metadata::store(&f, h, &rec).unwrap();
    // freedreno's read: GET_METADATA into an 8-byte buffer.
    let mut md = [0u8; 8];
    let mut a = drm_msm_gem_info {
        handle: h,
        info: MSM_INFO_GET_METADATA,
        value: md.as_mut_ptr() as u64,
        len: 8,
        pad: 0,
    };
    raw(&f, DRM_IOCTL_MSM_GEM_INFO, &mut a).unwrap();
    assert_eq!(
        u64::from_le_bytes(md),
        layout::DRM_FORMAT_MOD_QCOM_COMPRESSED
    );
    assert_eq!(
        metadata::load(&f, h, 4096, &ID),
        Ok(Imported::Legacy {
            modifier: layout::DRM_FORMAT_MOD_QCOM_COMPRESSED
        })
    );
    gem_close(&f, h).unwrap();
}
