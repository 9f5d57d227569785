//! Generation-checked names: [`SpaceId`] for address spaces, and the slot
//! table behind them and behind [`ObjectId`](super::object::ObjectId).
//!
//! ```text
//!   slot:        0     1     2     3
//!   generation:  4     0     7     2        an id is (slot, generation)
//!   occupant:    A     -     B     C        valid while both match
//!   free slots:  [1]                        reuse bumps nothing: the
//!                                           generation moved at removal
//! ```
//!
//! A slot's generation moves on when its occupant goes, so an id kept past
//! its occupant's end names nothing — not the next occupant of the slot —
//! and lookups answer it with a typed error. A slot whose generation
//! would wrap is retired rather than reused: an id is never given twice.
//! Linux names the same problem in its `pid` structures (a number is
//! reused, the `struct pid` is not); a generational index is the usual
//! answer in Rust (as in the `slotmap` and `generational-arena` crates).

use alloc::collections::TryReserveError;
use alloc::vec::Vec;
use core::fmt;

/// An address space, as the frame database and the coherence engine name
/// it. Issued by [`SpaceIds`] (an [`AddressSpace`](super::space::AddressSpace)
/// gets one when it is made); an id is never issued twice, so one kept
/// after its space is gone cannot name another space.
///
/// One id is reserved: [`SpaceId::KERNEL`] (slot 0, generation 0), the
/// kernel's own mappings (its linear map, windows); it is also
/// `SpaceId::default()`. Every other id comes from [`SpaceIds`], and is
/// unique within one [`MemorySystem`](super::space::MemorySystem).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SpaceId {
    slot: u32,
    generation: u32,
}

impl SpaceId {
    /// The kernel's own address space (never issued to a user space).
    pub const KERNEL: SpaceId = SpaceId {
        slot: 0,
        generation: 0,
    };

    /// The slot: small, reused by later spaces (print it, index by it).
    pub const fn slot(self) -> u32 {
        self.slot
    }

    /// How many spaces held the slot before this one.
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// An id from its parts, for tests and property checks (`check::pure`)
    /// of structures that take ids (the frame database) without the spaces
    /// that own them.
    #[cfg(any(
        test,
        all(feature = "sim", feature = "arbitrary", not(target_os = "none"))
    ))]
    pub(crate) const fn from_parts(slot: u32, generation: u32) -> Self {
        SpaceId { slot, generation }
    }
}

impl fmt::Display for SpaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == SpaceId::KERNEL {
            f.write_str("the kernel's address space")
        } else {
            write!(
                f,
                "address space {} (generation {})",
                self.slot, self.generation
            )
        }
    }
}

/// Issues [`SpaceId`]s and knows which are live. One per
/// [`MemorySystem`](super::space::MemorySystem).
///
/// Ids are unique within one system only: a second `MemorySystem` issues
/// the same (slot, generation) pairs, so a space or an id carried from one
/// system into another's calls is not detected and may name a live space
/// there. A kernel has one memory system; keep it that way, or keep each
/// system's spaces to its own calls.
#[derive(Clone, Debug, Default)]
pub struct SpaceIds {
    // Slot i + 1 (slot 0 is the kernel's).
    slots: Slots<()>,
}

impl SpaceIds {
    /// No space yet.
    pub const fn new() -> Self {
        SpaceIds {
            slots: Slots::new(),
        }
    }

    /// A fresh id (a kernel with its own memory manager names its
    /// processes to the engine with these).
    ///
    /// # Errors
    /// No memory for the slot table.
    pub fn issue(&mut self) -> Result<SpaceId, TryReserveError> {
        let (index, generation) = self.slots.insert(())?;
        Ok(SpaceId {
            slot: index + 1,
            generation,
        })
    }

    /// `id`'s space is gone; false if `id` was not live.
    ///
    /// # Errors
    /// No memory to record the slot as free.
    pub fn release(&mut self, id: SpaceId) -> Result<bool, TryReserveError> {
        let Some(index) = id.slot.checked_sub(1) else {
            return Ok(false);
        };
        Ok(self.slots.remove(index, id.generation)?.is_some())
    }

    /// True if `id` names a space that exists (the kernel's always does).
    pub fn is_live(&self, id: SpaceId) -> bool {
        match id.slot.checked_sub(1) {
            None => id == SpaceId::KERNEL,
            Some(index) => self.slots.get(index, id.generation).is_some(),
        }
    }

    /// How many user spaces exist.
    pub fn live(&self) -> usize {
        self.slots.len()
    }
}

/// A table of values in generation-checked slots (see the module
/// documentation). Every growth goes through `try_reserve`, before
/// anything changes.
#[derive(Clone, Debug)]
pub(crate) struct Slots<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

#[derive(Clone, Debug)]
struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Slots<T> {
    pub(crate) const fn new() -> Self {
        Slots {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Stores `value`; returns its slot and generation.
    pub(crate) fn insert(&mut self, value: T) -> Result<(u32, u32), TryReserveError> {
        if let Some(slot) = self.free.pop() {
            let entry = &mut self.entries[slot as usize];
            entry.value = Some(value);
            self.len += 1;
            return Ok((slot, entry.generation));
        }
        self.entries.try_reserve(1)?;
        self.entries.push(Entry {
            generation: 0,
            value: Some(value),
        });
        self.len += 1;
        Ok((self.entries.len() as u32 - 1, 0))
    }

    /// The value in `slot` if its generation is `generation`.
    pub(crate) fn get(&self, slot: u32, generation: u32) -> Option<&T> {
        self.entries
            .get(slot as usize)
            .filter(|e| e.generation == generation)
            .and_then(|e| e.value.as_ref())
    }

    /// [`get`](Self::get), to change it.
    pub(crate) fn get_mut(&mut self, slot: u32, generation: u32) -> Option<&mut T> {
        self.entries
            .get_mut(slot as usize)
            .filter(|e| e.generation == generation)
            .and_then(|e| e.value.as_mut())
    }

    /// Takes the value out of `slot` if its generation is `generation`;
    /// the slot's generation moves on. `Ok(None)` (nothing changed) for a
    /// stale or unknown id.
    pub(crate) fn remove(
        &mut self,
        slot: u32,
        generation: u32,
    ) -> Result<Option<T>, TryReserveError> {
        if self.get(slot, generation).is_none() {
            return Ok(None);
        }
        self.free.try_reserve(1)?;
        let entry = &mut self.entries[slot as usize];
        let value = entry.value.take();
        self.len -= 1;
        // A slot whose generation would wrap is retired: reusing it would
        // give an id twice.
        if let Some(next) = entry.generation.checked_add(1) {
            entry.generation = next;
            self.free.push(slot);
        }
        Ok(value)
    }

    /// Occupied slots: slot, generation, value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u32, &T)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i as u32, e.generation, e.value.as_ref()?)))
    }

    /// Occupied slots, counted.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_kept_past_its_occupant_names_nothing() {
        let mut slots = Slots::new();
        let (a, ga) = slots.insert('a').unwrap();
        assert_eq!(slots.remove(a, ga).unwrap(), Some('a'));
        let (b, gb) = slots.insert('b').unwrap();
        assert_eq!((b, gb), (a, ga + 1), "the slot is reused, the id is not");
        assert_eq!(slots.get(a, ga), None);
        assert_eq!(
            slots.remove(a, ga).unwrap(),
            None,
            "a stale remove changes nothing"
        );
        assert_eq!(slots.get(b, gb), Some(&'b'));
        assert_eq!(slots.len(), 1);
    }

    #[test]
    fn a_slot_whose_generation_would_wrap_is_retired() {
        let mut slots = Slots::new();
        let (s, _) = slots.insert(1).unwrap();
        slots.entries[s as usize].generation = u32::MAX;
        assert_eq!(slots.remove(s, u32::MAX).unwrap(), Some(1));
        let (t, gt) = slots.insert(2).unwrap();
        assert_ne!(t, s);
        assert_eq!(gt, 0);
        assert_eq!(slots.get(s, u32::MAX), None);
    }

    #[test]
    fn space_ids_are_never_issued_twice_and_the_kernel_s_is_never_issued() {
        let mut ids = SpaceIds::new();
        let a = ids.issue().unwrap();
        assert_ne!(a, SpaceId::KERNEL);
        assert!(ids.is_live(a) && ids.is_live(SpaceId::KERNEL));
        assert!(ids.release(a).unwrap());
        assert!(!ids.release(a).unwrap(), "a second release is refused");
        assert!(!ids.release(SpaceId::KERNEL).unwrap());
        let b = ids.issue().unwrap();
        assert_eq!(b.slot(), a.slot());
        assert_ne!(b, a);
        assert!(!ids.is_live(a) && ids.is_live(b));
        assert_eq!(ids.live(), 1);
        extern crate std;
        use std::string::ToString;
        assert_eq!(b.to_string(), "address space 1 (generation 1)");
    }
}
