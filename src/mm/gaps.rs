//! The free ranges of an address space, in a treap augmented with the
//! largest gap of each subtree (Linux keeps the same figure in its maple
//! tree, and before that in `rb_subtree_gap`).
//!
//! ```text
//!            [0x4000_0000, 0x5000_0000)  max 0x3000_0000
//!             /                      \
//!   [0x1000, 0x8000) max 0x7000    [0x9000_0000, 0xc000_0000) max 0x3000_0000
//! ```
//!
//! A search skips every subtree whose largest gap is too small and every
//! subtree lying wholly outside the limits, so it visits O(log n) nodes in
//! expectation: only the (at most two) gaps straddling a limit can be
//! visited and rejected. Gaps are stored, not mappings, so each node's
//! figure depends on that node alone and an insertion or removal only
//! updates the nodes on its path.

use alloc::vec::Vec;

use crate::xorshift::XorShift;

/// "No node".
const NIL: u32 = u32::MAX;

/// One past the last address: gaps end at most here.
const TOP: u64 = 1 << 32;

/// One free range `[start, end)` (`end` may be 2^32).
///
/// The fields are public, so a gap may be built inverted (`end < start`):
/// such a gap is empty, like `start..end` ranges of the standard library,
/// and the tree ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// First free byte.
    pub start: u64,
    /// One past the last free byte.
    pub end: u64,
}

impl Gap {
    /// Bytes in the gap (0 if it is inverted).
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True if the gap holds no byte.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

#[derive(Clone, Copy, Debug)]
struct Node {
    gap: Gap,
    priority: u32,
    left: u32,
    right: u32,
    /// Largest gap length in this subtree.
    max_len: u64,
}

/// Free ranges, ordered by start, with O(log n) expected insert, remove and
/// fit searches.
#[derive(Clone, Debug)]
pub struct GapTree {
    nodes: Vec<Node>,
    free_slots: Vec<u32>,
    root: u32,
    len: usize,
    /// Priorities (deterministic: same operations, same tree). A fixed
    /// sequence, not a secret: O(log n) expected depth holds for calls not
    /// ordered to match it; at worst the depth is the number of gaps, which
    /// the space's `max_mappings` bounds (`docs/embedding.md`, the kernel
    /// heap).
    priorities: XorShift,
}

impl Default for GapTree {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a search may place a range, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FitQuery {
    /// Bytes needed (the caller adds any alignment slack).
    pub len: u64,
    /// Lowest usable address.
    pub low: u64,
    /// One past the highest usable address.
    pub high: u64,
}

impl GapTree {
    /// No free ranges.
    pub const fn new() -> Self {
        GapTree {
            nodes: Vec::new(),
            free_slots: Vec::new(),
            root: NIL,
            len: 0,
            priorities: XorShift(0x9e37_79b9),
        }
    }

    /// Number of gaps.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no gaps.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The largest gap's length (0 if none).
    pub fn largest(&self) -> u64 {
        self.max_len(self.root)
    }

    fn max_len(&self, n: u32) -> u64 {
        if n == NIL {
            0
        } else {
            self.nodes[n as usize].max_len
        }
    }

    fn update(&mut self, n: u32) {
        let node = self.nodes[n as usize];
        let max = node
            .gap
            .len()
            .max(self.max_len(node.left))
            .max(self.max_len(node.right));
        self.nodes[n as usize].max_len = max;
    }

    /// Adds a free range. Empty ranges are ignored (`Ok(true)`: nothing to
    /// add). A range that overlaps a gap already in the tree, or ends past
    /// 2^32, is refused with `Ok(false)` and changes nothing: the gaps stay
    /// disjoint, which every search relies on. (Touching gaps are not
    /// merged; [`give`](Self::give) merges.)
    ///
    /// Returns `Err` only if memory for the node cannot be had.
    pub fn insert(&mut self, gap: Gap) -> Result<bool, alloc::collections::TryReserveError> {
        if gap.is_empty() {
            return Ok(true);
        }
        if gap.end > TOP || self.overlapping(gap.start, gap.end).is_some() {
            return Ok(false);
        }
        let node = Node {
            gap,
            priority: self.priorities.next(),
            left: NIL,
            right: NIL,
            max_len: gap.len(),
        };
        let index = match self.free_slots.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                self.nodes.try_reserve(1)?;
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        // Reserve now so a later removal never has to allocate.
        self.free_slots
            .try_reserve(self.nodes.len() - self.free_slots.len())?;
        self.root = self.insert_at(self.root, index);
        self.len += 1;
        Ok(true)
    }

    /// A gap sharing a byte with `[start, end)`, if any. The gaps are
    /// disjoint, so only the last one starting before `end` can: every
    /// earlier one ends before it starts.
    fn overlapping(&self, start: u64, end: u64) -> Option<Gap> {
        let mut t = self.root;
        let mut candidate = None;
        while t != NIL {
            let node = &self.nodes[t as usize];
            if node.gap.start < end {
                candidate = Some(node.gap);
                t = node.right;
            } else {
                t = node.left;
            }
        }
        candidate.filter(|g| g.end > start)
    }

    fn insert_at(&mut self, t: u32, n: u32) -> u32 {
        if t == NIL {
            return n;
        }
        let goes_left = self.nodes[n as usize].gap.start < self.nodes[t as usize].gap.start;
        let mut root = t;
        if goes_left {
            let left = self.insert_at(self.nodes[t as usize].left, n);
            self.nodes[t as usize].left = left;
            if self.nodes[left as usize].priority > self.nodes[t as usize].priority {
                root = self.rotate_right(t);
            }
        } else {
            let right = self.insert_at(self.nodes[t as usize].right, n);
            self.nodes[t as usize].right = right;
            if self.nodes[right as usize].priority > self.nodes[t as usize].priority {
                root = self.rotate_left(t);
            }
        }
        self.update(t);
        if root != t {
            self.update(root);
        }
        root
    }

    fn rotate_right(&mut self, t: u32) -> u32 {
        let l = self.nodes[t as usize].left;
        self.nodes[t as usize].left = self.nodes[l as usize].right;
        self.nodes[l as usize].right = t;
        self.update(t);
        l
    }

    fn rotate_left(&mut self, t: u32) -> u32 {
        let r = self.nodes[t as usize].right;
        self.nodes[t as usize].right = self.nodes[r as usize].left;
        self.nodes[r as usize].left = t;
        self.update(t);
        r
    }

    /// Removes the gap starting at `start`; returns it, or `None`.
    pub fn remove(&mut self, start: u64) -> Option<Gap> {
        let mut removed = None;
        self.root = self.remove_at(self.root, start, &mut removed);
        let index = removed?;
        self.len -= 1;
        // Capacity was reserved by `insert`.
        self.free_slots.push(index);
        Some(self.nodes[index as usize].gap)
    }

    fn remove_at(&mut self, t: u32, start: u64, removed: &mut Option<u32>) -> u32 {
        if t == NIL {
            return NIL;
        }
        let node = self.nodes[t as usize];
        if start == node.gap.start {
            *removed = Some(t);
            return self.merge(node.left, node.right);
        }
        if start < node.gap.start {
            let left = self.remove_at(node.left, start, removed);
            self.nodes[t as usize].left = left;
        } else {
            let right = self.remove_at(node.right, start, removed);
            self.nodes[t as usize].right = right;
        }
        self.update(t);
        t
    }

    /// Joins two treaps whose keys are ordered (all of `a` before `b`).
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].priority > self.nodes[b as usize].priority {
            let right = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = right;
            self.update(a);
            a
        } else {
            let left = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = left;
            self.update(b);
            b
        }
    }

    /// The free ranges of `[low, high)` around `mappings` (sorted,
    /// disjoint `[start, end)` pairs). Out-of-order or overlapping pairs
    /// cannot make gaps overlap: each gap starts where the previous pairs
    /// ended at the latest. `high` is capped at 2^32.
    pub fn complement_of(
        mappings: impl IntoIterator<Item = (u64, u64)>,
        low: u64,
        high: u64,
    ) -> Result<Self, alloc::collections::TryReserveError> {
        let mut tree = GapTree::new();
        let high = high.min(TOP);
        let mut cursor = low;
        for (start, end) in mappings {
            tree.insert(Gap {
                start: cursor,
                end: start.min(high),
            })?;
            cursor = cursor.max(end);
        }
        tree.insert(Gap {
            start: cursor,
            end: high,
        })?;
        Ok(tree)
    }

    /// Marks `[start, end)` as used: it must lie inside one gap, which is
    /// split around it. Returns `Ok(false)` (and changes nothing) if the
    /// range is not wholly free.
    pub fn take(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<bool, alloc::collections::TryReserveError> {
        let Some(gap) = self.containing(start) else {
            return Ok(false);
        };
        if end > gap.end || end <= start {
            return Ok(false);
        }
        // Room for the two remainders first, so a failure changes nothing.
        self.nodes.try_reserve(2)?;
        self.free_slots.try_reserve(self.nodes.len() + 2)?;
        self.remove(gap.start);
        self.insert(Gap {
            start: gap.start,
            end: start,
        })?;
        self.insert(Gap {
            start: end,
            end: gap.end,
        })?;
        Ok(true)
    }

    /// Marks `[start, end)` as free again, merging it with the gaps it
    /// touches. Returns `Ok(false)` (and changes nothing) if the range is
    /// empty, ends past 2^32 or is not wholly used: part of it is free
    /// already.
    pub fn give(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<bool, alloc::collections::TryReserveError> {
        if end <= start || end > TOP || self.overlapping(start, end).is_some() {
            return Ok(false);
        }
        // Room for the merged gap first, so a failure changes nothing.
        self.nodes.try_reserve(1)?;
        self.free_slots.try_reserve(self.nodes.len() + 1)?;
        let mut merged = Gap { start, end };
        if let Some(before) = start.checked_sub(1).and_then(|a| self.containing(a))
            && before.end == start
        {
            self.remove(before.start);
            merged.start = before.start;
        }
        if let Some(after) = self.containing(end)
            && after.start == end
        {
            self.remove(after.start);
            merged.end = after.end;
        }
        self.insert(merged)
    }

    /// The gap containing `address`, if any.
    pub fn containing(&self, address: u64) -> Option<Gap> {
        let mut t = self.root;
        while t != NIL {
            let node = &self.nodes[t as usize];
            if address < node.gap.start {
                t = node.left;
            } else if address >= node.gap.end {
                t = node.right;
            } else {
                return Some(node.gap);
            }
        }
        None
    }

    /// The highest gap whose part inside `[low, high)` holds `len` bytes,
    /// clipped to the limits.
    pub fn highest_fit(&self, q: FitQuery) -> Option<Gap> {
        self.fit(self.root, q, true, &mut 0)
    }

    /// The lowest gap whose part inside `[low, high)` holds `len` bytes,
    /// clipped to the limits.
    pub fn lowest_fit(&self, q: FitQuery) -> Option<Gap> {
        self.fit(self.root, q, false, &mut 0)
    }

    /// The search behind both fits; `visits` counts the nodes examined.
    fn fit(&self, t: u32, q: FitQuery, top_down: bool, visits: &mut usize) -> Option<Gap> {
        if t == NIL || self.max_len(t) < q.len {
            return None;
        }
        *visits += 1;
        let node = self.nodes[t as usize];
        // Keys are starts; every gap in the right subtree starts after this
        // one ends, every gap on the left ends before this one starts.
        let right_usable = node.gap.end < q.high;
        let left_usable = node.gap.start > q.low;
        let here = || {
            let clipped = Gap {
                start: node.gap.start.max(q.low),
                end: node.gap.end.min(q.high),
            };
            (!clipped.is_empty() && clipped.len() >= q.len).then_some(clipped)
        };
        let (first, second, first_usable, second_usable) = if top_down {
            (node.right, node.left, right_usable, left_usable)
        } else {
            (node.left, node.right, left_usable, right_usable)
        };
        if first_usable && let Some(found) = self.fit(first, q, top_down, visits) {
            return Some(found);
        }
        if let Some(found) = here() {
            return Some(found);
        }
        if second_usable {
            return self.fit(second, q, top_down, visits);
        }
        None
    }

    /// Every gap in address order (for tests and invariant checks).
    pub fn iter(&self) -> impl Iterator<Item = Gap> + '_ {
        let mut stack = Vec::new();
        let mut t = self.root;
        core::iter::from_fn(move || {
            while t != NIL {
                stack.push(t);
                t = self.nodes[t as usize].left;
            }
            let n = stack.pop()?;
            t = self.nodes[n as usize].right;
            Some(self.nodes[n as usize].gap)
        })
    }

    /// Nodes a [`highest_fit`](Self::highest_fit) search visits (for the
    /// complexity tests).
    #[doc(hidden)]
    pub fn visits_for_highest_fit(&self, q: FitQuery) -> usize {
        let mut visits = 0;
        self.fit(self.root, q, true, &mut visits);
        visits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(start: u64, end: u64) -> Gap {
        Gap { start, end }
    }

    #[test]
    fn finds_highest_and_lowest_fits_within_limits() {
        let mut t = GapTree::new();
        for g in [
            gap(0x1000, 0x3000),
            gap(0x10_000, 0x20_000),
            gap(0x40_000, 0x41_000),
        ] {
            t.insert(g).unwrap();
        }
        let q = |len, low, high| FitQuery { len, low, high };
        assert_eq!(
            t.highest_fit(q(0x1000, 0, 1 << 32)),
            Some(gap(0x40_000, 0x41_000))
        );
        assert_eq!(
            t.highest_fit(q(0x2000, 0, 1 << 32)),
            Some(gap(0x10_000, 0x20_000))
        );
        assert_eq!(
            t.lowest_fit(q(0x1000, 0, 1 << 32)),
            Some(gap(0x1000, 0x3000))
        );
        // Clipped by the high limit: only 0x10_000..0x18_000 is usable.
        assert_eq!(
            t.highest_fit(q(0x8000, 0, 0x18_000)),
            Some(gap(0x10_000, 0x18_000))
        );
        assert_eq!(t.highest_fit(q(0x9000, 0, 0x18_000)), None);
        assert_eq!(
            t.lowest_fit(q(0x1000, 0x2800, 1 << 32)),
            Some(gap(0x10_000, 0x20_000))
        );
        assert_eq!(t.remove(0x10_000), Some(gap(0x10_000, 0x20_000)));
        assert_eq!(t.remove(0x10_000), None);
        assert_eq!(t.largest(), 0x2000);
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            vec![gap(0x1000, 0x3000), gap(0x40_000, 0x41_000)]
        );
    }

    /// Against a plain sorted list: random inserts, removes and searches.
    #[test]
    fn agrees_with_a_linear_scan() {
        let mut t = GapTree::new();
        let mut shadow: Vec<Gap> = Vec::new();
        let mut rng = XorShift(12345);
        let mut rand = move || rng.next();
        for _ in 0..20_000 {
            let slot = u64::from(rand() % 4096) * 0x10_0000;
            match rand() % 3 {
                0 if !shadow.iter().any(|g| g.start == slot) => {
                    let g = gap(slot, slot + u64::from(rand() % 256 + 1) * 0x1000);
                    t.insert(g).unwrap();
                    shadow.push(g);
                }
                1 => {
                    let expected = shadow
                        .iter()
                        .position(|g| g.start == slot)
                        .map(|i| shadow.remove(i));
                    assert_eq!(t.remove(slot), expected);
                }
                _ => {
                    let len = u64::from(rand() % 300) * 0x1000;
                    let low = u64::from(rand()) % (1 << 32);
                    let high = low + u64::from(rand()) % ((1 << 32) - low + 1);
                    let q = FitQuery { len, low, high };
                    let clip = |g: &Gap| gap(g.start.max(low), g.end.min(high));
                    let fits = |g: &Gap| !clip(g).is_empty() && clip(g).len() >= len;
                    let top = shadow
                        .iter()
                        .filter(|g| fits(g))
                        .max_by_key(|g| g.start)
                        .map(clip);
                    let bottom = shadow
                        .iter()
                        .filter(|g| fits(g))
                        .min_by_key(|g| g.start)
                        .map(clip);
                    assert_eq!(t.highest_fit(q), top, "{q:?}");
                    assert_eq!(t.lowest_fit(q), bottom, "{q:?}");
                }
            }
            assert_eq!(t.len(), shadow.len());
        }
    }

    #[test]
    fn take_splits_and_give_merges() {
        let mut t = GapTree::new();
        t.insert(gap(0x1000, 0x10_000)).unwrap();
        assert!(t.take(0x4000, 0x6000).unwrap());
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            vec![gap(0x1000, 0x4000), gap(0x6000, 0x10_000)]
        );
        assert!(!t.take(0x3000, 0x5000).unwrap(), "partly used");
        assert!(!t.take(0x5000, 0x5800).unwrap(), "wholly used");
        assert!(t.take(0x1000, 0x4000).unwrap(), "a whole gap");
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![gap(0x6000, 0x10_000)]);
        assert!(t.give(0x4000, 0x6000).unwrap());
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![gap(0x4000, 0x10_000)]);
        assert!(t.give(0x1000, 0x4000).unwrap());
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![gap(0x1000, 0x10_000)]);
        assert_eq!(t.largest(), 0xf000);
    }

    #[test]
    fn searches_visit_logarithmically_many_nodes() {
        let mut t = GapTree::new();
        // 100,000 one-page gaps and one big gap low down: a top-down search
        // for the big one must not walk the small ones.
        for i in 0..100_000u64 {
            t.insert(gap(
                0x1000_0000 + i * 0x2000,
                0x1000_0000 + i * 0x2000 + 0x1000,
            ))
            .unwrap();
        }
        t.insert(gap(0x10_0000, 0x20_0000)).unwrap();
        let q = FitQuery {
            len: 0x8_0000,
            low: 0,
            high: 1 << 32,
        };
        assert_eq!(t.highest_fit(q), Some(gap(0x10_0000, 0x20_0000)));
        let visits = t.visits_for_highest_fit(q);
        assert!(visits < 200, "{visits} nodes visited for 100,001 gaps");
    }

    /// Issue 19: `end - start` underflowed for an inverted gap.
    #[test]
    fn an_inverted_gap_is_empty() {
        let inverted = gap(2, 1);
        assert!(inverted.is_empty());
        assert_eq!(inverted.len(), 0);
    }

    #[test]
    fn overlapping_or_out_of_range_gaps_are_refused() {
        let mut t = GapTree::new();
        assert!(t.insert(gap(0x4000, 0x8000)).unwrap());
        for (start, end) in [
            (0x3000, 0x5000),
            (0x7000, 0x9000),
            (0x5000, 0x6000),
            (0x1000, 0x10_000),
            (0x4000, 0x8000),
        ] {
            assert!(!t.insert(gap(start, end)).unwrap(), "{start:#x}..{end:#x}");
            assert!(!t.give(start, end).unwrap(), "{start:#x}..{end:#x}");
        }
        assert!(!t.insert(gap(0xffff_f000, (1 << 32) + 1)).unwrap());
        assert!(!t.give(0xffff_f000, (1 << 32) + 1).unwrap());
        assert!(!t.give(0x9000, 0x9000).unwrap(), "empty");
        assert!(!t.give(0x9000, 0x8000).unwrap(), "inverted");
        assert!(
            t.insert(gap(0x9000, 0x8000)).unwrap(),
            "inverted: nothing to add"
        );
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![gap(0x4000, 0x8000)]);
        // Touching is not overlapping.
        assert!(t.insert(gap(0x8000, 0x9000)).unwrap());
        assert!(t.insert(gap(0xffff_f000, 1 << 32)).unwrap());
        assert_eq!(t.len(), 3);
        assert_eq!(
            GapTree::complement_of([(0x1000, 0x2000)], 0, u64::MAX)
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            vec![gap(0, 0x1000), gap(0x2000, 1 << 32)]
        );
    }
}
