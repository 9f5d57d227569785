//! The workloads: deterministic programs of kernel and user accesses and
//! engine calls, the same for every policy except where a policy's kernel
//! would do otherwise (how it shares a buffer, how it does DMA). The oracle
//! judges every access; nothing here checks values itself.

use vacmm::addr::{PhysAddr, VirtAddr};
use vacmm::cache::{CacheKind, CacheMaintenance};
use vacmm::coherence::Policy;
use vacmm::coherence::dma::{Dma, DmaDirection};
use vacmm::coherence::shared::{SharedBuffer, SharingMode};
use vacmm::mm::object::ObjectKind;
use vacmm::mm::space::{AddressSpace, MapSource, MmapArgs, Protection};
use vacmm::mmu::{Access, Attributes, Execute, MemoryType};

use crate::policies::{Contender, DmaStyle, Sharing};
use crate::world::{BenchError, DMA_UNCACHED, SCRATCH, UNCACHED_BASE, World};

const PAGE: u32 = 4096;
const LINE: u32 = 32;

/// How big a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    /// Pages of a file (W1) or of the forked region (W3).
    pub pages: u32,
    /// Rounds of each workload's loop.
    pub rounds: u32,
}

impl Size {
    /// The full run.
    pub const FULL: Size = Size {
        pages: 8,
        rounds: 32,
    };
    /// The quick run (`--quick`): every path, small.
    pub const QUICK: Size = Size {
        pages: 2,
        rounds: 4,
    };
}

/// One workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// W1: the kernel writes page-cache pages, a process maps them shared
    /// and reads them; the kernel rewrites them while mapped (seed 001).
    PageCache,
    /// W2: a kernel→user ring of 64-byte records in batches of eight, and
    /// the consumer's index written back (seed 000).
    Ring,
    /// W3: fork, then parent and child both write every page (copy-on-
    /// write), switching in turns; the child exits.
    ForkCow,
    /// W4: one file page mapped at two addresses of one process, written
    /// and read through both; one mapping goes, the other is used on.
    TwoAddresses,
    /// W5: a token passed through the kernel among `n` processes in turn,
    /// each touching its own working set of eight lines.
    PingPong(u32),
    /// W6: DMA receive and transmit of 1500-byte packets into buffers that
    /// start mid-line, beside the driver's own variables.
    Dma,
    /// W7: a program loaded through the page cache and run; a JIT writing
    /// code into its own page, flushing and running it.
    Code,
    /// W8: many file pages (8 × `pages`) shared writable by two processes,
    /// each writing a word of every page in its turn, switched often.
    SharedAcrossSpaces,
    /// W9: a process with a large resident space (32 × `pages` pages)
    /// exits while another runs.
    ExitNotRunning,
    /// W10: library code already in the page cache and already run once,
    /// mapped executable and run by a new process each round, as a
    /// dynamic loader does.
    LoaderCode,
    /// W11: a process maps a short-lived buffer, writes and reads it and
    /// unmaps it, round after round, as an allocator does.
    ShortBuffers,
    /// W12: every workload above in turn on one machine (W5 with eight
    /// processes), weighing the total.
    Mix,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 14] = [
        Workload::PageCache,
        Workload::Ring,
        Workload::ForkCow,
        Workload::TwoAddresses,
        Workload::PingPong(2),
        Workload::PingPong(8),
        Workload::PingPong(32),
        Workload::Dma,
        Workload::Code,
        Workload::SharedAcrossSpaces,
        Workload::ExitNotRunning,
        Workload::LoaderCode,
        Workload::ShortBuffers,
        Workload::Mix,
    ];

    /// What W12 runs, in order.
    const MIX: [Workload; 11] = [
        Workload::PageCache,
        Workload::Ring,
        Workload::ForkCow,
        Workload::TwoAddresses,
        Workload::PingPong(8),
        Workload::Dma,
        Workload::Code,
        Workload::SharedAcrossSpaces,
        Workload::ExitNotRunning,
        Workload::LoaderCode,
        Workload::ShortBuffers,
    ];

    /// A short label.
    pub fn label(self) -> String {
        match self {
            Workload::PageCache => "W1 page cache → mmap".into(),
            Workload::Ring => "W2 kernel↔user ring".into(),
            Workload::ForkCow => "W3 fork + COW".into(),
            Workload::TwoAddresses => "W4 one page, two addresses".into(),
            Workload::PingPong(n) => format!("W5 ping-pong ×{n}"),
            Workload::Dma => "W6 DMA rx/tx".into(),
            Workload::Code => "W7 code written, run".into(),
            Workload::SharedAcrossSpaces => "W8 shared across spaces".into(),
            Workload::ExitNotRunning => "W9 exit, not running".into(),
            Workload::LoaderCode => "W10 clean code mapped".into(),
            Workload::ShortBuffers => "W11 short-lived buffers".into(),
            Workload::Mix => "W12 mix of all".into(),
        }
    }

    /// The tag used in the chart (`W5×8`).
    pub fn tag(self) -> String {
        match self {
            Workload::PageCache => "W1".into(),
            Workload::Ring => "W2".into(),
            Workload::ForkCow => "W3".into(),
            Workload::TwoAddresses => "W4".into(),
            Workload::PingPong(n) => format!("W5×{n}"),
            Workload::Dma => "W6".into(),
            Workload::Code => "W7".into(),
            Workload::SharedAcrossSpaces => "W8".into(),
            Workload::ExitNotRunning => "W9".into(),
            Workload::LoaderCode => "W10".into(),
            Workload::ShortBuffers => "W11".into(),
            Workload::Mix => "W12".into(),
        }
    }

    /// Context switches in the measured part, for the workloads that are
    /// about switching.
    pub fn switches(self, size: Size) -> Option<u64> {
        match self {
            Workload::PingPong(n) => Some(u64::from(n) * u64::from(size.rounds)),
            _ => None,
        }
    }

    /// Runs the workload on `w`, whose kernel behaves as `who`'s would.
    pub fn run<P: Policy>(
        self,
        w: &mut World<P>,
        who: Contender,
        size: Size,
    ) -> Result<(), BenchError> {
        match self {
            Workload::PageCache => page_cache(w, size),
            Workload::Ring => ring(w, who, size),
            Workload::ForkCow => fork_cow(w, size),
            Workload::TwoAddresses => two_addresses(w, size),
            Workload::PingPong(n) => ping_pong(w, n, size),
            Workload::Dma => dma(w, who, size),
            Workload::Code => code(w, size),
            Workload::SharedAcrossSpaces => shared_across_spaces(w, size),
            Workload::ExitNotRunning => exit_not_running(w, size),
            Workload::LoaderCode => loader_code(w, size),
            Workload::ShortBuffers => short_buffers(w, size),
            Workload::Mix => {
                // One measurement over all of them: the first starts it,
                // and the set-up of the later ones (the same for every
                // policy) is inside it.
                for workload in Workload::MIX {
                    workload.run(w, who, size)?;
                }
                Ok(())
            }
        }
    }
}

/// A word value that changes with the round and the position.
fn word(round: u32, i: u32) -> u32 {
    (round << 20) ^ i.wrapping_mul(0x9e37_79b1)
}

/// The kernel writes every word of `frames` through its linear map (a
/// `read()` into the page cache), bracketed by the engine's guard.
fn kernel_fill<P: Policy>(
    w: &mut World<P>,
    frames: &[PhysAddr],
    round: u32,
) -> Result<(), BenchError> {
    for &pa in frames {
        let mut write = w.engine.page_cache_write(&mut w.sys, pa)?;
        let kva = write.va().as_u32();
        for i in 0..PAGE / 4 {
            write.mem().store(kva + 4 * i, 4, word(round, i))?;
        }
        write.finish()?;
    }
    Ok(())
}

/// A file of `pages` pages in the page cache (frames coloured by offset
/// where the setup colours frames).
fn file<P: Policy>(
    w: &mut World<P>,
    pages: u32,
) -> Result<(vacmm::mm::object::ObjectId, Vec<PhysAddr>), BenchError> {
    let id = w.sys.objects.create(ObjectKind::File, pages)?;
    let mut frames = Vec::new();
    for page in 0..pages {
        let pa = w.page_cache_frame(page)?;
        w.sys.objects.insert_page(id, page, pa)?;
        frames.push(pa);
    }
    Ok((id, frames))
}

/// User loads of every word of `[va, va + len)`.
fn user_read<P: Policy>(
    w: &mut World<P>,
    space: &mut AddressSpace,
    va: u32,
    len: u32,
) -> Result<(), BenchError> {
    for at in (va..va + len).step_by(4) {
        w.load(space, at)?;
    }
    Ok(())
}

/// User stores to every word of `[va, va + len)`.
fn user_write<P: Policy>(
    w: &mut World<P>,
    space: &mut AddressSpace,
    va: u32,
    len: u32,
    round: u32,
) -> Result<(), BenchError> {
    for (i, at) in (va..va + len).step_by(4).enumerate() {
        w.store(space, at, word(round, i as u32))?;
    }
    Ok(())
}

fn page_cache<P: Policy>(w: &mut World<P>, size: Size) -> Result<(), BenchError> {
    let mut space = w.space()?;
    w.switch_to(&mut space)?;
    let (id, frames) = file(w, size.pages)?;
    w.start_measuring();
    // The file is read before anyone maps it: deferred where the policy
    // defers.
    kernel_fill(w, &frames, 0)?;
    let len = size.pages * PAGE;
    let args = MmapArgs {
        prot: Protection::READ,
        ..MmapArgs::shared_object(id, 0, len)
    };
    let va = w.engine.mmap(&mut w.sys, &mut space, args)?.as_u32();
    user_read(w, &mut space, va, len)?;
    // Written again (write()) while mapped, read again through the mapping.
    for round in 1..size.rounds.div_ceil(4).max(2) {
        kernel_fill(w, &frames, round)?;
        user_read(w, &mut space, va, len)?;
    }
    Ok(())
}

fn ring<P: Policy>(w: &mut World<P>, who: Contender, size: Size) -> Result<(), BenchError> {
    const RECORD: u32 = 64;
    const BATCH: u32 = 8;
    const DATA_PAGES: u32 = 2;
    const SLOTS: u32 = DATA_PAGES * PAGE / RECORD;
    // The control page: the producer's head in one line, the consumer's
    // tail in another.
    const HEAD: u32 = DATA_PAGES * PAGE;
    const TAIL: u32 = HEAD + 2 * LINE;
    let info = *w.engine.info();
    let uncached = SharingMode::Uncached {
        kernel_base: VirtAddr(UNCACHED_BASE),
    };
    let mode = match who.sharing(&info) {
        Sharing::HandOver => SharingMode::HandOver,
        Sharing::Uncached => uncached,
        // The kernel's alias and the user's differ on VIVT; on VIPT the
        // buffer's frames are in the colours of its (colour-aligned) user
        // mapping, so they share lines and nothing is uncached.
        Sharing::UncachedIfAliased if info.kind == CacheKind::Vivt => uncached,
        Sharing::UncachedIfAliased => SharingMode::HandOver,
    };
    let buffer =
        w.engine
            .create_shared_buffer(&mut w.sys, Some(&mut w.kernel), DATA_PAGES + 1, mode)?;
    let mut space = w.space()?;
    w.switch_to(&mut space)?;
    w.start_measuring();
    let args = MmapArgs::shared_object(buffer.object(), 0, (DATA_PAGES + 1) * PAGE);
    let va = w.engine.mmap(&mut w.sys, &mut space, args)?.as_u32();
    let kva = |buffer: &SharedBuffer, offset: u32| -> Result<u32, BenchError> {
        buffer
            .kernel_va(offset / PAGE)
            .map(|page| page.as_u32() + offset % PAGE)
            .ok_or(BenchError::Range {
                start: offset,
                len: 4,
            })
    };
    for round in 0..size.rounds * 2 {
        let first = (round * BATCH) % SLOTS;
        let offset = first * RECORD;
        let bytes = BATCH * RECORD;
        // Producer: the records, then the head.
        let at = kva(&buffer, offset)?;
        for i in 0..bytes / 4 {
            w.sys.mem.store(at + 4 * i, 4, word(round, i))?;
        }
        w.sys.mem.store(kva(&buffer, HEAD)?, 4, first + BATCH)?;
        w.engine.sync_for_user(&mut w.sys, &buffer, offset, bytes)?;
        w.engine.sync_for_user(&mut w.sys, &buffer, HEAD, 4)?;
        // Consumer: the head, the records, then its tail.
        w.load(&mut space, va + HEAD)?;
        user_read(w, &mut space, va + offset, bytes)?;
        w.store(&mut space, va + TAIL, first + BATCH)?;
        w.engine.sync_for_kernel(&mut w.sys, &buffer, TAIL, 4)?;
        w.sys.mem.load(kva(&buffer, TAIL)?, 4)?;
    }
    Ok(())
}

fn fork_cow<P: Policy>(w: &mut World<P>, size: Size) -> Result<(), BenchError> {
    let mut parent = w.space()?;
    // The child's table is built before the parent's lines are dirty (and
    // is the same work for every policy).
    let table = w.new_table()?;
    w.switch_to(&mut parent)?;
    w.start_measuring();
    let len = size.pages * PAGE;
    let va = w
        .engine
        .mmap(&mut w.sys, &mut parent, MmapArgs::anonymous(len))?
        .as_u32();
    user_write(w, &mut parent, va, len, 0)?;
    let mut child = w.engine.fork(&mut w.sys, &mut parent, table)?;
    for round in 1..=size.rounds.div_ceil(8).max(2) {
        w.switch_to(&mut parent)?;
        user_write(w, &mut parent, va, len, round)?;
        w.switch_to(&mut child)?;
        user_read(w, &mut child, va, len)?;
        user_write(w, &mut child, va, len, round + 100)?;
    }
    w.switch_to(&mut parent)?;
    user_read(w, &mut parent, va, len)?;
    w.exit(child)
}

fn two_addresses<P: Policy>(w: &mut World<P>, size: Size) -> Result<(), BenchError> {
    const WORDS: u32 = 16;
    let mut space = w.space()?;
    w.switch_to(&mut space)?;
    w.start_measuring();
    let (id, frames) = file(w, 1)?;
    kernel_fill(w, &frames, 0)?;
    let args = MmapArgs::shared_object(id, 0, PAGE);
    let a = w.engine.mmap(&mut w.sys, &mut space, args)?.as_u32();
    let b = w.engine.mmap(&mut w.sys, &mut space, args)?.as_u32();
    for round in 0..size.rounds * 2 {
        user_write(w, &mut space, a, 4 * WORDS, round)?;
        user_read(w, &mut space, b, 4 * WORDS)?;
        user_write(w, &mut space, b + 128, 4 * WORDS, round)?;
        user_read(w, &mut space, a + 128, 4 * WORDS)?;
    }
    // The second mapping goes; the first is used on.
    w.engine.munmap(&mut w.sys, &mut space, VirtAddr(b), PAGE)?;
    for round in 0..size.rounds * 2 {
        user_write(w, &mut space, a, 4 * WORDS, round)?;
        user_read(w, &mut space, a + 128, 4 * WORDS)?;
        user_read(w, &mut space, a, 4 * WORDS)?;
    }
    Ok(())
}

fn ping_pong<P: Policy>(w: &mut World<P>, n: u32, size: Size) -> Result<(), BenchError> {
    const LINES: u32 = 8;
    // The pipe's buffer: one kernel word.
    let token = w.kernel_va(SCRATCH);
    let mut procs = Vec::new();
    for _ in 0..n {
        let mut space = w.space()?;
        w.switch_to(&mut space)?;
        let va = w
            .engine
            .mmap(&mut w.sys, &mut space, MmapArgs::anonymous(PAGE))?
            .as_u32();
        for line in 0..LINES {
            w.store(&mut space, va + line * LINE, line)?;
        }
        procs.push((space, va));
    }
    // Measured from the first process's turn on: creating the processes
    // is the same work for every policy.
    w.start_measuring();
    for round in 0..size.rounds {
        for (space, va) in procs.iter_mut() {
            w.switch_to(space)?;
            w.sys.mem.load(token, 4)?;
            for line in 0..LINES {
                user_read(w, space, *va + line * LINE, 16)?;
                w.store(space, *va + line * LINE, round)?;
            }
            w.sys.mem.store(token, 4, round)?;
        }
    }
    Ok(())
}

fn dma<P: Policy>(w: &mut World<P>, who: Contender, size: Size) -> Result<(), BenchError> {
    const PACKET: u32 = 1500;
    let style = who.dma();
    let info = *w.engine.info();
    // The driver's variables (cached kernel memory) and its buffers, which
    // start 16 bytes into a line. Streaming: in the same pages, the
    // variables in the buffers' first lines. Coherent: in uncached pages of
    // their own, as dma_alloc_coherent gives them.
    let (rx_var, tx_var) = (w.kernel_va(SCRATCH + 0x1000), w.kernel_va(SCRATCH + 0x1800));
    let (rx, tx) = match style {
        DmaStyle::Coherent => {
            for (i, frame) in [SCRATCH + 0x2000, SCRATCH + 0x3000].into_iter().enumerate() {
                let attrs = Attributes::KERNEL_DATA
                    .with_memory(MemoryType::Bufferable)
                    .with_access(Access::KernelRw)
                    .with_execute(Execute::NeverIfSupported);
                w.kernel.map_page(
                    &mut w.sys.mem,
                    &mut w.sys.table_frames,
                    VirtAddr(DMA_UNCACHED + i as u32 * PAGE),
                    PhysAddr(frame),
                    attrs,
                )?;
            }
            (DMA_UNCACHED + 0x10, DMA_UNCACHED + PAGE + 0x10)
        }
        _ => (rx_var + 0x10, tx_var + 0x10),
    };
    let linear = w.kernel_pa(0);
    let pa_of = |va: u32| {
        if va >= DMA_UNCACHED {
            SCRATCH + 0x2000 + (va - DMA_UNCACHED)
        } else {
            va.wrapping_add(linear)
        }
    };
    let mut streaming = Dma::new(&info);
    let packet: Vec<u8> = (0..PACKET).map(|i| (i * 7) as u8).collect();
    let whole = |w: &mut World<P>| {
        let cpu = &mut w.sys.mem;
        cpu.clean_invalidate_dcache_all();
        cpu.drain_write_buffer();
    };
    w.start_measuring();
    for round in 0..size.rounds * 2 {
        // Receive.
        w.sys.mem.store(rx_var, 4, round)?;
        let mapping = match style {
            DmaStyle::Streaming => {
                // SAFETY: the CPU leaves the buffer (and its first line's
                // variable) alone until unmap.
                Some(unsafe {
                    streaming.map_single(
                        &mut w.sys.mem,
                        VirtAddr(rx),
                        PACKET as usize,
                        DmaDirection::FromDevice,
                    )
                }?)
            }
            DmaStyle::WholeCache => {
                whole(w);
                None
            }
            DmaStyle::Coherent => None,
        };
        w.sys.mem.dma_write(pa_of(rx), &packet)?;
        match (style, mapping) {
            (DmaStyle::Streaming, Some(mapping)) => streaming.unmap(&mut w.sys.mem, mapping)?,
            (DmaStyle::WholeCache, _) => whole(w),
            _ => {}
        }
        for at in (rx..rx + PACKET).step_by(4) {
            w.sys.mem.load(at, 4)?;
        }
        w.sys.mem.store(rx_var, 4, round + 1)?;
        // Transmit.
        for (i, at) in (tx..tx + PACKET).step_by(4).enumerate() {
            w.sys.mem.store(at, 4, word(round, i as u32))?;
        }
        w.sys.mem.store(tx_var, 4, round)?;
        let mapping = match style {
            DmaStyle::Streaming => {
                // SAFETY: as above, until unmap.
                Some(unsafe {
                    streaming.map_single(
                        &mut w.sys.mem,
                        VirtAddr(tx),
                        PACKET as usize,
                        DmaDirection::ToDevice,
                    )
                }?)
            }
            DmaStyle::WholeCache => {
                whole(w);
                None
            }
            DmaStyle::Coherent => {
                // Uncached stores may still sit in the write buffer.
                w.sys.mem.drain_write_buffer();
                None
            }
        };
        w.sys.mem.dma_read(pa_of(tx), PACKET)?;
        if let Some(mapping) = mapping {
            streaming.unmap(&mut w.sys.mem, mapping)?;
        }
    }
    Ok(())
}

fn code<P: Policy>(w: &mut World<P>, size: Size) -> Result<(), BenchError> {
    const JIT_WORDS: u32 = 256;
    let mut space = w.space()?;
    w.switch_to(&mut space)?;
    w.start_measuring();
    // exec: the program reaches the page cache, is mapped and run.
    let (id, frames) = file(w, 1)?;
    kernel_fill(w, &frames, 0)?;
    let text = MmapArgs {
        prot: Protection::READ | Protection::EXEC,
        shared: false,
        source: MapSource::Object { id, offset: 0 },
        ..MmapArgs::anonymous(PAGE)
    };
    let text = w.engine.mmap(&mut w.sys, &mut space, text)?.as_u32();
    for at in (text..text + PAGE).step_by(4) {
        w.fetch(&mut space, at)?;
    }
    // A JIT: code written into its own page, flushed (cacheflush()), run.
    let jit = MmapArgs {
        prot: Protection::READ | Protection::WRITE | Protection::EXEC,
        ..MmapArgs::anonymous(PAGE)
    };
    let jit = w.engine.mmap(&mut w.sys, &mut space, jit)?.as_u32();
    for round in 0..size.rounds {
        user_write(w, &mut space, jit, 4 * JIT_WORDS, round)?;
        // The address the CPU sees (FCSE-modified under a PID).
        let at = space.table().modified_va(VirtAddr(jit));
        w.engine
            .flush_icache_range(&mut w.sys.mem, at, 4 * JIT_WORDS)?;
        for at in (jit..jit + 4 * JIT_WORDS).step_by(4) {
            w.fetch(&mut space, at)?;
        }
        for at in (text..text + PAGE / 4).step_by(4) {
            w.fetch(&mut space, at)?;
        }
    }
    Ok(())
}

fn shared_across_spaces<P: Policy>(w: &mut World<P>, size: Size) -> Result<(), BenchError> {
    let pages = 8 * size.pages;
    let len = pages * PAGE;
    // The file read in (a frame another workload freed holds dead data).
    let (id, frames) = file(w, pages)?;
    kernel_fill(w, &frames, 0)?;
    let args = MmapArgs::shared_object(id, 0, len);
    let mut procs = Vec::new();
    for _ in 0..2 {
        let mut space = w.space()?;
        w.switch_to(&mut space)?;
        let va = w.engine.mmap(&mut w.sys, &mut space, args)?.as_u32();
        procs.push((space, va));
    }
    w.start_measuring();
    for round in 0..size.rounds {
        for (space, va) in procs.iter_mut() {
            w.switch_to(space)?;
            for page in 0..pages {
                let at = *va + page * PAGE;
                w.load(space, at)?;
                w.store(space, at, word(round, page))?;
            }
        }
    }
    Ok(())
}

fn exit_not_running<P: Policy>(w: &mut World<P>, size: Size) -> Result<(), BenchError> {
    let len = 32 * size.pages * PAGE;
    let mut big = w.space()?;
    w.switch_to(&mut big)?;
    let va = w
        .engine
        .mmap(&mut w.sys, &mut big, MmapArgs::anonymous(len))?
        .as_u32();
    for at in (va..va + len).step_by(PAGE as usize) {
        w.store(&mut big, at, at)?;
    }
    let mut other = w.space()?;
    // The switch away is measured too: a kernel that flushes there pays
    // for the space's lines at the switch, one with keys at the exit.
    w.start_measuring();
    w.switch_to(&mut other)?;
    w.exit(big)
}

fn loader_code<P: Policy>(w: &mut World<P>, size: Size) -> Result<(), BenchError> {
    let (id, frames) = file(w, size.pages)?;
    let len = size.pages * PAGE;
    let text = MmapArgs {
        prot: Protection::READ | Protection::EXEC,
        shared: false,
        source: MapSource::Object { id, offset: 0 },
        ..MmapArgs::anonymous(len)
    };
    // The shell the loader's processes start from and return to; the
    // library, read in and run once before.
    let mut shell = w.space()?;
    w.switch_to(&mut shell)?;
    kernel_fill(w, &frames, 0)?;
    let first = w.engine.mmap(&mut w.sys, &mut shell, text)?.as_u32();
    w.fetch(&mut shell, first)?;
    w.start_measuring();
    for _ in 0..size.rounds.div_ceil(2) {
        let mut process = w.space()?;
        w.switch_to(&mut process)?;
        let va = w.engine.mmap(&mut w.sys, &mut process, text)?.as_u32();
        for page in 0..size.pages {
            let at = va + page * PAGE;
            for word in (at..at + 16 * 4).step_by(4) {
                w.fetch(&mut process, word)?;
            }
        }
        w.switch_to(&mut shell)?;
        w.exit(process)?;
    }
    Ok(())
}

fn short_buffers<P: Policy>(w: &mut World<P>, size: Size) -> Result<(), BenchError> {
    let mut space = w.space()?;
    w.switch_to(&mut space)?;
    w.start_measuring();
    let len = 2 * PAGE;
    for round in 0..size.rounds * 2 {
        let va = w
            .engine
            .mmap(&mut w.sys, &mut space, MmapArgs::anonymous(len))?
            .as_u32();
        user_write(w, &mut space, va, len, round)?;
        user_read(w, &mut space, va, len)?;
        w.munmap(&mut space, va, len)?;
    }
    Ok(())
}
