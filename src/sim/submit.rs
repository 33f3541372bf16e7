//! GEM_SUBMIT, in the kernel's order (spec/kernel.md "GEM_SUBMIT, in the kernel's order"): legacy
//! submits with a BO table and implicit sync, and VM_BIND-mode submits with commands by iova.
//!
//! Owns: nothing persistent; builds a `gpu::Job`. Locks: `SimFile::ctx` (held while the submit is
//! validated and queued), then object, VM, queue and GPU locks as leaves.

use std::collections::HashSet;
use std::os::fd::IntoRawFd;
use std::sync::Arc;

use super::dispatch::typed;
use super::fence::Fence;
use super::gem::{GemObject, Madv};
use super::gpu::Job;
use super::kmalloc::{kcalloc, kzalloc};
use super::resv::{Resv, Usage};
use super::syncobj::Syncobj;
use super::{queue, sync_file, user, SimFile};
use crate::uapi::*;
use crate::Errno;

/// Submit flags the kernel accepts above the pipe id.
const FLAGS: u32 = MSM_SUBMIT_FLAGS;
/// `sizeof(submit->bos[0])` (flags, handle/obj, vm_bo, iova) and `sizeof(submit->cmd[0])` (type,
/// size, offset, iova, nr_relocs, relocs) on a 64-bit kernel, msm_gem.h; the submit's own header
/// (a few hundred bytes) is left out.
const SUBMIT_BO_B: u64 = 32;
const SUBMIT_CMD_B: u64 = 40;

pub(super) fn gem_submit(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_msm_gem_submit| {
        submit(file, a, Vec::new())
    })
}

/// After a successful submit or VM_BIND: RESET in-syncobjs are reset, out-syncobjs get `fence`
/// (point 0 replaces the fence, a non-zero point adds a timeline point).
pub(super) fn post_syncobjs(
    resets: Vec<Arc<Syncobj>>,
    outs: Vec<(Arc<Syncobj>, u64)>,
    fence: &Arc<Fence>,
) {
    for s in resets {
        s.replace_fence(None);
    }
    for (s, point) in outs {
        if point == 0 {
            s.replace_fence(Some(fence.clone()));
        } else {
            s.add_point(point, fence.clone());
        }
    }
}

/// The submit ioctl; `touches` are extra ranges a test declares the job accesses.
pub(super) fn submit(
    file: &SimFile,
    a: &mut drm_msm_gem_submit,
    touches: Vec<(u64, u64)>,
) -> Result<(), Errno> {
    let mut ctx = file.ctx();
    // 1. The VM is created lazily here, so EN_VM_BIND afterwards is EBUSY.
    let vm = file.vm(&mut ctx);
    if a.pad != 0 {
        return Err(Errno::EINVAL);
    }
    if vm.is_unusable() {
        return Err(Errno::EPIPE);
    }
    if a.flags & MSM_PIPE_ID_MASK != MSM_PIPE_3D0 {
        return Err(Errno::EINVAL);
    }
    if a.flags & !(FLAGS | MSM_PIPE_ID_MASK) != 0 {
        return Err(Errno::EINVAL);
    }
    // SUDO needs a privilege userspace clients never have here.
    if a.flags & MSM_SUBMIT_SUDO != 0 {
        return Err(Errno::EINVAL);
    }
    let q = queue::lookup(&ctx, a.queueid)?;
    if q.is_vm_bind() {
        return Err(Errno::EINVAL);
    }
    let vm_bind_mode = ctx.vm_bind;
    // The out fence fd is reserved before anything else can fail late (EMFILE).
    let out_fd = if a.flags & MSM_SUBMIT_FENCE_FD_OUT != 0 {
        Some(sync_file::reserve()?)
    } else {
        None
    };
    // submit_create: one kzalloc of the submit with its BO and command tables, which fails past
    // the largest kmalloc: ENOMEM, before any table is read from user memory.
    let tables_B = u64::from(a.nr_bos) * SUBMIT_BO_B + u64::from(a.nr_cmds) * SUBMIT_CMD_B;
    kzalloc(tables_B)?;

    // 2. Explicit in-fences.
    let mut in_fences: Vec<Arc<Fence>> = Vec::new();
    if a.flags & MSM_SUBMIT_FENCE_FD_IN != 0 {
        in_fences.push(sync_file::import(a.fence_fd).ok_or(Errno::EINVAL)?);
    }
    let mut resets = Vec::new();
    if a.flags & MSM_SUBMIT_SYNCOBJ_IN != 0 {
        // msm_syncobj_parse_deps: kcalloc of one `struct drm_syncobj *` per entry first.
        kcalloc(a.nr_in_syncobjs, 8)?;
        let descs: Vec<drm_msm_syncobj> =
            user::read_strided(a.in_syncobjs, a.nr_in_syncobjs, a.syncobj_stride)?;
        for d in descs {
            if d.flags & !MSM_SYNCOBJ_FLAGS != 0 {
                return Err(Errno::EINVAL);
            }
            let s = file.syncobjs.get(d.handle).ok_or(Errno::ENOENT)?;
            // Kernel quirk: the in-point is truncated to 32 bits.
            in_fences.push(s.find_fence(d.point as u32 as u64)?);
            if d.flags & MSM_SYNCOBJ_RESET != 0 {
                resets.push(s);
            }
        }
    }
    let mut outs = Vec::new();
    if a.flags & MSM_SUBMIT_SYNCOBJ_OUT != 0 {
        // msm_syncobj_parse_post_deps: kcalloc of one `struct msm_syncobj_post_dep` (syncobj,
        // point, chain: 24 bytes) per entry first.
        kcalloc(a.nr_out_syncobjs, 24)?;
        let descs: Vec<drm_msm_syncobj> =
            user::read_strided(a.out_syncobjs, a.nr_out_syncobjs, a.syncobj_stride)?;
        for d in descs {
            if d.flags != 0 {
                return Err(Errno::EINVAL);
            }
            outs.push((file.syncobjs.get(d.handle).ok_or(Errno::EINVAL)?, d.point));
        }
    }

    // 3. The BO table.
    let bos: Vec<drm_msm_gem_submit_bo> = user::read_array(a.bos, a.nr_bos)?;
    let mut objects: Vec<(Arc<GemObject>, u32)> = Vec::with_capacity(bos.len());
    let mut seen = HashSet::new();
    for b in &bos {
        if b.flags & !MSM_SUBMIT_BO_FLAGS != 0
            || b.flags & (MSM_SUBMIT_BO_READ | MSM_SUBMIT_BO_WRITE) == 0
        {
            return Err(Errno::EINVAL);
        }
        let obj = SimFile::lookup(&ctx, b.handle).ok_or(Errno::EINVAL)?;
        if !vm_bind_mode && !seen.insert(b.handle) {
            return Err(Errno::EALREADY);
        }
        objects.push((obj, b.flags));
    }

    // 4. Commands.
    let cmds: Vec<drm_msm_gem_submit_cmd> = user::read_array(a.cmds, a.nr_cmds)?;
    let mut cmd_ranges = Vec::with_capacity(cmds.len());
    for c in &cmds {
        if !(MSM_SUBMIT_CMD_BUF..=MSM_SUBMIT_CMD_CTX_RESTORE_BUF).contains(&c.r#type)
            || c.size % 4 != 0
        {
            return Err(Errno::EINVAL);
        }
        if vm_bind_mode {
            if c.nr_relocs != 0 || c.submit_idx != 0 || c.submit_offset != 0 {
                return Err(Errno::EINVAL);
            }
            cmd_ranges.push((c.iova(), c.size as u64));
        } else {
            let Some((obj, _)) = objects.get(c.submit_idx as usize) else {
                return Err(Errno::EINVAL);
            };
            if c.size == 0 || c.submit_offset as u64 + c.size as u64 > obj.size_B {
                return Err(Errno::EINVAL);
            }
            // a6xx and later take no relocs.
            if c.nr_relocs != 0 {
                return Err(Errno::EINVAL);
            }
            cmd_ranges.push((
                c.submit_idx as u64,
                c.submit_offset as u64 | (c.size as u64) << 32,
            ));
        }
    }

    // 5. Pin and implicit sync (legacy mode: every table entry gets an address in the VM).
    let implicit = a.flags & MSM_SUBMIT_NO_IMPLICIT == 0;
    let mut iovas = Vec::with_capacity(objects.len());
    for (obj, flags) in &objects {
        if obj.lock().madv != Madv::WillNeed {
            return Err(Errno::EBUSY);
        }
        if !vm_bind_mode {
            iovas.push(super::gem::pin_iova(file, &mut ctx, obj)?);
        }
        if implicit && flags & MSM_SUBMIT_BO_NO_IMPLICIT == 0 {
            in_fences.extend(
                obj.resv
                    .pending(Resv::usage_rw(flags & MSM_SUBMIT_BO_WRITE != 0)),
            );
        }
    }
    if !vm_bind_mode {
        // Resolve (bo index, offset|size) into addresses now that every object has one.
        for r in cmd_ranges.iter_mut() {
            let (idx, packed) = *r;
            *r = (iovas[idx as usize] + (packed & 0xffff_ffff), packed >> 32);
        }
    }

    let user_seqno = (a.flags & MSM_SUBMIT_FENCE_SN_IN != 0).then_some(a.fence);
    let (seqno, out) = q.assign_seqno(user_seqno, |s| {
        Fence::named(q.fence_context, s as u64, "drm_sched", q.timeline.clone())
    })?;

    // 6. Commit: fences on objects, out-syncobjs, RESET of in-syncobjs, the job.
    for (obj, flags) in &objects {
        if vm_bind_mode {
            break;
        }
        let usage = if flags & MSM_SUBMIT_BO_WRITE != 0 {
            Usage::Write
        } else {
            Usage::Read
        };
        obj.resv.add(out.clone(), usage);
        obj.lock().pin_count += 1;
    }
    if vm_bind_mode {
        vm.resv.add(out.clone(), Usage::Bookkeep);
        vm.add_last_fence(out.clone());
    }
    post_syncobjs(resets, outs, &out);
    a.fence = seqno;
    if let Some(reserved) = out_fd {
        a.fence_fd = reserved.install(out.clone(), file.id).into_raw_fd();
    }
    let pinned = if vm_bind_mode {
        Vec::new()
    } else {
        objects.into_iter().map(|(o, _)| o).collect()
    };
    let mut touches = touches;
    // An injected GPU fault: the job also reads address 0, which no VM maps (the model's VMs
    // start above it, as msm's do), as a command stream with a stale pointer would. The submit
    // itself succeeds; the fault comes when the job runs.
    if file.injected("SUBMIT:fault") {
        touches.push((0, 4));
    }
    let job = Job::new(
        q,
        vm,
        seqno,
        in_fences,
        cmd_ranges,
        touches,
        pinned,
        out,
        ctx.comm.clone().unwrap_or_else(|| "msm-sim-client".into()),
        ctx.cmdline.clone().unwrap_or_default(),
    );
    drop(ctx);
    file.dev.gpu.push(job);
    Ok(())
}
