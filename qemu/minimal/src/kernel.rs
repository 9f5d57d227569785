//! The kernel: boot, the processes and their pages, the trap handler.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use crate::user;
use vacmm::addr::{PhysAddr, VirtAddr};
use vacmm::arch::AnyCpu;
use vacmm::cache::{CacheInfo, CacheKind};
use vacmm::coherence::{Engine, KmapAccess};
use vacmm::mm::ids::SpaceIds;
use vacmm::mmu::{
    Access, Arch, Attributes, ContextSwitcher, Execute, KeyAllocator, MmuConfig, PageTable,
    enable_mmu,
};
use vacmm_minimal::layout::*;
use vacmm_minimal::vm::{Frame, Process, Vm};
use vacmm_qemu::mm::{FramePool, IdentityTables, identity_kernel_table, share_kernel_entries};
use vacmm_qemu::println;
use vacmm_qemu::user::{TrapFrame, TrapKind};

/// The boot argument that leaves out `page_cache_write` for the ring's
/// second record.
const OMIT: &str = "vacmm-minimal-omit=page_cache_write";
/// User frames: one 64 KiB block, so frame i has colour i mod colours.
const FRAMES: u32 = 16;
/// Which frame of the block holds what (all at colour 0).
const FILE_FRAME: u32 = 0;
const RING_FRAME: u32 = 4;
const SHARED_FRAME: u32 = 8;
const STACK_A_FRAME: u32 = 12;
const STACK_B_FRAME: u32 = 13;

unsafe extern "C" {
    /// The end of the image's read-only data (aarch32-rt's link.x): the
    /// programs' text is below it.
    static __erodata: u8;
}

struct Kernel {
    vm: Vm<IdentityTables<AnyCpu>>,
    engine: Engine,
    pool: FramePool,
    switcher: ContextSwitcher,
    frames: [TrapFrame; 2],
    exited: [Option<u32>; 2],
    current: usize,
    /// The negative control: the ring's second record without the guard.
    omit: bool,
}

fn set_up(info: CacheInfo, omit: bool) -> Result<Kernel, String> {
    let arch = Arch::of(&info);
    let cpu = AnyCpu::new(info).map_err(|e| format!("backend: {e:?}"))?;
    // SAFETY: every table and user frame comes from the pool, which the
    // kernel's table maps VA = PA (and the MMU is off until then).
    let mut mem = unsafe { IdentityTables::new(cpu) };
    let mut pool = FramePool::new();
    // The programs run from the image's text: user-readable, executable.
    let text_end = (&raw const __erodata) as u32;
    let text = Attributes {
        access: Access::UserRoKernelRw,
        execute: Execute::Allow,
        ..Attributes::KERNEL_RWX
    };
    let ram = |at| {
        if at < text_end {
            text
        } else {
            Attributes::KERNEL_RWX
        }
    };
    let kernel =
        identity_kernel_table(&mut mem, &mut pool, arch, ram).map_err(|e| format!("{e}"))?;
    let ttbr1_split = if arch == Arch::Armv6 { 1 } else { 0 };
    let config = MmuConfig {
        kernel_table: kernel.l1(),
        ttbr1_split,
    };
    // SAFETY: the kernel's table maps all RAM and the devices at VA = PA.
    unsafe { enable_mmu(mem.cpu(), config) }.map_err(|e| format!("MMU: {e}"))?;

    let first = pool
        .allocate(FRAMES * PAGE)
        .ok_or("no room for user frames")?;
    let frames = (0..FRAMES).map(|_| Frame::default()).collect();
    let mut vm = Vm {
        mem,
        first,
        frames,
        procs: Vec::new(),
    };
    let mut ids = SpaceIds::new();
    for _ in 0..2 {
        let l1 = pool.allocate(16 << 10).ok_or("no room for a table")?;
        let mut table = PageTable::new(&mut vm.mem, l1, arch).map_err(|e| format!("{e}"))?;
        share_kernel_entries(&mut vm.mem, &mut table, &kernel, &[]).map_err(|e| format!("{e}"))?;
        let id = ids.issue().map_err(|e| format!("{e}"))?;
        vm.procs.push(Process {
            id,
            table: Some(table),
            pages: Vec::new(),
        });
    }
    let switcher = match arch {
        Arch::Armv5 => ContextSwitcher::vivt_flush(),
        Arch::Armv6 => ContextSwitcher::asid(KeyAllocator::asids(), kernel.l1()),
    };
    let mut k = Kernel {
        engine: Engine::new(info, 0, switcher.policy()).map_err(|e| format!("{e}"))?,
        vm,
        pool,
        switcher,
        frames: [
            TrapFrame::new(user::process_a as *const () as u32, 0, STACK_AT + PAGE),
            TrapFrame::new(user::process_b as *const () as u32, 0, STACK_AT + PAGE),
        ],
        exited: [None, None],
        current: 0,
        omit,
    };
    // A runs first (on the ARM926 this switch flushes the cache: what the
    // kernel writes next stays in its lines until the engine moves it).
    k.vm.switch(&mut k.engine, &mut k.switcher, 0)
        .map_err(|e| format!("switch: {e}"))?;
    k.fill().map_err(|e| format!("kernel writes: {e}"))?;
    k.map_all().map_err(|e| format!("mapping: {e}"))?;
    Ok(k)
}

impl Kernel {
    fn frame(&self, index: u32) -> PhysAddr {
        PhysAddr(self.vm.first.as_u32() + index * PAGE)
    }

    /// The kernel writes the file page (as a driver's read would) and the
    /// ring's record (after reading its head), before anyone maps them:
    /// the engine defers the maintenance to the first mapping.
    fn fill(&mut self) -> Result<(), vacmm::coherence::CoherenceError> {
        let file = self.frame(FILE_FRAME);
        let write = self.engine.page_cache_write(&mut self.vm, file)?;
        for word in 0..PAGE / 4 {
            let at = (write.va().as_u32() + 4 * word) as *mut u32;
            // SAFETY: the linear map of a frame of the kernel's own.
            unsafe { at.write_volatile(file_word(word)) };
        }
        write.finish()?;
        let ring = self.frame(RING_FRAME);
        let write = self.engine.page_cache_write(&mut self.vm, ring)?;
        let head = write.va().as_u32() as *mut u32;
        // SAFETY: as above.
        unsafe {
            let _empty = head.read_volatile();
            head.write_volatile(RING_RECORD);
        }
        write.finish()
    }

    fn map_all(&mut self) -> Result<(), vacmm::coherence::CoherenceError> {
        let ro = Attributes {
            access: Access::UserRoKernelRw,
            ..Attributes::USER_DATA
        };
        let rw = Attributes::USER_DATA;
        let pages = [
            (0, FILE_AT[0], FILE_FRAME, ro),
            (0, FILE_AT[1], FILE_FRAME, ro),
            (0, RING_AT, RING_FRAME, rw),
            (0, SHARED_AT[0], SHARED_FRAME, rw),
            (1, SHARED_AT[1], SHARED_FRAME, rw),
            (0, STACK_AT, STACK_A_FRAME, rw),
            (1, STACK_AT, STACK_B_FRAME, rw),
        ];
        for (proc, va, frame, attrs) in pages {
            let page = (VirtAddr(va), self.frame(frame));
            self.vm
                .map(&mut self.engine, &mut self.pool, proc, page, attrs)?;
        }
        Ok(())
    }

    /// A process trapped: `svc` EXIT, YIELD or RING; anything else is fatal.
    fn trap(&mut self, saved: &TrapFrame, kind: Option<TrapKind>) -> *const TrapFrame {
        let me = self.current;
        match (kind, saved.r[0]) {
            (Some(TrapKind::Svc), EXIT) => self.exited[me] = Some(saved.r[1]),
            (Some(TrapKind::Svc), YIELD) => self.frames[me] = *saved,
            (Some(TrapKind::Svc), RING) => {
                self.frames[me] = *saved;
                let put = self.ring_put(RING_RECORD_2);
                put.unwrap_or_else(|e| fatal(format_args!("ring: {e}")));
                return &self.frames[me];
            }
            _ => fatal(format_args!("process {me}: {kind:?} at {:#x}", saved.pc)),
        }
        let other = 1 - me;
        let next = if self.exited[other].is_none() {
            other
        } else {
            me
        };
        if self.exited[next].is_some() {
            self.finish();
        }
        if next != me {
            let switched = self.vm.switch(&mut self.engine, &mut self.switcher, next);
            switched.unwrap_or_else(|e| fatal(format_args!("switch: {e}")));
            self.current = next;
            if self.exited[me].is_some() {
                let exit = self.vm.exit(&mut self.engine, me);
                exit.unwrap_or_else(|e| fatal(format_args!("exit: {e}")));
            }
        }
        &self.frames[next]
    }

    /// Puts `record` in the ring's second slot while process A (running) maps
    /// the ring and holds its line: through the guard, which drops A's
    /// line first; or, the negative control, by a bare store through the
    /// linear map, which leaves A's line stale on an aliasing cache.
    fn ring_put(&mut self, record: u32) -> Result<(), vacmm::coherence::CoherenceError> {
        let ring = self.frame(RING_FRAME);
        if self.omit {
            let at = (ring.as_u32() + RING_SLOT_2) as *mut u32;
            // SAFETY: the linear map (VA = PA) of the kernel's own frame.
            unsafe { at.write_volatile(record) };
            return Ok(());
        }
        let write = self.engine.page_cache_write(&mut self.vm, ring)?;
        let at = (write.va().as_u32() + RING_SLOT_2) as *mut u32;
        // SAFETY: as above.
        unsafe { at.write_volatile(record) };
        write.finish()
    }

    /// Both processes ended: the kernel reads A's ring reply through a
    /// `Kmap`, and reports.
    fn finish(&mut self) -> ! {
        let ring = self.frame(RING_FRAME);
        let kmap = self.engine.kmap(&mut self.vm, ring, KmapAccess::Read);
        let kmap = kmap.unwrap_or_else(|e| fatal(format_args!("kmap: {e}")));
        // SAFETY: the kmap's address maps the ring frame while it lives.
        let reply = unsafe { ((kmap.va().as_u32() + 4) as *const u32).read_volatile() };
        kmap.finish()
            .unwrap_or_else(|e| fatal(format_args!("kmap: {e}")));
        let [a, b] = self.exited.map(|e| e.unwrap_or(u32::MAX));
        let ring_ok = reply == ring_reply(RING_RECORD);
        println!("process A: {a} checks failed; process B: {b} checks failed");
        println!(
            "ring reply: {}",
            if ring_ok { "as expected" } else { "WRONG" }
        );
        let c = self.engine.counters();
        println!(
            "engine: {} deferred, {} kernel-alias cleans, {} user-alias flushes, {} separations",
            c.deferred, c.kernel_alias_cleans, c.user_alias_flushes, c.cross_space_separations
        );
        let passed = a == 0 && b == 0 && ring_ok;
        println!(
            "minimal kernel: {}",
            if passed {
                "all checks passed"
            } else {
                "FAILED"
            }
        );
        vacmm_qemu::exit(if passed { 0 } else { 1 })
    }
}

struct Global(UnsafeCell<Option<Kernel>>);
// SAFETY: one core; the kernel runs with IRQs masked, so start-up and each
// trap use it one at a time.
unsafe impl Sync for Global {}
static KERNEL: Global = Global(UnsafeCell::new(None));

fn fatal(why: core::fmt::Arguments) -> ! {
    vacmm_qemu::harness::fatal(why)
}

/// Called by the board support's exception entry with the user's saved
/// registers; returns the registers to resume.
#[unsafe(no_mangle)]
extern "C" fn vacmm_qemu_trap(frame: *mut TrapFrame, kind: u32) -> *const TrapFrame {
    // SAFETY: see `Global`; the entry code passes the frame it just built.
    let (k, saved) = unsafe { ((*KERNEL.0.get()).as_mut(), *frame) };
    let k = k.unwrap_or_else(|| fatal(format_args!("a trap before start-up")));
    k.trap(&saved, TrapKind::from_raw(kind))
}

pub fn main() -> ! {
    println!(
        "vacmm minimal kernel (its own memory manager) on {}",
        vacmm_qemu::board::NAME
    );
    let info = vacmm_qemu::cache_info().unwrap_or_else(|e| fatal(format_args!("caches: {e}")));
    println!(
        "D-cache: {} KiB, {}",
        info.dcache.size_bytes >> 10,
        info.kind
    );
    let omit = vacmm_qemu::boot_arg(OMIT).is_some();
    if omit {
        println!("NOTE: the ring's second record leaves out page_cache_write on purpose ({OMIT})");
        if matches!(info.kind, CacheKind::Vivt | CacheKind::VipAliasing { .. }) {
            println!("cachesan-expect kind=StaleRead at=vacmm_minimal::user::process_a");
        }
    }
    let k = set_up(info, omit).unwrap_or_else(|e| fatal(format_args!("set-up: {e}")));
    // SAFETY: no trap has happened yet.
    let k = unsafe { (*KERNEL.0.get()).insert(k) };
    // SAFETY: A's table is current; its code is the image's user text, its
    // stack is mapped, and the frame stays put until the first trap.
    unsafe { vacmm_qemu::user::enter_user(&k.frames[0]) }
}
