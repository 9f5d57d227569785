//! `cargo xtask mutants`: mutation testing of the host-testable core with
//! cargo-mutants (pinned, installed when missing, see [`prereq`]).
//!
//! What is mutated is set in `.cargo/mutants.toml`, which also says why:
//! `src/coherence`, `src/mmu` (less the ARM-only `enable.rs`), the range
//! and plan logic of `src/cache/maintenance.rs` and `src/cache/range.rs`,
//! and of `src/arch` only the typed register values of `regs.rs` — the rest
//! of `src/arch` is inline assembly compiled for ARM only, which the host
//! suites cannot see (cargo-mutants ignores `#[cfg(target_arch = "arm")]`,
//! so its mutants would all "survive"). Each mutant is judged by the host
//! suites, `cargo test -p vacmm --features sim --lib` (the unit tests,
//! which stop at the first failure; doctests are left out, like in `cargo xtask
//! coverage`).
//!
//! Each mutant's test run is shortened ([`QUICK`]): the random programs
//! (`VACMM_CASES` / `VACMM_OPS`) and the bounded exhaustive run
//! (`VACMM_EXHAUSTIVE_DEPTH`), unless the environment sets them. The
//! full-size suite takes minutes of CPU per run, which over 1,200 mutants
//! on two cores is days; the quick one is a few seconds, and what it
//! catches the full suite catches too (a shorter program of the same seed
//! is a prefix of the longer one). A survivor may still be caught by the
//! full size only: `--resume --strong` runs the survivors again at
//! [`STRONG`] before any is written off.
//!
//! Runs are long: `--resume` skips every mutant that an earlier run,
//! finished or stopped, caught or found unviable ([`Ledger`]).
//!
//! Results go to `mutants.out/` (the previous run's to `mutants.out.old/`),
//! and the command prints the counts, the score caught / (caught + missed)
//! and every survivor by file:line; `--report PATH` writes the survivors as
//! Markdown. `--list` only counts the mutants per area and estimates the
//! shards (cheap: nothing is built).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cargo;
use crate::flags::Flags;
use crate::prereq::{self, CARGO_MUTANTS};

/// How big a mutant's test run is: random programs per preset (default
/// 256), operations per program (default 10,000), the bounded
/// exhaustive run's depth (default 3), the operations of each program of
/// the policy × switcher × cache sweep (default 300, over 2,010
/// combinations: the biggest test at the default size) and of the strict
/// (audited) random programs (default 1,500).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuiteSize {
    pub cases: u32,
    pub ops: u32,
    pub exhaustive_depth: u32,
    pub sweep_ops: u32,
    /// One answer set in this many (every named policy always).
    pub sweep_every: u32,
    pub strict_ops: u32,
}

/// The default, quick suite: each mutant's run costs a few seconds of CPU.
/// Every program is a prefix of the full-size program of the same seed and
/// depth 1 is a subset of depth 3, so a mutant caught here is caught by
/// the full suite too; a survivor is worth a `--strong` run. Depth 1, not
/// 2: the exhaustive run builds a world (three L1 tables zeroed through
/// the model, 12,288 stores) for every sequence, which at depth 2 is
/// 9 s of a 10 s test run, at depth 1 under half a second.
pub const QUICK: SuiteSize = SuiteSize {
    cases: 2,
    ops: 2_000,
    exhaustive_depth: 1,
    sweep_ops: 30,
    sweep_every: 8,
    strict_ops: 300,
};

/// `--strong`: for the survivors of a quick pass (with `--resume`, only
/// they run): about the size `cargo xtask test` runs, less the exhaustive
/// depth's minutes.
pub const STRONG: SuiteSize = SuiteSize {
    cases: 16,
    ops: 10_000,
    exhaustive_depth: 3,
    sweep_ops: 300,
    sweep_every: 1,
    strict_ops: 1_500,
};
/// What one shard may take on the project's 2-core machine, seconds.
pub const SHARD_BUDGET_S: f64 = 2.0 * 3600.0;
/// The shard count to run with (`--shard K/6`). Measured on the project's
/// 2-core machine, shared with other builds: a mutant takes about 16 s
/// (incremental build 2-18 s, one test run 5-7 s), a shard's clean build
/// and baseline about 130 s, so 1,175 mutants in 6 shards take about an
/// hour each; the rest of the two hours is room for a busier machine and
/// for mutants that hang until their timeout (60 s or more each).
/// `cargo xtask mutants --list` recomputes the estimate from the last run.
pub const SHARDS: u32 = 6;
/// Per-mutant and baseline seconds `--list` assumes when no earlier run
/// in `mutants.out` measured them (the measurement above).
const ASSUMED_MUTANT_S: f64 = 16.0;
const ASSUMED_BASELINE_S: f64 = 130.0;

/// The areas the summary counts by, as path prefixes.
const AREAS: [&str; 4] = ["src/coherence/", "src/mmu/", "src/cache/", "src/arch/"];

/// `--shard K/N`: run the K-th of N equal parts (K counts from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad =
            || format!("mutants: --shard {s:?}: expected K/N with 0 <= K < N, e.g. 0/{SHARDS}");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What `cargo xtask mutants` was asked to do.
#[derive(Debug, Default, PartialEq)]
pub struct Options {
    pub shard: Option<Shard>,
    pub timeout_multiplier: Option<f64>,
    /// Write the survivors as Markdown here.
    pub report: Option<PathBuf>,
    /// Only count the mutants (`cargo mutants --list`).
    pub list: bool,
    /// Skip what earlier runs caught (see [`Ledger`]).
    pub resume: bool,
    /// Judge with the [`STRONG`] suite instead of the [`QUICK`] one.
    pub strong: bool,
    /// Only gather the last run into the ledger and count, over every
    /// mutant of the tree as it is, what the ledger says of it.
    pub tally: bool,
    /// Passed to cargo-mutants as they are (after `--`).
    pub extra: Vec<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let (ours, extra) = match args.iter().position(|a| a == "--") {
            Some(i) => (&args[..i], args[i + 1..].to_vec()),
            None => (args, Vec::new()),
        };
        let mut options = Options {
            extra,
            ..Options::default()
        };
        let mut flags = Flags::new("mutants", ours);
        while let Some(flag) = flags.next_flag() {
            match flag.name {
                "--shard" => options.shard = Some(flags.value(&flag)?.parse()?),
                "--timeout-multiplier" => {
                    let v = flags.value(&flag)?;
                    let x: f64 = v.parse().map_err(|_| {
                        format!("mutants: --timeout-multiplier {v:?} is not a number")
                    })?;
                    if !(x.is_finite() && x > 0.0) {
                        return Err(format!(
                            "mutants: --timeout-multiplier {v}: must be above 0"
                        ));
                    }
                    options.timeout_multiplier = Some(x);
                }
                "--report" => options.report = Some(PathBuf::from(flags.value(&flag)?)),
                "--list" if flag.inline.is_none() => options.list = true,
                "--resume" if flag.inline.is_none() => options.resume = true,
                "--strong" if flag.inline.is_none() => options.strong = true,
                "--tally" if flag.inline.is_none() => options.tally = true,
                _ => {
                    return Err(format!(
                        "mutants: unrecognised argument {:?} (cargo-mutants' own options go after `--`)\n\n{}",
                        flag.arg,
                        crate::USAGE
                    ));
                }
            }
        }
        Ok(options)
    }
}

pub fn run(options: &Options) -> Result<(), String> {
    prereq::ensure_cargo_tool(&CARGO_MUTANTS)?;
    if options.list {
        return list(options);
    }
    let mut command = cargo::cargo();
    command.arg("mutants");
    if let Some(shard) = options.shard {
        command.arg(format!("--shard={shard}"));
    }
    if let Some(x) = options.timeout_multiplier {
        command.arg(format!("--timeout-multiplier={x}"));
    }
    command.args(&options.extra);
    let base = explicit_output(&options.extra).unwrap_or_else(|| cargo::root().join("mutants"));
    if explicit_output(&options.extra).is_none() {
        std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        command.arg("--output").arg(&base);
    }
    let dir = base.join("mutants.out");
    let sources = mutated_sources()?;
    let ledger_path = cargo::root().join(Ledger::PATH);
    if options.tally {
        let ledger = Ledger::gather(&base, &ledger_path, &sources)?;
        print!("{}", Tally::new(&ledger, &current_mutants()?).render());
        return Ok(());
    }
    if options.resume {
        let ledger = Ledger::gather(&base, &ledger_path, &sources)?;
        eprintln!(
            "xtask: --resume: {} mutants caught or unviable in earlier runs over the same \
             files are skipped ({})",
            ledger.settled(),
            Ledger::PATH
        );
        command.arg("--iterate");
    }
    Ledger::record_run(&base, &sources)?;
    let size = if options.strong { STRONG } else { QUICK };
    for (name, value) in [
        ("VACMM_CASES", size.cases),
        ("VACMM_OPS", size.ops),
        ("VACMM_EXHAUSTIVE_DEPTH", size.exhaustive_depth),
        ("VACMM_SWEEP_OPS", size.sweep_ops),
        ("VACMM_SWEEP_EVERY", size.sweep_every),
        ("VACMM_STRICT_OPS", size.strict_ops),
    ] {
        match std::env::var(name) {
            Ok(set) => eprintln!("xtask: {name}={set} (from the environment)"),
            Err(_) => {
                command.env(name, value.to_string());
            }
        }
    }
    eprintln!(
        "xtask: cargo mutants{} (configuration: .cargo/mutants.toml)",
        options
            .shard
            .map(|s| format!(" --shard {s}"))
            .unwrap_or_default()
    );
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo mutants: {e}"))?;
    // 0: all caught, 2: some missed, 3: some timed out; anything else means
    // the run itself did not happen (1 usage, 4 baseline failing, 70 internal).
    let completed = matches!(status.code(), Some(0 | 2 | 3));
    let outcomes_path = dir.join("outcomes.json");
    if !completed {
        let hint = match status.code() {
            Some(1) => "a usage error: check the arguments after `--`",
            Some(4) => {
                "the unmutated tree fails its tests (the baseline): fix `cargo test --features sim` first"
            }
            _ => "see its output above",
        };
        return Err(format!(
            "cargo mutants did not complete ({status}): {hint}; logs in {}",
            dir.display()
        ));
    }
    let text = std::fs::read_to_string(&outcomes_path)
        .map_err(|e| format!("cannot read {}: {e}", outcomes_path.display()))?;
    let summary =
        Summary::from_outcomes(&text).map_err(|e| format!("{}: {e}", outcomes_path.display()))?;
    print!("{}", summary.render(options.shard));
    let ledger = Ledger::gather(&base, &ledger_path, &sources)?;
    print!("{}", Tally::new(&ledger, &current_mutants()?).render());
    if let Some(path) = &options.report {
        std::fs::write(path, summary.markdown(options.shard))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("survivors written to {}", path.display());
    }
    Ok(())
}

/// Every result of every run, kept in [`Ledger::PATH`] (committed: it is
/// the record the score in `docs/verification.md` is read from, and it
/// outlives the machine a run was made on), so that a run can be stopped
/// at any point and resumed (`--resume`) in another session.
///
/// cargo-mutants' own `--iterate` reads `caught.txt`, `unviable.txt` and
/// `previously_caught.txt` of the last `mutants.out` only, and writes
/// `previously_caught.txt` only when a run completes: a run stopped half
/// way would drop everything before it. The ledger gathers the last run's
/// lists (they grow while a run goes) and hands the caught and unviable
/// names that still hold to `--iterate` as `previously_caught.txt`;
/// missed and timed-out mutants run again (a test added since may catch
/// them).
///
/// Mutants are named by file, line, column and change, so a result holds
/// only for the file it was found in as it was then: each ledger line
/// carries the git blob id of its file as the run saw it
/// (`last-run-sources.txt`, written as a run starts), and only lines whose
/// file is unchanged are kept. Commits that change tests, or other files,
/// keep a file's results: a test added can only catch more. (A test
/// weakened or removed in between is the one thing this trusts the
/// reviewer to see.) Of two results for one mutant, the later run's
/// stands.
pub struct Ledger {
    /// Mutant name → (blob of its file, outcome).
    entries: BTreeMap<String, (String, Outcome)>,
}

/// What a run found of one mutant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Caught,
    Unviable,
    Missed,
    Timeout,
}

impl Outcome {
    /// cargo-mutants' list of each outcome in `mutants.out`.
    const LISTS: [(&'static str, Outcome); 4] = [
        ("caught.txt", Outcome::Caught),
        ("unviable.txt", Outcome::Unviable),
        ("missed.txt", Outcome::Missed),
        ("timeout.txt", Outcome::Timeout),
    ];

    fn word(self) -> &'static str {
        match self {
            Outcome::Caught => "caught",
            Outcome::Unviable => "unviable",
            Outcome::Missed => "missed",
            Outcome::Timeout => "timeout",
        }
    }

    fn from_word(word: &str) -> Option<Outcome> {
        Outcome::LISTS
            .iter()
            .map(|&(_, o)| o)
            .find(|o| o.word() == word)
    }

    /// Settled: not worth running again until its file changes.
    fn settled(self) -> bool {
        matches!(self, Outcome::Caught | Outcome::Unviable)
    }
}

/// Mutated file → git blob id.
type Sources = BTreeMap<String, String>;

impl Ledger {
    /// Where the ledger is kept, from the workspace root.
    pub const PATH: &'static str = "docs/mutants-ledger.txt";
    const RUN_SOURCES: &'static str = "last-run-sources.txt";
    const HEADER: &'static str = "\
# cargo xtask mutants: every mutant's last result, one per line:
# <git blob id of the file as judged> <caught|unviable|missed|timeout> <mutant>
# Written by `cargo xtask mutants` (`--resume`, `--tally`); lines whose file
# has changed since are dropped. See docs/verification.md, mutation testing.
";

    /// Merges the last run's lists in `base/mutants.out` into the ledger
    /// at `ledger_path`, keeps what holds for `current`, writes it, and
    /// puts the settled names where `--iterate` reads them (and nothing
    /// else there: cargo-mutants would also skip names its `caught.txt`
    /// lists from other sources).
    pub fn gather(base: &Path, ledger_path: &Path, current: &Sources) -> Result<Ledger, String> {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        let mut entries = BTreeMap::new();
        for line in read(ledger_path).lines() {
            let mut fields = line.splitn(3, ' ');
            if let (Some(blob), Some(word), Some(name)) =
                (fields.next(), fields.next(), fields.next())
                && !line.starts_with('#')
            {
                let outcome = Outcome::from_word(word).ok_or_else(|| {
                    format!("{}: unknown outcome in {line:?}", ledger_path.display())
                })?;
                entries.insert(name.to_string(), (blob.to_string(), outcome));
            }
        }
        let out = base.join("mutants.out");
        let run = parse_sources(&read(&base.join(Self::RUN_SOURCES)));
        for (list, outcome) in Outcome::LISTS {
            for name in read(&out.join(list)).lines().filter(|l| !l.is_empty()) {
                if let Some(blob) = run.get(file_of(name)) {
                    entries.insert(name.to_string(), (blob.clone(), outcome));
                }
            }
        }
        entries.retain(|name, (blob, _)| current.get(file_of(name)) == Some(blob));
        let mut text = String::from(Self::HEADER);
        for (name, (blob, outcome)) in &entries {
            let _ = writeln!(text, "{blob} {} {name}", outcome.word());
        }
        std::fs::write(ledger_path, text).map_err(|e| format!("{}: {e}", ledger_path.display()))?;
        std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let settled: String = entries
            .iter()
            .filter(|(_, (_, o))| o.settled())
            .map(|(name, _)| format!("{name}\n"))
            .collect();
        let handed = [("previously_caught.txt", settled.as_str())];
        for (list, body) in Outcome::LISTS.iter().map(|&(l, _)| (l, "")).chain(handed) {
            let path = out.join(list);
            std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(Ledger { entries })
    }

    /// Records the sources a run is about to mutate, for the next gather.
    pub fn record_run(base: &Path, sources: &Sources) -> Result<(), String> {
        let path = base.join(Self::RUN_SOURCES);
        let text: String = sources
            .iter()
            .map(|(file, blob)| format!("{file} {blob}\n"))
            .collect();
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// How many mutants are settled (caught or unviable).
    pub fn settled(&self) -> usize {
        self.entries.values().filter(|(_, o)| o.settled()).count()
    }

    /// The ledger's result for a mutant, if it has one for its file as it
    /// is now.
    pub fn outcome(&self, name: &str) -> Option<Outcome> {
        self.entries.get(name).map(|&(_, o)| o)
    }
}

/// The file a mutant's name starts with (`src/x.rs:12:5: replace …`).
fn file_of(name: &str) -> &str {
    name.split_once(':').map_or(name, |(file, _)| file)
}

fn parse_sources(text: &str) -> Sources {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(file, blob)| (file.to_string(), blob.to_string()))
        .collect()
}

fn output_dir(extra: &[String]) -> PathBuf {
    explicit_output(extra)
        .unwrap_or_else(|| cargo::root().join("mutants"))
        .join("mutants.out")
}

/// The directory cargo-mutants' own `--output` names, if given.
fn explicit_output(extra: &[String]) -> Option<PathBuf> {
    let mut base = None;
    let mut args = extra.iter();
    while let Some(arg) = args.next() {
        if let Some(v) = arg.strip_prefix("--output=") {
            base = Some(cargo::root().join(v));
        } else if (arg == "--output" || arg == "-o")
            && let Some(v) = args.next()
        {
            base = Some(cargo::root().join(v));
        }
    }
    base
}

/// The files cargo-mutants mutates (`cargo mutants --list-files`, as
/// `.cargo/mutants.toml` selects them) and the git blob id of each as it
/// is in the working tree.
fn mutated_sources() -> Result<Sources, String> {
    let listed = cargo::cargo()
        .args(["mutants", "--list-files"])
        .output()
        .map_err(|e| format!("cannot run cargo mutants --list-files: {e}"))?;
    if !listed.status.success() {
        return Err(format!(
            "cargo mutants --list-files failed ({}):\n{}",
            listed.status,
            String::from_utf8_lossy(&listed.stderr)
        ));
    }
    let files: Vec<&str> = std::str::from_utf8(&listed.stdout)
        .map_err(|_| "cargo mutants --list-files printed a path that is not UTF-8".to_string())?
        .lines()
        .filter(|l| !l.is_empty())
        .collect();
    let blobs = git_hash_objects(&["--stdin-paths"], &files.join("\n"))?;
    Ok(files
        .iter()
        .zip(blobs.lines())
        .map(|(file, blob)| (file.to_string(), blob.to_string()))
        .collect())
}

/// `git hash-object ARGS` at the root with `input` on its standard input.
fn git_hash_objects(args: &[&str], input: &str) -> Result<String, String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("git")
        .arg("hash-object")
        .args(args)
        .current_dir(cargo::root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run git hash-object: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .map_err(|e| format!("git hash-object: {e}"))?;
    let output = child
        .wait_with_output()
        .map_err(|e| format!("git hash-object: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "git hash-object {args:?} failed ({})",
            output.status
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| "git hash-object: not UTF-8".to_string())
}

/// `--list`: the mutants per area and file, and how many shards of under
/// two hours they need.
/// `cargo mutants --list --json`: every mutant `.cargo/mutants.toml`
/// selects (of one shard, if given).
fn listed_mutants(shard: Option<Shard>, extra: &[String]) -> Result<Vec<Value>, String> {
    let mut command = cargo::cargo();
    command.args(["mutants", "--list", "--json"]);
    if let Some(shard) = shard {
        command.arg(format!("--shard={shard}"));
    }
    command.args(extra);
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo mutants --list: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo mutants --list failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let listed: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo mutants --list --json printed no JSON: {e}"))?;
    match listed {
        Value::Array(mutants) => Ok(mutants),
        _ => Err("cargo mutants --list --json: expected an array".into()),
    }
}

/// The names of every mutant of the tree as it is (all shards).
fn current_mutants() -> Result<Vec<String>, String> {
    Ok(listed_mutants(None, &[])?
        .iter()
        .map(|m| m["name"].as_str().unwrap_or("?").to_string())
        .collect())
}

/// What the ledger says of every mutant of the tree as it is.
#[derive(Debug, Default, PartialEq)]
pub struct Tally {
    pub mutants: usize,
    pub caught: usize,
    pub unviable: usize,
    /// Not caught, by name.
    pub missed: Vec<String>,
    /// The tests did not finish within the timeout: a hang, detected.
    pub timeouts: Vec<String>,
    /// No result for the file as it is now: still to run.
    pub unjudged: usize,
}

impl Tally {
    pub fn new(ledger: &Ledger, mutants: &[String]) -> Tally {
        let mut tally = Tally {
            mutants: mutants.len(),
            ..Tally::default()
        };
        for name in mutants {
            match ledger.outcome(name) {
                Some(Outcome::Caught) => tally.caught += 1,
                Some(Outcome::Unviable) => tally.unviable += 1,
                Some(Outcome::Missed) => tally.missed.push(name.clone()),
                Some(Outcome::Timeout) => tally.timeouts.push(name.clone()),
                None => tally.unjudged += 1,
            }
        }
        tally
    }

    /// Detected (caught or timed out) / viable judged, `None` before any.
    pub fn score(&self) -> Option<f64> {
        let detected = self.caught + self.timeouts.len();
        let viable = detected + self.missed.len();
        (viable > 0).then(|| detected as f64 / viable as f64)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let score = percent(self.score());
        let _ = writeln!(
            out,
            "\nthe ledger ({}) over the tree as it is:",
            Ledger::PATH
        );
        let _ = writeln!(out, "  mutants   {:>5}", self.mutants);
        let _ = writeln!(
            out,
            "  unjudged  {:>5}  (no result for the file as it is)",
            self.unjudged
        );
        let _ = writeln!(out, "  unviable  {:>5}", self.unviable);
        let _ = writeln!(out, "  caught    {:>5}", self.caught);
        let _ = writeln!(
            out,
            "  timeouts  {:>5}  (the tests hung: detected)",
            self.timeouts.len()
        );
        let _ = writeln!(out, "  missed    {:>5}", self.missed.len());
        let _ = writeln!(
            out,
            "  score     {score:>5}  (caught + timeouts) / (caught + timeouts + missed)"
        );
        for (title, list) in [("missed", &self.missed), ("timed out", &self.timeouts)] {
            if !list.is_empty() {
                let _ = writeln!(out, "{title}:");
                for name in list {
                    let _ = writeln!(out, "  {name}");
                }
            }
        }
        out
    }
}

fn list(options: &Options) -> Result<(), String> {
    let files: Vec<String> = listed_mutants(options.shard, &options.extra)?
        .iter()
        .map(|m| m["file"].as_str().unwrap_or("?").to_string())
        .collect();
    let mut per_file: BTreeMap<&str, usize> = BTreeMap::new();
    for file in &files {
        *per_file.entry(file).or_default() += 1;
    }
    println!("{} mutants", files.len());
    for area in AREAS {
        let in_area: Vec<_> = per_file
            .iter()
            .filter(|(f, _)| f.starts_with(area))
            .collect();
        let total: usize = in_area.iter().map(|(_, n)| **n).sum();
        println!("  {:<40} {total:>5}", area.trim_end_matches('/'));
        for (file, n) in in_area {
            println!("    {file:<38} {n:>5}");
        }
    }
    let measured = measured_seconds(&output_dir(&options.extra).join("outcomes.json"));
    let (per_mutant, baseline, source) = match measured {
        Some((m, b)) => (m, b, "measured by the last run in mutants.out"),
        None => (
            ASSUMED_MUTANT_S,
            ASSUMED_BASELINE_S,
            "assumed: no run measured yet",
        ),
    };
    let shards = shards_needed(files.len(), per_mutant, baseline, SHARD_BUDGET_S);
    println!(
        "per mutant {per_mutant:.0} s, baseline (clean build + first test run) {baseline:.0} s ({source}):\n\
         about {:.1} hours in all; {shards} shards of under {:.0} hours each (CI: --shard K/{SHARDS})",
        (baseline + files.len() as f64 * per_mutant) / 3600.0,
        SHARD_BUDGET_S / 3600.0
    );
    Ok(())
}

/// Mean seconds per tested mutant (build + test) and the baseline's
/// seconds, from an `outcomes.json`; `None` without tested mutants.
fn measured_seconds(path: &Path) -> Option<(f64, f64)> {
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let mut baseline = 0.0;
    let mut mutants = Vec::new();
    for outcome in value["outcomes"].as_array()? {
        let secs: f64 = outcome["phase_results"]
            .as_array()?
            .iter()
            .filter_map(|p| p["duration"].as_f64())
            .sum();
        if outcome["scenario"] == "Baseline" {
            baseline = secs;
        } else if outcome["summary"] != "Unviable" {
            mutants.push(secs);
        }
    }
    (!mutants.is_empty()).then(|| (mutants.iter().sum::<f64>() / mutants.len() as f64, baseline))
}

/// Shards needed so that each one — its baseline plus its share of the
/// mutants — fits in `budget` seconds.
pub fn shards_needed(mutants: usize, per_mutant: f64, baseline: f64, budget: f64) -> u32 {
    let room = budget - baseline;
    if room <= per_mutant {
        return mutants.max(1) as u32;
    }
    let per_shard = (room / per_mutant).floor().max(1.0);
    ((mutants as f64 / per_shard).ceil() as u32).max(1)
}

/// One mutant that was not caught.
#[derive(Debug, PartialEq)]
pub struct Survivor {
    pub file: String,
    pub line: u64,
    /// cargo-mutants' description, e.g. `replace Foo::bar -> bool with true`.
    pub mutation: String,
}

/// The counts of a run, from `mutants.out/outcomes.json`.
#[derive(Debug, Default, PartialEq)]
pub struct Summary {
    pub total: usize,
    pub caught: usize,
    pub missed: Vec<Survivor>,
    pub timeouts: Vec<Survivor>,
    pub unviable: usize,
    /// Mutants whose build or test failed in another way (should be 0).
    pub failures: usize,
    pub baseline_test_s: Option<f64>,
    pub mean_mutant_s: Option<f64>,
}

impl Summary {
    pub fn from_outcomes(text: &str) -> Result<Summary, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not cargo-mutants' JSON: {e}"))?;
        let outcomes = value["outcomes"]
            .as_array()
            .ok_or("no `outcomes` array (is this a cargo-mutants outcomes.json?)")?;
        let mut summary = Summary::default();
        let mut mutant_seconds = Vec::new();
        for outcome in outcomes {
            let phases = outcome["phase_results"].as_array();
            let seconds = |phase: Option<&str>| -> f64 {
                phases
                    .into_iter()
                    .flatten()
                    .filter(|p| phase.is_none_or(|name| p["phase"] == name))
                    .filter_map(|p| p["duration"].as_f64())
                    .sum()
            };
            let Some(mutant) = outcome["scenario"].get("Mutant") else {
                if outcome["scenario"] == "Baseline" {
                    summary.baseline_test_s = Some(seconds(Some("Test")));
                }
                continue;
            };
            summary.total += 1;
            let survivor = || Survivor {
                file: mutant["file"].as_str().unwrap_or("?").to_string(),
                line: mutant["span"]["start"]["line"].as_u64().unwrap_or(0),
                mutation: describe(mutant),
            };
            match outcome["summary"].as_str() {
                Some("CaughtMutant") => summary.caught += 1,
                Some("MissedMutant") => summary.missed.push(survivor()),
                Some("Timeout") => summary.timeouts.push(survivor()),
                Some("Unviable") => summary.unviable += 1,
                _ => summary.failures += 1,
            }
            if outcome["summary"] != "Unviable" {
                mutant_seconds.push(seconds(None));
            }
        }
        if !mutant_seconds.is_empty() {
            summary.mean_mutant_s =
                Some(mutant_seconds.iter().sum::<f64>() / mutant_seconds.len() as f64);
        }
        Ok(summary)
    }

    pub fn viable(&self) -> usize {
        self.total - self.unviable
    }

    /// caught / (caught + missed), `None` when neither happened.
    pub fn score(&self) -> Option<f64> {
        let judged = self.caught + self.missed.len();
        (judged > 0).then(|| self.caught as f64 / judged as f64)
    }

    fn render(&self, shard: Option<Shard>) -> String {
        let mut out = String::new();
        let shard = shard.map(|s| format!(" (shard {s})")).unwrap_or_default();
        let score = percent(self.score());
        let _ = writeln!(out, "\nmutation testing{shard}:");
        let _ = writeln!(out, "  mutants   {:>5}", self.total);
        let _ = writeln!(out, "  viable    {:>5}", self.viable());
        let _ = writeln!(out, "  caught    {:>5}", self.caught);
        let _ = writeln!(out, "  missed    {:>5}", self.missed.len());
        let _ = writeln!(out, "  timeouts  {:>5}", self.timeouts.len());
        let _ = writeln!(out, "  unviable  {:>5}", self.unviable);
        if self.failures > 0 {
            let _ = writeln!(
                out,
                "  other     {:>5}  (see mutants.out/logs)",
                self.failures
            );
        }
        let _ = writeln!(out, "  score     {score:>5}  caught / (caught + missed)");
        if let Some(s) = self.baseline_test_s {
            let _ = writeln!(out, "  one test run of the baseline: {s:.1} s");
        }
        if let Some(s) = self.mean_mutant_s {
            let _ = writeln!(out, "  per viable mutant (build + test): {s:.1} s");
        }
        for (title, list) in [("missed", &self.missed), ("timed out", &self.timeouts)] {
            if !list.is_empty() {
                let _ = writeln!(out, "{title}:");
                for s in list {
                    let _ = writeln!(out, "  {}:{}: {}", s.file, s.line, s.mutation);
                }
            }
        }
        out
    }

    /// The survivors as Markdown, one table row each, grouped by file.
    pub fn markdown(&self, shard: Option<Shard>) -> String {
        let mut out = String::from("# Surviving mutants\n\n");
        let score = percent(self.score());
        let _ = writeln!(
            out,
            "`cargo xtask mutants{}`: {} mutants, {} viable, {} caught, {} missed, {} timed out, \
             {} unviable; score (caught / (caught + missed)) {score}.\n",
            shard.map(|s| format!(" --shard {s}")).unwrap_or_default(),
            self.total,
            self.viable(),
            self.caught,
            self.missed.len(),
            self.timeouts.len(),
            self.unviable
        );
        if self.missed.is_empty() && self.timeouts.is_empty() {
            out.push_str("No survivors.\n");
            return out;
        }
        out.push_str("| where | mutation | outcome |\n| --- | --- | --- |\n");
        let mut rows: Vec<(&Survivor, &str)> = self
            .missed
            .iter()
            .map(|s| (s, "missed"))
            .chain(self.timeouts.iter().map(|s| (s, "timeout")))
            .collect();
        rows.sort_by(|a, b| (&a.0.file, a.0.line).cmp(&(&b.0.file, b.0.line)));
        for (s, outcome) in rows {
            let _ = writeln!(
                out,
                "| `{}:{}` | `{}` | {outcome} |",
                s.file,
                s.line,
                s.mutation.replace('|', "\\|").replace('`', "'")
            );
        }
        out
    }
}

/// A score as a percentage, "-" when there is none yet.
fn percent(score: Option<f64>) -> String {
    score.map_or_else(|| "-".into(), |s| format!("{:.1}%", 100.0 * s))
}

/// A mutant's description without the `file:line:col: ` cargo-mutants puts
/// in front of its name.
fn describe(mutant: &Value) -> String {
    let name = mutant["name"].as_str().unwrap_or("?");
    // "src/mmu/keys.rs:42:9: replace …": drop up to the third ": ".
    let mut rest = name;
    if let Some(file) = mutant["file"].as_str()
        && let Some(after) = name.strip_prefix(file)
    {
        rest = after
            .trim_start_matches(|c: char| c == ':' || c.is_ascii_digit())
            .trim_start();
    }
    rest.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_shards() {
        assert_eq!(
            "0/16".parse(),
            Ok(Shard {
                index: 0,
                count: 16
            })
        );
        assert_eq!(
            "15/16".parse(),
            Ok(Shard {
                index: 15,
                count: 16
            })
        );
        for bad in ["16/16", "1/0", "0", "a/2", "-1/2", "1/2/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_options() {
        let o = Options::parse(&args(
            "--shard 3/16 --timeout-multiplier=2.5 --report s.md -- --re keys.rs -v",
        ))
        .unwrap();
        assert_eq!(
            o.shard,
            Some(Shard {
                index: 3,
                count: 16
            })
        );
        assert_eq!(o.timeout_multiplier, Some(2.5));
        assert_eq!(o.report, Some(PathBuf::from("s.md")));
        assert!(!o.list);
        assert_eq!(o.extra, args("--re keys.rs -v"));
        assert!(Options::parse(&args("--list")).unwrap().list);
        assert_eq!(Options::parse(&[]).unwrap(), Options::default());
        for bad in [
            "--shard",
            "--shard 2/2",
            "--timeout-multiplier 0",
            "--timeout-multiplier x",
            "--jobs 2",
            "--list=yes",
        ] {
            assert!(Options::parse(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_the_output_directory() {
        let root = cargo::root();
        assert_eq!(explicit_output(&[]), None);
        assert_eq!(explicit_output(&args("-o x")), Some(root.join("x")));
        assert_eq!(
            explicit_output(&args("--output=y -v")),
            Some(root.join("y"))
        );
        assert_eq!(output_dir(&[]), root.join("mutants/mutants.out"));
    }

    #[test]
    fn the_ledger_keeps_results_only_for_unchanged_files() {
        let base = std::env::temp_dir().join(format!("xtask-ledger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("mutants.out")).unwrap();
        let ledger_path = base.join("ledger.txt");
        let sources = |pairs: &[(&str, &str)]| -> Sources {
            pairs
                .iter()
                .map(|(f, b)| (f.to_string(), b.to_string()))
                .collect()
        };
        let read = |name: &str| std::fs::read_to_string(base.join(name)).unwrap();
        // A run over a.rs@1 and b.rs@1 caught one mutant in each and
        // missed one in a.rs.
        let run = sources(&[("src/a.rs", "1"), ("src/b.rs", "1")]);
        Ledger::record_run(&base, &run).unwrap();
        std::fs::write(
            base.join("mutants.out/caught.txt"),
            "src/a.rs:1:1: replace x\nsrc/b.rs:2:2: replace y\n",
        )
        .unwrap();
        std::fs::write(
            base.join("mutants.out/missed.txt"),
            "src/a.rs:3:3: replace z\n",
        )
        .unwrap();
        // Then b.rs changed: only a.rs's results still hold.
        let now = sources(&[("src/a.rs", "1"), ("src/b.rs", "2")]);
        let ledger = Ledger::gather(&base, &ledger_path, &now).unwrap();
        assert_eq!(ledger.settled(), 1);
        assert_eq!(
            ledger.outcome("src/a.rs:3:3: replace z"),
            Some(Outcome::Missed)
        );
        assert_eq!(ledger.outcome("src/b.rs:2:2: replace y"), None);
        // Only the settled one is handed to --iterate: the missed one runs
        // again.
        assert_eq!(
            read("mutants.out/previously_caught.txt"),
            "src/a.rs:1:1: replace x\n"
        );
        // cargo-mutants' own lists no longer name the results.
        assert_eq!(read("mutants.out/caught.txt"), "");
        assert_eq!(read("mutants.out/missed.txt"), "");
        // A later gather (no new run) still has them, from the ledger.
        let again = Ledger::gather(&base, &ledger_path, &now).unwrap();
        assert_eq!(again.settled(), 1);
        assert_eq!(
            again.outcome("src/a.rs:3:3: replace z"),
            Some(Outcome::Missed)
        );
        // A later run that catches the missed one overrides it.
        std::fs::write(
            base.join("mutants.out/caught.txt"),
            "src/a.rs:3:3: replace z\n",
        )
        .unwrap();
        let later = Ledger::gather(&base, &ledger_path, &now).unwrap();
        assert_eq!(
            later.outcome("src/a.rs:3:3: replace z"),
            Some(Outcome::Caught)
        );
        assert_eq!(later.settled(), 2);
        assert!(read("ledger.txt").contains("1 caught src/a.rs:3:3: replace z\n"));
        // And b.rs back as it was does not revive its result: the ledger
        // kept only what held.
        assert_eq!(
            Ledger::gather(&base, &ledger_path, &run).unwrap().settled(),
            2
        );
        assert_eq!(
            Ledger::gather(&base, &ledger_path, &run)
                .unwrap()
                .outcome("src/b.rs:2:2: replace y"),
            None
        );
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn the_tally_counts_every_current_mutant() {
        let ledger = Ledger {
            entries: [
                ("m1", Outcome::Caught),
                ("m2", Outcome::Missed),
                ("m3", Outcome::Timeout),
                ("m4", Outcome::Unviable),
                ("gone", Outcome::Caught),
            ]
            .into_iter()
            .map(|(n, o)| (n.to_string(), ("b".to_string(), o)))
            .collect(),
        };
        let mutants: Vec<String> = ["m1", "m2", "m3", "m4", "m5"].map(String::from).to_vec();
        let tally = Tally::new(&ledger, &mutants);
        assert_eq!(
            tally,
            Tally {
                mutants: 5,
                caught: 1,
                unviable: 1,
                missed: vec!["m2".into()],
                timeouts: vec!["m3".into()],
                unjudged: 1,
            }
        );
        assert_eq!(tally.score(), Some(2.0 / 3.0));
        assert_eq!(Tally::new(&ledger, &[]).score(), None);
    }

    #[test]
    fn estimates_shards() {
        // 1,000 mutants of 60 s, a 10-minute baseline: 110 fit in 2 hours.
        assert_eq!(shards_needed(1000, 60.0, 600.0, 7200.0), 10);
        assert_eq!(shards_needed(0, 60.0, 600.0, 7200.0), 1);
        assert_eq!(shards_needed(5, 60.0, 600.0, 7200.0), 1);
        // A budget that only fits the baseline: one mutant per shard.
        assert_eq!(shards_needed(7, 60.0, 7200.0, 7200.0), 7);
    }

    /// An outcomes.json as cargo-mutants 27 writes it, cut down.
    const OUTCOMES: &str = r#"{
      "outcomes": [
        {"scenario": "Baseline", "summary": "Success", "phase_results": [
          {"phase": "Build", "duration": 40.0}, {"phase": "Test", "duration": 12.5}]},
        {"scenario": {"Mutant": {"name": "src/mmu/keys.rs:42:9: replace KeyAllocator::free -> bool with true",
          "file": "src/mmu/keys.rs", "span": {"start": {"line": 42, "column": 9}, "end": {"line": 42, "column": 20}}}},
         "summary": "MissedMutant", "phase_results": [
          {"phase": "Build", "duration": 3.0}, {"phase": "Test", "duration": 12.0}]},
        {"scenario": {"Mutant": {"name": "src/mmu/keys.rs:50:12: replace < with <= in KeyAllocator::alloc",
          "file": "src/mmu/keys.rs", "span": {"start": {"line": 50, "column": 12}, "end": {"line": 50, "column": 13}}}},
         "summary": "CaughtMutant", "phase_results": [
          {"phase": "Build", "duration": 3.0}, {"phase": "Test", "duration": 2.0}]},
        {"scenario": {"Mutant": {"name": "src/mmu/keys.rs:60:5: replace f -> u32 with 1",
          "file": "src/mmu/keys.rs", "span": {"start": {"line": 60, "column": 5}, "end": {"line": 60, "column": 6}}}},
         "summary": "Unviable", "phase_results": [{"phase": "Build", "duration": 1.0}]},
        {"scenario": {"Mutant": {"name": "src/mmu/keys.rs:70:5: delete ! in g",
          "file": "src/mmu/keys.rs", "span": {"start": {"line": 70, "column": 5}, "end": {"line": 70, "column": 6}}}},
         "summary": "Timeout", "phase_results": [
          {"phase": "Build", "duration": 3.0}, {"phase": "Test", "duration": 60.0}]}
      ],
      "total_mutants": 4, "missed": 1, "caught": 1, "timeout": 1, "unviable": 1, "success": 0
    }"#;

    #[test]
    fn reads_outcomes() {
        let s = Summary::from_outcomes(OUTCOMES).unwrap();
        assert_eq!(s.total, 4);
        assert_eq!(s.viable(), 3);
        assert_eq!(s.caught, 1);
        assert_eq!(s.unviable, 1);
        assert_eq!(s.failures, 0);
        assert_eq!(
            s.missed,
            [Survivor {
                file: "src/mmu/keys.rs".into(),
                line: 42,
                mutation: "replace KeyAllocator::free -> bool with true".into(),
            }]
        );
        assert_eq!(s.timeouts[0].line, 70);
        assert_eq!(s.timeouts[0].mutation, "delete ! in g");
        assert_eq!(s.score(), Some(0.5));
        assert_eq!(s.baseline_test_s, Some(12.5));
        assert_eq!(s.mean_mutant_s, Some((15.0 + 5.0 + 63.0) / 3.0));
        let text = s.render(Some(Shard { index: 0, count: 2 }));
        assert!(text.contains("  score     50.0%  caught"), "{text}");
        assert!(
            text.contains("  src/mmu/keys.rs:42: replace KeyAllocator::free -> bool with true\n")
        );
        let md = s.markdown(None);
        assert!(md.contains(
            "| `src/mmu/keys.rs:42` | `replace KeyAllocator::free -> bool with true` | missed |"
        ));
        assert!(md.contains("| `src/mmu/keys.rs:70` | `delete ! in g` | timeout |"));
        assert!(Summary::from_outcomes("{}").is_err());
        assert!(Summary::from_outcomes("not json").is_err());
    }

    #[test]
    fn markdown_without_survivors() {
        let s = Summary {
            total: 2,
            caught: 2,
            ..Summary::default()
        };
        assert_eq!(s.score(), Some(1.0));
        assert!(s.markdown(None).ends_with("No survivors.\n"));
        assert_eq!(Summary::default().score(), None);
    }
}
