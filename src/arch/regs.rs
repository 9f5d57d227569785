//! CP15 system registers of ARM926EJ-S and ARM11, as typed values.
//!
//! Reused from `aarch32-cpu` where its type is right for ARMv5/ARMv6: MIDR,
//! CTR (read raw, decoded by [`crate::cache`]), DACR, DFSR and IFSR (it has
//! `v5te` and `v6` layouts) and FAR (its `Dfar`, same encoding c6,c0,0).
//! Written here where it is not: its SCTLR is the ARMv7 layout (no XP, U,
//! L4, RR, …), its TTBR0 the ARMv7 one; TTBCR, WFAR, FCSEIDR, CONTEXTIDR and
//! the ARM11 Auxiliary Control register are typed here for the ARMv5/ARMv6
//! meaning of their fields.
//!
//! Registers only ARMv6 has (TTBR1, TTBCR, CONTEXTIDR, WFAR, ACTLR) are read
//! and written through `Armv6Registers` (ARM targets), which can only be obtained on an
//! ARMv6 CPU, so they cannot be touched on an ARM926 by mistake.

use bitflags::bitflags;

use crate::addr::PhysAddr;

bitflags! {
    /// System Control Register (c1,c0,0): ARM926 TRM §2.3.5, ARM1136 TRM §3.3.6,
    /// ARM1176 TRM §3.2.7. Bits marked "ARMv6" read as zero (or SBO) on ARM926.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Sctlr: u32 {
        /// MMU enable.
        const M = 1 << 0;
        /// Strict alignment checking.
        const A = 1 << 1;
        /// D-cache (unified cache) enable.
        const C = 1 << 2;
        /// Write buffer enable (SBO on ARM926 and ARM11).
        const W = 1 << 3;
        /// 32-bit exception handlers (SBO).
        const P = 1 << 4;
        /// 32-bit data address range (SBO).
        const D = 1 << 5;
        /// Late abort model (SBO).
        const L = 1 << 6;
        /// Big-endian (BE-32) memory system.
        const B = 1 << 7;
        /// System protection (ARMv5 AP decoding with S/R).
        const S = 1 << 8;
        /// ROM protection.
        const R = 1 << 9;
        /// Implementation defined.
        const F = 1 << 10;
        /// Branch prediction enable (ARMv6).
        const Z = 1 << 11;
        /// I-cache enable.
        const I = 1 << 12;
        /// High exception vectors at 0xFFFF_0000.
        const V = 1 << 13;
        /// Round-robin (1) or random (0) cache replacement.
        const RR = 1 << 14;
        /// Loads to PC do not set the T bit (ARMv4 behaviour).
        const L4 = 1 << 15;
        /// Low-latency interrupt features (ARMv6).
        const FI = 1 << 21;
        /// Unaligned and mixed-endian data access support (ARMv6).
        const U = 1 << 22;
        /// Extended page table format, subpage AP disabled (ARMv6).
        const XP = 1 << 23;
        /// Vectored interrupts (ARMv6).
        const VE = 1 << 24;
        /// CPSR.E on exception entry (ARMv6).
        const EE = 1 << 25;
        /// L2 unified cache enable (ARM1136/ARM1176 with an L2).
        const L2 = 1 << 26;
        /// Non-maskable FIQ (read-only, ARMv6).
        const NMFI = 1 << 27;
        /// TEX remap enable (ARM1176).
        const TRE = 1 << 28;
        /// Access flag enable (ARM1176).
        const AFE = 1 << 29;
        // Bits 16 and 18 are SBO on ARM926 and ARM11; keep whatever the
        // hardware reports when writing back.
        const _ = !0;
    }
}

bitflags! {
    /// Translation table walk attributes in TTBR0/TTBR1 bits \[4:0\] (ARMv6,
    /// ARM1136 TRM §3.3.10); zero on ARMv5, where the walk is uncached.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct TableWalk: u32 {
        /// Inner cacheable walks.
        const C = 1 << 0;
        /// Shared.
        const S = 1 << 1;
        /// ECC / parity-enabled memory (ARM1176 P bit).
        const P = 1 << 2;
        /// Outer write-back, write-allocate (RGN = 0b01).
        const RGN_WBWA = 0b01 << 3;
        /// Outer write-through (RGN = 0b10).
        const RGN_WT = 0b10 << 3;
        /// Outer write-back, no write-allocate (RGN = 0b11).
        const RGN_WB = 0b11 << 3;
    }
}

/// A translation table base register value (TTBR0 c2,c0,0; TTBR1 c2,c0,1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttbr(pub u32);

/// A table base that a TTBR cannot hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MisalignedTableBase {
    /// The base given.
    pub base: PhysAddr,
    /// The alignment it needs, in bytes.
    pub required: u32,
}

impl Ttbr {
    /// A TTBR for an L1 table at `base` that translates `2^(32 − n)` bytes of
    /// address space from address 0 (n = TTBCR.N; 0 for TTBR1 and on ARMv5),
    /// so the table is 16 KiB >> n long and must be that aligned.
    pub const fn new(base: PhysAddr, n: u8, walk: TableWalk) -> Result<Self, MisalignedTableBase> {
        let required = (16 * 1024) >> (n & 7);
        if base.as_u32() & (required - 1) != 0 {
            return Err(MisalignedTableBase { base, required });
        }
        Ok(Ttbr(base.as_u32() | walk.bits()))
    }
    /// The table base (bits [31:14−N]; the attribute bits masked off).
    pub const fn base(self) -> PhysAddr {
        PhysAddr(self.0 & !0x7f)
    }
    /// The walk attributes (ARMv6).
    pub const fn walk(self) -> TableWalk {
        TableWalk::from_bits_truncate(self.0 & 0x1f)
    }
}

/// Translation Table Base Control Register (c2,c0,2, ARMv6; ARM1136 TRM §3.3.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttbcr(pub u32);

impl Ttbcr {
    /// N = 0 puts everything in TTBR0 (the ARMv5 behaviour); N = 1..=7 sends
    /// addresses at or above `2^(32 − N)` to TTBR1.
    pub const fn with_split(n: u8) -> Self {
        Ttbcr((n & 7) as u32)
    }
    /// The split N.
    pub const fn n(self) -> u8 {
        (self.0 & 7) as u8
    }
    /// PD0 (ARM1176): a TLB miss on a TTBR0 address faults instead of walking.
    pub const fn walks_disabled_ttbr0(self) -> bool {
        self.0 & (1 << 4) != 0
    }
    /// PD1 (ARM1176): a TLB miss on a TTBR1 address faults instead of walking.
    pub const fn walks_disabled_ttbr1(self) -> bool {
        self.0 & (1 << 5) != 0
    }
    /// The lowest address translated through TTBR1 (`None` when N = 0).
    pub const fn ttbr1_boundary(self) -> Option<u32> {
        match self.n() {
            0 => None,
            n => Some(1u32 << (32 - n)),
        }
    }
}

/// FCSE Process ID register (c13,c0,0; ARM926 TRM §2.3.14, ARM1136 TRM §3.3.35):
/// PID in bits \[31:25\]. A non-zero PID relocates every VA below 32 MiB by
/// PID × 32 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FcsePid(u8);

impl FcsePid {
    /// PID 0: no relocation.
    pub const NONE: Self = FcsePid(0);
    /// A PID, 0..=127; `None` above.
    pub const fn new(pid: u8) -> Option<Self> {
        if pid < 128 { Some(FcsePid(pid)) } else { None }
    }
    /// The PID.
    pub const fn pid(self) -> u8 {
        self.0
    }
    /// The register value.
    pub const fn bits(self) -> u32 {
        (self.0 as u32) << 25
    }
    /// Decodes a register value.
    pub const fn from_bits(bits: u32) -> Self {
        FcsePid((bits >> 25) as u8)
    }
    /// The modified virtual address of `va` under this PID.
    pub const fn relocate(self, va: u32) -> u32 {
        if va < (32 << 20) {
            va | self.bits()
        } else {
            va
        }
    }
}

/// Context ID register (c13,c0,1, ARMv6; ARM1136 TRM §3.3.28): ASID in bits
/// \[7:0\], PROCID (for debug and trace) in bits \[31:8\].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextId(pub u32);

impl ContextId {
    /// Builds a value from a process ID (24 bits kept) and an ASID.
    pub const fn new(procid: u32, asid: u8) -> Self {
        ContextId((procid << 8) | asid as u32)
    }
    /// The ASID that tags non-global TLB entries.
    pub const fn asid(self) -> u8 {
        self.0 as u8
    }
    /// The PROCID field.
    pub const fn procid(self) -> u32 {
        self.0 >> 8
    }
}

bitflags! {
    /// ARM11 Auxiliary Control Register (c1,c0,1; ARM1136 TRM §3.3.7, ARM1176
    /// TRM §3.2.8).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Actlr: u32 {
        /// Return stack enable.
        const RS = 1 << 0;
        /// Dynamic branch prediction enable.
        const DB = 1 << 1;
        /// Static branch prediction enable.
        const SB = 1 << 2;
        /// MicroTLB random replacement (ARM1136) / folding (ARM1176).
        const TR = 1 << 3;
        /// Clean entire data cache disable.
        const RA = 1 << 4;
        /// Block transfer cache operations disable.
        const RV = 1 << 5;
        /// Restrict each cache to 16 KiB (the "cache size restriction" bit):
        /// turns a 32/64 KiB aliasing cache into a non-aliasing one.
        const CZ = 1 << 6;
        /// ARM1136 r0, undocumented: with SCTLR.FI, turns hit-under-miss
        /// off (erratum 364296; Linux `__v6_setup`, NetBSD
        /// `ARM1136_AUXCTL_PFI`).
        const PFI = 1 << 31;
        const _ = !0;
    }
}

#[cfg(target_arch = "arm")]
pub use self::access::*;

#[cfg(target_arch = "arm")]
mod access {
    use core::arch::asm;

    use super::*;
    use crate::cache::MaintenanceError;

    pub use aarch32_cpu::register::{Dacr, Dfar as Far, Dfsr, Ifsr, dacr::DomainAccess};

    /// Reads one CP15 register `MRC p15, 0, Rd, CRn, CRm, op2`.
    macro_rules! mrc {
        ($crn:literal, $crm:literal, $op2:literal) => {{
            let value: u32;
            // SAFETY: reading these CP15 registers has no side effects.
            unsafe {
                asm!(concat!("mrc p15, 0, {0}, ", $crn, ", ", $crm, ", ", $op2),
                    out(reg) value, options(nomem, nostack, preserves_flags));
            }
            value
        }};
    }

    /// Writes one CP15 register `MCR p15, 0, Rd, CRn, CRm, op2`; the caller
    /// provides the `unsafe` context and its justification.
    macro_rules! mcr {
        ($crn:literal, $crm:literal, $op2:literal, $value:expr) => {
            asm!(concat!("mcr p15, 0, {0}, ", $crn, ", ", $crm, ", ", $op2),
                in(reg) $value, options(nostack, preserves_flags))
        };
    }

    impl Sctlr {
        /// Reads SCTLR: MRC p15,0,Rd,c1,c0,0.
        #[inline]
        pub fn read() -> Self {
            Sctlr::from_bits_retain(mrc!("c1", "c0", "0"))
        }
        /// Writes SCTLR: MCR p15,0,Rd,c1,c0,0.
        ///
        /// # Safety
        /// Turning the MMU, caches or vectors on or off changes how every
        /// later access and exception behaves; the caller makes sure the code,
        /// data and tables it relies on stay valid across the change.
        #[inline]
        pub unsafe fn write(value: Self) {
            // SAFETY: the caller's contract above.
            unsafe { mcr!("c1", "c0", "0", value.bits()) }
        }
        /// Read-modify-write of SCTLR; returns the value written.
        ///
        /// # Safety
        /// As [`Sctlr::write`].
        #[inline]
        pub unsafe fn modify(f: impl FnOnce(Self) -> Self) -> Self {
            let value = f(Self::read());
            // SAFETY: the caller's contract.
            unsafe { Self::write(value) };
            value
        }
    }

    /// Reads TTBR0: MRC p15,0,Rd,c2,c0,0 (ARM926 TRM §2.3.6, ARM1136 TRM §3.3.10).
    #[inline]
    pub fn ttbr0() -> Ttbr {
        Ttbr(mrc!("c2", "c0", "0"))
    }

    /// Writes TTBR0: MCR p15,0,Rd,c2,c0,0.
    ///
    /// # Safety
    /// With the MMU on, the new table must map the running code, its stack and
    /// data consistently with the old one; the caller owns TLB maintenance.
    #[inline]
    pub unsafe fn set_ttbr0(value: Ttbr) {
        // SAFETY: the caller's contract.
        unsafe { mcr!("c2", "c0", "0", value.0) }
    }

    /// Reads FCSEIDR: MRC p15,0,Rd,c13,c0,0.
    #[inline]
    pub fn fcse_pid() -> FcsePid {
        FcsePid::from_bits(mrc!("c13", "c0", "0"))
    }

    /// Writes FCSEIDR: MCR p15,0,Rd,c13,c0,0.
    ///
    /// # Safety
    /// Every VA below 32 MiB — instruction fetches included — is relocated
    /// from the next instruction on: the code doing this must run above 32 MiB
    /// or be mapped at its relocated address too. On a VIVT cache, data
    /// written below 32 MiB under one PID sits in lines the next PID does
    /// not look up: keep what the kernel writes above 32 MiB, or flush.
    #[inline]
    pub unsafe fn set_fcse_pid(pid: FcsePid) {
        // SAFETY: the caller's contract.
        unsafe { mcr!("c13", "c0", "0", pid.bits()) }
    }

    /// Access to the registers only ARMv6 has. Obtainable only on an ARMv6
    /// CPU ([`Armv6Registers::new`] checks MIDR), so an ARM926 never executes
    /// these encodings.
    #[derive(Clone, Copy, Debug)]
    pub struct Armv6Registers(());

    impl Armv6Registers {
        /// `Err(WrongCpu)` unless the running CPU is ARMv6.
        pub fn new() -> Result<Self, MaintenanceError> {
            let midr = crate::arch::main_id();
            if midr.is_armv6_or_later() {
                Ok(Armv6Registers(()))
            } else {
                Err(MaintenanceError::WrongCpu {
                    backend: "ARMv6 registers",
                    midr,
                })
            }
        }

        /// For the ARMv6 backend, whose constructor already checked MIDR.
        pub(crate) fn checked_by_backend() -> Self {
            Armv6Registers(())
        }

        /// Reads TTBR1: MRC p15,0,Rd,c2,c0,1 (ARM1136 TRM §3.3.10).
        #[inline]
        pub fn ttbr1(self) -> Ttbr {
            Ttbr(mrc!("c2", "c0", "1"))
        }
        /// Writes TTBR1: MCR p15,0,Rd,c2,c0,1.
        ///
        /// # Safety
        /// As [`set_ttbr0`], for the addresses TTBCR sends to TTBR1.
        #[inline]
        pub unsafe fn set_ttbr1(self, value: Ttbr) {
            // SAFETY: the caller's contract.
            unsafe { mcr!("c2", "c0", "1", value.0) }
        }
        /// Reads TTBCR: MRC p15,0,Rd,c2,c0,2 (ARM1136 TRM §3.3.11).
        #[inline]
        pub fn ttbcr(self) -> Ttbcr {
            Ttbcr(mrc!("c2", "c0", "2"))
        }
        /// Writes TTBCR: MCR p15,0,Rd,c2,c0,2.
        ///
        /// # Safety
        /// Moves the TTBR0/TTBR1 split; both tables must be valid for it.
        #[inline]
        pub unsafe fn set_ttbcr(self, value: Ttbcr) {
            // SAFETY: the caller's contract.
            unsafe { mcr!("c2", "c0", "2", value.0) }
        }
        /// Reads CONTEXTIDR: MRC p15,0,Rd,c13,c0,1 (ARM1136 TRM §3.3.28).
        #[inline]
        pub fn context_id(self) -> ContextId {
            ContextId(mrc!("c13", "c0", "1"))
        }
        /// Writes CONTEXTIDR: MCR p15,0,Rd,c13,c0,1.
        ///
        /// # Safety
        /// Changes the ASID non-global translations match from the next
        /// instruction on (after an ISB); TTBR0 must be switched consistently.
        #[inline]
        pub unsafe fn set_context_id(self, value: ContextId) {
            // SAFETY: the caller's contract.
            unsafe { mcr!("c13", "c0", "1", value.0) }
        }
        /// Reads the Watchpoint Fault Address Register: MRC p15,0,Rd,c6,c0,1
        /// (ARM1136 TRM §3.3.23).
        #[inline]
        pub fn watchpoint_fault_address(self) -> u32 {
            mrc!("c6", "c0", "1")
        }
        /// Reads the Auxiliary Control Register: MRC p15,0,Rd,c1,c0,1 (ARM1136 TRM §3.3.7).
        #[inline]
        pub fn actlr(self) -> Actlr {
            Actlr::from_bits_retain(mrc!("c1", "c0", "1"))
        }
        /// Writes the Auxiliary Control Register: MCR p15,0,Rd,c1,c0,1.
        ///
        /// # Safety
        /// Changing CZ (cache size) with the D-cache enabled loses track of
        /// lines: clean and invalidate the caches and disable them first.
        #[inline]
        pub unsafe fn set_actlr(self, value: Actlr) {
            // SAFETY: the caller's contract.
            unsafe { mcr!("c1", "c0", "1", value.bits()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttbr_alignment_follows_the_split() {
        assert_eq!(
            Ttbr::new(PhysAddr(0x4000), 0, TableWalk::empty()),
            Ok(Ttbr(0x4000))
        );
        assert_eq!(
            Ttbr::new(PhysAddr(0x2000), 0, TableWalk::empty()),
            Err(MisalignedTableBase {
                base: PhysAddr(0x2000),
                required: 0x4000
            })
        );
        // N = 2: a 4 KiB table, 4 KiB aligned.
        let t = Ttbr::new(PhysAddr(0x1000), 2, TableWalk::C | TableWalk::RGN_WB).unwrap();
        assert_eq!(
            (t.base(), t.walk()),
            (PhysAddr(0x1000), TableWalk::C | TableWalk::RGN_WB)
        );
        assert_eq!(Ttbcr::with_split(2).ttbr1_boundary(), Some(0x4000_0000));
        assert_eq!(Ttbcr::with_split(0).ttbr1_boundary(), None);
    }

    #[test]
    fn fcse_relocates_only_the_low_32_mib() {
        let pid = FcsePid::new(3).unwrap();
        assert_eq!(pid.bits(), 0x0600_0000);
        assert_eq!(pid.relocate(0x0000_8000), 0x0600_8000);
        assert_eq!(pid.relocate(0x0200_0000), 0x0200_0000);
        assert_eq!(FcsePid::from_bits(pid.bits()), pid);
        assert_eq!(FcsePid::new(128), None);
    }

    #[test]
    fn context_id_fields() {
        let c = ContextId::new(0x1234, 0x56);
        assert_eq!((c.asid(), c.procid(), c.0), (0x56, 0x1234, 0x0012_3456));
    }

    #[test]
    fn sctlr_keeps_unknown_bits() {
        let s = Sctlr::from_bits_retain(0x0005_0078) | Sctlr::XP;
        assert_eq!(s.bits(), 0x0085_0078);
        assert!(s.contains(Sctlr::XP) && !s.contains(Sctlr::M));
    }

    #[test]
    fn ttbcr_reads_pd0_and_pd1_apart_from_the_split() {
        // ARM1176 TRM, c2 TTBCR: N in [2:0], PD0 bit 4, PD1 bit 5.
        for n in 0..8u32 {
            for (bits, pd0, pd1) in [
                (0, false, false),
                (1 << 4, true, false),
                (1 << 5, false, true),
                (3 << 4, true, true),
            ] {
                let t = Ttbcr(n | bits);
                assert_eq!(
                    (t.n(), t.walks_disabled_ttbr0(), t.walks_disabled_ttbr1()),
                    (n as u8, pd0, pd1),
                    "{:#x}",
                    t.0
                );
            }
        }
        // Other bits say nothing about the walks.
        let other = Ttbcr(!0x37);
        assert!(!other.walks_disabled_ttbr0() && !other.walks_disabled_ttbr1());
    }

    #[test]
    fn fcse_pids_round_trip_and_relocate_the_low_32_mib() {
        for pid in [0u8, 1, 2, 64, 127] {
            let p = FcsePid::new(pid).unwrap();
            assert_eq!(p.pid(), pid);
            assert_eq!(FcsePid::from_bits(p.bits()).pid(), pid);
            assert_eq!(
                p.relocate(0x0001_2344),
                0x0001_2344 + u32::from(pid) * (32 << 20)
            );
            assert_eq!(p.relocate(32 << 20), 32 << 20);
        }
        assert_eq!(FcsePid::new(128), None);
    }
}
