//! The Linux row of `cargo xtask bench`: the versatilepb boot and all the
//! init's checks, plainly, under QEMU's own contrib cache plugin (cache
//! hit and miss statistics, no coherence: `contrib/plugins/cache.c`) and
//! under cachesan, side by side in one run, fastest of [`REPEATS`], with
//! the peak RSS of each. Targets (issue 21): cachesan no slower than the
//! contrib plugin, and at most twice plain QEMU's RSS.
//!
//! The contrib plugin is not packaged: it is built from QEMU's Debian
//! source, the same version as the installed `qemu-system-arm`
//! ([`contrib_cache_plugin`]).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{Board, build};
use crate::prereq;

/// Runs of each configuration; the fastest counts.
const REPEATS: u32 = 3;
/// What building the contrib plugin needs from Debian.
const PACKAGES: [&str; 4] = ["libglib2.0-dev", "pkg-config", "xz-utils", "time"];
/// The apt source of QEMU's source package this module owns.
const SOURCE_LIST: &str = "/etc/apt/sources.list.d/vacmm-qemu-src.list";

/// The installed qemu-system-arm's Debian version and the suite it came
/// from (its `deb` line's suite, for the matching `deb-src`).
fn qemu_package() -> Result<(String, String), String> {
    let output = Command::new("apt-cache")
        .args(["policy", "qemu-system-arm"])
        .output()
        .map_err(|e| format!("cannot run apt-cache: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Installed: "))
        .filter(|v| *v != "(none)")
        .ok_or("qemu-system-arm is not installed from a Debian package")?
        .to_string();
    // The version table: "*** VERSION PRIO" then "PRIO URL SUITE/main arch Packages".
    let mut lines = text
        .lines()
        .skip_while(|l| !l.contains(&format!("*** {version}")));
    let suite = lines
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|s| s.split('/').next())
        .ok_or_else(|| format!("cannot tell which suite qemu-system-arm {version} came from"))?
        .to_string();
    Ok((version, suite))
}

/// QEMU's `contrib/plugins/cache.c`, built against the installed version's
/// source (`apt-get source --download-only`: the `.orig.tar.xz` is all it
/// needs, the `.dsc` of a backport may answer 404), kept in the cache.
fn contrib_cache_plugin() -> Result<PathBuf, String> {
    prereq::ensure_debian_packages(&PACKAGES, "the Linux row of cargo xtask bench")?;
    let (version, suite) = qemu_package()?;
    let upstream = version
        .split_once(':')
        .map_or(version.as_str(), |(_, v)| v)
        .split('-')
        .next()
        .unwrap_or_default()
        .to_string();
    let dir = build::cache_root().join(format!("qemu-contrib-{upstream}"));
    let plugin = dir.join("libcache.so");
    if plugin.is_file() {
        return Ok(plugin);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tarball = dir.join(format!("qemu_{upstream}.orig.tar.xz"));
    if !tarball.is_file() {
        let line = format!(
            "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
             http://deb.debian.org/debian {suite} main\n"
        );
        if std::fs::read_to_string(SOURCE_LIST).ok().as_deref() != Some(line.as_str()) {
            prereq::run_as_root(
                &["sh", "-c", &format!("printf '%s' '{line}' > {SOURCE_LIST}")],
                "QEMU's source package",
                &format!("echo '{}' > {SOURCE_LIST}", line.trim_end()),
            )?;
            prereq::run_as_root(
                &["apt-get", "update", "-q"],
                "QEMU's source package",
                "apt-get update",
            )?;
        }
        // The .dsc and .debian.tar.xz of a backport may be gone (404)
        // while the .orig.tar.xz is there: only the tarball matters.
        let _ = Command::new("apt-get")
            .args([
                "source",
                "--download-only",
                "-q",
                &format!("qemu={version}"),
            ])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !tarball.is_file() {
            return Err(format!(
                "apt-get source qemu={version} did not bring {}",
                tarball.display()
            ));
        }
    }
    // "10.0.2+ds" (Debian's repacked source) unpacks as qemu-10.0.2.
    let top = format!("qemu-{}", upstream.split('+').next().unwrap_or_default());
    let files = [
        format!("{top}/contrib/plugins/cache.c"),
        format!("{top}/include/qemu/qemu-plugin.h"),
    ];
    build::run(
        Command::new("tar")
            .arg("-xJf")
            .arg(&tarball)
            .arg("-C")
            .arg(&dir)
            .args(&files),
        "extracting QEMU's contrib cache plugin",
    )?;
    let glib = Command::new("pkg-config")
        .args(["--cflags", "glib-2.0"])
        .output()
        .map_err(|e| format!("cannot run pkg-config: {e}"))?;
    let glib = String::from_utf8_lossy(&glib.stdout).to_string();
    build::run(
        Command::new("cc")
            .args(["-O2", "-shared", "-fPIC"])
            .args(glib.split_whitespace())
            .arg(format!(
                "-I{}",
                dir.join(&top).join("include/qemu").display()
            ))
            .arg("-o")
            .arg(&plugin)
            .arg(dir.join(&files[0])),
        "building QEMU's contrib cache plugin",
    )?;
    Ok(plugin)
}

/// One configuration's best time and its peak RSS.
struct Measured {
    seconds: f64,
    rss_kib: u64,
}

/// Boots `built` [`REPEATS`] times with `plugin`, under GNU time and the
/// boot's timeout; every boot must pass its checks (a boot that panics
/// early would otherwise be timed as fast).
fn measure(board: Board, built: &build::Built, plugin: Option<&str>) -> Result<Measured, String> {
    let mut best: Option<Measured> = None;
    let report = crate::cargo::target_directory()?
        .join("linux")
        .join("time.txt");
    for _ in 0..REPEATS {
        let output = Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%e %M")
            .arg("-o")
            .arg(&report)
            .args([
                "timeout",
                "--kill-after=5",
                &super::TIMEOUT.as_secs().to_string(),
            ])
            .arg("qemu-system-arm")
            .args(super::qemu_args(board, built, plugin))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run /usr/bin/time: {e}"))?;
        let boot = super::Boot {
            lines: String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(|l| l.trim_end_matches('\r').to_string())
                .collect(),
            elapsed: std::time::Duration::ZERO,
            status: output.status.code(),
        };
        super::verdict(&boot).map_err(|e| format!("a measured boot failed: {e}"))?;
        let text =
            std::fs::read_to_string(&report).map_err(|e| format!("{}: {e}", report.display()))?;
        let mut words = text.split_whitespace();
        let seconds: f64 = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or("unreadable time")?;
        let rss_kib: u64 = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or("unreadable RSS")?;
        if best.as_ref().is_none_or(|b| seconds < b.seconds) {
            best = Some(Measured { seconds, rss_kib });
        }
    }
    best.ok_or_else(|| "no run".into())
}

/// The Linux row: prints the three configurations and the two ratios.
pub fn run() -> Result<(), String> {
    let board = Board::VersatileArm926;
    let built = build::build(board)?;
    let contrib = contrib_cache_plugin()?;
    let cachesan = crate::sanitize::build_plugin()?;
    let log = crate::cargo::target_directory()?
        .join("linux")
        .join("bench-cachesan.log");
    let cachesan_spec = format!(
        "{},{},log={}",
        cachesan.display(),
        board.plugin_args(),
        log.display()
    );
    let plain = measure(board, &built, None)?;
    let with_contrib = measure(board, &built, Some(&contrib.display().to_string()))?;
    let with_cachesan = measure(board, &built, Some(&cachesan_spec))?;
    println!(
        "\n==== Linux {} on {}, boot and the init's checks (fastest of {REPEATS}; peak RSS)",
        built.source_version,
        board.name()
    );
    println!("configuration                 seconds   x plain   RSS MiB   x plain");
    for (name, m) in [
        ("plain QEMU", &plain),
        ("QEMU contrib cache plugin", &with_contrib),
        ("cachesan", &with_cachesan),
    ] {
        println!(
            "{name:<28} {:>8.2} {:>9.1} {:>9.0} {:>9.2}",
            m.seconds,
            m.seconds / plain.seconds,
            m.rss_kib as f64 / 1024.0,
            m.rss_kib as f64 / plain.rss_kib as f64
        );
    }
    let speed = with_cachesan.seconds / with_contrib.seconds;
    let memory = with_cachesan.rss_kib as f64 / plain.rss_kib as f64;
    println!(
        "cachesan / contrib cache plugin: {speed:.2}x time (target at most 1.00: {}); \
         cachesan RSS / plain: {memory:.2}x (target at most 2.00: {})",
        if speed <= 1.0 { "met" } else { "missed" },
        if memory <= 2.0 { "met" } else { "missed" }
    );
    Ok(())
}
