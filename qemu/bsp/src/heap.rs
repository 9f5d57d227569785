//! The heap for tests and kernels that use `alloc`: a linked-list allocator
//! over a fixed region in `.uninit`, behind our own spin lock.
//!
//! linked_list_allocator's own `LockedHeap` needs its `use_spin` feature,
//! whose spin version assumes native atomics; armv5te has none, so the lock is
//! ours (spin on portable-atomic, backed by the single-core critical section).

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

use linked_list_allocator::Heap;

/// Heap size in bytes.
pub const HEAP_BYTES: usize = 4 << 20;

#[unsafe(link_section = ".uninit.vacmm_heap")]
static mut HEAP_MEMORY: MaybeUninit<[u8; HEAP_BYTES]> = MaybeUninit::uninit();

struct LockedHeap(spin::Mutex<Heap>);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap(spin::Mutex::new(Heap::empty()));

// SAFETY: every path goes through the lock; `Heap` hands out disjoint blocks.
unsafe impl GlobalAlloc for LockedHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate_first_fit(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(block) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with `layout`.
            unsafe { self.0.lock().deallocate(block, layout) }
        }
    }
}

/// Hands the heap region to the allocator. Called once by the boot code.
pub(crate) fn init() {
    // SAFETY: called once before anything allocates; the region is a static
    // used by nothing else.
    unsafe {
        let start = ptr::addr_of_mut!(HEAP_MEMORY).cast::<u8>();
        ALLOCATOR.0.lock().init(start, HEAP_BYTES);
    }
}

/// Bytes currently allocated (for tests that check they free what they take).
pub fn used_bytes() -> usize {
    ALLOCATOR.0.lock().used()
}
