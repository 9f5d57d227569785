//! The books must agree: a check of every invariant that ties the address
//! spaces, the page tables, the reverse map, the page cache and the frame
//! allocator together (issue 19: "the books agree; no frame is leaked or
//! owned twice"). Test and fuzzing support, not kernel code: it walks
//! every frame and allocates freely.
//!
//! ```text
//!   each space    VMAs sorted, disjoint, inside [min_addr, task_size),
//!                 colour-congruent with their object; gaps = complement
//!                 (less stack guards); every resident page in the table,
//!                 as writable as its VMA allows, shared → its object's page
//!   reverse map   = the union of the spaces' resident pages, exactly;
//!                 no user entry of a space nobody holds
//!   page cache    each object's windows = the VMAs onto it, exactly
//!   frames        allocated = resident ∪ object pages (nothing leaked,
//!                 nothing in use and free); no frame in two page-cache
//!                 slots; a free frame has no mapping
//!   space ids     live ids = the spaces given
//! ```
//!
//! [`audit()`] is the check after every call of the whole-machine fuzz target
//! and the random programs, and the address-space tests' own.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::*;
use crate::mm::frames::MappingKind;
use crate::mmu::PageSize;

/// One user mapping as the spaces and the reverse map both describe it.
type Entry = (SpaceId, VirtAddr, PhysAddr, bool, bool);

/// Checks that `spaces` (every user space the caller holds) and `sys`
/// agree (see the module documentation); the first disagreement found,
/// described.
pub fn audit<M: TableMemory, F>(
    sys: &mut MemorySystem<M, F>,
    spaces: &[&AddressSpace],
) -> Result<(), String> {
    let mut from_spaces = BTreeSet::new();
    for space in spaces {
        audit_vmas(space)?;
        audit_gaps(space)?;
        audit_resident(sys, space, &mut from_spaces)?;
    }
    audit_reverse_map(sys, spaces, &from_spaces)?;
    audit_windows(sys, spaces)?;
    audit_frames(sys, &from_spaces)?;
    let live = sys.spaces.live();
    if live != spaces.len() || spaces.iter().any(|s| !sys.spaces.is_live(s.id())) {
        return Err(format!(
            "{live} spaces live, {} held: {:?}",
            spaces.len(),
            spaces.iter().map(|s| s.id()).collect::<Vec<_>>()
        ));
    }
    Ok(())
}

/// VMAs: non-empty, page aligned, inside user space, sorted, disjoint,
/// colour-congruent with their object, shared only over an object.
fn audit_vmas(space: &AddressSpace) -> Result<(), String> {
    let layout = space.config().layout;
    let colours = layout.colour_span / PAGE;
    let id = space.id();
    let mut previous_end = layout.min_addr;
    for v in space.vmas() {
        let (s, e) = (v.start().as_u32(), v.end().as_u32());
        if s >= e || s % PAGE != 0 || e % PAGE != 0 {
            return Err(format!("{id}: bad VMA {s:#x}..{e:#x}"));
        }
        if s < previous_end || e > layout.task_size {
            return Err(format!(
                "{id}: VMA {s:#x}..{e:#x} overlaps another or leaves user space"
            ));
        }
        previous_end = e;
        if let Backing::Object { first_page, .. } = v.backing()
            && colours > 1
            && (s / PAGE).wrapping_sub(first_page) % colours != 0
        {
            return Err(format!(
                "{id}: VMA {s:#x} shows page {first_page}: colours differ on a {colours}-colour cache"
            ));
        }
        if v.is_shared() && !matches!(v.backing(), Backing::Object { .. }) {
            return Err(format!("{id}: shared VMA {s:#x} without an object"));
        }
    }
    Ok(())
}

/// Gaps: exactly the complement of the VMAs, stack guard gaps taken out.
fn audit_gaps(space: &AddressSpace) -> Result<(), String> {
    let layout = space.config().layout;
    let guard = space.config().stack_guard_gap;
    let mut expected = Vec::new();
    let mut cursor = layout.min_addr;
    for v in space.vmas() {
        let end = if v.is_stack() {
            v.start().as_u32().saturating_sub(guard)
        } else {
            v.start().as_u32()
        };
        if end > cursor {
            expected.push((u64::from(cursor), u64::from(end)));
        }
        cursor = cursor.max(v.end().as_u32());
    }
    if layout.task_size > cursor {
        expected.push((u64::from(cursor), u64::from(layout.task_size)));
    }
    let gaps: Vec<(u64, u64)> = space.gaps().iter().map(|g| (g.start, g.end)).collect();
    if gaps != expected {
        return Err(format!(
            "{}: gaps {gaps:x?}, expected {expected:x?}",
            space.id()
        ));
    }
    Ok(())
}

/// Resident pages against their VMA, the table and the page cache; each
/// is added to `entries`.
fn audit_resident<M: TableMemory, F>(
    sys: &mut MemorySystem<M, F>,
    space: &AddressSpace,
    entries: &mut BTreeSet<Entry>,
) -> Result<(), String> {
    let id = space.id();
    let arch = space.table().arch();
    for (va, pa) in space.resident() {
        let vma = space
            .find_vma(va)
            .ok_or_else(|| format!("{id}: resident {va} outside every VMA"))?;
        let t = space
            .table()
            .translate(&mut sys.mem, va)
            .map_err(|e| format!("{id}: resident {va} not in the table: {e}"))?;
        if t.pa != pa || t.size != PageSize::Small {
            return Err(format!(
                "{id}: table maps {va} to {}, index says {pa}",
                t.pa
            ));
        }
        let writable = t
            .attributes(arch)
            .map_err(|e| format!("{id}: {va}'s entry does not decode: {e}"))?
            .access
            .user_writable();
        if writable && !vma.prot().contains(Protection::WRITE) {
            return Err(format!("{id}: {va} writable in a {:?} VMA", vma.prot()));
        }
        let object_frame = match vma.object_page(va) {
            Some((object, page)) => sys
                .objects
                .get(object)
                .map_err(|e| format!("{id}: {va}'s VMA maps a missing object: {e}"))?
                .page(page),
            None => None,
        };
        match (vma.is_shared(), object_frame) {
            (true, Some(f)) if f == pa => {}
            (true, _) => return Err(format!("{id}: shared {va} maps {pa}, not its object page")),
            (false, Some(f)) if f == pa && writable => {
                return Err(format!(
                    "{id}: private {va} can write its object's page {pa}"
                ));
            }
            _ => {}
        }
        entries.insert((id, va, pa, writable, vma.is_shared()));
    }
    Ok(())
}

/// The user entries of the reverse map are exactly the spaces' resident
/// pages.
fn audit_reverse_map<M, F>(
    sys: &MemorySystem<M, F>,
    spaces: &[&AddressSpace],
    from_spaces: &BTreeSet<Entry>,
) -> Result<(), String> {
    let held: BTreeSet<SpaceId> = spaces.iter().map(|s| s.id()).collect();
    let mut from_rmap = BTreeSet::new();
    for pa in managed_frames(sys) {
        let mappings = sys.frames.mappings(pa).map_err(|e| format!("{e}"))?;
        for m in mappings.iter().filter(|m| m.kind == MappingKind::User) {
            if !held.contains(&m.space) {
                return Err(format!(
                    "the reverse map has {pa} at {} in {}, a space nobody holds",
                    m.va, m.space
                ));
            }
            from_rmap.insert((m.space, m.va, pa, m.writable, m.shared));
        }
    }
    if &from_rmap != from_spaces {
        let extra: Vec<_> = from_rmap.difference(from_spaces).collect();
        let missing: Vec<_> = from_spaces.difference(&from_rmap).collect();
        return Err(format!(
            "reverse map disagrees with the spaces: extra {extra:?}, missing {missing:?}"
        ));
    }
    Ok(())
}

/// Each object's windows are exactly the VMAs onto it.
fn audit_windows<M, F>(sys: &MemorySystem<M, F>, spaces: &[&AddressSpace]) -> Result<(), String> {
    let mut from_vmas: BTreeMap<ObjectId, Vec<ObjectMapping>> = BTreeMap::new();
    for space in spaces {
        for (object, window) in space.vmas().filter_map(|v| v.window(space.id())) {
            from_vmas.entry(object).or_default().push(window);
        }
    }
    let key = |w: &ObjectMapping| (w.space, w.start.as_u32(), w.first_page, w.pages);
    for (id, object) in sys.objects.iter() {
        let mut windows = from_vmas.remove(&id).unwrap_or_default();
        let mut mappers = object.mappers().to_vec();
        windows.sort_by_key(key);
        mappers.sort_by_key(key);
        if windows != mappers {
            return Err(format!("{id}: windows {mappers:?}, VMAs {windows:?}"));
        }
    }
    if let Some((id, windows)) = from_vmas.into_iter().next() {
        return Err(format!("VMAs {windows:?} map {id}, which does not exist"));
    }
    Ok(())
}

/// Frames: allocated = resident ∪ page cache; no frame in two page-cache
/// slots; a free frame has no mapping.
fn audit_frames<M, F>(
    sys: &MemorySystem<M, F>,
    from_spaces: &BTreeSet<Entry>,
) -> Result<(), String> {
    let mut used: BTreeSet<PhysAddr> = from_spaces.iter().map(|e| e.2).collect();
    let mut slots: BTreeMap<PhysAddr, (ObjectId, u32)> = BTreeMap::new();
    for (id, object) in sys.objects.iter() {
        for (page, pa) in object.pages() {
            if let Some((other, other_page)) = slots.insert(pa, (id, page)) {
                return Err(format!(
                    "{pa} is page {page} of {id} and page {other_page} of {other}"
                ));
            }
            used.insert(pa);
        }
    }
    for pa in managed_frames(sys) {
        let allocated = sys.allocator.is_allocated(pa).map_err(|e| format!("{e}"))?;
        match (allocated, used.contains(&pa)) {
            (true, false) => {
                return Err(format!("{pa} is allocated but nothing holds it (leaked)"));
            }
            (false, true) => return Err(format!("{pa} is in use but free")),
            (false, false) => {
                let mappings = sys.frames.mappings(pa).map_err(|e| format!("{e}"))?;
                if !mappings.is_empty() {
                    return Err(format!("free {pa} still has mappings {mappings:?}"));
                }
            }
            (true, true) => {}
        }
    }
    let free = sys.allocator.free_frames();
    let allocated = sys.allocator.frames() - free;
    if allocated as usize != used.len() {
        return Err(format!(
            "the allocator counts {allocated} frames out, {} are in use",
            used.len()
        ));
    }
    Ok(())
}

fn managed_frames<M, F>(sys: &MemorySystem<M, F>) -> impl Iterator<Item = PhysAddr> + use<M, F> {
    let first = sys.frames.first().as_u32();
    (0..sys.frames.frames()).map(move |i| PhysAddr(first + i * PAGE))
}
