//! The demo kernel proper: processes, the scheduler, system calls and the
//! fault handler, each calling vacmm where a hobby OS would.
//!
//! Where each vacmm call is made (the embedding guide in the README points
//! here):
//!
//! | event                         | vacmm call                                   | here                    |
//! |-------------------------------|----------------------------------------------|-------------------------|
//! | user page fault               | `Engine::fault` (zero-fill, CoW copy, map; `update_mmu_cache` / `make_coherent` inside) | [`Kernel::data_abort`]  |
//! | mmap / munmap / mprotect      | `Engine::mmap` / `munmap` / `mprotect`       | [`Kernel::syscall`]     |
//! | kernel writes page-cache page | `Engine::page_cache_write` (guard)           | [`Kernel::file_poke`]   |
//! | fork                          | `Engine::fork`                               | [`Kernel::fork`]        |
//! | exit                          | `Engine::exit` (after switching away)        | [`Kernel::reap`]        |
//! | context switch                | `Engine::switch_to`                          | [`Kernel::schedule`]    |
//! | kernel↔user shared buffer     | `create_shared_buffer`, `sync_for_kernel` / `sync_for_user` | [`Kernel::ring_put`] |
//! | DMA                           | `Dma::map_single` / `unmap`                  | [`Kernel::dma_read`]    |

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use vacmm::addr::{PhysAddr, VirtAddr, VirtRange};
use vacmm::arch::AnyCpu;
use vacmm::cache::{CacheInfo, CacheKind};
use vacmm::coherence::dma::{Dma, DmaDirection};
use vacmm::coherence::shared::{SharedBuffer, SharingMode};
use vacmm::coherence::{Engine, KernelWindows};
use vacmm::mm::object::{ObjectId, ObjectKind};
use vacmm::mm::space::{
    AddressSpace, FaultAccess, MemorySystem, MmapArgs, Protection, SpaceConfig,
};
use vacmm::mm::unmapped::{Direction, Layout};
use vacmm::mmu::{
    Access, Arch, Attributes, ContextSwitcher, Execute, KeyAllocator, MemoryType, MmuConfig,
    PageTable, enable_mmu,
};
use vacmm_qemu::fault::{
    FaultKind, PERMISSION_PAGE, TRANSLATION_PAGE, TRANSLATION_SECTION, catch_fault, status_code,
};
use vacmm_qemu::mm::{FramePool, IdentityTables, identity_kernel_table, share_kernel_entries};
use vacmm_qemu::println;

use crate::abi::{self, *};
use crate::{timer, user};
use vacmm_qemu::user::{TrapFrame, TrapKind};

const MIB: u32 = 1 << 20;
/// CPSR/SPSR T: the process was running Thumb code.
const THUMB: u32 = 1 << 5;
const PAGE: u32 = 4096;
/// User frames: a chunk of the pool aligned far beyond any colour span.
const USER_FRAMES_BYTES: u32 = 8 * MIB;
/// User VMAs: 16–32 MiB, away from every kernel entry.
pub const USER_MIN: u32 = 16 * MIB;
pub const USER_TOP: u32 = 32 * MIB;
/// Kernel windows for zero-fill, copy and kmap at a user's colour: an
/// address no board maps, nor the FCSE PIDs' windows below.
const WINDOWS: u32 = 0x3f00_0000;
const _: () = assert!(vacmm_qemu::mm::is_free_va(WINDOWS, MIB));
/// The FCSE PIDs the ARM926's processes run under (see `set_up`).
const FCSE_PIDS: (u8, u8) = (20, 27);
/// Bytes of one FCSE PID's window.
const FCSE_WINDOW: u32 = 32 * MIB;
/// Pages of the in-memory file.
const FILE_PAGES: u32 = 4;
/// Each process's stack.
const STACK_BYTES: u32 = 16 * 1024;
/// Largest DMA transfer the driver stub takes.
const DMA_MAX: u32 = 1024;
/// Preemption tick.
const TICK_US: u32 = 2000;

type System = MemorySystem<IdentityTables<AnyCpu>, FramePool>;

/// How a process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ending {
    Exited(u32),
    Killed(String),
}

/// What a top-level program is expected to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Exit with status 0 (all its data checks passed).
    Success,
    /// Be killed by the kernel for a bad access.
    Killed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Runnable,
    /// In WAIT, for any child.
    Waiting,
    /// Ended; its parent has not collected the status yet.
    Zombie(u32),
}

struct Process {
    pid: u32,
    name: &'static str,
    parent: Option<u32>,
    /// None once it ended (the space waits in `Kernel::dead`).
    space: Option<AddressSpace>,
    frame: TrapFrame,
    state: State,
    /// Top-level programs only.
    expect: Option<Expect>,
}

/// A top-level program's result for the report.
struct Outcome {
    name: &'static str,
    expect: Expect,
    ending: Ending,
}

impl Outcome {
    fn passed(&self) -> bool {
        matches!(
            (self.expect, &self.ending),
            (Expect::Success, Ending::Exited(0)) | (Expect::Killed, Ending::Killed(_))
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Free,
    Ready,
    Reading,
}

/// The kernel↔user ring (seed 000's shared buffer).
struct Ring {
    buffer: SharedBuffer,
    slots: [Slot; RING_SLOTS as usize],
    ready: VecDeque<u32>,
    messages: u32,
    bad_messages: u32,
}

/// Statistics for the report.
#[derive(Default)]
struct Stats {
    ticks: u64,
    syscalls: u64,
    faults_resolved: u64,
    kills: u64,
    dma_transfers: u64,
    kernel_file_writes: u64,
    /// Exited spaces whose L1 table went back to the pool.
    tables_freed: u64,
}

pub struct Kernel {
    sys: System,
    kernel: PageTable,
    arch: Arch,
    info: CacheInfo,
    engine: Engine,
    switcher: ContextSwitcher,
    dma: Dma,
    file: ObjectId,
    file_frames: Vec<PhysAddr>,
    ring: Ring,
    /// Frames are read from here by the exit path right after `schedule`
    /// returns, before anything can move the vector.
    procs: Vec<Process>,
    current: Option<u32>,
    /// Set when the running process must give up the CPU.
    resched: bool,
    /// Spaces of ended processes, destroyed once another space runs.
    dead: Vec<AddressSpace>,
    outcomes: Vec<Outcome>,
    next_pid: u32,
    stats: Stats,
    /// `FILE_POKE` leaves out its `flush_dcache_page`: the mistake the
    /// cache sanitizer must catch in this kernel (`vacmm-demo-omit=`).
    omit_flush_dcache_page: bool,
}

/// The boot argument that makes the demo leave out one call on purpose.
const OMIT_ARG: &str = "vacmm-demo-omit=";
/// The one call it can leave out.
const OMIT_FLUSH_DCACHE_PAGE: &str = "flush_dcache_page";

struct Global(UnsafeCell<Option<Kernel>>);
// SAFETY: single core; the kernel runs with IRQs masked, so only one
// trap (or the start-up code) uses it at a time.
unsafe impl Sync for Global {}
static KERNEL: Global = Global(UnsafeCell::new(None));

fn kernel() -> &'static mut Kernel {
    // SAFETY: see `Global`: every user is a trap handler or `start`, and
    // they never overlap.
    let slot = unsafe { &mut *KERNEL.0.get() };
    match slot.as_mut() {
        Some(k) => k,
        None => vacmm_qemu::harness::fatal(format_args!("trap before the kernel started")),
    }
}

fn prot_from(bits: u32) -> Protection {
    let mut prot = Protection::empty();
    if bits & PROT_READ != 0 {
        prot |= Protection::READ;
    }
    if bits & PROT_WRITE != 0 {
        prot |= Protection::WRITE | Protection::READ;
    }
    prot
}

unsafe extern "C" {
    /// End of the image's read-only data (aarch32-rt's link.x).
    static __erodata: u8;
}

impl Kernel {
    /// Whether the boot arguments ask to leave out `FILE_POKE`'s
    /// `flush_dcache_page` (a negative control for the cache sanitizer).
    /// Says so on the console, and what the sanitizer must then report:
    /// the user's stale read in `page_cache`, wherever the kernel's alias
    /// of a file page is a second cache line (VIVT, aliasing VIPT: the file
    /// frames are allocated one colour off their offsets, see `set_up`).
    fn omits_flush_dcache_page(info: &CacheInfo) -> Result<bool, String> {
        match vacmm_qemu::boot_arg(OMIT_ARG).as_deref() {
            None => Ok(false),
            Some(OMIT_FLUSH_DCACHE_PAGE) => {
                println!(
                    "NOTE: FILE_POKE leaves out flush_dcache_page on purpose ({OMIT_ARG}{OMIT_FLUSH_DCACHE_PAGE})"
                );
                if matches!(info.kind, CacheKind::Vivt | CacheKind::VipAliasing { .. }) {
                    println!("cachesan-expect kind=StaleRead at=vacmm_demo::user::page_cache");
                }
                Ok(true)
            }
            Some(other) => Err(format!(
                "{OMIT_ARG}{other}: only {OMIT_FLUSH_DCACHE_PAGE} can be left out"
            )),
        }
    }

    /// Builds the kernel table (MMU and caches on), the memory system, the
    /// engine with its windows, the file and the ring.
    pub fn set_up(info: CacheInfo) -> Result<Kernel, String> {
        let arch = Arch::of(&info);
        let cpu = AnyCpu::new(info).map_err(|e| format!("backend: {e:?}"))?;
        // SAFETY: table frames and user frames come from the pool, which
        // the kernel table maps VA = PA (and the MMU is off until then).
        let mut mem = unsafe { IdentityTables::new(cpu) };
        let mut pool = FramePool::new();
        // The image's text and read-only data are the user programs'
        // (user.rs): those MiBs are user-readable and executable, in the
        // kernel's table too (ARMv6 caches global entries across tables,
        // so both must say the same).
        let user_text_end = (&raw const __erodata) as u32;
        let user_text = Attributes {
            memory: MemoryType::NormalWriteBack,
            access: Access::UserRoKernelRw,
            execute: Execute::Allow,
            ..Attributes::KERNEL_RWX
        };
        let ram = |at| {
            if at < user_text_end {
                user_text
            } else {
                Attributes::KERNEL_RWX
            }
        };
        let mut kernel =
            identity_kernel_table(&mut mem, &mut pool, arch, ram).map_err(|e| format!("{e}"))?;
        let config = MmuConfig {
            kernel_table: kernel.l1(),
            ttbr1_split: if arch == Arch::Armv6 { 1 } else { 0 },
        };
        // SAFETY: the kernel table maps all RAM and the devices at VA = PA.
        unsafe { enable_mmu(mem.cpu(), config) }.map_err(|e| format!("MMU: {e}"))?;

        let user = pool
            .allocate(USER_FRAMES_BYTES)
            .ok_or("no room for user frames")?;
        let mut sys = MemorySystem::new(mem, pool, user, USER_FRAMES_BYTES / PAGE, info.colours())
            .map_err(|e| format!("{e}"))?;
        let windows = KernelWindows::new(
            &mut sys.mem,
            &mut sys.table_frames,
            &mut kernel,
            VirtAddr(WINDOWS),
            &info,
        )
        .map_err(|e| format!("{e}"))?;
        // SAFETY: WINDOWS holds the windows just reserved, nothing else.
        unsafe { sys.mem.allow_windows(VirtAddr(WINDOWS), MIB) };
        let switcher = match arch {
            // FCSE PIDs: switches between processes do not flush. Their
            // windows (PID × 32 MiB) must be free in the kernel's map: 20–27
            // put them at 640–896 MiB, clear of the kernel's data and pool
            // (PIDs 1–3), devices (8) and windows (16). Few on purpose, so
            // the demo shows rollovers.
            Arch::Armv5 => ContextSwitcher::vivt_fcse(
                KeyAllocator::fcse_pids(FCSE_PIDS.0, FCSE_PIDS.1).map_err(|e| format!("{e:?}"))?,
            ),
            // Few ASIDs on purpose, so the demo shows rollovers.
            Arch::Armv6 => ContextSwitcher::asid(
                KeyAllocator::asid_range(1, 4).map_err(|e| format!("{e:?}"))?,
                kernel.l1(),
            ),
        };
        // Checked against the cache and the switch: refused if the two
        // cannot be kept coherent together.
        let mut engine = Engine::new(info, 0, switcher.policy())
            .map_err(|e| format!("{e}"))?
            .with_windows(windows);

        // The in-memory "disk" file: read into the page cache as a
        // driver would, through the kernel's alias inside the page-cache
        // write guard (its flush_dcache_page is deferred: nobody maps it yet).
        let file = sys
            .objects
            .create(ObjectKind::File, FILE_PAGES)
            .map_err(|e| format!("{e}"))?;
        let mut file_frames = Vec::new();
        let colours = sys.allocator.colours();
        for page in 0..FILE_PAGES {
            // Colour off by one from the file offset: user mappings land
            // at the offset's colour, so the kernel alias is a real alias.
            let frame = sys
                .allocator
                .allocate_colour((page + 1) % colours)
                .map_err(|e| format!("{e}"))?;
            sys.objects
                .insert_page(file, page, frame)
                .map_err(|e| format!("{e}"))?;
            let write = engine
                .page_cache_write(&mut sys, frame)
                .map_err(|e| format!("{e}"))?;
            for offset in (0..PAGE).step_by(4) {
                kernel_store(write.va().as_u32() + offset, abi::file_word(page, offset));
            }
            write.finish().map_err(|e| format!("{e}"))?;
            file_frames.push(frame);
        }
        let buffer = engine
            .create_shared_buffer(&mut sys, None, 1, SharingMode::HandOver)
            .map_err(|e| format!("{e}"))?;
        Ok(Kernel {
            sys,
            kernel,
            arch,
            info,
            engine,
            switcher,
            dma: Dma::new(&info),
            file,
            file_frames,
            ring: Ring {
                buffer,
                slots: [Slot::Free; RING_SLOTS as usize],
                ready: VecDeque::new(),
                messages: 0,
                bad_messages: 0,
            },
            procs: Vec::new(),
            current: None,
            resched: false,
            dead: Vec::new(),
            outcomes: Vec::new(),
            next_pid: 1,
            stats: Stats::default(),
            omit_flush_dcache_page: Self::omits_flush_dcache_page(&info)?,
        })
    }

    /// A user table sharing the kernel's entries.
    fn new_table(&mut self) -> Result<PageTable, String> {
        let l1 = self
            .sys
            .table_frames
            .allocate(16 << 10)
            .ok_or("no room for a user table")?;
        let mut table =
            PageTable::new(&mut self.sys.mem, l1, self.arch).map_err(|e| format!("{e}"))?;
        // Every mapping private to a process lies in 16–32 MiB: it may run
        // under an FCSE PID (ARM926).
        table.set_fits_fcse_window(USER_TOP <= FCSE_WINDOW);
        // The board's kernel entries: the image (its text and read-only
        // data user-readable, see `set_up`; its data kernel-only), the frame
        // pool, the devices; and the windows.
        let windows =
            VirtRange::new(VirtAddr(WINDOWS), u64::from(MIB)).map_err(|e| format!("{e:?}"))?;
        share_kernel_entries(&mut self.sys.mem, &mut table, &self.kernel, &[windows])
            .map_err(|e| format!("{e}"))?;
        Ok(table)
    }

    fn space_config(&self) -> SpaceConfig {
        SpaceConfig {
            layout: Layout {
                min_addr: USER_MIN,
                mmap_base: USER_TOP,
                task_size: USER_TOP,
                colour_span: self.info.colour_alignment() as u32,
                direction: Direction::TopDown,
            },
            stack_guard_gap: 0,
            max_mappings: SpaceConfig::DEFAULT_MAX_MAPPINGS,
        }
    }

    /// Creates a process running `entry(arg)` on a fresh stack.
    pub fn spawn(
        &mut self,
        name: &'static str,
        entry: extern "C" fn(u32) -> !,
        arg: u32,
        expect: Expect,
    ) -> Result<(), String> {
        let pid = self.next_pid;
        self.next_pid += 1;
        let table = self.new_table()?;
        let config = self.space_config();
        let mut space = self
            .engine
            .create_space(&mut self.sys, config, table)
            .map_err(|e| format!("{e}"))?;
        let stack = self
            .engine
            .mmap(&mut self.sys, &mut space, MmapArgs::anonymous(STACK_BYTES))
            .map_err(|e| format!("{e}"))?;
        self.procs.push(Process {
            pid,
            name,
            parent: None,
            space: Some(space),
            frame: TrapFrame::new(entry as usize as u32, arg, stack.as_u32() + STACK_BYTES),
            state: State::Runnable,
            expect: Some(expect),
        });
        Ok(())
    }

    fn index(&self, pid: u32) -> Option<usize> {
        self.procs.iter().position(|p| p.pid == pid)
    }

    fn proc_mut(&mut self, pid: u32) -> &mut Process {
        let i = self.index(pid).expect("pid of a live process");
        &mut self.procs[i]
    }

    // ---- scheduling ---------------------------------------------------------------

    /// Picks the process to run next (round robin after the current one
    /// when it must give up the CPU), switches to its space, destroys the
    /// spaces of ended processes, and returns its frame.
    fn schedule(&mut self) -> *const TrapFrame {
        let runnable = |p: &Process| p.state == State::Runnable;
        let current = self.current.and_then(|pid| self.index(pid));
        let keep = current.filter(|&i| !self.resched && runnable(&self.procs[i]));
        self.resched = false;
        let next = keep.or_else(|| {
            let n = self.procs.len();
            let start = current.map_or(0, |i| i + 1);
            (0..n)
                .map(|k| (start + k) % n)
                .find(|&i| runnable(&self.procs[i]))
        });
        let Some(next) = next else {
            if self
                .procs
                .iter()
                .all(|p| matches!(p.state, State::Zombie(_)))
            {
                self.finish();
            }
            vacmm_qemu::harness::fatal(format_args!("deadlock: no process can run"));
        };
        let pid = self.procs[next].pid;
        let space = self.procs[next]
            .space
            .as_mut()
            .expect("a runnable process has a space");
        // SAFETY: every user table shares the kernel's entries for the
        // image, heap, stacks, table memory and devices (new_table).
        if let Err(e) = unsafe {
            self.engine
                .switch_to(&mut self.switcher, &mut self.sys, space)
        } {
            vacmm_qemu::harness::fatal(format_args!("switch to pid {pid}: {e}"));
        }
        self.current = Some(pid);
        self.reap();
        &self.procs[next].frame
    }

    /// Destroys the spaces of ended processes (not running any more).
    fn reap(&mut self) {
        for space in core::mem::take(&mut self.dead) {
            match self.engine.exit(&mut self.sys, space) {
                Ok(l1) => {
                    if !self.sys.table_frames.free_l1(l1) {
                        vacmm_qemu::harness::fatal(format_args!(
                            "exit handed back {l1}, not an L1 table of the pool in use"
                        ));
                    }
                    self.stats.tables_freed += 1;
                }
                Err(refused) => {
                    println!("  kernel: cannot destroy a space yet: {}", refused.error);
                    if let Some(space) = refused.space {
                        self.dead.push(*space);
                    }
                }
            }
        }
    }

    /// Ends process `pid`.
    fn end(&mut self, pid: u32, ending: Ending) {
        let i = self.index(pid).expect("live pid");
        let (name, parent, expect) = {
            let p = &mut self.procs[i];
            (p.name, p.parent, p.expect)
        };
        if let Some(space) = self.procs[i].space.take() {
            self.dead.push(space);
        }
        if let Ending::Killed(why) = &ending {
            self.stats.kills += 1;
            println!("  kernel: pid {pid} ({name}) killed: {why}");
        }
        if self.current == Some(pid) {
            self.resched = true;
        }
        // Orphans run on with no parent to wait for them.
        for p in self.procs.iter_mut().filter(|p| p.parent == Some(pid)) {
            p.parent = None;
        }
        if let Some(expect) = expect {
            self.outcomes.push(Outcome {
                name,
                expect,
                ending: ending.clone(),
            });
        }
        let status = match ending {
            Ending::Exited(code) => code,
            Ending::Killed(_) => 0x100,
        };
        let waiting_parent = parent
            .and_then(|ppid| self.index(ppid))
            .filter(|&pi| self.procs[pi].state == State::Waiting);
        if let Some(pi) = waiting_parent {
            let parent = &mut self.procs[pi];
            parent.frame.r[0] = pid;
            parent.frame.r[1] = status;
            parent.state = State::Runnable;
            self.procs.remove(i);
        } else if parent.is_some() {
            self.procs[i].state = State::Zombie(status);
        } else {
            self.procs.remove(i);
        }
        if self.procs.is_empty() {
            self.finish();
        }
    }

    // ---- traps --------------------------------------------------------------------

    fn trap(&mut self, saved: &TrapFrame, kind: Option<TrapKind>) -> *const TrapFrame {
        let Some(pid) = self.current else {
            vacmm_qemu::harness::fatal(format_args!("trap with no process running"));
        };
        if saved.cpsr & 0x1f != 0x10 {
            vacmm_qemu::harness::fatal(format_args!(
                "{kind:?} from a privileged mode (cpsr {:#x}, pc {:#x})",
                saved.cpsr, saved.pc
            ));
        }
        self.proc_mut(pid).frame = *saved;
        match kind {
            Some(TrapKind::Svc) => self.syscall(pid),
            Some(TrapKind::Irq) => {
                if timer::acknowledge() {
                    self.stats.ticks += 1;
                    self.resched = true;
                }
            }
            Some(TrapKind::DataAbort) => self.data_abort(pid),
            Some(TrapKind::PrefetchAbort) => {
                let pc = saved.pc;
                self.end(
                    pid,
                    Ending::Killed(format!(
                        "prefetch abort: jumped to {pc:#010x} (IFSR {:#x})",
                        vacmm::arch::instruction_fault_status()
                    )),
                );
            }
            Some(TrapKind::Undefined) | None => {
                let pc = saved.pc;
                self.end(
                    pid,
                    Ending::Killed(format!("undefined instruction at pc {pc:#010x}")),
                );
            }
        }
        self.schedule()
    }

    /// A user data abort: a kernel address or a bad access kills the
    /// process; a translation or page-permission fault in its range goes
    /// to `Engine::fault` (zero-fill, copy-on-write, mapping a file page,
    /// with `update_mmu_cache` / `make_coherent`), and the instruction
    /// runs again.
    fn data_abort(&mut self, pid: u32) {
        let far = self.unmodified(pid, vacmm::arch::fault_address());
        let fsr = vacmm::arch::data_fault_status();
        let frame = self.proc_mut(pid).frame;
        let pc = frame.pc;
        let access = match self.arch {
            // DFSR.WnR.
            Arch::Armv6 if fsr & (1 << 11) != 0 => FaultAccess::Write,
            Arch::Armv6 => FaultAccess::Read,
            // ARMv5 has no WnR: decode the load or store at pc (its L bit
            // alone takes LDRD for a write; `vacmm::arch::abort`).
            Arch::Armv5 => {
                // SAFETY: user code is the image's text, mapped for the kernel.
                let decoded = unsafe {
                    if frame.cpsr & THUMB != 0 {
                        vacmm::arch::abort::thumb_access((pc as *const u16).read_volatile())
                    } else {
                        vacmm::arch::abort::arm_access((pc as *const u32).read_volatile())
                    }
                };
                match decoded {
                    Ok(access) => access,
                    Err(e) => {
                        let ending = Ending::Killed(format!("data abort at pc {pc:#010x}: {e}"));
                        self.end(pid, ending);
                        return;
                    }
                }
            }
        };
        let what = if access == FaultAccess::Write {
            "write to"
        } else {
            "read from"
        };
        let status = status_code(fsr);
        if !(USER_MIN..USER_TOP).contains(&far) {
            self.end(
                pid,
                Ending::Killed(format!(
                    "data abort at pc {pc:#010x}: {what} kernel address {far:#010x} (FSR status {status:#07b})"
                )),
            );
            return;
        }
        if !matches!(
            status,
            TRANSLATION_SECTION | TRANSLATION_PAGE | PERMISSION_PAGE
        ) {
            self.end(
                pid,
                Ending::Killed(format!(
                    "data abort at pc {pc:#010x}: {what} {far:#010x}, FSR status {status:#07b}"
                )),
            );
            return;
        }
        match self.resolve(pid, far, access) {
            Ok(()) => {}
            Err(e) => self.end(
                pid,
                Ending::Killed(format!(
                    "segmentation fault at pc {pc:#010x}: {what} {far:#010x}: {e}"
                )),
            ),
        }
    }

    /// The process's own address for a fault address: the ARM926's FAR
    /// holds the modified virtual address, which an FCSE PID has moved
    /// into the PID's window when the address was below 32 MiB.
    fn unmodified(&self, pid: u32, far: u32) -> u32 {
        let window = self
            .index(pid)
            .and_then(|i| self.procs[i].space.as_ref()?.table().fcse_window());
        match window {
            Some(fcse_pid) if far / FCSE_WINDOW == u32::from(fcse_pid) => far % FCSE_WINDOW,
            _ => far,
        }
    }

    fn resolve(&mut self, pid: u32, va: u32, access: FaultAccess) -> Result<(), String> {
        let i = self.index(pid).ok_or("no such process")?;
        let space = self.procs[i].space.as_mut().ok_or("process ended")?;
        self.engine
            .fault(&mut self.sys, space, VirtAddr(va), access)
            .map_err(|e| format!("{e}"))?;
        self.stats.faults_resolved += 1;
        Ok(())
    }

    // ---- user memory from the kernel ---------------------------------------------

    /// Reads a user byte with the user's permissions (LDRBT), faulting the
    /// page in through the engine; runs in SVC mode (system calls only).
    fn read_user_u8(&mut self, pid: u32, va: u32) -> Result<u8, i32> {
        if !(USER_MIN..USER_TOP).contains(&va) {
            return Err(EFAULT);
        }
        for _ in 0..3 {
            let mut value = 0u32;
            // SAFETY: a single user-permission load; its abort is caught.
            let fault = catch_fault(FaultKind::DataAbort, || unsafe {
                core::arch::asm!("ldrbt {0}, [{1}]", out(reg) value, in(reg) va, options(nostack));
            });
            match fault {
                None => return Ok(value as u8),
                Some(_) => self
                    .resolve(pid, va, FaultAccess::Read)
                    .map_err(|_| EFAULT)?,
            }
        }
        Err(EFAULT)
    }

    /// Writes a user byte with the user's permissions (STRBT): a
    /// copy-on-write page is copied first, as for the user's own store.
    fn write_user_u8(&mut self, pid: u32, va: u32, value: u8) -> Result<(), i32> {
        if !(USER_MIN..USER_TOP).contains(&va) {
            return Err(EFAULT);
        }
        for _ in 0..3 {
            // SAFETY: a single user-permission store; its abort is caught.
            let fault = catch_fault(FaultKind::DataAbort, || unsafe {
                core::arch::asm!("strbt {0}, [{1}]", in(reg) u32::from(value), in(reg) va, options(nostack));
            });
            match fault {
                None => return Ok(()),
                Some(_) => self
                    .resolve(pid, va, FaultAccess::Write)
                    .map_err(|_| EFAULT)?,
            }
        }
        Err(EFAULT)
    }

    // ---- system calls -------------------------------------------------------------

    fn syscall(&mut self, pid: u32) {
        self.stats.syscalls += 1;
        let f = self.proc_mut(pid).frame;
        let [a, b, c, d] = [f.r[0], f.r[1], f.r[2], f.r[3]];
        let result: Result<u32, i32> = match f.r[4] {
            WRITE => self.write(pid, a, b),
            EXIT => {
                self.end(pid, Ending::Exited(a));
                return;
            }
            YIELD => {
                self.resched = true;
                Ok(0)
            }
            FORK => self.fork(pid),
            WAIT => match self.wait(pid) {
                Some(result) => result,
                None => return,
            },
            MMAP => self.mmap(pid, a, b, c, d),
            MUNMAP => self.with_space(pid, |k, space| {
                k.engine
                    .munmap(&mut k.sys, space, VirtAddr(a), b)
                    .map(|()| 0)
            }),
            MPROTECT => self.with_space(pid, |k, space| {
                k.engine
                    .mprotect(&mut k.sys, space, VirtAddr(a), b, prot_from(c))
                    .map(|()| 0)
            }),
            MAP_RING => {
                let object = self.ring.buffer.object();
                self.with_space(pid, |k, space| {
                    k.engine
                        .mmap(&mut k.sys, space, MmapArgs::shared_object(object, 0, PAGE))
                        .map(|va| va.as_u32())
                })
            }
            RING_PUT => self.ring_put(a),
            RING_GET => self.ring_get(),
            RING_DONE => self.ring_done(a),
            RING_FREE => match self.ring.slots.get(a as usize) {
                Some(state) => Ok(u32::from(*state == Slot::Free)),
                None => Err(EINVAL),
            },
            FILE_POKE => self.file_poke(a, b, c),
            DMA_READ => self.dma_read(pid, a, b, c),
            DMA_WRITE => self.dma_write(pid, a, b),
            GETPID => Ok(pid),
            _ => Err(EINVAL),
        };
        let frame = &mut self.proc_mut(pid).frame;
        frame.r[0] = match result {
            Ok(v) => v,
            Err(e) => e as u32,
        };
    }

    fn with_space(
        &mut self,
        pid: u32,
        f: impl FnOnce(&mut Self, &mut AddressSpace) -> Result<u32, vacmm::coherence::CoherenceError>,
    ) -> Result<u32, i32> {
        let i = self.index(pid).ok_or(EINVAL)?;
        let mut space = self.procs[i].space.take().ok_or(EINVAL)?;
        let result = f(self, &mut space);
        self.procs[i].space = Some(space);
        result.map_err(|e| {
            println!("  kernel: pid {pid}: {e}");
            EINVAL
        })
    }

    fn write(&mut self, pid: u32, va: u32, len: u32) -> Result<u32, i32> {
        let mut text = Vec::new();
        for i in 0..len.min(256) {
            text.push(self.read_user_u8(pid, va.wrapping_add(i))?);
        }
        vacmm_qemu::print!("{}", String::from_utf8_lossy(&text));
        Ok(text.len() as u32)
    }

    fn mmap(&mut self, pid: u32, kind: u32, len: u32, offset: u32, prot: u32) -> Result<u32, i32> {
        let file = self.file;
        let mut args = match kind {
            MAP_ANON_PRIVATE => MmapArgs::anonymous(len),
            MAP_ANON_SHARED => MmapArgs {
                shared: true,
                ..MmapArgs::anonymous(len)
            },
            MAP_FILE_SHARED => MmapArgs::shared_object(file, u64::from(offset), len),
            MAP_FILE_PRIVATE => MmapArgs {
                shared: false,
                ..MmapArgs::shared_object(file, u64::from(offset), len)
            },
            _ => return Err(EINVAL),
        };
        args.prot = prot_from(prot);
        self.with_space(pid, |k, space| {
            k.engine.mmap(&mut k.sys, space, args).map(|va| va.as_u32())
        })
    }

    /// fork: a new table, `Engine::fork` (VIVT: the parent's dirty lines
    /// reach memory before its pages turn copy-on-write), the child
    /// resumes from the same frame with 0.
    fn fork(&mut self, pid: u32) -> Result<u32, i32> {
        let child_pid = self.next_pid;
        let table = self.new_table().map_err(|_| ENOMEM)?;
        let i = self.index(pid).ok_or(EINVAL)?;
        let parent = self.procs[i].space.as_mut().ok_or(EINVAL)?;
        let space = self
            .engine
            .fork(&mut self.sys, parent, table)
            .map_err(|e| {
                println!("  kernel: fork: {e}");
                ENOMEM
            })?;
        self.next_pid += 1;
        let mut frame = self.procs[i].frame;
        frame.r[0] = 0;
        let name = self.procs[i].name;
        self.procs.push(Process {
            pid: child_pid,
            name,
            parent: Some(pid),
            space: Some(space),
            frame,
            state: State::Runnable,
            expect: None,
        });
        Ok(child_pid)
    }

    /// wait: a zombie child's (pid, status), or block until a child ends
    /// (None: the frame is filled in by `end`).
    fn wait(&mut self, pid: u32) -> Option<Result<u32, i32>> {
        if let Some(ci) = self
            .procs
            .iter()
            .position(|p| p.parent == Some(pid) && matches!(p.state, State::Zombie(_)))
        {
            let State::Zombie(status) = self.procs[ci].state else {
                unreachable!()
            };
            let child = self.procs.remove(ci).pid;
            self.proc_mut(pid).frame.r[1] = status;
            return Some(Ok(child));
        }
        if self.procs.iter().any(|p| p.parent == Some(pid)) {
            self.proc_mut(pid).state = State::Waiting;
            self.resched = true;
            None
        } else {
            Some(Err(ECHILD))
        }
    }

    /// The kernel takes a slot the producer filled: `sync_for_kernel`
    /// makes the producer's writes visible to its alias, it checks and
    /// stamps the message, and `sync_for_user` hands it to the consumer.
    fn ring_put(&mut self, slot: u32) -> Result<u32, i32> {
        if slot >= RING_SLOTS {
            return Err(EINVAL);
        }
        if self.ring.slots[slot as usize] != Slot::Free {
            return Err(EAGAIN);
        }
        let offset = slot * SLOT_BYTES;
        let buffer = &self.ring.buffer;
        self.engine
            .sync_for_kernel(&mut self.sys, buffer, offset, SLOT_BYTES)
            .map_err(|_| EINVAL)?;
        let base = buffer.kernel_va(0).ok_or(EINVAL)?.as_u32() + offset;
        let seq = kernel_load(base);
        let mut sum = 0u32;
        let mut intact = true;
        for i in 1..SLOT_WORDS - 2 {
            let word = kernel_load(base + 4 * i);
            intact &= word == abi::payload(seq, i);
            sum = sum.wrapping_add(word);
        }
        intact &= kernel_load(base + 4 * (SLOT_WORDS - 2)) == sum;
        if !intact {
            self.ring.bad_messages += 1;
            println!("  kernel: ring message {seq} arrived corrupted");
        }
        kernel_store(base + 4 * (SLOT_WORDS - 1), abi::kernel_stamp(seq));
        self.engine
            .sync_for_user(&mut self.sys, buffer, offset, SLOT_BYTES)
            .map_err(|_| EINVAL)?;
        self.ring.slots[slot as usize] = Slot::Ready;
        self.ring.ready.push_back(slot);
        self.ring.messages += 1;
        Ok(0)
    }

    fn ring_get(&mut self) -> Result<u32, i32> {
        let slot = self.ring.ready.pop_front().ok_or(EAGAIN)?;
        self.ring.slots[slot as usize] = Slot::Reading;
        Ok(slot)
    }

    fn ring_done(&mut self, slot: u32) -> Result<u32, i32> {
        match self.ring.slots.get_mut(slot as usize) {
            Some(state @ Slot::Reading) => {
                *state = Slot::Free;
                Ok(0)
            }
            _ => Err(EINVAL),
        }
    }

    /// A kernel write to a page-cache page (a `write()` to the file):
    /// through the kernel's own alias inside `Engine::page_cache_write`'s
    /// guard — which first flushes users that map the page writable (their
    /// dirty lines would otherwise be written back over this store), then
    /// ends with `flush_dcache_page`, deferred if no user maps the page.
    fn file_poke(&mut self, page: u32, offset: u32, value: u32) -> Result<u32, i32> {
        let frame = *self.file_frames.get(page as usize).ok_or(EINVAL)?;
        if offset >= PAGE || !offset.is_multiple_of(4) {
            return Err(EINVAL);
        }
        if self.omit_flush_dcache_page {
            // The negative control: a bare store, no maintenance at all.
            kernel_store(self.engine.kernel_va(frame).as_u32() + offset, value);
        } else {
            let write = self
                .engine
                .page_cache_write(&mut self.sys, frame)
                .map_err(|_| EINVAL)?;
            kernel_store(write.va().as_u32() + offset, value);
            write.finish().map_err(|_| EINVAL)?;
        }
        self.stats.kernel_file_writes += 1;
        Ok(0)
    }

    /// The disk driver stub's read: the device writes a kernel buffer that
    /// starts mid-line after the driver's own status word (`Dma` cleans the
    /// shared line rather than invalidating it), then the data goes to
    /// the user with user-permission stores (copy_to_user).
    fn dma_read(&mut self, pid: u32, user_va: u32, len: u32, seed: u32) -> Result<u32, i32> {
        if len == 0 || len > DMA_MAX {
            return Err(EINVAL);
        }
        let frame = self.sys.allocator.allocate_any().map_err(|_| ENOMEM)?;
        let base = self.engine.kernel_va(frame).as_u32();
        let status_word = 0x5747_0001;
        kernel_store(base, status_word);
        let buffer = base + 20;
        let result = (|| {
            // SAFETY: [buffer, buffer + len) holds only the transfer's
            // bytes; the driver leaves its status word alone until unmap.
            let mapping = unsafe {
                self.dma.map_single(
                    self.sys.mem.cpu(),
                    VirtAddr(buffer),
                    len as usize,
                    DmaDirection::FromDevice,
                )
            }
            .map_err(|_| EINVAL)?;
            // The device's writes (QEMU memory is the device's view).
            for i in 0..len {
                // SAFETY: a byte of the frame allocated above.
                unsafe { ((buffer + i) as *mut u8).write_volatile(abi::dma_byte(seed, i)) };
            }
            self.dma
                .unmap(self.sys.mem.cpu(), mapping)
                .map_err(|_| EINVAL)?;
            if kernel_load(base) != status_word {
                println!("  kernel: DMA lost the driver's status word!");
                return Err(EFAULT);
            }
            for i in 0..len {
                // SAFETY: as above.
                let byte = unsafe { ((buffer + i) as *const u8).read_volatile() };
                self.write_user_u8(pid, user_va.wrapping_add(i), byte)?;
            }
            Ok(len)
        })();
        let _ = self.sys.allocator.free(frame);
        self.stats.dma_transfers += 1;
        result
    }

    /// The driver stub's write: copy_from_user into an unaligned kernel
    /// buffer, map it to the device (clean), the device reads memory.
    fn dma_write(&mut self, pid: u32, user_va: u32, len: u32) -> Result<u32, i32> {
        if len == 0 || len > DMA_MAX {
            return Err(EINVAL);
        }
        let frame = self.sys.allocator.allocate_any().map_err(|_| ENOMEM)?;
        let buffer = self.engine.kernel_va(frame).as_u32() + 36;
        let result = (|| {
            for i in 0..len {
                let byte = self.read_user_u8(pid, user_va.wrapping_add(i))?;
                // SAFETY: a byte of the frame allocated above.
                unsafe { ((buffer + i) as *mut u8).write_volatile(byte) };
            }
            // SAFETY: the range holds only the transfer's bytes.
            let mapping = unsafe {
                self.dma.map_single(
                    self.sys.mem.cpu(),
                    VirtAddr(buffer),
                    len as usize,
                    DmaDirection::ToDevice,
                )
            }
            .map_err(|_| EINVAL)?;
            let mut sum = 0u32;
            for i in 0..len {
                // SAFETY: the device reads the frame (memory on QEMU).
                sum = sum.wrapping_add(u32::from(unsafe {
                    ((buffer + i) as *const u8).read_volatile()
                }));
            }
            self.dma
                .unmap(self.sys.mem.cpu(), mapping)
                .map_err(|_| EINVAL)?;
            Ok(sum)
        })();
        let _ = self.sys.allocator.free(frame);
        self.stats.dma_transfers += 1;
        result
    }

    // ---- the report -----------------------------------------------------------

    fn finish(&mut self) -> ! {
        timer::stop();
        let passed = self.outcomes.iter().filter(|o| o.passed()).count();
        println!();
        println!("== programs ==");
        for o in &self.outcomes {
            let ending = match &o.ending {
                Ending::Exited(code) => format!("exited with {code}"),
                Ending::Killed(_) => String::from("killed by the kernel"),
            };
            let expected = match o.expect {
                Expect::Success => "exit 0 (data checks)",
                Expect::Killed => "killed",
            };
            println!(
                "  {:<14} {:<22} expected {:<22} {}",
                o.name,
                ending,
                expected,
                if o.passed() { "ok" } else { "FAILED" }
            );
        }
        let c = self.engine.counters();
        let s = self.switcher.counters();
        let d = self.dma.counters();
        println!();
        println!("== vacmm counters ==");
        println!(
            "  flush_dcache_page        {} calls, {} deferred",
            c.flush_dcache_page, c.deferred
        );
        println!(
            "  alias maintenance        {} kernel-alias pages, {} user-alias pages, {} I-cache",
            c.kernel_alias_cleans, c.user_alias_flushes, c.icache_flushes
        );
        println!(
            "  whole-cache flushes      {} (range flushes {}, skipped spaces not live {})",
            c.whole_cache_flushes, c.range_flushes, c.skipped_not_live
        );
        println!(
            "  make_coherent            {} pages made uncacheable, {} restored",
            c.made_uncached, c.restored
        );
        println!(
            "  pages filled             {} ({} through a kernel window), {} kmaps",
            c.pages_filled, c.window_fills, c.kmaps
        );
        println!(
            "  context switches         {} ({} flushed the cache, {} the TLB; {} ASID/PID rollovers; {} separated pages shared across processes)",
            s.switches - s.already_current,
            s.cache_flushes,
            s.tlb_flushes,
            s.rollovers,
            c.cross_space_separations
        );
        println!(
            "  DMA                      {} maps, {} lines cleaned, {} invalidated, {} partial lines cleaned",
            d.maps, d.lines_cleaned, d.lines_invalidated, d.partial_lines_cleaned
        );
        println!(
            "  kernel                   {} ticks, {} system calls, {} faults resolved, {} kills, {} ring messages ({} corrupt), {} DMA transfers, {} file writes, {} L1 tables freed",
            self.stats.ticks,
            self.stats.syscalls,
            self.stats.faults_resolved,
            self.stats.kills,
            self.ring.messages,
            self.ring.bad_messages,
            self.stats.dma_transfers,
            self.stats.kernel_file_writes,
            self.stats.tables_freed
        );
        let all = passed == self.outcomes.len() && self.ring.bad_messages == 0;
        println!();
        println!(
            "{} of {} programs checked out{}",
            passed,
            self.outcomes.len(),
            if all { "" } else { " — FAILED" }
        );
        vacmm_qemu::exit(if all { 0 } else { 1 })
    }
}

/// Whether `va` is an aligned word of the frame pool, identity-mapped.
fn in_pool(va: u32) -> bool {
    (vacmm_qemu::mm::POOL_START..vacmm_qemu::mm::POOL_END).contains(&va) && va.is_multiple_of(4)
}

/// A kernel store to a pool frame through the identity map.
fn kernel_store(va: u32, value: u32) {
    assert!(in_pool(va));
    // SAFETY: an aligned word of a pool frame the kernel owns (checked
    // above), identity-mapped by every table.
    unsafe { (va as *mut u32).write_volatile(value) }
}

fn kernel_load(va: u32) -> u32 {
    assert!(in_pool(va));
    // SAFETY: as kernel_store.
    unsafe { (va as *const u32).read_volatile() }
}

/// Called by the exception entry code (vacmm_qemu::user) with the user's saved
/// frame; returns the frame to resume.
#[unsafe(no_mangle)]
extern "C" fn vacmm_qemu_trap(frame: *mut TrapFrame, kind: u32) -> *const TrapFrame {
    // SAFETY: the entry code passes the frame it just built on its stack.
    let saved = unsafe { *frame };
    kernel().trap(&saved, TrapKind::from_raw(kind))
}

/// Installs the kernel, starts the programs and the tick, and enters the
/// first process.
pub fn start(k: Kernel) -> ! {
    // SAFETY: nothing else uses KERNEL before the first trap.
    let slot = unsafe { &mut *KERNEL.0.get() };
    let k = slot.insert(k);
    let programs: [(&'static str, extern "C" fn(u32) -> !, u32, Expect); 8] = [
        ("ring-producer", user::ring_producer, 0, Expect::Success),
        ("ring-consumer", user::ring_consumer, 0, Expect::Success),
        ("two-mappings", user::two_mappings, 1, Expect::Success),
        ("fork-cow", user::fork_cow, 0, Expect::Success),
        ("page-cache", user::page_cache, 0, Expect::Success),
        ("dma", user::dma_transfer, 7, Expect::Success),
        ("intruder", user::intruder, 0, Expect::Killed),
        ("stray", user::stray, 0, Expect::Killed),
    ];
    for (name, entry, arg, expect) in programs {
        if let Err(e) = k.spawn(name, entry, arg, expect) {
            vacmm_qemu::harness::fatal(format_args!("spawn {name}: {e}"));
        }
    }
    println!(
        "== running {} programs (tick {} µs) ==",
        programs.len(),
        TICK_US
    );
    let frame = k.schedule();
    timer::start(TICK_US);
    // SAFETY: the frame stays in place until the next trap copies over it;
    // its code is the image's user-readable text, its stack was mapped by
    // spawn, and its table is current (schedule).
    unsafe { vacmm_qemu::user::enter_user(frame) }
}
