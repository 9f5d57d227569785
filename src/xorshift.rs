//! Marsaglia's xorshift32: deterministic pseudo-random numbers without a
//! crate, for treap priorities and for the property tests' inputs.

/// xorshift32 state; must not be 0 (0 maps to itself).
#[derive(Clone, Copy, Debug)]
pub(crate) struct XorShift(pub(crate) u32);

impl XorShift {
    /// The next value.
    pub(crate) fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n` > 0; the slight modulo bias does not matter here).
    #[cfg(test)]
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}
