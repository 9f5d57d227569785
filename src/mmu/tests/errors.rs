//! Every error of the translation layer, produced by the operation that
//! reports it, carries the values involved and says them in its message;
//! a refused operation writes nothing. Also the formats a reader sees in
//! logs: raw attribute bits and a table's `Debug`.

use super::*;

/// The physical address of the L2 entry for `va` in the table at [`L1`]
/// (whose L1 entry is a coarse table).
fn l2_slot(m: &Machine, va: u32) -> u32 {
    (m.word(l1_entry(L1, va)) & !0x3ff) + ((va >> 12) & 0xff) * 4
}

/// The message of `e`.
fn message(e: impl core::fmt::Display) -> String {
    std::format!("{e}")
}

#[test]
fn descriptor_errors_name_their_values() {
    // Each from the encoder or decoder that refuses it.
    let cases: [(Result<(), DescriptorError>, &str); 8] = [
        (
            Attributes::USER_DATA
                .with_access(Access::UserRo)
                .to_hw(V5)
                .map(drop),
            "the ARMv5 descriptor format cannot express kernel and user read-only (needs \
             SCTLR.R = 1; vacmm uses S = 1)",
        ),
        (
            L1Descriptor::Section {
                base: PhysAddr(0x0010_0000),
                domain: 0,
                attrs: HwAttrs {
                    xn: true,
                    ..hw(0, true, true, 1)
                },
            }
            .encode(V5)
            .map(drop),
            "the ARMv5 descriptor format has no XN here",
        ),
        (
            L1Descriptor::Section {
                base: PhysAddr(0x0018_0000),
                domain: 0,
                attrs: hw(0, true, true, 1),
            }
            .encode(V6)
            .map(drop),
            "the section base 0x00180000 is not aligned to 0x100000 as its descriptor requires",
        ),
        (
            L1Descriptor::Coarse {
                table: PhysAddr(0x400),
                domain: 16,
            }
            .encode(V5)
            .map(drop),
            "the domain field's value 16 is out of range (at most 15)",
        ),
        (
            L1Descriptor::decode(0x0030_1013, V6).map(drop),
            "the descriptor 0x00301013 uses an encoding reserved on ARMv6 (or one vacmm never \
             writes)",
        ),
        (
            Attributes::from_hw(hw(2, false, true, 1), V5).map(drop),
            "the bits TEX=0b010 C=0 B=1 are not a memory type vacmm knows on ARMv5",
        ),
        (
            Attributes::from_hw(hw(0, true, true, 0), V6).map(drop),
            "the access bits APX=0 AP=0b00 mean no access or are reserved on ARMv6: vacmm maps \
             no page that way",
        ),
        (
            Attributes::from_hw(
                HwAttrs {
                    ap: [1, 1, 3, 1],
                    ..hw(0, true, true, 1)
                },
                V5,
            )
            .map(drop),
            "the subpages of this ARMv5 page have different permissions (AP 1, 1, 3, 1): vacmm \
             gives a page one permission",
        ),
    ];
    for (result, expected) in cases {
        let e = result.expect_err(expected);
        assert_eq!(message(e), expected, "{e:?}");
    }
}

#[test]
fn table_errors_from_refused_operations_name_their_values() {
    let arch = V6;
    let va = VirtAddr(0x0040_0000);
    let (mut m, mut frames, mut t) = setup(arch);
    t.map_page(&mut m, &mut frames, va, PhysAddr(0x5000), user_attrs())
        .unwrap();
    t.map_section(
        &mut m,
        VirtAddr(0x0030_0000),
        PhysAddr(0x0030_0000),
        Attributes::KERNEL_DATA,
    )
    .unwrap();
    m.take_log();
    let small = L2Descriptor::Small {
        base: PhysAddr(0x5000),
        attrs: user_attrs().to_hw(arch).unwrap(),
    }
    .encode(arch)
    .unwrap();

    let unaligned = t
        .map_page(
            &mut m,
            &mut frames,
            VirtAddr(0x0040_1800),
            PhysAddr(0x6000),
            user_attrs(),
        )
        .unwrap_err();
    assert_eq!(
        unaligned,
        TableError::Unaligned {
            what: "virtual address",
            address: 0x0040_1800,
            alignment: 0x1000
        }
    );
    assert_eq!(
        message(unaligned),
        "the virtual address 0x00401800 is not aligned to 0x1000"
    );

    let again = t
        .map_page(&mut m, &mut frames, va, PhysAddr(0x6000), user_attrs())
        .unwrap_err();
    assert_eq!(
        again,
        TableError::AlreadyMapped {
            va,
            descriptor: small
        }
    );
    assert_eq!(
        message(again),
        std::format!("virtual address 0x00400000 is already mapped (descriptor {small:#010x})")
    );

    let missing = t.unmap_page(&mut m, VirtAddr(0x0041_0000)).unwrap_err();
    assert_eq!(
        missing,
        TableError::NotMapped {
            va: VirtAddr(0x0041_0000)
        }
    );
    assert_eq!(message(missing), "virtual address 0x00410000 is not mapped");

    let in_section = t
        .map_page(
            &mut m,
            &mut frames,
            VirtAddr(0x0034_5000),
            PhysAddr(0x6000),
            user_attrs(),
        )
        .unwrap_err();
    assert_eq!(
        in_section,
        TableError::WouldSplitSection {
            va: VirtAddr(0x0034_5000),
            section: VirtAddr(0x0030_0000),
            size: PageSize::Section
        }
    );
    assert_eq!(
        message(in_section),
        "virtual address 0x00345000 lies in the 1 MiB section at 0x00300000, which vacmm does \
         not split: unmap it first"
    );

    let pages_not_section = t.unmap_section(&mut m, VirtAddr(0x0040_0000)).unwrap_err();
    assert_eq!(
        pages_not_section,
        TableError::SizeMismatch {
            va: VirtAddr(0x0040_0000),
            mapped: PageSize::Small
        }
    );
    assert_eq!(
        message(pages_not_section),
        "virtual address 0x00400000 is mapped by a 4 KiB small page, not by an entry of the \
         size this operation changes"
    );

    // None of the refusals wrote a descriptor.
    assert_eq!(writes(&m.take_log()), []);
}

#[test]
fn a_large_page_is_not_split_and_says_so() {
    for arch in ARCHES {
        let (mut m, mut frames, mut t) = setup(arch);
        let va = VirtAddr(0x0040_0000);
        t.map_page(&mut m, &mut frames, va, PhysAddr(0x5000), user_attrs())
            .unwrap();
        // Another kernel's 64 KiB page in the same slot (vacmm writes none).
        let slot = l2_slot(&m, va.0);
        let large = L2Descriptor::Large {
            base: PhysAddr(0x0001_0000),
            attrs: user_attrs().to_hw(arch).unwrap(),
        }
        .encode(arch)
        .unwrap();
        m.words.insert(slot, large);
        m.take_log();
        let e = t.unmap_page(&mut m, va).unwrap_err();
        assert_eq!(e, TableError::WouldSplitLargePage { va }, "{arch}");
        assert_eq!(
            message(e),
            "virtual address 0x00400000 lies in a 64 KiB large page, which vacmm does not \
             split: unmap it first"
        );
        let e = t.protect_page(&mut m, va, user_attrs()).unwrap_err();
        assert_eq!(e, TableError::WouldSplitLargePage { va }, "{arch}");
        assert_eq!(writes(&m.take_log()), [], "{arch}");
    }
}

#[test]
fn table_setup_errors_name_their_values() {
    // A misaligned L1 table.
    let mut m = Machine::new(V5);
    let e = PageTable::new(&mut m, PhysAddr(0x0001_0400), V5).unwrap_err();
    assert_eq!(
        e,
        TableError::MisalignedTable {
            table: PhysAddr(0x0001_0400),
            alignment: 0x4000
        }
    );
    assert_eq!(
        message(e),
        "the page table at 0x00010400 is not aligned to 0x4000 as the hardware requires"
    );
    assert_eq!(m.take_log(), []);

    // No frame for a coarse table.
    let (mut m, _, mut t) = setup(V5);
    let e = t
        .map_page(
            &mut m,
            &mut Frames::new(&[]),
            VirtAddr(0x0040_0000),
            PhysAddr(0x5000),
            user_attrs(),
        )
        .unwrap_err();
    assert_eq!(
        e,
        TableError::OutOfFrames {
            va: VirtAddr(0x0040_0000)
        }
    );
    assert_eq!(
        message(e),
        "no free frame for the second-level page table needed at virtual address 0x00400000"
    );

    // An ARMv5 fine table another kernel left behind.
    let fine = L1Descriptor::Fine {
        table: PhysAddr(0x0030_1000),
        domain: 0,
    }
    .encode(V5)
    .unwrap();
    m.words.insert(l1_entry(L1, 0x0050_0000), fine);
    m.take_log();
    let e = t
        .map_page(
            &mut m,
            &mut Frames::plenty(),
            VirtAddr(0x0050_2000),
            PhysAddr(0x5000),
            user_attrs(),
        )
        .unwrap_err();
    assert_eq!(
        e,
        TableError::ForeignEntry {
            va: VirtAddr(0x0050_2000),
            descriptor: fine
        }
    );
    assert_eq!(
        message(e),
        std::format!(
            "virtual address 0x00502000 is described by the L1 descriptor {fine:#010x}, which \
             vacmm does not manage (such as an ARMv5 fine table)"
        )
    );

    // An FCSE window that already holds a mapping.
    let mut frames = Frames::plenty();
    t.map_page(
        &mut m,
        &mut frames,
        VirtAddr(0x0300_0000),
        PhysAddr(0x8000),
        user_attrs(),
    )
    .unwrap();
    m.take_log();
    let e = t.set_fcse_window(&mut m, Some(1)).unwrap_err();
    assert_eq!(
        e,
        TableError::WindowInUse {
            pid: 1,
            va: VirtAddr(0x0300_0000)
        }
    );
    assert_eq!(
        message(e),
        "the window of FCSE PID 1 is already in use: this table maps 0x03000000 in it"
    );
    assert_eq!(t.fcse_window(), None);
    assert_eq!(writes(&m.take_log()), []);

    // Attributes the architecture cannot express: the descriptor's message.
    let never = Attributes::KERNEL_DATA.with_execute(Execute::Never);
    let e = t
        .map_page(
            &mut m,
            &mut frames,
            VirtAddr(0x0060_0000),
            PhysAddr(0x9000),
            never,
        )
        .unwrap_err();
    let TableError::Descriptor(inner) = e else {
        panic!("{e:?}");
    };
    assert_eq!(message(e), message(inner));
    assert!(
        message(e).starts_with("the ARMv5 descriptor format cannot express"),
        "{e}"
    );
}

/// Table memory whose words in `bad` cannot be read and in `unwritable`
/// cannot be written (a model's bounds); everything else goes to the
/// recording [`Machine`].
struct Unreadable {
    m: Machine,
    bad: core::ops::Range<u32>,
    unwritable: core::ops::Range<u32>,
}

impl TableMemory for Unreadable {
    type Cache = Machine;

    fn read_word(&mut self, pa: PhysAddr) -> Result<u32, TableError> {
        if self.bad.contains(&pa.0) {
            return Err(TableError::Memory { pa });
        }
        self.m.read_word(pa)
    }
    fn write_word(&mut self, pa: PhysAddr, value: u32) -> Result<(), TableError> {
        if self.unwritable.contains(&pa.0) {
            return Err(TableError::Memory { pa });
        }
        self.m.write_word(pa, value)
    }
    fn kernel_va(&self, pa: PhysAddr) -> VirtAddr {
        self.m.kernel_va(pa)
    }
    fn cache(&mut self) -> &mut Machine {
        &mut self.m
    }
}

/// Moving the FCSE window to another PID when a write fails half-way
/// loses no entry: the new window is written before the old one is
/// zeroed, so the old window and the table's PID stay as they were.
/// (Zeroing first, as before, left the ARMv5 entries made under the PID
/// nowhere: the page below was unmapped.)
#[test]
fn a_window_move_that_fails_half_way_keeps_the_entries() {
    let (mut m, mut frames, mut t) = setup(V5);
    t.set_fcse_window(&mut m, Some(2)).unwrap();
    // Made under the PID: on ARMv5 its L1 entry lives only at the window.
    t.map_page(
        &mut m,
        &mut frames,
        VirtAddr(0x0010_3000),
        PhysAddr(0x7000),
        user_attrs(),
    )
    .unwrap();
    // The new window's second entry (PID 3, 1 MiB) cannot be written.
    let second = l1_entry(L1, 3 * FCSE_WINDOW_BYTES + MIB);
    let mut mem = Unreadable {
        m,
        bad: 0..0,
        unwritable: second..second + 4,
    };
    assert_eq!(
        t.set_fcse_window(&mut mem, Some(3)),
        Err(TableError::Memory {
            pa: PhysAddr(second)
        })
    );
    assert_eq!(t.fcse_window(), Some(2));
    assert_eq!(
        t.translate(&mut mem, VirtAddr(0x0010_3004)).unwrap().pa,
        PhysAddr(0x7004)
    );
}

#[test]
fn unreadable_table_memory_is_reported_with_its_address() {
    let (m, _, t) = setup(V5);
    let bad = l1_entry(L1, 0x0040_0000);
    let mut mem = Unreadable {
        m,
        bad: bad..bad + 4,
        unwritable: 0..0,
    };
    let e = t.translate(&mut mem, VirtAddr(0x0040_0000)).unwrap_err();
    assert_eq!(e, TableError::Memory { pa: PhysAddr(bad) });
    assert_eq!(
        message(e),
        std::format!("the page-table memory at physical address {bad:#010x} is not accessible")
    );
}

#[test]
fn a_failed_fcse_switch_leaves_the_previous_space_running() {
    // The incoming table's PID windows (L1 entries from 32 MiB up) cannot
    // be read: the switch is refused before any register or cache is
    // touched.
    let (m, mut frames, mut t) = setup(V5);
    let mut mem = Unreadable {
        m,
        bad: l1_entry(L1, FCSE_WINDOW_BYTES)..L1 + 0x4000,
        unwritable: 0..0,
    };
    t.map_page(
        &mut mem,
        &mut frames,
        VirtAddr(0x0010_0000),
        PhysAddr(0x5000),
        user_attrs(),
    )
    .unwrap();
    t.set_fits_fcse_window(true);
    mem.m.take_log();
    let mut switcher = ContextSwitcher::vivt_fcse(KeyAllocator::fcse_pids(1, 63).unwrap());
    let keys = std::format!("{:?}", switcher.keys());
    // SAFETY: a recording double; no real translation changes.
    let e = unsafe { switcher.switch_to(&mut mem, &mut t) }.unwrap_err();
    // The PID allocator too: no PID taken, none recorded as running.
    assert_eq!(std::format!("{:?}", switcher.keys()), keys);
    let SwitchError::Table(TableError::Memory { pa }) = e else {
        panic!("{e:?}");
    };
    assert!(mem.bad.contains(&pa.0), "{pa}");
    assert_eq!(
        message(e),
        std::format!(
            "the context switch was refused and the previous space still runs: the page-table \
             memory at physical address {pa} is not accessible"
        )
    );
    assert_eq!(mem.m.take_log(), [], "nothing switched, nothing flushed");
    assert_eq!(t.fcse_window(), None);
    assert_eq!(t.key().value(), None);
    assert_eq!(switcher.counters().cache_flushes, 0);
    assert_eq!(SwitchError::from(TableError::Memory { pa }), e);
}

/// Cache maintenance of a CPU without ASIDs (the trait's defaults refuse
/// the by-ASID TLB operations, as on an ARM926).
struct NoAsids(CacheInfo);

impl CacheMaintenance for NoAsids {
    fn info(&self) -> &CacheInfo {
        &self.0
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
}

#[test]
fn an_asid_flush_on_a_cpu_without_asids_is_a_maintenance_error() {
    let (mut m, mut frames, mut t) = setup(V6);
    let va = VirtAddr(0x0040_0000);
    t.map_page(&mut m, &mut frames, va, PhysAddr(0x5000), user_attrs())
        .unwrap();
    let mut asids = KeyAllocator::asid_range(7, 9).unwrap();
    asids.activate(&mut t.key);
    let (_, flush) = t.unmap_page(&mut m, va).unwrap();
    assert_eq!(flush.asid(), Some(7));
    let g = CacheGeometry::new(16 << 10, 4, 32).unwrap();
    let arm926 = MainId::from_raw(0x4106_9265);
    let mut cpu = NoAsids(CacheInfo::pipt(arm926, g, g));
    let e = TableError::from(flush.flush(&mut cpu).unwrap_err());
    assert_eq!(
        e,
        TableError::Maintenance(crate::cache::MaintenanceError::NotOnThisCpu {
            operation: "TLB invalidate by MVA and ASID",
            cpu: arm926.part()
        })
    );
    assert_eq!(
        message(e),
        "the TLB invalidate by MVA and ASID operation does not exist on the ARM926EJ-S"
    );
}

#[test]
#[cfg(feature = "alloc")]
fn a_reserved_window_slot_must_be_free() {
    for arch in ARCHES {
        let (mut m, mut frames, mut t) = setup(arch);
        let va = VirtAddr(0xffc0_1000);
        t.map_page(
            &mut m,
            &mut frames,
            va,
            PhysAddr(0x5000),
            Attributes::KERNEL_DATA,
        )
        .unwrap();
        let entry = m.word(l2_slot(&m, va.0));
        m.take_log();
        let e = t.reserve_page_slot(&mut m, &mut frames, va).unwrap_err();
        assert_eq!(
            e,
            TableError::AlreadyMapped {
                va,
                descriptor: entry
            },
            "{arch}"
        );
        assert_ne!(entry, 0);
        assert_eq!(writes(&m.take_log()), [], "{arch}");
        // The page next to it is free and can be reserved.
        assert!(
            t.reserve_page_slot(&mut m, &mut frames, VirtAddr(0xffc0_2000))
                .is_ok()
        );
    }
}

#[test]
fn raw_attribute_bits_print_every_field() {
    let bits = HwAttrs {
        tex: 0b101,
        c: true,
        b: false,
        ap: [3, 3, 3, 3],
        apx: true,
        xn: true,
        not_global: false,
        shareable: true,
    };
    assert_eq!(
        message(bits),
        "TEX=101 C=1 B=0 AP=[3, 3, 3, 3] APX=1 XN=1 nG=0 S=1"
    );
    // What the encoder makes of user read-only data on ARMv6.
    let ro = Attributes::USER_DATA
        .with_access(Access::UserRo)
        .to_hw(V6)
        .unwrap();
    assert!(message(ro).contains("AP=[2, 2, 2, 2] APX=1"), "{ro}");
}

#[test]
fn who_may_write_each_access() {
    let kernel_writable: Vec<Access> = Access::ALL
        .into_iter()
        .filter(|a| a.kernel_writable())
        .collect();
    assert_eq!(
        kernel_writable,
        [Access::KernelRw, Access::UserRw, Access::UserRoKernelRw]
    );
    // User-writable implies kernel-writable; read-only kinds are neither.
    for access in Access::ALL {
        assert!(
            !access.user_writable() || access.kernel_writable(),
            "{access:?}"
        );
    }
    assert!(!Access::KernelRo.kernel_writable() && !Access::UserRo.kernel_writable());
}

#[test]
fn a_table_debug_names_its_l1_architecture_window_and_key() {
    let (mut m, _, mut t) = setup(V5);
    t.set_fcse_window(&mut m, Some(2)).unwrap();
    let text = std::format!("{t:?}");
    assert!(text.starts_with("PageTable {"), "{text}");
    for part in [
        "l1: PhysAddr(0x00010000)",
        "arch: Armv5",
        "fcse_window: Some(2)",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    assert!(text.contains("key:"), "{text}");
}

/// A key of another allocator (a value outside this one's range) is stale
/// here: activating it assigns one of this allocator's values rather than
/// running the space under a foreign ASID that may be another space's.
#[test]
fn a_key_from_another_allocator_gets_a_value_of_this_one() {
    let mut mine = KeyAllocator::asid_range(1, 10).unwrap();
    let mut theirs = KeyAllocator::asid_range(20, 30).unwrap();
    let mut key = SpaceKey::UNASSIGNED;
    assert_eq!(theirs.activate(&mut key), KeyOutcome::Assigned);
    assert_eq!(key.value(), Some(20));
    assert_eq!(mine.activate(&mut key), KeyOutcome::Assigned);
    assert_eq!(key.value(), Some(1));
    assert!(mine.is_current(key));
}
