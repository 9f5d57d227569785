//! On-target: the MMU really on, through vacmm's tables, on every CPU.
//!
//! One kernel table maps RAM (0–128 MiB) and the devices at VA = PA; it is
//! built and enabled once, by the first case, and the others build on it.
//! User tables share the kernel's entries for 0–16 MiB (image), 64–128 MiB
//! (table frames, test pages) and the devices, and keep 16–32 MiB for their
//! own pages — below 32 MiB, so they fit an FCSE PID window.
//!
//! QEMU models no cache, but the tests do the maintenance real hardware
//! needs (clean one alias, invalidate the other), so they are also right on
//! a board.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::cell::UnsafeCell;

use vacmm::addr::{PhysAddr, VirtAddr, VirtRange};
use vacmm::arch::AnyCpu;
use vacmm::arch::regs::{self, Sctlr};
use vacmm::cache::{CacheGeometry, CacheInfo, CacheMaintenance};
use vacmm::mm::gaps::GapTree;
use vacmm::mm::unmapped::{Layout, MapRequest, UserBounds, get_unmapped_area};
use vacmm::mmu::{
    Access, Arch, Attributes, ContextSwitcher, DescriptorError, Execute, KeyAllocator, KeyOutcome,
    MmuConfig, PageSize, PageTable, TableError, TableMemory, enable_mmu, vivt_aliases, walk,
};
use vacmm_qemu::fault::{
    FaultKind, PERMISSION_PAGE, TRANSLATION_PAGE, TRANSLATION_SECTION, catch_fault, status_code,
};
use vacmm_qemu::harness::TestResult;
use vacmm_qemu::mm::{FramePool, IdentityTables, identity_kernel_table, share_kernel_entries};
use vacmm_qemu::{check, check_eq, println};

const MIB: u32 = 1 << 20;
/// Where user tables put their own pages (16–32 MiB is theirs).
const USER_VA: VirtAddr = VirtAddr(0x0140_0000);
/// A kernel-only page for the permission tests (not identity: 0x3000_0000+;
/// the tests map more up to [`UNMAPPED_VA`]).
const KERNEL_PAGE_VA: VirtAddr = VirtAddr(0x3000_0000);
/// Never mapped.
const UNMAPPED_VA: VirtAddr = VirtAddr(0x3800_0000);
/// ARMv6: an alias of the same frame, above the TTBR0/TTBR1 split.
const HIGH_ALIAS_VA: VirtAddr = VirtAddr(0x9000_0000);
// None of them may be RAM or a device window on the board built for.
const _: () = assert!(
    vacmm_qemu::mm::is_free_va(KERNEL_PAGE_VA.as_u32(), 0x0800_0000 + MIB)
        && vacmm_qemu::mm::is_free_va(HIGH_ALIAS_VA.as_u32(), MIB)
);

struct World {
    mem: IdentityTables<AnyCpu>,
    frames: FramePool,
    kernel: PageTable,
    arch: Arch,
}

/// The tests' one world, set up by the first case that asks for it.
struct Shared(UnsafeCell<Option<World>>);
// SAFETY: single core, and no interrupt handler touches it.
unsafe impl Sync for Shared {}
static WORLD: Shared = Shared(UnsafeCell::new(None));

fn info() -> CacheInfo {
    // QEMU reports 64 KiB caches; keep that (ARM1136: 4 colours, aliasing).
    let info = vacmm::arch::cache_info().expect("QEMU has a CTR");
    let _ = CacheGeometry::new(16 << 10, 4, 32);
    info
}

fn world() -> &'static mut World {
    // SAFETY: see `Shared`; cases run one after another and each takes the
    // reference only for its own duration.
    let slot = unsafe { &mut *WORLD.0.get() };
    slot.get_or_insert_with(|| set_up().unwrap_or_else(|e| panic!("MMU set-up failed: {e}")))
}

fn set_up() -> Result<World, TableError> {
    let info = info();
    let arch = Arch::of(&info);
    let cpu = AnyCpu::new(info).expect("the backend matches the CPU");
    // SAFETY: table frames come from the pool, which the kernel table maps
    // at VA = PA below (and the MMU is off until then).
    let mut mem = unsafe { IdentityTables::new(cpu) };
    let mut frames = FramePool::new();
    let kernel = identity_kernel_table(&mut mem, &mut frames, arch, |_| Attributes::KERNEL_RWX)?;
    let split = if arch == Arch::Armv6 { 1 } else { 0 };
    let config = MmuConfig {
        kernel_table: kernel.l1(),
        ttbr1_split: split,
    };
    // SAFETY: the kernel table maps all RAM and the devices at VA = PA.
    unsafe { enable_mmu(mem.cpu(), config) }.expect("the MMU comes up");
    Ok(World {
        mem,
        frames,
        kernel,
        arch,
    })
}

/// A fresh 4 KiB frame holding `value` in its first word, written through
/// the identity alias and cleaned to memory.
fn frame_holding(world: &mut World, value: u32) -> PhysAddr {
    let frame = world.frames.allocate(4096).expect("pool has frames");
    let ptr = frame.as_u32() as usize as *mut u32;
    // SAFETY: a pool frame nobody else uses, identity-mapped.
    unsafe { ptr.write_volatile(value) };
    clean(world, VirtAddr(frame.as_u32()));
    frame
}

fn clean(world: &mut World, va: VirtAddr) {
    let range = VirtRange::new(va, 4).expect("not at the top of memory");
    world.mem.cpu().clean_dcache_range(range);
}

/// Drops `va`'s line so the next read comes from memory (the line holds
/// only test data of this one word's page).
fn forget(world: &mut World, va: VirtAddr) {
    let range = VirtRange::new(va, 4).expect("not at the top of memory");
    world.mem.cpu().clean_invalidate_dcache_range(range);
}

fn read(va: VirtAddr) -> u32 {
    // SAFETY: the callers map `va` readable first (or catch the abort).
    unsafe { (va.as_u32() as usize as *const u32).read_volatile() }
}

fn write(va: VirtAddr, value: u32) {
    // SAFETY: the callers map `va` writable first (or catch the abort).
    unsafe { (va.as_u32() as usize as *mut u32).write_volatile(value) }
}

/// A load with user permissions (LDRT), from privileged code.
fn user_read(va: VirtAddr) -> u32 {
    let value: u32;
    // SAFETY: a single load; an abort is caught by the caller's catch_fault.
    unsafe {
        core::arch::asm!("ldrt {0}, [{1}]", out(reg) value, in(reg) va.as_u32(), options(nostack));
    }
    value
}

/// A store with user permissions (STRT).
fn user_write(va: VirtAddr, value: u32) {
    // SAFETY: a single store; an abort is caught by the caller's catch_fault.
    unsafe {
        core::arch::asm!("strt {0}, [{1}]", in(reg) value, in(reg) va.as_u32(), options(nostack));
    }
}

fn mmu_is_on_with_caches_and_the_kernel_identity_mapped() -> TestResult {
    let world = world();
    let sctlr = Sctlr::read();
    println!(
        "  SCTLR {:#010x}, TTBR0 {:#010x}",
        sctlr.bits(),
        regs::ttbr0().0
    );
    check!(
        sctlr.contains(Sctlr::M | Sctlr::C | Sctlr::I),
        "SCTLR {sctlr:?}"
    );
    check_eq!(world.arch == Arch::Armv6, sctlr.contains(Sctlr::XP));
    check_eq!(regs::ttbr0().base(), world.kernel.l1());
    // The walker agrees with the table for the code and data running now.
    let here = mmu_is_on_with_caches_and_the_kernel_identity_mapped as *const () as u32;
    let t = world.kernel.translate(&mut world.mem, VirtAddr(here))?;
    check_eq!((t.pa, t.size), (PhysAddr(here), PageSize::Section));
    Ok(())
}

fn one_frame_at_two_addresses_shares_its_data() -> TestResult {
    let world = world();
    let frame = frame_holding(world, 0);
    let (a, b) = (VirtAddr(0x3010_0000), VirtAddr(0x3020_3000));
    for va in [a, b] {
        world.kernel.map_page(
            &mut world.mem,
            &mut world.frames,
            va,
            frame,
            Attributes::KERNEL_DATA,
        )?;
    }
    check_eq!(world.kernel.translate(&mut world.mem, b)?.pa, frame);
    write(a, 0x1234_5678);
    // Real VIVT/aliasing hardware: the store sits in a's line until cleaned,
    // and b may hold an old line of its own.
    clean(world, a);
    forget(world, b);
    check_eq!(read(b), 0x1234_5678);
    write(b, 0x0bad_cafe);
    clean(world, b);
    forget(world, a);
    check_eq!(read(a), 0x0bad_cafe);
    for va in [a, b] {
        let (unmapped, flush) = world.kernel.unmap_page(&mut world.mem, va)?;
        check_eq!(unmapped, frame);
        flush
            .flush(world.mem.cpu())
            .expect("TLB by MVA exists on every CPU");
    }
    Ok(())
}

fn unmapped_addresses_raise_translation_faults() -> TestResult {
    let world = world();
    let fault = catch_fault(FaultKind::DataAbort, || {
        read(UNMAPPED_VA);
    });
    let Some(fault) = fault else {
        return Err(vacmm_qemu::harness::Failure::new(
            alloc::format!("reading unmapped {UNMAPPED_VA} did not abort"),
            file!(),
            line!(),
        ));
    };
    println!("  section: {fault}");
    check_eq!(fault.address as u32, UNMAPPED_VA.as_u32());
    check_eq!(status_code(fault.status), TRANSLATION_SECTION);

    // A hole in a coarse table: a page translation fault.
    let frame = frame_holding(world, 7);
    let mapped = VirtAddr(0x3040_0000);
    let hole = VirtAddr(mapped.as_u32() + 0x1000);
    world.kernel.map_page(
        &mut world.mem,
        &mut world.frames,
        mapped,
        frame,
        Attributes::KERNEL_DATA,
    )?;
    check_eq!(read(mapped), 7);
    let fault = catch_fault(FaultKind::DataAbort, || write(hole, 1));
    check!(
        fault.is_some(),
        "writing the unmapped page {hole} did not abort"
    );
    let fault = fault.unwrap();
    println!("  page:    {fault}");
    check_eq!(fault.address as u32, hole.as_u32());
    check_eq!(status_code(fault.status), TRANSLATION_PAGE);

    // Unmapped again: the TLB entry is flushed and the next access faults.
    let (_, flush) = world.kernel.unmap_page(&mut world.mem, mapped)?;
    flush
        .flush(world.mem.cpu())
        .expect("TLB by MVA exists on every CPU");
    let fault = catch_fault(FaultKind::DataAbort, || {
        read(mapped);
    });
    check!(fault.is_some_and(|f| status_code(f.status) == TRANSLATION_PAGE));
    Ok(())
}

fn permissions_are_enforced() -> TestResult {
    let world = world();
    let frame = frame_holding(world, 0x55);
    let va = KERNEL_PAGE_VA;
    let pages = world.frames.allocate(4096);
    let _ = pages;
    world.kernel.map_page(
        &mut world.mem,
        &mut world.frames,
        va,
        frame,
        Attributes::KERNEL_DATA,
    )?;

    // User-mode access (LDRT/STRT) to a kernel-only page.
    let fault = catch_fault(FaultKind::DataAbort, || {
        user_read(va);
    });
    check!(
        fault.is_some(),
        "a user-mode read of a kernel page did not abort"
    );
    let fault = fault.unwrap();
    println!("  user read of kernel page: {fault}");
    check_eq!(
        (fault.address as u32, status_code(fault.status)),
        (va.as_u32(), PERMISSION_PAGE)
    );

    // User read-only (kernel read/write): user reads, user writes abort.
    let flush = world.kernel.protect_page(
        &mut world.mem,
        va,
        Attributes::USER_DATA.with_access(Access::UserRoKernelRw),
    )?;
    flush
        .flush(world.mem.cpu())
        .expect("TLB by MVA exists on every CPU");
    check_eq!(user_read(va), 0x55);
    let fault = catch_fault(FaultKind::DataAbort, || user_write(va, 1));
    check!(fault.is_some_and(|f| status_code(f.status) == PERMISSION_PAGE));

    // Kernel read-only: the kernel's own write aborts.
    let flush = world.kernel.protect_page(
        &mut world.mem,
        va,
        Attributes::KERNEL_DATA.with_access(Access::KernelRo),
    )?;
    flush
        .flush(world.mem.cpu())
        .expect("TLB by MVA exists on every CPU");
    check_eq!(read(va), 0x55);
    let fault = catch_fault(FaultKind::DataAbort, || write(va, 2));
    check!(
        fault.is_some(),
        "a kernel write to a read-only page did not abort"
    );
    let fault = fault.unwrap();
    println!("  kernel write to read-only page: {fault}");
    check_eq!(status_code(fault.status), PERMISSION_PAGE);
    check_eq!(read(va), 0x55);

    let (_, flush) = world.kernel.unmap_page(&mut world.mem, va)?;
    flush
        .flush(world.mem.cpu())
        .expect("TLB by MVA exists on every CPU");
    Ok(())
}

/// `bx lr`: a function that returns at once.
const BX_LR: u32 = 0xe12f_ff1e;

fn execute_never_pages_prefetch_abort() -> TestResult {
    let world = world();
    let xn = Attributes::KERNEL_RWX.with_execute(Execute::Never);
    if world.arch == Arch::Armv5 {
        // ARMv5 cannot say it: a typed error, and nothing is written.
        let frame = frame_holding(world, BX_LR);
        let r = world.kernel.map_page(
            &mut world.mem,
            &mut world.frames,
            VirtAddr(0x3060_0000),
            frame,
            xn,
        );
        check!(
            matches!(
                r,
                Err(TableError::Descriptor(
                    DescriptorError::NotExpressible { .. }
                ))
            ),
            "{r:?}"
        );
        check!(
            world
                .kernel
                .translate(&mut world.mem, VirtAddr(0x3060_0000))
                .is_err()
        );
        return Ok(());
    }
    let frame = frame_holding(world, BX_LR);
    let (runnable, never) = (VirtAddr(0x3060_0000), VirtAddr(0x3061_0000));
    world.kernel.map_page(
        &mut world.mem,
        &mut world.frames,
        runnable,
        frame,
        Attributes::KERNEL_RWX,
    )?;
    world
        .kernel
        .map_page(&mut world.mem, &mut world.frames, never, frame, xn)?;
    // The instruction was written as data: make it visible to fetches.
    world.mem.cpu().invalidate_icache_all();
    // SAFETY: both addresses map a frame holding `bx lr`.
    let run: extern "C" fn() = unsafe { core::mem::transmute(runnable.as_u32() as usize) };
    // SAFETY: as above.
    let never_run: extern "C" fn() = unsafe { core::mem::transmute(never.as_u32() as usize) };
    check!(
        catch_fault(FaultKind::PrefetchAbort, || run()).is_none(),
        "the executable alias faulted"
    );
    // The bit itself, read back raw by the walker's rules: what the hardware sees.
    let t = walk(
        &mut |pa| world.mem.read_word(pa),
        world.kernel.l1(),
        world.arch,
        never,
    )?;
    check!(
        t.attrs.xn,
        "the XN alias's descriptor has no XN bit: {}",
        t.attrs
    );
    let fault = catch_fault(FaultKind::PrefetchAbort, || never_run());
    if fault.is_none() && qemu_ignores_armv6_xn() {
        println!(
            "  QEMU {:?} does not enforce XN on ARMv6 (descriptor checked above)",
            vacmm_qemu::booted_qemu_version()
        );
        return Ok(());
    }
    check!(fault.is_some(), "executing from an XN page did not abort");
    let fault = fault.unwrap();
    println!("  {fault}");
    check_eq!(fault.pc as u32, never.as_u32());
    check_eq!(status_code(fault.status), PERMISSION_PAGE);
    Ok(())
}

/// QEMU 10.0's ARMv6 short-descriptor walk (`get_phys_addr_v6`) derives
/// permissions through the helper of the ARMv7 rules (`get_S1prot`), which
/// clears XN on CPUs without ARMv7, so an ARM1136/ARM1176 guest executes XN
/// pages (7.2 checked XN itself and aborted). Only there may the XN test
/// accept a fetch that did not abort.
fn qemu_ignores_armv6_xn() -> bool {
    vacmm_qemu::booted_qemu_version().is_some_and(|v| v >= (10, 0))
}

/// A user table sharing the kernel's mappings, with `value`'s frame at `USER_VA`.
fn user_space(world: &mut World, value: u32) -> Result<(PageTable, PhysAddr), TableError> {
    let l1 = world
        .frames
        .allocate(16 << 10)
        .expect("pool has room for a table");
    let mut table = PageTable::new(&mut world.mem, l1, world.arch)?;
    share_kernel_entries(&mut world.mem, &mut table, &world.kernel, &[])?;
    let frame = frame_holding(world, value);
    table.map_page(
        &mut world.mem,
        &mut world.frames,
        USER_VA,
        frame,
        Attributes::USER_DATA,
    )?;
    table.set_fits_fcse_window(true);
    Ok((table, frame))
}

fn asids_keep_address_spaces_apart() -> TestResult {
    let world = world();
    if world.arch == Arch::Armv5 {
        println!("  ARMv5 has no ASIDs (see fcse_pids_keep_address_spaces_apart)");
        return Ok(());
    }
    // The kernel table is TTBR1 above 2 GiB: an alias there is seen from
    // every user table without copying.
    let shared = frame_holding(world, 0xa11);
    world.kernel.map_page(
        &mut world.mem,
        &mut world.frames,
        HIGH_ALIAS_VA,
        shared,
        Attributes::KERNEL_DATA,
    )?;
    let mut switcher = ContextSwitcher::asid(KeyAllocator::asids(), world.kernel.l1());
    let mut spaces = [user_space(world, 0x1111)?.0, user_space(world, 0x2222)?.0];
    let values = [0x1111, 0x2222];
    // Back to the first space: its TLB entries, tagged with its ASID, are
    // still valid and must not have been overwritten by the second's.
    for (round, which) in [0, 1, 0].into_iter().enumerate() {
        let (table, value) = (&mut spaces[which], values[which]);
        // SAFETY: user tables share the kernel's mappings (user_space).
        let report = unsafe { switcher.switch_to(&mut world.mem, table) }?;
        let asid = regs::Armv6Registers::new().unwrap().context_id().asid();
        println!("  round {round}: {report:?}, CONTEXTIDR ASID {asid}");
        check_eq!(Some(asid), report.key);
        check!(!report.cache_flushed && !report.tlb_flushed);
        check_eq!(read(USER_VA), value);
        check_eq!(user_read(USER_VA), value);
        check_eq!(read(HIGH_ALIAS_VA), 0xa11);
    }
    check!(spaces[0].key().value() != spaces[1].key().value());
    // SAFETY: the kernel table maps the kernel.
    unsafe { switcher.switch_to(&mut world.mem, &mut world.kernel) }?;
    Ok(())
}

fn asid_rollover_flushes_once_and_keeps_spaces_apart() -> TestResult {
    let world = world();
    if world.arch == Arch::Armv5 {
        return Ok(());
    }
    // Two ASIDs for three spaces: the third switch rolls over.
    let asids = KeyAllocator::asid_range(1, 2).expect("a valid range");
    let mut switcher = ContextSwitcher::asid(asids, world.kernel.l1());
    let mut spaces = Vec::new();
    for value in [0x100, 0x200, 0x300] {
        spaces.push((user_space(world, value)?.0, value));
    }
    let mut rollovers = 0;
    for step in 0..9 {
        let (table, value) = &mut spaces[step % 3];
        // SAFETY: user tables share the kernel's mappings.
        let report = unsafe { switcher.switch_to(&mut world.mem, table) }?;
        if report.key_outcome == Some(KeyOutcome::RolledOver) {
            rollovers += 1;
            check!(
                report.tlb_flushed,
                "rollover without a TLB flush: {report:?}"
            );
        } else {
            check!(
                !report.tlb_flushed,
                "TLB flushed without a rollover: {report:?}"
            );
        }
        check_eq!(read(USER_VA), *value);
    }
    println!("  {:?}", switcher.counters());
    check!(
        rollovers >= 2,
        "{rollovers} rollovers in 9 switches over 2 ASIDs"
    );
    check_eq!(switcher.counters().rollovers, rollovers);
    check_eq!(switcher.counters().cache_flushes, 0);
    // SAFETY: the kernel table maps the kernel.
    unsafe { switcher.switch_to(&mut world.mem, &mut world.kernel) }?;
    Ok(())
}

fn fcse_pids_keep_address_spaces_apart() -> TestResult {
    let world = world();
    if world.arch == Arch::Armv6 {
        println!("  ARMv6 keeps spaces apart with ASIDs (see above)");
        return Ok(());
    }
    // PIDs 16 and 17: windows at 512 and 544 MiB, which the kernel leaves free.
    let pids = KeyAllocator::fcse_pids(16, 17).expect("a valid range");
    let mut switcher = ContextSwitcher::vivt_fcse(pids);
    let (mut one, _) = user_space(world, 0x1111)?;
    let (mut two, _) = user_space(world, 0x2222)?;
    let (mut three, _) = user_space(world, 0x3333)?;
    let plan: [(&mut PageTable, u32); 3] =
        [(&mut one, 0x1111), (&mut two, 0x2222), (&mut three, 0x3333)];
    let mut reports = Vec::new();
    for (table, value) in plan {
        // SAFETY: user tables share the kernel's mappings.
        let report = unsafe { switcher.switch_to(&mut world.mem, table) }?;
        let pid = regs::fcse_pid().pid();
        println!("  {report:?}, FCSEIDR PID {pid}");
        check_eq!(Some(pid), report.key);
        check_eq!(read(USER_VA), value);
        check_eq!(user_read(USER_VA), value);
        reports.push(report);
    }
    // From the kernel (no PID): flush. Between PID spaces: no cache flush.
    // Third space, two PIDs: recycled, so flushed.
    check!(reports[0].cache_flushed);
    check!(!reports[1].cache_flushed, "{:?}", reports[1]);
    check_eq!(reports[2].key_outcome, Some(KeyOutcome::RolledOver));
    check!(reports[2].cache_flushed);
    // Same VA, different PID windows: a frame both mapped there would sit
    // in two VIVT lines — the coherence layer must treat it as an alias.
    check!(vivt_aliases((&one, USER_VA), (&two, USER_VA)));
    check!(!vivt_aliases((&one, USER_VA), (&one, USER_VA)));
    check_eq!(
        one.translate(&mut world.mem, VirtAddr(16 * 32 * MIB + USER_VA.as_u32()))?
            .pa,
        one.translate(&mut world.mem, USER_VA)?.pa
    );
    // SAFETY: the kernel table maps the kernel.
    unsafe { switcher.switch_to(&mut world.mem, &mut world.kernel) }?;
    check_eq!(regs::fcse_pid().pid(), 0);
    Ok(())
}

/// The geometry each CPU is tested with: ARM1136 with the aliasing 32 KiB
/// cache (2 colours), ARM1176 with the Raspberry Pi's 16 KiB (no aliasing),
/// ARM926 as QEMU reports it (VIVT: no colours at all).
fn placement_cache() -> CacheInfo {
    let info = info();
    match vacmm_qemu::booted_cpu() {
        Some(vacmm_qemu::QemuCpu::Arm1136) => {
            info.with_dcache(CacheGeometry::new(32 << 10, 4, 32).expect("valid geometry"))
        }
        Some(vacmm_qemu::QemuCpu::Arm1176) => {
            info.with_dcache(CacheGeometry::new(16 << 10, 4, 32).expect("valid geometry"))
        }
        _ => info,
    }
}

fn unmapped_areas_map_through_the_tables() -> TestResult {
    let world = world();
    let cache = placement_cache();
    // User space 16–32 MiB (the rest is the kernel's), USER_VA already used.
    let layout = Layout::for_cache(
        &cache,
        UserBounds {
            min_addr: 16 * MIB,
            mmap_base: 32 * MIB,
            task_size: 32 * MIB,
        },
    );
    let mut gaps = GapTree::complement_of(
        [(
            u64::from(USER_VA.as_u32()),
            u64::from(USER_VA.as_u32()) + 0x1000,
        )],
        16 << 20,
        32 << 20,
    )
    .expect("heap has room");
    let (mut table, _) = user_space(world, 0)?;
    let requests = [
        (
            "anonymous, 3 pages",
            MapRequest {
                len: 0x3000,
                ..MapRequest::default()
            },
        ),
        (
            "shared file at offset 0x1000",
            MapRequest {
                len: 0x2000,
                shared: true,
                file_offset: Some(0x1000),
                ..MapRequest::default()
            },
        ),
        (
            "private file at offset 0x6000",
            MapRequest {
                len: 0x1000,
                file_offset: Some(0x6000),
                ..MapRequest::default()
            },
        ),
        (
            "shared anonymous",
            MapRequest {
                len: 0x1000,
                shared: true,
                ..MapRequest::default()
            },
        ),
    ];
    println!(
        "  {} ({} colours, span {:#x})",
        cache.kind,
        cache.colours(),
        layout.colour_span
    );
    let mut placed = Vec::new();
    for (what, req) in requests {
        let va = get_unmapped_area(&gaps, &layout, &req).map_err(|e| {
            vacmm_qemu::harness::Failure::new(alloc::format!("{what}: {e}"), file!(), line!())
        })?;
        let len = req.len;
        check!(
            gaps.take(u64::from(va.as_u32()), u64::from(va.as_u32() + len))
                .unwrap(),
            "{what}: {va} not free"
        );
        let offset = req.file_offset.unwrap_or(0) as u32;
        println!(
            "  {what}: {va} (colour {}, offset colour {})",
            cache.colour_of(va),
            cache.colour_of(VirtAddr(offset))
        );
        if cache.colours() > 1 && (req.shared || req.file_offset.is_some()) {
            check_eq!(cache.colour_of(va), cache.colour_of(VirtAddr(offset)));
        }
        for page in (0..len).step_by(4096) {
            let frame = frame_holding(world, va.as_u32() + page);
            table.map_page(
                &mut world.mem,
                &mut world.frames,
                VirtAddr(va.as_u32() + page),
                frame,
                Attributes::USER_DATA,
            )?;
        }
        placed.push((va, len));
    }
    // Through the real tables: each page holds its own address.
    let mut switcher = match world.arch {
        Arch::Armv5 => ContextSwitcher::vivt_flush(),
        Arch::Armv6 => ContextSwitcher::asid(KeyAllocator::asids(), world.kernel.l1()),
    };
    // SAFETY: the user table shares the kernel's mappings.
    unsafe { switcher.switch_to(&mut world.mem, &mut table) }?;
    for (va, len) in &placed {
        for page in (0..*len).step_by(4096) {
            check_eq!(user_read(VirtAddr(va.as_u32() + page)), va.as_u32() + page);
        }
    }
    // SAFETY: the kernel table maps the kernel.
    unsafe { switcher.switch_to(&mut world.mem, &mut world.kernel) }?;
    Ok(())
}

vacmm_qemu::test_main!(
    mmu_is_on_with_caches_and_the_kernel_identity_mapped,
    one_frame_at_two_addresses_shares_its_data,
    unmapped_addresses_raise_translation_faults,
    permissions_are_enforced,
    execute_never_pages_prefetch_abort,
    asids_keep_address_spaces_apart,
    asid_rollover_flushes_once_and_keeps_spaces_apart,
    fcse_pids_keep_address_spaces_apart,
    unmapped_areas_map_through_the_tables,
);
