//! What the engine needs to know about a frame, and who knows it: the
//! seam between the coherence policy and a kernel's own memory manager.
//!
//! ```text
//!   kernel's mm (VMAs, page cache,        engine (policy: what to flush,
//!   reverse map, frame allocator)         when to uncache, which window)
//!   ───────────────────────────────       ────────────────────────────────
//!   user_mappings(pa)              ◀────  flush_dcache_page, kmap,
//!   frame_flags / set_frame_flags  ◀────  update_mmu_cache, switches, ...
//!   memory()  (tables + cache)     ◀────  every cache and window operation
//!   set_memory_type(space, va, t)  ◀────  make_coherent only (MemoryTypes)
//! ```
//!
//! Linux draws the line in the same place: `flush_dcache_page` walks the
//! kernel's own reverse map (`flush_dcache_mmap_lock`, the `i_mmap` tree)
//! and keeps its one bit of state in the page (`PG_dcache_clean`,
//! `PG_arch_1`); the architecture code only decides what to flush
//! (arch/arm/mm/flush.c). vacmm's own `mm` is one implementation
//! ([`MemorySystem`] for the frame facts, [`SpaceView`] — the system and
//! one address space — for memory types); a kernel with its own VMAs and
//! page cache brings another, and calls the engine's frame-level entry
//! points ([`Engine::user_page_mapped`](super::Engine::user_page_mapped)
//! and the others listed in `docs/embedding.md`).

use crate::addr::{PhysAddr, VirtAddr};
use crate::mm::frames::{FrameError, Mapping, PageFlags, SpaceId};
use crate::mm::space::{AddressSpace, MemorySystem, SpaceError};
use crate::mmu::{MemoryType, TableMemory};

use super::CoherenceError;

/// One user mapping of a frame, as the kernel's reverse map records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserMapping {
    /// The address space it lives in.
    pub space: SpaceId,
    /// Its page-aligned user address.
    pub va: VirtAddr,
    /// The mapping permits user writes.
    pub writable: bool,
    /// A shared mapping (`MAP_SHARED`, a kernel↔user buffer): never copied
    /// on write. Policies that keep shared pages uncached look at it
    /// ([`Policy::uncaches_shared`](super::Policy::uncaches_shared));
    /// vacmm's own policy does not.
    pub shared: bool,
}

impl From<&Mapping> for UserMapping {
    fn from(m: &Mapping) -> Self {
        UserMapping {
            space: m.space,
            va: m.va,
            writable: m.writable,
            shared: m.shared,
        }
    }
}

/// What the kernel knows about each frame that user space can map, and
/// how the engine reaches the cache and the kernel's tables.
///
/// The engine asks; it never keeps a copy of the answers between calls,
/// so the kernel's structures stay the one truth. The per-frame flags are
/// the engine's own state, which the kernel stores for it (one byte a
/// frame; a fresh frame starts at [`PageFlags::empty`]).
///
/// # Example
/// A kernel with a fixed table of frames, each mapped by at most one
/// process at one address (the minimal kernel in `docs/embedding.md`
/// has the full version):
/// ```
/// use vacmm::addr::{PhysAddr, VirtAddr};
/// use vacmm::coherence::{FrameKnowledge, UserMapping};
/// use vacmm::mm::frames::{FrameError, PageFlags, SpaceId};
/// use vacmm::mmu::TableMemory;
///
/// struct Frame {
///     flags: PageFlags,
///     user: Option<UserMapping>,
/// }
///
/// struct Vm<M> {
///     mem: M,
///     base: PhysAddr,
///     frames: Vec<Frame>,
/// }
///
/// impl<M> Vm<M> {
///     fn frame(&self, pa: PhysAddr) -> Result<&Frame, FrameError> {
///         let i = pa.as_u32().wrapping_sub(self.base.as_u32()) / 4096;
///         self.frames.get(i as usize).ok_or(FrameError::OutOfRange {
///             pa,
///             first: self.base,
///             end: u64::from(self.base.as_u32()) + 4096 * self.frames.len() as u64,
///         })
///     }
/// }
///
/// impl<M: TableMemory> FrameKnowledge for Vm<M> {
///     type Memory = M;
///     fn memory(&mut self) -> &mut M {
///         &mut self.mem
///     }
///     fn user_mappings(
///         &self,
///         pa: PhysAddr,
///     ) -> Result<impl Iterator<Item = UserMapping> + '_, FrameError> {
///         Ok(self.frame(pa)?.user.into_iter())
///     }
///     fn frame_flags(&self, pa: PhysAddr) -> Result<PageFlags, FrameError> {
///         Ok(self.frame(pa)?.flags)
///     }
///     fn set_frame_flags(&mut self, pa: PhysAddr, flags: PageFlags) -> Result<(), FrameError> {
///         self.frame(pa)?;
///         let i = (pa.as_u32() - self.base.as_u32()) / 4096;
///         self.frames[i as usize].flags = flags;
///         Ok(())
///     }
/// }
/// ```
pub trait FrameKnowledge {
    /// How the kernel reaches its page tables, and through it the cache
    /// ([`TableMemory::cache`]): the engine's maintenance goes there, and
    /// its kernel windows are mapped there.
    type Memory: TableMemory;

    /// The tables' memory and the cache.
    fn memory(&mut self) -> &mut Self::Memory;

    /// Every user mapping of frame `pa` (any order; the kernel's own
    /// mappings are not listed: the engine knows its linear map and its
    /// windows).
    ///
    /// # Errors
    /// A frame the kernel does not manage.
    fn user_mappings(
        &self,
        pa: PhysAddr,
    ) -> Result<impl Iterator<Item = UserMapping> + '_, FrameError>;

    /// The engine's state of frame `pa`, as last set: empty for a frame
    /// never seen, and again once the kernel frees the frame and hands it
    /// out anew (it resets it with `set_frame_flags(pa, empty)`). The
    /// flags are only true while every write to the frame goes through
    /// the engine's calls (`page_cache_write`, `kmap`, `clear_user_page`,
    /// `copy_user_page`, `flush_dcache_page` after a write of its own):
    /// [`PageFlags::CODE_SYNCED`] lets an executable mapping skip the
    /// D-cache clean.
    ///
    /// # Errors
    /// A frame the kernel does not manage.
    fn frame_flags(&self, pa: PhysAddr) -> Result<PageFlags, FrameError>;

    /// Stores the engine's state of frame `pa`.
    ///
    /// # Errors
    /// A frame the kernel does not manage (nothing stored).
    fn set_frame_flags(&mut self, pa: PhysAddr, flags: PageFlags) -> Result<(), FrameError>;
}

/// What [`Engine::make_coherent`](super::Engine::make_coherent) needs
/// besides: reading and changing the memory type of one user mapping, to
/// make a page that one space maps at two colours uncacheable while the
/// conflict lasts (NetBSD's `PVF_NC`).
///
/// A kernel that never maps one frame twice in one space on an aliasing
/// cache never meets the conflict, and the engine never calls these; it
/// still implements them (an error such as
/// [`SpaceError::NoMapping`] for a page it does not map is enough).
pub trait MemoryTypes: FrameKnowledge {
    /// The memory type of resident page `va` of `space`.
    ///
    /// # Errors
    /// `va` not mapped in `space`, or its entry unreadable.
    fn memory_type(&mut self, space: SpaceId, va: VirtAddr) -> Result<MemoryType, CoherenceError>;

    /// Rewrites the memory type of resident page `va` of `space` and
    /// flushes its TLB entry (the cache maintenance the change needs is the
    /// engine's).
    ///
    /// # Errors
    /// As [`memory_type`](Self::memory_type); nothing changed.
    fn set_memory_type(
        &mut self,
        space: SpaceId,
        va: VirtAddr,
        memory: MemoryType,
    ) -> Result<(), CoherenceError>;
}

impl<M: TableMemory, F> FrameKnowledge for MemorySystem<M, F> {
    type Memory = M;

    fn memory(&mut self) -> &mut M {
        &mut self.mem
    }

    fn user_mappings(
        &self,
        pa: PhysAddr,
    ) -> Result<impl Iterator<Item = UserMapping> + '_, FrameError> {
        Ok(self.frames.user_mappings(pa)?.map(UserMapping::from))
    }

    fn frame_flags(&self, pa: PhysAddr) -> Result<PageFlags, FrameError> {
        Ok(self.frames.state(pa)?.flags())
    }

    fn set_frame_flags(&mut self, pa: PhysAddr, flags: PageFlags) -> Result<(), FrameError> {
        *self.frames.flags_mut(pa)? = flags;
        Ok(())
    }
}

/// vacmm's memory system with one of its address spaces: what
/// [`MemoryTypes`] needs (the space's table), for the engine calls that
/// take a space.
pub struct SpaceView<'a, M, F> {
    /// The memory system.
    pub sys: &'a mut MemorySystem<M, F>,
    /// The space whose mappings may change.
    pub space: &'a mut AddressSpace,
}

impl<M: TableMemory, F> FrameKnowledge for SpaceView<'_, M, F> {
    type Memory = M;

    fn memory(&mut self) -> &mut M {
        &mut self.sys.mem
    }

    fn user_mappings(
        &self,
        pa: PhysAddr,
    ) -> Result<impl Iterator<Item = UserMapping> + '_, FrameError> {
        self.sys.user_mappings(pa)
    }

    fn frame_flags(&self, pa: PhysAddr) -> Result<PageFlags, FrameError> {
        self.sys.frame_flags(pa)
    }

    fn set_frame_flags(&mut self, pa: PhysAddr, flags: PageFlags) -> Result<(), FrameError> {
        self.sys.set_frame_flags(pa, flags)
    }
}

impl<M: TableMemory, F> MemoryTypes for SpaceView<'_, M, F> {
    fn memory_type(&mut self, space: SpaceId, va: VirtAddr) -> Result<MemoryType, CoherenceError> {
        self.own(space, va)?;
        Ok(self.space.memory_type(self.sys, va)?)
    }

    fn set_memory_type(
        &mut self,
        space: SpaceId,
        va: VirtAddr,
        memory: MemoryType,
    ) -> Result<(), CoherenceError> {
        self.own(space, va)?;
        Ok(self.space.set_memory_type(self.sys, va, memory)?)
    }
}

impl<M, F> SpaceView<'_, M, F> {
    /// The engine changes only the space it was given.
    fn own(&self, space: SpaceId, va: VirtAddr) -> Result<(), CoherenceError> {
        if space == self.space.id() {
            Ok(())
        } else {
            Err(SpaceError::NoMapping { va }.into())
        }
    }
}

/// Sets `add` in frame `pa`'s flags; the flags as they were.
pub(super) fn set_flags<K: FrameKnowledge + ?Sized>(
    k: &mut K,
    pa: PhysAddr,
    add: PageFlags,
) -> Result<PageFlags, FrameError> {
    let old = k.frame_flags(pa)?;
    k.set_frame_flags(pa, old | add)?;
    Ok(old)
}

/// Clears `remove` from frame `pa`'s flags; the flags as they were.
pub(super) fn clear_flags<K: FrameKnowledge + ?Sized>(
    k: &mut K,
    pa: PhysAddr,
    remove: PageFlags,
) -> Result<PageFlags, FrameError> {
    let old = k.frame_flags(pa)?;
    k.set_frame_flags(pa, old - remove)?;
    Ok(old)
}
