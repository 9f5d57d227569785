//! Page faults: zero-fill and copy-on-write (Linux `clear_user_page` /
//! `copy_user_page`) written through a kernel mapping of the *user's*
//! colour, so the new data is where the user will look for it.
//!
//! ```text
//!   cache          write through          before              after
//!   VIVT (ARM926)  linear map             discard dest lines  drain: stores
//!                                         (read-allocate: the missed, nothing
//!                                         stores then miss)   dirty is left
//!   VIPT aliasing  linear map if same     discard dest lines  nothing: the
//!                  colour, else a window  of other colours    user's colour
//!                  of the user's colour                       holds the data
//!   non-aliasing   linear map             —                   —
//! ```

use super::*;
use crate::mm::object::ObjectKind;
use crate::mm::space::{Backing, FaultAccess, FaultOutcome};
use crate::mmu::TableFrames;

/// Where the kernel writes (or reads) a page for a user address.
#[derive(Clone, Copy, Debug)]
pub(super) enum Through {
    /// The linear map.
    Linear(VirtAddr),
    /// A window slot (released by the caller).
    Window(usize, VirtAddr),
}

impl Through {
    pub(super) fn va(self) -> VirtAddr {
        match self {
            Through::Linear(va) | Through::Window(_, va) => va,
        }
    }
}

impl<P: Policy> Engine<P> {
    /// Resolves a user fault in `space` (see [`AddressSpace::fault`]) and
    /// does what the new page needs: zero-fill and copy-on-write through a
    /// kernel mapping of the user's colour, zeroes for fresh shared memory,
    /// then [`update_mmu_cache`](Self::update_mmu_cache). A fresh *file*
    /// page is the caller's to fill (it knows the file): fill it through
    /// [`kmap`](Self::kmap) or [`kernel_va`](Self::kernel_va) plus
    /// [`flush_dcache_page`](Self::flush_dcache_page).
    ///
    /// A private *write* to a file page not yet in the page cache is
    /// resolved as a read: the page is mapped read-only and returned as
    /// [`FaultOutcome::ObjectPage`] with `fresh` set, for the caller to
    /// fill; the retried write faults again and copies the filled page.
    /// (Copying at once would copy the frame before anyone read the file
    /// into it. Linux's `do_cow_fault` likewise reads the page in,
    /// `__do_fault`, before `copy_user_highpage`, mm/memory.c.) So this
    /// call never returns `CopyOnWrite` with `from_fresh` set.
    ///
    /// A failed fault leaves the space as [`AddressSpace::fault`] does
    /// (nothing mapped for a refused access); a failure while filling
    /// leaves the page mapped but unfilled only if the kernel's own memory
    /// access failed, which the caller must treat as fatal for the process.
    pub fn fault<M: TableMemory + KernelAccess, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        space: &mut AddressSpace,
        va: VirtAddr,
        access: FaultAccess,
    ) -> Result<FaultOutcome, CoherenceError> {
        let access = if access == FaultAccess::Write && file_page_not_read_in(sys, space, va) {
            self.counters
                .coverage
                .hit(coverage::Point::FileReadBeforeCopy);
            FaultAccess::Read
        } else {
            access
        };
        if access == FaultAccess::Write
            && self.aliasing()
            && space.write_fault_copies(sys, va)
            && let Some(pa) = space.resident_at(va)
        {
            // A write to a present page that replaces its frame (copy-on-
            // write): VIVT lines at `va` belong to the old frame and must
            // not answer for the new one, and the copy must find the old
            // frame's data in memory; on aliasing VIPT the old frame's
            // lines at the user's colour would outlive the mapping, stale
            // once the frame is written at another colour (Linux's
            // flush_cache_page flushes that colour, arch/arm/mm/flush.c).
            // A write that makes the frame writable in place (its last
            // sharer gone) keeps frame, address and lines: nothing to do
            // (issue 24: W3's child lost every line it had just read, and
            // its stores, which do not allocate, went to memory).
            let mut whole = false;
            self.maintain_user_alias(
                &mut sys.mem,
                space.id(),
                va.align_down(PAGE),
                pa,
                LineOp::CleanInvalidate,
                &mut whole,
            )?;
        }
        let outcome = space.fault(sys, va, access)?;
        let user_va = va.align_down(PAGE);
        self.counters.coverage.fault(&outcome);
        match outcome {
            FaultOutcome::ZeroFill { pa } => self.clear_user_page(sys, pa, user_va)?,
            FaultOutcome::CopyOnWrite {
                from,
                to,
                from_fresh,
            } => {
                if from_fresh {
                    self.fill_fresh_object_page(sys, space, va, from)?;
                }
                self.copy_user_page(sys, to, from, user_va)?;
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
        self.counters.coverage.fresh(kind);
        if kind != Some(ObjectKind::File) {
            self.clear_user_page(sys, pa, va.align_down(PAGE))?;
        }
        Ok(())
    }

    /// A kernel mapping of `pa` whose lines are the ones user address
    /// `user_va` uses, when the cache allows one: a window of its colour on
    /// a VIPT-aliasing cache, else the linear map.
    pub(super) fn map_for_user<M: TableMemory>(
        &mut self,
        mem: &mut M,
        pa: PhysAddr,
        user_va: VirtAddr,
    ) -> Result<Through, CoherenceError> {
        let kva = self.kernel_va(pa);
        if self.vipt_aliasing()
            && self.separate_lines(kva, user_va)
            && self.policy.uses_colour_windows()
            && let Some(windows) = self.windows.as_mut()
        {
            let slot = windows.acquire(mem, pa, self.info.colour_of(user_va))?;
            return Ok(Through::Window(slot, windows.va(slot)));
        }
        Ok(Through::Linear(kva))
    }

    pub(super) fn unmap_through<M: TableMemory>(
        &mut self,
        mem: &mut M,
        through: Through,
    ) -> Result<(), CoherenceError> {
        if let (Through::Window(slot, _), Some(windows)) = (through, self.windows.as_mut()) {
            windows.release(mem, slot)?;
        }
        Ok(())
    }

    /// Before frame `pa` is overwritten whole through `through`: lines of
    /// its kernel alias that are not the ones written could be written back
    /// over the new data later — discard them (their contents are dead,
    /// which `contents_dead` tells a cache model or sanitizer).
    fn discard_other_kernel_lines<M: TableMemory + KernelAccess>(
        &mut self,
        mem: &mut M,
        pa: PhysAddr,
        through: Through,
    ) {
        let kva = self.kernel_va(pa);
        let other = match self.info.kind {
            // Read-allocate: after the discard, stores through the linear
            // map miss and go to memory, leaving no dirty kernel line.
            CacheKind::Vivt => true,
            CacheKind::VipAliasing { .. } => self.separate_lines(through.va(), kva),
            _ => false,
        };
        if other {
            mem.contents_dead(pa);
            apply(mem.cache(), LineOp::Discard, page_range(kva));
            self.counters.kernel_alias_cleans += 1;
        }
    }

    /// After writing frame `pa` through `through` for user address
    /// `user_va`: what the user (and later kernel reads) need.
    fn settle_after_fill<M: TableMemory>(
        &mut self,
        mem: &mut M,
        through: Through,
        user_va: VirtAddr,
    ) {
        let cpu = mem.cache();
        if self.separate_lines(through.va(), user_va) {
            // Only when no window of the user's colour was available (VIPT)
            // or the cache is VIVT with a write-allocating configuration:
            // get the data to memory and leave no line behind.
            if self.info.kind == CacheKind::Vivt {
                // Read-allocate ARMv5: stores missed; only the write
                // buffer holds them.
                cpu.drain_write_buffer();
            } else {
                cpu.clean_invalidate_dcache_range(page_range(through.va()));
                cpu.drain_write_buffer();
                self.counters.kernel_alias_cleans += 1;
            }
        }
    }

    /// Zero-fills frame `pa` for user address `user_va` (Linux
    /// `clear_user_page`).
    pub fn clear_user_page<K>(
        &mut self,
        k: &mut K,
        pa: PhysAddr,
        user_va: VirtAddr,
    ) -> Result<(), CoherenceError>
    where
        K: FrameKnowledge,
        K::Memory: KernelAccess,
    {
        // New bytes: whatever code was synced from the page is gone.
        clear_flags(k, pa, PageFlags::CODE_SYNCED)?;
        if self.policy.flushes_everything() {
            let kva = self.kernel_va(pa);
            k.memory().zero_page(kva)?;
            self.whole_dcache(k.memory());
            self.counters.pages_filled += 1;
            set_flags(k, pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
            return Ok(());
        }
        let through = self.map_for_user(k.memory(), pa, user_va)?;
        self.discard_other_kernel_lines(k.memory(), pa, through);
        let result = k.memory().zero_page(through.va());
        if result.is_ok() {
            self.settle_after_fill(k.memory(), through, user_va);
        }
        self.unmap_through(k.memory(), through)?;
        result?;
        self.count_fill(through);
        set_flags(k, pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
        Ok(())
    }

    /// Copies frame `from` into frame `to` for user address `user_va`
    /// (copy-on-write; Linux `copy_user_page`). The source's newest data
    /// may sit in lines of its user aliases: those apart from the lines the
    /// copy reads are written back first. Both frames must be managed ones
    /// (a kernel table or the kernel image is never a user page's source)
    /// and distinct: the destination's old lines are discarded before the
    /// copy, which for one frame would discard the source's data.
    pub fn copy_user_page<K>(
        &mut self,
        k: &mut K,
        to: PhysAddr,
        from: PhysAddr,
        user_va: VirtAddr,
    ) -> Result<(), CoherenceError>
    where
        K: FrameKnowledge,
        K::Memory: KernelAccess,
    {
        k.frame_flags(to)?;
        k.frame_flags(from)?;
        if to == from {
            return Err(CoherenceError::CopyOntoItself { pa: to });
        }
        clear_flags(k, to, PageFlags::CODE_SYNCED)?;
        if self.policy.flushes_everything() {
            self.whole_dcache(k.memory());
            k.memory()
                .copy_page(self.kernel_va(to), self.kernel_va(from))?;
            self.whole_dcache(k.memory());
            self.counters.pages_filled += 1;
            set_flags(k, to, PageFlags::KERNEL_ALIAS_CLEAN)?;
            return Ok(());
        }
        let source = self.map_for_user(k.memory(), from, user_va)?;
        let dest = match self.map_for_user(k.memory(), to, user_va) {
            Ok(dest) => dest,
            Err(e) => {
                self.unmap_through(k.memory(), source)?;
                return Err(e);
            }
        };
        let result = self.copy_between(k, from, to, source, dest, user_va);
        self.unmap_through(k.memory(), dest)?;
        self.unmap_through(k.memory(), source)?;
        result?;
        self.count_fill(dest);
        set_flags(k, to, PageFlags::KERNEL_ALIAS_CLEAN)?;
        Ok(())
    }

    fn copy_between<K>(
        &mut self,
        k: &mut K,
        from: PhysAddr,
        to: PhysAddr,
        source: Through,
        dest: Through,
        user_va: VirtAddr,
    ) -> Result<(), CoherenceError>
    where
        K: FrameKnowledge,
        K::Memory: KernelAccess,
    {
        let uncached = self.mapped_uncached(k, from)?;
        if uncached {
            self.before_cached_access(k.memory(), source.va());
        }
        if self.aliasing() {
            // The source's data may be in lines the copy does not read:
            // user aliases of other colours (or, VIVT, any user alias) and a
            // kernel alias dirtied by an earlier kernel write.
            self.maintain_aliases_apart_from(k, from, source.va(), LineOp::Clean)?;
            let kfrom = self.kernel_va(from);
            let users_apart = self.users_apart_from_kernel(k, from, source.va())?;
            if self.separate_lines(kfrom, source.va())
                || self.info.kind == CacheKind::Vivt
                || users_apart
            {
                // The linear map's old lines may be stale against what
                // users wrote since (VIVT; VIPT at another colour, read
                // through the linear map when no window of the users'
                // colour is at hand): drop them so the copy reads memory.
                k.memory()
                    .cache()
                    .clean_invalidate_dcache_range(page_range(kfrom));
                self.counters.kernel_alias_cleans += 1;
            }
            k.memory().cache().drain_write_buffer();
        }
        self.discard_other_kernel_lines(k.memory(), to, dest);
        k.memory().copy_page(dest.va(), source.va())?;
        if uncached {
            // Mapped uncached elsewhere: the lines the copy read would be
            // stale at the next uncached store (see `uncached`), on any
            // cache kind.
            self.after_cached_access(k.memory(), source.va());
        } else if self.aliasing() {
            // The copy read the source into lines nobody keeps track of —
            // the linear map's, or a window's colour, which no mapping of
            // the source may have once this copy replaces it — and a user
            // writing the source at another address (VIVT) or colour
            // would leave them stale for the next copy. Drop them.
            k.memory()
                .cache()
                .clean_invalidate_dcache_range(page_range(source.va()));
        }
        self.settle_after_fill(k.memory(), dest, user_va);
        Ok(())
    }

    fn count_fill(&mut self, through: Through) {
        self.counters.pages_filled += 1;
        if matches!(through, Through::Window(..)) {
            self.counters.window_fills += 1;
        }
    }
}

/// True if `va` lies in a private mapping of a file whose page there is not
/// in the page cache (and the mapping permits writes: else the write fault
/// is refused as it is).
fn file_page_not_read_in<M, F>(
    sys: &MemorySystem<M, F>,
    space: &AddressSpace,
    va: VirtAddr,
) -> bool {
    let Some(vma) = space.find_vma(va) else {
        return false;
    };
    if vma.is_shared() || !vma.prot().contains(Protection::WRITE) {
        return false;
    }
    let Some((id, page)) = vma.object_page(va) else {
        return false;
    };
    sys.objects
        .get(id)
        .is_ok_and(|o| o.kind() == ObjectKind::File && page < o.size() && o.page(page).is_none())
}
