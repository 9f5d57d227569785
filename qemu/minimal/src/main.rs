//! A minimal kernel on vacmm's coherence engine and its own memory manager
//! (`vm.rs`), for vacmm's QEMU boards: the walkthrough of `docs/embedding.md`
//! as running code. Two User-mode processes; a page-cache page one of them
//! maps at two addresses; a kernel↔user ring page; a page both share.
//!
//! ```text
//!   kernel.rs  boot: caches, the kernel's table, MMU on, the engine,
//!              the processes and their pages; the trap handler
//!   vm.rs      (library) frames, processes, FrameKnowledge / MemoryTypes:
//!              the glue; also run on the cache model (tests/model.rs)
//!   layout.rs  (library) what kernel and programs agree on
//!   user.rs    the programs
//! ```
//!
//! `vacmm-minimal-omit=page_cache_write` on the command line makes the
//! kernel put the ring's second record with a bare store, leaving out the
//! engine's guard: the negative control `cargo xtask test` runs under
//! cachesan (process A then reads its own stale line of the ring).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod kernel;
#[cfg(target_os = "none")]
mod user;

#[cfg(target_os = "none")]
vacmm_qemu::entry!(kernel::main);

/// On the host there is no kernel to boot: the library's memory manager
/// runs on vacmm's cache model instead (`cargo test -p vacmm-minimal`).
#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the minimal kernel boots on QEMU: cargo xtask test");
}
