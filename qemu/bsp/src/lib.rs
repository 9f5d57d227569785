//! Board support for QEMU `versatilepb`, shared by vacmm's on-target tests
//! and the demo kernel. Not part of the vacmm library.
//!
//! ```text
//!   aarch32-rt  _start: per-mode stacks, .data/.bss, → kmain (SYS mode)
//!   kmain       heap::init, → the binary's main (test_main! / entry!)
//!   console     PL011 UART0, print!/println!
//!   fault       data/prefetch abort + undefined handlers, catch_fault
//!   harness     named cases, "N passed, N failed", exit status
//!   exit        semihosting SYS_EXIT_EXTENDED: the guest's status is QEMU's
//! ```
//!
//! A binary using it is `#![no_std] #![no_main]` and names its main with
//! [`entry!`] (or [`test_main!`] for a test).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[doc(hidden)]
pub extern crate alloc as __alloc;

pub mod console;
pub mod fault;
pub mod harness;
pub mod heap;

/// Ends the run; QEMU exits with `code` (semihosting must be enabled, as
/// `qemu/runner` does).
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

/// Names the function the kernel runs after board start-up: `fn() -> !`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        fn __vacmm_qemu_main() -> ! {
            let main: fn() -> ! = $main;
            main()
        }
    };
}

#[aarch32_rt::entry]
fn boot() -> ! {
    heap::init();
    unsafe extern "Rust" {
        /// Defined by the binary through `entry!` / `test_main!`.
        safe fn __vacmm_qemu_main() -> !;
    }
    __vacmm_qemu_main()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    harness::fatal(format_args!("{info}"))
}
