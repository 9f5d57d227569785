//! Board support for vacmm's on-target tests, demo and minimal kernels on
//! QEMU's ARMv5/ARMv6 boards (and a real Raspberry Pi): the start-up,
//! console, faults, heap, harness and frame pool are written once; a board
//! is one file in `board/` (chosen by `VACMM_BOARD` at build time). Not
//! part of the vacmm library.
//!
//! ```text
//!   aarch32-rt  _start: per-mode stacks, .data/.bss, → kmain (SYS mode)
//!   kmain       heap::init, the board check, board::init (vectors, UART), → main
//!   board       the chosen board: memory map, UART, timer + interrupt line
//!   drivers     PL011, i.MX UART, SP804, PL190, GIC, BCM2835, i.MX EPIT/AVIC
//!   console     print!/println! on the board's UART
//!   fault       data/prefetch abort + undefined handlers, catch_fault
//!   harness     named cases, "N passed, N failed", exit status
//!   mm          identity-mapped table memory and a frame pool (RAM + 64–128 MiB)
//!   user        (feature user-mode) User-mode entry and exception frames
//!   exit        semihosting SYS_EXIT_EXTENDED: the guest's status is QEMU's;
//!               a raw image (VACMM_RAW_IMAGE=1) halts instead
//! ```
//!
//! A binary using it is `#![no_std] #![no_main]` and names its main with
//! [`entry!`] (or [`test_main!`] for a test).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[doc(hidden)]
pub extern crate alloc as __alloc;

#[cfg(vacmm_raw_image)]
mod atags;
pub mod board;
pub mod console;
pub mod drivers;
pub mod fault;
pub mod harness;
pub mod heap;
pub mod mm;
#[cfg(feature = "user-mode")]
pub mod user;

/// Ends the run; QEMU exits with `code` (semihosting must be enabled, as
/// `qemu/runner` does). A raw image, which no debugger or QEMU hosts,
/// says so on the console and halts: the last lines are the report.
pub fn exit(code: i32) -> ! {
    #[cfg(not(vacmm_raw_image))]
    semihosting::process::exit(code);
    #[cfg(vacmm_raw_image)]
    {
        println!("vacmm: halted (exit status {code})");
        loop {
            aarch32_cpu::interrupt::disable();
            vacmm::arch::cp15::wait_for_interrupt();
        }
    }
}

/// The words of the kernel's command line: the semihosting command line
/// (the runner's `-append`, the kernel's own path first), or in a raw
/// image the ATAG command line a boot loader left (see [`atags`]).
fn boot_words() -> alloc::vec::Vec<alloc::string::String> {
    #[cfg(not(vacmm_raw_image))]
    if let Ok(args) = semihosting::experimental::env::args::<512>() {
        return (&args)
            .into_iter()
            .filter_map(|arg| arg.ok().map(alloc::string::String::from))
            .collect();
    }
    #[cfg(vacmm_raw_image)]
    if let Some(line) = atags::COMMAND_LINE.lock().as_deref() {
        return line
            .split_whitespace()
            .map(alloc::string::String::from)
            .collect();
    }
    alloc::vec::Vec::new()
}

/// The QEMU CPU models the runner boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QemuCpu {
    /// `-cpu arm926`
    Arm926,
    /// `-cpu arm1136-r2` (ARM1136 r0p2, no v6K: runs the ARMv5TE image)
    Arm1136R2,
    /// `-cpu arm1136` (r1p3)
    Arm1136,
    /// `-cpu arm1176`
    Arm1176,
    /// `-cpu arm11mpcore`
    Arm11MpCore,
}

/// The `-cpu` the runner booted, from the kernel's command line
/// (`vacmm-cpu=<cpu>`, which `qemu/runner` passes); `None` if absent.
/// Without one (a raw image on the board itself), the board's own CPU.
pub fn booted_cpu() -> Option<QemuCpu> {
    let Some(name) = boot_arg("vacmm-cpu=") else {
        return board::CPU;
    };
    match name.as_str() {
        "arm926" => Some(QemuCpu::Arm926),
        "arm1136-r2" => Some(QemuCpu::Arm1136R2),
        "arm1136" => Some(QemuCpu::Arm1136),
        "arm1176" => Some(QemuCpu::Arm1176),
        "arm11mpcore" => Some(QemuCpu::Arm11MpCore),
        _ => None,
    }
}

/// The value of the first semihosting command-line argument starting with
/// `prefix` (e.g. `"vacmm-dcache-kib="`), copied out; `None` if absent.
pub fn boot_arg(prefix: &str) -> Option<alloc::string::String> {
    boot_words()
        .into_iter()
        .find_map(|word| word.strip_prefix(prefix).map(alloc::string::String::from))
}

/// The QEMU release the runner booted, (major, minor), from the semihosting
/// command line (`vacmm-qemu=<major>.<minor>`, which `qemu/runner` passes);
/// `None` if absent. For behaviour that differs between QEMU releases.
pub fn booted_qemu_version() -> Option<(u32, u32)> {
    let version = boot_arg("vacmm-qemu=")?;
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The cache facts a kernel on this board runs with: detected from
/// MIDR/CTR, or with the D-cache size given on the command line
/// (`vacmm-dcache-kib=<KiB>`, 4-way, 32-byte lines — `cargo xtask demo
/// --dcache-kib`, and cachesan's `32k` geometry). The ARM1176 defaults to
/// the Raspberry Pi's 16 KiB (QEMU's CTR claims 64 KiB).
pub fn cache_info() -> Result<vacmm::cache::CacheInfo, alloc::string::String> {
    use vacmm::cache::{CacheGeometry, CpuPart};
    let detected = vacmm::arch::cache_info().map_err(|e| alloc::format!("{e}"))?;
    let forced_kib = boot_arg("vacmm-dcache-kib=").and_then(|v| v.parse::<u32>().ok());
    let kib = match (forced_kib, detected.midr.part()) {
        (Some(kib), _) => Some(kib),
        (None, CpuPart::Arm1176) => Some(16),
        (None, _) => None,
    };
    Ok(match kib {
        Some(kib) => {
            let geometry = CacheGeometry::new((kib as usize) << 10, 4, 32)
                .ok_or_else(|| alloc::format!("no 4-way 32-byte-line D-cache of {kib} KiB"))?;
            detected.with_dcache(geometry)
        }
        None => detected,
    })
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
    // The heap touches no device; the board's start-up does.
    heap::init();
    refuse_another_board();
    board::init();
    #[cfg(vacmm_raw_image)]
    atags::read();
    unsafe extern "Rust" {
        /// Defined by the binary through `entry!` / `test_main!`.
        safe fn __vacmm_qemu_main() -> !;
    }
    __vacmm_qemu_main()
}

/// A binary built for one board and booted on another would write to
/// devices that are not there, silently: the runner says which board it
/// booted (`vacmm-board=` on the semihosting command line), and a
/// mismatch ends the run at once, through semihosting, before any device
/// is touched. (Every board's build lands on the same path in `target/`.
/// An image whose RAM lies elsewhere, the kzm's, cannot even start on
/// another board: that ends in the runner's timeout.)
fn refuse_another_board() {
    #[cfg(not(vacmm_raw_image))]
    if let Some(booted) = boot_arg("vacmm-board=")
        && booted != board::NAME
    {
        semihosting::eprintln!(
            "vacmm: this image was built for {} (VACMM_BOARD) but booted on {booted}: build it with VACMM_BOARD={booted}",
            board::NAME
        );
        exit(2);
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    harness::fatal(format_args!("{info}"))
}
