//! The baselines, as engine policies (`vacmm::coherence::Policy`) plus the
//! choices a kernel makes around the engine (its context switch, frame
//! colouring, how it shares buffers and does DMA). What each does is taken
//! from `arm-cache-mm.md` (Linux arch/arm/mm, NetBSD arm32 pmap): facts,
//! not their code.

use vacmm::cache::{CacheInfo, CacheKind, PAGE_SIZE};
use vacmm::coherence::Policy;

use crate::world::Setup;

/// Linux (arch/arm/mm): `PG_dcache_clean` defers kernel-alias flushes
/// until a user maps the page; VIVT `make_coherent` makes aliases
/// uncached and never restores them; on VIPT-aliasing caches mappings are
/// colour-aligned (SHMLBA), a page flush reaches one colour through a
/// temporary mapping, and `flush_cache_range` / `flush_cache_mm` clean the
/// whole D-cache; pages come from an allocator that knows no colours; every
/// VIVT context switch flushes everything (FCSE is out of tree).
#[derive(Clone, Copy, Debug, Default)]
pub struct LinuxLike;

impl Policy for LinuxLike {
    fn name(&self) -> &'static str {
        "Linux-like"
    }
    fn restores_cacheability(&self) -> bool {
        false
    }
    fn range_threshold(&self, info: &CacheInfo) -> u64 {
        match info.kind {
            CacheKind::VipAliasing { .. } => 0,
            _ => info.whole_cache_threshold(),
        }
    }
    fn flushes_whole_mm(&self) -> bool {
        true
    }
}

/// NetBSD (arm32 pmap): per-page colour state, read-only mappings at
/// several colours stay cached, a writer meeting another alias makes the
/// page uncached and caching is restored when the conflict goes; the kernel
/// writes file pages through colour-matched windows (UBC) that are cleaned
/// as they are unmapped — at once, not deferred; UVM allocates pages by
/// colour; `pmap_remove` of more than three pages on VIVT cleans the whole
/// cache; every VIVT address-space switch flushes everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetbsdLike;

impl Policy for NetbsdLike {
    fn name(&self) -> &'static str {
        "NetBSD-like"
    }
    fn defers_kernel_alias(&self) -> bool {
        false
    }
    fn range_threshold(&self, info: &CacheInfo) -> u64 {
        match info.kind {
            // PMAP_REMOVE_CLEAN_LIST_SIZE: three pages cleaned one by one.
            CacheKind::Vivt => 3 * PAGE_SIZE as u64,
            _ => info.whole_cache_threshold(),
        }
    }
}

/// Clean and invalidate the whole D-cache at every coherence event (and
/// uncache what must be, as any correct policy must for two live aliases).
#[derive(Clone, Copy, Debug, Default)]
pub struct FlushEverything;

impl Policy for FlushEverything {
    fn name(&self) -> &'static str {
        "flush-everything"
    }
    fn defers_kernel_alias(&self) -> bool {
        false
    }
    fn flushes_everything(&self) -> bool {
        true
    }
}

/// Every user mapping of a shared page uncacheable; shared buffers and DMA
/// memory uncached (coherent) on both sides.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllUncached;

impl Policy for AllUncached {
    fn name(&self) -> &'static str {
        "all-uncached"
    }
    fn defers_kernel_alias(&self) -> bool {
        false
    }
    fn uncaches_shared(&self) -> bool {
        true
    }
}

/// How a kernel shares a buffer with a process (W2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// vacmm's hand-over: cached, `sync_for_user` / `sync_for_kernel`.
    HandOver,
    /// Uncached on both sides (Linux's `dma_alloc_coherent` +
    /// `dma_mmap_coherent`; NetBSD's pmap on a conflict).
    Uncached,
    /// Uncached where the kernel's and the user's aliases would hold
    /// separate lines (NetBSD's pmap marks the page NC), cached elsewhere.
    UncachedIfAliased,
}

/// How a driver does DMA (W6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaStyle {
    /// Streaming mappings: clean / invalidate the buffer's lines
    /// (`vacmm::coherence::dma::Dma`; what Linux and NetBSD do too).
    Streaming,
    /// Clean and invalidate the whole D-cache at map and unmap.
    WholeCache,
    /// Buffers in uncached (coherent) memory: no maintenance.
    Coherent,
}

/// The policies compared, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Contender {
    /// vacmm's own engine policy.
    Vacmm,
    /// See [`LinuxLike`].
    Linux,
    /// See [`NetbsdLike`].
    Netbsd,
    /// See [`FlushEverything`].
    FlushEverything,
    /// See [`AllUncached`].
    AllUncached,
}

impl Contender {
    /// Every contender, in table order.
    pub const ALL: [Contender; 5] = [
        Contender::Vacmm,
        Contender::Linux,
        Contender::Netbsd,
        Contender::FlushEverything,
        Contender::AllUncached,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Contender::Vacmm => "vacmm",
            Contender::Linux => LinuxLike.name(),
            Contender::Netbsd => NetbsdLike.name(),
            Contender::FlushEverything => FlushEverything.name(),
            Contender::AllUncached => AllUncached.name(),
        }
    }

    /// The kernel around the engine.
    pub fn setup(self) -> Setup {
        Setup {
            // Only vacmm keys VIVT spaces with FCSE PIDs; the others flush
            // at every switch, as Linux and NetBSD do.
            fcse: self == Contender::Vacmm,
            colour_frames: self != Contender::Linux,
        }
    }

    /// How it shares a buffer with a process.
    pub fn sharing(self, info: &CacheInfo) -> Sharing {
        match self {
            Contender::Vacmm | Contender::FlushEverything => Sharing::HandOver,
            // Seed 000: Linux has no cached protocol where aliases differ;
            // a driver uses coherent (uncached) memory there.
            Contender::Linux if info.kind.aliases() => Sharing::Uncached,
            Contender::Linux => Sharing::HandOver,
            Contender::Netbsd => Sharing::UncachedIfAliased,
            Contender::AllUncached => Sharing::Uncached,
        }
    }

    /// How it does DMA.
    pub fn dma(self) -> DmaStyle {
        match self {
            Contender::Vacmm | Contender::Linux | Contender::Netbsd => DmaStyle::Streaming,
            Contender::FlushEverything => DmaStyle::WholeCache,
            Contender::AllUncached => DmaStyle::Coherent,
        }
    }
}
