//! `cargo xtask fuzz`: coverage-guided fuzzing of the coherence engine on
//! the cache model (cargo-fuzz, libFuzzer), target `ops` of `fuzz/`: bytes
//! decode to a configuration and a program of operations
//! (`vacmm::check::fuzz::Program`); an oracle violation, a content mismatch
//! or an unexpected error is the crash.
//!
//! For each preset the run starts from the committed seed corpus
//! (`fuzz/corpus/ops`) and keeps what it finds in a scratch corpus under
//! `target/fuzz/corpus/<preset>`, so the repository stays clean;
//! `--merge-corpus` merges the new finds that add coverage back into the
//! committed corpus (libFuzzer's `-merge=1` keeps every input that adds a
//! feature: after 5 minutes of one preset that is some 280 files, 1.2 MiB,
//! so review before committing). A crash is written to `target/fuzz/artifacts/<preset>/`
//! and printed decoded (`cargo fuzz fmt`).
//!
//! The target is built without a sanitizer (`-s none`): the engine and the
//! model are safe Rust, the judges are the oracle and the content reference,
//! and AddressSanitizer would cost throughput for nothing they check.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cargo;
use crate::flags::Flags;

/// The cargo-fuzz `cargo xtask fuzz` installs when it is missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The fuzz target.
const TARGET: &str = "ops";
/// The build flags of every cargo-fuzz call (they must agree, or each call
/// rebuilds): release, no sanitizer.
const BUILD_FLAGS: [&str; 3] = ["-O", "-s", "none"];
/// The configurations (`VACMM_FUZZ_PRESET`, see `vacmm::check::fuzz::PRESETS`).
pub const PRESETS: [&str; 6] = [
    "arm926",
    "arm1136-32k",
    "arm1136-64k",
    "arm1176",
    "pipt",
    "arm926-fcse",
];

/// What to run.
pub struct Options {
    /// Seconds per preset.
    pub seconds: u64,
    /// The presets, in order.
    pub presets: Vec<String>,
    /// Merge new finds into `fuzz/corpus/ops`.
    pub merge_corpus: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            seconds: 5 * 60,
            presets: Vec::new(),
            merge_corpus: false,
        };
        let mut flags = Flags::new("fuzz", args);
        while let Some(flag) = flags.next_flag() {
            match flag.name {
                "--minutes" | "--seconds" => {
                    let v = flags.value(&flag)?;
                    let n: u64 = v
                        .parse()
                        .map_err(|_| format!("fuzz: {} {v:?} is not a number", flag.name))?;
                    options.seconds = if flag.name == "--minutes" { n * 60 } else { n };
                }
                "--preset" => {
                    let v = flags.value(&flag)?;
                    for p in v.split(',') {
                        if p != "all" && !PRESETS.contains(&p) {
                            return Err(format!("fuzz: --preset {p:?}: one of {PRESETS:?} or all"));
                        }
                        options.presets.push(p.to_string());
                    }
                }
                "--merge-corpus" => options.merge_corpus = true,
                _ => return Err(format!("fuzz: unrecognised argument {:?}", flag.arg)),
            }
        }
        if options.presets.is_empty() || options.presets.iter().any(|p| p == "all") {
            options.presets = PRESETS.iter().map(|p| p.to_string()).collect();
        }
        if options.seconds == 0 {
            return Err("fuzz: a run of zero seconds".into());
        }
        Ok(options)
    }
}

/// One preset's run, from libFuzzer's last status line.
#[derive(Default)]
pub struct Report {
    pub preset: String,
    pub seconds: u64,
    pub execs: u64,
    pub cov: u64,
    pub ft: u64,
    pub corpus: u64,
    /// The crash artifact and its decoded program, if the run crashed.
    pub crash: Option<(PathBuf, String)>,
    /// Whatever else went wrong.
    pub problem: Option<String>,
}

pub fn run(options: &Options) -> Result<(), String> {
    let reports = fuzz(options)?;
    let failed: Vec<&Report> = reports
        .iter()
        .filter(|r| r.crash.is_some() || r.problem.is_some())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        let names: Vec<&str> = failed.iter().map(|r| r.preset.as_str()).collect();
        Err(format!("fuzzing failed on {}", names.join(", ")))
    }
}

fn fuzz_dir() -> PathBuf {
    cargo::root().join("fuzz")
}

/// A `cargo fuzz` command in `fuzz/` (needs the nightly toolchain, the
/// project's).
fn cargo_fuzz(subcommand: &str) -> Command {
    let mut command = cargo::cargo();
    command.current_dir(fuzz_dir());
    command.args(["fuzz", subcommand]);
    command
}

/// Installs cargo-fuzz unless `cargo fuzz` runs.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let runs = cargo::cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs {
        return Ok(());
    }
    println!("==== installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    let status = cargo::cargo()
        .args(["install", "cargo-fuzz", "--locked", "--version"])
        .arg(CARGO_FUZZ_VERSION)
        .status()
        .map_err(|e| format!("cannot run cargo install: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo install cargo-fuzz failed ({status})"))
    }
}

/// Builds the target; the seconds it took.
pub fn build() -> Result<f64, String> {
    ensure_cargo_fuzz()?;
    println!("==== cargo fuzz build {} {TARGET}", BUILD_FLAGS.join(" "));
    let started = Instant::now();
    let status = cargo_fuzz("build")
        .args(BUILD_FLAGS)
        .arg(TARGET)
        .status()
        .map_err(|e| format!("cannot run cargo fuzz build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo fuzz build failed ({status})"));
    }
    let secs = started.elapsed().as_secs_f64();
    println!("built in {secs:.0} s");
    Ok(secs)
}

/// Builds, then fuzzes each preset of `options`; a report per preset.
pub fn fuzz(options: &Options) -> Result<Vec<Report>, String> {
    build()?;
    let scratch = cargo::target_dir()?.join("fuzz");
    let mut reports = Vec::new();
    for preset in &options.presets {
        println!(
            "==== fuzzing {TARGET} on {preset} for {} s",
            options.seconds
        );
        let report = run_preset(preset, options.seconds, &scratch);
        print_report(&report);
        reports.push(report);
        if options.merge_corpus {
            let corpus = scratch.join("corpus").join(preset);
            merge(&corpus)?;
        }
    }
    println!("\n==== fuzzing summary");
    println!(
        "{:<12} {:>6} {:>9} {:>6} {:>7} {:>7}  result",
        "preset", "s", "execs", "cov", "ft", "corpus"
    );
    for r in &reports {
        let result = match (&r.crash, &r.problem) {
            (Some((path, _)), _) => format!("CRASH {}", path.display()),
            (None, Some(p)) => format!("FAILED: {p}"),
            (None, None) => "ok".into(),
        };
        println!(
            "{:<12} {:>6} {:>9} {:>6} {:>7} {:>7}  {result}",
            r.preset, r.seconds, r.execs, r.cov, r.ft, r.corpus
        );
    }
    Ok(reports)
}

fn run_preset(preset: &str, seconds: u64, scratch: &Path) -> Report {
    let mut report = Report {
        preset: preset.into(),
        seconds,
        ..Report::default()
    };
    let corpus = scratch.join("corpus").join(preset);
    let artifacts = scratch.join("artifacts").join(preset);
    let log = scratch.join(format!("{preset}.log"));
    for dir in [&corpus, &artifacts] {
        if let Err(e) = std::fs::create_dir_all(dir) {
            report.problem = Some(format!("cannot create {}: {e}", dir.display()));
            return report;
        }
    }
    let before = crashes(&artifacts);
    let log_file = match std::fs::File::create(&log) {
        Ok(f) => f,
        Err(e) => {
            report.problem = Some(format!("cannot create {}: {e}", log.display()));
            return report;
        }
    };
    let seeds = fuzz_dir().join("corpus").join(TARGET);
    let status = cargo_fuzz("run")
        .args(BUILD_FLAGS)
        .arg(TARGET)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .env("VACMM_FUZZ_PRESET", preset)
        .stdout(Stdio::null())
        .stderr(log_file)
        .status();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    read_stats(&text, &mut report);
    println!("(libFuzzer's output: {})", log.display());
    // The artifact libFuzzer names (an input that crashed before keeps
    // its name), else any new one.
    let named = text
        .lines()
        .find_map(|l| l.split_once("Test unit written to "))
        .map(|(_, path)| PathBuf::from(path.trim()));
    let new = crashes(&artifacts)
        .into_iter()
        .find(|p| !before.contains(p));
    if let Some(artifact) = named.or(new) {
        let decoded = decode(preset, &artifact);
        let listing = artifact.with_extension("txt");
        let decoded = match std::fs::write(&listing, &decoded) {
            Ok(()) => format!("decoded (cargo fuzz fmt): {}", listing.display()),
            Err(_) => decoded,
        };
        // libFuzzer's panic message: the failure and the last operations.
        let panic = text
            .lines()
            .skip_while(|l| !l.contains("panicked at"))
            .take(60)
            .collect::<Vec<_>>()
            .join("\n");
        report.crash = Some((artifact, format!("{panic}\n{decoded}")));
        return report;
    }
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => report.problem = Some(format!("cargo fuzz run ended with {s}")),
        Err(e) => report.problem = Some(format!("cannot run cargo fuzz run: {e}")),
    }
    report
}

/// libFuzzer's counts: the last `#N ... cov: C ft: F corp: K/...` line.
fn read_stats(text: &str, report: &mut Report) {
    let number = |line: &str, key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    for line in text.lines().filter(|l| l.starts_with('#')) {
        if let Some(n) = number(line, "#") {
            report.execs = n;
        }
        if let Some(c) = number(line, "cov:") {
            report.cov = c;
        }
        if let Some(f) = number(line, "ft:") {
            report.ft = f;
        }
        if let Some(k) = number(line, "corp:") {
            report.corpus = k;
        }
    }
    if let Some(n) = text
        .lines()
        .find_map(|l| number(l, "stat::number_of_executed_units:"))
    {
        report.execs = n;
    }
}

fn crashes(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("crash-") || n.starts_with("timeout-"))
        })
        .collect()
}

/// `cargo fuzz fmt`: the artifact as the program it decodes to.
fn decode(preset: &str, artifact: &Path) -> String {
    let output = cargo_fuzz("fmt")
        .args(BUILD_FLAGS)
        .arg(TARGET)
        .arg(artifact)
        .env("VACMM_FUZZ_PRESET", preset)
        .output();
    match output {
        Ok(o) => format!(
            "{}{}\nshrink it: VACMM_FUZZ_PRESET={preset} ARTIFACT={} cargo test --features \
             arbitrary --lib check::fuzz::tests::shrink_an_artifact -- --ignored --nocapture",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .filter(|l| !l.trim_start().starts_with("Finished")
                    && !l.trim_start().starts_with("Running"))
                .collect::<Vec<_>>()
                .join("\n"),
            artifact.display()
        ),
        Err(e) => format!("cannot run cargo fuzz fmt: {e}"),
    }
}

/// Merges the inputs of `scratch` that add coverage into the committed
/// corpus (libFuzzer's `-merge=1`).
fn merge(scratch: &Path) -> Result<(), String> {
    let seeds = fuzz_dir().join("corpus").join(TARGET);
    println!(
        "==== merging new finds of {} into {}",
        scratch.display(),
        seeds.display()
    );
    let status = cargo_fuzz("run")
        .args(BUILD_FLAGS)
        .arg(TARGET)
        .arg(&seeds)
        .arg(scratch)
        .args(["--", "-merge=1"])
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run the merge: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the corpus merge failed ({status})"))
    }
}

fn print_report(r: &Report) {
    println!(
        "{}: {} s, {} executions, cov {}, ft {}, corpus {}",
        r.preset, r.seconds, r.execs, r.cov, r.ft, r.corpus
    );
    if let Some((path, text)) = &r.crash {
        println!("CRASH: {}\n{text}", path.display());
    }
    if let Some(p) = &r.problem {
        println!("FAILED: {p}");
    }
}

/// The short run of `cargo xtask test`: every preset of
/// [`SHORT_RUN_PRESETS`] for [`SHORT_RUN_SECONDS`].
pub fn short_run() -> Result<(), String> {
    run(&Options {
        seconds: SHORT_RUN_SECONDS,
        presets: SHORT_RUN_PRESETS.iter().map(|p| p.to_string()).collect(),
        merge_corpus: false,
    })
}

/// Seconds per preset of the short run.
pub const SHORT_RUN_SECONDS: u64 = 10;

/// The short run's presets: all of them.
pub const SHORT_RUN_PRESETS: [&str; 6] = PRESETS;
