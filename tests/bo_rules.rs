//! Buffer objects (`msm_winsys::bo`): import dedupe, export rules, the handle closed exactly once,
//! and the cache (buckets, exact flags, idle check, MADVISE, purged buffers, expiry).

mod bo_common;

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use bo_common::{device_on, device_on_node, sim, sim_with};
use msm_winsys::bo::{Bo, BoError, BoFlags};
use msm_winsys::iova::Fence;
use msm_winsys::kernel::ioctl;
use msm_winsys::sim::SimOptions;
use msm_winsys::uapi::*;
use msm_winsys::Errno;
use msm_winsys::ErrnoError;

const WC: BoFlags = BoFlags::WC;

#[test]
fn import_of_a_live_buffer_returns_it_with_its_count_raised() {
    let s = sim("a750");
    let t = device_on(&s);
    let a = Bo::new(&t.dev, 65536, WC | BoFlags::SHARED).unwrap();
    let fd = a.export_dmabuf().unwrap();
    let b = Bo::import_dmabuf(&t.dev, fd.as_fd()).unwrap();
    assert!(Bo::ptr_eq(&a, &b));
    assert_eq!(b.handle(), a.handle());
    assert_eq!(a.ref_count(), 2);
    assert_eq!(t.dev.bo_manager().stats().import_hits, 1);

    // Another file of the same device: a new handle, deduped within that file.
    let u = device_on(&s);
    let c1 = Bo::import_dmabuf(&u.dev, fd.as_fd()).unwrap();
    let c2 = Bo::import_dmabuf(&u.dev, fd.as_fd()).unwrap();
    assert!(Bo::ptr_eq(&c1, &c2));
    assert_eq!(c1.size_B(), 65536, "import size comes from lseek(SEEK_END)");
    assert!(c1.is_imported());
    drop((a, b, c1, c2, fd));
    for t in [t, u] {
        let (leaks, double_closes) = t.finish();
        assert!(leaks.is_empty(), "{leaks:?}");
        assert_eq!(double_closes, 0);
    }
}

#[test]
fn export_is_cloexec_and_rdwr() {
    let t = device_on(&sim("a660"));
    let a = Bo::new(&t.dev, 4096, WC | BoFlags::SHARED).unwrap();
    let fd = a.export_dmabuf().unwrap();
    // SAFETY: fcntl queries on an fd we own.
    let (fdflags, flflags) = unsafe {
        (
            libc::fcntl(fd.as_raw_fd(), libc::F_GETFD),
            libc::fcntl(fd.as_raw_fd(), libc::F_GETFL),
        )
    };
    assert_ne!(fdflags & libc::FD_CLOEXEC, 0);
    assert_eq!(flflags & libc::O_ACCMODE, libc::O_RDWR);
    drop((a, fd));
    assert!(t.finish().0.is_empty());
}

#[test]
fn no_share_export_is_eperm_with_a_clear_error() {
    let t = device_on(&sim("a750"));
    let a = Bo::new(&t.dev, 4096, WC | BoFlags::NO_SHARE).unwrap();
    let e = a.export_dmabuf().unwrap_err();
    assert_eq!(e, BoError::NoShare { handle: a.handle() });
    assert_eq!(e.errno(), Errno::EPERM);
    assert!(e.to_string().contains("NO_SHARE"), "{e}");
    // The kernel agrees when asked directly.
    let k = ioctl::prime_handle_to_fd(t.dev.kernel(), a.handle()).unwrap_err();
    assert_eq!(k.errno, Errno::EPERM);
    drop(a);
    assert!(t.finish().0.is_empty());
}

#[test]
fn shared_and_no_share_together_is_einval_and_changes_nothing() {
    let t = device_on(&sim("a750"));
    let e = Bo::new(&t.dev, 4096, WC | BoFlags::SHARED | BoFlags::NO_SHARE).unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert_eq!(Bo::new(&t.dev, 0, WC).unwrap_err().errno(), Errno::EINVAL);
    assert_eq!(
        Bo::new(&t.dev, 4096, BoFlags::empty()).unwrap_err().errno(),
        Errno::EINVAL
    );
    assert_eq!(t.dev.bo_manager().stats().live, 0);
    assert!(t.finish().0.is_empty());
}

#[test]
fn buffers_created_for_sharing_are_shareable() {
    let t = device_on(&sim("a750"));
    let a = Bo::new(&t.dev, 4096, WC | BoFlags::SHARED).unwrap();
    assert_eq!(a.kernel_flags() & MSM_BO_NO_SHARE, 0);
    let f = ioctl::gem_info_value(t.dev.kernel(), a.handle(), MSM_INFO_GET_FLAGS, 0).unwrap();
    assert_eq!(f as u32 & MSM_BO_NO_SHARE, 0);
    assert!(a.is_shared());
    drop(a.export_dmabuf().unwrap());
    drop(a);
    assert!(t.finish().0.is_empty());
}

#[test]
fn the_handle_is_closed_exactly_once_when_the_last_reference_goes() {
    let t = device_on(&sim("a750"));
    let a = Bo::new(&t.dev, 4096, WC | BoFlags::SHARED).unwrap();
    let fd = a.export_dmabuf().unwrap();
    let b = a.clone();
    let c = Bo::import_dmabuf(&t.dev, fd.as_fd()).unwrap();
    let closes = || t.closes.ok.load(std::sync::atomic::Ordering::Relaxed);
    drop(a);
    drop(b);
    assert_eq!(closes(), 0);
    assert!(t.file.leak_report().handles.contains(&c.handle()));
    drop(c);
    assert_eq!(closes(), 1);
    drop(fd);
    let (leaks, double_closes) = t.finish();
    assert!(leaks.is_empty(), "{leaks:?}");
    assert_eq!(double_closes, 0);
}

#[test]
fn a_freed_private_buffer_is_reused_from_the_cache() {
    let t = device_on(&sim("a750"));
    let a = Bo::new(&t.dev, 3 * 4096 - 100, WC).unwrap();
    assert_eq!(
        a.size_B(),
        3 * 4096,
        "small buffers get their bucket's page count"
    );
    let h = a.handle();
    drop(a);
    assert_eq!(t.dev.bo_manager().cache_stats().cached, 1);
    let b = Bo::new(&t.dev, 3 * 4096, WC).unwrap();
    assert_eq!(b.handle(), h);
    // WILLNEED again: the kernel reports it retained.
    assert!(ioctl::gem_madvise(t.dev.kernel(), h, MSM_MADV_WILLNEED).unwrap());
    let st = t.dev.bo_manager().cache_stats();
    assert_eq!((st.hits, st.cached), (1, 0));
    drop(b);
    assert!(t.finish().0.is_empty());
}

#[test]
fn bucket_sizes_step_by_quarters_above_16_pages() {
    let t = device_on(&sim("a750"));
    for (ask, got) in [
        (17 * 4096, 20 * 4096),
        (21 * 4096, 24 * 4096),
        (33 * 4096, 40 * 4096),
        (1 << 20, 1 << 20),
        ((1 << 20) + 1, 5 << 18),
    ] {
        assert_eq!(Bo::new(&t.dev, ask, WC).unwrap().size_B(), got, "{ask:#x}");
    }
    // Too big for the cache: exactly the pages asked for, and closed on release.
    let big = Bo::new(&t.dev, (64 << 20) + 4096, WC).unwrap();
    assert_eq!(big.size_B(), (64 << 20) + 4096);
    drop(big);
    assert_eq!(t.dev.bo_manager().cache_stats().cached, 5);
    assert!(t.finish().0.is_empty());
}

#[test]
fn cache_flags_must_match_exactly() {
    let t = device_on(&sim("a750"));
    let h = Bo::new(&t.dev, 8192, WC).unwrap().handle();
    let b = Bo::new(&t.dev, 8192, BoFlags::CACHED).unwrap();
    assert_ne!(b.handle(), h);
    let c = Bo::new(&t.dev, 8192, WC | BoFlags::GPU_READONLY).unwrap();
    assert_ne!(c.handle(), h);
    let d = Bo::new(&t.dev, 8192, WC).unwrap();
    assert_eq!(d.handle(), h);
    drop((b, c, d));
    assert!(t.finish().0.is_empty());
}

#[test]
fn a_busy_buffer_waits_in_the_cache_until_its_fence_is_in_the_book() {
    let t = device_on(&sim("a750"));
    let a = Bo::new(&t.dev, 4096, WC).unwrap();
    let h = a.handle();
    a.add_fence(Fence::Queue {
        queue_id: 0,
        seqno: 5,
    });
    drop(a);
    let b = Bo::new(&t.dev, 4096, WC).unwrap();
    assert_ne!(b.handle(), h, "busy: not handed out");
    t.dev.bo_manager().timelines().signal_queue(0, 5);
    let c = Bo::new(&t.dev, 4096, WC).unwrap();
    assert_eq!(c.handle(), h, "idle now, known without an ioctl");
    drop((b, c));
    assert!(t.finish().0.is_empty());
}

#[test]
fn exported_and_imported_buffers_are_never_cached() {
    let t = device_on(&sim("a750"));
    let a = Bo::new(&t.dev, 4096, WC).unwrap();
    let fd = a.export_dmabuf().unwrap();
    drop(a);
    let b = Bo::import_dmabuf(&t.dev, fd.as_fd()).unwrap();
    drop(b);
    assert_eq!(t.dev.bo_manager().cache_stats().cached, 0);
    drop(fd);
    assert!(t.finish().0.is_empty());
}

#[test]
fn a_purged_cached_buffer_is_never_returned() {
    let s = sim("a750");
    let t = device_on(&s);
    let a = Bo::new(&t.dev, 4 * 4096, WC).unwrap();
    // Give it pages (a CPU map), as a used buffer has.
    let off = ioctl::gem_info_value(t.dev.kernel(), a.handle(), MSM_INFO_GET_OFFSET, 0).unwrap();
    let mut map = t.dev.kernel().map(off, 4 * 4096).unwrap();
    map[0] = 0xaa;
    drop(map);
    let old = a.handle();
    drop(a);
    assert_eq!(
        s.memory_pressure(),
        4,
        "the cached DONTNEED buffer is purged"
    );
    let b = Bo::new(&t.dev, 4 * 4096, WC).unwrap();
    let st = t.dev.bo_manager().cache_stats();
    assert_eq!((st.hits, st.purged, st.cached), (0, 1, 0));
    // Whatever number it got, the buffer handed out is a live, retained one.
    assert!(ioctl::gem_madvise(t.dev.kernel(), b.handle(), MSM_MADV_WILLNEED).unwrap());
    let _ = old;
    drop(b);
    assert!(t.finish().0.is_empty());
}

#[test]
fn cached_buffers_expire_without_another_free() {
    let t = device_on(&sim("a750"));
    t.dev
        .bo_manager()
        .set_cache_max_age(Duration::from_millis(40));
    let a = Bo::new(&t.dev, 4096, WC).unwrap();
    let h = a.handle();
    drop(a);
    assert_eq!(t.file.leak_report().handles, vec![h]);
    // Nothing else happens on the device: the reaper alone closes it.
    let start = std::time::Instant::now();
    while t.dev.bo_manager().cache_stats().expired == 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "never expired");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(t.dev.bo_manager().cache_stats().expired, 1);
    assert_eq!(t.dev.bo_manager().cache_stats().cached, 0);
    assert!(t.file.leak_report().handles.is_empty());
    assert!(t.finish().0.is_empty());
}

#[test]
fn a_flip_chain_keeps_its_buffers_mapped_until_it_is_destroyed() {
    use msm_winsys::bo::{FbLayout, FlipChain, DRM_FORMAT_XRGB8888};
    use msm_winsys::sim::display::{BYTES_1080P, CRTC_ID};
    let client = device_on(&sim("a750"));
    // The compositor is the display's master and flips back to back: commits complete at once.
    let comp_sim = sim_with(
        "a750",
        SimOptions {
            vblank: msm_winsys::sim::VblankClock::Immediate,
            ..Default::default()
        },
    );
    let comp = device_on_node(&comp_sim, msm_winsys::sim::Node::Primary);
    let layout = FbLayout {
        width: 1920,
        height: 1080,
        fourcc: DRM_FORMAT_XRGB8888,
        pitch_B: 1920 * 4,
        offset_B: 0,
    };
    let bufs: Vec<Bo> = (0..3)
        .map(|_| Bo::new(&client.dev, BYTES_1080P, WC | BoFlags::SHARED).unwrap())
        .collect();
    let fds: Vec<_> = bufs.iter().map(|b| b.export_dmabuf().unwrap()).collect();
    let chain = FlipChain::new(&comp.dev, CRTC_ID);
    let idx: Vec<usize> = fds
        .iter()
        .map(|fd| chain.import_dmabuf(fd.as_fd(), layout).unwrap())
        .collect();
    for i in 0..9 {
        chain.flip(idx[i % 3]).unwrap();
    }
    let s = comp_sim.display_stats();
    assert_eq!((s.maps, s.unmaps, s.mapped), (3, 0, 3));
    assert_eq!(
        chain.remove(idx[2]).unwrap_err(),
        BoError::OnScreen { index: idx[2] }
    );
    chain.remove(idx[0]).unwrap();
    assert_eq!(
        comp_sim.display_stats().unmaps,
        1,
        "its handle went with it"
    );
    drop(chain);
    let s = comp_sim.display_stats();
    assert_eq!((s.framebuffers, s.mapped, s.unmaps), (0, 0, 3));
    drop((bufs, fds));
    for t in [client, comp] {
        let (leaks, double_closes) = t.finish();
        assert!(leaks.is_empty(), "{leaks:?}");
        assert_eq!(double_closes, 0);
    }
}
