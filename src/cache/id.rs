//! MIDR and pre-ARMv7 CTR decoding.
//!
//! Encodings: ARM926EJ-S TRM §2.3 (c0, ID code and cache type), ARM1136JF-S
//! TRM §3.3.2 (Cache Type Register), ARMv6 ARM B6.1.3. The CTR size fields are
//! `P[11] size[9:6] assoc[5:3] M[2] len[1:0]`; bytes = (2+M) << (8+size),
//! ways = (2+M) << assoc >> 1, line = 8 << len.
//!
//! Decoding and construction accept the same geometries: a CTR field is
//! decoded by building its geometry with [`CacheGeometry::try_new`], so a
//! value `try_new` refuses is a [`CtrError::Geometry`], never a geometry
//! whose set/way operands or model cannot be computed.
//!
//! The M ("multiplier") bit: the architecture's encoding allows M = 1, a
//! cache of 3 × 2^n bytes and 3 × 2^(assoc−1) ways (ARMv5 ARM and the
//! ARM922T/ARM926EJ-S TRMs describe the field "in conjunction with the M
//! bit"). No core vacmm targets has one: the ARM926EJ-S TRM (DDI 0198D,
//! §2.3.2) says M "must be set to 0" and 4-way is the only associativity,
//! the ARM1136 and ARM1176 TRMs (DDI 0211, DDI 0301H §3.2.3) encode M = 0
//! and 4 ways for every cache size. vacmm refuses M = 1 caches rather than
//! guess: with 3 × 2^n ways the way field of a set/way operand has no
//! log2(ways) width in these TRMs' formulas, and the colour, allocator and
//! model arithmetic all assume powers of two.

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
    /// The ARM1136 (r0 and r1) and the ARM1156 report 0x7; the ARM1176 and
    /// the ARM11 MPCore report 0xF (QEMU `target/arm/tcg/cpu32.c`: arm1136-r2
    /// 0x4107b362, arm1136 0x4117b363, arm1176 0x410fb767, arm11mpcore
    /// 0x410fb022).
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

/// The largest cache a geometry may describe: 16 MiB, the largest the
/// pre-ARMv7 CTR can encode with M = 0 (size field 0b1111: 512 << 15
/// bytes). The bound keeps every set/way operand within 32 bits.
pub const MAX_CACHE_BYTES: usize = 16 << 20;

/// Why [`CacheGeometry::try_new`] refuses a geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GeometryError {
    /// The size, the way count or the line length is not a power of two
    /// (0 included).
    NotPowerOfTwo {
        /// `"size"`, `"ways"` or `"line length"`.
        what: &'static str,
        /// The value given.
        value: usize,
    },
    /// The line is shorter than 8 or longer than 256 bytes.
    LineOutOfRange {
        /// The line length given.
        line_bytes: usize,
    },
    /// The cache is larger than [`MAX_CACHE_BYTES`].
    TooLarge {
        /// The size given.
        size_bytes: usize,
    },
    /// One line per way needs more bytes than the cache has: no set.
    NoSets {
        /// The size given.
        size_bytes: usize,
        /// The ways given.
        ways: usize,
        /// The line length given.
        line_bytes: usize,
    },
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GeometryError::NotPowerOfTwo { what, value } => match what {
                "size" => write!(f, "a cache size of {value} bytes is not a power of two"),
                "ways" => write!(f, "a way count of {value} is not a power of two"),
                "line length" => write!(f, "a line length of {value} bytes is not a power of two"),
                _ => write!(f, "a cache {what} of {value} is not a power of two"),
            },
            GeometryError::LineOutOfRange { line_bytes } => write!(
                f,
                "a cache line of {line_bytes} bytes is outside the 8 to 256 bytes vacmm supports"
            ),
            GeometryError::TooLarge { size_bytes } => write!(
                f,
                "a cache of {size_bytes} bytes is larger than the {} MiB ({MAX_CACHE_BYTES} bytes) \
                 a pre-ARMv7 CTR can describe",
                MAX_CACHE_BYTES >> 20
            ),
            GeometryError::NoSets {
                size_bytes,
                ways,
                line_bytes,
            } => write!(
                f,
                "a cache of {size_bytes} bytes cannot hold even one set of {ways} ways of \
                 {line_bytes}-byte lines"
            ),
        }
    }
}

impl core::error::Error for GeometryError {}

impl CacheGeometry {
    /// Bytes per way: the span of virtual address bits used to index the
    /// cache (0 for a hand-built geometry without ways).
    pub const fn way_bytes(&self) -> usize {
        match self.size_bytes.checked_div(self.ways) {
            Some(bytes) => bytes,
            None => 0,
        }
    }
    /// Number of sets (0 for a hand-built geometry without lines).
    pub const fn sets(&self) -> usize {
        match self.way_bytes().checked_div(self.line_bytes) {
            Some(sets) => sets,
            None => 0,
        }
    }
    /// Page colours a VIPT cache of this geometry has (1 = no aliasing).
    pub const fn colours(&self) -> usize {
        let c = self.way_bytes() / PAGE_SIZE;
        if c == 0 { 1 } else { c }
    }

    /// A geometry given by the embedder (QEMU's CTR is invented, and boards
    /// may restrict the cache size): `None` where [`try_new`](Self::try_new)
    /// gives an error.
    pub const fn new(size_bytes: usize, ways: usize, line_bytes: usize) -> Option<Self> {
        match Self::try_new(size_bytes, ways, line_bytes) {
            Ok(g) => Some(g),
            Err(_) => None,
        }
    }

    /// A geometry given by the embedder, or why it cannot be: the size, the
    /// ways and the line must be powers of two, the line 8..=256 bytes, the
    /// size at most [`MAX_CACHE_BYTES`] and room for at least one set.
    pub const fn try_new(
        size_bytes: usize,
        ways: usize,
        line_bytes: usize,
    ) -> Result<Self, GeometryError> {
        let powers = [
            ("size", size_bytes),
            ("ways", ways),
            ("line length", line_bytes),
        ];
        let mut i = 0;
        while i < powers.len() {
            let (what, value) = powers[i];
            if !value.is_power_of_two() {
                return Err(GeometryError::NotPowerOfTwo { what, value });
            }
            i += 1;
        }
        if line_bytes < 8 || line_bytes > 256 {
            return Err(GeometryError::LineOutOfRange { line_bytes });
        }
        if size_bytes > MAX_CACHE_BYTES {
            return Err(GeometryError::TooLarge { size_bytes });
        }
        // Divided rather than multiplied: `ways * line_bytes` can overflow.
        // All three are powers of two, so the division is exact.
        if size_bytes / ways < line_bytes {
            return Err(GeometryError::NoSets {
                size_bytes,
                ways,
                line_bytes,
            });
        }
        Ok(CacheGeometry {
            size_bytes,
            ways,
            line_bytes,
            colour_restricted: size_bytes / ways > PAGE_SIZE,
        })
    }

    /// Checks a geometry that may have been built by hand (the fields are
    /// public) as [`try_new`](Self::try_new) would.
    pub const fn validate(&self) -> Result<(), GeometryError> {
        match Self::try_new(self.size_bytes, self.ways, self.line_bytes) {
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The operand of a by-set/way operation (c7,c10,2 / c7,c14,2 / c7,c6,2):
    /// way in the top log2(ways) bits, set from bit log2(line) up (ARM926 TRM
    /// §2.3.8, ARM1136 TRM §3.3.18). `None` if `set` or `way` is out of
    /// range, or if the geometry is not one [`try_new`](Self::try_new)
    /// accepts (a hand-built one: the formula needs powers of two).
    pub const fn set_way_operand(&self, set: usize, way: usize) -> Option<u32> {
        if self.validate().is_err() || set >= self.sets() || way >= self.ways {
            return None;
        }
        // Valid: log2(ways) + log2(sets) + log2(line) = log2(size) ≤ 24, so
        // the way field starts above the set field and both fit in 32 bits.
        let way_bits = match way_field_shift(self.ways) {
            Some(shift) => (way as u32) << shift,
            None => 0,
        };
        Some(way_bits | ((set as u32) << self.line_bytes.trailing_zeros()))
    }

    /// Decodes one 12-bit CTR size field. `Ok(None)` when it says "no
    /// cache" (M = 1 with assoc = 0, ARMv6 ARM B6.1.3); the error of
    /// [`try_new`](Self::try_new) for a geometry it refuses.
    const fn decode(field: u32) -> Result<Option<Self>, GeometryError> {
        let p = (field >> 11) & 1;
        let size = (field >> 6) & 0xf;
        let assoc = (field >> 3) & 0x7;
        let m = (field >> 2) & 1;
        let len = field & 0x3;
        if m == 1 && assoc == 0 {
            return Ok(None);
        }
        let multiplier = 2 + m as usize;
        let ways = if assoc == 0 {
            1
        } else {
            (multiplier << assoc) >> 1
        };
        match Self::try_new(multiplier << (8 + size), ways, 8 << len) {
            // The P bit is what the CPU reports; `try_new` infers it.
            Ok(g) => Ok(Some(CacheGeometry {
                colour_restricted: p == 1,
                ..g
            })),
            Err(e) => Err(e),
        }
    }
}

/// Where the way field of a set/way operand starts: the way sits in the top
/// A bits, A = log2(ways) rounded up (ARMv6 ARM B6.6.5; for the 4-way
/// caches of the ARM926 and ARM11 bits \[31:30\], ARM1176 TRM §3.2.22).
/// Rounded up, a 3-way cache's field is two bits wide, not one (`None` for
/// a direct-mapped cache: no field).
pub(crate) const fn way_field_shift(ways: usize) -> Option<u32> {
    if ways <= 1 {
        return None;
    }
    let bits = usize::BITS - (ways - 1).leading_zeros();
    Some(32 - bits)
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
    /// A size field describes a cache [`CacheGeometry::try_new`] refuses:
    /// M = 1 (3 × 2^n ways), or fewer bytes than one set.
    Geometry {
        /// The value read.
        raw: u32,
        /// `"data"` (Dsize, CTR\[23:12\]) or `"instruction"` (Isize, CTR\[11:0\]).
        cache: &'static str,
        /// The 12-bit size field.
        field: u16,
        /// Why the geometry it encodes is refused.
        error: GeometryError,
    },
}

impl fmt::Display for CtrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtrError::NotImplemented { raw } => write!(
                f,
                "the CTR reads back as the MIDR ({raw:#010x}): this CPU has no cache type \
                 register to read its caches from"
            ),
            CtrError::Armv7Format { raw } => write!(
                f,
                "the CTR value {raw:#010x} is in the ARMv7 format: vacmm handles ARMv5 and \
                 ARMv6 CPUs only"
            ),
            CtrError::Geometry {
                raw,
                cache,
                field,
                error,
            } => write!(
                f,
                "the CTR value {raw:#010x} gives the {cache} cache the size field {field:#05x}, \
                 which describes a cache vacmm cannot use: {error}"
            ),
        }
    }
}

/// The message includes the cause's, so a kernel printing one line loses
/// nothing; `source` gives the cause as a value.
impl core::error::Error for CtrError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            CtrError::Geometry { error, .. } => Some(error),
            _ => None,
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
        let dcache = match decode_field(raw, "data", (raw >> 12) & 0xfff) {
            Ok(d) => d,
            Err(e) => return Err(e),
        };
        let icache = if separate {
            match decode_field(raw, "instruction", raw & 0xfff) {
                Ok(i) => i,
                Err(e) => return Err(e),
            }
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

/// One size field of `raw`, its refusal named after the cache it describes.
const fn decode_field(
    raw: u32,
    cache: &'static str,
    field: u32,
) -> Result<Option<CacheGeometry>, CtrError> {
    match CacheGeometry::decode(field) {
        Ok(g) => Ok(g),
        Err(error) => Err(CtrError::Geometry {
            raw,
            cache,
            field: field as u16,
            error,
        }),
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
    /// Classifies the D-cache as Linux's `cacheid_init` does: ARMv5 is
    /// always VIVT; on ARMv6 the D-side P bit (CTR\[23\]) alone says
    /// whether the cache aliases. The ARM11 MPCore's 32 KiB 4-way D-cache
    /// (8 KiB ways) reports P clear: it needs no page colouring, and is
    /// VIPT non-aliasing here as in Linux (its I-cache reports P set).
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

    /// The kind of a VIPT cache of this geometry: aliasing if its P bit
    /// ([`CacheGeometry::colour_restricted`]) is set, which
    /// [`CacheGeometry::try_new`] sets for a way larger than a page and a
    /// decoded CTR takes from the register.
    pub const fn vipt(d: CacheGeometry) -> Self {
        let colours = d.colours();
        if d.colour_restricted {
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
    const QEMU_MPCORE: MainId = MainId::from_raw(0x410f_b022);

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
        let rows: [(MainId, u32, usize, CacheKind); 11] = [
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
            // QEMU arm11mpcore: 32 KiB D with P clear (8 KiB ways, yet no
            // aliasing: Linux reads the P bit alone), I with P set.
            (QEMU_MPCORE, 0x1d19_2992, 32 << 10, VipNonAliasing),
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
    fn the_way_field_is_log2_of_the_ways_rounded_up() {
        // (ways, shift): the way in the top ceil(log2(ways)) bits. The old
        // shift, 32 − trailing_zeros(ways), put a 3-way cache's way in bit
        // 31 alone (way 2 overflowed it) and a 6-way's in bits [31:31].
        let cases = [
            (1, None),
            (2, Some(31)),
            (3, Some(30)),
            (4, Some(30)),
            (6, Some(29)),
            (8, Some(29)),
            (64, Some(26)),
        ];
        for (ways, shift) in cases {
            assert_eq!(way_field_shift(ways), shift, "{ways} ways");
        }
        assert_eq!(way_field_shift(0), None);
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

    /// Issue 19: `ways * line_bytes` overflowed.
    #[test]
    fn huge_geometries_are_refused_not_overflowed() {
        let half = 1usize << (usize::BITS - 1);
        assert_eq!(CacheGeometry::new(half, half >> 1, 8), None);
        assert_eq!(
            CacheGeometry::try_new(half, half >> 1, 8),
            Err(GeometryError::TooLarge { size_bytes: half })
        );
        // Within the size bound the same shape has no set.
        assert_eq!(
            CacheGeometry::try_new(MAX_CACHE_BYTES, MAX_CACHE_BYTES, 8),
            Err(GeometryError::NoSets {
                size_bytes: MAX_CACHE_BYTES,
                ways: MAX_CACHE_BYTES,
                line_bytes: 8
            })
        );
    }

    #[test]
    fn geometry_errors_name_the_value() {
        use GeometryError::*;
        let cases = [
            (
                (0, 4, 32),
                NotPowerOfTwo {
                    what: "size",
                    value: 0,
                },
            ),
            (
                (24 << 10, 3, 32),
                NotPowerOfTwo {
                    what: "size",
                    value: 24 << 10,
                },
            ),
            (
                (16 << 10, 3, 32),
                NotPowerOfTwo {
                    what: "ways",
                    value: 3,
                },
            ),
            (
                (16 << 10, 4, 0),
                NotPowerOfTwo {
                    what: "line length",
                    value: 0,
                },
            ),
            ((16 << 10, 4, 4), LineOutOfRange { line_bytes: 4 }),
            ((16 << 10, 4, 512), LineOutOfRange { line_bytes: 512 }),
            (
                (32 << 20, 4, 32),
                TooLarge {
                    size_bytes: 32 << 20,
                },
            ),
            (
                (64, 4, 32),
                NoSets {
                    size_bytes: 64,
                    ways: 4,
                    line_bytes: 32,
                },
            ),
        ];
        for ((size, ways, line), error) in cases {
            assert_eq!(CacheGeometry::try_new(size, ways, line), Err(error));
            assert_eq!(CacheGeometry::new(size, ways, line), None);
        }
        assert_eq!(
            NoSets {
                size_bytes: 64,
                ways: 4,
                line_bytes: 32
            }
            .to_string(),
            "a cache of 64 bytes cannot hold even one set of 4 ways of 32-byte lines"
        );
        // The extremes that are accepted: one set of one 8-byte line, and
        // the largest cache with the most ways of the longest lines.
        assert!(CacheGeometry::try_new(8, 1, 8).is_ok());
        let big = CacheGeometry::try_new(MAX_CACHE_BYTES, 1 << 16, 256).unwrap();
        assert_eq!(big.sets(), 1);
        assert_eq!(big.set_way_operand(0, (1 << 16) - 1), Some(0xffff_0000));
    }

    /// Issue 19: CTR 0x0014_e000 (D: M = 1, 24 KiB 3-way) decoded, and
    /// `set_way_operand(0, 1)` then shifted by 32.
    #[test]
    fn a_3_way_ctr_is_refused() {
        let e = CacheType::decode(0x0014_e000, QEMU_ARM1136).unwrap_err();
        assert_eq!(
            e,
            CtrError::Geometry {
                raw: 0x0014_e000,
                cache: "data",
                field: 0x14e,
                error: GeometryError::NotPowerOfTwo {
                    what: "size",
                    value: 24 << 10
                }
            }
        );
        assert_eq!(
            e.to_string(),
            "the CTR value 0x0014e000 gives the data cache the size field 0x14e, which \
             describes a cache vacmm cannot use: a cache size of 24576 bytes is not a power of two"
        );
        // Zero sets: 512 bytes of 128 ways of 64-byte lines, in the I field.
        assert_eq!(
            CacheType::decode(0x011d_203b, QEMU_ARM1136),
            Err(CtrError::Geometry {
                raw: 0x011d_203b,
                cache: "instruction",
                field: 0x03b,
                error: GeometryError::NoSets {
                    size_bytes: 512,
                    ways: 128,
                    line_bytes: 64
                }
            })
        );
    }

    /// Issue 19: every geometry decode gives is one `CacheGeometry::new`
    /// gives too, and its last set/way has an operand.
    #[test]
    fn every_decoded_geometry_constructs() {
        for field in 0..0x1000u32 {
            // The same field for D and I, separate caches.
            let raw = 0x1d00_0000 | field << 12 | field;
            let Ok(ctr) = CacheType::decode(raw, QEMU_ARM1136) else {
                continue;
            };
            for g in [ctr.dcache, ctr.icache].into_iter().flatten() {
                let built = CacheGeometry::new(g.size_bytes, g.ways, g.line_bytes);
                assert_eq!(
                    built.map(|b| (b.size_bytes, b.ways, b.line_bytes)),
                    Some((g.size_bytes, g.ways, g.line_bytes)),
                    "CTR {raw:#010x}"
                );
                assert!(g.set_way_operand(g.sets() - 1, g.ways - 1).is_some());
            }
        }
    }

    /// The converse: a field is refused exactly when construction refuses
    /// the geometry its formula gives, with construction's error.
    #[test]
    fn every_refused_field_is_one_construction_refuses() {
        let mut refused = 0;
        for field in 0..0x1000u32 {
            let (size, assoc, m, len) =
                (field >> 6 & 0xf, field >> 3 & 7, field >> 2 & 1, field & 3);
            if m == 1 && assoc == 0 {
                continue; // no cache
            }
            let multiplier = 2 + m as usize;
            let ways = if assoc == 0 {
                1
            } else {
                multiplier << assoc >> 1
            };
            let built = CacheGeometry::try_new(multiplier << (8 + size), ways, 8 << len);
            let decoded = CacheType::decode(0x0100_0000 | field << 12 | 0x152, QEMU_ARM926);
            match (built, decoded) {
                (Ok(_), Ok(_)) => {}
                (
                    Err(error),
                    Err(CtrError::Geometry {
                        cache,
                        field: f,
                        error: e,
                        ..
                    }),
                ) => {
                    assert_eq!((cache, u32::from(f), e), ("data", field, error));
                    refused += 1;
                }
                (built, decoded) => panic!("field {field:#05x}: {built:?} but {decoded:?}"),
            }
        }
        // Every M = 1 field with a cache (7 assoc × 16 sizes × 4 lengths =
        // 448) and 20 with zero sets: the 468 of issue 19, once per value of
        // the P bit and of the reserved bit 10.
        assert_eq!(refused, 4 * 468);
    }

    /// Issue 19: a geometry the embedder built by hand (the fields are
    /// public) made `set_way_operand` shift by 32 or divide by zero.
    #[test]
    fn methods_of_a_hand_built_geometry_do_not_panic() {
        let three_way = CacheGeometry {
            size_bytes: 24 << 10,
            ways: 3,
            line_bytes: 32,
            colour_restricted: true,
        };
        assert_eq!(three_way.set_way_operand(0, 1), None);
        let empty = CacheGeometry {
            size_bytes: 0,
            ways: 0,
            line_bytes: 0,
            colour_restricted: false,
        };
        assert_eq!((empty.way_bytes(), empty.sets()), (0, 0));
        assert_eq!(empty.colours(), 1);
        assert_eq!(empty.set_way_operand(0, 0), None);
    }
}
