//! Cache configurations for the model, and the presets of the CPUs vacmm targets.

use std::fmt;

use crate::cache::{CacheGeometry, CacheInfo, CacheKind, GeometryError, MainId};

/// The longest D-cache line the model writes back whole (its write-back
/// buffer's size): 64 bytes, the longest a pre-ARMv7 CTR encodes
/// (8 << len, len ≤ 3).
pub const MAX_MODEL_LINE: usize = super::write_buffer::MAX_LINE;

/// A model the cache simulation cannot run, with the offending values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// A cache's geometry is not one [`CacheGeometry::try_new`] accepts
    /// (the fields are public, so a hand-built one may not be).
    Geometry {
        /// `"data"` or `"instruction"`.
        cache: &'static str,
        /// Why.
        error: GeometryError,
    },
    /// D-cache lines longer than the model's write-back buffer holds
    /// ([`MAX_MODEL_LINE`]): a write-back would lose the rest of the line.
    LineTooLong {
        /// The D-cache line length given.
        line_bytes: usize,
    },
    /// Modelled memory that is not whole 4 KiB pages or reaches the last
    /// page below 4 GiB ([`Sim::try_new_at`](super::Sim::try_new_at)).
    MemoryRange {
        /// The physical address of its first byte.
        base: u32,
        /// Its size in bytes.
        bytes: usize,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ModelError::Geometry { cache, error } => {
                write!(f, "the model's {cache} cache cannot be built: {error}")
            }
            ModelError::LineTooLong { line_bytes } => write!(
                f,
                "the model writes back D-cache lines of at most {MAX_MODEL_LINE} bytes, not {line_bytes}"
            ),
            ModelError::MemoryRange { base, bytes } => write!(
                f,
                "modelled memory of {bytes:#x} bytes at physical {base:#010x} must be whole \
                 4 KiB pages and end at or below 0xfffff000"
            ),
        }
    }
}

impl std::error::Error for ModelError {}

/// Where a cache takes its set index and its tag from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Indexing {
    /// Index and tag from the virtual address (ARM926EJ-S).
    Vivt,
    /// VIVT with the ARM926's FCSE: the space's key is its PID, and user
    /// addresses below 32 MiB are relocated to PID × 32 MiB before the cache
    /// sees them, so equal addresses there of spaces with different PIDs do
    /// not hit each other (above 32 MiB they do). Maintenance by MVA takes
    /// the relocated address.
    VivtKeyed,
    /// Index from the virtual, tag from the physical address (ARM11).
    Vipt,
    /// Index and tag from the physical address: the no-aliasing reference.
    Pipt,
}

/// What a store to a cached line does to memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritePolicy {
    /// Memory is updated when the line is written back.
    WriteBack,
    /// Memory is updated by every store as well.
    WriteThrough,
}

/// Which misses allocate a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Only loads allocate; a store miss goes to memory (ARM926).
    ReadOnly,
    /// Loads and stores allocate.
    ReadWrite,
}

/// Which way a miss replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replacement {
    /// One victim counter per set, advancing on each fill (ARM926 with SCTLR.RR).
    RoundRobin,
    /// A seeded xorshift generator: deterministic for a given seed.
    PseudoRandom {
        /// The generator's seed (0 is replaced by a fixed non-zero value).
        seed: u64,
    },
}

/// One cache of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Size, associativity and line length.
    pub geometry: CacheGeometry,
    /// Index and tag source.
    pub indexing: Indexing,
    /// Write policy (the D-cache's default; a page's memory type can make it
    /// write-through or uncached).
    pub write: WritePolicy,
    /// Allocation on misses.
    pub allocation: Allocation,
    /// Victim choice.
    pub replacement: Replacement,
}

/// The caches of one modelled CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuModel {
    /// The MIDR the model reports (for [`CacheInfo`]).
    pub midr: MainId,
    /// The data cache.
    pub dcache: CacheConfig,
    /// The instruction cache.
    pub icache: CacheConfig,
    /// Entries of the write buffer for stores that bypass or write through
    /// the D-cache (0: stores reach memory at once). ARM926EJ-S: 16 words
    /// at 4 addresses (TRM §1.2) — modelled as 4 entries.
    pub write_buffer_entries: usize,
}

const fn geometry(size: usize, ways: usize, line: usize) -> CacheGeometry {
    match CacheGeometry::new(size, ways, line) {
        Some(g) => g,
        None => panic!("preset geometry is valid"),
    }
}

const fn config(
    size: usize,
    indexing: Indexing,
    allocation: Allocation,
    replacement: Replacement,
) -> CacheConfig {
    CacheConfig {
        geometry: geometry(size, 4, 32),
        indexing,
        write: WritePolicy::WriteBack,
        allocation,
        replacement,
    }
}

impl CpuModel {
    /// ARM926EJ-S: 16 KiB D and I, 4-way, 32-byte lines, VIVT, write-back,
    /// read-allocate, round-robin.
    pub const fn arm926() -> Self {
        let d = config(
            16 << 10,
            Indexing::Vivt,
            Allocation::ReadOnly,
            Replacement::RoundRobin,
        );
        CpuModel {
            midr: MainId::from_raw(0x4106_9265),
            dcache: d,
            icache: d,
            write_buffer_entries: 4,
        }
    }

    /// ARM926EJ-S with its FCSE in use: spaces' keys are PIDs that relocate
    /// their addresses below 32 MiB.
    pub const fn arm926_keyed() -> Self {
        let mut m = Self::arm926();
        m.dcache.indexing = Indexing::VivtKeyed;
        m.icache.indexing = Indexing::VivtKeyed;
        m
    }

    /// ARM1136 with 32 KiB 4-way VIPT caches: 8 KiB ways, 2 colours.
    pub const fn arm1136_32k() -> Self {
        Self::arm11(0x4117_b363, 32 << 10)
    }

    /// ARM1136 with 64 KiB 4-way VIPT caches: 16 KiB ways, 4 colours.
    pub const fn arm1136_64k() -> Self {
        Self::arm11(0x4117_b363, 64 << 10)
    }

    /// ARM1176 with 16 KiB 4-way VIPT caches (Raspberry Pi 1): no aliasing.
    pub const fn arm1176_16k() -> Self {
        Self::arm11(0x410f_b767, 16 << 10)
    }

    /// ARM11 MPCore: 32 KiB 4-way caches whose CTR reports the D side with
    /// the P bit clear (no colouring needed: modelled physically indexed)
    /// and the I side with it set (VIPT, 8 KiB ways). QEMU's `arm11mpcore`
    /// CTR, 0x1d192992; Linux's `cacheid_init` reads it the same way.
    pub const fn arm11mpcore() -> Self {
        let mut m = Self::arm11(0x410f_b022, 32 << 10);
        m.dcache.indexing = Indexing::Pipt;
        m
    }

    /// The same model reporting another MIDR (another revision of the part).
    pub const fn with_midr(mut self, midr: MainId) -> Self {
        self.midr = midr;
        self
    }

    /// A PIPT cache of any geometry (write-back, read/write allocate): the
    /// reference that needs no maintenance for CPU-only sharing.
    pub const fn pipt(geometry: CacheGeometry) -> Self {
        let d = CacheConfig {
            geometry,
            indexing: Indexing::Pipt,
            write: WritePolicy::WriteBack,
            allocation: Allocation::ReadWrite,
            replacement: Replacement::RoundRobin,
        };
        CpuModel {
            midr: MainId::from_raw(0x410f_b767),
            dcache: d,
            icache: d,
            write_buffer_entries: 0,
        }
    }

    /// The same model with a write buffer of `entries` (0: none).
    pub const fn with_write_buffer(mut self, entries: usize) -> Self {
        self.write_buffer_entries = entries;
        self
    }

    const fn arm11(midr: u32, size: usize) -> Self {
        // ARM11 data caches allocate on read misses only by default too
        // (write-allocate is a page attribute); round-robin when SCTLR.RR.
        let d = config(
            size,
            Indexing::Vipt,
            Allocation::ReadOnly,
            Replacement::RoundRobin,
        );
        CpuModel {
            midr: MainId::from_raw(midr),
            dcache: d,
            icache: d,
            // ARM11 has a write buffer too; its depth is not modelled in the
            // preset: add one with `with_write_buffer`.
            write_buffer_entries: 0,
        }
    }

    /// Checks what the simulation relies on: both geometries are ones
    /// [`CacheGeometry::try_new`] accepts, and D-cache lines are at most
    /// [`MAX_MODEL_LINE`] bytes.
    pub const fn validate(&self) -> Result<(), ModelError> {
        if let Err(error) = self.dcache.geometry.validate() {
            return Err(ModelError::Geometry {
                cache: "data",
                error,
            });
        }
        if let Err(error) = self.icache.geometry.validate() {
            return Err(ModelError::Geometry {
                cache: "instruction",
                error,
            });
        }
        let line_bytes = self.dcache.geometry.line_bytes;
        if line_bytes > MAX_MODEL_LINE {
            return Err(ModelError::LineTooLong { line_bytes });
        }
        Ok(())
    }

    /// The [`CacheInfo`] policy code sees for this model.
    pub const fn info(&self) -> CacheInfo {
        let kind = match self.dcache.indexing {
            Indexing::Vivt | Indexing::VivtKeyed => CacheKind::Vivt,
            Indexing::Vipt => CacheKind::vipt(self.dcache.geometry),
            Indexing::Pipt => CacheKind::Pipt,
        };
        let mut info = CacheInfo::pipt(self.midr, self.dcache.geometry, self.icache.geometry);
        info.kind = kind;
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Sim;

    #[test]
    fn every_preset_is_valid() {
        for model in [
            CpuModel::arm926(),
            CpuModel::arm926_keyed(),
            CpuModel::arm1136_32k(),
            CpuModel::arm1136_64k(),
            CpuModel::arm1176_16k(),
        ] {
            assert_eq!(model.validate(), Ok(()), "{model:?}");
        }
    }

    /// A hand-built geometry (the fields are public) made `Sim::new`
    /// divide by zero or underflow `sets - 1`; `try_new` refuses it.
    #[test]
    fn models_the_simulation_cannot_run_are_refused() {
        let mut three_way = CpuModel::arm1136_32k();
        three_way.dcache.geometry.ways = 3;
        assert_eq!(
            Sim::try_new(three_way, 1 << 20).err(),
            Some(ModelError::Geometry {
                cache: "data",
                error: GeometryError::NotPowerOfTwo {
                    what: "ways",
                    value: 3
                }
            })
        );
        let mut no_lines = CpuModel::arm926();
        no_lines.icache.geometry.line_bytes = 0;
        assert!(matches!(
            Sim::try_new(no_lines, 1 << 20),
            Err(ModelError::Geometry {
                cache: "instruction",
                ..
            })
        ));
        let long = CpuModel::pipt(CacheGeometry::new(16 << 10, 4, 128).unwrap());
        let e = Sim::try_new(long, 1 << 20).err().unwrap();
        assert_eq!(e, ModelError::LineTooLong { line_bytes: 128 });
        assert_eq!(
            e.to_string(),
            "the model writes back D-cache lines of at most 64 bytes, not 128"
        );
        assert!(Sim::try_new(CpuModel::arm926(), 1 << 20).is_ok());
    }
}
