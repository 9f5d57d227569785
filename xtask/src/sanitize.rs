//! `cargo xtask sanitize`: the on-target suites under the cache sanitizer
//! (the QEMU plugin in `qemu/cachesan`), which feeds every access, fetch
//! and CP15 operation into vacmm's cache model.
//!
//! - Every ordinary suite must pass *and* produce no violation.
//! - The negative controls (`tests/cachesan_controls.rs`) print what must be
//!   reported (`cachesan-expect kind=… at=…|pc=…`); every expectation must
//!   be met and nothing else reported.
//! - `--demo` also boots the demo kernel under the plugin (it must end with
//!   status 0 and no violation). The demo runs with its default geometry
//!   (QEMU's CTR; 16 KiB on the ARM1176): `--geometry` is not passed on to
//!   it yet, so use it with `--demo` only when they agree.
//!
//! Each run is also made without the plugin, so the summary shows the
//! sanitizer's overhead (wall clock, QEMU start-up included).

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

/// What `cargo xtask sanitize` was asked for.
pub struct Options {
    pub cpus: Vec<Cpu>,
    /// Passed to the plugin as `geometry=` (D- and I-cache), if given.
    pub geometry: Option<String>,
    /// Also run the demo kernel.
    pub demo: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            cpus: Vec::new(),
            geometry: None,
            demo: false,
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
        Ok(options)
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

/// One row of the summary.
struct Row {
    suite: String,
    cpu: Cpu,
    plain: Duration,
    sanitized: Duration,
    violations: Option<u64>,
    problem: Option<String>,
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

/// Runs `elf` on `cpu` without and with the plugin; checks the sanitized run.
fn sanitize_one(
    plugin: &Path,
    logs: &Path,
    options: &Options,
    suite: &str,
    elf: &Path,
    cpu: Cpu,
) -> Row {
    let log = logs.join(format!("{suite}-{cpu}.log"));
    let mut row = Row {
        suite: suite.into(),
        cpu,
        plain: Duration::ZERO,
        sanitized: Duration::ZERO,
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
    let started = Instant::now();
    let plain = cargo::run_on_qemu_quietly(elf, cpu, None, None);
    row.plain = started.elapsed();
    let mut spec = format!(
        "{},cpu={cpu},elf={},log={}",
        plugin.display(),
        elf.display(),
        log.display()
    );
    if let Some(g) = &options.geometry {
        spec += &format!(",geometry={g}");
    }
    let started = Instant::now();
    let run = cargo::run_on_qemu_quietly(elf, cpu, Some(TIMEOUT_S), Some(&spec));
    row.sanitized = started.elapsed();
    let mut problems = Vec::new();
    if let Err(e) = &plain {
        problems.push(format!("plain run: {e}"));
    }
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            row.problem = Some(e);
            return row;
        }
    };
    let demo = suite == "vacmm-demo";
    match guest_counts(&run) {
        Some((_, 0)) if run.status == Some(0) => {}
        None if demo && run.status == Some(0) => {}
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
        Some(_) if suite == CONTROLS => {
            let expected = read_expectations(&run.lines);
            if expected.is_empty() {
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

pub fn run(options: &Options) -> Result<(), String> {
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
        for cpu in options.cpus.iter().filter(|c| c.target() == target) {
            for (name, elf) in &built {
                println!("==== {name} on {cpu} under cachesan");
                let row = sanitize_one(&plugin, &logs, options, name, elf, *cpu);
                print_row(&row);
                rows.push(row);
            }
            if options.demo {
                let elf = cargo::build_bin(target, "vacmm-demo")?;
                println!("==== vacmm-demo on {cpu} under cachesan");
                let row = sanitize_one(&plugin, &logs, options, "vacmm-demo", &elf, *cpu);
                print_row(&row);
                rows.push(row);
            }
        }
    }
    print_summary(&rows);
    let failed = rows.iter().filter(|r| r.problem.is_some()).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failed} of {} sanitized runs failed (logs in {})",
            rows.len(),
            logs.display()
        ))
    }
}

fn print_row(row: &Row) {
    match &row.problem {
        None => println!("  ok ({} violations)", row.violations.unwrap_or(0)),
        Some(p) => println!("  FAILED: {p}"),
    }
}

fn print_summary(rows: &[Row]) {
    println!("\n==== cachesan summary");
    println!(
        "{:<20} {:<8} {:>10} {:>9} {:>9} {:>6}  result",
        "suite", "cpu", "violations", "plain s", "plugin s", "x"
    );
    let (mut plain, mut sanitized) = (Duration::ZERO, Duration::ZERO);
    for row in rows {
        plain += row.plain;
        sanitized += row.sanitized;
        let ratio = row.sanitized.as_secs_f64() / row.plain.as_secs_f64().max(1e-3);
        let result = row
            .problem
            .as_deref()
            .map_or("ok".to_string(), |p| format!("FAILED: {p}"));
        println!(
            "{:<20} {:<8} {:>10} {:>9.2} {:>9.2} {:>6.1}  {result}",
            row.suite,
            row.cpu.qemu_name(),
            row.violations.map_or("-".to_string(), |v| v.to_string()),
            row.plain.as_secs_f64(),
            row.sanitized.as_secs_f64(),
            ratio
        );
    }
    println!(
        "overhead: {:.1} s under the plugin / {:.1} s without = {:.1}x (wall clock, QEMU start-up included)",
        sanitized.as_secs_f64(),
        plain.as_secs_f64(),
        sanitized.as_secs_f64() / plain.as_secs_f64().max(1e-3)
    );
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
    }
}
