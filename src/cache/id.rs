//! MIDR and pre-ARMv7 CTR decoding.
//!
//! Encodings: ARM926EJ-S TRM §2.3 (c0, ID code and cache type), ARM1136JF-S
//! TRM §3.3.2 (Cache Type Register), ARMv6 ARM B6.1.3. The CTR size fields are
//! `P[11] size[9:6] assoc[5:3] M[2] len[1:0]`; bytes = (2+M) << (8+size),
//! ways = (2+M) << assoc >> 1, line = 8 << len.

use core::fmt;

/// The small-page size every configuration here uses, in bytes.
pub const PAGE_SIZE: usize = 4096;

/// The Main ID Register (MIDR, CP15 c0,c0,0), decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MainId(u32);

/// The CPU models vacmm knows, by MIDR implementer (0x41, ARM) and part number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuPart {
    /// ARM926EJ-S (ARMv5TEJ, VIVT caches), part 0x926.
    Arm926,
    /// ARM1136J(F)-S revision 0 (ARMv6 without the v6K extensions), part 0xB36.
    Arm1136R0,
    /// ARM1136J(F)-S revision 1 or later (ARMv6 with v6K features), part 0xB36.
    Arm1136R1,
    /// ARM1176JZ(F)-S (ARMv6KZ, VIPT caches), part 0xB76.
    Arm1176,
    /// ARM11 MPCore (ARMv6K, VIPT caches), part 0xB02.
    Arm11MpCore,
    /// Anything else; vacmm's policy code treats it by its architecture only.
    Other {
        /// MIDR\[31:24\], 0x41 is ARM Ltd.
        implementer: u8,
        /// MIDR\[15:4\].
        part: u16,
    },
}

impl MainId {
    /// Wraps a raw MIDR value.
    pub const fn from_raw(raw: u32) -> Self {
        Self(raw)
    }
    /// The raw register value.
    pub const fn raw(self) -> u32 {
        self.0
    }
    /// MIDR\[31:24\]: 0x41 for ARM Ltd.
    pub const fn implementer(self) -> u8 {
        (self.0 >> 24) as u8
    }
    /// MIDR\[23:20\]: major revision (the `r` of `rNpM`).
    pub const fn variant(self) -> u8 {
        ((self.0 >> 20) & 0xf) as u8
    }
    /// MIDR\[19:16\]: 0x6 = ARMv5TEJ, 0x7 = ARMv6, 0xF = "see the CPUID registers".
    pub const fn architecture(self) -> u8 {
        ((self.0 >> 16) & 0xf) as u8
    }
    /// MIDR\[15:4\]: primary part number.
    pub const fn part_number(self) -> u16 {
        ((self.0 >> 4) & 0xfff) as u16
    }
    /// MIDR\[3:0\]: minor revision (the `p` of `rNpM`).
    pub const fn revision(self) -> u8 {
        (self.0 & 0xf) as u8
    }
    /// The CPU model.
    pub const fn part(self) -> CpuPart {
        match (self.implementer(), self.part_number()) {
            (0x41, 0x926) => CpuPart::Arm926,
            (0x41, 0xb36) if self.variant() == 0 => CpuPart::Arm1136R0,
            (0x41, 0xb36) => CpuPart::Arm1136R1,
            (0x41, 0xb76) => CpuPart::Arm1176,
            (0x41, 0xb02) => CpuPart::Arm11MpCore,
            (implementer, part) => CpuPart::Other { implementer, part },
        }
    }
    /// True for ARMv6 and later cores (architecture field 0x7 or the CPUID scheme).
    ///
    /// ARM1136 r0 reports 0x7; ARM1136 r1 and ARM1176 report 0xF.
    pub const fn is_armv6_or_later(self) -> bool {
        matches!(self.architecture(), 0x7 | 0xf)
    }
}

impl fmt::Debug for MainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MainId({:#010x})", self.0)
    }
}

impl fmt::Display for CpuPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuPart::Arm926 => f.write_str("ARM926EJ-S"),
            CpuPart::Arm1136R0 => f.write_str("ARM1136 r0"),
            CpuPart::Arm1136R1 => f.write_str("ARM1136 r1+"),
            CpuPart::Arm1176 => f.write_str("ARM1176"),
            CpuPart::Arm11MpCore => f.write_str("ARM11 MPCore"),
            CpuPart::Other { implementer, part } => {
                write!(
                    f,
                    "unknown CPU (implementer {implementer:#04x}, part {part:#05x})"
                )
            }
        }
    }
}

impl fmt::Display for MainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (r{}p{}, MIDR {:#010x})",
            self.part(),
            self.variant(),
            self.revision(),
            self.0
        )
    }
}

/// Geometry of one cache (the D or I half of the CTR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheGeometry {
    /// Total size in bytes.
    pub size_bytes: usize,
    /// Associativity (1 = direct mapped).
    pub ways: usize,
    /// Line length in bytes.
    pub line_bytes: usize,
    /// The ARMv6 P bit: "page colouring restriction applies" (the cache aliases).
    pub colour_restricted: bool,
}

impl CacheGeometry {
    /// Bytes per way: the span of virtual address bits used to index the cache.
    pub const fn way_bytes(&self) -> usize {
        self.size_bytes / self.ways
    }
    /// Number of sets.
    pub const fn sets(&self) -> usize {
        self.way_bytes() / self.line_bytes
    }
    /// Page colours a VIPT cache of this geometry has (1 = no aliasing).
    pub const fn colours(&self) -> usize {
        let c = self.way_bytes() / PAGE_SIZE;
        if c == 0 { 1 } else { c }
    }

    /// A geometry given by the embedder (QEMU's CTR is invented, and boards
    /// may restrict the cache size): `None` unless sizes are powers of two,
    /// the line is 8..=256 bytes and the ways divide the size into lines.
    pub const fn new(size_bytes: usize, ways: usize, line_bytes: usize) -> Option<Self> {
        let ok = size_bytes.is_power_of_two()
            && ways.is_power_of_two()
            && line_bytes.is_power_of_two()
            && line_bytes >= 8
            && line_bytes <= 256
            && size_bytes >= ways * line_bytes;
        if !ok {
            return None;
        }
        Some(CacheGeometry {
            size_bytes,
            ways,
            line_bytes,
            colour_restricted: size_bytes / ways > PAGE_SIZE,
        })
    }

    /// The operand of a by-set/way operation (c7,c10,2 / c7,c14,2 / c7,c6,2):
    /// way in the top log2(ways) bits, set from bit log2(line) up (ARM926 TRM
    /// §2.3.8, ARM1136 TRM §3.3.18). `None` if `set` or `way` is out of range.
    pub const fn set_way_operand(&self, set: usize, way: usize) -> Option<u32> {
        if set >= self.sets() || way >= self.ways {
            return None;
        }
        let way_shift = 32 - self.ways.trailing_zeros();
        let way_bits = if self.ways == 1 {
            0
        } else {
            (way as u32) << way_shift
        };
        Some(way_bits | ((set as u32) << self.line_bytes.trailing_zeros()))
    }

    /// Decodes one 12-bit CTR size field. `None` when it says "no cache"
    /// (M = 1 with assoc = 0, ARMv6 ARM B6.1.3).
    const fn decode(field: u32) -> Option<Self> {
        let p = (field >> 11) & 1;
        let size = (field >> 6) & 0xf;
        let assoc = (field >> 3) & 0x7;
        let m = (field >> 2) & 1;
        let len = field & 0x3;
        if m == 1 && assoc == 0 {
            return None;
        }
        let multiplier = 2 + m as usize;
        let ways = if assoc == 0 {
            1
        } else {
            (multiplier << assoc) >> 1
        };
        Some(CacheGeometry {
            size_bytes: multiplier << (8 + size),
            ways,
            line_bytes: 8 << len,
            colour_restricted: p == 1,
        })
    }
}

/// The Cache Type Register (CTR, CP15 c0,c0,1) in its pre-ARMv7 format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheType {
    /// The raw register value.
    pub raw: u32,
    /// CTR\[28:25\]: cache type and clean/lockdown method (0b1110 on ARM926/ARM11:
    /// write-back, register-7 clean, format C lockdown).
    pub ctype: u8,
    /// CTR\[24\]: separate (Harvard) I and D caches.
    pub separate: bool,
    /// The data (or unified) cache; `None` if the CPU has none.
    pub dcache: Option<CacheGeometry>,
    /// The instruction cache; equal to `dcache` for a unified cache.
    pub icache: Option<CacheGeometry>,
}

/// Why a CTR value cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CtrError {
    /// The CTR reads back as the MIDR: the CPU implements no cache type register.
    NotImplemented {
        /// The value read.
        raw: u32,
    },
    /// CTR\[31:29\] = 0b100: the ARMv7 format, which vacmm does not target.
    Armv7Format {
        /// The value read.
        raw: u32,
    },
}

impl fmt::Display for CtrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtrError::NotImplemented { raw } => {
                write!(f, "CTR reads as MIDR ({raw:#010x}): no cache type register")
            }
            CtrError::Armv7Format { raw } => write!(
                f,
                "CTR {raw:#010x} is in the ARMv7 format; vacmm handles ARMv5/ARMv6 only"
            ),
        }
    }
}

impl CacheType {
    /// Decodes a CTR value. `midr` detects CPUs without a CTR, which return
    /// MIDR when CTR is read.
    pub const fn decode(raw: u32, midr: MainId) -> Result<Self, CtrError> {
        if raw == midr.raw() {
            return Err(CtrError::NotImplemented { raw });
        }
        if raw >> 29 == 0b100 {
            return Err(CtrError::Armv7Format { raw });
        }
        let separate = (raw >> 24) & 1 == 1;
        let dcache = CacheGeometry::decode((raw >> 12) & 0xfff);
        let icache = if separate {
            CacheGeometry::decode(raw & 0xfff)
        } else {
            dcache
        };
        Ok(CacheType {
            raw,
            ctype: ((raw >> 25) & 0xf) as u8,
            separate,
            dcache,
            icache,
        })
    }
}

/// How a data cache indexes and tags: what the coherence policy must do about aliases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheKind {
    /// Virtually indexed, virtually tagged (ARMv5): every alias is its own line.
    Vivt,
    /// Virtually indexed, physically tagged with a way larger than a page:
    /// aliases of different colours are separate lines.
    VipAliasing {
        /// Number of page colours (way size / page size).
        colours: usize,
    },
    /// Virtually indexed, physically tagged with way ≤ page: behaves like PIPT
    /// for CPU-side coherence.
    VipNonAliasing,
    /// Physically indexed and tagged: no ARMv5/ARMv6 L1 is, but the cache
    /// model uses it as the reference with no aliasing at all.
    Pipt,
}

impl CacheKind {
    /// Classifies the D-cache: ARMv5 is always VIVT (as Linux treats it); on
    /// ARMv6 the cache aliases if the D-side P bit (CTR\[23\]) is set or a way
    /// is larger than a page.
    ///
    /// The colour count comes from the way size; a P bit with a way of one page
    /// or less (an inconsistent CTR) is still treated as aliasing with 2
    /// colours, the safe side.
    pub const fn classify(midr: MainId, ctr: &CacheType) -> Self {
        if !midr.is_armv6_or_later() {
            return CacheKind::Vivt;
        }
        match ctr.dcache {
            Some(d) => Self::vipt(d),
            None => CacheKind::VipNonAliasing,
        }
    }

    /// The kind of a VIPT cache of this geometry.
    pub const fn vipt(d: CacheGeometry) -> Self {
        let colours = d.colours();
        if d.colour_restricted || colours > 1 {
            CacheKind::VipAliasing {
                colours: if colours < 2 { 2 } else { colours },
            }
        } else {
            CacheKind::VipNonAliasing
        }
    }

    /// True if two virtual aliases of one page can occupy different lines.
    pub const fn aliases(&self) -> bool {
        matches!(self, CacheKind::Vivt | CacheKind::VipAliasing { .. })
    }
}

impl fmt::Display for CacheKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheKind::Vivt => f.write_str("VIVT"),
            CacheKind::VipAliasing { colours } => write!(f, "VIPT aliasing ({colours} colours)"),
            CacheKind::VipNonAliasing => f.write_str("VIPT non-aliasing"),
            CacheKind::Pipt => f.write_str("PIPT"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_CTR: u32 = 0x01dd_20d2;
    const QEMU_ARM926: MainId = MainId::from_raw(0x4106_9265);
    const QEMU_ARM1136: MainId = MainId::from_raw(0x4117_b363);
    const QEMU_ARM1176: MainId = MainId::from_raw(0x410f_b767);

    #[test]
    fn midr_parts_of_the_three_qemu_cpus() {
        assert_eq!(QEMU_ARM926.part(), CpuPart::Arm926);
        assert_eq!(QEMU_ARM1136.part(), CpuPart::Arm1136R1);
        assert_eq!(MainId::from_raw(0x4107_b362).part(), CpuPart::Arm1136R0);
        assert_eq!(MainId::from_raw(0x410f_b022).part(), CpuPart::Arm11MpCore);
        assert_eq!(QEMU_ARM1176.part(), CpuPart::Arm1176);
        assert!(!QEMU_ARM926.is_armv6_or_later());
        assert!(QEMU_ARM1136.is_armv6_or_later());
        assert_eq!((QEMU_ARM1136.variant(), QEMU_ARM1136.revision()), (1, 3));
        assert_eq!(
            MainId::from_raw(0x4100_c0f0).part(),
            CpuPart::Other {
                implementer: 0x41,
                part: 0xc0f
            }
        );
    }

    #[test]
    fn qemu_ctr_is_64k_4way_d_with_p_and_4k_i() {
        let ctr = CacheType::decode(QEMU_CTR, QEMU_ARM1176).unwrap();
        assert!(ctr.separate);
        let d = ctr.dcache.unwrap();
        assert_eq!((d.size_bytes, d.ways, d.line_bytes), (64 << 10, 4, 32));
        assert!(d.colour_restricted);
        assert_eq!((d.way_bytes(), d.sets(), d.colours()), (16 << 10, 512, 4));
        let i = ctr.icache.unwrap();
        assert_eq!((i.size_bytes, i.ways, i.line_bytes), (4 << 10, 4, 32));
        assert!(!i.colour_restricted);
    }

    #[test]
    fn arm926_16k_ctr_from_the_trm() {
        // ARM926EJ-S TRM example: 16 KiB I and D, 4-way, 8 words/line, ctype 0b1110.
        let ctr = CacheType::decode(0x1d15_2152, QEMU_ARM926).unwrap();
        assert_eq!(ctr.ctype, 0b1110);
        let d = ctr.dcache.unwrap();
        assert_eq!((d.size_bytes, d.ways, d.line_bytes), (16 << 10, 4, 32));
        assert_eq!(CacheKind::classify(QEMU_ARM926, &ctr), CacheKind::Vivt);
    }

    #[test]
    fn classification_follows_architecture_and_p_bit() {
        let aliasing = CacheType::decode(QEMU_CTR, QEMU_ARM1136).unwrap();
        assert_eq!(
            CacheKind::classify(QEMU_ARM1136, &aliasing),
            CacheKind::VipAliasing { colours: 4 }
        );
        // ARM1176 with 16 KiB 4-way caches, P clear (the Raspberry Pi 1 geometry).
        let pi = CacheType::decode(0x1d15_2152, QEMU_ARM1176).unwrap();
        assert_eq!(pi.dcache.unwrap().size_bytes, 16 << 10);
        assert_eq!(
            CacheKind::classify(QEMU_ARM1176, &pi),
            CacheKind::VipNonAliasing
        );
    }

    /// CTR values as the TRMs encode them (ctype 0b1110, Harvard, 4-way,
    /// 32-byte lines; ARM11 sets P for caches over 16 KiB: ARM1176 TRM §3.2.3,
    /// ARM1136 TRM §3.3.2), each with the geometry and class it must decode to.
    #[test]
    fn table_of_real_ctr_values() {
        use CacheKind::*;
        let rows: [(MainId, u32, usize, CacheKind); 10] = [
            (QEMU_ARM926, 0x1d11_2112, 8 << 10, Vivt),
            (QEMU_ARM926, 0x1d15_2152, 16 << 10, Vivt),
            (QEMU_ARM926, 0x1d19_2192, 32 << 10, Vivt),
            (QEMU_ARM926, 0x1d1d_21d2, 64 << 10, Vivt),
            (QEMU_ARM1136, 0x1d15_2152, 16 << 10, VipNonAliasing),
            (
                QEMU_ARM1136,
                0x1d99_2992,
                32 << 10,
                VipAliasing { colours: 2 },
            ),
            (
                QEMU_ARM1136,
                0x1d9d_29d2,
                64 << 10,
                VipAliasing { colours: 4 },
            ),
            (QEMU_ARM1176, 0x1d15_2152, 16 << 10, VipNonAliasing),
            (
                QEMU_ARM1176,
                0x1d99_2992,
                32 << 10,
                VipAliasing { colours: 2 },
            ),
            (QEMU_ARM1176, QEMU_CTR, 64 << 10, VipAliasing { colours: 4 }),
        ];
        for (midr, raw, size, kind) in rows {
            let ctr = CacheType::decode(raw, midr).unwrap();
            assert_eq!(
                ctr.ctype,
                if raw == QEMU_CTR { 0 } else { 0b1110 },
                "{raw:#x}"
            );
            let d = ctr.dcache.unwrap();
            assert_eq!(
                (d.size_bytes, d.ways, d.line_bytes),
                (size, 4, 32),
                "{raw:#x}"
            );
            assert_eq!(d.sets(), size / 4 / 32, "{raw:#x}");
            assert_eq!(CacheKind::classify(midr, &ctr), kind, "{raw:#x} on {midr}");
        }
    }

    #[test]
    fn set_way_operands() {
        let g = CacheGeometry::new(16 << 10, 4, 32).unwrap(); // 128 sets
        assert_eq!(g.set_way_operand(0, 0), Some(0));
        assert_eq!(g.set_way_operand(127, 3), Some(0xc000_0fe0));
        assert_eq!(g.set_way_operand(128, 0), None);
        assert_eq!(g.set_way_operand(0, 4), None);
    }

    #[test]
    fn embedder_geometry_is_validated() {
        let g = CacheGeometry::new(32 << 10, 4, 32).unwrap();
        assert!(g.colour_restricted);
        assert_eq!(CacheKind::vipt(g), CacheKind::VipAliasing { colours: 2 });
        assert_eq!(CacheGeometry::new(24 << 10, 4, 32), None);
        assert_eq!(CacheGeometry::new(16 << 10, 4, 4), None);
        assert_eq!(CacheGeometry::new(64, 4, 32), None);
    }

    #[test]
    fn absent_and_unsupported_ctrs_are_errors() {
        assert_eq!(
            CacheType::decode(QEMU_ARM926.raw(), QEMU_ARM926),
            Err(CtrError::NotImplemented {
                raw: QEMU_ARM926.raw()
            })
        );
        assert_eq!(
            CacheType::decode(0x8444_c004, QEMU_ARM1176),
            Err(CtrError::Armv7Format { raw: 0x8444_c004 })
        );
        // M=1, assoc=0 in the I field: no instruction cache.
        let no_i = CacheType::decode(0x01dd_2004, QEMU_ARM1176).unwrap();
        assert_eq!(no_i.icache, None);
    }
}
