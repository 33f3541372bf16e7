//! Chip profiles: what the model's GPU answers to GET_PARAM (spec/kernel.md "Chip profiles").
//!
//! Owns: constant tables only; no locks.

/// One Adreno part as the msm driver describes it to userspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipProfile {
    pub name: &'static str,
    /// `MSM_PARAM_GPU_ID` (the legacy "revn"; 0 on parts that only have a chip id).
    pub gpu_id: u32,
    /// core.major.minor.patch, the low 32 bits of `MSM_PARAM_CHIP_ID`.
    pub chip_id: u32,
    /// Speed bin, reported in the upper 32 bits of CHIP_ID only on parts without a revn.
    /// 0xffff means unfused, which is what the model reports.
    pub speedbin: u16,
    pub gmem_size_B: u64,
    pub gmem_base: u64,
    /// Number of ringbuffers; `MSM_PARAM_PRIORITIES` is this times 3.
    pub nr_rings: u32,
    pub highest_bank_bit: u64,
    pub ubwc_swizzle: u64,
    pub macrotile_mode: u64,
    pub uche_trap_base: u64,
    /// Partially resident regions: MAP_NULL and `MSM_PARAM_HAS_PRR`.
    pub has_prr: bool,
    pub raytracing: bool,
    /// `MSM_PARAM_AQE` (v7.1).
    pub aqe: bool,
    pub max_freq_Hz: u64,
    /// Old SQE firmware with 32-bit rollover: the kernel limits the VA to 4 GiB.
    pub va_4gib_quirk: bool,
    /// `MSM_BO_CACHED_COHERENT` is accepted only on I/O-coherent parts.
    pub cached_coherent: bool,
}

/// The low 4 GiB of every per-process VA is reserved.
pub const VA_START: u64 = 0x1_0000_0000;

impl ChipProfile {
    /// `MSM_PARAM_VA_SIZE` for this part.
    pub fn va_size_B(&self) -> u64 {
        if self.va_4gib_quirk {
            0x1_0000_0000
        } else {
            (1u64 << 48) - VA_START
        }
    }

    /// `MSM_PARAM_CHIP_ID` as the kernel builds it.
    pub fn chip_id_param(&self) -> u64 {
        let speedbin = if self.gpu_id == 0 {
            (self.speedbin as u64) << 32
        } else {
            0
        };
        self.chip_id as u64 | speedbin
    }

    /// `MSM_PARAM_PRIORITIES`.
    pub fn priorities(&self) -> u32 {
        self.nr_rings * 3
    }

    /// Looks a profile up by name (`a618`, `a660`, `a750`).
    pub fn by_name(name: &str) -> Option<&'static ChipProfile> {
        PROFILES.iter().find(|p| p.name == name)
    }
}

const UCHE_TRAP_BASE: u64 = 0x1_ffff_ffff_f000;

/// Every profile the model knows.
pub static PROFILES: &[ChipProfile] = &[
    ChipProfile {
        name: "a618",
        gpu_id: 618,
        chip_id: 0x0601_0800,
        speedbin: 0xffff,
        gmem_size_B: 0x80000,
        gmem_base: 0x100000,
        nr_rings: 1,
        highest_bank_bit: 14,
        ubwc_swizzle: 6,
        macrotile_mode: 0,
        uche_trap_base: UCHE_TRAP_BASE,
        has_prr: false,
        raytracing: false,
        aqe: false,
        max_freq_Hz: 800_000_000,
        va_4gib_quirk: true,
        cached_coherent: true,
    },
    ChipProfile {
        name: "a660",
        gpu_id: 660,
        chip_id: 0x0606_0001,
        speedbin: 0xffff,
        gmem_size_B: 0x180000,
        gmem_base: 0,
        nr_rings: 1,
        highest_bank_bit: 16,
        ubwc_swizzle: 6,
        macrotile_mode: 1,
        uche_trap_base: UCHE_TRAP_BASE,
        has_prr: true,
        raytracing: false,
        aqe: false,
        max_freq_Hz: 840_000_000,
        va_4gib_quirk: false,
        cached_coherent: true,
    },
    ChipProfile {
        name: "a750",
        gpu_id: 0,
        chip_id: 0x4305_1401,
        speedbin: 0xffff,
        gmem_size_B: 0x300000,
        gmem_base: 0,
        nr_rings: 4,
        highest_bank_bit: 16,
        ubwc_swizzle: 6,
        macrotile_mode: 1,
        uche_trap_base: UCHE_TRAP_BASE,
        has_prr: true,
        raytracing: true,
        aqe: true,
        // Not known from the sources read; a documented choice (docs/kernel-model.md).
        max_freq_Hz: 1_100_000_000,
        va_4gib_quirk: false,
        cached_coherent: true,
    },
];
