//! DRM_IOCTL_MSM_VM_BIND (spec/kernel.md "VM_BIND (mode on)" and its subsections): the ioctl in
//! the kernel's check order, the page-table preallocation count and the per-VM throttle, the ops
//! applied to the VA tree at ioctl time, and the bind job the GPU scheduler runs later to write
//! the page tables.
//!
//! Owns: nothing persistent; a [`BindWork`] travels with its `gpu::Job`.
//! Locks: `SimFile::ctx` while the arguments are checked and handles looked up (released before
//! the throttle wait, which takes only `Vm::throttle`); then `Vm::bind_lock` from pinning to pushing
//! the job, and under it object state locks (pin), `Vm::inner` (apply) and `Gpu::state` (push),
//! one at a time. Syncobj and sync-file locks are leaves taken with nothing else held.

use std::os::fd::IntoRawFd;
use std::sync::Arc;

use super::dispatch::typed;
use super::fence::Fence;
use super::gem::{GemObject, Madv, PAGE_SIZE};
use super::gpu::Job;
use super::kmalloc::{kcalloc, kzalloc};
use super::resv::Usage;
use super::syncobj::Syncobj;
use super::vm::{PtStep, Vm, Vma, VmaKind};
use super::{queue, sync_file, user, SimFile};
use crate::uapi::*;
use crate::Errno;

/// The model's memory limit for one job's preallocation: more table pages than this (4 GiB of
/// page tables) fail with ENOMEM, as `prealloc_allocate` would on a real device.
pub const PREALLOC_MAX_PAGES: u32 = 1 << 20;
/// `sizeof(struct msm_vm_bind_op)`, one entry of the job's op table (op, flags, obj, obj_offset,
/// iova, range) on a 64-bit kernel; the job's own header (a few hundred bytes) is left out.
const JOB_OP_B: u64 = 40;
const SZ_2M: u64 = 2 << 20;

/// One op after `lookup_op` and the handle lookup.
#[derive(Debug)]
struct Op {
    op: u32,
    flags: u32,
    obj: Option<Arc<GemObject>>,
    obj_offset: u64,
    iova: u64,
    range: u64,
}

/// What a bind job does when the GPU scheduler runs it.
#[derive(Debug)]
pub struct BindWork {
    steps: Vec<PtStep>,
    /// Objects of the MAP ops, pinned until the job runs and referenced until it is freed.
    objects: Vec<Arc<GemObject>>,
    prealloc: u32,
    /// An injected failure of the job's first page-table map ("VM_BIND:job").
    fail: Option<Errno>,
}

/// `vm_bind_prealloc_count` + `msm_iommu_pagetable_prealloc_count`: the worst-case table pages
/// of a job whose ops are `(op, iova, range)`. UNMAPs are skipped; an op joins the current group
/// when the 2 MiB block of the previous op's end is its own start's block; each group costs, per
/// span of 512 GiB, 1 GiB and 2 MiB, the spans its [first.iova, last.iova + last.range) touches.
/// Wrapping u64 arithmetic, summed into a u32, as in the kernel.
pub fn prealloc_count(ops: &[(u32, u64, u64)]) -> u32 {
    fn group_cost(start: u64, end: u64) -> u32 {
        let len = end.wrapping_sub(start);
        let end = start.wrapping_add(len);
        [39u32, 30, 21].iter().fold(0u64, |acc, &s| {
            let size = 1u64 << s;
            let up = end.wrapping_add(size - 1) & !(size - 1);
            let down = start & !(size - 1);
            acc.wrapping_add(up.wrapping_sub(down) >> s)
        }) as u32
    }
    let mut count = 0u32;
    let mut group: Option<(u64, u64)> = None; // (first.iova, last.iova + last.range)
    for &(op, iova, range) in ops {
        if op == MSM_VM_BIND_OP_UNMAP {
            continue;
        }
        let end = iova.wrapping_add(range);
        if let Some((first, last_end)) = group {
            if last_end & !(SZ_2M - 1) == iova & !(SZ_2M - 1) {
                group = Some((first, end));
                continue;
            }
            count = count.wrapping_add(group_cost(first, last_end));
        }
        group = Some((iova, end));
    }
    if let Some((first, last_end)) = group {
        count = count.wrapping_add(group_cost(first, last_end));
    }
    count
}

pub(super) fn vm_bind(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_vm_bind| bind(file, a))
}

/// `lookup_op`: the per-op checks, all EINVAL.
fn check_op(file: &SimFile, vm: &Vm, op: &drm_msm_vm_bind_op) -> Result<(), Errno> {
    let aligned = |x: u64| x % PAGE_SIZE == 0;
    let valid_range = op
        .iova
        .checked_add(op.range)
        .is_some_and(|end| op.iova >= vm.va_start && end <= vm.va_start + vm.va_size_B);
    let handle_ok = match op.op {
        MSM_VM_BIND_OP_MAP => op.handle != 0,
        _ => op.handle == 0,
    };
    let known = matches!(
        op.op,
        MSM_VM_BIND_OP_MAP | MSM_VM_BIND_OP_MAP_NULL | MSM_VM_BIND_OP_UNMAP
    );
    let prr_ok = op.op != MSM_VM_BIND_OP_MAP_NULL || file.dev.profile.has_prr;
    if op.flags & !MSM_VM_BIND_OP_FLAGS != 0
        || !aligned(op.iova)
        || !aligned(op.obj_offset)
        || !aligned(op.range)
        || !valid_range
        || !handle_ok
        || !known
        || !prr_ok
    {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// In-syncobjs (`msm_syncobj_parse_deps`): the reset table is allocated first (ENOMEM past the
/// largest kmalloc), then the entries are read one by one, each checked before the next is read.
fn parse_in_syncobjs(
    file: &SimFile,
    a: &drm_msm_vm_bind,
    in_fences: &mut Vec<Arc<Fence>>,
) -> Result<Vec<Arc<Syncobj>>, Errno> {
    kcalloc(a.nr_in_syncobjs, 8)?;
    let mut resets = Vec::new();
    for i in 0..a.nr_in_syncobjs as u64 {
        let at = a.in_syncobjs.wrapping_add(i * a.syncobj_stride as u64);
        let d: drm_msm_syncobj = user::read_strided(at, 1, a.syncobj_stride)?[0];
        if d.point != 0 && !file.dev.options.timeline_syncobjs {
            return Err(Errno::EOPNOTSUPP);
        }
        if d.flags & !MSM_SYNCOBJ_FLAGS != 0 {
            return Err(Errno::EINVAL);
        }
        let s = file.syncobjs.get(d.handle).ok_or(Errno::ENOENT)?;
        // drm_sched_job_add_syncobj_dependency takes the point as a u32: the kernel waits for
        // the point truncated to 32 bits, as in GEM_SUBMIT.
        in_fences.push(s.find_fence(d.point as u32 as u64)?);
        if d.flags & MSM_SYNCOBJ_RESET != 0 {
            resets.push(s);
        }
    }
    Ok(resets)
}

/// Out-syncobjs (`msm_syncobj_parse_post_deps`): the table of `struct msm_syncobj_post_dep`
/// (syncobj, point, chain: 24 bytes each) first, then the entries one by one.
fn parse_out_syncobjs(
    file: &SimFile,
    a: &drm_msm_vm_bind,
) -> Result<Vec<(Arc<Syncobj>, u64)>, Errno> {
    kcalloc(a.nr_out_syncobjs, 24)?;
    let mut outs = Vec::new();
    for i in 0..a.nr_out_syncobjs as u64 {
        let at = a.out_syncobjs.wrapping_add(i * a.syncobj_stride as u64);
        let d: drm_msm_syncobj = user::read_strided(at, 1, a.syncobj_stride)?[0];
        if d.flags != 0 {
            return Err(Errno::EINVAL);
        }
        if d.point != 0 && !file.dev.options.timeline_syncobjs {
            return Err(Errno::EOPNOTSUPP);
        }
        outs.push((file.syncobjs.get(d.handle).ok_or(Errno::EINVAL)?, d.point));
    }
    Ok(outs)
}

/// Pins the objects of `ops` (`vm_bind_job_pin_objects`): EBUSY for a DONTNEED or purged one,
/// ENOMEM for one larger than memory ([`super::gem::pages_fit`]). On failure nothing stays
/// pinned.
fn pin(file: &SimFile, objects: &[Arc<GemObject>]) -> Result<(), Errno> {
    file.inject("VM_BIND:pin")?;
    for (i, obj) in objects.iter().enumerate() {
        let mut st = obj.lock();
        if st.madv != Madv::WillNeed {
            drop(st);
            unpin(&objects[..i]);
            return Err(Errno::EBUSY);
        }
        if let Err(e) = super::gem::pages_fit(obj) {
            drop(st);
            unpin(&objects[..i]);
            return Err(e);
        }
        st.pin_count += 1;
        st.has_pages = true;
    }
    Ok(())
}

fn unpin(objects: &[Arc<GemObject>]) {
    for obj in objects {
        obj.lock().pin_count -= 1;
    }
}

fn bind(file: &SimFile, a: &mut drm_msm_vm_bind) -> Result<(), Errno> {
    let mut ctx = file.ctx();
    let vm = file.vm(&mut ctx);
    if vm.is_unusable() {
        return Err(Errno::EPIPE);
    }
    if !ctx.vm_bind {
        return Err(Errno::EINVAL);
    }
    if a.flags & !MSM_VM_BIND_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let q = queue::lookup(&ctx, a.queue_id)?;
    if !q.is_vm_bind() {
        return Err(Errno::EINVAL);
    }
    let out_fd = if a.flags & MSM_VM_BIND_FENCE_FD_OUT != 0 {
        Some(sync_file::reserve()?)
    } else {
        None
    };
    // vm_bind_job_create: one kzalloc of the job with its op table, before anything is read.
    kzalloc(u64::from(a.nr_ops) * JOB_OP_B)?;
    let mut in_fences = Vec::new();
    if a.flags & MSM_VM_BIND_FENCE_FD_IN != 0 {
        in_fences.push(sync_file::import(a.fence_fd).ok_or(Errno::EINVAL)?);
    }
    let resets = if a.in_syncobjs != 0 {
        parse_in_syncobjs(file, a, &mut in_fences)?
    } else {
        Vec::new()
    };
    let outs = if a.out_syncobjs != 0 {
        parse_out_syncobjs(file, a)?
    } else {
        Vec::new()
    };

    // vm_bind_job_lookup_ops: every op checked (and copied in) before anything changes.
    let raw: Vec<drm_msm_vm_bind_op> = if a.nr_ops == 1 {
        // SAFETY: both union members are plain integers over the same 40 copied-in bytes.
        let op = unsafe { a.u.op };
        check_op(file, &vm, &op)?;
        vec![op]
    } else {
        // SAFETY: as above; with nr_ops != 1 the union holds the ops pointer.
        let base = unsafe { a.u.ops };
        let mut v = Vec::with_capacity(a.nr_ops as usize);
        for i in 0..a.nr_ops as u64 {
            let op: drm_msm_vm_bind_op = user::read(base.wrapping_add(i * 40))?;
            check_op(file, &vm, &op)?;
            v.push(op);
        }
        v
    };
    let mut ops = Vec::with_capacity(raw.len());
    for op in &raw {
        let obj = if op.handle != 0 {
            let obj = SimFile::lookup(&ctx, op.handle).ok_or(Errno::EINVAL)?;
            // "invalid range": the mapping must lie inside the object (current kernels).
            if op.op == MSM_VM_BIND_OP_MAP
                && op
                    .obj_offset
                    .checked_add(op.range)
                    .is_none_or(|e| e > obj.size_B)
            {
                return Err(Errno::EINVAL);
            }
            Some(obj)
        } else {
            None
        };
        ops.push(Op {
            op: op.op,
            flags: op.flags,
            obj,
            obj_offset: op.obj_offset,
            iova: op.iova,
            range: op.range,
        });
    }
    // The submitting task, for devcoredumps (read now: `ctx` is not taken under the bind lock).
    let task = (
        ctx.comm.clone().unwrap_or_else(|| "msm-sim-client".into()),
        ctx.cmdline.clone().unwrap_or_default(),
    );
    drop(ctx);

    // vm_bind_prealloc_count, then the throttle (interruptible; no lock held while waiting).
    let shape: Vec<(u32, u64, u64)> = ops.iter().map(|o| (o.op, o.iova, o.range)).collect();
    let prealloc = prealloc_count(&shape);
    vm.throttle_admit(prealloc)?;
    vm.last_prealloc
        .store(prealloc as u64, std::sync::atomic::Ordering::Relaxed);
    let objects: Vec<Arc<GemObject>> = ops.iter().filter_map(|o| o.obj.clone()).collect();
    let result = commit(
        file, &vm, &q, a, ops, &objects, prealloc, in_fences, out_fd, task,
    );
    match result {
        Ok(fence) => {
            super::submit::post_syncobjs(resets, outs, &fence);
            Ok(())
        }
        Err(e) => {
            // msm_vma_job_free: the job's preallocation leaves the throttle.
            vm.throttle_release(prealloc);
            Err(e)
        }
    }
}

/// Pin, preallocate, apply the ops to the VA tree and push the job; the job's fence on success.
#[allow(clippy::too_many_arguments)]
fn commit(
    file: &SimFile,
    vm: &Arc<Vm>,
    q: &Arc<queue::Queue>,
    a: &mut drm_msm_vm_bind,
    ops: Vec<Op>,
    objects: &[Arc<GemObject>],
    prealloc: u32,
    in_fences: Vec<Arc<Fence>>,
    out_fd: Option<sync_file::Reserved>,
    (comm, cmdline): (String, String),
) -> Result<Arc<Fence>, Errno> {
    let _serial = vm.bind_lock();
    pin(file, objects)?;
    let prepared = (|| {
        file.inject("VM_BIND:prealloc")?;
        if prealloc > PREALLOC_MAX_PAGES {
            return Err(Errno::ENOMEM);
        }
        // vm_bind_job_prepare: the ops change the VA tree now, in order.
        // Which op (if any) an injection makes fail, found before `Vm::inner` is taken.
        let failing = (0..ops.len())
            .find_map(|i| file.inject(&format!("VM_BIND:op{i}")).err().map(|e| (i, e)));
        let mut steps = Vec::new();
        let mut dropped = Vec::new();
        let mut inner = vm.lock();
        for (i, op) in ops.iter().enumerate() {
            if let Some((_, e)) = failing.filter(|(at, _)| *at == i) {
                if i > 0 {
                    vm.mark_unusable();
                }
                drop(inner);
                drop(dropped);
                return Err(e);
            }
            match op.op {
                MSM_VM_BIND_OP_UNMAP => {
                    inner.sm_unmap(op.iova, op.range, q.id, &mut steps, &mut dropped)
                }
                _ => {
                    let new = match &op.obj {
                        Some(obj) => Vma {
                            iova: op.iova,
                            range_B: op.range,
                            obj: Arc::downgrade(obj),
                            obj_id: obj.id,
                            obj_offset_B: op.obj_offset,
                            kind: VmaKind::Bo,
                            held: Some(obj.clone()),
                            dump: op.flags & MSM_VM_BIND_OP_DUMP != 0,
                            mapped: true,
                        },
                        None => Vma {
                            iova: op.iova,
                            range_B: op.range,
                            obj: std::sync::Weak::new(),
                            obj_id: 0,
                            obj_offset_B: 0,
                            kind: VmaKind::Null,
                            held: None,
                            dump: false,
                            mapped: true,
                        },
                    };
                    inner.sm_map(new, q.id, &mut steps, &mut dropped);
                }
            }
        }
        drop(inner);
        // Removed VMAs release their objects with no VM lock held.
        drop(dropped);
        Ok(steps)
    })();
    let steps = match prepared {
        Ok(s) => s,
        Err(e) => {
            unpin(objects);
            return Err(e);
        }
    };
    // Purge finds VM_BIND mappings through the object.
    for obj in objects {
        let mut st = obj.lock();
        st.bind_vms.retain(|w| w.strong_count() > 0);
        if !st
            .bind_vms
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(vm)))
        {
            st.bind_vms.push(Arc::downgrade(vm));
        }
    }
    let fail = file.inject("VM_BIND:job").err();
    let fence = Fence::new(q.fence_context, vm.next_bind_seqno());
    if let Some(reserved) = out_fd {
        a.fence_fd = reserved.install(fence.clone(), file.id).into_raw_fd();
    }
    for obj in objects {
        obj.resv.add(fence.clone(), Usage::Kernel);
    }
    let mut job = Job::new(
        q.clone(),
        vm.clone(),
        fence.seqno as u32,
        in_fences,
        Vec::new(),
        Vec::new(),
        Vec::new(),
        fence.clone(),
        comm,
        cmdline,
    );
    job.lane = vm.bind_lane;
    job.bind = Some(BindWork {
        steps,
        objects: objects.to_vec(),
        prealloc,
        fail,
    });
    file.dev.gpu.push(job);
    Ok(fence)
}

impl BindWork {
    /// `msm_vma_job_run` then `msm_vma_job_free`: page-table steps in order (after the first
    /// failed map the other maps are skipped, unmaps still run), any failure marks the VM
    /// unusable; objects are unpinned, the fence signals and the preallocation leaves the
    /// throttle. A job whose file closed before it ran is cancelled.
    pub fn run(self, vm: &Arc<Vm>, out: &Fence) {
        let mut failed = if vm.is_unusable() {
            Some(Errno::EINVAL)
        } else {
            None
        };
        let mut pending_fail = self.fail;
        let cancelled = {
            let mut inner = vm.lock();
            if inner.closed {
                true
            } else {
                for step in &self.steps {
                    match step {
                        PtStep::Map { .. } if failed.is_some() => {}
                        PtStep::Map {
                            iova,
                            range_B,
                            queue_id,
                            ..
                        } => {
                            if let Some(e) = pending_fail.take() {
                                // The map fails after it was logged, as vm_map_op does.
                                inner.log("map", *iova, *range_B, *queue_id);
                                failed = Some(e);
                            } else {
                                inner.run_step(step);
                            }
                        }
                        PtStep::Unmap { .. } => inner.run_step(step),
                    }
                }
                false
            }
        };
        if failed.is_some() || pending_fail.is_some() {
            vm.mark_unusable();
        }
        unpin(&self.objects);
        if cancelled {
            out.signal_error(Errno::ECANCELED);
        } else {
            out.signal();
        }
        vm.throttle_release(self.prealloc);
        drop(self.objects);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_small_map_costs_three_pages() {
        assert_eq!(prealloc_count(&[(1, 0x1_0000_0000, 4096)]), 3);
    }

    #[test]
    fn contiguous_small_maps_share_tables_and_unsorted_ones_do_not() {
        let a = 0x1_0000_0000;
        let sorted: Vec<_> = (0..4).map(|i| (1, a + i * 4096, 4096)).collect();
        assert_eq!(prealloc_count(&sorted), 3);
        let unsorted: Vec<_> = (0..4).map(|i| (1, a + (3 - i) * SZ_2M, 4096)).collect();
        assert_eq!(prealloc_count(&unsorted), 12);
    }

    #[test]
    fn unmaps_are_skipped() {
        assert_eq!(prealloc_count(&[(0, 0x1_0000_0000, 1 << 30)]), 0);
    }
}
