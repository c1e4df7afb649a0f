//! Tracking-number extraction from a subject, and parsing one number. Every number found
//! parses back to itself from its canonical text, and is found again in that text alone.
#![no_main]

use casegate::tracking::{self, TrackingNumber};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for n in tracking::find_in_subject(s) {
        let again = TrackingNumber::parse(n.as_str()).ok();
        assert_eq!(
            again.as_ref(),
            Some(&n),
            "{n:?} does not parse back from its text"
        );
        assert_eq!(tracking::find_in_subject(n.as_str()), vec![n.clone()]);
    }
    if let Ok(n) = TrackingNumber::parse(s) {
        assert_eq!(TrackingNumber::parse(n.as_str()).ok(), Some(n));
    }
});
