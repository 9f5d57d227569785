//! Configuration checked at construction (issue 19, findings 6 and 7):
//! address-space layouts the engine's cache cannot serve, and policy ×
//! switcher × cache combinations that cannot be kept coherent, are refused
//! with a typed error; every combination that is accepted runs random
//! programs clean on the model.
//!
//! `VACMM_SWEEP_OPS` / `VACMM_SWEEP_CASES` size the sweep's programs
//! (default one program of 300 operations per accepted combination);
//! `VACMM_SWEEP_EVERY=k` keeps one answer set in k, and every named policy
//! (the mutants' quick suite uses it: the full sweep is the biggest test).

extern crate std;

use std::boxed::Box;
use std::format;
use std::string::{String, ToString};

use super::*;
use crate::check::{World, XorShift, random_op};
use crate::mm::config::{ConfigError, KernelRange};
use crate::mm::space::SpaceConfig;
use crate::mm::unmapped::{Direction, Layout};
use crate::mmu::{Arch, SwitchPolicy};

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
    /// Never the whole cache.
    Never,
}

/// A policy whose every answer is a field: the sweep's.
#[derive(Clone, Copy, Debug)]
pub(super) struct Answers {
    pub(super) name: &'static str,
    pub(super) defers_kernel_alias: bool,
    pub(super) restores_cacheability: bool,
    pub(super) tracks_live_spaces: bool,
    pub(super) uses_colour_windows: bool,
    pub(super) flushes_everything: bool,
    pub(super) flushes_whole_mm: bool,
    pub(super) uncaches_shared: bool,
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
            Threshold::Never => u64::MAX,
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
pub(super) const VACMM: Answers = Answers {
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
pub(super) const BASELINES: [Answers; 4] = [
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

/// Every combination of the seven yes/no answers (the threshold the
/// cache's own), named by the bits.
fn every_answer_set() -> impl Iterator<Item = Answers> {
    (0..1u32 << 7).map(|bits| {
        let bit = |i: u32| bits >> i & 1 == 1;
        Answers {
            name: "swept",
            defers_kernel_alias: bit(0),
            restores_cacheability: bit(1),
            tracks_live_spaces: bit(2),
            uses_colour_windows: bit(3),
            flushes_everything: bit(4),
            flushes_whole_mm: bit(5),
            uncaches_shared: bit(6),
            threshold: Threshold::Cache,
        }
    })
}

const SWITCHERS: [SwitchPolicy; 3] = [
    SwitchPolicy::VivtFlush,
    SwitchPolicy::VivtFcse,
    SwitchPolicy::Asid,
];

// ---- one combination ---------------------------------------------------------------

/// What became of one combination.
#[derive(Debug)]
enum Outcome {
    /// Refused at construction, with the error.
    Refused(EngineConfigError),
    /// Built and ran its programs clean.
    Clean,
    /// Built, then a program failed (or panicked).
    Failed(String),
}

/// A machine for the combination, or the engine's refusal.
fn machine(
    model: CpuModel,
    switch: SwitchPolicy,
    policy: Answers,
) -> Result<Machine, EngineConfigError> {
    Machine::with_policy(model, switch, Box::new(policy))
}

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
        let m = match machine(model, switch, policy) {
            Ok(m) => m,
            Err(refusal) => {
                // The refusal is the configuration's, whatever the program.
                assert_eq!(
                    check_configuration(&model.info(), switch, &policy),
                    Err(refusal)
                );
                return Outcome::Refused(refusal);
            }
        };
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

// ---- finding 7: policy × switcher × cache ------------------------------------------

/// The refusals as `coherence::config`'s documentation tables them,
/// written out again: the sweep holds the engine to its documentation.
fn refused_by_the_table(info: &CacheInfo, switch: SwitchPolicy, policy: &Answers) -> bool {
    let armv5 = crate::mmu::Arch::of(info) == crate::mmu::Arch::Armv5;
    match switch {
        SwitchPolicy::Asid => armv5,
        SwitchPolicy::VivtFlush => !armv5,
        SwitchPolicy::VivtFcse => info.kind == CacheKind::Vivt && !policy.tracks_live_spaces,
    }
}

/// Finding 7, first half: a policy that trusts every switch to have
/// flushed the other spaces' lines (`tracks_live_spaces() == false`)
/// under FCSE PIDs, whose switches flush nothing. The engine maintains
/// the running space's lines at their unmodified addresses and skips every
/// other space: refused.
#[test]
fn fcse_with_a_policy_not_tracking_live_spaces_is_refused() {
    let policy = Answers {
        tracks_live_spaces: false,
        ..VACMM
    };
    let outcome = run(
        CpuModel::arm926(),
        SwitchPolicy::VivtFcse,
        policy,
        8,
        2000,
        0x0f0f_0f0f,
    );
    let Outcome::Refused(refusal) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        refusal,
        EngineConfigError::Policy {
            policy: "vacmm",
            answer: PolicyAnswer::DoesNotTrackLiveSpaces,
            switcher: SwitchPolicy::VivtFcse,
            cache: CacheKind::Vivt,
        }
    );
    let message = refusal.to_string();
    assert!(
        message.contains("tracks_live_spaces() = false")
            && message.contains("FCSE")
            && message.contains("VIVT"),
        "{message}"
    );
    // The same policy with the flushing switcher is served.
    let flushing = run(
        CpuModel::arm926(),
        SwitchPolicy::VivtFlush,
        policy,
        2,
        2000,
        1,
    );
    assert!(matches!(flushing, Outcome::Clean), "{flushing:?}");
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
        match outcome {
            Outcome::Clean => {}
            Outcome::Failed(e) => panic!("{name}: {e}"),
            Outcome::Refused(e) => panic!("{name}: refused: {e}"),
        }
    }
}

/// Found by the sweep: ASIDs on a VIVT cache. The ASID switcher flushes no
/// cache, and VIVT lines carry no ASID: the next space hits the previous
/// one's lines at the same addresses. (ARMv5 has no ASIDs at all: the
/// context key it writes is the FCSE PID.) Refused.
#[test]
fn asid_switcher_on_a_vivt_cache_is_refused() {
    let outcome = run(
        CpuModel::arm926(),
        SwitchPolicy::Asid,
        VACMM,
        4,
        2000,
        0xa51d,
    );
    let Outcome::Refused(refusal) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        refusal,
        EngineConfigError::Switcher {
            switcher: SwitchPolicy::Asid,
            cache: CacheKind::Vivt,
            arch: crate::mmu::Arch::Armv5,
        }
    );
    assert!(refusal.to_string().contains("ASID"), "{refusal}");
}

/// Found by the sweep: the flushing switcher on ARMv6. It assigns no ASID,
/// and ARMv6 tables flush their TLB entries by the ASID they were given:
/// an `mprotect` left stale entries (the oracle's `StaleTlbEntry`, a store
/// through a read-only page). Refused on every ARMv6 preset.
#[test]
fn flushing_switcher_on_armv6_is_refused() {
    for (name, model) in presets().into_iter().skip(1) {
        let outcome = run(model, SwitchPolicy::VivtFlush, VACMM, 2, 2000, 0xf1);
        assert!(
            matches!(
                outcome,
                Outcome::Refused(EngineConfigError::Switcher {
                    switcher: SwitchPolicy::VivtFlush,
                    arch: crate::mmu::Arch::Armv6,
                    ..
                })
            ),
            "{name}: {outcome:?}"
        );
    }
}

/// An engine checks the switcher it is given against the one it was built
/// for: a mismatch is refused before anything is switched.
#[test]
fn a_switcher_of_another_kind_is_refused_at_the_switch() {
    let mut m = Machine::new(CpuModel::arm926());
    let mut space = m.space();
    let mut fcse =
        crate::mmu::ContextSwitcher::vivt_fcse(crate::mmu::KeyAllocator::fcse_pids(1, 63).unwrap());
    // SAFETY: the model's registers; no real translation changes.
    let result = unsafe { m.engine.switch_to(&mut fcse, &mut m.sys, &mut space) };
    assert_eq!(
        result,
        Err(CoherenceError::SwitcherMismatch {
            declared: SwitchPolicy::VivtFlush,
            given: SwitchPolicy::VivtFcse
        })
    );
    assert_eq!(fcse.counters().switches, 0);
}

/// The whole matrix: every yes/no answer set of [`Policy`] (128), vacmm's
/// and the bench's baselines with their thresholds, × the three switchers ×
/// the five presets. Each combination is refused at construction with a
/// typed error or runs its random programs clean.
#[test]
fn policy_switcher_cache_matrix_runs_clean_or_is_refused() {
    let cases = env("VACMM_SWEEP_CASES", 1);
    let ops = env("VACMM_SWEEP_OPS", 300);
    let every = env("VACMM_SWEEP_EVERY", 1).max(1) as usize;
    let mut policies: std::vec::Vec<Answers> = every_answer_set().step_by(every).collect();
    policies.push(VACMM);
    policies.extend(BASELINES);
    policies.push(Answers {
        name: "never-whole",
        threshold: Threshold::Never,
        ..VACMM
    });
    let mut failed = std::vec::Vec::new();
    let (mut clean, mut refused) = (0, 0);
    for (p, &policy) in policies.iter().enumerate() {
        for &switch in &SWITCHERS {
            for (preset, (name, model)) in presets().into_iter().enumerate() {
                let seed = (p as u32) << 8 | (preset as u32) << 4;
                let outcome = run(model, switch, policy, cases, ops, seed);
                let refusal_expected = refused_by_the_table(&model.info(), switch, &policy);
                let what = match outcome {
                    Outcome::Clean if !refusal_expected => {
                        clean += 1;
                        continue;
                    }
                    Outcome::Refused(_) if refusal_expected => {
                        refused += 1;
                        continue;
                    }
                    Outcome::Clean => "ran clean, but the table refuses it".to_string(),
                    Outcome::Refused(e) => format!("refused ({e}), but the table serves it"),
                    Outcome::Failed(e) => e,
                };
                failed.push(format!("{policy:?} × {switch:?} × {name}: {what}"));
            }
        }
    }
    std::eprintln!(
        "{} combinations: {clean} clean ({cases} × {ops} operations each), {refused} refused, \
         {} failed",
        policies.len() * SWITCHERS.len() * presets().len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

// ---- finding 6: layouts ------------------------------------------------------------

/// A space on `m` with `layout`, made the way the machine makes every one
/// (through the engine, which knows the cache).
fn space_with(m: &mut Machine, layout: Layout) -> Result<AddressSpace, ConfigError> {
    let (_, table) = m.table().expect("an L1 table");
    let config = SpaceConfig {
        layout,
        stack_guard_gap: 0,
        max_mappings: SpaceConfig::DEFAULT_MAX_MAPPINGS,
    };
    match m.engine.create_space(&mut m.sys, config, table) {
        Ok(space) => Ok(space),
        Err(CoherenceError::Space(SpaceError::Config(e))) => Err(e),
        Err(e) => panic!("not a configuration error: {e}"),
    }
}

/// Finding 6: an `mmap_base` that is not page aligned. `mmap` then
/// returned unaligned addresses, which `munmap` refused.
#[test]
fn unaligned_mmap_base_is_refused() {
    let mut m = Machine::new(CpuModel::arm926());
    let layout = Layout {
        mmap_base: BASE - 0x123,
        ..m.layout()
    };
    let result = space_with(&mut m, layout);
    assert_eq!(
        result.err(),
        Some(ConfigError::MmapBaseUnaligned {
            mmap_base: BASE - 0x123
        })
    );
}

/// Finding 6: a colour span that is not a multiple of the page. Shared
/// mappings were placed at unaligned addresses: pages resident outside
/// every VMA, and a write fault answering `Reused` forever while the entry
/// stayed read-only.
#[test]
fn colour_span_not_a_page_multiple_is_refused() {
    let mut m = Machine::new(CpuModel::arm1136_64k());
    let layout = Layout {
        colour_span: 0x1800,
        ..m.layout()
    };
    let result = space_with(&mut m, layout);
    assert_eq!(
        result.err(),
        Some(ConfigError::ColourSpanNotPageMultiple {
            colour_span: 0x1800
        })
    );
}

/// Finding 6: a colour span that turns colour matching on but is smaller
/// than the cache's colour alignment (two pages on the ARM1136 64K's four
/// colours): shared mappings at colours the layout claims to match.
#[test]
fn colour_span_below_the_cache_alignment_is_refused() {
    let mut m = Machine::new(CpuModel::arm1136_64k());
    let layout = Layout {
        colour_span: 2 * PAGE,
        ..m.layout()
    };
    let result = space_with(&mut m, layout);
    assert_eq!(
        result.err(),
        Some(ConfigError::ColourSpanBelowCacheAlignment {
            colour_span: 2 * PAGE,
            alignment: 4 * PAGE,
        })
    );
}

/// The layouts the machine, the bench and the demo use stay accepted,
/// and so does a layout without colour matching (a colour span of one
/// page), which the engine keeps coherent by making aliases uncached.
#[test]
fn working_layouts_are_accepted() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let layout = m.layout();
        assert!(space_with(&mut m, layout).is_ok(), "{name}");
        let uncoloured = Layout {
            colour_span: PAGE,
            direction: Direction::BottomUp,
            ..m.layout()
        };
        assert!(space_with(&mut m, uncoloured).is_ok(), "{name}");
    }
}

/// The engine keeps user space clear of its own ranges: the linear map of
/// the frames it manages and its kernel windows.
#[test]
fn user_space_over_the_kernel_ranges_is_refused() {
    let mut m = Machine::new(CpuModel::arm1136_64k());
    let over_frames = Layout {
        min_addr: crate::check::machine::USER_FRAMES,
        ..m.layout()
    };
    assert!(matches!(
        space_with(&mut m, over_frames),
        Err(ConfigError::OverlapsKernel {
            range: KernelRange::LinearMap,
            ..
        })
    ));
    let over_windows = Layout {
        task_size: crate::check::machine::WINDOWS + PAGE,
        ..m.layout()
    };
    assert!(matches!(
        space_with(&mut m, over_windows),
        Err(ConfigError::OverlapsKernel {
            range: KernelRange::Windows,
            start: crate::check::machine::WINDOWS,
            ..
        })
    ));
}

/// The all-uncached policy keeps shared mappings uncached. A private,
/// cached, mapping of the same page in another space — a process that
/// mapped a file private and has only read it — holds lines of the frame
/// that an uncached store through the shared mapping does not update, on
/// any cache kind (the ARM ARM gives no coherence between mismatched
/// memory attributes). Run on every preset the policy serves: the private
/// reader must see the shared writer's store.
#[test]
fn all_uncached_a_private_reader_sees_an_uncached_shared_writer() {
    let policy = BASELINES[3];
    assert_eq!(policy.name, "all-uncached");
    let mut ran = 0;
    for (name, model) in presets() {
        let arch = Arch::of(&model.info());
        let switch = match arch {
            Arch::Armv5 => SwitchPolicy::VivtFlush,
            Arch::Armv6 => SwitchPolicy::Asid,
        };
        let Ok(mut m) = Machine::with_policy(model, switch, Box::new(policy)) else {
            continue;
        };
        let mut reader = m.space();
        let mut writer = m.space();
        let file = m.file(1);
        let frame = m.sys.allocator.allocate_any().unwrap();
        m.sys.objects.insert_page(file, 0, frame).unwrap();
        m.switch_to(&mut reader);
        let private = MmapArgs {
            shared: false,
            ..MmapArgs::shared_object(file, 0, PAGE)
        };
        let r = reader.mmap(&mut m.sys, private).unwrap().as_u32();
        assert_eq!(user_load(&mut m, &mut reader, r + 4, Faults::Engine), 0);
        m.switch_to(&mut writer);
        let w = writer
            .mmap(&mut m.sys, MmapArgs::shared_object(file, 0, PAGE))
            .unwrap()
            .as_u32();
        // Each round the reader's load caches the line again.
        for round in 0..3 {
            user_store(&mut m, &mut writer, w + 4, 0x5eed + round, Faults::Engine);
            m.switch_to(&mut reader);
            let seen = user_load(&mut m, &mut reader, r + 4, Faults::Engine);
            let found = (violations(&mut m), seen);
            assert_eq!(found, (vec![], 0x5eed + round), "{name}, round {round}");
            m.switch_to(&mut writer);
        }
        ran += 1;
    }
    assert!(ran >= 4, "the policy serves most presets ({ran})");
}

/// A boxed policy is the policy: `Box<P>` forwards every question (the
/// engine the world builds holds a `Box<dyn Policy>`; a forwarding that
/// answered the trait's default instead would run every swept policy as
/// vacmm's without a sign). Each answer set of the sweep with each field
/// flipped in turn, so that every forwarded answer is seen both ways.
#[test]
fn a_boxed_policy_answers_every_question_as_the_policy() {
    let infos = [
        CpuModel::arm926().info(),
        CpuModel::arm1136_32k().info(),
        CpuModel::arm1176_16k().info(),
    ];
    let mut sets = std::vec![VACMM];
    sets.extend(BASELINES);
    for base in sets.clone() {
        for flip in 0..7 {
            let mut a = base;
            match flip {
                0 => a.defers_kernel_alias ^= true,
                1 => a.restores_cacheability ^= true,
                2 => a.tracks_live_spaces ^= true,
                3 => a.uses_colour_windows ^= true,
                4 => a.flushes_everything ^= true,
                5 => a.flushes_whole_mm ^= true,
                _ => a.uncaches_shared ^= true,
            }
            sets.push(a);
        }
        for threshold in [
            Threshold::Cache,
            Threshold::ZeroIfAliasingVipt,
            Threshold::ThreePagesIfVivt,
            Threshold::Never,
        ] {
            sets.push(Answers { threshold, ..base });
        }
    }
    for a in sets {
        let boxed: Box<dyn Policy> = Box::new(a);
        let answers = |p: &dyn Policy| {
            (
                p.name(),
                [
                    p.defers_kernel_alias(),
                    p.restores_cacheability(),
                    p.tracks_live_spaces(),
                    p.uses_colour_windows(),
                    p.flushes_everything(),
                    p.flushes_whole_mm(),
                    p.uncaches_shared(),
                ],
                infos.map(|info| p.range_threshold(&info)),
            )
        };
        // Through the `Box<P>` impl (a `&Box<dyn Policy>` as `&dyn Policy`).
        assert_eq!(answers(&boxed), answers(&a), "{a:?}");
    }
}

/// The kernel rewrites code in a page-cache page a process runs, then
/// (with `flush`) calls `flush_dcache_page`; the process fetches it.
/// Returns the I-cache flushes counted for the call, the word fetched and
/// the oracle's findings.
fn kernel_rewrites_running_code(
    model: CpuModel,
    policy: Answers,
    flush: bool,
) -> (u64, u32, std::vec::Vec<crate::sim::ViolationKind>) {
    use crate::mm::space::{FaultAccess, MmapArgs, Protection};
    let switch = match Arch::of(&model.info()) {
        Arch::Armv5 => SwitchPolicy::VivtFlush,
        Arch::Armv6 => SwitchPolicy::Asid,
    };
    let mut m = machine(model, switch, policy).unwrap();
    let mut space = m.space();
    m.switch_to(&mut space);
    let file = m.file(1);
    let args = MmapArgs {
        prot: Protection::READ | Protection::EXEC,
        ..MmapArgs::shared_object(file, 0, PAGE)
    };
    let va = space.mmap(&mut m.sys, args).unwrap();
    m.engine
        .fault(&mut m.sys, &mut space, va, FaultAccess::Execute)
        .unwrap();
    m.sys.mem.fetch(va.as_u32()).unwrap();
    let pa = space.resident_at(va).unwrap();
    let kva = m.engine.kernel_va(pa).as_u32();
    m.sys.mem.store(kva, 4, 0xe12f_ff1e).unwrap();
    let before = m.engine.counters().icache_flushes;
    if flush {
        m.engine.flush_dcache_page(&mut m.sys, pa).unwrap();
    }
    let flushes = m.engine.counters().icache_flushes - before;
    let fetched = m.sys.mem.fetch(va.as_u32()).unwrap();
    let bad = m.sys.mem.take_violations().iter().map(|v| v.kind).collect();
    (flushes, fetched, bad)
}

/// Under every baseline policy and vacmm's the process fetches the new
/// code, and the engine counts exactly one I-cache flush for it
/// (`Counters::icache_flushes`, what an embedder's statistics show).
#[test]
fn kernel_code_writes_are_fetched_and_counted_under_every_policy() {
    let mut policies = std::vec![VACMM];
    policies.extend(BASELINES);
    for (name, model) in presets() {
        for &policy in &policies {
            assert_eq!(
                kernel_rewrites_running_code(model, policy, true),
                (1, 0xe12f_ff1e, std::vec![]),
                "{name}, {}",
                policy.name
            );
        }
    }
}

/// The twin: without `flush_dcache_page` the I-cache keeps the old code.
#[test]
fn twin_kernel_code_writes_without_flush_dcache_page_fetch_stale_code() {
    for (name, model) in presets() {
        let (_, fetched, bad) = kernel_rewrites_running_code(model, VACMM, false);
        assert_ne!(fetched, 0xe12f_ff1e, "{name}");
        assert!(
            bad.contains(&crate::sim::ViolationKind::StaleFetch),
            "{name}: {bad:?}"
        );
    }
}
