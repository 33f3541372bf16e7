//! `libmsmws_shim.so`: run an unmodified program (libdrm's drmdevice and modetest, Mesa's turnip
//! and freedreno through vulkaninfo, eglinfo, kmscube, piglit) on msm-winsys's kernel model:
//!
//! ```text
//! LD_PRELOAD=target/release/libmsmws_shim.so MSMWS_SHIM_PROFILE=a660 vulkaninfo --summary
//! ```
//!
//! The program sees `/dev/dri/card0` and `/dev/dri/renderD128` (character devices 226:0 and
//! 226:128) and the sysfs entries libdrm reads for a platform device of driver msm; every open of
//! a node is a new file of one model device per process (`src/sim`), and every ioctl, mmap and
//! close on its fds goes to that file. Everything else passes through to libc untouched.
//! docs/mesa.md ("The shim") has the environment variables and the exit report.
//!
//! Why not Mesa's `src/drm-shim`: it answers the generic DRM ioctls (GEM_CLOSE, PRIME, syncobjs,
//! KMS) and mmap itself, from its own handle table, and hands only the driver ioctls to a
//! backend. Here the kernel model is the point: every ioctl on a device fd, generic or msm, must
//! reach the model's raw-ioctl entry, which decodes it the way the kernel does, and dma-buf and
//! sync-file fds are the model's real fds, passed through untouched (their sync-file and dma-buf
//! ioctls go to the model's `sim::fd_ioctl`, as a socket or memfd cannot answer them). So this is a thin layer of
//! our own, and it holds no kernel behaviour: what a kernel does is in `src/sim`, tested there.
//!
//! Modules: [`real`] finds libc's definitions; [`paths`] makes the fake `/dev/dri` and sysfs tree
//! and rewrites paths into it; [`fds`] knows which fds are device fds; [`device`] makes the model
//! device from the environment; [`report`] counts and writes the exit report; [`sharing`] lists
//! PRIME exports and imports and the layout metadata records of shared buffers; `hooks` are the
//! exported libc functions. Locks: `fds`, `report` and `sharing` each have one leaf mutex; no lock is held
//! while the model runs (see each module).
#![deny(unsafe_op_in_unsafe_fn)]

use std::sync::OnceLock;

pub mod device;
pub mod fds;
#[cfg(not(test))]
mod hooks;
pub mod paths;
pub mod real;
pub mod report;
pub mod sharing;

static TREE: OnceLock<paths::Tree> = OnceLock::new();

/// The fake tree, once the library is initialised (until then every call passes through).
pub fn tree() -> Option<&'static paths::Tree> {
    TREE.get()
}

/// Runs when the library is loaded, before the program's `main`: makes the fake tree and
/// registers the exit report. (Not in the unit-test executable, which must not shim itself.)
#[cfg(not(test))]
extern "C" fn init() {
    let r = std::panic::catch_unwind(|| {
        let profile = match device::config() {
            Ok(c) => c.profile.clone(),
            Err(_) => "a750".into(),
        };
        // An unknown profile still gets a tree (a750's identity); opening a node then fails
        // with ENODEV and the report says why.
        let p = msm_winsys::sim::ChipProfile::by_name(&profile)
            .unwrap_or_else(|| msm_winsys::sim::ChipProfile::by_name("a750").expect("a750 exists"));
        match paths::Tree::create(p) {
            Ok(t) => {
                report::init();
                let _ = TREE.set(t);
                // SAFETY: registers a plain function to run at exit().
                unsafe { libc::atexit(at_exit) };
            }
            Err(e) => {
                eprintln!("msmws-shim: cannot make the fake device tree, passing through: {e}")
            }
        }
    });
    if r.is_err() {
        eprintln!("msmws-shim: initialisation panicked, passing through");
    }
}

/// At exit: close every model file still open, as the kernel does when a process ends, write the
/// report (when the program opened a node), and remove the fake tree.
#[cfg(not(test))]
extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(|| {
        report::set_exiting();
        drop(fds::drain());
        if device::made().is_some() {
            report::write();
        }
        if let Some(t) = tree() {
            t.remove();
        }
    });
}

#[cfg(not(test))]
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;
