//! The model behind vacmm's interfaces: cache maintenance
//! ([`CacheMaintenance`]), the translation registers the context switch
//! writes, the kernel's page accesses and the translation-table memory.

use super::{PAGE, Sim, Which};
use crate::addr::VirtAddr;
use crate::cache::{CacheInfo, CacheMaintenance, MaintenanceError};

impl CacheMaintenance for Sim {
    fn info(&self) -> &CacheInfo {
        &self.info
    }

    fn clean_dcache_line(&mut self, va: VirtAddr) {
        self.maintenance();
        self.counters.clean_line += 1;
        if let Some(i) = self.line_for_mva(Which::Data, va.as_u32()) {
            self.write_back(i);
        }
    }

    fn clean_invalidate_dcache_line(&mut self, va: VirtAddr) {
        self.maintenance();
        self.counters.clean_invalidate_line += 1;
        if let Some(i) = self.line_for_mva(Which::Data, va.as_u32()) {
            self.evict(Which::Data, i);
        }
    }

    unsafe fn invalidate_dcache_line(&mut self, va: VirtAddr) {
        self.maintenance();
        self.counters.invalidate_line += 1;
        if let Some(i) = self.line_for_mva(Which::Data, va.as_u32()) {
            self.discard(i);
        }
    }

    fn clean_dcache_all(&mut self) {
        self.counters.clean_all += 1;
        self.whole_dcache(false);
    }

    fn clean_invalidate_dcache_all(&mut self) {
        self.counters.clean_invalidate_all += 1;
        self.whole_dcache(true);
    }

    fn invalidate_icache_line(&mut self, va: VirtAddr) {
        self.maintenance();
        self.counters.icache_line += 1;
        if let Some(i) = self.line_for_mva(Which::Instruction, va.as_u32()) {
            self.drop_line(Which::Instruction, i);
        }
    }

    fn invalidate_icache_all(&mut self) {
        self.operation += 1;
        self.counters.icache_all += 1;
        self.counters.cycles += self.costs.whole_cache_per_line * self.icache.meta.len() as u64;
        for i in 0..self.icache.meta.len() {
            self.drop_line(Which::Instruction, i);
        }
        // c7,c5,0 flushes the branch target cache too (ARMv6; `btc.rs`).
        self.flush_btc();
    }

    fn flush_branch_target_cache(&mut self) {
        self.operation += 1;
        self.counters.cycles += self.costs.line_op;
        self.flush_btc();
    }

    fn synchronize_context(&mut self) {
        // As the backends: ARMv5 drains; ARMv6 also flushes the BTC (and
        // the prefetch buffer, which the model does not have).
        self.drain_write_buffer();
        if self.info.is_armv6() {
            self.flush_branch_target_cache();
        }
    }

    fn drain_write_buffer(&mut self) {
        self.drain_buffered_stores();
        self.counters.drains += 1;
        self.counters.cycles += self.costs.drain;
    }

    fn invalidate_tlb_all(&mut self) {
        self.translations.clear();
        self.tlb.invalidate_all();
        self.counters.tlb_ops += 1;
        self.counters.cycles += self.costs.tlb_op;
    }

    fn invalidate_tlb_page(&mut self, va: VirtAddr) {
        self.translations.clear();
        // c8,c7,1 with the MVA as given (ARMv5: every entry of the page;
        // ARMv6: the operand's ASID bits are 0, so the page's global
        // entries and those of ASID 0).
        self.tlb.invalidate_page(va.as_u32() / PAGE, 0);
        self.counters.tlb_ops += 1;
        self.counters.cycles += self.costs.tlb_op;
    }

    fn invalidate_tlb_asid(&mut self, asid: u8) -> Result<(), MaintenanceError> {
        self.armv6_tlb_op("TLB invalidate by ASID")?;
        self.translations.clear();
        self.tlb.invalidate_asid(asid);
        Ok(())
    }

    fn invalidate_tlb_page_asid(&mut self, va: VirtAddr, asid: u8) -> Result<(), MaintenanceError> {
        self.armv6_tlb_op("TLB invalidate by MVA and ASID")?;
        self.translations.clear();
        self.tlb.invalidate_page(va.as_u32() / PAGE, asid);
        Ok(())
    }
}

/// The translation registers as the model sees them: TTBR0 selects the
/// space whose attached table (see [`Sim::attach_table`]) is at that
/// address, so `ContextSwitcher` drives the model's context switches.
impl crate::mmu::TranslationRegisters for Sim {
    unsafe fn set_user_table(&mut self, table: crate::addr::PhysAddr) {
        // A table the model does not know (never attached) leaves the
        // current space as it is: the scenario's own accesses will show it.
        if let Some(space) = self.space_with_table(table) {
            let key = self.current_key;
            self.current = space;
            self.current_key = key;
            self.translations.clear();
        }
    }

    unsafe fn set_context_key(&mut self, key: u8) {
        self.current_key = u16::from(key);
        self.translations.clear();
    }
}

/// The kernel's page copies and fills, as word accesses through the
/// current translation (the kernel's linear map must be mapped).
impl crate::coherence::KernelAccess for Sim {
    /// Ignored by the oracle, which trusts nothing the engine under test
    /// declares: whoever drives the model declares dead contents from its
    /// own semantics ([`Sim::declare_dead`]), so an engine that wrongly
    /// calls live data dead is caught when it drops that data. Recorded
    /// for tests of the call itself ([`Sim::take_engine_dead`]): a kernel
    /// under a sanitiser forwards it, and a wrong one silences reports.
    fn contents_dead(&mut self, pa: crate::addr::PhysAddr) {
        self.engine_dead.push(pa.as_u32());
    }

    fn zero_page(&mut self, va: VirtAddr) -> Result<(), crate::coherence::AccessError> {
        let base = va.as_u32() & !(PAGE - 1);
        for offset in (0..PAGE).step_by(4) {
            self.store(base + offset, 4, 0)
                .map_err(|_| crate::coherence::AccessError {
                    va: VirtAddr(base + offset),
                })?;
        }
        Ok(())
    }

    fn copy_page(
        &mut self,
        dst: VirtAddr,
        src: VirtAddr,
    ) -> Result<(), crate::coherence::AccessError> {
        let (dst, src) = (dst.as_u32() & !(PAGE - 1), src.as_u32() & !(PAGE - 1));
        for offset in (0..PAGE).step_by(4) {
            let word = self
                .load(src + offset, 4)
                .map_err(|_| crate::coherence::AccessError {
                    va: VirtAddr(src + offset),
                })?;
            self.store(dst + offset, 4, word)
                .map_err(|_| crate::coherence::AccessError {
                    va: VirtAddr(dst + offset),
                })?;
        }
        Ok(())
    }
}

/// The model as the kernel's view of translation-table frames. Words are
/// read and written through the kernel's linear map, at VA = PA plus the
/// [kernel offset](Sim::set_kernel_offset) (map the table frames in
/// [`KERNEL`](super::KERNEL) there first), so descriptor
/// writes go through the modelled D-cache as they do on the CPU, and
/// [`Sim::table_walk`] reports a walk that would read a stale descriptor.
impl crate::mmu::TableMemory for Sim {
    type Cache = Sim;

    fn read_word(&mut self, pa: crate::addr::PhysAddr) -> Result<u32, crate::mmu::TableError> {
        self.load(self.linear_va(pa.0), 4)
            .map_err(|_| crate::mmu::TableError::Memory { pa })
    }

    fn write_word(
        &mut self,
        pa: crate::addr::PhysAddr,
        value: u32,
    ) -> Result<(), crate::mmu::TableError> {
        self.store(self.linear_va(pa.0), 4, value)
            .map_err(|_| crate::mmu::TableError::Memory { pa })
    }

    fn kernel_va(&self, pa: crate::addr::PhysAddr) -> VirtAddr {
        VirtAddr(self.linear_va(pa.0))
    }

    fn cache(&mut self) -> &mut Sim {
        self
    }
}
