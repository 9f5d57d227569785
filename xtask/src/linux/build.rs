//! Building what `cargo xtask linux` boots: Debian's Linux 6.1 for one
//! board, configured from `make tinyconfig` plus the fragments in
//! `qemu/linux/`, and the test init (`qemu/linux/init/`) packed into an
//! initramfs.
//!
//! The kernel takes minutes, so it is kept between runs on one machine,
//! outside the clone (a clean clone must not rebuild it every time):
//! `$XDG_CACHE_HOME/vacmm/linux` or `~/.cache/vacmm/linux`, one directory
//! per board and key. The key hashes everything the image depends on —
//! the `linux-source-6.1` and cross-compiler package versions and the
//! fragments' text — so a changed fragment or a Debian update builds anew
//! and never reuses a stale kernel. The init and the initramfs are rebuilt
//! every run (a second).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Board;
use crate::cargo;
use crate::prereq;
/// Runs a command, Ok if it exits 0 (the test command's own helper).
pub(super) use crate::test::status_of as run;

/// What the kernel build and the init need from Debian: the ARM EABI cross
/// compiler, its static C library, Linux's source, and kconfig's parser
/// generators.
const PACKAGES: [&str; 10] = [
    "gcc-arm-linux-gnueabi",
    "libc6-dev-armel-cross",
    "linux-source-6.1",
    "flex",
    "bison",
    "make",
    "gcc",
    "libc6-dev",
    "bc",
    "xz-utils",
];
/// kbuild's build stamps, fixed: the banner Linux prints at boot holds
/// them, and under `-icount` a banner of another length moves every timer
/// interrupt, so a kernel built elsewhere or later would be reported on
/// differently.
/// The modification time every initramfs entry carries (the kbuild
/// stamp's, 2026-01-01 00:00:00 UTC): with the build date in it, every
/// rebuild of the init would change the archive, and the boot's
/// instruction count with it.
const INITRAMFS_MTIME: u64 = 1_767_225_600;

const KBUILD_STAMPS: [(&str, &str); 4] = [
    ("KBUILD_BUILD_TIMESTAMP", "2026-01-01 00:00:00 UTC"),
    ("KBUILD_BUILD_USER", "vacmm"),
    ("KBUILD_BUILD_HOST", "vacmm"),
    ("KBUILD_BUILD_VERSION", "1"),
];
/// The source tarball `linux-source-6.1` installs.
const SOURCE_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";
/// Its top directory.
const SOURCE_DIR: &str = "linux-source-6.1";
pub const CROSS: &str = "arm-linux-gnueabi-";

/// A built kernel and init for one board.
pub struct Built {
    /// The compressed image QEMU boots (`-kernel`).
    pub zimage: PathBuf,
    /// The ELF with symbols (cachesan's `elf=`).
    pub vmlinux: PathBuf,
    /// The board's device tree (`-dtb`).
    pub dtb: PathBuf,
    /// The initramfs (`-initrd`).
    pub initrd: PathBuf,
    /// The init, with symbols (cachesan's second `elf=`).
    pub init: PathBuf,
    /// `linux-source-6.1`'s Debian version, for the report.
    pub source_version: String,
}

pub(super) fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("vacmm").join("linux")
}

fn package_version(package: &str) -> Result<String, String> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", package])
        .output()
        .map_err(|e| format!("cannot run dpkg-query: {e}"))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if version.is_empty() {
        return Err(format!("dpkg-query knows no version of {package}"));
    }
    Ok(version)
}

/// Unpacks Linux's source once per package version.
fn source(version: &str) -> Result<PathBuf, String> {
    let dir = cache_root().join(format!("src-{version}"));
    let tree = dir.join(SOURCE_DIR);
    if tree.join("Makefile").is_file() && dir.join(".unpacked").is_file() {
        return Ok(tree);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    eprintln!("xtask: unpacking {SOURCE_TARBALL} into {}", dir.display());
    run(
        Command::new("tar")
            .arg("-xJf")
            .arg(SOURCE_TARBALL)
            .arg("-C")
            .arg(&dir),
        "tar",
    )?;
    std::fs::write(dir.join(".unpacked"), version)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(tree)
}

fn make(tree: &Path, out: &Path) -> Command {
    let mut command = Command::new("make");
    command
        .arg("-C")
        .arg(tree)
        .arg(format!("O={}", out.display()))
        .args(["ARCH=arm", &format!("CROSS_COMPILE={CROSS}")])
        .arg(format!(
            "-j{}",
            std::thread::available_parallelism().map_or(2, |n| n.get())
        ))
        .envs(KBUILD_STAMPS)
        .stdout(Stdio::null());
    command
}

/// The kernel for `board`, built unless the cache has it.
fn kernel(board: Board, source_version: &str) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let root = cargo::root();
    let fragments: Vec<PathBuf> = board
        .fragments()
        .iter()
        .map(|f| root.join("qemu/linux").join(f))
        .collect();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    source_version.hash(&mut hasher);
    // The compiler and linker themselves (their packages' updates do not
    // show in the meta-package's version), and the stamps.
    for tool in ["gcc", "ld"] {
        let output = Command::new(format!("{CROSS}{tool}"))
            .arg("--version")
            .output()
            .map_err(|e| format!("cannot run {CROSS}{tool}: {e}"))?;
        output.stdout.hash(&mut hasher);
    }
    KBUILD_STAMPS.hash(&mut hasher);
    for fragment in &fragments {
        std::fs::read(fragment)
            .map_err(|e| format!("{}: {e}", fragment.display()))?
            .hash(&mut hasher);
    }
    let out = cache_root().join(format!("{}-{:016x}", board.name(), hasher.finish()));
    let zimage = out.join("arch/arm/boot/zImage");
    let vmlinux = out.join("vmlinux");
    let dtb = out.join("arch/arm/boot/dts").join(board.dtb());
    let done = out.join(".built");
    if done.is_file() && zimage.is_file() && vmlinux.is_file() && dtb.is_file() {
        return Ok((zimage, vmlinux, dtb));
    }
    let tree = source(source_version)?;
    reuse_older_build(board, &out)?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!(
        "xtask: building Linux {source_version} for {} in {} (minutes; kept for later runs)",
        board.name(),
        out.display()
    );
    run(make(&tree, &out).arg("tinyconfig"), "make tinyconfig")?;
    run(
        Command::new(tree.join("scripts/kconfig/merge_config.sh"))
            .arg("-m")
            .arg("-O")
            .arg(&out)
            .arg(out.join(".config"))
            .args(&fragments)
            .stdout(Stdio::null()),
        "merge_config.sh",
    )?;
    run(make(&tree, &out).arg("olddefconfig"), "make olddefconfig")?;
    check_config(&out.join(".config"), &fragments)?;
    let dtb_target = format!("{}", Path::new(board.dtb()).display());
    run(
        make(&tree, &out).args(["zImage", "vmlinux", &dtb_target]),
        "the kernel build",
    )?;
    std::fs::write(&done, source_version).map_err(|e| format!("{}: {e}", done.display()))?;
    Ok((zimage, vmlinux, dtb))
}

/// Moves the board's build of another key (older fragments or packages)
/// to `out`, so that kbuild rebuilds only what changed rather than
/// everything; one build per board is kept.
fn reuse_older_build(board: Board, out: &Path) -> Result<(), String> {
    if out.exists() {
        return Ok(());
    }
    let prefix = format!("{}-", board.name());
    let Ok(entries) = std::fs::read_dir(cache_root()) else {
        return Ok(());
    };
    let mut older: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    // A complete build first, then the newest.
    older.sort_by_key(|p| {
        let built = p.join(".built").is_file();
        let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok();
        std::cmp::Reverse((built, modified))
    });
    let mut older = older.into_iter();
    if let Some(best) = older.next().filter(|p| p.join(".config").is_file()) {
        eprintln!("xtask: rebuilding from {}", best.display());
        std::fs::rename(&best, out).map_err(|e| format!("{}: {e}", best.display()))?;
        let _ = std::fs::remove_file(out.join(".built"));
    }
    for stale in older {
        let _ = std::fs::remove_dir_all(&stale);
    }
    Ok(())
}

/// Every option a fragment sets must have its value in the final
/// `.config`: kconfig drops what a dependency forbids without a word, and
/// a check that runs on a kernel without its facility proves nothing.
fn check_config(config: &Path, fragments: &[PathBuf]) -> Result<(), String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let value = |name: &str| -> String {
        for line in text.lines() {
            if let Some(v) = line.strip_prefix(&format!("{name}=")) {
                return v.to_string();
            }
        }
        "n".into()
    };
    let mut dropped = Vec::new();
    for fragment in fragments {
        let wanted = std::fs::read_to_string(fragment)
            .map_err(|e| format!("{}: {e}", fragment.display()))?;
        for line in wanted.lines().map(str::trim) {
            // kconfig's own spelling of "n" is a comment.
            let (name, v) = match line
                .strip_prefix("# ")
                .and_then(|l| l.strip_suffix(" is not set"))
            {
                Some(name) => (name, "n"),
                None if line.starts_with('#') => continue,
                None => match line.split_once('=') {
                    Some(pair) => pair,
                    None => continue,
                },
            };
            let got = value(name);
            if got != v {
                dropped.push(format!(
                    "{name}={v} (the kernel has {got}; {})",
                    fragment.file_name().unwrap_or_default().to_string_lossy()
                ));
            }
        }
    }
    if dropped.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "kconfig did not take these options (a dependency is missing): {}",
            dropped.join(", ")
        ))
    }
}

/// The test init, static, and an initramfs holding it.
fn init(tree: &Path, work: &Path) -> Result<(PathBuf, PathBuf), String> {
    let root = cargo::root();
    let sources = root.join("qemu/linux/init");
    let mut c_files: Vec<PathBuf> = std::fs::read_dir(&sources)
        .map_err(|e| format!("{}: {e}", sources.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    c_files.sort();
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let init = work.join("init");
    run(
        Command::new(format!("{CROSS}gcc"))
            .args([
                "-static",
                "-O1",
                "-g",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-march=armv5te",
            ])
            .arg("-o")
            .arg(&init)
            .args(&c_files),
        "compiling the test init",
    )?;
    // The kernel tree's own initramfs writer (one C file, built for the
    // host): a list of entries in, a newc cpio archive out.
    let gen_init_cpio = work.join("gen_init_cpio");
    run(
        Command::new("cc")
            .arg("-O2")
            .arg("-o")
            .arg(&gen_init_cpio)
            .arg(tree.join("usr/gen_init_cpio.c")),
        "compiling the kernel's gen_init_cpio",
    )?;
    let list = work.join("initramfs.list");
    let entries = format!(
        "dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\ndir /proc 0755 0 0\n\
         dir /tmp 01777 0 0\nfile /init {} 0755 0 0\n",
        init.display()
    );
    std::fs::write(&list, entries).map_err(|e| format!("{}: {e}", list.display()))?;
    // gen_init_cpio takes a file's mtime from the file, the rest from -t.
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(INITRAMFS_MTIME);
    std::fs::File::options()
        .write(true)
        .open(&init)
        .and_then(|f| f.set_modified(mtime))
        .map_err(|e| format!("{}: {e}", init.display()))?;
    let initrd = work.join("initramfs.cpio");
    let cpio = std::fs::File::create(&initrd).map_err(|e| format!("{}: {e}", initrd.display()))?;
    run(
        Command::new(&gen_init_cpio)
            .arg("-t")
            .arg(INITRAMFS_MTIME.to_string())
            .arg(&list)
            .stdout(cpio),
        "gen_init_cpio",
    )?;
    Ok((init, initrd))
}

/// Installs what is missing, then builds (or finds) the kernel and builds
/// the init for `board`.
pub fn build(board: Board) -> Result<Built, String> {
    prereq::ensure_debian_packages(&PACKAGES, "cargo xtask linux").map_err(|e| {
        format!("{e} (linux-source-6.1 is Debian bookworm's; another release needs its own kernel version here)")
    })?;
    let source_version = package_version("linux-source-6.1")?;
    let (zimage, vmlinux, dtb) = kernel(board, &source_version)?;
    let work = cargo::target_directory()?.join("linux").join(board.name());
    let (init, initrd) = init(&source(&source_version)?, &work)?;
    Ok(Built {
        zimage,
        vmlinux,
        dtb,
        initrd,
        init,
        source_version,
    })
}
