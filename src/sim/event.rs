//! A file's DRM event queue (drivers/gpu/drm/drm_file.c: `drm_event_reserve_init`,
//! `drm_send_event`, `drm_read`, `drm_poll`).
//!
//! Owns: the events queued for one open file, the file's event space, and the eventfd that is
//! the file's pollable fd. Locks: `EventQueue::inner`, a leaf (taken under the display state).
//!
//! The file's fd ([`super::SimFile::fd`]) is a non-blocking eventfd whose counter is non-zero
//! exactly while an event is queued: the model writes 1 when the queue goes from empty to
//! non-empty and reads the counter back to 0 when the last event is read, both under the queue
//! lock. So `poll`/`select`/`epoll` on the fd, or a dup of it, report POLLIN exactly when
//! `drm_poll` would. The fd's own `read(2)` is the eventfd's, not `drm_read`: a client reads
//! events through [`super::SimFile::read`] (a shim routes `read(2)` on the fd there).

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::Errno;

/// `file_priv->event_space` at open: bytes of events that may be reserved and not yet read.
pub const EVENT_SPACE_B: usize = 4096;

#[derive(Debug)]
struct Inner {
    events: VecDeque<Vec<u8>>,
    /// Bytes still free for reservations.
    space_B: usize,
}

#[derive(Debug)]
pub(super) struct EventQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
    efd: OwnedFd,
}

impl EventQueue {
    pub(super) fn new() -> Result<EventQueue, Errno> {
        // SAFETY: eventfd with valid flags; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(Errno::last());
        }
        Ok(EventQueue {
            inner: Mutex::new(Inner {
                events: VecDeque::new(),
                space_B: EVENT_SPACE_B,
            }),
            ready: Condvar::new(),
            // SAFETY: a new fd nobody else owns.
            efd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn fd(&self) -> &OwnedFd {
        &self.efd
    }

    /// `drm_event_reserve_init`: ENOMEM when the file has no room for `len_B` more bytes.
    pub(super) fn reserve(&self, len_B: usize) -> Result<(), Errno> {
        let mut q = self.lock();
        if q.space_B < len_B {
            return Err(Errno::ENOMEM);
        }
        q.space_B -= len_B;
        Ok(())
    }

    /// `drm_event_cancel_free`: a reserved event that will never be sent gives its room back.
    pub(super) fn unreserve(&self, len_B: usize) {
        let mut q = self.lock();
        q.space_B = (q.space_B + len_B).min(EVENT_SPACE_B);
    }

    /// `drm_send_event` of an event whose room was reserved.
    pub(super) fn push(&self, event: Vec<u8>) {
        let mut q = self.lock();
        if q.events.is_empty() {
            self.set_readable(true);
        }
        q.events.push_back(event);
        self.ready.notify_all();
    }

    /// Events queued now.
    pub(super) fn len(&self) -> usize {
        self.lock().events.len()
    }

    fn set_readable(&self, readable: bool) {
        let fd = self.efd.as_raw_fd();
        let mut v: u64 = 1;
        // SAFETY: an 8-byte write/read on our own non-blocking eventfd, from/to a u64 we own. A
        // write cannot block (the counter stays far below its maximum), a read of a zero counter
        // returns EAGAIN, which is the state we want anyway.
        unsafe {
            if readable {
                libc::write(fd, (&v as *const u64).cast(), 8);
            } else {
                libc::read(fd, (&mut v as *mut u64).cast(), 8);
            }
        }
    }

    /// `drm_read`: whole events only. Blocks until one is queued unless `nonblock` (EAGAIN);
    /// stops at the first event that does not fit in what is left of `buf`, which it keeps
    /// queued, so a buffer too small for the first event returns 0.
    pub(super) fn read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        let mut q = self.lock();
        let mut done = 0;
        loop {
            let Some(e) = q.events.pop_front() else {
                if done > 0 {
                    break;
                }
                if nonblock {
                    return Err(Errno::EAGAIN);
                }
                q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            if e.len() > buf.len() - done {
                q.events.push_front(e);
                break;
            }
            buf[done..done + e.len()].copy_from_slice(&e);
            done += e.len();
            q.space_B += e.len();
        }
        if q.events.is_empty() {
            self.set_readable(false);
        }
        Ok(done)
    }
}
