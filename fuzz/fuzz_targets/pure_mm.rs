//! The pure layer under libFuzzer: the gap tree and `get_unmapped_area`,
//! the colour allocator, the frame database and memory objects, each
//! against a model (`vacmm::check::pure::mm`).
//! A broken property is the crash; its message names the operation, the
//! values and what broke.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vacmm::check::pure::mm::Input;

fuzz_target!(|input: Input| {
    if let Err(failure) = input.check() {
        panic!("{failure}");
    }
});
