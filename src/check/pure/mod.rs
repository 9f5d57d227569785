//! Property checks of the pure layer for the fuzzer (feature `arbitrary`):
//! addresses, ranges, the cache identification, geometry and set/way
//! operands, the memory-management structures and the MMU's descriptors,
//! tables and keys — each driven by an input decoded from bytes with
//! [`arbitrary`] and judged against a plain model written for the check.
//!
//! ```text
//!   bytes ──Arbitrary──► addr::Input  ──check()──► Ok, or a Failure naming
//!                        cache::Input                the operation, the
//!                        mm::Input                   values and what broke
//!                        mmu::Input
//! ```
//!
//! One fuzz target per module (`fuzz/fuzz_targets/pure_*.rs`): each is a
//! separate coverage map and corpus, so a short run spends its time where
//! its area's branches are, and a crash names its area. The checks are more
//! than "no panic": values that decode must construct, encodings must round
//! trip, and every structure must agree with its model after every call —
//! and a refused call must change nothing.
//!
//! The committed corpora (`fuzz/corpus/pure_*`) are replayed by this
//! module's tests, so `cargo test` runs every seed with overflow checks on.

use std::string::String;

pub mod addr;
pub mod cache;
pub mod frames;
pub mod mm;
pub mod mmu;

/// A broken property: what was done and what went wrong.
pub type Failure = String;

/// Fails the check with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(std::format!($($arg)+));
        }
    };
}
pub(crate) use ensure;

/// Fails the check unless `left == right`, printing both.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)+) => {
        match (&$left, &$right) {
            (l, r) => {
                if l != r {
                    return Err(std::format!(
                        "{}: {:?} != {:?}",
                        std::format!($($arg)+),
                        l,
                        r
                    ));
                }
            }
        }
    };
}
pub(crate) use ensure_eq;

#[cfg(test)]
mod tests;
