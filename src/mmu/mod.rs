//! The translation layer: descriptor formats, translation tables, MMU
//! bring-up and the per-address-space keys (ARMv5 FCSE PIDs, ARMv6 ASIDs)
//! that let caches and TLBs keep address spaces apart.
//!
//! ```text
//!   attrs   — MemoryType / Access / Execute ⇄ the bits of each architecture
//!   desc    — L1 / L2 descriptors, encoded and decoded exactly
//!   table   — PageTable: map / unmap / protect / translate over a
//!             TableMemory (how the kernel reaches table frames) and a
//!             TableFrames allocator; every descriptor write is cleaned to
//!             memory, every stale TLB entry is a #[must_use] TlbFlush
//!   keys    — KeyAllocator: ASIDs or FCSE PIDs with generations
//!   switch  — ContextSwitcher: the one context-switch entry point, which does
//!             what the cache configuration needs and reports it
//!   enable  — MMU bring-up (target only)
//! ```
//!
//! ## Example
//!
//! ```
//! use vacmm::addr::PhysAddr;
//! use vacmm::mmu::{Arch, Attributes, Execute, L2Descriptor};
//!
//! // A user data page on ARMv6: nG, AP=11, C, B, extended small page, XN.
//! let attrs = Attributes::USER_DATA.to_hw(Arch::Armv6).unwrap();
//! let raw = L2Descriptor::Small { base: PhysAddr(0x0040_0000), attrs }
//!     .encode(Arch::Armv6)
//!     .unwrap();
//! assert_eq!(raw, 0x0040_083f);
//! assert_eq!(L2Descriptor::decode(raw, Arch::Armv6), Ok(L2Descriptor::Small { base: PhysAddr(0x0040_0000), attrs }));
//!
//! // ARMv5 has no XN bit: "never execute" is refused, not silently dropped…
//! assert!(Attributes::USER_DATA.with_execute(Execute::Never).to_hw(Arch::Armv5).is_err());
//! // …and "XN where the CPU has it" is the explicit way to ask for the best effort.
//! assert!(Attributes::USER_DATA.to_hw(Arch::Armv5).is_ok());
//! ```

mod attrs;
mod desc;
#[cfg(target_arch = "arm")]
mod enable;
mod keys;
mod slots;
mod switch;
mod table;

use core::fmt;

pub use attrs::{Access, Attributes, Execute, FaultAccess, HwAttrs, MemoryType};
pub use desc::{L1Descriptor, L2Descriptor};
#[cfg(target_arch = "arm")]
pub use enable::{MmuConfig, MmuError, enable_mmu};
pub use keys::{KeyAllocator, KeyError, KeyOutcome, SpaceKey};
pub use switch::{
    ContextSwitcher, SwitchCounters, SwitchError, SwitchPolicy, SwitchReport, TranslationRegisters,
};
pub use table::{
    FCSE_WINDOW_BYTES, PageSize, PageSlot, PageTable, TableError, TableFrames, TableMemory,
    TlbFlush, Translation, fcse_modified_va, vivt_aliases, walk,
};

use crate::cache::CacheInfo;

/// Which descriptor format the MMU uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// ARMv5 (ARM926EJ-S): subpage AP bits, no XN, nG or APX.
    Armv5,
    /// ARMv6 with SCTLR.XP = 1 (ARM1136, ARM1176): extended small pages,
    /// XN, nG, APX, S; subpages off.
    Armv6,
}

impl Arch {
    /// The format for the CPU `info` describes.
    pub fn of(info: &CacheInfo) -> Arch {
        if info.is_armv6() {
            Arch::Armv6
        } else {
            Arch::Armv5
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::Armv5 => "ARMv5",
            Arch::Armv6 => "ARMv6",
        })
    }
}

/// A descriptor or attribute that cannot be encoded or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DescriptorError {
    /// The architecture has no way to say this.
    NotExpressible {
        /// What was asked for.
        what: &'static str,
        /// The architecture.
        arch: Arch,
    },
    /// A field this descriptor format on this architecture does not have was set.
    NotInFormat {
        /// The field.
        field: &'static str,
        /// The architecture.
        arch: Arch,
    },
    /// A base address is not aligned to what its descriptor requires.
    MisalignedBase {
        /// Which descriptor.
        what: &'static str,
        /// The base given.
        base: crate::addr::PhysAddr,
        /// The alignment required, in bytes.
        alignment: u32,
    },
    /// A field's value does not fit.
    FieldOutOfRange {
        /// The field.
        field: &'static str,
        /// The value given.
        value: u32,
        /// The largest value allowed.
        max: u32,
    },
    /// A raw entry uses an encoding that is reserved (or that vacmm never
    /// writes, such as ARMv5 tiny pages).
    Reserved {
        /// The raw entry.
        raw: u32,
        /// The architecture.
        arch: Arch,
    },
    /// TEX/C/B bits that are not one of [`MemoryType`]'s encodings.
    UnknownMemoryType {
        /// TEX\[2:0\].
        tex: u8,
        /// C.
        c: bool,
        /// B.
        b: bool,
        /// The architecture.
        arch: Arch,
    },
    /// APX/AP bits that are not one of [`Access`]'s encodings (no access,
    /// or reserved).
    UnknownAccess {
        /// APX.
        apx: bool,
        /// AP\[1:0\].
        ap: u8,
        /// The architecture.
        arch: Arch,
    },
    /// An ARMv5 page whose subpages have different permissions.
    MixedSubpagePermissions {
        /// AP of each subpage.
        ap: [u8; 4],
    },
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DescriptorError::NotExpressible { what, arch } => {
                write!(f, "the {arch} descriptor format cannot express {what}")
            }
            DescriptorError::NotInFormat { field, arch } => {
                write!(f, "the {arch} descriptor format has no {field} here")
            }
            DescriptorError::MisalignedBase {
                what,
                base,
                alignment,
            } => write!(
                f,
                "the {what} base {base} is not aligned to {alignment:#x} as its descriptor requires"
            ),
            DescriptorError::FieldOutOfRange { field, value, max } => write!(
                f,
                "the {field} field's value {value} is out of range (at most {max})"
            ),
            DescriptorError::Reserved { raw, arch } => write!(
                f,
                "the descriptor {raw:#010x} uses an encoding reserved on {arch} (or one vacmm \
                 never writes)"
            ),
            DescriptorError::UnknownMemoryType { tex, c, b, arch } => write!(
                f,
                "the bits TEX={tex:#05b} C={} B={} are not a memory type vacmm knows on {arch}",
                u8::from(c),
                u8::from(b)
            ),
            DescriptorError::UnknownAccess { apx, ap, arch } => write!(
                f,
                "the access bits APX={} AP={ap:#04b} mean no access or are reserved on {arch}: \
                 vacmm maps no page that way",
                u8::from(apx)
            ),
            DescriptorError::MixedSubpagePermissions { ap } => {
                write!(
                    f,
                    "the subpages of this ARMv5 page have different permissions (AP {}, {}, {}, \
                     {}): vacmm gives a page one permission",
                    ap[0], ap[1], ap[2], ap[3]
                )
            }
        }
    }
}

impl core::error::Error for DescriptorError {}

#[cfg(test)]
mod tests;
