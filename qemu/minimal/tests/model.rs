//! The minimal kernel's memory manager (`vacmm_minimal::vm`, the same code
//! the kernel runs) on vacmm's cache model: random programs and every
//! short program of kernel and user events, with the engine told each
//! event through the kernel's own glue (`Vm::map`, `Vm::switch`,
//! `Vm::exit`) and its `FrameKnowledge` / `MemoryTypes`. Every load is
//! checked against what was last stored (one word per frame: the
//! processes share every frame they map, nothing is copied on write), and
//! the model's oracle must report nothing. The twin leaves the engine's
//! guard out of kernel writes and must be caught.
//!
//! `VACMM_MINIMAL_CASES` random programs of `VACMM_MINIMAL_OPS` events
//! per preset (default 32 × 300); every program of `VACMM_MINIMAL_DEPTH`
//! events (default 3) over two user addresses.

use std::collections::HashMap;

use vacmm::addr::{PhysAddr, VirtAddr};
use vacmm::check::machine::presets;
use vacmm::coherence::{Engine, KmapAccess};
use vacmm::mm::ids::SpaceIds;
use vacmm::mmu::{Arch, Attributes, ContextSwitcher, KeyAllocator, PageTable, TableFrames};
use vacmm::sim::{CpuModel, KERNEL, MemType, Sim};
use vacmm_minimal::vm::{Frame, Process, Vm};

const PAGE: u32 = 4096;
const MEMORY: u32 = 4 << 20;
const KERNEL_L1: u32 = 0x4000;
/// Two user L1 tables, then table frames, then user frames.
const USER_L1: [u32; 2] = [0x8000, 0xc000];
const TABLE_POOL: u32 = 0x10_0000;
const USER_FRAMES: u32 = 0x20_0000;
/// User frames (two are enough for every alias; colours 0 and 1).
const FRAMES: u32 = 2;
/// User addresses at colours 0, 1, 2, 3 (of a 64 KiB way).
const SLOTS: [u32; 4] = [0x0100_0000, 0x0100_1000, 0x0100_2000, 0x0100_3000];

struct Pool(Vec<PhysAddr>);
impl TableFrames for Pool {
    fn allocate_table_frame(&mut self) -> Option<PhysAddr> {
        self.0.pop()
    }
    fn free_table_frame(&mut self, frame: PhysAddr) {
        self.0.push(frame);
    }
}

/// One event.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// Process `proc` maps frame `frame` at slot `slot` (if the slot is free).
    Map {
        proc: usize,
        slot: usize,
        frame: u32,
    },
    /// Process `proc` runs.
    Switch {
        proc: usize,
    },
    /// The running process loads / stores at slot `slot` (if mapped).
    Load {
        slot: usize,
    },
    Store {
        slot: usize,
        value: u32,
    },
    /// The kernel writes / reads frame `frame` (guard / kmap).
    KernelWrite {
        frame: u32,
        value: u32,
    },
    KernelRead {
        frame: u32,
    },
}

struct World {
    vm: Vm<Sim>,
    engine: Engine,
    switcher: ContextSwitcher,
    pool: Pool,
    current: usize,
    /// (proc, slot) → frame.
    mapped: HashMap<(usize, usize), u32>,
    /// The word last stored in each frame.
    reference: Vec<u32>,
    /// The twin: kernel writes without the guard.
    guard: bool,
}

impl World {
    fn new(model: CpuModel, guard: bool) -> World {
        let mut sim = Sim::new(model, MEMORY as usize);
        let info = model.info();
        let arch = Arch::of(&info);
        // Until the kernel's table is attached the model translates from
        // its own map: the table's own pages are all it needs.
        for page in (KERNEL_L1..KERNEL_L1 + 0x4000).step_by(PAGE as usize) {
            sim.map(KERNEL, page, page, MemType::WriteBack, true)
                .unwrap();
        }
        let mut kernel = PageTable::new(&mut sim, PhysAddr(KERNEL_L1), arch).unwrap();
        for mib in 0..MEMORY >> 20 {
            let at = mib << 20;
            let attrs = Attributes::KERNEL_DATA;
            kernel
                .map_section(&mut sim, VirtAddr(at), PhysAddr(at), attrs)
                .unwrap();
        }
        sim.attach_table(KERNEL, PhysAddr(KERNEL_L1), arch).unwrap();
        let linear = vacmm::addr::VirtRange::new(VirtAddr(0), u64::from(MEMORY)).unwrap();
        let mut ids = SpaceIds::new();
        let mut procs = Vec::new();
        for l1 in USER_L1 {
            let mut table = PageTable::new(&mut sim, PhysAddr(l1), arch).unwrap();
            table.share_entries_from(&mut sim, &kernel, linear).unwrap();
            let space = sim.create_space(0);
            sim.attach_table(space, PhysAddr(l1), arch).unwrap();
            let id = ids.issue().unwrap();
            procs.push(Process {
                id,
                table: Some(table),
                pages: Vec::new(),
            });
        }
        let switcher = match arch {
            Arch::Armv5 => ContextSwitcher::vivt_flush(),
            Arch::Armv6 => ContextSwitcher::asid(KeyAllocator::asids(), PhysAddr(KERNEL_L1)),
        };
        let engine = Engine::new(info, 0, switcher.policy()).unwrap();
        let frames = (0..FRAMES).map(|_| Frame::default()).collect();
        let vm = Vm {
            mem: sim,
            first: PhysAddr(USER_FRAMES),
            frames,
            procs,
        };
        let pool = (TABLE_POOL..USER_FRAMES)
            .step_by(PAGE as usize)
            .map(PhysAddr)
            .collect();
        let mut world = World {
            vm,
            engine,
            switcher,
            pool: Pool(pool),
            current: 0,
            mapped: HashMap::new(),
            reference: vec![0; FRAMES as usize],
            guard,
        };
        world
            .vm
            .switch(&mut world.engine, &mut world.switcher, 0)
            .unwrap();
        world
    }

    fn frame(&self, frame: u32) -> PhysAddr {
        PhysAddr(USER_FRAMES + frame * PAGE)
    }

    /// Applies `op`; Err with what went wrong.
    fn apply(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::Map { proc, slot, frame } => {
                if self.mapped.contains_key(&(proc, slot)) {
                    return Ok(());
                }
                let page = (VirtAddr(SLOTS[slot]), self.frame(frame));
                let attrs = Attributes::USER_DATA;
                let vm = &mut self.vm;
                vm.map(&mut self.engine, &mut self.pool, proc, page, attrs)
                    .map_err(|e| format!("map: {e}"))?;
                self.mapped.insert((proc, slot), frame);
            }
            Op::Switch { proc } => {
                self.vm
                    .switch(&mut self.engine, &mut self.switcher, proc)
                    .map_err(|e| format!("switch: {e}"))?;
                self.current = proc;
            }
            Op::Load { slot } => {
                if let Some(&frame) = self.mapped.get(&(self.current, slot)) {
                    let seen = self
                        .vm
                        .mem
                        .load(SLOTS[slot], 4)
                        .map_err(|e| format!("{e}"))?;
                    self.expect(frame, seen, "user load")?;
                }
            }
            Op::Store { slot, value } => {
                if let Some(&frame) = self.mapped.get(&(self.current, slot)) {
                    // Loaded first: lines are allocated on reads.
                    let va = SLOTS[slot];
                    self.vm.mem.load(va, 4).map_err(|e| format!("{e}"))?;
                    self.vm
                        .mem
                        .store(va, 4, value)
                        .map_err(|e| format!("{e}"))?;
                    self.reference[frame as usize] = value;
                }
            }
            Op::KernelWrite { frame, value } => {
                let pa = self.frame(frame);
                if self.guard {
                    let mut write = self
                        .engine
                        .page_cache_write(&mut self.vm, pa)
                        .map_err(|e| format!("{e}"))?;
                    let va = write.va().as_u32();
                    write.mem().load(va, 4).map_err(|e| format!("{e}"))?;
                    write
                        .mem()
                        .store(va, 4, value)
                        .map_err(|e| format!("{e}"))?;
                    write.finish().map_err(|e| format!("{e}"))?;
                } else {
                    let va = pa.as_u32();
                    self.vm.mem.load(va, 4).map_err(|e| format!("{e}"))?;
                    self.vm
                        .mem
                        .store(va, 4, value)
                        .map_err(|e| format!("{e}"))?;
                }
                self.reference[frame as usize] = value;
            }
            Op::KernelRead { frame } => {
                let pa = self.frame(frame);
                let mut kmap = self
                    .engine
                    .kmap(&mut self.vm, pa, KmapAccess::Read)
                    .map_err(|e| format!("{e}"))?;
                let va = kmap.va().as_u32();
                let seen = kmap.mem().load(va, 4).map_err(|e| format!("{e}"))?;
                kmap.finish().map_err(|e| format!("{e}"))?;
                self.expect(frame, seen, "kernel read")?;
            }
        }
        let violations = self.vm.mem.take_violations();
        match violations.first() {
            None => Ok(()),
            Some(v) => Err(format!("oracle: {v:?}")),
        }
    }

    fn expect(&self, frame: u32, seen: u32, what: &str) -> Result<(), String> {
        let want = self.reference[frame as usize];
        match seen == want {
            true => Ok(()),
            false => Err(format!(
                "{what} of frame {frame}: {seen:#x}, the last store was {want:#x}"
            )),
        }
    }

    /// The end: the running process gives way to the other, which exits
    /// (`Vm::exit`); the kernel then reads every frame.
    fn finish(&mut self) -> Result<(), String> {
        let gone = 1 - self.current;
        self.vm
            .exit(&mut self.engine, gone)
            .map_err(|e| format!("exit: {e}"))?;
        self.mapped.retain(|&(proc, _), _| proc != gone);
        for frame in 0..FRAMES {
            self.apply(Op::KernelRead { frame })?;
        }
        Ok(())
    }
}

/// Every op over the first `slots` slots, values from `value`.
fn alphabet(value: u32, slots: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    for proc in 0..2 {
        ops.push(Op::Switch { proc });
        for slot in 0..slots {
            for frame in 0..FRAMES {
                ops.push(Op::Map { proc, slot, frame });
            }
        }
    }
    for slot in 0..slots {
        ops.push(Op::Load { slot });
        ops.push(Op::Store {
            slot,
            value: value + slot as u32,
        });
    }
    for frame in 0..FRAMES {
        ops.push(Op::KernelWrite {
            frame,
            value: value + 0x100 + frame,
        });
        ops.push(Op::KernelRead { frame });
    }
    ops
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(model: CpuModel, guard: bool, ops: &[Op]) -> Result<(), String> {
    let mut world = World::new(model, guard);
    for (i, &op) in ops.iter().enumerate() {
        world.apply(op).map_err(|e| format!("op {i} {op:?}: {e}"))?;
    }
    world.finish().map_err(|e| format!("at the end: {e}"))
}

#[test]
fn random_programs_keep_every_load_coherent_on_every_preset() {
    let (cases, len) = (
        env("VACMM_MINIMAL_CASES", 32),
        env("VACMM_MINIMAL_OPS", 300),
    );
    for (name, model) in presets() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..cases {
            let ops: Vec<Op> = (0..len)
                .map(|i| {
                    let all = alphabet(0x1000 * (i as u32 + 1), SLOTS.len());
                    all[next() as usize % all.len()]
                })
                .collect();
            if let Err(e) = run(model, true, &ops) {
                panic!("{name}, case {case}: {e}");
            }
        }
    }
}

#[test]
fn every_short_program_keeps_every_load_coherent_on_every_preset() {
    let depth = env("VACMM_MINIMAL_DEPTH", 3) as u32;
    for (name, model) in presets() {
        // Two slots (colours 0 and 1) make every alias the four do.
        let ops = alphabet(0x1000, 2);
        let mut count = 0u64;
        for n in 0..ops.len().pow(depth) {
            let program: Vec<Op> = (0..depth)
                .map(|k| ops[n / ops.len().pow(k) % ops.len()])
                .collect();
            if let Err(e) = run(model, true, &program) {
                panic!("{name}: {program:?}: {e}");
            }
            count += 1;
        }
        println!("{name}: every program of {depth} events ({count}), 0 violations");
    }
}

/// The twin: kernel writes by bare stores, without the guard, are caught
/// on every preset whose cache aliases (the oracle or a stale load), and
/// pass on the one that does not.
#[test]
fn kernel_writes_without_the_guard_are_caught_where_the_cache_aliases() {
    for (name, model) in presets() {
        let aliases = model.info().kind.aliases();
        let program = [
            Op::Map {
                proc: 0,
                slot: 1,
                frame: 0,
            },
            Op::Load { slot: 1 },
            Op::KernelWrite {
                frame: 0,
                value: 0x5eed,
            },
            Op::Load { slot: 1 },
        ];
        let twin = run(model, false, &program);
        assert_eq!(twin.is_err(), aliases, "{name}: {twin:?}");
        assert_eq!(run(model, true, &program), Ok(()), "{name}");
    }
}
