//! Short-descriptor translation table entries, encoded and decoded exactly.
//!
//! ```text
//! L1 (4096 × 4 bytes, one per MiB)          L2 coarse (256 × 4 bytes, one per 4 KiB)
//!  [1:0] 00 fault                            [1:0] 00 fault
//!        01 coarse table ─────────────────▶        01 large page (64 KiB, 16 copies)
//!        10 section (1 MiB) / supersection         1x small page (4 KiB)
//!           (ARMv6, bit 18: 16 MiB, 16 copies)        (ARMv6 XP=1: bit 0 is XN)
//!        11 fine table (ARMv5; reserved on ARMv6)
//! ```
//!
//! Bit positions (ARM926EJ-S TRM §3.2, ARM1136JF-S / ARM1176JZF-S TRM §6.11,
//! ARMv6 with SCTLR.XP = 1; ARMv5 sections and coarse entries have bit 4 set):
//!
//! | entry | ARMv5 | ARMv6 (XP=1) |
//! |---|---|---|
//! | section | base\[31:20\] TEX\[14:12\] AP\[11:10\] dom\[8:5\] 1\[4\] C B | base\[31:20\] nG\[17\] S\[16\] APX\[15\] TEX\[14:12\] AP\[11:10\] dom\[8:5\] XN\[4\] C B |
//! | supersection | – | base\[31:24\] 1\[18\] nG S APX TEX AP XN C B |
//! | coarse | base\[31:10\] dom\[8:5\] 1\[4\] | base\[31:10\] dom\[8:5\] |
//! | large page | base\[31:16\] TEX\[14:12\] AP3..AP0\[11:4\] C B | base\[31:16\] XN\[15\] TEX\[14:12\] nG\[11\] S\[10\] APX\[9\] AP\[5:4\] C B |
//! | small page | base\[31:12\] AP3..AP0\[11:4\] C B | base\[31:12\] nG\[11\] S\[10\] APX\[9\] TEX\[8:6\] AP\[5:4\] C B XN\[0\] |
//!
//! Decoding ignores implementation-defined and "should be zero" bits (ARMv5
//! bit 9, ARMv6 P bit 9 and NS bit 19), so `decode(encode(d)) == d` for every
//! descriptor vacmm can write; a raw value whose ignored bits are set decodes
//! to the descriptor the hardware would see.

use super::{Arch, DescriptorError, HwAttrs};
use crate::addr::PhysAddr;

/// A first-level (L1) descriptor: what one MiB of address space is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L1Descriptor {
    /// Translation fault.
    Fault,
    /// A coarse second-level table (1 KiB, 1 KiB aligned).
    Coarse {
        /// Physical address of the table.
        table: PhysAddr,
        /// Access domain (0–15).
        domain: u8,
    },
    /// A 1 MiB section.
    Section {
        /// Physical base (1 MiB aligned).
        base: PhysAddr,
        /// Access domain (0–15).
        domain: u8,
        /// Attribute bits.
        attrs: HwAttrs,
    },
    /// An ARMv6 16 MiB supersection (one of its 16 identical entries).
    Supersection {
        /// Physical base (16 MiB aligned; 32-bit physical addresses only).
        base: PhysAddr,
        /// Attribute bits (supersections are always in domain 0).
        attrs: HwAttrs,
    },
    /// An ARMv5 fine second-level table (4 KiB); vacmm reads but never
    /// creates these.
    Fine {
        /// Physical address of the table.
        table: PhysAddr,
        /// Access domain (0–15).
        domain: u8,
    },
}

/// A second-level (L2) descriptor from a coarse table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L2Descriptor {
    /// Translation fault.
    Fault,
    /// One of the 16 identical entries of a 64 KiB large page.
    Large {
        /// Physical base (64 KiB aligned).
        base: PhysAddr,
        /// Attribute bits.
        attrs: HwAttrs,
    },
    /// A 4 KiB small page (the ARMv6 extended small page when XP = 1).
    Small {
        /// Physical base (4 KiB aligned).
        base: PhysAddr,
        /// Attribute bits.
        attrs: HwAttrs,
    },
}

const MIB: u32 = 1 << 20;

fn bit(value: bool, at: u32) -> u32 {
    u32::from(value) << at
}

fn is_set(raw: u32, at: u32) -> bool {
    raw >> at & 1 == 1
}

fn field(raw: u32, at: u32, width: u32) -> u8 {
    ((raw >> at) & ((1 << width) - 1)) as u8
}

fn aligned(base: PhysAddr, align: u32, what: &'static str) -> Result<u32, DescriptorError> {
    let raw = base.as_u32();
    if raw.is_multiple_of(align) {
        Ok(raw)
    } else {
        Err(DescriptorError::MisalignedBase {
            what,
            base,
            alignment: align,
        })
    }
}

fn domain_bits(domain: u8) -> Result<u32, DescriptorError> {
    if domain < 16 {
        Ok(u32::from(domain) << 5)
    } else {
        Err(DescriptorError::FieldOutOfRange {
            field: "domain",
            value: u32::from(domain),
            max: 15,
        })
    }
}

/// Checks the fields every format shares and that `arch` has them.
fn check_attrs(attrs: &HwAttrs, arch: Arch, subpages: bool) -> Result<(), DescriptorError> {
    if attrs.tex > 7 {
        return Err(DescriptorError::FieldOutOfRange {
            field: "TEX",
            value: u32::from(attrs.tex),
            max: 7,
        });
    }
    if let Some(&ap) = attrs.ap.iter().find(|&&ap| ap > 3) {
        return Err(DescriptorError::FieldOutOfRange {
            field: "AP",
            value: u32::from(ap),
            max: 3,
        });
    }
    if !(subpages && arch == Arch::Armv5) && attrs.ap.iter().any(|&ap| ap != attrs.ap[0]) {
        return Err(DescriptorError::NotInFormat {
            field: "per-subpage AP",
            arch,
        });
    }
    if arch == Arch::Armv5 {
        for (set, name) in [
            (attrs.apx, "APX"),
            (attrs.xn, "XN"),
            (attrs.not_global, "nG"),
            (attrs.shareable, "S"),
        ] {
            if set {
                return Err(DescriptorError::NotInFormat { field: name, arch });
            }
        }
    }
    Ok(())
}

/// The ARMv6 bits at the section / large-page positions (nG, S, APX at
/// `ng_at`, `ng_at - 1`, `ng_at - 2`).
fn v6_high_bits(attrs: &HwAttrs, ng_at: u32) -> u32 {
    bit(attrs.not_global, ng_at) | bit(attrs.shareable, ng_at - 1) | bit(attrs.apx, ng_at - 2)
}

impl L1Descriptor {
    /// The raw entry on `arch`, or why it cannot be written.
    pub fn encode(self, arch: Arch) -> Result<u32, DescriptorError> {
        let v5_bit4 = bit(arch == Arch::Armv5, 4);
        match self {
            L1Descriptor::Fault => Ok(0),
            L1Descriptor::Coarse { table, domain } => {
                Ok(aligned(table, 1024, "coarse table")? | domain_bits(domain)? | v5_bit4 | 0b01)
            }
            L1Descriptor::Fine { table, domain } => {
                if arch != Arch::Armv5 {
                    return Err(DescriptorError::NotInFormat {
                        field: "fine table",
                        arch,
                    });
                }
                Ok(aligned(table, 4096, "fine table")? | domain_bits(domain)? | v5_bit4 | 0b11)
            }
            L1Descriptor::Section {
                base,
                domain,
                attrs,
            } => {
                check_attrs(&attrs, arch, false)?;
                let common = aligned(base, MIB, "section")?
                    | domain_bits(domain)?
                    | u32::from(attrs.tex) << 12
                    | u32::from(attrs.ap[0]) << 10
                    | bit(attrs.c, 3)
                    | bit(attrs.b, 2)
                    | 0b10;
                Ok(match arch {
                    Arch::Armv5 => common | v5_bit4,
                    Arch::Armv6 => common | v6_high_bits(&attrs, 17) | bit(attrs.xn, 4),
                })
            }
            L1Descriptor::Supersection { base, attrs } => {
                if arch != Arch::Armv6 {
                    return Err(DescriptorError::NotInFormat {
                        field: "supersection",
                        arch,
                    });
                }
                check_attrs(&attrs, arch, false)?;
                Ok(aligned(base, 16 * MIB, "supersection")?
                    | 1 << 18
                    | v6_high_bits(&attrs, 17)
                    | u32::from(attrs.tex) << 12
                    | u32::from(attrs.ap[0]) << 10
                    | bit(attrs.xn, 4)
                    | bit(attrs.c, 3)
                    | bit(attrs.b, 2)
                    | 0b10)
            }
        }
    }

    /// What the hardware makes of the raw entry `raw` on `arch`.
    pub fn decode(raw: u32, arch: Arch) -> Result<Self, DescriptorError> {
        let domain = field(raw, 5, 4);
        match (raw & 0b11, arch) {
            (0b00, _) => Ok(L1Descriptor::Fault),
            (0b01, _) => Ok(L1Descriptor::Coarse {
                table: PhysAddr(raw & !0x3ff),
                domain,
            }),
            (0b11, Arch::Armv5) => Ok(L1Descriptor::Fine {
                table: PhysAddr(raw & !0xfff),
                domain,
            }),
            (0b11, Arch::Armv6) => Err(DescriptorError::Reserved { raw, arch }),
            (_, Arch::Armv5) => Ok(L1Descriptor::Section {
                base: PhysAddr(raw & !(MIB - 1)),
                domain,
                attrs: section_attrs(raw, arch),
            }),
            (_, Arch::Armv6) if is_set(raw, 18) => {
                if field(raw, 20, 4) != 0 {
                    // Physical address bits [35:32]: not addressable here.
                    return Err(DescriptorError::Reserved { raw, arch });
                }
                Ok(L1Descriptor::Supersection {
                    base: PhysAddr(raw & !(16 * MIB - 1)),
                    attrs: section_attrs(raw, arch),
                })
            }
            (_, Arch::Armv6) => Ok(L1Descriptor::Section {
                base: PhysAddr(raw & !(MIB - 1)),
                domain,
                attrs: section_attrs(raw, arch),
            }),
        }
    }
}

fn section_attrs(raw: u32, arch: Arch) -> HwAttrs {
    let v6 = arch == Arch::Armv6;
    HwAttrs {
        tex: field(raw, 12, 3),
        c: is_set(raw, 3),
        b: is_set(raw, 2),
        ap: [field(raw, 10, 2); 4],
        apx: v6 && is_set(raw, 15),
        xn: v6 && is_set(raw, 4),
        not_global: v6 && is_set(raw, 17),
        shareable: v6 && is_set(raw, 16),
    }
}

impl L2Descriptor {
    /// The raw entry on `arch`, or why it cannot be written.
    pub fn encode(self, arch: Arch) -> Result<u32, DescriptorError> {
        match (self, arch) {
            (L2Descriptor::Fault, _) => Ok(0),
            (L2Descriptor::Large { base, attrs }, _) => {
                check_attrs(&attrs, arch, true)?;
                let common = aligned(base, 64 * 1024, "large page")?
                    | u32::from(attrs.tex) << 12
                    | bit(attrs.c, 3)
                    | bit(attrs.b, 2)
                    | 0b01;
                Ok(match arch {
                    Arch::Armv5 => common | subpage_ap_bits(&attrs),
                    Arch::Armv6 => {
                        common
                            | bit(attrs.xn, 15)
                            | v6_high_bits(&attrs, 11)
                            | u32::from(attrs.ap[0]) << 4
                    }
                })
            }
            (L2Descriptor::Small { base, attrs }, Arch::Armv5) => {
                check_attrs(&attrs, arch, true)?;
                if attrs.tex != 0 {
                    return Err(DescriptorError::NotInFormat {
                        field: "TEX in an ARMv5 small page",
                        arch,
                    });
                }
                Ok(aligned(base, 4096, "small page")?
                    | subpage_ap_bits(&attrs)
                    | bit(attrs.c, 3)
                    | bit(attrs.b, 2)
                    | 0b10)
            }
            (L2Descriptor::Small { base, attrs }, Arch::Armv6) => {
                check_attrs(&attrs, arch, false)?;
                Ok(aligned(base, 4096, "small page")?
                    | v6_high_bits(&attrs, 11)
                    | u32::from(attrs.tex) << 6
                    | u32::from(attrs.ap[0]) << 4
                    | bit(attrs.c, 3)
                    | bit(attrs.b, 2)
                    | 0b10
                    | bit(attrs.xn, 0))
            }
        }
    }

    /// What the hardware makes of the raw entry `raw` on `arch`.
    pub fn decode(raw: u32, arch: Arch) -> Result<Self, DescriptorError> {
        let c = is_set(raw, 3);
        let b = is_set(raw, 2);
        match (arch, raw & 0b11) {
            (_, 0b00) => Ok(L2Descriptor::Fault),
            (Arch::Armv5, 0b01) => Ok(L2Descriptor::Large {
                base: PhysAddr(raw & !0xffff),
                attrs: HwAttrs {
                    tex: field(raw, 12, 3),
                    c,
                    b,
                    ap: subpage_aps(raw),
                    ..HwAttrs::default()
                },
            }),
            (Arch::Armv5, 0b10) => Ok(L2Descriptor::Small {
                base: PhysAddr(raw & !0xfff),
                attrs: HwAttrs {
                    c,
                    b,
                    ap: subpage_aps(raw),
                    ..HwAttrs::default()
                },
            }),
            // Tiny / extended small pages: vacmm never writes them.
            (Arch::Armv5, _) => Err(DescriptorError::Reserved { raw, arch }),
            (Arch::Armv6, 0b01) => Ok(L2Descriptor::Large {
                base: PhysAddr(raw & !0xffff),
                attrs: HwAttrs {
                    tex: field(raw, 12, 3),
                    c,
                    b,
                    ap: [field(raw, 4, 2); 4],
                    apx: is_set(raw, 9),
                    xn: is_set(raw, 15),
                    not_global: is_set(raw, 11),
                    shareable: is_set(raw, 10),
                },
            }),
            (Arch::Armv6, _) => Ok(L2Descriptor::Small {
                base: PhysAddr(raw & !0xfff),
                attrs: HwAttrs {
                    tex: field(raw, 6, 3),
                    c,
                    b,
                    ap: [field(raw, 4, 2); 4],
                    apx: is_set(raw, 9),
                    xn: is_set(raw, 0),
                    not_global: is_set(raw, 11),
                    shareable: is_set(raw, 10),
                },
            }),
        }
    }
}

fn subpage_ap_bits(attrs: &HwAttrs) -> u32 {
    attrs
        .ap
        .iter()
        .enumerate()
        .fold(0, |acc, (i, &ap)| acc | u32::from(ap) << (4 + 2 * i))
}

fn subpage_aps(raw: u32) -> [u8; 4] {
    [0, 1, 2, 3].map(|i| field(raw, 4 + 2 * i, 2))
}
