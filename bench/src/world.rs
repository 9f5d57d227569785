//! One simulated machine: the cache model, the kernel's page table
//! (VA = PA over all of memory, as `src/coherence/tests.rs` builds it),
//! the memory system, kernel windows, the context switcher and the engine
//! under one policy. Workloads drive it through user loads, stores and
//! fetches that fault into the engine as the MMU would.

use std::fmt;

use vacmm::addr::{PhysAddr, VirtAddr, VirtRange};
use vacmm::cache::{CacheKind, CacheMaintenance};
use vacmm::coherence::dma::DmaError;
use vacmm::coherence::{
    CoherenceError, Engine, EngineConfigError, KernelWindows, Policy, WindowError,
};
use vacmm::mm::frames::FrameError;
use vacmm::mm::object::ObjectError;
use vacmm::mm::space::{AddressSpace, FaultAccess, MemorySystem, SpaceConfig, SpaceError};
use vacmm::mm::unmapped::{Direction, Layout};
use vacmm::mmu::{
    Arch, Attributes, ContextSwitcher, KeyAllocator, KeyError, PageSlot, PageTable, TableError,
    TableFrames,
};
use vacmm::sim::{self, CpuModel, KERNEL, MemType, Sim, SimError};

/// Physical memory modelled (the kernel maps all of it at VA = PA).
pub const MEMORY: u32 = 4 << 20;
const KERNEL_L1: u32 = 0x4000;
/// L1 tables of user spaces, 16 KiB each, from here up to `TABLE_POOL`.
const FIRST_L1: u32 = 0x8000;
const TABLE_POOL: u32 = 0x10_0000;
/// Kernel pages the workloads use as driver memory (token, DMA buffers).
pub const SCRATCH: u32 = 0x17_0000;
const USER_FRAMES: u32 = 0x18_0000;
/// User spaces live in [16 MiB, 32 MiB): below 32 MiB, so that each fits
/// one FCSE PID window on the ARM926, and above the kernel's map.
const USER_MIN: u32 = 0x0100_0000;
const USER_TOP: u32 = 0x0200_0000;
/// Kernel windows (one MiB the kernel uses for nothing else).
const WINDOWS: u32 = 0xffc0_0000;
/// Where an uncached shared buffer's kernel mapping goes (one MiB).
pub const UNCACHED_BASE: u32 = 0xfe00_0000;
/// Where the coherent DMA buffers' uncached mappings go: in the same MiB,
/// clear of the shared buffers' (W12 runs both workloads on one machine).
pub const DMA_UNCACHED: u32 = UNCACHED_BASE + 0x8_0000;
/// FCSE PIDs handed out: their windows (PID × 32 MiB) stay clear of the
/// kernel's mappings at 0xfe00_0000 and above (PID 127).
const FCSE_PIDS: (u8, u8) = (1, 63);

/// Why a benchmark run could not go on: a bug in the harness or the
/// engine, never a measurement.
#[derive(Debug)]
pub enum BenchError {
    /// An engine call failed.
    Coherence(CoherenceError),
    /// An address-space call failed.
    Space(SpaceError),
    /// A page-table call failed.
    Table(TableError),
    /// A frame-allocator call failed.
    Frame(FrameError),
    /// A kernel-window call failed.
    Window(WindowError),
    /// A DMA call failed.
    Dma(DmaError),
    /// A key range was refused.
    Key(KeyError),
    /// The model refused an access.
    Sim(SimError),
    /// An access kept faulting after the fault was resolved.
    Stuck {
        /// The address.
        va: u32,
    },
    /// The harness ran out of room it sized itself (L1 tables).
    Exhausted(&'static str),
    /// An address space's table is attached to no space of the model.
    UnknownTable {
        /// The L1 table's address.
        l1: u32,
    },
    /// A memory object call failed.
    Object(ObjectError),
    /// The engine refused the policy with the kernel's switch and cache.
    Config(EngineConfigError),
    /// An address range could not be built.
    Range {
        /// Start.
        start: u32,
        /// Length.
        len: u64,
    },
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Coherence(e) => write!(f, "engine: {e}"),
            BenchError::Space(e) => write!(f, "address space: {e}"),
            BenchError::Table(e) => write!(f, "page table: {e}"),
            BenchError::Frame(e) => write!(f, "frames: {e}"),
            BenchError::Window(e) => write!(f, "kernel window: {e}"),
            BenchError::Dma(e) => write!(f, "DMA: {e}"),
            BenchError::Key(e) => write!(f, "keys: {e}"),
            BenchError::Sim(e) => write!(f, "cache model: {e}"),
            BenchError::Object(e) => write!(f, "memory object: {e}"),
            BenchError::Config(e) => write!(f, "configuration: {e}"),
            BenchError::Stuck { va } => write!(f, "access at {va:#x} kept faulting"),
            BenchError::Exhausted(what) => write!(f, "out of {what}"),
            BenchError::UnknownTable { l1 } => {
                write!(f, "the model has no space with the table at {l1:#x}")
            }
            BenchError::Range { start, len } => {
                write!(f, "no range of {len:#x} bytes at {start:#x}")
            }
        }
    }
}

impl std::error::Error for BenchError {}

macro_rules! from_error {
    ($($source:ty => $variant:ident),* $(,)?) => {$(
        impl From<$source> for BenchError {
            fn from(e: $source) -> Self {
                BenchError::$variant(e)
            }
        }
    )*};
}

from_error!(
    CoherenceError => Coherence,
    SpaceError => Space,
    TableError => Table,
    FrameError => Frame,
    WindowError => Window,
    DmaError => Dma,
    KeyError => Key,
    SimError => Sim,
    ObjectError => Object,
    EngineConfigError => Config,
);

/// `len` bytes from `start`.
pub fn range(start: u32, len: u64) -> Result<VirtRange, BenchError> {
    VirtRange::new(VirtAddr(start), len).map_err(|_| BenchError::Range { start, len })
}

/// Second-level table frames from a fixed pool.
pub struct Pool(Vec<PhysAddr>);

impl TableFrames for Pool {
    fn allocate_table_frame(&mut self) -> Option<PhysAddr> {
        self.0.pop()
    }
    fn free_table_frame(&mut self, frame: PhysAddr) {
        self.0.push(frame);
    }
}

/// Leaves the allocator's free frames in a fixed pseudo-random order, as a
/// buddy allocator's are after a while: a kernel that does not colour its
/// frames gets frames of any colour for consecutive pages (a fresh free
/// list would hand them out in address order, coloured by accident).
fn scramble_free_list(sys: &mut MemorySystem<Sim, Pool>) -> Result<(), BenchError> {
    let mut frames = Vec::new();
    while let Ok(pa) = sys.allocator.allocate_any() {
        frames.push(pa);
    }
    // Fisher–Yates with a fixed xorshift: the same order every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..frames.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        frames.swap(i, (state % (i as u64 + 1)) as usize);
    }
    for pa in frames {
        sys.allocator.free(pa)?;
    }
    Ok(())
}

/// How a world is set up besides its policy: what the kernel around the
/// engine does (its context switch, its frame colouring).
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Run user spaces under FCSE PIDs on a VIVT cache (the switch then
    /// flushes nothing between keyed spaces).
    pub fcse: bool,
    /// Allocate frames in the colour of their user address / file offset
    /// (vacmm, NetBSD's UVM); off, every frame is of any colour (Linux).
    pub colour_frames: bool,
}

/// A machine running one policy.
pub struct World<P: Policy> {
    /// Model, frames, objects.
    pub sys: MemorySystem<Sim, Pool>,
    /// The kernel's table.
    pub kernel: PageTable,
    /// The engine.
    pub engine: Engine<P>,
    /// The context switch the kernel uses.
    pub switcher: ContextSwitcher,
    arch: Arch,
    setup: Setup,
    colour_span: u32,
    next_l1: u32,
    /// Spaces that exited: their model id and L1 frame, for reuse.
    free_spaces: Vec<(sim::SpaceId, PhysAddr)>,
    /// Keeps the uncached area's second-level table in place, so every
    /// space shares it from its creation on.
    _uncached_area: PageSlot,
    /// The model's counters where the measured part of a workload began.
    mark: Option<sim::Counters>,
    /// Where the kernel's linear map puts physical address 0.
    kernel_offset: u32,
}

/// The kernel's linear map under FCSE PIDs: at 3 GiB, as Linux's.
const FCSE_KERNEL_OFFSET: u32 = 0xc000_0000;

impl<P: Policy> World<P> {
    /// A machine of `model` whose engine runs `policy`.
    pub fn new(model: CpuModel, policy: P, setup: Setup) -> Result<Self, BenchError> {
        let mut sim = Sim::new(model, MEMORY as usize);
        let info = *sim.info();
        let arch = Arch::of(&info);
        // Under FCSE PIDs the kernel lives above 32 MiB, or the PIDs would
        // move its own lines too (as on the CPU).
        let fcse = arch == Arch::Armv5 && info.kind == CacheKind::Vivt && setup.fcse;
        let offset = if fcse { FCSE_KERNEL_OFFSET } else { 0 };
        sim.set_kernel_offset(offset);
        // Until the kernel table is attached the model translates KERNEL
        // from its own map: enough to build the table.
        for page in (0..MEMORY).step_by(4096) {
            sim.map(KERNEL, page + offset, page, MemType::WriteBack, true)?;
        }
        let mut kernel = PageTable::new(&mut sim, PhysAddr(KERNEL_L1), arch)?;
        for mib in 0..MEMORY >> 20 {
            kernel.map_section(
                &mut sim,
                VirtAddr((mib << 20) + offset),
                PhysAddr(mib << 20),
                Attributes::KERNEL_DATA,
            )?;
        }
        sim.attach_table(KERNEL, PhysAddr(KERNEL_L1), arch)?;
        let pool = Pool((TABLE_POOL..SCRATCH).step_by(4096).map(PhysAddr).collect());
        let frames = (MEMORY - USER_FRAMES) / 4096;
        let colours = if setup.colour_frames {
            info.colours()
        } else {
            1
        };
        let mut sys = MemorySystem::new(sim, pool, PhysAddr(USER_FRAMES), frames, colours)?;
        if !setup.colour_frames {
            scramble_free_list(&mut sys)?;
        }
        let windows = KernelWindows::new(
            &mut sys.mem,
            &mut sys.table_frames,
            &mut kernel,
            VirtAddr(WINDOWS),
            &info,
        )?;
        let uncached_area = kernel.reserve_page_slot(
            &mut sys.mem,
            &mut sys.table_frames,
            VirtAddr(UNCACHED_BASE + 0xf_f000),
        )?;
        let switcher = match (arch, info.kind, setup.fcse) {
            (Arch::Armv5, CacheKind::Vivt, true) => {
                ContextSwitcher::vivt_fcse(KeyAllocator::fcse_pids(FCSE_PIDS.0, FCSE_PIDS.1)?)
            }
            (Arch::Armv5, _, _) => ContextSwitcher::vivt_flush(),
            (Arch::Armv6, _, _) => {
                ContextSwitcher::asid(KeyAllocator::asids(), PhysAddr(KERNEL_L1))
            }
        };
        let engine = Engine::with_policy(info, offset, switcher.policy(), policy)?;
        Ok(World {
            sys,
            kernel,
            engine: engine.with_windows(windows),
            switcher,
            arch,
            setup,
            colour_span: info.colour_alignment() as u32,
            next_l1: FIRST_L1,
            kernel_offset: offset,
            free_spaces: Vec::new(),
            _uncached_area: uncached_area,
            mark: None,
        })
    }

    /// The kernel's linear-map address of physical address `pa`.
    pub fn kernel_va(&self, pa: u32) -> u32 {
        pa.wrapping_add(self.kernel_offset)
    }

    /// The physical address of kernel linear-map address `va`.
    pub fn kernel_pa(&self, va: u32) -> u32 {
        va.wrapping_sub(self.kernel_offset)
    }

    /// The measured part of the workload starts here: what came before
    /// (building processes and their page tables, the same for every
    /// policy) is left out of the figures, though not out of the oracle's
    /// sight.
    /// A second call keeps the first mark (W12 runs several workloads
    /// under one measurement).
    pub fn start_measuring(&mut self) {
        if self.mark.is_none() {
            self.mark = Some(*self.sys.mem.counters());
        }
    }

    /// The counters at [`start_measuring`](Self::start_measuring), if
    /// it was called.
    pub fn mark(&self) -> Option<sim::Counters> {
        self.mark
    }

    /// A fresh user table (sharing the kernel's mappings), attached to a
    /// space of the model: what `space` and `fork` build on. (The engine
    /// names the address space itself; the model finds it by its table.)
    pub fn new_table(&mut self) -> Result<PageTable, BenchError> {
        let reused = self.free_spaces.pop();
        let l1 = match reused {
            Some((_, l1)) => l1,
            None => {
                if self.next_l1 + 0x4000 > TABLE_POOL {
                    return Err(BenchError::Exhausted("L1 tables"));
                }
                self.next_l1 += 0x4000;
                PhysAddr(self.next_l1 - 0x4000)
            }
        };
        let sim = &mut self.sys.mem;
        let mut table = PageTable::new(sim, l1, self.arch)?;
        for (start, len) in [
            (self.kernel_offset, u64::from(MEMORY)),
            (UNCACHED_BASE, 1 << 20),
            (WINDOWS, 1 << 20),
        ] {
            table.share_entries_from(sim, &self.kernel, range(start, len)?)?;
        }
        // Every user mapping lies below 32 MiB (the layout's top).
        table.set_fits_fcse_window(self.setup.fcse);
        let id = match reused {
            Some((id, _)) => id,
            None => sim.create_space(0),
        };
        sim.attach_table(id, l1, self.arch)?;
        Ok(table)
    }

    /// The layout every user space gets.
    pub fn config(&self) -> SpaceConfig {
        SpaceConfig {
            layout: Layout {
                min_addr: USER_MIN,
                mmap_base: USER_TOP,
                task_size: USER_TOP,
                colour_span: self.colour_span,
                direction: Direction::TopDown,
            },
            stack_guard_gap: 0,
            max_mappings: SpaceConfig::DEFAULT_MAX_MAPPINGS,
        }
    }

    /// A new, empty user address space.
    pub fn space(&mut self) -> Result<AddressSpace, BenchError> {
        let table = self.new_table()?;
        let config = self.config();
        Ok(self.engine.create_space(&mut self.sys, config, table)?)
    }

    /// Runs `space` through the kernel's context switch.
    pub fn switch_to(&mut self, space: &mut AddressSpace) -> Result<(), BenchError> {
        // SAFETY: the model's registers; every user table shares the
        // kernel's entries, as the switch requires.
        unsafe {
            self.engine
                .switch_to(&mut self.switcher, &mut self.sys, space)?;
        }
        Ok(())
    }

    /// `munmap` of `[va, va + len)` in `space`. As at exit, the private
    /// anonymous pages only this mapping shows die with it: the workload
    /// tells the model so (the engine may leave their lines for the
    /// frame's next fill).
    pub fn munmap(
        &mut self,
        space: &mut AddressSpace,
        va: u32,
        len: u32,
    ) -> Result<(), BenchError> {
        let dying: Vec<PhysAddr> = space
            .resident_in(VirtAddr(va), len)
            .filter(|&(at, pa)| self.dies_with(space, at, pa))
            .map(|(_, pa)| pa)
            .collect();
        self.engine
            .munmap(&mut self.sys, space, VirtAddr(va), len)?;
        for pa in dying {
            let _ = self.sys.mem.declare_dead(pa.as_u32(), 4096);
        }
        Ok(())
    }

    /// True if page `va` of `space` (frame `pa`) is private anonymous and
    /// mapped nowhere else: its contents die with the mapping.
    fn dies_with(&self, space: &AddressSpace, va: VirtAddr, pa: PhysAddr) -> bool {
        let private = space
            .find_vma(va)
            .is_some_and(|v| !v.is_shared() && v.backing() == vacmm::mm::space::Backing::Anonymous);
        private && self.sys.frames.mappings(pa).is_ok_and(|m| m.len() == 1)
    }

    /// `space` exits (it must not be running); its table is kept for reuse.
    pub fn exit(&mut self, space: AddressSpace) -> Result<(), BenchError> {
        // The model's oracle takes no word from the engine about dead
        // contents: the private anonymous pages only this space maps die
        // with it, so the workload says so (here by the frame database —
        // the benchmark measures cost; vacmm::check's world decides from
        // its own bookkeeping).
        for (va, pa) in space.resident() {
            if self.dies_with(&space, va, pa) {
                let _ = self.sys.mem.declare_dead(pa.as_u32(), 4096);
            }
        }
        let model_space =
            self.sys
                .mem
                .space_with_table(space.table().l1())
                .ok_or(BenchError::UnknownTable {
                    l1: space.table().l1().as_u32(),
                })?;
        let l1 = self
            .engine
            .exit(&mut self.sys, space)
            .map_err(|refused| BenchError::Coherence(refused.error))?;
        self.free_spaces.push((model_space, l1));
        Ok(())
    }

    /// A frame for page `index` of a file: in that offset's colour when
    /// the setup colours frames (the allocator has one colour otherwise).
    pub fn page_cache_frame(&mut self, index: u32) -> Result<PhysAddr, BenchError> {
        let colours = self.sys.allocator.colours();
        Ok(match self.sys.allocator.allocate_colour(index % colours) {
            Err(FrameError::NoFrameOfColour { .. }) => self.sys.allocator.allocate_any()?,
            other => other?,
        })
    }

    fn resolve(
        &mut self,
        space: &mut AddressSpace,
        va: u32,
        access: FaultAccess,
    ) -> Result<(), BenchError> {
        self.engine
            .fault(&mut self.sys, space, VirtAddr(va), access)?;
        Ok(())
    }

    /// A user store of a word at `va`, faulting in as the MMU would.
    pub fn store(
        &mut self,
        space: &mut AddressSpace,
        va: u32,
        value: u32,
    ) -> Result<(), BenchError> {
        for _ in 0..3 {
            match self.sys.mem.store(va, 4, value) {
                Ok(()) => return Ok(()),
                Err(SimError::Unmapped { .. } | SimError::ReadOnly { .. }) => {
                    self.resolve(space, va, FaultAccess::Write)?
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(BenchError::Stuck { va })
    }

    /// A user load of a word at `va`, faulting in as the MMU would.
    pub fn load(&mut self, space: &mut AddressSpace, va: u32) -> Result<u32, BenchError> {
        for _ in 0..3 {
            match self.sys.mem.load(va, 4) {
                Ok(v) => return Ok(v),
                Err(SimError::Unmapped { .. }) => self.resolve(space, va, FaultAccess::Read)?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BenchError::Stuck { va })
    }

    /// A user instruction fetch at `va`, faulting in as the MMU would.
    pub fn fetch(&mut self, space: &mut AddressSpace, va: u32) -> Result<u32, BenchError> {
        for _ in 0..3 {
            match self.sys.mem.fetch(va) {
                Ok(v) => return Ok(v),
                Err(SimError::Unmapped { .. }) => self.resolve(space, va, FaultAccess::Execute)?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BenchError::Stuck { va })
    }
}
