//! [`CacheMaintenance`] for the ARM1136, ARM1176 and ARM11 MPCore: VIPT,
//! whole-cache operations, block (MCRR range) operations where the core
//! has them, ASID-tagged TLBs and CP15 barriers. Which sequence each
//! operation runs is the [`CoreProfile`]'s choice (errata, ACTLR).

use super::arm926::set_way;
use super::cp15;
use super::profile::{CoreProfile, DcacheRange, Family, IcacheAll, IcacheRange, WholeDcache};
use super::regs::{self, ContextId, TableWalk, Ttbr};
use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::cache::maintenance::{self, plan_dcache, plan_icache, run_plan};
use crate::cache::{CacheInfo, CacheMaintenance, Lines, MaintenanceError, RangeOutcome, RangePlan};
use crate::mmu::TranslationRegisters;

/// The ARMv6 maintenance backend.
#[derive(Debug)]
pub struct Armv6 {
    info: CacheInfo,
    profile: CoreProfile,
    /// The attributes every TTBR write carries ([`Armv6::with_table_walk`]).
    walk: TableWalk,
}

impl Armv6 {
    /// A backend for the running CPU: `Err(UnsupportedCore)` for a core
    /// vacmm has no profile for, `Err(WrongCpu)` on an ARMv5 core (so no
    /// ARMv6-only instruction is ever executed on an ARM926). Reads ACTLR
    /// on the ARM1136 and ARM1176, whose RV and RA bits take operations
    /// away ([`CoreProfile::with_actlr`]).
    pub fn new(info: CacheInfo) -> Result<Self, MaintenanceError> {
        let midr = super::main_id();
        let profile = CoreProfile::for_core(midr).map_err(MaintenanceError::UnsupportedCore)?;
        if profile.family != Family::Arm11 || !info.is_armv6() {
            return Err(MaintenanceError::WrongCpu {
                backend: "ARMv6",
                midr,
            });
        }
        let profile = if profile.reads_actlr() {
            profile.with_actlr(regs::Armv6Registers::checked_by_backend().actlr())
        } else {
            profile
        };
        Ok(Armv6 {
            info,
            profile,
            walk: TableWalk::empty(),
        })
    }

    /// The backend with table walks of these attributes: every TTBR it
    /// writes carries them. The default (none) makes walks inner and outer
    /// non-cacheable: they read memory, which is right when nothing sits
    /// between the L1 and memory. On a SoC with an outer cache (an L210 or
    /// L220, the i.MX31's L2CC) a clean to L1 stops in the L2, so the walks
    /// must read through it: [`TableWalk::RGN_WBWA`], as Linux sets
    /// (`TTB_FLAGS_UP` in `arch/arm/mm/proc-v6.S`). Never set
    /// [`TableWalk::C`]: the ARM11 walker cannot read the L1 D-cache (ARM1176
    /// TRM §3.2.13), and vacmm cleans table writes to the point the walker
    /// reads.
    pub fn with_table_walk(mut self, walk: TableWalk) -> Self {
        self.walk = walk;
        self
    }

    /// The sequences this backend runs.
    pub fn profile(&self) -> &CoreProfile {
        &self.profile
    }

    /// Runs the whole-D-cache operation by set and way (ACTLR.RA set).
    fn each_set_way(&mut self, op: fn(u32)) {
        let (sets, ways) = (self.info.dcache.sets(), self.info.dcache.ways);
        for way in 0..ways {
            for set in 0..sets {
                if let Some(operand) = self.info.dcache.set_way_operand(set, way) {
                    op(operand);
                }
            }
        }
    }

    /// Data Memory Barrier (c7,c10,5).
    pub fn data_memory_barrier(&mut self) {
        // SAFETY: `new` checked for ARMv6.
        unsafe { cp15::v6_data_memory_barrier(0) }
    }

    /// Instruction Synchronization Barrier, "flush prefetch buffer" (c7,c5,4).
    pub fn instruction_barrier(&mut self) {
        // SAFETY: `new` checked for ARMv6.
        unsafe { cp15::v6_instruction_barrier(0) }
    }

    /// Flushes the branch target cache (c7,c5,6).
    pub fn flush_branch_target_cache(&mut self) {
        // SAFETY: `new` checked for ARMv6.
        unsafe { cp15::v6_flush_branch_target_cache(0) }
    }

    /// Cleans one D-cache line by set and way (c7,c10,2).
    pub fn clean_dcache_set_way(&mut self, set: usize, way: usize) -> Result<(), MaintenanceError> {
        cp15::clean_dcache_set_way(set_way(&self.info, set, way)?);
        Ok(())
    }

    /// Cleans and invalidates one D-cache line by set and way (c7,c14,2).
    pub fn clean_invalidate_dcache_set_way(
        &mut self,
        set: usize,
        way: usize,
    ) -> Result<(), MaintenanceError> {
        cp15::clean_invalidate_dcache_set_way(set_way(&self.info, set, way)?);
        Ok(())
    }

    /// Invalidates one D-cache line by set and way (c7,c6,2).
    ///
    /// # Safety
    /// Dirty data in that line is lost.
    pub unsafe fn invalidate_dcache_set_way(
        &mut self,
        set: usize,
        way: usize,
    ) -> Result<(), MaintenanceError> {
        let operand = set_way(&self.info, set, way)?;
        // SAFETY: ARMv6 checked by `new`; data loss is the caller's contract.
        unsafe { cp15::invalidate_dcache_set_way(operand) };
        Ok(())
    }

    /// Invalidates the whole D-cache without cleaning (c7,c6,0).
    ///
    /// # Safety
    /// Every dirty line is lost: only before the D-cache holds data that
    /// matters (boot) or when all of it is write-through.
    pub unsafe fn invalidate_dcache_all(&mut self) {
        // SAFETY: the caller's contract.
        unsafe { cp15::invalidate_dcache_all(0) }
    }

    /// Waits for an interrupt (c7,c0,4).
    pub fn wait_for_interrupt(&mut self) {
        cp15::wait_for_interrupt();
    }

    /// Runs one block operation over all of `lines`. Only for operations
    /// that lose no data (clean, clean+invalidate, I-cache invalidate).
    fn block(&mut self, op: unsafe fn(u32, u32), lines: &Lines) -> RangeOutcome {
        // SAFETY: `new` checked for ARMv6; first ≤ last within one `Lines`.
        unsafe { op(lines.first_line().as_u32(), lines.last_line().as_u32()) };
        RangeOutcome::Block
    }
}

impl CacheMaintenance for Armv6 {
    common_cp15_ops!();
    fn clean_dcache_all(&mut self) {
        match self.profile.whole_dcache {
            WholeDcache::SetWayLoop => self.each_set_way(cp15::clean_dcache_set_way),
            // SAFETY: `new` checked for ARMv6 (the ARM926 loop never
            // appears in an ARM11 profile).
            _ => unsafe { cp15::v6_clean_dcache_all(0) },
        }
    }
    fn clean_invalidate_dcache_all(&mut self) {
        match self.profile.whole_dcache {
            WholeDcache::SetWayLoop => self.each_set_way(cp15::clean_invalidate_dcache_set_way),
            // SAFETY: as above.
            _ => unsafe { cp15::v6_clean_invalidate_dcache_all(0) },
        }
    }
    fn invalidate_icache_all(&mut self) {
        match self.profile.icache_all {
            // SAFETY: `new` checked for ARMv6.
            IcacheAll::Erratum411920 => unsafe { cp15::v6_invalidate_icache_all_erratum_411920() },
            IcacheAll::Single => cp15::invalidate_icache_all(0),
        }
        self.flush_branch_target_cache();
    }
    fn invalidate_icache_line(&mut self, va: VirtAddr) {
        // One line is a range of one: it takes the profile's I-range
        // sequence (errata 371025 / 371367) and flushes the BTAC, which a
        // plain c7,c5,1 leaves predicting from the old code.
        let line = self.info.icache.line_bytes as u32;
        let first = va.as_u32() & !(line - 1);
        match self.profile.icache_range {
            IcacheRange::Lines => cp15::invalidate_icache_line(first),
            // SAFETY: the profile says block operations are enabled.
            IcacheRange::BlockWithWorkaround { .. } => unsafe {
                cp15::v6_invalidate_icache_block_erratum_371025(first, first)
            },
            IcacheRange::WholeCache => return self.invalidate_icache_all(),
        }
        self.flush_branch_target_cache();
    }
    fn invalidate_tlb_page_asid(&mut self, va: VirtAddr, asid: u8) -> Result<(), MaintenanceError> {
        // c8,c7,1 with the ASID in bits [7:0] (ARM1136 TRM §3.3.30).
        cp15::invalidate_tlb_mva(va.align_down(4096).as_u32() | u32::from(asid));
        Ok(())
    }
    fn flush_branch_target_cache(&mut self) {
        // The inherent c7,c5,6 above (inherent methods take precedence).
        Armv6::flush_branch_target_cache(self);
    }
    fn synchronize_context(&mut self) {
        // DSB, then BTC flush and ISB: the ARMv6 sequence after changing
        // tables, TLBs or CONTEXTIDR (ARM1136 TRM §3.3.18, ARMv6 ARM B2.7.3).
        self.drain_write_buffer();
        self.flush_branch_target_cache();
        self.instruction_barrier();
    }
    fn invalidate_tlb_asid(&mut self, asid: u8) -> Result<(), MaintenanceError> {
        // SAFETY: `new` checked for ARMv6.
        unsafe { cp15::v6_invalidate_tlb_asid(u32::from(asid)) };
        Ok(())
    }

    fn clean_dcache_range(&mut self, range: VirtRange) -> RangeOutcome {
        if self.profile.dcache_range == DcacheRange::Lines {
            return maintenance::clean_dcache_range_by_lines(self, range);
        }
        let plan = plan_dcache(&self.info, range);
        run_plan(
            self,
            plan,
            |cpu, lines| cpu.block(cp15::v6_clean_dcache_block, &lines),
            Self::clean_dcache_all,
        )
    }

    fn clean_invalidate_dcache_range(&mut self, range: VirtRange) -> RangeOutcome {
        if self.profile.dcache_range == DcacheRange::Lines {
            return maintenance::clean_invalidate_dcache_range_by_lines(self, range);
        }
        let plan = plan_dcache(&self.info, range);
        run_plan(
            self,
            plan,
            |cpu, lines| cpu.block(cp15::v6_clean_invalidate_dcache_block, &lines),
            Self::clean_invalidate_dcache_all,
        )
    }

    unsafe fn invalidate_dcache_range(&mut self, range: VirtRange) -> RangeOutcome {
        if self.profile.dcache_range == DcacheRange::Lines {
            // SAFETY: this method's contract.
            return unsafe { maintenance::invalidate_dcache_range_by_lines(self, range) };
        }
        let plan = plan_dcache(&self.info, range);
        let by_lines = |cpu: &mut Self, lines: Lines| {
            let line = cpu.info.dcache.line_bytes as i64;
            // Whole-line bounds in i64, so stepping past either end of the
            // address space cannot wrap.
            let mut low = i64::from(lines.first_line().as_u32());
            let mut high = i64::from(lines.last_line().as_u32());
            // Partial end lines hold bytes outside the range: clean them
            // instead of discarding them (seed 003), then block-invalidate
            // the whole lines in between, if any.
            if lines.first_is_partial() {
                cpu.clean_invalidate_dcache_line(VirtAddr(low as u32));
                low += line;
            }
            if lines.last_is_partial() && high >= low {
                cpu.clean_invalidate_dcache_line(VirtAddr(high as u32));
                high -= line;
            }
            if low <= high {
                // SAFETY: ARMv6 checked by `new`; `low <= high`; the whole
                // lines lie inside `range`, which the caller gave up.
                unsafe { cp15::v6_invalidate_dcache_block(low as u32, high as u32) };
            }
            RangeOutcome::Block
        };
        run_plan(self, plan, by_lines, Self::clean_invalidate_dcache_all)
    }

    fn invalidate_icache_range(&mut self, range: VirtRange) -> RangeOutcome {
        let plan = match self.profile.icache_range {
            IcacheRange::Lines => {
                // c7,c5,1 per line, then one BTC flush for the range (not
                // one per line, as `invalidate_icache_line` does).
                let by_lines = |cpu: &mut Self, lines: Lines| {
                    let n = lines.len();
                    lines.for_each(|va| cp15::invalidate_icache_line(va.as_u32()));
                    cpu.flush_branch_target_cache();
                    RangeOutcome::Lines(n)
                };
                let plan = plan_icache(&self.info, range);
                return run_plan(self, plan, by_lines, Self::invalidate_icache_all);
            }
            IcacheRange::WholeCache => match plan_icache(&self.info, range) {
                RangePlan::Nothing => RangePlan::Nothing,
                _ => RangePlan::WholeCache,
            },
            IcacheRange::BlockWithWorkaround { .. } => plan_icache(&self.info, range),
        };
        let by_block = |cpu: &mut Self, lines: Lines| {
            // SAFETY: the profile says block operations are enabled; first ≤
            // last within one `Lines`.
            unsafe {
                cp15::v6_invalidate_icache_block_erratum_371025(
                    lines.first_line().as_u32(),
                    lines.last_line().as_u32(),
                )
            };
            cpu.flush_branch_target_cache();
            RangeOutcome::Block
        };
        run_plan(self, plan, by_block, Self::invalidate_icache_all)
    }
}

impl TranslationRegisters for Armv6 {
    unsafe fn set_user_table(&mut self, table: PhysAddr) {
        // SAFETY: the caller's contract (TranslationRegisters).
        unsafe { regs::set_ttbr0(Ttbr(table.as_u32() | self.walk.bits())) }
    }
    fn table_walk(&self) -> TableWalk {
        self.walk
    }
    unsafe fn set_context_key(&mut self, key: u8) {
        // SAFETY: `new` checked for ARMv6; the caller's contract covers the
        // change of ASID.
        unsafe { regs::Armv6Registers::checked_by_backend().set_context_id(ContextId::new(0, key)) }
    }
}
