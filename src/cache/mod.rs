//! What the CPU says about its caches, what kind of cache that makes it, and
//! the maintenance interface all policy code is written against.
//!
//! ```text
//!   MIDR (c0,c0,0) ──► MainId ──► CpuPart (ARM926 / ARM1136 r0|r1 / ARM1176 / MPCore / other)
//!   CTR  (c0,c0,1) ──► CacheType { dcache, icache: CacheGeometry }
//!   MainId + CacheType (+ embedder override) ──► CacheInfo { kind, colours, threshold }
//!   VirtRange + line size + threshold ──► RangePlan (lines | whole cache)
//!   CacheMaintenance: implemented by arch::Arm926, arch::Armv6 and the cache model
//! ```
//!
//! Everything here but the trait's hardware implementations is pure, so it
//! is tested on the host; reading the registers is [`crate::arch`]'s job.

mod id;
mod info;
pub(crate) mod maintenance;
mod range;

pub use id::{
    CacheGeometry, CacheKind, CacheType, CpuPart, CtrError, GeometryError, MAX_CACHE_BYTES, MainId,
    PAGE_SIZE,
};
pub use info::{CacheInfo, InfoError};
pub use maintenance::{CacheMaintenance, MaintenanceError, RangeOutcome};
pub use range::{Lines, PlanError, RangePlan};
