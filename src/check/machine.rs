//! A machine: the cache model, the kernel's table (VA = PA for all of
//! memory, plus one MiB of kernel windows), the memory system and the
//! engine — what the engine's scenario tests and the random programs run on.
//!
//! ```text
//!   0x0000_0000 ─ 0x0000_4000   (unused)
//!   0x0000_4000                 kernel L1 table
//!   0x0000_8000 ─ 0x0008_0000   user L1 tables (one per address space)
//!   0x0008_0000 ─ 0x0008_2000   the DMA area (kernel data, see `World`)
//!   0x0010_0000 ─ 0x0020_0000   L2 table frames (a fixed pool)
//!   0x0020_0000 ─ MEMORY        user and page-cache frames
//!   0xffc0_0000                 kernel windows
//! ```

use std::boxed::Box;
use std::vec::Vec;

use crate::addr::{PhysAddr, VirtAddr, VirtRange};
use crate::cache::CacheMaintenance;
use crate::coherence::{CoherenceError, Engine, EngineConfigError, KernelWindows, Policy, Vacmm};
use crate::mm::frames::FRAME_SIZE;
use crate::mm::object::{ObjectId, ObjectKind};
use crate::mm::space::{AddressSpace, MemorySystem, SpaceConfig};
use crate::mm::unmapped::{Direction, Layout};
use crate::mmu::{
    Arch, Attributes, ContextSwitcher, FCSE_WINDOW_BYTES, KeyAllocator, PageTable, SwitchPolicy,
    TableFrames,
};
use crate::sim::{self, CpuModel, Indexing, KERNEL, MemType, Sim};

/// A page.
pub const PAGE: u32 = FRAME_SIZE;
/// Bytes of modelled memory.
pub const MEMORY: u32 = 8 << 20;
/// The kernel's L1 table.
pub const KERNEL_L1: u32 = 0x4000;
/// Frames for L2 tables.
pub const TABLE_POOL: u32 = 0x10_0000;
/// Frames for users and the page cache (up to [`MEMORY`]).
pub const USER_FRAMES: u32 = 0x20_0000;
/// The lowest user address.
pub const MIN: u32 = 0x0100_0000;
/// Where `mmap` places mappings (top down).
pub const BASE: u32 = 0x2000_0000;
/// The end of user space.
pub const TOP: u32 = 0x4000_0000;
/// Kernel windows (one MiB the kernel uses for nothing else).
pub const WINDOWS: u32 = 0xffc0_0000;

/// Table frames from a fixed pool.
#[derive(Debug)]
pub struct Pool(pub Vec<PhysAddr>);

impl TableFrames for Pool {
    fn allocate_table_frame(&mut self) -> Option<PhysAddr> {
        self.0.pop()
    }
    fn free_table_frame(&mut self, frame: PhysAddr) {
        self.0.push(frame);
    }
}

/// The presets every check runs on: name and model.
pub fn presets() -> [(&'static str, CpuModel); 5] {
    let g = crate::cache::CacheGeometry::new(16 << 10, 4, 32)
        .expect("16 KiB, 4 ways, 32-byte lines is a valid geometry");
    [
        ("ARM926 VIVT", CpuModel::arm926()),
        ("ARM1136 32K", CpuModel::arm1136_32k()),
        ("ARM1136 64K", CpuModel::arm1136_64k()),
        ("ARM1176 16K", CpuModel::arm1176_16k()),
        ("PIPT", CpuModel::pipt(g)),
    ]
}

/// How a machine switches address spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switching {
    /// ARMv5: flush at every switch; ARMv6: ASIDs.
    Default,
    /// ARMv5: FCSE PIDs (1–63); every user address lies below 32 MiB, so
    /// each space fits its window. ARMv6: ASIDs, as `Default`.
    Fcse,
}

impl Switching {
    /// The switcher it means on `arch`.
    pub fn policy(self, arch: Arch) -> SwitchPolicy {
        match (arch, self) {
            (Arch::Armv5, Switching::Default) => SwitchPolicy::VivtFlush,
            (Arch::Armv5, Switching::Fcse) => SwitchPolicy::VivtFcse,
            (Arch::Armv6, _) => SwitchPolicy::Asid,
        }
    }
}

/// The model, the kernel's table, the memory system and the engine.
pub struct Machine {
    /// Model, frames, objects, allocator.
    pub sys: MemorySystem<Sim, Pool>,
    /// The kernel's table.
    pub kernel: PageTable,
    /// The engine under test, with the policy chosen at construction
    /// ([`Vacmm`] unless [`Machine::with_policy`] said otherwise).
    pub engine: Engine<Box<dyn Policy>>,
    /// ARMv5 or ARMv6 tables.
    pub arch: Arch,
    /// The next L1 table frame.
    pub next_l1: u32,
    /// The layout's colour span (`PAGE` turns colour alignment off).
    pub colour_span: u32,
    /// The MMU layer's context switcher.
    pub switcher: ContextSwitcher,
    /// Spaces that exited: their model id and L1 frame, for reuse.
    pub free_spaces: Vec<(sim::SpaceId, PhysAddr)>,
    /// User spaces fit the FCSE window (below 32 MiB): the switcher runs
    /// them under FCSE PIDs.
    pub fcse: bool,
    /// Where the kernel's linear map puts physical address 0: 0 (VA = PA)
    /// but under FCSE PIDs, where the kernel must live above 32 MiB or the
    /// PIDs move its own lines too ([`FCSE_KERNEL_OFFSET`]).
    pub kernel_offset: u32,
}

/// The kernel's linear map under FCSE PIDs: at 3 GiB, as Linux's.
pub const FCSE_KERNEL_OFFSET: u32 = 0xc000_0000;

impl core::fmt::Debug for Machine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Machine")
            .field("policy", &self.engine.policy().name())
            .field("switcher", &self.switcher.policy())
            .field("counters", self.engine.counters())
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// A machine with the default switcher.
    pub fn new(model: CpuModel) -> Self {
        Self::with_switching(model, Switching::Default)
    }

    /// A machine switching as `switching` says.
    pub fn with_switching(model: CpuModel, switching: Switching) -> Self {
        let switch = switching.policy(Arch::of(&model.info()));
        Self::build(model, false, switch, Box::new(Vacmm)).expect("vacmm serves every preset")
    }

    /// A machine whose engine runs `policy` and whose kernel switches
    /// address spaces with a [`ContextSwitcher`] of kind `switch`, whatever
    /// the CPU: the combinations the configuration sweep tries. The
    /// engine's refusal if it cannot keep them coherent.
    pub fn with_policy(
        model: CpuModel,
        switch: SwitchPolicy,
        policy: Box<dyn Policy>,
    ) -> Result<Self, EngineConfigError> {
        Self::build(model, false, switch, policy)
    }

    /// The twins' machine: the engine believes the cache is PIPT, so it
    /// does every fill and copy but none of the maintenance.
    pub fn blind(model: CpuModel) -> Self {
        let switch = Switching::Default.policy(Arch::of(&model.info()));
        Self::build(model, true, switch, Box::new(Vacmm)).expect("vacmm serves every preset")
    }

    fn build(
        mut model: CpuModel,
        blind: bool,
        switch: SwitchPolicy,
        policy: Box<dyn Policy>,
    ) -> Result<Self, EngineConfigError> {
        let fcse = switch == SwitchPolicy::VivtFcse;
        if fcse && Arch::of(&model.info()) == Arch::Armv5 {
            // The FCSE relocates what the caches see by the PID.
            model.dcache.indexing = Indexing::VivtKeyed;
            model.icache.indexing = Indexing::VivtKeyed;
        }
        let mut sim = Sim::new(model, MEMORY as usize);
        let info = *sim.info();
        let arch = Arch::of(&info);
        let offset = if fcse { FCSE_KERNEL_OFFSET } else { 0 };
        sim.set_kernel_offset(offset);
        // Until the kernel table is attached the model translates KERNEL
        // from its own map: enough to build the table.
        for page in (0..MEMORY).step_by(PAGE as usize) {
            sim.map(KERNEL, page + offset, page, MemType::WriteBack, true)
                .expect("the model maps its own memory");
        }
        let mut kernel =
            PageTable::new(&mut sim, PhysAddr(KERNEL_L1), arch).expect("the kernel's L1 table");
        for mib in 0..MEMORY >> 20 {
            kernel
                .map_section(
                    &mut sim,
                    VirtAddr((mib << 20) + offset),
                    PhysAddr(mib << 20),
                    Attributes::KERNEL_DATA,
                )
                .expect("the kernel's sections");
        }
        sim.attach_table(KERNEL, PhysAddr(KERNEL_L1), arch)
            .expect("the kernel's table attaches");
        let pool = Pool(
            (TABLE_POOL..USER_FRAMES)
                .step_by(PAGE as usize)
                .map(PhysAddr)
                .collect(),
        );
        let frames = (MEMORY - USER_FRAMES) / PAGE;
        let mut sys = MemorySystem::new(sim, pool, PhysAddr(USER_FRAMES), frames, info.colours())
            .expect("the memory system");
        let engine_info = if blind {
            // The same CPU (and so the same switch), without the aliasing.
            crate::cache::CacheInfo::pipt(info.midr, model.dcache.geometry, model.icache.geometry)
        } else {
            info
        };
        // Refused before the model is touched further.
        let engine = Engine::with_policy(engine_info, offset, switch, policy)?;
        let windows = KernelWindows::new(
            &mut sys.mem,
            &mut sys.table_frames,
            &mut kernel,
            VirtAddr(WINDOWS),
            &info,
        )
        .expect("the kernel windows");
        Ok(Machine {
            sys,
            kernel,
            engine: engine.with_windows(windows),
            arch,
            next_l1: 0x8000,
            colour_span: info.colour_alignment() as u32,
            free_spaces: Vec::new(),
            switcher: match switch {
                SwitchPolicy::VivtFcse => ContextSwitcher::vivt_fcse(
                    KeyAllocator::fcse_pids(1, 63).expect("PIDs 1-63 exist"),
                ),
                SwitchPolicy::VivtFlush => ContextSwitcher::vivt_flush(),
                SwitchPolicy::Asid => {
                    ContextSwitcher::asid(KeyAllocator::asids(), PhysAddr(KERNEL_L1))
                }
            },
            fcse,
            kernel_offset: offset,
        })
    }

    /// The kernel's linear-map address of physical address `pa`.
    pub fn kernel_va(&self, pa: u32) -> u32 {
        pa.wrapping_add(self.kernel_offset)
    }

    /// What every user table shares with the kernel's: the linear map of
    /// all memory and the windows' MiB.
    pub fn kernel_ranges(&self) -> [VirtRange; 2] {
        let range = |start: u32, len: u64| VirtRange::new(VirtAddr(start), len);
        [
            range(self.kernel_offset, u64::from(MEMORY)).expect("the linear map fits"),
            range(WINDOWS, 1 << 20).expect("the windows fit"),
        ]
    }

    /// The layout of every user space: below 32 MiB under FCSE PIDs.
    pub fn layout(&self) -> Layout {
        let (mmap_base, task_size) = if self.fcse {
            (FCSE_WINDOW_BYTES, FCSE_WINDOW_BYTES)
        } else {
            (BASE, TOP)
        };
        Layout {
            min_addr: MIN,
            mmap_base,
            task_size,
            colour_span: self.colour_span,
            direction: Direction::TopDown,
        }
    }

    /// An L1 table for a new space: a reused one or the next free frame,
    /// with the kernel's entries shared in. `None` when all are in use.
    pub fn table(&mut self) -> Option<(Option<sim::SpaceId>, PageTable)> {
        let reused = self.free_spaces.pop();
        let l1 = match reused {
            Some((_, l1)) => l1,
            None => {
                if self.next_l1 + 0x4000 > 0x8_0000 {
                    return None;
                }
                self.next_l1 += 0x4000;
                PhysAddr(self.next_l1 - 0x4000)
            }
        };
        let mut table = PageTable::new(&mut self.sys.mem, l1, self.arch).expect("an L1 table");
        for range in self.kernel_ranges() {
            table
                .share_entries_from(&mut self.sys.mem, &self.kernel, range)
                .expect("kernel entries");
        }
        table.set_fits_fcse_window(self.fcse);
        Some((reused.map(|(id, _)| id), table))
    }

    /// A user address space, built by the engine
    /// ([`Engine::create_space`]) and known to the model (by its table; the
    /// model's number for it is [`sim_space`](Self::sim_space)).
    ///
    /// # Panics
    /// When all L1 tables are in use (more than 30 spaces at once), or the
    /// engine refuses the layout (a `colour_span` set to what the cache
    /// cannot serve).
    pub fn space(&mut self) -> AddressSpace {
        let layout = self.layout();
        self.space_with(layout)
            .expect("the engine takes the machine's own layout")
    }

    /// As [`space`](Self::space), with `layout`; the engine's refusal if it
    /// refuses it.
    ///
    /// # Panics
    /// When all L1 tables are in use.
    pub fn space_with(&mut self, layout: Layout) -> Result<AddressSpace, CoherenceError> {
        let (reused, table) = self.table().expect("too many address spaces");
        let l1 = table.l1();
        let sim = &mut self.sys.mem;
        let id = match reused {
            Some(id) => id,
            None => sim.create_space(0),
        };
        sim.attach_table(id, l1, self.arch)
            .expect("the table attaches");
        let config = SpaceConfig {
            layout,
            stack_guard_gap: 0,
            max_mappings: SpaceConfig::DEFAULT_MAX_MAPPINGS,
        };
        self.engine.create_space(&mut self.sys, config, table)
    }

    /// A table for a forked child, known to the model as [`space`](Self::space)'s
    /// tables are.
    ///
    /// # Panics
    /// When all L1 tables are in use.
    pub fn child_table(&mut self) -> PageTable {
        let (reused, table) = self.table().expect("too many address spaces");
        let sim = &mut self.sys.mem;
        let id = reused.unwrap_or_else(|| sim.create_space(0));
        sim.attach_table(id, table.l1(), self.arch)
            .expect("the table attaches");
        table
    }

    /// The model's number for `space` (found by its table).
    ///
    /// # Panics
    /// If the model does not know the space's table.
    pub fn sim_space(&self, space: &AddressSpace) -> sim::SpaceId {
        self.sys
            .mem
            .space_with_table(space.table().l1())
            .expect("the model knows every space's table")
    }

    /// Runs `space` through the MMU layer's context switch (a full flush
    /// on VIVT, FCSE PIDs or ASIDs).
    ///
    /// # Panics
    /// If the switch fails.
    pub fn switch_to(&mut self, space: &mut AddressSpace) {
        // SAFETY: the model's registers; no real translation changes.
        unsafe {
            self.engine
                .switch_to(&mut self.switcher, &mut self.sys, space)
                .expect("the switch");
        }
        assert_eq!(self.sys.mem.current_space(), self.sim_space(space));
    }

    /// A file of `pages` pages (none in the page cache yet).
    pub fn file(&mut self, pages: u32) -> ObjectId {
        self.sys
            .objects
            .create(ObjectKind::File, pages)
            .expect("an object")
    }
}
