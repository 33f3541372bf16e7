//! Properties, blobs, ATOMIC and dumb buffers in the kernel model (drm_property.c,
//! drm_mode_object.c, drm_atomic_uapi.c, drm_atomic.c, drm_dumb_buffers.c, msm_gem.c).

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use common::kms::*;
use common::{gem_close, raw, readable, wc_bo};
use msm_winsys::kernel::Kernel;
use msm_winsys::sim::display::{BYTES_1080P, CRTC_ID};
use msm_winsys::sim::kms::*;
use msm_winsys::sim::modeset::{
    DRM_MODE_ATOMIC_ALLOW_MODESET, DRM_MODE_ATOMIC_NONBLOCK, DRM_MODE_ATOMIC_TEST_ONLY,
};
use msm_winsys::sim::{SimFile, SimOptions, VblankClock};
use msm_winsys::uapi::*;
use msm_winsys::Errno;

const EVENT: u32 = 1;

/// An atomic master on a device with a manual vblank.
fn atomic_master() -> SimFile {
    let f = master_with(SimOptions {
        vblank: VblankClock::Manual,
        ..Default::default()
    });
    let mut c = drm_set_client_cap {
        capability: DRM_CLIENT_CAP_ATOMIC,
        value: 1,
    };
    raw(&f, DRM_IOCTL_SET_CLIENT_CAP, &mut c).unwrap();
    f
}

/// An ATOMIC request built object by object.
#[derive(Default)]
struct Req {
    objs: Vec<u32>,
    counts: Vec<u32>,
    props: Vec<u32>,
    values: Vec<u64>,
}

impl Req {
    fn obj(mut self, id: u32, props: &[(u32, u64)]) -> Req {
        self.objs.push(id);
        self.counts.push(props.len() as u32);
        for &(p, v) in props {
            self.props.push(p);
            self.values.push(v);
        }
        self
    }

    fn commit(&self, k: &dyn Kernel, flags: u32, user_data: u64) -> Result<(), Errno> {
        let mut a = drm_mode_atomic {
            flags,
            count_objs: self.objs.len() as u32,
            objs_ptr: self.objs.as_ptr() as u64,
            count_props_ptr: self.counts.as_ptr() as u64,
            props_ptr: self.props.as_ptr() as u64,
            prop_values_ptr: self.values.as_ptr() as u64,
            reserved: 0,
            user_data,
        };
        raw(k, DRM_IOCTL_MODE_ATOMIC, &mut a)
    }
}

fn create_blob(k: &dyn Kernel, data: &[u8]) -> Result<u32, Errno> {
    let mut a = drm_mode_create_blob {
        data: data.as_ptr() as u64,
        length: data.len() as u32,
        blob_id: 0,
    };
    raw(k, DRM_IOCTL_MODE_CREATEPROPBLOB, &mut a).map(|()| a.blob_id)
}

fn destroy_blob(k: &dyn Kernel, id: u32) -> Result<(), Errno> {
    let mut a = drm_mode_destroy_blob { blob_id: id };
    raw(k, DRM_IOCTL_MODE_DESTROYPROPBLOB, &mut a)
}

fn mode_bytes() -> Vec<u8> {
    let m = panel_mode();
    // SAFETY: drm_mode_modeinfo is 68 bytes of integers.
    unsafe { std::slice::from_raw_parts((&m as *const drm_mode_modeinfo).cast::<u8>(), 68) }
        .to_vec()
}

/// The plane properties of a full-screen 1080p plane showing `fb`.
fn plane_props(fb: u32) -> Vec<(u32, u64)> {
    vec![
        (prop::FB_ID, fb as u64),
        (prop::CRTC_ID, CRTC_ID as u64),
        (prop::SRC_X, 0),
        (prop::SRC_Y, 0),
        (prop::SRC_W, 1920 << 16),
        (prop::SRC_H, 1080 << 16),
        (prop::CRTC_X, 0),
        (prop::CRTC_Y, 0),
        (prop::CRTC_W, 1920),
        (prop::CRTC_H, 1080),
    ]
}

/// kmscube's first commit: connector routed, mode blob, active, the primary plane.
fn modeset(mode_blob: u32, fb: u32) -> Req {
    Req::default()
        .obj(CONNECTOR_ID, &[(prop::CRTC_ID, CRTC_ID as u64)])
        .obj(
            CRTC_ID,
            &[(prop::MODE_ID, mode_blob as u64), (prop::ACTIVE, 1)],
        )
        .obj(PRIMARY_PLANE_ID, &plane_props(fb))
}

#[test]
fn obj_getproperties_hides_atomic_properties_from_legacy_clients() {
    let f = master_with(SimOptions::default());
    let get = |f: &dyn Kernel, obj_id, obj_type| {
        let mut ids = [0u32; 16];
        let mut vals = [0u64; 16];
        let mut a = drm_mode_obj_get_properties {
            props_ptr: ids.as_mut_ptr() as u64,
            prop_values_ptr: vals.as_mut_ptr() as u64,
            count_props: 16,
            obj_id,
            obj_type,
        };
        raw(f, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &mut a)
            .map(|()| ids[..a.count_props as usize].to_vec())
    };
    assert_eq!(
        get(&f, PRIMARY_PLANE_ID, DRM_MODE_OBJECT_PLANE),
        Ok(vec![prop::TYPE, prop::IN_FORMATS])
    );
    assert_eq!(
        get(&f, CRTC_ID, DRM_MODE_OBJECT_PLANE),
        Err(Errno::ENOENT),
        "wrong type"
    );
    assert_eq!(get(&f, 0x7777, DRM_MODE_OBJECT_ANY), Err(Errno::ENOENT));
    assert_eq!(
        get(&f, ENCODER_ID, DRM_MODE_OBJECT_ANY),
        Err(Errno::EINVAL),
        "no properties"
    );
    let a = atomic_master();
    assert_eq!(get(&a, CRTC_ID, DRM_MODE_OBJECT_CRTC).unwrap().len(), 4);
    assert_eq!(
        get(&a, PRIMARY_PLANE_ID, DRM_MODE_OBJECT_ANY)
            .unwrap()
            .len(),
        13
    );
}

#[test]
fn getproperty_reports_ranges_enums_and_blobs() {
    let f = atomic_master();
    let get = |id| {
        let mut vals = [0u64; 8];
        let mut enums = [drm_mode_property_enum::default(); 8];
        let mut a = drm_mode_get_property {
            values_ptr: vals.as_mut_ptr() as u64,
            enum_blob_ptr: enums.as_mut_ptr() as u64,
            prop_id: id,
            count_values: 8,
            count_enum_blobs: 8,
            ..Default::default()
        };
        raw(&f, DRM_IOCTL_MODE_GETPROPERTY, &mut a).map(|()| (a, vals, enums))
    };
    let (a, _, enums) = get(prop::TYPE).unwrap();
    let name: String = a
        .name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect();
    assert_eq!(name, "type");
    assert_eq!(a.flags, DRM_MODE_PROP_ENUM | DRM_MODE_PROP_IMMUTABLE);
    assert_eq!((a.count_values, a.count_enum_blobs), (3, 3));
    assert_eq!(enums[1].value, 1);
    let (a, vals, _) = get(prop::IN_FENCE_FD).unwrap();
    assert_eq!(a.flags, DRM_MODE_PROP_SIGNED_RANGE | DRM_MODE_PROP_ATOMIC);
    assert_eq!((vals[0] as i64, vals[1]), (-1, i32::MAX as u64));
    let (a, _, _) = get(prop::MODE_ID).unwrap();
    assert_eq!(
        (a.count_values, a.count_enum_blobs),
        (0, 0),
        "blobs list nothing"
    );
    let (a, vals, _) = get(prop::FB_ID).unwrap();
    assert_eq!((a.count_values, vals[0]), (1, DRM_MODE_OBJECT_FB as u64));
    assert_eq!(
        get(CRTC_ID).map(|_| ()),
        Err(Errno::ENOENT),
        "not a property"
    );
}

#[test]
fn in_formats_blob_lists_ubwc_for_the_8888_formats_only() {
    let f = atomic_master();
    let mut ids = [0u32; 16];
    let mut vals = [0u64; 16];
    let mut a = drm_mode_obj_get_properties {
        props_ptr: ids.as_mut_ptr() as u64,
        prop_values_ptr: vals.as_mut_ptr() as u64,
        count_props: 16,
        obj_id: PRIMARY_PLANE_ID,
        obj_type: DRM_MODE_OBJECT_PLANE,
    };
    raw(&f, DRM_IOCTL_MODE_OBJ_GETPROPERTIES, &mut a).unwrap();
    let i = ids.iter().position(|&p| p == prop::IN_FORMATS).unwrap();
    let blob_id = vals[i] as u32;
    let mut g = drm_mode_get_blob {
        blob_id,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_GETPROPBLOB, &mut g).unwrap();
    let expected = in_formats_blob();
    assert_eq!(g.length as usize, expected.len());
    let mut data = vec![0u8; g.length as usize];
    // A wrong length copies nothing but reports the right one.
    let mut short = drm_mode_get_blob {
        blob_id,
        length: 4,
        data: 8,
    };
    raw(&f, DRM_IOCTL_MODE_GETPROPBLOB, &mut short).unwrap();
    assert_eq!(short.length, g.length);
    g.data = data.as_mut_ptr() as u64;
    raw(&f, DRM_IOCTL_MODE_GETPROPBLOB, &mut g).unwrap();
    assert_eq!(data, expected);
    let word = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
    assert_eq!(
        (word(0), word(8), word(12)),
        (1, 5, 24),
        "version, formats, offset"
    );
    let mods_at = word(20) as usize;
    let mask = u64::from_le_bytes(data[mods_at..mods_at + 8].try_into().unwrap());
    let modifier = u64::from_le_bytes(data[mods_at + 16..mods_at + 24].try_into().unwrap());
    assert_eq!((modifier, mask), (DRM_FORMAT_MOD_QCOM_COMPRESSED, 0b01111));
    let mut none = drm_mode_get_blob {
        blob_id: 0x7777,
        ..Default::default()
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_GETPROPBLOB, &mut none),
        Err(Errno::ENOENT)
    );
}

#[test]
fn blobs_belong_to_their_file_until_destroyed_or_closed() {
    let f = atomic_master();
    let other = f.sim().open_node(msm_winsys::sim::Node::Primary).unwrap();
    assert_eq!(create_blob(&f, &[]), Err(Errno::EINVAL), "empty");
    let mut bad = drm_mode_create_blob {
        data: 8,
        length: 16,
        blob_id: 0,
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_CREATEPROPBLOB, &mut bad),
        Err(Errno::EFAULT)
    );
    let id = create_blob(&f, &mode_bytes()).unwrap();
    assert_eq!(destroy_blob(&other, id), Err(Errno::EPERM), "not its blob");
    assert_eq!(destroy_blob(&f, 0x7777), Err(Errno::EINVAL));
    let leaked = create_blob(&f, b"left for close").unwrap();
    assert_eq!(f.leak_report().blobs, vec![id, leaked]);
    destroy_blob(&f, id).unwrap();
    assert_eq!(destroy_blob(&f, id), Err(Errno::EINVAL), "gone");
    let report = f.close();
    assert_eq!(report.blobs, vec![leaked]);
    let mut g = drm_mode_get_blob {
        blob_id: leaked,
        ..Default::default()
    };
    assert_eq!(
        raw(&other, DRM_IOCTL_MODE_GETPROPBLOB, &mut g),
        Err(Errno::ENOENT),
        "file close destroyed it"
    );
}

#[test]
fn atomic_needs_the_cap_and_checks_its_flags() {
    let legacy = master_with(SimOptions::default());
    assert_eq!(
        Req::default().commit(&legacy, 0, 0),
        Err(Errno::EINVAL),
        "no ATOMIC cap"
    );
    drop(legacy);
    let f = atomic_master();
    let none = Req::default();
    assert_eq!(
        none.commit(&f, 0x8000, 0),
        Err(Errno::EINVAL),
        "unknown flag"
    );
    assert_eq!(none.commit(&f, 2, 0), Err(Errno::EINVAL), "ASYNC");
    assert_eq!(
        none.commit(&f, DRM_MODE_ATOMIC_TEST_ONLY | EVENT, 0),
        Err(Errno::EINVAL),
        "TEST_ONLY with an event"
    );
    assert_eq!(
        none.commit(&f, EVENT, 0),
        Err(Errno::EINVAL),
        "an event needs a CRTC"
    );
    none.commit(&f, 0, 0).unwrap();
}

#[test]
fn atomic_property_errors_follow_drm_atomic_set_property() {
    let f = atomic_master();
    let bo = wc_bo(&f, BYTES_1080P);
    let fb = addfb(&f, fb_cmd(bo, 1920, 1080)).unwrap();
    let one = |obj, p, v| {
        Req::default()
            .obj(obj, &[(p, v)])
            .commit(&f, DRM_MODE_ATOMIC_TEST_ONLY, 0)
    };
    let cases = [
        (0x7777, prop::ACTIVE, 1, Errno::ENOENT, "unknown object"),
        (ENCODER_ID, prop::ACTIVE, 1, Errno::ENOENT, "no properties"),
        (
            CRTC_ID,
            prop::FB_ID,
            1,
            Errno::ENOENT,
            "not the CRTC's property",
        ),
        (CRTC_ID, prop::ACTIVE, 2, Errno::EINVAL, "out of range"),
        (PRIMARY_PLANE_ID, prop::TYPE, 1, Errno::EINVAL, "immutable"),
        (
            PRIMARY_PLANE_ID,
            prop::FB_ID,
            0x7777,
            Errno::EINVAL,
            "no such fb",
        ),
        (
            PRIMARY_PLANE_ID,
            prop::CRTC_ID,
            0x7777,
            Errno::EINVAL,
            "no such CRTC",
        ),
        (
            CRTC_ID,
            prop::MODE_ID,
            0x7777,
            Errno::EINVAL,
            "no such blob",
        ),
        (
            PRIMARY_PLANE_ID,
            prop::IN_FENCE_FD,
            0,
            Errno::EINVAL,
            "not a sync file",
        ),
    ];
    for (obj, p, v, errno, why) in cases {
        assert_eq!(one(obj, p, v), Err(errno), "{why}");
    }
    let junk = create_blob(&f, &[1, 2, 3]).unwrap();
    assert_eq!(
        one(CRTC_ID, prop::MODE_ID, junk as u64),
        Err(Errno::EINVAL),
        "blob length"
    );
    let mut a = drm_mode_atomic {
        count_objs: 1,
        objs_ptr: 8,
        ..Default::default()
    };
    assert_eq!(raw(&f, DRM_IOCTL_MODE_ATOMIC, &mut a), Err(Errno::EFAULT));
    destroy_blob(&f, junk).unwrap();
    rmfb(&f, fb).unwrap();
    gem_close(&f, bo).unwrap();
}

#[test]
fn atomic_check_follows_drm_atomic_check_only() {
    let f = master_with(SimOptions {
        vblank: VblankClock::Manual,
        fbdev_console: false,
        ..Default::default()
    });
    let mut c = drm_set_client_cap {
        capability: DRM_CLIENT_CAP_ATOMIC,
        value: 1,
    };
    raw(&f, DRM_IOCTL_SET_CLIENT_CAP, &mut c).unwrap();
    let bo = wc_bo(&f, BYTES_1080P);
    let fb = addfb(&f, fb_cmd(bo, 1920, 1080)).unwrap();
    let blob = create_blob(&f, &mode_bytes()).unwrap();
    let test = |r: &Req, flags| r.commit(&f, flags | DRM_MODE_ATOMIC_TEST_ONLY, 0);
    let full = modeset(blob, fb);
    assert_eq!(
        test(&full, 0),
        Err(Errno::EINVAL),
        "a modeset needs ALLOW_MODESET"
    );
    test(&full, DRM_MODE_ATOMIC_ALLOW_MODESET).unwrap();
    let no_fb = Req::default().obj(PRIMARY_PLANE_ID, &[(prop::CRTC_ID, CRTC_ID as u64)]);
    assert_eq!(test(&no_fb, 0), Err(Errno::EINVAL), "CRTC without FB");
    let no_crtc = Req::default().obj(PRIMARY_PLANE_ID, &[(prop::FB_ID, fb as u64)]);
    assert_eq!(test(&no_crtc, 0), Err(Errno::EINVAL), "FB without CRTC");
    let mut too_big = plane_props(fb);
    too_big[4] = (prop::SRC_W, 1921 << 16);
    let src = Req::default()
        .obj(CONNECTOR_ID, &[(prop::CRTC_ID, CRTC_ID as u64)])
        .obj(CRTC_ID, &[(prop::MODE_ID, blob as u64), (prop::ACTIVE, 1)])
        .obj(PRIMARY_PLANE_ID, &too_big);
    assert_eq!(
        test(&src, DRM_MODE_ATOMIC_ALLOW_MODESET),
        Err(Errno::ENOSPC)
    );
    let mut wide = plane_props(fb);
    wide[6] = (prop::CRTC_X, i32::MAX as u64);
    let overflow = Req::default().obj(PRIMARY_PLANE_ID, &wide);
    assert_eq!(
        test(&overflow, DRM_MODE_ATOMIC_ALLOW_MODESET),
        Err(Errno::ERANGE)
    );
    let active_no_mode = Req::default().obj(CRTC_ID, &[(prop::ACTIVE, 1)]);
    assert_eq!(
        test(&active_no_mode, DRM_MODE_ATOMIC_ALLOW_MODESET),
        Err(Errno::EINVAL)
    );
    let unrouted = Req::default().obj(CRTC_ID, &[(prop::MODE_ID, blob as u64), (prop::ACTIVE, 1)]);
    assert_eq!(
        test(&unrouted, DRM_MODE_ATOMIC_ALLOW_MODESET),
        Err(Errno::EINVAL),
        "enabled without a connector"
    );
    let off_event = Req::default().obj(CRTC_ID, &[(prop::ACTIVE, 0)]);
    assert_eq!(
        off_event.commit(&f, EVENT, 0),
        Err(Errno::EINVAL),
        "event on a CRTC that stays off"
    );
    let mut out_fd = 5i32;
    let off_fence = Req::default().obj(
        CRTC_ID,
        &[(prop::OUT_FENCE_PTR, &mut out_fd as *mut i32 as u64)],
    );
    assert_eq!(
        off_fence.commit(&f, 0, 0),
        Err(Errno::EINVAL),
        "an out-fence is an event too"
    );
    assert_eq!(out_fd, -1, "OUT_FENCE_PTR gets -1 when the property is set");
    assert_eq!(
        f.sim().display_stats().commits,
        0,
        "TEST_ONLY changes nothing"
    );
    destroy_blob(&f, blob).unwrap();
    rmfb(&f, fb).unwrap();
    gem_close(&f, bo).unwrap();
}

#[test]
fn atomic_commits_like_kmscube_with_out_fences_and_events() {
    let f = atomic_master();
    let sim = f.sim();
    let bos = [wc_bo(&f, BYTES_1080P), wc_bo(&f, BYTES_1080P)];
    let fbs = bos.map(|b| addfb(&f, fb_cmd(b, 1920, 1080)).unwrap());
    let blob = create_blob(&f, &mode_bytes()).unwrap();
    // The first commit: a blocking modeset with an out-fence.
    let mut out_fd: i32 = 5;
    let first = modeset(blob, fbs[0]).obj(
        CRTC_ID,
        &[(prop::OUT_FENCE_PTR, &mut out_fd as *mut i32 as u64)],
    );
    first.commit(&f, DRM_MODE_ATOMIC_ALLOW_MODESET, 0).unwrap();
    assert!(out_fd >= 0);
    // SAFETY: a new sync-file fd the model wrote for us.
    let out = unsafe { OwnedFd::from_raw_fd(out_fd) };
    assert!(
        readable(out.as_raw_fd()),
        "a blocking commit returns after its vblank"
    );
    drop(out);
    // Then nonblocking flips with events.
    let flip = |fb: u32| Req::default().obj(PRIMARY_PLANE_ID, &[(prop::FB_ID, fb as u64)]);
    flip(fbs[1])
        .commit(&f, DRM_MODE_ATOMIC_NONBLOCK | EVENT, 0xabc)
        .unwrap();
    assert_eq!(
        flip(fbs[0]).commit(&f, DRM_MODE_ATOMIC_NONBLOCK | EVENT, 1),
        Err(Errno::EBUSY),
        "the previous commit has not reached its vblank"
    );
    assert!(!readable(f.fd().as_raw_fd()));
    sim.vblank();
    let ev = read_events(&f);
    assert_eq!(
        (ev.len(), ev[0].user_data, ev[0].crtc_id),
        (1, 0xabc, CRTC_ID)
    );
    let s = sim.display_stats();
    assert_eq!((s.commits, s.events, s.maps, s.mapped), (2, 1, 2, 2));
    // The state reads back through the properties; the MODE_ID blob outlives its destroy.
    destroy_blob(&f, blob).unwrap();
    let mut c = drm_mode_crtc {
        crtc_id: CRTC_ID,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_GETCRTC, &mut c).unwrap();
    assert_eq!((c.fb_id, c.mode_valid, c.mode), (fbs[1], 1, panel_mode()));
    let mut g = drm_mode_get_blob {
        blob_id: blob,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_GETPROPBLOB, &mut g).unwrap();
    assert_eq!(g.length, 68, "still the CRTC's mode");
    // Turning everything off frees it.
    let off = Req::default()
        .obj(CONNECTOR_ID, &[(prop::CRTC_ID, 0)])
        .obj(CRTC_ID, &[(prop::MODE_ID, 0), (prop::ACTIVE, 0)])
        .obj(PRIMARY_PLANE_ID, &[(prop::FB_ID, 0), (prop::CRTC_ID, 0)]);
    off.commit(&f, DRM_MODE_ATOMIC_ALLOW_MODESET, 0).unwrap();
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_GETPROPBLOB, &mut g),
        Err(Errno::ENOENT)
    );
    for fb in fbs {
        rmfb(&f, fb).unwrap();
    }
    for bo in bos {
        gem_close(&f, bo).unwrap();
    }
    assert!(f.close().is_empty());
}

#[test]
fn obj_setproperty_commits_one_property_and_dpms_turns_the_crtc_off() {
    let f = atomic_master();
    let set = |obj_id, obj_type, prop_id, value| {
        let mut a = drm_mode_obj_set_property {
            value,
            prop_id,
            obj_id,
            obj_type,
        };
        raw(&f, DRM_IOCTL_MODE_OBJ_SETPROPERTY, &mut a)
    };
    assert_eq!(
        set(0x7777, DRM_MODE_OBJECT_ANY, prop::DPMS, 3),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        set(ENCODER_ID, DRM_MODE_OBJECT_ANY, prop::DPMS, 3),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        set(CRTC_ID, DRM_MODE_OBJECT_CRTC, prop::DPMS, 3),
        Err(Errno::EINVAL),
        "not attached"
    );
    assert_eq!(
        set(CONNECTOR_ID, DRM_MODE_OBJECT_CONNECTOR, prop::DPMS, 9),
        Err(Errno::EINVAL)
    );
    set(CONNECTOR_ID, DRM_MODE_OBJECT_CONNECTOR, prop::DPMS, 3).unwrap();
    let mut c = drm_mode_crtc {
        crtc_id: CRTC_ID,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_GETCRTC, &mut c).unwrap();
    assert_eq!(c.mode_valid, 1, "DPMS off keeps the mode, only ACTIVE goes");
    set(CONNECTOR_ID, DRM_MODE_OBJECT_CONNECTOR, prop::DPMS, 0).unwrap();
    set(CRTC_ID, DRM_MODE_OBJECT_CRTC, prop::VRR_ENABLED, 1).unwrap();
}

#[test]
fn in_fence_fd_is_waited_for_before_the_flip() {
    use msm_winsys::sim::fence::Fence;
    let f = atomic_master();
    let bo = wc_bo(&f, BYTES_1080P);
    let fb = addfb(&f, fb_cmd(bo, 1920, 1080)).unwrap();
    let fence = Fence::new(msm_winsys::sim::fence::new_context(), 1);
    let fd = msm_winsys::sim::sync_file::export(fence.clone(), 0).unwrap();
    let mut props = plane_props(fb);
    props.push((prop::IN_FENCE_FD, fd.as_raw_fd() as u64));
    let r = Req::default().obj(PRIMARY_PLANE_ID, &props);
    std::thread::scope(|s| {
        let t = s.spawn(|| r.commit(&f, DRM_MODE_ATOMIC_NONBLOCK, 0));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!t.is_finished(), "waits for the GPU's fence");
        fence.signal();
        t.join().unwrap().unwrap();
    });
    f.sim().vblank();
    drop(fd);
    rmfb(&f, fb).unwrap();
    gem_close(&f, bo).unwrap();
}

#[test]
fn dumb_buffers_follow_drm_dumb_buffers_and_msm_gem_dumb_create() {
    let f = atomic_master();
    let create = |width, height, bpp| {
        let mut a = drm_mode_create_dumb {
            width,
            height,
            bpp,
            handle: 99,
            pitch: 99,
            size: 99,
            ..Default::default()
        };
        raw(&f, DRM_IOCTL_MODE_CREATE_DUMB, &mut a).map(|()| a)
    };
    assert_eq!(create(0, 1080, 32).unwrap_err(), Errno::EINVAL);
    assert_eq!(create(1920, 1080, 0).unwrap_err(), Errno::EINVAL);
    assert_eq!(
        create(1 << 16, 1 << 16, 32).unwrap_err(),
        Errno::EINVAL,
        "size overflows"
    );
    let d = create(1000, 10, 32).unwrap();
    assert_eq!(
        (d.pitch, d.size),
        (1024 * 4, 40960),
        "32-pixel aligned pitch, page-sized"
    );
    let mut m = drm_mode_map_dumb {
        handle: d.handle,
        ..Default::default()
    };
    raw(&f, DRM_IOCTL_MODE_MAP_DUMB, &mut m).unwrap();
    let mut map = f.map(m.offset, d.size as usize).unwrap();
    map[0] = 7;
    let fb = addfb(
        &f,
        drm_mode_fb_cmd2 {
            pitches: [d.pitch, 0, 0, 0],
            ..fb_cmd(d.handle, 1000, 10)
        },
    )
    .unwrap();
    assert_eq!(f.leak_report().framebuffers, vec![fb]);
    rmfb(&f, fb).unwrap();
    drop(map);
    let mut bad = drm_mode_map_dumb {
        handle: 777,
        ..Default::default()
    };
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_MAP_DUMB, &mut bad),
        Err(Errno::ENOENT)
    );
    let mut destroy = drm_mode_destroy_dumb { handle: d.handle };
    raw(&f, DRM_IOCTL_MODE_DESTROY_DUMB, &mut destroy).unwrap();
    assert_eq!(
        raw(&f, DRM_IOCTL_MODE_DESTROY_DUMB, &mut destroy),
        Err(Errno::EINVAL)
    );
    let r = f.sim().open().unwrap();
    let mut on_render = drm_mode_create_dumb::default();
    assert_eq!(
        raw(&r, DRM_IOCTL_MODE_CREATE_DUMB, &mut on_render),
        Err(Errno::EACCES)
    );
}

#[test]
fn legacy_addfb_picks_the_format_from_bpp_and_depth() {
    let f = atomic_master();
    let bo = wc_bo(&f, BYTES_1080P);
    let add = |bpp, depth| {
        let mut a = drm_mode_fb_cmd {
            width: 1920,
            height: 1080,
            pitch: 1920 * 4,
            bpp,
            depth,
            handle: bo,
            ..Default::default()
        };
        raw(&f, DRM_IOCTL_MODE_ADDFB, &mut a).map(|()| a.fb_id)
    };
    assert_eq!(add(32, 16), Err(Errno::EINVAL));
    let fb = add(32, 24).unwrap();
    set_crtc(&f, CRTC_ID, Some(fb)).unwrap();
    rmfb(&f, fb).unwrap();
    gem_close(&f, bo).unwrap();
}
