//! Exception entry and exit for user processes (feature `user-mode`), for
//! the kernels built on this board support (the demo, the minimal kernel).
//!
//! Every way into the kernel from user mode (SVC, IRQ, data and prefetch
//! aborts, undefined instructions) saves the user's registers as a
//! [`TrapFrame`] on the exception mode's own stack and calls the kernel's
//! `vacmm_qemu_trap` in that mode with IRQs masked:
//!
//! ```ignore
//! #[unsafe(no_mangle)]
//! extern "C" fn vacmm_qemu_trap(frame: *mut TrapFrame, kind: u32) -> *const TrapFrame
//! ```
//!
//! The kernel copies
//! the frame into the running process, does its work (possibly switching to
//! another process) and returns the frame to resume, which the same
//! assembly restores with `movs pc, lr`.
//!
//! The kernel itself never takes interrupts (it runs with IRQs masked) and
//! never issues SVC, so an exception from a privileged mode is a kernel bug
//! or a fault the board support's `catch_fault` expects: aborts and
//! undefined instructions from privileged modes go to aarch32-rt's default
//! handlers (and from there to the board support's).

/// A user process's registers, in the order the entry code stores them.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct TrapFrame {
    /// r0–r12.
    pub r: [u32; 13],
    /// The user-mode stack pointer.
    pub sp: u32,
    /// The user-mode link register.
    pub lr: u32,
    /// Where the process resumes.
    pub pc: u32,
    /// The user CPSR (SPSR of the exception mode).
    pub cpsr: u32,
    _pad: u32,
}

/// CPSR for a process: User mode, ARM state, IRQs enabled, FIQs masked.
pub const USER_CPSR: u32 = 0x10 | (1 << 6);

impl TrapFrame {
    /// A fresh process: runs `entry(arg)` on the stack ending at `stack_top`.
    pub fn new(entry: u32, arg: u32, stack_top: u32) -> Self {
        let mut frame = TrapFrame {
            sp: stack_top,
            pc: entry,
            cpsr: USER_CPSR,
            ..TrapFrame::default()
        };
        frame.r[0] = arg;
        frame
    }
}

/// Why the kernel was entered (the `kind` argument of `trap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum TrapKind {
    /// `svc`: a system call; the frame's pc is the instruction after it.
    Svc = 0,
    /// An interrupt; the frame's pc is the interrupted instruction.
    Irq = 1,
    /// A data abort; the frame's pc is the faulting instruction.
    DataAbort = 2,
    /// A prefetch abort; the frame's pc is the faulting instruction.
    PrefetchAbort = 3,
    /// An undefined instruction; the frame's pc is that instruction.
    Undefined = 4,
}

impl TrapKind {
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => TrapKind::Svc,
            1 => TrapKind::Irq,
            2 => TrapKind::DataAbort,
            3 => TrapKind::PrefetchAbort,
            4 => TrapKind::Undefined,
            _ => return None,
        })
    }
}

/// Enters user mode with `frame` (from the kernel's start-up code, in SYS
/// mode). Never returns: the kernel is entered again through the vectors.
///
/// # Safety
/// `frame` must stay valid until the next trap copies it, and describe a
/// User-mode context whose code and stack the current table maps.
pub unsafe fn enter_user(frame: *const TrapFrame) -> ! {
    // SAFETY: the caller's contract; the restore sequence is the one the
    // exception handlers use, run in SVC mode with IRQs masked.
    unsafe {
        core::arch::asm!(
            "msr cpsr_c, #0xd3",
            "b vacmm_qemu_restore_frame",
            in("r0") frame,
            options(noreturn),
        )
    }
}

// The exception modes' stacks are empty whenever a user process runs (the
// kernel runs with IRQs masked and returns to user mode before the next
// exception), so each entry builds its frame at the top of its own stack.
core::arch::global_asm!(
    r#"
    .section .text.vacmm_qemu_traps, "ax"
    .arm
    .balign 4

    @ Saves the interrupted user context as a TrapFrame (72 bytes) on this
    @ mode's stack. lr holds the resume address already.
    .macro SAVE_USER_FRAME kind
        sub     sp, sp, #72
        stmia   sp, {{r0-r12}}
        add     r0, sp, #52
        stmia   r0, {{r13, r14}}^
        nop
        str     lr, [sp, #60]
        mrs     r1, spsr
        str     r1, [sp, #64]
        mov     r0, sp
        mov     r1, #\kind
        b       vacmm_qemu_trap_common
    .endm

    @ Sets the flags to "came from User mode?" using r0 as scratch.
    .macro FROM_USER
        stmfd   sp!, {{r0}}
        mrs     r0, spsr
        and     r0, r0, #0x1f
        cmp     r0, #0x10
        ldmfd   sp!, {{r0}}
    .endm

    .global _asm_svc_handler
    .type _asm_svc_handler, %function
_asm_svc_handler:
    FROM_USER
    bne     _asm_default_svc_handler
    SAVE_USER_FRAME 0

    .global _asm_irq_handler
    .type _asm_irq_handler, %function
_asm_irq_handler:
    sub     lr, lr, #4
    SAVE_USER_FRAME 1

    .global _asm_data_abort_handler
    .type _asm_data_abort_handler, %function
_asm_data_abort_handler:
    FROM_USER
    bne     _asm_default_data_abort_handler
    sub     lr, lr, #8
    SAVE_USER_FRAME 2

    .global _asm_prefetch_abort_handler
    .type _asm_prefetch_abort_handler, %function
_asm_prefetch_abort_handler:
    FROM_USER
    bne     _asm_default_prefetch_abort_handler
    sub     lr, lr, #4
    SAVE_USER_FRAME 3

    .global _asm_undefined_handler
    .type _asm_undefined_handler, %function
_asm_undefined_handler:
    FROM_USER
    bne     _asm_default_undefined_handler
    sub     lr, lr, #4
    SAVE_USER_FRAME 4

    @ r0 = the saved frame, r1 = kind. The kernel returns the frame to
    @ resume in r0; this mode's stack is empty again after the pop.
vacmm_qemu_trap_common:
    bl      vacmm_qemu_trap
    add     sp, sp, #72

    .global vacmm_qemu_restore_frame
vacmm_qemu_restore_frame:
    ldr     r1, [r0, #64]
    msr     spsr_cxsf, r1
    ldr     lr, [r0, #60]
    add     r1, r0, #52
    ldmia   r1, {{r13, r14}}^
    nop
    ldmia   r0, {{r0-r12}}
    movs    pc, lr
    "#
);
