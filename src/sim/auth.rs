//! Device nodes, DRM master and who may call what (drivers/gpu/drm/drm_auth.c, drm_file.c,
//! `drm_ioctl_permit` in drm_ioctl.c).
//!
//! Owns: the device's current master and each open file's node and master/auth state. Locks:
//! `Auth::state`, a leaf: nothing else is taken while it is held.
//!
//! Rules modelled:
//! - A file is opened on the primary node (`/dev/dri/card0`) or the render node
//!   (`/dev/dri/renderD128`). The first file opened on the primary node while the device has no
//!   master becomes master, and is authenticated (`drm_master_open` -> `drm_new_set_master`);
//!   later primary files share that master but are not it. Render files are never master.
//! - `drm_ioctl_permit`, in the kernel's order: DRM_ROOT_ONLY without CAP_SYS_ADMIN, DRM_AUTH on
//!   an unauthenticated primary file, DRM_MASTER without being the current master, and any ioctl
//!   without DRM_RENDER_ALLOW on a render file are EACCES.
//! - SET_MASTER / DROP_MASTER (`drm_setmaster_ioctl`, `drm_dropmaster_ioctl`): a file that was
//!   master before (in this process, as the model's files always are) or a CAP_SYS_ADMIN caller
//!   passes `drm_master_check_perm`, anyone else gets EACCES. SET_MASTER: already current master
//!   -> 0; another master -> EBUSY; otherwise the file becomes master (a new master object if it
//!   never was one). DROP_MASTER: not the current master -> EINVAL. Closing the master file drops
//!   the master, so the next primary open becomes master.
//! - GET_MAGIC gives a file a non-zero token (once; the same token after); AUTH_MAGIC (master
//!   only) authenticates the file holding it, once: an unknown or used token is EINVAL.
//! - GET_UNIQUE reports an empty bus id (no SET_VERSION is modelled).
//! - Files are authenticated from the start when the caller has CAP_SYS_ADMIN (`drm_file_alloc`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::dispatch::typed;
use super::SimFile;
use crate::uapi::{drm_auth, drm_unique};
use crate::Errno;

/// Which device node a file was opened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// `/dev/dri/card0`: KMS and, for its master, modesetting.
    Primary,
    /// `/dev/dri/renderD128`: only ioctls marked DRM_RENDER_ALLOW.
    Render,
}

/// `drm_ioctl_desc.flags` (include/drm/drm_ioctl.h).
pub(super) const DRM_AUTH: u32 = 0x1;
pub(super) const DRM_MASTER: u32 = 0x2;
pub(super) const DRM_ROOT_ONLY: u32 = 0x4;
pub(super) const DRM_RENDER_ALLOW: u32 = 0x20;

#[derive(Debug, Default)]
struct FileAuth {
    primary: bool,
    /// `file->master`: the master object this file belongs to (0 = none).
    master: u64,
    is_master: bool,
    was_master: bool,
    authenticated: bool,
    magic: u32,
}

#[derive(Debug, Default)]
struct State {
    /// `dev->master`: the current master object (0 = none).
    master: u64,
    next_master: u64,
    next_magic: u32,
    /// Outstanding magic tokens -> the file that asked for each.
    magics: HashMap<u32, u64>,
    files: HashMap<u64, FileAuth>,
}

impl State {
    fn new_master(&mut self, file: u64) {
        self.next_master += 1;
        let m = self.next_master;
        self.master = m;
        let f = self.files.entry(file).or_default();
        f.master = m;
        f.is_master = true;
        f.was_master = true;
        f.authenticated = true;
    }

    fn is_current_master(&self, file: u64) -> bool {
        self.files
            .get(&file)
            .is_some_and(|f| f.is_master && f.master != 0 && f.master == self.master)
    }
}

/// The device's master bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Auth {
    state: Mutex<State>,
}

impl Auth {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `drm_open_helper`: registers a new file; a primary file may become master.
    pub(super) fn opened(&self, file: u64, node: Node, sys_admin: bool) {
        let mut s = self.lock();
        s.files.insert(
            file,
            FileAuth {
                primary: node == Node::Primary,
                authenticated: sys_admin,
                ..Default::default()
            },
        );
        if node == Node::Primary {
            if s.master == 0 {
                s.new_master(file);
            } else {
                let m = s.master;
                s.files.get_mut(&file).expect("inserted above").master = m;
            }
        }
    }

    /// `drm_master_release` (and the magic's `idr_remove`) at file close. Returns whether it
    /// was the device's last open file (`drm_lastclose` follows).
    pub(super) fn closed(&self, file: u64) -> bool {
        let mut s = self.lock();
        if s.is_current_master(file) {
            s.master = 0;
        }
        s.magics.retain(|_, f| *f != file);
        s.files.remove(&file);
        s.files.is_empty()
    }

    /// `drm_ioctl_permit`.
    pub(super) fn permit(&self, file: u64, flags: u32, sys_admin: bool) -> Result<(), Errno> {
        let s = self.lock();
        let Some(f) = s.files.get(&file) else {
            return Err(Errno::ENODEV);
        };
        if flags & DRM_ROOT_ONLY != 0 && !sys_admin {
            return Err(Errno::EACCES);
        }
        if flags & DRM_AUTH != 0 && f.primary && !f.authenticated {
            return Err(Errno::EACCES);
        }
        if flags & DRM_MASTER != 0 && !s.is_current_master(file) {
            return Err(Errno::EACCES);
        }
        if flags & DRM_RENDER_ALLOW == 0 && !f.primary {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    pub(super) fn is_current_master(&self, file: u64) -> bool {
        self.lock().is_current_master(file)
    }

    pub(super) fn is_authenticated(&self, file: u64) -> bool {
        self.lock()
            .files
            .get(&file)
            .is_some_and(|f| f.authenticated)
    }
}

/// `drm_master_check_perm`.
fn check_perm(f: &FileAuth, sys_admin: bool) -> Result<(), Errno> {
    if f.was_master || sys_admin {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// SET_MASTER (`drm_setmaster_ioctl`).
pub(super) fn set_master(file: &SimFile, _kdata: &mut [u8]) -> Result<(), Errno> {
    let auth = &file.dev.auth;
    let mut s = auth.lock();
    let f = s.files.get(&file.id).ok_or(Errno::ENODEV)?;
    check_perm(f, file.dev.options.cap_sys_admin)?;
    if s.is_current_master(file.id) {
        return Ok(());
    }
    if s.master != 0 {
        return Err(Errno::EBUSY);
    }
    let f = s.files.get(&file.id).expect("looked up above");
    if f.master == 0 {
        return Err(Errno::EINVAL);
    }
    if !f.is_master {
        s.new_master(file.id);
        return Ok(());
    }
    s.master = f.master;
    s.files
        .get_mut(&file.id)
        .expect("looked up above")
        .was_master = true;
    Ok(())
}

/// DROP_MASTER (`drm_dropmaster_ioctl`).
pub(super) fn drop_master(file: &SimFile, _kdata: &mut [u8]) -> Result<(), Errno> {
    let mut s = file.dev.auth.lock();
    let f = s.files.get(&file.id).ok_or(Errno::ENODEV)?;
    check_perm(f, file.dev.options.cap_sys_admin)?;
    if !s.is_current_master(file.id) {
        return Err(Errno::EINVAL);
    }
    s.master = 0;
    Ok(())
}

/// GET_MAGIC (`drm_getmagic`): a token for this file, allocated once, counting from 1.
pub(super) fn get_magic(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_auth| {
        let mut s = file.dev.auth.lock();
        let existing = s.files.get(&file.id).ok_or(Errno::ENODEV)?.magic;
        if existing != 0 {
            a.magic = existing;
            return Ok(());
        }
        // Used tokens stay taken (the kernel replaces them with NULL in its idr).
        s.next_magic += 1;
        let m = s.next_magic;
        s.magics.insert(m, file.id);
        s.files.get_mut(&file.id).expect("looked up above").magic = m;
        a.magic = m;
        Ok(())
    })
}

/// AUTH_MAGIC (`drm_authmagic`): authenticates the file holding the token, which is then used up.
pub(super) fn auth_magic(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_auth| {
        let mut s = file.dev.auth.lock();
        let target = s.magics.remove(&a.magic).ok_or(Errno::EINVAL)?;
        if let Some(f) = s.files.get_mut(&target) {
            f.authenticated = true;
        }
        Ok(())
    })
}

/// GET_UNIQUE (`drm_getunique`): the master's bus id, which only the legacy SET_VERSION sets, so
/// its length is 0 and nothing is copied (libdrm's `drmOpenByName` takes the empty id as "this
/// is the device").
pub(super) fn get_unique(_file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |u: &mut drm_unique| {
        u.unique_len = 0;
        Ok(())
    })
}
