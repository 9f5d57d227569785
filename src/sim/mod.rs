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
//! the guest's initial memory with [`Sim::preload`]. The per-byte truth is
//! allocated zeroed, so a model of a guest's whole RAM costs host memory
//! only for the pages the guest touches.
//!
//! # Assumptions
//! - One core; loads and stores of 1, 2 or 4 naturally aligned bytes.
//! - A line is written back whole when dirty (one dirty bit per line; the
//!   ARM926's half-line dirty bits are not modelled, which can only make a
//!   partial write-back look worse, never better).
//! - VIVT lines remember their physical address for write-back (as the
//!   ARM926 TAG RAM does); VIVT hits compare the virtual tag only — with
//!   [`Indexing::VivtKeyed`] the FCSE-modified address (the space's key is
//!   its PID: user addresses below 32 MiB move to PID × 32 MiB).
//! - Memory types: write-back and write-through are cached; bufferable and
//!   strongly-ordered accesses bypass the cache and reach memory at once.
//! - Maintenance by MVA on VIPT/PIPT translates through the current space; an
//!   unmapped MVA does nothing.
//! - Table walks and DMA masters read and write memory only, never a cache
//!   or the write buffer.
//! - The write buffer (optional, [`CpuModel::write_buffer_entries`]) holds
//!   stores that bypass or write through the D-cache until a drain, until it
//!   is full (oldest first), or until the CPU itself reads memory (uncached
//!   loads and linefills wait for it, so the CPU always sees its own stores;
//!   only the table walker and DMA masters can see memory without them).
//!   Line write-backs go to memory directly.
//!
//! # Not modelled
//! Timing beyond the [cost model](Costs); write-buffer merging and the
//! order of buffered stores against write-backs; speculative
//! or prefetching fills; L2 caches; TLBs (TLB maintenance is counted only);
//! permission and alignment faults (unmapped addresses are errors).

mod cache;
mod config;

use std::collections::VecDeque;
use std::fmt;

use rustc_hash::FxHashMap;

pub use config::{Allocation, CacheConfig, CpuModel, Indexing, Replacement, WritePolicy};

use self::cache::{Cache, Probe};
use crate::addr::VirtAddr;
use crate::cache::{CacheInfo, CacheMaintenance, MaintenanceError};

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
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "op {}: {:?} at pa {:#010x}",
            self.operation, self.kind, self.pa
        )?;
        if let (Some(space), Some(va)) = (self.space, self.va) {
            write!(f, " (space {}, va {va:#010x})", space.0)?;
        }
        write!(
            f,
            ": saw version {}, newest is {} by {:?}",
            self.seen_version, self.last_version, self.last_writer
        )
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
    /// Global mapping (kernel); otherwise the lines carry the current key.
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

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
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
    memory: Vec<u8>,
    memory_versions: Vec<u64>,
    /// The truth of each byte: its newest version…
    truth_version: Vec<u64>,
    /// …and who wrote it ([`pack_writer`]).
    truth_writer: Vec<u128>,
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
    /// Stores on their way to memory, oldest first (see [`CpuModel::write_buffer_entries`]).
    write_buffer: VecDeque<BufferedStore>,
    /// One-entry translation cache: (space, virtual page) → mapping.
    last_translation: Option<(SpaceId, u32, Mapping, bool)>,
    /// Translations walked from attached tables, (space, virtual page) →
    /// (mapping, global), kept until a TLB operation drops them: a TLB of
    /// unlimited size, so a missing TLB flush always shows.
    tlb: FxHashMap<(SpaceId, u32), (Mapping, bool)>,
}

const PAGE: u32 = 4096;

impl Sim {
    /// A model of `model`'s caches over `memory_bytes` of physical memory
    /// (from physical address 0), with only the kernel's space.
    pub fn new(model: CpuModel, memory_bytes: usize) -> Self {
        Sim {
            model,
            info: model.info(),
            costs: Costs::DEFAULT,
            memory: vec![0; memory_bytes],
            memory_versions: vec![0; memory_bytes],
            truth_version: vec![0; memory_bytes],
            truth_writer: vec![0; memory_bytes],
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
            tlb: FxHashMap::default(),
            write_buffer: VecDeque::new(),
        }
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
    /// are kept in a TLB (of unlimited size) until a TLB operation drops
    /// them, so a missing TLB flush after a change shows too.
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

    /// Walks `space`'s tables for `va`.
    fn walk(
        &mut self,
        l1: crate::addr::PhysAddr,
        arch: crate::mmu::Arch,
        va: u32,
    ) -> Option<(Mapping, bool)> {
        use crate::mmu::{Access, Attributes, MemoryType, walk};
        let t = walk(
            &mut |pa| {
                self.table_walk(pa.as_u32())
                    .map_err(|_| crate::mmu::TableError::Memory { pa })
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
        let mapping = Mapping {
            frame: t.pa.as_u32() & !(PAGE - 1),
            mem,
            writable,
        };
        Some((mapping, global))
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
        if pa as u64 + len as u64 > self.memory.len() as u64 {
            return Err(SimError::OutOfMemory {
                pa,
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
        if let Some((space, p, m, global)) = self.last_translation
            && space == self.current
            && p == page
        {
            return Ok((m.frame | (va & (PAGE - 1)), m, global));
        }
        if let Some((l1, arch)) = self.spaces[self.current.0 as usize].table {
            let (m, global) = match self.tlb.get(&(self.current, page)) {
                Some(&hit) => hit,
                None => {
                    let walked = self.walk(l1, arch, va).ok_or(SimError::Unmapped {
                        space: self.current,
                        va,
                    })?;
                    self.tlb.insert((self.current, page), walked);
                    walked
                }
            };
            self.last_translation = Some((self.current, page, m, global));
            return Ok((m.frame | (va & (PAGE - 1)), m, global));
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
        self.last_translation = Some((self.current, page, m, global));
        Ok((m.frame | (va & (PAGE - 1)), m, global))
    }

    /// The lookup of a CPU access at `va` (translated to `pa`). With
    /// [`Indexing::VivtKeyed`] the space's key is an FCSE PID: a user
    /// address below 32 MiB is relocated by PID × 32 MiB, as the ARM926 does
    /// before its cache and TLB see it, so spaces with different PIDs use
    /// different lines there and the same lines above. The model's kernel
    /// lives at VA = PA, below 32 MiB for convenience; its (global) pages
    /// are not relocated, as a real kernel's above 32 MiB are not.
    fn probe(&self, va: u32, pa: u32, global: bool) -> Probe {
        let window = crate::mmu::FCSE_WINDOW_BYTES;
        let pid = u32::from(self.current_key & 0x7f);
        let relocate =
            self.dcache.cfg.indexing == Indexing::VivtKeyed && !global && pid != 0 && va < window;
        let va = if relocate { va + pid * window } else { va };
        Probe { va, pa }
    }

    // ---- accesses ---------------------------------------------------------

    /// A CPU load of `size` bytes (1, 2, 4) at `va` in the current space;
    /// returns what the modelled hardware returns (little-endian).
    pub fn load(&mut self, va: u32, size: u32) -> Result<u32, SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.loads += 1;
        let (pa, mapping, global) = self.translate(va)?;
        self.load_translated(va, size, pa, mapping.mem, global)
    }

    /// A CPU load whose translation the caller made (see [`Translated`]):
    /// for a model driven from outside, such as the QEMU plugin, which
    /// walks the guest's own tables. Size 1, 2 or 4, naturally aligned.
    pub fn load_at(&mut self, va: u32, size: u32, at: Translated) -> Result<u32, SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.loads += 1;
        self.load_translated(va, size, at.pa, at.mem, at.global)
    }

    fn load_translated(
        &mut self,
        va: u32,
        size: u32,
        pa: u32,
        mem: MemType,
        global: bool,
    ) -> Result<u32, SimError> {
        self.check_pa(pa, size)?;
        let mut bytes = [0u8; 4];
        let mut versions = [0u64; 4];
        if mem.cached() {
            let probe = self.probe(va, pa, global);
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
            // The CPU sees its own buffered stores: reads wait for the drain.
            self.drain_buffered_stores();
            let p = pa as usize;
            copy(
                &mut bytes[..size as usize],
                &self.memory[p..p + size as usize],
            );
            copy(
                &mut versions[..size as usize],
                &self.memory_versions[p..p + size as usize],
            );
        }
        self.check_read(va, pa, &versions[..size as usize], false);
        Ok(u32::from_le_bytes(bytes))
    }

    /// A CPU store of the low `size` bytes of `value` at `va` in the current space.
    pub fn store(&mut self, va: u32, size: u32, value: u32) -> Result<(), SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.stores += 1;
        let (pa, mapping, global) = self.translate(va)?;
        if !mapping.writable {
            return Err(SimError::ReadOnly { va });
        }
        self.store_translated(va, size, value, pa, mapping.mem, global)
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
        self.store_translated(va, size, value, at.pa, at.mem, at.global)
    }

    fn store_translated(
        &mut self,
        va: u32,
        size: u32,
        value: u32,
        pa: u32,
        mem: MemType,
        global: bool,
    ) -> Result<(), SimError> {
        self.check_pa(pa, size)?;
        let version = self.operation;
        let writer = Writer::Cpu {
            space: self.current,
            va,
            pc: self.site,
        };
        let bytes = value.to_le_bytes();
        for i in 0..size as usize {
            self.set_truth(pa + i as u32, Truth { version, writer });
        }
        let mut to_memory = !mem.cached() || mem == MemType::WriteThrough;
        if mem.cached() {
            let probe = self.probe(va, pa, global);
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
                if write_back {
                    self.dcache.meta[line].dirty = true;
                } else {
                    to_memory = true;
                }
            }
        }
        if to_memory {
            self.counters.uncached += 1;
            self.counters.cycles += self.costs.uncached;
            self.buffer_store(BufferedStore {
                pa,
                len: size as u8,
                bytes,
                version,
            });
        }
        Ok(())
    }

    /// A store on its way to memory: through the write buffer when the
    /// model has one (the oldest entry drains when it is full), else at once.
    fn buffer_store(&mut self, store: BufferedStore) {
        if self.model.write_buffer_entries == 0 {
            self.apply_store(store);
            return;
        }
        if self.write_buffer.len() >= self.model.write_buffer_entries
            && let Some(oldest) = self.write_buffer.pop_front()
        {
            self.apply_store(oldest);
        }
        self.write_buffer.push_back(store);
    }

    fn apply_store(&mut self, store: BufferedStore) {
        let (p, n) = (store.pa as usize, store.len as usize);
        copy(&mut self.memory[p..p + n], &store.bytes[..n]);
        self.memory_versions[p..p + n].fill(store.version);
    }

    /// Empties the write buffer into memory.
    /// Counts a TLB operation only ARMv6 has (the model keeps no TLB), or
    /// refuses it on ARMv5 as the CPU backends do.
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

    fn drain_buffered_stores(&mut self) {
        while let Some(store) = self.write_buffer.pop_front() {
            self.apply_store(store);
        }
    }

    /// An instruction fetch of the 4-byte word at `va` in the current space.
    pub fn fetch(&mut self, va: u32) -> Result<u32, SimError> {
        check_access(va, 4)?;
        self.operation += 1;
        self.counters.fetches += 1;
        let (pa, mapping, global) = self.translate(va)?;
        self.fetch_translated(va, 4, pa, mapping.mem, global)
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
        self.fetch_translated(va, size, at.pa, at.mem, at.global)
    }

    fn fetch_translated(
        &mut self,
        va: u32,
        size: u32,
        pa: u32,
        mem: MemType,
        global: bool,
    ) -> Result<u32, SimError> {
        self.check_pa(pa, size)?;
        let n = size as usize;
        let (bytes, versions) = if mem.cached() {
            let probe = self.probe(va, pa, global);
            let line = match self.icache.lookup(&probe) {
                Some(line) => {
                    self.counters.hits += 1;
                    self.counters.cycles += self.costs.hit;
                    line
                }
                None => self.fill(Which::Instruction, &probe),
            };
            let start =
                self.icache.bytes(line).start + ((va as usize) & (self.icache.line_bytes - 1));
            let mut b = [0u8; 4];
            let mut v = [0u64; 4];
            copy(&mut b[..n], &self.icache.data[start..start + n]);
            copy(&mut v[..n], &self.icache.versions[start..start + n]);
            (b, v)
        } else {
            self.counters.uncached += 1;
            self.drain_buffered_stores();
            let p = pa as usize;
            let mut b = [0u8; 4];
            let mut v = [0u64; 4];
            copy(&mut b[..n], &self.memory[p..p + n]);
            copy(&mut v[..n], &self.memory_versions[p..p + n]);
            (b, v)
        };
        self.check_read(va, pa, &versions[..n], true);
        Ok(u32::from_le_bytes(bytes))
    }

    /// A DMA master writes `data` to memory at `pa`.
    pub fn dma_write(&mut self, pa: u32, data: &[u8]) -> Result<(), SimError> {
        self.check_pa(pa, data.len() as u32)?;
        self.operation += 1;
        self.counters.dma_bytes += data.len() as u64;
        let version = self.operation;
        for (i, &b) in data.iter().enumerate() {
            let p = pa as usize + i;
            self.memory[p] = b;
            self.memory_versions[p] = version;
            self.set_truth(
                p as u32,
                Truth {
                    version,
                    writer: Writer::Dma,
                },
            );
        }
        Ok(())
    }

    /// The owner declares the bytes at `pa` dead (a freed frame): memory
    /// becomes their newest version, so dropping or writing back a line of
    /// them is no loss — while writing such a line back later, over what
    /// the next owner (CPU or DMA) stored, still is one (`StaleWriteBack`).
    pub fn declare_dead(&mut self, pa: u32, len: u32) -> Result<(), SimError> {
        self.check_pa(pa, len)?;
        self.operation += 1;
        let version = self.operation;
        for p in pa as usize..(pa + len) as usize {
            self.memory_versions[p] = version;
            self.set_truth(
                p as u32,
                Truth {
                    version,
                    writer: Writer::Dead,
                },
            );
        }
        Ok(())
    }

    /// A DMA master reads `len` bytes of memory at `pa`; the oracle reports
    /// memory older than the last CPU store.
    pub fn dma_read(&mut self, pa: u32, len: u32) -> Result<Vec<u8>, SimError> {
        self.check_pa(pa, len)?;
        self.operation += 1;
        self.counters.dma_bytes += u64::from(len);
        self.check_memory(ViolationKind::DmaReadStaleMemory, pa, len);
        Ok(self.memory[pa as usize..(pa + len) as usize].to_vec())
    }

    /// The table walker reads the 4-byte descriptor at `pa` from memory.
    pub fn table_walk(&mut self, pa: u32) -> Result<u32, SimError> {
        self.check_pa(pa, 4)?;
        self.operation += 1;
        self.check_memory(ViolationKind::StaleTableWalk, pa, 4);
        let p = pa as usize;
        Ok(u32::from_le_bytes(
            self.memory[p..p + 4].try_into().expect("4 bytes"),
        ))
    }

    /// Attributes the stores that follow to the instruction at `pc` (the
    /// newest writer of each byte they store records it, and violations
    /// name it), or to nobody with `None`.
    pub fn set_site(&mut self, pc: Option<u32>) {
        self.site = pc;
    }

    /// Puts `bytes` in memory at `pa` as its initial contents (version 0,
    /// no writer): what a loader placed before the run, e.g. the image a
    /// QEMU guest booted, so that table walks of descriptors the image
    /// carries read them. Not an access: nothing is checked or counted.
    pub fn preload(&mut self, pa: u32, bytes: &[u8]) -> Result<(), SimError> {
        self.check_pa(pa, bytes.len() as u32)?;
        copy(
            &mut self.memory[pa as usize..pa as usize + bytes.len()],
            bytes,
        );
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
        let (pa, global) = match at {
            Some(at) => (at.pa, at.global),
            None => match self.cache(which).cfg.indexing {
                Indexing::Vivt | Indexing::VivtKeyed => (u32::MAX, false),
                Indexing::Vipt | Indexing::Pipt => return,
            },
        };
        let probe = self.probe(va, pa, global);
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
        Ok(&self.memory[pa as usize..pa as usize + len as usize])
    }

    // ---- oracle -----------------------------------------------------------

    #[inline]
    fn truth(&self, pa: u32) -> Truth {
        Truth {
            version: self.truth_version[pa as usize],
            writer: unpack_writer(self.truth_writer[pa as usize]),
        }
    }

    #[inline]
    fn set_truth(&mut self, pa: u32, truth: Truth) {
        self.truth_version[pa as usize] = truth.version;
        self.truth_writer[pa as usize] = pack_writer(truth.writer);
    }

    fn check_read(&mut self, va: u32, pa: u32, versions: &[u64], fetch: bool) {
        for (i, &seen) in versions.iter().enumerate() {
            let truth = self.truth(pa + i as u32);
            if seen != truth.version {
                let kind = match (fetch, truth.writer) {
                    (true, _) => ViolationKind::StaleFetch,
                    (false, Writer::Dma) => ViolationKind::StaleReadAfterDma,
                    (false, _) => ViolationKind::StaleRead,
                };
                self.report(kind, Some(va), pa + i as u32, truth, seen);
                return;
            }
        }
    }

    fn check_memory(&mut self, kind: ViolationKind, pa: u32, len: u32) {
        for p in pa..pa + len {
            let truth = self.truth(p);
            let seen = self.memory_versions[p as usize];
            if seen != truth.version {
                self.report(kind, None, p, truth, seen);
                return;
            }
        }
    }

    fn report(&mut self, kind: ViolationKind, va: Option<u32>, pa: u32, truth: Truth, seen: u64) {
        self.violations.push(Violation {
            kind,
            operation: self.operation,
            space: va.map(|_| self.current),
            va,
            pa,
            last_writer: truth.writer,
            last_version: truth.version,
            seen_version: seen,
        });
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
        // A linefill waits for the write buffer: the CPU reads its own stores.
        self.drain_buffered_stores();
        let victim = self.cache(which).victim(probe);
        self.evict(which, victim);
        let cache = self.cache(which);
        let line_pa = cache.line_base(probe.pa);
        let line_va = cache.line_base(probe.va);
        let range = cache.bytes(victim);
        let n = cache.line_bytes;
        let p = line_pa as usize;
        match which {
            Which::Data => {
                copy(&mut self.dcache.data[range.clone()], &self.memory[p..p + n]);
                copy(
                    &mut self.dcache.versions[range],
                    &self.memory_versions[p..p + n],
                );
            }
            Which::Instruction => {
                copy(&mut self.icache.data[range.clone()], &self.memory[p..p + n]);
                copy(
                    &mut self.icache.versions[range],
                    &self.memory_versions[p..p + n],
                );
            }
        }
        let meta = &mut self.cache(which).meta[victim];
        meta.valid = true;
        meta.dirty = false;
        meta.va = line_va;
        meta.pa = line_pa;
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

    /// Writes D line `i` back if it is valid and dirty; checks that no byte
    /// is older than memory's.
    fn write_back(&mut self, i: usize) {
        let meta = self.dcache.meta[i];
        if !(meta.valid && meta.dirty) {
            return;
        }
        let range = self.dcache.bytes(i);
        let (base, n) = (meta.pa as usize, self.dcache.line_bytes);
        let line_versions = &self.dcache.versions[range.clone()];
        let memory_versions = &mut self.memory_versions[base..base + n];
        // A byte older than memory's overwrites newer data: a lost write.
        let lost = line_versions
            .iter()
            .zip(memory_versions.iter())
            .position(|(line, memory)| line < memory)
            .map(|k| (meta.pa + k as u32, line_versions[k]));
        copy(memory_versions, line_versions);
        copy(&mut self.memory[base..base + n], &self.dcache.data[range]);
        if let Some((pa, seen)) = lost
            && self.truth(pa).writer != Writer::Dead
        {
            let truth = self.truth(pa);
            self.report_line(ViolationKind::StaleWriteBack, meta.va, pa, truth, seen);
        }
        self.dcache.meta[i].dirty = false;
        self.counters.write_backs += 1;
        self.counters.cycles += self.costs.write_back;
    }

    /// Invalidates D line `i` without writing it back; a dirty byte that is
    /// the only copy of the newest value is a lost write.
    fn discard(&mut self, i: usize) {
        let meta = self.dcache.meta[i];
        if meta.valid && meta.dirty {
            let range = self.dcache.bytes(i);
            for (k, idx) in range.enumerate() {
                let pa = meta.pa + k as u32;
                let v = self.dcache.versions[idx];
                let truth = self.truth(pa);
                if v == truth.version && self.memory_versions[pa as usize] != v {
                    self.report_line(ViolationKind::DirtyLineDiscarded, meta.va, pa, truth, v);
                    break;
                }
            }
        }
        self.dcache.meta[i].valid = false;
    }

    fn report_line(&mut self, kind: ViolationKind, line_va: u32, pa: u32, truth: Truth, seen: u64) {
        let va = line_va | (pa & (self.dcache.line_bytes as u32 - 1));
        self.violations.push(Violation {
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

/// A store that bypassed (or wrote through) the D-cache, not yet in memory.
#[derive(Clone, Copy, Debug)]
struct BufferedStore {
    pa: u32,
    len: u8,
    bytes: [u8; 4],
    version: u64,
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

impl CacheMaintenance for Sim {
    fn info(&self) -> &CacheInfo {
        &self.info
    }

    fn clean_dcache_line(&mut self, va: VirtAddr) {
        self.maintenance();
        self.counters.clean_line += 1;
        if let Some(i) = self.line_for_mva(Which::Data, va.as_u32()) {
            self.write_back(i);
        }
    }

    fn clean_invalidate_dcache_line(&mut self, va: VirtAddr) {
        self.maintenance();
        self.counters.clean_invalidate_line += 1;
        if let Some(i) = self.line_for_mva(Which::Data, va.as_u32()) {
            self.evict(Which::Data, i);
        }
    }

    unsafe fn invalidate_dcache_line(&mut self, va: VirtAddr) {
        self.maintenance();
        self.counters.invalidate_line += 1;
        if let Some(i) = self.line_for_mva(Which::Data, va.as_u32()) {
            self.discard(i);
        }
    }

    fn clean_dcache_all(&mut self) {
        self.counters.clean_all += 1;
        self.whole_dcache(false);
    }

    fn clean_invalidate_dcache_all(&mut self) {
        self.counters.clean_invalidate_all += 1;
        self.whole_dcache(true);
    }

    fn invalidate_icache_line(&mut self, va: VirtAddr) {
        self.maintenance();
        self.counters.icache_line += 1;
        if let Some(i) = self.line_for_mva(Which::Instruction, va.as_u32()) {
            self.icache.meta[i].valid = false;
        }
    }

    fn invalidate_icache_all(&mut self) {
        self.operation += 1;
        self.counters.icache_all += 1;
        self.counters.cycles += self.costs.whole_cache_per_line * self.icache.meta.len() as u64;
        self.icache.meta.iter_mut().for_each(|m| m.valid = false);
    }

    fn drain_write_buffer(&mut self) {
        self.drain_buffered_stores();
        self.counters.drains += 1;
        self.counters.cycles += self.costs.drain;
    }

    fn invalidate_tlb_all(&mut self) {
        self.last_translation = None;
        self.tlb.clear();
        self.counters.tlb_ops += 1;
        self.counters.cycles += self.costs.tlb_op;
    }

    fn invalidate_tlb_page(&mut self, va: VirtAddr) {
        self.last_translation = None;
        // Every space's entry for the page: stricter than an ASID-tagged
        // TLB never hurts, and the model has no ASIDs.
        let page = va.as_u32() / PAGE;
        self.tlb.retain(|&(_, p), _| p != page);
        self.counters.tlb_ops += 1;
        self.counters.cycles += self.costs.tlb_op;
    }

    fn invalidate_tlb_asid(&mut self, _asid: u8) -> Result<(), MaintenanceError> {
        self.last_translation = None;
        self.tlb.clear();
        self.armv6_tlb_op("TLB invalidate by ASID")
    }

    fn invalidate_tlb_page_asid(
        &mut self,
        va: VirtAddr,
        _asid: u8,
    ) -> Result<(), MaintenanceError> {
        self.last_translation = None;
        let page = va.as_u32() / PAGE;
        self.tlb.retain(|&(_, p), _| p != page);
        self.armv6_tlb_op("TLB invalidate by MVA and ASID")
    }
}

/// The translation registers as the model sees them: TTBR0 selects the
/// space whose attached table (see [`Sim::attach_table`]) is at that
/// address, so `ContextSwitcher` drives the model's context switches.
impl crate::mmu::TranslationRegisters for Sim {
    unsafe fn set_user_table(&mut self, table: crate::addr::PhysAddr) {
        let found = self
            .spaces
            .iter()
            .position(|s| s.table.is_some_and(|(l1, _)| l1 == table));
        // A table the model does not know (never attached) leaves the
        // current space as it is: the scenario's own accesses will show it.
        if let Some(i) = found {
            let key = self.current_key;
            self.current = SpaceId(i as u16);
            self.current_key = key;
            self.last_translation = None;
        }
    }

    unsafe fn set_context_key(&mut self, key: u8) {
        self.current_key = u16::from(key);
        self.last_translation = None;
    }
}

/// The kernel's page copies and fills, as word accesses through the
/// current translation (the kernel's linear map must be mapped).
impl crate::coherence::KernelAccess for Sim {
    /// Ignored: the oracle trusts nothing the engine under test declares.
    /// Whoever drives the model declares dead contents from its own
    /// semantics ([`Sim::declare_dead`]), so an engine that wrongly calls
    /// live data dead is caught when it drops that data.
    fn contents_dead(&mut self, pa: crate::addr::PhysAddr) {
        let _ = pa;
    }

    fn zero_page(&mut self, va: VirtAddr) -> Result<(), crate::coherence::AccessError> {
        let base = va.as_u32() & !(PAGE - 1);
        for offset in (0..PAGE).step_by(4) {
            self.store(base + offset, 4, 0)
                .map_err(|_| crate::coherence::AccessError {
                    va: VirtAddr(base + offset),
                })?;
        }
        Ok(())
    }

    fn copy_page(
        &mut self,
        dst: VirtAddr,
        src: VirtAddr,
    ) -> Result<(), crate::coherence::AccessError> {
        let (dst, src) = (dst.as_u32() & !(PAGE - 1), src.as_u32() & !(PAGE - 1));
        for offset in (0..PAGE).step_by(4) {
            let word = self
                .load(src + offset, 4)
                .map_err(|_| crate::coherence::AccessError {
                    va: VirtAddr(src + offset),
                })?;
            self.store(dst + offset, 4, word)
                .map_err(|_| crate::coherence::AccessError {
                    va: VirtAddr(dst + offset),
                })?;
        }
        Ok(())
    }
}

/// The model as the kernel's view of translation-table frames. Words are
/// read and written through the kernel's mapping at VA = PA (map the table
/// frames in [`KERNEL`] at their physical addresses first), so descriptor
/// writes go through the modelled D-cache as they do on the CPU, and
/// [`Sim::table_walk`] reports a walk that would read a stale descriptor.
impl crate::mmu::TableMemory for Sim {
    type Cache = Sim;

    fn read_word(&mut self, pa: crate::addr::PhysAddr) -> Result<u32, crate::mmu::TableError> {
        self.load(pa.0, 4)
            .map_err(|_| crate::mmu::TableError::Memory { pa })
    }

    fn write_word(
        &mut self,
        pa: crate::addr::PhysAddr,
        value: u32,
    ) -> Result<(), crate::mmu::TableError> {
        self.store(pa.0, 4, value)
            .map_err(|_| crate::mmu::TableError::Memory { pa })
    }

    fn kernel_va(&self, pa: crate::addr::PhysAddr) -> VirtAddr {
        VirtAddr(pa.0)
    }

    fn cache(&mut self) -> &mut Sim {
        self
    }
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
mod tests {
    use super::*;

    const WB: MemType = MemType::WriteBack;

    fn at(pa: u32) -> Translated {
        Translated {
            pa,
            mem: WB,
            global: true,
        }
    }

    #[test]
    fn writers_pack_and_unpack() {
        for writer in [
            Writer::Initial,
            Writer::Dma,
            Writer::Dead,
            Writer::Cpu {
                space: SpaceId(7),
                va: 0xffff_fffc,
                pc: None,
            },
            Writer::Cpu {
                space: SpaceId(u16::MAX),
                va: 0,
                pc: Some(0),
            },
            Writer::Cpu {
                space: SpaceId(0),
                va: 0x1234_5678,
                pc: Some(0xffff_fffe),
            },
        ] {
            assert_eq!(unpack_writer(pack_writer(writer)), writer);
        }
        assert_eq!(pack_writer(Writer::Initial), 0);
    }

    /// The externally driven entry points see a VIVT alias the way the
    /// scenario API does, and name the storing instruction.
    #[test]
    fn translated_accesses_find_a_vivt_alias_and_its_writer() {
        let mut sim = Sim::new(CpuModel::arm926().with_write_buffer(0), 64 << 10);
        let (kernel, user, pa) = (0xc000_2000, 0x0001_0000, 0x2000);
        assert_eq!(sim.load_at(user, 4, at(pa)), Ok(0));
        sim.set_site(Some(0x8000_0124));
        sim.store_at(kernel, 4, 0xdead_beef, at(pa)).unwrap();
        // The store missed (ARM926 does not allocate on writes) and went to memory.
        assert_eq!(sim.load_at(kernel, 4, at(pa)), Ok(0xdead_beef));
        assert!(sim.take_violations().is_empty());
        // The user alias still holds the line filled before the store.
        sim.load_at(user, 4, at(pa)).unwrap();
        let v = sim.take_violations();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].kind, ViolationKind::StaleRead);
        assert_eq!(
            v[0].last_writer,
            Writer::Cpu {
                space: KERNEL,
                va: kernel,
                pc: Some(0x8000_0124)
            }
        );
        // Invalidating the user alias's line by MVA (VIVT: no translation
        // needed) makes the next load fetch memory.
        sim.maintain_line(LineOp::Invalidate, user, None);
        assert_eq!(sim.load_at(user, 4, at(pa)), Ok(0xdead_beef));
        assert!(sim.violations().is_empty());
    }

    #[test]
    fn translated_fetches_and_set_way_operations() {
        let mut sim = Sim::new(CpuModel::arm1176_16k(), 64 << 10);
        // A Thumb fetch is two bytes; a byte fetch is a caller mistake.
        assert_eq!(sim.fetch_at(0x1002, 2, at(0x1002)), Ok(0));
        assert_eq!(
            sim.fetch_at(0x1001, 1, at(0x1001)),
            Err(SimError::BadAccess {
                va: 0x1001,
                size: 1
            })
        );
        // Code written through the D-cache and fetched without a clean.
        sim.load_at(0x1000, 4, at(0x1000)).unwrap();
        sim.store_at(0x1000, 4, 0xe12f_ff1e, at(0x1000)).unwrap();
        sim.maintain_line(LineOp::InvalidateInstruction, 0x1000, Some(at(0x1000)));
        sim.fetch_at(0x1000, 4, at(0x1000)).unwrap();
        assert_eq!(sim.take_violations()[0].kind, ViolationKind::StaleFetch);
        // Set/way: the line is in set (0x1000 >> 5) & 127, some way.
        let set = (0x1000 >> 5) & 127;
        for way in 0..4 {
            sim.maintain_set_way(LineOp::Clean, set, way).unwrap();
        }
        sim.maintain_line(LineOp::InvalidateInstruction, 0x1000, Some(at(0x1000)));
        assert_eq!(sim.fetch_at(0x1000, 4, at(0x1000)), Ok(0xe12f_ff1e));
        assert!(sim.violations().is_empty());
        assert_eq!(
            sim.maintain_set_way(LineOp::Clean, 128, 0),
            Err(SimError::NoSuchLine { set: 128, way: 0 })
        );
        // Dropping the whole D-cache with a dirty line loses the write.
        sim.store_at(0x1000, 4, 1, at(0x1000)).unwrap();
        sim.invalidate_dcache_all();
        assert_eq!(
            sim.take_violations()[0].kind,
            ViolationKind::DirtyLineDiscarded
        );
    }

    #[test]
    fn preload_sets_initial_contents_without_versions() {
        let mut sim = Sim::new(CpuModel::arm926(), 64 << 10);
        sim.preload(0x3000, &0x0000_1c0e_u32.to_le_bytes()).unwrap();
        assert_eq!(sim.table_walk(0x3000), Ok(0x1c0e));
        assert!(sim.violations().is_empty());
        assert!(sim.preload(0xfffc, &[0; 8]).is_err());
    }

    #[test]
    fn scenario_mistakes_are_typed_errors() {
        let mut sim = Sim::new(CpuModel::arm926(), 64 << 10);
        assert_eq!(
            sim.load(0x1000, 4),
            Err(SimError::Unmapped {
                space: KERNEL,
                va: 0x1000
            })
        );
        assert_eq!(
            sim.load(0x1002, 4),
            Err(SimError::BadAccess {
                va: 0x1002,
                size: 4
            })
        );
        assert_eq!(
            sim.load(0x1000, 3),
            Err(SimError::BadAccess {
                va: 0x1000,
                size: 3
            })
        );
        assert_eq!(
            sim.map(KERNEL, 0xc000_0000, 0x1_0000, MemType::WriteBack, true),
            Err(SimError::OutOfMemory {
                pa: 0x1_0000,
                size: 64 << 10
            })
        );
        assert!(sim.memory(0xffff_f000, 0x2000).is_err());
        assert!(sim.dma_read(0xffff_fff0, 0x20).is_err());
        assert_eq!(
            sim.switch_to(SpaceId(9)),
            Err(SimError::NoSuchSpace(SpaceId(9)))
        );
        sim.map(KERNEL, 0xc000_0000, 0, MemType::WriteBack, false)
            .unwrap();
        assert_eq!(
            sim.store(0xc000_0000, 4, 1),
            Err(SimError::ReadOnly { va: 0xc000_0000 })
        );
        assert!(sim.violations().is_empty());
    }
}
