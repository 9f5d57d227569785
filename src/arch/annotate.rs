//! Annotations for a cache sanitizer: facts the kernel knows and a cache
//! model following the CPU cannot see. Two: "these bytes hold dead data"
//! (a freed frame, an exiting process's private page), so that dropping
//! their dirty lines unwritten is not reported as a lost write; and "a new
//! phase begins" with a label, which names the reports that follow.
//!
//! Each annotation is a sequence of instructions that does nothing on the
//! CPU (and on QEMU) but that `qemu/cachesan` recognises when it translates
//! the code — Valgrind's client requests work the same way:
//!
//! ```text
//!   mov r12, r12, ror #7     e1a0c3ec   } r12 rotated by 32: unchanged
//!   mov r12, r12, ror #25    e1a0ccec   }
//!   orr r0, r0, r0           e1800000   request: bytes [r0, r0 + r1) of
//!                                       physical memory are dead
//!   orr r1, r1, r1           e1811001   or: the phase named by the
//!                                       NUL-terminated string at virtual
//!                                       address r0 begins
//! ```
//!
//! Code in other languages writes the same words (`qemu/linux/init/init.c`'s
//! `phase` is the C version).
//!
//! The sequence must sit in one translation block to be seen, which a
//! straight run of three instructions does unless it straddles a page; a
//! missed annotation only costs a report the sanitizer would not have made.
//! ARM state only (the `-none-eabi` ARM targets): the encodings are A32.
//! The encodings are public on every target, for the sanitizer to match.

#[cfg(target_arch = "arm")]
use crate::addr::PhysAddr;

/// The first word of every annotation.
pub const MAGIC: [u32; 2] = [0xe1a0_c3ec, 0xe1a0_ccec];
/// The request word of `declare_dead` (ARM builds only).
pub const DECLARE_DEAD: u32 = 0xe180_0000;
/// The request word of `phase`.
pub const PHASE: u32 = 0xe181_1001;

/// Tells a cache sanitizer that a phase called `label` begins: its reports
/// from here on carry the label. No effect on the CPU.
#[cfg(target_arch = "arm")]
#[inline(always)]
pub fn phase(label: &core::ffi::CStr) {
    // SAFETY: as for `declare_dead`; `orr r1, r1, r1` changes nothing. The
    // sanitizer reads the string, the CPU does not.
    unsafe {
        core::arch::asm!(
            "mov r12, r12, ror #7",
            "mov r12, r12, ror #25",
            "orr r1, r1, r1",
            in("r0") label.as_ptr(),
            out("r12") _,
            // `readonly`, not `nomem`: the sanitizer reads the label, so
            // it must be in memory when the annotation runs.
            options(readonly, nostack, preserves_flags),
        );
    }
}

/// Tells a cache sanitizer that the `len` bytes at physical `pa` hold dead
/// data. No effect on the CPU.
#[cfg(target_arch = "arm")]
#[inline(always)]
pub fn declare_dead(pa: PhysAddr, len: u32) {
    // SAFETY: two rotations of r12 by 7 and 25 bits leave it unchanged (it
    // is still declared clobbered), and `orr r0, r0, r0` changes nothing;
    // no memory or flags are touched.
    unsafe {
        core::arch::asm!(
            "mov r12, r12, ror #7",
            "mov r12, r12, ror #25",
            "orr r0, r0, r0",
            in("r0") pa.as_u32(),
            in("r1") len,
            out("r12") _,
            options(nomem, nostack, preserves_flags),
        );
    }
}
