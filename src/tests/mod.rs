//! Tests of the crate as a whole rather than of one module.

pub(crate) mod allocations;
mod error_messages;
pub(crate) mod golden;
