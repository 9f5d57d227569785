//! Kernel windows: a few kernel pages, per cache colour, that the engine
//! points at any frame to reach it *in a chosen colour* — seed 001's kmap
//! argument. On a VIPT-aliasing cache the lines of a frame are found by
//! colour and physical tag, so a window of a user mapping's colour shares
//! that mapping's lines: the kernel zero-fills and copies a user page where
//! the user will read it, and cleans lines of a space that is not running.
//!
//! ```text
//!   base (colour-span aligned)
//!   │ slot 0: colour 0 │ colour 1 │ … │ colour n-1 │ slot 1: colour 0 │ …
//! ```
//!
//! [`Kmap`] is the guard the kernel uses to touch a user page itself: it
//! maps the page at a colour compatible with its user mappings, does the
//! maintenance owed before the access, and on drop the maintenance owed
//! after it.

use alloc::vec::Vec;

use super::*;
use crate::mmu::{Attributes, PageSlot, PageTable, TableFrames};

/// Windows per colour: a copy needs a source and a destination of the same
/// colour at once.
pub const SLOTS_PER_COLOUR: u32 = 2;

/// Why a window could not be set up or used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WindowError {
    /// The window base is not aligned to the cache's colour span.
    Misaligned {
        /// The base given.
        base: VirtAddr,
        /// The alignment it needs.
        alignment: u32,
    },
    /// The windows would pass 4 GiB.
    OutOfRange {
        /// The base given.
        base: VirtAddr,
    },
    /// Every window of the colour is in use (guards held too long).
    Busy {
        /// The colour asked for.
        colour: usize,
    },
    /// Reserving or rewriting a window's entry failed.
    Table(TableError),
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowError::Misaligned { base, alignment } => write!(
                f,
                "the kernel windows at {base} are not aligned to {alignment:#x}, the cache's \
                 colour span"
            ),
            WindowError::OutOfRange { base } => write!(
                f,
                "the kernel windows from {base} would pass the top of the 4 GiB address space"
            ),
            WindowError::Busy { colour } => write!(
                f,
                "every kernel window of colour {colour} is in use: drop a Kmap guard before \
                 taking another"
            ),
            WindowError::Table(e) => {
                write!(
                    f,
                    "the kernel window's page-table entry could not be set: {e}"
                )
            }
        }
    }
}

/// The message includes the cause's, so a kernel printing one line loses
/// nothing; `source` gives the cause as a value.
impl core::error::Error for WindowError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            WindowError::Table(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TableError> for WindowError {
    fn from(e: TableError) -> Self {
        WindowError::Table(e)
    }
}

/// The engine's kernel windows (see the module documentation).
#[derive(Debug)]
pub struct KernelWindows {
    colours: usize,
    slots: Vec<PageSlot>,
    busy: Vec<bool>,
}

impl KernelWindows {
    /// Reserves `colours × SLOTS_PER_COLOUR` pages of the kernel's table
    /// from `base` (aligned to the colour span; addresses the kernel never
    /// uses otherwise). Coarse tables come from `frames`.
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// use vacmm::addr::{PhysAddr, VirtAddr};
    /// use vacmm::coherence::KernelWindows;
    /// use vacmm::mmu::{Arch, PageTable, TableFrames};
    /// use vacmm::sim::{CpuModel, KERNEL, MemType, Sim};
    ///
    /// struct Frames(u32);
    /// impl TableFrames for Frames {
    ///     fn allocate_table_frame(&mut self) -> Option<PhysAddr> {
    ///         self.0 += 0x1000;
    ///         Some(PhysAddr(self.0))
    ///     }
    ///     fn free_table_frame(&mut self, _: PhysAddr) {}
    /// }
    /// let model = CpuModel::arm1136_64k();
    /// let mut sim = Sim::new(model, 1 << 20);
    /// for page in (0..1u32 << 20).step_by(4096) {
    ///     sim.map(KERNEL, page, page, MemType::WriteBack, true).unwrap();
    /// }
    /// let mut kernel = PageTable::new(&mut sim, PhysAddr(0x4000), Arch::Armv6).unwrap();
    /// let windows = KernelWindows::new(
    ///     &mut sim,
    ///     &mut Frames(0x8000),
    ///     &mut kernel,
    ///     VirtAddr(0xffc0_0000),
    ///     &model.info(),
    /// )
    /// .unwrap();
    /// assert_eq!(windows.colours(), 4);
    /// # }
    /// ```
    pub fn new<M: TableMemory, F: TableFrames>(
        mem: &mut M,
        frames: &mut F,
        kernel: &mut PageTable,
        base: VirtAddr,
        info: &CacheInfo,
    ) -> Result<Self, WindowError> {
        let colours = info.colours().max(1);
        let span = info.colour_alignment().max(PAGE as usize) as u32;
        if !base.is_aligned(span) {
            return Err(WindowError::Misaligned {
                base,
                alignment: span,
            });
        }
        let count = colours as u32 * SLOTS_PER_COLOUR;
        if u64::from(base.as_u32()) + u64::from(count) * u64::from(PAGE) > 1 << 32 {
            return Err(WindowError::OutOfRange { base });
        }
        // Every slot is checked before any is taken: a refusal leaves the
        // kernel's table as it was. (Only running out of table frames or
        // heap can stop the second loop.)
        for i in 0..count {
            kernel.check_page_slot(mem, VirtAddr(base.as_u32() + i * PAGE))?;
        }
        let mut slots = Vec::new();
        slots
            .try_reserve_exact(count as usize)
            .map_err(|_| TableError::MetadataAllocFailed)?;
        for i in 0..count {
            let va = VirtAddr(base.as_u32() + i * PAGE);
            match kernel.reserve_page_slot(mem, frames, va) {
                Ok(slot) => slots.push(slot),
                Err(e) => {
                    // The slots taken so far are given back (empty, never
                    // mapped, so giving them back cannot fail); a coarse
                    // table made for them stays, empty, in the kernel's
                    // table.
                    for slot in slots {
                        let _ = kernel.unreserve_page_slot(mem, slot);
                    }
                    return Err(e.into());
                }
            }
        }
        Ok(KernelWindows {
            colours,
            busy: alloc::vec![false; slots.len()],
            slots,
        })
    }

    /// Colours served.
    pub fn colours(&self) -> usize {
        self.colours
    }

    /// The address of window `slot`.
    pub(super) fn va(&self, slot: usize) -> VirtAddr {
        self.slots[slot].va()
    }

    /// Maps `pa` in a free window of `colour`.
    pub(super) fn acquire<M: TableMemory>(
        &mut self,
        mem: &mut M,
        pa: PhysAddr,
        colour: usize,
    ) -> Result<usize, WindowError> {
        debug_assert!(colour < self.colours, "colour {colour} of {}", self.colours);
        let slot = (0..SLOTS_PER_COLOUR as usize)
            .map(|s| s * self.colours + colour)
            .find(|&i| !self.busy[i])
            .ok_or(WindowError::Busy { colour })?;
        self.slots[slot].map(mem, pa, Attributes::KERNEL_DATA)?;
        self.busy[slot] = true;
        Ok(slot)
    }

    /// Unmaps window `slot` and flushes its TLB entry. Its lines need no
    /// maintenance for reuse: VIPT lines are tagged by the frame.
    pub(super) fn release<M: TableMemory>(
        &mut self,
        mem: &mut M,
        slot: usize,
    ) -> Result<(), WindowError> {
        let flush = self.slots[slot].unmap(mem)?;
        self.busy[slot] = false;
        flush
            .flush(mem.cache())
            .map_err(|_| WindowError::Table(TableError::NotMapped { va: self.va(slot) }))
    }
}

/// What the kernel will do through a [`Kmap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmapAccess {
    /// Read only.
    Read,
    /// Read and write.
    Write,
}

/// A kernel mapping of one user-visible frame, with the maintenance owed
/// before the access done and the maintenance owed after it done on drop
/// (or by [`finish`](Kmap::finish), which reports errors).
///
/// Borrowing the engine and the memory system, it makes the bracket
/// impossible to forget: no other engine call can run while it lives.
pub struct Kmap<'a, P: Policy, M: TableMemory> {
    engine: &'a mut Engine<P>,
    mem: &'a mut M,
    pa: PhysAddr,
    through: super::fault::Through,
    access: KmapAccess,
    /// Lines other than the ones written that someone will read from
    /// memory: clean after a write.
    others_read_memory: bool,
    /// Some mapping reaches the frame uncached: no line of the kernel's
    /// may outlive the access (see `uncached`).
    mapped_uncached: bool,
    executable: bool,
    done: bool,
}

impl<P: Policy> Engine<P> {
    /// Maps frame `pa` for the kernel at a colour compatible with its user
    /// mappings and returns the guard; see [`Kmap`]. Use it whenever the
    /// kernel reads or writes a page that user mappings may be using.
    pub fn kmap<'a, K: FrameKnowledge>(
        &'a mut self,
        k: &'a mut K,
        pa: PhysAddr,
        access: KmapAccess,
    ) -> Result<Kmap<'a, P, K::Memory>, CoherenceError> {
        let users = user_aliases(k, pa)?;
        self.counters.kmaps += 1;
        // Only a mapping that exists can run the page; one made later
        // syncs the I-cache itself. A write changes the code that was
        // synced (see `flush_dcache_page`).
        let executable = !users.is_empty() && k.frame_flags(pa)?.contains(PageFlags::EXECUTABLE);
        let mut stale = PageFlags::empty();
        if users.is_empty() {
            stale |= PageFlags::EXECUTABLE;
        }
        if access == KmapAccess::Write {
            stale |= PageFlags::CODE_SYNCED;
        }
        super::clear_flags(k, pa, stale)?;
        let kva = self.kernel_va(pa);
        // The colour to work in: the users' own when they agree (no user
        // line needs touching), else the linear map's.
        let target = match users.split_first() {
            Some((&(_, first), rest))
                if rest
                    .iter()
                    .all(|&(_, va)| !self.separate_lines(va, first) || !self.vipt_aliasing()) =>
            {
                first
            }
            _ => kva,
        };
        let mapped_uncached = self.mapped_uncached(k, pa)?;
        let through = self.map_for_user(k.memory(), pa, target)?;
        self.counters.coverage.kmap(&through);
        if mapped_uncached {
            self.before_cached_access(k.memory(), through.va());
        }
        let mut others_read_memory = mapped_uncached;
        if self.policy.flushes_everything() {
            self.whole_dcache(k.memory());
            others_read_memory = true;
        } else if self.aliasing() {
            // Users' dirty lines apart from the ones used reach memory and
            // leave, so the kernel reads their data and they read the
            // kernel's afterwards.
            let result =
                self.maintain_aliases_apart_from(k, pa, through.va(), LineOp::CleanInvalidate);
            if let Err(e) = result {
                self.unmap_through(k.memory(), through)?;
                return Err(e);
            }
            let users_apart = users
                .iter()
                .any(|&(_, va)| self.separate_lines(va, through.va()));
            others_read_memory |= users_apart;
            // The linear map's lines: written back (a deferred kernel
            // write) and dropped (stale once users wrote) — also when the
            // access goes through them (no window of the users' colour):
            // a line an earlier kernel access left there is older than
            // what users wrote at their own colour since.
            if self.separate_lines(kva, through.va())
                || self.info.kind == CacheKind::Vivt
                || users_apart
            {
                k.memory()
                    .cache()
                    .clean_invalidate_dcache_range(page_range(kva));
                self.counters.kernel_alias_cleans += 1;
                others_read_memory |= self.separate_lines(kva, through.va());
            }
            k.memory().cache().drain_write_buffer();
        }
        if access == KmapAccess::Write
            && matches!(through, super::fault::Through::Linear(_))
            && !others_read_memory
            && self.info.kind != CacheKind::Vivt
        {
            // The write stays in the linear map's lines: owed to the next
            // user mapping of another colour (update_mmu_cache).
            super::clear_flags(k, pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
        }
        Ok(Kmap {
            engine: self,
            mem: k.memory(),
            pa,
            through,
            access,
            others_read_memory,
            mapped_uncached,
            executable,
            done: false,
        })
    }
}

impl<P: Policy, M: TableMemory> Kmap<'_, P, M> {
    /// The kernel address to use while the guard lives.
    pub fn va(&self) -> VirtAddr {
        self.through.va()
    }

    /// The frame.
    pub fn pa(&self) -> PhysAddr {
        self.pa
    }

    /// The memory (for kernels whose accesses go through it, like the
    /// `sim` model).
    pub fn mem(&mut self) -> &mut M {
        self.mem
    }

    /// Ends the access: the maintenance owed after it, then the window is
    /// unmapped. Errors are those of rewriting the window's entry.
    pub fn finish(mut self) -> Result<(), CoherenceError> {
        self.complete()
    }

    fn complete(&mut self) -> Result<(), CoherenceError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let engine = &mut *self.engine;
        let cpu = self.mem.cache();
        let range = page_range(self.through.va());
        if self.access == KmapAccess::Write {
            if engine.policy.flushes_everything() {
                cpu.clean_invalidate_dcache_all();
                engine.counters.whole_cache_flushes += 1;
            } else if engine.info.kind == CacheKind::Vivt {
                // The users' lines were dropped before; the data must be in
                // memory for them, and no kernel line may outlive the
                // access (it would be stale after their next write).
                cpu.clean_invalidate_dcache_range(range);
                engine.counters.kernel_alias_cleans += 1;
            } else if self.others_read_memory {
                cpu.clean_dcache_range(range);
                engine.counters.kernel_alias_cleans += 1;
            }
            if self.executable {
                cpu.clean_dcache_range(range);
                cpu.invalidate_icache_all();
                engine.counters.icache_flushes += 1;
            }
            cpu.drain_write_buffer();
        } else if engine.info.kind == CacheKind::Vivt {
            // Clean copies read by the kernel go stale with the users'
            // next write.
            cpu.clean_invalidate_dcache_range(range);
        }
        if self.mapped_uncached {
            engine.after_cached_access(self.mem, self.through.va());
        }
        engine.unmap_through(self.mem, self.through)
    }
}

impl<P: Policy, M: TableMemory> Drop for Kmap<'_, P, M> {
    fn drop(&mut self) {
        // Errors here are the window entry's; `finish` reports them.
        let _ = self.complete();
    }
}
