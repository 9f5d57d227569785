//! Settled memory: the verdicts are those of per-byte records, and the
//! records stay few. Each scenario runs with settling before every store
//! (budget 0) and has a twin in which settling also forgets the granules a
//! cache holds (the planted bug `settle_copies_too`): the twin's verdict
//! changes, so the scenario reaches the pin it tests.

use super::super::*;
use super::{DEFAULT_BUDGET, GRANULE, Memory};
use crate::cache::CacheMaintenance;

const WB: MemType = MemType::WriteBack;

fn at(pa: u32) -> Translated {
    Translated {
        pa,
        mem: WB,
        global: true,
    }
}

fn eager(model: CpuModel, planted: bool) -> Sim {
    let mut sim = Sim::new(model, 1 << 20);
    sim.set_record_budget(0);
    sim.settle_copies_too = planted;
    sim
}

fn kinds(sim: &mut Sim) -> Vec<ViolationKind> {
    sim.take_violations().iter().map(|v| v.kind).collect()
}

/// A store that reached memory, a line filled from it, a store to
/// another word of the line's granule (which puts it in play under the
/// line), a store elsewhere (which settles memory), and the line's first
/// word read again: fresh.
fn a_filled_line_read_again(planted: bool) -> Vec<ViolationKind> {
    let mut sim = eager(CpuModel::arm926().with_write_buffer(0), planted);
    let (user, kernel, pa) = (0x0001_0000, 0xc000_2000, 0x2000);
    // The ARM926 does not allocate on a write miss: the store goes to memory.
    sim.store_at(kernel, 4, 7, at(pa)).unwrap();
    assert_eq!(sim.load_at(user, 4, at(pa)), Ok(7));
    sim.store_at(kernel + 4, 4, 9, at(pa + 4)).unwrap();
    sim.store_at(kernel + 0x1000, 4, 1, at(pa + 0x1000))
        .unwrap();
    assert_eq!(sim.load_at(user, 4, at(pa)), Ok(7));
    kinds(&mut sim)
}

#[test]
fn a_line_a_cache_holds_is_not_settled_under_it() {
    assert_eq!(a_filled_line_read_again(false), []);
    assert_eq!(
        a_filled_line_read_again(true),
        [ViolationKind::StaleRead],
        "the twin: settling the cached granule renames memory under the line"
    );
}

/// Code stored, cleaned, fetched, then fetched again after a store elsewhere.
fn code_fetched_again(
    planted: bool,
    model: CpuModel,
    drop_icache_line: bool,
) -> Vec<ViolationKind> {
    let mut sim = eager(model, planted);
    let pa = 0x3000;
    sim.store_at(pa, 4, 0xe12f_ff1e, at(pa)).unwrap();
    sim.maintain_line(LineOp::CleanInvalidate, pa, Some(at(pa)));
    sim.drain_write_buffer();
    assert_eq!(sim.fetch_at(pa, 4, at(pa)), Ok(0xe12f_ff1e));
    // Another word of the granule stored (and landed): in play under the
    // fetched copies.
    sim.store_at(pa + 8, 4, 0, at(pa + 8)).unwrap();
    sim.drain_write_buffer();
    if drop_icache_line {
        // ARMv6: invalidating the I line leaves the branch target cache's
        // entry, the only copy left.
        sim.maintain_line(LineOp::InvalidateInstruction, pa, Some(at(pa)));
    }
    sim.store_at(0x8000, 4, 1, at(0x8000)).unwrap();
    assert_eq!(sim.fetch_at(pa, 4, at(pa)), Ok(0xe12f_ff1e));
    kinds(&mut sim)
}

#[test]
fn an_instruction_line_is_not_settled_under_it() {
    assert_eq!(code_fetched_again(false, CpuModel::arm926(), false), []);
    assert_eq!(
        code_fetched_again(true, CpuModel::arm926(), false),
        [ViolationKind::StaleFetch]
    );
}

#[test]
fn a_branch_target_cache_entry_is_not_settled_under_it() {
    assert_eq!(code_fetched_again(false, CpuModel::arm1176_16k(), true), []);
    assert_eq!(
        code_fetched_again(true, CpuModel::arm1176_16k(), true),
        [ViolationKind::StaleFetch]
    );
}

/// What settling is for: a stale alias is still found after its granule
/// was settled and read again, and named by the store that made it stale.
#[test]
fn a_stale_alias_is_found_and_named_after_settling() {
    let mut sim = eager(CpuModel::arm926().with_write_buffer(0), false);
    let (user, kernel, pa) = (0x0001_0000, 0xc000_2000, 0x2000);
    for round in 0..3u32 {
        // The line is dropped between rounds, so the granule settles.
        sim.invalidate_dcache_all();
        sim.store_at(0x9000, 4, round, at(0x9000)).unwrap();
        sim.load_at(user, 4, at(pa)).unwrap();
        sim.set_site(Some(0x100 + round));
        sim.store_at(kernel, 4, round, at(pa)).unwrap();
        sim.load_at(user, 4, at(pa)).unwrap();
        let v = sim.take_violations();
        assert_eq!(v.len(), 1, "round {round}: {v:?}");
        assert_eq!(v[0].kind, ViolationKind::StaleRead);
        assert_eq!(
            v[0].last_writer,
            Writer::Cpu {
                space: KERNEL,
                va: kernel,
                pc: Some(0x100 + round)
            }
        );
    }
}

/// The memory target: a run that stores once to each of 64 Ki granules
/// (2 MiB, far more than any cache holds) keeps records for about its
/// budget's worth, not for every granule touched.
#[test]
fn records_stay_near_the_budget_however_much_is_touched() {
    let mut sim = Sim::new(CpuModel::arm926(), 4 << 20);
    for g in 0..(64 << 10) {
        let pa = g * GRANULE;
        sim.store_at(0xc000_0000 + pa, 4, g, at(pa)).unwrap();
    }
    let records = sim.memory.live;
    assert!(
        records <= 2 * DEFAULT_BUDGET,
        "{records} records for 65,536 granules"
    );
    assert!(sim.violations().is_empty());
}

#[test]
fn pieces_split_at_granules() {
    let pieces: Vec<_> = Memory::pieces(30, 36).collect();
    assert_eq!(pieces, [(0, 30, 0, 2), (1, 0, 2, 32), (2, 0, 34, 2)]);
    assert_eq!(Memory::pieces(64, 0).count(), 0);
}

#[test]
fn a_write_back_older_than_memory_is_found_across_granules() {
    let mut m = Memory::new(0, 256);
    m.set_truth(0, 64, 5, 0, true);
    let mut versions = [5u64; 64];
    versions[40] = 3;
    assert_eq!(m.land(0, &versions), Some(40));
    assert_eq!(m.memory_version(40), 3);
    assert_eq!(m.first_behind(0, 64), Some((40, 3)));
    assert_eq!(m.first_stale(32, &[5; 8]), None);
    assert_eq!(m.first_stale(32, &[5, 5, 5, 5, 5, 5, 5, 4]), Some(7));
}

#[test]
fn whole_granules_written_with_memory_stay_settled() {
    let mut m = Memory::new(0, 256);
    m.set_truth(16, 96, 9, 2, true);
    // 16..32 and 96..112 are pieces; 32..96 two whole granules.
    assert_eq!(m.live, 2);
    assert_eq!(m.truth(40), (9, 2));
    assert_eq!(m.truth(16), (9, 2));
    assert_eq!(m.truth(0), (0, 0));
    // Settling keeps the newest version's writer and renames the rest.
    m.set_budget(0);
    m.set_truth(0, 4, 11, 3, true);
    let mut next = 100;
    m.sweep(
        |_| false,
        || {
            next += 1;
            next
        },
    );
    assert_eq!(m.live, 0);
    assert_eq!(m.truth(20), (101, 3));
    assert_eq!(m.truth(100), (102, 2));
}

/// Freshness stamps (`LineMeta::verified`): a store through a line keeps
/// it fresh only if nothing else changed its memory since it was found
/// fresh. Here another alias's store did, so the line holds a stale word
/// beside the one just stored, and reading it must be reported.
#[test]
fn a_store_through_a_line_does_not_make_its_stale_bytes_fresh() {
    for budget in [0, DEFAULT_BUDGET] {
        let mut sim = Sim::new(CpuModel::arm926().with_write_buffer(0), 1 << 20);
        sim.set_record_budget(budget);
        let (user, kernel, pa) = (0x0001_0000, 0xc000_2000, 0x2000);
        sim.load_at(user, 4, at(pa)).unwrap();
        // The kernel's store misses (no allocation on writes): memory.
        sim.store_at(kernel + 4, 4, 0x55, at(pa + 4)).unwrap();
        // The user's store hits its own line, stale in bytes 4..8.
        sim.store_at(user, 4, 0x66, at(pa)).unwrap();
        assert_eq!(sim.load_at(user, 4, at(pa)), Ok(0x66));
        assert!(sim.violations().is_empty());
        assert_eq!(sim.load_at(user + 4, 4, at(pa + 4)), Ok(0));
        assert_eq!(
            kinds(&mut sim),
            [ViolationKind::StaleRead],
            "budget {budget}"
        );
    }
}

/// Memory that starts above 0 (the i.MX31's RAM is at 0x8000_0000):
/// granules count from the base, for settling as for everything else.
fn filled_line_read_again_at(base: u32, planted: bool) -> Vec<ViolationKind> {
    let mut sim = Sim::try_new_at(CpuModel::arm926().with_write_buffer(0), base, 1 << 20)
        .expect("a page-aligned base");
    sim.set_record_budget(0);
    sim.settle_copies_too = planted;
    let (user, kernel, pa) = (0x0001_0000, 0xc000_2000, base + 0x2000);
    sim.store_at(kernel, 4, 7, at(pa)).unwrap();
    assert_eq!(sim.load_at(user, 4, at(pa)), Ok(7));
    sim.store_at(kernel + 4, 4, 9, at(pa + 4)).unwrap();
    sim.store_at(kernel + 0x1000, 4, 1, at(pa + 0x1000))
        .unwrap();
    assert_eq!(sim.load_at(user, 4, at(pa)), Ok(7));
    // A stale alias is found there as at 0.
    sim.store_at(kernel, 4, 8, at(pa)).unwrap();
    assert_eq!(sim.load_at(user, 4, at(pa)), Ok(7));
    kinds(&mut sim)
}

#[test]
fn memory_at_a_base_settles_and_reports_as_at_zero() {
    let base = 0x8000_0000;
    assert_eq!(
        filled_line_read_again_at(base, false),
        [ViolationKind::StaleRead]
    );
    assert_eq!(
        filled_line_read_again_at(base, true),
        [ViolationKind::StaleRead, ViolationKind::StaleRead],
        "the twin: the cached granule settled under its line"
    );
    let mut sim = Sim::try_new_at(CpuModel::arm926(), base, 1 << 20).unwrap();
    assert_eq!(
        sim.load_at(0x1000, 4, at(0x1000)),
        Err(SimError::OutOfMemory {
            pa: 0x1000,
            base,
            size: 1 << 20
        })
    );
    assert!(sim.load_at(0x1000, 4, at(base + (1 << 20))).is_err());
    assert_eq!(
        Sim::try_new_at(CpuModel::arm926(), 0xffff_f000, 0x2000).err(),
        Some(ModelError::MemoryRange {
            base: 0xffff_f000,
            bytes: 0x2000
        })
    );
    assert!(Sim::try_new_at(CpuModel::arm926(), 0x800, 0x1000).is_err());
}

/// Review finding: a fetch that hits a VIVT line of another physical page
/// (the page at that address was remapped) is reported as such, by the
/// same rule as a load, whatever the record budget: it compared the
/// versions of two different bytes before.
#[test]
fn a_fetch_from_a_remapped_pages_line_is_reported_at_any_budget() {
    for budget in [0, DEFAULT_BUDGET] {
        let mut sim = Sim::new(CpuModel::arm926().with_write_buffer(0), 1 << 20);
        sim.set_record_budget(budget);
        sim.fetch_at(0x0001_10d8, 4, at(0x20d8)).unwrap();
        sim.store_at(0xc000_40de, 2, 1, at(0x30de)).unwrap();
        sim.store_at(0xc000_8000, 4, 1, at(0x8000)).unwrap();
        // VA 0x110c0's line now maps physical 0x30c0.
        sim.fetch_at(0x0001_10cc, 4, at(0x30cc)).unwrap();
        assert_eq!(
            kinds(&mut sim),
            [ViolationKind::RemappedLineHit { line_pa: 0x20c0 }],
            "budget {budget}"
        );
    }
}

/// Review finding: with lines shorter than a granule, a store through a
/// line of another physical line (a VIVT hit, the translation's page
/// offset differing from the address's) does not stamp that line fresh.
#[test]
fn a_store_through_another_lines_alias_does_not_stamp_it_fresh() {
    let mut model = CpuModel::arm926().with_write_buffer(0);
    let sixteen = crate::cache::CacheGeometry::new(16 << 10, 4, 16).unwrap();
    model.dcache.geometry = sixteen;
    model.icache.geometry = sixteen;
    let mut sim = Sim::new(model, 1 << 20);
    sim.load_at(0x1000, 4, at(0x2000)).unwrap();
    // The line of VA 0x1000 holds physical 0x2000..0x2010; this store's
    // translation says 0x2010, in the same granule.
    sim.store_at(0x1000, 4, 9, at(0x2010)).unwrap();
    sim.take_violations();
    sim.load_at(0x1000, 4, at(0x2000)).unwrap();
    assert_eq!(kinds(&mut sim), [ViolationKind::StaleRead]);
}

/// The driver's side of the fetch fast path: while `fetch_line_is_fresh`
/// holds, fetches counted with `count_fetch_hits` leave the counters the
/// fetches themselves would; a store to the line, or a fetch the driver
/// could not give the model, ends it.
#[test]
fn skipped_fetches_count_as_the_fetches_would() {
    let run = |skip: bool| {
        let mut sim = Sim::new(CpuModel::arm926(), 1 << 20);
        let mut fresh_seen = 0;
        for round in 0..3u32 {
            for word in 0..8u32 {
                let va = 0x4000 + 4 * word;
                if skip && word > 0 && sim.fetch_line_is_fresh() {
                    sim.count_fetch_hits(1);
                    fresh_seen += 1;
                } else {
                    sim.fetch_at(va, 4, at(va)).unwrap();
                }
            }
            // New code in the line, cleaned, the I line invalidated.
            sim.store_at(0x4000, 4, round, at(0x4000)).unwrap();
            assert!(!sim.fetch_line_is_fresh(), "a store to the line");
            sim.maintain_line(LineOp::CleanInvalidate, 0x4000, Some(at(0x4000)));
            sim.drain_write_buffer();
            sim.maintain_line(LineOp::InvalidateInstruction, 0x4000, Some(at(0x4000)));
        }
        sim.fetch_at(0x4000, 4, at(0x4000)).unwrap();
        assert!(sim.fetch_line_is_fresh());
        sim.forget_fetched_line();
        assert!(!sim.fetch_line_is_fresh());
        assert!(sim.violations().is_empty());
        (*sim.counters(), fresh_seen)
    };
    let (all, none) = run(false);
    let (skipped, fresh) = run(true);
    assert_eq!(none, 0);
    assert_eq!(fresh, 3 * 7, "every fetch after the first of each round");
    assert_eq!(skipped, all);
}

/// Eager settling: a granule stored to while no cache holds it is
/// settled as soon as its store lands (no records left, no sweep), and a
/// line filled from it afterwards is one version. Every preset: the
/// ARM926's store waits in the write buffer as a pending store
/// (`memory/pending.rs`), the ARM11s' reaches memory at once.
#[test]
fn a_granule_nothing_holds_settles_as_its_store_lands() {
    for model in [
        CpuModel::arm926(),
        CpuModel::arm1136_32k(),
        CpuModel::arm1176_16k(),
    ] {
        let mut sim = Sim::new(model, 1 << 20);
        let (kernel, pa) = (0xc000_2000, 0x2000);
        sim.store_at(kernel, 4, 7, at(pa)).unwrap();
        assert_eq!(sim.memory.live, 0, "{model:?}: no records for the store");
        sim.drain_write_buffer();
        assert_eq!((sim.memory.live, sim.memory.pending.len()), (0, 0));
        assert_eq!(sim.load_at(kernel, 4, at(pa)), Ok(7));
        let line = sim.dcache.lookup(&sim.probe(kernel, pa)).expect("filled");
        assert!(
            sim.dcache.meta[line].verified != 0,
            "{model:?}: a fresh line"
        );
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }
}

/// A pending store is the truth before it lands: an instruction fetch
/// (which does not wait for the write buffer) of the stored word reads
/// memory's old word and is reported, uncached (the store stays pending)
/// or cached (the I line makes it records); once drained, the word is
/// fetched new. A second store to the granule
/// and a fill from it turn the pending store into records, with the
/// same verdicts.
#[test]
fn a_pending_store_is_the_truth_until_it_lands() {
    let mut sim = Sim::new(CpuModel::arm926(), 1 << 20);
    let pa = 0x3000;
    sim.store_at(pa, 4, 0xe12f_ff1e, at(pa)).unwrap();
    assert_eq!(sim.memory.pending.len(), 1, "the store is pending");
    assert_eq!(sim.memory.truth_version(pa + 1), sim.version);
    assert_eq!(
        sim.memory.truth_version(pa + 4),
        0,
        "its neighbour is as settled"
    );
    assert_eq!(sim.memory.first_behind(pa, 8), Some((0, 0)));
    // An uncached fetch copies nothing: the store stays pending.
    let uncached = Translated {
        mem: MemType::Bufferable,
        ..at(pa)
    };
    assert_eq!(sim.fetch_at(pa, 4, uncached), Ok(0));
    assert_eq!(kinds(&mut sim), [ViolationKind::StaleFetch]);
    assert_eq!((sim.memory.pending.len(), sim.memory.live), (1, 0));
    // A cached one fills an I line, a copy: the store becomes records.
    assert_eq!(sim.fetch_at(pa, 4, at(pa)), Ok(0));
    assert_eq!(kinds(&mut sim), [ViolationKind::StaleFetch]);
    assert_eq!((sim.memory.pending.len(), sim.memory.live), (0, 1));
    sim.drain_write_buffer();
    sim.maintain_line(LineOp::InvalidateInstruction, pa, Some(at(pa)));
    assert_eq!(sim.fetch_at(pa, 4, at(pa)), Ok(0xe12f_ff1e));
    assert_eq!(kinds(&mut sim), []);

    // Two stores to one granule before a drain: the second materializes.
    let pa = 0x5000;
    sim.store_at(pa, 4, 1, at(pa)).unwrap();
    sim.store_at(pa + 4, 4, 2, at(pa + 4)).unwrap();
    assert_eq!(sim.memory.pending.len(), 0);
    assert_eq!(sim.load_at(pa + 4, 4, at(pa + 4)), Ok(2));
    assert_eq!(sim.load_at(pa, 4, at(pa)), Ok(1));
    assert_eq!(kinds(&mut sim), []);
}

/// The copy counts are what keeps eager settling sound: a branch target
/// cache entry is the only copy of a granule left once its I line goes,
/// and a store to another word of the granule put it in play. Counted,
/// the granule stays in play and the fetch that hits the entry is fresh;
/// the twin leaves the entry uncounted (`Sim::uncounted_btc`), the
/// granule settles as the I line goes, renaming the versions the entry
/// holds, and the same fetch is reported.
fn fetched_again_from_the_btc(uncounted: bool, budget: usize) -> Vec<ViolationKind> {
    let mut sim = Sim::new(CpuModel::arm1176_16k(), 1 << 20);
    // The default budget: no sweep, so no check of the counts, in so short
    // a run (whatever `VACMM_SIM_RECORDS` says).
    sim.set_record_budget(budget);
    sim.uncounted_btc = uncounted;
    let pa = 0x3000;
    sim.store_at(pa, 4, 0xe12f_ff1e, at(pa)).unwrap();
    sim.maintain_line(LineOp::CleanInvalidate, pa, Some(at(pa)));
    assert_eq!(sim.fetch_at(pa, 4, at(pa)), Ok(0xe12f_ff1e));
    // Another word of the granule, through the D-cache to memory.
    sim.store_at(pa + 8, 4, 0, at(pa + 8)).unwrap();
    sim.maintain_line(LineOp::CleanInvalidate, pa + 8, Some(at(pa + 8)));
    sim.maintain_line(LineOp::InvalidateInstruction, pa, Some(at(pa)));
    assert_eq!(sim.fetch_at(pa, 4, at(pa)), Ok(0xe12f_ff1e));
    kinds(&mut sim)
}

#[test]
fn a_granule_a_branch_target_cache_entry_holds_does_not_settle_under_it() {
    assert_eq!(fetched_again_from_the_btc(false, DEFAULT_BUDGET), []);
    assert_eq!(fetched_again_from_the_btc(false, 0), []);
    assert_eq!(
        fetched_again_from_the_btc(true, DEFAULT_BUDGET),
        [ViolationKind::StaleFetch],
        "the twin: the uncounted entry's granule settled under it"
    );
    // With a sweep before every store, debug builds' check of the counts
    // (`Sim::check_copy_counts`) stops the twin first.
    #[cfg(debug_assertions)]
    {
        let twin = std::panic::catch_unwind(|| fetched_again_from_the_btc(true, 0));
        let message = twin.expect_err("the count check panics");
        let message = message
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        assert!(message.contains("the model's copy counts"), "{message}");
    }
}
