//! Splitting a byte range into cache lines, bounded by the cache size.
//!
//! A range with unaligned ends is covered by whole lines: the line holding its
//! first byte through the line holding its last. When those lines add up to
//! at least the whole-cache threshold, one whole-cache operation is cheaper
//! than walking them (seed 002: bound every flush by the cache size), so the
//! plan says so instead.

use core::fmt;

use crate::addr::{VirtAddr, VirtRange};

/// How to carry out a maintenance operation over a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangePlan {
    /// The range is empty: nothing to do.
    Nothing,
    /// One operation per line.
    Lines(Lines),
    /// The range covers at least the threshold (or more lines than a
    /// `usize` counts): use the whole-cache operation.
    WholeCache,
}

/// A line size ranges cannot be planned with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// Lines must be a power of two bytes long (0 is not): only then do
    /// they tile the address space, so that rounding an address down gives
    /// the line holding it.
    LineNotPowerOfTwo {
        /// The line size given.
        line_bytes: u32,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PlanError::LineNotPowerOfTwo { line_bytes } => write!(
                f,
                "a cache line of {line_bytes} bytes is not a power of two: ranges cannot be split into lines"
            ),
        }
    }
}

impl core::error::Error for PlanError {}

impl RangePlan {
    /// Plans `range` for a cache with `line_bytes` lines (a power of two) and
    /// the given whole-cache threshold in bytes.
    pub fn new(
        range: VirtRange,
        line_bytes: u32,
        whole_cache_threshold: u64,
    ) -> Result<Self, PlanError> {
        if !line_bytes.is_power_of_two() {
            return Err(PlanError::LineNotPowerOfTwo { line_bytes });
        }
        let Some(last) = range.last() else {
            return Ok(RangePlan::Nothing);
        };
        let lines = Lines {
            next: u64::from(range.start().align_down(line_bytes).as_u32()),
            last_line: u64::from(last.align_down(line_bytes).as_u32()),
            line_bytes,
            first_partial: !range.start().is_aligned(line_bytes),
            last_partial: !VirtAddr(last.as_u32().wrapping_add(1)).is_aligned(line_bytes),
        };
        // `Lines` is an ExactSizeIterator: a count past usize (1-byte lines
        // over all 4 GiB on a 32-bit target) could not be told, and the
        // whole-cache operation is correct for any range.
        let countable = usize::try_from(lines.covered_bytes() / u64::from(line_bytes)).is_ok();
        Ok(
            if lines.covered_bytes() >= whole_cache_threshold || !countable {
                RangePlan::WholeCache
            } else {
                RangePlan::Lines(lines)
            },
        )
    }
}

/// The line-aligned addresses covering a range, first to last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lines {
    /// Next line to yield (u64 so the line at 0xFFFF_FFE0 can be passed).
    next: u64,
    last_line: u64,
    line_bytes: u32,
    first_partial: bool,
    last_partial: bool,
}

impl Lines {
    /// Bytes the remaining lines cover.
    pub fn covered_bytes(&self) -> u64 {
        if self.next > self.last_line {
            0
        } else {
            self.last_line - self.next + u64::from(self.line_bytes)
        }
    }
    /// The range starts in the middle of its first line: that line also holds
    /// bytes outside the range (which an invalidate must not discard).
    pub fn first_is_partial(&self) -> bool {
        self.first_partial
    }
    /// The range ends in the middle of its last line.
    pub fn last_is_partial(&self) -> bool {
        self.last_partial
    }
    /// The line holding the range's first byte.
    pub fn first_line(&self) -> VirtAddr {
        VirtAddr(self.next as u32)
    }
    /// The line holding the range's last byte.
    pub fn last_line(&self) -> VirtAddr {
        VirtAddr(self.last_line as u32)
    }
}

impl Iterator for Lines {
    type Item = VirtAddr;
    fn next(&mut self) -> Option<VirtAddr> {
        if self.next > self.last_line {
            return None;
        }
        let line = VirtAddr(self.next as u32);
        self.next += u64::from(self.line_bytes);
        Some(line)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.covered_bytes() / u64::from(self.line_bytes)) as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Lines {}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: u32, len: u64) -> VirtRange {
        VirtRange::new(VirtAddr(start), len).unwrap()
    }

    fn lines(plan: Result<RangePlan, PlanError>) -> Lines {
        match plan.unwrap() {
            RangePlan::Lines(lines) => lines,
            other => panic!("expected lines, got {other:?}"),
        }
    }

    #[test]
    fn unaligned_ends_are_covered_by_whole_lines() {
        // 0x1005..=0x1044 touches lines 0x1000, 0x1020, 0x1040.
        let l = lines(RangePlan::new(range(0x1005, 0x40), 32, 16 << 10));
        assert!(l.first_is_partial() && l.last_is_partial());
        assert_eq!(l.len(), 3);
        let all: Vec<u32> = l.map(VirtAddr::as_u32).collect();
        assert_eq!(all, [0x1000, 0x1020, 0x1040]);
    }

    #[test]
    fn aligned_range_has_no_partial_lines() {
        let l = lines(RangePlan::new(range(0x2000, 0x1000), 32, 16 << 10));
        assert!(!l.first_is_partial() && !l.last_is_partial());
        assert_eq!(l.len(), 128);
        assert_eq!(l.last_line(), VirtAddr(0x2fe0));
    }

    #[test]
    fn one_byte_is_one_partial_line() {
        let l = lines(RangePlan::new(range(0x3007, 1), 32, 16 << 10));
        assert_eq!((l.len(), l.first_line()), (1, VirtAddr(0x3000)));
        assert!(l.first_is_partial() && l.last_is_partial());
    }

    #[test]
    fn empty_range_plans_nothing() {
        assert_eq!(
            RangePlan::new(range(0x1234, 0), 32, 16 << 10),
            Ok(RangePlan::Nothing)
        );
    }

    #[test]
    fn threshold_switches_to_whole_cache() {
        // Exactly the threshold in whole lines: whole cache.
        assert_eq!(
            RangePlan::new(range(0x10000, 16 << 10), 32, 16 << 10),
            Ok(RangePlan::WholeCache)
        );
        // One line less: lines.
        let l = lines(RangePlan::new(
            range(0x10000, (16 << 10) - 32),
            32,
            16 << 10,
        ));
        assert_eq!(l.len(), 511);
        // Unaligned ends add a line: 16 KiB − 32 bytes starting mid-line needs 512 lines.
        assert_eq!(
            RangePlan::new(range(0x10010, (16 << 10) - 32), 32, 16 << 10),
            Ok(RangePlan::WholeCache)
        );
    }

    #[test]
    fn range_ending_at_the_top_of_the_address_space() {
        let l = lines(RangePlan::new(range(0xffff_ffc1, 0x3f), 32, 16 << 10));
        let all: Vec<u32> = l.clone().map(VirtAddr::as_u32).collect();
        assert_eq!(all, [0xffff_ffc0, 0xffff_ffe0]);
        assert!(l.first_is_partial() && !l.last_is_partial());
        // The whole address space is one whole-cache operation.
        assert_eq!(
            RangePlan::new(range(0, 1 << 32), 32, 16 << 10),
            Ok(RangePlan::WholeCache)
        );
    }

    /// Issue 19: a line size of 0 underflowed in `align_down` (debug) or
    /// never advanced the line iterator (release: a hang).
    #[test]
    fn a_zero_line_size_neither_panics_nor_hangs() {
        assert_eq!(
            RangePlan::new(range(0x1000, 0x40), 0, 16 << 10),
            Err(PlanError::LineNotPowerOfTwo { line_bytes: 0 })
        );
    }

    #[test]
    fn other_line_sizes_that_do_not_tile_are_refused() {
        for line_bytes in [3, 24, 0x8000_0001, u32::MAX] {
            assert_eq!(
                RangePlan::new(range(0x1000, 0x40), line_bytes, 16 << 10),
                Err(PlanError::LineNotPowerOfTwo { line_bytes })
            );
        }
        // The largest power of two is fine: the top half is one line.
        let l = lines(RangePlan::new(
            range(0x8000_0000, 1 << 31),
            1 << 31,
            u64::MAX,
        ));
        assert_eq!((l.len(), l.first_line()), (1, VirtAddr(0x8000_0000)));
    }

    /// `Lines` counts in usize: 2^32 one-byte lines are counted on a 64-bit
    /// host; a 32-bit target, where the count would wrap, gets the
    /// whole-cache operation.
    #[test]
    fn more_lines_than_a_usize_counts_are_one_whole_cache_operation() {
        let countable = usize::try_from(1u64 << 32).is_ok();
        let plan = RangePlan::new(range(0, 1 << 32), 1, u64::MAX).unwrap();
        match plan {
            RangePlan::Lines(l) => {
                assert!(countable);
                assert_eq!(l.len() as u64, 1 << 32);
            }
            RangePlan::WholeCache => assert!(!countable),
            RangePlan::Nothing => panic!("nothing planned"),
        }
    }
}
