//! The ARMv6 branch target cache, as the model keeps it: a small
//! virtually indexed cache of fetched instructions.
//!
//! ARM1136JF-S and ARM1176JZF-S predict branches with a branch target
//! address cache (recalled from the TRMs' prefetch-unit chapters: 128
//! entries, direct mapped, indexed by the branch's virtual address). It is
//! flushed by c7,c5,6 ("flush branch target cache") and by c7,c5,0
//! (invalidate entire I-cache: Linux `arch/arm/mm/cache-v6.S` comments its
//! c7,c5,0 as "I+BTB cache invalidate"); invalidating an I line by MVA
//! (c7,c5,1) does not flush it — ARMv6 kernels follow their per-line
//! I-cache loops with a separate c7,c5,6 (the L4 lineage's ARM1176
//! `cache.h`, this crate's `Armv6::invalidate_icache_range`), and
//! `Armv6::synchronize_context` flushes it after table and context changes
//! (ARM1136 TRM §3.3.18, ARMv6 ARM B2.7.3, as cited there).
//!
//! Modelling choice: every fetch is treated as a possible branch target —
//! the model does not know which words are branches, and any word may be
//! one — so every fetched word is recorded, and a later fetch of the same
//! virtual address that finds its entry returns the recorded word (the
//! old instruction, if the code changed since): a
//! [`ViolationKind::StaleFetch`](super::ViolationKind::StaleFetch) unless
//! the BTC was flushed. This is stricter than the hardware only where
//! stale non-branch words would never be predicted from; the maintenance
//! it demands is the maintenance the hardware demands for branches.

/// Entries (ARM1136/ARM1176 BTAC: 128, direct mapped).
const ENTRIES: usize = 128;

#[derive(Clone, Copy, Debug)]
pub(crate) struct BtcEntry {
    /// The (modified) virtual address of the fetch.
    pub va: u32,
    /// The physical address it was fetched from (its versions are that
    /// memory's: the model keeps them exact while the entry lives).
    pub pa: u32,
    pub size: u8,
    pub bytes: [u8; 4],
    pub versions: [u64; 4],
}

/// The branch target cache (empty on CPUs without one).
pub(crate) struct Btc {
    pub(super) entries: Vec<Option<BtcEntry>>,
}

impl Btc {
    /// A BTC when `present` (the ARMv6 presets), else none.
    pub fn new(present: bool) -> Self {
        Btc {
            entries: if present {
                vec![None; ENTRIES]
            } else {
                Vec::new()
            },
        }
    }

    fn index(va: u32) -> usize {
        ((va >> 1) as usize) & (ENTRIES - 1)
    }

    /// The entry for a fetch of `size` bytes at `va`, if it hits.
    pub fn lookup(&self, va: u32, size: u8) -> Option<BtcEntry> {
        if self.entries.is_empty() {
            return None;
        }
        self.entries[Self::index(va)].filter(|e| e.va == va && e.size == size)
    }

    /// Whether the CPU has one.
    pub fn enabled(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Records a fetched word; returns the entry it replaces.
    pub fn record(&mut self, entry: BtcEntry) -> Option<BtcEntry> {
        let slot = self.entries.get_mut(Self::index(entry.va))?;
        slot.replace(entry)
    }
}
