//! What the program shared between its device files: PRIME exports and imports, and the layout
//! metadata records written and read with GEM_INFO (SET_METADATA, GET_METADATA), each with the
//! model's object id so an exporter's record and an importer's read of the same buffer line up.
//!
//! Owns: the list of sharing events, in the order they happened, for the exit report's
//! `sharing` entry; with `MSMWS_SHIM_TRACE=metadata`, each event is also written to stderr as it
//! happens (one line, `msmws-shim-event: ` then the event's JSON), between the drivers' own
//! stderr output (`TU_DEBUG=layout`, `FD_MESA_DEBUG=layout`): ci/layouts reads that stream.
//! Locks: `EVENTS`, a leaf (nothing is called while it is held).
//!
//! A record is decoded with `metadata::inspect` (as the writer's own driver build would read it,
//! checked against the buffer's size): the 8-byte modifier-only form of stock turnip, or the full
//! record of docs/metadata.md, or the rule it breaks.

use std::sync::{Mutex, MutexGuard, OnceLock};

use msm_winsys::metadata::{self, Imported};
use msm_winsys::uapi::*;
use msm_winsys::Errno;
use serde_json::{json, Value};

use crate::fds::DevFile;

/// `metadata` in it: sharing events go to stderr as they happen.
pub const TRACE_ENV: &str = "MSMWS_SHIM_TRACE";

/// Events kept for the report; past this only the count grows (a program exporting in a loop
/// must not grow the shim without bound).
const MAX_EVENTS: usize = 4096;

#[derive(Default)]
struct Events {
    list: Vec<Value>,
    count: u64,
}

static EVENTS: Mutex<Events> = Mutex::new(Events {
    list: Vec::new(),
    count: 0,
});

fn events() -> MutexGuard<'static, Events> {
    EVENTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `MSMWS_SHIM_TRACE` names `word` (a comma-separated list).
fn traced(word: &str) -> bool {
    std::env::var(TRACE_ENV).is_ok_and(|v| v.split(',').any(|w| w.trim() == word))
}

fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| traced("metadata"))
}

fn tracing_ioctls() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| traced("ioctl"))
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// A metadata record as the report shows it.
pub fn record_json(bytes: &[u8], bo_size_B: u64) -> Value {
    match metadata::inspect(bytes, bo_size_B) {
        Ok(Imported::Legacy { modifier }) => json!({
            "form": "modifier-only",
            "modifier": hex(modifier),
        }),
        Ok(Imported::Image(i)) => json!({
            "form": format!("v{}", i.version),
            "modifier": hex(i.layout.modifier),
            "vk_format": i.desc.format.as_raw(),
            "drm_fourcc": hex(i.desc.drm_fourcc.into()),
            "width": i.desc.extent.width,
            "height": i.desc.extent.height,
            "array_layers": i.desc.array_layers,
            "mip_levels": i.desc.mip_levels,
            "samples": i.desc.sample_count(),
            "tile_mode": i.layout.tile_mode as u8,
            "ubwc": i.layout.ubwc,
            "planes": i.layout.planes.iter().map(|p| json!({
                "offset_B": p.params.offset_B,
                "pitch_B": p.params.pitch_B,
                "layer_stride_B": p.params.layer_stride_B,
                "ubwc_offset_B": p.params.ubwc_offset_B,
                "ubwc_pitch_B": p.params.ubwc_pitch_B,
            })).collect::<Vec<_>>(),
            "size_B": i.layout.size_B,
        }),
        Err(e) => json!({
            "form": "invalid",
            "error": e.name(),
            "errno": e.errno_name(),
            "modifier": metadata::freedreno_modifier(bytes).map(hex),
        }),
    }
}

fn push(mut event: Value) {
    let line = {
        let mut ev = events();
        ev.count += 1;
        event["seq"] = json!(ev.count);
        let line = tracing().then(|| event.to_string());
        if ev.list.len() < MAX_EVENTS {
            ev.list.push(event);
        }
        line
    };
    if let Some(line) = line {
        eprintln!("msmws-shim-event: {line}");
    }
}

/// Reads `len` bytes of the program's memory at `ptr`: only called for a buffer the model has
/// just read or written in full (the ioctl succeeded), so it is the caller's valid memory.
///
/// # Safety
/// `ptr..ptr + len` must be readable memory of this process.
unsafe fn user_bytes(ptr: u64, len: usize) -> Vec<u8> {
    if ptr == 0 || len == 0 {
        return Vec::new();
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len) }.to_vec()
}

/// An ioctl the model answered on `f`: records it if it is a sharing event.
///
/// # Safety
/// `arg` is the ioctl's argument as the model just read and wrote it: `ioc_size(request)` bytes.
pub unsafe fn ioctl(f: &DevFile, request: u32, arg: *const libc::c_void, r: Result<(), Errno>) {
    let result = match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.name().into_owned(),
    };
    let object = |handle: u32| f.file().object_of(handle);
    if tracing_ioctls() {
        // SAFETY: the caller's contract.
        unsafe { trace_ioctl(f, request, arg, &result) };
    }
    let base = |op: &str, handle: u32| {
        let (id, size_B) =
            object(handle).map_or((Value::Null, Value::Null), |(i, s)| (json!(i), json!(s)));
        json!({"op": op, "file": f.seq, "handle": handle, "object": id, "size_B": size_B,
               "result": result})
    };
    // By type and number, whatever the direction bits: libdrm's drmCommandWrite (which both
    // turnip and freedreno use for GEM_INFO) asks with _IOW, the uapi header says _IOWR, and the
    // kernel (as the model) dispatches on the number.
    // A shorter argument (the kernel takes one, zero-extended) is not read here.
    let is = |r: u64| {
        let q = u64::from(request);
        ioc_type(q) == ioc_type(r) && ioc_nr(q) == ioc_nr(r) && ioc_size(q) >= ioc_size(r)
    };
    if is(DRM_IOCTL_MSM_GEM_INFO) {
        // SAFETY: the request's argument is a drm_msm_gem_info the model just used.
        let a = unsafe { std::ptr::read_unaligned(arg as *const drm_msm_gem_info) };
        let size_B = object(a.handle).map_or(0, |(_, s)| s);
        let op = match a.info {
            MSM_INFO_SET_METADATA => "set-metadata",
            MSM_INFO_GET_METADATA if a.value == 0 => "get-metadata-length",
            MSM_INFO_GET_METADATA => "get-metadata",
            _ => return,
        };
        let mut e = base(op, a.handle);
        e["len"] = json!(a.len);
        if r.is_ok() && a.value != 0 {
            // SAFETY: the call succeeded, so the model copied `len` bytes from there
            // (SET_METADATA) or wrote `len` bytes there (GET_METADATA; on a kernel that returns 0
            // whatever happened, the caller's buffer of `len` bytes is still readable).
            let bytes = unsafe { user_bytes(a.value, a.len as usize) };
            e["record"] = record_json(&bytes, size_B);
        }
        push(e);
    } else if is(DRM_IOCTL_PRIME_HANDLE_TO_FD) {
        // SAFETY: the request's argument is a drm_prime_handle the model just used.
        let a = unsafe { std::ptr::read_unaligned(arg as *const drm_prime_handle) };
        push(base("export", a.handle));
    } else if is(DRM_IOCTL_PRIME_FD_TO_HANDLE) && r.is_ok() {
        // SAFETY: as above.
        let a = unsafe { std::ptr::read_unaligned(arg as *const drm_prime_handle) };
        push(base("import", a.handle));
    }
}

/// `MSMWS_SHIM_TRACE=ioctl`: one stderr line per ioctl the model answered, with the fields that
/// say which object it was about (the handles of GEM_NEW, GEM_INFO, GEM_CLOSE and PRIME, and
/// GEM_INFO's query and value), for reading a driver's buffer lifetimes next to its own log.
///
/// # Safety
/// As [`ioctl`].
unsafe fn trace_ioctl(f: &DevFile, request: u32, arg: *const libc::c_void, result: &str) {
    let q = u64::from(request);
    let is = |r: u64| ioc_type(q) == ioc_type(r) && ioc_nr(q) == ioc_nr(r);
    let fields = if is(DRM_IOCTL_MSM_GEM_NEW) {
        // SAFETY: the request's argument is a drm_msm_gem_new the model just used.
        let a = unsafe { std::ptr::read_unaligned(arg as *const drm_msm_gem_new) };
        format!(" size {:#x} -> handle {}", a.size, a.handle)
    } else if is(DRM_IOCTL_MSM_GEM_INFO) && ioc_size(q) >= ioc_size(DRM_IOCTL_MSM_GEM_INFO) {
        // SAFETY: as above, a drm_msm_gem_info.
        let a = unsafe { std::ptr::read_unaligned(arg as *const drm_msm_gem_info) };
        format!(" handle {} info {} value {:#x}", a.handle, a.info, a.value)
    } else if is(DRM_IOCTL_GEM_CLOSE) {
        // SAFETY: as above, a drm_gem_close.
        let a = unsafe { std::ptr::read_unaligned(arg as *const drm_gem_close) };
        format!(" handle {}", a.handle)
    } else if is(DRM_IOCTL_PRIME_HANDLE_TO_FD) || is(DRM_IOCTL_PRIME_FD_TO_HANDLE) {
        // SAFETY: as above, a drm_prime_handle.
        let a = unsafe { std::ptr::read_unaligned(arg as *const drm_prime_handle) };
        format!(" fd {} handle {}", a.fd, a.handle)
    } else if is(DRM_IOCTL_SYNCOBJ_QUERY) && result == "ok" {
        // SAFETY: as above, a drm_syncobj_timeline_array; the model just read `count_handles`
        // handles and wrote as many points, so both arrays are the caller's valid memory.
        let a = unsafe { std::ptr::read_unaligned(arg as *const drm_syncobj_timeline_array) };
        let n = a.count_handles as usize;
        // SAFETY: see above.
        let (handles, points) =
            unsafe { (user_bytes(a.handles, n * 4), user_bytes(a.points, n * 8)) };
        let pairs: Vec<String> = handles
            .chunks_exact(4)
            .zip(points.chunks_exact(8))
            .map(|(h, p)| {
                let h = u32::from_ne_bytes(h.try_into().expect("4 bytes"));
                let p = u64::from_ne_bytes(p.try_into().expect("8 bytes"));
                format!("{h}@{p}")
            })
            .collect();
        format!(" {}", pairs.join(" "))
    } else {
        String::new()
    };
    let name = msm_winsys::sim::ioctl_name(q).unwrap_or("?");
    eprintln!("msmws-shim-ioctl: file {} {name}{fields}: {result}", f.seq);
}

/// The report's `sharing` entry.
pub fn to_json() -> Value {
    let ev = events();
    json!({"events": ev.list, "count": ev.count, "truncated": ev.count > ev.list.len() as u64})
}
