//! The board the kernel is built for, chosen at build time by
//! `VACMM_BOARD` (`versatilepb` when unset; see `build.rs`).
//!
//! A board is one file here. It names, as `pub` items:
//!
//! | item | what |
//! |---|---|
//! | `CPU` | the SoC's CPU, or `None` where QEMU's `-cpu` chooses |
//! | `NAME` | the name `VACMM_BOARD` and `qemu/runner` use |
//! | `RAM_BASE` | physical address of RAM (MiB-aligned); the map of `memory.ld` is laid from it |
//! | `IMAGE_START` | where the image is linked and loaded, in RAM's first 16 MiB |
//! | `VECTORS_AT` | where the vector table is linked: `0`, or `IMAGE_START` (start-up copies it to 0) |
//! | `DEVICES` | device windows, MiB-aligned, mapped VA = PA as Device memory |
//! | `CONSOLE` | a [`Uart`](crate::drivers::Uart) |
//! | `TICK` | a [`Tick`](crate::drivers::Tick): a timer on an interrupt controller line |
//!
//! `build.rs` reads the three addresses from the file (one line each,
//! `pub const NAME: u32 = 0x…;`) to write the linker's memory map, so each
//! is written once. docs/porting.md walks through adding a board.

#[cfg(vacmm_board_file = "kzm")]
#[path = "kzm.rs"]
mod chosen;
#[cfg(vacmm_board_file = "raspi")]
#[path = "raspi.rs"]
mod chosen;
#[cfg(vacmm_board_file = "realview_eb_mpcore")]
#[path = "realview_eb_mpcore.rs"]
mod chosen;
#[cfg(vacmm_board_file = "versatilepb")]
#[path = "versatilepb.rs"]
mod chosen;

pub use chosen::*;

use crate::drivers::Uart;

/// First thing at boot, before anything prints or can fault: puts the
/// vector table where the CPU looks for it (low vectors, address 0) when
/// the image was loaded elsewhere, and readies the console.
pub(crate) fn init() {
    if VECTORS_AT != 0 {
        unsafe extern "C" {
            static __svector: u8;
            static __evector: u8;
        }
        let start = &raw const __svector;
        let len = (&raw const __evector as usize) - (start as usize);
        // SAFETY: the table (eight `ldr pc, =handler` and their literal
        // pool, all in aarch32-rt's .vector_table section, __svector ..
        // __evector, 32-byte aligned) loads only absolute addresses, PC-
        // relatively, so a copy at 0 works as well (64 bytes: below the
        // boot loader's ATAG list at 0x100). Address 0 is RAM no
        // Rust object lives in (the image starts at IMAGE_START above it);
        // Rust may not name it through a pointer, hence the assembly.
        unsafe {
            core::arch::asm!(
                "1: ldr {word}, [{from}], #4",
                "str {word}, [{to}], #4",
                "subs {left}, {left}, #4",
                "bhi 1b",
                from = inout(reg) start => _,
                to = inout(reg) 0usize => _,
                left = inout(reg) len => _,
                word = out(reg) _,
            );
        }
        // The copy must reach memory before an exception fetches it, and
        // no stale instruction may remain (a boot loader may leave the
        // I-cache on): drain, then invalidate the I-cache (both ARMv5 and
        // ARMv6 encodings).
        vacmm::arch::cp15::drain_write_buffer(0);
        vacmm::arch::cp15::invalidate_icache_all(0);
    }
    CONSOLE.init();
}
