//! ARM PrimeCell PL011 UART (versatilepb, RealView, the BCM2835's UART0):
//! data register and the flag register's "transmit FIFO full" bit (PL011
//! TRM, DDI 0183, §3.3.1 and §3.3.3), and the control register's enables.
//! The baud rate is left as the boot loader set it (the Pi's firmware,
//! with `enable_uart=1`); QEMU has none.

use super::{Uart, read, write};

/// Data register.
const UARTDR: u32 = 0x00;
/// Flag register; bit 5 TXFF = transmit FIFO full.
const UARTFR: u32 = 0x18;
const UARTFR_TXFF: u32 = 1 << 5;

/// Control register: UART, transmit and receive enables (§3.3.8).
const UARTCR: u32 = 0x30;
const UARTCR_ENABLES: u32 = (1 << 0) | (1 << 8) | (1 << 9);

/// A PL011 at its base address.
pub struct Pl011(u32);

impl Pl011 {
    /// # Safety
    /// `base` must be a PL011's registers, nothing else.
    pub const unsafe fn new(base: u32) -> Self {
        Pl011(base)
    }
}

impl Uart for Pl011 {
    fn init(&self) {
        write(self.0, UARTCR, read(self.0, UARTCR) | UARTCR_ENABLES);
    }

    fn write_byte(&self, byte: u8) {
        while read(self.0, UARTFR) & UARTFR_TXFF != 0 {}
        write(self.0, UARTDR, u32::from(byte));
    }
}
