//! Checks `msm_winsys::uapi` against a real C header: Debian libdrm-dev's
//! `/usr/include/libdrm/msm_drm.h`, compiled by the system C compiler with `_Static_assert`s whose
//! expected values come from the Rust side (`size_of` / `offset_of!`).
//!
//! That header is an old copy of the kernel's (a Linux 4.x-era one, never updated since): it
//! has no SET_PARAM or SUBMITQUEUE_QUERY request codes, no syncobj struct, and three structs were
//! extended at the end since (`drm_msm_param` 16 -> 24 bytes, `drm_msm_gem_info` 16 -> 24,
//! `drm_msm_gem_submit` 40 -> 72). For those three the test checks that the old layout is a prefix of ours, which is what lets
//! drm_ioctl zero-extend an old binary's argument.

use std::mem::{offset_of, size_of};
use std::path::Path;
use std::process::Command;

use msm_winsys::uapi::*;

const HEADER: &str = "/usr/include/libdrm/msm_drm.h";

/// `(C type, Rust size, compare sizes?, [(C field, Rust offset)])`.
type Layout = (&'static str, usize, bool, Vec<(&'static str, usize)>);

macro_rules! fields {
    ($t:ty: $($c:literal = $f:ident),* $(,)?) => { vec![$(($c, offset_of!($t, $f))),*] };
}

fn layouts() -> Vec<Layout> {
    vec![
        (
            "struct drm_msm_timespec",
            size_of::<drm_msm_timespec>(),
            true,
            fields!(drm_msm_timespec: "tv_sec" = tv_sec, "tv_nsec" = tv_nsec),
        ),
        // `len`/`pad` came later (16 -> 24 bytes).
        (
            "struct drm_msm_param",
            size_of::<drm_msm_param>(),
            false,
            fields!(drm_msm_param: "pipe" = pipe, "param" = param, "value" = value),
        ),
        (
            "struct drm_msm_gem_new",
            size_of::<drm_msm_gem_new>(),
            true,
            fields!(drm_msm_gem_new: "size" = size, "flags" = flags, "handle" = handle),
        ),
        // Old name of `info` was `flags`, of `value` was `offset`; `len`/`pad` came later.
        (
            "struct drm_msm_gem_info",
            size_of::<drm_msm_gem_info>(),
            false,
            fields!(drm_msm_gem_info: "handle" = handle, "flags" = info, "offset" = value),
        ),
        (
            "struct drm_msm_gem_cpu_prep",
            size_of::<drm_msm_gem_cpu_prep>(),
            true,
            fields!(drm_msm_gem_cpu_prep: "handle" = handle, "op" = op, "timeout" = timeout),
        ),
        (
            "struct drm_msm_gem_cpu_fini",
            size_of::<drm_msm_gem_cpu_fini>(),
            true,
            fields!(drm_msm_gem_cpu_fini: "handle" = handle),
        ),
        (
            "struct drm_msm_gem_submit_reloc",
            size_of::<drm_msm_gem_submit_reloc>(),
            true,
            fields!(drm_msm_gem_submit_reloc: "submit_offset" = submit_offset, "or" = or,
                "shift" = shift, "reloc_idx" = reloc_idx, "reloc_offset" = reloc_offset),
        ),
        (
            "struct drm_msm_gem_submit_cmd",
            size_of::<drm_msm_gem_submit_cmd>(),
            true,
            fields!(drm_msm_gem_submit_cmd: "type" = r#type, "submit_idx" = submit_idx,
                "submit_offset" = submit_offset, "size" = size, "pad" = pad,
                "nr_relocs" = nr_relocs, "relocs" = relocs),
        ),
        (
            "struct drm_msm_gem_submit_bo",
            size_of::<drm_msm_gem_submit_bo>(),
            true,
            fields!(drm_msm_gem_submit_bo: "flags" = flags, "handle" = handle, "presumed" = presumed),
        ),
        (
            "struct drm_msm_gem_submit",
            size_of::<drm_msm_gem_submit>(),
            false,
            fields!(drm_msm_gem_submit: "flags" = flags, "fence" = fence, "nr_bos" = nr_bos,
                "nr_cmds" = nr_cmds, "bos" = bos, "cmds" = cmds, "fence_fd" = fence_fd,
                "queueid" = queueid),
        ),
        // `flags` was `pad` before MSM_WAIT_FENCE_BOOST.
        (
            "struct drm_msm_wait_fence",
            size_of::<drm_msm_wait_fence>(),
            true,
            fields!(drm_msm_wait_fence: "fence" = fence, "pad" = flags, "timeout" = timeout,
                "queueid" = queueid),
        ),
        (
            "struct drm_msm_gem_madvise",
            size_of::<drm_msm_gem_madvise>(),
            true,
            fields!(drm_msm_gem_madvise: "handle" = handle, "madv" = madv, "retained" = retained),
        ),
        (
            "struct drm_msm_submitqueue",
            size_of::<drm_msm_submitqueue>(),
            true,
            fields!(drm_msm_submitqueue: "flags" = flags, "prio" = prio, "id" = id),
        ),
    ]
}

/// Request codes the old header defines with the same argument size as ours.
fn same_codes() -> Vec<(&'static str, u64)> {
    vec![
        ("DRM_IOCTL_MSM_GEM_NEW", DRM_IOCTL_MSM_GEM_NEW),
        ("DRM_IOCTL_MSM_GEM_CPU_PREP", DRM_IOCTL_MSM_GEM_CPU_PREP),
        ("DRM_IOCTL_MSM_GEM_CPU_FINI", DRM_IOCTL_MSM_GEM_CPU_FINI),
        ("DRM_IOCTL_MSM_WAIT_FENCE", DRM_IOCTL_MSM_WAIT_FENCE),
        ("DRM_IOCTL_MSM_GEM_MADVISE", DRM_IOCTL_MSM_GEM_MADVISE),
        (
            "DRM_IOCTL_MSM_SUBMITQUEUE_NEW",
            DRM_IOCTL_MSM_SUBMITQUEUE_NEW,
        ),
        (
            "DRM_IOCTL_MSM_SUBMITQUEUE_CLOSE",
            DRM_IOCTL_MSM_SUBMITQUEUE_CLOSE,
        ),
    ]
}

fn c_source() -> String {
    let mut c = String::from("#include <stddef.h>\n#include <msm_drm.h>\n\n");
    for (ty, size, exact, fields) in layouts() {
        if exact {
            c += &format!("_Static_assert(sizeof({ty}) == {size}, \"size of {ty}\");\n");
        } else {
            c += &format!("_Static_assert(sizeof({ty}) <= {size}, \"old {ty} is a prefix\");\n");
        }
        for (f, off) in fields {
            c += &format!("_Static_assert(offsetof({ty}, {f}) == {off}, \"{ty}.{f}\");\n");
        }
    }
    for (name, code) in same_codes() {
        c += &format!("_Static_assert((unsigned long){name} == {code:#x}UL, \"{name}\");\n");
    }
    // The number nr of each request in the old header is the same as ours.
    c += &format!(
        "_Static_assert((DRM_IOCTL_MSM_GET_PARAM & 0xff) == {:#x}, \"GET_PARAM nr\");\n",
        ioc_nr(DRM_IOCTL_MSM_GET_PARAM)
    );
    c += &format!(
        "_Static_assert((DRM_IOCTL_MSM_GEM_INFO & 0xff) == {:#x}, \"GEM_INFO nr\");\n",
        ioc_nr(DRM_IOCTL_MSM_GEM_INFO)
    );
    c += &format!(
        "_Static_assert((DRM_IOCTL_MSM_GEM_SUBMIT & 0xff) == {:#x}, \"GEM_SUBMIT nr\");\n",
        ioc_nr(DRM_IOCTL_MSM_GEM_SUBMIT)
    );
    c += &format!("_Static_assert(MSM_PIPE_3D0 == {MSM_PIPE_3D0:#x}, \"pipe\");\n");
    c += &format!("_Static_assert(MSM_BO_WC == {MSM_BO_WC:#x}, \"WC\");\n");
    c += &format!("_Static_assert(MSM_SUBMIT_FENCE_FD_OUT == {MSM_SUBMIT_FENCE_FD_OUT:#x}u, \"FENCE_FD_OUT\");\n");
    c += "int main(void) { return 0; }\n";
    c
}

#[test]
fn rust_uapi_matches_libdrm_msm_drm_h() {
    if !Path::new(HEADER).exists() {
        // ci/test installs libdrm-dev, so in CI a missing header is a failure, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "{HEADER} missing in CI: install libdrm-dev"
        );
        eprintln!("skipping: {HEADER} not installed (apt-get install libdrm-dev)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("msmws-uapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("layout.c");
    std::fs::write(&src, c_source()).unwrap();
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-std=c11",
            "-Wall",
            "-Werror",
            "-I/usr/include/libdrm",
            "-o",
        ])
        .arg(dir.join("layout"))
        .arg(&src)
        .output()
        .expect("run the C compiler");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "C layout check failed:\n{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
