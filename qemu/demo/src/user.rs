//! The user programs, built into the image and run in User mode.
//!
//! They live in the kernel's text (which every process maps read-only and
//! executable, see `kernel::USER_TEXT`) and must behave like separately
//! linked programs: no statics, no kernel functions with side effects —
//! only their stack, the memory they map, and system calls. `core::fmt`
//! is fine (it only reads).
//!
//! Each program checks its own data and ends with status 0 when every
//! check passed; the kernel's report lists them.

use core::fmt::{self, Write};

use crate::abi::*;

const PAGE: u32 = 4096;

#[inline(always)]
fn syscall(nr: u32, a: u32, b: u32, c: u32, d: u32) -> (u32, u32) {
    let (r0, r1);
    // SAFETY: `svc` enters the kernel, which preserves every register but
    // r0 and r1 (its results).
    unsafe {
        core::arch::asm!(
            "svc #0",
            inlateout("r0") a => r0,
            inlateout("r1") b => r1,
            in("r2") c,
            in("r3") d,
            in("r4") nr,
            options(nostack),
        );
    }
    (r0, r1)
}

fn exit(status: u32) -> ! {
    syscall(EXIT, status, 0, 0, 0);
    // The kernel never returns from EXIT; a return is a kernel bug the
    // undefined instruction below turns into a kill.
    loop {
        // SAFETY: raises an undefined-instruction exception.
        unsafe { core::arch::asm!("udf #0") }
    }
}

fn yield_now() {
    syscall(YIELD, 0, 0, 0, 0);
}

fn getpid() -> u32 {
    syscall(GETPID, 0, 0, 0, 0).0
}

fn mmap(kind: u32, len: u32, offset: u32, prot: u32) -> Result<u32, i32> {
    let (r0, _) = syscall(MMAP, kind, len, offset, prot);
    if (r0 as i32) < 0 {
        Err(r0 as i32)
    } else {
        Ok(r0)
    }
}

fn status(r0: u32) -> Result<u32, i32> {
    if (r0 as i32) < 0 {
        Err(r0 as i32)
    } else {
        Ok(r0)
    }
}

/// Inlined always: the sanitizer names the program that made a stale read
/// (`cargo xtask sanitize` expects `user::page_cache`), not this helper.
#[inline(always)]
fn load(va: u32) -> u32 {
    // SAFETY: a word of memory this process mapped (or, for the programs
    // that test it, an address whose fault kills the process).
    unsafe { (va as *const u32).read_volatile() }
}

/// Two words at `va` (8-byte aligned) by one LDRD. On ARMv5 the kernel
/// learns a fault's access kind by decoding the instruction, and LDRD's
/// bit 20 is clear as a store's is: the first touch of a read-only mapping
/// by this load is resolved only if the kernel decodes it as a read.
#[inline(always)]
fn load_pair(va: u32) -> (u32, u32) {
    let (low, high): (u32, u32);
    // SAFETY: as `load`, for the doubleword at `va`.
    unsafe {
        core::arch::asm!(
            "ldrd r2, r3, [{va}]",
            va = in(reg) va,
            out("r2") low,
            out("r3") high,
            options(nostack, readonly, preserves_flags),
        );
    }
    (low, high)
}

fn store(va: u32, value: u32) {
    // SAFETY: as `load`.
    unsafe { (va as *mut u32).write_volatile(value) }
}

/// One console line, formatted on the stack.
struct Line {
    buf: [u8; 120],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

fn say(args: fmt::Arguments) {
    let mut line = Line {
        buf: [0; 120],
        len: 0,
    };
    let _ = write!(line, "    [pid {}] ", getpid());
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    syscall(WRITE, line.buf.as_ptr() as u32, line.len as u32, 0, 0);
}

macro_rules! say {
    ($($arg:tt)*) => { say(format_args!($($arg)*)) };
}

/// Counts failed checks, saying what failed.
struct Checks {
    failed: u32,
}

impl Checks {
    fn eq(&mut self, what: &str, seen: u32, expected: u32) {
        if seen != expected {
            self.failed += 1;
            say!("MISMATCH {what}: {seen:#010x}, expected {expected:#010x}");
        }
    }
    fn ok(&mut self, what: &str, result: Result<u32, i32>) -> u32 {
        match result {
            Ok(v) => v,
            Err(e) => {
                self.failed += 1;
                say!("{what} failed: error {e}");
                0
            }
        }
    }
    fn finish(self, what: &str) -> ! {
        if self.failed == 0 {
            say!("{what}: all data checks passed");
            exit(0)
        } else {
            say!("{what}: {} checks FAILED", self.failed);
            exit(1)
        }
    }
}

/// Messages the ring carries.
const MESSAGES: u32 = 48;

/// Seed 000 (producer side): fills ring slots through its own mapping and
/// hands each to the kernel, which checks it, stamps it and makes it ready
/// for the consumer.
pub extern "C" fn ring_producer(_: u32) -> ! {
    let mut c = Checks { failed: 0 };
    let ring = c.ok("map ring", status(syscall(MAP_RING, 0, 0, 0, 0).0));
    say!("ring mapped at {ring:#010x}; producing {MESSAGES} messages");
    for seq in 0..MESSAGES {
        let slot = seq % RING_SLOTS;
        let at = ring + slot * SLOT_BYTES;
        // The slot is free once the consumer is done with its last use.
        while syscall(RING_FREE, slot, 0, 0, 0).0 == 0 {
            yield_now();
        }
        let mut sum = 0u32;
        store(at, seq);
        for i in 1..SLOT_WORDS - 2 {
            let word = payload(seq, i);
            store(at + 4 * i, word);
            sum = sum.wrapping_add(word);
        }
        store(at + 4 * (SLOT_WORDS - 2), sum);
        let r = syscall(RING_PUT, slot, 0, 0, 0).0 as i32;
        if r < 0 {
            say!("put slot {slot} failed: error {r}");
            c.failed += 1;
        }
    }
    c.finish("ring producer")
}

/// Seed 000 (consumer side): reads each message through its own mapping
/// of the same buffer, with the kernel's stamp.
pub extern "C" fn ring_consumer(_: u32) -> ! {
    let mut c = Checks { failed: 0 };
    let ring = c.ok("map ring", status(syscall(MAP_RING, 0, 0, 0, 0).0));
    say!("ring mapped at {ring:#010x}; consuming");
    for seq in 0..MESSAGES {
        let slot = loop {
            let r = syscall(RING_GET, 0, 0, 0, 0).0 as i32;
            if r >= 0 {
                break r as u32;
            }
            yield_now();
        };
        let at = ring + slot * SLOT_BYTES;
        c.eq("message sequence", load(at), seq);
        let mut sum = 0u32;
        for i in 1..SLOT_WORDS - 2 {
            let word = load(at + 4 * i);
            if word != payload(seq, i) {
                c.eq("payload", word, payload(seq, i));
            }
            sum = sum.wrapping_add(word);
        }
        c.eq("checksum", load(at + 4 * (SLOT_WORDS - 2)), sum);
        c.eq(
            "kernel stamp",
            load(at + 4 * (SLOT_WORDS - 1)),
            kernel_stamp(seq),
        );
        syscall(RING_DONE, slot, 0, 0, 0);
    }
    say!("{MESSAGES} messages received in order with the kernel's stamps");
    c.finish("ring consumer")
}

/// Seed 000/002: one file page mapped shared at two addresses of one
/// process, written through both (make_coherent); then one mapping made
/// read-only and finally unmapped (cacheability comes back).
pub extern "C" fn two_mappings(page: u32) -> ! {
    let mut c = Checks { failed: 0 };
    let rw = PROT_READ | PROT_WRITE;
    let a = c.ok("mmap a", mmap(MAP_FILE_SHARED, PAGE, page * PAGE, rw));
    let b = c.ok("mmap b", mmap(MAP_FILE_SHARED, PAGE, page * PAGE, rw));
    say!("file page {page} at {a:#010x} and {b:#010x}");
    c.eq("file data via a", load(a + 64), file_word(page, 64));
    c.eq("file data via b", load(b + 64), file_word(page, 64));
    for round in 0..8u32 {
        store(a + 4 * round, 0xa000 + round);
        c.eq("a's write seen via b", load(b + 4 * round), 0xa000 + round);
        store(b + 128 + 4 * round, 0xb000 + round);
        c.eq(
            "b's write seen via a",
            load(a + 128 + 4 * round),
            0xb000 + round,
        );
        yield_now();
    }
    c.ok(
        "mprotect b read-only",
        status(syscall(MPROTECT, b, PAGE, PROT_READ, 0).0),
    );
    store(a + 256, 0xab);
    c.eq("a's write seen via read-only b", load(b + 256), 0xab);
    c.ok("munmap b", status(syscall(MUNMAP, b, PAGE, 0, 0).0));
    store(a + 260, 0xcd);
    c.eq("a alone", load(a + 260), 0xcd);
    c.ok("munmap a", status(syscall(MUNMAP, a, PAGE, 0, 0).0));
    c.finish("two mappings")
}

/// Seed 002: fork with copy-on-write writes on both sides, private
/// anonymous memory and a private file mapping; the parent waits.
/// Turns each of parent and child takes at the shared page in `fork_cow`.
const SHARED_TURNS: u32 = 4;

/// Yields until the word at `va` reads `value` (or gives up after a while
/// and returns what it read last, for the check to report).
fn await_value(va: u32, value: u32) -> u32 {
    for _ in 0..1000 {
        let seen = load(va);
        if seen == value {
            return seen;
        }
        yield_now();
    }
    load(va)
}

pub extern "C" fn fork_cow(_: u32) -> ! {
    let mut c = Checks { failed: 0 };
    let rw = PROT_READ | PROT_WRITE;
    let anon = c.ok("mmap anonymous", mmap(MAP_ANON_PRIVATE, 2 * PAGE, 0, rw));
    let file = c.ok("mmap file private", mmap(MAP_FILE_PRIVATE, PAGE, 0, rw));
    c.eq("anonymous page is zero", load(anon + 40), 0);
    // A shared anonymous page stays shared across the fork: parent and
    // child take turns writing it (on the ARM926 their FCSE PIDs put it in
    // two different cache lines, which the switch must keep coherent).
    let shared = c.ok("mmap shared", mmap(MAP_ANON_SHARED, PAGE, 0, rw));
    store(shared, 0);
    store(anon, 0x1111);
    store(anon + PAGE, 0x2222);
    store(file + 8, 0x3333);
    let child = syscall(FORK, 0, 0, 0, 0).0;
    if child == 0 {
        for turn in 0..SHARED_TURNS {
            let seen = await_value(shared, 2 * turn + 1);
            c.eq("child sees the parent's turn", seen, 2 * turn + 1);
            store(shared, 2 * turn + 2);
        }
        c.eq("child sees pre-fork data", load(anon), 0x1111);
        store(anon, 0xc41d);
        yield_now();
        c.eq("child keeps its write", load(anon), 0xc41d);
        c.eq(
            "child: parent's later write invisible",
            load(anon + PAGE),
            0x2222,
        );
        c.eq("child: private file copy", load(file + 8), 0x3333);
        store(file + 12, 0xc0c0);
        c.eq("child: own file copy write", load(file + 12), 0xc0c0);
        c.eq("child: file data beside", load(file + 16), file_word(0, 16));
        c.finish("fork child")
    }
    say!("forked child {child}");
    for turn in 0..SHARED_TURNS {
        store(shared, 2 * turn + 1);
        let seen = await_value(shared, 2 * turn + 2);
        c.eq("parent sees the child's turn", seen, 2 * turn + 2);
    }
    store(anon + PAGE, 0x9a9e);
    yield_now();
    c.eq("parent keeps pre-fork data", load(anon), 0x1111);
    c.eq("parent keeps its write", load(anon + PAGE), 0x9a9e);
    c.eq(
        "parent: private file copy",
        load(file + 12),
        file_word(0, 12),
    );
    let (pid, child_status) = syscall(WAIT, 0, 0, 0, 0);
    c.eq("waited for the child", pid, child);
    c.eq("child's status", child_status, 0);
    c.finish("fork + copy-on-write")
}

/// Seed 001: the kernel writes a page-cache page that the process has
/// mapped (and one it maps afterwards: the deferred path).
pub extern "C" fn page_cache(_: u32) -> ! {
    let mut c = Checks { failed: 0 };
    let page = c.ok(
        "mmap file",
        mmap(MAP_FILE_SHARED, PAGE, 2 * PAGE, PROT_READ),
    );
    c.eq("file data", load(page + 4), file_word(2, 4));
    for round in 0..4u32 {
        let value = 0xfeed_0000 + round;
        c.ok(
            "kernel write",
            status(syscall(FILE_POKE, 2, 8 + 4 * round, value, 0).0),
        );
        c.eq("kernel's write seen", load(page + 8 + 4 * round), value);
    }
    c.ok(
        "kernel write to an unmapped page",
        status(syscall(FILE_POKE, 3, 20, 0x0dd5_0001, 0).0),
    );
    let later = c.ok(
        "mmap later",
        mmap(MAP_FILE_SHARED, PAGE, 3 * PAGE, PROT_READ),
    );
    // The page's first touch, by LDRD, on a read-only mapping.
    let (before, poked) = load_pair(later + 16);
    c.eq("file data (LDRD)", before, file_word(3, 16));
    c.eq("deferred kernel write seen (LDRD)", poked, 0x0dd5_0001);
    c.eq("file data beside", load(later + 24), file_word(3, 24));
    c.finish("page cache")
}

/// A DMA transfer through the kernel's disk-driver stub, both ways, into
/// and out of a buffer that starts mid-line beside live data.
pub extern "C" fn dma_transfer(seed: u32) -> ! {
    let mut c = Checks { failed: 0 };
    let rw = PROT_READ | PROT_WRITE;
    let buf = c.ok("mmap", mmap(MAP_ANON_PRIVATE, PAGE, 0, rw));
    store(buf, 0x1234_5678);
    let len = 200;
    c.ok(
        "dma read",
        status(syscall(DMA_READ, buf + 12, len, seed, 0).0),
    );
    c.eq("data beside the buffer", load(buf), 0x1234_5678);
    let mut sum = 0u32;
    for i in 0..len {
        // SAFETY: a byte of the page mapped above.
        let byte = unsafe { ((buf + 12 + i) as *const u8).read_volatile() };
        if byte != dma_byte(seed, i) {
            c.eq(
                "received byte",
                u32::from(byte),
                u32::from(dma_byte(seed, i)),
            );
        }
        sum = sum.wrapping_add(u32::from(byte));
    }
    let seen = syscall(DMA_WRITE, buf + 12, len, 0, 0).0;
    c.eq("bytes the device transmitted", seen, sum);
    c.finish("dma")
}

/// Touches a kernel address: must be killed.
pub extern "C" fn intruder(_: u32) -> ! {
    let kernel = vacmm_qemu::mm::POOL_START;
    say!("reading kernel memory at {kernel:#010x}…");
    let stolen = load(kernel);
    say!("read {stolen:#x}: the kernel let it happen!");
    exit(1)
}

/// Writes an address it never mapped: must be killed.
pub extern "C" fn stray(_: u32) -> ! {
    say!("writing unmapped 0x01000040…");
    store(0x0100_0040, 1);
    say!("the store went through!");
    exit(1)
}
