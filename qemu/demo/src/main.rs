//! The vacmm demo kernel for QEMU versatilepb.
//!
//! For now it identifies the CPU and its caches; later work grows it into a
//! small multi-process kernel that exercises every coherence situation.
#![no_std]
#![no_main]

use vacmm::cache::{CacheKind, CacheType};
use vacmm_qemu::println;

fn main() -> ! {
    let midr = vacmm::arch::main_id();
    let ctr_raw = vacmm::arch::cache_type_raw();
    println!("vacmm demo kernel on QEMU versatilepb");
    println!("CPU:        {midr}");
    println!("cache type: CTR {ctr_raw:#010x}");
    match CacheType::decode(ctr_raw, midr) {
        Ok(ctr) => {
            if let Some(d) = ctr.dcache {
                println!(
                    "  D-cache:  {} KiB, {}-way, {}-byte lines, {} KiB per way",
                    d.size_bytes / 1024,
                    d.ways,
                    d.line_bytes,
                    d.way_bytes() / 1024
                );
            }
            if let Some(i) = ctr.icache {
                println!(
                    "  I-cache:  {} KiB, {}-way, {}-byte lines",
                    i.size_bytes / 1024,
                    i.ways,
                    i.line_bytes
                );
            }
            println!("  kind:     {}", CacheKind::classify(midr, &ctr));
            println!("  (QEMU reports one made-up CTR for every ARM926/ARM11 and models no cache)");
        }
        Err(e) => println!("  cannot decode: {e}"),
    }
    vacmm_qemu::exit(0)
}

vacmm_qemu::entry!(main);
