//! Sync files: real file descriptors carrying one fence (drivers/dma-buf/sync_file.c), and the
//! fd plumbing the model shares with syncobj fds.
//!
//! A sync file is one end of a `socketpair(AF_UNIX, SOCK_STREAM)`: the caller gets one end, the
//! model keeps the other in a process-wide registry keyed by the identity ([`fdid::file_id`]) of
//! the caller's end, with the fence. When the fence signals the model writes one byte to its end,
//! so `poll(POLLIN)` on the caller's fd (and every dup of it) becomes ready exactly when the fence
//! signals, as on a real sync file. An entry whose caller side is closed everywhere (its peer hung
//! up) is forgotten lazily, on the next export, import or report.
//!
//! The sync-file ioctls (SYNC_IOC_MERGE, FILE_INFO, SET_DEADLINE) reach [`ioctl`] through
//! `sim::fd_ioctl`, since the caller's socket cannot answer them itself.
//!
//! Owns: the registry of live sync files. Locks: `REGISTRY` only, a leaf: nothing else is taken
//! while it is held and no fence callback takes it. It may be taken while a file's `ctx` or a
//! syncobj lock is held.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::fdid::{self, FileId};
use super::fence::Fence;
use super::user;
use crate::uapi::{
    sync_fence_info, sync_file_info, sync_merge_data, sync_set_deadline, SYNC_IOC_FILE_INFO,
    SYNC_IOC_MERGE, SYNC_IOC_SET_DEADLINE,
};
use crate::Errno;
use std::mem::size_of;

/// A new connected socket pair: (the caller's end, the model's end), both close-on-exec.
pub(crate) fn socket_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: socketpair writes two fds into the array we own; the result is checked.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(Errno::last());
    }
    // SAFETY: both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// For each model end, whether every fd of its peer (the caller's end) has been closed.
pub(crate) fn peers_closed(model_ends: &[BorrowedFd<'_>]) -> Vec<bool> {
    let mut pfds: Vec<libc::pollfd> = model_ends
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        })
        .collect();
    if pfds.is_empty() {
        return Vec::new();
    }
    // SAFETY: poll reads and writes `pfds.len()` pollfd structs in storage we own; timeout 0.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 0) };
    if r < 0 {
        return vec![false; pfds.len()];
    }
    pfds.iter()
        .map(|p| p.revents & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLNVAL) != 0)
        .collect()
}

struct SyncFile {
    /// Our end; shared with the fence callback through a `Weak` so forgetting the entry closes it.
    model_end: Arc<OwnedFd>,
    fence: Arc<Fence>,
    created_by: u64,
    /// The name SYNC_IOC_MERGE gave it (`user_name`); empty for the others.
    user_name: String,
}

static REGISTRY: Mutex<Option<HashMap<FileId, SyncFile>>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<HashMap<FileId, SyncFile>>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Forgets the sync files whose caller side is closed everywhere.
fn collect_garbage(map: &mut HashMap<FileId, SyncFile>) {
    let ids: Vec<FileId> = map.keys().copied().collect();
    let ends: Vec<BorrowedFd<'_>> = ids.iter().map(|id| map[id].model_end.as_fd()).collect();
    let closed = peers_closed(&ends);
    drop(ends);
    for (id, closed) in ids.iter().zip(closed) {
        if closed {
            map.remove(id);
        }
    }
}

/// An fd reserved for a sync file before the fence is known (the kernel's
/// `get_unused_fd_flags` before `sync_file_create`), so EMFILE comes first, in the kernel's order.
#[derive(Debug)]
pub struct Reserved {
    user_end: OwnedFd,
    model_end: OwnedFd,
    id: FileId,
}

/// Reserves a sync-file fd: EMFILE/ENFILE from the system when none is left.
pub fn reserve() -> Result<Reserved, Errno> {
    let (user_end, model_end) = socket_pair()?;
    let id = fdid::file_id(user_end.as_raw_fd())?;
    Ok(Reserved {
        user_end,
        model_end,
        id,
    })
}

impl Reserved {
    /// The fd number the sync file will have.
    pub fn raw(&self) -> RawFd {
        self.user_end.as_raw_fd()
    }

    /// Makes the reserved fd a sync file carrying `fence`; `created_by` is the id of the model
    /// file (`SimFile`) whose ioctl made it, for the leak report.
    pub fn install(self, fence: Arc<Fence>, created_by: u64) -> OwnedFd {
        self.install_named(fence, created_by, String::new())
    }

    fn install_named(self, fence: Arc<Fence>, created_by: u64, user_name: String) -> OwnedFd {
        let Reserved {
            user_end,
            model_end,
            id,
        } = self;
        let model_end = Arc::new(model_end);
        {
            let mut reg = registry();
            let map = reg.get_or_insert_with(HashMap::new);
            collect_garbage(map);
            map.insert(
                id,
                SyncFile {
                    model_end: model_end.clone(),
                    fence: fence.clone(),
                    created_by,
                    user_name,
                },
            );
        }
        let weak: Weak<OwnedFd> = Arc::downgrade(&model_end);
        drop(model_end);
        // Runs at once if the fence already signalled; takes no lock.
        fence.on_signal(move || {
            if let Some(end) = weak.upgrade() {
                let byte = 1u8;
                // SAFETY: sends one byte from a local to a socket we own; failures (the peer is
                // gone) are harmless and ignored. MSG_NOSIGNAL: no SIGPIPE.
                unsafe {
                    libc::send(
                        end.as_raw_fd(),
                        (&byte as *const u8).cast(),
                        1,
                        libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                    );
                }
            }
        });
        user_end
    }
}

/// A new sync-file fd carrying `fence` (`sync_file_create` + `fd_install`), made through the model
/// file `created_by`. Errors are the system's (EMFILE, ENFILE, ENOMEM).
pub fn export(fence: Arc<Fence>, created_by: u64) -> Result<OwnedFd, Errno> {
    Ok(reserve()?.install(fence, created_by))
}

/// The fence of sync file `fd` (`sync_file_get_fence`): `None` for an fd that is not open or is
/// not one of the model's sync files (callers return EINVAL, as the kernel's do).
pub fn import(fd: RawFd) -> Option<Arc<Fence>> {
    let id = fdid::file_id(fd).ok()?;
    let reg = registry();
    reg.as_ref()?.get(&id).map(|s| s.fence.clone())
}

/// The fence and name of sync file `fd`.
fn lookup(fd: RawFd) -> Option<(Arc<Fence>, String, u64)> {
    let id = fdid::file_id(fd).ok()?;
    let reg = registry();
    reg.as_ref()?
        .get(&id)
        .map(|s| (s.fence.clone(), s.user_name.clone(), s.created_by))
}

/// `dma_fence_unwrap_merge`: the pending fences of both, the later one per timeline; a stub
/// signalled at the latest timestamp when none is pending, the fence itself when one is, an
/// array otherwise.
pub fn merge_fences(fences: &[Arc<Fence>]) -> Arc<Fence> {
    let mut pending: Vec<Arc<Fence>> = Vec::new();
    let mut timestamp_ns = 0;
    for f in fences.iter().flat_map(|f| f.unwrap()) {
        if f.is_signalled() {
            timestamp_ns = timestamp_ns.max(f.timestamp_ns());
            continue;
        }
        match pending.iter_mut().find(|p| p.context == f.context) {
            Some(p) if f.seqno > p.seqno => *p = f,
            Some(_) => {}
            None => pending.push(f),
        }
    }
    match pending.len() {
        0 => Fence::signalled_at(timestamp_ns),
        1 => pending.pop().expect("one fence"),
        _ => Fence::array(pending),
    }
}

/// The sync-file ioctl type letter (uapi/linux/sync_file.h `SYNC_IOC_MAGIC`).
pub const SYNC_IOC_MAGIC: u32 = b'>' as u32;

/// An ioctl on sync file `fd` (`sync_file_ioctl`); `None` when `fd` is not one of the model's
/// sync files.
pub fn ioctl(fd: RawFd, request: u32, arg: u64) -> Option<Result<(), Errno>> {
    let (fence, user_name, created_by) = lookup(fd)?;
    Some(match request {
        SYNC_IOC_MERGE => ioctl_merge(&fence, created_by, arg),
        SYNC_IOC_FILE_INFO => ioctl_file_info(&fence, &user_name, arg),
        SYNC_IOC_SET_DEADLINE => {
            // The model's fences have no deadline to honour: only the argument is checked.
            user::read::<sync_set_deadline>(arg).and_then(|d| {
                if d.pad != 0 {
                    Err(Errno::EINVAL)
                } else {
                    Ok(())
                }
            })
        }
        _ => Err(Errno::ENOTTY),
    })
}

/// Copies a name into a fixed C string field, truncated and NUL-terminated as `strscpy`.
fn set_name(field: &mut [u8; 32], name: &str) {
    let n = name.len().min(field.len() - 1);
    field.fill(0);
    field[..n].copy_from_slice(&name.as_bytes()[..n]);
}

fn ioctl_merge(fence: &Arc<Fence>, created_by: u64, arg: u64) -> Result<(), Errno> {
    // get_unused_fd_flags comes first: EMFILE before anything about the argument.
    let fd = reserve()?;
    let mut data: sync_merge_data = user::read(arg)?;
    if data.flags != 0 || data.pad != 0 {
        return Err(Errno::EINVAL);
    }
    let (fence2, _, _) = lookup(data.fd2).ok_or(Errno::ENOENT)?;
    data.name[31] = 0;
    let len = data.name.iter().position(|&b| b == 0).unwrap_or(31);
    let name = String::from_utf8_lossy(&data.name[..len]).into_owned();
    let merged = merge_fences(&[fence.clone(), fence2]);
    // The new fd's number is known before it is installed, as the kernel's is.
    data.fence = fd.raw();
    user::write(arg, &data)?;
    // fd_install: the caller owns it now.
    let _ = fd.install_named(merged, created_by, name).into_raw_fd();
    Ok(())
}

fn ioctl_file_info(fence: &Arc<Fence>, user_name: &str, arg: u64) -> Result<(), Errno> {
    let mut info: sync_file_info = user::read(arg)?;
    if info.flags != 0 || info.pad != 0 {
        return Err(Errno::EINVAL);
    }
    let fences = fence.unwrap();
    // num_fences 0 asks only for the count (and the status of the whole).
    if info.num_fences == 0 {
        info.status = fence.status();
    } else {
        if (info.num_fences as usize) < fences.len() {
            return Err(Errno::EINVAL);
        }
        info.status = 1;
        let mut out = Vec::with_capacity(fences.len() * size_of::<sync_fence_info>());
        for f in &fences {
            let mut fi = sync_fence_info {
                status: f.status(),
                timestamp_ns: if f.is_signalled() {
                    f.timestamp_ns()
                } else {
                    0
                },
                ..Default::default()
            };
            set_name(&mut fi.obj_name, &f.timeline_name);
            set_name(&mut fi.driver_name, f.driver_name);
            if info.status > 0 {
                info.status = fi.status;
            }
            out.extend_from_slice(user::bytes_of(&fi));
        }
        user::write_bytes(info.sync_fence_info, &out)?;
    }
    let name = if user_name.is_empty() {
        format!(
            "{}-{}{}-{}",
            fence.driver_name, fence.timeline_name, fence.context, fence.seqno as i64
        )
    } else {
        user_name.to_owned()
    };
    set_name(&mut info.name, &name);
    info.num_fences = fences.len() as u32;
    user::write(arg, &info)
}

/// Descriptions of the sync files made through model file `file_id` whose fds are still open.
pub fn open_fds_created_by(file_id: u64) -> Vec<String> {
    let mut reg = registry();
    let Some(map) = reg.as_mut() else {
        return Vec::new();
    };
    collect_garbage(map);
    let mut out: Vec<(u64, String)> = map
        .values()
        .filter(|s| s.created_by == file_id)
        .map(|s| (s.fence.id, format!("sync file carrying {:?}", s.fence)))
        .collect();
    out.sort();
    out.into_iter().map(|(_, s)| s).collect()
}

/// How many sync files have an fd open in this process (debug API). Takes the registry lock.
#[allow(dead_code)] // Called by the debug API in mod.rs.
pub(crate) fn live_count() -> usize {
    let mut reg = registry();
    reg.as_mut().map_or(0, |map| {
        collect_garbage(map);
        map.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::fence::new_context;

    fn readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own, timeout 0.
        unsafe { libc::poll(&mut p, 1, 0) };
        p.revents & libc::POLLIN != 0
    }

    #[test]
    fn import_finds_the_fence_through_a_dup_and_poll_follows_it() {
        let f = Fence::new(new_context(), 1);
        let fd = export(f.clone(), 0x5f11_0001).unwrap();
        let dup = fd.try_clone().unwrap();
        assert!(Arc::ptr_eq(&import(dup.as_raw_fd()).unwrap(), &f));
        assert!(!readable(fd.as_raw_fd()));
        f.signal();
        assert!(readable(dup.as_raw_fd()));
        drop(fd);
        assert_eq!(open_fds_created_by(0x5f11_0001).len(), 1);
        drop(dup);
        assert!(open_fds_created_by(0x5f11_0001).is_empty());
    }

    #[test]
    fn foreign_and_closed_fds_are_not_sync_files() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(import(file.as_raw_fd()).is_none());
        assert!(import(-1).is_none());
        assert!(import(1_000_000).is_none());
    }

    #[test]
    fn already_signalled_fence_is_ready_at_once() {
        let fd = export(Fence::signalled(), 0x5f11_0002).unwrap();
        assert!(readable(fd.as_raw_fd()));
    }
}
