//! A GEM_SUBMIT builder for the model tests: owns its arrays, so the user pointers stay valid.

use msm_winsys::kernel::Kernel;
use msm_winsys::uapi::*;
use msm_winsys::Errno;

use super::raw;

/// A submit builder over owned arrays (so the pointers stay valid for the call).
#[derive(Default)]
pub struct Submit {
    pub arg: drm_msm_gem_submit,
    pub bos: Vec<drm_msm_gem_submit_bo>,
    pub cmds: Vec<drm_msm_gem_submit_cmd>,
    pub in_syncobjs: Vec<drm_msm_syncobj>,
    pub out_syncobjs: Vec<drm_msm_syncobj>,
}

impl Submit {
    pub fn new() -> Submit {
        Submit {
            arg: drm_msm_gem_submit {
                flags: MSM_PIPE_3D0,
                ..Default::default()
            },
            ..Default::default()
        }
    }
    pub fn bo(mut self, handle: u32, flags: u32) -> Submit {
        self.bos.push(drm_msm_gem_submit_bo {
            flags,
            handle,
            presumed: 0,
        });
        self
    }
    pub fn cmd(mut self, submit_idx: u32, submit_offset: u32, size: u32) -> Submit {
        self.cmds.push(drm_msm_gem_submit_cmd {
            r#type: MSM_SUBMIT_CMD_BUF,
            submit_idx,
            submit_offset,
            size,
            ..Default::default()
        });
        self
    }
    pub fn cmd_iova(mut self, iova: u64, size: u32) -> Submit {
        let mut c = drm_msm_gem_submit_cmd {
            r#type: MSM_SUBMIT_CMD_BUF,
            size,
            ..Default::default()
        };
        c.set_iova(iova);
        self.cmds.push(c);
        self
    }
    pub fn with(mut self, f: impl FnOnce(&mut drm_msm_gem_submit)) -> Submit {
        f(&mut self.arg);
        self
    }
    /// Issues the submit.
    pub fn run(&mut self, k: &dyn Kernel) -> Result<drm_msm_gem_submit, Errno> {
        let a = self.pack();
        raw(k, DRM_IOCTL_MSM_GEM_SUBMIT, a).map(|()| *a)
    }

    /// The argument with counts and pointers filled in, valid while `self` is.
    pub fn pack(&mut self) -> &mut drm_msm_gem_submit {
        let a = &mut self.arg;
        a.nr_bos = self.bos.len() as u32;
        a.bos = self.bos.as_ptr() as u64;
        a.nr_cmds = self.cmds.len() as u32;
        a.cmds = self.cmds.as_ptr() as u64;
        if !self.in_syncobjs.is_empty() {
            a.flags |= MSM_SUBMIT_SYNCOBJ_IN;
            a.nr_in_syncobjs = self.in_syncobjs.len() as u32;
            a.in_syncobjs = self.in_syncobjs.as_ptr() as u64;
        }
        if !self.out_syncobjs.is_empty() {
            a.flags |= MSM_SUBMIT_SYNCOBJ_OUT;
            a.nr_out_syncobjs = self.out_syncobjs.len() as u32;
            a.out_syncobjs = self.out_syncobjs.as_ptr() as u64;
        }
        if a.syncobj_stride == 0 && (a.nr_in_syncobjs | a.nr_out_syncobjs) != 0 {
            a.syncobj_stride = 16;
        }
        a
    }
}
