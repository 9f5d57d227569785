//! The refusals the cache and the kernel's ranges decide: each names the
//! values and the rule, and says `EINVAL`; a layout made for a cache
//! passes the cache's check.

use std::format;

use super::*;
use crate::mm::unmapped::UserBounds;

#[test]
fn cache_fcse_and_kernel_refusals_name_their_values() {
    let cache = arm1136(0x01dd_20d2);
    let below = Layout {
        colour_span: 0x2000,
        ..GOOD
    }
    .check_for_cache(&cache)
    .unwrap_err();
    let fcse = config(
        Layout {
            task_size: FCSE_WINDOW_BYTES + PAGE,
            ..GOOD
        },
        0,
    )
    .check_fcse(true)
    .unwrap_err();
    let linear = GOOD
        .check_clear_of(KernelRange::LinearMap, 0, 0x2000)
        .unwrap_err();
    let windows = GOOD
        .check_clear_of(KernelRange::Windows, 0x00ff_f000, 1 << 32)
        .unwrap_err();
    let cases = [
        (
            below,
            "colour span 0x2000 is smaller than the cache's colour alignment 0x4000: mappings \
             it calls colour-matched would alias (use 0x4000, or one page, 0x1000, for no \
             colour matching)",
        ),
        (
            fcse,
            "the table is declared to fit the FCSE window (0x2000000 bytes) but user space \
             ends at 0x2001000: mappings above the window would share VIVT lines with other \
             spaces'",
        ),
        (
            linear,
            "user space [0x1000, 0x1000000) overlaps the kernel's linear map [0x0, 0x2000), \
             which every user table shares",
        ),
        (
            windows,
            "user space [0x1000, 0x1000000) overlaps the kernel's windows \
             [0xfff000, 0x100000000), which every user table shares",
        ),
    ];
    for (e, message) in cases {
        assert_eq!(format!("{e}"), message, "{e:?}");
        assert_eq!(e.errno(), 22, "{e:?}");
    }
}

#[test]
fn a_layout_for_a_cache_uses_its_colour_alignment() {
    // 64 KiB 4-way: 16 KiB colour alignment; 16 KiB 4-way: none.
    let aliasing = arm1136(0x01dd_20d2);
    let layout = Layout::for_cache(
        &aliasing,
        UserBounds {
            min_addr: 0x1000,
            mmap_base: 0x0080_0000,
            task_size: 0x0100_0000,
        },
    );
    assert_eq!(
        layout,
        Layout {
            colour_span: 0x4000,
            ..GOOD
        }
    );
    assert_eq!(layout.check_for_cache(&aliasing), Ok(()));
    let g = CacheGeometry::new(16 << 10, 4, 32).unwrap();
    let pipt = CacheInfo::pipt(MainId::from_raw(0x4117_b363), g, g);
    let layout = Layout::for_cache(
        &pipt,
        UserBounds {
            min_addr: 0x1000,
            mmap_base: 0x0080_0000,
            task_size: 0x0100_0000,
        },
    );
    assert_eq!(layout.colour_span, PAGE);
    assert_eq!(layout.direction, Direction::TopDown);
    assert_eq!(layout.check_for_cache(&pipt), Ok(()));
}
