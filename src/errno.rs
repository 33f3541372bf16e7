//! Kernel errno values as a type, with their names for messages, and the trait by which every
//! error type of the crate says which errno stands for it.
//!
//! Owns: nothing but the mapping from numbers to names. Takes no locks. The bottom of the layers
//! (docs/layering.md): every module may use it, it uses none.

use std::fmt;

/// A positive kernel errno (`EINVAL` = 22). The kernel's `ETOOSMALL` (525) is included because
/// GEM_INFO(GET_METADATA) returns it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    pub const EPERM: Errno = Errno(libc::EPERM);
    pub const EIO: Errno = Errno(libc::EIO);
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    pub const EINTR: Errno = Errno(libc::EINTR);
    pub const EBADF: Errno = Errno(libc::EBADF);
    pub const EAGAIN: Errno = Errno(libc::EAGAIN);
    pub const ENOMEM: Errno = Errno(libc::ENOMEM);
    pub const EACCES: Errno = Errno(libc::EACCES);
    pub const EFAULT: Errno = Errno(libc::EFAULT);
    pub const EBUSY: Errno = Errno(libc::EBUSY);
    pub const ENODEV: Errno = Errno(libc::ENODEV);
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    pub const EMFILE: Errno = Errno(libc::EMFILE);
    pub const ENOTTY: Errno = Errno(libc::ENOTTY);
    pub const ENOSPC: Errno = Errno(libc::ENOSPC);
    pub const EPIPE: Errno = Errno(libc::EPIPE);
    pub const ERANGE: Errno = Errno(libc::ERANGE);
    pub const ETIME: Errno = Errno(libc::ETIME);
    pub const ETIMEDOUT: Errno = Errno(libc::ETIMEDOUT);
    pub const EALREADY: Errno = Errno(libc::EALREADY);
    pub const EOVERFLOW: Errno = Errno(libc::EOVERFLOW);
    pub const EOPNOTSUPP: Errno = Errno(libc::EOPNOTSUPP);
    pub const EEXIST: Errno = Errno(libc::EEXIST);
    pub const ENOSYS: Errno = Errno(libc::ENOSYS);
    pub const ECANCELED: Errno = Errno(libc::ECANCELED);
    /// Kernel-internal `ETOOSMALL`, returned to userspace by GET_METADATA.
    pub const ETOOSMALL: Errno = Errno(525);

    /// The errno of the last failed libc call on this thread.
    pub fn last() -> Errno {
        Errno(
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }

    /// The symbolic name, `"EINVAL"`, or `"errno 1234"` for numbers not listed here.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        let n = match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EBUSY => "EBUSY",
            libc::EEXIST => "EEXIST",
            libc::ENODEV => "ENODEV",
            libc::EINVAL => "EINVAL",
            libc::EMFILE => "EMFILE",
            libc::ENOTTY => "ENOTTY",
            libc::ENOSPC => "ENOSPC",
            libc::EPIPE => "EPIPE",
            libc::ERANGE => "ERANGE",
            libc::ENOSYS => "ENOSYS",
            libc::ECANCELED => "ECANCELED",
            libc::ETIME => "ETIME",
            libc::ETIMEDOUT => "ETIMEDOUT",
            libc::EALREADY => "EALREADY",
            libc::EOVERFLOW => "EOVERFLOW",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            525 => "ETOOSMALL",
            n => return format!("errno {n}").into(),
        };
        n.into()
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}

impl std::error::Error for Errno {}

/// An error type that knows which errno stands for it: the kernel's own when a call failed, or the
/// one the kernel would give for the same mistake. The C ABI returns it negated
/// (`ffi::FfiError`); every layer's error implements it where the error is defined.
pub trait ErrnoError: fmt::Display {
    fn errno(&self) -> Errno;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_known_and_unknown_errnos() {
        assert_eq!(Errno::EINVAL.name(), "EINVAL");
        assert_eq!(Errno::ETOOSMALL.to_string(), "ETOOSMALL");
        assert_eq!(Errno(4095).name(), "errno 4095");
    }
}
