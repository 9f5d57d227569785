//! The coherence engine: the calls a kernel makes so that no mapping of any
//! page reads stale data or loses a write, with the least maintenance the
//! cache needs.
//!
//! ```text
//!   kernel event                    engine call
//!   ─────────────────────────────── ──────────────────────────────────────
//!   page fault                      Engine::fault (zero-fill / copy-on-write
//!                                   through colour-matched kernel windows,
//!                                   then update_mmu_cache)
//!   kernel writes a page-cache page Engine::page_cache_write → guard
//!                                   (flush_dcache_page before if users map
//!                                   it writable, and after: deferred while
//!                                   no user maps it)
//!   kernel touches a user page      Engine::kmap → Kmap guard (maintenance
//!                                   before, and on drop)
//!   munmap / mprotect / brk         Engine::munmap / mprotect / brk
//!   fork / exec / exit              Engine::fork / exec / exit
//!   context switch                  Engine::switch_to (ContextSwitcher)
//!   buffers kernel ↔ user           shared::SharedBuffer (hand-over or uncached)
//!   DMA                             dma::map_for_device / unmap
//! ```
//!
//! Which aliases "can hold separate lines" is the cache's kind:
//! - **VIVT** (ARM926): any two virtual addresses. A space's user lines
//!   survive only until a flushing context switch; spaces running under an
//!   FCSE PID keep theirs, at their modified addresses. The engine tracks
//!   which spaces are *live in the cache* and skips the others.
//! - **VIPT aliasing** (ARM1136 with 32/64 KiB): addresses of different
//!   colours. Frames are allocated in their user address's colour, so the
//!   kernel alias usually shares the user's lines and needs nothing; where
//!   it does not, the kernel works through a window of the user's colour
//!   ([`KernelWindows`]), which also reaches lines of spaces not running.
//! - **VIPT non-aliasing, PIPT** (ARM1176 16 KiB): never — only the I-cache
//!   needs maintenance, for code written through the D-cache.
//!
//! # Example
//!
//! The engine on the host cache model (feature `sim`): a process maps a
//! page-cache page the kernel wrote before anyone mapped it.
//!
//! ```
//! # #[cfg(feature = "sim")] {
//! use vacmm::coherence::Engine;
//! use vacmm::sim::{CpuModel, Sim};
//! use vacmm::mmu::SwitchPolicy;
//! let model = CpuModel::arm926();
//! let engine = Engine::new(model.info(), 0, SwitchPolicy::VivtFlush).unwrap();
//! assert_eq!(engine.counters().flush_dcache_page, 0);
//! // ASIDs on an ARMv5 VIVT cache cannot be kept coherent: refused.
//! assert!(Engine::new(model.info(), 0, SwitchPolicy::Asid).is_err());
//! # }
//! ```
//! The engine's own tests (`src/coherence/tests.rs`) drive every seed
//! scenario this way; `tests/coherence.rs` runs them on the CPU.

use core::fmt;

use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::cache::{CacheInfo, CacheKind, CacheMaintenance};
use crate::mm::frames::{FRAME_SIZE, FrameError, PageFlags, SpaceId};
use crate::mm::space::{AddressSpace, MemorySystem, Protection, SpaceError};
use crate::mmu::{MemoryType, SwitchPolicy, TableError, TableMemory};

mod config;
pub mod coverage;
pub mod dma;
mod fault;
mod knowledge;
mod lifecycle;
mod page_cache;
pub mod shared;
mod uncached;
mod windows;

pub use config::{EngineConfigError, PolicyAnswer, check_configuration};
pub use knowledge::{FrameKnowledge, MemoryTypes, SpaceView, UserMapping};
use knowledge::{clear_flags, set_flags};
pub use lifecycle::ExitRefused;
pub use page_cache::PageCacheWrite;
pub use windows::{KernelWindows, Kmap, KmapAccess, WindowError};

#[cfg(all(test, feature = "sim"))]
mod tests;

/// How the kernel reads and writes a whole page through one of its
/// mappings: plain stores on the CPU, modelled accesses in the `sim` model.
pub trait KernelAccess {
    /// Writes zeroes over the page at kernel address `va`.
    fn zero_page(&mut self, va: VirtAddr) -> Result<(), AccessError>;
    /// Copies the page at kernel address `src` over the one at `dst`.
    fn copy_page(&mut self, dst: VirtAddr, src: VirtAddr) -> Result<(), AccessError>;
    /// The engine is about to drop frame `pa`'s cached lines unwritten
    /// because its contents are dead (its owner exits). Coherence needs
    /// nothing done here on a CPU. A kernel that runs under the cache
    /// sanitizer (`qemu/cachesan`) calls
    /// `declare_dead` of [`arch::annotate`](crate::arch::annotate) for the
    /// page here, so that the sanitizer tells the drop from a lost write,
    /// as the cache model's oracle does (the model records it itself).
    fn contents_dead(&mut self, pa: PhysAddr) {
        let _ = pa;
    }
}

/// A kernel page access that could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessError {
    /// The address that failed.
    pub va: VirtAddr,
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the kernel could not access the page at kernel address {}",
            self.va
        )
    }
}

impl core::error::Error for AccessError {}

/// The choices a coherence policy makes; the engine does the work. The
/// benchmarks plug Linux-like and NetBSD-like baselines in here.
///
/// Not every answer can be kept coherent with every context switch and
/// cache: [`Engine::with_policy`] checks the combination
/// ([`check_configuration`], which lists the refusals and their reasons).
pub trait Policy {
    /// Short name for reports.
    fn name(&self) -> &'static str;
    /// Leave a kernel write to an unmapped page in the kernel alias until a
    /// user mapping appears (Linux's `PG_dcache_clean`), instead of
    /// cleaning at once.
    fn defers_kernel_alias(&self) -> bool {
        true
    }
    /// Make a page cacheable again once its alias conflict is gone
    /// (NetBSD does, Linux does not).
    fn restores_cacheability(&self) -> bool {
        true
    }
    /// Use the "is this space live in the cache" knowledge to skip
    /// maintenance of spaces whose lines a context switch already flushed.
    ///
    /// `false` means "every switch flushed the other spaces' lines": the
    /// engine then maintains the running space only, at its plain
    /// addresses. FCSE switches ([`SwitchPolicy::VivtFcse`]) flush nothing
    /// and move each space's lines by its PID, so on a VIVT cache an engine
    /// with that answer and that switcher is refused at construction
    /// ([`EngineConfigError::Policy`]).
    fn tracks_live_spaces(&self) -> bool {
        true
    }
    /// Zero-fill and copy through windows of the user's colour (when the
    /// engine has them) instead of the linear map plus flushes.
    fn uses_colour_windows(&self) -> bool {
        true
    }
    /// Flush the whole D-cache at every coherence event instead of the
    /// pages concerned (the flush-everything baseline).
    fn flushes_everything(&self) -> bool {
        false
    }
    /// Bytes of resident pages above which a range flush (munmap,
    /// mprotect, brk, fork, exit) cleans and invalidates the whole D-cache
    /// instead of page by page. By default the cache's own threshold, about
    /// where the lines one by one cost as much as the whole cache. (Linux
    /// flushes the whole cache for every range on a VIPT-aliasing cache;
    /// NetBSD's `pmap_remove` above three pages.)
    fn range_threshold(&self, info: &CacheInfo) -> u64 {
        info.whole_cache_threshold()
    }
    /// Flush a whole address space (fork, exit, `flush_cache_mm`) with one
    /// whole-D-cache operation instead of its resident pages, as Linux's
    /// `flush_cache_mm` does.
    fn flushes_whole_mm(&self) -> bool {
        false
    }
    /// Map every user mapping of a page that some mapping shares
    /// (`MAP_SHARED`) uncacheable, whatever the cache (the all-uncached
    /// baseline). The kernel's own alias stays cached and is cleaned after
    /// each of its writes, since users read memory.
    ///
    /// Served on every cache: a user mapping going uncached first has the
    /// frame's cached lines cleaned and dropped (a fill through the kernel
    /// alias, or the frame's previous life, would otherwise be written back
    /// over the users' stores — on a non-aliasing cache as much as on an
    /// aliasing one); kernel accesses ([`Engine::kmap`], page-cache writes,
    /// copy-on-write copies, shared-buffer hand-overs) drop the kernel's
    /// lines of such a page before and after (written back first).
    fn uncaches_shared(&self) -> bool {
        false
    }
}

/// A policy chosen at run time (a kernel picking one at boot, the checks
/// sweeping every one): the boxed policy's answers.
impl<P: Policy + ?Sized> Policy for alloc::boxed::Box<P> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn defers_kernel_alias(&self) -> bool {
        (**self).defers_kernel_alias()
    }
    fn restores_cacheability(&self) -> bool {
        (**self).restores_cacheability()
    }
    fn tracks_live_spaces(&self) -> bool {
        (**self).tracks_live_spaces()
    }
    fn uses_colour_windows(&self) -> bool {
        (**self).uses_colour_windows()
    }
    fn flushes_everything(&self) -> bool {
        (**self).flushes_everything()
    }
    fn range_threshold(&self, info: &CacheInfo) -> u64 {
        (**self).range_threshold(info)
    }
    fn flushes_whole_mm(&self) -> bool {
        (**self).flushes_whole_mm()
    }
    fn uncaches_shared(&self) -> bool {
        (**self).uncaches_shared()
    }
}

/// vacmm's own policy: defer, restore cacheability, skip spaces that are
/// not live, work through colour-matched windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vacmm;

impl Policy for Vacmm {
    fn name(&self) -> &'static str {
        "vacmm"
    }
}

/// What the engine did, counted (NetBSD's event counters). Operations are
/// counted per page (or per whole-cache operation), not per line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// `flush_dcache_page` calls.
    pub flush_dcache_page: u64,
    /// …of which deferred (no user mapping).
    pub deferred: u64,
    /// Kernel-alias pages cleaned (or discarded before an overwrite).
    pub kernel_alias_cleans: u64,
    /// User-alias pages cleaned and/or invalidated.
    pub user_alias_flushes: u64,
    /// I-cache invalidations for executable mappings.
    pub icache_flushes: u64,
    /// Executable mappings of a page whose code memory already held
    /// ([`PageFlags::CODE_SYNCED`]): the D-cache clean skipped.
    pub code_clean_skipped: u64,
    /// Whole-D-cache operations (a range above the threshold, or an alias
    /// out of reach without windows).
    pub whole_cache_flushes: u64,
    /// Pages made uncacheable by `make_coherent` (transitions).
    pub made_uncached: u64,
    /// Pages made cacheable again (transitions).
    pub restored: u64,
    /// Ranges flushed before unmap / protection change / fork / exit.
    pub range_flushes: u64,
    /// Maintenance skipped because the space's lines were not live.
    pub skipped_not_live: u64,
    /// Pages zero-filled or copied for user mappings.
    pub pages_filled: u64,
    /// …of which through a kernel window of the user's colour.
    pub window_fills: u64,
    /// `Kmap` guards taken.
    pub kmaps: u64,
    /// Context switches through the engine, and of those the ones that
    /// flushed the caches.
    pub switches: u64,
    /// See `switches`.
    pub switch_flushes: u64,
    /// Switches that did not flush, after which the engine cleaned and
    /// dropped the lines of pages shared writable across spaces (see
    /// [`Engine::switch_to`]).
    pub cross_space_separations: u64,
    /// Pages that became shared writable across spaces, in separate
    /// lines, at a mapping (not a switch): their user lines were cleaned
    /// and dropped at once (see [`Engine::make_coherent`]).
    pub newly_shared_separations: u64,
    /// Hits per coverage point ([`coverage::Point`]).
    pub coverage: coverage::Coverage,
}

/// Why an engine call failed. Each carries the offending values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoherenceError {
    /// The address-space operation failed (nothing was flushed for it).
    /// Never `SpaceError::Frame` or `SpaceError::Table`: those are
    /// [`Frame`](Self::Frame) and [`Table`](Self::Table) from whichever
    /// layer they come.
    Space(SpaceError),
    /// A frame-database or frame-allocator error (an unknown frame, a
    /// missing mapping, no free frame).
    Frame(FrameError),
    /// A page-table error (no frame for a second-level table, a misaligned
    /// table).
    Table(TableError),
    /// The kernel could not access a page through its alias.
    Access(AccessError),
    /// A kernel window could not be used.
    Window(WindowError),
    /// An address that must be page (or line) aligned is not.
    Unaligned {
        /// The address.
        addr: VirtAddr,
        /// The alignment it needs.
        alignment: u32,
    },
    /// `addr + len` passes 4 GiB, or the length is zero where that is
    /// meaningless.
    BadLength {
        /// Start.
        addr: VirtAddr,
        /// Length.
        len: u64,
    },
    /// A context switch failed; the previous space still runs.
    Switch(crate::mmu::SwitchError),
    /// The space is still the running one: switch away before it goes
    /// (its table would be freed under the MMU).
    StillRunning {
        /// The space.
        space: SpaceId,
    },
    /// [`Engine::switch_to`] was given a switcher of another kind than the
    /// one the engine was built for (and checked against): nothing was
    /// switched.
    SwitcherMismatch {
        /// The switch the engine was built for.
        declared: SwitchPolicy,
        /// The switcher given.
        given: SwitchPolicy,
    },
    /// A copy-on-write copy was asked to copy a frame onto itself.
    CopyOntoItself {
        /// The frame given as both source and destination.
        pa: PhysAddr,
    },
    /// An uncached shared buffer's kernel side is mapped in the kernel's
    /// table, and none was given (nothing was allocated, or the buffer
    /// is handed back).
    KernelTableNeeded {
        /// Where the kernel's side is (to be) mapped.
        kernel_base: VirtAddr,
    },
}

impl fmt::Display for CoherenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoherenceError::Space(e) => e.fmt(f),
            CoherenceError::Frame(e) => e.fmt(f),
            CoherenceError::Table(e) => e.fmt(f),
            CoherenceError::Access(e) => e.fmt(f),
            CoherenceError::Window(e) => e.fmt(f),
            CoherenceError::Unaligned { addr, alignment } => {
                write!(f, "address {addr} is not aligned to {alignment:#x}")
            }
            CoherenceError::BadLength { addr, len: 0 } => {
                write!(f, "a length of 0 bytes at {addr} is refused")
            }
            CoherenceError::BadLength { addr, len } => write!(
                f,
                "a length of {len:#x} at {addr} runs past 4 GiB (or past the end of the shared \
                 buffer it is an offset into)"
            ),
            CoherenceError::Switch(e) => e.fmt(f),
            CoherenceError::StillRunning { space } => {
                write!(f, "{space} still runs: switch away before it exits")
            }
            CoherenceError::CopyOntoItself { pa } => write!(
                f,
                "copy-on-write from frame {pa} onto itself: the copy needs a new frame"
            ),
            CoherenceError::SwitcherMismatch { declared, given } => write!(
                f,
                "the engine was built for {} and was given {}: nothing was switched",
                config::switcher_name(*declared),
                config::switcher_name(*given)
            ),
            CoherenceError::KernelTableNeeded { kernel_base } => write!(
                f,
                "an uncached shared buffer maps its kernel side at {kernel_base} in the kernel's \
                 table: pass the table (Some)"
            ),
        }
    }
}

/// The message includes the cause's, so a kernel printing one line loses
/// nothing; `source` gives the cause as a value.
impl core::error::Error for CoherenceError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            CoherenceError::Space(e) => Some(e),
            CoherenceError::Frame(e) => Some(e),
            CoherenceError::Table(e) => Some(e),
            CoherenceError::Access(e) => Some(e),
            CoherenceError::Window(e) => Some(e),
            CoherenceError::Switch(e) => Some(e),
            _ => None,
        }
    }
}

macro_rules! from_error {
    ($($source:ty => $variant:ident),* $(,)?) => {$(
        impl From<$source> for CoherenceError {
            fn from(e: $source) -> Self {
                CoherenceError::$variant(e)
            }
        }
    )*};
}
impl From<crate::mm::object::ObjectError> for CoherenceError {
    fn from(e: crate::mm::object::ObjectError) -> Self {
        CoherenceError::Space(SpaceError::Object(e))
    }
}

/// A frame or table error of the address-space layer is lifted to the
/// engine's own variant, so each has one name: a kernel matches
/// `CoherenceError::Frame(_)` whichever layer refused
/// ([`CoherenceError::Space`] never holds `SpaceError::Frame` or
/// `SpaceError::Table`).
impl From<SpaceError> for CoherenceError {
    fn from(e: SpaceError) -> Self {
        match e {
            SpaceError::Frame(e) => CoherenceError::Frame(e),
            SpaceError::Table(e) => CoherenceError::Table(e),
            e => CoherenceError::Space(e),
        }
    }
}

from_error!(
    FrameError => Frame,
    TableError => Table,
    AccessError => Access,
    WindowError => Window,
    crate::mmu::SwitchError => Switch,
);

const PAGE: u32 = FRAME_SIZE;

/// The page containing `va`. Infallible: an aligned page ends at 2^32 at
/// the latest, which a `VirtRange` can express.
fn page_range(va: VirtAddr) -> VirtRange {
    match VirtRange::new(va.align_down(PAGE), u64::from(PAGE)) {
        Ok(range) => range,
        Err(_) => unreachable!("a page-aligned page never passes 4 GiB"),
    }
}

/// Checks a user range argument: page-aligned start, non-zero length that
/// stays below 4 GiB.
fn check_range(va: VirtAddr, len: u32) -> Result<VirtRange, CoherenceError> {
    if !va.is_aligned(PAGE) {
        return Err(CoherenceError::Unaligned {
            addr: va,
            alignment: PAGE,
        });
    }
    VirtRange::new(va, u64::from(len)).map_err(|_| CoherenceError::BadLength {
        addr: va,
        len: u64::from(len),
    })
}

/// What to do to the lines of one alias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineOp {
    /// Write dirty lines back; keep them.
    Clean,
    /// Write back and drop.
    CleanInvalidate,
    /// Drop without writing back: only for a frame whose contents are
    /// about to be overwritten whole or freed.
    Discard,
}

/// Bytes `[offset, offset + len)` of a page, for maintenance of part of
/// one (a shared buffer's record, not its whole page). Never empty and
/// never past the page: `0 < len` and `offset + len <= PAGE` (the one
/// place that builds a part cuts a buffer's range at page bounds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Part {
    offset: u32,
    len: u32,
}

/// A whole page.
const WHOLE_PAGE: Part = Part {
    offset: 0,
    len: PAGE,
};

impl Part {
    /// The part of the page at `va` (page aligned down first). Infallible:
    /// the part lies inside one page, which never passes 4 GiB.
    fn of(self, va: VirtAddr) -> VirtRange {
        debug_assert!(self.len > 0 && self.offset + self.len <= PAGE, "{self:?}");
        let start = VirtAddr(va.align_down(PAGE).as_u32() + self.offset);
        match VirtRange::new(start, u64::from(self.len)) {
            Ok(range) => range,
            Err(_) => unreachable!("a part of a page never passes 4 GiB"),
        }
    }
}

fn apply<C: CacheMaintenance + ?Sized>(cpu: &mut C, op: LineOp, range: VirtRange) {
    match op {
        LineOp::Clean => {
            cpu.clean_dcache_range(range);
        }
        LineOp::CleanInvalidate => {
            cpu.clean_invalidate_dcache_range(range);
        }
        // SAFETY: the callers discard whole pages whose data is dead (being
        // overwritten or freed); the range is page aligned, so no other
        // data shares its lines.
        LineOp::Discard => unsafe {
            cpu.invalidate_dcache_range(range);
        },
    }
}

/// One space whose lines may be in a VIVT cache, and the FCSE PID it runs
/// under (its lines sit at modified addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Live {
    space: SpaceId,
    pid: Option<u8>,
}

/// The coherence engine for one CPU.
pub struct Engine<P: Policy = Vacmm> {
    info: CacheInfo,
    linear_offset: u32,
    /// The context switch the kernel makes, checked against the policy
    /// and the cache at construction.
    switch: SwitchPolicy,
    current: SpaceId,
    /// VIVT: spaces whose user lines may be cached (the current one first
    /// seen; FCSE-keyed spaces stay until a flushing switch).
    live: alloc::vec::Vec<Live>,
    /// Frames mapped by more than one user space, writable by at least one,
    /// whose mappings may sit in different lines (sorted). A switch that
    /// does not flush (FCSE PIDs, ASIDs) leaves every space's lines in the
    /// cache, so these are cleaned and dropped at each such switch.
    shared_across_spaces: alloc::vec::Vec<PhysAddr>,
    windows: Option<KernelWindows>,
    counters: Counters,
    policy: P,
}

impl<P: Policy + fmt::Debug> fmt::Debug for Engine<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("kind", &self.info.kind)
            .field("current", &self.current)
            .field("policy", &self.policy)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Engine<Vacmm> {
    /// An engine for `info`'s caches, with vacmm's policy, for a kernel
    /// that switches address spaces as `switch` says (the kind of its
    /// [`ContextSwitcher`](crate::mmu::ContextSwitcher)). The kernel
    /// reaches frame `pa` at `pa + linear_offset` (its linear map).
    ///
    /// # Errors
    /// [`EngineConfigError`] for a switch the cache cannot be kept coherent
    /// under ([`check_configuration`]).
    pub fn new(
        info: CacheInfo,
        linear_offset: u32,
        switch: SwitchPolicy,
    ) -> Result<Self, EngineConfigError> {
        Self::with_policy(info, linear_offset, switch, Vacmm)
    }
}

impl<P: Policy> Engine<P> {
    /// An engine with another policy.
    ///
    /// # Errors
    /// [`EngineConfigError`] for a combination of the policy's answers,
    /// `switch` and the cache that cannot be kept coherent
    /// ([`check_configuration`] lists them, each with its reason).
    pub fn with_policy(
        info: CacheInfo,
        linear_offset: u32,
        switch: SwitchPolicy,
        policy: P,
    ) -> Result<Self, EngineConfigError> {
        check_configuration(&info, switch, &policy)?;
        Ok(Engine {
            info,
            linear_offset,
            switch,
            current: SpaceId::KERNEL,
            live: alloc::vec::Vec::new(),
            shared_across_spaces: alloc::vec::Vec::new(),
            windows: None,
            counters: Counters::default(),
            policy,
        })
    }

    /// The context switch the engine was built for.
    pub fn switch_policy(&self) -> SwitchPolicy {
        self.switch
    }

    /// Gives the engine kernel windows (see [`KernelWindows`]): zero-fill
    /// and copy-on-write then go through a mapping of the user's colour,
    /// and aliases of spaces not running are reached without flushing the
    /// whole cache.
    pub fn with_windows(mut self, windows: KernelWindows) -> Self {
        self.windows = Some(windows);
        self
    }

    /// What has been done so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The cache facts the engine works from.
    pub fn info(&self) -> &CacheInfo {
        &self.info
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Records that `space` now runs after a context switch made by other
    /// means than [`switch_to`](Self::switch_to); `cache_flushed` says
    /// whether that switch cleaned and invalidated the caches (a plain
    /// VIVT switch does; an ASID or FCSE-PID switch does not).
    pub fn set_current(&mut self, space: SpaceId, cache_flushed: bool) {
        self.note_switch(space, None, cache_flushed);
    }

    fn note_switch(&mut self, space: SpaceId, pid: Option<u8>, cache_flushed: bool) {
        self.current = space;
        if cache_flushed {
            self.live.clear();
        }
        self.live.retain(|l| l.space != space);
        self.live.push(Live { space, pid });
    }

    /// Whether user mappings of `pa` in different spaces, one of them
    /// writable, can sit in different cache lines: on VIVT always (each
    /// space has its own lines, FCSE-moved or flushed at the switch), on
    /// aliasing VIPT when their colours differ. And, on any cache, when the
    /// policy keeps shared mappings uncached
    /// ([`Policy::uncaches_shared`]) and another space maps the page
    /// private, cached: the uncached stores never update its lines (the
    /// ARM ARM gives no coherence between mismatched memory attributes).
    fn shared_in_separate_lines<K: FrameKnowledge>(
        &self,
        k: &K,
        pa: PhysAddr,
    ) -> Result<bool, CoherenceError> {
        if !self.aliasing() && !self.policy.uncaches_shared() {
            return Ok(false);
        }
        let users: alloc::vec::Vec<UserMapping> = k.user_mappings(pa)?.collect();
        if self.policy.uncaches_shared()
            && users.iter().any(|a| {
                a.shared && a.writable && users.iter().any(|b| !b.shared && b.space != a.space)
            })
        {
            return Ok(true);
        }
        if !self.aliasing() {
            return Ok(false);
        }
        let writable = users.iter().any(|m| m.writable);
        let separate = users.iter().any(|a| {
            users.iter().any(|b| {
                a.space != b.space
                    && (self.info.kind == CacheKind::Vivt || self.separate_lines(a.va, b.va))
            })
        });
        Ok(writable && separate)
    }

    /// Remembers `pa` if [`shared_in_separate_lines`](Self::shared_in_separate_lines);
    /// true if it was not remembered before (newly shared).
    fn note_sharing<K: FrameKnowledge>(
        &mut self,
        k: &K,
        pa: PhysAddr,
    ) -> Result<bool, CoherenceError> {
        if self.shared_in_separate_lines(k, pa)?
            && let Err(at) = self.shared_across_spaces.binary_search(&pa)
        {
            self.shared_across_spaces.insert(at, pa);
            self.counters.coverage.hit(coverage::Point::NewlyShared);
            return Ok(true);
        }
        Ok(false)
    }

    /// After a switch that left other spaces' lines in the cache: cleans
    /// and drops every cached user alias of the pages shared writable
    /// across spaces, so the incoming space reads what the others wrote
    /// and its own old lines are gone. Pages no longer shared are
    /// forgotten; on an error every page not yet done stays remembered.
    fn separate_shared_pages<K: FrameKnowledge>(
        &mut self,
        k: &mut K,
    ) -> Result<(), CoherenceError> {
        let frames = core::mem::take(&mut self.shared_across_spaces);
        let mut kept = alloc::vec::Vec::with_capacity(frames.len());
        // Every user alias of every page, a page each: past the policy's
        // range threshold the whole cache is cheaper (issue 24: 64 pages
        // shared by two FCSE spaces cost 16,384 line operations a switch,
        // against 512 lines for the whole of a 16 KiB cache).
        let aliases: u64 = frames
            .iter()
            .map(|&pa| k.user_mappings(pa).map_or(0, |m| m.count() as u64))
            .sum();
        let mut whole = false;
        if !frames.is_empty() && aliases * u64::from(PAGE) > self.policy.range_threshold(&self.info)
        {
            self.whole_dcache(k.memory());
            whole = true;
        }
        let mut result = Ok(());
        for (i, &pa) in frames.iter().enumerate() {
            match self.separate_shared_page(k, pa, &mut whole) {
                Ok(true) => kept.push(pa),
                Ok(false) => {}
                Err(e) => {
                    kept.extend_from_slice(&frames[i..]);
                    result = Err(e);
                    break;
                }
            }
        }
        if !kept.is_empty() {
            k.memory().cache().drain_write_buffer();
            self.counters.cross_space_separations += 1;
        }
        self.shared_across_spaces = kept;
        result
    }

    /// [`separate_shared_pages`](Self::separate_shared_pages) for one
    /// page; `Ok(false)` if it is shared no more.
    fn separate_shared_page<K: FrameKnowledge>(
        &mut self,
        k: &mut K,
        pa: PhysAddr,
        whole: &mut bool,
    ) -> Result<bool, CoherenceError> {
        // A frame no user maps any more (freed, or one the kernel no
        // longer manages) is shared no more.
        if !k.user_mappings(pa).is_ok_and(|mut m| m.next().is_some())
            || !self.shared_in_separate_lines(k, pa)?
        {
            return Ok(false);
        }
        if *whole {
            return Ok(true);
        }
        if !self.aliasing() {
            // Only the policy's uncached sharing brings a non-aliasing
            // cache here: one line per physical line, which the kernel
            // alias reaches.
            let cpu = k.memory().cache();
            cpu.clean_invalidate_dcache_range(page_range(self.kernel_va(pa)));
            self.counters.kernel_alias_cleans += 1;
            return Ok(true);
        }
        // Under the policy's uncached sharing the shared mappings are
        // uncached and hold no lines: only the cached ones need it.
        let uncached_shared = self.policy.uncaches_shared();
        let users: alloc::vec::Vec<UserMapping> = k
            .user_mappings(pa)?
            .filter(|m| !(uncached_shared && m.shared))
            .collect();
        for m in users {
            self.maintain_user_alias(
                k.memory(),
                m.space,
                m.va,
                pa,
                LineOp::CleanInvalidate,
                whole,
            )?;
        }
        Ok(true)
    }

    /// The space the engine believes is running.
    pub fn current(&self) -> SpaceId {
        self.current
    }

    /// The kernel's (linear-map) address of frame `pa`.
    pub fn kernel_va(&self, pa: PhysAddr) -> VirtAddr {
        VirtAddr(pa.as_u32().wrapping_add(self.linear_offset))
    }

    /// True if two virtual addresses of one frame can hold separate lines.
    fn separate_lines(&self, a: VirtAddr, b: VirtAddr) -> bool {
        match self.info.kind {
            CacheKind::Vivt => a != b,
            CacheKind::VipAliasing { .. } => self.info.colour_of(a) != self.info.colour_of(b),
            _ => false,
        }
    }

    fn aliasing(&self) -> bool {
        self.info.kind.aliases()
    }

    fn vipt_aliasing(&self) -> bool {
        matches!(self.info.kind, CacheKind::VipAliasing { .. })
    }

    /// Where a VIVT cache keeps `space`'s lines for `va`: `None` when the
    /// space is not live (a flushing switch emptied the cache of it).
    fn vivt_line_address(&self, space: SpaceId, va: VirtAddr) -> Option<VirtAddr> {
        if !self.policy.tracks_live_spaces() {
            return (space == self.current).then_some(va);
        }
        let live = self.live.iter().find(|l| l.space == space)?;
        Some(crate::mmu::fcse_modified_va(live.pid, va))
    }

    /// True if `space` may have lines in the cache.
    pub fn is_live(&self, space: SpaceId) -> bool {
        match self.info.kind {
            CacheKind::Vivt => self.vivt_line_address(space, VirtAddr(0)).is_some(),
            _ => true,
        }
    }

    /// The whole D-cache, cleaned and invalidated.
    fn whole_dcache<M: TableMemory>(&mut self, mem: &mut M) {
        event!(debug, "the whole D-cache cleaned and invalidated");
        let cpu = mem.cache();
        cpu.clean_invalidate_dcache_all();
        cpu.drain_write_buffer();
        self.counters.whole_cache_flushes += 1;
    }

    /// Does `op` to the lines user alias `va` of `space` (a mapping of
    /// frame `pa`) may hold. `whole` records a whole-cache flush already
    /// done in this batch (after which nothing is left to do).
    fn maintain_user_alias<M: TableMemory>(
        &mut self,
        mem: &mut M,
        space: SpaceId,
        va: VirtAddr,
        pa: PhysAddr,
        op: LineOp,
        whole: &mut bool,
    ) -> Result<(), CoherenceError> {
        self.maintain_user_alias_part(mem, space, va, pa, op, whole, WHOLE_PAGE)
    }

    /// [`maintain_user_alias`](Self::maintain_user_alias) of the bytes
    /// `part` of the page only.
    // One argument more than clippy likes: the part rides along with the
    // six of `maintain_user_alias`, which every other caller keeps using.
    #[allow(clippy::too_many_arguments)]
    fn maintain_user_alias_part<M: TableMemory>(
        &mut self,
        mem: &mut M,
        space: SpaceId,
        va: VirtAddr,
        pa: PhysAddr,
        op: LineOp,
        whole: &mut bool,
        part: Part,
    ) -> Result<(), CoherenceError> {
        if *whole {
            return Ok(());
        }
        let everything = self.policy.flushes_everything();
        match self.info.kind {
            CacheKind::Vivt => match self.vivt_line_address(space, va) {
                Some(_) if everything => {
                    self.whole_dcache(mem);
                    *whole = true;
                }
                Some(at) => {
                    apply(mem.cache(), op, part.of(at));
                    self.counters.user_alias_flushes += 1;
                }
                None => self.counters.skipped_not_live += 1,
            },
            CacheKind::VipAliasing { .. } if everything => {
                self.whole_dcache(mem);
                *whole = true;
            }
            CacheKind::VipAliasing { .. } => {
                if space == self.current {
                    apply(mem.cache(), op, part.of(va));
                    self.counters.user_alias_flushes += 1;
                } else if self.policy.uses_colour_windows()
                    && let Some(windows) = self.windows.as_mut()
                {
                    // Physically tagged lines: any mapping of the same
                    // colour reaches them, whichever space runs.
                    let colour = self.info.colour_of(va);
                    let slot = windows.acquire(mem, pa, colour)?;
                    apply(mem.cache(), op, part.of(windows.va(slot)));
                    windows.release(mem, slot)?;
                    self.counters.user_alias_flushes += 1;
                } else {
                    self.whole_dcache(mem);
                    *whole = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Does `op` to every user alias of `pa` whose lines are separate from
    /// those of address `from` (the kernel alias or a window).
    fn maintain_aliases_apart_from<K: FrameKnowledge>(
        &mut self,
        k: &mut K,
        pa: PhysAddr,
        from: VirtAddr,
        op: LineOp,
    ) -> Result<(), CoherenceError> {
        self.maintain_aliases_part(k, pa, from, op, WHOLE_PAGE)
    }

    /// [`maintain_aliases_apart_from`](Self::maintain_aliases_apart_from)
    /// for the bytes `part` of the page only.
    fn maintain_aliases_part<K: FrameKnowledge>(
        &mut self,
        k: &mut K,
        pa: PhysAddr,
        from: VirtAddr,
        op: LineOp,
        part: Part,
    ) -> Result<(), CoherenceError> {
        let mut whole = false;
        // Mappings the policy keeps uncached hold no lines.
        let uncached = self.policy.uncaches_shared();
        let users: alloc::vec::Vec<(SpaceId, VirtAddr)> = k
            .user_mappings(pa)?
            .filter(|m| !(uncached && m.shared))
            .map(|m| (m.space, m.va))
            .collect();
        for (space, va) in users {
            if self.separate_lines(va, from) {
                self.maintain_user_alias_part(k.memory(), space, va, pa, op, &mut whole, part)?;
            }
        }
        Ok(())
    }

    /// True if a user mapping of `pa` reads other lines than the kernel
    /// alias `kva` (or memory, when the policy keeps shared ones uncached).
    fn users_apart_from_kernel<K: FrameKnowledge>(
        &self,
        k: &K,
        pa: PhysAddr,
        kva: VirtAddr,
    ) -> Result<bool, FrameError> {
        let uncached = self.policy.uncaches_shared();
        Ok(k.user_mappings(pa)?
            .any(|m| (uncached && m.shared) || self.separate_lines(m.va, kva)))
    }

    // ---- flush_dcache_page / update_mmu_cache ---------------------------------

    /// The kernel wrote frame `pa` through its linear map (a page-cache page
    /// filled by `read()`, a shared buffer): make the write visible to every
    /// user mapping. With no user mapping the work is deferred to
    /// [`update_mmu_cache`](Self::update_mmu_cache).
    ///
    /// This is the *after* half only, as in Linux. A user's dirty line of
    /// the page, held apart from the kernel's (VIVT, or VIPT at another
    /// colour), would be written back by it over the kernel's newer bytes:
    /// for a page users may map writable, write through
    /// [`page_cache_write`](Self::page_cache_write), whose guard does the
    /// half owed before the write too (or call this before as well, as
    /// Linux's `generic_perform_write` does), or through
    /// [`kmap`](Self::kmap).
    pub fn flush_dcache_page<K: FrameKnowledge>(
        &mut self,
        k: &mut K,
        pa: PhysAddr,
    ) -> Result<(), CoherenceError> {
        self.counters.flush_dcache_page += 1;
        let kva = self.kernel_va(pa);
        let users = user_aliases(k, pa)?;
        // New bytes: no longer the code an executable mapping synced. With
        // no user mapping left, none runs it either: the next executable
        // mapping syncs the I-cache itself (issue 24: the flag stayed until
        // the frame was freed, and each kernel write to it while mapped
        // only for data invalidated the whole I-cache).
        let mut written = PageFlags::CODE_SYNCED;
        if users.is_empty() {
            written |= PageFlags::EXECUTABLE;
        }
        clear_flags(k, pa, written)?;
        if users.is_empty() && self.policy.defers_kernel_alias() {
            clear_flags(k, pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
            self.counters.deferred += 1;
            return Ok(());
        }
        let flags = set_flags(k, pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
        if users.is_empty() {
            // Not deferred: the flag now says "clean", so the kernel alias
            // must be clean for any user mapping to come — one of another
            // colour (or, VIVT, any other address), or an uncached one.
            if self.aliasing() || self.policy.uncaches_shared() {
                if self.policy.flushes_everything() {
                    self.whole_dcache(k.memory());
                } else {
                    let cpu = k.memory().cache();
                    cpu.clean_invalidate_dcache_range(page_range(kva));
                    cpu.drain_write_buffer();
                    self.counters.kernel_alias_cleans += 1;
                }
            }
            return Ok(());
        }
        if self.policy.flushes_everything() {
            self.whole_dcache(k.memory());
            if flags.contains(PageFlags::EXECUTABLE) {
                k.memory().cache().invalidate_icache_all();
                self.counters.icache_flushes += 1;
            }
            return Ok(());
        }
        if flags.contains(PageFlags::EXECUTABLE) {
            // Some mapping runs this page: new code must reach memory and
            // the I-cache must drop the old, whatever the D-cache kind.
            let cpu = k.memory().cache();
            cpu.clean_dcache_range(page_range(kva));
            cpu.drain_write_buffer();
            cpu.invalidate_icache_all();
            self.counters.icache_flushes += 1;
            self.counters.coverage.hit(coverage::Point::KernelWroteCode);
        }
        // Only aliases that hold lines apart from the kernel's need work:
        // none on a non-aliasing cache, and none on a VIPT-aliasing one when
        // the frame was allocated in its users' colour.
        if !self.users_apart_from_kernel(k, pa, kva)? {
            return Ok(());
        }
        self.counters.coverage.reaches_users();
        // Invalidated as well as cleaned: a later kernel read of the page
        // must not hit lines older than what users write meanwhile. User
        // aliases are invalidated so their next read sees the kernel's data.
        k.memory()
            .cache()
            .clean_invalidate_dcache_range(page_range(kva));
        self.counters.kernel_alias_cleans += 1;
        self.maintain_aliases_apart_from(k, pa, kva, LineOp::CleanInvalidate)?;
        k.memory().cache().drain_write_buffer();
        Ok(())
    }

    /// A user mapping of `va` was just installed in `space`: complete
    /// deferred kernel-alias work, make the I-cache coherent for executable
    /// mappings, and resolve alias conflicts ([`make_coherent`](Self::make_coherent)).
    pub fn update_mmu_cache<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        va: VirtAddr,
    ) -> Result<(), CoherenceError> {
        let pa = space.resident_at(va).ok_or(SpaceError::NoMapping { va })?;
        let exec = space
            .find_vma(va)
            .is_some_and(|v| v.prot().contains(Protection::EXEC));
        let id = space.id();
        self.user_page_mapped(&mut SpaceView { sys, space }, id, va, pa, exec)
    }

    /// [`update_mmu_cache`](Self::update_mmu_cache) for a kernel with its
    /// own memory manager: its entry mapping user address `va` of `space`
    /// to frame `pa` was just installed (a fault, `mmap` of a populated
    /// page), `exec` if user code may run from it. The kernel's reverse
    /// map (`k`) must already list the mapping.
    pub fn user_page_mapped<K: MemoryTypes>(
        &mut self,
        k: &mut K,
        space: SpaceId,
        va: VirtAddr,
        pa: PhysAddr,
        exec: bool,
    ) -> Result<(), CoherenceError> {
        let va = va.align_down(PAGE);
        let kva = self.kernel_va(pa);
        self.counters.coverage.alias(&self.info, va, kva);
        // A writable mapping can change the code synced from the page; a
        // mapping that does not execute, alone, leaves none that runs it.
        let (mut others, mut writable) = (false, false);
        for m in k.user_mappings(pa)? {
            if m.space == space && m.va.align_down(PAGE) == va {
                writable |= m.writable;
            } else {
                others = true;
            }
        }
        let mut stale = PageFlags::empty();
        if writable {
            stale |= PageFlags::CODE_SYNCED;
        }
        if !exec && !others {
            stale |= PageFlags::EXECUTABLE;
        }
        clear_flags(k, pa, stale)?;
        let old = set_flags(k, pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
        let deferred = !old.contains(PageFlags::KERNEL_ALIAS_CLEAN);
        if self.separate_lines(va, kva) && (deferred || self.vipt_aliasing()) {
            // A deferred kernel write reaches memory. On aliasing VIPT the
            // kernel alias's lines also leave, written or only read: they
            // go stale once the user writes at its own colour, and a later
            // kernel access with no user left to flush (a Kmap after
            // munmap) would hit them. (VIVT kernel accesses drop their
            // lines when they end.)
            let cpu = k.memory().cache();
            if self.vipt_aliasing() {
                cpu.clean_invalidate_dcache_range(page_range(kva));
            } else {
                cpu.clean_dcache_range(page_range(kva));
            }
            cpu.drain_write_buffer();
            self.counters.kernel_alias_cleans += 1;
            if deferred {
                self.counters.coverage.deferred_done();
            }
        }
        if exec {
            self.counters.coverage.hit(coverage::Point::ExecMapping);
            self.sync_icache(k, space, va, pa)?;
        }
        self.resolve_aliases(k, space, pa)
    }

    /// Frame `pa` is about to be run at user address `va` of `space`
    /// (mapped executable by a fault, or made executable by `mprotect`):
    /// code reaches the I-cache from memory, so the D-side copy must be
    /// there first, whatever the cache kind, and the I-cache must drop
    /// what it fetched of the page before. The user alias's own lines are
    /// the caller's to clean where they are separate from the kernel's
    /// (an aliasing cache); on any other cache the kernel alias's lines
    /// are the user's too.
    pub(super) fn sync_icache<K: FrameKnowledge>(
        &mut self,
        k: &mut K,
        space: SpaceId,
        va: VirtAddr,
        pa: PhysAddr,
    ) -> Result<(), CoherenceError> {
        let kva = self.kernel_va(pa);
        // Lines fetched through another mapping of the frame (another
        // colour, another space) are reachable only by the whole I-cache.
        let (mut mappings, mut writable) = (0, false);
        for m in k.user_mappings(pa)? {
            mappings += 1;
            writable |= m.writable;
        }
        let one_mapping = mappings <= 1;
        // Memory already holds the code when nothing could have written
        // the page since the last sync (issue 24: a loader mapping clean
        // library code cleaned the kernel alias at every mapping). A
        // writable user mapping can write it at any time: no skip, and
        // the page is not called synced while one exists.
        let synced = !writable && k.frame_flags(pa)?.contains(PageFlags::CODE_SYNCED);
        let cpu = k.memory().cache();
        if synced {
            self.counters.code_clean_skipped += 1;
            self.counters
                .coverage
                .hit(coverage::Point::ExecMappingOfSyncedCode);
        } else {
            cpu.clean_dcache_range(page_range(kva));
            cpu.drain_write_buffer();
        }
        if space == self.current && one_mapping {
            // Where the I-cache holds it: the FCSE-modified address on
            // VIVT (the space runs, so it is live).
            let at = match self.info.kind {
                CacheKind::Vivt => self.vivt_line_address(space, va).unwrap_or(va),
                _ => va,
            };
            cpu.invalidate_icache_range(page_range(at));
        } else {
            cpu.invalidate_icache_all();
        }
        let add = if writable {
            PageFlags::EXECUTABLE
        } else {
            PageFlags::EXECUTABLE | PageFlags::CODE_SYNCED
        };
        set_flags(k, pa, add)?;
        self.counters.icache_flushes += 1;
        Ok(())
    }

    // ---- make_coherent ------------------------------------------------------------

    /// Resolves frame `pa`'s aliases within `space`: if two of them can
    /// hold separate lines and one is writable, clean and invalidate them
    /// and make them uncacheable (bufferable); once that conflict is gone,
    /// make them cacheable again (uncached mappings hold no lines, so
    /// nothing needs cleaning). Read-only aliases at several colours stay
    /// cached (NetBSD's MULTCLR). Each transition is counted in
    /// [`Counters::made_uncached`] / [`Counters::restored`], and the frame's
    /// [`PageFlags::UNCACHED`] says which state this space left it in.
    ///
    /// Aliases in *other* spaces are not made uncached: a flushing switch
    /// separates them on VIVT. Where switches do not flush (FCSE PIDs,
    /// ASIDs with mappings at different colours) the page is remembered
    /// and its user lines cleaned and dropped after each switch
    /// ([`switch_to`](Self::switch_to)) — and at once when this mapping is
    /// the one that makes it shared, since the space that installs it may
    /// read it before any switch (counted in
    /// [`Counters::newly_shared_separations`]).
    pub fn make_coherent<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        pa: PhysAddr,
    ) -> Result<(), CoherenceError> {
        let id = space.id();
        self.resolve_aliases(&mut SpaceView { sys, space }, id, pa)
    }

    /// [`make_coherent`](Self::make_coherent) over the kernel's knowledge.
    fn resolve_aliases<K: MemoryTypes>(
        &mut self,
        k: &mut K,
        space: SpaceId,
        pa: PhysAddr,
    ) -> Result<(), CoherenceError> {
        let always_uncached = k.frame_flags(pa)?.contains(PageFlags::ALWAYS_UNCACHED)
            || (self.policy.uncaches_shared()
                && k.user_mappings(pa)?.any(|m| m.space == space && m.shared));
        if always_uncached {
            // An uncached shared buffer: every user mapping is uncacheable.
            let users: alloc::vec::Vec<VirtAddr> = k
                .user_mappings(pa)?
                .filter(|m| m.space == space)
                .map(|m| m.va)
                .collect();
            for va in users {
                if k.memory_type(space, va)?.is_cached() {
                    // Lines of the frame cached until now (a fill through
                    // the kernel alias, the frame's previous life, this
                    // mapping's own accesses) must not outlive the switch:
                    // users read memory from now on, and a dirty line
                    // written back later would land over their stores.
                    // The kernel alias reaches every line of the frame on
                    // a non-aliasing cache; on an aliasing one the user
                    // alias has its own.
                    let mut whole = false;
                    self.maintain_user_alias(
                        k.memory(),
                        space,
                        va,
                        pa,
                        LineOp::CleanInvalidate,
                        &mut whole,
                    )?;
                    let cpu = k.memory().cache();
                    cpu.clean_invalidate_dcache_range(page_range(self.kernel_va(pa)));
                    cpu.drain_write_buffer();
                    self.counters.kernel_alias_cleans += 1;
                    k.set_memory_type(space, va, MemoryType::Bufferable)?;
                }
            }
            // Under the policy's uncached sharing, another space's private,
            // cached, mapping of the page is separated at each switch from
            // now on (see `shared_in_separate_lines`); this space reads
            // memory, so nothing is owed now. (An uncached shared buffer's
            // mappings are all uncached: nothing to separate.)
            if self.policy.uncaches_shared() {
                self.note_sharing(k, pa)?;
            }
            return Ok(());
        }
        if self.note_sharing(k, pa)? {
            // A page that just became shared across spaces: the other
            // spaces' lines of it were left in the cache by a switch that
            // did not flush (FCSE PIDs, ASIDs) and may hold data newer than
            // memory, or older. The next switch would separate them, but
            // this space may read the page now.
            let mut whole = false;
            self.separate_shared_page(k, pa, &mut whole)?;
            k.memory().cache().drain_write_buffer();
            self.counters.newly_shared_separations += 1;
        }
        let mut aliases: alloc::vec::Vec<(VirtAddr, bool, bool)> = k
            .user_mappings(pa)?
            .filter(|m| m.space == space)
            .map(|m| (m.va, m.writable, false))
            .collect();
        if aliases.len() < 2 && !k.frame_flags(pa)?.contains(PageFlags::UNCACHED) {
            // One mapping never conflicts, and none was made uncached.
            return Ok(());
        }
        for alias in &mut aliases {
            alias.2 = !k.memory_type(space, alias.0)?.is_cached();
        }
        let conflict = aliases.iter().any(|&(_, w, _)| w)
            && aliases
                .iter()
                .any(|&(a, _, _)| aliases.iter().any(|&(b, _, _)| self.separate_lines(a, b)));
        if conflict {
            let mut whole = false;
            let mut changed = false;
            for &(va, _, uncached) in &aliases {
                if uncached {
                    continue;
                }
                self.maintain_user_alias(
                    k.memory(),
                    space,
                    va,
                    pa,
                    LineOp::CleanInvalidate,
                    &mut whole,
                )?;
                k.set_memory_type(space, va, MemoryType::Bufferable)?;
                changed = true;
            }
            k.memory().cache().drain_write_buffer();
            set_flags(k, pa, PageFlags::UNCACHED)?;
            if changed {
                event!(
                    info,
                    "frame {pa}: aliases in space {} at other colours, made uncached",
                    space
                );
                self.counters.made_uncached += 1;
            }
        } else if self.policy.restores_cacheability() {
            let mut changed = false;
            for &(va, _, uncached) in &aliases {
                if uncached {
                    k.set_memory_type(space, va, MemoryType::NormalWriteBack)?;
                    changed = true;
                }
            }
            if changed {
                // Stores made through the bufferable mapping must reach
                // memory before cached reads can miss to it.
                k.memory().cache().drain_write_buffer();
                event!(
                    info,
                    "frame {pa}: its alias conflict in space {} ended, cached again",
                    space
                );
                self.counters.restored += 1;
            }
            clear_flags(k, pa, PageFlags::UNCACHED)?;
        }
        Ok(())
    }

    // ---- single pages and the I-cache --------------------------------------------

    /// Writes back and drops the lines of user page `va` in `space` (Linux
    /// `flush_cache_page`): before its entry changes (copy-on-write breaks,
    /// the page is unmapped or write-protected).
    pub fn flush_cache_page<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &AddressSpace,
        va: VirtAddr,
    ) -> Result<(), CoherenceError> {
        let pa = space.resident_at(va).ok_or(SpaceError::NoMapping { va })?;
        self.user_page_unmapping(sys, space.id(), va, pa)
    }

    /// [`flush_cache_page`](Self::flush_cache_page) for a kernel with its
    /// own memory manager: its entry mapping user address `va` of `space`
    /// to frame `pa` is about to be removed, write-protected or pointed
    /// elsewhere, and still translates.
    pub fn user_page_unmapping<K: FrameKnowledge>(
        &mut self,
        k: &mut K,
        space: SpaceId,
        va: VirtAddr,
        pa: PhysAddr,
    ) -> Result<(), CoherenceError> {
        // What a writable mapping wrote is not the code synced before.
        let va = va.align_down(PAGE);
        // (A frame the kernel does not manage has no flags to clear.)
        if k.user_mappings(pa).is_ok_and(|mut users| {
            users.any(|m| m.writable && m.space == space && m.va.align_down(PAGE) == va)
        }) {
            clear_flags(k, pa, PageFlags::CODE_SYNCED)?;
        }
        if !self.aliasing() {
            return Ok(());
        }
        let mut whole = false;
        self.maintain_user_alias(
            k.memory(),
            space,
            va,
            pa,
            LineOp::CleanInvalidate,
            &mut whole,
        )?;
        k.memory().cache().drain_write_buffer();
        Ok(())
    }

    /// The kernel is about to read anonymous page `va` of `space` through
    /// its own alias (Linux `flush_anon_page`, e.g. for `ptrace` or direct
    /// I/O): the user's dirty lines reach memory and the kernel alias holds
    /// no stale copy. For a read and write, prefer [`kmap`](Self::kmap).
    pub fn flush_anon_page<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &AddressSpace,
        va: VirtAddr,
    ) -> Result<(), CoherenceError> {
        let pa = space.resident_at(va).ok_or(SpaceError::NoMapping { va })?;
        let kva = self.kernel_va(pa);
        if !self.separate_lines(va, kva) {
            if self.mapped_uncached(sys, pa)? {
                // Written uncached: the kernel alias's lines may be stale
                // and stores may wait in the write buffer on any cache
                // kind (see `uncached`).
                self.before_cached_access(&mut sys.mem, kva);
            }
            return Ok(());
        }
        let mut whole = false;
        self.maintain_user_alias(
            &mut sys.mem,
            space.id(),
            va.align_down(PAGE),
            pa,
            LineOp::Clean,
            &mut whole,
        )?;
        let cpu = sys.mem.cache();
        cpu.clean_invalidate_dcache_range(page_range(kva));
        cpu.drain_write_buffer();
        self.counters.kernel_alias_cleans += 1;
        Ok(())
    }

    /// Code was written at kernel addresses `[va, va + len)` (a module
    /// loader, a JIT, breakpoints): the D-cache is cleaned to memory and the
    /// I-cache invalidated over the range (Linux `flush_icache_range`),
    /// falling back to the whole caches above the size threshold.
    pub fn flush_icache_range<C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        va: VirtAddr,
        len: u32,
    ) -> Result<(), CoherenceError> {
        let range = VirtRange::new(va, u64::from(len)).map_err(|_| CoherenceError::BadLength {
            addr: va,
            len: u64::from(len),
        })?;
        if len == 0 {
            return Err(CoherenceError::BadLength { addr: va, len: 0 });
        }
        cpu.clean_dcache_range(range);
        cpu.drain_write_buffer();
        cpu.invalidate_icache_range(range);
        self.counters.icache_flushes += 1;
        self.counters.coverage.hit(coverage::Point::IcacheRange);
        Ok(())
    }

    /// Code was written by process `space` at its own addresses
    /// `[va, va + len)` (a JIT, a debugger; the `cacheflush(2)` system
    /// call): as [`flush_icache_range`](Self::flush_icache_range), at the
    /// addresses the caches hold the space's lines at — the FCSE-modified
    /// ones on an ARM926 running the space under a PID (CP15 operations
    /// take modified addresses; the FCSE does not move their operands) —
    /// or the whole caches for a space not running. Any range: a JIT
    /// flushes the bytes it wrote, not whole pages.
    pub fn flush_user_icache_range<K: FrameKnowledge>(
        &mut self,
        k: &mut K,
        space: SpaceId,
        va: VirtAddr,
        len: u32,
    ) -> Result<(), CoherenceError> {
        let range = VirtRange::new(va, u64::from(len)).map_err(|_| CoherenceError::BadLength {
            addr: va,
            len: u64::from(len),
        })?;
        if len == 0 {
            return Err(CoherenceError::BadLength { addr: va, len: 0 });
        }
        let cpu = k.memory().cache();
        if space != self.current {
            cpu.clean_dcache_all();
            cpu.drain_write_buffer();
            cpu.invalidate_icache_all();
            self.counters.icache_flushes += 1;
            return Ok(());
        }
        // A range that crosses the FCSE window's end moves only in part:
        // take it page by page.
        let mut at = range.start();
        let end = u64::from(range.start().as_u32()) + range.len();
        while u64::from(at.as_u32()) < end {
            let chunk = (PAGE - at.as_u32() % PAGE).min((end - u64::from(at.as_u32())) as u32);
            let moved = match self.info.kind {
                CacheKind::Vivt => self.vivt_line_address(space, at).unwrap_or(at),
                _ => at,
            };
            self.flush_icache_range(cpu, moved, chunk)?;
            at = VirtAddr(at.as_u32().wrapping_add(chunk));
            if at.as_u32() == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// The (space, address) of every user mapping of `pa`.
fn user_aliases<K: FrameKnowledge>(
    k: &K,
    pa: PhysAddr,
) -> Result<alloc::vec::Vec<(SpaceId, VirtAddr)>, FrameError> {
    Ok(k.user_mappings(pa)?.map(|m| (m.space, m.va)).collect())
}

impl<P: Policy> Engine<P> {
    /// Feeds the engine's own state (the running space, the spaces whose
    /// lines may be cached and their FCSE PIDs, the frames shared across
    /// spaces awaiting the next switch) into `h`, not its counters (nor the
    /// kernel windows: between calls no `Kmap` holds one, so they are
    /// always alike): what bounded exhaustive checking (`check::exhaustive`)
    /// fingerprints a state by.
    pub fn fingerprint<H: core::hash::Hasher>(&self, h: &mut H) {
        use core::hash::Hash;
        // Spaces by slot: a generation records how often a slot was
        // reused, history that decides nothing the engine does next.
        self.current.slot().hash(h);
        for live in &self.live {
            (live.space.slot(), live.pid).hash(h);
        }
        self.shared_across_spaces.hash(h);
    }
}
