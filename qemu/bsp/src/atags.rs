//! The command line of a raw image: the ATAG list a boot loader leaves at
//! 0x100, as the Raspberry Pi's firmware does for a kernel without a
//! device tree (its `cmdline.txt`), and as `cargo xtask test` does for
//! QEMU with `-device loader` (Linux's ARM boot protocol,
//! Documentation/arch/arm/booting.rst: ATAG_CORE first, ATAG_NONE last).

use alloc::string::String;

use spin::Mutex;

/// Where the list lies (the firmware's and Linux's usual place).
const AT: usize = 0x100;
const ATAG_NONE: u32 = 0;
const ATAG_CORE: u32 = 0x5441_0001;
const ATAG_CMDLINE: u32 = 0x5441_0009;
/// How far the walk goes before it gives up on a list with no end.
const MAX_WORDS: usize = 1024;

/// The ATAG_CMDLINE's text, if a list was there at boot.
pub(crate) static COMMAND_LINE: Mutex<Option<String>> = Mutex::new(None);

/// Reads the list once at boot, before anything may reuse the memory.
pub(crate) fn read() {
    let word = |index: usize| {
        // SAFETY: RAM below the image (raspi: 0x8000), which no Rust object
        // uses; the MMU is still off. Only aligned words are read.
        unsafe { ((AT + 4 * index) as *const u32).read_volatile() }
    };
    if word(1) != ATAG_CORE {
        return;
    }
    let mut at = 0;
    while at < MAX_WORDS {
        let (size, tag) = (word(at) as usize, word(at + 1));
        if tag == ATAG_NONE || size < 2 || at + size > MAX_WORDS {
            return;
        }
        if tag == ATAG_CMDLINE {
            let bytes: alloc::vec::Vec<u8> = (2..size)
                .flat_map(|i| word(at + i).to_le_bytes())
                .take_while(|&b| b != 0)
                .collect();
            *COMMAND_LINE.lock() = Some(String::from_utf8_lossy(&bytes).into_owned());
            return;
        }
        at += size;
    }
}
