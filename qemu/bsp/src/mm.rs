//! What a kernel on the board gives vacmm's page tables: table memory
//! reached through an identity mapping, and frames from the RAM the image
//! does not use.
//!
//! ```text
//!  RAM_BASE +  0 MiB ── vectors, code, constants (memory.ld's LOW) ────  32 MiB
//!           + 32 MiB ── .data, .bss, heap, stacks (memory.ld's HIGH) ─  64 MiB
//!           + 64 MiB ── FramePool: L1 tables, coarse-table frames, pages  128 MiB
//! ```
//! On boards whose RAM starts at 0, the kernel's writable memory starts at
//! 32 MiB, out of reach of the FCSE relocation (see memory.ld). All of it
//! is mapped VA = PA by the kernel table the tests build, so
//! `IdentityTables` can reach any table frame at its physical address, and
//! (as the coherence engine's [`KernelAccess`]) any pool page at its
//! physical address: the engine's linear offset is 0.

use alloc::vec::Vec;

use crate::board;
use vacmm::addr::{PhysAddr, VirtAddr, VirtRange};
use vacmm::cache::CacheMaintenance;
use vacmm::coherence::{AccessError, KernelAccess};
use vacmm::mmu::{Arch, Attributes, PageTable, TableError, TableFrames, TableMemory};

const MIB: u32 = 1 << 20;
/// Where the image's code starts (the board's RAM).
pub const KERNEL_CODE_START: u32 = board::RAM_BASE;
/// The image's code and constants lie below this (memory.ld puts them at
/// the bottom of its LOW region and asserts at link time that they end
/// below RAM's first 16 MiB, which on boards with RAM at 0 leaves kernels
/// 16–32 MiB for user mappings).
pub const KERNEL_CODE_END: u32 = board::RAM_BASE + 16 * MIB;
/// Where the image's writable memory (.data, .bss, heap, stacks) starts:
/// memory.ld's HIGH region, 32 MiB into RAM.
pub const KERNEL_DATA_START: u32 = board::RAM_BASE + 32 * MIB;
/// First byte of RAM the image never uses (memory.ld keeps RAM's first
/// 64 MiB).
pub const POOL_START: u32 = board::RAM_BASE + 64 * MIB;
/// End of the RAM the kernels use (`qemu/runner` boots with 128 MiB or
/// more).
pub const POOL_END: u32 = board::RAM_BASE + 128 * MIB;
/// The MiB holding the vector table the CPU fetches (low vectors, at 0):
/// in RAM on most boards, in ROM on the kzm (see board/kzm.rs).
const VECTORS_MIB: (u32, u32) = (0, MIB);

/// Whether `[start, start + len)` is free kernel address space on this
/// board: neither the RAM the kernels map VA = PA, nor the vectors' MiB,
/// nor a device window. The kernels place their own mappings (kernel
/// windows, test pages) there and check it at compile time:
/// `const _: () = assert!(vacmm_qemu::mm::is_free_va(WINDOWS, MIB));`
pub const fn is_free_va(start: u32, len: u32) -> bool {
    const fn overlap(a: (u32, u32), b: (u32, u32)) -> bool {
        (a.0 as u64) < b.0 as u64 + b.1 as u64 && (b.0 as u64) < a.0 as u64 + a.1 as u64
    }
    let range = (start, len);
    if overlap(range, (KERNEL_CODE_START, POOL_END - KERNEL_CODE_START))
        || overlap(range, VECTORS_MIB)
    {
        return false;
    }
    let mut i = 0;
    while i < board::DEVICES.len() {
        if overlap(range, board::DEVICES[i]) {
            return false;
        }
        i += 1;
    }
    true
}

/// The kernel table's entries every user table must share, as (start,
/// length): the vectors, the image's code, its data (heap, stacks), the
/// frame pool (tables, and the kernel alias of every user frame), the
/// devices. A context switch changes TTBR0 under the running kernel, so
/// the kernel must stay mapped exactly as before.
pub fn kernel_ranges() -> impl Iterator<Item = (u32, u32)> {
    let vectors = (!vectors_in_ram()).then_some(VECTORS_MIB);
    vectors
        .into_iter()
        .chain([
            (KERNEL_CODE_START, KERNEL_CODE_END - KERNEL_CODE_START),
            (KERNEL_DATA_START, POOL_START - KERNEL_DATA_START),
            (POOL_START, POOL_END - POOL_START),
        ])
        .chain(board::DEVICES.iter().copied())
}

/// Whether the vectors' MiB is part of the RAM the kernel maps anyway.
fn vectors_in_ram() -> bool {
    (KERNEL_CODE_START..POOL_END).contains(&VECTORS_MIB.0)
}

/// Builds the kernel's table these kernels run on (the MMU still off): the
/// RAM they use ([`KERNEL_CODE_START`]..[`POOL_END`]) and the vectors'
/// MiB mapped VA = PA in sections with the attributes `ram(mib_address)`
/// gives, and the board's devices. Its L1 comes from `frames`.
pub fn identity_kernel_table<M: TableMemory>(
    mem: &mut M,
    frames: &mut FramePool,
    arch: Arch,
    ram: impl Fn(u32) -> Attributes,
) -> Result<PageTable, TableError> {
    let l1 = frames
        .allocate(L1_BYTES)
        .ok_or(TableError::OutOfFrames { va: VirtAddr(0) })?;
    let mut kernel = PageTable::new(mem, l1, arch)?;
    let vectors = (!vectors_in_ram()).then_some(VECTORS_MIB.0);
    for at in vectors
        .into_iter()
        .chain((KERNEL_CODE_START..POOL_END).step_by(MIB as usize))
    {
        kernel.map_section(mem, VirtAddr(at), PhysAddr(at), ram(at))?;
    }
    for &(devices, len) in board::DEVICES {
        for at in (devices..devices + len).step_by(MIB as usize) {
            kernel.map_section(mem, VirtAddr(at), PhysAddr(at), Attributes::DEVICE)?;
        }
    }
    Ok(kernel)
}

/// Shares the kernel's entries for [`kernel_ranges`] and `extra` (e.g. the
/// engine's kernel windows) from `kernel` into the user table `user`.
pub fn share_kernel_entries<M: TableMemory>(
    mem: &mut M,
    user: &mut PageTable,
    kernel: &PageTable,
    extra: &[VirtRange],
) -> Result<(), TableError> {
    let fixed = kernel_ranges().map(|(start, len)| {
        VirtRange::new(VirtAddr(start), u64::from(len)).expect("the board's ranges are valid")
    });
    for range in fixed.chain(extra.iter().copied()) {
        user.share_entries_from(mem, kernel, range)?;
    }
    Ok(())
}

/// Table memory at VA = PA, maintained through `cpu`.
pub struct IdentityTables<C> {
    cpu: C,
    /// Kernel addresses outside the pool the engine may fill through:
    /// its kernel windows (`[start, end)`), mapped to pool frames by the
    /// engine itself while it uses them.
    windows: Option<(u32, u32)>,
}

impl<C: CacheMaintenance> IdentityTables<C> {
    /// Tables reached at their physical addresses.
    ///
    /// # Safety
    /// Every table frame handed to the tables must be mapped at VA = PA (or
    /// the MMU off), and owned by them. Used as [`KernelAccess`], the whole
    /// pool must be mapped VA = PA, and every page the coherence engine
    /// names must belong to the memory system the engine works for (its
    /// user frames carved from the pool), not to Rust objects.
    pub unsafe fn new(cpu: C) -> Self {
        IdentityTables { cpu, windows: None }
    }

    /// Lets the engine's page fills use `[start, start + len)`, where it
    /// keeps its kernel windows (`KernelWindows::new` with the same base).
    ///
    /// # Safety
    /// The range must be the engine's windows and nothing else: the engine
    /// maps a frame of its memory system there before every fill.
    pub unsafe fn allow_windows(&mut self, start: VirtAddr, len: u32) {
        self.windows = Some((start.as_u32(), start.as_u32().saturating_add(len)));
    }

    /// The CPU backend.
    pub fn cpu(&mut self) -> &mut C {
        &mut self.cpu
    }
}

fn check_word(pa: PhysAddr) -> Result<*mut u32, TableError> {
    if !pa.as_u32().is_multiple_of(4) || !(POOL_START..POOL_END).contains(&pa.as_u32()) {
        return Err(TableError::Memory { pa });
    }
    Ok(pa.as_u32() as usize as *mut u32)
}

impl<C: CacheMaintenance> TableMemory for IdentityTables<C> {
    type Cache = C;

    fn read_word(&mut self, pa: PhysAddr) -> Result<u32, TableError> {
        let ptr = check_word(pa)?;
        // SAFETY: an aligned word of the frame pool, identity-mapped
        // (constructor contract).
        Ok(unsafe { ptr.read_volatile() })
    }

    fn write_word(&mut self, pa: PhysAddr, value: u32) -> Result<(), TableError> {
        let ptr = check_word(pa)?;
        // SAFETY: as above; the frame belongs to the tables.
        unsafe { ptr.write_volatile(value) };
        Ok(())
    }

    fn kernel_va(&self, pa: PhysAddr) -> VirtAddr {
        VirtAddr(pa.as_u32())
    }

    fn cache(&mut self) -> &mut C {
        &mut self.cpu
    }
}

/// The page at `va` as a pointer, if `va` is a page-aligned address whose
/// whole page lies in the pool or in the engine's windows.
fn check_page(va: VirtAddr, windows: Option<(u32, u32)>) -> Result<*mut u8, AccessError> {
    let start = va.as_u32();
    let in_pool = (POOL_START..=POOL_END - PAGE_BYTES).contains(&start);
    let in_windows = windows.is_some_and(|(first, end)| {
        start >= first
            && start
                .checked_add(PAGE_BYTES)
                .is_some_and(|last| last <= end)
    });
    if !start.is_multiple_of(PAGE_BYTES) || !(in_pool || in_windows) {
        return Err(AccessError { va });
    }
    Ok(start as usize as *mut u8)
}

/// The page size the engine fills and copies.
const PAGE_BYTES: u32 = 4096;

/// The engine's page fills, through the identity map: a frame's kernel
/// address is its physical address, or a kernel window the engine mapped
/// ([`IdentityTables::allow_windows`]). Anything else (the image, the
/// heap, devices) is refused, never touched.
impl<C: CacheMaintenance> KernelAccess for IdentityTables<C> {
    /// Nothing to do on the CPU; under the cache sanitizer the frame's
    /// lines may now be dropped without a lost-write report.
    fn contents_dead(&mut self, pa: PhysAddr) {
        vacmm::arch::annotate::declare_dead(PhysAddr(pa.as_u32() & !(PAGE_BYTES - 1)), PAGE_BYTES);
    }

    fn zero_page(&mut self, va: VirtAddr) -> Result<(), AccessError> {
        let page = check_page(va, self.windows)?;
        // SAFETY: a whole, page-aligned page of the identity-mapped pool
        // that the engine owns (constructor contract); nothing in Rust
        // holds a reference into it.
        unsafe { page.write_bytes(0, PAGE_BYTES as usize) };
        Ok(())
    }

    fn copy_page(&mut self, dst: VirtAddr, src: VirtAddr) -> Result<(), AccessError> {
        let to = check_page(dst, self.windows)?;
        let from = check_page(src, self.windows)?;
        if dst == src {
            // Copying a page onto itself changes nothing (and the regions
            // of `copy_nonoverlapping` must not overlap).
            return Ok(());
        }
        // SAFETY: two distinct page-aligned pool pages, so whole and
        // disjoint, identity-mapped and the engine's (constructor contract).
        unsafe { to.copy_from_nonoverlapping(from, PAGE_BYTES as usize) };
        Ok(())
    }
}

/// A bump allocator over [`POOL_START`]..[`POOL_END`] with free lists for
/// the sizes that come back: 4 KiB table frames and 16 KiB L1 tables.
pub struct FramePool {
    next: u32,
    free: Vec<PhysAddr>,
    free_l1: Vec<PhysAddr>,
}

/// An L1 table's size and alignment.
const L1_BYTES: u32 = 16 << 10;

impl Default for FramePool {
    fn default() -> Self {
        Self::new()
    }
}

impl FramePool {
    /// The whole pool, unused.
    pub fn new() -> Self {
        FramePool {
            next: POOL_START,
            free: Vec::new(),
            free_l1: Vec::new(),
        }
    }

    /// `bytes` (a power of two ≥ 4 KiB) aligned to `bytes`, e.g. 16 KiB for
    /// an L1 table; `None` when the pool is used up or `bytes` is not such
    /// a size.
    pub fn allocate(&mut self, bytes: u32) -> Option<PhysAddr> {
        if !bytes.is_power_of_two() || bytes < 4096 {
            return None;
        }
        let reused = match bytes {
            4096 => self.free.pop(),
            L1_BYTES => self.free_l1.pop(),
            _ => None,
        };
        if reused.is_some() {
            return reused;
        }
        let start = self.next.checked_add(bytes - 1)? & !(bytes - 1);
        let end = start.checked_add(bytes)?;
        if end > POOL_END {
            return None;
        }
        self.next = end;
        Some(PhysAddr(start))
    }
}

impl FramePool {
    /// Takes back an L1 table (`Engine::exit` hands back the exited
    /// space's): the next 16 KiB allocation reuses it. Refuses (`false`)
    /// anything not a 16 KiB-aligned block of the pool handed out, and a
    /// table already given back.
    pub fn free_l1(&mut self, l1: PhysAddr) -> bool {
        let at = l1.as_u32();
        let handed_out =
            at >= POOL_START && at.checked_add(L1_BYTES).is_some_and(|end| end <= self.next);
        let ok = at.is_multiple_of(L1_BYTES) && handed_out && !self.free_l1.contains(&l1);
        if ok {
            self.free_l1.push(l1);
        }
        ok
    }
}

impl TableFrames for FramePool {
    fn allocate_table_frame(&mut self) -> Option<PhysAddr> {
        self.allocate(4096)
    }

    fn free_table_frame(&mut self, frame: PhysAddr) {
        self.free.push(frame);
    }
}
