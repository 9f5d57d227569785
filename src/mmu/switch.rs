//! The context switch: one entry point that does what the cache
//! configuration needs, and reports what it did.
//!
//! | policy | cache | TLB | key |
//! |---|---|---|---|
//! | [`SwitchPolicy::VivtFlush`] (ARMv5, no key) | clean+invalidate D, invalidate I, drain | all | – |
//! | [`SwitchPolicy::VivtFcse`] (ARMv5, FCSE PIDs) | nothing, unless a PID was recycled or either side has no PID | all (the ARM926 TLB has no tags) | PID |
//! | [`SwitchPolicy::Asid`] (ARMv6, VIPT) | nothing | only at an ASID rollover | ASID |
//!
//! Why FCSE needs both sides keyed: a space without a PID (one that does
//! not fit in 32 MiB) reaches its lines at modified addresses anywhere,
//! including other spaces' PID windows, so the cache is flushed on the way
//! into or out of it.
//!
//! Register order. ARMv5: the PID goes to 0 before TTBR0 changes and takes
//! the new value after, so code below 32 MiB always runs at an address both
//! tables map the same way (the canonical entries). ARMv6: TTBR0 and the
//! ASID cannot change together, so TTBR0 first points at a reserved table
//! holding only global entries — a walk in between cannot load a non-global
//! entry under the wrong ASID.

use core::fmt;

use super::keys::{KeyAllocator, KeyOutcome};
use super::table::{PageTable, TableError, TableMemory};
use crate::addr::PhysAddr;
use crate::cache::{CacheMaintenance, MaintenanceError};

/// The registers a context switch writes.
pub trait TranslationRegisters {
    /// TTBR0 ← the L1 table at `table`.
    ///
    /// # Safety
    /// The table must map the running code, stack and data as the current
    /// one does.
    unsafe fn set_user_table(&mut self, table: PhysAddr);

    /// The address-space key ← `key`: the FCSE PID on ARMv5 (0 = none), the
    /// ASID in CONTEXTIDR on ARMv6.
    ///
    /// # Safety
    /// ARMv5: every address below 32 MiB is relocated by the new PID, and
    /// instructions the core fetched before the write completes were
    /// fetched with the old one ("like a branch with delayed execution",
    /// ARM720T TRM §3.3.9; the ARM926 TRM gives no count). The code that
    /// switches must run above 32 MiB, or be mapped at both places.
    unsafe fn set_context_key(&mut self, key: u8);

    /// The table-walk attributes (ARMv6 TTBR RGN, S, C bits) every TTBR
    /// write carries: none by default, on ARMv5, and in the model, which
    /// has no outer cache. See `arch::Armv6::with_table_walk`.
    fn table_walk(&self) -> crate::arch::regs::TableWalk {
        crate::arch::regs::TableWalk::empty()
    }
}

/// Which switch a configuration needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchPolicy {
    /// VIVT, no key: flush at every switch.
    VivtFlush,
    /// VIVT with FCSE PIDs.
    VivtFcse,
    /// VIPT with ASIDs.
    Asid,
}

/// What one switch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SwitchReport {
    /// The space was already current: nothing was done.
    pub already_current: bool,
    /// D-cache cleaned and invalidated, I-cache invalidated, write buffer drained.
    pub cache_flushed: bool,
    /// Whole TLB invalidated.
    pub tlb_flushed: bool,
    /// The key the space runs with (FCSE PID or ASID), if any.
    pub key: Option<u8>,
    /// What happened to its key.
    pub key_outcome: Option<KeyOutcome>,
}

/// Running totals, for the demo and the benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SwitchCounters {
    /// Switches asked for.
    pub switches: u64,
    /// Of those, to the space already running.
    pub already_current: u64,
    /// Switches that flushed the caches.
    pub cache_flushes: u64,
    /// Switches that flushed the whole TLB.
    pub tlb_flushes: u64,
    /// Key rollovers (ASID or PID generations).
    pub rollovers: u64,
}

/// A switch that could not be made; the previous space is still current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SwitchError {
    /// Rewriting the FCSE window of the incoming table failed.
    Table(TableError),
    /// A needed operation is missing on this CPU.
    Maintenance(MaintenanceError),
}

impl From<TableError> for SwitchError {
    fn from(e: TableError) -> Self {
        SwitchError::Table(e)
    }
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::Table(e) => write!(
                f,
                "the context switch was refused and the previous space still runs: {e}"
            ),
            SwitchError::Maintenance(e) => write!(
                f,
                "the context switch was refused and the previous space still runs: {e}"
            ),
        }
    }
}

/// The message includes the cause's, so a kernel printing one line loses
/// nothing; `source` gives the cause as a value.
impl core::error::Error for SwitchError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            SwitchError::Table(e) => Some(e),
            SwitchError::Maintenance(e) => Some(e),
        }
    }
}

/// The running space, as the switcher last left it.
#[derive(Clone, Copy, Debug)]
struct Running {
    table: PhysAddr,
    /// It runs under an FCSE PID (its lines are confined to its window).
    keyed: bool,
}

/// Switches address spaces.
#[derive(Debug)]
pub struct ContextSwitcher {
    policy: SwitchPolicy,
    keys: Option<KeyAllocator>,
    /// ARMv6: the global-only table TTBR0 holds while the ASID changes.
    reserved_table: PhysAddr,
    running: Option<Running>,
    counters: SwitchCounters,
}

impl ContextSwitcher {
    /// VIVT without keys: every switch flushes.
    pub fn vivt_flush() -> Self {
        Self::build(SwitchPolicy::VivtFlush, None, PhysAddr(0))
    }

    /// VIVT with FCSE PIDs from `pids` ([`KeyAllocator::fcse_pids`]).
    ///
    /// Switches between PID spaces do not flush the cache, which is only
    /// correct if everything the kernel *writes* while a PID is set lies at
    /// or above 32 MiB. The FCSE relocates every address below 32 MiB into
    /// the running PID's window, so a kernel stack, heap or `.data` there
    /// would sit in different VIVT lines under each PID, and the next PID
    /// would read stale memory. Link the kernel's writable sections above
    /// 32 MiB (vacmm's own test kernels do, see `qemu/bsp/memory.ld`; Linux runs at
    /// 0xC000_0000), or use [`ContextSwitcher::vivt_flush`]. Code and
    /// constants may stay low: their copies are all clean and equal.
    pub fn vivt_fcse(pids: KeyAllocator) -> Self {
        Self::build(SwitchPolicy::VivtFcse, Some(pids), PhysAddr(0))
    }

    /// ARMv6 ASIDs from `asids`; `reserved_table` (e.g. the kernel's table)
    /// must hold global entries only and map the switching code.
    pub fn asid(asids: KeyAllocator, reserved_table: PhysAddr) -> Self {
        Self::build(SwitchPolicy::Asid, Some(asids), reserved_table)
    }

    fn build(policy: SwitchPolicy, keys: Option<KeyAllocator>, reserved_table: PhysAddr) -> Self {
        ContextSwitcher {
            policy,
            keys,
            reserved_table,
            running: None,
            counters: SwitchCounters::default(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> SwitchPolicy {
        self.policy
    }

    /// The key allocator, if the policy uses keys.
    pub fn keys(&self) -> Option<&KeyAllocator> {
        self.keys.as_ref()
    }

    /// Totals so far.
    pub fn counters(&self) -> SwitchCounters {
        self.counters
    }

    /// Makes `next` the running address space.
    ///
    /// # Safety
    /// `next` must map the kernel (the running code, its stack, data and
    /// the table memory) exactly as the current table does, and the reserved
    /// table must too.
    pub unsafe fn switch_to<M>(
        &mut self,
        mem: &mut M,
        next: &mut PageTable,
    ) -> Result<SwitchReport, SwitchError>
    where
        M: TableMemory,
        M::Cache: TranslationRegisters,
    {
        self.counters.switches += 1;
        if self.running.is_some_and(|r| r.table == next.l1()) {
            self.counters.already_current += 1;
            return Ok(SwitchReport {
                already_current: true,
                key: next.key().value(),
                ..SwitchReport::default()
            });
        }
        // SAFETY: the caller's contract.
        let report = unsafe {
            match self.policy {
                SwitchPolicy::VivtFlush => self.switch_vivt(mem, next, None, true),
                SwitchPolicy::VivtFcse => self.switch_fcse(mem, next),
                SwitchPolicy::Asid => self.switch_asid(mem, next),
            }
        }?;
        if report.cache_flushed {
            self.counters.cache_flushes += 1;
        }
        if report.tlb_flushed {
            self.counters.tlb_flushes += 1;
        }
        if report.key_outcome == Some(KeyOutcome::RolledOver) {
            self.counters.rollovers += 1;
        }
        Ok(report)
    }

    /// An FCSE switch; a refused one leaves the PID allocator as it was.
    /// (`activate` records the incoming key as the running one and may roll
    /// the generation over; kept after a refusal, the next rollover would
    /// reserve the wrong PID and hand the one still running to another
    /// space.)
    unsafe fn switch_fcse<M>(
        &mut self,
        mem: &mut M,
        next: &mut PageTable,
    ) -> Result<SwitchReport, SwitchError>
    where
        M: TableMemory,
        M::Cache: TranslationRegisters,
    {
        let saved = self.keys.clone();
        // SAFETY: the caller's contract.
        let result = unsafe { self.try_switch_fcse(mem, next) };
        if result.is_err() {
            self.keys = saved;
        }
        result
    }

    unsafe fn try_switch_fcse<M>(
        &mut self,
        mem: &mut M,
        next: &mut PageTable,
    ) -> Result<SwitchReport, SwitchError>
    where
        M: TableMemory,
        M::Cache: TranslationRegisters,
    {
        let keys = self.keys.as_mut().expect("the FCSE policy always has keys");
        let outgoing_keyed = self.running.is_some_and(|r| r.keyed);
        if !next.fits_fcse_window() {
            next.set_fcse_window(mem, None)?;
            keys.deactivate();
            // SAFETY: the caller's contract.
            return unsafe { self.switch_vivt(mem, next, None, true) };
        }
        let mut key = next.key;
        let outcome = keys.activate(&mut key);
        let pid = key.value().expect("activate assigns a value");
        match next.set_fcse_window(mem, Some(pid)) {
            Ok(()) => next.key = key,
            // The table maps something in that PID's window: run it without
            // a PID. The full flush also covers a rollover that just happened.
            Err(TableError::WindowInUse { .. }) => {
                keys.deactivate();
                next.set_fcse_window(mem, None)?;
                // SAFETY: the caller's contract.
                let mut report = unsafe { self.switch_vivt(mem, next, None, true) }?;
                report.key_outcome = Some(outcome);
                return Ok(report);
            }
            Err(e) => return Err(e.into()),
        }
        let flush = !outgoing_keyed || outcome == KeyOutcome::RolledOver;
        // SAFETY: the caller's contract.
        let mut report = unsafe { self.switch_vivt(mem, next, Some(pid), flush) }?;
        report.key_outcome = Some(outcome);
        Ok(report)
    }

    /// The ARMv5 sequence: optional cache flush, PID 0, TTBR0, TLB, PID.
    unsafe fn switch_vivt<M>(
        &mut self,
        mem: &mut M,
        next: &PageTable,
        pid: Option<u8>,
        flush_cache: bool,
    ) -> Result<SwitchReport, SwitchError>
    where
        M: TableMemory,
        M::Cache: TranslationRegisters,
    {
        let cpu = mem.cache();
        if flush_cache {
            cpu.clean_invalidate_dcache_all();
            cpu.invalidate_icache_all();
            cpu.drain_write_buffer();
        }
        // SAFETY: PID 0 makes VA = MVA; both tables map the kernel alike
        // (caller's contract), so the code below keeps running. In this
        // instant an access below 32 MiB would walk `next`'s canonical
        // slots, which on ARMv5 do not hold entries made while it had a
        // PID (those live at its window): a kernel under FCSE runs above
        // 32 MiB (`Sim::set_kernel_offset`, `docs/embedding.md`), and
        // nothing here touches the low 32 MiB.
        unsafe {
            cpu.set_context_key(0);
            cpu.set_user_table(next.l1());
        }
        cpu.invalidate_tlb_all();
        if let Some(pid) = pid {
            // SAFETY: `next` holds its low 32 MiB at the PID's window
            // (`PageTable::set_fcse_window`), where the walker reads them now.
            unsafe { cpu.set_context_key(pid) };
        }
        cpu.synchronize_context();
        self.running = Some(Running {
            table: next.l1(),
            keyed: pid.is_some(),
        });
        Ok(SwitchReport {
            cache_flushed: flush_cache,
            tlb_flushed: true,
            key: pid,
            ..SwitchReport::default()
        })
    }

    unsafe fn switch_asid<M>(
        &mut self,
        mem: &mut M,
        next: &mut PageTable,
    ) -> Result<SwitchReport, SwitchError>
    where
        M: TableMemory,
        M::Cache: TranslationRegisters,
    {
        let keys = self.keys.as_mut().expect("the ASID policy always has keys");
        let outcome = keys.activate(&mut next.key);
        let asid = next.key.value().expect("activate assigns a value");
        let cpu = mem.cache();
        // SAFETY: the reserved table maps the kernel with global entries
        // only (constructor contract), so no entry loaded before the ASID
        // write can be tagged with the wrong ASID.
        unsafe { cpu.set_user_table(self.reserved_table) };
        cpu.synchronize_context();
        let rolled_over = outcome == KeyOutcome::RolledOver;
        if rolled_over {
            cpu.invalidate_tlb_all();
        }
        // SAFETY: as above; then the incoming table, which maps the kernel
        // as the reserved one does (caller's contract).
        unsafe {
            cpu.set_context_key(asid);
            cpu.synchronize_context();
            cpu.set_user_table(next.l1());
        }
        cpu.synchronize_context();
        self.running = Some(Running {
            table: next.l1(),
            keyed: true,
        });
        Ok(SwitchReport {
            tlb_flushed: rolled_over,
            key: Some(asid),
            key_outcome: Some(outcome),
            ..SwitchReport::default()
        })
    }
}
