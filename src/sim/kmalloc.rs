//! The kernel's allocation limit where a count the caller chooses sizes one kmalloc: past
//! `KMALLOC_MAX_SIZE` the allocation is NULL and the ioctl ENOMEM, before it reads the array
//! from user memory. Owns no state and takes no lock.

use crate::Errno;

/// `KMALLOC_MAX_SIZE` on arm64 with 4 KiB pages (MAX_PAGE_ORDER 10): the largest kmalloc.
const KMALLOC_MAX_B: u64 = 4 << 20;

/// `kcalloc(n, size_B, GFP_KERNEL | __GFP_NOWARN)` / `kmalloc_array`: NULL (ENOMEM) past the
/// largest kmalloc.
pub(super) fn kcalloc(n: u32, size_B: u64) -> Result<(), Errno> {
    kzalloc(u64::from(n) * size_B)
}

/// `kzalloc(size_B, GFP_KERNEL | __GFP_NOWARN)`: NULL (ENOMEM) past the largest kmalloc.
pub(super) fn kzalloc(size_B: u64) -> Result<(), Errno> {
    if size_B > KMALLOC_MAX_B {
        Err(Errno::ENOMEM)
    } else {
        Ok(())
    }
}
