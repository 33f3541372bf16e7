//! Scenarios `bind-churn` and `sparse`: the winsys's VM_BIND path ([`crate::bind::BindVm`])
//! against turnip's policy, both driving the same kernel model through raw ioctls in the same run.
//!
//! Turnip's policy, as `../shared/spec/clients.md` describes it: one VM_BIND ioctl (one op) per
//! buffer create and per free, every submit waits for the latest bind, and each
//! vkQueueBindSparse batch goes out sorted as one ioctl. Both policies use the same address
//! allocator ([`crate::iova::VaHeap`]), so the differences measured are the binding policy's.
//!
//! Locks: none of its own.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::{Effort, Outcome};
use std::sync::Arc;

use crate::bind::{BindOp, BindVm, GpuBuffer, GpuVm};
use crate::device::ProbeOptions;
use crate::iova::{AllocFlags, Fence, VaHeap};
use crate::kernel::ioctl::{self, Fences, SyncPoint};
use crate::sim::{Clock, LeakReport, Sim, SimFile, SimOptions};
use crate::uapi::*;
use crate::Device;

/// Small deterministic generator (xorshift64*), so every run binds the same things.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A job (bind or submit) costs the model this long on the GPU in bind-churn, so jobs overlap
/// and the throttle can bite.
const CHURN_LATENCY: Duration = Duration::from_micros(100);
/// In `sparse`, about what writing 1024 ops' page tables costs on hardware (0.5-0.75 us per op).
const SPARSE_LATENCY: Duration = Duration::from_micros(700);

fn model(latency: Duration) -> SimFile {
    let opts = SimOptions {
        clock: Clock::Async { latency },
        ..Default::default()
    };
    let f = Sim::with_options("a750", opts)
        .expect("a750 profile")
        .open()
        .expect("open the model");
    ioctl::set_param(&f, MSM_PARAM_EN_VM_BIND, 1).expect("EN_VM_BIND on a fresh file");
    f
}

fn heap(f: &SimFile) -> VaHeap {
    let start = ioctl::get_param(f, MSM_PARAM_VA_START).expect("VA_START");
    let size = ioctl::get_param(f, MSM_PARAM_VA_SIZE).expect("VA_SIZE");
    VaHeap::new(start, size).expect("the VA range is a valid heap")
}

/// Page-table pages the ranges need at least: distinct 2 MiB, 1 GiB and 512 GiB blocks.
fn tables_needed(ranges: &[(u64, u64)]) -> u64 {
    let mut total = 0;
    for shift in [21u32, 30, 39] {
        let mut blocks = BTreeSet::new();
        for &(iova, len) in ranges {
            for b in (iova >> shift)..=((iova + len - 1) >> shift) {
                blocks.insert(b);
            }
        }
        total += blocks.len() as u64;
    }
    total
}

/// Per-policy totals over the run.
#[derive(Debug, Default, Clone)]
struct Totals {
    frames: u64,
    ioctls: u64,
    ops_sent: u64,
    prealloc: u64,
    needed: u64,
    stalls: u64,
    cpu_throttle_waits: u64,
    delayed_submits: u64,
    submits: u64,
    max_ioctls_per_frame: u64,
    pt_pages: u64,
    /// What the model file still held when the run closed it (empty when everything was released).
    leaks: LeakReport,
}

fn buffer_size(rng: &mut Rng) -> u64 {
    // Mostly small: 4 KiB .. 1 MiB, weighted like a frame's transient buffers.
    const SIZES: [u64; 8] = [
        4 << 10,
        4 << 10,
        16 << 10,
        16 << 10,
        64 << 10,
        64 << 10,
        256 << 10,
        1 << 20,
    ];
    SIZES[rng.below(SIZES.len() as u64) as usize]
}

struct Buf {
    handle: u32,
    iova: u64,
    size_B: u64,
}

fn create(f: &SimFile, heap: &VaHeap, size_B: u64) -> Buf {
    let handle = ioctl::gem_new(f, size_B, MSM_BO_WC).expect("GEM_NEW");
    let iova = heap
        .alloc(size_B, 4096, AllocFlags::BOTTOM_UP)
        .expect("VA space");
    Buf {
        handle,
        iova,
        size_B,
    }
}

/// msm-winsys: the driver-facing [`GpuVm`]; binds queued, planned and flushed when a submit
/// needs them.
fn churn_winsys(frames: u64, per_frame: u64, passes: u64) -> Totals {
    let f = Arc::new(model(CHURN_LATENCY));
    let dev = Device::new(Box::new(f.clone()), ProbeOptions::default()).expect("probe");
    let k = dev.kernel();
    let gvm = GpuVm::new(&dev).expect("GPU memory");
    let vm = gvm.bind_vm().expect("VM_BIND mode");
    let frame_tl = ioctl::syncobj_create(k, false).expect("syncobj");
    let mut rng = Rng(0x5eed_1234);
    let (mut t, mut point) = (Totals::default(), 0u64);
    let mut prev: Vec<GpuBuffer> = Vec::new();
    // A frame's buffers are freed once the submits up to `point` are done.
    let free_all = |bufs: &mut dyn Iterator<Item = GpuBuffer>, point: u64| {
        for b in bufs {
            let users = [SyncPoint {
                handle: frame_tl,
                point,
            }];
            gvm.free_buffer(k, b, &users, false).expect("free");
        }
    };
    for _ in 0..frames {
        let (s0, stalls0) = (vm.stats(), f.throttle_stalls());
        let mapped = vm.last_points()[0] + 1; // the map point this frame's buffers will get
        let bufs: Vec<GpuBuffer> = (0..per_frame)
            .map(|_| {
                gvm.create_buffer(k, buffer_size(&mut rng), MSM_BO_WC)
                    .expect("buffer")
            })
            .collect();
        free_all(&mut prev.drain(..), point);
        for pass in bufs.chunks((per_frame / passes).max(1) as usize) {
            let uses: Vec<(u64, u64)> = pass.iter().map(|b| (b.iova, b.size_B)).collect();
            let waits = vm.waits_for(k, &uses).expect("flush");
            t.delayed_submits += waits
                .iter()
                .any(|w| w.handle != vm.timelines()[0] || w.point > mapped)
                as u64;
            point += 1;
            let signal = [SyncPoint {
                handle: frame_tl,
                point,
            }];
            gvm.submit(k, 0, &[(pass[0].iova, 64)], pass, &[], &signal)
                .expect("submit");
            t.submits += 1;
        }
        gvm.flush_ready(k).expect("end-of-frame flush");
        let s = vm.stats();
        let ioctls = s.vm_bind_ioctls - s0.vm_bind_ioctls;
        t.ioctls += ioctls;
        t.max_ioctls_per_frame = t.max_ioctls_per_frame.max(ioctls);
        t.ops_sent += s.ops_sent - s0.ops_sent;
        t.prealloc += s.prealloc_pages - s0.prealloc_pages;
        t.needed += tables_needed(&bufs.iter().map(|b| (b.iova, b.size_B)).collect::<Vec<_>>());
        t.stalls += f.throttle_stalls() - stalls0;
        t.frames += 1;
        prev = bufs;
    }
    t.cpu_throttle_waits = vm.stats().throttle_waits;
    t.pt_pages = f.pt_pages().unwrap_or(0);
    // Teardown as a driver's vkDestroyDevice: free the last frame's buffers once its submits are
    // done, flush their unmaps, release the queues and timelines, close the file.
    free_all(&mut prev.into_iter(), point);
    gvm.flush(k).expect("final flush");
    idle(&f);
    gvm.destroy(k).expect("release the bind queues");
    ioctl::syncobj_destroy(k, frame_tl).expect("frame timeline");
    drop(dev);
    t.leaks = close(f);
    t
}

/// Waits until the model has run every queued job, so unmaps have reached the VM.
fn idle(f: &SimFile) {
    assert!(
        f.sim().gpu_wait_idle(Duration::from_secs(60)),
        "the model's GPU did not go idle"
    );
}

/// Closes the run's model file and returns what it still held.
fn close(f: Arc<SimFile>) -> LeakReport {
    Arc::try_unwrap(f)
        .expect("the device and its buffers are gone")
        .close()
}

/// Turnip's policy: one ioctl per create and per free; submits wait for the latest bind.
fn churn_turnip(frames: u64, per_frame: u64, passes: u64) -> Totals {
    let f = model(CHURN_LATENCY);
    let heap = heap(&f);
    let q = ioctl::submitqueue_new(&f, MSM_SUBMITQUEUE_VM_BIND, 0).expect("bind queue");
    let (bind_tl, frame_tl) = (
        ioctl::syncobj_create(&f, false).unwrap(),
        ioctl::syncobj_create(&f, false).unwrap(),
    );
    let mut rng = Rng(0x5eed_1234);
    let (mut t, mut bind_point, mut point) = (Totals::default(), 0u64, 0u64);
    let mut prev: Vec<Buf> = Vec::new();
    let bind = |op: BindOp, waits: &[SyncPoint], bind_point: &mut u64, t: &mut Totals| {
        *bind_point += 1;
        let signal = [SyncPoint {
            handle: bind_tl,
            point: *bind_point,
        }];
        ioctl::vm_bind(
            &f,
            q,
            &[op],
            Fences {
                wait: waits,
                signal: &signal,
                ..Default::default()
            },
        )
        .expect("VM_BIND");
        t.ioctls += 1;
        t.ops_sent += 1;
        t.prealloc += f.last_prealloc();
    };
    // vkFreeMemory: unmap after the submits up to `point`, reuse the range after the unmap,
    // close the handle at once (the VMA keeps the object until the unmap runs).
    let free = |b: Buf, point: u64, bind_point: &mut u64, t: &mut Totals| {
        let users = [SyncPoint {
            handle: frame_tl,
            point,
        }];
        bind(BindOp::unmap(b.iova, b.size_B), &users, bind_point, t);
        let fence = Fence::Syncobj {
            handle: bind_tl,
            point: *bind_point,
        };
        heap.free_after(b.iova, b.size_B, fence, None)
            .expect("free");
        ioctl::gem_close(&f, b.handle).expect("GEM_CLOSE");
    };
    for _ in 0..frames {
        let (i0, stalls0) = (t.ioctls, f.throttle_stalls());
        let bufs: Vec<Buf> = (0..per_frame)
            .map(|_| create(&f, &heap, buffer_size(&mut rng)))
            .collect();
        let mut mapped_at = Vec::with_capacity(bufs.len());
        for b in &bufs {
            bind(
                BindOp::map(b.iova, b.size_B, b.handle, 0),
                &[],
                &mut bind_point,
                &mut t,
            );
            mapped_at.push(bind_point);
        }
        for b in prev.drain(..) {
            free(b, point, &mut bind_point, &mut t);
        }
        let chunk = (per_frame / passes).max(1) as usize;
        for (i, pass) in bufs.chunks(chunk).enumerate() {
            let needed = mapped_at[(i * chunk + pass.len() - 1).min(mapped_at.len() - 1)];
            t.delayed_submits += (bind_point > needed) as u64;
            point += 1;
            let wait = [SyncPoint {
                handle: bind_tl,
                point: bind_point,
            }];
            let signal = [SyncPoint {
                handle: frame_tl,
                point,
            }];
            let fences = Fences {
                wait: &wait,
                signal: &signal,
                ..Default::default()
            };
            ioctl::submit_by_iova(&f, 0, &[(pass[0].iova, 64)], fences).expect("submit");
            t.submits += 1;
        }
        for h in [bind_tl, frame_tl] {
            heap.timelines()
                .signal_syncobj(h, ioctl::syncobj_query(&f, h).unwrap_or(0));
        }
        t.max_ioctls_per_frame = t.max_ioctls_per_frame.max(t.ioctls - i0);
        t.needed += tables_needed(&bufs.iter().map(|b| (b.iova, b.size_B)).collect::<Vec<_>>());
        t.stalls += f.throttle_stalls() - stalls0;
        t.frames += 1;
        prev = bufs;
    }
    t.pt_pages = f.pt_pages().unwrap_or(0);
    // Teardown: unmap and close the last frame's buffers after their submits, then wait for the
    // last bind before releasing the queue and the timelines.
    for b in prev {
        free(b, point, &mut bind_point, &mut t);
    }
    let last = [SyncPoint {
        handle: bind_tl,
        point: bind_point,
    }];
    ioctl::syncobj_timeline_wait(&f, &last, i64::MAX).expect("last bind");
    idle(&f);
    ioctl::submitqueue_close(&f, q).expect("bind queue");
    for h in [bind_tl, frame_tl] {
        ioctl::syncobj_destroy(&f, h).expect("timeline");
    }
    t.leaks = f.close();
    t
}

fn per_frame(x: u64, t: &Totals) -> String {
    format!("{:.1}", x as f64 / t.frames.max(1) as f64)
}

fn churn_row(name: &str, t: &Totals) -> Vec<String> {
    vec![
        name.to_string(),
        per_frame(t.ioctls, t),
        t.max_ioctls_per_frame.to_string(),
        per_frame(t.ops_sent, t),
        per_frame(t.prealloc, t),
        per_frame(t.needed, t),
        format!("{:.2}", t.prealloc as f64 / t.needed.max(1) as f64),
        t.stalls.to_string(),
        format!("{}/{}", t.delayed_submits, t.submits),
    ]
}

pub fn run_churn(effort: Effort) -> Outcome {
    let (frames, per_frame_bufs) = match effort {
        Effort::Full => (100, 2000),
        Effort::Quick => (4, 200),
    };
    let passes = 10;
    let ours = churn_winsys(frames, per_frame_bufs, passes);
    let turnip = churn_turnip(frames, per_frame_bufs, passes);
    let ratio = turnip.ioctls as f64 / ours.ioctls.max(1) as f64;
    let pt_ratio = ours.prealloc as f64 / ours.needed.max(1) as f64;
    let leaks = leak_line(&ours, &turnip);
    let passed = ours.max_ioctls_per_frame <= 1
        && ratio >= 10.0
        && pt_ratio <= 1.2
        && ours.stalls == 0
        && ours.delayed_submits == 0
        && ours.leaks.is_empty()
        && turnip.leaks.is_empty();
    let headers = [
        "policy",
        "ioctls/frame",
        "max/frame",
        "ops/frame",
        "prealloc/frame",
        "tables needed/frame",
        "prealloc/needed",
        "throttle stalls",
        "delayed submits",
    ];
    Outcome {
        name: "bind-churn",
        summary: format!(
            "{frames} frames x {per_frame_bufs} buffers: msm-winsys {ratio:.0}x fewer VM_BIND ioctls than turnip's policy, prealloc {pt_ratio:.2}x the tables needed, {} throttle stalls, {} submits waiting on unrelated binds, {leaks}; goals {}",
            ours.stalls,
            ours.delayed_submits,
            if passed { "met" } else { "NOT met" }
        ),
        passed,
        headers: headers.iter().map(|s| s.to_string()).collect(),
        rows: vec![churn_row("msm-winsys", &ours), churn_row("turnip policy", &turnip)],
        json: json!({
            "scenario": "bind-churn", "frames": frames, "buffers_per_frame": per_frame_bufs, "passed": passed,
            "ioctl_ratio": ratio, "prealloc_over_needed": pt_ratio,
            "winsys": totals_json(&ours), "turnip": totals_json(&turnip),
        }),
    }
}

fn totals_json(t: &Totals) -> serde_json::Value {
    json!({
        "frames": t.frames, "vm_bind_ioctls": t.ioctls, "max_ioctls_per_frame": t.max_ioctls_per_frame,
        "ops_sent": t.ops_sent, "prealloc_pages": t.prealloc, "tables_needed": t.needed,
        "throttle_stalls": t.stalls, "cpu_throttle_waits": t.cpu_throttle_waits,
        "delayed_submits": t.delayed_submits, "submits": t.submits, "resident_pt_pages": t.pt_pages,
        "leaks": t.leaks.summary(),
    })
}

/// `model leaks: none`, or what each policy's model file still held at close.
fn leak_line(ours: &Totals, turnip: &Totals) -> String {
    if ours.leaks.is_empty() && turnip.leaks.is_empty() {
        "model leaks: none".into()
    } else {
        format!(
            "model LEAKS: msm-winsys {}, turnip policy {}",
            ours.leaks.summary(),
            turnip.leaks.summary()
        )
    }
}

/// A 4 GiB sparse resource: 65,536 pages of 64 KiB, bound in random order in batches.
fn sparse_pages(batches: u64, per_batch: u64) -> Vec<Vec<u64>> {
    let total = 65_536u64;
    let mut order: Vec<u64> = (0..total).collect();
    let mut rng = Rng(0xfeed_beef);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    order
        .chunks(per_batch as usize)
        .take(batches as usize)
        .map(|c| c.to_vec())
        .collect()
}

const SPARSE_PAGE_B: u64 = 64 << 10;
const BACKING_B: u64 = 64 << 20;

fn sparse_run(winsys: bool, batches: u64, per_batch: u64) -> Totals {
    let f = model(SPARSE_LATENCY);
    let heap = heap(&f);
    let base = heap
        .alloc(4 << 30, 2 << 20, AllocFlags::BOTTOM_UP)
        .expect("4 GiB of VA");
    let backing = ioctl::gem_new(&f, BACKING_B, MSM_BO_WC).expect("backing BO");
    let done = ioctl::syncobj_create(&f, false).expect("syncobj");
    let mut t = Totals::default();
    let ops_of = |batch: &[u64]| -> Vec<BindOp> {
        batch
            .iter()
            .map(|&p| {
                BindOp::map(
                    base + p * SPARSE_PAGE_B,
                    SPARSE_PAGE_B,
                    backing,
                    (p * SPARSE_PAGE_B) % BACKING_B,
                )
            })
            .collect()
    };
    let stalls0 = f.throttle_stalls();
    let mut winsys_vm = None;
    let mut turnip_queue = None;
    if winsys {
        let vm = winsys_vm.insert(BindVm::new(crate::bind::KERNEL_THROTTLE_PAGES));
        for (i, batch) in sparse_pages(batches, per_batch).iter().enumerate() {
            let signal = [SyncPoint {
                handle: done,
                point: i as u64 + 1,
            }];
            vm.sparse(&ops_of(batch), &[], &signal);
            // vkQueueBindSparse returns at once; what the throttle would hold waits in the backlog.
            vm.flush_async(&f).expect("sparse flush");
        }
        vm.flush(&f).expect("final flush");
        let s = vm.stats();
        (t.ioctls, t.ops_sent, t.prealloc, t.cpu_throttle_waits) = (
            s.vm_bind_ioctls,
            s.ops_sent,
            s.prealloc_pages,
            s.throttle_waits,
        );
    } else {
        let q = *turnip_queue
            .insert(ioctl::submitqueue_new(&f, MSM_SUBMITQUEUE_VM_BIND, 0).expect("bind queue"));
        for (i, batch) in sparse_pages(batches, per_batch).iter().enumerate() {
            let mut ops = ops_of(batch);
            ops.sort_by_key(|o| o.iova);
            let signal = [SyncPoint {
                handle: done,
                point: i as u64 + 1,
            }];
            ioctl::vm_bind(
                &f,
                q,
                &ops,
                Fences {
                    signal: &signal,
                    ..Default::default()
                },
            )
            .expect("VM_BIND");
            t.ioctls += 1;
            t.ops_sent += ops.len() as u64;
            t.prealloc += f.last_prealloc();
        }
    }
    let all: Vec<(u64, u64)> = sparse_pages(batches, per_batch)
        .concat()
        .iter()
        .map(|&p| (base + p * SPARSE_PAGE_B, SPARSE_PAGE_B))
        .collect();
    t.needed = tables_needed(&all);
    ioctl::syncobj_timeline_wait(
        &f,
        &[SyncPoint {
            handle: done,
            point: batches,
        }],
        i64::MAX,
    )
    .expect("last batch");
    t.stalls = f.throttle_stalls() - stalls0;
    t.frames = batches;
    t.pt_pages = f.pt_pages().unwrap_or(0);
    // Teardown as vkDestroyBuffer + vkDestroyDevice: one UNMAP of the whole resource, then the
    // queues, the backing object and the timeline go.
    let whole = BindOp::unmap(base, 4 << 30);
    if let Some(vm) = winsys_vm {
        vm.unmap_freed(whole.iova, whole.range_B, &[]);
        vm.flush(&f).expect("unmap the resource");
        idle(&f);
        vm.destroy(&f).expect("release the bind queues");
    }
    if let Some(q) = turnip_queue {
        ioctl::vm_bind(&f, q, &[whole], Fences::default()).expect("unmap the resource");
        idle(&f);
        ioctl::submitqueue_close(&f, q).expect("bind queue");
    }
    heap.free(base, 4 << 30).expect("the resource's VA");
    ioctl::gem_close(&f, backing).expect("backing BO");
    ioctl::syncobj_destroy(&f, done).expect("timeline");
    t.leaks = f.close();
    t
}

fn sparse_row(name: &str, t: &Totals) -> Vec<String> {
    vec![
        name.to_string(),
        t.ioctls.to_string(),
        t.ops_sent.to_string(),
        t.prealloc.to_string(),
        t.needed.to_string(),
        t.pt_pages.to_string(),
        t.stalls.to_string(),
        t.cpu_throttle_waits.to_string(),
    ]
}

pub fn run_sparse(effort: Effort) -> Outcome {
    let batches = match effort {
        Effort::Full => 64,
        Effort::Quick => 4,
    };
    let ours = sparse_run(true, batches, 1024);
    let turnip = sparse_run(false, batches, 1024);
    let leaks = leak_line(&ours, &turnip);
    let passed = (ours.stalls < turnip.stalls || (ours.stalls == 0 && turnip.stalls == 0))
        && ours.leaks.is_empty()
        && turnip.leaks.is_empty();
    let headers = [
        "policy",
        "VM_BIND ioctls",
        "ops",
        "prealloc pages",
        "tables needed",
        "resident pt pages",
        "kernel throttle stalls",
        "winsys throttle waits",
    ];
    Outcome {
        name: "sparse",
        summary: format!(
            "{batches} batches of 1024 random 64 KiB pages of a 4 GiB resource: throttle stalls {} (msm-winsys) vs {} (turnip policy), {leaks}; goal {}",
            ours.stalls,
            turnip.stalls,
            if passed { "met" } else { "NOT met" }
        ),
        passed,
        headers: headers.iter().map(|s| s.to_string()).collect(),
        rows: vec![sparse_row("msm-winsys", &ours), sparse_row("turnip policy", &turnip)],
        json: json!({"scenario": "sparse", "batches": batches, "passed": passed,
            "winsys": totals_json(&ours), "turnip": totals_json(&turnip)}),
    }
}
