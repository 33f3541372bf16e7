//! `include/uapi/drm/msm_drm.h` as merged for v6.17 (UAPI 1.13.0, VM_BIND) with later fixes through
//! v7.1. Names, values and layouts are the kernel's; see `../shared/spec/uapi.md`.

use core::mem::{offset_of, size_of};

use super::ioc::{iow, iowr, DRM_COMMAND_BASE};

// ---- Pipes --------------------------------------------------------------------------------------

pub const MSM_PIPE_NONE: u32 = 0x00;
pub const MSM_PIPE_2D0: u32 = 0x01;
pub const MSM_PIPE_2D1: u32 = 0x02;
/// The only pipe the kernel accepts.
pub const MSM_PIPE_3D0: u32 = 0x10;
pub const MSM_PIPE_ID_MASK: u32 = 0xffff;

// ---- Params -------------------------------------------------------------------------------------

pub const MSM_PARAM_GPU_ID: u32 = 0x01;
pub const MSM_PARAM_GMEM_SIZE: u32 = 0x02;
pub const MSM_PARAM_CHIP_ID: u32 = 0x03;
pub const MSM_PARAM_MAX_FREQ: u32 = 0x04;
pub const MSM_PARAM_TIMESTAMP: u32 = 0x05;
pub const MSM_PARAM_GMEM_BASE: u32 = 0x06;
/// Number of priority levels (rings x 3).
pub const MSM_PARAM_PRIORITIES: u32 = 0x07;
pub const MSM_PARAM_NR_RINGS: u32 = MSM_PARAM_PRIORITIES;
/// Deprecated, always 0.
pub const MSM_PARAM_PP_PGTABLE: u32 = 0x08;
pub const MSM_PARAM_FAULTS: u32 = 0x09;
pub const MSM_PARAM_SUSPENDS: u32 = 0x0a;
/// Write-only.
pub const MSM_PARAM_SYSPROF: u32 = 0x0b;
/// Write-only: override for task->comm (by pointer, `len` bytes).
pub const MSM_PARAM_COMM: u32 = 0x0c;
/// Write-only: override for the task cmdline (by pointer, `len` bytes).
pub const MSM_PARAM_CMDLINE: u32 = 0x0d;
pub const MSM_PARAM_VA_START: u32 = 0x0e;
pub const MSM_PARAM_VA_SIZE: u32 = 0x0f;
pub const MSM_PARAM_HIGHEST_BANK_BIT: u32 = 0x10;
pub const MSM_PARAM_RAYTRACING: u32 = 0x11;
pub const MSM_PARAM_UBWC_SWIZZLE: u32 = 0x12;
pub const MSM_PARAM_MACROTILE_MODE: u32 = 0x13;
pub const MSM_PARAM_UCHE_TRAP_BASE: u32 = 0x14;
/// Partially resident region support (MAP_NULL).
pub const MSM_PARAM_HAS_PRR: u32 = 0x15;
/// Write-only, once per file, before the VM exists.
pub const MSM_PARAM_EN_VM_BIND: u32 = 0x16;
/// Added in v7.1.
pub const MSM_PARAM_AQE: u32 = 0x17;

/// `struct drm_msm_timespec`: a CLOCK_MONOTONIC absolute time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

/// `struct drm_msm_param` (GET_PARAM / SET_PARAM).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_param {
    pub pipe: u32,
    pub param: u32,
    pub value: u64,
    pub len: u32,
    pub pad: u32,
}

// ---- GEM objects --------------------------------------------------------------------------------

pub const MSM_BO_SCANOUT: u32 = 0x0000_0001;
pub const MSM_BO_GPU_READONLY: u32 = 0x0000_0002;
/// The BO shares the VM's reservation object; it cannot be exported.
pub const MSM_BO_NO_SHARE: u32 = 0x0000_0004;
pub const MSM_BO_CACHE_MASK: u32 = 0x000f_0000;
pub const MSM_BO_CACHED: u32 = 0x0001_0000;
pub const MSM_BO_WC: u32 = 0x0002_0000;
/// Deprecated; use `MSM_BO_WC`.
pub const MSM_BO_UNCACHED: u32 = 0x0004_0000;
pub const MSM_BO_CACHED_COHERENT: u32 = 0x0008_0000;
pub const MSM_BO_FLAGS: u32 =
    MSM_BO_SCANOUT | MSM_BO_GPU_READONLY | MSM_BO_NO_SHARE | MSM_BO_CACHE_MASK;

/// `struct drm_msm_gem_new`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_gem_new {
    pub size: u64,
    pub flags: u32,
    pub handle: u32,
}

pub const MSM_INFO_GET_OFFSET: u32 = 0x00;
pub const MSM_INFO_GET_IOVA: u32 = 0x01;
pub const MSM_INFO_SET_NAME: u32 = 0x02;
pub const MSM_INFO_GET_NAME: u32 = 0x03;
pub const MSM_INFO_SET_IOVA: u32 = 0x04;
pub const MSM_INFO_GET_FLAGS: u32 = 0x05;
pub const MSM_INFO_SET_METADATA: u32 = 0x06;
pub const MSM_INFO_GET_METADATA: u32 = 0x07;
/// The most bytes of metadata a GEM object holds: SET_METADATA refuses more with EOVERFLOW. Not
/// in msm_drm.h: `msm_ioctl_gem_info_set_metadata`'s "moderate upper bound".
pub const MSM_METADATA_MAX_B: u32 = 128;

/// `struct drm_msm_gem_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_gem_info {
    pub handle: u32,
    pub info: u32,
    pub value: u64,
    pub len: u32,
    pub pad: u32,
}

pub const MSM_PREP_READ: u32 = 0x01;
pub const MSM_PREP_WRITE: u32 = 0x02;
pub const MSM_PREP_NOSYNC: u32 = 0x04;
pub const MSM_PREP_BOOST: u32 = 0x08;
pub const MSM_PREP_FLAGS: u32 = MSM_PREP_READ | MSM_PREP_WRITE | MSM_PREP_NOSYNC | MSM_PREP_BOOST;

/// `struct drm_msm_gem_cpu_prep`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_gem_cpu_prep {
    pub handle: u32,
    pub op: u32,
    pub timeout: drm_msm_timespec,
}

/// `struct drm_msm_gem_cpu_fini`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_gem_cpu_fini {
    pub handle: u32,
}

// ---- Submission ---------------------------------------------------------------------------------

/// `struct drm_msm_gem_submit_reloc` (pre-a6xx only). The C field `or` is a Rust keyword.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_gem_submit_reloc {
    pub submit_offset: u32,
    pub or: u32,
    pub shift: i32,
    pub reloc_idx: u32,
    pub reloc_offset: u64,
}

pub const MSM_SUBMIT_CMD_BUF: u32 = 0x0001;
pub const MSM_SUBMIT_CMD_IB_TARGET_BUF: u32 = 0x0002;
pub const MSM_SUBMIT_CMD_CTX_RESTORE_BUF: u32 = 0x0003;

/// `struct drm_msm_gem_submit_cmd`. The kernel's last member is `union { __u64 relocs; __u64 iova; }`:
/// legacy submits pass a relocs pointer, VM_BIND-mode submits the command's GPU address. Both views
/// are the same 8 bytes, so the field is kept as `relocs` with [`Self::iova`] / [`Self::set_iova`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_gem_submit_cmd {
    pub r#type: u32,
    pub submit_idx: u32,
    pub submit_offset: u32,
    pub size: u32,
    pub pad: u32,
    pub nr_relocs: u32,
    pub relocs: u64,
}

impl drm_msm_gem_submit_cmd {
    /// The `iova` member of the union (VM_BIND mode).
    pub const fn iova(&self) -> u64 {
        self.relocs
    }

    pub fn set_iova(&mut self, iova: u64) {
        self.relocs = iova;
    }
}

pub const MSM_SUBMIT_BO_READ: u32 = 0x0001;
pub const MSM_SUBMIT_BO_WRITE: u32 = 0x0002;
pub const MSM_SUBMIT_BO_DUMP: u32 = 0x0004;
pub const MSM_SUBMIT_BO_NO_IMPLICIT: u32 = 0x0008;
pub const MSM_SUBMIT_BO_FLAGS: u32 =
    MSM_SUBMIT_BO_READ | MSM_SUBMIT_BO_WRITE | MSM_SUBMIT_BO_DUMP | MSM_SUBMIT_BO_NO_IMPLICIT;

/// `struct drm_msm_gem_submit_bo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_gem_submit_bo {
    pub flags: u32,
    pub handle: u32,
    pub presumed: u64,
}

pub const MSM_SUBMIT_NO_IMPLICIT: u32 = 0x8000_0000;
pub const MSM_SUBMIT_FENCE_FD_IN: u32 = 0x4000_0000;
pub const MSM_SUBMIT_FENCE_FD_OUT: u32 = 0x2000_0000;
pub const MSM_SUBMIT_SUDO: u32 = 0x1000_0000;
pub const MSM_SUBMIT_SYNCOBJ_IN: u32 = 0x0800_0000;
pub const MSM_SUBMIT_SYNCOBJ_OUT: u32 = 0x0400_0000;
pub const MSM_SUBMIT_FENCE_SN_IN: u32 = 0x0200_0000;
pub const MSM_SUBMIT_FLAGS: u32 = MSM_SUBMIT_NO_IMPLICIT
    | MSM_SUBMIT_FENCE_FD_IN
    | MSM_SUBMIT_FENCE_FD_OUT
    | MSM_SUBMIT_SUDO
    | MSM_SUBMIT_SYNCOBJ_IN
    | MSM_SUBMIT_SYNCOBJ_OUT
    | MSM_SUBMIT_FENCE_SN_IN;

/// Reset the syncobj after the wait (was `MSM_SUBMIT_SYNCOBJ_RESET`; renamed without a compat name).
pub const MSM_SYNCOBJ_RESET: u32 = 0x0000_0001;
pub const MSM_SYNCOBJ_FLAGS: u32 = MSM_SYNCOBJ_RESET;

/// `struct drm_msm_syncobj` (was `drm_msm_gem_submit_syncobj`; same layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_syncobj {
    pub handle: u32,
    pub flags: u32,
    pub point: u64,
}

/// `struct drm_msm_gem_submit`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_gem_submit {
    pub flags: u32,
    pub fence: u32,
    pub nr_bos: u32,
    pub nr_cmds: u32,
    pub bos: u64,
    pub cmds: u64,
    pub fence_fd: i32,
    pub queueid: u32,
    pub in_syncobjs: u64,
    pub out_syncobjs: u64,
    pub nr_in_syncobjs: u32,
    pub nr_out_syncobjs: u32,
    pub syncobj_stride: u32,
    pub pad: u32,
}

pub const MSM_WAIT_FENCE_BOOST: u32 = 0x0000_0001;
pub const MSM_WAIT_FENCE_FLAGS: u32 = MSM_WAIT_FENCE_BOOST;

/// `struct drm_msm_wait_fence` (write-only: the kernel copies nothing back).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_wait_fence {
    pub fence: u32,
    pub flags: u32,
    pub timeout: drm_msm_timespec,
    pub queueid: u32,
}

pub const MSM_MADV_WILLNEED: u32 = 0;
pub const MSM_MADV_DONTNEED: u32 = 1;
/// Kernel-internal state, never accepted from userspace.
pub const __MSM_MADV_PURGED: u32 = 2;

/// `struct drm_msm_gem_madvise`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_gem_madvise {
    pub handle: u32,
    pub madv: u32,
    pub retained: u32,
}

// ---- Submitqueues -------------------------------------------------------------------------------

pub const MSM_SUBMITQUEUE_ALLOW_PREEMPT: u32 = 0x0000_0001;
/// A queue for VM_BIND jobs (VM_BIND mode only, prio 0).
pub const MSM_SUBMITQUEUE_VM_BIND: u32 = 0x0000_0002;
pub const MSM_SUBMITQUEUE_FLAGS: u32 = MSM_SUBMITQUEUE_ALLOW_PREEMPT | MSM_SUBMITQUEUE_VM_BIND;

/// `struct drm_msm_submitqueue`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_submitqueue {
    pub flags: u32,
    pub prio: u32,
    pub id: u32,
}

pub const MSM_SUBMITQUEUE_PARAM_FAULTS: u32 = 0;

/// `struct drm_msm_submitqueue_query` (write-only: the kernel writes only through `data`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_submitqueue_query {
    pub data: u64,
    pub id: u32,
    pub param: u32,
    pub len: u32,
    pub pad: u32,
}

// ---- VM_BIND ------------------------------------------------------------------------------------

pub const MSM_VM_BIND_OP_UNMAP: u32 = 0;
pub const MSM_VM_BIND_OP_MAP: u32 = 1;
/// Map every page to the shared zero page (needs PRR).
pub const MSM_VM_BIND_OP_MAP_NULL: u32 = 2;
/// Include this mapping in devcoredumps.
pub const MSM_VM_BIND_OP_DUMP: u32 = 0x0000_0001;
pub const MSM_VM_BIND_OP_FLAGS: u32 = MSM_VM_BIND_OP_DUMP;

/// `struct drm_msm_vm_bind_op`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_msm_vm_bind_op {
    pub op: u32,
    pub handle: u32,
    pub obj_offset: u64,
    pub iova: u64,
    pub range: u64,
    pub flags: u32,
    pub pad: u32,
}

pub const MSM_VM_BIND_FENCE_FD_IN: u32 = 0x0000_0001;
pub const MSM_VM_BIND_FENCE_FD_OUT: u32 = 0x0000_0002;
pub const MSM_VM_BIND_FLAGS: u32 = MSM_VM_BIND_FENCE_FD_IN | MSM_VM_BIND_FENCE_FD_OUT;

/// The kernel's anonymous union at the end of `struct drm_msm_vm_bind`: one inline op when
/// `nr_ops == 1`, otherwise a user pointer to an array of `nr_ops` ops.
#[repr(C)]
#[derive(Clone, Copy)]
pub union drm_msm_vm_bind_ops {
    pub op: drm_msm_vm_bind_op,
    pub ops: u64,
}

impl Default for drm_msm_vm_bind_ops {
    fn default() -> Self {
        drm_msm_vm_bind_ops {
            op: drm_msm_vm_bind_op::default(),
        }
    }
}

impl core::fmt::Debug for drm_msm_vm_bind_ops {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: both members are plain integers over the same initialised 40 bytes (the union is
        // always created whole, from `op`), so reading either view is defined.
        let ops = unsafe { self.ops };
        write!(f, "{{ ops: {ops:#x} }}")
    }
}

/// `struct drm_msm_vm_bind`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct drm_msm_vm_bind {
    pub flags: u32,
    pub nr_ops: u32,
    pub fence_fd: i32,
    pub queue_id: u32,
    pub in_syncobjs: u64,
    pub out_syncobjs: u64,
    pub nr_in_syncobjs: u32,
    pub nr_out_syncobjs: u32,
    pub syncobj_stride: u32,
    pub op_stride: u32,
    pub u: drm_msm_vm_bind_ops,
}

// ---- Request codes ------------------------------------------------------------------------------

pub const DRM_MSM_GET_PARAM: u32 = 0x00;
pub const DRM_MSM_SET_PARAM: u32 = 0x01;
pub const DRM_MSM_GEM_NEW: u32 = 0x02;
pub const DRM_MSM_GEM_INFO: u32 = 0x03;
pub const DRM_MSM_GEM_CPU_PREP: u32 = 0x04;
pub const DRM_MSM_GEM_CPU_FINI: u32 = 0x05;
pub const DRM_MSM_GEM_SUBMIT: u32 = 0x06;
pub const DRM_MSM_WAIT_FENCE: u32 = 0x07;
pub const DRM_MSM_GEM_MADVISE: u32 = 0x08;
// 0x09 is reserved (GEM_SVM_NEW placeholder).
pub const DRM_MSM_SUBMITQUEUE_NEW: u32 = 0x0a;
pub const DRM_MSM_SUBMITQUEUE_CLOSE: u32 = 0x0b;
pub const DRM_MSM_SUBMITQUEUE_QUERY: u32 = 0x0c;
pub const DRM_MSM_VM_BIND: u32 = 0x0d;

const B: u32 = DRM_COMMAND_BASE;
pub const DRM_IOCTL_MSM_GET_PARAM: u64 = iowr::<drm_msm_param>(B + DRM_MSM_GET_PARAM);
pub const DRM_IOCTL_MSM_SET_PARAM: u64 = iow::<drm_msm_param>(B + DRM_MSM_SET_PARAM);
pub const DRM_IOCTL_MSM_GEM_NEW: u64 = iowr::<drm_msm_gem_new>(B + DRM_MSM_GEM_NEW);
pub const DRM_IOCTL_MSM_GEM_INFO: u64 = iowr::<drm_msm_gem_info>(B + DRM_MSM_GEM_INFO);
pub const DRM_IOCTL_MSM_GEM_CPU_PREP: u64 = iow::<drm_msm_gem_cpu_prep>(B + DRM_MSM_GEM_CPU_PREP);
pub const DRM_IOCTL_MSM_GEM_CPU_FINI: u64 = iow::<drm_msm_gem_cpu_fini>(B + DRM_MSM_GEM_CPU_FINI);
pub const DRM_IOCTL_MSM_GEM_SUBMIT: u64 = iowr::<drm_msm_gem_submit>(B + DRM_MSM_GEM_SUBMIT);
pub const DRM_IOCTL_MSM_WAIT_FENCE: u64 = iow::<drm_msm_wait_fence>(B + DRM_MSM_WAIT_FENCE);
pub const DRM_IOCTL_MSM_GEM_MADVISE: u64 = iowr::<drm_msm_gem_madvise>(B + DRM_MSM_GEM_MADVISE);
pub const DRM_IOCTL_MSM_SUBMITQUEUE_NEW: u64 =
    iowr::<drm_msm_submitqueue>(B + DRM_MSM_SUBMITQUEUE_NEW);
pub const DRM_IOCTL_MSM_SUBMITQUEUE_CLOSE: u64 = iow::<u32>(B + DRM_MSM_SUBMITQUEUE_CLOSE);
pub const DRM_IOCTL_MSM_SUBMITQUEUE_QUERY: u64 =
    iow::<drm_msm_submitqueue_query>(B + DRM_MSM_SUBMITQUEUE_QUERY);
pub const DRM_IOCTL_MSM_VM_BIND: u64 = iowr::<drm_msm_vm_bind>(B + DRM_MSM_VM_BIND);

// ---- Layout proofs (values from ../shared/spec/uapi.md) ------------------------------------------

macro_rules! assert_layout {
    ($t:ty, $size:expr $(, $field:ident @ $off:expr)* $(,)?) => {
        const _: () = assert!(size_of::<$t>() == $size);
        $(const _: () = assert!(offset_of!($t, $field) == $off);)*
    };
}

assert_layout!(drm_msm_timespec, 16, tv_sec @ 0, tv_nsec @ 8);
assert_layout!(drm_msm_param, 24, pipe @ 0, param @ 4, value @ 8, len @ 16, pad @ 20);
assert_layout!(drm_msm_gem_new, 16, size @ 0, flags @ 8, handle @ 12);
assert_layout!(drm_msm_gem_info, 24, handle @ 0, info @ 4, value @ 8, len @ 16, pad @ 20);
assert_layout!(drm_msm_gem_cpu_prep, 24, handle @ 0, op @ 4, timeout @ 8);
assert_layout!(drm_msm_gem_cpu_fini, 4, handle @ 0);
assert_layout!(drm_msm_syncobj, 16, handle @ 0, flags @ 4, point @ 8);
assert_layout!(drm_msm_gem_submit_reloc, 24,
    submit_offset @ 0, or @ 4, shift @ 8, reloc_idx @ 12, reloc_offset @ 16);
assert_layout!(drm_msm_gem_submit_cmd, 32,
    r#type @ 0, submit_idx @ 4, submit_offset @ 8, size @ 12, pad @ 16, nr_relocs @ 20, relocs @ 24);
assert_layout!(drm_msm_gem_submit_bo, 16, flags @ 0, handle @ 4, presumed @ 8);
assert_layout!(drm_msm_gem_submit, 72,
    flags @ 0, fence @ 4, nr_bos @ 8, nr_cmds @ 12, bos @ 16, cmds @ 24, fence_fd @ 32,
    queueid @ 36, in_syncobjs @ 40, out_syncobjs @ 48, nr_in_syncobjs @ 56, nr_out_syncobjs @ 60,
    syncobj_stride @ 64, pad @ 68);
assert_layout!(drm_msm_wait_fence, 32, fence @ 0, flags @ 4, timeout @ 8, queueid @ 24);
assert_layout!(drm_msm_gem_madvise, 12, handle @ 0, madv @ 4, retained @ 8);
assert_layout!(drm_msm_submitqueue, 12, flags @ 0, prio @ 4, id @ 8);
assert_layout!(drm_msm_submitqueue_query, 24, data @ 0, id @ 8, param @ 12, len @ 16, pad @ 20);
assert_layout!(drm_msm_vm_bind_op, 40,
    op @ 0, handle @ 4, obj_offset @ 8, iova @ 16, range @ 24, flags @ 32, pad @ 36);
assert_layout!(drm_msm_vm_bind, 88,
    flags @ 0, nr_ops @ 4, fence_fd @ 8, queue_id @ 12, in_syncobjs @ 16, out_syncobjs @ 24,
    nr_in_syncobjs @ 32, nr_out_syncobjs @ 36, syncobj_stride @ 40, op_stride @ 44, u @ 48);
const _: () = assert!(size_of::<drm_msm_vm_bind_ops>() == 40);

const _: () = assert!(DRM_IOCTL_MSM_GET_PARAM == 0xc018_6440);
const _: () = assert!(DRM_IOCTL_MSM_SET_PARAM == 0x4018_6441);
const _: () = assert!(DRM_IOCTL_MSM_GEM_NEW == 0xc010_6442);
const _: () = assert!(DRM_IOCTL_MSM_GEM_INFO == 0xc018_6443);
const _: () = assert!(DRM_IOCTL_MSM_GEM_CPU_PREP == 0x4018_6444);
const _: () = assert!(DRM_IOCTL_MSM_GEM_CPU_FINI == 0x4004_6445);
const _: () = assert!(DRM_IOCTL_MSM_GEM_SUBMIT == 0xc048_6446);
const _: () = assert!(DRM_IOCTL_MSM_WAIT_FENCE == 0x4020_6447);
const _: () = assert!(DRM_IOCTL_MSM_GEM_MADVISE == 0xc00c_6448);
const _: () = assert!(DRM_IOCTL_MSM_SUBMITQUEUE_NEW == 0xc00c_644a);
const _: () = assert!(DRM_IOCTL_MSM_SUBMITQUEUE_CLOSE == 0x4004_644b);
const _: () = assert!(DRM_IOCTL_MSM_SUBMITQUEUE_QUERY == 0x4018_644c);
const _: () = assert!(DRM_IOCTL_MSM_VM_BIND == 0xc058_644d);
