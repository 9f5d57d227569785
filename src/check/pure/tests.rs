//! The committed corpora replay clean, and random inputs run clean, in the
//! test profile (overflow checks on).

use std::path::PathBuf;
use std::string::String;
use std::vec::Vec;

use arbitrary::{Arbitrary, Unstructured};

use super::{Failure, addr, cache, mm, mmu};
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
