//! Fault-injection sweeps of the winsys: each flow (the kernel-facing work of a scenario, or of a
//! C test) runs once clean to count its kernel calls by request type, then once per injection
//! point (call `j` of request `R` failing once with an errno the kernel can return there), and
//! each run is classified.
//!
//! Owns: the flows, the errno table and the classification. Takes no locks itself; the model's
//! leak check is switched to `Record` for the sweep (process-wide), so run sweeps one at a time.
//!
//! A run *survives* when nothing panics, the error (if the fault reached the flow) names the
//! failing call, the model's leak report is empty once the flow's devices are dropped, and the
//! device keeps working: the same flow run again on the same device succeeds, or the device
//! reports itself lost both times. Every wait in the flows is bounded, so a run cannot hang.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Effort, Outcome};
use crate::bind::{GpuVm, Placement};
use crate::bo::{Bo, BoFlags, FlipChain};
use crate::device::ProbeOptions;
use crate::iova::Fence;
use crate::kernel::ioctl::{self, SyncPoint};
use crate::metadata::layout::DRM_FORMAT_MOD_QCOM_COMPRESSED;
use crate::metadata::{encode, plan, Identity, ImageDesc, Imported};
use crate::sim::display::{BYTES_1080P, CRTC_ID};
use crate::sim::{self, Injection, LeakCheck, LeakReport, Node, Sim, SimOptions, VblankClock};
use crate::uapi::*;
use crate::{Device, Errno};

/// What the kernel can return at each request (or inner point of the model) for reasons the
/// caller cannot prevent: ENOMEM where it allocates, EINTR where it waits or locks
/// interruptibly, ETIMEDOUT/ETIME for timed waits, EPIPE on a lost VM_BIND-mode VM, EMFILE
/// where it makes an fd (spec/kernel.md and the msm/DRM sources; ci/fault-sweep's table).
pub const ERRNOS: &[(&str, &[Errno])] = &[
    ("GEM_NEW", &[Errno::ENOMEM]),
    ("GEM_INFO", &[Errno::ENOMEM]),
    ("GEM_CPU_PREP", &[Errno::EINTR, Errno::ETIMEDOUT]),
    ("GEM_MADVISE", &[Errno::EINTR]),
    ("GEM_SUBMIT", &[Errno::ENOMEM, Errno::EINTR, Errno::EPIPE]),
    ("WAIT_FENCE", &[Errno::EINTR, Errno::ETIMEDOUT]),
    ("SUBMITQUEUE_NEW", &[Errno::ENOMEM]),
    ("VM_BIND", &[Errno::ENOMEM, Errno::EINTR, Errno::EPIPE]),
    ("SET_PARAM", &[Errno::ENOMEM]),
    ("SYNCOBJ_CREATE", &[Errno::ENOMEM]),
    ("SYNCOBJ_WAIT", &[Errno::EINTR, Errno::ETIME, Errno::ENOMEM]),
    (
        "SYNCOBJ_TIMELINE_WAIT",
        &[Errno::EINTR, Errno::ETIME, Errno::ENOMEM],
    ),
    ("SYNCOBJ_HANDLE_TO_FD", &[Errno::ENOMEM, Errno::EMFILE]),
    ("SYNCOBJ_FD_TO_HANDLE", &[Errno::ENOMEM]),
    ("PRIME_HANDLE_TO_FD", &[Errno::ENOMEM, Errno::EMFILE]),
    ("PRIME_FD_TO_HANDLE", &[Errno::ENOMEM]),
    ("MODE_ADDFB2", &[Errno::ENOMEM]),
    ("MODE_PAGE_FLIP", &[Errno::ENOMEM, Errno::EINTR]),
    ("VM_BIND:job", &[Errno::ENOMEM]),
    ("VM_BIND:pin", &[Errno::ENOMEM]),
    ("VM_BIND:prealloc", &[Errno::ENOMEM]),
    ("GEM_INFO:SET_METADATA", &[Errno::EINTR]),
    ("GEM_INFO:GET_METADATA", &[Errno::EINTR]),
];

/// Bound on every wait a flow makes.
const WAIT: Duration = Duration::from_secs(5);

/// One flow: the device work of a scenario or C test, on a fresh model device. It releases what
/// it made whether it succeeds or fails (a driver tearing down after an error does the same) and
/// returns the first error as text.
pub struct Flow {
    pub name: &'static str,
    pub about: &'static str,
    profile: &'static str,
    options: fn() -> SimOptions,
    node: Node,
    run: fn(&Sim, &Arc<Device>) -> Result<(), String>,
}

fn uapi(minor: u32) -> SimOptions {
    SimOptions {
        uapi_minor: minor,
        ..SimOptions::default()
    }
}

/// Every flow, in the order a sweep runs them.
pub const FLOWS: &[Flow] = &[
    Flow {
        name: "buffers-vm-bind",
        about: "bind-churn / test_gpu_vm: buffers, submits, frees, flushes (VM_BIND kernel)",
        profile: "a750",
        options: SimOptions::default,
        node: Node::Render,
        run: buffers,
    },
    Flow {
        name: "buffers-set-iova",
        about: "the same on a UAPI 1.12 kernel (userspace iova, zombies)",
        profile: "a660",
        options: || uapi(12),
        node: Node::Render,
        run: buffers,
    },
    Flow {
        name: "buffers-kernel-iova",
        about: "the same on a UAPI 1.9 kernel (kernel-chosen addresses)",
        profile: "a618",
        options: || uapi(9),
        node: Node::Render,
        run: buffers,
    },
    Flow {
        name: "driver",
        about: "test_driver: submitqueue, seqno wait, CPU map, replay address, metadata",
        profile: "a750",
        options: SimOptions::default,
        node: Node::Render,
        run: driver,
    },
    Flow {
        name: "sparse",
        about: "sparse: null and buffer binds with waits and signals",
        profile: "a750",
        options: SimOptions::default,
        node: Node::Render,
        run: sparse,
    },
    Flow {
        name: "external-objects",
        about: "external-objects / test_bo: image export with metadata, import on a second file",
        profile: "a750",
        options: SimOptions::default,
        node: Node::Render,
        run: external_objects,
    },
    Flow {
        name: "compositor",
        about: "compositor: a flip chain of imported buffers on the display",
        profile: "a750",
        options: || SimOptions {
            vblank: VblankClock::Immediate,
            ..SimOptions::default()
        },
        node: Node::Primary,
        run: compositor,
    },
];

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs `body` on a new GPU VM and destroys the VM whatever `body` returned; the first error
/// wins.
fn with_vm(
    dev: &Arc<Device>,
    body: impl FnOnce(&GpuVm) -> Result<(), String>,
) -> Result<(), String> {
    let vm = GpuVm::new(dev).map_err(err)?;
    let r = body(&vm);
    let d = vm.destroy(dev.kernel()).map_err(err);
    r.and(d)
}

/// A syncobj for the flow's submits to signal, destroyed whatever `body` returned.
fn with_syncobj(dev: &Device, body: impl FnOnce(u32) -> Result<(), String>) -> Result<(), String> {
    let h = ioctl::syncobj_create(dev.kernel(), false).map_err(err)?;
    let r = body(h);
    let d = ioctl::syncobj_destroy(dev.kernel(), h).map_err(err);
    r.and(d)
}

fn wait_point(dev: &Device, p: SyncPoint) -> Result<(), String> {
    let deadline = ioctl::monotonic_now_ns() + WAIT.as_nanos() as u64;
    ioctl::syncobj_timeline_wait(dev.kernel(), &[p], deadline as i64).map_err(err)
}

/// Two frames of mixed buffers: create, submit over them, free half while the submit may still
/// run, wait, submit over the rest, free them. Every buffer made is freed on every path.
fn buffers(_sim: &Sim, dev: &Arc<Device>) -> Result<(), String> {
    let k = dev.kernel();
    // The syncobj the frees wait for outlives the VM that may still wait for it.
    with_syncobj(dev, |done| {
        with_vm(dev, |vm| {
            let mut live = Vec::new();
            let mut users: Vec<SyncPoint> = vec![];
            let r = (|| {
                for frame in 1..=2u64 {
                    for i in 0..6u64 {
                        live.push(
                            vm.create_buffer(k, 4096 * (1 + i % 3), MSM_BO_WC)
                                .map_err(err)?,
                        );
                    }
                    let cmds: Vec<(u64, u32)> = live.iter().map(|b| (b.iova, 64)).collect();
                    let point = SyncPoint {
                        handle: done,
                        point: frame,
                    };
                    vm.submit(k, 0, &cmds, &live, &[], &[point]).map_err(err)?;
                    users = vec![point];
                    for b in live.drain(..3) {
                        vm.free_buffer(k, b, &users, false).map_err(err)?;
                    }
                    vm.flush(k).map_err(err)?;
                    wait_point(dev, point)?;
                }
                Ok(())
            })();
            // Whatever failed, the buffers still held go (after the last submit that used them).
            let frees = live
                .drain(..)
                .map(|b| vm.free_buffer(k, b, &users, false).map_err(err))
                .collect::<Result<Vec<()>, String>>();
            r.and(frees.map(drop))
        })
    })
}

/// What a driver's kernel backend does besides buffers (test_driver.c): a submitqueue with a
/// priority, a submit and a seqno wait, a CPU map, a replayable address, raw metadata.
fn driver(_sim: &Sim, dev: &Arc<Device>) -> Result<(), String> {
    let k = dev.kernel();
    let queue = ioctl::submitqueue_new(k, 0, 1).map_err(err)?;
    let r = with_syncobj(dev, |done| {
        with_vm(dev, |vm| {
            // The buffers' users: the submit signals this point, and their frees wait for it even
            // when the flow stops early (the GPU may still run the submit).
            let point = SyncPoint {
                handle: done,
                point: 1,
            };
            let mut users: Vec<SyncPoint> = vec![];
            let buf = vm.create_buffer(k, 8192, MSM_BO_WC).map_err(err)?;
            let cap = match vm.create_buffer_at(k, 4096, MSM_BO_WC, Placement::Top) {
                Ok(c) => c,
                Err(e) => {
                    vm.free_buffer(k, buf, &[], false).map_err(err)?;
                    return Err(err(e));
                }
            };
            let r = (|| {
                let mut map = ioctl::gem_map(k, buf.handle, buf.size_B as usize).map_err(err)?;
                map[0] = 1;
                drop(map);
                ioctl::gem_set_metadata(k, buf.handle, &[1, 2, 3, 4, 5, 6, 7, 8]).map_err(err)?;
                let seqno = vm
                    .submit(k, queue, &[(buf.iova, 64)], &[buf, cap], &[], &[point])
                    .map_err(err)?;
                users.push(point);
                ioctl::wait_fence(k, queue, seqno, WAIT.as_nanos() as u64).map_err(err)?;
                Ok(())
            })();
            let f1 = vm.free_buffer(k, buf, &users, false).map_err(err);
            let f2 = vm.free_buffer(k, cap, &users, false).map_err(err);
            r.and(f1).and(f2)
        })
    });
    let c = ioctl::submitqueue_close(k, queue).map_err(err);
    r.and(c)
}

/// Sparse residency: a 1 MiB range first bound to the null page, then half of it to a buffer,
/// waiting for and signalling timeline points; then unbound.
fn sparse(_sim: &Sim, dev: &Arc<Device>) -> Result<(), String> {
    use crate::bind::BindOp;
    let k = dev.kernel();
    with_vm(dev, |vm| {
        // A device that came up without VM_BIND (its EN_VM_BIND refused: the probe falls back
        // to userspace addresses) offers no sparse binding, as turnip would not.
        let Some(bind) = vm.bind_vm() else {
            return Ok(());
        };
        // The resource's range: an address of the allocator, held by a placeholder buffer.
        let range = vm.create_buffer(k, 1 << 20, MSM_BO_WC).map_err(err)?;
        let r = with_syncobj(dev, |sync| {
            let backing = ioctl::gem_new(k, 256 << 10, MSM_BO_WC).map_err(err)?;
            let point = |p| SyncPoint {
                handle: sync,
                point: p,
            };
            bind.sparse(
                &[BindOp::map_null(range.iova, range.size_B)],
                &[],
                &[point(1)],
            );
            bind.sparse(
                &[BindOp::map(range.iova, 256 << 10, backing, 0)],
                &[point(1)],
                &[point(2)],
            );
            let r = vm
                .flush(k)
                .map_err(err)
                .and_then(|()| wait_point(dev, point(2)));
            // Give the range back to its placeholder's mapping before it is freed.
            bind.sparse(
                &[BindOp::map(range.iova, range.size_B, range.handle, 0)],
                &[],
                &[point(3)],
            );
            let r2 = vm
                .flush(k)
                .map_err(err)
                .and_then(|()| wait_point(dev, point(3)));
            let c = ioctl::gem_close(k, backing).map_err(err);
            r.and(r2).and(c)
        });
        let f = vm.free_buffer(k, range, &[], false).map_err(err);
        r.and(f)
    })
}

fn identity() -> Identity {
    Identity {
        chip_id: crate::sim::PROFILES[0].chip_id_param(),
        driver_id: 0x6d65_7361_2d32_3561,
    }
}

/// An exported image with its layout record, imported on a second file of the same GPU (a GL
/// importer), read back and checked, mapped into the importer's VM and used by a submit; the
/// buffers go back through the buffer cache.
fn external_objects(sim: &Sim, dev: &Arc<Device>) -> Result<(), String> {
    let desc = ImageDesc::new_2d(ash::vk::Format::R8G8B8A8_UNORM, 256, 256);
    let layout = plan(&desc, DRM_FORMAT_MOD_QCOM_COMPRESSED).map_err(err)?;
    let record = encode(&identity(), &desc, &layout).map_err(err)?;
    let size_B = layout.size_B.next_multiple_of(4096);
    let bo = Bo::new(dev, size_B, BoFlags::WC | BoFlags::SHARED).map_err(err)?;
    let fd = bo.export_image(&record).map_err(err)?;
    let importer = Arc::new(Device::on_sim(sim).map_err(err)?);
    let (imported, meta) =
        Bo::import_image(&importer, std::os::fd::AsFd::as_fd(&fd), &identity()).map_err(err)?;
    match meta.map_err(err)? {
        Imported::Image(got) if got.layout == layout => {}
        other => return Err(format!("imported layout differs: {other:?}")),
    }
    with_vm(&importer, |vm| {
        let buf = vm.map_bo(importer.kernel(), &imported).map_err(err)?;
        let r = vm
            .submit(importer.kernel(), 0, &[(buf.iova, 64)], &[buf], &[], &[])
            .map(drop)
            .map_err(err);
        let u = vm.unmap_bo(importer.kernel(), buf, &[]).map_err(err);
        r.and(u)
    })?;
    imported.add_fence(Fence::Queue {
        queue_id: 0,
        seqno: 0,
    });
    drop(imported);
    drop(bo);
    importer.bo_manager().cache_flush(&importer);
    dev.bo_manager().cache_flush(dev);
    Ok(())
}

/// A compositor's flip chain: three scanout buffers of a client, imported by dma-buf, flipped
/// twice round, then dropped.
fn compositor(sim: &Sim, dev: &Arc<Device>) -> Result<(), String> {
    // Scanout buffers cover the mode (1080p), or the flip is ENOSPC.
    let layout = super::compositor::LAYOUT;
    let client = Arc::new(Device::on_sim(sim).map_err(err)?);
    let flags = BoFlags::WC | BoFlags::SCANOUT | BoFlags::SHARED;
    let bufs = (0..3)
        .map(|_| Bo::new(&client, BYTES_1080P, flags))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let fds = bufs
        .iter()
        .map(Bo::export_dmabuf)
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    // What was on screen before (the console's framebuffer) goes back on screen at the end, as
    // a compositor hands the display back when it exits: dropping the chain would otherwise
    // remove the framebuffer on screen, and that turns the CRTC off.
    let console_fb = ioctl::mode_crtc_fb(dev.kernel(), CRTC_ID).map_err(err)?;
    let chain = FlipChain::new(dev, CRTC_ID);
    let mut index = [None; 3];
    let r = (|| {
        for frame in 0..6 {
            let b = frame % 3;
            let i = match index[b] {
                Some(i) => i,
                None => *index[b].insert(
                    chain
                        .import_dmabuf(std::os::fd::AsFd::as_fd(&fds[b]), layout)
                        .map_err(err)?,
                ),
            };
            chain.flip(i).map_err(err)?;
        }
        Ok(())
    })();
    // Retried once, as drmIoctl retries EINTR: a failed hand-back turns the display off.
    let flip_back = || ioctl::mode_page_flip(dev.kernel(), CRTC_ID, console_fb);
    let back = match chain.current() {
        Some(_) => flip_back().or_else(|_| flip_back()).map_err(err),
        None => Ok(()),
    };
    r.and(back)
}

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// The fault was absorbed or reported, nothing leaked, and the device kept working (or
    /// reported itself lost).
    Survived,
    /// The rule never fired (the flow made fewer calls this time: timing-dependent queries).
    NotFired,
    /// The error did not name the failing call.
    Unnamed,
    /// The same flow on the same device failed afterwards without reporting a loss.
    Broken,
    /// The model's leak report was not empty at teardown.
    Leak,
    /// A panic.
    Crash,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Survived => "survived",
            Verdict::NotFired => "not-fired",
            Verdict::Unnamed => "unnamed",
            Verdict::Broken => "broken",
            Verdict::Leak => "leak",
            Verdict::Crash => "crash",
        }
    }
}

/// One run of a flow under one rule (or none).
#[derive(Debug, Clone)]
pub struct Run {
    pub verdict: Verdict,
    /// The flow's first result: `Ok` when the fault was absorbed.
    pub first: Result<(), String>,
    pub detail: String,
}

fn is_loss(e: &str) -> bool {
    e.contains("device lost") || e.contains("EPIPE")
}

/// Whether error text `e` names the call that failed at `point`.
fn names_call(e: &str, point: &str) -> bool {
    let call = point.split(':').next().unwrap_or(point);
    // A failed VM_BIND job is seen only as the loss of the VM it leaves behind.
    e.contains(call) || (point == "VM_BIND:job" && is_loss(e))
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Runs `flow` once on a fresh model device with `rule` (if any) injected, and classifies it.
/// Also returns the hit counts of `count` rules (never firing) added before `rule`.
pub fn run_once(flow: &Flow, rule: Option<Injection>, count: &[&str]) -> (Run, Vec<u32>) {
    let sim = match Sim::with_options(flow.profile, (flow.options)()) {
        Ok(s) => s,
        Err(e) => {
            let run = Run {
                verdict: Verdict::Crash,
                first: Err(e.to_string()),
                detail: "no model".into(),
            };
            return (run, vec![]);
        }
    };
    for point in count {
        sim.inject(Injection {
            point: (*point).into(),
            nth: u32::MAX,
            errno: Errno::EIO,
        });
    }
    let point = rule.as_ref().map(|r| r.point.clone());
    if let Some(r) = rule {
        sim.inject(r);
    }
    let _ = sim::take_recorded_leaks();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let open = || {
            Device::new(
                Box::new(sim.open_node(flow.node).map_err(err)?),
                ProbeOptions::default(),
            )
            .map(Arc::new)
            .map_err(err)
        };
        let (first, dev) = match open() {
            Ok(dev) => ((flow.run)(&sim, &dev), Some(dev)),
            // The probe failed: the device is the next one opened.
            Err(e) => (Err(e), None),
        };
        let again = match first {
            Ok(()) => None,
            Err(_) => Some(match &dev {
                Some(dev) => (flow.run)(&sim, dev),
                None => open().and_then(|dev| (flow.run)(&sim, &dev)),
            }),
        };
        drop(dev);
        sim.gpu_wait_idle(WAIT);
        (first, again)
    }));
    let hits: Vec<u32> = sim.injections().iter().map(|s| s.hits).collect();
    let fired = point.is_some() && sim.injections().last().is_some_and(|s| s.fired);
    let leaks = sim::take_recorded_leaks();
    let run = match outcome {
        Err(p) => Run {
            verdict: Verdict::Crash,
            first: Err("panic".into()),
            detail: panic_text(p),
        },
        Ok((first, again)) => {
            // A lost VM takes no more unmaps (VM_BIND -> EPIPE): its mappings go with the
            // file, as the kernel frees them at close. Anything else left is a leak.
            let lost = first.as_ref().err().is_some_and(|e| is_loss(e));
            let leaks: Vec<_> = leaks
                .into_iter()
                .filter(|(_, r)| {
                    !(lost
                        && LeakReport {
                            vmas: vec![],
                            ..r.clone()
                        }
                        .is_empty())
                })
                .collect();
            let (verdict, detail) = if !leaks.is_empty() {
                let text: Vec<String> = leaks.iter().map(|(_, r)| r.summary()).collect();
                (Verdict::Leak, text.join("; "))
            } else if point.is_some() && !fired {
                (Verdict::NotFired, String::new())
            } else {
                match (&first, &again) {
                    (Err(e), _) if !names_call(e, point.as_deref().unwrap_or("")) => {
                        (Verdict::Unnamed, e.clone())
                    }
                    (Err(e), Some(Err(e2))) if !(is_loss(e) && is_loss(e2)) => {
                        (Verdict::Broken, format!("{e}; then {e2}"))
                    }
                    (r, _) => (
                        Verdict::Survived,
                        r.as_ref().err().cloned().unwrap_or_default(),
                    ),
                }
            };
            Run {
                verdict,
                first,
                detail,
            }
        }
    };
    (run, hits)
}

/// `limit` call indices of `1..=count`, evenly spaced, first and last included.
pub fn sample(count: u32, limit: u32) -> Vec<u32> {
    if count <= limit {
        return (1..=count).collect();
    }
    let limit = limit.max(2);
    let mut v: Vec<u32> = (0..limit)
        .map(|i| {
            1 + ((u64::from(i) * u64::from(count - 1) + u64::from(limit - 1) / 2)
                / u64::from(limit - 1)) as u32
        })
        .collect();
    v.dedup();
    v
}

/// The sweep of one flow.
#[derive(Debug, Clone)]
pub struct FlowSweep {
    pub flow: &'static str,
    /// Kernel calls (and inner points) of the clean run, by point.
    pub calls: BTreeMap<&'static str, u32>,
    /// (point, call index, errno, run).
    pub runs: Vec<(&'static str, u32, Errno, Run)>,
    /// The clean run's own verdict (must be survived).
    pub clean: Run,
}

impl FlowSweep {
    pub fn count(&self, v: Verdict) -> usize {
        self.runs.iter().filter(|r| r.3.verdict == v).count()
    }
}

/// Sweeps `flow`: a clean run to count the points, then each sampled point with each errno.
pub fn sweep_flow(flow: &'static Flow, limit: u32) -> FlowSweep {
    let points: Vec<&str> = ERRNOS.iter().map(|(p, _)| *p).collect();
    let (clean, hits) = run_once(flow, None, &points);
    let calls: BTreeMap<&'static str, u32> = ERRNOS
        .iter()
        .zip(hits)
        .filter(|(_, h)| *h > 0)
        .map(|((p, _), h)| (*p, h))
        .collect();
    let mut runs = vec![];
    for (&point, &count) in &calls {
        let errnos = ERRNOS.iter().find(|(p, _)| *p == point).map(|(_, e)| *e);
        // EPIPE only where a VM can be lost: VM_BIND kernels.
        let vm_bind = (flow.options)().uapi_minor >= 13;
        for j in sample(count, limit) {
            for &errno in errnos
                .unwrap_or(&[])
                .iter()
                .filter(|&&e| vm_bind || e != Errno::EPIPE)
            {
                let rule = Injection {
                    point: point.into(),
                    nth: j,
                    errno,
                };
                let (run, _) = run_once(flow, Some(rule), &[]);
                runs.push((point, j, errno, run));
            }
        }
    }
    FlowSweep {
        flow: flow.name,
        calls,
        runs,
        clean,
    }
}

/// Sweeps every flow (or those named), `limit` call indices per request type.
pub fn sweep(names: &[String], limit: u32) -> Result<Vec<FlowSweep>, String> {
    let flows: Vec<&'static Flow> = if names.is_empty() {
        FLOWS.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                FLOWS
                    .iter()
                    .find(|f| f.name == n)
                    .ok_or_else(|| format!("no flow {n}"))
            })
            .collect::<Result<_, _>>()?
    };
    // Leaks are what a run is judged by: recorded, not panicked (for the rest of the process).
    sim::set_leak_check(LeakCheck::Record);
    Ok(flows.into_iter().map(|f| sweep_flow(f, limit)).collect())
}

const VERDICTS: [Verdict; 6] = [
    Verdict::Survived,
    Verdict::NotFired,
    Verdict::Unnamed,
    Verdict::Broken,
    Verdict::Leak,
    Verdict::Crash,
];

/// The sweep as a scenario outcome: one row per flow.
pub fn outcome(sweeps: &[FlowSweep], limit: u32) -> Outcome {
    let mut headers: Vec<String> = vec!["flow".into(), "calls".into(), "runs".into()];
    headers.extend(VERDICTS.iter().map(|v| v.name().to_string()));
    let mut rows = vec![];
    let mut failures = vec![];
    let mut json_flows = vec![];
    for s in sweeps {
        let calls: u32 = s.calls.values().sum();
        let mut row = vec![
            s.flow.to_string(),
            calls.to_string(),
            s.runs.len().to_string(),
        ];
        row.extend(VERDICTS.iter().map(|v| s.count(*v).to_string()));
        rows.push(row);
        if s.clean.verdict != Verdict::Survived || s.clean.first.is_err() {
            failures.push(format!(
                "{}: clean run: {:?} {}",
                s.flow, s.clean.first, s.clean.detail
            ));
        }
        for (p, j, e, r) in &s.runs {
            if !matches!(r.verdict, Verdict::Survived | Verdict::NotFired) {
                failures.push(format!(
                    "{}: {p}:{j}:{e}: {} ({})",
                    s.flow,
                    r.verdict.name(),
                    r.detail
                ));
            }
        }
        json_flows.push(json!({
            "flow": s.flow,
            "calls": s.calls,
            "runs": s.runs.len(),
            "verdicts": VERDICTS.iter().map(|v| (v.name(), s.count(*v))).collect::<BTreeMap<_, _>>(),
        }));
    }
    let runs: usize = sweeps.iter().map(|s| s.runs.len()).sum();
    let survived: usize = sweeps.iter().map(|s| s.count(Verdict::Survived)).sum();
    let not_fired: usize = sweeps.iter().map(|s| s.count(Verdict::NotFired)).sum();
    let passed = failures.is_empty();
    let indices = if limit == u32::MAX {
        "every call index".to_string()
    } else {
        format!("up to {limit} call indices per request type")
    };
    let mut summary = format!(
        "{survived} of {} fired injection runs survived ({runs} runs, {not_fired} not fired, \
         {indices})",
        runs - not_fired
    );
    for f in &failures {
        summary += &format!("\n  FAILED {f}");
    }
    Outcome {
        name: "fault-sweep",
        summary,
        passed,
        headers,
        rows,
        json: json!({"scenario": "fault-sweep", "limit": limit, "flows": json_flows,
                     "failures": failures, "passed": passed}),
    }
}

/// `msmws scenario fault-sweep`: every flow, every call index of every request type (Quick: 2
/// per request type).
pub fn run(effort: Effort) -> Outcome {
    let limit = match effort {
        Effort::Quick => 2,
        Effort::Full => u32::MAX,
    };
    match sweep(&[], limit) {
        Ok(s) => outcome(&s, limit),
        Err(e) => Outcome {
            name: "fault-sweep",
            summary: e,
            passed: false,
            headers: vec![],
            rows: vec![],
            json: json!({"error": "no flows"}),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn samples_are_spread_with_both_ends() {
        assert_eq!(sample(3, 6), vec![1, 2, 3]);
        assert_eq!(sample(100, 3), vec![1, 51, 100]);
        assert_eq!(sample(10, 2), vec![1, 10]);
    }
}
