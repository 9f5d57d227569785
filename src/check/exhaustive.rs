//! Bounded exhaustive checking: every sequence of up to `k` events of a
//! small alphabet over a small world, on every preset, judged by the same
//! interpreter as the random programs ([`World::apply`]: the model's
//! oracle, the content reference, unexpected errors).
//!
//! ```text
//!   the world (World::on, colour alignment off; a blind engine for the
//!   planted bug), each preset and the ARM926 under FCSE PIDs
//!     the kernel; process P0 and, after the set-up's fork, P1
//!     file 0's page 0 (a page-cache page, colour 0), one anonymous page
//!
//!   user address (MAP_FIXED)      page  colour (ARM1136 32K / 64K)
//!     A   file 0 page 0, RW         0     0 / 0
//!     B   file 0 page 0, RWX        1     1 / 1   another colour than A
//!     C   file 0 page 0, RW         8     0 / 0   A's colour, another VA
//!     N   private anonymous, RW    16     0 / 0   copy-on-write after fork
//!
//!   set-up (not enumerated, [`setup`]): P0 maps A, B, C and N; P0 forks
//!   P1, which inherits them (same addresses: the same colour across
//!   spaces; under VIVT, FCSE PIDs make them different lines)
//!
//!   alphabet ([`alphabet`], 20 events): user stores, loads and a fetch
//!   at A, B, C, N in one process or the other; mmap of B again
//!   (MAP_FIXED over it), munmap of A, mprotect RW→R; a switch to each
//!   process; exit of P1, fork of P0 (back to two); the kernel's write
//!   through a Kmap and through flush_dcache_page, its read
//! ```
//!
//! **Enumeration.** Depth first over all sequences of enabled events (an
//! event is disabled where it means nothing: a process that does not
//! exist, a mapping that is not there) up to length `k`. A `World` cannot
//! be cloned (it holds the engine's handles, which own frames and are
//! deliberately not `Clone`), so each sequence is replayed from a fresh
//! world; the last child of a node reuses its parent's world. Most of a
//! fresh world's cost is its set-up: three 16 KiB L1 tables zeroed
//! through the model, about 2.7 ms a world.
//!
//! **Fingerprint.** After every event the state is hashed
//! ([`fingerprint`]); a sequence reaching a fingerprint already seen at
//! the same or a smaller depth is not extended (its futures were, or will
//! be, explored from the other one with at least as many events left).
//! The fingerprint holds: the running process and the processes' VMAs and
//! resident frames; the content reference's bindings (private copies
//! named canonically), protections, unflushed-code marks and the one word
//! every access of the alphabet touches; the file page's word; the
//! frame database's state (flags, colour, reverse map) of every frame in
//! play; the engine's own state ([`Engine::fingerprint`]: live spaces,
//! FCSE PIDs, frames shared across spaces, kernel windows); the context
//! switcher (keys); and the model's ([`Sim::fingerprint`]): caches'
//! lines with data and their versions renamed by rank (the oracle only
//! compares versions), the replacement state, TLB, write and write-back
//! buffers, branch target cache, memory and its versions over the frames
//! in play.
//!
//! [`Engine::fingerprint`]: crate::coherence::Engine::fingerprint
//! [`Sim::fingerprint`]: crate::sim::Sim::fingerprint
//!
//! **No symmetry reduction.** The two processes are not interchangeable:
//! P0 is the parent and the one running after the set-up, they hold
//! different ASIDs or FCSE PIDs and address-space numbers, the world
//! lists them in order, and only P1 exits and only P0 forks. The
//! fingerprint merges what symmetry would, where the states really are
//! alike.
//!
//! **What it proves.** On each preset, no sequence of up to `k` events of
//! the alphabet after the set-up violates the oracle or the content
//! reference or fails unexpectedly — up to the fingerprint's
//! abstraction, which leaves out: the free frames' order (which frame of
//! a colour comes next; states differing only there behave alike up to a
//! renaming of frames), memory outside the frames in play (page tables
//! are reached through the TLB and the VMAs), and words other than the
//! one the alphabet touches (no event reads them). A 64-bit hash
//! may collide (by the birthday bound, about 1 in 10^8 for 10^5 states).
//!
//! **What it does not.** Longer sequences, other words, lines and pages,
//! more than two processes, more file pages, the shared buffer, DMA (in
//! this world DMA touches only the kernel's DMA area, which no other event
//! touches), `brk`, exec, invalid calls: the random programs' ground.
//! Events left out for engine bugs are listed in [`LEFT_OUT`].

use core::hash::{Hash, Hasher};
use std::collections::HashMap;
use std::string::String;
use std::time::{Duration, Instant};
use std::vec::Vec;

use rustc_hash::FxHasher;

use crate::addr::{PhysAddr, VirtAddr};
use crate::sim::CpuModel;

use super::machine::{MIN, Machine, PAGE, Switching, presets};
use super::op::{
    FLUSH_DCACHE_PAGE_UNDER_WRITERS, KERNEL_WRITES_UNALIGNED, KernelWriteVia, MapKind, Op, Prot,
    UserAddr,
};
use super::reference::Binding;
use super::world::{Failure, World};

/// The word of every page the alphabet's accesses touch.
pub const WORD: u16 = 1;

/// The alias sites: page offsets from [`MIN`] (`MAP_FIXED`).
pub const SITE_A: u16 = 0;
/// Another colour than A (page 1).
pub const SITE_B: u16 = 1;
/// The same colour as A, another address (page 8).
pub const SITE_C: u16 = 8;
/// The anonymous page.
pub const SITE_N: u16 = 16;

/// The constants below that keep events out of the default alphabet, each
/// for an engine failure the enumeration found, with an ignored reproducer
/// in this module.
/// (The alphabet also keeps `op::FLUSH_DCACHE_PAGE_UNDER_WRITERS`: the
/// kernel writes through `flush_dcache_page` only while no process maps
/// the page shared and writable, unless that constant is true.)
pub const LEFT_OUT: &[&str] = &[];

/// `mprotect` of A to `PROT_READ | PROT_EXEC` and a fetch at A: in the
/// alphabet (known bug 2, fixed).
pub const MPROTECT_ADDS_EXEC: bool = true;

/// Under FCSE PIDs the world forks (in the set-up and as an event). The
/// failure found here (a child reading its parent's later store,
/// `fcse_child_sees_the_parents_copy_on_write_store`) was the world's: its
/// FCSE machine did not model the FCSE's relocation.
pub const FCSE_FORK: bool = true;

/// Under FCSE PIDs the kernel writes and reads the file page through a
/// `Kmap` while a process maps it. The failure found here
/// (`fcse_kmap_misses_a_users_dirty_line`) had the same cause as
/// [`FCSE_FORK`]'s.
pub const FCSE_KMAP_UNDER_USERS: bool = true;

/// What an event does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A user store of `value` at a site.
    Store(u16, u32),
    /// A user load at a site.
    Load(u16),
    /// A user instruction fetch at a site.
    Fetch(u16),
    /// `mmap` of file 0's page 0 at a site (`MAP_FIXED`, shared).
    MapFile(u16, Prot),
    /// `munmap` of the page at a site.
    Unmap(u16),
    /// `mprotect` of the page at a site.
    Protect(u16, Prot),
    /// A switch to the process (if it does not run).
    Switch,
    /// The process exits (while another one lives).
    Exit,
    /// The process forks (while it is the only one).
    Fork,
    /// The kernel writes the file page's word.
    KernelWrite(KernelWriteVia, u32),
    /// The kernel reads the file page's word.
    KernelRead,
    /// The kernel takes a free frame, dirties its lines and frees it
    /// (`Op::KernelScratch`): the next fill must not see them.
    KernelScratch,
}

/// One letter of the alphabet: a process (for user events) and what it
/// does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// A short name for reports.
    pub name: &'static str,
    /// Process 0 or 1 (kernel events: ignored).
    pub proc: u8,
    /// What.
    pub action: Action,
}

const fn ev(name: &'static str, proc: u8, action: Action) -> Event {
    Event { name, proc, action }
}

/// The set-up before every sequence: P0 maps file 0's page 0 shared at A
/// (read-write), B (another colour, read-write-execute) and C (A's colour,
/// read-write), and N (anonymous), then (with `fork`) forks P1, which
/// inherits them.
pub fn setup(fork: bool) -> Vec<Op> {
    let fixed = |kind, prot, site| Op::Mmap {
        proc: 0,
        kind,
        pages: 0,
        prot,
        fixed: Some(site),
    };
    let mut ops = vec![
        fixed(
            MapKind::SharedFile { file: 0, page: 0 },
            Prot::ReadWrite,
            SITE_A,
        ),
        fixed(
            MapKind::SharedFile { file: 0, page: 0 },
            Prot::ReadWriteExec,
            SITE_B,
        ),
        fixed(
            MapKind::SharedFile { file: 0, page: 0 },
            Prot::ReadWrite,
            SITE_C,
        ),
        fixed(MapKind::PrivateAnon, Prot::ReadWrite, SITE_N),
    ];
    if fork {
        ops.push(Op::Fork { proc: 0 });
    }
    ops
}

/// The default alphabet (events gated by [`LEFT_OUT`]'s constants
/// included only when these are true).
pub fn alphabet() -> Vec<Event> {
    use Action::*;
    let mut events = vec![
        ev("P0 store A", 0, Store(SITE_A, 0xa0)),
        ev("P1 load A", 1, Load(SITE_A)),
        ev("P1 store A", 1, Store(SITE_A, 0xa1)),
        ev("P1 store B", 1, Store(SITE_B, 0xb1)),
        ev("P1 load B", 1, Load(SITE_B)),
        ev("P1 fetch B", 1, Fetch(SITE_B)),
        ev("P1 mmap B again", 1, MapFile(SITE_B, Prot::ReadWriteExec)),
        ev("P0 store C", 0, Store(SITE_C, 0xc0)),
        ev("P0 load C", 0, Load(SITE_C)),
        ev("P0 store N", 0, Store(SITE_N, 0xe0)),
        ev("P1 load N", 1, Load(SITE_N)),
        ev("P1 munmap A", 1, Unmap(SITE_A)),
        ev("P0 mprotect A R", 0, Protect(SITE_A, Prot::Read)),
        ev("switch P0", 0, Switch),
        ev("switch P1", 1, Switch),
        ev("P1 exit", 1, Exit),
        ev("P0 fork", 0, Fork),
        ev(
            "kernel write (kmap)",
            0,
            KernelWrite(KernelWriteVia::Kmap, 0x4b),
        ),
        ev(
            "kernel write (flush_dcache_page)",
            0,
            KernelWrite(KernelWriteVia::PageCacheWrite, 0x46),
        ),
        ev("kernel read", 0, KernelRead),
        ev("kernel scratch frame", 0, KernelScratch),
    ];
    if MPROTECT_ADDS_EXEC {
        events.push(ev("P0 mprotect A RX", 0, Protect(SITE_A, Prot::ReadExec)));
        events.push(ev("P0 fetch A", 0, Fetch(SITE_A)));
    }
    events
}

/// True if some process maps file 0's page 0.
fn file_page_mapped(world: &World) -> bool {
    world
        .reference
        .procs
        .iter()
        .any(|p| p.pages.values().any(|b| *b == Binding::File(0, 0)))
}

/// The user address of a site's page.
pub fn site_va(site: u16) -> u32 {
    MIN + u32::from(site) * PAGE
}

/// The index (as [`UserAddr::vma`] counts) of process `p`'s mapping
/// holding `va`, and the page in it.
fn vma_at(world: &World, p: usize, va: u32) -> Option<(u8, u8)> {
    world
        .space(p)
        .vmas()
        .position(|v| v.contains(VirtAddr(va)))
        .map(|i| {
            let v = world.space(p).vmas().nth(i).expect("found");
            (i as u8, ((va - v.start().as_u32()) / PAGE) as u8)
        })
}

impl Event {
    /// The operation this event is in `world`, or `None` where it is
    /// disabled (its process or its mapping is not there, or a constant of
    /// [`LEFT_OUT`] keeps it out).
    pub fn op(&self, world: &World) -> Option<Op> {
        match self.action {
            Action::KernelWrite(KernelWriteVia::PageCacheWrite, _)
                if !FLUSH_DCACHE_PAGE_UNDER_WRITERS && world.file_page_mapped_writable(0, 0) =>
            {
                None
            }
            Action::Fork if world.m.fcse && !FCSE_FORK => None,
            Action::KernelWrite(..) | Action::KernelRead
                if !KERNEL_WRITES_UNALIGNED
                    && !world.colour_aligned()
                    && matches!(
                        world.m.engine.info().kind,
                        crate::cache::CacheKind::VipAliasing { .. }
                    ) =>
            {
                None
            }
            Action::KernelWrite(..) | Action::KernelRead
                if world.m.fcse && !FCSE_KMAP_UNDER_USERS && file_page_mapped(world) =>
            {
                None
            }
            _ => self.any_op(world),
        }
    }

    /// The operation this event is in `world`, `LEFT_OUT` or not.
    pub fn any_op(&self, world: &World) -> Option<Op> {
        use Action::*;
        let kernel = matches!(self.action, KernelWrite(..) | KernelRead | KernelScratch);
        let p = usize::from(self.proc);
        if !kernel && p >= world.processes() {
            return None;
        }
        let proc = self.proc;
        let at = |site: u16| {
            vma_at(world, p, site_va(site)).map(|(vma, page)| UserAddr {
                vma,
                page,
                word: WORD,
            })
        };
        Some(match self.action {
            Store(site, value) => Op::Store {
                proc,
                at: at(site)?,
                value,
            },
            Load(site) => Op::Load {
                proc,
                at: at(site)?,
            },
            Fetch(site) => Op::Fetch {
                proc,
                at: at(site)?,
            },
            MapFile(site, prot) => Op::Mmap {
                proc,
                kind: MapKind::SharedFile { file: 0, page: 0 },
                pages: 0,
                prot,
                fixed: Some(site),
            },
            Unmap(site) => {
                let (vma, first) = vma_at(world, p, site_va(site))?;
                Op::Munmap {
                    proc,
                    vma,
                    first,
                    pages: 0,
                }
            }
            Protect(site, prot) => {
                let (vma, first) = vma_at(world, p, site_va(site))?;
                Op::Mprotect {
                    proc,
                    vma,
                    first,
                    pages: 0,
                    prot,
                }
            }
            Switch if world.current() == p => return None,
            Switch => Op::Switch { to: proc },
            Exit if world.processes() < 2 => return None,
            Exit => Op::Exit { proc },
            Fork if world.processes() > 1 => return None,
            Fork => Op::Fork { proc },
            KernelWrite(via, value) => Op::KernelWrite {
                file: 0,
                page: 0,
                word: WORD,
                value,
                via,
            },
            KernelRead => Op::KernelRead {
                file: 0,
                page: 0,
                word: WORD,
            },
            KernelScratch => Op::KernelScratch {
                first_line: 0,
                lines: 127,
                value: 0x5c,
            },
        })
    }
}

/// `Debug` output fed to a hasher.
struct Feed<'a, H>(&'a mut H);

impl<H: Hasher> core::fmt::Write for Feed<'_, H> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

/// The state's fingerprint (see the module documentation).
pub fn fingerprint(world: &World) -> u64 {
    let mut h = FxHasher::default();
    let word = usize::from(WORD);
    world.current().hash(&mut h);
    world.processes().hash(&mut h);
    world.buffer_owned_by_users().hash(&mut h);
    // Frames in play: the file page and every resident user page.
    let mut frames: Vec<PhysAddr> = Vec::new();
    if let Ok(object) = world.m.sys.objects.get(world.file(0))
        && let Some(pa) = object.page(0)
    {
        frames.push(pa);
    }
    // Private copies named by first appearance.
    let mut names: HashMap<u64, usize> = HashMap::new();
    for p in 0..world.processes() {
        let space = world.space(p);
        // By slot (see `Engine::fingerprint`).
        space.id().slot().hash(&mut h);
        for vma in space.vmas() {
            vma.hash(&mut h);
            for va in (vma.start().as_u32()..vma.end().as_u32()).step_by(PAGE as usize) {
                let pa = space.resident_at(VirtAddr(va));
                pa.hash(&mut h);
                frames.extend(pa);
            }
        }
        let reference = &world.reference.procs[p];
        for (&va, &binding) in &reference.pages {
            va.hash(&mut h);
            match binding {
                Binding::Private(id) | Binding::SharedAnon(id, _) => {
                    let next = names.len();
                    (
                        core::mem::discriminant(&binding),
                        *names.entry(id).or_insert(next),
                    )
                        .hash(&mut h);
                }
                other => format_hash(&mut h, &other),
            }
            reference.prot.get(&va).hash(&mut h);
            world.reference.unsynced(p, va).hash(&mut h);
            world
                .reference
                .load(p, va + 4 * u32::from(WORD))
                .hash(&mut h);
        }
    }
    world.reference.file_words(0, 0)[word].hash(&mut h);
    frames.sort_unstable();
    frames.dedup();
    for &pa in &frames {
        if let Ok(state) = world.m.sys.frames.state(pa) {
            (state.flags(), state.user_colour()).hash(&mut h);
            for m in state.mappings() {
                (m.space.slot(), m.va, m.writable, m.shared, m.kind).hash(&mut h);
            }
        }
    }
    world.m.engine.fingerprint(&mut h);
    format_hash(&mut h, &world.m.switcher);
    let ranges: Vec<(u32, u32)> = frames.iter().map(|pa| (pa.as_u32(), PAGE)).collect();
    world.m.sys.mem.fingerprint(&ranges, &mut h);
    h.finish()
}

fn format_hash<H: Hasher>(h: &mut H, value: &dyn core::fmt::Debug) {
    let _ = core::fmt::write(&mut Feed(h), format_args!("{value:?}"));
}

/// A world to check: preset, switcher, and whether the engine is blind
/// (believes the cache is PIPT: a planted bug).
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// For reports.
    pub name: &'static str,
    /// The model.
    pub model: CpuModel,
    /// How it switches.
    pub switching: Switching,
    /// A blind engine.
    pub blind: bool,
}

impl Target {
    /// A fresh world, colour alignment off, the set-up run.
    ///
    /// # Panics
    /// If the set-up fails.
    pub fn world(&self) -> World {
        let m = if self.blind {
            Machine::blind(self.model)
        } else {
            Machine::with_switching(self.model, self.switching)
        };
        let fork = !m.fcse || FCSE_FORK;
        let mut world = World::on(m, false);
        for op in setup(fork) {
            world
                .apply(&op)
                .unwrap_or_else(|f| panic!("{}: set-up: {f}", self.name));
        }
        world
    }
}

/// The targets: every preset, and the ARM926 under FCSE PIDs.
pub fn targets() -> Vec<Target> {
    let mut targets: Vec<Target> = presets()
        .into_iter()
        .map(|(name, model)| Target {
            name,
            model,
            switching: Switching::Default,
            blind: false,
        })
        .collect();
    let (_, arm926) = presets()[0];
    targets.insert(
        1,
        Target {
            name: "ARM926 FCSE",
            model: arm926,
            switching: Switching::Fcse,
            blind: false,
        },
    );
    targets
}

/// A failing sequence: the events and the failure.
#[derive(Clone, Debug)]
pub struct Found {
    /// The events' names, in order.
    pub events: Vec<&'static str>,
    /// The operations run after the set-up.
    pub ops: Vec<Op>,
    /// What failed.
    pub failure: Failure,
}

/// One enumeration's figures.
#[derive(Clone, Debug)]
pub struct Stats {
    /// The target's name.
    pub name: &'static str,
    /// The bound.
    pub k: usize,
    /// Sequences run (every node of the tree that was not pruned before it
    /// ran: each is one distinct sequence of events).
    pub sequences: u64,
    /// Distinct fingerprints.
    pub states: usize,
    /// Sequences not extended: their fingerprint was seen at the same or
    /// a smaller depth.
    pub pruned: u64,
    /// Time taken.
    pub time: Duration,
    /// Failing sequences (the shortest first), not extended.
    pub failures: Vec<Found>,
}

struct Search<'a> {
    target: &'a Target,
    alphabet: &'a [Event],
    k: usize,
    seen: HashMap<u64, usize>,
    stats: Stats,
    stop_at_first: bool,
}

impl Search<'_> {
    fn replay(&self, prefix: &[Op]) -> World {
        let mut world = self.target.world();
        for op in prefix {
            world
                .apply(op)
                .unwrap_or_else(|f| panic!("{}: a replay diverged: {f}", self.target.name));
        }
        world
    }

    /// Extends `prefix` (run in `world`) by every enabled event.
    fn extend(&mut self, world: World, prefix: &mut Vec<Op>, names: &mut Vec<&'static str>) {
        if self.stop_at_first && !self.stats.failures.is_empty() {
            return;
        }
        let enabled: Vec<(Event, Op)> = self
            .alphabet
            .iter()
            .filter_map(|e| e.op(&world).map(|op| (*e, op)))
            .collect();
        let mut parent = Some(world);
        let n = enabled.len();
        for (i, (event, op)) in enabled.into_iter().enumerate() {
            let mut w = if i + 1 == n {
                parent.take().expect("the parent's world")
            } else {
                self.replay(prefix)
            };
            self.stats.sequences += 1;
            prefix.push(op);
            names.push(event.name);
            match w.apply(&op) {
                Err(failure) => {
                    self.stats.failures.push(Found {
                        events: names.clone(),
                        ops: prefix.clone(),
                        failure,
                    });
                    if self.stop_at_first {
                        return;
                    }
                }
                Ok(()) => {
                    let depth = prefix.len();
                    let fp = fingerprint(&w);
                    let new = match self.seen.get(&fp) {
                        Some(&d) if d <= depth => false,
                        _ => {
                            self.seen.insert(fp, depth);
                            true
                        }
                    };
                    if !new {
                        self.stats.pruned += 1;
                    } else if depth < self.k {
                        self.extend(w, prefix, names);
                    }
                }
            }
            prefix.pop();
            names.pop();
        }
    }
}

/// Every sequence of up to `k` events of `alphabet` on `target`.
pub fn explore(target: &Target, alphabet: &[Event], k: usize, stop_at_first: bool) -> Stats {
    let start = Instant::now();
    let mut search = Search {
        target,
        alphabet,
        k,
        seen: HashMap::new(),
        stats: Stats {
            name: target.name,
            k,
            sequences: 0,
            states: 0,
            pruned: 0,
            time: Duration::ZERO,
            failures: Vec::new(),
        },
        stop_at_first,
    };
    let world = target.world();
    search.seen.insert(fingerprint(&world), 0);
    if k > 0 {
        search.extend(world, &mut Vec::new(), &mut Vec::new());
    }
    let mut stats = search.stats;
    stats.states = search.seen.len();
    stats.time = start.elapsed();
    stats.failures.sort_by_key(|f| f.ops.len());
    stats
}

/// The table's header.
pub const HEADER: &str =
    "target          k  sequences   states   pruned     time  seq/s  violations";

/// One row of the table.
pub fn row(s: &Stats) -> String {
    let secs = s.time.as_secs_f64();
    std::format!(
        "{:<14} {:>2} {:>10} {:>8} {:>8} {:>7.1}s {:>6.0} {:>11}",
        s.name,
        s.k,
        s.sequences,
        s.states,
        s.pruned,
        secs,
        s.sequences as f64 / secs.max(1e-9),
        s.failures.len()
    )
}

#[cfg(test)]
mod tests;
