//! `fork`: a child's copy of a space, and the parent made whole again
//! when the child cannot be built.

use super::*;

impl AddressSpace {
    /// A copy of this space for a child process (`fork`), with a fresh id,
    /// over `table` (a fresh user table that already maps the kernel): the same
    /// VMAs, object windows and break; shared pages mapped in both; private
    /// pages mapped read-only in both, so the first write of either side
    /// copies (copy-on-write). Memory types are copied, so a page the
    /// coherence engine made uncacheable stays so in the child.
    ///
    /// The cache maintenance owed first (the parent's dirty lines must
    /// reach memory before its pages turn copy-on-write on VIVT) is the
    /// coherence engine's `fork`. If a table frame runs out half-way, the
    /// child is torn down again, the parent's entries that turned
    /// copy-on-write are made writable again, and the error returned: the
    /// parent is as it was. The child's second-level tables are freed to
    /// the table frames; `table` itself is consumed, so its L1 frame
    /// (`table.l1()`, 16 KiB) is the caller's to reuse or free — read the
    /// address before the call.
    pub fn fork<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        table: PageTable,
    ) -> Result<AddressSpace, SpaceError> {
        let mut child = AddressSpace::new(sys, self.config, table)?;
        child.gaps = self.gaps.clone();
        child.brk_start = self.brk_start;
        child.brk = self.brk;
        let vmas: Vec<Vma> = self.vmas.values().copied().collect();
        if let Err(e) = child.replace_windows(sys, &[], &vmas) {
            return Err(child.abandon(sys, e));
        }
        child.vmas = self.vmas.clone();
        let pages: Vec<(u32, PhysAddr)> = self.resident.iter().map(|(&va, &pa)| (va, pa)).collect();
        for (i, &(va, pa)) in pages.iter().enumerate() {
            if let Err(e) = self.share_page_with(sys, &mut child, va, pa) {
                let e = child.abandon(sys, e);
                // The child's mappings are gone: every page shared so far
                // is the parent's alone again, and gets back the entry it
                // had (writable where its VMA and ownership allow).
                for &(va, pa) in &pages[..=i] {
                    self.refresh_entry(sys, va, pa)?;
                }
                return Err(e);
            }
        }
        Ok(child)
    }

    /// Maps resident page `va` (frame `pa`) into `child` and write-protects
    /// the parent's entry if it turns copy-on-write.
    fn share_page_with<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        child: &mut AddressSpace,
        va: u32,
        pa: PhysAddr,
    ) -> Result<(), SpaceError> {
        let vma = *self
            .find_vma(VirtAddr(va))
            .ok_or(SpaceError::NoMapping { va: VirtAddr(va) })?;
        let memory = self.memory_type(sys, VirtAddr(va))?;
        child.map_page(sys, &vma, va, pa)?;
        if memory != MemoryType::NormalWriteBack {
            child.set_memory_type(sys, VirtAddr(va), memory)?;
        }
        if !vma.shared && self.mapping_of(sys, va, pa)?.writable {
            self.refresh_entry(sys, va, pa)?;
        }
        Ok(())
    }

    /// Tears down a child whose fork failed; returns the fork's error (or
    /// the teardown's, which is worse).
    fn abandon<M: TableMemory, F: TableFrames>(
        self,
        sys: &mut MemorySystem<M, F>,
        error: SpaceError,
    ) -> SpaceError {
        match self.destroy(sys) {
            Ok(_) => error,
            Err(teardown) => teardown,
        }
    }
}
