//! The engine driven by a kernel with its own memory manager: the
//! frame-level calls (`user_page_mapped`, `user_page_unmapping`,
//! `switch_to_table`, `user_space_exit`, and `kmap` / `page_cache_write`
//! over another [`FrameKnowledge`]) on a tiny VM of this file's own — a
//! frame table with a reverse map and one page table per process, nothing
//! of vacmm's `mm` — on the cache model. Each scenario has a twin that
//! leaves the call out and is caught by the model's oracle.

use std::collections::BTreeMap;

use super::*;
use crate::mm::ids::SpaceIds;
use crate::mmu::Attributes;
use crate::sim::Sim;

/// The tiny VM's books: per frame the engine's flags and the user
/// mappings, per process its table and the model's number for it.
#[derive(Default)]
struct Books {
    frames: BTreeMap<PhysAddr, (PageFlags, Vec<UserMapping>)>,
    tables: BTreeMap<SpaceId, (PageTable, crate::sim::SpaceId)>,
    ids: SpaceIds,
}

/// The VM as the engine sees it: the books and the model's memory.
struct Vm<'a> {
    mem: &'a mut Sim,
    books: &'a mut Books,
}

/// A frame the VM does not manage.
fn not_ours(pa: PhysAddr) -> FrameError {
    use crate::check::machine::{MEMORY, USER_FRAMES};
    FrameError::OutOfRange {
        pa,
        first: PhysAddr(USER_FRAMES),
        end: u64::from(MEMORY),
    }
}

impl Books {
    fn frame(&self, pa: PhysAddr) -> Result<&(PageFlags, Vec<UserMapping>), FrameError> {
        self.frames.get(&pa).ok_or(not_ours(pa))
    }
}

impl FrameKnowledge for Vm<'_> {
    type Memory = Sim;
    fn memory(&mut self) -> &mut Sim {
        self.mem
    }
    fn user_mappings(
        &self,
        pa: PhysAddr,
    ) -> Result<impl Iterator<Item = UserMapping> + '_, FrameError> {
        Ok(self.books.frame(pa)?.1.iter().copied())
    }
    fn frame_flags(&self, pa: PhysAddr) -> Result<PageFlags, FrameError> {
        Ok(self.books.frame(pa)?.0)
    }
    fn set_frame_flags(&mut self, pa: PhysAddr, flags: PageFlags) -> Result<(), FrameError> {
        let frame = self.books.frames.get_mut(&pa);
        frame.ok_or(not_ours(pa))?.0 = flags;
        Ok(())
    }
}

impl MemoryTypes for Vm<'_> {
    fn memory_type(&mut self, space: SpaceId, va: VirtAddr) -> Result<MemoryType, CoherenceError> {
        let table = &self.books.tables[&space].0;
        let arch = table.arch();
        let t = table.translate(self.mem, va)?;
        Ok(t.attributes(arch).map_err(TableError::from)?.memory)
    }
    fn set_memory_type(
        &mut self,
        space: SpaceId,
        va: VirtAddr,
        memory: MemoryType,
    ) -> Result<(), CoherenceError> {
        let table = &mut self.books.tables.get_mut(&space).expect("a process").0;
        let arch = table.arch();
        let attrs = table
            .translate(self.mem, va)?
            .attributes(arch)
            .map_err(TableError::from)?;
        let flush = table.protect_page(self.mem, va, attrs.with_memory(memory))?;
        flush.flush(self.mem.cache()).map_err(TableError::from)?;
        Ok(())
    }
}

/// A machine (for the model, the kernel's table, the engine and the
/// switcher) with the tiny VM beside vacmm's `mm`, which it only borrows
/// frames and table frames from.
struct Own {
    m: Machine,
    books: Books,
}

impl Own {
    fn new(model: CpuModel) -> Own {
        Own {
            m: Machine::new(model),
            books: Books::default(),
        }
    }

    /// On an ARM926 whose switches keep every space's lines (FCSE PIDs).
    fn fcse() -> Own {
        Own {
            m: Machine::with_switching(CpuModel::arm926(), Switching::Fcse),
            books: Books::default(),
        }
    }

    fn vm(&mut self) -> Vm<'_> {
        Vm {
            mem: &mut self.m.sys.mem,
            books: &mut self.books,
        }
    }

    fn process(&mut self) -> SpaceId {
        let table = self.m.child_table();
        let sim = self
            .m
            .sys
            .mem
            .space_with_table(table.l1())
            .expect("attached");
        let id = self.books.ids.issue().expect("an id");
        self.books.tables.insert(id, (table, sim));
        id
    }

    /// A frame of `colour`, taken from vacmm's allocator and zeroed in
    /// memory (no line holds it yet).
    fn frame(&mut self, colour: u32) -> PhysAddr {
        let pa = self
            .m
            .sys
            .allocator
            .allocate_colour(colour)
            .expect("a frame");
        self.books
            .frames
            .insert(pa, (PageFlags::empty(), Vec::new()));
        pa
    }

    /// Installs `va → pa` in `space` and records it, then (unless `tell`
    /// is false: the twins) tells the engine.
    fn map(&mut self, space: SpaceId, va: u32, pa: PhysAddr, exec: bool, tell: bool) {
        let (va, user) = (VirtAddr(va), Attributes::USER_DATA);
        let table = &mut self.books.tables.get_mut(&space).unwrap().0;
        table
            .map_page(
                &mut self.m.sys.mem,
                &mut self.m.sys.table_frames,
                va,
                pa,
                user,
            )
            .unwrap();
        let mapping = UserMapping {
            space,
            va,
            writable: true,
            shared: true,
        };
        self.books.frames.get_mut(&pa).unwrap().1.push(mapping);
        if tell {
            let Own { m, books } = self;
            let mut vm = Vm {
                mem: &mut m.sys.mem,
                books,
            };
            m.engine
                .user_page_mapped(&mut vm, space, va, pa, exec)
                .unwrap();
        }
    }

    /// Tells the engine (unless `tell` is false), then removes `va` of
    /// `space` from the table and the books.
    fn unmap(&mut self, space: SpaceId, va: u32, tell: bool) {
        let va = VirtAddr(va);
        let pa = self.books.tables[&space]
            .0
            .translate(&mut self.m.sys.mem, va)
            .unwrap()
            .pa;
        if tell {
            let Own { m, books } = self;
            let mut vm = Vm {
                mem: &mut m.sys.mem,
                books,
            };
            m.engine
                .user_page_unmapping(&mut vm, space, va, pa)
                .unwrap();
        }
        let table = &mut self.books.tables.get_mut(&space).unwrap().0;
        let (_, flush) = table.unmap_page(&mut self.m.sys.mem, va).unwrap();
        flush.flush(self.m.sys.mem.cache()).unwrap();
        self.books
            .frames
            .get_mut(&pa)
            .unwrap()
            .1
            .retain(|u| !(u.space == space && u.va == va));
    }

    /// Runs `space`: through the engine, or (the twins) the switcher alone.
    fn switch(&mut self, space: SpaceId, tell: bool) {
        // Out of the books while the switch holds it and the VM the books.
        let (mut table, sim) = self.books.tables.remove(&space).expect("a process");
        let Own { m, books } = self;
        if tell {
            let mut vm = Vm {
                mem: &mut m.sys.mem,
                books,
            };
            // SAFETY: the model's registers.
            unsafe {
                m.engine
                    .switch_to_table(&mut m.switcher, &mut vm, space, &mut table)
                    .unwrap();
            }
        } else {
            // SAFETY: as above.
            unsafe { m.switcher.switch_to(&mut m.sys.mem, &mut table).unwrap() };
            m.engine.set_current(space, false);
        }
        assert_eq!(m.sys.mem.current_space(), sim);
        self.books.tables.insert(space, (table, sim));
    }

    /// The kernel reads word 0 of `pa` through a `Kmap`.
    fn kernel_read(&mut self, pa: PhysAddr) -> u32 {
        let Own { m, books } = self;
        let mut vm = Vm {
            mem: &mut m.sys.mem,
            books,
        };
        let mut kmap = m.engine.kmap(&mut vm, pa, KmapAccess::Read).unwrap();
        let va = kmap.va().as_u32();
        let value = kmap.mem().load(va, 4).unwrap();
        kmap.finish().unwrap();
        value
    }

    /// The kernel writes word 0 of `pa` through a `PageCacheWrite`.
    fn kernel_write(&mut self, pa: PhysAddr, value: u32) {
        let Own { m, books } = self;
        let mut vm = Vm {
            mem: &mut m.sys.mem,
            books,
        };
        let mut write = m.engine.page_cache_write(&mut vm, pa).unwrap();
        let va = write.va().as_u32();
        // Loaded first: the ARM926 and ARM1136 allocate lines on reads
        // only, and a store that hits leaves the dirty line in question.
        write.mem().load(va, 4).unwrap();
        write.mem().store(va, 4, value).unwrap();
        write.finish().unwrap();
    }

    /// A user store at `va` of the running process, after a load (lines
    /// are allocated on reads: the store then dirties one).
    fn user_write(&mut self, va: u32, value: u32) {
        self.m.sys.mem.load(va, 4).unwrap();
        self.m.sys.mem.store(va, 4, value).unwrap();
    }

    /// The oracle's verdict: nothing when the engine was told (`tell`),
    /// something when it was not (the twin).
    fn caught_unless(&mut self, tell: bool) {
        let found = violations(&mut self.m);
        assert_eq!(found.is_empty(), tell, "tell {tell}: {found:?}");
    }
}

/// A kernel write to a page nobody maps is deferred; the first mapping
/// (`user_page_mapped`) completes it. The twin maps without telling the
/// engine: on VIVT the kernel's dirty line never reaches memory and the
/// user reads the old bytes.
#[test]
fn a_deferred_kernel_write_is_completed_when_a_process_maps_the_page() {
    for tell in [true, false] {
        let mut own = Own::new(CpuModel::arm926());
        let a = own.process();
        let pa = own.frame(0);
        // Switched first: the ARM926's switch flushes the whole cache.
        own.switch(a, true);
        own.kernel_write(pa, 0xfeed);
        assert_eq!(own.m.engine.counters().deferred, 1);
        own.map(a, BASE, pa, false, tell);
        assert_eq!(own.m.sys.mem.load(BASE, 4).unwrap() == 0xfeed, tell);
        own.caught_unless(tell);
    }
}

/// A process's dirty line of a page it is about to lose is written back
/// (`user_page_unmapping`); the kernel then reads what it wrote. The twin
/// unmaps without telling the engine: the kernel reads stale memory.
#[test]
fn a_page_a_process_unmaps_keeps_what_it_wrote() {
    for tell in [true, false] {
        let mut own = Own::new(CpuModel::arm926());
        let a = own.process();
        let pa = own.frame(0);
        own.switch(a, true);
        own.map(a, BASE, pa, false, true);
        own.user_write(BASE, 0xc0de);
        own.unmap(a, BASE, tell);
        assert_eq!(own.kernel_read(pa) == 0xc0de, tell);
        own.caught_unless(tell);
    }
}

/// Two processes map one frame at different colours under ASIDs (no
/// flush at a switch): the engine separates their lines at each switch
/// (`switch_to_table`). The twin switches with the switcher alone: the
/// second process reads its own old line.
#[test]
fn a_page_two_processes_share_at_different_colours_is_separated_at_switches() {
    for tell in [true, false] {
        let mut own = Own::new(CpuModel::arm1136_32k());
        let (a, b) = (own.process(), own.process());
        let pa = own.frame(0);
        own.switch(b, true);
        own.map(b, BASE + PAGE, pa, false, true);
        assert_eq!(own.m.sys.mem.load(BASE + PAGE, 4).unwrap(), 0);
        own.switch(a, true);
        own.map(a, BASE, pa, false, true);
        own.user_write(BASE, 0xa11a);
        own.switch(b, tell);
        assert_eq!(own.m.sys.mem.load(BASE + PAGE, 4).unwrap() == 0xa11a, tell);
        own.caught_unless(tell);
    }
}

/// One process maps one frame writable at two colours: the engine makes
/// both mappings uncacheable through the VM's `MemoryTypes`, and each
/// reads what the other wrote. The twin never tells the engine.
#[test]
fn one_process_mapping_a_frame_at_two_colours_gets_it_uncached() {
    for tell in [true, false] {
        let mut own = Own::new(CpuModel::arm1136_32k());
        let a = own.process();
        let pa = own.frame(0);
        own.switch(a, true);
        own.map(a, BASE, pa, false, tell);
        own.map(a, BASE + PAGE, pa, false, tell);
        if tell {
            let mut vm = own.vm();
            for va in [BASE, BASE + PAGE] {
                let memory = vm.memory_type(a, VirtAddr(va)).unwrap();
                assert!(!memory.is_cached(), "{va:#x}: {memory:?}");
            }
            assert_eq!(own.m.engine.counters().made_uncached, 1);
        }
        own.user_write(BASE, 0x1);
        own.user_write(BASE + PAGE, 0x2);
        assert_eq!(own.m.sys.mem.load(BASE, 4).unwrap() == 0x2, tell);
        own.caught_unless(tell);
    }
}

/// A process that exits is refused while it runs (nothing done); once
/// another runs, `user_space_exit` writes its lines back and forgets it,
/// and the kernel reads what it wrote. The twin drops the process without
/// the call: the kernel reads stale memory.
#[test]
fn a_process_that_exits_leaves_its_writes_in_memory() {
    for tell in [true, false] {
        let mut own = Own::new(CpuModel::arm1136_32k());
        let (a, b) = (own.process(), own.process());
        let pa = own.frame(1);
        own.switch(a, true);
        own.map(a, BASE, pa, false, true);
        own.user_write(BASE, 0xdead);
        let pages = [(VirtAddr(BASE), pa)];
        let Own { m, books } = &mut own;
        let mut vm = Vm {
            mem: &mut m.sys.mem,
            books,
        };
        let e = m.engine.user_space_exit(&mut vm, a, &pages).unwrap_err();
        assert_eq!(e, CoherenceError::StillRunning { space: a });
        assert!(own.m.engine.is_live(a));
        own.switch(b, true);
        if tell {
            let Own { m, books } = &mut own;
            let mut vm = Vm {
                mem: &mut m.sys.mem,
                books,
            };
            m.engine.user_space_exit(&mut vm, a, &pages).unwrap();
        }
        own.books.frames.get_mut(&pa).unwrap().1.clear();
        assert_eq!(own.kernel_read(pa) == 0xdead, tell);
        own.caught_unless(tell);
    }
}

/// `SpaceView` changes only the space it holds; `MemorySystem` answers
/// for frames it manages only.
#[test]
fn vacmm_mm_as_frame_knowledge_refuses_what_it_does_not_hold() {
    let mut m = Machine::new(CpuModel::arm1136_32k());
    let mut a = m.space();
    let b = m.space();
    let outside = PhysAddr(0x10_0000);
    assert!(m.sys.frame_flags(outside).is_err());
    assert!(m.sys.set_frame_flags(outside, PageFlags::DIRTY).is_err());
    let mut view = SpaceView {
        sys: &mut m.sys,
        space: &mut a,
    };
    let va = VirtAddr(BASE);
    let refused = CoherenceError::Space(SpaceError::NoMapping { va });
    assert_eq!(view.memory_type(b.id(), va), Err(refused));
    assert_eq!(
        view.set_memory_type(b.id(), va, MemoryType::Bufferable),
        Err(refused)
    );
}

/// Found by the minimal kernel's model suite (`qemu/minimal/tests/model.rs`):
/// an engine without kernel windows reads a frame through the linear map.
/// A first `Kmap` read leaves the kernel's line at the frame's own colour;
/// the process then writes at its colour; a second `Kmap` read must not
/// hit the kernel's old line (it did: the engine dropped the linear map's
/// lines only when the access went through a window). The same for the
/// source of a copy-on-write copy.
#[test]
fn a_kernel_read_through_the_linear_map_sees_what_the_process_wrote_since() {
    let mut own = Own::new(CpuModel::arm1136_32k());
    // No windows: the engine works through the linear map.
    let info = own.m.sys.mem.model().info();
    let policy: Box<dyn Policy> = Box::new(Vacmm);
    own.m.engine = Engine::with_policy(info, 0, own.m.switcher.policy(), policy).unwrap();
    let a = own.process();
    let pa = own.frame(1);
    own.switch(a, true);
    own.map(a, BASE, pa, false, true);
    assert_eq!(own.kernel_read(pa), 0);
    own.user_write(BASE, 0x600d);
    assert_eq!(own.kernel_read(pa), 0x600d);
    own.caught_unless(true);
    // The copy's source, the same way.
    own.user_write(BASE, 0xc0b1);
    let to = own.frame(1);
    let Own { m, books } = &mut own;
    let mut vm = Vm {
        mem: &mut m.sys.mem,
        books,
    };
    m.engine
        .copy_user_page(&mut vm, to, pa, VirtAddr(BASE + PAGE))
        .unwrap();
    assert_eq!(own.kernel_read(to), 0xc0b1);
    own.caught_unless(true);
}

/// Under FCSE PIDs a switch leaves the last process's lines in the cache
/// (it stays live); `user_space_exit` writes them back and forgets it.
/// The twin drops the process without the call: the kernel reads stale
/// memory, since the dirty line sits at the process's modified address.
#[test]
fn a_process_that_exits_under_fcse_pids_is_written_back_and_forgotten() {
    // Below 32 MiB: the processes fit their PID windows.
    const LOW: u32 = 0x0100_0000;
    for tell in [true, false] {
        let mut own = Own::fcse();
        let (a, b) = (own.process(), own.process());
        let pa = own.frame(0);
        own.switch(a, true);
        own.map(a, LOW, pa, false, true);
        own.user_write(LOW, 0xfc5e);
        own.switch(b, true);
        assert!(own.m.engine.is_live(a), "an FCSE switch keeps A's lines");
        if tell {
            let Own { m, books } = &mut own;
            let mut vm = Vm {
                mem: &mut m.sys.mem,
                books,
            };
            let pages = [(VirtAddr(LOW), pa)];
            m.engine.user_space_exit(&mut vm, a, &pages).unwrap();
            assert!(!m.engine.is_live(a), "forgotten");
            assert!(m.engine.is_live(b), "the running process stays live");
        }
        own.books.frames.get_mut(&pa).unwrap().1.clear();
        assert_eq!(own.kernel_read(pa) == 0xfc5e, tell);
        own.caught_unless(tell);
    }
}

/// `user_page_unmapping` forgets the code's sync only when the mapping
/// going away is writable (what it wrote is not the code synced): a
/// read-only mapping leaving keeps it, whatever writable mappings the
/// frame has elsewhere — at another address of the same space, or at the
/// same address of another. (The flags alone: a cache that does not alias
/// owes no line work at an unmapping.)
#[test]
fn only_a_writable_mapping_leaving_forgets_the_code_sync() {
    let mut own = Own::new(CpuModel::arm1176_16k());
    let (a, b) = (own.process(), own.process());
    let pa = own.frame(0);
    let synced = PageFlags::EXECUTABLE | PageFlags::CODE_SYNCED;
    let mapping = |space, va, writable| UserMapping {
        space,
        va: VirtAddr(va),
        writable,
        shared: true,
    };
    let mappings = vec![
        mapping(a, 0x0100_0000, false),
        mapping(a, 0x0100_4000, true),
        mapping(b, 0x0100_0000, true),
    ];
    own.books.frames.insert(pa, (synced, mappings));
    let leaving = |own: &mut Own, space, va| {
        let Own { m, books } = own;
        let mut vm = Vm {
            mem: &mut m.sys.mem,
            books,
        };
        m.engine
            .user_page_unmapping(&mut vm, space, VirtAddr(va), pa)
            .unwrap();
        own.books.frames[&pa].0
    };
    assert_eq!(
        leaving(&mut own, a, 0x0100_0000),
        synced,
        "a read-only mapping left"
    );
    assert_eq!(
        leaving(&mut own, a, 0x0100_4000),
        PageFlags::EXECUTABLE,
        "the writable one left"
    );
}
