//! QEMU `raspi0` / `raspi1ap`, and the real Raspberry Pi Zero / 1: the
//! BCM2835 with an ARM1176JZF-S (BCM2835 ARM Peripherals; QEMU's
//! hw/arm/raspi.c and bcm2835_peripherals.c).
//!
//! The Pi's firmware loads `kernel.img` at 0x8000 and jumps there, in SVC
//! mode with the MMU off; QEMU loads the ELF at the same addresses (or,
//! with `-bios kernel.img`, the raw image, as the firmware does). The
//! vector table heads the image and is copied to 0 at boot.

use crate::QemuCpu;
use crate::drivers::bcm2835::{InterruptControllerBcm, SystemTimer};
use crate::drivers::{Tick, pl011::Pl011};

/// The CPU: the BCM2835's ARM1176JZF-S.
pub const CPU: Option<QemuCpu> = Some(QemuCpu::Arm1176);
/// The name `VACMM_BOARD` and the runner use (`raspi1ap` is the same
/// board, as a Pi 1 A+).
pub const NAME: &str = if cfg!(vacmm_board = "raspi1ap") {
    "raspi1ap"
} else {
    "raspi0"
};
/// 512 MiB of SDRAM at 0 (the top 64 MiB lent to the VideoCore); the
/// kernels use the first 128 MiB.
pub const RAM_BASE: u32 = 0x0000_0000;
/// Where the firmware loads `kernel.img` (Pi Zero / 1: 0x8000).
pub const IMAGE_START: u32 = 0x0000_8000;
/// At the head of the image; the start-up copies it to 0.
pub const VECTORS_AT: u32 = 0x0000_8000;
/// Device windows mapped VA = PA: the system timer and the interrupt
/// controller (0x2000_3000, 0x2000_B200), and UART0 (0x2020_1000).
pub const DEVICES: &[(u32, u32)] = &[(0x2000_0000, 1 << 20), (0x2020_0000, 1 << 20)];

/// UART0 (PL011), on GPIO 14/15 of the Pi Zero / 1, and QEMU's serial0.
// SAFETY (each `new` below): the device's registers on the BCM2835, per
// its ARM Peripherals manual.
pub const CONSOLE: Pl011 = unsafe { Pl011::new(0x2020_1000) };

/// The system timer's compare 1 (compares 0 and 2 are the VideoCore's),
/// line 1 of the ARM interrupt controller's first bank.
pub static TICK: Tick<SystemTimer, InterruptControllerBcm> = Tick::new(
    unsafe { SystemTimer::new(0x2000_3000, 1) },
    unsafe { InterruptControllerBcm::new(0x2000_b200) },
    1,
);
