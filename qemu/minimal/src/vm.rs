//! The minimal kernel's own memory manager, and all of its glue to vacmm's
//! coherence engine: a table of frames with the engine's flags and a
//! reverse map, and per process a page table and its pages. Nothing of
//! vacmm's `mm`: the engine learns what it needs through
//! [`FrameKnowledge`] and [`MemoryTypes`], and is told each event.

use alloc::vec::Vec;

use vacmm::addr::{PhysAddr, VirtAddr};
use vacmm::coherence::{CoherenceError, Engine, FrameKnowledge, MemoryTypes, UserMapping};
use vacmm::mm::frames::{FrameError, PageFlags, SpaceId};
use vacmm::mm::space::SpaceError;
use vacmm::mmu::{
    Attributes, ContextSwitcher, Execute, MemoryType, PageTable, TableError, TableFrames,
    TableMemory, TranslationRegisters,
};

const PAGE: u32 = 4096;

/// One user-visible frame: the engine's flags and who maps it.
#[derive(Default)]
pub struct Frame {
    pub flags: PageFlags,
    pub users: Vec<UserMapping>,
}

/// One process: its name for the engine, its table (out only while the
/// engine switches to it), its pages.
pub struct Process {
    pub id: SpaceId,
    pub table: Option<PageTable>,
    pub pages: Vec<(VirtAddr, PhysAddr)>,
}

/// The kernel's memory: tables (and the cache) through `mem`, the frames
/// from `first` on, the processes.
pub struct Vm<M> {
    pub mem: M,
    pub first: PhysAddr,
    pub frames: Vec<Frame>,
    pub procs: Vec<Process>,
}

impl<M> Vm<M> {
    fn index(&self, pa: PhysAddr) -> Result<usize, FrameError> {
        let i = pa.as_u32().wrapping_sub(self.first.as_u32()) / PAGE;
        let end = u64::from(self.first.as_u32()) + u64::from(PAGE) * self.frames.len() as u64;
        match (i as usize) < self.frames.len() {
            true => Ok(i as usize),
            false => Err(FrameError::OutOfRange {
                pa,
                first: self.first,
                end,
            }),
        }
    }

    /// `space`'s table (a field borrow: the caller may use `mem` beside it).
    fn table(
        procs: &mut [Process],
        space: SpaceId,
        va: VirtAddr,
    ) -> Result<&mut PageTable, SpaceError> {
        let found = procs.iter_mut().find(|p| p.id == space);
        found
            .and_then(|p| p.table.as_mut())
            .ok_or(SpaceError::NoMapping { va })
    }
}

impl<M: TableMemory> FrameKnowledge for Vm<M> {
    type Memory = M;
    fn memory(&mut self) -> &mut M {
        &mut self.mem
    }
    fn user_mappings(
        &self,
        pa: PhysAddr,
    ) -> Result<impl Iterator<Item = UserMapping> + '_, FrameError> {
        Ok(self.frames[self.index(pa)?].users.iter().copied())
    }
    fn frame_flags(&self, pa: PhysAddr) -> Result<PageFlags, FrameError> {
        Ok(self.frames[self.index(pa)?].flags)
    }
    fn set_frame_flags(&mut self, pa: PhysAddr, flags: PageFlags) -> Result<(), FrameError> {
        let i = self.index(pa)?;
        self.frames[i].flags = flags;
        Ok(())
    }
}

impl<M: TableMemory> MemoryTypes for Vm<M> {
    fn memory_type(&mut self, space: SpaceId, va: VirtAddr) -> Result<MemoryType, CoherenceError> {
        let table = Self::table(&mut self.procs, space, va)?;
        let entry = table.translate(&mut self.mem, va)?;
        Ok(entry
            .attributes(table.arch())
            .map_err(TableError::from)?
            .memory)
    }
    fn set_memory_type(
        &mut self,
        space: SpaceId,
        va: VirtAddr,
        memory: MemoryType,
    ) -> Result<(), CoherenceError> {
        let table = Self::table(&mut self.procs, space, va)?;
        let attrs = table.translate(&mut self.mem, va)?.attributes(table.arch());
        let attrs = attrs.map_err(TableError::from)?.with_memory(memory);
        let flush = table.protect_page(&mut self.mem, va, attrs)?;
        flush.flush(self.mem.cache()).map_err(TableError::from)?;
        Ok(())
    }
}

impl<M: TableMemory> Vm<M>
where
    M::Cache: TranslationRegisters,
{
    /// Maps `pa` at `va` in process `proc`, records it, and tells the
    /// engine (`update_mmu_cache`: deferred kernel writes, the I-cache,
    /// alias conflicts).
    pub fn map(
        &mut self,
        engine: &mut Engine,
        tables: &mut impl TableFrames,
        proc: usize,
        (va, pa): (VirtAddr, PhysAddr),
        attrs: Attributes,
    ) -> Result<(), CoherenceError> {
        let i = self.index(pa)?;
        let p = &mut self.procs[proc];
        let table = p.table.as_mut().ok_or(SpaceError::NoMapping { va })?;
        table.map_page(&mut self.mem, tables, va, pa, attrs)?;
        p.pages.push((va, pa));
        let writable = attrs.access.user_writable();
        let mapping = UserMapping {
            space: p.id,
            va,
            writable,
            shared: true,
        };
        self.frames[i].users.push(mapping);
        let (space, exec) = (mapping.space, attrs.execute == Execute::Allow);
        engine.user_page_mapped(self, space, va, pa, exec)
    }

    /// Runs process `proc` (the engine separates what the switch leaves
    /// in the cache).
    pub fn switch(
        &mut self,
        engine: &mut Engine,
        switcher: &mut ContextSwitcher,
        proc: usize,
    ) -> Result<(), CoherenceError> {
        let space = self.procs[proc].id;
        let no_table = SpaceError::NoMapping { va: VirtAddr(0) };
        let mut table = self.procs[proc].table.take().ok_or(no_table)?;
        // SAFETY: every process table shares the kernel's entries.
        let switched = unsafe { engine.switch_to_table(switcher, self, space, &mut table) };
        self.procs[proc].table = Some(table);
        switched.map(|_| ())
    }

    /// Process `proc` ends (another one runs): the engine writes its lines
    /// back, then its mappings leave the reverse map. Its table's frames
    /// stay with the kernel (a real kernel would free them).
    pub fn exit(&mut self, engine: &mut Engine, proc: usize) -> Result<(), CoherenceError> {
        let (space, pages) = (self.procs[proc].id, self.procs[proc].pages.clone());
        engine.user_space_exit(self, space, &pages)?;
        for frame in &mut self.frames {
            frame.users.retain(|u| u.space != space);
        }
        self.procs[proc].pages.clear();
        Ok(())
    }
}
