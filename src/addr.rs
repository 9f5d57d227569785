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
            /// Rounds down to a multiple of `align` (a power of two).
            pub const fn align_down(self, align: u32) -> Self {
                Self(self.0 & !(align - 1))
            }
            /// True if a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u32) -> bool {
                self.0 & (align - 1) == 0
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

const ADDRESS_SPACE: u64 = 1 << 32;

impl VirtRange {
    /// `len` bytes from `start`; fails if that would wrap past 4 GiB.
    pub const fn new(start: VirtAddr, len: u64) -> Result<Self, RangeError> {
        if start.0 as u64 + len > ADDRESS_SPACE {
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
}
