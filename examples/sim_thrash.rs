//! The thrashing workload of `benches/sim_throughput.rs` alone (the same
//! code: `benches/workload/mod.rs`), for
//! counting the model's instructions per access where wall-clock time is
//! too noisy to compare two versions (this project's machine varies by up
//! to 2× between runs):
//!
//! ```text
//! CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
//!   cargo build --release --features sim --example sim_thrash
//! valgrind --tool=cachegrind --cache-sim=no target/release/examples/sim_thrash arm926 5
//! ```
//!
//! then divide the instructions (`I refs`) by 65,536 × the rounds (5:
//! 327,680 accesses). Presets: `arm926`, `arm1136_32k`, `arm1136_64k`,
//! `arm1176_16k`. It prints the rate it ran at and the model's counters.

use vacmm::sim::CpuModel;

// The resident workload is the benchmark's only.
#[allow(dead_code)]
#[path = "../benches/workload/mod.rs"]
mod workload;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "arm926".into());
    let model = match name.as_str() {
        "arm926" => CpuModel::arm926(),
        "arm1136_32k" => CpuModel::arm1136_32k(),
        "arm1136_64k" => CpuModel::arm1136_64k(),
        "arm1176_16k" => CpuModel::arm1176_16k(),
        other => {
            eprintln!("unknown preset {other}: arm926, arm1136_32k, arm1136_64k or arm1176_16k");
            std::process::exit(2);
        }
    };
    let rounds: u32 = match std::env::args().nth(2).map(|s| s.parse()) {
        None => 20,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("rounds: {e}");
            std::process::exit(2);
        }
    };
    let mut sim = workload::model_with_linear_map(model);
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        workload::run(&mut sim, workload::THRASHING);
    }
    let seconds = start.elapsed().as_secs_f64();
    let c = sim.counters();
    println!(
        "{name}: {:.1} M accesses/s; fills {}, write-backs {}, hits {}; violations {}",
        f64::from(rounds) * workload::ACCESSES as f64 / seconds / 1e6,
        c.fills,
        c.write_backs,
        c.hits,
        sim.violations().len()
    );
}
