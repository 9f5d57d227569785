//! The vacmm demo kernel for vacmm's QEMU boards: a small preemptive kernel
//! whose user processes run into every coherence situation of the seeds,
//! with vacmm doing the cache work. Run it with `cargo xtask demo`.
//!
//! ```text
//!   main.rs    boot: CPU and cache identification, geometry override
//!   kernel.rs  processes, scheduler, system calls, fault handler — the
//!              vacmm calls a hobby OS makes (table at the top of the file)
//!   timer.rs   SP804 tick through the PL190 VIC
//!   abi.rs     system-call numbers shared by kernel and programs
//!   user.rs    the user programs (built into the image)
//! ```
#![no_std]
#![no_main]

extern crate alloc;

mod abi;
mod kernel;
mod timer;
mod user;

use vacmm_qemu::println;

fn main() -> ! {
    println!("vacmm demo kernel on {}", vacmm_qemu::board::NAME);
    println!("CPU:      {}", vacmm::arch::main_id());
    let info = match vacmm_qemu::cache_info() {
        Ok(info) => info,
        Err(e) => vacmm_qemu::harness::fatal(format_args!("cache identification: {e}")),
    };
    let d = info.dcache;
    println!(
        "D-cache:  {} KiB, {}-way, {}-byte lines, {} KiB per way → {}",
        d.size_bytes >> 10,
        d.ways,
        d.line_bytes,
        d.way_bytes() >> 10,
        info.kind
    );
    println!(
        "          (QEMU models no cache: the geometry drives vacmm's maintenance, the CP15 operations are real)"
    );
    let k = match kernel::Kernel::set_up(info) {
        Ok(k) => k,
        Err(e) => vacmm_qemu::harness::fatal(format_args!("kernel set-up: {e}")),
    };
    println!("MMU on; kernel windows, page cache and the shared ring are ready");
    kernel::start(k)
}

vacmm_qemu::entry!(main);
