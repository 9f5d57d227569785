//! Hands the repository's `linker.ld` (the versatilepb memory map) to
//! aarch32-rt's `link.x`, which `INCLUDE`s it under the name `memory.x`.
use std::{env, fs, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let linker_ld = manifest.join("../../linker.ld");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let memory_map =
        fs::read(&linker_ld).unwrap_or_else(|e| panic!("cannot read {}: {e}", linker_ld.display()));
    fs::write(out.join("memory.x"), memory_map).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", linker_ld.display());
}
