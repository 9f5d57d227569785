//! [`CacheMaintenance`] for the ARM926EJ-S: VIVT, write-back, read-allocate.

use super::cp15;
use super::profile::{CoreProfile, Family};
use super::regs::{self, FcsePid, Ttbr};
use crate::addr::{PhysAddr, VirtAddr};
use crate::cache::{CacheInfo, CacheMaintenance, MaintenanceError};
use crate::mmu::TranslationRegisters;

/// The ARM926EJ-S maintenance backend. Whole-D-cache operations use the
/// test-and-clean loops (the CPU has no single whole-cache clean); there are
/// no block (range) operations and no ASIDs.
#[derive(Debug)]
pub struct Arm926 {
    info: CacheInfo,
}

impl Arm926 {
    /// A backend for the running CPU: `Err(UnsupportedCore)` for an ARMv4
    /// or ARMv5 core other than the ARM926EJ-S (an ARM920T, XScale or
    /// Feroceon has no test-and-clean loops, or other ones), `Err(WrongCpu)`
    /// on an ARMv6 core. `info` is usually [`super::cache_info`], possibly
    /// with an overridden geometry.
    pub fn new(info: CacheInfo) -> Result<Self, MaintenanceError> {
        let midr = super::main_id();
        let profile = CoreProfile::for_core(midr).map_err(MaintenanceError::UnsupportedCore)?;
        if profile.family != Family::Arm926 || info.is_armv6() {
            return Err(MaintenanceError::WrongCpu {
                backend: "ARM926",
                midr,
            });
        }
        Ok(Arm926 { info })
    }

    /// Cleans one D-cache line by set and way (c7,c10,2).
    pub fn clean_dcache_set_way(&mut self, set: usize, way: usize) -> Result<(), MaintenanceError> {
        let operand = set_way(&self.info, set, way)?;
        cp15::clean_dcache_set_way(operand);
        Ok(())
    }

    /// Cleans and invalidates one D-cache line by set and way (c7,c14,2).
    pub fn clean_invalidate_dcache_set_way(
        &mut self,
        set: usize,
        way: usize,
    ) -> Result<(), MaintenanceError> {
        let operand = set_way(&self.info, set, way)?;
        cp15::clean_invalidate_dcache_set_way(operand);
        Ok(())
    }

    /// Waits for an interrupt (c7,c0,4).
    pub fn wait_for_interrupt(&mut self) {
        cp15::wait_for_interrupt();
    }
}

/// The set/way operand for `info`'s D-cache, or the typed error.
pub(super) fn set_way(info: &CacheInfo, set: usize, way: usize) -> Result<u32, MaintenanceError> {
    info.dcache
        .set_way_operand(set, way)
        .ok_or(MaintenanceError::SetWayOutOfRange {
            set,
            way,
            sets: info.dcache.sets(),
            ways: info.dcache.ways,
        })
}

impl CacheMaintenance for Arm926 {
    common_cp15_ops!();
    fn clean_dcache_all(&mut self) {
        // SAFETY: `new` checked that this is not an ARMv6 core.
        unsafe { cp15::arm926_test_clean_dcache() }
    }
    fn clean_invalidate_dcache_all(&mut self) {
        // SAFETY: `new` checked that this is not an ARMv6 core.
        unsafe { cp15::arm926_test_clean_invalidate_dcache() }
    }
    fn invalidate_icache_all(&mut self) {
        cp15::invalidate_icache_all(0);
    }
    fn invalidate_icache_line(&mut self, va: VirtAddr) {
        cp15::invalidate_icache_line(va.as_u32());
    }
}

impl TranslationRegisters for Arm926 {
    unsafe fn set_user_table(&mut self, table: PhysAddr) {
        // SAFETY: the caller's contract (TranslationRegisters).
        unsafe { regs::set_ttbr0(Ttbr(table.as_u32())) }
    }
    unsafe fn set_context_key(&mut self, key: u8) {
        // PIDs are 7 bits; the switcher only hands out 0..=127.
        let pid = FcsePid::new(key & 0x7f).unwrap_or(FcsePid::NONE);
        // SAFETY: the caller's contract (TranslationRegisters).
        unsafe { regs::set_fcse_pid(pid) }
    }
}
