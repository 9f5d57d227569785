//! A world the operations of [`Op`] run in: processes, files, a kernel↔user
//! shared buffer, a DMA area; and the judges — the model's oracle after
//! every operation.

use std::collections::VecDeque;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::addr::{PhysAddr, VirtAddr};
use crate::coherence::coverage::{self, Coverage, Point};
use crate::coherence::dma::{Dma, DmaDirection};
use crate::coherence::shared::{SharedBuffer, SharingMode};
use crate::coherence::{CoherenceError, KernelAccess, KmapAccess};
use crate::mm::frames::FrameError;
use crate::mm::object::ObjectId;
use crate::mm::space::{
    AddressSpace, Backing, FaultAccess, FaultOutcome, MapSource, MmapArgs, Protection, SpaceError,
    Vma,
};
use crate::mmu::{PageTable, TableError};
use crate::sim::{CpuModel, SimError, Violation};

use super::books::Books;
use super::machine::{MIN, Machine, PAGE, Switching};
use super::op::{
    ARENA, ARENA_PAGES, DmaDir, INVALID_KINDS, KernelWriteVia, MapKind, Op, Prot, UserAddr,
};
use super::reference::{Binding, Process, Reference};

/// The kernel's DMA area (kernel data, VA = PA).
pub const DMA_AREA: u32 = 0x8_0000;
/// Its length.
pub const DMA_AREA_LEN: u32 = 0x2000;
/// Files in the page cache, each of [`FILE_PAGES`] zeroed pages; one more
/// file (the last) has none in the page cache: its pages are faulted in
/// fresh and filled by the world, as a kernel's read of the backing store.
pub const FILES: u32 = 3;
/// Pages per file.
pub const FILE_PAGES: u32 = 8;
/// At most this many processes (a fork beyond does nothing).
pub const MAX_PROCESSES: usize = 6;
/// The generator keeps each process below this many mappings.
pub const MAX_VMAS: usize = 10;
/// Operations kept for a failure's report.
const LOG: usize = 40;

/// Why a program failed.
#[derive(Clone, Debug)]
pub enum FailureKind {
    /// The model's oracle saw a stale read, a lost write, …
    Oracle(Vec<Violation>),
    /// A load returned other bytes than the semantics say.
    Content {
        /// Where.
        what: String,
        /// What the reference says.
        expected: u32,
        /// What the load returned.
        found: u32,
    },
    /// A call failed that must not (or an invalid call succeeded).
    Unexpected {
        /// The call.
        what: String,
        /// Its result.
        error: String,
    },
}

/// A failed program: why, and the last operations (oldest first).
#[derive(Clone, Debug)]
pub struct Failure {
    /// Why.
    pub kind: FailureKind,
    /// The last operations, as run.
    pub last: Vec<String>,
}

impl core::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FailureKind::Oracle(violations) => {
                writeln!(f, "the oracle saw {} violation(s):", violations.len())?;
                for v in violations {
                    writeln!(f, "  {v}")?;
                }
                Ok(())
            }
            FailureKind::Content {
                what,
                expected,
                found,
            } => writeln!(
                f,
                "{what} read {found:#010x} where the content reference says {expected:#010x}"
            ),
            FailureKind::Unexpected { what, error } => writeln!(f, "{what}: {error}"),
        }
    }
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.kind)?;
        writeln!(f, "last operations:")?;
        for op in &self.last {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// Errors a program may provoke and a kernel would report.
pub fn expected(e: &CoherenceError) -> bool {
    use FrameError as FE;
    match e {
        CoherenceError::Frame(FE::OutOfMemory | FE::NoFrameOfColour { .. }) => true,
        CoherenceError::Table(TableError::OutOfFrames { .. }) => true,
        CoherenceError::Space(s) => match s {
            // Lifted to `CoherenceError::Frame` / `Table` by the engine.
            SpaceError::Frame(_) | SpaceError::Table(_) => false,
            SpaceError::MetadataAllocFailed => false,
            _ => true,
        },
        CoherenceError::Unaligned { .. }
        | CoherenceError::StillRunning { .. }
        | CoherenceError::BadLength { .. }
        | CoherenceError::CopyOntoItself { .. } => true,
        _ => false,
    }
}

/// Processes, files, the shared buffer and the DMA area on one machine.
pub struct World {
    /// The machine.
    pub m: Machine,
    procs: Vec<AddressSpace>,
    current: usize,
    files: Vec<ObjectId>,
    buffer: SharedBuffer,
    buffer_owner_user: bool,
    dma: Dma,
    log: VecDeque<String>,
    /// Calls refused with an expected error.
    pub errors: u64,
    /// What every load must return.
    pub reference: Reference,
    /// Loads checked against the reference.
    pub checked_loads: u64,
    /// Test only: after every write fault that moved a page to a new
    /// frame, zero that frame (coherently, through a `Kmap`) — an engine
    /// that zero-fills copy-on-write copies instead of copying. The
    /// oracle cannot see it; the content reference must.
    pub sabotage_zero_cow_copies: bool,
    /// A planted bug for the tests: after each operation, the frame of the
    /// lowest page the process running before it mapped is freed behind
    /// the engine's back (an engine that frees a frame it still maps).
    #[cfg(test)]
    pub sabotage_free_a_mapped_frame: bool,
    /// Audit after every operation: the books agree
    /// ([`audit`](crate::mm::space::audit::audit): no leak, nothing owned
    /// twice) and every refused call left them exactly as they were
    /// ([`Books`]). Costs a walk of every frame per call: on for the
    /// whole-machine fuzz target and a short random-program run.
    pub strict: bool,
}

impl core::fmt::Debug for World {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("World")
            .field("processes", &self.procs.len())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

type Step = Result<(), Failure>;

impl World {
    /// A world on `model`: [`FILES`] files of [`FILE_PAGES`] zeroed pages
    /// in the page cache, a two-page shared buffer owned by the kernel, one
    /// process running.
    pub fn new(model: CpuModel) -> World {
        Self::with_switching(model, Switching::Default)
    }

    /// A world whose machine switches as `switching` says.
    pub fn with_switching(model: CpuModel, switching: Switching) -> World {
        Self::configured(model, switching, true)
    }

    /// A world switching as `switching` says; with `colour_aligned` false
    /// `mmap` places mappings at any page, as a kernel without colour
    /// alignment does, so (aliasing VIPT) shared pages meet at different
    /// colours and private file pages sit at another colour than their frame.
    pub fn configured(model: CpuModel, switching: Switching, colour_aligned: bool) -> World {
        Self::on(Machine::with_switching(model, switching), colour_aligned)
    }

    /// A world on machine `m` (e.g. [`Machine::blind`]), as
    /// [`World::configured`] builds one.
    pub fn on(mut m: Machine, colour_aligned: bool) -> World {
        let model = *m.sys.mem.model();
        if !colour_aligned {
            m.colour_span = PAGE;
        }
        let mut files = Vec::new();
        let colours = m.sys.allocator.colours();
        for _ in 0..FILES {
            let file = m.file(FILE_PAGES);
            for page in 0..FILE_PAGES {
                let pa = m
                    .sys
                    .allocator
                    .allocate_colour(page & (colours - 1))
                    .expect("frames for the files");
                m.sys
                    .objects
                    .insert_page(file, page, pa)
                    .expect("a file page");
                let mut kmap = m
                    .engine
                    .kmap(&mut m.sys, pa, KmapAccess::Write)
                    .expect("kmap");
                let at = kmap.va().as_u32();
                kmap.mem().zero_page(VirtAddr(at)).expect("zeroing");
                kmap.finish().expect("kmap finish");
            }
            files.push(file);
        }
        // The file not yet in the page cache.
        files.push(m.file(FILE_PAGES));
        let buffer = m
            .engine
            .create_shared_buffer(&mut m.sys, None, 2, SharingMode::HandOver)
            .expect("the shared buffer");
        let mut first = m.space();
        m.switch_to(&mut first);
        let dma = Dma::new(&model.info());
        let mut reference = Reference::new(FILES as usize + 1, FILE_PAGES, 2, DMA_AREA_LEN + 8);
        reference.procs.push(Process {
            pages: Default::default(),
            prot: Default::default(),
            brk: first.brk_value().as_u32(),
        });
        World {
            m,
            procs: vec![first],
            current: 0,
            files,
            buffer,
            buffer_owner_user: false,
            dma,
            log: VecDeque::new(),
            errors: 0,
            reference,
            checked_loads: 0,
            sabotage_zero_cow_copies: false,
            #[cfg(test)]
            sabotage_free_a_mapped_frame: false,
            strict: false,
        }
    }

    // ---- what the generator may look at ------------------------------------

    /// The running process's index.
    pub fn current(&self) -> usize {
        self.current
    }

    /// Process `p`'s address space.
    ///
    /// # Panics
    /// If there is no process `p`.
    pub fn space(&self, p: usize) -> &AddressSpace {
        &self.procs[p]
    }

    /// File `f`'s object (modulo the files).
    pub fn file(&self, f: usize) -> ObjectId {
        self.files[f % self.files.len()]
    }

    /// How many processes live.
    pub fn processes(&self) -> usize {
        self.procs.len()
    }

    /// Process `p`'s mappings (all).
    pub fn vmas(&self, p: usize) -> usize {
        self.procs.get(p).map_or(0, |s| s.vmas().count())
    }

    /// Process `p`'s mappings other than the shared buffer's.
    pub fn user_vmas(&self, p: usize) -> usize {
        self.procs
            .get(p)
            .map_or(0, |s| s.vmas().filter(|v| !self.is_buffer(v)).count())
    }

    /// True if process `p` maps the shared buffer.
    pub fn buffer_mapped(&self, p: usize) -> bool {
        self.procs
            .get(p)
            .is_some_and(|s| s.vmas().any(|v| self.is_buffer(v)))
    }

    /// True while users own the shared buffer.
    pub fn buffer_owned_by_users(&self) -> bool {
        self.buffer_owner_user
    }

    /// The coverage points the engine (and the DMA API) reached so far.
    pub fn coverage(&self) -> Coverage {
        let c = self.m.engine.counters();
        let mut coverage = c.coverage.with_counters(c);
        let partial = self.dma.counters().partial_lines_cleaned;
        coverage.add(Point::DmaPartialLine, partial);
        coverage
    }

    /// How this world's switches treat the caches.
    pub fn switching(&self) -> coverage::Switching {
        match self.m.switcher.policy() {
            crate::mmu::SwitchPolicy::VivtFlush => coverage::Switching::Flushing,
            _ => coverage::Switching::Keyed,
        }
    }

    /// True if some process maps file `file`'s page `page` (both modulo)
    /// shared and writable, by the reference.
    pub fn file_page_mapped_writable(&self, file: u8, page: u8) -> bool {
        let f = usize::from(file) % self.files.len();
        let n = u32::from(page) % FILE_PAGES;
        self.reference.procs.iter().any(|p| {
            p.pages.iter().any(|(va, b)| {
                *b == Binding::File(f, n)
                    && p.prot
                        .get(va)
                        .is_some_and(|x| x.contains(Protection::WRITE))
            })
        })
    }

    /// True if `mmap` colour-aligns mappings (see [`World::configured`]).
    pub fn colour_aligned(&self) -> bool {
        self.m.colour_span != PAGE || self.m.sys.allocator.colours() == 1
    }

    /// The last operations, oldest first.
    pub fn last_ops(&self) -> Vec<String> {
        self.log.iter().cloned().collect()
    }

    // ---- the interpreter ------------------------------------------------------

    /// Runs one operation; then the model's oracle must have seen nothing.
    pub fn apply(&mut self, op: &Op) -> Step {
        if self.log.len() == LOG {
            self.log.pop_front();
        }
        self.log.push_back(format!("{op:?}"));
        let handed_out = self.m.sys.allocator.handed_out().to_vec();
        #[cfg(test)]
        let sabotaged = self
            .sabotage_free_a_mapped_frame
            .then(|| self.procs[self.current].resident().next())
            .flatten();
        self.run(op)?;
        #[cfg(test)]
        if let Some((_, pa)) = sabotaged {
            let _ = self.m.sys.allocator.free(pa);
        }
        // A frame the kernel freed has no owner: its contents are dead, by
        // the world's semantics (whatever the engine did with its lines).
        // A shared object's frames go with its last mapping, a private
        // page's with its space or its COW sharer: rather than predict each
        // path, every frame handed out before the operation and free after
        // it is declared dead. Writing a line of it back over its next
        // owner's data stays a violation (`Sim::declare_dead`).
        let freed = self.m.sys.allocator.freed_since(&handed_out);
        self.freed_frames_are_unmapped(&freed)?;
        self.declare_dead(&freed)?;
        if self.strict {
            self.audit()?;
        }
        if !self.m.sys.mem.violations().is_empty() {
            let v = self.m.sys.mem.take_violations();
            return Err(self.failure(FailureKind::Oracle(v)));
        }
        Ok(())
    }

    fn failure(&self, kind: FailureKind) -> Failure {
        Failure {
            kind,
            last: self.last_ops(),
        }
    }

    fn unexpected(&self, what: &str, error: impl core::fmt::Debug) -> Failure {
        self.failure(FailureKind::Unexpected {
            what: what.to_string(),
            error: format!("{error:?}"),
        })
    }

    /// Accepts an expected error (counted, `None`), fails on any other.
    /// `before` is [`snapshot`](Self::snapshot)'s, taken before the call:
    /// in strict mode a refusal must have left the books as they were.
    fn check<T>(
        &mut self,
        what: &str,
        before: Option<Books>,
        result: Result<T, CoherenceError>,
    ) -> Result<Option<T>, Failure> {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if expected(&e) => {
                self.errors += 1;
                if let Some(before) = before
                    && self.books() != before
                {
                    return Err(self.unexpected(
                        what,
                        format!(
                            "refused with {e:?}, yet the call changed the books (check::books)"
                        ),
                    ));
                }
                Ok(None)
            }
            Err(e) => Err(self.unexpected(what, e)),
        }
    }

    /// The books before a call, in strict mode.
    fn snapshot(&self) -> Option<Books> {
        self.strict.then(|| self.books())
    }

    /// Strict mode: the books agree after the operation.
    fn audit(&mut self) -> Step {
        let spaces: Vec<&AddressSpace> = self.procs.iter().collect();
        match crate::mm::space::audit::audit(&mut self.m.sys, &spaces) {
            Ok(()) => Ok(()),
            Err(broken) => Err(self.unexpected("audit", broken)),
        }
    }

    fn sim<T>(&self, what: &str, result: Result<T, SimError>) -> Result<T, Failure> {
        result.map_err(|e| self.unexpected(what, e))
    }

    fn is_buffer(&self, vma: &Vma) -> bool {
        matches!(vma.backing(), Backing::Object { id, .. } if id == self.buffer.object())
    }

    /// Switches to process `proc` (modulo) unless it runs.
    fn enter(&mut self, proc: u8) -> Step {
        let to = usize::from(proc) % self.procs.len();
        if to != self.current {
            self.switch(to)?;
        }
        Ok(())
    }

    fn switch(&mut self, to: usize) -> Step {
        self.current = to;
        let space = &mut self.procs[to];
        // SAFETY: the model's registers.
        let result = unsafe {
            self.m
                .engine
                .switch_to(&mut self.m.switcher, &mut self.m.sys, space)
        };
        result.map(|_| ()).map_err(|e| self.unexpected("switch", e))
    }

    /// The user address `at` in the running process, if it maps anything
    /// but the buffer.
    fn user_va(&self, at: UserAddr) -> Option<u32> {
        let vmas: Vec<&Vma> = self.procs[self.current]
            .vmas()
            .filter(|v| !self.is_buffer(v))
            .collect();
        if vmas.is_empty() {
            return None;
        }
        let vma = vmas[usize::from(at.vma) % vmas.len()];
        let page = u32::from(at.page) % (vma.len() / PAGE);
        let word = u32::from(at.word) % (PAGE / 4);
        Some(vma.start().as_u32() + page * PAGE + 4 * word)
    }

    /// The pages of process `p`'s `vma`-th mapping (modulo, the shared
    /// buffer's included, as `Munmap` and `Mprotect` count them); 0 if it
    /// has none.
    pub fn mapping_pages(&self, p: usize, vma: u8) -> u32 {
        self.nth_mapping(p, vma).map_or(0, |v| v.len() / PAGE)
    }

    /// Process `p`'s `vma`-th mapping (modulo), if it has any.
    fn nth_mapping(&self, p: usize, vma: u8) -> Option<&Vma> {
        let space = self.procs.get(p)?;
        let count = space.vmas().count();
        (count > 0).then(|| space.vmas().nth(usize::from(vma) % count))?
    }

    /// A (part of a) mapping of the running process: start and length.
    fn vma_part(&self, vma: u8, first: u8, pages: u8) -> Option<(VirtAddr, u32)> {
        let vma = self.nth_mapping(self.current, vma)?;
        let total = vma.len() / PAGE;
        let first = u32::from(first) % total;
        let len = (1 + u32::from(pages) % (total - first)) * PAGE;
        Some((VirtAddr(vma.start().as_u32() + first * PAGE), len))
    }

    /// A user access with the fault loop; a refused fault is the signal a
    /// kernel would send (the access is dropped). The value loaded, if the
    /// access was made.
    fn user_access(
        &mut self,
        va: u32,
        store: Option<u32>,
        fetch: bool,
    ) -> Result<Option<u32>, Failure> {
        for _ in 0..3 {
            let result = match store {
                Some(value) => self.m.sys.mem.store(va, 4, value).map(|_| value),
                None if fetch => self.m.sys.mem.fetch(va),
                None => self.m.sys.mem.load(va, 4),
            };
            let access = match result {
                Ok(v) => return Ok(Some(v)),
                Err(SimError::Unmapped { .. }) if store.is_none() => {
                    if fetch {
                        FaultAccess::Execute
                    } else {
                        FaultAccess::Read
                    }
                }
                Err(SimError::Unmapped { .. } | SimError::ReadOnly { .. }) if store.is_some() => {
                    FaultAccess::Write
                }
                Err(e) => return Err(self.unexpected(&format!("access {va:#x}"), e)),
            };
            let books = self.snapshot();
            let space = &mut self.procs[self.current];
            let before = space.resident_at(VirtAddr(va));
            let fault = self
                .m
                .engine
                .fault(&mut self.m.sys, space, VirtAddr(va), access);
            let Some(outcome) = self.check("fault", books, fault)? else {
                return Ok(None);
            };
            let outcome = Some(outcome);
            if let Some(FaultOutcome::CopyOnWrite {
                from_fresh: true, ..
            }) = outcome
            {
                // `Engine::fault` reads such a page in before any copy.
                return Err(self.unexpected("fault", "a copy from a page not yet read in"));
            }
            let after = self.procs[self.current].resident_at(VirtAddr(va));
            if self.sabotage_zero_cow_copies && before.is_some() && after != before {
                self.zero_frame(after)?;
            }
            // A file page read from the backing store (all zeroes here: the
            // kernel writes only pages in the page cache).
            if let Some(FaultOutcome::ObjectPage { pa, fresh: true }) = outcome
                && self.is_sparse_page(va)
            {
                self.zero_frame(Some(pa))?;
            }
        }
        Err(self.unexpected(&format!("{va:#x}"), "kept faulting"))
    }

    fn run(&mut self, op: &Op) -> Step {
        if let Some(proc) = op.process() {
            self.enter(proc)?;
        }
        match *op {
            Op::Load { at, .. } | Op::Fetch { at, .. } => {
                let fetch = matches!(op, Op::Fetch { .. });
                match self.user_va(at) {
                    // Code stored and not yet flushed: undefined to run.
                    Some(va) if fetch && self.reference.unsynced(self.current, va) => Ok(()),
                    Some(va) if !fetch || self.executable(va) => self.user_load(va, fetch),
                    _ => Ok(()),
                }
            }
            Op::CodeRewrite { at, value, .. } => {
                let Some(va) = self.user_va(at) else {
                    return Ok(());
                };
                let rwx = Protection::WRITE | Protection::EXEC;
                if !self
                    .reference
                    .prot(self.current, va)
                    .is_some_and(|p| p.contains(rwx))
                {
                    return Ok(());
                }
                self.user_store(va, value)?;
                // cacheflush(2) over the written page.
                let page = VirtAddr(va & !(PAGE - 1));
                let space = &self.procs[self.current];
                let r =
                    self.m
                        .engine
                        .flush_user_icache_range(&mut self.m.sys, space.id(), page, PAGE);
                r.map_err(|e| self.unexpected("flush_user_icache_range", e))?;
                self.reference.synced(self.current, va);
                self.user_load(va, true)
            }
            Op::Store { at, value, .. } => match self.user_va(at) {
                Some(va) => self.user_store(va, value),
                None => Ok(()),
            },
            Op::Mmap {
                kind,
                pages,
                prot,
                fixed,
                ..
            } => self.mmap(kind, pages, prot, fixed),
            Op::Munmap {
                vma, first, pages, ..
            } => {
                let Some((va, len)) = self.vma_part(vma, first, pages) else {
                    return Ok(());
                };
                let books = self.snapshot();
                let freed = self.private_frames_alone(self.current, Some((va.as_u32(), len)));
                let space = &mut self.procs[self.current];
                let result = self.m.engine.munmap(&mut self.m.sys, space, va, len);
                if self.check("munmap", books, result)?.is_some() {
                    self.reference.unbind(self.current, va.as_u32(), len);
                    // Their contents died with the mapping (the engine may
                    // leave their lines for the frame's next fill).
                    self.declare_dead(&freed)?;
                }
                Ok(())
            }
            Op::Mprotect {
                vma,
                first,
                pages,
                prot,
                ..
            } => {
                let Some((va, len)) = self.vma_part(vma, first, pages) else {
                    return Ok(());
                };
                let books = self.snapshot();
                let space = &mut self.procs[self.current];
                let prot = protection(prot);
                let result = self
                    .m
                    .engine
                    .mprotect(&mut self.m.sys, space, va, len, prot);
                if self.check("mprotect", books, result)?.is_some() {
                    self.reference.protect(self.current, va.as_u32(), len, prot);
                }
                Ok(())
            }
            Op::Brk { pages, bytes, .. } => {
                let space = &self.procs[self.current];
                let target = VirtAddr(
                    space.brk_start().as_u32()
                        + u32::from(pages) % 6 * PAGE
                        + u32::from(bytes) % PAGE,
                );
                let books = self.snapshot();
                let space = &mut self.procs[self.current];
                let result = self.m.engine.brk(&mut self.m.sys, space, target);
                if self.check("brk", books, result)?.is_some() {
                    // As `brk` does: the heap ends at the break rounded up.
                    let me = &mut self.reference.procs[self.current];
                    let old_end = me.brk.div_ceil(PAGE) * PAGE;
                    let new_end = target.as_u32().div_ceil(PAGE) * PAGE;
                    me.brk = target.as_u32();
                    if new_end > old_end {
                        let pages = (new_end - old_end) / PAGE;
                        let rw = Protection::READ | Protection::WRITE;
                        self.reference
                            .bind(self.current, old_end, pages, rw, |_| Binding::PrivateZero);
                    } else if new_end < old_end {
                        self.reference
                            .unbind(self.current, new_end, old_end - new_end);
                    }
                }
                Ok(())
            }
            Op::Switch { .. } => Ok(()),
            Op::Fork { .. } => self.fork(),
            Op::Exit { .. } => {
                let exec = self.procs.len() == 1;
                self.exit_or_exec(exec)
            }
            Op::Exec { .. } => self.exit_or_exec(true),
            Op::KernelWrite {
                file,
                page,
                word,
                value,
                via,
            } => self.kernel_write(file, page, word, value, via),
            Op::KernelRead { file, page, word } => self.kernel_read(file, page, word),
            Op::KernelScratch {
                first_line,
                lines,
                value,
            } => self.kernel_scratch(first_line, lines, value),
            Op::Dma {
                start,
                words,
                dir,
                fill,
            } => self.dma(start, words, dir, fill),
            Op::BufferMap { .. } => {
                if self.buffer_mapped(self.current) {
                    return Ok(());
                }
                let args = MmapArgs::shared_object(self.buffer.object(), 0, 2 * PAGE);
                let books = self.snapshot();
                let space = &mut self.procs[self.current];
                let result = space
                    .mmap(&mut self.m.sys, args)
                    .map_err(CoherenceError::from);
                self.check("mmap buffer", books, result).map(|_| ())
            }
            Op::BufferHandOver => {
                let to_user = !self.buffer_owner_user;
                let result = if to_user {
                    self.m
                        .engine
                        .sync_for_user(&mut self.m.sys, &self.buffer, 0, 2 * PAGE)
                } else {
                    self.m
                        .engine
                        .sync_for_kernel(&mut self.m.sys, &self.buffer, 0, 2 * PAGE)
                };
                result.map_err(|e| self.unexpected("hand over", e))?;
                self.buffer_owner_user = to_user;
                Ok(())
            }
            Op::BufferUser { word, store, .. } => {
                let offset = 4 * (u32::from(word) % (2 * PAGE / 4));
                // Where the process shows the buffer's page (a mapping may
                // have lost pages to munmap or MAP_FIXED).
                let va = self.procs[self.current]
                    .vmas()
                    .filter(|v| self.is_buffer(v))
                    .find_map(|v| {
                        let (_, first) = v.object_page(v.start())?;
                        let page = (offset / PAGE).checked_sub(first)?;
                        (page < v.len() / PAGE).then(|| v.start().as_u32() + page * PAGE)
                    });
                if let (Some(va), true) = (va, self.buffer_owner_user) {
                    let index = (offset / 4) as usize;
                    let done = self.user_access(va + offset % PAGE, store, false)?;
                    match (done, store) {
                        (Some(value), Some(_)) => self.reference.buffer[index] = value,
                        (Some(found), None) => {
                            let expected = self.reference.buffer[index];
                            self.compare(&format!("buffer +{offset:#x}"), expected, found)?;
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            Op::BufferKernel { word, store } => {
                if self.buffer_owner_user {
                    return Ok(());
                }
                let offset = 4 * (u32::from(word) % (2 * PAGE / 4));
                let Some(kva) = self.buffer.kernel_va(offset / PAGE) else {
                    return Err(self.unexpected("buffer kernel_va", offset));
                };
                let kva = kva.as_u32() + offset % PAGE;
                let index = (offset / 4) as usize;
                match store {
                    Some(value) => {
                        let r = self.m.sys.mem.store(kva, 4, value);
                        self.sim("kernel buffer store", r)?;
                        self.reference.buffer[index] = value;
                    }
                    None => {
                        let r = self.m.sys.mem.load(kva, 4);
                        let found = self.sim("kernel buffer load", r)?;
                        let expected = self.reference.buffer[index];
                        self.compare(&format!("kernel buffer +{offset:#x}"), expected, found)?;
                    }
                }
                Ok(())
            }
            Op::Invalid { which, value } => self.invalid(which, value),
        }
    }

    fn mmap(&mut self, kind: MapKind, pages: u8, prot: Prot, fixed: Option<u16>) -> Step {
        let anonymous = matches!(kind, MapKind::PrivateAnon | MapKind::SharedAnon);
        let arena = anonymous && pages >= ARENA;
        let pages = if arena {
            ARENA_PAGES
        } else {
            1 + u32::from(pages) % 4
        };
        let file_args = |file: u8, page: u8, files: &[ObjectId]| {
            let file = files[usize::from(file) % files.len()];
            let offset = u64::from(u32::from(page) % (FILE_PAGES - pages + 1) * PAGE);
            MmapArgs::shared_object(file, offset, pages * PAGE)
        };
        let file_page = |file: u8, page: u8, n: usize| {
            (
                usize::from(file) % n,
                u32::from(page) % (FILE_PAGES - pages + 1),
            )
        };
        let nfiles = self.files.len();
        let object = self.reference.fresh();
        let binding = move |i: u32| match kind {
            MapKind::PrivateAnon => Binding::PrivateZero,
            MapKind::SharedAnon => Binding::SharedAnon(object, i),
            MapKind::SharedFile { file, page } => {
                let (f, n) = file_page(file, page, nfiles);
                Binding::File(f, n + i)
            }
            MapKind::PrivateFile { file, page } => {
                let (f, n) = file_page(file, page, nfiles);
                Binding::PrivateFile(f, n + i)
            }
        };
        let mut args = match kind {
            MapKind::PrivateAnon => MmapArgs::anonymous(pages * PAGE),
            MapKind::SharedAnon => MmapArgs {
                shared: true,
                ..MmapArgs::anonymous(pages * PAGE)
            },
            MapKind::SharedFile { file, page } => file_args(file, page, &self.files),
            // The file not in the page cache too: a private write to a
            // page not yet read in is read in first (`Engine::fault`).
            MapKind::PrivateFile { file, page } => MmapArgs {
                shared: false,
                ..file_args(file, page, &self.files)
            },
        };
        args.prot = protection(prot);
        if let Some(page) = fixed {
            // Fixed, maybe over another mapping, maybe of the wrong colour.
            let layout = self.m.layout();
            let room = (layout.mmap_base - MIN) / PAGE - 8;
            args.addr = Some(VirtAddr(MIN + u32::from(page) % room * PAGE));
            args.fixed = true;
        }
        debug_assert!(matches!(
            args.source,
            MapSource::Anonymous | MapSource::Object { .. }
        ));
        let books = self.snapshot();
        let space = &mut self.procs[self.current];
        let result = self.m.engine.mmap(&mut self.m.sys, space, args);
        if let Some(va) = self.check("mmap", books, result)? {
            self.reference
                .bind(self.current, va.as_u32(), pages, args.prot, binding);
            if arena && args.prot.contains(Protection::WRITE) {
                // The allocator initialises its arena: every page resident.
                for page in 0..pages {
                    let at = va.as_u32() + page * PAGE;
                    self.user_store(at, 0xa7e0_0000 | page)?;
                }
            }
        }
        Ok(())
    }

    fn fork(&mut self) -> Step {
        if self.procs.len() >= MAX_PROCESSES {
            return Ok(());
        }
        // The child's table: a fresh space's, handed over.
        let template = self.m.space();
        let sim_id = self.m.sim_space(&template);
        let l1 = template
            .destroy(&mut self.m.sys)
            .map_err(|e| self.unexpected("destroy template", e))?;
        let mut table = PageTable::new(&mut self.m.sys.mem, l1, self.m.arch)
            .map_err(|e| self.unexpected("child table", e))?;
        for range in self.m.kernel_ranges() {
            table
                .share_entries_from(&mut self.m.sys.mem, &self.m.kernel, range)
                .map_err(|e| self.unexpected("share kernel entries", e))?;
        }
        table.set_fits_fcse_window(self.m.fcse);
        let books = self.snapshot();
        let parent = &mut self.procs[self.current];
        let result = self.m.engine.fork(&mut self.m.sys, parent, table);
        match self.check("fork", books, result)? {
            Some(child) => {
                self.procs.push(child);
                self.reference.fork(self.current);
            }
            None => self.m.free_spaces.push((sim_id, l1)),
        }
        Ok(())
    }

    fn exit_or_exec(&mut self, exec: bool) -> Step {
        let leaving = self.current;
        // The next image (exec) or another process runs first; then the
        // old space goes (Linux: activate_mm, then mmput).
        let next = if exec {
            let fresh = self.m.space();
            self.reference.procs.push(Process {
                pages: Default::default(),
                prot: Default::default(),
                brk: fresh.brk_value().as_u32(),
            });
            self.procs.push(fresh);
            self.procs.len() - 1
        } else {
            (leaving + 1) % self.procs.len()
        };
        self.switch(next)?;
        self.declare_private_pages_dead(leaving)?;
        let gone = self.procs.swap_remove(leaving);
        self.reference.remove(leaving);
        if self.current == self.procs.len() {
            self.current = leaving;
        }
        let sim_id = self.m.sim_space(&gone);
        let l1 = self
            .m
            .engine
            .exit(&mut self.m.sys, gone)
            .map_err(|refused| self.unexpected("exit", refused.error))?;
        self.m.free_spaces.push((sim_id, l1));
        Ok(())
    }

    /// File page `page` of `file` (modulo) if it is in the page cache.
    fn file_page(&self, file: u8, page: u8) -> Result<Option<(usize, u32, PhysAddr)>, Failure> {
        let f = usize::from(file) % self.files.len();
        let page = u32::from(page) % FILE_PAGES;
        let pa = self
            .m
            .sys
            .objects
            .get(self.files[f])
            .ok()
            .and_then(|o| o.page(page));
        Ok(pa.map(|pa| (f, page, pa)))
    }

    fn kernel_write(
        &mut self,
        file: u8,
        page: u8,
        word: u16,
        value: u32,
        via: KernelWriteVia,
    ) -> Step {
        let Some((f, n, pa)) = self.file_page(file, page)? else {
            return Ok(());
        };
        let offset = 4 * (u32::from(word) % (PAGE / 4));
        let expected = self.reference.file_word(f, n)[(offset / 4) as usize];
        self.reference.file_word(f, n)[(offset / 4) as usize] = value;
        let what = format!("file {f} page {n} +{offset:#x}");
        match via {
            KernelWriteVia::Kmap => {
                let done = match self.m.engine.kmap(&mut self.m.sys, pa, KmapAccess::Write) {
                    Ok(mut kmap) => {
                        let at = kmap.va().as_u32() + offset;
                        let a = kmap.mem().load(at, 4);
                        let b = kmap.mem().store(at, 4, value);
                        Ok((a, b, kmap.finish()))
                    }
                    Err(e) => Err(e),
                };
                let (a, b, c) = done.map_err(|e| self.unexpected("kmap", e))?;
                let found = self.sim("kmap load", a)?;
                self.compare(&what, expected, found)?;
                self.sim("kmap store", b)?;
                c.map_err(|e| self.unexpected("kmap finish", e))
            }
            KernelWriteVia::PageCacheWrite => {
                let done = match self.m.engine.page_cache_write(&mut self.m.sys, pa) {
                    Ok(mut write) => {
                        let at = write.va().as_u32() + offset;
                        let a = write.mem().store(at, 4, value);
                        Ok((a, write.finish()))
                    }
                    Err(e) => Err(e),
                };
                let (a, b) = done.map_err(|e| self.unexpected("page_cache_write", e))?;
                self.sim("kernel store", a)?;
                b.map_err(|e| self.unexpected("flush_dcache_page", e))
            }
        }
    }

    /// `Op::KernelScratch`: a frame the kernel uses and frees with dirty
    /// lines in its linear alias. The world declares its contents dead
    /// when it frees it (its own semantics, not the engine's word): a line
    /// of it written back later over the frame's next use is caught.
    fn kernel_scratch(&mut self, first_line: u8, lines: u8, value: u32) -> Step {
        const LINE: u32 = 32;
        let Ok(pa) = self.m.sys.allocator.allocate_any() else {
            return Ok(());
        };
        let kva = self.m.kernel_va(pa.as_u32());
        for k in 0..=u32::from(lines) % 128 {
            let line = (u32::from(first_line) + k) % (PAGE / LINE);
            // Written, read, written again (a structure set up, then
            // updated in place): on a read-allocate cache a store alone
            // misses and leaves no line; the read allocates one (of what
            // the kernel wrote, not of the frame's dead contents) and the
            // second store dirties it.
            let at = kva + line * LINE;
            let r = self.m.sys.mem.store(at, 4, value);
            self.sim("kernel scratch store", r)?;
            let r = self.m.sys.mem.load(at, 4);
            self.sim("kernel scratch load", r)?;
            let r = self.m.sys.mem.store(at, 4, !value);
            self.sim("kernel scratch store", r)?;
        }
        let r = self.m.sys.mem.declare_dead(pa.as_u32(), PAGE);
        self.sim("declare dead", r)?;
        self.m
            .sys
            .allocator
            .free(pa)
            .map_err(|e| self.unexpected("free a scratch frame", e))
    }

    fn kernel_read(&mut self, file: u8, page: u8, word: u16) -> Step {
        let Some((f, n, pa)) = self.file_page(file, page)? else {
            return Ok(());
        };
        let offset = 4 * (u32::from(word) % (PAGE / 4));
        let expected = self.reference.file_word(f, n)[(offset / 4) as usize];
        let done = match self.m.engine.kmap(&mut self.m.sys, pa, KmapAccess::Read) {
            Ok(mut kmap) => {
                let at = kmap.va().as_u32() + offset;
                let a = kmap.mem().load(at, 4);
                Ok((a, kmap.finish()))
            }
            Err(e) => Err(e),
        };
        let (a, c) = done.map_err(|e| self.unexpected("kmap", e))?;
        let found = self.sim("kmap load", a)?;
        self.compare(&format!("file {f} page {n} +{offset:#x}"), expected, found)?;
        c.map_err(|e| self.unexpected("kmap finish", e))
    }

    fn dma(&mut self, start: u16, words: u8, dir: DmaDir, fill: u8) -> Step {
        let start = DMA_AREA + 4 * (u32::from(start) % (DMA_AREA_LEN / 4 - 200));
        let len = 4 * (1 + u32::from(words) % 150);
        let mut rng = super::op::XorShift::new(0x2545_f491 ^ (u32::from(fill) << 8) ^ start ^ len);
        // CPU data around the buffer, written before the transfer.
        for at in [start - 4, start + len] {
            self.dma_load(at)?;
            self.dma_store(at, rng.next())?;
        }
        let direction = match dir {
            DmaDir::ToDevice => DmaDirection::ToDevice,
            DmaDir::FromDevice => DmaDirection::FromDevice,
            DmaDir::Bidirectional => DmaDirection::Bidirectional,
        };
        if direction != DmaDirection::FromDevice {
            for _ in 0..4 {
                let at = start + 4 * rng.below(len / 4);
                self.dma_load(at)?;
                self.dma_store(at, rng.next())?;
            }
        }
        if direction == DmaDirection::FromDevice {
            // A receive buffer's old contents are the driver's to drop.
            let r = self.m.sys.mem.declare_dead(start, len);
            self.sim("declare dead", r)?;
        }
        // SAFETY: the range holds only the transfer's bytes; the CPU leaves
        // it and its neighbours alone until the unmap.
        let kernel_start = VirtAddr(self.m.kernel_va(start));
        let mapping = unsafe {
            self.dma
                .map_single(&mut self.m.sys.mem, kernel_start, len as usize, direction)
        };
        let mapping = mapping.map_err(|e| self.unexpected("dma map", e))?;
        if direction != DmaDirection::FromDevice {
            let r = self.m.sys.mem.dma_read(start, len);
            self.sim("dma read", r)?;
        }
        if direction != DmaDirection::ToDevice {
            let data = vec![fill; len as usize];
            let r = self.m.sys.mem.dma_write(start, &data);
            self.sim("dma write", r)?;
            for at in (start..start + len).step_by(4) {
                *self.dma_word(at) = u32::from_le_bytes([fill; 4]);
            }
        }
        let r = self.dma.unmap(&mut self.m.sys.mem, mapping);
        r.map_err(|e| self.unexpected("dma unmap", e))?;
        for _ in 0..4 {
            let at = start + 4 * rng.below(len / 4);
            self.dma_load(at)?;
        }
        Ok(())
    }

    /// True if the running process's page at `va` shows the file not in
    /// the page cache.
    fn is_sparse_page(&self, va: u32) -> bool {
        let sparse = self.files[FILES as usize];
        self.procs[self.current]
            .find_vma(VirtAddr(va))
            .and_then(|v| v.object_page(VirtAddr(va)))
            .is_some_and(|(id, _)| id == sparse)
    }

    fn zero_frame(&mut self, pa: Option<PhysAddr>) -> Step {
        let Some(pa) = pa else { return Ok(()) };
        let done = match self.m.engine.kmap(&mut self.m.sys, pa, KmapAccess::Write) {
            Ok(mut kmap) => {
                let at = kmap.va();
                let a = kmap.mem().zero_page(at);
                Ok((a, kmap.finish()))
            }
            Err(e) => Err(e),
        };
        let (a, b) = done.map_err(|e| self.unexpected("kmap", e))?;
        a.map_err(|e| self.unexpected("zero", e))?;
        b.map_err(|e| self.unexpected("kmap finish", e))
    }

    fn dma_word(&mut self, at: u32) -> &mut u32 {
        &mut self.reference.dma[((at + 4 - DMA_AREA) / 4) as usize]
    }

    fn dma_load(&mut self, at: u32) -> Step {
        let va = self.m.kernel_va(at);
        let r = self.m.sys.mem.load(va, 4);
        let found = self.sim("dma area load", r)?;
        let expected = *self.dma_word(at);
        self.compare(&format!("DMA area {at:#x}"), expected, found)
    }

    fn dma_store(&mut self, at: u32, value: u32) -> Step {
        let va = self.m.kernel_va(at);
        let r = self.m.sys.mem.store(va, 4, value);
        self.sim("dma area store", r)?;
        *self.dma_word(at) = value;
        Ok(())
    }

    /// A load returned `found` where the reference says `expected`.
    fn compare(&mut self, what: &str, expected: u32, found: u32) -> Step {
        self.checked_loads += 1;
        if expected == found {
            return Ok(());
        }
        Err(self.failure(FailureKind::Content {
            what: what.to_string(),
            expected,
            found,
        }))
    }

    /// True if the running process's mapping at `va` may execute.
    fn executable(&self, va: u32) -> bool {
        self.reference
            .prot(self.current, va)
            .is_some_and(|p| p.contains(Protection::EXEC))
    }

    fn user_load(&mut self, va: u32, fetch: bool) -> Step {
        if self
            .reference
            .prot(self.current, va)
            .is_some_and(|p| !p.contains(Protection::READ))
        {
            // SIGSEGV (the model's CPU would let it through).
            return Ok(());
        }
        let Some(found) = self.user_access(va, None, fetch)? else {
            return Ok(());
        };
        match self.reference.load(self.current, va) {
            Some(expected) => {
                let what = format!("P{} {va:#x}", self.current);
                self.compare(&what, expected, found)
            }
            None => {
                Err(self.unexpected(&format!("load {va:#x}"), "the reference maps no page there"))
            }
        }
    }

    fn user_store(&mut self, va: u32, value: u32) -> Step {
        let prot = self.reference.prot(self.current, va);
        if prot.is_some_and(|p| p.is_empty()) {
            // SIGSEGV (the model's CPU would let it through).
            return Ok(());
        }
        if self.user_access(va, Some(value), false)?.is_none() {
            return Ok(());
        }
        if prot.is_some_and(|p| !p.contains(Protection::WRITE)) {
            return Err(self.unexpected(&format!("store {va:#x}"), "a read-only page was written"));
        }
        if !self.reference.store(self.current, va, value) {
            return Err(self.unexpected(
                &format!("store {va:#x}"),
                "the reference maps no page there",
            ));
        }
        Ok(())
    }

    /// Where process `p`'s page `va` is, by its table as the hardware
    /// walker reads it (memory, not the cache).
    pub fn frame_of(&self, p: usize, va: u32) -> Option<PhysAddr> {
        let table = self.procs[p].table();
        let mva = table.modified_va(VirtAddr(va));
        let mem = &self.m.sys.mem;
        let mut read = |pa: PhysAddr| {
            mem.memory(pa.as_u32(), 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .map_err(|_| TableError::Memory { pa })
        };
        crate::mmu::walk(&mut read, table.l1(), table.arch(), mva)
            .ok()
            .map(|t| t.pa)
    }

    /// True if `pa` is a page of one of the world's files.
    pub fn is_file_frame(&self, pa: PhysAddr) -> bool {
        self.files.iter().any(|&f| {
            self.m
                .sys
                .objects
                .get(f)
                .is_ok_and(|o| (0..FILE_PAGES).any(|n| o.page(n) == Some(pa)))
        })
    }

    /// Before process `p` goes: the frames of its private pages that no
    /// other process maps hold dead contents (by the reference's bindings
    /// and the hardware tables, not by the engine's frame database).
    fn declare_private_pages_dead(&mut self, p: usize) -> Step {
        let mine = self.private_frames_alone(p, None);
        self.declare_dead(&mine)
    }

    /// The frames of process `p`'s private pages (in `[start, start +
    /// len)` if given) that no other process maps, by the reference's
    /// bindings and the hardware tables.
    fn private_frames_alone(&self, p: usize, range: Option<(u32, u32)>) -> Vec<PhysAddr> {
        let mut others = std::collections::BTreeSet::new();
        for q in (0..self.procs.len()).filter(|&q| q != p) {
            for &va in self.reference.procs[q].pages.keys() {
                if let Some(pa) = self.frame_of(q, va) {
                    others.insert(pa);
                }
            }
        }
        let inside = |va: u32| {
            range.is_none_or(|(start, len)| {
                va >= start && u64::from(va) < u64::from(start) + u64::from(len)
            })
        };
        self.reference.procs[p]
            .pages
            .iter()
            .filter(|&(&va, b)| b.is_private() && inside(va))
            .filter_map(|(&va, _)| self.frame_of(p, va))
            .filter(|pa| !others.contains(pa))
            .collect()
    }

    /// A frame freed by an operation must be mapped by no process: one
    /// still mapped would be handed to its next owner while the process
    /// reads and writes it (a use after free the oracle sees only if the
    /// caches happen to disagree, so it is checked here in every run, not
    /// only in strict ones).
    fn freed_frames_are_unmapped(&self, freed: &[PhysAddr]) -> Step {
        if freed.is_empty() {
            return Ok(());
        }
        let freed: std::collections::BTreeSet<PhysAddr> = freed.iter().copied().collect();
        for (proc, space) in self.procs.iter().enumerate() {
            if let Some((va, pa)) = space.resident().find(|(_, pa)| freed.contains(pa)) {
                return Err(self.unexpected(
                    "free",
                    format!("frame {pa:?} was freed while process {proc} maps it at {va:?}"),
                ));
            }
        }
        Ok(())
    }

    fn declare_dead(&mut self, frames: &[PhysAddr]) -> Step {
        for pa in frames {
            let r = self.m.sys.mem.declare_dead(pa.as_u32(), PAGE);
            self.sim("declare dead", r)?;
        }
        Ok(())
    }

    /// Invalid calls: each must fail with a typed error and leave the
    /// books exactly as they were.
    fn invalid(&mut self, which: u8, value: u32) -> Step {
        let before = self.books();
        let kind = which % INVALID_KINDS;
        self.refused_call(kind, value)?;
        let after = self.books();
        if after != before {
            return Err(self.unexpected(
                &format!("invalid call {kind} ({value:#x})"),
                format!(
                    "the refused call changed the books (check::books): {}",
                    super::books::difference(&before, &after)
                ),
            ));
        }
        Ok(())
    }

    /// The books of the machine and every process (see [`Books`]).
    pub fn books(&self) -> Books {
        let spaces: Vec<&AddressSpace> = self.procs.iter().collect();
        Books::of(&self.m, &spaces)
    }

    /// Invalid call `kind` (below [`INVALID_KINDS`]), its bad argument made
    /// from `value`: refused with an error, whatever the error is (the
    /// caller checks that nothing changed); a success is a failure.
    fn refused_call(&mut self, kind: u8, value: u32) -> Step {
        if kind == 5 {
            return self.exit_running();
        }
        let space = &mut self.procs[self.current];
        let e = &mut self.m.engine;
        let sys = &mut self.m.sys;
        let top = space.config().layout.task_size;
        let first = sys.frames.first().as_u32();
        let frames = sys.frames.frames();
        // A frame the frame database manages, and one past its end.
        let managed = PhysAddr(first + value % frames * PAGE);
        let outside = PhysAddr(first + (frames + value % 1024) * PAGE);
        // Any page-aligned address, and one with low bits set.
        let aligned = VirtAddr(value & !(PAGE - 1));
        let unaligned = VirtAddr(value | 1);
        let result: Result<(), CoherenceError> = match kind {
            0 => e.munmap(sys, space, unaligned, PAGE),
            1 => {
                // A range that wraps past 4 GiB.
                let va = VirtAddr(u32::MAX - value % (4 * PAGE));
                e.flush_cache_range(sys, space, va, 8 * PAGE)
            }
            2 => {
                // Below every mapping: nothing maps the first MiBs.
                let va = VirtAddr(value % MIN);
                e.fault(sys, space, va, FaultAccess::Read).map(|_| ())
            }
            // A copy of a frame onto itself.
            3 => e.copy_user_page(sys, managed, managed, VirtAddr(MIN)),
            4 => e.flush_icache_range(&mut sys.mem, aligned, 0),
            6 => {
                let va = VirtAddr(top.saturating_add(value % 64 * PAGE));
                e.mprotect(sys, space, va, PAGE, Protection::READ)
            }
            7 => e.mmap(sys, space, MmapArgs::anonymous(0)).map(|_| ()),
            8 => e.munmap(sys, space, aligned, 0),
            9 => e.flush_dcache_page(sys, outside),
            10 => e
                .kmap(
                    sys,
                    PhysAddr(managed.as_u32() | (1 + value % (PAGE - 1))),
                    KmapAccess::Read,
                )
                .map(|_| ()),
            11 => {
                // More pages than there are free frames: refused before
                // any frame is taken (it used to zero every free frame
                // first, then give them back).
                let pages = sys.allocator.free_frames() + 1 + value % 64;
                e.create_shared_buffer(sys, None, pages, SharingMode::HandOver)
                    .map(|_| ())
            }
            12 => {
                // Fixed, above the user space.
                let args = MmapArgs {
                    addr: Some(VirtAddr(top.saturating_add(value % 64 * PAGE))),
                    fixed: true,
                    ..MmapArgs::anonymous(PAGE)
                };
                e.mmap(sys, space, args).map(|_| ())
            }
            13 => {
                // A length that wraps past 4 GiB.
                let len = u32::MAX - value % PAGE;
                e.mprotect(
                    sys,
                    space,
                    VirtAddr(MIN),
                    len & !(PAGE - 1),
                    Protection::READ,
                )
            }
            14 => e.copy_user_page(sys, managed, outside, VirtAddr(MIN)),
            _ => e.clear_user_page(sys, outside, aligned),
        };
        match result {
            Err(_) => {
                self.errors += 1;
                Ok(())
            }
            Ok(()) => {
                Err(self.unexpected(&format!("invalid call {kind} ({value:#x})"), "it succeeded"))
            }
        }
    }
}

impl World {
    /// The running space cannot exit: refused, handed back, nothing
    /// changes.
    fn exit_running(&mut self) -> Step {
        let space = self.procs.remove(self.current);
        match self.m.engine.exit(&mut self.m.sys, space) {
            Err(refused) => {
                let error = refused.error;
                let Some(space) = refused.space else {
                    return Err(self.unexpected("exit of the running space", error));
                };
                self.procs.insert(self.current, *space);
                if !matches!(error, CoherenceError::StillRunning { .. }) {
                    return Err(self.unexpected("exit of the running space", error));
                }
                self.errors += 1;
                Ok(())
            }
            Ok(_) => Err(self.unexpected("exit of the running space", "it was torn down")),
        }
    }
}

/// The protection bits of `prot`.
pub fn protection(prot: Prot) -> Protection {
    match prot {
        Prot::None => Protection::empty(),
        Prot::Read => Protection::READ,
        Prot::ReadWrite => Protection::READ | Protection::WRITE,
        Prot::ReadExec => Protection::READ | Protection::EXEC,
        Prot::ReadWriteExec => Protection::READ | Protection::WRITE | Protection::EXEC,
    }
}

/// Runs `ops` on a world from `make`; the first failure and its index.
pub fn replay(make: &dyn Fn() -> World, ops: &[Op]) -> Option<(usize, Failure)> {
    let mut world = make();
    ops.iter()
        .enumerate()
        .find_map(|(i, op)| world.apply(op).err().map(|f| (i, f)))
}

/// A shorter program that still fails (greedy chunk removal, halving the
/// chunk down to single operations): what a reproducer starts from.
pub fn shrink(make: &dyn Fn() -> World, ops: &[Op]) -> Vec<Op> {
    let Some((last, _)) = replay(make, ops) else {
        return ops.to_vec();
    };
    let mut ops = ops[..=last].to_vec();
    let mut chunk = ops.len().div_ceil(2);
    while chunk >= 1 {
        let mut i = 0;
        while i < ops.len() {
            let mut fewer = ops.clone();
            fewer.drain(i..(i + chunk).min(ops.len()));
            match replay(make, &fewer) {
                Some((last, _)) => {
                    fewer.truncate(last + 1);
                    ops = fewer;
                }
                None => i += chunk,
            }
        }
        chunk /= 2;
    }
    ops
}
