//! What the engine's maintenance costs, pinned: fixed random programs on
//! every preset (and the ARM926 under FCSE PIDs, and aliasing VIPT caches
//! without colour alignment), and after each the engine's counters and the
//! model's (line and whole-cache operations, write-backs, drains, TLB
//! operations, cycles), compared line for line with
//! `docs/maintenance-costs.txt`.
//!
//! The oracle proves that the engine does *enough*; this file shows when it
//! does *more* (or counts what it does wrongly): a clean made twice, a
//! whole-cache flush where a page would do, a counter that stops counting.
//! Such a change keeps every program coherent, so no other test sees it.
//! A change made on purpose is reviewed in the file's diff:
//! `VACMM_BLESS=1 cargo test -p vacmm --features sim --lib costs` rewrites
//! it. The programs' sizes are fixed here, not taken from `VACMM_CASES` /
//! `VACMM_OPS`, so every run compares the same programs.

extern crate std;

use std::format;
use std::string::String;

use super::*;
use crate::check::{Switching as MachineSwitching, World, XorShift, random_op};

/// Programs per configuration and operations per program.
const PROGRAMS: u32 = 2;
const OPS: u32 = 1_000;

/// Every configuration's programs, one line of counters each.
fn costs() -> String {
    let mut text = String::from(
        "# The maintenance fixed random programs cost, per preset and configuration\n\
         # (src/coherence/tests/costs.rs; VACMM_BLESS=1 cargo test -p vacmm --features sim\n\
         # --lib costs rewrites this file). One program a line: the engine's counters, then\n\
         # the model's.\n",
    );
    for (index, (name, model)) in presets().into_iter().enumerate() {
        let kind = model.info().kind;
        let mut configs = std::vec![("", MachineSwitching::Default, true)];
        if kind == CacheKind::Vivt {
            configs.push((" FCSE", MachineSwitching::Fcse, true));
        }
        if kind.aliases() {
            configs.push((" unaligned", MachineSwitching::Default, false));
        }
        for (label, switching, aligned) in configs {
            for program in 0..PROGRAMS {
                let seed = 0xc057_0000 ^ (program << 8) ^ index as u32;
                let mut world = World::configured(model, switching, aligned);
                let mut rng = XorShift::new(seed);
                for op in 0..OPS {
                    let next = random_op(&mut rng, &world);
                    if let Err(failure) = world.apply(&next) {
                        panic!("{name}{label}, program {program}, op {op}: {failure}");
                    }
                }
                let engine = world.m.engine.counters();
                let model = world.m.sys.mem.counters();
                text += &format!("{name}{label} #{program}: {engine:?}\n    model: {model:?}\n");
            }
        }
    }
    text
}

#[test]
fn maintenance_costs_match_the_pinned_file() {
    let text = costs();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/maintenance-costs.txt");
    if std::env::var("VACMM_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(path, &text).expect("docs/maintenance-costs.txt is writable");
        return;
    }
    let stored = std::fs::read_to_string(path).unwrap_or_default();
    if stored != text {
        let differ = stored
            .lines()
            .zip(text.lines())
            .find(|(old, new)| old != new)
            .map(|(old, new)| format!("\n  file: {old}\n  now:  {new}"))
            .unwrap_or_else(|| "\n  (a line was added or removed)".into());
        panic!(
            "docs/maintenance-costs.txt differs from what the programs cost now; first \
             difference:{differ}\nreview the change (more maintenance is waste, less may be \
             a missing flush the oracle happened not to see) and rerun with VACMM_BLESS=1 to \
             rewrite the file"
        );
    }
}
