//! Which of the program's fds are device fds, and of which model file.
//!
//! Owns: the fd table (fd -> the model file it refers to) and a bitmap of its keys that the hooks
//! read without a lock, so a call on any other fd (the program's, or the model's own memfds and
//! sync files) costs one atomic load. A model file closes when the last of its fds is closed,
//! as a DRM file is released with its last reference, and its leak report goes to the report.
//! Locks: `TABLE`, a leaf: held only around table edits and the real fd syscall that goes with
//! them (close, dup, dup2), never while calling the model or dropping a file (closing a model
//! file closes the model's own fds, which comes back through the `close` hook).

use std::collections::BTreeMap;
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use msm_winsys::sim::SimFile;

use crate::paths::Node;
use crate::report;

/// One open model file: what the program's device fds (one or more dups) refer to.
#[derive(Debug)]
pub struct DevFile {
    file: Option<SimFile>,
    pub node: Node,
    /// Order of opening in this process (1, 2, ...), for the report.
    pub seq: u64,
}

impl DevFile {
    pub fn new(file: SimFile, node: Node) -> DevFile {
        static SEQ: AtomicU64 = AtomicU64::new(1);
        DevFile {
            file: Some(file),
            node,
            seq: SEQ.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn file(&self) -> &SimFile {
        self.file
            .as_ref()
            .expect("a DevFile holds its file until dropped")
    }
}

impl Drop for DevFile {
    /// The last fd is gone: the kernel's release/postclose. The report notes what was left.
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            let leaks = f.close();
            report::file_closed(self.seq, self.node, leaks);
        }
    }
}

type Table = BTreeMap<c_int, Arc<DevFile>>;

static TABLE: Mutex<Table> = Mutex::new(BTreeMap::new());

/// Bit `fd` is set while `fd` is in the table (fds below `BITMAP_FDS`).
const BITMAP_FDS: usize = 1 << 16;
static BITS: [AtomicU64; BITMAP_FDS / 64] = [const { AtomicU64::new(0) }; BITMAP_FDS / 64];
/// Set once any fd at or above `BITMAP_FDS` entered the table: those are looked up under the lock.
static HIGH_FDS: AtomicBool = AtomicBool::new(false);

fn table() -> MutexGuard<'static, Table> {
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `fd` may be a device fd; false means certainly not (no lock taken).
pub fn maybe_device(fd: c_int) -> bool {
    match usize::try_from(fd) {
        Ok(i) if i < BITMAP_FDS => BITS[i / 64].load(Ordering::Acquire) & (1 << (i % 64)) != 0,
        Ok(_) => HIGH_FDS.load(Ordering::Acquire),
        Err(_) => false,
    }
}

fn set_bit(fd: c_int, on: bool) {
    let i = fd as usize;
    if i >= BITMAP_FDS {
        HIGH_FDS.store(true, Ordering::Release);
        return;
    }
    let mask = 1u64 << (i % 64);
    if on {
        BITS[i / 64].fetch_or(mask, Ordering::AcqRel);
    } else {
        BITS[i / 64].fetch_and(!mask, Ordering::AcqRel);
    }
}

/// The model file behind device fd `fd`.
pub fn lookup(fd: c_int) -> Option<Arc<DevFile>> {
    if !maybe_device(fd) {
        return None;
    }
    table().get(&fd).cloned()
}

/// Edits the table under its lock. `f` may make real fd syscalls (not through the hooks) and
/// insert or remove entries through the [`Edit`]; files it displaced are returned, to be dropped
/// by the caller after the lock is released.
pub fn edit<R>(f: impl FnOnce(&mut Edit) -> R) -> (R, Vec<Arc<DevFile>>) {
    let mut t = table();
    let mut e = Edit {
        table: &mut t,
        displaced: Vec::new(),
    };
    let r = f(&mut e);
    let displaced = std::mem::take(&mut e.displaced);
    drop(t);
    (r, displaced)
}

/// The table while [`edit`] holds its lock.
pub struct Edit<'a> {
    table: &'a mut Table,
    displaced: Vec<Arc<DevFile>>,
}

impl Edit<'_> {
    pub fn get(&self, fd: c_int) -> Option<Arc<DevFile>> {
        self.table.get(&fd).cloned()
    }

    /// `fd` now refers to `file` (whatever it referred to before is displaced).
    pub fn insert(&mut self, fd: c_int, file: Arc<DevFile>) {
        set_bit(fd, true);
        if let Some(old) = self.table.insert(fd, file) {
            self.displaced.push(old);
        }
    }

    /// `fd` is no longer a device fd.
    pub fn remove(&mut self, fd: c_int) {
        if let Some(old) = self.table.remove(&fd) {
            set_bit(fd, false);
            self.displaced.push(old);
        }
    }
}

/// Empties the table (process exit): every file whose last fd this was is returned.
pub fn drain() -> Vec<Arc<DevFile>> {
    let mut t = table();
    for fd in t.keys() {
        set_bit(*fd, false);
    }
    std::mem::take(&mut *t).into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use msm_winsys::sim::Sim;

    #[test]
    fn the_bitmap_follows_the_table_and_the_file_closes_with_its_last_fd() {
        let sim = Sim::new("a750").unwrap();
        let dev = Arc::new(DevFile::new(sim.open().unwrap(), Node::Render));
        // Numbers no real fd of this test process has: the table is only bookkeeping here.
        let (low, high) = (60_000, 70_000);
        assert!(!maybe_device(low) && !maybe_device(-1));
        let ((), gone) = edit(|t| {
            t.insert(low, dev.clone());
            t.insert(high, dev.clone());
        });
        assert!(gone.is_empty());
        assert!(maybe_device(low) && maybe_device(high));
        assert!(Arc::ptr_eq(&lookup(high).unwrap(), &dev));
        let ((), gone) = edit(|t| t.remove(low));
        assert_eq!(gone.len(), 1);
        drop(gone);
        assert!(!maybe_device(low) && lookup(low).is_none());
        let ((), gone) = edit(|t| t.remove(high));
        drop(gone);
        // Only the test's own reference is left: dropping it closes the model file.
        assert_eq!(Arc::strong_count(&dev), 1);
    }
}
