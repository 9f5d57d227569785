//! The thrashing workload of `benches/sim_throughput.rs` alone, for
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

use vacmm::sim::{CpuModel, KERNEL, MemType, Sim};

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
    let mut sim = Sim::new(model, 1 << 20);
    for page in 0..16 {
        sim.map(
            KERNEL,
            0xc000_0000 + page * 4096,
            page * 4096,
            MemType::WriteBack,
            true,
        )
        .expect("16 pages of the kernel's linear map");
    }
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        // As the benchmark: 64 KiB at a 0x1234 stride, one store in four.
        let mut addr = 0u32;
        for i in 0..65_536u32 {
            let va = 0xc000_0000 + (addr & ((64 << 10) - 4));
            if i % 4 == 0 {
                sim.store(va, 4, i).expect("mapped, writable");
            } else {
                std::hint::black_box(sim.load(va, 4).expect("mapped"));
            }
            addr = addr.wrapping_add(0x1234);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let c = sim.counters();
    println!(
        "{name}: {:.1} M accesses/s; fills {}, write-backs {}, hits {}; violations {}",
        f64::from(rounds) * 65_536.0 / seconds / 1e6,
        c.fills,
        c.write_backs,
        c.hits,
        sim.violations().len()
    );
}
