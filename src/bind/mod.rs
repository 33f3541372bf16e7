//! VM_BIND batching: the winsys side of binding, independent of any one kernel call.
//!
//! Owns: the bind op type ([`BindOp`]), the mirror of what each address points at
//! ([`VaMirror`]), the planner that turns pending ops into the fewest sorted, disjoint ops
//! ([`plan`]) and the splitter that keeps each job's page-table preallocation within a budget
//! ([`split`], computed with the kernel's own rule in [`prealloc`]). Takes no locks: the bind
//! queue that owns a mirror serialises access to it.

mod cache;
mod gpu_vm;
mod op;
mod plan;
pub mod prealloc;
mod va;
mod vm;

pub use cache::VmCacheStats;
pub use gpu_vm::{GpuBuffer, GpuVm, Placement, PENDING_OPS_BUDGET};
pub use op::{BindOp, Target};
pub use plan::{plan, split, KERNEL_THROTTLE_PAGES};
pub use va::{diff, touched_ranges, VaMirror};
pub use vm::{BindError, BindStats, BindVm, LossReport, Released};
