//! Who holds a copy of each granule, and settling a granule as soon as
//! nothing does (`Page::shares`).
//!
//! The model counts, per granule, the cache lines, branch target cache
//! entries and buffered stores and write-backs holding some of its bytes.
//! When the last goes while memory holds the granule's newest data, or
//! memory catches up while nothing holds it, the granule settles at its
//! newest version: nothing holds the versions it had, so renaming them
//! changes no comparison (as in a sweep). A fill from it afterwards is one
//! version, and the records stay few — the model's speed when the caches
//! thrash. The counts are checked against the caches and buffers at every
//! sweep in debug builds (`Sim::check_copy_counts`).

use super::{COPIES, DETAILED, G, GRANULES, IN_PLAY, Memory, PAGE, PENDING};

impl Memory {
    /// A store of `bytes` (1, 2 or 4, aligned) at `pa` that reaches
    /// memory at once, at `version` by `writer`: if its granule is settled
    /// and nothing holds a copy (the caller checked the discard records),
    /// memory takes the bytes, the granule settles at the store's version
    /// and this returns `true` (one page lookup for the whole store); else
    /// it does nothing.
    #[inline]
    pub fn store_settled(&mut self, pa: u32, bytes: &[u8], version: u64, writer: u128) -> bool {
        let p = self.at(pa);
        let (g, k) = (p / G, (p / G) % GRANULES);
        debug_assert!(p % G + bytes.len() <= G);
        // The store writes the page anyway: made here if absent.
        let page = self.page_mut(g);
        if page.shares[k] != 0 {
            // Copies, or records.
            return false;
        }
        let at = p % PAGE;
        crate::sim::copy(&mut page.data[at..at + bytes.len()], bytes);
        page.settle(k, version, writer);
        if self.watched.contains(&g) {
            self.watched_changed = true;
        }
        true
    }

    /// The physical address of granule `g`'s first byte.
    pub fn granule_pa(&self, g: usize) -> u32 {
        self.base + (g * G) as u32
    }

    /// The granules of the `len` bytes from `pa` (at least one).
    #[inline]
    pub fn granules(&self, pa: u32, len: usize) -> core::ops::Range<usize> {
        let p = self.at(pa);
        p / G..(p + len.max(1) - 1) / G + 1
    }

    /// One more copy (a cache line, branch target cache entry or buffered
    /// entry) holds bytes of
    /// granule `g`.
    #[inline]
    pub fn add_copy(&mut self, g: usize) {
        // At most every line of both caches and every branch target cache
        // entry: caches of 2^30 lines do not fit in the host's memory.
        let shares = &mut self.page_mut(g).shares[g % GRANULES];
        if *shares & PENDING != 0 {
            self.materialize_pending(g);
        }
        self.page_mut(g).shares[g % GRANULES] += 1;
    }

    /// One fewer holds bytes of granule `g`; returns whether none does
    /// now and it has records (a granule to try to settle).
    #[inline]
    pub fn drop_copy(&mut self, g: usize) -> bool {
        // The page exists: adding the copy made it.
        let shares = &mut self.page_mut(g).shares[g % GRANULES];
        debug_assert_ne!(*shares & COPIES, 0, "a copy dropped that was never added");
        *shares -= 1;
        *shares == IN_PLAY
    }

    /// Whether nothing holds bytes of granule `g` and it has records.
    #[inline]
    pub fn unshared_in_play(&self, g: usize) -> bool {
        self.page(g).shares[g % GRANULES] == IN_PLAY
    }

    /// A line fill: copies the `data.len()` bytes from `pa` (a line, inside
    /// one page) into `data` and counts the line as a copy of each of
    /// their granules; returns their version if they are all settled at
    /// one (memory is the truth there), else `None` (see
    /// [`Memory::fill_versions`]).
    #[inline]
    pub fn copy_line(&mut self, pa: u32, data: &mut [u8]) -> Option<u64> {
        let p = self.at(pa);
        if data.len() == G && p.is_multiple_of(G) {
            return self.copy_granule(p / G, data);
        }
        let (first, last) = (p / G, (p + data.len() - 1) / G);
        let mut page = self.page_mut(first);
        if (first..=last).any(|g| page.shares[g % GRANULES] & PENDING != 0) {
            for g in first..=last {
                self.materialize(g);
            }
            page = self.page_mut(first);
        }
        let off = p % PAGE;
        crate::sim::copy(data, &page.data[off..off + data.len()]);
        let state = page.granules[first % GRANULES].state;
        let mut settled = state & DETAILED == 0;
        for g in first..=last {
            page.shares[g % GRANULES] += 1;
            settled &= page.granules[g % GRANULES].state == state;
        }
        settled.then_some(state)
    }

    /// [`copy_line`](Self::copy_line) of a line that is one granule `g`
    /// (every preset's: 32-byte lines).
    #[inline(always)]
    fn copy_granule(&mut self, g: usize, data: &mut [u8]) -> Option<u64> {
        let k = g % GRANULES;
        let mut page = self.page_mut(g);
        if page.shares[k] & PENDING != 0 {
            self.materialize_pending(g);
            page = self.page_mut(g);
        }
        let off = k * G;
        crate::sim::copy(data, &page.data[off..off + G]);
        page.shares[k] += 1;
        let state = page.granules[k].state;
        (state & DETAILED == 0).then_some(state)
    }

    /// Every granule some copy (line, branch target cache or buffer entry) holds
    /// bytes of, with how many do (the model's books, which it checks
    /// against its caches in debug builds: `Sim::sweep_memory`).
    #[cfg(debug_assertions)]
    pub fn copy_counts(&self) -> std::collections::BTreeMap<usize, u32> {
        let mut counts = std::collections::BTreeMap::new();
        for (p, page) in self.pages.iter().enumerate() {
            let Some(page) = page else { continue };
            for (k, (granule, shares)) in page.granules.iter().zip(&page.shares).enumerate() {
                assert_eq!(
                    shares & IN_PLAY != 0,
                    granule.state & DETAILED != 0,
                    "granule {}'s in-play bit",
                    p * GRANULES + k
                );
                let g = p * GRANULES + k;
                assert_eq!(
                    shares & PENDING != 0,
                    self.pending.iter().any(|s| s.granule == g),
                    "granule {g}'s pending bit"
                );
                if shares & COPIES != 0 {
                    counts.insert(g, shares & COPIES);
                }
            }
        }
        counts
    }

    /// Settles granule `g` now if it has records and memory holds its
    /// newest data: the caller has checked that no copy of it is held
    /// anywhere (no line, buffer entry, branch target cache entry or
    /// discard record), so nothing holds its bytes' versions and the
    /// renaming changes no comparison (as in a [sweep](Self::sweep)). It
    /// settles at its newest version, not a fresh one: every byte's is at
    /// most that, and no copy can be older than its rename. Returns
    /// whether it settled.
    ///
    /// This keeps the records few on their own — a granule stored to and
    /// then no longer cached is settled as its last line goes — so that a
    /// line filled from it later is one version (`Cache::set_flat`), not a
    /// copy of 32 records: the model's throughput when the caches thrash.
    pub fn settle_in_step(&mut self, g: usize) -> bool {
        debug_assert_eq!(
            self.page(g).shares[g % GRANULES] & (COPIES | PENDING),
            0,
            "granule {g} settled while something holds it"
        );
        let Some(d) = self.detail(g) else {
            return false;
        };
        if !d.in_step() {
            return false;
        }
        let (version, newest_writer) = (d.newest(), d.newest_writer());
        if self.watched.contains(&g) {
            self.watched_changed = true;
        }
        let page = self.page_mut(g);
        let granule = &mut page.granules[g % GRANULES];
        let index = (granule.state & !DETAILED) as usize;
        granule.state = version;
        if let Some(writer) = newest_writer {
            granule.writer = writer;
        }
        // The truth did not change: a stamp of an earlier change stays.
        granule.changed = granule.changed.max(version);
        page.shares[g % GRANULES] &= !IN_PLAY;
        self.details[index].granule = u32::MAX;
        self.free.push(index as u32);
        self.live -= 1;
        true
    }
}
