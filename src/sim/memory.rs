//! Physical memory and the oracle's truth, kept per byte but stored per
//! 32-byte granule, so that a model of a guest's whole RAM costs about
//! 2 bytes per byte the guest touches instead of 33 (data 1, and per
//! 32-byte granule a state word, a writer, a change stamp and a count of
//! its copies: 36 bytes).
//!
//! Per byte the oracle needs memory's version (which store the byte in
//! memory came from), the truth's version (the newest store to it) and the
//! truth's writer. Most of memory is *settled*: no cache, buffer or
//! pending discard holds a copy of it, and memory holds the newest data.
//! A settled byte's versions matter only in comparison with the copies
//! made of it later, and those copies are made from memory. So a settled
//! granule is stored as one fresh version — newer than every version
//! before it, which all its bytes, in memory and truth, take at once — and
//! one writer: that of its newest store. Only granules in play (stored to
//! while something held a copy, or with memory behind the truth) keep
//! per-byte records ([`Detail`], 1 KiB each, of which bringing
//! a granule into play writes only the truths: `memory/detail.rs`).
//!
//! A granule settles as soon as it can: the model counts the copies of
//! each granule (cache lines, branch target cache entries, buffered
//! stores and write-backs), and when the last one goes, or memory catches
//! up with a granule nothing holds, the granule settles at its newest
//! version ([`Memory::settle_in_step`]); a store that reaches memory at
//! once leaves a granule nothing holds settled ([`Memory::store_settled`]).
//! So a line filled later is one version, not a copy of 32 records, and
//! the records stay few — the model's speed when the caches thrash, where
//! most granules are stored to while no cache holds them. Sweeps
//! ([`Memory::sweep`]) settle what is left (granules a discard record
//! holds, and those whose settling the model does not try: a DMA write,
//! a declared death); the model runs one when the records reach their
//! budget, between operations, telling it which granules have copies.
//! What settling forgets:
//! - the exact versions of settled bytes (renamed to one version, fresh
//!   in a sweep, the newest in an eager settling: nothing holds the old
//!   ones, so no comparison changes);
//! - per-byte writers of settled bytes: the granule keeps its newest
//!   store's, so a byte nobody stored to since it settled is named by its
//!   neighbour's store (and a byte never written, which was
//!   [`Writer::Initial`](super::Writer::Initial), by the granule's newest
//!   store). Only reports that name the truth of such a byte show it: the
//!   `last_writer` and `last_version` of a
//!   [`StaleTlbEntry`](super::ViolationKind::StaleTlbEntry) or
//!   [`LiveAlias`](super::ViolationKind::LiveAlias) report, and of a VIVT
//!   hit on another page's line, whose kind also follows that writer's
//!   space (`CrossSpaceLeak` when it is another space's, else
//!   `RemappedLineHit`). That such a hit is reported does not change;
//!   every stale read, lost write or stale write-back is found and named
//!   as before: their newest version was stored after the granule settled.

use std::boxed::Box;
use std::vec::Vec;

use self::detail::{Detail, first_not};
use self::pending::PendingStore;

mod detail;
mod pending;
mod shares;

/// Bytes per granule.
pub(super) const GRANULE: u32 = 32;
const G: usize = GRANULE as usize;

/// In a granule's state word: the rest is an index into `details`.
const DETAILED: u64 = 1 << 63;

/// Records before the first sweep; later sweeps wait until the records
/// have doubled since the last one, so sweeping stays linear overall.
pub(super) const DEFAULT_BUDGET: usize = 2048;

/// Bytes per storage page: memory and its tables are allocated a page at
/// a time, on the first write to it or the first copy made of it (a line
/// filled from it counts in its `shares`).
const PAGE: usize = 4096;
/// Granules per storage page.
const GRANULES: usize = PAGE / G;

/// One page of memory and its granules' tables. A page never written is
/// absent and reads as [`UNTOUCHED`]: all zero, at version 0 by
/// [`Writer::Initial`](super::Writer::Initial) (packed as 0).
struct Page {
    data: [u8; PAGE],
    granules: [Granule; GRANULES],
    /// Per granule: how many cache lines, branch target cache entries and
    /// buffered stores and write-backs hold a copy of some of its bytes
    /// (kept by the model as they come and go: `Memory::copy_line`,
    /// `Sim::add_copies`, `Sim::drop_copies`), and [`IN_PLAY`] while it
    /// has records. A granule whose last copy goes is settled at once if
    /// memory holds its newest data ([`Memory::settle_in_step`]). Apart
    /// from the granules' other records: an eviction reads the victim's
    /// word, long unused, and a small array of them stays in the host's
    /// cache.
    shares: [u32; GRANULES],
}

/// In a granule's `shares` word: it has records.
const IN_PLAY: u32 = 1 << 31;
/// In a granule's `shares` word: it is settled but for one buffered store
/// (`memory/pending.rs`), its only copy.
const PENDING: u32 = 1 << 30;
/// The count of copies in a `shares` word.
const COPIES: u32 = PENDING - 1;

/// A granule's records in its page, side by side: most accesses read
/// several of them, and one host cache line then serves them all.
#[derive(Clone, Copy)]
struct Granule {
    /// Its settled version, or `DETAILED | index`.
    state: u64,
    /// The version of the last change to its truth (or of its settling):
    /// a copy found fresh at a later version still is.
    changed: u64,
    /// Settled: its newest store's packed writer.
    writer: u128,
}

const ZERO_PAGE: Page = Page {
    data: [0; PAGE],
    granules: [Granule {
        state: 0,
        changed: 0,
        writer: 0,
    }; GRANULES],
    shares: [0; GRANULES],
};
static UNTOUCHED: Page = ZERO_PAGE;

impl Page {
    /// Settles its granule `k` at `version` by `writer` (its records, if
    /// any, are the caller's to free).
    #[inline]
    fn settle(&mut self, k: usize, version: u64, writer: u128) {
        self.granules[k].state = version;
        self.granules[k].changed = version;
        self.granules[k].writer = writer;
        self.shares[k] &= !IN_PLAY;
    }
}

/// A page on its first write or copy: out of the access path (a page's 8 KiB
/// constant made every caller's code long).
#[cold]
#[inline(never)]
fn new_page() -> Box<Page> {
    Box::new(ZERO_PAGE)
}

/// Physical memory: data, and per byte memory's version, the truth's
/// version and the truth's writer.
///
/// Stored in pages allocated on first write or copy, not in flat tables: a model
/// is built for every sequence of the bounded exhaustive check and every
/// fuzz input, and flat zeroed tables (16 MiB for the test machine's
/// 8 MiB) cost a `memset` each time the allocator hands back memory it
/// had before, most of such a run's time.
pub(super) struct Memory {
    /// The physical address of the first byte.
    base: u32,
    /// Bytes modelled.
    len: usize,
    pages: Vec<Option<Box<Page>>>,
    details: Vec<Detail>,
    free: Vec<u32>,
    /// The store of each [`PENDING`] granule (as few as the write buffer
    /// holds stores).
    pending: Vec<PendingStore>,
    /// Records in use.
    live: usize,
    /// The next sweep runs at this many records.
    sweep_at: usize,
    budget: usize,
    /// The granules [watched](Self::watch) for a truth change, and whether
    /// one came.
    watched: core::ops::Range<usize>,
    watched_changed: bool,
}

impl Memory {
    /// `bytes` of memory from physical address `base` (the caller checks
    /// that it fits below 4 GiB), all zero, at version 0 by
    /// [`Writer::Initial`](super::Writer::Initial). Nothing is allocated
    /// but the page index: pages come on their first write or copy.
    pub fn new(base: u32, bytes: usize) -> Self {
        let mut pages = Vec::new();
        pages.resize_with(bytes.div_ceil(PAGE), || None);
        Memory {
            base,
            len: bytes,
            pages,
            details: Vec::new(),
            free: Vec::new(),
            pending: Vec::new(),
            live: 0,
            sweep_at: DEFAULT_BUDGET,
            budget: DEFAULT_BUDGET,
            watched: 0..0,
            watched_changed: true,
        }
    }

    /// Sweeps once this many records are in use (0: before every store).
    pub fn set_budget(&mut self, records: usize) {
        self.budget = records;
        self.sweep_at = records;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn base(&self) -> u32 {
        self.base
    }

    /// Byte `pa`'s offset in the tables (the caller checked it is inside).
    #[inline]
    fn at(&self, pa: u32) -> usize {
        (pa - self.base) as usize
    }

    /// The page holding granule `g`, or [`UNTOUCHED`].
    #[inline]
    fn page(&self, g: usize) -> &Page {
        self.pages[g / GRANULES].as_deref().unwrap_or(&UNTOUCHED)
    }

    /// The page holding granule `g`, allocated if it was absent.
    #[inline]
    fn page_mut(&mut self, g: usize) -> &mut Page {
        let slot = &mut self.pages[g / GRANULES];
        if slot.is_none() {
            *slot = Some(new_page());
        }
        slot.as_deref_mut().expect("allocated above")
    }

    #[inline]
    fn state(&self, g: usize) -> u64 {
        self.page(g).granules[g % GRANULES].state
    }

    /// Settles granule `g` at `version` by `writer`.
    fn settle(&mut self, g: usize, version: u64, writer: u128) {
        self.page_mut(g).settle(g % GRANULES, version, writer);
    }

    /// Memory's bytes from `pa`: `len` of them, inside one page (every
    /// caller reads a line, a word or a page).
    pub fn data(&self, pa: u32, len: usize) -> &[u8] {
        let p = self.at(pa);
        let off = p % PAGE;
        &self.page(p / G).data[off..off + len]
    }

    /// Memory's bytes from `pa` into `out`, across pages.
    pub fn read(&self, pa: u32, out: &mut [u8]) {
        for (p, at, n) in Self::page_pieces(self.at(pa), out.len()) {
            let off = p % PAGE;
            out[at..at + n].copy_from_slice(&self.page(p / G).data[off..off + n]);
        }
    }

    /// Puts `bytes` in memory from `pa`, across pages (versions are the
    /// caller's).
    #[inline(always)]
    pub fn write(&mut self, pa: u32, bytes: &[u8]) {
        let p = self.at(pa);
        let off = p % PAGE;
        if off + bytes.len() <= PAGE {
            // One page: every store and write-back (inlined: a call was a
            // tenth of a buffered store's cost).
            super::copy(
                &mut self.page_mut(p / G).data[off..off + bytes.len()],
                bytes,
            );
            return;
        }
        self.write_pages(p, bytes);
    }

    /// [`write`](Self::write) across pages (DMA).
    #[inline(never)]
    fn write_pages(&mut self, p: usize, bytes: &[u8]) {
        for (p, at, n) in Self::page_pieces(p, bytes.len()) {
            let off = p % PAGE;
            self.page_mut(p / G).data[off..off + n].copy_from_slice(&bytes[at..at + n]);
        }
    }

    /// The page-sized pieces of `len` bytes at offset `start`: (offset,
    /// offset in the range, bytes).
    fn page_pieces(start: usize, len: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        let mut done = 0;
        core::iter::from_fn(move || {
            (done < len).then(|| {
                let p = start + done;
                let n = (PAGE - p % PAGE).min(len - done);
                let piece = (p, done, n);
                done += n;
                piece
            })
        })
    }

    /// The granule-sized pieces of `len` bytes at `pa`: (granule, offset
    /// in it, offset in the range, bytes).
    fn pieces(start: usize, len: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        let mut done = 0;
        core::iter::from_fn(move || {
            (done < len).then(|| {
                let p = start + done;
                let (g, off) = (p / G, p % G);
                let n = (G - off).min(len - done);
                let piece = (g, off, done, n);
                done += n;
                piece
            })
        })
    }

    fn detail(&self, g: usize) -> Option<&Detail> {
        let state = self.state(g);
        (state & DETAILED != 0).then(|| &self.details[(state & !DETAILED) as usize])
    }

    /// Granule `g`'s records, made from its settled state if it has none.
    /// A [`PENDING`] granule must have been materialized.
    fn detail_mut(&mut self, g: usize) -> &mut Detail {
        debug_assert!(self.pending(g).is_none());
        let state = self.state(g);
        if state & DETAILED != 0 {
            return &mut self.details[(state & !DETAILED) as usize];
        }
        self.make_detail(g, state)
    }

    /// Per-byte records for settled granule `g` (at `state`).
    fn make_detail(&mut self, g: usize, state: u64) -> &mut Detail {
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.details.push(Detail::new());
                self.details.len() - 1
            }
        };
        self.live += 1;
        let page = self.page_mut(g);
        page.granules[g % GRANULES].state = DETAILED | index as u64;
        page.shares[g % GRANULES] |= IN_PLAY;
        let d = &mut self.details[index];
        d.start(g as u32, state);
        d
    }

    /// The packed writer of byte `k` of granule `g`, whose records are `d`.
    fn writer_in(&self, g: usize, d: &Detail, k: usize) -> u128 {
        d.writer(k)
            .unwrap_or_else(|| self.page(g).granules[g % GRANULES].writer)
    }

    /// Memory's version of each byte from `pa`, into `out`.
    #[inline]
    pub fn memory_versions(&self, pa: u32, out: &mut [u64]) {
        let p = self.at(pa);
        let (g, off) = (p / G, p % G);
        if off + out.len() <= G {
            // One granule: every access and every fill of a line of up to
            // a granule.
            return self.memory_versions_in(g, off, out);
        }
        for (g, off, at, n) in Self::pieces(p, out.len()) {
            self.memory_versions_in(g, off, &mut out[at..at + n]);
        }
    }

    #[inline]
    fn memory_versions_in(&self, g: usize, off: usize, out: &mut [u64]) {
        match self.detail(g) {
            Some(d) => d.memory_versions(off, out),
            None => out.fill(self.state(g)),
        }
    }

    /// Memory's version of each byte from `pa`, into `out` (a line
    /// fill), and whether each is the truth's: the line is fresh.
    #[inline]
    pub fn fill_versions(&self, pa: u32, out: &mut [u64]) -> bool {
        let p = self.at(pa);
        if p % G + out.len() <= G {
            // One granule: every line of up to a granule.
            return self.fill_versions_in(p / G, p % G, out);
        }
        let mut fresh = true;
        for (g, off, at, n) in Self::pieces(p, out.len()) {
            fresh &= self.fill_versions_in(g, off, &mut out[at..at + n]);
        }
        fresh
    }

    #[inline]
    fn fill_versions_in(&self, g: usize, off: usize, out: &mut [u64]) -> bool {
        let state = self.state(g);
        if state & DETAILED == 0 {
            // A settled granule's memory is its truth, but where a pending
            // store is ahead of it.
            out.fill(state);
            return self
                .pending(g)
                .is_none_or(|p| !(off..off + out.len()).any(|k| p.covers(k)));
        }
        let d = &self.details[(state & !DETAILED) as usize];
        d.memory_versions(off, out);
        d.in_step_at(off, out.len())
    }

    pub fn memory_version(&self, pa: u32) -> u64 {
        let mut v = [0];
        self.memory_versions(pa, &mut v);
        v[0]
    }

    /// The truth of byte `pa`: its newest version and packed writer.
    #[inline]
    pub fn truth(&self, pa: u32) -> (u64, u128) {
        let p = self.at(pa);
        let (g, off) = (p / G, p % G);
        match self.detail(g) {
            Some(d) => (d.truth(off), self.writer_in(g, d, off)),
            None => match self.pending(g).filter(|p| p.covers(off)) {
                Some(p) => (p.version, p.writer),
                None => (self.state(g), self.page(g).granules[g % GRANULES].writer),
            },
        }
    }

    /// The truth's version of byte `pa` (its writer unlooked-up).
    #[inline]
    pub fn truth_version(&self, pa: u32) -> u64 {
        let p = self.at(pa);
        let (g, off) = (p / G, p % G);
        match self.detail(g) {
            Some(d) => d.truth(off),
            None => match self.pending(g).filter(|p| p.covers(off)) {
                Some(p) => p.version,
                None => self.state(g),
            },
        }
    }

    /// The first of the bytes from `pa` whose version in `seen` is not
    /// the newest. Every access of every guest instruction comes here.
    #[inline]
    pub fn first_stale(&self, pa: u32, seen: &[u64]) -> Option<usize> {
        let p = self.at(pa);
        let (g, off) = (p / G, p % G);
        if off + seen.len() <= G {
            // One granule: every CPU access.
            return self.first_stale_in(g, off, seen);
        }
        Self::pieces(self.at(pa), seen.len())
            .find_map(|(g, off, at, n)| Some(at + self.first_stale_in(g, off, &seen[at..at + n])?))
    }

    #[inline]
    fn first_stale_in(&self, g: usize, off: usize, seen: &[u64]) -> Option<usize> {
        match self.detail(g) {
            Some(d) => d.first_stale(off, seen),
            None => match self.pending(g) {
                Some(p) => seen.iter().enumerate().position(|(i, &s)| {
                    let truth = if p.covers(off + i) {
                        p.version
                    } else {
                        self.state(g)
                    };
                    s != truth
                }),
                None => first_not(seen, self.state(g)),
            },
        }
    }

    /// The first of `len` bytes from `pa` whose memory is not the newest,
    /// and memory's version of it.
    pub fn first_behind(&self, pa: u32, len: usize) -> Option<(usize, u64)> {
        Self::pieces(self.at(pa), len).find_map(|(g, off, at, n)| {
            if let Some(p) = self.pending(g) {
                // Memory holds the settled version where the store is ahead.
                let k = (off..off + n).find(|&k| p.covers(k))?;
                return Some((at + k - off, self.state(g)));
            }
            let (k, v) = self.detail(g)?.first_behind(off, n)?;
            Some((at + k, v))
        })
    }

    /// A buffered store of `len` (1, 2 or 4, aligned) bytes at `version`
    /// lands at `pa` (data is the caller's): [`Memory::land`] for a store.
    #[inline(always)]
    pub fn land_store(&mut self, pa: u32, len: usize, version: u64) {
        let p = self.at(pa);
        let (g, off) = (p / G, p % G);
        let state = self.state(g);
        if state & DETAILED != 0 {
            self.details[(state & !DETAILED) as usize].land_store(off, len, version);
        } else if let Some(at) = self.pending_store_at(g) {
            let p = self.land_pending(g, at);
            debug_assert_eq!(
                (p.off as usize, p.len as usize, p.version),
                (off, len, version)
            );
        } else {
            let _ = self.land_in(g, off, &[version; 4][..len]);
        }
    }

    /// A buffered store's `bytes` (1, 2 or 4, aligned) at `version` land
    /// at `pa`, and it is a copy of its granule no more: [`write`],
    /// [`land_store`] and [`drop_copy`] in one, so that the commonest
    /// landing (its granule's pending store: `memory/pending.rs`) looks
    /// its page up once. Returns the granule if nothing holds it now and
    /// it has records (for the caller to settle: `Sim::settle_unshared`).
    ///
    /// [`write`]: Self::write
    /// [`land_store`]: Self::land_store
    /// [`drop_copy`]: Self::drop_copy
    #[inline(always)]
    pub fn land_buffered_store(&mut self, pa: u32, bytes: &[u8], version: u64) -> Option<usize> {
        let p = self.at(pa);
        let (g, k) = (p / G, (p / G) % GRANULES);
        debug_assert!(p % G + bytes.len() <= G);
        let page = self.page_mut(g);
        if page.shares[k] & PENDING == 0 {
            self.write(pa, bytes);
            self.land_store(pa, bytes.len(), version);
            return self.drop_copy(g).then_some(g);
        }
        let at = p % PAGE;
        super::copy(&mut page.data[at..at + bytes.len()], bytes);
        let i = self
            .pending
            .iter()
            .position(|s| s.granule == g)
            .expect("a pending granule has its store");
        let s = self.land_pending(g, i);
        debug_assert_eq!(
            (s.off as usize, s.len as usize, s.version),
            (p % G, bytes.len(), version)
        );
        // It was the granule's only copy (settled now: nothing to settle).
        self.drop_copy(g).then_some(g)
    }

    /// Stores `versions` as memory's from `pa` (data is the caller's), and
    /// returns the first byte whose new version is older than the one it
    /// replaces: a write-back over newer data.
    pub fn land(&mut self, pa: u32, versions: &[u64]) -> Option<usize> {
        let p = self.at(pa);
        if p % G + versions.len() <= G {
            // One granule: every store, every line of up to a granule.
            return self.land_in(p / G, p % G, versions);
        }
        let mut older = None;
        for (g, off, at, n) in Self::pieces(p, versions.len()) {
            let first_older = self.land_in(g, off, &versions[at..at + n]);
            if older.is_none() {
                older = first_older.map(|k| at + k);
            }
        }
        older
    }

    #[inline]
    fn land_in(&mut self, g: usize, off: usize, new: &[u64]) -> Option<usize> {
        let state = self.state(g);
        if state & DETAILED == 0 && new.iter().all(|&v| v == state) {
            return None;
        }
        self.materialize(g);
        self.detail_mut(g).land(off, new)
    }

    /// Sets the truth of `len` bytes from `pa` (a CPU store) and, with
    /// `memory`, memory's version too (a DMA write, a declared death).
    pub fn set_truth(&mut self, pa: u32, len: usize, version: u64, writer: u128, memory: bool) {
        let p = self.at(pa);
        let (first, last) = (p / G, (p + len.max(1) - 1) / G);
        if first < self.watched.end && self.watched.start <= last {
            self.watched_changed = true;
        }
        if p % G + len <= G && len > 0 {
            // One granule: every CPU store.
            return self.set_truth_in(first, p % G, len, version, writer, memory);
        }
        for (g, off, _, n) in Self::pieces(p, len) {
            self.set_truth_in(g, off, n, version, writer, memory);
        }
    }

    #[inline]
    fn set_truth_in(
        &mut self,
        g: usize,
        off: usize,
        n: usize,
        version: u64,
        writer: u128,
        memory: bool,
    ) {
        let page = self.page_mut(g);
        if page.shares[g % GRANULES] & PENDING != 0 {
            self.materialize_pending(g);
        }
        self.page_mut(g).granules[g % GRANULES].changed = version;
        if memory && n == G && self.state(g) & DETAILED == 0 {
            // A whole settled granule stays settled.
            self.settle(g, version, writer);
            return;
        }
        self.detail_mut(g)
            .set_truth(off, n, version, writer, memory);
    }

    /// The version of the last change to granule `g`'s truth.
    #[inline]
    pub fn changed_granule(&self, g: usize) -> u64 {
        self.page(g).granules[g % GRANULES].changed
    }

    /// Memory now holds the truth's version of each of the `len` bytes
    /// from `pa` (a write-back of a line whose versions are the truth's).
    pub fn catch_up(&mut self, pa: u32, len: usize) {
        for (g, off, _, n) in Self::pieces(self.at(pa), len) {
            self.materialize(g);
            let state = self.state(g);
            if state & DETAILED != 0 {
                self.details[(state & !DETAILED) as usize].catch_up(off, n);
            }
        }
    }

    /// The version of the last change to the truth of byte `pa`'s granule.
    #[inline]
    pub fn changed(&self, pa: u32) -> u64 {
        let g = self.at(pa) / G;
        self.page(g).granules[g % GRANULES].changed
    }

    /// Watches the truth of `len` bytes from `pa` (a line the model
    /// fetches from without looking again while nothing changes it).
    pub fn watch(&mut self, pa: u32, len: usize) {
        let p = self.at(pa);
        let first = p / G;
        self.watched = first..(p + len.max(1)).div_ceil(G).max(first + 1);
        self.watched_changed = false;
    }

    /// Whether the truth of a byte [watched](Self::watch) may have changed
    /// since (a store, a DMA write or death, or a sweep's renaming).
    #[inline]
    pub fn watched_changed(&self) -> bool {
        self.watched_changed
    }

    /// Whether enough records are in use for a [sweep](Self::sweep).
    #[inline]
    pub fn wants_sweep(&self) -> bool {
        self.live >= self.sweep_at
    }

    /// Settles every granule in play that `copied` says has no copy in a
    /// cache, buffer or pending discard record, and whose memory holds its
    /// newest data, each at a version from `fresh`.
    pub fn sweep(&mut self, copied: impl Fn(u32) -> bool, mut fresh: impl FnMut() -> u64) {
        self.watched_changed = true;
        for index in 0..self.details.len() {
            let d = &self.details[index];
            let g = d.granule;
            if g == u32::MAX || !d.in_step() || copied(g) {
                continue;
            }
            let writer = d
                .newest_writer()
                .unwrap_or_else(|| self.page(g as usize).granules[g as usize % GRANULES].writer);
            self.details[index].granule = u32::MAX;
            self.free.push(index as u32);
            self.live -= 1;
            let version = fresh();
            self.settle(g as usize, version, writer);
        }
        self.sweep_at = self.budget.max(2 * self.live);
    }
}

#[cfg(test)]
mod tests;
