//! Model-checked tests (`--cfg shuttle`, docs/reliability.md "Concurrency") that need a device
//! on the kernel model: the handle table's dying-entry path (`bo::table`, its module comment),
//! under every interleaving of a final release with imports of the same dma-buf. They live here,
//! in the tools layer, because the winsys modules may not name a backend (tests/layering.rs);
//! the allocator's and the fence book's model-checked tests sit beside their code in `iova`.
//!
//! Owns: nothing but tests. Locks: none of its own.

use std::os::fd::AsFd;
use std::sync::Arc;

use shuttle::thread;

use crate::bo::{Bo, BoFlags};
use crate::kernel::ioctl;
use crate::sim::{Clock, Sim, SimOptions};
use crate::sync::check;
use crate::uapi::MSM_MADV_WILLNEED;
use crate::{Device, ProbeOptions};

/// A model device with no thread of its own (manual GPU clock, no display), so that every
/// thread of the test is one shuttle schedules.
fn quiet_device() -> (Arc<crate::sim::SimFile>, Arc<Device>) {
    let options = SimOptions {
        clock: Clock::Manual,
        kms: false,
        fbdev_console: false,
        ..Default::default()
    };
    let file = Arc::new(Sim::with_options("a750", options).unwrap().open().unwrap());
    let dev = Device::new(Box::new(file.clone()), ProbeOptions::default()).unwrap();
    (file, Arc::new(dev))
}

/// Thread 1 drops the last reference of an exported buffer (its release closes the handle
/// under the table lock) while `importers` threads import its dma-buf; the second of them
/// also re-exports its buffer and imports that. In every schedule: each import's handle stays
/// open while its buffer lives (the MADVISE after a yield would fail on a closed handle), a
/// re-import returns the same buffer, no handle is closed twice (`BoManager::close` asserts
/// that GEM_CLOSE succeeded), the table ends empty and the file's leak report is empty.
fn release_and_imports(importers: usize) {
    let (file, dev) = quiet_device();
    let a = Bo::new(&dev, 4096, BoFlags::WC | BoFlags::SHARED).unwrap();
    let fd = Arc::new(a.export_dmabuf().unwrap());
    let release = thread::spawn(move || {
        thread::yield_now();
        drop(a);
    });
    let importers: Vec<_> = (0..importers)
        .map(|i| {
            let (dev, fd) = (dev.clone(), fd.clone());
            thread::spawn(move || {
                let b = Bo::import_dmabuf(&dev, fd.as_fd()).unwrap();
                thread::yield_now();
                ioctl::gem_madvise(dev.kernel(), b.handle(), MSM_MADV_WILLNEED)
                    .expect("an imported handle was closed under its buffer");
                if i == 1 {
                    let again = b.export_dmabuf().unwrap();
                    let c = Bo::import_dmabuf(&dev, again.as_fd()).unwrap();
                    assert!(Bo::ptr_eq(&b, &c));
                }
            })
        })
        .collect();
    release.join().unwrap();
    for t in importers {
        t.join().unwrap();
    }
    assert_eq!(dev.bo_manager().stats().live, 0);
    drop((fd, dev));
    let report = Arc::try_unwrap(file).unwrap().close();
    assert!(report.is_empty(), "{report:?}");
}

#[test]
fn shuttle_import_racing_the_final_release_every_schedule() {
    check::dfs("import racing the final release", || release_and_imports(1));
}

#[test]
fn shuttle_two_imports_and_a_reexport_racing_the_final_release() {
    check::pct(
        "two imports and a re-export racing the final release",
        20_000,
        3,
        || release_and_imports(2),
    );
}
