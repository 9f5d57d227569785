//! Context switches made by other means than the engine
//! ([`Engine::set_current`]): a kernel with its own switch path tells the
//! engine which space now runs, and whether the switch flushed the
//! caches. An engine that does not listen keeps maintaining the space it
//! believes runs and skips the one that does, whose lines it believes
//! flushed.

use super::*;

/// Spaces A and B map one page-cache page shared; A runs (through the
/// engine) and stores, then B is switched to by the switcher alone (a
/// VIVT flush on the ARM926), reads and stores (a dirty line in B's
/// alias), and the kernel reads the page
/// through a `Kmap`. With `tell`, the engine hears of the switch.
fn switched_by_other_means(model: CpuModel, tell: bool) -> (Vec<ViolationKind>, u32) {
    let mut m = Machine::new(model);
    let mut a = m.space();
    let mut b = m.space();
    let file = m.file(1);
    let frame = m.sys.allocator.allocate_colour(0).unwrap();
    m.sys.objects.insert_page(file, 0, frame).unwrap();
    // Two addresses: on a VIVT cache without PIDs, maintenance of A's
    // alias at B's address would reach B's line too (64 KiB apart: one
    // colour on every cache).
    let [va_a, va_b] = [BASE - 0x10_0000, BASE - 0x0f_0000];
    for (space, va) in [(&mut a, va_a), (&mut b, va_b)] {
        let args = MmapArgs {
            addr: Some(VirtAddr(va)),
            fixed: true,
            ..MmapArgs::shared_object(file, 0, PAGE)
        };
        space.mmap(&mut m.sys, args).unwrap();
    }
    m.switch_to(&mut a);
    user_store(&mut m, &mut a, va_a + 8, 0xaaaa, Faults::Engine);
    // SAFETY: the model's registers; no real translation changes.
    let report = unsafe { m.switcher.switch_to(&mut m.sys.mem, b.table_mut()) }.unwrap();
    if tell {
        m.engine.set_current(b.id(), report.cache_flushed);
        assert_eq!(m.engine.current(), b.id());
    }
    // A load first: the ARM926 allocates lines on reads only.
    user_load(&mut m, &mut b, va_b + 8, Faults::Engine);
    user_store(&mut m, &mut b, va_b + 8, 0xbbbb, Faults::Engine);
    let mut kmap = m.engine.kmap(&mut m.sys, frame, KmapAccess::Read).unwrap();
    let at = kmap.va().as_u32();
    let seen = kmap.mem().load(at + 8, 4).unwrap();
    drop(kmap);
    (violations(&mut m), seen)
}

#[test]
fn a_space_switched_to_by_other_means_is_maintained_once_the_engine_is_told() {
    for (name, model) in presets() {
        assert_eq!(
            switched_by_other_means(model, true),
            (vec![], 0xbbbb),
            "{name}"
        );
    }
}

/// The twin: untold, the engine believes A runs and B's lines were
/// flushed at A's switch, so the `Kmap` skips B's dirty line (VIVT).
#[test]
fn twin_a_space_switched_to_untold_is_skipped_on_vivt() {
    let (bad, seen) = switched_by_other_means(CpuModel::arm926(), false);
    assert_ne!(seen, 0xbbbb);
    assert!(bad.contains(&ViolationKind::StaleRead), "{bad:?}");
}
