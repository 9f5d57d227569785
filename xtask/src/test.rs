//! `cargo xtask test`: every check the project has, in order, then a summary
//! table (suite × CPU × passed / failed). Later steps still run after a
//! failure so one run shows everything that is wrong; the exit status is
//! non-zero if anything failed.

use std::process::Command;
use std::time::Instant;

use crate::cargo::{self, Board, Cpu, Machine, QemuRun, TIMEOUT_STATUS, Target};
use crate::{Demo, boot_demo};
use crate::{package, prereq, sanitize};

/// The on-target test that never ends, used to check the runner's timeout.
const HANG_TEST: &str = "runner_hang";
/// Seconds the hang check gives the runner before it must kill QEMU.
const HANG_TIMEOUT_S: u32 = 3;

/// Features of vacmm that only build on the host (the cache model; the
/// fuzzer's input, whose tests replay the seed corpus).
const HOST_FEATURES: &str = "vacmm/sim,vacmm/arbitrary,vacmm/log";
/// Every host crate: the default members and the cache sanitizer plugin
/// (not a default member, see Cargo.toml), and the minimal kernel's
/// memory manager on the cache model; the board support and the demo
/// kernel only build for ARM.
const HOST_PACKAGES: [&str; 5] = [
    "--workspace",
    "--exclude",
    "vacmm-qemu",
    "--exclude",
    "vacmm-demo",
];

/// One row of the summary.
struct Row {
    suite: String,
    cpu: String,
    passed: usize,
    failed: usize,
    /// Empty when the row is green; otherwise what went wrong.
    problem: String,
}

impl Row {
    fn step(suite: &str, cpu: &str, result: Result<(), String>) -> Row {
        let ok = result.is_ok();
        Row {
            suite: suite.into(),
            cpu: cpu.into(),
            passed: usize::from(ok),
            failed: usize::from(!ok),
            problem: result.err().unwrap_or_default(),
        }
    }
    fn is_green(&self) -> bool {
        self.problem.is_empty() && self.failed == 0
    }
}

/// When the run began, so each banner says how long the steps before it took.
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn banner(title: &str) {
    let at = STARTED.get_or_init(Instant::now).elapsed().as_secs();
    println!("\n==== {title}  (at {}:{:02})", at / 60, at % 60);
}

/// Runs a command; Ok if it exits 0.
pub(crate) fn status_of(command: &mut Command, what: &str) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

pub fn run() -> Result<(), String> {
    STARTED.get_or_init(Instant::now);
    prereq::ensure_all()?;
    let mut rows = Vec::new();

    banner("cargo fmt --check");
    let mut fmt = cargo::cargo();
    fmt.args(["fmt", "--all", "--check"]);
    rows.push(Row::step(
        "fmt",
        "-",
        status_of(&mut fmt, "cargo fmt --check"),
    ));

    let target_tests = cargo::target_test_names()?;

    banner("clippy, host");
    let mut clippy = cargo::cargo();
    clippy
        .args(["clippy", "--all-targets", "--features", HOST_FEATURES])
        .args(HOST_PACKAGES)
        .args(["--", "-D", "warnings"]);
    rows.push(Row::step(
        "clippy",
        "host",
        status_of(&mut clippy, "clippy (host)"),
    ));

    for target in Target::ALL {
        banner(&format!("clippy, {}", target.triple()));
        let mut clippy = cargo::cargo();
        clippy
            .arg("clippy")
            .args(target.cargo_args())
            .args([
                "-p",
                "vacmm",
                "-p",
                "vacmm-qemu",
                "-p",
                "vacmm-demo",
                "-p",
                "vacmm-minimal",
                "--lib",
                "--bins",
            ])
            .args([
                "--features",
                &format!("vacmm/{}", cargo::TARGET_TESTS_FEATURE),
            ]);
        for name in &target_tests {
            clippy.args(["--test", name]);
        }
        clippy.args(["--", "-D", "warnings"]);
        let what = format!("clippy ({})", target.triple());
        rows.push(Row::step(
            "clippy",
            target.triple(),
            status_of(&mut clippy, &what),
        ));
    }

    // The board support of the other boards (each board file builds only
    // for its VACMM_BOARD), and the Pi's raw-image form of it.
    for (board, raw) in Board::ALL
        .into_iter()
        .filter(|b| *b != Board::Versatilepb)
        .map(|b| (b, false))
        .chain([(Board::Raspi0, true)])
    {
        let label = format!("armv6 {board}{}", if raw { " raw image" } else { "" });
        banner(&format!("clippy, {label}"));
        let mut clippy = cargo::cargo();
        if raw {
            clippy.env("VACMM_RAW_IMAGE", "1");
        }
        clippy
            .env("VACMM_BOARD", board.name())
            .arg("clippy")
            .args(Target::Armv6.cargo_args())
            .args([
                "-p",
                "vacmm-qemu",
                "-p",
                "vacmm-demo",
                "-p",
                "vacmm-minimal",
            ])
            .args(["--lib", "--bins", "--", "-D", "warnings"]);
        rows.push(Row::step(
            "clippy",
            &label,
            status_of(&mut clippy, &format!("clippy ({label})")),
        ));
    }

    // What a dependent meets (xtask/src/package.rs): the docs as docs.rs
    // builds them, on the host and on both ARM targets, where `arch` has
    // its backends; the package; the library without the heap; the MSRV.
    for target in [None, Some(Target::Armv5te), Some(Target::Armv6)] {
        let label = target.map_or("host", Target::triple);
        banner(&format!("cargo doc, docs.rs flags, {label}"));
        rows.push(Row::step("doc (docs.rs)", label, package::docs_rs(target)));
    }
    banner("cargo publish --dry-run -p vacmm");
    rows.push(Row::step(
        "publish --dry-run",
        "host",
        package::publish_dry_run(),
    ));
    banner("vacmm without the alloc feature");
    rows.push(Row::step(
        "no alloc",
        "host, armv5te",
        package::without_alloc(),
    ));
    banner("vacmm with its rust-version");
    rows.push(Row::step("MSRV build", "host", package::msrv()));

    banner("host tests");
    rows.push(host_tests());

    // The coherence benchmark at small sizes, so it cannot rot: it fails
    // if any policy shows an oracle violation (or a run cannot finish).
    banner("coherence benchmark, quick (vacmm-bench --quick)");
    let mut quick = cargo::cargo();
    quick.args(["run", "-p", "vacmm-bench", "--", "--quick"]);
    rows.push(Row::step(
        "coherence bench (quick)",
        "host",
        status_of(&mut quick, "vacmm-bench --quick"),
    ));

    // A short fuzzing run (10 s on each preset of ops,
    // fuzz::SHORT_RUN_PRESETS, and 10 s on each pure_* target); the build
    // of the fuzz targets with libFuzzer takes a few minutes on two cores.
    banner("fuzzing, short run (cargo xtask fuzz)");
    rows.push(Row::step("fuzz (short)", "host", crate::fuzz::short_run()));

    for target in Target::ALL {
        let machines: Vec<Machine> = target.cpus().map(Machine::versatile).collect();
        suite_rows(
            target,
            Board::Versatilepb,
            &machines,
            &target_tests,
            &mut rows,
        );
        let mut kernels: Vec<Demo> = machines
            .iter()
            .map(|&machine| Demo {
                machine,
                dcache_kib: None,
            })
            .collect();
        if target == Target::Armv6 {
            kernels.push(Demo {
                machine: Machine::versatile(Cpu::Arm1136),
                dcache_kib: Some(32),
            });
        }
        kernel_rows(target, Board::Versatilepb, &kernels, &mut rows);
    }
    // The boards people own, each with its SoC's CPU (all ARMv6).
    for board in Board::ALL {
        let Some(cpu) = board.cpu() else { continue };
        let machine = Machine { board, cpu };
        suite_rows(Target::Armv6, board, &[machine], &target_tests, &mut rows);
        let demo = Demo {
            machine,
            dcache_kib: None,
        };
        kernel_rows(Target::Armv6, board, &[demo], &mut rows);
    }

    // The suites as raw kernel.img files, booted on raspi0 as the Pi's
    // firmware boots them: loaded at 0x8000, reporting on the UART only.
    banner("raw kernel.img on raspi0 (cargo xtask image --board raspi0)");
    match crate::image::build(&[]) {
        Ok(images) => {
            for (suite, image) in images {
                banner(&format!("{suite} kernel.img on raspi0"));
                rows.push(match crate::image::boot(&image) {
                    Ok((passed, failed)) => Row {
                        suite: format!("{suite} kernel.img"),
                        cpu: "raspi0/arm1176".into(),
                        passed,
                        failed,
                        problem: String::new(),
                    },
                    Err(e) => Row::step(&format!("{suite} kernel.img"), "raspi0/arm1176", Err(e)),
                });
            }
        }
        Err(e) => rows.push(Row::step("kernel.img build", "raspi0", Err(e))),
    }

    // Every on-target suite and the demo under the cache sanitizer: the
    // ordinary ones with no violation, the negative controls reported
    // exactly as they announce.
    banner("cachesan: on-target suites and the demo under the sanitizer");
    match sanitize::sanitize(&sanitize::Options::checked(1)) {
        Ok(runs) => rows.extend(runs.into_iter().map(|run| {
            let result = run.problem.map_or(Ok(()), Err);
            Row::step(&format!("cachesan {}", run.suite), &run.label, result)
        })),
        Err(e) => rows.push(Row::step("cachesan", "-", Err(e))),
    }

    // Debian's Linux 6.1 booting the test init, plainly and under
    // cachesan, whose reports must be those docs/cachesan-linux.md explains
    // (the kernel is built once per machine and kept, see linux/build.rs).
    banner("Linux: the test init plainly and under cachesan");
    let everything = crate::linux::Options {
        boards: crate::linux::Board::ALL.to_vec(),
        sanitize: true,
        bench: false,
    };
    match crate::linux::check(&everything, false) {
        Ok(results) => {
            for result in results {
                let label = result.board.name();
                rows.push(Row::step("linux checks", label, result.plain));
                if let Some(sanitized) = result.sanitized {
                    rows.push(Row::step("linux cachesan", label, sanitized));
                }
            }
        }
        Err(e) => rows.push(Row::step("linux", "-", Err(e))),
    }

    banner("done");
    print_summary(&rows);
    let failures = rows.iter().filter(|row| !row.is_green()).count();
    if failures == 0 {
        Ok(())
    } else {
        Err(format!("{failures} of {} rows failed", rows.len()))
    }
}

/// Builds the on-target suites for `target` on `board` and runs each on
/// every machine (the never-ending one only as the runner's timeout check,
/// on the ARM926).
fn suite_rows(
    target: Target,
    board: Board,
    machines: &[Machine],
    names: &[String],
    rows: &mut Vec<Row>,
) {
    banner(&format!(
        "on-target tests, build for {} on {board}",
        target.triple()
    ));
    let built = match cargo::build_target_tests(target, board, names) {
        Ok(built) => built,
        Err(e) => {
            rows.push(Row::step(
                "build",
                &format!("{} {board}", target.triple()),
                Err(e),
            ));
            return;
        }
    };
    for (name, elf) in &built {
        for &machine in machines {
            if name == HANG_TEST {
                // One machine is enough to check the runner.
                if machine == Machine::versatile(Cpu::Arm926) {
                    banner(&format!("runner timeout check ({name}, {machine})"));
                    rows.push(hang_check(elf, machine));
                }
                continue;
            }
            banner(&format!("{name} on {machine}"));
            rows.push(match cargo::run_on_qemu(elf, machine, None) {
                Ok(run) => on_target_row(name, machine, &run),
                Err(e) => Row::step(name, &machine.to_string(), Err(e)),
            });
        }
    }
}

/// The kernels ([`sanitize::KERNELS`]: the demo on vacmm's `mm`, the
/// minimal kernel on its own) built for `target` on `board`, booted as
/// each of `runs` says: green when each exits 0, which it does only when
/// every program's data checked out.
fn kernel_rows(target: Target, board: Board, runs: &[Demo], rows: &mut Vec<Row>) {
    for kernel in &sanitize::KERNELS {
        let name = kernel.package.trim_start_matches("vacmm-");
        banner(&format!(
            "{name} kernel, build for {} on {board}",
            target.triple()
        ));
        let elf = match cargo::build_bin(target, board, kernel.package) {
            Ok(elf) => elf,
            Err(e) => {
                rows.push(Row::step(&format!("{name} build"), target.triple(), Err(e)));
                continue;
            }
        };
        for demo in runs {
            let label = match demo.dcache_kib {
                Some(kib) => format!("{} ({kib} KiB)", demo.machine),
                None => demo.machine.to_string(),
            };
            banner(&format!("{name} on {label}"));
            rows.push(Row::step(name, &label, boot_demo(&elf, demo).map(|_| ())));
        }
    }
}

/// `cargo test` of the host crates (vacmm, xtask, the sanitizer plugin)
/// with the host-only features, with libtest's counts summed over its binaries.
fn host_tests() -> Row {
    // The model suites write their tables (coverage per preset, bounded
    // exhaustive runs) here; libtest would swallow them as output of
    // passing tests.
    let reports = cargo::target_directory().map(|dir| dir.join("vacmm-reports"));
    if let Ok(dir) = &reports {
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::create_dir_all(dir);
    }
    let mut command = cargo::cargo();
    command
        .args(["test", "--features", HOST_FEATURES])
        .args(HOST_PACKAGES);
    if let Ok(dir) = &reports {
        command.env("VACMM_REPORT_DIR", dir);
    }
    let output = command.output();
    if let Ok(dir) = &reports {
        print_reports(dir);
    }
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            return Row::step(
                "host tests",
                "host",
                Err(format!("cannot run cargo test: {e}")),
            );
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    let (mut passed, mut failed) = (0, 0);
    for line in stdout.lines() {
        // "test result: ok. 5 passed; 0 failed; 0 ignored; ..."
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count_before(rest, " passed");
            failed += count_before(rest, " failed");
        }
    }
    Row {
        suite: "host tests".into(),
        cpu: "host".into(),
        passed,
        failed,
        problem: if output.status.success() {
            String::new()
        } else {
            format!("cargo test failed ({})", output.status)
        },
    }
}

/// Prints the reports the model suites left in `dir`, in name order.
fn print_reports(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            println!("\n==== {name}\n{text}");
        }
    }
}

/// The number just before `label` in `text` ("3 passed" → 3).
fn count_before(text: &str, label: &str) -> usize {
    text.find(label)
        .and_then(|end| text[..end].rsplit([' ', '.', ';']).next()?.parse().ok())
        .unwrap_or(0)
}

/// Reads an on-target run: its last line must be `N passed, M failed`.
fn on_target_row(suite: &str, machine: Machine, run: &QemuRun) -> Row {
    let summary = run.lines.iter().rev().find(|line| !line.trim().is_empty());
    let counts = summary.and_then(|line| {
        let (passed, failed) = line.trim().split_once(" passed, ")?;
        Some((
            passed.parse().ok()?,
            failed.strip_suffix(" failed")?.parse().ok()?,
        ))
    });
    let failed_cases: Vec<&str> = run
        .lines
        .iter()
        .filter_map(|line| {
            line.strip_prefix("test ")?
                .split_once(" ... FAILED")
                .map(|(name, _)| name)
        })
        .collect();
    let mut problem = Vec::new();
    if !failed_cases.is_empty() {
        problem.push(format!("failed: {}", failed_cases.join(", ")));
    }
    if counts.is_none() {
        problem.push("no `N passed, N failed` summary line".into());
    }
    if run.status != Some(0) {
        problem.push(format!("ended with {}", run.describe_status()));
    }
    let (passed, failed) = counts.unwrap_or((0, 0));
    if passed == 0 && problem.is_empty() {
        problem.push("no case ran".into());
    }
    Row {
        suite: suite.into(),
        cpu: machine.to_string(),
        passed,
        failed,
        problem: problem.join("; "),
    }
}

/// The runner must kill a guest that never exits and report a failure.
fn hang_check(elf: &std::path::Path, machine: Machine) -> Row {
    let result = match cargo::run_on_qemu(elf, machine, Some(HANG_TIMEOUT_S)) {
        Ok(run) if run.status == Some(TIMEOUT_STATUS) => Ok(()),
        Ok(run) => Err(format!(
            "a hanging guest ended with {} instead of the runner's timeout",
            run.describe_status()
        )),
        Err(e) => Err(e),
    };
    Row::step("runner timeout", &machine.to_string(), result)
}

fn print_summary(rows: &[Row]) {
    let suite_width = rows.iter().map(|r| r.suite.len()).max().unwrap_or(5).max(5);
    let cpu_width = rows.iter().map(|r| r.cpu.len()).max().unwrap_or(3).max(3);
    println!("\n==== summary");
    println!(
        "{:<suite_width$}  {:<cpu_width$}  {:>6}  {:>6}  result",
        "suite", "cpu", "passed", "failed"
    );
    for row in rows {
        let result = if row.is_green() {
            "ok".to_string()
        } else if row.problem.is_empty() {
            "FAILED".to_string()
        } else {
            format!("FAILED: {}", row.problem)
        };
        println!(
            "{:<suite_width$}  {:<cpu_width$}  {:>6}  {:>6}  {result}",
            row.suite, row.cpu, row.passed, row.failed
        );
    }
}
