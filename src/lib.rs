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

/// Sets what the libraries read from the environment once, each unless the environment
/// sets it already:
/// - `RUST_LIB_BACKTRACE=0`: sequoia's parsers make and drop `anyhow` errors while parsing
///   good keys and messages; with `RUST_BACKTRACE=1` in the environment each of them captures
///   a backtrace, which made reading certificates ~40% slower. casegate never shows library
///   backtraces.
/// - `SEQUOIA_BUFFERED_READER_BUFFER=4096`: sequoia's readers allocate and zero a buffer of
///   this size (32 KiB by default) for each packet layer of a message they read and again to
///   drain each one. Mail is a few KB: with 32 KiB, `memset` was 5.7% of the samples of an
///   ingest of the mixed corpus, 1.8% with 4 KiB (a 21 MB encrypted message opens as fast
///   either way).
///
/// # Safety
/// Sets environment variables: call it first thing in `main`, before any other thread
/// exists (nothing may read or write the environment concurrently).
pub unsafe fn set_library_defaults() {
    for (name, value) in [
        ("RUST_LIB_BACKTRACE", "0"),
        ("SEQUOIA_BUFFERED_READER_BUFFER", "4096"),
    ] {
        if std::env::var_os(name).is_none() {
            // SAFETY: the caller guarantees no other thread exists yet.
            unsafe { std::env::set_var(name, value) };
        }
    }
}
