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
//! Every store — through any alias, by the kernel or by a DMA master — gets
//! a number, its *version*, newer than all before it. Each physical byte keeps the
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
//! settled (`memory.rs`): a model of a guest's whole RAM costs about 2
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

mod access;
mod btc;
mod cache;
mod config;
mod discards;
mod fingerprint;
mod interfaces;
mod lines;
mod memory;
mod oracle;
mod tlb;
mod translations;
mod violation;
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
use self::translations::Translations;
use self::violation::{Truth, pack_writer, unpack_writer};
pub use self::violation::{Violation, ViolationKind, Writer};
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
/// Every figure is a stated assumption, for every CPU: the ARM926EJ-S
/// (DDI 0198), ARM1136JF-S (DDI 0211) and ARM1176JZF-S (DDI 0301) TRMs give
/// the structure (8-word lines filled critical word first, write-back
/// buffers, table walks that read memory and never the L1 D-cache) but no
/// cycle count for a fill, a write-back, a CP15 operation or a walk. A fill
/// or a write-back of 24 is ~8 cycles of latency plus 8 beats × 2 on the
/// ARM926's 32-bit AHB at a 2:1 core:bus ratio, or ~12 plus 4 beats × 3 on
/// an ARM11's 64-bit AXI at 3:1; an uncached access is one single transfer
/// (~10). `docs/cost-model.md` has the table, per CPU, with each source.
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
    /// One descriptor read by the table walker after a TLB miss (two for a
    /// 4 KiB page, one for a section): a single bus transfer from memory,
    /// never the L1 D-cache (ARM926EJ-S TRM DDI 0198 Table 6-1; ARM1136JF-S
    /// TRM DDI 0211 §6.11; ARM1176JZF-S TRM DDI 0301 §3.2.13–15), so it
    /// costs what an uncached read does. The model's TLB never evicts:
    /// walks follow a TLB flush, an ASID or PID change, or a first touch.
    pub walk_read: u64,
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
        walk_read: 10,
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
    /// Descriptors read by the table walker ([`Costs::walk_read`]).
    pub walk_reads: u64,
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
    /// Test only, a planted bug: branch target cache entries are not
    /// counted as copies of their granules (`Sim::record_btc`), so a
    /// granule one holds can settle under it.
    #[cfg(test)]
    uncounted_btc: bool,
    /// Frames the engine declared dead through `KernelAccess::contents_dead`
    /// ([`Sim::take_engine_dead`]); not the oracle's business.
    engine_dead: Vec<u32>,
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
    /// The translations of the pages touched last (`translations.rs`).
    translations: Translations,
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
    /// geometry can be refused; every preset is valid), or `memory_bytes`
    /// is not whole 4 KiB pages ([`ModelError::MemoryRange`]). Use
    /// [`try_new`](Self::try_new) for models and sizes from elsewhere.
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
    /// be simulated: a refused `model`, or memory that is not whole pages or
    /// reaches the last page below 4 GiB ([`ModelError::MemoryRange`]). Physical
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
        // Whole pages, ending before the last page of the address space:
        // the model adds lengths to addresses in u32 (a line, a buffered
        // write-back) and must not wrap.
        if !memory_base.is_multiple_of(PAGE)
            || !(memory_bytes as u64).is_multiple_of(u64::from(PAGE))
            || u64::from(memory_base) + memory_bytes as u64 > u64::from(u32::MAX - PAGE + 1)
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
            #[cfg(test)]
            uncounted_btc: false,
            engine_dead: Vec::new(),
            site: None,
            dcache: Cache::new(model.dcache),
            icache: Cache::new(model.icache),
            spaces: vec![Space::default()],
            current: KERNEL,
            current_key: 0,
            operation: 0,
            violations: Vec::new(),
            counters: Counters::default(),
            translations: Translations::new(),
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
            // Translations made under the old key (through the TLB, which
            // is looked up by key) no longer hold.
            self.translations.clear();
        }
        Ok(())
    }

    /// Makes `space` current (a context switch, with no maintenance).
    pub fn switch_to(&mut self, space: SpaceId) -> Result<(), SimError> {
        self.current_key = self.space_mut(space)?.key;
        self.current = space;
        self.translations.clear();
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
        self.translations.clear();
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
        self.translations.clear();
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
                    self.counters.walk_reads += 1;
                    self.counters.cycles += self.costs.walk_read;
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
        self.translations.clear();
        Ok(())
    }

    /// Removes the mapping of the page at `va` (no maintenance).
    pub fn unmap(&mut self, space: SpaceId, va: u32) -> Result<(), SimError> {
        self.space_mut(space)?
            .pages
            .remove(&(va / PAGE))
            .ok_or(SimError::Unmapped { space, va })?;
        self.translations.clear();
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

    /// A DMA master writes `data` to memory at `pa`.
    pub fn dma_write(&mut self, pa: u32, data: &[u8]) -> Result<(), SimError> {
        self.check_pa(pa, data.len() as u32)?;
        self.operation += 1;
        self.counters.dma_bytes += data.len() as u64;
        self.touch_memory(pa, data.len() as u32);
        self.settle_memory();
        let version = self.next_version();
        self.memory.write(pa, data);
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
        let mut bytes = vec![0; len as usize];
        self.memory.read(pa, &mut bytes);
        Ok(bytes)
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

    /// Puts `bytes` in memory at `pa` as its initial contents (version 0,
    /// no writer): what a loader placed before the run, e.g. the image a
    /// QEMU guest booted, so that table walks of descriptors the image
    /// carries read them. Not an access: nothing is checked or counted.
    pub fn preload(&mut self, pa: u32, bytes: &[u8]) -> Result<(), SimError> {
        self.check_pa(pa, bytes.len() as u32)?;
        self.touch_memory(pa, bytes.len() as u32);
        self.memory.write(pa, bytes);
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
            LineOp::InvalidateInstruction => self.drop_line(Which::Instruction, i),
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

    /// The frames the engine under test declared dead
    /// (`KernelAccess::contents_dead`) since the last call, in order.
    pub fn take_engine_dead(&mut self) -> Vec<u32> {
        core::mem::take(&mut self.engine_dead)
    }

    /// Memory's current bytes at `pa` (not an access: nothing is checked or
    /// counted), e.g. for a kernel's memory-to-memory copy in a scenario.
    pub fn memory(&self, pa: u32, len: u32) -> Result<Vec<u8>, SimError> {
        self.check_pa(pa, len)?;
        let mut bytes = vec![0; len as usize];
        self.memory.read(pa, &mut bytes);
        Ok(bytes)
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
    // The two commonest first, ahead of the jump table: a line of 32
    // bytes (every preset's) and a word.
    if let (Ok(d), Ok(s)) = (
        <&mut [T; 32]>::try_from(&mut *dst),
        <&[T; 32]>::try_from(src),
    ) {
        *d = *s;
        return;
    }
    if let (Ok(d), Ok(s)) = (<&mut [T; 4]>::try_from(&mut *dst), <&[T; 4]>::try_from(src)) {
        *d = *s;
        return;
    }
    fixed!(1 2 8 16 64);
    dst.copy_from_slice(src);
}

#[cfg(test)]
mod tests;
