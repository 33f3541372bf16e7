//! VM_BIND operations as the winsys queues them, before they become the kernel boundary's
//! [`VmBindOp`]s (which `kernel::ioctl` packs into `drm_msm_vm_bind_op`s).
//!
//! Owns: plain values; no locks.

use crate::kernel::ioctl::{VmBindKind, VmBindOp};

/// What a range of GPU addresses points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A GEM object, from byte `offset_B` of it (at the range's first address).
    Bo { handle: u32, offset_B: u64 },
    /// The shared zero page (MAP_NULL, partially resident resources).
    Null,
}

impl Target {
    /// The same target seen `delta_B` bytes further into the range.
    pub fn advanced(self, delta_B: u64) -> Target {
        match self {
            Target::Bo { handle, offset_B } => Target::Bo {
                handle,
                offset_B: offset_B + delta_B,
            },
            Target::Null => Target::Null,
        }
    }
}

/// One bind operation over `[iova, iova + range_B)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BindOp {
    pub iova: u64,
    pub range_B: u64,
    /// `None` unmaps.
    pub target: Option<Target>,
    /// `MSM_VM_BIND_OP_DUMP`: include the mapping in devcoredumps.
    pub dump: bool,
}

impl BindOp {
    pub fn map(iova: u64, range_B: u64, handle: u32, offset_B: u64) -> BindOp {
        BindOp {
            iova,
            range_B,
            target: Some(Target::Bo { handle, offset_B }),
            dump: false,
        }
    }

    pub fn map_null(iova: u64, range_B: u64) -> BindOp {
        BindOp {
            iova,
            range_B,
            target: Some(Target::Null),
            dump: false,
        }
    }

    pub fn unmap(iova: u64, range_B: u64) -> BindOp {
        BindOp {
            iova,
            range_B,
            target: None,
            dump: false,
        }
    }

    pub fn end(&self) -> u64 {
        self.iova + self.range_B
    }

    pub fn is_unmap(&self) -> bool {
        self.target.is_none()
    }

    /// The GEM handle a MAP of an object names (none for UNMAP and MAP_NULL).
    pub fn handle(&self) -> Option<u32> {
        match self.target {
            Some(Target::Bo { handle, .. }) => Some(handle),
            _ => None,
        }
    }

    /// Whether `next` continues this op seamlessly: same kind, same object, contiguous address and
    /// object offset, same flags. Two such ops are one op.
    pub fn continues_into(&self, next: &BindOp) -> bool {
        self.end() == next.iova
            && self.dump == next.dump
            && match (self.target, next.target) {
                (None, None) => true,
                (Some(a), Some(b)) => a.advanced(self.range_B) == b,
                _ => false,
            }
    }
}

/// The op as the kernel boundary takes it for VM_BIND.
impl From<&BindOp> for VmBindOp {
    fn from(op: &BindOp) -> VmBindOp {
        VmBindOp {
            kind: match op.target {
                None => VmBindKind::Unmap,
                Some(Target::Null) => VmBindKind::MapNull,
                Some(Target::Bo { handle, offset_B }) => VmBindKind::Map {
                    handle,
                    obj_offset_B: offset_B,
                },
            },
            iova: op.iova,
            range_B: op.range_B,
            dump: op.dump,
        }
    }
}
