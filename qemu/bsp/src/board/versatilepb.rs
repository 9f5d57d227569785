//! QEMU `versatilepb`: the ARM Versatile/PB926EJ-S baseboard, booted with
//! any of the CPUs (`-cpu arm926`, `arm1136`, `arm1176`, `arm11mpcore`).
//! Memory map: Versatile/PB926EJ-S User Guide (ARM DUI 0224), §4.1.

use crate::QemuCpu;
use crate::drivers::{Tick, pl011::Pl011, pl190::Pl190, sp804::Sp804};

/// The CPU: any CPU QEMU offers (`-cpu`).
pub const CPU: Option<QemuCpu> = None;
/// The name `VACMM_BOARD` and the runner use.
pub const NAME: &str = "versatilepb";
/// SDRAM at 0; the runner gives it 128 MiB (`-m 128M`).
pub const RAM_BASE: u32 = 0x0000_0000;
/// QEMU loads the ELF at its link addresses.
pub const IMAGE_START: u32 = 0x0000_0000;
/// Low vectors, at the head of the image (SCTLR.V = 0).
pub const VECTORS_AT: u32 = 0x0000_0000;
/// Device windows mapped VA = PA: UART0, the timers and the VIC all lie in
/// the 2 MiB from 0x1000_0000.
pub const DEVICES: &[(u32, u32)] = &[(0x1000_0000, 2 << 20)];

/// UART0, which QEMU's `-nographic` connects to standard output.
// SAFETY (each `new` below): the device's registers on this board, per
// the memory map above.
pub const CONSOLE: Pl011 = unsafe { Pl011::new(0x101f_1000) };

/// SP804 timer 0 (0x101E_2000) on line 4 of the primary VIC (0x1014_0000).
pub static TICK: Tick<Sp804, Pl190> = Tick::new(
    unsafe { Sp804::new(0x101e_2000) },
    unsafe { Pl190::new(0x1014_0000) },
    4,
);
