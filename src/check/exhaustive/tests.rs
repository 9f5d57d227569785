//! The bounded exhaustive run, the planted bug it must catch, and
//! reproducers of what it found.

use std::time::Instant;

use super::*;

/// The default bound: all targets together take about two minutes on a
/// loaded two-core machine (about 3,300 sequences per target at 100–190
/// a second: a fresh world with the set-up costs about 12 ms, a
/// fingerprint about 0.14 ms). `VACMM_EXHAUSTIVE_DEPTH=4` runs about
/// 30,000 sequences per target, two to four minutes each;
/// `VACMM_EXHAUSTIVE_TARGET=1136` only the targets whose names contain it.
pub const DEFAULT_DEPTH: usize = 3;

fn depth() -> usize {
    std::env::var("VACMM_EXHAUSTIVE_DEPTH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_DEPTH)
}

/// What a sequence costs: a fresh world with the set-up (replayed for
/// every sequence: a `World` cannot be cloned — the model holds 264 MiB of
/// lazily zeroed memory, versions and truth) and a fingerprint.
#[test]
fn costs() {
    let target = targets()[2];
    let start = Instant::now();
    let n = 10;
    for _ in 0..n {
        drop(target.world());
    }
    let per_world = start.elapsed() / n;
    let world = target.world();
    let start = Instant::now();
    for _ in 0..100 {
        core::hint::black_box(fingerprint(&world));
    }
    let per_fp = start.elapsed() / 100;
    eprintln!(
        "{}: a fresh world with the set-up: {per_world:?}; a fingerprint: {per_fp:?}",
        target.name
    );
}

#[test]
fn every_sequence_up_to_k() {
    use std::fmt::Write as _;
    let k = depth();
    let alphabet = alphabet();
    let mut report = String::new();
    let _ = writeln!(report, "alphabet ({} events):", alphabet.len());
    for e in &alphabet {
        let _ = writeln!(report, "  {}", e.name);
    }
    let _ = writeln!(report, "{HEADER}");
    let mut failed = Vec::new();
    // `VACMM_EXHAUSTIVE_TARGET=<part of a name>`: only those targets.
    let only = std::env::var("VACMM_EXHAUSTIVE_TARGET").unwrap_or_default();
    for target in targets().into_iter().filter(|t| t.name.contains(&*only)) {
        let stats = explore(&target, &alphabet, k, false);
        let _ = writeln!(report, "{}", row(&stats));
        if let Some(f) = stats.failures.first() {
            let _ = writeln!(
                report,
                "  shortest failing sequence: {:?}\n  {}",
                f.events, f.failure
            );
            failed.push((target.name, f.events.clone()));
        }
    }
    eprintln!("{report}");
    // `cargo xtask test` prints the reports it finds here.
    if let Ok(dir) = std::env::var("VACMM_REPORT_DIR") {
        let _ = std::fs::write(std::path::Path::new(&dir).join("exhaustive.txt"), &report);
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// A replay reaches the same fingerprint: the enumeration's replays and
/// its pruning rest on it.
#[test]
fn fingerprints_are_deterministic_and_tell_states_apart() {
    let alphabet = alphabet();
    for target in targets() {
        let run = |events: &[usize]| {
            let mut world = target.world();
            for &e in events {
                if let Some(op) = alphabet[e].op(&world) {
                    world.apply(&op).expect("no failure");
                }
            }
            fingerprint(&world)
        };
        assert_eq!(run(&[0, 4, 8]), run(&[0, 4, 8]), "{}", target.name);
        assert_ne!(run(&[]), run(&[0]), "{}: a store", target.name);
        assert_ne!(run(&[0]), run(&[0, 8]), "{}: a load", target.name);
    }
}

/// A planted bug: the engine believes the cache is PIPT (every fill and
/// copy, no maintenance). The enumeration finds it within three events on
/// every aliasing preset.
#[test]
fn a_blind_engine_is_caught() {
    let alphabet = alphabet();
    for (name, model) in presets().into_iter().take(3) {
        let target = Target {
            name,
            model,
            switching: Switching::Default,
            blind: true,
        };
        let stats = explore(&target, &alphabet, 3, true);
        let found = stats.failures.first();
        eprintln!(
            "{name}, blind: {} sequences to the first failure: {:?}",
            stats.sequences,
            found.map(|f| &f.events)
        );
        assert!(found.is_some(), "{name}: the blind engine passed");
    }
}

/// Replays the set-up (with the fork) and `events` on `target`: the first
/// failure.
fn reproduce(target: &Target, events: &[Action], procs: &[u8]) -> Option<Failure> {
    let m = Machine::with_switching(target.model, target.switching);
    let mut world = World::on(m, false);
    for op in setup(true) {
        world.apply(&op).expect("set-up");
    }
    for (action, &proc) in events.iter().zip(procs) {
        let op = ev("", proc, *action).any_op(&world).expect("enabled");
        if let Err(f) = world.apply(&op) {
            return Some(f);
        }
    }
    None
}

/// Known bug 3, found by the enumeration at depth 3 on the ARM926 (the
/// kernel writes through `flush_dcache_page` while a user holds a dirty
/// line of the page: a stale write-back).
#[test]
fn flush_dcache_page_after_a_users_store_on_vivt() {
    let target = targets()[0];
    let failure = reproduce(
        &target,
        &[
            Action::Load(SITE_A),
            Action::Store(SITE_A, 0xa1),
            Action::KernelWrite(KernelWriteVia::PageCacheWrite, 0x46),
        ],
        &[1, 1, 0],
    );
    assert!(failure.is_none(), "{}", failure.unwrap());
}

/// ARM926 under FCSE PIDs: P0 maps an anonymous page and forks; the child
/// reads it, the parent writes it (a copy-on-write fault), and the child
/// reads the parent's store.
#[test]
fn fcse_child_sees_the_parents_copy_on_write_store() {
    let target = targets()[1];
    assert_eq!(target.switching, Switching::Fcse);
    let failure = reproduce(
        &target,
        &[
            Action::Load(SITE_N),
            Action::Store(SITE_N, 0xe0),
            Action::Load(SITE_N),
        ],
        &[1, 0, 1],
    );
    assert!(failure.is_none(), "{}", failure.unwrap());
}

/// ARM926 under FCSE PIDs, one process: it maps the file page at A and,
/// at the same colour, at C; it reads and writes C; the kernel's write
/// through a `Kmap` reads the page's old word (the user's dirty line was
/// left in the cache). Also found: the same in a forked child, and a child
/// reading stale data after the kernel's write.
#[test]
fn fcse_kmap_misses_a_users_dirty_line() {
    let target = targets()[1];
    let m = Machine::with_switching(target.model, target.switching);
    let mut world = World::on(m, false);
    for op in setup(false) {
        world.apply(&op).expect("set-up");
    }
    let mut failure = None;
    for action in [
        Action::Load(SITE_C),
        Action::Store(SITE_C, 0xc0),
        Action::KernelWrite(KernelWriteVia::Kmap, 0x4b),
    ] {
        let op = ev("", 0, action).any_op(&world).expect("enabled");
        if let Err(f) = world.apply(&op) {
            failure = Some(f);
            break;
        }
    }
    assert!(failure.is_none(), "{}", failure.unwrap());
}

/// ARM1136 (32K and 64K), colour alignment off: after the set-up the
/// kernel writes (or only reads) the file page through a `Kmap`; P1 stores at B (another
/// colour than A), then its mapping of B goes (`MAP_FIXED` over it, or P1
/// exits) and a load at A's colour (P1 at A, P0 at C) returns the
/// kernel's word, not P1's — and the oracle saw nothing: only the content
/// reference caught it (found at depth 4 on the engine before
/// `update_mmu_cache` dropped the kernel alias's lines for a user at
/// another colour; passes since).
#[test]
fn a_store_at_another_colour_is_lost_after_a_kernel_write() {
    let mut failures = Vec::new();
    for target in &targets()[2..4] {
        for (kernel, goes, by, load_by, load_at) in [
            (
                Action::KernelWrite(KernelWriteVia::Kmap, 0x4b),
                Action::MapFile(SITE_B, Prot::ReadWriteExec),
                1,
                1,
                SITE_A,
            ),
            (
                Action::KernelWrite(KernelWriteVia::Kmap, 0x4b),
                Action::Exit,
                1,
                0,
                SITE_C,
            ),
            (
                Action::KernelRead,
                Action::MapFile(SITE_B, Prot::ReadWriteExec),
                1,
                1,
                SITE_A,
            ),
        ] {
            let failure = reproduce(
                target,
                &[
                    kernel,
                    Action::Store(SITE_B, 0xb1),
                    goes,
                    Action::Load(load_at),
                ],
                &[0, 1, by, load_by],
            );
            if let Some(f) = failure {
                failures.push((target.name, f));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
