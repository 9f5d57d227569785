//! A page-colouring frame allocator: free 4 KiB frames kept on one list per
//! cache colour, so a caller can ask for a frame of a given colour
//! (NetBSD's `UVM_FLAG_COLORMATCH`) or spread a process over every colour.
//!
//! ```text
//!   frame:   f0  f1  f2  f3  f4  f5  f6  f7  f8 …   colour = (pa >> 12) & (colours − 1)
//!   colour:   0   1   2   3   0   1   2   3   0
//!
//!   heads[0] ─▶ f0 ─▶ f4 ─▶ f8 ─▶ ∅     free lists linked through next[frame]
//!   heads[1] ─▶ f5 ─▶ ∅                 (one u32 per frame, LIFO: O(1) each way)
//!   nonempty = 0b0011                   one bit per colour with a free frame
//!   allocated: one bit per frame        (catches double and foreign frees)
//! ```
//!
//! Why colour physical frames at all: the kernel's linear map puts a
//! frame's kernel alias at `pa + offset` with the offset a multiple of the
//! colour alignment, so the alias's virtual colour is the frame's physical
//! colour. On a VIPT-aliasing cache a user mapping at a virtual address of
//! that same colour hits the same cache lines as the kernel alias: picking
//! the frame by the user address's colour
//! ([`allocate_colour`](ColourAllocator::allocate_colour)) removes the alias
//! and the flushes it would need. On a physically indexed cache (seed 002)
//! the colour is where a page lands in the cache; giving each process
//! successive colours ([`allocate_spread`](ColourAllocator::allocate_spread))
//! keeps its pages from thrashing each other.

use alloc::vec::Vec;
use core::fmt;

use super::frames::{FrameError, FrameRange, MAX_COLOURS, check_colours, try_vec};
use crate::addr::PhysAddr;

/// End of a free list.
const NIL: u32 = u32::MAX;

/// A per-process colour cursor for
/// [`ColourAllocator::allocate_spread`]: it remembers which colour the
/// process gets next, so its successive pages cover every colour in turn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ColourCursor {
    next: u32,
}

impl ColourCursor {
    /// A cursor whose first page will be of colour `start` (taken modulo
    /// the allocator's colour count). Starting processes at different
    /// colours keeps their first pages from all competing for colour 0.
    pub const fn new(start: u32) -> Self {
        ColourCursor { next: start }
    }

    /// The colour the next allocation will try first (modulo the colour
    /// count).
    pub const fn next_colour(&self) -> u32 {
        self.next
    }
}

/// Free 4 KiB frames of `first .. first + frames × 4 KiB`, on one free list
/// per colour. Allocation and free are O(1): O(1) in the number of frames,
/// and at most one bit scan over the (≤ 64) colours.
///
/// A frame is handed out at most once until it is freed; freeing a frame
/// that is free, foreign or misaligned is a typed error and changes
/// nothing.
///
/// # Example
///
/// ```
/// use vacmm::addr::PhysAddr;
/// use vacmm::mm::colour::{ColourAllocator, ColourCursor};
/// use vacmm::mm::frames::FrameError;
///
/// // 64 KiB of RAM at 0x8000_0000 for a 64 KiB 4-way VIPT cache: 4 colours.
/// let mut frames = ColourAllocator::new(PhysAddr(0x8000_0000), 16, 4)?;
///
/// // A user page at VA 0x0001_3000 (colour 3) gets a colour-3 frame, so its
/// // kernel alias shares cache lines with the user mapping.
/// let pa = frames.allocate_colour(3)?;
/// assert_eq!(frames.colour_of(pa), 3);
///
/// // One process's pages walk through every colour.
/// let mut cursor = ColourCursor::new(0);
/// for want in 0..4 {
///     let pa = frames.allocate_spread(&mut cursor)?;
///     assert_eq!(frames.colour_of(pa), want);
/// }
/// assert_eq!(frames.free_frames(), 11);
///
/// frames.free(pa)?;
/// assert_eq!(frames.free(pa), Err(FrameError::NotAllocated { pa }));
/// # Ok::<(), FrameError>(())
/// ```
#[derive(Clone)]
pub struct ColourAllocator {
    range: FrameRange,
    colours: u32,
    /// Free-list link of each free frame (meaningless for allocated ones).
    next: Vec<u32>,
    /// One bit per frame, set while the frame is handed out.
    allocated: Vec<u32>,
    heads: [u32; MAX_COLOURS as usize],
    free_of: [u32; MAX_COLOURS as usize],
    /// Bit c set iff colour c's list is non-empty: finding the next colour
    /// with a free frame is a rotate and a trailing-zero count.
    nonempty: u64,
    free: u32,
    /// Where `allocate_any` starts looking next.
    round_robin: u32,
}

impl fmt::Debug for ColourAllocator {
    // The per-frame arrays would print thousands of entries; the counts
    // are what a reader wants.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ColourAllocator")
            .field("first", &self.range.first())
            .field("frames", &self.range.frames())
            .field("colours", &self.colours)
            .field("free", &self.free)
            .field("free_of", &&self.free_of[..self.colours as usize])
            .finish()
    }
}

impl ColourAllocator {
    /// An allocator owning `frames` free frames from `first` (4 KiB
    /// aligned, not wrapping past 4 GiB), coloured by `colours` (a power of
    /// two, 1 to 64). Fails with [`FrameError::MetadataAllocFailed`] if the
    /// heap cannot hold its 4⅛ bytes per frame of bookkeeping.
    pub fn new(first: PhysAddr, frames: u32, colours: u32) -> Result<Self, FrameError> {
        let range = FrameRange::new(first, frames)?;
        check_colours(colours)?;
        let n = frames as usize;
        let mut next = try_vec(n)?;
        next.resize(n, NIL);
        let mut allocated = try_vec(n.div_ceil(32))?;
        allocated.resize(n.div_ceil(32), 0);
        let mut a = ColourAllocator {
            range,
            colours,
            next,
            allocated,
            heads: [NIL; MAX_COLOURS as usize],
            free_of: [0; MAX_COLOURS as usize],
            nonempty: 0,
            free: 0,
            round_robin: 0,
        };
        // Pushed top-down so each list hands out its lowest frame first:
        // allocation order is predictable and early pages stay low.
        for i in (0..frames).rev() {
            a.push(i);
        }
        Ok(a)
    }

    /// Number of colours.
    pub const fn colours(&self) -> u32 {
        self.colours
    }

    /// First byte of the managed range.
    pub const fn first(&self) -> PhysAddr {
        self.range.first()
    }

    /// Number of frames managed (free or not).
    pub const fn frames(&self) -> u32 {
        self.range.frames()
    }

    /// The colour of a physical address: `(pa >> 12) & (colours − 1)`,
    /// which is `CacheInfo::colour_of` of its kernel alias when the linear
    /// map's offset is a multiple of the colour alignment.
    pub const fn colour_of(&self, pa: PhysAddr) -> u32 {
        (pa.as_u32() >> 12) & (self.colours - 1)
    }

    /// Free frames of every colour.
    pub const fn free_frames(&self) -> u32 {
        self.free
    }

    /// Free frames of one colour (0 for a colour out of range).
    pub fn free_frames_of(&self, colour: u32) -> u32 {
        if colour < self.colours {
            self.free_of[colour as usize]
        } else {
            0
        }
    }

    /// True if `pa` is a frame of this allocator that is handed out.
    pub fn is_allocated(&self, pa: PhysAddr) -> Result<bool, FrameError> {
        let i = self.range.index(pa)?;
        Ok(self.bit(i))
    }

    /// A free frame of exactly `colour`. With none of that colour but
    /// others free: [`FrameError::NoFrameOfColour`]; with none at all:
    /// [`FrameError::OutOfMemory`].
    pub fn allocate_colour(&mut self, colour: u32) -> Result<PhysAddr, FrameError> {
        if colour >= self.colours {
            return Err(FrameError::ColourOutOfRange {
                colour,
                colours: self.colours,
            });
        }
        if self.free == 0 {
            return Err(FrameError::OutOfMemory);
        }
        if self.heads[colour as usize] == NIL {
            return Err(FrameError::NoFrameOfColour {
                colour,
                free: self.free,
            });
        }
        Ok(self.pop(colour))
    }

    /// A free frame of any colour. Colours are taken round-robin, skipping
    /// empty ones, so callers that do not care still drain the colours
    /// evenly and leave every colour available to those that do.
    pub fn allocate_any(&mut self) -> Result<PhysAddr, FrameError> {
        let colour = self
            .first_nonempty_from(self.round_robin)
            .ok_or(FrameError::OutOfMemory)?;
        self.round_robin = (colour + 1) & (self.colours - 1);
        Ok(self.pop(colour))
    }

    /// A free frame of the cursor's colour, or of the next colour after it
    /// that has one; the cursor moves past the colour handed out. A process
    /// allocating through its own cursor gets successive colours, so its
    /// pages cover the whole cache (seed 002's page colouring).
    pub fn allocate_spread(&mut self, cursor: &mut ColourCursor) -> Result<PhysAddr, FrameError> {
        let mask = self.colours - 1;
        let colour = self
            .first_nonempty_from(cursor.next & mask)
            .ok_or(FrameError::OutOfMemory)?;
        cursor.next = (colour + 1) & mask;
        Ok(self.pop(colour))
    }

    /// Returns a handed-out frame. A misaligned or foreign address, or a
    /// frame that is already free, is an error and changes nothing.
    pub fn free(&mut self, pa: PhysAddr) -> Result<(), FrameError> {
        let i = self.range.index(pa)?;
        if !self.bit(i) {
            return Err(FrameError::NotAllocated { pa });
        }
        self.allocated[(i / 32) as usize] &= !(1 << (i % 32));
        self.push(i);
        Ok(())
    }

    /// The frames handed out in `before` (a copy of [`Self::handed_out`]
    /// taken earlier) and free now.
    #[cfg(all(feature = "sim", not(target_os = "none")))]
    pub(crate) fn freed_since(&self, before: &[u32]) -> Vec<PhysAddr> {
        let mut freed = Vec::new();
        for (w, (&was, &is)) in before.iter().zip(&self.allocated).enumerate() {
            let mut bits = was & !is;
            while bits != 0 {
                let i = w as u32 * 32 + bits.trailing_zeros();
                freed.push(self.range.addr(i));
                bits &= bits - 1;
            }
        }
        freed
    }

    /// One bit per frame, set while it is handed out (for `freed_since`).
    #[cfg(all(feature = "sim", not(target_os = "none")))]
    pub(crate) fn handed_out(&self) -> &[u32] {
        &self.allocated
    }

    fn bit(&self, i: u32) -> bool {
        self.allocated[(i / 32) as usize] & (1 << (i % 32)) != 0
    }

    /// The first colour at or cyclically after `start` with a free frame.
    fn first_nonempty_from(&self, start: u32) -> Option<u32> {
        if self.nonempty == 0 {
            return None;
        }
        // Rotating brings `start` to bit 0; colours below `start` wrap to
        // the top, after every colour above it — the cyclic order wanted.
        let skip = self.nonempty.rotate_right(start).trailing_zeros();
        Some((start + skip) % MAX_COLOURS)
    }

    /// Puts free frame number `i` at the head of its colour's list.
    fn push(&mut self, i: u32) {
        let c = self.colour_of(self.range.addr(i)) as usize;
        self.next[i as usize] = self.heads[c];
        self.heads[c] = i;
        self.free_of[c] += 1;
        self.free += 1;
        self.nonempty |= 1 << c;
    }

    /// Takes the head of `colour`'s list, which must be non-empty.
    fn pop(&mut self, colour: u32) -> PhysAddr {
        let c = colour as usize;
        let i = self.heads[c];
        self.heads[c] = self.next[i as usize];
        if self.heads[c] == NIL {
            self.nonempty &= !(1 << c);
        }
        self.free_of[c] -= 1;
        self.free -= 1;
        self.allocated[(i / 32) as usize] |= 1 << (i % 32);
        self.range.addr(i)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::collections::HashSet;
    use std::format;

    use super::*;

    const BASE: PhysAddr = PhysAddr(0x8000_0000);

    #[test]
    fn construction_errors_carry_the_values() {
        assert_eq!(
            ColourAllocator::new(PhysAddr(0x8000_0010), 4, 4).unwrap_err(),
            FrameError::Misaligned {
                pa: PhysAddr(0x8000_0010)
            }
        );
        assert_eq!(
            ColourAllocator::new(PhysAddr(0xfff0_0000), 0x101, 4).unwrap_err(),
            FrameError::WrapsPast4GiB {
                first: PhysAddr(0xfff0_0000),
                frames: 0x101
            }
        );
        for colours in [0, 3, 6, 128, u32::MAX] {
            assert_eq!(
                ColourAllocator::new(BASE, 4, colours).unwrap_err(),
                FrameError::BadColourCount { colours }
            );
        }
        for colours in [1, 2, 4, 64] {
            let a = ColourAllocator::new(BASE, 4, colours).unwrap();
            assert_eq!(a.colours(), colours);
            assert_eq!(a.free_frames(), 4);
        }
        // A pool that ends exactly at 4 GiB, and an empty one.
        let top = ColourAllocator::new(PhysAddr(0xffff_c000), 4, 4).unwrap();
        assert_eq!(top.free_frames(), 4);
        let mut empty = ColourAllocator::new(BASE, 0, 4).unwrap();
        assert_eq!(empty.allocate_any(), Err(FrameError::OutOfMemory));
        assert_eq!(empty.allocate_colour(0), Err(FrameError::OutOfMemory));
        assert_eq!(
            empty.allocate_spread(&mut ColourCursor::default()),
            Err(FrameError::OutOfMemory)
        );
    }

    #[test]
    fn colours_follow_the_physical_page_number() {
        // A base that is not colour-aligned: frame 0 is colour 1.
        let a = ColourAllocator::new(PhysAddr(0x8000_1000), 8, 4).unwrap();
        assert_eq!(a.colour_of(PhysAddr(0x8000_1000)), 1);
        assert_eq!(a.colour_of(PhysAddr(0x8000_4000)), 0);
        assert_eq!(a.colour_of(PhysAddr(0x8000_3fff)), 3);
        assert_eq!(
            (0..4).map(|c| a.free_frames_of(c)).collect::<Vec<_>>(),
            [2, 2, 2, 2]
        );
        assert_eq!(a.free_frames_of(4), 0);
        // Matches CacheInfo::colour_of on the kernel alias 0xC000_0000 + (pa − 0x8000_0000).
        let info = crate::cache::CacheInfo::from_registers(
            crate::cache::MainId::from_raw(0x4117_b363),
            0x01dd_20d2,
        )
        .unwrap();
        for pa in (0x8000_0000u32..0x8001_0000).step_by(4096) {
            let alias = crate::addr::VirtAddr(pa - 0x8000_0000 + 0xc000_0000);
            assert_eq!(a.colour_of(PhysAddr(pa)) as usize, info.colour_of(alias));
        }
    }

    #[test]
    fn allocate_colour_errors() {
        let mut a = ColourAllocator::new(BASE, 4, 4).unwrap();
        assert_eq!(
            a.allocate_colour(4),
            Err(FrameError::ColourOutOfRange {
                colour: 4,
                colours: 4
            })
        );
        assert_eq!(a.allocate_colour(2), Ok(PhysAddr(0x8000_2000)));
        assert_eq!(
            a.allocate_colour(2),
            Err(FrameError::NoFrameOfColour { colour: 2, free: 3 })
        );
        for c in [0, 1, 3] {
            a.allocate_colour(c).unwrap();
        }
        assert_eq!(a.allocate_colour(0), Err(FrameError::OutOfMemory));
        assert_eq!(
            a.allocate_colour(9),
            Err(FrameError::ColourOutOfRange {
                colour: 9,
                colours: 4
            }),
            "a bad colour is reported even when nothing is free"
        );
        assert_eq!(a.allocate_any(), Err(FrameError::OutOfMemory));
    }

    #[test]
    fn free_errors_change_nothing() {
        let mut a = ColourAllocator::new(BASE, 4, 2).unwrap();
        let pa = a.allocate_any().unwrap();
        let before = format!("{a:?}");
        assert_eq!(
            a.free(PhysAddr(0x8000_1000)),
            Err(FrameError::NotAllocated {
                pa: PhysAddr(0x8000_1000)
            }),
            "never handed out"
        );
        assert_eq!(
            a.free(PhysAddr(0x8000_4000)),
            Err(FrameError::OutOfRange {
                pa: PhysAddr(0x8000_4000),
                first: BASE,
                end: 0x8000_4000
            })
        );
        assert_eq!(
            a.free(PhysAddr(0x7fff_f000)),
            Err(FrameError::OutOfRange {
                pa: PhysAddr(0x7fff_f000),
                first: BASE,
                end: 0x8000_4000
            })
        );
        assert_eq!(
            a.free(PhysAddr(0x8000_0004)),
            Err(FrameError::Misaligned {
                pa: PhysAddr(0x8000_0004)
            })
        );
        assert_eq!(format!("{a:?}"), before);
        assert_eq!(a.is_allocated(pa), Ok(true));
        a.free(pa).unwrap();
        assert_eq!(a.is_allocated(pa), Ok(false));
        assert_eq!(
            a.free(pa),
            Err(FrameError::NotAllocated { pa }),
            "double free"
        );
        assert_eq!(a.free_frames(), 4);
    }

    /// The colour of the frame `alloc` hands out.
    fn next_colour(
        a: &mut ColourAllocator,
        alloc: impl FnOnce(&mut ColourAllocator) -> Result<PhysAddr, FrameError>,
    ) -> u32 {
        let pa = alloc(a).unwrap();
        a.colour_of(pa)
    }

    #[test]
    fn allocate_any_goes_round_robin_and_skips_empty_colours() {
        let mut a = ColourAllocator::new(BASE, 8, 4).unwrap();
        let colours: Vec<u32> = (0..4)
            .map(|_| next_colour(&mut a, |a| a.allocate_any()))
            .collect();
        assert_eq!(colours, [0, 1, 2, 3]);
        // Drain colour 0 and 1; any then alternates over 2 and 3.
        a.allocate_colour(0).unwrap();
        a.allocate_colour(1).unwrap();
        let c = next_colour(&mut a, |a| a.allocate_any());
        assert_eq!(c, 2);
        assert_eq!(next_colour(&mut a, |a| a.allocate_any()), 3);
        assert_eq!(a.allocate_any(), Err(FrameError::OutOfMemory));
    }

    #[test]
    fn spread_cursors_cover_every_colour() {
        let mut a = ColourAllocator::new(BASE, 64, 8).unwrap();
        let mut p = ColourCursor::new(3);
        let mut q = ColourCursor::new(11); // taken modulo 8: starts at 3 too
        let got: Vec<u32> = (0..16)
            .map(|_| next_colour(&mut a, |a| a.allocate_spread(&mut p)))
            .collect();
        assert_eq!(got, [3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2]);
        assert_eq!(next_colour(&mut a, |a| a.allocate_spread(&mut q)), 3);
        assert_eq!(q.next_colour(), 4);
        // An empty colour is skipped, not waited for.
        while a.allocate_colour(5).is_ok() {}
        let mut r = ColourCursor::new(5);
        assert_eq!(next_colour(&mut a, |a| a.allocate_spread(&mut r)), 6);
        assert_eq!(r.next_colour(), 7);
    }

    #[test]
    fn frees_are_reused_lifo_within_a_colour() {
        let mut a = ColourAllocator::new(BASE, 16, 4).unwrap();
        let x = a.allocate_colour(1).unwrap();
        let y = a.allocate_colour(1).unwrap();
        assert_eq!((x, y), (PhysAddr(0x8000_1000), PhysAddr(0x8000_5000)));
        a.free(x).unwrap();
        assert_eq!(a.allocate_colour(1), Ok(x));
    }

    use crate::xorshift::XorShift;

    #[derive(Debug, Default)]
    struct Seen {
        exact: u32,
        any: u32,
        spread_skipped: u32,
        bad_colour: u32,
        no_colour: u32,
        out_of_memory: u32,
        freed: u32,
        double_free: u32,
        misaligned: u32,
        foreign: u32,
    }

    /// 100 000 random operations (allocate of each kind, valid frees,
    /// double frees, foreign and misaligned frees, bad colours) against a
    /// host-side set of handed-out frames.
    /// Returns how often each outcome was seen, so a test can show the
    /// paths it claims to exercise were taken.
    fn random_ops(first: PhysAddr, frames: u32, colours: u32, ops: u32, seed: u32) -> Seen {
        let mut seen = Seen::default();
        let mut a = ColourAllocator::new(first, frames, colours).unwrap();
        let mut rng = XorShift(seed);
        let mut out: HashSet<PhysAddr> = HashSet::new();
        // Kept in a Vec too, for picking a random handed-out frame.
        let mut held: Vec<PhysAddr> = Vec::new();
        let mut freed: Vec<PhysAddr> = Vec::new();
        let mut cursors = [ColourCursor::new(0), ColourCursor::new(5)];
        let end = first.0 as u64 + frames as u64 * 4096;
        let in_range = |pa: PhysAddr| pa.0 >= first.0 && (pa.0 as u64) < end;
        let shadow_free_of = |out: &HashSet<PhysAddr>, c: u32| {
            frames / colours
                + u32::from((0..frames % colours).any(|k| {
                    // Leftover frames: the first frames % colours from the base.
                    ((first.0 >> 12) + k) & (colours - 1) == c
                }))
                - out
                    .iter()
                    .filter(|pa| (pa.0 >> 12) & (colours - 1) == c)
                    .count() as u32
        };

        let take = |pa: PhysAddr, out: &mut HashSet<PhysAddr>, held: &mut Vec<PhysAddr>| {
            assert!(in_range(pa) && pa.is_aligned(4096), "{pa:?}");
            assert!(out.insert(pa), "{pa:?} handed out twice");
            held.push(pa);
        };

        for step in 0..ops {
            let before_total = a.free_frames();
            match rng.below(8) {
                0 | 1 => {
                    // One request in nine names a colour out of range.
                    let colour = rng.below(colours + colours / 8 + 1);
                    let before = a.free_frames_of(colour);
                    match a.allocate_colour(colour) {
                        Ok(pa) => {
                            assert!(colour < colours && before > 0);
                            assert_eq!(a.colour_of(pa), colour);
                            take(pa, &mut out, &mut held);
                            seen.exact += 1;
                        }
                        Err(FrameError::ColourOutOfRange {
                            colour: c,
                            colours: n,
                        }) => {
                            assert_eq!((c, n), (colour, colours));
                            assert!(colour >= colours);
                            seen.bad_colour += 1;
                        }
                        Err(FrameError::NoFrameOfColour { colour: c, free }) => {
                            assert_eq!((c, free, before), (colour, before_total, 0));
                            assert!(free > 0);
                            seen.no_colour += 1;
                        }
                        Err(FrameError::OutOfMemory) => {
                            assert_eq!((before, before_total), (0, 0));
                            seen.out_of_memory += 1;
                        }
                        Err(e) => panic!("step {step}: unexpected {e}"),
                    }
                }
                2 => match a.allocate_any() {
                    Ok(pa) => {
                        take(pa, &mut out, &mut held);
                        seen.any += 1;
                    }
                    Err(e) => assert_eq!((e, before_total), (FrameError::OutOfMemory, 0)),
                },
                3 => {
                    let cursor = &mut cursors[rng.below(2) as usize];
                    let want = cursor.next_colour() & (colours - 1);
                    let had_want = a.free_frames_of(want) > 0;
                    match a.allocate_spread(cursor) {
                        Ok(pa) => {
                            let c = a.colour_of(pa);
                            if had_want {
                                assert_eq!(c, want, "the cursor's colour was available");
                            } else {
                                seen.spread_skipped += 1;
                            }
                            assert_eq!(cursor.next_colour(), (c + 1) & (colours - 1));
                            take(pa, &mut out, &mut held);
                        }
                        Err(e) => assert_eq!((e, before_total), (FrameError::OutOfMemory, 0)),
                    }
                }
                4 | 5 if !held.is_empty() => {
                    let pa = held.swap_remove(rng.below(held.len() as u32) as usize);
                    assert!(out.remove(&pa));
                    assert_eq!(a.free(pa), Ok(()), "step {step}");
                    freed.push(pa);
                    seen.freed += 1;
                }
                6 if !freed.is_empty() => {
                    // A frame freed earlier: a double free unless it was
                    // handed out again since.
                    let pa = freed[rng.below(freed.len() as u32) as usize];
                    if out.contains(&pa) {
                        continue;
                    }
                    assert_eq!(a.free(pa), Err(FrameError::NotAllocated { pa }));
                    seen.double_free += 1;
                }
                _ => {
                    // Foreign, misaligned, just past either end, or any
                    // frame of the range (handed out or not).
                    let near = rng.below(4) * 4096;
                    let pa = PhysAddr(match rng.below(4) {
                        0 => rng.next(),
                        1 => rng.next() & !0xfff,
                        2 if rng.below(2) == 0 => first.0.wrapping_sub(4096 + near),
                        2 => (end as u32).wrapping_add(near),
                        _ => first.0 + rng.below(frames.max(1)) * 4096,
                    });
                    let got = a.free(pa);
                    if out.contains(&pa) {
                        assert_eq!(got, Ok(()));
                        out.remove(&pa);
                        held.retain(|&h| h != pa);
                    } else if !pa.is_aligned(4096) {
                        assert_eq!(got, Err(FrameError::Misaligned { pa }));
                        seen.misaligned += 1;
                    } else if !in_range(pa) {
                        assert!(matches!(got, Err(FrameError::OutOfRange { .. })));
                        seen.foreign += 1;
                    } else {
                        assert_eq!(got, Err(FrameError::NotAllocated { pa }));
                    }
                }
            }
            // Counts stay consistent with the shadow after every step;
            // the per-colour scan is O(frames), so it runs every 64th step.
            assert_eq!(a.free_frames() as usize, frames as usize - out.len());
            if step.is_multiple_of(64) || frames <= 64 {
                let mut sum = 0;
                for c in 0..colours {
                    assert_eq!(a.free_frames_of(c), shadow_free_of(&out, c), "step {step}");
                    sum += a.free_frames_of(c);
                }
                assert_eq!(sum, a.free_frames());
                for &pa in &out {
                    assert_eq!(a.is_allocated(pa), Ok(true));
                }
            }
        }
        seen
    }

    #[test]
    fn random_operations_never_hand_a_frame_out_twice() {
        // Small enough to run dry often, so every error path is hit.
        let seen = random_ops(BASE, 40, 4, 100_000, 0x9e37_79b9);
        // Every outcome the test claims to check happened, many times over.
        for (what, n) in [
            ("allocate_colour ok", seen.exact),
            ("allocate_any ok", seen.any),
            ("spread past an empty colour", seen.spread_skipped),
            ("colour out of range", seen.bad_colour),
            ("no frame of colour", seen.no_colour),
            ("out of memory", seen.out_of_memory),
            ("free", seen.freed),
            ("double free", seen.double_free),
            ("misaligned free", seen.misaligned),
            ("foreign free", seen.foreign),
        ] {
            assert!(n >= 100, "{what}: only {n} times ({seen:?})");
        }
    }

    #[test]
    fn random_operations_other_shapes() {
        // Unaligned colour base, leftover frames, one colour, 64 colours,
        // a pool that ends at 4 GiB.
        random_ops(PhysAddr(0x8000_3000), 13, 4, 20_000, 1);
        random_ops(BASE, 7, 1, 20_000, 2);
        random_ops(BASE, 200, 64, 20_000, 3);
        random_ops(PhysAddr(0xffff_0000), 16, 8, 20_000, 4);
        random_ops(BASE, 1024, 8, 20_000, 5);
    }
}
