//! The i.MX31's UART, EPIT timer and AVIC interrupt controller (i.MX31
//! Reference Manual, MCIMX31RM: chapters 42 UART, 27 EPIT, 9 AVIC; QEMU's
//! hw/char/imx_serial.c, hw/timer/imx_epit.c, hw/intc/imx_avic.c).

use super::{InterruptController, Timer, Uart, read, write};

/// UART transmit register, control 2, test register.
const UTXD: u32 = 0x40;
const UCR1: u32 = 0x80;
const UCR2: u32 = 0x84;
const UTS: u32 = 0xb4;
const UCR1_UARTEN: u32 = 1 << 0;
/// UCR2: SRST (bit 0) is active low, so it must stay 1 (writing 0
/// resets the UART and turns its transmitter off); RXEN, TXEN, 8-bit
/// words (WS), ignore RTS (IRTS).
const UCR2_RUN: u32 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 5) | (1 << 14);
/// UTS bit 4: transmit FIFO full.
const UTS_TXFULL: u32 = 1 << 4;

/// An i.MX UART at its base address.
pub struct ImxUart(u32);

impl ImxUart {
    /// # Safety
    /// `base` must be an i.MX UART's registers, nothing else.
    pub const unsafe fn new(base: u32) -> Self {
        ImxUart(base)
    }
}

impl Uart for ImxUart {
    fn init(&self) {
        // A boot loader may have left it off (QEMU leaves it on).
        write(self.0, UCR1, read(self.0, UCR1) | UCR1_UARTEN);
        write(self.0, UCR2, read(self.0, UCR2) | UCR2_RUN);
    }

    fn write_byte(&self, byte: u8) {
        while read(self.0, UTS) & UTS_TXFULL != 0 {}
        write(self.0, UTXD, u32::from(byte));
    }
}

/// EPIT control, status, load registers.
const CR: u32 = 0x00;
const SR: u32 = 0x04;
const LR: u32 = 0x08;
const CMPR: u32 = 0x0c;
/// CR: enable, count from the load value (ENMOD), compare interrupt
/// (OCIEN), reload (RLD), keep counting in Wait mode (WAITEN: WFI may
/// enter it, and the tick must wake the CPU), clock source 3 = the
/// 32 768 Hz CKIL.
const CR_EN: u32 = 1 << 0;
const CR_MODE: u32 = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 19) | (3 << 24);
/// SR bit 0: the counter reached the compare value (write 1 to clear).
const SR_OCIF: u32 = 1;
const CKIL_HZ: u64 = 32_768;

/// An EPIT at its base address, counting the 32 kHz clock down to 0.
pub struct Epit(u32);

impl Epit {
    /// # Safety
    /// `base` must be an EPIT's registers, nothing else.
    pub const unsafe fn new(base: u32) -> Self {
        Epit(base)
    }
}

impl Timer for Epit {
    fn start(&self, period_us: u32) {
        let ticks = (u64::from(period_us) * CKIL_HZ / 1_000_000).max(1);
        write(self.0, CR, 0);
        write(self.0, CR, CR_MODE);
        write(self.0, LR, (ticks - 1) as u32);
        write(self.0, CMPR, 0);
        write(self.0, SR, SR_OCIF);
        write(self.0, CR, CR_MODE | CR_EN);
    }

    fn stop(&self) {
        write(self.0, CR, 0);
        write(self.0, SR, SR_OCIF);
    }

    fn take_interrupt(&self) -> bool {
        let raised = read(self.0, SR) & SR_OCIF != 0;
        if raised {
            write(self.0, SR, SR_OCIF);
        }
        raised
    }
}

/// AVIC: enable / disable by number, raw sources (high word: 32–63).
const INTENNUM: u32 = 0x08;
const INTDISNUM: u32 = 0x0c;
const INTSRCH: u32 = 0x48;
const INTSRCL: u32 = 0x4c;

/// The AVIC at its base address (lines as IRQs: INTTYPE resets to 0).
pub struct Avic(u32);

impl Avic {
    /// # Safety
    /// `base` must be the AVIC's registers, nothing else.
    pub const unsafe fn new(base: u32) -> Self {
        Avic(base)
    }
}

impl InterruptController for Avic {
    const LINES: u32 = 64;

    fn enable(&self, line: u32) {
        write(self.0, INTENNUM, line);
    }

    fn disable(&self, line: u32) {
        write(self.0, INTDISNUM, line);
    }

    fn raised(&self, line: u32) -> bool {
        let sources = if line < 32 {
            read(self.0, INTSRCL)
        } else {
            read(self.0, INTSRCH)
        };
        sources & (1 << (line % 32)) != 0
    }
}
