//! Tests of the model: each scenario drives the public `Sim` API and
//! checks the oracle's report.

use super::*;

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
