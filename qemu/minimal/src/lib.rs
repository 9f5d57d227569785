//! The minimal kernel's memory manager (`vm`) and what its kernel and
//! programs agree on (`layout`): a library, so that the same code runs in
//! the kernel (`src/main.rs`, for QEMU) and on vacmm's cache model on the
//! host (`tests/model.rs`).
#![no_std]

extern crate alloc;

pub mod layout;
pub mod vm;
