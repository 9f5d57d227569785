//! The plugin ABI: hand-written bindings to the few functions and types of
//! QEMU 10.0's plugin API (version 4, `qemu-plugin.h`) that cachesan uses.

use std::ffi::{c_char, c_int, c_uint, c_void};

pub(super) type PluginId = u64;

#[repr(C)]
pub struct QemuInfo {
    pub(super) target_name: *const c_char,
    pub(super) version_min: c_int,
    pub(super) version_cur: c_int,
    pub(super) system_emulation: bool,
    pub(super) smp_vcpus: c_int,
    pub(super) max_vcpus: c_int,
}

#[repr(C)]
pub(super) struct Tb {
    pub(super) _opaque: [u8; 0],
}
#[repr(C)]
pub(super) struct Insn {
    pub(super) _opaque: [u8; 0],
}
#[repr(C)]
pub(super) struct HwAddr {
    pub(super) _opaque: [u8; 0],
}

#[repr(C)]
pub(super) struct GArray {
    pub(super) data: *mut c_char,
    pub(super) len: c_uint,
}

#[repr(C)]
pub(super) struct GByteArray {
    pub(super) data: *mut u8,
    pub(super) len: c_uint,
}

#[repr(C)]
pub(super) struct RegDescriptor {
    pub(super) handle: *mut c_void,
    pub(super) name: *const c_char,
    pub(super) feature: *const c_char,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) union MemValueData {
    pub(super) u8: u8,
    pub(super) u16: u16,
    pub(super) u32: u32,
    pub(super) u64: u64,
    pub(super) u128: [u64; 2],
}

#[repr(C)]
pub(super) struct MemValue {
    pub(super) kind: c_int,
    pub(super) data: MemValueData,
}

/// `qemu_plugin_u64`: one `u64` of each vCPU's entry in a scoreboard.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct ScoreboardU64 {
    pub(super) score: *mut c_void,
    pub(super) offset: usize,
}

pub(super) const COND_NE: c_int = 3;
pub(super) const INLINE_ADD_U64: c_int = 0;
pub(super) const CB_NO_REGS: c_int = 0;
pub(super) const CB_R_REGS: c_int = 1;
pub(super) const MEM_RW: c_int = 3;

unsafe extern "C" {
    pub(super) fn qemu_plugin_register_vcpu_init_cb(
        id: PluginId,
        cb: extern "C" fn(PluginId, c_uint),
    );
    pub(super) fn qemu_plugin_register_vcpu_tb_trans_cb(
        id: PluginId,
        cb: extern "C" fn(PluginId, *mut Tb),
    );
    pub(super) fn qemu_plugin_register_atexit_cb(
        id: PluginId,
        cb: extern "C" fn(PluginId, *mut c_void),
        userdata: *mut c_void,
    );
    pub(super) fn qemu_plugin_tb_n_insns(tb: *const Tb) -> usize;
    pub(super) fn qemu_plugin_tb_get_insn(tb: *const Tb, idx: usize) -> *mut Insn;
    pub(super) fn qemu_plugin_insn_data(insn: *const Insn, dest: *mut c_void, len: usize) -> usize;
    pub(super) fn qemu_plugin_insn_size(insn: *const Insn) -> usize;
    pub(super) fn qemu_plugin_insn_vaddr(insn: *const Insn) -> u64;
    pub(super) fn qemu_plugin_register_vcpu_insn_exec_cb(
        insn: *mut Insn,
        cb: extern "C" fn(c_uint, *mut c_void),
        flags: c_int,
        userdata: *mut c_void,
    );
    pub(super) fn qemu_plugin_register_vcpu_insn_exec_cond_cb(
        insn: *mut Insn,
        cb: extern "C" fn(c_uint, *mut c_void),
        flags: c_int,
        cond: c_int,
        entry: ScoreboardU64,
        imm: u64,
        userdata: *mut c_void,
    );
    pub(super) fn qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(
        insn: *mut Insn,
        op: c_int,
        entry: ScoreboardU64,
        imm: u64,
    );
    pub(super) fn qemu_plugin_scoreboard_new(element_size: usize) -> *mut c_void;
    pub(super) fn qemu_plugin_scoreboard_find(
        score: *mut c_void,
        vcpu_index: c_uint,
    ) -> *mut c_void;
    pub(super) fn qemu_plugin_register_vcpu_mem_cb(
        insn: *mut Insn,
        cb: extern "C" fn(c_uint, u32, u64, *mut c_void),
        flags: c_int,
        rw: c_int,
        userdata: *mut c_void,
    );
    pub(super) fn qemu_plugin_mem_size_shift(info: u32) -> c_uint;
    pub(super) fn qemu_plugin_mem_is_store(info: u32) -> bool;
    pub(super) fn qemu_plugin_mem_is_big_endian(info: u32) -> bool;
    pub(super) fn qemu_plugin_mem_get_value(info: u32) -> MemValue;
    pub(super) fn qemu_plugin_get_hwaddr(info: u32, vaddr: u64) -> *mut HwAddr;
    pub(super) fn qemu_plugin_hwaddr_is_io(haddr: *const HwAddr) -> bool;
    pub(super) fn qemu_plugin_hwaddr_phys_addr(haddr: *const HwAddr) -> u64;
    pub(super) fn qemu_plugin_get_registers() -> *mut GArray;
    pub(super) fn qemu_plugin_read_register(handle: *mut c_void, buf: *mut GByteArray) -> c_int;
    pub(super) fn qemu_plugin_read_memory_vaddr(
        addr: u64,
        data: *mut GByteArray,
        len: usize,
    ) -> bool;

    pub(super) fn g_byte_array_new() -> *mut GByteArray;
    pub(super) fn g_byte_array_set_size(array: *mut GByteArray, len: c_uint) -> *mut GByteArray;
    pub(super) fn g_byte_array_free(array: *mut GByteArray, free_segment: c_int) -> *mut u8;
    pub(super) fn g_array_free(array: *mut GArray, free_segment: c_int) -> *mut c_char;

    pub(super) fn _exit(status: c_int) -> !;
}

/// The plugin API version cachesan was written against (QEMU 10.0's).
#[unsafe(no_mangle)]
pub static qemu_plugin_version: c_int = 4;
