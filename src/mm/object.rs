//! Memory objects: what a mapping is a window onto.
//!
//! ```text
//!   Objects ── ObjectId ──▶ MemoryObject { kind, size, pages, mappers }
//!                              │
//!                              ├─ pages    page index ──▶ frame   (the page cache)
//!                              └─ mappers  [(space, va, first page, pages), …]
//!                                          (Linux's i_mmap: who maps which
//!                                           offsets, and at what address)
//! ```
//!
//! A file, a shared-memory segment and the shared half of an anonymous
//! `MAP_SHARED` mapping are all objects: pages indexed by offset, present
//! once touched. Private anonymous memory is not an object; its frames
//! belong to the mappings (see [`AddressSpace`](super::space::AddressSpace)).
//!
//! The mapper list answers the question the coherence engine asks when the
//! kernel writes a page-cache page (`flush_dcache_page`): which user
//! addresses, in which address spaces, show page *n*? It is a plain vector
//! searched linearly — objects are mapped by a handful of VMAs in the
//! workloads this crate targets; an interval tree would replace it without
//! changing the interface.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use super::frames::{FRAME_SIZE, SpaceId};
use super::ids::Slots;
use crate::addr::{PhysAddr, VirtAddr};

/// Names an object in an [`Objects`] table: its slot and the slot's
/// generation (see [`ids`](super::ids)). An id kept after its object is
/// destroyed names nothing, even once another object has the slot: every
/// call given it answers [`ObjectError::NoSuchObject`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    slot: u32,
    generation: u32,
}

impl ObjectId {
    /// The table slot, for printing (reused by later objects).
    pub const fn index(self) -> u32 {
        self.slot
    }

    /// How many objects held the slot before this one.
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// An id from its parts, for tests that print errors naming objects
    /// without a table that issued them.
    #[cfg(test)]
    pub(crate) const fn from_parts(slot: u32, generation: u32) -> Self {
        ObjectId { slot, generation }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "object {} (generation {})", self.slot, self.generation)
    }
}

/// What an object stands for. The kind changes no bookkeeping; it tells a
/// reader (and the demo kernel's report) what the pages are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A file's page cache.
    File,
    /// A shared-memory segment (`shmget`, `memfd`).
    SharedMemory,
    /// The backing of a `MAP_SHARED | MAP_ANONYMOUS` mapping.
    SharedAnonymous,
}

/// One VMA's view of an object (an `i_mmap` entry): pages
/// `first_page .. first_page + pages` appear at `start` in `space`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectMapping {
    /// The address space.
    pub space: SpaceId,
    /// Where the window starts (page aligned).
    pub start: VirtAddr,
    /// The object page shown at `start`.
    pub first_page: u32,
    /// Length of the window in pages.
    pub pages: u32,
}

impl ObjectMapping {
    /// The address at which this window shows object page `page`, if it
    /// shows it. (A window built by hand may run past 4 GiB: the pages it
    /// would show there have no address.)
    pub fn address_of(&self, page: u32) -> Option<VirtAddr> {
        let i = page.checked_sub(self.first_page)?;
        if i >= self.pages {
            return None;
        }
        let offset = i.checked_mul(FRAME_SIZE)?;
        self.start.as_u32().checked_add(offset).map(VirtAddr)
    }

    /// True if the window starts on a page and ends by 4 GiB.
    pub fn is_valid(&self) -> bool {
        let end = u64::from(self.start.as_u32()) + u64::from(self.pages) * u64::from(FRAME_SIZE);
        self.start.is_aligned(FRAME_SIZE) && end <= 1 << 32
    }
}

/// Why an object operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectError {
    /// No live object has this id (never created, or destroyed — its slot
    /// may hold another object since).
    NoSuchObject {
        /// The id given.
        id: ObjectId,
    },
    /// A page index at or past the object's size.
    PageOutOfRange {
        /// The object.
        id: ObjectId,
        /// The page asked for.
        page: u32,
        /// The object's size in pages.
        size: u32,
    },
    /// The page already has a frame.
    PagePresent {
        /// The object.
        id: ObjectId,
        /// The page.
        page: u32,
        /// The frame it has.
        pa: PhysAddr,
    },
    /// The page has no frame (it is not resident).
    PageAbsent {
        /// The object.
        id: ObjectId,
        /// The page.
        page: u32,
    },
    /// The mapper list has no such window.
    NoSuchMapping {
        /// The object.
        id: ObjectId,
        /// The window asked for.
        mapping: ObjectMapping,
    },
    /// The object cannot be destroyed while VMAs map it.
    StillMapped {
        /// The object.
        id: ObjectId,
        /// How many windows remain.
        mappers: usize,
    },
    /// A window that does not start on a page or runs past 4 GiB.
    BadWindow {
        /// The object.
        id: ObjectId,
        /// The window given.
        mapping: ObjectMapping,
    },
    /// The heap could not hold the bookkeeping.
    MetadataAllocFailed,
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ObjectError::NoSuchObject { id } => {
                write!(f, "{id} does not exist (never created, or destroyed)")
            }
            ObjectError::PageOutOfRange { id, page, size } => {
                write!(
                    f,
                    "page {page} is past the end of {id}, which has {size} pages"
                )
            }
            ObjectError::PagePresent { id, page, pa } => {
                write!(f, "page {page} of {id} already has frame {pa}")
            }
            ObjectError::PageAbsent { id, page } => {
                write!(f, "page {page} of {id} is not resident")
            }
            ObjectError::NoSuchMapping { id, mapping } => write!(
                f,
                "{id} has no window of {} pages from its page {} at {} in {}",
                mapping.pages, mapping.first_page, mapping.start, mapping.space
            ),
            ObjectError::StillMapped { id, mappers } => write!(
                f,
                "{id} is still mapped by {mappers} VMA(s): unmap them before destroying it"
            ),
            ObjectError::BadWindow { id, mapping } => write!(
                f,
                "a window of {} pages from page {} of {id}, at {} in {}, does not start on a \
                 page boundary or runs past 4 GiB",
                mapping.pages, mapping.first_page, mapping.start, mapping.space
            ),
            ObjectError::MetadataAllocFailed => {
                f.write_str("could not allocate memory-object bookkeeping")
            }
        }
    }
}

impl core::error::Error for ObjectError {}

/// A file, segment or shared anonymous region: its resident pages and the
/// windows onto it.
#[derive(Clone, Debug)]
pub struct MemoryObject {
    kind: ObjectKind,
    size: u32,
    pages: BTreeMap<u32, PhysAddr>,
    mappers: Vec<ObjectMapping>,
}

impl MemoryObject {
    /// What it is.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }
    /// Size in pages.
    pub fn size(&self) -> u32 {
        self.size
    }
    /// The frame holding page `page`, if resident.
    pub fn page(&self, page: u32) -> Option<PhysAddr> {
        self.pages.get(&page).copied()
    }
    /// Every resident page, by index.
    pub fn pages(&self) -> impl Iterator<Item = (u32, PhysAddr)> + '_ {
        self.pages.iter().map(|(&i, &pa)| (i, pa))
    }
    /// Every window onto the object.
    pub fn mappers(&self) -> &[ObjectMapping] {
        &self.mappers
    }
    /// The user addresses that show page `page`: the places a kernel write
    /// to that page must be made visible.
    pub fn addresses_of(&self, page: u32) -> impl Iterator<Item = (SpaceId, VirtAddr)> + '_ {
        self.mappers
            .iter()
            .filter_map(move |m| Some((m.space, m.address_of(page)?)))
    }
}

/// The table of live objects, indexed by [`ObjectId`]. Slots of destroyed
/// objects are reused; their ids are not.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    slots: Slots<MemoryObject>,
}

impl Objects {
    /// An empty table.
    pub const fn new() -> Self {
        Objects {
            slots: Slots::new(),
        }
    }

    /// Creates an object of `size` pages, none resident.
    pub fn create(&mut self, kind: ObjectKind, size: u32) -> Result<ObjectId, ObjectError> {
        let object = MemoryObject {
            kind,
            size,
            pages: BTreeMap::new(),
            mappers: Vec::new(),
        };
        let (slot, generation) = self
            .slots
            .insert(object)
            .map_err(|_| ObjectError::MetadataAllocFailed)?;
        Ok(ObjectId { slot, generation })
    }

    /// The object, if it exists.
    pub fn get(&self, id: ObjectId) -> Result<&MemoryObject, ObjectError> {
        self.slots
            .get(id.slot, id.generation)
            .ok_or(ObjectError::NoSuchObject { id })
    }

    fn get_mut(&mut self, id: ObjectId) -> Result<&mut MemoryObject, ObjectError> {
        self.slots
            .get_mut(id.slot, id.generation)
            .ok_or(ObjectError::NoSuchObject { id })
    }

    /// Live objects and their ids.
    pub fn iter(&self) -> impl Iterator<Item = (ObjectId, &MemoryObject)> + '_ {
        self.slots
            .iter()
            .map(|(slot, generation, o)| (ObjectId { slot, generation }, o))
    }

    /// Makes `pa` the frame of page `page` (it was not resident).
    pub fn insert_page(
        &mut self,
        id: ObjectId,
        page: u32,
        pa: PhysAddr,
    ) -> Result<(), ObjectError> {
        let object = self.get_mut(id)?;
        if page >= object.size {
            return Err(ObjectError::PageOutOfRange {
                id,
                page,
                size: object.size,
            });
        }
        if let Some(&present) = object.pages.get(&page) {
            return Err(ObjectError::PagePresent {
                id,
                page,
                pa: present,
            });
        }
        object.pages.insert(page, pa);
        Ok(())
    }

    /// Takes page `page` out of the object (a fault that added it failed
    /// before anything filled it); returns its frame, which the caller
    /// frees.
    pub fn remove_page(&mut self, id: ObjectId, page: u32) -> Result<PhysAddr, ObjectError> {
        let object = self.get_mut(id)?;
        let size = object.size;
        object.pages.remove(&page).ok_or(if page < size {
            ObjectError::PageAbsent { id, page }
        } else {
            ObjectError::PageOutOfRange { id, page, size }
        })
    }

    /// Records a window onto the object; refuses one that does not start
    /// on a page or runs past 4 GiB ([`ObjectError::BadWindow`]).
    pub fn add_mapper(&mut self, id: ObjectId, mapping: ObjectMapping) -> Result<(), ObjectError> {
        let object = self.get_mut(id)?;
        if !mapping.is_valid() {
            return Err(ObjectError::BadWindow { id, mapping });
        }
        object
            .mappers
            .try_reserve(1)
            .map_err(|_| ObjectError::MetadataAllocFailed)?;
        object.mappers.push(mapping);
        Ok(())
    }

    /// Forgets a window (exactly as it was added).
    pub fn remove_mapper(
        &mut self,
        id: ObjectId,
        mapping: ObjectMapping,
    ) -> Result<(), ObjectError> {
        let object = self.get_mut(id)?;
        let i = object
            .mappers
            .iter()
            .position(|m| *m == mapping)
            .ok_or(ObjectError::NoSuchMapping { id, mapping })?;
        object.mappers.remove(i);
        Ok(())
    }

    /// Destroys an object no VMA maps; returns its resident frames, which
    /// the caller frees (after making sure no cache lines of them remain
    /// that could be written back over the next owner's data).
    pub fn destroy(&mut self, id: ObjectId) -> Result<Vec<PhysAddr>, ObjectError> {
        let mappers = self.get(id)?.mappers.len();
        if mappers != 0 {
            return Err(ObjectError::StillMapped { id, mappers });
        }
        let object = self
            .slots
            .remove(id.slot, id.generation)
            .map_err(|_| ObjectError::MetadataAllocFailed)?
            .ok_or(ObjectError::NoSuchObject { id })?;
        Ok(object.pages.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: u32, pages: u32) -> ObjectMapping {
        ObjectMapping {
            space: SpaceId::from_parts(1, 0),
            start: VirtAddr(start),
            first_page: 0,
            pages,
        }
    }

    /// `start + i × 4 KiB` overflowed for a window running past 4 GiB.
    #[test]
    fn a_window_past_4_gib_shows_no_address_there() {
        let w = window(0xffff_f000, 2);
        assert_eq!(w.address_of(0), Some(VirtAddr(0xffff_f000)));
        assert_eq!(w.address_of(1), None);
        assert_eq!(window(0, u32::MAX).address_of(0x10_0000), None);
    }

    #[test]
    fn windows_past_4_gib_or_off_a_page_are_refused() {
        let mut objects = Objects::new();
        let id = objects.create(ObjectKind::File, 4).unwrap();
        for bad in [
            window(0xffff_f000, 2),
            window(0x1800, 1),
            window(0x1000, u32::MAX),
        ] {
            assert_eq!(
                objects.add_mapper(id, bad),
                Err(ObjectError::BadWindow { id, mapping: bad })
            );
        }
        assert!(objects.get(id).unwrap().mappers().is_empty());
        objects.add_mapper(id, window(0xffff_f000, 1)).unwrap();
        assert_eq!(
            objects.get(id).unwrap().addresses_of(0).collect::<Vec<_>>(),
            [(SpaceId::from_parts(1, 0), VirtAddr(0xffff_f000))]
        );
    }
}
