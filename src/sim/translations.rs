//! The translations of the last few pages the CPU touched, so that an
//! access does not look its page up in a hash map (or the TLB) each time.
//!
//! Not part of the modelled hardware: it only remembers what
//! [`Sim::translate`](super::Sim) would compute again. An entry holds while
//! the current space and the table epoch are those it was made under and
//! nothing changed a mapping, the TLB or the key since (each such change
//! [clears](Translations::clear) them all). Under those conditions a
//! repeated walk through the TLB would find the entry it made, checked at
//! this epoch, and do nothing else: no walk, no count, no report.

use super::{Mapping, SpaceId};

/// Entries, direct-mapped by virtual page number: as many as a workload
/// that strides across pages visits in a burst (the throughput benchmark's
/// thrashing workload moves to another of 16 pages on every access).
const ENTRIES: usize = 64;

#[derive(Clone, Copy)]
struct Entry {
    /// The [`Translations::generation`] it was made in (0: never made).
    generation: u64,
    space: SpaceId,
    page: u32,
    /// The table epoch it was made at (`Sim::table_epoch`).
    epoch: u64,
    mapping: Mapping,
    global: bool,
}

pub(super) struct Translations {
    entries: [Entry; ENTRIES],
    /// Bumped by [`clear`](Self::clear): older entries no longer count.
    generation: u64,
}

impl Translations {
    pub fn new() -> Self {
        let empty = Entry {
            generation: 0,
            space: SpaceId(0),
            page: 0,
            epoch: 0,
            mapping: Mapping {
                frame: 0,
                mem: super::MemType::StronglyOrdered,
                writable: false,
            },
            global: false,
        };
        Translations {
            entries: [empty; ENTRIES],
            generation: 1,
        }
    }

    /// The mapping of virtual page `page` in `space` at table epoch
    /// `epoch`, and whether it is global, if remembered.
    #[inline]
    pub fn get(&self, space: SpaceId, page: u32, epoch: u64) -> Option<(Mapping, bool)> {
        let e = &self.entries[page as usize % ENTRIES];
        (e.generation == self.generation && e.page == page && e.space == space && e.epoch == epoch)
            .then_some((e.mapping, e.global))
    }

    #[inline]
    pub fn insert(
        &mut self,
        space: SpaceId,
        page: u32,
        epoch: u64,
        mapping: Mapping,
        global: bool,
    ) {
        self.entries[page as usize % ENTRIES] = Entry {
            generation: self.generation,
            space,
            page,
            epoch,
            mapping,
            global,
        };
    }

    /// Forgets every entry (a mapping, the TLB, the space or its key changed).
    pub fn clear(&mut self) {
        self.generation += 1;
    }
}
