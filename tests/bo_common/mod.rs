//! Helpers for the buffer tests: a `Device` on a model file the test keeps a handle to (for the
//! leak report), with every GEM_CLOSE counted and a failed one (a double close) recorded; and
//! the observing kernel that counts them, which other tests use to record requests.
#![allow(dead_code, non_snake_case)]

use std::ffi::c_void;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use msm_winsys::kernel::Kernel;
use msm_winsys::sim::{Node, Sim, SimFile, SimOptions};
use msm_winsys::uapi::DRM_IOCTL_GEM_CLOSE;
use msm_winsys::{Device, Errno, ProbeOptions};

/// GEM_CLOSE outcomes seen on one file.
#[derive(Debug, Default)]
pub struct CloseCounts {
    pub ok: AtomicU64,
    /// GEM_CLOSE of a handle the file does not have: EINVAL (a double close).
    pub einval: AtomicU64,
}

/// What an [`Observed`] kernel calls after each ioctl: the request and its result.
pub type Observer = Box<dyn Fn(u64, &Result<(), Errno>) + Send + Sync>;

/// Forwards to a shared model file and shows every ioctl's request and result to an observer
/// (the buffer tests count GEM_CLOSE results; the probe tests record requests).
pub struct Observed {
    pub file: Arc<SimFile>,
    observe: Observer,
}

impl Observed {
    pub fn new(file: Arc<SimFile>, observe: Observer) -> Observed {
        Observed { file, observe }
    }
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("file", &self.file)
            .finish()
    }
}

impl Kernel for Observed {
    unsafe fn ioctl(&self, request: u64, arg: *mut c_void) -> Result<(), Errno> {
        // SAFETY: forwarded unchanged; the caller upholds `Kernel::ioctl`'s contract.
        let r = unsafe { self.file.ioctl(request, arg) };
        (self.observe)(request, &r);
        r
    }
    fn map(&self, offset_B: u64, size_B: usize) -> Result<memmap2::MmapMut, Errno> {
        self.file.map(offset_B, size_B)
    }
    fn fd(&self) -> BorrowedFd<'_> {
        self.file.fd()
    }
    fn reopen(&self) -> Result<Box<dyn Kernel>, Errno> {
        self.file.reopen()
    }
    fn describe(&self) -> String {
        self.file.describe()
    }
}

/// A probed device on a new file of `sim`, plus the file and its close counters.
pub struct TestDevice {
    pub dev: Arc<Device>,
    pub file: Arc<SimFile>,
    pub closes: Arc<CloseCounts>,
}

pub fn device_on(sim: &Sim) -> TestDevice {
    device_on_node(sim, Node::Render)
}

/// As [`device_on`], on the primary node (the first such file is the device's master).
pub fn device_on_node(sim: &Sim, node: Node) -> TestDevice {
    let file = Arc::new(sim.open_node(node).unwrap());
    let closes = Arc::new(CloseCounts::default());
    let counts = closes.clone();
    let k = Observed::new(
        file.clone(),
        Box::new(move |request, r| {
            if request == DRM_IOCTL_GEM_CLOSE {
                match r {
                    Ok(()) => counts.ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counts.einval.fetch_add(1, Ordering::Relaxed),
                };
            }
        }),
    );
    let dev = Arc::new(Device::new(Box::new(k), ProbeOptions::default()).unwrap());
    TestDevice { dev, file, closes }
}

pub fn sim(profile: &str) -> Sim {
    Sim::new(profile).unwrap()
}

pub fn sim_with(profile: &str, options: SimOptions) -> Sim {
    Sim::with_options(profile, options).unwrap()
}

impl TestDevice {
    /// Drops the device (flushing the cache) and returns the file's leak report and the number of
    /// double closes seen.
    pub fn finish(self) -> (msm_winsys::sim::LeakReport, u64) {
        let TestDevice { dev, file, closes } = self;
        // The cache's reaper may hold the device for a moment; whoever drops it last closes it.
        drop(dev);
        let start = std::time::Instant::now();
        while Arc::strong_count(&file) > 1 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "a buffer still holds the device"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let file = Arc::try_unwrap(file).expect("the device released its file");
        (file.close(), closes.einval.load(Ordering::Relaxed))
    }
}
