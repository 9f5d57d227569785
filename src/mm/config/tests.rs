//! Each rule refuses what it must, with the values; and every layout that
//! passes the checks places mappings where they can be mapped.

extern crate std;

use std::vec::Vec;

use super::*;
use crate::cache::{CacheGeometry, CacheInfo, MainId};
use crate::mm::gaps::GapTree;
use crate::mm::unmapped::{Direction, MapRequest, get_unmapped_area};

mod display;

const GOOD: Layout = Layout {
    min_addr: 0x1000,
    mmap_base: 0x0080_0000,
    task_size: 0x0100_0000,
    colour_span: 0x4000,
    direction: Direction::TopDown,
};

fn config(layout: Layout, stack_guard_gap: u32) -> SpaceConfig {
    SpaceConfig {
        layout,
        stack_guard_gap,
        max_mappings: SpaceConfig::DEFAULT_MAX_MAPPINGS,
    }
}

#[test]
fn each_rule_refuses_with_the_values() {
    let cases: [(Layout, u32, ConfigError); 15] = [
        (
            Layout {
                mmap_base: 0x0100_0000,
                direction: Direction::BottomUp,
                ..GOOD
            },
            0,
            ConfigError::NoRoomAboveMmapBase {
                mmap_base: 0x0100_0000,
                task_size: 0x0100_0000,
            },
        ),
        (
            Layout {
                min_addr: 0x1001,
                ..GOOD
            },
            0,
            ConfigError::MinAddrUnaligned { min_addr: 0x1001 },
        ),
        (
            Layout {
                task_size: 0x0100_0800,
                ..GOOD
            },
            0,
            ConfigError::TaskSizeUnaligned {
                task_size: 0x0100_0800,
            },
        ),
        (
            Layout {
                task_size: 0x1000,
                mmap_base: 0x1000,
                ..GOOD
            },
            0,
            ConfigError::EmptyUserSpace {
                min_addr: 0x1000,
                task_size: 0x1000,
            },
        ),
        (
            Layout {
                mmap_base: 0x0080_0123,
                ..GOOD
            },
            0,
            ConfigError::MmapBaseUnaligned {
                mmap_base: 0x0080_0123,
            },
        ),
        (
            Layout {
                mmap_base: 0x0200_0000,
                ..GOOD
            },
            0,
            ConfigError::MmapBaseOutsideUserSpace {
                mmap_base: 0x0200_0000,
                min_addr: 0x1000,
                task_size: 0x0100_0000,
            },
        ),
        (
            Layout {
                mmap_base: 0,
                ..GOOD
            },
            0,
            ConfigError::MmapBaseOutsideUserSpace {
                mmap_base: 0,
                min_addr: 0x1000,
                task_size: 0x0100_0000,
            },
        ),
        (
            Layout {
                colour_span: 0,
                ..GOOD
            },
            0,
            ConfigError::ColourSpanBelowPage { colour_span: 0 },
        ),
        (
            Layout {
                colour_span: 0x800,
                ..GOOD
            },
            0,
            ConfigError::ColourSpanBelowPage { colour_span: 0x800 },
        ),
        (
            Layout {
                colour_span: 0x1800,
                ..GOOD
            },
            0,
            ConfigError::ColourSpanNotPageMultiple {
                colour_span: 0x1800,
            },
        ),
        (
            Layout {
                colour_span: 0x3000,
                ..GOOD
            },
            0,
            ConfigError::ColourSpanNotPowerOfTwo {
                colour_span: 0x3000,
            },
        ),
        (
            Layout {
                colour_span: 0x0200_0000,
                ..GOOD
            },
            0,
            ConfigError::ColourSpanTooLarge {
                colour_span: 0x0200_0000,
                user_bytes: 0x00ff_f000,
            },
        ),
        (
            GOOD,
            0x1234,
            ConfigError::StackGuardGapUnaligned {
                stack_guard_gap: 0x1234,
            },
        ),
        (
            GOOD,
            0x00ff_f000,
            ConfigError::StackGuardGapTooLarge {
                stack_guard_gap: 0x00ff_f000,
                user_bytes: 0x00ff_f000,
            },
        ),
        (
            GOOD,
            0xffff_f000,
            ConfigError::StackGuardGapTooLarge {
                stack_guard_gap: 0xffff_f000,
                user_bytes: 0x00ff_f000,
            },
        ),
    ];
    for (layout, gap, expected) in cases {
        assert_eq!(
            config(layout, gap).check(),
            Err(expected),
            "{layout:?}, gap {gap:#x}"
        );
        // A reader learns the value and the rule.
        let message = std::format!("{expected}");
        assert!(message.contains("0x"), "{message}");
    }
    assert_eq!(config(GOOD, 0x10_0000).check(), Ok(()));
}

fn arm1136(ctr: u32) -> CacheInfo {
    CacheInfo::from_registers(MainId::from_raw(0x4117_b363), ctr).unwrap()
}

#[test]
fn a_colour_span_below_the_cache_alignment_is_refused() {
    // QEMU's CTR: 64 KiB 4-way D-cache, four colours, 16 KiB alignment.
    let cache = arm1136(0x01dd_20d2);
    assert_eq!(cache.colour_alignment(), 0x4000);
    for span in [0x1000, 0x4000, 0x8000] {
        let layout = Layout {
            colour_span: span,
            ..GOOD
        };
        assert_eq!(layout.check_for_cache(&cache), Ok(()), "{span:#x}");
    }
    let layout = Layout {
        colour_span: 0x2000,
        ..GOOD
    };
    assert_eq!(
        layout.check_for_cache(&cache),
        Err(ConfigError::ColourSpanBelowCacheAlignment {
            colour_span: 0x2000,
            alignment: 0x4000
        })
    );
    // A non-aliasing cache takes any span the numbers allow.
    let g = CacheGeometry::new(16 << 10, 4, 32).unwrap();
    let pipt = CacheInfo::pipt(MainId::from_raw(0x4117_b363), g, g);
    assert_eq!(layout.check_for_cache(&pipt), Ok(()));
}

#[test]
fn fcse_spaces_end_at_the_window() {
    let low = config(
        Layout {
            task_size: FCSE_WINDOW_BYTES,
            mmap_base: FCSE_WINDOW_BYTES,
            ..GOOD
        },
        0,
    );
    assert_eq!(low.check_fcse(true), Ok(()));
    let high = config(
        Layout {
            task_size: FCSE_WINDOW_BYTES + PAGE,
            ..GOOD
        },
        0,
    );
    assert_eq!(high.check_fcse(false), Ok(()));
    assert_eq!(
        high.check_fcse(true),
        Err(ConfigError::BeyondFcseWindow {
            task_size: FCSE_WINDOW_BYTES + PAGE,
            window: FCSE_WINDOW_BYTES
        })
    );
}

#[test]
fn user_space_stays_clear_of_kernel_ranges() {
    assert_eq!(
        GOOD.check_clear_of(KernelRange::Windows, 0xffc0_0000, 0xffc1_0000),
        Ok(())
    );
    assert_eq!(
        GOOD.check_clear_of(KernelRange::LinearMap, 0, 0x1000),
        Ok(())
    );
    assert_eq!(
        GOOD.check_clear_of(KernelRange::LinearMap, 0, 0x2000),
        Err(ConfigError::OverlapsKernel {
            min_addr: 0x1000,
            task_size: 0x0100_0000,
            range: KernelRange::LinearMap,
            start: 0,
            end: 0x2000
        })
    );
    assert!(
        GOOD.check_clear_of(KernelRange::Windows, 0x00ff_f000, 1 << 32)
            .is_err()
    );
    // An empty range overlaps nothing.
    assert_eq!(
        GOOD.check_clear_of(KernelRange::Windows, 0x2000, 0x2000),
        Ok(())
    );
}

/// Every combination of boundary values: a layout the checks pass places
/// every request page aligned, inside user space, colour matched when it
/// must be — and never panics; the ones refused name a broken rule.
#[test]
fn every_accepted_layout_places_mappings_that_can_be_mapped() {
    let addrs = [
        0,
        0x1000,
        0x1800,
        0x0040_0000,
        0x0100_0000,
        0xffff_f000,
        u32::MAX,
    ];
    let spans = [
        0,
        0x800,
        0x1000,
        0x1800,
        0x2000,
        0x3000,
        0x4000,
        0x10_0000,
        1 << 31,
    ];
    let (mut accepted, mut refused) = (0, 0);
    for &min_addr in &addrs {
        for &task_size in &addrs {
            for &mmap_base in &addrs {
                for &colour_span in &spans {
                    for direction in [Direction::TopDown, Direction::BottomUp] {
                        let layout = Layout {
                            min_addr,
                            mmap_base,
                            task_size,
                            colour_span,
                            direction,
                        };
                        if layout.check().is_err() {
                            refused += 1;
                            continue;
                        }
                        accepted += 1;
                        place_a_few(&layout);
                    }
                }
            }
        }
    }
    assert!(
        accepted > 50 && refused > 50,
        "{accepted} accepted, {refused} refused"
    );
}

fn place_a_few(layout: &Layout) {
    let mut gaps =
        GapTree::complement_of([], u64::from(layout.min_addr), u64::from(layout.task_size))
            .unwrap();
    let mut placed: Vec<(u64, u64)> = Vec::new();
    for (i, len) in [0x1000u32, 0x3000, 0x1_0000, 0x1234]
        .into_iter()
        .enumerate()
    {
        let req = MapRequest {
            hint: None,
            len,
            fixed: false,
            shared: i % 2 == 1,
            file_offset: (i % 2 == 1).then_some(0x5000 * i as u64),
        };
        let result = get_unmapped_area(&gaps, layout, &req);
        // The first page always finds room in an accepted layout.
        assert!(i > 0 || result.is_ok(), "{layout:?}: {result:?}");
        let Ok(va) = result else {
            continue;
        };
        let start = u64::from(va.as_u32());
        let end = start + u64::from(len).div_ceil(u64::from(PAGE)) * u64::from(PAGE);
        assert_eq!(start % u64::from(PAGE), 0, "{layout:?}: {va}");
        assert!(
            start >= u64::from(layout.min_addr) && end <= u64::from(layout.task_size),
            "{layout:?}: {va} + {len:#x}"
        );
        if let Some(offset) = req.file_offset
            && layout.colour_span > PAGE
        {
            let span = u64::from(layout.colour_span);
            assert_eq!(start % span, offset % span, "{layout:?}: {va}");
        }
        assert!(placed.iter().all(|&(s, e)| end <= s || start >= e));
        placed.push((start, end));
        placed.sort_unstable();
        gaps = GapTree::complement_of(
            placed.iter().copied(),
            u64::from(layout.min_addr),
            u64::from(layout.task_size),
        )
        .unwrap();
    }
}
