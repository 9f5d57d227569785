//! The fuzzer's input (feature `arbitrary`): a configuration and a program,
//! decoded from bytes with [`arbitrary`], run on the interpreter.
//!
//! ```text
//!   bytes ──Arbitrary──► Program { preset, fcse, aligned, ops }
//!                              │ (VACMM_FUZZ_PRESET may force the first two)
//!                              ▼
//!   World::configured(model, switching, aligned) ── apply each allowed op
//!                              │
//!                              └─► a Failure (oracle, content, unexpected,
//!                                  an audit of the books) is the crash
//! ```
//!
//! The byte layout is [`arbitrary`]'s: `preset` one byte, `fcse` and
//! `aligned` one byte each (low bit), then per operation a byte whose low
//! bit says one more follows and the operation (a little-endian `u32`
//! choosing the variant, then its fields in order). [`Program::encode`] is
//! its inverse, so programs of the random generator become the seed corpus
//! (`fuzz/corpus/ops`, written by the ignored test
//! `check::fuzz::tests::write_seed_corpus`).
//!
//! Operations the constants of [`op::LEFT_OUT`](super::op::LEFT_OUT) keep
//! out are skipped ([`allowed`]), so known engine bugs do not crash the
//! fuzzer at once.

use std::string::String;
use std::vec::Vec;

use arbitrary::{Arbitrary, Unstructured};

use super::machine::{Switching, presets};
use super::op::{DmaDir, KernelWriteVia, MapKind, Op, Prot, UserAddr, allowed};
use super::world::{Failure, World};

/// At most this many operations of an input run (the rest is ignored).
pub const MAX_OPS: usize = 256;

/// The configurations a run can be forced to (`VACMM_FUZZ_PRESET`): name,
/// index in [`presets`], switching.
pub const PRESETS: [(&str, usize, Switching); 6] = [
    ("arm926", 0, Switching::Default),
    ("arm1136-32k", 1, Switching::Default),
    ("arm1136-64k", 2, Switching::Default),
    ("arm1176", 3, Switching::Default),
    ("pipt", 4, Switching::Default),
    ("arm926-fcse", 0, Switching::Fcse),
];

/// The index in [`PRESETS`] of the configuration called `name`.
pub fn preset_named(name: &str) -> Option<usize> {
    PRESETS.iter().position(|(n, ..)| *n == name)
}

/// The configuration `VACMM_FUZZ_PRESET` forces (read once), if any.
///
/// # Panics
/// If it names no configuration of [`PRESETS`].
pub fn forced_preset() -> Option<usize> {
    static FORCED: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| {
        let name = std::env::var("VACMM_FUZZ_PRESET").ok()?;
        let names: Vec<&str> = PRESETS.iter().map(|(n, ..)| *n).collect();
        Some(preset_named(&name).unwrap_or_else(|| {
            panic!("VACMM_FUZZ_PRESET={name:?}: one of {names:?}");
        }))
    })
}

/// A fuzzer's input.
#[derive(Clone, Debug, PartialEq, Eq, Arbitrary)]
pub struct Program {
    /// The model: an index in [`presets`] (modulo).
    pub preset: u8,
    /// FCSE PIDs (ARMv5 only; ARMv6 switches by ASID either way).
    pub fcse: bool,
    /// Colour-aligned mappings (see [`World::configured`]).
    pub aligned: bool,
    /// The operations (the first [`MAX_OPS`]).
    pub ops: Vec<Op>,
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ran {
    /// Operations applied.
    pub applied: usize,
    /// Operations skipped ([`allowed`] refused them).
    pub skipped: usize,
}

impl Program {
    /// The program `bytes` decode to (as the fuzz target's `fuzz_target!`
    /// decodes them: [`Arbitrary::arbitrary_take_rest`]).
    pub fn decode(bytes: &[u8]) -> arbitrary::Result<Program> {
        Program::arbitrary_take_rest(Unstructured::new(bytes))
    }

    /// The model, switching and alignment it runs with (`forced`: an index
    /// in [`PRESETS`] that replaces the first two).
    pub fn configuration(&self, forced: Option<usize>) -> (usize, Switching, bool) {
        match forced {
            Some(i) => (PRESETS[i].1, PRESETS[i].2, self.aligned),
            None => {
                let switching = if self.fcse {
                    Switching::Fcse
                } else {
                    Switching::Default
                };
                (
                    usize::from(self.preset) % presets().len(),
                    switching,
                    self.aligned,
                )
            }
        }
    }

    /// A fresh world for the program, strict ([`World::strict`]: the
    /// books audited after every operation, and unchanged by every refused
    /// call): the fuzzer is the whole-machine check of issue 19 as well as
    /// the coherence check of issue 18.
    pub fn world(&self, forced: Option<usize>) -> World {
        let (model, switching, aligned) = self.configuration(forced);
        let mut world = World::configured(presets()[model].1, switching, aligned);
        world.strict = true;
        world
    }

    /// Runs the first [`MAX_OPS`] operations, skipping those [`allowed`]
    /// refuses; the first failure with its operation's index.
    pub fn run(&self, forced: Option<usize>) -> Result<Ran, (usize, Failure)> {
        let mut world = self.world(forced);
        let mut ran = Ran::default();
        for (i, op) in self.ops.iter().take(MAX_OPS).enumerate() {
            if !allowed(op, &world) {
                ran.skipped += 1;
                continue;
            }
            world.apply(op).map_err(|f| (i, f))?;
            ran.applied += 1;
        }
        Ok(ran)
    }

    /// The operations the run applies (allowed ones, in a world that
    /// runs them until the first failure, included).
    pub fn applied(&self, forced: Option<usize>) -> Vec<Op> {
        let mut world = self.world(forced);
        let mut ops = Vec::new();
        for op in self.ops.iter().take(MAX_OPS) {
            if allowed(op, &world) {
                ops.push(*op);
                if world.apply(op).is_err() {
                    break;
                }
            }
        }
        ops
    }

    /// The bytes [`Program::decode`] turns back into this program.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.preset, u8::from(self.fcse), u8::from(self.aligned)];
        for op in &self.ops {
            out.push(1);
            encode_op(op, &mut out);
        }
        out
    }

    /// A readable listing: configuration, then one operation a line.
    pub fn listing(&self, forced: Option<usize>) -> String {
        use core::fmt::Write;
        let (model, switching, aligned) = self.configuration(forced);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {switching:?} aligned={aligned}, {} operations",
            presets()[model].0,
            self.ops.len()
        );
        for op in &self.ops {
            let _ = writeln!(s, "  {op:?},");
        }
        s
    }
}

/// The `u32` the derived `Arbitrary` of an enum of `count` variants reads
/// as variant `index`: `(u64::from(x) * count) >> 32 == index`.
fn variant(index: u32, count: u32, out: &mut Vec<u8>) {
    let x = ((u64::from(index) << 32).div_ceil(u64::from(count))) as u32;
    debug_assert_eq!((u64::from(x) * u64::from(count)) >> 32, u64::from(index));
    out.extend_from_slice(&x.to_le_bytes());
}

fn encode_addr(at: UserAddr, out: &mut Vec<u8>) {
    out.extend([at.vma, at.page]);
    out.extend_from_slice(&at.word.to_le_bytes());
}

fn encode_option_u32(v: Option<u32>, out: &mut Vec<u8>) {
    match v {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => out.push(0),
    }
}

fn encode_prot(prot: Prot, out: &mut Vec<u8>) {
    let i = match prot {
        Prot::None => 0,
        Prot::Read => 1,
        Prot::ReadWrite => 2,
        Prot::ReadExec => 3,
        Prot::ReadWriteExec => 4,
    };
    variant(i, 5, out);
}

fn encode_op(op: &Op, out: &mut Vec<u8>) {
    const VARIANTS: u32 = 21;
    match *op {
        Op::Load { proc, at } => {
            variant(0, VARIANTS, out);
            out.push(proc);
            encode_addr(at, out);
        }
        Op::Store { proc, at, value } => {
            variant(1, VARIANTS, out);
            out.push(proc);
            encode_addr(at, out);
            out.extend_from_slice(&value.to_le_bytes());
        }
        Op::Fetch { proc, at } => {
            variant(2, VARIANTS, out);
            out.push(proc);
            encode_addr(at, out);
        }
        Op::CodeRewrite { proc, at, value } => {
            variant(3, VARIANTS, out);
            out.push(proc);
            encode_addr(at, out);
            out.extend_from_slice(&value.to_le_bytes());
        }
        Op::Mmap {
            proc,
            kind,
            pages,
            prot,
            fixed,
        } => {
            variant(4, VARIANTS, out);
            out.push(proc);
            match kind {
                MapKind::PrivateAnon => variant(0, 4, out),
                MapKind::SharedAnon => variant(1, 4, out),
                MapKind::SharedFile { file, page } => {
                    variant(2, 4, out);
                    out.extend([file, page]);
                }
                MapKind::PrivateFile { file, page } => {
                    variant(3, 4, out);
                    out.extend([file, page]);
                }
            }
            out.push(pages);
            encode_prot(prot, out);
            match fixed {
                Some(page) => {
                    out.push(1);
                    out.extend_from_slice(&page.to_le_bytes());
                }
                None => out.push(0),
            }
        }
        Op::Munmap {
            proc,
            vma,
            first,
            pages,
        } => {
            variant(5, VARIANTS, out);
            out.extend([proc, vma, first, pages]);
        }
        Op::Mprotect {
            proc,
            vma,
            first,
            pages,
            prot,
        } => {
            variant(6, VARIANTS, out);
            out.extend([proc, vma, first, pages]);
            encode_prot(prot, out);
        }
        Op::Brk { proc, pages, bytes } => {
            variant(7, VARIANTS, out);
            out.extend([proc, pages]);
            out.extend_from_slice(&bytes.to_le_bytes());
        }
        Op::Switch { to } => {
            variant(8, VARIANTS, out);
            out.push(to);
        }
        Op::Fork { proc } => {
            variant(9, VARIANTS, out);
            out.push(proc);
        }
        Op::Exit { proc } => {
            variant(10, VARIANTS, out);
            out.push(proc);
        }
        Op::Exec { proc } => {
            variant(11, VARIANTS, out);
            out.push(proc);
        }
        Op::KernelWrite {
            file,
            page,
            word,
            value,
            via,
        } => {
            variant(12, VARIANTS, out);
            out.extend([file, page]);
            out.extend_from_slice(&word.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
            let via = match via {
                KernelWriteVia::Kmap => 0,
                KernelWriteVia::PageCacheWrite => 1,
            };
            variant(via, 2, out);
        }
        Op::KernelRead { file, page, word } => {
            variant(13, VARIANTS, out);
            out.extend([file, page]);
            out.extend_from_slice(&word.to_le_bytes());
        }
        Op::KernelScratch {
            first_line,
            lines,
            value,
        } => {
            variant(20, VARIANTS, out);
            out.extend([first_line, lines]);
            out.extend_from_slice(&value.to_le_bytes());
        }
        Op::Dma {
            start,
            words,
            dir,
            fill,
        } => {
            variant(14, VARIANTS, out);
            out.extend_from_slice(&start.to_le_bytes());
            out.push(words);
            let dir = match dir {
                DmaDir::ToDevice => 0,
                DmaDir::FromDevice => 1,
                DmaDir::Bidirectional => 2,
            };
            variant(dir, 3, out);
            out.push(fill);
        }
        Op::BufferMap { proc } => {
            variant(15, VARIANTS, out);
            out.push(proc);
        }
        Op::BufferHandOver => variant(16, VARIANTS, out),
        Op::BufferUser { proc, word, store } => {
            variant(17, VARIANTS, out);
            out.push(proc);
            out.extend_from_slice(&word.to_le_bytes());
            encode_option_u32(store, out);
        }
        Op::BufferKernel { word, store } => {
            variant(18, VARIANTS, out);
            out.extend_from_slice(&word.to_le_bytes());
            encode_option_u32(store, out);
        }
        Op::Invalid { which, value } => {
            variant(19, VARIANTS, out);
            out.push(which);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::vec::Vec;

    use super::*;
    use crate::check::{XorShift, random_op};

    /// A random program of `ops` operations in configuration `preset` of
    /// [`PRESETS`]: the generator's, as it ran.
    fn random_program(preset: usize, aligned: bool, seed: u32, ops: usize) -> Program {
        let (_, model, switching) = PRESETS[preset];
        let mut program = Program {
            preset: model as u8,
            fcse: switching == Switching::Fcse,
            aligned,
            ops: Vec::new(),
        };
        let mut world = program.world(None);
        let mut rng = XorShift::new(seed);
        for _ in 0..ops {
            let op = random_op(&mut rng, &world);
            program.ops.push(op);
            if world.apply(&op).is_err() {
                break;
            }
        }
        program
    }

    /// `encode` is the inverse of the derived decoding, for every variant
    /// and field value the generator makes.
    #[test]
    fn encoding_round_trips() {
        for preset in 0..PRESETS.len() {
            for aligned in [true, false] {
                let program = random_program(preset, aligned, 0x1234 + preset as u32, 400);
                let decoded = Program::decode(&program.encode()).expect("decodes");
                assert_eq!(decoded, program);
            }
        }
        // Every variant, with fields the generator does not pick.
        let at = UserAddr {
            vma: 255,
            page: 1,
            word: 0xffff,
        };
        let ops = vec![
            Op::Fetch { proc: 3, at },
            Op::Mmap {
                proc: 1,
                kind: MapKind::PrivateFile { file: 9, page: 8 },
                pages: 7,
                prot: Prot::None,
                fixed: Some(0xffff),
            },
            Op::Mmap {
                proc: 1,
                kind: MapKind::SharedAnon,
                pages: 7,
                prot: Prot::ReadWriteExec,
                fixed: None,
            },
            Op::Exec { proc: 2 },
            Op::KernelRead {
                file: 1,
                page: 2,
                word: 3,
            },
            Op::BufferHandOver,
            Op::BufferUser {
                proc: 0,
                word: 5,
                store: None,
            },
            Op::BufferKernel {
                word: 5,
                store: Some(u32::MAX),
            },
            Op::Invalid {
                which: 200,
                value: 0xdead_beef,
            },
            Op::KernelScratch {
                first_line: 200,
                lines: 255,
                value: 0x5c5c_5c5c,
            },
        ];
        let program = Program {
            preset: 200,
            fcse: true,
            aligned: false,
            ops,
        };
        assert_eq!(Program::decode(&program.encode()).unwrap(), program);
    }

    /// The committed seed corpus decodes and runs clean (what the fuzzer's
    /// first pass over it does, without libFuzzer).
    #[test]
    fn seed_corpus_runs_clean() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ops");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let program = Program::decode(&bytes).unwrap();
            if let Err((i, f)) = program.run(None) {
                panic!("{}: op {i}: {f}", path.display());
            }
        }
    }

    /// What the fuzzer found and `cargo xtask fuzz --merge-corpus` kept
    /// (`fuzz/corpus/ops-finds/<preset>`, inputs that added coverage)
    /// decodes and runs clean under the preset it was found on: the short
    /// fuzzing run of `cargo xtask test` does not read them (libFuzzer's
    /// first pass over them would take its ten seconds many times over).
    #[test]
    fn fuzz_finds_run_clean() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ops-finds");
        let Ok(presets) = std::fs::read_dir(&dir) else {
            return;
        };
        for preset_dir in presets {
            let preset_dir = preset_dir.unwrap().path();
            let name = preset_dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let forced = PRESETS
                .iter()
                .position(|(n, ..)| *n == name)
                .unwrap_or_else(|| panic!("{}: no such preset", preset_dir.display()));
            for entry in std::fs::read_dir(&preset_dir).unwrap() {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                let Ok(program) = Program::decode(&bytes) else {
                    continue;
                };
                if let Err((i, f)) = program.run(Some(forced)) {
                    panic!("{}: op {i}: {f}", path.display());
                }
            }
        }
    }

    /// A tool, not a test: writes the seed corpus, `fuzz/corpus/ops/`, from
    /// the generator's programs: every configuration of [`PRESETS`], both
    /// alignments where the cache aliases, a few seeds, [`MAX_OPS`]
    /// operations (programs that fail are left out). Run with `cargo test
    /// --features arbitrary --lib check::fuzz::tests::write_seed_corpus --
    /// --ignored`.
    #[test]
    #[ignore = "tool: writes fuzz/corpus/ops (see its docs)"]
    fn write_seed_corpus() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ops");
        std::fs::create_dir_all(&dir).unwrap();
        let mut written = 0;
        for (preset, (name, model, _)) in PRESETS.iter().enumerate() {
            let aliases = presets()[*model].1.info().kind.aliases();
            for aligned in [true, false].into_iter().filter(|&a| a || aliases) {
                for seed in 1..=4u32 {
                    let seed = 0x9e37_79b9u32.wrapping_mul(seed) ^ preset as u32;
                    let program = random_program(preset, aligned, seed, MAX_OPS);
                    if program.run(None).is_err() {
                        std::eprintln!("{name} aligned={aligned} seed {seed:#x}: fails, left out");
                        continue;
                    }
                    let file = std::format!(
                        "seed-{name}-{}-{seed:08x}",
                        if aligned { "aligned" } else { "unaligned" }
                    );
                    std::fs::write(dir.join(file), program.encode()).unwrap();
                    written += 1;
                }
            }
        }
        std::eprintln!("{written} programs written to {}", dir.display());
    }

    /// A tool, not a test: decodes a crash artifact (`ARTIFACT=path`,
    /// `VACMM_FUZZ_PRESET` as the run had it), prints its configuration and
    /// the operations it applies, shrinks them to a failing program and
    /// prints that. Run with `cargo test --features arbitrary --lib
    /// check::fuzz::tests::shrink_an_artifact -- --ignored --nocapture`.
    #[test]
    #[ignore = "tool: shrinks a fuzzer's crash artifact (see its docs)"]
    fn shrink_an_artifact() {
        let path = std::env::var("ARTIFACT").expect("ARTIFACT=path of a crash artifact");
        let program = Program::decode(&std::fs::read(&path).unwrap()).unwrap();
        let forced = forced_preset();
        std::eprintln!("{}", program.listing(forced));
        let applied = program.applied(forced);
        let make = || program.world(forced);
        let small = crate::check::shrink(&make, &applied);
        let shrunk = Program {
            ops: small.clone(),
            ..program.clone()
        };
        std::eprintln!("shrunk to {} operations:", small.len());
        std::eprintln!("{}", shrunk.listing(forced));
        match crate::check::replay(&make, &small) {
            Some((i, f)) => std::eprintln!("op {i}: {f}"),
            None => std::eprintln!("(the shrunk program passes: no failure reproduced)"),
        }
    }
}
