//! KMS mode objects of the model's one display pipeline and the ioctls that describe them
//! (drivers/gpu/drm/drm_mode_config.c, drm_connector.c, drm_crtc.c, drm_encoder.c,
//! drm_plane.c, drm_mode_object.c, drm_property.c, drm_ioctl.c `drm_getcap`/`drm_setclientcap`).
//!
//! Owns: the fixed objects (one CRTC, one DSI encoder, one connected DSI connector with one
//! 1920x1080@60 mode, a primary and an overlay plane, the standard properties), property blobs,
//! and the per-file client caps. Locks: the display state (`display.rs`), for blobs and the
//! values of properties; `SimFile::ctx` for client caps, never with the display state held.
//!
//! Every KMS ioctl first checks DRIVER_MODESET (`SimOptions::kms`; EOPNOTSUPP without). Mode
//! object ids share one space, as the kernel's `dev->mode_config.object_idr` does: properties
//! from 1, the planes, their IN_FORMATS blobs, the CRTC, encoder and connector below 0x40, then
//! framebuffers and blobs made at run time take the lowest free id from 0x40. The connector was
//! probed at boot, so its mode is there before any client asks.

use super::dispatch::typed;
use super::display::{Blob, State};
use super::{user, SimFile};
use crate::uapi::*;
use crate::Errno;

pub use super::display::CRTC_ID;
pub const PRIMARY_PLANE_ID: u32 = 0x20;
pub const OVERLAY_PLANE_ID: u32 = 0x21;
pub const ENCODER_ID: u32 = 0x32;
pub const CONNECTOR_ID: u32 = 0x33;
const PRIMARY_IN_FORMATS_BLOB: u32 = 0x2e;
const OVERLAY_IN_FORMATS_BLOB: u32 = 0x2f;
pub const PLANE_IDS: [u32; 2] = [PRIMARY_PLANE_ID, OVERLAY_PLANE_ID];

pub const DRM_MODE_OBJECT_CRTC: u32 = 0xcccc_cccc;
pub const DRM_MODE_OBJECT_CONNECTOR: u32 = 0xc0c0_c0c0;
pub const DRM_MODE_OBJECT_ENCODER: u32 = 0xe0e0_e0e0;
pub const DRM_MODE_OBJECT_PROPERTY: u32 = 0xb0b0_b0b0;
pub const DRM_MODE_OBJECT_FB: u32 = 0xfbfb_fbfb;
pub const DRM_MODE_OBJECT_BLOB: u32 = 0xbbbb_bbbb;
pub const DRM_MODE_OBJECT_PLANE: u32 = 0xeeee_eeee;
pub const DRM_MODE_OBJECT_ANY: u32 = 0;

pub const DRM_MODE_CONNECTOR_DSI: u32 = 16;
pub const DRM_MODE_ENCODER_DSI: u32 = 6;
const DRM_MODE_CONNECTED: u32 = 1;
const DRM_MODE_SUBPIXEL_UNKNOWN: u32 = 1;
/// The panel's size in millimetres (a 6.6" 16:9 phone panel).
const PANEL_MM: (u32, u32) = (146, 82);

pub const DRM_CLIENT_CAP_STEREO_3D: u64 = 1;
pub const DRM_CLIENT_CAP_UNIVERSAL_PLANES: u64 = 2;
pub const DRM_CLIENT_CAP_ATOMIC: u64 = 3;
pub const DRM_CLIENT_CAP_ASPECT_RATIO: u64 = 4;
pub const DRM_CLIENT_CAP_WRITEBACK_CONNECTORS: u64 = 5;
pub const DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT: u64 = 6;

pub const DRM_FORMAT_MOD_LINEAR: u64 = 0;
pub const DRM_FORMAT_MOD_QCOM_COMPRESSED: u64 = 0x0500_0000_0000_0001;

/// `mode_config.min/max_width/height` (a model choice).
pub const MAX_FB_DIMENSION: u32 = 16384;

/// The formats both planes take: a subset of DPU's `plane_formats`, in its order.
pub const PLANE_FORMATS: [u32; 5] = [
    u32::from_le_bytes(*b"AR24"),
    u32::from_le_bytes(*b"AB24"),
    u32::from_le_bytes(*b"XR24"),
    u32::from_le_bytes(*b"XB24"),
    u32::from_le_bytes(*b"RG16"),
];

/// `dpu_plane_format_mod_supported`: linear for every format, UBWC (QCOM_COMPRESSED) for the
/// 8888 formats only (BGR565 would be, RGB565 is not).
pub fn plane_takes(fourcc: u32, modifier: u64) -> bool {
    let Some(i) = PLANE_FORMATS.iter().position(|&f| f == fourcc) else {
        return false;
    };
    match modifier {
        DRM_FORMAT_MOD_LINEAR => true,
        DRM_FORMAT_MOD_QCOM_COMPRESSED => i < 4,
        _ => false,
    }
}

/// The panel's one mode: 1920x1080 at exactly 60 Hz (148.5 MHz, 2200 x 1125 total).
pub fn panel_mode() -> drm_mode_modeinfo {
    let mut name = [0 as std::ffi::c_char; 32];
    for (d, s) in name.iter_mut().zip(b"1920x1080") {
        *d = *s as std::ffi::c_char;
    }
    drm_mode_modeinfo {
        clock: 148_500,
        hdisplay: 1920,
        hsync_start: 2008,
        hsync_end: 2052,
        htotal: 2200,
        hskew: 0,
        vdisplay: 1080,
        vsync_start: 1084,
        vsync_end: 1089,
        vtotal: 1125,
        vscan: 0,
        vrefresh: 60,
        // DRM_MODE_FLAG_PHSYNC | DRM_MODE_FLAG_PVSYNC
        flags: 0x1 | 0x4,
        // DRM_MODE_TYPE_PREFERRED | DRM_MODE_TYPE_DRIVER
        type_: 0x8 | 0x40,
        name,
    }
}

/// Nanoseconds between vblanks of [`panel_mode`].
pub const FRAME_NS: u64 = 1_000_000_000 * 2200 * 1125 / 148_500_000;

// ---- Properties ---------------------------------------------------------------------------

pub const DRM_MODE_PROP_RANGE: u32 = 1 << 1;
pub const DRM_MODE_PROP_IMMUTABLE: u32 = 1 << 2;
pub const DRM_MODE_PROP_ENUM: u32 = 1 << 3;
pub const DRM_MODE_PROP_BLOB: u32 = 1 << 4;
pub const DRM_MODE_PROP_OBJECT: u32 = 1 << 6;
pub const DRM_MODE_PROP_SIGNED_RANGE: u32 = 2 << 6;
pub const DRM_MODE_PROP_ATOMIC: u32 = 0x8000_0000;
const TYPE_MASK: u32 = DRM_MODE_PROP_RANGE
    | DRM_MODE_PROP_ENUM
    | DRM_MODE_PROP_BLOB
    | (1 << 5)
    | DRM_MODE_PROP_OBJECT
    | DRM_MODE_PROP_SIGNED_RANGE;

/// Property ids.
pub mod prop {
    pub const EDID: u32 = 1;
    pub const DPMS: u32 = 2;
    pub const LINK_STATUS: u32 = 3;
    pub const NON_DESKTOP: u32 = 4;
    pub const CRTC_ID: u32 = 5;
    pub const TYPE: u32 = 6;
    pub const FB_ID: u32 = 7;
    pub const IN_FENCE_FD: u32 = 8;
    pub const CRTC_X: u32 = 9;
    pub const CRTC_Y: u32 = 10;
    pub const CRTC_W: u32 = 11;
    pub const CRTC_H: u32 = 12;
    pub const SRC_X: u32 = 13;
    pub const SRC_Y: u32 = 14;
    pub const SRC_W: u32 = 15;
    pub const SRC_H: u32 = 16;
    pub const IN_FORMATS: u32 = 17;
    pub const ACTIVE: u32 = 18;
    pub const MODE_ID: u32 = 19;
    pub const OUT_FENCE_PTR: u32 = 20;
    pub const VRR_ENABLED: u32 = 21;
}

/// A property as `struct drm_property` holds it.
pub struct PropDef {
    pub id: u32,
    pub name: &'static str,
    pub flags: u32,
    pub values: &'static [u64],
    pub enums: &'static [(u64, &'static str)],
}

impl PropDef {
    fn kind(&self) -> u32 {
        self.flags & TYPE_MASK
    }

    /// `drm_property_change_valid_get` for every kind but blobs and objects, which need the
    /// state to look the value up.
    pub fn value_ok(&self, v: u64) -> bool {
        if self.flags & DRM_MODE_PROP_IMMUTABLE != 0 {
            return false;
        }
        match self.kind() {
            DRM_MODE_PROP_RANGE => v >= self.values[0] && v <= self.values[1],
            DRM_MODE_PROP_SIGNED_RANGE => {
                (v as i64) >= (self.values[0] as i64) && (v as i64) <= (self.values[1] as i64)
            }
            DRM_MODE_PROP_BLOB | DRM_MODE_PROP_OBJECT => true,
            _ => self.values.contains(&v),
        }
    }
}

const ATOMIC_OBJ: u32 = DRM_MODE_PROP_OBJECT | DRM_MODE_PROP_ATOMIC;
const ATOMIC_RANGE: u32 = DRM_MODE_PROP_RANGE | DRM_MODE_PROP_ATOMIC;
const ATOMIC_SRANGE: u32 = DRM_MODE_PROP_SIGNED_RANGE | DRM_MODE_PROP_ATOMIC;

pub static PROPS: [PropDef; 21] = [
    PropDef {
        id: prop::EDID,
        name: "EDID",
        flags: DRM_MODE_PROP_BLOB | DRM_MODE_PROP_IMMUTABLE,
        values: &[],
        enums: &[],
    },
    PropDef {
        id: prop::DPMS,
        name: "DPMS",
        flags: DRM_MODE_PROP_ENUM,
        values: &[0, 1, 2, 3],
        enums: &[(0, "On"), (1, "Standby"), (2, "Suspend"), (3, "Off")],
    },
    PropDef {
        id: prop::LINK_STATUS,
        name: "link-status",
        flags: DRM_MODE_PROP_ENUM,
        values: &[0, 1],
        enums: &[(0, "Good"), (1, "Bad")],
    },
    PropDef {
        id: prop::NON_DESKTOP,
        name: "non-desktop",
        flags: DRM_MODE_PROP_RANGE | DRM_MODE_PROP_IMMUTABLE,
        values: &[0, 1],
        enums: &[],
    },
    PropDef {
        id: prop::CRTC_ID,
        name: "CRTC_ID",
        flags: ATOMIC_OBJ,
        values: &[DRM_MODE_OBJECT_CRTC as u64],
        enums: &[],
    },
    PropDef {
        id: prop::TYPE,
        name: "type",
        flags: DRM_MODE_PROP_ENUM | DRM_MODE_PROP_IMMUTABLE,
        values: &[0, 1, 2],
        enums: &[(0, "Overlay"), (1, "Primary"), (2, "Cursor")],
    },
    PropDef {
        id: prop::FB_ID,
        name: "FB_ID",
        flags: ATOMIC_OBJ,
        values: &[DRM_MODE_OBJECT_FB as u64],
        enums: &[],
    },
    PropDef {
        id: prop::IN_FENCE_FD,
        name: "IN_FENCE_FD",
        flags: ATOMIC_SRANGE,
        values: &[-1i64 as u64, i32::MAX as u64],
        enums: &[],
    },
    PropDef {
        id: prop::CRTC_X,
        name: "CRTC_X",
        flags: ATOMIC_SRANGE,
        values: &[i32::MIN as i64 as u64, i32::MAX as u64],
        enums: &[],
    },
    PropDef {
        id: prop::CRTC_Y,
        name: "CRTC_Y",
        flags: ATOMIC_SRANGE,
        values: &[i32::MIN as i64 as u64, i32::MAX as u64],
        enums: &[],
    },
    PropDef {
        id: prop::CRTC_W,
        name: "CRTC_W",
        flags: ATOMIC_RANGE,
        values: &[0, i32::MAX as u64],
        enums: &[],
    },
    PropDef {
        id: prop::CRTC_H,
        name: "CRTC_H",
        flags: ATOMIC_RANGE,
        values: &[0, i32::MAX as u64],
        enums: &[],
    },
    PropDef {
        id: prop::SRC_X,
        name: "SRC_X",
        flags: ATOMIC_RANGE,
        values: &[0, u32::MAX as u64],
        enums: &[],
    },
    PropDef {
        id: prop::SRC_Y,
        name: "SRC_Y",
        flags: ATOMIC_RANGE,
        values: &[0, u32::MAX as u64],
        enums: &[],
    },
    PropDef {
        id: prop::SRC_W,
        name: "SRC_W",
        flags: ATOMIC_RANGE,
        values: &[0, u32::MAX as u64],
        enums: &[],
    },
    PropDef {
        id: prop::SRC_H,
        name: "SRC_H",
        flags: ATOMIC_RANGE,
        values: &[0, u32::MAX as u64],
        enums: &[],
    },
    PropDef {
        id: prop::IN_FORMATS,
        name: "IN_FORMATS",
        flags: DRM_MODE_PROP_BLOB | DRM_MODE_PROP_IMMUTABLE,
        values: &[],
        enums: &[],
    },
    PropDef {
        id: prop::ACTIVE,
        name: "ACTIVE",
        flags: ATOMIC_RANGE,
        values: &[0, 1],
        enums: &[],
    },
    PropDef {
        id: prop::MODE_ID,
        name: "MODE_ID",
        flags: DRM_MODE_PROP_BLOB | DRM_MODE_PROP_ATOMIC,
        values: &[],
        enums: &[],
    },
    PropDef {
        id: prop::OUT_FENCE_PTR,
        name: "OUT_FENCE_PTR",
        flags: ATOMIC_RANGE,
        values: &[0, u64::MAX],
        enums: &[],
    },
    PropDef {
        id: prop::VRR_ENABLED,
        name: "VRR_ENABLED",
        flags: ATOMIC_RANGE,
        values: &[0, 1],
        enums: &[],
    },
];

pub fn prop_def(id: u32) -> Option<&'static PropDef> {
    PROPS.iter().find(|p| p.id == id)
}

/// A mode object the model knows, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Crtc,
    Encoder,
    Connector,
    /// Index into [`PLANE_IDS`].
    Plane(usize),
    Property,
    Fb,
    Blob,
}

impl Object {
    pub fn type_code(self) -> u32 {
        match self {
            Object::Crtc => DRM_MODE_OBJECT_CRTC,
            Object::Encoder => DRM_MODE_OBJECT_ENCODER,
            Object::Connector => DRM_MODE_OBJECT_CONNECTOR,
            Object::Plane(_) => DRM_MODE_OBJECT_PLANE,
            Object::Property => DRM_MODE_OBJECT_PROPERTY,
            Object::Fb => DRM_MODE_OBJECT_FB,
            Object::Blob => DRM_MODE_OBJECT_BLOB,
        }
    }

    /// The properties attached to the object, in attach order (`obj->properties`); None for
    /// objects without a property list (encoders, framebuffers, blobs, properties).
    pub fn props(self) -> Option<&'static [u32]> {
        use prop::*;
        match self {
            Object::Connector => Some(&[EDID, DPMS, LINK_STATUS, NON_DESKTOP, CRTC_ID]),
            Object::Crtc => Some(&[ACTIVE, MODE_ID, OUT_FENCE_PTR, VRR_ENABLED]),
            Object::Plane(_) => Some(&[
                TYPE,
                FB_ID,
                IN_FENCE_FD,
                CRTC_ID,
                CRTC_X,
                CRTC_Y,
                CRTC_W,
                CRTC_H,
                SRC_X,
                SRC_Y,
                SRC_W,
                SRC_H,
                IN_FORMATS,
            ]),
            _ => None,
        }
    }
}

/// `drm_mode_object_find(dev, file, id, type)`: None for an unknown id or one of another type.
pub(super) fn find(d: &State, id: u32, ty: u32) -> Option<Object> {
    let o = match id {
        CRTC_ID => Object::Crtc,
        ENCODER_ID => Object::Encoder,
        CONNECTOR_ID => Object::Connector,
        PRIMARY_PLANE_ID => Object::Plane(0),
        OVERLAY_PLANE_ID => Object::Plane(1),
        _ if prop_def(id).is_some() => Object::Property,
        _ if d.fbs.contains_key(&id) => Object::Fb,
        _ if d.blobs.contains_key(&id) => Object::Blob,
        _ => return None,
    };
    (ty == DRM_MODE_OBJECT_ANY || ty == o.type_code()).then_some(o)
}

/// The kernel's immutable blobs (IN_FORMATS of each plane), made with the device.
pub(super) fn boot_blobs() -> Vec<(u32, Blob)> {
    [PRIMARY_IN_FORMATS_BLOB, OVERLAY_IN_FORMATS_BLOB]
        .into_iter()
        .map(|id| {
            (
                id,
                Blob {
                    owner: None,
                    permanent: true,
                    data: in_formats_blob(),
                },
            )
        })
        .collect()
}

/// `create_in_format_blob`: a `drm_format_modifier_blob` header, the formats, then one
/// `drm_format_modifier` per modifier (8-byte aligned) with a bit per format it applies to.
pub fn in_formats_blob() -> Vec<u8> {
    let modifiers = [DRM_FORMAT_MOD_QCOM_COMPRESSED, DRM_FORMAT_MOD_LINEAR];
    let header_B = std::mem::size_of::<drm_format_modifier_blob>() as u32;
    let formats_B = 4 * PLANE_FORMATS.len() as u32;
    let modifiers_offset = (header_B + formats_B).next_multiple_of(8);
    let header = drm_format_modifier_blob {
        version: 1,
        flags: 0,
        count_formats: PLANE_FORMATS.len() as u32,
        formats_offset: header_B,
        count_modifiers: modifiers.len() as u32,
        modifiers_offset,
    };
    let mut out = user::bytes_of(&header).to_vec();
    for f in PLANE_FORMATS {
        out.extend_from_slice(&f.to_le_bytes());
    }
    out.resize(modifiers_offset as usize, 0);
    for m in modifiers {
        let formats = PLANE_FORMATS
            .iter()
            .enumerate()
            .filter(|(_, &f)| plane_takes(f, m))
            .fold(0u64, |acc, (i, _)| acc | 1 << i);
        let entry = drm_format_modifier {
            formats,
            offset: 0,
            pad: 0,
            modifier: m,
        };
        out.extend_from_slice(user::bytes_of(&entry));
    }
    out
}

/// Fails with EOPNOTSUPP on a device without DRIVER_MODESET.
pub(super) fn need_kms(file: &SimFile) -> Result<(), Errno> {
    if file.dev.options.kms {
        Ok(())
    } else {
        Err(Errno::EOPNOTSUPP)
    }
}

/// Per-file client caps (`file_priv->universal_planes`, `->atomic`, ...).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct ClientCaps {
    pub stereo: bool,
    pub universal_planes: bool,
    pub atomic: bool,
    pub aspect_ratio: bool,
    pub writeback: bool,
}

/// SET_CLIENT_CAP (`drm_setclientcap`).
pub(super) fn set_client_cap(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |c: &mut drm_set_client_cap| {
        need_kms(file)?;
        let mut ctx = file.ctx();
        let caps = &mut ctx.caps;
        match c.capability {
            DRM_CLIENT_CAP_STEREO_3D if c.value > 1 => Err(Errno::EINVAL),
            DRM_CLIENT_CAP_STEREO_3D => {
                caps.stereo = c.value != 0;
                Ok(())
            }
            DRM_CLIENT_CAP_UNIVERSAL_PLANES if c.value > 1 => Err(Errno::EINVAL),
            DRM_CLIENT_CAP_UNIVERSAL_PLANES => {
                caps.universal_planes = c.value != 0;
                Ok(())
            }
            // msm is DRIVER_ATOMIC. (The kernel also refuses a process named "X..." here.)
            DRM_CLIENT_CAP_ATOMIC if c.value > 2 => Err(Errno::EINVAL),
            DRM_CLIENT_CAP_ATOMIC => {
                caps.atomic = c.value != 0;
                caps.universal_planes = c.value != 0;
                caps.aspect_ratio = c.value != 0;
                Ok(())
            }
            DRM_CLIENT_CAP_ASPECT_RATIO if c.value > 1 => Err(Errno::EINVAL),
            DRM_CLIENT_CAP_ASPECT_RATIO => {
                caps.aspect_ratio = c.value != 0;
                Ok(())
            }
            DRM_CLIENT_CAP_WRITEBACK_CONNECTORS if !caps.atomic || c.value > 1 => {
                Err(Errno::EINVAL)
            }
            DRM_CLIENT_CAP_WRITEBACK_CONNECTORS => {
                caps.writeback = c.value != 0;
                Ok(())
            }
            // msm is not DRIVER_CURSOR_HOTSPOT.
            DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT => Err(Errno::EOPNOTSUPP),
            _ => Err(Errno::EINVAL),
        }
    })
}

/// Writes `ids` to the user array at `ptr` when `count` has room for each, as the kernel's
/// `if (count < user_count && put_user(...))` loops do; returns how many there are.
fn put_ids(ptr: u64, user_count: u32, ids: &[u32]) -> Result<u32, Errno> {
    for (i, id) in ids.iter().enumerate() {
        if (i as u32) < user_count {
            user::write(ptr + 4 * i as u64, id)?;
        }
    }
    Ok(ids.len() as u32)
}

/// GETRESOURCES (`drm_mode_getresources`): the caller's own framebuffers, then the CRTC,
/// encoder and connector, each list copied as far as the caller's count allows.
pub(super) fn get_resources(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |r: &mut drm_mode_card_res| {
        need_kms(file)?;
        let (fbs, _) = super::display::held_by(&file.dev, file.id);
        r.count_fbs = put_ids(r.fb_id_ptr, r.count_fbs, &fbs)?;
        r.min_width = 0;
        r.min_height = 0;
        r.max_width = MAX_FB_DIMENSION;
        r.max_height = MAX_FB_DIMENSION;
        r.count_crtcs = put_ids(r.crtc_id_ptr, r.count_crtcs, &[CRTC_ID])?;
        r.count_encoders = put_ids(r.encoder_id_ptr, r.count_encoders, &[ENCODER_ID])?;
        r.count_connectors = put_ids(r.connector_id_ptr, r.count_connectors, &[CONNECTOR_ID])?;
        Ok(())
    })
}

/// `drm_mode_object_get_properties`: atomic properties only for atomic clients; ids and values
/// copied while the caller's count has room.
fn get_properties(
    d: &State,
    obj: Object,
    atomic: bool,
    props_ptr: u64,
    values_ptr: u64,
    count: &mut u32,
) -> Result<(), Errno> {
    let mut n = 0u32;
    for &id in obj.props().unwrap_or(&[]) {
        let def = prop_def(id).expect("attached properties exist");
        if def.flags & DRM_MODE_PROP_ATOMIC != 0 && !atomic {
            continue;
        }
        if *count > n {
            let v = d.prop_value(obj, id);
            user::write(props_ptr + 4 * n as u64, &id)?;
            user::write(values_ptr + 8 * n as u64, &v)?;
        }
        n += 1;
    }
    *count = n;
    Ok(())
}

/// GETCONNECTOR (`drm_mode_getconnector`): encoders and modes are copied only when the caller's
/// count holds them all; properties as far as it goes.
pub(super) fn get_connector(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |c: &mut drm_mode_get_connector| {
        need_kms(file)?;
        let caps = file.ctx().caps;
        let d = file.dev.display();
        if find(&d, c.connector_id, DRM_MODE_OBJECT_CONNECTOR).is_none() {
            return Err(Errno::ENOENT);
        }
        if c.count_encoders >= 1 {
            user::write(c.encoders_ptr, &ENCODER_ID)?;
        }
        c.count_encoders = 1;
        c.connector_type = DRM_MODE_CONNECTOR_DSI;
        c.connector_type_id = 1;
        c.mm_width = PANEL_MM.0;
        c.mm_height = PANEL_MM.1;
        c.subpixel = DRM_MODE_SUBPIXEL_UNKNOWN;
        c.connection = DRM_MODE_CONNECTED;
        if c.count_modes >= 1 {
            user::write(c.modes_ptr, &panel_mode())?;
        }
        c.count_modes = 1;
        // drm_connector_get_encoder: the atomic state's best encoder, set while routed.
        c.encoder_id = if d.kms.connector_crtc { ENCODER_ID } else { 0 };
        get_properties(
            &d,
            Object::Connector,
            caps.atomic,
            c.props_ptr,
            c.prop_values_ptr,
            &mut c.count_props,
        )
    })
}

/// GETENCODER (`drm_mode_getencoder`).
pub(super) fn get_encoder(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |e: &mut drm_mode_get_encoder| {
        need_kms(file)?;
        let d = file.dev.display();
        if find(&d, e.encoder_id, DRM_MODE_OBJECT_ENCODER).is_none() {
            return Err(Errno::ENOENT);
        }
        e.crtc_id = if d.kms.connector_crtc { CRTC_ID } else { 0 };
        e.encoder_type = DRM_MODE_ENCODER_DSI;
        e.possible_crtcs = 1;
        e.possible_clones = 0;
        Ok(())
    })
}

/// The CRTC's legacy gamma table size: dpu registers none (no `drm_mode_crtc_set_gamma_size`),
/// so GETCRTC reports 0 and legacy gamma is unsupported.
const GAMMA_SIZE: u32 = 0;

/// The gamma ioctls' first checks: a KMS device, then the CRTC (`drm_crtc_find`: ENOENT).
fn lut_crtc(file: &SimFile, l: &drm_mode_crtc_lut) -> Result<(), Errno> {
    need_kms(file)?;
    match find(&file.dev.display(), l.crtc_id, DRM_MODE_OBJECT_CRTC) {
        Some(_) => Ok(()),
        None => Err(Errno::ENOENT),
    }
}

/// GETGAMMA (`drm_mode_gamma_get_ioctl`): the size must be the CRTC's; the table (empty here)
/// is copied out.
pub(super) fn get_gamma(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |l: &mut drm_mode_crtc_lut| {
        lut_crtc(file, l)?;
        if l.gamma_size != GAMMA_SIZE {
            return Err(Errno::EINVAL);
        }
        Ok(())
    })
}

/// SETGAMMA (`drm_mode_gamma_set_ioctl`): a CRTC without legacy gamma support
/// (`drm_crtc_supports_legacy_gamma`: no gamma size) is ENOSYS, before the size is checked.
pub(super) fn set_gamma(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |l: &mut drm_mode_crtc_lut| {
        lut_crtc(file, l)?;
        if GAMMA_SIZE == 0 {
            return Err(Errno::ENOSYS);
        }
        Err(Errno::EINVAL)
    })
}

/// GETCRTC (`drm_mode_getcrtc`).
pub(super) fn get_crtc(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |c: &mut drm_mode_crtc| {
        need_kms(file)?;
        let d = file.dev.display();
        if find(&d, c.crtc_id, DRM_MODE_OBJECT_CRTC).is_none() {
            return Err(Errno::ENOENT);
        }
        c.gamma_size = GAMMA_SIZE;
        let primary = &d.kms.planes[0];
        c.fb_id = if primary.crtc {
            primary.fb.unwrap_or(0)
        } else {
            0
        };
        c.x = primary.src_x >> 16;
        c.y = primary.src_y >> 16;
        match d.kms.crtc.mode {
            Some(m) => {
                c.mode = m;
                c.mode_valid = 1;
            }
            None => {
                c.mode = drm_mode_modeinfo::default();
                c.mode_valid = 0;
            }
        }
        Ok(())
    })
}

/// GETPLANERESOURCES (`drm_mode_getplane_res`): only overlays unless the client set
/// UNIVERSAL_PLANES.
pub(super) fn get_plane_resources(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |r: &mut drm_mode_get_plane_res| {
        need_kms(file)?;
        let universal = file.ctx().caps.universal_planes;
        let ids: Vec<u32> = if universal {
            PLANE_IDS.to_vec()
        } else {
            vec![OVERLAY_PLANE_ID]
        };
        r.count_planes = put_ids(r.plane_id_ptr, r.count_planes, &ids)?;
        Ok(())
    })
}

/// GETPLANE (`drm_mode_getplane`): formats are copied only when the caller's count holds all.
pub(super) fn get_plane(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |p: &mut drm_mode_get_plane| {
        need_kms(file)?;
        let d = file.dev.display();
        let Some(Object::Plane(i)) = find(&d, p.plane_id, DRM_MODE_OBJECT_PLANE) else {
            return Err(Errno::ENOENT);
        };
        let st = &d.kms.planes[i];
        p.crtc_id = if st.crtc { CRTC_ID } else { 0 };
        p.fb_id = st.fb.unwrap_or(0);
        p.possible_crtcs = 1;
        p.gamma_size = 0;
        if p.count_format_types as usize >= PLANE_FORMATS.len() {
            let bytes: Vec<u8> = PLANE_FORMATS.iter().flat_map(|f| f.to_le_bytes()).collect();
            user::write_bytes(p.format_type_ptr, &bytes)?;
        }
        p.count_format_types = PLANE_FORMATS.len() as u32;
        Ok(())
    })
}

/// OBJ_GETPROPERTIES (`drm_mode_obj_get_properties_ioctl`).
pub(super) fn obj_get_properties(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_obj_get_properties| {
        need_kms(file)?;
        let atomic = file.ctx().caps.atomic;
        let d = file.dev.display();
        let obj = find(&d, a.obj_id, a.obj_type).ok_or(Errno::ENOENT)?;
        if obj.props().is_none() {
            return Err(Errno::EINVAL);
        }
        get_properties(
            &d,
            obj,
            atomic,
            a.props_ptr,
            a.prop_values_ptr,
            &mut a.count_props,
        )
    })
}

/// GETPROPERTY (`drm_mode_getproperty_ioctl`): values and enums copied while the caller's
/// counts have room; blob properties report no enums.
pub(super) fn get_property(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_get_property| {
        need_kms(file)?;
        let def = {
            let d = file.dev.display();
            find(&d, a.prop_id, DRM_MODE_OBJECT_PROPERTY).ok_or(Errno::ENOENT)?;
            prop_def(a.prop_id).expect("found above")
        };
        a.name = [0; 32];
        for (d, s) in a.name.iter_mut().zip(def.name.bytes()) {
            *d = s as std::ffi::c_char;
        }
        a.flags = def.flags;
        for (i, v) in def.values.iter().enumerate() {
            if (i as u32) < a.count_values {
                user::write(a.values_ptr + 8 * i as u64, v)?;
            }
        }
        a.count_values = def.values.len() as u32;
        if matches!(def.kind(), DRM_MODE_PROP_ENUM) {
            for (i, (v, name)) in def.enums.iter().enumerate() {
                if (i as u32) < a.count_enum_blobs {
                    let mut e = drm_mode_property_enum {
                        value: *v,
                        ..Default::default()
                    };
                    for (d, s) in e.name.iter_mut().zip(name.bytes()) {
                        *d = s as std::ffi::c_char;
                    }
                    user::write(a.enum_blob_ptr + 40 * i as u64, &e)?;
                }
            }
            a.count_enum_blobs = def.enums.len() as u32;
        }
        if def.kind() == DRM_MODE_PROP_BLOB {
            a.count_enum_blobs = 0;
        }
        Ok(())
    })
}

/// GETPROPBLOB (`drm_mode_getblob_ioctl`): the data is copied only when `length` is exactly
/// the blob's; `length` is set to it either way.
pub(super) fn get_prop_blob(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_get_blob| {
        need_kms(file)?;
        let data = {
            let d = file.dev.display();
            d.blobs.get(&a.blob_id).ok_or(Errno::ENOENT)?.data.clone()
        };
        if a.length as usize == data.len() {
            user::write_bytes(a.data, &data)?;
        }
        a.length = data.len() as u32;
        Ok(())
    })
}

/// Bytes a blob may hold in the model. The kernel's limit is `INT_MAX - sizeof(blob)` (EINVAL)
/// and then memory (ENOMEM); the model says ENOMEM past 64 MiB rather than allocate it.
const BLOB_MAX_B: u32 = 64 << 20;

/// CREATEPROPBLOB (`drm_mode_createblob_ioctl`): a blob the file owns until it destroys it or
/// closes.
pub(super) fn create_prop_blob(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_create_blob| {
        need_kms(file)?;
        if a.length == 0 || a.length as usize > i32::MAX as usize - 64 {
            return Err(Errno::EINVAL);
        }
        if a.length > BLOB_MAX_B {
            return Err(Errno::ENOMEM);
        }
        let data = user::read_bytes(a.data, a.length as usize)?;
        let mut d = file.dev.display();
        let id = d.alloc_id();
        d.blobs.insert(
            id,
            Blob {
                owner: Some(file.id),
                permanent: false,
                data,
            },
        );
        a.blob_id = id;
        Ok(())
    })
}

/// DESTROYPROPBLOB (`drm_mode_destroyblob_ioctl`): unknown -> EINVAL; not this file's -> EPERM.
/// A blob the current state still uses (a MODE_ID) lives on until the state lets it go.
pub(super) fn destroy_prop_blob(file: &SimFile, kdata: &mut [u8]) -> Result<(), Errno> {
    typed(kdata, |a: &mut drm_mode_destroy_blob| {
        need_kms(file)?;
        let mut d = file.dev.display();
        let blob = d.blobs.get_mut(&a.blob_id).ok_or(Errno::EINVAL)?;
        if blob.owner != Some(file.id) {
            return Err(Errno::EPERM);
        }
        blob.owner = None;
        d.sweep_blobs();
        Ok(())
    })
}

/// DRM_CAP_* answered by a KMS device (`drm_getcap`, after the four generic ones).
pub(super) fn kms_cap(cap: u64) -> Result<u64, Errno> {
    Ok(match cap {
        0x1 => 1,        // DUMB_BUFFER
        0x2 => 1,        // VBLANK_HIGH_CRTC
        0x3 => 0,        // DUMB_PREFERRED_DEPTH (msm leaves it 0)
        0x4 => 0,        // DUMB_PREFER_SHADOW
        0x7 => 0,        // ASYNC_PAGE_FLIP
        0x8 | 0x9 => 64, // CURSOR_WIDTH/HEIGHT (the default: not set by msm)
        0x10 => 1,       // ADDFB2_MODIFIERS
        0x11 => 0,       // PAGE_FLIP_TARGET (no page_flip_target)
        0x12 => 1,       // CRTC_IN_VBLANK_EVENT
        0x15 => 0,       // ATOMIC_ASYNC_PAGE_FLIP
        _ => return Err(Errno::EINVAL),
    })
}
