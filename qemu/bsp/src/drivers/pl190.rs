//! ARM PrimeCell PL190 vectored interrupt controller (versatilepb's
//! primary controller), used unvectored: raw status, enable and
//! enable-clear (PL190 TRM, DDI 0181, §3.3).

use super::{InterruptController, read, write};

const RAW_INTR: u32 = 0x08;
const INT_ENABLE: u32 = 0x10;
const INT_ENABLE_CLEAR: u32 = 0x14;

/// A PL190 at its base address.
pub struct Pl190(u32);

impl Pl190 {
    /// # Safety
    /// `base` must be a PL190's registers, nothing else.
    pub const unsafe fn new(base: u32) -> Self {
        Pl190(base)
    }
}

impl InterruptController for Pl190 {
    const LINES: u32 = 32;

    fn enable(&self, line: u32) {
        write(self.0, INT_ENABLE, 1 << line);
    }

    fn disable(&self, line: u32) {
        write(self.0, INT_ENABLE_CLEAR, 1 << line);
    }

    fn raised(&self, line: u32) -> bool {
        read(self.0, RAW_INTR) & (1 << line) != 0
    }
}
