//! Raw CP15 cache, write-buffer, barrier and TLB operations: one function per
//! instruction, each documented with its encoding and TRM section.
//!
//! Sources: ARM926EJ-S TRM (DDI 0198E) §2.3.8 "Register 7, cache operations"
//! and §2.3.9 "Register 8, TLB operations"; ARM1136JF-S TRM (DDI 0211K)
//! §3.3.18 "c7, Cache Operations" and §3.3.19 "c8, TLB Operations"; ARM1176JZF-S
//! TRM (DDI 0301H) §3.2.22 and §3.2.23.
//!
//! These are the building blocks of [`super::Arm926`] and [`super::Armv6`],
//! which check the CPU before using them; calling an ARMv6-only function here
//! on an ARM926 executes an undefined (or unpredictable) instruction, which is
//! why the functions marked "ARMv6" are `unsafe`.

use core::arch::asm;

/// Defines a function that writes `value` (an MVA, a set/way word, or zero)
/// to one CP15 c7/c8 operation.
macro_rules! cp15_op {
    ($(#[$doc:meta])* $vis:vis safe fn $name:ident($arg:ident) = $crn:literal, $crm:literal, $op2:literal;) => {
        $(#[$doc])*
        #[inline]
        $vis fn $name($arg: u32) {
            // SAFETY: this operation only writes back, or drops clean or
            // redundant state (cache lines, branch predictions, TLB entries
            // that the next walk refills); it cannot lose data.
            unsafe {
                asm!(concat!("mcr p15, 0, {0}, ", $crn, ", ", $crm, ", ", $op2),
                    in(reg) $arg, options(nostack, preserves_flags));
            }
        }
    };
    ($(#[$doc:meta])* $vis:vis unsafe fn $name:ident($arg:ident) = $crn:literal, $crm:literal, $op2:literal;) => {
        $(#[$doc])*
        #[inline]
        $vis unsafe fn $name($arg: u32) {
            // SAFETY: the caller upholds the contract in the doc comment.
            unsafe {
                asm!(concat!("mcr p15, 0, {0}, ", $crn, ", ", $crm, ", ", $op2),
                    in(reg) $arg, options(nostack, preserves_flags));
            }
        }
    };
}

// ---- Common to ARM926EJ-S and ARM11 -------------------------------------

cp15_op! {
    /// Invalidate the entire I-cache: MCR p15,0,Rd(SBZ),c7,c5,0 (ARM926 TRM §2.3.8;
    /// ARM1136 TRM §3.3.18 — where erratum 411920 applies use
    /// [`v6_invalidate_icache_all_erratum_411920`], see [`super::profile`]).
    pub safe fn invalidate_icache_all(zero) = "c7", "c5", "0";
}
cp15_op! {
    /// Invalidate the I-cache line holding an MVA: MCR p15,0,Rd,c7,c5,1 (ARM926 TRM §2.3.8; ARM1136 TRM §3.3.18).
    pub safe fn invalidate_icache_line(mva) = "c7", "c5", "1";
}
cp15_op! {
    /// Invalidate the D-cache line holding an MVA, discarding dirty data:
    /// MCR p15,0,Rd,c7,c6,1 (ARM926 TRM §2.3.8; ARM1136 TRM §3.3.18).
    ///
    /// # Safety
    /// Dirty data in the line is lost.
    pub unsafe fn invalidate_dcache_line(mva) = "c7", "c6", "1";
}
cp15_op! {
    /// Invalidate a D-cache line by set/way, discarding dirty data:
    /// MCR p15,0,Rd,c7,c6,2 (ARM1136 TRM §3.3.18; on ARM926 only c7,c10,2 and
    /// c7,c14,2 take set/way).
    ///
    /// # Safety
    /// Dirty data in the line is lost; ARMv6 only.
    pub unsafe fn invalidate_dcache_set_way(set_way) = "c7", "c6", "2";
}
cp15_op! {
    /// Invalidate the entire D-cache, discarding dirty data: MCR p15,0,Rd(SBZ),c7,c6,0
    /// (ARM926 TRM §2.3.8; ARM1136 TRM §3.3.18).
    ///
    /// # Safety
    /// Every dirty line in the D-cache is lost; safe only when nothing in it
    /// is dirty (e.g. at boot before the cache is enabled, or write-through).
    pub unsafe fn invalidate_dcache_all(zero) = "c7", "c6", "0";
}
cp15_op! {
    /// Clean the D-cache line holding an MVA: MCR p15,0,Rd,c7,c10,1 (ARM926 TRM §2.3.8; ARM1136 TRM §3.3.18).
    pub safe fn clean_dcache_line(mva) = "c7", "c10", "1";
}
cp15_op! {
    /// Clean a D-cache line by set/way: MCR p15,0,Rd,c7,c10,2 (ARM926 TRM §2.3.8;
    /// ARM1136 TRM §3.3.18). Operand: [`crate::cache::CacheGeometry::set_way_operand`].
    pub safe fn clean_dcache_set_way(set_way) = "c7", "c10", "2";
}
cp15_op! {
    /// Clean and invalidate the D-cache line holding an MVA: MCR p15,0,Rd,c7,c14,1
    /// (ARM926 TRM §2.3.8; ARM1136 TRM §3.3.18).
    pub safe fn clean_invalidate_dcache_line(mva) = "c7", "c14", "1";
}
cp15_op! {
    /// Clean and invalidate a D-cache line by set/way: MCR p15,0,Rd,c7,c14,2
    /// (ARM926 TRM §2.3.8; ARM1136 TRM §3.3.18).
    pub safe fn clean_invalidate_dcache_set_way(set_way) = "c7", "c14", "2";
}
cp15_op! {
    /// Drain the write buffer: MCR p15,0,Rd(SBZ),c7,c10,4 (ARM926 TRM §2.3.8). On
    /// ARMv6 this encoding is the Data Synchronization Barrier (ARM1136 TRM §3.3.18).
    pub safe fn drain_write_buffer(zero) = "c7", "c10", "4";
}
cp15_op! {
    /// Invalidate the whole unified TLB: MCR p15,0,Rd(SBZ),c8,c7,0 (ARM926 TRM §2.3.9; ARM1136 TRM §3.3.19).
    pub safe fn invalidate_tlb_all(zero) = "c8", "c7", "0";
}
cp15_op! {
    /// Invalidate the unified TLB entry for an MVA: MCR p15,0,Rd,c8,c7,1 (ARM926
    /// TRM §2.3.9). On ARMv6 the operand carries the ASID in bits \[7:0\] (ARM1136 TRM §3.3.19).
    pub safe fn invalidate_tlb_mva(mva) = "c8", "c7", "1";
}
cp15_op! {
    /// Invalidate the whole instruction TLB: MCR p15,0,Rd(SBZ),c8,c5,0 (ARM926 TRM §2.3.9; ARM1136 TRM §3.3.19).
    pub safe fn invalidate_itlb_all(zero) = "c8", "c5", "0";
}
cp15_op! {
    /// Invalidate the instruction TLB entry for an MVA: MCR p15,0,Rd,c8,c5,1 (ARM926 TRM §2.3.9; ARM1136 TRM §3.3.19).
    pub safe fn invalidate_itlb_mva(mva) = "c8", "c5", "1";
}
cp15_op! {
    /// Invalidate the whole data TLB: MCR p15,0,Rd(SBZ),c8,c6,0 (ARM926 TRM §2.3.9; ARM1136 TRM §3.3.19).
    pub safe fn invalidate_dtlb_all(zero) = "c8", "c6", "0";
}
cp15_op! {
    /// Invalidate the data TLB entry for an MVA: MCR p15,0,Rd,c8,c6,1 (ARM926 TRM §2.3.9; ARM1136 TRM §3.3.19).
    pub safe fn invalidate_dtlb_mva(mva) = "c8", "c6", "1";
}

/// Drain the write buffer, then wait for interrupt: MCR p15,0,Rd(SBZ),c7,c10,4
/// and MCR p15,0,Rd(SBZ),c7,c0,4 (ARM926 TRM §2.3.8; ARM1136 TRM §3.3.18).
/// Returns after an interrupt (or debug entry), even with interrupts masked
/// in CPSR.
///
/// The drain comes first because WFI may enter a low-power state with
/// stores still buffered, which a device or the other side of a mailbox
/// then does not see while the core sleeps (Linux `cpu_v6_do_idle` and
/// `cpu_arm926_do_idle` drain first too). Not `nomem`: the compiler must
/// not move stores across it.
#[inline]
pub fn wait_for_interrupt() {
    // SAFETY: the drain completes buffered stores; WFI stops the core until
    // an interrupt is pending. Neither changes any architectural state.
    unsafe {
        asm!(
            "mcr p15, 0, {0}, c7, c10, 4",
            "mcr p15, 0, {0}, c7, c0, 4",
            in(reg) 0u32,
            options(nostack, preserves_flags)
        );
    }
}

// ---- ARM926EJ-S only -----------------------------------------------------

/// Clean and invalidate the entire D-cache on ARM926: loop on the "test, clean
/// and invalidate" operation MRC p15,0,APSR_nzcv,c7,c14,3 until it sets Z
/// (ARM926 TRM §2.3.8). Each iteration cleans and invalidates one dirty line.
///
/// # Safety
/// ARM926 only (ARMv6 has no test-and-clean operation).
#[inline]
pub unsafe fn arm926_test_clean_invalidate_dcache() {
    // SAFETY: the caller checked the CPU; the loop only writes back and drops lines.
    unsafe {
        asm!(
            "2:",
            "mrc p15, 0, APSR_nzcv, c7, c14, 3",
            "bne 2b",
            options(nostack)
        );
    }
}

/// Clean the entire D-cache on ARM926: loop on "test and clean"
/// MRC p15,0,APSR_nzcv,c7,c10,3 until it sets Z (ARM926 TRM §2.3.8).
///
/// # Safety
/// ARM926 only.
#[inline]
pub unsafe fn arm926_test_clean_dcache() {
    // SAFETY: the caller checked the CPU; the loop only writes back lines.
    unsafe {
        asm!(
            "2:",
            "mrc p15, 0, APSR_nzcv, c7, c10, 3",
            "bne 2b",
            options(nostack)
        );
    }
}

// ---- ARMv6 (ARM1136, ARM1176) only ---------------------------------------

macro_rules! armv6_op {
    ($(#[$doc:meta])* fn $name:ident($arg:ident) = $crn:literal, $crm:literal, $op2:literal;) => {
        cp15_op! {
            $(#[$doc])*
            ///
            /// # Safety
            /// ARMv6 only: undefined or unpredictable on ARM926.
            pub unsafe fn $name($arg) = $crn, $crm, $op2;
        }
    };
}

armv6_op! {
    /// Clean the entire D-cache: MCR p15,0,Rd(SBZ),c7,c10,0 (ARM1136 TRM §3.3.18).
    fn v6_clean_dcache_all(zero) = "c7", "c10", "0";
}
armv6_op! {
    /// Clean and invalidate the entire D-cache: MCR p15,0,Rd(SBZ),c7,c14,0 (ARM1136 TRM §3.3.18).
    fn v6_clean_invalidate_dcache_all(zero) = "c7", "c14", "0";
}
armv6_op! {
    /// Flush the branch target cache: MCR p15,0,Rd(SBZ),c7,c5,6 (ARM1136 TRM §3.3.18).
    fn v6_flush_branch_target_cache(zero) = "c7", "c5", "6";
}
armv6_op! {
    /// Data Memory Barrier: MCR p15,0,Rd(SBZ),c7,c10,5 (ARM1136 TRM §3.3.18).
    fn v6_data_memory_barrier(zero) = "c7", "c10", "5";
}
armv6_op! {
    /// Flush Prefetch Buffer, the ARMv6 Instruction Synchronization Barrier:
    /// MCR p15,0,Rd(SBZ),c7,c5,4 (ARM1136 TRM §3.3.18).
    fn v6_instruction_barrier(zero) = "c7", "c5", "4";
}
armv6_op! {
    /// Invalidate the unified TLB entries of an ASID: MCR p15,0,Rd,c8,c7,2 with
    /// the ASID in bits \[7:0\] (ARM1136 TRM §3.3.19).
    fn v6_invalidate_tlb_asid(asid) = "c8", "c7", "2";
}
armv6_op! {
    /// Invalidate the instruction TLB entries of an ASID: MCR p15,0,Rd,c8,c5,2 (ARM1136 TRM §3.3.19).
    fn v6_invalidate_itlb_asid(asid) = "c8", "c5", "2";
}
armv6_op! {
    /// Invalidate the data TLB entries of an ASID: MCR p15,0,Rd,c8,c6,2 (ARM1136 TRM §3.3.19).
    fn v6_invalidate_dtlb_asid(asid) = "c8", "c6", "2";
}

/// Defines an ARMv6 block (range) operation: MCRR p15,0,Rend,Rstart,CRm.
macro_rules! armv6_block_op {
    ($(#[$doc:meta])* fn $name:ident = $crm:literal;) => {
        $(#[$doc])*
        ///
        /// `start` and `last` are MVAs of the first and last lines (the end is
        /// inclusive, at line granularity: ARM1136 TRM §3.3.18, "Cache
        /// operations using MCRR"). The operation may be interrupted and
        /// restarts; the caller follows it with a DSB.
        ///
        /// # Safety
        /// ARMv6 only (undefined on ARM926). `last >= start`.
        #[inline]
        pub unsafe fn $name(start: u32, last: u32) {
            // SAFETY: the caller checked the CPU and the bounds.
            unsafe {
                asm!(concat!("mcrr p15, 0, {last}, {start}, ", $crm),
                    last = in(reg) last, start = in(reg) start, options(nostack, preserves_flags));
            }
        }
    };
}

armv6_block_op! {
    /// Clean a D-cache range: MCRR p15,0,Rend,Rstart,c12 (ARM1136 TRM §3.3.18).
    fn v6_clean_dcache_block = "c12";
}
armv6_block_op! {
    /// Clean and invalidate a D-cache range: MCRR p15,0,Rend,Rstart,c14 (ARM1136 TRM §3.3.18).
    fn v6_clean_invalidate_dcache_block = "c14";
}
armv6_block_op! {
    /// Invalidate a D-cache range, discarding dirty data: MCRR p15,0,Rend,Rstart,c6
    /// (ARM1136 TRM §3.3.18). Whole lines only: partial lines lose their other bytes.
    fn v6_invalidate_dcache_block = "c6";
}

/// Invalidate the entire I-cache with the workaround for erratum 411920
/// ("Invalidate Entire Instruction Cache operation can fail"; ARM1136 before
/// r1p4, ARM1156, ARM1176 as 415045): with IRQ, FIQ and imprecise aborts
/// masked (`cpsid ifa`), issue c7,c5,0 four times, restore CPSR, then
/// eleven NOPs (Linux `arch/arm/mm/cache-v6.S` `v6_flush_icache_all`;
/// NetBSD `cpufunc_asm_arm11x6.S` `Invalidate_I_cache`).
///
/// The mask is written with MSR (A = bit 8, I = 7, F = 6) rather than
/// `cpsid ifa`, which an ARMv5TE assembler refuses: the same image drives
/// the ARM926 and the ARM11 ([`super::AnyCpu`]).
///
/// # Safety
/// ARMv6 only. Masks interrupts and imprecise aborts for a few cycles and
/// restores CPSR.
#[inline]
pub unsafe fn v6_invalidate_icache_all_erratum_411920() {
    // SAFETY: CPSR is saved and restored around the sequence; the CP15
    // operations only drop I-cache lines.
    unsafe {
        asm!(
            "mrs {saved}, cpsr",
            "orr {masked}, {saved}, #0x1c0",
            "msr cpsr_cx, {masked}",
            "mcr p15, 0, {zero}, c7, c5, 0",
            "mcr p15, 0, {zero}, c7, c5, 0",
            "mcr p15, 0, {zero}, c7, c5, 0",
            "mcr p15, 0, {zero}, c7, c5, 0",
            "msr cpsr_cx, {saved}",
            "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop",
            saved = out(reg) _,
            masked = out(reg) _,
            zero = in(reg) 0u32,
            options(nostack),
        );
    }
}

/// Invalidate an I-cache range with MCRR c5 inside the workaround for
/// ARM1136 erratum 371025 (workaround 2) and ARM1176 erratum 371367, as
/// NetBSD's `arm11x6_icache_sync_range` runs it: with IRQ, FIQ and imprecise
/// aborts masked, write the FCSE PID register (the write flushes the
/// micro-TLBs and the BTAC, ARM1136 TRM §3.3.35), flush the prefetch buffer
/// (c7,c5,4), prefetch the I-cache line that holds the MCRR (c7,c13,1), run
/// the MCRR, restore CPSR, then seven NOPs.
///
/// One difference from NetBSD: the FCSE PID is written back with the value
/// it holds, not with 0, so a kernel that runs with a PID keeps its
/// relocation. The D-side lines must be cleaned before (NetBSD cleans them
/// after, which lets a refetch see stale code).
///
/// # Safety
/// ARM1136 or ARM1176 with block operations enabled (ACTLR.RV clear):
/// undefined elsewhere. `last >= start`, both line addresses.
#[inline]
pub unsafe fn v6_invalidate_icache_block_erratum_371025(start: u32, last: u32) {
    // SAFETY: CPSR and the FCSE PID are restored to the values they had;
    // the CP15 operations only drop I-cache, TLB and prediction state.
    unsafe {
        asm!(
            "mrs {saved}, cpsr",
            "orr {tmp}, {saved}, #0x1c0",
            "msr cpsr_cx, {tmp}",
            "mrc p15, 0, {tmp}, c13, c0, 0",
            "mcr p15, 0, {tmp}, c13, c0, 0",
            "mov {tmp}, #0",
            "mcr p15, 0, {tmp}, c7, c5, 4",
            "adr {tmp}, 2f",
            "mcr p15, 0, {tmp}, c7, c13, 1",
            "2:",
            "mcrr p15, 0, {last}, {start}, c5",
            "msr cpsr_cx, {saved}",
            "nop", "nop", "nop", "nop", "nop", "nop", "nop",
            saved = out(reg) _,
            tmp = out(reg) _,
            last = in(reg) last,
            start = in(reg) start,
            options(nostack),
        );
    }
}
