//! ARM SP804 dual timer, timer 1 of the pair (versatilepb, RealView),
//! counting a 1 MHz reference clock (SP804 TRM, DDI 0271, §3.2; QEMU's
//! boards clock it at 1 MHz).

use super::{Timer, read, write};

const LOAD: u32 = 0x00;
const CONTROL: u32 = 0x08;
const INT_CLR: u32 = 0x0c;
const MIS: u32 = 0x14;
// Control: enable, periodic, interrupt enable, 32-bit counter.
const ENABLE: u32 = 1 << 7;
const PERIODIC: u32 = 1 << 6;
const INT_ENABLE: u32 = 1 << 5;
const BITS_32: u32 = 1 << 1;

/// The first timer of an SP804 at its base address.
pub struct Sp804(u32);

impl Sp804 {
    /// # Safety
    /// `base` must be an SP804's registers, nothing else.
    pub const unsafe fn new(base: u32) -> Self {
        Sp804(base)
    }
}

impl Timer for Sp804 {
    fn start(&self, period_us: u32) {
        write(self.0, CONTROL, 0);
        write(self.0, LOAD, period_us.max(1));
        write(self.0, INT_CLR, 1);
        write(self.0, CONTROL, ENABLE | PERIODIC | INT_ENABLE | BITS_32);
    }

    fn stop(&self) {
        write(self.0, CONTROL, 0);
        write(self.0, INT_CLR, 1);
    }

    fn take_interrupt(&self) -> bool {
        let raised = read(self.0, MIS) & 1 != 0;
        if raised {
            write(self.0, INT_CLR, 1);
        }
        raised
    }
}
