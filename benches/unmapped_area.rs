//! get_unmapped_area on the gap tree against a linear scan of the same free
//! ranges, at 1,000 and 100,000 mappings, in one run.
//!
//! `cargo bench --bench unmapped_area`
//!
//! Targets (issue 6): per call at 100,000 mappings ≤ 3 × per call at 1,000,
//! and ≥ 50 × faster than the linear scan at 100,000.
//!
//! The address space: `n` one-page mappings separated by one-page holes,
//! stacked down from mmap_base, and free space below them. A two-page
//! request fits in none of the holes, so a top-down search must get past
//! all of them — the linear scan visits every one, the tree skips them by
//! their subtree maxima.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vacmm::mm::gaps::{Gap, GapTree};
use vacmm::mm::unmapped::{
    Direction, Layout, MapRequest, get_unmapped_area, get_unmapped_area_linear,
};

const MIN: u32 = 0x8000;
const BASE: u32 = 0xb000_0000;
const TOP: u32 = 0xbf00_0000;

fn space(n: u64) -> (GapTree, Vec<Gap>) {
    let maps = (0..n).rev().map(|i| {
        let start = u64::from(BASE) - (i + 1) * 0x2000;
        (start, start + 0x1000)
    });
    let tree = GapTree::complement_of(maps, u64::from(MIN), u64::from(TOP)).unwrap();
    let slice = tree.iter().collect();
    (tree, slice)
}

fn bench(c: &mut Criterion) {
    let layout = Layout {
        min_addr: MIN,
        mmap_base: BASE,
        task_size: TOP,
        colour_span: 0x4000,
        direction: Direction::TopDown,
    };
    let req = MapRequest {
        len: 0x2000,
        shared: true,
        ..MapRequest::default()
    };
    let mut group = c.benchmark_group("get_unmapped_area");
    group.throughput(Throughput::Elements(1));
    for n in [1_000u64, 100_000] {
        let (tree, slice) = space(n);
        // Both find the same address, below the n mappings.
        let expected = get_unmapped_area(&tree, &layout, &req).unwrap();
        assert_eq!(
            get_unmapped_area_linear(&slice, &layout, &req).unwrap(),
            expected
        );
        assert!(u64::from(expected.as_u32()) < u64::from(BASE) - n * 0x2000);
        group.bench_with_input(BenchmarkId::new("tree", n), &tree, |b, tree| {
            b.iter(|| get_unmapped_area(black_box(tree), &layout, black_box(&req)))
        });
        group.bench_with_input(BenchmarkId::new("linear", n), &slice, |b, slice| {
            b.iter(|| get_unmapped_area_linear(black_box(slice), &layout, black_box(&req)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
