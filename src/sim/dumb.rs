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

/// CREATE_DUMB (`drm_mode_create_dumb` -> `msm_gem_dumb_create`): zero width, height or bpp and
/// 32-bit overflows of the size are EINVAL; the pitch is the width aligned to 32 pixels (Adreno's
/// pitch alignment) times the bytes per pixel, the size a page multiple.
pub(super) fn create_dumb(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_create_dumb| {
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
        let size = a.height * stride;
        if (size as u64).next_multiple_of(PAGE_SIZE) > u32::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        // The outputs are zeroed first: userspace may pass garbage in them.
        a.handle = 0;
        a.pitch = 0;
        a.size = 0;
        // msm_gem_dumb_create: the pitch and size arithmetic is 32-bit.
        let pitch = cpp.wrapping_mul(a.width.next_multiple_of(32));
        let size_B = (pitch as u64 * a.height as u64).next_multiple_of(PAGE_SIZE);
        if size_B == 0 {
            return Err(Errno::EINVAL);
        }
        let obj = GemObject::create(
            file.dev.uid,
            file.dev.next_object_id(),
            size_B,
            MSM_BO_SCANOUT | MSM_BO_WC,
            Resv::new(),
        )?;
        file.dev.track(&obj);
        let mut ctx = file.ctx();
        a.handle = SimFile::new_handle(&mut ctx, obj);
        a.pitch = pitch;
        a.size = size_B;
        Ok(())
    })
}

/// MAP_DUMB (`drm_gem_dumb_map_offset`): unknown handle -> ENOENT; an imported object -> EINVAL;
/// otherwise the object's fake mmap offset.
pub(super) fn map_dumb(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_map_dumb| {
        need_kms(file)?;
        let obj = SimFile::lookup(&file.ctx(), a.handle).ok_or(Errno::ENOENT)?;
        if obj.imported {
            return Err(Errno::EINVAL);
        }
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
