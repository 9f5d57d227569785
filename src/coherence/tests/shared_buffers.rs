//! Shared buffers' life cycle on every preset: made, used by both sides,
//! refused destruction while mapped, destroyed (frames back, kernel lines
//! dropped without a lost write, the uncached kernel mapping gone),
//! destroyed twice, and the argument errors that do nothing.

extern crate std;

use super::*;
use crate::mm::object::ObjectError;
use shared::SharingMode;

/// A process maps `buffer` shared; the user and the kernel each write a
/// word into every page (the kernel's lines stay dirty in hand-over
/// mode). Returns the space and where it maps the buffer.
fn map_and_use(m: &mut Machine, buffer: &shared::SharedBuffer) -> (AddressSpace, u32) {
    let mut space = m.space();
    if let SharingMode::Uncached { kernel_base } = buffer.mode() {
        // The kernel's uncached mapping is reached while the user runs.
        let mib = VirtRange::new(kernel_base.align_down(1 << 20), 1 << 20).unwrap();
        space
            .table_mut()
            .share_entries_from(&mut m.sys.mem, &m.kernel, mib)
            .unwrap();
    }
    m.switch_to(&mut space);
    let len = buffer.pages() * PAGE;
    let va = space
        .mmap(&mut m.sys, MmapArgs::shared_object(buffer.object(), 0, len))
        .unwrap()
        .as_u32();
    for page in 0..buffer.pages() {
        let kva = buffer.kernel_va(page).unwrap().as_u32();
        m.sys.mem.store(kva + 8, 4, 0x4b00 + page).unwrap();
        m.engine
            .sync_for_user(&mut m.sys, buffer, page * PAGE + 8, 4)
            .unwrap();
        let at = va + page * PAGE;
        assert_eq!(
            user_load(m, &mut space, at + 8, Faults::Engine),
            0x4b00 + page
        );
        user_store(m, &mut space, at + 12, 0x5500 + page, Faults::Engine);
        m.engine
            .sync_for_kernel(&mut m.sys, buffer, page * PAGE + 12, 4)
            .unwrap();
        assert_eq!(m.sys.mem.load(kva + 12, 4).unwrap(), 0x5500 + page);
        // The user sees the buffer's own frames.
        assert_eq!(space.resident_at(VirtAddr(at)), buffer.frame(page));
        // The kernel writes again: its lines are dirty when the buffer goes.
        m.sys.mem.store(kva + 16, 4, 0xdead_0000 + page).unwrap();
    }
    (space, va)
}

#[test]
fn a_buffer_is_destroyed_only_once_no_user_maps_it_and_gives_every_frame_back() {
    for (name, model) in presets() {
        let modes = [
            SharingMode::HandOver,
            SharingMode::Uncached {
                kernel_base: VirtAddr(0xfe00_0000),
            },
        ];
        for mode in modes {
            let mut m = Machine::new(model);
            let free = m.sys.allocator.free_frames();
            let objects = m.sys.objects.iter().count();
            let buffer = m
                .engine
                .create_shared_buffer(&mut m.sys, Some(&mut m.kernel), 2, mode)
                .unwrap();
            assert_eq!(buffer.mode(), mode);
            assert_eq!(buffer.pages(), 2);
            assert_eq!((buffer.frame(2), buffer.kernel_va(2)), (None, None));
            assert_eq!(m.sys.allocator.free_frames(), free - 2);
            let (mut space, va) = map_and_use(&mut m, &buffer);

            // Still mapped: refused, and the buffer is handed back whole.
            let refused = m
                .engine
                .destroy_shared_buffer(&mut m.sys, Some(&mut m.kernel), buffer)
                .unwrap_err();
            assert_eq!(
                refused.error,
                CoherenceError::Space(SpaceError::Object(ObjectError::StillMapped {
                    id: refused.buffer.as_ref().unwrap().object(),
                    mappers: 1
                })),
                "{name} {mode:?}"
            );
            let buffer = refused.buffer.unwrap();
            assert_eq!(m.sys.allocator.free_frames(), free - 2, "{name}");
            assert!(m.sys.objects.get(buffer.object()).is_ok(), "{name}");
            let kva = buffer.kernel_va(1).unwrap().as_u32();
            assert_eq!(m.sys.mem.load(kva + 12, 4).unwrap(), 0x5501, "{name}");

            // Unmapped, it goes: frames free, object gone, and in uncached
            // mode the kernel's own mapping too.
            m.engine
                .munmap(&mut m.sys, &mut space, VirtAddr(va), 2 * PAGE)
                .unwrap();
            // Its contents die with it: the test's own semantics tell the
            // oracle (which takes no word for it from the engine).
            let frames: Vec<_> = (0..2).map(|page| buffer.frame(page).unwrap()).collect();
            for pa in &frames {
                m.sys.mem.declare_dead(pa.as_u32(), PAGE).unwrap();
            }
            m.engine
                .destroy_shared_buffer(&mut m.sys, Some(&mut m.kernel), buffer)
                .unwrap();
            assert_eq!(m.sys.allocator.free_frames(), free, "{name} {mode:?}");
            assert_eq!(m.sys.objects.iter().count(), objects, "{name}");
            for &pa in &frames {
                assert!(!m.sys.allocator.is_allocated(pa).unwrap(), "{name}");
                assert!(!m.sys.frames.state(pa).unwrap().is_mapped(), "{name}");
            }
            if let SharingMode::Uncached { kernel_base } = mode {
                assert_eq!(
                    m.kernel.translate(&mut m.sys.mem, kernel_base),
                    Err(TableError::NotMapped { va: kernel_base }),
                    "{name}"
                );
            }

            // The frames' next owner writes them: no dirty kernel line of
            // the dead buffer lands over its data.
            let args = MmapArgs::anonymous(8 * PAGE);
            let next = space.mmap(&mut m.sys, args).unwrap().as_u32();
            for page in 0..8 {
                let at = next + page * PAGE;
                user_load(&mut m, &mut space, at, Faults::Engine);
                user_store(&mut m, &mut space, at + 16, 0x0e0e, Faults::Engine);
            }
            m.engine
                .flush_cache_mm(&mut m.sys, &space)
                .expect("flush_cache_mm");
            for page in 0..8 {
                let at = next + page * PAGE;
                assert_eq!(
                    user_load(&mut m, &mut space, at + 16, Faults::Engine),
                    0x0e0e,
                    "{name}"
                );
            }
            assert_eq!(violations(&mut m), [], "{name} {mode:?}");
        }
    }
}

#[test]
fn a_buffer_whose_kernel_mapping_fails_is_given_back_whole() {
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let free = m.sys.allocator.free_frames();
        let objects = m.sys.objects.iter().count();
        // Inside the kernel's linear map, which is made of sections.
        let kernel_base = VirtAddr(0x0030_0000);
        let mode = SharingMode::Uncached { kernel_base };
        let e = m
            .engine
            .create_shared_buffer(&mut m.sys, Some(&mut m.kernel), 2, mode)
            .unwrap_err();
        assert_eq!(
            e,
            CoherenceError::Table(TableError::WouldSplitSection {
                va: kernel_base,
                section: kernel_base,
                size: crate::mmu::PageSize::Section
            }),
            "{name}"
        );
        assert_eq!(m.sys.allocator.free_frames(), free, "{name}");
        assert_eq!(m.sys.objects.iter().count(), objects, "{name}");
        // The linear map is as it was.
        assert_eq!(
            m.kernel
                .translate(&mut m.sys.mem, kernel_base)
                .map(|t| t.pa),
            Ok(PhysAddr(0x0030_0000)),
            "{name}"
        );
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

#[test]
fn buffer_arguments_out_of_range_are_refused_and_do_nothing() {
    let mut m = Machine::new(CpuModel::arm926());
    let free = m.sys.allocator.free_frames();
    let e = m
        .engine
        .create_shared_buffer(&mut m.sys, None, 0, SharingMode::HandOver)
        .unwrap_err();
    assert_eq!(
        e,
        CoherenceError::BadLength {
            addr: VirtAddr(0),
            len: 0
        }
    );
    let odd = VirtAddr(0xfe00_0800);
    let e = m
        .engine
        .create_shared_buffer(
            &mut m.sys,
            Some(&mut m.kernel),
            1,
            SharingMode::Uncached { kernel_base: odd },
        )
        .unwrap_err();
    assert_eq!(
        e,
        CoherenceError::Unaligned {
            addr: odd,
            alignment: PAGE
        }
    );
    assert_eq!(m.sys.allocator.free_frames(), free);

    let buffer = m
        .engine
        .create_shared_buffer(&mut m.sys, None, 2, SharingMode::HandOver)
        .unwrap();
    let (_space, _) = map_and_use(&mut m, &buffer);
    let counters = *m.engine.counters();
    for (offset, len) in [(2 * PAGE - 4, 8), (0, 0), (2 * PAGE, 4)] {
        for e in [
            m.engine
                .sync_for_user(&mut m.sys, &buffer, offset, len)
                .unwrap_err(),
            m.engine
                .sync_for_kernel(&mut m.sys, &buffer, offset, len)
                .unwrap_err(),
        ] {
            assert_eq!(
                e,
                CoherenceError::BadLength {
                    addr: VirtAddr(offset),
                    len: u64::from(len)
                }
            );
        }
    }
    assert_eq!(*m.engine.counters(), counters);
    assert_eq!(violations(&mut m), []);
}

#[test]
fn a_buffer_larger_than_free_memory_is_refused_before_any_frame_is_touched() {
    // It used to take, zero and clean every free frame, then give them all
    // back: correct, but a store per word of free memory per call.
    let mut m = Machine::new(CpuModel::arm926());
    let free = m.sys.allocator.free_frames();
    let stores = m.sys.mem.counters().stores;
    let e = m
        .engine
        .create_shared_buffer(&mut m.sys, None, free + 1, SharingMode::HandOver)
        .unwrap_err();
    assert_eq!(
        e,
        CoherenceError::Frame(FrameError::NotEnoughFrames {
            wanted: free + 1,
            free
        })
    );
    assert_eq!(m.sys.allocator.free_frames(), free);
    assert_eq!(m.sys.mem.counters().stores, stores, "no frame was zeroed");
    // Exactly what is free still fits.
    let buffer = m
        .engine
        .create_shared_buffer(&mut m.sys, None, free, SharingMode::HandOver)
        .unwrap();
    assert_eq!(m.sys.allocator.free_frames(), 0);
    m.engine
        .destroy_shared_buffer(&mut m.sys, Some(&mut m.kernel), buffer)
        .unwrap();
    assert_eq!(m.sys.allocator.free_frames(), free);
}

/// A hand-over buffer needs no kernel table; an uncached one does, and
/// is refused without one before anything is taken (created), or handed
/// back (destroyed).
#[test]
fn an_uncached_buffer_without_the_kernel_table_is_refused_and_nothing_is_taken() {
    let mut m = Machine::new(CpuModel::arm1136_32k());
    let free = m.sys.allocator.free_frames();
    let kernel_base = VirtAddr(0xfe00_0000);
    let mode = SharingMode::Uncached { kernel_base };
    let e = m
        .engine
        .create_shared_buffer(&mut m.sys, None, 1, mode)
        .unwrap_err();
    assert_eq!(e, CoherenceError::KernelTableNeeded { kernel_base });
    assert_eq!(m.sys.allocator.free_frames(), free);
    let buffer = m
        .engine
        .create_shared_buffer(&mut m.sys, Some(&mut m.kernel), 1, mode)
        .unwrap();
    let refused = m
        .engine
        .destroy_shared_buffer(&mut m.sys, None, buffer)
        .unwrap_err();
    assert_eq!(
        refused.error,
        CoherenceError::KernelTableNeeded { kernel_base }
    );
    let buffer = refused.buffer.expect("handed back");
    assert_eq!(m.sys.allocator.free_frames(), free - 1);
    m.engine
        .destroy_shared_buffer(&mut m.sys, Some(&mut m.kernel), buffer)
        .unwrap();
    assert_eq!(m.sys.allocator.free_frames(), free);
    // A hand-over buffer is made and freed without the table.
    let buffer = m
        .engine
        .create_shared_buffer(&mut m.sys, None, 1, SharingMode::HandOver)
        .unwrap();
    m.engine
        .destroy_shared_buffer(&mut m.sys, None, buffer)
        .unwrap();
    assert_eq!(m.sys.allocator.free_frames(), free);
}

#[test]
fn a_buffer_page_without_a_frame_of_its_colour_takes_another_and_stays_coherent() {
    for (name, model) in [
        ("ARM1136 32K", CpuModel::arm1136_32k()),
        ("ARM1136 64K", CpuModel::arm1136_64k()),
    ] {
        let mut m = Machine::new(model);
        // Page 1 wants colour 1: none is left.
        let mut taken = Vec::new();
        while let Ok(pa) = m.sys.allocator.allocate_colour(1) {
            taken.push(pa);
        }
        let buffer = m
            .engine
            .create_shared_buffer(&mut m.sys, None, 2, SharingMode::HandOver)
            .unwrap();
        let colour_of = |pa: PhysAddr| m.sys.allocator.colour_of(pa);
        assert_eq!(colour_of(buffer.frame(0).unwrap()), 0, "{name}");
        assert_ne!(colour_of(buffer.frame(1).unwrap()), 1, "{name}");
        for pa in taken {
            m.sys.allocator.free(pa).unwrap();
        }
        let before = *m.engine.counters();
        // The user's colour-aligned mapping and the kernel's alias of page
        // 1 now hold separate lines: each hand-over maintains them.
        let (_space, _) = map_and_use(&mut m, &buffer);
        let after = *m.engine.counters();
        assert!(
            after.kernel_alias_cleans > before.kernel_alias_cleans,
            "{name}: {after:?}"
        );
        assert!(
            after.user_alias_flushes > before.user_alias_flushes,
            "{name}: {after:?}"
        );
        assert_eq!(violations(&mut m), [], "{name}");
    }
}

/// An uncached shared buffer mapped by two spaces in separate lines (VIVT
/// under FCSE PIDs, or aliasing VIPT at two colours) holds no lines in any
/// of them: switches between them owe it nothing, and must not pay for it
/// (the all-uncached policy's separation of private readers is not for
/// buffers whose every mapping is uncached).
#[test]
fn an_uncached_buffer_in_two_spaces_costs_the_switches_nothing() {
    for (name, model) in presets() {
        if !model.info().kind.aliases() {
            continue;
        }
        let mut m = Machine::with_switching(model, Switching::Fcse);
        // Not colour aligned: the two mappings may take different colours.
        m.colour_span = PAGE;
        let mode = SharingMode::Uncached {
            kernel_base: VirtAddr(0xfe00_0000),
        };
        let buffer = m
            .engine
            .create_shared_buffer(&mut m.sys, Some(&mut m.kernel), 2, mode)
            .unwrap();
        let (mut a, _) = map_and_use(&mut m, &buffer);
        // A second mapping before b's, so b's lands at another colour.
        let (mut b, _) = {
            let mut space = m.space();
            m.switch_to(&mut space);
            space.mmap(&mut m.sys, MmapArgs::anonymous(PAGE)).unwrap();
            let len = buffer.pages() * PAGE;
            let va = space
                .mmap(&mut m.sys, MmapArgs::shared_object(buffer.object(), 0, len))
                .unwrap()
                .as_u32();
            user_load(&mut m, &mut space, va, Faults::Engine);
            (space, va)
        };
        let before = *m.engine.counters();
        for _ in 0..5 {
            m.switch_to(&mut a);
            m.switch_to(&mut b);
        }
        let after = *m.engine.counters();
        assert_eq!(
            (after.cross_space_separations, after.user_alias_flushes),
            (before.cross_space_separations, before.user_alias_flushes),
            "{name}"
        );
        assert_eq!(violations(&mut m), [], "{name}");
    }
}
