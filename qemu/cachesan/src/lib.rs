//! cachesan: a QEMU TCG plugin that feeds every guest load, store,
//! instruction fetch and CP15 cache / TLB / context operation into vacmm's
//! cache model (`vacmm::sim`) and reports what real ARM926 / ARM11 caches
//! would have made incoherent — stale reads, lost writes, stale
//! instructions, table walks of uncleaned descriptors — with the guest PC.
//! QEMU itself models no cache, so these bugs are otherwise invisible.
//!
//! ```text
//!   qemu-system-arm -plugin libvacmm_cachesan.so,cpu=arm1136,elf=kernel.elf ...
//!        │ translation: decode CP15 words, register callbacks
//!        │ execution:   fetch / load / store / CP15 (operands read then)
//!        ▼
//!   plugin.rs (QEMU ABI) ──► engine.rs (regime, TLB, walks) ──► vacmm::sim::Sim
//!                                        │
//!                                        └──► reports (symbols.rs names PCs)
//! ```
//!
//! See `qemu/cachesan/README.md` for how to load it and what it cannot see.

pub mod args;
pub mod cp15;
pub mod engine;
pub mod symbols;

// The QEMU ABI: its symbols only resolve inside QEMU, so unit tests (which
// link an executable) leave it out.
#[cfg(not(test))]
mod plugin;
