//! Process life cycle and ranges: context switch, `flush_cache_range` /
//! `flush_cache_mm`, munmap / mprotect / brk, fork, exec and exit (seed
//! 002's cases).
//!
//! ```text
//!   fork   parent's dirty private lines → memory (VIVT, parent live),
//!          then pages turn copy-on-write in both (AddressSpace::fork)
//!   exec   the old image goes as at exit; a new, empty space follows
//!   exit   shared pages: clean+invalidate; private pages about to be
//!          freed: invalidate only — their data is dead (no write-back)
//!   munmap flush while still mapped, unmap, re-check pages that lost an
//!   mprotect alias (an uncached page may be cached again)
//! ```

use alloc::vec::Vec;

use super::*;
use crate::mm::space::Vma;

/// Why [`Engine::exit`] did not finish.
#[derive(Debug)]
pub struct ExitRefused {
    /// What went wrong.
    pub error: CoherenceError,
    /// The space, handed back when nothing was done to it (it still runs);
    /// `None` when the failure came part-way through the teardown.
    pub space: Option<alloc::boxed::Box<AddressSpace>>,
}

impl fmt::Display for ExitRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.space {
            Some(_) => write!(
                f,
                "the exit was refused and the space is handed back as it was: {}",
                self.error
            ),
            None => write!(
                f,
                "the exit failed part-way through the teardown: {}",
                self.error
            ),
        }
    }
}

impl core::error::Error for ExitRefused {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.error)
    }
}
use crate::mmu::{ContextSwitcher, PageTable, SwitchReport, TableFrames, TranslationRegisters};

impl<P: Policy> Engine<P> {
    /// Switches to `space` through the MMU layer's [`ContextSwitcher`] and
    /// records which spaces' lines the cache may now hold.
    ///
    /// A switch that does not flush (FCSE PIDs on the ARM926, ASIDs on
    /// ARMv6) leaves every space's lines in the cache. A page that two
    /// spaces map, one of them writable, in different lines — always under
    /// FCSE, whose PIDs move even one address to two lines; at different
    /// colours on an aliasing VIPT cache — would then show the incoming
    /// space stale data, so after such a switch the engine cleans and drops
    /// those pages' user lines (counted in
    /// [`Counters::cross_space_separations`]). Mainline Linux has no FCSE
    /// and flushes at every VIVT switch, so it never meets the first case.
    ///
    /// A switcher of another kind than the engine was built for is refused
    /// ([`CoherenceError::SwitcherMismatch`]) before anything is switched:
    /// the combination was checked at construction for that kind only.
    ///
    /// # Safety
    /// As [`ContextSwitcher::switch_to`]: `space`'s table must map the
    /// kernel exactly as the current table does.
    pub unsafe fn switch_to<M, F>(
        &mut self,
        switcher: &mut ContextSwitcher,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
    ) -> Result<SwitchReport, CoherenceError>
    where
        M: TableMemory,
        M::Cache: TranslationRegisters,
    {
        let id = space.id();
        // SAFETY: the caller's contract.
        unsafe { self.switch_to_table(switcher, sys, id, space.table_mut()) }
    }

    /// [`switch_to`](Self::switch_to) for a kernel with its own memory
    /// manager: switches to `space`, whose tables are `table`.
    ///
    /// # Errors
    /// As [`switch_to`](Self::switch_to).
    ///
    /// # Safety
    /// As [`ContextSwitcher::switch_to`]: `table` must map the kernel
    /// exactly as the current table does.
    pub unsafe fn switch_to_table<K>(
        &mut self,
        switcher: &mut ContextSwitcher,
        k: &mut K,
        space: SpaceId,
        table: &mut PageTable,
    ) -> Result<SwitchReport, CoherenceError>
    where
        K: FrameKnowledge,
        <K::Memory as TableMemory>::Cache: TranslationRegisters,
    {
        if switcher.policy() != self.switch {
            return Err(CoherenceError::SwitcherMismatch {
                declared: self.switch,
                given: switcher.policy(),
            });
        }
        // SAFETY: the caller's contract.
        let report = unsafe { switcher.switch_to(k.memory(), table) }?;
        if !report.already_current {
            self.counters.coverage.switch(&report);
            self.counters.switches += 1;
            if report.cache_flushed {
                self.counters.switch_flushes += 1;
            }
            let pid = match self.info.kind {
                CacheKind::Vivt => table.fcse_window(),
                _ => None,
            };
            self.note_switch(space, pid, report.cache_flushed);
            // The switch is made: if a page's maintenance cannot be done
            // (a window that will not map), the whole D-cache goes instead,
            // so nothing is lost and the caller's switch still stands.
            if !report.cache_flushed
                && let Err(e) = self.separate_shared_pages(k)
            {
                event!(
                    warn,
                    "switch to {space}: separating shared pages failed ({e}); the whole D-cache instead"
                );
                let _ = e;
                self.whole_dcache(k.memory());
            }
        }
        Ok(report)
    }

    // ---- ranges ------------------------------------------------------------------------

    /// Writes back and drops the lines of `[va, va + len)` in `space`
    /// (Linux `flush_cache_range`): what must happen before those pages are
    /// unmapped or write-protected, while the mappings still translate.
    /// Nothing on a non-aliasing cache, nothing for a VIVT space that is not
    /// live; the whole cache above the size threshold.
    pub fn flush_cache_range<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &AddressSpace,
        va: VirtAddr,
        len: u32,
    ) -> Result<(), CoherenceError> {
        let range = check_range(va, len)?;
        if len == 0 {
            return Ok(());
        }
        self.maintain_range(
            sys,
            space,
            range,
            false,
            |_, _| Some(LineOp::CleanInvalidate),
            |_, _| {},
        )
    }

    /// [`flush_cache_range`](Self::flush_cache_range) over every mapping of
    /// `space` (Linux `flush_cache_mm`).
    pub fn flush_cache_mm<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &AddressSpace,
    ) -> Result<(), CoherenceError> {
        let range = user_range_of(space)?;
        self.maintain_range(
            sys,
            space,
            range,
            true,
            |_, _| Some(LineOp::CleanInvalidate),
            |_, _| {},
        )
    }

    /// Does `op(vma, va)` to the resident pages of `space` in `range`: by
    /// address when the space's lines are reachable that way and the range
    /// is small, through windows page by page for a small range of a VIPT
    /// space not running, else the whole cache. `whole_mm`: the range is the whole space (see
    /// [`Policy::flushes_whole_mm`]).
    fn maintain_range<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &AddressSpace,
        range: VirtRange,
        whole_mm: bool,
        op: impl Fn(&Vma, VirtAddr) -> Option<LineOp>,
        before_discard: impl FnMut(&mut M, PhysAddr),
    ) -> Result<(), CoherenceError> {
        if !self.aliasing() {
            return Ok(());
        }
        let len = range.len().min(u64::from(u32::MAX)) as u32;
        // A read-only mapping at its frame's own colour (aliasing VIPT)
        // shares its lines with the linear map: the user cannot have
        // written them, and what a kernel fill left there is the linear
        // map's, where every later access of that colour meets it. Nothing
        // to do for it, as for a dying page (see `maintain_pages`), as long
        // as no mapping of the frame at another colour is left to write
        // the page behind those lines' back: a mapping of another colour
        // made later drops the kernel alias's lines when it is installed
        // (`user_page_mapped`), but one that already exists would not,
        // and the lines read here would go stale under its stores. A
        // loader's text mapped and unmapped by each new process is the
        // case (W10).
        let own_colour = |va: VirtAddr, pa: PhysAddr| {
            let kva = self.kernel_va(pa);
            self.left_to_linear_map(va, pa)
                && sys
                    .frames
                    .mappings(pa)
                    .is_ok_and(|all| all.iter().all(|m| !self.separate_lines(m.va, kva)))
        };
        let mut left = false;
        let pages: Vec<(VirtAddr, PhysAddr, LineOp)> = space
            .resident_in(range.start(), len)
            .filter_map(|(va, pa)| {
                let vma = space.find_vma(va)?;
                let op = op(vma, va)?;
                if !vma.prot().contains(Protection::WRITE) && own_colour(va, pa) {
                    left = true;
                    return None;
                }
                Some((va, pa, op))
            })
            .collect();
        if left {
            self.counters.coverage.hit(coverage::Point::LeftToLinearMap);
        }
        self.maintain_pages(sys, space.id(), &pages, whole_mm, before_discard)
    }

    /// Does each page's operation to the user pages `pages` of `space`
    /// (address, frame, operation), as [`maintain_range`](Self::maintain_range)
    /// says.
    fn maintain_pages<K: FrameKnowledge>(
        &mut self,
        k: &mut K,
        space: SpaceId,
        pages: &[(VirtAddr, PhysAddr, LineOp)],
        whole_mm: bool,
        mut before_discard: impl FnMut(&mut K::Memory, PhysAddr),
    ) -> Result<(), CoherenceError> {
        if !self.aliasing() || pages.is_empty() {
            return Ok(());
        }
        if self.info.kind == CacheKind::Vivt && !self.is_live(space) {
            self.counters.skipped_not_live += 1;
            return Ok(());
        }
        // On aliasing VIPT a dying page (its data dead) at its frame's own
        // colour leaves its lines where the kernel's linear map reaches
        // them, as on a PIPT cache: the frame's next fill writes through
        // them, or drops them first when it goes through a window of
        // another colour. Only dying pages at another colour need their
        // lines dropped here (issue 24: exit and munmap cleaned every page,
        // so a process with frames in its own colours paid for lines
        // nobody could miss). A page whose data lives on is written back:
        // the engine keeps the linear map's lines clean.
        let apart: Vec<(VirtAddr, PhysAddr, LineOp)>;
        let pages = if self.vipt_aliasing() && !self.policy.flushes_everything() {
            let (mut kept, mut left) = (Vec::new(), Vec::new());
            for &(va, pa, op) in pages {
                if op != LineOp::Discard || !self.left_to_linear_map(va, pa) {
                    kept.push((va, pa, op));
                } else {
                    left.push(pa);
                }
            }
            // Their data is dead all the same: the kernel hears it, as for
            // a discarded page (its lines may be dropped unwritten later,
            // by the frame's next fill through another colour).
            for pa in left {
                before_discard(k.memory(), pa);
            }
            apart = kept;
            if apart.len() < pages.len() {
                self.counters.coverage.hit(coverage::Point::LeftToLinearMap);
            }
            if apart.is_empty() {
                return Ok(());
            }
            &apart[..]
        } else {
            pages
        };
        self.counters.range_flushes += 1;
        let bytes = pages.len() as u64 * u64::from(PAGE);
        let by_address = space == self.current || self.info.kind == CacheKind::Vivt;
        if self.policy.flushes_everything()
            || (whole_mm && self.policy.flushes_whole_mm())
            // Past the threshold the whole cache is cheaper by address, and
            // cheaper still against windows, which add two TLB operations
            // and two table writes a page (issue 24: a 256-page space not
            // running cost 32,768 line and 512 TLB operations this way).
            || bytes > self.policy.range_threshold(&self.info)
            || (!by_address && (self.windows.is_none() || !self.policy.uses_colour_windows()))
        {
            self.whole_dcache(k.memory());
            return Ok(());
        }
        let mut whole = false;
        for &(va, pa, op) in pages {
            if op == LineOp::Discard {
                before_discard(k.memory(), pa);
            }
            self.maintain_user_alias(k.memory(), space, va, pa, op, &mut whole)?;
        }
        k.memory().cache().drain_write_buffer();
        Ok(())
    }

    /// `exit` for a kernel with its own memory manager: process `space`,
    /// which does not run (switch away first), is about to go, and
    /// `pages` (address, frame) are every page it maps. Their lines are
    /// written back and dropped (the whole cache past the policy's
    /// threshold), and the engine forgets the space. Afterwards the kernel
    /// removes the mappings from its reverse map and frees what it frees.
    ///
    /// # Errors
    /// [`CoherenceError::StillRunning`] for the running space (nothing
    /// done); a window that will not map.
    pub fn user_space_exit<K: FrameKnowledge>(
        &mut self,
        k: &mut K,
        space: SpaceId,
        pages: &[(VirtAddr, PhysAddr)],
    ) -> Result<(), CoherenceError> {
        if space == self.current {
            return Err(CoherenceError::StillRunning { space });
        }
        let pages: Vec<(VirtAddr, PhysAddr, LineOp)> = pages
            .iter()
            .map(|&(va, pa)| (va.align_down(PAGE), pa, LineOp::CleanInvalidate))
            .collect();
        self.maintain_pages(k, space, &pages, true, |_, _| {})?;
        self.live.retain(|l| l.space != space);
        Ok(())
    }

    /// `mmap` with the maintenance it owes: a `MAP_FIXED` mapping replaces
    /// whatever it overlaps, which is flushed first as by
    /// [`munmap`](Self::munmap). A refused call changes nothing.
    pub fn mmap<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        args: crate::mm::space::MmapArgs,
    ) -> Result<VirtAddr, CoherenceError> {
        let replaced = match (args.fixed, args.addr) {
            (true, Some(addr)) if addr.is_aligned(PAGE) && args.len > 0 => {
                let len = args.len.div_ceil(PAGE).saturating_mul(PAGE);
                VirtRange::new(addr, u64::from(len))
                    .ok()
                    .map(|_| (addr, len))
            }
            _ => None,
        };
        let Some((addr, len)) = replaced else {
            return Ok(space.mmap(sys, args)?);
        };
        let touched = self.frames_in(space, addr, len);
        if !touched.is_empty() {
            // Flushing a range that mmap then refuses costs time, not data.
            self.flush_cache_range(sys, space, addr, len)?;
        }
        let start = space.mmap(sys, args)?;
        self.recheck(sys, space, &touched)?;
        Ok(start)
    }

    /// True if user page `va` (frame `pa`) shares its lines with the
    /// kernel's linear map on an aliasing VIPT cache (same colour), under a
    /// policy that does not flush everything: what munmap and exit may
    /// leave to the linear map (see `maintain_pages`).
    fn left_to_linear_map(&self, va: VirtAddr, pa: PhysAddr) -> bool {
        self.vipt_aliasing()
            && !self.policy.flushes_everything()
            && !self.separate_lines(va, self.kernel_va(pa))
    }

    /// `munmap` with the maintenance it owes: the range is flushed while
    /// still mapped (no dirty line of a freed frame is left to be written
    /// back over its next owner; on aliasing VIPT a freed page at its
    /// frame's own colour is left alone, its lines being the linear map's,
    /// which the frame's next fill overwrites or drops), and pages that
    /// lose an alias are re-checked (an uncached page may become cacheable
    /// again).
    pub fn munmap<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        va: VirtAddr,
        len: u32,
    ) -> Result<(), CoherenceError> {
        let range = check_range(va, len)?;
        let touched = self.frames_in(space, va, len);
        if len > 0 {
            // Pages freed with the mapping whose lines the linear map
            // reaches need nothing (see `maintain_pages`); the rest are
            // written back, not discarded: the unmap may still be refused,
            // and then they live on.
            let mut left: Vec<VirtAddr> = Vec::new();
            if self.vipt_aliasing() && !self.policy.flushes_everything() {
                left = dying_pages(sys, space, range)
                    .into_iter()
                    .filter(|&va| {
                        space
                            .resident_at(va)
                            .is_some_and(|pa| self.left_to_linear_map(va, pa))
                    })
                    .collect();
                if !left.is_empty() {
                    self.counters.coverage.hit(coverage::Point::LeftToLinearMap);
                }
            }
            self.maintain_range(
                sys,
                space,
                range,
                false,
                |_, va| {
                    left.binary_search(&va)
                        .is_err()
                        .then_some(LineOp::CleanInvalidate)
                },
                |_, _| {},
            )?;
        }
        space.munmap(sys, va, len)?;
        self.recheck(sys, space, &touched)
    }

    /// `mprotect` with the maintenance it owes: dirty lines are written
    /// back before write permission goes, every page in the range is
    /// re-checked for alias conflicts (gained or lost), and resident pages
    /// that become executable get their code to the I-side (cleaned to
    /// memory, old instructions dropped from the I-cache) — on every cache
    /// kind, since code written through the D-cache never reaches the
    /// I-cache by itself.
    pub fn mprotect<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        va: VirtAddr,
        len: u32,
        prot: Protection,
    ) -> Result<(), CoherenceError> {
        check_range(va, len)?;
        let touched = self.frames_in(space, va, len);
        self.counters.coverage.mprotect(space, va, len, prot);
        let becoming_executable: Vec<(VirtAddr, PhysAddr)> = if prot.contains(Protection::EXEC) {
            space
                .resident_in(va, len)
                .filter(|&(va, _)| {
                    space
                        .find_vma(va)
                        .is_some_and(|v| !v.prot().contains(Protection::EXEC))
                })
                .collect()
        } else {
            Vec::new()
        };
        // On an aliasing cache this also cleans the user's lines of the
        // pages becoming executable.
        self.flush_cache_range(sys, space, va, len)?;
        space.mprotect(sys, va, len, prot)?;
        if prot.contains(Protection::WRITE) {
            // The user may now write code the I-cache was synced to
            // (`PageFlags::CODE_SYNCED`) with no fault to tell.
            for &pa in &touched {
                sys.frames.clear_flags(pa, PageFlags::CODE_SYNCED)?;
            }
        }
        for &(va, pa) in &becoming_executable {
            self.sync_icache(sys, space.id(), va, pa)?;
        }
        self.recheck(sys, space, &touched)
    }

    /// `brk` with the maintenance a shrink owes (as munmap).
    pub fn brk<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        new_break: VirtAddr,
    ) -> Result<VirtAddr, CoherenceError> {
        let up = |va: VirtAddr| va.as_u32().checked_next_multiple_of(PAGE);
        let mut touched = Vec::new();
        if let (Some(new), Some(old)) = (up(new_break), up(space.brk_value()))
            && new < old
        {
            let (new, len) = (VirtAddr(new), old - new);
            touched = self.frames_in(space, new, len);
            self.flush_cache_range(sys, space, new, len)?;
        }
        let result = space.brk(sys, new_break)?;
        self.recheck(sys, space, &touched)?;
        Ok(result)
    }

    fn frames_in(&self, space: &AddressSpace, va: VirtAddr, len: u32) -> Vec<PhysAddr> {
        let mut frames: Vec<PhysAddr> = space.resident_in(va, len).map(|(_, pa)| pa).collect();
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

    // ---- fork / exec / exit -------------------------------------------------------------

    /// `fork`: the child, over `child_table`, with an id of its own (see
    /// [`AddressSpace::fork`]). Before the parent's private pages turn
    /// copy-on-write, their dirty lines are cleaned to memory where a copy
    /// would not see them (VIVT, the parent live): no "VAC COW data
    /// bombs". Clean, not invalidate: the parent's lines stay valid for its
    /// reads.
    pub fn fork<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        parent: &mut AddressSpace,
        child_table: PageTable,
    ) -> Result<AddressSpace, CoherenceError> {
        // VIPT aliasing needs nothing: the copy reads through the user's
        // colour (a window) or flushes the user aliases apart from its own.
        if self.info.kind == CacheKind::Vivt {
            let range = user_range_of(parent)?;
            let id = parent.id();
            // Only writable private pages can hold dirty lines a copy needs;
            // shared pages stay shared and need nothing.
            let writable: Vec<VirtAddr> = parent
                .resident()
                .filter(|&(va, pa)| {
                    sys.frames.mappings(pa).is_ok_and(|m| {
                        m.iter()
                            .any(|m| m.space == id && m.va == va && m.writable && !m.shared)
                    })
                })
                .map(|(va, _)| va)
                .collect();
            self.maintain_range(
                sys,
                parent,
                range,
                true,
                |_, va| writable.binary_search(&va).is_ok().then_some(LineOp::Clean),
                |_, _| {},
            )?;
        }
        let child = parent.fork(sys, child_table)?;
        // The child shares its parent's shared mappings from the start.
        let frames: Vec<PhysAddr> = child.resident().map(|(_, pa)| pa).collect();
        // The child runs only after a switch, which separates them.
        for pa in frames {
            self.note_sharing(sys, pa)?;
        }
        Ok(child)
    }

    /// `exit` (and the old image's end at `exec`): `space`'s lines leave
    /// the cache — shared pages written back, private pages only dropped
    /// (their frames are freed: writing them back would be wasted bus
    /// time) — then the space is destroyed. Returns its L1 table frame for
    /// reuse. As Linux's exec does (the new image runs before the old one
    /// is dropped), switch away first: the running space is handed back in
    /// [`ExitRefused`] with [`CoherenceError::StillRunning`], since its
    /// table would be freed under the MMU. On VIVT a flushing switch away
    /// leaves nothing to do here.
    pub fn exit<M: TableMemory + KernelAccess, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: AddressSpace,
    ) -> Result<PhysAddr, ExitRefused> {
        let id = space.id();
        if id == self.current {
            self.counters.coverage.refused_exit();
            return Err(ExitRefused {
                error: CoherenceError::StillRunning { space: id },
                space: Some(alloc::boxed::Box::new(space)),
            });
        }
        self.counters.coverage.exit(self.is_live(id));
        self.exit_inner(sys, space)
            .map_err(|error| ExitRefused { error, space: None })
    }

    fn exit_inner<M: TableMemory + KernelAccess, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: AddressSpace,
    ) -> Result<PhysAddr, CoherenceError> {
        let range = user_range_of(&space)?;
        let id = space.id();
        // Private pages nobody else maps die with the space: their lines are
        // dropped unwritten. Everything else is written back.
        let dies = dying_pages(sys, &space, range);
        self.maintain_range(
            sys,
            &space,
            range,
            true,
            |_, va| Some(discard_if_dying(&dies, va)),
            |mem, pa| mem.contents_dead(pa),
        )?;
        // Whatever lines of them remain (a non-aliasing cache was not
        // touched) hold dead data too.
        for &va in &dies {
            if let Some(pa) = space.resident_at(va) {
                sys.mem.contents_dead(pa);
            }
        }
        self.live.retain(|l| l.space != id);
        Ok(space.destroy(sys)?)
    }
}

/// The resident pages of `space` in `range` whose data dies when their
/// mapping goes: private, mapped nowhere else, not an object's own page.
/// Sorted (by address, as `resident_in` gives them).
fn dying_pages<M, F>(
    sys: &MemorySystem<M, F>,
    space: &AddressSpace,
    range: VirtRange,
) -> Vec<VirtAddr> {
    let id = space.id();
    let len = range.len().min(u64::from(u32::MAX)) as u32;
    space
        .resident_in(range.start(), len)
        .filter(|&(va, pa)| {
            sys.frames
                .mappings(pa)
                .is_ok_and(|m| m.len() == 1 && m[0].space == id && m[0].va == va && !m[0].shared)
                && !is_object_page(sys, space, va, pa)
        })
        .map(|(va, _)| va)
        .collect()
}

/// Drop a dying page's lines unwritten; write back any other's.
fn discard_if_dying(dies: &[VirtAddr], va: VirtAddr) -> LineOp {
    if dies.binary_search(&va).is_ok() {
        LineOp::Discard
    } else {
        LineOp::CleanInvalidate
    }
}

/// True if `pa` is the object's own page shown at `va` (a page-cache page,
/// which outlives the space).
fn is_object_page<M, F>(
    sys: &MemorySystem<M, F>,
    space: &AddressSpace,
    va: VirtAddr,
    pa: PhysAddr,
) -> bool {
    let Some((id, page)) = space.find_vma(va).and_then(|v| v.object_page(va)) else {
        return false;
    };
    sys.objects.get(id).ok().and_then(|o| o.page(page)) == Some(pa)
}

/// Every user address `space` may map (its layout's bounds).
fn user_range_of(space: &AddressSpace) -> Result<VirtRange, CoherenceError> {
    let layout = space.config().layout;
    check_range(
        VirtAddr(layout.min_addr),
        layout.task_size - layout.min_addr,
    )
}
