//! Memory-management bookkeeping: where mappings go, which frames back
//! them, and who maps each frame — pure logic, host- and target-tested.
//!
//! ```text
//!   gaps      — GapTree: free address ranges in an augmented treap
//!               (largest gap per subtree), O(log n) placement searches
//!   config    — the checks a SpaceConfig / Layout passes before a space
//!               is built (alone, and against the cache)
//!   unmapped  — get_unmapped_area: Linux-compatible placement, colour-aware
//!               on VIPT-aliasing caches, MAP_FIXED checks
//!   colour    — ColourAllocator: free frames on per-colour lists, O(1)
//!               allocate by colour / any / per-process spread, and free
//!   frames    — FrameDb: per-page flags, user colour and reverse map
//!   ids       — SpaceId and the generation-checked slots behind it and
//!               ObjectId: an id kept past its owner names nothing
//!   object    — Objects: files / segments / shared anonymous memory, pages
//!               by offset and the VMAs mapping them (i_mmap)
//!   space     — AddressSpace: VMAs, mmap / munmap / mprotect / brk, faults,
//!               over its own PageTable; MemorySystem: the shared state
//! ```

pub mod colour;
pub mod config;
pub mod frames;
pub mod gaps;
pub mod ids;
pub mod object;
pub mod space;
pub mod unmapped;
