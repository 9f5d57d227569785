//! How many simulated accesses per second the cache model sustains (the
//! model must be fast enough for property tests: target ≥ 30 M/s on every
//! preset, resident or thrashing; issue 24).
//!
//! `cargo bench --features sim --bench sim_throughput`
//!
//! Two workloads bracket the model's speed: a cache-resident one (the
//! common case) and one that misses on nearly every access.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vacmm::sim::{CpuModel, KERNEL, MemType, Sim};

const ACCESSES: u64 = 1 << 16;

/// One load in four is a store; addresses step by `stride` within
/// `footprint` bytes from 0xC000_0000.
fn run(sim: &mut Sim, footprint: u32, stride: u32) {
    let mut addr = 0u32;
    for i in 0..ACCESSES as u32 {
        let va = 0xc000_0000 + (addr & (footprint - 4));
        if i % 4 == 0 {
            sim.store(va, 4, i).unwrap();
        } else {
            black_box(sim.load(va, 4).unwrap());
        }
        addr = addr.wrapping_add(stride);
    }
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.throughput(Throughput::Elements(ACCESSES));
    for (name, model) in [
        ("arm926", CpuModel::arm926()),
        ("arm1136_32k", CpuModel::arm1136_32k()),
        ("arm1136_64k", CpuModel::arm1136_64k()),
        ("arm1176_16k", CpuModel::arm1176_16k()),
    ] {
        let mut sim = Sim::new(model, 1 << 20);
        for page in 0..16 {
            sim.map(
                KERNEL,
                0xc000_0000 + page * 4096,
                page * 4096,
                MemType::WriteBack,
                true,
            )
            .unwrap();
        }
        // Resident: 8 KiB walked word by word, as most kernel code touches
        // memory (mostly hits). Thrashing: 64 KiB, four times the ARM926's
        // 16 KiB, at a 0x1234 stride (mostly misses, fills and write-backs).
        group.bench_function(format!("resident/{name}"), |b| {
            b.iter(|| run(&mut sim, 8 << 10, 4))
        });
        group.bench_function(format!("thrashing/{name}"), |b| {
            b.iter(|| run(&mut sim, 64 << 10, 0x1234))
        });
        // The workload itself must be coherent, or it measures error reporting.
        assert!(
            sim.violations().is_empty(),
            "{:?}",
            sim.violations().first()
        );
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
