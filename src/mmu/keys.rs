//! Address-space keys: ARMv6 ASIDs (8 bits, in CONTEXTIDR) and ARMv5 FCSE
//! PIDs (7 bits, 1–127), handed out with a generation counter.
//!
//! ```text
//!  generation g:  first ──▶ next ──▶ last   values handed out once each
//!  exhausted:     g + 1, TLB (and for PIDs the cache) flushed once,
//!                 the running space's value stays reserved for it
//! ```
//!
//! A key is valid while its generation is the allocator's. A value is used
//! at most once per generation, so stale TLB entries (ASIDs) or cache lines
//! (FCSE PIDs) of its previous owner can exist only after a rollover — and
//! a rollover is the one moment the caller flushes. The running space keeps
//! its value across the rollover: until the switch has completed, the CPU
//! may still fill TLB entries with it, so nobody else may be given it in
//! the new generation.

use core::fmt;

/// An address space's key: a value and the generation it was issued in.
///
/// It is a generation-checked id already: a key of an older generation is
/// never [`Kept`](KeyOutcome::Kept) (it gets a fresh value), so a stale one
/// cannot hand its space a value someone else now holds. The one key that
/// counts is the one a [`PageTable`](super::PageTable) holds, which only
/// the [`ContextSwitcher`](super::ContextSwitcher) activates; a copy (from
/// [`PageTable::key`](super::PageTable::key)) is a reading, and no call
/// puts a key into a table, so copying one cannot make two spaces share a
/// value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpaceKey {
    generation: u64,
    value: u8,
}

impl SpaceKey {
    /// No key yet (generation 0 is never current).
    pub const UNASSIGNED: SpaceKey = SpaceKey {
        generation: 0,
        value: 0,
    };

    /// The ASID or PID, if one was ever assigned (it may be stale).
    pub fn value(self) -> Option<u8> {
        (self.generation != 0).then_some(self.value)
    }

    /// The generation it was issued in (0: never).
    pub fn generation(self) -> u64 {
        self.generation
    }
}

/// What [`KeyAllocator::activate`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOutcome {
    /// The key was valid (or reserved across a rollover) and is kept.
    Kept,
    /// A fresh value, unused in this generation, was assigned.
    Assigned,
    /// Values ran out: a new generation began and a value was assigned. The
    /// caller flushes the TLB (ASIDs) or the caches and TLB (FCSE PIDs) now.
    RolledOver,
}

/// A key range that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// `first..=last` is empty, starts at 0 (reserved: no key), exceeds the
    /// hardware's field, or has fewer than two values (one is reserved for
    /// the running space at a rollover).
    BadRange {
        /// First value asked for.
        first: u8,
        /// Last value asked for.
        last: u8,
        /// The largest value the field holds.
        max: u8,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            KeyError::BadRange { first, last, max } => {
                write!(f, "key range {first}..={last} is refused: ")?;
                if first == 0 {
                    f.write_str("0 is not a key (it means none)")?;
                } else if first > last {
                    f.write_str("it is empty")?;
                } else if last > max {
                    write!(f, "{last} does not fit the key field")?;
                } else {
                    f.write_str(
                        "it holds one value, and one is kept for the running space at a rollover",
                    )?;
                }
                write!(
                    f,
                    "; a range must lie within 1..={max} and hold at least two values"
                )
            }
        }
    }
}

impl core::error::Error for KeyError {}

/// Hands out ASIDs or FCSE PIDs.
#[derive(Clone, Debug)]
pub struct KeyAllocator {
    first: u8,
    last: u8,
    generation: u64,
    /// Next value to hand out; `None` when this generation's are used up.
    next: Option<u8>,
    /// The running space's key, if any.
    active: Option<SpaceKey>,
    /// The key that was running at the last rollover: still its owner's.
    reserved: Option<SpaceKey>,
    rollovers: u64,
}

impl KeyAllocator {
    /// ARMv6 ASIDs 1–255 (0 is left for the kernel's global-only context).
    pub fn asids() -> Self {
        Self::with_range(1, 255, 255).expect("1..=255 is a valid ASID range")
    }

    /// ARMv6 ASIDs `first..=last` (a smaller range, e.g. to test rollover).
    pub fn asid_range(first: u8, last: u8) -> Result<Self, KeyError> {
        Self::with_range(first, last, 255)
    }

    /// FCSE PIDs `first..=last` (within 1–127). A kernel passes the PIDs
    /// whose 32 MiB windows (`pid × 32 MiB ..`) it does not use itself.
    pub fn fcse_pids(first: u8, last: u8) -> Result<Self, KeyError> {
        Self::with_range(first, last, 127)
    }

    fn with_range(first: u8, last: u8, max: u8) -> Result<Self, KeyError> {
        if first == 0 || last > max || last <= first {
            return Err(KeyError::BadRange { first, last, max });
        }
        Ok(KeyAllocator {
            first,
            last,
            generation: 1,
            next: Some(first),
            active: None,
            reserved: None,
            rollovers: 0,
        })
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Rollovers so far.
    pub fn rollovers(&self) -> u64 {
        self.rollovers
    }

    /// Whether `key` is valid in the current generation.
    pub fn is_current(&self, key: SpaceKey) -> bool {
        key.generation == self.generation
    }

    /// Makes `key` valid for the space about to run, and records it as the
    /// running one. A key whose value lies outside this allocator's range
    /// (another allocator's) is stale here: it gets a value of this one.
    /// Keys belong to the allocator that gave them; one of another
    /// allocator with the same range and generation cannot be told apart.
    pub fn activate(&mut self, key: &mut SpaceKey) -> KeyOutcome {
        let ours = key.value >= self.first && key.value <= self.last;
        let outcome = if ours && key.generation == self.generation {
            KeyOutcome::Kept
        } else if ours && self.reserved.is_some_and(|reserved| reserved == *key) {
            key.generation = self.generation;
            KeyOutcome::Kept
        } else if let Some(value) = self.take_next() {
            *key = SpaceKey {
                generation: self.generation,
                value,
            };
            KeyOutcome::Assigned
        } else {
            self.generation += 1;
            self.rollovers += 1;
            self.reserved = self.active;
            self.next = Some(self.first);
            let value = self
                .take_next()
                .expect("a range of two or more values has one left besides the reserved one");
            *key = SpaceKey {
                generation: self.generation,
                value,
            };
            KeyOutcome::RolledOver
        };
        self.active = Some(*key);
        outcome
    }

    /// Records that the running space has no key (an ARMv5 space too big
    /// for a PID): nothing needs reserving for it at a rollover.
    pub fn deactivate(&mut self) {
        self.active = None;
    }

    /// The next value of this generation, skipping the reserved one.
    fn take_next(&mut self) -> Option<u8> {
        loop {
            let value = self.next?;
            self.next = (value < self.last).then(|| value + 1);
            let reserved = self
                .reserved
                .is_some_and(|r| r.value == value && r.generation + 1 == self.generation);
            if !reserved {
                return Some(value);
            }
        }
    }
}
