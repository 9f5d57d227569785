//! Tests of the crate as a whole rather than of one module.

mod error_messages;
