//! QEMU `kzm`: the Kyoto Microcomputer KZM-ARM11-01, an i.MX31 with an
//! ARM1136JF-S r1p3 (i.MX31 Reference Manual, memory map in chapter 2;
//! QEMU's hw/arm/kzm.c and fsl-imx31.c).
//!
//! RAM starts at 0x8000_0000. Address 0 is the i.MX31's boot ROM, where
//! the CPU fetches its (low) vectors: the vector table is linked there and
//! QEMU's ELF loader writes it into the ROM; the ARM1136 has no VBAR to
//! move it. On a real KZM board the ROM is the SoC's own, so the vectors
//! would come from the MMU (high vectors, or VA 0 mapped to RAM).

use crate::QemuCpu;
use crate::drivers::Tick;
use crate::drivers::imx::{Avic, Epit, ImxUart};

/// The CPU: the i.MX31's ARM1136JF-S (r1p3 in QEMU).
pub const CPU: Option<QemuCpu> = Some(QemuCpu::Arm1136);
/// The name `VACMM_BOARD` and the runner use.
pub const NAME: &str = "kzm";
/// SDRAM at 0x8000_0000; the runner gives it 128 MiB.
pub const RAM_BASE: u32 = 0x8000_0000;
/// QEMU loads the ELF at its link addresses.
pub const IMAGE_START: u32 = 0x8000_0000;
/// The boot ROM at 0, where the CPU fetches its vectors.
pub const VECTORS_AT: u32 = 0x0000_0000;
/// Device windows mapped VA = PA: UART1 (AIPS1), EPIT1 (AIPS2), AVIC.
pub const DEVICES: &[(u32, u32)] = &[
    (0x43f0_0000, 1 << 20),
    (0x53f0_0000, 1 << 20),
    (0x6800_0000, 1 << 20),
];

/// UART1, QEMU's serial0.
// SAFETY (each `new` below): the device's registers on the i.MX31, per
// its reference manual's memory map.
pub const CONSOLE: ImxUart = unsafe { ImxUart::new(0x43f9_0000) };

/// EPIT1 on AVIC line 28.
pub static TICK: Tick<Epit, Avic> = Tick::new(
    unsafe { Epit::new(0x53f9_4000) },
    unsafe { Avic::new(0x6800_0000) },
    28,
);
