//! The vacmm demo kernel for QEMU versatilepb: a small preemptive kernel
//! whose user processes run into every coherence situation of the seeds,
//! with vacmm doing the cache work. Run it with `cargo xtask demo`.
//!
//! ```text
//!   main.rs    boot: CPU and cache identification, geometry override
//!   kernel.rs  processes, scheduler, system calls, fault handler — the
//!              vacmm calls a hobby OS makes (table at the top of the file)
//!   trap.rs    exception entry/exit: user registers ⇄ TrapFrame
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
mod trap;
mod user;

use vacmm::cache::{CacheGeometry, CacheInfo, CpuPart};
use vacmm_qemu::println;

/// The cache facts the kernel runs with: detected from MIDR/CTR, or with
/// the D-cache size given on the command line (`vacmm-dcache-kib=<KiB>`,
/// 4-way, 32-byte lines — `cargo xtask demo --dcache-kib`). The ARM1176
/// defaults to the Raspberry Pi's 16 KiB (QEMU's CTR claims 64 KiB).
fn cache_info() -> Result<CacheInfo, alloc::string::String> {
    let detected = vacmm::arch::cache_info().map_err(|e| alloc::format!("{e}"))?;
    let forced_kib = vacmm_qemu::boot_arg("vacmm-dcache-kib=").and_then(|v| v.parse::<u32>().ok());
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

fn main() -> ! {
    println!("vacmm demo kernel on QEMU versatilepb");
    println!("CPU:      {}", vacmm::arch::main_id());
    let info = match cache_info() {
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
