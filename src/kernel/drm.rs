//! The real backend: an open `/dev/dri` node of the msm driver.
//!
//! Owns: the device file descriptor (closed on drop). Locks: none; the kernel serialises.
//! ioctls are retried on EINTR and EAGAIN as libdrm's `drmIoctl` does. Nodes are found with drm-rs
//! and CPU maps are made with memmap2.

use std::ffi::c_void;
use std::fs::OpenOptions;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{ioctl, Kernel};
use crate::Errno;

/// Why a device node could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    pub errno: Errno,
    pub message: String,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.errno)
    }
}

impl std::error::Error for OpenError {}

impl crate::ErrnoError for OpenError {
    fn errno(&self) -> Errno {
        self.errno
    }
}

/// An open file of an msm DRM device.
#[derive(Debug)]
pub struct DrmKernel {
    fd: OwnedFd,
    path: Option<PathBuf>,
    /// What the msm check read (VERSION), kept so the device probe need not ask again.
    version: Option<ioctl::DrmVersion>,
}

impl DrmKernel {
    /// Opens `path` read/write, close-on-exec, and checks that its driver is "msm".
    pub fn open(path: &Path) -> Result<DrmKernel, OpenError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| {
                let errno = Errno(e.raw_os_error().unwrap_or(libc::EIO));
                OpenError {
                    errno,
                    message: format!("cannot open {}: {e}", path.display()),
                }
            })?;
        let mut k = DrmKernel {
            fd: file.into(),
            path: Some(path.to_owned()),
            version: None,
        };
        k.version = Some(k.check_msm()?);
        Ok(k)
    }

    /// Takes ownership of an already open DRM fd and checks that its driver is "msm".
    pub fn from_fd(fd: OwnedFd) -> Result<DrmKernel, OpenError> {
        let mut k = DrmKernel::from_fd_unchecked(fd);
        k.version = Some(k.check_msm()?);
        Ok(k)
    }

    /// Takes ownership of an open DRM fd the caller knows is an msm node (a further file of a
    /// node it has already checked, or one whose VERSION it has read itself): no ioctl.
    pub fn from_fd_unchecked(fd: OwnedFd) -> DrmKernel {
        DrmKernel {
            fd,
            path: None,
            version: None,
        }
    }

    /// The VERSION answer the msm check read (`open`, `from_fd`), `None` for an unchecked file.
    pub fn checked_version(&self) -> Option<&ioctl::DrmVersion> {
        self.version.as_ref()
    }

    fn check_msm(&self) -> Result<ioctl::DrmVersion, OpenError> {
        match ioctl::version_brief(self) {
            Ok(v) if v.name == "msm" => Ok(v),
            Ok(v) => Err(OpenError {
                errno: Errno::ENODEV,
                message: format!(
                    "{} is driven by \"{}\", not \"msm\"",
                    self.describe(),
                    v.name
                ),
            }),
            Err(e) => Err(OpenError {
                errno: if e.errno == Errno::ENOTTY {
                    Errno::ENODEV
                } else {
                    e.errno
                },
                message: format!("{} is not a DRM device: {e}", self.describe()),
            }),
        }
    }

    /// The render nodes (`/dev/dri/renderD*`) on this machine whose driver is msm, in name order.
    pub fn find_render_nodes() -> Vec<PathBuf> {
        let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                drm::node::DrmNode::from_path(p)
                    .is_ok_and(|n| n.ty() == drm::node::NodeType::Render)
            })
            .collect();
        nodes.sort();
        nodes.retain(|p| DrmKernel::open(p).is_ok());
        nodes
    }

    /// Opens the first msm render node, or says clearly why there is none.
    pub fn open_default() -> Result<DrmKernel, OpenError> {
        match DrmKernel::find_render_nodes().first() {
            Some(p) => DrmKernel::open(p),
            None => Err(OpenError {
                errno: Errno::ENOENT,
                message:
                    "no msm render node found under /dev/dri (no Adreno GPU here? try --sim a750)"
                        .into(),
            }),
        }
    }
}

impl Kernel for DrmKernel {
    unsafe fn ioctl(&self, request: u64, arg: *mut c_void) -> Result<(), Errno> {
        loop {
            // SAFETY: the caller guarantees `arg` is valid for `request` (trait contract); the fd
            // is ours and open.
            let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), request as libc::c_ulong, arg) };
            if r != -1 {
                return Ok(());
            }
            match Errno::last() {
                Errno::EINTR | Errno::EAGAIN => continue,
                e => return Err(e),
            }
        }
    }

    fn map(&self, offset_B: u64, size_B: usize) -> Result<memmap2::MmapMut, Errno> {
        // SAFETY: the mapping is of GEM memory that only this process's GPU work and CPU maps
        // touch; like any DRM CPU map its contents may change under the GPU, which callers of
        // `map` accept (they treat it as shared memory, never as Rust-owned data).
        unsafe {
            memmap2::MmapOptions::new()
                .offset(offset_B)
                .len(size_B)
                .map_mut(self.fd.as_raw_fd())
        }
        .map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn reopen(&self) -> Result<Box<dyn Kernel>, Errno> {
        // A new open file description of the same node: /proc/self/fd/N reopens the node itself,
        // which works for fds handed to us without a path too.
        let path = self
            .path
            .clone()
            .unwrap_or_else(|| format!("/proc/self/fd/{}", self.fd.as_raw_fd()).into());
        DrmKernel::open(&path)
            .map(|k| Box::new(k) as Box<dyn Kernel>)
            .map_err(|e| e.errno)
    }

    fn describe(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => format!("fd {}", self.fd.as_raw_fd()),
        }
    }

    /// Reads `/sys/class/devcoredump/devcd*/data` of the dump whose failing device is this DRM
    /// node's device (the kernel keeps the newest dump of a device until it is read or times out).
    fn devcoredump(&self) -> Option<String> {
        let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: fstat writes one `struct stat` we own; the fd is open.
        if unsafe { libc::fstat(self.fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: fstat succeeded.
        let rdev = unsafe { st.assume_init() }.st_rdev;
        let ours = std::fs::canonicalize(format!(
            "/sys/dev/char/{}:{}/device",
            libc::major(rdev),
            libc::minor(rdev)
        ))
        .ok()?;
        std::fs::read_dir("/sys/class/devcoredump")
            .ok()?
            .flatten()
            .find_map(|e| {
                let dev = std::fs::canonicalize(e.path().join("failing_device")).ok()?;
                if dev != ours {
                    return None;
                }
                std::fs::read(e.path().join("data"))
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_node_is_enoent_with_a_sentence() {
        let e = DrmKernel::open(Path::new("/dev/dri/renderD999-does-not-exist")).unwrap_err();
        assert_eq!(e.errno, Errno::ENOENT);
        assert!(e.message.contains("cannot open"), "{e}");
    }

    #[test]
    fn non_drm_file_is_enodev() {
        let e = DrmKernel::open(Path::new("/dev/null")).unwrap_err();
        assert_eq!(e.errno, Errno::ENODEV, "{e}");
        assert!(e.message.contains("not a DRM device"), "{e}");
    }
}
