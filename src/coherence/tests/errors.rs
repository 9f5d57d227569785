//! The engine's refusals, each from the call that makes it: the typed
//! error with its values, a message naming them, and nothing done —
//! no maintenance counted, no state changed. Also what an engine reports
//! about itself (its switch, cache, policy, running space, `Debug`).

extern crate std;

use std::format;
use std::string::String;

use super::*;
use crate::mm::config::{ConfigError, KernelRange};
use crate::mm::space::SpaceConfig;
use crate::mm::unmapped::{Direction, Layout};
use crate::mmu::{ContextSwitcher, PageSize, SwitchError};

fn message(e: impl fmt::Display) -> String {
    format!("{e}")
}

#[test]
fn a_flushing_switcher_is_refused_on_every_armv6_cache_with_the_reason() {
    let reason = "(ARMv6): ARMv6 tables flush the TLB entries of their changes only once a \
                  switcher has given them an ASID, and this one gives none (use the ASID \
                  switcher)";
    let g = crate::cache::CacheGeometry::new(16 << 10, 4, 32).unwrap();
    for (model, cache) in [
        (
            CpuModel::arm1136_32k(),
            "an aliasing VIPT cache of 2 colours",
        ),
        (CpuModel::arm1176_16k(), "a non-aliasing VIPT cache"),
        (CpuModel::pipt(g), "a PIPT cache"),
    ] {
        let info = model.info();
        let e = Engine::new(info, 0, SwitchPolicy::VivtFlush).unwrap_err();
        assert_eq!(
            e,
            EngineConfigError::Switcher {
                switcher: SwitchPolicy::VivtFlush,
                cache: info.kind,
                arch: crate::mmu::Arch::Armv6
            }
        );
        assert_eq!(
            message(e),
            format!(
                "the flushing switcher (SwitchPolicy::VivtFlush) cannot serve {cache} {reason}"
            )
        );
        // The same CPU with the switch it can serve.
        assert!(Engine::new(info, 0, SwitchPolicy::Asid).is_ok());
    }
}

#[test]
fn an_engine_reports_its_switch_cache_policy_and_running_space() {
    let info = CpuModel::arm1136_64k().info();
    let engine = Engine::new(info, 0x1000_0000, SwitchPolicy::Asid).unwrap();
    assert_eq!(engine.switch_policy(), SwitchPolicy::Asid);
    assert_eq!(*engine.info(), info);
    assert_eq!(*engine.policy(), Vacmm);
    assert_eq!(engine.policy().name(), "vacmm");
    assert_eq!(engine.current(), SpaceId::KERNEL);
    assert_eq!(engine.kernel_va(PhysAddr(0x2000)), VirtAddr(0x1000_2000));
    let debug = format!("{engine:?}");
    assert!(
        debug.starts_with(&format!(
            "Engine {{ kind: {:?}, current: SpaceId {{ slot: 0, generation: 0 }}, policy: Vacmm, counters: Counters {{",
            info.kind
        )),
        "{debug}"
    );
    assert!(debug.ends_with(", .. }"), "{debug}");

    // On a machine, the running space follows the switches.
    let mut m = Machine::new(CpuModel::arm1136_64k());
    let mut a = m.space();
    m.switch_to(&mut a);
    assert_eq!(m.engine.current(), a.id());
    assert_eq!(m.engine.policy().name(), "vacmm");
}

#[test]
fn a_switcher_of_another_kind_is_refused_and_nothing_switches() {
    let mut m = Machine::new(CpuModel::arm1136_32k());
    let mut a = m.space();
    let mut b = m.space();
    m.switch_to(&mut a);
    let counters = *m.engine.counters();
    let mut flushing = ContextSwitcher::vivt_flush();
    // SAFETY: the model's registers; the call is refused before any.
    let e = unsafe { m.engine.switch_to(&mut flushing, &mut m.sys, &mut b) }.unwrap_err();
    assert_eq!(
        e,
        CoherenceError::SwitcherMismatch {
            declared: SwitchPolicy::Asid,
            given: SwitchPolicy::VivtFlush
        }
    );
    assert_eq!(
        message(e),
        "the engine was built for the ASID switcher (SwitchPolicy::Asid) and was given the \
         flushing switcher (SwitchPolicy::VivtFlush): nothing was switched"
    );
    assert_eq!(m.engine.current(), a.id());
    assert_eq!(*m.engine.counters(), counters);
    assert_eq!(flushing.counters().switches, 0);
    assert_eq!(m.sys.mem.current_space(), m.sim_space(&a));
}

#[test]
fn argument_errors_name_the_address_and_length_and_do_nothing() {
    let mut m = Machine::new(CpuModel::arm926());
    let mut space = m.space();
    m.switch_to(&mut space);
    let va = space
        .mmap(&mut m.sys, MmapArgs::anonymous(2 * PAGE))
        .unwrap();
    user_store(&mut m, &mut space, va.as_u32(), 0x5a5a, Faults::Engine);
    let counters = *m.engine.counters();
    let resident: Vec<(VirtAddr, PhysAddr)> = space.resident().collect();

    let odd = VirtAddr(va.as_u32() + 0x800);
    let e = m
        .engine
        .munmap(&mut m.sys, &mut space, odd, PAGE)
        .unwrap_err();
    assert_eq!(
        e,
        CoherenceError::Unaligned {
            addr: odd,
            alignment: PAGE
        }
    );
    assert_eq!(
        message(e),
        format!("address {odd} is not aligned to 0x1000")
    );

    let e = m
        .engine
        .flush_icache_range(&mut m.sys.mem, VirtAddr(0xffff_f000), 2 * PAGE)
        .unwrap_err();
    assert_eq!(
        e,
        CoherenceError::BadLength {
            addr: VirtAddr(0xffff_f000),
            len: 0x2000
        }
    );
    assert_eq!(
        message(e),
        "a length of 0x2000 at 0xfffff000 runs past 4 GiB (or past the end of the shared \
         buffer it is an offset into)"
    );
    let e = m
        .engine
        .flush_user_icache_range(&mut m.sys, space.id(), va, 0)
        .unwrap_err();
    assert_eq!(e, CoherenceError::BadLength { addr: va, len: 0 });
    assert_eq!(
        message(e),
        format!("a length of 0 bytes at {va} is refused")
    );

    // A page that is not resident: the address space's error.
    let hole = VirtAddr(va.as_u32() + PAGE);
    for e in [
        m.engine
            .flush_cache_page(&mut m.sys, &space, hole)
            .unwrap_err(),
        m.engine
            .flush_anon_page(&mut m.sys, &space, hole)
            .unwrap_err(),
    ] {
        assert_eq!(e, CoherenceError::Space(SpaceError::NoMapping { va: hole }));
        assert_eq!(message(e), format!("no mapping at {hole}"));
    }

    // A frame the engine does not know.
    let foreign = PhysAddr(0x0010_0000);
    let e = m.engine.flush_dcache_page(&mut m.sys, foreign).unwrap_err();
    let CoherenceError::Frame(inner) = e else {
        panic!("{e:?}");
    };
    assert!(matches!(inner, FrameError::OutOfRange { pa, .. } if pa == foreign));
    assert_eq!(message(e), message(inner));

    // Nothing was done for any of them but counting the flush_dcache_page
    // call itself.
    let mut expected = counters;
    expected.flush_dcache_page += 1;
    assert_eq!(*m.engine.counters(), expected);
    assert_eq!(space.resident().collect::<Vec<_>>(), resident);
    assert_eq!(violations(&mut m), []);
}

#[test]
fn exit_of_the_running_space_hands_it_back_with_the_reason() {
    let mut m = Machine::new(CpuModel::arm926());
    let mut space = m.space();
    m.switch_to(&mut space);
    let va = space
        .mmap(&mut m.sys, MmapArgs::anonymous(PAGE))
        .unwrap()
        .as_u32();
    user_store(&mut m, &mut space, va, 0x600d, Faults::Engine);
    let id = space.id();
    let refused = m.engine.exit(&mut m.sys, space).unwrap_err();
    assert_eq!(refused.error, CoherenceError::StillRunning { space: id });
    assert_eq!(
        message(&refused),
        format!(
            "the exit was refused and the space is handed back as it was: {id} still runs: \
             switch away before it exits"
        )
    );
    assert!(message(&refused).ends_with(&message(refused.error)));
    // Untouched: its data is still there.
    let mut space = *refused.space.unwrap();
    assert_eq!(user_load(&mut m, &mut space, va, Faults::Engine), 0x600d);
    assert_eq!(violations(&mut m), []);
}

#[test]
fn kernel_windows_refuse_a_misaligned_or_too_high_base() {
    let mut m = Machine::new(CpuModel::arm1136_64k());
    let info = *m.sys.mem.info();
    let span = info.colour_alignment() as u32;
    assert_eq!(span, 0x4000);
    let mut new_windows = |base: u32| {
        KernelWindows::new(
            &mut m.sys.mem,
            &mut m.sys.table_frames,
            &mut m.kernel,
            VirtAddr(base),
            &info,
        )
        .map(|w| w.colours())
    };
    let misaligned = new_windows(WINDOWS_TEST_BASE + PAGE).unwrap_err();
    assert_eq!(
        misaligned,
        WindowError::Misaligned {
            base: VirtAddr(WINDOWS_TEST_BASE + PAGE),
            alignment: span
        }
    );
    assert_eq!(
        message(misaligned),
        "the kernel windows at 0xff001000 are not aligned to 0x4000, the cache's colour span"
    );
    // Four colours × two slots = eight pages from 0xffff_c000 pass 4 GiB.
    let high = new_windows(0xffff_c000).unwrap_err();
    assert_eq!(
        high,
        WindowError::OutOfRange {
            base: VirtAddr(0xffff_c000)
        }
    );
    assert_eq!(
        message(high),
        "the kernel windows from 0xffffc000 would pass the top of the 4 GiB address space"
    );
    // Over the kernel's linear map (sections): the table's refusal.
    let over_sections = new_windows(0x0010_0000).unwrap_err();
    let table = TableError::WouldSplitSection {
        va: VirtAddr(0x0010_0000),
        section: VirtAddr(0x0010_0000),
        size: PageSize::Section,
    };
    assert_eq!(over_sections, WindowError::Table(table));
    assert_eq!(
        message(over_sections),
        format!("the kernel window's page-table entry could not be set: {table}")
    );
    // A free, aligned base works.
    assert_eq!(new_windows(WINDOWS_TEST_BASE), Ok(4));
}

/// A kernel address the machine's windows and linear map leave free.
const WINDOWS_TEST_BASE: u32 = 0xff00_0000;

#[test]
fn wrapped_errors_keep_the_inner_message() {
    // Errors no host scenario produces (a window busy while the engine is
    // called, a kernel access the model refuses, a switch the switcher
    // refuses) still say what the layer below said.
    let busy = WindowError::Busy { colour: 2 };
    assert_eq!(
        message(busy),
        "every kernel window of colour 2 is in use: drop a Kmap guard before taking another"
    );
    assert_eq!(CoherenceError::from(busy), CoherenceError::Window(busy));
    assert_eq!(message(CoherenceError::from(busy)), message(busy));
    let access = AccessError {
        va: VirtAddr(0xc000_1000),
    };
    assert_eq!(
        message(CoherenceError::from(access)),
        "the kernel could not access the page at kernel address 0xc0001000"
    );
    let switch = SwitchError::Table(TableError::NotMapped {
        va: VirtAddr(0x4000),
    });
    assert_eq!(
        message(CoherenceError::from(switch)),
        "the context switch was refused and the previous space still runs: virtual address \
         0x00004000 is not mapped"
    );
    let table = TableError::OutOfFrames {
        va: VirtAddr(0x0040_0000),
    };
    assert_eq!(message(CoherenceError::from(table)), message(table));
}

#[test]
fn a_layout_over_the_kernel_windows_is_refused() {
    // Two and four colours: the windows span colours × 2 pages.
    for model in [CpuModel::arm1136_32k(), CpuModel::arm1136_64k()] {
        let mut m = Machine::new(model);
        let colours = m.sys.mem.info().colours() as u32;
        let layout = Layout {
            min_addr: 0x0100_0000,
            mmap_base: 0x2000_0000,
            task_size: 0xfff0_0000,
            colour_span: m.colour_span,
            direction: Direction::TopDown,
        };
        let e = m.space_with(layout).unwrap_err();
        let expected = ConfigError::OverlapsKernel {
            min_addr: 0x0100_0000,
            task_size: 0xfff0_0000,
            range: KernelRange::Windows,
            start: crate::check::machine::WINDOWS,
            end: u64::from(crate::check::machine::WINDOWS)
                + u64::from(colours * windows::SLOTS_PER_COLOUR * PAGE),
        };
        assert_eq!(e, CoherenceError::Space(SpaceError::Config(expected)));
        assert_eq!(
            message(e),
            format!("address-space configuration refused: {expected}")
        );
    }
}

/// A layout reaching into the end of the kernel's linear map of the
/// frames (not its first page) is refused, naming the whole map.
#[test]
fn a_layout_over_the_end_of_the_linear_map_is_refused() {
    use crate::check::machine::{MEMORY, USER_FRAMES};
    let mut m = Machine::new(CpuModel::arm926());
    let min_addr = MEMORY - 0x10_0000;
    let layout = Layout {
        min_addr,
        mmap_base: 0x2000_0000,
        task_size: 0x4000_0000,
        colour_span: m.colour_span,
        direction: Direction::TopDown,
    };
    let e = m.space_with(layout).unwrap_err();
    let expected = ConfigError::OverlapsKernel {
        min_addr,
        task_size: 0x4000_0000,
        range: KernelRange::LinearMap,
        start: USER_FRAMES,
        end: u64::from(MEMORY),
    };
    assert_eq!(e, CoherenceError::Space(SpaceError::Config(expected)));
}

/// The linear offset is given twice, to `Engine::new` and by the kernel's
/// `TableMemory::kernel_va`; a space is refused when they disagree, with
/// both addresses, rather than served by an engine maintaining addresses
/// the kernel's accesses do not use.
#[test]
fn an_engine_whose_linear_offset_is_not_the_memorys_refuses_spaces() {
    let mut m = Machine::new(CpuModel::arm1136_32k());
    let info = *m.sys.mem.info();
    let wrong = m.kernel_offset.wrapping_add(0x1000_0000);
    let engine = Engine::new(info, wrong, SwitchPolicy::Asid).unwrap();
    let (_, table) = m.table().unwrap();
    let config = SpaceConfig::new(m.layout());
    let e = engine.create_space(&mut m.sys, config, table).unwrap_err();
    let pa = m.sys.frames.first();
    let expected = ConfigError::LinearMapMismatch {
        pa: pa.as_u32(),
        engine: pa.as_u32().wrapping_add(wrong),
        memory: m.kernel_va(pa.as_u32()),
    };
    assert_eq!(e, CoherenceError::Space(SpaceError::Config(expected)));
    // The engine that agrees serves the same configuration.
    let (_, table) = m.table().unwrap();
    m.engine.create_space(&mut m.sys, config, table).unwrap();
}

/// Every wrapping variant hands its cause to `source()` (chain printers
/// such as anyhow's and `std::error::Report` walk it); the variants that
/// wrap nothing have none.
#[test]
fn wrapped_errors_give_their_cause_as_source() {
    use core::error::Error as _;
    let busy = WindowError::Busy { colour: 2 };
    let access = AccessError {
        va: VirtAddr(0xc000_1000),
    };
    let table = TableError::NotMapped {
        va: VirtAddr(0x4000),
    };
    let space = SpaceError::NoMapping {
        va: VirtAddr(0x8000),
    };
    let frame = FrameError::OutOfRange {
        pa: crate::addr::PhysAddr(0x10_0000),
        first: crate::addr::PhysAddr(0),
        end: 0x1000,
    };
    let switch = SwitchError::Table(table);
    let wrapped: [(CoherenceError, String); 6] = [
        (CoherenceError::from(space), message(space)),
        (CoherenceError::from(frame), message(frame)),
        (CoherenceError::from(table), message(table)),
        (CoherenceError::from(access), message(access)),
        (CoherenceError::from(busy), message(busy)),
        (CoherenceError::from(switch), message(switch)),
    ];
    for (e, inner) in wrapped {
        let source = e.source().unwrap_or_else(|| panic!("{e:?} has no source"));
        assert_eq!(message(source), inner, "{e:?}");
    }
}

/// `Engine::fingerprint` (what the bounded exhaustive check merges states
/// by) tells apart engines that will act differently — another space
/// running, other spaces' lines live — and agrees on engines built alike.
#[test]
fn fingerprints_tell_engine_states_apart_and_agree_on_equal_ones() {
    use core::hash::Hasher;
    let fingerprint = |m: &Machine| {
        let mut h = rustc_hash::FxHasher::default();
        m.engine.fingerprint(&mut h);
        h.finish()
    };
    let build = |switches: &[usize]| {
        let mut m = Machine::with_switching(CpuModel::arm926(), crate::check::Switching::Fcse);
        let mut spaces = [m.space(), m.space()];
        for &s in switches {
            m.switch_to(&mut spaces[s]);
        }
        fingerprint(&m)
    };
    // Nobody, A, B running; A after B (both live under FCSE PIDs).
    let states = [build(&[]), build(&[0]), build(&[1]), build(&[1, 0])];
    for (i, a) in states.iter().enumerate() {
        for b in &states[i + 1..] {
            assert_ne!(a, b, "{states:x?}");
        }
    }
    assert_eq!(build(&[1, 0]), states[3]);
}

/// ARMv5 has no ASIDs: the ASID switcher is refused on it whatever kind of
/// cache the `CacheInfo` says (a kernel may override what the CPU
/// reports), and ARMv6's VIVT-looking override too (ARMv6 switches keep
/// lines only where they are physically tagged).
#[test]
fn the_asid_switcher_is_refused_on_every_armv5_cache_and_on_armv6_vivt() {
    let armv5 = CpuModel::arm926().info();
    for kind in [
        CacheKind::Vivt,
        CacheKind::VipAliasing { colours: 2 },
        CacheKind::VipNonAliasing,
        CacheKind::Pipt,
    ] {
        let mut info = armv5;
        info.kind = kind;
        assert!(
            matches!(
                check_configuration(&info, SwitchPolicy::Asid, &Vacmm),
                Err(EngineConfigError::Switcher { .. })
            ),
            "ARMv5, {kind:?}"
        );
    }
    let mut armv6_vivt = CpuModel::arm1176_16k().info();
    armv6_vivt.kind = CacheKind::Vivt;
    assert!(matches!(
        check_configuration(&armv6_vivt, SwitchPolicy::Asid, &Vacmm),
        Err(EngineConfigError::Switcher { .. })
    ));
    assert_eq!(
        check_configuration(&CpuModel::arm1176_16k().info(), SwitchPolicy::Asid, &Vacmm),
        Ok(())
    );
}

/// A space whose layout reaches near 4 GiB (its lowest address plus its
/// top pass 2^32) is flushed, forked and exits like any other: the engine
/// takes its user range as `[min_addr, task_size)`.
#[test]
fn a_space_reaching_near_4_gib_flushes_forks_and_exits() {
    let mut m = Machine::new(CpuModel::arm926());
    let layout = Layout {
        min_addr: 0x1000_0000,
        mmap_base: 0xe000_0000,
        task_size: 0xf800_0000,
        colour_span: m.colour_span,
        direction: Direction::TopDown,
    };
    let mut space = m.space_with(layout).unwrap();
    m.switch_to(&mut space);
    let va = space
        .mmap(&mut m.sys, crate::mm::space::MmapArgs::anonymous(PAGE))
        .unwrap();
    m.engine
        .fault(
            &mut m.sys,
            &mut space,
            va,
            crate::mm::space::FaultAccess::Write,
        )
        .unwrap();
    m.engine.flush_cache_mm(&mut m.sys, &space).unwrap();
    let table = m.child_table();
    let child = m.engine.fork(&mut m.sys, &mut space, table).unwrap();
    m.engine.exit(&mut m.sys, child).unwrap();
}

/// `ExitRefused` gives the engine's error as its source.
#[test]
fn a_refused_exit_gives_its_cause_as_source() {
    use core::error::Error as _;
    let mut m = Machine::new(CpuModel::arm926());
    let mut space = m.space();
    m.switch_to(&mut space);
    let refused = m.engine.exit(&mut m.sys, space).unwrap_err();
    let source = refused.source().expect("the engine's error");
    assert_eq!(message(source), message(refused.error));
}

/// `exit` tells the kernel (`KernelAccess::contents_dead`) that the
/// frames only the exiting space held are dead — its private anonymous
/// page — and not the page it shared with another space, on every preset.
#[test]
fn exit_declares_dead_only_the_pages_the_space_alone_held() {
    use crate::mm::space::{FaultAccess, MmapArgs};
    for (name, model) in presets() {
        let mut m = Machine::new(model);
        let mut other = m.space();
        let mut space = m.space();
        let file = m.file(1);
        let shared = other
            .mmap(&mut m.sys, MmapArgs::shared_object(file, 0, PAGE))
            .unwrap();
        m.engine
            .fault(&mut m.sys, &mut other, shared, FaultAccess::Write)
            .unwrap();
        m.switch_to(&mut space);
        let private = space.mmap(&mut m.sys, MmapArgs::anonymous(PAGE)).unwrap();
        let mapped = space
            .mmap(&mut m.sys, MmapArgs::shared_object(file, 0, PAGE))
            .unwrap();
        for va in [private, mapped] {
            m.engine
                .fault(&mut m.sys, &mut space, va, FaultAccess::Write)
                .unwrap();
        }
        let private_pa = space.resident_at(private).unwrap();
        m.switch_to(&mut other);
        m.sys.mem.take_engine_dead();
        m.engine.exit(&mut m.sys, space).unwrap();
        let dead = m.sys.mem.take_engine_dead();
        assert!(dead.contains(&private_pa.as_u32()), "{name}: {dead:x?}");
        assert!(
            dead.iter().all(|&pa| pa == private_pa.as_u32()),
            "{name}: {dead:x?}"
        );
    }
}

/// `DestroyRefused` and `WindowError::Table` give their causes as
/// `source()`.
#[test]
fn refused_destroys_and_window_table_errors_give_their_cause_as_source() {
    use core::error::Error as _;
    let table = TableError::OutOfFrames {
        va: VirtAddr(0xffc0_0000),
    };
    let window = WindowError::Table(table);
    assert_eq!(
        message(window.source().expect("the table error")),
        message(table)
    );
    let refused = shared::DestroyRefused {
        error: CoherenceError::Table(table),
        buffer: None,
    };
    assert_eq!(
        message(refused.source().expect("the engine's error")),
        message(refused.error)
    );
}

/// Each colour has two window slots: two acquisitions of one colour get
/// both, each at that colour, and a third is refused as busy (a copy maps
/// its source and destination at the user's colour at once).
#[test]
fn two_windows_of_one_colour_are_two_slots_of_that_colour() {
    let mut m = Machine::new(CpuModel::arm1136_64k());
    let info = *m.sys.mem.info();
    let mut windows = KernelWindows::new(
        &mut m.sys.mem,
        &mut m.sys.table_frames,
        &mut m.kernel,
        VirtAddr(WINDOWS_TEST_BASE),
        &info,
    )
    .unwrap();
    let frames = [
        m.sys.allocator.allocate_any().unwrap(),
        m.sys.allocator.allocate_any().unwrap(),
    ];
    for colour in 0..windows.colours() {
        let a = windows.acquire(&mut m.sys.mem, frames[0], colour).unwrap();
        let b = windows.acquire(&mut m.sys.mem, frames[1], colour).unwrap();
        assert_ne!(a, b, "colour {colour}");
        for slot in [a, b] {
            assert_eq!(info.colour_of(windows.va(slot)), colour, "slot {slot}");
        }
        assert_eq!(
            windows.acquire(&mut m.sys.mem, frames[0], colour),
            Err(WindowError::Busy { colour })
        );
        windows.release(&mut m.sys.mem, a).unwrap();
        windows.release(&mut m.sys.mem, b).unwrap();
    }
}

/// A table error wrapping a descriptor or maintenance refusal gives it as
/// its source; the others have none.
#[test]
fn table_errors_give_their_cause_as_source() {
    use core::error::Error as _;
    let descriptor = crate::mmu::DescriptorError::NotExpressible {
        what: "execute-never",
        arch: crate::mmu::Arch::Armv5,
    };
    let maintenance = crate::cache::MaintenanceError::SetWayOutOfRange {
        set: 9,
        way: 9,
        sets: 8,
        ways: 4,
    };
    for (e, inner) in [
        (TableError::Descriptor(descriptor), message(descriptor)),
        (TableError::Maintenance(maintenance), message(maintenance)),
    ] {
        let source = e.source().unwrap_or_else(|| panic!("{e:?} has no source"));
        assert_eq!(message(source), inner, "{e:?}");
    }
    let plain = TableError::NotMapped {
        va: VirtAddr(0x4000),
    };
    assert!(plain.source().is_none());
}
