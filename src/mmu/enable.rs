//! MMU bring-up on ARM926 and ARM11.
//!
//! ```text
//!  clean+invalidate D, invalidate I, drain, invalidate TLB
//!  DACR: domain 0 client (permissions checked), others no access
//!  ARMv5: FCSE PID 0, TTBR0 = kernel table
//!  ARMv6: TTBCR.N, TTBR0 = TTBR1 = kernel table (with the backend's
//!         table-walk attributes), CONTEXTIDR = 0; on the ARM1136 r0 the
//!         erratum 364296 bits (ACTLR bit 31, SCTLR.FI)
//!  synchronise (ARMv6: DSB, BTC flush, ISB)
//!  SCTLR |= M C W I (+ ARMv5 S for kernel-read-only pages; ARMv6 XP, Z)
//!  synchronise
//! ```
//!
//! The code that enables the MMU keeps running at the next instruction's
//! *virtual* address, so the kernel table must map it at its physical
//! address (an identity mapping of the running image).

use core::fmt;

use super::{Arch, TranslationRegisters};
use crate::addr::PhysAddr;
use crate::arch::profile::CoreProfile;
use crate::arch::regs::{self, Actlr, ContextId, Dacr, FcsePid, Sctlr, Ttbcr, Ttbr};
use crate::cache::CacheMaintenance;

/// How to bring the MMU up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmuConfig {
    /// The kernel's L1 table (16 KiB aligned), mapping the running image at
    /// its physical address.
    pub kernel_table: PhysAddr,
    /// ARMv6 TTBCR.N: with N > 0 addresses at or above 2^(32 − N) are
    /// translated through TTBR1 (the kernel table) and the rest through
    /// TTBR0 (the current process; the kernel table until the first switch).
    /// Must be 0 on ARMv5.
    pub ttbr1_split: u8,
}

/// Why the MMU was not enabled (nothing was changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MmuError {
    /// The MMU is already on.
    AlreadyEnabled,
    /// The kernel table is not 16 KiB aligned.
    MisalignedTable {
        /// Its address.
        table: PhysAddr,
    },
    /// TTBCR.N must be 0..=7, and 0 on ARMv5 (no TTBR1).
    BadSplit {
        /// The value given.
        n: u8,
        /// The architecture.
        arch: Arch,
    },
}

impl fmt::Display for MmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MmuError::AlreadyEnabled => f.write_str("the MMU is already enabled"),
            MmuError::MisalignedTable { table } => {
                write!(f, "the kernel's L1 table at {table} is not 16 KiB aligned")
            }
            MmuError::BadSplit { n, arch } => {
                write!(
                    f,
                    "the translation table split TTBCR.N = {n} is not possible on {arch}: N must \
                     be 0 to 7 on ARMv6 and 0 on ARMv5, which has no TTBR1"
                )
            }
        }
    }
}

impl core::error::Error for MmuError {}

/// Turns the MMU, the caches and the write buffer on. Returns the SCTLR
/// value written.
///
/// # Safety
/// The kernel table must map the running code, stack, data, devices in use
/// and table memory (the running image at its physical address), and stay
/// valid while in use. `cpu` must be the running CPU's backend.
pub unsafe fn enable_mmu<C: CacheMaintenance + TranslationRegisters>(
    cpu: &mut C,
    config: MmuConfig,
) -> Result<Sctlr, MmuError> {
    let arch = Arch::of(cpu.info());
    if Sctlr::read().contains(Sctlr::M) {
        return Err(MmuError::AlreadyEnabled);
    }
    if !config.kernel_table.is_aligned(16 * 1024) {
        return Err(MmuError::MisalignedTable {
            table: config.kernel_table,
        });
    }
    if config.ttbr1_split > 7 || (arch == Arch::Armv5 && config.ttbr1_split != 0) {
        return Err(MmuError::BadSplit {
            n: config.ttbr1_split,
            arch,
        });
    }
    // Nothing cached from before may be mistaken for a translated access.
    cpu.clean_invalidate_dcache_all();
    cpu.invalidate_icache_all();
    cpu.drain_write_buffer();
    cpu.invalidate_tlb_all();

    let mut dacr = Dacr::new_with_raw_value(0);
    dacr.set_d(0, regs::DomainAccess::Client);
    Dacr::write(dacr);

    let table = Ttbr(config.kernel_table.as_u32() | cpu.table_walk().bits());
    // The backend was built for this core, so it has a profile.
    let bring_up = CoreProfile::for_core(cpu.info().midr)
        .map(|p| p.bring_up)
        .unwrap_or_default();
    let enable = match arch {
        Arch::Armv5 => {
            // SAFETY: MMU off: FCSE and TTBR0 take effect when it comes on.
            unsafe {
                regs::set_fcse_pid(FcsePid::NONE);
                regs::set_ttbr0(table);
            }
            // S = 1, R = 0: AP = 00 means kernel read-only (see mmu::attrs).
            Sctlr::M | Sctlr::C | Sctlr::W | Sctlr::I | Sctlr::S
        }
        Arch::Armv6 => {
            let v6 = regs::Armv6Registers::checked_by_backend();
            // SAFETY: MMU off: these take effect when it comes on.
            unsafe {
                v6.set_ttbcr(Ttbcr::with_split(config.ttbr1_split));
                regs::set_ttbr0(table);
                v6.set_ttbr1(table);
                v6.set_context_id(ContextId::new(0, 0));
            }
            let fi = if bring_up.erratum_364296 {
                // Erratum 364296 (ARM1136 r0: D-cache corruption with
                // hit-under-miss): ACTLR bit 31 with SCTLR.FI turns
                // hit-under-miss off without the full low-interrupt-latency
                // mode (Linux `__v6_setup`, seL4 `errata_arm1136`).
                // SAFETY: the MMU and caches are off; bit 31 only changes
                // the memory system's miss handling.
                unsafe { v6.set_actlr(v6.actlr() | Actlr::PFI) };
                Sctlr::FI
            } else {
                Sctlr::empty()
            };
            Sctlr::M | Sctlr::C | Sctlr::W | Sctlr::I | Sctlr::XP | Sctlr::Z | fi
        }
    };
    cpu.synchronize_context();
    // SAFETY: the caller's contract: the running image is identity-mapped.
    let written = unsafe {
        Sctlr::modify(|s| {
            let s = s | enable;
            if arch == Arch::Armv5 { s - Sctlr::R } else { s }
        })
    };
    cpu.synchronize_context();
    Ok(written)
}
