//! What makes an address space's configuration ([`SpaceConfig`], its
//! [`Layout`]) one that can work, checked before a space is built.
//!
//! ```text
//!   check                          where             knows
//!   ─────────────────────────────  ────────────────  ──────────────────────
//!   SpaceConfig::check             AddressSpace::new the numbers alone
//!   SpaceConfig::check_for_cache   Engine::          + the cache the engine
//!   (+ the kernel's own ranges)    create_space        serves, its windows and
//!                                                      linear map
//! ```
//!
//! The rules, and why each is one:
//! - `min_addr`, `task_size`, `mmap_base` and `stack_guard_gap` are page
//!   multiples: every VMA boundary derives from them, and a VMA that is not
//!   page aligned cannot be mapped or unmapped (an unaligned `mmap_base`
//!   made `mmap` return addresses `munmap` refused).
//! - `min_addr < task_size`: user space is not empty.
//! - `mmap_base` lies in `[min_addr, task_size]`: the searches start there;
//!   and below `task_size` for a bottom-up layout, which searches only
//!   above it (at `task_size`, no mapping could ever be placed).
//! - `colour_span` is a power of two, at least a page, at most the size of
//!   user space: placement computes `va ≡ offset (mod span)` with wrapping
//!   arithmetic, which only a power of two keeps right; a span that is not
//!   a page multiple placed shared mappings at unaligned addresses (pages
//!   resident outside every VMA, and a write fault that answered `Reused`
//!   forever); a span larger than user space leaves no room for any
//!   colour-matched mapping.
//! - With the cache known: `colour_span` is one page (no colour matching —
//!   the engine keeps aliases coherent by making conflicting ones uncached)
//!   or at least the cache's colour alignment. A span in between claims a
//!   colour matching the cache does not have: shared mappings of one page
//!   at different colours, each a separate set of lines.
//! - `stack_guard_gap` is smaller than user space: a stack's guard would
//!   otherwise cover all of it.
//! - A table declared to fit the FCSE window (`PageTable::fits_fcse_window`)
//!   belongs to a space that ends at 32 MiB: above it the FCSE does not
//!   relocate, and two spaces running under PIDs would share VIVT lines
//!   there without a flush between them.
//! - User space stays clear of the kernel's linear map of the frames it
//!   manages and of the engine's kernel windows: every user table shares
//!   those entries, so a user mapping there could never be installed.

use core::fmt;

use super::frames::FRAME_SIZE;
use super::space::SpaceConfig;
use super::unmapped::{Direction, Layout};
use crate::cache::CacheInfo;
use crate::mmu::FCSE_WINDOW_BYTES;

const PAGE: u32 = FRAME_SIZE;

/// A kernel range user space must stay clear of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelRange {
    /// The kernel's linear map of the frames the memory system manages.
    LinearMap,
    /// The coherence engine's kernel windows.
    Windows,
}

/// Why an address-space configuration was refused, with the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `min_addr` is not a multiple of the page.
    MinAddrUnaligned {
        /// The value given.
        min_addr: u32,
    },
    /// `task_size` is not a multiple of the page.
    TaskSizeUnaligned {
        /// The value given.
        task_size: u32,
    },
    /// `task_size` is not above `min_addr`: no user address is left.
    EmptyUserSpace {
        /// The lowest user address.
        min_addr: u32,
        /// One past the highest.
        task_size: u32,
    },
    /// `mmap_base` is not a multiple of the page.
    MmapBaseUnaligned {
        /// The value given.
        mmap_base: u32,
    },
    /// `mmap_base` lies outside `[min_addr, task_size]`.
    MmapBaseOutsideUserSpace {
        /// The value given.
        mmap_base: u32,
        /// The lowest user address.
        min_addr: u32,
        /// One past the highest.
        task_size: u32,
    },
    /// A bottom-up layout whose `mmap_base` is `task_size`: it searches
    /// only `[mmap_base, task_size)`, which is empty.
    NoRoomAboveMmapBase {
        /// The value given.
        mmap_base: u32,
        /// One past the highest user address.
        task_size: u32,
    },
    /// `colour_span` is smaller than a page (zero included).
    ColourSpanBelowPage {
        /// The value given.
        colour_span: u32,
    },
    /// `colour_span` is not a multiple of the page.
    ColourSpanNotPageMultiple {
        /// The value given.
        colour_span: u32,
    },
    /// `colour_span` is a page multiple but not a power of two.
    ColourSpanNotPowerOfTwo {
        /// The value given.
        colour_span: u32,
    },
    /// `colour_span` is larger than user space.
    ColourSpanTooLarge {
        /// The value given.
        colour_span: u32,
        /// Bytes of user space (`task_size - min_addr`).
        user_bytes: u32,
    },
    /// `colour_span` turns colour matching on (more than a page) but is
    /// smaller than the cache's colour alignment.
    ColourSpanBelowCacheAlignment {
        /// The value given.
        colour_span: u32,
        /// The cache's colour alignment ([`CacheInfo::colour_alignment`]).
        alignment: u32,
    },
    /// `stack_guard_gap` is not a multiple of the page.
    StackGuardGapUnaligned {
        /// The value given.
        stack_guard_gap: u32,
    },
    /// `stack_guard_gap` is at least the size of user space.
    StackGuardGapTooLarge {
        /// The value given.
        stack_guard_gap: u32,
        /// Bytes of user space (`task_size - min_addr`).
        user_bytes: u32,
    },
    /// `max_mappings` is 0: no `mmap` could ever succeed.
    NoMappingsAllowed,
    /// The space's table is declared to fit the FCSE window but its user
    /// space ends above it.
    BeyondFcseWindow {
        /// One past the highest user address.
        task_size: u32,
        /// The window's size (32 MiB).
        window: u32,
    },
    /// User space overlaps a range of the kernel's that every user table
    /// shares.
    OverlapsKernel {
        /// The lowest user address.
        min_addr: u32,
        /// One past the highest.
        task_size: u32,
        /// Which kernel range.
        range: KernelRange,
        /// Its first address.
        start: u32,
        /// One past its last (2^32 at most).
        end: u64,
    },
    /// The coherence engine and the kernel's `TableMemory` put a frame's
    /// linear-map address in different places: the engine was built with
    /// another linear offset than the memory uses (`Engine::new`'s
    /// `linear_offset` against `TableMemory::kernel_va`).
    LinearMapMismatch {
        /// The frame compared.
        pa: u32,
        /// Where the engine reaches it.
        engine: u32,
        /// Where the kernel's memory reaches it.
        memory: u32,
    },
}

impl ConfigError {
    /// `EINVAL`: a kernel reports a bad configuration as an invalid argument.
    pub fn errno(&self) -> i32 {
        22
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::MinAddrUnaligned { min_addr } => {
                write!(f, "min_addr {min_addr:#x} is not a multiple of the page")
            }
            ConfigError::TaskSizeUnaligned { task_size } => {
                write!(f, "task_size {task_size:#x} is not a multiple of the page")
            }
            ConfigError::EmptyUserSpace {
                min_addr,
                task_size,
            } => write!(
                f,
                "task_size {task_size:#x} is not above min_addr {min_addr:#x}: \
                 user space would be empty"
            ),
            ConfigError::MmapBaseUnaligned { mmap_base } => write!(
                f,
                "mmap_base {mmap_base:#x} is not a multiple of the page: mmap would return \
                 addresses munmap refuses"
            ),
            ConfigError::MmapBaseOutsideUserSpace {
                mmap_base,
                min_addr,
                task_size,
            } => write!(
                f,
                "mmap_base {mmap_base:#x} lies outside user space [{min_addr:#x}, {task_size:#x}]"
            ),
            ConfigError::NoRoomAboveMmapBase {
                mmap_base,
                task_size,
            } => write!(
                f,
                "a bottom-up layout searches only above mmap_base {mmap_base:#x}, and \
                 task_size is {task_size:#x}: no mapping could be placed"
            ),
            ConfigError::ColourSpanBelowPage { colour_span } => write!(
                f,
                "colour span {colour_span:#x} is smaller than a page (use one page, {PAGE:#x}, \
                 for no colour matching)"
            ),
            ConfigError::ColourSpanNotPageMultiple { colour_span } => write!(
                f,
                "colour span {colour_span:#x} is not a multiple of the page: mappings would \
                 start at unaligned addresses"
            ),
            ConfigError::ColourSpanNotPowerOfTwo { colour_span } => write!(
                f,
                "colour span {colour_span:#x} is not a power of two: placement modulo it \
                 would miss the colours it means"
            ),
            ConfigError::ColourSpanTooLarge {
                colour_span,
                user_bytes,
            } => write!(
                f,
                "colour span {colour_span:#x} is larger than user space ({user_bytes:#x} bytes): \
                 no colour-matched mapping would fit"
            ),
            ConfigError::ColourSpanBelowCacheAlignment {
                colour_span,
                alignment,
            } => write!(
                f,
                "colour span {colour_span:#x} is smaller than the cache's colour alignment \
                 {alignment:#x}: mappings it calls colour-matched would alias (use \
                 {alignment:#x}, or one page, {PAGE:#x}, for no colour matching)"
            ),
            ConfigError::StackGuardGapUnaligned { stack_guard_gap } => write!(
                f,
                "stack guard gap {stack_guard_gap:#x} is not a multiple of the page"
            ),
            ConfigError::StackGuardGapTooLarge {
                stack_guard_gap,
                user_bytes,
            } => write!(
                f,
                "stack guard gap {stack_guard_gap:#x} is not smaller than user space \
                 ({user_bytes:#x} bytes): a stack's guard would cover all of it"
            ),
            ConfigError::NoMappingsAllowed => {
                f.write_str("max_mappings is 0: the space could hold no mapping at all")
            }
            ConfigError::BeyondFcseWindow { task_size, window } => write!(
                f,
                "the table is declared to fit the FCSE window ({window:#x} bytes) but user \
                 space ends at {task_size:#x}: mappings above the window would share VIVT \
                 lines with other spaces'"
            ),
            ConfigError::LinearMapMismatch { pa, engine, memory } => write!(
                f,
                "the coherence engine reaches frame {pa:#010x} at {engine:#010x} but the \
                 kernel's memory at {memory:#010x}: give Engine::new the linear offset \
                 TableMemory::kernel_va uses"
            ),
            ConfigError::OverlapsKernel {
                min_addr,
                task_size,
                range,
                start,
                end,
            } => write!(
                f,
                "user space [{min_addr:#x}, {task_size:#x}) overlaps the kernel's {} \
                 [{start:#x}, {end:#x}), which every user table shares",
                match range {
                    KernelRange::LinearMap => "linear map",
                    KernelRange::Windows => "windows",
                }
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

impl Layout {
    /// Checks what the layout's numbers alone decide (see the
    /// [module documentation](self) for the rules and their reasons).
    pub fn check(&self) -> Result<(), ConfigError> {
        let Layout {
            min_addr,
            mmap_base,
            task_size,
            colour_span,
            direction,
        } = *self;
        if !min_addr.is_multiple_of(PAGE) {
            return Err(ConfigError::MinAddrUnaligned { min_addr });
        }
        if !task_size.is_multiple_of(PAGE) {
            return Err(ConfigError::TaskSizeUnaligned { task_size });
        }
        if task_size <= min_addr {
            return Err(ConfigError::EmptyUserSpace {
                min_addr,
                task_size,
            });
        }
        if !mmap_base.is_multiple_of(PAGE) {
            return Err(ConfigError::MmapBaseUnaligned { mmap_base });
        }
        if !(min_addr..=task_size).contains(&mmap_base) {
            return Err(ConfigError::MmapBaseOutsideUserSpace {
                mmap_base,
                min_addr,
                task_size,
            });
        }
        if direction == Direction::BottomUp && mmap_base == task_size {
            return Err(ConfigError::NoRoomAboveMmapBase {
                mmap_base,
                task_size,
            });
        }
        if colour_span < PAGE {
            return Err(ConfigError::ColourSpanBelowPage { colour_span });
        }
        if !colour_span.is_multiple_of(PAGE) {
            return Err(ConfigError::ColourSpanNotPageMultiple { colour_span });
        }
        if !colour_span.is_power_of_two() {
            return Err(ConfigError::ColourSpanNotPowerOfTwo { colour_span });
        }
        let user_bytes = task_size - min_addr;
        if colour_span > user_bytes {
            return Err(ConfigError::ColourSpanTooLarge {
                colour_span,
                user_bytes,
            });
        }
        Ok(())
    }

    /// [`check`](Self::check), then what the cache decides: a colour span
    /// of one page (no colour matching) or at least `cache`'s colour
    /// alignment.
    pub fn check_for_cache(&self, cache: &CacheInfo) -> Result<(), ConfigError> {
        self.check()?;
        let alignment = u32::try_from(cache.colour_alignment()).unwrap_or(u32::MAX);
        if self.colour_span != PAGE && self.colour_span < alignment {
            return Err(ConfigError::ColourSpanBelowCacheAlignment {
                colour_span: self.colour_span,
                alignment,
            });
        }
        Ok(())
    }

    /// Refuses a user space that overlaps `[start, end)`, a range of the
    /// kernel's every user table shares.
    pub fn check_clear_of(
        &self,
        range: KernelRange,
        start: u32,
        end: u64,
    ) -> Result<(), ConfigError> {
        let overlaps =
            u64::from(self.min_addr) < end && u64::from(start) < u64::from(self.task_size);
        if overlaps && u64::from(start) < end {
            return Err(ConfigError::OverlapsKernel {
                min_addr: self.min_addr,
                task_size: self.task_size,
                range,
                start,
                end,
            });
        }
        Ok(())
    }
}

impl SpaceConfig {
    /// Checks what the numbers alone decide: the layout's rules and the
    /// stack guard gap's (see the [module documentation](self)).
    pub fn check(&self) -> Result<(), ConfigError> {
        self.layout.check()?;
        let stack_guard_gap = self.stack_guard_gap;
        if !stack_guard_gap.is_multiple_of(PAGE) {
            return Err(ConfigError::StackGuardGapUnaligned { stack_guard_gap });
        }
        let user_bytes = self.layout.task_size - self.layout.min_addr;
        if stack_guard_gap >= user_bytes {
            return Err(ConfigError::StackGuardGapTooLarge {
                stack_guard_gap,
                user_bytes,
            });
        }
        if self.max_mappings == 0 {
            return Err(ConfigError::NoMappingsAllowed);
        }
        Ok(())
    }

    /// [`check`](Self::check) and the layout's
    /// [`check_for_cache`](Layout::check_for_cache).
    pub fn check_for_cache(&self, cache: &CacheInfo) -> Result<(), ConfigError> {
        self.check()?;
        self.layout.check_for_cache(cache)
    }

    /// Refuses a user space running under an FCSE PID (its table declared
    /// to fit the window) that ends above the 32 MiB window.
    pub fn check_fcse(&self, fits_fcse_window: bool) -> Result<(), ConfigError> {
        if fits_fcse_window && self.layout.task_size > FCSE_WINDOW_BYTES {
            return Err(ConfigError::BeyondFcseWindow {
                task_size: self.layout.task_size,
                window: FCSE_WINDOW_BYTES,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
