//! The pure layer under libFuzzer: MIDR and CTR decoding, geometry
//! construction, set/way operands and the cache model on the geometries
//! that construct (`vacmm::check::pure::cache`).
//! A broken property is the crash; its message names the operation, the
//! values and what broke.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vacmm::check::pure::cache::Input;

fuzz_target!(|input: Input| {
    if let Err(failure) = input.check() {
        panic!("{failure}");
    }
});
