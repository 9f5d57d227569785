//! The engine on the cache model: address spaces whose page tables live in
//! the model's memory and are walked by it (`Sim::attach_table`), user
//! accesses that fault into the engine, and the oracle judging every load.
//! Each scenario has a twin that leaves the engine's maintenance out and
//! must be caught where the hardware would go wrong.

extern crate std;

use std::vec::Vec;

use super::*;
use crate::check::machine::{BASE, Machine, Switching, presets};
use crate::mm::space::{FaultAccess, MmapArgs};
use crate::mmu::PageTable;
use crate::sim::{CpuModel, MemType, SimError, ViolationKind};

mod atomicity;
mod config;
mod costs;
mod errors;
#[cfg(feature = "log")]
mod events;
mod issue19;
mod other_switches;
mod own_mm;
mod pages;
mod random;
mod review;
mod shared_buffers;
mod waste;

/// How user faults are resolved: through the engine, or (the twins) by the
/// address space alone, with no maintenance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Faults {
    Engine,
    Bare,
}

fn resolve(
    m: &mut Machine,
    space: &mut AddressSpace,
    va: u32,
    access: FaultAccess,
    faults: Faults,
) {
    match faults {
        Faults::Engine => {
            m.engine
                .fault(&mut m.sys, space, VirtAddr(va), access)
                .unwrap();
        }
        Faults::Bare => {
            space.fault(&mut m.sys, VirtAddr(va), access).unwrap();
        }
    }
}

/// A user store at `va`, faulting in as the MMU would.
fn user_store(m: &mut Machine, space: &mut AddressSpace, va: u32, value: u32, faults: Faults) {
    for _ in 0..3 {
        match m.sys.mem.store(va, 4, value) {
            Ok(()) => return,
            Err(SimError::Unmapped { .. } | SimError::ReadOnly { .. }) => {
                resolve(m, space, va, FaultAccess::Write, faults)
            }
            Err(e) => panic!("store {va:#x}: {e}"),
        }
    }
    panic!("store {va:#x} kept faulting");
}

/// A user load at `va`, faulting in as the MMU would.
fn user_load(m: &mut Machine, space: &mut AddressSpace, va: u32, faults: Faults) -> u32 {
    for _ in 0..3 {
        match m.sys.mem.load(va, 4) {
            Ok(v) => return v,
            Err(SimError::Unmapped { .. }) => resolve(m, space, va, FaultAccess::Read, faults),
            Err(e) => panic!("load {va:#x}: {e}"),
        }
    }
    panic!("load {va:#x} kept faulting");
}

fn violations(m: &mut Machine) -> Vec<ViolationKind> {
    m.sys.mem.take_violations().iter().map(|v| v.kind).collect()
}

/// Seed 001: the kernel writes a page-cache page (through its linear map)
/// that a process maps shared — once before the mapping exists (deferred
/// until the fault) and once while it is mapped. The frame deliberately has
/// another colour than the user mapping, as when the allocator had none of
/// the right colour left.
fn page_cache_write(model: CpuModel, flush: bool) -> (Vec<ViolationKind>, Counters, [u32; 2]) {
    let mut m = Machine::new(model);
    let mut space = m.space();
    m.switch_to(&mut space);
    let file = m.file(4);
    let colours = m.sys.allocator.colours();
    let frame = m
        .sys
        .allocator
        .allocate_colour((colours - 1).min(1))
        .unwrap();
    m.sys.objects.insert_page(file, 0, frame).unwrap();
    let kva = m.engine.kernel_va(frame).as_u32();
    // The kernel writes the page before anyone maps it.
    m.sys.mem.store(kva + 16, 4, 0x1111_1111).unwrap();
    if flush {
        m.engine.flush_dcache_page(&mut m.sys, frame).unwrap();
    }
    let va = space
        .mmap(&mut m.sys, MmapArgs::shared_object(file, 0, PAGE))
        .unwrap()
        .as_u32();
    let faults = if flush { Faults::Engine } else { Faults::Bare };
    let first = user_load(&mut m, &mut space, va + 16, faults);
    // …and again while it is mapped (the user's lines are warm).
    m.sys.mem.store(kva + 16, 4, 0x2222_2222).unwrap();
    if flush {
        m.engine.flush_dcache_page(&mut m.sys, frame).unwrap();
    }
    let second = user_load(&mut m, &mut space, va + 16, faults);
    (violations(&mut m), *m.engine.counters(), [first, second])
}

#[test]
fn kernel_writes_to_page_cache_pages_reach_user_mappings() {
    for (name, model) in presets() {
        let (bad, counters, seen) = page_cache_write(model, true);
        assert_eq!(bad, [], "{name}");
        assert_eq!(seen, [0x1111_1111, 0x2222_2222], "{name}");
        assert_eq!(
            counters.deferred, 1,
            "{name}: the first write waits for a mapping"
        );
        let aliasing = model.info().kind.aliases();
        assert_eq!(
            counters.kernel_alias_cleans > 0,
            aliasing,
            "{name}: maintenance only where aliases hold separate lines: {counters:?}"
        );
    }
}

#[test]
fn twin_kernel_writes_without_flush_dcache_page_are_caught_where_caches_alias() {
    for (name, model) in presets() {
        let (bad, _, _) = page_cache_write(model, false);
        if model.info().kind.aliases() {
            assert!(
                bad.contains(&ViolationKind::StaleRead),
                "{name}: the model must catch the missing flush: {bad:?}"
            );
        } else {
            assert_eq!(bad, [], "{name}: nothing is owed on a non-aliasing cache");
        }
    }
}

/// Seed 000 / W4: one file page mapped shared at two addresses of one
/// process, written through both. `colour_matched` false gives the VIPT
/// case a kernel gets without colour alignment (different colours).
fn two_shared_mappings(
    model: CpuModel,
    faults: Faults,
    colour_matched: bool,
) -> (Vec<ViolationKind>, Counters, Vec<MemType>) {
    let mut m = Machine::new(model);
    if !colour_matched {
        m.colour_span = PAGE;
    }
    let mut space = m.space();
    m.switch_to(&mut space);
    let file = m.file(4);
    let args = MmapArgs::shared_object(file, 0, PAGE);
    let a = space.mmap(&mut m.sys, args).unwrap().as_u32();
    let b = if colour_matched {
        space.mmap(&mut m.sys, args).unwrap().as_u32()
    } else {
        // One page above a colour boundary: another colour on VIPT.
        let fixed = MmapArgs {
            addr: Some(VirtAddr(a - 0x10_0000 + PAGE)),
            fixed: true,
            ..args
        };
        space.mmap(&mut m.sys, fixed).unwrap().as_u32()
    };
    let mut types = Vec::new();
    for round in 0..4u32 {
        user_store(&mut m, &mut space, a + 8, 0xa000 + round, faults);
        assert_eq!(
            user_load(&mut m, &mut space, b + 8, faults),
            0xa000 + round,
            "{:?} round {round}, a {a:#x} b {b:#x} {:?}",
            model.info().kind,
            m.engine.counters()
        );
        user_store(&mut m, &mut space, b + 12, 0xb000 + round, faults);
        assert_eq!(
            user_load(&mut m, &mut space, a + 12, faults),
            0xb000 + round
        );
    }
    let pa = space.resident_at(VirtAddr(a)).unwrap();
    let kind = |m: &mut Machine, space: &AddressSpace, va: u32| match space
        .memory_type(&mut m.sys, VirtAddr(va))
        .unwrap()
    {
        MemoryType::NormalWriteBack => MemType::WriteBack,
        _ => MemType::Bufferable,
    };
    types.push(kind(&mut m, &space, a));
    if faults == Faults::Engine {
        // One mapping goes: the conflict is gone, the other is cached again.
        m.engine
            .munmap(&mut m.sys, &mut space, VirtAddr(b), PAGE)
            .unwrap();
        types.push(kind(&mut m, &space, a));
        user_store(&mut m, &mut space, a + 8, 0xc0de, faults);
        assert_eq!(user_load(&mut m, &mut space, a + 8, faults), 0xc0de);
        assert!(
            !m.sys
                .frames
                .state(pa)
                .unwrap()
                .flags()
                .contains(PageFlags::UNCACHED)
        );
    }
    (violations(&mut m), *m.engine.counters(), types)
}

#[test]
fn make_coherent_uncaches_conflicting_aliases_and_restores_them() {
    for (name, model) in presets() {
        let kind = model.info().kind;
        for colour_matched in [true, false] {
            let (bad, counters, types) = two_shared_mappings(model, Faults::Engine, colour_matched);
            assert_eq!(bad, [], "{name}, colour matched {colour_matched}");
            let conflict = match kind {
                CacheKind::Vivt => true,
                CacheKind::VipAliasing { .. } => !colour_matched,
                _ => false,
            };
            let expected = if conflict {
                MemType::Bufferable
            } else {
                MemType::WriteBack
            };
            assert_eq!(
                types,
                [expected, MemType::WriteBack],
                "{name}, colour matched {colour_matched}: {counters:?}"
            );
            assert_eq!(
                (counters.made_uncached, counters.restored),
                if conflict { (1, 1) } else { (0, 0) },
                "{name}, colour matched {colour_matched}"
            );
        }
    }
}

#[test]
fn twin_shared_aliases_without_make_coherent_are_caught() {
    for (name, model) in presets() {
        let kind = model.info().kind;
        for colour_matched in [true, false] {
            let result = std::panic::catch_unwind(|| {
                two_shared_mappings(model, Faults::Bare, colour_matched).0
            });
            let conflict = match kind {
                CacheKind::Vivt => true,
                CacheKind::VipAliasing { .. } => !colour_matched,
                _ => false,
            };
            match result {
                // Without the engine the aliases disagree: either the
                // scenario's own data check fails or the oracle reports it.
                Err(_) => assert!(conflict, "{name}: failed without a conflict"),
                Ok(bad) if conflict => assert!(
                    bad.contains(&ViolationKind::StaleRead),
                    "{name}, colour matched {colour_matched}: {bad:?}"
                ),
                Ok(bad) => assert_eq!(bad, [], "{name}, colour matched {colour_matched}"),
            }
        }
    }
}

/// Copy-on-write and zero-fill: a private file mapping written by the
/// process reads back its own data and leaves the page cache untouched;
/// a fresh anonymous page reads as zeroes.
#[test]
fn private_writes_copy_through_the_kernel_alias() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut space = m.space();
        m.switch_to(&mut space);
        let file = m.file(2);
        let frame = m.sys.allocator.allocate_colour(0).unwrap();
        m.sys.objects.insert_page(file, 0, frame).unwrap();
        let kva = m.engine.kernel_va(frame).as_u32();
        m.sys.mem.store(kva + 4, 4, 0x5eed).unwrap();
        m.engine.flush_dcache_page(&mut m.sys, frame).unwrap();
        let private = MmapArgs {
            shared: false,
            ..MmapArgs::shared_object(file, 0, PAGE)
        };
        let va = space.mmap(&mut m.sys, private).unwrap().as_u32();
        assert_eq!(
            user_load(&mut m, &mut space, va + 4, Faults::Engine),
            0x5eed,
            "{name}"
        );
        user_store(&mut m, &mut space, va + 8, 0x0bad, Faults::Engine);
        assert_eq!(
            user_load(&mut m, &mut space, va + 4, Faults::Engine),
            0x5eed,
            "{name}: copied"
        );
        assert_eq!(
            m.sys.mem.load(kva + 8, 4).unwrap(),
            0,
            "{name}: page cache untouched"
        );
        let anon = space
            .mmap(&mut m.sys, MmapArgs::anonymous(PAGE))
            .unwrap()
            .as_u32();
        assert_eq!(
            user_load(&mut m, &mut space, anon + 100, Faults::Engine),
            0,
            "{name}"
        );
        let bad = violations(&mut m);
        assert_eq!(bad, [], "{name}: {:?}", m.engine.counters());
    }
}

// ---- the rest of the seeds, through the engine, each with a blind twin ----------

/// Runs `scenario` on every preset with the engine and blind. With the
/// engine: zero violations. Blind (no maintenance): the model must catch it
/// on every preset in `fails_on` — by a violation, or by the scenario's own
/// data check (a panic) — and stay quiet elsewhere.
fn engine_and_twin(
    what: &str,
    scenario: impl Fn(&mut Machine) -> Vec<ViolationKind> + std::panic::RefUnwindSafe,
    fails_on: impl Fn(CacheKind) -> bool,
) {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let bad = scenario(&mut m);
        assert_eq!(bad, [], "{what} on {name}: {:?}", m.engine.counters());
        let twin = std::panic::catch_unwind(|| {
            let mut m = Machine::blind(model);
            scenario(&mut m)
        });
        let caught = match &twin {
            Err(_) => true,
            Ok(bad) => !bad.is_empty(),
        };
        assert_eq!(
            caught,
            fails_on(model.info().kind),
            "{what} twin on {name}: {:?}",
            twin.as_ref().map_err(|_| "data check failed")
        );
    }
}

fn vivt(kind: CacheKind) -> bool {
    kind == CacheKind::Vivt
}

/// Seed 000: a driver's buffer the kernel writes and a process reads, then
/// the other way round, three rounds, handed over with sync_for_user /
/// sync_for_kernel.
fn shared_buffer_hand_over(m: &mut Machine, mode: shared::SharingMode) -> Vec<ViolationKind> {
    let mut space = m.space();
    m.switch_to(&mut space);
    let buffer = m
        .engine
        .create_shared_buffer(&mut m.sys, Some(&mut m.kernel), 2, mode)
        .unwrap();
    let va = space
        .mmap(
            &mut m.sys,
            MmapArgs::shared_object(buffer.object(), 0, 2 * PAGE),
        )
        .unwrap()
        .as_u32();
    let kva = buffer.kernel_va(1).unwrap().as_u32();
    // The user reads first: its lines are warm with the old contents.
    assert_eq!(user_load(m, &mut space, va + PAGE + 8, Faults::Engine), 0);
    for round in 1..=3u32 {
        m.sys.mem.store(kva + 8, 4, 0x1000 + round).unwrap();
        m.engine
            .sync_for_user(&mut m.sys, &buffer, PAGE, PAGE)
            .unwrap();
        assert_eq!(
            user_load(m, &mut space, va + PAGE + 8, Faults::Engine),
            0x1000 + round
        );
        user_store(
            m,
            &mut space,
            va + PAGE + 12,
            0x2000 + round,
            Faults::Engine,
        );
        m.engine
            .sync_for_kernel(&mut m.sys, &buffer, PAGE + 12, 4)
            .unwrap();
        assert_eq!(m.sys.mem.load(kva + 12, 4).unwrap(), 0x2000 + round);
    }
    violations(m)
}

#[test]
fn seed000_shared_buffer_handed_over() {
    engine_and_twin(
        "hand-over buffer",
        |m| shared_buffer_hand_over(m, shared::SharingMode::HandOver),
        vivt,
    );
}

#[test]
fn seed000_shared_buffer_uncached_needs_no_hand_over() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mode = shared::SharingMode::Uncached {
            kernel_base: VirtAddr(0xfe00_0000),
        };
        let mut space = m.space();
        m.switch_to(&mut space);
        let buffer = m
            .engine
            .create_shared_buffer(&mut m.sys, Some(&mut m.kernel), 1, mode)
            .unwrap();
        // The kernel's uncached mapping must be visible to user tables too.
        space
            .table_mut()
            .share_entries_from(
                &mut m.sys.mem,
                &m.kernel,
                VirtRange::new(VirtAddr(0xfe00_0000), 1 << 20).unwrap(),
            )
            .unwrap();
        let va = space
            .mmap(
                &mut m.sys,
                MmapArgs::shared_object(buffer.object(), 0, PAGE),
            )
            .unwrap()
            .as_u32();
        let kva = buffer.kernel_va(0).unwrap().as_u32();
        for round in 1..=3u32 {
            m.sys.mem.store(kva + 8, 4, 0x1000 + round).unwrap();
            assert_eq!(
                user_load(&mut m, &mut space, va + 8, Faults::Engine),
                0x1000 + round
            );
            user_store(&mut m, &mut space, va + 12, 0x2000 + round, Faults::Engine);
            assert_eq!(
                m.sys.mem.load(kva + 12, 4).unwrap(),
                0x2000 + round,
                "{name}"
            );
        }
        assert!(
            !space
                .memory_type(&mut m.sys, VirtAddr(va))
                .unwrap()
                .is_cached(),
            "{name}"
        );
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// Seed 002: fork with copy-on-write, both sides writing; the parent breaks
/// copy-on-write first and gets its copy at the same virtual address (the
/// "VAC COW data bomb" if its old lines still hit).
fn fork_both_sides_write(m: &mut Machine) -> Vec<ViolationKind> {
    let mut parent = m.space();
    // The child's table, made ready before the parent's lines are dirty
    // (building it reads memory and could evict them).
    let child_template = m.space();
    let table = child_template.destroy(&mut m.sys).unwrap();
    let mut table = PageTable::new(&mut m.sys.mem, table, m.arch).unwrap();
    for range in m.kernel_ranges() {
        table
            .share_entries_from(&mut m.sys.mem, &m.kernel, range)
            .unwrap();
    }
    m.switch_to(&mut parent);
    let va = parent
        .mmap(&mut m.sys, MmapArgs::anonymous(2 * PAGE))
        .unwrap()
        .as_u32();
    // Loads first: the caches allocate on reads, so the stores then leave
    // dirty lines (the dangerous case).
    user_load(m, &mut parent, va + 4, Faults::Engine);
    user_load(m, &mut parent, va + PAGE + 4, Faults::Engine);
    user_store(m, &mut parent, va + 4, 0xaaaa, Faults::Engine);
    user_store(m, &mut parent, va + PAGE + 4, 0xbbbb, Faults::Engine);
    let mut child = m.engine.fork(&mut m.sys, &mut parent, table).unwrap();
    // The parent writes first: copy-on-write at the same address.
    user_store(m, &mut parent, va + 4, 0xa1, Faults::Engine);
    assert_eq!(user_load(m, &mut parent, va + 4, Faults::Engine), 0xa1);
    assert_eq!(
        user_load(m, &mut parent, va + PAGE + 4, Faults::Engine),
        0xbbbb
    );
    m.switch_to(&mut child);
    assert_eq!(user_load(m, &mut child, va + 4, Faults::Engine), 0xaaaa);
    user_store(m, &mut child, va + PAGE + 4, 0xc1, Faults::Engine);
    assert_eq!(
        user_load(m, &mut child, va + PAGE + 4, Faults::Engine),
        0xc1
    );
    m.switch_to(&mut parent);
    assert_eq!(
        user_load(m, &mut parent, va + PAGE + 4, Faults::Engine),
        0xbbbb
    );
    user_store(m, &mut parent, va + PAGE + 8, 0xa2, Faults::Engine);
    m.switch_to(&mut child);
    assert_eq!(user_load(m, &mut child, va + PAGE + 8, Faults::Engine), 0);
    m.switch_to(&mut parent);
    // The child's own copies die with it (the scenario's semantics: the
    // oracle takes no word for it from the engine).
    declare_private_dead(m, &child, &[&parent]);
    m.engine.exit(&mut m.sys, child).unwrap();
    violations(m)
}

/// Declares dead the frames of `space`'s private anonymous pages that none
/// of `others` maps: what dies when it exits.
fn declare_private_dead(m: &mut Machine, space: &AddressSpace, others: &[&AddressSpace]) {
    use crate::mm::space::Backing;
    for (va, pa) in space.resident() {
        let private = space
            .find_vma(va)
            .is_some_and(|v| !v.is_shared() && v.backing() == Backing::Anonymous);
        let elsewhere = others.iter().any(|o| o.resident().any(|(_, p)| p == pa));
        if private && !elsewhere {
            m.sys.mem.declare_dead(pa.as_u32(), PAGE).unwrap();
        }
    }
}

#[test]
fn seed002_fork_copy_on_write_both_sides() {
    engine_and_twin("fork", fork_both_sides_write, vivt);
}

/// Seed 002: exec — the old image's private pages die (their lines dropped
/// unwritten), a new image maps new pages at the same addresses, and the
/// freed frames are reused by another process.
fn exec_reuses_addresses(m: &mut Machine) -> Vec<ViolationKind> {
    let mut old = m.space();
    m.switch_to(&mut old);
    let va = old
        .mmap(&mut m.sys, MmapArgs::anonymous(4 * PAGE))
        .unwrap()
        .as_u32();
    for page in 0..4 {
        user_load(m, &mut old, va + page * PAGE, Faults::Engine);
        user_store(
            m,
            &mut old,
            va + page * PAGE,
            0xdead_0000 + page,
            Faults::Engine,
        );
    }
    let freed: Vec<PhysAddr> = old.resident().map(|(_, pa)| pa).collect();
    // The running space cannot go; it is handed back untouched.
    let refused = m.engine.exit(&mut m.sys, old).unwrap_err();
    assert_eq!(
        refused.error,
        CoherenceError::StillRunning {
            space: refused.space.as_ref().unwrap().id()
        }
    );
    let old = *refused.space.unwrap();
    // exec: the new image runs, then the old one goes.
    let mut new = m.space();
    m.switch_to(&mut new);
    declare_private_dead(m, &old, &[]);
    m.engine.exit(&mut m.sys, old).unwrap();
    // Before anything else runs, a device fills the freed frames for their
    // next owner: no line of the dead process may be written over that.
    for pa in freed {
        // The driver maps the frame for the device (FromDevice): its
        // kernel alias's lines go.
        let kva = m.engine.kernel_va(pa);
        // SAFETY: a whole, freed page: nothing in it is live.
        unsafe { m.sys.mem.invalidate_dcache_range(page_range(kva)) };
        m.sys.mem.dma_write(pa.as_u32(), &[0x11; 64]).unwrap();
    }
    let args = MmapArgs {
        addr: Some(VirtAddr(va)),
        fixed: true,
        ..MmapArgs::anonymous(4 * PAGE)
    };
    new.mmap(&mut m.sys, args).unwrap();
    for page in 0..4 {
        assert_eq!(user_load(m, &mut new, va + page * PAGE, Faults::Engine), 0);
        user_store(m, &mut new, va + page * PAGE + 4, 0x0e0e, Faults::Engine);
    }
    // Another process gets the freed frames and writes them.
    let mut other = m.space();
    m.switch_to(&mut other);
    let elsewhere = other
        .mmap(&mut m.sys, MmapArgs::anonymous(8 * PAGE))
        .unwrap()
        .as_u32();
    for page in 0..8 {
        user_load(m, &mut other, elsewhere + page * PAGE, Faults::Engine);
        user_store(
            m,
            &mut other,
            elsewhere + page * PAGE,
            0x5a5a,
            Faults::Engine,
        );
    }
    m.switch_to(&mut new);
    for page in 0..4 {
        assert_eq!(
            user_load(m, &mut new, va + page * PAGE + 4, Faults::Engine),
            0x0e0e
        );
    }
    violations(m)
}

#[test]
fn seed002_exec_and_exit_leave_no_lines_behind() {
    // No preset can show the exit maintenance missing: the space must be
    // switched away from first, and on VIVT that switch flushes; on VIPT
    // the dead lines sit in the frames' own colour, where the next owner's
    // writes land too and a DMA receive invalidates them. Exit's discard
    // saves write-backs there; it is needed for FCSE-keyed spaces, which
    // the presets do not run. The twin still checks the blind run clean.
    engine_and_twin("exec", exec_reuses_addresses, |_| false);
}

/// Seed 002: two processes use one virtual address for different pages and
/// run in turns; the switch goes through the MMU layer's entry point.
#[test]
fn seed002_context_switches_through_the_engine() {
    for (name, model) in presets() {
        for flush in [true, false] {
            let mut m = Machine::new(model);
            let mut a = m.space();
            let mut b = m.space();
            let va = BASE - 0x10_0000;
            for space in [&mut a, &mut b] {
                let args = MmapArgs {
                    addr: Some(VirtAddr(va)),
                    fixed: true,
                    ..MmapArgs::anonymous(PAGE)
                };
                space.mmap(&mut m.sys, args).unwrap();
            }
            for round in 0..4u32 {
                if flush {
                    m.switch_to(&mut a);
                } else {
                    // The twin: TTBR0 rewritten without the switcher's flush.
                    m.sys.mem.switch_to(m.sim_space(&a)).unwrap();
                    m.engine.set_current(a.id(), false);
                }
                user_store(&mut m, &mut a, va, 0xa000 + round, Faults::Engine);
                if flush {
                    m.switch_to(&mut b);
                } else {
                    m.sys.mem.switch_to(m.sim_space(&b)).unwrap();
                    m.engine.set_current(b.id(), false);
                }
                let seen = user_load(&mut m, &mut b, va, Faults::Engine);
                if flush {
                    assert_eq!(seen, if round == 0 { 0 } else { 0xb000 + round - 1 });
                }
                user_store(&mut m, &mut b, va, 0xb000 + round, Faults::Engine);
            }
            let bad = violations(&mut m);
            if flush {
                assert_eq!(bad, [], "{name}");
            } else {
                // VIVT: the other space's lines hit. ARMv6: both spaces
                // run under ASID 0 without a TLB flush, so the other
                // space's translation hits (StaleTlbEntry).
                assert!(
                    !bad.is_empty(),
                    "{name}: a switch without the switcher must be caught"
                );
            }
        }
    }
}

/// Code: the kernel writes instructions into a page-cache page a process
/// maps executable (through kmap), and into its own memory
/// (flush_icache_range); both are fetched afterwards.
fn code_written_then_run(m: &mut Machine) -> Vec<ViolationKind> {
    let mut space = m.space();
    m.switch_to(&mut space);
    let file = m.file(1);
    let args = MmapArgs {
        prot: crate::mm::space::Protection::READ | crate::mm::space::Protection::EXEC,
        ..MmapArgs::shared_object(file, 0, PAGE)
    };
    let va = space.mmap(&mut m.sys, args).unwrap().as_u32();
    resolve(m, &mut space, va, FaultAccess::Execute, Faults::Engine);
    m.sys.mem.fetch(va).unwrap();
    let pa = space.resident_at(VirtAddr(va)).unwrap();
    {
        let mut kmap = m.engine.kmap(&mut m.sys, pa, KmapAccess::Write).unwrap();
        let at = kmap.va().as_u32();
        kmap.mem().store(at, 4, 0xe12f_ff1e).unwrap();
        kmap.finish().unwrap();
    }
    assert_eq!(m.sys.mem.fetch(va).unwrap(), 0xe12f_ff1e);
    // Kernel code (a module): written through the D-side, then run.
    let code = 0x7f_0000;
    m.sys.mem.fetch(code).unwrap();
    m.sys.mem.store(code, 4, 0xe320_f000).unwrap();
    m.engine
        .flush_icache_range(&mut m.sys.mem, VirtAddr(code), 4)
        .unwrap();
    assert_eq!(m.sys.mem.fetch(code).unwrap(), 0xe320_f000);
    violations(m)
}

#[test]
fn code_written_by_the_kernel_is_fetched_new() {
    // Blind, the I-cache still gets flushed (PIPT needs that too) — the
    // twin is flush_icache_range and kmap left out entirely.
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        assert_eq!(code_written_then_run(&mut m), [], "{name}");
        let mut m = Machine::new(model);
        let code = 0x7f_0000;
        m.sys.mem.fetch(code).unwrap();
        m.sys.mem.store(code, 4, 0xe320_f000).unwrap();
        m.sys.mem.fetch(code).unwrap();
        assert!(
            violations(&mut m).contains(&ViolationKind::StaleFetch),
            "{name}: the twin must fetch stale code"
        );
    }
}

/// The kernel reads and writes a page a process is writing through a
/// shared mapping, bracketed by kmap; the frame has the "wrong" colour for
/// the user (no window would be needed otherwise).
fn kmap_bracket(m: &mut Machine) -> Vec<ViolationKind> {
    let mut space = m.space();
    m.switch_to(&mut space);
    let file = m.file(1);
    let colours = m.sys.allocator.colours();
    let frame = m
        .sys
        .allocator
        .allocate_colour((colours - 1).min(1))
        .unwrap();
    m.sys.objects.insert_page(file, 0, frame).unwrap();
    let va = space
        .mmap(&mut m.sys, MmapArgs::shared_object(file, 0, PAGE))
        .unwrap()
        .as_u32();
    for round in 0..3u32 {
        user_store(m, &mut space, va + 32, 0x100 + round, Faults::Engine);
        let mut kmap = m.engine.kmap(&mut m.sys, frame, KmapAccess::Write).unwrap();
        let at = kmap.va().as_u32();
        assert_eq!(kmap.mem().load(at + 32, 4).unwrap(), 0x100 + round);
        kmap.mem().store(at + 64, 4, 0x200 + round).unwrap();
        drop(kmap);
        assert_eq!(
            user_load(m, &mut space, va + 64, Faults::Engine),
            0x200 + round
        );
    }
    violations(m)
}

#[test]
fn kmap_brackets_kernel_access_to_user_pages() {
    engine_and_twin("kmap", kmap_bracket, |kind| kind.aliases());
}

/// Windows: a space not running is reached in its colour, without
/// flushing the whole cache (VIPT aliasing).
#[test]
fn windows_reach_lines_of_spaces_not_running() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut a = m.space();
        m.switch_to(&mut a);
        let file = m.file(1);
        let colours = m.sys.allocator.colours();
        let frame = m
            .sys
            .allocator
            .allocate_colour((colours - 1).min(1))
            .unwrap();
        m.sys.objects.insert_page(file, 0, frame).unwrap();
        let va = a
            .mmap(&mut m.sys, MmapArgs::shared_object(file, 0, PAGE))
            .unwrap()
            .as_u32();
        user_store(&mut m, &mut a, va, 0x77, Faults::Engine);
        let mut b = m.space();
        m.switch_to(&mut b);
        // The kernel writes the page while B runs; A reads it later.
        let kva = m.engine.kernel_va(frame).as_u32();
        {
            let mut kmap = m.engine.kmap(&mut m.sys, frame, KmapAccess::Write).unwrap();
            let at = kmap.va().as_u32();
            assert_eq!(kmap.mem().load(at, 4).unwrap(), 0x77, "{name}");
            kmap.mem().store(at + 4, 4, 0x88).unwrap();
        }
        let _ = kva;
        m.switch_to(&mut a);
        assert_eq!(
            user_load(&mut m, &mut a, va + 4, Faults::Engine),
            0x88,
            "{name}"
        );
        assert_eq!(violations(&mut m), [], "{name}");
        assert_eq!(
            m.engine.counters().whole_cache_flushes,
            0,
            "{name}: {:?}",
            m.engine.counters()
        );
    }
}

/// Two processes map one shared page writable, and switches between them
/// do not flush: under FCSE PIDs (ARM926), where the PIDs move the same
/// address to two different VIVT lines, and under ASIDs on an aliasing
/// VIPT cache, where the two mappings have different colours (`MAP_FIXED`
/// defeats the colour-aware placement). Both processes' lines stay in the
/// cache, so each switch must clean the writer's lines and drop the stale
/// ones. `through_engine`: the switches go through `Engine::switch_to`;
/// the twin makes them with the MMU layer's switcher alone.
///
/// vacmm's own `mmap` refuses a shared `MAP_FIXED` mapping at another
/// colour; a kernel whose layout does not colour (`colour_span` of a page,
/// as here) gets one, and the engine must cope.
/// Returns the oracle's findings and how many loads saw another value than
/// the other process last stored.
fn processes_share_a_writable_page(
    model: CpuModel,
    vas: [u32; 2],
    through_engine: bool,
) -> (Vec<ViolationKind>, u32) {
    // FCSE PIDs on the ARM926 (its kernel above 32 MiB), ASIDs on ARMv6.
    let mut m = Machine::with_switching(model, Switching::Fcse);
    m.colour_span = PAGE;
    let fcse = m.fcse;
    let mut a = m.space();
    let mut b = m.space();
    let file = m.file(1);
    for (space, va) in [(&mut a, vas[0]), (&mut b, vas[1])] {
        let args = MmapArgs {
            addr: Some(VirtAddr(va)),
            fixed: true,
            ..MmapArgs::shared_object(file, 0, PAGE)
        };
        space.mmap(&mut m.sys, args).unwrap();
        // Every private mapping lies below 32 MiB: it may run under a PID.
        space.table_mut().set_fits_fcse_window(fcse);
    }
    let switch = |m: &mut Machine, space: &mut AddressSpace| {
        if through_engine {
            m.switch_to(space);
        } else {
            // SAFETY: the model's registers; no real translation changes.
            let report = unsafe { m.switcher.switch_to(&mut m.sys.mem, space.table_mut()) };
            m.engine
                .set_current(space.id(), report.unwrap().cache_flushed);
        }
    };
    let [va_a, va_b] = vas;
    let mut wrong = 0;
    for round in 0..4u32 {
        switch(&mut m, &mut a);
        if round > 0 && user_load(&mut m, &mut a, va_a + 4, Faults::Engine) != 0xb000 + round - 1 {
            wrong += 1;
        }
        user_store(&mut m, &mut a, va_a, 0xa000 + round, Faults::Engine);
        switch(&mut m, &mut b);
        if user_load(&mut m, &mut b, va_b, Faults::Engine) != 0xa000 + round {
            wrong += 1;
        }
        user_store(&mut m, &mut b, va_b + 4, 0xb000 + round, Faults::Engine);
    }
    // Only a switch from the kernel flushed (FCSE), or none (ASIDs): both
    // processes' lines stayed in the cache throughout.
    assert_eq!(
        m.switcher.counters().cache_flushes,
        u64::from(fcse),
        "{:?}",
        m.switcher.counters()
    );
    (violations(&mut m), wrong)
}

/// The cases where two processes' mappings of one page are separate lines
/// that a non-flushing switch leaves cached: FCSE at one address, and the
/// ARM1136's aliasing caches at two colours.
fn separate_line_cases() -> [(&'static str, CpuModel, [u32; 2]); 3] {
    // Below 32 MiB, where the FCSE relocates by PID.
    let fcse = [0x0180_0000; 2];
    let colours = [0x0180_0000, 0x0180_1000];
    [
        ("ARM926 FCSE", CpuModel::arm926_keyed(), fcse),
        ("ARM1136 32K", CpuModel::arm1136_32k(), colours),
        ("ARM1136 64K", CpuModel::arm1136_64k(), colours),
    ]
}

#[test]
fn non_flushing_switches_keep_pages_shared_across_spaces_coherent() {
    for (name, model, vas) in separate_line_cases() {
        let (bad, wrong) = processes_share_a_writable_page(model, vas, true);
        assert_eq!((bad, wrong), (vec![], 0), "{name}");
    }
}

#[test]
fn twin_non_flushing_switches_without_the_engine_are_caught() {
    for (name, model, vas) in separate_line_cases() {
        let (bad, wrong) = processes_share_a_writable_page(model, vas, false);
        // The model's memory is the hardware's: the stale values show in
        // the data, and the oracle names them.
        assert!(wrong > 0, "{name}: every load saw the newest value");
        assert!(bad.contains(&ViolationKind::StaleRead), "{name}: {bad:?}");
    }
}
