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

/// What the guest was doing when the oracle saw a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum During {
    /// A load (or the linefill / eviction it caused, or the table walk).
    Load,
    /// A store (or its eviction, or its table walk).
    Store,
    /// An instruction fetch.
    Fetch,
    /// A CP15 operation (an invalidate that dropped dirty data, a clean
    /// that wrote a stale line back).
    Cp15,
}

impl During {
    fn name(self) -> &'static str {
        match self {
            During::Load => "load",
            During::Store => "store",
            During::Fetch => "fetch",
            During::Cp15 => "cp15",
        }
    }
}

/// One violation with the guest context it happened in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What the oracle saw.
    pub violation: Violation,
    /// The guest instruction being executed (for a deferred discard, the
    /// maintenance that discarded the line).
    pub pc: u32,
    /// What that instruction was doing.
    pub during: During,
    /// For a deferred discard: the instruction whose read found the loss.
    pub read_pc: Option<u32>,
    /// The guest's phase (`vacmm::arch::annotate::phase`), index into
    /// [`Engine::phases`]; 0 before the first.
    pub phase: usize,
}

impl Finding {
    /// The instruction the finding is attributed to when grouped: where a
    /// stale line written back was dirtied (the eviction that wrote it back
    /// is wherever the cache needed room), else [`Finding::pc`].
    pub fn cause(&self) -> u32 {
        match self.violation.line_writer {
            Some(Writer::Cpu { pc: Some(pc), .. }) => pc,
            _ => self.pc,
        }
    }
}

/// The short name of a violation kind in reports.
pub fn kind_name(kind: ViolationKind) -> &'static str {
    match kind {
        ViolationKind::StaleRead => "StaleRead",
        ViolationKind::StaleReadAfterDma => "StaleReadAfterDma",
        ViolationKind::CrossSpaceLeak { .. } => "CrossSpaceLeak",
        ViolationKind::RemappedLineHit { .. } => "RemappedLineHit",
        ViolationKind::DirtyLineDiscarded => "DirtyLineDiscarded",
        ViolationKind::StaleWriteBack => "StaleWriteBack",
        ViolationKind::StaleFetch => "StaleFetch",
        ViolationKind::DmaReadStaleMemory => "DmaReadStaleMemory",
        ViolationKind::StaleTableWalk => "StaleTableWalk",
        ViolationKind::StaleTlbEntry { .. } => "StaleTlbEntry",
        ViolationKind::LiveAlias { .. } => "LiveAlias",
    }
}

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

/// The guest's translation regime, from its CP15 writes.
#[derive(Clone, Copy, Debug)]
struct Regime {
    arch: GuestArch,
    sctlr: u32,
    ttbr0: u32,
    ttbr1: u32,
    ttbcr: u32,
    fcse: u32,
    contextidr: u32,
}

impl Regime {
    fn mmu_on(&self) -> bool {
        self.sctlr & SCTLR_M != 0
    }

    /// The modified virtual address (FCSE) caches and TLBs see.
    fn mva(&self, va: u32) -> u32 {
        if va < FCSE_WINDOW { va | self.fcse } else { va }
    }

    /// The L1 table for `mva` (ARMv6 TTBCR.N splits TTBR0 / TTBR1).
    fn l1_for(&self, mva: u32) -> u32 {
        let n = if self.arch == GuestArch::V6 {
            self.ttbcr & 7
        } else {
            0
        };
        if n > 0 && mva >> (32 - n) != 0 {
            self.ttbr1 & !0x3fff
        } else {
            self.ttbr0 & !(0x3fff_u32 >> n)
        }
    }

    fn format(&self) -> Arch {
        if self.arch == GuestArch::V6 && self.sctlr & SCTLR_XP != 0 {
            Arch::Armv6
        } else {
            Arch::Armv5
        }
    }

    /// The key lines and TLB entries of non-global mappings carry.
    fn key(&self) -> u16 {
        match self.arch {
            GuestArch::V5 => (self.fcse >> 25) as u16,
            GuestArch::V6 => (self.contextidr & 0xff) as u16,
        }
    }

    /// The TLB tag of non-global entries (0 is global).
    fn asid_tag(&self) -> u16 {
        match self.arch {
            GuestArch::V5 => 0,
            GuestArch::V6 => (self.contextidr & 0xff) as u16 + 1,
        }
    }
}

/// A translation the model walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TlbEntry {
    frame: u32,
    mem: MemType,
    global: bool,
}

/// The memory type of descriptor bits, as the L1 (inner) cache sees it.
/// ARMv6 TEX[2] = 1 is "cached memory" with the inner policy in C:B;
/// write-allocate is not modelled (read-allocate only), TEX remap
/// (ARM1176 SCTLR.TRE) neither.
fn mem_type(attrs: HwAttrs, arch: Arch) -> MemType {
    let inner = |c: bool, b: bool| match (c, b) {
        (true, true) | (false, true) => MemType::WriteBack,
        (true, false) => MemType::WriteThrough,
        (false, false) => MemType::Bufferable,
    };
    match (arch, attrs.tex, attrs.c, attrs.b) {
        (Arch::Armv6, tex, c, b) if tex & 4 != 0 => inner(c, b),
        (_, _, true, true) => MemType::WriteBack,
        (_, _, true, false) => MemType::WriteThrough,
        (Arch::Armv5, _, false, true) => MemType::Bufferable,
        (Arch::Armv6, 1, false, false) => MemType::Bufferable,
        _ => MemType::StronglyOrdered,
    }
}

/// Where reports go, with the symbols that name PCs.
struct Reporter {
    out: Box<dyn Write + Send>,
    symbols: Option<Symbols>,
}

impl Reporter {
    /// The function holding `pc`, as one word (reports are `key=value`
    /// words: "<A as B>::f" becomes "<A_as_B>::f").
    fn at(&self, pc: u32) -> String {
        match self.symbols.as_ref().and_then(|s| s.lookup(pc)) {
            Some(location) => location.to_string().replace(' ', "_"),
            None => "?".into(),
        }
    }

    /// The function holding `pc`, without the offset, as one word.
    fn function(&self, pc: u32) -> String {
        match self.symbols.as_ref().and_then(|s| s.lookup(pc)) {
            Some(location) => location.name.replace(' ', "_"),
            None => "?".into(),
        }
    }

    fn line(&mut self, text: &str) {
        // A report that cannot be written must not stop the guest.
        let _ = writeln!(self.out, "cachesan: {text}");
    }
}

/// The sanitizer's state.
pub struct Engine {
    sim: Sim,
    config: Config,
    regime: Regime,
    tlb: FxHashMap<(u32, u16), TlbEntry>,
    /// The last data and the last other (fetch, maintenance) lookup's
    /// (page, epoch, entry): most accesses and nearly all fetches stay in
    /// the page before, and the hash lookup is the plugin's own biggest
    /// cost on that path.
    /// The last translations, direct-mapped by page, with the epoch they
    /// were made at (every access looks here first).
    recent: Box<[Option<(u32, u64, TlbEntry)>; RECENT]>,
    /// The virtual line the last fetch used (see [`Engine::fresh_fetch_line`]).
    last_fetch_line: Option<u32>,
    /// I-cache line size.
    line_bytes: u32,
    /// Bumped by everything that can change a translation (TLB operations,
    /// SCTLR, TTBRs, TTBCR, FCSE PID, ASID), which retires `last`.
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

/// One reporting site: a kind at a PC, how often, and the PC its group is
/// attributed to (see [`Finding::cause`]).
#[derive(Clone, Copy, Debug)]
struct Site {
    kind: &'static str,
    pc: u32,
    cause: u32,
    count: u64,
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

    // ---- translation ------------------------------------------------------

    fn data_attributes(&mut self, mva: u32, pa: u32) -> (MemType, bool) {
        // MMU off: data accesses are uncached (ARM926 TRM §2.3.2, ARMv6 ARM B4.2.3).
        if !self.regime.mmu_on() {
            return (MemType::StronglyOrdered, true);
        }
        match self.lookup(mva, Some(pa)) {
            Some(e) if self.regime.sctlr & SCTLR_C != 0 => (e.mem, e.global),
            Some(e) => (MemType::StronglyOrdered, e.global),
            None => {
                self.stats.unwalkable += 1;
                (MemType::StronglyOrdered, true)
            }
        }
    }

    fn fetch_translation(&mut self, mva: u32) -> Option<Translated> {
        let icache = self.regime.sctlr & SCTLR_I != 0;
        if !self.regime.mmu_on() {
            // With the MMU off the I-cache still caches, flat-mapped.
            let mem = if icache {
                MemType::WriteBack
            } else {
                MemType::StronglyOrdered
            };
            return Some(Translated {
                pa: mva,
                mem,
                global: true,
            });
        }
        let e = self.lookup(mva, None)?;
        Some(Translated {
            pa: e.frame | (mva & (PAGE - 1)),
            mem: if icache {
                e.mem
            } else {
                MemType::StronglyOrdered
            },
            global: e.global,
        })
    }

    fn maintenance_translation(&mut self, mva: u32) -> Option<Translated> {
        if !self.regime.mmu_on() {
            return Some(Translated {
                pa: mva,
                mem: MemType::WriteBack,
                global: true,
            });
        }
        let e = self.lookup(mva, None)?;
        Some(Translated {
            pa: e.frame | (mva & (PAGE - 1)),
            mem: e.mem,
            global: e.global,
        })
    }

    /// The model TLB's entry for `mva`, walking on a miss (or when QEMU's
    /// physical address `qemu_pa` disagrees with the entry).
    fn lookup(&mut self, mva: u32, qemu_pa: Option<u32>) -> Option<TlbEntry> {
        let page = mva / PAGE;
        let slot = page as usize % RECENT;
        if let Some((last_page, epoch, e)) = self.recent[slot]
            && last_page == page
            && epoch == self.epoch
            && qemu_pa.is_none_or(|pa| pa & !(PAGE - 1) == e.frame)
        {
            return Some(e);
        }
        let e = self.lookup_slow(page, mva, qemu_pa)?;
        self.recent[slot] = Some((page, self.epoch, e));
        Some(e)
    }

    fn lookup_slow(&mut self, page: u32, mva: u32, qemu_pa: Option<u32>) -> Option<TlbEntry> {
        let tag = self.regime.asid_tag();
        let hit = self
            .tlb
            .get(&(page, 0))
            .or_else(|| self.tlb.get(&(page, tag)))
            .copied();
        if let Some(e) = hit {
            if qemu_pa.is_none_or(|pa| pa & !(PAGE - 1) == e.frame) {
                return Some(e);
            }
            self.stats.tlb_disagreements += 1;
        }
        // A walk may replace the entry the last fetch used (a data access
        // found QEMU disagreeing): its fetches must be looked at again.
        self.last_fetch_line = None;
        let e = self.walk(mva)?;
        let key = (page, if e.global { 0 } else { tag });
        self.tlb.insert(key, e);
        Some(e)
    }

    fn walk(&mut self, mva: u32) -> Option<TlbEntry> {
        self.stats.walks += 1;
        let (l1, arch) = (self.regime.l1_for(mva), self.regime.format());
        let sim = &mut self.sim;
        // Every descriptor read is checked by the oracle: one still dirty in
        // the modelled D-cache (or in the write buffer) is a StaleTableWalk.
        let t = walk(
            &mut |pa: PhysAddr| {
                sim.table_walk(pa.as_u32())
                    .map_err(|_| TableError::Memory { pa })
            },
            PhysAddr(l1),
            arch,
            VirtAddr(mva),
        )
        .ok()?;
        Some(TlbEntry {
            frame: t.pa.as_u32() & !(PAGE - 1),
            mem: mem_type(t.attrs, arch),
            global: arch == Arch::Armv5 || !t.attrs.not_global,
        })
    }

    /// TTBR0 names the address space: one model space per table.
    fn switch_space(&mut self) {
        let base = self.regime.ttbr0 & !0x7f;
        let space = match self.spaces.get(&base) {
            Some(&space) => space,
            None => {
                let space = self.sim.create_space(0);
                self.spaces.insert(base, space);
                self.space_ttbr.push(base);
                space
            }
        };
        // The space exists: created above or before.
        let _ = self.sim.switch_to(space);
        self.apply_key();
    }

    fn apply_key(&mut self) {
        let current = self.sim.current_space();
        let _ = self.sim.set_key(current, self.regime.key());
    }

    // ---- reports ----------------------------------------------------------

    #[inline]
    fn collect(&mut self, pc: u32, during: During) {
        if !self.sim.violations().is_empty() {
            self.record_violations(pc, during);
        }
    }

    fn record_violations(&mut self, pc: u32, during: During) {
        for violation in self.sim.take_violations() {
            // A deferred discard's site is the maintenance that discarded
            // the line; the read that found the loss is named beside it.
            let (site, during, read_pc) = match violation.discarded.and_then(|d| d.pc) {
                Some(discard_pc) => (discard_pc, During::Cp15, Some(pc)),
                None => (pc, during, None),
            };
            self.record(Finding {
                violation,
                pc: site,
                read_pc,
                during,
                phase: self.phases.len() - 1,
            });
        }
    }

    fn space_name(&self, space: SpaceId) -> String {
        if space == KERNEL {
            return "0".into();
        }
        let ttbr = self.space_ttbr.get(space.0 as usize).copied().unwrap_or(0);
        format!("{}(ttbr0={ttbr:#010x})", space.0)
    }

    fn record(&mut self, finding: Finding) {
        self.total += 1;
        self.phases[finding.phase].1 += 1;
        let kind = kind_name(finding.violation.kind);
        // The cause too: one eviction PC writes back lines that different
        // functions dirtied, which are different findings.
        let key = (kind, finding.pc, finding.cause());
        let first = match self.site_index.get(&key) {
            Some(&i) => {
                self.sites[i].count += 1;
                false
            }
            None => {
                self.site_index.insert(key, self.sites.len());
                self.sites.push(Site {
                    kind,
                    pc: finding.pc,
                    cause: finding.cause(),
                    count: 1,
                });
                true
            }
        };
        if first && self.sites.len() <= self.config.max_reports {
            let text = self.describe(&finding);
            self.reporter.line(&text);
        }
        if self.findings.len() < KEPT_FINDINGS {
            self.findings.push(finding);
        }
    }

    /// One `key=value` line per finding, for people and for `cargo xtask sanitize`.
    pub fn describe(&self, finding: &Finding) -> String {
        let v = &finding.violation;
        let mut text = format!(
            "violation kind={} pc={:#010x} at={} during={}",
            kind_name(v.kind),
            finding.pc,
            self.reporter.at(finding.pc),
            finding.during.name()
        );
        if let Some(va) = v.va {
            text += &format!(" va={va:#010x}");
        }
        text += &format!(" pa={:#010x}", v.pa);
        if let Some(space) = v.space {
            text += &format!(" space={}", self.space_name(space));
        }
        if let ViolationKind::CrossSpaceLeak { line_pa }
        | ViolationKind::RemappedLineHit { line_pa } = v.kind
        {
            text += &format!(" line-pa={line_pa:#010x}");
        }
        if let Some(Writer::Cpu { space, va, pc }) = v.line_writer {
            // Who dirtied the stale line that was written back.
            text += &format!(
                " line-writer-space={} line-writer-va={va:#010x}",
                self.space_name(space)
            );
            if let Some(pc) = pc {
                text += &format!(
                    " line-writer-pc={pc:#010x} line-writer-at={}",
                    self.reporter.at(pc)
                );
            }
        }
        if let Some(discarded) = v.discarded {
            // The read that proved the discarded data live (deferred report).
            text += &format!(" discarded-va={:#010x}", discarded.va);
            if let Some(pc) = finding.read_pc {
                text += &format!(" read-pc={pc:#010x} read-at={}", self.reporter.at(pc));
            }
            if let Some(space) = v.space {
                text += &format!(" read-space={}", self.space_name(space));
            }
        }
        text += &format!(" seen={} newest={}", v.seen_version, v.last_version);
        if finding.phase > 0 {
            text += &format!(" phase={}", self.phases[finding.phase].0);
        }
        match v.last_writer {
            Writer::Cpu { space, va, pc } => {
                text += &format!(
                    " writer=cpu writer-space={} writer-va={va:#010x}",
                    self.space_name(space)
                );
                if let Some(pc) = pc {
                    text += &format!(" writer-pc={pc:#010x} writer-at={}", self.reporter.at(pc));
                }
            }
            Writer::Initial => text += " writer=initial",
            Writer::Dma => text += " writer=dma",
            Writer::Dead => text += " writer=dead",
        }
        text
    }

    /// The sites grouped by kind and the function of their cause, most
    /// violations first: `group kind=K function=F count=N sites=S`, where F
    /// is the function without the offset (`?` where no image names the
    /// PC). One group is one finding to explain; its sites are the
    /// instructions.
    fn groups(&self, sites: &[Site]) -> Vec<String> {
        let mut groups: Vec<(&'static str, String, u64, usize)> = Vec::new();
        for &Site {
            kind, cause, count, ..
        } in sites
        {
            let function = self.reporter.function(cause);
            match groups.iter_mut().find(|g| g.0 == kind && g.1 == function) {
                Some(group) => {
                    group.2 += count;
                    group.3 += 1;
                }
                None => groups.push((kind, function, count, 1)),
            }
        }
        groups.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)).then(a.1.cmp(&b.1)));
        groups
            .into_iter()
            .map(|(kind, function, count, sites)| {
                format!("group kind={kind} function={function} count={count} sites={sites}")
            })
            .collect()
    }

    /// Writes the summary (cache statistics, every site with its count,
    /// the sites grouped by function) and returns how many violations
    /// there were.
    pub fn finish(&mut self) -> u64 {
        let c = *self.sim.counters();
        let s = self.stats;
        let accesses = c.loads + c.stores + c.fetches;
        let cached = accesses.saturating_sub(c.uncached);
        let hit_rate = if cached == 0 {
            0.0
        } else {
            100.0 * c.hits as f64 / cached as f64
        };
        let (lines, dirty) = self.sim.dcache_occupancy();
        let lines_total = self.config.model.dcache.geometry.size_bytes
            / self.config.model.dcache.geometry.line_bytes;
        let texts = [
            format!(
                "summary model=\"{}\" violations={} sites={}",
                self.config.model_name,
                self.total,
                self.sites.len()
            ),
            format!(
                "cache loads={} stores={} fetches={} hits={} hit-rate={hit_rate:.1}% fills={} \
                 write-backs={} uncached={} dcache-lines={lines}/{lines_total} dirty={dirty}",
                c.loads, c.stores, c.fetches, c.hits, c.fills, c.write_backs, c.uncached
            ),
            format!(
                "maintenance clean-line={} clean-invalidate-line={} invalidate-line={} \
                 clean-all={} clean-invalidate-all={} icache-line={} icache-all={} drains={} tlb-ops={}",
                c.clean_line,
                c.clean_invalidate_line,
                c.invalidate_line,
                c.clean_all,
                c.clean_invalidate_all,
                c.icache_line,
                c.icache_all,
                c.drains,
                c.tlb_ops
            ),
            format!(
                "plugin cp15-ops={} cp15-skipped={} walks={} spaces={} io={} outside-ram={} \
                 unwalkable={} tlb-disagreements={} unaligned-crossing={} dead-declared={} \
                 omitted={}",
                s.cp15_ops,
                s.cp15_skipped,
                s.walks,
                self.space_ttbr.len(),
                s.io,
                s.outside_ram,
                s.unwalkable,
                s.tlb_disagreements,
                s.unaligned_crossing,
                s.dead_declared,
                s.omitted
            ),
        ];
        for text in texts {
            self.reporter.line(&text);
        }
        let mut sites = self.sites.clone();
        sites.sort_by_key(|site| std::cmp::Reverse(site.count));
        for site in &sites {
            let at = self.reporter.at(site.pc);
            let group = self.reporter.function(site.cause);
            self.reporter.line(&format!(
                "site kind={} pc={:#010x} at={at} group={group} count={}",
                site.kind, site.pc, site.count
            ));
        }
        for group in self.groups(&sites) {
            self.reporter.line(&group);
        }
        // Phases with findings, in the guest's order.
        let phases: Vec<String> = self
            .phases
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("phase name={name} violations={n}"))
            .collect();
        for phase in phases {
            self.reporter.line(&phase);
        }
        self.reporter
            .line(&format!("result violations={}", self.total));
        let _ = self.reporter.out.flush();
        self.total
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use vacmm::mmu::{Attributes, L1Descriptor, L2Descriptor};

    use super::*;
    use crate::cp15::decode;

    /// Report output the test can read back.
    #[derive(Clone, Default)]
    struct Output(Arc<Mutex<Vec<u8>>>);

    impl Write for Output {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Output {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    const L1: u32 = 0x4000;
    const COARSE: u32 = 0x8000;
    const SECTION_VA_ALIAS: u32 = 0x0010_0000;
    const PAGE_VA: u32 = 0x0020_0000;

    // mcr p15, 0, r0, <op>: Rt = r0 in every encoding below.
    const TTBR0: u32 = 0xee02_0f10;
    const SCTLR: u32 = 0xee01_0f10;
    const DRAIN: u32 = 0xee07_0f9a;
    const CLEAN_LINE: u32 = 0xee07_0f3a;
    const INVALIDATE_LINE: u32 = 0xee07_0f36;
    const TLB_ALL: u32 = 0xee08_0f17;
    const TLB_MVA: u32 = 0xee08_0f37;
    const TLB_ASID: u32 = 0xee08_0f57;
    const CONTEXTIDR: u32 = 0xee0d_0f30;

    fn engine(args: &[&str]) -> (Engine, Output) {
        let mut all = vec!["ram=1M"];
        all.extend_from_slice(args);
        let config = Config::parse(all).unwrap();
        let out = Output::default();
        (
            Engine::with_output(config, Box::new(out.clone())).unwrap(),
            out,
        )
    }

    fn op(e: &mut Engine, pc: u32, word: u32, rt: u32) {
        e.on_cp15(pc, &decode(word).unwrap(), rt, 0, 0);
    }

    fn store(e: &mut Engine, pc: u32, va: u32, pa: u32, value: u32) {
        e.on_access(pc, va, u64::from(pa), 4, Some(u64::from(value)), false);
    }

    fn load(e: &mut Engine, pc: u32, va: u32, pa: u32) {
        e.on_access(pc, va, u64::from(pa), 4, None, false);
    }

    /// MMU off: the first MiB mapped twice (VA 0 and VA 1 MiB → PA 0),
    /// write-back, the table written uncached and drained; then MMU,
    /// D- and I-cache on.
    fn boot(e: &mut Engine, arch: Arch) {
        let attrs = Attributes::KERNEL_RWX.to_hw(arch).unwrap();
        let section = L1Descriptor::Section {
            base: PhysAddr(0),
            domain: 0,
            attrs,
        }
        .encode(arch)
        .unwrap();
        store(e, 0x10, L1, L1, section);
        store(e, 0x14, L1 + 4, L1 + 4, section);
        op(e, 0x18, DRAIN, 0);
        op(e, 0x1c, TTBR0, L1);
        let xp = if arch == Arch::Armv6 { SCTLR_XP } else { 0 };
        op(e, 0x20, SCTLR, SCTLR_M | SCTLR_C | SCTLR_I | xp);
    }

    #[test]
    fn an_actlr_cz_write_under_a_larger_model_is_noted_once() {
        // mcr p15, 0, r0, c1, c0, 1: ACTLR.
        const ACTLR: u32 = 0xee01_0f30;
        const CZ: u32 = 1 << 6;
        let (mut e, out) = engine(&["cpu=arm1136"]);
        op(&mut e, 0x10, ACTLR, 0x7);
        assert!(!out.text().contains("note"), "{}", out.text());
        op(&mut e, 0x14, ACTLR, 0x7 | CZ);
        op(&mut e, 0x18, ACTLR, 0x7 | CZ);
        let text = out.text();
        assert_eq!(text.matches("note ACTLR.CZ set").count(), 1, "{text}");
        assert!(
            text.contains("keeps 64 KiB; rerun with geometry=16k"),
            "{text}"
        );
        // A 16 KiB model is what CZ makes: nothing to say.
        let (mut e, out) = engine(&["cpu=arm1176"]);
        op(&mut e, 0x10, ACTLR, CZ);
        assert!(!out.text().contains("note"), "{}", out.text());
        assert_eq!(e.violations(), 0);
    }

    /// A stale alias line written back: the report names the store that
    /// dirtied it beside the clean that wrote it back, and the group is
    /// the dirtier's.
    #[test]
    fn a_stale_write_back_names_and_groups_by_the_store_that_dirtied_it() {
        let (mut e, out) = engine(&["cpu=arm926"]);
        boot(&mut e, Arch::Armv5);
        let alias = SECTION_VA_ALIAS + 0x1000;
        load(&mut e, 0x100, alias, 0x1000);
        store(&mut e, 0x200, 0x1000, 0x1000, 7);
        store(&mut e, 0x300, alias + 4, 0x1004, 8);
        op(&mut e, 0x400, CLEAN_LINE, alias);
        op(&mut e, 0x404, DRAIN, 0);
        let f = e
            .findings()
            .iter()
            .find(|f| f.violation.kind == ViolationKind::StaleWriteBack)
            .expect("the write-back of the stale alias")
            .clone();
        // The clean queues the line in the ARM926's write buffer; it lands,
        // over the newer buffered store, at the drain.
        assert_eq!((f.pc, f.cause()), (0x404, 0x300));
        e.finish();
        let text = out.text();
        assert!(text.contains("line-writer-pc=0x00000300"), "{text}");
        assert!(
            text.contains("group kind=StaleWriteBack function=? count=1 sites=1"),
            "{text}"
        );
    }

    /// `omit=`: the maintenance inside the function (entered at 0x40,
    /// returning to 0x304) is ignored, so the alias it should have
    /// invalidated is read stale; the twin without `omit=` reads fresh data.
    #[test]
    fn omitted_maintenance_is_ignored_from_entry_to_return() {
        use object::SymbolKind;
        let image = crate::symbols::testing::elf(
            "omit",
            &[("invalidate_alias", 0x40, 0x40, SymbolKind::Text, true)],
        );
        let elf = format!("elf={}", image.display());
        for omit in [false, true] {
            let mut args = vec!["cpu=arm926", elf.as_str()];
            if omit {
                args.push("omit=invalidate_alias");
            }
            let (mut e, out) = engine(&args);
            boot(&mut e, Arch::Armv5);
            let alias = SECTION_VA_ALIAS + 0x1000;
            load(&mut e, 0x100, alias, 0x1000);
            store(&mut e, 0x200, 0x1000, 0x1000, 7);
            op(&mut e, 0x300, DRAIN, 0);
            // The call, as the plugin reports it.
            assert_eq!(e.is_omit_entry(0x40), omit);
            e.on_fetch(0x40, 4);
            if e.is_omit_entry(0x40) {
                e.on_omit_entry(0x304);
                // A loop back to the entry is the same call.
                e.on_omit_entry(0x304);
            }
            op(&mut e, 0x44, INVALIDATE_LINE, alias);
            e.on_fetch(0x304, 4);
            load(&mut e, 0x308, alias, 0x1000);
            assert_eq!(e.violations(), u64::from(omit), "{}", out.text());
            assert_eq!(e.stats().omitted, u64::from(omit));
            // Returned: maintenance counts again.
            op(&mut e, 0x30c, INVALIDATE_LINE, alias);
            load(&mut e, 0x310, alias, 0x1000);
            assert_eq!(e.violations(), u64::from(omit), "{}", out.text());
        }
        // A name no image has is refused.
        let config = Config::parse(["cpu=arm926", elf.as_str(), "omit=no_such_function"]).unwrap();
        let refused = Engine::with_output(config, Box::new(Output::default()));
        std::fs::remove_file(&image).unwrap();
        assert!(refused.err().unwrap().contains("omit=no_such_function"));
    }

    /// A guest phase labels the findings made in it and counts them.
    #[test]
    fn findings_carry_the_guest_phase() {
        let (mut e, out) = engine(&["cpu=arm926"]);
        boot(&mut e, Arch::Armv5);
        e.on_phase("quiet part");
        let alias = SECTION_VA_ALIAS + 0x1000;
        load(&mut e, 0x100, alias, 0x1000);
        e.on_phase("io_uring");
        store(&mut e, 0x200, 0x1000, 0x1000, 7);
        load(&mut e, 0x300, alias, 0x1000);
        e.finish();
        let text = out.text();
        assert!(
            text.contains("newest=") && text.contains(" phase=io_uring"),
            "{text}"
        );
        assert!(text.contains("phase name=io_uring violations=1"), "{text}");
        assert!(!text.contains("phase name=quiet_part"), "{text}");
    }

    #[test]
    fn a_vivt_alias_is_a_stale_read_at_the_reading_pc() {
        let (mut e, out) = engine(&["cpu=arm926"]);
        boot(&mut e, Arch::Armv5);
        assert_eq!(e.violations(), 0, "{}", out.text());
        load(&mut e, 0x100, SECTION_VA_ALIAS + 0x1000, 0x1000);
        store(&mut e, 0x200, 0x1000, 0x1000, 7);
        load(&mut e, 0x300, SECTION_VA_ALIAS + 0x1000, 0x1000);
        assert_eq!(e.violations(), 1);
        let f = &e.findings()[0];
        assert_eq!(f.violation.kind, ViolationKind::StaleRead);
        assert_eq!((f.pc, f.during), (0x300, During::Load));
        assert_eq!(
            f.violation.last_writer,
            Writer::Cpu {
                space: SpaceId(1),
                va: 0x1000,
                pc: Some(0x200)
            }
        );
        assert_eq!(e.finish(), 1);
        let text = out.text();
        assert!(
            text.contains("violation kind=StaleRead pc=0x00000300 at=? during=load va=0x00101000 pa=0x00001000"),
            "{text}"
        );
        assert!(text.contains("writer-pc=0x00000200"), "{text}");
        assert!(
            text.contains("site kind=StaleRead pc=0x00000300 at=? group=? count=1"),
            "{text}"
        );
        assert!(text.ends_with("cachesan: result violations=1\n"), "{text}");
    }

    /// Maps PAGE_VA + 0x2000 → PA 0x1000 with a small page (colour 2 of a
    /// 64 KiB cache, where the identity alias 0x1000 has colour 1), written
    /// with the MMU off and drained.
    fn map_other_colour(e: &mut Engine, arch: Arch) {
        let coarse = L1Descriptor::Coarse {
            table: PhysAddr(COARSE),
            domain: 0,
        }
        .encode(arch)
        .unwrap();
        let small = L2Descriptor::Small {
            base: PhysAddr(0x1000),
            attrs: Attributes::KERNEL_DATA.to_hw(arch).unwrap(),
        }
        .encode(arch)
        .unwrap();
        let slot_l1 = L1 + (PAGE_VA >> 20) * 4;
        store(e, 0x08, slot_l1, slot_l1, coarse);
        store(e, 0x0c, COARSE + 8, COARSE + 8, small);
    }

    /// VIPT: two colours are two lines (ARM1136 64 KiB), one colour is one
    /// line (ARM1176 16 KiB): the same accesses, reported on one only.
    #[test]
    fn vipt_aliases_are_stale_only_at_different_colours() {
        for (cpu, expected) in [("cpu=arm1136", 1), ("cpu=arm1176", 0)] {
            let (mut e, out) = engine(&[cpu]);
            map_other_colour(&mut e, Arch::Armv6);
            boot(&mut e, Arch::Armv6);
            load(&mut e, 0x100, PAGE_VA + 0x2000, 0x1000);
            store(&mut e, 0x200, 0x1000, 0x1000, 7);
            load(&mut e, 0x300, PAGE_VA + 0x2000, 0x1000);
            assert_eq!(e.violations(), expected, "{cpu}: {}", out.text());
            if expected == 1 {
                assert_eq!(e.findings()[0].violation.kind, ViolationKind::StaleRead);
                assert_eq!(e.findings()[0].pc, 0x300);
            }
        }
    }

    /// A descriptor written through the cache and used before a clean is a
    /// stale table walk at the instruction that needed the walk; cleaned and
    /// drained, it is not.
    #[test]
    fn an_uncleaned_descriptor_is_a_stale_table_walk() {
        for clean in [false, true] {
            let (mut e, _) = engine(&["cpu=arm926"]);
            boot(&mut e, Arch::Armv5);
            let coarse = L1Descriptor::Coarse {
                table: PhysAddr(COARSE),
                domain: 0,
            }
            .encode(Arch::Armv5)
            .unwrap();
            let slot_l1 = L1 + (PAGE_VA >> 20) * 4;
            store(&mut e, 0x30, slot_l1, slot_l1, coarse);
            op(&mut e, 0x34, CLEAN_LINE, slot_l1);
            op(&mut e, 0x38, DRAIN, 0);
            let small = L2Descriptor::Small {
                base: PhysAddr(0x5000),
                attrs: Attributes::KERNEL_DATA.to_hw(Arch::Armv5).unwrap(),
            }
            .encode(Arch::Armv5)
            .unwrap();
            // Read first: the ARM926 allocates on reads only.
            load(&mut e, 0x40, COARSE, COARSE);
            store(&mut e, 0x44, COARSE, COARSE, small);
            if clean {
                op(&mut e, 0x48, CLEAN_LINE, COARSE);
                op(&mut e, 0x4c, DRAIN, 0);
            }
            load(&mut e, 0x50, PAGE_VA, 0x5000);
            if clean {
                assert_eq!(e.violations(), 0);
            } else {
                assert_eq!(e.violations(), 1);
                let f = &e.findings()[0];
                assert_eq!(f.violation.kind, ViolationKind::StaleTableWalk);
                assert_eq!((f.pc, f.violation.pa), (0x50, COARSE));
            }
        }
    }

    /// ARMv6: non-global entries belong to their ASID; TLB operations by
    /// MVA, by ASID and all drop what they should, so the next access walks.
    #[test]
    fn tlb_entries_follow_asids_and_tlb_operations() {
        let (mut e, _) = engine(&["cpu=arm1176"]);
        boot(&mut e, Arch::Armv6);
        let walks = |e: &Engine| e.stats().walks;
        load(&mut e, 0x100, 0x1000, 0x1000);
        let w = walks(&e);
        load(&mut e, 0x104, 0x1004, 0x1004);
        assert_eq!(walks(&e), w, "TLB hit");
        op(&mut e, 0x108, TLB_MVA, 0x1000);
        load(&mut e, 0x10c, 0x1004, 0x1004);
        assert_eq!(walks(&e), w + 1, "dropped by MVA");
        op(&mut e, 0x110, CONTEXTIDR, 5);
        load(&mut e, 0x114, 0x1008, 0x1008);
        assert_eq!(walks(&e), w + 1, "a global entry serves every ASID");
        op(&mut e, 0x118, TLB_ASID, 5);
        load(&mut e, 0x11c, 0x1008, 0x1008);
        assert_eq!(walks(&e), w + 1, "global entries survive an ASID flush");
        op(&mut e, 0x120, TLB_ALL, 0);
        load(&mut e, 0x124, 0x1008, 0x1008);
        assert_eq!(walks(&e), w + 2);
        // QEMU's physical address disagreeing with the model's entry (a
        // stale TLB entry, or QEMU's own flush) makes the model walk again.
        e.on_access(0x128, 0x100c, 0x9_100c, 4, None, false);
        assert_eq!(e.stats().tlb_disagreements, 1);
    }

    /// `ram-base=`: a board whose RAM is not at 0 (QEMU's kzm, i.MX31, at
    /// 0x8000_0000) is modelled there: its table walked, a stale VIVT
    /// alias found, and what lies below the base counted, not modelled.
    #[test]
    fn ram_at_a_base_is_modelled_there_and_only_there() {
        let base = 0x8000_0000;
        let (mut e, out) = engine(&["cpu=arm926", "ram-base=0x80000000"]);
        assert!(
            out.text().contains("1 MiB RAM at 0x80000000"),
            "{}",
            out.text()
        );
        let l1 = base + L1;
        let attrs = Attributes::KERNEL_RWX.to_hw(Arch::Armv5).unwrap();
        let section = L1Descriptor::Section {
            base: PhysAddr(base),
            domain: 0,
            attrs,
        }
        .encode(Arch::Armv5)
        .unwrap();
        // VA 0x8000_0000 and 0x9000_0000 both map the first MiB of RAM.
        for va in [base, 0x9000_0000] {
            let entry = l1 + (va >> 20) * 4;
            store(&mut e, 0x10, entry, entry, section);
        }
        op(&mut e, 0x18, DRAIN, 0);
        op(&mut e, 0x1c, TTBR0, l1);
        op(&mut e, 0x20, SCTLR, SCTLR_M | SCTLR_C | SCTLR_I);
        let pa = base + 0x2_0000;
        load(&mut e, 0x24, pa, pa);
        store(&mut e, 0x28, 0x9002_0000, pa, 5);
        op(&mut e, 0x2c, DRAIN, 0);
        assert_eq!(e.violations(), 0);
        load(&mut e, 0x30, pa, pa);
        assert_eq!(e.violations(), 1, "{}", out.text());
        assert_eq!(e.stats().outside_ram, 0);
        e.on_access(0x34, 0x1000, 0x1000, 4, None, false);
        assert_eq!(e.stats().outside_ram, 1);
    }

    #[test]
    fn devices_ram_limits_and_failed_conditions_are_counted_not_modelled() {
        let (mut e, _) = engine(&["cpu=arm926"]);
        boot(&mut e, Arch::Armv5);
        e.on_access(0x10, 0x101f_1000, 0x101f_1000, 4, Some(0x41), true);
        e.on_access(0x14, 0x0020_0000, 0x0020_0000, 4, None, false);
        assert_eq!((e.stats().io, e.stats().outside_ram), (1, 1));
        let mut never = decode(TLB_ALL).unwrap();
        never.cond = 0; // EQ, with Z clear
        let ops = e.stats().cp15_ops;
        e.on_cp15(0x18, &never, 0, 0, 0);
        assert_eq!(e.stats().cp15_skipped, 1);
        assert_eq!(e.stats().cp15_ops, ops);
        assert_eq!(e.violations(), 0);
    }

    #[test]
    fn set_way_operands_follow_the_model_geometry() {
        let (e, _) = engine(&["cpu=arm926"]);
        // 16 KiB, 4 ways, 32-byte lines: 128 sets, way in bits 31:30.
        assert_eq!(e.set_way((3 << 30) | (127 << 5), false), (127, 3));
        assert_eq!(e.set_way(1 << 5, false), (1, 0));
        let (e, _) = engine(&["cpu=arm1136"]);
        // 64 KiB: 512 sets.
        assert_eq!(e.set_way((2 << 30) | (511 << 5), false), (511, 2));
    }

    #[test]
    fn memory_types_follow_tex_c_b() {
        let hw = |tex, c, b| HwAttrs {
            tex,
            c,
            b,
            ..HwAttrs::default()
        };
        assert_eq!(mem_type(hw(0, true, true), Arch::Armv5), MemType::WriteBack);
        assert_eq!(
            mem_type(hw(0, true, false), Arch::Armv5),
            MemType::WriteThrough
        );
        assert_eq!(
            mem_type(hw(0, false, true), Arch::Armv5),
            MemType::Bufferable
        );
        assert_eq!(
            mem_type(hw(0, false, false), Arch::Armv5),
            MemType::StronglyOrdered
        );
        assert_eq!(
            mem_type(hw(0, false, true), Arch::Armv6),
            MemType::StronglyOrdered
        );
        assert_eq!(
            mem_type(hw(1, false, false), Arch::Armv6),
            MemType::Bufferable
        );
        assert_eq!(
            mem_type(hw(0b101, false, true), Arch::Armv6),
            MemType::WriteBack
        );
        assert_eq!(
            mem_type(hw(0b110, true, false), Arch::Armv6),
            MemType::WriteThrough
        );
        assert_eq!(
            mem_type(hw(0b100, false, false), Arch::Armv6),
            MemType::Bufferable
        );
    }
}
