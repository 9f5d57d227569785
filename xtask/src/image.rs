//! `cargo xtask image --board raspi0 [--suite <suite>]...`: the on-target
//! suites as raw `kernel.img` files a Raspberry Pi Zero / 1 boots, and
//! their check in `cargo xtask test`.
//!
//! The Pi's firmware (`start.elf`) loads `kernel.img` from the SD card's
//! boot partition at 0x8000 and jumps there, in SVC mode with the MMU off.
//! A raw image has no ELF headers, and no debugger or QEMU answers
//! semihosting calls, so the suites are built with `VACMM_RAW_IMAGE=1`
//! (qemu/bsp: the report goes to the UART and the CPU halts instead of
//! exiting). The check boots each image in QEMU's `raspi0` with `-bios`,
//! which loads it raw at 0x8000 as the firmware does (QEMU's `-kernel`
//! would load a raw file at 0x10000 behind a Linux boot stub), enters it
//! there, and leaves an ATAG command line at 0x100 as the firmware leaves
//! `cmdline.txt`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cargo::{self, Board, TARGET_TESTS_FEATURE, Target};
use crate::flags::Flags;

/// Where the firmware of the Pi Zero / 1 loads `kernel.img`.
const LOAD_ADDRESS: u64 = 0x8000;
/// The suite that never ends (it checks the runner's timeout).
const NEVER_ENDS: &str = "runner_hang";
/// Seconds a booted image has to print its report and halt.
const BOOT_TIMEOUT_S: u32 = 120;
/// What the board support prints once the report is complete.
const HALTED: &str = "vacmm: halted (exit status ";

/// `cargo xtask image`.
pub fn run(args: &[String]) -> Result<(), String> {
    let (mut board, mut suites, mut boot_them) = (None, Vec::new(), false);
    let mut flags = Flags::new("image", args);
    while let Some(flag) = flags.next_flag() {
        let mut value = || flags.value(&flag);
        match flag.name {
            "--board" => board = Some(value()?.parse::<Board>()?),
            "--suite" => suites.push(value()?),
            "--boot" if flag.inline.is_none() => boot_them = true,
            _ => return Err(format!("image: unrecognised argument `{}`", flag.arg)),
        }
    }
    match board {
        Some(Board::Raspi0) => {}
        Some(other) => {
            return Err(format!(
                "image: {other} boots ELF files (QEMU's -kernel); raw images are for the Raspberry Pi: --board raspi0"
            ));
        }
        None => return Err("image: which board? --board raspi0".into()),
    }
    crate::prereq::ensure_all()?;
    let images = build(&suites)?;
    println!("Raw images for a Raspberry Pi Zero / 1 (docs/raspberry-pi.md says how to boot one):");
    for (suite, path) in &images {
        println!("  {suite:<18} {}", path.display());
    }
    if boot_them {
        let mut failed = Vec::new();
        for (suite, path) in &images {
            println!("\n==== {suite}: kernel.img on QEMU raspi0, as the firmware boots it");
            if let Err(e) = boot(path) {
                println!("FAILED: {e}");
                failed.push(suite.as_str());
            }
        }
        if !failed.is_empty() {
            return Err(format!(
                "image: failed on QEMU raspi0: {}",
                failed.join(", ")
            ));
        }
    }
    Ok(())
}

/// Builds `suites` (every on-target suite that ends, if empty) for the Pi
/// and writes each as `target/image/raspi0/<suite>/kernel.img`.
pub fn build(suites: &[String]) -> Result<Vec<(String, PathBuf)>, String> {
    let all = cargo::target_test_names()?;
    if let Some(unknown) = suites.iter().find(|s| !all.contains(s) || *s == NEVER_ENDS) {
        return Err(format!(
            "image: no suite `{unknown}` that ends; the suites are {}",
            all.iter()
                .filter(|s| *s != NEVER_ENDS)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let chosen: Vec<String> = if suites.is_empty() {
        all.into_iter().filter(|s| s != NEVER_ENDS).collect()
    } else {
        suites.to_vec()
    };
    let target = Target::Armv6;
    let mut command = cargo::cargo();
    command
        .env("VACMM_BOARD", Board::Raspi0.name())
        .env("VACMM_RAW_IMAGE", "1")
        .args(["test", "--no-run"])
        .args(target.cargo_args())
        .args(["--package", "vacmm", "--features", TARGET_TESTS_FEATURE]);
    for name in &chosen {
        command.args(["--test", name]);
    }
    let built = cargo::build_executables(command)?;
    let out = cargo::target_directory()?
        .join("image")
        .join(Board::Raspi0.name());
    let mut images = Vec::new();
    for (suite, elf) in built {
        let dir = out.join(&suite);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join("kernel.img");
        let bytes = raw_image(&elf, LOAD_ADDRESS)?;
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        images.push((suite, path));
    }
    Ok(images)
}

/// The bytes a boot loader places at `load_at`: every loadable segment
/// with contents, at its physical (load) address — `.data`'s image sits
/// after the code, where the start-up copies it from. Gaps are zero.
fn raw_image(elf: &Path, load_at: u64) -> Result<Vec<u8>, String> {
    let data = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", elf.display()))?;
    let object::File::Elf32(elf32) = &file else {
        return Err(format!("{}: not a 32-bit ELF", elf.display()));
    };
    let endian = elf32.endian();
    let mut image = Vec::new();
    for segment in elf32.elf_program_headers() {
        use object::read::elf::ProgramHeader;
        let contents = segment
            .data(endian, &*data)
            .map_err(|_| format!("{}: a segment lies outside the file", elf.display()))?;
        // With room below the image (0..0x8000), lld loads the ELF and
        // program headers in a segment of their own at 0: no part of the
        // kernel, and the firmware never loads it.
        let headers_only =
            segment.p_offset(endian) == 0 && u64::from(segment.p_paddr(endian)) < load_at;
        if segment.p_type(endian) != object::elf::PT_LOAD || contents.is_empty() || headers_only {
            continue;
        }
        let at = u64::from(segment.p_paddr(endian));
        let offset = at.checked_sub(load_at).ok_or_else(|| {
            format!(
                "{}: a segment loads across the image's start {load_at:#x} (at {at:#x})",
                elf.display()
            )
        })? as usize;
        if image.len() < offset + contents.len() {
            image.resize(offset + contents.len(), 0);
        }
        image[offset..offset + contents.len()].copy_from_slice(contents);
    }
    if image.is_empty() {
        return Err(format!("{}: nothing to load", elf.display()));
    }
    // The firmware jumps to the first byte: it must be the vector table's
    // reset entry, as the board file's IMAGE_START / VECTORS_AT say.
    if image[..4] == [0; 4] {
        return Err(format!(
            "{}: nothing at {load_at:#x}, where the firmware jumps",
            elf.display()
        ));
    }
    Ok(image)
}

/// Where a boot loader leaves its ATAG list (qemu/bsp/src/atags.rs).
const ATAGS_AT: u32 = 0x100;

/// An ATAG list holding `line` as ATAG_CMDLINE (Linux's ARM boot protocol:
/// ATAG_CORE, then the command line, NUL-padded to words, then ATAG_NONE).
fn atags(line: &str) -> Vec<u8> {
    let mut text = line.as_bytes().to_vec();
    text.push(0);
    text.resize(text.len().div_ceil(4) * 4, 0);
    let mut words: Vec<u32> = vec![2, 0x5441_0001];
    words.extend([2 + (text.len() / 4) as u32, 0x5441_0009]);
    words.extend(
        text.chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])),
    );
    words.extend([0, 0]);
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Boots `image` on QEMU `raspi0` as the Pi's firmware would (raw, at
/// 0x8000, no semihosting, an ATAG command line at 0x100) and echoes its
/// console up to the halt; Ok with the counts
/// only if the report ends `N passed, 0 failed` and the image halted with
/// status 0.
pub fn boot(image: &Path) -> Result<(usize, usize), String> {
    // The command line the Pi's firmware would pass from cmdline.txt:
    // here, what QEMU is (10.0's ARMv6 walk ignores XN, see tests/mmu.rs).
    let qemu = crate::prereq::qemu_version().map_or("unknown".to_string(), |(major, minor)| {
        format!("{major}.{minor}")
    });
    let line = format!("vacmm-cpu=arm1176 vacmm-board=raspi0 vacmm-qemu={qemu}");
    let atags_file = image.with_file_name("atags.bin");
    std::fs::write(&atags_file, atags(&line))
        .map_err(|e| format!("{}: {e}", atags_file.display()))?;
    let mut child = Command::new("qemu-system-arm")
        .args([
            "-M",
            "raspi0",
            "-m",
            "512M",
            "-nographic",
            "-no-reboot",
            "-device",
        ])
        .arg(format!(
            "loader,file={},addr={ATAGS_AT:#x},force-raw=on",
            atags_file.display()
        ))
        // The firmware jumps to 0x8000; QEMU's -bios starts at 0 and would
        // run into the ATAG words as instructions.
        .args([
            "-device",
            &format!("loader,addr={LOAD_ADDRESS:#x},cpu-num=0"),
        ])
        .arg("-bios")
        .arg(image)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run qemu-system-arm: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    // The image halts and QEMU never exits on its own: the reader stops
    // at the halt line, and a watchdog ends a guest that never gets there.
    let (done, watchdog) = std::sync::mpsc::channel::<()>();
    let pid = child.id();
    let timer = std::thread::spawn(move || {
        let timeout = std::time::Duration::from_secs(BOOT_TIMEOUT_S.into());
        if watchdog.recv_timeout(timeout).is_err() {
            // SIGKILL by pid: the child is ours and not yet reaped.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    });
    let mut lines = Vec::new();
    let mut halted = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap_or_default().trim_end_matches('\r').to_string();
        println!("{line}");
        if let Some(at) = line.find(HALTED) {
            halted = Some(line[at + HALTED.len()..].trim_end_matches(')').to_string());
            break;
        }
        lines.push(line);
    }
    let _ = child.kill();
    let status = child.wait();
    let _ = done.send(());
    let _ = timer.join();
    let summary = lines.iter().rev().find_map(|line| {
        let (passed, failed) = line.trim().split_once(" passed, ")?;
        Some((
            passed.parse().ok()?,
            failed.strip_suffix(" failed")?.parse().ok()?,
        ))
    });
    match (summary, halted.as_deref()) {
        (Some((passed, 0)), Some("0")) if passed > 0 => Ok((passed, 0)),
        (Some((passed, failed)), Some(status)) => Err(format!(
            "{passed} passed, {failed} failed, halted with status {status}"
        )),
        (None, Some(status)) => Err(format!(
            "no `N passed, N failed` line; halted with status {status}"
        )),
        (_, None) => Err(format!(
            "never halted (no `{HALTED}…` line; QEMU ended with {status:?}, \
             killed after {BOOT_TIMEOUT_S} s if still running)"
        )),
    }
}
