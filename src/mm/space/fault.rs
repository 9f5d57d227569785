//! Page faults: what [`AddressSpace::fault`] installs (zero-fill, a
//! page-cache page, a copy-on-write copy) and how a failure gives back what
//! it took.

use super::*;

impl AddressSpace {
    /// Resolves a user fault at `va`: checks the VMA, installs the page (or
    /// breaks copy-on-write) and records the mapping.
    pub fn fault<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        va: VirtAddr,
        access: FaultAccess,
    ) -> Result<FaultOutcome, SpaceError> {
        let vma = *self.find_vma(va).ok_or(SpaceError::NoMapping { va })?;
        let allowed = match access {
            FaultAccess::Read => vma.prot.intersects(Protection::READ | Protection::WRITE),
            FaultAccess::Write => vma.prot.contains(Protection::WRITE),
            FaultAccess::Execute => vma.prot.contains(Protection::EXEC),
        };
        if !allowed {
            return Err(SpaceError::AccessDenied {
                va,
                access,
                prot: vma.prot,
            });
        }
        let page_va = va.as_u32() & !(PAGE - 1);
        let object_page = match vma.object_page(VirtAddr(page_va)) {
            Some((id, page)) => {
                let size = sys.objects.get(id)?.size();
                if page >= size {
                    return Err(SpaceError::BeyondObject { va, page, size });
                }
                Some((id, page))
            }
            None => None,
        };
        let write = access == FaultAccess::Write;

        if let Some(&pa) = self.resident.get(&page_va) {
            let writable = self.mapping_of(sys, page_va, pa)?.writable;
            if !write || writable {
                return Ok(FaultOutcome::AlreadyMapped { pa });
            }
            if self.needs_copy(sys, &vma, page_va, pa)? {
                let to = sys.allocate_for(page_va / PAGE)?;
                if let Err(e) = self.replace_page(sys, &vma, page_va, to) {
                    sys.release_frame(to)?;
                    return Err(e);
                }
                return Ok(FaultOutcome::CopyOnWrite {
                    from: pa,
                    to,
                    from_fresh: false,
                });
            }
            self.refresh_entry(sys, page_va, pa)?;
            return Ok(FaultOutcome::Reused { pa });
        }

        // From here a failure gives back every frame this fault took (a
        // retried fault would otherwise leak one per try) and takes a page
        // it added to an object out again: nothing filled it, and a later
        // fault finding it resident would map it unfilled.
        let Some((id, page)) = object_page else {
            let pa = sys.allocate_for(page_va / PAGE)?;
            if let Err(e) = self.map_page(sys, &vma, page_va, pa) {
                sys.release_frame(pa)?;
                return Err(e);
            }
            return Ok(FaultOutcome::ZeroFill { pa });
        };
        let (pa, fresh) = match sys.objects.get(id)?.page(page) {
            Some(pa) => (pa, false),
            None => {
                let pa = sys.allocate_for(page)?;
                if let Err(e) = sys.objects.insert_page(id, page, pa) {
                    sys.release_frame(pa)?;
                    return Err(e.into());
                }
                (pa, true)
            }
        };
        let undo_fresh = |sys: &mut MemorySystem<M, F>| -> Result<(), SpaceError> {
            if fresh {
                sys.objects.remove_page(id, page)?;
                sys.release_frame(pa)?;
            }
            Ok(())
        };
        if write && !vma.shared {
            // A private write to a file page copies it straight away: the
            // page cache's frame is never writable through a private mapping.
            let to = match sys.allocate_for(page_va / PAGE) {
                Ok(to) => to,
                Err(e) => {
                    undo_fresh(sys)?;
                    return Err(e.into());
                }
            };
            if let Err(e) = self.map_page(sys, &vma, page_va, to) {
                sys.release_frame(to)?;
                undo_fresh(sys)?;
                return Err(e);
            }
            return Ok(FaultOutcome::CopyOnWrite {
                from: pa,
                to,
                from_fresh: fresh,
            });
        }
        if let Err(e) = self.map_page(sys, &vma, page_va, pa) {
            undo_fresh(sys)?;
            return Err(e);
        }
        Ok(FaultOutcome::ObjectPage { pa, fresh })
    }

    /// Puts frame `to` (fresh, unmapped) in place of the page resident at
    /// `va` (copy-on-write). What can fail is done before the old page
    /// goes: `to`'s reverse-map entry is recorded first, and the new entry
    /// lands in the coarse table the old one used, so no table frame is
    /// needed. On an error nothing has changed but that memory access.
    fn replace_page<M: TableMemory, F: TableFrames>(
        &mut self,
        sys: &mut MemorySystem<M, F>,
        vma: &Vma,
        va: u32,
        to: PhysAddr,
    ) -> Result<(), SpaceError> {
        let (attrs, writable) = self.attributes_for(sys, vma, va, to, false)?;
        sys.frames
            .add_mapping(to, self.user_mapping(vma, va, writable))?;
        let installed = self.unmap_page(sys, va).and_then(|()| {
            Ok(self
                .table
                .map_page(&mut sys.mem, &mut sys.table_frames, VirtAddr(va), to, attrs)?)
        });
        if let Err(e) = installed {
            sys.frames.remove_mapping(to, self.id, VirtAddr(va))?;
            return Err(e);
        }
        self.resident.insert(va, to);
        Ok(())
    }
}
