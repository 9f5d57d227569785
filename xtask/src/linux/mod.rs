//! `cargo xtask linux [--cpu arm926|arm1176] [--sanitize]`: Debian's Linux
//! 6.1, built small for a board ([`build`]), boots the project's test init
//! (`qemu/linux/init/`) in QEMU, plainly and under cachesan; the init's
//! checks must all pass, and under cachesan the reports must be exactly
//! those `docs/cachesan-linux.md` explains.

pub mod bench;
mod build;
mod reports;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::flags::Flags;

/// The boards Linux boots on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    /// Versatile PB, ARM926EJ-S (ARMv5, VIVT).
    VersatileArm926,
    /// Raspberry Pi Zero, BCM2835 with an ARM1176JZF-S (ARMv6, 16 KiB
    /// VIPT: no aliasing).
    Raspi0Arm1176,
}

impl Board {
    pub const ALL: [Board; 2] = [Board::VersatileArm926, Board::Raspi0Arm1176];

    pub fn name(self) -> &'static str {
        match self {
            Board::VersatileArm926 => "versatilepb-arm926",
            Board::Raspi0Arm1176 => "raspi0-arm1176",
        }
    }

    /// The `--cpu` that selects it.
    pub fn cpu(self) -> &'static str {
        match self {
            Board::VersatileArm926 => "arm926",
            Board::Raspi0Arm1176 => "arm1176",
        }
    }

    /// Config fragments in `qemu/linux/`, merged in order over tinyconfig.
    pub fn fragments(self) -> &'static [&'static str] {
        match self {
            Board::VersatileArm926 => &["common.config", "versatile.config"],
            Board::Raspi0Arm1176 => &["common.config", "raspi.config"],
        }
    }

    /// The device tree, as a make target under `arch/arm/boot/dts`.
    pub fn dtb(self) -> &'static str {
        match self {
            Board::VersatileArm926 => "versatile-pb.dtb",
            Board::Raspi0Arm1176 => "bcm2835-rpi-zero.dtb",
        }
    }

    fn qemu_args(self) -> &'static [&'static str] {
        match self {
            // The board's AACI sound device gets the "none" audio backend
            // so that QEMU probes no host audio (as qemu/runner does).
            Board::VersatileArm926 => &[
                "-M",
                "versatilepb",
                "-cpu",
                "arm926",
                "-m",
                "128M",
                "-audiodev",
                "none,id=vacmm-snd",
                "-global",
                "pl041.audiodev=vacmm-snd",
            ],
            // The board has its 512 MiB and its ARM1176 built in.
            Board::Raspi0Arm1176 => &["-M", "raspi0"],
        }
    }

    /// cachesan's model of it: the preset and the RAM QEMU gives it.
    fn plugin_args(self) -> &'static str {
        match self {
            Board::VersatileArm926 => "cpu=arm926,ram=128M",
            Board::Raspi0Arm1176 => "cpu=arm1176,ram=512M",
        }
    }
}

/// What `cargo xtask linux` was asked to do.
#[derive(Debug, Default)]
pub struct Options {
    /// The boards; every one when empty.
    pub boards: Vec<Board>,
    pub sanitize: bool,
    /// Only the measurement of `cargo xtask bench`'s Linux row.
    pub bench: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut flags = Flags::new("linux", args);
        while let Some(flag) = flags.next_flag() {
            match flag.name {
                "--cpu" => {
                    let cpu = flags.value(&flag)?;
                    let board =
                        Board::ALL
                            .into_iter()
                            .find(|b| b.cpu() == cpu)
                            .ok_or_else(|| {
                                format!(
                                    "linux: --cpu {cpu:?}: expected one of {}",
                                    Board::ALL.map(Board::cpu).join(", ")
                                )
                            })?;
                    options.boards.push(board);
                }
                "--sanitize" => options.sanitize = true,
                "--bench" => options.bench = true,
                _ => {
                    return Err(format!(
                        "linux: unrecognised argument {:?}\n\n{}",
                        flag.arg,
                        crate::USAGE
                    ));
                }
            }
        }
        if options.boards.is_empty() {
            options.boards = Board::ALL.to_vec();
        }
        Ok(options)
    }
}

/// The console line the init ends with.
const RESULT_PREFIX: &str = "vacmm-linux: result ";
/// A boot and every check: about 2 s plain, under cachesan about 40 s.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(300);

/// One boot's console and how long it took.
pub(crate) struct Boot {
    pub lines: Vec<String>,
    pub elapsed: Duration,
    pub status: Option<i32>,
}

/// QEMU's arguments for booting `built` on `board`, with `plugin` as its
/// `-plugin` if given.
fn qemu_args(board: Board, built: &build::Built, plugin: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = board.qemu_args().iter().map(|a| a.to_string()).collect();
    args.extend(
        [
            "-nographic",
            "-no-reboot",
            "-monitor",
            "none",
            "-serial",
            "stdio",
        ]
        .map(String::from),
    );
    for (flag, path) in [
        ("-kernel", &built.zimage),
        ("-dtb", &built.dtb),
        ("-initrd", &built.initrd),
    ] {
        args.push(flag.into());
        args.push(path.display().to_string());
    }
    // Deterministic runs, so that the reports are the same every time
    // (docs/cachesan-linux.md lists them): the virtual clock counts
    // instructions (-icount; timer interrupts land at the same
    // instruction whatever the host does), and no address is
    // randomised (norandmaps: the cache sets a buffer uses are the same).
    args.extend(["-icount", "shift=0,sleep=off"].map(String::from));
    args.extend(["-append", "console=ttyAMA0 panic=-1 quiet norandmaps"].map(String::from));
    if let Some(spec) = plugin {
        args.extend(["-plugin".to_string(), spec.to_string()]);
    }
    args
}

/// Boots `built` on `board`, with `plugin` as QEMU's `-plugin` if given.
fn boot(
    board: Board,
    built: &build::Built,
    plugin: Option<&str>,
    echo: bool,
) -> Result<Boot, String> {
    let mut command = Command::new("timeout");
    command
        .args([
            "--kill-after=5",
            &TIMEOUT.as_secs().to_string(),
            "qemu-system-arm",
        ])
        .args(qemu_args(board, built, plugin))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let start = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run qemu-system-arm: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let lines = crate::cargo::read_console(stdout, echo);
    let status = child.wait().map_err(|e| format!("waiting for QEMU: {e}"))?;
    Ok(Boot {
        lines,
        elapsed: start.elapsed(),
        status: status.code(),
    })
}

/// The checks' verdict: `Ok(passed)` when the init reported every check
/// passing.
pub(crate) fn verdict(boot: &Boot) -> Result<u32, String> {
    let Some(result) = boot
        .lines
        .iter()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
    else {
        let status = match boot.status {
            Some(124 | 137) => "a timeout".to_string(),
            Some(code) => format!("exit status {code}"),
            None => "a signal".into(),
        };
        return Err(format!(
            "the init printed no result line; QEMU ended with {status}"
        ));
    };
    let number = |key: &str| -> Option<u32> {
        result
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|n| n.parse().ok())
    };
    match (number("passed="), number("failed=")) {
        (Some(passed), Some(0)) if passed > 0 => Ok(passed),
        (Some(passed), Some(failed)) => Err(format!("{failed} checks failed, {passed} passed")),
        _ => Err(format!("unreadable result line {result:?}")),
    }
}

/// One boot under cachesan, with `omit=` if given: the console and the
/// plugin's log.
fn sanitized_boot(
    board: Board,
    built: &build::Built,
    plugin: &Path,
    omit: Option<&str>,
) -> Result<(Boot, String), String> {
    let logs = crate::cargo::target_directory()?.join("linux");
    let suffix = omit.map_or(String::new(), |s| format!("-omit-{s}"));
    let log = logs.join(format!("{}-cachesan{suffix}.log", board.name()));
    let _ = std::fs::remove_file(&log);
    let paths = [
        plugin,
        built.vmlinux.as_path(),
        built.init.as_path(),
        log.as_path(),
    ];
    if let Some(p) = paths.iter().find(|p| p.to_string_lossy().contains(',')) {
        return Err(format!(
            "{} has a comma, which QEMU's -plugin cannot take",
            p.display()
        ));
    }
    let mut spec = format!(
        "{},{},elf={},elf={},log={}",
        plugin.display(),
        board.plugin_args(),
        built.vmlinux.display(),
        built.init.display(),
        log.display()
    );
    if let Some(symbol) = omit {
        spec += &format!(",omit={symbol}");
    }
    let run = boot(board, built, Some(&spec), false)?;
    let text = std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    Ok((run, text))
}

/// Boots `built` under cachesan and compares its report groups with the
/// page that explains them, then runs each `omit=` control the page lists
/// and compares what it adds; returns the problems.
fn sanitized(board: Board, built: &build::Built, plugin: &Path) -> Result<Vec<String>, String> {
    let (run, text) = sanitized_boot(board, built, plugin, None)?;
    let mut problems = Vec::new();
    match verdict(&run) {
        Ok(passed) => println!(
            "xtask: {} under cachesan: {passed} checks passed in {:.1} s",
            board.name(),
            run.elapsed.as_secs_f64()
        ),
        Err(e) => problems.push(format!("under cachesan: {e}")),
    }
    for group in reports::groups(&text) {
        println!(
            "xtask:   {} in {}: {} reports",
            group.kind, group.function, group.count
        );
    }
    let doc = reports::read_doc(&crate::cargo::root())?;
    problems.extend(reports::compare(board.name(), &text, &doc));
    let mut symbols: Vec<String> = reports::controls(&doc, board.name())
        .into_iter()
        .map(|c| c.0)
        .collect();
    symbols.sort();
    symbols.dedup();
    for symbol in symbols {
        let (run, omitted) = sanitized_boot(board, built, plugin, Some(&symbol))?;
        if let Err(e) = verdict(&run) {
            problems.push(format!("with omit={symbol}: {e}"));
        }
        let found = reports::compare_control(board.name(), &symbol, &text, &omitted, &doc);
        println!(
            "xtask: {} under cachesan with omit={symbol}: {}",
            board.name(),
            if found.is_empty() {
                "as the page says"
            } else {
                "differs from the page"
            }
        );
        problems.extend(found);
    }
    if !problems.is_empty() {
        problems.push(format!(
            "the reports are in {}",
            crate::cargo::target_directory()?.join("linux").display()
        ));
    }
    Ok(problems)
}

/// One board's results: the plain boot, and the sanitized one if asked.
pub struct BoardResult {
    pub board: Board,
    pub plain: Result<(), String>,
    pub sanitized: Option<Result<(), String>>,
}

/// Builds and boots Linux on each of `options.boards`; echoes the plain
/// boot's console when `echo`.
pub fn check(options: &Options, echo: bool) -> Result<Vec<BoardResult>, String> {
    crate::prereq::ensure_all()?;
    let plugin = if options.sanitize {
        Some(crate::sanitize::build_plugin()?)
    } else {
        None
    };
    let mut results = Vec::new();
    for &board in &options.boards {
        let built = match build::build(board) {
            Ok(built) => built,
            Err(e) => {
                results.push(BoardResult {
                    board,
                    plain: Err(e),
                    sanitized: None,
                });
                continue;
            }
        };
        println!(
            "xtask: Linux {} on {}: booting the test init",
            built.source_version,
            board.name()
        );
        let plain = boot(board, &built, None, echo).and_then(|run| {
            let passed = verdict(&run)?;
            println!(
                "xtask: {}: {passed} checks passed in {:.1} s",
                board.name(),
                run.elapsed.as_secs_f64()
            );
            Ok(())
        });
        let sanitized = plugin.as_deref().map(|plugin| {
            let problems = sanitized(board, &built, plugin)?;
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        });
        results.push(BoardResult {
            board,
            plain,
            sanitized,
        });
    }
    Ok(results)
}

pub fn run(options: &Options) -> Result<(), String> {
    if options.bench {
        return bench::run();
    }
    let mut failures = Vec::new();
    for result in check(options, true)? {
        let name = result.board.name();
        if let Err(e) = result.plain {
            failures.push(format!("{name} plain: {e}"));
        }
        if let Some(Err(e)) = result.sanitized {
            failures.push(format!("{name} under cachesan: {e}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}
