//! Choosing the backend at run time, for kernels built once for both
//! families (an `armv5te` image runs on ARM11 too).

use super::profile::{CoreProfile, Family};
use super::regs::TableWalk;
use super::{Arm926, Armv6};
use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::cache::{CacheInfo, CacheMaintenance, MaintenanceError, RangeOutcome};
use crate::mmu::TranslationRegisters;

/// The backend for whichever CPU is running.
#[derive(Debug)]
pub enum AnyCpu {
    /// ARMv5 ARM926EJ-S.
    Arm926(Arm926),
    /// ARMv6 ARM1136 / ARM1176 / ARM11 MPCore.
    Armv6(Armv6),
}

impl AnyCpu {
    /// Picks the backend from MIDR ([`CoreProfile::for_core`]): a core
    /// neither backend drives is `Err(UnsupportedCore)` naming it. `info` is
    /// usually [`super::cache_info`], possibly with an overridden geometry.
    pub fn new(info: CacheInfo) -> Result<Self, MaintenanceError> {
        let profile =
            CoreProfile::for_core(super::main_id()).map_err(MaintenanceError::UnsupportedCore)?;
        match profile.family {
            Family::Arm11 => Armv6::new(info).map(AnyCpu::Armv6),
            Family::Arm926 => Arm926::new(info).map(AnyCpu::Arm926),
        }
    }

    /// The backend with these table-walk attributes on ARMv6 (see
    /// [`Armv6::with_table_walk`]); the ARM926 has none and ignores them.
    pub fn with_table_walk(self, walk: TableWalk) -> Self {
        match self {
            AnyCpu::Armv6(cpu) => AnyCpu::Armv6(cpu.with_table_walk(walk)),
            arm926 => arm926,
        }
    }
}

/// Forwards one trait method to whichever backend is inside.
macro_rules! forward {
    ($self:ident, $cpu:ident => $call:expr) => {
        match $self {
            AnyCpu::Arm926($cpu) => $call,
            AnyCpu::Armv6($cpu) => $call,
        }
    };
}

impl CacheMaintenance for AnyCpu {
    fn info(&self) -> &CacheInfo {
        forward!(self, cpu => cpu.info())
    }
    fn clean_dcache_line(&mut self, va: VirtAddr) {
        forward!(self, cpu => cpu.clean_dcache_line(va))
    }
    fn clean_invalidate_dcache_line(&mut self, va: VirtAddr) {
        forward!(self, cpu => cpu.clean_invalidate_dcache_line(va))
    }
    unsafe fn invalidate_dcache_line(&mut self, va: VirtAddr) {
        // SAFETY: forwarded from this method's contract.
        forward!(self, cpu => unsafe { cpu.invalidate_dcache_line(va) })
    }
    fn clean_dcache_all(&mut self) {
        forward!(self, cpu => cpu.clean_dcache_all())
    }
    fn clean_invalidate_dcache_all(&mut self) {
        forward!(self, cpu => cpu.clean_invalidate_dcache_all())
    }
    fn invalidate_icache_line(&mut self, va: VirtAddr) {
        forward!(self, cpu => cpu.invalidate_icache_line(va))
    }
    fn invalidate_icache_all(&mut self) {
        forward!(self, cpu => cpu.invalidate_icache_all())
    }
    fn drain_write_buffer(&mut self) {
        forward!(self, cpu => cpu.drain_write_buffer())
    }
    fn invalidate_tlb_all(&mut self) {
        forward!(self, cpu => cpu.invalidate_tlb_all())
    }
    fn invalidate_tlb_page(&mut self, va: VirtAddr) {
        forward!(self, cpu => cpu.invalidate_tlb_page(va))
    }
    fn invalidate_tlb_asid(&mut self, asid: u8) -> Result<(), MaintenanceError> {
        forward!(self, cpu => cpu.invalidate_tlb_asid(asid))
    }
    fn invalidate_tlb_page_asid(&mut self, va: VirtAddr, asid: u8) -> Result<(), MaintenanceError> {
        forward!(self, cpu => cpu.invalidate_tlb_page_asid(va, asid))
    }
    fn synchronize_context(&mut self) {
        forward!(self, cpu => cpu.synchronize_context())
    }
    fn flush_branch_target_cache(&mut self) {
        forward!(self, cpu => CacheMaintenance::flush_branch_target_cache(cpu))
    }
    fn clean_dcache_range(&mut self, range: VirtRange) -> RangeOutcome {
        forward!(self, cpu => cpu.clean_dcache_range(range))
    }
    fn clean_invalidate_dcache_range(&mut self, range: VirtRange) -> RangeOutcome {
        forward!(self, cpu => cpu.clean_invalidate_dcache_range(range))
    }
    unsafe fn invalidate_dcache_range(&mut self, range: VirtRange) -> RangeOutcome {
        // SAFETY: forwarded from this method's contract.
        forward!(self, cpu => unsafe { cpu.invalidate_dcache_range(range) })
    }
    fn invalidate_icache_range(&mut self, range: VirtRange) -> RangeOutcome {
        forward!(self, cpu => cpu.invalidate_icache_range(range))
    }
}

impl TranslationRegisters for AnyCpu {
    unsafe fn set_user_table(&mut self, table: PhysAddr) {
        // SAFETY: forwarded from this method's contract.
        forward!(self, cpu => unsafe { cpu.set_user_table(table) })
    }
    unsafe fn set_context_key(&mut self, key: u8) {
        // SAFETY: forwarded from this method's contract.
        forward!(self, cpu => unsafe { cpu.set_context_key(key) })
    }
    fn table_walk(&self) -> TableWalk {
        forward!(self, cpu => cpu.table_walk())
    }
}
