//! How many frame allocations per second the colour allocator sustains:
//! allocate + free pairs on a 64 MiB pool (16384 frames) with 4 colours.
//!
//! `cargo bench --bench frame_alloc`
//!
//! Each iteration allocates a batch and then frees it in a scrambled order,
//! with half the pool held throughout, so the free lists are long and out of
//! address order as in a running kernel rather than one frame bouncing on
//! and off a list head.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vacmm::addr::PhysAddr;
use vacmm::mm::colour::{ColourAllocator, ColourCursor};

const FRAMES: u32 = 16384;
const COLOURS: u32 = 4;
const BATCH: usize = 1024;

/// A pool with every other frame held (in scrambled order), as a kernel's
/// would be after running a while.
fn half_full_pool() -> ColourAllocator {
    let mut pool = ColourAllocator::new(PhysAddr(0x8000_0000), FRAMES, COLOURS).unwrap();
    let all: Vec<PhysAddr> = (0..FRAMES).map(|_| pool.allocate_any().unwrap()).collect();
    // Every other group of four consecutive frames (one of each colour)
    // is freed, in scrambled order: half the pool, every colour equally.
    for i in scramble(all.len()) {
        if (i / COLOURS as usize).is_multiple_of(2) {
            pool.free(all[i]).unwrap();
        }
    }
    pool
}

/// A fixed permutation of `0..n` (multiplication by an odd constant modulo
/// a power of two).
fn scramble(n: usize) -> impl Iterator<Item = usize> {
    debug_assert!(n.is_power_of_two());
    (0..n).map(move |i| i.wrapping_mul(0x9e37_79b1) & (n - 1))
}

fn allocate_free(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_alloc");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut batch = Vec::with_capacity(BATCH);
    let order: Vec<usize> = scramble(BATCH).collect();

    let mut pool = half_full_pool();
    let mut colour = 0;
    group.bench_function("allocate_colour", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                batch.push(pool.allocate_colour(colour).unwrap());
                colour = (colour + 1) % COLOURS;
            }
            for &i in &order {
                pool.free(black_box(batch[i])).unwrap();
            }
            batch.clear();
        })
    });

    let mut pool = half_full_pool();
    group.bench_function("allocate_any", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                batch.push(pool.allocate_any().unwrap());
            }
            for &i in &order {
                pool.free(black_box(batch[i])).unwrap();
            }
            batch.clear();
        })
    });

    let mut pool = half_full_pool();
    let mut cursor = ColourCursor::new(1);
    group.bench_function("allocate_spread", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                batch.push(pool.allocate_spread(&mut cursor).unwrap());
            }
            for &i in &order {
                pool.free(black_box(batch[i])).unwrap();
            }
            batch.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, allocate_free);
criterion_main!(benches);
