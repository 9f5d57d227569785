//! Address spaces: VMAs, `mmap` / `munmap` / `mprotect` / `brk`, page
//! faults, and the page tables they own.
//!
//! ```text
//!   MemorySystem (one per machine)          AddressSpace (one per process)
//!   ├─ mem            TableMemory           ├─ vmas      start ──▶ Vma
//!   ├─ table_frames   TableFrames           ├─ gaps      GapTree (free ranges,
//!   ├─ frames         FrameDb (rmap)        │            stack guards taken out)
//!   ├─ allocator      ColourAllocator       ├─ resident  va ──▶ frame
//!   └─ objects        Objects (i_mmap)      └─ table     PageTable (owned)
//! ```
//!
//! Every user page table entry an address space writes is mirrored in the
//! frame database's reverse map (with its real writability) and in the
//! space's `resident` index; every window onto a memory object is in the
//! object's mapper list. The property tests check that these agree exactly.
//!
//! Mappings are populated lazily, as in Linux: `mmap` creates a VMA, and
//! [`AddressSpace::fault`] installs a page when it is touched, reporting
//! what the caller must put in it ([`FaultOutcome`]: zero-fill, read from
//! the backing store, or copy for copy-on-write).
//!
//! Faults are in `fault.rs`, `fork` in `fork.rs`; every call that fails
//! leaves the books as they were (checked by `check::books`).
//!
//! This layer keeps the books and the page tables; it does no cache
//! maintenance of user data. The coherence engine calls into it and does
//! the maintenance each change owes (flush before unmap on VIVT, the
//! colour-matched copy on copy-on-write, …).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use bitflags::bitflags;

use super::colour::ColourAllocator;
use super::config::ConfigError;
use super::frames::{FRAME_SIZE, FrameDb, FrameError, Mapping, MappingKind, SpaceId};
use super::gaps::{Gap, GapTree};
use super::ids::SpaceIds;
use super::object::{ObjectError, ObjectId, ObjectKind, ObjectMapping, Objects};
use super::unmapped::{Layout, MapRequest, MmapError, get_unmapped_area};
use crate::addr::{PhysAddr, VirtAddr};
use crate::mmu::{
    Access, Attributes, Execute, MemoryType, PageTable, TableError, TableFrames, TableMemory,
    TlbFlush,
};

#[cfg(any(test, all(feature = "sim", not(target_os = "none"))))]
pub mod audit;
mod fault;
mod fork;
#[cfg(test)]
mod tests;

const PAGE: u32 = FRAME_SIZE;

bitflags! {
    /// What user code may do with a mapping (`PROT_*`). Write implies read
    /// (ARM page tables cannot express write-only); `empty()` is `PROT_NONE`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct Protection: u8 {
        /// `PROT_READ`.
        const READ = 1 << 0;
        /// `PROT_WRITE`.
        const WRITE = 1 << 1;
        /// `PROT_EXEC`.
        const EXEC = 1 << 2;
    }
}

/// What a VMA shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backing {
    /// Private anonymous memory: zero-filled on first touch.
    Anonymous,
    /// A window onto a memory object, starting at its page `first_page`.
    Object {
        /// The object.
        id: ObjectId,
        /// The object page shown at the VMA's start.
        first_page: u32,
    },
}

/// A virtual memory area: `[start, end)` with one protection, sharing mode
/// and backing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vma {
    start: u32,
    end: u32,
    prot: Protection,
    shared: bool,
    backing: Backing,
    stack: bool,
}

impl Vma {
    /// First address.
    pub fn start(&self) -> VirtAddr {
        VirtAddr(self.start)
    }
    /// One past the last address.
    pub fn end(&self) -> VirtAddr {
        VirtAddr(self.end)
    }
    /// Length in bytes.
    pub fn len(&self) -> u32 {
        self.end - self.start
    }
    /// Always false: a VMA covers at least one page.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// User permissions.
    pub fn prot(&self) -> Protection {
        self.prot
    }
    /// `MAP_SHARED`.
    pub fn is_shared(&self) -> bool {
        self.shared
    }
    /// What it maps.
    pub fn backing(&self) -> Backing {
        self.backing
    }
    /// A stack (`MAP_GROWSDOWN`): the space keeps a guard gap below it.
    pub fn is_stack(&self) -> bool {
        self.stack
    }
    /// True if `va` lies inside.
    pub fn contains(&self, va: VirtAddr) -> bool {
        (self.start..self.end).contains(&va.as_u32())
    }
    /// The object page shown at `va` (for object-backed VMAs containing it).
    pub fn object_page(&self, va: VirtAddr) -> Option<(ObjectId, u32)> {
        match self.backing {
            Backing::Object { id, first_page } if self.contains(va) => {
                Some((id, first_page + (va.as_u32() - self.start) / PAGE))
            }
            _ => None,
        }
    }
    /// The window this VMA opens onto its object, as the object records it.
    fn window(&self, space: SpaceId) -> Option<(ObjectId, ObjectMapping)> {
        match self.backing {
            Backing::Object { id, first_page } => Some((
                id,
                ObjectMapping {
                    space,
                    start: VirtAddr(self.start),
                    first_page,
                    pages: self.len() / PAGE,
                },
            )),
            Backing::Anonymous => None,
        }
    }
    /// The part `[from, to)` of this VMA (which must lie inside it).
    fn slice(&self, from: u32, to: u32) -> Vma {
        let backing = match self.backing {
            Backing::Object { id, first_page } => Backing::Object {
                id,
                first_page: first_page + (from - self.start) / PAGE,
            },
            Backing::Anonymous => Backing::Anonymous,
        };
        Vma {
            start: from,
            end: to,
            backing,
            ..*self
        }
    }
    /// True if `next` (starting where this ends) can join this VMA.
    fn joins(&self, next: &Vma) -> bool {
        let backing_continues = match (self.backing, next.backing) {
            (Backing::Anonymous, Backing::Anonymous) => true,
            (
                Backing::Object {
                    id: a,
                    first_page: p,
                },
                Backing::Object {
                    id: b,
                    first_page: q,
                },
            ) => a == b && p + self.len() / PAGE == q,
            _ => false,
        };
        self.end == next.start
            && self.prot == next.prot
            && self.shared == next.shared
            && self.stack == next.stack
            && backing_continues
    }
}

/// Where a new mapping's pages come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapSource {
    /// Anonymous memory (`MAP_ANONYMOUS`); shared anonymous mappings get a
    /// fresh [`ObjectKind::SharedAnonymous`] object.
    Anonymous,
    /// Object `id` from byte `offset` (page aligned).
    Object {
        /// The object (a file or shared-memory segment).
        id: ObjectId,
        /// Byte offset of the mapping's first page.
        offset: u64,
    },
}

/// The arguments of `mmap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmapArgs {
    /// The address asked for (a hint, or the address with `fixed`).
    pub addr: Option<VirtAddr>,
    /// Length in bytes (rounded up to pages).
    pub len: u32,
    /// Permissions.
    pub prot: Protection,
    /// `MAP_SHARED` (else `MAP_PRIVATE`).
    pub shared: bool,
    /// `MAP_FIXED`: exactly at `addr`, replacing what is there.
    pub fixed: bool,
    /// `MAP_GROWSDOWN`: a stack, kept a guard gap away from what is below.
    pub stack: bool,
    /// What to map.
    pub source: MapSource,
}

impl MmapArgs {
    /// Private anonymous read/write memory of `len` bytes, placed anywhere.
    pub fn anonymous(len: u32) -> Self {
        MmapArgs {
            addr: None,
            len,
            prot: Protection::READ | Protection::WRITE,
            shared: false,
            fixed: false,
            stack: false,
            source: MapSource::Anonymous,
        }
    }

    /// A shared read/write window onto `id` from byte `offset`.
    pub fn shared_object(id: ObjectId, offset: u64, len: u32) -> Self {
        MmapArgs {
            shared: true,
            source: MapSource::Object { id, offset },
            ..MmapArgs::anonymous(len)
        }
    }
}

/// The kind of access that faulted (defined with the MMU, which needs no
/// heap, so that `arch::abort` can name it without the `alloc` feature).
pub use crate::mmu::FaultAccess;

/// What a fault installed, and what the caller owes the new page before
/// user code runs again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// A fresh private frame: the caller zeroes it (`clear_user_page`).
    ZeroFill {
        /// The frame.
        pa: PhysAddr,
    },
    /// An object page is now mapped. If `fresh`, the frame was just
    /// allocated for the object and the caller fills it from the backing
    /// store (a file read; zeroes for shared memory).
    ObjectPage {
        /// The frame.
        pa: PhysAddr,
        /// The page was not resident before.
        fresh: bool,
    },
    /// Copy-on-write: the caller copies `from` into `to` (`copy_user_page`),
    /// which is now mapped writable in place of `from`. If `from_fresh`,
    /// `from` is an object page that was just allocated and must be filled
    /// from the backing store first.
    CopyOnWrite {
        /// The frame copied from (still mapped by others, or the object's).
        from: PhysAddr,
        /// The new private frame.
        to: PhysAddr,
        /// `from` was allocated by this fault.
        from_fresh: bool,
    },
    /// A write to a private page nobody else maps: it was made writable in
    /// place; nothing to copy.
    Reused {
        /// The frame.
        pa: PhysAddr,
    },
    /// The page was already mapped as the access needs (a stale TLB entry
    /// or a race with another fault): nothing changed.
    AlreadyMapped {
        /// The frame.
        pa: PhysAddr,
    },
}

/// Why an address-space operation failed, with the values involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpaceError {
    /// Placement or `mmap` argument error (see [`MmapError`]).
    Mmap(MmapError),
    /// An address that must be page aligned is not (`EINVAL`).
    Unaligned {
        /// The address given.
        addr: VirtAddr,
    },
    /// A zero-length `munmap` (`EINVAL`).
    ZeroLength,
    /// A range reaching outside `[min_addr, task_size)` (`EINVAL`/`ENOMEM`).
    OutOfUserSpace {
        /// Start of the range.
        addr: VirtAddr,
        /// Its length in bytes.
        len: u32,
    },
    /// `mprotect` over a range with unmapped holes (`ENOMEM`); nothing
    /// was changed.
    Hole {
        /// The first unmapped address found.
        at: VirtAddr,
    },
    /// `mmap` of an object at an offset whose pages cannot be numbered in
    /// 32 bits (`EOVERFLOW`).
    OffsetOverflow {
        /// The offset.
        offset: u64,
        /// The length.
        len: u32,
    },
    /// A fault at an address no VMA covers (`SIGSEGV`, `SEGV_MAPERR`).
    NoMapping {
        /// The faulting address.
        va: VirtAddr,
    },
    /// A fault the VMA's protection forbids (`SIGSEGV`, `SEGV_ACCERR`).
    AccessDenied {
        /// The faulting address.
        va: VirtAddr,
        /// What was attempted.
        access: FaultAccess,
        /// What the VMA allows.
        prot: Protection,
    },
    /// A fault past the end of the backing object (`SIGBUS`).
    BeyondObject {
        /// The faulting address.
        va: VirtAddr,
        /// The object page it would show.
        page: u32,
        /// The object's size in pages.
        size: u32,
    },
    /// `brk` to an address below the heap's start or over another mapping
    /// (Linux leaves the break where it was; so does this).
    BrkRefused {
        /// The break asked for.
        requested: VirtAddr,
        /// The break as it stays.
        current: VirtAddr,
    },
    /// A frame-database or frame-allocator error (out of memory included).
    Frame(FrameError),
    /// A memory-object error.
    Object(ObjectError),
    /// A page-table error.
    Table(TableError),
    /// The heap could not hold the space's own bookkeeping.
    MetadataAllocFailed,
    /// The space's configuration cannot work (see [`crate::mm::config`]).
    Config(ConfigError),
    /// The call could leave the space with more mappings (VMAs) than
    /// [`SpaceConfig::max_mappings`] (`ENOMEM`, as Linux's
    /// `vm.max_map_count`); nothing was changed.
    TooManyMappings {
        /// The space's mappings now.
        mappings: u32,
        /// How many more the call could need (a new mapping, and the
        /// pieces of mappings it splits).
        more: u32,
        /// The limit.
        limit: u32,
    },
}

impl SpaceError {
    /// The errno (or, for faults, the signal number) a kernel reports:
    /// `EINVAL` 22, `ENOMEM` 12, `EOVERFLOW` 75; `SIGSEGV` 11, `SIGBUS` 7.
    pub fn errno(&self) -> i32 {
        match self {
            SpaceError::Mmap(e) => e.errno(),
            SpaceError::Unaligned { .. }
            | SpaceError::ZeroLength
            | SpaceError::OutOfUserSpace { .. }
            | SpaceError::Config(_) => 22,
            SpaceError::OffsetOverflow { .. } => 75,
            SpaceError::NoMapping { .. } | SpaceError::AccessDenied { .. } => 11,
            SpaceError::BeyondObject { .. } => 7,
            _ => 12,
        }
    }
}

impl fmt::Display for SpaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SpaceError::Mmap(e) => e.fmt(f),
            SpaceError::Unaligned { addr } => write!(f, "address {addr} is not page aligned"),
            SpaceError::ZeroLength => f.write_str("a range of zero bytes is refused"),
            SpaceError::OutOfUserSpace { addr, len } => {
                write!(f, "range {addr} + {len:#x} reaches outside user space")
            }
            SpaceError::Hole { at } => write!(f, "no mapping at {at} inside the range"),
            SpaceError::TooManyMappings {
                mappings,
                more,
                limit,
            } => write!(
                f,
                "the space has {mappings} mappings and the call could need {more} more, past \
                 its limit of {limit}"
            ),
            SpaceError::OffsetOverflow { offset, len } => write!(
                f,
                "the object offset {offset:#x} plus {len:#x} bytes reaches past the pages a \
                 32-bit page number can name"
            ),
            SpaceError::NoMapping { va } => write!(f, "no mapping at {va}"),
            SpaceError::AccessDenied { va, access, prot } => {
                let access = match access {
                    FaultAccess::Read => "a read",
                    FaultAccess::Write => "a write",
                    FaultAccess::Execute => "an instruction fetch",
                };
                write!(f, "{access} at {va} is not allowed: the mapping there ")?;
                let allowed = [
                    (Protection::READ, "read"),
                    (Protection::WRITE, "write"),
                    (Protection::EXEC, "execute"),
                ]
                .into_iter()
                .filter(|&(p, _)| prot.contains(p));
                match allowed.clone().count() {
                    0 => f.write_str("allows no access"),
                    n => {
                        f.write_str("is ")?;
                        for (i, (_, name)) in allowed.enumerate() {
                            let sep = if i == 0 { "" } else { "/" };
                            write!(f, "{sep}{name}")?;
                        }
                        if n == 1 { f.write_str("-only") } else { Ok(()) }
                    }
                }
            }
            SpaceError::BeyondObject { va, page, size } => write!(
                f,
                "address {va} shows page {page} of its object, which has only {size} pages"
            ),
            SpaceError::BrkRefused { requested, current } => write!(
                f,
                "break {requested} refused (below the heap or over a mapping); it stays at {current}"
            ),
            SpaceError::Frame(e) => e.fmt(f),
            SpaceError::Object(e) => e.fmt(f),
            SpaceError::Table(e) => e.fmt(f),
            SpaceError::MetadataAllocFailed => {
                f.write_str("could not allocate address-space bookkeeping")
            }
            SpaceError::Config(e) => write!(f, "address-space configuration refused: {e}"),
        }
    }
}

/// The message includes the cause's, so a kernel printing one line loses
/// nothing; `source` gives the cause as a value.
impl core::error::Error for SpaceError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            SpaceError::Mmap(e) => Some(e),
            SpaceError::Frame(e) => Some(e),
            SpaceError::Object(e) => Some(e),
            SpaceError::Table(e) => Some(e),
            SpaceError::Config(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for SpaceError {
    fn from(e: ConfigError) -> Self {
        SpaceError::Config(e)
    }
}
impl From<MmapError> for SpaceError {
    fn from(e: MmapError) -> Self {
        SpaceError::Mmap(e)
    }
}
impl From<FrameError> for SpaceError {
    fn from(e: FrameError) -> Self {
        SpaceError::Frame(e)
    }
}
impl From<ObjectError> for SpaceError {
    fn from(e: ObjectError) -> Self {
        SpaceError::Object(e)
    }
}
impl From<TableError> for SpaceError {
    fn from(e: TableError) -> Self {
        SpaceError::Table(e)
    }
}
impl From<alloc::collections::TryReserveError> for SpaceError {
    fn from(_: alloc::collections::TryReserveError) -> Self {
        SpaceError::MetadataAllocFailed
    }
}

/// The machine-wide state every address space shares. Fields are public so
/// a kernel (and the coherence engine) can borrow them separately.
pub struct MemorySystem<M, F> {
    /// How the kernel reaches page-table memory (and its cache).
    pub mem: M,
    /// Frames for second-level tables.
    pub table_frames: F,
    /// Per-frame state and reverse map.
    pub frames: FrameDb,
    /// Free frames by colour.
    pub allocator: ColourAllocator,
    /// Files, segments and shared anonymous regions.
    pub objects: Objects,
    /// The address spaces' names: issued by [`AddressSpace::new`], given
    /// back by [`AddressSpace::destroy`]; private, so no two live spaces
    /// can be given one name.
    spaces: SpaceIds,
}

impl<M: TableMemory, F: TableFrames> MemorySystem<M, F> {
    /// A system managing `frames` frames from `first` for user and object
    /// pages, coloured by `colours` (the cache's colour count,
    /// [`CacheInfo::colours`](crate::cache::CacheInfo::colours); 1 when it
    /// does not alias).
    pub fn new(
        mem: M,
        table_frames: F,
        first: PhysAddr,
        frames: u32,
        colours: usize,
    ) -> Result<Self, FrameError> {
        // A count past u32 is refused as the largest u32, which is not a
        // power of two either.
        let colours = u32::try_from(colours).unwrap_or(u32::MAX);
        Ok(MemorySystem {
            mem,
            table_frames,
            frames: FrameDb::new(first, frames)?,
            allocator: ColourAllocator::new(first, frames, colours)?,
            objects: Objects::new(),
            spaces: SpaceIds::new(),
        })
    }

    /// A frame for user address `va` (or object page `page`): of the same
    /// colour when one is free, so the kernel's linear-map alias of the
    /// frame does not alias the user mapping; any colour otherwise.
    fn allocate_for(&mut self, page: u32) -> Result<PhysAddr, FrameError> {
        let colour = page & (self.allocator.colours() - 1);
        match self.allocator.allocate_colour(colour) {
            Err(FrameError::NoFrameOfColour { .. }) => self.allocator.allocate_any(),
            other => other,
        }
    }

    /// The address spaces that exist (ids live and given back).
    pub fn spaces(&self) -> &SpaceIds {
        &self.spaces
    }

    /// Returns a frame no mapping or object uses any more.
    fn release_frame(&mut self, pa: PhysAddr) -> Result<(), FrameError> {
        self.frames.reset(pa)?;
        self.allocator.free(pa)
    }
}

/// An address space's fixed parameters, checked when a space is built
/// ([`SpaceConfig::check`]; against the cache too when the coherence
/// engine builds it, `Engine::create_space`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceConfig {
    /// Placement limits, colour span and direction.
    pub layout: Layout,
    /// Bytes kept free below every stack VMA (Linux `stack_guard_gap`,
    /// 256 pages by default); a multiple of the page size.
    pub stack_guard_gap: u32,
    /// The most mappings (VMAs) the space may hold: each costs the kernel
    /// heap a B-tree entry, a gap-tree node and its windows, and the heap
    /// cannot fail those allocations gracefully (see
    /// [`AddressSpace::mmap`]), so a process must not grow them without
    /// bound. Linux's `vm.max_map_count` defaults to 65,530
    /// (`DEFAULT_MAX_MAP_COUNT`, `include/linux/mm.h`); at least 1.
    pub max_mappings: u32,
}

impl SpaceConfig {
    /// Linux's default `vm.max_map_count`.
    pub const DEFAULT_MAX_MAPPINGS: u32 = 65_530;
    /// Linux's default `stack_guard_gap`: 256 pages.
    pub const DEFAULT_STACK_GUARD_GAP: u32 = 256 * PAGE;

    /// A configuration over `layout` with Linux's defaults for the rest
    /// (a 256-page stack guard gap, 65,530 mappings). Checked when a space
    /// is built over it.
    pub fn new(layout: Layout) -> Self {
        SpaceConfig {
            layout,
            stack_guard_gap: Self::DEFAULT_STACK_GUARD_GAP,
            max_mappings: Self::DEFAULT_MAX_MAPPINGS,
        }
    }
}

/// One process's view of memory. It owns its page table: dropping the
/// space without [`destroy`](Self::destroy) leaks its frames and tables.
#[derive(Debug)]
pub struct AddressSpace {
    id: SpaceId,
    config: SpaceConfig,
    vmas: BTreeMap<u32, Vma>,
    gaps: GapTree,
    resident: BTreeMap<u32, PhysAddr>,
    brk_start: u32,
    brk: u32,
    table: PageTable,
}

impl AddressSpace {
    /// An empty space over `table` (a fresh user table), named by `sys`
    /// with an id no other space has had.
    ///
    /// Refuses ([`SpaceError::Config`]) a configuration whose numbers
    /// cannot work ([`SpaceConfig::check`]) or a table declared to fit the
    /// FCSE window under a user space that ends above it
    /// ([`SpaceConfig::check_fcse`]). What only the cache decides (the
    /// colour span against its colour alignment) and the kernel's own
    /// ranges are checked by the coherence engine's `create_space`, which
    /// knows them: build spaces through it.
    ///
    /// A refused `table` is dropped: a fresh table owns no second-level
    /// tables, so nothing leaks but its L1 frame (`table.l1()`), which is
    /// the caller's to reuse or free.
    pub fn new<M, F>(
        sys: &mut MemorySystem<M, F>,
        config: SpaceConfig,
        table: PageTable,
    ) -> Result<Self, SpaceError> {
        config.check()?;
        config.check_fcse(table.fits_fcse_window())?;
        let Layout {
            min_addr,
            task_size,
            ..
        } = config.layout;
        let gaps = GapTree::complement_of([], u64::from(min_addr), u64::from(task_size))?;
        let id = sys.spaces.issue()?;
        Ok(AddressSpace {
            id,
            config,
            vmas: BTreeMap::new(),
            gaps,
            resident: BTreeMap::new(),
            brk_start: min_addr,
            brk: min_addr,
            table,
        })
    }

    /// The reverse-map entry of this space's page at `va` in `vma`.
    fn user_mapping(&self, vma: &Vma, va: u32, writable: bool) -> Mapping {
        Mapping {
            space: self.id,
            va: VirtAddr(va),
            writable,
            shared: vma.shared,
            kind: MappingKind::User,
        }
    }

    /// Its name in the frame database.
    pub fn id(&self) -> SpaceId {
        self.id
    }
    /// Its parameters.
    pub fn config(&self) -> &SpaceConfig {
        &self.config
    }
    /// Its page table.
    pub fn table(&self) -> &PageTable {
        &self.table
    }
    /// Its page table, for the context switch.
    pub fn table_mut(&mut self) -> &mut PageTable {
        &mut self.table
    }
    /// Every VMA in address order.
    pub fn vmas(&self) -> impl Iterator<Item = &Vma> + '_ {
        self.vmas.values()
    }
    /// The VMA containing `va`.
    pub fn find_vma(&self, va: VirtAddr) -> Option<&Vma> {
        self.vmas
            .range(..=va.as_u32())
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.contains(va))
    }
    /// The free ranges placement searches (stack guards excluded).
    pub fn gaps(&self) -> &GapTree {
        &self.gaps
    }
    /// Every mapped page and its frame, in address order.
    pub fn resident(&self) -> impl Iterator<Item = (VirtAddr, PhysAddr)> + '_ {
        self.resident.iter().map(|(&va, &pa)| (VirtAddr(va), pa))
    }
    /// The mapped pages of `[va, va + len)` and their frames, found in the
    /// index (not by walking every page of the range).
    pub fn resident_in(
        &self,
        va: VirtAddr,
        len: u32,
    ) -> impl Iterator<Item = (VirtAddr, PhysAddr)> + '_ {
        let start = va.as_u32() & !(PAGE - 1);
        let end = u64::from(va.as_u32()) + u64::from(len);
        self.resident
            .range(start..)
            .take_while(move |&(&a, _)| u64::from(a) < end)
            .map(|(&a, &pa)| (VirtAddr(a), pa))
    }

    /// The frame mapped at the page containing `va`, if any.
    pub fn resident_at(&self, va: VirtAddr) -> Option<PhysAddr> {
        self.resident.get(&(va.as_u32() & !(PAGE - 1))).copied()
    }
    /// The current program break.
    pub fn brk_value(&self) -> VirtAddr {
        VirtAddr(self.brk)
    }
    /// Where the heap starts.
    pub fn brk_start(&self) -> VirtAddr {
        VirtAddr(self.brk_start)
    }

    /// Sets the heap's start (the end of the loaded program, as exec does);
    /// the break moves there. Only while the heap is empty.
    pub fn set_brk_start(&mut self, start: VirtAddr) -> Result<(), SpaceError> {
        let (min, top) = (self.config.layout.min_addr, self.config.layout.task_size);
        if self.brk != self.brk_start || !(min..top).contains(&start.as_u32()) {
            return Err(SpaceError::BrkRefused {
                requested: start,
                current: VirtAddr(self.brk),
            });
        }
        self.brk_start = start.as_u32();
        self.brk = start.as_u32();
        Ok(())
    }

    // ---- mmap ---------------------------------------------------------------

    /// Maps `args`; returns the address chosen. A fixed mapping replaces
    /// whatever it overlaps.
    ///
    /// Checked, then reserved, then committed, so a refused call changes
    /// nothing: the source object must exist and the placement and offset
    /// be valid before anything is unmapped, a shared anonymous mapping's
    /// object is created before, and objects the unmap leaves without a
    /// mapping are destroyed only once the new mapping is in — the source
    /// itself may be one of them (a fixed mapping over the only window
    /// onto it), which Linux keeps alive by the reference `mmap` holds on
    /// its file.
    ///
    /// The kernel heap: vectors grow by `try_reserve` and a full heap is
    /// refused with `MetadataAllocFailed`, but the VMA and resident-page
    /// maps are `BTreeMap`s, whose node allocations cannot fail with an
    /// error. A heap that cannot give one runs the kernel's
    /// allocation-error handler, which does not return: no call is left
    /// half-done behind an `Err`, but the kernel stops. The space's
    /// [`max_mappings`](SpaceConfig::max_mappings) bounds what a process
    /// can make the heap hold (`SpaceError::TooManyMappings`).
    pub fn mmap<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        args: MmapArgs,
    ) -> Result<VirtAddr, SpaceError> {
        let file_offset = match args.source {
            MapSource::Object { id, offset } => {
                sys.objects.get(id)?;
                Some(offset)
            }
            MapSource::Anonymous if args.shared => Some(0),
            MapSource::Anonymous => None,
        };
        let request = MapRequest {
            hint: args.addr,
            len: args.len,
            fixed: args.fixed,
            shared: args.shared,
            file_offset,
        };
        let start = get_unmapped_area(&self.gaps, &self.config.layout, &request)?;
        let len = args.len.div_ceil(PAGE) * PAGE;
        let first_page = file_offset.map(|o| o / u64::from(PAGE)).unwrap_or(0);
        if first_page + u64::from(len / PAGE) > u64::from(u32::MAX) {
            return Err(SpaceError::OffsetOverflow {
                offset: file_offset.unwrap_or(0),
                len: args.len,
            });
        }
        let start = start.as_u32();
        // The new mapping, plus the piece a hole punched in one mapping
        // adds, less the mappings it replaces whole.
        let (hole, replaced) = if args.fixed {
            let end = start + len;
            let whole = self
                .vmas_overlapping(start, end)
                .into_iter()
                .filter(|v| v.start >= start && v.end <= end)
                .count() as u32;
            (self.punches_hole(start, end), whole)
        } else {
            (0, 0)
        };
        self.check_room((1 + hole).saturating_sub(replaced))?;
        let backing = match args.source {
            MapSource::Object { id, .. } => Backing::Object {
                id,
                first_page: first_page as u32,
            },
            MapSource::Anonymous if args.shared => Backing::Object {
                id: sys
                    .objects
                    .create(ObjectKind::SharedAnonymous, len / PAGE)?,
                first_page: 0,
            },
            MapSource::Anonymous => Backing::Anonymous,
        };
        let created = match (args.source, backing) {
            (MapSource::Anonymous, Backing::Object { id, .. }) => Some(id),
            _ => None,
        };
        // Objects the unmap leaves unmapped, destroyed at the end.
        let mut orphans = Vec::new();
        let mut result = Ok(());
        if args.fixed {
            result = self.unmap_range_keeping_objects(sys, start, start + len, &mut orphans, None);
        }
        if result.is_ok() {
            result = self.insert_vma(
                sys,
                Vma {
                    start,
                    end: start + len,
                    prot: args.prot,
                    shared: args.shared,
                    backing,
                    stack: args.stack,
                },
            );
        }
        if result.is_err() {
            // Only an allocation can fail once the checks passed.
            orphans.extend(created);
        }
        let reaped = self.destroy_orphans(sys, &orphans);
        result.and(reaped)?;
        Ok(VirtAddr(start))
    }

    /// Unmaps every page of `[addr, addr + len)`, splitting VMAs that cross
    /// its ends. Holes inside the range are allowed, as in Linux.
    pub fn munmap<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        addr: VirtAddr,
        len: u32,
    ) -> Result<(), SpaceError> {
        let (start, end) = self.user_range(addr, len)?;
        if start == end {
            return Err(SpaceError::ZeroLength);
        }
        self.check_room(self.punches_hole(start, end))?;
        self.unmap_range(sys, start, end)
    }

    /// Changes the protection of `[addr, addr + len)`, which must be fully
    /// mapped (else [`SpaceError::Hole`] and nothing changes). Resident
    /// pages are rewritten: writable only where writes need no copy.
    pub fn mprotect<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        addr: VirtAddr,
        len: u32,
        prot: Protection,
    ) -> Result<(), SpaceError> {
        let (start, end) = self.user_range(addr, len)?;
        if start == end {
            return Ok(());
        }
        let mut cursor = start;
        for vma in self.vmas_overlapping(start, end) {
            if vma.start > cursor {
                break;
            }
            cursor = vma.end;
        }
        if cursor < end {
            return Err(SpaceError::Hole {
                at: VirtAddr(cursor),
            });
        }
        self.check_room(self.splits_at(start, prot) + self.splits_at(end, prot))?;
        self.split_at(sys, start)?;
        self.split_at(sys, end)?;
        let keys: Vec<u32> = self.vmas.range(start..end).map(|(&k, _)| k).collect();
        for key in keys {
            if let Some(vma) = self.vmas.get_mut(&key) {
                vma.prot = prot;
            }
        }
        let pages: Vec<(u32, PhysAddr)> = self
            .resident
            .range(start..end)
            .map(|(&va, &pa)| (va, pa))
            .collect();
        for (va, pa) in pages {
            self.refresh_entry(sys, va, pa)?;
        }
        self.merge_around(sys, start)?;
        self.merge_around(sys, end)?;
        Ok(())
    }

    /// Moves the program break to `new` (Linux `brk`): grows the heap VMA
    /// into free space, or unmaps what a shrink leaves behind. Returns the
    /// new break.
    pub fn brk<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        new: VirtAddr,
    ) -> Result<VirtAddr, SpaceError> {
        let refused = SpaceError::BrkRefused {
            requested: new,
            current: VirtAddr(self.brk),
        };
        let requested = new.as_u32();
        if requested < self.brk_start || requested > self.config.layout.task_size {
            return Err(refused);
        }
        let old_end = self.brk.div_ceil(PAGE) * PAGE;
        let new_end = (u64::from(requested).div_ceil(u64::from(PAGE)) * u64::from(PAGE)) as u32;
        if new_end > old_end {
            let free = self
                .gaps
                .containing(u64::from(old_end))
                .is_some_and(|g| g.end >= u64::from(new_end));
            if !free {
                return Err(refused);
            }
            self.check_room(1)?;
            self.insert_vma(
                sys,
                Vma {
                    start: old_end,
                    end: new_end,
                    prot: Protection::READ | Protection::WRITE,
                    shared: false,
                    backing: Backing::Anonymous,
                    stack: false,
                },
            )?;
        } else if new_end < old_end {
            // A mapping placed over the heap (MAP_FIXED) may reach past the
            // old break: the shrink then cuts a hole in it.
            self.check_room(self.punches_hole(new_end, old_end))?;
            self.unmap_range(sys, new_end, old_end)?;
        }
        self.brk = requested;
        Ok(new)
    }

    /// Unmaps everything and returns the page table's frames; the space is
    /// gone, and its id names nothing from now on. (Exit: the coherence
    /// engine discards the space's cache lines before calling this.)
    pub fn destroy<M: TableMemory, F: TableFrames>(
        mut self,
        sys: &mut MemorySystem<M, F>,
    ) -> Result<PhysAddr, SpaceError> {
        let (min, top) = (self.config.layout.min_addr, self.config.layout.task_size);
        // The TLB entries go once at the end, not page by page (issue 24:
        // a 256-page space cost 256 TLB operations where one invalidate by
        // its ASID does, as Linux's flush_tlb_mm).
        let mut stale = Vec::new();
        let mut orphans = Vec::new();
        let result =
            self.unmap_range_keeping_objects(sys, min, top, &mut orphans, Some(&mut stale));
        let flushed = flush_together(sys.mem.cache(), stale).map_err(TableError::from);
        result.and(flushed.map_err(SpaceError::from))?;
        self.destroy_orphans(sys, &orphans)?;
        let l1 = self.table.release(&mut sys.mem, &mut sys.table_frames)?;
        // A failure here costs the slot, never its uniqueness.
        let _ = sys.spaces.release(self.id);
        Ok(l1)
    }

    /// The memory type of resident page `va`'s entry.
    pub fn memory_type<M: TableMemory, F>(
        &self,
        sys: &mut MemorySystem<M, F>,
        va: VirtAddr,
    ) -> Result<MemoryType, SpaceError> {
        let arch = self.table.arch();
        let t = self.table.translate(&mut sys.mem, va)?;
        Ok(t.attributes(arch).map_err(TableError::from)?.memory)
    }

    /// Rewrites the memory type of resident page `va` (how the coherence
    /// engine makes aliases uncacheable and cacheable again) and flushes
    /// its TLB entry. Cache maintenance the change needs is the caller's.
    pub fn set_memory_type<M: TableMemory, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        va: VirtAddr,
        memory: MemoryType,
    ) -> Result<(), SpaceError> {
        let va = va.align_down(PAGE);
        if !self.resident.contains_key(&va.as_u32()) {
            return Err(SpaceError::NoMapping { va });
        }
        let arch = self.table.arch();
        let t = self.table.translate(&mut sys.mem, va)?;
        let attrs = t
            .attributes(arch)
            .map_err(TableError::from)?
            .with_memory(memory);
        let flush = self.table.protect_page(&mut sys.mem, va, attrs)?;
        flush.flush(sys.mem.cache()).map_err(TableError::from)?;
        Ok(())
    }

    // ---- internals --------------------------------------------------------------

    /// Checks `[addr, addr + len)` (len rounded up to pages) lies in user
    /// space and starts page aligned; returns its bounds.
    fn user_range(&self, addr: VirtAddr, len: u32) -> Result<(u32, u32), SpaceError> {
        if !addr.is_aligned(PAGE) {
            return Err(SpaceError::Unaligned { addr });
        }
        let start = addr.as_u32();
        let end = u64::from(start) + u64::from(len).div_ceil(u64::from(PAGE)) * u64::from(PAGE);
        let layout = &self.config.layout;
        if start < layout.min_addr || end > u64::from(layout.task_size) {
            return Err(SpaceError::OutOfUserSpace { addr, len });
        }
        Ok((start, end as u32))
    }

    /// The VMAs overlapping `[start, end)`, in order (copied out so the
    /// caller may change the map).
    fn vmas_overlapping(&self, start: u32, end: u32) -> Vec<Vma> {
        let first = self
            .vmas
            .range(..=start)
            .next_back()
            .filter(|(_, v)| v.end > start)
            .map(|(&k, _)| k)
            .unwrap_or(start);
        self.vmas
            .range(first..end)
            .map(|(_, v)| *v)
            .filter(|v| v.end > start)
            .collect()
    }

    /// The reverse-map entry of the page at `va`.
    fn mapping_of<M, F>(
        &self,
        sys: &MemorySystem<M, F>,
        va: u32,
        pa: PhysAddr,
    ) -> Result<Mapping, SpaceError> {
        sys.frames
            .mappings(pa)?
            .iter()
            .find(|m| m.space == self.id && m.va.as_u32() == va)
            .copied()
            .ok_or(SpaceError::Frame(FrameError::NotMapped {
                pa,
                space: self.id,
                va: VirtAddr(va),
            }))
    }

    /// True if a write fault at resident page `va` would give it a new
    /// frame (copy-on-write) rather than make its frame writable in place
    /// — what the coherence engine must know before the old frame's lines
    /// lose their mapping. When unsure (the books disagree), true.
    pub(crate) fn write_fault_copies<M, F>(&self, sys: &MemorySystem<M, F>, va: VirtAddr) -> bool {
        let page_va = va.as_u32() & !(PAGE - 1);
        let (Some(&pa), Some(vma)) = (self.resident.get(&page_va), self.find_vma(va)) else {
            return false;
        };
        if !vma.prot.contains(Protection::WRITE) {
            return false; // refused: nothing changes
        }
        match self.mapping_of(sys, page_va, pa) {
            Ok(m) if m.writable => false,
            Ok(_) => self.needs_copy(sys, vma, page_va, pa).unwrap_or(true),
            Err(_) => true,
        }
    }

    /// True if a write to private page `va` (frame `pa`) must copy: the
    /// frame is the object's (page cache) or someone else maps it too.
    fn needs_copy<M, F>(
        &self,
        sys: &MemorySystem<M, F>,
        vma: &Vma,
        va: u32,
        pa: PhysAddr,
    ) -> Result<bool, SpaceError> {
        if vma.shared {
            return Ok(false);
        }
        if let Some((id, page)) = vma.object_page(VirtAddr(va))
            && sys.objects.get(id)?.page(page) == Some(pa)
        {
            return Ok(true);
        }
        Ok(sys.frames.mappings(pa)?.len() > 1)
    }

    /// The attributes page `va` of `vma` gets for frame `pa`, and whether
    /// user code may write through it.
    fn attributes_for<M, F>(
        &self,
        sys: &MemorySystem<M, F>,
        vma: &Vma,
        va: u32,
        pa: PhysAddr,
        others: bool,
    ) -> Result<(Attributes, bool), SpaceError> {
        let writable = vma.prot.contains(Protection::WRITE)
            && (vma.shared || (!others && !self.is_object_frame(sys, vma, va, pa)?));
        let access = if writable {
            Access::UserRw
        } else if vma.prot.is_empty() {
            // PROT_NONE: the entry stays (so the page stays resident and
            // in the reverse map), but user code cannot touch it.
            Access::KernelRw
        } else {
            Access::UserRoKernelRw
        };
        let execute = if vma.prot.contains(Protection::EXEC) {
            Execute::Allow
        } else {
            Execute::NeverIfSupported
        };
        Ok((
            Attributes::USER_DATA
                .with_access(access)
                .with_execute(execute),
            writable,
        ))
    }

    fn is_object_frame<M, F>(
        &self,
        sys: &MemorySystem<M, F>,
        vma: &Vma,
        va: u32,
        pa: PhysAddr,
    ) -> Result<bool, SpaceError> {
        Ok(match vma.object_page(VirtAddr(va)) {
            Some((id, page)) => sys.objects.get(id)?.page(page) == Some(pa),
            None => false,
        })
    }

    /// Installs `pa` at `va` (not mapped) and records it.
    fn map_page<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        vma: &Vma,
        va: u32,
        pa: PhysAddr,
    ) -> Result<(), SpaceError> {
        let others = sys.frames.state(pa)?.is_mapped();
        let (attrs, writable) = self.attributes_for(sys, vma, va, pa, others)?;
        sys.frames
            .add_mapping(pa, self.user_mapping(vma, va, writable))?;
        if let Err(e) =
            self.table
                .map_page(&mut sys.mem, &mut sys.table_frames, VirtAddr(va), pa, attrs)
        {
            sys.frames.remove_mapping(pa, self.id, VirtAddr(va))?;
            return Err(e.into());
        }
        self.resident.insert(va, pa);
        Ok(())
    }

    /// Rewrites the entry of resident page `va` for its VMA's current
    /// protection, keeping its memory type (the coherence engine may have
    /// made it uncached).
    fn refresh_entry<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        va: u32,
        pa: PhysAddr,
    ) -> Result<(), SpaceError> {
        let Some(vma) = self.find_vma(VirtAddr(va)).copied() else {
            return Err(SpaceError::NoMapping { va: VirtAddr(va) });
        };
        let others = sys.frames.mappings(pa)?.len() > 1;
        let (attrs, writable) = self.attributes_for(sys, &vma, va, pa, others)?;
        let arch = self.table.arch();
        let current = self
            .table
            .translate(&mut sys.mem, VirtAddr(va))?
            .attributes(arch)
            .map_err(TableError::from)?;
        let attrs = attrs.with_memory(current.memory);
        let flush = self.table.protect_page(&mut sys.mem, VirtAddr(va), attrs)?;
        flush.flush(sys.mem.cache()).map_err(TableError::from)?;
        sys.frames
            .set_writable(pa, self.id, VirtAddr(va), writable)?;
        Ok(())
    }

    /// Removes the page at `va` from the table, the reverse map and the
    /// index; frees its frame if it was private and nobody maps it now.
    fn unmap_page<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        va: u32,
    ) -> Result<(), SpaceError> {
        self.unmap_page_flushing_later(sys, va, None)
    }

    /// [`unmap_page`](Self::unmap_page); with `stale`, its TLB entry is
    /// left there for the caller to flush with the others
    /// ([`flush_together`]).
    fn unmap_page_flushing_later<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        va: u32,
        stale: Option<&mut Vec<TlbFlush>>,
    ) -> Result<(), SpaceError> {
        let Some(pa) = self.resident.remove(&va) else {
            return Ok(());
        };
        let is_object_page = match self.find_vma(VirtAddr(va)).copied() {
            Some(vma) => self.is_object_frame(sys, &vma, va, pa)?,
            None => false,
        };
        let (_, flush) = self.table.unmap_page(&mut sys.mem, VirtAddr(va))?;
        match stale {
            Some(stale) => stale.push(flush),
            None => flush.flush(sys.mem.cache()).map_err(TableError::from)?,
        }
        sys.frames.remove_mapping(pa, self.id, VirtAddr(va))?;
        if !is_object_page && !sys.frames.state(pa)?.is_mapped() {
            sys.release_frame(pa)?;
        }
        Ok(())
    }

    /// Refuses, before anything changes, a call that could take the space
    /// past [`SpaceConfig::max_mappings`] by adding up to `more` VMAs.
    fn check_room(&self, more: u32) -> Result<(), SpaceError> {
        let mappings = self.vmas.len() as u32;
        let limit = self.config.max_mappings;
        if u64::from(mappings) + u64::from(more) > u64::from(limit) {
            return Err(SpaceError::TooManyMappings {
                mappings,
                more,
                limit,
            });
        }
        Ok(())
    }

    /// 1 if `at` lies strictly inside a VMA whose protection is not `prot`
    /// (giving part of it `prot` leaves one more piece; an unchanged
    /// mapping is left whole, as Linux's mprotect leaves it).
    fn splits_at(&self, at: u32, prot: Protection) -> u32 {
        self.find_vma(VirtAddr(at))
            .is_some_and(|v| v.start != at && v.prot != prot)
            .into()
    }

    /// 1 if `[start, end)` lies strictly inside one VMA: removing it leaves
    /// two pieces where there was one.
    fn punches_hole(&self, start: u32, end: u32) -> u32 {
        self.find_vma(VirtAddr(start))
            .is_some_and(|v| v.start != start && v.end > end)
            .into()
    }

    /// Splits the VMA containing `at` (strictly inside it) into two.
    fn split_at<M, F>(&mut self, sys: &mut MemorySystem<M, F>, at: u32) -> Result<(), SpaceError> {
        let Some(vma) = self.find_vma(VirtAddr(at)).copied() else {
            return Ok(());
        };
        if vma.start == at {
            return Ok(());
        }
        let (low, high) = (vma.slice(vma.start, at), vma.slice(at, vma.end));
        self.replace_windows(sys, &[vma], &[low, high])?;
        self.vmas.insert(low.start, low);
        self.vmas.insert(high.start, high);
        Ok(())
    }

    /// Joins the VMAs meeting at `at` if they are compatible.
    fn merge_around<M, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        at: u32,
    ) -> Result<(), SpaceError> {
        let Some(&high) = self.vmas.get(&at) else {
            return Ok(());
        };
        let Some((_, &low)) = self.vmas.range(..at).next_back() else {
            return Ok(());
        };
        if !low.joins(&high) {
            return Ok(());
        }
        let joined = Vma {
            end: high.end,
            ..low
        };
        self.replace_windows(sys, &[low, high], &[joined])?;
        self.vmas.remove(&high.start);
        self.vmas.insert(joined.start, joined);
        Ok(())
    }

    /// Updates object mapper lists when VMAs `old` become `new`.
    fn replace_windows<M, F>(
        &self,
        sys: &mut MemorySystem<M, F>,
        old: &[Vma],
        new: &[Vma],
    ) -> Result<(), SpaceError> {
        for vma in new {
            if let Some((id, window)) = vma.window(self.id) {
                sys.objects.add_mapper(id, window)?;
            }
        }
        for vma in old {
            if let Some((id, window)) = vma.window(self.id) {
                sys.objects.remove_mapper(id, window)?;
            }
        }
        Ok(())
    }

    /// Adds `vma` over free space (the caller has unmapped what was there)
    /// and merges it with compatible neighbours.
    fn insert_vma<M, F>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        vma: Vma,
    ) -> Result<(), SpaceError> {
        self.rebuild_gaps(vma.start, vma.end, |space| {
            space.replace_windows(sys, &[], &[vma])?;
            space.vmas.insert(vma.start, vma);
            space.merge_around(sys, vma.start)?;
            space.merge_around(sys, vma.end)
        })
    }

    /// Unmaps `[start, end)`: resident pages, then the VMAs (split at the
    /// ends), then shared anonymous objects nobody maps any more.
    fn unmap_range<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        start: u32,
        end: u32,
    ) -> Result<(), SpaceError> {
        let mut orphans = Vec::new();
        let result = self.unmap_range_keeping_objects(sys, start, end, &mut orphans, None);
        let reaped = self.destroy_orphans(sys, &orphans);
        result.and(reaped)
    }

    /// Destroys the shared anonymous objects of `candidates` that nobody
    /// maps (a shared anonymous region lives as long as its mappings),
    /// freeing their frames.
    fn destroy_orphans<M: TableMemory, F: TableFrames>(
        &self,
        sys: &mut MemorySystem<M, F>,
        candidates: &[ObjectId],
    ) -> Result<(), SpaceError> {
        for (i, &id) in candidates.iter().enumerate() {
            // Once per object: a split VMA can list it twice.
            if candidates[..i].contains(&id) {
                continue;
            }
            let Ok(object) = sys.objects.get(id) else {
                continue;
            };
            if object.kind() == ObjectKind::SharedAnonymous && object.mappers().is_empty() {
                for pa in sys.objects.destroy(id)? {
                    sys.release_frame(pa)?;
                }
            }
        }
        Ok(())
    }

    /// [`unmap_range`](Self::unmap_range) without destroying objects: the
    /// objects of the VMAs removed are added to `orphans`, for the caller
    /// to pass to [`destroy_orphans`](Self::destroy_orphans) when it is done.
    fn unmap_range_keeping_objects<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        start: u32,
        end: u32,
        orphans: &mut Vec<ObjectId>,
        mut stale: Option<&mut Vec<TlbFlush>>,
    ) -> Result<(), SpaceError> {
        let pages: Vec<u32> = self.resident.range(start..end).map(|(&va, _)| va).collect();
        for va in pages {
            self.unmap_page_flushing_later(sys, va, stale.as_deref_mut())?;
        }
        self.rebuild_gaps(start, end, |space| {
            space.split_at(sys, start)?;
            space.split_at(sys, end)?;
            let doomed: Vec<Vma> = space.vmas.range(start..end).map(|(_, v)| *v).collect();
            orphans.try_reserve(doomed.len())?;
            space.replace_windows(sys, &doomed, &[])?;
            for vma in &doomed {
                space.vmas.remove(&vma.start);
                if let Backing::Object { id, .. } = vma.backing {
                    orphans.push(id);
                }
            }
            Ok(())
        })?;
        // The break is left where it is even if the heap was unmapped under
        // it, as Linux does: a later brk grows from there if the space is free.
        Ok(())
    }

    /// Runs `change` (which alters VMAs only inside `[start, end)`, and the
    /// VMAs crossing its ends) and recomputes the free ranges around it.
    fn rebuild_gaps(
        &mut self,
        start: u32,
        end: u32,
        change: impl FnOnce(&mut Self) -> Result<(), SpaceError>,
    ) -> Result<(), SpaceError> {
        let layout = self.config.layout;
        // The zone: from the end of the last VMA wholly below `start` to the
        // start of the first wholly above `end`. Those two do not change,
        // so every gap that can change starts inside the zone.
        let low = self
            .vmas
            .range(..start)
            .rev()
            .find(|(_, v)| v.end <= start)
            .map_or(layout.min_addr, |(_, v)| v.end);
        let high = self
            .vmas
            .range(end..)
            .next()
            .map_or(layout.task_size, |(&k, _)| k);
        let mut old_gaps = Vec::new();
        old_gaps.try_reserve(2)?;
        old_gaps.push(u64::from(low));
        for vma in self.vmas.range(low..high).map(|(_, v)| v) {
            old_gaps.push(u64::from(vma.end));
        }
        change(self)?;
        for gap_start in old_gaps {
            self.gaps.remove(gap_start);
        }
        let mut cursor = low;
        let guard = self.config.stack_guard_gap;
        let below = |vma: Option<&Vma>, at: u32| match vma {
            Some(v) if v.stack => at.saturating_sub(guard),
            _ => at,
        };
        let inside: Vec<Vma> = self
            .vmas
            .range(..high)
            .rev()
            .take_while(|(_, v)| v.end > low)
            .map(|(_, v)| *v)
            .collect();
        for vma in inside.iter().rev() {
            let gap_end = below(Some(vma), vma.start);
            if gap_end > cursor {
                self.gaps.insert(Gap {
                    start: u64::from(cursor),
                    end: u64::from(gap_end),
                })?;
            }
            cursor = cursor.max(vma.end);
        }
        let gap_end = below(self.vmas.get(&high), high);
        if gap_end > cursor {
            self.gaps.insert(Gap {
                start: u64::from(cursor),
                end: u64::from(gap_end),
            })?;
        }
        Ok(())
    }
}

/// Pages past which flushing a teardown's TLB entries one by one costs
/// more than flushing the whole TLB: the main TLB of the ARM926EJ-S holds
/// 64 entries (DDI 0198 §3.1; the ARM11s' also 64, DDI 0301 §6.2), so no
/// more than that many can be live.
const TLB_ENTRIES: usize = 64;

/// Flushes the TLB entries of many unmapped pages: one invalidate by ASID
/// when they are all non-global entries of one ASID (ARMv6), the whole TLB
/// when they are more than it holds (ARMv5, whose TLB has no ASIDs), else
/// each page by its address.
fn flush_together<C: crate::cache::CacheMaintenance + ?Sized>(
    cpu: &mut C,
    stale: Vec<TlbFlush>,
) -> Result<(), crate::cache::MaintenanceError> {
    let first = stale.first().and_then(TlbFlush::asid);
    if let Some(asid) = first
        && stale.len() > 1
        && stale.iter().all(|f| f.asid() == first)
    {
        cpu.invalidate_tlb_asid(asid)?;
        cpu.synchronize_context();
        stale.into_iter().for_each(TlbFlush::ignore);
        return Ok(());
    }
    if stale.iter().map(|f| f.addresses().count()).sum::<usize>() > TLB_ENTRIES {
        cpu.invalidate_tlb_all();
        cpu.synchronize_context();
        stale.into_iter().for_each(TlbFlush::ignore);
        return Ok(());
    }
    for flush in stale {
        flush.flush(cpu)?;
    }
    Ok(())
}
