//! What the program did to the device, and the report written at exit.
//!
//! Owns: ioctl counts per request (with their errnos), the calls the model could not answer, and
//! each model file's leak report as it closed. Locks: `STATS`, a leaf (nothing is called while it
//! is held).
//!
//! "Unanswered" means the model has no handler: an ioctl whose command number is not in the
//! model's table (the model answers EINVAL, the kernel may have a handler), or a dma-buf or
//! sync-file ioctl on one of the model's fds that `sim::fd_ioctl` left unanswered (see
//! [`foreign_enotty`]). A "leak" is whatever a model file still held (GEM handles,
//! syncobjs, submitqueues, VMAs, dma-buf or sync-file fds) when the program closed its last fd of
//! that file. Files still open at exit are closed by the shim, as the kernel closes them at
//! process exit, and their reports are listed apart: they do not make a run unclean.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use msm_winsys::sim::{ioctl_name, Injection, LeakReport};
use msm_winsys::uapi::{ioc_nr, ioc_type, DRM_COMMAND_BASE};
use msm_winsys::Errno;
use serde_json::{json, Value};

use crate::device;
use crate::paths::{Node, NodePath};

/// Names the report (file path, `%p` for the pid); stderr without it.
pub const REPORT_ENV: &str = "MSMWS_SHIM_REPORT";

#[derive(Debug, Default)]
struct Counts {
    count: u64,
    requests: BTreeSet<u32>,
    errors: BTreeMap<String, u64>,
    answered: bool,
}

#[derive(Debug)]
struct Closed {
    seq: u64,
    node: Node,
    at_exit: bool,
    leaks: LeakReport,
}

#[derive(Debug, Default)]
struct Stats {
    /// By the model's name of the request, or a label for requests it has no handler for.
    ioctls: BTreeMap<String, Counts>,
    mmaps: u64,
    mmap_errors: BTreeMap<String, u64>,
    closed: Vec<Closed>,
}

static STATS: Mutex<Stats> = Mutex::new(Stats {
    ioctls: BTreeMap::new(),
    mmaps: 0,
    mmap_errors: BTreeMap::new(),
    closed: Vec::new(),
});
static EXITING: AtomicBool = AtomicBool::new(false);

fn stats() -> MutexGuard<'static, Stats> {
    STATS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The kernel's name of a core DRM ioctl number the model has no handler for (drm_ioctl.c),
/// so the report says what was asked; `None` for numbers outside this list.
fn core_ioctl_name(nr: u32) -> Option<&'static str> {
    Some(match nr {
        0x01 => "GET_UNIQUE",
        0x02 => "GET_MAGIC",
        0x05 => "GET_CLIENT",
        0x06 => "GET_STATS",
        0x07 => "SET_VERSION",
        0x0a => "GEM_FLINK",
        0x0b => "GEM_OPEN",
        0x0d => "SET_CLIENT_CAP",
        0x11 => "AUTH_MAGIC",
        0x1e => "SET_MASTER",
        0x1f => "DROP_MASTER",
        0x3a => "WAIT_VBLANK",
        0x3b => "CRTC_GET_SEQUENCE",
        0x3c => "CRTC_QUEUE_SEQUENCE",
        0xa0 => "MODE_GETRESOURCES",
        0xa1 => "MODE_GETCRTC",
        0xa2 => "MODE_SETCRTC",
        0xa3 => "MODE_CURSOR",
        0xa4 => "MODE_GETGAMMA",
        0xa5 => "MODE_SETGAMMA",
        0xa6 => "MODE_GETENCODER",
        0xa7 => "MODE_GETCONNECTOR",
        0xaa => "MODE_GETPROPERTY",
        0xab => "MODE_SETPROPERTY",
        0xac => "MODE_GETPROPBLOB",
        0xad => "MODE_GETFB",
        0xae => "MODE_ADDFB",
        0xb1 => "MODE_DIRTYFB",
        0xb2 => "MODE_CREATE_DUMB",
        0xb3 => "MODE_MAP_DUMB",
        0xb4 => "MODE_DESTROY_DUMB",
        0xb5 => "MODE_GETPLANERESOURCES",
        0xb6 => "MODE_GETPLANE",
        0xb7 => "MODE_SETPLANE",
        0xb9 => "MODE_OBJ_GETPROPERTIES",
        0xba => "MODE_OBJ_SETPROPERTY",
        0xbb => "MODE_CURSOR2",
        0xbc => "MODE_ATOMIC",
        0xbd => "MODE_CREATEPROPBLOB",
        0xbe => "MODE_DESTROYPROPBLOB",
        0xc6 => "MODE_CREATE_LEASE",
        0xc7 => "MODE_LIST_LESSEES",
        0xc8 => "MODE_GET_LEASE",
        0xc9 => "MODE_REVOKE_LEASE",
        0xce => "MODE_GETFB2",
        0xcf => "SYNCOBJ_EVENTFD",
        0xd0 => "MODE_CLOSEFB",
        _ => return None,
    })
}

/// The report's key for `request`: the model's name, or for a request it has no handler for,
/// the kernel's name (when known) and the request code.
fn label(request: u32) -> (String, bool) {
    match ioctl_name(request as u64) {
        Some(name) => (name.to_string(), true),
        None => {
            let nr = ioc_nr(request as u64);
            // Driver ioctls are DRM_COMMAND_BASE..DRM_COMMAND_END (0xa0); KMS numbers follow.
            let name = if (DRM_COMMAND_BASE..0xa0).contains(&nr) {
                format!("MSM_{:#04x}", nr - DRM_COMMAND_BASE)
            } else {
                core_ioctl_name(nr).map_or_else(|| format!("{nr:#04x}"), str::to_string)
            };
            (format!("{name} ({request:#010x})"), false)
        }
    }
}

/// The kernel's name of a dma-buf or sync-file ioctl (types `'b'` and `'>'`).
fn fd_ioctl_name(request: u32) -> Option<&'static str> {
    let nr = ioc_nr(request as u64);
    Some(match (ioc_type(request as u64) as u8, nr) {
        (b'b', 0) => "DMA_BUF_IOCTL_SYNC",
        (b'b', 1) => "DMA_BUF_SET_NAME",
        (b'b', 2) => "DMA_BUF_IOCTL_EXPORT_SYNC_FILE",
        (b'b', 3) => "DMA_BUF_IOCTL_IMPORT_SYNC_FILE",
        (b'>', 3) => "SYNC_IOC_MERGE",
        (b'>', 4) => "SYNC_IOC_FILE_INFO",
        (b'>', 5) => "SYNC_IOC_SET_DEADLINE",
        (b'b' | b'>', _) => "dma-buf/sync-file ioctl",
        _ => return None,
    })
}

/// Whether `request` is of the sync-file or dma-buf type, which the model may answer on an fd
/// that is not a device fd.
pub fn is_fd_object_request(request: u32) -> bool {
    matches!(ioc_type(request as u64) as u8, b'b' | b'>')
}

/// An ioctl on an fd that is not a device fd which failed with ENOTTY: if it is a dma-buf or
/// sync-file request, the fd can only be one the model made (a real dma-buf or sync file knows
/// its ioctls), so the model has no answer for it. Other requests are the program's business.
pub fn foreign_enotty(request: u32) {
    let Some(name) = fd_ioctl_name(request) else {
        return;
    };
    let mut s = stats();
    let c = s
        .ioctls
        .entry(format!(
            "{name} on a dma-buf/sync-file fd ({request:#010x})"
        ))
        .or_default();
    c.count += 1;
    c.requests.insert(request);
    *c.errors.entry("ENOTTY".into()).or_default() += 1;
}

/// One sync-file or dma-buf ioctl the model answered on one of its own fds, and its result.
pub fn fd_ioctl(request: u32, result: Result<(), Errno>) {
    let name = fd_ioctl_name(request).unwrap_or("dma-buf/sync-file ioctl");
    let mut s = stats();
    let c = s.ioctls.entry(name.to_string()).or_default();
    c.count += 1;
    c.answered = true;
    c.requests.insert(request);
    if let Err(e) = result {
        *c.errors.entry(e.name().into_owned()).or_default() += 1;
    }
}

/// One ioctl on a device fd and its result.
pub fn ioctl(request: u32, result: Result<(), Errno>) {
    let (key, answered) = label(request);
    let mut s = stats();
    let c = s.ioctls.entry(key).or_default();
    c.count += 1;
    c.answered = answered;
    c.requests.insert(request);
    if let Err(e) = result {
        *c.errors.entry(e.name().into_owned()).or_default() += 1;
    }
}

/// One mmap of a device fd and its result.
pub fn mmap(result: Result<(), Errno>) {
    let mut s = stats();
    s.mmaps += 1;
    if let Err(e) = result {
        *s.mmap_errors.entry(e.name().into_owned()).or_default() += 1;
    }
}

/// A model file closed: by the program's last close of it, or by the shim at exit.
pub fn file_closed(seq: u64, node: Node, leaks: LeakReport) {
    let at_exit = EXITING.load(Ordering::Acquire);
    stats().closed.push(Closed {
        seq,
        node,
        at_exit,
        leaks,
    });
}

/// From now on, files that close are closed by the process's exit.
pub fn set_exiting() {
    EXITING.store(true, Ordering::Release);
}

fn leaks_json(l: &LeakReport) -> Value {
    json!({
        "handles": l.handles,
        "syncobjs": l.syncobjs,
        "queues": l.queues,
        "vmas": l.vmas.iter().map(|(iova, size_B)| json!({"iova": format!("{iova:#x}"), "size": size_B})).collect::<Vec<_>>(),
        "open_fds": l.open_fds,
    })
}

fn injection_json(rule: &Injection, hits: u32, fired: bool) -> Value {
    json!({
        "rule": format!("{}:{}:{}", rule.point, rule.nth, rule.errno.name()),
        "hits": hits,
        "fired": fired,
    })
}

/// The whole report as one JSON object.
pub fn to_json() -> Value {
    let s = stats();
    let config = device::config();
    let (profile, options) = match config {
        Ok(c) => (json!(c.profile), json!(c.words)),
        Err(_) => (Value::Null, Value::Null),
    };
    // Each rule and what became of it; before the device is made, the rules as asked for.
    let injections: Vec<Value> = match (config, device::made()) {
        (_, Some(Ok(sim))) => sim
            .injections()
            .iter()
            .map(|s| injection_json(&s.rule, s.hits, s.fired))
            .collect(),
        (Ok(c), _) => c
            .inject
            .iter()
            .map(|r| injection_json(r, 0, false))
            .collect(),
        (Err(_), _) => Vec::new(),
    };
    let error = match (config, device::made()) {
        (Err(e), _) => Some(e.clone()),
        (_, Some(Err(e))) => Some(e.to_string()),
        _ => None,
    };
    let ioctls: serde_json::Map<String, Value> = s
        .ioctls
        .iter()
        .map(|(k, c)| {
            let requests: Vec<String> = c.requests.iter().map(|r| format!("{r:#010x}")).collect();
            (
                k.clone(),
                json!({"count": c.count, "requests": requests, "errors": c.errors}),
            )
        })
        .collect();
    let unanswered: Vec<Value> = s
        .ioctls
        .iter()
        .filter(|(_, c)| !c.answered)
        .map(|(k, c)| json!({"ioctl": k, "count": c.count}))
        .collect();
    let files: Vec<Value> = s
        .closed
        .iter()
        .map(|c| {
            json!({
                "file": c.seq,
                "node": c.node.kind(),
                "closed_by": if c.at_exit { "exit" } else { "program" },
                "leaks": leaks_json(&c.leaks),
                "leaked": !c.leaks.is_empty(),
            })
        })
        .collect();
    let leaked = s.closed.iter().any(|c| !c.at_exit && !c.leaks.is_empty());
    let display = match device::made() {
        Some(Ok(sim)) => {
            let d = sim.display_stats();
            json!({
                "flips": d.flips, "pins": d.pins, "unpins": d.unpins, "maps": d.maps,
                "unmaps": d.unmaps, "tlb_invalidate_us": d.tlb_invalidate_us,
                "mapped": d.mapped, "framebuffers": d.framebuffers, "scanouts": d.scanouts,
                "steady": {
                    "scanouts": d.steady_scanouts, "maps": d.steady_maps,
                    "unmaps": d.steady_unmaps,
                },
            })
        }
        _ => Value::Null,
    };
    json!({
        "pid": std::process::id(),
        "program": std::env::args().next(),
        "profile": profile,
        "options": options,
        "injections": injections,
        "error": error,
        "ioctls": ioctls,
        "mmaps": {"count": s.mmaps, "errors": s.mmap_errors},
        "unanswered": unanswered,
        "files": files,
        "display": display,
        "sharing": crate::sharing::to_json(),
        "clean": error.is_none() && unanswered.is_empty() && !leaked,
    })
}

/// Where the report goes: `MSMWS_SHIM_REPORT` made absolute against the working directory at
/// load time (a program may change directory before it exits); `None` for stderr.
fn report_path() -> &'static Option<std::path::PathBuf> {
    static PATH: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let p = std::env::var_os(REPORT_ENV).filter(|p| !p.is_empty())?;
        let p = std::path::PathBuf::from(p);
        Some(match std::env::current_dir() {
            Ok(cwd) if p.is_relative() => cwd.join(p),
            _ => p,
        })
    })
}

/// Reads `MSMWS_SHIM_REPORT` now (called when the library loads).
pub fn init() {
    report_path();
}

/// Writes the report where `MSMWS_SHIM_REPORT` says (`%p` becomes the pid), else to stderr as
/// one line starting `msmws-shim report: `.
pub fn write() {
    let report = to_json();
    match report_path() {
        Some(path) => {
            let path = path
                .to_string_lossy()
                .replace("%p", &std::process::id().to_string());
            let text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!("msmws-shim: cannot write the report to {path}: {e}");
            }
        }
        None => eprintln!("msmws-shim report: {report}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msm_winsys::uapi::{DRM_IOCTL_MSM_GEM_NEW, DRM_IOCTL_VERSION};

    #[test]
    fn labels_name_unanswered_requests_by_the_kernel_name_and_code() {
        assert_eq!(
            label(DRM_IOCTL_MSM_GEM_NEW as u32),
            ("GEM_NEW".into(), true)
        );
        assert_eq!(label(DRM_IOCTL_VERSION as u32), ("VERSION".into(), true));
        assert_eq!(label(0xc008640a), ("GEM_FLINK (0xc008640a)".into(), false));
        assert_eq!(label(0xc0086449), ("MSM_0x09 (0xc0086449)".into(), false));
        assert_eq!(label(0x6430), ("0x30 (0x00006430)".into(), false));
        // SYNC_IOC_MERGE and DMA_BUF_IOCTL_EXPORT_SYNC_FILE; TCGETS is nobody's business here.
        assert_eq!(fd_ioctl_name(0xc0303e03), Some("SYNC_IOC_MERGE"));
        assert_eq!(
            fd_ioctl_name(0xc0086202),
            Some("DMA_BUF_IOCTL_EXPORT_SYNC_FILE")
        );
        assert_eq!(fd_ioctl_name(0x5401), None);
    }
}
