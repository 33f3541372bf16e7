//! Dumb buffers: CREATE_DUMB, MAP_DUMB, DESTROY_DUMB (drivers/gpu/drm/drm_dumb_buffers.c,
//! drm_gem.c `drm_gem_dumb_map_offset`, msm_gem.c `msm_gem_dumb_create`).
//!
//! Owns: nothing; a dumb buffer is an ordinary GEM object (SCANOUT | WC) behind an ordinary
//! handle, mapped through the same fake-offset space as GEM_INFO(GET_OFFSET), so GEM_CLOSE,
//! PRIME and the leak report treat it like any other. Locks: `SimFile::ctx`, then the object's.

use super::dispatch::typed;
use super::gem::{GemObject, PAGE_SIZE};
use super::kms::need_kms;
use super::resv::Resv;
use super::SimFile;
use crate::uapi::*;
use crate::Errno;

/// CREATE_DUMB (`drm_mode_create_dumb_ioctl` -> `msm_gem_dumb_create`): zero width, height or
/// bpp and 32-bit overflows of `width * cpp * height` are EINVAL; the pitch is the width aligned
/// to 32 pixels (Adreno's pitch alignment) times the bytes per pixel, the size that times the
/// height rounded up to a page, both in 32-bit arithmetic as msm does it. On failure the outputs
/// are zeroed.
pub(super) fn create_dumb(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_create_dumb| {
        let r = create(file, a);
        if r.is_err() {
            a.handle = 0;
            a.pitch = 0;
            a.size = 0;
        }
        r
    })
}

fn create(file: &SimFile, a: &mut drm_mode_create_dumb) -> Result<(), Errno> {
    need_kms(file)?;
    if a.width == 0 || a.height == 0 || a.bpp == 0 {
        return Err(Errno::EINVAL);
    }
    if a.bpp > u32::MAX - 8 {
        return Err(Errno::EINVAL);
    }
    let cpp = a.bpp.div_ceil(8);
    if cpp > u32::MAX / a.width {
        return Err(Errno::EINVAL);
    }
    let stride = cpp * a.width;
    if a.height > u32::MAX / stride {
        return Err(Errno::EINVAL);
    }
    if (a.height * stride)
        .checked_next_multiple_of(PAGE_SIZE as u32)
        .is_none()
    {
        return Err(Errno::EINVAL);
    }
    // align_pitch and PAGE_ALIGN(pitch * height): u32 arithmetic that may wrap.
    let pitch = cpp.wrapping_mul(a.width.wrapping_add(31) & !31);
    let size_B = (pitch
        .wrapping_mul(a.height)
        .wrapping_add(PAGE_SIZE as u32 - 1)
        & !(PAGE_SIZE as u32 - 1)) as u64;
    a.pitch = pitch;
    a.size = size_B;
    // msm_gem_new: an empty object is EINVAL.
    if size_B == 0 {
        return Err(Errno::EINVAL);
    }
    let obj = GemObject::create(
        file.dev.uid,
        file.dev.next_object_id(),
        size_B,
        MSM_BO_SCANOUT | MSM_BO_WC,
        Resv::new(),
    );
    file.dev.track(&obj);
    let mut ctx = file.ctx();
    a.handle = SimFile::new_handle(&mut ctx, obj);
    Ok(())
}

/// MAP_DUMB (`msm_gem_dumb_map_offset`): unknown handle -> ENOENT (the offset is zeroed);
/// otherwise the object's fake mmap offset, imported objects included.
pub(super) fn map_dumb(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_map_dumb| {
        need_kms(file)?;
        let Some(obj) = SimFile::lookup(&file.ctx(), a.handle) else {
            a.offset = 0;
            return Err(Errno::ENOENT);
        };
        a.offset = file.dev.mmap_offset(&obj);
        Ok(())
    })
}

/// DESTROY_DUMB (`drm_mode_destroy_dumb` -> `drm_gem_handle_delete`): GEM_CLOSE by another name;
/// an unknown handle is EINVAL.
pub(super) fn destroy_dumb(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_destroy_dumb| {
        need_kms(file)?;
        let close = drm_gem_close {
            handle: a.handle,
            pad: 0,
        };
        super::gem::gem_close(file, &mut super::user::bytes_of(&close).to_vec())
    })
}
