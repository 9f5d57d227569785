//! The frame database: per-page state and the reverse map (who maps each
//! physical frame), plus the error type shared with the colour allocator.
//!
//! ```text
//!   FrameDb   first ──────────────────────────────▶ first + frames × 4 KiB
//!             [PageState][PageState][PageState] …   one per 4 KiB frame
//!                  │
//!                  ├─ flags        KERNEL_ALIAS_CLEAN | DIRTY | EXECUTABLE | UNCACHED | CODE_SYNCED
//!                  ├─ user_colour  Some(c) while its user mappings agree on colour c
//!                  └─ mappings     [(space, va, writable, shared, kind), …]
//! ```
//!
//! The state is Linux's `PG_dcache_clean` and NetBSD's per-page attributes
//! and pv list in one place, so the coherence engine can answer "is the
//! kernel alias clean?", "which colours do the user mappings occupy?" and
//! "is there a writer among several aliases?" without walking page tables.
//!
//! The database records; it does not decide. Which flags to set when, and
//! what `user_colour` should be, is the coherence engine's policy.

use alloc::vec::Vec;
use core::fmt;

use bitflags::bitflags;

use crate::addr::{PhysAddr, VirtAddr};

/// Size of a frame (and of a small page) in bytes.
pub const FRAME_SIZE: u32 = 4096;
const FRAME_SHIFT: u32 = 12;
/// Colour counts are limited so a set of colours fits a `u64` mask; 64
/// colours (a 256 KiB way) is well beyond any ARMv5/ARMv6 L1 cache.
pub const MAX_COLOURS: u32 = 64;

/// Why a frame operation failed. Shared by [`FrameDb`] and
/// [`ColourAllocator`](super::colour::ColourAllocator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A physical address that must be 4 KiB aligned is not.
    Misaligned {
        /// The address given.
        pa: PhysAddr,
    },
    /// A mapping's virtual address is not 4 KiB aligned.
    MisalignedVa {
        /// The address given.
        va: VirtAddr,
    },
    /// `first + frames × 4 KiB` lies past the 4 GiB physical address space.
    WrapsPast4GiB {
        /// First frame of the range.
        first: PhysAddr,
        /// Number of frames asked for.
        frames: u32,
    },
    /// The colour count is not a power of two in `1..=64`.
    BadColourCount {
        /// The count given.
        colours: u32,
    },
    /// A colour at or above the allocator's colour count.
    ColourOutOfRange {
        /// The colour asked for.
        colour: u32,
        /// The allocator's colour count.
        colours: u32,
    },
    /// The frame lies outside the managed range.
    OutOfRange {
        /// The address given.
        pa: PhysAddr,
        /// First byte of the managed range.
        first: PhysAddr,
        /// Exclusive end of the managed range (2^32 if it reaches the top).
        end: u64,
    },
    /// No free frame of the requested colour, though frames of other
    /// colours are free.
    NoFrameOfColour {
        /// The colour asked for.
        colour: u32,
        /// Free frames of all colours.
        free: u32,
    },
    /// No free frame at all.
    OutOfMemory,
    /// A request for several frames at once needs more than are free: it
    /// is refused before any is taken.
    NotEnoughFrames {
        /// Frames asked for.
        wanted: u32,
        /// Frames free.
        free: u32,
    },
    /// The heap could not supply the allocator's or database's own
    /// bookkeeping (`try_reserve` failed).
    MetadataAllocFailed {
        /// Bytes that were asked for.
        bytes: usize,
    },
    /// Freeing a frame that is not allocated: a double free, or a frame
    /// never handed out.
    NotAllocated {
        /// The address given.
        pa: PhysAddr,
    },
    /// The frame already has a mapping at this (space, va).
    AlreadyMapped {
        /// The frame.
        pa: PhysAddr,
        /// The address space.
        space: SpaceId,
        /// The virtual address.
        va: VirtAddr,
    },
    /// The frame has no mapping at this (space, va).
    NotMapped {
        /// The frame.
        pa: PhysAddr,
        /// The address space.
        space: SpaceId,
        /// The virtual address.
        va: VirtAddr,
    },
    /// The frame cannot be reset while mappings of it remain.
    StillMapped {
        /// The frame.
        pa: PhysAddr,
        /// How many mappings remain.
        mappings: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::Misaligned { pa } => {
                write!(f, "physical address {pa} is not 4 KiB aligned")
            }
            FrameError::MisalignedVa { va } => {
                write!(f, "virtual address {va} is not 4 KiB aligned")
            }
            FrameError::WrapsPast4GiB { first, frames } => write!(
                f,
                "a range of {frames} frames from {first} wraps past the 4 GiB physical address space"
            ),
            FrameError::BadColourCount { colours } => write!(
                f,
                "a colour count of {colours} is refused: it must be a power of two from 1 to \
                 {MAX_COLOURS}"
            ),
            FrameError::ColourOutOfRange { colour, colours } => {
                write!(
                    f,
                    "colour {colour} is out of range for an allocator of {colours} colours"
                )
            }
            FrameError::OutOfRange { pa, first, end } => write!(
                f,
                "physical address {pa} lies outside the managed frames {first}..{end:#010x}"
            ),
            FrameError::NoFrameOfColour { colour, free } => write!(
                f,
                "no free frame of colour {colour} ({free} free of other colours)"
            ),
            FrameError::OutOfMemory => f.write_str("no free frame"),
            FrameError::NotEnoughFrames { wanted, free } => {
                write!(
                    f,
                    "not enough free frames: {wanted} are needed at once, {free} are free"
                )
            }
            FrameError::MetadataAllocFailed { bytes } => {
                write!(f, "could not allocate {bytes} bytes of frame bookkeeping")
            }
            FrameError::NotAllocated { pa } => write!(
                f,
                "frame {pa} is not allocated (double free, or never handed out)"
            ),
            FrameError::AlreadyMapped { pa, space, va } => {
                write!(f, "frame {pa} is already mapped at {va} in {space}")
            }
            FrameError::NotMapped { pa, space, va } => {
                write!(f, "frame {pa} is not mapped at {va} in {space}")
            }
            FrameError::StillMapped { pa, mappings } => write!(
                f,
                "frame {pa} still has {mappings} mapping(s) and cannot be reset"
            ),
        }
    }
}

impl core::error::Error for FrameError {}

/// An empty vector with room for `n` elements, or a typed error: a kernel
/// heap that cannot hold the bookkeeping must not abort the kernel.
pub(crate) fn try_vec<T>(n: usize) -> Result<Vec<T>, FrameError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| FrameError::MetadataAllocFailed {
            bytes: n.saturating_mul(core::mem::size_of::<T>()),
        })?;
    Ok(v)
}

/// Checks a colour count: a power of two in `1..=MAX_COLOURS`.
pub(crate) const fn check_colours(colours: u32) -> Result<(), FrameError> {
    if colours.is_power_of_two() && colours <= MAX_COLOURS {
        Ok(())
    } else {
        Err(FrameError::BadColourCount { colours })
    }
}

/// A validated run of frames, `first .. first + frames × 4 KiB`, and the
/// address ↔ index arithmetic both frame structures share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameRange {
    first: PhysAddr,
    frames: u32,
}

impl FrameRange {
    pub(crate) const fn new(first: PhysAddr, frames: u32) -> Result<Self, FrameError> {
        if !first.is_aligned(FRAME_SIZE) {
            return Err(FrameError::Misaligned { pa: first });
        }
        // u64 so a range ending exactly at 4 GiB is representable.
        if first.as_u32() as u64 + ((frames as u64) << FRAME_SHIFT) > 1 << 32 {
            return Err(FrameError::WrapsPast4GiB { first, frames });
        }
        Ok(FrameRange { first, frames })
    }

    pub(crate) const fn first(&self) -> PhysAddr {
        self.first
    }

    pub(crate) const fn frames(&self) -> u32 {
        self.frames
    }

    /// Exclusive end; 2^32 when the range reaches the top.
    pub(crate) const fn end(&self) -> u64 {
        self.first.as_u32() as u64 + ((self.frames as u64) << FRAME_SHIFT)
    }

    /// The frame number of `pa` within the range.
    pub(crate) const fn index(&self, pa: PhysAddr) -> Result<u32, FrameError> {
        if !pa.is_aligned(FRAME_SIZE) {
            return Err(FrameError::Misaligned { pa });
        }
        // One comparison covers pa < first too: the subtraction wraps to at
        // least 2^32 − first, and a range that does not wrap past 4 GiB has
        // fewer bytes than that.
        let offset = pa.as_u32().wrapping_sub(self.first.as_u32()) >> FRAME_SHIFT;
        if offset >= self.frames {
            return Err(FrameError::OutOfRange {
                pa,
                first: self.first,
                end: self.end(),
            });
        }
        Ok(offset)
    }

    /// The address of frame number `index` (which must be in range).
    pub(crate) const fn addr(&self, index: u32) -> PhysAddr {
        PhysAddr(self.first.as_u32() + (index << FRAME_SHIFT))
    }
}

bitflags! {
    /// Per-page attributes the coherence engine keeps.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct PageFlags: u8 {
        /// The kernel alias's cache lines are known clean (Linux
        /// `PG_dcache_clean`). A fresh frame starts without it: whatever
        /// wrote it last may have left dirty lines at the kernel alias.
        const KERNEL_ALIAS_CLEAN = 1 << 0;
        /// The page has been written through some mapping (NetBSD `PVF_MOD`).
        const DIRTY = 1 << 1;
        /// Some mapping may execute from the page: the I-cache must be made
        /// coherent before it does (NetBSD `PVF_EXEC`).
        const EXECUTABLE = 1 << 2;
        /// The page's mappings are uncached to resolve an alias conflict
        /// (NetBSD `PVF_NC`).
        const UNCACHED = 1 << 3;
        /// Every user mapping of the page is uncacheable by the owner's
        /// choice (an uncached kernel↔user shared buffer): never restored.
        const ALWAYS_UNCACHED = 1 << 4;
        /// Memory holds the page's newest bytes as the last executable
        /// mapping's I-cache sync left it: no kernel write and no writable
        /// user mapping since, so a further executable mapping needs no
        /// D-cache clean, only the I-cache's part (Linux's
        /// `PG_dcache_clean` as `__sync_icache_dcache` uses it). Cleared
        /// by every kernel write hook and by a writable user mapping.
        const CODE_SYNCED = 1 << 5;
    }
}

pub use super::ids::SpaceId;

/// Whose mapping it is: the kernel's, or a user process's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappingKind {
    /// A kernel mapping (linear map, kmap window, vmalloc).
    Kernel,
    /// A user mapping.
    User,
}

/// One mapping of a frame: an entry of the reverse map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// The address space it lives in.
    pub space: SpaceId,
    /// Its (page-aligned) virtual address.
    pub va: VirtAddr,
    /// The mapping permits writes.
    pub writable: bool,
    /// A shared mapping (`MAP_SHARED`): writes must be seen by the other
    /// sharers, so it may never be copied on write.
    pub shared: bool,
    /// Kernel or user.
    pub kind: MappingKind,
}

/// Everything known about one physical frame.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageState {
    flags: PageFlags,
    user_colour: Option<u8>,
    // A plain Vec (12 bytes on ARM) rather than an inline first entry:
    // most frames have zero or one mapping and an empty Vec costs no heap.
    mappings: Vec<Mapping>,
}

impl PageState {
    /// The page's attributes.
    pub fn flags(&self) -> PageFlags {
        self.flags
    }
    /// The colour its user mappings share, if the engine recorded one
    /// (NetBSD's pv colour).
    pub fn user_colour(&self) -> Option<u8> {
        self.user_colour
    }
    /// Every mapping of the page, in the order they were added.
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }
    /// True if any mapping of the page is recorded.
    pub fn is_mapped(&self) -> bool {
        !self.mappings.is_empty()
    }
}

/// Per-frame state and reverse map for `first .. first + frames × 4 KiB`.
///
/// Every lookup is O(1) by frame number; mapping operations are linear in
/// the page's own mapping count, which is small for all but widely shared
/// pages.
#[derive(Clone)]
pub struct FrameDb {
    range: FrameRange,
    pages: Vec<PageState>,
}

impl fmt::Debug for FrameDb {
    // Thousands of page states would drown the reader; list the mapped ones.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameDb")
            .field("first", &self.range.first())
            .field("frames", &self.range.frames())
            .field(
                "mapped",
                &self.pages.iter().filter(|p| p.is_mapped()).count(),
            )
            .finish()
    }
}

impl FrameDb {
    /// A database for `frames` frames from `first` (4 KiB aligned, not
    /// wrapping past 4 GiB), every page fresh: no flags, no mappings.
    pub fn new(first: PhysAddr, frames: u32) -> Result<Self, FrameError> {
        let range = FrameRange::new(first, frames)?;
        let mut pages = try_vec(frames as usize)?;
        pages.resize_with(frames as usize, PageState::default);
        Ok(FrameDb { range, pages })
    }

    /// First byte of the range.
    pub fn first(&self) -> PhysAddr {
        self.range.first()
    }

    /// Number of frames covered.
    pub fn frames(&self) -> u32 {
        self.range.frames()
    }

    /// The last frame managed (the first when there is only one).
    pub fn last(&self) -> PhysAddr {
        PhysAddr(self.first().as_u32() + (self.frames().max(1) - 1) * FRAME_SIZE)
    }

    /// True if `pa` is a frame of the range.
    pub fn contains(&self, pa: PhysAddr) -> bool {
        self.range.index(pa).is_ok()
    }

    fn page(&self, pa: PhysAddr) -> Result<&PageState, FrameError> {
        let i = self.range.index(pa)?;
        Ok(&self.pages[i as usize])
    }

    fn page_mut(&mut self, pa: PhysAddr) -> Result<&mut PageState, FrameError> {
        let i = self.range.index(pa)?;
        Ok(&mut self.pages[i as usize])
    }

    /// The frame's state.
    pub fn state(&self, pa: PhysAddr) -> Result<&PageState, FrameError> {
        self.page(pa)
    }

    /// The frame's flags, to update in place.
    pub fn flags_mut(&mut self, pa: PhysAddr) -> Result<&mut PageFlags, FrameError> {
        Ok(&mut self.page_mut(pa)?.flags)
    }

    /// Sets `flags`; returns the flags as they were, so a caller can
    /// test-and-set (e.g. flush only if `KERNEL_ALIAS_CLEAN` was clear).
    pub fn set_flags(&mut self, pa: PhysAddr, flags: PageFlags) -> Result<PageFlags, FrameError> {
        let f = self.flags_mut(pa)?;
        let old = *f;
        f.insert(flags);
        Ok(old)
    }

    /// Clears `flags`; returns the flags as they were.
    pub fn clear_flags(&mut self, pa: PhysAddr, flags: PageFlags) -> Result<PageFlags, FrameError> {
        let f = self.flags_mut(pa)?;
        let old = *f;
        f.remove(flags);
        Ok(old)
    }

    /// Records the colour its user mappings share (or `None`); returns the
    /// previous value. Not cleared when the last user mapping goes: the
    /// colour says where stale lines of the page may still sit.
    pub fn set_user_colour(
        &mut self,
        pa: PhysAddr,
        colour: Option<u8>,
    ) -> Result<Option<u8>, FrameError> {
        let page = self.page_mut(pa)?;
        Ok(core::mem::replace(&mut page.user_colour, colour))
    }

    /// Adds a mapping to the frame's reverse map. A second mapping at the
    /// same (space, va) is [`FrameError::AlreadyMapped`]: one virtual page
    /// maps one frame.
    pub fn add_mapping(&mut self, pa: PhysAddr, mapping: Mapping) -> Result<(), FrameError> {
        if !mapping.va.is_aligned(FRAME_SIZE) {
            return Err(FrameError::MisalignedVa { va: mapping.va });
        }
        let page = self.page_mut(pa)?;
        if page
            .mappings
            .iter()
            .any(|m| m.space == mapping.space && m.va == mapping.va)
        {
            return Err(FrameError::AlreadyMapped {
                pa,
                space: mapping.space,
                va: mapping.va,
            });
        }
        let list = &mut page.mappings;
        if list.len() == list.capacity() {
            // The first mapping gets room for exactly one (most pages never
            // have a second); after that growth is amortised so a widely
            // shared page does not reallocate on every new sharer.
            let grown = if list.is_empty() {
                list.try_reserve_exact(1)
            } else {
                list.try_reserve(1)
            };
            grown.map_err(|_| FrameError::MetadataAllocFailed {
                bytes: (list.len() + 1) * core::mem::size_of::<Mapping>(),
            })?;
        }
        list.push(mapping);
        Ok(())
    }

    /// Removes and returns the mapping at (space, va).
    pub fn remove_mapping(
        &mut self,
        pa: PhysAddr,
        space: SpaceId,
        va: VirtAddr,
    ) -> Result<Mapping, FrameError> {
        let page = self.page_mut(pa)?;
        let Some(i) = page
            .mappings
            .iter()
            .position(|m| m.space == space && m.va == va)
        else {
            return Err(FrameError::NotMapped { pa, space, va });
        };
        // `remove`, not `swap_remove`: keeping insertion order makes flush
        // order (and so the model's traces) deterministic.
        Ok(page.mappings.remove(i))
    }

    /// Records that the mapping at (space, va) is now writable or not (its
    /// entry was rewritten); keeps its place in the list.
    pub fn set_writable(
        &mut self,
        pa: PhysAddr,
        space: SpaceId,
        va: VirtAddr,
        writable: bool,
    ) -> Result<(), FrameError> {
        let page = self.page_mut(pa)?;
        let Some(m) = page
            .mappings
            .iter_mut()
            .find(|m| m.space == space && m.va == va)
        else {
            return Err(FrameError::NotMapped { pa, space, va });
        };
        m.writable = writable;
        Ok(())
    }

    /// Every mapping of the frame.
    pub fn mappings(&self, pa: PhysAddr) -> Result<&[Mapping], FrameError> {
        Ok(&self.page(pa)?.mappings)
    }

    /// The frame's user mappings.
    pub fn user_mappings(
        &self,
        pa: PhysAddr,
    ) -> Result<impl Iterator<Item = &Mapping> + '_, FrameError> {
        Ok(self
            .page(pa)?
            .mappings
            .iter()
            .filter(|m| m.kind == MappingKind::User))
    }

    /// The colours (bit c for colour c) that the frame's user mappings
    /// occupy in a cache of `colours` colours: the lines a flush of the page
    /// must reach on a VIPT-aliasing cache.
    pub fn colours_in_use(&self, pa: PhysAddr, colours: u32) -> Result<u64, FrameError> {
        check_colours(colours)?;
        let mask = colours - 1;
        Ok(self.user_mappings(pa)?.fold(0u64, |set, m| {
            set | 1 << ((m.va.as_u32() >> FRAME_SHIFT) & mask)
        }))
    }

    /// True if the frame has two or more mappings and at least one is
    /// writable: the case where aliases can disagree (NetBSD's VIVT test).
    pub fn has_writable_alias(&self, pa: PhysAddr) -> Result<bool, FrameError> {
        let m = &self.page(pa)?.mappings;
        Ok(m.len() >= 2 && m.iter().any(|m| m.writable))
    }

    /// Returns a freed frame to the fresh state: no flags (so its kernel
    /// alias counts as dirty), no colour, and its mapping list's memory
    /// released. A frame that is still mapped cannot be freed.
    pub fn reset(&mut self, pa: PhysAddr) -> Result<(), FrameError> {
        let page = self.page_mut(pa)?;
        if !page.mappings.is_empty() {
            return Err(FrameError::StillMapped {
                pa,
                mappings: page.mappings.len(),
            });
        }
        *page = PageState::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::collections::HashMap;
    use std::format;
    use std::string::ToString;

    use super::*;

    const BASE: PhysAddr = PhysAddr(0x8000_0000);

    fn user(space: u32, va: u32, writable: bool) -> Mapping {
        Mapping {
            space: SpaceId::from_parts(space, 0),
            va: VirtAddr(va),
            writable,
            shared: false,
            kind: MappingKind::User,
        }
    }

    fn kernel(va: u32) -> Mapping {
        Mapping {
            space: SpaceId::KERNEL,
            va: VirtAddr(va),
            writable: true,
            shared: false,
            kind: MappingKind::Kernel,
        }
    }

    #[test]
    fn construction_errors_carry_the_values() {
        assert_eq!(
            FrameDb::new(PhysAddr(0x8000_0800), 4).unwrap_err(),
            FrameError::Misaligned {
                pa: PhysAddr(0x8000_0800)
            }
        );
        assert_eq!(
            FrameDb::new(PhysAddr(0xffff_f000), 2).unwrap_err(),
            FrameError::WrapsPast4GiB {
                first: PhysAddr(0xffff_f000),
                frames: 2
            }
        );
        // Ending exactly at 4 GiB is allowed, and the error names that end.
        let top = FrameDb::new(PhysAddr(0xffff_e000), 2).unwrap();
        assert!(top.contains(PhysAddr(0xffff_f000)));
        assert_eq!(
            top.state(PhysAddr(0x1000)).unwrap_err(),
            FrameError::OutOfRange {
                pa: PhysAddr(0x1000),
                first: PhysAddr(0xffff_e000),
                end: 1 << 32
            }
        );
        let empty = FrameDb::new(BASE, 0).unwrap();
        assert!(!empty.contains(BASE));
    }

    #[test]
    fn lookups_outside_or_misaligned_are_errors() {
        let mut db = FrameDb::new(BASE, 4).unwrap();
        let below = PhysAddr(0x7fff_f000);
        let past = PhysAddr(0x8000_4000);
        for pa in [below, past] {
            let err = FrameError::OutOfRange {
                pa,
                first: BASE,
                end: 0x8000_4000,
            };
            assert_eq!(db.state(pa).unwrap_err(), err);
            assert_eq!(db.mappings(pa).unwrap_err(), err);
            assert_eq!(db.set_flags(pa, PageFlags::DIRTY).unwrap_err(), err);
            assert_eq!(db.clear_flags(pa, PageFlags::DIRTY).unwrap_err(), err);
            assert_eq!(db.flags_mut(pa).unwrap_err(), err);
            assert_eq!(db.set_user_colour(pa, Some(1)).unwrap_err(), err);
            assert_eq!(db.add_mapping(pa, kernel(0xc000_0000)).unwrap_err(), err);
            assert_eq!(
                db.remove_mapping(pa, SpaceId::KERNEL, VirtAddr(0xc000_0000))
                    .unwrap_err(),
                err
            );
            assert_eq!(db.user_mappings(pa).err(), Some(err));
            assert_eq!(db.colours_in_use(pa, 4).unwrap_err(), err);
            assert_eq!(db.has_writable_alias(pa).unwrap_err(), err);
            assert_eq!(db.reset(pa).unwrap_err(), err);
        }
        let odd = PhysAddr(0x8000_1004);
        assert_eq!(
            db.state(odd).unwrap_err(),
            FrameError::Misaligned { pa: odd }
        );
        assert_eq!(
            db.add_mapping(BASE, user(1, 0x1234, false)).unwrap_err(),
            FrameError::MisalignedVa {
                va: VirtAddr(0x1234)
            }
        );
        assert_eq!(
            db.colours_in_use(BASE, 3).unwrap_err(),
            FrameError::BadColourCount { colours: 3 }
        );
        assert_eq!(
            db.colours_in_use(BASE, 128).unwrap_err(),
            FrameError::BadColourCount { colours: 128 }
        );
    }

    #[test]
    fn a_fresh_page_is_dirty_unmapped_and_uncoloured() {
        let db = FrameDb::new(BASE, 2).unwrap();
        let s = db.state(BASE).unwrap();
        assert!(!s.flags().contains(PageFlags::KERNEL_ALIAS_CLEAN));
        assert_eq!(s.flags(), PageFlags::empty());
        assert_eq!(s.user_colour(), None);
        assert!(!s.is_mapped());
        assert!(s.mappings().is_empty());
    }

    #[test]
    fn flags_set_and_clear_report_the_old_value() {
        let mut db = FrameDb::new(BASE, 2).unwrap();
        let pa = PhysAddr(0x8000_1000);
        assert_eq!(
            db.set_flags(pa, PageFlags::KERNEL_ALIAS_CLEAN).unwrap(),
            PageFlags::empty()
        );
        assert_eq!(
            db.set_flags(pa, PageFlags::KERNEL_ALIAS_CLEAN | PageFlags::DIRTY)
                .unwrap(),
            PageFlags::KERNEL_ALIAS_CLEAN
        );
        db.flags_mut(pa).unwrap().insert(PageFlags::EXECUTABLE);
        assert_eq!(
            db.clear_flags(pa, PageFlags::DIRTY).unwrap(),
            PageFlags::KERNEL_ALIAS_CLEAN | PageFlags::DIRTY | PageFlags::EXECUTABLE
        );
        assert_eq!(
            db.state(pa).unwrap().flags(),
            PageFlags::KERNEL_ALIAS_CLEAN | PageFlags::EXECUTABLE
        );
        // The neighbour is untouched.
        assert_eq!(db.state(BASE).unwrap().flags(), PageFlags::empty());
        assert_eq!(db.set_user_colour(pa, Some(2)).unwrap(), None);
        assert_eq!(db.set_user_colour(pa, None).unwrap(), Some(2));
    }

    #[test]
    fn duplicate_and_missing_mappings_are_typed_errors() {
        let mut db = FrameDb::new(BASE, 1).unwrap();
        db.add_mapping(BASE, user(1, 0x1000, true)).unwrap();
        assert_eq!(
            db.add_mapping(BASE, user(1, 0x1000, false)).unwrap_err(),
            FrameError::AlreadyMapped {
                pa: BASE,
                space: SpaceId::from_parts(1, 0),
                va: VirtAddr(0x1000)
            }
        );
        // Same va in another space is a different mapping.
        db.add_mapping(BASE, user(2, 0x1000, false)).unwrap();
        assert_eq!(
            db.remove_mapping(BASE, SpaceId::from_parts(3, 0), VirtAddr(0x1000))
                .unwrap_err(),
            FrameError::NotMapped {
                pa: BASE,
                space: SpaceId::from_parts(3, 0),
                va: VirtAddr(0x1000)
            }
        );
        assert_eq!(
            db.remove_mapping(BASE, SpaceId::from_parts(1, 0), VirtAddr(0x1000))
                .unwrap(),
            user(1, 0x1000, true)
        );
        assert_eq!(db.mappings(BASE).unwrap(), &[user(2, 0x1000, false)]);
    }

    #[test]
    fn colours_in_use_and_writable_aliases() {
        let mut db = FrameDb::new(BASE, 1).unwrap();
        assert_eq!(db.colours_in_use(BASE, 4).unwrap(), 0);
        assert!(!db.has_writable_alias(BASE).unwrap());
        // The kernel alias is not a user colour.
        db.add_mapping(BASE, kernel(0xc000_3000)).unwrap();
        assert_eq!(db.colours_in_use(BASE, 4).unwrap(), 0);
        assert!(!db.has_writable_alias(BASE).unwrap(), "one mapping alone");
        db.add_mapping(BASE, user(1, 0x0001_1000, false)).unwrap();
        db.add_mapping(BASE, user(2, 0x0002_5000, false)).unwrap();
        db.add_mapping(BASE, user(2, 0x0004_6000, false)).unwrap();
        assert_eq!(db.colours_in_use(BASE, 4).unwrap(), 0b0110);
        assert_eq!(db.colours_in_use(BASE, 1).unwrap(), 0b1);
        assert_eq!(db.colours_in_use(BASE, 8).unwrap(), 0b0110_0010);
        assert_eq!(db.user_mappings(BASE).unwrap().count(), 3);
        // The writable kernel alias plus user readers.
        assert!(db.has_writable_alias(BASE).unwrap());
        db.remove_mapping(BASE, SpaceId::KERNEL, VirtAddr(0xc000_3000))
            .unwrap();
        assert!(!db.has_writable_alias(BASE).unwrap(), "readers only");
    }

    #[test]
    fn reset_refuses_a_mapped_frame_and_clears_an_unmapped_one() {
        let mut db = FrameDb::new(BASE, 1).unwrap();
        db.set_flags(BASE, PageFlags::all()).unwrap();
        db.set_user_colour(BASE, Some(3)).unwrap();
        db.add_mapping(BASE, user(1, 0x3000, true)).unwrap();
        db.add_mapping(BASE, user(2, 0x3000, true)).unwrap();
        assert_eq!(
            db.reset(BASE).unwrap_err(),
            FrameError::StillMapped {
                pa: BASE,
                mappings: 2
            }
        );
        db.remove_mapping(BASE, SpaceId::from_parts(1, 0), VirtAddr(0x3000))
            .unwrap();
        db.remove_mapping(BASE, SpaceId::from_parts(2, 0), VirtAddr(0x3000))
            .unwrap();
        db.reset(BASE).unwrap();
        assert_eq!(db.state(BASE).unwrap(), &PageState::default());
    }

    #[test]
    fn failed_metadata_reservation_is_an_error_not_an_abort() {
        assert_eq!(
            try_vec::<u64>(usize::MAX).unwrap_err(),
            FrameError::MetadataAllocFailed { bytes: usize::MAX }
        );
    }

    #[test]
    fn page_state_stays_small() {
        // 16 bytes on a 32-bit target: ~0.4 % of the frame it describes.
        assert!(core::mem::size_of::<PageState>() <= 4 * core::mem::size_of::<usize>());
        // A mapping: its space's generation-checked id (8 bytes: a 32-bit
        // generation, so a slot is reused four billion times before it
        // retires), its address and three flags.
        assert!(core::mem::size_of::<Mapping>() <= 16);
    }

    #[test]
    fn errors_display_their_values() {
        let e = FrameError::OutOfRange {
            pa: PhysAddr(0x1000),
            first: BASE,
            end: 0x8000_4000,
        };
        assert_eq!(
            e.to_string(),
            "physical address 0x00001000 lies outside the managed frames 0x80000000..0x80004000"
        );
        let e = FrameError::AlreadyMapped {
            pa: BASE,
            space: SpaceId::from_parts(7, 0),
            va: VirtAddr(0x1000),
        };
        assert!(e.to_string().contains("address space 7"), "{e}");
        for e in [
            FrameError::Misaligned { pa: BASE },
            FrameError::MisalignedVa { va: VirtAddr(1) },
            FrameError::WrapsPast4GiB {
                first: BASE,
                frames: 1,
            },
            FrameError::BadColourCount { colours: 3 },
            FrameError::ColourOutOfRange {
                colour: 4,
                colours: 4,
            },
            FrameError::NoFrameOfColour { colour: 1, free: 9 },
            FrameError::OutOfMemory,
            FrameError::MetadataAllocFailed { bytes: 64 },
            FrameError::NotAllocated { pa: BASE },
            FrameError::NotMapped {
                pa: BASE,
                space: SpaceId::from_parts(1, 0),
                va: VirtAddr(0),
            },
            FrameError::StillMapped {
                pa: BASE,
                mappings: 2,
            },
        ] {
            assert!(!format!("{e}").is_empty());
        }
    }

    use crate::xorshift::XorShift;

    #[test]
    fn mappings_agree_with_a_shadow_model() {
        const FRAMES: u32 = 8;
        let mut db = FrameDb::new(BASE, FRAMES).unwrap();
        // pa index → mappings in insertion order.
        let mut shadow: HashMap<u32, Vec<Mapping>> = HashMap::new();
        let mut rng = XorShift(0x2545_f491);
        for step in 0..20_000 {
            // One frame in nine is outside the range.
            let idx = rng.below(FRAMES + 1);
            let pa = PhysAddr(BASE.0 + idx * FRAME_SIZE);
            let space = SpaceId::from_parts(rng.below(3), 0);
            let va = VirtAddr(rng.below(8) * FRAME_SIZE);
            match rng.below(4) {
                0 | 1 => {
                    let m = Mapping {
                        space,
                        va,
                        writable: rng.below(2) == 0,
                        shared: rng.below(2) == 0,
                        kind: if space == SpaceId::KERNEL {
                            MappingKind::Kernel
                        } else {
                            MappingKind::User
                        },
                    };
                    let got = db.add_mapping(pa, m);
                    if idx == FRAMES {
                        assert!(matches!(got, Err(FrameError::OutOfRange { .. })));
                        continue;
                    }
                    let list = shadow.entry(idx).or_default();
                    if list.iter().any(|x| x.space == space && x.va == va) {
                        assert_eq!(got, Err(FrameError::AlreadyMapped { pa, space, va }));
                    } else {
                        assert_eq!(got, Ok(()), "step {step}");
                        list.push(m);
                    }
                }
                2 => {
                    let got = db.remove_mapping(pa, space, va);
                    if idx == FRAMES {
                        assert!(matches!(got, Err(FrameError::OutOfRange { .. })));
                        continue;
                    }
                    let list = shadow.entry(idx).or_default();
                    match list.iter().position(|x| x.space == space && x.va == va) {
                        Some(i) => assert_eq!(got, Ok(list.remove(i)), "step {step}"),
                        None => assert_eq!(got, Err(FrameError::NotMapped { pa, space, va })),
                    }
                }
                _ => {
                    let got = db.reset(pa);
                    if idx == FRAMES {
                        assert!(got.is_err());
                        continue;
                    }
                    let n = shadow.get(&idx).map_or(0, |l| l.len());
                    if n == 0 {
                        assert_eq!(got, Ok(()));
                    } else {
                        assert_eq!(got, Err(FrameError::StillMapped { pa, mappings: n }));
                    }
                }
            }
            // Every frame's view agrees with the shadow after every step.
            for i in 0..FRAMES {
                let pa = PhysAddr(BASE.0 + i * FRAME_SIZE);
                let want: &[Mapping] = shadow.get(&i).map_or(&[], |l| l.as_slice());
                assert_eq!(db.mappings(pa).unwrap(), want, "step {step}");
                let colours = want
                    .iter()
                    .filter(|m| m.kind == MappingKind::User)
                    .fold(0u64, |s, m| s | 1 << ((m.va.0 >> 12) & 3));
                assert_eq!(db.colours_in_use(pa, 4).unwrap(), colours);
                assert_eq!(
                    db.has_writable_alias(pa).unwrap(),
                    want.len() > 1 && want.iter().any(|m| m.writable)
                );
                assert_eq!(
                    db.user_mappings(pa).unwrap().count(),
                    want.iter().filter(|m| m.kind == MappingKind::User).count()
                );
            }
        }
    }
}
