//! Typed memory types and access permissions, and how each architecture
//! spells them in descriptor bits ([`HwAttrs`]).
//!
//! ```text
//!   Attributes { memory, access, execute, global }   what the kernel means
//!        │ to_hw(arch)               ▲ from_hw(arch)
//!        ▼                           │
//!   HwAttrs { tex, c, b, ap[4], apx, xn, not_global, shareable }   the bits
//! ```
//!
//! What an architecture cannot express is an error ([`DescriptorError`]) or
//! one of the documented fallbacks below — never a silently different bit:
//! - ARMv5 has no Device type: [`MemoryType::Device`] is encoded as strongly
//!   ordered (C=0, B=0), which is stricter, never weaker.
//! - ARMv5 has no execute-never bit: [`Execute::Never`] is an error there,
//!   [`Execute::NeverIfSupported`] is the explicit "XN where the CPU has it".
//! - ARMv5 has no nG bit (its TLB has no ASIDs): `global` is not encoded;
//!   such entries are global, and the context switch flushes the TLB instead.
//! - ARMv5 kernel-read-only pages rely on SCTLR.S = 1, R = 0, which vacmm's
//!   MMU bring-up sets; "kernel and user read-only" needs R = 1 there and is
//!   an error.
//!
//! [`MemoryType::Bufferable`] is ARMv5's and Linux's name for uncached,
//! write-buffered memory, the type `make_coherent` gives aliased pages; it is
//! the same encoding as [`MemoryType::NormalNonCacheable`] on both
//! architectures, and decoding returns the latter.

use core::fmt;

use super::{Arch, DescriptorError};

/// How memory behind a mapping is cached and ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryType {
    /// Cached, write-back (ARMv5 C=1 B=1; ARMv6 TEX=000 C=1 B=1).
    NormalWriteBack,
    /// Cached, write-through (C=1 B=0 on both).
    NormalWriteThrough,
    /// Uncached, writes may be buffered (ARMv5 C=0 B=1; ARMv6 TEX=001 C=0 B=0).
    NormalNonCacheable,
    /// Uncached, buffered: the same encoding as
    /// [`NormalNonCacheable`](Self::NormalNonCacheable) (see module docs).
    Bufferable,
    /// Device registers (ARMv6 shared device TEX=000 C=0 B=1; ARMv5: encoded
    /// as strongly ordered, see module docs).
    Device,
    /// Uncached, unbuffered, strictly ordered (C=0 B=0, TEX=000).
    StronglyOrdered,
}

impl MemoryType {
    /// Every memory type, for tests and tables.
    pub const ALL: [MemoryType; 6] = [
        MemoryType::NormalWriteBack,
        MemoryType::NormalWriteThrough,
        MemoryType::NormalNonCacheable,
        MemoryType::Bufferable,
        MemoryType::Device,
        MemoryType::StronglyOrdered,
    ];

    /// The type that decoding this type's encoding on `arch` gives back.
    pub fn as_encoded_on(self, arch: Arch) -> MemoryType {
        match (self, arch) {
            (MemoryType::Bufferable, _) => MemoryType::NormalNonCacheable,
            (MemoryType::Device, Arch::Armv5) => MemoryType::StronglyOrdered,
            (other, _) => other,
        }
    }

    /// Whether the CPU may hold this memory in its caches.
    pub fn is_cached(self) -> bool {
        matches!(
            self,
            MemoryType::NormalWriteBack | MemoryType::NormalWriteThrough
        )
    }

    /// (TEX, C, B) on `arch`.
    fn bits(self, arch: Arch) -> (u8, bool, bool) {
        match (self, arch) {
            (MemoryType::NormalWriteBack, _) => (0, true, true),
            (MemoryType::NormalWriteThrough, _) => (0, true, false),
            (MemoryType::NormalNonCacheable | MemoryType::Bufferable, Arch::Armv5) => {
                (0, false, true)
            }
            (MemoryType::NormalNonCacheable | MemoryType::Bufferable, Arch::Armv6) => {
                (1, false, false)
            }
            (MemoryType::Device, Arch::Armv6) => (0, false, true),
            (MemoryType::Device | MemoryType::StronglyOrdered, _) => (0, false, false),
        }
    }

    fn from_bits(tex: u8, c: bool, b: bool, arch: Arch) -> Result<Self, DescriptorError> {
        Ok(match (arch, tex, c, b) {
            (_, 0, true, true) => MemoryType::NormalWriteBack,
            (_, 0, true, false) => MemoryType::NormalWriteThrough,
            (_, 0, false, false) => MemoryType::StronglyOrdered,
            (Arch::Armv5, 0, false, true) => MemoryType::NormalNonCacheable,
            (Arch::Armv6, 0, false, true) => MemoryType::Device,
            (Arch::Armv6, 1, false, false) => MemoryType::NormalNonCacheable,
            _ => return Err(DescriptorError::UnknownMemoryType { tex, c, b, arch }),
        })
    }
}

/// Who may read and write a mapping. Only combinations some ARM
/// architecture can express exist (there is no "user writes, kernel reads").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Kernel read/write, no user access.
    KernelRw,
    /// Kernel read-only, no user access (ARMv5: needs SCTLR.S = 1).
    KernelRo,
    /// Kernel and user read/write.
    UserRw,
    /// User read-only, kernel read/write.
    UserRoKernelRw,
    /// Kernel and user read-only (not expressible on ARMv5 with S = 1).
    UserRo,
}

impl Access {
    /// Every access combination.
    pub const ALL: [Access; 5] = [
        Access::KernelRw,
        Access::KernelRo,
        Access::UserRw,
        Access::UserRoKernelRw,
        Access::UserRo,
    ];

    /// Whether user mode may read.
    pub fn user_readable(self) -> bool {
        matches!(
            self,
            Access::UserRw | Access::UserRoKernelRw | Access::UserRo
        )
    }

    /// Whether user mode may write.
    pub fn user_writable(self) -> bool {
        self == Access::UserRw
    }

    /// Whether the kernel may write.
    pub fn kernel_writable(self) -> bool {
        matches!(
            self,
            Access::KernelRw | Access::UserRw | Access::UserRoKernelRw
        )
    }

    /// (APX, AP\[1:0\]) on `arch`.
    fn bits(self, arch: Arch) -> Result<(bool, u8), DescriptorError> {
        Ok(match (self, arch) {
            (Access::KernelRo, Arch::Armv5) => (false, 0b00),
            (Access::KernelRw, _) => (false, 0b01),
            (Access::UserRoKernelRw, _) => (false, 0b10),
            (Access::UserRw, _) => (false, 0b11),
            (Access::KernelRo, Arch::Armv6) => (true, 0b01),
            (Access::UserRo, Arch::Armv6) => (true, 0b10),
            (Access::UserRo, Arch::Armv5) => {
                return Err(DescriptorError::NotExpressible {
                    what: "kernel and user read-only (needs SCTLR.R = 1; vacmm uses S = 1)",
                    arch,
                });
            }
        })
    }

    fn from_bits(apx: bool, ap: u8, arch: Arch) -> Result<Self, DescriptorError> {
        Ok(match (arch, apx, ap) {
            (Arch::Armv5, false, 0b00) => Access::KernelRo,
            (_, false, 0b01) => Access::KernelRw,
            (_, false, 0b10) => Access::UserRoKernelRw,
            (_, false, 0b11) => Access::UserRw,
            (Arch::Armv6, true, 0b01) => Access::KernelRo,
            // APX=1 AP=11 is the ARMv6K spelling of the same permission.
            (Arch::Armv6, true, 0b10 | 0b11) => Access::UserRo,
            _ => return Err(DescriptorError::UnknownAccess { apx, ap, arch }),
        })
    }
}

/// Whether instructions may be fetched from a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Execute {
    /// Executable.
    Allow,
    /// Execute-never; an error on ARMv5, which cannot express it.
    Never,
    /// Execute-never where the CPU has the XN bit (ARMv6), executable on ARMv5.
    NeverIfSupported,
}

/// What a mapping means, independent of the architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// Cacheability and ordering.
    pub memory: MemoryType,
    /// Read/write permissions.
    pub access: Access,
    /// Instruction fetch permission.
    pub execute: Execute,
    /// Global (every address space) rather than tagged with an ASID
    /// (ARMv6 nG = 0). Not encoded on ARMv5 (see module docs).
    pub global: bool,
}

impl Attributes {
    /// Kernel data: write-back, kernel read/write, not executable where the
    /// CPU can say so, global.
    pub const KERNEL_DATA: Attributes = Attributes {
        memory: MemoryType::NormalWriteBack,
        access: Access::KernelRw,
        execute: Execute::NeverIfSupported,
        global: true,
    };

    /// Kernel code and data: write-back, kernel read/write, executable, global.
    pub const KERNEL_RWX: Attributes = Attributes {
        memory: MemoryType::NormalWriteBack,
        access: Access::KernelRw,
        execute: Execute::Allow,
        global: true,
    };

    /// Device registers: kernel read/write, never executable where possible.
    pub const DEVICE: Attributes = Attributes {
        memory: MemoryType::Device,
        access: Access::KernelRw,
        execute: Execute::NeverIfSupported,
        global: true,
    };

    /// User data: write-back, user read/write, not executable where possible,
    /// tagged with the address space's ASID on ARMv6.
    pub const USER_DATA: Attributes = Attributes {
        memory: MemoryType::NormalWriteBack,
        access: Access::UserRw,
        execute: Execute::NeverIfSupported,
        global: false,
    };

    /// The same attributes with another memory type.
    pub const fn with_memory(self, memory: MemoryType) -> Self {
        Attributes { memory, ..self }
    }

    /// The same attributes with other permissions.
    pub const fn with_access(self, access: Access) -> Self {
        Attributes { access, ..self }
    }

    /// The same attributes with another execute permission.
    pub const fn with_execute(self, execute: Execute) -> Self {
        Attributes { execute, ..self }
    }

    /// The attributes decoding this value's encoding on `arch` gives back.
    pub fn as_encoded_on(self, arch: Arch) -> Attributes {
        Attributes {
            memory: self.memory.as_encoded_on(arch),
            access: self.access,
            execute: match (self.execute, arch) {
                (Execute::Allow, _) | (_, Arch::Armv5) => Execute::Allow,
                (Execute::Never | Execute::NeverIfSupported, Arch::Armv6) => Execute::Never,
            },
            global: self.global || arch == Arch::Armv5,
        }
    }

    /// The descriptor bits for these attributes on `arch`.
    pub fn to_hw(self, arch: Arch) -> Result<HwAttrs, DescriptorError> {
        let (tex, c, b) = self.memory.bits(arch);
        let (apx, ap) = self.access.bits(arch)?;
        let xn = match (self.execute, arch) {
            (Execute::Allow, _) | (Execute::NeverIfSupported, Arch::Armv5) => false,
            (Execute::Never | Execute::NeverIfSupported, Arch::Armv6) => true,
            (Execute::Never, Arch::Armv5) => {
                return Err(DescriptorError::NotExpressible {
                    what: "execute-never (ARMv5 has no XN bit; use Execute::NeverIfSupported)",
                    arch,
                });
            }
        };
        Ok(HwAttrs {
            tex,
            c,
            b,
            ap: [ap; 4],
            apx,
            xn,
            not_global: arch == Arch::Armv6 && !self.global,
            shareable: false,
        })
    }

    /// The attributes the descriptor bits `hw` mean on `arch`.
    pub fn from_hw(hw: HwAttrs, arch: Arch) -> Result<Attributes, DescriptorError> {
        if hw.ap.iter().any(|&ap| ap != hw.ap[0]) {
            return Err(DescriptorError::MixedSubpagePermissions { ap: hw.ap });
        }
        Ok(Attributes {
            memory: MemoryType::from_bits(hw.tex, hw.c, hw.b, arch)?,
            access: Access::from_bits(hw.apx, hw.ap[0], arch)?,
            execute: if hw.xn {
                Execute::Never
            } else {
                Execute::Allow
            },
            global: !hw.not_global,
        })
    }
}

/// The attribute bits of a section or page descriptor, as the hardware has
/// them. Fields an architecture or format lacks must be zero / `false`
/// (encoding checks this).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HwAttrs {
    /// TEX\[2:0\].
    pub tex: u8,
    /// C (cacheable).
    pub c: bool,
    /// B (bufferable).
    pub b: bool,
    /// AP\[1:0\] per 1 KiB subpage (ARMv5 small pages) or 16 KiB subpage
    /// (ARMv5 large pages); sections and every ARMv6 format have one AP,
    /// stored in all four.
    pub ap: [u8; 4],
    /// APX (ARMv6).
    pub apx: bool,
    /// XN (ARMv6).
    pub xn: bool,
    /// nG (ARMv6): the entry belongs to the current ASID only.
    pub not_global: bool,
    /// S (ARMv6): shareable.
    pub shareable: bool,
}

impl fmt::Display for HwAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TEX={:03b} C={} B={} AP={:?} APX={} XN={} nG={} S={}",
            self.tex,
            u8::from(self.c),
            u8::from(self.b),
            self.ap,
            u8::from(self.apx),
            u8::from(self.xn),
            u8::from(self.not_global),
            u8::from(self.shareable)
        )
    }
}

/// The kind of access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultAccess {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Execute,
}
