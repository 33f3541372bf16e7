//! Fuzz target of the C ABI (include/msm_winsys.h): random sequences of `msmws_*` calls on a
//! kernel-model device, as a buggy driver would make them: bad handles and ids, NULL pointers,
//! zero, overflowing and misaligned sizes and addresses, double frees of buffers, mappings,
//! address ranges, syncobjs and queues. Nothing may panic (a panic caught at the boundary is
//! -EFAULT with an "internal error" message, which this target treats as a finding), and every
//! call must answer 0 or a negative errno.
//!
//! Out of scope, as for any C API (and as rustls-ffi's fuzzers do): a pointer to an object
//! already destroyed, or one not made by the library. Objects are only passed while the target
//! still owns them; everything else is NULL or a plain value (a handle, an id, a range, a
//! `msmws_gpu_buffer` struct, which is data, so a freed one may be freed again).
//!
//! Each run ends the way a careful driver ends: it waits for the GPU, frees what it still owns
//! and destroys everything; then the model's leak report (recorded, not panicking) must be
//! empty for every file the run opened.
#![no_main]
#![allow(non_snake_case)] // unit suffixes

use std::ffi::{c_int, c_void, CStr};
use std::ptr::{null, null_mut};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

#[path = "../common/input.rs"]
mod input;
#[path = "../common/threads.rs"]
mod threads;

use input::Input;
use msm_winsys::ffi::bo::*;
use msm_winsys::ffi::device::*;
use msm_winsys::ffi::driver::*;
use msm_winsys::ffi::gpu_vm::*;
use msm_winsys::ffi::msmws_last_error_message;
use msm_winsys::ffi::va_heap::*;
use msm_winsys::sim::{set_leak_check, take_recorded_leaks, LeakCheck};

const MAX_OPS: usize = 64;
const PAGE_B: u64 = 4096;

/// A size or an address: mostly small page multiples, sometimes edge values.
fn size_or_addr(inp: &mut Input) -> u64 {
    match inp.u8() % 8 {
        0..=3 => u64::from(inp.u8() % 64 + 1) * PAGE_B,
        4 => u64::from(inp.u16()) * PAGE_B,
        5 => [
            0,
            1,
            PAGE_B - 1,
            PAGE_B + 1,
            u64::MAX,
            u64::MAX - PAGE_B + 1,
            1 << 63,
            1 << 47,
        ][usize::from(inp.u8() % 8)],
        6 => u64::from(inp.u32()),
        _ => inp.u64(),
    }
}

/// A u32 id: one of `known` (a live or an already released one), or any.
fn id(inp: &mut Input, known: &[u32]) -> u32 {
    match inp.pick(known) {
        Some(h) => h,
        None => [0, 1, 2, u32::MAX, 0x8000_0000][usize::from(inp.u8() % 5)],
    }
}

/// With MSMWS_FUZZ_TRACE set, every checked call and its result go to stderr (to read what a
/// saved input does: `MSMWS_FUZZ_TRACE=1 ci/fuzz --repro c_abi FILE`).
fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("MSMWS_FUZZ_TRACE").is_some())
}

thread_local! {
    /// Whether a call of this run reported the device lost (EPIPE: a GPU fault made the VM_BIND
    /// VM unusable).
    static LOST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A call's result: 0 or a negative errno, and never a panic caught at the boundary.
fn check(what: &str, rc: c_int) -> bool {
    assert!(rc <= 0, "{what} returned {rc}, not 0 or a negative errno");
    if rc == -libc::EPIPE {
        LOST.with(|l| l.set(true));
    }
    if rc < 0 {
        // SAFETY: the library's last-error sentence is a NUL-terminated string it owns.
        let msg = unsafe { CStr::from_ptr(msmws_last_error_message()) }.to_string_lossy();
        if tracing() {
            eprintln!("{what}: {rc}: {msg}");
        }
        assert!(!msg.is_empty(), "{what} failed ({rc}) with no message");
        assert!(
            !msg.contains("internal error"),
            "{what} panicked inside the library: {msg}"
        );
    }
    if rc == 0 && tracing() {
        eprintln!("{what}: 0");
    }
    rc == 0
}

/// Ids of kernel objects the target made: all of them (destroyed ones are still good bad input)
/// and the live ones (destroyed at teardown).
#[derive(Default)]
struct Ids {
    all: Vec<u32>,
    live: Vec<u32>,
}

impl Ids {
    fn made(&mut self, id: u32) {
        self.all.push(id);
        self.live.push(id);
    }
    fn released(&mut self, id: u32) {
        self.live.retain(|&x| x != id);
    }
}

#[derive(Default)]
struct State {
    dev: Vec<*mut msmws_device>,
    /// One entry per reference the target owns.
    bos: Vec<*mut msmws_bo>,
    chains: Vec<*mut msmws_flip_chain>,
    vms: Vec<*mut msmws_gpu_vm>,
    /// Buffers made by create_buffer(_at), live or already freed: (vm index, buffer, live).
    buffers: Vec<(usize, msmws_gpu_buffer, bool)>,
    /// Buffers made by map_bo, live or already unmapped.
    mapped: Vec<(usize, msmws_gpu_buffer, bool)>,
    syncobjs: Ids,
    queues: Ids,
    /// Seqnos submits returned, per queue.
    seqnos: Vec<(u32, u32)>,
    /// Points that submits which succeeded signal (on live syncobjs).
    signalled: Vec<msmws_sync_point>,
    heaps: Vec<*mut msmws_va_heap>,
    /// Heap allocations (heap index, addr, size), live or already freed.
    ranges: Vec<(usize, u64, u64)>,
    fds: Vec<c_int>,
    cpu_maps: Vec<(*mut c_void, u64)>,
}

impl State {
    fn dev(&mut self, inp: &mut Input) -> *const msmws_device {
        inp.pick(&self.dev).map_or(null(), |d| d.cast_const())
    }
    fn vm(&mut self, inp: &mut Input) -> (usize, *const msmws_gpu_vm) {
        let i = usize::from(inp.u8());
        if i < 0xf0 && !self.vms.is_empty() {
            let i = i % self.vms.len();
            (i, self.vms[i])
        } else {
            (usize::MAX, null())
        }
    }
    fn bo(&mut self, inp: &mut Input) -> *const msmws_bo {
        inp.pick(&self.bos).map_or(null(), |b| b.cast_const())
    }
    fn heap(&mut self, inp: &mut Input) -> (usize, *const msmws_va_heap) {
        let i = usize::from(inp.u8());
        if i < 0xf0 && !self.heaps.is_empty() {
            let i = i % self.heaps.len();
            (i, self.heaps[i])
        } else {
            (usize::MAX, null())
        }
    }
    fn handles(&self) -> Vec<u32> {
        let mut h: Vec<u32> = self.buffers.iter().map(|b| b.1.handle).collect();
        h.extend(self.mapped.iter().map(|b| b.1.handle));
        h
    }
    /// Points to wait for (a submit's waits, a free's or an unmap's users): points a submit that
    /// succeeded signals, which will signal (every job's waits are such points, so the GPU runs
    /// them all), or handles that never existed, which the call refuses. A point nothing will
    /// ever signal would keep the job or the unmap waiting for ever: the driver's own deadlock,
    /// which no teardown can undo. Sometimes NULL with a count.
    fn waits(&mut self, inp: &mut Input) -> (Vec<msmws_sync_point>, bool, u32) {
        let n = inp.u8() % 4;
        let pts: Vec<msmws_sync_point> = (0..n)
            .map(|_| match inp.pick(&self.signalled) {
                Some(p) => p,
                None => msmws_sync_point {
                    handle: u32::MAX - u32::from(inp.u8()),
                    pad: 0,
                    point: u64::from(inp.u8()),
                },
            })
            .collect();
        let null_with_count = inp.one_in(16);
        (pts, null_with_count, u32::from(n))
    }

    /// Points a submit signals: on the target's syncobjs (live or destroyed) or bad handles.
    fn signals(&mut self, inp: &mut Input) -> Vec<msmws_sync_point> {
        (0..inp.u8() % 3)
            .map(|_| msmws_sync_point {
                handle: id(inp, &self.syncobjs.all),
                pad: 0,
                point: if inp.one_in(4) {
                    inp.u64()
                } else {
                    u64::from(inp.u8() % 4)
                },
            })
            .collect()
    }

    /// Some buffer struct: a known one (live or freed, from either list), or a made-up one.
    fn buffer(&mut self, inp: &mut Input, mapped: bool) -> msmws_gpu_buffer {
        let list = if mapped { &self.mapped } else { &self.buffers };
        let known: Vec<msmws_gpu_buffer> = list.iter().map(|b| b.1).collect();
        match inp.pick(&known) {
            Some(mut b) => {
                match inp.u8() % 8 {
                    0 => b.iova = b.iova.wrapping_add(PAGE_B),
                    1 => b.size_B = size_or_addr(inp),
                    2 => b.handle = inp.u32(),
                    _ => {}
                }
                b
            }
            None => msmws_gpu_buffer {
                handle: inp.u32(),
                pad: 0,
                iova: size_or_addr(inp),
                size_B: size_or_addr(inp),
            },
        }
    }

    fn step(&mut self, inp: &mut Input) {
        match inp.u8() % 32 {
            0 => {
                let dev = self.dev(inp);
                let size_B = size_or_addr(inp);
                let flags = bo_flags(inp);
                let mut out = null_mut();
                let out_p: *mut *mut msmws_bo = if inp.one_in(16) { null_mut() } else { &mut out };
                if check("bo_new", msmws_bo_new(dev, size_B, flags, out_p)) {
                    self.bos.push(out);
                }
            }
            1 => {
                let bo = self.bo(inp);
                let mut fd = -1;
                if check("bo_export_dmabuf", msmws_bo_export_dmabuf(bo, &mut fd)) {
                    self.fds.push(fd);
                }
            }
            2 => {
                let dev = self.dev(inp);
                let fd = match inp.pick(&self.fds) {
                    Some(fd) => fd,
                    None => [-1, 0, 1, 2, 1000][usize::from(inp.u8() % 5)],
                };
                let mut out = null_mut();
                if check(
                    "bo_import_dmabuf",
                    msmws_bo_import_dmabuf(dev, fd, &mut out),
                ) {
                    self.bos.push(out);
                }
            }
            3 => {
                if let Some(bo) = inp.pick(&self.bos) {
                    self.bos.push(msmws_bo_ref(bo));
                }
            }
            4 => {
                if !self.bos.is_empty() {
                    let i = usize::from(inp.u8()) % self.bos.len();
                    msmws_bo_unref(self.bos.swap_remove(i));
                }
                msmws_bo_unref(null_mut());
            }
            5 => {
                let bo = self.bo(inp);
                msmws_bo_handle(bo);
                msmws_bo_size(bo);
            }
            6 => {
                let dev = self.dev(inp);
                let crtc = if inp.bool() {
                    MSMWS_SIM_CRTC_ID
                } else {
                    inp.u32()
                };
                let mut out = null_mut();
                if check(
                    "flip_chain_create",
                    msmws_flip_chain_create(dev, crtc, &mut out),
                ) {
                    self.chains.push(out);
                }
            }
            7 => {
                let chain = inp.pick(&self.chains).map_or(null(), |c| c.cast_const());
                let layout = fb_layout(inp);
                let lp = if inp.one_in(16) {
                    null()
                } else {
                    &layout as *const _
                };
                let mut index = 0;
                if inp.bool() {
                    let bo = self.bo(inp);
                    check(
                        "flip_chain_add_bo",
                        msmws_flip_chain_add_bo(chain, bo, lp, &mut index),
                    );
                } else {
                    let fd = inp.pick(&self.fds).unwrap_or(-1);
                    check(
                        "flip_chain_import_dmabuf",
                        msmws_flip_chain_import_dmabuf(chain, fd, lp, &mut index),
                    );
                }
            }
            8 => {
                let chain = inp.pick(&self.chains).map_or(null(), |c| c.cast_const());
                let index = u32::from(inp.u8() % 8);
                if inp.bool() {
                    check("flip_chain_flip", msmws_flip_chain_flip(chain, index));
                } else {
                    check("flip_chain_remove", msmws_flip_chain_remove(chain, index));
                }
            }
            9 => {
                if !self.chains.is_empty() {
                    let i = usize::from(inp.u8()) % self.chains.len();
                    msmws_flip_chain_destroy(self.chains.swap_remove(i));
                }
            }
            10 => {
                let dev = self.dev(inp);
                let mut info = std::mem::MaybeUninit::<msmws_device_info>::zeroed();
                check(
                    "device_get_info",
                    msmws_device_get_info(dev, info.as_mut_ptr()),
                );
                let what = u32::from(inp.u8() % 5);
                let mut v = 0;
                check("device_query", msmws_device_query(dev, what, &mut v));
            }
            11 => {
                let dev = self.dev(inp);
                let mut h = 0;
                if check("syncobj_create", msmws_device_syncobj_create(dev, &mut h)) {
                    self.syncobjs.made(h);
                }
            }
            12 => {
                let dev = self.dev(inp);
                let h = id(inp, &self.syncobjs.all);
                if check("syncobj_destroy", msmws_device_syncobj_destroy(dev, h)) {
                    self.syncobjs.released(h);
                    self.signalled.retain(|p| p.handle != h);
                }
            }
            13 => {
                let dev = self.dev(inp);
                let (prio, flags) = (u32::from(inp.u8() % 5), u32::from(inp.u8() % 4));
                let mut id = 0;
                if check(
                    "submitqueue_new",
                    msmws_device_submitqueue_new(dev, prio, flags, &mut id),
                ) {
                    self.queues.made(id);
                }
            }
            14 => {
                let dev = self.dev(inp);
                let id = id(inp, &self.queues.all);
                if check("submitqueue_close", msmws_device_submitqueue_close(dev, id)) {
                    self.queues.released(id);
                }
            }
            15 => {
                let dev = self.dev(inp);
                let (q, s) = match inp.pick(&self.seqnos) {
                    Some(qs) => qs,
                    None => (id(inp, &self.queues.all), inp.u32()),
                };
                let timeout_ns = u64::from(inp.u8()) * 4_000;
                check("wait_seqno", msmws_device_wait_seqno(dev, q, s, timeout_ns));
            }
            16 => {
                let dev = self.dev(inp);
                let handles = self.handles();
                let h = id(inp, &handles);
                let size_B = size_or_addr(inp).min(1 << 24);
                let mut map = null_mut();
                if check(
                    "device_map",
                    msmws_device_map(dev, h, size_B, null_mut(), &mut map),
                ) {
                    // SAFETY: the library just mapped `size_B` read/write bytes at `map`.
                    unsafe { map.cast::<u8>().write_volatile(0x5a) };
                    self.cpu_maps.push((map, size_B));
                }
            }
            17 => {
                let dev = self.dev(inp);
                let handles = self.handles();
                let h = id(inp, &handles);
                let data = [inp.u8(); 200];
                let len = u32::from(inp.u8());
                let dp = if inp.one_in(16) {
                    null()
                } else {
                    data.as_ptr()
                };
                check(
                    "set_metadata",
                    msmws_device_set_metadata(dev, h, dp, len.min(200)),
                );
                let mut out = [0u8; 200];
                let mut got = 0;
                let size = u32::from(inp.u8()).min(200);
                check(
                    "get_metadata",
                    msmws_device_get_metadata(dev, h, out.as_mut_ptr(), size, &mut got),
                );
            }
            18 => {
                let dev = self.dev(inp);
                let mut out = null_mut();
                if check("gpu_vm_create", msmws_gpu_vm_create(dev, &mut out)) {
                    self.vms.push(out);
                }
            }
            19 | 20 => {
                let (vi, vm) = self.vm(inp);
                let size_B = size_or_addr(inp);
                let flags = bo_flags(inp);
                let mut out = msmws_gpu_buffer::default();
                args(format_args!("vm {vi} size {size_B:#x} flags {flags:#x}"));
                let ok = if inp.bool() {
                    check(
                        "gpu_vm_create_buffer",
                        msmws_gpu_vm_create_buffer(vm, size_B, flags, &mut out),
                    )
                } else {
                    let iova = if inp.bool() { 0 } else { size_or_addr(inp) };
                    args(format_args!("at {iova:#x}"));
                    check(
                        "gpu_vm_create_buffer_at",
                        msmws_gpu_vm_create_buffer_at(vm, size_B, flags, iova, &mut out),
                    )
                };
                if ok {
                    args(format_args!("made {out:?}"));
                    self.buffers.push((vi, out, true));
                }
            }
            21 => {
                let (vi, vm) = self.vm(inp);
                let b = self.buffer(inp, false);
                let (users, null_with_count, n) = self.waits(inp);
                let up = if null_with_count {
                    null()
                } else {
                    users.as_ptr()
                };
                let shared = inp.bool();
                args(format_args!(
                    "vm {vi} {b:?} users {users:?} shared {shared}"
                ));
                if check(
                    "gpu_vm_free_buffer",
                    msmws_gpu_vm_free_buffer(vm, &b, up, n, shared),
                ) {
                    released(&mut self.buffers, vi, &b);
                }
            }
            22 => {
                let (vi, vm) = self.vm(inp);
                let bo = self.bo(inp);
                let mut out = msmws_gpu_buffer::default();
                if check("gpu_vm_map_bo", msmws_gpu_vm_map_bo(vm, bo, &mut out)) {
                    args(format_args!("vm {vi} mapped {out:?}"));
                    self.mapped.push((vi, out, true));
                }
            }
            23 => {
                let (vi, vm) = self.vm(inp);
                let b = self.buffer(inp, true);
                let (users, null_with_count, n) = self.waits(inp);
                let up = if null_with_count {
                    null()
                } else {
                    users.as_ptr()
                };
                args(format_args!("vm {vi} {b:?} users {users:?}"));
                if check("gpu_vm_unmap_bo", msmws_gpu_vm_unmap_bo(vm, &b, up, n)) {
                    released(&mut self.mapped, vi, &b);
                }
            }
            24 => {
                let (_, vm) = self.vm(inp);
                let q = id(inp, &self.queues.all);
                let cmds: Vec<msmws_cmd> = (0..inp.u8() % 3)
                    .map(|_| {
                        let b = self.buffer(inp, false);
                        msmws_cmd {
                            iova: b.iova.wrapping_add(u64::from(inp.u8()) * 64),
                            size_B: u32::from(inp.u16()),
                            pad: 0,
                        }
                    })
                    .collect();
                let uses: Vec<msmws_gpu_buffer> =
                    (0..inp.u8() % 3).map(|_| self.buffer(inp, false)).collect();
                let (waits, _, nw) = self.waits(inp);
                let signals = self.signals(inp);
                let ns = signals.len() as u32;
                let mut seqno = 0;
                let sp = if inp.bool() {
                    &mut seqno as *mut u32
                } else {
                    null_mut()
                };
                args(format_args!(
                    "queue {q} cmds {cmds:?} uses {uses:?} waits {waits:?} signals {signals:?}"
                ));
                if check(
                    "gpu_vm_submit",
                    msmws_gpu_vm_submit(
                        vm,
                        q,
                        cmds.as_ptr(),
                        cmds.len() as u32,
                        uses.as_ptr(),
                        uses.len() as u32,
                        waits.as_ptr(),
                        nw,
                        signals.as_ptr(),
                        ns,
                        sp,
                    ),
                ) {
                    self.signalled.extend(&signals);
                    if !sp.is_null() {
                        self.seqnos.push((q, seqno));
                    }
                }
            }
            25 => {
                let (_, vm) = self.vm(inp);
                check("gpu_vm_flush", msmws_gpu_vm_flush(vm));
                let mut stats = msmws_gpu_vm_stats::default();
                check("gpu_vm_get_stats", msmws_gpu_vm_get_stats(vm, &mut stats));
            }
            26 => {
                if !self.vms.is_empty() && inp.one_in(4) {
                    let i = usize::from(inp.u8()) % self.vms.len();
                    self.destroy_vm(i);
                }
            }
            27 => {
                let (start, size) = (size_or_addr(inp), size_or_addr(inp));
                let mut out = null_mut();
                if check(
                    "va_heap_create",
                    msmws_va_heap_create(start, size, &mut out),
                ) {
                    self.heaps.push(out);
                }
            }
            28 => {
                let (hi, heap) = self.heap(inp);
                let (size, align, flags) =
                    (size_or_addr(inp), size_or_addr(inp), u32::from(inp.u16()));
                let mut addr = 0;
                if check(
                    "va_heap_alloc",
                    msmws_va_heap_alloc(heap, size, align, flags, &mut addr),
                ) {
                    self.ranges.push((hi, addr, size));
                }
                let (addr, size) = (size_or_addr(inp), size_or_addr(inp));
                if check(
                    "va_heap_alloc_addr",
                    msmws_va_heap_alloc_addr(heap, addr, size),
                ) {
                    self.ranges.push((hi, addr, size));
                }
            }
            29 => {
                let (_, heap) = self.heap(inp);
                let (_, addr, mut size) =
                    inp.pick(&self.ranges).unwrap_or((0, size_or_addr(inp), 0));
                if inp.one_in(4) {
                    size = size_or_addr(inp);
                }
                if inp.bool() {
                    check("va_heap_free", msmws_va_heap_free(heap, addr, size));
                } else {
                    let (q, s) = (u32::from(inp.u8() % 4), inp.u32());
                    check(
                        "va_heap_free_after",
                        msmws_va_heap_free_after(heap, addr, size, q, s),
                    );
                }
            }
            30 => {
                let (_, heap) = self.heap(inp);
                let (q, s) = (u32::from(inp.u8() % 4), inp.u32());
                check(
                    "va_heap_signal_queue",
                    msmws_va_heap_signal_queue(heap, q, s),
                );
                msmws_va_heap_free_size(heap);
                msmws_va_heap_largest_free(heap);
            }
            _ => {
                let dev = self.dev(inp);
                check(
                    "sim_wait_idle",
                    msmws_device_sim_wait_idle(dev, u64::from(inp.u8()) * 4_000),
                );
            }
        }
    }

    fn destroy_vm(&mut self, i: usize) {
        let vm = self.vms[i];
        self.vms[i] = null_mut();
        check("gpu_vm_destroy", msmws_gpu_vm_destroy(vm));
        self.vms.swap_remove(i);
        // Buffers of the destroyed VM are forgotten with it; the swapped-in VM takes index i.
        let last = self.vms.len();
        for list in [&mut self.buffers, &mut self.mapped] {
            list.retain(|e| e.0 != i);
            for e in list.iter_mut() {
                if e.0 == last {
                    e.0 = i;
                }
            }
        }
    }

    /// A careful driver's teardown: wait, free what is live, destroy everything.
    fn teardown(mut self) {
        for &d in &self.dev {
            msmws_device_sim_wait_idle(d, 1_000_000_000);
        }
        for (vi, b, live) in std::mem::take(&mut self.mapped) {
            if live {
                check(
                    "teardown unmap_bo",
                    msmws_gpu_vm_unmap_bo(self.vms[vi], &b, null(), 0),
                );
            }
        }
        for (vi, b, live) in std::mem::take(&mut self.buffers) {
            if live {
                check(
                    "teardown free_buffer",
                    msmws_gpu_vm_free_buffer(self.vms[vi], &b, null(), 0, false),
                );
            }
        }
        while !self.vms.is_empty() {
            self.destroy_vm(self.vms.len() - 1);
        }
        for c in self.chains.drain(..) {
            msmws_flip_chain_destroy(c);
        }
        let dev = self.dev.first().copied().unwrap_or(null_mut());
        for q in self.queues.live.drain(..) {
            check(
                "teardown submitqueue_close",
                msmws_device_submitqueue_close(dev, q),
            );
        }
        for h in self.syncobjs.live.drain(..) {
            check(
                "teardown syncobj_destroy",
                msmws_device_syncobj_destroy(dev, h),
            );
        }
        for b in self.bos.drain(..) {
            msmws_bo_unref(b);
        }
        for fd in self.fds.drain(..) {
            // SAFETY: a dma-buf fd the library gave this target, closed once.
            unsafe { libc::close(fd) };
        }
        for (m, size) in self.cpu_maps.drain(..) {
            // SAFETY: a map the library made for this target, unmapped once.
            unsafe { libc::munmap(m, size as usize) };
        }
        for h in self.heaps.drain(..) {
            msmws_va_heap_destroy(h);
        }
        for d in self.dev.drain(..) {
            msmws_device_destroy(d);
        }
    }
}

/// Marks the live entry of VM `vi` equal to `b` as released.
fn released(list: &mut [(usize, msmws_gpu_buffer, bool)], vi: usize, b: &msmws_gpu_buffer) {
    let key = |x: &msmws_gpu_buffer| (x.handle, x.iova, x.size_B);
    if let Some(e) = list
        .iter_mut()
        .find(|e| e.0 == vi && e.2 && key(&e.1) == key(b))
    {
        e.2 = false;
    }
}

/// With tracing on, says what the next checked call is given.
fn args(what: std::fmt::Arguments) {
    if tracing() {
        eprintln!("  {what}");
    }
}

fn bo_flags(inp: &mut Input) -> u32 {
    const CACHE: [u32; 4] = [MSMWS_BO_WC, MSMWS_BO_CACHED, MSMWS_BO_CACHED_COHERENT, 0];
    let b = inp.u8();
    if b >= 0xf8 {
        return inp.u32();
    }
    let mut f = CACHE[usize::from(b & 3)];
    if b & 4 != 0 {
        f |= MSMWS_BO_SHARED;
    }
    if b & 8 != 0 {
        f |= MSMWS_BO_SCANOUT;
    }
    if b & 16 != 0 {
        f |= MSMWS_BO_NO_SHARE;
    }
    if b & 32 != 0 {
        f |= MSMWS_BO_GPU_READONLY;
    }
    f
}

fn fb_layout(inp: &mut Input) -> msmws_fb_layout {
    msmws_fb_layout {
        width: u32::from(inp.u16() % 2048),
        height: u32::from(inp.u16() % 2048),
        fourcc: if inp.bool() {
            MSMWS_DRM_FORMAT_XRGB8888
        } else {
            inp.u32()
        },
        pitch_B: u32::from(inp.u16()) * 4,
        offset_B: if inp.one_in(4) { inp.u32() } else { 0 },
    }
}

fuzz_target!(|data: &[u8]| {
    static BASELINE: OnceLock<usize> = OnceLock::new();
    let baseline = *BASELINE.get_or_init(threads::count);
    static ONCE: Once = Once::new();
    ONCE.call_once(|| set_leak_check(LeakCheck::Record));
    LOST.with(|l| l.set(false));
    let mut inp = Input(data);
    let mut st = State::default();
    let profile: &[u8] = match inp.u8() % 8 {
        0 => b"a618\0",
        1 => b"a660\0",
        2 => b"nonsense\0",
        _ => b"a750\0",
    };
    let mut dev = null_mut();
    if check(
        "device_new_sim",
        msmws_device_new_sim(profile.as_ptr().cast(), &mut dev),
    ) {
        st.dev.push(dev);
    }
    check(
        "device_new_sim(NULL)",
        msmws_device_new_sim(null(), &mut dev),
    );
    for _ in 0..MAX_OPS {
        if inp.is_empty() {
            break;
        }
        st.step(&mut inp);
    }
    st.teardown();
    // The GPU thread sees the device gone at once; the buffer cache's reaper only at its next
    // tick (up to 250 ms): not worth waiting for, at the cost of a leak scan after such runs.
    threads::settle(baseline, Duration::from_millis(2));
    let mut leaks = take_recorded_leaks();
    if LOST.with(|l| l.replace(false)) {
        // A lost VM takes no more VM_BIND (msm_gem_vm_close): its mappings stay until the file
        // closes, which is the kernel's doing. Everything else must still be gone.
        for (_, r) in &mut leaks {
            r.vmas.clear();
        }
        leaks.retain(|(_, r)| !r.is_empty());
    }
    assert!(
        leaks.is_empty(),
        "a driver that freed and destroyed everything left this in the model: {leaks:?}"
    );
});
