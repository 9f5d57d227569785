//! Exception handlers for data aborts, prefetch aborts and undefined
//! instructions: report the fault and fail the run, unless the running code
//! declared with [`catch_fault`] that it expects exactly that fault.
//!
//! Resuming after a caught fault:
//! - data abort: at the instruction after the faulting load/store;
//! - undefined instruction: at the next instruction (ARM state; the test
//!   kernels are built for ARM, not Thumb);
//! - prefetch abort: as if the call that jumped to the bad address returned,
//!   i.e. at the link register of the interrupted mode. Catch prefetch aborts
//!   around a function call (`f()` through a bad pointer), not a fall-through.

use core::fmt;
use core::sync::atomic::{Ordering, compiler_fence};

use spin::Mutex;

// DFSR/IFSR fault status codes (ARM926 TRM Table 3-8, ARMv6 ARM B4-20).
/// Translation fault, section (no L1 entry).
pub const TRANSLATION_SECTION: u32 = 0b0101;
/// Translation fault, page (no L2 entry).
pub const TRANSLATION_PAGE: u32 = 0b0111;
/// Permission fault, page.
pub const PERMISSION_PAGE: u32 = 0b1111;

/// The status field of a DFSR/IFSR value (FS\[4\] is bit 10 on ARMv6).
pub fn status_code(fsr: u32) -> u32 {
    (fsr & 0xf) | ((fsr >> 6) & 0x10)
}

/// Which exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A load or store aborted.
    DataAbort,
    /// An instruction fetch aborted.
    PrefetchAbort,
    /// The CPU did not recognise an instruction.
    Undefined,
}

/// A fault as the handler saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Which exception.
    pub kind: FaultKind,
    /// Address of the faulting instruction.
    pub pc: usize,
    /// FAR for data aborts; the faulting PC for the others.
    pub address: usize,
    /// DFSR for data aborts, IFSR for prefetch aborts, 0 for undefined.
    pub status: u32,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FaultKind::DataAbort => write!(
                f,
                "data abort at pc {:#010x}: FAR {:#010x}, DFSR {:#010x} (status {:#x}, domain {})",
                self.pc,
                self.address,
                self.status,
                status_code(self.status),
                (self.status >> 4) & 0xf
            ),
            FaultKind::PrefetchAbort => write!(
                f,
                "prefetch abort at pc {:#010x}: IFSR {:#010x}",
                self.pc, self.status
            ),
            FaultKind::Undefined => write!(f, "undefined instruction at pc {:#010x}", self.pc),
        }
    }
}

/// What the running code said it expects, and what was caught.
struct Expectation {
    expected: Option<FaultKind>,
    caught: Option<Fault>,
}

static EXPECTATION: Mutex<Expectation> = Mutex::new(Expectation {
    expected: None,
    caught: None,
});

/// Runs `f`, expecting it to raise a fault of `kind`; returns the fault if it
/// did (execution resumes as described in the module docs), `None` if not.
/// Any other fault while `f` runs is still fatal.
pub fn catch_fault(kind: FaultKind, f: impl FnOnce()) -> Option<Fault> {
    *EXPECTATION.lock() = Expectation {
        expected: Some(kind),
        caught: None,
    };
    compiler_fence(Ordering::SeqCst);
    f();
    compiler_fence(Ordering::SeqCst);
    let mut expectation = EXPECTATION.lock();
    expectation.expected = None;
    expectation.caught.take()
}

/// Records `fault` if it was expected (one fault per `catch_fault`).
fn take_if_expected(fault: Fault) -> bool {
    // try_lock: a fault while the lock is held (inside `catch_fault` itself)
    // is not an expected one.
    let Some(mut expectation) = EXPECTATION.try_lock() else {
        return false;
    };
    if expectation.expected == Some(fault.kind) {
        expectation.expected = None;
        expectation.caught = Some(fault);
        true
    } else {
        false
    }
}

/// Called by aarch32-rt's assembly wrapper in ABT mode; returns where to resume.
#[unsafe(no_mangle)]
unsafe extern "C" fn _data_abort_handler(pc: usize) -> usize {
    let fault = Fault {
        kind: FaultKind::DataAbort,
        pc,
        address: vacmm::arch::fault_address() as usize,
        status: vacmm::arch::data_fault_status(),
    };
    if take_if_expected(fault) {
        return pc + 4;
    }
    crate::harness::fatal(format_args!("unexpected {fault}"))
}

/// Called by aarch32-rt's assembly wrapper in ABT mode; returns where to resume.
#[unsafe(no_mangle)]
unsafe extern "C" fn _prefetch_abort_handler(pc: usize) -> usize {
    let fault = Fault {
        kind: FaultKind::PrefetchAbort,
        pc,
        address: pc,
        status: vacmm::arch::instruction_fault_status(),
    };
    if take_if_expected(fault) {
        return interrupted_link_register();
    }
    crate::harness::fatal(format_args!("unexpected {fault}"))
}

/// Called by aarch32-rt's assembly wrapper in UND mode; returns where to resume.
#[unsafe(no_mangle)]
unsafe extern "C" fn _undefined_handler(pc: usize) -> usize {
    let fault = Fault {
        kind: FaultKind::Undefined,
        pc,
        address: pc,
        status: 0,
    };
    if take_if_expected(fault) {
        return pc + 4;
    }
    crate::harness::fatal(format_args!("unexpected {fault}"))
}

/// The banked LR of the mode the current exception interrupted (from SPSR).
fn interrupted_link_register() -> usize {
    let lr: usize;
    // SAFETY: switches to the interrupted mode (User → System, which shares
    // its registers) with IRQ/FIQ masked, copies its LR, and switches back.
    // Only r0–r3 are used, which no mode banks.
    unsafe {
        core::arch::asm!(
            "mrs r1, cpsr",
            "mrs r2, spsr",
            "and r2, r2, #0x1f",
            "cmp r2, #0x10",
            "moveq r2, #0x1f",
            "bic r3, r1, #0x1f",
            "orr r3, r3, r2",
            "orr r3, r3, #0xc0",
            "msr cpsr_c, r3",
            "mov r0, lr",
            "msr cpsr_c, r1",
            out("r0") lr, out("r1") _, out("r2") _, out("r3") _,
            options(nostack),
        );
    }
    lr
}
