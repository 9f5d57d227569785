//! QEMU `realview-eb-mpcore`: the ARM RealView Emulation Baseboard with
//! an ARM11 MPCore tile, one CPU (RealView EB User Guide, ARM DUI 0303;
//! ARM11 MPCore TRM, DDI 0360; QEMU's hw/arm/realview.c and
//! hw/cpu/realview_mpcore.c).

use crate::QemuCpu;
use crate::drivers::{Tick, gic::Gic, pl011::Pl011, sp804::Sp804};

/// The CPU: the ARM11 MPCore tile.
pub const CPU: Option<QemuCpu> = Some(QemuCpu::Arm11MpCore);
/// The name `VACMM_BOARD` and the runner use.
pub const NAME: &str = "realview-eb-mpcore";
/// SDRAM at 0 (QEMU maps at most 256 MiB there); the runner gives 128 MiB.
pub const RAM_BASE: u32 = 0x0000_0000;
/// QEMU loads the ELF at its link addresses.
pub const IMAGE_START: u32 = 0x0000_0000;
/// Low vectors, at the head of the image (the ARM11 MPCore has no VBAR).
pub const VECTORS_AT: u32 = 0x0000_0000;
/// Device windows mapped VA = PA: the board's peripherals (UART0, timers)
/// and the MPCore's private region (SCU, GIC CPU interface, distributor)
/// at its PERIPHBASE, 0x1010_0000.
pub const DEVICES: &[(u32, u32)] = &[(0x1000_0000, 1 << 20), (0x1010_0000, 1 << 20)];

/// UART0 (PL011), QEMU's serial0.
// SAFETY (each `new` below): the device's registers on this board, per
// the memory map above.
pub const CONSOLE: Pl011 = unsafe { Pl011::new(0x1000_9000) };

/// SP804 timer 0 (0x1001_1000): board line 4, which the MPCore's
/// distributor numbers 33.
pub static TICK: Tick<Sp804, Gic> = Tick::new(
    unsafe { Sp804::new(0x1001_1000) },
    unsafe { Gic::new(0x1010_1000, 0x1010_0100) },
    33,
);
