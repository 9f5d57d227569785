//! The maintenance interface every policy in vacmm is generic over.
//!
//! Implemented by the hardware backends ([`crate::arch::Arm926`],
//! [`crate::arch::Armv6`]) and by the host-side cache model, so the same
//! coherence code runs on a board, in QEMU and against the oracle.
//!
//! The required methods are the primitives every ARMv5/ARMv6 CPU has; the
//! range methods are provided on top of them (bounded by the whole-cache
//! threshold) and a backend with block operations overrides them. What only
//! ARMv6 has (TLB maintenance by ASID) returns
//! [`MaintenanceError::NotOnThisCpu`] elsewhere instead of executing an
//! undefined instruction.

use core::fmt;

use super::id::{CpuPart, MainId};
use super::info::CacheInfo;
use super::range::{Lines, RangePlan};
use crate::addr::{VirtAddr, VirtRange};
use crate::arch::profile::UnsupportedCore;

/// What a range operation did (the cost counters and the tests read it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// The range was empty.
    Nothing,
    /// One operation per line, this many lines.
    Lines(usize),
    /// One block (MCRR range) operation (ARMv6).
    Block,
    /// The range reached the threshold: one whole-cache operation.
    WholeCache,
}

/// A maintenance request the CPU cannot carry out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaintenanceError {
    /// The operation does not exist on this CPU (e.g. TLB invalidate by ASID on ARMv5).
    NotOnThisCpu {
        /// The operation asked for.
        operation: &'static str,
        /// The CPU it was asked of.
        cpu: CpuPart,
    },
    /// A set/way operation named a set or way the cache does not have.
    SetWayOutOfRange {
        /// Set asked for.
        set: usize,
        /// Way asked for.
        way: usize,
        /// Sets the D-cache has.
        sets: usize,
        /// Ways the D-cache has.
        ways: usize,
    },
    /// A backend was created on a CPU it does not drive.
    WrongCpu {
        /// The backend.
        backend: &'static str,
        /// The CPU found.
        midr: MainId,
    },
    /// Neither backend drives this core (an ARM920T, an XScale, a Cortex-A).
    UnsupportedCore(UnsupportedCore),
}

impl fmt::Display for MaintenanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaintenanceError::NotOnThisCpu { operation, cpu } => {
                write!(f, "the {operation} operation does not exist on the {cpu}")
            }
            MaintenanceError::SetWayOutOfRange {
                set,
                way,
                sets,
                ways,
            } => write!(
                f,
                "set {set}, way {way} is outside the D-cache, which has {sets} sets of {ways} ways"
            ),
            MaintenanceError::WrongCpu { backend, midr } => {
                write!(f, "the {backend} backend cannot drive the {midr}")
            }
            MaintenanceError::UnsupportedCore(core) => core.fmt(f),
        }
    }
}

/// The message includes the cause's, so a kernel printing one line loses
/// nothing; `source` gives the cause as a value.
impl core::error::Error for MaintenanceError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            MaintenanceError::UnsupportedCore(e) => Some(e),
            _ => None,
        }
    }
}

/// Cache, write-buffer and TLB maintenance of one CPU (or of the model).
///
/// Line operations take any address inside the line. Range operations cover
/// partial first and last lines whole and finish with a write-buffer drain,
/// so the maintenance has completed when they return.
pub trait CacheMaintenance {
    /// The caches this instance maintains.
    fn info(&self) -> &CacheInfo;

    /// Writes the D-cache line holding `va` back to memory if dirty; keeps it.
    fn clean_dcache_line(&mut self, va: VirtAddr);

    /// Writes the line back if dirty, then drops it.
    fn clean_invalidate_dcache_line(&mut self, va: VirtAddr);

    /// Drops the D-cache line holding `va` without writing it back.
    ///
    /// # Safety
    /// Dirty data in the whole line is lost, including bytes the caller does
    /// not own: the caller must know the line holds nothing worth keeping
    /// (e.g. the whole line belongs to a buffer a device is about to fill).
    unsafe fn invalidate_dcache_line(&mut self, va: VirtAddr);

    /// Writes every dirty D-cache line back to memory.
    fn clean_dcache_all(&mut self);

    /// Writes every dirty D-cache line back and empties the D-cache.
    fn clean_invalidate_dcache_all(&mut self);

    /// Drops the I-cache line holding `va`.
    fn invalidate_icache_line(&mut self, va: VirtAddr);

    /// Empties the I-cache (and, on ARMv6, the branch target cache).
    fn invalidate_icache_all(&mut self);

    /// Waits until the write buffer has drained and earlier maintenance has
    /// completed (ARMv6: the CP15 DSB).
    fn drain_write_buffer(&mut self);

    /// Drops every TLB entry.
    fn invalidate_tlb_all(&mut self);

    /// Drops the TLB entries for the page holding `va` (ARMv6: global
    /// entries and those of ASID 0).
    fn invalidate_tlb_page(&mut self, va: VirtAddr);

    /// Drops the TLB entries tagged with `asid` (ARMv6 only).
    fn invalidate_tlb_asid(&mut self, asid: u8) -> Result<(), MaintenanceError> {
        let _ = asid;
        Err(MaintenanceError::NotOnThisCpu {
            operation: "TLB invalidate by ASID",
            cpu: self.info().midr.part(),
        })
    }

    /// Drops the TLB entries for the page holding `va` that are global or
    /// tagged with `asid` (ARMv6: c8,c7,1 with the ASID in bits \[7:0\]).
    fn invalidate_tlb_page_asid(&mut self, va: VirtAddr, asid: u8) -> Result<(), MaintenanceError> {
        let _ = (va, asid);
        Err(MaintenanceError::NotOnThisCpu {
            operation: "TLB invalidate by MVA and ASID",
            cpu: self.info().midr.part(),
        })
    }

    /// Flushes the branch target cache (ARMv6 c7,c5,6). Invalidating an I
    /// line by MVA does not flush it, the whole-I-cache invalidate and
    /// [`synchronize_context`](Self::synchronize_context) do on ARMv6.
    /// Nothing on CPUs without one (the default).
    fn flush_branch_target_cache(&mut self) {}

    /// Makes translation-table, TLB and context-register changes visible to
    /// the instructions that follow: ARMv5 drains the write buffer; ARMv6
    /// also flushes the branch target cache and the prefetch buffer (DSB,
    /// BTC flush, ISB).
    fn synchronize_context(&mut self) {
        self.drain_write_buffer();
    }

    /// Cleans the D-cache lines covering `range`, or the whole D-cache when
    /// the range reaches the threshold.
    fn clean_dcache_range(&mut self, range: VirtRange) -> RangeOutcome {
        clean_dcache_range_by_lines(self, range)
    }

    /// Cleans and invalidates the D-cache lines covering `range`.
    fn clean_invalidate_dcache_range(&mut self, range: VirtRange) -> RangeOutcome {
        clean_invalidate_dcache_range_by_lines(self, range)
    }

    /// Invalidates the D-cache over `range` without losing anything outside
    /// it: a partially covered first or last line is cleaned and invalidated
    /// (its other bytes may hold dirty data: seed 003), and a range that
    /// reaches the threshold cleans and invalidates the whole cache rather
    /// than discarding it.
    ///
    /// # Safety
    /// Dirty data inside `range` is lost; the caller owns those bytes.
    unsafe fn invalidate_dcache_range(&mut self, range: VirtRange) -> RangeOutcome {
        // SAFETY: this method's contract.
        unsafe { invalidate_dcache_range_by_lines(self, range) }
    }

    /// Invalidates the I-cache lines covering `range`, then flushes the
    /// branch target cache, which invalidating a line by MVA leaves alone
    /// (the whole I-cache past the threshold, which flushes it).
    fn invalidate_icache_range(&mut self, range: VirtRange) -> RangeOutcome {
        invalidate_icache_range_by_lines(self, range)
    }
}

// The range operations as per-line loops: the trait's provided methods, and
// what a backend whose core lacks block operations calls from its override
// (the ARM11 MPCore, an ARM1136 with ACTLR.RV set).

/// [`CacheMaintenance::clean_dcache_range`] one line at a time.
pub(crate) fn clean_dcache_range_by_lines<M: CacheMaintenance + ?Sized>(
    m: &mut M,
    range: VirtRange,
) -> RangeOutcome {
    dcache_range_by_lines(m, range, M::clean_dcache_line, M::clean_dcache_all)
}

/// [`CacheMaintenance::clean_invalidate_dcache_range`] one line at a time.
pub(crate) fn clean_invalidate_dcache_range_by_lines<M: CacheMaintenance + ?Sized>(
    m: &mut M,
    range: VirtRange,
) -> RangeOutcome {
    dcache_range_by_lines(
        m,
        range,
        M::clean_invalidate_dcache_line,
        M::clean_invalidate_dcache_all,
    )
}

/// `line` on each D line of `range`, or `whole` past the threshold.
fn dcache_range_by_lines<M: CacheMaintenance + ?Sized>(
    m: &mut M,
    range: VirtRange,
    line: fn(&mut M, VirtAddr),
    whole: fn(&mut M),
) -> RangeOutcome {
    let plan = plan_dcache(m.info(), range);
    run_plan(m, plan, |m, lines| each_line(m, lines, line), whole)
}

/// [`CacheMaintenance::invalidate_dcache_range`] one line at a time.
///
/// # Safety
/// As the trait method: dirty data inside `range` is lost.
pub(crate) unsafe fn invalidate_dcache_range_by_lines<M: CacheMaintenance + ?Sized>(
    m: &mut M,
    range: VirtRange,
) -> RangeOutcome {
    let plan = plan_dcache(m.info(), range);
    let by_lines = |m: &mut M, lines: Lines| {
        let n = lines.len();
        let (first, last) = (lines.first_line(), lines.last_line());
        let (first_partial, last_partial) = (lines.first_is_partial(), lines.last_is_partial());
        for va in lines {
            if (va == first && first_partial) || (va == last && last_partial) {
                m.clean_invalidate_dcache_line(va);
            } else {
                // SAFETY: the whole line lies inside `range`, which the
                // caller gave up (this function's contract).
                unsafe { m.invalidate_dcache_line(va) };
            }
        }
        RangeOutcome::Lines(n)
    };
    run_plan(m, plan, by_lines, M::clean_invalidate_dcache_all)
}

/// [`CacheMaintenance::invalidate_icache_range`] one line at a time, then
/// the branch target cache.
pub(crate) fn invalidate_icache_range_by_lines<M: CacheMaintenance + ?Sized>(
    m: &mut M,
    range: VirtRange,
) -> RangeOutcome {
    let plan = plan_icache(m.info(), range);
    run_plan(
        m,
        plan,
        |m, lines| {
            let outcome = each_line(m, lines, M::invalidate_icache_line);
            m.flush_branch_target_cache();
            outcome
        },
        M::invalidate_icache_all,
    )
}

/// Carries out `plan`: `by_lines` for a line plan, `whole` for a whole-cache
/// one, then drains the write buffer so the maintenance has completed.
pub(crate) fn run_plan<M: CacheMaintenance + ?Sized>(
    m: &mut M,
    plan: RangePlan,
    by_lines: impl FnOnce(&mut M, Lines) -> RangeOutcome,
    whole: impl FnOnce(&mut M),
) -> RangeOutcome {
    let outcome = match plan {
        RangePlan::Nothing => RangeOutcome::Nothing,
        RangePlan::Lines(lines) => by_lines(m, lines),
        RangePlan::WholeCache => {
            whole(m);
            RangeOutcome::WholeCache
        }
    };
    m.drain_write_buffer();
    outcome
}

/// Applies a line operation to every line.
fn each_line<M: ?Sized>(m: &mut M, lines: Lines, op: impl Fn(&mut M, VirtAddr)) -> RangeOutcome {
    let n = lines.len();
    lines.for_each(|va| op(m, va));
    RangeOutcome::Lines(n)
}

/// The I-cache plan for `range` under `info`'s line size and threshold.
pub(crate) fn plan_icache(info: &CacheInfo, range: VirtRange) -> RangePlan {
    plan(range, info.icache.line_bytes, info.whole_cache_threshold())
}

/// The D-cache plan for `range` under `info`'s line size and threshold.
pub(crate) fn plan_dcache(info: &CacheInfo, range: VirtRange) -> RangePlan {
    plan(range, info.dcache.line_bytes, info.whole_cache_threshold())
}

/// The plan for `range`. A geometry's fields are public, so its line size
/// may be one no cache has (not a power of two, or past u32): such lines
/// cannot be walked, and the whole-cache operation, correct for any range,
/// is done instead.
fn plan(range: VirtRange, line_bytes: usize, threshold: u64) -> RangePlan {
    if range.is_empty() {
        return RangePlan::Nothing;
    }
    u32::try_from(line_bytes)
        .ok()
        .and_then(|line| RangePlan::new(range, line, threshold).ok())
        .unwrap_or(RangePlan::WholeCache)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::cache::{CacheGeometry, MainId};

    /// Records every primitive called, to check what the provided range
    /// methods ask of a backend.
    struct Recorder {
        info: CacheInfo,
        ops: Vec<(&'static str, u32)>,
    }

    impl Recorder {
        fn new(midr: u32) -> Self {
            let g = CacheGeometry::new(16 << 10, 4, 32).unwrap();
            let info = CacheInfo::from_registers(MainId::from_raw(midr), 0x1d15_2152)
                .unwrap()
                .with_dcache(g);
            Recorder {
                info,
                ops: Vec::new(),
            }
        }
    }

    impl CacheMaintenance for Recorder {
        fn info(&self) -> &CacheInfo {
            &self.info
        }
        fn clean_dcache_line(&mut self, va: VirtAddr) {
            self.ops.push(("clean", va.0));
        }
        fn clean_invalidate_dcache_line(&mut self, va: VirtAddr) {
            self.ops.push(("clean+inv", va.0));
        }
        unsafe fn invalidate_dcache_line(&mut self, va: VirtAddr) {
            self.ops.push(("inv", va.0));
        }
        fn clean_dcache_all(&mut self) {
            self.ops.push(("clean all", 0));
        }
        fn clean_invalidate_dcache_all(&mut self) {
            self.ops.push(("clean+inv all", 0));
        }
        fn invalidate_icache_line(&mut self, va: VirtAddr) {
            self.ops.push(("inv I", va.0));
        }
        fn invalidate_icache_all(&mut self) {
            self.ops.push(("inv I all", 0));
        }
        fn drain_write_buffer(&mut self) {
            self.ops.push(("drain", 0));
        }
        fn invalidate_tlb_all(&mut self) {
            self.ops.push(("tlb all", 0));
        }
        fn invalidate_tlb_page(&mut self, va: VirtAddr) {
            self.ops.push(("tlb page", va.0));
        }
    }

    fn range(start: u32, len: u64) -> VirtRange {
        VirtRange::new(VirtAddr(start), len).unwrap()
    }

    #[test]
    fn invalidate_range_never_discards_bytes_outside_it() {
        let mut r = Recorder::new(0x4106_9265);
        // 0x1010..0x1070: lines 0x1000 (partial), 0x1020, 0x1040, 0x1060 (partial).
        let outcome = unsafe { r.invalidate_dcache_range(range(0x1010, 0x60)) };
        assert_eq!(outcome, RangeOutcome::Lines(4));
        assert_eq!(
            r.ops,
            [
                ("clean+inv", 0x1000),
                ("inv", 0x1020),
                ("inv", 0x1040),
                ("clean+inv", 0x1060),
                ("drain", 0)
            ]
        );
    }

    #[test]
    fn large_invalidate_cleans_the_whole_cache_instead_of_discarding_it() {
        let mut r = Recorder::new(0x4106_9265);
        let outcome = unsafe { r.invalidate_dcache_range(range(0x10_0000, 1 << 20)) };
        assert_eq!(outcome, RangeOutcome::WholeCache);
        assert_eq!(r.ops, [("clean+inv all", 0), ("drain", 0)]);
    }

    #[test]
    fn clean_range_walks_lines_below_the_threshold_and_drains() {
        let mut r = Recorder::new(0x4106_9265);
        assert_eq!(
            r.clean_dcache_range(range(0x2000, 0x40)),
            RangeOutcome::Lines(2)
        );
        assert_eq!(r.ops, [("clean", 0x2000), ("clean", 0x2020), ("drain", 0)]);
        r.ops.clear();
        assert_eq!(
            r.clean_dcache_range(range(0x2000, 0)),
            RangeOutcome::Nothing
        );
        assert_eq!(
            r.invalidate_icache_range(range(0, 16 << 10)),
            RangeOutcome::WholeCache
        );
        assert_eq!(r.ops, [("drain", 0), ("inv I all", 0), ("drain", 0)]);
    }

    #[test]
    fn asid_operations_are_typed_errors_on_armv5() {
        let mut r = Recorder::new(0x4106_9265);
        assert_eq!(
            r.invalidate_tlb_asid(5),
            Err(MaintenanceError::NotOnThisCpu {
                operation: "TLB invalidate by ASID",
                cpu: CpuPart::Arm926
            })
        );
        assert!(r.ops.is_empty());
    }

    #[test]
    fn a_line_size_no_cache_has_falls_back_to_the_whole_cache() {
        let mut r = Recorder::new(0x4106_9265);
        for line_bytes in [0, 24, usize::MAX] {
            r.info.dcache.line_bytes = line_bytes;
            r.info.icache.line_bytes = line_bytes;
            r.ops.clear();
            assert_eq!(
                r.clean_dcache_range(range(0x2000, 0x40)),
                RangeOutcome::WholeCache
            );
            assert_eq!(
                unsafe { r.invalidate_dcache_range(range(0x2000, 0x40)) },
                RangeOutcome::WholeCache
            );
            assert_eq!(
                r.invalidate_icache_range(range(0x2000, 0)),
                RangeOutcome::Nothing
            );
            assert_eq!(
                r.ops,
                [
                    ("clean all", 0),
                    ("drain", 0),
                    ("clean+inv all", 0),
                    ("drain", 0),
                    ("drain", 0)
                ]
            );
        }
    }

    #[test]
    fn the_provided_context_synchronisation_drains_the_write_buffer() {
        // ARMv5 has no barrier instructions: draining is what makes a
        // descriptor or context change visible (ARM926EJ-S TRM, "Drain
        // write buffer"); a backend that keeps the default gets that.
        let mut r = Recorder::new(0x4106_9265);
        r.synchronize_context();
        assert_eq!(r.ops, [("drain", 0)]);
    }

    #[test]
    fn an_unsupported_core_is_the_source_of_its_error() {
        use core::error::Error as _;
        let core = crate::arch::profile::CoreProfile::for_core(MainId::from_raw(0x4112_9200))
            .expect_err("the ARM920T has no profile");
        let e = MaintenanceError::UnsupportedCore(core);
        let source = e.source().expect("the core's error");
        assert_eq!(std::format!("{source}"), std::format!("{core}"));
    }
}
