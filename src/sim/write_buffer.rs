//! The data side's buffers between the CPU and memory: the write buffer
//! (stores that bypass or write through the D-cache) and the write-back
//! buffer (dirty lines cast out by evictions and cleans).
//!
//! ARM926EJ-S TRM (DDI 0198, ch. 4 "Caches and write buffer", paraphrased):
//! the write buffer takes writes to non-cachable bufferable regions,
//! write-through regions and write misses to write-back regions; a separate
//! write-back buffer in the DCache holds the data of line evictions and
//! cleans of dirty lines. The write buffer has 16 data words and 4 address
//! entries, the write-back buffer 8 data words and one address entry. The
//! drain operation (c7,c10,4) waits for both (the reference digest
//! `arm-cache-mm.md` §1: table walks and DMA masters see neither buffer
//! until a drain).
//!
//! The model keeps both in one queue, oldest first, so that buffered stores
//! and write-backs reach memory in program order: a write-back never
//! overtakes an older buffered store of the same bytes (the order in which
//! a stale line's write-back would land on top of the newer store and lose
//! it). Capacities: `store_slots` stores (the preset's 4 addresses) and one
//! line write-back; a new entry that does not fit first pushes the oldest
//! entries out up to and including the oldest one of its own kind.

use std::collections::VecDeque;

/// Longest line the model buffers (ARM L1 lines are 8 << len ≤ 64 bytes).
pub(crate) const MAX_LINE: usize = 64;

/// Lines the write-back buffer holds (one address entry, ARM926 TRM §1.2).
const WRITE_BACK_SLOTS: usize = 1;

/// A store that bypassed (or wrote through) the D-cache, not yet in memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BufferedStore {
    pub pa: u32,
    pub len: u8,
    pub bytes: [u8; 4],
    pub version: u64,
}

/// A dirty line on its way to memory.
#[derive(Clone, Debug)]
pub(crate) struct BufferedWriteBack {
    /// Line-aligned physical address.
    pub pa: u32,
    /// The (modified) virtual address the line had, for reports.
    pub va: u32,
    pub len: usize,
    pub bytes: [u8; MAX_LINE],
    pub versions: [u64; MAX_LINE],
    /// The line's last store (see `Cache::last_store`).
    pub last_store: Option<super::Writer>,
    /// The line's `LineMeta::verified` when written back: while no
    /// granule of it changed since, its versions are the truth's.
    pub verified: u64,
}

/// One entry of the data-side buffers.
#[derive(Clone, Debug)]
pub(crate) enum Pending {
    Store(BufferedStore),
    WriteBack(Box<BufferedWriteBack>),
}

impl Pending {
    fn is_write_back(&self) -> bool {
        matches!(self, Pending::WriteBack(_))
    }

    /// The version this entry will give the byte at `pa`, if it covers it.
    fn version_of(&self, pa: u32) -> Option<u64> {
        match self {
            Pending::Store(s) => (pa >= s.pa && pa < s.pa + u32::from(s.len)).then_some(s.version),
            Pending::WriteBack(w) => {
                (pa >= w.pa && pa < w.pa + w.len as u32).then(|| w.versions[(pa - w.pa) as usize])
            }
        }
    }
}

/// The write buffer and write-back buffer, in program order.
pub(crate) struct DataBuffers {
    pub(super) entries: VecDeque<Pending>,
    store_slots: usize,
}

impl DataBuffers {
    /// Buffers with room for `store_slots` stores (0: no buffers at all,
    /// everything reaches memory at once).
    pub fn new(store_slots: usize) -> Self {
        DataBuffers {
            entries: VecDeque::new(),
            store_slots,
        }
    }

    /// Whether the model has the buffers.
    pub fn enabled(&self) -> bool {
        self.store_slots > 0
    }

    /// How many of the oldest entries must reach memory before an entry of
    /// the given kind fits.
    pub fn room_for(&self, write_back: bool) -> usize {
        let cap = if write_back {
            WRITE_BACK_SLOTS
        } else {
            self.store_slots
        };
        let held = self
            .entries
            .iter()
            .filter(|e| e.is_write_back() == write_back)
            .count();
        if held < cap {
            return 0;
        }
        self.entries
            .iter()
            .position(|e| e.is_write_back() == write_back)
            .map_or(0, |i| i + 1)
    }

    pub fn push(&mut self, entry: Pending) {
        self.entries.push_back(entry);
    }

    pub fn pop_oldest(&mut self) -> Option<Pending> {
        self.entries.pop_front()
    }

    /// The version memory will hold at `pa` once the buffers drain, if an
    /// entry covers it.
    pub fn newest_version(&self, pa: u32) -> Option<u64> {
        self.entries.iter().rev().find_map(|e| e.version_of(pa))
    }
}
