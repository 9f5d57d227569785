//! A fingerprint of the model's state for bounded exhaustive checking
//! (`check::exhaustive`): what decides the model's future behaviour and
//! its oracle's verdicts, with every version number abstracted to whether
//! it is the byte's newest (operation counters grow forever, so two runs
//! reaching the same state never share them).
//!
//! Hashed: the current space and key, each space's key and table; both
//! caches' lines (valid, dirty, tags, data, each byte newest or not) and
//! replacement state; the TLB (entries and ASIDs, not their check epochs);
//! the write and write-back buffers; the branch target cache; and, for
//! the physical ranges the caller names, memory bytes, whether each is
//! newest and whether its contents are declared dead.

use core::hash::{Hash, Hasher};
use std::vec::Vec;

use super::cache::Cache;
use super::write_buffer::Pending;
use super::{Sim, Writer, pack_writer};

impl Sim {
    /// Feeds the model's state into `h`, memory only over `ranges`
    /// (physical `(start, len)` pairs).
    pub fn fingerprint<H: Hasher>(&self, ranges: &[(u32, u32)], h: &mut H) {
        self.current.hash(h);
        self.current_key.hash(h);
        for space in &self.spaces {
            space.key.hash(h);
            if let Some((l1, arch)) = space.table {
                l1.as_u32().hash(h);
                core::mem::discriminant(&arch).hash(h);
            }
        }
        self.cache_fingerprint(&self.dcache, h);
        self.cache_fingerprint(&self.icache, h);
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
                    (s.version == self.truth_version[s.pa as usize]).hash(h);
                }
                Pending::WriteBack(w) => {
                    (1u8, w.pa, w.va, w.len).hash(h);
                    w.bytes[..w.len].hash(h);
                    for (i, v) in w.versions[..w.len].iter().enumerate() {
                        (*v == self.truth_version[w.pa as usize + i]).hash(h);
                    }
                }
            }
        }
        for entry in self.btc.entries.iter().flatten() {
            (entry.va, entry.size, entry.bytes).hash(h);
        }
        let dead = pack_writer(Writer::Dead);
        for &(start, len) in ranges {
            let r = start as usize..(start + len) as usize;
            self.memory[r.clone()].hash(h);
            for p in r {
                (
                    self.memory_versions[p] == self.truth_version[p],
                    self.truth_writer[p] == dead,
                )
                    .hash(h);
            }
        }
    }

    fn cache_fingerprint<H: Hasher>(&self, cache: &Cache, h: &mut H) {
        cache.round_robin.hash(h);
        cache.rng.hash(h);
        for i in cache.valid_lines() {
            let m = cache.meta[i];
            (i, m.dirty, m.va, m.pa).hash(h);
            let bytes = cache.bytes(i);
            cache.data[bytes.clone()].hash(h);
            for (k, b) in bytes.enumerate() {
                (cache.versions[b] == self.truth_version[m.pa as usize + k]).hash(h);
            }
        }
    }
}
