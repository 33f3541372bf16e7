//! A device opened on a further file of a probed node (`Device::new_like`,
//! `msmws_device_new_from_fd_like`) takes the probe's answers and makes only the file's own
//! ioctls; and the probe reads VERSION once.

use std::sync::{Arc, Mutex};

mod bo_common;
use bo_common::Observed;

use msm_winsys::ffi::device::{
    msmws_device, msmws_device_info, msmws_device_new_from_fd_flags, msmws_device_new_from_fd_like,
};
use msm_winsys::kernel::ioctl;
use msm_winsys::sim::{Sim, SimOptions};
use msm_winsys::uapi::{
    DRM_IOCTL_GET_CAP, DRM_IOCTL_MSM_GET_PARAM, DRM_IOCTL_MSM_SET_PARAM, DRM_IOCTL_VERSION,
    MSM_PARAM_GPU_ID,
};
use msm_winsys::{Device, ProbeOptions, VmMode};

/// A new file of `sim` whose every request is recorded.
fn recorded(sim: &Sim) -> (Box<Observed>, Arc<Mutex<Vec<u64>>>) {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let k = Observed::new(
        Arc::new(sim.open().unwrap()),
        Box::new(move |request, _| seen.lock().unwrap().push(request)),
    );
    (Box::new(k), requests)
}

const NO_VM_BIND: ProbeOptions = ProbeOptions {
    allow_vm_bind: false,
    allow_userspace_iova: true,
};

/// Probes a first file without VM_BIND (as a Vulkan physical device does), then opens a second
/// file like it; returns the second device, its requests, and a full probe of a third file.
fn adopted(profile: &str, options: SimOptions) -> (Device, Vec<u64>, Device) {
    let sim = Sim::with_options(profile, options).unwrap();
    let first = Device::new(Box::new(sim.open().unwrap()), NO_VM_BIND).unwrap();
    let (k, requests) = recorded(&sim);
    let second = Device::new_like(k, first.info(), ProbeOptions::default()).unwrap();
    let full = Device::new(Box::new(sim.open().unwrap()), ProbeOptions::default()).unwrap();
    let requests = requests.lock().unwrap().clone();
    (second, requests, full)
}

fn assert_same_gpu(a: &Device, b: &Device) {
    let (mut a, mut b) = (a.info().clone(), b.info().clone());
    for i in [&mut a, &mut b] {
        i.source.clear();
        i.mode_reason.clear();
    }
    assert_eq!(a, b);
}

#[test]
fn a750_second_file_enters_vm_bind_with_one_ioctl_and_the_full_probes_answers() {
    let (dev, requests, full) = adopted("a750", SimOptions::default());
    assert_eq!(requests, [DRM_IOCTL_MSM_SET_PARAM]);
    assert_eq!(dev.info().mode, VmMode::VmBind);
    assert_same_gpu(&dev, &full);
}

#[test]
fn a618_second_file_matches_a_full_probe() {
    let (dev, requests, full) = adopted("a618", SimOptions::default());
    assert_eq!(requests, [DRM_IOCTL_MSM_SET_PARAM]);
    assert_same_gpu(&dev, &full);
}

#[test]
fn without_per_process_pgtables_the_second_file_asks_nothing() {
    let options = SimOptions {
        per_process_pgtables: false,
        ..Default::default()
    };
    let (dev, requests, full) = adopted("a618", options);
    assert!(requests.is_empty(), "{requests:x?}");
    assert_eq!(dev.info().mode, VmMode::KernelIova);
    assert_same_gpu(&dev, &full);
}

#[test]
fn before_uapi_1_13_the_second_file_asks_nothing() {
    let options = SimOptions {
        uapi_minor: 12,
        ..Default::default()
    };
    let (dev, requests, full) = adopted("a660", options);
    assert!(requests.is_empty(), "{requests:x?}");
    assert_eq!(dev.info().mode, VmMode::UserspaceIova);
    assert_same_gpu(&dev, &full);
}

#[test]
fn a_used_second_file_falls_back_to_set_iova_in_the_known_range() {
    let sim = Sim::new("a750").unwrap();
    let first = Device::new(Box::new(sim.open().unwrap()), NO_VM_BIND).unwrap();
    // A file someone has used: its GET_PARAM made its VM, so EN_VM_BIND is EBUSY.
    let used = sim.open().unwrap();
    ioctl::get_param(&used, MSM_PARAM_GPU_ID).unwrap();
    let d = Device::new_like(Box::new(used), first.info(), ProbeOptions::default()).unwrap();
    assert_eq!(d.info().mode, VmMode::UserspaceIova);
    assert!(
        d.info().mode_reason.contains("EBUSY"),
        "{}",
        d.info().mode_reason
    );
    assert_eq!(d.info().va_size_B, first.info().va_size_B);
}

#[test]
fn the_probe_reads_version_once() {
    let sim = Sim::new("a750").unwrap();
    let (k, requests) = recorded(&sim);
    Device::new(k, ProbeOptions::default()).unwrap();
    let versions = requests
        .lock()
        .unwrap()
        .iter()
        .filter(|&&r| r == DRM_IOCTL_VERSION)
        .count();
    assert_eq!(versions, 1);
}

/// How many of `requests` are `request`.
fn count(requests: &Mutex<Vec<u64>>, request: u64) -> usize {
    requests
        .lock()
        .unwrap()
        .iter()
        .filter(|&&r| r == request)
        .count()
}

#[test]
fn the_probe_asks_what_a_driver_needs_and_the_extras_once_on_demand() {
    let sim = Sim::new("a750").unwrap();
    let (k, requests) = recorded(&sim);
    let dev = Device::new(k, ProbeOptions::default()).unwrap();
    // GPU_ID, CHIP_ID, VA_START, VA_SIZE, GMEM_SIZE, GMEM_BASE, PRIORITIES, RAYTRACING, HIGHEST_BANK_BIT,
    // UBWC_SWIZZLE, MACROTILE_MODE: what turnip 25.0.7 reads itself, and no GET_CAP.
    assert_eq!(count(&requests, DRM_IOCTL_MSM_GET_PARAM), 11);
    assert_eq!(count(&requests, DRM_IOCTL_GET_CAP), 0);
    let extras = dev.extras().unwrap();
    assert!(extras.has_prr && extras.timeline_syncobjs);
    assert_eq!(extras.max_freq_Hz, 1_100_000_000);
    assert_eq!(count(&requests, DRM_IOCTL_MSM_GET_PARAM), 14);
    assert_eq!(count(&requests, DRM_IOCTL_GET_CAP), 1);
    assert_eq!(dev.extras().unwrap(), extras);
    assert_eq!(
        requests.lock().unwrap().len(),
        1 + 1 + 14 + 1,
        "VERSION, EN_VM_BIND, params, cap"
    );
}

#[test]
fn without_per_process_pgtables_the_probe_does_not_ask_va_size() {
    // VA_START is refused (EINVAL, msm_drv.c: no per-process address space), so VA_SIZE would
    // be too: stock turnip asks VA_START only, and so does the probe.
    let sim = Sim::with_options(
        "a660",
        SimOptions {
            per_process_pgtables: false,
            ..Default::default()
        },
    )
    .unwrap();
    let (k, requests) = recorded(&sim);
    let dev = Device::new(k, ProbeOptions::default()).unwrap();
    assert_eq!(dev.info().mode, VmMode::KernelIova);
    assert_eq!(count(&requests, DRM_IOCTL_MSM_GET_PARAM), 10);
}

#[test]
fn a_probe_given_the_version_does_not_read_it() {
    let sim = Sim::new("a750").unwrap();
    let (k, requests) = recorded(&sim);
    let v = ioctl::version_brief(&sim.open().unwrap()).unwrap();
    let dev = Device::new_with_version(k, ProbeOptions::default(), v).unwrap();
    assert_eq!(count(&requests, DRM_IOCTL_VERSION), 0);
    assert_eq!(dev.info().mode, VmMode::VmBind);
    assert_eq!(dev.info().uapi_minor, 13);
}

#[test]
fn c_abi_rejects_a_null_or_bad_known_info_and_unknown_flags() {
    let mut out: *mut msmws_device = std::ptr::null_mut();
    let rc = msmws_device_new_from_fd_like(0, std::ptr::null(), &mut out);
    assert_eq!(rc, -libc::EINVAL);
    // SAFETY: msmws_device_info is plain data; all-zero is a valid value of every field.
    let mut known: msmws_device_info = unsafe { std::mem::zeroed() };
    known.vm_mode = 7;
    assert_eq!(
        msmws_device_new_from_fd_like(0, &known, &mut out),
        -libc::EINVAL
    );
    assert_eq!(
        msmws_device_new_from_fd_flags(0, 0x80, &mut out),
        -libc::EINVAL
    );
    assert!(out.is_null());
}
