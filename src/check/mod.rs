//! The coherence engine on the cache model, driven by operations as data.
//!
//! ```text
//!   Op (data) ──► World::apply ──► engine calls, user and kernel accesses,
//!                                  DMA on the machine's model
//!                      │
//!                      └─► judges: the model's oracle (coherence) and the
//!                          content reference (what each load returns)
//! ```
//!
//! - [`machine`]: the model, the kernel's table, the memory system and the
//!   engine.
//! - [`op`]: the operations ([`Op`]) and the random programs' generator
//!   ([`random_op`]).
//! - [`reference`]: the content reference, from the operations' semantics
//!   alone.
//! - [`world`]: processes, files, the shared buffer, the DMA area, and the
//!   interpreter ([`World::apply`]), which fails with a [`Failure`].
//!
//! Every field of an [`Op`] is taken modulo what exists, so a random
//! generator, a fuzzer or an enumerator can drive the same interpreter.

pub mod machine;
pub mod op;
pub mod reference;
pub mod world;

pub use machine::{Machine, Switching, presets};
pub use op::{DmaDir, KernelWriteVia, MapKind, Op, Prot, UserAddr, XorShift, random_op};
pub use world::{Failure, FailureKind, World, replay, shrink};

#[cfg(test)]
mod tests;
