//! Addresses and byte ranges of the 32-bit address space.
//!
//! ARMv5/ARMv6 virtual and physical addresses are 32 bits wide whatever the
//! host's `usize` is, so these types hold `u32`: the same policy code runs on
//! the target and against the host-side cache model.

use core::fmt;

/// A virtual (modified virtual, after FCSE) address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VirtAddr(pub u32);

/// A physical address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(pub u32);

macro_rules! address_common {
    ($ty:ident, $label:literal) => {
        impl $ty {
            /// The raw value.
            pub const fn as_u32(self) -> u32 {
                self.0
            }
            /// Rounds down to a multiple of `align`.
            ///
            /// Alignments are powers of two everywhere in vacmm, and those
            /// take the fast path; any other value still gets its plain
            /// arithmetic meaning rather than a panic: the largest multiple
            /// of `align` not above the address, and for 0 (of which 0 is
            /// the only multiple) address 0. Use
            /// [`checked_align_down`](Self::checked_align_down) to have a
            /// non-power-of-two refused instead.
            pub const fn align_down(self, align: u32) -> Self {
                if align.is_power_of_two() {
                    Self(self.0 & !(align - 1))
                } else if align == 0 {
                    Self(0)
                } else {
                    Self(self.0 - self.0 % align)
                }
            }
            /// True if a multiple of `align` (for 0: only address 0 is).
            pub const fn is_aligned(self, align: u32) -> bool {
                if align.is_power_of_two() {
                    self.0 & (align - 1) == 0
                } else if align == 0 {
                    self.0 == 0
                } else {
                    self.0 % align == 0
                }
            }
            /// Rounds down to a multiple of `align`, which must be a power
            /// of two.
            pub const fn checked_align_down(self, align: u32) -> Result<Self, AlignError> {
                if !align.is_power_of_two() {
                    return Err(AlignError::NotPowerOfTwo { align });
                }
                Ok(Self(self.0 & !(align - 1)))
            }
            /// Rounds up to a multiple of `align`, which must be a power of
            /// two; fails if that passes the top of the 32-bit space.
            pub const fn checked_align_up(self, align: u32) -> Result<Self, AlignError> {
                if !align.is_power_of_two() {
                    return Err(AlignError::NotPowerOfTwo { align });
                }
                match self.0.checked_add(align - 1) {
                    Some(sum) => Ok(Self(sum & !(align - 1))),
                    None => Err(AlignError::PastTop {
                        addr: self.0,
                        align,
                    }),
                }
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, "({:#010x})"), self.0)
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#010x}", self.0)
            }
        }
    };
}
address_common!(VirtAddr, "VirtAddr");
address_common!(PhysAddr, "PhysAddr");

/// An alignment the checked rounding functions refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlignError {
    /// The alignment is not a power of two (0 included).
    NotPowerOfTwo {
        /// The alignment given.
        align: u32,
    },
    /// Rounding `addr` up to `align` passes 0xFFFF_FFFF.
    PastTop {
        /// The address.
        addr: u32,
        /// The alignment.
        align: u32,
    },
}

impl fmt::Display for AlignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AlignError::NotPowerOfTwo { align } => {
                write!(f, "alignment {align:#x} is not a power of two")
            }
            AlignError::PastTop { addr, align } => write!(
                f,
                "rounding {addr:#010x} up to a multiple of {align:#x} passes the top of the 4 GiB address space"
            ),
        }
    }
}

impl core::error::Error for AlignError {}

/// A non-wrapping range of virtual addresses, `start .. start + len`.
///
/// It may end exactly at the top of the address space (its last byte
/// 0xFFFF_FFFF), which is why it stores a length rather than an exclusive end.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VirtRange {
    start: VirtAddr,
    /// At most 2^32 − start, so the whole address space fits.
    len: u64,
}

/// A range that cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RangeError {
    /// `end` lies before `start`.
    EndBeforeStart {
        /// First byte.
        start: u32,
        /// The exclusive end given.
        end: u32,
    },
    /// `start + len` goes past 4 GiB.
    WrapsPast4GiB {
        /// First byte.
        start: u32,
        /// Length in bytes (as given; it may exceed 32 bits).
        len: u64,
    },
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RangeError::EndBeforeStart { start, end } => {
                write!(
                    f,
                    "range end {end:#010x} lies before its start {start:#010x}"
                )
            }
            RangeError::WrapsPast4GiB { start, len } => write!(
                f,
                "range of {len:#x} bytes from {start:#010x} wraps past the 4 GiB address space"
            ),
        }
    }
}

impl core::error::Error for RangeError {}

const ADDRESS_SPACE: u64 = 1 << 32;

impl VirtRange {
    /// `len` bytes from `start`; fails if that would wrap past 4 GiB.
    pub const fn new(start: VirtAddr, len: u64) -> Result<Self, RangeError> {
        // Compared with the room left rather than summed: `start + len`
        // overflows u64 for lengths near u64::MAX.
        if len > ADDRESS_SPACE - start.0 as u64 {
            return Err(RangeError::WrapsPast4GiB {
                start: start.0,
                len,
            });
        }
        Ok(Self { start, len })
    }

    /// The bytes from `start` up to, not including, `end`.
    pub const fn from_bounds(start: VirtAddr, end: VirtAddr) -> Result<Self, RangeError> {
        if end.0 < start.0 {
            return Err(RangeError::EndBeforeStart {
                start: start.0,
                end: end.0,
            });
        }
        Ok(Self {
            start,
            len: (end.0 - start.0) as u64,
        })
    }

    /// The bytes from `start` up to and including `last` (a range may end at 0xFFFF_FFFF).
    pub const fn from_inclusive(start: VirtAddr, last: VirtAddr) -> Result<Self, RangeError> {
        if last.0 < start.0 {
            return Err(RangeError::EndBeforeStart {
                start: start.0,
                end: last.0,
            });
        }
        Self::new(start, (last.0 - start.0) as u64 + 1)
    }

    /// First byte.
    pub const fn start(&self) -> VirtAddr {
        self.start
    }
    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.len
    }
    /// True if the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Last byte, `None` for an empty range.
    pub const fn last(&self) -> Option<VirtAddr> {
        if self.len == 0 {
            None
        } else {
            Some(VirtAddr((self.start.0 as u64 + self.len - 1) as u32))
        }
    }
}

impl fmt::Debug for VirtRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.last() {
            Some(last) => write!(f, "VirtRange({}..={})", self.start, last),
            None => write!(f, "VirtRange(empty at {})", self.start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_up_to_the_top_of_the_address_space() {
        let top = VirtRange::new(VirtAddr(0xffff_f000), 0x1000).unwrap();
        assert_eq!(top.last(), Some(VirtAddr(0xffff_ffff)));
        let same = VirtRange::from_inclusive(VirtAddr(0xffff_f000), VirtAddr(0xffff_ffff)).unwrap();
        assert_eq!(top, same);
        assert_eq!(
            VirtRange::new(VirtAddr(0xffff_f000), 0x1001),
            Err(RangeError::WrapsPast4GiB {
                start: 0xffff_f000,
                len: 0x1001
            })
        );
    }

    #[test]
    fn bad_bounds_are_typed_errors() {
        assert_eq!(
            VirtRange::from_bounds(VirtAddr(0x2000), VirtAddr(0x1000)),
            Err(RangeError::EndBeforeStart {
                start: 0x2000,
                end: 0x1000
            })
        );
        let empty = VirtRange::from_bounds(VirtAddr(0x2000), VirtAddr(0x2000)).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.last(), None);
    }

    /// Issue 19: `start + len` overflowed u64 (a panic in debug builds, a
    /// bogus `Ok` in release) for lengths near `u64::MAX`.
    #[test]
    fn lengths_near_u64_max_are_refused_not_overflowed() {
        for (start, len) in [(1, u64::MAX), (0xffff_ffff, u64::MAX - 1), (0, u64::MAX)] {
            assert_eq!(
                VirtRange::new(VirtAddr(start), len),
                Err(RangeError::WrapsPast4GiB { start, len })
            );
        }
        assert!(VirtRange::new(VirtAddr(0), 1 << 32).is_ok());
    }

    /// Issue 19: `align - 1` underflowed for an alignment of 0.
    #[test]
    fn alignment_zero_does_not_panic() {
        // Only 0 is a multiple of 0.
        assert_eq!(VirtAddr(0x1234).align_down(0), VirtAddr(0));
        assert!(!VirtAddr(0x1234).is_aligned(0));
        assert!(VirtAddr(0).is_aligned(0));
        assert_eq!(PhysAddr(0xffff_ffff).align_down(0), PhysAddr(0));
    }

    #[test]
    fn other_alignments_keep_their_arithmetic_meaning() {
        assert_eq!(VirtAddr(0x1234).align_down(0x1000), VirtAddr(0x1000));
        assert_eq!(VirtAddr(1000).align_down(300), VirtAddr(900));
        assert!(VirtAddr(900).is_aligned(300) && !VirtAddr(901).is_aligned(300));
        assert_eq!(VirtAddr(u32::MAX).align_down(u32::MAX), VirtAddr(u32::MAX));
        // The largest alignment a u32 holds.
        assert_eq!(VirtAddr(0xffff_ffff).align_down(1 << 31), VirtAddr(1 << 31));
        assert!(VirtAddr(0x1234).is_aligned(1));
    }

    #[test]
    fn checked_rounding_refuses_non_powers_of_two_and_the_top() {
        for align in [0, 3, 0x1001, u32::MAX] {
            let e = AlignError::NotPowerOfTwo { align };
            assert_eq!(VirtAddr(0x1234).checked_align_down(align), Err(e));
            assert_eq!(PhysAddr(0x1234).checked_align_up(align), Err(e));
        }
        assert_eq!(
            VirtAddr(0x1234).checked_align_down(0x1000),
            Ok(VirtAddr(0x1000))
        );
        assert_eq!(
            VirtAddr(0x1234).checked_align_up(0x1000),
            Ok(VirtAddr(0x2000))
        );
        assert_eq!(
            VirtAddr(0xffff_f000).checked_align_up(0x1000),
            Ok(VirtAddr(0xffff_f000))
        );
        assert_eq!(
            VirtAddr(0xffff_f001).checked_align_up(0x1000),
            Err(AlignError::PastTop {
                addr: 0xffff_f001,
                align: 0x1000
            })
        );
    }
}
