//! The libc entry points the shim replaces. Each one decides from its path or fd whether the call
//! is about the model device; if not, it calls libc's own definition unchanged (the model's own
//! file operations come through here too, and always take that way).
//!
//! Owns: nothing. Locks: only what `fds` and `report` take, briefly; no lock is held while the
//! model runs. Every function catches panics (a shim or model bug) and fails with EIO instead of
//! unwinding into C, and keeps errno as the real call would leave it.
//!
//! C variadic functions (`open`, `openat`, `fcntl`, `ioctl`) cannot be defined in stable Rust.
//! On x86_64 (System V) and aarch64 Linux (AAPCS64; Apple's variant differs), one variadic integer
//! or pointer argument travels exactly where a fixed argument in that position would, so each is
//! defined with its one optional argument as a fixed parameter. A caller that passed none leaves
//! garbage there, which is only forwarded to libc, which ignores it exactly as it would have.

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!(
    "msmws-shim defines C variadic functions with a fixed last parameter, which is only sound \
     on x86_64 and aarch64 Linux"
);

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use libc::{mode_t, off_t, size_t, ssize_t, DIR, FILE};
use msm_winsys::kernel::Kernel;
use msm_winsys::sim::{self, user};
use msm_winsys::Errno;

use crate::fds::{self, DevFile};
use crate::paths::{Node, NodePath, Target, Tree, DRM_MAJOR};
use crate::sharing;
use crate::{device, real, report};

fn errno() -> c_int {
    // SAFETY: __errno_location always returns this thread's errno.
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = e };
}

/// Runs a hook's body; a panic becomes `fail` with errno EIO.
fn boundary<T>(fail: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        set_errno(libc::EIO);
        fail
    })
}

/// `hooks! { fn name(args) -> ret = on_panic => body; ... }` defines each exported libc function:
/// `body` runs inside [`boundary`], and a panic returns `on_panic` with errno EIO.
macro_rules! hooks {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $fail:expr => $body:expr;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// As for the libc function of that name.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: the caller upholds the libc function's contract, which the body forwards.
            // (Some bodies are safe functions: the block is then unused.)
            #[allow(unused_unsafe)]
            boundary($fail, || unsafe { $body })
        }
    )*};
}

/// Drops `files` (which may close model files, making syscalls) and returns `v` with errno as it
/// was before.
fn keep_errno<T>(v: T, files: Vec<Arc<DevFile>>) -> T {
    let e = errno();
    drop(files);
    set_errno(e);
    v
}

/// -1 with errno `e` (the syscall convention).
fn fail(e: Errno) -> c_int {
    set_errno(e.0);
    -1
}

/// What `path` means, once the fake tree exists (before that, and for null, everything passes).
///
/// # Safety
/// `path` is null or a C string.
unsafe fn classify(path: *const c_char) -> (Option<&'static Tree>, Target) {
    match crate::tree() {
        // SAFETY: the caller's contract.
        Some(t) if !path.is_null() => (Some(t), t.classify(unsafe { CStr::from_ptr(path) })),
        _ => (None, Target::Pass),
    }
}

/// Calls `real` with `path` rewritten into the fake tree (a node stands for its placeholder).
///
/// # Safety
/// `path` is null or a C string.
unsafe fn with_path<T>(path: *const c_char, real: impl FnOnce(*const c_char) -> T) -> T {
    // SAFETY: the caller's contract.
    match unsafe { classify(path) } {
        (Some(t), Target::Node(n)) => real(t.placeholder(n).as_ptr()),
        (_, Target::Redirect(p)) => real(p.as_ptr()),
        _ => real(path),
    }
}

// ---- open --------------------------------------------------------------------------------------

/// Opens a model file for `node` and hands the program a dup of its fd, so poll, select and epoll
/// on it are the model's own.
fn open_node(node: Node, flags: c_int) -> c_int {
    let sim = match device::sim() {
        Ok(s) => s,
        Err(_) => return fail(Errno::ENODEV),
    };
    let file = match sim.open_node(node) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let cmd = if flags & libc::O_CLOEXEC != 0 {
        libc::F_DUPFD_CLOEXEC
    } else {
        libc::F_DUPFD
    };
    // SAFETY: fcntl(F_DUPFD) of the model file's own fd.
    let fd = unsafe { real::fcntl(file.fd().as_raw_fd(), cmd, 0) };
    if fd < 0 {
        let e = errno();
        file.close();
        return fail(Errno(e));
    }
    if flags & libc::O_NONBLOCK != 0 {
        // SAFETY: fcntl on the fd just made; O_NONBLOCK is a file status flag of the description.
        unsafe {
            let fl = real::fcntl(fd, libc::F_GETFL, 0);
            real::fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK) as c_ulong);
        }
    }
    let writable = matches!(flags & libc::O_ACCMODE, libc::O_WRONLY | libc::O_RDWR);
    let dev = Arc::new(DevFile::new(file, node, writable));
    let ((), displaced) = fds::edit(|t| t.insert(fd, dev));
    keep_errno(fd, displaced)
}

/// # Safety
/// `path` is null or a C string.
unsafe fn open_path(
    path: *const c_char,
    flags: c_int,
    real: impl FnOnce(*const c_char) -> c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    match unsafe { classify(path) } {
        (_, Target::Node(n)) => open_node(n, flags),
        (_, Target::Redirect(p)) => real(p.as_ptr()),
        _ => real(path),
    }
}

// ---- fd bookkeeping ----------------------------------------------------------------------------

/// `close`: a device fd leaves the table under its lock, so no other thread reuses the number
/// before the entry is gone.
fn close_fd(fd: c_int) -> c_int {
    if !fds::maybe_device(fd) {
        // SAFETY: close of the caller's fd.
        return unsafe { real::close(fd) };
    }
    let (r, displaced) = fds::edit(|t| {
        t.remove(fd);
        // SAFETY: as above.
        unsafe { real::close(fd) }
    });
    keep_errno(r, displaced)
}

/// A new fd `new` (made by `dup`) refers to what `old` does.
fn dup_with(old: c_int, dup: impl FnOnce() -> c_int) -> c_int {
    if !fds::maybe_device(old) {
        return dup();
    }
    let (r, displaced) = fds::edit(|t| {
        let r = dup();
        if r >= 0 {
            if let Some(f) = t.get(old) {
                t.insert(r, f);
            }
        }
        r
    });
    keep_errno(r, displaced)
}

/// `dup2`/`dup3`: `new` now refers to what `old` does, and whatever `new` was is closed.
fn dup_onto(old: c_int, new: c_int, dup: impl FnOnce() -> c_int) -> c_int {
    if !fds::maybe_device(old) && !fds::maybe_device(new) {
        return dup();
    }
    let (r, displaced) = fds::edit(|t| {
        let r = dup();
        if r >= 0 && old != new {
            let f = t.get(old);
            t.remove(new);
            if let Some(f) = f {
                t.insert(new, f);
            }
        }
        r
    });
    keep_errno(r, displaced)
}

fn fcntl_with(fd: c_int, cmd: c_int, real: impl FnOnce() -> c_int) -> c_int {
    match cmd {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => dup_with(fd, real),
        _ => real(),
    }
}

// ---- the device's file operations --------------------------------------------------------------

/// `ioctl` of a device fd: the model's raw ioctl, its errno as the syscall's.
///
/// # Safety
/// As ioctl(2): `arg` is what the request's argument is, for a device fd the kernel's rules.
unsafe fn ioctl_fd(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let Some(f) = fds::lookup(fd) else {
        // Sync-file and dma-buf requests may be about one of the model's own fds (a socket, a
        // memfd), whose real ioctls know nothing of them: the model answers those. Any other
        // request, or fd, costs nothing more than the type test.
        if report::is_fd_object_request(request as u32) {
            // SAFETY: `arg` is the caller's ioctl argument, read and written as the kernel would.
            if let Some(r) = unsafe { sim::fd_ioctl(fd, request as u32, arg) } {
                report::fd_ioctl(request as u32, r);
                return match r {
                    Ok(()) => 0,
                    Err(e) => fail(e),
                };
            }
        }
        // SAFETY: forwarded C contract.
        let r = unsafe { real::ioctl(fd, request, arg) };
        if r == -1 && errno() == libc::ENOTTY {
            report::foreign_enotty(request as u32);
            set_errno(libc::ENOTTY);
        }
        return r;
    };
    // The syscall takes `unsigned int cmd`: the upper bits of a sign-extended int never reach
    // the kernel.
    let request = request as u32;
    // SAFETY: `arg` is the caller's ioctl argument; the model reads and writes it as the kernel
    // would (copy_from_user/copy_to_user, EFAULT for bad pointers).
    let r = unsafe { f.file().ioctl(request as u64, arg) };
    report::ioctl(request, r);
    // SAFETY: `arg` is the argument the model just read and wrote for `request`.
    unsafe { sharing::ioctl(&f, request, arg, r) };
    let ret = match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    };
    keep_errno(ret, vec![f])
}

/// mmap of a device fd: the GEM fake offset names an object, whose memory (a memfd) is mapped
/// with the caller's address, protection and flags.
///
/// # Safety
/// As mmap(2).
unsafe fn mmap_with(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
    real: unsafe fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void,
) -> *mut c_void {
    let dev = if flags & libc::MAP_ANONYMOUS != 0 {
        None
    } else {
        fds::lookup(fd)
    };
    let Some(f) = dev else {
        // SAFETY: forwarded C contract.
        return unsafe { real(addr, len, prot, flags, fd, off) };
    };
    let target = u64::try_from(off)
        .map_err(|_| Errno::EINVAL)
        .and_then(|off_B| f.file().mmap_target(off_B, len as u64));
    report::mmap(target.as_ref().map(drop).map_err(|e| *e));
    let ret = match &target {
        // SAFETY: the object's memfd, held open by `t` for the call; the mapping keeps its own
        // reference to the memory, as a mapping of a GEM object does.
        Ok(t) => unsafe {
            real(
                addr,
                len,
                prot,
                flags,
                t.memfd().as_raw_fd(),
                t.memfd_offset_B() as off_t,
            )
        },
        Err(e) => {
            set_errno(e.0);
            libc::MAP_FAILED
        }
    };
    drop(target);
    keep_errno(ret, vec![f])
}

/// `read(2)` of a device fd: DRM events (`drm_read`), blocking unless the fd's description is
/// O_NONBLOCK. The model fills a buffer of its own, copied out as `copy_to_user` would (EFAULT
/// for a bad buffer). `n > buflen` (a fortified read that would overflow) is left to libc, which
/// aborts.
///
/// # Safety
/// As read(2).
unsafe fn read_with(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    real: impl FnOnce() -> ssize_t,
) -> ssize_t {
    let f = match fds::lookup(fd) {
        Some(f) if n <= buflen => f,
        _ => return real(),
    };
    // SAFETY: F_GETFL of the caller's fd.
    let nonblock = unsafe { real::fcntl(fd, libc::F_GETFL, 0) } & libc::O_NONBLOCK != 0;
    let mut events = vec![0u8; n];
    let ret = match f.file().read(&mut events, nonblock) {
        Ok(len) => match user::write_bytes(buf as u64, &events[..len]) {
            Ok(()) => len as ssize_t,
            Err(e) => fail(e) as ssize_t,
        },
        Err(e) => fail(e) as ssize_t,
    };
    keep_errno(ret, vec![f])
}

/// `write(2)` of a device fd: the model's answer (DRM files cannot be written). Without this the
/// bytes would reach the model file's eventfd and make it poll readable.
fn write_with(fd: c_int, real: impl FnOnce() -> ssize_t) -> ssize_t {
    let Some(f) = fds::lookup(fd) else {
        return real();
    };
    let ret = match f.file().write(f.writable) {
        Ok(n) => n as ssize_t,
        Err(e) => fail(e) as ssize_t,
    };
    keep_errno(ret, vec![f])
}

fn lseek_with(fd: c_int, offset: off_t, whence: c_int, real: impl FnOnce() -> off_t) -> off_t {
    let Some(f) = fds::lookup(fd) else {
        return real();
    };
    let ret = match f.file().llseek(offset, whence) {
        Ok(pos) => pos as off_t,
        Err(e) => fail(e) as off_t,
    };
    keep_errno(ret, vec![f])
}

// ---- stat --------------------------------------------------------------------------------------

const _: () = assert!(std::mem::size_of::<libc::stat>() == std::mem::size_of::<libc::stat64>());

/// A node's stat: the placeholder file's, as a character device 226:minor.
///
/// # Safety
/// `buf` is valid for a `struct stat`.
unsafe fn node_stat(t: &Tree, node: Node, buf: *mut libc::stat) -> c_int {
    // SAFETY: the caller's contract; the placeholder path is a C string.
    let r = unsafe { real::stat(t.placeholder(node).as_ptr(), buf) };
    if r == 0 {
        // SAFETY: stat filled `*buf`.
        let st = unsafe { &mut *buf };
        st.st_mode = libc::S_IFCHR | (st.st_mode & 0o7777);
        st.st_rdev = libc::makedev(DRM_MAJOR, node.minor());
        st.st_size = 0;
        st.st_blocks = 0;
    }
    r
}

/// # Safety
/// `path` is null or a C string; `buf` is valid for a `struct stat`.
unsafe fn stat_path(
    path: *const c_char,
    buf: *mut libc::stat,
    real: impl FnOnce(*const c_char) -> c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    match unsafe { classify(path) } {
        // SAFETY: as above.
        (Some(t), Target::Node(n)) => unsafe { node_stat(t, n, buf) },
        (_, Target::Redirect(p)) => real(p.as_ptr()),
        _ => real(path),
    }
}

/// # Safety
/// `buf` is valid for a `struct stat`.
unsafe fn fstat_with(fd: c_int, buf: *mut libc::stat, real: impl FnOnce() -> c_int) -> c_int {
    match (crate::tree(), fds::lookup(fd)) {
        // SAFETY: the caller's contract.
        (Some(t), Some(f)) => keep_errno(unsafe { node_stat(t, f.node, buf) }, vec![f]),
        _ => real(),
    }
}

/// `fstatat`: an empty path with AT_EMPTY_PATH is about `dirfd` itself.
///
/// # Safety
/// As fstatat(2).
unsafe fn fstatat_with(
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat,
    flags: c_int,
    real: unsafe fn(c_int, *const c_char, *mut libc::stat, c_int) -> c_int,
) -> c_int {
    // SAFETY: the caller's contract (path is a C string when non-null).
    let empty = !path.is_null() && unsafe { *path } == 0;
    if empty && flags & libc::AT_EMPTY_PATH != 0 {
        // SAFETY: forwarded C contract.
        return unsafe { fstat_with(dirfd, buf, || real(dirfd, path, buf, flags)) };
    }
    // SAFETY: forwarded C contract.
    unsafe { stat_path(path, buf, |p| real(dirfd, p, buf, flags)) }
}

/// `statx`: a node (by path, or a device fd with AT_EMPTY_PATH) is its placeholder's statx as a
/// character device.
///
/// # Safety
/// As statx(2).
unsafe fn statx_with(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mask: u32,
    buf: *mut libc::statx,
) -> c_int {
    // SAFETY: the caller's contract (path is a C string when non-null).
    let empty = !path.is_null() && unsafe { *path } == 0;
    let (tree, node) = if empty && flags & libc::AT_EMPTY_PATH != 0 {
        (crate::tree(), fds::lookup(dirfd).map(|f| f.node))
    } else {
        // SAFETY: as above.
        match unsafe { classify(path) } {
            (t, Target::Node(n)) => (t, Some(n)),
            (_, Target::Redirect(p)) => {
                // SAFETY: forwarded C contract.
                return unsafe { real::statx(dirfd, p.as_ptr(), flags, mask, buf) };
            }
            _ => (None, None),
        }
    };
    let (Some(t), Some(node)) = (tree, node) else {
        // SAFETY: forwarded C contract.
        return unsafe { real::statx(dirfd, path, flags, mask, buf) };
    };
    let placeholder = t.placeholder(node);
    // SAFETY: statx of the placeholder path into the caller's buffer.
    let r = unsafe {
        real::statx(
            libc::AT_FDCWD,
            placeholder.as_ptr(),
            flags & !libc::AT_EMPTY_PATH,
            mask,
            buf,
        )
    };
    if r == 0 {
        // SAFETY: statx filled `*buf`.
        let st = unsafe { &mut *buf };
        st.stx_mode = (libc::S_IFCHR | (st.stx_mode as u32 & 0o7777)) as u16;
        st.stx_rdev_major = DRM_MAJOR;
        st.stx_rdev_minor = node.minor();
        st.stx_size = 0;
        st.stx_blocks = 0;
    }
    r
}

// ---- other path functions ----------------------------------------------------------------------

/// `realpath`: resolved inside the fake tree, answered as the path outside it.
///
/// # Safety
/// As realpath(3).
unsafe fn realpath_with(path: *const c_char, resolved: *mut c_char) -> *mut c_char {
    // SAFETY: forwarded C contract.
    let r = unsafe { with_path(path, |p| real::realpath(p, resolved)) };
    if let Some(t) = crate::tree() {
        // SAFETY: realpath's answer is null or a C string in a buffer the caller may write.
        unsafe { t.unredirect(r) };
    }
    r
}

// ---- the exported functions ---------------------------------------------------------------------

const NULL_FILE: *mut FILE = std::ptr::null_mut();
const NULL_DIR: *mut DIR = std::ptr::null_mut();
const NULL_PATH: *mut c_char = std::ptr::null_mut();

hooks! {
    /// `open(2)`. Variadic: `mode` is the optional third argument (module comment).
    fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int = -1
        => open_path(path, flags, |p| real::open(p, flags, mode));
    /// `open64(2)`. Variadic: as `open`.
    fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int = -1
        => open_path(path, flags, |p| real::open64(p, flags, mode));
    /// `_FORTIFY_SOURCE`'s `open` without a mode.
    fn __open_2(path: *const c_char, flags: c_int) -> c_int = -1
        => open_path(path, flags, |p| real::__open_2(p, flags));
    fn __open64_2(path: *const c_char, flags: c_int) -> c_int = -1
        => open_path(path, flags, |p| real::__open64_2(p, flags));
    /// `openat(2)`: only absolute paths can name the nodes (a relative one passes unchanged).
    /// Variadic: `mode` is the optional fourth argument (module comment).
    fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int = -1
        => open_path(path, flags, |p| real::openat(dirfd, p, flags, mode));
    fn openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int = -1
        => open_path(path, flags, |p| real::openat64(dirfd, p, flags, mode));
    fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int = -1
        => open_path(path, flags, |p| real::__openat_2(dirfd, p, flags));
    fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int = -1
        => open_path(path, flags, |p| real::__openat64_2(dirfd, p, flags));
    /// `fopen(3)` (libdrm reads sysfs `uevent` files with it; libc's internal open is not ours).
    fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE = NULL_FILE
        => with_path(path, |p| real::fopen(p, mode));
    fn fopen64(path: *const c_char, mode: *const c_char) -> *mut FILE = NULL_FILE
        => with_path(path, |p| real::fopen64(p, mode));

    /// `close(2)`: a device fd leaves the table; the model file closes with its last fd.
    fn close(fd: c_int) -> c_int = -1 => close_fd(fd);
    fn dup(fd: c_int) -> c_int = -1 => dup_with(fd, || real::dup(fd));
    fn dup2(old: c_int, new: c_int) -> c_int = -1 => dup_onto(old, new, || real::dup2(old, new));
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int = -1
        => dup_onto(old, new, || real::dup3(old, new, flags));
    /// `fcntl(2)`: F_DUPFD and F_DUPFD_CLOEXEC of a device fd make another device fd; every other
    /// command acts on the fd itself (the model file's description: F_GETFL, F_SETFL, ...).
    /// Variadic: `arg` is the optional third argument (module comment).
    fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int = -1
        => fcntl_with(fd, cmd, || real::fcntl(fd, cmd, arg));
    fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int = -1
        => fcntl_with(fd, cmd, || real::fcntl64(fd, cmd, arg));

    /// `ioctl(2)`: every request on a device fd goes to the model, whatever it is.
    /// Variadic: `arg` is the optional third argument (module comment).
    fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int = -1
        => ioctl_fd(fd, request, arg);
    fn mmap(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off_t)
        -> *mut c_void = libc::MAP_FAILED
        => mmap_with(addr, len, prot, flags, fd, off, real::mmap);
    fn mmap64(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off_t)
        -> *mut c_void = libc::MAP_FAILED
        => mmap_with(addr, len, prot, flags, fd, off, real::mmap64);
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t = -1
        => read_with(fd, buf, n, n, || real::read(fd, buf, n));
    /// `_FORTIFY_SOURCE`'s read: an overflowing `n` is libc's to report (it aborts).
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t = -1
        => read_with(fd, buf, n, buflen, || real::__read_chk(fd, buf, n, buflen));
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t = -1
        => write_with(fd, || real::write(fd, buf, n));
    fn lseek(fd: c_int, offset: off_t, whence: c_int) -> off_t = -1
        => lseek_with(fd, offset, whence, || real::lseek(fd, offset, whence));
    fn lseek64(fd: c_int, offset: off_t, whence: c_int) -> off_t = -1
        => lseek_with(fd, offset, whence, || real::lseek64(fd, offset, whence));

    fn stat(path: *const c_char, buf: *mut libc::stat) -> c_int = -1
        => stat_path(path, buf, |p| real::stat(p, buf));
    fn stat64(path: *const c_char, buf: *mut libc::stat) -> c_int = -1
        => stat_path(path, buf, |p| real::stat64(p, buf));
    fn lstat(path: *const c_char, buf: *mut libc::stat) -> c_int = -1
        => stat_path(path, buf, |p| real::lstat(p, buf));
    fn lstat64(path: *const c_char, buf: *mut libc::stat) -> c_int = -1
        => stat_path(path, buf, |p| real::lstat64(p, buf));
    fn fstat(fd: c_int, buf: *mut libc::stat) -> c_int = -1
        => fstat_with(fd, buf, || real::fstat(fd, buf));
    fn fstat64(fd: c_int, buf: *mut libc::stat) -> c_int = -1
        => fstat_with(fd, buf, || real::fstat64(fd, buf));
    fn fstatat(dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int) -> c_int = -1
        => fstatat_with(dirfd, path, buf, flags, real::fstatat);
    fn fstatat64(dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int) -> c_int = -1
        => fstatat_with(dirfd, path, buf, flags, real::fstatat64);
    /// glibc before 2.33 had no stat functions of these names: programs built then call
    /// `__xstat` and friends, with a struct version first (on x86_64 and aarch64 the only one is
    /// today's layout).
    fn __xstat(_ver: c_int, path: *const c_char, buf: *mut libc::stat) -> c_int = -1
        => stat(path, buf);
    fn __xstat64(_ver: c_int, path: *const c_char, buf: *mut libc::stat) -> c_int = -1
        => stat64(path, buf);
    fn __lxstat(_ver: c_int, path: *const c_char, buf: *mut libc::stat) -> c_int = -1
        => lstat(path, buf);
    fn __lxstat64(_ver: c_int, path: *const c_char, buf: *mut libc::stat) -> c_int = -1
        => lstat64(path, buf);
    fn __fxstat(_ver: c_int, fd: c_int, buf: *mut libc::stat) -> c_int = -1 => fstat(fd, buf);
    fn __fxstat64(_ver: c_int, fd: c_int, buf: *mut libc::stat) -> c_int = -1 => fstat64(fd, buf);
    fn __fxstatat(_ver: c_int, dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int)
        -> c_int = -1 => fstatat(dirfd, path, buf, flags);
    fn __fxstatat64(_ver: c_int, dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int)
        -> c_int = -1 => fstatat64(dirfd, path, buf, flags);
    /// `statx(2)`: a node (by path, or a device fd with AT_EMPTY_PATH) is its placeholder's statx
    /// as a character device.
    fn statx(dirfd: c_int, path: *const c_char, flags: c_int, mask: u32, buf: *mut libc::statx)
        -> c_int = -1 => statx_with(dirfd, path, flags, mask, buf);

    fn access(path: *const c_char, mode: c_int) -> c_int = -1
        => with_path(path, |p| real::access(p, mode));
    fn faccessat(dirfd: c_int, path: *const c_char, mode: c_int, flags: c_int) -> c_int = -1
        => with_path(path, |p| real::faccessat(dirfd, p, mode, flags));
    fn readlink(path: *const c_char, buf: *mut c_char, size: size_t) -> ssize_t = -1
        => with_path(path, |p| real::readlink(p, buf, size));
    /// `_FORTIFY_SOURCE`'s readlink: an overflowing `size` is libc's to report.
    fn __readlink_chk(path: *const c_char, buf: *mut c_char, size: size_t, buflen: size_t)
        -> ssize_t = -1
        => if size > buflen { real::__readlink_chk(path, buf, size, buflen) } else { readlink(path, buf, size) };
    fn readlinkat(dirfd: c_int, path: *const c_char, buf: *mut c_char, size: size_t) -> ssize_t = -1
        => with_path(path, |p| real::readlinkat(dirfd, p, buf, size));
    /// `realpath(3)`: resolved inside the fake tree, answered as the path outside it.
    fn realpath(path: *const c_char, resolved: *mut c_char) -> *mut c_char = NULL_PATH
        => realpath_with(path, resolved);
    /// `_FORTIFY_SOURCE`'s realpath: a buffer shorter than PATH_MAX is libc's to report.
    fn __realpath_chk(path: *const c_char, resolved: *mut c_char, resolvedlen: size_t)
        -> *mut c_char = NULL_PATH
        => if resolvedlen < libc::PATH_MAX as size_t {
            real::__realpath_chk(path, resolved, resolvedlen)
        } else {
            realpath_with(path, resolved)
        };
    /// realpath with a null buffer.
    fn canonicalize_file_name(path: *const c_char) -> *mut c_char = NULL_PATH
        => realpath_with(path, std::ptr::null_mut());
    /// `opendir(3)`: `/dev/dri` and the sysfs directories are the fake tree's (their entries are
    /// real files there, so `readdir` needs nothing; the nodes read back as DT_REG entries).
    fn opendir(path: *const c_char) -> *mut DIR = NULL_DIR => with_path(path, |p| real::opendir(p));
}
