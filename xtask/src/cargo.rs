//! Building for the ARM targets and booting the results under QEMU.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

use serde_json::Value;

/// The feature that turns on vacmm's on-target integration tests.
pub const TARGET_TESTS_FEATURE: &str = "target-tests";

/// The QEMU CPU models the project runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cpu {
    /// ARM926EJ-S, ARMv5TEJ, VIVT caches.
    Arm926,
    /// ARM1136JF-S r0p2, ARMv6 without the v6K extensions (no `clrex`,
    /// byte/halfword/doubleword exclusives), so it runs the ARMv5TE build.
    Arm1136R2,
    /// ARM1136JF-S r1, ARMv6(K), VIPT caches.
    Arm1136,
    /// ARM1176JZF-S, ARMv6KZ, VIPT caches.
    Arm1176,
    /// ARM11 MPCore, ARMv6K, no block cache operations; its D-cache needs
    /// no colouring (CTR P bit clear).
    Arm11MpCore,
}

impl Cpu {
    pub const ALL: [Cpu; 5] = [
        Cpu::Arm926,
        Cpu::Arm1136R2,
        Cpu::Arm1136,
        Cpu::Arm1176,
        Cpu::Arm11MpCore,
    ];

    /// QEMU's `-cpu` name.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Cpu::Arm926 => "arm926",
            Cpu::Arm1136R2 => "arm1136-r2",
            Cpu::Arm1136 => "arm1136",
            Cpu::Arm1176 => "arm1176",
            Cpu::Arm11MpCore => "arm11mpcore",
        }
    }

    /// The Rust target whose code this CPU runs: `armv6-none-eabi` assumes
    /// v6K, which the ARM1136 r0 lacks (rustc's platform docs), so it runs
    /// the ARMv5TE image, which picks its backend from MIDR at run time.
    pub fn target(self) -> Target {
        match self {
            Cpu::Arm926 | Cpu::Arm1136R2 => Target::Armv5te,
            Cpu::Arm1136 | Cpu::Arm1176 | Cpu::Arm11MpCore => Target::Armv6,
        }
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.qemu_name())
    }
}

impl FromStr for Cpu {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Cpu::ALL
            .into_iter()
            .find(|cpu| cpu.qemu_name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Cpu::ALL.iter().map(|cpu| cpu.qemu_name()).collect();
                format!("unknown CPU `{s}`: expected one of {}", names.join(", "))
            })
    }
}

/// The QEMU boards the kernels are built for and run on: `VACMM_BOARD`
/// for qemu/bsp's build script and for qemu/runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    /// Any CPU (`-cpu`); every suite's home.
    Versatilepb,
    /// BCM2835, ARM1176 (Raspberry Pi Zero / 1).
    Raspi0,
    /// i.MX31, ARM1136 r1p3, RAM at 0x8000_0000.
    Kzm,
    /// ARM11 MPCore, one CPU.
    RealviewEbMpcore,
}

impl Board {
    pub const ALL: [Board; 4] = [
        Board::Versatilepb,
        Board::Raspi0,
        Board::Kzm,
        Board::RealviewEbMpcore,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Board::Versatilepb => "versatilepb",
            Board::Raspi0 => "raspi0",
            Board::Kzm => "kzm",
            Board::RealviewEbMpcore => "realview-eb-mpcore",
        }
    }

    /// The SoC's CPU; `None` on versatilepb, which takes any.
    pub fn cpu(self) -> Option<Cpu> {
        match self {
            Board::Versatilepb => None,
            Board::Raspi0 => Some(Cpu::Arm1176),
            Board::Kzm => Some(Cpu::Arm1136),
            Board::RealviewEbMpcore => Some(Cpu::Arm11MpCore),
        }
    }

    /// Physical address of the board's RAM (cachesan's `ram-base=`).
    pub fn ram_base(self) -> u32 {
        match self {
            Board::Kzm => 0x8000_0000,
            _ => 0,
        }
    }

    /// The board with its own CPU, or on versatilepb `cpu` (the ARM926
    /// if none); Err if the board has another CPU.
    pub fn with_cpu(self, cpu: Option<Cpu>) -> Result<Machine, String> {
        match (self.cpu(), cpu) {
            (Some(own), Some(asked)) if own != asked => {
                Err(format!("{} has an {own}, not an {asked}", self.name()))
            }
            (Some(own), _) => Ok(Machine {
                board: self,
                cpu: own,
            }),
            (None, asked) => Ok(Machine::versatile(asked.unwrap_or(Cpu::Arm926))),
        }
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Board {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Board::ALL
            .into_iter()
            .find(|board| board.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Board::ALL.iter().map(|b| b.name()).collect();
                format!("unknown board `{s}`: expected one of {}", names.join(", "))
            })
    }
}

/// A board and the CPU it runs: what one QEMU run boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine {
    pub board: Board,
    pub cpu: Cpu,
}

impl Machine {
    /// versatilepb with `cpu`.
    pub fn versatile(cpu: Cpu) -> Machine {
        Machine {
            board: Board::Versatilepb,
            cpu,
        }
    }
}

/// The CPU alone on versatilepb (the rows the summary always had), else
/// `board/cpu`.
impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.board {
            Board::Versatilepb => write!(f, "{}", self.cpu),
            board => write!(f, "{board}/{}", self.cpu),
        }
    }
}

/// The two bare-metal ARM targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Armv5te,
    Armv6,
}

impl Target {
    pub const ALL: [Target; 2] = [Target::Armv5te, Target::Armv6];

    pub fn triple(self) -> &'static str {
        match self {
            Target::Armv5te => "armv5te-none-eabi",
            Target::Armv6 => "armv6-none-eabi",
        }
    }

    /// The CPUs that run this target's code.
    pub fn cpus(self) -> impl Iterator<Item = Cpu> {
        Cpu::ALL.into_iter().filter(move |cpu| cpu.target() == self)
    }

    /// Arguments that make a cargo command build for this target: the
    /// standard library from source, with compiler-builtins' `mem` functions
    /// (there is no libc to provide memcpy and friends).
    pub fn cargo_args(self) -> [&'static str; 4] {
        [
            "-Zbuild-std=core,alloc",
            "-Zbuild-std-features=compiler-builtins-mem",
            "--target",
            self.triple(),
        ]
    }
}

/// The repository root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

/// A `cargo` command run at the repository root, with the cargo that runs us.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // The board is chosen per build (build_target_tests, build_bin), never
    // by what the caller's shell happens to hold: unset, it is versatilepb.
    command
        .current_dir(root())
        .env_remove("VACMM_BOARD")
        .env_remove("VACMM_RAW_IMAGE");
    command
}

/// `cargo metadata` of the workspace (no dependencies), through the
/// `cargo_metadata` crate and the cargo that runs us.
fn metadata() -> Result<cargo_metadata::Metadata, String> {
    let mut command = cargo_metadata::MetadataCommand::new();
    if let Some(cargo) = std::env::var_os("CARGO") {
        command.cargo_path(cargo);
    }
    command
        .current_dir(root())
        .no_deps()
        .exec()
        .map_err(|e| format!("cargo metadata failed: {e}"))
}

/// vacmm's package in `metadata`.
fn vacmm(metadata: &cargo_metadata::Metadata) -> Result<&cargo_metadata::Package, String> {
    metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "vacmm")
        .ok_or_else(|| "cargo metadata lists no vacmm package".into())
}

/// Where cargo puts build output (honours `CARGO_TARGET_DIR`).
pub fn target_directory() -> Result<PathBuf, String> {
    Ok(metadata()?.target_directory.into_std_path_buf())
}

/// vacmm's criterion benchmarks (its `bench` targets).
pub fn bench_names() -> Result<Vec<String>, String> {
    let metadata = metadata()?;
    Ok(vacmm(&metadata)?
        .targets
        .iter()
        .filter(|t| t.is_bench())
        .map(|t| t.name.clone())
        .collect())
}

/// The on-target integration tests: vacmm's test targets that require the
/// `target-tests` feature.
pub fn target_test_names() -> Result<Vec<String>, String> {
    let metadata = metadata()?;
    Ok(vacmm(&metadata)?
        .targets
        .iter()
        .filter(|t| {
            t.is_test()
                && t.required_features
                    .iter()
                    .any(|f| f == TARGET_TESTS_FEATURE)
        })
        .map(|t| t.name.clone())
        .collect())
}

/// vacmm's declared minimum Rust version (`rust-version`).
pub fn rust_version() -> Result<String, String> {
    let metadata = metadata()?;
    vacmm(&metadata)?
        .rust_version
        .as_ref()
        .map(|v| v.to_string())
        .ok_or_else(|| "vacmm declares no rust-version".into())
}

/// The features docs.rs builds vacmm's documentation with
/// (`[package.metadata.docs.rs] features`).
pub fn docs_rs_features() -> Result<Vec<String>, String> {
    let metadata = metadata()?;
    let features = &vacmm(&metadata)?.metadata["docs"]["rs"]["features"];
    Ok(features
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(String::from))
        .collect())
}

/// Runs a cargo build command with `--message-format=json-render-diagnostics`
/// and returns the executables it produced, by target name. Diagnostics go
/// to the terminal as usual.
pub fn build_executables(mut command: Command) -> Result<Vec<(String, PathBuf)>, String> {
    command
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut executables = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo output: {e}"))?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && let (Some(name), Some(exe)) = (
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            )
        {
            executables.push((name.to_string(), PathBuf::from(exe)));
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    if status.success() {
        Ok(executables)
    } else {
        Err(format!("cargo build failed ({status})"))
    }
}

/// Builds the named on-target tests for `target`; returns (test name, ELF).
pub fn build_target_tests(
    target: Target,
    board: Board,
    names: &[String],
) -> Result<Vec<(String, PathBuf)>, String> {
    let mut command = cargo();
    command
        .env("VACMM_BOARD", board.name())
        .args(["test", "--no-run"])
        .args(target.cargo_args())
        .args(["--package", "vacmm", "--features", TARGET_TESTS_FEATURE]);
    for name in names {
        command.args(["--test", name]);
    }
    build_executables(command)
}

/// Builds one binary of a package for `target`; returns its ELF.
pub fn build_bin(target: Target, board: Board, package: &str) -> Result<PathBuf, String> {
    let mut command = cargo();
    command
        .env("VACMM_BOARD", board.name())
        .arg("build")
        .args(target.cargo_args())
        .args(["--package", package, "--bins"]);
    build_executables(command)?
        .into_iter()
        .map(|(_, exe)| exe)
        .next()
        .ok_or_else(|| {
            format!(
                "building {package} for {} ({board}) produced no executable",
                target.triple()
            )
        })
}

/// What one QEMU run printed and how it ended.
pub struct QemuRun {
    /// The runner's exit status; `None` if it was killed by a signal.
    pub status: Option<i32>,
    /// The guest's console output, line by line.
    pub lines: Vec<String>,
}

/// The runner's status for a guest killed by its wall-clock timeout.
pub const TIMEOUT_STATUS: i32 = 124;

impl QemuRun {
    pub fn describe_status(&self) -> String {
        match self.status {
            Some(0) => "exit status 0".into(),
            Some(TIMEOUT_STATUS) => "a timeout (guest killed)".into(),
            Some(code) => format!("exit status {code}"),
            None => "a signal".into(),
        }
    }
}

/// Boots `elf` on `cpu` through `qemu/runner`, echoing the guest's console
/// output as it comes and keeping it for the caller.
pub fn run_on_qemu(
    elf: &Path,
    machine: Machine,
    timeout_s: Option<u32>,
) -> Result<QemuRun, String> {
    run_runner(elf, machine, timeout_s, None, None, true)
}

/// As [`run_on_qemu`], with `args` added to the guest's semihosting
/// command line (`VACMM_QEMU_APPEND`).
pub fn run_on_qemu_with_args(
    elf: &Path,
    machine: Machine,
    timeout_s: Option<u32>,
    args: Option<&str>,
) -> Result<QemuRun, String> {
    run_runner(elf, machine, timeout_s, None, args, true)
}

/// As [`run_on_qemu_with_args`], without echoing the console, optionally
/// with a TCG plugin (`-plugin <spec>`, through the runner's
/// `VACMM_QEMU_PLUGIN`).
pub fn run_on_qemu_quietly(
    elf: &Path,
    machine: Machine,
    timeout_s: Option<u32>,
    plugin: Option<&str>,
    args: Option<&str>,
) -> Result<QemuRun, String> {
    run_runner(elf, machine, timeout_s, plugin, args, false)
}

/// A guest's console, line by line, echoed as it comes when `echo`.
pub fn read_console(stdout: impl std::io::Read, echo: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        // The guest prints CRLF line ends; a non-UTF-8 byte is not fatal.
        let line = line.unwrap_or_else(|e| format!("<unreadable console output: {e}>"));
        let line = line.trim_end_matches('\r').to_string();
        if echo {
            println!("{line}");
        }
        lines.push(line);
    }
    lines
}

fn run_runner(
    elf: &Path,
    machine: Machine,
    timeout_s: Option<u32>,
    plugin: Option<&str>,
    args: Option<&str>,
    echo: bool,
) -> Result<QemuRun, String> {
    let mut command = Command::new(root().join("qemu/runner"));
    command
        .arg(elf)
        .env("VACMM_BOARD", machine.board.name())
        .env("VACMM_QEMU_CPU", machine.cpu.qemu_name())
        .env_remove("VACMM_QEMU_PLUGIN")
        .stdout(Stdio::piped());
    if let Some(args) = args {
        command.env("VACMM_QEMU_APPEND", args);
    }
    if let Some(seconds) = timeout_s {
        command.env("VACMM_QEMU_TIMEOUT", seconds.to_string());
    }
    if let Some(spec) = plugin {
        command.env("VACMM_QEMU_PLUGIN", spec);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run qemu/runner: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let lines = read_console(stdout, echo);
    let status = child
        .wait()
        .map_err(|e| format!("waiting for qemu/runner: {e}"))?;
    Ok(QemuRun {
        status: status.code(),
        lines,
    })
}
