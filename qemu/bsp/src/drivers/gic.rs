//! The ARM11 MPCore's interrupt controller (a GIC before the GIC
//! architecture: distributor and per-CPU interface; ARM11 MPCore TRM, DDI
//! 0360, chapter 10; QEMU's hw/intc/arm_gic.c in its "11MPCore" revision).
//! Interrupt IDs: 0–15 software, 29 the private timer, 32 + n the board's
//! line n as the MPCore routes it.

use super::{InterruptController, read, write};

/// Distributor: control, set-enable, clear-enable, set-pending (reads the
/// pending bits), CPU targets (a byte per ID).
const DIST_CONTROL: u32 = 0x000;
const SET_ENABLE: u32 = 0x100;
const CLEAR_ENABLE: u32 = 0x180;
const SET_PENDING: u32 = 0x200;
const CLEAR_PENDING: u32 = 0x280;
const TARGETS: u32 = 0x800;
/// CPU interface: control, priority mask, acknowledge, end of interrupt.
const CPU_CONTROL: u32 = 0x00;
const PRIORITY_MASK: u32 = 0x04;
const ACKNOWLEDGE: u32 = 0x0c;
const END_OF_INTERRUPT: u32 = 0x10;

/// A distributor and the CPU interface of the CPU we run on.
pub struct Gic {
    distributor: u32,
    cpu_interface: u32,
}

impl Gic {
    /// # Safety
    /// The addresses must be the MPCore's distributor and CPU interface.
    pub const unsafe fn new(distributor: u32, cpu_interface: u32) -> Self {
        Gic {
            distributor,
            cpu_interface,
        }
    }
}

fn word_and_bit(id: u32) -> (u32, u32) {
    (4 * (id / 32), 1 << (id % 32))
}

impl InterruptController for Gic {
    /// The ARM11 MPCore's distributor in QEMU: 64 interrupt IDs.
    const LINES: u32 = 64;

    fn enable(&self, id: u32) {
        let (word, bit) = word_and_bit(id);
        // Every ID to CPU 0 (one CPU runs); let all priorities through.
        if id >= 32 {
            let target = TARGETS + (id & !3);
            let shift = 8 * (id % 4);
            write(
                self.distributor,
                target,
                read(self.distributor, target) | (1 << shift),
            );
        }
        write(self.distributor, SET_ENABLE + word, bit);
        write(self.distributor, DIST_CONTROL, 1);
        write(self.cpu_interface, PRIORITY_MASK, 0xf0);
        write(self.cpu_interface, CPU_CONTROL, 1);
    }

    fn disable(&self, id: u32) {
        let (word, bit) = word_and_bit(id);
        write(self.distributor, CLEAR_ENABLE + word, bit);
        // The 11MPCore distributor latches an edge as pending until it is
        // acknowledged: drop it, or the next enable takes a stale tick.
        write(self.distributor, CLEAR_PENDING + word, bit);
    }

    fn raised(&self, id: u32) -> bool {
        let (word, bit) = word_and_bit(id);
        read(self.distributor, SET_PENDING + word) & bit != 0
    }

    /// Acknowledges through the CPU interface: the ID it hands over
    /// becomes active, and is ours only if it is `id` (any other is ended
    /// at once: the kernels take no other interrupt).
    fn claim(&self, id: u32) -> bool {
        let acknowledged = read(self.cpu_interface, ACKNOWLEDGE);
        let got = acknowledged & 0x3ff;
        if got == 1023 {
            return false; // spurious: nothing pending for this CPU
        }
        if got != id {
            write(self.cpu_interface, END_OF_INTERRUPT, acknowledged);
            return false;
        }
        true
    }

    fn end_of_interrupt(&self, id: u32) {
        write(self.cpu_interface, END_OF_INTERRUPT, id);
    }
}
