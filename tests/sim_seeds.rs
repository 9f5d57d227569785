//! Host: every failure the seeds describe, reproduced on the cache model.
//!
//! Each scenario runs twice: without maintenance (the negative control: the
//! oracle must report the failure) and with the maintenance written by hand
//! (the positive control: nothing to report). The CPU-only scenarios also run
//! on the PIPT reference, which must need no maintenance at all.

use vacmm::addr::{VirtAddr, VirtRange};
use vacmm::cache::{CacheGeometry, CacheMaintenance};
use vacmm::sim::{CpuModel, KERNEL, MemType, Sim, SpaceId, Violation, ViolationKind};

const MEMORY: usize = 1 << 20;
const WB: MemType = MemType::WriteBack;

fn pipt() -> CpuModel {
    CpuModel::pipt(CacheGeometry::new(16 << 10, 4, 32).unwrap())
}

fn va(addr: u32) -> VirtAddr {
    VirtAddr(addr)
}

fn page(addr: u32) -> VirtRange {
    VirtRange::new(VirtAddr(addr & !0xfff), 4096).unwrap()
}

fn kinds(violations: &[Violation]) -> Vec<ViolationKind> {
    violations.iter().map(|v| v.kind).collect()
}

/// Asserts that `violations` holds at least one of `kind`'s variant.
fn assert_reports(violations: &[Violation], matches: impl Fn(&ViolationKind) -> bool, what: &str) {
    assert!(
        violations.iter().any(|v| matches(&v.kind)),
        "{what}: expected the oracle to report it, got {:?}",
        kinds(violations)
    );
}

fn assert_clean(violations: &[Violation], what: &str) {
    assert!(
        violations.is_empty(),
        "{what}: expected no violation, got {violations:#?}"
    );
}

fn user(sim: &mut Sim, key: u16) -> SpaceId {
    let space = sim.create_space(key);
    sim.switch_to(space).unwrap();
    space
}

// ---- seed 000: kernel ↔ user shared buffer --------------------------------

/// A driver's buffer mapped by the kernel (0xC010_0000) and by a user
/// (0x0040_0000). The user has read it (its alias is cached); the kernel
/// writes new data; the user reads again.
fn seed000_shared_buffer(model: CpuModel, maintain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let (kernel_va, user_va, pa) = (0xc010_0000, 0x0040_0000, 0x1_0000);
    sim.map(KERNEL, kernel_va, pa, WB, true).unwrap();
    let u = user(&mut sim, 1);
    sim.map(u, user_va, pa, WB, true).unwrap();
    sim.load(user_va, 4).unwrap();
    sim.load(kernel_va, 4).unwrap();
    sim.store(kernel_va, 4, 0xfeed_0001).unwrap();
    if maintain {
        // Linux has no answer here on VIVT (seed 000): clean the kernel alias
        // and invalidate the user's before the user looks.
        sim.clean_dcache_range(page(kernel_va));
        sim.clean_invalidate_dcache_range(page(user_va));
    }
    let seen = sim.load(user_va, 4).unwrap();
    if maintain {
        assert_eq!(seen, 0xfeed_0001);
    }
    sim.take_violations()
}

#[test]
fn seed000_vivt_user_reads_stale_kernel_write() {
    assert_reports(
        &seed000_shared_buffer(CpuModel::arm926(), false),
        |k| *k == ViolationKind::StaleRead,
        "VIVT shared buffer",
    );
    assert_clean(
        &seed000_shared_buffer(CpuModel::arm926(), true),
        "VIVT shared buffer, flushed",
    );
    assert_clean(&seed000_shared_buffer(pipt(), false), "PIPT shared buffer");
}

// ---- seed 001: page cache written by the kernel, read through mmap ----------

fn seed001_page_cache(model: CpuModel, maintain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let (kernel_va, user_va, pa) = (0xc020_0000, 0x0050_1000, 0x2_0000);
    sim.map(KERNEL, kernel_va, pa, WB, true).unwrap();
    // The kernel fills the page-cache page (read() into the page, say).
    sim.load(kernel_va, 4).unwrap();
    for offset in (0..4096).step_by(4) {
        sim.store(kernel_va + offset, 4, 0xda7a_0000 | offset)
            .unwrap();
    }
    if maintain {
        // flush_dcache_page: the kernel alias must reach memory.
        sim.clean_dcache_range(page(kernel_va));
    }
    let u = user(&mut sim, 1);
    sim.map(u, user_va, pa, WB, false).unwrap();
    for offset in (0..4096).step_by(256) {
        sim.load(user_va + offset, 4).unwrap();
    }
    sim.take_violations()
}

#[test]
fn seed001_user_mapping_reads_stale_page_cache_page() {
    for model in [CpuModel::arm926(), CpuModel::arm1136_64k()] {
        assert_reports(
            &seed001_page_cache(model, false),
            |k| *k == ViolationKind::StaleRead,
            "page cache",
        );
        assert_clean(
            &seed001_page_cache(model, true),
            "page cache, flush_dcache_page",
        );
    }
    assert_clean(&seed001_page_cache(pipt(), false), "PIPT page cache");
}

// ---- seed 002: fork/COW, two addresses, context switch, exec, keys ----------

/// Fork with copy-on-write on a VIVT write-back cache: the parent's dirty
/// line holds the page's newest data when the kernel copies it for the child.
fn seed002_cow_copy(model: CpuModel, maintain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let (v, parent_pa, child_pa) = (0x0001_0000, 0x3_0000, 0x3_1000);
    let (k_src, k_dst) = (0xc030_0000, 0xc030_1000);
    sim.map(KERNEL, k_src, parent_pa, WB, true).unwrap();
    sim.map(KERNEL, k_dst, child_pa, WB, true).unwrap();
    let parent = user(&mut sim, 1);
    sim.map(parent, v, parent_pa, WB, true).unwrap();
    sim.load(v, 4).unwrap();
    sim.store(v, 4, 0x1234_5678).unwrap(); // dirty in the parent's line
    // fork: both map the page read-only; flush_cache_mm writes the parent's
    // lines back and drops them (on VIVT the child would hit them otherwise).
    if maintain {
        sim.clean_invalidate_dcache_range(page(v));
    }
    // The child writes: COW fault, the kernel copies through its own aliases.
    let mut copy = Vec::new();
    for offset in (0..4096).step_by(4) {
        copy.push(sim.load(k_src + offset, 4).unwrap());
    }
    for (i, word) in copy.into_iter().enumerate() {
        sim.store(k_dst + 4 * i as u32, 4, word).unwrap();
    }
    if maintain {
        sim.clean_dcache_range(page(k_dst));
    }
    let child = user(&mut sim, 2);
    sim.map(child, v, child_pa, WB, true).unwrap();
    let seen = sim.load(v, 4).unwrap();
    if maintain {
        assert_eq!(seen, 0x1234_5678);
    }
    sim.take_violations()
}

/// The "VAC COW data bomb": the parent breaks COW, gets the copy at the
/// same virtual address, and its old line (tagged by VA only) still hits.
fn seed002_cow_parent_remap(model: CpuModel, maintain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let (v, old_pa, new_pa) = (0x0002_0000, 0x4_0000, 0x4_1000);
    let parent = user(&mut sim, 1);
    sim.map(parent, v, old_pa, WB, true).unwrap();
    sim.load(v, 4).unwrap();
    sim.store(v, 4, 0xaaaa_0001).unwrap();
    if maintain {
        // flush_cache_page before the PTE changes.
        sim.clean_invalidate_dcache_range(page(v));
    }
    // COW break: the kernel copies old → new (memory to memory here) and
    // remaps the parent's page.
    let data = sim.memory(old_pa, 4096).unwrap();
    sim.dma_write(new_pa, &data).unwrap();
    sim.map(parent, v, new_pa, WB, true).unwrap();
    sim.store(v + 4, 4, 0xbbbb_0002).unwrap();
    sim.load(v, 4).unwrap();
    sim.take_violations()
}

/// One file page mapped twice in one address space (make_coherent's case).
fn seed002_two_addresses(model: CpuModel, maintain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let (a, b, pa) = (0x0060_0000, 0x0070_1000, 0x5_0000);
    let u = user(&mut sim, 1);
    sim.map(u, a, pa, WB, true).unwrap();
    sim.map(u, b, pa, WB, true).unwrap();
    if maintain {
        // What make_coherent does on VIVT: both aliases uncached.
        sim.set_mem_type(u, a, MemType::Bufferable).unwrap();
        sim.set_mem_type(u, b, MemType::Bufferable).unwrap();
    }
    sim.load(b, 4).unwrap();
    sim.load(a, 4).unwrap();
    sim.store(a, 4, 0x0a0a_0a0a).unwrap();
    sim.load(b, 4).unwrap();
    sim.store(b, 4, 0x0b0b_0b0b).unwrap();
    sim.load(a, 4).unwrap();
    sim.take_violations()
}

/// Two processes use the same virtual address for different pages; the
/// second runs after the first without a cache flush.
fn seed002_context_switch(model: CpuModel, keys: (u16, u16), maintain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let v = 0x0000_8000;
    let a = user(&mut sim, keys.0);
    sim.map(a, v, 0x6_0000, WB, true).unwrap();
    let b = sim.create_space(keys.1);
    sim.map(b, v, 0x6_1000, WB, true).unwrap();
    sim.load(v, 4).unwrap();
    sim.store(v, 4, 0xaaaa_aaaa).unwrap();
    if maintain {
        sim.clean_invalidate_dcache_all();
    }
    sim.switch_to(b).unwrap();
    sim.load(v, 4).unwrap();
    sim.take_violations()
}

/// exec: the new program maps new pages at the old virtual addresses.
fn seed002_exec(model: CpuModel, maintain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let v = 0x0000_9000;
    let u = user(&mut sim, 1);
    sim.map(u, v, 0x7_0000, WB, true).unwrap();
    sim.load(v, 4).unwrap();
    sim.store(v, 4, 0x01d0_0000).unwrap();
    if maintain {
        sim.clean_invalidate_dcache_range(page(v));
    }
    sim.unmap(u, v).unwrap();
    sim.map(u, v, 0x7_1000, WB, true).unwrap();
    sim.load(v, 4).unwrap();
    sim.take_violations()
}

#[test]
fn seed002_fork_copy_on_write() {
    let m = CpuModel::arm926();
    assert_reports(
        &seed002_cow_copy(m, false),
        |k| *k == ViolationKind::StaleRead,
        "COW copy of a dirty parent page",
    );
    assert_clean(
        &seed002_cow_copy(m, true),
        "COW copy after flushing the parent",
    );
    assert_reports(
        &seed002_cow_parent_remap(m, false),
        |k| matches!(k, ViolationKind::RemappedLineHit { .. }),
        "parent's stale line after the COW break",
    );
    assert_clean(
        &seed002_cow_parent_remap(m, true),
        "flush_cache_page before the remap",
    );
    assert_clean(&seed002_cow_copy(pipt(), false), "PIPT COW copy");
    assert_clean(&seed002_cow_parent_remap(pipt(), false), "PIPT COW break");
}

#[test]
fn seed002_one_page_at_two_addresses() {
    let m = CpuModel::arm926();
    assert_reports(
        &seed002_two_addresses(m, false),
        |k| *k == ViolationKind::StaleRead,
        "two aliases, cached",
    );
    assert_clean(&seed002_two_addresses(m, true), "two aliases, uncached");
    assert_clean(&seed002_two_addresses(pipt(), false), "PIPT two aliases");
}

#[test]
fn seed002_context_switch_without_flush() {
    let m = CpuModel::arm926();
    assert_reports(
        &seed002_context_switch(m, (1, 2), false),
        |k| matches!(k, ViolationKind::CrossSpaceLeak { .. }),
        "VIVT switch without flush",
    );
    assert_clean(
        &seed002_context_switch(m, (1, 2), true),
        "VIVT switch with a full flush",
    );
    assert_clean(
        &seed002_context_switch(pipt(), (1, 2), false),
        "PIPT switch",
    );
    // Process keys in the tags: no flush needed at switch time…
    let keyed = CpuModel::arm926_keyed();
    assert_clean(
        &seed002_context_switch(keyed, (1, 2), false),
        "keyed tags, distinct keys",
    );
    // …until a key is handed to another process without flushing its lines.
    assert_reports(
        &seed002_context_switch(keyed, (1, 1), false),
        |k| matches!(k, ViolationKind::CrossSpaceLeak { .. }),
        "keyed tags, key reused without flush",
    );
    assert_clean(
        &seed002_context_switch(keyed, (1, 1), true),
        "keyed tags, key reused after flush",
    );
}

#[test]
fn seed002_exec_reuses_virtual_addresses() {
    let m = CpuModel::arm926();
    assert_reports(
        &seed002_exec(m, false),
        |k| matches!(k, ViolationKind::RemappedLineHit { .. }),
        "exec",
    );
    assert_clean(&seed002_exec(m, true), "exec with flush");
    assert_clean(&seed002_exec(pipt(), false), "PIPT exec");
}

// ---- seed 003: invalidate vs clean+invalidate; table walks ------------------

fn seed003_invalidate(model: CpuModel, clean_first: bool) -> (Vec<Violation>, u32) {
    let mut sim = Sim::new(model, MEMORY);
    let v = 0xc040_0000;
    sim.map(KERNEL, v, 0x8_0000, WB, true).unwrap();
    sim.load(v, 4).unwrap();
    sim.store(v, 4, 0x600d_da7a).unwrap();
    if clean_first {
        sim.clean_invalidate_dcache_line(va(v));
    } else {
        // SAFETY (model): deliberately the wrong operation.
        unsafe { sim.invalidate_dcache_line(va(v)) };
    }
    let seen = sim.load(v, 4).unwrap();
    (sim.take_violations(), seen)
}

fn seed003_table_walk(model: CpuModel, maintain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let (table_va, table_pa) = (0xc000_4000, 0x4000);
    sim.map(KERNEL, table_va, table_pa, WB, true).unwrap();
    sim.load(table_va + 0x10, 4).unwrap();
    sim.store(table_va + 0x10, 4, 0x0010_0c0e).unwrap(); // a section descriptor
    if maintain {
        sim.clean_dcache_line(va(table_va + 0x10));
        sim.drain_write_buffer();
    }
    sim.table_walk(table_pa + 0x10).unwrap();
    sim.take_violations()
}

#[test]
fn seed003_invalidating_a_dirty_line_loses_data() {
    for model in [CpuModel::arm926(), CpuModel::arm1176_16k(), pipt()] {
        let (violations, _) = seed003_invalidate(model, false);
        assert_reports(
            &violations,
            |k| *k == ViolationKind::DirtyLineDiscarded,
            "invalidate",
        );
        let (violations, seen) = seed003_invalidate(model, true);
        assert_clean(&violations, "clean+invalidate");
        assert_eq!(seen, 0x600d_da7a);
    }
}

#[test]
fn seed003_table_walk_reads_uncleaned_descriptor() {
    for model in [CpuModel::arm926(), CpuModel::arm1136_32k(), pipt()] {
        assert_reports(
            &seed003_table_walk(model, false),
            |k| *k == ViolationKind::StaleTableWalk,
            "walk",
        );
        assert_clean(&seed003_table_walk(model, true), "walk after clean");
    }
}

// ---- VIPT aliasing: colours ---------------------------------------------------

fn vipt_two_mappings(model: CpuModel, a: u32, b: u32) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let u = user(&mut sim, 1);
    sim.map(u, a, 0x9_0000, WB, true).unwrap();
    sim.map(u, b, 0x9_0000, WB, true).unwrap();
    sim.load(b, 4).unwrap();
    sim.load(a, 4).unwrap();
    sim.store(a, 4, 0xc010_c010).unwrap();
    sim.load(b, 4).unwrap();
    sim.take_violations()
}

#[test]
fn vipt_aliases_of_different_colours_go_stale_same_colour_do_not() {
    let (a, other_colour, same_colour) = (0x0010_0000, 0x0020_1000, 0x0020_4000);
    for model in [CpuModel::arm1136_32k(), CpuModel::arm1136_64k()] {
        assert_reports(
            &vipt_two_mappings(model, a, other_colour),
            |k| *k == ViolationKind::StaleRead,
            "colours differ",
        );
        assert_clean(&vipt_two_mappings(model, a, same_colour), "same colour");
    }
    // 16 KiB 4-way: a way is one page, so there are no colours.
    assert_clean(
        &vipt_two_mappings(CpuModel::arm1176_16k(), a, other_colour),
        "ARM1176 16 KiB",
    );
    assert_clean(&vipt_two_mappings(pipt(), a, other_colour), "PIPT");
}

// ---- DMA ---------------------------------------------------------------------

/// A receive buffer at 0xA_0010 shares its first cache line with a CPU
/// variable at 0xA_0000 that the CPU keeps writing.
fn dma_shared_line_receive(model: CpuModel, handling: &str) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let (base_va, base_pa) = (0xc050_0000, 0xa_0000);
    sim.map(KERNEL, base_va, base_pa, WB, true).unwrap();
    let buffer = VirtRange::new(VirtAddr(base_va + 0x10), 0x70).unwrap();
    sim.load(base_va, 4).unwrap();
    sim.store(base_va, 4, 0x0000_c0de).unwrap(); // CPU data, dirty
    match handling {
        "plain invalidate" => {
            for line in (base_va..base_va + 0x80).step_by(32) {
                // SAFETY (model): the bug under test.
                unsafe { sim.invalidate_dcache_line(va(line)) };
            }
        }
        "clean after" => {}
        "vacmm" => {
            sim.clean_invalidate_dcache_range(buffer);
        }
        other => panic!("unknown handling {other}"),
    }
    sim.dma_write(base_pa + 0x10, &[0x5a; 0x70]).unwrap();
    match handling {
        "clean after" => {
            sim.clean_dcache_range(buffer);
        }
        "vacmm" => {
            // SAFETY (model): the buffer's bytes belong to the device now;
            // partial lines are cleaned, not discarded.
            unsafe { sim.invalidate_dcache_range(buffer) };
        }
        _ => {}
    }
    sim.load(base_va, 4).unwrap();
    sim.load(base_va + 0x10, 4).unwrap();
    sim.take_violations()
}

#[test]
fn dma_buffer_sharing_a_line_with_cpu_data() {
    let m = CpuModel::arm926();
    assert_reports(
        &dma_shared_line_receive(m, "plain invalidate"),
        |k| *k == ViolationKind::DirtyLineDiscarded,
        "plain invalidate drops the CPU's variable",
    );
    assert_reports(
        &dma_shared_line_receive(m, "clean after"),
        |k| *k == ViolationKind::StaleWriteBack,
        "cleaning after the transfer writes stale bytes over the DMA data",
    );
    assert_clean(
        &dma_shared_line_receive(m, "vacmm"),
        "clean+invalidate before, partial-aware invalidate after",
    );
}

fn dma_transmit_then_receive(model: CpuModel, maintain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let (buf_va, buf_pa) = (0xc060_0000, 0xb_0000);
    sim.map(KERNEL, buf_va, buf_pa, WB, true).unwrap();
    let buffer = VirtRange::new(VirtAddr(buf_va), 256).unwrap();
    for offset in (0..256).step_by(4) {
        sim.load(buf_va + offset, 4).unwrap();
        sim.store(buf_va + offset, 4, offset).unwrap();
    }
    if maintain {
        sim.clean_dcache_range(buffer); // to-device
    }
    sim.dma_read(buf_pa, 256).unwrap();
    sim.dma_write(buf_pa, &[7; 256]).unwrap();
    if maintain {
        // SAFETY (model): the device owns the whole, line-aligned buffer.
        unsafe { sim.invalidate_dcache_range(buffer) }; // from-device
    }
    sim.load(buf_va + 64, 4).unwrap();
    sim.take_violations()
}

#[test]
fn dma_reads_stale_memory_and_cpu_reads_stale_lines() {
    let violations = dma_transmit_then_receive(CpuModel::arm926(), false);
    assert_reports(
        &violations,
        |k| *k == ViolationKind::DmaReadStaleMemory,
        "transmit without clean",
    );
    assert_reports(
        &violations,
        |k| *k == ViolationKind::StaleReadAfterDma,
        "receive without invalidate",
    );
    assert_clean(
        &dma_transmit_then_receive(CpuModel::arm926(), true),
        "DMA with maintenance",
    );
    // DMA is not CPU-only: even PIPT needs the maintenance.
    assert_reports(
        &dma_transmit_then_receive(pipt(), false),
        |k| *k == ViolationKind::DmaReadStaleMemory,
        "PIPT DMA",
    );
}

// ---- code written then executed -------------------------------------------

fn self_modifying(model: CpuModel, maintain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let code = 0x0000_c000;
    let u = user(&mut sim, 1);
    sim.map(u, code, 0xc_0000, WB, true).unwrap();
    sim.fetch(code).unwrap(); // the old code is in the I-cache
    sim.load(code, 4).unwrap();
    sim.store(code, 4, 0xe12f_ff1e).unwrap(); // bx lr, written through the D-side
    if maintain {
        // flush_icache_range: clean D to memory, drop the I lines.
        let range = VirtRange::new(VirtAddr(code), 4).unwrap();
        sim.clean_dcache_range(range);
        sim.invalidate_icache_range(range);
    }
    sim.fetch(code).unwrap();
    sim.take_violations()
}

#[test]
fn code_written_then_fetched_needs_d_clean_and_i_invalidate() {
    for model in [CpuModel::arm926(), CpuModel::arm1176_16k(), pipt()] {
        assert_reports(
            &self_modifying(model, false),
            |k| *k == ViolationKind::StaleFetch,
            "stale fetch",
        );
        assert_clean(&self_modifying(model, true), "flush_icache_range");
    }
}

// ---- the write buffer and the other model options -----------------------------

/// A descriptor written through an uncached (bufferable) mapping sits in the
/// write buffer: the walker sees it only after a drain.
fn buffered_descriptor(model: CpuModel, drain: bool) -> Vec<Violation> {
    let mut sim = Sim::new(model, MEMORY);
    let (table_va, table_pa) = (0xc000_8000, 0x8000);
    sim.map(KERNEL, table_va, table_pa, MemType::Bufferable, true)
        .unwrap();
    sim.store(table_va, 4, 0x0020_0c0e).unwrap();
    if drain {
        sim.drain_write_buffer();
    }
    sim.table_walk(table_pa).unwrap();
    // The CPU itself always reads its own buffered store.
    sim.load(table_va, 4).unwrap();
    sim.take_violations()
}

#[test]
fn write_buffer_hides_stores_from_the_walker_until_drained() {
    let m = CpuModel::arm926();
    assert_reports(
        &buffered_descriptor(m, false),
        |k| *k == ViolationKind::StaleTableWalk,
        "no drain",
    );
    assert_clean(&buffered_descriptor(m, true), "drained");
    // Without a write buffer the store is in memory at once.
    assert_clean(
        &buffered_descriptor(m.with_write_buffer(0), false),
        "no write buffer",
    );
}

#[test]
fn write_through_pages_never_hold_dirty_lines() {
    let mut sim = Sim::new(CpuModel::arm926().with_write_buffer(0), MEMORY);
    let v = 0xc070_0000;
    sim.map(KERNEL, v, 0xd_0000, MemType::WriteThrough, true)
        .unwrap();
    sim.load(v, 4).unwrap();
    sim.store(v, 4, 0x7777_7777).unwrap();
    // Invalidating is harmless: memory already has the data.
    // SAFETY (model): no data is at stake in the model.
    unsafe { sim.invalidate_dcache_line(va(v)) };
    assert_eq!(sim.load(v, 4).unwrap(), 0x7777_7777);
    assert_clean(sim.violations(), "write-through");
    assert_eq!(sim.counters().write_backs, 0);
}

#[test]
fn seeded_random_replacement_is_deterministic() {
    use vacmm::sim::Replacement;
    let run = |seed| {
        let mut model = CpuModel::arm926();
        model.dcache.replacement = Replacement::PseudoRandom { seed };
        let mut sim = Sim::new(model, MEMORY);
        for p in 0..16 {
            sim.map(KERNEL, 0xc100_0000 + p * 4096, p * 4096, WB, true)
                .unwrap();
        }
        for i in 0..20_000u32 {
            let addr = 0xc100_0000 + (i.wrapping_mul(0x9e5) & 0xfffc);
            if i % 3 == 0 {
                sim.store(addr, 4, i).unwrap();
            } else {
                sim.load(addr, 4).unwrap();
            }
        }
        assert_clean(sim.violations(), "random replacement workload");
        *sim.counters()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8), "different seeds should evict differently");
}
