//! Reports: findings, sites and their groups, the summary.

use super::*;

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
    pub(super) fn name(self) -> &'static str {
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
        _ => "Violation",
    }
}

/// Where reports go, with the symbols that name PCs.
pub(super) struct Reporter {
    pub(super) out: Box<dyn Write + Send>,
    pub(super) symbols: Option<Symbols>,
}

impl Reporter {
    /// The function holding `pc`, as one word (reports are `key=value`
    /// words: "<A as B>::f" becomes "<A_as_B>::f").
    pub(super) fn at(&self, pc: u32) -> String {
        match self.symbols.as_ref().and_then(|s| s.lookup(pc)) {
            Some(location) => location.to_string().replace(' ', "_"),
            None => "?".into(),
        }
    }

    /// The function holding `pc`, without the offset, as one word.
    pub(super) fn function(&self, pc: u32) -> String {
        match self.symbols.as_ref().and_then(|s| s.lookup(pc)) {
            Some(location) => location.name.replace(' ', "_"),
            None => "?".into(),
        }
    }

    pub(super) fn line(&mut self, text: &str) {
        // A report that cannot be written must not stop the guest.
        let _ = writeln!(self.out, "cachesan: {text}");
    }
}

/// One reporting site: a kind at a PC, how often, and the PC its group is
/// attributed to (see [`Finding::cause`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct Site {
    pub(super) kind: &'static str,
    pub(super) pc: u32,
    pub(super) cause: u32,
    pub(super) count: u64,
}

impl Engine {
    #[inline]
    pub(super) fn collect(&mut self, pc: u32, during: During) {
        if !self.sim.violations().is_empty() {
            self.record_violations(pc, during);
        }
    }

    pub(super) fn record_violations(&mut self, pc: u32, during: During) {
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

    pub(super) fn space_name(&self, space: SpaceId) -> String {
        if space == KERNEL {
            return "0".into();
        }
        let ttbr = self.space_ttbr.get(space.0 as usize).copied().unwrap_or(0);
        format!("{}(ttbr0={ttbr:#010x})", space.0)
    }

    pub(super) fn record(&mut self, finding: Finding) {
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
    pub(super) fn groups(&self, sites: &[Site]) -> Vec<String> {
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
