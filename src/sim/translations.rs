//! Translating CPU accesses (the current space's mappings, or its
//! attached tables through the TLB; the FCSE relocation), and the
//! translations of the last few pages the CPU touched, so that an access
//! does not look its page up in a hash map (or the TLB) each time.
//!
//! That cache is not part of the modelled hardware: it only remembers what
//! [`Sim::translate`](super::Sim) would compute again. An entry holds while
//! nothing changed the current space, a mapping, the TLB, the key or the
//! table epoch (a store to table memory) since it was made: each such
//! change [clears](Translations::clear) them all, so an entry is checked
//! by its page alone. Under those conditions a repeated walk through the
//! TLB would find the entry it made, checked at this epoch, and do nothing
//! else: no walk, no count, no report.

use super::*;

/// Entries, direct-mapped by virtual page number: as many as a workload
/// that strides across pages visits in a burst (the throughput benchmark's
/// thrashing workload moves to another of 16 pages on every access).
const ENTRIES: usize = 64;

#[derive(Clone, Copy)]
struct Entry {
    /// The [`Translations::generation`] it was made in (0: never made).
    generation: u64,
    page: u32,
    mapping: Mapping,
    global: bool,
}

pub(super) struct Translations {
    entries: [Entry; ENTRIES],
    /// Bumped by [`clear`](Self::clear): older entries no longer count.
    generation: u64,
}

impl Translations {
    pub fn new() -> Self {
        let empty = Entry {
            generation: 0,
            page: 0,
            mapping: Mapping {
                frame: 0,
                mem: super::MemType::StronglyOrdered,
                writable: false,
            },
            global: false,
        };
        Translations {
            entries: [empty; ENTRIES],
            generation: 1,
        }
    }

    /// The mapping of virtual page `page` in the current space, and
    /// whether it is global, if remembered.
    #[inline]
    pub fn get(&self, page: u32) -> Option<(Mapping, bool)> {
        let e = &self.entries[page as usize % ENTRIES];
        (e.generation == self.generation && e.page == page).then_some((e.mapping, e.global))
    }

    #[inline]
    pub fn insert(&mut self, page: u32, mapping: Mapping, global: bool) {
        self.entries[page as usize % ENTRIES] = Entry {
            generation: self.generation,
            page,
            mapping,
            global,
        };
    }

    /// Forgets every entry (a mapping, the TLB, the space, its key or table
    /// memory changed).
    pub fn clear(&mut self) {
        self.generation += 1;
    }
}

impl Sim {
    /// Translates `va` in the current space (its own mappings, then the
    /// kernel's global ones): physical address, mapping, and whether the
    /// mapping is global (kernel) — global lines carry key 0.
    #[inline]
    pub(super) fn translate(&mut self, va: u32) -> Result<(u32, Mapping, bool), SimError> {
        let page = va / PAGE;
        match self.translations.get(page) {
            Some((m, global)) => Ok((m.frame | (va & (PAGE - 1)), m, global)),
            None => self.translate_again(va),
        }
    }

    /// [`translate`](Self::translate) for a page not translated lately.
    #[inline(never)]
    fn translate_again(&mut self, va: u32) -> Result<(u32, Mapping, bool), SimError> {
        let page = va / PAGE;
        if let Some((l1, arch)) = self.spaces[self.current.0 as usize].table {
            let w = self.translate_through_tlb(l1, arch, va)?;
            let m = Mapping {
                frame: w.frame,
                mem: w.mem,
                writable: w.writable,
            };
            self.translations.insert(page, m, w.global);
            return Ok((m.frame | (va & (PAGE - 1)), m, w.global));
        }
        let own = self.spaces[self.current.0 as usize]
            .pages
            .get(&page)
            .copied();
        let (m, global) = match own {
            Some(m) => (m, self.current == KERNEL),
            None => match self.spaces[KERNEL.0 as usize].pages.get(&page) {
                Some(&m) => (m, true),
                None => {
                    return Err(SimError::Unmapped {
                        space: self.current,
                        va,
                    });
                }
            },
        };
        self.translations.insert(page, m, global);
        Ok((m.frame | (va & (PAGE - 1)), m, global))
    }

    /// The translation of `va` through the TLB, walking `l1` on a miss. A
    /// hit on an entry not checked against the current table and table
    /// memory is compared with a fresh walk: a difference is a
    /// [`ViolationKind::StaleTlbEntry`], and the stale entry is used, as
    /// the hardware would.
    fn translate_through_tlb(
        &mut self,
        l1: crate::addr::PhysAddr,
        arch: crate::mmu::Arch,
        va: u32,
    ) -> Result<Walked, SimError> {
        let mva = self.modified(va);
        let vpn = mva / PAGE;
        let asid = self.current_key as u8;
        let now = (l1.as_u32(), self.table_epoch);
        if let Some(entry) = self.tlb.lookup(vpn, asid) {
            let (walked, checked) = (entry.walked, entry.checked);
            if checked != now {
                let fresh = self.walk(l1, arch, mva, false);
                if fresh != Some(walked) {
                    let pa = walked.frame | (va & (PAGE - 1));
                    // The stale entry may point outside the modelled memory.
                    let truth = match self.check_pa(pa, 1) {
                        Ok(()) => self.truth(pa),
                        Err(_) => Truth {
                            version: 0,
                            writer: Writer::Initial,
                        },
                    };
                    let walked_pa = fresh.map(|f| f.frame | (va & (PAGE - 1)));
                    self.report(
                        ViolationKind::StaleTlbEntry { walked_pa },
                        Some(va),
                        pa,
                        truth,
                        truth.version,
                    );
                }
                if let Some(entry) = self.tlb.lookup(vpn, asid) {
                    entry.checked = (l1.as_u32(), self.table_epoch);
                }
            }
            return Ok(walked);
        }
        let walked = self.walk(l1, arch, mva, true).ok_or(SimError::Unmapped {
            space: self.current,
            va,
        })?;
        self.tlb.insert(
            vpn,
            tlb::Entry {
                walked,
                asid,
                checked: (l1.as_u32(), self.table_epoch),
            },
        );
        Ok(walked)
    }

    /// The FCSE PID in effect: the current key with
    /// [`Indexing::VivtKeyed`], else none (0).
    pub(super) fn fcse_pid(&self) -> u32 {
        if self.dcache.cfg.indexing == Indexing::VivtKeyed {
            u32::from(self.current_key & 0x7f)
        } else {
            0
        }
    }

    /// The modified virtual address of `va`: with a non-zero FCSE PID every
    /// address below 32 MiB moves to PID × 32 MiB before the caches and
    /// the TLB see it (ARM926EJ-S TRM ch. 3 / arm-cache-mm.md §1).
    pub(super) fn modified(&self, va: u32) -> u32 {
        let window = crate::mmu::FCSE_WINDOW_BYTES;
        let pid = self.fcse_pid();
        if pid != 0 && va < window {
            va + pid * window
        } else {
            va
        }
    }

    /// The lookup of a CPU access at `va` (translated to `pa`). With
    /// [`Indexing::VivtKeyed`] the space's key is an FCSE PID: with a
    /// non-zero PID every address below 32 MiB is relocated by PID × 32 MiB
    /// before the cache and TLB see it — global (kernel) mappings and
    /// instruction fetches included (arm-cache-mm.md §1; checked on QEMU
    /// 7.2's arm926) — so spaces with different PIDs use different lines
    /// there and the same lines above. A kernel that runs processes under
    /// PIDs must therefore live above 32 MiB (or see its own low mappings
    /// at a different modified address under each PID).
    pub(super) fn probe(&self, va: u32, pa: u32) -> Probe {
        Probe {
            va: self.modified(va),
            pa,
        }
    }
}
