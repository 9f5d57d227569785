//! `cargo xtask sanitize`: the on-target suites under the cache sanitizer
//! (the QEMU plugin in `qemu/cachesan`), which feeds every access, fetch
//! and CP15 operation into vacmm's cache model.
//!
//! - Every ordinary suite must pass *and* produce no violation.
//! - The negative controls (`tests/cachesan_controls.rs`) print what must be
//!   reported (`cachesan-expect kind=… at=…|pc=…`); every expectation must
//!   be met and nothing else reported.
//! - `--demo` also boots the demo kernel under the plugin (it must end with
//!   status 0 and no violation). `--geometry` reaches it as its
//!   `vacmm-dcache-kib=` boot argument, so the demo maintains its caches for
//!   the geometry the plugin models (the demo takes 4-way, 32-byte-line
//!   caches only). The demo then boots once more as a negative control,
//!   told to leave out `flush_dcache_page` in its `FILE_POKE` system call
//!   (`vacmm-demo-omit=flush_dcache_page`): it announces the stale read the
//!   plugin must then report, as the controls do, on every cache that
//!   aliases. The test suites keep the geometry they pick themselves
//!   (`tests/coherence.rs::cache_info`): one at least as large as the
//!   modelled cache, which colours at least as finely.
//!
//! Each run is also made without the plugin, so the summary shows the
//! sanitizer's overhead (wall clock, QEMU start-up included). `cargo xtask
//! test` runs [`sanitize`] on each CPU and geometry of [`CHECKED`];
//! `cargo xtask bench` times the same runs and reports the overhead
//! ([`overhead`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cargo::{self, Cpu, QemuRun};
use crate::flags::Flags;
use crate::prereq;

/// The test whose cases make mistakes on purpose.
const CONTROLS: &str = "cachesan_controls";
/// The runner's own hang check: nothing to sanitize.
const SKIPPED: [&str; 1] = ["runner_hang"];
/// Seconds a sanitized guest may take (the plugin slows it down).
const TIMEOUT_S: u32 = 600;

/// The CPUs and geometries `cargo xtask test` sanitizes and `cargo xtask
/// bench` times: the VIVT ARM926, the ARM1136 as QEMU reports it (64 KiB,
/// 4 colours) and with the 32 KiB aliasing cache (2 colours), and the
/// ARM1176 (16 KiB, no aliasing).
pub const CHECKED: [(Cpu, Option<&str>); 4] = [
    (Cpu::Arm926, None),
    (Cpu::Arm1136, None),
    (Cpu::Arm1136, Some("32k")),
    (Cpu::Arm1176, None),
];

/// The overhead target: a suite under the plugin takes at most this many
/// times its time without it.
pub const OVERHEAD_TARGET: f64 = 15.0;

/// What `cargo xtask sanitize` was asked for.
pub struct Options {
    pub cpus: Vec<Cpu>,
    /// Passed to the plugin as `geometry=` (D- and I-cache), if given, and
    /// to the demo kernel as `vacmm-dcache-kib=`.
    pub geometry: Option<String>,
    /// Also run the demo kernel.
    pub demo: bool,
    /// Each guest is run this many times with and without the plugin; the
    /// fastest of each is kept (1 for checking, more for the benchmark).
    pub repeats: u32,
}

impl Options {
    /// Every suite and the demo on `cpus`, once each.
    pub fn on(cpus: &[Cpu], geometry: Option<&str>) -> Options {
        Options {
            cpus: cpus.to_vec(),
            geometry: geometry.map(String::from),
            demo: true,
            repeats: 1,
        }
    }

    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            cpus: Vec::new(),
            geometry: None,
            demo: false,
            repeats: 1,
        };
        let mut flags = Flags::new("sanitize", args);
        while let Some(flag) = flags.next_flag() {
            let mut value = || flags.value(&flag);
            match flag.name {
                "--cpu" => options.cpus.push(value()?.parse()?),
                "--geometry" => options.geometry = Some(value()?),
                "--demo" if flag.inline.is_none() => options.demo = true,
                _ => return Err(format!("sanitize: unrecognised argument `{}`", flag.arg)),
            }
        }
        if options.cpus.is_empty() {
            options.cpus = Cpu::ALL.to_vec();
        }
        if options.demo
            && let Some(g) = &options.geometry
        {
            demo_dcache_arg(g)?;
        }
        Ok(options)
    }

    /// The label of a run on `cpu`: the CPU and any geometry.
    pub fn label(&self, cpu: Cpu) -> String {
        match &self.geometry {
            Some(g) => format!("{cpu} {g}"),
            None => cpu.to_string(),
        }
    }
}

/// The demo kernel's boot argument for the plugin's `geometry=`: the demo
/// takes the size of a 4-way cache with 32-byte lines (`vacmm-dcache-kib=`).
fn demo_dcache_arg(geometry: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        Err(format!(
            "sanitize: --geometry {geometry} cannot be given to the demo kernel: {why}"
        ))
    };
    let mut parts = geometry.split(':');
    let size = parts.next().unwrap_or_default().to_ascii_lowercase();
    let ways = parts.next().unwrap_or("4");
    let line = parts.next().unwrap_or("32");
    if (ways, line) != ("4", "32") || parts.next().is_some() {
        return refuse("it takes 4-way caches with 32-byte lines only");
    }
    let bytes = match (size.strip_suffix('k'), size.strip_suffix('m')) {
        (Some(kib), _) => kib.parse::<u64>().ok().map(|k| k << 10),
        (_, Some(mib)) => mib.parse::<u64>().ok().map(|m| m << 20),
        _ => size.parse::<u64>().ok(),
    };
    match bytes {
        Some(b) if b.is_multiple_of(1024) && b > 0 => Ok(format!("vacmm-dcache-kib={}", b >> 10)),
        _ => refuse("the size is not a whole number of KiB"),
    }
}

/// One line of the plugin's log: `site kind=K pc=0x… at=F+0x… count=N`.
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
    /// The CPU and any `--geometry` ([`Options::label`]).
    pub label: String,
    /// The fastest of the runs without the plugin (`Duration::MAX` if the
    /// guest never ran, shown as 0).
    pub plain: Duration,
    /// The fastest of the runs under the plugin (likewise).
    pub sanitized: Duration,
    /// The plugin's `result violations=N`, if it wrote one.
    pub violations: Option<u64>,
    /// What went wrong: `None` when the run is clean (or, for the negative
    /// controls, reported exactly as they expect).
    pub problem: Option<String>,
}

/// Builds the plugin (release: the model is on every access's path).
fn build_plugin() -> Result<PathBuf, String> {
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
#[derive(Clone, Copy, PartialEq)]
enum Verdict {
    /// No violation.
    Clean,
    /// Exactly what the guest announces (`cachesan-expect`), and it must
    /// announce something: the negative controls.
    Announced,
    /// Exactly what the guest announces, which may be nothing: the demo
    /// with a call left out, which expects nothing where the cache cannot
    /// alias.
    AnnouncedIfAny,
}

/// One guest to run: a test suite or the demo kernel.
struct Guest<'a> {
    /// The suite, or the demo (with what it leaves out).
    name: &'a str,
    elf: &'a Path,
    /// Boot arguments (`VACMM_QEMU_APPEND`).
    args: Option<String>,
    /// The demo prints no `N passed, M failed` line.
    is_demo: bool,
    verdict: Verdict,
}

/// The demo twin's name in the summary and its log.
const DEMO_OMITTING: &str = "vacmm-demo-omit";
/// The demo's boot argument that leaves out `flush_dcache_page`.
const OMIT_FLUSH_DCACHE_PAGE: &str = "vacmm-demo-omit=flush_dcache_page";

/// Runs `guest` on `cpu` without and with the plugin; checks the sanitized run.
fn sanitize_one(plugin: &Path, logs: &Path, options: &Options, guest: &Guest, cpu: Cpu) -> Row {
    let (suite, elf) = (guest.name, guest.elf);
    let log_name = options.label(cpu).replace([' ', ':'], "-");
    let log = logs.join(format!("{suite}-{log_name}.log"));
    let mut row = Row {
        suite: suite.into(),
        label: options.label(cpu),
        plain: Duration::MAX,
        sanitized: Duration::MAX,
        violations: None,
        problem: None,
    };
    // QEMU splits -plugin's argument at commas.
    if [plugin, elf, log.as_path()]
        .iter()
        .any(|p| p.to_string_lossy().contains(','))
    {
        row.problem = Some("a path has a comma, which -plugin cannot take".into());
        return row;
    }
    let args = guest.args.as_deref();
    let mut spec = format!(
        "{},cpu={cpu},elf={},log={}",
        plugin.display(),
        elf.display(),
        log.display()
    );
    if let Some(g) = &options.geometry {
        spec += &format!(",geometry={g}");
    }
    // Alternate the two kinds of run so that a burst of load elsewhere on
    // the machine does not land on one kind only.
    let mut problems = Vec::new();
    let mut last = None;
    for _ in 0..options.repeats.max(1) {
        let started = Instant::now();
        let plain = cargo::run_on_qemu_quietly(elf, cpu, None, None, args);
        row.plain = row.plain.min(started.elapsed());
        if let Err(e) = plain {
            problems.push(format!("plain run: {e}"));
        }
        let started = Instant::now();
        let run = cargo::run_on_qemu_quietly(elf, cpu, Some(TIMEOUT_S), Some(&spec), args);
        row.sanitized = row.sanitized.min(started.elapsed());
        last = Some(run);
    }
    let run = match last.expect("at least one run") {
        Ok(run) => run,
        Err(e) => {
            row.problem = Some(e);
            return row;
        }
    };
    match guest_counts(&run) {
        Some((_, 0)) if run.status == Some(0) => {}
        None if guest.is_demo && run.status == Some(0) => {}
        _ => problems.push(format!(
            "the guest itself failed under the plugin ({})",
            run.describe_status()
        )),
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let (sites, result) = read_log(&text);
    row.violations = result;
    match result {
        None => problems.push(format!("no cachesan summary in {}", log.display())),
        Some(_) if guest.verdict != Verdict::Clean => {
            let expected = read_expectations(&run.lines);
            if expected.is_empty() && guest.verdict == Verdict::Announced {
                problems.push("the controls expected nothing".into());
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
        Some(0) => {}
        Some(n) => {
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
    if !problems.is_empty() {
        row.problem = Some(problems.join("; "));
    }
    row
}

/// The demo kernel's package and binary.
const DEMO: &str = "vacmm-demo";

/// `cargo xtask sanitize`: every run, a summary, an error if any failed.
pub fn run(options: &Options) -> Result<(), String> {
    let rows = sanitize(options)?;
    print_summary(&rows);
    let failed = rows.iter().filter(|r| r.problem.is_some()).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failed} of {} sanitized runs failed (logs in {})",
            rows.len(),
            cargo::target_dir()?.join("cachesan").display()
        ))
    }
}

/// Builds the plugin and the guests, and runs every on-target suite (and,
/// if asked, the demo) with and without the plugin. Err only if something
/// could not be built; each run's outcome is in its row.
pub fn sanitize(options: &Options) -> Result<Vec<Row>, String> {
    prereq::ensure_all()?;
    let plugin = build_plugin()?;
    let logs = cargo::target_dir()?.join("cachesan");
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let names: Vec<String> = cargo::target_test_names()?
        .into_iter()
        .filter(|n| !SKIPPED.contains(&n.as_str()))
        .collect();
    let mut rows = Vec::new();
    let mut targets: Vec<_> = options.cpus.iter().map(|c| c.target()).collect();
    targets.dedup();
    for target in targets {
        let built = cargo::build_target_tests(target, &names)?;
        let mut guests: Vec<Guest> = built
            .iter()
            .map(|(name, elf)| Guest {
                name,
                elf,
                args: None,
                is_demo: false,
                verdict: if name == CONTROLS {
                    Verdict::Announced
                } else {
                    Verdict::Clean
                },
            })
            .collect();
        let demo_elf = if options.demo {
            Some(cargo::build_bin(target, DEMO)?)
        } else {
            None
        };
        if let Some(elf) = &demo_elf {
            let geometry = match &options.geometry {
                Some(g) => Some(demo_dcache_arg(g)?),
                None => None,
            };
            let omitting = match &geometry {
                Some(g) => format!("{g} {OMIT_FLUSH_DCACHE_PAGE}"),
                None => OMIT_FLUSH_DCACHE_PAGE.into(),
            };
            guests.push(Guest {
                name: DEMO,
                elf,
                args: geometry,
                is_demo: true,
                verdict: Verdict::Clean,
            });
            guests.push(Guest {
                name: DEMO_OMITTING,
                elf,
                args: Some(omitting),
                is_demo: true,
                verdict: Verdict::AnnouncedIfAny,
            });
        }
        for cpu in options.cpus.iter().filter(|c| c.target() == target) {
            for guest in &guests {
                let label = options.label(*cpu);
                println!("==== {} on {label} under cachesan", guest.name);
                let row = sanitize_one(&plugin, &logs, options, guest, *cpu);
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
    let mut lines = vec![format!(
        "{:<18} {:<14} {:>10} {:>9} {:>9} {:>6}  result",
        "suite", "cpu", "violations", "plain s", "plugin s", "x"
    )];
    for row in rows {
        let result = row
            .problem
            .as_deref()
            .map_or("ok".to_string(), |p| format!("FAILED: {p}"));
        lines.push(format!(
            "{:<18} {:<14} {:>10} {:>9.2} {:>9.2} {:>6.1}  {result}",
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
        let args: Vec<String> = ["--cpu", "arm1136", "--geometry=32k", "--demo"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = Options::parse(&args).unwrap();
        assert_eq!(o.cpus, vec![Cpu::Arm1136]);
        assert_eq!(o.geometry.as_deref(), Some("32k"));
        assert!(o.demo);
        assert_eq!(Options::parse(&[]).unwrap().cpus, Cpu::ALL.to_vec());
        assert!(Options::parse(&["--cpu".into(), "arm7".into()]).is_err());
        assert!(Options::parse(&["--fast".into()]).is_err());
        // The demo takes 4-way caches with 32-byte lines only.
        let demo_with = |g: &str| Options::parse(&["--demo".into(), format!("--geometry={g}")]);
        assert!(demo_with("32k").is_ok());
        let e = demo_with("8k:2:16").err().unwrap();
        assert!(e.contains("8k:2:16") && e.contains("4-way"), "{e}");
        assert!(Options::parse(&["--geometry=8k:2:16".into()]).is_ok());
    }

    #[test]
    fn gives_the_demo_the_modelled_geometry() {
        assert_eq!(demo_dcache_arg("32k").unwrap(), "vacmm-dcache-kib=32");
        assert_eq!(demo_dcache_arg("64K:4").unwrap(), "vacmm-dcache-kib=64");
        assert_eq!(
            demo_dcache_arg("16384:4:32").unwrap(),
            "vacmm-dcache-kib=16"
        );
        assert_eq!(demo_dcache_arg("1m").unwrap(), "vacmm-dcache-kib=1024");
        for bad in ["32k:2", "32k:4:64", "1000", "k", "", "32k:4:32:1", "0"] {
            assert!(demo_dcache_arg(bad).is_err(), "{bad}");
        }
    }
}
