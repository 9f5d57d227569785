//! Decoding the CP15 instructions that change what the cache model must
//! know, from the instruction word at translation time. Operand registers
//! are read when the instruction executes (see `plugin.rs`).
//!
//! Encodings (ARM ARM A4, ARM926EJ-S TRM §2.3, ARM1136JF-S TRM §3.3):
//! ```text
//!   MCR  cond 1110 opc1 0 CRn Rt 1111 opc2 1 CRm
//!   MRC  cond 1110 opc1 1 CRn Rt 1111 opc2 1 CRm
//!   MCRR cond 1100 0100 Rt2 Rt 1111 opc1 CRm      (Rt: last address, Rt2: start)
//! ```

use vacmm::sim::LineOp;

/// What a CP15 instruction does to the caches, TLB or translation regime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// SCTLR (c1,c0,0): MMU, caches, XP.
    WriteSctlr,
    /// TTBR0 (c2,c0,0).
    WriteTtbr0,
    /// TTBR1 (c2,c0,1, ARMv6).
    WriteTtbr1,
    /// TTBCR (c2,c0,2, ARMv6).
    WriteTtbcr,
    /// FCSE PID (c13,c0,0).
    WriteFcsePid,
    /// CONTEXTIDR (c13,c0,1, ARMv6): the ASID.
    WriteContextId,
    /// ACTLR (c1,c0,1, ARM11): CZ restricts the caches to 16 KiB, RV
    /// disables the block operations, RA the whole-D-cache cleans; bit 31
    /// and SCTLR.FI turn hit-under-miss off (erratum 364296).
    WriteActlr,
    /// Prefetch an I-cache line (c7,c13,1, ARMv6), part of the errata
    /// 371025 / 371367 sequence: a hint that fills a line the guest is
    /// about to execute, which the model fills when it is fetched.
    PrefetchIcacheLine,
    /// A line operation by MVA on the D-cache, the I-cache, or both
    /// (unified operations on a Harvard cache).
    LineByMva {
        /// The D-side operation, if any.
        data: Option<LineOp>,
        /// Whether the I line is invalidated too.
        instruction: bool,
    },
    /// A line operation by set/way.
    LineBySetWay {
        /// The D-side operation, if any.
        data: Option<LineOp>,
        /// Whether the I line is invalidated too.
        instruction: bool,
    },
    /// A whole-D-cache operation: clean and/or invalidate (ARMv6 c7,c10,0 /
    /// c7,c14,0 / c7,c6,0, the ARM926 test-and-clean loops), optionally with
    /// the whole I-cache (c7,c7,0, c7,c15,0).
    WholeCache {
        /// Write dirty D lines back.
        clean: bool,
        /// Drop every D line.
        invalidate: bool,
        /// Invalidate the whole I-cache too.
        instruction: bool,
        /// Leave the D-cache alone (c7,c5,0).
        data: bool,
    },
    /// An ARMv6 block operation (MCRR) over [start, last], both MVAs.
    Block {
        /// The D-side operation, if any.
        data: Option<LineOp>,
        /// Whether I lines are invalidated.
        instruction: bool,
    },
    /// Drain the write buffer / DSB (c7,c10,4).
    Drain,
    /// Flush the branch target cache (ARMv6 c7,c5,6; the entry by MVA,
    /// c7,c5,7, is applied as a whole flush: the model's BTC has no
    /// per-entry operation).
    FlushBtc,
    /// Invalidate the whole TLB (c8,cX,0).
    TlbAll,
    /// Invalidate a TLB entry by MVA (ARMv6: MVA | ASID) (c8,cX,1).
    TlbByMva,
    /// Invalidate the TLB entries of an ASID (c8,cX,2, ARMv6).
    TlbByAsid,
}

impl Action {
    /// Cache maintenance: what `omit=` ignores (line, set/way, whole-cache
    /// and block operations, the write-buffer drain, the branch target
    /// cache), not the translation regime or the TLB.
    pub fn is_maintenance(self) -> bool {
        matches!(
            self,
            Action::LineByMva { .. }
                | Action::LineBySetWay { .. }
                | Action::WholeCache { .. }
                | Action::Block { .. }
                | Action::Drain
                | Action::FlushBtc
        )
    }
}

/// A decoded CP15 instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cp15 {
    /// The condition field (14 = always).
    pub cond: u8,
    /// What it does.
    pub action: Action,
    /// The operand register (MCR Rt; MCRR Rt, the last address).
    pub rt: u8,
    /// MCRR's second register (the start address).
    pub rt2: Option<u8>,
}

const ALWAYS: u8 = 0xe;

/// Decodes an ARM-state instruction word; `None` for anything that is not
/// a CP15 operation the model cares about (barriers, WFI, ID reads, …).
pub fn decode(word: u32) -> Option<Cp15> {
    let cond = (word >> 28) as u8;
    if cond == 0xf {
        // MCR2 / MRC2 / MCRR2 space: not CP15 operations on these cores.
        return None;
    }
    let rt = ((word >> 12) & 0xf) as u8;
    let crm = word & 0xf;
    let coproc = (word >> 8) & 0xf;
    if coproc != 15 {
        return None;
    }
    // MCRR p15, 0, Rt, Rt2, CRm
    if word & 0x0ff0_0000 == 0x0c40_0000 {
        let opc1 = (word >> 4) & 0xf;
        let rt2 = ((word >> 16) & 0xf) as u8;
        let (data, instruction) = match (opc1, crm) {
            (0, 5) => (None, true),
            (0, 6) => (Some(LineOp::Invalidate), false),
            (0, 12) => (Some(LineOp::Clean), false),
            (0, 14) => (Some(LineOp::CleanInvalidate), false),
            _ => return None,
        };
        return Some(Cp15 {
            cond,
            action: Action::Block { data, instruction },
            rt,
            rt2: Some(rt2),
        });
    }
    if word & 0x0f00_0010 != 0x0e00_0010 {
        return None;
    }
    let read = word & (1 << 20) != 0;
    let opc1 = (word >> 21) & 7;
    let crn = (word >> 16) & 0xf;
    let opc2 = (word >> 5) & 7;
    if opc1 != 0 {
        return None;
    }
    let action = if read {
        // The ARM926 test-and-clean loops: MRC p15,0,APSR_nzcv,c7,c10,3 / c7,c14,3.
        match (crn, crm, opc2) {
            (7, 10, 3) => Action::WholeCache {
                clean: true,
                invalidate: false,
                instruction: false,
                data: true,
            },
            (7, 14, 3) => Action::WholeCache {
                clean: true,
                invalidate: true,
                instruction: false,
                data: true,
            },
            _ => return None,
        }
    } else {
        use LineOp::{Clean, CleanInvalidate, Invalidate};
        let whole = |clean, invalidate, instruction, data| Action::WholeCache {
            clean,
            invalidate,
            instruction,
            data,
        };
        match (crn, crm, opc2) {
            (1, 0, 0) => Action::WriteSctlr,
            (1, 0, 1) => Action::WriteActlr,
            (7, 13, 1) => Action::PrefetchIcacheLine,
            (2, 0, 0) => Action::WriteTtbr0,
            (2, 0, 1) => Action::WriteTtbr1,
            (2, 0, 2) => Action::WriteTtbcr,
            (13, 0, 0) => Action::WriteFcsePid,
            (13, 0, 1) => Action::WriteContextId,
            (7, 5, 0) => whole(false, false, true, false),
            (7, 5, 1) => Action::LineByMva {
                data: None,
                instruction: true,
            },
            (7, 5, 2) => Action::LineBySetWay {
                data: None,
                instruction: true,
            },
            (7, 6, 0) => whole(false, true, false, true),
            (7, 6, 1) => Action::LineByMva {
                data: Some(Invalidate),
                instruction: false,
            },
            (7, 6, 2) => Action::LineBySetWay {
                data: Some(Invalidate),
                instruction: false,
            },
            (7, 7, 0) => whole(false, true, true, true),
            (7, 7, 1) => Action::LineByMva {
                data: Some(Invalidate),
                instruction: true,
            },
            (7, 7, 2) => Action::LineBySetWay {
                data: Some(Invalidate),
                instruction: true,
            },
            (7, 10, 0) => whole(true, false, false, true),
            (7, 10, 1) => Action::LineByMva {
                data: Some(Clean),
                instruction: false,
            },
            (7, 10, 2) => Action::LineBySetWay {
                data: Some(Clean),
                instruction: false,
            },
            (7, 10, 4) => Action::Drain,
            (7, 5, 6) | (7, 5, 7) => Action::FlushBtc,
            (7, 14, 0) => whole(true, true, false, true),
            (7, 14, 1) => Action::LineByMva {
                data: Some(CleanInvalidate),
                instruction: false,
            },
            (7, 14, 2) => Action::LineBySetWay {
                data: Some(CleanInvalidate),
                instruction: false,
            },
            (7, 15, 0) => whole(true, true, true, true),
            (7, 15, 1) => Action::LineByMva {
                data: Some(CleanInvalidate),
                instruction: true,
            },
            (7, 15, 2) => Action::LineBySetWay {
                data: Some(CleanInvalidate),
                instruction: true,
            },
            (8, 5..=7, 0) => Action::TlbAll,
            (8, 5..=7, 1) => Action::TlbByMva,
            (8, 5..=7, 2) => Action::TlbByAsid,
            _ => return None,
        }
    };
    Some(Cp15 {
        cond,
        action,
        rt,
        rt2: None,
    })
}

impl Cp15 {
    /// Whether the instruction executes with these CPSR flags (N Z C V in
    /// bits 31..28): the plugin's execution callback runs whether or not a
    /// conditional instruction passes its condition.
    pub fn passes(&self, cpsr: u32) -> bool {
        if self.cond == ALWAYS {
            return true;
        }
        let (n, z, c, v) = (
            cpsr & (1 << 31) != 0,
            cpsr & (1 << 30) != 0,
            cpsr & (1 << 29) != 0,
            cpsr & (1 << 28) != 0,
        );
        let base = match self.cond >> 1 {
            0 => z,
            1 => c,
            2 => n,
            3 => v,
            4 => c && !z,
            5 => n == v,
            6 => !z && n == v,
            _ => true,
        };
        // Odd conditions are the negations of the even ones before them.
        if self.cond & 1 == 1 { !base } else { base }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_vacmm_and_linux_emit() {
        // mcr p15, 0, r0, c7, c10, 1 (clean D line)
        let d = decode(0xee07_0f3a).unwrap();
        assert_eq!(
            d.action,
            Action::LineByMva {
                data: Some(LineOp::Clean),
                instruction: false
            }
        );
        assert_eq!(d.rt, 0);
        assert_eq!(d.cond, 0xe);
        // mcr p15, 0, r3, c7, c6, 1 (invalidate D line)
        let d = decode(0xee07_3f36).unwrap();
        assert_eq!(
            d.action,
            Action::LineByMva {
                data: Some(LineOp::Invalidate),
                instruction: false
            }
        );
        assert_eq!(d.rt, 3);
        // mcr p15, 0, r0, c7, c10, 4 (drain) and c7,c10,5 (DMB: ignored)
        assert_eq!(decode(0xee07_0f9a).unwrap().action, Action::Drain);
        assert_eq!(decode(0xee07_0fba), None);
        // mcr p15, 0, r0, c7, c5, 6 (flush the branch target cache)
        assert_eq!(decode(0xee07_0fd5).unwrap().action, Action::FlushBtc);
        // mcr p15, 0, r0, c7, c5, 0 (invalidate I all)
        assert_eq!(
            decode(0xee07_0f15).unwrap().action,
            Action::WholeCache {
                clean: false,
                invalidate: false,
                instruction: true,
                data: false
            }
        );
        // mrc p15, 0, APSR_nzcv, c7, c14, 3 (ARM926 test, clean and invalidate)
        assert_eq!(
            decode(0xee17_ff7e).unwrap().action,
            Action::WholeCache {
                clean: true,
                invalidate: true,
                instruction: false,
                data: true
            }
        );
        // mcr p15, 0, r1, c2, c0, 0 (TTBR0); mcr p15, 0, r2, c13, c0, 1 (CONTEXTIDR)
        assert_eq!(decode(0xee02_1f10).unwrap().action, Action::WriteTtbr0);
        // mcr p15, 0, r0, c1, c0, 1 (ACTLR); mcr p15, 0, r3, c7, c13, 1.
        assert_eq!(decode(0xee01_0f30).unwrap().action, Action::WriteActlr);
        assert_eq!(
            decode(0xee07_3f3d).unwrap().action,
            Action::PrefetchIcacheLine
        );
        assert_eq!(decode(0xee0d_2f30).unwrap().action, Action::WriteContextId);
        // mcr p15, 0, r0, c1, c0, 0 (SCTLR)
        assert_eq!(decode(0xee01_0f10).unwrap().action, Action::WriteSctlr);
        // mcr p15, 0, r0, c8, c7, 1 (TLB by MVA), c8,c7,2 (by ASID)
        assert_eq!(decode(0xee08_0f37).unwrap().action, Action::TlbByMva);
        assert_eq!(decode(0xee08_0f57).unwrap().action, Action::TlbByAsid);
        // mcrr p15, 0, r1, r0, c14 (clean+invalidate D range: r0 start, r1 last)
        let d = decode(0xec40_1f0e).unwrap();
        assert_eq!(
            d.action,
            Action::Block {
                data: Some(LineOp::CleanInvalidate),
                instruction: false
            }
        );
        assert_eq!((d.rt, d.rt2), (1, Some(0)));
        // Reads of ID registers, other coprocessors, and non-coprocessor words.
        assert_eq!(decode(0xee10_0f10), None); // mrc p15, 0, r0, c0, c0, 0 (MIDR)
        assert_eq!(decode(0xee07_0e3a), None); // coprocessor 14
        assert_eq!(decode(0xe12f_ff1e), None); // bx lr
        assert_eq!(decode(0xfe07_0f3a), None); // mcr2
    }

    #[test]
    fn conditions_follow_the_flags() {
        let mut d = decode(0xee07_0f3a).unwrap();
        assert!(d.passes(0));
        d.cond = 0; // EQ
        assert!(d.passes(1 << 30));
        assert!(!d.passes(0));
        d.cond = 1; // NE
        assert!(d.passes(0));
        d.cond = 0xb; // LT: N != V
        assert!(d.passes(1 << 31));
        assert!(!d.passes((1 << 31) | (1 << 28)));
    }
}
