//! The committed corpora replay clean, and random inputs run clean, in the
//! test profile (overflow checks on).

use std::path::PathBuf;
use std::string::String;
use std::vec::Vec;

use arbitrary::{Arbitrary, Unstructured};

use super::{Failure, addr, cache, frames, mm, mmu};
use crate::check::XorShift;

/// Decodes `bytes` as the fuzz target does (`arbitrary_take_rest`) and
/// checks it; inputs that do not decode are skipped, as libFuzzer's
/// `fuzz_target!` skips them.
fn run<T: for<'a> Arbitrary<'a>>(
    bytes: &[u8],
    check: fn(&T) -> Result<(), Failure>,
) -> Result<(), Failure> {
    match T::arbitrary_take_rest(Unstructured::new(bytes)) {
        Ok(input) => check(&input),
        Err(_) => Ok(()),
    }
}

/// A target's check of raw bytes.
type Check = fn(&[u8]) -> Result<(), Failure>;

/// Every target: its name (the corpus directory) and its check on bytes.
const TARGETS: [(&str, Check); 4] = [
    ("pure_addr", |b| run(b, addr::Input::check)),
    ("pure_cache", |b| run(b, cache::Input::check)),
    ("pure_mm", |b| run(b, mm::Input::check)),
    ("pure_mmu", |b| run(b, mmu::Input::check)),
];

#[test]
fn committed_corpora_replay_clean() {
    // The published package carries no corpora (`include` in Cargo.toml):
    // nothing to replay there. In the repository every target has one.
    let corpora = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    if !corpora.is_dir() {
        return;
    }
    for (target, check) in TARGETS {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut files = 0;
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let bytes = std::fs::read(&path).expect("a corpus file");
            if let Err(e) = check(&bytes) {
                panic!("{}: {e}", path.display());
            }
            files += 1;
        }
        assert!(files > 0, "{target}: empty corpus");
    }
}

#[test]
fn random_inputs_run_clean() {
    let mut rng = XorShift::new(0x5eed_0019);
    for (target, check) in TARGETS {
        for case in 0..300 {
            let len = (rng.next() % 2048) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Err(e) = check(&bytes) {
                let hex: String = bytes.iter().map(|b| std::format!("{b:02x}")).collect();
                panic!("{target}, case {case}: {e}\n  input: {hex}");
            }
        }
    }
}

/// One input per target written out by hand: a reader's example of each
/// input, and a check that every part of a check runs (the cache model,
/// placements, the frame structures, the table and the keys).
#[test]
fn hand_written_inputs_pass() {
    use mm::{Addr, GapOp, LayoutArg, Len, RequestArg};

    let a = addr::Input {
        ops: vec![
            addr::Op::Range {
                start: 0xffff_f000,
                len: addr::Len::Small(0x1000),
            },
            addr::Op::Round {
                addr: 0x1234,
                align: addr::Align::Raw(0),
            },
            addr::Op::Plan {
                start: 0x1005,
                len: addr::Len::Small(0x40),
                line: addr::Align::Power(5),
                threshold: 16 << 10,
            },
        ],
    };
    assert_eq!(a.check(), Ok(()));

    let c = cache::Input {
        midr: 0x4117_b363,
        ctr: cache::Ctr::Raw(0x0014_e000),
        // 16 KiB, 4 ways, 32-byte lines: run on the model too.
        geometry: (
            cache::Dim::Power(14),
            cache::Dim::Power(2),
            cache::Dim::Power(5),
        ),
        model: (2, false, 0, false),
        picks: vec![(127, 3), (128, 0)],
        ops: vec![
            cache::ModelOp::Store {
                offset: 0x100,
                value: 7,
            },
            cache::ModelOp::SetWay {
                invalidate: true,
                set: 8,
                way: 0,
            },
            cache::ModelOp::Load { offset: 0x100 },
            cache::ModelOp::SetWay {
                invalidate: false,
                set: 128,
                way: 0,
            },
        ],
    };
    assert_eq!(c.check(), Ok(()));

    let layout = LayoutArg {
        min_addr: Addr::Page(8),
        mmap_base: Addr::Page(0x8000),
        task_size: Addr::Page(0xf000),
        colour_span: Ok(2),
        bottom_up: false,
    };
    let request = RequestArg {
        hint: None,
        len: Len::Pages(3),
        fixed: false,
        shared: true,
        file_offset: Some(Ok(5)),
    };
    let g = mm::Input::Gaps(vec![
        GapOp::Insert {
            start: Addr::Page(8),
            len: Len::Pages(200),
        },
        GapOp::Take {
            start: Addr::Page(10),
            len: Len::Pages(2),
        },
        GapOp::Place { layout, request },
        GapOp::Give {
            start: Addr::Page(10),
            len: Len::Pages(2),
        },
        GapOp::Fit {
            len: Len::Pages(100),
            low: Addr::Page(0),
            high: Len::Raw(1 << 32),
        },
    ]);
    assert_eq!(g.check(), Ok(()));

    let f = mm::Input::Frames(frames::Input {
        first_frame: 0x8_0000,
        frames: 16,
        colours: Ok(2),
        ops: vec![
            frames::Op::AllocateColour(3),
            frames::Op::AllocateSpread(0),
            frames::Op::Free(frames::Frame::Index(3)),
            frames::Op::CreateObject { size: 4 },
            frames::Op::AddMapper {
                object: 0,
                space: 1,
                start: 0xffff_f000,
                first_page: 0,
                pages: 2,
            },
            frames::Op::AddressesOf { object: 0, page: 0 },
        ],
    });
    assert_eq!(f.check(), Ok(()));

    let m = mmu::Input {
        armv6: true,
        frames: 4,
        keys: (false, mmu::KeyRange::Small(1, 1)),
        ops: vec![
            mmu::Op::MapPage(mmu::Addr::Page(1), mmu::Addr::Page(7), 0),
            mmu::Op::MapSection(mmu::Addr::Section(1), mmu::Addr::Section(2), 0),
            mmu::Op::Translate(mmu::Addr::Raw(0x1234)),
            mmu::Op::UnmapPage(mmu::Addr::Page(1)),
            mmu::Op::Activate(0),
            mmu::Op::Activate(1),
            mmu::Op::Activate(2),
            mmu::Op::Decode {
                raw: 0x0010_0c0e,
                l1: true,
            },
        ],
    };
    assert_eq!(m.check(), Ok(()));
}
