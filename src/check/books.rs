//! The books of a [`Machine`]: what a refused call must leave exactly as it
//! was (issue 19: "validate first, reserve, then commit").
//!
//! ```text
//!   Books::of(machine, spaces)
//!   ├─ frames     every frame's flags, colour and reverse map (non-default ones)
//!   ├─ allocator  the frames handed out, the free count of each colour
//!   ├─ objects    id, kind, size, resident pages, windows (i_mmap)
//!   ├─ spaces     id (and whether it is live), VMAs, gaps, resident pages,
//!   │             break, table and key
//!   ├─ tables     the table frames' contents (L1 tables and the pool of
//!   │             second-level tables, by page hash) and the pool's free list
//!   └─ engine     its fingerprint (running space, live spaces, shared pages,
//!                 windows; not its counters)
//! ```
//!
//! Not in the books: the cache's contents and the engine's counters. A
//! refused call may clean or invalidate lines before it finds the error
//! (maintenance owed before a change costs time, not data); the oracle and
//! the content reference judge what that did.

use core::hash::Hasher;
use std::vec::Vec;

use rustc_hash::FxHasher;

use super::machine::{KERNEL_L1, Machine, PAGE, TABLE_POOL, USER_FRAMES};
use crate::addr::{PhysAddr, VirtAddr};
use crate::mm::frames::{PageState, SpaceId};
use crate::mm::gaps::Gap;
use crate::mm::object::{ObjectId, ObjectKind, ObjectMapping};
use crate::mm::space::{AddressSpace, Vma};

/// One object's books.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectBooks {
    /// Its id.
    pub id: ObjectId,
    /// Its kind.
    pub kind: ObjectKind,
    /// Its size in pages.
    pub size: u32,
    /// Resident pages.
    pub pages: Vec<(u32, PhysAddr)>,
    /// Windows onto it.
    pub mappers: Vec<ObjectMapping>,
}

/// One address space's books.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceBooks {
    /// Its id.
    pub id: SpaceId,
    /// Whether the memory system knows it as live.
    pub live: bool,
    /// VMAs.
    pub vmas: Vec<Vma>,
    /// Free ranges.
    pub gaps: Vec<Gap>,
    /// Resident pages.
    pub resident: Vec<(VirtAddr, PhysAddr)>,
    /// Heap start and break.
    pub brk: (VirtAddr, VirtAddr),
    /// The L1 table, its key and FCSE window, as `Debug` shows them.
    pub table: std::string::String,
}

/// The books (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Books {
    /// Frames with any state: address and state.
    pub frames: Vec<(PhysAddr, PageState)>,
    /// Frames the allocator has handed out.
    pub allocated: Vec<PhysAddr>,
    /// Free frames per colour.
    pub free: Vec<u32>,
    /// Objects.
    pub objects: Vec<ObjectBooks>,
    /// The spaces given.
    pub spaces: Vec<SpaceBooks>,
    /// User spaces the memory system knows as live.
    pub live_spaces: usize,
    /// Table memory in use (the kernel's and the given spaces' L1 tables,
    /// the pool's frames handed out): each page's address and hash.
    pub tables: Vec<(u32, u64)>,
    /// The second-level table pool's free frames (sorted).
    pub pool: Vec<PhysAddr>,
    /// The engine's fingerprint.
    pub engine: u64,
}

impl Books {
    /// The books of `m` and `spaces` (the address spaces the caller holds).
    pub fn of(m: &Machine, spaces: &[&AddressSpace]) -> Books {
        let sys = &m.sys;
        let first = sys.frames.first().as_u32();
        let managed = (0..sys.frames.frames()).map(|i| PhysAddr(first + i * PAGE));
        let frames = managed
            .clone()
            .filter_map(|pa| {
                let state = sys.frames.state(pa).ok()?;
                (*state != PageState::default()).then(|| (pa, state.clone()))
            })
            .collect();
        let allocated = managed
            .filter(|&pa| sys.allocator.is_allocated(pa).unwrap_or(false))
            .collect();
        let free = (0..sys.allocator.colours())
            .map(|c| sys.allocator.free_frames_of(c))
            .collect();
        let objects = sys
            .objects
            .iter()
            .map(|(id, o)| ObjectBooks {
                id,
                kind: o.kind(),
                size: o.size(),
                pages: o.pages().collect(),
                mappers: o.mappers().to_vec(),
            })
            .collect();
        let tables = table_pages(m, spaces);
        let spaces = spaces
            .iter()
            .map(|s| SpaceBooks {
                id: s.id(),
                live: sys.spaces().is_live(s.id()),
                vmas: s.vmas().copied().collect(),
                gaps: s.gaps().iter().collect(),
                resident: s.resident().collect(),
                brk: (s.brk_start(), s.brk_value()),
                table: std::format!("{:?}", s.table()),
            })
            .collect();
        let mut pool = m.sys.table_frames.0.clone();
        pool.sort_unstable();
        let mut h = FxHasher::default();
        m.engine.fingerprint(&mut h);
        Books {
            frames,
            allocated,
            free,
            objects,
            spaces,
            live_spaces: sys.spaces().live(),
            tables,
            pool,
            engine: h.finish(),
        }
    }
}

/// The pages of table memory in use: the kernel's L1 table, the given
/// spaces' L1 tables, and the second-level table frames the pool has handed
/// out (what a free frame holds is nobody's). Table writes are cleaned to
/// memory as they are made (the walker reads memory), so memory holds the
/// truth.
fn table_pages(m: &Machine, spaces: &[&AddressSpace]) -> Vec<(u32, u64)> {
    const L1_BYTES: u32 = 16 << 10;
    let mut pages = Vec::new();
    let mut add = |pa: u32| {
        if let Ok(bytes) = m.sys.mem.memory(pa, PAGE) {
            let mut h = FxHasher::default();
            h.write(&bytes);
            pages.push((pa, h.finish()));
        }
    };
    let l1s = core::iter::once(KERNEL_L1).chain(spaces.iter().map(|s| s.table().l1().as_u32()));
    for l1 in l1s {
        for pa in (l1..l1 + L1_BYTES).step_by(PAGE as usize) {
            add(pa);
        }
    }
    let free = &m.sys.table_frames.0;
    for pa in (TABLE_POOL..USER_FRAMES).step_by(PAGE as usize) {
        if !free.contains(&PhysAddr(pa)) {
            add(pa);
        }
    }
    pages
}

/// Which parts of the books differ (for a failure's message).
pub fn difference(a: &Books, b: &Books) -> String {
    let mut parts = Vec::new();
    if a.frames != b.frames {
        parts.push("the frame database");
    }
    if a.allocated != b.allocated || a.free != b.free {
        parts.push("the allocator");
    }
    if a.objects != b.objects {
        parts.push("the objects");
    }
    if a.spaces != b.spaces || a.live_spaces != b.live_spaces {
        parts.push("the spaces");
    }
    if a.tables != b.tables {
        parts.push("the tables");
    }
    if a.pool != b.pool {
        parts.push("the table pool");
    }
    if a.engine != b.engine {
        parts.push("the engine");
    }
    parts.join(", ")
}
