//! Host: descriptor writes reach memory, shown on the cache model.
//!
//! A `PageTable` whose memory is the model (`Sim` as `TableMemory`: words
//! read and written through the kernel's cached mapping at VA = PA) maps,
//! protects and unmaps pages and sections; the model's table walker then
//! reads every L1 and L2 descriptor a walk for those addresses would read.
//! The walker reads memory only, so it sees the writes only if they were
//! cleaned — which `PageTable` does through `CacheMaintenance`.
//!
//! The negative twin runs the same operations through `Uncleaned`, whose
//! maintenance does nothing: the oracle must report `StaleTableWalk` and the
//! walker must see the old descriptor. A clean afterwards (the positive
//! control) makes the same walk correct.

use vacmm::addr::{PhysAddr, VirtAddr, VirtRange};
use vacmm::cache::{CacheInfo, CacheMaintenance, MaintenanceError};
use vacmm::mmu::{
    Access, Arch, Attributes, L1Descriptor, L2Descriptor, MemoryType, PageTable, TableError,
    TableFrames, TableMemory,
};
use vacmm::sim::{CpuModel, KERNEL, MemType, Sim, Violation, ViolationKind};

const MEMORY: usize = 1 << 20;
/// The L1 table (16 KiB aligned).
const L1: u32 = 0x4000;
/// Frames for coarse tables.
const FRAMES: [u32; 4] = [0x1_0000, 0x1_1000, 0x1_2000, 0x1_3000];

/// A page below 4 MiB (group 0's first coarse table).
const PAGE_A: (u32, u32) = (0x0000_3000, 0x0002_0000);
/// A page in the kernel's half (another coarse table, another frame).
const PAGE_B: (u32, u32) = (0xc010_5000, 0x0002_1000);
/// A section.
const SECTION: (u32, u32) = (0x0100_0000, 0x0030_0000);

fn models() -> [CpuModel; 3] {
    [
        CpuModel::arm926(),
        CpuModel::arm1136_32k(),
        CpuModel::arm1176_16k(),
    ]
}

/// The model with the L1 table and the frames mapped in the kernel at
/// VA = PA, write-back: where `Sim as TableMemory` reads and writes them.
fn sim(model: CpuModel) -> Sim {
    let mut sim = Sim::new(model, MEMORY);
    for page in (L1..L1 + 0x4000).step_by(0x1000).chain(FRAMES) {
        sim.map(KERNEL, page, page, MemType::WriteBack, true)
            .unwrap();
    }
    sim
}

fn arch(sim: &Sim) -> Arch {
    Arch::of(sim.info())
}

/// Frames from [`FRAMES`], in order.
struct Frames(Vec<PhysAddr>);

impl Frames {
    fn new() -> Self {
        Frames(FRAMES.iter().rev().map(|&f| PhysAddr(f)).collect())
    }
}

impl TableFrames for Frames {
    fn allocate_table_frame(&mut self) -> Option<PhysAddr> {
        self.0.pop()
    }
    fn free_table_frame(&mut self, frame: PhysAddr) {
        self.0.push(frame);
    }
}

/// Maintenance that does nothing: a kernel that forgot the clean.
struct NoMaintenance {
    info: CacheInfo,
}

impl CacheMaintenance for NoMaintenance {
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
    fn invalidate_tlb_page_asid(&mut self, _: VirtAddr, _: u8) -> Result<(), MaintenanceError> {
        Ok(())
    }
}

/// The model's memory with [`NoMaintenance`]: reads and writes go through
/// the model's caches exactly as with `Sim`, but nothing is ever cleaned.
struct Uncleaned<'a> {
    sim: &'a mut Sim,
    cache: NoMaintenance,
}

impl<'a> Uncleaned<'a> {
    fn new(sim: &'a mut Sim) -> Self {
        let info = *sim.info();
        Uncleaned {
            sim,
            cache: NoMaintenance { info },
        }
    }
}

impl TableMemory for Uncleaned<'_> {
    type Cache = NoMaintenance;

    fn read_word(&mut self, pa: PhysAddr) -> Result<u32, TableError> {
        self.sim.read_word(pa)
    }
    fn write_word(&mut self, pa: PhysAddr, value: u32) -> Result<(), TableError> {
        self.sim.write_word(pa, value)
    }
    fn kernel_va(&self, pa: PhysAddr) -> VirtAddr {
        self.sim.kernel_va(pa)
    }
    fn cache(&mut self) -> &mut NoMaintenance {
        &mut self.cache
    }
}

/// Runs `op` on the model's memory, with the real maintenance or none.
fn with_memory<R>(sim: &mut Sim, cleaned: bool, op: impl FnOnce(&mut dyn MemoryOps) -> R) -> R {
    if cleaned {
        op(sim)
    } else {
        op(&mut Uncleaned::new(sim))
    }
}

/// The table operations the scenarios use, over either memory (so one
/// scenario can run with and without maintenance).
trait MemoryOps {
    fn map_pages(&mut self, t: &mut PageTable, frames: &mut Frames);
    fn protect(&mut self, t: &mut PageTable);
    fn unmap(&mut self, t: &mut PageTable);
}

fn page_attrs() -> Attributes {
    Attributes::USER_DATA
}

fn protected_attrs() -> Attributes {
    Attributes::USER_DATA
        .with_access(Access::UserRoKernelRw)
        .with_memory(MemoryType::NormalWriteThrough)
}

impl<M: TableMemory> MemoryOps for M {
    fn map_pages(&mut self, t: &mut PageTable, frames: &mut Frames) {
        for (va, pa) in [PAGE_A, PAGE_B] {
            t.map_page(self, frames, VirtAddr(va), PhysAddr(pa), page_attrs())
                .unwrap();
        }
        let (va, pa) = SECTION;
        t.map_section(self, VirtAddr(va), PhysAddr(pa), Attributes::KERNEL_DATA)
            .unwrap();
    }

    fn protect(&mut self, t: &mut PageTable) {
        for (va, _) in [PAGE_A, PAGE_B] {
            let flush = t
                .protect_page(self, VirtAddr(va), protected_attrs())
                .unwrap();
            flush.flush(self.cache()).unwrap();
        }
        let flush = t
            .protect_section(self, VirtAddr(SECTION.0), protected_attrs())
            .unwrap();
        flush.flush(self.cache()).unwrap();
    }

    fn unmap(&mut self, t: &mut PageTable) {
        for (va, pa) in [PAGE_A, PAGE_B] {
            let (old, flush) = t.unmap_page(self, VirtAddr(va)).unwrap();
            assert_eq!(old, PhysAddr(pa));
            flush.flush(self.cache()).unwrap();
        }
        let (old, flush) = t.unmap_section(self, VirtAddr(SECTION.0)).unwrap();
        assert_eq!(old, PhysAddr(SECTION.1));
        flush.flush(self.cache()).unwrap();
    }
}

/// A table on a fresh model (created with maintenance), nothing mapped.
fn table(model: CpuModel) -> (Sim, PageTable, Frames) {
    let mut sim = sim(model);
    let arch = arch(&sim);
    let table = PageTable::new(&mut sim, PhysAddr(L1), arch).unwrap();
    assert_clean(&sim.take_violations(), "new table");
    (sim, table, Frames::new())
}

/// What the walk for each address should find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// An L1 entry that is a fault.
    Fault,
    /// A small page behind the coarse table at `table`.
    Page {
        table: u32,
        pa: u32,
        attrs: Attributes,
    },
    /// A section.
    Section { pa: u32, attrs: Attributes },
}

/// The coarse table the scenario's pages live in: the first frame for PAGE_A
/// (MiB 0, first of its group), the second for PAGE_B (MiB 0xc01: second).
fn coarse_table(va: u32) -> u32 {
    match va {
        v if v == PAGE_A.0 => FRAMES[0],
        v if v == PAGE_B.0 => FRAMES[1] + 1024,
        _ => unreachable!(),
    }
}

fn l1_address(va: u32) -> u32 {
    L1 + (va >> 20) * 4
}

fn l2_address(table: u32, va: u32) -> u32 {
    table + ((va >> 12) & 0xff) * 4
}

/// One descriptor the walker read: where, what, and what was expected.
#[derive(Debug)]
struct Walked {
    pa: u32,
    raw: u32,
    expected: u32,
}

/// Walks `va` as the hardware would: the L1 entry, then (for a page) the L2
/// entry at the address the expected L1 descriptor names. Returns every
/// descriptor read, with the raw value the expectation encodes to.
fn walk(sim: &mut Sim, arch: Arch, va: u32, expect: Expect) -> Vec<Walked> {
    let l1 = l1_address(va);
    let raw = sim.table_walk(l1).unwrap();
    match expect {
        Expect::Fault => std::vec![Walked {
            pa: l1,
            raw,
            expected: 0
        }],
        Expect::Section { pa, attrs } => {
            let d = L1Descriptor::Section {
                base: PhysAddr(pa),
                domain: 0,
                attrs: attrs.to_hw(arch).unwrap(),
            };
            std::vec![Walked {
                pa: l1,
                raw,
                expected: d.encode(arch).unwrap()
            }]
        }
        Expect::Page { table, pa, attrs } => {
            let coarse = L1Descriptor::Coarse {
                table: PhysAddr(table),
                domain: 0,
            };
            let l2 = l2_address(table, va);
            let l2_raw = sim.table_walk(l2).unwrap();
            let small = L2Descriptor::Small {
                base: PhysAddr(pa),
                attrs: attrs.to_hw(arch).unwrap(),
            };
            std::vec![
                Walked {
                    pa: l1,
                    raw,
                    expected: coarse.encode(arch).unwrap()
                },
                Walked {
                    pa: l2,
                    raw: l2_raw,
                    expected: small.encode(arch).unwrap()
                },
            ]
        }
    }
}

fn mapped(attrs_page: Attributes, attrs_section: Attributes) -> [(u32, Expect); 3] {
    [
        (
            PAGE_A.0,
            Expect::Page {
                table: coarse_table(PAGE_A.0),
                pa: PAGE_A.1,
                attrs: attrs_page,
            },
        ),
        (
            PAGE_B.0,
            Expect::Page {
                table: coarse_table(PAGE_B.0),
                pa: PAGE_B.1,
                attrs: attrs_page,
            },
        ),
        (
            SECTION.0,
            Expect::Section {
                pa: SECTION.1,
                attrs: attrs_section,
            },
        ),
    ]
}

fn after_map() -> [(u32, Expect); 3] {
    mapped(page_attrs(), Attributes::KERNEL_DATA)
}

fn after_protect() -> [(u32, Expect); 3] {
    mapped(protected_attrs(), protected_attrs())
}

/// After unmapping, the pages' L2 entries are faults (the coarse tables
/// stay) and the section's L1 entry is.
fn walk_unmapped(sim: &mut Sim, arch: Arch) -> Vec<Walked> {
    let mut walked = Vec::new();
    for (va, _) in [PAGE_A, PAGE_B] {
        let table = coarse_table(va);
        let l1 = l1_address(va);
        let coarse = L1Descriptor::Coarse {
            table: PhysAddr(table),
            domain: 0,
        };
        walked.push(Walked {
            pa: l1,
            raw: sim.table_walk(l1).unwrap(),
            expected: coarse.encode(arch).unwrap(),
        });
        let l2 = l2_address(table, va);
        walked.push(Walked {
            pa: l2,
            raw: sim.table_walk(l2).unwrap(),
            expected: 0,
        });
    }
    walked.extend(walk(sim, arch, SECTION.0, Expect::Fault));
    walked
}

fn walk_all(sim: &mut Sim, arch: Arch, expect: [(u32, Expect); 3]) -> Vec<Walked> {
    expect
        .into_iter()
        .flat_map(|(va, e)| walk(sim, arch, va, e))
        .collect()
}

fn kinds(violations: &[Violation]) -> Vec<ViolationKind> {
    violations.iter().map(|v| v.kind).collect()
}

fn assert_clean(violations: &[Violation], what: &str) {
    assert!(
        violations.is_empty(),
        "{what}: expected no violation, got {violations:#?}"
    );
}

/// Every walked descriptor is what was written, and decodes to it.
fn assert_walks_see(walked: &[Walked], arch: Arch, what: &str) {
    for w in walked {
        assert_eq!(
            w.raw, w.expected,
            "{what} on {arch}: walk of {:#x} read {:#010x}",
            w.pa, w.raw
        );
        // The raw words decode as the level they were read at.
        if w.pa < L1 + 0x4000 {
            assert!(L1Descriptor::decode(w.raw, arch).is_ok());
        } else {
            assert!(L2Descriptor::decode(w.raw, arch).is_ok());
        }
    }
}

/// The negative twin's verdict: every descriptor the operation changed is
/// reported stale at its own address, and the walker read the old value.
fn assert_walks_stale(
    sim: &mut Sim,
    walked: &[Walked],
    old: &[Walked],
    changed: &[u32],
    what: &str,
) {
    let violations = sim.take_violations();
    for &pa in changed {
        assert!(
            violations
                .iter()
                .any(|v| v.kind == ViolationKind::StaleTableWalk && v.pa == pa),
            "{what}: expected a stale walk of {pa:#x}, got {:?}",
            kinds(&violations)
        );
        let w = walked.iter().find(|w| w.pa == pa).unwrap();
        let before = old.iter().find(|w| w.pa == pa).unwrap();
        assert_eq!(
            w.raw, before.raw,
            "{what}: the walker at {pa:#x} must see the stale descriptor"
        );
        assert_ne!(w.raw, w.expected, "{what}: {pa:#x} was meant to change");
    }
    assert!(
        violations
            .iter()
            .all(|v| v.kind == ViolationKind::StaleTableWalk),
        "{what}: only stale walks expected, got {:?}",
        kinds(&violations)
    );
}

/// Positive control for the negative twin: cleaning the table lines by hand
/// makes the same walks correct.
fn clean_tables_by_hand(sim: &mut Sim) {
    let ranges = [(L1, 0x4000u64), (FRAMES[0], 0x1000), (FRAMES[1], 0x1000)];
    for (start, len) in ranges {
        sim.clean_dcache_range(VirtRange::new(VirtAddr(start), len).unwrap());
    }
}

fn changed(walked: &[Walked], old: &[Walked]) -> Vec<u32> {
    walked
        .iter()
        .filter(|w| {
            old.iter()
                .find(|o| o.pa == w.pa)
                .is_none_or(|o| o.raw != w.expected)
        })
        .map(|w| w.pa)
        .collect()
}

#[test]
fn mapped_pages_and_sections_reach_the_walker() {
    for model in models() {
        let (mut sim, mut t, mut frames) = table(model);
        let arch = arch(&sim);
        with_memory(&mut sim, true, |m| m.map_pages(&mut t, &mut frames));
        let walked = walk_all(&mut sim, arch, after_map());
        assert_clean(&sim.take_violations(), "map");
        assert_walks_see(&walked, arch, "map");
        // The walk agrees with the table's own lookup.
        for (va, pa) in [PAGE_A, PAGE_B, SECTION] {
            assert_eq!(
                t.translate(&mut sim, VirtAddr(va + 0x44)).unwrap().pa,
                PhysAddr(pa + 0x44)
            );
        }
    }
}

#[test]
fn protected_and_unmapped_entries_reach_the_walker() {
    for model in models() {
        let (mut sim, mut t, mut frames) = table(model);
        let arch = arch(&sim);
        with_memory(&mut sim, true, |m| m.map_pages(&mut t, &mut frames));
        // Let the walker (and the CPU) read the mapped entries first, so the
        // lines are cached and clean when they are rewritten.
        walk_all(&mut sim, arch, after_map());
        with_memory(&mut sim, true, |m| m.protect(&mut t));
        let walked = walk_all(&mut sim, arch, after_protect());
        assert_clean(&sim.take_violations(), "protect");
        assert_walks_see(&walked, arch, "protect");

        with_memory(&mut sim, true, |m| m.unmap(&mut t));
        let walked = walk_unmapped(&mut sim, arch);
        assert_clean(&sim.take_violations(), "unmap");
        assert_walks_see(&walked, arch, "unmap");
        assert_eq!(t.release(&mut sim, &mut frames), Ok(PhysAddr(L1)));
        assert_eq!(frames.0.len(), FRAMES.len());
    }
}

#[test]
fn uncleaned_map_leaves_the_walker_stale() {
    for model in models() {
        let (mut sim, mut t, mut frames) = table(model);
        let arch = arch(&sim);
        // What the walker sees before: faults everywhere.
        let before: Vec<Walked> = walk_all(&mut sim, arch, after_map())
            .into_iter()
            .map(|w| Walked { expected: 0, ..w })
            .collect();
        assert!(before.iter().all(|w| w.raw == 0));
        assert_clean(&sim.take_violations(), "before map");

        with_memory(&mut sim, false, |m| m.map_pages(&mut t, &mut frames));
        let walked = walk_all(&mut sim, arch, after_map());
        let changed = changed(&walked, &before);
        // Every L1 and L2 entry of the walks changed.
        assert_eq!(changed.len(), walked.len());
        assert_walks_stale(&mut sim, &walked, &before, &changed, "uncleaned map");

        clean_tables_by_hand(&mut sim);
        let walked = walk_all(&mut sim, arch, after_map());
        assert_clean(&sim.take_violations(), "map, cleaned by hand");
        assert_walks_see(&walked, arch, "map, cleaned by hand");
    }
}

#[test]
fn uncleaned_protect_leaves_the_walker_stale() {
    for model in models() {
        let (mut sim, mut t, mut frames) = table(model);
        let arch = arch(&sim);
        with_memory(&mut sim, true, |m| m.map_pages(&mut t, &mut frames));
        let before = walk_all(&mut sim, arch, after_map());
        assert_clean(&sim.take_violations(), "map");

        with_memory(&mut sim, false, |m| m.protect(&mut t));
        let walked = walk_all(&mut sim, arch, after_protect());
        let changed = changed(&walked, &before);
        // Two L2 entries and the section's L1 entry; the coarse L1 entries
        // did not change.
        assert_eq!(changed.len(), 3, "{walked:x?}");
        assert_walks_stale(&mut sim, &walked, &before, &changed, "uncleaned protect");

        clean_tables_by_hand(&mut sim);
        let walked = walk_all(&mut sim, arch, after_protect());
        assert_clean(&sim.take_violations(), "protect, cleaned by hand");
        assert_walks_see(&walked, arch, "protect, cleaned by hand");
    }
}

#[test]
fn uncleaned_unmap_leaves_the_walker_stale() {
    for model in models() {
        let (mut sim, mut t, mut frames) = table(model);
        let arch = arch(&sim);
        with_memory(&mut sim, true, |m| m.map_pages(&mut t, &mut frames));
        let before = walk_unmapped(&mut sim, arch);
        assert_clean(&sim.take_violations(), "map");

        with_memory(&mut sim, false, |m| m.unmap(&mut t));
        let walked = walk_unmapped(&mut sim, arch);
        let changed = changed(&walked, &before);
        assert_eq!(changed.len(), 3, "{walked:x?}");
        assert_walks_stale(&mut sim, &walked, &before, &changed, "uncleaned unmap");
        // The stale values are the old mappings: the walker would still
        // translate through them.
        for pa in &changed {
            let w = walked.iter().find(|w| w.pa == *pa).unwrap();
            assert_ne!(w.raw, 0);
        }

        clean_tables_by_hand(&mut sim);
        let walked = walk_unmapped(&mut sim, arch);
        assert_clean(&sim.take_violations(), "unmap, cleaned by hand");
        assert_walks_see(&walked, arch, "unmap, cleaned by hand");
    }
}

/// A user space translated through its tables (`Sim::attach_table`): the
/// accesses follow the descriptors, read-only pages refuse user stores, and
/// a changed entry is seen only after the TLB operation its token asks for.
#[test]
fn attached_tables_translate_accesses_like_the_mmu() {
    for model in models() {
        let (mut sim, mut table, mut frames) = table(model);
        let arch = arch(&sim);
        // The kernel's own pages (the table frames) must stay reachable
        // from the user space: share them as a section of the user table.
        table
            .map_section(&mut sim, VirtAddr(0), PhysAddr(0), Attributes::KERNEL_DATA)
            .unwrap();
        let user = sim.create_space(1);
        sim.attach_table(user, PhysAddr(L1), arch).unwrap();
        let (va, pa) = (0x0140_0000, 0x0008_0000);
        // Global: this table is never given an ASID, so only a global
        // entry's TLB flush is owed (a non-global one could not be cached).
        let user_page = Attributes {
            global: true,
            ..page_attrs()
        };
        table
            .map_page(&mut sim, &mut frames, VirtAddr(va), PhysAddr(pa), user_page)
            .unwrap();
        sim.switch_to(user).unwrap();
        sim.store(va + 8, 4, 0x1234_5678).unwrap();
        assert_eq!(sim.load(va + 8, 4).unwrap(), 0x1234_5678, "{model:?}");
        // Read-only for user code: a store is the scenario's write fault.
        let flush = table
            .protect_page(
                &mut sim,
                VirtAddr(va),
                user_page.with_access(Access::UserRoKernelRw),
            )
            .unwrap();
        // Until the TLB operation the old (writable) translation is used,
        // as on the CPU; afterwards the new one.
        assert!(sim.store(va, 4, 1).is_ok(), "{model:?}: stale TLB entry");
        // …and the oracle reports the use of an entry a fresh walk would
        // not give.
        let stale = sim.take_violations();
        assert!(
            matches!(
                stale.as_slice(),
                [v] if matches!(v.kind, vacmm::sim::ViolationKind::StaleTlbEntry { walked_pa: Some(p) } if p == pa)
            ),
            "{model:?}: {stale:?}"
        );
        flush.flush(&mut sim).unwrap();
        assert!(
            matches!(
                sim.store(va, 4, 2),
                Err(vacmm::sim::SimError::ReadOnly { .. })
            ),
            "{model:?}"
        );
        // Unmapped through the tables: the access is refused.
        let (_, flush) = table.unmap_page(&mut sim, VirtAddr(va)).unwrap();
        flush.flush(&mut sim).unwrap();
        assert!(sim.load(va, 4).is_err(), "{model:?}");
        assert_clean(&sim.take_violations(), "attached tables");
    }
}
