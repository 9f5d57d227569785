//! vacmm's project commands.
//!
//! ```text
//! cargo xtask test                     fmt, clippy (host + ARM), host tests,
//!                                      runner timeout check, on-target tests
//!                                      on arm926, arm1136 and arm1176
//! cargo xtask demo [--cpu <cpu>]       boot the demo kernel (default arm926)
//! cargo xtask bench                    the host benchmarks (criterion)
//! cargo xtask sanitize [--cpu <cpu>]   on-target suites under the cache
//!   [--geometry G] [--demo]            sanitizer plugin (qemu/cachesan)
//! cargo xtask prereq                   install the prerequisites only
//! ```
//!
//! Both install what they need and is missing (the nightly `rust-src`
//! component, `qemu-system-arm`) before they start.

mod cargo;
mod prereq;
mod sanitize;
mod test;

use std::process::ExitCode;

use cargo::Cpu;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test                  fmt, clippy, host tests and on-target tests under QEMU
                        on arm926, arm1136 and arm1176, then a summary table
  demo [--cpu <cpu>]    build and boot the demo kernel; <cpu> is arm926
                        (default), arm1136 or arm1176
  bench                 the host benchmarks (criterion; cache-model throughput)
  sanitize [--cpu <cpu>]... [--geometry SIZE[:WAYS[:LINE]]] [--demo]
                        the on-target suites under the cache sanitizer (QEMU
                        plugin qemu/cachesan): no violation allowed, and the
                        negative controls must be reported as they expect;
                        default: all three CPUs with their preset caches
  prereq                install what the others need (rust-src, rustfmt, clippy,
                        qemu-system-arm 10.0 or newer) and nothing else
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") if args.len() == 1 => test::run(),
        Some("demo") => parse_demo_args(&args[1..]).and_then(demo),
        Some("bench") if args.len() == 1 => bench(),
        Some("prereq") if args.len() == 1 => prereq::ensure_all(),
        Some("sanitize") => {
            sanitize::Options::parse(&args[1..]).and_then(|options| sanitize::run(&options))
        }
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

/// Runs every criterion benchmark on the host, release profile.
fn bench() -> Result<(), String> {
    let status = cargo::cargo()
        .args(["bench", "--features", "vacmm/sim"])
        .status()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo bench failed ({status})"))
    }
}

fn parse_demo_args(args: &[String]) -> Result<Cpu, String> {
    match args {
        [] => Ok(Cpu::Arm926),
        [flag, cpu] if flag == "--cpu" => cpu.parse(),
        [flag] if flag.starts_with("--cpu=") => flag["--cpu=".len()..].parse(),
        _ => Err(format!("demo: unrecognised arguments {args:?}\n\n{USAGE}")),
    }
}

/// Builds the demo kernel for `cpu`'s target and boots it; fails if the
/// kernel exits non-zero.
fn demo(cpu: Cpu) -> Result<(), String> {
    prereq::ensure_all()?;
    let elf = cargo::build_bin(cpu.target(), "vacmm-demo")?;
    let run = cargo::run_on_qemu(&elf, cpu, None)?;
    if run.status == Some(0) {
        Ok(())
    } else {
        Err(format!(
            "the demo kernel on {cpu} ended with {}",
            run.describe_status()
        ))
    }
}
