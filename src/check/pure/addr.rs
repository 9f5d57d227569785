//! Target `pure_addr`: addresses, ranges and range plans, each call
//! compared with the same arithmetic done in `u128`, where nothing
//! overflows.

use std::format;
use std::vec::Vec;

use arbitrary::Arbitrary;

use super::{Failure, ensure, ensure_eq};
use crate::addr::{AlignError, PhysAddr, RangeError, VirtAddr, VirtRange};
use crate::cache::{PlanError, RangePlan};

/// At most this many operations of an input are checked.
pub const MAX_OPS: usize = 64;

/// Plans with at most this many lines are walked line by line.
const WALK_LIMIT: u64 = 4096;

/// A length: small ones are the interesting majority, any `u64` is allowed.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Len {
    /// Up to 64 KiB.
    Small(u16),
    /// Anything.
    Raw(u64),
}

impl Len {
    fn bytes(self) -> u64 {
        match self {
            Len::Small(n) => u64::from(n),
            Len::Raw(n) => n,
        }
    }
}

/// An alignment or line size: a power of two (the usual case) or any
/// value (0, non-powers of two).
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Align {
    /// `1 << (shift % 32)`.
    Power(u8),
    /// Anything.
    Raw(u32),
}

impl Align {
    fn bytes(self) -> u32 {
        match self {
            Align::Power(shift) => 1 << (shift % 32),
            Align::Raw(n) => n,
        }
    }
}

/// One call and its check.
#[derive(Clone, Debug, Arbitrary)]
pub enum Op {
    /// `VirtRange::new`.
    Range {
        /// First byte.
        start: u32,
        /// Length.
        len: Len,
    },
    /// `VirtRange::from_bounds`.
    Bounds {
        /// First byte.
        start: u32,
        /// Exclusive end.
        end: u32,
    },
    /// `VirtRange::from_inclusive`.
    Inclusive {
        /// First byte.
        start: u32,
        /// Last byte.
        last: u32,
    },
    /// The rounding functions of `VirtAddr` and `PhysAddr`.
    Round {
        /// The address.
        addr: u32,
        /// The alignment.
        align: Align,
    },
    /// `RangePlan::new`.
    Plan {
        /// First byte.
        start: u32,
        /// Length (clipped to the address space).
        len: Len,
        /// Line size.
        line: Align,
        /// Whole-cache threshold.
        threshold: u64,
    },
}

/// The fuzzer's input.
#[derive(Clone, Debug, Arbitrary)]
pub struct Input {
    /// The calls (the first [`MAX_OPS`]).
    pub ops: Vec<Op>,
}

impl Input {
    /// Checks every operation; the first broken property.
    pub fn check(&self) -> Result<(), Failure> {
        for (i, op) in self.ops.iter().take(MAX_OPS).enumerate() {
            check_op(op).map_err(|e| format!("op {i}, {op:?}: {e}"))?;
        }
        Ok(())
    }
}

const TOP: u128 = 1 << 32;

fn check_op(op: &Op) -> Result<(), Failure> {
    match *op {
        Op::Range { start, len } => check_new(start, len.bytes()),
        Op::Bounds { start, end } => {
            let got = VirtRange::from_bounds(VirtAddr(start), VirtAddr(end));
            if end < start {
                ensure_eq!(
                    got,
                    Err(RangeError::EndBeforeStart { start, end }),
                    "refused"
                );
                return Ok(());
            }
            let r = got.map_err(|e| format!("refused: {e}"))?;
            check_range(r, start, u64::from(end - start))
        }
        Op::Inclusive { start, last } => {
            let got = VirtRange::from_inclusive(VirtAddr(start), VirtAddr(last));
            if last < start {
                ensure_eq!(
                    got,
                    Err(RangeError::EndBeforeStart { start, end: last }),
                    "refused"
                );
                return Ok(());
            }
            let r = got.map_err(|e| format!("refused: {e}"))?;
            check_range(r, start, u64::from(last - start) + 1)?;
            ensure_eq!(r.last(), Some(VirtAddr(last)), "last byte");
            Ok(())
        }
        Op::Round { addr, align } => check_rounding(addr, align.bytes()),
        Op::Plan {
            start,
            len,
            line,
            threshold,
        } => {
            let room = (1u64 << 32) - u64::from(start);
            let range = VirtRange::new(VirtAddr(start), len.bytes().min(room))
                .map_err(|e| format!("a clipped range was refused: {e}"))?;
            check_plan(range, line.bytes(), threshold)
        }
    }
}

fn check_new(start: u32, len: u64) -> Result<(), Failure> {
    let got = VirtRange::new(VirtAddr(start), len);
    if u128::from(start) + u128::from(len) > TOP {
        ensure_eq!(
            got,
            Err(RangeError::WrapsPast4GiB { start, len }),
            "refused"
        );
        ensure!(!got.unwrap_err().to_string().is_empty(), "empty message");
        return Ok(());
    }
    let r = got.map_err(|e| format!("refused: {e}"))?;
    check_range(r, start, len)
}

/// The accessors of `r`, built from `start` and `len`.
fn check_range(r: VirtRange, start: u32, len: u64) -> Result<(), Failure> {
    ensure_eq!(
        (r.start(), r.len()),
        (VirtAddr(start), len),
        "start and length"
    );
    ensure_eq!(r.is_empty(), len == 0, "is_empty");
    let last = (len > 0).then(|| VirtAddr((u64::from(start) + len - 1) as u32));
    ensure_eq!(r.last(), last, "last byte");
    ensure!(!format!("{r:?}").is_empty(), "empty Debug");
    Ok(())
}

fn check_rounding(addr: u32, align: u32) -> Result<(), Failure> {
    // The plain meaning: the largest multiple of `align` not above `addr`
    // (0 being the only multiple of 0), in u64.
    let down = match u64::from(addr).checked_rem(u64::from(align)) {
        Some(rem) => u64::from(addr) - rem,
        None => 0,
    } as u32;
    let aligned = down == addr;
    let power = align.is_power_of_two();
    let refused = AlignError::NotPowerOfTwo { align };
    let up = u64::from(addr)
        .checked_next_multiple_of(u64::from(align))
        .filter(|_| power);
    let expected_up = match up {
        None => Err(refused),
        Some(up) if up > u64::from(u32::MAX) => Err(AlignError::PastTop { addr, align }),
        Some(up) => Ok(up as u32),
    };
    ensure_eq!(
        VirtAddr(addr).align_down(align),
        VirtAddr(down),
        "VirtAddr::align_down"
    );
    ensure_eq!(
        PhysAddr(addr).align_down(align),
        PhysAddr(down),
        "PhysAddr::align_down"
    );
    ensure_eq!(
        VirtAddr(addr).is_aligned(align),
        aligned,
        "VirtAddr::is_aligned"
    );
    ensure_eq!(
        PhysAddr(addr).is_aligned(align),
        aligned,
        "PhysAddr::is_aligned"
    );
    let checked_down = if power { Ok(down) } else { Err(refused) };
    ensure_eq!(
        VirtAddr(addr)
            .checked_align_down(align)
            .map(VirtAddr::as_u32),
        checked_down,
        "VirtAddr::checked_align_down"
    );
    ensure_eq!(
        PhysAddr(addr)
            .checked_align_down(align)
            .map(PhysAddr::as_u32),
        checked_down,
        "PhysAddr::checked_align_down"
    );
    ensure_eq!(
        VirtAddr(addr).checked_align_up(align).map(VirtAddr::as_u32),
        expected_up,
        "VirtAddr::checked_align_up"
    );
    ensure_eq!(
        PhysAddr(addr).checked_align_up(align).map(PhysAddr::as_u32),
        expected_up,
        "PhysAddr::checked_align_up"
    );
    if let Err(e) = expected_up {
        ensure!(!e.to_string().is_empty(), "empty message");
    }
    Ok(())
}

fn check_plan(range: VirtRange, line: u32, threshold: u64) -> Result<(), Failure> {
    let plan = RangePlan::new(range, line, threshold);
    if !line.is_power_of_two() {
        ensure_eq!(
            plan,
            Err(PlanError::LineNotPowerOfTwo { line_bytes: line }),
            "refused"
        );
        return Ok(());
    }
    let plan = plan.map_err(|e| format!("refused: {e}"))?;
    let Some(last) = range.last() else {
        ensure_eq!(plan, RangePlan::Nothing, "empty range");
        return Ok(());
    };
    let (start, last, line64) = (
        u64::from(range.start().as_u32()),
        u64::from(last.as_u32()),
        u64::from(line),
    );
    let first_line = start / line64 * line64;
    let last_line = last / line64 * line64;
    let covered = last_line - first_line + line64;
    let lines = match plan {
        RangePlan::WholeCache => {
            let countable = usize::try_from(covered / line64).is_ok();
            ensure!(
                covered >= threshold || !countable,
                "whole cache for {covered} bytes"
            );
            return Ok(());
        }
        RangePlan::Nothing => return Err("nothing planned for a non-empty range".into()),
        RangePlan::Lines(lines) => lines,
    };
    ensure!(covered < threshold, "lines for {covered} bytes");
    let count = covered / line64;
    ensure_eq!(lines.len() as u64, count, "line count");
    ensure_eq!(
        (lines.first_line(), lines.last_line()),
        (VirtAddr(first_line as u32), VirtAddr(last_line as u32)),
        "first and last lines"
    );
    ensure_eq!(
        (lines.first_is_partial(), lines.last_is_partial()),
        (start % line64 != 0, (last + 1) % line64 != 0),
        "partial lines"
    );
    if count <= WALK_LIMIT {
        let walked: Vec<u64> = lines.map(|va| u64::from(va.as_u32())).collect();
        let expected: Vec<u64> = (0..count).map(|i| first_line + i * line64).collect();
        ensure_eq!(walked, expected, "lines walked");
    }
    Ok(())
}
