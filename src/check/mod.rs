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
//! - [`books`]: what a refused call must leave as it was (frame database,
//!   allocator, objects, spaces, tables, engine), snapshotted for checks.
//! - [`exhaustive`]: every sequence of up to `k` events of a small
//!   alphabet over a small world, pruned by state fingerprints.
//! - [`machine`]: the model, the kernel's table, the memory system and the
//!   engine.
//! - [`op`]: the operations ([`Op`]) and the random programs' generator
//!   ([`random_op`]).
//! - [`mod@reference`]: the content reference, from the operations' semantics
//!   alone.
//! - `pure` (feature `arbitrary`): property checks of the pure layer
//!   (addresses, cache identification, `mm` structures, descriptors,
//!   tables and keys) for the `pure_*` fuzz targets.
//! - [`world`]: processes, files, the shared buffer, the DMA area, and the
//!   interpreter ([`World::apply`]), which fails with a [`Failure`].
//!
//! Every field of an [`Op`] is taken modulo what exists, so a random
//! generator, a fuzzer or an enumerator can drive the same interpreter;
//! [`replay`] runs a program, [`shrink`] cuts a failing one down.
//!
//! The oracle takes no word from the engine: dead contents are declared by
//! the world from its own bookkeeping (a private page of a leaving process
//! that no other process's hardware table maps; a DMA receive buffer), and
//! the content reference says what every load returns. Engine failures the
//! generator found have ignored reproducers in `check::tests`; the operation
//! variants that reach them are left out of the default mix by the
//! constants listed in [`op::LEFT_OUT`].
//!
//! ```
//! use vacmm::check::{MapKind, Op, Prot, UserAddr, World, presets};
//! let (_, model) = presets()[1];
//! let mut world = World::new(model);
//! let at = UserAddr { vma: 0, page: 0, word: 3 };
//! for op in [
//!     Op::Mmap { proc: 0, kind: MapKind::PrivateAnon, pages: 0, prot: Prot::ReadWrite, fixed: None },
//!     Op::Store { proc: 0, at, value: 7 },
//!     Op::Fork { proc: 0 },
//!     Op::Load { proc: 1, at },
//! ] {
//!     world.apply(&op).unwrap();
//! }
//! ```

pub mod books;
pub mod exhaustive;
#[cfg(feature = "arbitrary")]
pub mod fuzz;
pub mod machine;
pub mod op;
#[cfg(feature = "arbitrary")]
pub mod pure;
pub mod reference;
pub mod world;

pub use machine::{Machine, Switching, presets};
pub use op::{DmaDir, KernelWriteVia, MapKind, Op, Prot, UserAddr, XorShift, allowed, random_op};
pub use world::{Failure, FailureKind, World, replay, shrink};

#[cfg(test)]
mod tests;
