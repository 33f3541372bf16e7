//! The display side of the kernel model (spec/kernel.md "Display (KMS) VM and scanout buffers"):
//! MODE_ADDFB2 / MODE_RMFB / MODE_PAGE_FLIP errnos in the kernel's check order, and `vma_ref`
//! with and without the fix.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};

use common::kms::{addfb, fb_cmd, own_fbs, rmfb, AR24};
use common::{gem_close, raw};
use msm_winsys::kernel::Kernel;
use msm_winsys::sim::display::{BYTES_1080P, CRTC_ID};
use msm_winsys::sim::{Node, Sim, SimFile, SimOptions, VblankClock};
use msm_winsys::uapi::*;
use msm_winsys::Errno;

/// The master file of a new device whose commits complete at once (these tests flip back to
/// back) and whose fbdev console is on screen (so the first flip needs no SETCRTC).
fn file_with(profile: &str, options: SimOptions) -> SimFile {
    let options = SimOptions {
        vblank: VblankClock::Immediate,
        ..options
    };
    let f = Sim::with_options(profile, options)
        .unwrap()
        .open_node(Node::Primary)
        .unwrap();
    assert!(f.is_master());
    f
}

fn file(profile: &str) -> SimFile {
    file_with(profile, SimOptions::default())
}

fn gem_new(k: &dyn Kernel, size: u64, flags: u32) -> u32 {
    let mut a = drm_msm_gem_new {
        size,
        flags,
        handle: 0,
    };
    raw(k, DRM_IOCTL_MSM_GEM_NEW, &mut a).unwrap();
    a.handle
}

fn flip_with(k: &dyn Kernel, crtc_id: u32, fb_id: u32, flags: u32) -> Result<(), Errno> {
    common::kms::flip_with(k, crtc_id, fb_id, flags, 0)
}

fn flip(k: &dyn Kernel, fb_id: u32) -> Result<(), Errno> {
    flip_with(k, CRTC_ID, fb_id, 0)
}

fn export(k: &dyn Kernel, handle: u32) -> OwnedFd {
    let mut a = drm_prime_handle {
        handle,
        flags: DRM_CLOEXEC | DRM_RDWR,
        fd: -1,
    };
    raw(k, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut a).unwrap();
    // SAFETY: a new fd from the model.
    unsafe { OwnedFd::from_raw_fd(a.fd) }
}

const W: u32 = 1920;
const H: u32 = 1080;

#[test]
fn addfb2_checks_in_the_kernels_order() {
    let f = file("a750");
    let bo = gem_new(&f, BYTES_1080P, MSM_BO_WC);
    let ok = fb_cmd(bo, W, H);
    let e = |c: drm_mode_fb_cmd2| addfb(&f, c).unwrap_err();
    assert_eq!(
        e(drm_mode_fb_cmd2 { flags: 4, ..ok }),
        Errno::EINVAL,
        "unknown flag"
    );
    assert_eq!(
        e(drm_mode_fb_cmd2 { width: 16385, ..ok }),
        Errno::EINVAL,
        "too wide"
    );
    assert_eq!(
        e(drm_mode_fb_cmd2 {
            pixel_format: 0x1234,
            ..ok
        }),
        Errno::EINVAL,
        "format"
    );
    assert_eq!(
        e(drm_mode_fb_cmd2 { height: 0, ..ok }),
        Errno::EINVAL,
        "zero height"
    );
    assert_eq!(
        e(drm_mode_fb_cmd2 {
            handles: [0; 4],
            ..ok
        }),
        Errno::EINVAL,
        "handle 0"
    );
    let huge = drm_mode_fb_cmd2 {
        pitches: [u32::MAX / 1000, 0, 0, 0],
        ..ok
    };
    assert_eq!(e(huge), Errno::ERANGE, "height * pitch past 4 GiB");
    assert_eq!(
        e(drm_mode_fb_cmd2 {
            pitches: [W * 4 - 4, 0, 0, 0],
            ..ok
        }),
        Errno::EINVAL
    );
    assert_eq!(
        e(drm_mode_fb_cmd2 {
            modifier: [0x0500_0000_0000_0001, 0, 0, 0],
            ..ok
        }),
        Errno::EINVAL,
        "a modifier without DRM_MODE_FB_MODIFIERS"
    );
    assert_eq!(
        e(drm_mode_fb_cmd2 {
            handles: [bo, bo, 0, 0],
            ..ok
        }),
        Errno::EINVAL,
        "plane 1"
    );
    assert_eq!(
        e(drm_mode_fb_cmd2 {
            flags: 2,
            modifier: [0xdead, 0, 0, 0],
            ..ok
        }),
        Errno::EINVAL,
        "a modifier the plane does not take"
    );
    assert_eq!(
        e(drm_mode_fb_cmd2 {
            handles: [99, 0, 0, 0],
            ..ok
        }),
        Errno(libc::ENXIO)
    );
    assert_eq!(
        e(drm_mode_fb_cmd2 {
            height: H + 1,
            ..ok
        }),
        Errno::EINVAL,
        "BO too small"
    );
    let private = gem_new(&f, BYTES_1080P, MSM_BO_WC | MSM_BO_NO_SHARE);
    assert_eq!(
        e(fb_cmd(private, W, H)),
        Errno::EINVAL,
        "NO_SHARE backs no framebuffer"
    );
    let fb = addfb(&f, ok).unwrap();
    assert!(fb > CRTC_ID);
    let ubwc = drm_mode_fb_cmd2 {
        flags: 2,
        modifier: [0x0500_0000_0000_0001, 0, 0, 0],
        ..ok
    };
    assert_ne!(addfb(&f, ubwc).unwrap(), fb);
    assert_eq!(f.sim().display_stats().framebuffers, 2);
    close_all(&f, &[bo, private]);
}

/// Removes the file's framebuffers (GETRESOURCES lists them) and closes the test's GEM handles,
/// so the file ends with an empty leak report.
fn close_all(f: &dyn Kernel, handles: &[u32]) {
    for fb in own_fbs(f) {
        rmfb(f, fb).unwrap();
    }
    for &h in handles {
        gem_close(f, h).unwrap();
    }
}

#[test]
fn rmfb_of_an_unknown_or_foreign_framebuffer_is_enoent() {
    let f = file("a750");
    let g = f.sim().open_node(Node::Primary).unwrap();
    let bo = gem_new(&f, 4 << 20, MSM_BO_WC);
    let fb = addfb(&f, fb_cmd(bo, 1024, 1024)).unwrap();
    assert_eq!(rmfb(&f, 12345), Err(Errno::ENOENT));
    assert_eq!(
        rmfb(&g, fb),
        Err(Errno::ENOENT),
        "only the owner removes it"
    );
    rmfb(&f, fb).unwrap();
    assert_eq!(rmfb(&f, fb), Err(Errno::ENOENT));
    close_all(&f, &[bo]);
}

#[test]
fn page_flip_checks_in_the_kernels_order() {
    let f = file("a750");
    let a = gem_new(&f, BYTES_1080P, MSM_BO_WC);
    let fa = addfb(&f, fb_cmd(a, W, H)).unwrap();
    assert_eq!(
        flip_with(&f, CRTC_ID, fa, 0x10),
        Err(Errno::EINVAL),
        "unknown flag"
    );
    assert_eq!(flip_with(&f, CRTC_ID, fa, 2), Err(Errno::EINVAL), "ASYNC");
    assert_eq!(
        flip_with(&f, CRTC_ID, fa, 12),
        Err(Errno::EINVAL),
        "both TARGETs"
    );
    assert_eq!(
        flip_with(&f, CRTC_ID + 1, fa, 0),
        Err(Errno::ENOENT),
        "CRTC"
    );
    assert_eq!(
        flip_with(&f, CRTC_ID, fa, 4),
        Err(Errno::EINVAL),
        "no page_flip_target"
    );
    assert_eq!(flip(&f, 999), Err(Errno::ENOENT), "framebuffer");
    flip_with(&f, CRTC_ID, fa, 1).unwrap(); // EVENT is accepted
                                            // The first flip set the mode: a smaller framebuffer does not cover it.
    let small = gem_new(&f, 4 << 20, MSM_BO_WC);
    let fs = addfb(&f, fb_cmd(small, 640, 480)).unwrap();
    assert_eq!(flip(&f, fs), Err(Errno::ENOSPC));
    // A flip may not change the format.
    let b = gem_new(&f, BYTES_1080P, MSM_BO_WC);
    let fb = addfb(
        &f,
        drm_mode_fb_cmd2 {
            pixel_format: AR24,
            ..fb_cmd(b, W, H)
        },
    )
    .unwrap();
    assert_eq!(flip(&f, fb), Err(Errno::EINVAL));
    // A DONTNEED object cannot be pinned.
    let c = gem_new(&f, BYTES_1080P, MSM_BO_WC);
    let fc = addfb(&f, fb_cmd(c, W, H)).unwrap();
    let mut m = drm_msm_gem_madvise {
        handle: c,
        madv: MSM_MADV_DONTNEED,
        retained: 0,
    };
    raw(&f, DRM_IOCTL_MSM_GEM_MADVISE, &mut m).unwrap();
    assert_eq!(flip(&f, fc), Err(Errno::EBUSY));
    let s = f.sim().display_stats();
    assert_eq!((s.flips, s.maps, s.unmaps), (1, 1, 0));
    close_all(&f, &[a, small, b, c]);
}

/// Flips between two 1080p buffers `n` times; returns (maps, unmaps, TLB us).
fn ping_pong(fix: bool, keep_handles: bool, n: usize) -> (u64, u64, u64) {
    let f = file_with(
        "a750",
        SimOptions {
            display_vma_ref_fix: fix,
            ..Default::default()
        },
    );
    let bos = [
        gem_new(&f, BYTES_1080P, MSM_BO_WC),
        gem_new(&f, BYTES_1080P, MSM_BO_WC),
    ];
    let fbs: Vec<u32> = bos
        .iter()
        .map(|&b| addfb(&f, fb_cmd(b, W, H)).unwrap())
        .collect();
    if !keep_handles {
        for b in bos {
            gem_close(&f, b).unwrap();
        }
    }
    for i in 0..n {
        flip(&f, fbs[i % 2]).unwrap();
    }
    let s = f.sim().display_stats();
    close_all(&f, if keep_handles { &bos } else { &[] });
    (s.maps, s.unmaps, s.tlb_invalidate_us)
}

#[test]
fn fixed_kernel_keeps_the_mapping_while_a_handle_is_open() {
    assert_eq!(ping_pong(true, true, 10), (2, 0, 0));
}

#[test]
fn kernel_before_the_fix_unmaps_at_every_flip_away() {
    // 9 flips away, 5 ms each for a 1080p buffer.
    assert_eq!(ping_pong(false, true, 10), (10, 9, 45_000));
}

#[test]
fn fixed_kernel_unmaps_at_unpin_once_no_handle_or_dmabuf_is_left() {
    assert_eq!(ping_pong(true, false, 10), (10, 9, 45_000));
}

/// Flips round a chain of three 1080p buffers `n` times, then closes everything; returns the
/// steady-state counters (scanouts, maps, unmaps) read after the teardown.
fn chain_steady(fix: bool, keep_handles: bool, n: usize) -> (u64, u64, u64, u64) {
    let f = file_with(
        "a750",
        SimOptions {
            display_vma_ref_fix: fix,
            ..Default::default()
        },
    );
    let bos: Vec<u32> = (0..3)
        .map(|_| gem_new(&f, BYTES_1080P, MSM_BO_WC))
        .collect();
    let fbs: Vec<u32> = bos
        .iter()
        .map(|&b| addfb(&f, fb_cmd(b, W, H)).unwrap())
        .collect();
    if !keep_handles {
        for &b in &bos {
            gem_close(&f, b).unwrap();
        }
    }
    for i in 0..n {
        flip(&f, fbs[i % 3]).unwrap();
        // The same framebuffer again is not a scanout flip.
        flip(&f, fbs[i % 3]).unwrap();
    }
    close_all(&f, if keep_handles { &bos } else { &[] });
    let s = f.sim().display_stats();
    (
        s.scanouts,
        s.steady_scanouts,
        s.steady_maps,
        s.steady_unmaps,
    )
}

#[test]
fn steady_state_starts_once_every_buffer_of_the_chain_was_scanned_out() {
    // 12 scanouts; the first 3 bring each buffer on screen once; the teardown at close (unmaps
    // after the last scanout) is not part of the steady state.
    assert_eq!(chain_steady(true, true, 12), (12, 9, 0, 0));
    assert_eq!(chain_steady(false, true, 12), (12, 9, 9, 9));
    assert_eq!(chain_steady(true, false, 12), (12, 9, 9, 9));
}

#[test]
fn gem_close_of_the_last_reference_unmaps_at_once() {
    let f = file("a750");
    let a = gem_new(&f, BYTES_1080P, MSM_BO_WC);
    let b = gem_new(&f, BYTES_1080P, MSM_BO_WC);
    let fa = addfb(&f, fb_cmd(a, W, H)).unwrap();
    let fb = addfb(&f, fb_cmd(b, W, H)).unwrap();
    flip(&f, fa).unwrap();
    flip(&f, fb).unwrap();
    assert!(f.sim().display_mapped(&f, a), "the handle keeps it mapped");
    gem_close(&f, a).unwrap();
    let s = f.sim().display_stats();
    assert_eq!((s.unmaps, s.mapped), (1, 1));
    close_all(&f, &[b]);
}

#[test]
fn a_dmabuf_keeps_the_mapping_and_its_close_is_noticed_at_the_next_flip() {
    let f = file("a750");
    let a = gem_new(&f, BYTES_1080P, MSM_BO_WC);
    let b = gem_new(&f, BYTES_1080P, MSM_BO_WC);
    let fa = addfb(&f, fb_cmd(a, W, H)).unwrap();
    let fb = addfb(&f, fb_cmd(b, W, H)).unwrap();
    let dmabuf = export(&f, a);
    gem_close(&f, a).unwrap();
    flip(&f, fa).unwrap();
    flip(&f, fb).unwrap();
    assert_eq!(
        f.sim().display_stats().unmaps,
        0,
        "the dma-buf holds a vma_ref"
    );
    drop(dmabuf);
    flip(&f, fb).unwrap();
    let s = f.sim().display_stats();
    assert_eq!((s.unmaps, s.mapped), (1, 1));
    close_all(&f, &[b]);
}

#[test]
fn rmfb_of_the_scanned_out_framebuffer_turns_the_crtc_off_and_file_close_cleans_up() {
    let f = file("a750");
    let sim = f.sim();
    let a = gem_new(&f, BYTES_1080P, MSM_BO_WC);
    let fa = addfb(&f, fb_cmd(a, W, H)).unwrap();
    flip(&f, fa).unwrap();
    rmfb(&f, fa).unwrap();
    let s = sim.display_stats();
    assert_eq!(
        (s.unpins, s.unmaps, s.mapped),
        (1, 0, 1),
        "the handle still holds it"
    );
    let fa2 = addfb(&f, fb_cmd(a, W, H)).unwrap();
    assert_eq!(
        flip(&f, fa2),
        Err(Errno::EBUSY),
        "the CRTC is off: nothing to flip from"
    );
    common::kms::set_crtc(&f, CRTC_ID, Some(fa2)).unwrap();
    assert_eq!(sim.display_stats().maps, 1, "still mapped: no new map");
    // The handle is left to the file's close on purpose: that close is what this test checks.
    assert!(f.close().handles == vec![a]);
    let s = sim.display_stats();
    assert_eq!((s.framebuffers, s.mapped, s.unmaps), (0, 0, 1));
}

#[test]
fn tlb_cost_scales_with_size() {
    let f = file_with(
        "a750",
        SimOptions {
            display_vma_ref_fix: false,
            ..Default::default()
        },
    );
    let size = 3840 * 2160 * 4;
    let a = gem_new(&f, size, MSM_BO_WC);
    let b = gem_new(&f, size, MSM_BO_WC);
    let fa = addfb(&f, fb_cmd(a, 3840, 2160)).unwrap();
    let fb = addfb(&f, fb_cmd(b, 3840, 2160)).unwrap();
    flip(&f, fa).unwrap();
    flip(&f, fb).unwrap();
    assert_eq!(
        f.sim().display_stats().tlb_invalidate_us,
        20_000,
        "4K: 4x 1080p"
    );
    close_all(&f, &[a, b]);
}
