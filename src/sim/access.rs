//! CPU accesses: loads, stores (through the write buffer) and fetches, with
//! the fast paths that skip the oracle's comparison for lines known fresh.

use super::*;

impl Sim {
    /// A CPU load of `size` bytes (1, 2, 4) at `va` in the current space;
    /// returns what the modelled hardware returns (little-endian).
    pub fn load(&mut self, va: u32, size: u32) -> Result<u32, SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.loads += 1;
        let (pa, mapping, _) = self.translate(va)?;
        self.load_translated(va, size, pa, mapping.mem)
    }

    /// A CPU load whose translation the caller made (see [`Translated`]):
    /// for a model driven from outside, such as the QEMU plugin, which
    /// walks the guest's own tables. Size 1, 2 or 4, naturally aligned.
    pub fn load_at(&mut self, va: u32, size: u32, at: Translated) -> Result<u32, SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.loads += 1;
        self.load_translated(va, size, at.pa, at.mem)
    }

    #[inline]
    pub(super) fn load_translated(
        &mut self,
        va: u32,
        size: u32,
        pa: u32,
        mem: MemType,
    ) -> Result<u32, SimError> {
        self.check_pa(pa, size)?;
        if mem.cached() {
            let probe = self.probe(va, pa);
            let set = self.dcache.set_of(&probe);
            let (line, filled) = match self.dcache.lookup_in(set, &probe) {
                Some(line) => {
                    self.counters.hits += 1;
                    self.counters.cycles += self.costs.hit;
                    (line, false)
                }
                None => (self.fill(Which::Data, &probe, set), true),
            };
            let offset = (va as usize) & (self.dcache.line_bytes - 1);
            let value = self.dcache.read(line, offset, size);
            let meta = &self.dcache.meta[line];
            // A line just filled fresh is fresh: nothing changed since.
            if (filled && meta.verified != 0)
                || self.line_is_fresh(meta, pa, self.dcache.line_bytes)
            {
                return Ok(value);
            }
            let mut versions = [0u64; 4];
            self.dcache
                .versions_into(line, offset, &mut versions[..size as usize]);
            let line_pa = self.dcache.meta[line].pa;
            if line_pa != self.dcache.line_base(pa) {
                let source = line_pa + (pa & (self.dcache.line_bytes as u32 - 1));
                self.report_foreign_hit(va, pa, source, line_pa, versions[0]);
            } else {
                self.check_read(va, pa, &versions[..size as usize], false);
            }
            return Ok(value);
        }
        self.counters.uncached += 1;
        self.counters.cycles += self.costs.uncached;
        // The CPU sees its own buffered stores and write-backs: its
        // data-side reads wait for the buffers to drain.
        self.drain_buffered_stores();
        let n = size as usize;
        let (mut bytes, mut versions) = ([0u8; 4], [0u64; 4]);
        copy(&mut bytes[..n], self.memory.data(pa, n));
        self.memory.memory_versions(pa, &mut versions[..n]);
        self.check_read(va, pa, &versions[..n], false);
        Ok(u32::from_le_bytes(bytes))
    }

    /// A CPU store of the low `size` bytes of `value` at `va` in the current space.
    pub fn store(&mut self, va: u32, size: u32, value: u32) -> Result<(), SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.stores += 1;
        let (pa, mapping, _) = self.translate(va)?;
        if !mapping.writable {
            return Err(SimError::ReadOnly { va });
        }
        self.store_translated(va, size, value, pa, mapping.mem)
    }

    /// A CPU store whose translation the caller made (see [`Translated`]);
    /// the caller has checked the permission. The store is attributed to
    /// the current [site](Self::set_site).
    pub fn store_at(
        &mut self,
        va: u32,
        size: u32,
        value: u32,
        at: Translated,
    ) -> Result<(), SimError> {
        check_access(va, size)?;
        self.operation += 1;
        self.counters.stores += 1;
        self.store_translated(va, size, value, at.pa, at.mem)
    }

    #[inline]
    pub(super) fn store_translated(
        &mut self,
        va: u32,
        size: u32,
        value: u32,
        pa: u32,
        mem: MemType,
    ) -> Result<(), SimError> {
        self.check_pa(pa, size)?;
        self.settle_memory();
        let version = self.next_version();
        let writer = Writer::Cpu {
            space: self.current,
            va,
            pc: self.site,
        };
        let bytes = value.to_le_bytes();
        let probe = self.probe(va, pa);
        let set = self.dcache.set_of(&probe);
        let hit = if mem.cached() {
            self.dcache.lookup_in(set, &probe)
        } else {
            None
        };
        let allocates = mem.cached()
            && hit.is_none()
            && self.dcache.cfg.allocation == Allocation::ReadWrite
            && mem == MemType::WriteBack;
        // Before the store changes it; only a store into a line reads it.
        let changed_before = if hit.is_some() || allocates {
            self.memory.changed(pa)
        } else {
            0
        };
        // A store that only goes to memory, at once, with nothing buffered
        // to land before it (no buffers, or strongly ordered behind an
        // empty queue): nothing reads its bytes' versions between its
        // setting the truth and its landing, so both are done at once.
        let direct = hit.is_none()
            && !allocates
            && self.write_buffer.entries.is_empty()
            && (mem == MemType::StronglyOrdered || !self.write_buffer.enabled());
        // A direct store to a settled granule nothing holds a copy of
        // leaves it settled, at the store's version: what records made for
        // it and settled as the store lands would give
        // (`Sim::settle_landed`), without making them.
        // (Memory checks that nothing holds the granule; a record of a
        // discard, which memory does not see, would keep it in play anyway:
        // checked here too, for clarity.)
        let no_discard_record =
            |sim: &Self| !sim.discards.as_ref().is_some_and(|d| d.covers(pa, size));
        // A store bound for the write buffer that misses the cache, to a
        // settled granule nothing holds, leaves the granule settled but for
        // this store (`memory/pending.rs`): no records made for its short
        // trip through the buffer.
        let buffered = hit.is_none()
            && !allocates
            && self.write_buffer.enabled()
            && mem != MemType::StronglyOrdered;
        let counted = buffered
            && no_discard_record(self)
            && self
                .memory
                .pend_store(pa, size as usize, version, pack_writer(writer));
        let n = size as usize;
        let settled_direct = direct
            && no_discard_record(self)
            && self
                .memory
                .store_settled(pa, &bytes[..n], version, pack_writer(writer));
        if !counted && !settled_direct {
            self.memory
                .set_truth(pa, size as usize, version, pack_writer(writer), direct);
        }
        let mut to_memory = !mem.cached() || mem == MemType::WriteThrough;
        if mem.cached() {
            let mut filled = false;
            let line = match hit {
                Some(line) => {
                    self.counters.hits += 1;
                    self.counters.cycles += self.costs.hit;
                    Some(line)
                }
                None if allocates => {
                    filled = true;
                    Some(self.fill(Which::Data, &probe, set))
                }
                None => {
                    to_memory = true;
                    None
                }
            };
            if let Some(line) = line {
                let offset = (va as usize) & (self.dcache.line_bytes - 1);
                self.dcache.write(line, offset, size, value, version);
                let write_back =
                    self.dcache.cfg.write == WritePolicy::WriteBack && mem == MemType::WriteBack;
                let own_line = self.dcache.line_base(pa);
                let meta = &mut self.dcache.meta[line];
                // A fresh line stays fresh: the store changed its copy as it
                // changed the truth (a line of one granule: no other part of
                // it can have changed unseen).
                let one_granule = self.dcache.line_bytes <= memory::GRANULE as usize;
                meta.verified = if one_granule
                    && meta.verified != 0
                    && changed_before <= meta.verified
                    && meta.pa == own_line
                {
                    version
                } else {
                    0
                };
                if write_back {
                    let newly_dirty = !meta.dirty;
                    meta.dirty = true;
                    self.dcache.last_store[line] = Some(writer);
                    if newly_dirty && self.live_aliases {
                        self.check_live_alias(line, filled);
                    }
                } else {
                    to_memory = true;
                }
            }
        }
        if to_memory {
            self.counters.uncached += 1;
            self.counters.cycles += self.costs.uncached;
            let store = BufferedStore {
                pa,
                len: size as u8,
                bytes,
                version,
            };
            if direct {
                // Its truth and memory's version were set together above
                // (and memory took its bytes, if it settled there).
                self.touch_memory(pa, size);
                if !settled_direct {
                    self.memory.write(pa, &bytes[..n]);
                    self.settle_landed(pa, n);
                }
            } else if mem == MemType::StronglyOrdered {
                // Strongly ordered (ARMv6) / uncached unbuffered C=0,B=0
                // (ARM926) stores bypass the write buffer (ARM926EJ-S TRM
                // ch. 4: only bufferable, write-through and write-miss
                // writes use it; the ARMv6 ARM's memory-ordering rules
                // (recalled, section not checked here): strongly-ordered
                // accesses complete in program order with all other
                // explicit accesses), after the older buffered ones.
                self.drain_buffered_stores();
                self.apply_store(store);
            } else {
                self.buffer_store(store, counted);
            }
        }
        Ok(())
    }

    /// A store on its way to memory: through the write buffer when the
    /// model has one (the oldest entries drain when it is full), else at once.
    /// `counted`: memory counted it as its granule's copy already
    /// (`Memory::pend_store`).
    pub(super) fn buffer_store(&mut self, store: BufferedStore, counted: bool) {
        if !self.write_buffer.enabled() {
            self.apply_store(store);
            return;
        }
        self.make_room(false);
        // A buffered store is a copy of its bytes' newest data until it
        // lands (`Sim::land`).
        if !counted {
            self.add_copies(store.pa, usize::from(store.len));
        }
        self.write_buffer.push(Pending::Store(store));
    }

    /// Lets the oldest buffered entries reach memory until one of the
    /// given kind fits.
    pub(super) fn make_room(&mut self, write_back: bool) {
        for _ in 0..self.write_buffer.room_for(write_back) {
            if let Some(oldest) = self.write_buffer.pop_oldest() {
                self.land(oldest);
            }
        }
    }

    /// A buffered entry reaches memory, and is a copy no more (a granule
    /// it was the last copy of settles if it can: `Sim::drop_copies`).
    pub(super) fn land(&mut self, entry: Pending) {
        match &entry {
            Pending::Store(store) => {
                self.touch_memory(store.pa, u32::from(store.len));
                let bytes = &store.bytes[..usize::from(store.len)];
                if let Some(g) = self
                    .memory
                    .land_buffered_store(store.pa, bytes, store.version)
                {
                    self.settle_unshared(g);
                }
            }
            Pending::WriteBack(line) => {
                self.write_back_lands(line);
                self.drop_copies(line.pa, line.len);
            }
        }
    }

    /// A store reaches memory at once (not from the buffers).
    pub(super) fn apply_store(&mut self, store: BufferedStore) {
        self.store_lands(&store);
        self.settle_landed(store.pa, usize::from(store.len));
    }

    fn store_lands(&mut self, store: &BufferedStore) {
        self.touch_memory(store.pa, u32::from(store.len));
        let n = store.len as usize;
        self.memory.write(store.pa, &store.bytes[..n]);
        // A buffered store lands in program order after everything older:
        // it cannot be older than what it overwrites.
        self.memory.land_store(store.pa, n, store.version);
    }

    /// Counts a TLB operation only ARMv6 has, or refuses it on ARMv5 as
    /// the CPU backends do.
    pub(super) fn armv6_tlb_op(&mut self, operation: &'static str) -> Result<(), MaintenanceError> {
        if !self.info.is_armv6() {
            return Err(MaintenanceError::NotOnThisCpu {
                operation,
                cpu: self.info.midr.part(),
            });
        }
        self.counters.tlb_ops += 1;
        self.counters.cycles += self.costs.tlb_op;
        Ok(())
    }

    /// Memory at `pa` changes: if it holds descriptors a walk has read,
    /// TLB entries are checked again on their next hit.
    #[inline(always)]
    pub(super) fn touch_memory(&mut self, pa: u32, len: u32) {
        if !self.table_pages.is_empty() && len != 0 {
            self.touch_table_memory(pa, len);
        }
    }

    #[inline(never)]
    fn touch_table_memory(&mut self, pa: u32, len: u32) {
        let (first, last) = (pa / PAGE, (pa + (len - 1)) / PAGE);
        if (first..=last).any(|p| self.table_pages.contains(&p)) {
            self.table_epoch += 1;
            // Translations made at the old epoch no longer hold.
            self.translations.clear();
        }
    }

    /// Empties the write buffer and the write-back buffer into memory, in order.
    #[inline]
    pub(super) fn drain_buffered_stores(&mut self) {
        if self.write_buffer.entries.is_empty() {
            return;
        }
        while let Some(entry) = self.write_buffer.pop_oldest() {
            self.land(entry);
        }
    }

    /// An instruction fetch of the 4-byte word at `va` in the current space.
    pub fn fetch(&mut self, va: u32) -> Result<u32, SimError> {
        check_access(va, 4)?;
        self.operation += 1;
        self.counters.fetches += 1;
        let (pa, mapping, _) = self.translate(va)?;
        self.fetch_translated(va, 4, pa, mapping.mem)
    }

    /// An instruction fetch of `size` bytes (4 for ARM, 2 for Thumb,
    /// naturally aligned) whose translation the caller made (see
    /// [`Translated`]).
    pub fn fetch_at(&mut self, va: u32, size: u32, at: Translated) -> Result<u32, SimError> {
        if size == 1 {
            return Err(SimError::BadAccess { va, size });
        }
        check_access(va, size)?;
        self.operation += 1;
        self.counters.fetches += 1;
        self.fetch_translated(va, size, at.pa, at.mem)
    }

    pub(super) fn fetch_translated(
        &mut self,
        va: u32,
        size: u32,
        pa: u32,
        mem: MemType,
    ) -> Result<u32, SimError> {
        self.check_pa(pa, size)?;
        let n = size as usize;
        let mva = self.modified(va);
        if let Some(word) = self.fetch_again(mva, pa, size, mem) {
            return Ok(word);
        }
        self.fetched_line = None;
        if let Some(hit) = self.btc.lookup(mva, size as u8) {
            // A branch target cache hit: the recorded instruction, however
            // old (see `btc.rs`).
            self.counters.hits += 1;
            self.counters.cycles += self.costs.hit;
            if hit.pa == pa {
                self.check_read(va, pa, &hit.versions[..n], true);
            } else {
                // Recorded from another physical page (remapped since, or
                // another space's): its versions are of other bytes.
                let line_pa = self.icache.line_base(hit.pa);
                self.report_foreign_hit(va, pa, hit.pa, line_pa, hit.versions[0]);
            }
            return Ok(u32::from_le_bytes(hit.bytes));
        }
        let (bytes, versions) = if mem.cached() {
            let probe = self.probe(va, pa);
            let set = self.icache.set_of(&probe);
            let line = match self.icache.lookup_in(set, &probe) {
                Some(line) => {
                    self.counters.hits += 1;
                    self.counters.cycles += self.costs.hit;
                    line
                }
                None => self.fill(Which::Instruction, &probe, set),
            };
            let offset = (va as usize) & (self.icache.line_bytes - 1);
            let start = self.icache.bytes(line).start + offset;
            let mut b = [0u8; 4];
            let mut v = [0u64; 4];
            copy(&mut b[..n], &self.icache.data[start..start + n]);
            self.icache.versions_into(line, offset, &mut v[..n]);
            let line_pa = self.icache.meta[line].pa;
            if line_pa != self.icache.line_base(pa) {
                // A VIVT hit on another physical page's line, as for loads.
                let source = line_pa + (pa & (self.icache.line_bytes as u32 - 1));
                self.report_foreign_hit(va, pa, source, line_pa, v[0]);
                self.record_btc(BtcEntry {
                    va: mva,
                    pa: source,
                    size: size as u8,
                    bytes: b,
                    versions: v,
                });
                return Ok(u32::from_le_bytes(b));
            }
            self.remember_fetched_line(line, mem);
            (b, v)
        } else {
            // The write buffer is on the data side: an uncached fetch reads
            // memory without waiting for it (arm-cache-mm.md §1).
            self.counters.uncached += 1;
            let mut b = [0u8; 4];
            let mut v = [0u64; 4];
            copy(&mut b[..n], self.memory.data(pa, n));
            self.memory.memory_versions(pa, &mut v[..n]);
            (b, v)
        };
        self.check_read(va, pa, &versions[..n], true);
        self.record_btc(BtcEntry {
            va: mva,
            pa,
            size: size as u8,
            bytes,
            versions,
        });
        Ok(u32::from_le_bytes(bytes))
    }

    /// The fast path of most fetches: the next instruction in the line the
    /// last fetch hit. While that line is still in the cache under the
    /// same tags (nothing invalidated or replaced it) and no byte of its
    /// memory's truth changed, the fetch is a hit on the newest code and
    /// the oracle has nothing to compare. `None`: take the full path.
    #[inline]
    pub(super) fn fetch_again(
        &mut self,
        mva: u32,
        pa: u32,
        size: u32,
        mem: MemType,
    ) -> Option<u32> {
        let last = self.fetched_line?;
        let mask = !(self.icache.line_bytes as u32 - 1);
        let meta = &self.icache.meta[last.line];
        if mva & mask != last.mva
            || pa & mask != last.pa
            || mem != last.mem
            || !meta.valid
            || meta.va != last.mva
            || meta.pa != last.pa
            || self.memory.watched_changed()
            || self.btc.lookup(mva, size as u8).is_some()
        {
            return None;
        }
        self.counters.hits += 1;
        self.counters.cycles += self.costs.hit;
        let n = size as usize;
        let start = self.icache.bytes(last.line).start + (mva & !mask) as usize;
        let mut bytes = [0u8; 4];
        let mut versions = [0u64; 4];
        copy(&mut bytes[..n], &self.icache.data[start..start + n]);
        if self.btc.enabled() {
            self.icache
                .versions_into(last.line, (mva & !mask) as usize, &mut versions[..n]);
            self.record_btc(BtcEntry {
                va: mva,
                pa,
                size: size as u8,
                bytes,
                versions,
            });
        }
        Some(u32::from_le_bytes(bytes))
    }

    /// Whether a fetch from the line the last fetch used — the same line,
    /// through the same translation — would be a hit on its newest code
    /// with nothing else to do: true while that line was remembered (a
    /// cached fetch whose whole line was fresh), is still in the I-cache,
    /// nothing changed its memory's truth, and the CPU has no branch
    /// target cache (every fetch would update it).
    ///
    /// A driver that knows which fetches repeat the last one's line (the
    /// QEMU plugin: the next instruction of a translation block, in the
    /// same line) may then skip them and count them with
    /// [`Sim::count_fetch_hits`]: the model's state is what the fetches
    /// would have left, bar the operation count.
    pub fn fetch_line_is_fresh(&self) -> bool {
        let Some(last) = self.fetched_line else {
            return false;
        };
        let meta = &self.icache.meta[last.line];
        meta.valid
            && meta.va == last.mva
            && meta.pa == last.pa
            && !self.memory.watched_changed()
            && !self.btc.enabled()
    }

    /// Counts `n` fetches a driver skipped while
    /// [`Sim::fetch_line_is_fresh`] held: hits, as they would have been.
    pub fn count_fetch_hits(&mut self, n: u64) {
        self.operation += n;
        self.counters.fetches += n;
        self.counters.hits += n;
        self.counters.cycles += n * self.costs.hit;
    }

    /// Forgets the line the last fetch used: the driver's next fetch does
    /// not follow it (one the driver could not give the model).
    pub fn forget_fetched_line(&mut self) {
        self.fetched_line = None;
    }

    /// Whether line `meta`, hit for byte `pa`, holds its newest version:
    /// the line was found fresh at a version (`LineMeta::verified`) and
    /// the truth of `pa`'s granule has not changed since. `false` only
    /// means "compare".
    #[inline]
    pub(super) fn line_is_fresh(&self, meta: &cache::LineMeta, pa: u32, line_bytes: usize) -> bool {
        meta.verified != 0
            && meta.pa == pa & !(line_bytes as u32 - 1)
            && self.memory.changed(pa) <= meta.verified
    }

    /// After a fetch hit or fill of I line `line`: remembers it for
    /// [`Sim::fetch_again`] if every byte of it is the newest.
    pub(super) fn remember_fetched_line(&mut self, line: usize, mem: MemType) {
        let meta = self.icache.meta[line];
        self.fetched_line = None;
        let fresh = if self.icache.line_bytes <= memory::GRANULE as usize
            && self.line_is_fresh(&meta, meta.pa, self.icache.line_bytes)
        {
            true
        } else {
            let fresh = self
                .memory
                .first_stale(meta.pa, self.icache.versions_mut(line))
                .is_none();
            self.icache.meta[line].verified = if fresh { self.version } else { 0 };
            fresh
        };
        if fresh {
            self.memory.watch(meta.pa, self.icache.line_bytes);
            self.fetched_line = Some(FetchedLine {
                mva: meta.va,
                pa: meta.pa,
                mem,
                line,
            });
        }
    }
}
