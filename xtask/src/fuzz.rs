//! `cargo xtask fuzz`: coverage-guided fuzzing (cargo-fuzz, libFuzzer) of
//! the targets of `fuzz/`:
//! - `ops`, the coherence engine on the cache model: bytes decode to a
//!   configuration and a program of operations
//!   (`vacmm::check::fuzz::Program`); an oracle violation, a content
//!   mismatch or an unexpected error is the crash. It runs once per preset.
//! - `pure_addr`, `pure_cache`, `pure_mm`, `pure_mmu`, the pure layer:
//!   each input is a sequence of calls judged against a model
//!   (`vacmm::check::pure`); a broken property is the crash.
//!
//! Each run (a preset of `ops`, or a pure target) starts from the target's
//! committed seed corpus (`fuzz/corpus/<target>`) and keeps what it finds in
//! a scratch corpus under `target/fuzz/corpus/<run>`, so the repository
//! stays clean; `--merge-corpus` merges the new finds that add coverage
//! back into the repository (libFuzzer's `-merge=1` keeps every input that
//! adds a feature: after 5 minutes of one preset of `ops` that is some 280
//! files, 1.2 MiB, so review before committing). For a pure target that is
//! its seed corpus; for `ops` it is `fuzz/corpus/ops-finds/<preset>`, kept
//! apart from the generator's seeds (`fuzz/corpus/ops`): a run of `ops`
//! reads its preset's finds too, except the short run of `cargo xtask
//! test`, whose ten seconds libFuzzer's first pass over hundreds of finds
//! would spend (the host test `check::fuzz::tests::fuzz_finds_run_clean`
//! replays them instead). A crash is written to
//! `target/fuzz/artifacts/<run>/` and printed decoded (`cargo fuzz fmt`).
//!
//! The targets are built without a sanitizer (`-s none`): the engine and
//! the model are safe Rust, the judges are the oracle, the content
//! reference and the models, and AddressSanitizer would cost throughput for
//! nothing they check. They are built with debug assertions and overflow
//! checks (`-a`): an arithmetic overflow on any input is a crash too
//! (issue 19).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cargo;
use crate::flags::Flags;

/// The cargo-fuzz `cargo xtask fuzz` installs when it is missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The engine's fuzz target, the one that runs once per preset.
const OPS: &str = "ops";
/// Every fuzz target of `fuzz/`, in the order they run.
pub const TARGETS: [&str; 5] = [OPS, "pure_addr", "pure_cache", "pure_mm", "pure_mmu"];
/// The build flags of every cargo-fuzz call (they must agree, or each call
/// rebuilds): release with debug assertions and overflow checks, no
/// sanitizer.
const BUILD_FLAGS: [&str; 4] = ["-O", "-a", "-s", "none"];
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
    /// Seconds per run (a preset of `ops`, or a pure target).
    pub seconds: u64,
    /// The targets, in order.
    pub targets: Vec<String>,
    /// The presets of `ops`, in order.
    pub presets: Vec<String>,
    /// Merge new finds into the repository (see the module documentation).
    pub merge_corpus: bool,
    /// Read `fuzz/corpus/ops-finds/<preset>` too (every run but the
    /// short one).
    pub read_finds: bool,
}

/// One run: a target, and for `ops` its preset.
struct Run<'a> {
    target: &'a str,
    preset: Option<&'a str>,
}

impl Run<'_> {
    /// The run's name: the preset for `ops` (as before there were other
    /// targets), else the target.
    fn name(&self) -> &str {
        self.preset.unwrap_or(self.target)
    }
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            seconds: 5 * 60,
            targets: Vec::new(),
            presets: Vec::new(),
            merge_corpus: false,
            read_finds: true,
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
                "--target" => {
                    let v = flags.value(&flag)?;
                    for t in v.split(',') {
                        if t != "all" && !TARGETS.contains(&t) {
                            return Err(format!("fuzz: --target {t:?}: one of {TARGETS:?} or all"));
                        }
                        options.targets.push(t.to_string());
                    }
                }
                "--merge-corpus" => options.merge_corpus = true,
                _ => return Err(format!("fuzz: unrecognised argument {:?}", flag.arg)),
            }
        }
        if options.presets.is_empty() || options.presets.iter().any(|p| p == "all") {
            options.presets = PRESETS.iter().map(|p| p.to_string()).collect();
        }
        if options.targets.is_empty() || options.targets.iter().any(|t| t == "all") {
            options.targets = TARGETS.iter().map(|t| t.to_string()).collect();
        }
        if options.seconds == 0 {
            return Err("fuzz: a run of zero seconds".into());
        }
        Ok(options)
    }
}

/// One run, from libFuzzer's last status line.
#[derive(Default)]
pub struct Report {
    /// The preset of `ops`, or the pure target.
    pub run: String,
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
        let names: Vec<&str> = failed.iter().map(|r| r.run.as_str()).collect();
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

/// Builds `targets` (all of them when it is every target, in one cargo
/// call); the seconds it took.
pub fn build(targets: &[String]) -> Result<f64, String> {
    ensure_cargo_fuzz()?;
    let all = TARGETS.iter().all(|t| targets.iter().any(|u| u == t));
    let started = Instant::now();
    // `cargo fuzz build` without a target builds them all.
    let names: Vec<&str> = if all {
        vec![""]
    } else {
        targets.iter().map(String::as_str).collect()
    };
    for target in names {
        println!("==== cargo fuzz build {} {target}", BUILD_FLAGS.join(" "));
        let status = cargo_fuzz("build")
            .args(BUILD_FLAGS)
            .args((!target.is_empty()).then_some(target))
            .status()
            .map_err(|e| format!("cannot run cargo fuzz build: {e}"))?;
        if !status.success() {
            return Err(format!("cargo fuzz build {target} failed ({status})"));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("built in {secs:.0} s");
    Ok(secs)
}

/// Builds, then fuzzes each target of `options` (`ops` once per preset);
/// a report per run.
pub fn fuzz(options: &Options) -> Result<Vec<Report>, String> {
    build(&options.targets)?;
    let scratch = cargo::target_directory()?.join("fuzz");
    let runs: Vec<Run> = options
        .targets
        .iter()
        .flat_map(|target| {
            let presets: Vec<Option<&str>> = if target == OPS {
                options.presets.iter().map(|p| Some(p.as_str())).collect()
            } else {
                vec![None]
            };
            presets
                .into_iter()
                .map(move |preset| Run { target, preset })
        })
        .collect();
    let mut reports = Vec::new();
    for run in &runs {
        let on = run.preset.map(|p| format!(" on {p}")).unwrap_or_default();
        println!("==== fuzzing {}{on} for {} s", run.target, options.seconds);
        let report = run_one(run, options.seconds, &scratch, options.read_finds);
        print_report(&report);
        reports.push(report);
        if options.merge_corpus {
            let corpus = scratch.join("corpus").join(run.name());
            merge(run, &corpus)?;
        }
    }
    println!("\n==== fuzzing summary");
    println!(
        "{:<12} {:>6} {:>9} {:>6} {:>7} {:>7}  result",
        "run", "s", "execs", "cov", "ft", "corpus"
    );
    for r in &reports {
        let result = match (&r.crash, &r.problem) {
            (Some((path, _)), _) => format!("CRASH {}", path.display()),
            (None, Some(p)) => format!("FAILED: {p}"),
            (None, None) => "ok".into(),
        };
        println!(
            "{:<12} {:>6} {:>9} {:>6} {:>7} {:>7}  {result}",
            r.run, r.seconds, r.execs, r.cov, r.ft, r.corpus
        );
    }
    Ok(reports)
}

/// Where `--merge-corpus` keeps `run`'s finds: `fuzz/corpus/ops-finds/<preset>`
/// for `ops`, the seed corpus for a pure target.
fn finds_dir(run: &Run) -> PathBuf {
    let corpus = fuzz_dir().join("corpus");
    match run.preset {
        Some(preset) => corpus.join("ops-finds").join(preset),
        None => corpus.join(run.target),
    }
}

fn run_one(run: &Run, seconds: u64, scratch: &Path, read_finds: bool) -> Report {
    let name = run.name();
    let mut report = Report {
        run: name.into(),
        seconds,
        ..Report::default()
    };
    let corpus = scratch.join("corpus").join(name);
    let artifacts = scratch.join("artifacts").join(name);
    let log = scratch.join(format!("{name}.log"));
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
    let seeds = fuzz_dir().join("corpus").join(run.target);
    let mut command = cargo_fuzz("run");
    command
        .args(BUILD_FLAGS)
        .arg(run.target)
        .arg(&corpus)
        .arg(&seeds)
        .args(Some(finds_dir(run)).filter(|dir| read_finds && run.preset.is_some() && dir.is_dir()))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stdout(Stdio::null())
        .stderr(log_file);
    if let Some(preset) = run.preset {
        command.env("VACMM_FUZZ_PRESET", preset);
    }
    let status = command.status();
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
        let decoded = decode(run, &artifact);
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

/// `cargo fuzz fmt`: the artifact as the input it decodes to.
fn decode(run: &Run, artifact: &Path) -> String {
    let mut command = cargo_fuzz("fmt");
    command.args(BUILD_FLAGS).arg(run.target).arg(artifact);
    if let Some(preset) = run.preset {
        command.env("VACMM_FUZZ_PRESET", preset);
    }
    let shrink = match run.preset {
        Some(preset) => format!(
            "\nshrink it: VACMM_FUZZ_PRESET={preset} ARTIFACT={} cargo test --features \
             arbitrary --lib check::fuzz::tests::shrink_an_artifact -- --ignored --nocapture",
            artifact.display()
        ),
        // A pure target's input is small already; libFuzzer minimises it:
        // `cargo fuzz tmin <target> <artifact>`.
        None => format!(
            "\nminimise it: (cd fuzz && cargo fuzz tmin {} {} {})",
            BUILD_FLAGS.join(" "),
            run.target,
            artifact.display()
        ),
    };
    match command.output() {
        Ok(o) => format!(
            "{}{}{shrink}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .filter(|l| !l.trim_start().starts_with("Finished")
                    && !l.trim_start().starts_with("Running"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Err(e) => format!("cannot run cargo fuzz fmt: {e}"),
    }
}

/// Merges the inputs of `scratch` that add coverage into `run`'s finds
/// ([`finds_dir`]), judged as the run judged them (its preset forced).
/// libFuzzer's `-merge=1` keeps what adds coverage beyond its first
/// directory; for `ops`, whose finds live apart from the seeds, that first
/// directory is a scratch copy of seeds and finds together, and only the
/// inputs new to it are kept, so the finds never repeat what the seeds
/// cover.
fn merge(run: &Run, scratch: &Path) -> Result<(), String> {
    let finds = finds_dir(run);
    std::fs::create_dir_all(&finds)
        .map_err(|e| format!("cannot create {}: {e}", finds.display()))?;
    println!(
        "==== merging new finds of {} into {}",
        scratch.display(),
        finds.display()
    );
    let into = match run.preset {
        None => finds.clone(),
        Some(_) => {
            let both = scratch.with_file_name(format!("{}-merge", run.name()));
            let _ = std::fs::remove_dir_all(&both);
            std::fs::create_dir_all(&both)
                .map_err(|e| format!("cannot create {}: {e}", both.display()))?;
            let seeds = fuzz_dir().join("corpus").join(run.target);
            for dir in [&seeds, &finds] {
                copy_files(dir, &both)?;
            }
            both
        }
    };
    let known = file_names(&into);
    let mut command = cargo_fuzz("run");
    command
        .args(BUILD_FLAGS)
        .arg(run.target)
        .arg(&into)
        .arg(scratch)
        .args(["--", "-merge=1"])
        .stderr(Stdio::null());
    if let Some(preset) = run.preset {
        command.env("VACMM_FUZZ_PRESET", preset);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run the merge: {e}"))?;
    if !status.success() {
        return Err(format!("the corpus merge failed ({status})"));
    }
    if into != finds {
        let mut added = 0;
        for name in file_names(&into).difference(&known) {
            std::fs::copy(into.join(name), finds.join(name))
                .map_err(|e| format!("cannot copy {name} into {}: {e}", finds.display()))?;
            added += 1;
        }
        println!("{added} new inputs kept in {}", finds.display());
    }
    Ok(())
}

/// The names of the files in `dir` (none if it cannot be read).
fn file_names(dir: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Copies every file of `from` (if it exists) into `to`.
fn copy_files(from: &Path, to: &Path) -> Result<(), String> {
    for name in file_names(from) {
        std::fs::copy(from.join(&name), to.join(&name)).map_err(|e| {
            format!(
                "cannot copy {} into {}: {e}",
                from.join(&name).display(),
                to.display()
            )
        })?;
    }
    Ok(())
}

fn print_report(r: &Report) {
    println!(
        "{}: {} s, {} executions, cov {}, ft {}, corpus {}",
        r.run, r.seconds, r.execs, r.cov, r.ft, r.corpus
    );
    if let Some((path, text)) = &r.crash {
        println!("CRASH: {}\n{text}", path.display());
    }
    if let Some(p) = &r.problem {
        println!("FAILED: {p}");
    }
}

/// The short run of `cargo xtask test`: every target, `ops` on every
/// preset of [`SHORT_RUN_PRESETS`], each run for [`SHORT_RUN_SECONDS`].
pub fn short_run() -> Result<(), String> {
    run(&Options {
        seconds: SHORT_RUN_SECONDS,
        targets: TARGETS.iter().map(|t| t.to_string()).collect(),
        presets: SHORT_RUN_PRESETS.iter().map(|p| p.to_string()).collect(),
        merge_corpus: false,
        read_finds: false,
    })
}

/// Seconds per run (preset of `ops`, or pure target) of the short run.
pub const SHORT_RUN_SECONDS: u64 = 10;

/// The short run's presets: all of them.
pub const SHORT_RUN_PRESETS: [&str; 6] = PRESETS;
