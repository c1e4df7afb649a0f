//! What the fuzz targets (fuzz/, `./run fuzz`) found, kept as fixtures in `fixtures/fuzz/` and
//! replayed here on stable through the same entry points the targets call, in the same setting
//! (`fuzz/src/lib.rs`: the same keys, case and participant). A fixture's name says its target:
//! `open-*`, `pipeline-*`, `bounce-*`, `tracking-*`, `config-*`. Every fixture is run through
//! its target's own checks; the findings also have a test of their own below that says what
//! casegate must make of them.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzz_setup;

use std::path::PathBuf;

use casegate::config::Config;
use casegate::store::MessageSource;
use casegate::tracking::{self, TrackingNumber};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixtures/fuzz")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x != "md"))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read fixture"))
        })
        .collect();
    out.sort();
    out
}

/// The `pipeline` target's checks: stored, with a known outcome; a quarantine says why.
fn pipeline(raw: &[u8]) -> casegate::pipeline::Outcome {
    let mut p = fuzz_setup::pipeline();
    let o = p
        .process(raw, MessageSource::File("fuzz.eml".into()))
        .expect("the pipeline stores every message");
    assert!(
        ["routed", "triage", "quarantine", "duplicate"].contains(&o.outcome),
        "{o:?}"
    );
    if o.outcome == "quarantine" {
        assert!(!o.reason.is_empty(), "quarantined without a reason");
    }
    o
}

/// The `tracking` target's checks.
fn tracking(s: &str) {
    for n in tracking::find_in_subject(s) {
        assert_eq!(TrackingNumber::parse(n.as_str()).ok().as_ref(), Some(&n));
        assert_eq!(tracking::find_in_subject(n.as_str()), vec![n.clone()]);
    }
    if let Ok(n) = TrackingNumber::parse(s) {
        assert_eq!(TrackingNumber::parse(n.as_str()).ok(), Some(n));
    }
}

/// The `config` target's checks.
fn config(text: &str) {
    if let Ok(c) = Config::from_toml(text)
        && c.validate().is_ok()
    {
        assert!(c.limits().validate().is_ok());
    }
}

#[test]
fn every_fixture_passes_its_targets_checks() {
    let all = fixtures();
    let keyring = fuzz_setup::keyring();
    for (name, raw) in &all {
        let target = name.split('-').next().unwrap_or_default();
        match target {
            "open" => {
                let _ = casegate::open::open(raw, &keyring);
            }
            "pipeline" => {
                pipeline(raw);
            }
            "bounce" => {
                let _ = casegate::bounce::parse_bounce(raw);
            }
            "tracking" => tracking(&String::from_utf8_lossy(raw)),
            "config" => config(&String::from_utf8_lossy(raw)),
            other => panic!("{name}: no fuzz target {other:?} (name fixtures TARGET-what.ext)"),
        }
    }
}

/// The findings of 2026-11-29 (`pipeline`, `open` and `bounce`, in the first minutes of each): a
/// multipart whose delimiters run through the parts of attached messages (`message/rfc822`
/// inside `message/rfc822`, the outer `--boundary` inside them) made the patched mail-parser
/// lose track of which entity a delimiter closes — a `debug_assert!` upstream, so a panic in
/// debug builds and, in release, a structure that is not the message's. It is now a parse
/// error: the message is quarantined whole, with the reason, and nothing of it is opened.
#[test]
fn delimiters_through_attached_messages_are_quarantined_with_the_reason() {
    let keyring = fuzz_setup::keyring();
    for name in [
        "pipeline-rfc822-parts-interleaved.eml",
        "pipeline-rfc822-parts-interleaved-2.eml",
        "open-rfc822-parts-interleaved.eml",
        "bounce-rfc822-parts-interleaved.eml",
    ] {
        let raw = fixture(name);
        assert!(
            casegate::bounce::parse_bounce(&raw).is_none(),
            "{name}: read as a bounce"
        );
        let o = pipeline(&raw);
        assert_eq!(o.outcome, "quarantine", "{name}: {o:?}");
        assert!(
            o.reason.contains("cannot parse the MIME structure"),
            "{name}: {}",
            o.reason
        );
        match casegate::open::open(&raw, &keyring) {
            Err(e) => assert!(e.to_string().contains("MIME structure"), "{name}: {e}"),
            Ok(o) => panic!("{name}: opened: {:?}", o.encryption),
        }
    }
}

/// The findings of 2026-11-29 (`pipeline`, the first minute of its second run): a From address
/// with a control character (BEL, NUL, DEL...) or a blank inside passed mail-parser, and a new
/// report tried to make its sender the reporter, which the store refuses: the pipeline failed
/// instead of storing the message, so a source would have retried it for ever. Such a From is
/// now no address at all, by the same rule the store applies: the message is quarantined whole
/// with the reason, like one without a From.
#[test]
fn a_from_with_control_characters_is_quarantined_not_a_store_error() {
    for i in 1..=5 {
        let name = format!("pipeline-from-control-characters-{i}.eml");
        let o = pipeline(&fixture(&name));
        assert_eq!(o.outcome, "quarantine", "{name}: {o:?}");
        assert!(o.reason.contains("no From address"), "{name}: {}", o.reason);
    }
    // The class, not only the five: each control character and blank inside an address.
    for c in [
        '\0', '\u{7}', '\t', '\u{11}', '\u{7f}', ' ', '\u{85}', '\u{2028}',
    ] {
        let raw = format!(
            "From: Mallory <mal{c}lory@evil.example>\r\nTo: cert@example.test\r\n\
             Subject: a report\r\nMessage-ID: <c{}@evil.example>\r\n\r\nhello\r\n",
            c as u32
        );
        let o = pipeline(raw.as_bytes());
        assert_eq!(o.outcome, "quarantine", "{c:?}: {o:?}");
    }
    // The same address without them is a report with its reporter.
    let o = pipeline(
        b"From: Mallory <mallory@evil.example>\r\nTo: cert@example.test\r\n\
          Subject: a report\r\nMessage-ID: <ok@evil.example>\r\n\r\nhello\r\n",
    );
    assert_eq!(o.outcome, "routed", "{o:?}");
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fuzz")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
