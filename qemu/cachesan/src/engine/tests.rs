//! The engine driven directly, without QEMU.

use std::sync::{Arc, Mutex};

use vacmm::mmu::{Attributes, L1Descriptor, L2Descriptor};

use super::translation::mem_type;
use super::*;
use crate::cp15::decode;

/// Report output the test can read back.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Output {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

const L1: u32 = 0x4000;
const COARSE: u32 = 0x8000;
const SECTION_VA_ALIAS: u32 = 0x0010_0000;
const PAGE_VA: u32 = 0x0020_0000;

// mcr p15, 0, r0, <op>: Rt = r0 in every encoding below.
const TTBR0: u32 = 0xee02_0f10;
const SCTLR: u32 = 0xee01_0f10;
const DRAIN: u32 = 0xee07_0f9a;
const CLEAN_LINE: u32 = 0xee07_0f3a;
const INVALIDATE_LINE: u32 = 0xee07_0f36;
const TLB_ALL: u32 = 0xee08_0f17;
const TLB_MVA: u32 = 0xee08_0f37;
const TLB_ASID: u32 = 0xee08_0f57;
const CONTEXTIDR: u32 = 0xee0d_0f30;

fn engine(args: &[&str]) -> (Engine, Output) {
    let mut all = vec!["ram=1M"];
    all.extend_from_slice(args);
    let config = Config::parse(all).unwrap();
    let out = Output::default();
    (
        Engine::with_output(config, Box::new(out.clone())).unwrap(),
        out,
    )
}

fn op(e: &mut Engine, pc: u32, word: u32, rt: u32) {
    e.on_cp15(pc, &decode(word).unwrap(), rt, 0, 0);
}

fn store(e: &mut Engine, pc: u32, va: u32, pa: u32, value: u32) {
    e.on_access(pc, va, u64::from(pa), 4, Some(u64::from(value)), false);
}

fn load(e: &mut Engine, pc: u32, va: u32, pa: u32) {
    e.on_access(pc, va, u64::from(pa), 4, None, false);
}

/// MMU off: the first MiB mapped twice (VA 0 and VA 1 MiB → PA 0),
/// write-back, the table written uncached and drained; then MMU,
/// D- and I-cache on.
fn boot(e: &mut Engine, arch: Arch) {
    let attrs = Attributes::KERNEL_RWX.to_hw(arch).unwrap();
    let section = L1Descriptor::Section {
        base: PhysAddr(0),
        domain: 0,
        attrs,
    }
    .encode(arch)
    .unwrap();
    store(e, 0x10, L1, L1, section);
    store(e, 0x14, L1 + 4, L1 + 4, section);
    op(e, 0x18, DRAIN, 0);
    op(e, 0x1c, TTBR0, L1);
    let xp = if arch == Arch::Armv6 { SCTLR_XP } else { 0 };
    op(e, 0x20, SCTLR, SCTLR_M | SCTLR_C | SCTLR_I | xp);
}

#[test]
fn an_actlr_cz_write_under_a_larger_model_is_noted_once() {
    // mcr p15, 0, r0, c1, c0, 1: ACTLR.
    const ACTLR: u32 = 0xee01_0f30;
    const CZ: u32 = 1 << 6;
    let (mut e, out) = engine(&["cpu=arm1136"]);
    op(&mut e, 0x10, ACTLR, 0x7);
    assert!(!out.text().contains("note"), "{}", out.text());
    op(&mut e, 0x14, ACTLR, 0x7 | CZ);
    op(&mut e, 0x18, ACTLR, 0x7 | CZ);
    let text = out.text();
    assert_eq!(text.matches("note ACTLR.CZ set").count(), 1, "{text}");
    assert!(
        text.contains("keeps 64 KiB; rerun with geometry=16k"),
        "{text}"
    );
    // A 16 KiB model is what CZ makes: nothing to say.
    let (mut e, out) = engine(&["cpu=arm1176"]);
    op(&mut e, 0x10, ACTLR, CZ);
    assert!(!out.text().contains("note"), "{}", out.text());
    assert_eq!(e.violations(), 0);
}

/// A stale alias line written back: the report names the store that
/// dirtied it beside the clean that wrote it back, and the group is
/// the dirtier's.
#[test]
fn a_stale_write_back_names_and_groups_by_the_store_that_dirtied_it() {
    let (mut e, out) = engine(&["cpu=arm926"]);
    boot(&mut e, Arch::Armv5);
    let alias = SECTION_VA_ALIAS + 0x1000;
    load(&mut e, 0x100, alias, 0x1000);
    store(&mut e, 0x200, 0x1000, 0x1000, 7);
    store(&mut e, 0x300, alias + 4, 0x1004, 8);
    op(&mut e, 0x400, CLEAN_LINE, alias);
    op(&mut e, 0x404, DRAIN, 0);
    let f = e
        .findings()
        .iter()
        .find(|f| f.violation.kind == ViolationKind::StaleWriteBack)
        .expect("the write-back of the stale alias")
        .clone();
    // The clean queues the line in the ARM926's write buffer; it lands,
    // over the newer buffered store, at the drain.
    assert_eq!((f.pc, f.cause()), (0x404, 0x300));
    e.finish();
    let text = out.text();
    assert!(text.contains("line-writer-pc=0x00000300"), "{text}");
    assert!(
        text.contains("group kind=StaleWriteBack function=? count=1 sites=1"),
        "{text}"
    );
}

/// `omit=`: the maintenance inside the function (entered at 0x40,
/// returning to 0x304) is ignored, so the alias it should have
/// invalidated is read stale; the twin without `omit=` reads fresh data.
#[test]
fn omitted_maintenance_is_ignored_from_entry_to_return() {
    use object::SymbolKind;
    let image = crate::symbols::testing::elf(
        "omit",
        &[("invalidate_alias", 0x40, 0x40, SymbolKind::Text, true)],
    );
    let elf = format!("elf={}", image.display());
    for omit in [false, true] {
        let mut args = vec!["cpu=arm926", elf.as_str()];
        if omit {
            args.push("omit=invalidate_alias");
        }
        let (mut e, out) = engine(&args);
        boot(&mut e, Arch::Armv5);
        let alias = SECTION_VA_ALIAS + 0x1000;
        load(&mut e, 0x100, alias, 0x1000);
        store(&mut e, 0x200, 0x1000, 0x1000, 7);
        op(&mut e, 0x300, DRAIN, 0);
        // The call, as the plugin reports it.
        assert_eq!(e.is_omit_entry(0x40), omit);
        e.on_fetch(0x40, 4);
        if e.is_omit_entry(0x40) {
            e.on_omit_entry(0x304);
            // A loop back to the entry is the same call.
            e.on_omit_entry(0x304);
        }
        op(&mut e, 0x44, INVALIDATE_LINE, alias);
        e.on_fetch(0x304, 4);
        load(&mut e, 0x308, alias, 0x1000);
        assert_eq!(e.violations(), u64::from(omit), "{}", out.text());
        assert_eq!(e.stats().omitted, u64::from(omit));
        // Returned: maintenance counts again.
        op(&mut e, 0x30c, INVALIDATE_LINE, alias);
        load(&mut e, 0x310, alias, 0x1000);
        assert_eq!(e.violations(), u64::from(omit), "{}", out.text());
    }
    // A name no image has is refused.
    let config = Config::parse(["cpu=arm926", elf.as_str(), "omit=no_such_function"]).unwrap();
    let refused = Engine::with_output(config, Box::new(Output::default()));
    std::fs::remove_file(&image).unwrap();
    assert!(refused.err().unwrap().contains("omit=no_such_function"));
}

/// A guest phase labels the findings made in it and counts them.
#[test]
fn findings_carry_the_guest_phase() {
    let (mut e, out) = engine(&["cpu=arm926"]);
    boot(&mut e, Arch::Armv5);
    e.on_phase("quiet part");
    let alias = SECTION_VA_ALIAS + 0x1000;
    load(&mut e, 0x100, alias, 0x1000);
    e.on_phase("io_uring");
    store(&mut e, 0x200, 0x1000, 0x1000, 7);
    load(&mut e, 0x300, alias, 0x1000);
    e.finish();
    let text = out.text();
    assert!(
        text.contains("newest=") && text.contains(" phase=io_uring"),
        "{text}"
    );
    assert!(text.contains("phase name=io_uring violations=1"), "{text}");
    assert!(!text.contains("phase name=quiet_part"), "{text}");
}

#[test]
fn a_vivt_alias_is_a_stale_read_at_the_reading_pc() {
    let (mut e, out) = engine(&["cpu=arm926"]);
    boot(&mut e, Arch::Armv5);
    assert_eq!(e.violations(), 0, "{}", out.text());
    load(&mut e, 0x100, SECTION_VA_ALIAS + 0x1000, 0x1000);
    store(&mut e, 0x200, 0x1000, 0x1000, 7);
    load(&mut e, 0x300, SECTION_VA_ALIAS + 0x1000, 0x1000);
    assert_eq!(e.violations(), 1);
    let f = &e.findings()[0];
    assert_eq!(f.violation.kind, ViolationKind::StaleRead);
    assert_eq!((f.pc, f.during), (0x300, During::Load));
    assert_eq!(
        f.violation.last_writer,
        Writer::Cpu {
            space: SpaceId(1),
            va: 0x1000,
            pc: Some(0x200)
        }
    );
    assert_eq!(e.finish(), 1);
    let text = out.text();
    assert!(
        text.contains(
            "violation kind=StaleRead pc=0x00000300 at=? during=load va=0x00101000 pa=0x00001000"
        ),
        "{text}"
    );
    assert!(text.contains("writer-pc=0x00000200"), "{text}");
    assert!(
        text.contains("site kind=StaleRead pc=0x00000300 at=? group=? count=1"),
        "{text}"
    );
    assert!(text.ends_with("cachesan: result violations=1\n"), "{text}");
}

/// Maps PAGE_VA + 0x2000 → PA 0x1000 with a small page (colour 2 of a
/// 64 KiB cache, where the identity alias 0x1000 has colour 1), written
/// with the MMU off and drained.
fn map_other_colour(e: &mut Engine, arch: Arch) {
    let coarse = L1Descriptor::Coarse {
        table: PhysAddr(COARSE),
        domain: 0,
    }
    .encode(arch)
    .unwrap();
    let small = L2Descriptor::Small {
        base: PhysAddr(0x1000),
        attrs: Attributes::KERNEL_DATA.to_hw(arch).unwrap(),
    }
    .encode(arch)
    .unwrap();
    let slot_l1 = L1 + (PAGE_VA >> 20) * 4;
    store(e, 0x08, slot_l1, slot_l1, coarse);
    store(e, 0x0c, COARSE + 8, COARSE + 8, small);
}

/// VIPT: two colours are two lines (ARM1136 64 KiB), one colour is one
/// line (ARM1176 16 KiB): the same accesses, reported on one only.
#[test]
fn vipt_aliases_are_stale_only_at_different_colours() {
    for (cpu, expected) in [("cpu=arm1136", 1), ("cpu=arm1176", 0)] {
        let (mut e, out) = engine(&[cpu]);
        map_other_colour(&mut e, Arch::Armv6);
        boot(&mut e, Arch::Armv6);
        load(&mut e, 0x100, PAGE_VA + 0x2000, 0x1000);
        store(&mut e, 0x200, 0x1000, 0x1000, 7);
        load(&mut e, 0x300, PAGE_VA + 0x2000, 0x1000);
        assert_eq!(e.violations(), expected, "{cpu}: {}", out.text());
        if expected == 1 {
            assert_eq!(e.findings()[0].violation.kind, ViolationKind::StaleRead);
            assert_eq!(e.findings()[0].pc, 0x300);
        }
    }
}

/// A descriptor written through the cache and used before a clean is a
/// stale table walk at the instruction that needed the walk; cleaned and
/// drained, it is not.
#[test]
fn an_uncleaned_descriptor_is_a_stale_table_walk() {
    for clean in [false, true] {
        let (mut e, _) = engine(&["cpu=arm926"]);
        boot(&mut e, Arch::Armv5);
        let coarse = L1Descriptor::Coarse {
            table: PhysAddr(COARSE),
            domain: 0,
        }
        .encode(Arch::Armv5)
        .unwrap();
        let slot_l1 = L1 + (PAGE_VA >> 20) * 4;
        store(&mut e, 0x30, slot_l1, slot_l1, coarse);
        op(&mut e, 0x34, CLEAN_LINE, slot_l1);
        op(&mut e, 0x38, DRAIN, 0);
        let small = L2Descriptor::Small {
            base: PhysAddr(0x5000),
            attrs: Attributes::KERNEL_DATA.to_hw(Arch::Armv5).unwrap(),
        }
        .encode(Arch::Armv5)
        .unwrap();
        // Read first: the ARM926 allocates on reads only.
        load(&mut e, 0x40, COARSE, COARSE);
        store(&mut e, 0x44, COARSE, COARSE, small);
        if clean {
            op(&mut e, 0x48, CLEAN_LINE, COARSE);
            op(&mut e, 0x4c, DRAIN, 0);
        }
        load(&mut e, 0x50, PAGE_VA, 0x5000);
        if clean {
            assert_eq!(e.violations(), 0);
        } else {
            assert_eq!(e.violations(), 1);
            let f = &e.findings()[0];
            assert_eq!(f.violation.kind, ViolationKind::StaleTableWalk);
            assert_eq!((f.pc, f.violation.pa), (0x50, COARSE));
        }
    }
}

/// ARMv6: non-global entries belong to their ASID; TLB operations by
/// MVA, by ASID and all drop what they should, so the next access walks.
#[test]
fn tlb_entries_follow_asids_and_tlb_operations() {
    let (mut e, _) = engine(&["cpu=arm1176"]);
    boot(&mut e, Arch::Armv6);
    let walks = |e: &Engine| e.stats().walks;
    load(&mut e, 0x100, 0x1000, 0x1000);
    let w = walks(&e);
    load(&mut e, 0x104, 0x1004, 0x1004);
    assert_eq!(walks(&e), w, "TLB hit");
    op(&mut e, 0x108, TLB_MVA, 0x1000);
    load(&mut e, 0x10c, 0x1004, 0x1004);
    assert_eq!(walks(&e), w + 1, "dropped by MVA");
    op(&mut e, 0x110, CONTEXTIDR, 5);
    load(&mut e, 0x114, 0x1008, 0x1008);
    assert_eq!(walks(&e), w + 1, "a global entry serves every ASID");
    op(&mut e, 0x118, TLB_ASID, 5);
    load(&mut e, 0x11c, 0x1008, 0x1008);
    assert_eq!(walks(&e), w + 1, "global entries survive an ASID flush");
    op(&mut e, 0x120, TLB_ALL, 0);
    load(&mut e, 0x124, 0x1008, 0x1008);
    assert_eq!(walks(&e), w + 2);
    // QEMU's physical address disagreeing with the model's entry (a
    // stale TLB entry, or QEMU's own flush) makes the model walk again.
    e.on_access(0x128, 0x100c, 0x9_100c, 4, None, false);
    assert_eq!(e.stats().tlb_disagreements, 1);
}

/// `ram-base=`: a board whose RAM is not at 0 (QEMU's kzm, i.MX31, at
/// 0x8000_0000) is modelled there: its table walked, a stale VIVT
/// alias found, and what lies below the base counted, not modelled.
#[test]
fn ram_at_a_base_is_modelled_there_and_only_there() {
    let base = 0x8000_0000;
    let (mut e, out) = engine(&["cpu=arm926", "ram-base=0x80000000"]);
    assert!(
        out.text().contains("1 MiB RAM at 0x80000000"),
        "{}",
        out.text()
    );
    let l1 = base + L1;
    let attrs = Attributes::KERNEL_RWX.to_hw(Arch::Armv5).unwrap();
    let section = L1Descriptor::Section {
        base: PhysAddr(base),
        domain: 0,
        attrs,
    }
    .encode(Arch::Armv5)
    .unwrap();
    // VA 0x8000_0000 and 0x9000_0000 both map the first MiB of RAM.
    for va in [base, 0x9000_0000] {
        let entry = l1 + (va >> 20) * 4;
        store(&mut e, 0x10, entry, entry, section);
    }
    op(&mut e, 0x18, DRAIN, 0);
    op(&mut e, 0x1c, TTBR0, l1);
    op(&mut e, 0x20, SCTLR, SCTLR_M | SCTLR_C | SCTLR_I);
    let pa = base + 0x2_0000;
    load(&mut e, 0x24, pa, pa);
    store(&mut e, 0x28, 0x9002_0000, pa, 5);
    op(&mut e, 0x2c, DRAIN, 0);
    assert_eq!(e.violations(), 0);
    load(&mut e, 0x30, pa, pa);
    assert_eq!(e.violations(), 1, "{}", out.text());
    assert_eq!(e.stats().outside_ram, 0);
    e.on_access(0x34, 0x1000, 0x1000, 4, None, false);
    assert_eq!(e.stats().outside_ram, 1);
}

#[test]
fn devices_ram_limits_and_failed_conditions_are_counted_not_modelled() {
    let (mut e, _) = engine(&["cpu=arm926"]);
    boot(&mut e, Arch::Armv5);
    e.on_access(0x10, 0x101f_1000, 0x101f_1000, 4, Some(0x41), true);
    e.on_access(0x14, 0x0020_0000, 0x0020_0000, 4, None, false);
    assert_eq!((e.stats().io, e.stats().outside_ram), (1, 1));
    let mut never = decode(TLB_ALL).unwrap();
    never.cond = 0; // EQ, with Z clear
    let ops = e.stats().cp15_ops;
    e.on_cp15(0x18, &never, 0, 0, 0);
    assert_eq!(e.stats().cp15_skipped, 1);
    assert_eq!(e.stats().cp15_ops, ops);
    assert_eq!(e.violations(), 0);
}

#[test]
fn set_way_operands_follow_the_model_geometry() {
    let (e, _) = engine(&["cpu=arm926"]);
    // 16 KiB, 4 ways, 32-byte lines: 128 sets, way in bits 31:30.
    assert_eq!(e.set_way((3 << 30) | (127 << 5), false), (127, 3));
    assert_eq!(e.set_way(1 << 5, false), (1, 0));
    let (e, _) = engine(&["cpu=arm1136"]);
    // 64 KiB: 512 sets.
    assert_eq!(e.set_way((2 << 30) | (511 << 5), false), (511, 2));
}

#[test]
fn memory_types_follow_tex_c_b() {
    let hw = |tex, c, b| HwAttrs {
        tex,
        c,
        b,
        ..HwAttrs::default()
    };
    assert_eq!(mem_type(hw(0, true, true), Arch::Armv5), MemType::WriteBack);
    assert_eq!(
        mem_type(hw(0, true, false), Arch::Armv5),
        MemType::WriteThrough
    );
    assert_eq!(
        mem_type(hw(0, false, true), Arch::Armv5),
        MemType::Bufferable
    );
    assert_eq!(
        mem_type(hw(0, false, false), Arch::Armv5),
        MemType::StronglyOrdered
    );
    assert_eq!(
        mem_type(hw(0, false, true), Arch::Armv6),
        MemType::StronglyOrdered
    );
    assert_eq!(
        mem_type(hw(1, false, false), Arch::Armv6),
        MemType::Bufferable
    );
    assert_eq!(
        mem_type(hw(0b101, false, true), Arch::Armv6),
        MemType::WriteBack
    );
    assert_eq!(
        mem_type(hw(0b110, true, false), Arch::Armv6),
        MemType::WriteThrough
    );
    assert_eq!(
        mem_type(hw(0b100, false, false), Arch::Armv6),
        MemType::Bufferable
    );
}
