//! # vacmm — memory management for ARM CPUs with virtually indexed caches
//!
//! vacmm is a `no_std` crate for kernels on ARMv5 (ARM926EJ-S, VIVT caches)
//! and ARMv6 (ARM1136 / ARM1176, VIPT caches that alias when a way is larger
//! than a page). It grows, issue by issue, into cache maintenance, page tables
//! and a coherence engine checked against a cache model; see `README.md` and
//! the project's `DESIGN` notes for the shape it is aiming at.
//!
//! ```text
//!   addr   — VirtAddr, PhysAddr, VirtRange: 32-bit addresses on any host
//!   cache  — MIDR / CTR decoding, CacheInfo (kind, colours, threshold),
//!            range planning and the CacheMaintenance trait (pure, host-tested)
//!   arch   — registers and CP15 operations, the Arm926 and Armv6 backends;
//!            the only inline assembly
//!   mm     — gap tree and get_unmapped_area, frame allocator, frame database
//!   mmu    — descriptors (ARMv5, ARMv6), translation tables, MMU bring-up,
//!            ASIDs / FCSE PIDs and the context switch
//!   sim    — (feature `sim`, host) cache model with a coherence oracle
//! ```
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
#![cfg_attr(not(any(test, feature = "sim")), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

// Growing structures (gap trees, free lists, reverse maps) need `alloc`;
// every allocation goes through try_reserve and fails as an error value.
extern crate alloc;

pub mod addr;
pub mod cache;
pub mod coherence;

pub mod arch;
pub mod mm;
pub mod mmu;

#[cfg(feature = "sim")]
pub mod sim;

#[cfg(feature = "sim")]
pub mod check;

mod xorshift;

#[cfg(all(test, feature = "sim"))]
mod tests;

#[cfg(all(feature = "sim", target_os = "none"))]
compile_error!("the `sim` feature is the host-side cache model: it needs std and a host target");
