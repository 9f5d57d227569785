//! A granule whose only change since it settled is one buffered store:
//! its records, without a [`Detail`](super::detail::Detail).
//!
//! On a CPU with a write buffer (the ARM926 preset) a store that misses
//! the D-cache goes to the buffer, and its granule's truth runs ahead of
//! memory until the store lands — usually at the next D linefill, which
//! drains the buffer. Most such granules are held by nothing else, and
//! settle again as the store lands (`Memory::settle_in_step`). Making
//! per-byte records for that short life (1 KiB, of which 256 bytes
//! written) and settling them again was a third of a thrashing
//! workload's time; a pending store is its store's bytes, version and
//! writer. It lasts while the granule is held by nothing but that store:
//! a copy of the granule made meanwhile (a fill, a fetch, another
//! buffered store, a DMA write) turns it into records first
//! (`Memory::materialize`).

use super::{G, GRANULES, Memory, PENDING};

/// The store a [`PENDING`] granule's truth is ahead of
/// memory by.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingStore {
    /// The granule.
    pub granule: usize,
    /// Its bytes in the granule.
    pub off: u8,
    pub len: u8,
    /// Its version and packed writer.
    pub version: u64,
    pub writer: u128,
}

impl PendingStore {
    /// Whether it stored byte `k` of its granule.
    #[inline]
    pub fn covers(&self, k: usize) -> bool {
        (usize::from(self.off)..usize::from(self.off + self.len)).contains(&k)
    }
}

impl Memory {
    /// The pending store of granule `g`, if it is [`PENDING`].
    #[inline]
    /// Debug builds: each pending store's address, length and version.
    #[cfg(debug_assertions)]
    pub fn pending_stores(&self) -> impl Iterator<Item = (u32, usize, u64)> + '_ {
        self.pending.iter().map(|p| {
            (
                self.granule_pa(p.granule) + u32::from(p.off),
                usize::from(p.len),
                p.version,
            )
        })
    }

    pub(super) fn pending(&self, g: usize) -> Option<&PendingStore> {
        // Empty but on a CPU with a write buffer: no page to look at.
        if self.pending.is_empty() || self.page(g).shares[g % GRANULES] & PENDING == 0 {
            return None;
        }
        self.pending.iter().find(|p| p.granule == g)
    }

    /// Turns a [`PENDING`] granule into records (something is about to
    /// copy or change it); does nothing to any other.
    #[inline]
    pub(super) fn materialize(&mut self, g: usize) {
        if !self.pending.is_empty() && self.page(g).shares[g % GRANULES] & PENDING != 0 {
            self.materialize_pending(g);
        }
    }

    #[cold]
    pub(super) fn materialize_pending(&mut self, g: usize) {
        let at = self
            .pending
            .iter()
            .position(|p| p.granule == g)
            .expect("a pending granule has its store");
        let p = self.pending.swap_remove(at);
        self.page_mut(g).shares[g % GRANULES] &= !PENDING;
        let state = self.state(g);
        self.make_detail(g, state).set_truth(
            usize::from(p.off),
            usize::from(p.len),
            p.version,
            p.writer,
            false,
        );
    }

    /// Granule `g`'s pending store, at `at` in `pending`, lands (nothing
    /// else touched the granule, or it would have records): memory holds
    /// the truth again, and the granule settles at the store's version, as
    /// records would. Returns the store.
    #[inline(always)]
    pub(super) fn land_pending(&mut self, g: usize, at: usize) -> PendingStore {
        let p = self.pending.swap_remove(at);
        let page = self.page_mut(g);
        page.shares[g % GRANULES] &= !PENDING;
        page.granules[g % GRANULES].state = p.version;
        page.granules[g % GRANULES].writer = p.writer;
        p
    }

    /// A store of `len` bytes (1, 2 or 4, aligned) at `pa`, at `version`
    /// by `writer`, that goes to the write buffer: if its granule is
    /// settled and held by nothing, it becomes [`PENDING`] on this store,
    /// which counts as its one copy, and this returns `true`; else it
    /// does nothing (the caller sets the truth and counts the copy).
    #[inline]
    pub fn pend_store(&mut self, pa: u32, len: usize, version: u64, writer: u128) -> bool {
        let p = self.at(pa);
        let (g, off) = (p / G, p % G);
        debug_assert!(off + len <= G);
        // The store lands in the page: made here if absent.
        let page = self.page_mut(g);
        if page.shares[g % GRANULES] != 0 {
            return false;
        }
        page.granules[g % GRANULES].changed = version;
        page.shares[g % GRANULES] = PENDING | 1;
        if self.watched.contains(&g) {
            self.watched_changed = true;
        }
        self.pending.push(PendingStore {
            granule: g,
            off: off as u8,
            len: len as u8,
            version,
            writer,
        });
        true
    }

    /// Where in `pending` granule `g`'s store is, if it is [`PENDING`].
    #[inline]
    pub(super) fn pending_store_at(&self, g: usize) -> Option<usize> {
        if self.pending.is_empty() || self.page(g).shares[g % GRANULES] & PENDING == 0 {
            return None;
        }
        self.pending.iter().position(|p| p.granule == g)
    }
}
