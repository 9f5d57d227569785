//! # vacmm — memory management for ARM CPUs with virtually indexed caches
//!
//! vacmm is a `no_std` crate for kernels on ARMv5 (ARM926EJ-S, VIVT caches)
//! and ARMv6 (ARM1136 / ARM1176, VIPT caches that alias when a way is larger
//! than a page): cache maintenance, page tables, address spaces, and a
//! coherence engine that decides, for every event of a kernel's memory
//! management, the maintenance one physical page seen through several
//! virtual addresses needs — checked against a cache model with an oracle.
//! `docs/embedding.md` is the guide for a kernel; `README.md` the overview.
//!
//! ```text
//!   addr      — VirtAddr, PhysAddr, VirtRange: 32-bit addresses on any host
//!   cache     — MIDR / CTR decoding, CacheInfo (kind, colours, threshold),
//!               range planning and the CacheMaintenance trait
//!   arch      — registers and CP15 operations, the Arm926 and Armv6
//!               backends (the only inline assembly), errata profiles, the
//!               ARMv5 data-abort decoder
//!   mm        — address spaces (VMAs, faults, fork), frames, colours,
//!               memory objects (page cache), get_unmapped_area
//!   mmu       — descriptors (ARMv5, ARMv6), translation tables, MMU
//!               bring-up, ASIDs / FCSE PIDs and the context switch
//!   coherence — the engine: flush_dcache_page, make_coherent, faults,
//!               copy/clear_user_page, kmap windows, DMA, shared buffers
//!   sim       — (feature `sim`, host) cache model with a coherence oracle
//!   check     — (feature `sim`) the verification harness: random
//!               programs, bounded exhaustive checking, fuzz interpreters
//! ```
//!
//! What only runs on ARM — reading the CPU's registers (`arch::cache_info`,
//! `arch::main_id`), the backends `arch::Arm926`, `arch::Armv6`,
//! `arch::AnyCpu`, `arch::cp15`, `mmu::enable_mmu` and `mmu::MmuConfig` —
//! is compiled for `target_arch = "arm"` only, so documentation built for
//! the host leaves it out: build it with `cargo doc --target
//! armv5te-none-eabi -Zbuild-std=core,alloc` (or `armv6-none-eabi`) to see
//! it.
//!
//! ## Example
//!
//! Decoding the cache type that QEMU reports for every ARM926/ARM11 model:
//!
//! ```
//! use vacmm::cache::{CacheType, CacheKind, MainId};
//!
//! let ctr = CacheType::decode(0x01dd_20d2, MainId::from_raw(0x4106_9265)).unwrap();
//! let d = ctr.dcache.unwrap();
//! assert_eq!((d.size_bytes, d.ways, d.line_bytes), (64 * 1024, 4, 32));
//! assert_eq!(d.way_bytes(), 16 * 1024);
//! // An ARM926 (ARMv5) cache is virtually tagged whatever its geometry.
//! assert_eq!(CacheKind::classify(MainId::from_raw(0x4106_9265), &ctr), CacheKind::Vivt);
//! ```
#![cfg_attr(not(any(test, all(feature = "sim", not(target_os = "none")))), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

// Growing structures (gap trees, free lists, reverse maps, VMAs) need
// `alloc` (feature `alloc`, on by default). Vectors grow by try_reserve and
// fail as an error value; BTreeMap nodes cannot (see docs/embedding.md,
// "The kernel heap").
#[cfg(feature = "alloc")]
extern crate alloc;

#[macro_use]
mod events;

pub mod addr;
pub mod cache;
#[cfg(feature = "alloc")]
pub mod coherence;

pub mod arch;
#[cfg(feature = "alloc")]
pub mod mm;
pub mod mmu;

// The cache model needs std: on a bare-metal target (`target_os = "none"`)
// the feature leaves it out, so that docs built there with every feature
// (docs.rs) still build.
#[cfg(all(feature = "sim", not(target_os = "none")))]
pub mod sim;

#[cfg(all(feature = "sim", not(target_os = "none")))]
pub mod check;

#[cfg(any(feature = "alloc", test))]
mod xorshift;

#[cfg(all(test, feature = "sim"))]
mod tests;
