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

/// Known bug 3: the kernel stores into a page-cache page through its
/// linear map and calls `flush_dcache_page` while a user holds a dirty line
/// of the page (a shared writable mapping). On VIVT the user's store is
/// lost (or the kernel's: the lines are cleaned in the wrong order).
#[test]
#[ignore = "engine bug (known bug 3, being fixed): flush_dcache_page loses a user's dirty line on VIVT"]
fn flush_dcache_page_under_a_dirty_user_line() {
    let ops = [
        Op::Mmap {
            proc: 0,
            kind: MapKind::SharedFile { file: 0, page: 0 },
            pages: 0,
            prot: Prot::ReadWrite,
            fixed: None,
        },
        Op::Load { proc: 0, at: at(0, 0, 0) },
        Op::Store { proc: 0, at: at(0, 0, 0), value: 0x1111 },
        Op::KernelWrite {
            file: 0,
            page: 0,
            word: 1,
            value: 0x2222,
            via: KernelWriteVia::FlushDcachePage,
        },
        Op::Load { proc: 0, at: at(0, 0, 0) },
        Op::Load { proc: 0, at: at(0, 0, 1) },
        Op::KernelRead { file: 0, page: 0, word: 0 },
        Op::KernelRead { file: 0, page: 0, word: 1 },
    ];
    let failures = run_all(&ops);
    assert!(failures.is_empty(), "{failures:#?}");
}
