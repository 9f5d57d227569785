//! Named coverage points: one per coherence decision the engine makes,
//! counted where it is made, so a generator can show it reaches each one
//! on each cache kind (and a point no run reaches is a test gap, not a
//! proof).
//!
//! The counts live in [`Counters::coverage`](super::Counters::coverage):
//! a fixed array of `u64` incremented by one-line calls at the decision
//! sites. That stays on in `no_std` builds — an add to a word already in
//! the engine's cache lines beside the other counters, no allocation, no
//! feature switch that would make the checked engine differ from the one
//! that ships.

use crate::addr::VirtAddr;
use crate::cache::{CacheInfo, CacheKind};
use crate::mm::object::ObjectKind;
use crate::mm::space::{AddressSpace, FaultOutcome, Protection};
use crate::mmu::{KeyOutcome, SwitchReport};

macro_rules! points {
    ($($(#[$doc:meta])* $name:ident => $applies:expr,)*) => {
        /// A coherence decision of the engine.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        #[repr(u8)]
        pub enum Point {
            $($(#[$doc])* $name,)*
        }

        impl Point {
            /// Every point, in order.
            pub const ALL: &'static [Point] = &[$(Point::$name,)*];

            /// The point's name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Point::$name => stringify!($name),)*
                }
            }

            /// True if the point can be reached on a cache of `kind` whose
            /// context switches are `switching`.
            pub fn applies(self, kind: CacheKind, switching: Switching) -> bool {
                let applies: fn(Class, Switching) -> bool = match self {
                    $(Point::$name => $applies,)*
                };
                applies(Class::of(kind), switching)
            }
        }
    };
}

/// How context switches treat the caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switching {
    /// Every switch flushes (ARM926 without FCSE PIDs).
    Flushing,
    /// Keys keep other spaces' lines: FCSE PIDs (ARM926) or ASIDs (ARMv6).
    Keyed,
}

/// The cache kinds as the points tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Vivt,
    ViptAliasing,
    NonAliasing,
}

impl Class {
    fn of(kind: CacheKind) -> Class {
        match kind {
            CacheKind::Vivt => Class::Vivt,
            CacheKind::VipAliasing { .. } => Class::ViptAliasing,
            _ => Class::NonAliasing,
        }
    }
}

fn all(_: Class, _: Switching) -> bool {
    true
}
fn aliasing(c: Class, _: Switching) -> bool {
    c != Class::NonAliasing
}
fn vivt(c: Class, _: Switching) -> bool {
    c == Class::Vivt
}
fn vipt_aliasing(c: Class, _: Switching) -> bool {
    c == Class::ViptAliasing
}
fn non_aliasing(c: Class, _: Switching) -> bool {
    c == Class::NonAliasing
}
fn keyed(_: Class, s: Switching) -> bool {
    s == Switching::Keyed
}
fn aliasing_keyed(c: Class, s: Switching) -> bool {
    c != Class::NonAliasing && s == Switching::Keyed
}
fn flushing(_: Class, s: Switching) -> bool {
    s == Switching::Flushing
}
fn vivt_flushing(c: Class, s: Switching) -> bool {
    c == Class::Vivt && s == Switching::Flushing
}

points! {
    /// `flush_dcache_page` with no user mapping: deferred.
    KernelAliasDeferred => all,
    /// `update_mmu_cache` completes a deferred kernel write (cleans the
    /// kernel alias, whose lines are apart from the user's).
    DeferredCompleted => aliasing,
    /// `flush_dcache_page` while users map the page apart from the kernel
    /// alias: both sides cleaned and invalidated.
    KernelWriteReachesUsers => aliasing,
    /// A user mapping installed (`update_mmu_cache`) at another virtual
    /// address than the kernel alias, on VIVT.
    AliasVivt => vivt,
    /// …of the kernel alias's colour, on an aliasing VIPT cache.
    AliasViptSameColour => vipt_aliasing,
    /// …of another colour than the kernel alias, on an aliasing VIPT cache.
    AliasViptOtherColour => vipt_aliasing,
    /// …on a cache where no alias holds separate lines.
    AliasNone => non_aliasing,
    /// `make_coherent` made a page's aliases in one space uncacheable.
    MadeUncached => aliasing,
    /// `make_coherent` made them cacheable again.
    Restored => aliasing,
    /// A zero-filled page for a user mapping.
    ZeroFill => all,
    /// A copy-on-write copy.
    CowCopy => all,
    /// A fill or copy through a kernel window of the user's colour.
    WindowFill => vipt_aliasing,
    /// `kmap` through a window of a colour other than the linear map's.
    KmapOtherColour => vipt_aliasing,
    /// `kmap` through the linear map.
    KmapLinear => all,
    /// A context switch that flushed the caches.
    SwitchFlushed => flushing,
    /// A context switch that left other spaces' lines in the cache (FCSE
    /// PID, ASID).
    SwitchKeptLines => keyed,
    /// A key (ASID, FCSE PID) generation rolled over at a switch.
    KeyRollover => keyed,
    /// A page shared writable across spaces in separate lines was
    /// recorded (`note_sharing`).
    NewlyShared => aliasing,
    /// After a switch that kept lines, pages shared before were separated.
    SharedSeparated => aliasing_keyed,
    /// A user mapping that may execute was installed: D cleaned, I
    /// invalidated.
    ExecMapping => all,
    /// User pages at their frame's own colour on aliasing VIPT, dying
    /// (exit, munmap) or mapped read-only, were left to the linear map's
    /// lines: no maintenance.
    LeftToLinearMap => vipt_aliasing,
    /// An executable mapping of a page whose code memory already held
    /// (`PageFlags::CODE_SYNCED`): only the I-cache's part done.
    ExecMappingOfSyncedCode => all,
    /// `mprotect` adding `PROT_EXEC` to pages that had it not.
    MprotectToExec => all,
    /// `mprotect` taking `PROT_EXEC` away.
    MprotectFromExec => all,
    /// `flush_dcache_page` of a page some mapping executes (new code).
    KernelWroteCode => all,
    /// `flush_icache_range` (code written at a range, then run).
    IcacheRange => all,
    /// A DMA buffer's partially covered first or last line was cleaned
    /// and invalidated (counted by `Dma`, see [`Coverage::add`]).
    DmaPartialLine => all,
    /// A shared-memory page not yet in its object, zero-filled.
    FreshSharedPage => all,
    /// A file page not yet in the page cache, faulted in (its contents are
    /// the caller's).
    FreshFilePage => all,
    /// A private write to a file page not yet in the page cache, read in
    /// first (mapped read-only for the caller to fill; the retried write
    /// copies it).
    FileReadBeforeCopy => all,
    /// `exit` of the running space, refused.
    ExitRefusedRunning => all,
    /// `exit` of a space whose lines may be cached.
    ExitLive => all,
    /// `exit` of a space a flushing switch already emptied from the cache.
    ExitNotLive => vivt_flushing,
    /// A range maintained by cleaning the whole D-cache (above the
    /// threshold, or no window to reach an alias).
    WholeCacheFallback => aliasing,
    /// Maintenance skipped: the space's lines are not live (VIVT).
    SkippedNotLive => vivt,
}

/// Number of points.
pub const POINTS: usize = Point::ALL.len();

/// Hits per point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    hits: [u64; POINTS],
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage { hits: [0; POINTS] }
    }
}

impl Coverage {
    /// One hit of `point`.
    #[inline]
    pub fn hit(&mut self, point: Point) {
        self.hits[point as usize] += 1;
    }

    /// `n` hits of `point` (for decisions counted elsewhere, such as
    /// `Dma`'s partial lines).
    pub fn add(&mut self, point: Point, n: u64) {
        self.hits[point as usize] += n;
    }

    /// Hits of `point`.
    pub fn get(&self, point: Point) -> u64 {
        self.hits[point as usize]
    }

    /// Adds `other`'s hits.
    pub fn merge(&mut self, other: &Coverage) {
        for (a, b) in self.hits.iter_mut().zip(other.hits.iter()) {
            *a += b;
        }
    }

    /// A user mapping at `va` of a frame the kernel sees at `kva`.
    #[inline]
    pub fn alias(&mut self, info: &CacheInfo, va: VirtAddr, kva: VirtAddr) {
        self.hit(match info.kind {
            CacheKind::Vivt => Point::AliasVivt,
            CacheKind::VipAliasing { .. } if info.colour_of(va) == info.colour_of(kva) => {
                Point::AliasViptSameColour
            }
            CacheKind::VipAliasing { .. } => Point::AliasViptOtherColour,
            _ => Point::AliasNone,
        });
    }

    /// A context switch that happened.
    #[inline]
    pub fn switch(&mut self, report: &SwitchReport) {
        self.hit(if report.cache_flushed {
            Point::SwitchFlushed
        } else {
            Point::SwitchKeptLines
        });
        if report.key_outcome == Some(KeyOutcome::RolledOver) {
            self.hit(Point::KeyRollover);
        }
    }

    /// `mprotect` of `[va, va + len)` in `space` to `new` (before it is
    /// made).
    pub fn mprotect(&mut self, space: &AddressSpace, va: VirtAddr, len: u32, new: Protection) {
        let exec = new.contains(Protection::EXEC);
        let end = u64::from(va.as_u32()) + u64::from(len);
        let changes = space.vmas().any(|v| {
            u64::from(v.start().as_u32()) < end
                && v.end().as_u32() > va.as_u32()
                && v.prot().contains(Protection::EXEC) != exec
        });
        if changes {
            self.hit(if exec {
                Point::MprotectToExec
            } else {
                Point::MprotectFromExec
            });
        }
    }

    /// A fault's outcome.
    #[inline]
    pub fn fault(&mut self, outcome: &FaultOutcome) {
        match outcome {
            FaultOutcome::ZeroFill { .. } => self.hit(Point::ZeroFill),
            FaultOutcome::CopyOnWrite { .. } => self.hit(Point::CowCopy),
            _ => {}
        }
    }

    /// An object page of `kind` faulted in fresh: a file's, or shared
    /// memory's.
    #[inline]
    pub fn fresh(&mut self, kind: Option<ObjectKind>) {
        self.hit(if kind == Some(ObjectKind::File) {
            Point::FreshFilePage
        } else {
            Point::FreshSharedPage
        });
    }

    /// `kmap` through a window, or the linear map.
    #[inline]
    pub(super) fn kmap(&mut self, through: &super::fault::Through) {
        self.hit(if matches!(through, super::fault::Through::Window(..)) {
            Point::KmapOtherColour
        } else {
            Point::KmapLinear
        });
    }

    /// `exit` of the running space, refused.
    #[inline]
    pub fn refused_exit(&mut self) {
        self.hit(Point::ExitRefusedRunning);
    }

    /// `exit` of a space whose lines may be cached (`live`) or not.
    #[inline]
    pub fn exit(&mut self, live: bool) {
        self.hit(if live {
            Point::ExitLive
        } else {
            Point::ExitNotLive
        });
    }

    /// `update_mmu_cache` completing a deferred kernel write.
    #[inline]
    pub fn deferred_done(&mut self) {
        self.hit(Point::DeferredCompleted);
    }

    /// `flush_dcache_page` reaching users' lines apart from the kernel's.
    #[inline]
    pub fn reaches_users(&mut self) {
        self.hit(Point::KernelWriteReachesUsers);
    }

    /// The hits of points the engine already counts in
    /// [`Counters`](super::Counters) fields, added in: deferrals,
    /// uncache/restore transitions, window fills, separations, whole-cache
    /// operations, skips.
    pub fn with_counters(mut self, c: &super::Counters) -> Coverage {
        self.add(Point::KernelAliasDeferred, c.deferred);
        self.add(Point::MadeUncached, c.made_uncached);
        self.add(Point::Restored, c.restored);
        self.add(Point::WindowFill, c.window_fills);
        self.add(Point::SharedSeparated, c.cross_space_separations);
        self.add(Point::WholeCacheFallback, c.whole_cache_flushes);
        self.add(Point::SkippedNotLive, c.skipped_not_live);
        self
    }
}
