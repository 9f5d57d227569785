//! On-target negative controls for the cache sanitizer (`qemu/cachesan`):
//! each case makes one classic virtually-indexed-cache mistake on purpose.
//!
//! On plain QEMU (no cache) every case passes: the mistakes are invisible.
//! Under `cargo xtask sanitize` each must be reported with the right kind
//! at the right instruction. A case says what it expects on the console —
//!
//! ```text
//!   cachesan-expect kind=StaleRead pc=0x00002a40 (cachesan_user_reads_shared+0x0)
//!   cachesan-expect kind=StaleFetch pc=0x04012000
//! ```
//!
//! (the mistake itself, and where it shows later: a lost write is also a
//! stale read once the CPU reads the variable back). Every expected report
//! must appear and nothing else may: the cases are otherwise clean.
//!
//! — and only where the cache it runs with can show the mistake: the alias
//! cases need a VIVT cache or an aliasing VIPT one (not the ARM1176's 16 KiB
//! part), the FCSE case the ARM926 (VIVT with FCSE PIDs), the table-walk,
//! DMA and I-cache cases apply everywhere. The
//! instructions that show the mistakes are in naked functions (and the
//! I-cache case's code in a frame), so every expectation is an exact PC.
//!
//! ```text
//!   RAM's 128 MiB identity sections, write-back (kernel aliases)
//!   24 MiB        a word of "kernel data" below the FCSE's 32 MiB (ARM926)
//!   0x2000_0000,  FCSE PID 16's and 17's windows: the low 32 MiB again
//!   0x2200_0000
//!   0x3000_0000   "user" pages: second mappings of pool frames, placed at
//!                 another colour than the frame's kernel alias
//!   0x3100_0000   a MiB whose coarse table the PTE case writes into
//! ```
//! The user mappings are read from kernel mode: the cache sees two virtual
//! addresses of one frame either way, which is all these mistakes need.
#![no_std]
#![no_main]

use core::arch::naked_asm;
use core::cell::UnsafeCell;

use vacmm::addr::{PhysAddr, VirtAddr};
use vacmm::arch::AnyCpu;
use vacmm::arch::regs::{FcsePid, set_fcse_pid};
use vacmm::cache::{CacheGeometry, CacheInfo, CacheKind, CacheMaintenance};
use vacmm::mmu::{
    Arch, Attributes, L1Descriptor, MmuConfig, PageTable, TableError, TableMemory, enable_mmu,
};
use vacmm_qemu::harness::TestResult;
use vacmm_qemu::mm::{FramePool, IdentityTables, identity_kernel_table};
use vacmm_qemu::{QemuCpu, booted_cpu, check, check_eq, println};

const MIB: u32 = 1 << 20;
const PAGE: u32 = 4096;
const USER_BASE: u32 = 0x3000_0000;
const PTE_MIB: u32 = 0x3100_0000;
const _: () = assert!(
    vacmm_qemu::mm::is_free_va(USER_BASE, 2 * MIB) && vacmm_qemu::mm::is_free_va(PTE_MIB, MIB)
);
/// Unused RAM below 32 MiB (the image's code ends below 16 MiB, its data
/// starts at 32 MiB): where the FCSE case keeps its "kernel data".
const LOW_DATA: u32 = 24 * MIB;
/// The two PIDs the FCSE case switches between (windows at 512, 544 MiB).
const FCSE_PIDS: [u8; 2] = [16, 17];

struct World {
    mem: IdentityTables<AnyCpu>,
    frames: FramePool,
    kernel: PageTable,
    info: CacheInfo,
    /// Next free "user" page (each case takes its own 64 KiB).
    next_user: u32,
}

struct Shared(UnsafeCell<Option<World>>);
// SAFETY: single core, and no interrupt handler touches it.
unsafe impl Sync for Shared {}
static WORLD: Shared = Shared(UnsafeCell::new(None));

fn world() -> &'static mut World {
    // SAFETY: see `Shared`; cases run one after another.
    let slot = unsafe { &mut *WORLD.0.get() };
    slot.get_or_insert_with(|| set_up().unwrap_or_else(|e| panic!("set-up failed: {e}")))
}

/// The geometry the sanitizer's presets model: ARM926 16 KiB VIVT (QEMU's
/// CTR), ARM1136 64 KiB VIPT (QEMU's CTR: 4 colours), ARM1176 the
/// Raspberry Pi's 16 KiB (no aliasing) — as tests/coherence.rs uses.
fn cache_info() -> CacheInfo {
    let detected = vacmm::arch::cache_info().expect("QEMU has a CTR");
    match booted_cpu() {
        Some(QemuCpu::Arm1176) => {
            detected.with_dcache(CacheGeometry::new(16 << 10, 4, 32).expect("valid geometry"))
        }
        _ => detected,
    }
}

fn set_up() -> Result<World, TableError> {
    let info = cache_info();
    let arch = Arch::of(&info);
    let cpu = AnyCpu::new(info).expect("the backend matches the CPU");
    // SAFETY: table frames come from the pool, which the kernel table maps
    // at VA = PA below (and the MMU is off until then).
    let mut mem = unsafe { IdentityTables::new(cpu) };
    let mut frames = FramePool::new();
    let kernel = identity_kernel_table(&mut mem, &mut frames, arch, |_| Attributes::KERNEL_RWX)?;
    let config = MmuConfig {
        kernel_table: kernel.l1(),
        ttbr1_split: 0,
    };
    // SAFETY: the kernel table maps all RAM and the devices at VA = PA.
    unsafe { enable_mmu(mem.cpu(), config) }.expect("the MMU comes up");
    Ok(World {
        mem,
        frames,
        kernel,
        info,
        next_user: USER_BASE,
    })
}

impl World {
    /// Whether two virtual addresses of one frame can be two cache lines here.
    fn aliases(&self) -> bool {
        matches!(
            self.info.kind,
            CacheKind::Vivt | CacheKind::VipAliasing { .. }
        )
    }

    /// A fresh frame and a second, "user" mapping of it at another colour
    /// than its identity (kernel) alias.
    fn shared_frame(&mut self) -> Result<(u32, u32), TableError> {
        let frame = self.frames.allocate(PAGE).expect("pool has frames");
        let colours = self.info.colours().max(1) as u32;
        let colour = ((frame.as_u32() / PAGE) + 1) % colours;
        let user = self.next_user + colour * PAGE;
        self.next_user += 64 << 10;
        self.kernel.map_page(
            &mut self.mem,
            &mut self.frames,
            VirtAddr(user),
            frame,
            Attributes::USER_DATA,
        )?;
        Ok((frame.as_u32(), user))
    }

    /// Puts the caches back to a known state, so one case's mistake does
    /// not leak into the next.
    fn settle(&mut self) {
        let cpu = self.mem.cpu();
        cpu.clean_invalidate_dcache_all();
        cpu.invalidate_icache_all();
        cpu.drain_write_buffer();
        cpu.invalidate_tlb_all();
    }
}

/// Announces the report the sanitizer must make: `kind` at the
/// instruction `offset` bytes into `function` (one of the naked functions
/// below), named for the reader.
fn expect_pc(kind: &str, function: *const (), name: &str, offset: usize) {
    println!(
        "cachesan-expect kind={kind} pc={:#010x} ({name}+{offset:#x})",
        function as usize + offset
    );
}

fn load(va: u32) -> u32 {
    // SAFETY: callers pass mapped, word-aligned addresses of test frames.
    unsafe { (va as usize as *const u32).read_volatile() }
}

fn store(va: u32, value: u32) {
    // SAFETY: as for `load`.
    unsafe { (va as usize as *mut u32).write_volatile(value) }
}

// ---- the instructions the sanitizer must name ------------------------------
//
// Naked functions, so the instruction that makes each mistake visible sits at
// a known offset from the function's address and the expectation can name
// its exact PC (`expect_pc`), whatever the compiler does elsewhere.

/// A user's read of a buffer shared with the kernel (`ldr` at +0).
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn cachesan_user_reads_shared(va: u32) -> u32 {
    naked_asm!("ldr r0, [r0]", "bx lr")
}

/// A user's read of a page-cache page (`ldr` at +0), its value marked so
/// the cases can tell the functions' results apart.
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn cachesan_user_reads_page_cache(va: u32) -> u32 {
    naked_asm!("ldr r0, [r0]", "eor r0, r0, #0x5a000000", "bx lr")
}

/// fork's page copy, through the kernel alias of parent and child frames
/// (`ldr` of each word at +4).
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn cachesan_fork_copies_page(from: u32, to: u32) {
    naked_asm!(
        "mov r3, #4096",
        "1: ldr r2, [r0], #4",
        "str r2, [r1], #4",
        "subs r3, r3, #4",
        "bne 1b",
        "bx lr",
    )
}

/// A receive-DMA map that plainly invalidates every line of
/// `[start, start + len)`, `len` ≥ 1, including a first line it shares with
/// other data (`mcr … c7, c6, 1` at +8).
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn cachesan_dma_map_invalidates(start: u32, len: u32) {
    naked_asm!(
        "add r1, r0, r1",
        "bic r0, r0, #31",
        "1: mcr p15, 0, r0, c7, c6, 1",
        "add r0, r0, #32",
        "cmp r0, r1",
        "blo 1b",
        "bx lr",
    )
}

/// The CPU reading its variable back after the DMA map, where the lost
/// write shows (`ldr` at +0).
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn cachesan_cpu_reads_variable(va: u32) -> u32 {
    naked_asm!("ldr r0, [r0]", "orr r0, r0, #0x80000000", "bx lr")
}

/// The first access through a new mapping: its table walk (`ldr` at +0).
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn cachesan_touches_new_mapping(va: u32) -> u32 {
    naked_asm!("ldr r0, [r0]", "add r0, r0, #1", "bx lr")
}

/// Kernel code reading its data after a switch to the next FCSE PID
/// (`ldr` at +0).
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn cachesan_reads_under_next_pid(va: u32) -> u32 {
    naked_asm!("ldr r0, [r0]", "bx lr")
}

// ---- the cases ---------------------------------------------------------------

/// Seed 000: the kernel writes a buffer shared with a user mapping and does
/// no maintenance; the user's line, filled before, is stale (VIVT, or VIPT
/// at another colour).
fn kernel_writes_shared_buffer_without_maintenance() -> TestResult {
    let w = world();
    let (kernel, user) = w.shared_frame()?;
    check_eq!(cachesan_user_reads_shared(user), 0);
    store(kernel, 0x600d_f00d);
    // QEMU has no cache: the user sees the write there, not on hardware.
    check_eq!(cachesan_user_reads_shared(user), 0x600d_f00d);
    if w.aliases() {
        let f = cachesan_user_reads_shared as *const ();
        expect_pc("StaleRead", f, "cachesan_user_reads_shared", 0);
    }
    w.settle();
    Ok(())
}

/// A kernel write to a page a user maps (page cache, `write()`), with no
/// `flush_dcache_page`: the data sits dirty in the kernel alias's line and
/// the user's first read fetches memory.
fn kernel_writes_user_page_without_flush_dcache_page() -> TestResult {
    let w = world();
    let (kernel, user) = w.shared_frame()?;
    // Read first: these caches allocate on reads only.
    check_eq!(load(kernel), 0);
    store(kernel, 0x1234_5678);
    check_eq!(
        cachesan_user_reads_page_cache(user),
        0x1234_5678 ^ 0x5a00_0000
    );
    if w.aliases() {
        let f = cachesan_user_reads_page_cache as *const ();
        expect_pc("StaleRead", f, "cachesan_user_reads_page_cache", 0);
    }
    w.settle();
    Ok(())
}

/// fork without flushing the parent: the parent's data is dirty in its
/// user lines while the kernel copies the page through its own alias.
fn fork_without_parent_flush() -> TestResult {
    let w = world();
    let (kernel, parent) = w.shared_frame()?;
    let child = w.frames.allocate(PAGE).expect("pool has frames").as_u32();
    check_eq!(load(parent + 64), 0);
    store(parent + 64, 0xfeed_beef);
    cachesan_fork_copies_page(kernel, child);
    check_eq!(load(child + 64), 0xfeed_beef);
    if w.aliases() {
        let f = cachesan_fork_copies_page as *const ();
        expect_pc("StaleRead", f, "cachesan_fork_copies_page", 4);
    }
    w.settle();
    Ok(())
}

/// Seed 003: a receive buffer that starts inside a cache line holding a CPU
/// variable, mapped for the device by plainly invalidating its lines: the
/// variable's dirty line is dropped.
fn partial_line_dma_buffer_plainly_invalidated() -> TestResult {
    let w = world();
    let frame = w.frames.allocate(PAGE).expect("pool has frames").as_u32();
    let (variable, buffer) = (frame, frame + 16);
    check_eq!(load(variable), 0);
    store(variable, 0xc0de);
    cachesan_dma_map_invalidates(buffer, 64);
    check_eq!(cachesan_cpu_reads_variable(variable), 0x8000_c0de);
    let f = cachesan_dma_map_invalidates as *const ();
    expect_pc("DirtyLineDiscarded", f, "cachesan_dma_map_invalidates", 8);
    let f = cachesan_cpu_reads_variable as *const ();
    expect_pc("StaleRead", f, "cachesan_cpu_reads_variable", 0);
    w.settle();
    Ok(())
}

/// A page-table entry written through the cache and used without being
/// cleaned: the table walker reads memory, which still holds the old
/// (fault) entry.
fn pte_written_without_clean_before_use() -> TestResult {
    let w = world();
    let frame = w.frames.allocate(PAGE).expect("pool has frames");
    store(frame.as_u32(), 0x7e57);
    w.mem.cpu().clean_dcache_all();
    // A properly made mapping: it also gives the MiB its coarse table.
    w.kernel.map_page(
        &mut w.mem,
        &mut w.frames,
        VirtAddr(PTE_MIB),
        frame,
        Attributes::KERNEL_DATA,
    )?;
    let arch = w.kernel.arch();
    let l1 = w
        .mem
        .read_word(PhysAddr(w.kernel.l1().as_u32() + (PTE_MIB >> 20) * 4))?;
    let L1Descriptor::Coarse { table, .. } = L1Descriptor::decode(l1, arch)? else {
        check!(false, "the MiB has no coarse table: {l1:#010x}");
        unreachable!();
    };
    let (slot_a, slot_b) = (table.as_u32(), table.as_u32() + 4);
    // The next page's entry: the same frame, written raw through the cached
    // identity alias — no clean, no drain.
    let entry = load(slot_a);
    check_eq!(load(slot_b), 0);
    store(slot_b, entry);
    check_eq!(cachesan_touches_new_mapping(PTE_MIB + PAGE), 0x7e58);
    let f = cachesan_touches_new_mapping as *const ();
    expect_pc("StaleTableWalk", f, "cachesan_touches_new_mapping", 0);
    w.settle();
    Ok(())
}

/// Code written through the D-cache and run with neither a clean nor an
/// I-cache invalidate: the I-cache fills from memory.
fn code_written_and_run_without_icache_maintenance() -> TestResult {
    let w = world();
    let frame = w.frames.allocate(PAGE).expect("pool has frames").as_u32();
    check_eq!(load(frame), 0);
    check_eq!(load(frame + 4), 0);
    store(frame, 0xe3a0_002a); // mov r0, #42
    store(frame + 4, 0xe12f_ff1e); // bx lr
    // SAFETY: the frame holds the two instructions above (identity-mapped,
    // executable section); it is the mistake under test that they were not
    // made visible to fetches first (QEMU does not need it).
    let code: extern "C" fn() -> u32 = unsafe { core::mem::transmute(frame as usize) };
    check_eq!(code(), 42);
    // Both instructions are stale (one line, filled from memory).
    for pc in [frame, frame + 4] {
        println!("cachesan-expect kind=StaleFetch pc={pc:#010x}");
    }
    w.settle();
    Ok(())
}

/// Kernel data below 32 MiB written under one FCSE PID and read under the
/// next, with no flush between — what vacmm's own test kernel did while its
/// stacks lay below 32 MiB, until cachesan found it. The FCSE moves the
/// address into each PID's window, and the VIVT cache is indexed and tagged
/// by the moved address: the second PID's read misses the first one's
/// dirty line and gets memory. ARM926 only (VIPT caches tag physically,
/// and vacmm keys ARMv6 spaces with ASIDs).
fn kernel_data_below_32_mib_across_fcse_pids() -> TestResult {
    let w = world();
    if w.info.kind != CacheKind::Vivt {
        println!("  FCSE on a VIVT cache: ARM926 only");
        return Ok(());
    }
    let pids = FCSE_PIDS.map(|p| FcsePid::new(p).expect("a valid PID"));
    // Each PID sees the low 32 MiB through its window: this code's fetches
    // and the data word move there too.
    for pid in pids {
        for mib in 0..32 {
            let at = mib * MIB;
            w.kernel.map_section(
                &mut w.mem,
                VirtAddr(pid.relocate(at)),
                PhysAddr(at),
                Attributes::KERNEL_RWX,
            )?;
        }
    }
    // Everything else this case touches (stack, `w`) lies above 32 MiB.
    // SAFETY: both windows map the low 32 MiB exactly as the identity map.
    let (before, seen) = unsafe {
        set_fcse_pid(pids[0]);
        let before = load(LOW_DATA); // fills the line (read-allocate)
        store(LOW_DATA, before ^ 0xf00d);
        set_fcse_pid(pids[1]);
        let seen = cachesan_reads_under_next_pid(LOW_DATA);
        set_fcse_pid(FcsePid::NONE);
        (before, seen)
    };
    // QEMU has no cache: the read sees the write, a real ARM926 would not.
    check_eq!(seen, before ^ 0xf00d);
    let f = cachesan_reads_under_next_pid as *const ();
    expect_pc("StaleRead", f, "cachesan_reads_under_next_pid", 0);
    w.settle();
    Ok(())
}

vacmm_qemu::test_main!(
    kernel_writes_shared_buffer_without_maintenance,
    kernel_writes_user_page_without_flush_dcache_page,
    fork_without_parent_flush,
    partial_line_dma_buffer_plainly_invalidated,
    pte_written_without_clean_before_use,
    code_written_and_run_without_icache_maintenance,
    kernel_data_below_32_mib_across_fcse_pids,
);
