//! DRM syncobjs, binary and timeline (drivers/gpu/drm/drm_syncobj.c), with timeline points as
//! `dma_fence_chain` links (drivers/dma-buf/dma-fence-chain.c), and syncobj fds.
//!
//! Owns: [`Syncobj`] (shared by `Arc`: a file's handle table, syncobj fds and other files that
//! imported one all hold the same object), [`SyncobjTable`] (one file's handles), the chain links
//! of timelines, and the process-wide registry of syncobj fds. The ioctls are in `ioctl`.
//!
//! Locks, in nesting order (never taken the other way round):
//! 1. `SimFile::ctx` (not taken here; callers may hold it when they call in);
//! 2. `SyncobjTable::inner` — one file's handles; released before anything below is taken,
//!    except that dropping the last reference of a syncobj may take 4 and 5;
//! 3. `Syncobj::state` — one syncobj's fence and waiters;
//! 4. `ChainLink::prev` — one link at a time, never two nested;
//! 5. `CHAINS`, `SYNCOBJ_FILES`, `Waker::gen` — leaves.
//!
//! `Fence::state` may be taken under any of them (`is_signalled`, `on_signal`); fence callbacks
//! registered here take only a `Waker` or signal another fence, never a syncobj lock. Nothing here
//! waits on a fence or a condition while holding a syncobj lock: waits park on a [`Waker`].

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Instant;

use super::fdid::{self, FileId};
use super::fence::{new_context, Fence};
use super::sync_file;
use crate::Errno;

mod ioctl;
pub(super) use ioctl::{
    create, destroy, fd_to_handle, handle_to_fd, query, reset, signal, timeline_signal,
    timeline_wait, transfer, wait,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is a model bug already reported by that panic; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------------------
// dma_fence_chain

/// One timeline point (`struct dma_fence_chain`): `node` signals once `contained` and everything
/// before it on the chain have signalled.
struct ChainLink {
    /// The chain node's own fence: context and seqno (the point) of the timeline.
    node: Arc<Fence>,
    contained: Arc<Fence>,
    prev_seqno: u64,
    /// The previous link or fence; links whose contained fence signalled are unlinked lazily
    /// (`dma_fence_chain_walk`'s garbage collection).
    prev: Mutex<Option<Payload>>,
}

/// What a syncobj holds, and what a chain link points back to: a plain fence or a chain link.
#[derive(Clone)]
enum Payload {
    Plain(Arc<Fence>),
    Chain(Arc<ChainLink>),
}

/// Chain nodes by the id of their fence, so that a chain node's fence handed around as a plain
/// `Arc<Fence>` (a sync file, a transfer into a binary syncobj) is still seen as a chain
/// (`to_dma_fence_chain`).
static CHAINS: Mutex<Option<HashMap<u64, Weak<ChainLink>>>> = Mutex::new(None);

impl Payload {
    fn fence(&self) -> &Arc<Fence> {
        match self {
            Payload::Plain(f) => f,
            Payload::Chain(l) => &l.node,
        }
    }

    /// `fence` as the kernel sees it: a chain link when it is a live chain node's fence.
    fn from_fence(fence: Arc<Fence>) -> Payload {
        let weak = lock(&CHAINS)
            .as_ref()
            .and_then(|m| m.get(&fence.id).cloned());
        match weak.and_then(|w| w.upgrade()) {
            Some(link) => Payload::Chain(link),
            None => Payload::Plain(fence),
        }
    }

    fn same(&self, other: &Payload) -> bool {
        Arc::ptr_eq(self.fence(), other.fence())
    }
}

impl ChainLink {
    /// `dma_fence_chain_init`: a point after `prev`, reusing its context when `seqno` is later,
    /// otherwise a new context and a seqno no lower than `prev`'s.
    fn new(prev: Option<Payload>, contained: Arc<Fence>, seqno: u64) -> Arc<ChainLink> {
        let (context, seqno, prev_seqno) = match &prev {
            Some(Payload::Chain(p)) if seqno > p.node.seqno => {
                (p.node.context, seqno, p.node.seqno)
            }
            Some(Payload::Chain(p)) => (new_context(), seqno.max(p.node.seqno), 0),
            _ => (new_context(), seqno, 0),
        };
        let node = Fence::new(context, seqno);
        let waits_on: Vec<Arc<Fence>> = std::iter::once(contained.clone())
            .chain(prev.as_ref().map(|p| p.fence().clone()))
            .collect();
        let link = Arc::new(ChainLink {
            node: node.clone(),
            contained,
            prev_seqno,
            prev: Mutex::new(prev),
        });
        lock(&CHAINS)
            .get_or_insert_with(HashMap::new)
            .insert(node.id, Arc::downgrade(&link));
        signal_when_all(node, &waits_on);
        link
    }

    /// `dma_fence_chain_walk`: unlinks the previous links whose contained fence signalled and
    /// returns the first one that has not (or a plain previous fence that has not), if any.
    fn walk(&self) -> Option<Payload> {
        loop {
            let prev = lock(&self.prev).clone()?;
            let replacement = match &prev {
                Payload::Chain(p) if p.contained.is_signalled() => lock(&p.prev).clone(),
                Payload::Plain(f) if f.is_signalled() => None,
                _ => return Some(prev),
            };
            let old = {
                let mut g = lock(&self.prev);
                if g.as_ref().is_some_and(|cur| cur.same(&prev)) {
                    std::mem::replace(&mut *g, replacement)
                } else {
                    None
                }
            };
            // Dropped outside the lock: it may free a long run of links.
            drop(old);
        }
    }
}

impl Drop for ChainLink {
    fn drop(&mut self) {
        if let Some(m) = lock(&CHAINS).as_mut() {
            m.remove(&self.node.id);
        }
        // Unlink iteratively so that freeing a long chain does not recurse once per link.
        let mut prev = self
            .prev
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        while let Some(Payload::Chain(link)) = prev {
            match Arc::try_unwrap(link) {
                Ok(mut link) => {
                    prev = link
                        .prev
                        .get_mut()
                        .unwrap_or_else(|p| p.into_inner())
                        .take();
                }
                Err(_) => break,
            }
        }
    }
}

/// Signals `target` once every fence of `fences` has signalled (a chain node, a fence array).
fn signal_when_all(target: Arc<Fence>, fences: &[Arc<Fence>]) {
    let pending = Arc::new(AtomicUsize::new(fences.len()));
    if fences.is_empty() {
        target.signal();
    }
    for f in fences {
        let (target, pending) = (target.clone(), pending.clone());
        f.on_signal(move || {
            if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                target.signal();
            }
        });
    }
}

/// `dma_fence_chain_find_seqno`: the fence to wait on for `point`. `Ok(None)` when the point and
/// everything before it already signalled and was unlinked; EINVAL when `point` has not been
/// submitted (or `payload` is not a chain and `point` is not 0).
fn find_seqno(payload: &Payload, point: u64) -> Result<Option<Arc<Fence>>, Errno> {
    if point == 0 {
        return Ok(Some(payload.fence().clone()));
    }
    let Payload::Chain(head) = payload else {
        return Err(Errno::EINVAL);
    };
    if head.node.seqno < point {
        return Err(Errno::EINVAL);
    }
    let mut iter = Payload::Chain(head.clone());
    loop {
        match &iter {
            Payload::Plain(f) => return Ok(Some(f.clone())),
            Payload::Chain(l) => {
                if l.node.context != head.node.context || l.prev_seqno < point {
                    return Ok(Some(l.node.clone()));
                }
                match l.walk() {
                    Some(next) => iter = next,
                    None => return Ok(None),
                }
            }
        }
    }
}

/// SYNCOBJ_QUERY for one payload: the last submitted point, or the last signalled one (the
/// kernel's walk, which stops at a context change left by an out-of-order point).
fn query_point(payload: Option<&Payload>, last_submitted: bool) -> u64 {
    let Some(Payload::Chain(head)) = payload else {
        return 0;
    };
    if last_submitted {
        return head.node.seqno;
    }
    let mut last = head.clone();
    let mut cur = head.walk();
    while let Some(Payload::Chain(l)) = cur {
        if l.node.context != head.node.context {
            break;
        }
        cur = l.walk();
        last = l;
    }
    if last.node.is_signalled() {
        last.node.seqno
    } else {
        last.prev_seqno
    }
}

/// `dma_fence_unwrap_merge` of one fence: its unsignalled leaves (the contained fences of a
/// chain), the latest per context; a signalled stub when none is left, the fence itself when one
/// is, otherwise a new fence that signals when all of them have (a `dma_fence_array`).
fn unwrap_merge(fence: Arc<Fence>) -> Arc<Fence> {
    let mut leaves: Vec<Arc<Fence>> = Vec::new();
    let mut cur = Some(Payload::from_fence(fence));
    while let Some(p) = cur {
        cur = match p {
            Payload::Plain(f) => {
                leaves.push(f);
                None
            }
            Payload::Chain(l) => {
                leaves.push(l.contained.clone());
                l.walk()
            }
        };
    }
    let mut latest: BTreeMap<u64, Arc<Fence>> = BTreeMap::new();
    for f in leaves.into_iter().filter(|f| !f.is_signalled()) {
        match latest.get(&f.context) {
            Some(have) if have.seqno >= f.seqno => {}
            _ => {
                latest.insert(f.context, f);
            }
        }
    }
    let mut left: Vec<Arc<Fence>> = latest.into_values().collect();
    match left.len() {
        0 => Fence::signalled(),
        1 => left.pop().expect("one fence"),
        _ => {
            let array = Fence::new(new_context(), 1);
            signal_when_all(array.clone(), &left);
            array
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting

/// Parks a waiting thread until something it waits for may have changed: a fence signalled or a
/// syncobj got a fence. Fence callbacks hold it weakly, so a wait that ended frees it.
#[derive(Default)]
pub(crate) struct Waker {
    gen: Mutex<u64>,
    cv: Condvar,
}

impl Waker {
    pub(crate) fn notify(&self) {
        *lock(&self.gen) += 1;
        self.cv.notify_all();
    }

    pub(crate) fn generation(&self) -> u64 {
        *lock(&self.gen)
    }

    /// Waits until notified after generation `seen` or until `deadline`; false on timeout.
    pub(crate) fn wait_past(&self, seen: u64, deadline: Option<Instant>) -> bool {
        let mut g = lock(&self.gen);
        while *g == seen {
            match deadline {
                None => g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    g = self
                        .cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        true
    }

    /// Notifies this waker when `fence` signals.
    pub(crate) fn watch(self: &Arc<Self>, fence: &Fence) {
        let weak = Arc::downgrade(self);
        fence.on_signal(move || {
            if let Some(w) = weak.upgrade() {
                w.notify();
            }
        });
    }
}

/// A wait for a point to be submitted to a syncobj (`struct syncobj_wait_entry` on the syncobj's
/// `cb_list`): the syncobj fills `found` when a fence for `point` appears.
pub(crate) struct SubmitWait {
    point: u64,
    found: Mutex<Option<Arc<Fence>>>,
    waker: Arc<Waker>,
}

impl SubmitWait {
    pub(crate) fn new(point: u64, waker: Arc<Waker>) -> Arc<SubmitWait> {
        Arc::new(SubmitWait {
            point,
            found: Mutex::new(None),
            waker,
        })
    }

    pub(crate) fn found(&self) -> Option<Arc<Fence>> {
        lock(&self.found).clone()
    }

    /// `syncobj_wait_syncobj_func`: takes the fence for the point if `payload` has it.
    fn try_resolve(&self, payload: Option<&Payload>) -> bool {
        let Some(payload) = payload else {
            return false;
        };
        let Ok(fence) = find_seqno(payload, self.point) else {
            return false;
        };
        *lock(&self.found) = Some(fence.unwrap_or_else(Fence::signalled));
        self.waker.notify();
        true
    }
}

// ---------------------------------------------------------------------------------------------
// Syncobj

#[derive(Default)]
struct SyncobjState {
    payload: Option<Payload>,
    waiters: Vec<Arc<SubmitWait>>,
}

impl SyncobjState {
    /// Hands the current fence to every waiter whose point it has.
    fn wake_waiters(&mut self) {
        let SyncobjState { payload, waiters } = self;
        waiters.retain(|w| !w.try_resolve(payload.as_ref()));
    }
}

/// A DRM syncobj (`struct drm_syncobj`): nothing, a fence, or a timeline of chain links.
pub struct Syncobj {
    /// Unique per syncobj in this process, for messages.
    pub id: u64,
    state: Mutex<SyncobjState>,
}

impl std::fmt::Debug for Syncobj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.state.try_lock() {
            Ok(s) => write!(f, "Syncobj(#{} {})", self.id, describe(s.payload.as_ref())),
            Err(_) => write!(f, "Syncobj(#{} busy)", self.id),
        }
    }
}

fn describe(payload: Option<&Payload>) -> String {
    match payload {
        None => "no fence".into(),
        Some(Payload::Plain(f)) => format!("{f:?}"),
        Some(Payload::Chain(l)) => format!(
            "timeline at point {} ({}), last signalled {}",
            l.node.seqno,
            if l.node.is_signalled() {
                "signalled"
            } else {
                "pending"
            },
            query_point(Some(&Payload::Chain(l.clone())), false)
        ),
    }
}

impl Syncobj {
    /// A new syncobj, empty or holding a signalled fence (`DRM_SYNCOBJ_CREATE_SIGNALED`).
    pub fn new(signalled: bool) -> Arc<Syncobj> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let s = Arc::new(Syncobj {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            state: Mutex::default(),
        });
        if signalled {
            s.replace_fence(Some(Fence::signalled()));
        }
        s
    }

    fn state(&self) -> MutexGuard<'_, SyncobjState> {
        lock(&self.state)
    }

    /// `drm_syncobj_find_fence` with flags 0: the fence to wait on for `point` (0: the current
    /// fence). EINVAL when the syncobj has no fence or the point has not been submitted yet; a
    /// signalled stub when the point already signalled and was unlinked.
    pub fn find_fence(&self, point: u64) -> Result<Arc<Fence>, Errno> {
        let st = self.state();
        let payload = st.payload.as_ref().ok_or(Errno::EINVAL)?;
        Ok(find_seqno(payload, point)?.unwrap_or_else(Fence::signalled))
    }

    /// `drm_syncobj_replace_fence`: binary signal (`Some`) or reset (`None`).
    pub fn replace_fence(&self, fence: Option<Arc<Fence>>) {
        let new = fence.map(Payload::from_fence);
        let old = {
            let mut st = self.state();
            let changed = match (&st.payload, &new) {
                (Some(a), Some(b)) => !a.same(b),
                (None, None) => false,
                _ => true,
            };
            let old = std::mem::replace(&mut st.payload, new);
            if changed {
                st.wake_waiters();
            }
            old
        };
        drop(old);
    }

    /// `drm_syncobj_add_point`: a new timeline point `point` that signals with `fence` and
    /// everything before it. A point not after the last one starts a new context (the kernel only
    /// logs it), so QUERY may then report 0 until it signals.
    pub fn add_point(&self, point: u64, fence: Arc<Fence>) {
        let prev = {
            let mut st = self.state();
            let prev = st.payload.clone();
            st.payload = Some(Payload::Chain(ChainLink::new(prev.clone(), fence, point)));
            st.wake_waiters();
            prev
        };
        // Walk the old chain once to unlink what signalled, as the kernel does.
        let mut cur = match prev {
            Some(Payload::Chain(l)) => Some(l),
            _ => None,
        };
        while let Some(l) = cur {
            cur = match l.walk() {
                Some(Payload::Chain(n)) => Some(n),
                _ => None,
            };
        }
    }

    /// SYNCOBJ_QUERY: the last signalled point, or with `last_submitted` the last point added;
    /// 0 for a syncobj that is not a timeline.
    pub fn query(&self, last_submitted: bool) -> u64 {
        let payload = self.state().payload.clone();
        query_point(payload.as_ref(), last_submitted)
    }

    /// Registers `w` to be handed the fence of its point once submitted, unless it already is
    /// (`drm_syncobj_fence_add_wait`).
    pub(crate) fn add_waiter(&self, w: &Arc<SubmitWait>) {
        let mut st = self.state();
        if !w.try_resolve(st.payload.as_ref()) {
            st.waiters.push(w.clone());
        }
    }

    pub(crate) fn remove_waiter(&self, w: &Arc<SubmitWait>) {
        self.state().waiters.retain(|x| !Arc::ptr_eq(x, w));
    }

    /// One line for debug dumps; never blocks (a busy syncobj says so).
    pub(crate) fn describe(&self) -> String {
        format!("{self:?}")
    }
}

// ---------------------------------------------------------------------------------------------
// Handle table

/// The syncobj handles of one file (`drm_file.syncobj_idr`): ids from 1, lowest free first.
#[derive(Debug, Default)]
pub(crate) struct SyncobjTable {
    inner: Mutex<BTreeMap<u32, Arc<Syncobj>>>,
}

impl SyncobjTable {
    /// `drm_syncobj_find`.
    pub(crate) fn get(&self, handle: u32) -> Option<Arc<Syncobj>> {
        lock(&self.inner).get(&handle).cloned()
    }

    /// How many handles the file holds (leak report).
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).len()
    }

    /// Drops every handle (`drm_syncobj_release`, at file close).
    pub(crate) fn clear(&self) {
        let old = std::mem::take(&mut *lock(&self.inner));
        drop(old);
    }

    /// `idr_alloc(idr, obj, 1, 0)`: the lowest free handle from 1; ENOSPC when none is left.
    pub(crate) fn insert(&self, s: Arc<Syncobj>) -> Result<u32, Errno> {
        let mut t = lock(&self.inner);
        let mut h = 1u32;
        for &k in t.keys() {
            if k != h {
                break;
            }
            h = h.checked_add(1).ok_or(Errno::ENOSPC)?;
        }
        if h > i32::MAX as u32 {
            return Err(Errno::ENOSPC);
        }
        t.insert(h, s);
        Ok(h)
    }

    /// `idr_remove`.
    pub(crate) fn remove(&self, handle: u32) -> Option<Arc<Syncobj>> {
        lock(&self.inner).remove(&handle)
    }

    /// `handle: syncobj` lines for debug dumps, or `None` when the table is busy (trylock).
    #[allow(dead_code)] // Called by the debug API in mod.rs.
    pub(crate) fn describe(&self) -> Option<Vec<String>> {
        let t = self.inner.try_lock().ok()?;
        let list: Vec<(u32, Arc<Syncobj>)> = t.iter().map(|(h, s)| (*h, s.clone())).collect();
        drop(t);
        Some(
            list.into_iter()
                .map(|(h, s)| format!("{h}: {}", s.describe()))
                .collect(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Syncobj fds

/// A syncobj fd: the model's end of a socket pair whose other end the caller holds. The fd keeps
/// the syncobj alive until every copy of it is closed (noticed lazily).
struct SyncobjFile {
    model_end: OwnedFd,
    syncobj: Arc<Syncobj>,
}

static SYNCOBJ_FILES: Mutex<Option<HashMap<FileId, SyncobjFile>>> = Mutex::new(None);

/// Forgets the syncobj fds closed everywhere; returns what to drop outside the lock.
fn collect_syncobj_files(map: &mut HashMap<FileId, SyncobjFile>) -> Vec<SyncobjFile> {
    let ids: Vec<FileId> = map.keys().copied().collect();
    let ends: Vec<BorrowedFd<'_>> = ids.iter().map(|id| map[id].model_end.as_fd()).collect();
    let closed = sync_file::peers_closed(&ends);
    drop(ends);
    ids.iter()
        .zip(closed)
        .filter(|(_, c)| *c)
        .filter_map(|(id, _)| map.remove(id))
        .collect()
}

/// `drm_syncobj_get_fd`: a new close-on-exec fd holding a reference to `syncobj`.
pub(crate) fn export_fd(syncobj: Arc<Syncobj>) -> Result<OwnedFd, Errno> {
    let (user_end, model_end) = sync_file::socket_pair()?;
    let id = fdid::file_id(user_end.as_raw_fd())?;
    let garbage = {
        let mut reg = lock(&SYNCOBJ_FILES);
        let map = reg.get_or_insert_with(HashMap::new);
        let garbage = collect_syncobj_files(map);
        map.insert(id, SyncobjFile { model_end, syncobj });
        garbage
    };
    drop(garbage);
    Ok(user_end)
}

/// The syncobj behind syncobj fd `fd`; `None` for an fd that is not open or not a syncobj fd.
pub(crate) fn import_fd(fd: RawFd) -> Option<Arc<Syncobj>> {
    let id = fdid::file_id(fd).ok()?;
    let reg = lock(&SYNCOBJ_FILES);
    reg.as_ref()?.get(&id).map(|f| f.syncobj.clone())
}

/// How many syncobj fds are open in this process (debug API, leak report).
#[allow(dead_code)] // Called by the leak report in mod.rs.
pub(crate) fn open_fd_count() -> usize {
    let (n, garbage) = {
        let mut reg = lock(&SYNCOBJ_FILES);
        match reg.as_mut() {
            None => (0, Vec::new()),
            Some(map) => {
                let garbage = collect_syncobj_files(map);
                (map.len(), garbage)
            }
        }
    };
    drop(garbage);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> Arc<Fence> {
        Fence::new(new_context(), 1)
    }

    #[test]
    fn binary_find_fence_is_einval_without_a_fence() {
        let s = Syncobj::new(false);
        assert_eq!(s.find_fence(0).unwrap_err(), Errno::EINVAL);
        let f = pending();
        s.replace_fence(Some(f.clone()));
        assert!(Arc::ptr_eq(&s.find_fence(0).unwrap(), &f));
        assert_eq!(
            s.find_fence(1).unwrap_err(),
            Errno::EINVAL,
            "not a timeline"
        );
        s.replace_fence(None);
        assert_eq!(s.find_fence(0).unwrap_err(), Errno::EINVAL);
        assert!(Syncobj::new(true).find_fence(0).unwrap().is_signalled());
    }

    #[test]
    fn timeline_points_signal_in_order_and_query_reports_last_signalled() {
        let s = Syncobj::new(false);
        let (a, b, c) = (pending(), pending(), pending());
        s.add_point(1, a.clone());
        s.add_point(2, b.clone());
        s.add_point(5, c.clone());
        assert_eq!(s.query(true), 5);
        assert_eq!(s.query(false), 0);
        assert_eq!(s.find_fence(6).unwrap_err(), Errno::EINVAL, "not submitted");
        let p3 = s.find_fence(3).unwrap();
        assert_eq!(p3.seqno, 5, "point 3 is waited for through the next link");
        b.signal();
        assert_eq!(s.query(false), 0, "point 2 waits for point 1");
        assert!(!s.find_fence(2).unwrap().is_signalled());
        a.signal();
        assert_eq!(s.query(false), 2);
        assert!(s.find_fence(2).unwrap().is_signalled());
        assert!(!p3.is_signalled());
        c.signal();
        assert!(p3.is_signalled());
        assert_eq!(s.query(false), 5);
        assert!(s.find_fence(4).unwrap().is_signalled());
    }

    #[test]
    fn out_of_order_point_starts_a_new_context_and_query_may_say_zero() {
        let s = Syncobj::new(false);
        s.add_point(5, Fence::signalled());
        let late = pending();
        s.add_point(3, late.clone());
        assert_eq!(s.query(true), 5, "seqno is max(prev, point)");
        assert_eq!(s.query(false), 0);
        late.signal();
        assert_eq!(s.query(false), 5);
    }

    #[test]
    fn waiter_gets_the_fence_when_the_point_is_submitted() {
        let s = Syncobj::new(false);
        let w = SubmitWait::new(2, Arc::new(Waker::default()));
        s.add_waiter(&w);
        s.add_point(1, pending());
        assert!(w.found().is_none());
        let f = pending();
        s.add_point(2, f);
        assert_eq!(w.found().unwrap().seqno, 2);
        s.remove_waiter(&w);
    }

    #[test]
    fn chain_node_fence_is_recognised_after_a_binary_transfer() {
        let t = Syncobj::new(false);
        t.add_point(7, pending());
        let b = Syncobj::new(false);
        b.replace_fence(Some(t.find_fence(7).unwrap()));
        assert_eq!(b.query(true), 7);
    }

    #[test]
    fn unwrap_merge_keeps_unsignalled_leaves() {
        let s = Syncobj::new(false);
        let (a, b) = (pending(), pending());
        s.add_point(1, a.clone());
        s.add_point(2, b.clone());
        let m = unwrap_merge(s.find_fence(2).unwrap());
        a.signal();
        assert!(!m.is_signalled());
        b.signal();
        assert!(m.is_signalled());
        assert!(unwrap_merge(Fence::signalled()).is_signalled());
    }

    #[test]
    fn handles_start_at_one_and_reuse_the_lowest_free() {
        let t = SyncobjTable::default();
        assert_eq!(t.insert(Syncobj::new(false)), Ok(1));
        assert_eq!(t.insert(Syncobj::new(false)), Ok(2));
        assert_eq!(t.insert(Syncobj::new(false)), Ok(3));
        assert!(t.remove(2).is_some());
        assert!(t.remove(2).is_none());
        assert_eq!(t.insert(Syncobj::new(false)), Ok(2));
        assert_eq!(t.len(), 3);
        assert_eq!(t.describe().unwrap().len(), 3);
        t.clear();
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn syncobj_fd_maps_back_to_the_same_syncobj_until_closed() {
        let s = Syncobj::new(false);
        let fd = export_fd(s.clone()).unwrap();
        assert!(Arc::ptr_eq(&import_fd(fd.as_raw_fd()).unwrap(), &s));
        let before = open_fd_count();
        assert!(before >= 1);
        drop(fd);
        assert!(Arc::strong_count(&s) >= 1);
        let _ = open_fd_count();
    }
}
