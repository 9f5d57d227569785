//! Maintenance that costs more than the whole cache (issue 24), measured
//! on the model's own counters: each case falls back to the whole cache
//! past the policy's range threshold.

extern crate std;

use super::*;
use crate::sim::Counters as SimCounters;

/// The model's maintenance operations between two counter readings.
fn line_ops(before: &SimCounters, after: &SimCounters) -> (u64, u64, u64) {
    let lines = |c: &SimCounters| c.clean_line + c.clean_invalidate_line + c.invalidate_line;
    (
        lines(after) - lines(before),
        after.tlb_ops - before.tlb_ops,
        after.cycles - before.cycles,
    )
}

/// Exit of a space that is not running, with `pages` resident pages, on
/// the ARM1136 32K (aliasing VIPT): line and TLB operations, cycles, and
/// the engine's whole-cache flushes.
fn exit_not_running(pages: u32, shared: bool) -> ((u64, u64, u64), u64) {
    let mut m = Machine::new(CpuModel::arm1136_32k());
    let mut big = m.space();
    m.switch_to(&mut big);
    let args = MmapArgs {
        shared,
        ..MmapArgs::anonymous(pages * PAGE)
    };
    let va = big.mmap(&mut m.sys, args).unwrap().as_u32();
    for page in 0..pages {
        user_store(&mut m, &mut big, va + page * PAGE, page, Faults::Engine);
    }
    let mut other = m.space();
    m.switch_to(&mut other);
    let before = *m.sys.mem.counters();
    let flushes = m.engine.counters().whole_cache_flushes;
    m.engine.exit(&mut m.sys, big).unwrap();
    let after = *m.sys.mem.counters();
    assert_eq!(violations(&mut m), []);
    (
        line_ops(&before, &after),
        m.engine.counters().whole_cache_flushes - flushes,
    )
}

#[test]
fn exiting_a_large_space_not_running_takes_the_whole_cache() {
    // Shared pages: their data outlives the space, so it is written back.
    let ((lines, tlb, cycles), whole) = exit_not_running(256, true);
    std::eprintln!(
        "256 pages: {lines} line ops, {tlb} TLB ops, {cycles} cycles, {whole} whole-cache"
    );
    assert_eq!(whole, 1);
    // What is left is the table's teardown: one cleaned descriptor write
    // (for the walker) per page, and one TLB invalidate by the space's
    // ASID (it was one per page).
    assert!(lines <= 256, "{lines} line operations");
    assert_eq!(tlb, 1, "TLB operations");
    // A small space still goes page by page through the windows.
    let ((lines, _, _), whole) = exit_not_running(2, true);
    assert_eq!(whole, 0);
    assert!(lines >= 2 * 128, "{lines}");
}

/// Private pages in their frames' own colours die with the space, and
/// their lines are the linear map's: nothing to do (a PIPT cache would do
/// nothing either). The frames' next fills meet the lines and the oracle
/// sees no violation (the random programs reuse such frames at other
/// colours too, through windows).
#[test]
fn exiting_a_space_whose_dying_pages_are_in_their_own_colours_needs_no_maintenance() {
    let ((lines, tlb, cycles), whole) = exit_not_running(256, false);
    std::eprintln!(
        "256 private pages: {lines} line ops, {tlb} TLB ops, {cycles} cycles, {whole} whole-cache"
    );
    assert_eq!(whole, 0);
    assert!(
        lines <= 256,
        "only the table's teardown: {lines} line operations"
    );
}

/// `shared` pages shared writable by two spaces under FCSE PIDs on the
/// ARM926, then switches between them: line operations per switch.
fn fcse_switches(shared: u32) -> ((u64, u64, u64), u64) {
    let mut m = Machine::with_switching(CpuModel::arm926(), Switching::Fcse);
    let mut a = m.space();
    m.switch_to(&mut a);
    let va = a
        .mmap(
            &mut m.sys,
            MmapArgs {
                shared: true,
                ..MmapArgs::anonymous(shared * PAGE)
            },
        )
        .unwrap()
        .as_u32();
    for page in 0..shared {
        user_store(&mut m, &mut a, va + page * PAGE, page, Faults::Engine);
    }
    let table = m.child_table();
    let mut b = m.engine.fork(&mut m.sys, &mut a, table).unwrap();
    m.switch_to(&mut b);
    for page in 0..shared {
        user_store(&mut m, &mut b, va + page * PAGE + 4, page, Faults::Engine);
    }
    let before = *m.sys.mem.counters();
    let flushes = m.engine.counters().whole_cache_flushes;
    m.switch_to(&mut a);
    let after = *m.sys.mem.counters();
    for page in 0..shared {
        assert_eq!(
            user_load(&mut m, &mut a, va + page * PAGE + 4, Faults::Engine),
            page
        );
    }
    assert_eq!(violations(&mut m), []);
    (
        line_ops(&before, &after),
        m.engine.counters().whole_cache_flushes - flushes,
    )
}

#[test]
fn separating_many_shared_pages_at_a_switch_takes_the_whole_cache() {
    let ((lines, _, cycles), whole) = fcse_switches(64);
    std::eprintln!("64 shared pages: {lines} line ops, {cycles} cycles, {whole} whole-cache");
    assert_eq!(whole, 1);
    assert!(lines < 64 * 128, "{lines} line operations");
    let ((lines, _, _), whole) = fcse_switches(1);
    assert_eq!(whole, 0);
    assert!(lines > 0 && lines <= 2 * 128, "{lines}");
}

/// Maps page 0 of `file` executable in a fresh space and runs it: the
/// model's clean-line operations of the mapping's fault, and the word the
/// process fetched.
fn map_and_run(m: &mut Machine, file: crate::mm::object::ObjectId) -> (u64, u32) {
    use crate::mm::space::{FaultAccess, Protection};
    let mut space = m.space();
    m.switch_to(&mut space);
    let before = m.sys.mem.counters().clean_line;
    let exec = Protection::READ | Protection::EXEC;
    let va = map_in(m, &mut space, file, exec, FaultAccess::Execute);
    let cleans = m.sys.mem.counters().clean_line - before;
    (cleans, m.sys.mem.fetch(va.as_u32()).unwrap())
}

/// The kernel writes `value` into every word of `pa` (a `read()` into the
/// page cache), through the engine's guard.
fn kernel_fill(m: &mut Machine, pa: PhysAddr, value: u32) {
    let mut write = m.engine.page_cache_write(&mut m.sys, pa).unwrap();
    let at = write.va().as_u32();
    for offset in (0..PAGE).step_by(4) {
        write.mem().store(at + offset, 4, value).unwrap();
    }
    write.finish().unwrap();
}

/// A one-page file whose page the kernel filled with `word`.
fn file_of_code(m: &mut Machine, word: u32) -> (crate::mm::object::ObjectId, PhysAddr) {
    let file = m.file(1);
    let pa = m.sys.allocator.allocate_any().unwrap();
    m.sys.objects.insert_page(file, 0, pa).unwrap();
    kernel_fill(m, pa, word);
    (file, pa)
}

/// A loader mapping library code that is already clean: the first
/// executable mapping cleans the kernel alias's 128 lines, later ones
/// clean nothing (`PageFlags::CODE_SYNCED`, Linux's `PG_dcache_clean`).
/// The twin: a kernel write between two mappings makes the next one clean
/// again, and the process fetches the new code, on every preset.
#[test]
fn mapping_clean_code_again_cleans_nothing_until_the_kernel_writes_it() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let (file, pa) = file_of_code(&mut m, 0xe320_f000);
        let (first, fetched) = map_and_run(&mut m, file);
        assert_eq!(fetched, 0xe320_f000, "{name}");
        let (again, fetched) = map_and_run(&mut m, file);
        assert_eq!(fetched, 0xe320_f000, "{name}");
        kernel_fill(&mut m, pa, 0xe12f_ff1e);
        let (after_write, fetched) = map_and_run(&mut m, file);
        assert_eq!(fetched, 0xe12f_ff1e, "{name}: the new code is fetched");
        std::eprintln!(
            "{name}: clean-line operations of an executable mapping: first {first}, \
             again {again}, after a kernel write {after_write}"
        );
        // The kernel alias's 128 lines, cleaned for the written page and
        // not for the synced one. The rest is the same for both: the fresh
        // space's coarse table zeroed and cleaned (128 lines) and two
        // descriptors; the first mapping also completes the deferred
        // kernel write on the ARM926 (128 more).
        assert_eq!(after_write - again, 128, "{name}");
        assert!(first >= after_write, "{name}");
        assert_eq!(m.engine.counters().code_clean_skipped, 1, "{name}");
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// Once no user maps a page that was run, a kernel write to it leaves the
/// I-cache alone (the flag used to stay until the frame was freed, and each
/// such write invalidated the whole I-cache); the next executable mapping
/// syncs it, and the process fetches the new code.
#[test]
fn a_kernel_write_to_code_nobody_maps_leaves_the_icache_alone() {
    use crate::mm::space::{FaultAccess, Protection};
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let (file, pa) = file_of_code(&mut m, 0xe320_f000);
        let mut space = m.space();
        m.switch_to(&mut space);
        let exec = Protection::READ | Protection::EXEC;
        let va = map_in(&mut m, &mut space, file, exec, FaultAccess::Execute);
        m.sys.mem.fetch(va.as_u32()).unwrap();
        m.engine.munmap(&mut m.sys, &mut space, va, PAGE).unwrap();
        let before = m.sys.mem.counters().icache_all;
        kernel_fill(&mut m, pa, 0xe12f_ff1e);
        assert_eq!(m.sys.mem.counters().icache_all, before, "{name}");
        let (_, fetched) = map_and_run(&mut m, file);
        assert_eq!(fetched, 0xe12f_ff1e, "{name}");
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// A kmap of a page whose users sit at two colours (aliasing VIPT) works
/// through the linear map: no window of either user's colour would spare
/// the other's lines, and the linear map needs no window at all. (A
/// window of the first user's colour costs a window mapping and its TLB
/// operations on top.)
#[test]
fn a_kmap_of_a_page_users_map_at_two_colours_goes_through_the_linear_map() {
    use crate::coherence::KmapAccess;
    let mut m = Machine::new(CpuModel::arm1136_32k());
    // A layout without colour alignment, as a kernel that does not align
    // shared mappings gives.
    m.colour_span = PAGE;
    let mut space = m.space();
    m.switch_to(&mut space);
    let file = m.file(1);
    // The frame takes the file offset's colour (0); the first user is at
    // the other one.
    for va in [0x0180_1000, 0x0180_0000] {
        let args = MmapArgs {
            addr: Some(VirtAddr(va)),
            fixed: true,
            ..MmapArgs::shared_object(file, 0, PAGE)
        };
        space.mmap(&mut m.sys, args).unwrap();
        user_load(&mut m, &mut space, va, Faults::Engine);
    }
    let pa = space.resident_at(VirtAddr(0x0180_0000)).unwrap();
    let kva = m.engine.kernel_va(pa);
    let windows = m.engine.counters().window_fills;
    let kmap = m.engine.kmap(&mut m.sys, pa, KmapAccess::Read).unwrap();
    assert_eq!(kmap.va(), kva);
    kmap.finish().unwrap();
    assert_eq!(m.engine.counters().window_fills, windows);
    assert_eq!(violations(&mut m), []);
}

/// Maps page 0 of `file` at a fresh address of `space` with `prot` and
/// faults it in with `access`; the address.
fn map_in(
    m: &mut Machine,
    space: &mut crate::mm::space::AddressSpace,
    file: crate::mm::object::ObjectId,
    prot: crate::mm::space::Protection,
    access: crate::mm::space::FaultAccess,
) -> VirtAddr {
    let args = MmapArgs {
        prot,
        ..MmapArgs::shared_object(file, 0, PAGE)
    };
    let va = space.mmap(&mut m.sys, args).unwrap();
    m.engine.fault(&mut m.sys, space, va, access).unwrap();
    va
}

/// The kernel writes new code with plain stores through its linear map
/// and then calls `flush_dcache_page` (a `read()` without the guard), with
/// no user mapping left: the page is no longer code anyone runs, so the
/// next such write leaves the I-cache alone, and the next executable
/// mapping syncs the page and fetches the new code.
#[test]
fn flush_dcache_page_with_nobody_mapped_forgets_the_code() {
    use crate::mm::space::{FaultAccess, Protection};
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let (file, pa) = file_of_code(&mut m, 0xe320_f000);
        let mut space = m.space();
        m.switch_to(&mut space);
        let exec = Protection::READ | Protection::EXEC;
        let code = map_in(&mut m, &mut space, file, exec, FaultAccess::Execute);
        assert_eq!(
            m.sys.mem.fetch(code.as_u32()).unwrap(),
            0xe320_f000,
            "{name}"
        );
        m.engine.munmap(&mut m.sys, &mut space, code, PAGE).unwrap();
        let kva = m.engine.kernel_va(pa).as_u32();
        let write_and_flush = |m: &mut Machine, word: u32| {
            for offset in (0..PAGE).step_by(4) {
                m.sys.mem.store(kva + offset, 4, word).unwrap();
            }
            m.engine.flush_dcache_page(&mut m.sys, pa).unwrap();
        };
        write_and_flush(&mut m, 0xe1a0_0000);
        let before = m.sys.mem.counters().icache_all;
        write_and_flush(&mut m, 0xe12f_ff1e);
        assert_eq!(m.sys.mem.counters().icache_all, before, "{name}");
        let (_, fetched) = map_and_run(&mut m, file);
        assert_eq!(fetched, 0xe12f_ff1e, "{name}: the new code is fetched");
        // Not by luck: the mapping synced the written page itself (the
        // skip is for code nothing wrote since its last sync).
        assert_eq!(m.engine.counters().code_clean_skipped, 0, "{name}");
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// A second, non-executable mapping of a page the same space runs at
/// another address does not make the engine forget that the page is
/// code: a later kernel write still invalidates the I-cache, and the
/// executable mapping fetches the new code.
#[test]
fn a_data_mapping_beside_an_executable_one_keeps_the_page_code() {
    use crate::mm::space::{FaultAccess, Protection};
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let (file, pa) = file_of_code(&mut m, 0xe320_f000);
        let mut space = m.space();
        m.switch_to(&mut space);
        let exec = Protection::READ | Protection::EXEC;
        let code = map_in(&mut m, &mut space, file, exec, FaultAccess::Execute);
        assert_eq!(
            m.sys.mem.fetch(code.as_u32()).unwrap(),
            0xe320_f000,
            "{name}"
        );
        map_in(
            &mut m,
            &mut space,
            file,
            Protection::READ,
            FaultAccess::Read,
        );
        kernel_fill(&mut m, pa, 0xe12f_ff1e);
        assert_eq!(
            m.sys.mem.fetch(code.as_u32()).unwrap(),
            0xe12f_ff1e,
            "{name}: the running mapping fetches the new code"
        );
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// A page some process maps writable is never called synced: code a
/// process writes through its writable mapping after another mapping of
/// the page was synced is cleaned to memory when the next process maps
/// the page executable, and that process fetches it.
#[test]
fn a_page_mapped_writable_is_never_called_synced() {
    use crate::mm::space::{FaultAccess, Protection};
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let (file, _) = file_of_code(&mut m, 0xe320_f000);
        let mut writer = m.space();
        m.switch_to(&mut writer);
        let rw = Protection::READ | Protection::WRITE;
        let data = map_in(&mut m, &mut writer, file, rw, FaultAccess::Write);
        let exec = Protection::READ | Protection::EXEC;
        let code = map_in(&mut m, &mut writer, file, exec, FaultAccess::Execute);
        assert_eq!(
            m.sys.mem.fetch(code.as_u32()).unwrap(),
            0xe320_f000,
            "{name}"
        );
        // A JIT writes new code through its data mapping.
        m.sys.mem.store(data.as_u32(), 4, 0xe12f_ff1e).unwrap();
        let (_, fetched) = map_and_run(&mut m, file);
        assert_eq!(
            fetched, 0xe12f_ff1e,
            "{name}: the new process fetches the new code"
        );
        assert_eq!(m.engine.counters().code_clean_skipped, 0, "{name}");
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// A `MAP_FIXED` call the space refuses (an unaligned address, a length of
/// zero) replaces nothing, so it owes no maintenance: the resident dirty
/// page it names is neither written back nor dropped, and the refusal is
/// the space's own error.
#[test]
fn a_refused_map_fixed_does_no_maintenance() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut p = m.space();
        m.switch_to(&mut p);
        let va = p
            .mmap(&mut m.sys, MmapArgs::anonymous(2 * PAGE))
            .unwrap()
            .as_u32();
        user_store(&mut m, &mut p, va, 7, Faults::Engine);
        user_store(&mut m, &mut p, va + PAGE, 8, Faults::Engine);
        for (addr, len) in [(va + 8, PAGE), (va, 0)] {
            let before = *m.sys.mem.counters();
            let ranges = m.engine.counters().range_flushes;
            let args = MmapArgs {
                addr: Some(VirtAddr(addr)),
                fixed: true,
                ..MmapArgs::anonymous(len)
            };
            let e = m.engine.mmap(&mut m.sys, &mut p, args).unwrap_err();
            assert!(
                matches!(e, CoherenceError::Space(_)),
                "{name} {addr:#x}+{len:#x}: {e:?}"
            );
            let (lines, tlb, _) = line_ops(&before, m.sys.mem.counters());
            assert_eq!(
                (lines, tlb, m.engine.counters().range_flushes - ranges),
                (0, 0, 0),
                "{name} {addr:#x}+{len:#x}"
            );
        }
        assert_eq!(user_load(&mut m, &mut p, va, Faults::Engine), 7, "{name}");
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// After a fork, the parent's write copies the page; the child, left the
/// frame's only owner, reads it and then writes it: that write fault makes
/// the frame writable in place — same frame, same address, same lines — so
/// it owes no maintenance, and the child's stores hit the lines its reads
/// brought in (they dropped them before: issue 24's W3 on the ARM1136,
/// where stores do not allocate and went to memory). The twin is the
/// parent's copying fault, which still flushes the old frame's lines.
#[test]
fn a_write_fault_that_keeps_the_frame_keeps_its_lines() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut parent = m.space();
        m.switch_to(&mut parent);
        let va = parent
            .mmap(&mut m.sys, MmapArgs::anonymous(PAGE))
            .unwrap()
            .as_u32();
        user_store(&mut m, &mut parent, va, 1, Faults::Engine);
        let table = m.child_table();
        let mut child = m.engine.fork(&mut m.sys, &mut parent, table).unwrap();
        let before = *m.sys.mem.counters();
        user_store(&mut m, &mut parent, va, 2, Faults::Engine);
        let (copy_lines, _, _) = line_ops(&before, m.sys.mem.counters());
        m.switch_to(&mut child);
        assert_eq!(
            user_load(&mut m, &mut child, va, Faults::Engine),
            1,
            "{name}"
        );
        let before = *m.sys.mem.counters();
        user_store(&mut m, &mut child, va, 3, Faults::Engine);
        let after = *m.sys.mem.counters();
        let (lines, _, _) = line_ops(&before, &after);
        // The fault's own table update cleans its descriptor: one line.
        assert!(lines <= 1, "{name}: {lines} line operations");
        if m.engine.aliasing() {
            assert!(
                copy_lines > 1 + lines,
                "{name}: the copy flushed {copy_lines}"
            );
        }
        // The line the child's read brought in is still there.
        assert_eq!(
            user_load(&mut m, &mut child, va, Faults::Engine),
            3,
            "{name}"
        );
        assert_eq!(m.sys.mem.counters().fills, after.fills, "{name}: a miss");
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// Line operations of unmapping a file page the running space mapped
/// read-only and read, on the ARM1136 32K (aliasing VIPT), the frame at
/// `colour`: at the mapping's own colour its lines are the linear map's
/// and nothing needs doing (a loader's text, W10); at another colour the
/// user's lines are dropped, 128 of them.
fn unmap_read_only(colour: u32) -> u64 {
    use crate::mm::space::{FaultAccess, Protection};
    let mut m = Machine::new(CpuModel::arm1136_32k());
    let mut space = m.space();
    m.switch_to(&mut space);
    let file = m.file(1);
    let pa = m.sys.allocator.allocate_colour(colour).unwrap();
    m.sys.objects.insert_page(file, 0, pa).unwrap();
    kernel_fill(&mut m, pa, 0x1234_5678);
    let va = map_in(
        &mut m,
        &mut space,
        file,
        Protection::READ,
        FaultAccess::Read,
    );
    for offset in (0..PAGE).step_by(32) {
        let got = user_load(&mut m, &mut space, va.as_u32() + offset, Faults::Engine);
        assert_eq!(got, 0x1234_5678);
    }
    let before = *m.sys.mem.counters();
    m.engine.munmap(&mut m.sys, &mut space, va, PAGE).unwrap();
    let (lines, _, _) = line_ops(&before, m.sys.mem.counters());
    // The kernel reads the page on, through its linear map.
    let kva = m.engine.kernel_va(pa).as_u32();
    assert_eq!(m.sys.mem.load(kva, 4).unwrap(), 0x1234_5678);
    assert_eq!(violations(&mut m), []);
    lines
}

#[test]
fn unmapping_read_only_pages_in_their_own_colour_needs_no_maintenance() {
    let own = unmap_read_only(0);
    let other = unmap_read_only(1);
    std::eprintln!("read-only page unmapped: own colour {own} line ops, another {other}");
    // Only the table's teardown: the cleaned descriptor.
    assert!(own <= 1, "{own}");
    assert!(other >= 128, "{other}");
}

/// A process unmaps short-lived private buffers it wrote (W11): on aliasing
/// VIPT their frames are in the buffers' own colours, so the dying lines
/// are the linear map's — left for the frames' next fills, as a PIPT cache
/// would. Only the table's teardown remains.
#[test]
fn unmapping_dying_pages_in_their_own_colours_needs_no_maintenance() {
    const PAGES: u32 = 8;
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut space = m.space();
        m.switch_to(&mut space);
        let va = space
            .mmap(&mut m.sys, MmapArgs::anonymous(PAGES * PAGE))
            .unwrap();
        for page in 0..PAGES {
            user_store(
                &mut m,
                &mut space,
                va.as_u32() + page * PAGE,
                page,
                Faults::Engine,
            );
        }
        let before = *m.sys.mem.counters();
        m.engine
            .munmap(&mut m.sys, &mut space, va, PAGES * PAGE)
            .unwrap();
        let (lines, _, _) = line_ops(&before, m.sys.mem.counters());
        std::eprintln!("{name}: {PAGES} dying pages unmapped: {lines} line ops");
        if m.engine.aliasing() && m.engine.info.kind != crate::cache::CacheKind::Vivt {
            assert!(lines <= u64::from(PAGES), "{name}: {lines}");
        }
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// A read-only mapping at its frame's own colour is left to the linear
/// map's lines only while no mapping of another colour can write behind
/// them (a fresh reviewer's sequence, ARM1136 32K, shared mappings not
/// colour-aligned): W maps a file page shared and writable at the other
/// colour and reads it; R maps it read-only at the frame's own colour,
/// reads it and unmaps it; W writes and unmaps; R maps it again and reads. It must see
/// W's store: R's old lines went at its unmap, because W's mapping was
/// there to make them stale.
#[test]
fn a_read_only_mapping_beside_a_writer_of_another_colour_leaves_no_stale_lines() {
    use crate::mm::space::Protection;
    let mut m = Machine::new(CpuModel::arm1136_32k());
    m.colour_span = PAGE;
    let file = m.file(1);
    let pa = m.sys.allocator.allocate_colour(0).unwrap();
    m.sys.objects.insert_page(file, 0, pa).unwrap();
    kernel_fill(&mut m, pa, 0x0000_0a0a);
    let (r_va, w_va) = (0x1000_0000u32, 0x2000_1000u32);
    let fixed = |va: u32, prot| MmapArgs {
        addr: Some(VirtAddr(va)),
        fixed: true,
        prot,
        ..MmapArgs::shared_object(file, 0, PAGE)
    };
    let mut w = m.space();
    let mut r = m.space();
    w.mmap(
        &mut m.sys,
        fixed(w_va, Protection::READ | Protection::WRITE),
    )
    .unwrap();
    r.mmap(&mut m.sys, fixed(r_va, Protection::READ)).unwrap();
    // W's page is in before R's: its installation is long past when R
    // unmaps.
    m.switch_to(&mut w);
    assert_eq!(user_load(&mut m, &mut w, w_va, Faults::Engine), 0x0a0a);
    m.switch_to(&mut r);
    assert_eq!(user_load(&mut m, &mut r, r_va, Faults::Engine), 0x0a0a);
    m.engine
        .munmap(&mut m.sys, &mut r, VirtAddr(r_va), PAGE)
        .unwrap();
    m.switch_to(&mut w);
    user_store(&mut m, &mut w, w_va, 0x0000_0b0b, Faults::Engine);
    m.engine
        .munmap(&mut m.sys, &mut w, VirtAddr(w_va), PAGE)
        .unwrap();
    m.switch_to(&mut r);
    r.mmap(&mut m.sys, fixed(r_va, Protection::READ)).unwrap();
    assert_eq!(user_load(&mut m, &mut r, r_va, Faults::Engine), 0x0b0b);
    assert_eq!(violations(&mut m), []);
}
