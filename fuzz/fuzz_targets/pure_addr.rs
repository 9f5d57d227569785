//! The pure layer under libFuzzer: addresses, ranges and range plans
//! (`vacmm::check::pure::addr`).
//! A broken property is the crash; its message names the operation, the
//! values and what broke.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vacmm::check::pure::addr::Input;

fuzz_target!(|input: Input| {
    if let Err(failure) = input.check() {
        panic!("{failure}");
    }
});
