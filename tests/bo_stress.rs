//! Stress: 8 threads importing, exporting and releasing the same dma-bufs on one device file,
//! against the kernel model with its asynchronous clock. Ends with no double close (the model's
//! GEM_CLOSE of an unknown handle is EINVAL; every one is counted), every handle import handed out
//! alive until released, and an empty leak report.
//!
//! Iterations: `MSMWS_BO_STRESS_ITERS` per thread (default 100,000, so 800,000 in all; about 5 s
//! in a debug build on 2 cores).

mod bo_common;

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bo_common::{device_on, sim};
use msm_winsys::bo::{Bo, BoFlags};
use msm_winsys::kernel::ioctl;
use msm_winsys::uapi::MSM_MADV_WILLNEED;

const THREADS: usize = 8;
const DMABUFS: usize = 4;

#[test]
fn eight_threads_import_export_release_the_same_dmabufs() {
    let per_thread: u64 = std::env::var("MSMWS_BO_STRESS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let s = sim("a750");
    let t = device_on(&s);
    // The dma-bufs outlive their exporting buffers: only the fds hold them, so every import
    // that finds no live buffer opens a handle and every last release closes it.
    let fds: Arc<Vec<OwnedFd>> = Arc::new(
        (0..DMABUFS)
            .map(|i| {
                let bo =
                    Bo::new(&t.dev, 4096 * (i as u64 + 1), BoFlags::WC | BoFlags::SHARED).unwrap();
                bo.export_dmabuf().unwrap()
            })
            .collect(),
    );
    assert_eq!(t.dev.bo_manager().stats().live, 0);

    let dead_handles = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|n| {
            let dev = t.dev.clone();
            let fds = fds.clone();
            let dead = dead_handles.clone();
            std::thread::spawn(move || {
                let mut held: Vec<Bo> = Vec::new();
                for i in 0..per_thread {
                    let k = (i as usize * 7 + n) % DMABUFS;
                    let bo = Bo::import_dmabuf(&dev, fds[k].as_fd()).unwrap();
                    assert_eq!(bo.size_B(), 4096 * (k as u64 + 1));
                    // The handle import gave back must be alive while we hold the buffer.
                    if ioctl::gem_madvise(dev.kernel(), bo.handle(), MSM_MADV_WILLNEED).is_err() {
                        dead.fetch_add(1, Ordering::Relaxed);
                    }
                    if i % 8 == 0 {
                        // Re-export and re-import: the same buffer comes back.
                        let fd = bo.export_dmabuf().unwrap();
                        let again = Bo::import_dmabuf(&dev, fd.as_fd()).unwrap();
                        assert!(Bo::ptr_eq(&bo, &again));
                    }
                    // Vary lifetimes: sometimes keep it across a few iterations.
                    if i % 3 == 0 {
                        held.push(bo);
                        if held.len() > 2 {
                            held.remove(0);
                        }
                    }
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let elapsed = start.elapsed();
    let st = t.dev.bo_manager().stats();
    eprintln!(
        "bo_stress: {THREADS} threads x {per_thread} iterations in {elapsed:.2?}: {} GEM_CLOSEs, \
         {} import hits, {} takeovers of a dying buffer's handle",
        st.closes, st.import_hits, st.import_takeovers
    );
    assert_eq!(st.live, 0);
    assert_eq!(
        dead_handles.load(Ordering::Relaxed),
        0,
        "an imported handle was closed under us"
    );
    drop(fds);
    let ok_closes = t.closes.ok.load(Ordering::Relaxed);
    let (leaks, double_closes) = t.finish();
    assert_eq!(
        double_closes, 0,
        "GEM_CLOSE of an unknown handle (double close)"
    );
    assert!(ok_closes > 0);
    assert!(leaks.is_empty(), "{leaks:?}");
}
