//! The two user programs, in the image's text (mapped read-only and
//! executable for users): no statics, only their stack, the pages the
//! kernel mapped for them and `svc`. Each ends with the number of checks
//! that failed; the kernel reports it.

use vacmm_minimal::layout::*;

/// `svc`: r0 the call ([`EXIT`] with r1 the status, or [`YIELD`]).
#[inline(always)]
fn svc(call: u32, arg: u32) {
    // SAFETY: enters the kernel, which resumes after the `svc` with every
    // register as it was (or never, for EXIT).
    unsafe { core::arch::asm!("svc #0", in("r0") call, in("r1") arg, options(nostack)) }
}

fn exit(failed: u32) -> ! {
    svc(EXIT, failed);
    loop {
        // SAFETY: raises an undefined instruction (a kernel bug: EXIT returned).
        unsafe { core::arch::asm!("udf #0") }
    }
}

/// Inlined: cachesan names the program that read stale data, not this.
#[inline(always)]
fn load(va: u32) -> u32 {
    // SAFETY: a page the kernel mapped for this process.
    unsafe { (va as *const u32).read_volatile() }
}

#[inline(always)]
fn store(va: u32, value: u32) {
    // SAFETY: as `load`, a writable page.
    unsafe { (va as *mut u32).write_volatile(value) }
}

/// Process A: the page-cache page at its two addresses, the ring (the
/// kernel's record in, a reply out, then a record the kernel puts while A
/// holds the ring's line in its cache), the page it shares with B.
pub extern "C" fn process_a(_: u32) -> ! {
    let mut failed = 0;
    for word in 0..PAGE / 4 {
        for at in [FILE_AT[0], FILE_AT[1]] {
            failed += u32::from(load(at + 4 * word) != file_word(word));
        }
    }
    failed += u32::from(load(RING_AT) != RING_RECORD);
    store(RING_AT + 4, ring_reply(RING_RECORD));
    // The second slot, a line of its own: empty, then (after asking the
    // kernel) the kernel's record, read through the line the first look
    // left in A's cache.
    failed += u32::from(load(RING_AT + RING_SLOT_2) != 0);
    svc(RING, 0);
    failed += u32::from(load(RING_AT + RING_SLOT_2) != RING_RECORD_2);
    store(SHARED_AT[0], FROM_A);
    svc(YIELD, 0);
    failed += u32::from(load(SHARED_AT[0] + 4) != FROM_B);
    exit(failed)
}

/// Process B: reads what A wrote to their shared page, answers.
pub extern "C" fn process_b(_: u32) -> ! {
    let failed = u32::from(load(SHARED_AT[1]) != FROM_A);
    store(SHARED_AT[1] + 4, FROM_B);
    exit(failed)
}
