//! Host unit tests of the translation layer (no cache model needed).
//!
//! ```text
//!   descriptors  encode ⇄ decode on ARMv5 and ARMv6, exact raw words
//!                computed by hand from desc.rs's bit table, every error
//!   PageTable    over Machine (words by physical address + a recording
//!                CacheMaintenance / TranslationRegisters) and Frames (a
//!                list of table frames that records frees and can run out)
//!   keys         KeyAllocator ranges, generations, the reserved running key
//!   switch       ContextSwitcher: the exact register / maintenance sequence
//! ```
//!
//! The "every descriptor write is cleaned" obligation is checked on the
//! Machine's log by [`clean_stats`]: every write is followed by a clean of
//! its kernel VA before any other event, and the counts are compared.

// Reserved slots need the heap (feature `alloc`).
#[cfg(feature = "alloc")]
mod reserved;

use std::collections::{HashMap, HashSet, VecDeque};

use super::*;
use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::cache::{CacheGeometry, CacheInfo, CacheMaintenance, MainId, RangeOutcome};

mod errors;

const V5: Arch = Arch::Armv5;
const V6: Arch = Arch::Armv6;
const ARCHES: [Arch; 2] = [Arch::Armv5, Arch::Armv6];
const EXECUTES: [Execute; 3] = [Execute::Allow, Execute::Never, Execute::NeverIfSupported];
const MIB: u32 = 1 << 20;

// ---- descriptors -----------------------------------------------------------

/// Every typed attribute combination.
fn all_attributes() -> Vec<Attributes> {
    let mut all = Vec::new();
    for memory in MemoryType::ALL {
        for access in Access::ALL {
            for execute in EXECUTES {
                for global in [true, false] {
                    all.push(Attributes {
                        memory,
                        access,
                        execute,
                        global,
                    });
                }
            }
        }
    }
    all
}

/// The bits for `attrs` on `arch`, or `None` for the two combinations ARMv5
/// cannot express (checked to be exactly those).
fn typed_hw(attrs: Attributes, arch: Arch) -> Option<HwAttrs> {
    match attrs.to_hw(arch) {
        Ok(hw) => {
            assert_eq!(
                Attributes::from_hw(hw, arch),
                Ok(attrs.as_encoded_on(arch)),
                "{attrs:?} on {arch}"
            );
            Some(hw)
        }
        Err(e) => {
            assert_eq!(arch, V5, "{attrs:?} must be expressible on ARMv6: {e}");
            assert!(
                attrs.execute == Execute::Never || attrs.access == Access::UserRo,
                "{attrs:?} on ARMv5: unexpected {e}"
            );
            assert!(matches!(
                e,
                DescriptorError::NotExpressible { arch: V5, .. }
            ));
            None
        }
    }
}

/// Raw attribute bits the format may hold: every TEX/C/B/AP, plus on ARMv6
/// every APX/XN/nG/S combination and on ARMv5 pages some mixed subpage APs.
/// `tex` false: the format has no TEX (ARMv5 small pages).
fn raw_attr_combos(arch: Arch, tex: bool, subpages: bool) -> Vec<HwAttrs> {
    let mut all = Vec::new();
    let texes = if tex { 0..8 } else { 0..1 };
    for tex in texes {
        for ap in 0..4u8 {
            for cb in 0..4u8 {
                let base = HwAttrs {
                    tex,
                    c: cb & 2 != 0,
                    b: cb & 1 != 0,
                    ap: [ap; 4],
                    ..HwAttrs::default()
                };
                match arch {
                    Arch::Armv6 => {
                        for flags in 0..16u8 {
                            all.push(HwAttrs {
                                apx: flags & 1 != 0,
                                xn: flags & 2 != 0,
                                not_global: flags & 4 != 0,
                                shareable: flags & 8 != 0,
                                ..base
                            });
                        }
                    }
                    Arch::Armv5 => {
                        all.push(base);
                        if subpages {
                            all.push(HwAttrs {
                                ap: [ap, ap ^ 1, ap ^ 2, ap ^ 3],
                                ..base
                            });
                        }
                    }
                }
            }
        }
    }
    all
}

fn l1_round_trip(d: L1Descriptor, arch: Arch) {
    let raw = d
        .encode(arch)
        .unwrap_or_else(|e| panic!("{d:?} on {arch}: {e}"));
    assert_eq!(
        L1Descriptor::decode(raw, arch),
        Ok(d),
        "{raw:#010x} on {arch}"
    );
}

fn l2_round_trip(d: L2Descriptor, arch: Arch) {
    let raw = d
        .encode(arch)
        .unwrap_or_else(|e| panic!("{d:?} on {arch}: {e}"));
    assert_eq!(
        L2Descriptor::decode(raw, arch),
        Ok(d),
        "{raw:#010x} on {arch}"
    );
}

#[test]
fn l1_descriptors_round_trip_on_both_architectures() {
    let domains = [0u8, 1, 7, 15];
    for arch in ARCHES {
        assert_eq!(L1Descriptor::Fault.encode(arch), Ok(0));
        l1_round_trip(L1Descriptor::Fault, arch);
        for table in [0, 0x400, 0x0012_3400, 0xffff_fc00] {
            for domain in domains {
                l1_round_trip(
                    L1Descriptor::Coarse {
                        table: PhysAddr(table),
                        domain,
                    },
                    arch,
                );
            }
        }
        let section_bases = [0, MIB, 0x8000_0000, 0xfff0_0000];
        for base in section_bases {
            for domain in [0u8, 5, 15] {
                for attrs in all_attributes()
                    .into_iter()
                    .filter_map(|a| typed_hw(a, arch))
                {
                    l1_round_trip(
                        L1Descriptor::Section {
                            base: PhysAddr(base),
                            domain,
                            attrs,
                        },
                        arch,
                    );
                }
                for attrs in raw_attr_combos(arch, true, false) {
                    l1_round_trip(
                        L1Descriptor::Section {
                            base: PhysAddr(base),
                            domain,
                            attrs,
                        },
                        arch,
                    );
                }
            }
        }
        let supersection = |base: u32, attrs: HwAttrs| L1Descriptor::Supersection {
            base: PhysAddr(base),
            attrs,
        };
        let fine = |table: u32, domain: u8| L1Descriptor::Fine {
            table: PhysAddr(table),
            domain,
        };
        match arch {
            Arch::Armv6 => {
                for base in [0, 0x0100_0000, 0xff00_0000] {
                    for attrs in all_attributes()
                        .into_iter()
                        .filter_map(|a| typed_hw(a, arch))
                    {
                        l1_round_trip(supersection(base, attrs), arch);
                    }
                    for attrs in raw_attr_combos(arch, true, false) {
                        l1_round_trip(supersection(base, attrs), arch);
                    }
                }
                assert_eq!(
                    fine(0x1000, 0).encode(arch),
                    Err(DescriptorError::NotInFormat {
                        field: "fine table",
                        arch
                    })
                );
            }
            Arch::Armv5 => {
                assert_eq!(
                    supersection(0x0100_0000, HwAttrs::default()).encode(arch),
                    Err(DescriptorError::NotInFormat {
                        field: "supersection",
                        arch
                    })
                );
                for table in [0, 0x1000, 0x0012_3000, 0xffff_f000] {
                    for domain in domains {
                        l1_round_trip(fine(table, domain), arch);
                    }
                }
            }
        }
    }
}

#[test]
fn l2_descriptors_round_trip_on_both_architectures() {
    for arch in ARCHES {
        assert_eq!(L2Descriptor::Fault.encode(arch), Ok(0));
        l2_round_trip(L2Descriptor::Fault, arch);
        let typed: Vec<HwAttrs> = all_attributes()
            .into_iter()
            .filter_map(|a| typed_hw(a, arch))
            .collect();
        for base in [0, 0x0001_0000, 0x1234_0000, 0xffff_0000] {
            for &attrs in typed.iter().chain(&raw_attr_combos(arch, true, true)) {
                l2_round_trip(
                    L2Descriptor::Large {
                        base: PhysAddr(base),
                        attrs,
                    },
                    arch,
                );
            }
        }
        // ARMv5 small pages have no TEX field.
        let small_has_tex = arch == V6;
        for base in [0, 0x1000, 0x1234_5000, 0xffff_f000] {
            for &attrs in typed
                .iter()
                .chain(&raw_attr_combos(arch, small_has_tex, true))
            {
                l2_round_trip(
                    L2Descriptor::Small {
                        base: PhysAddr(base),
                        attrs,
                    },
                    arch,
                );
            }
        }
    }
}

#[test]
fn typed_attributes_survive_the_bits_on_both_architectures() {
    let mut expressible = [0usize; 2];
    for (n, arch) in ARCHES.into_iter().enumerate() {
        for attrs in all_attributes() {
            if typed_hw(attrs, arch).is_some() {
                expressible[n] += 1;
            }
        }
    }
    // 6 × 5 × 3 × 2 = 180 on ARMv6; ARMv5 loses UserRo (36) and, of the
    // remaining 144, Execute::Never (48).
    assert_eq!(expressible, [96, 180]);
}

/// HwAttrs from TEX, C, B and one AP for every subpage.
fn hw(tex: u8, c: bool, b: bool, ap: u8) -> HwAttrs {
    HwAttrs {
        tex,
        c,
        b,
        ap: [ap; 4],
        ..HwAttrs::default()
    }
}

#[test]
fn raw_encodings_match_the_documented_bit_positions() {
    // Every expected value below was computed by hand from the table in
    // desc.rs (bit positions), not from the encoder.

    // ARMv5 section 0x0010_0000, domain 0, write-back (C B), kernel RW
    // (AP=01 at [11:10] = 0x400), bit 4 set, type 10.
    let wb_krw = Attributes::KERNEL_RWX.to_hw(V5).unwrap();
    let section = L1Descriptor::Section {
        base: PhysAddr(0x0010_0000),
        domain: 0,
        attrs: wb_krw,
    };
    assert_eq!(section.encode(V5), Ok(0x0010_041e));
    // The same on ARMv6: no bit 4 (it is XN there).
    assert_eq!(section.encode(V6), Ok(0x0010_040e));

    // ARMv6 small page 0x8765_4000, user RW, XN, nG, write-back:
    // nG[11]=0x800, AP=11 at [5:4]=0x30, C=0x8, B=0x4, bit 1, XN[0].
    let user = Attributes::USER_DATA.with_execute(Execute::Never);
    let small = L2Descriptor::Small {
        base: PhysAddr(0x8765_4000),
        attrs: user.to_hw(V6).unwrap(),
    };
    assert_eq!(small.encode(V6), Ok(0x8765_483f));

    // ARMv5 small page 0x0012_3000, user RW write-back: AP=11 in all four
    // subpages [11:4] = 0xff0, C B = 0xc, type 10.
    let small_v5 = L2Descriptor::Small {
        base: PhysAddr(0x0012_3000),
        attrs: Attributes::USER_DATA.to_hw(V5).unwrap(),
    };
    assert_eq!(small_v5.encode(V5), Ok(0x0012_3ffe));

    // Coarse table 0x0020_0400, domain 3 (0x60): ARMv5 sets bit 4, ARMv6 not.
    let coarse = L1Descriptor::Coarse {
        table: PhysAddr(0x0020_0400),
        domain: 3,
    };
    assert_eq!(coarse.encode(V5), Ok(0x0020_0471));
    assert_eq!(coarse.encode(V6), Ok(0x0020_0461));
    assert_ne!(coarse.encode(V5).unwrap() & 1 << 4, 0);
    assert_eq!(coarse.encode(V6).unwrap() & 1 << 4, 0);

    // ARMv5 fine table 0x0030_1000, domain 15 (0x1e0), bit 4, type 11.
    let fine = L1Descriptor::Fine {
        table: PhysAddr(0x0030_1000),
        domain: 15,
    };
    assert_eq!(fine.encode(V5), Ok(0x0030_11f3));

    // ARMv6 section 0x4000_0000, domain 2, device (B), kernel RO (APX=1
    // AP=01), XN, nG: nG[17]=0x20000, APX[15]=0x8000, AP 0x400, domain 0x40,
    // XN[4]=0x10, B=0x4, type 10.
    let device_ro = Attributes::DEVICE
        .with_access(Access::KernelRo)
        .with_execute(Execute::Never);
    let device_ro = Attributes {
        global: false,
        ..device_ro
    };
    let section_v6 = L1Descriptor::Section {
        base: PhysAddr(0x4000_0000),
        domain: 2,
        attrs: device_ro.to_hw(V6).unwrap(),
    };
    assert_eq!(section_v6.encode(V6), Ok(0x4002_8456));

    // ARMv6 supersection 0x1000_0000, normal non-cacheable (TEX=001), user
    // RO (APX=1 AP=10), XN, global: bit 18, APX 0x8000, TEX 0x1000, AP 0x800,
    // XN 0x10, type 10.
    let nc_uro = Attributes::USER_DATA
        .with_memory(MemoryType::NormalNonCacheable)
        .with_access(Access::UserRo);
    let nc_uro = Attributes {
        global: true,
        ..nc_uro
    };
    let supersection = L1Descriptor::Supersection {
        base: PhysAddr(0x1000_0000),
        attrs: nc_uro.to_hw(V6).unwrap(),
    };
    assert_eq!(supersection.encode(V6), Ok(0x1004_9812));

    // ARMv6 large page 0x0001_0000, write-through (C), user RO kernel RW
    // (AP=10 at [5:4] = 0x20), XN at bit 15, global, type 01.
    let wt = Attributes::KERNEL_DATA
        .with_memory(MemoryType::NormalWriteThrough)
        .with_access(Access::UserRoKernelRw);
    let large = L2Descriptor::Large {
        base: PhysAddr(0x0001_0000),
        attrs: wt.to_hw(V6).unwrap(),
    };
    assert_eq!(large.encode(V6), Ok(0x0001_8029));

    // ARMv5 large page 0x0005_0000 with subpage APs 11, 01, 10, 00 at
    // [5:4] [7:6] [9:8] [11:10] = 0x30 + 0x40 + 0x200, C = 0x8, type 01.
    let large_v5 = L2Descriptor::Large {
        base: PhysAddr(0x0005_0000),
        attrs: HwAttrs {
            ap: [0b11, 0b01, 0b10, 0b00],
            ..hw(0, true, false, 0)
        },
    };
    assert_eq!(large_v5.encode(V5), Ok(0x0005_0279));
    // ARMv6 small page with TEX=101 (at [8:6] = 0x140) and S (bit 10).
    let small_tex = L2Descriptor::Small {
        base: PhysAddr(0x0000_1000),
        attrs: HwAttrs {
            shareable: true,
            ..hw(0b101, false, true, 0b01)
        },
    };
    // 0x1000 | S 0x400 | TEX 0x140 | AP 0x10 | B 0x4 | type 0x2
    assert_eq!(small_tex.encode(V6), Ok(0x0000_1556));
}

#[test]
fn decoding_ignores_should_be_zero_and_implementation_defined_bits() {
    // ARMv5 bit 9 of a section, ARMv6 P (bit 9) and NS (bit 19).
    let section = L1Descriptor::Section {
        base: PhysAddr(0x0030_0000),
        domain: 1,
        attrs: hw(0, true, true, 0b01),
    };
    for arch in ARCHES {
        let raw = section.encode(arch).unwrap();
        assert_eq!(L1Descriptor::decode(raw | 1 << 9, arch), Ok(section));
    }
    let raw = section.encode(V6).unwrap();
    assert_eq!(L1Descriptor::decode(raw | 1 << 19, V6), Ok(section));
    // ARMv6 small pages: bit 1 set with bit 0 (XN) is still a small page.
    assert_eq!(
        L2Descriptor::decode(0x0000_2003, V6),
        Ok(L2Descriptor::Small {
            base: PhysAddr(0x2000),
            attrs: HwAttrs {
                xn: true,
                ..hw(0, false, false, 0)
            }
        })
    );
}

#[test]
fn misaligned_bases_are_errors_for_every_descriptor() {
    let attrs = hw(0, true, true, 1);
    let misaligned = |what: &'static str, base: u32, alignment: u32| {
        Err::<u32, _>(DescriptorError::MisalignedBase {
            what,
            base: PhysAddr(base),
            alignment,
        })
    };
    for arch in ARCHES {
        assert_eq!(
            L1Descriptor::Coarse {
                table: PhysAddr(0x0020_0200),
                domain: 0
            }
            .encode(arch),
            misaligned("coarse table", 0x0020_0200, 1024)
        );
        assert_eq!(
            L1Descriptor::Section {
                base: PhysAddr(0x0018_0000),
                domain: 0,
                attrs
            }
            .encode(arch),
            misaligned("section", 0x0018_0000, MIB)
        );
        assert_eq!(
            L2Descriptor::Large {
                base: PhysAddr(0x0001_8000),
                attrs
            }
            .encode(arch),
            misaligned("large page", 0x0001_8000, 64 * 1024)
        );
        assert_eq!(
            L2Descriptor::Small {
                base: PhysAddr(0x0000_1800),
                attrs
            }
            .encode(arch),
            misaligned("small page", 0x0000_1800, 4096)
        );
    }
    assert_eq!(
        L1Descriptor::Fine {
            table: PhysAddr(0x0030_0400),
            domain: 0
        }
        .encode(V5),
        misaligned("fine table", 0x0030_0400, 4096)
    );
    assert_eq!(
        L1Descriptor::Supersection {
            base: PhysAddr(0x0110_0000),
            attrs
        }
        .encode(V6),
        misaligned("supersection", 0x0110_0000, 16 * MIB)
    );
}

#[test]
fn out_of_range_fields_are_errors() {
    let domain_16 = Err(DescriptorError::FieldOutOfRange {
        field: "domain",
        value: 16,
        max: 15,
    });
    let tex_8 = Err(DescriptorError::FieldOutOfRange {
        field: "TEX",
        value: 8,
        max: 7,
    });
    let ap_4 = Err(DescriptorError::FieldOutOfRange {
        field: "AP",
        value: 4,
        max: 3,
    });
    let section = |domain: u8, attrs: HwAttrs| L1Descriptor::Section {
        base: PhysAddr(MIB),
        domain,
        attrs,
    };
    let large = |attrs: HwAttrs| L2Descriptor::Large {
        base: PhysAddr(0x1_0000),
        attrs,
    };
    let small = |attrs: HwAttrs| L2Descriptor::Small {
        base: PhysAddr(0x1000),
        attrs,
    };
    let ok = hw(0, true, true, 1);
    for arch in ARCHES {
        let coarse = L1Descriptor::Coarse {
            table: PhysAddr(0x400),
            domain: 16,
        };
        assert_eq!(coarse.encode(arch), domain_16);
        assert_eq!(section(16, ok).encode(arch), domain_16);
        assert_eq!(section(0, hw(8, false, false, 1)).encode(arch), tex_8);
        assert_eq!(section(0, hw(0, false, false, 4)).encode(arch), ap_4);
        assert_eq!(large(hw(8, false, false, 1)).encode(arch), tex_8);
        assert_eq!(large(hw(0, false, false, 4)).encode(arch), ap_4);
        assert_eq!(small(hw(0, false, false, 4)).encode(arch), ap_4);
    }
    assert_eq!(
        L1Descriptor::Fine {
            table: PhysAddr(0x1000),
            domain: 16
        }
        .encode(V5),
        domain_16
    );
    assert_eq!(small(hw(8, false, false, 1)).encode(V6), tex_8);
    let super_tex = L1Descriptor::Supersection {
        base: PhysAddr(0x0100_0000),
        attrs: hw(8, false, false, 1),
    };
    assert_eq!(super_tex.encode(V6), tex_8);
    // One bad subpage AP among good ones is caught too.
    let mixed_bad = HwAttrs {
        ap: [1, 1, 7, 1],
        ..ok
    };
    assert_eq!(
        small(mixed_bad).encode(V5),
        Err(DescriptorError::FieldOutOfRange {
            field: "AP",
            value: 7,
            max: 3
        })
    );
}

#[test]
fn fields_a_format_lacks_are_errors() {
    let mixed = HwAttrs {
        ap: [1, 3, 1, 1],
        ..hw(0, true, true, 1)
    };
    let not_in =
        |field: &'static str, arch: Arch| Err(DescriptorError::NotInFormat { field, arch });
    let section = |attrs: HwAttrs| L1Descriptor::Section {
        base: PhysAddr(MIB),
        domain: 0,
        attrs,
    };
    let large = |attrs: HwAttrs| L2Descriptor::Large {
        base: PhysAddr(0x1_0000),
        attrs,
    };
    let small = |attrs: HwAttrs| L2Descriptor::Small {
        base: PhysAddr(0x1000),
        attrs,
    };
    // Per-subpage AP: only ARMv5 pages have subpages.
    for arch in ARCHES {
        assert_eq!(section(mixed).encode(arch), not_in("per-subpage AP", arch));
    }
    let supersection = L1Descriptor::Supersection {
        base: PhysAddr(0x0100_0000),
        attrs: mixed,
    };
    assert_eq!(supersection.encode(V6), not_in("per-subpage AP", V6));
    assert_eq!(large(mixed).encode(V6), not_in("per-subpage AP", V6));
    assert_eq!(small(mixed).encode(V6), not_in("per-subpage AP", V6));
    assert!(large(mixed).encode(V5).is_ok());
    assert!(small(mixed).encode(V5).is_ok());

    // APX, XN, nG, S do not exist on ARMv5, in any format.
    let base = hw(0, true, true, 1);
    let v6_only = [
        (HwAttrs { apx: true, ..base }, "APX"),
        (HwAttrs { xn: true, ..base }, "XN"),
        (
            HwAttrs {
                not_global: true,
                ..base
            },
            "nG",
        ),
        (
            HwAttrs {
                shareable: true,
                ..base
            },
            "S",
        ),
    ];
    for (attrs, field) in v6_only {
        assert_eq!(section(attrs).encode(V5), not_in(field, V5));
        assert_eq!(large(attrs).encode(V5), not_in(field, V5));
        assert_eq!(small(attrs).encode(V5), not_in(field, V5));
        for arch_ok in [
            section(attrs).encode(V6),
            large(attrs).encode(V6),
            small(attrs).encode(V6),
        ] {
            assert!(arch_ok.is_ok(), "{field} is an ARMv6 field");
        }
    }
    // ARMv5 small pages have no TEX (large pages and sections do).
    assert_eq!(
        small(hw(1, false, false, 1)).encode(V5),
        not_in("TEX in an ARMv5 small page", V5)
    );
    assert!(large(hw(1, false, false, 1)).encode(V5).is_ok());
}

#[test]
fn what_armv5_cannot_express_is_an_error_or_the_documented_fallback() {
    let never = Attributes::KERNEL_DATA.with_execute(Execute::Never);
    assert!(matches!(
        never.to_hw(V5),
        Err(DescriptorError::NotExpressible { arch: V5, .. })
    ));
    assert!(never.to_hw(V6).unwrap().xn);
    // NeverIfSupported: XN where the CPU has it, executable on ARMv5.
    let if_supported = Attributes::KERNEL_DATA;
    assert!(!if_supported.to_hw(V5).unwrap().xn);
    assert!(if_supported.to_hw(V6).unwrap().xn);

    let user_ro = Attributes::USER_DATA.with_access(Access::UserRo);
    assert!(matches!(
        user_ro.to_hw(V5),
        Err(DescriptorError::NotExpressible { arch: V5, .. })
    ));
    let v6 = user_ro.to_hw(V6).unwrap();
    assert_eq!((v6.apx, v6.ap), (true, [0b10; 4]));

    // Device is strongly ordered on ARMv5; nG is not encoded there.
    let device = Attributes {
        global: false,
        ..Attributes::DEVICE
    }
    .to_hw(V5)
    .unwrap();
    assert_eq!((device.tex, device.c, device.b), (0, false, false));
    assert!(!device.not_global);
    // Bufferable is NormalNonCacheable's encoding on both.
    for arch in ARCHES {
        let buf = Attributes::KERNEL_DATA.with_memory(MemoryType::Bufferable);
        let nc = Attributes::KERNEL_DATA.with_memory(MemoryType::NormalNonCacheable);
        assert_eq!(buf.to_hw(arch), nc.to_hw(arch));
    }
}

#[test]
fn unknown_attribute_bits_are_decode_errors() {
    // TEX/C/B that are no MemoryType: TEX=010 on both, ARMv5 TEX=001, ARMv6
    // TEX=001 with C or B.
    for arch in ARCHES {
        assert_eq!(
            Attributes::from_hw(hw(2, false, false, 1), arch),
            Err(DescriptorError::UnknownMemoryType {
                tex: 2,
                c: false,
                b: false,
                arch
            })
        );
    }
    assert_eq!(
        Attributes::from_hw(hw(1, false, false, 1), V5),
        Err(DescriptorError::UnknownMemoryType {
            tex: 1,
            c: false,
            b: false,
            arch: V5
        })
    );
    assert_eq!(
        Attributes::from_hw(hw(1, true, true, 1), V6),
        Err(DescriptorError::UnknownMemoryType {
            tex: 1,
            c: true,
            b: true,
            arch: V6
        })
    );
    // APX=0 AP=00 is no access on ARMv6 (ARMv5 with S=1: kernel RO).
    assert_eq!(
        Attributes::from_hw(hw(0, true, true, 0), V6),
        Err(DescriptorError::UnknownAccess {
            apx: false,
            ap: 0,
            arch: V6
        })
    );
    assert_eq!(
        Attributes::from_hw(hw(0, true, true, 0), V5).map(|a| a.access),
        Ok(Access::KernelRo)
    );
    // APX=1 AP=00 is reserved on ARMv6; APX=1 AP=11 is ARMv6K's UserRo.
    let apx = |ap: u8| HwAttrs {
        apx: true,
        ..hw(0, true, true, ap)
    };
    assert_eq!(
        Attributes::from_hw(apx(0), V6),
        Err(DescriptorError::UnknownAccess {
            apx: true,
            ap: 0,
            arch: V6
        })
    );
    assert_eq!(
        Attributes::from_hw(apx(0b11), V6).map(|a| a.access),
        Ok(Access::UserRo)
    );
    // Mixed subpage permissions have no typed meaning.
    let mixed = HwAttrs {
        ap: [1, 1, 3, 1],
        ..hw(0, true, true, 1)
    };
    assert_eq!(
        Attributes::from_hw(mixed, V5),
        Err(DescriptorError::MixedSubpagePermissions { ap: [1, 1, 3, 1] })
    );
    // A raw ARMv5 small page with mixed subpages decodes, then fails typed.
    let raw = 0x0000_1000 | 0b01 << 4 | 0b01 << 6 | 0b11 << 8 | 0b01 << 10 | 0b1110;
    let Ok(L2Descriptor::Small { attrs, .. }) = L2Descriptor::decode(raw, V5) else {
        panic!("{raw:#x} is an ARMv5 small page");
    };
    assert_eq!(attrs.ap, [1, 1, 3, 1]);
    assert!(matches!(
        Attributes::from_hw(attrs, V5),
        Err(DescriptorError::MixedSubpagePermissions { .. })
    ));
}

#[test]
fn reserved_encodings_are_decode_errors() {
    // ARMv6 L1 type 11 (ARMv5's fine table).
    assert_eq!(
        L1Descriptor::decode(0x0030_1013, V6),
        Err(DescriptorError::Reserved {
            raw: 0x0030_1013,
            arch: V6
        })
    );
    assert!(matches!(
        L1Descriptor::decode(0x0030_1013, V5),
        Ok(L1Descriptor::Fine { .. })
    ));
    // ARMv5 L2 type 11 (tiny page), which vacmm never writes.
    assert_eq!(
        L2Descriptor::decode(0x0000_1ff3, V5),
        Err(DescriptorError::Reserved {
            raw: 0x0000_1ff3,
            arch: V5
        })
    );
    // ARMv6 supersection with physical address bits [35:32] (bits [23:20]).
    let raw = 0x0100_0000 | 0x0010_0000 | 1 << 18 | 0x40e;
    assert_eq!(
        L1Descriptor::decode(raw, V6),
        Err(DescriptorError::Reserved { raw, arch: V6 })
    );
    // Without them it is a supersection; on ARMv5 bit 18 is part of the base.
    assert!(matches!(
        L1Descriptor::decode(raw & !0x00f0_0000, V6),
        Ok(L1Descriptor::Supersection { .. })
    ));
    assert!(matches!(
        L1Descriptor::decode(raw, V5),
        Ok(L1Descriptor::Section { .. })
    ));
}

#[test]
fn errors_and_architectures_display() {
    let errors = [
        DescriptorError::NotInFormat {
            field: "XN",
            arch: V5,
        },
        DescriptorError::Reserved { raw: 3, arch: V6 },
        DescriptorError::MixedSubpagePermissions { ap: [1, 2, 3, 0] },
    ];
    for e in errors {
        assert!(!std::format!("{e}").is_empty());
    }
    assert_eq!(std::format!("{V5} {V6}"), "ARMv5 ARMv6");
    let te = TableError::OutOfFrames { va: VirtAddr(0) };
    assert!(std::format!("{te}").contains("no free frame"));
}

// ---- table doubles ---------------------------------------------------------

/// One thing the Machine saw, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Write { pa: u32, value: u32 },
    CleanRange { start: u32, len: u64 },
    CleanLine(u32),
    CleanInvalidateLine(u32),
    InvalidateLine(u32),
    CleanAll,
    CleanInvalidateAll,
    InvalidateIcacheLine(u32),
    InvalidateIcacheAll,
    Drain,
    TlbAll,
    TlbPage(u32),
    TlbPageAsid(u32, u8),
    TlbAsid(u8),
    Sync,
    SetUserTable(u32),
    SetContextKey(u8),
}

/// Table memory (words by physical address, reached at `pa + kernel_offset`)
/// whose cache and registers record every call in one log, so the order of
/// writes, cleans and register writes can be checked.
struct Machine {
    words: HashMap<u32, u32>,
    kernel_offset: u32,
    info: CacheInfo,
    log: Vec<Event>,
}

impl Machine {
    fn new(arch: Arch) -> Self {
        Self::with_kernel_offset(arch, 0)
    }

    fn with_kernel_offset(arch: Arch, kernel_offset: u32) -> Self {
        let midr = match arch {
            Arch::Armv5 => 0x4106_9265,
            Arch::Armv6 => 0x4117_b363,
        };
        let g = CacheGeometry::new(16 << 10, 4, 32).unwrap();
        let info = CacheInfo::pipt(MainId::from_raw(midr), g, g);
        assert_eq!(Arch::of(&info), arch);
        Machine {
            words: HashMap::new(),
            kernel_offset,
            info,
            log: Vec::new(),
        }
    }

    fn word(&self, pa: u32) -> u32 {
        self.words.get(&pa).copied().unwrap_or(0)
    }

    fn take_log(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.log)
    }
}

impl TableMemory for Machine {
    type Cache = Machine;

    fn read_word(&mut self, pa: PhysAddr) -> Result<u32, TableError> {
        if !pa.is_aligned(4) {
            return Err(TableError::Memory { pa });
        }
        Ok(self.word(pa.0))
    }

    fn write_word(&mut self, pa: PhysAddr, value: u32) -> Result<(), TableError> {
        if !pa.is_aligned(4) {
            return Err(TableError::Memory { pa });
        }
        self.log.push(Event::Write { pa: pa.0, value });
        self.words.insert(pa.0, value);
        Ok(())
    }

    fn kernel_va(&self, pa: PhysAddr) -> VirtAddr {
        VirtAddr(pa.0 + self.kernel_offset)
    }

    fn cache(&mut self) -> &mut Machine {
        self
    }
}

impl CacheMaintenance for Machine {
    fn info(&self) -> &CacheInfo {
        &self.info
    }
    fn clean_dcache_line(&mut self, va: VirtAddr) {
        self.log.push(Event::CleanLine(va.0));
    }
    fn clean_invalidate_dcache_line(&mut self, va: VirtAddr) {
        self.log.push(Event::CleanInvalidateLine(va.0));
    }
    unsafe fn invalidate_dcache_line(&mut self, va: VirtAddr) {
        self.log.push(Event::InvalidateLine(va.0));
    }
    fn clean_dcache_all(&mut self) {
        self.log.push(Event::CleanAll);
    }
    fn clean_invalidate_dcache_all(&mut self) {
        self.log.push(Event::CleanInvalidateAll);
    }
    fn invalidate_icache_line(&mut self, va: VirtAddr) {
        self.log.push(Event::InvalidateIcacheLine(va.0));
    }
    fn invalidate_icache_all(&mut self) {
        self.log.push(Event::InvalidateIcacheAll);
    }
    fn drain_write_buffer(&mut self) {
        self.log.push(Event::Drain);
    }
    fn invalidate_tlb_all(&mut self) {
        self.log.push(Event::TlbAll);
    }
    fn invalidate_tlb_page(&mut self, va: VirtAddr) {
        self.log.push(Event::TlbPage(va.0));
    }
    fn invalidate_tlb_asid(&mut self, asid: u8) -> Result<(), crate::cache::MaintenanceError> {
        self.log.push(Event::TlbAsid(asid));
        Ok(())
    }
    fn invalidate_tlb_page_asid(
        &mut self,
        va: VirtAddr,
        asid: u8,
    ) -> Result<(), crate::cache::MaintenanceError> {
        self.log.push(Event::TlbPageAsid(va.0, asid));
        Ok(())
    }
    fn synchronize_context(&mut self) {
        self.log.push(Event::Sync);
    }
    // Recorded as one event (the range's own line walk is tested in
    // cache::maintenance), so a clean can be matched to the writes it covers.
    fn clean_dcache_range(&mut self, range: VirtRange) -> RangeOutcome {
        self.log.push(Event::CleanRange {
            start: range.start().0,
            len: range.len(),
        });
        RangeOutcome::Block
    }
}

impl TranslationRegisters for Machine {
    unsafe fn set_user_table(&mut self, table: PhysAddr) {
        self.log.push(Event::SetUserTable(table.0));
    }
    unsafe fn set_context_key(&mut self, key: u8) {
        self.log.push(Event::SetContextKey(key));
    }
}

/// Table frames from a list; records what it handed out and took back.
struct Frames {
    available: VecDeque<PhysAddr>,
    handed_out: Vec<PhysAddr>,
    freed: Vec<PhysAddr>,
}

impl Frames {
    fn new(frames: &[u32]) -> Self {
        Frames {
            available: frames.iter().map(|&f| PhysAddr(f)).collect(),
            handed_out: Vec::new(),
            freed: Vec::new(),
        }
    }

    /// Eight frames from 0x0010_0000.
    fn plenty() -> Self {
        Self::new(&[
            0x0010_0000,
            0x0010_1000,
            0x0010_2000,
            0x0010_3000,
            0x0010_4000,
            0x0010_5000,
            0x0010_6000,
            0x0010_7000,
        ])
    }
}

impl TableFrames for Frames {
    fn allocate_table_frame(&mut self) -> Option<PhysAddr> {
        let frame = self.available.pop_front()?;
        self.handed_out.push(frame);
        Some(frame)
    }

    fn free_table_frame(&mut self, frame: PhysAddr) {
        self.freed.push(frame);
    }
}

/// What [`clean_stats`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CleanStats {
    /// Single descriptor writes.
    descriptor_writes: usize,
    /// Cleans of exactly one descriptor.
    descriptor_cleans: usize,
    /// Words written in runs (new tables zeroed, FCSE windows mirrored),
    /// each run cleaned once.
    zeroed_words: usize,
    /// Cleans of a run.
    zeroing_cleans: usize,
}

/// Checks that every write in `log` is cleaned, at its kernel VA, before
/// anything else happens (another kind of event, or the end of the log):
/// each clean covers exactly the writes since the previous one, either one
/// descriptor (4 bytes at its address) or a contiguous run (zeroes, or an
/// FCSE window's 32 mirrored entries).
fn clean_stats(log: &[Event], kernel_offset: u32) -> CleanStats {
    let mut stats = CleanStats::default();
    let mut pending: Vec<(u32, u32)> = Vec::new();
    for (i, event) in log.iter().enumerate() {
        match *event {
            Event::Write { pa, value } => pending.push((pa, value)),
            Event::CleanRange { start, len } => {
                assert!(
                    !pending.is_empty(),
                    "event {i}: clean with no write before it"
                );
                let first = pending[0].0;
                assert_eq!(start, first + kernel_offset, "event {i}: clean start");
                assert_eq!(
                    len,
                    4 * pending.len() as u64,
                    "event {i}: the clean covers exactly the writes"
                );
                for (k, &(pa, _)) in pending.iter().enumerate() {
                    assert_eq!(pa, first + 4 * k as u32, "event {i}: writes are contiguous");
                }
                if pending.len() == 1 {
                    stats.descriptor_writes += 1;
                    stats.descriptor_cleans += 1;
                } else {
                    stats.zeroed_words += pending.len();
                    stats.zeroing_cleans += 1;
                }
                pending.clear();
            }
            other => assert!(
                pending.is_empty(),
                "event {i}: {other:?} while writes {pending:x?} are not cleaned"
            ),
        }
    }
    assert!(pending.is_empty(), "writes {pending:x?} never cleaned");
    // The counting evidence: one clean per descriptor write.
    assert_eq!(stats.descriptor_cleans, stats.descriptor_writes);
    stats
}

/// `clean_stats` of the log since the last call, which must hold writes only
/// for descriptors (no bulk zeroing) — `n` of them.
fn assert_descriptor_writes_cleaned(m: &mut Machine, n: usize) -> Vec<Event> {
    let log = m.take_log();
    let stats = clean_stats(&log, m.kernel_offset);
    assert_eq!(
        stats,
        CleanStats {
            descriptor_writes: n,
            descriptor_cleans: n,
            ..CleanStats::default()
        },
        "{log:x?}"
    );
    log
}

fn writes(log: &[Event]) -> Vec<(u32, u32)> {
    log.iter()
        .filter_map(|e| match *e {
            Event::Write { pa, value } => Some((pa, value)),
            _ => None,
        })
        .collect()
}

/// The events that are neither table writes nor their cleans.
fn non_table_events(log: &[Event]) -> Vec<Event> {
    log.iter()
        .copied()
        .filter(|e| !matches!(e, Event::Write { .. } | Event::CleanRange { .. }))
        .collect()
}

const L1: u32 = 0x0001_0000;

fn l1_entry(l1: u32, va: u32) -> u32 {
    l1 + (va >> 20) * 4
}

/// A machine, frames and an empty table at [`L1`], log cleared.
fn setup(arch: Arch) -> (Machine, Frames, PageTable) {
    let mut m = Machine::new(arch);
    let table = PageTable::new(&mut m, PhysAddr(L1), arch).unwrap();
    m.take_log();
    (m, Frames::plenty(), table)
}

/// User data valid on `arch` (no XN request ARMv5 would refuse).
fn user_attrs() -> Attributes {
    Attributes::USER_DATA
}

// ---- table operations ------------------------------------------------------

#[test]
fn new_table_is_zeroed_and_cleaned_in_one_range() {
    for arch in ARCHES {
        let mut m = Machine::with_kernel_offset(arch, 0xc000_0000);
        let table = PageTable::new(&mut m, PhysAddr(0x0000_4000), arch).unwrap();
        assert_eq!((table.l1(), table.arch()), (PhysAddr(0x4000), arch));
        assert_eq!(table.key(), SpaceKey::UNASSIGNED);
        assert_eq!(table.fcse_window(), None);
        assert!(!table.fits_fcse_window());
        let log = m.take_log();
        // The clean is at the kernel VA (offset), not the physical address.
        assert_eq!(
            log.last(),
            Some(&Event::CleanRange {
                start: 0xc000_4000,
                len: 16 * 1024
            })
        );
        let stats = clean_stats(&log, 0xc000_0000);
        assert_eq!(
            stats,
            CleanStats {
                zeroed_words: 4096,
                zeroing_cleans: 1,
                ..CleanStats::default()
            }
        );
    }
}

#[test]
fn misaligned_l1_table_is_refused_without_writing() {
    let mut m = Machine::new(V5);
    assert_eq!(
        PageTable::new(&mut m, PhysAddr(0x0001_2000), V5).unwrap_err(),
        TableError::MisalignedTable {
            table: PhysAddr(0x0001_2000),
            alignment: 16 * 1024
        }
    );
    assert!(m.log.is_empty());
}

#[test]
fn map_translate_protect_unmap_page() {
    for arch in ARCHES {
        let (mut m, mut frames, mut t) = setup(arch);
        let (va, pa) = (0x0040_3000, 0x0080_5000);
        let attrs = user_attrs();
        t.map_page(&mut m, &mut frames, VirtAddr(va), PhysAddr(pa), attrs)
            .unwrap();
        // A new coarse table: its frame zeroed (one run), the L1 entry, the
        // L2 entry — each descriptor cleaned right after its write.
        let log = m.take_log();
        let stats = clean_stats(&log, 0);
        assert_eq!(
            stats,
            CleanStats {
                descriptor_writes: 2,
                descriptor_cleans: 2,
                zeroed_words: 1024,
                zeroing_cleans: 1
            }
        );
        let frame = 0x0010_0000;
        assert_eq!(frames.handed_out, [PhysAddr(frame)]);
        let l1e = l1_entry(L1, va);
        let slot = frame + ((va >> 12) & 0xff) * 4;
        let small = L2Descriptor::Small {
            base: PhysAddr(pa),
            attrs: attrs.to_hw(arch).unwrap(),
        };
        let coarse = L1Descriptor::Coarse {
            table: PhysAddr(frame),
            domain: 0,
        };
        assert_eq!(
            writes(&log)[1024..],
            [
                (l1e, coarse.encode(arch).unwrap()),
                (slot, small.encode(arch).unwrap())
            ]
        );

        let tr = t.translate(&mut m, VirtAddr(va + 0x123)).unwrap();
        assert_eq!(tr.pa, PhysAddr(pa + 0x123));
        assert_eq!(tr.size, PageSize::Small);
        assert_eq!(tr.attributes(arch), Ok(attrs.as_encoded_on(arch)));

        // Protect: one descriptor rewritten in place, cleaned.
        let ro = attrs.with_access(Access::UserRoKernelRw);
        let flush = t.protect_page(&mut m, VirtAddr(va), ro).unwrap();
        assert_descriptor_writes_cleaned(&mut m, 1);
        // ARMv6: the table never had an ASID, but a table made live by
        // `enable_mmu` runs under ASID 0 (tested in detail below); ARMv5
        // has no nG.
        assert_eq!(
            flush.addresses().collect::<Vec<_>>(),
            std::vec![VirtAddr(va)]
        );
        let asid = match arch {
            Arch::Armv5 => None,
            Arch::Armv6 => Some(0),
        };
        assert_eq!(flush.asid(), asid);
        flush.ignore();
        let tr = t.translate(&mut m, VirtAddr(va)).unwrap();
        assert_eq!(tr.attributes(arch), Ok(ro.as_encoded_on(arch)));
        assert_eq!(tr.pa, PhysAddr(pa));

        // Unmap: the slot is a fault again, the coarse table stays.
        let (old, flush) = t.unmap_page(&mut m, VirtAddr(va)).unwrap();
        flush.ignore();
        assert_eq!(old, PhysAddr(pa));
        let log = assert_descriptor_writes_cleaned(&mut m, 1);
        assert_eq!(writes(&log), [(slot, 0)]);
        assert_eq!(
            t.translate(&mut m, VirtAddr(va)),
            Err(TableError::NotMapped { va: VirtAddr(va) })
        );
        assert_eq!(m.word(l1e), coarse.encode(arch).unwrap());

        // Mapping the next page reuses the table: no frame, no zeroing.
        t.map_page(
            &mut m,
            &mut frames,
            VirtAddr(va + 0x1000),
            PhysAddr(pa),
            attrs,
        )
        .unwrap();
        assert_descriptor_writes_cleaned(&mut m, 1);
        assert_eq!(frames.handed_out.len(), 1);
    }
}

#[test]
fn map_translate_protect_unmap_section() {
    for arch in ARCHES {
        let (mut m, _, mut t) = setup(arch);
        let (va, pa) = (0x0100_0000, 0x8000_0000);
        let attrs = Attributes::KERNEL_DATA;
        t.map_section(&mut m, VirtAddr(va), PhysAddr(pa), attrs)
            .unwrap();
        let log = assert_descriptor_writes_cleaned(&mut m, 1);
        let section = |attrs: Attributes| {
            L1Descriptor::Section {
                base: PhysAddr(pa),
                domain: 0,
                attrs: attrs.to_hw(arch).unwrap(),
            }
            .encode(arch)
            .unwrap()
        };
        assert_eq!(writes(&log), [(l1_entry(L1, va), section(attrs))]);
        let tr = t.translate(&mut m, VirtAddr(va + 0x1_2345)).unwrap();
        assert_eq!((tr.pa, tr.size), (PhysAddr(0x8001_2345), PageSize::Section));
        assert_eq!(tr.attributes(arch), Ok(attrs.as_encoded_on(arch)));

        let wt = attrs.with_memory(MemoryType::NormalWriteThrough);
        let flush = t.protect_section(&mut m, VirtAddr(va), wt).unwrap();
        assert_eq!(flush.addresses().collect::<Vec<_>>(), [VirtAddr(va)]);
        assert_eq!(flush.asid(), None);
        flush.ignore();
        let log = assert_descriptor_writes_cleaned(&mut m, 1);
        assert_eq!(writes(&log), [(l1_entry(L1, va), section(wt))]);

        let (base, flush) = t.unmap_section(&mut m, VirtAddr(va)).unwrap();
        assert_eq!(base, PhysAddr(pa));
        assert_eq!(flush.addresses().collect::<Vec<_>>(), [VirtAddr(va)]);
        flush.ignore();
        let log = assert_descriptor_writes_cleaned(&mut m, 1);
        assert_eq!(writes(&log), [(l1_entry(L1, va), 0)]);
        assert_eq!(
            t.translate(&mut m, VirtAddr(va)),
            Err(TableError::NotMapped { va: VirtAddr(va) })
        );
    }
}

#[test]
fn four_coarse_tables_share_one_frame() {
    for arch in ARCHES {
        let (mut m, mut frames, mut t) = setup(arch);
        // MiB 4..8 form one 4 MiB-aligned group; map out of order so the
        // frame's first user is not the group's first entry.
        for mib in [7u32, 4, 6, 5] {
            t.map_page(
                &mut m,
                &mut frames,
                VirtAddr(mib * MIB + 0x2000),
                PhysAddr(0x0100_0000 + mib * 0x1000),
                user_attrs(),
            )
            .unwrap();
        }
        assert_eq!(frames.handed_out, [PhysAddr(0x0010_0000)]);
        let log = m.take_log();
        let stats = clean_stats(&log, 0);
        // One frame zeroed; 4 L1 + 4 L2 descriptors.
        assert_eq!((stats.zeroed_words, stats.descriptor_writes), (1024, 8));
        for mib in 4..8u32 {
            let expect = L1Descriptor::Coarse {
                table: PhysAddr(0x0010_0000 + (mib & 3) * 1024),
                domain: 0,
            };
            assert_eq!(
                L1Descriptor::decode(m.word(l1_entry(L1, mib * MIB)), arch),
                Ok(expect)
            );
            let tr = t.translate(&mut m, VirtAddr(mib * MIB + 0x2000)).unwrap();
            assert_eq!(tr.pa, PhysAddr(0x0100_0000 + mib * 0x1000));
        }
        // MiB 8 starts the next group: a second frame.
        t.map_page(
            &mut m,
            &mut frames,
            VirtAddr(8 * MIB),
            PhysAddr(0x0200_0000),
            user_attrs(),
        )
        .unwrap();
        assert_eq!(
            frames.handed_out,
            [PhysAddr(0x0010_0000), PhysAddr(0x0010_1000)]
        );
        assert_eq!(
            L1Descriptor::decode(m.word(l1_entry(L1, 8 * MIB)), arch),
            Ok(L1Descriptor::Coarse {
                table: PhysAddr(0x0010_1000),
                domain: 0
            })
        );
        // Release gives back exactly the two frames.
        assert_eq!(t.release(&mut m, &mut frames), Ok(PhysAddr(L1)));
        assert_eq!(frames.freed, frames.handed_out);
    }
}

#[test]
fn shared_entries_are_visible_to_both_tables_and_not_freed_by_the_sharer() {
    for arch in ARCHES {
        let mut m = Machine::new(arch);
        let mut frames = Frames::plenty();
        let mut kernel = PageTable::new(&mut m, PhysAddr(0x0001_0000), arch).unwrap();
        let mut user = PageTable::new(&mut m, PhysAddr(0x0001_4000), arch).unwrap();
        kernel
            .map_section(
                &mut m,
                VirtAddr(0xc000_0000),
                PhysAddr(0),
                Attributes::KERNEL_RWX,
            )
            .unwrap();
        kernel
            .map_page(
                &mut m,
                &mut frames,
                VirtAddr(0xc010_0000),
                PhysAddr(0x0030_0000),
                Attributes::KERNEL_DATA,
            )
            .unwrap();
        let kernel_frame = frames.handed_out[0];
        m.take_log();

        let range = VirtRange::new(VirtAddr(0xc000_0000), 2 * u64::from(MIB)).unwrap();
        user.share_entries_from(&mut m, &kernel, range).unwrap();
        let log = assert_descriptor_writes_cleaned(&mut m, 2);
        let kernel_l1 = 0x0001_0000;
        let user_l1 = 0x0001_4000;
        assert_eq!(
            writes(&log),
            [
                (
                    l1_entry(user_l1, 0xc000_0000),
                    m.word(l1_entry(kernel_l1, 0xc000_0000))
                ),
                (
                    l1_entry(user_l1, 0xc010_0000),
                    m.word(l1_entry(kernel_l1, 0xc010_0000))
                ),
            ]
        );
        // A page the kernel maps later in the shared coarse table is
        // visible through the user table.
        kernel
            .map_page(
                &mut m,
                &mut frames,
                VirtAddr(0xc010_1000),
                PhysAddr(0x0030_1000),
                Attributes::KERNEL_DATA,
            )
            .unwrap();
        assert_eq!(
            user.translate(&mut m, VirtAddr(0xc010_1004)).unwrap().pa,
            PhysAddr(0x0030_1004)
        );
        assert_eq!(
            user.translate(&mut m, VirtAddr(0xc008_0000)).unwrap().pa,
            PhysAddr(0x0008_0000)
        );
        // The user's own tables: one in a group of its own, one next to the
        // shared entries (a fresh frame, never the kernel's).
        user.map_page(
            &mut m,
            &mut frames,
            VirtAddr(0x0040_0000),
            PhysAddr(0x0050_0000),
            user_attrs(),
        )
        .unwrap();
        user.map_page(
            &mut m,
            &mut frames,
            VirtAddr(0xc020_0000),
            PhysAddr(0x0050_1000),
            Attributes::KERNEL_DATA,
        )
        .unwrap();
        let user_frames = frames.handed_out[1..].to_vec();
        assert_eq!(user_frames.len(), 2);
        assert!(!user_frames.contains(&kernel_frame));
        assert_eq!(
            L1Descriptor::decode(m.word(l1_entry(user_l1, 0xc020_0000)), arch),
            Ok(L1Descriptor::Coarse {
                table: PhysAddr(user_frames[1].0 + 2 * 1024),
                domain: 0
            })
        );
        clean_stats(&m.take_log(), 0);

        // Releasing the user table frees its own frames only.
        assert_eq!(user.release(&mut m, &mut frames), Ok(PhysAddr(user_l1)));
        assert_eq!(frames.freed, user_frames);
        frames.freed.clear();
        assert_eq!(kernel.release(&mut m, &mut frames), Ok(PhysAddr(kernel_l1)));
        assert_eq!(frames.freed, [kernel_frame]);
    }
}

/// A table's own coarse table beside the entries it shares (the same word
/// of its ownership bits) stays its own: release frees it, and only it.
#[test]
fn sharing_beside_an_own_table_leaves_it_owned() {
    for arch in ARCHES {
        let mut m = Machine::new(arch);
        let mut frames = Frames::plenty();
        let mut kernel = PageTable::new(&mut m, PhysAddr(0x0001_0000), arch).unwrap();
        let mut user = PageTable::new(&mut m, PhysAddr(0x0001_4000), arch).unwrap();
        let attrs = Attributes::KERNEL_DATA;
        kernel
            .map_page(
                &mut m,
                &mut frames,
                VirtAddr(0xc000_0000),
                PhysAddr(0),
                attrs,
            )
            .unwrap();
        user.map_page(
            &mut m,
            &mut frames,
            VirtAddr(0xc030_0000),
            PhysAddr(0),
            attrs,
        )
        .unwrap();
        let own = frames.handed_out[1];
        let range = VirtRange::new(VirtAddr(0xc000_0000), u64::from(MIB)).unwrap();
        user.share_entries_from(&mut m, &kernel, range).unwrap();
        assert_eq!(user.release(&mut m, &mut frames), Ok(PhysAddr(0x0001_4000)));
        assert_eq!(frames.freed, [own], "{arch:?}");
    }
}

#[test]
fn sharing_checks_alignment_and_refuses_mapped_entries() {
    let (mut m, _, kernel) = setup(V5);
    let mut user = PageTable::new(&mut m, PhysAddr(0x0002_0000), V5).unwrap();
    user.map_section(
        &mut m,
        VirtAddr(0xc010_0000),
        PhysAddr(0),
        Attributes::KERNEL_RWX,
    )
    .unwrap();
    m.take_log();
    let range = |start: u32, len: u64| VirtRange::new(VirtAddr(start), len).unwrap();
    assert_eq!(
        user.share_entries_from(&mut m, &kernel, range(0xc000_8000, 1 << 20)),
        Err(TableError::Unaligned {
            what: "range start",
            address: 0xc000_8000,
            alignment: MIB
        })
    );
    assert_eq!(
        user.share_entries_from(&mut m, &kernel, range(0xc000_0000, 0x18_0000)),
        Err(TableError::Unaligned {
            what: "range length",
            address: 0x18_0000,
            alignment: MIB
        })
    );
    // The second MiB is mapped: nothing at all is copied.
    let section = m.word(l1_entry(0x0002_0000, 0xc010_0000));
    assert_eq!(
        user.share_entries_from(&mut m, &kernel, range(0xc000_0000, 2 << 20)),
        Err(TableError::AlreadyMapped {
            va: VirtAddr(0xc010_0000),
            descriptor: section
        })
    );
    assert!(writes(&m.take_log()).is_empty());
}

#[test]
fn unaligned_addresses_are_refused() {
    for arch in ARCHES {
        let (mut m, mut frames, mut t) = setup(arch);
        let unaligned = |what: &'static str, address: u32, alignment: u32| TableError::Unaligned {
            what,
            address,
            alignment,
        };
        let a = user_attrs();
        assert_eq!(
            t.map_page(&mut m, &mut frames, VirtAddr(0x1004), PhysAddr(0x2000), a),
            Err(unaligned("virtual address", 0x1004, 4096))
        );
        assert_eq!(
            t.map_page(&mut m, &mut frames, VirtAddr(0x1000), PhysAddr(0x2010), a),
            Err(unaligned("physical address", 0x2010, 4096))
        );
        assert_eq!(
            t.map_section(&mut m, VirtAddr(0x0010_1000), PhysAddr(0), a),
            Err(unaligned("virtual address", 0x0010_1000, MIB))
        );
        assert_eq!(
            t.map_section(&mut m, VirtAddr(0x0010_0000), PhysAddr(0x8000), a),
            Err(unaligned("physical address", 0x8000, MIB))
        );
        assert_eq!(
            t.unmap_page(&mut m, VirtAddr(0x1800)).map(|(pa, f)| {
                f.ignore();
                pa
            }),
            Err(unaligned("virtual address", 0x1800, 4096))
        );
        assert_eq!(
            t.protect_page(&mut m, VirtAddr(0x1800), a)
                .map(TlbFlush::ignore),
            Err(unaligned("virtual address", 0x1800, 4096))
        );
        assert_eq!(
            t.unmap_section(&mut m, VirtAddr(0x0010_1000))
                .map(|(pa, f)| {
                    f.ignore();
                    pa
                }),
            Err(unaligned("virtual address", 0x0010_1000, MIB))
        );
        assert_eq!(
            t.protect_section(&mut m, VirtAddr(0x0010_1000), a)
                .map(TlbFlush::ignore),
            Err(unaligned("virtual address", 0x0010_1000, MIB))
        );
        assert!(m.log.is_empty());
        assert!(frames.handed_out.is_empty());
    }
}

#[test]
fn already_mapped_is_refused_and_changes_nothing() {
    for arch in ARCHES {
        let (mut m, mut frames, mut t) = setup(arch);
        let a = user_attrs();
        t.map_page(&mut m, &mut frames, VirtAddr(0x5000), PhysAddr(0x9000), a)
            .unwrap();
        t.map_section(&mut m, VirtAddr(0x0100_0000), PhysAddr(0), a)
            .unwrap();
        m.take_log();
        let slot = 0x0010_0000 + 5 * 4;
        let page = m.word(slot);
        assert_eq!(
            t.map_page(&mut m, &mut frames, VirtAddr(0x5000), PhysAddr(0xa000), a),
            Err(TableError::AlreadyMapped {
                va: VirtAddr(0x5000),
                descriptor: page
            })
        );
        let section = m.word(l1_entry(L1, 0x0100_0000));
        assert_eq!(
            t.map_section(&mut m, VirtAddr(0x0100_0000), PhysAddr(MIB), a),
            Err(TableError::AlreadyMapped {
                va: VirtAddr(0x0100_0000),
                descriptor: section
            })
        );
        // A section over a coarse table.
        let coarse = m.word(l1_entry(L1, 0));
        assert_eq!(
            t.map_section(&mut m, VirtAddr(0), PhysAddr(MIB), a),
            Err(TableError::AlreadyMapped {
                va: VirtAddr(0),
                descriptor: coarse
            })
        );
        assert!(writes(&m.take_log()).is_empty());
        assert_eq!(m.word(slot), page);
    }
}

#[test]
fn not_mapped_is_reported_by_every_operation() {
    for arch in ARCHES {
        let (mut m, mut frames, mut t) = setup(arch);
        let a = user_attrs();
        let not_mapped = |va: u32| TableError::NotMapped { va: VirtAddr(va) };
        // Empty L1 entry.
        assert_eq!(
            t.unmap_page(&mut m, VirtAddr(0x3000)).map(|(p, f)| {
                f.ignore();
                p
            }),
            Err(not_mapped(0x3000))
        );
        assert_eq!(
            t.protect_page(&mut m, VirtAddr(0x3000), a)
                .map(TlbFlush::ignore),
            Err(not_mapped(0x3000))
        );
        assert_eq!(
            t.unmap_section(&mut m, VirtAddr(MIB)).map(|(p, f)| {
                f.ignore();
                p
            }),
            Err(not_mapped(MIB))
        );
        assert_eq!(
            t.protect_section(&mut m, VirtAddr(MIB), a)
                .map(TlbFlush::ignore),
            Err(not_mapped(MIB))
        );
        assert_eq!(
            t.translate(&mut m, VirtAddr(0x3000)),
            Err(not_mapped(0x3000))
        );
        // Coarse table present, slot empty.
        t.map_page(&mut m, &mut frames, VirtAddr(0x5000), PhysAddr(0x9000), a)
            .unwrap();
        m.take_log();
        assert_eq!(
            t.unmap_page(&mut m, VirtAddr(0x3000)).map(|(p, f)| {
                f.ignore();
                p
            }),
            Err(not_mapped(0x3000))
        );
        assert_eq!(
            t.protect_page(&mut m, VirtAddr(0x3000), a)
                .map(TlbFlush::ignore),
            Err(not_mapped(0x3000))
        );
        assert_eq!(
            t.translate(&mut m, VirtAddr(0x3000)),
            Err(not_mapped(0x3000))
        );
        assert!(m.log.is_empty());
    }
}

#[test]
fn pages_inside_sections_and_tables_under_sections_are_refused() {
    for arch in ARCHES {
        let (mut m, mut frames, mut t) = setup(arch);
        let a = user_attrs();
        t.map_section(&mut m, VirtAddr(0x0030_0000), PhysAddr(0), a)
            .unwrap();
        t.map_page(&mut m, &mut frames, VirtAddr(0x0040_0000), PhysAddr(0), a)
            .unwrap();
        m.take_log();
        let split = TableError::WouldSplitSection {
            va: VirtAddr(0x0034_5000),
            section: VirtAddr(0x0030_0000),
            size: PageSize::Section,
        };
        assert_eq!(
            t.map_page(
                &mut m,
                &mut frames,
                VirtAddr(0x0034_5000),
                PhysAddr(0x1000),
                a
            ),
            Err(split)
        );
        assert_eq!(
            t.unmap_page(&mut m, VirtAddr(0x0034_5000)).map(|(p, f)| {
                f.ignore();
                p
            }),
            Err(split)
        );
        assert_eq!(
            t.protect_page(&mut m, VirtAddr(0x0034_5000), a)
                .map(TlbFlush::ignore),
            Err(split)
        );
        // Section operations on a coarse table.
        let mismatch = TableError::SizeMismatch {
            va: VirtAddr(0x0040_0000),
            mapped: PageSize::Small,
        };
        assert_eq!(
            t.unmap_section(&mut m, VirtAddr(0x0040_0000))
                .map(|(p, f)| {
                    f.ignore();
                    p
                }),
            Err(mismatch)
        );
        assert_eq!(
            t.protect_section(&mut m, VirtAddr(0x0040_0000), a)
                .map(TlbFlush::ignore),
            Err(mismatch)
        );
        assert!(m.log.is_empty());
        assert_eq!(frames.handed_out.len(), 1);
    }
}

#[test]
fn entries_vacmm_does_not_write_are_read_or_refused() {
    // ARMv6 supersection (16 copies) and large page written by someone else.
    let (mut m, mut frames, mut t) = setup(V6);
    let attrs = Attributes::KERNEL_DATA.to_hw(V6).unwrap();
    let supersection = L1Descriptor::Supersection {
        base: PhysAddr(0x2000_0000),
        attrs,
    }
    .encode(V6)
    .unwrap();
    for i in 0..16 {
        m.words
            .insert(l1_entry(L1, 0x0100_0000) + 4 * i, supersection);
    }
    let tr = t.translate(&mut m, VirtAddr(0x0123_4567)).unwrap();
    assert_eq!(
        (tr.pa, tr.size),
        (PhysAddr(0x2023_4567), PageSize::Supersection)
    );
    let split = |va: u32| TableError::WouldSplitSection {
        va: VirtAddr(va),
        section: VirtAddr(0x0100_0000),
        size: PageSize::Supersection,
    };
    assert_eq!(
        t.map_page(
            &mut m,
            &mut frames,
            VirtAddr(0x0150_0000),
            PhysAddr(0),
            Attributes::KERNEL_DATA
        ),
        Err(split(0x0150_0000))
    );
    assert_eq!(
        t.unmap_section(&mut m, VirtAddr(0x0150_0000))
            .map(|(p, f)| {
                f.ignore();
                p
            }),
        Err(split(0x0150_0000))
    );

    t.map_page(
        &mut m,
        &mut frames,
        VirtAddr(0x0020_0000),
        PhysAddr(0),
        Attributes::KERNEL_DATA,
    )
    .unwrap();
    let large = L2Descriptor::Large {
        base: PhysAddr(0x0300_0000),
        attrs,
    }
    .encode(V6)
    .unwrap();
    let table = 0x0010_0000 + 2 * 1024; // MiB 2 is the group's third entry
    for i in 16..32 {
        m.words.insert(table + 4 * i, large);
    }
    let tr = t.translate(&mut m, VirtAddr(0x0021_5678)).unwrap();
    assert_eq!((tr.pa, tr.size), (PhysAddr(0x0300_5678), PageSize::Large));
    assert_eq!(
        t.unmap_page(&mut m, VirtAddr(0x0021_5000)).map(|(p, f)| {
            f.ignore();
            p
        }),
        Err(TableError::WouldSplitLargePage {
            va: VirtAddr(0x0021_5000)
        })
    );
    assert_eq!(
        t.protect_page(&mut m, VirtAddr(0x0021_5000), Attributes::KERNEL_DATA)
            .map(TlbFlush::ignore),
        Err(TableError::WouldSplitLargePage {
            va: VirtAddr(0x0021_5000)
        })
    );

    // ARMv5 fine table: vacmm neither maps into it nor translates through it.
    let (mut m, mut frames, mut t) = setup(V5);
    let fine = 0x0030_1000 | 1 << 4 | 0b11;
    m.words.insert(l1_entry(L1, 0x0050_0000), fine);
    let foreign = TableError::ForeignEntry {
        va: VirtAddr(0x0050_0000),
        descriptor: fine,
    };
    assert_eq!(t.translate(&mut m, VirtAddr(0x0050_0000)), Err(foreign));
    assert_eq!(
        t.map_page(
            &mut m,
            &mut frames,
            VirtAddr(0x0050_0000),
            PhysAddr(0),
            Attributes::KERNEL_DATA
        ),
        Err(foreign)
    );
    assert!(m.log.is_empty());
}

#[test]
fn running_out_of_frames_writes_nothing() {
    for arch in ARCHES {
        let (mut m, _, mut t) = setup(arch);
        let mut frames = Frames::new(&[]);
        assert_eq!(
            t.map_page(
                &mut m,
                &mut frames,
                VirtAddr(0x0040_0000),
                PhysAddr(0),
                user_attrs()
            ),
            Err(TableError::OutOfFrames {
                va: VirtAddr(0x0040_0000)
            })
        );
        assert!(m.log.is_empty());
        assert_eq!(m.word(l1_entry(L1, 0x0040_0000)), 0);
        // With a frame it works, so nothing half-done was left behind.
        frames.available.push_back(PhysAddr(0x0010_0000));
        t.map_page(
            &mut m,
            &mut frames,
            VirtAddr(0x0040_0000),
            PhysAddr(0),
            user_attrs(),
        )
        .unwrap();
    }
}

#[test]
fn a_misaligned_frame_is_given_back() {
    let (mut m, _, mut t) = setup(V5);
    let mut frames = Frames::new(&[0x0010_0800]);
    assert_eq!(
        t.map_page(
            &mut m,
            &mut frames,
            VirtAddr(0x0040_0000),
            PhysAddr(0),
            user_attrs()
        ),
        Err(TableError::MisalignedTable {
            table: PhysAddr(0x0010_0800),
            alignment: 4096
        })
    );
    assert_eq!(frames.freed, [PhysAddr(0x0010_0800)]);
    assert!(m.log.is_empty());
}

#[test]
fn descriptor_errors_surface_before_anything_is_allocated() {
    let (mut m, mut frames, mut t) = setup(V5);
    let xn = Attributes::KERNEL_DATA.with_execute(Execute::Never);
    let user_ro = Attributes::USER_DATA.with_access(Access::UserRo);
    for attrs in [xn, user_ro] {
        let e = t
            .map_page(
                &mut m,
                &mut frames,
                VirtAddr(0x0040_0000),
                PhysAddr(0),
                attrs,
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                TableError::Descriptor(DescriptorError::NotExpressible { arch: V5, .. })
            ),
            "{e}"
        );
        let e = t
            .map_section(&mut m, VirtAddr(0x0100_0000), PhysAddr(0), attrs)
            .unwrap_err();
        assert!(matches!(e, TableError::Descriptor(_)), "{e}");
    }
    assert!(frames.handed_out.is_empty());
    assert!(m.log.is_empty());
    // The same through protect, on an existing page and section.
    t.map_page(
        &mut m,
        &mut frames,
        VirtAddr(0x5000),
        PhysAddr(0),
        Attributes::KERNEL_DATA,
    )
    .unwrap();
    t.map_section(
        &mut m,
        VirtAddr(0x0100_0000),
        PhysAddr(0),
        Attributes::KERNEL_DATA,
    )
    .unwrap();
    m.take_log();
    assert!(matches!(
        t.protect_page(&mut m, VirtAddr(0x5000), xn)
            .map(TlbFlush::ignore),
        Err(TableError::Descriptor(_))
    ));
    assert!(matches!(
        t.protect_section(&mut m, VirtAddr(0x0100_0000), xn)
            .map(TlbFlush::ignore),
        Err(TableError::Descriptor(_))
    ));
    assert!(m.log.is_empty());
}

// ---- TLB flush tokens ------------------------------------------------------

#[test]
fn global_entries_flush_by_address_without_asid() {
    for arch in ARCHES {
        let (mut m, mut frames, mut t) = setup(arch);
        t.map_page(
            &mut m,
            &mut frames,
            VirtAddr(0xc000_5000),
            PhysAddr(0x5000),
            Attributes::KERNEL_DATA,
        )
        .unwrap();
        m.take_log();
        let (_, flush) = t.unmap_page(&mut m, VirtAddr(0xc000_5000)).unwrap();
        assert_eq!(flush.asid(), None);
        assert_eq!(
            flush.addresses().collect::<Vec<_>>(),
            [VirtAddr(0xc000_5000)]
        );
        m.take_log();
        flush.flush(&mut m).unwrap();
        assert_eq!(m.take_log(), [Event::TlbPage(0xc000_5000), Event::Sync]);
    }
}

#[test]
fn non_global_armv6_entries_flush_with_the_tables_asid() {
    let (mut m, mut frames, mut t) = setup(V6);
    let va = 0x0040_0000;
    t.map_page(
        &mut m,
        &mut frames,
        VirtAddr(va),
        PhysAddr(0x5000),
        user_attrs(),
    )
    .unwrap();
    // No ASID yet: the table can still have run under ASID 0, the one
    // `enable_mmu` sets (it left this entry stale before).
    let flush = t
        .protect_page(
            &mut m,
            VirtAddr(va),
            user_attrs().with_access(Access::UserRo),
        )
        .unwrap();
    assert_eq!(flush.addresses().collect::<Vec<_>>(), [VirtAddr(va)]);
    assert_eq!(flush.asid(), Some(0));
    m.take_log();
    flush.flush(&mut m).unwrap();
    assert_eq!(m.take_log(), [Event::TlbPageAsid(va, 0), Event::Sync]);

    // With an ASID: the token names it, flush uses the by-ASID operation.
    let mut asids = KeyAllocator::asid_range(7, 9).unwrap();
    assert_eq!(asids.activate(&mut t.key), KeyOutcome::Assigned);
    assert_eq!(t.key().value(), Some(7));
    let flush = t.protect_page(&mut m, VirtAddr(va), user_attrs()).unwrap();
    assert_eq!(flush.asid(), Some(7));
    assert_eq!(flush.addresses().collect::<Vec<_>>(), [VirtAddr(va)]);
    m.take_log();
    flush.flush(&mut m).unwrap();
    assert_eq!(m.take_log(), [Event::TlbPageAsid(va, 7), Event::Sync]);

    // The stale entry is the old one: global → nG flushes the global entry
    // by address, nG → global flushes the nG one with the ASID.
    t.map_section(
        &mut m,
        VirtAddr(0x0100_0000),
        PhysAddr(0),
        Attributes::KERNEL_DATA,
    )
    .unwrap();
    let to_ng = Attributes {
        global: false,
        ..Attributes::KERNEL_DATA
    };
    let flush = t
        .protect_section(&mut m, VirtAddr(0x0100_0000), to_ng)
        .unwrap();
    assert_eq!(flush.asid(), None);
    assert_eq!(
        flush.addresses().collect::<Vec<_>>(),
        [VirtAddr(0x0100_0000)]
    );
    flush.ignore();
    let flush = t
        .protect_section(&mut m, VirtAddr(0x0100_0000), Attributes::KERNEL_DATA)
        .unwrap();
    assert_eq!(flush.asid(), Some(7), "the old entry was nG");
    flush.ignore();
    let (_, flush) = t.unmap_section(&mut m, VirtAddr(0x0100_0000)).unwrap();
    assert_eq!(flush.asid(), None);
    flush.ignore();
    let (_, flush) = t.unmap_page(&mut m, VirtAddr(va)).unwrap();
    assert_eq!(flush.asid(), Some(7));
    flush.ignore();
}

#[test]
fn making_a_global_entry_non_global_flushes_it_even_without_an_asid() {
    // The kernel's table is walked (TTBR1, the ASID switch's reserved table)
    // but never given an ASID. Its global entries are in the TLB, so turning
    // one into an nG user page must flush it: the stale entry is the old,
    // global one, whatever the table's key.
    let (mut m, mut frames, mut kernel) = setup(V6);
    let va = 0xc000_5000;
    kernel
        .map_page(
            &mut m,
            &mut frames,
            VirtAddr(va),
            PhysAddr(0x5000),
            Attributes::KERNEL_DATA,
        )
        .unwrap();
    let flush = kernel
        .protect_page(&mut m, VirtAddr(va), Attributes::USER_DATA)
        .unwrap();
    assert_eq!(flush.addresses().collect::<Vec<_>>(), [VirtAddr(va)]);
    assert_eq!(flush.asid(), None);
    m.take_log();
    flush.flush(&mut m).unwrap();
    assert_eq!(m.take_log(), [Event::TlbPage(va), Event::Sync]);
    // The same for a section.
    kernel
        .map_section(
            &mut m,
            VirtAddr(0xc100_0000),
            PhysAddr(0),
            Attributes::KERNEL_DATA,
        )
        .unwrap();
    let flush = kernel
        .protect_section(&mut m, VirtAddr(0xc100_0000), Attributes::USER_DATA)
        .unwrap();
    assert_eq!(
        flush.addresses().collect::<Vec<_>>(),
        [VirtAddr(0xc100_0000)]
    );
    flush.ignore();
    // Back to global: the table was never given an ASID, but `enable_mmu`
    // runs the kernel's table with CONTEXTIDR = 0, so the nG entry may have
    // been loaded under ASID 0: flush that (it was left alone before).
    let flush = kernel
        .protect_page(&mut m, VirtAddr(va), Attributes::KERNEL_DATA)
        .unwrap();
    assert_eq!(flush.addresses().collect::<Vec<_>>(), [VirtAddr(va)]);
    assert_eq!(flush.asid(), Some(0));
    m.take_log();
    flush.flush(&mut m).unwrap();
    assert_eq!(m.take_log(), [Event::TlbPageAsid(va, 0), Event::Sync]);
}

#[test]
fn armv5_ignores_global_and_flushes_by_address() {
    let (mut m, mut frames, mut t) = setup(V5);
    let mut pids = KeyAllocator::fcse_pids(1, 4).unwrap();
    assert_eq!(pids.activate(&mut t.key), KeyOutcome::Assigned);
    t.map_page(
        &mut m,
        &mut frames,
        VirtAddr(0x0200_0000),
        PhysAddr(0),
        user_attrs(),
    )
    .unwrap();
    let (_, flush) = t.unmap_page(&mut m, VirtAddr(0x0200_0000)).unwrap();
    assert_eq!(flush.asid(), None);
    m.take_log();
    flush.flush(&mut m).unwrap();
    assert_eq!(m.take_log(), [Event::TlbPage(0x0200_0000), Event::Sync]);
}

/// The window covers 0–32 MiB and no more: under a PID, a page at exactly
/// 32 MiB is entered in the canonical slot 32 (the walker reads it there:
/// FCSE leaves it unrelocated), not in the next PID's window, and its TLB
/// flush names its own address.
#[test]
fn fcse_window_ends_at_32_mib() {
    for arch in [V5, V6] {
        let (mut m, mut frames, mut t) = setup(arch);
        t.set_fcse_window(&mut m, Some(3)).unwrap();
        let l1 = t.l1().as_u32();
        let va = VirtAddr(FCSE_WINDOW_BYTES);
        t.map_page(&mut m, &mut frames, va, PhysAddr(0x7000), user_attrs())
            .unwrap();
        assert_ne!(m.word(l1 + 32 * 4), 0, "{arch:?}: canonical slot 32");
        assert_eq!(m.word(l1 + (4 * 32) * 4), 0, "{arch:?}: PID 4's window");
        assert_eq!(t.translate(&mut m, va).unwrap().pa, PhysAddr(0x7000));
        let (_, flush) = t.unmap_page(&mut m, va).unwrap();
        assert_eq!(flush.addresses().collect::<Vec<_>>(), [va], "{arch:?}");
        flush.ignore();
    }
}

/// A coarse table made while the table holds a PID (on ARMv5 its L1 entry
/// exists only at the window) is the table's own: release frees it, and a
/// table sharing the range from it sees the live entry, not the canonical
/// slot.
#[test]
fn a_coarse_table_made_under_a_pid_is_released_and_shared() {
    let mut m = Machine::new(V5);
    let mut frames = Frames::plenty();
    let mut t = PageTable::new(&mut m, PhysAddr(0x0001_0000), V5).unwrap();
    t.set_fcse_window(&mut m, Some(2)).unwrap();
    t.map_page(
        &mut m,
        &mut frames,
        VirtAddr(0x0030_0000),
        PhysAddr(0x7000),
        user_attrs(),
    )
    .unwrap();
    let own = frames.handed_out[0];
    let mut other = PageTable::new(&mut m, PhysAddr(0x0001_4000), V5).unwrap();
    let range = VirtRange::new(VirtAddr(0x0030_0000), u64::from(MIB)).unwrap();
    other.share_entries_from(&mut m, &t, range).unwrap();
    assert_eq!(
        other.translate(&mut m, VirtAddr(0x0030_0004)).unwrap().pa,
        PhysAddr(0x7004)
    );
    assert_eq!(
        other.release(&mut m, &mut frames),
        Ok(PhysAddr(0x0001_4000))
    );
    assert_eq!(frames.freed, [], "the sharer frees nothing");
    assert_eq!(t.release(&mut m, &mut frames), Ok(PhysAddr(0x0001_0000)));
    assert_eq!(frames.freed, [own]);
}

/// Under a PID only the modified address can be in the TLB (every ARMv5
/// switch flushes the untagged TLB, and the PID relocates every access
/// below 32 MiB), so only it is flushed.
#[test]
fn fcse_mirrored_entries_flush_the_modified_address() {
    let (mut m, mut frames, mut t) = setup(V5);
    t.map_page(
        &mut m,
        &mut frames,
        VirtAddr(0x0010_3000),
        PhysAddr(0x7000),
        user_attrs(),
    )
    .unwrap();
    t.map_page(
        &mut m,
        &mut frames,
        VirtAddr(0x0300_0000),
        PhysAddr(0x8000),
        user_attrs(),
    )
    .unwrap();
    t.set_fcse_window(&mut m, Some(3)).unwrap();
    let mirror = 3 * FCSE_WINDOW_BYTES + 0x0010_3000;
    let (_, flush) = t.unmap_page(&mut m, VirtAddr(0x0010_3000)).unwrap();
    assert_eq!(flush.addresses().collect::<Vec<_>>(), [VirtAddr(mirror)]);
    m.take_log();
    flush.flush(&mut m).unwrap();
    assert_eq!(m.take_log(), [Event::TlbPage(mirror), Event::Sync]);
    // Above 32 MiB there is no mirror.
    let (_, flush) = t.unmap_page(&mut m, VirtAddr(0x0300_0000)).unwrap();
    assert_eq!(
        flush.addresses().collect::<Vec<_>>(),
        [VirtAddr(0x0300_0000)]
    );
    flush.ignore();
}

// ---- keys ------------------------------------------------------------------

/// A PID outside 1..=127 (a key from an ASID allocator, say) put the
/// window past the L1 table's 4096 entries and overflowed `modified_va`.
#[test]
fn fcse_windows_outside_the_pid_range_are_refused() {
    let (mut m, _, mut t) = setup(V5);
    for pid in [0, 128, 255] {
        assert_eq!(
            t.set_fcse_window(&mut m, Some(pid)),
            Err(TableError::PidOutOfRange { pid })
        );
    }
    assert_eq!(t.fcse_window(), None);
    assert!(m.take_log().is_empty(), "nothing written");
    t.set_fcse_window(&mut m, Some(127)).unwrap();
    assert_eq!(
        t.modified_va(VirtAddr(FCSE_WINDOW_BYTES - 1)),
        VirtAddr(u32::MAX)
    );
}

/// `l1 + index × 4` overflowed for a table address near the top; the
/// walker needs a 16 KiB-aligned table anyway.
#[test]
fn walks_of_a_misaligned_l1_are_refused() {
    for l1 in [0xffff_fff0, 0x4004] {
        let mut reads = 0;
        let mut read = |_: PhysAddr| -> Result<u32, TableError> {
            reads += 1;
            Ok(0)
        };
        assert_eq!(
            walk(&mut read, PhysAddr(l1), V6, VirtAddr(0xffff_f000)),
            Err(TableError::MisalignedTable {
                table: PhysAddr(l1),
                alignment: 16 << 10
            })
        );
        assert_eq!(reads, 0);
    }
    // The highest aligned table reads its last word at 0xffff_fffc.
    let mut read = |pa: PhysAddr| -> Result<u32, TableError> {
        assert_eq!(pa, PhysAddr(0xffff_fffc));
        Ok(0)
    };
    assert_eq!(
        walk(&mut read, PhysAddr(0xffff_c000), V6, VirtAddr(0xfff0_0000)),
        Err(TableError::NotMapped {
            va: VirtAddr(0xfff0_0000)
        })
    );
}

#[test]
fn bad_key_ranges_are_refused() {
    let bad = |first, last, max| Err(KeyError::BadRange { first, last, max });
    assert_eq!(KeyAllocator::asid_range(0, 5).map(|_| ()), bad(0, 5, 255));
    assert_eq!(KeyAllocator::asid_range(3, 3).map(|_| ()), bad(3, 3, 255));
    assert_eq!(KeyAllocator::asid_range(9, 3).map(|_| ()), bad(9, 3, 255));
    assert_eq!(KeyAllocator::fcse_pids(0, 10).map(|_| ()), bad(0, 10, 127));
    assert_eq!(KeyAllocator::fcse_pids(5, 5).map(|_| ()), bad(5, 5, 127));
    assert_eq!(
        KeyAllocator::fcse_pids(1, 128).map(|_| ()),
        bad(1, 128, 127)
    );
    assert!(KeyAllocator::fcse_pids(1, 127).is_ok());
    assert!(KeyAllocator::asid_range(1, 255).is_ok());
    assert!(KeyAllocator::asid_range(1, 2).is_ok());
    let all = KeyAllocator::asids();
    assert_eq!((all.generation(), all.rollovers()), (1, 0));
    assert!(
        !std::format!(
            "{}",
            KeyError::BadRange {
                first: 0,
                last: 1,
                max: 2
            }
        )
        .is_empty()
    );
    assert_eq!(SpaceKey::UNASSIGNED.value(), None);
    assert_eq!(SpaceKey::UNASSIGNED.generation(), 0);
    assert!(!all.is_current(SpaceKey::UNASSIGNED));
}

#[test]
fn values_are_handed_out_once_per_generation() {
    let mut keys = KeyAllocator::asid_range(1, 3).unwrap();
    let mut k = [SpaceKey::UNASSIGNED; 3];
    for (i, key) in k.iter_mut().enumerate() {
        assert_eq!(keys.activate(key), KeyOutcome::Assigned);
        assert_eq!(key.value(), Some(i as u8 + 1));
        assert_eq!(key.generation(), 1);
    }
    // Activating again keeps the value.
    for key in &mut k {
        let before = *key;
        assert_eq!(keys.activate(key), KeyOutcome::Kept);
        assert_eq!(*key, before);
    }
    assert_eq!(keys.rollovers(), 0);
}

#[test]
fn rollover_keeps_the_running_key_for_its_owner_until_the_next_one() {
    let mut keys = KeyAllocator::asid_range(1, 3).unwrap();
    let [mut a, mut b, mut c, mut d, mut e, mut f] = [SpaceKey::UNASSIGNED; 6];
    for key in [&mut a, &mut b, &mut c] {
        assert_eq!(keys.activate(key), KeyOutcome::Assigned);
    }
    // C (value 3) is running when D needs a value: a new generation, and 3
    // stays C's.
    assert_eq!(keys.activate(&mut d), KeyOutcome::RolledOver);
    assert_eq!((keys.generation(), keys.rollovers()), (2, 1));
    assert_eq!(d.value(), Some(1));
    assert!(!keys.is_current(a) && !keys.is_current(b) && !keys.is_current(c));
    assert_eq!(keys.activate(&mut c), KeyOutcome::Kept);
    assert_eq!(c.value(), Some(3));
    assert!(keys.is_current(c));
    assert_eq!(keys.activate(&mut e), KeyOutcome::Assigned);
    assert_eq!(e.value(), Some(2));
    // 3 is C's in this generation: F does not get it, the values are out.
    assert_eq!(keys.activate(&mut f), KeyOutcome::RolledOver);
    assert_eq!(keys.generation(), 3);
    assert_ne!(f.value(), Some(2), "2 is E's (running at the rollover)");
    assert_eq!(f.value(), Some(1));
    // The reservation moved to E: E keeps 2, C (no longer reserved) gets a
    // fresh value.
    assert_eq!(keys.activate(&mut e), KeyOutcome::Kept);
    assert_eq!(e.value(), Some(2));
    assert_eq!(keys.activate(&mut c), KeyOutcome::Assigned);
    assert_eq!(c.value(), Some(3));
    assert_eq!(keys.activate(&mut a), KeyOutcome::RolledOver);
}

#[test]
fn the_reserved_value_is_skipped_even_if_its_owner_never_returns() {
    let mut keys = KeyAllocator::fcse_pids(1, 2).unwrap();
    let [mut a, mut b, mut c, mut d] = [SpaceKey::UNASSIGNED; 4];
    keys.activate(&mut a);
    keys.activate(&mut b); // running, value 2
    assert_eq!(keys.activate(&mut c), KeyOutcome::RolledOver);
    assert_eq!(c.value(), Some(1));
    // 2 is B's; D cannot have it in this generation.
    assert_eq!(keys.activate(&mut d), KeyOutcome::RolledOver);
    assert_eq!(
        d.value(),
        Some(2),
        "C was running: 1 reserved, 2 free again"
    );
    assert!(!keys.is_current(b));
    // A deactivated running space reserves nothing.
    keys.deactivate();
    let [mut e, mut f] = [SpaceKey::UNASSIGNED; 2];
    assert_eq!(keys.activate(&mut e), KeyOutcome::RolledOver);
    keys.deactivate();
    assert_eq!(keys.activate(&mut f), KeyOutcome::Assigned);
    assert_ne!(e.value(), f.value());
}

#[test]
fn random_switches_never_give_two_live_keys_one_value() {
    for (seed, (first, last), spaces) in [
        (1u32, (1u8, 2u8), 3usize),
        (2, (1, 3), 5),
        (0xdead_beef, (5, 9), 8),
        (42, (1, 3), 4),
        (7, (100, 127), 40),
    ] {
        let mut rng = crate::xorshift::XorShift(seed);
        let mut keys = KeyAllocator::fcse_pids(first, last).unwrap();
        let mut owned = std::vec![SpaceKey::UNASSIGNED; spaces];
        let mut running: Option<usize> = None;
        // The model: who holds the reserved value, and the values handed out
        // (or reserved) in the current generation.
        let mut reserved: Option<usize> = None;
        let mut used: HashSet<u8> = HashSet::new();
        for step in 0..5000 {
            if rng.below(10) == 0 {
                keys.deactivate();
                running = None;
                continue;
            }
            let i = rng.below(spaces as u32) as usize;
            let before = owned[i];
            let generation = keys.generation();
            let was_current = keys.is_current(before);
            let reserved_for_me = reserved == Some(i) && before.generation() + 1 == generation;
            let outcome = keys.activate(&mut owned[i]);
            let after = owned[i];
            let ctx = std::format!("seed {seed} step {step} space {i}: {before:?} → {after:?}");
            match outcome {
                KeyOutcome::Kept => {
                    assert!(was_current || reserved_for_me, "{ctx}");
                    assert_eq!(after.value(), before.value(), "{ctx}");
                }
                KeyOutcome::Assigned => {
                    assert!(!was_current && !reserved_for_me, "{ctx}");
                    assert_eq!(keys.generation(), generation, "{ctx}");
                    assert!(used.insert(after.value().unwrap()), "{ctx}: reused");
                }
                KeyOutcome::RolledOver => {
                    assert!(!was_current && !reserved_for_me, "{ctx}");
                    assert_eq!(keys.generation(), generation + 1, "{ctx}");
                    // The space running at the rollover keeps its value.
                    reserved = running;
                    used.clear();
                    if let Some(r) = reserved {
                        used.insert(owned[r].value().unwrap());
                    }
                    assert!(used.insert(after.value().unwrap()), "{ctx}: reused");
                }
            }
            assert!(keys.is_current(after), "{ctx}");
            let v = after.value().unwrap();
            assert!((first..=last).contains(&v), "{ctx}");
            running = Some(i);

            // No two keys that are live (current, or reserved for their
            // owner) share a value.
            let mut live = HashMap::new();
            for (j, key) in owned.iter().enumerate() {
                let reserved_live =
                    reserved == Some(j) && key.generation() + 1 == keys.generation();
                if keys.is_current(*key) || reserved_live {
                    let v = key.value().unwrap();
                    if let Some(other) = live.insert(v, j) {
                        panic!("{ctx}: spaces {other} and {j} both hold {v}");
                    }
                }
            }
        }
        assert!(keys.rollovers() > 0, "seed {seed}: the test must roll over");
    }
}

// ---- context switch --------------------------------------------------------

/// `n` empty tables of `arch` in one machine, 16 KiB apart from 0x0001_0000.
fn tables(m: &mut Machine, arch: Arch, n: u32) -> Vec<PageTable> {
    let tables = (0..n)
        .map(|i| PageTable::new(m, PhysAddr(0x0001_0000 + i * 0x4000), arch).unwrap())
        .collect();
    m.take_log();
    tables
}

fn switch(s: &mut ContextSwitcher, m: &mut Machine, t: &mut PageTable) -> SwitchReport {
    // SAFETY: the Machine is a recording double; nothing runs on it.
    unsafe { s.switch_to(m, t) }.unwrap()
}

const FLUSH: [Event; 3] = [
    Event::CleanInvalidateAll,
    Event::InvalidateIcacheAll,
    Event::Drain,
];

#[test]
fn vivt_flush_flushes_everything_at_every_switch() {
    let mut m = Machine::new(V5);
    let mut t = tables(&mut m, V5, 2);
    let mut s = ContextSwitcher::vivt_flush();
    assert_eq!(s.policy(), SwitchPolicy::VivtFlush);
    assert!(s.keys().is_none());
    for (i, table) in t.iter_mut().enumerate() {
        let report = switch(&mut s, &mut m, table);
        assert_eq!(
            report,
            SwitchReport {
                cache_flushed: true,
                tlb_flushed: true,
                ..SwitchReport::default()
            }
        );
        let l1 = 0x0001_0000 + i as u32 * 0x4000;
        let mut expect = FLUSH.to_vec();
        expect.extend([
            Event::SetContextKey(0),
            Event::SetUserTable(l1),
            Event::TlbAll,
            Event::Sync,
        ]);
        assert_eq!(m.take_log(), expect);
    }
    // To the running table: nothing at all.
    let report = switch(&mut s, &mut m, &mut t[1]);
    assert_eq!(
        report,
        SwitchReport {
            already_current: true,
            ..SwitchReport::default()
        }
    );
    assert!(m.take_log().is_empty());
    assert_eq!(
        s.counters(),
        SwitchCounters {
            switches: 3,
            already_current: 1,
            cache_flushes: 2,
            tlb_flushes: 2,
            rollovers: 0
        }
    );
}

/// The register sequence of an ARMv5 switch (after any cache flush).
fn vivt_registers(l1: u32, pid: Option<u8>) -> Vec<Event> {
    let mut events = std::vec![
        Event::SetContextKey(0),
        Event::SetUserTable(l1),
        Event::TlbAll
    ];
    events.extend(pid.map(Event::SetContextKey));
    events.push(Event::Sync);
    events
}

fn with_flush(events: Vec<Event>) -> Vec<Event> {
    FLUSH.iter().copied().chain(events).collect()
}

#[test]
fn fcse_switches_between_keyed_spaces_without_flushing_the_cache() {
    let mut m = Machine::new(V5);
    let mut t = tables(&mut m, V5, 3);
    for table in &mut t {
        table.set_fits_fcse_window(true);
    }
    let l1 = |i: u32| 0x0001_0000 + i * 0x4000;
    let mut s = ContextSwitcher::vivt_fcse(KeyAllocator::fcse_pids(1, 3).unwrap());
    assert_eq!(s.policy(), SwitchPolicy::VivtFcse);

    // First switch: what ran before is unknown, so the cache is flushed.
    let report = switch(&mut s, &mut m, &mut t[0]);
    assert_eq!(
        report,
        SwitchReport {
            cache_flushed: true,
            tlb_flushed: true,
            key: Some(1),
            key_outcome: Some(KeyOutcome::Assigned),
            already_current: false
        }
    );
    let log = m.take_log();
    clean_stats(&log, 0); // the mirror writes are cleaned
    assert_eq!(
        non_table_events(&log),
        with_flush(vivt_registers(l1(0), Some(1)))
    );
    assert_eq!(t[0].fcse_window(), Some(1));

    // Keyed → keyed: TLB only (the ARM926 TLB has no tags); PID 0 before
    // TTBR0, the new PID after.
    let report = switch(&mut s, &mut m, &mut t[1]);
    assert_eq!(
        (report.cache_flushed, report.tlb_flushed, report.key),
        (false, true, Some(2))
    );
    let log = m.take_log();
    clean_stats(&log, 0);
    assert_eq!(non_table_events(&log), vivt_registers(l1(1), Some(2)));

    let report = switch(&mut s, &mut m, &mut t[0]);
    assert_eq!(report.key_outcome, Some(KeyOutcome::Kept));
    assert!(!report.cache_flushed);
    // The window is already in place: no table writes at all.
    assert_eq!(m.take_log(), vivt_registers(l1(0), Some(1)));

    // A space that does not fit: flushed in, and flushed out again.
    t[2].set_fits_fcse_window(false);
    let report = switch(&mut s, &mut m, &mut t[2]);
    assert_eq!(
        report,
        SwitchReport {
            cache_flushed: true,
            tlb_flushed: true,
            ..SwitchReport::default()
        }
    );
    assert_eq!(
        non_table_events(&m.take_log()),
        with_flush(vivt_registers(l1(2), None))
    );
    assert_eq!(t[2].fcse_window(), None);
    let report = switch(&mut s, &mut m, &mut t[1]);
    assert!(report.cache_flushed);
    assert_eq!(report.key, Some(2));
    assert_eq!(
        non_table_events(&m.take_log()),
        with_flush(vivt_registers(l1(1), Some(2)))
    );
    let c = s.counters();
    assert_eq!((c.switches, c.cache_flushes, c.tlb_flushes), (5, 3, 5));
}

#[test]
fn fcse_pid_rollover_flushes_the_cache() {
    let mut m = Machine::new(V5);
    let mut t = tables(&mut m, V5, 3);
    for table in &mut t {
        table.set_fits_fcse_window(true);
    }
    let mut s = ContextSwitcher::vivt_fcse(KeyAllocator::fcse_pids(1, 2).unwrap());
    switch(&mut s, &mut m, &mut t[0]);
    let report = switch(&mut s, &mut m, &mut t[1]);
    assert!(!report.cache_flushed);
    m.take_log();
    // A third space: the PIDs ran out. The running one (2) keeps its PID.
    let report = switch(&mut s, &mut m, &mut t[2]);
    assert_eq!(
        report,
        SwitchReport {
            cache_flushed: true,
            tlb_flushed: true,
            key: Some(1),
            key_outcome: Some(KeyOutcome::RolledOver),
            already_current: false
        }
    );
    assert_eq!(
        non_table_events(&m.take_log()),
        with_flush(vivt_registers(0x0001_8000, Some(1)))
    );
    assert_eq!(s.counters().rollovers, 1);
    assert_eq!(s.keys().unwrap().generation(), 2);
    // Back to the reserved owner: kept, no flush.
    let report = switch(&mut s, &mut m, &mut t[1]);
    assert_eq!(
        (report.key, report.key_outcome, report.cache_flushed),
        (Some(2), Some(KeyOutcome::Kept), false)
    );
}

/// The FCSE moves addresses below 32 MiB into the PID's window, and no
/// others (ARM926EJ-S TRM, "Fast Context Switch Extension").
#[test]
fn fcse_relocates_only_the_low_32_mib() {
    let below = VirtAddr(FCSE_WINDOW_BYTES - 4);
    let at = VirtAddr(FCSE_WINDOW_BYTES);
    assert_eq!(
        fcse_modified_va(Some(3), below),
        VirtAddr(3 * FCSE_WINDOW_BYTES + FCSE_WINDOW_BYTES - 4)
    );
    assert_eq!(
        fcse_modified_va(Some(3), VirtAddr(0)),
        VirtAddr(0x0600_0000)
    );
    assert_eq!(fcse_modified_va(Some(3), at), at);
    assert_eq!(
        fcse_modified_va(Some(3), VirtAddr(0xc000_0000)),
        VirtAddr(0xc000_0000)
    );
    assert_eq!(fcse_modified_va(None, below), below);
}

#[test]
fn fcse_window_holds_the_low_32_mib_while_the_pid_lasts() {
    let mut m = Machine::new(V5);
    let mut frames = Frames::plenty();
    let mut t = tables(&mut m, V5, 2);
    let l1 = 0x0001_0000;
    let a = user_attrs();
    t[0].map_page(&mut m, &mut frames, VirtAddr(0x8000), PhysAddr(0x8000), a)
        .unwrap();
    t[0].map_section(&mut m, VirtAddr(0x0010_0000), PhysAddr(0), a)
        .unwrap();
    t[0].map_page(&mut m, &mut frames, VirtAddr(0x01f0_0000), PhysAddr(0), a)
        .unwrap();
    for table in &mut t {
        table.set_fits_fcse_window(true);
    }
    let mut s = ContextSwitcher::vivt_fcse(KeyAllocator::fcse_pids(1, 2).unwrap());
    m.take_log();
    let pid = switch(&mut s, &mut m, &mut t[0]).key.unwrap();
    let window = |pid: u8, i: u32| l1 + (u32::from(pid) * 32 + i) * 4;
    let log = m.take_log();
    // 32 entries copied to the window, cleaned as one run.
    let stats = clean_stats(&log, 0);
    assert_eq!((stats.zeroed_words, stats.zeroing_cleans), (32, 1));
    for i in 0..32 {
        assert_eq!(m.word(window(pid, i)), m.word(l1 + i * 4), "entry {i}");
    }
    assert_ne!(m.word(window(pid, 0)), 0);

    // A new coarse table below 32 MiB is written where the walker reads it,
    // the window, and only there (the canonical slot waits for the PID to
    // go: one descriptor write, as without FCSE).
    t[0].map_page(&mut m, &mut frames, VirtAddr(0x0120_0000), PhysAddr(0), a)
        .unwrap();
    let log = m.take_log();
    let live = m.word(window(pid, 18));
    assert!(matches!(
        L1Descriptor::decode(live, V5),
        Ok(L1Descriptor::Coarse { .. })
    ));
    assert_eq!(m.word(l1 + 18 * 4), 0);
    assert!(writes(&log).contains(&(window(pid, 18), live)));
    assert!(!writes(&log).iter().any(|&(pa, _)| pa == l1 + 18 * 4));
    clean_stats(&log, 0);
    // The table reads it back from there.
    t[0].translate(&mut m, VirtAddr(0x0120_0000)).unwrap();
    // So is an unmapped section: one write, cleaned.
    let (_, flush) = t[0].unmap_section(&mut m, VirtAddr(0x0010_0000)).unwrap();
    flush.ignore();
    assert_eq!(m.word(window(pid, 1)), 0);
    assert_eq!(assert_descriptor_writes_cleaned(&mut m, 1).len(), 2);
    let entries: Vec<u32> = (0..32).map(|i| m.word(window(pid, i))).collect();

    // Above 32 MiB nothing is mirrored (128 MiB: outside the windows of
    // PIDs 1 and 2).
    t[0].map_section(&mut m, VirtAddr(0x0800_0000), PhysAddr(0), a)
        .unwrap();
    assert_descriptor_writes_cleaned(&mut m, 1);

    // A new PID moves the mirror and clears the old window. t[1] takes
    // PID 2; a third space rolls over (2 stays t[1]'s, it gets 1); t[0]
    // then rolls over again (1 is now the third's) and gets 2.
    assert_eq!(switch(&mut s, &mut m, &mut t[1]).key, Some(2));
    let mut third = PageTable::new(&mut m, PhysAddr(0x0002_0000), V5).unwrap();
    third.set_fits_fcse_window(true);
    assert_eq!(switch(&mut s, &mut m, &mut third).key, Some(1));
    m.take_log();
    let report = switch(&mut s, &mut m, &mut t[0]);
    let new_pid = report.key.unwrap();
    assert_ne!(new_pid, pid);
    for i in 0..32 {
        assert_eq!(m.word(window(pid, i)), 0, "old window entry {i}");
        assert_eq!(m.word(window(new_pid, i)), entries[i as usize], "entry {i}");
    }
    clean_stats(&m.take_log(), 0);

    // Leaving the PID writes the entries back to the canonical slots, which
    // the walker reads again, and clears the window.
    t[0].set_fcse_window(&mut m, None).unwrap();
    for i in 0..32 {
        assert_eq!(m.word(window(new_pid, i)), 0, "window entry {i}");
        assert_eq!(m.word(l1 + i * 4), entries[i as usize], "entry {i}");
    }
    clean_stats(&m.take_log(), 0);
    t[0].translate(&mut m, VirtAddr(0x0120_0000)).unwrap();
}

#[test]
fn fcse_space_with_a_mapping_in_its_window_runs_unkeyed() {
    let mut m = Machine::new(V5);
    let mut t = tables(&mut m, V5, 1);
    // PID 1's window is 32..64 MiB: mapped here, so the space cannot use it.
    t[0].map_section(&mut m, VirtAddr(0x0200_0000), PhysAddr(0), user_attrs())
        .unwrap();
    t[0].set_fits_fcse_window(true);
    m.take_log();
    let mut s = ContextSwitcher::vivt_fcse(KeyAllocator::fcse_pids(1, 2).unwrap());
    let report = switch(&mut s, &mut m, &mut t[0]);
    assert_eq!(
        (report.cache_flushed, report.key, report.key_outcome),
        (true, None, Some(KeyOutcome::Assigned))
    );
    assert_eq!(t[0].fcse_window(), None);
    assert_eq!(
        non_table_events(&m.take_log()),
        with_flush(vivt_registers(0x0001_0000, None))
    );
}

/// The ARMv6 sequence: reserved table, new ASID, then the incoming table.
fn asid_registers(reserved: u32, asid: u8, l1: u32, rollover: bool) -> Vec<Event> {
    let mut events = std::vec![Event::SetUserTable(reserved), Event::Sync];
    if rollover {
        events.push(Event::TlbAll);
    }
    events.extend([
        Event::SetContextKey(asid),
        Event::Sync,
        Event::SetUserTable(l1),
        Event::Sync,
    ]);
    events
}

#[test]
fn asid_switch_goes_through_the_reserved_table_and_never_touches_the_cache() {
    let mut m = Machine::new(V6);
    let mut t = tables(&mut m, V6, 3);
    let reserved = 0x0003_0000;
    let mut s = ContextSwitcher::asid(KeyAllocator::asid_range(1, 2).unwrap(), PhysAddr(reserved));
    assert_eq!(s.policy(), SwitchPolicy::Asid);
    let l1 = |i: u32| 0x0001_0000 + i * 0x4000;
    for i in 0..2 {
        let report = switch(&mut s, &mut m, &mut t[i as usize]);
        assert_eq!(
            report,
            SwitchReport {
                key: Some(i as u8 + 1),
                key_outcome: Some(KeyOutcome::Assigned),
                ..SwitchReport::default()
            }
        );
        assert_eq!(
            m.take_log(),
            asid_registers(reserved, i as u8 + 1, l1(i), false)
        );
    }
    // The third space rolls the ASIDs over: the only TLB flush.
    let report = switch(&mut s, &mut m, &mut t[2]);
    assert_eq!(
        report,
        SwitchReport {
            tlb_flushed: true,
            key: Some(1),
            key_outcome: Some(KeyOutcome::RolledOver),
            ..SwitchReport::default()
        }
    );
    assert_eq!(m.take_log(), asid_registers(reserved, 1, l1(2), true));
    // The space running at the rollover keeps its ASID.
    let report = switch(&mut s, &mut m, &mut t[1]);
    assert_eq!(
        (report.key, report.key_outcome, report.tlb_flushed),
        (Some(2), Some(KeyOutcome::Kept), false)
    );
    assert_eq!(m.take_log(), asid_registers(reserved, 2, l1(1), false));
    let report = switch(&mut s, &mut m, &mut t[1]);
    assert!(report.already_current);
    assert!(m.take_log().is_empty());
    let c = s.counters();
    assert_eq!(
        c,
        SwitchCounters {
            switches: 5,
            already_current: 1,
            cache_flushes: 0,
            tlb_flushes: 1,
            rollovers: 1
        }
    );
}

#[test]
fn modified_addresses_follow_the_fcse_window() {
    let mut m = Machine::new(V5);
    let mut t = tables(&mut m, V5, 3);
    // No PID: the modified address is the address.
    assert_eq!(t[0].modified_va(VirtAddr(0x1000)), VirtAddr(0x1000));
    t[0].set_fcse_window(&mut m, Some(1)).unwrap();
    t[1].set_fcse_window(&mut m, Some(2)).unwrap();
    // Below 32 MiB: relocated into the PID's window; above: unchanged.
    assert_eq!(
        t[0].modified_va(VirtAddr(0x1000)),
        VirtAddr(FCSE_WINDOW_BYTES + 0x1000)
    );
    assert_eq!(
        t[1].modified_va(VirtAddr(0x01ff_f000)),
        VirtAddr(2 * FCSE_WINDOW_BYTES + 0x01ff_f000)
    );
    assert_eq!(
        t[0].modified_va(VirtAddr(FCSE_WINDOW_BYTES)),
        VirtAddr(FCSE_WINDOW_BYTES)
    );
    // One frame at the same address in two PID-keyed spaces: two VIVT lines.
    let va = VirtAddr(0x0040_0000);
    assert!(vivt_aliases((&t[0], va), (&t[1], va)));
    assert!(!vivt_aliases((&t[0], va), (&t[0], VirtAddr(0x0040_0010))));
    assert!(vivt_aliases((&t[0], va), (&t[0], VirtAddr(0x0040_1000))));
    // A space without a PID at the window's address meets the keyed one.
    assert!(!vivt_aliases(
        (&t[0], va),
        (&t[2], VirtAddr(FCSE_WINDOW_BYTES + 0x0040_0000))
    ));
}

/// A one-key range at the field's top is refused for holding one value,
/// not for overflowing the field (the bound is inclusive).
#[test]
fn a_one_key_range_at_the_top_says_it_holds_one_value() {
    use std::string::ToString;
    let text = crate::mmu::KeyError::BadRange {
        first: 255,
        last: 255,
        max: 255,
    }
    .to_string();
    assert!(text.contains("holds one value"), "{text}");
    assert!(!text.contains("does not fit"), "{text}");
}
