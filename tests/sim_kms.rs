//! The KMS side of the kernel model: nodes and DRM master (drm_auth.c, `drm_ioctl_permit`),
//! the mode objects and their queries (drm_mode_config.c, drm_connector.c, drm_crtc.c,
//! drm_plane.c), SETCRTC, PAGE_FLIP with events, `drm_read` / `drm_poll` on the file.

mod common;

use std::os::fd::AsRawFd;

use common::kms::*;
use common::{gem_close, raw, readable, wc_bo};
use msm_winsys::kernel::Kernel;
use msm_winsys::sim::display::{BYTES_1080P, CRTC_ID};
use msm_winsys::sim::kms::*;
use msm_winsys::sim::{Node, Sim, SimOptions, VblankClock};
use msm_winsys::uapi::*;
use msm_winsys::Errno;

fn manual() -> SimOptions {
    SimOptions {
        vblank: VblankClock::Manual,
        ..Default::default()
    }
}

/// Two 1080p buffers and their framebuffers: (handles, framebuffer ids).
fn two_framebuffers(f: &dyn Kernel) -> ([u32; 2], [u32; 2]) {
    let bos = [wc_bo(f, BYTES_1080P), wc_bo(f, BYTES_1080P)];
    let fbs = bos.map(|bo| addfb(f, fb_cmd(bo, 1920, 1080)).unwrap());
    (bos, fbs)
}

/// RMFB and GEM_CLOSE, so the file ends with an empty leak report.
fn release(f: &dyn Kernel, fbs: &[u32], bos: &[u32]) {
    for &fb in fbs {
        rmfb(f, fb).unwrap();
    }
    for &bo in bos {
        gem_close(f, bo).unwrap();
    }
}

fn get_res(k: &dyn Kernel, r: &mut drm_mode_card_res) -> Result<(), Errno> {
    raw(k, DRM_IOCTL_MODE_GETRESOURCES, r)
}

#[test]
fn render_nodes_refuse_ioctls_without_render_allow_with_eacces() {
    let sim = Sim::new("a750").unwrap();
    let r = sim.open().unwrap();
    assert_eq!(r.node(), Node::Render);
    assert!(!r.is_master(), "render files are never master");
    let mut res = drm_mode_card_res::default();
    assert_eq!(get_res(&r, &mut res), Err(Errno::EACCES));
    let mut cap = drm_set_client_cap {
        capability: DRM_CLIENT_CAP_ATOMIC,
        value: 1,
    };
    assert_eq!(
        raw(&r, DRM_IOCTL_SET_CLIENT_CAP, &mut cap),
        Err(Errno::EACCES)
    );
    // msm's own ioctls and GEM/PRIME/GET_CAP are DRM_RENDER_ALLOW.
    let bo = wc_bo(&r, 4096);
    gem_close(&r, bo).unwrap();
}

#[test]
fn first_primary_opener_is_master_and_master_only_ioctls_are_eacces_for_others() {
    let sim = Sim::with_options("a750", manual()).unwrap();
    let m = sim.open_node(Node::Primary).unwrap();
    let o = sim.open_node(Node::Primary).unwrap();
    assert!(m.is_master() && m.is_authenticated());
    assert!(!o.is_master() && !o.is_authenticated());
    // Queries need no master.
    let mut res = drm_mode_card_res::default();
    get_res(&o, &mut res).unwrap();
    assert_eq!(
        set_crtc(&o, CRTC_ID, None),
        Err(Errno::EACCES),
        "SETCRTC is DRM_MASTER"
    );
    set_crtc(&m, CRTC_ID, None).unwrap();
    drop(m);
    // drm_master_release: the next primary opener becomes master.
    let n = sim.open_node(Node::Primary).unwrap();
    assert!(n.is_master());
    assert!(!o.is_master());
}

#[test]
fn set_and_drop_master_follow_drm_auth() {
    let sim = Sim::with_options("a750", manual()).unwrap();
    let m = sim.open_node(Node::Primary).unwrap();
    let o = sim.open_node(Node::Primary).unwrap();
    let set = |f: &dyn Kernel| raw(f, DRM_IOCTL_SET_MASTER, &mut ());
    let drop_ = |f: &dyn Kernel| raw(f, DRM_IOCTL_DROP_MASTER, &mut ());
    // drm_master_check_perm: never master and no CAP_SYS_ADMIN.
    assert_eq!(set(&o), Err(Errno::EACCES));
    assert_eq!(drop_(&o), Err(Errno::EACCES));
    set(&m).unwrap(); // already master: 0
    drop_(&m).unwrap();
    assert!(!m.is_master());
    assert_eq!(drop_(&m), Err(Errno::EINVAL), "not the current master");
    set(&m).unwrap();
    assert!(m.is_master());
    // With CAP_SYS_ADMIN another file may take over once the master dropped it.
    let sim = Sim::with_options(
        "a750",
        SimOptions {
            cap_sys_admin: true,
            ..manual()
        },
    )
    .unwrap();
    let a = sim.open_node(Node::Primary).unwrap();
    let b = sim.open_node(Node::Primary).unwrap();
    assert!(b.is_authenticated(), "root is always authenticated");
    assert_eq!(set(&b), Err(Errno::EBUSY), "another file is master");
    drop_(&a).unwrap();
    set(&b).unwrap();
    assert!(b.is_master() && !a.is_master());
}

#[test]
fn get_unique_is_empty_as_libdrm_expects_of_a_platform_device() {
    let sim = Sim::with_options("a750", manual()).unwrap();
    let m = sim.open_node(Node::Primary).unwrap();
    let mut u = drm_unique {
        unique_len: 7,
        unique: std::ptr::null_mut(),
    };
    raw(&m, DRM_IOCTL_GET_UNIQUE, &mut u).unwrap();
    assert_eq!(u.unique_len, 0);
    let r = sim.open().unwrap();
    assert_eq!(raw(&r, DRM_IOCTL_GET_UNIQUE, &mut u), Err(Errno::EACCES));
}

#[test]
fn get_magic_and_auth_magic_authenticate_once() {
    let sim = Sim::with_options("a750", manual()).unwrap();
    let m = sim.open_node(Node::Primary).unwrap();
    let o = sim.open_node(Node::Primary).unwrap();
    let mut a = drm_auth::default();
    raw(&o, DRM_IOCTL_GET_MAGIC, &mut a).unwrap();
    assert_ne!(a.magic, 0);
    let mut again = drm_auth::default();
    raw(&o, DRM_IOCTL_GET_MAGIC, &mut again).unwrap();
    assert_eq!(again.magic, a.magic, "one token per file");
    assert_eq!(
        raw(&o, DRM_IOCTL_AUTH_MAGIC, &mut a),
        Err(Errno::EACCES),
        "master only"
    );
    raw(&m, DRM_IOCTL_AUTH_MAGIC, &mut a).unwrap();
    assert!(o.is_authenticated());
    assert_eq!(
        raw(&m, DRM_IOCTL_AUTH_MAGIC, &mut a),
        Err(Errno::EINVAL),
        "a used token"
    );
}

#[test]
fn getresources_fills_only_what_the_counts_allow_and_lists_own_framebuffers() {
    let f = master_with(manual());
    let mut res = drm_mode_card_res::default();
    get_res(&f, &mut res).unwrap();
    assert_eq!(
        (
            res.count_fbs,
            res.count_crtcs,
            res.count_encoders,
            res.count_connectors
        ),
        (0, 1, 1, 1),
        "the console's framebuffer is the kernel's, not listed"
    );
    assert_eq!(res.max_width, MAX_FB_DIMENSION);
    let bo = wc_bo(&f, BYTES_1080P);
    let fb = addfb(&f, fb_cmd(bo, 1920, 1080)).unwrap();
    let (mut crtcs, mut encs, mut conns, mut fbs) = ([0u32; 1], [0u32; 1], [0u32; 1], [0u32; 1]);
    let mut res = drm_mode_card_res {
        fb_id_ptr: fbs.as_mut_ptr() as u64,
        crtc_id_ptr: crtcs.as_mut_ptr() as u64,
        encoder_id_ptr: encs.as_mut_ptr() as u64,
        connector_id_ptr: conns.as_mut_ptr() as u64,
        count_fbs: 1,
        count_crtcs: 1,
        count_encoders: 1,
        count_connectors: 1,
        ..Default::default()
    };
    get_res(&f, &mut res).unwrap();
    assert_eq!(
        (fbs, crtcs, encs, conns),
        ([fb], [CRTC_ID], [ENCODER_ID], [CONNECTOR_ID])
    );
    // A bad pointer with room to write is EFAULT; with a zero count nothing is written.
    let mut res = drm_mode_card_res {
        crtc_id_ptr: 8,
        count_crtcs: 1,
        ..Default::default()
    };
    assert_eq!(get_res(&f, &mut res), Err(Errno::EFAULT));
    let mut res = drm_mode_card_res {
        crtc_id_ptr: 8,
        ..Default::default()
    };
    get_res(&f, &mut res).unwrap();
    rmfb(&f, fb).unwrap();
    gem_close(&f, bo).unwrap();
}

#[test]
fn kms_ioctls_on_a_gpu_only_device_are_eopnotsupp() {
    let f = master_with(SimOptions {
        kms: false,
        ..manual()
    });
    let mut res = drm_mode_card_res::default();
    assert_eq!(get_res(&f, &mut res), Err(Errno::EOPNOTSUPP));
}

#[test]
fn getconnector_copies_modes_and_encoders_only_when_all_fit() {
    let f = master_with(manual());
    let mut c = drm_mode_get_connector {
        connector_id: CONNECTOR_ID + 100,
        ..Default::default()
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_GETCONNECTOR, &mut c),
        Err(Errno::ENOENT)
    );
    let mut c = drm_mode_get_connector {
        connector_id: CONNECTOR_ID,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_GETCONNECTOR, &mut c).unwrap();
    assert_eq!(
        (
            c.count_modes,
            c.count_encoders,
            c.connection,
            c.connector_type
        ),
        (1, 1, 1, DRM_MODE_CONNECTOR_DSI)
    );
    assert_eq!(c.encoder_id, ENCODER_ID, "the console drives it");
    assert_eq!(c.count_props, 4, "no atomic properties for a legacy client");
    let mut modes = [drm_mode_modeinfo::default(); 1];
    let mut encs = [0u32; 1];
    let mut c2 = drm_mode_get_connector {
        connector_id: CONNECTOR_ID,
        modes_ptr: modes.as_mut_ptr() as u64,
        count_modes: 1,
        encoders_ptr: encs.as_mut_ptr() as u64,
        count_encoders: 1,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_GETCONNECTOR, &mut c2).unwrap();
    assert_eq!(modes[0], panel_mode());
    assert_eq!(modes[0].vrefresh, 60);
    assert_eq!(encs, [ENCODER_ID]);
}

#[test]
fn getencoder_getcrtc_getplane_report_the_pipeline() {
    let f = master_with(manual());
    let mut e = drm_mode_get_encoder {
        encoder_id: ENCODER_ID,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_GETENCODER, &mut e).unwrap();
    assert_eq!(
        (e.crtc_id, e.possible_crtcs, e.encoder_type),
        (CRTC_ID, 1, DRM_MODE_ENCODER_DSI)
    );
    e.encoder_id = CRTC_ID;
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_GETENCODER, &mut e),
        Err(Errno::ENOENT),
        "wrong type"
    );
    let mut c = drm_mode_crtc {
        crtc_id: CRTC_ID,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_GETCRTC, &mut c).unwrap();
    assert_eq!((c.mode_valid, c.mode), (1, panel_mode()));
    assert_ne!(c.fb_id, 0, "the fbdev console");
    set_crtc(&f, CRTC_ID, None).unwrap();
    raw(&f, DRM_IOCTL_MODE_GETCRTC, &mut c).unwrap();
    assert_eq!((c.mode_valid, c.fb_id), (0, 0));
    c.crtc_id = ENCODER_ID;
    assert_eq!(raw(&f, DRM_IOCTL_MODE_GETCRTC, &mut c), Err(Errno::ENOENT));
    // Plane resources: only the overlay until UNIVERSAL_PLANES.
    let mut ids = [0u32; 4];
    let mut pr = drm_mode_get_plane_res {
        plane_id_ptr: ids.as_mut_ptr() as u64,
        count_planes: 4,
    };
    raw(&f, DRM_IOCTL_MODE_GETPLANERESOURCES, &mut pr).unwrap();
    assert_eq!(&ids[..pr.count_planes as usize], &[OVERLAY_PLANE_ID]);
    let mut cap = drm_set_client_cap {
        capability: DRM_CLIENT_CAP_UNIVERSAL_PLANES,
        value: 1,
    };
    raw(&f, DRM_IOCTL_SET_CLIENT_CAP, &mut cap).unwrap();
    pr.count_planes = 4;
    raw(&f, DRM_IOCTL_MODE_GETPLANERESOURCES, &mut pr).unwrap();
    assert_eq!(&ids[..pr.count_planes as usize], &PLANE_IDS);
    // GETPLANE: formats only when the count holds them all.
    let mut formats = [0u32; 8];
    let mut p = drm_mode_get_plane {
        plane_id: PRIMARY_PLANE_ID,
        format_type_ptr: formats.as_mut_ptr() as u64,
        count_format_types: 1,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_GETPLANE, &mut p).unwrap();
    assert_eq!(
        (p.count_format_types, formats[0]),
        (PLANE_FORMATS.len() as u32, 0)
    );
    raw(&f, DRM_IOCTL_MODE_GETPLANE, &mut p).unwrap();
    assert_eq!(&formats[..PLANE_FORMATS.len()], &PLANE_FORMATS);
    assert_eq!((p.possible_crtcs, p.crtc_id, p.fb_id), (1, 0, 0));
    p.plane_id = CONNECTOR_ID;
    assert_eq!(raw(&f, DRM_IOCTL_MODE_GETPLANE, &mut p), Err(Errno::ENOENT));
}

#[test]
fn set_client_cap_values_follow_drm_setclientcap() {
    let f = master_with(manual());
    let set = |capability, value| {
        let mut c = drm_set_client_cap { capability, value };
        raw(&f, DRM_IOCTL_SET_CLIENT_CAP, &mut c)
    };
    assert_eq!(set(DRM_CLIENT_CAP_UNIVERSAL_PLANES, 2), Err(Errno::EINVAL));
    assert_eq!(
        set(DRM_CLIENT_CAP_WRITEBACK_CONNECTORS, 1),
        Err(Errno::EINVAL),
        "needs atomic"
    );
    assert_eq!(set(DRM_CLIENT_CAP_ATOMIC, 3), Err(Errno::EINVAL));
    set(DRM_CLIENT_CAP_ATOMIC, 1).unwrap();
    set(DRM_CLIENT_CAP_WRITEBACK_CONNECTORS, 1).unwrap();
    assert_eq!(
        set(DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT, 1),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(set(99, 1), Err(Errno::EINVAL));
}

#[test]
fn get_cap_answers_what_a_kms_client_asks() {
    let f = master_with(manual());
    let cap = |c: u64| {
        let mut a = drm_get_cap {
            capability: c,
            value: 7,
        };
        raw(&f, DRM_IOCTL_GET_CAP, &mut a).map(|()| a.value)
    };
    assert_eq!(cap(0x1), Ok(1), "DUMB_BUFFER");
    assert_eq!(cap(0x6), Ok(1), "TIMESTAMP_MONOTONIC");
    assert_eq!(cap(0x8), Ok(64), "CURSOR_WIDTH");
    assert_eq!(cap(0x10), Ok(1), "ADDFB2_MODIFIERS");
    assert_eq!(cap(0x11), Ok(0), "PAGE_FLIP_TARGET");
    assert_eq!(cap(0x12), Ok(1), "CRTC_IN_VBLANK_EVENT");
    assert_eq!(cap(0xa), Err(Errno::EINVAL), "no such cap");
}

#[test]
fn setcrtc_checks_in_the_kernels_order() {
    let f = master_with(manual());
    let bo = wc_bo(&f, BYTES_1080P);
    let fb = addfb(&f, fb_cmd(bo, 1920, 1080)).unwrap();
    let conn = CONNECTOR_ID;
    let ok = drm_mode_crtc {
        crtc_id: CRTC_ID,
        fb_id: fb,
        mode_valid: 1,
        mode: panel_mode(),
        count_connectors: 1,
        set_connectors_ptr: &conn as *const u32 as u64,
        ..Default::default()
    };
    let e = |mut c: drm_mode_crtc| raw(&f, DRM_IOCTL_MODE_SETCRTC, &mut c).unwrap_err();
    assert_eq!(
        e(drm_mode_crtc { x: 1 << 16, ..ok }),
        Errno::ERANGE,
        "16.16 pan"
    );
    assert_eq!(e(drm_mode_crtc { crtc_id: 5, ..ok }), Errno::ENOENT, "CRTC");
    assert_eq!(
        e(drm_mode_crtc { fb_id: 999, ..ok }),
        Errno::ENOENT,
        "framebuffer"
    );
    let mut bad = panel_mode();
    bad.hsync_start = 1000;
    assert_eq!(
        e(drm_mode_crtc { mode: bad, ..ok }),
        Errno::EINVAL,
        "timings"
    );
    bad = panel_mode();
    bad.clock = u32::MAX;
    assert_eq!(e(drm_mode_crtc { mode: bad, ..ok }), Errno::ERANGE, "clock");
    assert_eq!(
        e(drm_mode_crtc { x: 8, ..ok }),
        Errno::ENOSPC,
        "viewport past the framebuffer"
    );
    assert_eq!(
        e(drm_mode_crtc {
            count_connectors: 0,
            ..ok
        }),
        Errno::EINVAL,
        "mode, no connector"
    );
    assert_eq!(
        e(drm_mode_crtc {
            set_connectors_ptr: 8,
            ..ok
        }),
        Errno::EFAULT
    );
    assert_eq!(
        e(drm_mode_crtc {
            set_connectors_ptr: &CRTC_ID as *const u32 as u64,
            ..ok
        }),
        Errno::ENOENT,
        "not a connector"
    );
    let mut other = panel_mode();
    other.htotal += 8;
    assert_eq!(
        e(drm_mode_crtc { mode: other, ..ok }),
        Errno::EINVAL,
        "the panel's mode only"
    );
    let mut c = ok;
    raw(&f, DRM_IOCTL_MODE_SETCRTC, &mut c).unwrap();
    // fb_id -1 keeps the current framebuffer.
    let mut c = drm_mode_crtc {
        fb_id: u32::MAX,
        ..ok
    };
    raw(&f, DRM_IOCTL_MODE_SETCRTC, &mut c).unwrap();
    let s = f.sim().display_stats();
    assert_eq!((s.commits, s.maps, s.mapped), (2, 1, 1));
    set_crtc(&f, CRTC_ID, None).unwrap();
    let mut c = drm_mode_crtc {
        fb_id: u32::MAX,
        ..ok
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_SETCRTC, &mut c),
        Err(Errno::EINVAL),
        "no current framebuffer"
    );
    rmfb(&f, fb).unwrap();
    gem_close(&f, bo).unwrap();
    assert!(f.close().is_empty());
}

#[test]
fn page_flip_event_arrives_at_the_next_vblank_and_the_fd_polls_readable_meanwhile() {
    let f = master_with(manual());
    let sim = f.sim();
    let (bos, fbs) = two_framebuffers(&f);
    set_crtc(&f, CRTC_ID, Some(fbs[0])).unwrap();
    let fd = f.fd().as_raw_fd();
    assert!(!readable(fd));
    flip_with(&f, CRTC_ID, fbs[1], 1, 0xfeed).unwrap();
    assert!(sim.commit_pending());
    assert!(!readable(fd), "nothing before the vblank");
    assert_eq!(f.read(&mut [0u8; 64], true), Err(Errno::EAGAIN));
    // drm_atomic_helper_setup_commit: a nonblocking commit may not overtake the pending one.
    assert_eq!(flip_with(&f, CRTC_ID, fbs[0], 1, 1), Err(Errno::EBUSY));
    assert!(sim.vblank());
    assert!(readable(fd), "POLLIN exactly while an event is queued");
    let dup = f.fd().try_clone_to_owned().unwrap();
    assert!(readable(dup.as_raw_fd()), "and on a dup of the fd");
    let ev = read_events(&f);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (
            ev[0].base.type_,
            ev[0].base.length,
            ev[0].user_data,
            ev[0].crtc_id
        ),
        (2, 32, 0xfeed, CRTC_ID)
    );
    assert!(!readable(fd));
    // A flip without the EVENT flag completes at a vblank too, silently.
    flip_with(&f, CRTC_ID, fbs[0], 0, 0).unwrap();
    assert_eq!(flip_with(&f, CRTC_ID, fbs[1], 0, 0), Err(Errno::EBUSY));
    sim.vblank();
    flip_with(&f, CRTC_ID, fbs[1], 1, 7).unwrap();
    sim.vblank();
    let ev2 = read_events(&f);
    assert_eq!(ev2.len(), 1);
    assert!(ev2[0].sequence > ev[0].sequence, "vblank counter moves on");
    let s = sim.display_stats();
    assert_eq!((s.flips, s.events), (3, 2));
    release(&f, &fbs, &bos);
}

#[test]
fn a_blocking_commit_waits_for_the_pending_flip() {
    let f = master_with(manual());
    let (bos, fbs) = two_framebuffers(&f);
    set_crtc(&f, CRTC_ID, Some(fbs[0])).unwrap();
    flip_with(&f, CRTC_ID, fbs[1], 1, 1).unwrap();
    // SETCRTC is blocking: under the manual clock its wait is the vblank.
    set_crtc(&f, CRTC_ID, Some(fbs[0])).unwrap();
    assert!(!f.sim().commit_pending());
    assert_eq!(read_events(&f).len(), 1, "the flip's event was sent");
    release(&f, &fbs, &bos);
}

#[test]
fn page_flip_on_a_dark_crtc_is_ebusy_and_a_stray_sequence_is_einval() {
    let f = master_with(SimOptions {
        fbdev_console: false,
        ..manual()
    });
    let bo = wc_bo(&f, BYTES_1080P);
    let fb = addfb(&f, fb_cmd(bo, 1920, 1080)).unwrap();
    let mut a = drm_mode_crtc_page_flip {
        crtc_id: CRTC_ID,
        fb_id: fb,
        reserved: 3,
        ..Default::default()
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_PAGE_FLIP, &mut a),
        Err(Errno::EINVAL)
    );
    assert_eq!(flip_with(&f, CRTC_ID, fb, 0, 0), Err(Errno::EBUSY));
    rmfb(&f, fb).unwrap();
    gem_close(&f, bo).unwrap();
}

#[test]
fn drm_read_returns_whole_events_and_zero_when_the_first_does_not_fit() {
    let f = master_with(manual());
    let sim = f.sim();
    let (bos, fbs) = two_framebuffers(&f);
    for (i, &fb) in fbs.iter().enumerate() {
        flip_with(&f, CRTC_ID, fb, 1, i as u64).unwrap();
        sim.vblank();
    }
    assert_eq!(f.events_queued(), 2);
    let mut small = [0u8; 31];
    assert_eq!(f.read(&mut small, true), Ok(0), "too small for one event");
    let mut one_and_a_half = [0u8; 48];
    assert_eq!(
        f.read(&mut one_and_a_half, true),
        Ok(32),
        "whole events only"
    );
    assert_eq!(f.events_queued(), 1);
    assert!(readable(f.fd().as_raw_fd()));
    // A blocking read returns at once when an event is queued.
    assert_eq!(f.read(&mut [0u8; 64], false), Ok(32));
    assert!(!readable(f.fd().as_raw_fd()));
    // ... and waits for one otherwise.
    std::thread::scope(|s| {
        let t = s.spawn(|| f.read(&mut [0u8; 64], false));
        flip_with(&f, CRTC_ID, fbs[0], 1, 9).unwrap();
        sim.vblank();
        assert_eq!(t.join().unwrap(), Ok(32));
    });
    release(&f, &fbs, &bos);
}

#[test]
fn realtime_vblanks_complete_flips_without_help() {
    let f = master_with(SimOptions::default());
    let bo = wc_bo(&f, BYTES_1080P);
    let fb = addfb(&f, fb_cmd(bo, 1920, 1080)).unwrap();
    set_crtc(&f, CRTC_ID, Some(fb)).unwrap();
    flip_with(&f, CRTC_ID, fb, 1, 42).unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(
        f.read(&mut buf, false),
        Ok(32),
        "a blocking read waits for the vblank"
    );
    rmfb(&f, fb).unwrap();
    gem_close(&f, bo).unwrap();
}

#[test]
fn file_close_removes_framebuffers_and_the_console_comes_back() {
    let f = master_with(manual());
    let sim = f.sim();
    let bo = wc_bo(&f, BYTES_1080P);
    let fb = addfb(&f, fb_cmd(bo, 1920, 1080)).unwrap();
    set_crtc(&f, CRTC_ID, Some(fb)).unwrap();
    let report = f.close();
    assert_eq!((report.framebuffers, report.handles), (vec![fb], vec![bo]));
    let s = sim.display_stats();
    assert_eq!((s.framebuffers, s.mapped), (0, 0));
    let g = sim.open_node(Node::Primary).unwrap();
    let mut c = drm_mode_crtc {
        crtc_id: CRTC_ID,
        ..Default::default()
    };
    raw(&g, DRM_IOCTL_MODE_GETCRTC, &mut c).unwrap();
    assert_eq!(c.mode_valid, 1, "drm_lastclose restored the fbdev console");
    assert_ne!(c.fb_id, fb);
}

#[test]
fn unread_events_use_up_the_files_4096_bytes_of_event_space() {
    let f = master_with(SimOptions {
        vblank: VblankClock::Immediate,
        ..Default::default()
    });
    let bo = wc_bo(&f, BYTES_1080P);
    let fb = addfb(&f, fb_cmd(bo, 1920, 1080)).unwrap();
    let per_event = std::mem::size_of::<drm_event_vblank>();
    for i in 0..msm_winsys::sim::EVENT_SPACE_B / per_event {
        flip_with(&f, CRTC_ID, fb, 1, i as u64).unwrap();
    }
    assert_eq!(flip_with(&f, CRTC_ID, fb, 1, 0), Err(Errno::ENOMEM));
    flip_with(&f, CRTC_ID, fb, 0, 0).unwrap();
    let mut buf = vec![0u8; msm_winsys::sim::EVENT_SPACE_B];
    assert_eq!(f.read(&mut buf, true), Ok(msm_winsys::sim::EVENT_SPACE_B));
    flip_with(&f, CRTC_ID, fb, 1, 0).unwrap();
    // Events still queued at close go with the file.
    rmfb(&f, fb).unwrap();
    gem_close(&f, bo).unwrap();
    assert_eq!(f.events_queued(), 1);
    assert!(f.close().is_empty());
}

#[test]
fn the_file_fd_is_created_blocking_so_its_status_flags_are_the_clients() {
    let f = master_with(manual());
    // SAFETY: F_GETFL on the file's own open fd.
    let flags = unsafe { libc::fcntl(f.fd().as_raw_fd(), libc::F_GETFL) };
    assert_eq!(flags & libc::O_NONBLOCK, 0);
}

const VBLANK_RELATIVE: u32 = 0x1;
const VBLANK_EVENT: u32 = 0x0400_0000;
const VBLANK_FLIP: u32 = 0x0800_0000;
const VBLANK_NEXTONMISS: u32 = 0x1000_0000;
const VBLANK_SECONDARY: u32 = 0x2000_0000;
const VBLANK_SIGNAL: u32 = 0x4000_0000;

/// WAIT_VBLANK with `type_`, `sequence` and `signal`; the reply (sequence, tv_sec).
fn wait_vblank(
    k: &dyn Kernel,
    type_: u32,
    sequence: u32,
    signal: u64,
) -> Result<(u32, i64), Errno> {
    let mut w = drm_wait_vblank {
        request: drm_wait_vblank_request {
            type_,
            sequence,
            signal: signal as _,
        },
    };
    raw(k, DRM_IOCTL_WAIT_VBLANK, &mut w)?;
    // SAFETY: the union holds plain integers; the kernel wrote the reply.
    let r = unsafe { w.reply };
    Ok((r.sequence, r.tval_sec))
}

#[test]
fn wait_vblank_rejects_what_drm_wait_vblank_ioctl_rejects() {
    let f = master_with(SimOptions {
        fbdev_console: false,
        ..manual()
    });
    let r = f.sim().open().unwrap();
    assert_eq!(
        wait_vblank(&r, VBLANK_RELATIVE, 0, 0),
        Err(Errno::EACCES),
        "not RENDER_ALLOW"
    );
    assert_eq!(
        wait_vblank(&f, VBLANK_SIGNAL, 0, 0),
        Err(Errno::EINVAL),
        "SIGNAL"
    );
    assert_eq!(
        wait_vblank(&f, VBLANK_FLIP, 0, 0),
        Err(Errno::EINVAL),
        "not a known bit"
    );
    assert_eq!(
        wait_vblank(&f, VBLANK_SECONDARY, 0, 0),
        Err(Errno::EINVAL),
        "no second CRTC"
    );
    assert_eq!(
        wait_vblank(&f, 1 << 1, 0, 0),
        Err(Errno::EINVAL),
        "high CRTC index 1"
    );
    assert_eq!(
        wait_vblank(&f, VBLANK_RELATIVE, 0, 0),
        Err(Errno::EINVAL),
        "the CRTC is off"
    );
}

#[test]
fn wait_vblank_events_and_waits_follow_the_vblank_counter() {
    let f = master_with(manual());
    let sim = f.sim();
    let (now, _) = wait_vblank(&f, VBLANK_RELATIVE, 0, 0).unwrap();
    let (target, _) = wait_vblank(&f, VBLANK_RELATIVE | VBLANK_EVENT, 2, 0x5157).unwrap();
    assert_eq!(target, now + 2);
    sim.vblank();
    assert_eq!(f.events_queued(), 0);
    sim.vblank();
    let ev = read_events(&f);
    assert_eq!(
        (ev.len(), ev[0].base.type_, ev[0].user_data, ev[0].sequence),
        (1, 1, 0x5157, target)
    );
    // An absolute target already passed: at once, or the next one with NEXTONMISS.
    let (seq, _) = wait_vblank(&f, VBLANK_EVENT, now, 1).unwrap();
    assert_eq!(seq, target, "sent at once with the current count");
    assert_eq!(read_events(&f).len(), 1);
    let (next, _) = wait_vblank(&f, VBLANK_EVENT | VBLANK_NEXTONMISS, now, 2).unwrap();
    assert_eq!(next, target + 1);
    // A blocking wait returns at its vblank.
    std::thread::scope(|s| {
        let t = s.spawn(|| wait_vblank(&f, VBLANK_RELATIVE, 1, 0));
        while !t.is_finished() {
            sim.vblank();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(t.join().unwrap().unwrap().0 > target);
    });
    read_events(&f);
    // Turning the CRTC off sends the events still waiting (drm_crtc_vblank_off).
    wait_vblank(&f, VBLANK_RELATIVE | VBLANK_EVENT, 100, 3).unwrap();
    set_crtc(&f, CRTC_ID, None).unwrap();
    assert_eq!(read_events(&f).len(), 1);
}

#[test]
fn a_blocking_wait_vblank_without_vblanks_times_out_with_ebusy() {
    let f = master_with(manual());
    assert_eq!(wait_vblank(&f, VBLANK_RELATIVE, 1, 0), Err(Errno::EBUSY));
}

#[test]
fn realtime_wait_vblank_returns_at_the_next_frame() {
    let f = master_with(SimOptions::default());
    let (now, _) = wait_vblank(&f, VBLANK_RELATIVE, 0, 0).unwrap();
    let (after, _) = wait_vblank(&f, VBLANK_RELATIVE, 1, 0).unwrap();
    assert!(after > now);
    wait_vblank(&f, VBLANK_RELATIVE | VBLANK_EVENT, 1, 9).unwrap();
    let mut buf = [0u8; 32];
    assert_eq!(f.read(&mut buf, false), Ok(32));
}

#[test]
fn closing_the_last_file_restores_the_console_only_if_the_display_changed() {
    let sim = Sim::new("a750").unwrap();
    let r = sim.open().unwrap();
    assert!(r.close().is_empty());
    assert_eq!(sim.display_stats().commits, 0, "nothing to restore");
}

/// What `modetest -s <connector>:<mode> -v` does, at 60 Hz of real time: dumb buffers, SETCRTC,
/// then page flips, each waited for with poll(2) on the file's fd and read as an event.
#[test]
fn a_modetest_style_flip_loop_runs_on_realtime_vblanks() {
    let f = master_with(SimOptions::default());
    let mut bufs = Vec::new();
    for _ in 0..2 {
        let mut d = drm_mode_create_dumb {
            width: 1920,
            height: 1080,
            bpp: 32,
            ..Default::default()
        };
        raw(&f, DRM_IOCTL_MODE_CREATE_DUMB, &mut d).unwrap();
        let mut m = drm_mode_map_dumb {
            handle: d.handle,
            ..Default::default()
        };
        raw(&f, DRM_IOCTL_MODE_MAP_DUMB, &mut m).unwrap();
        f.map(m.offset, d.size as usize).unwrap()[0] = 0xff;
        let fb = addfb(
            &f,
            drm_mode_fb_cmd2 {
                pitches: [d.pitch, 0, 0, 0],
                ..fb_cmd(d.handle, 1920, 1080)
            },
        )
        .unwrap();
        bufs.push((d.handle, fb));
    }
    set_crtc(&f, CRTC_ID, Some(bufs[0].1)).unwrap();
    let mut last_seq = 0;
    for frame in 1..=3u64 {
        flip_with(&f, CRTC_ID, bufs[(frame % 2) as usize].1, 1, frame).unwrap();
        let mut p = libc::pollfd {
            fd: f.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own; a generous timeout only guards against a hang.
        assert_eq!(unsafe { libc::poll(&mut p, 1, 5000) }, 1);
        let ev = read_events(&f);
        assert_eq!((ev.len(), ev[0].user_data), (1, frame));
        assert!(ev[0].sequence > last_seq);
        last_seq = ev[0].sequence;
    }
    for (handle, fb) in bufs {
        rmfb(&f, fb).unwrap();
        let mut d = drm_mode_destroy_dumb { handle };
        raw(&f, DRM_IOCTL_MODE_DESTROY_DUMB, &mut d).unwrap();
    }
    assert!(f.close().is_empty());
}

fn dirty(k: &dyn Kernel, fb_id: u32, flags: u32, clips: &[[u16; 4]], n: u32) -> Result<(), Errno> {
    let mut a = drm_mode_fb_dirty_cmd {
        fb_id,
        flags,
        color: 0,
        num_clips: n,
        clips_ptr: if clips.is_empty() {
            0
        } else {
            clips.as_ptr() as u64
        },
    };
    raw(k, DRM_IOCTL_MODE_DIRTYFB, &mut a)
}

#[test]
fn dirtyfb_checks_the_fb_and_clips_in_the_kernels_order_then_has_nothing_to_flush() {
    // drm_mode_dirtyfb_ioctl: fb lookup (ENOENT), clips and pointer both or neither (EINVAL),
    // pairs for ANNOTATE_COPY (EINVAL), at most DRM_MODE_FB_DIRTY_MAX_CLIPS = 256 (EINVAL), the
    // clips copied in (EFAULT); msm_framebuffer_dirtyfb on a video-mode display: 0.
    let f = master_with(manual());
    let (bos, fbs) = two_framebuffers(&f);
    let clip = [[0u16, 0, 64, 64]; 257];
    assert_eq!(dirty(&f, 999, 0, &[], 0), Err(Errno::ENOENT));
    assert_eq!(dirty(&f, fbs[0], 0, &[], 0), Ok(()));
    assert_eq!(dirty(&f, fbs[0], 0, &[], 1), Err(Errno::EINVAL));
    assert_eq!(dirty(&f, fbs[0], 0, &clip[..1], 0), Err(Errno::EINVAL));
    assert_eq!(dirty(&f, fbs[0], 1, &clip[..1], 1), Err(Errno::EINVAL));
    assert_eq!(dirty(&f, fbs[0], 1, &clip[..2], 2), Ok(()));
    assert_eq!(dirty(&f, fbs[0], 2, &clip, 257), Err(Errno::EINVAL));
    assert_eq!(dirty(&f, fbs[0], 2, &clip, 256), Ok(()));
    // A negative count as the kernel's int sees it.
    assert_eq!(dirty(&f, fbs[0], 0, &clip, u32::MAX), Err(Errno::EINVAL));
    let mut bad = drm_mode_fb_dirty_cmd {
        fb_id: fbs[0],
        num_clips: 1,
        clips_ptr: 8,
        ..Default::default()
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_DIRTYFB, &mut bad),
        Err(Errno::EFAULT)
    );
    // DRM_MASTER: another primary-node file is refused first.
    let other = f.sim().open_node(Node::Primary).unwrap();
    assert_eq!(dirty(&other, fbs[0], 0, &[], 0), Err(Errno::EACCES));
    release(&f, &fbs, &bos);
}

#[test]
fn legacy_gamma_is_unsupported_on_a_crtc_without_a_gamma_size() {
    // dpu registers no legacy gamma size: GETCRTC says 0, GETGAMMA of size 0 copies nothing
    // (another size: EINVAL), SETGAMMA is ENOSYS (drm_crtc_supports_legacy_gamma) before its
    // size is looked at; an unknown CRTC is ENOENT first.
    let f = master_with(manual());
    let mut c = drm_mode_crtc {
        crtc_id: CRTC_ID,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_GETCRTC, &mut c).unwrap();
    assert_eq!(c.gamma_size, 0);
    let mut lut = drm_mode_crtc_lut {
        crtc_id: CRTC_ID,
        ..Default::default()
    };
    assert_eq!(raw(&f, DRM_IOCTL_MODE_GETGAMMA, &mut lut), Ok(()));
    lut.gamma_size = 256;
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_GETGAMMA, &mut lut),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_SETGAMMA, &mut lut),
        Err(Errno::ENOSYS)
    );
    lut.gamma_size = 0;
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_SETGAMMA, &mut lut),
        Err(Errno::ENOSYS)
    );
    lut.crtc_id = 999;
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_GETGAMMA, &mut lut),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_SETGAMMA, &mut lut),
        Err(Errno::ENOENT)
    );
    // SETGAMMA is DRM_MASTER, GETGAMMA is not.
    let other = f.sim().open_node(Node::Primary).unwrap();
    lut.crtc_id = CRTC_ID;
    assert_eq!(raw(&other, DRM_IOCTL_MODE_GETGAMMA, &mut lut), Ok(()));
    assert_eq!(
        raw(&other, DRM_IOCTL_MODE_SETGAMMA, &mut lut),
        Err(Errno::EACCES)
    );
}
