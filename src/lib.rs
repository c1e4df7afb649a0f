//! casegate: the email face of a vulnerability coordinator.
//!
//! Data flows one way: fetch → parse (`message`) → open (`open`) → route (`route`) → store
//! (`store`), all wired by `pipeline`; and `outbox` → send. See ARCHITECTURE.md.

pub mod app;
pub mod at_rest;
pub mod bounce;
pub mod check;
pub mod config;
pub mod daemon;
pub mod discussion;
pub mod followup;
pub mod header;
pub mod http;
pub mod imap;
pub mod intake;
pub mod keyring;
pub mod limits;
pub mod message;
pub mod open;
pub mod ops;
pub mod outbox;
pub mod pipeline;
pub mod route;
pub mod signature_cache;
pub mod statement;
pub mod store;
pub mod tls;
pub mod tracking;
pub mod trust;
pub mod verdict;

/// Turns off backtraces for library errors unless `RUST_LIB_BACKTRACE` asks for them.
///
/// Why: sequoia's parsers make and drop `anyhow` errors while parsing good keys and messages;
/// with `RUST_BACKTRACE=1` in the environment each of them captures a backtrace, which made
/// reading certificates ~40% slower. casegate never shows library backtraces.
///
/// # Safety
/// Sets an environment variable: call it first thing in `main`, before any other thread
/// exists (nothing may read or write the environment concurrently).
pub unsafe fn library_backtraces_off() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: the caller guarantees no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}
