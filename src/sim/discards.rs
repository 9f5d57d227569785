//! Deferred reports of discarded dirty lines ([`Sim::defer_discard_reports`]).
//!
//! Invalidating a dirty line that holds the only copy of the newest data
//! loses that data, but the loss matters only if someone reads a lost byte
//! before it is overwritten. Kernels invalidate lines they are about to
//! overwrite whole on purpose: Linux's ARMv4/v5 `v4wb_copy_user_highpage`
//! and `v4wb_clear_user_highpage` (arch/arm/mm/copypage-v4wb.c) invalidate
//! each kernel-alias line of the destination (`mcr p15, 0, r0, c7, c6, 1`)
//! just before storing the whole line, so that the stores allocate no
//! line fill. An immediate report there is a false positive.
//!
//! Deferred, the model remembers the lost bytes (line by line, with the
//! version lost and where) and reports [`ViolationKind::DirtyLineDiscarded`]
//! only when a read — a CPU load or fetch, a DMA read, a table walk —
//! returns an older version of a byte whose newest version was lost: the
//! report names the discard ([`Violation::discarded`]) and comes beside the
//! stale read itself. A byte stored again is forgotten lazily: its truth
//! moves past the lost version, so the record no longer matches.
//!
//! [`Sim::defer_discard_reports`]: super::Sim::defer_discard_reports
//! [`ViolationKind::DirtyLineDiscarded`]: super::ViolationKind::DirtyLineDiscarded
//! [`Violation::discarded`]: super::Violation::discarded

use rustc_hash::FxHashMap;

use super::SpaceId;
use super::write_buffer::MAX_LINE;

/// Where a dirty line was discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Discarded {
    /// The model operation that discarded it.
    pub operation: u64,
    /// The virtual address of the line (its tag).
    pub va: u32,
    /// The guest PC of the maintenance, if the model knows it.
    pub pc: Option<u32>,
    /// The space current at the discard.
    pub space: SpaceId,
}

/// One discarded line: the version each byte lost (0: none lost).
#[derive(Clone, Debug)]
struct Line {
    lost: [u64; MAX_LINE],
    at: Discarded,
    /// Already reported once: later stale reads of it are only stale reads.
    reported: bool,
}

/// The lines discarded with live data, by physical line address: several
/// discards of one physical line (two VIVT aliases, or a line discarded,
/// refilled and discarded again) each keep their own record.
#[derive(Debug, Default)]
pub struct DeferredDiscards {
    lines: FxHashMap<u32, Vec<Line>>,
    line_bytes: u32,
    /// Records held after the last pruning: the next prunes at twice this.
    kept: usize,
}

/// Lines with records before the first pruning of the stale ones (see
/// [`DeferredDiscards::record`]); later prunings wait until the map has
/// doubled, so that pruning stays linear overall.
const PRUNE_AT: usize = 1 << 16;

impl DeferredDiscards {
    pub fn new(line_bytes: u32) -> Self {
        DeferredDiscards {
            lines: FxHashMap::default(),
            line_bytes,
            kept: PRUNE_AT / 2,
        }
    }

    /// Remembers that the line at `line_pa` lost `lost[k]` (the newest
    /// version of byte k; 0 where nothing was lost). `live` says whether a
    /// byte's lost version is still the newest, for pruning.
    pub fn record(
        &mut self,
        line_pa: u32,
        lost: [u64; MAX_LINE],
        at: Discarded,
        live: impl Fn(u32, u64) -> bool,
    ) {
        if self.lines.len() >= 2 * self.kept {
            let n = self.line_bytes as usize;
            self.lines.retain(|&pa, records| {
                records.retain(|line| {
                    !line.reported
                        && (0..n).any(|k| line.lost[k] != 0 && live(pa + k as u32, line.lost[k]))
                });
                !records.is_empty()
            });
            self.kept = self.lines.len().max(PRUNE_AT / 2);
        }
        self.lines.entry(line_pa).or_default().push(Line {
            lost,
            at,
            reported: false,
        });
    }

    /// Whether a line with records holds some of the `len` bytes from `pa`.
    pub fn covers(&self, pa: u32, len: u32) -> bool {
        let first = pa & !(self.line_bytes - 1);
        (first..pa + len)
            .step_by(self.line_bytes as usize)
            .any(|line| self.lines.contains_key(&line))
    }

    /// The physical lines with records.
    pub fn lines(&self) -> impl Iterator<Item = u32> + '_ {
        self.lines.keys().copied()
    }

    /// If the newest version of byte `pa`, `newest`, is one a discard lost
    /// and that discard was not reported yet: where it happened (and it
    /// counts as reported from now on).
    pub fn cause(&mut self, pa: u32, newest: u64) -> Option<Discarded> {
        if self.lines.is_empty() {
            return None;
        }
        let line_pa = pa & !(self.line_bytes - 1);
        let k = (pa - line_pa) as usize;
        let line = self
            .lines
            .get_mut(&line_pa)?
            .iter_mut()
            .rev()
            .find(|line| !line.reported && line.lost[k] != 0 && line.lost[k] == newest)?;
        line.reported = true;
        Some(line.at)
    }
}
