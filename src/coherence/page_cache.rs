//! Kernel writes to page-cache pages (`write()` to a file, a driver's
//! read into the page cache): the [`PageCacheWrite`] guard.
//!
//! ```text
//!   page_cache_write(pa)   users map pa writable in lines apart from the
//!                          kernel's? flush_dcache_page now (their dirty
//!                          lines reach memory and leave)
//!   guard.va()             the kernel stores through its linear map
//!   finish() / drop        flush_dcache_page (deferred if nobody maps pa)
//! ```
//!
//! `flush_dcache_page` alone is the *after* half. On a cache whose user
//! and kernel aliases hold separate lines (VIVT, VIPT at different
//! colours) a user's dirty line of the page, written back by that after
//! half, lands over the kernel's newer bytes: a lost write. Linux's
//! `generic_perform_write` calls `flush_dcache_page` before the copy too
//! when the mapping is writably mapped (`mapping_writably_mapped`, mm/filemap.c);
//! the guard makes that bracket impossible to forget.

use super::*;

/// A kernel write to page-cache page `pa` in progress, through the
/// kernel's linear map; see [`Engine::page_cache_write`]. Borrowing the
/// engine and the memory system, no other engine call can run while it
/// lives. The maintenance owed after the write happens in
/// [`finish`](Self::finish), which reports errors, or on drop.
pub struct PageCacheWrite<'a, P: Policy, K: FrameKnowledge> {
    engine: &'a mut Engine<P>,
    k: &'a mut K,
    pa: PhysAddr,
    done: bool,
}

impl<P: Policy> Engine<P> {
    /// Starts a kernel write to page-cache page `pa` (a frame the kernel
    /// writes through its linear map while users may map it): does the
    /// maintenance owed before the write and returns the guard whose end
    /// does [`flush_dcache_page`](Self::flush_dcache_page).
    ///
    /// # Example
    /// ```
    /// use vacmm::addr::PhysAddr;
    /// use vacmm::coherence::{CoherenceError, Engine};
    /// use vacmm::mm::space::MemorySystem;
    /// use vacmm::mmu::TableMemory;
    ///
    /// /// `write()` of one word to the file page the page cache holds in `frame`.
    /// fn write_word<M: TableMemory, F>(
    ///     engine: &mut Engine,
    ///     sys: &mut MemorySystem<M, F>,
    ///     frame: PhysAddr,
    ///     offset: u32,
    ///     value: u32,
    /// ) -> Result<(), CoherenceError> {
    ///     let write = engine.page_cache_write(sys, frame)?;
    ///     let at = (write.va().as_u32() + offset) as *mut u32;
    ///     // SAFETY: the kernel's linear map of `frame`; `offset` is in the page.
    ///     unsafe { at.write_volatile(value) };
    ///     write.finish()
    /// }
    /// ```
    pub fn page_cache_write<'a, K: FrameKnowledge>(
        &'a mut self,
        k: &'a mut K,
        pa: PhysAddr,
    ) -> Result<PageCacheWrite<'a, P, K>, CoherenceError> {
        if self.writably_mapped_apart_from_kernel(k, pa)? {
            self.flush_dcache_page(k, pa)?;
        }
        Ok(PageCacheWrite {
            engine: self,
            k,
            pa,
            done: false,
        })
    }

    /// True if a user maps `pa` writable in lines the kernel alias does
    /// not share (or uncached, writing memory under the kernel's lines):
    /// only then can a user's write meet the kernel's.
    fn writably_mapped_apart_from_kernel<K: FrameKnowledge>(
        &self,
        k: &K,
        pa: PhysAddr,
    ) -> Result<bool, FrameError> {
        let kva = self.kernel_va(pa);
        let uncached = self.policy.uncaches_shared();
        Ok(k.user_mappings(pa)?
            .any(|m| m.writable && ((uncached && m.shared) || self.separate_lines(m.va, kva))))
    }
}

impl<P: Policy, K: FrameKnowledge> PageCacheWrite<'_, P, K> {
    /// The kernel address to write through: the linear map's.
    pub fn va(&self) -> VirtAddr {
        self.engine.kernel_va(self.pa)
    }

    /// The frame.
    pub fn pa(&self) -> PhysAddr {
        self.pa
    }

    /// The memory (for kernels whose accesses go through it, like the
    /// `sim` model).
    pub fn mem(&mut self) -> &mut K::Memory {
        self.k.memory()
    }

    /// Ends the write: [`Engine::flush_dcache_page`].
    pub fn finish(mut self) -> Result<(), CoherenceError> {
        self.complete()
    }

    fn complete(&mut self) -> Result<(), CoherenceError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        self.engine.flush_dcache_page(self.k, self.pa)
    }
}

impl<P: Policy, K: FrameKnowledge> Drop for PageCacheWrite<'_, P, K> {
    fn drop(&mut self) {
        // Errors here are flush_dcache_page's (a frame the database does
        // not know); `finish` reports them.
        let _ = self.complete();
    }
}
