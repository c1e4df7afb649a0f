//! Bounce parsing (DSNs and the text bounces casegate recognizes). Never panics; a bounce it
//! reads names at least one recipient.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    if let Some(b) = casegate::bounce::parse_bounce(raw) {
        let _ = b.has_failures();
    }
});
