//! Kernel↔user shared buffers — seed 000's case, which Linux does not
//! support on VIVT caches: a driver's buffer the kernel reads and writes at
//! its own addresses while one or more processes map it.
//!
//! Two ways to keep it coherent, chosen by the caller:
//!
//! | mode | per access | per exchange | choose when |
//! |------|------------|--------------|-------------|
//! | [`SharingMode::HandOver`] | cached, full speed | `sync_for_user` / `sync_for_kernel`: the pages handed over, only where aliases hold separate lines (nothing on VIPT when colours match) | the buffer changes hands in batches (rings, frames) |
//! | [`SharingMode::Uncached`] | every access goes to memory | nothing | tiny, fine-grained exchanges, or nobody can say when ownership changes |
//!
//! Like the DMA API, hand-over is a protocol: between `sync_for_user` and
//! `sync_for_kernel` only users write the pages handed over; between
//! `sync_for_kernel` and the next `sync_for_user`, only the kernel does.
//!
//! Users map the buffer with `mmap` of its [`object`](SharedBuffer::object)
//! (shared); the kernel reaches page `i` at
//! [`kernel_va`](SharedBuffer::kernel_va).

use alloc::vec::Vec;

use super::*;
use crate::mm::object::{ObjectError, ObjectId, ObjectKind};
use crate::mmu::{Access, Attributes, Execute, PageTable, TableFrames};

/// How a [`SharedBuffer`] stays coherent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharingMode {
    /// Cached everywhere; ownership is handed over with
    /// [`Engine::sync_for_user`] / [`Engine::sync_for_kernel`].
    HandOver,
    /// Uncacheable everywhere: the kernel through its own uncached mapping
    /// at `kernel_base`, users through uncacheable entries.
    Uncached {
        /// Where the kernel maps the buffer (page aligned, unused).
        kernel_base: VirtAddr,
    },
}

/// A buffer shared between the kernel and user mappings.
///
/// It owns the buffer's frames: [`Engine::destroy_shared_buffer`] takes it
/// by value, and it is not `Clone`, so no copy of it can free the frames
/// twice (or free those of a later buffer that took its object's slot):
///
/// ```compile_fail,E0308
/// use vacmm::coherence::shared::SharedBuffer;
/// fn twin(buffer: &SharedBuffer) -> SharedBuffer {
///     buffer.clone()
/// }
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct SharedBuffer {
    object: ObjectId,
    frames: Vec<PhysAddr>,
    mode: SharingMode,
    /// The kernel's address of each page.
    kernel: Vec<VirtAddr>,
}

impl SharedBuffer {
    /// The object users `mmap` (shared) to see the buffer.
    pub fn object(&self) -> ObjectId {
        self.object
    }

    /// Pages.
    pub fn pages(&self) -> u32 {
        self.frames.len() as u32
    }

    /// The mode chosen.
    pub fn mode(&self) -> SharingMode {
        self.mode
    }

    /// The kernel's address of page `page` (`None` past the end).
    pub fn kernel_va(&self, page: u32) -> Option<VirtAddr> {
        self.kernel.get(page as usize).copied()
    }

    /// The frame of page `page`.
    pub fn frame(&self, page: u32) -> Option<PhysAddr> {
        self.frames.get(page as usize).copied()
    }

    /// The pages of `[offset, offset + len)`, checked.
    fn pages_of(&self, offset: u32, len: u32) -> Result<core::ops::Range<usize>, CoherenceError> {
        let end = u64::from(offset) + u64::from(len);
        if len == 0 || end > u64::from(self.pages()) * u64::from(PAGE) {
            return Err(CoherenceError::BadLength {
                addr: VirtAddr(offset),
                len: u64::from(len),
            });
        }
        let first = (offset / PAGE) as usize;
        let last = (end.div_ceil(u64::from(PAGE))) as usize;
        Ok(first..last)
    }
}

/// Why [`Engine::destroy_shared_buffer`] did not free a buffer.
#[derive(Debug)]
pub struct DestroyRefused {
    /// What went wrong.
    pub error: CoherenceError,
    /// The buffer, handed back when nothing was done to it (it is still
    /// mapped, say); `None` when the failure came part-way through the
    /// teardown.
    pub buffer: Option<SharedBuffer>,
}

impl fmt::Display for DestroyRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.buffer {
            Some(_) => write!(
                f,
                "the shared buffer was not destroyed and is handed back as it was: {}",
                self.error
            ),
            None => write!(
                f,
                "destroying the shared buffer failed part-way through the teardown: {}",
                self.error
            ),
        }
    }
}

impl core::error::Error for DestroyRefused {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The error alone, for callers that propagate it with `?`.
impl From<DestroyRefused> for CoherenceError {
    fn from(refused: DestroyRefused) -> Self {
        refused.error
    }
}

impl<P: Policy> Engine<P> {
    /// Allocates a zeroed buffer of `pages` pages shared by the kernel and
    /// user mappings, kept coherent by `mode`. Its frames are coloured by
    /// page index, so user mappings (colour-aligned by `get_unmapped_area`)
    /// share the kernel's lines on a VIPT-aliasing cache. `Uncached` maps
    /// the kernel's side in `kernel` (the kernel's table) at `kernel_base`;
    /// `HandOver` uses the linear map and needs no table (`None`).
    pub fn create_shared_buffer<M: TableMemory + KernelAccess, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        mut kernel: Option<&mut PageTable>,
        pages: u32,
        mode: SharingMode,
    ) -> Result<SharedBuffer, CoherenceError> {
        if pages == 0 {
            return Err(CoherenceError::BadLength {
                addr: VirtAddr(0),
                len: 0,
            });
        }
        if let SharingMode::Uncached { kernel_base } = mode {
            check_range(kernel_base, pages.saturating_mul(PAGE))?;
            if kernel.is_none() {
                return Err(CoherenceError::KernelTableNeeded { kernel_base });
            }
        }
        // Refused before anything is taken: a buffer that cannot fit would
        // otherwise zero and clean every free frame, then give them back.
        let free = sys.allocator.free_frames();
        if pages > free {
            return Err(FrameError::NotEnoughFrames {
                wanted: pages,
                free,
            }
            .into());
        }
        let object = sys.objects.create(ObjectKind::SharedMemory, pages)?;
        let mut buffer = SharedBuffer {
            object,
            frames: Vec::new(),
            mode,
            kernel: Vec::new(),
        };
        if let Err(e) = self.populate(sys, kernel.as_deref_mut(), &mut buffer, pages) {
            // Give back what was taken; the first error is the one reported.
            let _ = self.destroy_shared_buffer(sys, kernel, buffer);
            return Err(e);
        }
        Ok(buffer)
    }

    fn populate<M: TableMemory + KernelAccess, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        mut kernel: Option<&mut PageTable>,
        buffer: &mut SharedBuffer,
        pages: u32,
    ) -> Result<(), CoherenceError> {
        let colours = sys.allocator.colours();
        for page in 0..pages {
            let pa = match sys.allocator.allocate_colour(page & (colours - 1)) {
                Err(FrameError::NoFrameOfColour { .. }) => sys.allocator.allocate_any()?,
                other => other?,
            };
            if let Err(e) = sys.objects.insert_page(buffer.object, page, pa) {
                sys.allocator.free(pa)?;
                return Err(e.into());
            }
            buffer.frames.push(pa);
            // Zeroed through the linear map and cleaned: no line of it is
            // left dirty whatever the mode.
            let kva = self.kernel_va(pa);
            sys.mem.zero_page(kva)?;
            let cpu = sys.mem.cache();
            cpu.clean_invalidate_dcache_range(page_range(kva));
            cpu.drain_write_buffer();
            sys.frames.set_flags(pa, PageFlags::KERNEL_ALIAS_CLEAN)?;
            match buffer.mode {
                SharingMode::HandOver => buffer.kernel.push(kva),
                SharingMode::Uncached { kernel_base } => {
                    let va = VirtAddr(kernel_base.as_u32() + page * PAGE);
                    let attrs = Attributes::KERNEL_DATA
                        .with_memory(MemoryType::Bufferable)
                        .with_access(Access::KernelRw)
                        .with_execute(Execute::NeverIfSupported);
                    let kernel = kernel
                        .as_deref_mut()
                        .ok_or(CoherenceError::KernelTableNeeded { kernel_base })?;
                    kernel.map_page(&mut sys.mem, &mut sys.table_frames, va, pa, attrs)?;
                    buffer.kernel.push(va);
                    sys.frames.set_flags(pa, PageFlags::ALWAYS_UNCACHED)?;
                }
            }
        }
        Ok(())
    }

    /// Frees a buffer no user maps any more (munmap every mapping first).
    /// A refused call hands the buffer back in [`DestroyRefused`], so the
    /// one handle on its frames is never lost to an error. `kernel`, the
    /// kernel's table, as at creation: needed for an `Uncached` buffer.
    pub fn destroy_shared_buffer<M: TableMemory + KernelAccess, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        kernel: Option<&mut PageTable>,
        buffer: SharedBuffer,
    ) -> Result<(), DestroyRefused> {
        let kernel = match (buffer.mode, kernel) {
            (SharingMode::Uncached { kernel_base }, None) => {
                return Err(DestroyRefused {
                    error: CoherenceError::KernelTableNeeded { kernel_base },
                    buffer: Some(buffer),
                });
            }
            (_, kernel) => kernel,
        };
        let mappers = match sys.objects.get(buffer.object) {
            Ok(object) => object.mappers().len(),
            Err(e) => {
                return Err(DestroyRefused {
                    error: e.into(),
                    buffer: Some(buffer),
                });
            }
        };
        if mappers != 0 {
            return Err(DestroyRefused {
                error: ObjectError::StillMapped {
                    id: buffer.object,
                    mappers,
                }
                .into(),
                buffer: Some(buffer),
            });
        }
        self.tear_down(sys, kernel, buffer)
            .map_err(|error| DestroyRefused {
                error,
                buffer: None,
            })
    }

    fn tear_down<M: TableMemory + KernelAccess, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        kernel: Option<&mut PageTable>,
        buffer: SharedBuffer,
    ) -> Result<(), CoherenceError> {
        match (buffer.mode, kernel) {
            (SharingMode::Uncached { .. }, Some(kernel)) => {
                for &va in &buffer.kernel {
                    if let Ok((_, flush)) = kernel.unmap_page(&mut sys.mem, va) {
                        flush
                            .flush(sys.mem.cache())
                            .map_err(|_| TableError::NotMapped { va })?;
                    }
                }
            }
            // Refused by the callers before anything was taken.
            (SharingMode::Uncached { kernel_base }, None) => {
                return Err(CoherenceError::KernelTableNeeded { kernel_base });
            }
            (SharingMode::HandOver, _) => {
                // The kernel's dirty lines die with the buffer (a cache
                // model or sanitizer is told, so dropping them is no lost
                // write).
                for &pa in &buffer.frames {
                    sys.mem.contents_dead(pa);
                    apply(
                        sys.mem.cache(),
                        LineOp::Discard,
                        page_range(self.kernel_va(pa)),
                    );
                }
            }
        }
        for pa in sys.objects.destroy(buffer.object)? {
            sys.frames.reset(pa)?;
            sys.allocator.free(pa)?;
        }
        Ok(())
    }

    /// The kernel has written `[offset, offset + len)` of `buffer`; users
    /// may read it now. Cleans the kernel's lines and drops users' stale
    /// ones — only where they are separate lines; nothing in `Uncached`
    /// mode or on a non-aliasing cache.
    pub fn sync_for_user<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        buffer: &SharedBuffer,
        offset: u32,
        len: u32,
    ) -> Result<(), CoherenceError> {
        self.hand_over(sys, buffer, offset, len, true)
    }

    /// Users have written `[offset, offset + len)` of `buffer`; the kernel
    /// may read it now. Users' dirty lines reach memory and the kernel's
    /// stale lines go.
    pub fn sync_for_kernel<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        buffer: &SharedBuffer,
        offset: u32,
        len: u32,
    ) -> Result<(), CoherenceError> {
        self.hand_over(sys, buffer, offset, len, false)
    }

    fn hand_over<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        buffer: &SharedBuffer,
        offset: u32,
        len: u32,
        to_user: bool,
    ) -> Result<(), CoherenceError> {
        let pages = buffer.pages_of(offset, len)?;
        // Users the policy keeps uncached read memory, whatever the cache.
        if buffer.mode != SharingMode::HandOver
            || !(self.aliasing() || self.policy.uncaches_shared())
        {
            return Ok(());
        }
        if self.policy.flushes_everything() {
            self.whole_dcache(&mut sys.mem);
            return Ok(());
        }
        let end = u64::from(offset) + u64::from(len);
        for i in pages {
            let (pa, kva) = (buffer.frames[i], buffer.kernel[i]);
            if !self.users_apart_from_kernel(sys, pa, kva)? {
                continue;
            }
            // Only the lines of the bytes handed over, at the same offset
            // in every alias: a record costs its lines, not its page.
            let page_start = i as u64 * u64::from(PAGE);
            let from = u64::from(offset).max(page_start);
            let to = end.min(page_start + u64::from(PAGE));
            let part = Part {
                offset: (from - page_start) as u32,
                len: (to - from) as u32,
            };
            if to_user {
                // The kernel keeps its lines (it writes again next round).
                sys.mem.cache().clean_dcache_range(part.of(kva));
                self.counters.kernel_alias_cleans += 1;
                self.maintain_aliases_part(sys, pa, kva, LineOp::CleanInvalidate, part)?;
            } else {
                self.maintain_aliases_part(sys, pa, kva, LineOp::CleanInvalidate, part)?;
                sys.mem.cache().clean_invalidate_dcache_range(part.of(kva));
                self.counters.kernel_alias_cleans += 1;
            }
        }
        sys.mem.cache().drain_write_buffer();
        Ok(())
    }
}
