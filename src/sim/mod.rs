//! A host-side model of ARM926 / ARM11 L1 caches with a coherence oracle
//! (feature `sim`, std, host only).
//!
//! ```text
//!   scenario (tests, benches)          policy code (generic over CacheMaintenance)
//!        │ map / load / store / fetch / dma / walk        │ clean / invalidate / …
//!        ▼                                                 ▼
//!   Sim ── address spaces (va → pa, memory type) ── D-cache, I-cache (cache.rs)
//!    │                                                     │ fills, write-backs
//!    └── physical memory: bytes + version of each byte ◄───┘
//!        truth: for every physical byte, the last store to it from anyone
//! ```
//!
//! # The oracle
//! Every store — through any alias, by the kernel or by a DMA master — is
//! one operation with a number, its *version*. Each physical byte keeps the
//! version (and writer) of the last store to it: the truth. Cache lines and
//! memory hold versions beside their data. A load returns what the modelled
//! hardware would return (the line's bytes on a hit, memory's on a miss or an
//! uncached access) and the oracle compares its versions with the truth:
//! any difference is a [`Violation`]. Write-backs and invalidations are
//! checked too: writing back a byte older than memory's, or dropping a dirty
//! byte that is the only copy of the newest data, loses a write.
//!
//! # Driven from outside
//! A driver that follows a real guest — the QEMU plugin `qemu/cachesan` —
//! translates each access itself (the guest's own tables and registers)
//! and hands the model a [`Translated`] with [`Sim::load_at`],
//! [`Sim::store_at`], [`Sim::fetch_at`] and [`Sim::maintain_line`] /
//! [`Sim::maintain_set_way`], attributes stores to guest instructions with
//! [`Sim::set_site`] (violations then name the writer's PC), checks each
//! descriptor its walks read with [`Sim::table_walk`], and gives the model
//! the guest's initial memory with [`Sim::preload`]. The truth is kept per
//! byte but stored per 32-byte granule, and granules no copy is made of are
//! settled (`memory.rs`): a model of a guest's whole RAM costs about 1.75
//! bytes per byte the guest touches, plus 1 KiB per granule in play. A
//! driver that sees every instruction may skip fetches from a line the
//! model calls fresh ([`Sim::fetch_line_is_fresh`],
//! [`Sim::count_fetch_hits`]).
//!
//! # Assumptions
//! - One core; loads and stores of 1, 2 or 4 naturally aligned bytes.
//! - A line is written back whole when dirty (one dirty bit per line; the
//!   ARM926's half-line dirty bits are not modelled, which can only make a
//!   partial write-back look worse, never better).
//! - VIVT lines remember their physical address for write-back (as the
//!   ARM926 TAG RAM does); VIVT hits compare the virtual tag only — with
//!   [`Indexing::VivtKeyed`] the FCSE-modified address (the current key is
//!   the PID: with a non-zero PID every address below 32 MiB, global
//!   mappings and instruction fetches included, moves to PID × 32 MiB
//!   before the caches and the TLB see it). Maintenance by MVA takes the
//!   operand as a modified address (CP15 operands are not relocated).
//! - TLB (spaces with [attached tables](Sim::attach_table) only): of
//!   unlimited size, keyed by modified virtual page; on ARMv6 non-global
//!   entries are tagged with the ASID current at walk time and hit only
//!   under that ASID, whichever table TTBR0 points at; TLB operations drop
//!   what the hardware's drop (`tlb.rs`). A hit whose translation a fresh
//!   walk of the current table would not give is a
//!   [`ViolationKind::StaleTlbEntry`] (reported once per entry and table
//!   state; the stale translation is used).
//! - Branch target cache (ARMv6 presets, `btc.rs`): every fetch is
//!   recorded by virtual address in a 128-entry direct-mapped cache and a
//!   later fetch that finds its entry returns the recorded word. c7,c5,6
//!   ([`flush_branch_target_cache`](crate::cache::CacheMaintenance::flush_branch_target_cache)),
//!   the whole-I-cache invalidate, the I range operation (lines, then the
//!   BTC, as every backend's) and `synchronize_context` flush it;
//!   invalidating an I line by MVA does not.
//! - Memory types: write-back and write-through are cached; bufferable
//!   accesses bypass the cache (stores through the write buffer);
//!   strongly-ordered stores bypass cache and write buffer and reach memory
//!   at once, after the older buffered stores.
//! - Maintenance by MVA on VIPT/PIPT translates through the current space; an
//!   unmapped MVA does nothing.
//! - Table walks and DMA masters read and write memory only, never a cache
//!   or the data-side buffers.
//! - The data-side buffers (optional, [`CpuModel::write_buffer_entries`],
//!   the ARM926 preset's 4): the write buffer holds stores that bypass or
//!   write through the D-cache, the write-back buffer one dirty line cast
//!   out by an eviction or a clean (ARM926EJ-S TRM ch. 4). Both form one
//!   queue in program order — a write-back never overtakes an older
//!   buffered store — and reach memory on a drain, when full (oldest first),
//!   or when the CPU's data side reads memory (uncached loads and D
//!   linefills wait for them, so the CPU sees its own stores). Instruction
//!   fetches, I linefills, the table walker and DMA masters do not wait:
//!   they see memory without the buffered entries. A write-back is checked
//!   when it lands, against what reached memory before it. Without the
//!   buffers (the ARM11 presets) stores and write-backs reach memory at once.
//!
//! # Not modelled
//! Timing beyond the [cost model](Costs); write-buffer merging (each store
//! is one entry) and its 16-word data limit; the ARM11 write buffer;
//! speculative or prefetching fills; L2 caches; TLB capacity, separate I/D
//! TLBs and lockdown, and any TLB for spaces translated by [`Sim::map`];
//! the BTC's flush of one entry by MVA (c7,c5,7) and which fetched words
//! are branches; permission and alignment faults (unmapped addresses are
//! errors).

mod btc;
mod cache;
mod config;
mod discards;
mod fingerprint;
mod interfaces;
mod memory;
mod tlb;
mod write_buffer;

use std::fmt;

use rustc_hash::{FxHashMap, FxHashSet};

pub use config::{
    Allocation, CacheConfig, CpuModel, Indexing, MAX_MODEL_LINE, ModelError, Replacement,
    WritePolicy,
};

use self::btc::{Btc, BtcEntry};
use self::cache::{Cache, Probe};
use self::discards::DeferredDiscards;
pub use self::discards::Discarded;
use self::memory::Memory;
use self::tlb::{Tlb, Walked};
use self::write_buffer::{BufferedStore, BufferedWriteBack, DataBuffers, MAX_LINE, Pending};
use crate::addr::VirtAddr;
use crate::cache::{CacheInfo, MaintenanceError};

/// An address space of the scenario. [`KERNEL`] is the kernel's: its
/// mappings are global, visible from every space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpaceId(pub u16);

/// The kernel's address space.
pub const KERNEL: SpaceId = SpaceId(0);

/// How a page is cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    /// Cached, write-back (C=1, B=1).
    WriteBack,
    /// Cached, write-through (C=1, B=0).
    WriteThrough,
    /// Uncached, buffered (C=0, B=1): what `make_coherent` switches aliases to.
    Bufferable,
    /// Uncached, unbuffered (C=0, B=0).
    StronglyOrdered,
}

impl MemType {
    fn cached(self) -> bool {
        matches!(self, MemType::WriteBack | MemType::WriteThrough)
    }
}

/// Who made a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// Nobody yet: memory's initial contents.
    Initial,
    /// A CPU store in `space` at virtual address `va`.
    Cpu {
        /// The space the store was made in.
        space: SpaceId,
        /// The virtual address it was made through.
        va: u32,
        /// The address of the storing instruction, when the driver of the
        /// model knows it (see [`Sim::set_site`]); scenarios leave it `None`.
        pc: Option<u32>,
    },
    /// A DMA master.
    Dma,
    /// Nobody: the owner declared the bytes dead (`Sim::declare_dead`).
    Dead,
}

/// The version and author of a byte's newest value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Truth {
    version: u64,
    writer: Writer,
}

/// A [`Writer`] packed into 128 bits whose all-zero value is
/// [`Writer::Initial`], so the per-byte table can be allocated zeroed: the
/// OS then commits only the pages a run touches (a QEMU guest's 128 MiB of
/// RAM would otherwise cost gigabytes up front).
///
/// Bits: 0..2 kind (0 Initial, 1 Cpu, 2 Dma, 3 Dead), 2 pc present,
/// 16..32 space, 32..64 va, 64..96 pc.
fn pack_writer(writer: Writer) -> u128 {
    match writer {
        Writer::Initial => 0,
        Writer::Cpu { space, va, pc } => {
            let pc_bits = pc.map_or(0, |pc| (1u128 << 2) | (u128::from(pc) << 64));
            1 | pc_bits | (u128::from(space.0) << 16) | (u128::from(va) << 32)
        }
        Writer::Dma => 2,
        Writer::Dead => 3,
    }
}

fn unpack_writer(bits: u128) -> Writer {
    match bits & 3 {
        0 => Writer::Initial,
        1 => Writer::Cpu {
            space: SpaceId((bits >> 16) as u16),
            va: (bits >> 32) as u32,
            pc: (bits & (1 << 2) != 0).then_some((bits >> 64) as u32),
        },
        2 => Writer::Dma,
        _ => Writer::Dead,
    }
}

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// A CPU load returned an older value than the last store.
    StaleRead,
    /// A CPU load returned a stale line after a DMA master wrote memory.
    StaleReadAfterDma,
    /// A VIVT hit returned a line of another physical page whose data was
    /// last written in another address space (no flush at context switch,
    /// or a reused process key).
    CrossSpaceLeak {
        /// The physical line the data came from.
        line_pa: u32,
    },
    /// A VIVT hit returned a line of another physical page filled in this
    /// address space before the virtual page was remapped (exec, COW break).
    RemappedLineHit {
        /// The physical line the data came from.
        line_pa: u32,
    },
    /// A dirty line holding the only copy of the newest data was invalidated.
    DirtyLineDiscarded,
    /// A line was written back over newer data in memory.
    StaleWriteBack,
    /// An instruction fetch returned an older value than the last store.
    StaleFetch,
    /// A DMA master read memory older than the last CPU store.
    DmaReadStaleMemory,
    /// A table walk read a descriptor that was not cleaned to memory.
    StaleTableWalk,
    /// An access used a TLB entry that a fresh walk of the current tables
    /// would not give: a descriptor changed without a TLB flush, an ASID
    /// reused (or invalidated by the wrong ASID) without one, a missing
    /// flush at ASID rollover. `pa` is the physical address the stale
    /// entry gave.
    StaleTlbEntry {
        /// The physical address a fresh walk gives (`None`: unmapped).
        walked_pa: Option<u32>,
    },
    /// Reported only when asked for ([`Sim::report_live_aliases`]): one
    /// physical line is in the D-cache under two virtual addresses and at
    /// least one of the two is dirty, so one of them is or is about to be
    /// stale, whether or not a later read or eviction shows it. The
    /// violation's address is the line just filled or dirtied.
    LiveAlias {
        /// The other line's virtual address.
        other_va: u32,
    },
}

/// One incoherence the oracle found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What happened.
    pub kind: ViolationKind,
    /// The scenario operation (1-based count of operations) that saw it.
    pub operation: u64,
    /// The space that made the access, if a CPU did.
    pub space: Option<SpaceId>,
    /// The virtual address of the access or line, if any.
    pub va: Option<u32>,
    /// The physical address of the first wrong byte.
    pub pa: u32,
    /// The newest store to that byte, and who made it.
    pub last_writer: Writer,
    /// Its version.
    pub last_version: u64,
    /// The version the access got (or the line held).
    pub seen_version: u64,
    /// A [`ViolationKind::DirtyLineDiscarded`] reported late (see
    /// [`Sim::defer_discard_reports`]): where the line was discarded. The
    /// violation's own operation, space and address are the read's that
    /// found the loss. `None` for every other report.
    pub discarded: Option<Discarded>,
    /// A [`ViolationKind::StaleWriteBack`]: the last store into the line
    /// written back (who dirtied the stale copy), where the model knows
    /// it. `None` for every other report.
    pub line_writer: Option<Writer>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "operation {} at physical address {:#010x}",
            self.operation, self.pa
        )?;
        if let (Some(space), Some(va)) = (self.space, self.va) {
            write!(f, " ({}, virtual address {va:#010x})", SpaceName(space))?;
        }
        f.write_str(": ")?;
        match self.kind {
            ViolationKind::StaleRead => f.write_str("a CPU load returned stale data")?,
            ViolationKind::StaleReadAfterDma => {
                f.write_str("a CPU load returned stale data after a DMA write")?
            }
            ViolationKind::CrossSpaceLeak { line_pa } => write!(
                f,
                "a cache hit returned another space's data (physical line {line_pa:#010x})"
            )?,
            ViolationKind::RemappedLineHit { line_pa } => write!(
                f,
                "a cache hit returned a line of the page mapped there before (physical line \
                 {line_pa:#010x})"
            )?,
            ViolationKind::DirtyLineDiscarded => f.write_str(
                "a dirty line holding the only copy of the newest data was invalidated",
            )?,
            ViolationKind::StaleWriteBack => {
                f.write_str("a line was written back over newer data in memory")?
            }
            ViolationKind::StaleFetch => {
                f.write_str("an instruction fetch returned older code than the last store")?
            }
            ViolationKind::DmaReadStaleMemory => {
                f.write_str("a DMA read found memory older than the last CPU store")?
            }
            ViolationKind::StaleTableWalk => {
                f.write_str("a table walk read a descriptor that was not cleaned to memory")?
            }
            ViolationKind::StaleTlbEntry {
                walked_pa: Some(walked),
            } => write!(
                f,
                "an access used a stale TLB entry (a fresh walk gives {walked:#010x})"
            )?,
            ViolationKind::StaleTlbEntry { walked_pa: None } => {
                f.write_str("an access used a stale TLB entry (a fresh walk finds no mapping)")?
            }
            ViolationKind::LiveAlias { other_va } => write!(
                f,
                "the physical line is also cached at virtual address {other_va:#010x}, and one \
                 of the two is dirty"
            )?,
        }
        write!(
            f,
            "; it saw version {}, but the newest, version {}, ",
            self.seen_version, self.last_version
        )?;
        match self.last_writer {
            Writer::Initial => f.write_str("is memory's initial contents"),
            Writer::Cpu { space, va, pc } => {
                f.write_str("was stored ")?;
                if let Some(pc) = pc {
                    write!(f, "by the instruction at {pc:#010x} ")?;
                }
                write!(f, "in {} at virtual address {va:#010x}", SpaceName(space))
            }
            Writer::Dma => f.write_str("was written by a DMA master"),
            Writer::Dead => f.write_str("was declared dead by its owner"),
        }?;
        if let Some(at) = self.discarded {
            write!(
                f,
                "; the dirty line holding it was discarded at operation {} ({}, virtual \
                 address {:#010x}",
                at.operation,
                SpaceName(at.space),
                at.va
            )?;
            if let Some(pc) = at.pc {
                write!(f, ", by the instruction at {pc:#010x}")?;
            }
            f.write_str(")")?;
        }
        if let Some(Writer::Cpu { space, va, pc }) = self.line_writer {
            f.write_str("; the line written back was last stored into ")?;
            if let Some(pc) = pc {
                write!(f, "by the instruction at {pc:#010x} ")?;
            }
            write!(f, "in {} at virtual address {va:#010x}", SpaceName(space))?;
        }
        Ok(())
    }
}

/// A translation made outside the model, for the `*_at` operations: the
/// physical address, how the page is cached, and whether the mapping is
/// global (its lines carry no address-space key). A driver that follows a
/// real guest — the QEMU plugin `cachesan` — walks the guest's own tables
/// and registers for these, instead of the model's spaces and
/// [`attach_table`](Sim::attach_table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translated {
    /// The physical address of the access's first byte.
    pub pa: u32,
    /// How the page is cached.
    pub mem: MemType,
    /// Global mapping (kernel). The model itself no longer needs it: with
    /// an FCSE PID it relocates every address below 32 MiB, global or not,
    /// and a driver with its own TLB (cachesan) passes modified addresses.
    pub global: bool,
}

/// A cache maintenance operation on one line (by address or by set/way),
/// for the externally driven [`Sim::maintain_line`] and
/// [`Sim::maintain_set_way`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineOp {
    /// Clean a D line (write it back if dirty).
    Clean,
    /// Clean and invalidate a D line.
    CleanInvalidate,
    /// Invalidate a D line without writing it back.
    Invalidate,
    /// Invalidate an I line.
    InvalidateInstruction,
}

/// Errors from scenario operations (a scenario bug, not an incoherence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimError {
    /// No mapping for the address in the current space or the kernel's.
    Unmapped {
        /// The space.
        space: SpaceId,
        /// The address.
        va: u32,
    },
    /// A physical address outside the modelled memory.
    OutOfMemory {
        /// The address.
        pa: u32,
        /// Where the modelled memory starts (0 unless made with
        /// [`Sim::try_new_at`]).
        base: u32,
        /// Bytes of memory modelled.
        size: usize,
    },
    /// Access size not 1, 2 or 4, or not naturally aligned.
    BadAccess {
        /// The address.
        va: u32,
        /// The size.
        size: u32,
    },
    /// The space does not exist.
    NoSuchSpace(SpaceId),
    /// The mapping is read-only.
    ReadOnly {
        /// The address.
        va: u32,
    },
    /// A set/way operation named a line the modelled cache does not have.
    NoSuchLine {
        /// The set.
        set: usize,
        /// The way.
        way: usize,
    },
}

/// A space of the scenario in a message.
struct SpaceName(SpaceId);

impl fmt::Display for SpaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == KERNEL {
            f.write_str("the kernel's address space")
        } else {
            write!(f, "address space {}", self.0.0)
        }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SimError::Unmapped { space, va } => write!(
                f,
                "{} has no mapping at {va:#010x}, and neither has the kernel's",
                SpaceName(space)
            ),
            SimError::OutOfMemory { pa, base, size } => write!(
                f,
                "physical address {pa:#010x} is outside the {size:#x} bytes of memory modelled \
                 from {base:#010x}"
            ),
            SimError::BadAccess { va, size } => write!(
                f,
                "an access of {size} bytes at {va:#010x} is refused: accesses are 1, 2 or 4 \
                 bytes, naturally aligned"
            ),
            SimError::NoSuchSpace(space) => {
                write!(f, "{} does not exist in the model", SpaceName(space))
            }
            SimError::ReadOnly { va } => write!(f, "the mapping at {va:#010x} is read-only"),
            SimError::NoSuchLine { set, way } => {
                write!(
                    f,
                    "set {set}, way {way} is not a line of the modelled cache"
                )
            }
        }
    }
}

impl std::error::Error for SimError {}

/// Cycle figures of the cost model, per event.
///
/// ARM926EJ-S TRM ch. 9 and ARM1136 TRM ch. 6 give hit timing (one cycle)
/// but line fills and write-backs depend on the bus and memory; the figures
/// below are stated assumptions for a 32-bit AHB to SDRAM at a 2:1 clock
/// ratio: 8 words at ~2 cycles each plus ~8 cycles of latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Costs {
    /// A cache hit.
    pub hit: u64,
    /// Filling one line from memory.
    pub line_fill: u64,
    /// Writing one dirty line back.
    pub write_back: u64,
    /// One uncached (or write-through, or non-allocating) memory access.
    pub uncached: u64,
    /// One maintenance operation by MVA or set/way, before any write-back.
    pub line_op: u64,
    /// Visiting one line in a whole-cache operation (ARMv6 c7 ops, the ARM926
    /// test-and-clean loop), before any write-back.
    pub whole_cache_per_line: u64,
    /// A write-buffer drain / DSB.
    pub drain: u64,
    /// A TLB operation.
    pub tlb_op: u64,
}

impl Costs {
    /// The default figures (see the type's docs).
    pub const DEFAULT: Costs = Costs {
        hit: 1,
        line_fill: 24,
        write_back: 24,
        uncached: 10,
        line_op: 2,
        whole_cache_per_line: 1,
        drain: 4,
        tlb_op: 2,
    };
}

/// Event and operation counters of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// CPU loads.
    pub loads: u64,
    /// CPU stores.
    pub stores: u64,
    /// Instruction fetches.
    pub fetches: u64,
    /// Accesses that hit a line (D or I).
    pub hits: u64,
    /// Line fills (D or I).
    pub fills: u64,
    /// Dirty lines written back (eviction or maintenance).
    pub write_backs: u64,
    /// Accesses that went to memory without the cache.
    pub uncached: u64,
    /// Clean D line by MVA.
    pub clean_line: u64,
    /// Clean+invalidate D line by MVA.
    pub clean_invalidate_line: u64,
    /// Invalidate D line by MVA.
    pub invalidate_line: u64,
    /// Whole-D-cache clean.
    pub clean_all: u64,
    /// Whole-D-cache clean+invalidate.
    pub clean_invalidate_all: u64,
    /// I-cache line invalidates.
    pub icache_line: u64,
    /// Whole-I-cache invalidates.
    pub icache_all: u64,
    /// Write-buffer drains.
    pub drains: u64,
    /// TLB operations.
    pub tlb_ops: u64,
    /// DMA bytes moved.
    pub dma_bytes: u64,
    /// Simulated cycles under [`Costs`].
    pub cycles: u64,
}

#[derive(Clone, Copy, Debug)]
struct Mapping {
    frame: u32,
    mem: MemType,
    writable: bool,
}

#[derive(Debug, Default)]
struct Space {
    key: u16,
    /// Virtual page number → mapping.
    pages: FxHashMap<u32, Mapping>,
    /// Translation tables the space is walked through instead of `pages`
    /// (see [`Sim::attach_table`]).
    table: Option<(crate::addr::PhysAddr, crate::mmu::Arch)>,
}

/// The model: memory, caches, address spaces, oracle and counters.
pub struct Sim {
    model: CpuModel,
    info: CacheInfo,
    costs: Costs,
    /// Physical memory: data, memory's version of each byte and the
    /// truth (`memory.rs`).
    memory: Memory,
    /// The newest version handed out ([`Sim::next_version`]).
    version: u64,
    /// The I line the last fetch hit, whose versions were all the newest
    /// then: while it stays in the cache and nothing stores to its memory,
    /// a fetch from it is a hit on fresh code (see [`Sim::fetch_again`]).
    fetched_line: Option<FetchedLine>,
    /// Report [`ViolationKind::LiveAlias`] ([`Sim::report_live_aliases`]).
    live_aliases: bool,
    /// A planted bug for the tests: settling ignores the copies.
    #[cfg(test)]
    settle_copies_too: bool,
    /// The guest PC stores are attributed to ([`Sim::set_site`]).
    site: Option<u32>,
    dcache: Cache,
    icache: Cache,
    /// Indexed by `SpaceId`; [`KERNEL`] is entry 0.
    spaces: Vec<Space>,
    current: SpaceId,
    /// The current space's key (read on every cached access).
    current_key: u16,
    operation: u64,
    violations: Vec<Violation>,
    counters: Counters,
    /// Stores and line write-backs on their way to memory, oldest first
    /// (see [`CpuModel::write_buffer_entries`] and `write_buffer.rs`).
    write_buffer: DataBuffers,
    /// One-entry translation cache: (space, virtual page) → mapping, and
    /// the table epoch it was made at.
    last_translation: Option<(SpaceId, u32, Mapping, bool, u64)>,
    /// Translations walked from attached tables (see `tlb.rs`): a TLB of
    /// unlimited size, tagged as the hardware's, so a missing or
    /// misdirected TLB operation always shows.
    tlb: Tlb,
    /// Physical pages holding descriptors a walk has read…
    table_pages: FxHashSet<u32>,
    /// …and a count of the memory writes to them (TLB entries are checked
    /// again when it moves).
    table_epoch: u64,
    /// The ARMv6 branch target cache (`btc.rs`; empty on ARMv5).
    btc: Btc,
    /// Where the kernel's linear map puts physical address 0 (see
    /// [`Sim::set_kernel_offset`]).
    kernel_offset: u32,
    /// Discarded dirty lines awaiting a read ([`Sim::defer_discard_reports`]);
    /// `None`: reported at the discard.
    discards: Option<DeferredDiscards>,
}

const PAGE: u32 = 4096;

/// See [`Sim::fetched_line`](Sim).
#[derive(Clone, Copy, Debug)]
struct FetchedLine {
    /// Line-aligned modified virtual and physical addresses.
    mva: u32,
    pa: u32,
    mem: MemType,
    /// Its index in the I-cache.
    line: usize,
}

impl Sim {
    /// A model of `model`'s caches over `memory_bytes` of physical memory
    /// (from physical address 0), with only the kernel's space.
    ///
    /// # Panics
    /// If [`CpuModel::validate`] refuses `model` (only a hand-built
    /// geometry can be refused; every preset is valid). Use
    /// [`try_new`](Self::try_new) for models from elsewhere.
    pub fn new(model: CpuModel, memory_bytes: usize) -> Self {
        match Self::try_new(model, memory_bytes) {
            Ok(sim) => sim,
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`new`](Self::new), or why `model` cannot be simulated.
    pub fn try_new(model: CpuModel, memory_bytes: usize) -> Result<Self, ModelError> {
        Self::try_new_at(model, 0, memory_bytes)
    }

    /// A model whose `memory_bytes` of physical memory start at
    /// `memory_base` (a board whose RAM is not at 0: the i.MX31's at
    /// `0x8000_0000`, RealView's alias at `0x7000_0000`), or why it cannot
    /// be simulated: a refused `model`, or memory that does not start on a
    /// page or ends above 4 GiB ([`ModelError::MemoryRange`]). Physical
    /// addresses outside are [`SimError::OutOfMemory`].
    ///
    /// ```
    /// use vacmm::sim::{CpuModel, MemType, Sim, SimError, Translated};
    ///
    /// let mut sim = Sim::try_new_at(CpuModel::arm1176_16k(), 0x8000_0000, 1 << 20)?;
    /// let at = |pa| Translated { pa, mem: MemType::WriteBack, global: true };
    /// sim.store_at(0xc000_0000, 4, 7, at(0x8000_0000)).unwrap();
    /// assert_eq!(sim.load_at(0xc000_0000, 4, at(0x8000_0000)), Ok(7));
    /// assert!(matches!(
    ///     sim.load_at(0xc000_0000, 4, at(0x1000)),
    ///     Err(SimError::OutOfMemory { pa: 0x1000, .. })
    /// ));
    /// # Ok::<(), vacmm::sim::ModelError>(())
    /// ```
    pub fn try_new_at(
        model: CpuModel,
        memory_base: u32,
        memory_bytes: usize,
    ) -> Result<Self, ModelError> {
        model.validate()?;
        if !memory_base.is_multiple_of(PAGE)
            || u64::from(memory_base) + memory_bytes as u64 > 1 << 32
        {
            return Err(ModelError::MemoryRange {
                base: memory_base,
                bytes: memory_bytes,
            });
        }
        #[cfg_attr(not(test), expect(unused_mut))]
        let mut memory = Memory::new(memory_base, memory_bytes);
        #[cfg(test)]
        if let Some(records) = std::env::var("VACMM_SIM_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            // The suites' switch: settle memory this eagerly (see
            // `Sim::set_record_budget`).
            memory.set_budget(records);
        }
        Ok(Sim {
            model,
            info: model.info(),
            costs: Costs::DEFAULT,
            memory,
            // Memory starts at version 0; 1 is "now", so that a line filled
            // before any store is stamped fresh (`LineMeta::verified`).
            version: 1,
            fetched_line: None,
            live_aliases: false,
            #[cfg(test)]
            settle_copies_too: false,
            site: None,
            dcache: Cache::new(model.dcache),
            icache: Cache::new(model.icache),
            spaces: vec![Space::default()],
            current: KERNEL,
            current_key: 0,
            operation: 0,
            violations: Vec::new(),
            counters: Counters::default(),
            last_translation: None,
            tlb: Tlb::new(model.info().is_armv6()),
            table_pages: FxHashSet::default(),
            table_epoch: 0,
            btc: Btc::new(model.info().is_armv6()),
            write_buffer: DataBuffers::new(model.write_buffer_entries),
            kernel_offset: 0,
            discards: None,
        })
    }

    /// How many granules of memory the model keeps per-byte records for
    /// before it settles those no cache or buffer holds (`memory.rs`; 2048
    /// by default, 1 KiB each). The oracle's verdicts do not depend on it:
    /// 0 settles before every store, which the test suites use to show it
    /// (`VACMM_SIM_RECORDS`).
    #[doc(hidden)]
    pub fn set_record_budget(&mut self, records: usize) {
        self.memory.set_budget(records);
    }

    /// Where the kernel's linear map puts physical address 0: the model,
    /// as the kernel's [`TableMemory`](crate::mmu::TableMemory), reads and
    /// writes translation tables at `pa + offset` (default 0, VA = PA).
    /// A kernel that runs under FCSE PIDs (ARM926) must live at or above
    /// 32 MiB, or the PIDs move its own lines too, as they would on the CPU.
    pub fn set_kernel_offset(&mut self, offset: u32) {
        self.kernel_offset = offset;
    }

    /// The kernel's linear-map address of `pa` (see [`Sim::set_kernel_offset`]).
    fn linear_va(&self, pa: u32) -> u32 {
        pa.wrapping_add(self.kernel_offset)
    }

    /// The modelled CPU.
    pub fn model(&self) -> &CpuModel {
        &self.model
    }

    /// Replaces the cost figures.
    pub fn set_costs(&mut self, costs: Costs) {
        self.costs = costs;
    }

    /// Counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Every violation so far, in order.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Takes the violations found so far.
    pub fn take_violations(&mut self) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    // ---- address spaces --------------------------------------------------

    /// Creates a user address space with the given cache key (its FCSE PID
    /// with [`Indexing::VivtKeyed`], 7 bits; ignored otherwise). Returns its id.
    pub fn create_space(&mut self, key: u16) -> SpaceId {
        let id = SpaceId(self.spaces.len() as u16);
        self.spaces.push(Space {
            key,
            pages: FxHashMap::default(),
            table: None,
        });
        id
    }

    /// The space whose attached table (see [`attach_table`](Self::attach_table))
    /// is at `l1`: how a harness finds the model's space of an engine's
    /// address space, whose ids are the engine's own.
    pub fn space_with_table(&self, l1: crate::addr::PhysAddr) -> Option<SpaceId> {
        self.spaces
            .iter()
            .position(|s| s.table.is_some_and(|(t, _)| t == l1))
            .map(|i| SpaceId(i as u16))
    }

    /// Gives `space` another key (key reuse: the lines of the previous owner
    /// of that key now hit for `space`).
    pub fn set_key(&mut self, space: SpaceId, key: u16) -> Result<(), SimError> {
        self.space_mut(space)?.key = key;
        if space == self.current {
            self.current_key = key;
        }
        Ok(())
    }

    /// Makes `space` current (a context switch, with no maintenance).
    pub fn switch_to(&mut self, space: SpaceId) -> Result<(), SimError> {
        self.current_key = self.space_mut(space)?.key;
        self.current = space;
        self.last_translation = None;
        Ok(())
    }

    /// The current space.
    pub fn current_space(&self) -> SpaceId {
        self.current
    }

    /// Maps the page at `va` in `space` to the physical page at `pa`.
    pub fn map(
        &mut self,
        space: SpaceId,
        va: u32,
        pa: u32,
        mem: MemType,
        writable: bool,
    ) -> Result<(), SimError> {
        self.check_pa(pa, PAGE)?;
        let mapping = Mapping {
            frame: pa & !(PAGE - 1),
            mem,
            writable,
        };
        self.space_mut(space)?.pages.insert(va / PAGE, mapping);
        self.last_translation = None;
        Ok(())
    }

    /// From now on, translates `space` through the translation tables at
    /// `l1` (as built by [`PageTable`](crate::mmu::PageTable)) instead of
    /// [`map`](Self::map)'s pages: each lookup reads its descriptors from
    /// memory, as the table walker does, so a descriptor still dirty in the
    /// D-cache is a [`ViolationKind::StaleTableWalk`]. Walked translations
    /// are kept in a TLB (of unlimited size, tagged by ASID on ARMv6 and
    /// keyed by FCSE-modified address) until a TLB operation drops them, so
    /// a missing TLB flush after a change shows too, as a
    /// [`ViolationKind::StaleTlbEntry`].
    ///
    /// Memory types come from the descriptor's C/B/TEX bits; a page is
    /// writable if user code may write it (user-accessible pages) or the
    /// kernel may (kernel-only pages), so a user store to a read-only page
    /// is [`SimError::ReadOnly`] — the scenario's write fault. On ARMv6 the
    /// nG bit decides whether lines carry the space's key; on ARMv5 kernel-
    /// only pages count as global.
    pub fn attach_table(
        &mut self,
        space: SpaceId,
        l1: crate::addr::PhysAddr,
        arch: crate::mmu::Arch,
    ) -> Result<(), SimError> {
        self.space_mut(space)?.table = Some((l1, arch));
        self.last_translation = None;
        Ok(())
    }

    /// Walks the tables at `l1` for the (modified) address `va`: as the
    /// table walker (each descriptor read checked with
    /// [`table_walk`](Self::table_walk)) or, with `checked` false, silently
    /// (the oracle's fresh walk that TLB hits are compared with).
    fn walk(
        &mut self,
        l1: crate::addr::PhysAddr,
        arch: crate::mmu::Arch,
        va: u32,
        checked: bool,
    ) -> Option<Walked> {
        use crate::mmu::{Access, Attributes, MemoryType, walk};
        let t = walk(
            &mut |pa| {
                let pa32 = pa.as_u32();
                self.table_pages.insert(pa32 / PAGE);
                if checked {
                    self.table_walk(pa32)
                        .map_err(|_| crate::mmu::TableError::Memory { pa })
                } else {
                    self.check_pa(pa32, 4)
                        .map_err(|_| crate::mmu::TableError::Memory { pa })?;
                    Ok(u32::from_le_bytes(
                        self.memory.data(pa32, 4).try_into().expect("4 bytes"),
                    ))
                }
            },
            l1,
            arch,
            VirtAddr(va),
        )
        .ok()?;
        let Attributes { memory, access, .. } = Attributes::from_hw(t.attrs, arch).ok()?;
        let mem = match memory {
            MemoryType::NormalWriteBack => MemType::WriteBack,
            MemoryType::NormalWriteThrough => MemType::WriteThrough,
            MemoryType::NormalNonCacheable | MemoryType::Bufferable => MemType::Bufferable,
            MemoryType::Device | MemoryType::StronglyOrdered => MemType::StronglyOrdered,
        };
        let user = access.user_readable();
        let global = match arch {
            crate::mmu::Arch::Armv6 => !t.attrs.not_global,
            crate::mmu::Arch::Armv5 => !user,
        };
        let writable = if user {
            access.user_writable()
        } else {
            access != Access::KernelRo
        };
        Some(Walked {
            frame: t.pa.as_u32() & !(PAGE - 1),
            mem,
            writable,
            global,
        })
    }

    /// Changes the memory type of an existing mapping.
    pub fn set_mem_type(&mut self, space: SpaceId, va: u32, mem: MemType) -> Result<(), SimError> {
        let page = self
            .space_mut(space)?
            .pages
            .get_mut(&(va / PAGE))
            .ok_or(SimError::Unmapped { space, va })?;
        page.mem = mem;
        self.last_translation = None;
        Ok(())
    }

    /// Removes the mapping of the page at `va` (no maintenance).
    pub fn unmap(&mut self, space: SpaceId, va: u32) -> Result<(), SimError> {
        self.space_mut(space)?
            .pages
            .remove(&(va / PAGE))
            .ok_or(SimError::Unmapped { space, va })?;
        self.last_translation = None;
        Ok(())
    }

    fn space_mut(&mut self, space: SpaceId) -> Result<&mut Space, SimError> {
        self.spaces
            .get_mut(space.0 as usize)
            .ok_or(SimError::NoSuchSpace(space))
    }

    fn check_pa(&self, pa: u32, len: u32) -> Result<(), SimError> {
        let base = self.memory.base();
        if pa < base || u64::from(pa - base) + u64::from(len) > self.memory.len() as u64 {
            return Err(SimError::OutOfMemory {
                pa,
                base,
                size: self.memory.len(),
            });
        }
        Ok(())
    }

    /// Translates `va` in the current space (its own mappings, then the
    /// kernel's global ones): physical address, mapping, and whether the
    /// mapping is global (kernel) — global lines carry key 0.
    #[inline]
    fn translate(&mut self, va: u32) -> Result<(u32, Mapping, bool), SimError> {
        let page = va / PAGE;
        if let Some((space, p, m, global, epoch)) = self.last_translation
            && space == self.current
            && p == page
            && epoch == self.table_epoch
        {
            return Ok((m.frame | (va & (PAGE - 1)), m, global));
        }
        if let Some((l1, arch)) = self.spaces[self.current.0 as usize].table {
            let w = self.translate_through_tlb(l1, arch, va)?;
            let m = Mapping {
                frame: w.frame,
                mem: w.mem,
                writable: w.writable,
            };
            self.last_translation = Some((self.current, page, m, w.global, self.table_epoch));
            return Ok((m.frame | (va & (PAGE - 1)), m, w.global));
        }
        let own = self.spaces[self.current.0 as usize]
            .pages
            .get(&page)
            .copied();
        let (m, global) = match own {
            Some(m) => (m, self.current == KERNEL),
            None => match self.spaces[KERNEL.0 as usize].pages.get(&page) {
                Some(&m) => (m, true),
                None => {
                    return Err(SimError::Unmapped {
                        space: self.current,
                        va,
                    });
                }
            },
        };
        self.last_translation = Some((self.current, page, m, global, self.table_epoch));
        Ok((m.frame | (va & (PAGE - 1)), m, global))
    }

    /// The translation of `va` through the TLB, walking `l1` on a miss. A
    /// hit on an entry not checked against the current table and table
    /// memory is compared with a fresh walk: a difference is a
    /// [`ViolationKind::StaleTlbEntry`], and the stale entry is used, as
    /// the hardware would.
    fn translate_through_tlb(
        &mut self,
        l1: crate::addr::PhysAddr,
        arch: crate::mmu::Arch,
        va: u32,
    ) -> Result<Walked, SimError> {
        let mva = self.modified(va);
        let vpn = mva / PAGE;
        let asid = self.current_key as u8;
        let now = (l1.as_u32(), self.table_epoch);
        if let Some(entry) = self.tlb.lookup(vpn, asid) {
            let (walked, checked) = (entry.walked, entry.checked);
            if checked != now {
                let fresh = self.walk(l1, arch, mva, false);
                if fresh != Some(walked) {
                    let pa = walked.frame | (va & (PAGE - 1));
                    let truth = self.truth(pa);
                    let walked_pa = fresh.map(|f| f.frame | (va & (PAGE - 1)));
                    self.report(
                        ViolationKind::StaleTlbEntry { walked_pa },
                        Some(va),
                        pa,
                        truth,
                        truth.version,
                    );
                }
                if let Some(entry) = self.tlb.lookup(vpn, asid) {
                    entry.checked = (l1.as_u32(), self.table_epoch);
                }
            }
            return Ok(walked);
        }
        let walked = self.walk(l1, arch, mva, true).ok_or(SimError::Unmapped {
            space: self.current,
            va,
        })?;
        self.tlb.insert(
            vpn,
            tlb::Entry {
                walked,
                asid,
                checked: (l1.as_u32(), self.table_epoch),
            },
        );
        Ok(walked)
    }

    /// The FCSE PID in effect: the current key with
    /// [`Indexing::VivtKeyed`], else none (0).
    fn fcse_pid(&self) -> u32 {
        if self.dcache.cfg.indexing == Indexing::VivtKeyed {
            u32::from(self.current_key & 0x7f)
        } else {
            0
        }
    }

    /// The modified virtual address of `va`: with a non-zero FCSE PID every
    /// address below 32 MiB moves to PID × 32 MiB before the caches and
    /// the TLB see it (ARM926EJ-S TRM ch. 3 / arm-cache-mm.md §1).
    fn modified(&self, va: u32) -> u32 {
        let window = crate::mmu::FCSE_WINDOW_BYTES;
        let pid = self.fcse_pid();
        if pid != 0 && va < window {
            va + pid * window
        } else {
            va
        }
    }

    /// The lookup of a CPU access at `va` (translated to `pa`). With
    /// [`Indexing::VivtKeyed`] the space's key is an FCSE PID: with a
    /// non-zero PID every address below 32 MiB is relocated by PID × 32 MiB
    /// before the cache and TLB see it — global (kernel) mappings and
    /// instruction fetches included (arm-cache-mm.md §1; checked on QEMU
    /// 7.2's arm926) — so spaces with different PIDs use different lines
    /// there and the same lines above. A kernel that runs processes under
    /// PIDs must therefore live above 32 MiB (or see its own low mappings
    /// at a different modified address under each PID).
    fn probe(&self, va: u32, pa: u32) -> Probe {
        Probe {
            va: self.modified(va),
            pa,
        }
    }

    // ---- accesses ---------------------------------------------------------

    /// A CPU load of `size` bytes (1, 2, 4) at `va` in the current space;
    /// returns what the modelled hardware returns (little-endian).
    pub fn load(&mut self, va: u32, size: u32) -> Result<u32, SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.loads += 1;
        let (pa, mapping, _) = self.translate(va)?;
        self.load_translated(va, size, pa, mapping.mem)
    }

    /// A CPU load whose translation the caller made (see [`Translated`]):
    /// for a model driven from outside, such as the QEMU plugin, which
    /// walks the guest's own tables. Size 1, 2 or 4, naturally aligned.
    pub fn load_at(&mut self, va: u32, size: u32, at: Translated) -> Result<u32, SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.loads += 1;
        self.load_translated(va, size, at.pa, at.mem)
    }

    fn load_translated(
        &mut self,
        va: u32,
        size: u32,
        pa: u32,
        mem: MemType,
    ) -> Result<u32, SimError> {
        self.check_pa(pa, size)?;
        let mut bytes = [0u8; 4];
        let mut versions = [0u64; 4];
        if mem.cached() {
            let probe = self.probe(va, pa);
            let line = match self.dcache.lookup(&probe) {
                Some(line) => {
                    self.counters.hits += 1;
                    self.counters.cycles += self.costs.hit;
                    line
                }
                None => self.fill(Which::Data, &probe),
            };
            let line_pa = self.dcache.meta[line].pa;
            let offset = (va as usize) & (self.dcache.line_bytes - 1);
            let range = self.dcache.bytes(line);
            let start = range.start + offset;
            copy(
                &mut bytes[..size as usize],
                &self.dcache.data[start..start + size as usize],
            );
            copy(
                &mut versions[..size as usize],
                &self.dcache.versions[start..start + size as usize],
            );
            if self.line_is_fresh(&self.dcache.meta[line], pa, self.dcache.line_bytes) {
                return Ok(u32::from_le_bytes(bytes));
            }
            if line_pa != self.dcache.line_base(pa) {
                // A VIVT hit on another physical page's line: whose data is it?
                let source = line_pa + (pa & (self.dcache.line_bytes as u32 - 1));
                let kind = match self.truth(source).writer {
                    Writer::Cpu { space, .. } if space != self.current => {
                        ViolationKind::CrossSpaceLeak { line_pa }
                    }
                    _ => ViolationKind::RemappedLineHit { line_pa },
                };
                let truth = self.truth(pa);
                self.report(kind, Some(va), pa, truth, versions[0]);
                return Ok(u32::from_le_bytes(bytes));
            }
        } else {
            self.counters.uncached += 1;
            self.counters.cycles += self.costs.uncached;
            // The CPU sees its own buffered stores and write-backs: its
            // data-side reads wait for the buffers to drain.
            self.drain_buffered_stores();
            let n = size as usize;
            copy(&mut bytes[..n], self.memory.data(pa, n));
            self.memory.memory_versions(pa, &mut versions[..n]);
        }
        self.check_read(va, pa, &versions[..size as usize], false);
        Ok(u32::from_le_bytes(bytes))
    }

    /// A CPU store of the low `size` bytes of `value` at `va` in the current space.
    pub fn store(&mut self, va: u32, size: u32, value: u32) -> Result<(), SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.stores += 1;
        let (pa, mapping, _) = self.translate(va)?;
        if !mapping.writable {
            return Err(SimError::ReadOnly { va });
        }
        self.store_translated(va, size, value, pa, mapping.mem)
    }

    /// A CPU store whose translation the caller made (see [`Translated`]);
    /// the caller has checked the permission. The store is attributed to
    /// the current [site](Self::set_site).
    pub fn store_at(
        &mut self,
        va: u32,
        size: u32,
        value: u32,
        at: Translated,
    ) -> Result<(), SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.stores += 1;
        self.store_translated(va, size, value, at.pa, at.mem)
    }

    fn store_translated(
        &mut self,
        va: u32,
        size: u32,
        value: u32,
        pa: u32,
        mem: MemType,
    ) -> Result<(), SimError> {
        self.check_pa(pa, size)?;
        self.settle_memory();
        let version = self.next_version();
        let writer = Writer::Cpu {
            space: self.current,
            va,
            pc: self.site,
        };
        let bytes = value.to_le_bytes();
        let changed_before = self.memory.changed(pa);
        self.memory
            .set_truth(pa, size as usize, version, pack_writer(writer), false);
        let mut to_memory = !mem.cached() || mem == MemType::WriteThrough;
        if mem.cached() {
            let probe = self.probe(va, pa);
            let line = match self.dcache.lookup(&probe) {
                Some(line) => {
                    self.counters.hits += 1;
                    self.counters.cycles += self.costs.hit;
                    Some(line)
                }
                None if self.dcache.cfg.allocation == Allocation::ReadWrite
                    && mem == MemType::WriteBack =>
                {
                    Some(self.fill(Which::Data, &probe))
                }
                None => {
                    to_memory = true;
                    None
                }
            };
            if let Some(line) = line {
                let offset = (va as usize) & (self.dcache.line_bytes - 1);
                let start = self.dcache.bytes(line).start + offset;
                let n = size as usize;
                copy(&mut self.dcache.data[start..start + n], &bytes[..n]);
                self.dcache.versions[start..start + n].fill(version);
                let write_back =
                    self.dcache.cfg.write == WritePolicy::WriteBack && mem == MemType::WriteBack;
                let meta = &mut self.dcache.meta[line];
                // A fresh line stays fresh: the store changed its copy as it
                // changed the truth (a line of one granule: no other part of
                // it can have changed unseen).
                let one_granule = self.dcache.line_bytes <= memory::GRANULE as usize;
                meta.verified = if one_granule
                    && meta.verified != 0
                    && changed_before <= meta.verified
                    && meta.pa == pa & !(memory::GRANULE - 1)
                {
                    version
                } else {
                    0
                };
                if write_back {
                    let newly_dirty = !meta.dirty;
                    meta.dirty = true;
                    meta.last_store = Some(writer);
                    if newly_dirty && self.live_aliases {
                        self.check_live_alias(line);
                    }
                } else {
                    to_memory = true;
                }
            }
        }
        if to_memory {
            self.counters.uncached += 1;
            self.counters.cycles += self.costs.uncached;
            let store = BufferedStore {
                pa,
                len: size as u8,
                bytes,
                version,
            };
            if mem == MemType::StronglyOrdered {
                // Strongly ordered (ARMv6) / uncached unbuffered C=0,B=0
                // (ARM926) stores bypass the write buffer (ARM926EJ-S TRM
                // ch. 4: only bufferable, write-through and write-miss
                // writes use it; the ARMv6 ARM's memory-ordering rules
                // (recalled, section not checked here): strongly-ordered
                // accesses complete in program order with all other
                // explicit accesses), after the older buffered ones.
                self.drain_buffered_stores();
                self.apply_store(store);
            } else {
                self.buffer_store(store);
            }
        }
        Ok(())
    }

    /// A store on its way to memory: through the write buffer when the
    /// model has one (the oldest entries drain when it is full), else at once.
    fn buffer_store(&mut self, store: BufferedStore) {
        if !self.write_buffer.enabled() {
            self.apply_store(store);
            return;
        }
        self.make_room(false);
        self.write_buffer.push(Pending::Store(store));
    }

    /// Lets the oldest buffered entries reach memory until one of the
    /// given kind fits.
    fn make_room(&mut self, write_back: bool) {
        for _ in 0..self.write_buffer.room_for(write_back) {
            if let Some(oldest) = self.write_buffer.pop_oldest() {
                self.land(oldest);
            }
        }
    }

    /// A buffered entry reaches memory.
    fn land(&mut self, entry: Pending) {
        match entry {
            Pending::Store(store) => self.apply_store(store),
            Pending::WriteBack(line) => self.land_write_back(&line),
        }
    }

    fn apply_store(&mut self, store: BufferedStore) {
        self.touch_memory(store.pa, u32::from(store.len));
        let n = store.len as usize;
        copy(self.memory.data_mut(store.pa, n), &store.bytes[..n]);
        // A buffered store lands in program order after everything older:
        // it cannot be older than what it overwrites.
        let _ = self.memory.land(store.pa, &[store.version; 4][..n]);
    }

    /// Counts a TLB operation only ARMv6 has, or refuses it on ARMv5 as
    /// the CPU backends do.
    fn armv6_tlb_op(&mut self, operation: &'static str) -> Result<(), MaintenanceError> {
        if !self.info.is_armv6() {
            return Err(MaintenanceError::NotOnThisCpu {
                operation,
                cpu: self.info.midr.part(),
            });
        }
        self.counters.tlb_ops += 1;
        self.counters.cycles += self.costs.tlb_op;
        Ok(())
    }

    /// Memory at `pa` changes: if it holds descriptors a walk has read,
    /// TLB entries are checked again on their next hit.
    #[inline]
    fn touch_memory(&mut self, pa: u32, len: u32) {
        if self.table_pages.is_empty() || len == 0 {
            return;
        }
        let (first, last) = (pa / PAGE, (pa + (len - 1)) / PAGE);
        if (first..=last).any(|p| self.table_pages.contains(&p)) {
            self.table_epoch += 1;
        }
    }

    /// Empties the write buffer and the write-back buffer into memory, in order.
    fn drain_buffered_stores(&mut self) {
        while let Some(entry) = self.write_buffer.pop_oldest() {
            self.land(entry);
        }
    }

    /// An instruction fetch of the 4-byte word at `va` in the current space.
    pub fn fetch(&mut self, va: u32) -> Result<u32, SimError> {
        check_access(va, 4)?;
        self.operation += 1;
        self.counters.fetches += 1;
        let (pa, mapping, _) = self.translate(va)?;
        self.fetch_translated(va, 4, pa, mapping.mem)
    }

    /// An instruction fetch of `size` bytes (4 for ARM, 2 for Thumb,
    /// naturally aligned) whose translation the caller made (see
    /// [`Translated`]).
    pub fn fetch_at(&mut self, va: u32, size: u32, at: Translated) -> Result<u32, SimError> {
        if size == 1 {
            return Err(SimError::BadAccess { va, size });
        }
        check_access(va, size)?;
        self.operation += 1;
        self.counters.fetches += 1;
        self.fetch_translated(va, size, at.pa, at.mem)
    }

    fn fetch_translated(
        &mut self,
        va: u32,
        size: u32,
        pa: u32,
        mem: MemType,
    ) -> Result<u32, SimError> {
        self.check_pa(pa, size)?;
        let n = size as usize;
        let mva = self.modified(va);
        if let Some(word) = self.fetch_again(mva, pa, size, mem) {
            return Ok(word);
        }
        self.fetched_line = None;
        if let Some(hit) = self.btc.lookup(mva, size as u8) {
            // A branch target cache hit: the recorded instruction, however
            // old (see `btc.rs`).
            self.counters.hits += 1;
            self.counters.cycles += self.costs.hit;
            self.check_read(va, pa, &hit.versions[..n], true);
            return Ok(u32::from_le_bytes(hit.bytes));
        }
        let (bytes, versions) = if mem.cached() {
            let probe = self.probe(va, pa);
            let line = match self.icache.lookup(&probe) {
                Some(line) => {
                    self.counters.hits += 1;
                    self.counters.cycles += self.costs.hit;
                    line
                }
                None => self.fill(Which::Instruction, &probe),
            };
            self.remember_fetched_line(line, mem);
            let start =
                self.icache.bytes(line).start + ((va as usize) & (self.icache.line_bytes - 1));
            let mut b = [0u8; 4];
            let mut v = [0u64; 4];
            copy(&mut b[..n], &self.icache.data[start..start + n]);
            copy(&mut v[..n], &self.icache.versions[start..start + n]);
            (b, v)
        } else {
            // The write buffer is on the data side: an uncached fetch reads
            // memory without waiting for it (arm-cache-mm.md §1).
            self.counters.uncached += 1;
            let mut b = [0u8; 4];
            let mut v = [0u64; 4];
            copy(&mut b[..n], self.memory.data(pa, n));
            self.memory.memory_versions(pa, &mut v[..n]);
            (b, v)
        };
        self.check_read(va, pa, &versions[..n], true);
        self.btc.record(BtcEntry {
            va: mva,
            pa,
            size: size as u8,
            bytes,
            versions,
        });
        Ok(u32::from_le_bytes(bytes))
    }

    /// The fast path of most fetches: the next instruction in the line the
    /// last fetch hit. While that line is still in the cache under the
    /// same tags (nothing invalidated or replaced it) and no byte of its
    /// memory's truth changed, the fetch is a hit on the newest code and
    /// the oracle has nothing to compare. `None`: take the full path.
    #[inline]
    fn fetch_again(&mut self, mva: u32, pa: u32, size: u32, mem: MemType) -> Option<u32> {
        let last = self.fetched_line?;
        let mask = !(self.icache.line_bytes as u32 - 1);
        let meta = &self.icache.meta[last.line];
        if mva & mask != last.mva
            || pa & mask != last.pa
            || mem != last.mem
            || !meta.valid
            || meta.va != last.mva
            || meta.pa != last.pa
            || self.memory.watched_changed()
            || self.btc.lookup(mva, size as u8).is_some()
        {
            return None;
        }
        self.counters.hits += 1;
        self.counters.cycles += self.costs.hit;
        let n = size as usize;
        let start = self.icache.bytes(last.line).start + (mva & !mask) as usize;
        let mut bytes = [0u8; 4];
        let mut versions = [0u64; 4];
        copy(&mut bytes[..n], &self.icache.data[start..start + n]);
        if self.btc.enabled() {
            copy(&mut versions[..n], &self.icache.versions[start..start + n]);
            self.btc.record(BtcEntry {
                va: mva,
                pa,
                size: size as u8,
                bytes,
                versions,
            });
        }
        Some(u32::from_le_bytes(bytes))
    }

    /// Whether a fetch from the line the last fetch used — the same line,
    /// through the same translation — would be a hit on its newest code
    /// with nothing else to do: true while that line was remembered (a
    /// cached fetch whose whole line was fresh), is still in the I-cache,
    /// nothing changed its memory's truth, and the CPU has no branch
    /// target cache (every fetch would update it).
    ///
    /// A driver that knows which fetches repeat the last one's line (the
    /// QEMU plugin: the next instruction of a translation block, in the
    /// same line) may then skip them and count them with
    /// [`Sim::count_fetch_hits`]: the model's state is what the fetches
    /// would have left, bar the operation count.
    pub fn fetch_line_is_fresh(&self) -> bool {
        let Some(last) = self.fetched_line else {
            return false;
        };
        let meta = &self.icache.meta[last.line];
        meta.valid
            && meta.va == last.mva
            && meta.pa == last.pa
            && !self.memory.watched_changed()
            && !self.btc.enabled()
    }

    /// Counts `n` fetches a driver skipped while
    /// [`Sim::fetch_line_is_fresh`] held: hits, as they would have been.
    pub fn count_fetch_hits(&mut self, n: u64) {
        self.operation += n;
        self.counters.fetches += n;
        self.counters.hits += n;
        self.counters.cycles += n * self.costs.hit;
    }

    /// Forgets the line the last fetch used: the driver's next fetch does
    /// not follow it (one the driver could not give the model).
    pub fn forget_fetched_line(&mut self) {
        self.fetched_line = None;
    }

    /// Whether line `meta`, hit for byte `pa`, holds its newest version:
    /// the line was found fresh at a version (`LineMeta::verified`) and
    /// the truth of `pa`'s granule has not changed since. `false` only
    /// means "compare".
    #[inline]
    fn line_is_fresh(&self, meta: &cache::LineMeta, pa: u32, line_bytes: usize) -> bool {
        meta.verified != 0
            && meta.pa == pa & !(line_bytes as u32 - 1)
            && self.memory.changed(pa) <= meta.verified
    }

    /// After a fetch hit or fill of I line `line`: remembers it for
    /// [`Sim::fetch_again`] if every byte of it is the newest.
    fn remember_fetched_line(&mut self, line: usize, mem: MemType) {
        let meta = self.icache.meta[line];
        let range = self.icache.bytes(line);
        self.fetched_line = None;
        let fresh = if self.icache.line_bytes <= memory::GRANULE as usize
            && self.line_is_fresh(&meta, meta.pa, self.icache.line_bytes)
        {
            true
        } else {
            let fresh = self
                .memory
                .first_stale(meta.pa, &self.icache.versions[range])
                .is_none();
            self.icache.meta[line].verified = if fresh { self.version } else { 0 };
            fresh
        };
        if fresh {
            self.memory.watch(meta.pa, self.icache.line_bytes);
            self.fetched_line = Some(FetchedLine {
                mva: meta.va,
                pa: meta.pa,
                mem,
                line,
            });
        }
    }

    /// A DMA master writes `data` to memory at `pa`.
    pub fn dma_write(&mut self, pa: u32, data: &[u8]) -> Result<(), SimError> {
        self.check_pa(pa, data.len() as u32)?;
        self.operation += 1;
        self.counters.dma_bytes += data.len() as u64;
        self.touch_memory(pa, data.len() as u32);
        self.settle_memory();
        let version = self.next_version();
        copy(self.memory.data_mut(pa, data.len()), data);
        self.memory
            .set_truth(pa, data.len(), version, pack_writer(Writer::Dma), true);
        Ok(())
    }

    /// The owner declares the bytes at `pa` dead (a freed frame): memory
    /// becomes their newest version, so dropping or writing back a line of
    /// them is no loss — while writing such a line back later, over what
    /// the next owner (CPU or DMA) stored, still is one (`StaleWriteBack`).
    pub fn declare_dead(&mut self, pa: u32, len: u32) -> Result<(), SimError> {
        self.check_pa(pa, len)?;
        self.operation += 1;
        self.settle_memory();
        let version = self.next_version();
        self.memory
            .set_truth(pa, len as usize, version, pack_writer(Writer::Dead), true);
        Ok(())
    }

    /// A DMA master reads `len` bytes of memory at `pa`; the oracle reports
    /// memory older than the last CPU store.
    pub fn dma_read(&mut self, pa: u32, len: u32) -> Result<Vec<u8>, SimError> {
        self.check_pa(pa, len)?;
        self.operation += 1;
        self.counters.dma_bytes += u64::from(len);
        self.check_memory(ViolationKind::DmaReadStaleMemory, pa, len);
        Ok(self.memory.data(pa, len as usize).to_vec())
    }

    /// The table walker reads the 4-byte descriptor at `pa` from memory.
    pub fn table_walk(&mut self, pa: u32) -> Result<u32, SimError> {
        self.check_pa(pa, 4)?;
        self.operation += 1;
        self.check_memory(ViolationKind::StaleTableWalk, pa, 4);
        Ok(u32::from_le_bytes(
            self.memory.data(pa, 4).try_into().expect("4 bytes"),
        ))
    }

    /// Attributes the stores that follow to the instruction at `pc` (the
    /// newest writer of each byte they store records it, and violations
    /// name it), or to nobody with `None`; also the maintenance that
    /// follows, for deferred discards ([`Discarded::pc`]).
    pub fn set_site(&mut self, pc: Option<u32>) {
        self.site = pc;
    }

    /// Reports a discarded dirty line ([`ViolationKind::DirtyLineDiscarded`])
    /// only once a read returns a byte it lost, rather than at the discard
    /// (the default): a line invalidated and then overwritten whole before
    /// any read lost nothing anyone saw. See `discards.rs` for why kernels
    /// do that on purpose. Turning it off forgets what is pending.
    pub fn defer_discard_reports(&mut self, on: bool) {
        self.discards = on.then(|| DeferredDiscards::new(self.dcache.line_bytes as u32));
    }

    /// Reports [`ViolationKind::LiveAlias`] from now on: whenever a D line
    /// is filled while another line of the same physical line is dirty, or
    /// a line becomes dirty while another line of the same physical line
    /// is valid (VIVT, or VIPT with more than a page per way). Such a pair
    /// is the start of every alias bug; the other reports come only if a
    /// later read, write-back or discard shows the stale copy, which
    /// depends on timing (what else evicts the lines). Costs a scan of the
    /// D-cache's tags per fill and per first store to a clean line.
    pub fn report_live_aliases(&mut self, on: bool) {
        self.live_aliases = on;
    }

    /// After D line `line` was filled or dirtied: another valid line of
    /// its physical line, dirty (or any, when `line` is the dirty one), is
    /// a [`ViolationKind::LiveAlias`].
    fn check_live_alias(&mut self, line: usize) {
        let meta = self.dcache.meta[line];
        let other = self.dcache.meta.iter().enumerate().find(|&(i, m)| {
            i != line && m.valid && m.pa == meta.pa && m.va != meta.va && (meta.dirty || m.dirty)
        });
        if let Some((_, m)) = other {
            let (other_va, va) = (m.va, meta.va);
            let truth = self.truth(meta.pa);
            let seen = self.dcache.versions[self.dcache.bytes(line).start];
            self.report_line(
                ViolationKind::LiveAlias { other_va },
                va,
                meta.pa,
                truth,
                seen,
            );
        }
    }

    /// Puts `bytes` in memory at `pa` as its initial contents (version 0,
    /// no writer): what a loader placed before the run, e.g. the image a
    /// QEMU guest booted, so that table walks of descriptors the image
    /// carries read them. Not an access: nothing is checked or counted.
    pub fn preload(&mut self, pa: u32, bytes: &[u8]) -> Result<(), SimError> {
        self.check_pa(pa, bytes.len() as u32)?;
        self.touch_memory(pa, bytes.len() as u32);
        copy(self.memory.data_mut(pa, bytes.len()), bytes);
        Ok(())
    }

    /// One maintenance operation on the line holding `va` (an MVA), with
    /// the caller's translation of it: `None` when the MVA is unmapped,
    /// which on a VIVT cache still finds lines (virtual tags) and on VIPT
    /// or PIPT does nothing.
    pub fn maintain_line(&mut self, op: LineOp, va: u32, at: Option<Translated>) {
        self.maintenance();
        let which = match op {
            LineOp::Clean => {
                self.counters.clean_line += 1;
                Which::Data
            }
            LineOp::CleanInvalidate => {
                self.counters.clean_invalidate_line += 1;
                Which::Data
            }
            LineOp::Invalidate => {
                self.counters.invalidate_line += 1;
                Which::Data
            }
            LineOp::InvalidateInstruction => {
                self.counters.icache_line += 1;
                Which::Instruction
            }
        };
        let pa = match at {
            Some(at) => at.pa,
            None => match self.cache(which).cfg.indexing {
                Indexing::Vivt | Indexing::VivtKeyed => u32::MAX,
                Indexing::Vipt | Indexing::Pipt => return,
            },
        };
        // The operand is a modified virtual address already: the FCSE
        // does not relocate CP15 operands (as `line_for_mva`).
        let probe = Probe { va, pa };
        if let Some(i) = self.cache(which).lookup(&probe) {
            self.line_op(op, i);
        }
    }

    /// One maintenance operation on the line at `set` and `way` (the
    /// ARM set/way operations, decoded by the caller from the operand
    /// with the model's geometry).
    pub fn maintain_set_way(&mut self, op: LineOp, set: usize, way: usize) -> Result<(), SimError> {
        let which = if op == LineOp::InvalidateInstruction {
            Which::Instruction
        } else {
            Which::Data
        };
        let cache = self.cache(which);
        if set >= cache.sets || way >= cache.ways {
            return Err(SimError::NoSuchLine { set, way });
        }
        let i = set * cache.ways + way;
        self.maintenance();
        match op {
            LineOp::Clean => self.counters.clean_line += 1,
            LineOp::CleanInvalidate => self.counters.clean_invalidate_line += 1,
            LineOp::Invalidate => self.counters.invalidate_line += 1,
            LineOp::InvalidateInstruction => self.counters.icache_line += 1,
        }
        if self.cache(which).meta[i].valid {
            self.line_op(op, i);
        }
        Ok(())
    }

    fn line_op(&mut self, op: LineOp, i: usize) {
        match op {
            LineOp::Clean => self.write_back(i),
            LineOp::CleanInvalidate => self.evict(Which::Data, i),
            LineOp::Invalidate => self.discard(i),
            LineOp::InvalidateInstruction => self.icache.meta[i].valid = false,
        }
    }

    /// Invalidates the whole D-cache without writing anything back (ARMv6
    /// c7,c6,0): every dirty line holding the only copy of its data is a
    /// [`ViolationKind::DirtyLineDiscarded`].
    pub fn invalidate_dcache_all(&mut self) {
        self.operation += 1;
        self.counters.cycles += self.costs.whole_cache_per_line * self.dcache.meta.len() as u64;
        let lines: Vec<usize> = self.dcache.valid_lines().collect();
        for i in lines {
            self.discard(i);
        }
    }

    /// Lines of the D-cache that are valid, and of those how many are dirty
    /// (for reports).
    pub fn dcache_occupancy(&self) -> (usize, usize) {
        let valid = self.dcache.meta.iter().filter(|m| m.valid);
        let (mut lines, mut dirty) = (0, 0);
        for m in valid {
            lines += 1;
            dirty += usize::from(m.dirty);
        }
        (lines, dirty)
    }

    /// Memory's current bytes at `pa` (not an access: nothing is checked or
    /// counted), e.g. for a kernel's memory-to-memory copy in a scenario.
    pub fn memory(&self, pa: u32, len: u32) -> Result<&[u8], SimError> {
        self.check_pa(pa, len)?;
        Ok(self.memory.data(pa, len as usize))
    }

    // ---- oracle -----------------------------------------------------------

    #[inline]
    fn truth(&self, pa: u32) -> Truth {
        let (version, writer) = self.memory.truth(pa);
        Truth {
            version,
            writer: unpack_writer(writer),
        }
    }

    /// A version newer than every one handed out before.
    fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Between operations: settles the memory no copy is made of once
    /// the per-byte records reach their budget (`memory.rs`).
    fn settle_memory(&mut self) {
        if !self.memory.wants_sweep() {
            return;
        }
        let mut copied = FxHashSet::default();
        let base = self.memory.base();
        let mut add = |pa: u32, len: usize| {
            // Granules count from the memory's base.
            let Some(p) = pa.checked_sub(base) else {
                return;
            };
            let first = p / memory::GRANULE;
            let last = (p + len.max(1) as u32 - 1) / memory::GRANULE;
            copied.extend(first..=last);
        };
        for cache in [&self.dcache, &self.icache] {
            for i in cache.valid_lines() {
                add(cache.meta[i].pa, cache.line_bytes);
            }
        }
        for entry in &self.write_buffer.entries {
            match entry {
                Pending::Store(s) => add(s.pa, usize::from(s.len)),
                Pending::WriteBack(w) => add(w.pa, w.len),
            }
        }
        for entry in self.btc.entries.iter().flatten() {
            add(entry.pa, usize::from(entry.size));
        }
        if let Some(discards) = &self.discards {
            for pa in discards.lines() {
                add(pa, self.dcache.line_bytes);
            }
        }
        #[cfg(test)]
        if self.settle_copies_too {
            copied.clear();
        }
        let mut version = self.version;
        self.memory.sweep(
            |g| copied.contains(&g),
            || {
                version += 1;
                version
            },
        );
        self.version = version;
    }

    fn check_read(&mut self, va: u32, pa: u32, versions: &[u64], fetch: bool) {
        // Every access of every guest instruction comes here: compare the
        // versions first, and unpack a byte's writer only for a report.
        let Some(i) = self.memory.first_stale(pa, versions) else {
            return;
        };
        let truth = self.truth(pa + i as u32);
        let kind = match (fetch, truth.writer) {
            (true, _) => ViolationKind::StaleFetch,
            (false, Writer::Dma) => ViolationKind::StaleReadAfterDma,
            (false, _) => ViolationKind::StaleRead,
        };
        self.report(kind, Some(va), pa + i as u32, truth, versions[i]);
    }

    fn check_memory(&mut self, kind: ViolationKind, pa: u32, len: u32) {
        if let Some((k, seen)) = self.memory.first_behind(pa, len as usize) {
            let p = pa + k as u32;
            let truth = self.truth(p);
            self.report(kind, None, p, truth, seen);
        }
    }

    fn report(&mut self, kind: ViolationKind, va: Option<u32>, pa: u32, truth: Truth, seen: u64) {
        let read = matches!(
            kind,
            ViolationKind::StaleRead
                | ViolationKind::StaleReadAfterDma
                | ViolationKind::StaleFetch
                | ViolationKind::DmaReadStaleMemory
                | ViolationKind::StaleTableWalk
        );
        let violation = Violation {
            kind,
            operation: self.operation,
            space: va.map(|_| self.current),
            va,
            pa,
            last_writer: truth.writer,
            last_version: truth.version,
            seen_version: seen,
            discarded: None,
            line_writer: None,
        };
        if read
            && let Some(discards) = self.discards.as_mut()
            && let Some(at) = discards.cause(pa, truth.version)
        {
            let line_offset = pa & (self.dcache.line_bytes as u32 - 1);
            self.violations.push(Violation {
                kind: ViolationKind::DirtyLineDiscarded,
                discarded: Some(Discarded {
                    va: at.va | line_offset,
                    ..at
                }),
                ..violation
            });
        }
        self.violations.push(violation);
    }

    // ---- line movement ----------------------------------------------------

    fn cache(&mut self, which: Which) -> &mut Cache {
        match which {
            Which::Data => &mut self.dcache,
            Which::Instruction => &mut self.icache,
        }
    }

    /// Fills a line for `probe`, evicting (and writing back) a victim.
    fn fill(&mut self, which: Which, probe: &Probe) -> usize {
        let victim = self.cache(which).victim(probe);
        self.evict(which, victim);
        if which == Which::Data {
            // A D linefill waits for the write buffer and the write-back
            // buffer (the victim's write-back included): the CPU reads its
            // own stores. An I linefill does not: the buffers are on the
            // data side (arm-cache-mm.md §1), so code stored but not
            // drained is not fetched.
            self.drain_buffered_stores();
        }
        let cache = self.cache(which);
        let line_pa = cache.line_base(probe.pa);
        let line_va = cache.line_base(probe.va);
        let range = cache.bytes(victim);
        let n = cache.line_bytes;
        let line = match which {
            Which::Data => &mut self.dcache,
            Which::Instruction => &mut self.icache,
        };
        copy(&mut line.data[range.clone()], self.memory.data(line_pa, n));
        self.memory
            .memory_versions(line_pa, &mut line.versions[range.clone()]);
        let cache = match which {
            Which::Data => &self.dcache,
            Which::Instruction => &self.icache,
        };
        let fresh = self
            .memory
            .first_stale(line_pa, &cache.versions[range])
            .is_none();
        let verified = if fresh { self.version } else { 0 };
        let meta = &mut self.cache(which).meta[victim];
        meta.valid = true;
        meta.dirty = false;
        meta.va = line_va;
        meta.pa = line_pa;
        meta.last_store = None;
        meta.verified = verified;
        if which == Which::Data && self.live_aliases {
            self.check_live_alias(victim);
        }
        self.counters.fills += 1;
        self.counters.cycles += self.costs.line_fill;
        victim
    }

    /// Drops line `i` (writing it back first if dirty).
    fn evict(&mut self, which: Which, i: usize) {
        if which == Which::Data {
            self.write_back(i);
        }
        self.cache(which).meta[i].valid = false;
    }

    /// Writes D line `i` back if it is valid and dirty: into the write-back
    /// buffer when the model has the buffers (behind the older buffered
    /// stores), else straight to memory.
    fn write_back(&mut self, i: usize) {
        let meta = self.dcache.meta[i];
        if !(meta.valid && meta.dirty) {
            return;
        }
        let range = self.dcache.bytes(i);
        let n = self.dcache.line_bytes.min(MAX_LINE);
        let mut line = Box::new(BufferedWriteBack {
            pa: meta.pa,
            va: meta.va,
            len: n,
            bytes: [0; MAX_LINE],
            versions: [0; MAX_LINE],
            last_store: meta.last_store,
        });
        copy(
            &mut line.bytes[..n],
            &self.dcache.data[range.start..range.start + n],
        );
        copy(
            &mut line.versions[..n],
            &self.dcache.versions[range.start..range.start + n],
        );
        self.dcache.meta[i].dirty = false;
        self.counters.write_backs += 1;
        self.counters.cycles += self.costs.write_back;
        if self.write_buffer.enabled() {
            self.make_room(true);
            self.write_buffer.push(Pending::WriteBack(line));
        } else {
            self.land_write_back(&line);
        }
    }

    /// A written-back line reaches memory; checks that no byte is older
    /// than memory's (what landed there before it: a buffered store, a DMA
    /// master's write).
    fn land_write_back(&mut self, line: &BufferedWriteBack) {
        self.touch_memory(line.pa, line.len as u32);
        let n = line.len;
        // A byte older than memory's overwrites newer data: a lost write.
        let lost = self
            .memory
            .land(line.pa, &line.versions[..n])
            .map(|k| (line.pa + k as u32, line.versions[k]));
        copy(self.memory.data_mut(line.pa, n), &line.bytes[..n]);
        if let Some((pa, seen)) = lost
            && self.truth(pa).writer != Writer::Dead
        {
            let truth = self.truth(pa);
            self.report_line(ViolationKind::StaleWriteBack, line.va, pa, truth, seen);
            if let Some(v) = self.violations.last_mut() {
                v.line_writer = line.last_store;
            }
        }
    }

    /// Invalidates D line `i` without writing it back; a dirty byte that is
    /// the only copy of the newest value is a lost write.
    fn discard(&mut self, i: usize) {
        let meta = self.dcache.meta[i];
        if meta.valid && meta.dirty {
            let range = self.dcache.bytes(i);
            let mut lost = [0u64; MAX_LINE];
            let mut any = false;
            for (k, idx) in range.enumerate() {
                let pa = meta.pa + k as u32;
                let v = self.dcache.versions[idx];
                let truth = self.truth(pa);
                let landing = self
                    .write_buffer
                    .newest_version(pa)
                    .unwrap_or_else(|| self.memory.memory_version(pa));
                if v == truth.version && landing != v {
                    if self.discards.is_none() {
                        self.report_line(ViolationKind::DirtyLineDiscarded, meta.va, pa, truth, v);
                        break;
                    }
                    lost[k] = v;
                    any = true;
                }
            }
            if any && let Some(discards) = self.discards.as_mut() {
                let at = Discarded {
                    operation: self.operation,
                    va: meta.va,
                    pc: self.site,
                    space: self.current,
                };
                let memory = &self.memory;
                discards.record(meta.pa, lost, at, |pa, v| memory.truth(pa).0 == v);
            }
        }
        self.dcache.meta[i].valid = false;
    }

    fn report_line(&mut self, kind: ViolationKind, line_va: u32, pa: u32, truth: Truth, seen: u64) {
        let va = line_va | (pa & (self.dcache.line_bytes as u32 - 1));
        self.violations.push(Violation {
            discarded: None,
            line_writer: None,
            kind,
            operation: self.operation,
            space: None,
            va: Some(va),
            pa,
            last_writer: truth.writer,
            last_version: truth.version,
            seen_version: seen,
        });
    }

    /// The D or I line an MVA maintenance operation acts on, if cached.
    /// VIVT needs no translation (an unmapped MVA can still hit), and the
    /// address is the modified one already: FCSE does not relocate it.
    fn line_for_mva(&mut self, which: Which, va: u32) -> Option<usize> {
        let pa = match self.cache(which).cfg.indexing {
            Indexing::Vivt | Indexing::VivtKeyed => u32::MAX,
            Indexing::Vipt | Indexing::Pipt => self.translate(va).ok()?.0,
        };
        self.cache(which).lookup(&Probe { va, pa })
    }

    /// A whole-D-cache operation: every line is visited (costed), every
    /// dirty one written back, and with `invalidate` every one dropped.
    fn whole_dcache(&mut self, invalidate: bool) {
        self.operation += 1;
        self.counters.cycles += self.costs.whole_cache_per_line * self.dcache.meta.len() as u64;
        let lines: Vec<usize> = self.dcache.valid_lines().collect();
        for i in lines {
            if invalidate {
                self.evict(Which::Data, i);
            } else {
                self.write_back(i);
            }
        }
    }

    fn maintenance(&mut self) {
        self.operation += 1;
        self.counters.cycles += self.costs.line_op;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Data,
    Instruction,
}

fn check_access(va: u32, size: u32) -> Result<(), SimError> {
    if !matches!(size, 1 | 2 | 4) || !va.is_multiple_of(size) {
        return Err(SimError::BadAccess { va, size });
    }
    Ok(())
}

/// `dst.copy_from_slice(src)` for the lengths the model copies on every
/// access (1, 2, 4 and 8 bytes, and lines of 16, 32 and 64) as fixed-size
/// copies, which the compiler inlines: as slices of run-time length each
/// was a call to `memmove`, a third of the model's time.
#[inline(always)]
fn copy<T: Copy>(dst: &mut [T], src: &[T]) {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match dst.len() {
                $($n => {
                    if let (Ok(d), Ok(s)) =
                        (<&mut [T; $n]>::try_from(&mut *dst), <&[T; $n]>::try_from(src))
                    {
                        *d = *s;
                        return;
                    }
                })*
                _ => {}
            }
        };
    }
    fixed!(1 2 4 8 16 32 64);
    dst.copy_from_slice(src);
}

#[cfg(test)]
mod tests;
