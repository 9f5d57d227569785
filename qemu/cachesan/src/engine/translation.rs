//! The guest's translation regime (from its CP15 writes) and the model's
//! TLB: which physical address and memory type each access gets.

use super::*;

/// The guest's translation regime, from its CP15 writes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Regime {
    pub(super) arch: GuestArch,
    pub(super) sctlr: u32,
    pub(super) ttbr0: u32,
    pub(super) ttbr1: u32,
    pub(super) ttbcr: u32,
    pub(super) fcse: u32,
    pub(super) contextidr: u32,
}

impl Regime {
    pub(super) fn mmu_on(&self) -> bool {
        self.sctlr & SCTLR_M != 0
    }

    /// The modified virtual address (FCSE) caches and TLBs see.
    pub(super) fn mva(&self, va: u32) -> u32 {
        if va < FCSE_WINDOW { va | self.fcse } else { va }
    }

    /// The L1 table for `mva` (ARMv6 TTBCR.N splits TTBR0 / TTBR1).
    pub(super) fn l1_for(&self, mva: u32) -> u32 {
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

    pub(super) fn format(&self) -> Arch {
        if self.arch == GuestArch::V6 && self.sctlr & SCTLR_XP != 0 {
            Arch::Armv6
        } else {
            Arch::Armv5
        }
    }

    /// The key lines and TLB entries of non-global mappings carry.
    pub(super) fn key(&self) -> u16 {
        match self.arch {
            GuestArch::V5 => (self.fcse >> 25) as u16,
            GuestArch::V6 => (self.contextidr & 0xff) as u16,
        }
    }

    /// The TLB tag of non-global entries (0 is global).
    pub(super) fn asid_tag(&self) -> u16 {
        match self.arch {
            GuestArch::V5 => 0,
            GuestArch::V6 => (self.contextidr & 0xff) as u16 + 1,
        }
    }
}

/// A translation the model walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TlbEntry {
    pub(super) frame: u32,
    pub(super) mem: MemType,
    pub(super) global: bool,
}

/// The memory type of descriptor bits, as the L1 (inner) cache sees it.
/// ARMv6 TEX[2] = 1 is "cached memory" with the inner policy in C:B;
/// write-allocate is not modelled (read-allocate only), TEX remap
/// (ARM1176 SCTLR.TRE) neither.
pub(super) fn mem_type(attrs: HwAttrs, arch: Arch) -> MemType {
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

impl Engine {
    pub(super) fn data_attributes(&mut self, mva: u32, pa: u32) -> (MemType, bool) {
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

    pub(super) fn fetch_translation(&mut self, mva: u32) -> Option<Translated> {
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

    pub(super) fn maintenance_translation(&mut self, mva: u32) -> Option<Translated> {
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
    pub(super) fn lookup(&mut self, mva: u32, qemu_pa: Option<u32>) -> Option<TlbEntry> {
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

    pub(super) fn lookup_slow(
        &mut self,
        page: u32,
        mva: u32,
        qemu_pa: Option<u32>,
    ) -> Option<TlbEntry> {
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

    pub(super) fn walk(&mut self, mva: u32) -> Option<TlbEntry> {
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
    pub(super) fn switch_space(&mut self) {
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

    pub(super) fn apply_key(&mut self) {
        let current = self.sim.current_space();
        let _ = self.sim.set_key(current, self.regime.key());
    }
}
