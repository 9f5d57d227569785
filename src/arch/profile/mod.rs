//! Which instruction sequence each maintenance operation needs on one core:
//! its errata and the optional operations it lacks, decided from MIDR (and,
//! on the ARM1136 and ARM1176, from ACTLR) alone.
//!
//! The decision is pure, so the host tests pin it for every revision
//! (`arch::tests`); the ARM backends only run what the profile says. The
//! facts, with their sources (also in `docs/hardware.md`):
//!
//! | erratum / fact | parts | what the profile chooses |
//! |---|---|---|
//! | 411920 (ARM1176: 415045) "Invalidate Entire Instruction Cache operation can fail" | ARM1136 before r1p4, ARM1176 (fixed revision not published; all of them here); not the MPCore | [`IcacheAll::Erratum411920`] |
//! | 371025 (ARM1136), 371367 (ARM1176): the MCRR c5 I-cache range | ARM1136, ARM1176 (NetBSD applies it on every revision) | [`IcacheRange::BlockWithWorkaround`] |
//! | 364296 hit-under-miss D-cache corruption | ARM1136 r0 (Linux: r0p2 only; seL4, NetBSD: every r0) | [`BringUp::erratum_364296`] |
//! | block (MCRR) operations are optional in ARMv6 | absent on the ARM11 MPCore; off on the ARM1136/ARM1176 when ACTLR.RV (bit 5) is set | per-line loops ([`DcacheRange::Lines`]) |
//! | ACTLR.RA (bit 4) disables the whole-D-cache clean operations | ARM1136, ARM1176 | [`WholeDcache::SetWayLoop`] |
//! | the test-and-clean loops (c7,c10,3 / c7,c14,3) | ARM926EJ-S only among ARMv5 cores | other ARMv5 cores are refused |
//!
//! Sources: ARM1136 TRM (DDI 0211K) §3.3.7 (ACTLR); Linux `arch/arm/Kconfig`
//! `ARM_ERRATA_411920`/`ARM_ERRATA_364296`, `arch/arm/mm/cache-v6.S`
//! `v6_flush_icache_all`, `arch/arm/mm/proc-v6.S` `__v6_setup`; NetBSD
//! `sys/arch/arm/arm/cpufunc_asm_arm11x6.S` (`Invalidate_I_cache`,
//! `arm11x6_icache_sync_range`) and `cpufunc.c` `arm11x6_setup`; seL4
//! `src/arch/arm/32/machine/errata.c`; QEMU `target/arm/tcg/cpu32.c` (the
//! `arm11mpcore` model has no `ARM_FEATURE_CACHE_BLOCK_OPS`).

use core::fmt;

use super::regs::Actlr;
use crate::cache::{CpuPart, MainId};

/// The two families vacmm has a backend for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// ARM926EJ-S: VIVT, test-and-clean loops, no block operations.
    Arm926,
    /// ARM1136, ARM1176, ARM11 MPCore: VIPT, CP15 barriers, ASIDs.
    Arm11,
}

/// How the whole I-cache is invalidated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcacheAll {
    /// One c7,c5,0.
    Single,
    /// Erratum 411920: with IRQ, FIQ and imprecise aborts masked, c7,c5,0
    /// four times, then eleven NOPs (Linux `v6_flush_icache_all`, NetBSD
    /// `Invalidate_I_cache`).
    Erratum411920,
}

/// How a range of the I-cache is invalidated (its D-side lines already
/// cleaned). Ranges above the whole-cache threshold use [`IcacheAll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcacheRange {
    /// c7,c5,1 for each line (ARM926; ARM11 MPCore, which has no block
    /// operations).
    Lines,
    /// MCRR c5 inside the errata 371025 / 371367 workaround: with IRQ, FIQ
    /// and imprecise aborts masked, an FCSE PID write (which flushes the
    /// micro-TLBs and the BTAC), a prefetch-buffer flush and a prefetch of
    /// the I-cache line holding the MCRR itself, then the MCRR and seven
    /// NOPs after the mask is restored (NetBSD `arm11x6_icache_sync_range`).
    BlockWithWorkaround {
        /// 371025 on the ARM1136, 371367 on the ARM1176.
        erratum: u32,
    },
    /// The whole I-cache, as [`IcacheAll`] says: the ARM1136 and ARM1176
    /// with block operations disabled (ACTLR.RV), where the per-line
    /// invalidate by MVA is suspect too (a vendor BSP replaces it for
    /// 371025; ARM1176 erratum 714068 can deadlock it). Linux always does
    /// this on ARMv6 (`v6_coherent_user_range`).
    WholeCache,
}

/// How a range of the D-cache is cleaned or invalidated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DcacheRange {
    /// One c7,c10,1 / c7,c14,1 / c7,c6,1 per line.
    Lines,
    /// One MCRR c12 / c14 / c6 for the whole range (ARMv6 block operations).
    Block,
}

/// How the whole D-cache is cleaned (and invalidated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WholeDcache {
    /// The ARM926 test-and-clean loops (c7,c10,3 / c7,c14,3).
    TestAndCleanLoop,
    /// One c7,c10,0 / c7,c14,0.
    Single,
    /// One c7,c10,2 / c7,c14,2 per set and way: ACTLR.RA disables the
    /// single operations.
    SetWayLoop,
}

/// What MMU bring-up must set on this core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BringUp {
    /// Erratum 364296 (ARM1136 r0: D-cache corruption with hit-under-miss):
    /// ACTLR bit 31 and SCTLR.FI, which turn hit-under-miss off without the
    /// full low-interrupt-latency mode (Linux `__v6_setup`).
    pub erratum_364296: bool,
}

/// The maintenance sequences of one core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoreProfile {
    /// The core it was chosen for.
    pub midr: MainId,
    /// Which backend drives it.
    pub family: Family,
    /// Whole I-cache invalidate.
    pub icache_all: IcacheAll,
    /// I-cache range (and single-line) invalidate.
    pub icache_range: IcacheRange,
    /// D-cache range operations.
    pub dcache_range: DcacheRange,
    /// Whole D-cache clean and clean+invalidate.
    pub whole_dcache: WholeDcache,
    /// I-cache maintenance must be followed by a branch target cache flush
    /// (c7,c5,6): ARMv6 cores predict from a BTAC that c7,c5,1 and the MCRR
    /// do not touch (ARM1176 TRM c7 "Flush Entire Branch Target Cache").
    pub flushes_branch_target_cache: bool,
    /// MMU bring-up.
    pub bring_up: BringUp,
}

/// Why there is no profile for a core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsupportedCore {
    /// The core's MIDR.
    pub midr: MainId,
    /// What the core is, as far as vacmm knows it.
    pub name: &'static str,
    /// Why neither backend may drive it.
    pub why: &'static str,
}

impl fmt::Display for UnsupportedCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vacmm cannot drive the {} (MIDR {:#010x}): {}",
            self.name,
            self.midr.raw(),
            self.why
        )
    }
}

impl core::error::Error for UnsupportedCore {}

/// ARM1136 revisions before r1p4 have erratum 411920 (Linux Kconfig, NetBSD).
const ARM1136_411920_FIXED: (u8, u8) = (1, 4);

impl CoreProfile {
    /// The profile of the core `midr` names, assuming ACTLR at its reset
    /// value (block and whole-cache operations enabled); see
    /// [`with_actlr`](Self::with_actlr).
    pub const fn for_core(midr: MainId) -> Result<Self, UnsupportedCore> {
        match midr.part() {
            // The architecture field tells an ARM926EJ-S (6, ARMv5TEJ) from
            // Feroceon's "old ID" 0x41009260, which reuses the part number.
            CpuPart::Arm926 if midr.architecture() == 0x6 => Ok(CoreProfile {
                midr,
                family: Family::Arm926,
                icache_all: IcacheAll::Single,
                icache_range: IcacheRange::Lines,
                dcache_range: DcacheRange::Lines,
                whole_dcache: WholeDcache::TestAndCleanLoop,
                flushes_branch_target_cache: false,
                bring_up: BringUp {
                    erratum_364296: false,
                },
            }),
            CpuPart::Arm1136R0 | CpuPart::Arm1136R1 => {
                let (fixed_variant, fixed_revision) = ARM1136_411920_FIXED;
                let before_fix = midr.variant() < fixed_variant
                    || (midr.variant() == fixed_variant && midr.revision() < fixed_revision);
                Ok(Self::arm11(
                    midr,
                    if before_fix {
                        IcacheAll::Erratum411920
                    } else {
                        IcacheAll::Single
                    },
                    IcacheRange::BlockWithWorkaround { erratum: 371025 },
                    DcacheRange::Block,
                    BringUp {
                        erratum_364296: midr.variant() == 0,
                    },
                ))
            }
            CpuPart::Arm1176 => Ok(Self::arm11(
                midr,
                IcacheAll::Erratum411920,
                IcacheRange::BlockWithWorkaround { erratum: 371367 },
                DcacheRange::Block,
                BringUp {
                    erratum_364296: false,
                },
            )),
            CpuPart::Arm11MpCore => Ok(Self::arm11(
                midr,
                IcacheAll::Single,
                IcacheRange::Lines,
                DcacheRange::Lines,
                BringUp {
                    erratum_364296: false,
                },
            )),
            CpuPart::Arm926 => Err(UnsupportedCore {
                midr,
                name: "Feroceon (a part reporting the ARM926 part number with architecture field 0)",
                why: "only the ARM926EJ-S is known to have the test-and-clean loops the ARMv5 \
                      backend uses",
            }),
            CpuPart::Other { implementer, part } => Err(UnsupportedCore {
                midr,
                name: foreign_name(implementer, part),
                why: if midr.is_armv6_or_later() {
                    "the ARMv6 backend drives the ARM1136, the ARM1176 and the ARM11 MPCore \
                     only; later cores have other caches and maintenance operations"
                } else {
                    "the ARMv5 backend uses the ARM926EJ-S's test-and-clean loops, which \
                     other ARMv4/ARMv5 cores do not have"
                },
            }),
        }
    }

    const fn arm11(
        midr: MainId,
        icache_all: IcacheAll,
        icache_range: IcacheRange,
        dcache_range: DcacheRange,
        bring_up: BringUp,
    ) -> Self {
        CoreProfile {
            midr,
            family: Family::Arm11,
            icache_all,
            icache_range,
            dcache_range,
            whole_dcache: WholeDcache::Single,
            flushes_branch_target_cache: true,
            bring_up,
        }
    }

    /// True if this core's ACTLR has the RV and RA bits that
    /// [`with_actlr`](Self::with_actlr) reads (ARM1136 and ARM1176; the
    /// MPCore's bits 4 and 5 mean other things, the ARM926 has no ACTLR).
    pub const fn reads_actlr(&self) -> bool {
        matches!(
            self.midr.part(),
            CpuPart::Arm1136R0 | CpuPart::Arm1136R1 | CpuPart::Arm1176
        )
    }

    /// The profile with the ACTLR the core runs with: RV (block operations
    /// disabled) selects the per-line D loops and the whole-I-cache
    /// invalidate; RA (whole-D-cache clean disabled) the set/way loop.
    /// Unchanged where [`reads_actlr`](Self::reads_actlr) is false.
    pub const fn with_actlr(mut self, actlr: Actlr) -> Self {
        if !self.reads_actlr() {
            return self;
        }
        if actlr.contains(Actlr::RV) {
            self.dcache_range = DcacheRange::Lines;
            self.icache_range = IcacheRange::WholeCache;
        }
        if actlr.contains(Actlr::RA) {
            self.whole_dcache = WholeDcache::SetWayLoop;
        }
        self
    }

    /// True if the profile runs any ARMv6 block (MCRR) operation.
    pub const fn uses_block_operations(&self) -> bool {
        matches!(self.dcache_range, DcacheRange::Block)
            || matches!(self.icache_range, IcacheRange::BlockWithWorkaround { .. })
    }
}

/// The name of a core vacmm refuses, from MIDR implementer and part
/// (NetBSD `armreg.h`, Linux `proc-*.S` `__*_proc_info`).
const fn foreign_name(implementer: u8, part: u16) -> &'static str {
    match (implementer, part) {
        (0x41, 0x920) => "ARM920T",
        (0x41, 0x922) => "ARM922T",
        (0x41, 0x940) => "ARM940T",
        (0x41, 0x946) => "ARM946E-S",
        (0x41, 0x966) => "ARM966E-S",
        (0x41, 0xa20) => "ARM1020E",
        (0x41, 0xa22) => "ARM1022E",
        (0x41, 0xa26) => "ARM1026EJ-S",
        (0x41, 0xb56) => "ARM1156T2-S (an MPU, no MMU)",
        (0x41, 0xc00..=0xc0f) => "Cortex-A (ARMv7)",
        (0x41, _) => "ARM core",
        (0x69, _) => "Intel XScale",
        (0x56, _) => "Marvell Feroceon / Sheeva",
        _ => "core",
    }
}

#[cfg(test)]
mod tests;
