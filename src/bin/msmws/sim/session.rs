//! The session of `msmws sim` (docs/sim-protocol.md): one JSON request line in, one JSON result
//! line out. Kept apart from the command's stdin/stdout loop (sim.rs) and free of the CLI's other
//! modules, so the request fuzz target (fuzz/fuzz_targets/sim_request.rs) runs this very code.
//!
//! Every kernel request builds the real uAPI struct and goes through `Kernel::ioctl` on one model
//! file, like any client. It packs the structs itself rather than through `kernel::ioctl`'s typed
//! helpers on purpose: a script must be able to send what the helpers never would (a non-zero
//! pad, unknown flags, a wrong pipe) and see the kernel's errno for it; only the observations (`vmas`, `pt_pages`, `vm_log`, `devcoredump`,
//! `prealloc`) and the clock (`gpu_run`, `gpu_step`) use the model's debug API.
//! The clock is deterministic (`Clock::Manual`): nothing runs until `gpu_run`.
//!
//! Owns: the session (one device, one file, sync-file fds it handed out). Single-threaded, except
//! that a VM_BIND runs on a scoped helper thread so a throttle wait can be interrupted.

use std::collections::HashMap;
use std::ffi::c_void;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use msm_winsys::kernel::Kernel;
use msm_winsys::sim::{Clock, Injection, LeakReport, Sim, SimFile, SimOptions};
use msm_winsys::uapi::*;
use msm_winsys::Errno;
use serde_json::{json, Map, Value};

/// A failed request: the kernel's errno (or EINVAL for a malformed request) and a sentence.
struct Fail {
    errno: Errno,
    message: String,
}

type Res = Result<Value, Fail>;

fn bad(message: impl Into<String>) -> Fail {
    Fail {
        errno: Errno::EINVAL,
        message: message.into(),
    }
}

fn kernel(call: &str, e: Errno) -> Fail {
    Fail {
        errno: e,
        message: format!("{call} failed: {}", e.name()),
    }
}

/// Parameter names of GET_PARAM / SET_PARAM (`MSM_PARAM_*` without the prefix).
const PARAMS: &[(&str, u32)] = &[
    ("GPU_ID", 0x01),
    ("GMEM_SIZE", 0x02),
    ("CHIP_ID", 0x03),
    ("MAX_FREQ", 0x04),
    ("TIMESTAMP", 0x05),
    ("GMEM_BASE", 0x06),
    ("PRIORITIES", 0x07),
    ("PP_PGTABLE", 0x08),
    ("FAULTS", 0x09),
    ("SUSPENDS", 0x0a),
    ("SYSPROF", 0x0b),
    ("COMM", 0x0c),
    ("CMDLINE", 0x0d),
    ("VA_START", 0x0e),
    ("VA_SIZE", 0x0f),
    ("HIGHEST_BANK_BIT", 0x10),
    ("RAYTRACING", 0x11),
    ("UBWC_SWIZZLE", 0x12),
    ("MACROTILE_MODE", 0x13),
    ("UCHE_TRAP_BASE", 0x14),
    ("HAS_PRR", 0x15),
    ("EN_VM_BIND", 0x16),
    ("AQE", 0x17),
];

const GEM_FLAGS: &[(&str, u32)] = &[
    ("SCANOUT", MSM_BO_SCANOUT),
    ("GPU_READONLY", MSM_BO_GPU_READONLY),
    ("NO_SHARE", MSM_BO_NO_SHARE),
    ("CACHED", MSM_BO_CACHED),
    ("WC", MSM_BO_WC),
    ("UNCACHED", MSM_BO_UNCACHED),
    ("CACHED_COHERENT", MSM_BO_CACHED_COHERENT),
];
const QUEUE_FLAGS: &[(&str, u32)] = &[
    ("ALLOW_PREEMPT", MSM_SUBMITQUEUE_ALLOW_PREEMPT),
    ("VM_BIND", MSM_SUBMITQUEUE_VM_BIND),
];
const OP_FLAGS: &[(&str, u32)] = &[("DUMP", MSM_VM_BIND_OP_DUMP)];
const BIND_FLAGS: &[(&str, u32)] = &[
    ("FENCE_FD_IN", MSM_VM_BIND_FENCE_FD_IN),
    ("FENCE_FD_OUT", MSM_VM_BIND_FENCE_FD_OUT),
];
const SYNCOBJ_FLAGS: &[(&str, u32)] = &[("RESET", MSM_SYNCOBJ_RESET)];

/// Errno names `inject` accepts.
const ERRNOS: &[Errno] = &[
    Errno::EPERM,
    Errno::EIO,
    Errno::ENOENT,
    Errno::EINTR,
    Errno::EBADF,
    Errno::EAGAIN,
    Errno::ENOMEM,
    Errno::EACCES,
    Errno::EFAULT,
    Errno::EBUSY,
    Errno::ENODEV,
    Errno::EINVAL,
    Errno::EMFILE,
    Errno::ENOSPC,
    Errno::EPIPE,
    Errno::ETIMEDOUT,
    Errno::EOPNOTSUPP,
    Errno::ECANCELED,
];

/// A number given as a JSON integer, or a string in decimal or `0x` hex.
fn num_value(v: &Value, what: &str) -> Result<u64, Fail> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| bad(format!("{what}: {n} is not a non-negative integer"))),
        Value::String(s) => {
            let t = s.trim();
            let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
                None => t.replace('_', "").parse::<u64>(),
            };
            r.map_err(|_| bad(format!("{what}: \"{s}\" is not a number")))
        }
        _ => Err(bad(format!("{what}: expected a number, got {v}"))),
    }
}

fn field<'a>(req: &'a Map<String, Value>, name: &str) -> Result<&'a Value, Fail> {
    req.get(name)
        .ok_or_else(|| bad(format!("missing field \"{name}\"")))
}

fn num(req: &Map<String, Value>, name: &str) -> Result<u64, Fail> {
    num_value(field(req, name)?, name)
}

fn num_or(req: &Map<String, Value>, name: &str, default: u64) -> Result<u64, Fail> {
    req.get(name).map_or(Ok(default), |v| num_value(v, name))
}

fn u32_of(v: u64, what: &str) -> Result<u32, Fail> {
    u32::try_from(v).map_err(|_| bad(format!("{what}: {v} does not fit in 32 bits")))
}

/// Flags as a list of names from `table` or as a number; absent means 0.
fn flags(req: &Map<String, Value>, name: &str, table: &[(&str, u32)]) -> Result<u32, Fail> {
    match req.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Array(items)) => items.iter().try_fold(0u32, |acc, it| {
            let n = it
                .as_str()
                .ok_or_else(|| bad(format!("{name}: expected flag names, got {it}")))?;
            let bit = table
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, b)| *b)
                .ok_or_else(|| {
                    let known: Vec<&str> = table.iter().map(|(k, _)| *k).collect();
                    bad(format!(
                        "{name}: unknown flag \"{n}\" (known: {})",
                        known.join(", ")
                    ))
                })?;
            Ok(acc | bit)
        }),
        Some(v) => u32_of(num_value(v, name)?, name),
    }
}

/// The array of objects in field `name` (absent: empty).
fn objects<'a>(
    req: &'a Map<String, Value>,
    name: &str,
) -> Result<Vec<&'a Map<String, Value>>, Fail> {
    let Some(v) = req.get(name) else {
        return Ok(vec![]);
    };
    let items = v
        .as_array()
        .ok_or_else(|| bad(format!("{name}: expected an array")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            it.as_object()
                .ok_or_else(|| bad(format!("{name}[{i}]: expected an object")))
        })
        .collect()
}

pub struct Session {
    sim: Sim,
    file: SimFile,
    /// Sync-file fds this session received, by number, so a later request can pass them in.
    fds: HashMap<i32, OwnedFd>,
}

impl Session {
    /// A session on a new model device of chip `profile` with the deterministic clock.
    pub fn new(profile: &str, vm_log_shift: u32) -> Result<Session, String> {
        let options = SimOptions {
            clock: Clock::Manual,
            vm_log_shift,
            ..Default::default()
        };
        let sim = Sim::with_options(profile, options).map_err(|e| e.to_string())?;
        let file = sim.open().map_err(|e| format!("open: {}", e.name()))?;
        Ok(Session {
            sim,
            file,
            fds: HashMap::new(),
        })
    }

    /// Answers one request line (not empty) with its result object.
    pub fn line(&mut self, line: &str) -> Value {
        let result = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(req)) => self.handle(&req),
            Ok(other) => Err(bad(format!("a request is a JSON object, got {other}"))),
            Err(e) => Err(bad(format!("malformed request: {e}"))),
        };
        respond(result)
    }

    /// Ends the session as the client's exit would: its sync-file fds close, then the file, and
    /// the model reports what the file still held.
    pub fn close(self) -> LeakReport {
        let Session { file, fds, .. } = self;
        drop(fds);
        file.close()
    }

    fn ioctl<T>(&self, call: &str, request: u64, arg: &mut T) -> Result<(), Fail> {
        // SAFETY: `arg` is a live uAPI struct; the pointers inside it point at buffers the caller
        // keeps alive for the call (or are the user's own numbers, which the model reports as
        // EFAULT when they are not mapped).
        unsafe { self.file.ioctl(request, arg as *mut T as *mut c_void) }
            .map_err(|e| kernel(call, e))
    }

    fn param(&self, req: &Map<String, Value>) -> Result<u32, Fail> {
        let v = field(req, "param")?;
        if let Some(name) = v.as_str().filter(|s| !s.starts_with("0x")) {
            let name = name.strip_prefix("MSM_PARAM_").unwrap_or(name);
            return PARAMS
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, p)| *p)
                .ok_or_else(|| bad(format!("unknown param \"{name}\"")));
        }
        u32_of(num_value(v, "param")?, "param")
    }

    fn syncobjs(&self, req: &Map<String, Value>, name: &str) -> Result<Vec<drm_msm_syncobj>, Fail> {
        objects(req, name)?
            .into_iter()
            .map(|o| {
                Ok(drm_msm_syncobj {
                    handle: u32_of(num(o, "handle")?, "handle")?,
                    flags: flags(o, "flags", SYNCOBJ_FLAGS)?,
                    point: num_or(o, "point", 0)?,
                })
            })
            .collect()
    }

    fn handle(&mut self, req: &Map<String, Value>) -> Res {
        let call = field(req, "call")?
            .as_str()
            .ok_or_else(|| bad("\"call\" must be a string"))?;
        match call {
            "set_param" => {
                let mut a = drm_msm_param {
                    pipe: MSM_PIPE_3D0,
                    param: self.param(req)?,
                    value: num(req, "value")?,
                    ..Default::default()
                };
                self.ioctl("SET_PARAM", DRM_IOCTL_MSM_SET_PARAM, &mut a)?;
                Ok(json!({}))
            }
            "get_param" => {
                let mut a = drm_msm_param {
                    pipe: MSM_PIPE_3D0,
                    param: self.param(req)?,
                    ..Default::default()
                };
                self.ioctl("GET_PARAM", DRM_IOCTL_MSM_GET_PARAM, &mut a)?;
                Ok(json!({ "value": a.value }))
            }
            "gem_new" => {
                let mut a = drm_msm_gem_new {
                    size: num(req, "size")?,
                    flags: flags(req, "flags", GEM_FLAGS)?,
                    handle: 0,
                };
                self.ioctl("GEM_NEW", DRM_IOCTL_MSM_GEM_NEW, &mut a)?;
                Ok(json!({ "handle": a.handle }))
            }
            "gem_close" => {
                let mut a = drm_gem_close {
                    handle: u32_of(num(req, "handle")?, "handle")?,
                    pad: 0,
                };
                self.ioctl("GEM_CLOSE", DRM_IOCTL_GEM_CLOSE, &mut a)?;
                Ok(json!({}))
            }
            "madvise" => {
                let madv = match req.get("madv").and_then(Value::as_str) {
                    Some(m) if m.eq_ignore_ascii_case("WILLNEED") => MSM_MADV_WILLNEED,
                    Some(m) if m.eq_ignore_ascii_case("DONTNEED") => MSM_MADV_DONTNEED,
                    _ => u32_of(num(req, "madv")?, "madv")?,
                };
                let mut a = drm_msm_gem_madvise {
                    handle: u32_of(num(req, "handle")?, "handle")?,
                    madv,
                    retained: 0,
                };
                self.ioctl("GEM_MADVISE", DRM_IOCTL_MSM_GEM_MADVISE, &mut a)?;
                Ok(json!({ "retained": a.retained != 0 }))
            }
            "submitqueue_new" => {
                let mut a = drm_msm_submitqueue {
                    flags: flags(req, "flags", QUEUE_FLAGS)?,
                    prio: u32_of(num_or(req, "prio", 0)?, "prio")?,
                    id: 0,
                };
                self.ioctl("SUBMITQUEUE_NEW", DRM_IOCTL_MSM_SUBMITQUEUE_NEW, &mut a)?;
                Ok(json!({ "id": a.id }))
            }
            "submitqueue_close" => {
                let mut id = u32_of(num(req, "id")?, "id")?;
                self.ioctl(
                    "SUBMITQUEUE_CLOSE",
                    DRM_IOCTL_MSM_SUBMITQUEUE_CLOSE,
                    &mut id,
                )?;
                Ok(json!({}))
            }
            "syncobj_create" => {
                let signalled = req.get("signalled").and_then(Value::as_bool) == Some(true);
                let mut a = drm_syncobj_create {
                    handle: 0,
                    flags: if signalled {
                        DRM_SYNCOBJ_CREATE_SIGNALED
                    } else {
                        0
                    },
                };
                self.ioctl("SYNCOBJ_CREATE", DRM_IOCTL_SYNCOBJ_CREATE, &mut a)?;
                Ok(json!({ "handle": a.handle }))
            }
            "vm_bind" => self.vm_bind(req),
            "submit" => self.submit(req),
            "vmas" => {
                let vmas: Vec<Value> = self
                    .file
                    .vmas()
                    .iter()
                    .map(|v| {
                        let mut o = json!({"iova": v.iova, "range": v.range_B});
                        if v.null {
                            o["kind"] = json!("null");
                        } else {
                            o["kind"] = json!("bo");
                            o["handle"] = json!(v.handle);
                            o["obj_offset"] = json!(v.obj_offset_B);
                        }
                        if v.dump {
                            o["dump"] = json!(true);
                        }
                        if !v.mapped {
                            o["mapped"] = json!(false);
                        }
                        o
                    })
                    .collect();
                Ok(json!({ "vmas": vmas }))
            }
            "pt_pages" => Ok(json!({ "pages": self.file.pt_pages().unwrap_or(0) })),
            "prealloc" => {
                let (in_flight, _) = self.file.prealloc_in_flight();
                Ok(json!({ "in_flight": in_flight, "last": self.file.last_prealloc() }))
            }
            "gpu_run" => Ok(json!({ "ran": self.sim.gpu_run_until_idle() })),
            "gpu_step" => Ok(json!({ "ran": self.sim.gpu_step() as u32 })),
            "vm_log" => {
                let entries: Vec<Value> = self
                    .file
                    .vm_log()
                    .iter()
                    .map(|e| json!({"op": e.op, "queue": e.queue_id, "iova": e.iova, "range": e.range_B}))
                    .collect();
                Ok(json!({ "entries": entries, "text": self.file.vm_log_text() }))
            }
            "devcoredump" => {
                let dumps = self.sim.devcoredumps();
                Ok(json!({ "text": dumps.last().map(|d| d.text.clone()), "count": dumps.len() }))
            }
            "memory_pressure" => Ok(json!({ "pages": self.sim.memory_pressure() })),
            "inject" => {
                let point = field(req, "point")?
                    .as_str()
                    .ok_or_else(|| bad("\"point\" must be a string"))?;
                let name = field(req, "errno")?
                    .as_str()
                    .ok_or_else(|| bad("\"errno\" must be a name like \"ENOMEM\""))?;
                let errno = ERRNOS
                    .iter()
                    .find(|e| e.name() == name)
                    .copied()
                    .ok_or_else(|| bad(format!("unknown errno \"{name}\"")))?;
                self.sim.inject(Injection {
                    point: point.into(),
                    nth: u32_of(num_or(req, "nth", 1)?, "nth")?,
                    errno,
                });
                Ok(json!({}))
            }
            other => Err(bad(format!("unknown call \"{other}\""))),
        }
    }

    fn vm_bind(&mut self, req: &Map<String, Value>) -> Res {
        let mut ops = Vec::new();
        for o in objects(req, "ops")? {
            let op = match field(o, "op")?.as_str() {
                Some("map") => MSM_VM_BIND_OP_MAP,
                Some("map_null") => MSM_VM_BIND_OP_MAP_NULL,
                Some("unmap") => MSM_VM_BIND_OP_UNMAP,
                _ => u32_of(num(o, "op")?, "op")?,
            };
            ops.push(drm_msm_vm_bind_op {
                op,
                handle: u32_of(num_or(o, "handle", 0)?, "handle")?,
                obj_offset: num_or(o, "obj_offset", 0)?,
                iova: num(o, "iova")?,
                range: num(o, "range")?,
                flags: flags(o, "flags", OP_FLAGS)?,
                pad: 0,
            });
        }
        let ins = self.syncobjs(req, "in_syncobjs")?;
        let outs = self.syncobjs(req, "out_syncobjs")?;
        let mut a = drm_msm_vm_bind {
            flags: flags(req, "flags", BIND_FLAGS)?,
            nr_ops: ops.len() as u32,
            fence_fd: num_or(req, "fence_fd", u32::MAX as u64)? as u32 as i32,
            queue_id: u32_of(num(req, "queue")?, "queue")?,
            syncobj_stride: 16,
            op_stride: 40,
            ..Default::default()
        };
        if !ins.is_empty() {
            a.in_syncobjs = ins.as_ptr() as u64;
            a.nr_in_syncobjs = ins.len() as u32;
        }
        if !outs.is_empty() {
            a.out_syncobjs = outs.as_ptr() as u64;
            a.nr_out_syncobjs = outs.len() as u32;
        }
        if ops.len() == 1 {
            a.u.op = ops[0];
        } else {
            a.u.ops = ops.as_ptr() as u64;
        }
        // The kernel may wait in the prealloc throttle; with the deterministic clock nothing in
        // this session could ever free a job, so a wait is interrupted as a signal would (EINTR).
        let mut interrupted = None;
        let r = std::thread::scope(|s| {
            let t = s.spawn(|| {
                let mut a = a;
                self.ioctl("VM_BIND", DRM_IOCTL_MSM_VM_BIND, &mut a)
                    .map(|()| a)
            });
            loop {
                if t.is_finished() {
                    break;
                }
                let (in_flight, waiters) = self.file.prealloc_in_flight();
                if waiters > 0 {
                    interrupted = Some(in_flight);
                    self.file.interrupt_vm_bind();
                    break;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            t.join().expect("the VM_BIND thread does not panic")
        });
        let a = match (r, interrupted) {
            (Err(f), Some(in_flight)) if f.errno == Errno::EINTR => {
                return Err(Fail {
                    errno: Errno::EINTR,
                    message: format!(
                        "VM_BIND would wait in the prealloc throttle ({in_flight} pages in flight > 1024) \
                         and nothing runs the GPU in this session: interrupted as by a signal; run \
                         gpu_run first"
                    ),
                })
            }
            (r, _) => r?,
        };
        let mut out = json!({ "prealloc_pages": self.file.last_prealloc() });
        if a.flags & MSM_VM_BIND_FENCE_FD_OUT != 0 {
            // SAFETY: the model returned a new sync-file fd that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(a.fence_fd) };
            out["fence_fd"] = json!(fd.as_raw_fd());
            self.fds.insert(fd.as_raw_fd(), fd);
        }
        Ok(out)
    }

    fn submit(&mut self, req: &Map<String, Value>) -> Res {
        let mut cmds = Vec::new();
        for c in objects(req, "cmds")? {
            let mut cmd = drm_msm_gem_submit_cmd {
                r#type: MSM_SUBMIT_CMD_BUF,
                size: u32_of(num(c, "size")?, "size")?,
                ..Default::default()
            };
            cmd.set_iova(num(c, "iova")?);
            cmds.push(cmd);
        }
        let outs = self.syncobjs(req, "out_syncobjs")?;
        let mut a = drm_msm_gem_submit {
            flags: MSM_PIPE_3D0,
            queueid: u32_of(num_or(req, "queue", 0)?, "queue")?,
            nr_cmds: cmds.len() as u32,
            cmds: cmds.as_ptr() as u64,
            syncobj_stride: 16,
            ..Default::default()
        };
        if !outs.is_empty() {
            a.flags |= MSM_SUBMIT_SYNCOBJ_OUT;
            a.out_syncobjs = outs.as_ptr() as u64;
            a.nr_out_syncobjs = outs.len() as u32;
        }
        self.ioctl("GEM_SUBMIT", DRM_IOCTL_MSM_GEM_SUBMIT, &mut a)?;
        Ok(json!({ "fence": a.fence }))
    }
}

fn respond(r: Res) -> Value {
    match r {
        Ok(mut v) => {
            let mut out = Map::new();
            out.insert("ok".into(), Value::Bool(true));
            if let Value::Object(m) = &mut v {
                out.append(m);
            }
            Value::Object(out)
        }
        Err(f) => json!({"ok": false, "errno": f.errno.name(), "message": f.message}),
    }
}
