//! The few devices a board gives the kernels: a UART to print on, and a
//! timer whose interrupt reaches the CPU through an interrupt controller
//! (the demo's preemption tick; `cp15_ops`'s WFI test). Polled, no DMA.
//! Every register is reached at its physical address: the kernels run with
//! the MMU off or with the board's [`DEVICES`](crate::board::DEVICES)
//! mapped VA = PA.

pub mod bcm2835;
pub mod gic;
pub mod imx;
pub mod pl011;
pub mod pl190;
pub mod sp804;

/// A UART the console writes to, polled.
pub trait Uart {
    /// Makes the UART transmit (QEMU's PL011 needs nothing; the i.MX UART
    /// must be enabled). Runs first at boot, before anything prints.
    fn init(&self) {}
    /// Writes one byte, waiting while the transmitter is full.
    fn write_byte(&self, byte: u8);
}

/// A timer that raises an interrupt every period.
pub trait Timer {
    /// Starts a periodic interrupt every `period_us` microseconds.
    fn start(&self, period_us: u32);
    /// Stops the timer and clears its interrupt.
    fn stop(&self);
    /// Whether the timer's interrupt is raised; clears it if so.
    fn take_interrupt(&self) -> bool;
}

/// An interrupt controller, one line at a time.
pub trait InterruptController {
    /// How many lines it has: a [`Tick`] on another line does not build.
    const LINES: u32;
    /// Lets `line` reach the CPU's IRQ input.
    fn enable(&self, line: u32);
    /// Masks `line`.
    fn disable(&self, line: u32);
    /// Whether `line` is raised (pending).
    fn raised(&self, line: u32) -> bool;
    /// In the IRQ handler: whether the interrupt being taken is `line`
    /// (the GIC hands it over, making it active, through its acknowledge
    /// register; the simpler controllers just show it raised).
    fn claim(&self, line: u32) -> bool {
        self.raised(line)
    }
    /// Tells the controller the CPU has dealt with `line` (GIC's end of
    /// interrupt; nothing on the simpler controllers).
    fn end_of_interrupt(&self, _line: u32) {}
}

/// A timer wired to a line of an interrupt controller: the tick.
pub struct Tick<T, C> {
    timer: T,
    controller: C,
    line: u32,
}

impl<T: Timer, C: InterruptController> Tick<T, C> {
    /// `timer`, whose interrupt reaches `controller` on `line` (checked
    /// against the controller's lines when the board's static is built).
    pub const fn new(timer: T, controller: C, line: u32) -> Self {
        assert!(line < C::LINES, "no such interrupt line on this controller");
        Tick {
            timer,
            controller,
            line,
        }
    }

    /// Starts a periodic interrupt every `period_us` microseconds, enabled
    /// at the controller.
    pub fn start(&self, period_us: u32) {
        self.timer.start(period_us);
        self.controller.enable(self.line);
    }

    /// Stops the tick and masks its line.
    pub fn stop(&self) {
        self.timer.stop();
        self.controller.disable(self.line);
    }

    /// Whether the tick's line is raised at the controller.
    pub fn raised(&self) -> bool {
        self.controller.raised(self.line)
    }

    /// In the IRQ handler: acknowledges a pending tick; false if the
    /// interrupt was not the timer's.
    pub fn acknowledge(&self) -> bool {
        if !self.controller.claim(self.line) {
            return false;
        }
        let ours = self.timer.take_interrupt();
        self.controller.end_of_interrupt(self.line);
        ours
    }
}

/// A 32-bit device register at `base + offset`.
fn reg(base: u32, offset: u32) -> *mut u32 {
    (base + offset) as usize as *mut u32
}

/// Writes a device register.
fn write(base: u32, offset: u32, value: u32) {
    // SAFETY: a driver exists only through its `unsafe` constructor, whose
    // caller (a board file) promises `base` is that device's registers,
    // reached with the MMU off or through the board's VA = PA Device
    // mappings; registers are aligned words.
    unsafe { reg(base, offset).write_volatile(value) }
}

/// Reads a device register.
fn read(base: u32, offset: u32) -> u32 {
    // SAFETY: as `write`.
    unsafe { reg(base, offset).read_volatile() }
}
