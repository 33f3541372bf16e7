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
