//! What a crate depending on vacmm meets, checked inside `cargo xtask test`:
//! the documentation docs.rs builds (both ARM targets and the host, with
//! its flags), the package `cargo publish` would upload, the library
//! without the heap (`--no-default-features`), and the minimum Rust version
//! the manifest declares.

use std::path::PathBuf;
use std::process::Command;

use crate::cargo::{self, Target};
use crate::test::status_of as run;

/// Pages that must be in the documentation of `target` (`None`: the
/// host): on ARM the API that exists there only, on the host the model.
fn expected_pages(target: Option<Target>) -> &'static [&'static str] {
    match target {
        Some(_) => &[
            "arch/fn.cache_info.html",
            "arch/struct.Armv6.html",
            "arch/enum.AnyCpu.html",
            "mmu/fn.enable_mmu.html",
            "mmu/enum.MmuError.html",
        ],
        None => &[
            "sim/index.html",
            "check/index.html",
            "coherence/struct.Engine.html",
        ],
    }
}

/// `cargo doc` as docs.rs runs it for `target` (`None`: the host): the
/// features and rustdoc flags of `[package.metadata.docs.rs]`, warnings
/// denied; then the pages the target must show.
pub fn docs_rs(target: Option<Target>) -> Result<(), String> {
    let features = cargo::docs_rs_features()?.join(",");
    let mut doc = cargo::cargo();
    doc.args(["doc", "--no-deps", "-p", "vacmm", "--features", &features]);
    if let Some(target) = target {
        doc.args(target.cargo_args());
    }
    doc.env("RUSTDOCFLAGS", "--cfg docsrs -D warnings");
    let label = target.map_or("host", Target::triple);
    run(&mut doc, &format!("cargo doc, docs.rs flags ({label})"))?;
    let mut dir: PathBuf = cargo::target_directory()?;
    if let Some(target) = target {
        dir.push(target.triple());
    }
    dir.push("doc/vacmm");
    let missing: Vec<&str> = expected_pages(target)
        .iter()
        .copied()
        .filter(|page| !dir.join(page).is_file())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the {label} documentation lacks {} (in {})",
            missing.join(", "),
            dir.display()
        ))
    }
}

/// `cargo publish --dry-run -p vacmm`: the package's file list, manifest
/// and a build of the packaged crate alone. `--allow-dirty` so that a
/// local run with uncommitted changes checks them too (CI runs on a clean
/// clone).
pub fn publish_dry_run() -> Result<(), String> {
    let mut publish = cargo::cargo();
    publish.args(["publish", "--dry-run", "-p", "vacmm", "--allow-dirty"]);
    run(&mut publish, "cargo publish --dry-run -p vacmm")
}

/// The library without the `alloc` feature: its host tests (`addr`,
/// `cache`, `arch`, `mmu`), and a build for the ARMv5 target with `core`
/// alone — no allocator anywhere.
pub fn without_alloc() -> Result<(), String> {
    let mut test = cargo::cargo();
    test.args(["test", "-p", "vacmm", "--no-default-features", "--lib"]);
    run(&mut test, "host tests without alloc")?;
    let mut build = cargo::cargo();
    build.args([
        "build",
        "-p",
        "vacmm",
        "--no-default-features",
        "-Zbuild-std=core",
        "-Zbuild-std-features=compiler-builtins-mem",
        "--target",
        Target::Armv5te.triple(),
    ]);
    run(&mut build, "build for armv5te-none-eabi without alloc")
}

/// The library built with the toolchain of its declared `rust-version`
/// (installed with rustup if missing), into a target directory of its own.
/// The host build: the ARM targets are tier 3 and need nightly's build-std
/// whatever the version.
pub fn msrv() -> Result<(), String> {
    let version = cargo::rust_version()?;
    // rust-version "1.95" names the toolchain "1.95.0".
    let toolchain = if version.matches('.').count() == 1 {
        format!("{version}.0")
    } else {
        version.clone()
    };
    let installed = Command::new("rustup")
        .args(["run", &toolchain, "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        println!("installing Rust {toolchain} (vacmm's rust-version)");
        let mut install = Command::new("rustup");
        install.args(["toolchain", "install", &toolchain, "--profile", "minimal"]);
        run(
            &mut install,
            &format!("rustup toolchain install {toolchain}"),
        )?;
    }
    let mut build = Command::new("rustup");
    build
        .args(["run", &toolchain, "cargo", "build", "-p", "vacmm", "--lib"])
        .current_dir(cargo::root())
        .env("CARGO_TARGET_DIR", cargo::target_directory()?.join("msrv"))
        // The nightly cargo's variables must not leak into the old one.
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC");
    run(
        &mut build,
        &format!("build with Rust {toolchain} (rust-version)"),
    )
}

/// `cargo xtask package`: every check above, each reported; the first
/// failure's message if any failed.
pub fn run_all() -> Result<(), String> {
    type Check = fn() -> Result<(), String>;
    let checks: [(&str, Check); 6] = [
        ("docs.rs docs, host", || docs_rs(None)),
        ("docs.rs docs, armv5te", || docs_rs(Some(Target::Armv5te))),
        ("docs.rs docs, armv6", || docs_rs(Some(Target::Armv6))),
        ("cargo publish --dry-run", publish_dry_run),
        ("without alloc", without_alloc),
        ("rust-version build", msrv),
    ];
    let mut failed = Vec::new();
    for (name, check) in checks {
        println!("==== {name}");
        if let Err(e) = check() {
            println!("FAILED: {e}");
            failed.push(e);
        }
    }
    match failed.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} of 6 package checks failed; first: {first}",
            failed.len()
        )),
    }
}
