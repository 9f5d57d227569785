//! Engine failures a review reproduced in paths the random programs did not
//! reach (issue 18). Each test failed on the engine before its fix; each
//! has a twin that leaves the maintenance out and is caught.

extern crate std;

use super::*;
use crate::mm::space::Protection;

/// Where two processes' mappings of one page can sit in separate lines
/// across a switch that does not flush: one address under FCSE PIDs (the
/// PIDs move it to two lines), two colours under ASIDs (aliasing VIPT).
fn newly_shared_cases() -> [(&'static str, CpuModel, [u32; 2]); 4] {
    let fcse = [0x0180_0000; 2];
    let colours = [0x0180_0000, 0x0180_1000];
    [
        ("ARM926 FCSE", CpuModel::arm926_keyed(), fcse),
        (
            "ARM926 FCSE, no write buffer",
            CpuModel::arm926_keyed().with_write_buffer(0),
            fcse,
        ),
        ("ARM1136 32K", CpuModel::arm1136_32k(), colours),
        ("ARM1136 64K", CpuModel::arm1136_64k(), colours),
    ]
}

/// Process A maps a file page shared and writes it through a cached line
/// (a load fills it, the store dirties it); the switch to B does not
/// flush; B then maps the same page for the first time and reads it. The
/// page becomes shared across spaces only at B's fault, after the switch
/// that would have separated it. Returns the oracle's findings and what
/// B read.
fn newly_shared_page(model: CpuModel, vas: [u32; 2], faults: Faults) -> (Vec<ViolationKind>, u32) {
    // FCSE PIDs on the ARM926 (its kernel above 32 MiB), ASIDs on ARMv6.
    let mut m = Machine::with_switching(model, Switching::Fcse);
    // No colouring: MAP_FIXED at another colour is the kernel's choice.
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
        space.table_mut().set_fits_fcse_window(fcse);
    }
    // The page's last line: a set the faults' table walks and descriptor
    // writes (entries near the start of their tables) leave alone, so
    // A's dirty line is not evicted by chance before B reads.
    let offset = PAGE - 32;
    m.switch_to(&mut a);
    user_load(&mut m, &mut a, vas[0] + offset, faults);
    user_store(&mut m, &mut a, vas[0] + offset, 0xa11c_e000, faults);
    m.switch_to(&mut b);
    let seen = user_load(&mut m, &mut b, vas[1] + offset, faults);
    (violations(&mut m), seen)
}

#[test]
fn a_page_newly_shared_after_a_non_flushing_switch_reads_the_other_space_s_write() {
    for (name, model, vas) in newly_shared_cases() {
        let (bad, seen) = newly_shared_page(model, vas, Faults::Engine);
        assert_eq!((bad, seen), (vec![], 0xa11c_e000), "{name}");
    }
}

#[test]
fn twin_a_newly_shared_page_without_the_engine_is_caught() {
    for (name, model, vas) in newly_shared_cases() {
        let (bad, seen) = newly_shared_page(model, vas, Faults::Bare);
        assert_ne!(seen, 0xa11c_e000, "{name}: the twin read the newest value");
        assert!(bad.contains(&ViolationKind::StaleRead), "{name}: {bad:?}");
    }
}

/// A process writes code into an anonymous page, makes it executable with
/// `mprotect` and runs it; makes it writable again, rewrites it, makes it
/// executable again and runs it. `through_engine`: the `mprotect` calls go
/// through `Engine::mprotect`; the twin changes the protection alone.
/// Returns the oracle's findings and the two words fetched. With `fcse`
/// (the ARM926), the process runs under an FCSE PID, its page below
/// 32 MiB: its lines sit at the relocated address, which the I-cache
/// maintenance must name.
fn code_made_executable_by_mprotect(
    model: CpuModel,
    fcse: bool,
    through_engine: bool,
) -> (Vec<ViolationKind>, [u32; 2]) {
    let mut m = if fcse {
        Machine::with_switching(model, Switching::Fcse)
    } else {
        Machine::new(model)
    };
    let mut space = m.space();
    let args = MmapArgs {
        prot: Protection::READ | Protection::WRITE,
        addr: fcse.then_some(VirtAddr(0x0180_0000)),
        fixed: fcse,
        ..MmapArgs::anonymous(PAGE)
    };
    let va = space.mmap(&mut m.sys, args).unwrap();
    space.table_mut().set_fits_fcse_window(fcse);
    m.switch_to(&mut space);
    if fcse {
        assert!(space.table().fcse_window().is_some(), "runs under a PID");
    }
    let code = [0xe320_f000, 0xe12f_ff1e];
    let mut fetched = [0; 2];
    for (round, &word) in code.iter().enumerate() {
        if round > 0 {
            let rw = Protection::READ | Protection::WRITE;
            if through_engine {
                m.engine
                    .mprotect(&mut m.sys, &mut space, va, PAGE, rw)
                    .unwrap();
            } else {
                space.mprotect(&mut m.sys, va, PAGE, rw).unwrap();
            }
        }
        // A load first, so the store hits a cached line (read-allocate).
        user_load(&mut m, &mut space, va.as_u32() + 8, Faults::Engine);
        user_store(&mut m, &mut space, va.as_u32() + 8, word, Faults::Engine);
        let rx = Protection::READ | Protection::EXEC;
        if through_engine {
            m.engine
                .mprotect(&mut m.sys, &mut space, va, PAGE, rx)
                .unwrap();
        } else {
            space.mprotect(&mut m.sys, va, PAGE, rx).unwrap();
        }
        fetched[round] = m.sys.mem.fetch(va.as_u32() + 8).unwrap();
    }
    (violations(&mut m), fetched)
}

/// Every preset, and the ARM926 under FCSE PIDs.
fn mprotect_cases() -> Vec<(&'static str, CpuModel, bool)> {
    let mut cases: Vec<_> = presets().into_iter().map(|(n, m)| (n, m, false)).collect();
    cases.push(("ARM926 FCSE", CpuModel::arm926_keyed(), true));
    cases
}

#[test]
fn mprotect_adding_exec_makes_the_written_code_fetchable() {
    for (name, model, fcse) in mprotect_cases() {
        let (bad, fetched) = code_made_executable_by_mprotect(model, fcse, true);
        assert_eq!(
            (bad, fetched),
            (vec![], [0xe320_f000, 0xe12f_ff1e]),
            "{name}"
        );
    }
}

#[test]
fn twin_mprotect_adding_exec_without_the_engine_fetches_stale_code() {
    for (name, model, fcse) in mprotect_cases() {
        let (bad, _) = code_made_executable_by_mprotect(model, fcse, false);
        assert!(bad.contains(&ViolationKind::StaleFetch), "{name}: {bad:?}");
    }
}

/// How the kernel writes a page-cache page a process maps shared and has
/// just written through a cached line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KernelWrite {
    /// `Engine::page_cache_write`: the maintenance owed before and after.
    Guard,
    /// The same guard dropped instead of finished (an early return): the
    /// after half still runs.
    GuardDropped,
    /// A store through the kernel alias, then `flush_dcache_page` (the
    /// after half only): what the embedding guide and the demo used to do.
    StoreThenFlush,
}

fn kernel_writes_a_page_the_user_dirtied(
    model: CpuModel,
    how: KernelWrite,
) -> (Vec<ViolationKind>, [u32; 2]) {
    let mut m = Machine::new(model);
    let mut space = m.space();
    m.switch_to(&mut space);
    let file = m.file(1);
    let colours = m.sys.allocator.colours();
    // The "wrong" colour for the user, so the aliasing VIPT cache holds the
    // kernel's and the user's lines apart too.
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
    // The user's write sits in a dirty line of its alias.
    user_load(&mut m, &mut space, va, Faults::Engine);
    user_store(&mut m, &mut space, va, 0x05e2_0001, Faults::Engine);
    // The kernel writes another word of the same line (a `write()`).
    match how {
        KernelWrite::Guard => {
            let mut write = m.engine.page_cache_write(&mut m.sys, frame).unwrap();
            let at = write.va().as_u32() + 4;
            write.mem().store(at, 4, 0x4e2_0002).unwrap();
            write.finish().unwrap();
        }
        KernelWrite::GuardDropped => {
            let mut write = m.engine.page_cache_write(&mut m.sys, frame).unwrap();
            let at = write.va().as_u32() + 4;
            // A read first: the kernel's store then dirties its own line
            // (the ARM926 allocates on reads), which only the after half
            // writes back.
            write.mem().load(at, 4).unwrap();
            write.mem().store(at, 4, 0x4e2_0002).unwrap();
        }
        KernelWrite::StoreThenFlush => {
            let kva = m.engine.kernel_va(frame).as_u32();
            m.sys.mem.store(kva + 4, 4, 0x4e2_0002).unwrap();
            m.engine.flush_dcache_page(&mut m.sys, frame).unwrap();
        }
    }
    let seen = [
        user_load(&mut m, &mut space, va, Faults::Engine),
        user_load(&mut m, &mut space, va + 4, Faults::Engine),
    ];
    (violations(&mut m), seen)
}

#[test]
fn a_kernel_write_to_a_page_a_user_dirtied_keeps_both_writes() {
    let mut models = presets().to_vec();
    models.push((
        "ARM926 no write buffer",
        CpuModel::arm926().with_write_buffer(0),
    ));
    for (name, model) in models {
        for how in [KernelWrite::Guard, KernelWrite::GuardDropped] {
            let (bad, seen) = kernel_writes_a_page_the_user_dirtied(model, how);
            assert_eq!(
                (bad, seen),
                (vec![], [0x05e2_0001, 0x4e2_0002]),
                "{name}, {how:?}"
            );
        }
    }
}

#[test]
fn twin_store_then_flush_dcache_page_loses_the_kernel_write_on_aliasing_caches() {
    let cases = [
        ("ARM926 VIVT", CpuModel::arm926()),
        (
            "ARM926 no write buffer",
            CpuModel::arm926().with_write_buffer(0),
        ),
        ("ARM1136 32K", CpuModel::arm1136_32k()),
        ("ARM1136 64K", CpuModel::arm1136_64k()),
    ];
    for (name, model) in cases {
        let (bad, _) = kernel_writes_a_page_the_user_dirtied(model, KernelWrite::StoreThenFlush);
        assert!(
            bad.contains(&ViolationKind::StaleWriteBack),
            "{name}: {bad:?}"
        );
    }
}

/// Found by the random programs under FCSE PIDs: a process writes code at
/// its own address below 32 MiB and asks for it to be made fetchable
/// (`cacheflush(2)`). `flush_icache_range` given the process's address
/// cleans and invalidates nothing: the caches hold the line at the
/// FCSE-modified address, and CP15 operands are not moved by the FCSE.
/// `user_range`: `Engine::flush_user_icache_range`; else (the twin) the
/// kernel-address `flush_icache_range` with the process's address.
fn code_written_by_a_process_under_a_pid(user_range: bool) -> (Vec<ViolationKind>, u32) {
    let mut m = Machine::with_switching(CpuModel::arm926(), Switching::Fcse);
    let mut space = m.space();
    m.switch_to(&mut space);
    let args = MmapArgs {
        prot: Protection::READ | Protection::WRITE | Protection::EXEC,
        ..MmapArgs::anonymous(PAGE)
    };
    let va = space.mmap(&mut m.sys, args).unwrap().as_u32();
    assert!(va < crate::mmu::FCSE_WINDOW_BYTES);
    user_load(&mut m, &mut space, va, Faults::Engine);
    user_store(&mut m, &mut space, va, 0xe320_f000, Faults::Engine);
    if user_range {
        m.engine
            .flush_user_icache_range(&mut m.sys, space.id(), VirtAddr(va), PAGE)
            .unwrap();
    } else {
        m.engine
            .flush_icache_range(&mut m.sys.mem, VirtAddr(va), PAGE)
            .unwrap();
    }
    let fetched = m.sys.mem.fetch(va).unwrap();
    (violations(&mut m), fetched)
}

#[test]
fn code_a_process_wrote_under_an_fcse_pid_is_fetched_new() {
    assert_eq!(
        code_written_by_a_process_under_a_pid(true),
        (vec![], 0xe320_f000)
    );
}

#[test]
fn twin_kernel_address_icache_flush_of_a_process_s_code_under_a_pid_is_caught() {
    let (bad, _) = code_written_by_a_process_under_a_pid(false);
    assert!(bad.contains(&ViolationKind::StaleFetch), "{bad:?}");
}

/// `cacheflush(2)` of a range that is neither page aligned nor inside one
/// page: the code on both sides of the page bound is fetched new, and the
/// I-cache loses exactly the range's two lines, not the rest of either
/// page. On every preset, and on the ARM926 under FCSE PIDs.
fn cacheflush_across_a_page_bound(
    model: CpuModel,
    fcse: bool,
    flush: bool,
) -> (Vec<ViolationKind>, [u32; 2], u64) {
    let mut m = if fcse {
        Machine::with_switching(model, Switching::Fcse)
    } else {
        Machine::new(model)
    };
    let mut space = m.space();
    m.switch_to(&mut space);
    let args = MmapArgs {
        prot: Protection::READ | Protection::WRITE | Protection::EXEC,
        ..MmapArgs::anonymous(2 * PAGE)
    };
    let va = space.mmap(&mut m.sys, args).unwrap().as_u32();
    let words = [va + PAGE - 4, va + PAGE];
    for at in words {
        user_load(&mut m, &mut space, at, Faults::Engine);
        m.sys.mem.fetch(at).unwrap();
        user_store(
            &mut m,
            &mut space,
            at,
            0xe320_f000 + (at & 0xfff),
            Faults::Engine,
        );
    }
    let before = m.sys.mem.counters().icache_line;
    if flush {
        m.engine
            .flush_user_icache_range(&mut m.sys, space.id(), VirtAddr(va + PAGE - 8), 16)
            .unwrap();
    }
    let lines = m.sys.mem.counters().icache_line - before;
    let fetched = words.map(|at| m.sys.mem.fetch(at).unwrap());
    (violations(&mut m), fetched, lines)
}

#[test]
fn cacheflush_across_a_page_bound_fetches_both_sides_new_and_drops_only_their_lines() {
    for (name, model, fcse) in mprotect_cases() {
        let (bad, fetched, lines) = cacheflush_across_a_page_bound(model, fcse, true);
        assert_eq!(bad, [], "{name}");
        assert_eq!(fetched, [0xe320_fffc, 0xe320_f000], "{name}");
        assert_eq!(lines, 2, "{name}");
    }
}

#[test]
fn twin_code_written_across_a_page_bound_without_cacheflush_is_stale() {
    for (name, model, fcse) in mprotect_cases() {
        let (bad, _, _) = cacheflush_across_a_page_bound(model, fcse, false);
        assert!(bad.contains(&ViolationKind::StaleFetch), "{name}: {bad:?}");
    }
}
