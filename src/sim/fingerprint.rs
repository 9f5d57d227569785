//! A fingerprint of the model's state for bounded exhaustive checking
//! (`check::exhaustive`): what decides the model's future behaviour and
//! its oracle's verdicts. Operation counters grow forever, so two runs
//! reaching the same state never share version numbers; the oracle only
//! compares versions (a read with the newest, a landing write-back with
//! memory's), so each is replaced by its rank among the versions the state
//! holds for its byte (memory's, the truth's, each cached or buffered
//! copy's): states alike up to such a renaming hash alike.
//!
//! Hashed: the current space and key, each space's key and table; both
//! caches' lines (valid, dirty, tags, data, versions' ranks) and
//! replacement state; the TLB (entries and ASIDs, not their check epochs);
//! the write and write-back buffers; the branch target cache (with its
//! versions as they are: an entry is checked against the frame a later
//! fetch translates to, which it does not name); and, for the physical
//! ranges the
//! caller names, memory bytes, their versions' ranks and whether their
//! contents are declared dead.

use core::hash::{Hash, Hasher};
use std::vec::Vec;

use rustc_hash::FxHashMap;

use super::cache::Cache;
use super::write_buffer::Pending;
use super::{Sim, Writer, pack_writer};

/// Per byte in a cache line or buffer: the distinct versions, sorted.
struct Ranks(FxHashMap<u32, Vec<u64>>);

impl Ranks {
    fn add(&mut self, pa: u32, version: u64) {
        self.0.entry(pa).or_default().push(version);
    }

    fn rank(&self, sim: &Sim, pa: u32, version: u64) -> usize {
        match self.0.get(&pa) {
            Some(v) => v.binary_search(&version).unwrap_or(usize::MAX),
            // Memory's version, nothing cached or buffered: newest or not.
            None => usize::from(version == sim.memory.truth_version(pa)),
        }
    }
}

impl Sim {
    /// Feeds the model's state into `h`, memory only over `ranges`
    /// (physical `(start, len)` pairs).
    pub fn fingerprint<H: Hasher>(&self, ranges: &[(u32, u32)], h: &mut H) {
        let ranks = self.ranks();
        self.current.hash(h);
        self.current_key.hash(h);
        for space in &self.spaces {
            space.key.hash(h);
            if let Some((l1, arch)) = space.table {
                l1.as_u32().hash(h);
                core::mem::discriminant(&arch).hash(h);
            }
        }
        self.cache_fingerprint(&self.dcache, &ranks, h);
        self.cache_fingerprint(&self.icache, &ranks, h);
        let mut tlb: Vec<_> = self
            .tlb
            .entries
            .iter()
            .flat_map(|(vpn, entries)| {
                entries.iter().map(move |e| {
                    (
                        *vpn,
                        e.asid,
                        e.walked.frame,
                        e.walked.writable,
                        e.walked.global,
                        core::mem::discriminant(&e.walked.mem),
                    )
                })
            })
            .collect();
        tlb.sort_unstable_by_key(|t| (t.0, t.1, t.2, t.3, t.4));
        tlb.hash(h);
        for entry in &self.write_buffer.entries {
            match entry {
                Pending::Store(s) => {
                    (0u8, s.pa, s.len, s.bytes).hash(h);
                    for k in 0..u32::from(s.len) {
                        ranks.rank(self, s.pa + k, s.version).hash(h);
                    }
                }
                Pending::WriteBack(w) => {
                    (1u8, w.pa, w.va, w.len).hash(h);
                    w.bytes[..w.len].hash(h);
                    for (k, v) in w.versions[..w.len].iter().enumerate() {
                        ranks.rank(self, w.pa + k as u32, *v).hash(h);
                    }
                }
            }
        }
        for entry in self.btc.entries.iter().flatten() {
            // Checked against the fetch's frame, which the entry does not
            // name: the versions as they are (such states merge only with
            // the same history).
            (entry.va, entry.size, entry.bytes, entry.versions).hash(h);
        }
        let dead = pack_writer(Writer::Dead);
        for &(start, len) in ranges {
            let r = start..start + len;
            self.memory.data(start, len as usize).hash(h);
            for p in r {
                (
                    ranks.rank(self, p, self.memory.memory_version(p)),
                    self.memory.truth(p).1 == dead,
                )
                    .hash(h);
            }
        }
    }

    /// The versions every cached or buffered byte has somewhere.
    fn ranks(&self) -> Ranks {
        let mut ranks = Ranks(FxHashMap::default());
        for cache in [&self.dcache, &self.icache] {
            for i in cache.valid_lines() {
                let pa = cache.meta[i].pa;
                for k in 0..cache.line_bytes {
                    ranks.add(pa + k as u32, cache.version(i, k));
                }
            }
        }
        for entry in &self.write_buffer.entries {
            match entry {
                Pending::Store(s) => {
                    for k in 0..u32::from(s.len) {
                        ranks.add(s.pa + k, s.version);
                    }
                }
                Pending::WriteBack(w) => {
                    for (k, v) in w.versions[..w.len].iter().enumerate() {
                        ranks.add(w.pa + k as u32, *v);
                    }
                }
            }
        }
        for (&pa, versions) in ranks.0.iter_mut() {
            versions.push(self.memory.memory_version(pa));
            versions.push(self.memory.truth_version(pa));
            versions.sort_unstable();
            versions.dedup();
        }
        ranks
    }

    fn cache_fingerprint<H: Hasher>(&self, cache: &Cache, ranks: &Ranks, h: &mut H) {
        cache.round_robin.hash(h);
        cache.rng.hash(h);
        for i in cache.valid_lines() {
            let m = cache.meta[i];
            (i, m.dirty, m.va, m.pa).hash(h);
            let bytes = cache.bytes(i);
            cache.data[bytes.clone()].hash(h);
            for k in 0..bytes.len() {
                ranks
                    .rank(self, m.pa + k as u32, cache.version(i, k))
                    .hash(h);
            }
        }
    }
}
