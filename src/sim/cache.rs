//! One set-associative cache of the model: lines with their data and, per
//! byte, the store operation the byte's value came from (its version).

use super::Writer;
use super::config::{CacheConfig, Indexing, Replacement};

/// In [`Cache::flat`]: the line's bytes have versions of their own.
const MIXED: u64 = u64::MAX;

/// Bookkeeping of one line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LineMeta {
    pub valid: bool,
    pub dirty: bool,
    /// Line-aligned virtual address it was filled through (VIVT tag; the
    /// FCSE-modified address with [`Indexing::VivtKeyed`]).
    pub va: u32,
    /// Line-aligned physical address (VIPT/PIPT tag; where VIVT writes back).
    pub pa: u32,
    /// A version at which every byte of the line was the newest (0: not
    /// known): while its memory's truth has not changed since, it still is
    /// (see `Sim::line_is_fresh`).
    pub verified: u64,
}

/// The first way of a set (its lines' `tags`) whose tag is `tag`. Four
/// ways (every preset's caches) are compared unrolled: every access looks
/// a set up, and a miss compares every way (a loop was 5% of a thrashing
/// workload's instructions).
#[inline(always)]
fn find_way(set: &[u32], tag: u32) -> Option<usize> {
    if let Ok(&[a, b, c, d]) = <&[u32; 4]>::try_from(set) {
        return if a == tag {
            Some(0)
        } else if b == tag {
            Some(1)
        } else if c == tag {
            Some(2)
        } else if d == tag {
            Some(3)
        } else {
            None
        };
    }
    set.iter().position(|&t| t == tag)
}

/// How a line is looked up: the address that indexes and the tag to match.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    /// The (modified) virtual address.
    pub va: u32,
    pub pa: u32,
}

pub(crate) struct Cache {
    pub cfg: CacheConfig,
    pub sets: usize,
    pub ways: usize,
    pub line_bytes: usize,
    line_shift: u32,
    pub meta: Vec<LineMeta>,
    /// Per line: the tag a lookup compares (the line's virtual address for
    /// VIVT, its physical one for VIPT and PIPT) with bit 0 set while it
    /// is valid, else 0 — `meta`'s `valid` and tag in 4 bytes, so that a
    /// lookup reads one host cache line per set, not a set of `meta`.
    /// Kept by [`Cache::install`] and [`Cache::invalidate`], the only
    /// writers of `valid`, `va` and `pa`.
    tags: Vec<u32>,
    /// How many lines are invalid (kept with `tags`): a fill of a full
    /// cache, every fill when it thrashes, skips looking for one.
    invalid: usize,
    /// Per line: the last store into it while it was dirty (D-cache; for
    /// the reports of its write-back). Set with `dirty` by every store
    /// that dirties a line, and read only while the line is dirty: a fill
    /// leaves it. Beside `meta`, not in it: a lookup reads a set's `meta`,
    /// and the smaller it is the fewer host cache lines a lookup touches.
    pub last_store: Vec<Option<Writer>>,
    /// `line_bytes` data bytes per line, line after line.
    pub data: Vec<u8>,
    /// The version of every data byte of the lines that are not flat.
    versions: Vec<u64>,
    /// Per line: the version all its bytes have, or [`MIXED`] (then each
    /// byte's is in `versions`). Most fills copy a settled granule, all of
    /// one version: storing it once spares writing (and later reading) a
    /// line's worth of versions, the larger part of a miss's memory
    /// traffic.
    flat: Vec<u64>,
    /// Per set, the way the next round-robin fill replaces (u32: a valid
    /// geometry may have up to 2^21 ways).
    pub round_robin: Vec<u32>,
    pub rng: u64,
}

impl Cache {
    /// The cache of `cfg`, whose geometry [`CpuModel::validate`] accepted
    /// (sets, ways and line are powers of two, at least one set).
    ///
    /// [`CpuModel::validate`]: super::CpuModel::validate
    pub fn new(cfg: CacheConfig) -> Self {
        let g = cfg.geometry;
        let lines = g.sets() * g.ways;
        let rng = match cfg.replacement {
            Replacement::PseudoRandom { seed: 0 } => 0x9e37_79b9_7f4a_7c15,
            Replacement::PseudoRandom { seed } => seed,
            Replacement::RoundRobin => 0,
        };
        Cache {
            cfg,
            sets: g.sets(),
            ways: g.ways,
            line_bytes: g.line_bytes,
            line_shift: g.line_bytes.trailing_zeros(),
            meta: vec![LineMeta::default(); lines],
            tags: vec![0; lines],
            invalid: lines,
            last_store: vec![None; lines],
            data: vec![0; lines * g.line_bytes],
            versions: vec![0; lines * g.line_bytes],
            flat: vec![MIXED; lines],
            round_robin: vec![0; g.sets()],
            rng,
        }
    }

    pub fn line_base(&self, addr: u32) -> u32 {
        addr & !(self.line_bytes as u32 - 1)
    }

    /// The set a probe falls in.
    pub fn set_of(&self, probe: &Probe) -> usize {
        let index_addr = match self.cfg.indexing {
            Indexing::Pipt => probe.pa,
            Indexing::Vivt | Indexing::VivtKeyed | Indexing::Vipt => probe.va,
        };
        ((index_addr >> self.line_shift) as usize) & (self.sets - 1)
    }

    /// The tag lines of `probe`'s address carry in `tags` when valid.
    #[inline]
    fn tag(&self, va: u32, pa: u32) -> u32 {
        let addr = match self.cfg.indexing {
            Indexing::Vivt | Indexing::VivtKeyed => va,
            Indexing::Vipt | Indexing::Pipt => pa,
        };
        // Lines are at least 8 bytes (`CacheGeometry`): bit 0 is free.
        self.line_base(addr) | 1
    }

    /// The line (index into `meta`) that hits for `probe`, if any.
    #[inline]
    pub fn lookup(&self, probe: &Probe) -> Option<usize> {
        self.lookup_in(self.set_of(probe), probe)
    }

    /// [`lookup`](Self::lookup) in `probe`'s set, which the caller has
    /// (to give a fill on a miss: [`victim`](Self::victim)).
    #[inline]
    pub fn lookup_in(&self, set: usize, probe: &Probe) -> Option<usize> {
        let base = set * self.ways;
        let tag = self.tag(probe.va, probe.pa);
        find_way(&self.tags[base..base + self.ways], tag).map(|w| base + w)
    }

    /// Makes line `i` valid, clean, filled through `va` from `pa` (both
    /// line-aligned); the caller sets the rest of its `meta`.
    #[inline]
    pub fn install(&mut self, i: usize, va: u32, pa: u32) {
        let meta = &mut self.meta[i];
        self.invalid -= usize::from(!meta.valid);
        meta.valid = true;
        meta.dirty = false;
        meta.va = va;
        meta.pa = pa;
        self.tags[i] = self.tag(va, pa);
    }

    /// Debug builds: every line's tag is its `meta`'s.
    #[cfg(debug_assertions)]
    pub fn check_tags(&self) {
        for (i, meta) in self.meta.iter().enumerate() {
            let expected = if meta.valid {
                self.tag(meta.va, meta.pa)
            } else {
                0
            };
            assert_eq!(self.tags[i], expected, "line {i}'s lookup tag");
        }
        let invalid = self.meta.iter().filter(|m| !m.valid).count();
        assert_eq!(self.invalid, invalid, "the count of invalid lines");
    }

    /// Makes line `i` invalid.
    #[inline]
    pub fn invalidate(&mut self, i: usize) {
        self.invalid += usize::from(self.meta[i].valid);
        self.meta[i].valid = false;
        self.tags[i] = 0;
    }

    /// The line a fill of set `set` replaces (an invalid one first).
    #[inline]
    pub fn victim(&mut self, set: usize) -> usize {
        let base = set * self.ways;
        if self.invalid != 0
            && let Some(w) = find_way(&self.tags[base..base + self.ways], 0)
        {
            return base + w;
        }
        // `ways` is a power of two (`CpuModel::validate`): masks, not
        // divisions, on the path of every miss.
        let last = self.ways - 1;
        let way = match self.cfg.replacement {
            Replacement::RoundRobin => {
                let w = self.round_robin[set] as usize & last;
                self.round_robin[set] = ((w + 1) & last) as u32;
                w
            }
            Replacement::PseudoRandom { .. } => {
                // xorshift64
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                (self.rng & last as u64) as usize
            }
        };
        base + way
    }

    /// The `size` bytes (1, 2 or 4, naturally aligned) at `offset` in
    /// line `i`, little-endian. Sized reads, not a copy of a run-time
    /// length: every load comes here.
    #[inline]
    pub fn read(&self, i: usize, offset: usize, size: u32) -> u32 {
        let at = i * self.line_bytes + offset;
        match size {
            1 => u32::from(self.data[at]),
            2 => u32::from(u16::from_le_bytes([self.data[at], self.data[at + 1]])),
            _ => u32::from_le_bytes(self.data[at..at + 4].try_into().expect("4 bytes")),
        }
    }

    /// The version of byte `k` of line `i`.
    #[inline]
    pub fn version(&self, i: usize, k: usize) -> u64 {
        match self.flat[i] {
            MIXED => self.versions[i * self.line_bytes + k],
            v => v,
        }
    }

    /// The versions of the bytes from `offset` in line `i`, into `out`.
    #[inline]
    pub fn versions_into(&self, i: usize, offset: usize, out: &mut [u64]) {
        match self.flat[i] {
            MIXED => {
                let at = i * self.line_bytes + offset;
                super::copy(out, &self.versions[at..at + out.len()]);
            }
            v => out.fill(v),
        }
    }

    /// Makes every byte of line `i` have `version`.
    #[inline]
    pub fn set_flat(&mut self, i: usize, version: u64) {
        debug_assert_ne!(version, MIXED);
        self.flat[i] = version;
    }

    /// The versions of line `i`'s bytes, to change.
    #[inline]
    pub fn versions_mut(&mut self, i: usize) -> &mut [u64] {
        let range = self.bytes(i);
        if self.flat[i] != MIXED {
            self.versions[range.clone()].fill(self.flat[i]);
            self.flat[i] = MIXED;
        }
        &mut self.versions[range]
    }

    /// The versions of line `i`'s bytes, all to be overwritten (a fill).
    #[inline]
    pub fn versions_to_overwrite(&mut self, i: usize) -> &mut [u64] {
        self.flat[i] = MIXED;
        let range = self.bytes(i);
        &mut self.versions[range]
    }

    /// Stores the low `size` bytes (1, 2 or 4, naturally aligned) of
    /// `value` at `offset` in line `i`, each at `version`.
    #[inline]
    pub fn write(&mut self, i: usize, offset: usize, size: u32, value: u32, version: u64) {
        let versions = &mut self.versions_mut(i)[offset..];
        match size {
            1 => versions[0] = version,
            2 => versions[..2].copy_from_slice(&[version; 2]),
            _ => versions[..4].copy_from_slice(&[version; 4]),
        }
        let at = i * self.line_bytes + offset;
        let bytes = value.to_le_bytes();
        match size {
            1 => self.data[at] = bytes[0],
            2 => self.data[at..at + 2].copy_from_slice(&bytes[..2]),
            _ => self.data[at..at + 4].copy_from_slice(&bytes),
        }
    }

    /// Byte range of line `i` in `data`.
    pub fn bytes(&self, i: usize) -> core::ops::Range<usize> {
        i * self.line_bytes..(i + 1) * self.line_bytes
    }

    /// Every valid line (whole-cache operations; never on the access path).
    pub fn valid_lines(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.meta.len()).filter(|&i| self.meta[i].valid)
    }
}
