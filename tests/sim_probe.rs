//! The kernel model's probe ioctls, one test per rule of spec/kernel.md ("Files, VMs and the VA
//! range", "GET_PARAM check order", "Chip profiles"), each asserting the exact errno.

mod common;

use common::{file, file_with, raw};
use msm_winsys::kernel::{ioctl, Kernel};
use msm_winsys::sim::SimOptions;
use msm_winsys::uapi::*;
use msm_winsys::Errno;

fn param(p: u32) -> drm_msm_param {
    drm_msm_param {
        pipe: MSM_PIPE_3D0,
        param: p,
        ..Default::default()
    }
}

fn get(k: &dyn Kernel, p: u32) -> Result<u64, Errno> {
    ioctl::get_param(k, p).map_err(|e| e.errno)
}

fn set(k: &dyn Kernel, p: u32, v: u64) -> Result<(), Errno> {
    ioctl::set_param(k, p, v).map_err(|e| e.errno)
}

#[test]
fn version_reports_msm_1_13_0() {
    let v = ioctl::version(&file("a750")).unwrap();
    assert_eq!(
        (v.name.as_str(), v.major, v.minor, v.patchlevel),
        ("msm", 1, 13, 0)
    );
    assert!(!v.desc.is_empty() && !v.date.is_empty());
}

#[test]
fn version_minor_is_selectable() {
    let f = file_with(
        "a660",
        SimOptions {
            uapi_minor: 12,
            ..Default::default()
        },
    );
    assert_eq!(ioctl::version(&f).unwrap().minor, 12);
}

#[test]
fn version_copies_at_most_the_buffer_and_reports_full_length() {
    let f = file("a618");
    let mut name = [0u8; 2];
    let mut v = drm_version {
        name_len: 2,
        name: name.as_mut_ptr().cast(),
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_VERSION, &mut v).unwrap();
    assert_eq!(v.name_len, 3, "full length of \"msm\"");
    assert_eq!(&name, b"ms");
}

#[test]
fn version_with_unmapped_string_buffer_is_efault() {
    let f = file("a618");
    let mut v = drm_version {
        name_len: 8,
        name: 8 as *mut _,
        ..Default::default()
    };
    assert_eq!(raw(&f, DRM_IOCTL_VERSION, &mut v), Err(Errno::EFAULT));
}

#[test]
fn argument_at_unmapped_address_is_efault() {
    let f = file("a618");
    // SAFETY: the model reads the argument with copy_from_user semantics: no access happens here.
    let r = unsafe { f.ioctl(DRM_IOCTL_MSM_GET_PARAM, 16 as *mut _) };
    assert_eq!(r, Err(Errno::EFAULT));
}

#[test]
fn unknown_ioctl_number_is_einval() {
    let f = file("a618");
    let mut x = 0u64;
    // 0x09 + COMMAND_BASE is the reserved GEM_SVM_NEW slot.
    assert_eq!(raw(&f, 0xc008_6449, &mut x), Err(Errno::EINVAL));
}

#[test]
fn ioctl_name_is_none_exactly_for_numbers_without_a_handler() {
    use msm_winsys::sim::ioctl_name;
    assert_eq!(ioctl_name(DRM_IOCTL_MSM_GEM_NEW), Some("GEM_NEW"));
    assert_eq!(ioctl_name(DRM_IOCTL_VERSION), Some("VERSION"));
    // By number, as drm_ioctl looks its table up: size and direction do not matter.
    assert_eq!(
        ioctl_name(DRM_IOCTL_MSM_GET_PARAM & 0xff),
        Some("GET_PARAM")
    );
    assert_eq!(ioctl_name(0xc008_6449), None, "reserved GEM_SVM_NEW slot");
}

#[test]
fn llseek_moves_nothing_and_returns_0_and_a_bad_whence_is_einval() {
    // DRM_GEM_FOPS: .llseek = noop_llseek; ksys_lseek checks whence <= SEEK_MAX first.
    let f = file("a750");
    assert_eq!(f.llseek(4096, libc::SEEK_SET), Ok(0));
    assert_eq!(f.llseek(-8, libc::SEEK_END), Ok(0));
    assert_eq!(f.llseek(0, libc::SEEK_HOLE), Ok(0));
    assert_eq!(f.llseek(0, libc::SEEK_HOLE + 1), Err(Errno::EINVAL));
    assert_eq!(f.llseek(0, -1), Err(Errno::EINVAL));
}

#[test]
fn get_param_wrong_pipe_is_einval() {
    let mut a = drm_msm_param {
        pipe: MSM_PIPE_2D0,
        param: MSM_PARAM_GPU_ID,
        ..Default::default()
    };
    assert_eq!(
        raw(&file("a618"), DRM_IOCTL_MSM_GET_PARAM, &mut a),
        Err(Errno::EINVAL)
    );
}

#[test]
fn get_param_nonzero_pad_is_einval() {
    let mut a = drm_msm_param {
        pad: 1,
        ..param(MSM_PARAM_GPU_ID)
    };
    assert_eq!(
        raw(&file("a618"), DRM_IOCTL_MSM_GET_PARAM, &mut a),
        Err(Errno::EINVAL)
    );
}

#[test]
fn get_param_nonzero_len_is_einval() {
    let mut a = drm_msm_param {
        len: 4,
        ..param(MSM_PARAM_GPU_ID)
    };
    assert_eq!(
        raw(&file("a618"), DRM_IOCTL_MSM_GET_PARAM, &mut a),
        Err(Errno::EINVAL)
    );
}

#[test]
fn get_param_unknown_is_einval() {
    assert_eq!(get(&file("a750"), 0x99), Err(Errno::EINVAL));
}

#[test]
fn get_param_of_write_only_params_is_einval() {
    let f = file("a750");
    for p in [
        MSM_PARAM_SYSPROF,
        MSM_PARAM_COMM,
        MSM_PARAM_CMDLINE,
        MSM_PARAM_EN_VM_BIND,
    ] {
        assert_eq!(get(&f, p), Err(Errno::EINVAL), "param {p:#x}");
    }
}

#[test]
fn short_argument_is_zero_extended_and_copied_back_short() {
    // An old binary's 16-byte drm_msm_param (no len/pad): drm_ioctl zero-extends it.
    let f = file("a618");
    let mut old = [
        MSM_PIPE_3D0 as u64 | (MSM_PARAM_GPU_ID as u64) << 32,
        0u64,
        0xdead_beef,
    ];
    let request = (DRM_IOCTL_MSM_GET_PARAM & !(0x3fff << 16)) | (16 << 16);
    raw(&f, request, &mut old).unwrap();
    assert_eq!(old[1], 618);
    assert_eq!(
        old[2], 0xdead_beef,
        "nothing past the caller's 16 bytes is written"
    );
}

#[test]
fn set_param_is_write_only_nothing_copied_back() {
    let f = file("a750");
    let mut a = drm_msm_param {
        value: 1,
        ..param(MSM_PARAM_EN_VM_BIND)
    };
    let before = a;
    raw(&f, DRM_IOCTL_MSM_SET_PARAM, &mut a).unwrap();
    assert_eq!(a, before);
}

#[test]
fn va_range_is_4gib_on_the_a618_quirk() {
    let f = file("a618");
    assert_eq!(get(&f, MSM_PARAM_VA_START), Ok(0x1_0000_0000));
    assert_eq!(get(&f, MSM_PARAM_VA_SIZE), Ok(0x1_0000_0000));
}

#[test]
fn va_range_is_2_pow_48_minus_4gib_elsewhere() {
    for p in ["a660", "a750"] {
        let f = file(p);
        assert_eq!(get(&f, MSM_PARAM_VA_START), Ok(0x1_0000_0000), "{p}");
        assert_eq!(
            get(&f, MSM_PARAM_VA_SIZE),
            Ok((1 << 48) - 0x1_0000_0000),
            "{p}"
        );
    }
}

#[test]
fn va_params_without_per_process_pgtables_are_einval() {
    let f = file_with(
        "a660",
        SimOptions {
            per_process_pgtables: false,
            ..Default::default()
        },
    );
    assert_eq!(get(&f, MSM_PARAM_VA_START), Err(Errno::EINVAL));
    assert_eq!(get(&f, MSM_PARAM_VA_SIZE), Err(Errno::EINVAL));
}

#[test]
fn chip_profiles_match_the_spec_table() {
    // (profile, GPU_ID, CHIP_ID, GMEM_SIZE, GMEM_BASE, PRIORITIES, HBB, SWIZZLE, MACROTILE, PRR)
    let table = [
        (
            "a618",
            618,
            0x0601_0800u64,
            0x80000,
            0x100000,
            3,
            14,
            6,
            0,
            0,
        ),
        ("a660", 660, 0x0606_0001, 0x180000, 0, 3, 16, 6, 1, 1),
        ("a750", 0, 0xffff_4305_1401, 0x300000, 0, 12, 16, 6, 1, 1),
    ];
    for (p, gpu_id, chip_id, gmem, gmem_base, prios, hbb, swz, mt, prr) in table {
        let f = file(p);
        assert_eq!(get(&f, MSM_PARAM_GPU_ID), Ok(gpu_id), "{p} GPU_ID");
        assert_eq!(get(&f, MSM_PARAM_CHIP_ID), Ok(chip_id), "{p} CHIP_ID");
        assert_eq!(get(&f, MSM_PARAM_GMEM_SIZE), Ok(gmem), "{p} GMEM_SIZE");
        assert_eq!(get(&f, MSM_PARAM_GMEM_BASE), Ok(gmem_base), "{p} GMEM_BASE");
        assert_eq!(get(&f, MSM_PARAM_PRIORITIES), Ok(prios), "{p} PRIORITIES");
        assert_eq!(get(&f, MSM_PARAM_HIGHEST_BANK_BIT), Ok(hbb), "{p} HBB");
        assert_eq!(get(&f, MSM_PARAM_UBWC_SWIZZLE), Ok(swz), "{p} UBWC_SWIZZLE");
        assert_eq!(
            get(&f, MSM_PARAM_MACROTILE_MODE),
            Ok(mt),
            "{p} MACROTILE_MODE"
        );
        assert_eq!(get(&f, MSM_PARAM_HAS_PRR), Ok(prr), "{p} HAS_PRR");
        assert_eq!(
            get(&f, MSM_PARAM_UCHE_TRAP_BASE),
            Ok(0x1_ffff_ffff_f000),
            "{p} UCHE_TRAP_BASE"
        );
        assert_eq!(get(&f, MSM_PARAM_PP_PGTABLE), Ok(0), "{p} PP_PGTABLE");
        assert_eq!(get(&f, MSM_PARAM_FAULTS), Ok(0), "{p} FAULTS");
    }
    assert_eq!(get(&file("a618"), MSM_PARAM_MAX_FREQ), Ok(800_000_000));
    assert_eq!(get(&file("a660"), MSM_PARAM_MAX_FREQ), Ok(840_000_000));
}

#[test]
fn timestamp_advances() {
    let f = file("a750");
    let t0 = get(&f, MSM_PARAM_TIMESTAMP).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    assert!(get(&f, MSM_PARAM_TIMESTAMP).unwrap() > t0);
}

#[test]
fn en_vm_bind_on_a_fresh_file_turns_vm_bind_mode_on() {
    let f = file("a750");
    assert_eq!(set(&f, MSM_PARAM_EN_VM_BIND, 1), Ok(()));
    assert!(f.is_vm_bind());
}

#[test]
fn en_vm_bind_zero_leaves_mode_off() {
    let f = file("a750");
    assert_eq!(set(&f, MSM_PARAM_EN_VM_BIND, 0), Ok(()));
    assert!(!f.is_vm_bind());
}

#[test]
fn en_vm_bind_with_nonzero_len_is_einval() {
    let f = file("a750");
    let mut a = drm_msm_param {
        value: 1,
        len: 1,
        ..param(MSM_PARAM_EN_VM_BIND)
    };
    assert_eq!(raw(&f, DRM_IOCTL_MSM_SET_PARAM, &mut a), Err(Errno::EINVAL));
    assert!(!f.is_vm_bind());
}

#[test]
fn en_vm_bind_without_per_process_pgtables_is_einval() {
    let f = file_with(
        "a750",
        SimOptions {
            per_process_pgtables: false,
            ..Default::default()
        },
    );
    assert_eq!(set(&f, MSM_PARAM_EN_VM_BIND, 1), Err(Errno::EINVAL));
}

#[test]
fn en_vm_bind_after_get_param_created_the_vm_is_ebusy() {
    let f = file("a750");
    get(&f, MSM_PARAM_GPU_ID).unwrap();
    assert!(f.vm_created());
    assert_eq!(set(&f, MSM_PARAM_EN_VM_BIND, 1), Err(Errno::EBUSY));
    assert!(!f.is_vm_bind());
}

#[test]
fn get_param_with_bad_pipe_does_not_create_the_vm() {
    let f = file("a750");
    let mut a = drm_msm_param {
        pipe: 0,
        param: MSM_PARAM_GPU_ID,
        ..Default::default()
    };
    assert_eq!(raw(&f, DRM_IOCTL_MSM_GET_PARAM, &mut a), Err(Errno::EINVAL));
    assert_eq!(set(&f, MSM_PARAM_EN_VM_BIND, 1), Ok(()));
}

#[test]
fn vm_is_per_file() {
    let f = file("a750");
    get(&f, MSM_PARAM_GPU_ID).unwrap();
    let fresh = f.reopen().unwrap();
    assert_eq!(set(fresh.as_ref(), MSM_PARAM_EN_VM_BIND, 1), Ok(()));
}

#[test]
fn vm_bind_era_params_are_einval_before_uapi_1_13() {
    let f = file_with(
        "a750",
        SimOptions {
            uapi_minor: 12,
            ..Default::default()
        },
    );
    assert_eq!(set(&f, MSM_PARAM_EN_VM_BIND, 1), Err(Errno::EINVAL));
    assert_eq!(get(&f, MSM_PARAM_HAS_PRR), Err(Errno::EINVAL));
}

#[test]
fn set_param_unknown_is_einval() {
    assert_eq!(set(&file("a618"), 0x99, 0), Err(Errno::EINVAL));
}

#[test]
fn set_param_read_only_param_is_einval() {
    assert_eq!(set(&file("a618"), MSM_PARAM_GPU_ID, 0), Err(Errno::EINVAL));
}

#[test]
fn set_param_wrong_pipe_or_pad_is_einval() {
    let f = file("a618");
    let mut a = drm_msm_param {
        pipe: 0,
        value: 1,
        ..param(MSM_PARAM_EN_VM_BIND)
    };
    assert_eq!(raw(&f, DRM_IOCTL_MSM_SET_PARAM, &mut a), Err(Errno::EINVAL));
    let mut a = drm_msm_param {
        pad: 1,
        value: 1,
        ..param(MSM_PARAM_EN_VM_BIND)
    };
    assert_eq!(raw(&f, DRM_IOCTL_MSM_SET_PARAM, &mut a), Err(Errno::EINVAL));
}

#[test]
fn comm_and_cmdline_are_stored_by_pointer() {
    let f = file("a618");
    ioctl::set_param_str(&f, MSM_PARAM_COMM, "deqp-vk").unwrap();
    ioctl::set_param_str(&f, MSM_PARAM_CMDLINE, "deqp-vk --deqp-case=*").unwrap();
    assert_eq!(
        f.task_overrides(),
        (Some("deqp-vk".into()), Some("deqp-vk --deqp-case=*".into()))
    );
}

#[test]
fn comm_longer_than_a_page_is_einval() {
    let f = file("a618");
    let long = "x".repeat(4097);
    assert_eq!(
        ioctl::set_param_str(&f, MSM_PARAM_COMM, &long).map_err(|e| e.errno),
        Err(Errno::EINVAL)
    );
    assert!(ioctl::set_param_str(&f, MSM_PARAM_COMM, &long[..4096]).is_ok());
}

#[test]
fn comm_from_unmapped_pointer_is_efault() {
    let f = file("a618");
    let mut a = drm_msm_param {
        value: 8,
        len: 4,
        ..param(MSM_PARAM_COMM)
    };
    assert_eq!(raw(&f, DRM_IOCTL_MSM_SET_PARAM, &mut a), Err(Errno::EFAULT));
}

#[test]
fn sysprof_without_perfmon_capability_is_eperm() {
    assert_eq!(set(&file("a618"), MSM_PARAM_SYSPROF, 1), Err(Errno::EPERM));
}

#[test]
fn sysprof_above_2_is_einval() {
    let f = file_with(
        "a618",
        SimOptions {
            perfmon_capable: true,
            ..Default::default()
        },
    );
    assert_eq!(set(&f, MSM_PARAM_SYSPROF, 2), Ok(()));
    assert_eq!(set(&f, MSM_PARAM_SYSPROF, 3), Err(Errno::EINVAL));
}

#[test]
fn get_cap_answers_the_render_node_caps() {
    let f = file("a750");
    let cap = |c: u32| ioctl::get_cap(&f, c as u64).map_err(|e| e.errno);
    assert_eq!(cap(DRM_CAP_SYNCOBJ), Ok(1));
    assert_eq!(cap(DRM_CAP_SYNCOBJ_TIMELINE), Ok(1));
    assert_eq!(
        cap(DRM_CAP_PRIME),
        Ok((DRM_PRIME_CAP_IMPORT | DRM_PRIME_CAP_EXPORT) as u64)
    );
    assert_eq!(cap(DRM_CAP_TIMESTAMP_MONOTONIC), Ok(1));
    assert_eq!(
        cap(0x1),
        Ok(1),
        "DRM_CAP_DUMB_BUFFER on a KMS device, any node"
    );
    assert_eq!(cap(0x999), Err(Errno::EINVAL));
    // A GPU-only device (no DRIVER_MODESET): the KMS caps, and unknown ones, are EOPNOTSUPP.
    let g = file_with(
        "a750",
        SimOptions {
            kms: false,
            ..Default::default()
        },
    );
    let cap = |c: u32| ioctl::get_cap(&g, c as u64).map_err(|e| e.errno);
    assert_eq!(cap(DRM_CAP_SYNCOBJ), Ok(1));
    assert_eq!(cap(0x1), Err(Errno::EOPNOTSUPP), "DRM_CAP_DUMB_BUFFER");
    assert_eq!(cap(0x999), Err(Errno::EOPNOTSUPP));
}

#[test]
fn timeline_cap_is_zero_on_older_kernels() {
    let f = file_with(
        "a750",
        SimOptions {
            timeline_syncobjs: false,
            ..Default::default()
        },
    );
    assert_eq!(
        ioctl::get_cap(&f, DRM_CAP_SYNCOBJ_TIMELINE as u64).map_err(|e| e.errno),
        Ok(0)
    );
}

#[test]
fn model_file_descriptor_is_real_and_closed_on_drop() {
    use std::os::fd::{AsRawFd, BorrowedFd};
    let f = file("a618");
    let raw_fd = f.fd().as_raw_fd();
    // SAFETY: fcntl(F_GETFD) on a number only inspects the fd table.
    assert!(unsafe { libc::fcntl(raw_fd, libc::F_GETFD) } >= 0);
    let _: BorrowedFd<'_> = f.fd();
    drop(f);
    // SAFETY: as above; a closed fd gives -1/EBADF.
    assert_eq!(unsafe { libc::fcntl(raw_fd, libc::F_GETFD) }, -1);
}
