//! Device probe and mode choice on the kernel model and on things that are not msm devices.

mod common;

use std::path::Path;

use common::file_with;
use msm_winsys::device::ProbeOptions;
use msm_winsys::ffi::ErrnoError;
use msm_winsys::kernel::ioctl;
use msm_winsys::sim::SimOptions;
use msm_winsys::uapi::MSM_PARAM_GPU_ID;
use msm_winsys::{Device, Errno, VmMode};

#[test]
fn a618_shows_4gib_va_no_prr_vm_bind() {
    let d = Device::new_sim("a618").unwrap();
    let i = d.info();
    assert_eq!((i.va_start, i.va_size_B), (0x1_0000_0000, 4 << 30));
    assert!(!i.has_prr);
    assert_eq!(i.mode, VmMode::VmBind);
    assert_eq!(i.chip_name, "a618");
}

#[test]
fn a750_shows_2_pow_48_minus_4gib_with_prr() {
    let d = Device::new_sim("a750").unwrap();
    let i = d.info();
    assert_eq!(
        (i.va_start, i.va_size_B),
        (0x1_0000_0000, (1 << 48) - (4 << 30))
    );
    assert!(i.has_prr);
    assert_eq!(i.mode, VmMode::VmBind);
    assert_eq!(i.chip_name, "a750");
    assert_eq!(i.gpu_id, 0);
    assert_eq!(i.priorities, 12);
}

#[test]
fn uapi_1_12_falls_back_to_userspace_iova() {
    let f = file_with(
        "a660",
        SimOptions {
            uapi_minor: 12,
            ..Default::default()
        },
    );
    let d = Device::new(Box::new(f), ProbeOptions::default()).unwrap();
    assert_eq!(d.info().mode, VmMode::UserspaceIova);
    assert!(
        d.info().mode_reason.contains("needs 1.13"),
        "{}",
        d.info().mode_reason
    );
}

#[test]
fn no_per_process_pgtables_gives_kernel_iova() {
    let f = file_with(
        "a618",
        SimOptions {
            per_process_pgtables: false,
            ..Default::default()
        },
    );
    let d = Device::new(Box::new(f), ProbeOptions::default()).unwrap();
    assert_eq!(d.info().mode, VmMode::KernelIova);
    assert_eq!((d.info().va_start, d.info().va_size_B), (0, 0));
}

#[test]
fn a_used_fd_cannot_enter_vm_bind_and_says_why() {
    let f = file_with("a750", SimOptions::default());
    ioctl::get_param(&f, MSM_PARAM_GPU_ID).unwrap();
    let d = Device::new(Box::new(f), ProbeOptions::default()).unwrap();
    assert_eq!(d.info().mode, VmMode::UserspaceIova);
    assert!(
        d.info().mode_reason.contains("EBUSY"),
        "{}",
        d.info().mode_reason
    );
}

#[test]
fn caller_can_refuse_vm_bind() {
    let f = file_with("a750", SimOptions::default());
    let d = Device::new(
        Box::new(f),
        ProbeOptions {
            allow_vm_bind: false,
            allow_userspace_iova: true,
        },
    )
    .unwrap();
    assert_eq!(d.info().mode, VmMode::UserspaceIova);
}

#[test]
fn uapi_older_than_1_6_is_refused() {
    assert!(
        SimOptions {
            uapi_minor: 5,
            ..Default::default()
        }
        .uapi_minor
            < 6
    );
    assert!(msm_winsys::sim::Sim::with_options(
        "a618",
        SimOptions {
            uapi_minor: 5,
            ..Default::default()
        }
    )
    .is_err());
}

#[test]
fn unknown_profile_is_einval_with_the_known_list() {
    let e = Device::new_sim("a999").unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert!(e.to_string().contains("a618, a660, a750"), "{e}");
}

#[test]
fn missing_device_node_is_enoent_with_a_sentence() {
    let e = Device::open_path(Path::new("/dev/dri/renderD250")).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT);
    assert!(e.to_string().contains("/dev/dri/renderD250"), "{e}");
}

#[test]
fn non_msm_node_is_enodev_with_a_sentence() {
    let e = Device::open_path(Path::new("/dev/null")).unwrap_err();
    assert_eq!(e.errno(), Errno::ENODEV);
    assert!(e.to_string().contains("not a DRM device"), "{e}");
}

#[test]
fn no_render_node_on_this_machine_is_enoent_not_a_panic() {
    if !msm_winsys::kernel::drm::DrmKernel::find_render_nodes().is_empty() {
        return; // a machine with an Adreno GPU: nothing to check here
    }
    let e = Device::open_default().unwrap_err();
    assert_eq!(e.errno(), Errno::ENOENT);
    assert!(e.to_string().contains("no msm render node"), "{e}");
}
