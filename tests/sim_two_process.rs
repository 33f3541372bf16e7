//! A dma-buf exported by the kernel model in one process, passed over a unix socket (SCM_RIGHTS)
//! to a second process, imported into that process's own model device and mapped there: both
//! processes see the same bytes, as with a real dma-buf.
//!
//! The second process is this test binary again, running only `child_side`, which does nothing
//! unless the parent set `MSMWS_DMABUF_CHILD_SOCK`.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;

use common::raw;
use msm_winsys::kernel::Kernel;
use msm_winsys::sim::Sim;
use msm_winsys::uapi::*;

const ENV: &str = "MSMWS_DMABUF_CHILD_SOCK";
const SIZE: usize = 8192;

fn pattern(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

fn send_fd(sock: RawFd, fd: RawFd) {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: a zeroed msghdr is valid; we fill the fields we use.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer has room for one cmsg carrying one fd (CMSG_SPACE above).
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
        assert_eq!(libc::sendmsg(sock, &msg, 0), 1);
    }
}

fn recv_fd(sock: RawFd) -> OwnedFd {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: a zeroed msghdr is valid; we fill the fields we use.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: recvmsg into buffers we own; the cmsg is checked before its fd is taken.
    unsafe {
        assert_eq!(libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC), 1);
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(
            !c.is_null() && (*c).cmsg_type == libc::SCM_RIGHTS,
            "no fd received"
        );
        OwnedFd::from_raw_fd(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>()))
    }
}

fn offset(k: &dyn Kernel, handle: u32) -> u64 {
    let mut a = drm_msm_gem_info {
        handle,
        info: MSM_INFO_GET_OFFSET,
        ..Default::default()
    };
    raw(k, DRM_IOCTL_MSM_GEM_INFO, &mut a).unwrap();
    a.value
}

#[test]
fn dma_buf_crosses_processes_over_a_unix_socket() {
    let mut pair = [0 as RawFd; 2];
    // SAFETY: socketpair fills two fds we then own.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: both fds are new and ours.
    let (parent, child) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    // SAFETY: fcntl on our own fd: keep CLOEXEC on the parent end so only the child end is inherited.
    unsafe { libc::fcntl(parent.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };

    let sim = Sim::new("a750").unwrap();
    let f = sim.open().unwrap();
    let mut new = drm_msm_gem_new {
        size: SIZE as u64,
        flags: MSM_BO_WC,
        handle: 0,
    };
    raw(&f, DRM_IOCTL_MSM_GEM_NEW, &mut new).unwrap();
    let mut map = f.map(offset(&f, new.handle), SIZE).unwrap();
    for (i, b) in map.iter_mut().enumerate() {
        *b = pattern(i);
    }
    let mut prime = drm_prime_handle {
        handle: new.handle,
        flags: DRM_CLOEXEC | DRM_RDWR,
        fd: -1,
    };
    raw(&f, DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut prime).unwrap();
    // SAFETY: the model just returned this new dma-buf fd.
    let dmabuf = unsafe { OwnedFd::from_raw_fd(prime.fd) };

    let mut child_proc = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_side", "--nocapture", "--test-threads=1"])
        .env(ENV, child.as_raw_fd().to_string())
        .spawn()
        .unwrap();
    drop(child);
    send_fd(parent.as_raw_fd(), dmabuf.as_raw_fd());
    let status = child_proc.wait().unwrap();
    assert!(status.success(), "the child process failed: {status}");
    // The child wrote through its own mapping of its own import.
    assert_eq!(map[4096], 0x77);
    assert_eq!(map[4097], pattern(4097));
    drop(map);
    drop(dmabuf);
    raw(
        &f,
        DRM_IOCTL_GEM_CLOSE,
        &mut drm_gem_close {
            handle: new.handle,
            pad: 0,
        },
    )
    .unwrap();
}

/// The second process: import the received dma-buf into a fresh model device and check it.
#[test]
fn child_side() {
    let Ok(sock) = std::env::var(ENV) else { return };
    let sock: RawFd = sock.parse().unwrap();
    let dmabuf = recv_fd(sock);
    // SAFETY: lseek on the fd we just received.
    let end_B = unsafe { libc::lseek(dmabuf.as_raw_fd(), 0, libc::SEEK_END) };
    assert_eq!(end_B, SIZE as i64);
    let sim = Sim::new("a660").unwrap();
    let f = sim.open().unwrap();
    let mut prime = drm_prime_handle {
        handle: 0,
        flags: 0,
        fd: dmabuf.as_raw_fd(),
    };
    raw(&f, DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut prime).unwrap();
    let mut map = f.map(offset(&f, prime.handle), SIZE).unwrap();
    for i in [0, 1, 4095, 4097, SIZE - 1] {
        assert_eq!(map[i], pattern(i), "byte {i}");
    }
    map[4096] = 0x77;
    drop(map);
    raw(
        &f,
        DRM_IOCTL_GEM_CLOSE,
        &mut drm_gem_close {
            handle: prime.handle,
            pad: 0,
        },
    )
    .unwrap();
    drop(dmabuf);
    assert!(f.close().is_empty());
}
