//! On-target: the coherence engine with the real CP15 backend, end to end.
//!
//! The scenarios of `src/coherence/tests.rs`, run on QEMU instead of the
//! cache model: user address spaces over real page tables, user loads and
//! stores (LDRT/STRT) whose aborts are resolved by `Engine::fault`, kernel
//! writes through the identity map followed by `flush_dcache_page`, and the
//! memory-type bits `make_coherent` writes, read back from the tables.
//!
//! QEMU models no cache, so the data checks cannot catch missing
//! maintenance here (the model does that); what this test proves is that
//! every operation the engine issues runs on the real backend of each CPU
//! without faulting, and that the descriptors it leaves are right.
//!
//! ```text
//!   RAM +0–16 MiB     image code and constants     kernel entries shared by
//!   RAM +32–64 MiB    .data, .bss, heap, stacks    every user table (the pool
//!   RAM +64–128 MiB   FramePool: tables, and a     is also the kernel alias of
//!                     4 MiB chunk of user frames   every user frame)
//!   board's windows   devices (UART, timer)
//!   0x3f00_0000       kernel windows
//!   16–32 MiB         user VMAs                    each space's own tables
//! ```
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use vacmm::addr::{PhysAddr, VirtAddr, VirtRange};
use vacmm::arch::AnyCpu;
use vacmm::cache::{CacheGeometry, CacheInfo, CacheKind, CacheMaintenance, CpuPart};
use vacmm::coherence::dma::{Dma, DmaBuffer, DmaDirection};
use vacmm::coherence::shared::SharingMode;
use vacmm::coherence::{CoherenceError, Engine, ExitRefused, KernelWindows, KmapAccess};
use vacmm::mm::frames::{PageFlags, SpaceId};
use vacmm::mm::object::{ObjectId, ObjectKind};
use vacmm::mm::space::{
    AddressSpace, FaultAccess, FaultOutcome, MemorySystem, MmapArgs, SpaceConfig, SpaceError,
};
use vacmm::mm::unmapped::{Direction, Layout};
use vacmm::mmu::{
    Access, Arch, Attributes, ContextSwitcher, KeyAllocator, MemoryType, MmuConfig, PageSize,
    PageTable, TableMemory, enable_mmu, walk,
};
use vacmm_qemu::fault::{
    Fault, FaultKind, PERMISSION_PAGE, TRANSLATION_PAGE, TRANSLATION_SECTION, catch_fault,
    status_code,
};
use vacmm_qemu::harness::{Failure, TestResult};
use vacmm_qemu::mm::{
    FramePool, IdentityTables, POOL_END, POOL_START, identity_kernel_table, share_kernel_entries,
};
use vacmm_qemu::{check, check_eq, println};

const MIB: u32 = 1 << 20;
const PAGE: u32 = 4096;
/// User frames: one contiguous chunk of the pool, aligned far beyond any
/// colour span (at most 64 colours × 4 KiB), so frame colours follow
/// physical addresses.
const USER_FRAMES_BYTES: u32 = 4 * MIB;
/// User VMAs live in 16–32 MiB: between the image's code and its data, so no
/// user mapping collides with an entry shared from the kernel table.
const USER_MIN: u32 = 16 * MIB;
const USER_TOP: u32 = 32 * MIB;
/// The engine's kernel windows: one MiB the kernel uses for nothing else
/// (its coarse table is shared by every user table, so a window mapped
/// while a user space runs is visible there).
const WINDOWS: u32 = 0x3f00_0000;
const _: () = assert!(vacmm_qemu::mm::is_free_va(WINDOWS, MIB));
/// What every user frame holds before the engine hands it out, so that a
/// zero-fill the engine forgot reads as poison rather than QEMU's zeroes.
const POISON: u8 = 0xa5;

type System = MemorySystem<IdentityTables<AnyCpu>, FramePool>;

struct World {
    sys: System,
    kernel: PageTable,
    arch: Arch,
    /// The cache facts everything runs with (engine, backend, allocator).
    info: CacheInfo,
    switcher: ContextSwitcher,
    /// What each fault resolved to since the case's last look.
    faults: Vec<FaultOutcome>,
    /// The kernel windows, until the case that uses them takes them.
    windows: Option<KernelWindows>,
}

/// The tests' one world, set up by the first case that asks for it.
struct Shared(UnsafeCell<Option<World>>);
// SAFETY: single core, and no interrupt handler touches it.
unsafe impl Sync for Shared {}
static WORLD: Shared = Shared(UnsafeCell::new(None));

fn world() -> &'static mut World {
    // SAFETY: see `Shared`; cases run one after another and each takes the
    // reference only for its own duration.
    let slot = unsafe { &mut *WORLD.0.get() };
    slot.get_or_insert_with(|| set_up().unwrap_or_else(|e| panic!("set-up failed: {e}")))
}

/// The geometry each CPU runs with. QEMU's CTR claims 64 KiB 4-way caches
/// for both ARMv6 cores: the ARM1136 keeps an aliasing geometry (forced to
/// 64 KiB if the CTR ever says otherwise), the ARM1176 gets the Raspberry
/// Pi's 16 KiB 4-way part (4 KiB ways: no aliasing), the ARM926 stays VIVT.
fn cache_info() -> (CacheInfo, CacheInfo) {
    let detected = vacmm::arch::cache_info().expect("QEMU has a CTR");
    let used = match detected.midr.part() {
        CpuPart::Arm1136R0 | CpuPart::Arm1136R1
            if !matches!(detected.kind, CacheKind::VipAliasing { .. }) =>
        {
            detected.with_dcache(CacheGeometry::new(64 << 10, 4, 32).expect("valid geometry"))
        }
        CpuPart::Arm1176 => {
            detected.with_dcache(CacheGeometry::new(16 << 10, 4, 32).expect("valid geometry"))
        }
        _ => detected,
    };
    (detected, used)
}

fn describe(info: &CacheInfo) -> alloc::string::String {
    let d = info.dcache;
    format!(
        "{} KiB {}-way {}-byte lines: {}",
        d.size_bytes >> 10,
        d.ways,
        d.line_bytes,
        info.kind
    )
}

fn set_up() -> Result<World, Failure> {
    let (detected, info) = cache_info();
    println!("  D-cache detected: {}", describe(&detected));
    println!("  D-cache used:     {}", describe(&info));
    let arch = Arch::of(&info);
    let cpu = AnyCpu::new(info).expect("the backend matches the CPU");
    // SAFETY: table frames and user frames come from the pool, which the
    // kernel table maps at VA = PA below (and the MMU is off until then);
    // the engine only names frames of the memory system built below.
    let mut mem = unsafe { IdentityTables::new(cpu) };
    let mut pool = FramePool::new();
    let mut kernel = identity_kernel_table(&mut mem, &mut pool, arch, |_| Attributes::KERNEL_RWX)?;
    let config = MmuConfig {
        kernel_table: kernel.l1(),
        ttbr1_split: if arch == Arch::Armv6 { 1 } else { 0 },
    };
    // SAFETY: the kernel table maps all RAM and the devices at VA = PA.
    unsafe { enable_mmu(mem.cpu(), config) }.expect("the MMU comes up");

    let user = pool
        .allocate(USER_FRAMES_BYTES)
        .expect("pool has room for the user frames");
    check!(
        user.as_u32().is_multiple_of(info.colour_alignment() as u32),
        "user frames at {user} are not colour-span aligned"
    );
    // SAFETY: the chunk was just carved from the identity-mapped pool and
    // nothing else uses it.
    unsafe { (user.as_u32() as usize as *mut u8).write_bytes(POISON, USER_FRAMES_BYTES as usize) };
    mem.cpu().clean_dcache_all();
    mem.cpu().drain_write_buffer();
    let mut sys = MemorySystem::new(mem, pool, user, USER_FRAMES_BYTES / PAGE, info.colours())?;
    // Before any user table exists, so every one shares the windows' entry.
    let windows = KernelWindows::new(
        &mut sys.mem,
        &mut sys.table_frames,
        &mut kernel,
        VirtAddr(WINDOWS),
        &info,
    )?;
    let switcher = match arch {
        Arch::Armv5 => ContextSwitcher::vivt_flush(),
        Arch::Armv6 => ContextSwitcher::asid(KeyAllocator::asids(), kernel.l1()),
    };
    Ok(World {
        sys,
        kernel,
        arch,
        info,
        switcher,
        faults: Vec::new(),
        windows: Some(windows),
    })
}

impl World {
    /// A fresh engine (so each case's counters are its own) over the one
    /// memory system; the kernel's linear map is the identity.
    fn engine(&self) -> Result<Engine, Failure> {
        Ok(Engine::new(self.info, 0, self.switcher.policy())?)
    }

    /// The colour span a kernel would use: shared and file mappings land
    /// colour-matched with their file offset.
    fn colour_span(&self) -> u32 {
        self.info.colour_alignment() as u32
    }

    /// A fresh user table sharing the kernel's entries (tests/mmu.rs does
    /// the same).
    fn new_table(&mut self) -> Result<PageTable, Failure> {
        let l1 = self
            .sys
            .table_frames
            .allocate(16 << 10)
            .expect("pool has room for a user table");
        let mut table = PageTable::new(&mut self.sys.mem, l1, self.arch)?;
        // The board's kernel entries (image, pool, devices) and the windows.
        let windows = VirtRange::new(VirtAddr(WINDOWS), u64::from(MIB)).expect("in range");
        share_kernel_entries(&mut self.sys.mem, &mut table, &self.kernel, &[windows])?;
        Ok(table)
    }

    /// A user address space over a fresh table, with VMAs in 16–32 MiB
    /// placed with `colour_span`, built (and its configuration checked)
    /// by `engine`.
    fn new_space(&mut self, engine: &Engine, colour_span: u32) -> Result<AddressSpace, Failure> {
        let table = self.new_table()?;
        let config = SpaceConfig {
            layout: Layout {
                min_addr: USER_MIN,
                mmap_base: USER_TOP,
                task_size: USER_TOP,
                colour_span,
                direction: Direction::TopDown,
            },
            stack_guard_gap: 0,
            max_mappings: SpaceConfig::DEFAULT_MAX_MAPPINGS,
        };
        Ok(engine.create_space(&mut self.sys, config, table)?)
    }

    /// Runs `space` through the engine's context switch (the
    /// ContextSwitcher: a full cache flush on ARMv5, an ASID on ARMv6).
    fn enter(&mut self, engine: &mut Engine, space: &mut AddressSpace) -> TestResult {
        // SAFETY: user tables share the kernel's entries for the image,
        // heap, stacks, the pool and the devices (new_table).
        let report = unsafe { engine.switch_to(&mut self.switcher, &mut self.sys, space) }?;
        if !report.already_current {
            println!("  {} running: {report:?}", space.id());
        }
        Ok(())
    }

    /// Switches to the kernel's own table (no user space runs).
    fn enter_kernel(&mut self, engine: &mut Engine) -> TestResult {
        // SAFETY: the kernel table maps the kernel.
        let report = unsafe { self.switcher.switch_to(&mut self.sys.mem, &mut self.kernel) }?;
        engine.set_current(SpaceId::KERNEL, report.cache_flushed);
        Ok(())
    }

    /// Ends `space` as a kernel's exit does: switches away from it (its
    /// table must not be in use when it is freed), then `Engine::exit`
    /// drops its lines and frees its frames and tables. The L1 table's
    /// 16 KiB stay allocated: the pool only takes 4 KiB frames back.
    fn retire(&mut self, engine: &mut Engine, space: AddressSpace) -> TestResult {
        self.enter_kernel(engine)?;
        engine
            .exit(&mut self.sys, space)
            .map_err(|refused| refused.error)?;
        Ok(())
    }

    /// A file of `pages` pages whose page cache the kernel fills (as a read
    /// from disk would) with `file_word`, through its identity alias, each
    /// page in the colour of its file offset.
    fn file(
        &mut self,
        engine: &mut Engine,
        pages: u32,
    ) -> Result<(ObjectId, Vec<PhysAddr>), Failure> {
        let file = self.sys.objects.create(ObjectKind::File, pages)?;
        let colours = self.sys.allocator.colours();
        let mut frames = Vec::new();
        for page in 0..pages {
            let frame = self.sys.allocator.allocate_colour(page % colours)?;
            self.sys.objects.insert_page(file, page, frame)?;
            fill_page(engine.kernel_va(frame), |offset| file_word(page, offset));
            engine.flush_dcache_page(&mut self.sys, frame)?;
            frames.push(frame);
        }
        Ok((file, frames))
    }

    /// The fault outcomes since the last call.
    fn take_faults(&mut self) -> Vec<FaultOutcome> {
        core::mem::take(&mut self.faults)
    }
}

/// What file page `page` holds at byte `offset`.
fn file_word(page: u32, offset: u32) -> u32 {
    0xf11e_0000 | (page << 12) | offset
}

/// A kernel store through the identity map.
fn kernel_store(va: VirtAddr, value: u32) {
    assert!(
        (POOL_START..POOL_END).contains(&va.as_u32()),
        "kernel stores stay in the pool"
    );
    // SAFETY: an aligned word of a pool frame the test's memory system
    // owns, identity-mapped by the kernel table (and every user table).
    unsafe { (va.as_u32() as usize as *mut u32).write_volatile(value) }
}

/// A kernel load through the identity map.
fn kernel_load(va: VirtAddr) -> u32 {
    assert!(
        (POOL_START..POOL_END).contains(&va.as_u32()),
        "kernel loads stay in the pool"
    );
    // SAFETY: as kernel_store.
    unsafe { (va.as_u32() as usize as *const u32).read_volatile() }
}

/// Writes `word(offset)` over the page at kernel address `kva`.
fn fill_page(kva: VirtAddr, word: impl Fn(u32) -> u32) {
    for offset in (0..PAGE).step_by(4) {
        kernel_store(VirtAddr(kva.as_u32() + offset), word(offset));
    }
}

/// A load with user permissions (LDRT), from privileged code.
fn ldrt(va: u32) -> u32 {
    let value: u32;
    // SAFETY: a single load; an abort is caught by the caller's catch_fault.
    unsafe {
        core::arch::asm!("ldrt {0}, [{1}]", out(reg) value, in(reg) va, options(nostack));
    }
    value
}

/// A store with user permissions (STRT).
fn strt(va: u32, value: u32) {
    // SAFETY: a single store; an abort is caught by the caller's catch_fault.
    unsafe {
        core::arch::asm!("strt {0}, [{1}]", in(reg) value, in(reg) va, options(nostack));
    }
}

/// What a kernel's abort handler does with a user abort: checks it is a
/// translation or page-permission fault at `va`, and lets the engine
/// resolve it.
fn resolve(
    w: &mut World,
    engine: &mut Engine,
    space: &mut AddressSpace,
    va: u32,
    access: FaultAccess,
    fault: Fault,
) -> TestResult {
    let status = status_code(fault.status);
    check_eq!(fault.address as u32, va);
    check!(
        matches!(
            status,
            TRANSLATION_SECTION | TRANSLATION_PAGE | PERMISSION_PAGE
        ),
        "{access:?} at {va:#010x}: not a fault the engine resolves: {fault}"
    );
    if w.arch == Arch::Armv6 {
        // DFSR.WnR (bit 11), where an ARMv6 kernel reads the access kind
        // from (ARMv5 has to decode the instruction).
        check_eq!(fault.status & (1 << 11) != 0, access == FaultAccess::Write);
    }
    let outcome = engine.fault(&mut w.sys, space, VirtAddr(va), access)?;
    println!("    {access:?} abort at {va:#010x} (FS {status:#06b}) → {outcome:?}");
    w.faults.push(outcome);
    Ok(())
}

/// A user load at `va`, faulting pages in through the engine (as
/// `user_load` in src/coherence/tests.rs does on the model).
fn user_load(
    w: &mut World,
    engine: &mut Engine,
    space: &mut AddressSpace,
    va: u32,
) -> Result<u32, Failure> {
    for _ in 0..3 {
        let mut value = 0;
        match catch_fault(FaultKind::DataAbort, || value = ldrt(va)) {
            None => return Ok(value),
            Some(fault) => resolve(w, engine, space, va, FaultAccess::Read, fault)?,
        }
    }
    Err(Failure::new(
        format!("user load at {va:#010x} kept faulting"),
        file!(),
        line!(),
    ))
}

/// A user store at `va`, faulting pages in (and breaking copy-on-write)
/// through the engine.
fn user_store(
    w: &mut World,
    engine: &mut Engine,
    space: &mut AddressSpace,
    va: u32,
    value: u32,
) -> TestResult {
    for _ in 0..3 {
        match catch_fault(FaultKind::DataAbort, || strt(va, value)) {
            None => return Ok(()),
            Some(fault) => resolve(w, engine, space, va, FaultAccess::Write, fault)?,
        }
    }
    Err(Failure::new(
        format!("user store at {va:#010x} kept faulting"),
        file!(),
        line!(),
    ))
}

/// Checks every word of the user page at `va` (user loads) against `word`.
fn user_page_holds(
    w: &mut World,
    engine: &mut Engine,
    space: &mut AddressSpace,
    va: u32,
    word: impl Fn(u32) -> u32,
) -> TestResult {
    for offset in (0..PAGE).step_by(4) {
        let seen = user_load(w, engine, space, va + offset)?;
        check!(
            seen == word(offset),
            "user page {va:#010x} + {offset:#x}: {seen:#010x}, expected {:#010x}",
            word(offset)
        );
    }
    Ok(())
}

/// A page's descriptor as the hardware walker reads it.
struct Pte {
    raw: u32,
    tex: u8,
    c: bool,
    b: bool,
    memory: MemoryType,
    access: Access,
}

impl core::fmt::Display for Pte {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "PTE {:#010x} TEX={:03b} C={} B={} ({:?}, {:?})",
            self.raw,
            self.tex,
            u8::from(self.c),
            u8::from(self.b),
            self.memory,
            self.access
        )
    }
}

/// Reads the small-page descriptor of `va` in `space`'s table word by word
/// (the walker's reads, the last being the L2 entry), decodes C, B and
/// TEX from the raw bits, and checks that the table's `translate` and the
/// space's `memory_type` say the same.
fn pte(w: &mut World, space: &AddressSpace, va: u32) -> Result<Pte, Failure> {
    let mut raw = 0;
    let mem = &mut w.sys.mem;
    let t = walk(
        &mut |pa| {
            let word = mem.read_word(pa)?;
            raw = word;
            Ok(word)
        },
        space.table().l1(),
        w.arch,
        VirtAddr(va),
    )?;
    check_eq!(t.size, PageSize::Small);
    // Small page: C bit 3, B bit 2; the ARMv6 extended format has TEX in
    // bits 8:6 (ARMv5 small pages have none).
    let (c, b) = (raw & (1 << 3) != 0, raw & (1 << 2) != 0);
    let tex = match w.arch {
        Arch::Armv6 => ((raw >> 6) & 0b111) as u8,
        Arch::Armv5 => 0,
    };
    let translated = space.table().translate(&mut w.sys.mem, VirtAddr(va))?;
    check_eq!(
        (translated.attrs.tex, translated.attrs.c, translated.attrs.b),
        (tex, c, b)
    );
    let attributes = translated.attributes(w.arch)?;
    let memory = space.memory_type(&mut w.sys, VirtAddr(va))?;
    check_eq!(memory, attributes.memory);
    Ok(Pte {
        raw,
        tex,
        c,
        b,
        memory,
        access: attributes.access,
    })
}

/// The raw bits each memory type must have on `arch`.
fn expect_bits(pte: &Pte, cached: bool, arch: Arch) -> TestResult {
    let expected = match (cached, arch) {
        (true, _) => (0, true, true, MemoryType::NormalWriteBack),
        (false, Arch::Armv5) => (0, false, true, MemoryType::NormalNonCacheable),
        (false, Arch::Armv6) => (1, false, false, MemoryType::NormalNonCacheable),
    };
    check_eq!((pte.tex, pte.c, pte.b, pte.memory), expected);
    check_eq!(
        pte.memory,
        if cached {
            MemoryType::NormalWriteBack
        } else {
            MemoryType::Bufferable.as_encoded_on(arch)
        }
    );
    Ok(())
}

fn is_uncached(w: &World, pa: PhysAddr) -> Result<bool, Failure> {
    Ok(w.sys
        .frames
        .state(pa)?
        .flags()
        .contains(PageFlags::UNCACHED))
}

// ---- (a) zero-fill and copy-on-write ------------------------------------------------

/// A private file mapping reads the page cache and, once written, its own
/// copy (read-then-write and write-first); the page cache is untouched.
/// Anonymous pages read as zeroes although their frames held poison.
fn private_and_anonymous_pages_are_zero_filled_and_copied_on_write() -> TestResult {
    let w = world();
    let mut engine = w.engine()?;
    let mut space = w.new_space(&engine, w.colour_span())?;
    w.enter(&mut engine, &mut space)?;
    let (file, cache) = w.file(&mut engine, 2)?;
    check_eq!(engine.counters().deferred, 2);
    let private = MmapArgs {
        shared: false,
        ..MmapArgs::shared_object(file, 0, 2 * PAGE)
    };
    let va = engine.mmap(&mut w.sys, &mut space, private)?.as_u32();
    println!(
        "  private file mapping at {va:#010x}, page cache {} {}",
        cache[0], cache[1]
    );

    // Page 0: read (maps the page-cache frame read-only), then write (copies).
    check_eq!(
        user_load(w, &mut engine, &mut space, va + 4)?,
        file_word(0, 4)
    );
    check_eq!(space.resident_at(VirtAddr(va)), Some(cache[0]));
    user_store(w, &mut engine, &mut space, va + 8, 0x0bad_0008)?;
    let copy = space.resident_at(VirtAddr(va));
    check!(
        copy.is_some_and(|pa| pa != cache[0]),
        "page 0 not copied: {copy:?}"
    );
    user_page_holds(w, &mut engine, &mut space, va, |o| {
        if o == 8 { 0x0bad_0008 } else { file_word(0, o) }
    })?;
    // Page 1: written first (copied straight from the page cache).
    user_store(w, &mut engine, &mut space, va + PAGE + 12, 0x0bad_100c)?;
    check!(
        space
            .resident_at(VirtAddr(va + PAGE))
            .is_some_and(|pa| pa != cache[1])
    );
    user_page_holds(w, &mut engine, &mut space, va + PAGE, |o| {
        if o == 12 {
            0x0bad_100c
        } else {
            file_word(1, o)
        }
    })?;
    // The page cache still holds the file.
    for (page, &frame) in cache.iter().enumerate() {
        let kva = engine.kernel_va(frame).as_u32();
        for offset in (0..PAGE).step_by(4) {
            let seen = kernel_load(VirtAddr(kva + offset));
            check!(
                seen == file_word(page as u32, offset),
                "page cache {frame} + {offset:#x} changed: {seen:#010x}"
            );
        }
    }
    let faults = w.take_faults();
    check!(
        matches!(
            faults.as_slice(),
            [
                FaultOutcome::ObjectPage { fresh: false, .. },
                FaultOutcome::CopyOnWrite {
                    from_fresh: false,
                    ..
                },
                FaultOutcome::CopyOnWrite {
                    from_fresh: false,
                    ..
                },
            ]
        ),
        "{faults:?}"
    );

    // Anonymous: one page read first, one written first; both zero-filled.
    let anon = engine
        .mmap(&mut w.sys, &mut space, MmapArgs::anonymous(2 * PAGE))?
        .as_u32();
    println!("  anonymous mapping at {anon:#010x}");
    user_page_holds(w, &mut engine, &mut space, anon, |_| 0)?;
    user_store(w, &mut engine, &mut space, anon + 100, 0xa404)?;
    check_eq!(user_load(w, &mut engine, &mut space, anon + 100)?, 0xa404);
    user_store(w, &mut engine, &mut space, anon + PAGE + 20, 0xa514)?;
    user_page_holds(w, &mut engine, &mut space, anon + PAGE, |o| {
        if o == 20 { 0xa514 } else { 0 }
    })?;
    let faults = w.take_faults();
    check!(
        matches!(
            faults.as_slice(),
            [FaultOutcome::ZeroFill { .. }, FaultOutcome::ZeroFill { .. }]
        ),
        "{faults:?}"
    );
    let counters = *engine.counters();
    println!("  counters: {counters:?}");
    check_eq!(counters.pages_filled, 4);
    w.retire(&mut engine, space)?;
    Ok(())
}

// ---- (b) two shared mappings in one space ---------------------------------------

/// One file page mapped shared twice in one space (placed colour-matched),
/// written through each mapping and read through the other.
fn two_shared_mappings_of_one_file_page_see_each_others_writes() -> TestResult {
    let w = world();
    let mut engine = w.engine()?;
    let mut space = w.new_space(&engine, w.colour_span())?;
    w.enter(&mut engine, &mut space)?;
    let (file, cache) = w.file(&mut engine, 1)?;
    let args = MmapArgs::shared_object(file, 0, PAGE);
    let a = engine.mmap(&mut w.sys, &mut space, args)?.as_u32();
    let b = engine.mmap(&mut w.sys, &mut space, args)?.as_u32();
    println!(
        "  a {a:#010x} (colour {}), b {b:#010x} (colour {})",
        w.info.colour_of(VirtAddr(a)),
        w.info.colour_of(VirtAddr(b))
    );
    for round in 0..4u32 {
        user_store(w, &mut engine, &mut space, a + 8, 0xa000 + round)?;
        check_eq!(
            user_load(w, &mut engine, &mut space, b + 8)?,
            0xa000 + round
        );
        user_store(w, &mut engine, &mut space, b + 12, 0xb000 + round)?;
        check_eq!(
            user_load(w, &mut engine, &mut space, a + 12)?,
            0xb000 + round
        );
    }
    check_eq!(space.resident_at(VirtAddr(a)), Some(cache[0]));
    check_eq!(space.resident_at(VirtAddr(b)), Some(cache[0]));
    user_page_holds(w, &mut engine, &mut space, b, |o| match o {
        8 => 0xa003,
        12 => 0xb003,
        _ => file_word(0, o),
    })?;
    let (pa, pb) = (pte(w, &space, a)?, pte(w, &space, b)?);
    println!("  a: {pa}");
    println!("  b: {pb}");
    println!("  counters: {:?}", engine.counters());
    w.take_faults();
    w.retire(&mut engine, space)?;
    Ok(())
}

// ---- (c) make_coherent: the memory-type bits ----------------------------------------

/// Two shared mappings of one page, colour-matched and then one page
/// apart: on VIVT both variants conflict, on VIPT aliasing only the one of
/// different colours, on a non-aliasing cache neither. A conflict makes
/// both entries uncacheable; unmapping one makes the other cacheable again.
fn make_coherent_uncaches_conflicting_aliases_and_restores_them() -> TestResult {
    let w = world();
    println!("  {} on {}", describe(&w.info), w.arch);
    for colour_matched in [true, false] {
        let mut engine = w.engine()?;
        let span = if colour_matched {
            w.colour_span()
        } else {
            PAGE
        };
        let mut space = w.new_space(&engine, span)?;
        w.enter(&mut engine, &mut space)?;
        let (file, cache) = w.file(&mut engine, 1)?;
        let args = MmapArgs::shared_object(file, 0, PAGE);
        let a = engine.mmap(&mut w.sys, &mut space, args)?.as_u32();
        let b = if colour_matched {
            engine.mmap(&mut w.sys, &mut space, args)?.as_u32()
        } else {
            // One page above a colour boundary: another colour wherever
            // there are colours.
            let fixed = MmapArgs {
                addr: Some(VirtAddr(a - MIB + PAGE)),
                fixed: true,
                ..args
            };
            engine.mmap(&mut w.sys, &mut space, fixed)?.as_u32()
        };
        let same_colour = w.info.colour_of(VirtAddr(a)) == w.info.colour_of(VirtAddr(b));
        let conflict = match w.info.kind {
            CacheKind::Vivt => true,
            CacheKind::VipAliasing { .. } => !same_colour,
            _ => false,
        };
        println!(
            "  {}: a {a:#010x} (colour {}), b {b:#010x} (colour {}) → conflict expected: {conflict}",
            if colour_matched {
                "colour-matched"
            } else {
                "one page apart"
            },
            w.info.colour_of(VirtAddr(a)),
            w.info.colour_of(VirtAddr(b)),
        );
        if colour_matched && w.info.colours() > 1 {
            check!(
                same_colour,
                "shared mappings of one offset placed at different colours"
            );
        }
        // Fault both in, writing through each.
        user_store(w, &mut engine, &mut space, a + 8, 0xc0a)?;
        check_eq!(user_load(w, &mut engine, &mut space, b + 8)?, 0xc0a);
        user_store(w, &mut engine, &mut space, b + 12, 0xc0b)?;
        check_eq!(user_load(w, &mut engine, &mut space, a + 12)?, 0xc0b);
        let (pa, pb) = (pte(w, &space, a)?, pte(w, &space, b)?);
        println!("    both mapped: a {pa}");
        println!("                 b {pb}");
        expect_bits(&pa, !conflict, w.arch)?;
        expect_bits(&pb, !conflict, w.arch)?;
        check_eq!(is_uncached(w, cache[0])?, conflict);

        // One alias goes: the page is cacheable again, and b is gone.
        engine.munmap(&mut w.sys, &mut space, VirtAddr(b), PAGE)?;
        let pa = pte(w, &space, a)?;
        println!("    after munmap(b): a {pa}");
        expect_bits(&pa, true, w.arch)?;
        check!(!is_uncached(w, cache[0])?);
        check_eq!(user_load(w, &mut engine, &mut space, a + 12)?, 0xc0b);
        let mut gone = None;
        if let Some(fault) = catch_fault(FaultKind::DataAbort, || {
            ldrt(b + 8);
        }) {
            gone = Some(engine.fault(&mut w.sys, &mut space, VirtAddr(b + 8), FaultAccess::Read));
            check_eq!(status_code(fault.status), TRANSLATION_PAGE);
        }
        check!(
            matches!(
                gone,
                Some(Err(CoherenceError::Space(SpaceError::NoMapping { .. })))
            ),
            "a load from the unmapped alias: {gone:?}"
        );
        let counters = *engine.counters();
        println!("    counters: {counters:?}");
        check_eq!(
            (counters.made_uncached, counters.restored),
            if conflict { (1, 1) } else { (0, 0) }
        );
        w.take_faults();
        w.retire(&mut engine, space)?;
    }
    Ok(())
}

// ---- (d) kernel writes to a page-cache page a user maps --------------------------

/// The kernel writes a page-cache page (through the identity alias) that a
/// process maps shared: once before the mapping exists (deferred until the
/// fault maps it) and once while it is mapped. The frame deliberately has
/// another colour than the user mapping where colours exist, as when the
/// allocator had none of the right colour left.
fn kernel_writes_to_a_shared_page_cache_page_reach_the_user() -> TestResult {
    let w = world();
    let mut engine = w.engine()?;
    let mut space = w.new_space(&engine, w.colour_span())?;
    w.enter(&mut engine, &mut space)?;
    let file = w.sys.objects.create(ObjectKind::File, 1)?;
    let colours = w.sys.allocator.colours();
    let frame = w.sys.allocator.allocate_colour((colours - 1).min(1))?;
    w.sys.objects.insert_page(file, 0, frame)?;
    let kva = engine.kernel_va(frame);
    fill_page(kva, |o| file_word(0, o));
    kernel_store(VirtAddr(kva.as_u32() + 16), 0x1111_1111);
    engine.flush_dcache_page(&mut w.sys, frame)?;
    check_eq!(
        (
            engine.counters().deferred,
            engine.counters().kernel_alias_cleans
        ),
        (1, 0)
    );

    let va = engine
        .mmap(
            &mut w.sys,
            &mut space,
            MmapArgs::shared_object(file, 0, PAGE),
        )?
        .as_u32();
    let separate = match w.info.kind {
        CacheKind::Vivt => true,
        CacheKind::VipAliasing { .. } => w.info.colour_of(kva) != w.info.colour_of(VirtAddr(va)),
        _ => false,
    };
    println!(
        "  frame {frame} (kernel alias colour {}), user {va:#010x} (colour {}): separate lines: {separate}",
        w.info.colour_of(kva),
        w.info.colour_of(VirtAddr(va))
    );
    check_eq!(user_load(w, &mut engine, &mut space, va + 16)?, 0x1111_1111);
    let after_fault = *engine.counters();
    println!("  deferred write seen; counters: {after_fault:?}");
    check_eq!(after_fault.kernel_alias_cleans, u64::from(separate));

    // …and again while it is mapped (on hardware the user's lines are warm).
    kernel_store(VirtAddr(kva.as_u32() + 16), 0x2222_2222);
    engine.flush_dcache_page(&mut w.sys, frame)?;
    check_eq!(user_load(w, &mut engine, &mut space, va + 16)?, 0x2222_2222);
    user_page_holds(w, &mut engine, &mut space, va, |o| {
        if o == 16 {
            0x2222_2222
        } else {
            file_word(0, o)
        }
    })?;
    let counters = *engine.counters();
    println!("  mapped write seen; counters: {counters:?}");
    check_eq!((counters.flush_dcache_page, counters.deferred), (2, 1));
    check_eq!(counters.kernel_alias_cleans, 2 * u64::from(separate));
    check_eq!(counters.user_alias_flushes, u64::from(separate));
    check!(
        matches!(
            w.take_faults().as_slice(),
            [FaultOutcome::ObjectPage { fresh: false, .. }]
        ),
        "one fault, mapping the page-cache page"
    );
    w.retire(&mut engine, space)?;
    Ok(())
}

// ---- (e) fork ---------------------------------------------------------------------

/// `Engine::fork`: the parent's private pages turn copy-on-write in both
/// spaces (on VIVT the parent's dirty lines are cleaned first), a shared
/// page stays shared and writable. Each side's first write to a private
/// page copies it while the other keeps the pre-fork data; the last one
/// mapping a frame reuses it. Then the child exits while the parent runs.
fn fork_shares_private_pages_copy_on_write_and_shared_pages_stay_shared() -> TestResult {
    let w = world();
    let mut engine = w.engine()?;
    let mut parent = w.new_space(&engine, w.colour_span())?;
    w.enter(&mut engine, &mut parent)?;
    let private = engine
        .mmap(&mut w.sys, &mut parent, MmapArgs::anonymous(2 * PAGE))?
        .as_u32();
    let shared_args = MmapArgs {
        shared: true,
        ..MmapArgs::anonymous(PAGE)
    };
    let shared = engine.mmap(&mut w.sys, &mut parent, shared_args)?.as_u32();
    println!("  private {private:#010x} (2 pages), shared anonymous {shared:#010x}");
    for page in 0..2 {
        user_store(
            w,
            &mut engine,
            &mut parent,
            private + page * PAGE + 8,
            0x9a00 + page,
        )?;
    }
    user_store(w, &mut engine, &mut parent, shared + 8, 0x5a00)?;
    // Fresh shared memory is zeroed by the engine (its frame held poison).
    user_page_holds(w, &mut engine, &mut parent, shared, |o| {
        if o == 8 { 0x5a00 } else { 0 }
    })?;
    let faults = w.take_faults();
    check!(
        matches!(
            faults.as_slice(),
            [
                FaultOutcome::ZeroFill { .. },
                FaultOutcome::ZeroFill { .. },
                FaultOutcome::ObjectPage { fresh: true, .. },
            ]
        ),
        "{faults:?}"
    );
    let resident = |space: &AddressSpace, va: u32| space.resident_at(VirtAddr(va));
    let pre_fork = [
        resident(&parent, private),
        resident(&parent, private + PAGE),
    ];
    let shared_frame = resident(&parent, shared);
    let before = *engine.counters();

    let child_table = w.new_table()?;
    let mut child = engine.fork(&mut w.sys, &mut parent, child_table)?;
    let after = *engine.counters();
    println!("  forked {}; counters {after:?}", child.id());
    // On VIVT the parent's two written private pages were cleaned before
    // turning read-only; other caches owe nothing at fork.
    check_eq!(
        after.range_flushes - before.range_flushes,
        u64::from(w.info.kind == CacheKind::Vivt)
    );
    for space in [&parent, &child] {
        check_eq!(
            [resident(space, private), resident(space, private + PAGE)],
            pre_fork
        );
        check_eq!(resident(space, shared), shared_frame);
    }
    for (name, space) in [("parent", &parent), ("child", &child)] {
        let (p, s) = (pte(w, space, private)?, pte(w, space, shared)?);
        println!("    {name}: private {p}");
        println!("    {name}: shared  {s}");
        expect_bits(&p, true, w.arch)?;
        expect_bits(&s, true, w.arch)?;
        check_eq!(
            (p.access, s.access),
            (Access::UserRoKernelRw, Access::UserRw)
        );
    }

    // The parent writes private page 0: it gets a copy.
    user_store(w, &mut engine, &mut parent, private + 8, 0x9b00)?;
    check!(resident(&parent, private) != pre_fork[0]);
    check_eq!(user_load(w, &mut engine, &mut parent, private + 8)?, 0x9b00);

    // The child sees the pre-fork data, copies page 1 (the parent still
    // maps it), reuses page 0 (nobody else maps it now), shares the rest.
    w.enter(&mut engine, &mut child)?;
    check_eq!(user_load(w, &mut engine, &mut child, private + 8)?, 0x9a00);
    check_eq!(
        user_load(w, &mut engine, &mut child, private + PAGE + 8)?,
        0x9a01
    );
    check_eq!(user_load(w, &mut engine, &mut child, shared + 8)?, 0x5a00);
    user_store(w, &mut engine, &mut child, private + PAGE + 8, 0x9c01)?;
    user_store(w, &mut engine, &mut child, private + 8, 0x9c00)?;
    user_store(w, &mut engine, &mut child, shared + 8, 0x5c00)?;
    check_eq!(resident(&child, private), pre_fork[0]);
    check!(resident(&child, private + PAGE) != pre_fork[1]);
    user_page_holds(w, &mut engine, &mut child, private + PAGE, |o| {
        if o == 8 { 0x9c01 } else { 0 }
    })?;

    // Back in the parent: its own private data, the child's shared write.
    w.enter(&mut engine, &mut parent)?;
    check_eq!(user_load(w, &mut engine, &mut parent, private + 8)?, 0x9b00);
    check_eq!(
        user_load(w, &mut engine, &mut parent, private + PAGE + 8)?,
        0x9a01
    );
    check_eq!(user_load(w, &mut engine, &mut parent, shared + 8)?, 0x5c00);
    user_store(w, &mut engine, &mut parent, private + PAGE + 8, 0x9b01)?;
    check_eq!(resident(&parent, private + PAGE), pre_fork[1]);
    let faults = w.take_faults();
    check!(
        matches!(
            faults.as_slice(),
            [
                FaultOutcome::CopyOnWrite { .. },
                FaultOutcome::CopyOnWrite { .. },
                FaultOutcome::Reused { .. },
                FaultOutcome::Reused { .. },
            ]
        ),
        "{faults:?}"
    );

    // The child exits while the parent runs; the shared page lives on.
    engine
        .exit(&mut w.sys, child)
        .map_err(|refused| refused.error)?;
    check_eq!(user_load(w, &mut engine, &mut parent, shared + 8)?, 0x5c00);
    // The parent cannot exit while it runs (its table is under the MMU):
    // the engine hands it back untouched, and it exits after a switch.
    let parent = match engine.exit(&mut w.sys, parent) {
        Err(ExitRefused {
            error: CoherenceError::StillRunning { .. },
            space: Some(parent),
        }) => *parent,
        Err(refused) => return Err(Failure::new(format!("{refused}"), file!(), line!())),
        Ok(l1) => {
            return Err(Failure::new(
                format!("the running space exited ({l1})"),
                file!(),
                line!(),
            ));
        }
    };
    println!("  counters: {:?}", engine.counters());
    w.retire(&mut engine, parent)?;
    Ok(())
}

// ---- (f) kernel↔user shared buffer, (g) DMA -------------------------------------------

/// Seed 000 on the CPU: a two-page buffer the kernel writes and a process
/// reads, then the other way round, handed over with `sync_for_user` /
/// `sync_for_kernel` (the real clean / invalidate operations).
fn shared_buffer_is_handed_over_between_kernel_and_user() -> TestResult {
    let w = world();
    let mut engine = w.engine()?;
    let mut space = w.new_space(&engine, w.colour_span())?;
    w.enter(&mut engine, &mut space)?;
    let buffer = engine.create_shared_buffer(&mut w.sys, None, 2, SharingMode::HandOver)?;
    let args = MmapArgs::shared_object(buffer.object(), 0, 2 * PAGE);
    let va = engine.mmap(&mut w.sys, &mut space, args)?.as_u32();
    let kva = buffer.kernel_va(1).expect("the buffer has two pages");
    check_eq!(user_load(w, &mut engine, &mut space, va + PAGE + 8)?, 0);
    for round in 1..=3u32 {
        kernel_store(VirtAddr(kva.as_u32() + 8), 0x1000 + round);
        engine.sync_for_user(&mut w.sys, &buffer, PAGE, PAGE)?;
        check_eq!(
            user_load(w, &mut engine, &mut space, va + PAGE + 8)?,
            0x1000 + round
        );
        user_store(w, &mut engine, &mut space, va + PAGE + 12, 0x2000 + round)?;
        engine.sync_for_kernel(&mut w.sys, &buffer, PAGE + 12, 4)?;
        check_eq!(kernel_load(VirtAddr(kva.as_u32() + 12)), 0x2000 + round);
    }
    check!(
        engine
            .sync_for_user(&mut w.sys, &buffer, 2 * PAGE, 4)
            .is_err(),
        "a range past the buffer is refused"
    );
    println!("  counters: {:?}", engine.counters());
    w.take_faults();
    engine.munmap(&mut w.sys, &mut space, VirtAddr(va), 2 * PAGE)?;
    engine.destroy_shared_buffer(&mut w.sys, Some(&mut w.kernel), buffer)?;
    w.retire(&mut engine, space)?;
    Ok(())
}

/// DMA map / unmap with the real CP15 operations: a buffer whose first
/// line also holds a CPU variable, received into (FromDevice) after the
/// CPU wrote the variable; a line-aligned `DmaBuffer` transmitted
/// (ToDevice) and reused both ways. QEMU's devices are not driven: the
/// "device" is the test writing memory behind the cache's back, which on
/// QEMU is the same memory.
fn dma_map_and_unmap_keep_cpu_data_and_device_data() -> TestResult {
    let w = world();
    let mut dma = Dma::new(&w.info);
    let frame = w.sys.allocator.allocate_any()?;
    let base = frame.as_u32();
    // A CPU variable in the first line, the buffer right after it.
    kernel_store(VirtAddr(base), 0xc0de);
    let buffer = VirtAddr(base + 16);
    // SAFETY: the range holds only the buffer's bytes; the CPU leaves the
    // variable alone until the unmap.
    let mapping =
        unsafe { dma.map_single(w.sys.mem.cpu(), buffer, 200, DmaDirection::FromDevice) }?;
    for offset in (0..200).step_by(4) {
        // The device's write (identity-mapped memory).
        kernel_store(VirtAddr(buffer.as_u32() + offset), 0xd000 + offset);
    }
    dma.unmap(w.sys.mem.cpu(), mapping)?;
    check_eq!(kernel_load(VirtAddr(base)), 0xc0de);
    check_eq!(kernel_load(VirtAddr(buffer.as_u32() + 196)), 0xd000 + 196);
    let mut aligned = DmaBuffer::new(&w.info, 100)?;
    aligned.as_mut_slice().fill(0x5a);
    check!(
        aligned
            .range()
            .start()
            .is_aligned(w.info.dcache.line_bytes as u32),
        "DmaBuffer is line aligned: {:?}",
        aligned.range()
    );
    for direction in [
        DmaDirection::ToDevice,
        DmaDirection::Bidirectional,
        DmaDirection::FromDevice,
    ] {
        let mapping = dma.map_buffer(w.sys.mem.cpu(), &mut aligned, direction)?;
        dma.unmap(w.sys.mem.cpu(), mapping)?;
    }
    check_eq!(aligned.as_slice()[99], 0x5a);
    println!("  dma counters: {:?}", dma.counters());
    w.sys.allocator.free(frame)?;
    Ok(())
}

// ---- (h) kernel windows and the Kmap guard ---------------------------------------

/// A word at `va` in a kernel window (outside the pool, so not through
/// kernel_load).
fn window_load(va: u32) -> u32 {
    // SAFETY: `va` is an aligned word of a window the live Kmap guard has
    // mapped to a frame of the test's memory system.
    unsafe { (va as usize as *const u32).read_volatile() }
}

fn window_store(va: u32, value: u32) {
    // SAFETY: as window_load; the guard was taken for writing.
    unsafe { (va as usize as *mut u32).write_volatile(value) }
}

/// The kernel reads and writes a page a process writes through a shared
/// mapping, bracketed by `Engine::kmap`. The frame's colour differs from
/// the user address's, so on VIPT aliasing the guard maps it through a
/// kernel window of the user's colour (no user line is touched) and on
/// the other caches through the identity map, with the maintenance owed.
fn kmap_gives_the_kernel_the_users_colour_through_a_window() -> TestResult {
    let w = world();
    let Some(windows) = w.windows.take() else {
        return Err(Failure::new(
            "windows already taken".into(),
            file!(),
            line!(),
        ));
    };
    let mut engine = Engine::new(w.info, 0, w.switcher.policy())?.with_windows(windows);
    let mut space = w.new_space(&engine, w.colour_span())?;
    w.enter(&mut engine, &mut space)?;
    let file = w.sys.objects.create(ObjectKind::File, 1)?;
    let colours = w.sys.allocator.colours();
    let frame = w.sys.allocator.allocate_colour((colours - 1).min(1))?;
    w.sys.objects.insert_page(file, 0, frame)?;
    let va = engine
        .mmap(
            &mut w.sys,
            &mut space,
            MmapArgs::shared_object(file, 0, PAGE),
        )?
        .as_u32();
    let kva = engine.kernel_va(frame);
    let aliasing = matches!(w.info.kind, CacheKind::VipAliasing { .. });
    let window_expected = aliasing && w.info.colour_of(kva) != w.info.colour_of(VirtAddr(va));
    println!(
        "  frame {frame} (identity colour {}), user {va:#010x} (colour {}): window expected: {window_expected}",
        w.info.colour_of(kva),
        w.info.colour_of(VirtAddr(va))
    );
    for round in 0..3u32 {
        user_store(w, &mut engine, &mut space, va + 32, 0x100 + round)?;
        let kmap = engine.kmap(&mut w.sys, frame, KmapAccess::Write)?;
        let at = kmap.va().as_u32();
        let in_window = (WINDOWS..WINDOWS + MIB).contains(&at);
        check_eq!(in_window, window_expected);
        if in_window {
            check_eq!(
                w.info.colour_of(VirtAddr(at)),
                w.info.colour_of(VirtAddr(va))
            );
        }
        check_eq!(window_load(at + 32), 0x100 + round);
        window_store(at + 64, 0x200 + round);
        kmap.finish()?;
        check_eq!(
            user_load(w, &mut engine, &mut space, va + 64)?,
            0x200 + round
        );
    }
    // The window is gone once the guard is: the next guard reuses it.
    let again = engine.kmap(&mut w.sys, frame, KmapAccess::Read)?;
    let at = again.va().as_u32();
    check_eq!(window_load(at + 64), 0x202);
    drop(again);
    let counters = *engine.counters();
    println!("  counters: {counters:?}");
    check_eq!(counters.kmaps, 4);
    w.take_faults();
    engine.munmap(&mut w.sys, &mut space, VirtAddr(va), PAGE)?;
    w.retire(&mut engine, space)?;
    Ok(())
}

// Not on target: exec beyond exit (the model covers it:
// src/coherence/tests.rs).

vacmm_qemu::test_main!(
    private_and_anonymous_pages_are_zero_filled_and_copied_on_write,
    two_shared_mappings_of_one_file_page_see_each_others_writes,
    make_coherent_uncaches_conflicting_aliases_and_restores_them,
    kernel_writes_to_a_shared_page_cache_page_reach_the_user,
    fork_shares_private_pages_copy_on_write_and_shared_pages_stay_shared,
    shared_buffer_is_handed_over_between_kernel_and_user,
    dma_map_and_unmap_keep_cpu_data_and_device_data,
    kmap_gives_the_kernel_the_users_colour_through_a_window,
);
