//! Random programs against the engine on every preset, through the
//! operation interpreter of [`crate::check`]: processes that mmap, munmap,
//! mprotect, brk, fork, exec and exit, load and store; the kernel writing
//! file pages through `Kmap`; DMA in both directions into unaligned buffers
//! beside live CPU data; a kernel↔user shared buffer handed back and forth;
//! context switches; and invalid calls, which must fail with an error and
//! change nothing. The oracle judges every access: a program ends with
//! zero violations or the test fails, printing the seed and the last
//! operations.
//!
//! `VACMM_CASES` / `VACMM_OPS` set the size (default 256 × 10,000 per
//! preset); `VACMM_SOAK=1` runs 1,000 × 10,000 (10 million operations per
//! preset).

extern crate std;

use super::*;
use crate::check::{World, XorShift, random_op};

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_preset(index: usize) {
    let (name, model) = presets()[index];
    let soak = std::env::var("VACMM_SOAK").is_ok_and(|v| v == "1");
    let cases = env("VACMM_CASES", if soak { 1000 } else { 256 });
    let ops = env("VACMM_OPS", 10_000);
    let mut total = Counters::default();
    let mut errors = 0;
    for case in 0..cases {
        let seed = 0x9e37_79b9u32.wrapping_mul(case + 1) ^ (index as u32);
        let mut world = World::new(model);
        let mut rng = XorShift::new(seed);
        for op in 0..ops {
            let next = random_op(&mut rng, &world);
            if let Err(failure) = world.apply(&next) {
                panic!("{name}, case {case} (seed {seed:#x}), op {op}: {failure}");
            }
        }
        let c = world.m.engine.counters();
        total.pages_filled += c.pages_filled;
        total.made_uncached += c.made_uncached;
        total.restored += c.restored;
        total.switches += c.switches;
        total.kmaps += c.kmaps;
        total.window_fills += c.window_fills;
        total.whole_cache_flushes += c.whole_cache_flushes;
        errors += world.errors;
    }
    // Only the fields summed above (the others stay zero in `total`).
    std::eprintln!(
        "{name}: {cases} programs × {ops} operations, 0 violations; {errors} refused calls; \
         {} pages filled ({} through windows), {} kmaps, {} made uncached, {} restored, \
         {} switches, {} whole-cache flushes",
        total.pages_filled,
        total.window_fills,
        total.kmaps,
        total.made_uncached,
        total.restored,
        total.switches,
        total.whole_cache_flushes
    );
    // The generator must reach the interesting transitions.
    assert!(
        total.switches > 0 && total.kmaps > 0 && total.pages_filled > 0,
        "{name}"
    );
    if model.info().kind == CacheKind::Vivt {
        assert!(
            total.made_uncached > 0 && total.restored > 0,
            "{name}: {total:?}"
        );
    }
}

#[test]
fn random_programs_arm926() {
    run_preset(0);
}

#[test]
fn random_programs_arm1136_32k() {
    run_preset(1);
}

#[test]
fn random_programs_arm1136_64k() {
    run_preset(2);
}

#[test]
fn random_programs_arm1176_16k() {
    run_preset(3);
}

#[test]
fn random_programs_pipt() {
    run_preset(4);
}
