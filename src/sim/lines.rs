//! Line movement: fills, evictions, write-backs and their landing in
//! memory, discards, and the live-alias check.

use super::*;

impl Sim {
    pub(super) fn cache(&mut self, which: Which) -> &mut Cache {
        match which {
            Which::Data => &mut self.dcache,
            Which::Instruction => &mut self.icache,
        }
    }

    /// Fills a line for `probe`, in its set `set` (`Cache::set_of`),
    /// evicting (and writing back) a victim.
    pub(super) fn fill(&mut self, which: Which, probe: &Probe, set: usize) -> usize {
        debug_assert_eq!(set, self.cache(which).set_of(probe));
        let victim = self.cache(which).victim(set);
        self.evict(which, victim);
        if which == Which::Data {
            // A D linefill waits for the write buffer and the write-back
            // buffer (the victim's write-back included): the CPU reads its
            // own stores. An I linefill does not: the buffers are on the
            // data side (arm-cache-mm.md §1), so code stored but not
            // drained is not fetched.
            self.drain_buffered_stores();
        }
        let line = match which {
            Which::Data => &mut self.dcache,
            Which::Instruction => &mut self.icache,
        };
        let line_pa = line.line_base(probe.pa);
        let line_va = line.line_base(probe.va);
        let range = line.bytes(victim);
        // The line becomes a copy of its granules (`Memory::copy_line`).
        let fresh = match self.memory.copy_line(line_pa, &mut line.data[range]) {
            Some(version) => {
                // Memory is the truth there, all of one version.
                line.set_flat(victim, version);
                true
            }
            None => self
                .memory
                .fill_versions(line_pa, line.versions_to_overwrite(victim)),
        };
        line.install(victim, line_va, line_pa);
        line.meta[victim].verified = if fresh { self.version } else { 0 };
        if which == Which::Data && self.live_aliases {
            self.check_live_alias(victim, false);
        }
        self.counters.fills += 1;
        self.counters.cycles += self.costs.line_fill;
        victim
    }

    /// Drops line `i` (writing it back first if dirty).
    pub(super) fn evict(&mut self, which: Which, i: usize) {
        if which == Which::Data {
            self.write_back(i);
        }
        self.drop_line(which, i);
    }

    /// Invalidates line `i` (nothing written back): its granules have one
    /// copy fewer, and one whose last copy this was is settled if it can be.
    pub(super) fn drop_line(&mut self, which: Which, i: usize) {
        let cache = self.cache(which);
        let meta = cache.meta[i];
        if !meta.valid {
            return;
        }
        cache.invalidate(i);
        let n = cache.line_bytes;
        self.drop_copies(meta.pa, n);
    }

    /// Whether the versions of a line at `pa` (`len` bytes) found fresh at
    /// `verified` (`LineMeta::verified`; 0: not known) are still the
    /// truth's: no granule of it changed since.
    #[inline]
    pub(super) fn versions_are_truth(&self, pa: u32, len: usize, verified: u64) -> bool {
        verified != 0
            && self
                .memory
                .granules(pa, len)
                .all(|g| self.memory.changed_granule(g) <= verified)
    }

    /// A copy (line, branch target cache or buffer entry) now holds the
    /// `len` bytes from `pa`.
    #[inline]
    pub(super) fn add_copies(&mut self, pa: u32, len: usize) {
        for g in self.memory.granules(pa, len) {
            self.memory.add_copy(g);
        }
    }

    /// A copy (line, branch target cache or buffer entry) no longer holds the `len` bytes
    /// from `pa`; a granule left with no copy is settled if it can be.
    #[inline(always)]
    pub(super) fn drop_copies(&mut self, pa: u32, len: usize) {
        let granules = self.memory.granules(pa, len);
        if granules.len() == 1 {
            // A word, or a line of one granule: no loop.
            if self.memory.drop_copy(granules.start) {
                self.settle_unshared(granules.start);
            }
            return;
        }
        for g in granules {
            if self.memory.drop_copy(g) {
                self.settle_unshared(g);
            }
        }
    }

    /// Settles granule `g` if memory holds its newest data and nothing
    /// holds a copy: no line, branch target cache entry or buffered store
    /// or write-back (the caller checked its count), no record of a
    /// discard (`Memory::settle_in_step`).
    pub(super) fn settle_unshared(&mut self, g: usize) {
        let discarded = self
            .discards
            .as_ref()
            .is_some_and(|d| d.covers(self.memory.granule_pa(g), memory::GRANULE));
        if !discarded {
            self.memory.settle_in_step(g);
        }
    }

    /// After the `len` bytes from `pa` reached memory: settles each of
    /// their granules that nothing holds a copy of.
    #[inline]
    pub(super) fn settle_landed(&mut self, pa: u32, len: usize) {
        for g in self.memory.granules(pa, len) {
            if self.memory.unshared_in_play(g) {
                self.settle_unshared(g);
            }
        }
    }

    /// Records a fetched word in the branch target cache, which holds a
    /// copy of its bytes until replaced or flushed.
    pub(super) fn record_btc(&mut self, entry: BtcEntry) {
        if !self.btc.enabled() {
            return;
        }
        // Counted before the entry it replaces is dropped: were that the
        // granule's last copy, it would settle, renaming the versions the
        // new entry holds.
        #[cfg(test)]
        if self.uncounted_btc {
            self.btc.record(entry);
            return;
        }
        self.add_copies(entry.pa, usize::from(entry.size));
        if let Some(old) = self.btc.record(entry) {
            self.drop_copies(old.pa, usize::from(old.size));
        }
    }

    /// Flushes the branch target cache (c7,c5,6; c7,c5,0).
    pub(super) fn flush_btc(&mut self) {
        for i in 0..self.btc.entries.len() {
            if let Some(old) = self.btc.entries[i].take() {
                self.drop_copies(old.pa, usize::from(old.size));
            }
        }
    }

    /// Writes D line `i` back if it is valid and dirty: into the write-back
    /// buffer when the model has the buffers (behind the older buffered
    /// stores), else straight to memory.
    #[inline]
    pub(super) fn write_back(&mut self, i: usize) {
        let meta = &self.dcache.meta[i];
        if meta.valid && meta.dirty {
            self.write_back_dirty(i);
        }
    }

    fn write_back_dirty(&mut self, i: usize) {
        let meta = self.dcache.meta[i];
        let range = self.dcache.bytes(i);
        let n = self.dcache.line_bytes.min(MAX_LINE);
        if !self.write_buffer.enabled() && self.versions_are_truth(meta.pa, n, meta.verified) {
            // Lands at once, and every byte is the newest: memory takes
            // the line's data and catches up with the truth, and no byte
            // can be older than memory's (memory is never ahead of the
            // truth). The general landing compares 32 versions twice: on
            // a model whose caches thrash, most of a write-back's cost.
            self.dcache.meta[i].dirty = false;
            self.counters.write_backs += 1;
            self.counters.cycles += self.costs.write_back;
            self.touch_memory(meta.pa, n as u32);
            self.memory
                .write(meta.pa, &self.dcache.data[range.start..range.start + n]);
            self.memory.catch_up(meta.pa, n);
            self.settle_landed(meta.pa, n);
            return;
        }
        // Boxed only if it waits in the write-back buffer: without the
        // buffers it lands at once, and an allocation per write-back was
        // a good part of a thrashing workload's time.
        let mut line = BufferedWriteBack {
            pa: meta.pa,
            va: meta.va,
            len: n,
            bytes: [0; MAX_LINE],
            versions: [0; MAX_LINE],
            last_store: self.dcache.last_store[i],
            verified: meta.verified,
        };
        copy(
            &mut line.bytes[..n],
            &self.dcache.data[range.start..range.start + n],
        );
        self.dcache.versions_into(i, 0, &mut line.versions[..n]);
        self.dcache.meta[i].dirty = false;
        self.counters.write_backs += 1;
        self.counters.cycles += self.costs.write_back;
        if self.write_buffer.enabled() {
            self.make_room(true);
            // A copy of the line's data until it lands (`Sim::land`).
            self.add_copies(line.pa, n);
            self.write_buffer.push(Pending::WriteBack(Box::new(line)));
        } else {
            self.write_back_lands(&line);
            self.settle_landed(line.pa, n);
        }
    }

    /// A written-back line reaches memory; checks that no byte is older
    /// than memory's (what landed there before it: a buffered store, a DMA
    /// master's write).
    pub(super) fn write_back_lands(&mut self, line: &BufferedWriteBack) {
        self.touch_memory(line.pa, line.len as u32);
        let n = line.len;
        if self.versions_are_truth(line.pa, n, line.verified) {
            // As in `write_back_dirty`: nothing to compare.
            self.memory.write(line.pa, &line.bytes[..n]);
            self.memory.catch_up(line.pa, n);
            return;
        }
        // A byte older than memory's overwrites newer data: a lost write.
        let lost = self
            .memory
            .land(line.pa, &line.versions[..n])
            .map(|k| (line.pa + k as u32, line.versions[k]));
        self.memory.write(line.pa, &line.bytes[..n]);
        if let Some((pa, seen)) = lost
            && self.truth(pa).writer != Writer::Dead
        {
            let truth = self.truth(pa);
            self.report_line(ViolationKind::StaleWriteBack, line.va, pa, truth, seen);
            if let Some(v) = self.violations.last_mut() {
                v.line_writer = line.last_store;
            }
        }
    }

    /// Invalidates D line `i` without writing it back; a dirty byte that is
    /// the only copy of the newest value is a lost write.
    pub(super) fn discard(&mut self, i: usize) {
        let meta = self.dcache.meta[i];
        if meta.valid && meta.dirty {
            let mut lost = [0u64; MAX_LINE];
            let mut any = false;
            for (k, lost) in lost.iter_mut().enumerate().take(self.dcache.line_bytes) {
                let pa = meta.pa + k as u32;
                let v = self.dcache.version(i, k);
                let landing = self
                    .write_buffer
                    .newest_version(pa)
                    .unwrap_or_else(|| self.memory.memory_version(pa));
                if v == self.memory.truth_version(pa) && landing != v {
                    if self.discards.is_none() {
                        let truth = self.truth(pa);
                        self.report_line(ViolationKind::DirtyLineDiscarded, meta.va, pa, truth, v);
                        break;
                    }
                    *lost = v;
                    any = true;
                }
            }
            if any && let Some(discards) = self.discards.as_mut() {
                let at = Discarded {
                    operation: self.operation,
                    va: meta.va,
                    pc: self.site,
                    space: self.current,
                };
                let memory = &self.memory;
                discards.record(meta.pa, lost, at, |pa, v| memory.truth_version(pa) == v);
            }
        }
        self.drop_line(Which::Data, i);
    }

    pub(super) fn report_line(
        &mut self,
        kind: ViolationKind,
        line_va: u32,
        pa: u32,
        truth: Truth,
        seen: u64,
    ) {
        let va = line_va | (pa & (self.dcache.line_bytes as u32 - 1));
        self.violations.push(Violation {
            discarded: None,
            line_writer: None,
            kind,
            operation: self.operation,
            space: None,
            va: Some(va),
            pa,
            last_writer: truth.writer,
            last_version: truth.version,
            seen_version: seen,
        });
    }

    /// The D or I line an MVA maintenance operation acts on, if cached.
    /// VIVT needs no translation (an unmapped MVA can still hit), and the
    /// address is the modified one already: FCSE does not relocate it.
    pub(super) fn line_for_mva(&mut self, which: Which, va: u32) -> Option<usize> {
        let pa = match self.cache(which).cfg.indexing {
            Indexing::Vivt | Indexing::VivtKeyed => u32::MAX,
            Indexing::Vipt | Indexing::Pipt => self.translate(va).ok()?.0,
        };
        self.cache(which).lookup(&Probe { va, pa })
    }

    /// A whole-D-cache operation: every line is visited (costed), every
    /// dirty one written back, and with `invalidate` every one dropped.
    pub(super) fn whole_dcache(&mut self, invalidate: bool) {
        self.operation += 1;
        self.counters.cycles += self.costs.whole_cache_per_line * self.dcache.meta.len() as u64;
        let lines: Vec<usize> = self.dcache.valid_lines().collect();
        for i in lines {
            if invalidate {
                self.evict(Which::Data, i);
            } else {
                self.write_back(i);
            }
        }
    }

    /// After D line `line` was filled or dirtied: another valid line of
    /// its physical line, dirty (or any, when `line` is the dirty one), is
    /// a [`ViolationKind::LiveAlias`].
    /// `clean_others_only`: the line was filled by this store, whose fill
    /// already reported a dirty other line.
    pub(super) fn check_live_alias(&mut self, line: usize, clean_others_only: bool) {
        let meta = self.dcache.meta[line];
        let other = self.dcache.meta.iter().enumerate().find(|&(i, m)| {
            i != line
                && m.valid
                && m.pa == meta.pa
                && m.va != meta.va
                && (meta.dirty || m.dirty)
                && !(clean_others_only && m.dirty)
        });
        if let Some((_, m)) = other {
            let (other_va, va) = (m.va, meta.va);
            let truth = self.truth(meta.pa);
            let seen = self.dcache.version(line, 0);
            self.report_line(
                ViolationKind::LiveAlias { other_va },
                va,
                meta.pa,
                truth,
                seen,
            );
        }
    }
}
