//! The definitions the shim stands in front of: libc's own `open`, `ioctl`, `stat`, ..., found
//! with `dlsym(RTLD_NEXT, name)` on first use and cached.
//!
//! Owns: one cached pointer per function. Locks: none (an atomic per function: two threads that
//! resolve the same name at once store the same pointer). `dlsym` itself opens no file and calls
//! none of the functions the shim replaces, so resolving from inside a hook cannot recurse.

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{mode_t, off_t, size_t, ssize_t, DIR, FILE};

/// The next definition of `name` after this library; aborts when there is none (a libc without
/// the function cannot run the program the way it was linked either).
fn resolve(slot: &AtomicPtr<c_void>, name: &CStr) -> *mut c_void {
    let f = slot.load(Ordering::Acquire);
    if !f.is_null() {
        return f;
    }
    // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT searches the objects loaded after us.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    if f.is_null() {
        let msg = b"msmws-shim: libc has no definition of a function the shim replaces\n";
        // SAFETY: write(2) of a static buffer to stderr; nothing else is possible here.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::abort();
        }
    }
    slot.store(f, Ordering::Release);
    f
}

/// The C string of an identifier, at compile time.
macro_rules! c_name {
    ($name:ident) => {{
        const NAME: &CStr =
            match CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes()) {
                Ok(n) => n,
                Err(_) => panic!("function name with a NUL"),
            };
        NAME
    }};
}

/// `next!(fn name(args) -> ret)` defines `real::name`, calling the next definition of `name`.
/// `next!(variadic fn name(fixed; extra) -> ret)` does the same for a C variadic function, passing
/// `extra` as its one variadic argument.
macro_rules! next {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
        /// The next (libc's) definition of this function.
        ///
        /// # Safety
        /// As for the libc function of that name.
        pub unsafe fn $name($($arg: $ty),*) -> $ret {
            static SLOT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
            let f = resolve(&SLOT, c_name!($name));
            // SAFETY: `f` is libc's definition of this very function, whose C prototype is the
            // signature written here.
            let f: unsafe extern "C" fn($($ty),*) -> $ret = unsafe { std::mem::transmute(f) };
            // SAFETY: the caller upholds the function's contract.
            unsafe { f($($arg),*) }
        }
    )*};
    ($(variadic fn $name:ident($($arg:ident: $ty:ty),*; $va:ident: $vty:ty) -> $ret:ty;)*) => {$(
        /// The next (libc's) definition of this variadic function, called with one variadic
        /// argument.
        ///
        /// # Safety
        /// As for the libc function of that name.
        pub unsafe fn $name($($arg: $ty,)* $va: $vty) -> $ret {
            static SLOT: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
            let f = resolve(&SLOT, c_name!($name));
            // SAFETY: `f` is libc's definition of this variadic function, whose C prototype is
            // the fixed arguments written here followed by `...`.
            let f: unsafe extern "C" fn($($ty,)* ...) -> $ret = unsafe { std::mem::transmute(f) };
            // SAFETY: the caller upholds the function's contract.
            unsafe { f($($arg,)* $va) }
        }
    )*};
}

next! {
    variadic fn open(path: *const c_char, flags: c_int; mode: mode_t) -> c_int;
    variadic fn open64(path: *const c_char, flags: c_int; mode: mode_t) -> c_int;
    variadic fn openat(dirfd: c_int, path: *const c_char, flags: c_int; mode: mode_t) -> c_int;
    variadic fn openat64(dirfd: c_int, path: *const c_char, flags: c_int; mode: mode_t) -> c_int;
    variadic fn fcntl(fd: c_int, cmd: c_int; arg: c_ulong) -> c_int;
    variadic fn fcntl64(fd: c_int, cmd: c_int; arg: c_ulong) -> c_int;
    variadic fn ioctl(fd: c_int, request: c_ulong; arg: *mut c_void) -> c_int;
}

next! {
    fn __open_2(path: *const c_char, flags: c_int) -> c_int;
    fn __open64_2(path: *const c_char, flags: c_int) -> c_int;
    fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
    fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int;
    fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE;
    fn fopen64(path: *const c_char, mode: *const c_char) -> *mut FILE;
    fn close(fd: c_int) -> c_int;
    fn dup(fd: c_int) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t;
    fn lseek(fd: c_int, offset: off_t, whence: c_int) -> off_t;
    fn lseek64(fd: c_int, offset: off_t, whence: c_int) -> off_t;
    fn mmap(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off_t) -> *mut c_void;
    fn mmap64(addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: off_t) -> *mut c_void;
    fn stat(path: *const c_char, buf: *mut libc::stat) -> c_int;
    fn stat64(path: *const c_char, buf: *mut libc::stat) -> c_int;
    fn lstat(path: *const c_char, buf: *mut libc::stat) -> c_int;
    fn lstat64(path: *const c_char, buf: *mut libc::stat) -> c_int;
    fn fstat(fd: c_int, buf: *mut libc::stat) -> c_int;
    fn fstat64(fd: c_int, buf: *mut libc::stat) -> c_int;
    fn fstatat(dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int) -> c_int;
    fn fstatat64(dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int) -> c_int;
    fn statx(dirfd: c_int, path: *const c_char, flags: c_int, mask: u32, buf: *mut libc::statx) -> c_int;
    fn access(path: *const c_char, mode: c_int) -> c_int;
    fn faccessat(dirfd: c_int, path: *const c_char, mode: c_int, flags: c_int) -> c_int;
    fn readlink(path: *const c_char, buf: *mut c_char, size: size_t) -> ssize_t;
    fn readlinkat(dirfd: c_int, path: *const c_char, buf: *mut c_char, size: size_t) -> ssize_t;
    fn __readlink_chk(path: *const c_char, buf: *mut c_char, size: size_t, buflen: size_t) -> ssize_t;
    fn realpath(path: *const c_char, resolved: *mut c_char) -> *mut c_char;
    fn __realpath_chk(path: *const c_char, resolved: *mut c_char, resolvedlen: size_t) -> *mut c_char;
    fn opendir(path: *const c_char) -> *mut DIR;
}
