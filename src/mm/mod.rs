//! Memory-management bookkeeping: where mappings go, which frames back
//! them, and who maps each frame — pure logic, host- and target-tested.
//!
//! ```text
//!   gaps      — GapTree: free address ranges in an augmented treap
//!               (largest gap per subtree), O(log n) placement searches
//!   unmapped  — get_unmapped_area: Linux-compatible placement, colour-aware
//!               on VIPT-aliasing caches, MAP_FIXED checks
//! ```

pub mod gaps;
pub mod unmapped;

// Modules below are added by the frame-allocator / frame-database work.
