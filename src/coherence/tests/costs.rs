//! What the engine's maintenance costs, pinned: fixed random programs on
//! every preset (and the ARM926 under FCSE PIDs, and aliasing VIPT caches
//! without colour alignment) under vacmm's policy, and shorter ones under
//! the bench's four baselines and under vacmm's with each yes/no answer
//! flipped (the paths only other policies take), and after each the
//! engine's counters and the
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

use std::boxed::Box;

use super::config::{Answers, BASELINES, VACMM};
use super::*;
use crate::check::{Switching as MachineSwitching, World, XorShift, random_op};
use crate::mmu::{Arch, SwitchPolicy};

/// Programs per configuration and operations per program, under vacmm's
/// policy; one program of `POLICY_OPS` under each other policy.
const PROGRAMS: u32 = 2;
const OPS: u32 = 1_000;
const POLICY_OPS: u32 = 400;

/// Flips one of a policy's answers.
type Flip = fn(&mut Answers);

/// The other policies: the baselines, and vacmm's with one answer flipped.
fn other_policies() -> Vec<Answers> {
    let mut policies = BASELINES.to_vec();
    let flips: [(&str, Flip); 7] = [
        ("vacmm, not deferring", |a| a.defers_kernel_alias ^= true),
        ("vacmm, not restoring", |a| a.restores_cacheability ^= true),
        ("vacmm, not tracking live spaces", |a| {
            a.tracks_live_spaces ^= true
        }),
        ("vacmm, without windows", |a| a.uses_colour_windows ^= true),
        ("vacmm, flushing everything", |a| {
            a.flushes_everything ^= true
        }),
        ("vacmm, flushing whole mms", |a| a.flushes_whole_mm ^= true),
        ("vacmm, uncaching shared", |a| a.uncaches_shared ^= true),
    ];
    for (name, flip) in flips {
        let mut a = VACMM;
        a.name = name;
        flip(&mut a);
        policies.push(a);
    }
    policies
}

/// The counters' line of one program.
fn program(world: &mut World, seed: u32, ops: u32, label: &str) -> String {
    let mut rng = XorShift::new(seed);
    for op in 0..ops {
        let next = random_op(&mut rng, world);
        if let Err(failure) = world.apply(&next) {
            panic!("{label}, op {op}: {failure}");
        }
    }
    let engine = world.m.engine.counters();
    let model = world.m.sys.mem.counters();
    format!("{label}: {engine:?}\n    model: {model:?}\n")
}

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
            for n in 0..PROGRAMS {
                let seed = 0xc057_0000 ^ (n << 8) ^ index as u32;
                let mut world = World::configured(model, switching, aligned);
                text += &program(&mut world, seed, OPS, &format!("{name}{label} #{n}"));
            }
        }
        let switch = match Arch::of(&model.info()) {
            Arch::Armv5 => SwitchPolicy::VivtFlush,
            Arch::Armv6 => SwitchPolicy::Asid,
        };
        for policy in other_policies() {
            let label = format!("{name} {}", policy.name);
            match Machine::with_policy(model, switch, Box::new(policy)) {
                Ok(m) => {
                    // Aliasing caches without colour alignment: aliases at
                    // other colours, the paths the policies differ on.
                    let mut world = World::on(m, !kind.aliases());
                    let seed = 0xc057_1000 ^ index as u32;
                    text += &program(&mut world, seed, POLICY_OPS, &label);
                }
                Err(refused) => text += &format!("{label}: refused, {refused}\n"),
            }
        }
    }
    text
}

#[test]
fn maintenance_costs_match_the_pinned_file() {
    crate::tests::golden::check(
        "maintenance-costs.txt",
        &costs(),
        "what the programs cost now (more maintenance is waste, less may be a missing flush \
         the oracle happened not to see)",
    );
}
