//! The per-byte records of a granule in play ([`Detail`]).
//!
//! A granule comes into play at the version it was settled at, every
//! byte's memory and truth at that version, by the granule's settled
//! writer; what happens next usually changes a few bytes (a store of 1 to
//! 4) before a sweep settles it again. So a record keeps every byte's
//! truth (compared on every fill and uncached read), but memory's version
//! only of the bytes where it differs from the truth's and the writer only
//! of the bytes stored since, each marked by a bit: bringing a granule
//! into play writes 256 bytes, not 1 KiB.

use super::G;

// One bit per byte of a granule.
const _: () = assert!(G == 32);

/// Per-byte records of a granule in play.
pub(super) struct Detail {
    /// The granule it describes (`u32::MAX` while on the free list).
    pub granule: u32,
    /// Bytes whose truth was set since the granule came into play.
    stored: u32,
    /// Bytes whose memory version is not their truth's.
    behind: u32,
    /// The newest version of the truth of any byte (truths only grow
    /// newer), and its packed writer (`None`: the settled writer): what a
    /// sweep settles the granule by.
    newest: u64,
    newest_writer: Option<u128>,
    /// The truth's version of each byte.
    truth: [u64; G],
    /// Memory's version of each `behind` byte.
    memory: [u64; G],
    /// The packed writer (`pack_writer`) of each `stored` byte.
    writer: [u128; G],
}

/// The bits of `n` bytes from `off` (`off + n <= G`).
#[inline]
fn mask(off: usize, n: usize) -> u32 {
    (((1u64 << n) - 1) << off) as u32
}

impl Detail {
    pub fn new() -> Self {
        Detail {
            granule: u32::MAX,
            stored: 0,
            behind: 0,
            newest: 0,
            newest_writer: None,
            truth: [0; G],
            memory: [0; G],
            writer: [0; G],
        }
    }

    /// Puts the record to use for `granule`, settled at `base`: every
    /// byte's memory and truth are at `base`.
    #[inline]
    pub fn start(&mut self, granule: u32, base: u64) {
        self.granule = granule;
        self.stored = 0;
        self.behind = 0;
        self.newest = base;
        self.newest_writer = None;
        self.truth.fill(base);
    }

    /// Whether byte `k`'s truth was set since the granule came into play
    /// (else its writer is the granule's settled writer).
    #[inline]
    fn is_stored(&self, k: usize) -> bool {
        self.stored & (1 << k) != 0
    }

    /// The packed writer of byte `k`, or `None` for the granule's settled
    /// writer.
    #[inline]
    pub fn writer(&self, k: usize) -> Option<u128> {
        self.is_stored(k).then(|| self.writer[k])
    }

    /// The truth's version of byte `k`.
    #[inline]
    pub fn truth(&self, k: usize) -> u64 {
        self.truth[k]
    }

    /// Whether memory holds the newest version of every byte.
    #[inline]
    pub fn in_step(&self) -> bool {
        self.behind == 0
    }

    /// The newest version of any byte's truth.
    #[inline]
    pub fn newest(&self) -> u64 {
        self.newest
    }

    /// The packed writer of the newest truth (`None`: the granule's
    /// settled writer). Each version is handed out to one writer, so this
    /// is the writer of every byte at the newest version.
    pub fn newest_writer(&self) -> Option<u128> {
        self.newest_writer
    }

    /// Whether memory holds the newest version of the `n` bytes from `off`.
    #[inline]
    pub fn in_step_at(&self, off: usize, n: usize) -> bool {
        self.behind & mask(off, n) == 0
    }

    /// Memory's versions of the bytes from `off`, into `out`.
    #[inline]
    pub fn memory_versions(&self, off: usize, out: &mut [u64]) {
        crate::sim::copy(out, &self.truth[off..off + out.len()]);
        for_bits(self.behind & mask(off, out.len()), |k| {
            out[k - off] = self.memory[k];
        });
    }

    /// The first of the bytes from `off` whose version in `seen` is not
    /// the truth's.
    #[inline]
    pub fn first_stale(&self, off: usize, seen: &[u64]) -> Option<usize> {
        let truth = &self.truth[off..off + seen.len()];
        // Without early exits, so that the compiler vectorises: all alike
        // is the rule, and a whole line is compared at a fill.
        let any = seen.iter().zip(truth).fold(0, |a, (s, t)| a | (s ^ t));
        (any != 0)
            .then(|| seen.iter().zip(truth).position(|(s, t)| s != t))
            .flatten()
    }

    /// The first of `n` bytes from `off` whose memory is not the newest,
    /// and memory's version of it.
    pub fn first_behind(&self, off: usize, n: usize) -> Option<(usize, u64)> {
        let behind = self.behind & mask(off, n);
        (behind != 0).then(|| {
            let k = behind.trailing_zeros() as usize;
            (k - off, self.memory[k])
        })
    }

    /// Sets the truth of `n` bytes from `off` to `version` and, with
    /// `memory`, memory's too.
    #[inline]
    pub fn set_truth(&mut self, off: usize, n: usize, version: u64, writer: u128, memory: bool) {
        let m = mask(off, n);
        if memory {
            self.behind &= !m;
        } else {
            // Memory keeps its versions: those of the bytes it was in step
            // for are their truths, about to change. The version is a new
            // store's (the only caller without `memory`), newer than any
            // memory holds: every byte is behind now.
            for_bits(m & !self.behind, |k| self.memory[k] = self.truth[k]);
            debug_assert!((off..off + n).all(|k| self.memory[k] < version));
            self.behind |= m;
        }
        fill(&mut self.truth[off..off + n], version);
        fill(&mut self.writer[off..off + n], writer);
        self.stored |= m;
        if version >= self.newest {
            self.newest = version;
            self.newest_writer = Some(writer);
        }
    }

    /// A buffered store of the `n` bytes from `off` at `version` lands:
    /// bytes whose truth it still is are in step again; the others were
    /// stored to since, and memory holds this store's version of them.
    /// (What [`Detail::land`] does with `[version; n]`, less its older
    /// check: a buffered store lands in program order, after everything
    /// memory holds.)
    #[inline]
    pub fn land_store(&mut self, off: usize, n: usize, version: u64) {
        let mut newer = 0u32;
        for k in off..off + n {
            newer |= u32::from(self.truth[k] != version) << k;
        }
        for_bits(newer, |k| self.memory[k] = version);
        self.behind = (self.behind & !mask(off, n)) | newer;
    }

    /// Memory now holds the truth's version of the `n` bytes from `off`.
    #[inline]
    pub fn catch_up(&mut self, off: usize, n: usize) {
        self.behind &= !mask(off, n);
    }

    /// Stores `versions` as memory's from `off`; returns the first byte
    /// whose new version is older than the one it replaces.
    #[inline]
    pub fn land(&mut self, off: usize, versions: &[u64]) -> Option<usize> {
        let n = versions.len();
        if n <= 4 {
            // A store: byte by byte.
            let mut older = None;
            for (i, &v) in versions.iter().enumerate() {
                let k = off + i;
                let bit = 1 << k;
                let old = if self.behind & bit != 0 {
                    self.memory[k]
                } else {
                    self.truth[k]
                };
                if older.is_none() && v < old {
                    older = Some(i);
                }
                if v == self.truth[k] {
                    self.behind &= !bit;
                } else {
                    self.memory[k] = v;
                    self.behind |= bit;
                }
            }
            return older;
        }
        let mut old = [0; G];
        let old = &mut old[..n];
        self.memory_versions(off, old);
        let truth = &self.truth[off..off + n];
        // Whole-run passes without early exits, so that the compiler
        // vectorises them: a written-back line lands here whole.
        let any_older = versions
            .iter()
            .zip(old.iter())
            .fold(false, |a, (v, o)| a | (v < o));
        let older = if any_older {
            versions.iter().zip(old.iter()).position(|(v, o)| v < o)
        } else {
            None
        };
        // Bit i: versions[i] is not the truth's.
        let mut behind = 0u32;
        for (i, (v, t)) in versions.iter().zip(truth).enumerate() {
            behind |= u32::from(v != t) << i;
        }
        for_bits(behind, |i| self.memory[off + i] = versions[i]);
        let m = mask(off, n);
        self.behind = (self.behind & !m) | (behind << off);
        older
    }
}

/// `dst.fill(value)`, inlined for the lengths of a store.
#[inline(always)]
fn fill<T: Copy>(dst: &mut [T], value: T) {
    match dst.len() {
        4 => dst.copy_from_slice(&[value; 4]),
        2 => dst.copy_from_slice(&[value; 2]),
        1 => dst[0] = value,
        _ => dst.fill(value),
    }
}

/// Calls `f` with the index of each set bit of `bits`, lowest first.
#[inline]
fn for_bits(mut bits: u32, mut f: impl FnMut(usize)) {
    while bits != 0 {
        f(bits.trailing_zeros() as usize);
        bits &= bits - 1;
    }
}

/// The first of `seen` that is not `version`.
#[inline]
pub(super) fn first_not(seen: &[u64], version: u64) -> Option<usize> {
    // Without early exits, so that the compiler vectorises: all alike is
    // the rule, and a whole line is compared at a fill.
    let any = seen.iter().fold(0, |a, s| a | (s ^ version));
    (any != 0)
        .then(|| seen.iter().position(|&s| s != version))
        .flatten()
}
