//! Frames that some mapping reaches uncached, and the kernel's cached
//! accesses to them.
//!
//! ```text
//!   uncached mapping    store ──▶ write buffer ──▶ memory      (no line looked up)
//!   kernel, cached      load  ──▶ line? ── hit: whatever the line holds
//!                                     └─ miss: memory (the buffer may still
//!                                        hold the uncached store)
//! ```
//!
//! An uncached shared buffer ([`SharingMode::Uncached`](super::shared::SharingMode)),
//! a page `make_coherent` made uncacheable and a shared page under
//! [`Policy::uncaches_shared`] are written through mappings that neither
//! look up nor update the cache. A line of such a frame cached through any
//! other alias — the kernel's linear map, a window — is stale from the
//! next uncached store on, and a cached read that misses may still pass a
//! store waiting in the write buffer: the ARM ARM gives no ordering between
//! accesses to one location through mismatched memory attributes without
//! a barrier (the ARM ARM's rules on mismatched memory attributes; the
//! barrier here is the write-buffer drain, CP15 c7, c10, 4).
//!
//! So every cached kernel access to such a frame — the copy of
//! copy-on-write, a [`Kmap`](super::Kmap) — is bracketed: the write buffer
//! drained and the alias's lines dropped before (a line left by anyone is
//! stale), and the alias's lines written back and dropped after (none may
//! outlive the access). Linux never meets this: its only uncached user
//! mappings are device and DMA memory, which it does not copy on write.

use super::*;

impl<P: Policy> Engine<P> {
    /// True if some mapping may reach frame `pa` without the cache: an
    /// uncached shared buffer's page, a page made uncacheable by
    /// [`make_coherent`](Engine::make_coherent), or a shared page the
    /// policy keeps uncached.
    pub(super) fn mapped_uncached<K: FrameKnowledge>(
        &self,
        k: &K,
        pa: PhysAddr,
    ) -> Result<bool, FrameError> {
        let flags = k.frame_flags(pa)?;
        if flags.intersects(PageFlags::ALWAYS_UNCACHED | PageFlags::UNCACHED) {
            return Ok(true);
        }
        Ok(self.policy.uncaches_shared() && k.user_mappings(pa)?.any(|m| m.shared))
    }

    /// Before a cached kernel access at `va` to a frame mapped uncached:
    /// uncached stores reach memory, and no line of the alias is left to
    /// answer the access (a load through a line that holds no dirty data
    /// of anyone's: the drop loses nothing).
    pub(super) fn before_cached_access<M: TableMemory>(&mut self, mem: &mut M, va: VirtAddr) {
        let cpu = mem.cache();
        cpu.drain_write_buffer();
        cpu.clean_invalidate_dcache_range(page_range(va));
        cpu.drain_write_buffer();
        self.counters.kernel_alias_cleans += 1;
    }

    /// After a cached kernel access at `va` to a frame mapped uncached: what
    /// it wrote reaches memory, where the uncached mappings read, and no
    /// line of it stays to go stale at their next store.
    pub(super) fn after_cached_access<M: TableMemory>(&mut self, mem: &mut M, va: VirtAddr) {
        let cpu = mem.cache();
        cpu.clean_invalidate_dcache_range(page_range(va));
        cpu.drain_write_buffer();
        self.counters.kernel_alias_cleans += 1;
    }
}
