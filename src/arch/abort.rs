//! Whether a data abort on ARMv5 was a read or a write, from the
//! instruction that took it.
//!
//! ARMv6 reports it in DFSR bit 11 (WnR, ARM1136 TRM §3.3.20); the ARM926's
//! DFSR has no such bit (ARM926EJ-S TRM §2.3.6), so the abort handler reads
//! the instruction at the aborted PC and decodes it. Bit 20 (L) alone is
//! the usual advice and it is wrong for the "extra" loads and stores: LDRD
//! has L clear and is a load (ARM ARM DDI 0100I §A5.3, addressing mode 3:
//! LDRD is `L = 0, S = 1, H = 0`), so a kernel that reads bit 20 takes a
//! faulting LDRD for a write and refuses it on a read-only mapping. Linux
//! handles the same case apart (`do_ldrd_abort` in
//! `arch/arm/mm/abort-macro.S`). A swap (SWP, SWPB) reads and writes the
//! word: it is a write, since it needs write permission.
//!
//! ```
//! use vacmm::arch::abort::{arm_access, thumb_access};
//! use vacmm::mmu::FaultAccess;
//!
//! assert_eq!(arm_access(0xe1c0_20d0), Ok(FaultAccess::Read)); // ldrd r2, [r0]
//! assert_eq!(arm_access(0xe1c0_20f0), Ok(FaultAccess::Write)); // strd r2, [r0]
//! assert_eq!(arm_access(0xe590_1000), Ok(FaultAccess::Read)); // ldr r1, [r0]
//! assert_eq!(thumb_access(0x5601), Ok(FaultAccess::Read)); // ldrsb r1, [r0, r0]
//! assert!(arm_access(0xe082_1003).is_err()); // add r1, r2, r3
//! ```
//!
//! In the handler: `thumb_access` when the SPSR's T bit (5) is set (read a
//! halfword at the PC; ARMv5 and ARMv6 Thumb has no 32-bit loads or stores),
//! else `arm_access` on the word at the PC.

use core::fmt;

use crate::mmu::FaultAccess;

/// The instruction at the aborted PC is not a load or store, so it cannot
/// have taken a data abort: the PC or the instruction set was read wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotALoadOrStore {
    /// The instruction (a Thumb halfword in the low 16 bits).
    pub instruction: u32,
    /// Whether it was decoded as Thumb.
    pub thumb: bool,
}

impl fmt::Display for NotALoadOrStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.thumb {
            write!(f, "the Thumb instruction {:#06x}", self.instruction)?;
        } else {
            write!(f, "the ARM instruction {:#010x}", self.instruction)?;
        }
        f.write_str(" is not a load or store, so it cannot have taken a data abort")
    }
}

impl core::error::Error for NotALoadOrStore {}

fn load_if(l: bool) -> FaultAccess {
    if l {
        FaultAccess::Read
    } else {
        FaultAccess::Write
    }
}

fn bits(word: u32, high: u32, low: u32) -> u32 {
    (word >> low) & ((1 << (high - low + 1)) - 1)
}

/// The access an ARM (32-bit) instruction makes, from its encoding (ARM ARM
/// DDI 0100I §A3.1, figure A3-1, and §A3.13 for ARMv6's LDREX/STREX).
pub fn arm_access(instruction: u32) -> Result<FaultAccess, NotALoadOrStore> {
    let not = NotALoadOrStore {
        instruction,
        thumb: false,
    };
    let l = instruction & (1 << 20) != 0;
    let unconditional = bits(instruction, 31, 28) == 0xf;
    match bits(instruction, 27, 25) {
        // LDR/STR(B)(T), immediate offset; register offset when bit 4 is
        // clear (set: ARMv6 media instructions, or undefined).
        // Unconditional, both are PLD, which does not abort.
        0b010 if !unconditional => Ok(load_if(l)),
        0b011 if instruction & (1 << 4) == 0 && !unconditional => Ok(load_if(l)),
        // LDM/STM; unconditional: RFE (a load) / SRS (a store), same L.
        0b100 => Ok(load_if(l)),
        // LDC/STC (LDC2/STC2 when unconditional); MCRR/MRRC (bits 24:21 =
        // 0010) move registers only, and P = U = W = 0 with bit 22 clear
        // (0000) is undefined.
        0b110 if !matches!(bits(instruction, 24, 21), 0b0010 | 0b0000) => Ok(load_if(l)),
        0b000 if !unconditional && instruction & 0x90 == 0x90 => extra_access(instruction, l, not),
        _ => Err(not),
    }
}

/// The "extra" loads and stores and the swaps: bits 27:25 = 000 with bits 7
/// and 4 set (ARM ARM DDI 0100I figure A3-5).
fn extra_access(
    instruction: u32,
    l: bool,
    not: NotALoadOrStore,
) -> Result<FaultAccess, NotALoadOrStore> {
    match bits(instruction, 6, 5) {
        // Multiplies (bit 24 clear), SWP/SWPB (bits 24:23 = 10, 21:20 = 00),
        // LDREX/STREX and ARMv6K's byte/halfword/doubleword forms (bits
        // 24:23 = 11).
        0b00 => match bits(instruction, 24, 23) {
            0b10 if bits(instruction, 21, 20) == 0 && bits(instruction, 11, 8) == 0 => {
                Ok(FaultAccess::Write)
            }
            0b11 => Ok(load_if(l)),
            _ => Err(not),
        },
        // STRH (L clear) or LDRH (L set).
        0b01 => Ok(load_if(l)),
        // With L set, LDRSB and LDRSH; with L clear, LDRD (0b10) and STRD
        // (0b11): the case a bare test of bit 20 gets wrong.
        _ if l => Ok(FaultAccess::Read),
        0b10 => Ok(FaultAccess::Read),
        _ => Ok(FaultAccess::Write),
    }
}

/// The access a 16-bit Thumb instruction makes (ARM ARM DDI 0100I §A6.2,
/// figure A6-1).
pub fn thumb_access(halfword: u16) -> Result<FaultAccess, NotALoadOrStore> {
    let h = u32::from(halfword);
    let l = h & (1 << 11) != 0;
    match bits(h, 15, 12) {
        // LDR (literal pool).
        0b0100 if bits(h, 11, 11) == 1 => Ok(FaultAccess::Read),
        // Register offset: STR, STRH, STRB (opcode 000-010) store; LDRSB
        // (011) has bit 11 clear and is a load, as are the rest.
        0b0101 => Ok(load_if(bits(h, 11, 9) >= 0b011)),
        // Immediate offset (word, byte, halfword), SP-relative, LDMIA/STMIA.
        0b0110 | 0b0111 | 0b1000 | 0b1001 | 0b1100 => Ok(load_if(l)),
        // PUSH (1011 010x) / POP (1011 110x).
        0b1011 if bits(h, 10, 9) == 0b10 => Ok(load_if(l)),
        _ => Err(NotALoadOrStore {
            instruction: h,
            thumb: true,
        }),
    }
}

#[cfg(test)]
mod tests;
