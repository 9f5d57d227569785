//! Translation tables: one L1 table (16 KiB) per address space and coarse L2
//! tables (1 KiB) allocated four to a 4 KiB frame.
//!
//! ```text
//!   L1 index i = va >> 20 ──▶ coarse table at frame(i & !3) + (i & 3) × 1 KiB
//!                              (the four L1 entries of a 4 MiB-aligned region
//!                               share one frame from TableFrames)
//! ```
//!
//! Two obligations no caller can forget:
//! - **Descriptor writes reach memory.** The table walkers of the ARM926 and
//!   ARM11 read memory, not the D-cache (seed 003), so every write goes
//!   through [`TableMemory`] and is followed by a clean of its line through
//!   the [`CacheMaintenance`] trait (range clean, which ends with a drain).
//! - **Stale TLB entries are flushed.** Every operation that changes or
//!   removes a valid entry returns a `#[must_use]` [`TlbFlush`], consumed by
//!   [`TlbFlush::flush`] or, deliberately, [`TlbFlush::ignore`] — the
//!   `x86_64` crate's `MapperFlush`. Filling a fault entry returns nothing:
//!   these TLBs never hold translation faults.
//!
//! FCSE (ARMv5): an address space with PID `p` is reached at modified
//! virtual addresses `p × 32 MiB + va` for `va` below 32 MiB. While it holds
//! a PID, its 32 L1 entries for 0–32 MiB live at the PID's window, where the
//! walker reads them (the canonical slots are copied there when the PID is
//! given and written back when it goes), so moving to another PID rewrites
//! 64 words, not the coarse tables. (On ARMv6, where the context key is the
//! ASID, the canonical slots stay live and the window is a mirror.)

use core::fmt;

use super::keys::SpaceKey;
use super::slots::SlotSet;
use super::{Arch, Attributes, DescriptorError, HwAttrs, L1Descriptor, L2Descriptor};
use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::cache::{CacheMaintenance, MaintenanceError};

/// Bytes of address space one FCSE PID window covers (and that an address
/// space must fit in to get a PID).
pub const FCSE_WINDOW_BYTES: u32 = 32 << 20;

const L1_ENTRIES: u32 = 4096;
const L1_BYTES: u32 = 16 * 1024;
const COARSE_BYTES: u32 = 1024;
const FRAME_BYTES: u32 = 4096;
const SECTION_BYTES: u32 = 1 << 20;
const WINDOW_ENTRIES: u32 = FCSE_WINDOW_BYTES / SECTION_BYTES;
/// The largest FCSE PID (a 7-bit field): its window ends at 0xFFFF_FFFF.
const MAX_FCSE_PID: u8 = 127;

/// How the kernel reads and writes table frames: through its own (cached)
/// mapping of them. Implemented by the embedding kernel (on target), by the
/// cache model (host), and by test doubles.
pub trait TableMemory {
    /// The maintenance used to clean descriptor writes (and flush TLBs).
    type Cache: CacheMaintenance;

    /// Reads the word at physical address `pa` (4-byte aligned).
    fn read_word(&mut self, pa: PhysAddr) -> Result<u32, TableError>;

    /// Writes the word at physical address `pa` (4-byte aligned).
    fn write_word(&mut self, pa: PhysAddr, value: u32) -> Result<(), TableError>;

    /// The kernel virtual address at which `pa` is read and written (the
    /// address whose cache line is cleaned after a write).
    fn kernel_va(&self, pa: PhysAddr) -> VirtAddr;

    /// The CPU's (or model's) maintenance operations.
    fn cache(&mut self) -> &mut Self::Cache;
}

/// Where coarse tables come from: 4 KiB frames, 4 KiB aligned, each used for
/// up to four coarse tables.
pub trait TableFrames {
    /// A free, 4 KiB-aligned frame, or `None` when there is none.
    fn allocate_table_frame(&mut self) -> Option<PhysAddr>;

    /// Takes back a frame [`allocate_table_frame`](Self::allocate_table_frame)
    /// returned.
    fn free_table_frame(&mut self, frame: PhysAddr);
}

/// The modified virtual address of `va` under FCSE PID `pid` (`None`: no
/// PID): the FCSE relocates addresses below 32 MiB into the PID's window
/// (ARM926EJ-S TRM, "Fast Context Switch Extension"), and leaves the rest
/// alone.
pub fn fcse_modified_va(pid: Option<u8>, va: VirtAddr) -> VirtAddr {
    match pid {
        Some(pid) if va.0 < FCSE_WINDOW_BYTES => {
            VirtAddr(u32::from(pid) * FCSE_WINDOW_BYTES + va.0)
        }
        _ => va,
    }
}

/// Whether two mappings of one frame, `a` in one space and `b` in
/// another (or the same), can hold separate lines in a VIVT cache: they do
/// unless their modified virtual addresses are equal. Two spaces kept apart
/// by FCSE PIDs are *not* spared: a frame they share is aliased.
pub fn vivt_aliases(a: (&PageTable, VirtAddr), b: (&PageTable, VirtAddr)) -> bool {
    let line = |(table, va): (&PageTable, VirtAddr)| table.modified_va(va).align_down(4096);
    line(a) != line(b)
}

/// Looks `va` up in the tables at `l1` the way the hardware table walker
/// does: one L1 word, and for a coarse table one L2 word, each fetched with
/// `read` (the kernel reads through its cache, the `sim`
/// model's walker and a QEMU plugin read memory). `va` is the modified
/// virtual address (FCSE already applied). `l1` must be 16 KiB aligned,
/// as TTBR0's base field is ([`TableError::MisalignedTable`]).
pub fn walk(
    read: &mut dyn FnMut(PhysAddr) -> Result<u32, TableError>,
    l1: PhysAddr,
    arch: Arch,
    va: VirtAddr,
) -> Result<Translation, TableError> {
    // Aligned, the table ends by 0xFFFF_FFFF: the entry address cannot wrap.
    if !l1.is_aligned(L1_BYTES) {
        return Err(TableError::MisalignedTable {
            table: l1,
            alignment: L1_BYTES,
        });
    }
    let raw = read(PhysAddr(l1.0 + (va.0 >> 20) * 4))?;
    let (translation_base, size, attrs) = match L1Descriptor::decode(raw, arch)? {
        L1Descriptor::Fault => return Err(TableError::NotMapped { va }),
        L1Descriptor::Section { base, attrs, .. } => (base, PageSize::Section, attrs),
        L1Descriptor::Supersection { base, attrs } => (base, PageSize::Supersection, attrs),
        L1Descriptor::Fine { .. } => {
            return Err(TableError::ForeignEntry {
                va,
                descriptor: raw,
            });
        }
        L1Descriptor::Coarse { table, .. } => {
            let slot = PhysAddr(table.0 + ((va.0 >> 12) & 0xff) * 4);
            match L2Descriptor::decode(read(slot)?, arch)? {
                L2Descriptor::Fault => return Err(TableError::NotMapped { va }),
                L2Descriptor::Large { base, attrs } => (base, PageSize::Large, attrs),
                L2Descriptor::Small { base, attrs } => (base, PageSize::Small, attrs),
            }
        }
    };
    Ok(Translation {
        pa: PhysAddr(translation_base.0 | (va.0 & (size.bytes() - 1))),
        size,
        attrs,
    })
}

/// What one translation maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageSize {
    /// 4 KiB small page.
    Small,
    /// 64 KiB large page.
    Large,
    /// 1 MiB section.
    Section,
    /// 16 MiB supersection (ARMv6).
    Supersection,
}

impl PageSize {
    /// Its size and name, for messages ("1 MiB section").
    const fn name(self) -> &'static str {
        match self {
            PageSize::Small => "4 KiB small page",
            PageSize::Large => "64 KiB large page",
            PageSize::Section => "1 MiB section",
            PageSize::Supersection => "16 MiB supersection",
        }
    }

    /// Bytes mapped.
    pub const fn bytes(self) -> u32 {
        match self {
            PageSize::Small => 4 << 10,
            PageSize::Large => 64 << 10,
            PageSize::Section => 1 << 20,
            PageSize::Supersection => 16 << 20,
        }
    }
}

/// The result of a table lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Physical address of the byte at the looked-up virtual address.
    pub pa: PhysAddr,
    /// Size of the page or section mapping it.
    pub size: PageSize,
    /// Its attribute bits.
    pub attrs: HwAttrs,
}

impl Translation {
    /// The typed attributes, when the bits are a combination vacmm knows.
    pub fn attributes(&self, arch: Arch) -> Result<Attributes, DescriptorError> {
        Attributes::from_hw(self.attrs, arch)
    }
}

/// TLB entries a table change left stale. Must be flushed (or ignored on
/// purpose): dropping it unused is a compiler warning.
#[must_use = "the TLB may still hold the old translation: call .flush(cpu) or .ignore()"]
#[derive(Debug, PartialEq, Eq)]
pub struct TlbFlush {
    /// The (modified) virtual addresses whose entries are stale.
    pages: [Option<VirtAddr>; 2],
    /// The ASID the stale entries are tagged with (ARMv6 nG entries).
    asid: Option<u8>,
}

impl TlbFlush {
    /// Addresses whose TLB entries are stale.
    pub fn addresses(&self) -> impl Iterator<Item = VirtAddr> + '_ {
        self.pages.iter().flatten().copied()
    }

    /// The ASID the stale entries carry, for non-global ARMv6 entries.
    pub fn asid(&self) -> Option<u8> {
        self.asid
    }

    /// Invalidates the stale entries (by MVA, with the ASID for non-global
    /// ARMv6 entries) and synchronises the CPU's context.
    pub fn flush<C: CacheMaintenance + ?Sized>(self, cpu: &mut C) -> Result<(), MaintenanceError> {
        for va in self.pages.iter().flatten() {
            match self.asid {
                Some(asid) => cpu.invalidate_tlb_page_asid(*va, asid)?,
                None => cpu.invalidate_tlb_page(*va),
            }
        }
        cpu.synchronize_context();
        Ok(())
    }

    /// Drops the obligation: the caller flushes otherwise (e.g. the whole
    /// TLB after a batch, or the address space has never run).
    pub fn ignore(self) {}
}

/// Why a table operation failed. Nothing was changed unless said otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TableError {
    /// An address is not aligned to the size being mapped.
    Unaligned {
        /// Which address.
        what: &'static str,
        /// Its value.
        address: u32,
        /// The alignment required.
        alignment: u32,
    },
    /// Something is already mapped there.
    AlreadyMapped {
        /// The virtual address asked for.
        va: VirtAddr,
        /// The raw descriptor found (L1 for sections, L2 for pages).
        descriptor: u32,
    },
    /// Nothing is mapped there.
    NotMapped {
        /// The virtual address asked for.
        va: VirtAddr,
    },
    /// The page lies inside a section or supersection; vacmm does not split
    /// sections behind the caller's back.
    WouldSplitSection {
        /// The virtual address asked for.
        va: VirtAddr,
        /// Where the section starts.
        section: VirtAddr,
        /// Section or supersection.
        size: PageSize,
    },
    /// The page lies inside a 64 KiB large page.
    WouldSplitLargePage {
        /// The virtual address asked for.
        va: VirtAddr,
    },
    /// A section operation found a page table there, or the reverse.
    SizeMismatch {
        /// The virtual address asked for.
        va: VirtAddr,
        /// What is mapped there.
        mapped: PageSize,
    },
    /// The frame allocator had no frame for a new coarse table.
    OutOfFrames {
        /// The virtual address that needed the table.
        va: VirtAddr,
    },
    /// A table address (caller's L1, or a frame from the allocator) is not
    /// aligned as the hardware requires.
    MisalignedTable {
        /// The address.
        table: PhysAddr,
        /// The alignment required.
        alignment: u32,
    },
    /// An entry vacmm does not manage (an ARMv5 fine table).
    ForeignEntry {
        /// The virtual address asked for.
        va: VirtAddr,
        /// The raw L1 descriptor.
        descriptor: u32,
    },
    /// An FCSE PID window overlaps mappings of this table.
    WindowInUse {
        /// The PID.
        pid: u8,
        /// The first mapped address in its window.
        va: VirtAddr,
    },
    /// The table memory could not be accessed at `pa` (a model's bounds).
    Memory {
        /// The physical address.
        pa: PhysAddr,
    },
    /// An FCSE PID outside 1..=127: PID 0 is the canonical window itself,
    /// and 128 and up would put the window past the 4 GiB the L1 table
    /// covers (a PID is 7 bits).
    PidOutOfRange {
        /// The PID given.
        pid: u8,
    },
    /// A descriptor could not be encoded or decoded.
    Descriptor(DescriptorError),
    /// A TLB or cache operation the change needs is missing on this CPU.
    Maintenance(MaintenanceError),
    /// The page entry for `va` was handed out by
    /// [`PageTable::reserve_page_slot`]: only its [`PageSlot`] may change it.
    ReservedSlot {
        /// The virtual address asked for.
        va: VirtAddr,
    },
    /// The heap could not hold the table's record of reserved slots.
    MetadataAllocFailed,
}

impl From<DescriptorError> for TableError {
    fn from(e: DescriptorError) -> Self {
        TableError::Descriptor(e)
    }
}

impl From<MaintenanceError> for TableError {
    fn from(e: MaintenanceError) -> Self {
        TableError::Maintenance(e)
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TableError::Unaligned {
                what,
                address,
                alignment,
            } => write!(
                f,
                "the {what} {address:#010x} is not aligned to {alignment:#x}"
            ),
            TableError::AlreadyMapped { va, descriptor } => write!(
                f,
                "virtual address {va} is already mapped (descriptor {descriptor:#010x})"
            ),
            TableError::NotMapped { va } => write!(f, "virtual address {va} is not mapped"),
            TableError::WouldSplitSection { va, section, size } => write!(
                f,
                "virtual address {va} lies in the {} at {section}, which vacmm does not split: \
                 unmap it first",
                size.name()
            ),
            TableError::WouldSplitLargePage { va } => write!(
                f,
                "virtual address {va} lies in a 64 KiB large page, which vacmm does not split: \
                 unmap it first"
            ),
            TableError::SizeMismatch { va, mapped } => write!(
                f,
                "virtual address {va} is mapped by a {}, not by an entry of the size this \
                 operation changes",
                mapped.name()
            ),
            TableError::OutOfFrames { va } => write!(
                f,
                "no free frame for the second-level page table needed at virtual address {va}"
            ),
            TableError::MisalignedTable { table, alignment } => write!(
                f,
                "the page table at {table} is not aligned to {alignment:#x} as the hardware \
                 requires"
            ),
            TableError::ForeignEntry { va, descriptor } => write!(
                f,
                "virtual address {va} is described by the L1 descriptor {descriptor:#010x}, \
                 which vacmm does not manage (such as an ARMv5 fine table)"
            ),
            TableError::WindowInUse { pid, va } => write!(
                f,
                "the window of FCSE PID {pid} is already in use: this table maps {va} in it"
            ),
            TableError::Memory { pa } => write!(
                f,
                "the page-table memory at physical address {pa} is not accessible"
            ),
            TableError::PidOutOfRange { pid } => write!(
                f,
                "the FCSE PID {pid} is outside 1..={MAX_FCSE_PID} (PID 0 is the window itself, \
                 and a PID has 7 bits)"
            ),
            TableError::Descriptor(e) => write!(f, "{e}"),
            TableError::Maintenance(e) => write!(f, "{e}"),
            TableError::ReservedSlot { va } => write!(
                f,
                "virtual address {va} is a reserved kernel slot (a kernel window): only its \
                 owner maps it"
            ),
            TableError::MetadataAllocFailed => {
                f.write_str("could not allocate the page table's record of reserved slots")
            }
        }
    }
}

/// The message includes the cause's, so a kernel printing one line loses
/// nothing; `source` gives the cause as a value.
impl core::error::Error for TableError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            TableError::Descriptor(e) => Some(e),
            TableError::Maintenance(e) => Some(e),
            _ => None,
        }
    }
}

fn check_aligned(what: &'static str, address: u32, alignment: u32) -> Result<(), TableError> {
    if address.is_multiple_of(alignment) {
        Ok(())
    } else {
        Err(TableError::Unaligned {
            what,
            address,
            alignment,
        })
    }
}

/// Writes a descriptor and cleans its line, so the walker sees it.
fn write_descriptor<M: TableMemory>(mem: &mut M, pa: PhysAddr, raw: u32) -> Result<(), TableError> {
    mem.write_word(pa, raw)?;
    clean(mem, pa, 4)
}

fn clean<M: TableMemory>(mem: &mut M, pa: PhysAddr, len: u32) -> Result<(), TableError> {
    let range =
        VirtRange::new(mem.kernel_va(pa), u64::from(len)).map_err(|_| TableError::Memory { pa })?;
    mem.cache().clean_dcache_range(range);
    Ok(())
}

/// Zeroes `len` bytes of table memory and cleans them.
fn zero<M: TableMemory>(mem: &mut M, pa: PhysAddr, len: u32) -> Result<(), TableError> {
    for offset in (0..len).step_by(4) {
        mem.write_word(PhysAddr(pa.0 + offset), 0)?;
    }
    clean(mem, pa, len)
}

/// Why an operation at `va` cannot use the L1 entry `entry` (raw `raw`):
/// a section or supersection covers it, or it is a table vacmm does not
/// manage. Faults and coarse tables are the callers' own cases.
fn not_a_coarse_table(va: VirtAddr, raw: u32, entry: L1Descriptor) -> TableError {
    match entry {
        L1Descriptor::Section { .. } => TableError::WouldSplitSection {
            va,
            section: va.align_down(SECTION_BYTES),
            size: PageSize::Section,
        },
        L1Descriptor::Supersection { .. } => TableError::WouldSplitSection {
            va,
            section: va.align_down(16 * SECTION_BYTES),
            size: PageSize::Supersection,
        },
        _ => TableError::ForeignEntry {
            va,
            descriptor: raw,
        },
    }
}

/// One small-page entry of a kernel table reserved by
/// [`PageTable::reserve_page_slot`]: a global mapping its owner points at
/// one frame after another. It is the only handle on the entry, so it is
/// neither `Clone` nor `Copy`: two owners could map it at once.
#[derive(Debug, PartialEq, Eq)]
pub struct PageSlot {
    va: VirtAddr,
    slot: PhysAddr,
    arch: Arch,
}

impl PageSlot {
    /// The virtual address the slot maps.
    pub fn va(&self) -> VirtAddr {
        self.va
    }

    /// Points the slot at `pa` (cleaned for the table walker). The slot
    /// must be empty: no TLB entry can hold it.
    pub fn map<M: TableMemory>(
        &self,
        mem: &mut M,
        pa: PhysAddr,
        attrs: Attributes,
    ) -> Result<(), TableError> {
        check_aligned("physical address", pa.0, PageSize::Small.bytes())?;
        let raw = L2Descriptor::Small {
            base: pa,
            attrs: attrs.to_hw(self.arch)?,
        }
        .encode(self.arch)?;
        write_descriptor(mem, self.slot, raw)
    }

    /// Empties the slot; returns the TLB flush owed for its address.
    pub fn unmap<M: TableMemory>(&self, mem: &mut M) -> Result<TlbFlush, TableError> {
        write_descriptor(mem, self.slot, 0)?;
        Ok(TlbFlush {
            pages: [Some(self.va), None],
            asid: None,
        })
    }
}

/// One address space's translation tables and its cache/TLB key.
pub struct PageTable {
    l1: PhysAddr,
    arch: Arch,
    domain: u8,
    /// Bit i: the coarse table behind L1 entry i lives in a frame this table
    /// allocated (not one shared from another table).
    owned: [u32; (L1_ENTRIES / 32) as usize],
    /// The FCSE PID whose window holds entries 0..32 (ARMv5; a mirror on
    /// ARMv6).
    fcse_window: Option<u8>,
    /// Whether every non-global mapping lies below 32 MiB (FCSE eligibility).
    fits_fcse_window: bool,
    pub(super) key: SpaceKey,
    /// Page addresses handed out by [`reserve_page_slot`](Self::reserve_page_slot)
    /// (sorted): `map_page`, `unmap_page` and `protect_page` refuse them,
    /// since a mapping put there would be overwritten by the slot's next
    /// use, and a change made there would undo the slot owner's.
    reserved: SlotSet,
}

impl fmt::Debug for PageTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageTable")
            .field("l1", &self.l1)
            .field("arch", &self.arch)
            .field("fcse_window", &self.fcse_window)
            .field("key", &self.key)
            .field("reserved", &self.reserved.len())
            .finish()
    }
}

impl PageTable {
    /// Takes the 16 KiB at `l1` (16 KiB aligned, owned by the caller until
    /// [`release`](Self::release)) as an empty L1 table: zeroed and cleaned.
    pub fn new<M: TableMemory>(mem: &mut M, l1: PhysAddr, arch: Arch) -> Result<Self, TableError> {
        if !l1.is_aligned(L1_BYTES) {
            return Err(TableError::MisalignedTable {
                table: l1,
                alignment: L1_BYTES,
            });
        }
        zero(mem, l1, L1_BYTES)?;
        Ok(PageTable {
            l1,
            arch,
            domain: 0,
            owned: [0; (L1_ENTRIES / 32) as usize],
            fcse_window: None,
            fits_fcse_window: false,
            key: SpaceKey::UNASSIGNED,
            reserved: SlotSet::default(),
        })
    }

    /// Physical address of the L1 table (for TTBR0 / TTBR1).
    pub fn l1(&self) -> PhysAddr {
        self.l1
    }

    /// The descriptor format.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The key (ASID or FCSE PID) this space holds, if any.
    pub fn key(&self) -> SpaceKey {
        self.key
    }

    /// The FCSE PID whose window holds entries 0..32, if any.
    pub fn fcse_window(&self) -> Option<u8> {
        self.fcse_window
    }

    /// The modified virtual address at which the CPU — and so a VIVT cache
    /// — sees `va` of this space: relocated into its FCSE window when it
    /// holds a PID and `va` is below 32 MiB, else `va` itself.
    ///
    /// The coherence layer compares these, not plain addresses: one frame
    /// mapped at the same `va` in two PID-keyed spaces sits at two different
    /// modified addresses, i.e. in two different VIVT lines — an alias that
    /// must be maintained like any other (see [`vivt_aliases`]).
    pub fn modified_va(&self, va: VirtAddr) -> VirtAddr {
        fcse_modified_va(self.fcse_window, va)
    }

    /// Declares whether every mapping private to this space lies below
    /// 32 MiB, so that the space may run under an FCSE PID (ARMv5). The
    /// owner of the address space (it knows its VMAs) keeps this true only
    /// while it holds; the default is `false`, which costs a cache flush per
    /// switch but is always correct.
    pub fn set_fits_fcse_window(&mut self, fits: bool) {
        self.fits_fcse_window = fits;
    }

    /// Whether the space may run under an FCSE PID.
    pub fn fits_fcse_window(&self) -> bool {
        self.fits_fcse_window
    }

    fn entry_pa(&self, index: u32) -> PhysAddr {
        PhysAddr(self.l1.0 + index * 4)
    }

    /// Where the walker reads L1 entry `index`: on ARMv5 under a PID the
    /// entries for 0–32 MiB live in the PID's window (FCSE relocates every
    /// address below 32 MiB, so the canonical slots are not walked until
    /// the PID goes, when `set_fcse_window` copies the window back). Keeping
    /// one live copy costs one descriptor write, as a table without FCSE
    /// pays; writing both cost a second write and clean per entry (issue
    /// 24). On ARMv6 the context key is the ASID and the canonical slots
    /// are walked: the window is only a mirror there.
    fn live_index(&self, index: u32) -> u32 {
        match self.fcse_window {
            Some(pid) if self.arch == Arch::Armv5 && index < WINDOW_ENTRIES => {
                u32::from(pid) * WINDOW_ENTRIES + index
            }
            _ => index,
        }
    }

    fn is_owned(&self, index: u32) -> bool {
        self.owned[(index / 32) as usize] >> (index % 32) & 1 == 1
    }

    fn set_owned(&mut self, index: u32, owned: bool) {
        let word = &mut self.owned[(index / 32) as usize];
        if owned {
            *word |= 1 << (index % 32);
        } else {
            *word &= !(1 << (index % 32));
        }
    }

    fn read_l1<M: TableMemory>(
        &self,
        mem: &mut M,
        index: u32,
    ) -> Result<(u32, L1Descriptor), TableError> {
        let raw = mem.read_word(self.entry_pa(self.live_index(index)))?;
        Ok((raw, L1Descriptor::decode(raw, self.arch)?))
    }

    /// Writes L1 entry `index` where the walker reads it (see
    /// `live_index`) and, on ARMv6 below 32 MiB, its FCSE mirror.
    fn write_l1<M: TableMemory>(
        &self,
        mem: &mut M,
        index: u32,
        raw: u32,
    ) -> Result<(), TableError> {
        write_descriptor(mem, self.entry_pa(self.live_index(index)), raw)?;
        if let Some(pid) = self.fcse_window
            && self.arch == Arch::Armv6
            && index < WINDOW_ENTRIES
        {
            write_descriptor(
                mem,
                self.entry_pa(u32::from(pid) * WINDOW_ENTRIES + index),
                raw,
            )?;
        }
        Ok(())
    }

    /// The stale-TLB token for `va`, tagged as the entry was.
    fn tlb_flush(&self, va: VirtAddr, not_global: bool) -> TlbFlush {
        let asid = match (self.arch, not_global) {
            // A table never given an ASID may still have run: `enable_mmu`
            // makes the kernel's table live with CONTEXTIDR = 0, so its nG
            // entries can sit in the TLB under ASID 0.
            (Arch::Armv6, true) => Some(self.key.value().unwrap_or(0)),
            _ => None,
        };
        // Under a PID the TLB holds the window's (modified) address only:
        // the ARM926's TLB is untagged, so every switch to or from this
        // table flushes all of it (`ContextSwitcher`), and while the table
        // runs with its PID no access uses the unmodified address (FCSE
        // relocates every address below 32 MiB). Flushing both, as this
        // did, cost an extra TLB operation per page (issue 24).
        // (On ARMv6 the context key a switch writes is the ASID, not the
        // FCSE PID: the unmodified address is the live one, and both go.)
        match self.fcse_window {
            Some(pid) if va.0 < FCSE_WINDOW_BYTES => {
                let mirror = VirtAddr(u32::from(pid) * FCSE_WINDOW_BYTES + va.0);
                let unmodified = (self.arch == Arch::Armv6).then_some(va);
                TlbFlush {
                    pages: [Some(mirror), unmodified],
                    asid,
                }
            }
            _ => TlbFlush {
                pages: [Some(va), None],
                asid,
            },
        }
    }

    /// The coarse table behind `va`'s L1 entry, creating it if the entry is
    /// a fault.
    fn coarse_table_for<M: TableMemory, F: TableFrames>(
        &mut self,
        mem: &mut M,
        frames: &mut F,
        va: VirtAddr,
    ) -> Result<PhysAddr, TableError> {
        let index = va.0 >> 20;
        let (raw, entry) = self.read_l1(mem, index)?;
        match entry {
            L1Descriptor::Coarse { table, .. } => Ok(table),
            L1Descriptor::Fault => {
                let frame = match self.owned_sibling_frame(mem, index)? {
                    Some(frame) => frame,
                    None => {
                        let frame = frames
                            .allocate_table_frame()
                            .ok_or(TableError::OutOfFrames { va })?;
                        if !frame.is_aligned(FRAME_BYTES) {
                            frames.free_table_frame(frame);
                            return Err(TableError::MisalignedTable {
                                table: frame,
                                alignment: FRAME_BYTES,
                            });
                        }
                        zero(mem, frame, FRAME_BYTES)?;
                        frame
                    }
                };
                let table = PhysAddr(frame.0 + (index & 3) * COARSE_BYTES);
                let raw = L1Descriptor::Coarse {
                    table,
                    domain: self.domain,
                }
                .encode(self.arch)?;
                self.write_l1(mem, index, raw)?;
                self.set_owned(index, true);
                Ok(table)
            }
            other => Err(not_a_coarse_table(va, raw, other)),
        }
    }

    /// The frame holding the coarse tables of `index`'s 4 MiB group, if this
    /// table allocated one for a sibling entry.
    fn owned_sibling_frame<M: TableMemory>(
        &self,
        mem: &mut M,
        index: u32,
    ) -> Result<Option<PhysAddr>, TableError> {
        let group = index & !3;
        for sibling in group..group + 4 {
            if sibling == index || !self.is_owned(sibling) {
                continue;
            }
            if let (_, L1Descriptor::Coarse { table, .. }) = self.read_l1(mem, sibling)? {
                return Ok(Some(table.align_down(FRAME_BYTES)));
            }
        }
        Ok(None)
    }

    /// The L2 slot for `va` and what it holds.
    fn l2_slot<M: TableMemory>(
        &self,
        mem: &mut M,
        va: VirtAddr,
    ) -> Result<(PhysAddr, u32, L2Descriptor), TableError> {
        let (raw, entry) = self.read_l1(mem, va.0 >> 20)?;
        match entry {
            L1Descriptor::Coarse { table, .. } => {
                let slot = PhysAddr(table.0 + ((va.0 >> 12) & 0xff) * 4);
                let raw = mem.read_word(slot)?;
                Ok((slot, raw, L2Descriptor::decode(raw, self.arch)?))
            }
            L1Descriptor::Fault => Err(TableError::NotMapped { va }),
            other => Err(not_a_coarse_table(va, raw, other)),
        }
    }

    /// Maps the 4 KiB page at `va` to the frame at `pa`. Creates the coarse
    /// table if needed (from `frames`). No TLB flush is owed: the entry was a
    /// fault.
    pub fn map_page<M: TableMemory, F: TableFrames>(
        &mut self,
        mem: &mut M,
        frames: &mut F,
        va: VirtAddr,
        pa: PhysAddr,
        attrs: Attributes,
    ) -> Result<(), TableError> {
        check_aligned("virtual address", va.0, PageSize::Small.bytes())?;
        check_aligned("physical address", pa.0, PageSize::Small.bytes())?;
        self.check_not_reserved(va)?;
        let raw = L2Descriptor::Small {
            base: pa,
            attrs: attrs.to_hw(self.arch)?,
        }
        .encode(self.arch)?;
        let table = self.coarse_table_for(mem, frames, va)?;
        let slot = PhysAddr(table.0 + ((va.0 >> 12) & 0xff) * 4);
        let existing = mem.read_word(slot)?;
        if L2Descriptor::decode(existing, self.arch) != Ok(L2Descriptor::Fault) {
            return Err(TableError::AlreadyMapped {
                va,
                descriptor: existing,
            });
        }
        write_descriptor(mem, slot, raw)
    }

    /// Reserves the page entry for `va` for a caller that rewrites it in
    /// place many times (the coherence engine's kernel windows): creates
    /// the coarse table if needed and checks the entry is free. The slot
    /// bypasses the mapping calls, which refuse `va` from now on
    /// ([`TableError::ReservedSlot`]); the caller owns it until
    /// [`unreserve_page_slot`](Self::unreserve_page_slot).
    pub fn reserve_page_slot<M: TableMemory, F: TableFrames>(
        &mut self,
        mem: &mut M,
        frames: &mut F,
        va: VirtAddr,
    ) -> Result<PageSlot, TableError> {
        check_aligned("virtual address", va.0, PageSize::Small.bytes())?;
        self.reserved.prepare(va.0)?;
        let table = self.coarse_table_for(mem, frames, va)?;
        let slot = PhysAddr(table.0 + ((va.0 >> 12) & 0xff) * 4);
        let existing = mem.read_word(slot)?;
        if L2Descriptor::decode(existing, self.arch) != Ok(L2Descriptor::Fault) {
            return Err(TableError::AlreadyMapped {
                va,
                descriptor: existing,
            });
        }
        self.reserved.commit(va.0);
        Ok(PageSlot {
            va,
            slot,
            arch: self.arch,
        })
    }

    /// Whether [`reserve_page_slot`](Self::reserve_page_slot) would take
    /// `va`, frames for a coarse table aside: aligned, not reserved, and
    /// its entry a fault (or in a MiB with no table yet). Changes nothing:
    /// a caller reserving several slots checks them all first, so a refusal
    /// leaves no slot or table behind.
    pub fn check_page_slot<M: TableMemory>(
        &self,
        mem: &mut M,
        va: VirtAddr,
    ) -> Result<(), TableError> {
        check_aligned("virtual address", va.0, PageSize::Small.bytes())?;
        self.check_not_reserved(va)?;
        match self.l2_slot(mem, va) {
            Ok((_, _, L2Descriptor::Fault)) | Err(TableError::NotMapped { .. }) => Ok(()),
            Ok((_, existing, _)) => Err(TableError::AlreadyMapped {
                va,
                descriptor: existing,
            }),
            Err(e) => Err(e),
        }
    }

    /// Gives a reserved slot back: its entry must be empty (unmapped, its
    /// TLB entry flushed). The mapping calls accept its address again.
    pub fn unreserve_page_slot<M: TableMemory>(
        &mut self,
        mem: &mut M,
        slot: PageSlot,
    ) -> Result<(), TableError> {
        if !self.reserved.contains(slot.va.0) {
            return Err(TableError::NotMapped { va: slot.va });
        }
        let existing = mem.read_word(slot.slot)?;
        if existing != 0 {
            return Err(TableError::AlreadyMapped {
                va: slot.va,
                descriptor: existing,
            });
        }
        self.reserved.remove(slot.va.0);
        Ok(())
    }

    /// Refuses an address handed out as a reserved slot.
    fn check_not_reserved(&self, va: VirtAddr) -> Result<(), TableError> {
        if self.reserved.contains(va.0) {
            Err(TableError::ReservedSlot { va })
        } else {
            Ok(())
        }
    }

    /// Maps the 1 MiB section at `va` to `pa`.
    pub fn map_section<M: TableMemory>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        pa: PhysAddr,
        attrs: Attributes,
    ) -> Result<(), TableError> {
        check_aligned("virtual address", va.0, SECTION_BYTES)?;
        check_aligned("physical address", pa.0, SECTION_BYTES)?;
        let raw = L1Descriptor::Section {
            base: pa,
            domain: self.domain,
            attrs: attrs.to_hw(self.arch)?,
        }
        .encode(self.arch)?;
        let index = va.0 >> 20;
        let (existing, entry) = self.read_l1(mem, index)?;
        if entry != L1Descriptor::Fault {
            return Err(TableError::AlreadyMapped {
                va,
                descriptor: existing,
            });
        }
        self.write_l1(mem, index, raw)
    }

    /// Removes the page at `va`; returns the frame it mapped and the TLB
    /// flush owed. The coarse table stays (and is reused).
    pub fn unmap_page<M: TableMemory>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
    ) -> Result<(PhysAddr, TlbFlush), TableError> {
        check_aligned("virtual address", va.0, PageSize::Small.bytes())?;
        self.check_not_reserved(va)?;
        let (slot, _, entry) = self.l2_slot(mem, va)?;
        match entry {
            L2Descriptor::Fault => Err(TableError::NotMapped { va }),
            L2Descriptor::Large { .. } => Err(TableError::WouldSplitLargePage { va }),
            L2Descriptor::Small { base, attrs } => {
                write_descriptor(mem, slot, 0)?;
                Ok((base, self.tlb_flush(va, attrs.not_global)))
            }
        }
    }

    /// Removes the section at `va`; returns its physical base and the TLB
    /// flush owed.
    pub fn unmap_section<M: TableMemory>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
    ) -> Result<(PhysAddr, TlbFlush), TableError> {
        check_aligned("virtual address", va.0, SECTION_BYTES)?;
        let (base, attrs) = self.section_at(mem, va)?;
        self.write_l1(mem, va.0 >> 20, 0)?;
        Ok((base, self.tlb_flush(va, attrs.not_global)))
    }

    fn section_at<M: TableMemory>(
        &self,
        mem: &mut M,
        va: VirtAddr,
    ) -> Result<(PhysAddr, HwAttrs), TableError> {
        match self.read_l1(mem, va.0 >> 20)? {
            (_, L1Descriptor::Section { base, attrs, .. }) => Ok((base, attrs)),
            (_, L1Descriptor::Fault) => Err(TableError::NotMapped { va }),
            (_, L1Descriptor::Coarse { .. }) => Err(TableError::SizeMismatch {
                va,
                mapped: PageSize::Small,
            }),
            (raw, other) => Err(not_a_coarse_table(va, raw, other)),
        }
    }

    /// Changes the permissions or memory type of the page at `va`. Cache
    /// maintenance a memory-type change needs (cached → uncached) is the
    /// coherence layer's job; this only rewrites the entry.
    pub fn protect_page<M: TableMemory>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        attrs: Attributes,
    ) -> Result<TlbFlush, TableError> {
        check_aligned("virtual address", va.0, PageSize::Small.bytes())?;
        self.check_not_reserved(va)?;
        let new = attrs.to_hw(self.arch)?;
        let (slot, _, entry) = self.l2_slot(mem, va)?;
        match entry {
            L2Descriptor::Fault => Err(TableError::NotMapped { va }),
            L2Descriptor::Large { .. } => Err(TableError::WouldSplitLargePage { va }),
            L2Descriptor::Small { base, attrs: old } => {
                let raw = L2Descriptor::Small { base, attrs: new }.encode(self.arch)?;
                write_descriptor(mem, slot, raw)?;
                // The stale TLB entry is the old one: tagged as it was (a
                // global entry of an ASID-less table is still in the TLB).
                Ok(self.tlb_flush(va, old.not_global))
            }
        }
    }

    /// Changes the permissions or memory type of the section at `va`.
    pub fn protect_section<M: TableMemory>(
        &mut self,
        mem: &mut M,
        va: VirtAddr,
        attrs: Attributes,
    ) -> Result<TlbFlush, TableError> {
        check_aligned("virtual address", va.0, SECTION_BYTES)?;
        let new = attrs.to_hw(self.arch)?;
        let (base, old) = self.section_at(mem, va)?;
        let raw = L1Descriptor::Section {
            base,
            domain: self.domain,
            attrs: new,
        }
        .encode(self.arch)?;
        self.write_l1(mem, va.0 >> 20, raw)?;
        // As in protect_page: flush the old entry, tagged as it was.
        Ok(self.tlb_flush(va, old.not_global))
    }

    /// Looks `va` up as the table walker would (no TLB), reading the words
    /// through `mem`. Under an FCSE PID an address below 32 MiB is looked up
    /// at its window, where the walker reads it (see `live_index`).
    pub fn translate<M: TableMemory>(
        &self,
        mem: &mut M,
        va: VirtAddr,
    ) -> Result<Translation, TableError> {
        let index = va.0 >> 20;
        let live = VirtAddr((self.live_index(index) << 20) | (va.0 & (SECTION_BYTES - 1)));
        walk(&mut |pa| mem.read_word(pa), self.l1, self.arch, live)
    }

    /// Copies `other`'s L1 entries for `range` (1 MiB aligned) into this
    /// table, sharing its sections and coarse tables — how every user table
    /// gets the kernel's global mappings. The entries here must be faults.
    /// Shared coarse tables stay `other`'s: [`release`](Self::release) does
    /// not free them, and pages mapped into them are visible to both tables.
    pub fn share_entries_from<M: TableMemory>(
        &mut self,
        mem: &mut M,
        other: &PageTable,
        range: VirtRange,
    ) -> Result<(), TableError> {
        check_aligned("range start", range.start().0, SECTION_BYTES)?;
        if !range.len().is_multiple_of(u64::from(SECTION_BYTES)) {
            return Err(TableError::Unaligned {
                what: "range length",
                address: range.len() as u32,
                alignment: SECTION_BYTES,
            });
        }
        let first = range.start().0 >> 20;
        let count = (range.len() >> 20) as u32;
        for index in first..first + count {
            let (raw, entry) = self.read_l1(mem, index)?;
            if entry != L1Descriptor::Fault {
                return Err(TableError::AlreadyMapped {
                    va: VirtAddr(index << 20),
                    descriptor: raw,
                });
            }
        }
        // The other table's reserved slots in the range are this one's too:
        // the coarse tables holding them are now shared.
        let start = u64::from(range.start().0);
        let reserved = self
            .reserved
            .merged(&other.reserved, start, start + range.len())?;
        for index in first..first + count {
            let raw = mem.read_word(other.entry_pa(other.live_index(index)))?;
            self.write_l1(mem, index, raw)?;
            self.set_owned(index, false);
        }
        self.reserved = reserved;
        Ok(())
    }

    /// Moves entries 0..32 to `pid`'s window (or, with `None`, back to the
    /// canonical slots). The window must hold nothing but this table's
    /// previous window. The caller flushes the TLB (the context switch
    /// does).
    pub(super) fn set_fcse_window<M: TableMemory>(
        &mut self,
        mem: &mut M,
        pid: Option<u8>,
    ) -> Result<(), TableError> {
        if self.fcse_window == pid {
            return Ok(());
        }
        // Checked here, so every window kept in `fcse_window` lies inside
        // the table and `modified_va` cannot overflow.
        if let Some(bad) = pid.filter(|&p| p == 0 || p > MAX_FCSE_PID) {
            return Err(TableError::PidOutOfRange { pid: bad });
        }
        if let Some(new) = pid {
            let first = u32::from(new) * WINDOW_ENTRIES;
            for index in first..first + WINDOW_ENTRIES {
                if mem.read_word(self.entry_pa(index))? != 0 {
                    return Err(TableError::WindowInUse {
                        pid: new,
                        va: VirtAddr(index << 20),
                    });
                }
            }
        }
        // The entries as they live now (the old window on ARMv5, else the
        // canonical slots).
        let mut live = [0u32; WINDOW_ENTRIES as usize];
        for (index, raw) in (0..WINDOW_ENTRIES).zip(&mut live) {
            *raw = mem.read_word(self.entry_pa(self.live_index(index)))?;
        }
        let copy_back = self.live_index(0) != 0 && pid.is_none();
        let target = match pid {
            Some(new) => Some(u32::from(new) * WINDOW_ENTRIES),
            // Leaving a PID on ARMv5: the canonical slots are walked again.
            None if copy_back => Some(0),
            None => None,
        };
        // The new place is written before the old is zeroed (they never
        // overlap: PIDs differ, and a window is above the canonical
        // slots), so that a write that fails half-way loses no entry: the
        // old place and `fcse_window` are as they were. The 32 entries of
        // a window are 128 contiguous bytes: written word by word, cleaned
        // for the walker once (a clean per entry wrote the same four lines
        // back 32 times, issue 24).
        if let Some(first) = target {
            for (index, raw) in (first..).zip(live) {
                mem.write_word(self.entry_pa(index), raw)?;
            }
            clean(mem, self.entry_pa(first), WINDOW_ENTRIES * 4)?;
        }
        if let Some(old) = self.fcse_window {
            let first = self.entry_pa(u32::from(old) * WINDOW_ENTRIES);
            zero(mem, first, WINDOW_ENTRIES * 4)?;
        }
        self.fcse_window = pid;
        Ok(())
    }

    /// Frees the coarse-table frames this table allocated and returns the
    /// L1 table's address to the caller. The table must no longer be in use
    /// by the CPU (switch away and flush the TLB first).
    pub fn release<M: TableMemory, F: TableFrames>(
        self,
        mem: &mut M,
        frames: &mut F,
    ) -> Result<PhysAddr, TableError> {
        for group in (0..L1_ENTRIES).step_by(4) {
            for index in group..group + 4 {
                if !self.is_owned(index) {
                    continue;
                }
                if let (_, L1Descriptor::Coarse { table, .. }) = self.read_l1(mem, index)? {
                    frames.free_table_frame(table.align_down(FRAME_BYTES));
                    break;
                }
            }
        }
        Ok(self.l1)
    }
}
