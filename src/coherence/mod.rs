//! The coherence engine: the calls a kernel makes so that no mapping of any
//! page reads stale data or loses a write, with the least maintenance the
//! cache needs.
//!
//! ```text
//!   kernel: fault / munmap / mprotect / "I wrote this page-cache page"
//!      │
//!      ▼
//!   Engine ── flush_dcache_page ── kernel alias: defer (no user mapping)
//!      │                           or clean it and every user alias
//!      ├─── fault ──► AddressSpace::fault, fill the page through the kernel
//!      │              alias (zero / copy), update_mmu_cache
//!      ├─── update_mmu_cache ── finish deferred work, I-cache, make_coherent
//!      ├─── make_coherent ──── writable aliases that can hold separate lines
//!      │                       → clean+invalidate, uncacheable; conflict gone
//!      │                       → cacheable again (beyond Linux)
//!      └─── munmap / mprotect ── flush the range while it is still mapped,
//!                                then re-check the pages it touched
//! ```
//!
//! Which aliases "can hold separate lines" is the cache's kind:
//! - **VIVT** (ARM926): any two virtual addresses. Only the current address
//!   space has user lines (the context switch flushes the cache); the
//!   kernel's linear map is always live.
//! - **VIPT aliasing** (ARM1136 with 32/64 KiB): addresses of different
//!   colours. Frames are allocated in their user address's colour, so the
//!   kernel alias usually shares the user's lines and needs nothing.
//! - **VIPT non-aliasing, PIPT** (ARM1176 16 KiB): never — only the I-cache
//!   needs maintenance, for code written through the D-cache.
//!
//! Maintenance by virtual address reaches lines of the *current* address
//! space only (VIVT lines are tagged with it; VIPT operations translate
//! through it). Where a user alias of a non-current space could hold lines
//! of another colour, the engine falls back to the whole D-cache and counts
//! it ([`Counters::whole_cache_fallbacks`]); colour-matched kernel windows
//! that avoid the fallback are future work.

use core::fmt;

use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::cache::{CacheInfo, CacheKind, CacheMaintenance};
use crate::mm::frames::{FRAME_SIZE, FrameError, MappingKind, PageFlags, SpaceId};
use crate::mm::object::ObjectKind;
use crate::mm::space::{
    AddressSpace, Backing, FaultAccess, FaultOutcome, MemorySystem, SpaceError,
};
use crate::mmu::{MemoryType, TableError, TableFrames, TableMemory};

#[cfg(all(test, feature = "sim"))]
mod tests;

/// How the kernel reads and writes a whole page through its own mapping:
/// plain stores on the CPU, modelled accesses in the `sim` model.
pub trait KernelAccess {
    /// Writes zeroes over the page at kernel address `va`.
    fn zero_page(&mut self, va: VirtAddr) -> Result<(), AccessError>;
    /// Copies the page at kernel address `src` over the one at `dst`.
    fn copy_page(&mut self, dst: VirtAddr, src: VirtAddr) -> Result<(), AccessError>;
}

/// A kernel page access that could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessError {
    /// The address that failed.
    pub va: VirtAddr,
}

/// The choices a coherence policy makes; the engine does the work. The
/// benchmarks plug Linux-like and NetBSD-like baselines in here.
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
}

/// vacmm's own policy: defer, and restore cacheability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vacmm;

impl Policy for Vacmm {
    fn name(&self) -> &'static str {
        "vacmm"
    }
}

/// What the engine did, counted (NetBSD's event counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `flush_dcache_page` calls.
    pub flush_dcache_page: u64,
    /// …of which deferred (no user mapping).
    pub deferred: u64,
    /// Kernel-alias pages cleaned.
    pub kernel_alias_cleans: u64,
    /// User-alias pages cleaned and invalidated.
    pub user_alias_flushes: u64,
    /// I-cache invalidations for executable mappings.
    pub icache_flushes: u64,
    /// Whole-D-cache operations used because an alias was out of reach.
    pub whole_cache_fallbacks: u64,
    /// Pages made uncacheable by `make_coherent`.
    pub made_uncached: u64,
    /// Pages made cacheable again.
    pub restored: u64,
    /// Ranges flushed before unmap / protection change.
    pub range_flushes: u64,
    /// Pages zero-filled or copied through the kernel alias.
    pub pages_filled: u64,
}

/// Why an engine call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoherenceError {
    /// The address-space operation failed (nothing was flushed for it).
    Space(SpaceError),
    /// A frame-database error.
    Frame(FrameError),
    /// A page-table error.
    Table(TableError),
    /// The kernel could not access a page through its alias.
    Access(AccessError),
    /// The space is not the current one, but the operation needs its lines.
    NotCurrent {
        /// The space given.
        space: SpaceId,
        /// The current space.
        current: SpaceId,
    },
}

impl fmt::Display for CoherenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoherenceError::Space(e) => e.fmt(f),
            CoherenceError::Frame(e) => e.fmt(f),
            CoherenceError::Table(e) => e.fmt(f),
            CoherenceError::Access(e) => write!(f, "kernel access to {} failed", e.va),
            CoherenceError::NotCurrent { space, current } => write!(
                f,
                "address space {} is not current ({} is)",
                space.0, current.0
            ),
        }
    }
}

impl From<SpaceError> for CoherenceError {
    fn from(e: SpaceError) -> Self {
        CoherenceError::Space(e)
    }
}
impl From<FrameError> for CoherenceError {
    fn from(e: FrameError) -> Self {
        CoherenceError::Frame(e)
    }
}
impl From<TableError> for CoherenceError {
    fn from(e: TableError) -> Self {
        CoherenceError::Table(e)
    }
}
impl From<AccessError> for CoherenceError {
    fn from(e: AccessError) -> Self {
        CoherenceError::Access(e)
    }
}

const PAGE: u32 = FRAME_SIZE;

/// The (space, address) of every user mapping of `pa`.
fn user_aliases(
    frames: &crate::mm::frames::FrameDb,
    pa: PhysAddr,
) -> Result<alloc::vec::Vec<(SpaceId, VirtAddr)>, FrameError> {
    Ok(frames.user_mappings(pa)?.map(|m| (m.space, m.va)).collect())
}

/// The page containing `va`. Infallible: an aligned page ends at 2^32 at
/// the latest, which a `VirtRange` can express.
fn page_range(va: VirtAddr) -> VirtRange {
    match VirtRange::new(va.align_down(PAGE), u64::from(PAGE)) {
        Ok(range) => range,
        Err(_) => unreachable!("a page-aligned page never passes 4 GiB"),
    }
}

/// The coherence engine for one CPU.
#[derive(Clone, Debug)]
pub struct Engine<P: Policy = Vacmm> {
    info: CacheInfo,
    linear_offset: u32,
    current: SpaceId,
    counters: Counters,
    policy: P,
}

impl Engine<Vacmm> {
    /// An engine for `info`'s caches, with vacmm's policy. The kernel
    /// reaches frame `pa` at `pa + linear_offset` (its linear map).
    pub fn new(info: CacheInfo, linear_offset: u32) -> Self {
        Self::with_policy(info, linear_offset, Vacmm)
    }
}

impl<P: Policy> Engine<P> {
    /// An engine with another policy.
    pub fn with_policy(info: CacheInfo, linear_offset: u32, policy: P) -> Self {
        Engine {
            info,
            linear_offset,
            current: SpaceId::KERNEL,
            counters: Counters::default(),
            policy,
        }
    }

    /// What has been done so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Records the space now running (call after the context switch, whose
    /// [`ContextSwitcher`](crate::mmu::ContextSwitcher) did the cache work).
    pub fn set_current(&mut self, space: SpaceId) {
        self.current = space;
    }

    /// The space the engine believes is running.
    pub fn current(&self) -> SpaceId {
        self.current
    }

    /// The kernel's address of frame `pa`.
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

    /// Cleans and invalidates the user alias `va` of `space`, or the whole
    /// D-cache when that alias is out of reach (another space's lines on a
    /// VIPT-aliasing cache; on VIVT only the current space has user lines).
    fn flush_user_alias<C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        space: SpaceId,
        va: VirtAddr,
        whole_done: &mut bool,
    ) {
        if space == self.current {
            cpu.clean_invalidate_dcache_range(page_range(va));
            self.counters.user_alias_flushes += 1;
        } else if matches!(self.info.kind, CacheKind::VipAliasing { .. }) && !*whole_done {
            cpu.clean_invalidate_dcache_all();
            self.counters.whole_cache_fallbacks += 1;
            *whole_done = true;
        }
    }

    /// Flushes every user alias in `users` that holds lines apart from the
    /// kernel alias `kva` (at most one whole-cache fallback for them all).
    fn flush_aliases_apart_from<C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        users: &[(SpaceId, VirtAddr)],
        kva: VirtAddr,
    ) {
        let mut whole = false;
        for &(space, va) in users {
            if self.separate_lines(va, kva) {
                self.flush_user_alias(cpu, space, va, &mut whole);
            }
        }
    }

    // ---- flush_dcache_page / update_mmu_cache ---------------------------------

    /// The kernel wrote frame `pa` through its linear map (a page-cache page,
    /// a shared buffer): make the write visible to every user mapping.
    /// With no user mapping the work is deferred to
    /// [`update_mmu_cache`](Self::update_mmu_cache).
    pub fn flush_dcache_page<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        pa: PhysAddr,
    ) -> Result<(), CoherenceError> {
        self.counters.flush_dcache_page += 1;
        let kva = self.kernel_va(pa);
        let users = user_aliases(&sys.frames, pa)?;
        if users.is_empty() && self.policy.defers_kernel_alias() {
            sys.frames.clear_flags(pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
            self.counters.deferred += 1;
            return Ok(());
        }
        let flags = sys.frames.set_flags(pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
        let cpu = sys.mem.cache();
        if flags.contains(PageFlags::EXECUTABLE) {
            // Some mapping runs this page: new code must reach memory and
            // the I-cache must drop the old, whatever the D-cache kind.
            cpu.clean_dcache_range(page_range(kva));
            cpu.drain_write_buffer();
            cpu.invalidate_icache_all();
            self.counters.icache_flushes += 1;
        }
        // Only aliases that hold lines apart from the kernel's need work:
        // none on a non-aliasing cache, and none on a VIPT-aliasing one when
        // the frame was allocated in its users' colour.
        if !users.iter().any(|&(_, va)| self.separate_lines(va, kva)) {
            return Ok(());
        }
        // Invalidated as well as cleaned: a later kernel read of the page
        // must not hit lines older than what users write meanwhile.
        cpu.clean_invalidate_dcache_range(page_range(kva));
        self.counters.kernel_alias_cleans += 1;
        self.flush_aliases_apart_from(cpu, &users, kva);
        cpu.drain_write_buffer();
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
        let kva = self.kernel_va(pa);
        let old = sys.frames.set_flags(pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
        if !old.contains(PageFlags::KERNEL_ALIAS_CLEAN)
            && self.aliasing()
            && self.separate_lines(va, kva)
        {
            let cpu = sys.mem.cache();
            cpu.clean_dcache_range(page_range(kva));
            cpu.drain_write_buffer();
            self.counters.kernel_alias_cleans += 1;
        }
        let exec = space
            .find_vma(va)
            .is_some_and(|v| v.prot().contains(crate::mm::space::Protection::EXEC));
        if exec {
            // Code reaches the I-cache from memory: the D-side copy must be
            // there first, whatever the cache kind.
            let cpu = sys.mem.cache();
            cpu.clean_dcache_range(page_range(kva));
            cpu.drain_write_buffer();
            if space.id() == self.current {
                cpu.invalidate_icache_range(page_range(va));
            } else {
                cpu.invalidate_icache_all();
            }
            sys.frames.set_flags(pa, PageFlags::EXECUTABLE)?;
            self.counters.icache_flushes += 1;
        }
        self.make_coherent(sys, space, pa)
    }

    // ---- make_coherent ------------------------------------------------------------

    /// Resolves frame `pa`'s aliases within `space`: if two of them can hold
    /// separate lines and one is writable, clean and invalidate them all and
    /// make them uncacheable; if that conflict is gone, make them cacheable
    /// again. Read-only aliases at several colours stay cached.
    pub fn make_coherent<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        pa: PhysAddr,
    ) -> Result<(), CoherenceError> {
        let aliases: alloc::vec::Vec<(VirtAddr, bool)> = sys
            .frames
            .mappings(pa)?
            .iter()
            .filter(|m| m.kind == MappingKind::User && m.space == space.id())
            .map(|m| (m.va, m.writable))
            .collect();
        let conflict = aliases.iter().any(|&(_, w)| w)
            && aliases
                .iter()
                .any(|&(a, _)| aliases.iter().any(|&(b, _)| self.separate_lines(a, b)));
        let uncached = sys.frames.state(pa)?.flags().contains(PageFlags::UNCACHED);
        if conflict {
            let mut whole = false;
            for &(va, _) in &aliases {
                if !space.memory_type(sys, va)?.is_cached() {
                    continue;
                }
                self.flush_user_alias(sys.mem.cache(), space.id(), va, &mut whole);
                space.set_memory_type(sys, va, MemoryType::Bufferable)?;
            }
            if !uncached {
                sys.frames.set_flags(pa, PageFlags::UNCACHED)?;
                self.counters.made_uncached += 1;
            }
        } else if uncached && self.policy.restores_cacheability() {
            // Uncached mappings left no lines behind: nothing to clean.
            for &(va, _) in &aliases {
                space.set_memory_type(sys, va, MemoryType::NormalWriteBack)?;
            }
            sys.frames.clear_flags(pa, PageFlags::UNCACHED)?;
            self.counters.restored += 1;
        }
        Ok(())
    }

    // ---- faults ----------------------------------------------------------------------

    /// Resolves a user fault in `space` (see [`AddressSpace::fault`]) and
    /// does what the new page needs: zero-fill and copy-on-write through the
    /// kernel alias (leaving no dirty kernel lines on an aliasing cache),
    /// zeroes for fresh shared memory, then [`update_mmu_cache`](Self::update_mmu_cache).
    /// A fresh *file* page is the caller's to fill (it knows the file):
    /// fill it through [`kernel_va`](Self::kernel_va), then call
    /// [`flush_dcache_page`](Self::flush_dcache_page).
    pub fn fault<M: TableMemory + KernelAccess, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        va: VirtAddr,
        access: FaultAccess,
    ) -> Result<FaultOutcome, CoherenceError> {
        if access == FaultAccess::Write
            && self.info.kind == CacheKind::Vivt
            && space.resident_at(va).is_some()
            && space.id() == self.current
        {
            // A write to a present page may replace its frame (copy-on-
            // write): VIVT lines at `va` belong to the old frame and must
            // not answer for the new one (Linux's flush_cache_page).
            sys.mem
                .cache()
                .clean_invalidate_dcache_range(page_range(va));
            self.counters.user_alias_flushes += 1;
        }
        let outcome = space.fault(sys, va, access)?;
        match outcome {
            FaultOutcome::ZeroFill { pa } => self.zero(sys, pa)?,
            FaultOutcome::CopyOnWrite {
                from,
                to,
                from_fresh,
            } => {
                if from_fresh {
                    self.fill_fresh_object_page(sys, space, va, from)?;
                }
                self.copy(sys, from, to)?;
            }
            FaultOutcome::ObjectPage { pa, fresh: true } => {
                self.fill_fresh_object_page(sys, space, va, pa)?;
            }
            _ => {}
        }
        if !matches!(outcome, FaultOutcome::AlreadyMapped { .. }) {
            self.update_mmu_cache(sys, space, va)?;
        }
        Ok(outcome)
    }

    /// Zeroes a fresh shared-memory page (files are the caller's).
    fn fill_fresh_object_page<M: TableMemory + KernelAccess, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &AddressSpace,
        va: VirtAddr,
        pa: PhysAddr,
    ) -> Result<(), CoherenceError> {
        let kind = match space.find_vma(va).map(|v| v.backing()) {
            Some(Backing::Object { id, .. }) => sys.objects.get(id).map(|o| o.kind()).ok(),
            _ => None,
        };
        if kind != Some(ObjectKind::File) {
            self.zero(sys, pa)?;
        }
        Ok(())
    }

    /// Leaves the kernel alias's lines of `pa` clean on an aliasing cache,
    /// so a user alias of another colour reads memory.
    fn settle_kernel_alias<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        pa: PhysAddr,
    ) -> Result<(), CoherenceError> {
        if self.aliasing() {
            let cpu = sys.mem.cache();
            cpu.clean_invalidate_dcache_range(page_range(self.kernel_va(pa)));
            cpu.drain_write_buffer();
            self.counters.kernel_alias_cleans += 1;
        }
        sys.frames.set_flags(pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
        Ok(())
    }

    fn zero<M: TableMemory + KernelAccess, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        pa: PhysAddr,
    ) -> Result<(), CoherenceError> {
        sys.mem.zero_page(self.kernel_va(pa))?;
        self.counters.pages_filled += 1;
        self.settle_kernel_alias(sys, pa)
    }

    fn copy<M: TableMemory + KernelAccess, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        from: PhysAddr,
        to: PhysAddr,
    ) -> Result<(), CoherenceError> {
        let (kfrom, kto) = (self.kernel_va(from), self.kernel_va(to));
        if self.aliasing() {
            // The source's newest data may sit in a user alias's lines
            // (written before it turned copy-on-write): get it to memory,
            // and drop stale kernel-alias lines so the copy reads memory.
            let users = user_aliases(&sys.frames, from)?;
            let cpu = sys.mem.cache();
            self.flush_aliases_apart_from(cpu, &users, kfrom);
            cpu.clean_invalidate_dcache_range(page_range(kfrom));
            cpu.drain_write_buffer();
        }
        sys.mem.copy_page(kto, kfrom)?;
        self.counters.pages_filled += 1;
        self.settle_kernel_alias(sys, to)
    }

    // ---- unmap / protect ---------------------------------------------------------------

    /// Writes back and drops the lines of `[va, va + len)` in `space`
    /// (Linux `flush_cache_range`): what must happen before those pages are
    /// unmapped or write-protected, while the mappings still translate.
    pub fn flush_cache_range<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &AddressSpace,
        va: VirtAddr,
        len: u32,
    ) -> Result<(), CoherenceError> {
        if !self.aliasing() || len == 0 {
            return Ok(());
        }
        let Ok(range) = VirtRange::new(va, u64::from(len)) else {
            return Err(SpaceError::OutOfUserSpace { addr: va, len }.into());
        };
        if space.resident_in(va, len).next().is_none() {
            return Ok(());
        }
        let cpu = sys.mem.cache();
        if space.id() == self.current {
            cpu.clean_invalidate_dcache_range(range);
        } else if matches!(self.info.kind, CacheKind::VipAliasing { .. }) {
            cpu.clean_invalidate_dcache_all();
            self.counters.whole_cache_fallbacks += 1;
        }
        cpu.drain_write_buffer();
        self.counters.range_flushes += 1;
        Ok(())
    }

    /// `munmap` with the maintenance it owes: the range is flushed while
    /// still mapped (no dirty line of a freed frame is left to be written
    /// back over its next owner), and pages that lose an alias are
    /// re-checked (an uncached page may become cacheable again).
    pub fn munmap<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        va: VirtAddr,
        len: u32,
    ) -> Result<(), CoherenceError> {
        let touched = self.frames_in(space, va, len);
        self.flush_cache_range(sys, space, va, len)?;
        space.munmap(sys, va, len)?;
        self.recheck(sys, space, &touched)
    }

    /// `mprotect` with the maintenance it owes: dirty lines are written
    /// back before write permission goes, and every page in the range is
    /// re-checked for alias conflicts (gained or lost).
    pub fn mprotect<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        va: VirtAddr,
        len: u32,
        prot: crate::mm::space::Protection,
    ) -> Result<(), CoherenceError> {
        let touched = self.frames_in(space, va, len);
        self.flush_cache_range(sys, space, va, len)?;
        space.mprotect(sys, va, len, prot)?;
        self.recheck(sys, space, &touched)
    }

    fn frames_in(&self, space: &AddressSpace, va: VirtAddr, len: u32) -> alloc::vec::Vec<PhysAddr> {
        let mut frames: alloc::vec::Vec<PhysAddr> =
            space.resident_in(va, len).map(|(_, pa)| pa).collect();
        frames.sort_unstable();
        frames.dedup();
        frames
    }

    fn recheck<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        frames: &[PhysAddr],
    ) -> Result<(), CoherenceError> {
        for &pa in frames {
            // A freed private frame has no state to check.
            if sys.frames.state(pa)?.is_mapped() {
                self.make_coherent(sys, space, pa)?;
            }
        }
        Ok(())
    }
}
