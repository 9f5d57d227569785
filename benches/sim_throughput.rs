//! How many simulated accesses per second the cache model sustains (the
//! model must be fast enough for property tests: target ≥ 30 M/s on every
//! preset, resident or thrashing; issue 24).
//!
//! `cargo bench --features sim --bench sim_throughput`
//!
//! Two workloads bracket the model's speed: a cache-resident one (the
//! common case) and one that misses on nearly every access.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vacmm::sim::CpuModel;

mod workload;
use workload::{ACCESSES, RESIDENT, THRASHING, model_with_linear_map, run};

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim");
    group.throughput(Throughput::Elements(ACCESSES));
    for (name, model) in [
        ("arm926", CpuModel::arm926()),
        ("arm1136_32k", CpuModel::arm1136_32k()),
        ("arm1136_64k", CpuModel::arm1136_64k()),
        ("arm1176_16k", CpuModel::arm1176_16k()),
    ] {
        let mut sim = model_with_linear_map(model);
        group.bench_function(format!("resident/{name}"), |b| {
            b.iter(|| run(&mut sim, RESIDENT))
        });
        group.bench_function(format!("thrashing/{name}"), |b| {
            b.iter(|| run(&mut sim, THRASHING))
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
