//! `cargo xtask sanitize`: the on-target suites under the cache sanitizer
//! (the QEMU plugin in `qemu/cachesan`), which feeds every access, fetch
//! and CP15 operation into vacmm's cache model.
//!
//! - Every ordinary suite must pass *and* produce no violation.
//! - The negative controls (`tests/cachesan_controls.rs`) print what must be
//!   reported (`cachesan-expect kind=… pc=…`); every expectation must be
//!   met and nothing else reported.
//! - `--demo` also boots the two kernels ([`KERNELS`]: the demo, and the
//!   minimal kernel on its own memory manager) under the plugin (each must
//!   end with status 0 and no violation). `--geometry` reaches them as
//!   their `vacmm-dcache-kib=` boot argument, so they maintain their caches
//!   for the geometry the plugin models (they take 4-way, 32-byte-line
//!   caches only). Each then boots once more as a negative control, told
//!   to leave out one engine call (the demo `flush_dcache_page` in its
//!   `FILE_POKE` system call, the minimal kernel `page_cache_write` for its
//!   ring's second record): it must say so on its console, and wherever the modelled cache
//!   aliases ([`model_aliases`]) the plugin must report exactly the stale
//!   read the kernel announces.
//! - The test suites keep the geometry they pick themselves
//!   (`tests/coherence.rs::cache_info`), whose way is at least as large as
//!   the modelled cache's: they colour at least as finely as it needs.
//!
//! Each run is also made without the plugin, so the summary shows the
//! sanitizer's overhead (wall clock, QEMU start-up included). `cargo xtask
//! test` runs [`sanitize`] over [`checked`]; `cargo xtask bench` times the
//! same runs and reports the overhead ([`overhead`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cargo::{self, Board, Cpu, Machine, QemuRun, Target};
use crate::flags::Flags;
use crate::prereq;

/// The test whose cases make mistakes on purpose.
const CONTROLS: &str = "cachesan_controls";
/// The runner's own hang check: nothing to sanitize.
const SKIPPED: [&str; 1] = ["runner_hang"];
/// Seconds a sanitized guest may take (the plugin slows it down).
const TIMEOUT_S: u32 = 600;
/// A kernel booted under the plugin besides the suites, with its negative
/// twin.
pub struct Kernel {
    /// Its package and binary.
    pub package: &'static str,
    /// The twin, as named in the summary and its log.
    pub twin: &'static str,
    /// The boot argument that makes the twin leave out one engine call.
    pub omit_arg: &'static str,
    /// What the twin prints when it got [`omit_arg`](Self::omit_arg).
    pub note: &'static str,
}

/// The demo kernel (vacmm's `mm`) and the minimal kernel (its own).
pub const KERNELS: [Kernel; 2] = [
    Kernel {
        package: "vacmm-demo",
        twin: "vacmm-demo-omit",
        omit_arg: "vacmm-demo-omit=flush_dcache_page",
        note: "NOTE: FILE_POKE leaves out flush_dcache_page on purpose",
    },
    Kernel {
        package: "vacmm-minimal",
        twin: "vacmm-minimal-omit",
        omit_arg: "vacmm-minimal-omit=page_cache_write",
        note: "NOTE: the ring's second record leaves out page_cache_write on purpose",
    },
];
/// Bytes of a page: a VIPT cache aliases when its way is larger.
const PAGE_BYTES: u64 = 4096;

/// The overhead target: a suite under the plugin takes at most this many
/// times its time without it.
pub const OVERHEAD_TARGET: f64 = 15.0;

/// One CPU with the cache geometry the plugin models for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub board: Board,
    pub cpu: Cpu,
    /// Passed to the plugin as `geometry=` (D- and I-cache), and to the
    /// demo kernel as `vacmm-dcache-kib=`; `None`: the plugin's preset.
    pub geometry: Option<String>,
}

impl Config {
    /// The board and CPU QEMU boots.
    pub fn machine(&self) -> Machine {
        Machine {
            board: self.board,
            cpu: self.cpu,
        }
    }

    /// The CPU and any geometry, as the summary names the run.
    pub fn label(&self) -> String {
        match &self.geometry {
            Some(g) => format!("{} {g}", self.machine()),
            None => self.machine().to_string(),
        }
    }
}

/// The CPUs and geometries `cargo xtask test` sanitizes and `cargo xtask
/// bench` times: the VIVT ARM926, the ARM1136 r0 (the ARMv5TE image, 64 KiB
/// VIPT), the ARM1136 r1 as QEMU reports it (64 KiB, 4 colours) and with
/// the 32 KiB aliasing cache (2 colours), the ARM1176 (16 KiB, no aliasing)
/// and the ARM11 MPCore (32 KiB, a D-cache that needs no colouring, no
/// block operations), on versatilepb; then the other boards with their
/// own CPUs (the kzm's RAM at 0x8000_0000).
pub fn checked() -> Vec<Config> {
    let versatile = [
        (Cpu::Arm926, None),
        (Cpu::Arm1136R2, None),
        (Cpu::Arm1136, None),
        (Cpu::Arm1136, Some("32k")),
        (Cpu::Arm1176, None),
        (Cpu::Arm11MpCore, None),
    ]
    .into_iter()
    .map(|(cpu, geometry)| Config {
        board: Board::Versatilepb,
        cpu,
        geometry: geometry.map(String::from),
    });
    let boards = Board::ALL.into_iter().filter_map(|board| {
        Some(Config {
            board,
            cpu: board.cpu()?,
            geometry: None,
        })
    });
    versatile.chain(boards).collect()
}

/// What `cargo xtask sanitize` was asked for.
pub struct Options {
    pub configs: Vec<Config>,
    /// Also run the kernels ([`KERNELS`], each with its negative twin).
    pub demo: bool,
    /// Each guest is run this many times with and without the plugin; the
    /// fastest clean run of each is kept (1 for checking, more for timing).
    pub repeats: u32,
}

impl Options {
    /// Every suite, the demo and its twin on [`checked`], each run
    /// `repeats` times: `cargo xtask test` (once) and `bench` (to time).
    pub fn checked(repeats: u32) -> Options {
        Options {
            configs: checked(),
            demo: true,
            repeats,
        }
    }

    pub fn parse(args: &[String]) -> Result<Options, String> {
        let (mut cpus, mut geometry, mut demo, mut board) = (Vec::new(), None, false, None);
        let mut flags = Flags::new("sanitize", args);
        while let Some(flag) = flags.next_flag() {
            let mut value = || flags.value(&flag);
            match flag.name {
                "--cpu" => cpus.push(value()?.parse()?),
                "--board" => board = Some(value()?.parse::<Board>()?),
                "--geometry" => geometry = Some(value()?),
                "--demo" if flag.inline.is_none() => demo = true,
                _ => return Err(format!("sanitize: unrecognised argument `{}`", flag.arg)),
            }
        }
        let board = board.unwrap_or(Board::Versatilepb);
        if let Some(own) = board.cpu() {
            if let Some(other) = cpus.iter().find(|cpu| **cpu != own) {
                return Err(format!("sanitize: {board} has an {own}, not an {other}"));
            }
            cpus = vec![own];
        }
        if cpus.is_empty() {
            cpus = Cpu::ALL.to_vec();
        }
        if let Some(g) = &geometry {
            let (_, ways, line) = parse_geometry(g)?;
            if demo && (ways, line) != (4, 32) {
                return Err(format!(
                    "sanitize: --geometry {g} cannot be given to the demo kernel: \
                     it takes 4-way caches with 32-byte lines only"
                ));
            }
        }
        let configs = cpus
            .into_iter()
            .map(|cpu| Config {
                board,
                cpu,
                geometry: geometry.clone(),
            })
            .collect();
        Ok(Options {
            configs,
            demo,
            repeats: 1,
        })
    }
}

/// `SIZE[:WAYS[:LINE]]` (the plugin's `geometry=`: `32k`, `1m`, `16384:4:32`)
/// → bytes, ways, line bytes (4 ways and 32-byte lines unless given).
fn parse_geometry(geometry: &str) -> Result<(u64, u64, u64), String> {
    let bad = |why: &str| format!("sanitize: --geometry {geometry}: {why}");
    let mut parts = geometry.split(':');
    let size = parts.next().unwrap_or_default().to_ascii_lowercase();
    let number = |text: &str, what: &str| {
        text.parse::<u64>()
            .ok()
            .filter(|n| n.is_power_of_two())
            .ok_or_else(|| bad(&format!("{what} {text:?} is not a power of two")))
    };
    let (digits, shift) = match (size.strip_suffix('k'), size.strip_suffix('m')) {
        (Some(kib), _) => (kib, 10),
        (_, Some(mib)) => (mib, 20),
        _ => (size.as_str(), 0),
    };
    let bytes = number(digits, "the size")?
        .checked_shl(shift)
        .filter(|b| *b >= 1024)
        .ok_or_else(|| bad("the size is not a whole number of KiB"))?;
    let ways = parts.next().map_or(Ok(4), |w| number(w, "the ways"))?;
    let line = parts.next().map_or(Ok(32), |l| number(l, "the line"))?;
    if parts.next().is_some() {
        return Err(bad("expected SIZE[:WAYS[:LINE]]"));
    }
    Ok((bytes, ways, line))
}

/// The demo kernel's boot argument for a `--geometry` (checked by
/// [`Options::parse`] to be 4-way with 32-byte lines).
fn demo_dcache_arg(geometry: &str) -> Result<String, String> {
    let (bytes, _, _) = parse_geometry(geometry)?;
    Ok(format!("vacmm-dcache-kib={}", bytes >> 10))
}

/// Whether the D-cache the plugin models for `config` can hold one frame
/// in two lines: always on the VIVT ARM926; on the ARMv6 parts when a way
/// spans more than a page (the presets: ARM1136 64 KiB 4-way, ARM1176
/// 16 KiB 4-way); never on the MPCore preset, whose D-cache the plugin
/// models physically indexed.
pub fn model_aliases(config: &Config) -> Result<bool, String> {
    let (bytes, ways) = match (&config.geometry, config.cpu) {
        (_, Cpu::Arm926) => return Ok(true),
        (Some(g), _) => {
            let (bytes, ways, _) = parse_geometry(g)?;
            (bytes, ways)
        }
        (None, Cpu::Arm1136 | Cpu::Arm1136R2) => (64 << 10, 4),
        (None, Cpu::Arm1176) => (16 << 10, 4),
        // Physically indexed D-cache in the plugin's preset (P bit clear).
        (None, Cpu::Arm11MpCore) => return Ok(false),
    };
    Ok(bytes / ways > PAGE_BYTES)
}

/// One line of the plugin's log: `site kind=K pc=0x… at=F+0x… group=G count=N`.
#[derive(Debug, PartialEq)]
struct Site {
    kind: String,
    pc: u32,
    at: String,
}

/// One `cachesan-expect` line of a control's console.
#[derive(Debug, PartialEq)]
enum Expected {
    At { kind: String, function: String },
    Pc { kind: String, pc: u32 },
}

impl Expected {
    fn matches(&self, site: &Site) -> bool {
        match self {
            Expected::At { kind, function } => {
                *kind == site.kind && site.at.starts_with(&format!("{function}+"))
            }
            Expected::Pc { kind, pc } => *kind == site.kind && *pc == site.pc,
        }
    }
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

fn hex(text: &str) -> Option<u32> {
    u32::from_str_radix(text.strip_prefix("0x")?, 16).ok()
}

/// The plugin's findings: its sites and its `result violations=N`.
fn read_log(log: &str) -> (Vec<Site>, Option<u64>) {
    let mut sites = Vec::new();
    let mut result = None;
    for line in log.lines() {
        let Some(rest) = line.strip_prefix("cachesan: ") else {
            continue;
        };
        if let Some(site) = rest.strip_prefix("site ") {
            if let (Some(kind), Some(pc), Some(at)) =
                (field(site, "kind"), field(site, "pc"), field(site, "at"))
                && let Some(pc) = hex(pc)
            {
                sites.push(Site {
                    kind: kind.into(),
                    pc,
                    at: at.into(),
                });
            }
        } else if let Some(n) = rest.strip_prefix("result violations=") {
            result = n.trim().parse().ok();
        }
    }
    (sites, result)
}

fn read_expectations(console: &[String]) -> Vec<Expected> {
    console
        .iter()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("cachesan-expect ")?;
            let kind = field(rest, "kind")?.to_string();
            if let Some(function) = field(rest, "at") {
                Some(Expected::At {
                    kind,
                    function: function.into(),
                })
            } else {
                Some(Expected::Pc {
                    kind,
                    pc: hex(field(rest, "pc")?)?,
                })
            }
        })
        .collect()
}

/// The guest's `N passed, M failed` line, if it printed one.
fn guest_counts(run: &QemuRun) -> Option<(usize, usize)> {
    let line = run.lines.iter().rev().find(|l| !l.trim().is_empty())?;
    let (passed, failed) = line.trim().split_once(" passed, ")?;
    Some((
        passed.parse().ok()?,
        failed.strip_suffix(" failed")?.parse().ok()?,
    ))
}

/// One guest run with and without the plugin.
pub struct Row {
    pub suite: String,
    /// The CPU and any `--geometry` ([`Config::label`]).
    pub label: String,
    /// The fastest clean run without the plugin (`Duration::MAX` if there
    /// was none, shown as 0).
    pub plain: Duration,
    /// The fastest clean run under the plugin (likewise).
    pub sanitized: Duration,
    /// The plugin's `result violations=N` of the last run, if it wrote one.
    pub violations: Option<u64>,
    /// What went wrong in any run: `None` when every run was clean (or, for
    /// the negative controls, reported exactly as they expect).
    pub problem: Option<String>,
}

/// Builds the plugin (release: the model is on every access's path).
pub fn build_plugin() -> Result<PathBuf, String> {
    let output = cargo::cargo()
        .args([
            "build",
            "--release",
            "--package",
            "vacmm-cachesan",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !output.status.success() {
        return Err(format!("building the plugin failed ({})", output.status));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "vacmm_cachesan")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
        })
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "so"))
        .ok_or_else(|| "cargo built no libvacmm_cachesan.so".into())
}

/// What a guest's sanitized run must show.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    /// No violation.
    Clean,
    /// At least one report, and exactly what the guest announces
    /// (`cachesan-expect`): the negative controls.
    Announced,
}

/// One guest to run: a test suite or a kernel.
struct Guest<'a> {
    /// The suite, or a kernel's package or twin.
    name: &'a str,
    elf: &'a Path,
    /// Boot arguments (`VACMM_QEMU_APPEND`).
    args: Option<String>,
    /// A kernel prints no `N passed, M failed` line.
    is_kernel: bool,
    verdict: Verdict,
    /// A console line the guest must print: that it got the boot argument
    /// that makes its mistake.
    must_print: Option<&'static str>,
}

/// The guests for `config`: every suite, and each kernel built (with its
/// twin).
fn guests<'a>(
    config: &Config,
    suites: &'a [(String, PathBuf)],
    kernels: &'a [(&'static Kernel, PathBuf)],
) -> Result<Vec<Guest<'a>>, String> {
    let mut guests: Vec<Guest> = suites
        .iter()
        .map(|(name, elf)| Guest {
            name,
            elf,
            args: None,
            is_kernel: false,
            verdict: if name == CONTROLS {
                Verdict::Announced
            } else {
                Verdict::Clean
            },
            must_print: None,
        })
        .collect();
    for (kernel, elf) in kernels {
        let geometry = config
            .geometry
            .as_deref()
            .map(demo_dcache_arg)
            .transpose()?;
        let twin_args = match &geometry {
            Some(g) => format!("{g} {}", kernel.omit_arg),
            None => kernel.omit_arg.into(),
        };
        guests.push(Guest {
            name: kernel.package,
            elf,
            args: geometry,
            is_kernel: true,
            verdict: Verdict::Clean,
            must_print: None,
        });
        guests.push(Guest {
            name: kernel.twin,
            elf,
            args: Some(twin_args),
            is_kernel: true,
            verdict: if model_aliases(config)? {
                Verdict::Announced
            } else {
                Verdict::Clean
            },
            must_print: Some(kernel.note),
        });
    }
    Ok(guests)
}

/// Runs `guest` on `config` without and with the plugin, `repeats` times,
/// alternating (so a burst of load elsewhere does not land on one kind of
/// run only), and checks every sanitized run.
fn sanitize_one(plugin: &Path, logs: &Path, config: &Config, guest: &Guest, repeats: u32) -> Row {
    let machine = config.machine();
    let label = config.label();
    let log = logs.join(format!(
        "{}-{}.log",
        guest.name,
        label.replace([' ', ':', '/'], "-")
    ));
    let mut row = Row {
        suite: guest.name.into(),
        label,
        plain: Duration::MAX,
        sanitized: Duration::MAX,
        violations: None,
        problem: None,
    };
    // QEMU splits -plugin's argument at commas.
    if [plugin, guest.elf, log.as_path()]
        .iter()
        .any(|p| p.to_string_lossy().contains(','))
    {
        row.problem = Some("a path has a comma, which -plugin cannot take".into());
        return row;
    }
    let mut spec = format!(
        "{},cpu={},elf={},log={}",
        plugin.display(),
        machine.cpu,
        guest.elf.display(),
        log.display()
    );
    if let Some(g) = &config.geometry {
        spec += &format!(",geometry={g}");
    }
    if config.board.ram_base() != 0 {
        spec += &format!(",ram-base={:#x}", config.board.ram_base());
    }
    let args = guest.args.as_deref();
    let mut problems: Vec<String> = Vec::new();
    let mut note = |problem: String| {
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    };
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        match cargo::run_on_qemu_quietly(guest.elf, machine, None, None, args) {
            Ok(run) if run.status == Some(0) => row.plain = row.plain.min(started.elapsed()),
            Ok(run) => note(format!("without the plugin: {}", run.describe_status())),
            Err(e) => note(format!("without the plugin: {e}")),
        }
        // A log left from an earlier run must not stand in for this one's.
        let _ = std::fs::remove_file(&log);
        let started = Instant::now();
        let run =
            cargo::run_on_qemu_quietly(guest.elf, machine, Some(TIMEOUT_S), Some(&spec), args);
        let elapsed = started.elapsed();
        match run {
            Ok(run) => {
                let (violations, found) = judge(guest, &run, &log);
                row.violations = violations;
                if found.is_empty() {
                    row.sanitized = row.sanitized.min(elapsed);
                }
                found.into_iter().for_each(&mut note);
            }
            Err(e) => note(e),
        }
    }
    if !problems.is_empty() {
        row.problem = Some(problems.join("; "));
    }
    row
}

/// Checks one sanitized run of `guest`: the guest's own result, the line
/// it must print, and the plugin's findings against its verdict. Returns
/// the plugin's violation count and what is wrong.
fn judge(guest: &Guest, run: &QemuRun, log: &Path) -> (Option<u64>, Vec<String>) {
    let mut problems = Vec::new();
    match guest_counts(run) {
        Some((_, 0)) if run.status == Some(0) => {}
        None if guest.is_kernel && run.status == Some(0) => {}
        _ => problems.push(format!(
            "the guest itself failed under the plugin ({})",
            run.describe_status()
        )),
    }
    if let Some(line) = guest.must_print
        && !run.lines.iter().any(|l| l.contains(line))
    {
        problems.push(format!("the guest never printed {line:?}"));
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (sites, result) = read_log(&text);
    match (result, guest.verdict) {
        (None, _) => problems.push(format!("no cachesan summary in {}", log.display())),
        (Some(_), Verdict::Announced) => {
            let expected = read_expectations(&run.lines);
            if expected.is_empty() {
                problems.push("the guest announced no report to expect".into());
            }
            for e in &expected {
                if !sites.iter().any(|s| e.matches(s)) {
                    problems.push(format!("missed {e:?}"));
                }
            }
            for s in &sites {
                if !expected.iter().any(|e| e.matches(s)) {
                    problems.push(format!(
                        "unexpected {} at {} ({:#010x})",
                        s.kind, s.at, s.pc
                    ));
                }
            }
        }
        (Some(0), Verdict::Clean) => {}
        (Some(n), Verdict::Clean) => {
            let first: Vec<String> = sites
                .iter()
                .take(3)
                .map(|s| format!("{} at {}", s.kind, s.at))
                .collect();
            problems.push(format!(
                "{n} violations in {} sites (first: {}); see {}",
                sites.len(),
                first.join("; "),
                log.display()
            ));
        }
    }
    (result, problems)
}

/// `cargo xtask sanitize`: every run, a summary, an error if any failed.
pub fn run(options: &Options) -> Result<(), String> {
    let rows = sanitize(options)?;
    print_summary(&rows);
    failures(&rows)
}

/// Err naming how many runs failed, if any did.
pub fn failures(rows: &[Row]) -> Result<(), String> {
    let failed = rows.iter().filter(|r| r.problem.is_some()).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failed} of {} sanitized runs failed (logs in {})",
            rows.len(),
            cargo::target_directory()?.join("cachesan").display()
        ))
    }
}

/// Builds the plugin and the guests (once per target), and runs every
/// on-target suite (and, if asked, the kernels and their twins) on every config
/// with and without the plugin. Err only if something could not be built;
/// each run's outcome is in its row.
pub fn sanitize(options: &Options) -> Result<Vec<Row>, String> {
    prereq::ensure_all()?;
    let plugin = build_plugin()?;
    let logs = cargo::target_directory()?.join("cachesan");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let names: Vec<String> = cargo::target_test_names()?
        .into_iter()
        .filter(|n| !SKIPPED.contains(&n.as_str()))
        .collect();
    let mut rows = Vec::new();
    // One build per target and board, in the order the configs come.
    let mut builds: Vec<(Target, Board)> = Vec::new();
    for config in &options.configs {
        let build = (config.cpu.target(), config.board);
        if !builds.contains(&build) {
            builds.push(build);
        }
    }
    for (target, board) in builds {
        let suites = cargo::build_target_tests(target, board, &names)?;
        let mut kernels = Vec::new();
        if options.demo {
            for kernel in &KERNELS {
                kernels.push((kernel, cargo::build_bin(target, board, kernel.package)?));
            }
        }
        let built_here = |c: &&Config| c.cpu.target() == target && c.board == board;
        for config in options.configs.iter().filter(built_here) {
            for guest in guests(config, &suites, &kernels)? {
                println!("==== {} on {} under cachesan", guest.name, config.label());
                let row = sanitize_one(&plugin, &logs, config, &guest, options.repeats);
                print_row(&row);
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

fn print_row(row: &Row) {
    match &row.problem {
        None => println!("  ok ({} violations)", row.violations.unwrap_or(0)),
        Some(p) => println!("  FAILED: {p}"),
    }
}

fn print_summary(rows: &[Row]) {
    println!("\n==== cachesan summary");
    for line in table(rows) {
        println!("{line}");
    }
}

fn seconds(d: Duration) -> f64 {
    if d == Duration::MAX {
        0.0
    } else {
        d.as_secs_f64()
    }
}

/// One line per run (violations, both times, their ratio, the outcome) and
/// the overall overhead.
pub fn table(rows: &[Row]) -> Vec<String> {
    let width = rows
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(0)
        .max(14);
    let mut lines = vec![format!(
        "{:<18} {:<width$} {:>10} {:>9} {:>9} {:>6}  result",
        "suite", "cpu", "violations", "plain s", "plugin s", "x"
    )];
    for row in rows {
        let result = row
            .problem
            .as_deref()
            .map_or("ok".to_string(), |p| format!("FAILED: {p}"));
        lines.push(format!(
            "{:<18} {:<width$} {:>10} {:>9.2} {:>9.2} {:>6.1}  {result}",
            row.suite,
            row.label,
            row.violations.map_or("-".to_string(), |v| v.to_string()),
            seconds(row.plain),
            seconds(row.sanitized),
            seconds(row.sanitized) / seconds(row.plain).max(1e-3)
        ));
    }
    lines.push(overhead(rows));
    lines
}

/// The whole set of runs under the plugin against without it, with the
/// verdict on [`OVERHEAD_TARGET`].
pub fn overhead(rows: &[Row]) -> String {
    let plain: f64 = rows.iter().map(|r| seconds(r.plain)).sum();
    let sanitized: f64 = rows.iter().map(|r| seconds(r.sanitized)).sum();
    let ratio = sanitized / plain.max(1e-3);
    let worst = rows
        .iter()
        .map(|r| (seconds(r.sanitized) / seconds(r.plain).max(1e-3), r))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let verdict = if ratio <= OVERHEAD_TARGET && worst.is_none_or(|w| w.0 <= OVERHEAD_TARGET) {
        "meets"
    } else {
        "misses"
    };
    let worst = worst.map_or(String::new(), |(x, r)| {
        format!("; slowest: {} on {} at {x:.1}x", r.suite, r.label)
    });
    format!(
        "overhead: {sanitized:.1} s under the plugin / {plain:.1} s without = {ratio:.1}x \
         ({verdict} the {OVERHEAD_TARGET:.0}x target{worst}; wall clock, QEMU start-up included)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sites_and_expectations() {
        let log = "\
cachesan: model arm926
cachesan: violation kind=StaleRead pc=0x00002688 at=f+0x4 during=load
cachesan: site kind=StaleRead pc=0x00002688 at=cachesan_user_reads_shared+0x4 count=1
cachesan: site kind=StaleFetch pc=0x0400c000 at=? count=2
cachesan: result violations=3
";
        let (sites, result) = read_log(log);
        assert_eq!(result, Some(3));
        assert_eq!(sites.len(), 2);
        let console = vec![
            "cachesan-expect kind=StaleRead at=cachesan_user_reads_shared".to_string(),
            "cachesan-expect kind=StaleFetch pc=0x0400c000".to_string(),
            "cachesan-expect kind=StaleRead at=cachesan_user".to_string(),
            "test x ... ok".to_string(),
        ];
        let expected = read_expectations(&console);
        assert_eq!(expected.len(), 3);
        assert!(expected[0].matches(&sites[0]));
        assert!(expected[1].matches(&sites[1]));
        // A prefix of a name is not the function.
        assert!(!expected[2].matches(&sites[0]));
        assert!(!expected[0].matches(&sites[1]));
    }

    #[test]
    fn parses_options() {
        let args: Vec<String> = [
            "--cpu",
            "arm1136",
            "--cpu=arm926",
            "--geometry=32k",
            "--demo",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let o = Options::parse(&args).unwrap();
        let config = |cpu| Config {
            board: Board::Versatilepb,
            cpu,
            geometry: Some("32k".into()),
        };
        assert_eq!(o.configs, vec![config(Cpu::Arm1136), config(Cpu::Arm926)]);
        assert_eq!(o.configs[0].label(), "arm1136 32k");
        assert!(o.demo);
        let all: Vec<Cpu> = Options::parse(&[])
            .unwrap()
            .configs
            .iter()
            .map(|c| c.cpu)
            .collect();
        assert_eq!(all, Cpu::ALL.to_vec());
        assert!(Options::parse(&["--cpu".into(), "arm7".into()]).is_err());
        // A board brings its CPU, and refuses another.
        let kzm = Options::parse(&["--board=kzm".into()]).unwrap();
        assert_eq!(kzm.configs.len(), 1);
        assert_eq!(kzm.configs[0].label(), "kzm/arm1136");
        assert!(Options::parse(&["--board=kzm".into(), "--cpu=arm926".into()]).is_err());
        assert!(Options::parse(&["--board=pi".into()]).is_err());
        assert!(Options::parse(&["--fast".into()]).is_err());
        // The demo takes 4-way caches with 32-byte lines only.
        let demo_with = |g: &str| Options::parse(&["--demo".into(), format!("--geometry={g}")]);
        assert!(demo_with("32k").is_ok());
        let e = demo_with("8k:2:16").err().unwrap();
        assert!(e.contains("8k:2:16") && e.contains("4-way"), "{e}");
        assert!(Options::parse(&["--geometry=8k:2:16".into()]).is_ok());
        assert!(Options::parse(&["--geometry=48k".into()]).is_err());
    }

    #[test]
    fn parses_geometries() {
        assert_eq!(parse_geometry("32k"), Ok((32 << 10, 4, 32)));
        assert_eq!(parse_geometry("64K:4"), Ok((64 << 10, 4, 32)));
        assert_eq!(parse_geometry("16384:2:16"), Ok((16 << 10, 2, 16)));
        assert_eq!(parse_geometry("1m"), Ok((1 << 20, 4, 32)));
        for bad in [
            "48k",
            "32k:3",
            "32k:4:24",
            "512",
            "k",
            "",
            "32k:4:32:1",
            "0",
            "x",
        ] {
            assert!(parse_geometry(bad).is_err(), "{bad}");
        }
        assert_eq!(demo_dcache_arg("32k").unwrap(), "vacmm-dcache-kib=32");
        assert_eq!(demo_dcache_arg("1m").unwrap(), "vacmm-dcache-kib=1024");
    }

    #[test]
    fn knows_which_models_alias() {
        let aliases = |cpu, geometry: Option<&str>| {
            model_aliases(&Config {
                board: Board::Versatilepb,
                cpu,
                geometry: geometry.map(String::from),
            })
            .unwrap()
        };
        assert!(aliases(Cpu::Arm926, None));
        assert!(aliases(Cpu::Arm926, Some("4k:4")));
        assert!(aliases(Cpu::Arm1136, None));
        assert!(aliases(Cpu::Arm1136, Some("32k")));
        assert!(!aliases(Cpu::Arm1136, Some("16k")));
        assert!(!aliases(Cpu::Arm1176, None));
        assert!(aliases(Cpu::Arm1176, Some("32k")));
        assert!(aliases(Cpu::Arm1136R2, None));
        assert!(!aliases(Cpu::Arm11MpCore, None));
        // The demo's twin must be flagged on every checked config but the
        // ARM1176's and the MPCore's presets, which do not alias (on
        // versatilepb and on their boards, raspi0 and realview-eb-mpcore).
        let flagged: Vec<String> = checked()
            .into_iter()
            .filter(|c| model_aliases(c).unwrap())
            .map(|c| c.label())
            .collect();
        assert_eq!(
            flagged,
            [
                "arm926",
                "arm1136-r2",
                "arm1136",
                "arm1136 32k",
                "kzm/arm1136"
            ]
        );
    }
}
