//! Installs what the project needs and a fresh machine lacks: the nightly
//! `rust-src` component (for `-Zbuild-std`), `rustfmt` and `clippy`, and
//! `qemu-system-arm` 10.0 or newer. Quiet when everything is there.
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

fn ensure_rustup_components() -> Result<(), String> {
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
    for component in RUSTUP_COMPONENTS {
        // Lines look like `rust-src` or `clippy-x86_64-unknown-linux-gnu`.
        let present = installed
            .lines()
            .any(|line| line == component || line.starts_with(&format!("{component}-")));
        if present {
            continue;
        }
        let command = format!("rustup component add {component} --toolchain {TOOLCHAIN}");
        eprintln!("xtask: {component} is missing; running `{command}`");
        let status = Command::new("rustup")
            .args(["component", "add", component, "--toolchain", TOOLCHAIN])
            .status()
            .map_err(|e| format!("cannot run `{command}`: {e}"))?;
        if !status.success() {
            return Err(format!(
                "`{command}` failed ({status}); run it by hand and retry"
            ));
        }
    }
    Ok(())
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
    let Some(prefix) = root_prefix() else {
        return Err(format!(
            "{what} and installing it needs root; run as root: `{manual}`"
        ));
    };
    let as_root = |args: &[&str]| -> Result<(), String> {
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
    };
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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::parse_qemu_version;

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
