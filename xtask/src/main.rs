//! vacmm's project commands.
//!
//! ```text
//! cargo xtask test                     fmt, clippy (host + ARM), host tests,
//!                                      runner timeout check, on-target tests
//!                                      and the demo on arm926, arm1136-r2,
//!                                      arm1136, arm1176 and arm11mpcore on
//!                                      versatilepb and on raspi0, kzm and
//!                                      realview-eb-mpcore, all again under
//!                                      cachesan; raspi0's raw kernel.img
//! cargo xtask demo [--board <board>]   boot the demo kernel (default
//!   [--cpu <cpu>] [--dcache-kib <KiB>] versatilepb, arm926)
//! cargo xtask image --board raspi0     kernel.img files a Raspberry Pi's
//!   [--suite <suite>]...               firmware boots: the on-target suites
//! cargo xtask bench                    the coherence benchmark (vacmm-bench),
//!                                      the criterion benchmarks and the
//!                                      cache sanitizer's overhead
//! cargo xtask sanitize [--cpu <cpu>]   on-target suites under the cache
//!   [--board B] [--geometry G] [--demo] sanitizer plugin (qemu/cachesan)
//! cargo xtask fuzz [--minutes N]       coverage-guided fuzzing (cargo-fuzz)
//!   [--target T] [--preset P]          of the engine on the cache model
//!   [--merge-corpus]                   (ops) and of the pure layer (pure_*)
//! cargo xtask linux [--cpu arm926]     Debian's Linux 6.1 booting the test
//!   [--sanitize]                       init (qemu/linux/), plainly and under
//!                                      cachesan, checked against
//!                                      docs/cachesan-linux.md
//! cargo xtask prereq                   install the prerequisites only
//! cargo xtask mutants [--shard K/N] [--timeout-multiplier X]
//!   [--resume] [--strong] [--report PATH] [--list] [--tally]
//!   [-- <cargo-mutants args>]
//!                                      mutation testing of src/coherence,
//!                                      src/mmu and the host-testable cache
//!                                      and register code (.cargo/mutants.toml)
//!                                      against the host suites; the score
//!                                      and every survivor by file:line;
//!                                      results kept in docs/mutants-ledger.txt
//! cargo xtask coverage [--fail-under PCT] [--report-only]
//!                                      line coverage of the host suites for
//!                                      src/coherence, src/mm and src/mmu,
//!                                      per directory and file, with the
//!                                      uncovered lines
//! ```
//!
//! All install what they need and is missing (the nightly `rust-src`
//! component, `qemu-system-arm`; cargo-mutants, cargo-llvm-cov and
//! `llvm-tools` for the two measuring commands, at pinned versions) before
//! they start. `mutants` and `coverage` are not part of `test`: they
//! measure the tests and take long (see `cargo xtask mutants --list`).

mod bench;
mod cargo;
mod coverage;
mod flags;
mod fuzz;
mod image;
mod linux;
mod mutants;
mod package;
mod prereq;
mod sanitize;
mod test;

use std::process::ExitCode;

use cargo::{Board, Machine};
use flags::Flags;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test                  fmt, clippy, host tests, on-target tests and the demo
                        under QEMU on versatilepb with arm926, arm1136-r2,
                        arm1136, arm1176 and arm11mpcore, and on the boards
                        raspi0 (ARM1176), kzm (ARM1136) and
                        realview-eb-mpcore, all of them again under the
                        cache sanitizer (arm926, arm1136-r2, arm1136 64K and
                        32K, arm1176, arm11mpcore, and the three boards);
                        the raw kernel.img booted on raspi0 as the Pi's
                        firmware would; then a summary table
  demo [--board <board>] [--cpu <cpu>] [--dcache-kib <KiB>]
                        build and boot the demo kernel; <board> is
                        versatilepb (default), raspi0, kzm or
                        realview-eb-mpcore; <cpu> (versatilepb only) is
                        arm926 (default), arm1136-r2, arm1136, arm1176 or
                        arm11mpcore; --dcache-kib overrides
                        the D-cache size (4-way, 32-byte lines), e.g. 32 for
                        the aliasing ARM1136 of 32 KiB
  image --board raspi0 [--suite <suite>]... [--boot]
                        raw kernel.img files for a Raspberry Pi Zero / 1
                        (loaded at 0x8000 by its firmware, no semihosting:
                        the report goes to the UART, then the CPU halts),
                        one per on-target suite (default all), written to
                        target/image/raspi0/<suite>/kernel.img; --boot
                        then boots each in QEMU raspi0 as the firmware
                        would (what cargo xtask test checks)
  bench                 the coherence benchmark on the cache model (vacmm beside
                        Linux-like, NetBSD-like, flush-everything, all-uncached
                        and the PIPT limit; writes bench/results/), the
                        criterion benchmarks, and the cache sanitizer's
                        overhead (suites and demo with and without the
                        plugin), with their targets as ratios
  sanitize [--cpu <cpu>]... [--board <board>] [--geometry SIZE[:WAYS[:LINE]]] [--demo]
                        the on-target suites under the cache sanitizer (QEMU
                        plugin qemu/cachesan): no violation allowed, and the
                        negative controls must be reported as they expect;
                        default: all five CPUs with their preset caches on
                        versatilepb; --board: that board and its CPU;
                        --demo adds the demo kernel and its twin that leaves
                        out flush_dcache_page
  fuzz [--minutes N | --seconds S] [--target T]... [--preset P]... [--merge-corpus]
                        coverage-guided fuzzing (cargo-fuzz, libFuzzer) of
                        target T (default all): ops, the operation
                        interpreter over the engine and the cache model (an
                        oracle violation or a content mismatch is a crash),
                        once per preset P (arm926, arm1136-32k, arm1136-64k,
                        arm1176, pipt, arm926-fcse; default all); pure_addr,
                        pure_cache, pure_mm, pure_mmu, the pure layer against
                        models (a broken property is a crash). N minutes
                        (default 5) per run, seeded from fuzz/corpus/<T>, new
                        finds kept in target/fuzz/corpus/<preset or T>;
                        --merge-corpus merges those that add coverage into
                        fuzz/corpus/<T> (ops: fuzz/corpus/ops-finds/<P>)
  linux [--cpu arm926|arm1176]... [--sanitize] [--bench]
                        Debian's Linux 6.1 (installed with the ARM cross
                        compiler if missing), built small from qemu/linux/
                        and kept in ~/.cache/vacmm/linux, boots the test
                        init (qemu/linux/init/) whose checks must all pass;
                        --sanitize runs it again under cachesan, whose
                        reports must be those docs/cachesan-linux.md lists;
                        --bench only measures plain QEMU, QEMU's contrib
                        cache plugin and cachesan on the versatilepb boot
                        (the Linux row of bench)
  package               what a dependent meets: the docs as docs.rs builds
                        them (host, armv5te, armv6), cargo publish --dry-run,
                        the library without the alloc feature, and a build
                        with the declared rust-version (part of test)
  prereq                install what the others need (rust-src, rustfmt, clippy,
                        qemu-system-arm 10.0 or newer) and nothing else
  mutants [--shard K/N] [--timeout-multiplier X] [--resume] [--strong]
          [--report PATH] [--list] [--tally] [-- <cargo-mutants args>]
                        mutation testing (cargo-mutants, installed if missing)
                        of src/coherence, src/mmu, src/cache's range logic and
                        src/arch/regs.rs, as .cargo/mutants.toml says, against
                        `cargo test -p vacmm --features sim --tests` with the
                        random programs and the exhaustive run shortened
                        (VACMM_CASES/VACMM_OPS/VACMM_EXHAUSTIVE_DEPTH unless
                        set; --strong: near full size, for survivors);
                        every result goes to the committed ledger
                        docs/mutants-ledger.txt; --resume skips what it says
                        is caught for the files as they are, so a run may
                        stop anywhere and go on later; --tally gathers the
                        last run into it and prints the score over the tree
                        as it is; K counts from 0; writes mutants.out/
                        and prints viable, caught, missed (by file:line),
                        unviable, timeouts and caught/(caught+missed);
                        --report writes the survivors as Markdown; --list only
                        counts the mutants per area and estimates the shards
  coverage [--fail-under PCT] [--report-only]
                        line coverage (cargo-llvm-cov and llvm-tools, installed
                        if missing) of `cargo test -p vacmm --features sim` for
                        src/coherence, src/mm and src/mmu: per directory, per
                        file and the uncovered line ranges (test code left
                        out); --fail-under fails if a directory is below PCT;
                        --report-only reads the last run's data again
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") if args.len() == 1 => test::run(),
        Some("demo") => parse_demo_args(&args[1..]).and_then(|demo| run_demo(&demo)),
        Some("bench") if args.len() == 1 => bench::run(),
        Some("fuzz") => fuzz::Options::parse(&args[1..]).and_then(|options| fuzz::run(&options)),
        Some("prereq") if args.len() == 1 => prereq::ensure_all(),
        Some("package") if args.len() == 1 => package::run_all(),
        Some("mutants") => {
            mutants::Options::parse(&args[1..]).and_then(|options| mutants::run(&options))
        }
        Some("coverage") => {
            coverage::Options::parse(&args[1..]).and_then(|options| coverage::run(&options))
        }
        Some("image") => image::run(&args[1..]),
        Some("sanitize") => {
            sanitize::Options::parse(&args[1..]).and_then(|options| sanitize::run(&options))
        }
        Some("linux") => linux::Options::parse(&args[1..]).and_then(|options| linux::run(&options)),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(format!("unrecognised arguments {args:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What `cargo xtask demo` boots.
pub struct Demo {
    pub machine: Machine,
    /// D-cache size override, KiB.
    pub dcache_kib: Option<u32>,
}

fn parse_demo_args(args: &[String]) -> Result<Demo, String> {
    let (mut board, mut cpu, mut dcache_kib) = (Board::Versatilepb, None, None);
    let mut flags = Flags::new("demo", args);
    while let Some(flag) = flags.next_flag() {
        let mut value = || flags.value(&flag).map_err(|e| format!("{e}\n\n{USAGE}"));
        match flag.name {
            "--board" => board = value()?.parse()?,
            "--cpu" => cpu = Some(value()?.parse()?),
            "--dcache-kib" => {
                let v = value()?;
                let kib: u32 = v
                    .parse()
                    .map_err(|_| format!("demo: --dcache-kib {v:?} is not a number of KiB"))?;
                if !(kib.is_power_of_two() && (4..=128).contains(&kib)) {
                    return Err(format!(
                        "demo: --dcache-kib {kib}: a 4-way cache of 4 to 128 KiB, a power of two"
                    ));
                }
                dcache_kib = Some(kib);
            }
            _ => {
                return Err(format!(
                    "demo: unrecognised argument {:?}\n\n{USAGE}",
                    flag.arg
                ));
            }
        }
    }
    Ok(Demo {
        machine: board.with_cpu(cpu).map_err(|e| format!("demo: {e}"))?,
        dcache_kib,
    })
}

/// Builds the demo kernel for the CPU's target and boots it; fails unless
/// the kernel exits 0 (every program checked out).
fn run_demo(demo: &Demo) -> Result<(), String> {
    prereq::ensure_all()?;
    let elf = cargo::build_bin(demo.machine.cpu.target(), demo.machine.board, "vacmm-demo")?;
    boot_demo(&elf, demo).map(|_| ())
}

/// Boots an already built demo kernel; Ok with its console lines when it
/// exited 0.
pub fn boot_demo(elf: &std::path::Path, demo: &Demo) -> Result<Vec<String>, String> {
    let args = demo.dcache_kib.map(|kib| format!("vacmm-dcache-kib={kib}"));
    let run = cargo::run_on_qemu_with_args(elf, demo.machine, None, args.as_deref())?;
    if run.status == Some(0) {
        Ok(run.lines)
    } else {
        Err(format!(
            "the demo kernel on {} ended with {}",
            demo.machine,
            run.describe_status()
        ))
    }
}
