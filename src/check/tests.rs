//! Reproducers and demonstrations on the interpreter.

use std::vec::Vec;

use super::machine::presets;
use super::op::*;
use super::world::{Failure, FailureKind, World};

/// Runs `ops` on a fresh world of every preset; the failures.
fn run_all(ops: &[Op]) -> Vec<(&'static str, Failure)> {
    let mut failures = Vec::new();
    for (name, model) in presets() {
        let mut world = World::new(model);
        for op in ops {
            if let Err(f) = world.apply(op) {
                failures.push((name, f));
                break;
            }
        }
    }
    failures
}

fn at(vma: u8, page: u8, word: u16) -> UserAddr {
    UserAddr { vma, page, word }
}

#[test]
fn private_file_mapping_made_writable_by_mprotect_still_copies_on_write() {
    let ops = [
        Op::Mmap {
            proc: 0,
            kind: MapKind::PrivateFile { file: 0, page: 0 },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Load {
            proc: 0,
            at: at(0, 0, 0),
        },
        Op::Mprotect {
            proc: 0,
            vma: 0,
            first: 0,
            pages: 0,
            prot: Prot::Read,
        },
        Op::Mprotect {
            proc: 0,
            vma: 0,
            first: 0,
            pages: 0,
            prot: Prot::ReadWrite,
        },
        Op::Store {
            proc: 0,
            at: at(0, 0, 0),
            value: 0xdead_beef,
        },
        Op::KernelRead {
            file: 0,
            page: 0,
            word: 0,
        },
    ];
    let failures = run_all(&ops);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The content reference catches what the oracle cannot: a copy-on-write
/// copy filled with zeroes instead of the file's bytes is coherent (every
/// zero was stored and made visible properly), only wrong.
#[test]
fn reference_catches_a_zero_filled_copy_the_oracle_accepts() {
    let ops = [
        Op::KernelWrite {
            file: 0,
            page: 0,
            word: 1,
            value: 0x5eed,
            via: KernelWriteVia::Kmap,
        },
        Op::Mmap {
            proc: 0,
            kind: MapKind::PrivateFile { file: 0, page: 0 },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Load {
            proc: 0,
            at: at(0, 0, 1),
        },
        Op::Store {
            proc: 0,
            at: at(0, 0, 2),
            value: 7,
        },
        Op::Load {
            proc: 0,
            at: at(0, 0, 1),
        },
    ];
    assert!(run_all(&ops).is_empty(), "the honest engine passes");
    for (name, model) in presets() {
        let mut world = World::new(model);
        world.sabotage_zero_cow_copies = true;
        let failure = ops.iter().find_map(|op| world.apply(op).err());
        match failure.map(|f| f.kind) {
            Some(FailureKind::Content {
                expected: 0x5eed,
                found: 0,
                ..
            }) => {}
            other => panic!("{name}: {other:?}"),
        }
        assert!(
            world.m.sys.mem.violations().is_empty(),
            "{name}: the oracle is blind to it"
        );
    }
}

/// The world catches an engine that frees a frame a process still maps
/// (planted: the frame is freed behind the engine's back after the
/// operation that faulted it in), in a run that is not strict.
#[test]
fn a_frame_freed_while_mapped_is_caught() {
    let ops = [
        Op::Mmap {
            proc: 0,
            kind: MapKind::PrivateAnon,
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Store {
            proc: 0,
            at: at(0, 0, 0),
            value: 7,
        },
        Op::Load {
            proc: 0,
            at: at(0, 0, 0),
        },
    ];
    assert!(run_all(&ops).is_empty(), "the honest engine passes");
    for (name, model) in presets() {
        let mut world = World::new(model);
        assert!(!world.strict);
        world.sabotage_free_a_mapped_frame = true;
        let failure = ops.iter().find_map(|op| world.apply(op).err());
        match failure.map(|f| f.kind) {
            Some(FailureKind::Unexpected { what, error }) if what == "free" => {
                assert!(
                    error.contains("was freed while process 0 maps it"),
                    "{name}: {error}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// Known bug 3: the kernel stores into a page-cache page through its
/// linear map and calls `flush_dcache_page` while a user holds a dirty line
/// of the page (a shared writable mapping). On VIVT the user's store is
/// lost (or the kernel's: the lines are cleaned in the wrong order).
#[test]
fn page_cache_write_under_a_dirty_user_line() {
    let ops = [
        Op::Mmap {
            proc: 0,
            kind: MapKind::SharedFile { file: 0, page: 0 },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Load {
            proc: 0,
            at: at(0, 0, 0),
        },
        Op::Store {
            proc: 0,
            at: at(0, 0, 0),
            value: 0x1111,
        },
        Op::KernelWrite {
            file: 0,
            page: 0,
            word: 1,
            value: 0x2222,
            via: KernelWriteVia::PageCacheWrite,
        },
        Op::Load {
            proc: 0,
            at: at(0, 0, 0),
        },
        Op::Load {
            proc: 0,
            at: at(0, 0, 1),
        },
        Op::KernelRead {
            file: 0,
            page: 0,
            word: 0,
        },
        Op::KernelRead {
            file: 0,
            page: 0,
            word: 1,
        },
    ];
    let failures = run_all(&ops);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A page-cache page copied on write for a private mapping at another
/// colour than its frame (through a window of the user's colour, whose
/// lines stay cached), then written by the kernel (store +
/// `flush_dcache_page`, deferred: no user maps it), then copied again for
/// another process at that colour: the second copy reads the window's old
/// lines (ARM1136 32K/64K, mappings not colour aligned).
#[test]

fn cow_copy_reads_stale_window_lines_after_a_deferred_kernel_write() {
    let ops = [
        Op::Mmap {
            proc: 0,
            kind: MapKind::PrivateFile { file: 0, page: 0 },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Fork { proc: 0 },
        // The parent's copy reads the file page through a window of the
        // user's colour: those lines stay cached, clean.
        Op::Store {
            proc: 0,
            at: at(0, 0, 2),
            value: 7,
        },
        // Deferred: no user maps the page-cache page now.
        Op::KernelWrite {
            file: 0,
            page: 0,
            word: 1,
            value: 0x5eed,
            via: KernelWriteVia::PageCacheWrite,
        },
        // The child's copy reads the old lines through the window.
        Op::Store {
            proc: 1,
            at: at(0, 0, 2),
            value: 8,
        },
        Op::Load {
            proc: 1,
            at: at(0, 0, 1),
        },
    ];
    let mut failures = Vec::new();
    for (name, model) in presets() {
        let make = || World::configured(model, super::Switching::Default, false);
        if let Some((i, f)) = super::replay(&make, &ops) {
            failures.push((name, i, f));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A page-cache page is copied on write for a private mapping at another
/// colour than its frame, through a window of that colour (whose lines
/// stay cached, clean); then written through a shared mapping of the
/// frame's colour; then copied again at the first colour: the copy cleans
/// the writer's line to memory but reads the window colour's old lines
/// (ARM1136 32K/64K, mappings not colour aligned).
#[test]

fn cow_copy_reads_stale_window_lines_of_an_earlier_copy() {
    let private = Op::Mmap {
        proc: 0,
        kind: MapKind::PrivateFile { file: 0, page: 0 },
        pages: 0,
        prot: Prot::ReadWrite,
        fixed: None,
    };
    let ops = [
        // At 0x1ffff000: colour 1, the frame's is 0.
        private,
        Op::Store {
            proc: 0,
            at: at(0, 0, 2),
            value: 7,
        },
        // At 0x1fffe000, the frame's colour; mapping 0 from here on.
        Op::Mmap {
            proc: 0,
            kind: MapKind::SharedFile { file: 0, page: 0 },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Store {
            proc: 0,
            at: at(0, 0, 1),
            value: 0x5eed,
        },
        // At 0x1fffd000: colour 1 again; mapping 0 from here on.
        private,
        Op::Store {
            proc: 0,
            at: at(0, 0, 2),
            value: 8,
        },
        Op::Load {
            proc: 0,
            at: at(0, 0, 1),
        },
    ];
    let mut failures = Vec::new();
    for (name, model) in presets() {
        let make = || World::configured(model, super::Switching::Default, false);
        if let Some((i, f)) = super::replay(&make, &ops) {
            failures.push((name, i, f));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Known bug 1 on ARMv6: process 1 reads a page-cache page through a
/// shared mapping of one colour; process 0 maps it writable at another
/// colour and writes it (`make_coherent` only records the page for the
/// next switch's separation), then unmaps it; before any switch, the kernel
/// writes the page through a `Kmap` of process 1's colour: the store lands
/// in process 1's stale line, written back over process 0's data
/// (ARM1136 32K/64K, mappings not colour aligned).
#[test]

fn newly_shared_page_at_another_colour_keeps_a_stale_line_until_a_switch() {
    let ops = [
        Op::Fork { proc: 0 },
        Op::Mmap {
            proc: 1,
            kind: MapKind::SharedFile { file: 0, page: 0 },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Load {
            proc: 1,
            at: at(0, 0, 1),
        },
        Op::Mmap {
            proc: 0,
            kind: MapKind::PrivateAnon,
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        // Below the anonymous page: another colour than process 1's.
        Op::Mmap {
            proc: 0,
            kind: MapKind::SharedFile { file: 0, page: 0 },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Store {
            proc: 0,
            at: at(0, 0, 1),
            value: 0x5eed,
        },
        Op::Munmap {
            proc: 0,
            vma: 0,
            first: 0,
            pages: 0,
        },
        Op::KernelWrite {
            file: 0,
            page: 0,
            word: 2,
            value: 7,
            via: KernelWriteVia::Kmap,
        },
        Op::KernelRead {
            file: 0,
            page: 0,
            word: 1,
        },
    ];
    let mut failures = Vec::new();
    for (name, model) in presets() {
        let make = || World::configured(model, super::Switching::Default, false);
        if let Some((i, f)) = super::replay(&make, &ops) {
            failures.push((name, i, f));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Known bug 2: `mprotect` adding `PROT_EXEC` neither cleans the D-cache
/// nor invalidates the I-cache, so a fetch reads memory older than the
/// page's zero-fill and store (ARM1176, PIPT: where `mprotect` flushes
/// nothing else).
#[test]

fn mprotect_to_exec_then_fetch() {
    let ops = [
        Op::Mmap {
            proc: 0,
            kind: MapKind::PrivateAnon,
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Store {
            proc: 0,
            at: at(0, 0, 0),
            value: 0xe1a0_0000,
        },
        Op::Mprotect {
            proc: 0,
            vma: 0,
            first: 0,
            pages: 0,
            prot: Prot::ReadExec,
        },
        Op::Fetch {
            proc: 0,
            at: at(0, 0, 0),
        },
        Op::Fetch {
            proc: 0,
            at: at(0, 0, 1),
        },
    ];
    let failures = run_all(&ops);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The kernel writes a page-cache page through a `Kmap` while no user
/// maps it (its linear map's lines stay, the write deferred); a user maps
/// it at another colour (`update_mmu_cache` cleans the kernel alias but
/// keeps its lines), writes it, and goes; the kernel's next `Kmap` goes
/// through the linear map again, reads its old lines and writes them back
/// over the user's data (ARM1136 32K/64K, mappings not colour aligned).
#[test]

fn kmap_writes_back_stale_kernel_alias_lines_after_a_user_of_another_colour() {
    let ops = [
        Op::KernelWrite {
            file: 0,
            page: 0,
            word: 1,
            value: 1,
            via: KernelWriteVia::Kmap,
        },
        Op::Mmap {
            proc: 0,
            kind: MapKind::SharedFile { file: 0, page: 0 },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Store {
            proc: 0,
            at: at(0, 0, 2),
            value: 0x5eed,
        },
        Op::Munmap {
            proc: 0,
            vma: 0,
            first: 0,
            pages: 0,
        },
        Op::KernelWrite {
            file: 0,
            page: 0,
            word: 3,
            value: 3,
            via: KernelWriteVia::Kmap,
        },
        Op::KernelRead {
            file: 0,
            page: 0,
            word: 2,
        },
    ];
    let mut failures = Vec::new();
    for (name, model) in presets() {
        let make = || World::configured(model, super::Switching::Default, false);
        if let Some((i, f)) = super::replay(&make, &ops) {
            failures.push((name, i, f));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// ARM926 under FCSE PIDs: a process maps a page-cache page and reads it,
/// then execs into a fresh space that maps another file page at the same
/// address and loads it. Found as a cross-space leak by the random
/// programs; the cause was the world's, not the engine's: its FCSE machine
/// ran PIDs on a model without the FCSE's relocation (plain VIVT), so two
/// PIDs shared lines. `Machine` now models the FCSE wherever it runs PIDs.
#[test]
fn fcse_exec_reads_its_own_page_not_the_old_image_s() {
    let ops = [
        Op::Mmap {
            proc: 1,
            kind: MapKind::SharedFile {
                file: 83,
                page: 178,
            },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Load {
            proc: 0,
            at: at(210, 84, 24693),
        },
        Op::Exec { proc: 5 },
        Op::Mmap {
            proc: 5,
            kind: MapKind::SharedFile { file: 87, page: 20 },
            pages: 1,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Load {
            proc: 5,
            at: at(219, 139, 41075),
        },
    ];
    let (_, model) = presets()[0];
    let make = || World::with_switching(model, super::Switching::Fcse);
    let failure = super::replay(&make, &ops);
    assert!(failure.is_none(), "{failure:#?}");
}

/// ARM926 under FCSE PIDs, found by the fuzzer (`cargo xtask fuzz
/// --preset arm926-fcse`, shrunk by `check::fuzz::tests::shrink_an_artifact`):
/// four processes share anonymous pages; the running one makes an invalid
/// call (`Invalid` 5: the exit of a stand-in of the running space, refused)
/// and then stores. Found by the fuzzer as a stale read of a kernel
/// linear-map line on a world whose FCSE machine did not model the FCSE's
/// relocation (the world's mistake, fixed in `Machine`); it passes on the
/// faithful model and stays as a regression test.
#[test]
fn fcse_refused_exit_then_stale_kernel_read() {
    let ops = [
        Op::Mmap {
            proc: 0,
            kind: MapKind::PrivateFile {
                file: 104,
                page: 62,
            },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Mmap {
            proc: 0,
            kind: MapKind::SharedAnon,
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Mmap {
            proc: 0,
            kind: MapKind::SharedAnon,
            pages: 2,
            prot: Prot::ReadWriteExec,
            fixed: None,
        },
        Op::Fork { proc: 0 },
        Op::Munmap {
            proc: 0,
            vma: 234,
            first: 40,
            pages: 248,
        },
        Op::Fork { proc: 0 },
        Op::Mmap {
            proc: 0,
            kind: MapKind::SharedAnon,
            pages: 1,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Fork { proc: 1 },
        Op::Load {
            proc: 1,
            at: UserAddr {
                vma: 134,
                page: 183,
                word: 59996,
            },
        },
        Op::Mmap {
            proc: 0,
            kind: MapKind::SharedFile {
                file: 181,
                page: 61,
            },
            pages: 2,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Store {
            proc: 3,
            at: UserAddr {
                vma: 134,
                page: 38,
                word: 11867,
            },
            value: 2361213811,
        },
        Op::Munmap {
            proc: 0,
            vma: 181,
            first: 44,
            pages: 89,
        },
        Op::Invalid { which: 5, value: 0 },
        Op::Store {
            proc: 0,
            at: UserAddr {
                vma: 164,
                page: 236,
                word: 9644,
            },
            value: 3540154804,
        },
    ];
    let (_, model) = presets()[0];
    let make = || World::configured(model, super::Switching::Fcse, true);
    let failure = super::replay(&make, &ops);
    assert!(failure.is_none(), "{failure:#?}");
}

/// A tool, not a test: replays random program `SEED` (hex) on preset
/// `PRESET` for `OPS` operations (`ALIGNED=1`, `FCSE=1` as in the random
/// programs' configurations), shrinks it to a failing program and prints
/// it (`VERBOSE=1`: every process's pages after each operation). Run with
/// `cargo test --features sim --lib check::tests::shrink_a_random_program
/// -- --ignored --nocapture`.
#[test]
#[ignore = "tool: shrinks a failing random program (see its docs)"]
fn shrink_a_random_program() {
    let var = |n: &str| {
        std::env::var(n)
            .ok()
            .and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0)
    };
    let (_, model) = presets()[var("PRESET") as usize];
    let aligned = var("ALIGNED") == 1;
    let switching = if var("FCSE") == 1 {
        super::Switching::Fcse
    } else {
        super::Switching::Default
    };
    let make = || World::configured(model, switching, aligned);
    let mut world = make();
    let mut rng = XorShift::new(var("SEED"));
    let mut ops = Vec::new();
    for _ in 0..var("OPS") + 1 {
        let op = random_op(&mut rng, &world);
        ops.push(op);
        if world.apply(&op).is_err() {
            break;
        }
    }
    let small = super::shrink(&make, &ops);
    let mut w = make();
    for op in &small {
        let r = w.apply(op);
        std::eprintln!("{op:?} -> {:?}", r.as_ref().map_err(|f| &f.kind));
        for p in (0..w.processes()).filter(|_| var("VERBOSE") == 1) {
            for (va, b) in &w.reference.procs[p].pages {
                std::eprintln!(
                    "   P{p} {va:#x} {b:?} {:?} frame {:?}",
                    w.reference.procs[p].prot.get(va),
                    w.frame_of(p, *va)
                );
            }
        }
    }
}

/// The generator and the fuzzer keep the same variants out: every
/// operation `random_op` picks is one `allowed` lets through.
#[test]
fn random_ops_are_allowed() {
    let switchings = [super::Switching::Default, super::Switching::Fcse];
    for (_, model) in presets() {
        for (aligned, switching) in [true, false].into_iter().zip(switchings).chain([
            (true, super::Switching::Default),
            (false, super::Switching::Fcse),
        ]) {
            let mut world = World::configured(model, switching, aligned);
            let mut rng = XorShift::new(0x5eed);
            for _ in 0..2000 {
                let op = random_op(&mut rng, &world);
                assert!(allowed(&op, &world), "{op:?}");
                if world.apply(&op).is_err() {
                    break;
                }
            }
        }
    }
}

/// A strict world's audit (`World::strict`, `mm::space::audit`) catches
/// what it claims to, planted by hand after a page is made resident: a
/// frame allocated that nothing holds (a leak), a reverse-map entry that
/// disagrees with the table, a frame freed while a space maps it.
#[test]
fn the_strict_audit_catches_planted_breaks_of_the_books() {
    use crate::addr::VirtAddr;
    let resident = || {
        let mut world = World::new(presets()[1].1);
        world.strict = true;
        let ops = [
            Op::Mmap {
                proc: 0,
                kind: MapKind::PrivateAnon,
                pages: 0,
                prot: Prot::ReadWrite,
                fixed: None,
            },
            Op::Store {
                proc: 0,
                at: UserAddr {
                    vma: 0,
                    page: 0,
                    word: 0,
                },
                value: 7,
            },
        ];
        for op in &ops {
            world.apply(op).unwrap();
        }
        world
    };
    let audit_failure = |mut world: World| {
        let noop = Op::Invalid { which: 4, value: 0 };
        match world.apply(&noop).map_err(|f| f.kind) {
            Err(FailureKind::Unexpected { what, error }) if what == "audit" => error,
            other => panic!("not caught by the audit: {other:?}"),
        }
    };
    // Untouched, the world passes.
    resident()
        .apply(&Op::Invalid { which: 4, value: 0 })
        .unwrap();

    let mut leak = resident();
    leak.m.sys.allocator.allocate_any().unwrap();
    assert!(audit_failure(leak).contains("leaked"));

    let mut rmap = resident();
    let (space, va, pa) = user_page(&rmap);
    rmap.m
        .sys
        .frames
        .set_writable(pa, space, va, false)
        .unwrap();
    assert!(audit_failure(rmap).contains("reverse map disagrees"));

    let mut freed = resident();
    let (_, _, pa) = user_page(&freed);
    freed.m.sys.allocator.free(pa).unwrap();
    assert!(audit_failure(freed).contains("in use but free"));

    /// The one user page the reverse map knows.
    fn user_page(world: &World) -> (crate::mm::frames::SpaceId, VirtAddr, crate::addr::PhysAddr) {
        let sys = &world.m.sys;
        let first = sys.frames.first().as_u32();
        (0..sys.frames.frames())
            .map(|i| crate::addr::PhysAddr(first + i * super::machine::PAGE))
            .find_map(|pa| {
                let m = *sys
                    .frames
                    .mappings(pa)
                    .ok()?
                    .iter()
                    .find(|m| m.kind == crate::mm::frames::MappingKind::User)?;
                Some((m.space, m.va, pa))
            })
            .expect("a resident page")
    }
}

/// A frame the kernel used for itself comes back to the allocator with
/// dirty lines in its linear alias (a kernel frees without maintenance);
/// the next user of the frame must not see them, nor have them written
/// back over its data (`Engine::discard_other_kernel_lines`).
#[test]
fn a_frame_freed_dirty_by_the_kernel_does_not_leak_into_its_next_user() {
    let mut ops = Vec::new();
    // Scratch frames of every colour (the allocator hands colours out
    // round-robin, and a fault takes the last freed frame of its colour).
    for _ in 0..16 {
        ops.push(Op::KernelScratch {
            first_line: 0,
            lines: 127,
            value: 0x5c5c_5c5c,
        });
    }
    ops.push(Op::Mmap {
        proc: 0,
        kind: MapKind::PrivateAnon,
        pages: 3,
        prot: Prot::ReadWrite,
        fixed: None,
    });
    for page in 0..4 {
        ops.push(Op::Load {
            proc: 0,
            at: at(0, page, 9),
        });
        ops.push(Op::Store {
            proc: 0,
            at: at(0, page, 8),
            value: 0x600d_0000 + u32::from(page),
        });
    }
    // Every line leaves the cache: what is written back is judged.
    ops.push(Op::Munmap {
        proc: 0,
        vma: 1,
        first: 0,
        pages: 0,
    });
    ops.push(Op::Mmap {
        proc: 0,
        kind: MapKind::PrivateAnon,
        pages: ARENA,
        prot: Prot::ReadWrite,
        fixed: None,
    });
    for page in 0..4 {
        ops.push(Op::Load {
            proc: 0,
            at: at(0, page, 8),
        });
    }
    let failures = run_every_configuration(&ops);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Runs `ops` on a fresh world of every preset, switcher and placement
/// (colour aligned or not, where the cache aliases); the failures.
fn run_every_configuration(ops: &[Op]) -> Vec<(std::string::String, Failure)> {
    use super::machine::Switching;
    let mut failures = Vec::new();
    for (name, model) in presets() {
        for switching in [Switching::Default, Switching::Fcse] {
            if switching == Switching::Fcse && model.info().kind != crate::cache::CacheKind::Vivt {
                continue;
            }
            for aligned in [true, false] {
                if !aligned && !model.info().kind.aliases() {
                    continue;
                }
                let mut world = World::configured(model, switching, aligned);
                if let Some(f) = ops.iter().find_map(|op| world.apply(op).err()) {
                    failures.push((std::format!("{name} {switching:?} aligned {aligned}"), f));
                }
            }
        }
    }
    failures
}
