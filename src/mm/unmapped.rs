//! `get_unmapped_area`: where a new mapping goes.
//!
//! ```text
//!  0 ─ min_addr ──────────── mmap_base ──────────────── task_size ─ 4 GiB
//!        ▲ top-down search (default),   ▲ bottom-up: fallback of top-down,
//!          highest fit below mmap_base    and the whole search in BottomUp
//! ```
//!
//! Linux-compatible (arch/arm/mm/mmap.c): top-down by default with a
//! bottom-up fallback; a hint is taken when the (aligned) range is free;
//! `MAP_FIXED` is returned as asked after its checks. On a VIPT-aliasing
//! cache, file-backed and shared mappings are placed so that
//! `va ≡ file offset (mod colour span)` — every user mapping of a file page
//! then has the colour of every other, and of a colour-matched kernel
//! window. Beyond Linux: a `MAP_FIXED` *private* file mapping is held to the
//! same congruence (Linux only checks shared ones, leaving private file
//! pages aliased against the page cache until they are copied). VIVT caches
//! get no alignment: two virtual addresses are two cache lines whatever
//! their colour (seed 000), so alignment would only waste address space.
//!
//! Searches run on a [`GapTree`] of the address space's free ranges (guard
//! gaps already taken out by its owner) in O(log n).

use core::fmt;

use super::gaps::{FitQuery, Gap, GapTree};
use crate::addr::VirtAddr;
use crate::cache::CacheInfo;

const PAGE: u64 = 4096;

/// Which end of the mmap area new mappings come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Highest fit below `mmap_base`, then bottom-up above it (Linux's default).
    TopDown,
    /// Lowest fit from `mmap_base` up (Linux's legacy layout).
    BottomUp,
}

/// An address space's placement parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Lowest address a mapping may use (Linux `mmap_min_addr`).
    pub min_addr: u32,
    /// Top-down searches start below this; bottom-up ones above it.
    pub mmap_base: u32,
    /// One past the last user address.
    pub task_size: u32,
    /// Alignment keeping shared and file mappings colour-matched, in bytes:
    /// [`CacheInfo::colour_alignment`] (one page unless VIPT aliasing).
    pub colour_span: u32,
    /// Search direction.
    pub direction: Direction,
}

/// Where user space lies, by name (three bare `u32`s are easy to swap):
/// the argument of [`Layout::for_cache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserBounds {
    /// Lowest mappable address.
    pub min_addr: u32,
    /// Top-down searches start below this.
    pub mmap_base: u32,
    /// One past the last user address.
    pub task_size: u32,
}

impl Layout {
    /// A layout for `cache`, top-down, user space `[min_addr, task_size)`
    /// with mappings below `mmap_base`; checked when a space is built on
    /// it ([`Layout::check`]).
    ///
    /// ```
    /// use vacmm::cache::{CacheGeometry, CacheInfo, MainId};
    /// use vacmm::mm::unmapped::{Layout, UserBounds};
    ///
    /// let g = CacheGeometry::new(16 * 1024, 4, 32).unwrap();
    /// let cache = CacheInfo::pipt(MainId::from_raw(0x4107_b760), g, g);
    /// let bounds = UserBounds { min_addr: 0x8000, mmap_base: 0x4000_0000, task_size: 0xbf00_0000 };
    /// let layout = Layout::for_cache(&cache, bounds);
    /// assert_eq!(layout.colour_span, 4096);
    /// layout.check().unwrap();
    /// ```
    pub fn for_cache(cache: &CacheInfo, bounds: UserBounds) -> Self {
        let UserBounds {
            min_addr,
            mmap_base,
            task_size,
        } = bounds;
        Layout {
            min_addr,
            mmap_base,
            task_size,
            // A colour alignment past u32 (only a hand-built colour count
            // gives one) becomes the largest power of two a u32 holds.
            colour_span: u32::try_from(cache.colour_alignment()).unwrap_or(1 << 31),
            direction: Direction::TopDown,
        }
    }
}

/// What the caller wants mapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapRequest {
    /// The address asked for (`addr` of mmap); required with `fixed`.
    pub hint: Option<VirtAddr>,
    /// Bytes (rounded up to pages).
    pub len: u32,
    /// `MAP_FIXED`: exactly at `hint`, or an error.
    pub fixed: bool,
    /// `MAP_SHARED`.
    pub shared: bool,
    /// Byte offset into the backing file (`None`: anonymous).
    pub file_offset: Option<u64>,
}

/// Why no address was returned, with the values involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MmapError {
    /// `len` is 0 (`EINVAL`).
    ZeroLength,
    /// The length does not fit in user space (`ENOMEM`).
    TooLarge {
        /// Bytes asked for.
        len: u32,
    },
    /// The file offset is not page aligned (`EINVAL`).
    UnalignedOffset {
        /// The offset.
        offset: u64,
    },
    /// `MAP_FIXED` without an address (`EINVAL`).
    FixedWithoutAddress,
    /// A `MAP_FIXED` address that is not page aligned (`EINVAL`).
    FixedUnaligned {
        /// The address.
        addr: VirtAddr,
    },
    /// A `MAP_FIXED` range outside `[min_addr, task_size)` (`ENOMEM`).
    FixedOutOfRange {
        /// The address.
        addr: VirtAddr,
        /// Bytes.
        len: u32,
    },
    /// A `MAP_FIXED` shared or file mapping whose address is not congruent
    /// with its offset modulo the colour span on an aliasing cache (`EINVAL`).
    ColourMismatch {
        /// The address.
        addr: VirtAddr,
        /// The file offset.
        offset: u64,
        /// The colour span.
        span: u32,
    },
    /// No free range is large enough (`ENOMEM`).
    NoRoom {
        /// Bytes asked for (after rounding).
        len: u32,
    },
}

impl MmapError {
    /// The POSIX errno a kernel returns for it (`EINVAL` = 22, `ENOMEM` = 12).
    pub fn errno(&self) -> i32 {
        match self {
            MmapError::TooLarge { .. }
            | MmapError::FixedOutOfRange { .. }
            | MmapError::NoRoom { .. } => 12,
            _ => 22,
        }
    }
}

impl fmt::Display for MmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MmapError::ZeroLength => f.write_str("cannot map zero bytes (EINVAL)"),
            MmapError::TooLarge { len } => write!(
                f,
                "a mapping of {len:#x} bytes does not fit in user space (ENOMEM)"
            ),
            MmapError::UnalignedOffset { offset } => {
                write!(f, "file offset {offset:#x} is not page aligned (EINVAL)")
            }
            MmapError::FixedWithoutAddress => {
                f.write_str("a MAP_FIXED mapping needs an address and none was given (EINVAL)")
            }
            MmapError::FixedUnaligned { addr } => {
                write!(
                    f,
                    "the MAP_FIXED address {addr} is not page aligned (EINVAL)"
                )
            }
            MmapError::FixedOutOfRange { addr, len } => write!(
                f,
                "the MAP_FIXED range {addr} + {len:#x} is outside user space (ENOMEM)"
            ),
            MmapError::ColourMismatch { addr, offset, span } => write!(
                f,
                "a MAP_FIXED mapping at {addr} of offset {offset:#x} would alias on this cache: \
                 an address must equal its offset modulo {span:#x} (EINVAL)"
            ),
            MmapError::NoRoom { len } => write!(
                f,
                "no free range of {len:#x} bytes is left in user space (ENOMEM)"
            ),
        }
    }
}

impl core::error::Error for MmapError {}

/// The figures both searches derive from a request.
struct Search {
    /// Length in bytes, rounded up to pages.
    len: u64,
    /// Colour span (at least a page).
    span: u64,
    /// Whether the placement must be colour-matched with the offset.
    colour_matched: bool,
    /// Free bytes a gap needs: `len` plus Linux's `align_mask` slack.
    need: u64,
    /// `min_addr`, `mmap_base` (clamped into user space) and `task_size`.
    low: u64,
    base: u64,
    high: u64,
}

impl Search {
    fn new(layout: &Layout, req: &MapRequest) -> Search {
        let len = u64::from(req.len).div_ceil(PAGE) * PAGE;
        let span = u64::from(layout.colour_span.max(PAGE as u32));
        let colour_matched = span > PAGE && (req.file_offset.is_some() || req.shared);
        let low = u64::from(layout.min_addr);
        let high = u64::from(layout.task_size);
        Search {
            len,
            span,
            colour_matched,
            need: len + if colour_matched { span - PAGE } else { 0 },
            low,
            base: u64::from(layout.mmap_base).clamp(low, high.max(low)),
            high,
        }
    }
}

/// Chooses the address for `req` in an address space whose free ranges are
/// `gaps`.
pub fn get_unmapped_area(
    gaps: &GapTree,
    layout: &Layout,
    req: &MapRequest,
) -> Result<VirtAddr, MmapError> {
    if req.len == 0 {
        return Err(MmapError::ZeroLength);
    }
    let Search {
        len,
        span,
        colour_matched,
        need,
        low,
        base,
        high,
    } = Search::new(layout, req);
    let user = high.saturating_sub(low);
    if len > user {
        return Err(MmapError::TooLarge { len: req.len });
    }
    let offset = req.file_offset.unwrap_or(0);
    if !offset.is_multiple_of(PAGE) {
        return Err(MmapError::UnalignedOffset { offset });
    }
    if req.fixed {
        let addr = req.hint.ok_or(MmapError::FixedWithoutAddress)?;
        let start = u64::from(addr.as_u32());
        if start % PAGE != 0 {
            return Err(MmapError::FixedUnaligned { addr });
        }
        if start < u64::from(layout.min_addr) || start + len > u64::from(layout.task_size) {
            return Err(MmapError::FixedOutOfRange { addr, len: req.len });
        }
        if colour_matched && start % span != offset % span {
            return Err(MmapError::ColourMismatch {
                addr,
                offset,
                span: span as u32,
            });
        }
        return Ok(addr);
    }

    if let Some(hint) = req.hint {
        let hint = u64::from(hint.as_u32());
        let start = if colour_matched {
            // Linux's COLOUR_ALIGN: round up to the span, add the offset's colour.
            hint.div_ceil(span) * span + offset % span
        } else {
            hint.div_ceil(PAGE) * PAGE
        };
        let fits = start >= u64::from(layout.min_addr)
            && start + len <= u64::from(layout.task_size)
            && gaps.containing(start).is_some_and(|g| g.end >= start + len);
        if fits {
            return Ok(VirtAddr(start as u32));
        }
    }

    // Colour-matched placements sit at `offset` modulo the span, all
    // others on a page boundary.
    let (modulus, residue) = if colour_matched {
        (span, offset % span)
    } else {
        (PAGE, 0)
    };
    let align = |gap: Gap, top_down: bool| place(gap, len, modulus, residue, top_down);
    let found = match layout.direction {
        Direction::TopDown => gaps
            .highest_fit(FitQuery {
                len: need,
                low,
                high: base,
            })
            .and_then(|g| align(g, true))
            .or_else(|| {
                gaps.lowest_fit(FitQuery {
                    len: need,
                    low: base,
                    high,
                })
                .and_then(|g| align(g, false))
            }),
        Direction::BottomUp => gaps
            .lowest_fit(FitQuery {
                len: need,
                low: base,
                high,
            })
            .and_then(|g| align(g, false)),
    };
    found
        .map(|a| VirtAddr(a as u32))
        .ok_or(MmapError::NoRoom { len: len as u32 })
}

/// The highest (`top_down`) or lowest address `a` of `gap` with
/// `a ≡ residue (mod modulus)` and `a + len` inside the gap, if any.
///
/// A gap found with Linux's slack (`len + span − PAGE` bytes) always has
/// one when the gap, `len` and the span are page multiples, as in every
/// address space; the arithmetic is written so that other values (a
/// layout or a tree built by hand) give `None` rather than an address
/// outside the gap or an overflow.
fn place(gap: Gap, len: u64, modulus: u64, residue: u64, top_down: bool) -> Option<u64> {
    let addr = if top_down {
        let last = gap.end.checked_sub(len)?;
        last.checked_sub((last % modulus + modulus - residue) % modulus)?
    } else {
        gap.start + (residue + modulus - gap.start % modulus) % modulus
    };
    (addr >= gap.start && addr + len <= gap.end).then_some(addr)
}

/// The same placement by a linear walk over the free ranges — the
/// baseline the benchmark compares the tree against, and a test oracle.
pub fn get_unmapped_area_linear(
    gaps: &[Gap],
    layout: &Layout,
    req: &MapRequest,
) -> Result<VirtAddr, MmapError> {
    // Rebuilding a tree would hide the cost; instead mirror the search on
    // the slice, and share every check by running the tree version on a
    // tree holding only the gap the scan found.
    let Search {
        need,
        low,
        base,
        high,
        ..
    } = Search::new(layout, req);
    let clip = |g: &Gap, lo: u64, hi: u64| Gap {
        start: g.start.max(lo),
        end: g.end.min(hi),
    };
    let fits = |g: &Gap, lo, hi| {
        let c = clip(g, lo, hi);
        !c.is_empty() && c.len() >= need
    };
    let chosen = match layout.direction {
        Direction::TopDown => gaps
            .iter()
            .rev()
            .find(|g| fits(g, low, base))
            .or_else(|| gaps.iter().find(|g| fits(g, base, high))),
        Direction::BottomUp => gaps.iter().find(|g| fits(g, base, high)),
    };
    let mut one = GapTree::new();
    if let Some(g) = chosen {
        one.insert(*g)
            .map_err(|_| MmapError::NoRoom { len: req.len })?;
    }
    get_unmapped_area(&one, layout, req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const MIN: u32 = 0x8000;
    const BASE: u32 = 0xb000_0000;
    const TOP: u32 = 0xbf00_0000;
    /// 64 KiB 4-way VIPT: 16 KiB ways, 4 colours.
    const ALIASING_SPAN: u32 = 0x4000;

    fn layout(span: u32) -> Layout {
        Layout {
            min_addr: MIN,
            mmap_base: BASE,
            task_size: TOP,
            colour_span: span,
            direction: Direction::TopDown,
        }
    }

    /// Text at 0x8000, a library right under mmap_base, a mapping at 1 GiB.
    fn typical() -> GapTree {
        let maps = [
            (0x8000, 0x10_0000),
            (0x4000_0000, 0x4001_0000),
            (0xaff0_0000, 0xb000_0000),
        ];
        GapTree::complement_of(maps, u64::from(MIN), u64::from(TOP)).unwrap()
    }

    fn anon(len: u32) -> MapRequest {
        MapRequest {
            len,
            ..MapRequest::default()
        }
    }

    fn file(len: u32, offset: u64, shared: bool) -> MapRequest {
        MapRequest {
            len,
            shared,
            file_offset: Some(offset),
            ..MapRequest::default()
        }
    }

    fn at(req: MapRequest, hint: u32, fixed: bool) -> MapRequest {
        MapRequest {
            hint: Some(VirtAddr(hint)),
            fixed,
            ..req
        }
    }

    /// The table: (what, span, request, expected), all on `typical()`.
    #[test]
    fn behaves_like_linux_on_the_case_table() {
        let bottom_up = Layout {
            direction: Direction::BottomUp,
            ..layout(0x1000)
        };
        let cases: &[(&str, Layout, MapRequest, Result<u32, MmapError>)] = &[
            (
                "top-down: highest fit below mmap_base",
                layout(0x1000),
                anon(0x3000),
                Ok(0xafef_d000),
            ),
            (
                "length rounded up to pages",
                layout(0x1000),
                anon(0x2001),
                Ok(0xafef_d000),
            ),
            (
                "bottom-up: lowest fit from mmap_base",
                bottom_up,
                anon(0x3000),
                Ok(0xb000_0000),
            ),
            (
                "aliasing: shared anon at colour 0",
                layout(ALIASING_SPAN),
                MapRequest {
                    shared: true,
                    ..anon(0x3000)
                },
                Ok(0xafef_c000),
            ),
            (
                "aliasing: file offset 0x5000 → colour 1",
                layout(ALIASING_SPAN),
                file(0x3000, 0x5000, false),
                Ok(0xafef_d000),
            ),
            (
                "aliasing: file offset 0x6000 → colour 2",
                layout(ALIASING_SPAN),
                file(0x3000, 0x6000, true),
                Ok(0xafef_a000),
            ),
            (
                "aliasing: private anon is not aligned",
                layout(ALIASING_SPAN),
                anon(0x3000),
                Ok(0xafef_d000),
            ),
            (
                "VIVT: shared file mapping is not aligned",
                layout(0x1000),
                file(0x3000, 0x6000, true),
                Ok(0xafef_d000),
            ),
            (
                "hint taken when free",
                layout(0x1000),
                at(anon(0x2000), 0x2000_0000, false),
                Ok(0x2000_0000),
            ),
            (
                "hint rounded up to a page",
                layout(0x1000),
                at(anon(0x2000), 0x2000_0123, false),
                Ok(0x2000_1000),
            ),
            (
                "aliasing: hint colour-aligned to the offset",
                layout(ALIASING_SPAN),
                at(file(0x2000, 0x1000, true), 0x2000_0000, false),
                Ok(0x2000_1000),
            ),
            (
                "hint rejected when it overlaps",
                layout(0x1000),
                at(anon(0x2000), 0x4000_f000, false),
                Ok(0xafef_e000),
            ),
            (
                "hint rejected above task_size",
                layout(0x1000),
                at(anon(0x2000), 0xbeff_f000, false),
                Ok(0xafef_e000),
            ),
            (
                "hint rejected below min_addr",
                layout(0x1000),
                at(anon(0x1000), 0x1000, false),
                Ok(0xafef_f000),
            ),
            (
                "MAP_FIXED returned as asked",
                layout(0x1000),
                at(anon(0x1000), 0x4000_8000, true),
                Ok(0x4000_8000),
            ),
            (
                "aliasing: MAP_FIXED shared congruent",
                layout(ALIASING_SPAN),
                at(file(0x1000, 0x1000, true), 0x2000_1000, true),
                Ok(0x2000_1000),
            ),
            (
                "aliasing: MAP_FIXED shared misaligned",
                layout(ALIASING_SPAN),
                at(file(0x1000, 0x1000, true), 0x2000_2000, true),
                Err(MmapError::ColourMismatch {
                    addr: VirtAddr(0x2000_2000),
                    offset: 0x1000,
                    span: ALIASING_SPAN,
                }),
            ),
            (
                "aliasing: MAP_FIXED private file misaligned (beyond Linux)",
                layout(ALIASING_SPAN),
                at(file(0x1000, 0, false), 0x2000_1000, true),
                Err(MmapError::ColourMismatch {
                    addr: VirtAddr(0x2000_1000),
                    offset: 0,
                    span: ALIASING_SPAN,
                }),
            ),
            (
                "aliasing: MAP_FIXED private anon anywhere",
                layout(ALIASING_SPAN),
                at(anon(0x1000), 0x2000_1000, true),
                Ok(0x2000_1000),
            ),
            (
                "VIVT: MAP_FIXED shared anywhere",
                layout(0x1000),
                at(file(0x1000, 0, true), 0x2000_1000, true),
                Ok(0x2000_1000),
            ),
            (
                "MAP_FIXED unaligned",
                layout(0x1000),
                at(anon(0x1000), 0x2000_0800, true),
                Err(MmapError::FixedUnaligned {
                    addr: VirtAddr(0x2000_0800),
                }),
            ),
            (
                "MAP_FIXED past task_size",
                layout(0x1000),
                at(anon(0x2000), TOP - 0x1000, true),
                Err(MmapError::FixedOutOfRange {
                    addr: VirtAddr(TOP - 0x1000),
                    len: 0x2000,
                }),
            ),
            (
                "MAP_FIXED without address",
                layout(0x1000),
                MapRequest {
                    fixed: true,
                    ..anon(0x1000)
                },
                Err(MmapError::FixedWithoutAddress),
            ),
            (
                "zero length",
                layout(0x1000),
                anon(0),
                Err(MmapError::ZeroLength),
            ),
            (
                "longer than user space",
                layout(0x1000),
                anon(0xffff_f000),
                Err(MmapError::TooLarge { len: 0xffff_f000 }),
            ),
            (
                "unaligned file offset",
                layout(0x1000),
                file(0x1000, 0x800, true),
                Err(MmapError::UnalignedOffset { offset: 0x800 }),
            ),
        ];
        let gaps = typical();
        for (what, layout, req, expected) in cases {
            let got = get_unmapped_area(&gaps, layout, req).map(|a| a.as_u32());
            assert_eq!(got, *expected, "{what}");
            if req.hint.is_none() {
                let slice: Vec<Gap> = gaps.iter().collect();
                let linear = get_unmapped_area_linear(&slice, layout, req).map(|a| a.as_u32());
                assert_eq!(linear, *expected, "{what} (linear baseline)");
            }
        }
    }

    #[test]
    fn falls_back_bottom_up_near_the_top_then_runs_out() {
        // Everything below mmap_base is taken, and above it all but the last
        // two pages before task_size.
        let maps = [(u64::from(MIN), u64::from(TOP) - 0x2000)];
        let gaps = GapTree::complement_of(maps, u64::from(MIN), u64::from(TOP)).unwrap();
        let l = layout(0x1000);
        assert_eq!(
            get_unmapped_area(&gaps, &l, &anon(0x2000)),
            Ok(VirtAddr(TOP - 0x2000))
        );
        assert_eq!(
            get_unmapped_area(&gaps, &l, &anon(0x3000)),
            Err(MmapError::NoRoom { len: 0x3000 })
        );
        // With colour slack a two-page shared mapping at an odd colour needs more room.
        let a = layout(ALIASING_SPAN);
        assert_eq!(
            get_unmapped_area(&gaps, &a, &file(0x2000, 0x1000, true)),
            Err(MmapError::NoRoom { len: 0x2000 })
        );
        let full = GapTree::complement_of(
            [(u64::from(MIN), u64::from(TOP))],
            u64::from(MIN),
            u64::from(TOP),
        )
        .unwrap();
        let e = get_unmapped_area(&full, &l, &anon(0x1000)).unwrap_err();
        assert_eq!((e, e.errno()), (MmapError::NoRoom { len: 0x1000 }, 12));
        assert_eq!(MmapError::ZeroLength.errno(), 22);
    }

    /// Random address spaces and requests: the tree agrees with the linear
    /// scan, results lie inside free space, and shared/file placements are
    /// congruent on the aliasing layout.
    #[test]
    fn random_requests_agree_with_the_linear_scan_and_keep_colours() {
        let mut rng = crate::xorshift::XorShift(0x2545_f491);
        let mut rand = move || rng.next();
        for round in 0..200 {
            let mut maps = Vec::new();
            let mut cursor = u64::from(MIN);
            while cursor < u64::from(TOP) {
                let gap =
                    u64::from(rand() % 64) * 0x1000 * u64::from(1 + (rand() % 8 == 0) as u32 * 255);
                let size = u64::from(rand() % 64 + 1) * 0x1000;
                let start = cursor + gap;
                let end = (start + size).min(u64::from(TOP));
                if start >= end {
                    break;
                }
                maps.push((start, end));
                cursor = end;
            }
            let gaps = GapTree::complement_of(maps.iter().copied(), u64::from(MIN), u64::from(TOP))
                .unwrap();
            let slice: Vec<Gap> = gaps.iter().collect();
            for _ in 0..50 {
                let span = if rand() % 2 == 0 {
                    ALIASING_SPAN
                } else {
                    0x1000
                };
                let mut l = layout(span);
                if rand() % 4 == 0 {
                    l.direction = Direction::BottomUp;
                }
                let req = MapRequest {
                    len: (rand() % 0x40_0000).max(1),
                    shared: rand() % 2 == 0,
                    file_offset: (rand() % 2 == 0).then(|| u64::from(rand() % 64) * 0x1000),
                    ..MapRequest::default()
                };
                let tree = get_unmapped_area(&gaps, &l, &req);
                assert_eq!(
                    tree,
                    get_unmapped_area_linear(&slice, &l, &req),
                    "round {round}: {req:?}"
                );
                if let Ok(addr) = tree {
                    let start = u64::from(addr.as_u32());
                    let len = u64::from(req.len).div_ceil(0x1000) * 0x1000;
                    let g = gaps.containing(start).expect("placed in free space");
                    assert!(start + len <= g.end && start + len <= u64::from(TOP));
                    if span > 0x1000 && (req.shared || req.file_offset.is_some()) {
                        let offset = req.file_offset.unwrap_or(0);
                        assert_eq!(
                            start.wrapping_sub(offset) % u64::from(span),
                            0,
                            "{req:?} at {addr}"
                        );
                    }
                }
            }
        }
    }

    /// The congruence was computed with `wrapping_sub` in u64, which is
    /// the residue only for a power-of-two span: with a 3-page span and an
    /// offset above the address, placements and the MAP_FIXED check were
    /// off by a colour.
    #[test]
    fn colour_arithmetic_holds_for_any_span_and_offset() {
        let span = 0x3000u32;
        let offset = 1u64 << 40;
        let colour = offset % u64::from(span);
        let gaps = typical();
        for direction in [Direction::TopDown, Direction::BottomUp] {
            let l = Layout {
                direction,
                ..layout(span)
            };
            let addr = get_unmapped_area(&gaps, &l, &file(0x2000, offset, true)).unwrap();
            assert_eq!(
                u64::from(addr.as_u32()) % u64::from(span),
                colour,
                "{direction:?}"
            );
            assert!(gaps.containing(u64::from(addr.as_u32())).is_some());
        }
        let congruent = 0x2000_0000 - 0x2000_0000 % span + colour as u32;
        for (addr, ok) in [(congruent, true), (congruent + 0x1000, false)] {
            let req = at(file(0x1000, offset, true), addr, true);
            assert_eq!(
                get_unmapped_area(&gaps, &layout(span), &req).is_ok(),
                ok,
                "{addr:#x}"
            );
        }
    }

    /// Gaps and limits that are not page multiples (a tree or layout
    /// built by hand) give page-aligned addresses inside the gap, or none.
    #[test]
    fn unaligned_gaps_give_aligned_addresses_or_none() {
        let mut gaps = GapTree::new();
        assert!(
            gaps.insert(Gap {
                start: 0x1_0800,
                end: 0x3_0800
            })
            .unwrap()
        );
        let l = Layout {
            min_addr: 0x800,
            mmap_base: 0x2_0800,
            task_size: 0x10_0800,
            colour_span: 0x1000,
            direction: Direction::TopDown,
        };
        assert_eq!(
            get_unmapped_area(&gaps, &l, &anon(0x1000)),
            Ok(VirtAddr(0x1_f000))
        );
        let bottom_up = Layout {
            direction: Direction::BottomUp,
            ..l
        };
        assert_eq!(
            get_unmapped_area(&gaps, &bottom_up, &anon(0x1000)),
            Ok(VirtAddr(0x2_1000))
        );
        // Exactly one page of room between unaligned ends holds no aligned page.
        assert_eq!(
            get_unmapped_area(&gaps, &bottom_up, &anon(0x1_0000)),
            Err(MmapError::NoRoom { len: 0x1_0000 })
        );
    }
}
