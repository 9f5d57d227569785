//! Physical memory and the oracle's truth, kept per byte but stored per
//! 32-byte granule, so that a model of a guest's whole RAM costs about
//! 2 bytes per byte the guest touches instead of 33 (data 1, and per
//! 32-byte granule a state word, a writer and a change stamp: 32 bytes).
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
//! since the last sweep, copied somewhere, or with memory behind the
//! truth) keep per-byte records ([`Detail`], 1 KiB each, of which bringing
//! a granule into play writes only the truths: `memory/detail.rs`).
//!
//! Sweeps ([`Memory::sweep`]) settle what can be settled; the model runs
//! one when the records reach their budget, between operations, telling it
//! which granules have copies. What a sweep forgets:
//! - the exact versions of settled bytes (renamed to one fresh version:
//!   nothing holds the old ones, so no comparison changes);
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

mod detail;

/// Bytes per granule.
pub(super) const GRANULE: u32 = 32;
const G: usize = GRANULE as usize;

/// In a granule's state word: the rest is an index into `details`.
const DETAILED: u64 = 1 << 63;

/// Records before the first sweep; later sweeps wait until the records
/// have doubled since the last one, so sweeping stays linear overall.
pub(super) const DEFAULT_BUDGET: usize = 2048;

/// Bytes per storage page: memory and its tables are allocated a page at
/// a time, on the first write to it.
const PAGE: usize = 4096;
/// Granules per storage page.
const GRANULES: usize = PAGE / G;

/// One page of memory and its granules' tables. A page never written is
/// absent and reads as [`UNTOUCHED`]: all zero, at version 0 by
/// [`Writer::Initial`](super::Writer::Initial) (packed as 0).
struct Page {
    data: [u8; PAGE],
    /// Per granule: its settled version, or `DETAILED | index`.
    states: [u64; GRANULES],
    /// Per settled granule: its newest store's packed writer.
    writers: [u128; GRANULES],
    /// Per granule: the version of the last change to its truth (or of
    /// its settling): a copy found fresh at a later version still is.
    changed: [u64; GRANULES],
}

const ZERO_PAGE: Page = Page {
    data: [0; PAGE],
    states: [0; GRANULES],
    writers: [0; GRANULES],
    changed: [0; GRANULES],
};
static UNTOUCHED: Page = ZERO_PAGE;

/// Physical memory: data, and per byte memory's version, the truth's
/// version and the truth's writer.
///
/// Stored in pages allocated on first write, not in flat tables: a model
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
    /// but the page index: pages come on their first write.
    pub fn new(base: u32, bytes: usize) -> Self {
        let mut pages = Vec::new();
        pages.resize_with(bytes.div_ceil(PAGE), || None);
        Memory {
            base,
            len: bytes,
            pages,
            details: Vec::new(),
            free: Vec::new(),
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
        self.pages[g / GRANULES].get_or_insert_with(|| Box::new(ZERO_PAGE))
    }

    #[inline]
    fn state(&self, g: usize) -> u64 {
        self.page(g).states[g % GRANULES]
    }

    /// Settles granule `g` at `version` by `writer`.
    fn settle(&mut self, g: usize, version: u64, writer: u128) {
        let page = self.page_mut(g);
        page.states[g % GRANULES] = version;
        page.changed[g % GRANULES] = version;
        page.writers[g % GRANULES] = writer;
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
    #[inline]
    pub fn write(&mut self, pa: u32, bytes: &[u8]) {
        let p = self.at(pa);
        let off = p % PAGE;
        if off + bytes.len() <= PAGE {
            // One page: every store and write-back.
            super::copy(
                &mut self.page_mut(p / G).data[off..off + bytes.len()],
                bytes,
            );
            return;
        }
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
    fn detail_mut(&mut self, g: usize) -> &mut Detail {
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
        self.page_mut(g).states[g % GRANULES] = DETAILED | index as u64;
        let d = &mut self.details[index];
        d.start(g as u32, state);
        d
    }

    /// The packed writer of byte `k` of granule `g`, whose records are `d`.
    fn writer_in(&self, g: usize, d: &Detail, k: usize) -> u128 {
        d.writer(k)
            .unwrap_or_else(|| self.page(g).writers[g % GRANULES])
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
            // A settled granule's memory is its truth.
            out.fill(state);
            return true;
        }
        let d = &self.details[(state & !DETAILED) as usize];
        d.memory_versions(off, out);
        d.in_step_at(off, out.len())
    }

    /// The version of the `len` bytes from `pa` if they are all settled
    /// at one version (memory's and the truth's).
    #[inline]
    pub fn settled_version(&self, pa: u32, len: usize) -> Option<u64> {
        let p = self.at(pa);
        let state = self.state(p / G);
        let last = (p + len - 1) / G;
        (state & DETAILED == 0 && (p / G + 1..=last).all(|g| self.state(g) == state))
            .then_some(state)
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
            None => (self.state(g), self.page(g).writers[g % GRANULES]),
        }
    }

    /// The truth's version of byte `pa` (its writer unlooked-up).
    #[inline]
    pub fn truth_version(&self, pa: u32) -> u64 {
        let p = self.at(pa);
        let (g, off) = (p / G, p % G);
        match self.detail(g) {
            Some(d) => d.truth(off),
            None => self.state(g),
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
            None => first_not(seen, self.state(g)),
        }
    }

    /// The first of `len` bytes from `pa` whose memory is not the newest,
    /// and memory's version of it.
    pub fn first_behind(&self, pa: u32, len: usize) -> Option<(usize, u64)> {
        Self::pieces(self.at(pa), len).find_map(|(g, off, at, n)| {
            let (k, v) = self.detail(g)?.first_behind(off, n)?;
            Some((at + k, v))
        })
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
        self.page_mut(g).changed[g % GRANULES] = version;
        if memory && n == G && self.state(g) & DETAILED == 0 {
            // A whole settled granule stays settled.
            self.settle(g, version, writer);
            return;
        }
        self.detail_mut(g)
            .set_truth(off, n, version, writer, memory);
    }

    /// The version of the last change to the truth of byte `pa`'s granule.
    #[inline]
    pub fn changed(&self, pa: u32) -> u64 {
        let g = self.at(pa) / G;
        self.page(g).changed[g % GRANULES]
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
                .unwrap_or_else(|| self.page(g as usize).writers[g as usize % GRANULES]);
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
