//! The per-page and per-space flushes a kernel calls around its own
//! accesses — `flush_cache_page`, `flush_anon_page`, `flush_cache_mm`,
//! `flush_user_icache_range` for a space not running — each with a twin
//! that leaves the call out and is caught where the cache needs it; and
//! the faults no other scenario takes (a page already mapped, a private
//! write to a shared-memory page not yet in memory).

extern crate std;

use super::*;
use crate::coherence::coverage::Point;
use crate::mm::object::ObjectKind;
use crate::mm::space::{FaultOutcome, Protection};

/// A file page whose frame has another colour than its user mapping on
/// an aliasing VIPT cache (the allocator had none of the right colour
/// left), mapped shared in `space`. Returns the user address and frame.
fn file_page_of_another_colour(m: &mut Machine, space: &mut AddressSpace) -> (u32, PhysAddr) {
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
    (va, frame)
}

/// A process writes a shared file page; `flush_cache_page` (if `flush`)
/// before the kernel unmaps it by the address space alone; then the
/// kernel reads the page cache. Returns the findings, what the kernel
/// read, and the counters' change.
fn write_flush_unmap(model: CpuModel, flush: bool) -> (Vec<ViolationKind>, u32, Counters) {
    let mut m = Machine::new(model);
    let mut space = m.space();
    m.switch_to(&mut space);
    let (va, frame) = file_page_of_another_colour(&mut m, &mut space);
    user_load(&mut m, &mut space, va + 8, Faults::Engine);
    user_store(&mut m, &mut space, va + 8, 0xfeed, Faults::Engine);
    let before = *m.engine.counters();
    if flush {
        // Any address inside the page will do.
        m.engine
            .flush_cache_page(&mut m.sys, &space, VirtAddr(va + 8))
            .unwrap();
    }
    let after = *m.engine.counters();
    space.munmap(&mut m.sys, VirtAddr(va), PAGE).unwrap();
    let kva = m.engine.kernel_va(frame).as_u32();
    let seen = m.sys.mem.load(kva + 8, 4).unwrap();
    let delta = Counters {
        user_alias_flushes: after.user_alias_flushes - before.user_alias_flushes,
        whole_cache_flushes: after.whole_cache_flushes - before.whole_cache_flushes,
        ..Counters::default()
    };
    (violations(&mut m), seen, delta)
}

#[test]
fn flush_cache_page_writes_the_users_lines_back_before_the_page_goes() {
    for (name, model) in presets() {
        let aliasing = model.info().kind.aliases();
        let (bad, seen, delta) = write_flush_unmap(model, true);
        assert_eq!((bad, seen), (vec![], 0xfeed), "{name}");
        assert_eq!(
            delta.user_alias_flushes,
            u64::from(aliasing),
            "{name}: one page, only where the user's lines are its own"
        );
        assert_eq!(delta.whole_cache_flushes, 0, "{name}");
        let (bad, seen, _) = write_flush_unmap(model, false);
        if aliasing {
            assert_eq!(seen, 0, "{name}: the write stayed in the user's line");
            assert!(bad.contains(&ViolationKind::StaleRead), "{name}: {bad:?}");
        } else {
            assert_eq!((bad, seen), (vec![], 0xfeed), "{name}");
        }
    }
}

/// A process writes an anonymous page; `flush_anon_page` (if `flush`);
/// the kernel reads it through its own alias (`ptrace`), then the process
/// goes on writing. `mismatch`: the frame has another colour than the
/// user address (none of its colour was left). Returns the findings,
/// what the kernel read, and the counters' change.
fn kernel_reads_anon_page(
    model: CpuModel,
    flush: bool,
    mismatch: bool,
) -> (Vec<ViolationKind>, u32, Counters) {
    let mut m = Machine::new(model);
    let mut space = m.space();
    m.switch_to(&mut space);
    let va = space
        .mmap(&mut m.sys, MmapArgs::anonymous(PAGE))
        .unwrap()
        .as_u32();
    let colour = m.sys.mem.info().colour_of(VirtAddr(va)) as u32;
    let mut taken = Vec::new();
    while mismatch && let Ok(pa) = m.sys.allocator.allocate_colour(colour) {
        taken.push(pa);
    }
    user_load(&mut m, &mut space, va + 4, Faults::Engine);
    user_store(&mut m, &mut space, va + 4, 0xa11ce, Faults::Engine);
    for pa in taken {
        m.sys.allocator.free(pa).unwrap();
    }
    let pa = space.resident_at(VirtAddr(va)).unwrap();
    assert_eq!(
        m.sys.allocator.colour_of(pa) != colour,
        mismatch,
        "the frame's colour"
    );
    let before = *m.engine.counters();
    if flush {
        m.engine
            .flush_anon_page(&mut m.sys, &space, VirtAddr(va))
            .unwrap();
    }
    let after = *m.engine.counters();
    let seen = m
        .sys
        .mem
        .load(m.engine.kernel_va(pa).as_u32() + 4, 4)
        .unwrap();
    // The user's lines were cleaned, not dropped: it goes on as before.
    user_store(&mut m, &mut space, va + 4, 0xb0b, Faults::Engine);
    assert_eq!(user_load(&mut m, &mut space, va + 4, Faults::Engine), 0xb0b);
    let delta = Counters {
        user_alias_flushes: after.user_alias_flushes - before.user_alias_flushes,
        kernel_alias_cleans: after.kernel_alias_cleans - before.kernel_alias_cleans,
        ..Counters::default()
    };
    (violations(&mut m), seen, delta)
}

#[test]
fn flush_anon_page_lets_the_kernel_read_what_the_user_wrote() {
    for (name, model) in presets() {
        let kind = model.info().kind;
        let mismatches: &[bool] = match kind {
            CacheKind::VipAliasing { .. } => &[false, true],
            _ => &[false],
        };
        for &mismatch in mismatches {
            // Separate lines: VIVT always; aliasing VIPT when the colours
            // differ; never on a non-aliasing cache.
            let separate = kind == CacheKind::Vivt || mismatch;
            let (bad, seen, delta) = kernel_reads_anon_page(model, true, mismatch);
            assert_eq!((bad, seen), (vec![], 0xa11ce), "{name} {mismatch}");
            assert_eq!(
                (delta.user_alias_flushes, delta.kernel_alias_cleans),
                if separate { (1, 1) } else { (0, 0) },
                "{name}, colours differ {mismatch}: nothing where the lines are shared"
            );
            let (bad, seen, _) = kernel_reads_anon_page(model, false, mismatch);
            if separate {
                assert_eq!(seen, 0, "{name} {mismatch}");
                assert!(bad.contains(&ViolationKind::StaleRead), "{name}: {bad:?}");
            } else {
                assert_eq!((bad, seen), (vec![], 0xa11ce), "{name}");
            }
        }
    }
}

/// A policy that flushes a whole address space with one whole-D-cache
/// operation (Linux's `flush_cache_mm`).
#[derive(Debug)]
struct WholeMm;

impl Policy for WholeMm {
    fn name(&self) -> &'static str {
        "whole-mm"
    }
    fn flushes_whole_mm(&self) -> bool {
        true
    }
}

/// A process writes three anonymous pages; `flush_cache_mm` (if
/// `flush`); the kernel reads each through its alias. Returns the
/// findings, what the kernel read, and the counters' change.
fn kernel_reads_space(
    mut m: Machine,
    flush: bool,
) -> (Vec<ViolationKind>, Vec<u32>, Counters, Counters) {
    let mut space = m.space();
    m.switch_to(&mut space);
    let va = space
        .mmap(&mut m.sys, MmapArgs::anonymous(3 * PAGE))
        .unwrap()
        .as_u32();
    for page in 0..3 {
        let at = va + page * PAGE;
        user_load(&mut m, &mut space, at, Faults::Engine);
        user_store(&mut m, &mut space, at, 0x3000 + page, Faults::Engine);
    }
    let before = *m.engine.counters();
    if flush {
        m.engine.flush_cache_mm(&mut m.sys, &space).unwrap();
    }
    let after = *m.engine.counters();
    let seen = space
        .resident()
        .map(|(_, pa)| m.sys.mem.load(m.engine.kernel_va(pa).as_u32(), 4).unwrap())
        .collect();
    (violations(&mut m), seen, before, after)
}

#[test]
fn flush_cache_mm_writes_back_every_page_of_the_space() {
    for (name, model) in presets() {
        let aliasing = model.info().kind.aliases();
        let (bad, seen, before, after) = kernel_reads_space(Machine::new(model), true);
        assert_eq!(bad, [], "{name}");
        assert_eq!(seen, [0x3000, 0x3001, 0x3002], "{name}");
        assert_eq!(
            after.range_flushes - before.range_flushes,
            u64::from(aliasing),
            "{name}"
        );
        if aliasing {
            // Page by page (three pages are below every preset's
            // threshold), never the whole cache.
            assert_eq!(
                after.user_alias_flushes - before.user_alias_flushes,
                3,
                "{name}"
            );
            assert_eq!(after.whole_cache_flushes, before.whole_cache_flushes);
        } else {
            assert_eq!(after, before, "{name}: nothing to do");
        }

        // Linux's way: one whole-cache operation.
        let switch = Switching::Default.policy(crate::mmu::Arch::of(&model.info()));
        let m = Machine::with_policy(model, switch, Box::new(WholeMm)).unwrap();
        let (bad, seen, before, after) = kernel_reads_space(m, true);
        assert_eq!(bad, [], "{name}");
        assert_eq!(seen, [0x3000, 0x3001, 0x3002], "{name}");
        assert_eq!(
            after.whole_cache_flushes - before.whole_cache_flushes,
            u64::from(aliasing),
            "{name}"
        );
        assert_eq!(after.user_alias_flushes, before.user_alias_flushes);

        let (bad, _, _, _) = kernel_reads_space(Machine::new(model), false);
        assert_eq!(
            bad.contains(&ViolationKind::StaleRead),
            model.info().kind == CacheKind::Vivt,
            "{name}: only VIVT user lines are apart from the kernel's here: {bad:?}"
        );
    }
}

#[test]
fn an_empty_range_flushes_nothing() {
    let mut m = Machine::new(CpuModel::arm926());
    let mut space = m.space();
    m.switch_to(&mut space);
    let va = space
        .mmap(&mut m.sys, MmapArgs::anonymous(PAGE))
        .unwrap()
        .as_u32();
    user_store(&mut m, &mut space, va, 1, Faults::Engine);
    let before = *m.engine.counters();
    m.engine
        .flush_cache_range(&mut m.sys, &space, VirtAddr(va), 0)
        .unwrap();
    assert_eq!(*m.engine.counters(), before);
    assert_eq!(violations(&mut m), []);
}

/// Process A runs code from an executable page, then writes a new
/// instruction there; B runs; the kernel (a debugger, `cacheflush` from
/// another thread) makes A's code visible while A is not running, if
/// `flush`; A runs again and fetches. Returns the findings, what A
/// fetched and the I-cache flushes counted.
fn code_rewritten_while_away(model: CpuModel, flush: bool) -> (Vec<ViolationKind>, u32, u64) {
    let mut m = Machine::new(model);
    let mut a = m.space();
    let mut b = m.space();
    m.switch_to(&mut a);
    let args = MmapArgs {
        prot: Protection::READ | Protection::WRITE | Protection::EXEC,
        ..MmapArgs::anonymous(PAGE)
    };
    let va = a.mmap(&mut m.sys, args).unwrap();
    user_store(&mut m, &mut a, va.as_u32(), 0xe1a0_0000, Faults::Engine);
    m.engine
        .flush_user_icache_range(&mut m.sys, a.id(), va, PAGE)
        .unwrap();
    assert_eq!(m.sys.mem.fetch(va.as_u32()).unwrap(), 0xe1a0_0000);
    user_store(&mut m, &mut a, va.as_u32(), 0xe12f_ff1e, Faults::Engine);
    m.switch_to(&mut b);
    let before = m.engine.counters().icache_flushes;
    if flush {
        m.engine
            .flush_user_icache_range(&mut m.sys, a.id(), va, PAGE)
            .unwrap();
    }
    let flushes = m.engine.counters().icache_flushes - before;
    m.switch_to(&mut a);
    let fetched = m.sys.mem.fetch(va.as_u32()).unwrap();
    (violations(&mut m), fetched, flushes)
}

#[test]
fn code_written_by_a_space_not_running_reaches_its_icache() {
    for (name, model) in presets() {
        let (bad, fetched, flushes) = code_rewritten_while_away(model, true);
        assert_eq!((bad, fetched, flushes), (vec![], 0xe12f_ff1e, 1), "{name}");
        // The twin: ARMv5 flushes both caches at every switch, so only
        // the ARMv6 presets (ASIDs) keep the stale instruction.
        let (bad, fetched, _) = code_rewritten_while_away(model, false);
        if model.info().kind == CacheKind::Vivt {
            assert_eq!((bad, fetched), (vec![], 0xe12f_ff1e), "{name}");
        } else {
            assert!(bad.contains(&ViolationKind::StaleFetch), "{name}: {bad:?}");
        }
    }
}

#[test]
fn a_fault_on_a_page_already_mapped_does_nothing() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut space = m.space();
        m.switch_to(&mut space);
        let va = space.mmap(&mut m.sys, MmapArgs::anonymous(PAGE)).unwrap();
        let first = m
            .engine
            .fault(&mut m.sys, &mut space, va, FaultAccess::Write)
            .unwrap();
        let FaultOutcome::ZeroFill { pa } = first else {
            panic!("{name}: {first:?}");
        };
        let before = *m.engine.counters();
        // A stale TLB entry or a race with another fault.
        let again = m
            .engine
            .fault(
                &mut m.sys,
                &mut space,
                VirtAddr(va.as_u32() + 8),
                FaultAccess::Read,
            )
            .unwrap();
        assert_eq!(again, FaultOutcome::AlreadyMapped { pa }, "{name}");
        assert_eq!(*m.engine.counters(), before, "{name}: no maintenance");
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// Puts `pattern` in the next two free frames of every colour (what their
/// last owner left), as a device would, and gives them back: the next
/// allocations of each colour take them.
fn leave_old_contents(m: &mut Machine, pattern: u8) {
    for colour in 0..m.sys.allocator.colours() {
        let frames = [
            m.sys.allocator.allocate_colour(colour).unwrap(),
            m.sys.allocator.allocate_colour(colour).unwrap(),
        ];
        for pa in frames.into_iter().rev() {
            m.sys
                .mem
                .dma_write(pa.as_u32(), &[pattern; PAGE as usize])
                .unwrap();
            m.sys.allocator.free(pa).unwrap();
        }
    }
}

#[test]
fn a_private_write_to_a_shared_memory_page_not_yet_in_memory_zeroes_then_copies() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut space = m.space();
        m.switch_to(&mut space);
        let segment = m.sys.objects.create(ObjectKind::SharedMemory, 1).unwrap();
        let private = MmapArgs {
            shared: false,
            ..MmapArgs::shared_object(segment, 0, PAGE)
        };
        let va = space.mmap(&mut m.sys, private).unwrap().as_u32();
        leave_old_contents(&mut m, 0x5c);
        let before = *m.engine.counters();
        // The first access is a write: the segment's page is made (zeroed)
        // and copied at once.
        let outcome = m
            .engine
            .fault(&mut m.sys, &mut space, VirtAddr(va), FaultAccess::Write)
            .unwrap();
        let FaultOutcome::CopyOnWrite {
            from,
            to,
            from_fresh: true,
        } = outcome
        else {
            panic!("{name}: {outcome:?}");
        };
        assert_eq!(m.sys.objects.get(segment).unwrap().page(0), Some(from));
        assert_eq!(space.resident_at(VirtAddr(va)), Some(to));
        assert_eq!(
            m.engine.counters().pages_filled - before.pages_filled,
            2,
            "{name}: the zero-fill and the copy"
        );
        user_store(&mut m, &mut space, va + 8, 0x9999, Faults::Engine);
        for offset in [0, 4, 12, PAGE - 4] {
            assert_eq!(
                user_load(&mut m, &mut space, va + offset, Faults::Engine),
                0,
                "{name}: offset {offset:#x} of the private copy"
            );
        }
        // The segment itself stays zero: another process sees it so.
        let mut other = m.space();
        m.switch_to(&mut other);
        let shared = other
            .mmap(&mut m.sys, MmapArgs::shared_object(segment, 0, PAGE))
            .unwrap()
            .as_u32();
        for offset in [0, 8, PAGE - 4] {
            assert_eq!(
                user_load(&mut m, &mut other, shared + offset, Faults::Engine),
                0,
                "{name}: offset {offset:#x} of the segment"
            );
        }
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// A private write fault on a file page not yet in the page cache. The
/// engine used to copy the new page-cache frame into the private copy
/// *before* returning `CopyOnWrite { from_fresh: true }`, which asked the
/// caller to read the file into `from` "first" — too late: the private
/// copy held whatever the frame held before (here a previous owner's
/// bytes), not the file. Now the write is resolved as a read: the page is
/// mapped read-only for the caller to fill, and the retried write copies
/// the filled page. The file itself never sees the private write.
#[test]
fn a_private_write_to_a_file_page_not_yet_read_in_copies_the_file() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut space = m.space();
        m.switch_to(&mut space);
        let file = m.file(1);
        let private = MmapArgs {
            shared: false,
            ..MmapArgs::shared_object(file, 0, PAGE)
        };
        let va = space.mmap(&mut m.sys, private).unwrap().as_u32();
        leave_old_contents(&mut m, 0x5c);
        let outcome = m
            .engine
            .fault(&mut m.sys, &mut space, VirtAddr(va), FaultAccess::Write)
            .unwrap();
        let FaultOutcome::ObjectPage { pa, fresh: true } = outcome else {
            panic!("{name}: {outcome:?}");
        };
        assert_eq!(m.sys.objects.get(file).unwrap().page(0), Some(pa), "{name}");
        assert_eq!(space.resident_at(VirtAddr(va)), Some(pa), "{name}");
        // The caller reads the file in, as the outcome asks.
        {
            let mut write = m.engine.page_cache_write(&mut m.sys, pa).unwrap();
            let at = write.va().as_u32();
            for offset in (0..PAGE).step_by(4) {
                write
                    .mem()
                    .store(at + offset, 4, 0xf11e_0000 + offset)
                    .unwrap();
            }
            write.finish().unwrap();
        }
        // The write, retried: a copy of the filled page.
        user_store(&mut m, &mut space, va + 32, 0x0000_beef, Faults::Engine);
        let copy = space.resident_at(VirtAddr(va)).unwrap();
        assert_ne!(copy, pa, "{name}: the private write copied the page");
        assert_eq!(
            user_load(&mut m, &mut space, va + 16, Faults::Engine),
            0xf11e_0010,
            "{name}: the private copy shows the file"
        );
        assert_eq!(
            user_load(&mut m, &mut space, va + 32, Faults::Engine),
            0x0000_beef,
            "{name}"
        );
        assert_eq!(
            m.engine.counters().coverage.get(Point::FileReadBeforeCopy),
            1,
            "{name}"
        );
        // The file keeps its own contents.
        let mut kmap = m.engine.kmap(&mut m.sys, pa, KmapAccess::Read).unwrap();
        let at = kmap.va().as_u32();
        assert_eq!(kmap.mem().load(at + 32, 4).unwrap(), 0xf11e_0020, "{name}");
        kmap.finish().unwrap();
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

#[test]
fn the_kernel_write_guards_name_their_frame_and_keep_the_users_data() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut space = m.space();
        m.switch_to(&mut space);
        let (va, frame) = file_page_of_another_colour(&mut m, &mut space);
        let kva = m.engine.kernel_va(frame);
        user_load(&mut m, &mut space, va + 4, Faults::Engine);
        user_store(&mut m, &mut space, va + 4, 0x0005_e700, Faults::Engine);
        {
            // write(): the guard's end (here its drop) makes it visible.
            let mut write = m.engine.page_cache_write(&mut m.sys, frame).unwrap();
            assert_eq!((write.pa(), write.va()), (frame, kva), "{name}");
            write.mem().store(kva.as_u32() + 8, 4, 0x0000_f11e).unwrap();
        }
        assert_eq!(
            user_load(&mut m, &mut space, va + 8, Faults::Engine),
            0xf11e,
            "{name}"
        );
        {
            // read() of the page through a kmap.
            let mut kmap = m.engine.kmap(&mut m.sys, frame, KmapAccess::Read).unwrap();
            assert_eq!(kmap.pa(), frame, "{name}");
            let at = kmap.va().as_u32();
            assert_eq!(kmap.mem().load(at + 4, 4).unwrap(), 0x0005_e700, "{name}");
            assert_eq!(kmap.mem().load(at + 8, 4).unwrap(), 0xf11e, "{name}");
            kmap.finish().unwrap();
        }
        assert_eq!(
            user_load(&mut m, &mut space, va + 4, Faults::Engine),
            0x0005_e700,
            "{name}: the user's write was not lost"
        );
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// A zero-fill on an aliasing VIPT cache with no window to write through
/// (a kernel without windows, or a policy that does not use them), for a
/// frame of another colour than the user's page (the allocator had none
/// of the right colour left): the zeroes are written at the kernel alias's
/// colour and must reach memory and leave no line there before the user,
/// at its own colour, reads (`settle_after_fill`'s clean and invalidate).
/// The twin zeroes the page through the kernel alias and maps it with no
/// maintenance: the user reads memory older than the zeroes.
fn zero_fill_at_another_colour(model: CpuModel, engine: bool) -> Vec<ViolationKind> {
    let mut m = Machine::new(model);
    m.engine.windows = None;
    let mut space = m.space();
    m.switch_to(&mut space);
    let va = space
        .mmap(&mut m.sys, MmapArgs::anonymous(PAGE))
        .unwrap()
        .as_u32();
    // Every free frame is taken but one of another colour than the
    // user's page, which the kernel has read (its lines are in the cache
    // at the kernel alias's colour, so the zeroes will hit them).
    let colour = m.engine.info.colour_of(VirtAddr(va)) as u32;
    let mut taken = Vec::new();
    while let Ok(pa) = m.sys.allocator.allocate_any() {
        taken.push(pa);
    }
    let spare = *taken
        .iter()
        .find(|&&pa| m.engine.info.colour_of(m.engine.kernel_va(pa)) != colour as usize)
        .unwrap();
    let kva = m.engine.kernel_va(spare).as_u32();
    for line in (0..PAGE).step_by(32) {
        m.sys.mem.load(kva + line, 4).unwrap();
    }
    m.sys.allocator.free(spare).unwrap();
    if engine {
        user_load(&mut m, &mut space, va + 8, Faults::Engine);
    } else {
        resolve(&mut m, &mut space, va, FaultAccess::Read, Faults::Bare);
        let pa = space.resident_at(VirtAddr(va)).unwrap();
        let kva = m.engine.kernel_va(pa);
        m.sys.mem.zero_page(kva).unwrap();
        m.sys.mem.load(va + 8, 4).unwrap();
    }
    let pa = space.resident_at(VirtAddr(va)).unwrap();
    assert_ne!(
        m.engine.info.colour_of(m.engine.kernel_va(pa)),
        colour as usize,
        "the frame has another colour"
    );
    violations(&mut m)
}

#[test]
fn a_zero_fill_at_another_colour_without_a_window_reaches_the_user() {
    for (name, model) in presets() {
        if !model.info().kind.aliases() || model.info().kind == CacheKind::Vivt {
            continue;
        }
        assert_eq!(zero_fill_at_another_colour(model, true), vec![], "{name}");
        let twin = zero_fill_at_another_colour(model, false);
        assert!(twin.contains(&ViolationKind::StaleRead), "{name}: {twin:?}");
    }
}

/// A copy-on-write copy reads its source through the kernel alias. On
/// VIVT that alias may hold clean lines of the page from the kernel's own
/// read through its linear map (a `read()` copying the page cache out),
/// stale once another process writes the page through a shared mapping
/// (under FCSE PIDs the switches between them flush nothing): the copy
/// drops them first and reads memory (`copy_between`). The twin copies
/// through the kernel alias with no maintenance.
fn private_copy_after_a_kernel_read(
    model: CpuModel,
    drop_kernel_lines: bool,
) -> (Vec<ViolationKind>, u32) {
    let mut m = Machine::with_switching(model, Switching::Fcse);
    let mut copier = m.space();
    let mut writer = m.space();
    let file = m.file(1);
    let frame = m.sys.allocator.allocate_any().unwrap();
    m.sys.objects.insert_page(file, 0, frame).unwrap();
    m.switch_to(&mut copier);
    let private = MmapArgs {
        shared: false,
        ..MmapArgs::shared_object(file, 0, PAGE)
    };
    let copy = copier.mmap(&mut m.sys, private).unwrap().as_u32();
    user_load(&mut m, &mut copier, copy + 12, Faults::Engine);
    m.switch_to(&mut writer);
    let shared = writer
        .mmap(&mut m.sys, MmapArgs::shared_object(file, 0, PAGE))
        .unwrap()
        .as_u32();
    user_load(&mut m, &mut writer, shared + 4, Faults::Engine);
    // Nothing is owed (the writer has only read): the kernel reads the
    // page through its linear map, and its lines stay.
    let kva = m.engine.kernel_va(frame).as_u32();
    for line in (0..PAGE).step_by(32) {
        m.sys.mem.load(kva + line, 4).unwrap();
    }
    user_store(&mut m, &mut writer, shared + 4, 0x5eed, Faults::Engine);
    m.switch_to(&mut copier);
    if drop_kernel_lines {
        user_store(&mut m, &mut copier, copy + 8, 2, Faults::Engine);
    } else {
        // The copy as the address space alone makes it, then the kernel
        // copying through the linear map with no maintenance.
        let outcome = copier
            .fault(&mut m.sys, VirtAddr(copy + 8), FaultAccess::Write)
            .unwrap();
        let FaultOutcome::CopyOnWrite { from, to, .. } = outcome else {
            panic!("{outcome:?}");
        };
        let (kfrom, kto) = (m.engine.kernel_va(from), m.engine.kernel_va(to));
        m.sys.mem.copy_page(kto, kfrom).unwrap();
    }
    let seen = user_load(&mut m, &mut copier, copy + 4, Faults::Engine);
    (violations(&mut m), seen)
}

#[test]
fn a_private_copy_does_not_read_the_kernels_stale_lines_of_its_source() {
    for (name, model) in presets() {
        assert_eq!(
            private_copy_after_a_kernel_read(model, true),
            (vec![], 0x5eed),
            "{name}"
        );
        if model.info().kind == CacheKind::Vivt {
            let (bad, seen) = private_copy_after_a_kernel_read(model, false);
            assert_ne!(seen, 0x5eed, "{name}: the copy read the stale kernel line");
            assert!(bad.contains(&ViolationKind::StaleRead), "{name}: {bad:?}");
        }
    }
}

/// `MAP_FIXED` over a resident, written mapping: the replaced pages'
/// lines are written back and dropped before the new mapping takes the
/// addresses (`Engine::mmap` flushes the range as `munmap` does). The twin
/// is the blind engine (it believes the cache is PIPT): on VIVT the old
/// lines at those addresses answer for the new, zeroed, page.
fn map_fixed_over_written_pages(model: CpuModel, blind: bool) -> (Vec<ViolationKind>, u32) {
    let mut m = if blind {
        Machine::blind(model)
    } else {
        Machine::new(model)
    };
    let mut space = m.space();
    m.switch_to(&mut space);
    let va = space
        .mmap(&mut m.sys, MmapArgs::anonymous(2 * PAGE))
        .unwrap()
        .as_u32();
    for page in 0..2 {
        // Read first: the read-allocate ARM926 keeps only lines it read.
        user_load(&mut m, &mut space, va + page * PAGE + 16, Faults::Engine);
        user_store(
            &mut m,
            &mut space,
            va + page * PAGE + 16,
            0xdead,
            Faults::Engine,
        );
    }
    let fixed = MmapArgs {
        addr: Some(VirtAddr(va)),
        fixed: true,
        ..MmapArgs::anonymous(2 * PAGE)
    };
    m.engine.mmap(&mut m.sys, &mut space, fixed).unwrap();
    let seen = user_load(&mut m, &mut space, va + 16, Faults::Engine);
    user_store(&mut m, &mut space, va + PAGE + 20, 1, Faults::Engine);
    // Every line leaves the cache, so a stale write-back shows too.
    m.sys.mem.cache().clean_invalidate_dcache_all();
    (violations(&mut m), seen)
}

#[test]
fn map_fixed_over_written_pages_flushes_them_first() {
    for (name, model) in presets() {
        assert_eq!(
            map_fixed_over_written_pages(model, false),
            (vec![], 0),
            "{name}"
        );
        if model.info().kind == CacheKind::Vivt {
            let (bad, seen) = map_fixed_over_written_pages(model, true);
            assert_eq!(seen, 0xdead, "{name}: the old line answered");
            assert!(!bad.is_empty(), "{name}");
        }
    }
}
