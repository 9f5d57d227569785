//! The BCM2835's (Raspberry Pi Zero / 1) system timer and interrupt
//! controller (BCM2835 ARM Peripherals, §12 and §7; QEMU's
//! hw/timer/bcm2835_systmr.c and hw/intc/bcm2835_ic.c).
//!
//! The system timer is a free-running 1 MHz counter with four one-shot
//! compare registers; compares 0 and 2 belong to the VideoCore, so the ARM
//! uses 1 or 3. Its interrupt is re-armed from the counter's *current*
//! value: re-armed from the last compare, a handler more than a period late
//! (host load under QEMU) would leave the compare behind the counter and
//! the next match 71 minutes away.

use portable_atomic::{AtomicU32, Ordering};

use super::{InterruptController, Timer, read, write};

/// Control/status: bit n = compare n matched (write 1 to clear).
const CS: u32 = 0x00;
/// Counter, low 32 bits.
const CLO: u32 = 0x04;
/// Compare n at `C0 + 4 n`.
const C0: u32 = 0x0c;

/// The system timer at `base`, on compare `channel` (1 or 3), with the
/// period it re-arms for.
pub struct SystemTimer {
    base: u32,
    channel: u32,
    period_us: AtomicU32,
}

impl SystemTimer {
    /// # Safety
    /// `base` must be the BCM2835 system timer's registers, nothing else.
    pub const unsafe fn new(base: u32, channel: u32) -> Self {
        assert!(
            channel == 1 || channel == 3,
            "compares 0 and 2 are the VideoCore's"
        );
        SystemTimer {
            base,
            channel,
            period_us: AtomicU32::new(0),
        }
    }

    fn arm(&self) {
        let period = self.period_us.load(Ordering::Relaxed).max(1);
        let now = read(self.base, CLO);
        write(self.base, C0 + 4 * self.channel, now.wrapping_add(period));
    }
}

impl Timer for SystemTimer {
    fn start(&self, period_us: u32) {
        self.period_us.store(period_us, Ordering::Relaxed);
        write(self.base, CS, 1 << self.channel);
        self.arm();
    }

    fn stop(&self) {
        // A compare cannot be switched off: park it a full wrap away.
        self.period_us.store(u32::MAX, Ordering::Relaxed);
        self.arm();
        write(self.base, CS, 1 << self.channel);
    }

    fn take_interrupt(&self) -> bool {
        let matched = read(self.base, CS) & (1 << self.channel) != 0;
        if matched {
            write(self.base, CS, 1 << self.channel);
            self.arm();
        }
        matched
    }
}

/// IRQ pending 1: lines 0–31 raised and enabled (QEMU ANDs the enables in).
const PENDING_1: u32 = 0x04;
const ENABLE_1: u32 = 0x10;
const DISABLE_1: u32 = 0x1c;

/// The ARM interrupt controller at its base address; `line` is a "GPU"
/// interrupt 0–31 (the system timer's compare n is line n).
pub struct InterruptControllerBcm(u32);

impl InterruptControllerBcm {
    /// # Safety
    /// `base` must be the BCM2835 ARM interrupt controller's registers.
    pub const unsafe fn new(base: u32) -> Self {
        InterruptControllerBcm(base)
    }
}

/// Lines 0–31 only: the first bank, where the system timer's compares are.
impl InterruptController for InterruptControllerBcm {
    const LINES: u32 = 32;

    fn enable(&self, line: u32) {
        write(self.0, ENABLE_1, 1 << line);
    }

    fn disable(&self, line: u32) {
        write(self.0, DISABLE_1, 1 << line);
    }

    fn raised(&self, line: u32) -> bool {
        read(self.0, PENDING_1) & (1 << line) != 0
    }
}
