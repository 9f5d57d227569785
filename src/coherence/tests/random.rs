//! Random programs against the engine on every preset: processes that
//! mmap, munmap, mprotect, brk, fork, exec and exit, load and store; the
//! kernel writing file pages through `Kmap`; DMA in both directions into
//! unaligned buffers beside live CPU data; a kernel↔user shared buffer
//! handed back and forth; context switches; and invalid calls, which must
//! fail with an error and change nothing. The oracle judges every access:
//! a program ends with zero violations or the test fails, printing the
//! seed and the last operations.
//!
//! `VACMM_CASES` / `VACMM_OPS` set the size (default 256 × 10,000 per
//! preset); `VACMM_SOAK=1` runs 1,000 × 10,000 (10 million operations per
//! preset).

extern crate std;

use std::collections::VecDeque;
use std::format;
use std::string::String;

use super::*;
use crate::coherence::dma::{Dma, DmaDirection};
use crate::coherence::shared::{SharedBuffer, SharingMode};
use crate::mm::space::{Backing, Protection, Vma};
use crate::xorshift::XorShift;

const DMA_AREA: u32 = 0x8_0000;
const DMA_AREA_LEN: u32 = 0x2000;
/// An L1 table for invalid calls' stand-ins (never attached).
const SCRATCH_L1: PhysAddr = PhysAddr(0x8_4000);
const FILES: u32 = 3;
const FILE_PAGES: u32 = 8;
const MAX_PROCESSES: usize = 6;
const MAX_VMAS: usize = 10;

struct World {
    m: Machine,
    procs: Vec<AddressSpace>,
    current: usize,
    files: Vec<ObjectId>,
    buffer: SharedBuffer,
    buffer_owner_user: bool,
    dma: Dma,
    rng: XorShift,
    log: VecDeque<String>,
    errors: u64,
}

/// Errors a random program may provoke and a kernel would report.
fn expected(e: &CoherenceError) -> bool {
    use crate::mm::frames::FrameError as FE;
    match e {
        CoherenceError::Space(s) => match s {
            SpaceError::Frame(FE::OutOfMemory | FE::NoFrameOfColour { .. }) => true,
            SpaceError::Frame(_) => false,
            SpaceError::Table(TableError::OutOfFrames { .. }) => true,
            SpaceError::Table(_) | SpaceError::MetadataAllocFailed => false,
            _ => true,
        },
        CoherenceError::Unaligned { .. }
        | CoherenceError::StillRunning { .. }
        | CoherenceError::BadLength { .. }
        | CoherenceError::WrongSpace { .. } => true,
        _ => false,
    }
}

impl World {
    fn new(model: CpuModel, seed: u32) -> World {
        let mut m = Machine::new(model);
        let mut files = Vec::new();
        let colours = m.sys.allocator.colours();
        for _ in 0..FILES {
            let file = m.file(FILE_PAGES);
            for page in 0..FILE_PAGES {
                let pa = m
                    .sys
                    .allocator
                    .allocate_colour(page & (colours - 1))
                    .unwrap();
                m.sys.objects.insert_page(file, page, pa).unwrap();
                let mut kmap = m.engine.kmap(&mut m.sys, pa, KmapAccess::Write).unwrap();
                let at = kmap.va().as_u32();
                kmap.mem().zero_page(VirtAddr(at)).unwrap();
                kmap.finish().unwrap();
            }
            files.push(file);
        }
        let buffer = m
            .engine
            .create_shared_buffer(&mut m.sys, &mut m.kernel, 2, SharingMode::HandOver)
            .unwrap();
        let mut first = m.space();
        m.switch_to(&mut first);
        let dma = Dma::new(&model.info());
        World {
            m,
            procs: vec![first],
            current: 0,
            files,
            buffer,
            buffer_owner_user: false,
            dma,
            rng: XorShift(seed.max(1)),
            log: VecDeque::new(),
            errors: 0,
        }
    }

    fn below(&mut self, n: u32) -> u32 {
        self.rng.below(n.max(1))
    }

    fn note(&mut self, what: String) {
        if self.log.len() == 24 {
            self.log.pop_front();
        }
        self.log.push_back(what);
    }

    /// Accepts an expected error (counted), fails on any other.
    fn check<T>(&mut self, what: &str, result: Result<T, CoherenceError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) if expected(&e) => {
                self.errors += 1;
                None
            }
            Err(e) => panic!("{what}: unexpected {e:?}\nlast: {:#?}", self.log),
        }
    }

    fn is_buffer(&self, vma: &Vma) -> bool {
        matches!(vma.backing(), Backing::Object { id, .. } if id == self.buffer.object())
    }

    /// A random VMA of the current process (not the shared buffer's).
    fn random_vma(&mut self) -> Option<Vma> {
        let vmas: Vec<Vma> = self.procs[self.current]
            .vmas()
            .copied()
            .filter(|v| !self.is_buffer(v))
            .collect();
        if vmas.is_empty() {
            return None;
        }
        let i = self.below(vmas.len() as u32) as usize;
        Some(vmas[i])
    }

    fn switch(&mut self, to: usize) {
        self.current = to;
        let space = &mut self.procs[to];
        // SAFETY: the model's registers.
        let result = unsafe {
            self.m
                .engine
                .switch_to(&mut self.m.switcher, &mut self.m.sys, space)
        };
        result.unwrap();
    }

    /// A user access with the fault loop; a refused fault is the signal a
    /// kernel would send (the access is dropped).
    fn user_access(&mut self, va: u32, store: Option<u32>) {
        for _ in 0..3 {
            let result = match store {
                Some(value) => self.m.sys.mem.store(va, 4, value).map(|_| 0),
                None => self.m.sys.mem.load(va, 4),
            };
            let access = match result {
                Ok(_) => return,
                Err(SimError::Unmapped { .. }) if store.is_none() => FaultAccess::Read,
                Err(SimError::Unmapped { .. } | SimError::ReadOnly { .. }) => FaultAccess::Write,
                Err(e) => panic!("access {va:#x}: {e}\nlast: {:#?}", self.log),
            };
            let space = &mut self.procs[self.current];
            let fault = self
                .m
                .engine
                .fault(&mut self.m.sys, space, VirtAddr(va), access);
            if self.check("fault", fault).is_none() {
                return;
            }
        }
        panic!("{va:#x} kept faulting\nlast: {:#?}", self.log);
    }

    fn step(&mut self) {
        match self.below(100) {
            0..=29 => self.op_user_access(),
            30..=37 => self.op_mmap(),
            38..=42 => self.op_munmap(),
            43..=46 => self.op_mprotect(),
            47..=48 => self.op_brk(),
            49..=55 => self.op_switch(),
            56..=58 => self.op_fork(),
            59..=60 => self.op_exit_or_exec(),
            61..=67 => self.op_kernel_write(),
            68..=75 => self.op_dma(),
            76..=87 => self.op_shared_buffer(),
            88..=91 => self.op_invalid(),
            _ => self.op_user_access(),
        }
    }

    fn op_user_access(&mut self) {
        let Some(vma) = self.random_vma() else {
            return self.op_mmap();
        };
        let page = self.below(vma.len() / PAGE);
        let va = vma.start().as_u32() + page * PAGE + 4 * self.below(PAGE / 4);
        let store = (self.below(2) == 0).then(|| self.rng.next());
        self.note(format!(
            "P{} {} {va:#x}",
            self.current,
            if store.is_some() { "store" } else { "load" }
        ));
        self.user_access(va, store);
    }

    fn op_mmap(&mut self) {
        if self.procs[self.current].vmas().count() >= MAX_VMAS {
            return self.op_munmap();
        }
        let pages = 1 + self.below(4);
        let mut args = match self.below(4) {
            0 => MmapArgs::anonymous(pages * PAGE),
            1 => MmapArgs {
                shared: true,
                ..MmapArgs::anonymous(pages * PAGE)
            },
            k => {
                let i = self.below(FILES) as usize;
                let file = self.files[i];
                let offset = u64::from(self.below(FILE_PAGES - pages + 1) * PAGE);
                MmapArgs {
                    shared: k == 2,
                    ..MmapArgs::shared_object(file, offset, pages * PAGE)
                }
            }
        };
        if self.below(4) == 0 {
            args.prot = Protection::READ;
        }
        if self.below(8) == 0 {
            // Fixed, maybe over another mapping, maybe of the wrong colour.
            let page = self.below((BASE - MIN) / PAGE - 8);
            args.addr = Some(VirtAddr(MIN + page * PAGE));
            args.fixed = true;
        }
        self.note(format!("P{} mmap {args:?}", self.current));
        let space = &mut self.procs[self.current];
        let result = self.m.engine.mmap(&mut self.m.sys, space, args);
        self.check("mmap", result);
    }

    fn op_munmap(&mut self) {
        let Some(vma) = self.random_any_vma() else {
            return;
        };
        let pages = vma.len() / PAGE;
        let first = self.below(pages);
        let len = (1 + self.below(pages - first)) * PAGE;
        let va = VirtAddr(vma.start().as_u32() + first * PAGE);
        self.note(format!("P{} munmap {va} {len:#x}", self.current));
        let space = &mut self.procs[self.current];
        let result = self.m.engine.munmap(&mut self.m.sys, space, va, len);
        self.check("munmap", result);
    }

    fn random_any_vma(&mut self) -> Option<Vma> {
        let vmas: Vec<Vma> = self.procs[self.current].vmas().copied().collect();
        if vmas.is_empty() {
            return None;
        }
        let i = self.below(vmas.len() as u32) as usize;
        Some(vmas[i])
    }

    fn op_mprotect(&mut self) {
        let Some(vma) = self.random_any_vma() else {
            return;
        };
        let prot = [
            Protection::READ,
            Protection::READ | Protection::WRITE,
            Protection::empty(),
            Protection::READ | Protection::EXEC,
        ][self.below(4) as usize];
        let pages = vma.len() / PAGE;
        let first = self.below(pages);
        let len = (1 + self.below(pages - first)) * PAGE;
        let va = VirtAddr(vma.start().as_u32() + first * PAGE);
        self.note(format!("P{} mprotect {va} {len:#x} {prot:?}", self.current));
        let space = &mut self.procs[self.current];
        let result = self
            .m
            .engine
            .mprotect(&mut self.m.sys, space, va, len, prot);
        self.check("mprotect", result);
    }

    fn op_brk(&mut self) {
        let space = &self.procs[self.current];
        let target = VirtAddr(space.brk_start().as_u32() + self.below(6) * PAGE + self.below(PAGE));
        self.note(format!("P{} brk {target}", self.current));
        let space = &mut self.procs[self.current];
        let result = self.m.engine.brk(&mut self.m.sys, space, target);
        self.check("brk", result);
    }

    fn op_switch(&mut self) {
        let to = self.below(self.procs.len() as u32) as usize;
        self.note(format!("switch P{to}"));
        self.switch(to);
    }

    fn op_fork(&mut self) {
        if self.procs.len() >= MAX_PROCESSES {
            return self.op_exit_or_exec();
        }
        // The child's table: a fresh space's, handed over.
        let template = self.m.space();
        let id = template.id();
        let l1 = template.destroy(&mut self.m.sys).unwrap();
        let mut table = PageTable::new(&mut self.m.sys.mem, l1, self.m.arch).unwrap();
        for (start, len) in [(0, u64::from(MEMORY)), (WINDOWS, 1 << 20)] {
            table
                .share_entries_from(
                    &mut self.m.sys.mem,
                    &self.m.kernel,
                    VirtRange::new(VirtAddr(start), len).unwrap(),
                )
                .unwrap();
        }
        self.note(format!("P{} fork", self.current));
        let parent = &mut self.procs[self.current];
        let result = self.m.engine.fork(&mut self.m.sys, parent, id, table);
        match self.check("fork", result) {
            Some(child) => self.procs.push(child),
            None => {
                let sim_id = sim::SpaceId(id.0 as u16);
                self.m.free_spaces.push((sim_id, l1));
            }
        }
    }

    fn op_exit_or_exec(&mut self) {
        let exec = self.below(2) == 0 || self.procs.len() == 1;
        self.note(format!(
            "P{} {}",
            self.current,
            if exec { "exec" } else { "exit" }
        ));
        let leaving = self.current;
        // The next image (exec) or another process runs first; then the
        // old space goes (Linux: activate_mm, then mmput).
        let next = if exec {
            let fresh = self.m.space();
            self.procs.push(fresh);
            self.procs.len() - 1
        } else {
            (leaving + 1) % self.procs.len()
        };
        self.switch(next);
        let gone = self.procs.swap_remove(leaving);
        if self.current == self.procs.len() {
            self.current = leaving;
        }
        let id = gone.id();
        let l1 = self.m.engine.exit(&mut self.m.sys, gone).unwrap();
        self.m.free_spaces.push((sim::SpaceId(id.0 as u16), l1));
    }

    fn op_kernel_write(&mut self) {
        let i = self.below(FILES) as usize;
        let file = self.files[i];
        let page = self.below(FILE_PAGES);
        let pa = self.m.sys.objects.get(file).unwrap().page(page).unwrap();
        let offset = 4 * self.below(PAGE / 4);
        let value = self.rng.next();
        self.note(format!("kernel writes file page {pa} +{offset:#x}"));
        let mut kmap = match self.m.engine.kmap(&mut self.m.sys, pa, KmapAccess::Write) {
            Ok(kmap) => kmap,
            Err(e) => panic!("kmap: {e:?}"),
        };
        let at = kmap.va().as_u32() + offset;
        kmap.mem().load(at, 4).unwrap();
        kmap.mem().store(at, 4, value).unwrap();
        kmap.finish().unwrap();
    }

    fn op_dma(&mut self) {
        let start = DMA_AREA + 4 * self.below(DMA_AREA_LEN / 4 - 200);
        let len = 4 * (1 + self.below(150));
        // CPU data around the buffer, written before the transfer.
        for at in [start - 4, start + len] {
            self.m.sys.mem.load(at, 4).unwrap();
            self.m.sys.mem.store(at, 4, self.rng.next()).unwrap();
        }
        let direction = [
            DmaDirection::ToDevice,
            DmaDirection::FromDevice,
            DmaDirection::Bidirectional,
        ][self.below(3) as usize];
        self.note(format!("dma {direction:?} {start:#x} {len}"));
        if direction != DmaDirection::FromDevice {
            for _ in 0..4 {
                let at = start + 4 * self.below(len / 4);
                self.m.sys.mem.load(at, 4).unwrap();
                self.m.sys.mem.store(at, 4, self.rng.next()).unwrap();
            }
        }
        if direction == DmaDirection::FromDevice {
            // A receive buffer's old contents are the driver's to drop.
            self.m.sys.mem.declare_dead(start, len).unwrap();
        }
        // SAFETY: the range holds only the transfer's bytes; the CPU leaves
        // it and its neighbours alone until the unmap.
        let mapping = unsafe {
            self.dma.map_single(
                &mut self.m.sys.mem,
                VirtAddr(start),
                len as usize,
                direction,
            )
        }
        .unwrap();
        if direction != DmaDirection::FromDevice {
            self.m.sys.mem.dma_read(start, len).unwrap();
        }
        if direction != DmaDirection::ToDevice {
            let fill = vec![self.rng.next() as u8; len as usize];
            self.m.sys.mem.dma_write(start, &fill).unwrap();
        }
        self.dma.unmap(&mut self.m.sys.mem, mapping).unwrap();
        for _ in 0..4 {
            let at = start + 4 * self.below(len / 4);
            self.m.sys.mem.load(at, 4).unwrap();
        }
    }

    fn op_shared_buffer(&mut self) {
        let mapped = self.procs[self.current]
            .vmas()
            .find(|v| self.is_buffer(v))
            .map(|v| v.start().as_u32());
        let offset = 4 * self.below(2 * PAGE / 4);
        match (self.below(4), mapped) {
            (0, None) => {
                self.note(format!("P{} maps the buffer", self.current));
                let args = MmapArgs::shared_object(self.buffer.object(), 0, 2 * PAGE);
                let space = &mut self.procs[self.current];
                let result = space
                    .mmap(&mut self.m.sys, args)
                    .map_err(CoherenceError::from);
                self.check("mmap buffer", result);
            }
            (1, _) => {
                // Hand over the whole buffer.
                let to_user = !self.buffer_owner_user;
                self.note(format!(
                    "buffer to {}",
                    if to_user { "users" } else { "kernel" }
                ));
                let result = if to_user {
                    self.m
                        .engine
                        .sync_for_user(&mut self.m.sys, &self.buffer, 0, 2 * PAGE)
                } else {
                    self.m
                        .engine
                        .sync_for_kernel(&mut self.m.sys, &self.buffer, 0, 2 * PAGE)
                };
                result.unwrap();
                self.buffer_owner_user = to_user;
            }
            (_, Some(start)) if self.buffer_owner_user => {
                let store = (self.below(2) == 0).then(|| self.rng.next());
                self.note(format!("P{} buffer {offset:#x} {store:?}", self.current));
                self.user_access(start + offset, store);
            }
            _ if !self.buffer_owner_user => {
                let kva = self.buffer.kernel_va(offset / PAGE).unwrap().as_u32() + offset % PAGE;
                self.note(format!("kernel buffer {offset:#x}"));
                if self.below(2) == 0 {
                    self.m.sys.mem.store(kva, 4, self.rng.next()).unwrap();
                } else {
                    self.m.sys.mem.load(kva, 4).unwrap();
                }
            }
            _ => {}
        }
    }

    /// Invalid calls: each must fail with a typed error.
    fn op_invalid(&mut self) {
        let current = self.current;
        let which = self.below(7);
        self.note(format!("invalid call {which}"));
        let space = &mut self.procs[current];
        let e = &mut self.m.engine;
        let sys = &mut self.m.sys;
        let result: Result<(), CoherenceError> = match which {
            0 => e.munmap(sys, space, VirtAddr(MIN + 12), PAGE),
            1 => e.flush_cache_range(sys, space, VirtAddr(u32::MAX - PAGE + 1), 2 * PAGE),
            2 => e
                .fault(sys, space, VirtAddr(0x10), FaultAccess::Read)
                .map(|_| ()),
            3 => {
                // A child named like its parent: refused.
                let id = space.id();
                let table = PageTable::new(&mut sys.mem, SCRATCH_L1, space.table().arch());
                e.fork(sys, space, id, table.unwrap()).map(|_| ())
            }
            4 => e.flush_icache_range(&mut sys.mem, VirtAddr(0x1000), 0),
            5 => {
                // The running space cannot exit: refused, nothing changes.
                let table = PageTable::new(&mut sys.mem, SCRATCH_L1, space.table().arch());
                let stand_in = AddressSpace::new(space.id(), *space.config(), table.unwrap());
                e.exit(sys, stand_in.unwrap())
                    .map(|_| ())
                    .map_err(|refused| refused.error)
            }
            _ => e.mprotect(sys, space, VirtAddr(TOP), PAGE, Protection::READ),
        };
        match result {
            Err(err) if expected(&err) => self.errors += 1,
            other => panic!("invalid call {which} gave {other:?}"),
        }
    }
}

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_preset(index: usize) {
    let (name, model) = presets()[index];
    let soak = std::env::var("VACMM_SOAK").is_ok_and(|v| v == "1");
    let cases = env("VACMM_CASES", if soak { 1000 } else { 256 });
    let ops = env("VACMM_OPS", 10_000);
    let mut total = Counters::default();
    let mut errors = 0;
    for case in 0..cases {
        let seed = 0x9e37_79b9u32.wrapping_mul(case + 1) ^ (index as u32);
        let mut world = World::new(model, seed);
        for op in 0..ops {
            world.step();
            if !world.m.sys.mem.violations().is_empty() {
                panic!(
                    "{name}, case {case} (seed {seed:#x}), op {op}: {:?}\nlast: {:#?}",
                    world.m.sys.mem.violations(),
                    world.log
                );
            }
        }
        let c = world.m.engine.counters();
        total.pages_filled += c.pages_filled;
        total.made_uncached += c.made_uncached;
        total.restored += c.restored;
        total.switches += c.switches;
        total.kmaps += c.kmaps;
        total.window_fills += c.window_fills;
        total.whole_cache_flushes += c.whole_cache_flushes;
        errors += world.errors;
    }
    // Only the fields summed above (the others stay zero in `total`).
    std::eprintln!(
        "{name}: {cases} programs × {ops} operations, 0 violations; {errors} refused calls; \
         {} pages filled ({} through windows), {} kmaps, {} made uncached, {} restored, \
         {} switches, {} whole-cache flushes",
        total.pages_filled,
        total.window_fills,
        total.kmaps,
        total.made_uncached,
        total.restored,
        total.switches,
        total.whole_cache_flushes
    );
    // The generator must reach the interesting transitions.
    assert!(
        total.switches > 0 && total.kmaps > 0 && total.pages_filled > 0,
        "{name}"
    );
    if model.info().kind == CacheKind::Vivt {
        assert!(
            total.made_uncached > 0 && total.restored > 0,
            "{name}: {total:?}"
        );
    }
}

#[test]
fn random_programs_arm926() {
    run_preset(0);
}

#[test]
fn random_programs_arm1136_32k() {
    run_preset(1);
}

#[test]
fn random_programs_arm1136_64k() {
    run_preset(2);
}

#[test]
fn random_programs_arm1176_16k() {
    run_preset(3);
}

#[test]
fn random_programs_pipt() {
    run_preset(4);
}
