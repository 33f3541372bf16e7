//! Device probe and mode choice on the kernel model and on things that are not msm devices.

mod common;

use std::path::Path;

use common::file_with;
use msm_winsys::device::ProbeOptions;
use msm_winsys::kernel::ioctl;
use msm_winsys::sim::SimOptions;
use msm_winsys::uapi::MSM_PARAM_GPU_ID;
use msm_winsys::ErrnoError;
use msm_winsys::{Device, Errno, VmMode};

#[test]
fn a618_shows_4gib_va_no_prr_vm_bind() {
    let d = Device::new_sim("a618").unwrap();
    let i = d.info();
    assert_eq!((i.va_start, i.va_size_B), (0x1_0000_0000, 4 << 30));
    assert!(!d.extras().unwrap().has_prr);
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
    assert!(d.extras().unwrap().has_prr);
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

/// A device that answers only DRM_IOCTL_VERSION, as `name` UAPI `major.minor` (the model itself
/// does not go below 1.6, so the probe's own floor is checked against this).
#[derive(Debug)]
struct VersionOnly {
    name: &'static str,
    minor: i32,
    fd: std::os::fd::OwnedFd,
}

impl msm_winsys::kernel::Kernel for VersionOnly {
    unsafe fn ioctl(&self, request: u64, arg: *mut std::ffi::c_void) -> Result<(), Errno> {
        if request != msm_winsys::uapi::DRM_IOCTL_VERSION {
            return Err(Errno::EINVAL);
        }
        // SAFETY: the probe passes a live drm_version for this request.
        let v = unsafe { &mut *(arg as *mut msm_winsys::uapi::drm_version) };
        v.version_major = 1;
        v.version_minor = self.minor;
        let n = (v.name_len as usize).min(self.name.len());
        if n > 0 && !v.name.is_null() {
            // SAFETY: the probe sized the buffer from the length we reported.
            unsafe { std::ptr::copy_nonoverlapping(self.name.as_ptr(), v.name.cast(), n) };
        }
        v.name_len = self.name.len() as _;
        Ok(())
    }
    fn map(&self, _: u64, _: usize) -> Result<memmap2::MmapMut, Errno> {
        Err(Errno::EINVAL)
    }
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
    fn reopen(&self) -> Result<Box<dyn msm_winsys::kernel::Kernel>, Errno> {
        Err(Errno::ENODEV)
    }
    fn describe(&self) -> String {
        format!("fake {} 1.{}", self.name, self.minor)
    }
}

fn fake(name: &'static str, minor: i32) -> Box<VersionOnly> {
    let fd = std::fs::File::open("/dev/null").unwrap().into();
    Box::new(VersionOnly { name, minor, fd })
}

#[test]
fn uapi_older_than_1_6_is_enodev_with_a_sentence() {
    let e = Device::new(fake("msm", 5), ProbeOptions::default()).unwrap_err();
    assert_eq!(e.errno(), Errno::ENODEV);
    assert!(e.to_string().contains("at least 1.6"), "{e}");
}

#[test]
fn a_driver_other_than_msm_is_enodev() {
    let e = Device::new(fake("i915", 13), ProbeOptions::default()).unwrap_err();
    assert_eq!(e.errno(), Errno::ENODEV);
    assert!(e.to_string().contains("\"i915\", not \"msm\""), "{e}");
}

#[test]
fn the_model_does_not_go_below_uapi_1_6() {
    let opts = SimOptions {
        uapi_minor: 5,
        ..Default::default()
    };
    assert!(msm_winsys::sim::Sim::with_options("a618", opts).is_err());
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
