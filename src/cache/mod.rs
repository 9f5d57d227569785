//! What the CPU says about its caches, and what kind of cache that makes it.
//!
//! ```text
//!   MIDR (c0,c0,0) ──► MainId ──► CpuPart (ARM926 / ARM1136 / ARM1176 / other)
//!   CTR  (c0,c0,1) ──► CacheType { dcache, icache: CacheGeometry }
//!   MainId + CacheType ──► CacheKind (VIVT / VIPT aliasing / VIPT non-aliasing)
//! ```
//!
//! Everything here is pure decoding, so it is tested on the host; reading the
//! registers themselves is [`crate::arch`]'s job.

mod id;

pub use id::{CacheGeometry, CacheKind, CacheType, CpuPart, CtrError, MainId, PAGE_SIZE};
