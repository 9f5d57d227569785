//! The model's TLB: translations walked from attached tables, kept as the
//! hardware keeps them, so a missing or misdirected TLB operation shows.
//!
//! - ARMv5 (ARM926): entries are keyed by the modified virtual address
//!   (after the FCSE relocation; ARM926EJ-S TRM ch. 3 and arm-cache-mm.md
//!   §1: with a non-zero PID every address below 32 MiB is relocated before
//!   translation) and carry no address-space tag: a hit needs only the MVA.
//!   c8,c7,1 drops the entry of the MVA given, whatever space made it.
//! - ARMv6 (ARM1136/ARM1176): a non-global entry (nG=1) is tagged with the
//!   ASID current when it was walked; a lookup hits an entry that is global
//!   or carries the current ASID — whichever table TTBR0 points at (the
//!   ARMv6 ARM's VMSA chapter on ASIDs; the reason Linux switches through a
//!   reserved TTBR0, arm-cache-mm.md §2). Invalidate by ASID (c8,c7,2) drops
//!   that ASID's non-global entries; invalidate by MVA (c8,c7,1 with the
//!   ASID in bits \[7:0\], ARM1136JF-S TRM §3.3.30 as cited in
//!   `arch/armv6.rs`) drops the page's entry of that ASID and the page's
//!   global entries — a global entry matches whatever ASID the operation
//!   names. That last point is recalled from the ARMv6 ARM's TLB-operation
//!   description, not checked against the text here; Linux relies on it
//!   (`local_flush_tlb_kernel_page` flushes kernel pages with c8,c7,1 and
//!   ASID 0), and so does `CacheMaintenance::invalidate_tlb_page`'s
//!   contract ("global entries and those of ASID 0").
//!
//! The TLB has unlimited size (nothing is ever evicted), so a missing flush
//! always shows. Each entry remembers the table and the state of the table
//! memory it was last checked against; a hit on an entry that a fresh walk
//! of the current table would not give is a
//! [`ViolationKind::StaleTlbEntry`](super::ViolationKind::StaleTlbEntry).

use rustc_hash::FxHashMap;

/// One walked translation: frame, memory type, permission, global.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Walked {
    pub frame: u32,
    pub mem: super::MemType,
    pub writable: bool,
    pub global: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub walked: Walked,
    /// The ASID it was walked under (ARMv6, non-global entries).
    pub asid: u8,
    /// The L1 table and table-memory epoch it was last checked against.
    pub checked: (u32, u64),
}

/// The TLB, keyed by (modified) virtual page number.
pub(crate) struct Tlb {
    /// ARMv6: entries carry ASIDs.
    tagged: bool,
    pub(super) entries: FxHashMap<u32, Vec<Entry>>,
}

impl Tlb {
    pub fn new(tagged: bool) -> Self {
        Tlb {
            tagged,
            entries: FxHashMap::default(),
        }
    }

    fn matches(&self, e: &Entry, asid: u8) -> bool {
        !self.tagged || e.walked.global || e.asid == asid
    }

    /// The entry a lookup of `vpn` under `asid` hits.
    pub fn lookup(&mut self, vpn: u32, asid: u8) -> Option<&mut Entry> {
        let tagged = self.tagged;
        self.entries
            .get_mut(&vpn)?
            .iter_mut()
            .find(|e| !tagged || e.walked.global || e.asid == asid)
    }

    pub fn insert(&mut self, vpn: u32, entry: Entry) {
        let asid = entry.asid;
        let tagged = self.tagged;
        let list = self.entries.entry(vpn).or_default();
        list.retain(|e| tagged && !e.walked.global && e.asid != asid && !entry.walked.global);
        list.push(entry);
    }

    /// c8,c7,0.
    pub fn invalidate_all(&mut self) {
        self.entries.clear();
    }

    /// c8,c7,1: the page's entries that are global or of `asid` (ARMv5:
    /// every entry of the page).
    pub fn invalidate_page(&mut self, vpn: u32, asid: u8) {
        let Some(mut list) = self.entries.remove(&vpn) else {
            return;
        };
        list.retain(|e| !self.matches(e, asid));
        if !list.is_empty() {
            self.entries.insert(vpn, list);
        }
    }

    /// c8,c7,2: every non-global entry of `asid`.
    pub fn invalidate_asid(&mut self, asid: u8) {
        self.entries.retain(|_, list| {
            list.retain(|e| e.walked.global || e.asid != asid);
            !list.is_empty()
        });
    }
}
