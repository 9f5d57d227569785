//! The frame structures of target `pure_mm`: the colour allocator against
//! a set of handed-out frames, the frame database against a map of page
//! states, and the object table against a map of live objects. After
//! every call the structure and its model are compared; a refused call
//! must leave both as they were.

use std::collections::{BTreeMap, BTreeSet};
use std::format;
use std::vec::Vec;

use arbitrary::Arbitrary;

use super::{Failure, ensure, ensure_eq};
use crate::addr::{PhysAddr, VirtAddr};
use crate::mm::colour::{ColourAllocator, ColourCursor};
use crate::mm::frames::{
    FRAME_SIZE, FrameDb, FrameError, MAX_COLOURS, Mapping, MappingKind, PageFlags, SpaceId,
};
use crate::mm::object::{ObjectError, ObjectId, ObjectKind, ObjectMapping, Objects};

/// At most this many operations of an input are checked.
pub const MAX_OPS: usize = 128;
/// At most this many frames are managed (the model is checked in full
/// after every operation).
pub const MAX_FRAMES: u32 = 256;

/// A physical address: a frame of the range (by index, modulo), or
/// anything (misaligned, outside).
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Frame {
    /// Frame `n` of the range (modulo its size).
    Index(u16),
    /// Anything.
    Raw(u32),
}

/// One operation.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Op {
    /// `allocate_colour`.
    AllocateColour(u32),
    /// `allocate_any`.
    AllocateAny,
    /// `allocate_spread` with cursor `n % 4`.
    AllocateSpread(u8),
    /// `free`.
    Free(Frame),
    /// `add_mapping`.
    AddMapping {
        /// The frame.
        frame: Frame,
        /// Space (small, so mappings meet).
        space: u8,
        /// Virtual page (or, with `misaligned`, that byte address).
        va: u16,
        /// Offset the address by 0x800.
        misaligned: bool,
        /// Writable.
        writable: bool,
        /// A kernel mapping.
        kernel: bool,
    },
    /// `remove_mapping`.
    RemoveMapping {
        /// The frame.
        frame: Frame,
        /// Space.
        space: u8,
        /// Virtual page.
        va: u16,
    },
    /// `set_writable`.
    SetWritable {
        /// The frame.
        frame: Frame,
        /// Space.
        space: u8,
        /// Virtual page.
        va: u16,
        /// The new value.
        writable: bool,
    },
    /// `set_flags` (`set`) or `clear_flags`.
    Flags {
        /// The frame.
        frame: Frame,
        /// The bits (truncated to the defined flags).
        bits: u8,
        /// Set rather than clear.
        set: bool,
    },
    /// `set_user_colour`.
    UserColour {
        /// The frame.
        frame: Frame,
        /// The colour.
        colour: Option<u8>,
    },
    /// `colours_in_use` with `colours`.
    ColoursInUse {
        /// The frame.
        frame: Frame,
        /// The colour count (any value).
        colours: u32,
    },
    /// `reset`.
    Reset(Frame),
    /// `Objects::create`.
    CreateObject {
        /// Size in pages.
        size: u32,
    },
    /// `Objects::insert_page`.
    InsertPage {
        /// Which live object (modulo).
        object: u8,
        /// The page (any value).
        page: u32,
        /// The frame.
        frame: Frame,
    },
    /// `Objects::add_mapper`.
    AddMapper {
        /// Which live object.
        object: u8,
        /// Space.
        space: u8,
        /// Start address (any value).
        start: u32,
        /// First object page.
        first_page: u32,
        /// Pages.
        pages: u32,
    },
    /// `Objects::remove_mapper` of one of the object's windows, or of one
    /// it does not have.
    RemoveMapper {
        /// Which live object.
        object: u8,
        /// Which window (modulo; past the end: a window it lacks).
        window: u8,
    },
    /// `Objects::destroy`.
    Destroy {
        /// Which live object.
        object: u8,
    },
    /// `addresses_of` a page of an object.
    AddressesOf {
        /// Which live object.
        object: u8,
        /// The page.
        page: u32,
    },
}

/// The fuzzer's input for the frame structures.
#[derive(Clone, Debug, Arbitrary)]
pub struct Input {
    /// First frame number of the range (any value: the range is checked).
    pub first_frame: u32,
    /// Frames in the range (modulo [`MAX_FRAMES`] + 1).
    pub frames: u16,
    /// The colour count (any value: construction checks it).
    pub colours: Result<u8, u32>,
    /// The operations (the first [`MAX_OPS`]).
    pub ops: Vec<Op>,
}

/// One frame's state in the model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PageModel {
    flags: PageFlags,
    colour: Option<u8>,
    mappings: Vec<Mapping>,
}

/// One live object in the model.
#[derive(Clone, Debug)]
struct ObjectModel {
    id: ObjectId,
    size: u32,
    pages: BTreeMap<u32, PhysAddr>,
    mappers: Vec<ObjectMapping>,
}

/// Everything under test and its models.
struct World {
    first: u32,
    frames: u32,
    colours: u32,
    allocator: ColourAllocator,
    allocated: BTreeSet<u32>,
    cursors: [ColourCursor; 4],
    db: FrameDb,
    pages: BTreeMap<u32, PageModel>,
    objects: Objects,
    live: Vec<ObjectModel>,
}

impl Input {
    /// Builds the structures (checking construction) and runs the
    /// operations.
    pub fn check(&self) -> Result<(), Failure> {
        let frames = u32::from(self.frames) % (MAX_FRAMES + 1);
        let first = self.first_frame.wrapping_mul(FRAME_SIZE);
        let colours = match self.colours {
            Ok(shift) => 1 << (shift % 7),
            Err(raw) => raw,
        };
        let Some(mut world) = World::new(first, frames, colours)? else {
            return Ok(());
        };
        for (i, op) in self.ops.iter().take(MAX_OPS).enumerate() {
            world
                .apply(op)
                .map_err(|e| format!("op {i}, {op:?}: {e}"))?;
            world
                .agree()
                .map_err(|e| format!("after op {i}, {op:?}: {e}"))?;
        }
        Ok(())
    }
}

impl World {
    /// The structures over `frames` frames from `first`, or `None` when
    /// construction (rightly) refuses them.
    fn new(first: u32, frames: u32, colours: u32) -> Result<Option<World>, Failure> {
        let pa = PhysAddr(first);
        let wraps = u64::from(first) + u64::from(frames) * u64::from(FRAME_SIZE) > 1 << 32;
        let expected = if !first.is_multiple_of(FRAME_SIZE) {
            Some(FrameError::Misaligned { pa })
        } else if wraps {
            Some(FrameError::WrapsPast4GiB { first: pa, frames })
        } else {
            None
        };
        let colour_error = (!colours.is_power_of_two() || colours > MAX_COLOURS)
            .then_some(FrameError::BadColourCount { colours });
        let allocator = ColourAllocator::new(pa, frames, colours);
        let db = FrameDb::new(pa, frames);
        ensure_eq!(db.as_ref().err(), expected.as_ref(), "FrameDb::new");
        ensure_eq!(
            allocator.as_ref().err(),
            expected.or(colour_error).as_ref(),
            "ColourAllocator::new({pa}, {frames}, {colours})"
        );
        let (Ok(allocator), Ok(db)) = (allocator, db) else {
            return Ok(None);
        };
        Ok(Some(World {
            first,
            frames,
            colours,
            allocator,
            allocated: BTreeSet::new(),
            cursors: [0, 1, 2, 3].map(ColourCursor::new),
            db,
            pages: BTreeMap::new(),
            objects: Objects::new(),
            live: Vec::new(),
        }))
    }

    fn pa(&self, frame: Frame) -> PhysAddr {
        match frame {
            Frame::Index(n) if self.frames > 0 => {
                PhysAddr(self.first + u32::from(n) % self.frames * FRAME_SIZE)
            }
            Frame::Index(n) => PhysAddr(u32::from(n)),
            Frame::Raw(raw) => PhysAddr(raw),
        }
    }

    fn colour_of(&self, pa: u32) -> u32 {
        (pa >> 12) & (self.colours - 1)
    }

    /// The error any per-frame call must give for `pa`, if it is not a
    /// frame of the range.
    fn frame_error(&self, pa: PhysAddr) -> Option<FrameError> {
        let end = u64::from(self.first) + u64::from(self.frames) * u64::from(FRAME_SIZE);
        if !pa.0.is_multiple_of(FRAME_SIZE) {
            Some(FrameError::Misaligned { pa })
        } else if u64::from(pa.0) < u64::from(self.first) || u64::from(pa.0) >= end {
            Some(FrameError::OutOfRange {
                pa,
                first: PhysAddr(self.first),
                end,
            })
        } else {
            None
        }
    }

    fn free_of(&self, colour: u32) -> u32 {
        (0..self.frames)
            .map(|i| self.first + i * FRAME_SIZE)
            .filter(|pa| self.colour_of(*pa) == colour && !self.allocated.contains(pa))
            .count() as u32
    }

    /// A frame handed out must be of the range, free in the model, and of
    /// `colour` when one was asked for.
    fn handed_out(
        &mut self,
        got: Result<PhysAddr, FrameError>,
        colour: Option<u32>,
    ) -> Result<(), Failure> {
        let free = self.frames - self.allocated.len() as u32;
        if free == 0 {
            ensure_eq!(got, Err(FrameError::OutOfMemory), "allocation from nothing");
            return Ok(());
        }
        if let Some(c) = colour
            && self.free_of(c) == 0
        {
            ensure_eq!(
                got,
                Err(FrameError::NoFrameOfColour { colour: c, free }),
                "allocation"
            );
            return Ok(());
        }
        let pa = got.map_err(|e| format!("refused: {e}"))?;
        ensure!(
            self.frame_error(pa).is_none(),
            "{pa} is not a frame of the range"
        );
        ensure!(self.allocated.insert(pa.0), "{pa} handed out twice");
        if let Some(c) = colour {
            ensure_eq!(self.colour_of(pa.0), c, "colour of {pa}");
        }
        ensure_eq!(
            self.allocator.colour_of(pa),
            self.colour_of(pa.0),
            "colour_of {pa}"
        );
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), Failure> {
        match *op {
            Op::AllocateColour(colour) => {
                let got = self.allocator.allocate_colour(colour);
                if colour >= self.colours {
                    let e = FrameError::ColourOutOfRange {
                        colour,
                        colours: self.colours,
                    };
                    ensure_eq!(got, Err(e), "out of range");
                    return Ok(());
                }
                self.handed_out(got, Some(colour))?;
            }
            Op::AllocateAny => {
                let got = self.allocator.allocate_any();
                self.handed_out(got, None)?;
            }
            Op::AllocateSpread(n) => {
                let i = usize::from(n % 4);
                let mask = self.colours - 1;
                let from = self.cursors[i].next_colour() & mask;
                // The first colour at or cyclically after the cursor's with a free frame.
                let expected = (0..self.colours)
                    .map(|k| (from + k) & mask)
                    .find(|&c| self.free_of(c) > 0);
                let got = self.allocator.allocate_spread(&mut self.cursors[i]);
                self.handed_out(got, expected)?;
                if let Some(c) = expected {
                    ensure_eq!(self.cursors[i].next_colour(), (c + 1) & mask, "cursor");
                }
            }
            Op::Free(frame) => {
                let pa = self.pa(frame);
                let expected = match self.frame_error(pa) {
                    Some(e) => Err(e),
                    None if self.allocated.remove(&pa.0) => Ok(()),
                    None => Err(FrameError::NotAllocated { pa }),
                };
                ensure_eq!(self.allocator.free(pa), expected, "free");
            }
            Op::AddMapping {
                frame,
                space,
                va,
                misaligned,
                writable,
                kernel,
            } => {
                let pa = self.pa(frame);
                let va = VirtAddr(u32::from(va) * FRAME_SIZE + if misaligned { 0x800 } else { 0 });
                let mapping = Mapping {
                    space: SpaceId::from_parts(1 + u32::from(space % 4), 0),
                    va,
                    writable,
                    shared: space & 4 != 0,
                    kind: if kernel {
                        MappingKind::Kernel
                    } else {
                        MappingKind::User
                    },
                };
                let page = self.pages.get(&pa.0).cloned().unwrap_or_default();
                let expected = if misaligned {
                    Err(FrameError::MisalignedVa { va })
                } else if let Some(e) = self.frame_error(pa) {
                    Err(e)
                } else if page
                    .mappings
                    .iter()
                    .any(|m| m.space == mapping.space && m.va == va)
                {
                    Err(FrameError::AlreadyMapped {
                        pa,
                        space: mapping.space,
                        va,
                    })
                } else {
                    self.pages.entry(pa.0).or_default().mappings.push(mapping);
                    Ok(())
                };
                ensure_eq!(self.db.add_mapping(pa, mapping), expected, "add_mapping");
            }
            Op::RemoveMapping { frame, space, va } => {
                let (pa, space, va) = (
                    self.pa(frame),
                    SpaceId::from_parts(1 + u32::from(space % 4), 0),
                    VirtAddr(u32::from(va) * FRAME_SIZE),
                );
                let expected = match self.frame_error(pa) {
                    Some(e) => Err(e),
                    None => {
                        let page = self.pages.entry(pa.0).or_default();
                        match page
                            .mappings
                            .iter()
                            .position(|m| m.space == space && m.va == va)
                        {
                            Some(i) => Ok(page.mappings.remove(i)),
                            None => Err(FrameError::NotMapped { pa, space, va }),
                        }
                    }
                };
                ensure_eq!(
                    self.db.remove_mapping(pa, space, va),
                    expected,
                    "remove_mapping"
                );
            }
            Op::SetWritable {
                frame,
                space,
                va,
                writable,
            } => {
                let (pa, space, va) = (
                    self.pa(frame),
                    SpaceId::from_parts(1 + u32::from(space % 4), 0),
                    VirtAddr(u32::from(va) * FRAME_SIZE),
                );
                let expected = match self.frame_error(pa) {
                    Some(e) => Err(e),
                    None => {
                        let page = self.pages.entry(pa.0).or_default();
                        match page
                            .mappings
                            .iter_mut()
                            .find(|m| m.space == space && m.va == va)
                        {
                            Some(m) => {
                                m.writable = writable;
                                Ok(())
                            }
                            None => Err(FrameError::NotMapped { pa, space, va }),
                        }
                    }
                };
                ensure_eq!(
                    self.db.set_writable(pa, space, va, writable),
                    expected,
                    "set_writable"
                );
            }
            Op::Flags { frame, bits, set } => {
                let pa = self.pa(frame);
                let flags = PageFlags::from_bits_truncate(bits);
                let expected = match self.frame_error(pa) {
                    Some(e) => Err(e),
                    None => {
                        let page = self.pages.entry(pa.0).or_default();
                        let old = page.flags;
                        page.flags.set(flags, set);
                        Ok(old)
                    }
                };
                let got = if set {
                    self.db.set_flags(pa, flags)
                } else {
                    self.db.clear_flags(pa, flags)
                };
                ensure_eq!(got, expected, "flags");
            }
            Op::UserColour { frame, colour } => {
                let pa = self.pa(frame);
                let expected = match self.frame_error(pa) {
                    Some(e) => Err(e),
                    None => Ok(core::mem::replace(
                        &mut self.pages.entry(pa.0).or_default().colour,
                        colour,
                    )),
                };
                ensure_eq!(
                    self.db.set_user_colour(pa, colour),
                    expected,
                    "set_user_colour"
                );
            }
            Op::ColoursInUse { frame, colours } => {
                let pa = self.pa(frame);
                let expected = if !colours.is_power_of_two() || colours > MAX_COLOURS {
                    Err(FrameError::BadColourCount { colours })
                } else if let Some(e) = self.frame_error(pa) {
                    Err(e)
                } else {
                    let page = self.pages.get(&pa.0).cloned().unwrap_or_default();
                    Ok(page
                        .mappings
                        .iter()
                        .filter(|m| m.kind == MappingKind::User)
                        .fold(0u64, |set, m| set | 1 << ((m.va.0 >> 12) % colours)))
                };
                ensure_eq!(
                    self.db.colours_in_use(pa, colours),
                    expected,
                    "colours_in_use"
                );
            }
            Op::Reset(frame) => {
                let pa = self.pa(frame);
                let expected = match self.frame_error(pa) {
                    Some(e) => Err(e),
                    None => {
                        let page = self.pages.entry(pa.0).or_default();
                        if page.mappings.is_empty() {
                            *page = PageModel::default();
                            Ok(())
                        } else {
                            Err(FrameError::StillMapped {
                                pa,
                                mappings: page.mappings.len(),
                            })
                        }
                    }
                };
                ensure_eq!(self.db.reset(pa), expected, "reset");
            }
            _ => return self.apply_object(op),
        }
        Ok(())
    }

    fn apply_object(&mut self, op: &Op) -> Result<(), Failure> {
        let pick =
            |live: &[ObjectModel], n: u8| (!live.is_empty()).then(|| usize::from(n) % live.len());
        match *op {
            Op::CreateObject { size } => {
                let id = self
                    .objects
                    .create(ObjectKind::File, size)
                    .map_err(|e| format!("create refused: {e}"))?;
                ensure!(
                    self.live.iter().all(|o| o.id != id),
                    "{id} handed out while live"
                );
                self.live.push(ObjectModel {
                    id,
                    size,
                    pages: BTreeMap::new(),
                    mappers: Vec::new(),
                });
            }
            Op::InsertPage {
                object,
                page,
                frame,
            } => {
                let Some(i) = pick(&self.live, object) else {
                    return Ok(());
                };
                let pa = self.pa(frame);
                let o = &mut self.live[i];
                let expected = if page >= o.size {
                    Err(ObjectError::PageOutOfRange {
                        id: o.id,
                        page,
                        size: o.size,
                    })
                } else if let Some(&present) = o.pages.get(&page) {
                    Err(ObjectError::PagePresent {
                        id: o.id,
                        page,
                        pa: present,
                    })
                } else {
                    o.pages.insert(page, pa);
                    Ok(())
                };
                ensure_eq!(
                    self.objects.insert_page(o.id, page, pa),
                    expected,
                    "insert_page"
                );
            }
            Op::AddMapper {
                object,
                space,
                start,
                first_page,
                pages,
            } => {
                let Some(i) = pick(&self.live, object) else {
                    return Ok(());
                };
                let o = &mut self.live[i];
                let mapping = ObjectMapping {
                    space: SpaceId::from_parts(1 + u32::from(space % 4), 0),
                    start: VirtAddr(start),
                    first_page,
                    pages,
                };
                let got = self.objects.add_mapper(o.id, mapping);
                if got.is_ok() {
                    o.mappers.push(mapping);
                }
                ensure!(
                    got.is_ok() || matches!(got, Err(ObjectError::BadWindow { .. })),
                    "add_mapper: {got:?}"
                );
                ensure_eq!(
                    got.is_ok(),
                    window_fits(&mapping),
                    "add_mapper of {mapping:?}"
                );
            }
            Op::RemoveMapper { object, window } => {
                let Some(i) = pick(&self.live, object) else {
                    return Ok(());
                };
                let o = &mut self.live[i];
                let w = usize::from(window);
                let mapping = o.mappers.get(w).copied().unwrap_or(ObjectMapping {
                    space: SpaceId::from_parts(99, 0),
                    start: VirtAddr(0),
                    first_page: 0,
                    pages: 0,
                });
                let expected = match o.mappers.iter().position(|m| *m == mapping) {
                    Some(k) => {
                        o.mappers.remove(k);
                        Ok(())
                    }
                    None => Err(ObjectError::NoSuchMapping { id: o.id, mapping }),
                };
                ensure_eq!(
                    self.objects.remove_mapper(o.id, mapping),
                    expected,
                    "remove_mapper"
                );
            }
            Op::Destroy { object } => {
                let Some(i) = pick(&self.live, object) else {
                    return Ok(());
                };
                let o = &self.live[i];
                let got = self.objects.destroy(o.id);
                if o.mappers.is_empty() {
                    let frames: Vec<PhysAddr> = o.pages.values().copied().collect();
                    ensure_eq!(got, Ok(frames), "destroy");
                    self.live.remove(i);
                } else {
                    let e = ObjectError::StillMapped {
                        id: o.id,
                        mappers: o.mappers.len(),
                    };
                    ensure_eq!(got, Err(e), "destroy of a mapped object");
                }
            }
            Op::AddressesOf { object, page } => {
                let Some(i) = pick(&self.live, object) else {
                    return Ok(());
                };
                let o = &self.live[i];
                let got: Vec<(SpaceId, VirtAddr)> = self
                    .objects
                    .get(o.id)
                    .map_err(|e| format!("get: {e}"))?
                    .addresses_of(page)
                    .collect();
                let expected: Vec<(SpaceId, VirtAddr)> = o
                    .mappers
                    .iter()
                    .filter(|m| page >= m.first_page && page - m.first_page < m.pages)
                    .map(|m| {
                        let va = u64::from(m.start.0) + u64::from(page - m.first_page) * 4096;
                        (m.space, VirtAddr(va as u32))
                    })
                    .collect();
                ensure_eq!(got, expected, "addresses_of page {page}");
            }
            _ => unreachable!("apply handles the frame operations"),
        }
        Ok(())
    }

    /// The allocator, the database and the object table agree with their
    /// models.
    fn agree(&self) -> Result<(), Failure> {
        let free = self.frames - self.allocated.len() as u32;
        ensure_eq!(self.allocator.free_frames(), free, "free frames");
        for c in 0..self.colours {
            ensure_eq!(
                self.allocator.free_frames_of(c),
                self.free_of(c),
                "free frames of colour {c}"
            );
        }
        for (&pa, page) in &self.pages {
            let state = self
                .db
                .state(PhysAddr(pa))
                .map_err(|e| format!("state of {pa:#x}: {e}"))?;
            let got = PageModel {
                flags: state.flags(),
                colour: state.user_colour(),
                mappings: state.mappings().to_vec(),
            };
            ensure_eq!(&got, page, "page {pa:#x}");
        }
        for o in &self.live {
            let object = self
                .objects
                .get(o.id)
                .map_err(|e| format!("{}: {e}", o.id))?;
            let pages: BTreeMap<u32, PhysAddr> = object.pages().collect();
            ensure_eq!(
                (object.size(), &pages, object.mappers()),
                (o.size, &o.pages, &o.mappers[..]),
                "{}",
                o.id
            );
        }
        ensure_eq!(self.objects.iter().count(), self.live.len(), "live objects");
        Ok(())
    }
}

/// A window whose pages all lie below 4 GiB from a page-aligned start.
fn window_fits(m: &ObjectMapping) -> bool {
    m.start.0.is_multiple_of(FRAME_SIZE)
        && u64::from(m.start.0) + u64::from(m.pages) * u64::from(FRAME_SIZE) <= 1 << 32
}
