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

    /// Fills a line for `probe`, evicting (and writing back) a victim.
    pub(super) fn fill(&mut self, which: Which, probe: &Probe) -> usize {
        let victim = self.cache(which).victim(probe);
        self.evict(which, victim);
        if which == Which::Data {
            // A D linefill waits for the write buffer and the write-back
            // buffer (the victim's write-back included): the CPU reads its
            // own stores. An I linefill does not: the buffers are on the
            // data side (arm-cache-mm.md §1), so code stored but not
            // drained is not fetched.
            self.drain_buffered_stores();
        }
        let cache = self.cache(which);
        let line_pa = cache.line_base(probe.pa);
        let line_va = cache.line_base(probe.va);
        let range = cache.bytes(victim);
        let n = cache.line_bytes;
        let line = match which {
            Which::Data => &mut self.dcache,
            Which::Instruction => &mut self.icache,
        };
        copy(&mut line.data[range], self.memory.data(line_pa, n));
        let fresh = match self.memory.settled_version(line_pa, n) {
            Some(version) => {
                // Memory is the truth there, all of one version.
                line.set_flat(victim, version);
                true
            }
            None => self
                .memory
                .fill_versions(line_pa, line.versions_to_overwrite(victim)),
        };
        let verified = if fresh { self.version } else { 0 };
        let meta = &mut self.cache(which).meta[victim];
        meta.valid = true;
        meta.dirty = false;
        meta.va = line_va;
        meta.pa = line_pa;
        meta.last_store = None;
        meta.verified = verified;
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
        self.cache(which).meta[i].valid = false;
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
        // Boxed only if it waits in the write-back buffer: without the
        // buffers it lands at once, and an allocation per write-back was
        // a good part of a thrashing workload's time.
        let mut line = BufferedWriteBack {
            pa: meta.pa,
            va: meta.va,
            len: n,
            bytes: [0; MAX_LINE],
            versions: [0; MAX_LINE],
            last_store: meta.last_store,
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
            self.write_buffer.push(Pending::WriteBack(Box::new(line)));
        } else {
            self.land_write_back(&line);
        }
    }

    /// A written-back line reaches memory; checks that no byte is older
    /// than memory's (what landed there before it: a buffered store, a DMA
    /// master's write).
    pub(super) fn land_write_back(&mut self, line: &BufferedWriteBack) {
        self.touch_memory(line.pa, line.len as u32);
        let n = line.len;
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
        self.dcache.meta[i].valid = false;
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
