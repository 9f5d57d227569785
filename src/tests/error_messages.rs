//! Every public error's message, one value of each variant (issue 19:
//! "errors carry their values, and a reader understands them").
//!
//! Each message is checked mechanically: it is one line, starts with a
//! lowercase letter and does not end with a full stop (the Rust convention
//! for error messages, which are often embedded in other sentences), shows
//! no `Debug` output (braces, `Some(`, `None`, type names such as
//! `VirtAddr(` or CamelCase variant names), and shows every number the
//! value carries, in decimal, hex or binary.
//!
//! All messages are also kept in `docs/error-messages.txt`, one a line as
//! `Type::Variant: message`, so a reviewer reads them in one place and a
//! change shows in the diff. `VACMM_BLESS=1` rewrites the file from the
//! messages instead of comparing.
//!
//! Every variant is listed once in a `variants!` invocation, whose match has
//! no wildcard: a new variant does not compile until it is listed here, and
//! a listed variant without a case fails the test.
//!
//! Not here: `mmu::enable::MmuError`, which exists only on ARM targets
//! (`cfg(target_arch = "arm")`) and so cannot be built by a host test.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use crate::addr::{AlignError, PhysAddr, RangeError, VirtAddr, VirtRange};
use crate::arch::abort::NotALoadOrStore;
use crate::cache::{
    CacheKind, CpuPart, CtrError, GeometryError, InfoError, MainId, MaintenanceError, PlanError,
};
use crate::coherence::dma::{DmaError, DmaOwner};
use crate::coherence::shared::DestroyRefused;
use crate::coherence::{
    AccessError, CoherenceError, EngineConfigError, ExitRefused, PolicyAnswer, WindowError,
};
use crate::mm::config::{ConfigError, KernelRange};
use crate::mm::frames::{FrameError, SpaceId};
use crate::mm::object::{ObjectError, ObjectId, ObjectMapping};
use crate::mm::space::{FaultAccess, Protection, SpaceError};
use crate::mm::unmapped::MmapError;
use crate::mmu::{
    Arch, DescriptorError, KeyError, PageSize, SwitchError, SwitchPolicy, TableError,
};
use crate::sim::{ModelError, SimError, Violation, ViolationKind, Writer};

/// A value an error carries, which its message must show.
enum Val {
    /// A number: shown in decimal, hex (`0x…`, any padding) or binary
    /// (`0b…`), or as a whole number of KiB, MiB or GiB.
    Num(u64),
    /// Text shown verbatim.
    Text(String),
    /// Several values (an id's slot and generation, a range's bounds).
    Many(Vec<Val>),
}

macro_rules! from_num {
    ($($t:ty),*) => {$(
        impl From<$t> for Val {
            fn from(n: $t) -> Val {
                Val::Num(n as u64)
            }
        }
    )*};
}
from_num!(u8, u16, u32, u64, usize);

impl From<bool> for Val {
    /// Flags (the C and B bits) are printed as 0 or 1.
    fn from(b: bool) -> Val {
        Val::Num(u64::from(b))
    }
}
impl From<&'static str> for Val {
    fn from(s: &'static str) -> Val {
        Val::Text(s.to_string())
    }
}
impl From<VirtAddr> for Val {
    fn from(a: VirtAddr) -> Val {
        Val::Num(a.as_u32().into())
    }
}
impl From<PhysAddr> for Val {
    fn from(a: PhysAddr) -> Val {
        Val::Num(a.as_u32().into())
    }
}
impl From<SpaceId> for Val {
    /// The kernel's space is named in words ("the kernel's address space").
    fn from(id: SpaceId) -> Val {
        if id == SpaceId::KERNEL {
            Val::Many(vec![])
        } else {
            Val::Many(vec![id.slot().into(), id.generation().into()])
        }
    }
}
impl From<crate::sim::SpaceId> for Val {
    fn from(id: crate::sim::SpaceId) -> Val {
        id.0.into()
    }
}
impl From<ObjectId> for Val {
    fn from(id: ObjectId) -> Val {
        Val::Many(vec![id.index().into(), id.generation().into()])
    }
}
impl From<VirtRange> for Val {
    /// A range is shown by its bounds (its length follows from them).
    fn from(r: VirtRange) -> Val {
        let start = u64::from(r.start().as_u32());
        Val::Many(vec![start.into(), (start + r.len()).into()])
    }
}
impl From<MainId> for Val {
    fn from(m: MainId) -> Val {
        m.raw().into()
    }
}
impl From<CpuPart> for Val {
    fn from(p: CpuPart) -> Val {
        match p {
            CpuPart::Other { implementer, part } => {
                Val::Many(vec![implementer.into(), part.into()])
            }
            named => Val::Text(named.to_string()),
        }
    }
}
impl From<Arch> for Val {
    fn from(a: Arch) -> Val {
        Val::Text(a.to_string())
    }
}
impl From<ObjectMapping> for Val {
    fn from(m: ObjectMapping) -> Val {
        Val::Many(vec![
            m.space.into(),
            m.start.into(),
            m.first_page.into(),
            m.pages.into(),
        ])
    }
}
impl From<Vec<Val>> for Val {
    fn from(v: Vec<Val>) -> Val {
        Val::Many(v)
    }
}

macro_rules! vals {
    ($($x:expr),* $(,)?) => { vec![$(Val::from($x)),*] };
}

/// The variants of an error type, listed once (see the module docs).
trait Variants {
    const TYPE: &'static str;
    /// Every variant's name; `[""]` for a struct.
    const ALL: &'static [&'static str];
    fn variant(&self) -> &'static str;
}

macro_rules! variants {
    ($ty:ident: $($v:ident),+ $(,)?) => {
        impl Variants for $ty {
            const TYPE: &'static str = stringify!($ty);
            const ALL: &'static [&'static str] = &[$(stringify!($v)),+];
            fn variant(&self) -> &'static str {
                match self {
                    $($ty::$v { .. } => stringify!($v),)+
                }
            }
        }
    };
    (struct $ty:ident) => {
        impl Variants for $ty {
            const TYPE: &'static str = stringify!($ty);
            const ALL: &'static [&'static str] = &[""];
            fn variant(&self) -> &'static str {
                ""
            }
        }
    };
}

variants!(AlignError: NotPowerOfTwo, PastTop);
variants!(RangeError: EndBeforeStart, WrapsPast4GiB);
variants!(PlanError: LineNotPowerOfTwo);
variants!(GeometryError: NotPowerOfTwo, LineOutOfRange, TooLarge, NoSets);
variants!(CtrError: NotImplemented, Armv7Format, Geometry);
variants!(InfoError: Ctr, NoDataCache);
variants!(MaintenanceError: NotOnThisCpu, SetWayOutOfRange, WrongCpu, UnsupportedCore);
variants!(FrameError: Misaligned, MisalignedVa, WrapsPast4GiB, BadColourCount,
    ColourOutOfRange, OutOfRange, NoFrameOfColour, OutOfMemory, NotEnoughFrames, MetadataAllocFailed,
    NotAllocated, AlreadyMapped, NotMapped, StillMapped);
variants!(ObjectError: NoSuchObject, PageOutOfRange, PagePresent, PageAbsent, NoSuchMapping,
    StillMapped, BadWindow, MetadataAllocFailed);
variants!(MmapError: ZeroLength, TooLarge, UnalignedOffset, FixedWithoutAddress,
    FixedUnaligned, FixedOutOfRange, ColourMismatch, NoRoom);
variants!(SpaceError: Mmap, Unaligned, ZeroLength, OutOfUserSpace, Hole, OffsetOverflow,
    NoMapping, AccessDenied, BeyondObject, BrkRefused, Frame, Object, Table,
    MetadataAllocFailed, Config, TooManyMappings);
variants!(ConfigError: MinAddrUnaligned, TaskSizeUnaligned, EmptyUserSpace, MmapBaseUnaligned,
    MmapBaseOutsideUserSpace, NoRoomAboveMmapBase, ColourSpanBelowPage,
    ColourSpanNotPageMultiple, ColourSpanNotPowerOfTwo, ColourSpanTooLarge,
    ColourSpanBelowCacheAlignment, StackGuardGapUnaligned, StackGuardGapTooLarge,
    NoMappingsAllowed, BeyondFcseWindow, OverlapsKernel, LinearMapMismatch);
variants!(KeyError: BadRange);
variants!(DescriptorError: NotExpressible, NotInFormat, MisalignedBase, FieldOutOfRange,
    Reserved, UnknownMemoryType, UnknownAccess, MixedSubpagePermissions);
variants!(TableError: Unaligned, AlreadyMapped, NotMapped, WouldSplitSection,
    WouldSplitLargePage, SizeMismatch, OutOfFrames, MisalignedTable, ForeignEntry,
    WindowInUse, Memory, PidOutOfRange, Descriptor, Maintenance, ReservedSlot,
    MetadataAllocFailed);
variants!(SwitchError: Table, Maintenance);
variants!(struct AccessError);
variants!(struct NotALoadOrStore);
variants!(CoherenceError: Space, Frame, Table, Access, Window, Unaligned, BadLength, Switch,
    StillRunning, SwitcherMismatch, CopyOntoItself, KernelTableNeeded);
variants!(EngineConfigError: Switcher, Policy);
variants!(WindowError: Misaligned, OutOfRange, Busy, Table);
variants!(struct ExitRefused);
variants!(struct DestroyRefused);
variants!(DmaError: Empty, WrapsPast4GiB, AlreadyMapped, NotMapped, WrongOwner, SharesLine,
    NotDeclared, EmptyBuffer, BadLayout, AllocationFailed, NoMemory);
variants!(SimError: Unmapped, OutOfMemory, BadAccess, NoSuchSpace, ReadOnly, NoSuchLine);
variants!(ModelError: Geometry, LineTooLong, MemoryRange);

/// The oracle's report of an incoherence is listed by its kind.
impl Variants for Violation {
    const TYPE: &'static str = "Violation";
    const ALL: &'static [&'static str] = &[
        "StaleRead",
        "StaleReadAfterDma",
        "CrossSpaceLeak",
        "RemappedLineHit",
        "DirtyLineDiscarded",
        "StaleWriteBack",
        "StaleFetch",
        "DmaReadStaleMemory",
        "StaleTableWalk",
        "StaleTlbEntry",
        "LiveAlias",
    ];
    fn variant(&self) -> &'static str {
        match self.kind {
            ViolationKind::StaleRead => "StaleRead",
            ViolationKind::StaleReadAfterDma => "StaleReadAfterDma",
            ViolationKind::CrossSpaceLeak { .. } => "CrossSpaceLeak",
            ViolationKind::RemappedLineHit { .. } => "RemappedLineHit",
            ViolationKind::DirtyLineDiscarded => "DirtyLineDiscarded",
            ViolationKind::StaleWriteBack => "StaleWriteBack",
            ViolationKind::StaleFetch => "StaleFetch",
            ViolationKind::DmaReadStaleMemory => "DmaReadStaleMemory",
            ViolationKind::StaleTableWalk => "StaleTableWalk",
            ViolationKind::StaleTlbEntry { .. } => "StaleTlbEntry",
            ViolationKind::LiveAlias { .. } => "LiveAlias",
        }
    }
}

/// One message and the values it must show.
struct Case {
    label: String,
    message: String,
    values: Vec<Val>,
}

#[derive(Default)]
struct Book {
    cases: Vec<Case>,
    /// Type → its variants, and those seen.
    types: BTreeMap<&'static str, (&'static [&'static str], BTreeSet<&'static str>)>,
}

impl Book {
    fn add<E: Variants + Display>(&mut self, e: E, values: Vec<Val>) {
        let variant = e.variant();
        let label = if variant.is_empty() {
            E::TYPE.to_string()
        } else {
            format!("{}::{variant}", E::TYPE)
        };
        let entry = self
            .types
            .entry(E::TYPE)
            .or_insert_with(|| (E::ALL, BTreeSet::new()));
        entry.1.insert(variant);
        self.cases.push(Case {
            label,
            message: e.to_string(),
            values,
        });
    }

    /// The golden file's text.
    fn golden(&self) -> String {
        let mut text = String::from(
            "# Every public error message of vacmm, one a line (src/tests/error_messages.rs;\n\
             # VACMM_BLESS=1 cargo test -p vacmm --features sim --lib error_messages rewrites it).\n",
        );
        for case in &self.cases {
            text.push_str(&format!("{}: {}\n", case.label, case.message));
        }
        text
    }
}

/// Words with an inner capital that are not `Debug` output: units, and the
/// API names a message points the reader to (what to call instead).
const CAMEL_CASE_ALLOWED: &[&str] = &[
    "KiB",
    "MiB",
    "GiB",
    // EngineConfigError names the switcher to use by its constructor.
    "SwitchPolicy",
    "VivtFlush",
    "VivtFcse",
    // DescriptorError::NotExpressible names the attribute to ask for instead.
    "NeverIfSupported",
    // ConfigError::LinearMapMismatch names the two places the offset is given.
    "TableMemory",
];

/// Text that only `Debug` output (or a format string gone wrong) produces.
const DEBUG_LOOKING: &[&str] = &[
    "{",
    "}",
    "Some(",
    "None",
    "PhysAddr(",
    "VirtAddr(",
    "VirtRange(",
    "SpaceId",
    "ObjectId",
    "ObjectMapping",
    "MainId(",
];

/// Every number written in `message`: decimal, `0x` hex, `0b` binary, and
/// `N KiB` / `N MiB` / `N GiB` as bytes too.
fn numbers_in(message: &str) -> BTreeSet<u64> {
    let b = message.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let radix_run = |radix: u32, from: usize| {
            let mut end = from;
            while end < b.len() && ((b[end] as char).is_digit(radix) || b[end] == b'_') {
                end += 1;
            }
            let digits: String = message[from..end].chars().filter(|&c| c != '_').collect();
            (u64::from_str_radix(&digits, radix).ok(), end)
        };
        let prefixed = |p: u8, radix: u32| {
            b[i] == b'0'
                && b.get(i + 1) == Some(&p)
                && b.get(i + 2).is_some_and(|&c| (c as char).is_digit(radix))
        };
        let (value, end) = if prefixed(b'x', 16) {
            radix_run(16, i + 2)
        } else if prefixed(b'b', 2) {
            radix_run(2, i + 2)
        } else {
            let (value, end) = radix_run(10, i);
            if let Some(v) = value {
                for (unit, shift) in [(" KiB", 10), (" MiB", 20), (" GiB", 30)] {
                    if message[end..].starts_with(unit) {
                        found.insert(v << shift);
                    }
                }
            }
            (value, end)
        };
        found.extend(value);
        i = end;
    }
    found
}

fn missing_values(message: &str, numbers: &BTreeSet<u64>, values: &[Val], out: &mut Vec<String>) {
    for v in values {
        match v {
            Val::Num(n) if !numbers.contains(n) => out.push(format!("does not show {n} ({n:#x})")),
            Val::Text(t) if !message.contains(t.as_str()) => {
                out.push(format!("does not show {t:?}"))
            }
            Val::Many(vs) => missing_values(message, numbers, vs, out),
            _ => {}
        }
    }
}

/// What is wrong with a message, by the rules in the module docs.
fn problems(case: &Case) -> Vec<String> {
    let m = case.message.as_str();
    let mut out = Vec::new();
    if m.is_empty() {
        return vec!["is empty".into()];
    }
    if m.contains('\n') {
        out.push("is more than one line".into());
    }
    if !m.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.push("does not start with a lowercase letter".into());
    }
    if m.ends_with('.') {
        out.push("ends with a full stop".into());
    }
    if m.contains("  ") || m.trim() != m {
        out.push("has stray spaces".into());
    }
    for d in DEBUG_LOOKING {
        if m.contains(d) {
            out.push(format!("looks like Debug output ({d:?})"));
        }
    }
    for word in m.split(|c: char| !c.is_ascii_alphanumeric()) {
        let camel = word
            .as_bytes()
            .windows(2)
            .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
        if camel && !CAMEL_CASE_ALLOWED.contains(&word) {
            out.push(format!("has a CamelCase word ({word:?}), Debug output?"));
        }
    }
    missing_values(m, &numbers_in(m), &case.values, &mut out);
    out
}

const QEMU_ARM926: MainId = MainId::from_raw(0x4106_9265);

/// One value of every variant of every public error type, with the values
/// each message must show.
fn book() -> Book {
    let mut b = Book::default();
    let va = VirtAddr;
    let pa = PhysAddr;
    let space = SpaceId::from_parts(3, 2);
    let object = ObjectId::from_parts(4, 1);

    // addr
    b.add(
        AlignError::NotPowerOfTwo { align: 0x3000 },
        vals![0x3000u32],
    );
    b.add(
        AlignError::PastTop {
            addr: 0xffff_f800,
            align: 0x1000,
        },
        vals![0xffff_f800u32, 0x1000u32],
    );
    b.add(
        RangeError::EndBeforeStart {
            start: 0x0040_2000,
            end: 0x0040_1000,
        },
        vals![0x0040_2000u32, 0x0040_1000u32],
    );
    b.add(
        RangeError::WrapsPast4GiB {
            start: 0xffff_f000,
            len: 0x2000,
        },
        vals![0xffff_f000u32, 0x2000u64],
    );

    // cache
    b.add(
        PlanError::LineNotPowerOfTwo { line_bytes: 24 },
        vals![24u32],
    );
    for (what, value) in [("size", 24usize << 10), ("ways", 3), ("line length", 48)] {
        b.add(GeometryError::NotPowerOfTwo { what, value }, vals![value]);
    }
    b.add(
        GeometryError::LineOutOfRange { line_bytes: 4 },
        vals![4usize],
    );
    b.add(
        GeometryError::TooLarge {
            size_bytes: 32 << 20,
        },
        vals![32usize << 20],
    );
    b.add(
        GeometryError::NoSets {
            size_bytes: 512,
            ways: 128,
            line_bytes: 64,
        },
        vals![512usize, 128usize, 64usize],
    );
    b.add(
        CtrError::NotImplemented { raw: 0x4106_9265 },
        vals![0x4106_9265u32],
    );
    b.add(
        CtrError::Armv7Format { raw: 0x8303_c003 },
        vals![0x8303_c003u32],
    );
    let ctr_geometry = CtrError::Geometry {
        raw: 0x0014_e000,
        cache: "data",
        field: 0x14e,
        error: GeometryError::NotPowerOfTwo {
            what: "size",
            value: 24 << 10,
        },
    };
    let ctr_geometry_values = vals![0x0014_e000u32, "data", 0x14eu16, 24usize << 10];
    b.add(ctr_geometry, ctr_geometry_values);
    b.add(
        InfoError::Ctr(CtrError::Armv7Format { raw: 0x8303_c003 }),
        vals![0x8303_c003u32],
    );
    b.add(
        InfoError::NoDataCache { raw: 0x1c04_40d2 },
        vals![0x1c04_40d2u32],
    );
    let tlb_by_asid = MaintenanceError::NotOnThisCpu {
        operation: "TLB invalidate by ASID",
        cpu: CpuPart::Arm926,
    };
    b.add(
        tlb_by_asid,
        vals!["TLB invalidate by ASID", CpuPart::Arm926],
    );
    let unknown_cpu = CpuPart::Other {
        implementer: 0x69,
        part: 0x2d0,
    };
    b.add(
        MaintenanceError::NotOnThisCpu {
            operation: "TLB invalidate by MVA and ASID",
            cpu: unknown_cpu,
        },
        vals!["TLB invalidate by MVA and ASID", unknown_cpu],
    );
    b.add(
        MaintenanceError::SetWayOutOfRange {
            set: 200,
            way: 5,
            sets: 128,
            ways: 4,
        },
        vals![200usize, 5usize, 128usize, 4usize],
    );
    b.add(
        MaintenanceError::WrongCpu {
            backend: "ARMv6",
            midr: QEMU_ARM926,
        },
        vals!["ARMv6", QEMU_ARM926],
    );
    let arm920t = crate::arch::profile::CoreProfile::for_core(MainId::from_raw(0x4112_9200))
        .expect_err("the ARM920T has no profile");
    b.add(
        MaintenanceError::UnsupportedCore(arm920t),
        vals!["ARM920T", "0x41129200"],
    );

    // mm::frames
    b.add(
        FrameError::Misaligned {
            pa: pa(0x8000_0800),
        },
        vals![pa(0x8000_0800)],
    );
    b.add(
        FrameError::MisalignedVa {
            va: va(0x0040_0010),
        },
        vals![va(0x0040_0010)],
    );
    b.add(
        FrameError::WrapsPast4GiB {
            first: pa(0xffff_0000),
            frames: 32,
        },
        vals![pa(0xffff_0000), 32u32],
    );
    b.add(FrameError::BadColourCount { colours: 3 }, vals![3u32]);
    b.add(
        FrameError::ColourOutOfRange {
            colour: 9,
            colours: 8,
        },
        vals![9u32, 8u32],
    );
    b.add(
        FrameError::OutOfRange {
            pa: pa(0x1000),
            first: pa(0x8000_0000),
            end: 0x8400_0000,
        },
        vals![pa(0x1000), pa(0x8000_0000), 0x8400_0000u64],
    );
    b.add(
        FrameError::NoFrameOfColour {
            colour: 2,
            free: 17,
        },
        vals![2u32, 17u32],
    );
    b.add(FrameError::OutOfMemory, vals![]);
    b.add(
        FrameError::NotEnoughFrames {
            wanted: 300,
            free: 17,
        },
        vals![300u32, 17u32],
    );
    b.add(
        FrameError::MetadataAllocFailed { bytes: 4096 },
        vals![4096usize],
    );
    b.add(
        FrameError::NotAllocated {
            pa: pa(0x8000_3000),
        },
        vals![pa(0x8000_3000)],
    );
    b.add(
        FrameError::AlreadyMapped {
            pa: pa(0x8000_3000),
            space,
            va: va(0x0040_1000),
        },
        vals![pa(0x8000_3000), space, va(0x0040_1000)],
    );
    b.add(
        FrameError::NotMapped {
            pa: pa(0x8000_3000),
            space: SpaceId::KERNEL,
            va: va(0xc000_3000),
        },
        vals![pa(0x8000_3000), va(0xc000_3000)],
    );
    b.add(
        FrameError::StillMapped {
            pa: pa(0x8000_3000),
            mappings: 2,
        },
        vals![pa(0x8000_3000), 2usize],
    );

    // mm::object
    let window = ObjectMapping {
        space,
        start: va(0x0040_0000),
        first_page: 2,
        pages: 3,
    };
    b.add(ObjectError::NoSuchObject { id: object }, vals![object]);
    b.add(
        ObjectError::PageOutOfRange {
            id: object,
            page: 16,
            size: 16,
        },
        vals![object, 16u32],
    );
    b.add(
        ObjectError::PagePresent {
            id: object,
            page: 1,
            pa: pa(0x0020_0000),
        },
        vals![object, 1u32, pa(0x0020_0000)],
    );
    b.add(
        ObjectError::PageAbsent {
            id: object,
            page: 5,
        },
        vals![object, 5u32],
    );
    b.add(
        ObjectError::NoSuchMapping {
            id: object,
            mapping: window,
        },
        vals![object, window],
    );
    b.add(
        ObjectError::StillMapped {
            id: object,
            mappers: 2,
        },
        vals![object, 2usize],
    );
    let crooked = ObjectMapping {
        start: va(0x0040_0800),
        ..window
    };
    b.add(
        ObjectError::BadWindow {
            id: object,
            mapping: crooked,
        },
        vals![object, crooked],
    );
    b.add(ObjectError::MetadataAllocFailed, vals![]);

    // mm::unmapped
    b.add(MmapError::ZeroLength, vals![]);
    b.add(
        MmapError::TooLarge { len: 0x0100_0000 },
        vals![0x0100_0000u32],
    );
    b.add(
        MmapError::UnalignedOffset { offset: 0x800 },
        vals![0x800u64],
    );
    b.add(MmapError::FixedWithoutAddress, vals![]);
    b.add(
        MmapError::FixedUnaligned {
            addr: va(0x0040_0800),
        },
        vals![va(0x0040_0800)],
    );
    b.add(
        MmapError::FixedOutOfRange {
            addr: va(0x00ff_f000),
            len: 0x2000,
        },
        vals![va(0x00ff_f000), 0x2000u32],
    );
    b.add(
        MmapError::ColourMismatch {
            addr: va(0x0040_1000),
            offset: 0x2000,
            span: 0x4000,
        },
        vals![va(0x0040_1000), 0x2000u64, 0x4000u32],
    );
    b.add(
        MmapError::NoRoom { len: 0x00ff_b000 },
        vals![0x00ff_b000u32],
    );

    // mm::space
    b.add(SpaceError::Mmap(MmapError::ZeroLength), vals![]);
    b.add(
        SpaceError::Unaligned {
            addr: va(0x0000_1234),
        },
        vals![va(0x0000_1234)],
    );
    b.add(SpaceError::ZeroLength, vals![]);
    b.add(
        SpaceError::OutOfUserSpace {
            addr: va(0x00ff_f000),
            len: 0x2000,
        },
        vals![va(0x00ff_f000), 0x2000u32],
    );
    b.add(
        SpaceError::Hole {
            at: va(0x0040_3000),
        },
        vals![va(0x0040_3000)],
    );
    b.add(
        SpaceError::OffsetOverflow {
            offset: 0xfff_ffff_f000,
            len: 0x1000,
        },
        vals![0xfff_ffff_f000u64, 0x1000u32],
    );
    b.add(
        SpaceError::NoMapping {
            va: va(0x0000_2000),
        },
        vals![va(0x0000_2000)],
    );
    // The access and the protection are words, not numbers.
    for (access, prot) in [
        (FaultAccess::Write, Protection::READ),
        (FaultAccess::Execute, Protection::READ | Protection::WRITE),
        (FaultAccess::Read, Protection::empty()),
    ] {
        b.add(
            SpaceError::AccessDenied {
                va: va(0x0040_2000),
                access,
                prot,
            },
            vals![va(0x0040_2000)],
        );
    }
    b.add(
        SpaceError::BeyondObject {
            va: va(0x0041_0000),
            page: 16,
            size: 16,
        },
        vals![va(0x0041_0000), 16u32],
    );
    b.add(
        SpaceError::BrkRefused {
            requested: va(0x000f_f000),
            current: va(0x0010_0000),
        },
        vals![va(0x000f_f000), va(0x0010_0000)],
    );
    b.add(SpaceError::Frame(FrameError::OutOfMemory), vals![]);
    b.add(
        SpaceError::Object(ObjectError::NoSuchObject { id: object }),
        vals![object],
    );
    b.add(
        SpaceError::Table(TableError::OutOfFrames {
            va: va(0x007f_f000),
        }),
        vals![va(0x007f_f000)],
    );
    b.add(SpaceError::MetadataAllocFailed, vals![]);
    b.add(
        SpaceError::TooManyMappings {
            mappings: 65_529,
            more: 2,
            limit: 65_530,
        },
        vals![65_529u32, 2u32, 65_530u32],
    );
    b.add(
        SpaceError::Config(ConfigError::EmptyUserSpace {
            min_addr: 0x0100_0000,
            task_size: 0x0100_0000,
        }),
        vals![0x0100_0000u32],
    );

    // mm::config
    b.add(
        ConfigError::MinAddrUnaligned { min_addr: 0x1800 },
        vals![0x1800u32],
    );
    b.add(
        ConfigError::TaskSizeUnaligned {
            task_size: 0x00ff_ff00,
        },
        vals![0x00ff_ff00u32],
    );
    b.add(
        ConfigError::EmptyUserSpace {
            min_addr: 0x0100_0000,
            task_size: 0x0080_0000,
        },
        vals![0x0100_0000u32, 0x0080_0000u32],
    );
    b.add(
        ConfigError::MmapBaseUnaligned {
            mmap_base: 0x0080_0800,
        },
        vals![0x0080_0800u32],
    );
    b.add(
        ConfigError::MmapBaseOutsideUserSpace {
            mmap_base: 0x0200_0000,
            min_addr: 0x1000,
            task_size: 0x0100_0000,
        },
        vals![0x0200_0000u32, 0x1000u32, 0x0100_0000u32],
    );
    b.add(
        ConfigError::NoRoomAboveMmapBase {
            mmap_base: 0x0100_0000,
            task_size: 0x0100_0000,
        },
        vals![0x0100_0000u32],
    );
    b.add(
        ConfigError::ColourSpanBelowPage { colour_span: 0x800 },
        vals![0x800u32],
    );
    b.add(
        ConfigError::ColourSpanNotPageMultiple {
            colour_span: 0x1800,
        },
        vals![0x1800u32],
    );
    b.add(
        ConfigError::ColourSpanNotPowerOfTwo {
            colour_span: 0x3000,
        },
        vals![0x3000u32],
    );
    b.add(
        ConfigError::ColourSpanTooLarge {
            colour_span: 0x0200_0000,
            user_bytes: 0x00ff_f000,
        },
        vals![0x0200_0000u32, 0x00ff_f000u32],
    );
    b.add(
        ConfigError::ColourSpanBelowCacheAlignment {
            colour_span: 0x2000,
            alignment: 0x4000,
        },
        vals![0x2000u32, 0x4000u32],
    );
    b.add(
        ConfigError::StackGuardGapUnaligned {
            stack_guard_gap: 0x1800,
        },
        vals![0x1800u32],
    );
    b.add(ConfigError::NoMappingsAllowed, vals![]);
    b.add(
        ConfigError::LinearMapMismatch {
            pa: 0x0020_0000,
            engine: 0xc020_0000,
            memory: 0x8020_0000,
        },
        vals![0x0020_0000u32, 0xc020_0000u32, 0x8020_0000u32],
    );
    b.add(
        ConfigError::StackGuardGapTooLarge {
            stack_guard_gap: 0x0100_0000,
            user_bytes: 0x00ff_f000,
        },
        vals![0x0100_0000u32, 0x00ff_f000u32],
    );
    b.add(
        ConfigError::BeyondFcseWindow {
            task_size: 0x0200_1000,
            window: 0x0200_0000,
        },
        vals![0x0200_1000u32, 0x0200_0000u32],
    );
    for (range, start, end) in [
        (KernelRange::LinearMap, 0, 0x2000u64),
        (KernelRange::Windows, 0x00ff_f000, 1 << 32),
    ] {
        b.add(
            ConfigError::OverlapsKernel {
                min_addr: 0x1000,
                task_size: 0x0100_0000,
                range,
                start,
                end,
            },
            vals![0x1000u32, 0x0100_0000u32, start, end],
        );
    }

    // mmu
    for (first, last, max) in [(0u8, 255u8, 255u8), (1, 1, 255), (5, 2, 255), (1, 200, 127)] {
        b.add(
            KeyError::BadRange { first, last, max },
            vals![first, last, max],
        );
    }
    let what = "execute-never (ARMv5 has no XN bit; use Execute::NeverIfSupported)";
    b.add(
        DescriptorError::NotExpressible {
            what,
            arch: Arch::Armv5,
        },
        vals![what, Arch::Armv5],
    );
    b.add(
        DescriptorError::NotInFormat {
            field: "supersection",
            arch: Arch::Armv5,
        },
        vals!["supersection", Arch::Armv5],
    );
    b.add(
        DescriptorError::MisalignedBase {
            what: "section",
            base: pa(0x0018_0000),
            alignment: 0x10_0000,
        },
        vals!["section", pa(0x0018_0000), 0x10_0000u32],
    );
    b.add(
        DescriptorError::FieldOutOfRange {
            field: "domain",
            value: 16,
            max: 15,
        },
        vals!["domain", 16u32, 15u32],
    );
    b.add(
        DescriptorError::Reserved {
            raw: 0x0030_1013,
            arch: Arch::Armv6,
        },
        vals![0x0030_1013u32, Arch::Armv6],
    );
    b.add(
        DescriptorError::UnknownMemoryType {
            tex: 0b010,
            c: false,
            b: true,
            arch: Arch::Armv5,
        },
        vals![0b010u8, false, true, Arch::Armv5],
    );
    b.add(
        DescriptorError::UnknownAccess {
            apx: false,
            ap: 0,
            arch: Arch::Armv6,
        },
        vals![false, 0u8, Arch::Armv6],
    );
    b.add(
        DescriptorError::MixedSubpagePermissions { ap: [1, 1, 3, 1] },
        vals![1u8, 3u8],
    );
    b.add(
        TableError::Unaligned {
            what: "virtual address",
            address: 0x0040_1800,
            alignment: 0x1000,
        },
        vals!["virtual address", 0x0040_1800u32, 0x1000u32],
    );
    b.add(
        TableError::AlreadyMapped {
            va: va(0x0040_0000),
            descriptor: 0x8020_0032,
        },
        vals![va(0x0040_0000), 0x8020_0032u32],
    );
    b.add(
        TableError::NotMapped {
            va: va(0x0041_0000),
        },
        vals![va(0x0041_0000)],
    );
    for (at, section, size) in [
        (0x0034_5000, 0x0030_0000, PageSize::Section),
        (0x0134_5000, 0x0100_0000, PageSize::Supersection),
    ] {
        b.add(
            TableError::WouldSplitSection {
                va: va(at),
                section: va(section),
                size,
            },
            vals![va(at), va(section), size.bytes()],
        );
    }
    b.add(
        TableError::WouldSplitLargePage {
            va: va(0x0040_4000),
        },
        vals![va(0x0040_4000)],
    );
    b.add(
        TableError::SizeMismatch {
            va: va(0x0040_0000),
            mapped: PageSize::Small,
        },
        vals![va(0x0040_0000), PageSize::Small.bytes()],
    );
    b.add(
        TableError::OutOfFrames {
            va: va(0x0040_0000),
        },
        vals![va(0x0040_0000)],
    );
    b.add(
        TableError::MisalignedTable {
            table: pa(0x0001_0400),
            alignment: 0x4000,
        },
        vals![pa(0x0001_0400), 0x4000u32],
    );
    b.add(
        TableError::ForeignEntry {
            va: va(0x0050_2000),
            descriptor: 0x8010_0013,
        },
        vals![va(0x0050_2000), 0x8010_0013u32],
    );
    b.add(
        TableError::WindowInUse {
            pid: 1,
            va: va(0x0300_0000),
        },
        vals![1u8, va(0x0300_0000)],
    );
    b.add(
        TableError::Memory {
            pa: pa(0x9000_0000),
        },
        vals![pa(0x9000_0000)],
    );
    b.add(TableError::PidOutOfRange { pid: 128 }, vals![128u8]);
    b.add(
        TableError::Descriptor(DescriptorError::FieldOutOfRange {
            field: "domain",
            value: 16,
            max: 15,
        }),
        vals!["domain", 16u32, 15u32],
    );
    b.add(
        TableError::Maintenance(tlb_by_asid),
        vals!["TLB invalidate by ASID", CpuPart::Arm926],
    );
    b.add(
        TableError::ReservedSlot {
            va: va(0xffe0_1000),
        },
        vals![va(0xffe0_1000)],
    );
    b.add(TableError::MetadataAllocFailed, vals![]);
    b.add(
        SwitchError::Table(TableError::Memory {
            pa: pa(0x0000_4000),
        }),
        vals![pa(0x0000_4000)],
    );
    b.add(
        SwitchError::Maintenance(tlb_by_asid),
        vals!["TLB invalidate by ASID", CpuPart::Arm926],
    );

    // arch::abort
    b.add(
        NotALoadOrStore {
            instruction: 0xe082_1003,
            thumb: false,
        },
        vals![0xe082_1003u32],
    );
    b.add(
        NotALoadOrStore {
            instruction: 0x4770,
            thumb: true,
        },
        vals![0x4770u32],
    );

    // coherence
    let access = AccessError {
        va: va(0xc000_1000),
    };
    b.add(access, vals![va(0xc000_1000)]);
    b.add(
        CoherenceError::Space(SpaceError::NoMapping {
            va: va(0x0000_2000),
        }),
        vals![va(0x0000_2000)],
    );
    b.add(
        CoherenceError::Frame(FrameError::NotAllocated {
            pa: pa(0x8000_3000),
        }),
        vals![pa(0x8000_3000)],
    );
    b.add(
        CoherenceError::Table(TableError::NotMapped {
            va: va(0x0041_0000),
        }),
        vals![va(0x0041_0000)],
    );
    b.add(CoherenceError::Access(access), vals![va(0xc000_1000)]);
    b.add(
        CoherenceError::Window(WindowError::Busy { colour: 2 }),
        vals![2usize],
    );
    b.add(
        CoherenceError::Unaligned {
            addr: va(0x0040_0010),
            alignment: 0x1000,
        },
        vals![va(0x0040_0010), 0x1000u32],
    );
    for (addr, len) in [(0x0040_0000, 0u64), (0xffff_f000, 0x2000)] {
        b.add(
            CoherenceError::BadLength {
                addr: va(addr),
                len,
            },
            vals![va(addr), len],
        );
    }
    b.add(
        CoherenceError::Switch(SwitchError::Table(TableError::NotMapped {
            va: va(0x0000_4000),
        })),
        vals![va(0x0000_4000)],
    );
    b.add(CoherenceError::StillRunning { space }, vals![space]);
    b.add(
        CoherenceError::SwitcherMismatch {
            declared: SwitchPolicy::Asid,
            given: SwitchPolicy::VivtFlush,
        },
        vals![],
    );
    b.add(
        CoherenceError::CopyOntoItself {
            pa: pa(0x8000_5000),
        },
        vals![pa(0x8000_5000)],
    );
    b.add(
        CoherenceError::KernelTableNeeded {
            kernel_base: va(0xfe00_0000),
        },
        vals![va(0xfe00_0000)],
    );
    // The switcher, cache and architecture are words; a colour count is a
    // number.
    b.add(
        EngineConfigError::Switcher {
            switcher: SwitchPolicy::Asid,
            cache: CacheKind::Vivt,
            arch: Arch::Armv5,
        },
        vals![Arch::Armv5],
    );
    b.add(
        EngineConfigError::Switcher {
            switcher: SwitchPolicy::VivtFlush,
            cache: CacheKind::VipAliasing { colours: 4 },
            arch: Arch::Armv6,
        },
        vals![Arch::Armv6, 4usize],
    );
    b.add(
        EngineConfigError::Policy {
            policy: "vacmm",
            answer: PolicyAnswer::DoesNotTrackLiveSpaces,
            switcher: SwitchPolicy::VivtFcse,
            cache: CacheKind::Vivt,
        },
        vals!["vacmm"],
    );
    b.add(
        WindowError::Misaligned {
            base: va(0xff00_1000),
            alignment: 0x4000,
        },
        vals![va(0xff00_1000), 0x4000u32],
    );
    b.add(
        WindowError::OutOfRange {
            base: va(0xffff_c000),
        },
        vals![va(0xffff_c000)],
    );
    b.add(WindowError::Busy { colour: 2 }, vals![2usize]);
    b.add(
        WindowError::Table(TableError::ReservedSlot {
            va: va(0xffe0_1000),
        }),
        vals![va(0xffe0_1000)],
    );
    // Only the part-way failures: the refusals that hand the space or the
    // buffer back need a whole memory system to build one (their messages
    // differ only in the opening words; `coherence::tests::errors` checks the
    // exit's).
    b.add(
        ExitRefused {
            error: CoherenceError::Table(TableError::Memory {
                pa: pa(0x8000_7000),
            }),
            space: None,
        },
        vals![pa(0x8000_7000)],
    );
    b.add(
        DestroyRefused {
            error: CoherenceError::Frame(FrameError::NotAllocated {
                pa: pa(0x8000_3000),
            }),
            buffer: None,
        },
        vals![pa(0x8000_3000)],
    );
    let range = |start: u32, len: u64| VirtRange::new(va(start), len).unwrap();
    let buffer = range(0x0010_0000, 0x800);
    b.add(
        DmaError::Empty {
            start: va(0x0010_0000),
        },
        vals![va(0x0010_0000)],
    );
    b.add(
        DmaError::WrapsPast4GiB {
            start: va(0xffff_f000),
            len: 0x2000,
        },
        vals![va(0xffff_f000), 0x2000u64],
    );
    let existing = range(0x0010_0400, 0x1000);
    b.add(
        DmaError::AlreadyMapped {
            range: buffer,
            existing,
        },
        vals![buffer, existing],
    );
    b.add(DmaError::NotMapped { range: buffer }, vals![buffer]);
    for owner in [DmaOwner::Cpu, DmaOwner::Device] {
        b.add(
            DmaError::WrongOwner {
                range: buffer,
                owner,
            },
            vals![buffer],
        );
    }
    let other = range(0x0010_0810, 0x10);
    b.add(
        DmaError::SharesLine {
            buffer: range(0x0010_0000, 0x810),
            other,
            line: va(0x0010_0800),
        },
        vals![range(0x0010_0000, 0x810), other, va(0x0010_0800)],
    );
    b.add(DmaError::NotDeclared { range: other }, vals![other]);
    b.add(DmaError::EmptyBuffer, vals![]);
    b.add(
        DmaError::BadLayout { len: 3, align: 24 },
        vals![3usize, 24usize],
    );
    b.add(
        DmaError::AllocationFailed {
            size: 4096,
            align: 32,
        },
        vals![4096usize, 32usize],
    );
    b.add(DmaError::NoMemory { entries: 64 }, vals![64usize]);

    // sim
    let sim_space = crate::sim::SpaceId(2);
    b.add(
        SimError::Unmapped {
            space: sim_space,
            va: 0x0040_0000,
        },
        vals![sim_space, 0x0040_0000u32],
    );
    b.add(
        SimError::OutOfMemory {
            pa: 0x0100_0000,
            base: 0x8000_0000,
            size: 1 << 20,
        },
        vals![0x0100_0000u32, 0x8000_0000u32, 1usize << 20],
    );
    b.add(
        SimError::BadAccess {
            va: 0x0040_0002,
            size: 3,
        },
        vals![0x0040_0002u32, 3u32],
    );
    b.add(
        SimError::NoSuchSpace(crate::sim::SpaceId(7)),
        vals![crate::sim::SpaceId(7)],
    );
    b.add(
        SimError::ReadOnly { va: 0x0040_1000 },
        vals![0x0040_1000u32],
    );
    b.add(
        SimError::NoSuchLine { set: 300, way: 5 },
        vals![300usize, 5usize],
    );
    b.add(
        ModelError::Geometry {
            cache: "data",
            error: GeometryError::NotPowerOfTwo {
                what: "ways",
                value: 3,
            },
        },
        vals!["data", 3usize],
    );
    b.add(ModelError::LineTooLong { line_bytes: 128 }, vals![128usize]);
    b.add(
        ModelError::MemoryRange {
            base: 0x8000_0800,
            bytes: 1 << 20,
        },
        vals![0x8000_0800u32, 1usize << 20],
    );

    // The oracle's reports: every kind, and every kind of last writer.
    let cpu = Writer::Cpu {
        space: sim_space,
        va: 0x0040_0040,
        pc: None,
    };
    let cpu_at = Writer::Cpu {
        space: crate::sim::SpaceId(3),
        va: 0x0050_0040,
        pc: Some(0x0000_8124),
    };
    let writer_values = |w: Writer| -> Vec<Val> {
        match w {
            Writer::Cpu { space, va, pc } => {
                let mut v = vals![space, va];
                v.extend(pc.map(Val::from));
                v
            }
            _ => vals![],
        }
    };
    let kinds = [
        (ViolationKind::StaleRead, cpu),
        (ViolationKind::StaleReadAfterDma, Writer::Dma),
        (
            ViolationKind::CrossSpaceLeak {
                line_pa: 0x0030_0040,
            },
            cpu_at,
        ),
        (
            ViolationKind::RemappedLineHit {
                line_pa: 0x0030_0040,
            },
            cpu,
        ),
        (ViolationKind::DirtyLineDiscarded, cpu),
        (ViolationKind::StaleWriteBack, Writer::Dma),
        (ViolationKind::StaleFetch, cpu_at),
        (ViolationKind::DmaReadStaleMemory, cpu),
        (ViolationKind::StaleTableWalk, Writer::Initial),
        (
            ViolationKind::StaleTlbEntry {
                walked_pa: Some(0x0020_1000),
            },
            Writer::Dead,
        ),
        (ViolationKind::StaleTlbEntry { walked_pa: None }, cpu),
        (
            ViolationKind::LiveAlias {
                other_va: 0x0010_0040,
            },
            cpu,
        ),
    ];
    for (i, (kind, last_writer)) in kinds.into_iter().enumerate() {
        // Accesses by a CPU name their space and address; the others
        // (a write-back, a DMA read, a table walk) do not.
        let by_cpu = !matches!(
            kind,
            ViolationKind::StaleWriteBack
                | ViolationKind::DmaReadStaleMemory
                | ViolationKind::StaleTableWalk
                | ViolationKind::LiveAlias { .. }
        );
        let v = Violation {
            kind,
            operation: 40 + i as u64,
            space: by_cpu.then_some(sim_space),
            va: by_cpu.then_some(0x0040_0048),
            pa: 0x0020_0048,
            last_writer,
            last_version: 12,
            seen_version: 9,
            discarded: None,
            line_writer: None,
        };
        let mut values = vals![v.operation, v.pa, v.last_version, v.seen_version];
        if by_cpu {
            values.extend(vals![sim_space, 0x0040_0048u32]);
        }
        values.extend(writer_values(last_writer));
        match kind {
            ViolationKind::CrossSpaceLeak { line_pa }
            | ViolationKind::RemappedLineHit { line_pa } => values.push(line_pa.into()),
            ViolationKind::StaleTlbEntry {
                walked_pa: Some(walked),
            } => values.push(walked.into()),
            ViolationKind::LiveAlias { other_va } => values.push(other_va.into()),
            _ => {}
        }
        b.add(v, values);
    }
    b
}

#[test]
fn every_error_message_reads_well() {
    let b = book();
    let mut report = Vec::new();
    for (ty, (all, seen)) in &b.types {
        for v in *all {
            if !seen.contains(v) {
                report.push(format!("{ty}::{v}: no case builds it"));
            }
        }
    }
    for case in &b.cases {
        for p in problems(case) {
            report.push(format!("{}: {p}\n    {}", case.label, case.message));
        }
    }
    assert!(report.is_empty(), "\n{}", report.join("\n"));
}

#[test]
fn error_messages_match_the_golden_file() {
    crate::tests::golden::check("error-messages.txt", &book().golden(), "the messages");
}

#[test]
fn numbers_are_found_in_every_notation() {
    let found = numbers_in("set 200, way 0x5 at 0x0040_0000; TEX=0b010; a 64 KiB page, ARMv6");
    for n in [200, 5, 0x40_0000, 2, 64, 64 << 10, 6] {
        assert!(found.contains(&n), "{n} in {found:?}");
    }
    assert!(!found.contains(&10), "0b010 is two, not ten");
}

/// A wrapping variant gives its cause as `source()`, down the chain; a
/// leaf gives none.
#[test]
fn wrapping_errors_give_their_cause_as_source() {
    use core::error::Error;
    let leaf = FrameError::NotAllocated {
        pa: PhysAddr(0x8000_3000),
    };
    let e = CoherenceError::Space(SpaceError::Frame(leaf));
    let mut chain = Vec::new();
    let mut cause: Option<&dyn Error> = Some(&e);
    while let Some(c) = cause {
        chain.push(c.to_string());
        cause = c.source();
    }
    assert_eq!(chain.len(), 3, "{chain:#?}");
    assert_eq!(chain[2], leaf.to_string());
    assert!(leaf.source().is_none());
    let table = TableError::Descriptor(DescriptorError::MisalignedBase {
        what: "section",
        base: PhysAddr(0x0018_0000),
        alignment: 0x10_0000,
    });
    let switch = SwitchError::Table(table);
    assert_eq!(switch.source().unwrap().to_string(), table.to_string());
}

/// Every public error type implements `core::error::Error` (one that does
/// not fails to compile here).
#[test]
fn every_error_type_is_an_error() {
    fn is_error<E: core::error::Error>() {}
    is_error::<AlignError>();
    is_error::<RangeError>();
    is_error::<PlanError>();
    is_error::<GeometryError>();
    is_error::<CtrError>();
    is_error::<InfoError>();
    is_error::<MaintenanceError>();
    is_error::<FrameError>();
    is_error::<ObjectError>();
    is_error::<MmapError>();
    is_error::<SpaceError>();
    is_error::<ConfigError>();
    is_error::<KeyError>();
    is_error::<DescriptorError>();
    is_error::<TableError>();
    is_error::<SwitchError>();
    is_error::<AccessError>();
    is_error::<NotALoadOrStore>();
    is_error::<CoherenceError>();
    is_error::<EngineConfigError>();
    is_error::<WindowError>();
    is_error::<ExitRefused>();
    is_error::<DestroyRefused>();
    is_error::<DmaError>();
    is_error::<crate::arch::profile::UnsupportedCore>();
    is_error::<crate::sim::SimError>();
    is_error::<crate::sim::ModelError>();
}
