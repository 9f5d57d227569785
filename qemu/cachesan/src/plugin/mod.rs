//! The QEMU side: the plugin ABI (hand-written bindings to the few
//! functions of QEMU 10.0's plugin API, version 4, that cachesan uses) and
//! the callbacks that feed [`Engine`].
//!
//! Why hand-written bindings rather than the `qemu-plugin` crate: cachesan
//! needs two dozen declarations whose layout is fixed by QEMU's
//! `qemu-plugin.h`; writing them here keeps the build free of bindgen /
//! libclang and of a binding crate's QEMU-version features, and Debian ships
//! no header for the crate to check against anyway. The symbols are
//! resolved when QEMU dlopen()s the plugin: QEMU exports its `qemu_plugin_*`
//! functions, and GLib (for `GArray` / `GByteArray`) is already loaded.
//!
//! Threading: one vCPU (the model is one core; `install` refuses more), so
//! every callback runs on the vCPU thread, and the atexit callback after it
//! has stopped; the state is reached without a lock (see `StateCell`).

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_uint, c_void};

use rustc_hash::FxHashMap;
use vacmm::arch::annotate::{DECLARE_DEAD, MAGIC, PHASE};

use crate::args::{Config, USAGE, VIOLATION_EXIT_STATUS};
use crate::cp15::{self, Cp15};
use crate::engine::Engine;

mod ffi;

use self::ffi::*;

// ---- state -------------------------------------------------------------------

/// Register handles of the vCPU, and a buffer to read them into.
struct Registers {
    general: [*mut c_void; 16],
    cpsr: *mut c_void,
    buf: *mut GByteArray,
}

/// A CP15 instruction seen at translation, kept for its execution callback.
struct Site {
    pc: u32,
    op: Cp15,
}

/// The vCPU's scoreboard entry, read and written by code QEMU generates
/// (see `Skipping`).
#[repr(C)]
struct Board {
    /// The virtual line address from which a fetch needs no callback
    /// ([`Engine::fresh_fetch_line`]); `NO_LINE` when none.
    fresh_line: u64,
    /// Model fetches of instructions whose callback is conditional (an
    /// inline add on each; see `model_fetches`).
    conditional: u64,
}

const NO_LINE: u64 = u64::MAX;

/// Most instructions are fetched from the I line the one before them used:
/// while the model says a fetch from that line would be a hit on fresh
/// code, QEMU skips their callback (conditional on `Board::fresh_line`
/// differing from the instruction's line) and only counts them; the model
/// counts them as hits at exit. A callback per guest instruction was most
/// of the plugin's cost.
struct Skipping {
    board: *mut c_void,
    /// Vcpu 0's entry: stable once its init callback runs (QEMU grows
    /// scoreboards before it, and the model allows one vCPU).
    entry: *mut Board,
    /// I-cache line size.
    line_bytes: u32,
    /// Model fetches of the conditional callbacks that ran.
    conditional_called: u64,
}

struct State {
    engine: Engine,
    skipping: Skipping,
    fail_on_violation: bool,
    ram_bytes: u32,
    ram_base: u32,
    registers: Option<Registers>,
    /// Boxed so the callback's userdata pointer stays valid; never removed.
    sites: FxHashMap<(u32, u32), Box<Site>>,
    preloaded: bool,
}

/// The plugin's state, reached without a lock: every callback that touches
/// it runs on the one vCPU thread (`install` refuses more than one vCPU;
/// TCG translates on the thread that executes; `vcpu_init` runs there
/// through `async_run_on_cpu`), except the atexit callback, which an
/// orderly exit runs after `qemu_cleanup` → `vm_shutdown` has paused the
/// vCPU (QEMU 10.0 system/runstate.c). An `exit()` from a device's error
/// path on the main thread while the vCPU runs a callback is the one case
/// a lock would have covered: then the summary may be torn, nothing else.
/// A lock costs two atomic operations on every guest instruction and
/// memory access: a fifth of the plugin's time (47.7 s → 38.3 s on Linux).
/// The raw pointers inside (QEMU's register handles, a GByteArray the
/// plugin owns) stay valid for the life of the process.
struct StateCell(UnsafeCell<Option<State>>);

// SAFETY: see above: never accessed from two threads at once.
unsafe impl Sync for StateCell {}

static STATE: StateCell = StateCell(UnsafeCell::new(None));

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    // SAFETY: one thread at a time (see `StateCell`), and no callback calls
    // another, so this is the only reference while `f` runs.
    let state = unsafe { &mut *STATE.0.get() };
    state.as_mut().map(f)
}

/// Messages about the plugin itself go to standard error: QEMU's
/// `qemu_plugin_outs` only reaches its log with `-d plugin`, where a user
/// whose arguments were refused would not look.
fn outs(text: &str) {
    eprintln!("{text}");
}

impl State {
    fn read(&self, handle: *mut c_void) -> Option<u32> {
        let regs = self.registers.as_ref()?;
        if handle.is_null() {
            return None;
        }
        // SAFETY: `buf` is our GByteArray; the handle came from
        // qemu_plugin_get_registers; we are in a callback registered with
        // QEMU_PLUGIN_CB_R_REGS, on the vCPU thread.
        unsafe {
            g_byte_array_set_size(regs.buf, 0);
            let n = qemu_plugin_read_register(handle, regs.buf);
            if n < 4 || (*regs.buf).len < 4 {
                return None;
            }
            let data = std::slice::from_raw_parts((*regs.buf).data, 4);
            Some(u32::from_le_bytes([data[0], data[1], data[2], data[3]]))
        }
    }

    fn register(&self, index: u8) -> Option<u32> {
        let handle = self.registers.as_ref()?.general[usize::from(index & 15)];
        self.read(handle)
    }

    /// Gives the model the RAM QEMU's loader filled, on the first executed
    /// instruction: the MMU is off then, so virtual reads are physical.
    #[inline]
    fn preload_once(&mut self) {
        if !self.preloaded {
            self.preload();
        }
    }

    #[cold]
    fn preload(&mut self) {
        self.preloaded = true;
        if self.engine.mmu_on() {
            return;
        }
        const CHUNK: u32 = 1 << 20;
        // SAFETY: a fresh GByteArray, freed below.
        let buf = unsafe { g_byte_array_new() };
        let (base, end) = (
            u64::from(self.ram_base),
            u64::from(self.ram_base) + u64::from(self.ram_bytes),
        );
        let mut pa = base;
        while pa < end {
            let len = (end - pa).min(u64::from(CHUNK)) as u32;
            // SAFETY: vCPU context (an execution callback); `buf` is ours.
            let ok = unsafe {
                g_byte_array_set_size(buf, 0);
                qemu_plugin_read_memory_vaddr(pa, buf, len as usize)
            };
            if ok {
                // SAFETY: QEMU filled `len` bytes of `buf`.
                let bytes = unsafe {
                    std::slice::from_raw_parts((*buf).data, ((*buf).len as usize).min(len as usize))
                };
                // The model's memory starts zeroed: copying zero chunks
                // would only commit host memory.
                if bytes.iter().any(|&b| b != 0) {
                    self.engine.preload(pa as u32, bytes);
                }
            }
            pa += u64::from(len);
        }
        // SAFETY: ours, and no slice of it outlives the loop above.
        unsafe { g_byte_array_free(buf, 1) };
    }

    /// After a callback: whether the next instruction in the line may skip
    /// its callback.
    fn note_fetch_state(&mut self) {
        let line = self.engine.fresh_fetch_line();
        self.set_fresh_line(line);
    }

    fn set_fresh_line(&mut self, line: Option<u32>) {
        if !self.skipping.entry.is_null() {
            // SAFETY: vcpu 0's entry (see `Skipping::entry`), written on
            // the vCPU thread between its instructions.
            unsafe { (*self.skipping.entry).fresh_line = line.map_or(NO_LINE, u64::from) };
        }
    }

    /// The fetches skipped so far.
    fn skipped_fetches(&self) -> u64 {
        if self.skipping.entry.is_null() {
            return 0;
        }
        // SAFETY: as in `set_fresh`; the vCPU has stopped (atexit).
        let conditional = unsafe { (*self.skipping.entry).conditional };
        conditional - self.skipping.conditional_called
    }

    fn site(&mut self, pc: u32, word: u32, op: Cp15) -> *mut c_void {
        let site = self
            .sites
            .entry((pc, word))
            .or_insert_with(|| Box::new(Site { pc, op }));
        (&**site as *const Site).cast_mut().cast()
    }
}

// ---- callbacks -----------------------------------------------------------------

/// Userdata of an ordinary instruction: its PC and size.
fn fetch_userdata(pc: u32, size: usize) -> *mut c_void {
    (u64::from(pc) | ((size as u64) << 32)) as usize as *mut c_void
}

extern "C" fn on_fetch(_vcpu: c_uint, userdata: *mut c_void) {
    let bits = userdata as usize as u64;
    let (pc, size) = (bits as u32, (bits >> 32) as u32);
    with_state(|s| {
        s.preload_once();
        s.engine.on_fetch(pc, size);
        s.note_fetch_state();
    });
}

/// An instruction whose fetch the model could not say is a fresh hit (see
/// `Skipping`).
extern "C" fn on_conditional_fetch(vcpu: c_uint, userdata: *mut c_void) {
    let bits = userdata as usize as u64;
    let (pc, size) = (bits as u32, (bits >> 32) as u32);
    with_state(|s| s.skipping.conditional_called += model_fetches(pc, size));
    on_fetch(vcpu, userdata);
}

/// The model fetches one instruction makes (`Engine::on_fetch`): two for
/// a 32-bit Thumb instruction at a halfword boundary, else one.
fn model_fetches(pc: u32, size: u32) -> u64 {
    if size == 4 && pc % 4 == 2 { 2 } else { 1 }
}

extern "C" fn on_cp15(_vcpu: c_uint, userdata: *mut c_void) {
    // SAFETY: the pointer is a boxed Site in the state's map, never freed.
    let site = unsafe { &*(userdata as *const Site) };
    with_state(|s| {
        s.preload_once();
        s.engine.on_fetch(site.pc, 4);
        // The operation may change the translation or the I-cache: the
        // next fetch looks again.
        s.set_fresh_line(None);
        // An `omit=` function may begin with its maintenance (Linux's
        // `cpu_arm926_dcache_clean_area` does).
        if s.engine.is_omit_entry(site.pc)
            && let Some(lr) = s.register(14)
        {
            s.engine.on_omit_entry(lr);
        }
        let cpsr = s.registers.as_ref().and_then(|r| s.read(r.cpsr));
        let Some(cpsr) = cpsr else {
            return;
        };
        // Bit 5 (T): the word decoded as ARM is really two Thumb instructions.
        if cpsr & (1 << 5) != 0 {
            return;
        }
        let rt = s.register(site.op.rt).unwrap_or(0);
        let rt2 = site.op.rt2.and_then(|r| s.register(r)).unwrap_or(0);
        s.engine.on_cp15(site.pc, &site.op, rt, rt2, cpsr);
    });
}

/// The first instruction of an `omit=` function: its return address is LR.
extern "C" fn on_omit_entry(_vcpu: c_uint, userdata: *mut c_void) {
    let bits = userdata as usize as u64;
    let (pc, size) = (bits as u32, (bits >> 32) as u32);
    with_state(|s| {
        s.preload_once();
        s.engine.on_fetch(pc, size);
        if let Some(lr) = s.register(14) {
            s.engine.on_omit_entry(lr);
        }
        s.note_fetch_state();
    });
}

/// The longest phase label read from the guest.
const MAX_LABEL: usize = 64;

/// `vacmm::arch::annotate::phase`: r0 = the label's virtual address.
extern "C" fn on_phase(_vcpu: c_uint, userdata: *mut c_void) {
    let pc = userdata as usize as u32;
    with_state(|s| {
        s.preload_once();
        s.engine.on_fetch(pc, 4);
        s.note_fetch_state();
        let Some(va) = s.register(0) else { return };
        // Up to the page's end first: a read that crosses into an unmapped
        // page fails whole, and a short label may sit just before one.
        let first = (4096 - (va & 0xfff) as usize).min(MAX_LABEL);
        let mut label = read_guest(va, first);
        if label.len() == first && first < MAX_LABEL && !label.contains(&0) {
            label.extend(read_guest(va.wrapping_add(first as u32), MAX_LABEL - first));
        }
        let end = label.iter().position(|&b| b == 0).unwrap_or(label.len());
        // A label changes nothing the fetch state depends on.
        s.engine.on_phase(&String::from_utf8_lossy(&label[..end]));
    });
}

/// `len` bytes of guest virtual memory at `va`, or none if QEMU cannot read
/// them all (vCPU context).
fn read_guest(va: u32, len: usize) -> Vec<u8> {
    // SAFETY: a fresh GByteArray, freed below; called from a vCPU callback.
    unsafe {
        let buf = g_byte_array_new();
        let bytes = if qemu_plugin_read_memory_vaddr(u64::from(va), buf, len) {
            std::slice::from_raw_parts((*buf).data, ((*buf).len as usize).min(len)).to_vec()
        } else {
            Vec::new()
        };
        g_byte_array_free(buf, 1);
        bytes
    }
}

/// `vacmm::arch::annotate::declare_dead`: r0 = physical address, r1 = length.
extern "C" fn on_declare_dead(_vcpu: c_uint, userdata: *mut c_void) {
    let pc = userdata as usize as u32;
    with_state(|s| {
        s.preload_once();
        s.engine.on_fetch(pc, 4);
        if let (Some(pa), Some(len)) = (s.register(0), s.register(1)) {
            s.engine.on_declare_dead(pc, pa, len);
        }
        s.note_fetch_state();
    });
}

extern "C" fn on_mem(_vcpu: c_uint, info: u32, vaddr: u64, userdata: *mut c_void) {
    let pc = userdata as usize as u32;
    // SAFETY: `info` is the handle QEMU passed to this memory callback.
    let (size, store, hw) = unsafe {
        (
            1u32 << qemu_plugin_mem_size_shift(info),
            qemu_plugin_mem_is_store(info),
            qemu_plugin_get_hwaddr(info, vaddr),
        )
    };
    if hw.is_null() || size > 8 {
        return;
    }
    // SAFETY: `hw` is valid for the duration of this callback.
    let (is_io, pa) = unsafe {
        (
            qemu_plugin_hwaddr_is_io(hw),
            qemu_plugin_hwaddr_phys_addr(hw),
        )
    };
    let value = store.then(|| {
        // SAFETY: a store's value, read in its memory callback.
        let v = unsafe { qemu_plugin_mem_get_value(info) };
        // SAFETY: the union member that `kind` (QEMU_PLUGIN_MEM_VALUE_U8..U64) names.
        let raw = unsafe {
            match v.kind {
                0 => u64::from(v.data.u8),
                1 => u64::from(v.data.u16),
                2 => u64::from(v.data.u32),
                _ => v.data.u64,
            }
        };
        // SAFETY: as above.
        if unsafe { qemu_plugin_mem_is_big_endian(info) } {
            raw.swap_bytes() >> (64 - 8 * size)
        } else {
            raw
        }
    });
    with_state(|s| {
        s.engine.on_access(pc, vaddr as u32, pa, size, value, is_io);
        s.note_fetch_state();
    });
}

extern "C" fn on_tb_trans(_id: PluginId, tb: *mut Tb) {
    // SAFETY: `tb` and its instructions are valid during this callback.
    let n = unsafe { qemu_plugin_tb_n_insns(tb) };
    // The two words before each instruction, for annotations.
    let mut previous = [0u32; 2];
    let (board, line_bytes) = with_state(|s| (s.skipping.board, s.skipping.line_bytes))
        .unwrap_or((std::ptr::null_mut(), 0));
    for i in 0..n {
        // SAFETY: as above; `i` < n.
        let insn = unsafe { qemu_plugin_tb_get_insn(tb, i) };
        let (pc, size) = unsafe {
            (
                qemu_plugin_insn_vaddr(insn) as u32,
                qemu_plugin_insn_size(insn),
            )
        };
        let mut word = [0u8; 4];
        // SAFETY: at most 4 bytes into a 4-byte buffer.
        let got = unsafe { qemu_plugin_insn_data(insn, word.as_mut_ptr().cast(), 4) };
        let word = u32::from_le_bytes(word);
        let arm_word = size == 4 && got == 4 && pc.is_multiple_of(4);
        let annotation = arm_word && previous == MAGIC && word == DECLARE_DEAD;
        let phase = arm_word && previous == MAGIC && word == PHASE;
        previous = if arm_word {
            [previous[1], word]
        } else {
            [0, 0]
        };
        let decoded = if arm_word { cp15::decode(word) } else { None };
        let site = decoded.and_then(|op| with_state(|s| s.site(pc, word, op)));
        let omit_entry = with_state(|s| s.engine.is_omit_entry(pc)) == Some(true);
        let line = pc & !(line_bytes.max(1) - 1);
        let last_byte = pc.wrapping_add(size as u32).wrapping_sub(1);
        let in_one_line = !board.is_null() && last_byte & !(line_bytes.max(1) - 1) == line;
        // SAFETY: registering callbacks on an instruction of the TB being
        // translated; the userdata outlives every execution (an integer, or
        // a Site never freed).
        unsafe {
            match site {
                Some(site) => {
                    qemu_plugin_register_vcpu_insn_exec_cb(insn, on_cp15, CB_R_REGS, site)
                }
                None if omit_entry => qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    on_omit_entry,
                    CB_R_REGS,
                    fetch_userdata(pc, size),
                ),
                None if phase => qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    on_phase,
                    CB_R_REGS,
                    pc as usize as *mut c_void,
                ),
                None if annotation => qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    on_declare_dead,
                    CB_R_REGS,
                    pc as usize as *mut c_void,
                ),
                None if in_one_line => {
                    let fresh_line = ScoreboardU64 {
                        score: board,
                        offset: core::mem::offset_of!(Board, fresh_line),
                    };
                    let conditional = ScoreboardU64 {
                        score: board,
                        offset: core::mem::offset_of!(Board, conditional),
                    };
                    qemu_plugin_register_vcpu_insn_exec_cond_cb(
                        insn,
                        on_conditional_fetch,
                        CB_NO_REGS,
                        COND_NE,
                        fresh_line,
                        u64::from(line),
                        fetch_userdata(pc, size),
                    );
                    qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(
                        insn,
                        INLINE_ADD_U64,
                        conditional,
                        model_fetches(pc, size as u32),
                    );
                }
                None => qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    on_fetch,
                    CB_NO_REGS,
                    fetch_userdata(pc, size),
                ),
            }
            qemu_plugin_register_vcpu_mem_cb(
                insn,
                on_mem,
                CB_NO_REGS,
                MEM_RW,
                pc as usize as *mut c_void,
            );
        }
    }
}

extern "C" fn on_vcpu_init(_id: PluginId, _vcpu: c_uint) {
    // SAFETY: vCPU context; the array and its descriptors are QEMU's, freed
    // by us after reading (the handles stay valid).
    let registers = unsafe {
        let array = qemu_plugin_get_registers();
        if array.is_null() {
            None
        } else {
            let descriptors = std::slice::from_raw_parts(
                (*array).data as *const RegDescriptor,
                (*array).len as usize,
            );
            let mut general = [std::ptr::null_mut(); 16];
            let mut cpsr = std::ptr::null_mut();
            for d in descriptors {
                let name = CStr::from_ptr(d.name).to_string_lossy();
                let index = match name.as_ref() {
                    "sp" => Some(13),
                    "lr" => Some(14),
                    "pc" => Some(15),
                    "cpsr" => {
                        cpsr = d.handle;
                        None
                    }
                    other => other
                        .strip_prefix('r')
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|&n| n < 13),
                };
                if let Some(i) = index {
                    general[i] = d.handle;
                }
            }
            g_array_free(array, 1);
            Some(Registers {
                general,
                cpsr,
                buf: g_byte_array_new(),
            })
        }
    };
    if registers.as_ref().is_none_or(|r| r.cpsr.is_null()) {
        outs("cachesan: QEMU gave no ARM registers: CP15 operations will not reach the model");
    }
    with_state(|s| {
        s.registers = registers;
        if !s.skipping.board.is_null() {
            // SAFETY: the scoreboard is ours; QEMU sized it for this vCPU
            // before calling this.
            s.skipping.entry = unsafe { qemu_plugin_scoreboard_find(s.skipping.board, 0) }.cast();
            // Scoreboards start zeroed: line 0 is not fresh yet.
            s.set_fresh_line(None);
        }
    });
}

extern "C" fn on_exit(_id: PluginId, _userdata: *mut c_void) {
    let failed = with_state(|s| {
        let skipped = s.skipped_fetches();
        s.engine.count_skipped_fetches(skipped);
        let violations = s.engine.finish();
        s.fail_on_violation && violations > 0
    });
    if failed == Some(true) {
        // SAFETY: ends the process from QEMU's exit path, skipping the
        // remaining atexit handlers, so the status reaches the caller.
        unsafe { _exit(VIOLATION_EXIT_STATUS) }
    }
}

/// QEMU's entry point: parse the arguments, build the model, register the
/// callbacks. Non-zero refuses the plugin.
///
/// # Safety
/// Called by QEMU with a valid `info` and `argc` C strings in `argv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn qemu_plugin_install(
    id: PluginId,
    info: *const QemuInfo,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: QEMU's contract for this entry point.
    let (args, system, vcpus) = unsafe {
        let args: Vec<String> = (0..usize::try_from(argc).unwrap_or(0))
            .map(|i| CStr::from_ptr(*argv.add(i)).to_string_lossy().into_owned())
            .collect();
        (args, (*info).system_emulation, (*info).smp_vcpus)
    };
    if args.iter().any(|a| a.starts_with("help")) {
        outs(USAGE);
        return 1;
    }
    if !system {
        outs("cachesan: needs system emulation (qemu-system-arm)");
        return 1;
    }
    if vcpus != 1 {
        outs("cachesan: the cache model is one core: run with -smp 1");
        return 1;
    }
    let config = match Config::parse(args.iter().map(String::as_str)) {
        Ok(config) => config,
        Err(e) => {
            outs(&format!("cachesan: {e}"));
            return 1;
        }
    };
    let (fail_on_violation, ram_bytes, ram_base) =
        (config.fail_on_violation, config.ram_bytes, config.ram_base);
    let line_bytes = config.model.icache.geometry.line_bytes as u32;
    let engine = match Engine::new(config) {
        Ok(engine) => engine,
        Err(e) => {
            outs(&format!("cachesan: {e}"));
            return 1;
        }
    };
    // SAFETY: install runs before any callback is registered.
    *unsafe { &mut *STATE.0.get() } = Some(State {
        engine,
        fail_on_violation,
        ram_bytes,
        ram_base,
        registers: None,
        sites: FxHashMap::default(),
        preloaded: false,
        skipping: Skipping {
            // SAFETY: a plain allocation, kept for the life of the process.
            board: unsafe { qemu_plugin_scoreboard_new(size_of::<Board>()) },
            entry: std::ptr::null_mut(),
            line_bytes,
            conditional_called: 0,
        },
    });
    // SAFETY: registering callbacks with the id QEMU gave us.
    unsafe {
        qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
        qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
        qemu_plugin_register_atexit_cb(id, on_exit, std::ptr::null_mut());
    }
    0
}
