//! Tests of the model: each scenario drives the public `Sim` API and
//! checks the oracle's report.

use super::*;
use crate::cache::CacheMaintenance;

const WB: MemType = MemType::WriteBack;

fn at(pa: u32) -> Translated {
    Translated {
        pa,
        mem: WB,
        global: true,
    }
}

#[test]
fn writers_pack_and_unpack() {
    for writer in [
        Writer::Initial,
        Writer::Dma,
        Writer::Dead,
        Writer::Cpu {
            space: SpaceId(7),
            va: 0xffff_fffc,
            pc: None,
        },
        Writer::Cpu {
            space: SpaceId(u16::MAX),
            va: 0,
            pc: Some(0),
        },
        Writer::Cpu {
            space: SpaceId(0),
            va: 0x1234_5678,
            pc: Some(0xffff_fffe),
        },
    ] {
        assert_eq!(unpack_writer(pack_writer(writer)), writer);
    }
    assert_eq!(pack_writer(Writer::Initial), 0);
}

/// The externally driven entry points see a VIVT alias the way the
/// scenario API does, and name the storing instruction.
#[test]
fn translated_accesses_find_a_vivt_alias_and_its_writer() {
    let mut sim = Sim::new(CpuModel::arm926().with_write_buffer(0), 64 << 10);
    let (kernel, user, pa) = (0xc000_2000, 0x0001_0000, 0x2000);
    assert_eq!(sim.load_at(user, 4, at(pa)), Ok(0));
    sim.set_site(Some(0x8000_0124));
    sim.store_at(kernel, 4, 0xdead_beef, at(pa)).unwrap();
    // The store missed (ARM926 does not allocate on writes) and went to memory.
    assert_eq!(sim.load_at(kernel, 4, at(pa)), Ok(0xdead_beef));
    assert!(sim.take_violations().is_empty());
    // The user alias still holds the line filled before the store.
    sim.load_at(user, 4, at(pa)).unwrap();
    let v = sim.take_violations();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, ViolationKind::StaleRead);
    assert_eq!(
        v[0].last_writer,
        Writer::Cpu {
            space: KERNEL,
            va: kernel,
            pc: Some(0x8000_0124)
        }
    );
    // Invalidating the user alias's line by MVA (VIVT: no translation
    // needed) makes the next load fetch memory.
    sim.maintain_line(LineOp::Invalidate, user, None);
    assert_eq!(sim.load_at(user, 4, at(pa)), Ok(0xdead_beef));
    assert!(sim.violations().is_empty());
}

#[test]
fn translated_fetches_and_set_way_operations() {
    let mut sim = Sim::new(CpuModel::arm1176_16k(), 64 << 10);
    // A Thumb fetch is two bytes; a byte fetch is a caller mistake.
    assert_eq!(sim.fetch_at(0x1002, 2, at(0x1002)), Ok(0));
    assert_eq!(
        sim.fetch_at(0x1001, 1, at(0x1001)),
        Err(SimError::BadAccess {
            va: 0x1001,
            size: 1
        })
    );
    // Code written through the D-cache and fetched without a clean.
    sim.load_at(0x1000, 4, at(0x1000)).unwrap();
    sim.store_at(0x1000, 4, 0xe12f_ff1e, at(0x1000)).unwrap();
    sim.maintain_line(LineOp::InvalidateInstruction, 0x1000, Some(at(0x1000)));
    sim.fetch_at(0x1000, 4, at(0x1000)).unwrap();
    assert_eq!(sim.take_violations()[0].kind, ViolationKind::StaleFetch);
    // Set/way: the line is in set (0x1000 >> 5) & 127, some way.
    let set = (0x1000 >> 5) & 127;
    for way in 0..4 {
        sim.maintain_set_way(LineOp::Clean, set, way).unwrap();
    }
    sim.maintain_line(LineOp::InvalidateInstruction, 0x1000, Some(at(0x1000)));
    // ARMv6: the branch target cache still holds the stale fetch's word.
    sim.flush_branch_target_cache();
    assert_eq!(sim.fetch_at(0x1000, 4, at(0x1000)), Ok(0xe12f_ff1e));
    assert!(sim.violations().is_empty());
    assert_eq!(
        sim.maintain_set_way(LineOp::Clean, 128, 0),
        Err(SimError::NoSuchLine { set: 128, way: 0 })
    );
    // Dropping the whole D-cache with a dirty line loses the write.
    sim.store_at(0x1000, 4, 1, at(0x1000)).unwrap();
    sim.invalidate_dcache_all();
    assert_eq!(
        sim.take_violations()[0].kind,
        ViolationKind::DirtyLineDiscarded
    );
}

#[test]
fn preload_sets_initial_contents_without_versions() {
    let mut sim = Sim::new(CpuModel::arm926(), 64 << 10);
    sim.preload(0x3000, &0x0000_1c0e_u32.to_le_bytes()).unwrap();
    assert_eq!(sim.table_walk(0x3000), Ok(0x1c0e));
    assert!(sim.violations().is_empty());
    assert!(sim.preload(0xfffc, &[0; 8]).is_err());
}

#[test]
fn scenario_mistakes_are_typed_errors() {
    let mut sim = Sim::new(CpuModel::arm926(), 64 << 10);
    assert_eq!(
        sim.load(0x1000, 4),
        Err(SimError::Unmapped {
            space: KERNEL,
            va: 0x1000
        })
    );
    assert_eq!(
        sim.load(0x1002, 4),
        Err(SimError::BadAccess {
            va: 0x1002,
            size: 4
        })
    );
    assert_eq!(
        sim.load(0x1000, 3),
        Err(SimError::BadAccess {
            va: 0x1000,
            size: 3
        })
    );
    assert_eq!(
        sim.map(KERNEL, 0xc000_0000, 0x1_0000, MemType::WriteBack, true),
        Err(SimError::OutOfMemory {
            pa: 0x1_0000,
            base: 0,
            size: 64 << 10
        })
    );
    assert!(sim.memory(0xffff_f000, 0x2000).is_err());
    assert!(sim.dma_read(0xffff_fff0, 0x20).is_err());
    assert_eq!(
        sim.switch_to(SpaceId(9)),
        Err(SimError::NoSuchSpace(SpaceId(9)))
    );
    sim.map(KERNEL, 0xc000_0000, 0, MemType::WriteBack, false)
        .unwrap();
    assert_eq!(
        sim.store(0xc000_0000, 4, 1),
        Err(SimError::ReadOnly { va: 0xc000_0000 })
    );
    assert!(sim.violations().is_empty());
}

// ---- the data-side buffers (write buffer, write-back buffer) -------------

/// Kinds of the violations so far, emptying the list.
fn kinds(sim: &mut Sim) -> Vec<ViolationKind> {
    sim.take_violations().iter().map(|v| v.kind).collect()
}

/// A line write-back does not overtake an older buffered store of the same
/// bytes: an ARM926 store through alias B misses (read-allocate) and waits
/// in the write buffer while alias A's line, dirty in another word, holds
/// the older value of B's word. Cleaning A writes the old word over the
/// newer store — a lost write. Without a write buffer the model always saw
/// it; with the ARM926's 4-entry buffer it used to land the write-back first
/// and the buffered store over it, hiding the loss.
#[test]
fn write_back_behind_a_buffered_store_of_an_alias_is_a_stale_write_back() {
    for entries in [0, 4] {
        let mut sim = Sim::new(CpuModel::arm926().with_write_buffer(entries), 64 << 10);
        let (a, b, pa) = (0xc000_1000, 0xc000_5000, 0x1000);
        sim.map(KERNEL, a, pa, WB, true).unwrap();
        sim.map(KERNEL, b, pa, WB, true).unwrap();
        sim.load(a, 4).unwrap();
        sim.store(b, 4, 0x1111).unwrap();
        sim.store(a + 4, 4, 0x2222).unwrap();
        sim.clean_dcache_line(VirtAddr(a));
        sim.drain_write_buffer();
        let v = sim.take_violations();
        assert_eq!(v.len(), 1, "{entries} entries: {v:?}");
        assert_eq!(v[0].kind, ViolationKind::StaleWriteBack);
        assert_eq!(v[0].pa, pa);
        // The report names who dirtied the stale line, not only the newest
        // store it overwrote.
        assert_eq!(
            v[0].line_writer,
            Some(Writer::Cpu {
                space: KERNEL,
                va: a + 4,
                pc: None
            })
        );
        assert!(v[0].to_string().contains("last stored into"), "{}", v[0]);
    }
}

/// The twin: A's line cleaned and invalidated before B is written.
#[test]
fn aliases_flushed_before_the_store_lose_nothing_behind_the_write_buffer() {
    let mut sim = Sim::new(CpuModel::arm926(), 64 << 10);
    let (a, b, pa) = (0xc000_1000, 0xc000_5000, 0x1000);
    sim.map(KERNEL, a, pa, WB, true).unwrap();
    sim.map(KERNEL, b, pa, WB, true).unwrap();
    sim.load(a, 4).unwrap();
    sim.clean_invalidate_dcache_line(VirtAddr(a));
    sim.store(b, 4, 0x1111).unwrap();
    sim.store(a + 4, 4, 0x2222).unwrap();
    sim.clean_dcache_line(VirtAddr(a));
    sim.drain_write_buffer();
    assert_eq!(sim.load(a, 4), Ok(0x1111));
    assert_eq!(sim.load(a + 4, 4), Ok(0x2222));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// A clean puts the line in the ARM926's write-back buffer: the table
/// walker and DMA masters see it only after a drain (c7,c10,4).
#[test]
fn a_clean_without_a_drain_is_a_stale_table_walk_and_a_stale_dma_read() {
    let mut sim = Sim::new(CpuModel::arm926(), 64 << 10);
    sim.map(KERNEL, 0x3000, 0x3000, WB, true).unwrap();
    // A descriptor written through the D-cache and cleaned, not drained.
    sim.load(0x3000, 4).unwrap();
    sim.store(0x3000, 4, 0x1c0e).unwrap();
    sim.clean_dcache_line(VirtAddr(0x3000));
    sim.table_walk(0x3000).unwrap();
    assert_eq!(kinds(&mut sim), [ViolationKind::StaleTableWalk]);
    // The twin: drained.
    sim.drain_write_buffer();
    assert_eq!(sim.table_walk(0x3000), Ok(0x1c0e));
    assert!(sim.violations().is_empty());
    // A DMA buffer cleaned, not drained.
    sim.load(0x3020, 4).unwrap();
    sim.store(0x3020, 4, 7).unwrap();
    sim.clean_dcache_line(VirtAddr(0x3020));
    sim.dma_read(0x3020, 4).unwrap();
    assert_eq!(kinds(&mut sim), [ViolationKind::DmaReadStaleMemory]);
    sim.drain_write_buffer();
    assert_eq!(sim.dma_read(0x3020, 4), Ok(vec![7, 0, 0, 0]));
    assert!(sim.violations().is_empty());
}

/// The ARM11 presets have no modelled buffers: a clean alone is seen.
#[test]
fn without_buffers_a_clean_reaches_memory_at_once() {
    let mut sim = Sim::new(CpuModel::arm1136_32k(), 64 << 10);
    sim.map(KERNEL, 0x3000, 0x3000, WB, true).unwrap();
    sim.load(0x3000, 4).unwrap();
    sim.store(0x3000, 4, 0x1c0e).unwrap();
    sim.clean_dcache_line(VirtAddr(0x3000));
    assert_eq!(sim.table_walk(0x3000), Ok(0x1c0e));
    assert!(sim.violations().is_empty());
}

/// A DMA master writes bytes whose (older) write-back is still buffered:
/// the write-back lands later, over the device's data.
#[test]
fn dma_write_before_the_drain_is_overwritten_by_the_buffered_write_back() {
    let mut sim = Sim::new(CpuModel::arm926(), 64 << 10);
    sim.map(KERNEL, 0x3000, 0x3000, WB, true).unwrap();
    sim.load(0x3000, 4).unwrap();
    sim.store(0x3000, 4, 1).unwrap();
    sim.clean_invalidate_dcache_line(VirtAddr(0x3000));
    sim.dma_write(0x3000, &[9, 9, 9, 9]).unwrap();
    sim.drain_write_buffer();
    assert_eq!(kinds(&mut sim), [ViolationKind::StaleWriteBack]);
    // The twin (another line: the first one's memory is lost): drained
    // before the device is started.
    sim.load(0x3040, 4).unwrap();
    sim.store(0x3040, 4, 2).unwrap();
    sim.clean_invalidate_dcache_line(VirtAddr(0x3040));
    sim.drain_write_buffer();
    sim.dma_write(0x3040, &[5, 0, 0, 0]).unwrap();
    assert_eq!(sim.load(0x3040, 4), Ok(5));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// Instruction fetches do not wait for the data side's buffers: code
/// stored uncached, written through, or cleaned from the D-cache and run
/// without a drain is stale.
#[test]
fn code_fetched_without_a_drain_is_a_stale_fetch() {
    let mut sim = Sim::new(CpuModel::arm926(), 64 << 10);
    let bx_lr = 0xe12f_ff1e;
    sim.map(KERNEL, 0x4000, 0x4000, WB, true).unwrap();
    sim.map(KERNEL, 0xc000_4000, 0x4000, MemType::Bufferable, true)
        .unwrap();
    sim.map(KERNEL, 0xd000_4000, 0x4000, MemType::WriteThrough, true)
        .unwrap();
    sim.map(KERNEL, 0x5000, 0x5000, MemType::Bufferable, true)
        .unwrap();
    // Stored through the uncached alias; I linefill without a drain.
    sim.store(0xc000_4000, 4, bx_lr).unwrap();
    sim.fetch(0x4000).unwrap();
    assert_eq!(kinds(&mut sim), [ViolationKind::StaleFetch]);
    sim.drain_write_buffer();
    sim.invalidate_icache_line(VirtAddr(0x4000));
    assert_eq!(sim.fetch(0x4000), Ok(bx_lr));
    // Stored through a write-through alias (D line present).
    sim.load(0xd000_4020, 4).unwrap();
    sim.store(0xd000_4020, 4, bx_lr).unwrap();
    sim.fetch(0x4020).unwrap();
    assert_eq!(kinds(&mut sim), [ViolationKind::StaleFetch]);
    sim.drain_write_buffer();
    sim.invalidate_icache_line(VirtAddr(0x4020));
    assert_eq!(sim.fetch(0x4020), Ok(bx_lr));
    // Written back by a clean: the write-back is buffered.
    sim.load(0x4040, 4).unwrap();
    sim.store(0x4040, 4, bx_lr).unwrap();
    sim.clean_dcache_line(VirtAddr(0x4040));
    sim.fetch(0x4040).unwrap();
    assert_eq!(kinds(&mut sim), [ViolationKind::StaleFetch]);
    sim.drain_write_buffer();
    sim.invalidate_icache_line(VirtAddr(0x4040));
    assert_eq!(sim.fetch(0x4040), Ok(bx_lr));
    // An uncached fetch does not wait either.
    sim.store(0x5000, 4, bx_lr).unwrap();
    sim.fetch(0x5000).unwrap();
    assert_eq!(kinds(&mut sim), [ViolationKind::StaleFetch]);
    sim.drain_write_buffer();
    assert_eq!(sim.fetch(0x5000), Ok(bx_lr));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// The twin: the flush sequence for new code (clean, drain, invalidate I).
#[test]
fn code_cleaned_and_drained_is_fetched_fresh() {
    let mut sim = Sim::new(CpuModel::arm926(), 64 << 10);
    sim.map(KERNEL, 0x4000, 0x4000, WB, true).unwrap();
    sim.fetch(0x4000).unwrap();
    sim.load(0x4000, 4).unwrap();
    sim.store(0x4000, 4, 0xe12f_ff1e).unwrap();
    sim.clean_dcache_line(VirtAddr(0x4000));
    sim.drain_write_buffer();
    sim.invalidate_icache_line(VirtAddr(0x4000));
    assert_eq!(sim.fetch(0x4000), Ok(0xe12f_ff1e));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// Strongly-ordered (ARM926: uncached unbuffered) stores reach memory at
/// once, after the older buffered stores; bufferable ones wait.
#[test]
fn strongly_ordered_stores_bypass_the_write_buffer_in_order() {
    let mut sim = Sim::new(CpuModel::arm926(), 64 << 10);
    sim.map(KERNEL, 0x6000, 0x6000, MemType::StronglyOrdered, true)
        .unwrap();
    sim.map(KERNEL, 0x7000, 0x7000, MemType::Bufferable, true)
        .unwrap();
    // Bufferable: a device sees it only after a drain.
    sim.store(0x7000, 4, 1).unwrap();
    sim.dma_read(0x7000, 4).unwrap();
    assert_eq!(kinds(&mut sim), [ViolationKind::DmaReadStaleMemory]);
    // Strongly ordered: at once, and the older bufferable store before it.
    sim.store(0x6000, 4, 2).unwrap();
    assert_eq!(sim.dma_read(0x7000, 4), Ok(vec![1, 0, 0, 0]));
    assert_eq!(sim.table_walk(0x6000), Ok(2));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

// ---- the TLB -------------------------------------------------------------

mod tlb {
    use super::*;
    use crate::addr::PhysAddr;
    use crate::mmu::{Arch, Attributes, PageTable, TableFrames, TranslationRegisters};

    const L1_A: u32 = 0x4000;
    const L1_B: u32 = 0x8000;
    /// Coarse-table frames.
    const FRAMES: [u32; 4] = [0x1_0000, 0x1_1000, 0x1_2000, 0x1_3000];
    const USER_VA: u32 = 0x0140_0000;
    const FRAME_A: u32 = 0x8_0000;
    const FRAME_B: u32 = 0x8_1000;

    struct Frames(Vec<PhysAddr>);

    impl TableFrames for Frames {
        fn allocate_table_frame(&mut self) -> Option<PhysAddr> {
            self.0.pop()
        }
        fn free_table_frame(&mut self, frame: PhysAddr) {
            self.0.push(frame);
        }
    }

    /// Two user tables (at [`L1_A`], [`L1_B`]) mapping [`USER_VA`] to
    /// [`FRAME_A`] and [`FRAME_B`] (non-global), both sharing the kernel's
    /// first MiB as a global section; spaces `a` and `b` with `keys`.
    fn two_spaces(model: CpuModel, keys: (u16, u16)) -> (Sim, [PageTable; 2], SpaceId, SpaceId) {
        let mut sim = Sim::new(model, 4 << 20);
        for page in (L1_A..L1_B + 0x4000).step_by(0x1000).chain(FRAMES) {
            sim.map(KERNEL, page, page, WB, true).unwrap();
        }
        let arch = Arch::of(sim.info());
        let mut frames = Frames(FRAMES.iter().rev().map(|&f| PhysAddr(f)).collect());
        let mut tables =
            [L1_A, L1_B].map(|l1| PageTable::new(&mut sim, PhysAddr(l1), arch).unwrap());
        for (t, frame) in tables.iter_mut().zip([FRAME_A, FRAME_B]) {
            t.map_section(&mut sim, VirtAddr(0), PhysAddr(0), Attributes::KERNEL_DATA)
                .unwrap();
            t.map_page(
                &mut sim,
                &mut frames,
                VirtAddr(USER_VA),
                PhysAddr(frame),
                Attributes::USER_DATA,
            )
            .unwrap();
        }
        let a = sim.create_space(keys.0);
        let b = sim.create_space(keys.1);
        sim.attach_table(a, PhysAddr(L1_A), arch).unwrap();
        sim.attach_table(b, PhysAddr(L1_B), arch).unwrap();
        assert!(sim.take_violations().is_empty());
        (sim, tables, a, b)
    }

    /// Runs in `a`, then switches TTBR0 and the key to `b`'s with
    /// `between` in the middle, and loads `USER_VA` in `b`.
    fn switch_and_load(model: CpuModel, keys: (u16, u16), between: impl FnOnce(&mut Sim)) -> Sim {
        let (mut sim, _tables, a, _b) = two_spaces(model, keys);
        sim.switch_to(a).unwrap();
        sim.store(USER_VA, 4, 0xa).unwrap();
        between(&mut sim);
        // SAFETY: the model's registers; nothing runs from these tables.
        unsafe {
            sim.set_user_table(PhysAddr(L1_B));
            sim.set_context_key(keys.1 as u8);
        }
        sim.load(USER_VA, 4).unwrap();
        sim
    }

    fn stale_entry(sim: &mut Sim) -> Vec<ViolationKind> {
        kinds(sim)
    }

    const STALE_A_WALKS_B: ViolationKind = ViolationKind::StaleTlbEntry {
        walked_pa: Some(FRAME_B),
    };

    /// ARMv6: an ASID handed to another space without a TLB flush (a reused
    /// ASID, a missed flush at rollover) keeps the previous owner's
    /// non-global entries: `b` reads `a`'s frame. The model used to key its
    /// TLB by its own space id and never showed it.
    #[test]
    fn a_reused_asid_without_a_flush_uses_the_previous_owners_entry() {
        let mut sim = switch_and_load(CpuModel::arm1136_32k(), (5, 5), |_| {});
        assert_eq!(stale_entry(&mut sim), [STALE_A_WALKS_B]);
        // The twin: the ASID's entries dropped before its reuse.
        let mut sim = switch_and_load(CpuModel::arm1136_32k(), (5, 5), |sim| {
            sim.invalidate_tlb_asid(5).unwrap();
        });
        assert!(sim.take_violations().is_empty());
        // And different ASIDs need no flush at all.
        let mut sim = switch_and_load(CpuModel::arm1136_32k(), (5, 6), |_| {});
        assert!(sim.take_violations().is_empty());
    }

    /// The cost model charges the table walker's descriptor reads after a
    /// TLB miss (issue 24): a flush makes the next access walk again, two
    /// reads for a small page, each priced as an uncached read.
    #[test]
    fn a_tlb_flush_costs_the_walks_that_follow_it() {
        let mut sim = switch_and_load(CpuModel::arm926(), (0, 0), |sim| sim.invalidate_tlb_all());
        assert_eq!(
            sim.counters().walk_reads,
            4,
            "a's walk and b's, two reads each"
        );
        sim.invalidate_tlb_all();
        let before = *sim.counters();
        sim.load(USER_VA + 4, 4).unwrap();
        let after = *sim.counters();
        assert_eq!(after.walk_reads - before.walk_reads, 2);
        // A second load hits the TLB entry the walk made.
        sim.load(USER_VA + 8, 4).unwrap();
        assert_eq!(sim.counters().walk_reads, after.walk_reads);
        assert_eq!(
            after.cycles - before.cycles,
            2 * Costs::DEFAULT.walk_read + Costs::DEFAULT.hit
        );
        // The twin without the flush: the stale entry is used, no walk.
        let sim = switch_and_load(CpuModel::arm926(), (0, 0), |_| {});
        assert_eq!(sim.counters().walk_reads, 2, "only a's walk");
    }

    /// A new key for the running space (an ASID handed out again at
    /// rollover, without a switch) is the key its next access looks the
    /// TLB up under: under a fresh ASID there is no entry, and the walker
    /// reads the table again. The model's cache of recent translations,
    /// made under the old key, must not answer for the new one (it did:
    /// found by a differential fuzzer in review).
    #[test]
    fn a_new_key_for_the_running_space_looks_the_tlb_up_again() {
        let (mut sim, _tables, a, _b) = two_spaces(CpuModel::arm1136_32k(), (5, 6));
        sim.switch_to(a).unwrap();
        sim.load(USER_VA, 4).unwrap();
        let walked = sim.counters().walk_reads;
        sim.load(USER_VA + 4, 4).unwrap();
        assert_eq!(sim.counters().walk_reads, walked, "a TLB hit under ASID 5");
        sim.set_key(a, 7).unwrap();
        sim.load(USER_VA + 8, 4).unwrap();
        assert_eq!(
            sim.counters().walk_reads - walked,
            2,
            "no entry under ASID 7: the small page is walked again"
        );
        // Its twin, the key given back: ASID 5's entry still hits.
        sim.set_key(a, 5).unwrap();
        sim.load(USER_VA + 12, 4).unwrap();
        assert_eq!(sim.counters().walk_reads - walked, 2);
    }

    /// ARMv6: invalidating by the wrong ASID (whole ASID or one page)
    /// leaves the stale entry.
    #[test]
    fn an_invalidate_by_the_wrong_asid_leaves_the_stale_entry() {
        let mut sim = switch_and_load(CpuModel::arm1136_32k(), (5, 5), |sim| {
            sim.invalidate_tlb_asid(6).unwrap();
        });
        assert_eq!(stale_entry(&mut sim), [STALE_A_WALKS_B]);
        let mut sim = switch_and_load(CpuModel::arm1136_32k(), (5, 5), |sim| {
            sim.invalidate_tlb_page_asid(VirtAddr(USER_VA), 6).unwrap();
        });
        assert_eq!(stale_entry(&mut sim), [STALE_A_WALKS_B]);
        // c8,c7,1 with ASID 0 (`invalidate_tlb_page`) does not drop a
        // non-global entry of ASID 5 either.
        let mut sim = switch_and_load(CpuModel::arm1136_32k(), (5, 5), |sim| {
            sim.invalidate_tlb_page(VirtAddr(USER_VA));
        });
        assert_eq!(stale_entry(&mut sim), [STALE_A_WALKS_B]);
        // The twin: the right ASID's page.
        let mut sim = switch_and_load(CpuModel::arm1136_32k(), (5, 5), |sim| {
            sim.invalidate_tlb_page_asid(VirtAddr(USER_VA), 5).unwrap();
        });
        assert!(sim.take_violations().is_empty());
    }

    /// ARMv6: a global entry hits under every ASID; invalidate by ASID
    /// keeps it, invalidate by MVA and any ASID drops it.
    #[test]
    fn global_entries_survive_asid_invalidates_but_not_mva_ones() {
        for (flush, stale) in [
            (Some(false), true), // by ASID: kept
            (Some(true), false), // by MVA and another ASID: dropped
            (None, true),        // nothing
        ] {
            let (mut sim, mut tables, a, _) = two_spaces(CpuModel::arm1136_32k(), (5, 6));
            let va = 0x0150_0000;
            for t in &mut tables {
                t.map_section(
                    &mut sim,
                    VirtAddr(va),
                    PhysAddr(0x10_0000),
                    Attributes::KERNEL_DATA,
                )
                .unwrap();
            }
            sim.switch_to(a).unwrap();
            sim.load(va, 4).unwrap();
            // The kernel moves the global section in both tables.
            for t in &mut tables {
                let _ = t.unmap_section(&mut sim, VirtAddr(va));
                t.map_section(
                    &mut sim,
                    VirtAddr(va),
                    PhysAddr(0x20_0000),
                    Attributes::KERNEL_DATA,
                )
                .unwrap();
            }
            match flush {
                Some(false) => sim.invalidate_tlb_asid(5).unwrap(),
                Some(true) => sim.invalidate_tlb_page_asid(VirtAddr(va), 9).unwrap(),
                None => {}
            }
            sim.take_violations();
            sim.load(va, 4).unwrap();
            let v = kinds(&mut sim);
            if stale {
                assert_eq!(
                    v,
                    [ViolationKind::StaleTlbEntry {
                        walked_pa: Some(0x20_0000)
                    }],
                    "{flush:?}"
                );
            } else {
                assert!(v.is_empty(), "{flush:?}: {v:?}");
            }
        }
    }

    /// The MMU layer's ASID switch over the model's tagged TLB: three
    /// spaces share two ASIDs, so the ASIDs roll over again and again; the
    /// switcher's one TLB flush per rollover keeps every space on its own
    /// frame. The twin hands the ASIDs round the same way with no flush at
    /// rollover: the previous owner's entries are used.
    #[test]
    fn asid_rollover_through_the_switcher_flushes_what_a_reuse_needs() {
        use crate::mmu::{ContextSwitcher, KeyAllocator};
        const L1S: [u32; 3] = [0x4000, 0x8000, 0x1_4000];
        const RESERVED: u32 = 0x1_8000;
        const FRAMES3: [u32; 3] = [0x8_0000, 0x8_1000, 0x8_2000];
        for through_switcher in [true, false] {
            let mut sim = Sim::new(CpuModel::arm1136_32k(), 4 << 20);
            for page in (0x4000..0xc000).chain(0x1_0000..0x1_c000).step_by(0x1000) {
                sim.map(KERNEL, page, page, WB, true).unwrap();
            }
            let mut frames = Frames(FRAMES.iter().rev().map(|&f| PhysAddr(f)).collect());
            let mut reserved = PageTable::new(&mut sim, PhysAddr(RESERVED), Arch::Armv6).unwrap();
            reserved
                .map_section(&mut sim, VirtAddr(0), PhysAddr(0), Attributes::KERNEL_DATA)
                .unwrap();
            let mut tables =
                L1S.map(|l1| PageTable::new(&mut sim, PhysAddr(l1), Arch::Armv6).unwrap());
            for (t, frame) in tables.iter_mut().zip(FRAMES3) {
                t.map_section(&mut sim, VirtAddr(0), PhysAddr(0), Attributes::KERNEL_DATA)
                    .unwrap();
                t.map_page(
                    &mut sim,
                    &mut frames,
                    VirtAddr(USER_VA),
                    PhysAddr(frame),
                    Attributes::USER_DATA,
                )
                .unwrap();
            }
            let r = sim.create_space(0);
            sim.attach_table(r, PhysAddr(RESERVED), Arch::Armv6)
                .unwrap();
            for l1 in L1S {
                let s = sim.create_space(0);
                sim.attach_table(s, PhysAddr(l1), Arch::Armv6).unwrap();
            }
            assert!(sim.take_violations().is_empty());
            let mut switcher =
                ContextSwitcher::asid(KeyAllocator::asid_range(1, 2).unwrap(), PhysAddr(RESERVED));
            let mut wrong = 0;
            for round in 0..4u32 {
                for (i, t) in tables.iter_mut().enumerate() {
                    if through_switcher {
                        // SAFETY: the model's registers; every table maps
                        // the kernel's first MiB alike.
                        unsafe { switcher.switch_to(&mut sim, t).unwrap() };
                    } else {
                        // ASIDs 1, 2, 1, … handed round with no flush.
                        let asid = ((round as usize * 3 + i) % 2 + 1) as u8;
                        // SAFETY: as above.
                        unsafe {
                            sim.set_user_table(t.l1());
                            sim.set_context_key(asid);
                        }
                    }
                    let mine = 0x100 * i as u32;
                    if round > 0 && sim.load(USER_VA, 4).unwrap() != mine + round - 1 {
                        wrong += 1;
                    }
                    sim.store(USER_VA, 4, mine + round).unwrap();
                }
            }
            let v = kinds(&mut sim);
            if through_switcher {
                assert_eq!((v, wrong), (vec![], 0));
                assert!(switcher.counters().rollovers > 0);
            } else {
                assert!(wrong > 0);
                assert!(
                    v.iter()
                        .any(|k| matches!(k, ViolationKind::StaleTlbEntry { .. })),
                    "{v:?}"
                );
            }
        }
    }

    /// ARMv5: the TLB has no tags, so a switch of TTBR0 without a TLB flush
    /// keeps the previous space's entries.
    #[test]
    fn armv5_switch_without_a_tlb_flush_uses_the_old_entry() {
        let model = CpuModel::arm926();
        let mut sim = switch_and_load(model, (0, 0), |_| {});
        assert_eq!(stale_entry(&mut sim), [STALE_A_WALKS_B]);
        let mut sim = switch_and_load(model, (0, 0), |sim| sim.invalidate_tlb_all());
        assert!(sim.take_violations().is_empty());
    }

    /// ARMv5 with the FCSE: the TLB holds modified addresses, so c8,c7,1
    /// must be given the MVA (PID × 32 MiB + VA) of a relocated page.
    #[test]
    fn fcse_tlb_entries_are_dropped_by_their_modified_address_only() {
        let pid = 3u32;
        let window = crate::mmu::FCSE_WINDOW_BYTES;
        let va = 0x0010_0000;
        let mva = va + pid * window;
        for (flush_at, stale) in [(va, true), (mva, false)] {
            let mut sim = Sim::new(CpuModel::arm926_keyed(), 1 << 20);
            for page in (L1_A..L1_A + 0x4000).step_by(0x1000).chain(FRAMES) {
                sim.map(KERNEL, page, page, WB, true).unwrap();
            }
            let mut frames = Frames(FRAMES.iter().rev().map(|&f| PhysAddr(f)).collect());
            let mut t = PageTable::new(&mut sim, PhysAddr(L1_A), Arch::Armv5).unwrap();
            // The kernel, above the window, as a real one with PIDs runs.
            t.map_section(
                &mut sim,
                VirtAddr(0xc000_0000),
                PhysAddr(0),
                Attributes::KERNEL_DATA,
            )
            .unwrap();
            t.map_page(
                &mut sim,
                &mut frames,
                VirtAddr(mva),
                PhysAddr(FRAME_A),
                Attributes::USER_DATA,
            )
            .unwrap();
            let user = sim.create_space(pid as u16);
            sim.attach_table(user, PhysAddr(L1_A), Arch::Armv5).unwrap();
            sim.switch_to(user).unwrap();
            sim.load(va, 4).unwrap();
            // The page moves to another frame (the table written through
            // the kernel's view in the scenario's kernel space); its VIVT
            // line goes first, by MVA.
            sim.clean_invalidate_dcache_line(VirtAddr(mva));
            sim.switch_to(KERNEL).unwrap();
            let _ = t.unmap_page(&mut sim, VirtAddr(mva)).unwrap();
            t.map_page(
                &mut sim,
                &mut frames,
                VirtAddr(mva),
                PhysAddr(FRAME_B),
                Attributes::USER_DATA,
            )
            .unwrap();
            sim.invalidate_tlb_page(VirtAddr(flush_at));
            sim.switch_to(user).unwrap();
            sim.take_violations();
            sim.load(va, 4).unwrap();
            let v = kinds(&mut sim);
            if stale {
                assert_eq!(v, [STALE_A_WALKS_B], "flushed {flush_at:#x}");
            } else {
                assert!(v.is_empty(), "flushed {flush_at:#x}: {v:?}");
            }
        }
    }
}

// ---- the FCSE relocates every address below 32 MiB -----------------------

/// With a non-zero FCSE PID every address below 32 MiB is relocated, a
/// global (kernel) mapping's too: the kernel's own low data written under
/// one PID and read under another are two lines. The model used to leave
/// global lines where they were, hiding the need for the kernel to live
/// above 32 MiB (or to clean by the modified address).
#[test]
fn fcse_relocates_global_mappings_below_32_mib() {
    for clean_by_mva in [false, true] {
        let mut sim = Sim::new(CpuModel::arm926_keyed(), 64 << 10);
        sim.map(KERNEL, 0x1000, 0x1000, WB, true).unwrap();
        let a = sim.create_space(1);
        let b = sim.create_space(2);
        sim.switch_to(b).unwrap();
        sim.load(0x1000, 4).unwrap();
        sim.switch_to(a).unwrap();
        sim.load(0x1000, 4).unwrap();
        sim.store(0x1000, 4, 0x55).unwrap();
        if clean_by_mva {
            // The modified address of PID 1: 32 MiB + VA.
            sim.clean_invalidate_dcache_line(VirtAddr((32 << 20) + 0x1000));
            // PID 2's (clean, older) line must go too.
            sim.clean_invalidate_dcache_line(VirtAddr((64 << 20) + 0x1000));
        } else {
            // By the unmodified address: another line (none there).
            sim.clean_invalidate_dcache_line(VirtAddr(0x1000));
        }
        sim.switch_to(b).unwrap();
        let seen = sim.load(0x1000, 4).unwrap();
        if clean_by_mva {
            assert_eq!(seen, 0x55);
            assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        } else {
            assert_eq!(kinds(&mut sim), [ViolationKind::StaleRead]);
        }
    }
}

/// Instruction fetches are relocated too: an I line invalidated by the
/// unmodified address of low kernel code stays and is fetched stale.
#[test]
fn fcse_relocates_fetches_of_global_code() {
    for by_mva in [false, true] {
        let mut sim = Sim::new(CpuModel::arm926_keyed(), 64 << 10);
        sim.map(KERNEL, 0x2000, 0x2000, WB, true).unwrap();
        sim.map(KERNEL, 0xc000_2000, 0x2000, MemType::Bufferable, true)
            .unwrap();
        let a = sim.create_space(1);
        sim.switch_to(a).unwrap();
        sim.fetch(0x2000).unwrap();
        sim.store(0xc000_2000, 4, 0xe12f_ff1e).unwrap();
        sim.drain_write_buffer();
        let mva = if by_mva { (32 << 20) + 0x2000 } else { 0x2000 };
        sim.invalidate_icache_line(VirtAddr(mva));
        sim.fetch(0x2000).unwrap();
        if by_mva {
            assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        } else {
            assert_eq!(kinds(&mut sim), [ViolationKind::StaleFetch]);
        }
    }
}

// ---- the ARMv6 branch target cache ---------------------------------------

/// New code at a fetched address, made visible by the D clean, drain and
/// the I line's invalidate by MVA, then `flush`, then fetched again.
fn rewrite_code_and_fetch(model: CpuModel, flush: impl FnOnce(&mut Sim)) -> Sim {
    let mut sim = Sim::new(model, 64 << 10);
    sim.map(KERNEL, 0x4000, 0x4000, WB, true).unwrap();
    sim.fetch(0x4000).unwrap();
    sim.load(0x4000, 4).unwrap();
    sim.store(0x4000, 4, 0xe12f_ff1e).unwrap();
    sim.clean_dcache_line(VirtAddr(0x4000));
    sim.drain_write_buffer();
    sim.invalidate_icache_line(VirtAddr(0x4000));
    flush(&mut sim);
    sim.fetch(0x4000).unwrap();
    sim
}

/// ARMv6: invalidating the I line by MVA leaves the branch target cache's
/// entry for the address; the old instruction is fetched. The model had
/// no BTC and showed the sequence as correct.
#[test]
fn armv6_i_line_invalidate_without_a_btc_flush_is_a_stale_fetch() {
    for model in [CpuModel::arm1136_32k(), CpuModel::arm1176_16k()] {
        let mut sim = rewrite_code_and_fetch(model, |_| {});
        assert_eq!(kinds(&mut sim), [ViolationKind::StaleFetch]);
    }
}

/// The twins: c7,c5,6, the whole-I-cache invalidate, the range operation
/// (lines + BTC, as the ARMv6 backend) and `synchronize_context` flush it;
/// ARMv5 has no BTC.
#[test]
fn btc_flushes_make_rewritten_code_fresh() {
    let model = CpuModel::arm1136_32k();
    let flushes: [fn(&mut Sim); 4] = [
        |sim| sim.flush_branch_target_cache(),
        |sim| sim.invalidate_icache_all(),
        |sim| {
            let range = crate::addr::VirtRange::new(VirtAddr(0x4000), 4).unwrap();
            sim.invalidate_icache_range(range);
        },
        |sim| sim.synchronize_context(),
    ];
    for (i, flush) in flushes.into_iter().enumerate() {
        let mut sim = rewrite_code_and_fetch(model, flush);
        assert!(sim.take_violations().is_empty(), "flush {i}");
    }
    let mut sim = rewrite_code_and_fetch(CpuModel::arm926(), |_| {});
    assert!(sim.take_violations().is_empty());
}

/// Issue 20's choice for the ARM1136 / ARM1176 I-cache range, measured in
/// the cost model (`Costs::DEFAULT`, whose figures are stated assumptions):
/// making one page of new code fetchable beside a 16 KiB hot loop costs a
/// per-line (range) invalidate, or the whole I-cache and the loop's refill
/// (what Linux's `v6_coherent_user_range` does). The range wins by the
/// refills; `docs/hardware.md` cites this test.
#[test]
fn a_page_of_new_code_costs_less_by_range_than_by_the_whole_icache() {
    const HOT: u32 = 0x10000;
    const HOT_BYTES: u32 = 16 << 10;
    const JIT: u32 = 0x20000;
    const PAGE: u32 = 4096;
    use crate::addr::VirtRange;
    let run = |whole: bool| {
        let mut sim = Sim::new(CpuModel::arm1136_64k(), 256 << 10);
        for page in (HOT..HOT + HOT_BYTES).step_by(PAGE as usize).chain([JIT]) {
            sim.map(KERNEL, page, page, WB, true).unwrap();
        }
        let hot_loop = |sim: &mut Sim| {
            for va in (HOT..HOT + HOT_BYTES).step_by(32) {
                sim.fetch(va).unwrap();
            }
        };
        hot_loop(&mut sim);
        let before = sim.counters().cycles;
        for va in (JIT..JIT + PAGE).step_by(32) {
            sim.store(va, 4, 0xe1a0_0000).unwrap(); // mov r0, r0
        }
        let page = VirtRange::new(VirtAddr(JIT), u64::from(PAGE)).unwrap();
        sim.clean_dcache_range(page);
        sim.drain_write_buffer();
        if whole {
            sim.invalidate_icache_all();
        } else {
            sim.invalidate_icache_range(page);
        }
        for va in (JIT..JIT + PAGE).step_by(32) {
            assert_eq!(sim.fetch(va), Ok(0xe1a0_0000));
        }
        hot_loop(&mut sim);
        assert_eq!(kinds(&mut sim), []);
        sim.counters().cycles - before
    };
    let (range, whole) = (run(false), run(true));
    println!(
        "one page of new code beside a 16 KiB hot loop: range {range} cycles, whole I-cache {whole} cycles"
    );
    assert!(range < whole, "range {range} cycles, whole {whole}");
}

/// Linux's v4wb_clear_user_highpage pattern: a dirty kernel-alias line is
/// invalidated and then stored whole before anyone reads it. Reported at
/// once by default; deferred, nothing is lost that anyone sees.
fn invalidate_then(sim: &mut Sim, overwrite_whole_line: bool) -> Vec<Violation> {
    let (kernel, pa) = (0xc000_2000, 0x2000);
    sim.load_at(kernel, 4, at(pa)).unwrap();
    sim.set_site(Some(0xc001_0000));
    sim.store_at(kernel + 4, 4, 0x1111_1111, at(pa + 4))
        .unwrap();
    sim.set_site(Some(0xc001_0040));
    sim.maintain_line(LineOp::Invalidate, kernel, Some(at(pa)));
    sim.set_site(Some(0xc001_0044));
    if overwrite_whole_line {
        for word in 0..8 {
            sim.store_at(kernel + 4 * word, 4, 0x2222_2222, at(pa + 4 * word))
                .unwrap();
        }
    }
    sim.load_at(kernel + 4, 4, at(pa + 4)).unwrap();
    sim.take_violations()
}

#[test]
fn a_discarded_line_overwritten_before_any_read_is_not_reported_when_deferred() {
    let model = CpuModel::arm926().with_write_buffer(0);
    // Immediate (the default): the discard itself is the report.
    let mut sim = Sim::new(model, 64 << 10);
    let kinds: Vec<_> = invalidate_then(&mut sim, true)
        .iter()
        .map(|v| v.kind)
        .collect();
    assert_eq!(kinds, [ViolationKind::DirtyLineDiscarded]);
    // Deferred: overwritten whole before the read, nothing to report.
    let mut sim = Sim::new(model, 64 << 10);
    sim.defer_discard_reports(true);
    assert_eq!(invalidate_then(&mut sim, true), []);
}

/// The exact negative control: the same discard, then a read of a lost
/// byte. Deferred, the loss is reported at the read, naming the discard,
/// beside the stale read itself; once per discarded line.
#[test]
fn a_discarded_line_read_before_it_is_overwritten_is_reported_when_deferred() {
    let mut sim = Sim::new(CpuModel::arm926().with_write_buffer(0), 64 << 10);
    sim.defer_discard_reports(true);
    let v = invalidate_then(&mut sim, false);
    let kinds: Vec<_> = v.iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds,
        [ViolationKind::DirtyLineDiscarded, ViolationKind::StaleRead]
    );
    let site = v[0].discarded.expect("where the line was discarded");
    assert_eq!(
        (site.va, site.pc, site.space),
        (0xc000_2004, Some(0xc001_0040), KERNEL)
    );
    assert_eq!(v[0].pa, 0x2004);
    assert_eq!(v[1].discarded, None);
    let text = v[0].to_string();
    assert!(text.contains("discarded at operation"), "{text}");
    assert!(text.contains("0xc0010040"), "{text}");
    // A second read of the same lost byte is only a stale read.
    sim.load_at(0xc000_2004, 4, at(0x2004)).unwrap();
    let again: Vec<_> = sim.take_violations().iter().map(|v| v.kind).collect();
    assert_eq!(again, [ViolationKind::StaleRead]);
}

/// Two VIVT aliases of one physical line, each dirty in its own bytes, are
/// both discarded: each loss is remembered under its own invalidate (the
/// second record does not replace the first).
#[test]
fn two_aliases_of_one_line_discarded_keep_their_own_records() {
    let mut sim = Sim::new(CpuModel::arm926().with_write_buffer(0), 64 << 10);
    sim.defer_discard_reports(true);
    let (user, kernel, pa) = (0x0001_0000, 0xc000_2000, 0x2000);
    sim.load_at(user, 4, at(pa)).unwrap();
    sim.load_at(kernel, 4, at(pa)).unwrap();
    sim.store_at(user, 4, 1, at(pa)).unwrap();
    sim.store_at(kernel + 4, 4, 2, at(pa + 4)).unwrap();
    sim.set_site(Some(0x200));
    sim.maintain_line(LineOp::Invalidate, user, Some(at(pa)));
    sim.set_site(Some(0x300));
    sim.maintain_line(LineOp::Invalidate, kernel, Some(at(pa)));
    assert!(sim.take_violations().is_empty());
    for (offset, invalidate) in [(0, 0x200), (4, 0x300)] {
        sim.load_at(kernel + offset, 4, at(pa + offset)).unwrap();
        let v = sim.take_violations();
        assert_eq!(
            v[0].kind,
            ViolationKind::DirtyLineDiscarded,
            "byte {offset}: {v:?}"
        );
        assert_eq!(v[0].discarded.and_then(|d| d.pc), Some(invalidate));
    }
}

/// `report_live_aliases`: the moment one physical line is cached under two
/// virtual addresses with one of them dirty is reported, though no read
/// shows the stale copy (nothing here reads it again).
fn kernel_and_user_alias_then_store(live: bool, flush_first: bool) -> Vec<ViolationKind> {
    let mut sim = Sim::new(CpuModel::arm926().with_write_buffer(0), 64 << 10);
    sim.report_live_aliases(live);
    let (user, kernel, pa) = (0x0001_0000, 0xc000_2000, 0x2000);
    sim.load_at(user, 4, at(pa)).unwrap();
    if flush_first {
        sim.maintain_line(LineOp::CleanInvalidate, user, Some(at(pa)));
    }
    sim.load_at(kernel, 4, at(pa)).unwrap();
    sim.store_at(kernel, 4, 1, at(pa)).unwrap();
    sim.take_violations().iter().map(|v| v.kind).collect()
}

#[test]
fn a_dirty_line_live_under_two_addresses_is_reported_when_asked() {
    assert_eq!(
        kernel_and_user_alias_then_store(true, false),
        [ViolationKind::LiveAlias {
            other_va: 0x0001_0000
        }]
    );
    assert_eq!(kernel_and_user_alias_then_store(false, false), []);
    assert_eq!(
        kernel_and_user_alias_then_store(true, true),
        [],
        "the user's line cleaned and invalidated first"
    );
    // A fill while the other alias is dirty is one too, though the word
    // read (bytes 4..8) is not the one stored: no stale read shows it.
    let mut sim = Sim::new(CpuModel::arm926().with_write_buffer(0), 64 << 10);
    sim.report_live_aliases(true);
    sim.load_at(0xc000_2000, 4, at(0x2000)).unwrap();
    sim.store_at(0xc000_2000, 4, 1, at(0x2000)).unwrap();
    sim.load_at(0x0001_0004, 4, at(0x2004)).unwrap();
    let v = sim.take_violations();
    assert_eq!(
        v.iter().map(|v| v.kind).collect::<Vec<_>>(),
        [ViolationKind::LiveAlias {
            other_va: 0xc000_2000
        }]
    );
    assert_eq!(v[0].va, Some(0x0001_0000));
}
