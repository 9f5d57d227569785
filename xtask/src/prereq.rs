//! Installs what the project needs and a fresh machine lacks: the nightly
//! `rust-src` component (for `-Zbuild-std`), `rustfmt` and `clippy`, and
//! `qemu-system-arm`. Quiet when everything is there.

use std::process::{Command, Stdio};

/// The toolchain the project builds with (see rust-toolchain.toml).
const TOOLCHAIN: &str = "nightly";
const RUSTUP_COMPONENTS: [&str; 3] = ["rust-src", "rustfmt", "clippy"];
const QEMU_BINARY: &str = "qemu-system-arm";
const QEMU_PACKAGE: &str = "qemu-system-arm";

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

fn on_path(binary: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {binary}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ensure_qemu() -> Result<(), String> {
    if on_path(QEMU_BINARY) {
        return Ok(());
    }
    let manual = format!("apt-get update && apt-get install -y {QEMU_PACKAGE}");
    // apt-get needs root: run it directly as root, else through password-less sudo.
    let prefix: &[&str] = if is_root() {
        &[]
    } else if Command::new("sudo")
        .args(["-n", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        &["sudo", "-n"]
    } else {
        return Err(format!(
            "{QEMU_BINARY} is not installed and installing it needs root; run `sudo {manual}`"
        ));
    };
    eprintln!("xtask: {QEMU_BINARY} is missing; installing Debian's {QEMU_PACKAGE} with apt-get");
    let apt = |args: &[&str]| -> Result<(), String> {
        let mut all: Vec<&str> = prefix.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let status = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}; run `{manual}`"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{}` failed ({status}); run `{manual}`",
                all.join(" ")
            ))
        }
    };
    apt(&["update", "-q"])?;
    apt(&[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        QEMU_PACKAGE,
    ])?;
    if on_path(QEMU_BINARY) {
        Ok(())
    } else {
        Err(format!(
            "{QEMU_PACKAGE} was installed but {QEMU_BINARY} is not on PATH"
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
