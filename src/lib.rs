//! casegate: the email face of a vulnerability coordinator.
//!
//! Data flows one way: fetch → parse (`message`) → open (`open`) → route (`route`) → store
//! (`store`), all wired by `pipeline`; and `outbox` → send. See ARCHITECTURE.md.

pub mod app;
pub mod bounce;
pub mod check;
pub mod config;
pub mod daemon;
pub mod imap;
pub mod keyring;
pub mod message;
pub mod open;
pub mod outbox;
pub mod pipeline;
pub mod route;
pub mod signature_cache;
pub mod store;
pub mod tracking;
pub mod verdict;
