//! Issue 19's findings in the engine and `mm`: each test failed on the
//! crate before its fix. Data-loss findings run on the cache model with
//! its oracle, and where the failure is the cache's, a twin shows it with
//! the maintenance left out.

extern crate std;

use super::*;
use crate::mm::space::Backing;

const BUFFER_KVA: u32 = 0xfe00_0000;

/// A machine running one space that sees the kernel's MiB at
/// `BUFFER_KVA` (where uncached buffers are mapped), with an uncached
/// shared buffer of one page.
fn uncached_buffer(model: CpuModel) -> (Machine, AddressSpace, shared::SharedBuffer) {
    uncached_buffer_with(Machine::new(model))
}

fn uncached_buffer_with(mut m: Machine) -> (Machine, AddressSpace, shared::SharedBuffer) {
    let mut space = m.space();
    m.switch_to(&mut space);
    let mode = shared::SharingMode::Uncached {
        kernel_base: VirtAddr(BUFFER_KVA),
    };
    let buffer = m
        .engine
        .create_shared_buffer(&mut m.sys, Some(&mut m.kernel), 1, mode)
        .unwrap();
    space
        .table_mut()
        .share_entries_from(
            &mut m.sys.mem,
            &m.kernel,
            VirtRange::new(VirtAddr(BUFFER_KVA), 1 << 20).unwrap(),
        )
        .unwrap();
    (m, space, buffer)
}

/// A private (copy-on-write) mapping of the buffer's page.
fn private_copy_of(
    m: &mut Machine,
    space: &mut AddressSpace,
    buffer: &shared::SharedBuffer,
) -> u32 {
    let args = MmapArgs {
        shared: false,
        ..MmapArgs::shared_object(buffer.object(), 0, PAGE)
    };
    m.engine.mmap(&mut m.sys, space, args).unwrap().as_u32()
}

/// Finding 1: two private copies of an uncached buffer's page, the kernel
/// writing the buffer (uncached) between them. Returns what the second
/// copy shows of the kernel's write, and the oracle's findings.
fn copy_uncached_buffer_twice(model: CpuModel, faults: Faults) -> (u32, Vec<ViolationKind>) {
    let (mut m, mut space, buffer) = uncached_buffer(model);
    let kva = buffer.kernel_va(0).unwrap().as_u32();
    let a = private_copy_of(&mut m, &mut space, &buffer);
    user_store(&mut m, &mut space, a + 0x100, 0xaaaa, faults);
    m.sys.mem.store(kva + 0x200, 4, 0x1111).unwrap();
    let b = private_copy_of(&mut m, &mut space, &buffer);
    user_store(&mut m, &mut space, b + 0x100, 0xbbbb, faults);
    let seen = user_load(&mut m, &mut space, b + 0x200, faults);
    assert_eq!(user_load(&mut m, &mut space, a + 0x100, faults), 0xaaaa);
    (seen, violations(&mut m))
}

fn uncached_copy_presets() -> [(&'static str, CpuModel); 2] {
    [
        ("ARM1136 64K", CpuModel::arm1136_64k()),
        ("ARM1176 16K", CpuModel::arm1176_16k()),
    ]
}

#[test]
fn copy_on_write_of_an_uncached_buffer_reads_the_kernel_s_last_write() {
    for (name, model) in uncached_copy_presets().into_iter().chain(presets()) {
        let (seen, bad) = copy_uncached_buffer_twice(model, Faults::Engine);
        assert_eq!((seen, bad), (0x1111, vec![]), "{name}");
    }
}

/// The twin: the copies made by `copy_page` through the kernel's cached
/// linear map with no maintenance (what the engine did before) read the
/// line the first copy left behind.
#[test]
fn twin_copy_on_write_of_an_uncached_buffer_through_the_linear_map_is_caught() {
    for (name, model) in uncached_copy_presets() {
        let (mut m, mut space, buffer) = uncached_buffer(model);
        let kva = buffer.kernel_va(0).unwrap().as_u32();
        let copy = |m: &mut Machine, space: &mut AddressSpace| {
            let va = private_copy_of(m, space, &buffer);
            match space.fault(&mut m.sys, VirtAddr(va), FaultAccess::Write) {
                Ok(crate::mm::space::FaultOutcome::CopyOnWrite { from, to, .. }) => {
                    let (kto, kfrom) = (m.engine.kernel_va(to), m.engine.kernel_va(from));
                    m.sys.mem.copy_page(kto, kfrom).unwrap();
                    m.sys.mem.clean_invalidate_dcache_range(page_range(kto));
                }
                other => panic!("{name}: {other:?}"),
            }
            va
        };
        copy(&mut m, &mut space);
        m.sys.mem.store(kva + 0x200, 4, 0x1111).unwrap();
        let b = copy(&mut m, &mut space);
        let seen = m.sys.mem.load(b + 0x200, 4).unwrap();
        let bad = violations(&mut m);
        assert!(
            seen != 0x1111 && bad.contains(&ViolationKind::StaleRead),
            "{name}: {seen:#x} {bad:?}"
        );
    }
}

/// Finding 2: `MAP_FIXED` over the only mapping of a shared anonymous
/// object, mapping that same object again. Linux holds a reference on the
/// file for the call; the object must outlive the unmap, and its data too.
#[test]
fn map_fixed_over_the_only_mapping_of_its_source_keeps_the_source() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut space = m.space();
        m.switch_to(&mut space);
        let args = MmapArgs {
            shared: true,
            ..MmapArgs::anonymous(PAGE)
        };
        let va = m.engine.mmap(&mut m.sys, &mut space, args).unwrap();
        user_store(&mut m, &mut space, va.as_u32() + 8, 0x5151, Faults::Engine);
        let Backing::Object { id, .. } = space.find_vma(va).unwrap().backing() else {
            panic!("{name}: a shared anonymous mapping has an object");
        };
        let again = MmapArgs {
            addr: Some(va),
            fixed: true,
            ..MmapArgs::shared_object(id, 0, PAGE)
        };
        let result = m.engine.mmap(&mut m.sys, &mut space, again);
        assert_eq!(result, Ok(va), "{name}");
        assert_eq!(
            user_load(&mut m, &mut space, va.as_u32() + 8, Faults::Engine),
            0x5151,
            "{name}"
        );
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// Finding 3: an object id kept past its object's end names nothing, even
/// once a new object took its slot. (A `SharedBuffer` can no longer be
/// cloned at all: see the `compile_fail` example on it.)
#[test]
fn a_destroyed_buffer_s_object_id_does_not_reach_its_successor() {
    let mut m = Machine::new(CpuModel::arm1136_64k());
    let mut space = m.space();
    m.switch_to(&mut space);
    let a = m
        .engine
        .create_shared_buffer(&mut m.sys, None, 1, shared::SharingMode::HandOver)
        .unwrap();
    let stale = a.object();
    m.engine
        .destroy_shared_buffer(&mut m.sys, Some(&mut m.kernel), a)
        .unwrap();
    let b = m
        .engine
        .create_shared_buffer(&mut m.sys, None, 1, shared::SharingMode::HandOver)
        .unwrap();
    let result = m.engine.mmap(
        &mut m.sys,
        &mut space,
        MmapArgs::shared_object(stale, 0, PAGE),
    );
    assert!(
        matches!(
            result,
            Err(CoherenceError::Space(SpaceError::Object(
                crate::mm::object::ObjectError::NoSuchObject { .. }
            )))
        ),
        "{result:?}"
    );
    assert!(m.sys.objects.get(b.object()).is_ok());
    assert!(m.sys.objects.get(stale).is_err());
}

/// Finding 8: a forked child's id is its own — no live space's, and none a
/// space had before, though slots are reused.
#[test]
fn a_forked_child_takes_no_other_space_s_id() {
    let mut m = Machine::new(CpuModel::arm926());
    let mut parent = m.space();
    let other = m.space();
    let gone = m.space();
    let gone_id = gone.id();
    let sim = m.sim_space(&gone);
    let l1 = gone.destroy(&mut m.sys).unwrap();
    m.free_spaces.push((sim, l1));
    m.switch_to(&mut parent);
    let (_, table) = m.table().unwrap();
    let child = m.engine.fork(&mut m.sys, &mut parent, table).unwrap();
    assert_eq!(child.id().slot(), gone_id.slot(), "the slot is reused");
    for id in [parent.id(), other.id(), gone_id] {
        assert_ne!(child.id(), id);
    }
    let spaces = m.sys.spaces();
    assert!(spaces.is_live(child.id()) && !spaces.is_live(gone_id));
    assert_eq!(spaces.live(), 3);
}

/// The free frames, counted.
fn free_frames(m: &Machine) -> u32 {
    (0..m.sys.allocator.colours())
        .map(|c| m.sys.allocator.free_frames_of(c))
        .sum()
}

/// Finding 4: a fault whose page-table frame cannot be had gives its data
/// frames back (anonymous zero-fill, and the private-file write copy with
/// the page-cache page it read), and leaves no unfilled page in the file.
#[test]
fn a_fault_that_cannot_map_gives_its_frames_back() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut space = m.space();
        m.switch_to(&mut space);
        let file = m.file(1);
        let anon = m
            .engine
            .mmap(&mut m.sys, &mut space, MmapArgs::anonymous(PAGE))
            .unwrap();
        let private_file = MmapArgs {
            shared: false,
            ..MmapArgs::shared_object(file, 0, PAGE)
        };
        let filed = m.engine.mmap(&mut m.sys, &mut space, private_file).unwrap();
        // No frame left for a second-level table.
        let pool = core::mem::take(&mut m.sys.table_frames.0);
        let free = free_frames(&m);
        for va in [anon, filed] {
            for _ in 0..3 {
                let r = m
                    .engine
                    .fault(&mut m.sys, &mut space, va, FaultAccess::Write);
                assert!(
                    matches!(
                        r,
                        Err(CoherenceError::Table(
                            crate::mmu::TableError::OutOfFrames { .. }
                        ))
                    ),
                    "{name}: {r:?}"
                );
                assert_eq!(free_frames(&m), free, "{name}: {va} leaked a frame");
            }
        }
        assert_eq!(m.sys.objects.get(file).unwrap().page(0), None, "{name}");
        m.sys.table_frames.0 = pool;
        user_store(&mut m, &mut space, filed.as_u32(), 7, Faults::Engine);
        assert_eq!(
            user_load(&mut m, &mut space, anon.as_u32(), Faults::Engine),
            0
        );
    }
}

/// Finding 5: an uncached buffer placed on the engine's kernel windows is
/// refused (the next window use would unmap it).
#[test]
fn a_shared_buffer_cannot_be_placed_on_the_kernel_windows() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let free = free_frames(&m);
        let mode = shared::SharingMode::Uncached {
            kernel_base: VirtAddr(crate::check::machine::WINDOWS),
        };
        let result = m
            .engine
            .create_shared_buffer(&mut m.sys, Some(&mut m.kernel), 1, mode);
        assert!(
            matches!(
                result,
                Err(CoherenceError::Table(crate::mmu::TableError::ReservedSlot { va }))
                    if va == VirtAddr(crate::check::machine::WINDOWS)
            ),
            "{name}: {result:?}"
        );
        assert_eq!(free_frames(&m), free, "{name}");
        assert_eq!(m.sys.objects.iter().count(), 0, "{name}");
    }
}

/// Finding 9: `copy_user_page` refuses a source outside the managed frames
/// (the kernel's own L1 table here) instead of copying it to a user page.
#[test]
fn copy_user_page_refuses_a_source_it_does_not_manage() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let to = m.sys.allocator.allocate_any().unwrap();
        let from = PhysAddr(crate::check::machine::KERNEL_L1);
        let result = m
            .engine
            .copy_user_page(&mut m.sys, to, from, VirtAddr(BASE));
        assert!(
            matches!(
                result,
                Err(CoherenceError::Frame(FrameError::OutOfRange { .. }))
            ),
            "{name}: {result:?}"
        );
        let again = m.engine.copy_user_page(&mut m.sys, to, to, VirtAddr(BASE));
        assert_eq!(
            again,
            Err(CoherenceError::CopyOntoItself { pa: to }),
            "{name}"
        );
    }
}

/// Finding 1's class in `Kmap`: the kernel reads and writes a page of an
/// uncached buffer that a process maps (uncached) through a kmap guard,
/// three rounds. Returns the oracle's findings.
fn kmap_of_an_uncached_buffer(model: CpuModel) -> Vec<ViolationKind> {
    let (mut m, mut space, buffer) = uncached_buffer(model);
    let pa = buffer.frame(0).unwrap();
    let args = MmapArgs::shared_object(buffer.object(), 0, PAGE);
    let va = m
        .engine
        .mmap(&mut m.sys, &mut space, args)
        .unwrap()
        .as_u32();
    for round in 0..3u32 {
        user_store(&mut m, &mut space, va + 32, 0x100 + round, Faults::Engine);
        let mut kmap = m.engine.kmap(&mut m.sys, pa, KmapAccess::Write).unwrap();
        let at = kmap.va().as_u32();
        assert_eq!(kmap.mem().load(at + 32, 4).unwrap(), 0x100 + round);
        kmap.mem().store(at + 64, 4, 0x200 + round).unwrap();
        drop(kmap);
        assert_eq!(
            user_load(&mut m, &mut space, va + 64, Faults::Engine),
            0x200 + round
        );
    }
    violations(&mut m)
}

#[test]
fn kmap_of_a_page_mapped_uncached_leaves_no_line_behind() {
    for (name, model) in presets() {
        let result = std::panic::catch_unwind(|| kmap_of_an_uncached_buffer(model));
        assert!(
            matches!(&result, Ok(bad) if bad.is_empty()),
            "{name}: {result:?}"
        );
    }
}

/// The twin: the kernel reads the page through its cached linear map
/// with no guard; the line its first read left answers the second.
#[test]
fn twin_kernel_reads_of_a_page_mapped_uncached_without_kmap_are_caught() {
    for (name, model) in uncached_copy_presets() {
        let (mut m, mut space, buffer) = uncached_buffer(model);
        let kva = m.engine.kernel_va(buffer.frame(0).unwrap()).as_u32();
        let args = MmapArgs::shared_object(buffer.object(), 0, PAGE);
        let va = m
            .engine
            .mmap(&mut m.sys, &mut space, args)
            .unwrap()
            .as_u32();
        user_store(&mut m, &mut space, va + 32, 0x100, Faults::Engine);
        m.sys.mem.drain_write_buffer();
        assert_eq!(m.sys.mem.load(kva + 32, 4).unwrap(), 0x100, "{name}");
        user_store(&mut m, &mut space, va + 32, 0x101, Faults::Engine);
        m.sys.mem.drain_write_buffer();
        let seen = m.sys.mem.load(kva + 32, 4).unwrap();
        let bad = violations(&mut m);
        assert!(
            seen == 0x100 && bad.contains(&ViolationKind::StaleRead),
            "{name}: {seen:#x} {bad:?}"
        );
    }
}

/// Finding 1's class in `flush_anon_page`: the kernel reads a page a
/// process writes uncached, through its linear map, after asking for the
/// page (as `ptrace` or direct I/O do), twice.
#[test]
fn flush_anon_page_of_a_page_mapped_uncached_drops_the_kernel_s_old_lines() {
    for (name, model) in presets() {
        let (mut m, mut space, buffer) = uncached_buffer(model);
        let kva = m.engine.kernel_va(buffer.frame(0).unwrap()).as_u32();
        let args = MmapArgs::shared_object(buffer.object(), 0, PAGE);
        let va = m.engine.mmap(&mut m.sys, &mut space, args).unwrap();
        for round in 0..2 {
            let at = va.as_u32() + 32;
            user_store(&mut m, &mut space, at, 0x100 + round, Faults::Engine);
            m.engine.flush_anon_page(&mut m.sys, &space, va).unwrap();
            let seen = m.sys.mem.load(kva + 32, 4).unwrap();
            assert_eq!(seen, 0x100 + round, "{name}");
        }
        assert_eq!(violations(&mut m), [], "{name}");
    }
}
