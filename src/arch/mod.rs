//! Registers and CP15 operations of ARM926EJ-S (ARMv5) and ARM1136/ARM1176
//! (ARMv6): the only inline assembly in vacmm.
//!
//! ```text
//!   regs     typed register values (host-testable) + read/write on ARM
//!   profile  which sequence each core needs: errata, optional operations
//!            (host-testable, from MIDR and ACTLR)
//!   cp15     one function per cache / barrier / TLB instruction
//!   Arm926   CacheMaintenance for ARMv5: test-and-clean loops, no block ops
//!   Armv6    CacheMaintenance for ARMv6: whole-cache ops, MCRR block ops,
//!            ASID TLB ops, CP15 barriers, the ARM1136 erratum 411920 sequence
//!   AnyCpu   picks one of the two from MIDR at run time
//!   abort    read or write? the ARMv5 data abort decoded from the
//!            instruction (host-testable)
//!   annotate no-op instruction sequences a cache sanitizer reads
//!            (qemu/cachesan): "this memory is dead"
//! ```
//!
//! ARMv5 and ARMv6 have no `dsb`/`dmb`/`isb` instructions: the barriers are
//! CP15 c7 operations. Both backends check MIDR when created, so an ARMv6
//! operation is never executed on an ARM926 through them.

pub mod profile;
pub mod regs;

pub mod abort;
pub mod annotate;
#[cfg(target_arch = "arm")]
pub mod cp15;

/// The `CacheMaintenance` methods both backends implement with the same
/// CP15 operation (ARM926 TRM §2.3.8/§2.3.9 and ARM1136 TRM §3.3.18/§3.3.19
/// share these encodings); each backend adds its own whole-cache, I-cache
/// and ASID methods. Expects a field `info: CacheInfo`.
#[cfg(target_arch = "arm")]
macro_rules! common_cp15_ops {
    () => {
        fn info(&self) -> &CacheInfo {
            &self.info
        }
        fn clean_dcache_line(&mut self, va: VirtAddr) {
            cp15::clean_dcache_line(va.as_u32());
        }
        fn clean_invalidate_dcache_line(&mut self, va: VirtAddr) {
            cp15::clean_invalidate_dcache_line(va.as_u32());
        }
        unsafe fn invalidate_dcache_line(&mut self, va: VirtAddr) {
            // SAFETY: forwarded from this method's contract.
            unsafe { cp15::invalidate_dcache_line(va.as_u32()) }
        }
        fn drain_write_buffer(&mut self) {
            cp15::drain_write_buffer(0);
        }
        fn invalidate_tlb_all(&mut self) {
            cp15::invalidate_tlb_all(0);
        }
        fn invalidate_tlb_page(&mut self, va: VirtAddr) {
            cp15::invalidate_tlb_mva(va.align_down(4096).as_u32());
        }
    };
}

#[cfg(target_arch = "arm")]
mod arm926;
#[cfg(target_arch = "arm")]
mod armv6;
#[cfg(target_arch = "arm")]
mod detect;

#[cfg(target_arch = "arm")]
pub use self::{arm926::Arm926, armv6::Armv6, detect::AnyCpu};

#[cfg(target_arch = "arm")]
pub use self::identify::*;

#[cfg(target_arch = "arm")]
mod identify {
    use crate::cache::{CacheInfo, CacheType, CtrError, InfoError, MainId};

    /// Reads the Main ID Register: MRC p15,0,Rd,c0,c0,0 (ARM926 TRM §2.3.3, ARM1136 TRM §3.3.4).
    #[inline]
    pub fn main_id() -> MainId {
        MainId::from_raw(aarch32_cpu::register::Midr::read().raw_value())
    }

    /// Reads the raw Cache Type Register: MRC p15,0,Rd,c0,c0,1 (ARM926 TRM §2.3.3,
    /// ARM1136 TRM §3.3.2). A CPU without a CTR returns the MIDR here.
    #[inline]
    pub fn cache_type_raw() -> u32 {
        aarch32_cpu::register::Ctr::read().0
    }

    /// Reads and decodes the Cache Type Register.
    pub fn cache_type() -> Result<CacheType, CtrError> {
        CacheType::decode(cache_type_raw(), main_id())
    }

    /// The cache facts of the running CPU, from MIDR and CTR. Under QEMU the
    /// CTR is invented: override the geometry with [`CacheInfo::with_dcache`].
    pub fn cache_info() -> Result<CacheInfo, InfoError> {
        CacheInfo::from_registers(main_id(), cache_type_raw())
    }

    /// Reads the Data Fault Status Register: MRC p15,0,Rd,c5,c0,0.
    #[inline]
    pub fn data_fault_status() -> u32 {
        aarch32_cpu::register::Dfsr::read().raw_value()
    }

    /// Reads the Instruction Fault Status Register: MRC p15,0,Rd,c5,c0,1.
    #[inline]
    pub fn instruction_fault_status() -> u32 {
        aarch32_cpu::register::Ifsr::read().raw_value()
    }

    /// Reads the Fault Address Register: MRC p15,0,Rd,c6,c0,0. A 32-bit
    /// address, as [`data_fault_status`] is a 32-bit register.
    #[inline]
    pub fn fault_address() -> u32 {
        aarch32_cpu::register::Dfar::read().0
    }
}
