//! What a kernel on versatilepb gives vacmm's page tables: table memory
//! reached through an identity mapping, and frames from the RAM the image
//! does not use.
//!
//! ```text
//!  0 MiB ── image, heap, stacks (linker.ld: the low 64 MiB) ── 64 MiB
//!  64 MiB ── FramePool: L1 tables, coarse-table frames, test pages ── 128 MiB
//! ```
//! Both halves are mapped VA = PA by the kernel table the tests build, so
//! `IdentityTables` can reach any table frame at its physical address.

use alloc::vec::Vec;

use vacmm::addr::{PhysAddr, VirtAddr};
use vacmm::cache::CacheMaintenance;
use vacmm::mmu::{TableError, TableFrames, TableMemory};

/// First byte of RAM the image never uses (linker.ld keeps the low 64 MiB).
pub const POOL_START: u32 = 64 << 20;
/// End of RAM (`qemu/runner` boots with `-m 128M`).
pub const POOL_END: u32 = 128 << 20;

/// Table memory at VA = PA, maintained through `cpu`.
pub struct IdentityTables<C> {
    cpu: C,
}

impl<C: CacheMaintenance> IdentityTables<C> {
    /// Tables reached at their physical addresses.
    ///
    /// # Safety
    /// Every table frame handed to the tables must be mapped at VA = PA (or
    /// the MMU off), and owned by them.
    pub unsafe fn new(cpu: C) -> Self {
        IdentityTables { cpu }
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

/// A bump allocator over [`POOL_START`]..[`POOL_END`] with a free list.
pub struct FramePool {
    next: u32,
    free: Vec<PhysAddr>,
}

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
        }
    }

    /// `bytes` (a power of two ≥ 4 KiB) aligned to `bytes`, e.g. 16 KiB for
    /// an L1 table; `None` when the pool is used up.
    pub fn allocate(&mut self, bytes: u32) -> Option<PhysAddr> {
        if bytes == 4096
            && let Some(frame) = self.free.pop()
        {
            return Some(frame);
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

impl TableFrames for FramePool {
    fn allocate_table_frame(&mut self) -> Option<PhysAddr> {
        self.allocate(4096)
    }

    fn free_table_frame(&mut self, frame: PhysAddr) {
        self.free.push(frame);
    }
}
