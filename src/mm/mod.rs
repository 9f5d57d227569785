//! Memory-management bookkeeping: where mappings go, which frames back
//! them, and who maps each frame — pure logic, host- and target-tested.
//!
//! ```text
//!   gaps      — GapTree: free address ranges in an augmented treap
//!               (largest gap per subtree), O(log n) placement searches
//!   unmapped  — get_unmapped_area: Linux-compatible placement, colour-aware
//!               on VIPT-aliasing caches, MAP_FIXED checks
//!   colour    — ColourAllocator: free frames on per-colour lists, O(1)
//!               allocate by colour / any / per-process spread, and free
//!   frames    — FrameDb: per-page flags, user colour and reverse map
//! ```

pub mod gaps;
pub mod unmapped;

// Modules below are added by the frame-allocator / frame-database work.
pub mod colour;
pub mod frames;
