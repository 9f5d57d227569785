//! Encodings from LLVM's assembler (`llvm-mc -triple=armv6k-none-eabi
//! -show-encoding`, and `thumbv6k` for Thumb), not from the decoder's own
//! reading of the manual.

use super::*;
use FaultAccess::{Read, Write};

const ARM: [(&str, u32, Option<FaultAccess>); 37] = [
    ("ldr r1, [r0]", 0xe590_1000, Some(Read)),
    ("str r1, [r0, #4]", 0xe580_1004, Some(Write)),
    ("ldrb r1, [r0, r2]", 0xe7d0_1002, Some(Read)),
    ("strb r1, [r0], #1", 0xe4c0_1001, Some(Write)),
    ("ldrt r1, [r0]", 0xe4b0_1000, Some(Read)),
    ("strt r1, [r0]", 0xe4a0_1000, Some(Write)),
    ("ldrh r1, [r0]", 0xe1d0_10b0, Some(Read)),
    ("strh r1, [r0, #2]", 0xe1c0_10b2, Some(Write)),
    ("ldrsb r1, [r0]", 0xe1d0_10d0, Some(Read)),
    ("ldrsh r1, [r0, r2]", 0xe190_10f2, Some(Read)),
    // Bit 20 is clear in all four: the first and third are loads.
    ("ldrd r2, r3, [r0]", 0xe1c0_20d0, Some(Read)),
    ("strd r2, r3, [r0, #8]", 0xe1c0_20f8, Some(Write)),
    ("ldrd r2, r3, [r0, r1]", 0xe180_20d1, Some(Read)),
    ("strd r2, r3, [r0, -r1]", 0xe100_20f1, Some(Write)),
    ("ldm r0, {r1, r2}", 0xe890_0006, Some(Read)),
    ("push {r4, lr}", 0xe92d_4010, Some(Write)),
    ("pop {r4, pc}", 0xe8bd_8010, Some(Read)),
    ("swp r1, r2, [r0]", 0xe100_1092, Some(Write)),
    ("swpb r1, r2, [r0]", 0xe140_1092, Some(Write)),
    ("ldrex r1, [r0]", 0xe190_1f9f, Some(Read)),
    ("strex r2, r1, [r0]", 0xe180_2f91, Some(Write)),
    ("ldc p14, c5, [r0]", 0xed90_5e00, Some(Read)),
    ("stc p14, c5, [r0]", 0xed80_5e00, Some(Write)),
    ("ldreq r1, [r0]", 0x0590_1000, Some(Read)),
    ("srsdb sp!, #19", 0xf96d_0513, Some(Write)),
    ("rfeia sp!", 0xf8bd_0a00, Some(Read)),
    ("add r1, r2, r3", 0xe082_1003, None),
    ("mul r1, r2, r3", 0xe001_0392, None),
    ("umull r1, r2, r3, r4", 0xe082_1493, None),
    ("mcr p15, 0, r0, c7, c10, 4", 0xee07_0f9a, None),
    ("mcrr p15, 0, r0, r1, c14", 0xec41_0f0e, None),
    // LDC with P = U = W = 0 (bits 24:21 = 0000): undefined.
    ("(undefined) 0xec10_5e00", 0xec10_5e00, None),
    ("pld [r0]", 0xf5d0_f000, None),
    ("pld [r0, r1]", 0xf7d0_f001, None),
    ("bx lr", 0xe12f_ff1e, None),
    ("svc 0", 0xef00_0000, None),
    ("sxth r0, r1", 0xe6bf_0071, None),
];

const THUMB: [(&str, u16, Option<FaultAccess>); 29] = [
    ("ldr r1, [pc, #4]", 0x4901, Some(Read)),
    ("str r1, [r0, r2]", 0x5081, Some(Write)),
    ("strh r1, [r0, r2]", 0x5281, Some(Write)),
    ("strb r1, [r0, r2]", 0x5481, Some(Write)),
    // Bit 11 is clear: a bare test of it takes this load for a write.
    ("ldrsb r1, [r0, r2]", 0x5681, Some(Read)),
    ("ldr r1, [r0, r2]", 0x5881, Some(Read)),
    ("ldrh r1, [r0, r2]", 0x5a81, Some(Read)),
    ("ldrb r1, [r0, r2]", 0x5c81, Some(Read)),
    ("ldrsh r1, [r0, r2]", 0x5e81, Some(Read)),
    ("str r1, [r0, #4]", 0x6041, Some(Write)),
    ("ldr r1, [r0, #4]", 0x6841, Some(Read)),
    ("strb r1, [r0, #1]", 0x7041, Some(Write)),
    ("ldrb r1, [r0, #1]", 0x7841, Some(Read)),
    ("strh r1, [r0, #2]", 0x8041, Some(Write)),
    ("ldrh r1, [r0, #2]", 0x8841, Some(Read)),
    ("str r1, [sp, #4]", 0x9101, Some(Write)),
    ("ldr r1, [sp, #4]", 0x9901, Some(Read)),
    ("stm r0!, {r1, r2}", 0xc006, Some(Write)),
    ("ldm r0!, {r1, r2}", 0xc806, Some(Read)),
    ("push {r4, lr}", 0xb510, Some(Write)),
    ("pop {r4, pc}", 0xbd10, Some(Read)),
    ("adds r1, r2, r3", 0x18d1, None),
    ("mov r8, r9", 0x46c8, None),
    ("bx lr", 0x4770, None),
    ("add sp, #8", 0xb002, None),
    ("sxth r0, r1", 0xb208, None),
    ("rev r0, r1", 0xba08, None),
    ("bkpt #0", 0xbe00, None),
    ("svc #0", 0xdf00, None),
];

#[test]
fn every_arm_load_and_store_is_read_by_its_kind_not_by_bit_20_alone() {
    for (text, word, expected) in ARM {
        let want = expected.ok_or(NotALoadOrStore {
            instruction: word,
            thumb: false,
        });
        assert_eq!(arm_access(word), want, "{text} ({word:#010x})");
    }
}

#[test]
fn every_thumb_load_and_store_is_read_by_its_kind_not_by_bit_11_alone() {
    for (text, half, expected) in THUMB {
        let want = expected.ok_or(NotALoadOrStore {
            instruction: u32::from(half),
            thumb: true,
        });
        assert_eq!(thumb_access(half), want, "{text} ({half:#06x})");
    }
}

/// The twin: the advice the guide used to give (a write when bit 20 is
/// clear) gets LDRD wrong, which is why the decoder exists.
#[test]
fn bit_20_alone_takes_ldrd_for_a_write() {
    let bit_20_alone = |word: u32| load_if(word & (1 << 20) != 0);
    let wrong: Vec<&str> = ARM
        .iter()
        .filter(|(_, word, expected)| expected.is_some_and(|e| e != bit_20_alone(*word)))
        .map(|(text, ..)| *text)
        .collect();
    assert_eq!(wrong, ["ldrd r2, r3, [r0]", "ldrd r2, r3, [r0, r1]"]);
}

#[test]
fn no_word_panics_and_the_refusal_names_it() {
    let mut x = crate::xorshift::XorShift(0x1234_5678);
    for _ in 0..100_000 {
        let word = x.next();
        let _ = arm_access(word);
        let _ = thumb_access(word as u16);
    }
    let refused = arm_access(0xe082_1003).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the ARM instruction 0xe0821003 is not a load or store, so it cannot have taken a data abort"
    );
}
