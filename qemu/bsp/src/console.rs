//! The console: the board's UART (`board::CONSOLE`), which QEMU's
//! `-nographic` connects to the host's standard output.
//!
//! The writer takes no lock: it is used from exception handlers and the panic
//! handler, which must be able to print even if they interrupted a print.
//! On one core the worst case is interleaved characters, never a deadlock.

use core::fmt;

use crate::board::CONSOLE;
use crate::drivers::Uart;

/// A handle on the board's UART; create one wherever output is needed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Console;

impl Console {
    /// Writes one byte, waiting while the transmitter is full.
    pub fn write_byte(self, byte: u8) {
        CONSOLE.write_byte(byte);
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
