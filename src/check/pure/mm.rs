//! Target `pure_mm`: the gap tree and `get_unmapped_area` against a sorted
//! map of free ranges, and the frame structures (colour allocator, frame
//! database, memory objects) against sets and maps ([`super::frames`]).
//!
//! Every tree operation is mirrored on the model and the two compared in
//! full afterwards: a refused call must leave the tree as it was.

use std::collections::BTreeMap;
use std::format;
use std::string::String;
use std::vec::Vec;

use arbitrary::Arbitrary;

use super::{Failure, ensure, ensure_eq, frames};
use crate::addr::VirtAddr;
use crate::mm::gaps::{FitQuery, Gap, GapTree};
use crate::mm::unmapped::{
    Direction, Layout, MapRequest, MmapError, get_unmapped_area, get_unmapped_area_linear,
};

/// At most this many operations of an input are checked.
pub const MAX_OPS: usize = 128;

const PAGE: u64 = 4096;
const TOP: u64 = 1 << 32;

/// An address: mostly a page of the first 256 MiB, so operations meet;
/// a few bytes off a page, where off-by-one errors live; or anything.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Addr {
    /// Page `n`.
    Page(u16),
    /// Page `n`, moved by a few bytes either way.
    Near(u16, i8),
    /// Anything.
    Raw(u32),
}

impl Addr {
    fn value(self) -> u64 {
        match self {
            Addr::Page(n) => u64::from(n) * PAGE,
            Addr::Near(n, d) => (u64::from(n) * PAGE).saturating_add_signed(i64::from(d)),
            Addr::Raw(a) => u64::from(a),
        }
    }
}

/// A length: mostly whole pages, a few bytes off, or anything (past 4 GiB
/// too).
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Len {
    /// `n` pages.
    Pages(u8),
    /// `n` pages, a few bytes more or less.
    Near(u8, i8),
    /// Anything.
    Raw(u64),
}

impl Len {
    fn value(self) -> u64 {
        match self {
            Len::Pages(n) => u64::from(n) * PAGE,
            Len::Near(n, d) => (u64::from(n) * PAGE).saturating_add_signed(i64::from(d)),
            Len::Raw(n) => n,
        }
    }
}

/// The placement parameters, mostly sensible.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub struct LayoutArg {
    /// `Layout::min_addr`.
    pub min_addr: Addr,
    /// `Layout::mmap_base`.
    pub mmap_base: Addr,
    /// `Layout::task_size`.
    pub task_size: Addr,
    /// `PAGE << (n % 6)` for `Ok`, anything for `Err`.
    pub colour_span: Result<u8, u32>,
    /// Bottom-up rather than top-down.
    pub bottom_up: bool,
}

impl LayoutArg {
    fn layout(self) -> Layout {
        Layout {
            min_addr: self.min_addr.value() as u32,
            mmap_base: self.mmap_base.value() as u32,
            task_size: self.task_size.value() as u32,
            colour_span: match self.colour_span {
                Ok(n) => (PAGE as u32) << (n % 6),
                Err(raw) => raw,
            },
            direction: if self.bottom_up {
                Direction::BottomUp
            } else {
                Direction::TopDown
            },
        }
    }
}

/// A request, mostly sensible.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub struct RequestArg {
    /// `MapRequest::hint`.
    pub hint: Option<Addr>,
    /// `MapRequest::len`.
    pub len: Len,
    /// `MAP_FIXED`.
    pub fixed: bool,
    /// `MAP_SHARED`.
    pub shared: bool,
    /// Page `n`'s offset for `Ok`, any byte offset for `Err`.
    pub file_offset: Option<Result<u16, u64>>,
}

impl RequestArg {
    fn request(self) -> MapRequest {
        MapRequest {
            hint: self.hint.map(|a| VirtAddr(a.value() as u32)),
            len: self.len.value() as u32,
            fixed: self.fixed,
            shared: self.shared,
            file_offset: self.file_offset.map(|o| match o {
                Ok(page) => u64::from(page) * PAGE,
                Err(raw) => raw,
            }),
        }
    }
}

/// One operation of the gap-tree part.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum GapOp {
    /// `GapTree::insert` of `[start, start + len)`.
    Insert {
        /// First byte.
        start: Addr,
        /// Length.
        len: Len,
    },
    /// `GapTree::remove` of the gap starting at `start`.
    Remove {
        /// Its start.
        start: Addr,
    },
    /// `GapTree::take`.
    Take {
        /// First byte.
        start: Addr,
        /// Length.
        len: Len,
    },
    /// `GapTree::give`.
    Give {
        /// First byte.
        start: Addr,
        /// Length.
        len: Len,
    },
    /// `GapTree::containing`.
    Containing {
        /// The address.
        at: Addr,
    },
    /// `highest_fit` and `lowest_fit`.
    Fit {
        /// Bytes needed.
        len: Len,
        /// Lowest usable address.
        low: Addr,
        /// One past the highest.
        high: Len,
    },
    /// `get_unmapped_area` (and the linear baseline).
    Place {
        /// The layout.
        layout: LayoutArg,
        /// The request.
        request: RequestArg,
    },
}

/// The fuzzer's input: which part runs, then its operations.
#[derive(Clone, Debug, Arbitrary)]
pub enum Input {
    /// The gap tree and `get_unmapped_area`.
    Gaps(Vec<GapOp>),
    /// The colour allocator, the frame database and memory objects.
    Frames(frames::Input),
}

impl Input {
    /// Runs the operations; the first broken property.
    pub fn check(&self) -> Result<(), Failure> {
        match self {
            Input::Gaps(ops) => check_gaps(ops),
            Input::Frames(input) => input.check(),
        }
    }
}

/// The model: gaps by start, each `start → end`.
type Model = BTreeMap<u64, u64>;

fn check_gaps(ops: &[GapOp]) -> Result<(), Failure> {
    let mut tree = GapTree::new();
    let mut model = Model::new();
    for (i, op) in ops.iter().take(MAX_OPS).enumerate() {
        let before: String = format!("{:?}", model);
        apply(&mut tree, &mut model, op)
            .map_err(|e| format!("op {i}, {op:?}: {e}\n  gaps before: {before}"))?;
        agree(&tree, &model)
            .map_err(|e| format!("after op {i}, {op:?}: {e}\n  gaps before: {before}"))?;
    }
    Ok(())
}

fn gap(start: u64, end: u64) -> Gap {
    Gap { start, end }
}

/// The model gap holding `addr`.
fn holding(model: &Model, addr: u64) -> Option<Gap> {
    let (&start, &end) = model.range(..=addr).next_back()?;
    (addr < end).then(|| gap(start, end))
}

fn overlaps(model: &Model, start: u64, end: u64) -> bool {
    model.iter().any(|(&s, &e)| s < end && e > start)
}

fn apply(tree: &mut GapTree, model: &mut Model, op: &GapOp) -> Result<(), Failure> {
    let alloc = |e| format!("allocation failed: {e:?}");
    match *op {
        GapOp::Insert { start, len } => {
            let (start, end) = (start.value(), start.value().saturating_add(len.value()));
            let accepted = tree.insert(gap(start, end)).map_err(alloc)?;
            let expected = end <= start || !(end > TOP || overlaps(model, start, end));
            ensure_eq!(accepted, expected, "accepted");
            if accepted && end > start {
                model.insert(start, end);
            }
        }
        GapOp::Remove { start } => {
            let start = start.value();
            let expected = model.remove(&start).map(|end| gap(start, end));
            ensure_eq!(tree.remove(start), expected, "removed");
        }
        GapOp::Take { start, len } => {
            let (start, end) = (start.value(), start.value().saturating_add(len.value()));
            let taken = tree.take(start, end).map_err(alloc)?;
            let host = holding(model, start).filter(|g| end > start && end <= g.end);
            ensure_eq!(taken, host.is_some(), "taken");
            if let Some(g) = host {
                model.remove(&g.start);
                if g.start < start {
                    model.insert(g.start, start);
                }
                if end < g.end {
                    model.insert(end, g.end);
                }
            }
        }
        GapOp::Give { start, len } => {
            let (start, end) = (start.value(), start.value().saturating_add(len.value()));
            let given = tree.give(start, end).map_err(alloc)?;
            let expected = end > start && end <= TOP && !overlaps(model, start, end);
            ensure_eq!(given, expected, "given");
            if expected {
                let mut merged = gap(start, end);
                if let Some(before) = model.iter().find(|(_, e)| **e == start).map(|(s, _)| *s) {
                    model.remove(&before);
                    merged.start = before;
                }
                if let Some(after) = model.remove(&end) {
                    merged.end = after;
                }
                model.insert(merged.start, merged.end);
            }
        }
        GapOp::Containing { at } => {
            let at = at.value();
            ensure_eq!(
                tree.containing(at),
                holding(model, at),
                "containing {at:#x}"
            );
        }
        GapOp::Fit { len, low, high } => {
            let q = FitQuery {
                len: len.value(),
                low: low.value(),
                high: high.value(),
            };
            let fits: Vec<Gap> = model
                .iter()
                .map(|(&s, &e)| gap(s.max(q.low), e.min(q.high)))
                .filter(|c| !c.is_empty() && c.len() >= q.len)
                .collect();
            ensure_eq!(
                tree.highest_fit(q),
                fits.last().copied(),
                "highest fit {q:?}"
            );
            ensure_eq!(
                tree.lowest_fit(q),
                fits.first().copied(),
                "lowest fit {q:?}"
            );
        }
        GapOp::Place { layout, request } => {
            check_placement(tree, model, &layout.layout(), &request.request())?;
        }
    }
    Ok(())
}

/// The tree lists exactly the model's gaps.
fn agree(tree: &GapTree, model: &Model) -> Result<(), Failure> {
    let listed: Vec<Gap> = tree.iter().collect();
    let expected: Vec<Gap> = model.iter().map(|(&s, &e)| gap(s, e)).collect();
    ensure_eq!(listed, expected, "gaps");
    ensure_eq!(tree.len(), model.len(), "gap count");
    let largest = model.iter().map(|(&s, &e)| e - s).max().unwrap_or(0);
    ensure_eq!(tree.largest(), largest, "largest gap");
    Ok(())
}

/// `get_unmapped_area`'s checks, and where its address may lie.
fn check_placement(
    tree: &GapTree,
    model: &Model,
    layout: &Layout,
    req: &MapRequest,
) -> Result<(), Failure> {
    let got = get_unmapped_area(tree, layout, req);
    let what = format!("{layout:?}, {req:?}");
    let len = u64::from(req.len).div_ceil(PAGE) * PAGE;
    let (low, high) = (u64::from(layout.min_addr), u64::from(layout.task_size));
    let span = u64::from(layout.colour_span.max(PAGE as u32));
    let offset = req.file_offset.unwrap_or(0);
    let colour_matched = span > PAGE && (req.file_offset.is_some() || req.shared);
    // The refusals, in the order the function checks them.
    let refusal = if req.len == 0 {
        Some(MmapError::ZeroLength)
    } else if len > high.saturating_sub(low) {
        Some(MmapError::TooLarge { len: req.len })
    } else if !offset.is_multiple_of(PAGE) {
        Some(MmapError::UnalignedOffset { offset })
    } else {
        None
    };
    if let Some(e) = refusal {
        ensure_eq!(got, Err(e), "{what}");
        return Ok(());
    }
    if req.fixed {
        let expected = match req.hint {
            None => Err(MmapError::FixedWithoutAddress),
            Some(addr) if u64::from(addr.0) % PAGE != 0 => Err(MmapError::FixedUnaligned { addr }),
            Some(addr) if u64::from(addr.0) < low || u64::from(addr.0) + len > high => {
                Err(MmapError::FixedOutOfRange { addr, len: req.len })
            }
            Some(addr) if colour_matched && u64::from(addr.0) % span != offset % span => {
                Err(MmapError::ColourMismatch {
                    addr,
                    offset,
                    span: span as u32,
                })
            }
            Some(addr) => Ok(addr),
        };
        ensure_eq!(got, expected, "{what}");
        return Ok(());
    }
    let residue = if colour_matched { offset % span } else { 0 };
    let modulus = if colour_matched { span } else { PAGE };
    // A hint whose rounded address is free is taken as it is.
    if let Some(hint) = req.hint {
        let hint = u64::from(hint.0);
        let start = hint.div_ceil(modulus) * modulus + residue;
        let free = start >= low
            && start + len <= high
            && holding(model, start).is_some_and(|g| g.end >= start + len);
        if free {
            ensure_eq!(got, Ok(VirtAddr(start as u32)), "{what}: hint");
            return Ok(());
        }
    } else {
        let slice: Vec<Gap> = tree.iter().collect();
        ensure_eq!(
            get_unmapped_area_linear(&slice, layout, req),
            got,
            "{what}: linear scan"
        );
    }
    let need = len + if colour_matched { span - PAGE } else { 0 };
    let base = u64::from(layout.mmap_base).clamp(low, high.max(low));
    match got {
        Ok(addr) => {
            let a = u64::from(addr.0);
            let host = holding(model, a).ok_or_else(|| format!("{what}: {addr} is not free"))?;
            ensure!(
                a + len <= host.end,
                "{what}: {addr} + {len:#x} runs past {host:?}"
            );
            ensure!(
                a >= low && a + len <= high,
                "{what}: {addr} outside user space"
            );
            ensure_eq!(a % modulus, residue, "{what}: {addr}'s colour");
            if modulus % PAGE == 0 {
                ensure_eq!(a % PAGE, 0, "{what}: {addr} unaligned");
            }
        }
        Err(MmapError::NoRoom { len: l }) => {
            ensure_eq!(u64::from(l), len, "{what}: NoRoom's length");
            // With everything page aligned, Linux's slack always places:
            // no gap part on either side of the base may hold `need`.
            let aligned = [low, base, high].iter().all(|v| v % PAGE == 0)
                && model.iter().all(|(s, e)| s % PAGE == 0 && e % PAGE == 0)
                && span % PAGE == 0;
            if aligned {
                let sides: &[(u64, u64)] = match layout.direction {
                    Direction::TopDown => &[(low, base), (base, high)],
                    Direction::BottomUp => &[(base, high)],
                };
                for &(lo, hi) in sides {
                    let room = model
                        .iter()
                        .map(|(&s, &e)| e.min(hi).saturating_sub(s.max(lo)))
                        .max()
                        .unwrap_or(0);
                    ensure!(
                        room < need,
                        "{what}: NoRoom, but {room:#x} bytes free in [{lo:#x}, {hi:#x})"
                    );
                }
            }
        }
        Err(e) => return Err(format!("{what}: unexpected {e}")),
    }
    Ok(())
}
