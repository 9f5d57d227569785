//! Target `pure_mmu`: descriptors (decode → encode → decode is the
//! identity; encode → decode gives back what was encoded), the table walk
//! over arbitrary memory, a page table against a map of its mappings, and
//! the key allocator against its promises.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::format;
use std::vec::Vec;

use arbitrary::Arbitrary;

use super::{Failure, ensure, ensure_eq};
use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::cache::{CacheGeometry, CacheInfo, CacheMaintenance, MainId};
use crate::mmu::{
    Access, Arch, Attributes, Execute, HwAttrs, KeyAllocator, KeyError, KeyOutcome, L1Descriptor,
    L2Descriptor, MemoryType, PageSize, PageTable, SpaceKey, TableError, TableFrames, TableMemory,
    walk,
};

/// At most this many operations of an input are checked.
pub const MAX_OPS: usize = 128;

const MIB: u32 = 1 << 20;
/// Where the L1 table lives, and the table frames after it.
const L1: u32 = 0x0400_0000;
const FRAMES_AT: u32 = 0x0410_0000;

/// Attribute bits from raw fields (any values: encoding checks them).
#[derive(Clone, Copy, Debug, Arbitrary)]
pub struct RawAttrs {
    tex: u8,
    c: bool,
    b: bool,
    ap: [u8; 4],
    apx: bool,
    xn: bool,
    not_global: bool,
    shareable: bool,
}

impl RawAttrs {
    fn hw(self) -> HwAttrs {
        HwAttrs {
            tex: self.tex,
            c: self.c,
            b: self.b,
            ap: self.ap,
            apx: self.apx,
            xn: self.xn,
            not_global: self.not_global,
            shareable: self.shareable,
        }
    }
}

/// A descriptor from raw parts.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Descriptor {
    /// An L1 entry: kind (modulo 5), base, domain, attributes.
    L1(u8, u32, u8, RawAttrs),
    /// An L2 entry: kind (modulo 3), base, attributes.
    L2(u8, u32, RawAttrs),
}

/// An address: mostly a page of the first 256 MiB, sometimes anything.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Addr {
    /// Page `n`.
    Page(u16),
    /// Section `n % 4096`.
    Section(u16),
    /// Anything.
    Raw(u32),
}

impl Addr {
    fn value(self) -> u32 {
        match self {
            Addr::Page(n) => u32::from(n) << 12,
            Addr::Section(n) => u32::from(n % 4096) << 20,
            Addr::Raw(a) => a,
        }
    }
}

/// A key range: mostly a few values, so that eight keys exhaust it and
/// rollovers happen; sometimes any bounds.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum KeyRange {
    /// `first ..= first + span % 10`.
    Small(u8, u8),
    /// `first ..= last`.
    Raw(u8, u8),
}

impl KeyRange {
    fn bounds(self) -> (u8, u8) {
        match self {
            KeyRange::Small(first, span) => (first, first.saturating_add(span % 10)),
            KeyRange::Raw(first, last) => (first, last),
        }
    }
}

/// One operation.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Op {
    /// Decode a raw L1 (`l1`) or L2 word, re-encode, decode again.
    Decode {
        /// The word.
        raw: u32,
        /// L1 rather than L2.
        l1: bool,
    },
    /// Encode a descriptor; if it encodes, decode it back.
    Encode(Descriptor),
    /// Walk arbitrary words.
    Walk {
        /// The L1 table address.
        l1: u32,
        /// The address to walk.
        va: u32,
        /// Its L1 word.
        first: u32,
        /// Its L2 word.
        second: u32,
    },
    /// `PageTable::map_page` (attributes: an index into every combination).
    MapPage(Addr, Addr, u8),
    /// `PageTable::unmap_page`.
    UnmapPage(Addr),
    /// `PageTable::protect_page`.
    ProtectPage(Addr, u8),
    /// `PageTable::map_section`.
    MapSection(Addr, Addr, u8),
    /// `PageTable::unmap_section`.
    UnmapSection(Addr),
    /// `PageTable::translate`.
    Translate(Addr),
    /// `KeyAllocator::activate` of key slot `n % 8`.
    Activate(u8),
    /// `KeyAllocator::deactivate`.
    Deactivate,
}

/// The fuzzer's input.
#[derive(Clone, Debug, Arbitrary)]
pub struct Input {
    /// ARMv6 rather than ARMv5.
    pub armv6: bool,
    /// Table frames available (modulo 64).
    pub frames: u8,
    /// Key range: FCSE PIDs (else ASIDs), and the range.
    pub keys: (bool, KeyRange),
    /// The operations (the first [`MAX_OPS`]).
    pub ops: Vec<Op>,
}

impl Input {
    /// Runs the operations against their models; the first broken property.
    pub fn check(&self) -> Result<(), Failure> {
        let arch = if self.armv6 { Arch::Armv6 } else { Arch::Armv5 };
        let mut mem = Memory::new(arch);
        let mut frames = Frames::new(u32::from(self.frames % 64));
        let table = PageTable::new(&mut mem, PhysAddr(L1), arch).map_err(|e| format!("{e}"))?;
        let mut t = Table {
            table,
            arch,
            pages: BTreeMap::new(),
            sections: BTreeMap::new(),
            coarse: BTreeSet::new(),
        };
        let mut keys = Keys::new(self.keys)?;
        for (i, op) in self.ops.iter().take(MAX_OPS).enumerate() {
            let what = |e| format!("op {i}, {op:?} on {arch}: {e}");
            match *op {
                Op::Decode { raw, l1 } => check_decode(raw, l1, arch).map_err(what)?,
                Op::Encode(d) => check_encode(d, arch).map_err(what)?,
                Op::Walk {
                    l1,
                    va,
                    first,
                    second,
                } => check_walk(l1, va, first, second, arch).map_err(what)?,
                Op::Activate(_) | Op::Deactivate => {
                    if let Some(keys) = keys.as_mut() {
                        keys.apply(op).map_err(what)?;
                    }
                }
                _ => t.apply(&mut mem, &mut frames, op).map_err(what)?,
            }
        }
        t.release(mem, frames)
    }
}

// ---- descriptors ---------------------------------------------------------

fn check_decode(raw: u32, l1: bool, arch: Arch) -> Result<(), Failure> {
    if l1 {
        let Ok(d) = L1Descriptor::decode(raw, arch) else {
            return Ok(());
        };
        let again = d
            .encode(arch)
            .map_err(|e| format!("{d:?} decoded from {raw:#010x} does not encode: {e}"))?;
        ensure_eq!(
            L1Descriptor::decode(again, arch),
            Ok(d),
            "{raw:#010x} re-encoded as {again:#010x}"
        );
    } else {
        let Ok(d) = L2Descriptor::decode(raw, arch) else {
            return Ok(());
        };
        let again = d
            .encode(arch)
            .map_err(|e| format!("{d:?} decoded from {raw:#010x} does not encode: {e}"))?;
        ensure_eq!(
            L2Descriptor::decode(again, arch),
            Ok(d),
            "{raw:#010x} re-encoded as {again:#010x}"
        );
    }
    Ok(())
}

fn check_encode(d: Descriptor, arch: Arch) -> Result<(), Failure> {
    match d {
        Descriptor::L1(kind, base, domain, attrs) => {
            let (base, attrs) = (PhysAddr(base), attrs.hw());
            let d = match kind % 5 {
                0 => L1Descriptor::Fault,
                1 => L1Descriptor::Coarse {
                    table: base,
                    domain,
                },
                2 => L1Descriptor::Section {
                    base,
                    domain,
                    attrs,
                },
                3 => L1Descriptor::Supersection { base, attrs },
                _ => L1Descriptor::Fine {
                    table: base,
                    domain,
                },
            };
            if let Ok(raw) = d.encode(arch) {
                ensure_eq!(
                    L1Descriptor::decode(raw, arch),
                    Ok(d),
                    "encoded as {raw:#010x}"
                );
            }
        }
        Descriptor::L2(kind, base, attrs) => {
            let (base, attrs) = (PhysAddr(base), attrs.hw());
            let d = match kind % 3 {
                0 => L2Descriptor::Fault,
                1 => L2Descriptor::Large { base, attrs },
                _ => L2Descriptor::Small { base, attrs },
            };
            if let Ok(raw) = d.encode(arch) {
                ensure_eq!(
                    L2Descriptor::decode(raw, arch),
                    Ok(d),
                    "encoded as {raw:#010x}"
                );
            }
        }
    }
    Ok(())
}

/// The walk reads at most the L1 word of `va` and the L2 word its coarse
/// table names, and translates as those words say.
fn check_walk(l1: u32, va: u32, first: u32, second: u32, arch: Arch) -> Result<(), Failure> {
    let mut reads = Vec::new();
    let mut read = |pa: PhysAddr| {
        reads.push(pa.0);
        Ok(if reads.len() == 1 { first } else { second })
    };
    let got = walk(&mut read, PhysAddr(l1), arch, VirtAddr(va));
    if !l1.is_multiple_of(16 << 10) {
        let e = TableError::MisalignedTable {
            table: PhysAddr(l1),
            alignment: 16 << 10,
        };
        ensure_eq!((got, reads.len()), (Err(e), 0), "misaligned L1");
        return Ok(());
    }
    ensure_eq!(reads.first(), Some(&(l1 + (va >> 20) * 4)), "L1 word read");
    let expected_l2 = match L1Descriptor::decode(first, arch) {
        Ok(L1Descriptor::Coarse { table, .. }) => Some(table.0 + ((va >> 12) & 0xff) * 4),
        _ => None,
    };
    ensure_eq!(reads.get(1).copied(), expected_l2, "L2 word read");
    ensure!(reads.len() <= 2, "{} reads", reads.len());
    if let Ok(t) = got {
        let size = t.size.bytes();
        ensure_eq!(t.pa.0 & (size - 1), va & (size - 1), "offset kept");
    }
    Ok(())
}

// ---- the page table ------------------------------------------------------

/// Table memory: words by address; the cache does nothing (the model's
/// own tests check the cleaning; here only the bookkeeping is judged).
struct Memory {
    words: HashMap<u32, u32>,
    info: CacheInfo,
}

impl Memory {
    fn new(arch: Arch) -> Memory {
        let midr = match arch {
            Arch::Armv5 => 0x4106_9265,
            Arch::Armv6 => 0x4117_b363,
        };
        let g = CacheGeometry::new(16 << 10, 4, 32).expect("a valid geometry");
        Memory {
            words: HashMap::new(),
            info: CacheInfo::pipt(MainId::from_raw(midr), g, g),
        }
    }
}

impl TableMemory for Memory {
    type Cache = Memory;
    fn read_word(&mut self, pa: PhysAddr) -> Result<u32, TableError> {
        if !pa.0.is_multiple_of(4) {
            return Err(TableError::Memory { pa });
        }
        Ok(self.words.get(&pa.0).copied().unwrap_or(0))
    }
    fn write_word(&mut self, pa: PhysAddr, value: u32) -> Result<(), TableError> {
        if !pa.0.is_multiple_of(4) {
            return Err(TableError::Memory { pa });
        }
        // Zeroes are not stored, so equal memories compare equal.
        if value == 0 {
            self.words.remove(&pa.0);
        } else {
            self.words.insert(pa.0, value);
        }
        Ok(())
    }
    fn kernel_va(&self, pa: PhysAddr) -> VirtAddr {
        VirtAddr(pa.0)
    }
    fn cache(&mut self) -> &mut Memory {
        self
    }
}

impl CacheMaintenance for Memory {
    fn info(&self) -> &CacheInfo {
        &self.info
    }
    fn clean_dcache_line(&mut self, _: VirtAddr) {}
    fn clean_invalidate_dcache_line(&mut self, _: VirtAddr) {}
    unsafe fn invalidate_dcache_line(&mut self, _: VirtAddr) {}
    fn clean_dcache_all(&mut self) {}
    fn clean_invalidate_dcache_all(&mut self) {}
    fn invalidate_icache_line(&mut self, _: VirtAddr) {}
    fn invalidate_icache_all(&mut self) {}
    fn drain_write_buffer(&mut self) {}
    fn invalidate_tlb_all(&mut self) {}
    fn invalidate_tlb_page(&mut self, _: VirtAddr) {}
    fn invalidate_tlb_asid(&mut self, _: u8) -> Result<(), crate::cache::MaintenanceError> {
        Ok(())
    }
    fn invalidate_tlb_page_asid(
        &mut self,
        _: VirtAddr,
        _: u8,
    ) -> Result<(), crate::cache::MaintenanceError> {
        Ok(())
    }
    fn clean_dcache_range(&mut self, _: VirtRange) -> crate::cache::RangeOutcome {
        crate::cache::RangeOutcome::Nothing
    }
}

/// Table frames from a fixed pool; what went out and came back.
struct Frames {
    free: Vec<PhysAddr>,
    out: BTreeSet<u32>,
    returned: Vec<u32>,
}

impl Frames {
    fn new(count: u32) -> Frames {
        Frames {
            free: (0..count)
                .rev()
                .map(|i| PhysAddr(FRAMES_AT + i * 4096))
                .collect(),
            out: BTreeSet::new(),
            returned: Vec::new(),
        }
    }
}

impl TableFrames for Frames {
    fn allocate_table_frame(&mut self) -> Option<PhysAddr> {
        let frame = self.free.pop()?;
        self.out.insert(frame.0);
        Some(frame)
    }
    fn free_table_frame(&mut self, frame: PhysAddr) {
        self.returned.push(frame.0);
    }
}

/// Every typed attribute combination, by index.
fn attributes(n: u8) -> Attributes {
    let n = usize::from(n);
    let memory = MemoryType::ALL[n % MemoryType::ALL.len()];
    let n = n / MemoryType::ALL.len();
    let access = Access::ALL[n % Access::ALL.len()];
    let n = n / Access::ALL.len();
    let execute = [Execute::Allow, Execute::Never, Execute::NeverIfSupported][n % 3];
    Attributes {
        memory,
        access,
        execute,
        global: (n / 3).is_multiple_of(2),
    }
}

/// The table under test and its model.
struct Table {
    table: PageTable,
    arch: Arch,
    /// Small pages: va → (pa, bits).
    pages: BTreeMap<u32, (u32, HwAttrs)>,
    /// Sections: index → (pa, bits).
    sections: BTreeMap<u32, (u32, HwAttrs)>,
    /// L1 entries that hold a coarse table.
    coarse: BTreeSet<u32>,
}

impl Table {
    fn apply(&mut self, mem: &mut Memory, frames: &mut Frames, op: &Op) -> Result<(), Failure> {
        let before = (mem.words.clone(), frames.out.len());
        let ok = match *op {
            Op::MapPage(va, pa, attrs) => {
                let (va, pa, attrs) = (va.value(), pa.value(), attributes(attrs));
                let frame_left = !frames.free.is_empty();
                let got = self
                    .table
                    .map_page(mem, frames, VirtAddr(va), PhysAddr(pa), attrs);
                let hw = attrs.to_hw(self.arch);
                let index = va >> 20;
                let has_table = self.coarse.contains(&index);
                let sibling = (index & !3..(index & !3) + 4).any(|i| self.coarse.contains(&i));
                let expected = va % 4096 == 0
                    && pa % 4096 == 0
                    && hw.is_ok()
                    && !self.sections.contains_key(&index)
                    && !self.pages.contains_key(&va)
                    && (has_table || sibling || frame_left);
                ensure_eq!(got.is_ok(), expected, "mapped: {got:?}");
                if let (Ok(()), Ok(hw)) = (got, hw) {
                    self.pages.insert(va, (pa, hw));
                    self.coarse.insert(index);
                }
                got.is_ok()
            }
            Op::UnmapPage(va) => {
                let va = va.value();
                let got = self.table.unmap_page(mem, VirtAddr(va));
                let expected = (va % 4096 == 0).then(|| self.pages.remove(&va)).flatten();
                ensure_eq!(
                    got.as_ref().ok().map(|(pa, _)| pa.0),
                    expected.map(|(pa, _)| pa),
                    "unmapped: {got:?}"
                );
                if let Ok((_, flush)) = got {
                    flush.ignore();
                    true
                } else {
                    false
                }
            }
            Op::ProtectPage(va, attrs) => {
                let (va, attrs) = (va.value(), attributes(attrs));
                let got = self.table.protect_page(mem, VirtAddr(va), attrs);
                let hw = attrs.to_hw(self.arch);
                let expected = va % 4096 == 0 && self.pages.contains_key(&va) && hw.is_ok();
                ensure_eq!(got.is_ok(), expected, "protected: {got:?}");
                if let (Ok(flush), Ok(hw)) = (got, hw) {
                    flush.ignore();
                    self.pages.get_mut(&va).expect("mapped").1 = hw;
                    true
                } else {
                    false
                }
            }
            Op::MapSection(va, pa, attrs) => {
                let (va, pa, attrs) = (va.value(), pa.value(), attributes(attrs));
                let got = self
                    .table
                    .map_section(mem, VirtAddr(va), PhysAddr(pa), attrs);
                let hw = attrs.to_hw(self.arch);
                let index = va >> 20;
                let expected = va % MIB == 0
                    && pa % MIB == 0
                    && hw.is_ok()
                    && !self.sections.contains_key(&index)
                    && !self.coarse.contains(&index);
                ensure_eq!(got.is_ok(), expected, "mapped: {got:?}");
                if let (Ok(()), Ok(hw)) = (got, hw) {
                    self.sections.insert(index, (pa, hw));
                }
                got.is_ok()
            }
            Op::UnmapSection(va) => {
                let va = va.value();
                let got = self.table.unmap_section(mem, VirtAddr(va));
                let expected = (va % MIB == 0)
                    .then(|| self.sections.remove(&(va >> 20)))
                    .flatten();
                ensure_eq!(
                    got.as_ref().ok().map(|(pa, _)| pa.0),
                    expected.map(|(pa, _)| pa),
                    "unmapped: {got:?}"
                );
                if let Ok((_, flush)) = got {
                    flush.ignore();
                    true
                } else {
                    false
                }
            }
            Op::Translate(va) => {
                let va = va.value();
                let got = self.table.translate(mem, VirtAddr(va));
                let expected = if let Some(&(pa, hw)) = self.sections.get(&(va >> 20)) {
                    Some((pa | (va & (MIB - 1)), PageSize::Section, hw))
                } else {
                    self.pages
                        .get(&(va & !0xfff))
                        .map(|&(pa, hw)| (pa | (va & 0xfff), PageSize::Small, hw))
                };
                ensure_eq!(
                    got.as_ref().ok().map(|t| (t.pa.0, t.size, t.attrs)),
                    expected,
                    "translation: {got:?}"
                );
                false
            }
            _ => unreachable!("the caller dispatches the rest"),
        };
        if !ok {
            ensure!(
                (mem.words.clone(), frames.out.len()) == before,
                "a refused or read-only call changed the table memory or took a frame"
            );
        }
        // One frame per 4 MiB group with coarse tables, never more.
        let groups: BTreeSet<u32> = self.coarse.iter().map(|i| i >> 2).collect();
        ensure_eq!(
            frames.out.len(),
            groups.len(),
            "table frames for {} groups",
            groups.len()
        );
        Ok(())
    }

    /// Releasing returns every frame the table took, once.
    fn release(self, mut mem: Memory, mut frames: Frames) -> Result<(), Failure> {
        let l1 = self
            .table
            .release(&mut mem, &mut frames)
            .map_err(|e| format!("release: {e}"))?;
        ensure_eq!(l1, PhysAddr(L1), "released L1");
        let mut returned = frames.returned.clone();
        returned.sort_unstable();
        let out: Vec<u32> = frames.out.iter().copied().collect();
        ensure_eq!(returned, out, "frames returned by release");
        Ok(())
    }
}

// ---- keys ----------------------------------------------------------------

/// The key allocator, eight keys, and what was promised.
struct Keys {
    allocator: KeyAllocator,
    first: u8,
    last: u8,
    keys: [SpaceKey; 8],
    /// Values assigned in the current generation (reserved one included).
    used: BTreeSet<u8>,
    /// The running key, if any.
    active: Option<usize>,
}

impl Keys {
    fn new((fcse, range): (bool, KeyRange)) -> Result<Option<Keys>, Failure> {
        let (first, last) = range.bounds();
        let max = if fcse { 127 } else { 255 };
        let got = if fcse {
            KeyAllocator::fcse_pids(first, last)
        } else {
            KeyAllocator::asid_range(first, last)
        };
        let valid = first >= 1 && last <= max && last > first;
        if !valid {
            ensure_eq!(
                got.err(),
                Some(KeyError::BadRange { first, last, max }),
                "key range"
            );
            return Ok(None);
        }
        let allocator = got.map_err(|e| format!("key range refused: {e}"))?;
        Ok(Some(Keys {
            allocator,
            first,
            last,
            keys: [SpaceKey::UNASSIGNED; 8],
            used: BTreeSet::new(),
            active: None,
        }))
    }

    fn apply(&mut self, op: &Op) -> Result<(), Failure> {
        let Op::Activate(n) = *op else {
            self.allocator.deactivate();
            self.active = None;
            return Ok(());
        };
        let i = usize::from(n % 8);
        let before = self.keys[i];
        let was_current = self.allocator.is_current(before);
        let generation = self.allocator.generation();
        let outcome = self.allocator.activate(&mut self.keys[i]);
        let key = self.keys[i];
        let value = key.value().ok_or("activate left the key without a value")?;
        ensure!(
            (self.first..=self.last).contains(&value),
            "value {value} outside {}..={}",
            self.first,
            self.last
        );
        ensure!(
            self.allocator.is_current(key),
            "activated key {key:?} is not current"
        );
        match outcome {
            KeyOutcome::Kept => {
                ensure_eq!(key.value(), before.value(), "kept value");
                ensure!(
                    was_current || self.used.contains(&value),
                    "kept {before:?}, which was neither current nor reserved"
                );
            }
            KeyOutcome::Assigned => {
                ensure!(!was_current, "reassigned a current key");
                ensure!(
                    self.used.insert(value),
                    "value {value} assigned twice in a generation"
                );
            }
            KeyOutcome::RolledOver => {
                ensure!(!was_current, "rolled over for a current key");
                ensure_eq!(self.allocator.generation(), generation + 1, "generation");
                let range = usize::from(self.last - self.first) + 1;
                ensure_eq!(self.used.len(), range, "rolled over with values left");
                // The running key's value stays its owner's.
                self.used.clear();
                if let Some(a) = self.active.filter(|&a| a != i)
                    && let Some(v) = self.keys[a].value()
                {
                    self.used.insert(v);
                }
                ensure!(
                    self.used.insert(value),
                    "the new value {value} is the reserved one"
                );
            }
        }
        self.active = Some(i);
        // Keys valid in this generation hold distinct values.
        let mut seen = BTreeSet::new();
        for k in self.keys.iter().filter(|k| self.allocator.is_current(**k)) {
            let v = k.value().expect("a current key has a value");
            ensure!(
                seen.insert(v),
                "two current keys share {v}: {:?}",
                self.keys
            );
        }
        Ok(())
    }
}
