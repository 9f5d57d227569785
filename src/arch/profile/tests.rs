//! The sequence each known core gets, pinned per MIDR revision (issue 20's
//! table): a change of choice for any part shows up here first.

use super::*;

const ARM926EJS: u32 = 0x4106_9265; // QEMU arm926
const ARM1136_R0P2: u32 = 0x4107_b362; // QEMU arm1136-r2
const ARM1136_R1P3: u32 = 0x4117_b363; // QEMU arm1136
const ARM1136_R1P5: u32 = 0x4117_b365; // after the 411920 fix (r1p4)
const ARM1176_R0P7: u32 = 0x410f_b767; // QEMU arm1176 (Raspberry Pi 1)
const ARM11MPCORE_R0P2: u32 = 0x410f_b022; // QEMU arm11mpcore

fn profile(midr: u32) -> CoreProfile {
    CoreProfile::for_core(MainId::from_raw(midr)).expect("a core vacmm drives")
}

/// (midr, whole I, I range, D range, whole D, BTC flush, 364296)
type Row = (
    u32,
    IcacheAll,
    IcacheRange,
    DcacheRange,
    WholeDcache,
    bool,
    bool,
);

const TABLE: [Row; 6] = [
    (
        ARM926EJS,
        IcacheAll::Single,
        IcacheRange::Lines,
        DcacheRange::Lines,
        WholeDcache::TestAndCleanLoop,
        false,
        false,
    ),
    (
        ARM1136_R0P2,
        IcacheAll::Erratum411920,
        IcacheRange::BlockWithWorkaround { erratum: 371025 },
        DcacheRange::Block,
        WholeDcache::Single,
        true,
        true,
    ),
    (
        ARM1136_R1P3,
        IcacheAll::Erratum411920,
        IcacheRange::BlockWithWorkaround { erratum: 371025 },
        DcacheRange::Block,
        WholeDcache::Single,
        true,
        false,
    ),
    (
        ARM1136_R1P5,
        IcacheAll::Single,
        IcacheRange::BlockWithWorkaround { erratum: 371025 },
        DcacheRange::Block,
        WholeDcache::Single,
        true,
        false,
    ),
    (
        ARM1176_R0P7,
        IcacheAll::Erratum411920,
        IcacheRange::BlockWithWorkaround { erratum: 371367 },
        DcacheRange::Block,
        WholeDcache::Single,
        true,
        false,
    ),
    (
        ARM11MPCORE_R0P2,
        IcacheAll::Single,
        IcacheRange::Lines,
        DcacheRange::Lines,
        WholeDcache::Single,
        true,
        false,
    ),
];

#[test]
fn each_known_revision_gets_its_sequences() {
    for (midr, icache_all, icache_range, dcache_range, whole_dcache, btc, e364296) in TABLE {
        let p = profile(midr);
        let got = (
            p.icache_all,
            p.icache_range,
            p.dcache_range,
            p.whole_dcache,
            p.flushes_branch_target_cache,
            p.bring_up.erratum_364296,
        );
        let want = (
            icache_all,
            icache_range,
            dcache_range,
            whole_dcache,
            btc,
            e364296,
        );
        assert_eq!(got, want, "MIDR {midr:#010x}");
        let family = if midr == ARM926EJS {
            Family::Arm926
        } else {
            Family::Arm11
        };
        assert_eq!(p.family, family, "MIDR {midr:#010x}");
    }
}

#[test]
fn every_arm1136_r0_revision_gets_the_364296_workaround() {
    for revision in 0..16 {
        let p = profile(0x4107_b360 | revision);
        assert!(p.bring_up.erratum_364296, "r0p{revision}");
    }
    assert!(!profile(ARM1136_R1P3).bring_up.erratum_364296);
}

#[test]
fn actlr_rv_turns_block_operations_into_loops_and_whole_i_invalidates() {
    for midr in [ARM1136_R0P2, ARM1136_R1P3, ARM1176_R0P7] {
        let p = profile(midr).with_actlr(Actlr::RV);
        assert_eq!(p.dcache_range, DcacheRange::Lines, "{midr:#010x}");
        assert_eq!(p.icache_range, IcacheRange::WholeCache, "{midr:#010x}");
        assert_eq!(p.whole_dcache, WholeDcache::Single, "{midr:#010x}");
        assert!(!p.uses_block_operations());
        // QEMU's reset ACTLR (RS, DB, SB) changes nothing.
        let reset = Actlr::RS | Actlr::DB | Actlr::SB;
        assert_eq!(profile(midr).with_actlr(reset), profile(midr));
        assert!(profile(midr).uses_block_operations());
    }
}

#[test]
fn actlr_ra_turns_whole_d_cache_operations_into_set_way_loops() {
    let p = profile(ARM1176_R0P7).with_actlr(Actlr::RA);
    assert_eq!(p.whole_dcache, WholeDcache::SetWayLoop);
    assert_eq!(p.dcache_range, DcacheRange::Block);
}

#[test]
fn the_mpcore_and_arm926_actlr_bits_mean_something_else() {
    // MPCore bit 5 is SMP/nAMP and bit 4 EXCL (MPCore TRM §3.4): not RV/RA.
    let mpcore = profile(ARM11MPCORE_R0P2);
    assert!(!mpcore.reads_actlr());
    assert_eq!(mpcore.with_actlr(Actlr::RV | Actlr::RA), mpcore);
    assert!(!mpcore.uses_block_operations());
    assert!(!profile(ARM926EJS).reads_actlr());
}

#[test]
fn foreign_cores_are_refused_by_name() {
    let refused = [
        (0x4112_9200, "ARM920T"),
        (0x4105_9461, "ARM946E-S"),
        (0x6905_2d00, "Intel XScale"),
        (0x5625_1310, "Marvell Feroceon / Sheeva"),
        (
            0x4100_9260,
            "Feroceon (a part reporting the ARM926 part number with architecture field 0)",
        ),
        (0x410f_c080, "Cortex-A (ARMv7)"),
        (0x4107_b560, "ARM1156T2-S (an MPU, no MMU)"),
    ];
    for (midr, name) in refused {
        let err = CoreProfile::for_core(MainId::from_raw(midr)).unwrap_err();
        assert_eq!(err.name, name, "MIDR {midr:#010x}");
        assert_eq!(err.midr.raw(), midr);
        let text = err.to_string();
        assert!(
            text.contains(name) && text.contains(&format!("{midr:#010x}")),
            "{text}"
        );
    }
}
