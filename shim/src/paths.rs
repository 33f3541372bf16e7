//! The device nodes and the sysfs entries programs look for, and the rewriting of paths to them.
//!
//! Owns: a private directory, made when the library loads and removed at exit, that holds a small
//! fake `/dev/dri` and `/sys` as real files, directories and symlinks:
//! ```text
//! dev/dri/{card0,renderD128}                       empty files standing for the two nodes
//! sys/devices/platform/soc@0/<addr>.gpu/           the GPU's platform device
//!     uevent                                       DRIVER, OF_NAME, OF_FULLNAME, OF_COMPATIBLE_*, MODALIAS
//!     subsystem -> ../../../../bus/platform        (libdrm's bus type is this link's last part)
//!     driver -> ../../../../bus/platform/drivers/adreno
//!     drm/{card0,renderD128}/{uevent,dev,device,subsystem}
//! sys/class/drm/{card0,renderD128} -> ../../devices/platform/soc@0/<addr>.gpu/drm/...
//! sys/dev/char/226:{0,128}         -> ../../devices/platform/soc@0/<addr>.gpu/drm/...
//! ```
//! A path under `/dev/dri`, `/sys/dev/char/226:`, `/sys/class/drm` or `/sys/devices/platform/soc@0`
//! is rewritten to the same path inside that directory, so every libc function that takes a
//! path (stat, access, readlink, realpath, opendir, fopen, ...) sees the fake tree with no
//! special case; only the two nodes themselves need answers of their own (open makes a model
//! file, stat says "character device 226:minor"). Real DRM devices of the host are hidden.
//! Locks: none; the tree is written once before any program code runs and only read after.

use std::ffi::{c_char, CStr, CString};
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use msm_winsys::sim::ChipProfile;

/// DRM's character-device major (`DRM_MAJOR`).
pub const DRM_MAJOR: u32 = 226;

/// The two device nodes of the model device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// `/dev/dri/card0`, minor 0.
    Primary,
    /// `/dev/dri/renderD128`, minor 128.
    Render,
}

impl Node {
    pub const ALL: [Node; 2] = [Node::Primary, Node::Render];

    pub fn minor(self) -> u32 {
        match self {
            Node::Primary => 0,
            Node::Render => 128,
        }
    }

    /// The name under `/dev/dri` and under the device's `drm/` directory.
    pub fn name(self) -> &'static str {
        match self {
            Node::Primary => "card0",
            Node::Render => "renderD128",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Node::Primary => "/dev/dri/card0",
            Node::Render => "/dev/dri/renderD128",
        }
    }

    /// `"primary"` / `"render"`, as the report names them.
    pub fn kind(self) -> &'static str {
        match self {
            Node::Primary => "primary",
            Node::Render => "render",
        }
    }
}

/// Path prefixes the fake tree replaces. The first three end a path component where they end.
const SHADOWED: [&str; 4] = [
    "/dev/dri",
    "/sys/class/drm",
    "/sys/devices/platform/soc@0",
    "/sys/dev/char/226:",
];

/// What a path a program passed means to the shim.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// One of the model's device nodes.
    Node(Node),
    /// A path inside the fake tree: use this one instead.
    Redirect(CString),
    /// Anything else: the program's own path, untouched.
    Pass,
}

/// The private directory holding the fake tree.
#[derive(Debug)]
pub struct Tree {
    root: String,
    /// The process that made it (a forked child inherits the path but must not remove it).
    owner_pid: libc::pid_t,
}

/// Where a part's GPU sits in its device tree: (unit address, SoC it is taken from).
fn gpu_unit_address(profile: &str) -> &'static str {
    match profile {
        "a618" => "5000000", // sc7180
        _ => "3d00000",      // sm8350 (a660), sm8650 (a750)
    }
}

/// The part's first `compatible` string, as its device tree spells it: `qcom,adreno-<id>.<patch>`
/// for parts with a legacy GPU id, the chip id in hex for the others.
fn gpu_compatible(p: &ChipProfile) -> String {
    if p.gpu_id != 0 {
        format!("qcom,adreno-{}.{}", p.gpu_id, p.chip_id & 0xff)
    } else {
        format!("qcom,adreno-{:08x}", p.chip_id)
    }
}

impl Tree {
    /// Makes the fake tree for chip `profile` in a new directory under `$TMPDIR` (or `/tmp`).
    pub fn create(profile: &ChipProfile) -> io::Result<Tree> {
        let base = std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".into());
        let mut template = format!("{base}/msmws-shim.XXXXXX\0").into_bytes();
        // SAFETY: mkdtemp rewrites the X's of a NUL-terminated template we own.
        if unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) }.is_null() {
            return Err(io::Error::last_os_error());
        }
        template.pop();
        let root = String::from_utf8(template).map_err(|_| io::ErrorKind::InvalidData)?;
        let tree = Tree {
            root,
            // SAFETY: getpid has no preconditions.
            owner_pid: unsafe { libc::getpid() },
        };
        if let Err(e) = tree.populate(profile) {
            tree.remove();
            return Err(e);
        }
        Ok(tree)
    }

    fn populate(&self, profile: &ChipProfile) -> io::Result<()> {
        let root = Path::new(&self.root);
        let addr = gpu_unit_address(profile.name);
        let compatible = gpu_compatible(profile);
        let dev_rel = format!("devices/platform/soc@0/{addr}.gpu");
        let dev = root.join("sys").join(&dev_rel);
        std::fs::create_dir_all(root.join("dev/dri"))?;
        std::fs::create_dir_all(root.join("sys/bus/platform/drivers/adreno"))?;
        std::fs::create_dir_all(root.join("sys/class/drm"))?;
        std::fs::create_dir_all(root.join("sys/dev/char"))?;
        std::fs::create_dir_all(&dev)?;
        // The platform device the msm driver binds (headless: the GPU node itself). Its driver
        // is the `adreno` platform driver (adreno_device.c); the DRM driver name userspace sees
        // through DRM_IOCTL_VERSION is "msm".
        std::fs::write(
            dev.join("uevent"),
            format!(
                "DRIVER=adreno\nOF_NAME=gpu\nOF_FULLNAME=/soc@0/gpu@{addr}\n\
                 OF_COMPATIBLE_0={compatible}\nOF_COMPATIBLE_1=qcom,adreno\nOF_COMPATIBLE_N=2\n\
                 MODALIAS=of:NgpuT(null)C{compatible}Cqcom,adreno\n"
            ),
        )?;
        symlink("../../../../bus/platform", dev.join("subsystem"))?;
        symlink(
            "../../../../bus/platform/drivers/adreno",
            dev.join("driver"),
        )?;
        for node in Node::ALL {
            let name = node.name();
            let minor = node.minor();
            let placeholder = root.join("dev/dri").join(name);
            std::fs::write(&placeholder, b"")?;
            std::fs::set_permissions(&placeholder, std::fs::Permissions::from_mode(0o666))?;
            let m = dev.join("drm").join(name);
            std::fs::create_dir_all(&m)?;
            std::fs::write(
                m.join("uevent"),
                format!(
                    "MAJOR={DRM_MAJOR}\nMINOR={minor}\nDEVNAME=dri/{name}\nDEVTYPE=drm_minor\n"
                ),
            )?;
            std::fs::write(m.join("dev"), format!("{DRM_MAJOR}:{minor}\n"))?;
            symlink(format!("../../../{addr}.gpu"), m.join("device"))?;
            symlink("../../../../../../class/drm", m.join("subsystem"))?;
            let minor_rel = format!("{dev_rel}/drm/{name}");
            symlink(
                format!("../../{minor_rel}"),
                root.join("sys/class/drm").join(name),
            )?;
            symlink(
                format!("../../{minor_rel}"),
                root.join(format!("sys/dev/char/{DRM_MAJOR}:{minor}")),
            )?;
        }
        Ok(())
    }

    /// Removes the directory (only in the process that made it).
    pub fn remove(&self) {
        // SAFETY: getpid has no preconditions.
        if unsafe { libc::getpid() } == self.owner_pid {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    /// What `path` stands for. Only absolute paths are rewritten.
    pub fn classify(&self, path: &CStr) -> Target {
        let p = path.to_bytes();
        if !(p.starts_with(b"/dev/dri") || p.starts_with(b"/sys/")) {
            return Target::Pass;
        }
        if let Some(node) = Node::ALL.into_iter().find(|n| n.path().as_bytes() == p) {
            return Target::Node(node);
        }
        let shadowed = SHADOWED.iter().any(|s| {
            let s = s.as_bytes();
            p.starts_with(s) && (s.ends_with(b":") || p.len() == s.len() || p[s.len()] == b'/')
        });
        if !shadowed {
            return Target::Pass;
        }
        let mut redirected = Vec::with_capacity(self.root.len() + p.len());
        redirected.extend_from_slice(self.root.as_bytes());
        redirected.extend_from_slice(p);
        // No NUL inside: both parts come from C strings.
        CString::new(redirected).map_or(Target::Pass, Target::Redirect)
    }

    /// The placeholder file of `node` inside the tree (what stat answers are built from).
    pub fn placeholder(&self, node: Node) -> CString {
        CString::new(format!("{}{}", self.root, node.path())).expect("no NUL in the tree's path")
    }

    /// Turns a resolved path inside the tree back into the path the program asked about
    /// (realpath's answer), in place.
    ///
    /// # Safety
    /// `resolved` is null or a NUL-terminated string the caller may write.
    pub unsafe fn unredirect(&self, resolved: *mut c_char) {
        if resolved.is_null() {
            return;
        }
        // SAFETY: per the contract, a valid C string.
        let s = unsafe { CStr::from_ptr(resolved) }.to_bytes();
        let root = self.root.as_bytes();
        if s.len() > root.len() && s.starts_with(root) && s[root.len()] == b'/' {
            let keep = s.len() - root.len();
            // SAFETY: moves the tail and its NUL to the start of the same buffer (overlapping).
            unsafe { std::ptr::copy(resolved.add(root.len()), resolved, keep + 1) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_strings_follow_the_device_trees() {
        let c = |n| gpu_compatible(ChipProfile::by_name(n).unwrap());
        assert_eq!(c("a618"), "qcom,adreno-618.0");
        assert_eq!(c("a660"), "qcom,adreno-660.1");
        assert_eq!(c("a750"), "qcom,adreno-43051401");
    }

    #[test]
    fn only_the_shadowed_prefixes_are_rewritten() {
        let t = Tree {
            root: "/tmp/x".into(),
            owner_pid: 0,
        };
        let c = |p: &str| t.classify(&CString::new(p).unwrap());
        assert_eq!(c("/dev/dri/renderD128"), Target::Node(Node::Render));
        assert_eq!(c("/dev/dri/card0"), Target::Node(Node::Primary));
        let r = |p: &str| Target::Redirect(CString::new(format!("/tmp/x{p}")).unwrap());
        for p in [
            "/dev/dri",
            "/dev/dri/",
            "/dev/dri/card1",
            "/sys/dev/char/226:128/device/drm",
            "/sys/class/drm",
            "/sys/devices/platform/soc@0/3d00000.gpu/uevent",
        ] {
            assert_eq!(c(p), r(p), "{p}");
        }
        for p in [
            "/dev/drix",
            "/dev/null",
            "/sys/dev/char/4:1",
            "/sys/class/drmx",
            "/proc/self/fd/3",
            "dev/dri/card0",
        ] {
            assert_eq!(c(p), Target::Pass, "{p}");
        }
    }

    #[test]
    fn unredirect_strips_the_root() {
        let t = Tree {
            root: "/tmp/x".into(),
            owner_pid: 0,
        };
        let mut b = *b"/tmp/x/sys/bus/platform\0";
        // SAFETY: a NUL-terminated buffer we own.
        unsafe { t.unredirect(b.as_mut_ptr().cast()) };
        assert_eq!(
            CStr::from_bytes_until_nul(&b).unwrap(),
            c"/sys/bus/platform"
        );
        let mut b = *b"/tmp/xy\0";
        // SAFETY: as above.
        unsafe { t.unredirect(b.as_mut_ptr().cast()) };
        assert_eq!(CStr::from_bytes_until_nul(&b).unwrap(), c"/tmp/xy");
    }
}
