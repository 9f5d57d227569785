//! The system-call interface between the demo kernel and its processes:
//! `svc #0` with the call number in r4, arguments in r0–r3, results in r0
//! (and r1). Negative results (as `i32`) are errors.

/// Write `r1` bytes at `r0` to the console.
pub const WRITE: u32 = 0;
/// End the process with status `r0`.
pub const EXIT: u32 = 1;
/// Give up the CPU.
pub const YIELD: u32 = 2;
/// Duplicate the process; the child gets 0, the parent the child's pid.
pub const FORK: u32 = 3;
/// Wait for a child to end: r0 = its pid, r1 = its status (r0 = -1: none).
pub const WAIT: u32 = 4;
/// Map `r1` bytes: r0 = kind (`MAP_*`), r2 = file offset, r3 = `PROT_*`.
pub const MMAP: u32 = 5;
/// Unmap `r1` bytes at `r0`.
pub const MUNMAP: u32 = 6;
/// Change the protection of `r1` bytes at `r0` to `r2` (`PROT_*`).
pub const MPROTECT: u32 = 7;
/// Map the kernel↔user shared ring buffer; returns its address.
pub const MAP_RING: u32 = 8;
/// Hand ring slot `r0` (filled by the caller) to the kernel.
pub const RING_PUT: u32 = 9;
/// The next slot the kernel made ready for consumers, or -1 if none yet.
pub const RING_GET: u32 = 10;
/// The caller is done reading slot `r0`; it may be refilled.
pub const RING_DONE: u32 = 11;
/// The kernel writes word `r2` at byte `r1` of file page `r0` (as a
/// `write()` to a file whose pages users have mapped would).
pub const FILE_POKE: u32 = 12;
/// The disk driver stub receives `r1` bytes by DMA and copies them to the
/// caller's `r0` (as `read()` from a device would); pattern seed `r2`.
pub const DMA_READ: u32 = 13;
/// The driver stub transmits `r1` bytes from the caller's `r0` by DMA;
/// returns the sum of the bytes the device saw.
pub const DMA_WRITE: u32 = 14;
/// The caller's process id.
pub const GETPID: u32 = 15;
/// 1 if ring slot `r0` may be filled (its last message was read), else 0.
pub const RING_FREE: u32 = 16;

/// `MMAP` kinds.
pub const MAP_ANON_PRIVATE: u32 = 0;
pub const MAP_ANON_SHARED: u32 = 1;
pub const MAP_FILE_SHARED: u32 = 2;
pub const MAP_FILE_PRIVATE: u32 = 3;

/// `PROT_*` bits.
pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;

/// Error results.
pub const EINVAL: i32 = -22;
pub const EFAULT: i32 = -14;
pub const EAGAIN: i32 = -11;
pub const ECHILD: i32 = -10;
pub const ENOMEM: i32 = -12;

/// The ring: `RING_SLOTS` slots of `SLOT_BYTES` in one shared page.
pub const RING_SLOTS: u32 = 16;
pub const SLOT_BYTES: u32 = 128;
/// Words per slot: [0] sequence number, [1..WORDS-2] payload, [WORDS-2]
/// the producer's checksum, [WORDS-1] the kernel's stamp.
pub const SLOT_WORDS: u32 = SLOT_BYTES / 4;
/// What the kernel's stamp is for message `seq`.
pub fn kernel_stamp(seq: u32) -> u32 {
    seq ^ 0x6b65_726e
}
/// Payload word `i` of message `seq`.
pub fn payload(seq: u32, i: u32) -> u32 {
    seq.wrapping_mul(0x9e37_79b9) ^ (i << 24) ^ i
}

/// What the in-memory file holds at byte `offset` of page `page`.
pub fn file_word(page: u32, offset: u32) -> u32 {
    0xf11e_0000 | (page << 12) | offset
}

/// Byte `i` of the DMA pattern with `seed`.
pub fn dma_byte(seed: u32, i: u32) -> u8 {
    (seed.wrapping_mul(31).wrapping_add(i.wrapping_mul(7))) as u8
}
