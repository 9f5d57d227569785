//! The cache facts the policy layer works from: kind, geometry, colours and
//! the whole-cache threshold, detected from MIDR/CTR or given by the embedder.

use core::fmt;

use super::id::{CacheGeometry, CacheKind, CacheType, CtrError, MainId, PAGE_SIZE};
use crate::addr::VirtAddr;

/// What the policy layer knows about the L1 caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheInfo {
    /// The CPU, as MIDR identifies it.
    pub midr: MainId,
    /// How the D-cache indexes and tags.
    pub kind: CacheKind,
    /// The data cache.
    pub dcache: CacheGeometry,
    /// The instruction cache.
    pub icache: CacheGeometry,
    whole_cache_threshold: u64,
}

/// Why the cache facts cannot be established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InfoError {
    /// The CTR cannot be decoded.
    Ctr(CtrError),
    /// The CTR reports no data cache; vacmm has nothing to manage.
    NoDataCache {
        /// The CTR value.
        raw: u32,
    },
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfoError::Ctr(e) => e.fmt(f),
            InfoError::NoDataCache { raw } => write!(
                f,
                "the CTR value {raw:#010x} reports no data cache: vacmm has nothing to manage"
            ),
        }
    }
}

/// The message includes the cause's, so a kernel printing one line loses
/// nothing; `source` gives the cause as a value.
impl core::error::Error for InfoError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            InfoError::Ctr(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CtrError> for InfoError {
    fn from(e: CtrError) -> Self {
        InfoError::Ctr(e)
    }
}

impl CacheInfo {
    /// Decodes the facts from raw MIDR and CTR values. The whole-cache
    /// threshold starts at the D-cache size.
    pub const fn from_registers(midr: MainId, ctr_raw: u32) -> Result<Self, InfoError> {
        let ctr = match CacheType::decode(ctr_raw, midr) {
            Ok(ctr) => ctr,
            Err(e) => return Err(InfoError::Ctr(e)),
        };
        let Some(dcache) = ctr.dcache else {
            return Err(InfoError::NoDataCache { raw: ctr_raw });
        };
        let icache = match ctr.icache {
            Some(i) => i,
            None => dcache,
        };
        Ok(CacheInfo {
            midr,
            kind: CacheKind::classify(midr, &ctr),
            dcache,
            icache,
            whole_cache_threshold: dcache.size_bytes as u64,
        })
    }

    /// A physically indexed cache of the given geometry: the model's
    /// no-aliasing reference.
    pub const fn pipt(midr: MainId, dcache: CacheGeometry, icache: CacheGeometry) -> Self {
        CacheInfo {
            midr,
            kind: CacheKind::Pipt,
            dcache,
            icache,
            whole_cache_threshold: dcache.size_bytes as u64,
        }
    }

    /// Overrides the D-cache geometry (QEMU reports an invented CTR; a board
    /// may differ from what the CTR says). ARMv5 stays VIVT; ARMv6 is
    /// reclassified from the new way size. The threshold follows the new size.
    pub const fn with_dcache(mut self, dcache: CacheGeometry) -> Self {
        self.dcache = dcache;
        self.whole_cache_threshold = dcache.size_bytes as u64;
        self.kind = match self.kind {
            CacheKind::Vivt | CacheKind::Pipt => self.kind,
            CacheKind::VipAliasing { .. } | CacheKind::VipNonAliasing => CacheKind::vipt(dcache),
        };
        self
    }

    /// Overrides the I-cache geometry.
    pub const fn with_icache(mut self, icache: CacheGeometry) -> Self {
        self.icache = icache;
        self
    }

    /// Sets the range size, in bytes, from which a range operation becomes
    /// the whole-cache operation (default: the D-cache size).
    pub const fn with_whole_cache_threshold(mut self, bytes: u64) -> Self {
        self.whole_cache_threshold = bytes;
        self
    }

    /// See [`with_whole_cache_threshold`](Self::with_whole_cache_threshold).
    pub const fn whole_cache_threshold(&self) -> u64 {
        self.whole_cache_threshold
    }

    /// Page colours: 1 unless the cache is VIPT aliasing. (A VIVT cache has
    /// no colours at all: every alias is its own line whatever its address.)
    /// A hand-built `VipAliasing { colours: 0 }` counts as 1, so
    /// [`colour_of`](Self::colour_of) never divides by zero.
    pub const fn colours(&self) -> usize {
        match self.kind {
            CacheKind::VipAliasing { colours } if colours > 1 => colours,
            _ => 1,
        }
    }

    /// The colour of a virtual address: which way-sized slice of the index
    /// its page falls in.
    pub const fn colour_of(&self, va: VirtAddr) -> usize {
        (va.as_u32() as usize / PAGE_SIZE) % self.colours()
    }

    /// SHMLBA-style alignment, in bytes: mappings of one page whose virtual
    /// addresses are congruent modulo this share cache lines (VIPT). A page
    /// for caches that do not alias by colour.
    ///
    /// Saturates at `usize::MAX` for a hand-built colour count no cache has.
    pub const fn colour_alignment(&self) -> usize {
        self.colours().saturating_mul(PAGE_SIZE)
    }

    /// True if the CPU is ARMv6 (CP15 block operations, ASIDs, CP15 barriers).
    pub const fn is_armv6(&self) -> bool {
        self.midr.is_armv6_or_later()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARM926: MainId = MainId::from_raw(0x4106_9265);
    const ARM1136: MainId = MainId::from_raw(0x4117_b363);
    const QEMU_CTR: u32 = 0x01dd_20d2;

    #[test]
    fn colours_of_a_64k_4way_vipt_cache() {
        let info = CacheInfo::from_registers(ARM1136, QEMU_CTR).unwrap();
        assert_eq!(info.colours(), 4);
        assert_eq!(info.colour_alignment(), 16 << 10);
        assert_eq!(info.colour_of(VirtAddr(0x0000_0000)), 0);
        assert_eq!(info.colour_of(VirtAddr(0x0000_1fff)), 1);
        assert_eq!(info.colour_of(VirtAddr(0x4000_3000)), 3);
        assert_eq!(info.colour_of(VirtAddr(0xffff_f000)), 3);
        assert_eq!(info.whole_cache_threshold(), 64 << 10);
    }

    #[test]
    fn override_reclassifies_armv6_but_not_armv5() {
        let sixteen = CacheGeometry::new(16 << 10, 4, 32).unwrap();
        let thirty_two = CacheGeometry::new(32 << 10, 4, 32).unwrap();
        let v6 = CacheInfo::from_registers(ARM1136, QEMU_CTR).unwrap();
        assert_eq!(v6.with_dcache(sixteen).kind, CacheKind::VipNonAliasing);
        assert_eq!(
            v6.with_dcache(thirty_two).kind,
            CacheKind::VipAliasing { colours: 2 }
        );
        assert_eq!(v6.with_dcache(sixteen).whole_cache_threshold(), 16 << 10);
        let v5 = CacheInfo::from_registers(ARM926, QEMU_CTR)
            .unwrap()
            .with_dcache(sixteen);
        assert_eq!(
            (v5.kind, v5.colours(), v5.colour_alignment()),
            (CacheKind::Vivt, 1, 4096)
        );
        assert_eq!(
            v5.with_whole_cache_threshold(4096).whole_cache_threshold(),
            4096
        );
    }

    #[test]
    fn missing_ctr_is_an_error() {
        assert_eq!(
            CacheInfo::from_registers(ARM926, ARM926.raw()),
            Err(InfoError::Ctr(CtrError::NotImplemented {
                raw: ARM926.raw()
            }))
        );
    }

    /// The fields are public: colour counts no cache has must not divide by
    /// zero or overflow.
    #[test]
    fn hand_built_colour_counts_do_not_panic() {
        let mut info = CacheInfo::from_registers(ARM1136, QEMU_CTR).unwrap();
        info.kind = CacheKind::VipAliasing { colours: 0 };
        assert_eq!(info.colours(), 1);
        assert_eq!(info.colour_of(VirtAddr(0x1234_5000)), 0);
        info.kind = CacheKind::VipAliasing {
            colours: usize::MAX,
        };
        assert_eq!(info.colour_alignment(), usize::MAX);
        assert_eq!(info.colour_of(VirtAddr(0xffff_f000)), 0xf_ffff);
    }
}
