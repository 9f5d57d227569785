//! Installs what the project needs and a fresh machine lacks: the nightly
//! `rust-src` component (for `-Zbuild-std`), `rustfmt` and `clippy`, and
//! `qemu-system-arm` 10.0 or newer. Quiet when everything is there.
//!
//! The measuring commands need more and install it themselves, pinned, the
//! same way on a developer's machine and a fresh CI one: `cargo xtask
//! mutants` cargo-mutants ([`CARGO_MUTANTS`]) and `cargo xtask coverage`
//! cargo-llvm-cov ([`CARGO_LLVM_COV`]) plus the `llvm-tools` component,
//! both from crates.io with `cargo install --locked` ([`ensure_cargo_tool`]).
//!
//! Why QEMU 10: the cache sanitizer (`qemu/cachesan`, `cargo xtask
//! sanitize`) is a TCG plugin that reads guest registers (plugin API of QEMU
//! 9.0), the value of every store (`qemu_plugin_mem_get_value`, 9.1) and
//! guest memory by physical address (`qemu_plugin_read_memory_hwaddr`, 10.0).
//! Every command uses the same QEMU so that the suites the sanitizer runs are
//! the suites `cargo xtask test` passes. Debian bookworm ships 7.2; its
//! `bookworm-backports` suite carries 10.0, which this module adds as an apt
//! source of its own ([`BACKPORTS_LIST`]) and installs from. Other Debian
//! releases (trixie and later) have 10.0 in their main suite.

use std::process::{Command, Stdio};

/// The toolchain the project builds with (see rust-toolchain.toml).
const TOOLCHAIN: &str = "nightly";
const RUSTUP_COMPONENTS: [&str; 3] = ["rust-src", "rustfmt", "clippy"];
const QEMU_BINARY: &str = "qemu-system-arm";
const QEMU_PACKAGE: &str = "qemu-system-arm";
/// The oldest QEMU the project accepts (see the module docs).
pub const QEMU_MIN_VERSION: (u32, u32) = (10, 0);
/// The apt source this module owns; it is rewritten only when its contents differ.
const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/vacmm-backports.list";
const BACKPORTS_SUITE: &str = "bookworm-backports";
/// Signed by the same key as bookworm itself (debian-archive-keyring).
const BACKPORTS_ENTRY: &str = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
http://deb.debian.org/debian bookworm-backports main\n";

/// Makes sure every prerequisite is present, installing what is missing.
pub fn ensure_all() -> Result<(), String> {
    ensure_rustup_components()?;
    ensure_qemu()
}

/// A cargo subcommand the xtask installs from crates.io, at one version.
pub struct CargoTool {
    /// The crate and binary name, e.g. `cargo-mutants`.
    pub krate: &'static str,
    /// The subcommand, e.g. `mutants` (`cargo mutants`).
    pub subcommand: &'static str,
    /// The pinned version: every shard of a run must list the same mutants,
    /// which only the same cargo-mutants guarantees.
    pub version: &'static str,
}

/// Mutation testing (`cargo xtask mutants`).
pub const CARGO_MUTANTS: CargoTool = CargoTool {
    krate: "cargo-mutants",
    subcommand: "mutants",
    version: "27.1.0",
};

/// Source-based line coverage (`cargo xtask coverage`).
pub const CARGO_LLVM_COV: CargoTool = CargoTool {
    krate: "cargo-llvm-cov",
    subcommand: "llvm-cov",
    version: "0.9.1",
};

/// The version `cargo <subcommand> --version` reports, `None` when the
/// subcommand is not installed.
fn cargo_tool_version(tool: &CargoTool) -> Option<String> {
    let output = crate::cargo::cargo()
        .args([tool.subcommand, "--version"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    parse_tool_version(&String::from_utf8_lossy(&output.stdout), tool.krate)
}

/// "cargo-mutants 27.1.0\n" → "27.1.0" (when `krate` is cargo-mutants).
fn parse_tool_version(text: &str, krate: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == krate)
            .then(|| words.next().map(String::from))
            .flatten()
    })
}

/// Installs `tool` at its pinned version unless exactly that version is
/// there (`cargo install --locked` replaces another version).
pub fn ensure_cargo_tool(tool: &CargoTool) -> Result<(), String> {
    let installed = cargo_tool_version(tool);
    if installed.as_deref() == Some(tool.version) {
        return Ok(());
    }
    let command = format!(
        "cargo install --locked {} --version {}",
        tool.krate, tool.version
    );
    match installed {
        Some(other) => eprintln!(
            "xtask: {} is {other}, vacmm pins {}; running `{command}`",
            tool.krate, tool.version
        ),
        None => eprintln!("xtask: {} is missing; running `{command}`", tool.krate),
    }
    let status = crate::cargo::cargo()
        .args(["install", "--locked", tool.krate, "--version", tool.version])
        .status()
        .map_err(|e| format!("cannot run `{command}`: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`{command}` failed ({status}); run it by hand and retry"
        ));
    }
    match cargo_tool_version(tool) {
        Some(v) if v == tool.version => Ok(()),
        Some(v) => Err(format!(
            "installed {} {}, but `cargo {}` still reports {v}: is another copy earlier on PATH?",
            tool.krate, tool.version, tool.subcommand
        )),
        None => Err(format!(
            "installed {} {}, but `cargo {} --version` fails: is ~/.cargo/bin on PATH?",
            tool.krate, tool.version, tool.subcommand
        )),
    }
}

fn ensure_rustup_components() -> Result<(), String> {
    for component in RUSTUP_COMPONENTS {
        ensure_rustup_component(component)?;
    }
    Ok(())
}

/// Adds one component of the project's toolchain unless it is there.
pub fn ensure_rustup_component(component: &str) -> Result<(), String> {
    let output = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", TOOLCHAIN])
        .output()
        .map_err(|e| {
            format!("cannot run rustup ({e}); vacmm needs rustup with the {TOOLCHAIN} toolchain")
        })?;
    if !output.status.success() {
        return Err(format!(
            "`rustup component list --installed --toolchain {TOOLCHAIN}` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let installed = String::from_utf8_lossy(&output.stdout);
    if component_listed(&installed, component) {
        return Ok(());
    }
    let command = format!("rustup component add {component} --toolchain {TOOLCHAIN}");
    eprintln!("xtask: {component} is missing; running `{command}`");
    let status = Command::new("rustup")
        .args(["component", "add", component, "--toolchain", TOOLCHAIN])
        .status()
        .map_err(|e| format!("cannot run `{command}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{command}` failed ({status}); run it by hand and retry"
        ))
    }
}

/// Whether `rustup component list --installed` output names `component`:
/// lines look like `rust-src` or `clippy-x86_64-unknown-linux-gnu`.
fn component_listed(installed: &str, component: &str) -> bool {
    installed.lines().any(|line| {
        line.strip_prefix(component)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    })
}

/// The installed QEMU's (major, minor), or `None` when there is none (or
/// its `--version` cannot be read).
pub fn qemu_version() -> Option<(u32, u32)> {
    let output = Command::new(QEMU_BINARY)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    parse_qemu_version(&String::from_utf8_lossy(&output.stdout))
}

/// "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2~bpo12+1)" → (10, 0).
fn parse_qemu_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let mut numbers = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
}

/// The Debian release's codename (`VERSION_CODENAME` in /etc/os-release).
fn debian_codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    let is_debian = text.lines().any(|line| line == "ID=debian");
    let codename = text
        .lines()
        .find_map(|line| line.strip_prefix("VERSION_CODENAME="))?
        .trim_matches('"')
        .to_string();
    is_debian.then_some(codename)
}

/// How to run a command as root: directly, or through password-less sudo.
fn root_prefix() -> Option<&'static [&'static str]> {
    if is_root() {
        Some(&[])
    } else if Command::new("sudo")
        .args(["-n", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        Some(&["sudo", "-n"])
    } else {
        None
    }
}

fn ensure_qemu() -> Result<(), String> {
    let (min_major, min_minor) = QEMU_MIN_VERSION;
    let installed = qemu_version();
    if installed.is_some_and(|v| v >= QEMU_MIN_VERSION) {
        return Ok(());
    }
    let bookworm = debian_codename().as_deref() == Some("bookworm");
    let manual = if bookworm {
        format!(
            "echo '{}' > {BACKPORTS_LIST} && apt-get update && apt-get install -y -t {BACKPORTS_SUITE} {QEMU_PACKAGE}",
            BACKPORTS_ENTRY.trim_end()
        )
    } else {
        format!("apt-get update && apt-get install -y {QEMU_PACKAGE}")
    };
    let what = match installed {
        Some((major, minor)) => format!(
            "{QEMU_BINARY} is {major}.{minor}, vacmm needs {min_major}.{min_minor} or newer"
        ),
        None => format!("{QEMU_BINARY} is missing"),
    };
    let as_root = |args: &[&str]| run_as_root(args, &what, &manual);
    let mut install = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    if bookworm {
        eprintln!("xtask: {what}; installing {QEMU_PACKAGE} from Debian's {BACKPORTS_SUITE}");
        let current = std::fs::read_to_string(BACKPORTS_LIST).unwrap_or_default();
        if current != BACKPORTS_ENTRY {
            // Through a root shell, not std::fs::write: it may need sudo.
            let script = format!("printf '%s' '{BACKPORTS_ENTRY}' > {BACKPORTS_LIST}");
            as_root(&["sh", "-c", &script])?;
        }
        install.extend(["-t", BACKPORTS_SUITE]);
    } else {
        eprintln!("xtask: {what}; installing Debian's {QEMU_PACKAGE} with apt-get");
    }
    install.push(QEMU_PACKAGE);
    as_root(&["apt-get", "update", "-q"])?;
    as_root(&install)?;
    match qemu_version() {
        Some(v) if v >= QEMU_MIN_VERSION => Ok(()),
        Some((major, minor)) => Err(format!(
            "installed {QEMU_PACKAGE}, but {QEMU_BINARY} is still {major}.{minor}; run `{manual}`"
        )),
        None => Err(format!(
            "{QEMU_PACKAGE} was installed but {QEMU_BINARY} is not on PATH"
        )),
    }
}

/// Runs `args` as root (directly or through password-less sudo) for the
/// installation of `what`; `manual` is the command a user without root
/// would run, named in every error.
pub fn run_as_root(args: &[&str], what: &str, manual: &str) -> Result<(), String> {
    let Some(prefix) = root_prefix() else {
        return Err(format!(
            "{what} and installing it needs root; run as root: `{manual}`"
        ));
    };
    let mut all: Vec<&str> = prefix.to_vec();
    all.extend_from_slice(args);
    let status = Command::new(all[0])
        .args(&all[1..])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run {}: {e}; run `{manual}`", all[0]))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed ({status}); run `{manual}`",
            all.join(" ")
        ))
    }
}

/// Whether dpkg has `package` installed.
fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).ends_with("install ok installed"))
}

/// Installs, from the machine's own Debian suites, whichever of `packages`
/// dpkg does not list as installed; `why` names the command needing them.
pub fn ensure_debian_packages(packages: &[&str], why: &str) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    let what = format!("{why} needs Debian's {list}");
    let manual = format!("apt-get update && apt-get install -y --no-install-recommends {list}");
    eprintln!("xtask: {what}; installing with apt-get");
    run_as_root(&["apt-get", "update", "-q"], &what, &manual)?;
    let mut install = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    install.extend(&missing);
    run_as_root(&install, &what, &manual)?;
    match missing.iter().find(|p| !dpkg_installed(p)) {
        None => Ok(()),
        Some(p) => Err(format!(
            "apt-get ran, but {p} is still not installed; run `{manual}`"
        )),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::{component_listed, parse_qemu_version, parse_tool_version};

    #[test]
    fn reads_cargo_tool_versions() {
        assert_eq!(
            parse_tool_version("cargo-mutants 27.1.0\n", "cargo-mutants").as_deref(),
            Some("27.1.0")
        );
        assert_eq!(
            parse_tool_version("cargo-llvm-cov 0.9.1\n", "cargo-llvm-cov").as_deref(),
            Some("0.9.1")
        );
        assert_eq!(
            parse_tool_version("error: no such command", "cargo-mutants"),
            None
        );
        assert_eq!(parse_tool_version("cargo-mutants\n", "cargo-mutants"), None);
    }

    #[test]
    fn finds_installed_components() {
        let installed =
            "cargo-x86_64-unknown-linux-gnu\nllvm-tools-x86_64-unknown-linux-gnu\nrust-src\n";
        assert!(component_listed(installed, "rust-src"));
        assert!(component_listed(installed, "llvm-tools"));
        assert!(!component_listed(installed, "clippy"));
        assert!(!component_listed(installed, "rust-docs"));
    }

    #[test]
    fn reads_qemu_versions() {
        assert_eq!(
            parse_qemu_version(
                "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright"
            ),
            Some((10, 0))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"),
            Some((7, 2))
        );
        assert_eq!(parse_qemu_version("something else"), None);
    }
}
