//! Configuration checked at construction (issue 19, findings 6 and 7):
//! policy × switcher × cache combinations run on the model.

extern crate std;

use std::boxed::Box;
use std::format;
use std::string::{String, ToString};

use super::*;
use crate::check::{World, XorShift, random_op};
use crate::mmu::SwitchPolicy;

// ---- the policies swept ------------------------------------------------------------

/// How a policy sets its range threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Threshold {
    /// The cache's own (the trait's default).
    Cache,
    /// Linux: every range flush cleans the whole D-cache on aliasing VIPT.
    ZeroIfAliasingVipt,
    /// NetBSD: more than three pages on VIVT clean the whole cache.
    ThreePagesIfVivt,
}

/// A policy whose every answer is a field: the sweep's.
#[derive(Clone, Copy, Debug)]
struct Answers {
    name: &'static str,
    defers_kernel_alias: bool,
    restores_cacheability: bool,
    tracks_live_spaces: bool,
    uses_colour_windows: bool,
    flushes_everything: bool,
    flushes_whole_mm: bool,
    uncaches_shared: bool,
    threshold: Threshold,
}

impl Policy for Answers {
    fn name(&self) -> &'static str {
        self.name
    }
    fn defers_kernel_alias(&self) -> bool {
        self.defers_kernel_alias
    }
    fn restores_cacheability(&self) -> bool {
        self.restores_cacheability
    }
    fn tracks_live_spaces(&self) -> bool {
        self.tracks_live_spaces
    }
    fn uses_colour_windows(&self) -> bool {
        self.uses_colour_windows
    }
    fn flushes_everything(&self) -> bool {
        self.flushes_everything
    }
    fn range_threshold(&self, info: &CacheInfo) -> u64 {
        match self.threshold {
            Threshold::Cache => info.whole_cache_threshold(),
            Threshold::ZeroIfAliasingVipt if matches!(info.kind, CacheKind::VipAliasing { .. }) => {
                0
            }
            Threshold::ThreePagesIfVivt if info.kind == CacheKind::Vivt => 3 * u64::from(PAGE),
            _ => info.whole_cache_threshold(),
        }
    }
    fn flushes_whole_mm(&self) -> bool {
        self.flushes_whole_mm
    }
    fn uncaches_shared(&self) -> bool {
        self.uncaches_shared
    }
}

/// vacmm's answers (the trait's defaults).
const VACMM: Answers = Answers {
    name: "vacmm",
    defers_kernel_alias: true,
    restores_cacheability: true,
    tracks_live_spaces: true,
    uses_colour_windows: true,
    flushes_everything: false,
    flushes_whole_mm: false,
    uncaches_shared: false,
    threshold: Threshold::Cache,
};

/// The bench's baselines (`bench/src/policies.rs`), answer for answer.
const BASELINES: [Answers; 4] = [
    Answers {
        name: "Linux-like",
        restores_cacheability: false,
        flushes_whole_mm: true,
        threshold: Threshold::ZeroIfAliasingVipt,
        ..VACMM
    },
    Answers {
        name: "NetBSD-like",
        defers_kernel_alias: false,
        threshold: Threshold::ThreePagesIfVivt,
        ..VACMM
    },
    Answers {
        name: "flush-everything",
        defers_kernel_alias: false,
        flushes_everything: true,
        ..VACMM
    },
    Answers {
        name: "all-uncached",
        defers_kernel_alias: false,
        uncaches_shared: true,
        ..VACMM
    },
];

/// What became of one combination.
#[derive(Debug)]
enum Outcome {
    /// Built and ran its programs clean.
    Clean,
    /// Built, then a program failed (or panicked).
    Failed(String),
}

/// Builds the combination and runs `cases` random programs of `ops`
/// operations on it (every other one without colour alignment, by `seed`
/// and `case`).
fn run(
    model: CpuModel,
    switch: SwitchPolicy,
    policy: Answers,
    cases: u32,
    ops: u32,
    seed: u32,
) -> Outcome {
    for case in 0..cases {
        let seed = seed.wrapping_add(0x9e37_79b9u32.wrapping_mul(case + 1));
        let m = Machine::with_policy(model, switch, Box::new(policy));
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Every other program without colour alignment.
            let mut world = World::on(m, (case + (seed >> 8)).is_multiple_of(2));
            let mut rng = XorShift::new(seed);
            for op in 0..ops {
                let next = random_op(&mut rng, &world);
                if let Err(failure) = world.apply(&next) {
                    return Err(format!("case {case} (seed {seed:#x}), op {op}: {failure}"));
                }
            }
            Ok(())
        }));
        match attempt {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Outcome::Failed(e),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                return Outcome::Failed(format!("case {case} (seed {seed:#x}) panicked: {what}"));
            }
        }
    }
    Outcome::Clean
}

/// Finding 7, second half: the all-uncached policy on the ARM1176 (VIPT,
/// not aliasing). A recycled frame's dirty line, or the zero-fill of a
/// fresh shared page through the cached linear map, was left in the cache
/// while the page's user mappings went uncached: users read memory under
/// it, and its write-back later lands over their uncached stores.
#[test]
fn uncaching_shared_pages_on_the_arm1176_stays_coherent() {
    let all_uncached = BASELINES[3];
    for (name, model) in [
        ("ARM1176 16K", CpuModel::arm1176_16k()),
        ("PIPT", presets()[4].1),
    ] {
        let outcome = run(model, SwitchPolicy::Asid, all_uncached, 8, 2000, 0x1176);
        if let Outcome::Failed(e) = outcome {
            panic!("{name}: {e}");
        }
    }
}
