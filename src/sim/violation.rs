//! What the oracle reports: who wrote a byte ([`Writer`], packed into the
//! per-byte tables), and the violations ([`ViolationKind`], [`Violation`]).

use std::fmt;

#[cfg(doc)]
use super::Sim;
use super::{Discarded, SpaceId, SpaceName};

/// Who made a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// Nobody yet: memory's initial contents.
    Initial,
    /// A CPU store in `space` at virtual address `va`.
    Cpu {
        /// The space the store was made in.
        space: SpaceId,
        /// The virtual address it was made through.
        va: u32,
        /// The address of the storing instruction, when the driver of the
        /// model knows it (see [`Sim::set_site`]); scenarios leave it `None`.
        pc: Option<u32>,
    },
    /// A DMA master.
    Dma,
    /// Nobody: the owner declared the bytes dead (`Sim::declare_dead`).
    Dead,
}

/// The version and author of a byte's newest value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Truth {
    pub(super) version: u64,
    pub(super) writer: Writer,
}

/// A [`Writer`] packed into 128 bits whose all-zero value is
/// [`Writer::Initial`], so the per-byte table can be allocated zeroed: the
/// OS then commits only the pages a run touches (a QEMU guest's 128 MiB of
/// RAM would otherwise cost gigabytes up front).
///
/// Bits: 0..2 kind (0 Initial, 1 Cpu, 2 Dma, 3 Dead), 2 pc present,
/// 16..32 space, 32..64 va, 64..96 pc.
pub(super) fn pack_writer(writer: Writer) -> u128 {
    match writer {
        Writer::Initial => 0,
        Writer::Cpu { space, va, pc } => {
            let pc_bits = pc.map_or(0, |pc| (1u128 << 2) | (u128::from(pc) << 64));
            1 | pc_bits | (u128::from(space.0) << 16) | (u128::from(va) << 32)
        }
        Writer::Dma => 2,
        Writer::Dead => 3,
    }
}

pub(super) fn unpack_writer(bits: u128) -> Writer {
    match bits & 3 {
        0 => Writer::Initial,
        1 => Writer::Cpu {
            space: SpaceId((bits >> 16) as u16),
            va: (bits >> 32) as u32,
            pc: (bits & (1 << 2) != 0).then_some((bits >> 64) as u32),
        },
        2 => Writer::Dma,
        _ => Writer::Dead,
    }
}

/// What went wrong. More kinds may come (the model learns to see more):
/// a `match` needs a catch-all arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// A CPU load returned an older value than the last store.
    StaleRead,
    /// A CPU load returned a stale line after a DMA master wrote memory.
    StaleReadAfterDma,
    /// A VIVT hit returned a line of another physical page whose data was
    /// last written in another address space (no flush at context switch,
    /// or a reused process key).
    CrossSpaceLeak {
        /// The physical line the data came from.
        line_pa: u32,
    },
    /// A VIVT hit returned a line of another physical page filled in this
    /// address space before the virtual page was remapped (exec, COW break).
    RemappedLineHit {
        /// The physical line the data came from.
        line_pa: u32,
    },
    /// A dirty line holding the only copy of the newest data was invalidated.
    DirtyLineDiscarded,
    /// A line was written back over newer data in memory.
    StaleWriteBack,
    /// An instruction fetch returned an older value than the last store.
    StaleFetch,
    /// A DMA master read memory older than the last CPU store.
    DmaReadStaleMemory,
    /// A table walk read a descriptor that was not cleaned to memory.
    StaleTableWalk,
    /// An access used a TLB entry that a fresh walk of the current tables
    /// would not give: a descriptor changed without a TLB flush, an ASID
    /// reused (or invalidated by the wrong ASID) without one, a missing
    /// flush at ASID rollover. `pa` is the physical address the stale
    /// entry gave.
    StaleTlbEntry {
        /// The physical address a fresh walk gives (`None`: unmapped).
        walked_pa: Option<u32>,
    },
    /// Reported only when asked for ([`Sim::report_live_aliases`]): one
    /// physical line is in the D-cache under two virtual addresses and at
    /// least one of the two is dirty, so one of them is or is about to be
    /// stale, whether or not a later read or eviction shows it. The
    /// violation's address is the line just filled or dirtied.
    LiveAlias {
        /// The other line's virtual address.
        other_va: u32,
    },
}

/// One incoherence the oracle found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What happened.
    pub kind: ViolationKind,
    /// The scenario operation (1-based count of operations) that saw it.
    pub operation: u64,
    /// The space that made the access, if a CPU did.
    pub space: Option<SpaceId>,
    /// The virtual address of the access or line, if any.
    pub va: Option<u32>,
    /// The physical address of the first wrong byte.
    pub pa: u32,
    /// The newest store to that byte, and who made it.
    pub last_writer: Writer,
    /// Its version.
    pub last_version: u64,
    /// The version the access got (or the line held).
    pub seen_version: u64,
    /// A [`ViolationKind::DirtyLineDiscarded`] reported late (see
    /// [`Sim::defer_discard_reports`]): where the line was discarded. The
    /// violation's own operation, space and address are the read's that
    /// found the loss. `None` for every other report.
    pub discarded: Option<Discarded>,
    /// A [`ViolationKind::StaleWriteBack`]: the last store into the line
    /// written back (who dirtied the stale copy), where the model knows
    /// it. `None` for every other report.
    pub line_writer: Option<Writer>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "operation {} at physical address {:#010x}",
            self.operation, self.pa
        )?;
        if let (Some(space), Some(va)) = (self.space, self.va) {
            write!(f, " ({}, virtual address {va:#010x})", SpaceName(space))?;
        }
        f.write_str(": ")?;
        match self.kind {
            ViolationKind::StaleRead => f.write_str("a CPU load returned stale data")?,
            ViolationKind::StaleReadAfterDma => {
                f.write_str("a CPU load returned stale data after a DMA write")?
            }
            ViolationKind::CrossSpaceLeak { line_pa } => write!(
                f,
                "a cache hit returned another space's data (physical line {line_pa:#010x})"
            )?,
            ViolationKind::RemappedLineHit { line_pa } => write!(
                f,
                "a cache hit returned a line of the page mapped there before (physical line \
                 {line_pa:#010x})"
            )?,
            ViolationKind::DirtyLineDiscarded => f.write_str(
                "a dirty line holding the only copy of the newest data was invalidated",
            )?,
            ViolationKind::StaleWriteBack => {
                f.write_str("a line was written back over newer data in memory")?
            }
            ViolationKind::StaleFetch => {
                f.write_str("an instruction fetch returned older code than the last store")?
            }
            ViolationKind::DmaReadStaleMemory => {
                f.write_str("a DMA read found memory older than the last CPU store")?
            }
            ViolationKind::StaleTableWalk => {
                f.write_str("a table walk read a descriptor that was not cleaned to memory")?
            }
            ViolationKind::StaleTlbEntry {
                walked_pa: Some(walked),
            } => write!(
                f,
                "an access used a stale TLB entry (a fresh walk gives {walked:#010x})"
            )?,
            ViolationKind::StaleTlbEntry { walked_pa: None } => {
                f.write_str("an access used a stale TLB entry (a fresh walk finds no mapping)")?
            }
            ViolationKind::LiveAlias { other_va } => write!(
                f,
                "the physical line is also cached at virtual address {other_va:#010x}, and one \
                 of the two is dirty"
            )?,
        }
        write!(
            f,
            "; it saw version {}, but the newest, version {}, ",
            self.seen_version, self.last_version
        )?;
        match self.last_writer {
            Writer::Initial => f.write_str("is memory's initial contents"),
            Writer::Cpu { space, va, pc } => {
                f.write_str("was stored ")?;
                if let Some(pc) = pc {
                    write!(f, "by the instruction at {pc:#010x} ")?;
                }
                write!(f, "in {} at virtual address {va:#010x}", SpaceName(space))
            }
            Writer::Dma => f.write_str("was written by a DMA master"),
            Writer::Dead => f.write_str("was declared dead by its owner"),
        }?;
        if let Some(at) = self.discarded {
            write!(
                f,
                "; the dirty line holding it was discarded at operation {} ({}, virtual \
                 address {:#010x}",
                at.operation,
                SpaceName(at.space),
                at.va
            )?;
            if let Some(pc) = at.pc {
                write!(f, ", by the instruction at {pc:#010x}")?;
            }
            f.write_str(")")?;
        }
        if let Some(Writer::Cpu { space, va, pc }) = self.line_writer {
            f.write_str("; the line written back was last stored into ")?;
            if let Some(pc) = pc {
                write!(f, "by the instruction at {pc:#010x} ")?;
            }
            write!(f, "in {} at virtual address {va:#010x}", SpaceName(space))?;
        }
        Ok(())
    }
}
