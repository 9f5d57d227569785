//! The operation interpreter under libFuzzer: bytes → a configuration and
//! a program (`vacmm::check::fuzz::Program`), run on the engine and the
//! cache model; an oracle violation, a content mismatch or an unexpected
//! error is the crash. `VACMM_FUZZ_PRESET` (arm926, arm1136-32k,
//! arm1136-64k, arm1176, pipt, arm926-fcse) forces the configuration.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vacmm::check::fuzz::{Program, forced_preset};

fuzz_target!(|program: Program| {
    let forced = forced_preset();
    if let Err((i, failure)) = program.run(forced) {
        let listing = program.listing(forced);
        let configuration = listing.lines().next().unwrap_or_default();
        // The failure lists the last operations as run.
        panic!("{configuration}: op {i} failed: {failure}");
    }
});
