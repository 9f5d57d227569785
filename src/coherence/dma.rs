//! DMA: what the CPU's caches owe a device that reads or writes memory
//! behind their back (Linux's `dma_map_single` / `dma_unmap_single` /
//! `dma_sync_single_for_{cpu,device}` on ARM).
//!
//! A DMA master reads and writes memory only, never a cache or the write
//! buffer, so every cache kind needs this — PIPT and non-aliasing VIPT too.
//! The buffer changes hands twice: at [`Dma::map_for_device`] (or
//! [`Dma::sync_for_device`]) the device becomes its owner, at [`Dma::unmap`]
//! (or [`Dma::sync_for_cpu`]) the CPU gets it back.
//!
//! ```text
//!   direction      to the device (map, sync_for_device)   back to the CPU (unmap, sync_for_cpu)
//!   ToDevice       clean                                  —
//!   FromDevice     invalidate¹                            invalidate¹
//!   Bidirectional  clean + invalidate                     invalidate¹
//!
//!   ¹ a partially covered first / last line is cleaned and invalidated,
//!     never plainly invalidated: its other bytes may be dirty CPU data
//!     (seed 003's lost write); only lines wholly inside the buffer are
//!     dropped without a write-back.
//! ```
//!
//! - *ToDevice*: the CPU's newest bytes may sit in dirty lines; the clean
//!   writes them to memory and the range operation drains the write buffer,
//!   so the device reads them.
//! - *FromDevice*, before: no dirty line of the buffer may be written back
//!   (evicted) over what the device writes, so the buffer's lines go. After:
//!   a line refilled meanwhile (a CPU read, a speculative or prefetching
//!   fill) holds memory from before the transfer, so they go again.
//! - *Bidirectional*: both.
//!
//! What no maintenance can fix: a buffer sharing a line with other data that
//! the CPU *writes while the device owns the buffer*. That write refills
//! the line with the buffer's old bytes and dirties it; its write-back
//! lands on the device's data. Hence [`DmaBuffer`] (line-aligned and
//! line-padded allocations) and the debug check [`DmaTracker`] (which
//! reports a buffer sharing a line with data or with another buffer).
//!
//! The maintenance is by virtual address over the range given — the
//! kernel's mapping of the buffer. Other aliases of the same frames (user
//! mappings of another colour on a VIPT-aliasing cache, any other address
//! on VIVT) are not reached: the driver must not touch the buffer through
//! them while it is mapped, or must flush them first
//! ([`Engine::flush_cache_range`](super::Engine::flush_cache_range)).
//!
//! # Example
//!
//! A receive on the cache model into a buffer whose first line also holds
//! a CPU variable (what [`DmaBuffer`] avoids, but which this handles as
//! long as the CPU leaves the variable alone during the transfer):
//!
//! ```
//! # #[cfg(feature = "sim")] {
//! use vacmm::addr::{VirtAddr, VirtRange};
//! use vacmm::cache::CacheMaintenance;
//! use vacmm::coherence::dma::{Dma, DmaDirection};
//! use vacmm::sim::{CpuModel, KERNEL, MemType, Sim};
//!
//! let mut sim = Sim::new(CpuModel::arm926(), 1 << 20);
//! sim.map(KERNEL, 0xc050_0000, 0xa_0000, MemType::WriteBack, true).unwrap();
//! sim.load(0xc050_0000, 4).unwrap();
//! sim.store(0xc050_0000, 4, 0xc0de).unwrap(); // dirty CPU data in the buffer's first line
//!
//! let mut dma = Dma::new(sim.info());
//! let buffer = VirtRange::new(VirtAddr(0xc050_0010), 0x70).unwrap();
//! // SAFETY: the buffer's bytes go to the device; nothing reads or writes
//! // them (or the rest of their lines) until unmap.
//! let mapping = unsafe { dma.map_for_device(&mut sim, buffer, DmaDirection::FromDevice) }.unwrap();
//! sim.dma_write(0xa_0010, &[0x5a; 0x70]).unwrap(); // the device writes
//! dma.unmap(&mut sim, mapping).unwrap();
//!
//! assert_eq!(sim.load(0xc050_0000, 4).unwrap(), 0xc0de); // the CPU's variable survived
//! assert_eq!(sim.load(0xc050_0010, 4).unwrap(), 0x5a5a_5a5a); // and the CPU sees the device's data
//! assert!(sim.violations().is_empty());
//! assert_eq!(dma.counters().partial_lines_cleaned, 2); // map and unmap: line 0xc050_0000
//! # }
//! ```

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{Ordering, compiler_fence};

use crate::addr::{VirtAddr, VirtRange};
use crate::cache::{CacheInfo, CacheMaintenance, RangeOutcome, RangePlan};

/// Which way the data of a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DmaDirection {
    /// The device reads the buffer (transmit): Linux's `DMA_TO_DEVICE`.
    ToDevice,
    /// The device writes the buffer (receive): `DMA_FROM_DEVICE`.
    FromDevice,
    /// The device may read and write it: `DMA_BIDIRECTIONAL`.
    Bidirectional,
}

/// Who may access a mapped buffer now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DmaOwner {
    /// The CPU (after [`Dma::sync_for_cpu`]).
    Cpu,
    /// The device (after [`Dma::map_for_device`] or [`Dma::sync_for_device`]).
    Device,
}

/// Why a DMA call was refused. Nothing was maintained when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DmaError {
    /// A range of no bytes.
    Empty {
        /// Where it starts.
        start: VirtAddr,
    },
    /// `start + len` goes past the 32-bit address space.
    WrapsPast4GiB {
        /// Where it starts.
        start: VirtAddr,
        /// Its length, as given.
        len: u64,
    },
    /// The range overlaps a buffer that is already mapped.
    AlreadyMapped {
        /// The range asked for.
        range: VirtRange,
        /// The live mapping it overlaps.
        existing: VirtRange,
    },
    /// The mapping is not live in this [`Dma`] (made by another one).
    NotMapped {
        /// The mapping's range.
        range: VirtRange,
    },
    /// The mapping already belongs to `owner`: `sync_for_cpu` twice, or
    /// `sync_for_device` while the device owns the buffer.
    WrongOwner {
        /// The mapping's range.
        range: VirtRange,
        /// Who owns it already.
        owner: DmaOwner,
    },
    /// A DMA buffer shares a cache line with other live data or another
    /// mapped buffer (the [`DmaTracker`] check).
    SharesLine {
        /// The buffer.
        buffer: VirtRange,
        /// The data or buffer it shares a line with.
        other: VirtRange,
        /// The first line they share.
        line: VirtAddr,
    },
    /// `forget_cpu_data` of a range that was never declared.
    NotDeclared {
        /// The range given.
        range: VirtRange,
    },
    /// [`DmaBuffer::new`] of zero bytes.
    EmptyBuffer,
    /// No allocation layout: `len` rounded up to `align` overflows, or
    /// `align` (the D-cache line) is not a power of two.
    BadLayout {
        /// Bytes asked for.
        len: usize,
        /// Alignment asked for.
        align: usize,
    },
    /// The allocator has no memory for the buffer.
    AllocationFailed {
        /// Bytes asked for (rounded up to whole lines).
        size: usize,
        /// Alignment.
        align: usize,
    },
    /// The registry of mappings or declared data could not grow.
    NoMemory {
        /// Entries it holds.
        entries: usize,
    },
}

/// A range in a message: its first byte up to its exclusive end.
struct Bytes(VirtRange);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start = self.0.start();
        let end = u64::from(start.as_u32()) + self.0.len();
        write!(f, "{start}..{end:#010x}")
    }
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DmaError::Empty { start } => {
                write!(f, "a DMA range of zero bytes at {start} is refused")
            }
            DmaError::WrapsPast4GiB { start, len } => write!(
                f,
                "a DMA range of {len:#x} bytes from {start} wraps past 4 GiB"
            ),
            DmaError::AlreadyMapped { range, existing } => write!(
                f,
                "the DMA range {} overlaps the mapped DMA buffer {}: unmap that first",
                Bytes(range),
                Bytes(existing)
            ),
            DmaError::NotMapped { range } => write!(
                f,
                "the DMA range {} is not mapped here (it was unmapped, or mapped through \
                 another Dma)",
                Bytes(range)
            ),
            DmaError::WrongOwner {
                range,
                owner: DmaOwner::Cpu,
            } => write!(
                f,
                "the DMA buffer {} already belongs to the CPU: sync_for_cpu was called twice",
                Bytes(range)
            ),
            DmaError::WrongOwner {
                range,
                owner: DmaOwner::Device,
            } => write!(
                f,
                "the DMA buffer {} already belongs to the device: sync it for the CPU before \
                 syncing it for the device again",
                Bytes(range)
            ),
            DmaError::SharesLine {
                buffer,
                other,
                line,
            } => write!(
                f,
                "the DMA buffer {} shares the cache line at {line} with {}: a DMA buffer must \
                 have its cache lines to itself",
                Bytes(buffer),
                Bytes(other)
            ),
            DmaError::NotDeclared { range } => write!(
                f,
                "the range {} was never declared as live CPU data, so it cannot be forgotten",
                Bytes(range)
            ),
            DmaError::EmptyBuffer => f.write_str("a DMA buffer cannot be zero bytes long"),
            DmaError::BadLayout { len, align } => write!(
                f,
                "no allocation layout for a DMA buffer of {len} bytes aligned to {align}: the \
                 alignment must be a power of two and the rounded-up size must fit"
            ),
            DmaError::AllocationFailed { size, align } => write!(
                f,
                "the allocator has no memory for a DMA buffer of {size} bytes aligned to {align}"
            ),
            DmaError::NoMemory { entries } => write!(
                f,
                "the DMA registry of {entries} entries cannot grow: the heap is full"
            ),
        }
    }
}

impl core::error::Error for DmaError {}

/// What [`Dma`] has done, counted. Line counts are the lines a range
/// operation covered (also when a backend did them as one block operation);
/// a range that reached the whole-cache threshold counts one
/// `whole_cache_ops` instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DmaCounters {
    /// Successful maps.
    pub maps: u64,
    /// Bytes mapped.
    pub bytes_mapped: u64,
    /// Successful unmaps.
    pub unmaps: u64,
    /// `sync_for_cpu` calls.
    pub syncs_for_cpu: u64,
    /// `sync_for_device` calls.
    pub syncs_for_device: u64,
    /// Range maintenance operations issued (each ends with a drain).
    pub range_ops: u64,
    /// Lines cleaned (to-device).
    pub lines_cleaned: u64,
    /// Lines cleaned and invalidated (bidirectional, to the device).
    pub lines_cleaned_invalidated: u64,
    /// Lines wholly inside a buffer, invalidated without write-back.
    pub lines_invalidated: u64,
    /// Partially covered first / last lines cleaned and invalidated where an
    /// invalidate was due.
    pub partial_lines_cleaned: u64,
    /// Range operations a backend carried out as one block operation (ARMv6).
    pub block_ops: u64,
    /// Range operations that became a whole-D-cache clean (+ invalidate).
    pub whole_cache_ops: u64,
    /// Hand-overs to the CPU that needed no maintenance (to-device
    /// buffers, or an unmap after `sync_for_cpu`).
    pub no_maintenance: u64,
}

/// A live mapping: the token [`Dma::map_for_device`] or [`Dma::map_buffer`]
/// returns and [`Dma::unmap`] takes back. It records the range, the
/// direction (so unmap does what the direction needs) and the owner.
///
/// For [`Dma::map_buffer`] it holds the buffer's exclusive borrow: the CPU
/// reaches the bytes through [`cpu_bytes`](Self::cpu_bytes) only while it
/// owns them.
#[must_use = "a DMA mapping must be given back to Dma::unmap before the CPU uses the buffer"]
#[derive(Debug)]
pub struct DmaMapping<'b> {
    range: VirtRange,
    direction: DmaDirection,
    owner: DmaOwner,
    /// The buffer's bytes and length, for mappings of a [`DmaBuffer`].
    bytes: Option<(NonNull<u8>, usize)>,
    _buffer: PhantomData<&'b mut [u8]>,
}

// SAFETY: a mapping holds at most the equivalent of a `&'b mut [u8]` (its
// `DmaBuffer`'s exclusive borrow), which is `Send` and `Sync`; the rest is
// plain values.
unsafe impl Send for DmaMapping<'_> {}
// SAFETY: see `Send`; `&DmaMapping` only ever yields `&[u8]`.
unsafe impl Sync for DmaMapping<'_> {}

impl DmaMapping<'_> {
    /// The kernel virtual range maintained.
    pub fn range(&self) -> VirtRange {
        self.range
    }

    /// The direction it was mapped with.
    pub fn direction(&self) -> DmaDirection {
        self.direction
    }

    /// Who owns the buffer now.
    pub fn owner(&self) -> DmaOwner {
        self.owner
    }

    /// The buffer's bytes, while the CPU owns them (after
    /// [`Dma::sync_for_cpu`]); `None` while the device does, or for a
    /// range mapped by [`Dma::map_for_device`].
    pub fn cpu_bytes(&self) -> Option<&[u8]> {
        match (self.owner, self.bytes) {
            // SAFETY: `bytes` is the allocation of the `DmaBuffer` this
            // mapping borrows exclusively for its lifetime, `len` bytes
            // long; the CPU owns the buffer, so no maintenance or device
            // write changes it while `&self` is borrowed (both need `&mut`).
            (DmaOwner::Cpu, Some((ptr, len))) => {
                Some(unsafe { core::slice::from_raw_parts(ptr.as_ptr(), len) })
            }
            _ => None,
        }
    }

    /// The buffer's bytes for writing, while the CPU owns them (see
    /// [`cpu_bytes`](Self::cpu_bytes)); [`Dma::sync_for_device`] hands
    /// them back.
    pub fn cpu_bytes_mut(&mut self) -> Option<&mut [u8]> {
        match (self.owner, self.bytes) {
            // SAFETY: as in `cpu_bytes`, and `&mut self` makes the slice
            // the only access to the buffer.
            (DmaOwner::Cpu, Some((ptr, len))) => {
                Some(unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), len) })
            }
            _ => None,
        }
    }
}

/// The line size the registry and the counters work with: the D-cache
/// line, or the largest line there is (256 bytes, the strictest choice)
/// if `info` holds something no cache has.
fn line_bytes(info: &CacheInfo) -> u32 {
    u32::try_from(info.dcache.line_bytes)
        .ok()
        .filter(|l| l.is_power_of_two() && *l <= 256)
        .unwrap_or(256)
}

/// One past the last byte, as a u64 (an empty range ends at its start).
fn end(range: VirtRange) -> u64 {
    u64::from(range.start().as_u32()) + range.len()
}

/// The first cache line (of `line` bytes) that `a` and `b` both touch.
fn first_shared_line(a: VirtRange, b: VirtRange, line: u32) -> Option<VirtAddr> {
    let (a_last, b_last) = (a.last()?, b.last()?);
    let low = a.start().align_down(line).max(b.start().align_down(line));
    let high = a_last.align_down(line).min(b_last.align_down(line));
    (low <= high).then_some(low)
}

/// `len` bytes from `start`, checked for a DMA mapping.
fn dma_range(start: VirtAddr, len: u64) -> Result<VirtRange, DmaError> {
    if len == 0 {
        return Err(DmaError::Empty { start });
    }
    VirtRange::new(start, len).map_err(|_| DmaError::WrapsPast4GiB { start, len })
}

// ---- the debug registry -------------------------------------------------------

/// A small registry of mapped DMA buffers and of live CPU data the caller
/// declares (driver state next to a buffer, say), and the debug check that
/// none of them shares a cache line with a buffer.
///
/// Mapped buffers are kept sorted and may not overlap
/// ([`DmaError::AlreadyMapped`]). Declared data may overlap anything; the
/// check ([`check`](Self::check), O(buffers × (data + buffers))) is for
/// debug builds and tests. [`Dma`] keeps one for its mappings.
///
/// ```
/// use vacmm::addr::{VirtAddr, VirtRange};
/// use vacmm::cache::{CacheInfo, MainId};
/// use vacmm::coherence::dma::{DmaError, DmaTracker};
///
/// let info = CacheInfo::from_registers(MainId::from_raw(0x4106_9265), 0x1d15_2152).unwrap();
/// let mut tracker = DmaTracker::new(&info); // 32-byte lines
/// let counter = VirtRange::new(VirtAddr(0xc000_1000), 4).unwrap();
/// let rx = VirtRange::new(VirtAddr(0xc000_1010), 0x70).unwrap();
/// tracker.declare_cpu_data(counter).unwrap();
/// tracker.add_buffer(rx).unwrap();
/// assert_eq!(
///     tracker.check(),
///     Err(DmaError::SharesLine { buffer: rx, other: counter, line: VirtAddr(0xc000_1000) })
/// );
/// ```
#[derive(Clone, Debug)]
pub struct DmaTracker {
    line_bytes: u32,
    /// Sorted by start, disjoint.
    buffers: Vec<VirtRange>,
    data: Vec<VirtRange>,
}

impl DmaTracker {
    /// An empty registry for `info`'s D-cache lines.
    pub fn new(info: &CacheInfo) -> Self {
        DmaTracker {
            line_bytes: line_bytes(info),
            buffers: Vec::new(),
            data: Vec::new(),
        }
    }

    /// The line size the check uses.
    pub fn line_bytes(&self) -> u32 {
        self.line_bytes
    }

    /// The mapped buffers, by address.
    pub fn buffers(&self) -> &[VirtRange] {
        &self.buffers
    }

    /// The declared CPU data, in declaration order (give or take removals).
    pub fn cpu_data(&self) -> &[VirtRange] {
        &self.data
    }

    /// Declares `range` as live CPU data: no buffer may share its lines.
    pub fn declare_cpu_data(&mut self, range: VirtRange) -> Result<(), DmaError> {
        if range.is_empty() {
            return Err(DmaError::Empty {
                start: range.start(),
            });
        }
        self.data.try_reserve(1).map_err(|_| DmaError::NoMemory {
            entries: self.data.len(),
        })?;
        self.data.push(range);
        Ok(())
    }

    /// Forgets one declaration of exactly `range`.
    pub fn forget_cpu_data(&mut self, range: VirtRange) -> Result<(), DmaError> {
        let i = self
            .data
            .iter()
            .position(|&d| d == range)
            .ok_or(DmaError::NotDeclared { range })?;
        self.data.swap_remove(i);
        Ok(())
    }

    /// Registers a mapped buffer; it may not overlap another one.
    pub fn add_buffer(&mut self, range: VirtRange) -> Result<(), DmaError> {
        if range.is_empty() {
            return Err(DmaError::Empty {
                start: range.start(),
            });
        }
        let i = self.buffers.partition_point(|b| b.start() < range.start());
        // Disjoint and sorted: only the neighbours can overlap.
        let before = i.checked_sub(1).and_then(|j| self.buffers.get(j));
        let overlapping = before
            .filter(|b| end(**b) > u64::from(range.start().as_u32()))
            .or_else(|| {
                self.buffers
                    .get(i)
                    .filter(|b| u64::from(b.start().as_u32()) < end(range))
            });
        if let Some(&existing) = overlapping {
            return Err(DmaError::AlreadyMapped { range, existing });
        }
        self.buffers
            .try_reserve(1)
            .map_err(|_| DmaError::NoMemory {
                entries: self.buffers.len(),
            })?;
        self.buffers.insert(i, range);
        Ok(())
    }

    /// Removes the buffer registered as exactly `range`.
    pub fn remove_buffer(&mut self, range: VirtRange) -> Result<(), DmaError> {
        let i = self.position(range).ok_or(DmaError::NotMapped { range })?;
        self.buffers.remove(i);
        Ok(())
    }

    /// True if exactly `range` is a registered buffer.
    pub fn contains_buffer(&self, range: VirtRange) -> bool {
        self.position(range).is_some()
    }

    fn position(&self, range: VirtRange) -> Option<usize> {
        let i = self.buffers.partition_point(|b| b.start() < range.start());
        (self.buffers.get(i) == Some(&range)).then_some(i)
    }

    /// Checks that `buffer` (registered or not) shares no cache line with
    /// declared data or with another registered buffer; reports the first
    /// such neighbour (data first) as [`DmaError::SharesLine`].
    pub fn check_buffer(&self, buffer: VirtRange) -> Result<(), DmaError> {
        let others = self
            .data
            .iter()
            .chain(self.buffers.iter().filter(|&&b| b != buffer));
        for &other in others {
            if let Some(line) = first_shared_line(buffer, other, self.line_bytes) {
                return Err(DmaError::SharesLine {
                    buffer,
                    other,
                    line,
                });
            }
        }
        Ok(())
    }

    /// [`check_buffer`](Self::check_buffer) for every registered buffer.
    pub fn check(&self) -> Result<(), DmaError> {
        self.buffers.iter().try_for_each(|&b| self.check_buffer(b))
    }
}

// ---- map / unmap / sync -----------------------------------------------------------

/// The maintenance a hand-over needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Clean,
    CleanInvalidate,
    /// Partial lines cleaned and invalidated, whole lines invalidated.
    Invalidate,
}

/// Before the device owns the buffer.
fn to_device_op(direction: DmaDirection) -> Op {
    match direction {
        DmaDirection::ToDevice => Op::Clean,
        DmaDirection::FromDevice => Op::Invalidate,
        DmaDirection::Bidirectional => Op::CleanInvalidate,
    }
}

/// Before the CPU owns the buffer again.
fn to_cpu_op(direction: DmaDirection) -> Option<Op> {
    match direction {
        DmaDirection::ToDevice => None,
        DmaDirection::FromDevice | DmaDirection::Bidirectional => Some(Op::Invalidate),
    }
}

/// DMA maintenance for one CPU: maps and unmaps buffers for devices with
/// the maintenance their direction needs, keeps the live mappings (no range
/// is mapped twice; unmap and sync check the mapping is live) and counts
/// what it did.
///
/// With [`with_sharing_check`](Self::with_sharing_check) every map also
/// runs the [`DmaTracker`] check against the declared CPU data and the
/// other mapped buffers, and is refused with [`DmaError::SharesLine`].
#[derive(Clone, Debug)]
pub struct Dma {
    tracker: DmaTracker,
    counters: DmaCounters,
    check_sharing: bool,
}

impl Dma {
    /// No mappings, for `info`'s caches; the sharing check is off.
    pub fn new(info: &CacheInfo) -> Self {
        Dma {
            tracker: DmaTracker::new(info),
            counters: DmaCounters::default(),
            check_sharing: false,
        }
    }

    /// Turns the sharing check on every map on or off (e.g.
    /// `cfg!(debug_assertions)`).
    pub fn with_sharing_check(mut self, on: bool) -> Self {
        self.check_sharing = on;
        self
    }

    /// What has been done so far.
    pub fn counters(&self) -> &DmaCounters {
        &self.counters
    }

    /// Returns the counters and starts again from zero.
    pub fn take_counters(&mut self) -> DmaCounters {
        core::mem::take(&mut self.counters)
    }

    /// The live mappings and declared data.
    pub fn tracker(&self) -> &DmaTracker {
        &self.tracker
    }

    /// Declares live CPU data for the sharing check
    /// ([`DmaTracker::declare_cpu_data`]).
    pub fn declare_cpu_data(&mut self, range: VirtRange) -> Result<(), DmaError> {
        self.tracker.declare_cpu_data(range)
    }

    /// Forgets declared data ([`DmaTracker::forget_cpu_data`]).
    pub fn forget_cpu_data(&mut self, range: VirtRange) -> Result<(), DmaError> {
        self.tracker.forget_cpu_data(range)
    }

    /// The sharing check over every live mapping ([`DmaTracker::check`]).
    pub fn check(&self) -> Result<(), DmaError> {
        self.tracker.check()
    }

    /// Hands the buffer at `range` (its kernel virtual addresses) to a
    /// device for a transfer in `direction`, after the maintenance that
    /// needs: ToDevice cleans, FromDevice invalidates (partial first / last
    /// lines cleaned and invalidated), Bidirectional cleans and
    /// invalidates. Every range operation ends with a write-buffer drain.
    ///
    /// Refused, with nothing maintained, for an empty range, a range
    /// overlapping a live mapping, or (sharing check on) a range sharing a
    /// line with declared data or another mapped buffer.
    ///
    /// # Safety
    /// Until [`unmap`](Self::unmap) the bytes of `range` belong to the
    /// device: the CPU does not read or write them (nor, for the transfer
    /// to be correct, the other bytes of a partially covered first or last
    /// line) except between [`sync_for_cpu`](Self::sync_for_cpu) and
    /// [`sync_for_device`](Self::sync_for_device). Dirty data inside
    /// `range` may be discarded now and on every hand-over back to the CPU
    /// (from-device and bidirectional transfers): `range` must hold no data
    /// the caller wants to keep, and no Rust reference to those bytes may be
    /// used across these calls. Bytes outside `range` are never discarded.
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// use vacmm::addr::{VirtAddr, VirtRange};
    /// use vacmm::cache::CacheMaintenance;
    /// use vacmm::coherence::dma::{Dma, DmaDirection};
    /// use vacmm::sim::{CpuModel, KERNEL, MemType, Sim};
    ///
    /// let mut sim = Sim::new(CpuModel::arm1136_32k(), 1 << 20);
    /// sim.map(KERNEL, 0xc060_0000, 0xb_0000, MemType::WriteBack, true).unwrap();
    /// sim.load(0xc060_0000, 4).unwrap();
    /// sim.store(0xc060_0000, 4, 0x1234_5678).unwrap(); // the packet, dirty in the cache
    ///
    /// let mut dma = Dma::new(sim.info());
    /// let tx = VirtRange::new(VirtAddr(0xc060_0000), 64).unwrap();
    /// // SAFETY: the CPU leaves the packet alone until unmap.
    /// let mapping = unsafe { dma.map_for_device(&mut sim, tx, DmaDirection::ToDevice) }.unwrap();
    /// assert_eq!(sim.dma_read(0xb_0000, 4).unwrap(), [0x78, 0x56, 0x34, 0x12]);
    /// dma.unmap(&mut sim, mapping).unwrap();
    /// assert!(sim.violations().is_empty());
    /// # }
    /// ```
    pub unsafe fn map_for_device<C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        range: VirtRange,
        direction: DmaDirection,
    ) -> Result<DmaMapping<'static>, DmaError> {
        // SAFETY: this function's contract is `map_range`'s.
        unsafe { self.map_range(cpu, range, direction) }?;
        Ok(DmaMapping {
            range,
            direction,
            owner: DmaOwner::Device,
            bytes: None,
            _buffer: PhantomData,
        })
    }

    /// [`map_for_device`](Self::map_for_device) of `len` bytes from
    /// `start` (Linux's `dma_map_single(dev, ptr, size, dir)`): also
    /// refuses a length that goes past 4 GiB.
    ///
    /// # Safety
    /// As for [`map_for_device`](Self::map_for_device).
    pub unsafe fn map_single<C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        start: VirtAddr,
        len: usize,
        direction: DmaDirection,
    ) -> Result<DmaMapping<'static>, DmaError> {
        let range = dma_range(start, len as u64)?;
        // SAFETY: the caller keeps `map_for_device`'s contract.
        unsafe { self.map_for_device(cpu, range, direction) }
    }

    /// Maps a [`DmaBuffer`] — safe: its lines hold nothing but its own
    /// bytes, and the mapping borrows it until [`unmap`](Self::unmap). The
    /// whole padded [`range`](DmaBuffer::range) is maintained, so no line
    /// is partial. Between [`sync_for_cpu`](Self::sync_for_cpu) and
    /// [`sync_for_device`](Self::sync_for_device) the CPU reaches the bytes
    /// through [`DmaMapping::cpu_bytes`].
    pub fn map_buffer<'b, C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        buffer: &'b mut DmaBuffer,
        direction: DmaDirection,
    ) -> Result<DmaMapping<'b>, DmaError> {
        // SAFETY: the range is the buffer's own line-aligned, line-padded
        // allocation: an invalidate can only discard the buffer's bytes,
        // which the mapping's exclusive borrow keeps every Rust reference
        // away from until unmap (or hands out only while the CPU owns them).
        unsafe { self.map_range(cpu, buffer.range, direction) }?;
        Ok(DmaMapping {
            range: buffer.range,
            direction,
            owner: DmaOwner::Device,
            bytes: Some((buffer.ptr, buffer.len)),
            _buffer: PhantomData,
        })
    }

    /// Registers, checks and maintains a new mapping.
    ///
    /// # Safety
    /// `map_for_device`'s contract for `range`.
    unsafe fn map_range<C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        range: VirtRange,
        direction: DmaDirection,
    ) -> Result<(), DmaError> {
        // Registered first so that overlap is `AlreadyMapped`, not `SharesLine`.
        self.tracker.add_buffer(range)?;
        if self.check_sharing
            && let Err(e) = self.tracker.check_buffer(range)
        {
            // The range was just added: removing it cannot fail.
            let _ = self.tracker.remove_buffer(range);
            return Err(e);
        }
        // The CPU's stores to the buffer come before the maintenance.
        compiler_fence(Ordering::SeqCst);
        // SAFETY: the caller gave `range`'s bytes to the device.
        unsafe { self.maintain(cpu, range, to_device_op(direction)) };
        self.counters.maps += 1;
        self.counters.bytes_mapped += range.len();
        Ok(())
    }

    /// Gives the buffer back to the CPU for good: if the device still owns
    /// it, invalidates it for from-device and bidirectional transfers
    /// (partial lines cleaned and invalidated) so the CPU reads what the
    /// device wrote; nothing for to-device ones, or after
    /// [`sync_for_cpu`](Self::sync_for_cpu) (an invalidate now could only
    /// discard what the CPU wrote since).
    ///
    /// Fails only for a mapping made by another [`Dma`].
    pub fn unmap<C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        mapping: DmaMapping<'_>,
    ) -> Result<(), DmaError> {
        self.tracker.remove_buffer(mapping.range)?;
        match mapping.owner {
            DmaOwner::Device => self.hand_to_cpu(cpu, &mapping),
            DmaOwner::Cpu => self.counters.no_maintenance += 1,
        }
        self.counters.unmaps += 1;
        Ok(())
    }

    /// Lets the CPU read (and write) the buffer while it stays mapped
    /// (Linux's `dma_sync_single_for_cpu`): the same maintenance as
    /// [`unmap`](Self::unmap). Hand it back with
    /// [`sync_for_device`](Self::sync_for_device).
    pub fn sync_for_cpu<C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        mapping: &mut DmaMapping<'_>,
    ) -> Result<(), DmaError> {
        self.check_live(mapping, DmaOwner::Device)?;
        self.hand_to_cpu(cpu, mapping);
        mapping.owner = DmaOwner::Cpu;
        self.counters.syncs_for_cpu += 1;
        Ok(())
    }

    /// Hands a buffer the CPU owns (after [`sync_for_cpu`](Self::sync_for_cpu))
    /// back to the device (Linux's `dma_sync_single_for_device`): the same
    /// maintenance as the map.
    pub fn sync_for_device<C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        mapping: &mut DmaMapping<'_>,
    ) -> Result<(), DmaError> {
        self.check_live(mapping, DmaOwner::Cpu)?;
        compiler_fence(Ordering::SeqCst);
        // SAFETY: a live mapping: its map's contract (or its DmaBuffer's
        // exclusive borrow) gave the range's bytes to the device.
        unsafe { self.maintain(cpu, mapping.range, to_device_op(mapping.direction)) };
        mapping.owner = DmaOwner::Device;
        self.counters.syncs_for_device += 1;
        Ok(())
    }

    fn check_live(&self, mapping: &DmaMapping<'_>, owner: DmaOwner) -> Result<(), DmaError> {
        if !self.tracker.contains_buffer(mapping.range) {
            return Err(DmaError::NotMapped {
                range: mapping.range,
            });
        }
        if mapping.owner != owner {
            return Err(DmaError::WrongOwner {
                range: mapping.range,
                owner: mapping.owner,
            });
        }
        Ok(())
    }

    /// The device is done: what the CPU needs before it reads.
    fn hand_to_cpu<C: CacheMaintenance + ?Sized>(&mut self, cpu: &mut C, mapping: &DmaMapping<'_>) {
        match to_cpu_op(mapping.direction) {
            // SAFETY: a live mapping: its map's contract (or its DmaBuffer's
            // exclusive borrow) gave the range's bytes to the device.
            Some(op) => unsafe { self.maintain(cpu, mapping.range, op) },
            None => self.counters.no_maintenance += 1,
        }
        // The CPU's loads of the buffer come after the maintenance.
        compiler_fence(Ordering::SeqCst);
    }

    /// Carries out `op` over `range` and counts it.
    ///
    /// # Safety
    /// For [`Op::Invalidate`], dirty data inside `range` may be lost: the
    /// range is a live mapping whose bytes belong to the device.
    unsafe fn maintain<C: CacheMaintenance + ?Sized>(
        &mut self,
        cpu: &mut C,
        range: VirtRange,
        op: Op,
    ) {
        let info = cpu.info();
        let plan = RangePlan::new(range, line_bytes(info), info.whole_cache_threshold());
        let outcome = match op {
            Op::Clean => cpu.clean_dcache_range(range),
            Op::CleanInvalidate => cpu.clean_invalidate_dcache_range(range),
            // SAFETY: the caller's contract; partially covered lines are
            // cleaned as well as invalidated by the trait's contract.
            Op::Invalidate => unsafe { cpu.invalidate_dcache_range(range) },
        };
        let c = &mut self.counters;
        c.range_ops += 1;
        match outcome {
            RangeOutcome::Nothing => return,
            RangeOutcome::WholeCache => {
                c.whole_cache_ops += 1;
                return;
            }
            RangeOutcome::Block => c.block_ops += 1,
            RangeOutcome::Lines(_) => {}
        }
        // `line_bytes` is a power of two, so the plan is never an error.
        let Ok(RangePlan::Lines(lines)) = plan else {
            return;
        };
        let n = lines.len() as u64;
        let partial = match (n, lines.first_is_partial(), lines.last_is_partial()) {
            (1, first, last) => u64::from(first || last),
            (_, first, last) => u64::from(first) + u64::from(last),
        };
        match op {
            Op::Clean => c.lines_cleaned += n,
            Op::CleanInvalidate => c.lines_cleaned_invalidated += n,
            Op::Invalidate => {
                c.partial_lines_cleaned += partial;
                c.lines_invalidated += n - partial;
            }
        }
    }
}

// ---- line-aligned buffers ------------------------------------------------------------

/// A zeroed heap buffer for DMA that shares no cache line with anything
/// else: aligned to the D-cache line and padded to whole lines.
///
/// Its [`range`](Self::range) is its kernel virtual range, padding
/// included. On a 32-bit target that is the allocation's address; on a
/// 64-bit host (the cache model's scenarios) it is the address's low 32
/// bits, which a scenario maps in the model like any kernel address.
///
/// ```
/// use vacmm::cache::{CacheInfo, MainId};
/// use vacmm::coherence::dma::DmaBuffer;
///
/// let info = CacheInfo::from_registers(MainId::from_raw(0x4106_9265), 0x1d15_2152).unwrap();
/// let mut buf = DmaBuffer::new(&info, 100).unwrap(); // 32-byte lines
/// assert!(buf.range().start().is_aligned(32));
/// assert_eq!((buf.len(), buf.range().len()), (100, 128));
/// buf.as_mut_slice()[99] = 7;
/// assert_eq!(buf.as_slice()[..2], [0, 0]);
/// ```
#[derive(Debug)]
pub struct DmaBuffer {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
    range: VirtRange,
}

// SAFETY: a `DmaBuffer` owns its allocation exclusively, like a
// `Box<[u8]>`: moving it to another thread moves that ownership.
unsafe impl Send for DmaBuffer {}
// SAFETY: shared references only read the bytes (`as_slice`), like `&[u8]`.
unsafe impl Sync for DmaBuffer {}

/// The kernel virtual range of `size` bytes at host address `addr`.
fn kernel_range(addr: usize, size: usize) -> Result<VirtRange, DmaError> {
    // 32-bit targets: the address itself; wider hosts: its low 32 bits.
    let start = VirtAddr(addr as u32);
    VirtRange::new(start, size as u64).map_err(|_| DmaError::WrapsPast4GiB {
        start,
        len: size as u64,
    })
}

impl DmaBuffer {
    /// `len` zeroed bytes aligned to `info`'s D-cache line, the allocation
    /// rounded up to whole lines.
    pub fn new(info: &CacheInfo, len: usize) -> Result<Self, DmaError> {
        let align = info.dcache.line_bytes;
        if len == 0 {
            return Err(DmaError::EmptyBuffer);
        }
        let layout = len
            .checked_next_multiple_of(align)
            .and_then(|size| Layout::from_size_align(size, align).ok())
            .ok_or(DmaError::BadLayout { len, align })?;
        // SAFETY: the layout's size is at least `len` > 0.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(DmaError::AllocationFailed {
            size: layout.size(),
            align,
        })?;
        match kernel_range(raw as usize, layout.size()) {
            Ok(range) => Ok(DmaBuffer {
                ptr,
                len,
                layout,
                range,
            }),
            Err(e) => {
                // SAFETY: allocated just above with this layout, not yet shared.
                unsafe { dealloc(raw, layout) };
                Err(e)
            }
        }
    }

    /// Bytes asked for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: a buffer has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated: `len` rounded up to whole lines.
    pub fn padded_len(&self) -> usize {
        self.layout.size()
    }

    /// The alignment: the D-cache line.
    pub fn align(&self) -> usize {
        self.layout.align()
    }

    /// The kernel virtual range, padding included: what
    /// [`Dma::map_buffer`] maintains.
    pub fn range(&self) -> VirtRange {
        self.range
    }

    /// The `len` bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live allocation of at least `len` initialised
        // (zeroed) bytes owned by `self`; `&self` keeps it from changing.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The `len` bytes, for writing.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this the only access.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with `self.layout`; freed once, here.
        // A live mapping borrows the buffer, so none is left.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

// Two attributes, not `all(test, …)`: cargo-mutants skips a module only
// when it sees a plain `#[cfg(test)]` (see .cargo/mutants.toml).
#[cfg(test)]
#[cfg(feature = "sim")]
mod tests;
