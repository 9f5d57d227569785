//! The oracle: the truth of each byte, versions, settling memory no copy is
//! made of, and the reports.

use super::*;

impl Sim {
    #[inline]
    pub(super) fn truth(&self, pa: u32) -> Truth {
        let (version, writer) = self.memory.truth(pa);
        Truth {
            version,
            writer: unpack_writer(writer),
        }
    }

    /// A version newer than every one handed out before.
    pub(super) fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Between operations: settles the memory no copy is made of once
    /// the per-byte records reach their budget (`memory.rs`).
    #[inline]
    pub(super) fn settle_memory(&mut self) {
        // Eager settling keeps the records few, so sweeps are rare: the
        // books are checked every 16,384 operations too.
        #[cfg(debug_assertions)]
        if self.operation.is_multiple_of(16_384) {
            self.check_copy_counts();
        }
        if self.memory.wants_sweep() {
            self.sweep_memory();
        }
    }

    fn sweep_memory(&mut self) {
        #[cfg(debug_assertions)]
        self.check_copy_counts();
        let mut copied = FxHashSet::default();
        let base = self.memory.base();
        let mut add = |pa: u32, len: usize| {
            // Granules count from the memory's base.
            let Some(p) = pa.checked_sub(base) else {
                return;
            };
            let first = p / memory::GRANULE;
            let last = (p + len.max(1) as u32 - 1) / memory::GRANULE;
            copied.extend(first..=last);
        };
        for cache in [&self.dcache, &self.icache] {
            for i in cache.valid_lines() {
                add(cache.meta[i].pa, cache.line_bytes);
            }
        }
        for entry in &self.write_buffer.entries {
            match entry {
                Pending::Store(s) => add(s.pa, usize::from(s.len)),
                Pending::WriteBack(w) => add(w.pa, w.len),
            }
        }
        for entry in self.btc.entries.iter().flatten() {
            add(entry.pa, usize::from(entry.size));
        }
        if let Some(discards) = &self.discards {
            for pa in discards.lines() {
                add(pa, self.dcache.line_bytes);
            }
        }
        #[cfg(test)]
        if self.settle_copies_too {
            copied.clear();
        }
        let mut version = self.version;
        self.memory.sweep(
            |g| copied.contains(&g),
            || {
                version += 1;
                version
            },
        );
        self.version = version;
    }

    /// Debug builds, at every sweep and every 16,384 operations before a
    /// store: the copies memory counts per granule (`Memory::copy_line`,
    /// `Sim::add_copies`, `Sim::drop_copies`) are those the caches, the
    /// branch target cache and the buffers hold (a copy counted too few
    /// would let a granule settle under a line that still holds its old
    /// versions); each pending store is a buffered store's
    /// (`memory/pending.rs`); and the caches' lookup tags agree with their
    /// lines (`Cache::install`).
    #[cfg(debug_assertions)]
    fn check_copy_counts(&self) {
        for (pa, len, version) in self.memory.pending_stores() {
            assert!(
                self.write_buffer.entries.iter().any(|e| matches!(e,
                    Pending::Store(s) if s.pa == pa && usize::from(s.len) == len && s.version == version)),
                "a pending store at {pa:#x} that no buffered store is"
            );
        }
        self.dcache.check_tags();
        self.icache.check_tags();
        let mut expected = std::collections::BTreeMap::new();
        let mut count = |pa: u32, len: usize| {
            for g in self.memory.granules(pa, len) {
                *expected.entry(g).or_insert(0u32) += 1;
            }
        };
        for cache in [&self.dcache, &self.icache] {
            for i in cache.valid_lines() {
                count(cache.meta[i].pa, cache.line_bytes);
            }
        }
        for entry in self.btc.entries.iter().flatten() {
            count(entry.pa, usize::from(entry.size));
        }
        for entry in &self.write_buffer.entries {
            match entry {
                Pending::Store(s) => count(s.pa, usize::from(s.len)),
                Pending::WriteBack(w) => count(w.pa, w.len),
            }
        }
        assert_eq!(
            self.memory.copy_counts(),
            expected,
            "the model's copy counts"
        );
    }

    /// A cached hit at `va` (physical `pa`) that returned the bytes of
    /// physical `source` instead, from the line at `line_pa` (a VIVT line or
    /// a branch target cache entry made before the page was remapped, or
    /// in another space without a flush): whose data is it?
    pub(super) fn report_foreign_hit(
        &mut self,
        va: u32,
        pa: u32,
        source: u32,
        line_pa: u32,
        seen: u64,
    ) {
        let writer = match self.check_pa(source, 1) {
            Ok(()) => self.truth(source).writer,
            Err(_) => Writer::Initial,
        };
        let kind = match writer {
            Writer::Cpu { space, .. } if space != self.current => {
                ViolationKind::CrossSpaceLeak { line_pa }
            }
            _ => ViolationKind::RemappedLineHit { line_pa },
        };
        let truth = self.truth(pa);
        self.report(kind, Some(va), pa, truth, seen);
    }

    pub(super) fn check_read(&mut self, va: u32, pa: u32, versions: &[u64], fetch: bool) {
        // Every access of every guest instruction comes here: compare the
        // versions first, and unpack a byte's writer only for a report.
        let Some(i) = self.memory.first_stale(pa, versions) else {
            return;
        };
        let truth = self.truth(pa + i as u32);
        let kind = match (fetch, truth.writer) {
            (true, _) => ViolationKind::StaleFetch,
            (false, Writer::Dma) => ViolationKind::StaleReadAfterDma,
            (false, _) => ViolationKind::StaleRead,
        };
        self.report(kind, Some(va), pa + i as u32, truth, versions[i]);
    }

    pub(super) fn check_memory(&mut self, kind: ViolationKind, pa: u32, len: u32) {
        if let Some((k, seen)) = self.memory.first_behind(pa, len as usize) {
            let p = pa + k as u32;
            let truth = self.truth(p);
            self.report(kind, None, p, truth, seen);
        }
    }

    pub(super) fn report(
        &mut self,
        kind: ViolationKind,
        va: Option<u32>,
        pa: u32,
        truth: Truth,
        seen: u64,
    ) {
        let read = matches!(
            kind,
            ViolationKind::StaleRead
                | ViolationKind::StaleReadAfterDma
                | ViolationKind::StaleFetch
                | ViolationKind::DmaReadStaleMemory
                | ViolationKind::StaleTableWalk
        );
        let violation = Violation {
            kind,
            operation: self.operation,
            space: va.map(|_| self.current),
            va,
            pa,
            last_writer: truth.writer,
            last_version: truth.version,
            seen_version: seen,
            discarded: None,
            line_writer: None,
        };
        if read
            && let Some(discards) = self.discards.as_mut()
            && let Some(at) = discards.cause(pa, truth.version)
        {
            let line_offset = pa & (self.dcache.line_bytes as u32 - 1);
            self.violations.push(Violation {
                kind: ViolationKind::DirtyLineDiscarded,
                discarded: Some(Discarded {
                    va: at.va | line_offset,
                    ..at
                }),
                ..violation
            });
        }
        self.violations.push(violation);
    }
}
