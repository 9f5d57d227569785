//! The sanitizer without QEMU: guest events in, vacmm's cache model and
//! oracle in the middle, reports out. `plugin.rs` turns QEMU's callbacks
//! into these calls; the tests below drive it directly.
//!
//! ```text
//!   on_access(pc, va, pa, size, value)   QEMU's physical address; memory type
//!   on_fetch(pc, size)                   and nG from the guest's own tables,
//!   on_cp15(pc, op, Rt, Rt2)             walked through the model (TLB below)
//!        │                                  │
//!        ▼                                  ▼
//!   Regime (SCTLR, TTBR0/1, TTBCR, FCSE, CONTEXTIDR) ─ Tlb ─ Sim (caches, oracle)
//!        │                                                     │ violations
//!        └──────────────────────────── Reporter ◄──────────────┘
//! ```
//!
//! The model keeps a TLB of its own, filled by walks of the *model's*
//! memory (so a descriptor still dirty in the modelled D-cache is a
//! `StaleTableWalk`, and the walk sees what the hardware walker would) and
//! emptied only by the guest's TLB operations. QEMU's own translation gives
//! the physical address of every data access; where the two disagree the
//! model walks again (counted as a TLB disagreement).

use std::io::Write;

use rustc_hash::{FxHashMap, FxHashSet};
use vacmm::addr::{PhysAddr, VirtAddr};
use vacmm::cache::CacheMaintenance;
use vacmm::mmu::{Arch, HwAttrs, TableError, walk};
use vacmm::sim::{
    KERNEL, LineOp, MemType, Sim, SpaceId, Translated, Violation, ViolationKind, Writer,
};

use crate::args::{Config, GuestArch};
use crate::cp15::{Action, Cp15};
use crate::symbols::Symbols;

mod report;
mod translation;

pub use self::report::{During, Finding, kind_name};
use self::report::{Reporter, Site};
use self::translation::{Regime, TlbEntry};

/// Entries of the engine's translation memo.
const RECENT: usize = 256;
const PAGE: u32 = 4096;
const SCTLR_M: u32 = 1 << 0;
const SCTLR_C: u32 = 1 << 2;
const SCTLR_I: u32 = 1 << 12;
const SCTLR_XP: u32 = 1 << 23;
/// FCSE relocates virtual addresses below 32 MiB.
const FCSE_WINDOW: u32 = 32 << 20;
/// A block (MCRR) operation longer than this is clamped: it would take the
/// model longer than the guest meant it to (the CPU bounds them too).
const MAX_BLOCK_BYTES: u32 = 16 << 20;

/// What the plugin saw besides the model's own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// CP15 operations applied to the model.
    pub cp15_ops: u64,
    /// Conditional CP15 operations whose condition failed (not applied).
    pub cp15_skipped: u64,
    /// Table walks the model made.
    pub walks: u64,
    /// Accesses to devices (not modelled).
    pub io: u64,
    /// Accesses outside the modelled RAM.
    pub outside_ram: u64,
    /// Accesses and fetches whose address the model's walk could not
    /// translate (modelled as uncached).
    pub unwalkable: u64,
    /// Model TLB entries whose physical address disagreed with QEMU's
    /// (a missing TLB invalidate, or QEMU's TLB flushed more than the
    /// hardware's would).
    pub tlb_disagreements: u64,
    /// Bytes of unaligned accesses that crossed into the next page (not modelled).
    pub unaligned_crossing: u64,
    /// Bytes the guest declared dead (`vacmm::arch::annotate`).
    pub dead_declared: u64,
    /// Cache maintenance operations ignored inside `omit=` functions.
    pub omitted: u64,
    /// The guest set ACTLR.CZ with a model larger than 16 KiB (noted once).
    pub actlr_cz_noted: bool,
}

/// The sanitizer's state.
pub struct Engine {
    sim: Sim,
    config: Config,
    regime: Regime,
    tlb: FxHashMap<(u32, u16), TlbEntry>,
    /// The last translations, direct-mapped by page, with the epoch they
    /// were made at: every access looks here first, and the hash lookup
    /// of `tlb` was the plugin's own biggest cost on that path.
    recent: Box<[Option<(u32, u64, TlbEntry)>; RECENT]>,
    /// The virtual line the last fetch used (see [`Engine::fresh_fetch_line`]).
    last_fetch_line: Option<u32>,
    /// I-cache line size.
    line_bytes: u32,
    /// Bumped by everything that can change a translation (TLB operations,
    /// SCTLR, TTBRs, TTBCR, FCSE PID, ASID), which retires `recent`.
    epoch: u64,
    /// TTBR0 base of each model space (index = SpaceId).
    space_ttbr: Vec<u32>,
    spaces: FxHashMap<u32, SpaceId>,
    stats: Stats,
    /// Violations per (kind, pc, cause), in order of first sighting.
    sites: Vec<Site>,
    site_index: FxHashMap<(&'static str, u32, u32), usize>,
    total: u64,
    findings: Vec<Finding>,
    reporter: Reporter,
    /// The guest's phases in order and their violation counts; the first
    /// is the unnamed one before any annotation.
    phases: Vec<(String, u64)>,
    /// Entry addresses of the `omit=` functions.
    omit_entries: FxHashSet<u32>,
    /// The return addresses of the `omit=` calls in progress, innermost
    /// last: maintenance is ignored while it is not empty.
    omit_returns: Vec<u32>,
}

/// How many findings [`Engine::findings`] keeps (the rest are counted).
const KEPT_FINDINGS: usize = 10_000;

impl Engine {
    /// A sanitizer for `config`; reports go to `config.log` (or standard
    /// error).
    pub fn new(config: Config) -> Result<Engine, String> {
        let out: Box<dyn Write + Send> = match &config.log {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path).map_err(|e| format!("log {}: {e}", path.display()))?,
            )),
            None => Box::new(std::io::stderr()),
        };
        Self::with_output(config, out)
    }

    /// A sanitizer reporting to `out` (tests).
    pub fn with_output(config: Config, out: Box<dyn Write + Send>) -> Result<Engine, String> {
        let symbols = if config.elves.is_empty() {
            None
        } else {
            Some(Symbols::read_all(&config.elves)?)
        };
        // A geometry from the arguments may be one the model cannot run
        // (lines longer than 64 bytes): an error, not a panic.
        let mut sim = Sim::try_new_at(config.model, config.ram_base, config.ram_bytes as usize)
            .map_err(|e| e.to_string())?;
        sim.defer_discard_reports(config.defer_discards);
        sim.report_live_aliases(config.live_alias);
        let line_bytes = config.model.icache.geometry.line_bytes as u32;
        let regime = Regime {
            arch: config.arch,
            // Reset values: MMU and caches off, no FCSE, ASID 0.
            sctlr: 0,
            ttbr0: 0,
            ttbr1: 0,
            ttbcr: 0,
            fcse: 0,
            contextidr: 0,
        };
        let mut omit_entries = FxHashSet::default();
        for name in &config.omit {
            let starts = symbols
                .as_ref()
                .map(|s| s.starts_of(name))
                .unwrap_or_default();
            if starts.is_empty() {
                return Err(format!(
                    "omit={name}: no function of that name in the elf= images ({})",
                    if config.elves.is_empty() {
                        "none given".to_string()
                    } else {
                        config
                            .elves
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ));
            }
            omit_entries.extend(starts);
        }
        let mut reporter = Reporter { out, symbols };
        reporter.line(&format!(
            "model {}; guest {:?}; {} MiB RAM at {:#010x}; {} symbols",
            config.model_name,
            config.arch,
            config.ram_bytes >> 20,
            config.ram_base,
            reporter.symbols.as_ref().map_or(0, Symbols::len)
        ));
        Ok(Engine {
            sim,
            config,
            regime,
            tlb: FxHashMap::default(),
            recent: Box::new([None; RECENT]),
            last_fetch_line: None,
            line_bytes,
            epoch: 0,
            space_ttbr: vec![0],
            spaces: FxHashMap::default(),
            stats: Stats::default(),
            sites: Vec::new(),
            site_index: FxHashMap::default(),
            total: 0,
            findings: Vec::new(),
            reporter,
            omit_entries,
            omit_returns: Vec::new(),
            phases: vec![("-".into(), 0)],
        })
    }

    /// Whether the guest's MMU is on (the plugin preloads RAM while it is off).
    pub fn mmu_on(&self) -> bool {
        self.regime.mmu_on()
    }

    /// Gives the model the guest's initial memory at `pa` (what QEMU's
    /// loader placed there), clipped to the modelled RAM.
    pub fn preload(&mut self, pa: u32, bytes: &[u8]) {
        let Some(offset) = pa.checked_sub(self.config.ram_base) else {
            return;
        };
        let room = self.config.ram_bytes.saturating_sub(offset) as usize;
        let _ = self.sim.preload(pa, &bytes[..bytes.len().min(room)]);
    }

    /// Whether `size` bytes at `pa` lie in the modelled RAM.
    #[inline]
    fn in_ram(&self, pa: u32, size: u32) -> bool {
        pa.checked_sub(self.config.ram_base).is_some_and(|offset| {
            u64::from(offset) + u64::from(size) <= u64::from(self.config.ram_bytes)
        })
    }

    /// Violations found so far.
    pub fn violations(&self) -> u64 {
        self.total
    }

    /// The first findings, in order.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The plugin's own counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    // ---- events -----------------------------------------------------------

    /// A data access by the instruction at `pc`: `size` bytes at virtual
    /// `va`, physical `pa` (QEMU's translation), the stored value for a
    /// store (little-endian), and whether it hit a device.
    pub fn on_access(
        &mut self,
        pc: u32,
        va: u32,
        pa: u64,
        size: u32,
        store: Option<u64>,
        is_io: bool,
    ) {
        if is_io {
            self.stats.io += 1;
            return;
        }
        let Ok(pa) = u32::try_from(pa) else {
            self.stats.outside_ram += 1;
            return;
        };
        if !self.in_ram(pa, size) {
            self.stats.outside_ram += 1;
            return;
        }
        let mva = self.regime.mva(va);
        let (mem, global) = self.data_attributes(mva, pa);
        if store.is_some() {
            self.sim.set_site(Some(pc));
        }
        let aligned = size <= 4 && va.is_multiple_of(size);
        if aligned {
            self.access_piece(mva, pa, size, store.map(|v| v as u32), mem, global);
        } else if size == 8 && va.is_multiple_of(4) {
            // LDRD / STRD: two words (in one page: 8-byte aligned offsets
            // never straddle, and word-aligned ones straddle only at the end).
            for half in 0..2u32 {
                let offset = half * 4;
                if (mva & (PAGE - 1)) + offset >= PAGE {
                    self.stats.unaligned_crossing += 4;
                    continue;
                }
                let value = store.map(|v| (v >> (32 * half)) as u32);
                self.access_piece(mva + offset, pa + offset, 4, value, mem, global);
            }
        } else {
            // Unaligned (ARMv6 U bit): byte by byte within the page.
            for i in 0..size {
                if (mva & (PAGE - 1)) + i >= PAGE {
                    self.stats.unaligned_crossing += 1;
                    continue;
                }
                let value = store.map(|v| (v >> (8 * i)) as u32 & 0xff);
                self.access_piece(mva + i, pa + i, 1, value, mem, global);
            }
        }
        let during = if store.is_some() {
            During::Store
        } else {
            During::Load
        };
        self.collect(pc, during);
    }

    fn access_piece(
        &mut self,
        mva: u32,
        pa: u32,
        size: u32,
        store: Option<u32>,
        mem: MemType,
        global: bool,
    ) {
        let at = Translated { pa, mem, global };
        // Sizes and alignment were checked above and `pa` is inside the
        // modelled RAM, so the model has no reason to refuse.
        let _ = match store {
            Some(value) => self.sim.store_at(mva, size, value, at),
            None => self.sim.load_at(mva, size, at).map(|_| ()),
        };
    }

    /// The guest announced a phase: reports from here on carry `label`
    /// (made one word: anything but letters, digits, `-`, `_` and `.`
    /// becomes `_`).
    pub fn on_phase(&mut self, label: &str) {
        let word: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.phases
            .push((if word.is_empty() { "_".into() } else { word }, 0));
    }

    /// Whether `pc` is the entry of an `omit=` function (the plugin then
    /// reports its execution with [`Engine::on_omit_entry`]).
    pub fn is_omit_entry(&self, pc: u32) -> bool {
        self.omit_entries.contains(&pc)
    }

    /// An `omit=` function is entered with `lr` as its return address:
    /// maintenance is ignored until execution reaches it.
    ///
    /// A loop that branches back to the entry (Linux's `*_dcache_clean_area`
    /// start with their `mcr`) enters again with the same LR: that is the
    /// same call, not a nested one.
    pub fn on_omit_entry(&mut self, lr: u32) {
        let lr = lr & !1;
        if self.omit_returns.last() != Some(&lr) {
            self.omit_returns.push(lr);
        }
    }

    /// The fetch of the instruction at `pc`, `size` bytes (2 or 4).
    pub fn on_fetch(&mut self, pc: u32, size: u32) {
        if self.omit_returns.last() == Some(&pc) {
            self.omit_returns.pop();
        }
        if size == 4 && pc % 4 == 2 {
            // A 32-bit Thumb instruction at a halfword boundary: two halves,
            // which may lie in two lines or pages.
            self.fetch_piece(pc, 2);
            self.fetch_piece(pc.wrapping_add(2), 2);
        } else {
            self.fetch_piece(pc, size.min(4));
        }
        self.collect(pc, During::Fetch);
    }

    fn fetch_piece(&mut self, va: u32, size: u32) {
        let mva = self.regime.mva(va);
        let Some(at) = self.fetch_translation(mva) else {
            self.stats.unwalkable += 1;
            self.sim.forget_fetched_line();
            self.last_fetch_line = None;
            return;
        };
        if !self.in_ram(at.pa, size) {
            self.stats.outside_ram += 1;
            self.sim.forget_fetched_line();
            self.last_fetch_line = None;
            return;
        }
        self.last_fetch_line = Some(va & !(self.line_bytes - 1));
        let _ = self.sim.fetch_at(mva, size, at);
    }

    /// The virtual line from which a fetch needs no callback until the
    /// next event: the line the last fetch used, when a fetch from it
    /// would be a hit on fresh code ([`Sim::fetch_line_is_fresh`]) and no
    /// `omit=` return is awaited. Its translation holds until a CP15
    /// operation, after which the plugin asks again.
    pub fn fresh_fetch_line(&self) -> Option<u32> {
        if self.omit_returns.is_empty() && self.sim.fetch_line_is_fresh() {
            self.last_fetch_line
        } else {
            None
        }
    }

    /// Counts fetches the plugin skipped while
    /// [`Engine::fresh_fetch_line`] named their line.
    pub fn count_skipped_fetches(&mut self, n: u64) {
        self.sim.count_fetch_hits(n);
    }

    /// A CP15 operation by the instruction at `pc`, with its operand
    /// registers' values and the CPSR (for its condition).
    pub fn on_cp15(&mut self, pc: u32, op: &Cp15, rt: u32, rt2: u32, cpsr: u32) {
        if !op.passes(cpsr) {
            self.stats.cp15_skipped += 1;
            return;
        }
        self.stats.cp15_ops += 1;
        if !self.omit_returns.is_empty() && op.action.is_maintenance() {
            self.stats.omitted += 1;
            return;
        }
        // A deferred discard names the maintenance instruction.
        self.sim.set_site(Some(pc));
        if matches!(
            op.action,
            Action::WriteSctlr
                | Action::WriteTtbr0
                | Action::WriteTtbr1
                | Action::WriteTtbcr
                | Action::WriteFcsePid
                | Action::WriteContextId
                | Action::TlbAll
                | Action::TlbByMva
                | Action::TlbByAsid
        ) {
            self.epoch += 1;
        }
        match op.action {
            Action::WriteSctlr => self.regime.sctlr = rt,
            Action::WriteActlr => self.actlr_written(rt),
            // A hint: the model fills the line when the guest fetches it.
            Action::PrefetchIcacheLine => {}
            Action::WriteTtbr0 => {
                self.regime.ttbr0 = rt;
                self.switch_space();
            }
            Action::WriteTtbr1 => self.regime.ttbr1 = rt,
            Action::WriteTtbcr => self.regime.ttbcr = rt,
            Action::WriteFcsePid => {
                self.regime.fcse = rt & 0xfe00_0000;
                self.apply_key();
            }
            Action::WriteContextId => {
                self.regime.contextidr = rt;
                self.apply_key();
            }
            Action::LineByMva { data, instruction } => {
                self.line_by_mva(rt, data, instruction);
            }
            Action::LineBySetWay { data, instruction } => {
                if let Some(op) = data {
                    let (set, way) = self.set_way(rt, false);
                    let _ = self.sim.maintain_set_way(op, set, way);
                }
                if instruction {
                    let (set, way) = self.set_way(rt, true);
                    let _ = self
                        .sim
                        .maintain_set_way(LineOp::InvalidateInstruction, set, way);
                }
            }
            Action::WholeCache {
                clean,
                invalidate,
                instruction,
                data,
            } => {
                if data {
                    match (clean, invalidate) {
                        (true, true) => self.sim.clean_invalidate_dcache_all(),
                        (true, false) => self.sim.clean_dcache_all(),
                        (false, true) => self.sim.invalidate_dcache_all(),
                        (false, false) => {}
                    }
                }
                if instruction {
                    self.sim.invalidate_icache_all();
                }
            }
            Action::Block { data, instruction } => {
                let (start, last) = (rt2, rt);
                if last >= start {
                    let line = self.config.model.dcache.geometry.line_bytes as u32;
                    let last = last.min(start.saturating_add(MAX_BLOCK_BYTES));
                    let mut mva = start & !(line - 1);
                    loop {
                        self.line_by_mva(mva, data, instruction);
                        match mva.checked_add(line) {
                            Some(next) if next <= last => mva = next,
                            _ => break,
                        }
                    }
                }
            }
            Action::Drain => self.sim.drain_write_buffer(),
            Action::FlushBtc => self.sim.flush_branch_target_cache(),
            Action::TlbAll => {
                self.tlb.clear();
                self.sim.invalidate_tlb_all();
            }
            Action::TlbByMva => {
                let page = rt / PAGE;
                self.tlb.remove(&(page, 0));
                if self.regime.arch == GuestArch::V6 {
                    self.tlb.remove(&(page, (rt & 0xff) as u16 + 1));
                }
                self.sim.invalidate_tlb_page(VirtAddr(rt & !(PAGE - 1)));
            }
            Action::TlbByAsid => {
                let tag = (rt & 0xff) as u16 + 1;
                self.tlb.retain(|&(_, t), _| t != tag);
                // Counted as one TLB operation (the model's own TLB is unused).
                self.sim.invalidate_tlb_all();
            }
        }
        self.collect(pc, During::Cp15);
    }

    /// ACTLR written. CZ (bit 6) restricts each cache to 16 KiB on the
    /// hardware, which the model cannot follow mid-run: a guest that sets
    /// it while the model's D-cache is larger gets one line saying so (and
    /// which `geometry=` to run with), since every alias finding past that
    /// point would be the model's, not the guest's. RV and RA take
    /// operations away, which QEMU still executes: nothing to model.
    fn actlr_written(&mut self, value: u32) {
        const CZ: u32 = 1 << 6;
        let geometry = self.config.model.dcache.geometry;
        if value & CZ != 0 && geometry.size_bytes > 16 << 10 && !self.stats.actlr_cz_noted {
            self.stats.actlr_cz_noted = true;
            self.reporter.line(&format!(
                "note ACTLR.CZ set: the guest restricted its caches to 16 KiB, the model \
                 keeps {} KiB; rerun with geometry=16k",
                geometry.size_bytes >> 10
            ));
        }
    }

    /// The guest's annotation (`vacmm::arch::annotate::declare_dead`): the
    /// `len` bytes at physical `pa` hold dead data.
    pub fn on_declare_dead(&mut self, pc: u32, pa: u32, len: u32) {
        let ram_end = u64::from(self.config.ram_base) + u64::from(self.config.ram_bytes);
        let pa = pa.max(self.config.ram_base);
        let end = u64::from(pa).saturating_add(u64::from(len)).min(ram_end) as u32;
        if pa < end {
            let _ = self.sim.declare_dead(pa, end - pa);
            self.stats.dead_declared += u64::from(end - pa);
        }
        self.collect(pc, During::Cp15);
    }

    fn line_by_mva(&mut self, mva: u32, data: Option<LineOp>, instruction: bool) {
        let at = self.maintenance_translation(mva);
        if let Some(op) = data {
            self.sim.maintain_line(op, mva, at);
        }
        if instruction {
            self.sim
                .maintain_line(LineOp::InvalidateInstruction, mva, at);
        }
    }

    /// Set and way of a set/way operand: way in the top log2(ways) bits,
    /// set above the line offset (ARM926 TRM §2.3.8, ARM1136 TRM §3.3.18),
    /// with the model's geometry.
    fn set_way(&self, value: u32, instruction: bool) -> (usize, usize) {
        let g = if instruction {
            self.config.model.icache.geometry
        } else {
            self.config.model.dcache.geometry
        };
        let line_shift = g.line_bytes.trailing_zeros();
        let way_bits = g.ways.trailing_zeros();
        let set = (value >> line_shift) as usize & (g.sets() - 1);
        let way = if way_bits == 0 {
            0
        } else {
            (value >> (32 - way_bits)) as usize
        };
        (set, way)
    }
}

#[cfg(test)]
mod tests;
