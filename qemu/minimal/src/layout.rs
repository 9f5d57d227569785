//! What the kernel and its programs agree on: the calls, the user
//! addresses, the data.

/// Page size.
pub const PAGE: u32 = 4096;
/// `svc` calls.
pub const EXIT: u32 = 0;
pub const YIELD: u32 = 1;
/// The kernel puts the ring's second record and returns.
pub const RING: u32 = 2;

/// User addresses (16–32 MiB: the board support shares the image's first
/// 16 MiB with every process, read-only). Colours: with frames taken at
/// colour 0, `FILE_AT[0]`, `RING_AT` and `SHARED_AT[1]` are at colour 1 of a 2- or
/// 4-colour cache (aliases of the kernel's linear map and of each other),
/// `FILE_AT[1]` and `SHARED_AT[0]` at colour 0.
pub const FILE_AT: [u32; 2] = [0x0100_1000, 0x0100_4000];
pub const RING_AT: u32 = 0x0101_1000;
pub const SHARED_AT: [u32; 2] = [0x0102_0000, 0x0102_1000];
pub const STACK_AT: u32 = 0x0180_0000;

/// The page-cache page's words.
pub const fn file_word(word: u32) -> u32 {
    0xf11e_0000 ^ word.wrapping_mul(0x9e37_79b9)
}
/// The kernel's ring records (at byte 0 and at [`RING_SLOT_2`], a line
/// of its own), and the reply it expects to the first (byte 4).
pub const RING_RECORD: u32 = 0x5eed_0001;
pub const RING_RECORD_2: u32 = 0x5eed_0002;
pub const RING_SLOT_2: u32 = 32;
pub const fn ring_reply(record: u32) -> u32 {
    !record
}
/// What the processes write to their shared page.
pub const FROM_A: u32 = 0xaaaa_0001;
pub const FROM_B: u32 = 0xbbbb_0002;
