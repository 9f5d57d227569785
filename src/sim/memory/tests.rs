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

/// A store that reached memory, a line filled from it, a store elsewhere
/// (which settles memory), and the line read again: fresh.
fn a_filled_line_read_again(planted: bool) -> Vec<ViolationKind> {
    let mut sim = eager(CpuModel::arm926().with_write_buffer(0), planted);
    let (user, kernel, pa) = (0x0001_0000, 0xc000_2000, 0x2000);
    // The ARM926 does not allocate on a write miss: the store goes to memory.
    sim.store_at(kernel, 4, 7, at(pa)).unwrap();
    assert_eq!(sim.load_at(user, 4, at(pa)), Ok(7));
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
