//! The model-throughput workload, shared by `benches/sim_throughput.rs`
//! (criterion) and `examples/sim_thrash.rs` (instruction counts under
//! cachegrind), so that both measure the same thing. A directory module:
//! cargo does not take it for a benchmark of its own.

use std::hint::black_box;

use vacmm::sim::{CpuModel, KERNEL, MemType, Sim};

/// Accesses per round.
pub const ACCESSES: u64 = 1 << 16;

/// Footprint and stride of the thrashing workload: 64 KiB, four times the
/// ARM926's 16 KiB, at a 0x1234 stride (mostly misses, fills and
/// write-backs).
pub const THRASHING: (u32, u32) = (64 << 10, 0x1234);

/// Footprint and stride of the cache-resident workload: 8 KiB walked word
/// by word, as most kernel code touches memory (mostly hits).
pub const RESIDENT: (u32, u32) = (8 << 10, 4);

/// A model of `model` with 16 pages of the kernel's linear map at
/// 0xC000_0000, write-back cached.
pub fn model_with_linear_map(model: CpuModel) -> Sim {
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
    sim
}

/// One round: one load in four is a store; addresses step by `stride`
/// within `footprint` bytes from 0xC000_0000.
pub fn run(sim: &mut Sim, (footprint, stride): (u32, u32)) {
    let mut addr = 0u32;
    for i in 0..ACCESSES as u32 {
        let va = 0xc000_0000 + (addr & (footprint - 4));
        if i % 4 == 0 {
            sim.store(va, 4, i).expect("mapped, writable");
        } else {
            black_box(sim.load(va, 4).expect("mapped"));
        }
        addr = addr.wrapping_add(stride);
    }
}
