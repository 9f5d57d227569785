//! The pure layer under libFuzzer: descriptors, the table walk, a page
//! table against a map of its mappings, and the key allocator
//! (`vacmm::check::pure::mmu`).
//! A broken property is the crash; its message names the operation, the
//! values and what broke.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vacmm::check::pure::mmu::Input;

fuzz_target!(|input: Input| {
    if let Err(failure) = input.check() {
        panic!("{failure}");
    }
});
