//! outbox
pub mod compose;
