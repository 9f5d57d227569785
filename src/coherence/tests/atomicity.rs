//! Failure atomicity (issue 19, Build 3): every refused call of `Engine`,
//! `AddressSpace`, `MemorySystem` and what they own leaves the books
//! ([`Books`]) exactly as they were — bad ids, bad ranges, no frame, no
//! table frame — and loses no data: after every refusal, each word the
//! processes stored still loads, and the oracle finds nothing.

extern crate std;

use std::string::String;

use super::*;
use crate::check::books::{Books, difference};
use crate::check::machine::{MIN, TOP, WINDOWS};
use crate::mm::object::{ObjectId, ObjectMapping};
use crate::mm::space::{MapSource, Protection, SpaceConfig};

/// Two processes (a parent and its forked child) with every kind of
/// mapping, a shared buffer, and an object id that names nothing.
struct Rig {
    m: Machine,
    /// `procs[0]` runs; `procs[1]` is its child.
    procs: Vec<AddressSpace>,
    buffer: Option<shared::SharedBuffer>,
    file: ObjectId,
    stale: ObjectId,
    /// Private anonymous pages, copy-on-write after the fork.
    anon: u32,
    /// A shared anonymous page.
    shared: u32,
    /// Two pages of `file`, shared.
    filed: u32,
    /// `file`'s page 2, private, read (not copied yet).
    private_file: u32,
    /// A one-page file mapped over two pages: the second is past its end.
    beyond: u32,
    /// Read-only anonymous memory.
    read_only: u32,
    /// The buffer's page, shared.
    buffered: u32,
    /// `file`'s page 3 (not in the page cache), private and shared.
    fresh_private: u32,
    fresh_shared: u32,
    /// Anonymous memory alone in its 4 MiB (one table frame holds the
    /// second-level tables of four MiBs): no table for it yet.
    far: u32,
    /// A private page the parent wrote after the fork: writable, its own.
    low: u32,
    /// Words stored, by process: (address, value).
    stored: Vec<(usize, u32, u32)>,
}

/// A failing call: `Ok(())` means it was not refused.
type Call = fn(&mut Rig) -> Result<(), CoherenceError>;

/// What a case takes away from the machine before the call (and gives
/// back after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pressure {
    None,
    /// No free frame.
    NoFrames,
    /// One free frame.
    OneFrame,
    /// No frame for a second-level table.
    NoTableFrames,
    /// One frame for a second-level table.
    OneTableFrame,
}

impl Rig {
    fn new(model: CpuModel) -> Rig {
        let mut m = Machine::new(model);
        let mut p = m.space();
        m.switch_to(&mut p);
        let file = m.file(4);
        let small = m.file(1);
        let stale = m.file(1);
        m.sys.objects.destroy(stale).unwrap();
        let e = &mut m.engine;
        let anon = e.mmap(&mut m.sys, &mut p, MmapArgs::anonymous(4 * PAGE));
        let shared_anon = MmapArgs {
            shared: true,
            ..MmapArgs::anonymous(PAGE)
        };
        let shared = e.mmap(&mut m.sys, &mut p, shared_anon);
        let filed = e.mmap(
            &mut m.sys,
            &mut p,
            MmapArgs::shared_object(file, 0, 2 * PAGE),
        );
        let private = MmapArgs {
            shared: false,
            ..MmapArgs::shared_object(file, 2 * u64::from(PAGE), PAGE)
        };
        let private_file = e.mmap(&mut m.sys, &mut p, private);
        let beyond = e.mmap(
            &mut m.sys,
            &mut p,
            MmapArgs::shared_object(small, 0, 2 * PAGE),
        );
        let read_only = MmapArgs {
            prot: Protection::READ,
            ..MmapArgs::anonymous(PAGE)
        };
        let read_only = e.mmap(&mut m.sys, &mut p, read_only);
        let buffer = e
            .create_shared_buffer(&mut m.sys, None, 1, shared::SharingMode::HandOver)
            .unwrap();
        let buffered = MmapArgs::shared_object(buffer.object(), 0, PAGE);
        let buffered = e.mmap(&mut m.sys, &mut p, buffered);
        let page3 = MmapArgs::shared_object(file, 3 * u64::from(PAGE), PAGE);
        let fresh_shared = e.mmap(&mut m.sys, &mut p, page3);
        let page3 = MmapArgs {
            shared: false,
            ..page3
        };
        let fresh_private = e.mmap(&mut m.sys, &mut p, page3);
        let far = e.mmap(
            &mut m.sys,
            &mut p,
            fixed(MIN + 0x0050_0000, MmapArgs::anonymous(PAGE)),
        );
        let low = e.mmap(
            &mut m.sys,
            &mut p,
            fixed(MIN + 0x0010_0000, MmapArgs::anonymous(PAGE)),
        );
        let va = |r: Result<VirtAddr, CoherenceError>| r.unwrap().as_u32();
        let mut rig = Rig {
            anon: va(anon),
            shared: va(shared),
            filed: va(filed),
            private_file: va(private_file),
            beyond: va(beyond),
            read_only: va(read_only),
            buffered: va(buffered),
            fresh_private: va(fresh_private),
            fresh_shared: va(fresh_shared),
            far: va(far),
            low: va(low),
            procs: Vec::new(),
            m,
            buffer: Some(buffer),
            file,
            stale,
            stored: Vec::new(),
        };
        let words = [
            rig.anon,
            rig.anon + PAGE,
            rig.shared,
            rig.filed,
            rig.filed + PAGE,
            rig.buffered,
        ];
        for (i, va) in words.into_iter().enumerate() {
            let value = 0x5100 + i as u32;
            user_store(&mut rig.m, &mut p, va + 4 * i as u32, value, Faults::Engine);
            rig.stored.push((0, va + 4 * i as u32, value));
        }
        user_load(&mut rig.m, &mut p, rig.private_file, Faults::Engine);
        let table = rig.m.child_table();
        let child = rig.m.engine.fork(&mut rig.m.sys, &mut p, table).unwrap();
        let inherited: Vec<_> = rig.stored.iter().map(|&(_, va, v)| (1, va, v)).collect();
        rig.stored.extend(inherited);
        // Written after the fork: the parent's alone, writable. It is the
        // lowest resident page, so a fork copies it first.
        user_store(&mut rig.m, &mut p, rig.low, 0x10_0000, Faults::Engine);
        rig.stored.push((0, rig.low, 0x10_0000));
        rig.procs = vec![p, child];
        rig
    }

    fn books(&self) -> Books {
        let spaces: Vec<&AddressSpace> = self.procs.iter().collect();
        Books::of(&self.m, &spaces)
    }

    /// Applies `pressure`; returns what to give back.
    fn press(&mut self, pressure: Pressure) -> (Vec<PhysAddr>, Vec<PhysAddr>) {
        let mut frames = Vec::new();
        let keep = match pressure {
            Pressure::NoFrames => 0,
            Pressure::OneFrame => 1,
            _ => u32::MAX,
        };
        let free = |m: &Machine| -> u32 {
            (0..m.sys.allocator.colours())
                .map(|c| m.sys.allocator.free_frames_of(c))
                .sum()
        };
        while free(&self.m) > keep {
            frames.push(self.m.sys.allocator.allocate_any().unwrap());
        }
        let pool = &mut self.m.sys.table_frames.0;
        let pool = match pressure {
            Pressure::NoTableFrames => core::mem::take(pool),
            Pressure::OneTableFrame => pool.drain(1..).collect(),
            _ => Vec::new(),
        };
        (frames, pool)
    }

    fn release(&mut self, (frames, pool): (Vec<PhysAddr>, Vec<PhysAddr>)) {
        for pa in frames.into_iter().rev() {
            self.m.sys.allocator.free(pa).unwrap();
        }
        self.m.sys.table_frames.0.extend(pool);
    }

    /// The running process and the rest of the machine, borrowed apart.
    fn running(
        &mut self,
    ) -> (
        &mut Engine<alloc::boxed::Box<dyn Policy>>,
        &mut MemorySystem<crate::sim::Sim, crate::check::machine::Pool>,
        &mut AddressSpace,
    ) {
        (&mut self.m.engine, &mut self.m.sys, &mut self.procs[0])
    }
}

fn fixed(addr: u32, args: MmapArgs) -> MmapArgs {
    MmapArgs {
        addr: Some(VirtAddr(addr)),
        fixed: true,
        ..args
    }
}

/// Every case: name, pressure, call.
fn cases() -> Vec<(&'static str, Pressure, Call)> {
    use Pressure::*;
    let mut cases: Vec<(&'static str, Pressure, Call)> = vec![
        (
            "mmap MAP_FIXED of a destroyed object over a mapping",
            None,
            |r| {
                let args = fixed(r.anon, MmapArgs::shared_object(r.stale, 0, PAGE));
                let (e, sys, p) = r.running();
                e.mmap(sys, p, args).map(|_| ())
            },
        ),
        ("mmap MAP_FIXED at an unaligned address", None, |r| {
            let args = fixed(r.anon + 8, MmapArgs::anonymous(PAGE));
            let (e, sys, p) = r.running();
            e.mmap(sys, p, args).map(|_| ())
        }),
        ("mmap of zero bytes", None, |r| {
            let (e, sys, p) = r.running();
            e.mmap(sys, p, MmapArgs::anonymous(0)).map(|_| ())
        }),
        (
            "mmap MAP_FIXED at an unaligned address over a resident page",
            None,
            |r| {
                let args = fixed(r.anon - 8, MmapArgs::anonymous(2 * PAGE));
                let (e, sys, p) = r.running();
                e.mmap(sys, p, args).map(|_| ())
            },
        ),
        ("mmap MAP_FIXED across the end of user space", None, |r| {
            let args = fixed(TOP - PAGE, MmapArgs::anonymous(2 * PAGE));
            let (e, sys, p) = r.running();
            e.mmap(sys, p, args).map(|_| ())
        }),
        (
            "mmap MAP_FIXED at an offset past 32-bit pages, over a mapping",
            None,
            |r| {
                let source = MapSource::Object {
                    id: r.file,
                    offset: !u64::from(PAGE - 1),
                };
                let args = fixed(
                    r.filed,
                    MmapArgs {
                        source,
                        ..MmapArgs::anonymous(PAGE)
                    },
                );
                let (e, sys, p) = r.running();
                e.mmap(sys, p, args).map(|_| ())
            },
        ),
        ("munmap at an unaligned address", None, |r| {
            let at = VirtAddr(r.anon + 4);
            let (e, sys, p) = r.running();
            e.munmap(sys, p, at, PAGE)
        }),
        ("munmap of zero bytes", None, |r| {
            let at = VirtAddr(r.anon);
            let (e, sys, p) = r.running();
            e.munmap(sys, p, at, 0)
        }),
        ("munmap across the end of user space", None, |r| {
            let (e, sys, p) = r.running();
            e.munmap(sys, p, VirtAddr(TOP - PAGE), 2 * PAGE)
        }),
        ("mprotect over a hole", None, |r| {
            let at = VirtAddr(r.anon);
            let (e, sys, p) = r.running();
            e.mprotect(sys, p, at, 0x0100_0000, Protection::READ)
        }),
        ("mprotect below user space", None, |r| {
            let (e, sys, p) = r.running();
            e.mprotect(sys, p, VirtAddr(MIN - PAGE), PAGE, Protection::READ)
        }),
        ("brk below the heap", None, |r| {
            let (e, sys, p) = r.running();
            e.brk(sys, p, VirtAddr(MIN - PAGE)).map(|_| ())
        }),
        ("brk over a mapping", None, |r| {
            let over = VirtAddr(r.low + PAGE);
            let (e, sys, p) = r.running();
            e.brk(sys, p, over).map(|_| ())
        }),
        ("moving the heap's start once the heap is used", None, |r| {
            let (e, sys, p) = r.running();
            e.brk(sys, p, VirtAddr(MIN + PAGE))?;
            let moved = p.set_brk_start(VirtAddr(MIN + 8 * PAGE));
            e.brk(sys, p, VirtAddr(MIN))?;
            moved.map_err(CoherenceError::from)
        }),
        ("mmap larger than user space", None, |r| {
            let (e, sys, p) = r.running();
            e.mmap(sys, p, MmapArgs::anonymous(TOP)).map(|_| ())
        }),
        ("brk past user space", None, |r| {
            let (e, sys, p) = r.running();
            e.brk(sys, p, VirtAddr(TOP + PAGE)).map(|_| ())
        }),
        ("fault where nothing is mapped", None, |r| {
            let (e, sys, p) = r.running();
            e.fault(sys, p, VirtAddr(MIN), FaultAccess::Read)
                .map(|_| ())
        }),
        ("write fault on read-only memory", None, |r| {
            let at = VirtAddr(r.read_only);
            let (e, sys, p) = r.running();
            e.fault(sys, p, at, FaultAccess::Write).map(|_| ())
        }),
        ("fault past the end of the object", None, |r| {
            let at = VirtAddr(r.beyond + PAGE);
            let (e, sys, p) = r.running();
            e.fault(sys, p, at, FaultAccess::Read).map(|_| ())
        }),
        ("zero-fill fault with no frame", NoFrames, |r| {
            let at = VirtAddr(r.anon + 2 * PAGE);
            let (e, sys, p) = r.running();
            e.fault(sys, p, at, FaultAccess::Write).map(|_| ())
        }),
        ("copy-on-write fault with no frame", NoFrames, |r| {
            let at = VirtAddr(r.anon);
            let (e, sys, p) = r.running();
            e.fault(sys, p, at, FaultAccess::Write).map(|_| ())
        }),
        (
            "private copy of a page-cache page with no frame",
            NoFrames,
            |r| {
                // The private page is resident read-only: the write copies.
                let at = VirtAddr(r.private_file);
                let (e, sys, p) = r.running();
                e.fault(sys, p, at, FaultAccess::Write).map(|_| ())
            },
        ),
        ("fresh page-cache page with no frame", NoFrames, |r| {
            let at = VirtAddr(r.fresh_shared);
            let (e, sys, p) = r.running();
            e.fault(sys, p, at, FaultAccess::Read).map(|_| ())
        }),
        (
            // Read in first (`Engine::fault`): the page-cache frame is the
            // one it needs; the copy's is the case above.
            "fresh page-cache page for a private write with no frame",
            NoFrames,
            |r| {
                let at = VirtAddr(r.fresh_private);
                let (e, sys, p) = r.running();
                e.fault(sys, p, at, FaultAccess::Write).map(|_| ())
            },
        ),
        (
            "fault in a new MiB with no table frame",
            NoTableFrames,
            |r| {
                let at = VirtAddr(r.far);
                let (e, sys, p) = r.running();
                e.fault(sys, p, at, FaultAccess::Write).map(|_| ())
            },
        ),
        (
            "fresh page-cache page in a new MiB with no table frame",
            NoTableFrames,
            |r| {
                let args = fixed(
                    MIN + 0x0090_0000,
                    MmapArgs::shared_object(r.file, 3 * u64::from(PAGE), PAGE),
                );
                let (e, sys, p) = r.running();
                // The mapping is made and taken away again within the call;
                // the fault between them is what is refused.
                let va = e.mmap(sys, p, args)?;
                let fault = e.fault(sys, p, va, FaultAccess::Read).map(|_| ());
                e.munmap(sys, p, va, PAGE)?;
                fault
            },
        ),
        ("fork with no table frame", NoTableFrames, |r| {
            let l1 = PhysAddr(0x7_c000);
            let arch = r.m.arch;
            let table = PageTable::new(&mut r.m.sys.mem, l1, arch)?;
            let (e, sys, p) = r.running();
            e.fork(sys, p, table).map(|_| ())
        }),
        (
            "fork with one table frame (fails after the first MiB)",
            OneTableFrame,
            |r| {
                let l1 = PhysAddr(0x7_c000);
                let arch = r.m.arch;
                let table = PageTable::new(&mut r.m.sys.mem, l1, arch)?;
                let (e, sys, p) = r.running();
                e.fork(sys, p, table).map(|_| ())
            },
        ),
        ("a shared buffer of no pages", None, |r| {
            let mode = shared::SharingMode::HandOver;
            let (e, sys) = (&mut r.m.engine, &mut r.m.sys);
            e.create_shared_buffer(sys, Some(&mut r.m.kernel), 0, mode)
                .map(|_| ())
        }),
        (
            "an uncached shared buffer on the kernel windows",
            None,
            |r| {
                let mode = shared::SharingMode::Uncached {
                    kernel_base: VirtAddr(WINDOWS + PAGE),
                };
                let (e, sys) = (&mut r.m.engine, &mut r.m.sys);
                e.create_shared_buffer(sys, Some(&mut r.m.kernel), 1, mode)
                    .map(|_| ())
            },
        ),
        (
            "an uncached shared buffer over the kernel's linear map",
            None,
            |r| {
                let mode = shared::SharingMode::Uncached {
                    kernel_base: VirtAddr(0x0030_0000),
                };
                let (e, sys) = (&mut r.m.engine, &mut r.m.sys);
                e.create_shared_buffer(sys, Some(&mut r.m.kernel), 1, mode)
                    .map(|_| ())
            },
        ),
        ("a two-page shared buffer with one frame", OneFrame, |r| {
            let mode = shared::SharingMode::HandOver;
            let (e, sys) = (&mut r.m.engine, &mut r.m.sys);
            e.create_shared_buffer(sys, Some(&mut r.m.kernel), 2, mode)
                .map(|_| ())
        }),
        ("destroying a shared buffer still mapped", None, |r| {
            let buffer = r.buffer.take().unwrap();
            let (e, sys) = (&mut r.m.engine, &mut r.m.sys);
            match e.destroy_shared_buffer(sys, Some(&mut r.m.kernel), buffer) {
                Ok(()) => Ok(()),
                Err(refused) => {
                    r.buffer = refused.buffer;
                    Err(refused.error)
                }
            }
        }),
        ("sync_for_user past the buffer's end", None, |r| {
            let buffer = r.buffer.as_ref().unwrap();
            r.m.engine.sync_for_user(&mut r.m.sys, buffer, PAGE - 4, 8)
        }),
        ("sync_for_kernel of zero bytes", None, |r| {
            let buffer = r.buffer.as_ref().unwrap();
            r.m.engine.sync_for_kernel(&mut r.m.sys, buffer, 0, 0)
        }),
        ("copy_user_page from the kernel's L1 table", None, |r| {
            let to = r.procs[0].resident_at(VirtAddr(r.shared)).unwrap();
            let from = PhysAddr(crate::check::machine::KERNEL_L1);
            r.m.engine
                .copy_user_page(&mut r.m.sys, to, from, VirtAddr(r.shared))
        }),
        ("copy_user_page onto itself", None, |r| {
            let pa = r.procs[0].resident_at(VirtAddr(r.shared)).unwrap();
            r.m.engine
                .copy_user_page(&mut r.m.sys, pa, pa, VirtAddr(r.shared))
        }),
        ("clear_user_page of the kernel's L1 table", None, |r| {
            let pa = PhysAddr(crate::check::machine::KERNEL_L1);
            r.m.engine
                .clear_user_page(&mut r.m.sys, pa, VirtAddr(r.shared))
        }),
        ("flush_cache_range at an unaligned address", None, |r| {
            let at = VirtAddr(r.anon + 4);
            let (e, sys, p) = r.running();
            e.flush_cache_range(sys, p, at, PAGE)
        }),
        ("flush_icache_range of zero bytes", None, |r| {
            r.m.engine
                .flush_icache_range(&mut r.m.sys.mem, VirtAddr(0x1000), 0)
        }),
        ("flush_user_icache_range past 4 GiB", None, |r| {
            let (e, sys, p) = r.running();
            e.flush_user_icache_range(sys, p.id(), VirtAddr(0xffff_f000), 0x2000)
        }),
        ("update_mmu_cache where nothing is resident", None, |r| {
            let (e, sys, p) = r.running();
            e.update_mmu_cache(sys, p, VirtAddr(MIN))
        }),
        ("flush_cache_page where nothing is resident", None, |r| {
            let (e, sys, p) = r.running();
            e.flush_cache_page(sys, p, VirtAddr(MIN))
        }),
        ("flush_anon_page where nothing is resident", None, |r| {
            let (e, sys, p) = r.running();
            e.flush_anon_page(sys, p, VirtAddr(MIN))
        }),
        ("make_coherent of an unmanaged frame", None, |r| {
            let (e, sys, p) = r.running();
            e.make_coherent(sys, p, PhysAddr(0x1000))
        }),
        ("kmap of an unmanaged frame", None, |r| {
            let (e, sys) = (&mut r.m.engine, &mut r.m.sys);
            e.kmap(sys, PhysAddr(0x1000), KmapAccess::Read).map(|_| ())
        }),
        ("flush_dcache_page of an unmanaged frame", None, |r| {
            r.m.engine.flush_dcache_page(&mut r.m.sys, PhysAddr(0x1000))
        }),
        ("kernel windows over the engine's own", None, |r| {
            let info = *r.m.engine.info();
            let (sys, kernel) = (&mut r.m.sys, &mut r.m.kernel);
            KernelWindows::new(
                &mut sys.mem,
                &mut sys.table_frames,
                kernel,
                VirtAddr(WINDOWS),
                &info,
            )
            .map(|_| ())
            .map_err(CoherenceError::from)
        }),
        (
            "kernel windows whose second half is the engine's",
            None,
            |r| {
                let info = *r.m.engine.info();
                let span = (info.colour_alignment() as u32).max(PAGE);
                let (sys, kernel) = (&mut r.m.sys, &mut r.m.kernel);
                let base = VirtAddr(WINDOWS - span);
                KernelWindows::new(&mut sys.mem, &mut sys.table_frames, kernel, base, &info)
                    .map(|_| ())
                    .map_err(CoherenceError::from)
            },
        ),
        ("destroying an object still mapped", None, |r| {
            let file = r.file;
            r.m.sys
                .objects
                .destroy(file)
                .map(|_| ())
                .map_err(CoherenceError::from)
        }),
        ("a page added twice to an object", None, |r| {
            let pa = r.m.sys.objects.get(r.file).unwrap().page(0).unwrap();
            let file = r.file;
            r.m.sys
                .objects
                .insert_page(file, 0, pa)
                .map_err(CoherenceError::from)
        }),
        ("a window onto a destroyed object", None, |r| {
            let window = ObjectMapping {
                space: r.procs[0].id(),
                start: VirtAddr(MIN),
                first_page: 0,
                pages: 1,
            };
            let stale = r.stale;
            r.m.sys
                .objects
                .add_mapper(stale, window)
                .map_err(CoherenceError::from)
        }),
        ("set_memory_type where nothing is resident", None, |r| {
            let (_, sys, p) = r.running();
            p.set_memory_type(sys, VirtAddr(MIN), MemoryType::Bufferable)
                .map_err(CoherenceError::from)
        }),
        ("a space whose layout is empty", None, |r| {
            let l1 = PhysAddr(0x7_c000);
            let arch = r.m.arch;
            let table = PageTable::new(&mut r.m.sys.mem, l1, arch)?;
            let mut config: SpaceConfig = *r.procs[0].config();
            config.layout.task_size = config.layout.min_addr;
            AddressSpace::new(&mut r.m.sys, config, table)
                .map(|_| ())
                .map_err(CoherenceError::from)
        }),
    ];
    cases.push(("exit of the running space", None, |r| {
        let running = r.procs.remove(0);
        let (e, sys) = (&mut r.m.engine, &mut r.m.sys);
        match e.exit(sys, running) {
            Ok(_) => Ok(()),
            Err(refused) => {
                if let Some(space) = refused.space {
                    r.procs.insert(0, *space);
                }
                Err(refused.error)
            }
        }
    }));
    cases
}

#[test]
fn refused_calls_change_nothing() {
    let mut findings: Vec<String> = Vec::new();
    for (preset, model) in presets() {
        let mut rig = Rig::new(model);
        for (name, pressure, call) in cases() {
            let taken = rig.press(pressure);
            let before = rig.books();
            let result = call(&mut rig);
            let after = rig.books();
            rig.release(taken);
            match result {
                Ok(()) => findings.push(std::format!("{preset}: {name}: not refused")),
                Err(_) if before != after => {
                    findings.push(std::format!(
                        "{preset}: {name}: {:?} changed {}",
                        result,
                        difference(&before, &after)
                    ));
                }
                Err(_) => {}
            }
        }
        // No data was lost on the way.
        for &(proc, va, value) in &rig.stored.clone() {
            if proc >= rig.procs.len() {
                continue;
            }
            let (m, space) = (&mut rig.m, &mut rig.procs[proc]);
            m.switch_to(space);
            let seen = user_load(m, space, va, Faults::Engine);
            if seen != value {
                findings.push(std::format!(
                    "{preset}: P{proc} {va:#x} holds {seen:#x}, not {value:#x}"
                ));
            }
        }
        let bad = violations(&mut rig.m);
        if !bad.is_empty() {
            findings.push(std::format!("{preset}: the oracle found {bad:?}"));
        }
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}
