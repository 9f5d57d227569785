//! PL011 UART0 console of versatilepb (0x101F_1000), wired by QEMU's
//! `-nographic` to the host's standard output.
//!
//! The writer takes no lock: it is used from exception handlers and the panic
//! handler, which must be able to print even if they interrupted a print.
//! On one core the worst case is interleaved characters, never a deadlock.

use core::fmt;

const UART0_BASE: usize = 0x101f_1000;
/// Data register.
const UARTDR: usize = 0x00;
/// Flag register; bit 5 TXFF = transmit FIFO full.
const UARTFR: usize = 0x18;
const UARTFR_TXFF: u32 = 1 << 5;

/// A handle on UART0; create one wherever output is needed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Console;

impl Console {
    /// Writes one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(self, byte: u8) {
        // SAFETY: UART0 is always mapped at this physical address on
        // versatilepb (the test kernels run with the MMU off or identity-map
        // the device region); the registers are 32-bit and naturally aligned.
        unsafe {
            let flags = (UART0_BASE + UARTFR) as *const u32;
            while flags.read_volatile() & UARTFR_TXFF != 0 {}
            ((UART0_BASE + UARTDR) as *mut u32).write_volatile(u32::from(byte));
        }
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    // Writing to the UART cannot fail.
    let _ = fmt::Write::write_fmt(&mut Console, args);
}

/// Prints to the UART console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints to the UART console, with a newline.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
