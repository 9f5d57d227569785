//! CP15 operations for ARM926EJ-S (ARMv5) and ARM1136/ARM1176 (ARMv6).
//!
//! This module is the only place in vacmm with inline assembly. Registers that
//! `aarch32-cpu` models correctly for ARMv5/ARMv6 (MIDR, CTR, DFSR, IFSR, FAR)
//! are read through it; cache maintenance it does not offer in the pre-ARMv7
//! form is written here, each with its encoding.
//!
//! ARMv5 and ARMv6 have no `dsb`/`dmb`/`isb` instructions: the barriers are
//! CP15 c7 operations, as below.

use crate::cache::{CacheType, CtrError, MainId};

/// Reads the Main ID Register (MRC p15, 0, Rd, c0, c0, 0).
#[inline]
pub fn main_id() -> MainId {
    MainId::from_raw(aarch32_cpu::register::Midr::read().raw_value())
}

/// Reads the raw Cache Type Register (MRC p15, 0, Rd, c0, c0, 1).
///
/// A CPU without a CTR returns the MIDR here; [`cache_type`] detects that.
#[inline]
pub fn cache_type_raw() -> u32 {
    aarch32_cpu::register::Ctr::read().0
}

/// Reads and decodes the Cache Type Register.
pub fn cache_type() -> Result<CacheType, CtrError> {
    CacheType::decode(cache_type_raw(), main_id())
}

/// Reads the Data Fault Status Register (MRC p15, 0, Rd, c5, c0, 0).
#[inline]
pub fn data_fault_status() -> u32 {
    aarch32_cpu::register::Dfsr::read().raw_value()
}

/// Reads the Instruction Fault Status Register (MRC p15, 0, Rd, c5, c0, 1).
#[inline]
pub fn instruction_fault_status() -> u32 {
    aarch32_cpu::register::Ifsr::read().raw_value()
}

/// Reads the Fault Address Register (MRC p15, 0, Rd, c6, c0, 0; DFAR on ARMv6).
#[inline]
pub fn fault_address() -> usize {
    aarch32_cpu::register::Dfar::read().0 as usize
}

/// Cleans the D-cache line holding `mva` to memory (MCR p15, 0, Rd, c7, c10, 1).
///
/// Same encoding on ARM926EJ-S (TRM §2.3.8) and ARM11 (ARM1136 TRM §3.3.18).
/// Cleaning is always safe: it writes dirty data back and keeps the line.
#[inline]
pub fn clean_dcache_line(mva: usize) {
    // SAFETY: a clean by MVA only writes back data already owned by this
    // address; it cannot fault on ARM926/ARM11 and changes no program state.
    unsafe {
        core::arch::asm!("mcr p15, 0, {mva}, c7, c10, 1", mva = in(reg) mva, options(nostack, preserves_flags));
    }
}

/// Drains the write buffer (MCR p15, 0, Rd(SBZ), c7, c10, 4): on ARMv6 this is
/// the Data Synchronization Barrier.
#[inline]
pub fn drain_write_buffer() {
    // SAFETY: a barrier; the register operand must be zero and has no other effect.
    unsafe {
        core::arch::asm!("mcr p15, 0, {zero}, c7, c10, 4", zero = in(reg) 0u32, options(nostack, preserves_flags));
    }
}

/// Reads the System Control Register as a raw value (MRC p15, 0, Rd, c1, c0, 0).
#[inline]
pub fn system_control() -> u32 {
    let value: u32;
    // SAFETY: reading SCTLR has no side effects.
    unsafe {
        core::arch::asm!("mrc p15, 0, {v}, c1, c0, 0", v = out(reg) value, options(nomem, nostack, preserves_flags));
    }
    value
}

/// Writes the System Control Register (MCR p15, 0, Rd, c1, c0, 0).
///
/// Changing the M, C, I or V bits changes how every later access behaves;
/// the caller keeps what it relies on consistent (the alignment bit A is the
/// harmless case the smoke test uses).
#[inline]
pub fn set_system_control(value: u32) {
    // SAFETY: see above; the write itself cannot fault.
    unsafe {
        core::arch::asm!("mcr p15, 0, {v}, c1, c0, 0", v = in(reg) value, options(nostack, preserves_flags));
    }
}
