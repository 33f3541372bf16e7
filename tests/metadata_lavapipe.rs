//! A real Vulkan driver's image layouts through the metadata format: with ash and whatever Vulkan
//! driver the loader finds (lavapipe, Debian's mesa-vulkan-drivers, in CI), create linear images,
//! read their subresource layouts, encode them as the record, and check that the importer rebuilds
//! the driver's offsets and pitches and finds every byte inside the driver's memory size.
//!
//! Skips with a message (and passes) only when no Vulkan loader or driver can be loaded.

use ash::vk;
use msm_winsys::metadata::layout::{self, TileMode};
use msm_winsys::metadata::{decode, encode, Identity, ImageDesc, Imported, PlaneParams};

struct Vk {
    _entry: ash::Entry,
    instance: ash::Instance,
    pd: vk::PhysicalDevice,
    device: ash::Device,
    identity: Identity,
    name: String,
}

impl Drop for Vk {
    fn drop(&mut self) {
        // SAFETY: every image made from `device` was destroyed by `round_trip`; nothing else uses
        // the device or the instance after this.
        unsafe {
            self.device.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }
}

fn open() -> Result<Vk, String> {
    // SAFETY: loading libvulkan runs its initialisers; the loader is a well-behaved library.
    let entry = unsafe { ash::Entry::load() }.map_err(|e| format!("no Vulkan loader: {e}"))?;
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    let ci = vk::InstanceCreateInfo::default().application_info(&app);
    // SAFETY: `ci` and what it points to outlive the call.
    let instance = unsafe { entry.create_instance(&ci, None) }
        .map_err(|e| format!("vkCreateInstance: {e}"))?;
    // SAFETY: `instance` is live.
    let pds = unsafe { instance.enumerate_physical_devices() }.unwrap_or_default();
    let Some(&pd) = pds.first() else {
        // SAFETY: nothing else was made from the instance.
        unsafe { instance.destroy_instance(None) };
        return Err("the Vulkan loader found no driver (no physical device)".into());
    };
    let mut id = vk::PhysicalDeviceIDProperties::default();
    let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut id);
    // SAFETY: `pd` came from this instance; `props` chains only `id`, both live.
    unsafe { instance.get_physical_device_properties2(pd, &mut props) };
    let p = props.properties;
    let name = p
        .device_name_as_c_str()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let identity = Identity::from_driver_uuid(
        (u64::from(p.vendor_id) << 32) | u64::from(p.device_id),
        &id.driver_uuid,
    );
    let prio = [1.0f32];
    let qci = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(0)
        .queue_priorities(&prio)];
    let dci = vk::DeviceCreateInfo::default().queue_create_infos(&qci);
    // SAFETY: `pd` came from `instance`; `dci` and its arrays outlive the call.
    let device = match unsafe { instance.create_device(pd, &dci, None) } {
        Ok(d) => d,
        Err(e) => {
            // SAFETY: nothing else was made from the instance.
            unsafe { instance.destroy_instance(None) };
            return Err(format!("vkCreateDevice: {e}"));
        }
    };
    Ok(Vk {
        _entry: entry,
        instance,
        pd,
        device,
        identity,
        name,
    })
}

/// Creates `desc` as a linear image, reads its layout, and round-trips it through the record.
/// Returns `Ok(false)` when the driver does not support the image.
fn round_trip(v: &Vk, desc: &ImageDesc) -> Result<bool, String> {
    let info = msm_winsys::metadata::format::lookup(desc.format).unwrap();
    // SAFETY: `pd` is live; plain query.
    let supported = unsafe {
        v.instance.get_physical_device_image_format_properties(
            v.pd,
            desc.format,
            vk::ImageType::TYPE_2D,
            vk::ImageTiling::LINEAR,
            desc.usage,
            desc.flags,
        )
    };
    match supported {
        Ok(p) if p.max_array_layers >= desc.array_layers => {}
        _ => return Ok(false),
    }
    let ci = vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(desc.format)
        .extent(desc.extent)
        .mip_levels(1)
        .array_layers(desc.array_layers)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::LINEAR)
        .usage(desc.usage)
        .flags(desc.flags)
        .initial_layout(vk::ImageLayout::UNDEFINED);
    // SAFETY: a valid create info (support checked above).
    let image = unsafe { v.device.create_image(&ci, None) }.map_err(|e| e.to_string())?;
    // SAFETY: `image` is live and linear, so subresource layouts are defined.
    let mem = unsafe { v.device.get_image_memory_requirements(image) };
    let aspects: &[vk::ImageAspectFlags] = match info.planes.len() {
        1 => &[vk::ImageAspectFlags::COLOR],
        2 => &[vk::ImageAspectFlags::PLANE_0, vk::ImageAspectFlags::PLANE_1],
        _ => &[
            vk::ImageAspectFlags::PLANE_0,
            vk::ImageAspectFlags::PLANE_1,
            vk::ImageAspectFlags::PLANE_2,
        ],
    };
    let params: Vec<PlaneParams> = aspects
        .iter()
        .map(|&aspect_mask| {
            let sub = vk::ImageSubresource {
                aspect_mask,
                mip_level: 0,
                array_layer: 0,
            };
            // SAFETY: as above; `sub` names an existing plane, level and layer.
            let l = unsafe { v.device.get_image_subresource_layout(image, sub) };
            PlaneParams {
                offset_B: l.offset,
                pitch_B: l.row_pitch,
                // One layer: the driver may report 0; the layer is `size` bytes then.
                layer_stride_B: if desc.array_layers > 1 {
                    l.array_pitch
                } else {
                    l.array_pitch.max(l.size)
                },
                ..PlaneParams::default()
            }
        })
        .collect();
    // SAFETY: `image` has no memory bound and no other user.
    unsafe { v.device.destroy_image(image, None) };

    let what = format!(
        "{:?} {}x{}x{}",
        desc.format, desc.extent.width, desc.extent.height, desc.array_layers
    );
    let l = layout::expand(desc, TileMode::Linear, false, &params)
        .map_err(|e| format!("{what}: the driver's layout is not one the format describes: {e}"))?;
    let rec = encode(&v.identity, desc, &l).map_err(|e| format!("{what}: encode: {e}"))?;
    match decode(rec.as_bytes(), &v.identity, mem.size) {
        Ok(Imported::Image(i)) => {
            if i.layout.params() != params {
                return Err(format!(
                    "{what}: decoded {:?}, driver said {params:?}",
                    i.layout.params()
                ));
            }
            eprintln!(
                "  {what}: driver pitch/offset {:?}, memory {} B, record {} B: round trip ok",
                params
                    .iter()
                    .map(|p| (p.pitch_B, p.offset_B))
                    .collect::<Vec<_>>(),
                mem.size,
                rec.as_bytes().len()
            );
            Ok(true)
        }
        Ok(other) => Err(format!("{what}: decoded {other:?}")),
        Err(e) => Err(format!(
            "{what}: the importer refused the driver's own layout in {} B: {e}",
            mem.size
        )),
    }
}

#[test]
fn real_driver_layouts_round_trip_through_the_record() {
    let v = match open() {
        Ok(v) => v,
        Err(why) => {
            eprintln!(
                "SKIPPED metadata_lavapipe: {why}. Install a Vulkan driver (Debian: apt-get install \
                 mesa-vulkan-drivers libvulkan1) to run it."
            );
            return;
        }
    };
    eprintln!("Vulkan driver: {}", v.name);
    use vk::Format as F;
    let u = vk::ImageUsageFlags::SAMPLED;
    let images = [
        ImageDesc::new_2d(F::R8G8B8A8_UNORM, 256, 256),
        ImageDesc::new_2d(F::R8G8B8A8_UNORM, 1366, 768),
        ImageDesc::new_2d(F::B8G8R8A8_SRGB, 37, 64),
        ImageDesc::new_2d(F::R8_UNORM, 1000, 600),
        ImageDesc::new_2d(F::R5G6B5_UNORM_PACK16, 300, 200),
        ImageDesc::new_2d(F::R16G16B16A16_SFLOAT, 640, 480),
        ImageDesc::new_2d(F::R32G32B32A32_SFLOAT, 64, 64),
        ImageDesc::new_2d(F::A2B10G10R10_UNORM_PACK32, 512, 256),
        ImageDesc::new_2d(F::R8G8B8A8_UNORM, 128, 128).layers(4),
        ImageDesc::new_2d(F::R8G8B8A8_UNORM, 100, 30),
        ImageDesc::new_2d(F::R8G8B8A8_UNORM, 256, 128)
            .flags(vk::ImageCreateFlags::MUTABLE_FORMAT)
            .usage(u | vk::ImageUsageFlags::STORAGE),
        ImageDesc::new_2d(F::G8_B8R8_2PLANE_420_UNORM, 1920, 1080),
        ImageDesc::new_2d(F::G8_B8_R8_3PLANE_420_UNORM, 640, 480),
    ];
    let mut done = 0;
    let mut failures = vec![];
    for d in &images {
        match round_trip(&v, d) {
            Ok(true) => done += 1,
            Ok(false) => eprintln!(
                "  {:?}: not supported as a linear image by this driver",
                d.format
            ),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(done >= 8, "only {done} images could be made");
}
