//! Reserved page slots (issue 19, finding 5): an address handed out by
//! `reserve_page_slot` is refused by the mapping calls, in the reserving
//! table and in tables that share its coarse tables, until given back.

use super::*;

const SLOT: u32 = 0xffc0_0000;
const FRAME: u32 = 0x0030_0000;

#[test]
fn mapping_calls_refuse_a_reserved_slot() {
    for arch in ARCHES {
        let (mut m, mut frames, mut table) = setup(arch);
        let va = VirtAddr(SLOT);
        let slot = table.reserve_page_slot(&mut m, &mut frames, va).unwrap();
        let refused = Err(TableError::ReservedSlot { va });
        let mapped = table.map_page(&mut m, &mut frames, va, PhysAddr(FRAME), user_attrs());
        assert_eq!(mapped, refused, "{arch}");
        assert_eq!(
            table.reserve_page_slot(&mut m, &mut frames, va).map(|_| ()),
            refused
        );
        slot.map(&mut m, PhysAddr(FRAME), Attributes::KERNEL_DATA)
            .unwrap();
        assert_eq!(table.unmap_page(&mut m, va).map(|_| ()), refused, "{arch}");
        let protect = table.protect_page(&mut m, va, Attributes::KERNEL_DATA);
        assert_eq!(protect.map(|_| ()), refused, "{arch}");
        // Giving back a slot still mapped is refused; once empty it works.
        assert!(matches!(
            table.unreserve_page_slot(&mut m, slot),
            Err(TableError::AlreadyMapped { .. })
        ));
        let slot = table
            .reserve_page_slot(&mut m, &mut frames, VirtAddr(SLOT + 0x1000))
            .unwrap();
        table.unreserve_page_slot(&mut m, slot).unwrap();
        table
            .map_page(
                &mut m,
                &mut frames,
                VirtAddr(SLOT + 0x1000),
                PhysAddr(FRAME),
                user_attrs(),
            )
            .unwrap();
    }
}

#[test]
fn a_table_sharing_the_slot_s_coarse_table_refuses_it_too() {
    for arch in ARCHES {
        let (mut m, mut frames, mut kernel) = setup(arch);
        let _slot = kernel
            .reserve_page_slot(&mut m, &mut frames, VirtAddr(SLOT))
            .unwrap();
        let mut user = PageTable::new(&mut m, PhysAddr(0x8000), arch).unwrap();
        let range = VirtRange::new(VirtAddr(SLOT), u64::from(MIB)).unwrap();
        user.share_entries_from(&mut m, &kernel, range).unwrap();
        let mapped = user.map_page(
            &mut m,
            &mut frames,
            VirtAddr(SLOT),
            PhysAddr(FRAME),
            user_attrs(),
        );
        assert_eq!(
            mapped,
            Err(TableError::ReservedSlot { va: VirtAddr(SLOT) }),
            "{arch}"
        );
    }
}

/// A table's debug output counts its reserved slots (what a kernel
/// developer sees when printing one).
#[test]
fn a_tables_debug_output_counts_its_reserved_slots() {
    let (mut m, mut frames, mut table) = setup(ARCHES[0]);
    for page in 0..2 {
        let va = VirtAddr(SLOT + page * 0x1000);
        table.reserve_page_slot(&mut m, &mut frames, va).unwrap();
    }
    let text = std::format!("{table:?}");
    assert!(text.contains("reserved: 2"), "{text}");
}
