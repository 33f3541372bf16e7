//! Identity of the real file descriptors the model hands out (dma-bufs, sync files, syncobj fds).
//!
//! Owns: nothing; stateless helpers. The model recognises its own files the way the kernel does,
//! by the file behind the fd, here its (device, inode) pair: dup'ed, passed or re-opened fds of
//! the same file all map to one identity.

use std::collections::HashSet;
use std::os::fd::RawFd;

use crate::Errno;

/// (st_dev, st_ino) of the file behind an fd.
pub type FileId = (u64, u64);

/// The identity of the file behind `fd`: EBADF for an fd that is not open.
pub fn file_id(fd: RawFd) -> Result<FileId, Errno> {
    if fd < 0 {
        return Err(Errno::EBADF);
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat writes one `struct stat` into storage we own; a bad fd returns -1/EBADF.
    let r = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    if r != 0 {
        return Err(Errno::last());
    }
    // SAFETY: fstat succeeded and filled the struct.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// The identities of every file this process has open through an fd right now.
///
/// Used by the leak report ("fds still open") and to notice exports whose fds are all closed.
/// Files only reachable through an mmap are not counted.
pub fn open_file_ids() -> HashSet<FileId> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return HashSet::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok()))
        .filter_map(|fd| file_id(fd).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn dup_has_the_same_identity_and_closed_fd_is_ebadf() {
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        let d = f.try_clone().unwrap();
        assert_eq!(file_id(f.as_raw_fd()), file_id(d.as_raw_fd()));
        assert!(open_file_ids().contains(&file_id(f.as_raw_fd()).unwrap()));
        assert_eq!(file_id(-1), Err(Errno::EBADF));
        assert_eq!(file_id(1_000_000), Err(Errno::EBADF));
    }
}
