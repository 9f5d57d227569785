//! Every scenario runs on the five model presets; each maintained
//! scenario has a twin without (or with the wrong) maintenance that the
//! oracle must catch.

extern crate std;

use std::vec::Vec;
use std::{format, vec};

use super::*;
use crate::cache::{CacheGeometry, MainId};
use crate::sim::{CpuModel, KERNEL, MemType, Sim, Violation, ViolationKind};

const MEMORY: usize = 1 << 20;
const WB: MemType = MemType::WriteBack;

fn presets() -> [(&'static str, CpuModel); 5] {
    let g = CacheGeometry::new(16 << 10, 4, 32).unwrap();
    [
        ("ARM926 VIVT", CpuModel::arm926()),
        ("ARM1136 32K", CpuModel::arm1136_32k()),
        ("ARM1136 64K", CpuModel::arm1136_64k()),
        ("ARM1176 16K", CpuModel::arm1176_16k()),
        ("PIPT", CpuModel::pipt(g)),
    ]
}

fn range(start: u32, len: u64) -> VirtRange {
    VirtRange::new(VirtAddr(start), len).unwrap()
}

fn kinds(violations: &[Violation]) -> Vec<ViolationKind> {
    violations.iter().map(|v| v.kind).collect()
}

fn assert_clean(violations: &[Violation], what: &str) {
    assert!(
        violations.is_empty(),
        "{what}: expected no violation, got {violations:#?}"
    );
}

fn assert_reports(violations: &[Violation], kind: ViolationKind, what: &str) {
    assert!(
        violations.iter().any(|v| v.kind == kind),
        "{what}: expected {kind:?}, got {:?}",
        kinds(violations)
    );
}

/// A model with `pages` kernel pages at `va` → `pa`.
fn sim_with(model: CpuModel, va: u32, pa: u32, pages: u32) -> Sim {
    let mut sim = Sim::new(model, MEMORY);
    for p in 0..pages {
        sim.map(KERNEL, va + p * 4096, pa + p * 4096, WB, true)
            .unwrap();
    }
    sim
}

fn dma_for(sim: &Sim) -> Dma {
    Dma::new(CacheMaintenance::info(sim))
}

// ---- (a) a receive buffer sharing its first line with a CPU variable ----------

const SHARED_VA: u32 = 0xc050_0000;
const SHARED_PA: u32 = 0xa_0000;

struct Receive {
    violations: Vec<Violation>,
    variable: u32,
    received: [u32; 2],
    counters: DmaCounters,
}

/// The CPU variable at `SHARED_VA` (dirty, and written again after the
/// transfer); the receive buffer at `SHARED_VA + 0x10 .. + 0x80`, of
/// which the CPU had read a line before. `vacmm`: map / unmap;
/// otherwise a plain invalidate of every line the buffer touches.
fn shared_line_receive(model: CpuModel, vacmm: bool) -> Receive {
    let mut sim = sim_with(model, SHARED_VA, SHARED_PA, 1);
    let mut dma = dma_for(&sim);
    let buffer = range(SHARED_VA + 0x10, 0x70);
    sim.load(SHARED_VA + 0x40, 4).unwrap();
    sim.load(SHARED_VA, 4).unwrap();
    sim.store(SHARED_VA, 4, 0xc0de).unwrap();
    let mapping = if vacmm {
        // SAFETY: nothing reads or writes the buffer until unmap.
        Some(unsafe { dma.map_for_device(&mut sim, buffer, DmaDirection::FromDevice) }.unwrap())
    } else {
        for line in (SHARED_VA..SHARED_VA + 0x80).step_by(32) {
            // SAFETY (model): the bug under test.
            unsafe { sim.invalidate_dcache_line(VirtAddr(line)) };
        }
        None
    };
    sim.dma_write(SHARED_PA + 0x10, &[0x5a; 0x70]).unwrap();
    if let Some(mapping) = mapping {
        dma.unmap(&mut sim, mapping).unwrap();
    }
    let variable = sim.load(SHARED_VA, 4).unwrap();
    // The CPU keeps using its variable.
    sim.store(SHARED_VA, 4, variable.wrapping_add(1)).unwrap();
    let received = [
        sim.load(SHARED_VA + 0x10, 4).unwrap(),
        sim.load(SHARED_VA + 0x40, 4).unwrap(),
    ];
    assert_eq!(sim.load(SHARED_VA, 4).unwrap(), variable.wrapping_add(1));
    Receive {
        violations: sim.take_violations(),
        variable,
        received,
        counters: *dma.counters(),
    }
}

#[test]
fn receive_into_a_buffer_sharing_a_line_keeps_the_cpu_variable() {
    for (name, model) in presets() {
        let r = shared_line_receive(model, true);
        assert_clean(&r.violations, name);
        assert_eq!(r.variable, 0xc0de, "{name}: the CPU's variable");
        assert_eq!(r.received, [0x5a5a_5a5a; 2], "{name}: the device's data");
        // Map and unmap: line 0 partial (cleaned), lines 1..=3 invalidated.
        assert_eq!(
            (
                r.counters.partial_lines_cleaned,
                r.counters.lines_invalidated
            ),
            (2, 6),
            "{name}"
        );
        assert_eq!((r.counters.maps, r.counters.unmaps), (1, 1));
    }
}

#[test]
fn plain_invalidate_of_the_shared_line_loses_the_cpu_variable() {
    for (name, model) in presets() {
        let r = shared_line_receive(model, false);
        assert_reports(&r.violations, ViolationKind::DirtyLineDiscarded, name);
        assert_ne!(r.variable, 0xc0de, "{name}: the variable should be lost");
    }
}

/// The CPU writes its variable *while the device owns the buffer*:
/// no maintenance can save the shared line (its write-back carries the
/// buffer's old bytes over the device's); only a buffer on lines of
/// its own can. `aligned`: the buffer starts at the next line instead.
fn cpu_writes_during_transfer(model: CpuModel, aligned: bool) -> (Vec<Violation>, u32) {
    let mut sim = sim_with(model, SHARED_VA, SHARED_PA, 1);
    let mut dma = dma_for(&sim);
    let offset = if aligned { 0x20 } else { 0x10 };
    let buffer = range(SHARED_VA + offset, 0x80 - u64::from(offset));
    sim.load(SHARED_VA, 4).unwrap();
    sim.store(SHARED_VA, 4, 1).unwrap();
    // SAFETY: the CPU leaves the buffer's bytes alone until unmap.
    let mapping =
        unsafe { dma.map_for_device(&mut sim, buffer, DmaDirection::FromDevice) }.unwrap();
    let v = sim.load(SHARED_VA, 4).unwrap();
    sim.store(SHARED_VA, 4, v + 1).unwrap();
    sim.dma_write(SHARED_PA + offset, &vec![0x5a; 0x80 - offset as usize])
        .unwrap();
    dma.unmap(&mut sim, mapping).unwrap();
    let word = sim.load(SHARED_VA + 0x40, 4).unwrap();
    assert_eq!(sim.load(SHARED_VA, 4).unwrap(), 2);
    (sim.take_violations(), word)
}

#[test]
fn cpu_writes_to_a_shared_line_during_the_transfer_need_an_aligned_buffer() {
    for (name, model) in presets() {
        let (violations, _) = cpu_writes_during_transfer(model, false);
        assert_reports(&violations, ViolationKind::StaleWriteBack, name);
        let (violations, word) = cpu_writes_during_transfer(model, true);
        assert_clean(&violations, name);
        assert_eq!(word, 0x5a5a_5a5a, "{name}");
    }
    // The tracker names the layout that fails, and passes the one that works.
    let info = CpuModel::arm926().info();
    let mut tracker = DmaTracker::new(&info);
    let variable = range(SHARED_VA, 4);
    tracker.declare_cpu_data(variable).unwrap();
    let shared = range(SHARED_VA + 0x10, 0x70);
    assert_eq!(
        tracker.check_buffer(shared),
        Err(DmaError::SharesLine {
            buffer: shared,
            other: variable,
            line: VirtAddr(SHARED_VA)
        })
    );
    assert_eq!(tracker.check_buffer(range(SHARED_VA + 0x20, 0x60)), Ok(()));
}

// ---- (b) transmit, then receive ------------------------------------------------

const BUF_VA: u32 = 0xc060_0000;
const BUF_PA: u32 = 0xb_0000;

/// The CPU writes a 256-byte packet; the device reads it, then writes
/// its answer over it; the CPU reads the answer. `direction`: None
/// without maintenance, else one map / unmap per transfer (ToDevice
/// then FromDevice) or one bidirectional mapping for both.
fn transmit_then_receive(model: CpuModel, maintain: Option<DmaDirection>) -> Vec<Violation> {
    let mut sim = sim_with(model, BUF_VA, BUF_PA, 1);
    let mut dma = dma_for(&sim);
    let buffer = range(BUF_VA, 256);
    for offset in (0..256).step_by(4) {
        sim.load(BUF_VA + offset, 4).unwrap();
        sim.store(BUF_VA + offset, 4, 0x1000_0000 | offset).unwrap();
    }
    // SAFETY (every map below): the CPU leaves the buffer alone until unmap.
    let map = |dma: &mut Dma, sim: &mut Sim, dir| {
        unsafe { dma.map_for_device(sim, buffer, dir) }.unwrap()
    };
    let tx = match maintain {
        Some(DmaDirection::Bidirectional) => {
            Some(map(&mut dma, &mut sim, DmaDirection::Bidirectional))
        }
        Some(_) => Some(map(&mut dma, &mut sim, DmaDirection::ToDevice)),
        None => None,
    };
    let sent = sim.dma_read(BUF_PA, 256).unwrap();
    let rx = match (maintain, tx) {
        (Some(DmaDirection::Bidirectional), tx) => tx,
        (_, Some(tx)) => {
            dma.unmap(&mut sim, tx).unwrap();
            Some(map(&mut dma, &mut sim, DmaDirection::FromDevice))
        }
        (_, None) => None,
    };
    sim.dma_write(BUF_PA, &[7; 256]).unwrap();
    if let Some(rx) = rx {
        dma.unmap(&mut sim, rx).unwrap();
    }
    let answer = [
        sim.load(BUF_VA, 4).unwrap(),
        sim.load(BUF_VA + 64, 4).unwrap(),
        sim.load(BUF_VA + 252, 4).unwrap(),
    ];
    if maintain.is_some() {
        assert_eq!(&sent[..8], &[0, 0, 0, 0x10, 4, 0, 0, 0x10]);
        assert_eq!(answer, [0x0707_0707; 3]);
        assert!(dma.tracker().buffers().is_empty());
    }
    sim.take_violations()
}

#[test]
fn transmit_then_receive_with_map_and_unmap() {
    for (name, model) in presets() {
        for dir in [DmaDirection::ToDevice, DmaDirection::Bidirectional] {
            let violations = transmit_then_receive(model, Some(dir));
            assert_clean(&violations, &format!("{name}, {dir:?}"));
        }
    }
}

#[test]
fn transmit_then_receive_without_maintenance_goes_stale_both_ways() {
    for (name, model) in presets() {
        let violations = transmit_then_receive(model, None);
        assert_reports(&violations, ViolationKind::DmaReadStaleMemory, name);
        assert_reports(&violations, ViolationKind::StaleReadAfterDma, name);
    }
}

/// One mapping reused for several transfers (a receive ring slot, a
/// transmit slot), handed back and forth by sync_for_cpu /
/// sync_for_device; the CPU reads every packet (so its lines are
/// cached when the next one arrives).
fn streaming(model: CpuModel, maintain: bool) -> Vec<Violation> {
    let mut sim = sim_with(model, BUF_VA, BUF_PA, 1);
    let mut dma = dma_for(&sim);
    let rx_range = range(BUF_VA, 128);
    let tx_range = range(BUF_VA + 0x800, 128);
    // SAFETY: the CPU touches the buffers only between sync_for_cpu
    // and sync_for_device.
    let (mut rx, mut tx) = unsafe {
        (
            dma.map_for_device(&mut sim, rx_range, DmaDirection::FromDevice)
                .unwrap(),
            dma.map_for_device(&mut sim, tx_range, DmaDirection::ToDevice)
                .unwrap(),
        )
    };
    for round in 1..=3u8 {
        sim.dma_write(BUF_PA, &[round; 128]).unwrap();
        if maintain {
            dma.sync_for_cpu(&mut sim, &mut rx).unwrap();
            dma.sync_for_cpu(&mut sim, &mut tx).unwrap();
        }
        let word = sim.load(BUF_VA + 32, 4).unwrap();
        sim.load(BUF_VA + 0x800, 4).unwrap();
        sim.store(BUF_VA + 0x800, 4, word).unwrap();
        if maintain {
            assert_eq!(word, u32::from_le_bytes([round; 4]));
            dma.sync_for_device(&mut sim, &mut rx).unwrap();
            dma.sync_for_device(&mut sim, &mut tx).unwrap();
        }
        let sent = sim.dma_read(BUF_PA + 0x800, 4).unwrap();
        if maintain {
            assert_eq!(sent, [round; 4]);
        }
    }
    dma.unmap(&mut sim, rx).unwrap();
    dma.unmap(&mut sim, tx).unwrap();
    let c = dma.counters();
    if maintain {
        assert_eq!((c.syncs_for_cpu, c.syncs_for_device), (6, 6));
        // Unmaps after sync_for_device: the receive one invalidates,
        // the transmit one and every transmit sync_for_cpu need nothing.
        assert_eq!(c.no_maintenance, 4);
    }
    sim.take_violations()
}

#[test]
fn streaming_reuse_with_sync_for_cpu_and_device() {
    for (name, model) in presets() {
        assert_clean(&streaming(model, true), name);
        let violations = streaming(model, false);
        assert_reports(&violations, ViolationKind::StaleReadAfterDma, name);
        assert_reports(&violations, ViolationKind::DmaReadStaleMemory, name);
    }
}

/// A buffer of 32 KiB with CPU data dirty around it: at or past the
/// whole-cache threshold the invalidate becomes a whole-cache clean +
/// invalidate, which keeps the data.
#[test]
fn large_buffers_fall_back_to_the_whole_cache_without_losing_data() {
    for (name, model) in presets() {
        let mut sim = sim_with(model, BUF_VA, BUF_PA, 10);
        let mut dma = dma_for(&sim);
        let buffer = range(BUF_VA + 0x1000, 32 << 10);
        for va in [BUF_VA, BUF_VA + 0x9000, BUF_VA + 0x2000] {
            sim.load(va, 4).unwrap();
            sim.store(va, 4, va).unwrap();
        }
        // SAFETY: the CPU leaves the buffer alone until unmap (the
        // store above to it is handed over with it).
        let mapping =
            unsafe { dma.map_for_device(&mut sim, buffer, DmaDirection::Bidirectional) }.unwrap();
        sim.dma_write(BUF_PA + 0x2000, &[9; 64]).unwrap();
        dma.unmap(&mut sim, mapping).unwrap();
        assert_eq!(sim.load(BUF_VA, 4).unwrap(), BUF_VA, "{name}");
        assert_eq!(sim.load(BUF_VA + 0x9000, 4).unwrap(), BUF_VA + 0x9000);
        assert_eq!(sim.load(BUF_VA + 0x2000, 4).unwrap(), 0x0909_0909);
        assert_clean(&sim.take_violations(), name);
        let c = dma.counters();
        if model.dcache.geometry.size_bytes <= 32 << 10 {
            assert_eq!(c.whole_cache_ops, 2, "{name}");
        } else {
            assert_eq!(c.lines_cleaned_invalidated, 1024, "{name}");
            assert_eq!(c.lines_invalidated, 1024, "{name}");
        }
    }
}

// ---- (c) aligned buffers and the tracker -------------------------------------

fn info_with_line(line: usize) -> CacheInfo {
    let g = CacheGeometry::new(16 << 10, 4, line).unwrap();
    CacheInfo::pipt(MainId::from_raw(0x410f_b767), g, g)
}

#[test]
fn buffers_are_line_aligned_padded_and_zeroed() {
    for line in [8usize, 32, 64, 256] {
        let info = info_with_line(line);
        for len in [1usize, 7, 31, 32, 33, 100, 4096, 5000] {
            let mut buf = DmaBuffer::new(&info, len).unwrap();
            let padded = len.next_multiple_of(line);
            assert_eq!(buf.len(), len);
            assert!(!buf.is_empty());
            assert_eq!((buf.padded_len(), buf.align()), (padded, line));
            assert_eq!(buf.as_slice().as_ptr() as usize % line, 0);
            let r = buf.range();
            assert!(r.start().is_aligned(line as u32), "{line}/{len}: {r:?}");
            assert_eq!(r.len(), padded as u64);
            assert!(buf.as_slice().iter().all(|&b| b == 0));
            buf.as_mut_slice()[len - 1] = 0xa5;
            assert_eq!(buf.as_slice()[len - 1], 0xa5);
            // Neighbours right before and after share no line with it.
            let mut tracker = DmaTracker::new(&info);
            tracker.add_buffer(r).unwrap();
            let before = VirtRange::new(VirtAddr(r.start().as_u32() - 4), 4).unwrap();
            let after = VirtRange::new(VirtAddr((end(r)) as u32), 4).unwrap();
            tracker.declare_cpu_data(before).unwrap();
            tracker.declare_cpu_data(after).unwrap();
            assert_eq!(tracker.check(), Ok(()));
        }
    }
}

#[test]
fn tracker_reports_buffers_sharing_a_line_with_data_or_each_other() {
    let info = CpuModel::arm926().info();
    let mut tracker = DmaTracker::new(&info);
    assert_eq!(tracker.line_bytes(), 32);
    let (a, b) = (range(0xc000_0010, 0x20), range(0xc000_0030, 0x20));
    tracker.add_buffer(b).unwrap();
    tracker.add_buffer(a).unwrap();
    assert_eq!(tracker.buffers(), [a, b]);
    // Adjacent buffers whose ends share line 0xc000_0020.
    assert_eq!(
        tracker.check(),
        Err(DmaError::SharesLine {
            buffer: a,
            other: b,
            line: VirtAddr(0xc000_0020)
        })
    );
    tracker.remove_buffer(b).unwrap();
    assert_eq!(tracker.check(), Ok(()));
    // Data in the buffer's last, partial line; data inside the buffer.
    let tail = range(0xc000_0034, 4);
    tracker.declare_cpu_data(tail).unwrap();
    assert_eq!(
        tracker.check(),
        Err(DmaError::SharesLine {
            buffer: a,
            other: tail,
            line: VirtAddr(0xc000_0020)
        })
    );
    tracker.forget_cpu_data(tail).unwrap();
    let inside = range(0xc000_0020, 4);
    tracker.declare_cpu_data(inside).unwrap();
    assert!(matches!(tracker.check(), Err(DmaError::SharesLine { other, .. }) if other == inside));
    tracker.forget_cpu_data(inside).unwrap();
    assert_eq!(tracker.cpu_data(), []);
    assert_eq!(tracker.check(), Ok(()));
    // A buffer at the top of the address space.
    let top = range(0xffff_ffe0, 0x20);
    tracker.add_buffer(top).unwrap();
    tracker.declare_cpu_data(range(0xffff_ffdc, 4)).unwrap();
    assert_eq!(tracker.check(), Ok(()));
    tracker.declare_cpu_data(range(0xffff_fffc, 4)).unwrap();
    assert!(tracker.check().is_err());
}

/// A DmaBuffer in the model (mapped at its range's addresses), a CPU
/// variable in the word before it that the CPU writes during the
/// transfer: nothing to report, and the sharing check agrees.
#[test]
fn aligned_buffer_receives_while_the_cpu_writes_next_door() {
    for (name, model) in presets() {
        let info = model.info();
        let mut buf = DmaBuffer::new(&info, 100).unwrap();
        let r = buf.range();
        let start = r.start().as_u32();
        assert!(start >= 0x1000 && end(r) < 1 << 32, "{r:?}");
        let variable = start - 4;
        let first_page = variable & !0xfff;
        let pages = ((end(r) as u32 - 1 - first_page) >> 12) + 1;
        let mut sim = sim_with(model, first_page, 0x4_0000, pages);
        let pa = 0x4_0000 + (start - first_page);
        let mut dma = Dma::new(&info).with_sharing_check(true);
        dma.declare_cpu_data(range(variable, 4)).unwrap();
        sim.load(variable, 4).unwrap();
        sim.store(variable, 4, 1).unwrap();
        let mut mapping = dma
            .map_buffer(&mut sim, &mut buf, DmaDirection::FromDevice)
            .unwrap();
        assert_eq!(mapping.range(), r);
        assert_eq!(mapping.direction(), DmaDirection::FromDevice);
        assert_eq!(mapping.owner(), DmaOwner::Device);
        assert!(mapping.cpu_bytes().is_none() && mapping.cpu_bytes_mut().is_none());
        let v = sim.load(variable, 4).unwrap();
        sim.store(variable, 4, v + 1).unwrap();
        sim.dma_write(pa, &[0x3c; 128]).unwrap();
        dma.sync_for_cpu(&mut sim, &mut mapping).unwrap();
        assert_eq!(mapping.owner(), DmaOwner::Cpu);
        assert_eq!(mapping.cpu_bytes().map(<[u8]>::len), Some(100));
        mapping.cpu_bytes_mut().unwrap()[0] = 1;
        assert_eq!(sim.load(start + 96, 4).unwrap(), 0x3c3c_3c3c, "{name}");
        assert_eq!(dma.check(), Ok(()));
        dma.unmap(&mut sim, mapping).unwrap();
        assert_eq!(buf.as_slice()[0], 1);
        assert_eq!(sim.load(variable, 4).unwrap(), 2, "{name}");
        assert_clean(&sim.take_violations(), name);
        // Padded: whole lines only, none partial.
        assert_eq!(dma.counters().partial_lines_cleaned, 0, "{name}");
    }
}

#[test]
fn sharing_check_refuses_the_map_before_any_maintenance() {
    let mut sim = sim_with(CpuModel::arm926(), SHARED_VA, SHARED_PA, 1);
    let mut dma = dma_for(&sim).with_sharing_check(true);
    let variable = range(SHARED_VA, 4);
    dma.declare_cpu_data(variable).unwrap();
    let buffer = range(SHARED_VA + 0x10, 0x70);
    let before = *sim.counters();
    // SAFETY: refused, nothing is maintained.
    let refused = unsafe { dma.map_for_device(&mut sim, buffer, DmaDirection::FromDevice) };
    assert_eq!(
        refused.unwrap_err(),
        DmaError::SharesLine {
            buffer,
            other: variable,
            line: VirtAddr(SHARED_VA)
        }
    );
    assert_eq!(*sim.counters(), before);
    assert_eq!(*dma.counters(), DmaCounters::default());
    assert!(dma.tracker().buffers().is_empty());
    // Another mapped buffer on the same line is refused too.
    dma.forget_cpu_data(variable).unwrap();
    // SAFETY: the CPU leaves both ranges alone.
    let first =
        unsafe { dma.map_for_device(&mut sim, range(SHARED_VA, 8), DmaDirection::ToDevice) }
            .unwrap();
    let second = unsafe { dma.map_for_device(&mut sim, buffer, DmaDirection::ToDevice) };
    assert!(matches!(second, Err(DmaError::SharesLine { other, .. }) if other == first.range()));
    dma.unmap(&mut sim, first).unwrap();
    let taken = dma.take_counters();
    assert_eq!((taken.maps, taken.unmaps, taken.lines_cleaned), (1, 1, 1));
    assert_eq!(*dma.counters(), DmaCounters::default());
}

// ---- (d) every error ------------------------------------------------------------

/// Issue 19: `start + usize::MAX` overflowed in `VirtRange::new`.
#[test]
fn map_single_of_usize_max_bytes_is_a_typed_error() {
    let mut sim = sim_with(CpuModel::arm926(), BUF_VA, BUF_PA, 1);
    let mut dma = dma_for(&sim);
    // SAFETY: nothing is mapped, so nothing is maintained.
    let refused =
        unsafe { dma.map_single(&mut sim, VirtAddr(1), usize::MAX, DmaDirection::ToDevice) };
    assert_eq!(
        refused.unwrap_err(),
        DmaError::WrapsPast4GiB {
            start: VirtAddr(1),
            len: usize::MAX as u64
        }
    );
    assert!(dma.tracker().buffers().is_empty());
}

#[test]
fn ranges_that_cannot_be_mapped_are_typed_errors() {
    let mut sim = sim_with(CpuModel::arm926(), BUF_VA, BUF_PA, 1);
    let mut dma = dma_for(&sim);
    let to = DmaDirection::ToDevice;
    // SAFETY (this test's maps): the CPU never touches the ranges.
    unsafe {
        assert_eq!(
            dma.map_for_device(&mut sim, range(BUF_VA, 0), to)
                .unwrap_err(),
            DmaError::Empty {
                start: VirtAddr(BUF_VA)
            }
        );
        assert_eq!(
            dma.map_single(&mut sim, VirtAddr(BUF_VA), 0, to)
                .unwrap_err(),
            DmaError::Empty {
                start: VirtAddr(BUF_VA)
            }
        );
        assert_eq!(
            dma.map_single(&mut sim, VirtAddr(0xffff_ff00), 0x101, to)
                .unwrap_err(),
            DmaError::WrapsPast4GiB {
                start: VirtAddr(0xffff_ff00),
                len: 0x101
            }
        );
        let top = dma
            .map_single(&mut sim, VirtAddr(0xffff_ff00), 0x100, to)
            .unwrap();
        assert_eq!(top.range(), range(0xffff_ff00, 0x100));
        let live = dma
            .map_single(&mut sim, VirtAddr(BUF_VA + 0x100), 0x100, to)
            .unwrap();
        // Overlapping from below, from above, inside, around.
        for (start, len) in [(0x80, 0x81), (0x1ff, 2), (0x140, 4), (0, 0x1000)] {
            let asked = range(BUF_VA + start, len);
            assert_eq!(
                dma.map_for_device(&mut sim, asked, to).unwrap_err(),
                DmaError::AlreadyMapped {
                    range: asked,
                    existing: live.range()
                }
            );
        }
        // Touching without overlapping is allowed (the sharing check is off).
        let below = dma
            .map_for_device(&mut sim, range(BUF_VA + 0x80, 0x80), to)
            .unwrap();
        let above = dma
            .map_for_device(&mut sim, range(BUF_VA + 0x200, 0x80), to)
            .unwrap();
        assert_eq!(dma.tracker().buffers().len(), 4);
        for m in [top, live, below, above] {
            dma.unmap(&mut sim, m).unwrap();
        }
    }
    assert!(dma.tracker().buffers().is_empty());
    assert_clean(&sim.take_violations(), "errors");
}

#[test]
fn foreign_mappings_and_wrong_owners_are_typed_errors() {
    let mut sim = sim_with(CpuModel::arm1176_16k(), BUF_VA, BUF_PA, 1);
    let (mut dma, mut other) = (dma_for(&sim), dma_for(&sim));
    let r = range(BUF_VA, 64);
    // SAFETY: the CPU never touches the range.
    let mut m = unsafe { other.map_for_device(&mut sim, r, DmaDirection::FromDevice) }.unwrap();
    assert_eq!(
        dma.sync_for_cpu(&mut sim, &mut m),
        Err(DmaError::NotMapped { range: r })
    );
    assert_eq!(
        dma.sync_for_device(&mut sim, &mut m),
        Err(DmaError::NotMapped { range: r })
    );
    // The device owns it: it cannot be handed to the device again.
    assert_eq!(
        other.sync_for_device(&mut sim, &mut m),
        Err(DmaError::WrongOwner {
            range: r,
            owner: DmaOwner::Device
        })
    );
    other.sync_for_cpu(&mut sim, &mut m).unwrap();
    assert_eq!(
        other.sync_for_cpu(&mut sim, &mut m),
        Err(DmaError::WrongOwner {
            range: r,
            owner: DmaOwner::Cpu
        })
    );
    assert_eq!(
        dma.unmap(&mut sim, m),
        Err(DmaError::NotMapped { range: r })
    );
    // The refused unmap consumed the token but left `other`'s entry.
    assert_eq!(other.tracker().buffers(), [r]);
    assert_eq!(*dma.counters(), DmaCounters::default());
    assert_eq!(
        dma.forget_cpu_data(r),
        Err(DmaError::NotDeclared { range: r })
    );
    assert_eq!(
        dma.declare_cpu_data(range(BUF_VA, 0)),
        Err(DmaError::Empty {
            start: VirtAddr(BUF_VA)
        })
    );
    let mut tracker = DmaTracker::new(&CpuModel::arm926().info());
    assert_eq!(
        tracker.add_buffer(range(BUF_VA, 0)),
        Err(DmaError::Empty {
            start: VirtAddr(BUF_VA)
        })
    );
    assert_eq!(
        tracker.remove_buffer(r),
        Err(DmaError::NotMapped { range: r })
    );
}

#[test]
fn buffers_that_cannot_be_allocated_are_typed_errors() {
    let info = CpuModel::arm926().info();
    assert_eq!(DmaBuffer::new(&info, 0).unwrap_err(), DmaError::EmptyBuffer);
    assert_eq!(
        DmaBuffer::new(&info, usize::MAX).unwrap_err(),
        DmaError::BadLayout {
            len: usize::MAX,
            align: 32
        }
    );
    assert_eq!(
        DmaBuffer::new(&info, isize::MAX as usize).unwrap_err(),
        DmaError::BadLayout {
            len: isize::MAX as usize,
            align: 32
        }
    );
    // A line no cache has (the fields are public): no layout, no panic.
    let mut odd = info;
    odd.dcache.line_bytes = 24;
    assert_eq!(
        DmaBuffer::new(&odd, 10).unwrap_err(),
        DmaError::BadLayout { len: 10, align: 24 }
    );
    assert_eq!(DmaTracker::new(&odd).line_bytes(), 256);
    odd.dcache.line_bytes = 0;
    assert!(DmaBuffer::new(&odd, 10).is_err());
    #[cfg(target_pointer_width = "64")]
    assert_eq!(
        DmaBuffer::new(&info, 1 << 62).unwrap_err(),
        DmaError::AllocationFailed {
            size: 1 << 62,
            align: 32
        }
    );
    // An allocation whose low 32 bits would wrap has no kernel range.
    assert_eq!(
        kernel_range(0x1_ffff_ffe0, 0x40),
        Err(DmaError::WrapsPast4GiB {
            start: VirtAddr(0xffff_ffe0),
            len: 0x40
        })
    );
    assert_eq!(
        kernel_range(0x1_ffff_ffe0, 0x20),
        Ok(range(0xffff_ffe0, 0x20))
    );
}

#[test]
fn errors_display_their_values() {
    let r = range(0xc000_0010, 0x20);
    let errors = [
        DmaError::Empty { start: r.start() },
        DmaError::WrapsPast4GiB {
            start: r.start(),
            len: 1 << 32,
        },
        DmaError::AlreadyMapped {
            range: r,
            existing: r,
        },
        DmaError::NotMapped { range: r },
        DmaError::WrongOwner {
            range: r,
            owner: DmaOwner::Cpu,
        },
        DmaError::SharesLine {
            buffer: r,
            other: r,
            line: VirtAddr(0xc000_0000),
        },
        DmaError::NotDeclared { range: r },
        DmaError::EmptyBuffer,
        DmaError::BadLayout { len: 3, align: 24 },
        DmaError::AllocationFailed {
            size: 64,
            align: 32,
        },
        DmaError::NoMemory { entries: 7 },
    ];
    for e in errors {
        let text = format!("{e}");
        assert!(!text.is_empty());
        if !matches!(e, DmaError::EmptyBuffer) {
            assert!(
                text.contains("0x") || text.contains('3') || text.contains('7'),
                "{text}"
            );
        }
    }
}

/// With the sharing check off a map is not judged, but `Dma::check`
/// judges every live mapping on demand: data declared after the map on
/// the buffer's line is reported, and nothing once the buffer is unmapped
/// (which the counters count).
#[test]
fn the_check_on_demand_reports_data_declared_after_the_map() {
    let mut sim = sim_with(CpuModel::arm926(), SHARED_VA, SHARED_PA, 1);
    let mut dma = dma_for(&sim);
    let buffer = range(SHARED_VA + 0x10, 0x70);
    // SAFETY: the CPU leaves the buffer alone while the device owns it.
    let mapping = unsafe { dma.map_for_device(&mut sim, buffer, DmaDirection::ToDevice) }.unwrap();
    let variable = range(SHARED_VA, 4);
    dma.declare_cpu_data(variable).unwrap();
    assert_eq!(dma.tracker().cpu_data(), [variable]);
    assert_eq!(
        dma.check(),
        Err(DmaError::SharesLine {
            buffer,
            other: variable,
            line: VirtAddr(SHARED_VA)
        })
    );
    dma.unmap(&mut sim, mapping).unwrap();
    assert_eq!(dma.counters().unmaps, 1);
    assert_eq!(dma.check(), Ok(()));
}

/// A buffer gives its allocation back when dropped, whatever its size.
#[test]
fn a_dropped_buffer_frees_its_allocation() {
    use crate::tests::allocations::live_bytes;
    let info = CpuModel::arm926().info();
    for len in [1, 31, 32, 100, 4096] {
        let before = live_bytes();
        let buf = DmaBuffer::new(&info, len).unwrap();
        assert!(live_bytes() - before >= len as isize, "{len}: allocated");
        drop(buf);
        assert_eq!(live_bytes(), before, "{len}");
    }
}

/// An unmap after `sync_for_cpu` owes nothing (an invalidate now could only
/// drop what the CPU wrote since), and is counted so: no line operation,
/// one more `no_maintenance`.
#[test]
fn an_unmap_after_sync_for_cpu_does_and_counts_no_maintenance() {
    for (name, model) in presets() {
        let mut sim = sim_with(model, BUF_VA, BUF_PA, 1);
        let mut dma = dma_for(&sim);
        // SAFETY: the CPU leaves the buffer alone until it syncs.
        let mut rx =
            unsafe { dma.map_for_device(&mut sim, range(BUF_VA, 256), DmaDirection::FromDevice) }
                .unwrap();
        sim.dma_write(BUF_PA, &[9; 256]).unwrap();
        dma.sync_for_cpu(&mut sim, &mut rx).unwrap();
        let (before, lines) = (*dma.counters(), sim.counters().invalidate_line);
        dma.unmap(&mut sim, rx).unwrap();
        let after = dma.counters();
        assert_eq!(sim.counters().invalidate_line, lines, "{name}");
        assert_eq!(after.no_maintenance, before.no_maintenance + 1, "{name}");
        assert_eq!(after.unmaps, before.unmaps + 1, "{name}");
        assert_eq!(sim.load(BUF_VA, 4).unwrap(), 0x0909_0909, "{name}");
        assert_clean(&sim.take_violations(), name);
    }
}
