//! Picks the board (`VACMM_BOARD`, default `versatilepb`) and writes the
//! linker's `memory.x` for it, which aarch32-rt's `link.x` `INCLUDE`s.
//!
//! The board's three addresses the linker needs (`RAM_BASE`,
//! `IMAGE_START`, `VECTORS_AT`) are read from its own file,
//! `src/board/<board>.rs`, so they are written down once; the rest of the
//! map (regions, stacks, the link-time checks) is `memory.ld`, shared.
//! `VACMM_RAW_IMAGE=1` builds for a raw image a boot loader jumps into
//! (no semihosting: see `src/lib.rs`).
use std::{env, fs, path::PathBuf};

/// The boards, as `VACMM_BOARD` names them, and their files in src/board.
const BOARDS: [(&str, &str); 5] = [
    ("versatilepb", "versatilepb"),
    ("raspi0", "raspi"),
    ("raspi1ap", "raspi"),
    ("kzm", "kzm"),
    ("realview-eb-mpcore", "realview_eb_mpcore"),
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo::rerun-if-env-changed=VACMM_BOARD");
    println!("cargo::rerun-if-env-changed=VACMM_RAW_IMAGE");
    let names = BOARDS.map(|(name, _)| format!("\"{name}\"")).join(", ");
    let files = BOARDS.map(|(_, file)| format!("\"{file}\"")).join(", ");
    println!("cargo::rustc-check-cfg=cfg(vacmm_board_file, values({files}))");
    println!("cargo::rustc-check-cfg=cfg(vacmm_board, values({names}))");
    println!("cargo::rustc-check-cfg=cfg(vacmm_raw_image)");

    let board = env::var("VACMM_BOARD").unwrap_or_else(|_| "versatilepb".into());
    let Some(&(_, file)) = BOARDS.iter().find(|(name, _)| *name == board) else {
        panic!("VACMM_BOARD={board} is not one of {names}");
    };
    println!("cargo::rustc-cfg=vacmm_board=\"{board}\"");
    println!("cargo::rustc-cfg=vacmm_board_file=\"{file}\"");
    if env::var("VACMM_RAW_IMAGE").is_ok_and(|v| v == "1") {
        // The Pi's firmware is the one boot loader that takes a raw image
        // and leaves an ATAG list below it (src/atags.rs reads 0x100).
        assert!(
            file == "raspi",
            "VACMM_RAW_IMAGE=1: raw images are for the Raspberry Pi (VACMM_BOARD=raspi0 or raspi1ap), not {board}"
        );
        println!("cargo::rustc-cfg=vacmm_raw_image");
    }

    let board_rs = manifest.join("src/board").join(format!("{file}.rs"));
    let shared = manifest.join("memory.ld");
    println!("cargo::rerun-if-changed={}", board_rs.display());
    println!("cargo::rerun-if-changed={}", shared.display());
    let source = read(&board_rs);
    let address = |name: &str| {
        constant(&source, name).unwrap_or_else(|| {
            panic!(
                "{} must define `pub const {name}: u32 = <hex>;` on one line",
                board_rs.display()
            )
        })
    };
    let (ram, image, vectors) = (
        address("RAM_BASE"),
        address("IMAGE_START"),
        address("VECTORS_AT"),
    );
    const MIB: u64 = 1 << 20;
    assert!(
        ram.is_multiple_of(MIB) && (ram..ram + 16 * MIB).contains(&image),
        "{board}: RAM_BASE must be MiB-aligned and IMAGE_START in its first 16 MiB"
    );
    // The vector table is linked where the CPU finds it (address 0) or at
    // the head of the image, whence the start-up copies it to 0.
    assert!(
        vectors == 0 || vectors == image,
        "{board}: VECTORS_AT must be 0 or IMAGE_START"
    );
    let vectors_region = if vectors == image {
        "REGION_ALIAS(\"VECTORS\", LOW);".to_string()
    } else {
        format!(
            "MEMORY {{ VECTORS_AT : ORIGIN = {vectors:#010x}, LENGTH = 4K }}\n\
             REGION_ALIAS(\"VECTORS\", VECTORS_AT);"
        )
    };
    let memory = format!(
        "/* {board}: written by qemu/bsp/build.rs from {file}.rs and memory.ld */\n\
         MEMORY {{\n    LOW  : ORIGIN = {image:#010x}, LENGTH = {low:#x}\n    \
         HIGH : ORIGIN = {high:#010x}, LENGTH = 32M\n}}\n{vectors_region}\n\
         _vacmm_code_limit = {code_limit:#010x};\n\n{shared}",
        low = ram + 32 * MIB - image,
        high = ram + 32 * MIB,
        code_limit = ram + 16 * MIB,
        shared = String::from_utf8_lossy(&read(&shared)),
    );
    fs::write(out.join("memory.x"), memory).expect("OUT_DIR is writable");
    println!("cargo::rustc-link-search={}", out.display());
}

fn read(path: &std::path::Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The value of `pub const NAME: u32 = 0x…;` in `source`.
fn constant(source: &[u8], name: &str) -> Option<u64> {
    let source = std::str::from_utf8(source).ok()?;
    let prefix = format!("pub const {name}: u32 = ");
    let line = source
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))?;
    let digits = line
        .strip_suffix(';')?
        .trim()
        .strip_prefix("0x")?
        .replace('_', "");
    u64::from_str_radix(&digits, 16).ok()
}
