//! Linux `_IOC` request-code arithmetic (asm-generic/ioctl.h: nr 8 bits, type 8, size 14, dir 2).

pub const IOC_WRITE: u32 = 1;
pub const IOC_READ: u32 = 2;

const NRSHIFT: u32 = 0;
const TYPESHIFT: u32 = 8;
const SIZESHIFT: u32 = 16;
const DIRSHIFT: u32 = 30;

/// DRM's ioctl type letter.
pub(crate) const DRM_IOCTL_BASE: u32 = b'd' as u32;
/// First driver-private ioctl number.
pub const DRM_COMMAND_BASE: u32 = 0x40;

pub(crate) const fn ioc(dir: u32, nr: u32, size: usize) -> u64 {
    ioc_of_type(dir, DRM_IOCTL_BASE, nr, size)
}

/// `_IOC(dir, type, nr, size)` for any type letter (sync files '>', dma-bufs 'b').
pub(crate) const fn ioc_of_type(dir: u32, ty: u32, nr: u32, size: usize) -> u64 {
    assert!(size < (1 << 14), "ioctl argument too large for _IOC");
    ((dir << DIRSHIFT) | (ty << TYPESHIFT) | (nr << NRSHIFT) | ((size as u32) << SIZESHIFT)) as u64
}

/// `DRM_IOWR(nr, T)`: the kernel copies the argument in and back out.
pub(crate) const fn iowr<T>(nr: u32) -> u64 {
    ioc(IOC_READ | IOC_WRITE, nr, core::mem::size_of::<T>())
}

/// `DRM_IOW(nr, T)`: the kernel only reads the argument; nothing is copied back.
pub(crate) const fn iow<T>(nr: u32) -> u64 {
    ioc(IOC_WRITE, nr, core::mem::size_of::<T>())
}

/// `DRM_IOR(nr, T)`: the kernel only writes the argument back.
pub(crate) const fn ior<T>(nr: u32) -> u64 {
    ioc(IOC_READ, nr, core::mem::size_of::<T>())
}

/// `DRM_IO(nr)`: no argument.
pub(crate) const fn io(nr: u32) -> u64 {
    ioc(0, nr, 0)
}

/// Direction bits of a request code (`IOC_READ`, `IOC_WRITE`, both or neither).
pub const fn ioc_dir(request: u64) -> u32 {
    ((request >> DIRSHIFT) & 0x3) as u32
}

/// Argument size in bytes encoded in a request code.
pub const fn ioc_size(request: u64) -> usize {
    ((request >> SIZESHIFT) & 0x3fff) as usize
}

/// Command number (`DRM_COMMAND_BASE + DRM_MSM_*` for msm ioctls).
pub const fn ioc_nr(request: u64) -> u32 {
    ((request >> NRSHIFT) & 0xff) as u32
}

/// Type letter (`'d'` for DRM).
pub const fn ioc_type(request: u64) -> u32 {
    ((request >> TYPESHIFT) & 0xff) as u32
}
