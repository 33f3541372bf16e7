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

use crate::device::{Device, DeviceError, DeviceInfo, ProbeOptions};
use crate::kernel::drm::DrmKernel;
use crate::kernel::ioctl::DrmVersion;
use crate::kernel::KernelError;
use crate::sim::{Node, Sim, SimOptions, VblankClock};

impl Device {
    /// Opens and probes a device node such as `/dev/dri/renderD128`.
    pub fn open_path(path: &Path) -> Result<Device, DeviceError> {
        let k = DrmKernel::open(path).map_err(|e| DeviceError::open(&e))?;
        Device::on_checked(k, ProbeOptions::default())
    }

    /// Opens and probes the first msm render node.
    pub fn open_default() -> Result<Device, DeviceError> {
        let k = DrmKernel::open_default().map_err(|e| DeviceError::open(&e))?;
        Device::on_checked(k, ProbeOptions::default())
    }

    /// Takes ownership of an open DRM fd and probes it.
    pub fn from_fd(fd: OwnedFd) -> Result<Device, DeviceError> {
        Device::from_fd_with(fd, ProbeOptions::default())
    }

    /// Takes ownership of an open DRM fd and probes it with `options`.
    pub fn from_fd_with(fd: OwnedFd, options: ProbeOptions) -> Result<Device, DeviceError> {
        let k = DrmKernel::from_fd(fd).map_err(|e| DeviceError::open(&e))?;
        Device::on_checked(k, options)
    }

    /// Takes ownership of an open DRM fd whose VERSION the caller has read and found to be msm
    /// (`version`: turnip's drmGetVersion at enumeration), and probes it without asking again.
    pub fn from_fd_with_version(
        fd: OwnedFd,
        options: ProbeOptions,
        version: DrmVersion,
    ) -> Result<Device, DeviceError> {
        Device::new_with_version(Box::new(DrmKernel::from_fd_unchecked(fd)), options, version)
    }

    /// A device on a file whose msm check read VERSION: the probe reuses that answer.
    fn on_checked(k: DrmKernel, options: ProbeOptions) -> Result<Device, DeviceError> {
        match k.checked_version().cloned() {
            Some(v) => Device::new_with_version(Box::new(k), options, v),
            None => Device::new(Box::new(k), options),
        }
    }

    /// Takes ownership of a fresh DRM fd of the node `known` was probed on and adopts that probe
    /// ([`Device::new_like`]).
    ///
    /// The fd is not checked with VERSION: the caller opened it from the node it probed.
    pub fn from_fd_like(fd: OwnedFd, known: &DeviceInfo) -> Result<Device, DeviceError> {
        let k = DrmKernel::from_fd_unchecked(fd);
        Device::new_like(Box::new(k), known, ProbeOptions::default())
    }

    /// A device on a new kernel model of chip profile `profile`, opened as its primary node
    /// (`card0`, so its first and only file is DRM master and may flip, as a compositor's is),
    /// with flips completing as they are made (a vblank per commit), so a client that does not
    /// read flip events, as the C tests' flip chains do not, never meets EBUSY for a flip still
    /// pending. The model lives as long as the device's file; a caller that wants its debug API
    /// makes the [`Sim`] itself and uses [`Device::on_sim`].
    pub fn new_sim(profile: &str) -> Result<Device, DeviceError> {
        Device::on_sim_node(&Device::sim_model(profile)?, Node::Primary)
    }

    /// The kernel model [`Device::new_sim`] opens (`msmws_device_new_sim` keeps it for the
    /// model's debug API): chip profile `profile`, flips completing as they are made.
    pub fn sim_model(profile: &str) -> Result<Sim, DeviceError> {
        let options = SimOptions {
            vblank: VblankClock::Immediate,
            ..SimOptions::default()
        };
        Sim::with_options(profile, options).map_err(|e| DeviceError::open(&e))
    }

    /// A device on a new render-node file of the kernel model `sim`, which the caller keeps for
    /// the model's debug API (`msmws_device_sim_wait_idle` does).
    pub fn on_sim(sim: &Sim) -> Result<Device, DeviceError> {
        Device::on_sim_node(sim, Node::Render)
    }

    /// A device on a new file of `sim` opened as `node`.
    pub fn on_sim_node(sim: &Sim, node: Node) -> Result<Device, DeviceError> {
        let file = sim.open_node(node).map_err(|errno| {
            DeviceError::Kernel(KernelError {
                errno,
                call: "open(sim)".into(),
            })
        })?;
        Device::new(Box::new(file), ProbeOptions::default())
    }
}
