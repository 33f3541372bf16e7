//! Sync-file and dma-buf ioctls (uapi/linux/sync_file.h, uapi/linux/dma-buf.h): the ones Mesa's
//! EGL and WSI make on the fds the model hands out.

use super::ioc::{ioc_of_type, IOC_READ, IOC_WRITE};

const SYNC: u32 = b'>' as u32;
const DMA_BUF: u32 = b'b' as u32;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct sync_merge_data {
    pub name: [u8; 32],
    pub fd2: i32,
    pub fence: i32,
    pub flags: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct sync_fence_info {
    pub obj_name: [u8; 32],
    pub driver_name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub timestamp_ns: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct sync_file_info {
    pub name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub num_fences: u32,
    pub pad: u32,
    pub sync_fence_info: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct sync_set_deadline {
    pub deadline_ns: u64,
    pub pad: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct dma_buf_sync {
    pub flags: u64,
}

/// `struct dma_buf_export_sync_file` and `struct dma_buf_import_sync_file` (the same layout).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct dma_buf_sync_file {
    pub flags: u32,
    pub fd: i32,
}

pub const SYNC_IOC_MERGE: u32 =
    ioc_of_type(IOC_READ | IOC_WRITE, SYNC, 3, size_of::<sync_merge_data>()) as u32;
pub const SYNC_IOC_FILE_INFO: u32 =
    ioc_of_type(IOC_READ | IOC_WRITE, SYNC, 4, size_of::<sync_file_info>()) as u32;
pub const SYNC_IOC_SET_DEADLINE: u32 =
    ioc_of_type(IOC_WRITE, SYNC, 5, size_of::<sync_set_deadline>()) as u32;

pub const DMA_BUF_SYNC_READ: u64 = 1;
pub const DMA_BUF_SYNC_WRITE: u64 = 1 << 1;
pub const DMA_BUF_SYNC_RW: u64 = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE;
pub const DMA_BUF_SYNC_END: u64 = 1 << 2;
pub const DMA_BUF_SYNC_VALID_FLAGS_MASK: u64 = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END;

pub const DMA_BUF_IOCTL_SYNC: u32 =
    ioc_of_type(IOC_WRITE, DMA_BUF, 0, size_of::<dma_buf_sync>()) as u32;
pub const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: u32 = ioc_of_type(
    IOC_READ | IOC_WRITE,
    DMA_BUF,
    2,
    size_of::<dma_buf_sync_file>(),
) as u32;
pub const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: u32 =
    ioc_of_type(IOC_WRITE, DMA_BUF, 3, size_of::<dma_buf_sync_file>()) as u32;

use core::mem::size_of;

// The request codes as the kernel headers spell them out.
const _: () = assert!(SYNC_IOC_MERGE == 0xc030_3e03);
const _: () = assert!(SYNC_IOC_FILE_INFO == 0xc038_3e04);
const _: () = assert!(SYNC_IOC_SET_DEADLINE == 0x4010_3e05);
const _: () = assert!(DMA_BUF_IOCTL_SYNC == 0x4008_6200);
const _: () = assert!(DMA_BUF_IOCTL_EXPORT_SYNC_FILE == 0xc008_6202);
const _: () = assert!(DMA_BUF_IOCTL_IMPORT_SYNC_FILE == 0x4008_6203);
const _: () = assert!(size_of::<sync_fence_info>() == 80);
