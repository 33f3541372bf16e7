//! Backend choice: the one place that opens a kernel, a real `/dev/dri` node (`kernel::drm`) or a
//! file of the kernel model (`sim`), and probes a [`Device`] on it.
//!
//! Owns: nothing; takes no locks. It is a layer of its own, above the winsys and below the C ABI
//! and the tools (docs/layering.md): `device.rs` sees only the `Kernel` trait, so the winsys
//! cannot tell a phone's kernel from the model, and meets the model only through raw ioctls.
//! The constructors are `Device` methods defined here, not in `device.rs`, so callers keep writing
//! `Device::new_sim("a750")`.

use std::os::fd::OwnedFd;
use std::path::Path;

use crate::device::{Device, DeviceError, ProbeOptions};
use crate::kernel::drm::DrmKernel;
use crate::kernel::KernelError;
use crate::sim::Sim;

impl Device {
    /// Opens and probes a device node such as `/dev/dri/renderD128`.
    pub fn open_path(path: &Path) -> Result<Device, DeviceError> {
        let k = DrmKernel::open(path).map_err(|e| DeviceError::open(&e))?;
        Device::new(Box::new(k), ProbeOptions::default())
    }

    /// Opens and probes the first msm render node.
    pub fn open_default() -> Result<Device, DeviceError> {
        let k = DrmKernel::open_default().map_err(|e| DeviceError::open(&e))?;
        Device::new(Box::new(k), ProbeOptions::default())
    }

    /// Takes ownership of an open DRM fd and probes it.
    pub fn from_fd(fd: OwnedFd) -> Result<Device, DeviceError> {
        let k = DrmKernel::from_fd(fd).map_err(|e| DeviceError::open(&e))?;
        Device::new(Box::new(k), ProbeOptions::default())
    }

    /// A device on a new kernel model of chip profile `profile`. The model lives as long as the
    /// device's file; a caller that wants its debug API makes the [`Sim`] itself and uses
    /// [`Device::on_sim`].
    pub fn new_sim(profile: &str) -> Result<Device, DeviceError> {
        let sim = Sim::new(profile).map_err(|e| DeviceError::open(&e))?;
        Device::on_sim(&sim)
    }

    /// A device on a new file of the kernel model `sim`, which the caller keeps for the model's
    /// debug API (`msmws_device_sim_wait_idle` does).
    pub fn on_sim(sim: &Sim) -> Result<Device, DeviceError> {
        let file = sim.open().map_err(|errno| {
            DeviceError::Kernel(KernelError {
                errno,
                call: "open(sim)".into(),
            })
        })?;
        Device::new(Box::new(file), ProbeOptions::default())
    }
}
