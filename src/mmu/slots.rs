//! The set of a page table's reserved slots (`PageTable::reserve_page_slot`).
//!
//! It lives on the heap (feature `alloc`). Without the heap no slot can be
//! reserved, and the set is empty and stays so: the tables, the mapping
//! calls and the MMU bring-up still work for a kernel with no allocator.

use super::TableError;

/// Sorted addresses of reserved slots.
#[derive(Clone, Default)]
pub(super) struct SlotSet {
    #[cfg(feature = "alloc")]
    sorted: alloc::vec::Vec<u32>,
}

impl SlotSet {
    pub(super) fn len(&self) -> usize {
        #[cfg(feature = "alloc")]
        return self.sorted.len();
        #[cfg(not(feature = "alloc"))]
        0
    }

    pub(super) fn contains(&self, va: u32) -> bool {
        #[cfg(feature = "alloc")]
        return self.sorted.binary_search(&va).is_ok();
        #[cfg(not(feature = "alloc"))]
        {
            let _ = va;
            false
        }
    }

    /// Makes room for `va` (not present: else `ReservedSlot`), changing
    /// nothing the caller can see; [`commit`](Self::commit) inserts it.
    /// Without the heap: `MetadataAllocFailed`.
    pub(super) fn prepare(&mut self, va: u32) -> Result<(), TableError> {
        if self.contains(va) {
            return Err(TableError::ReservedSlot {
                va: crate::addr::VirtAddr(va),
            });
        }
        #[cfg(feature = "alloc")]
        return self
            .sorted
            .try_reserve(1)
            .map_err(|_| TableError::MetadataAllocFailed);
        #[cfg(not(feature = "alloc"))]
        Err(TableError::MetadataAllocFailed)
    }

    /// Inserts `va` after a successful [`prepare`](Self::prepare) (no
    /// allocation: the room is there).
    pub(super) fn commit(&mut self, va: u32) {
        #[cfg(feature = "alloc")]
        if let Err(at) = self.sorted.binary_search(&va) {
            self.sorted.insert(at, va);
        }
        #[cfg(not(feature = "alloc"))]
        let _ = va;
    }

    /// Removes `va`; false if it was not there.
    pub(super) fn remove(&mut self, va: u32) -> bool {
        #[cfg(feature = "alloc")]
        return match self.sorted.binary_search(&va) {
            Ok(at) => {
                self.sorted.remove(at);
                true
            }
            Err(_) => false,
        };
        #[cfg(not(feature = "alloc"))]
        {
            let _ = va;
            false
        }
    }

    /// This set with `other`'s slots in `[start, end)` added.
    pub(super) fn merged(&self, other: &SlotSet, start: u64, end: u64) -> Result<Self, TableError> {
        #[cfg(feature = "alloc")]
        {
            let inherited = other
                .sorted
                .iter()
                .copied()
                .filter(|&va| (start..end).contains(&u64::from(va)));
            let mut sorted = alloc::vec::Vec::new();
            sorted
                .try_reserve(self.sorted.len() + inherited.clone().count())
                .map_err(|_| TableError::MetadataAllocFailed)?;
            sorted.extend(self.sorted.iter().copied().chain(inherited));
            sorted.sort_unstable();
            sorted.dedup();
            Ok(SlotSet { sorted })
        }
        #[cfg(not(feature = "alloc"))]
        {
            let _ = (other, start, end);
            Ok(SlotSet {})
        }
    }
}
