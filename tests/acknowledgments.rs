//! Acknowledgments of new reports, through the binary: encrypted to a key the reporter attached
//! or announced with Autocrypt, plaintext naming only the number otherwise, never for robots,
//! never for dry runs, and at most the configured number per sender per day.

use std::path::Path;

use base64::Engine;

mod support;
use support::cli::casegate;

fn ingest(dir: &Path, name: &str, raw: &str) -> serde_json::Value {
    let path = dir.join(name);
    std::fs::write(&path, raw).unwrap();
    let out = casegate(dir, &["ingest", "--json", path.to_str().unwrap()]);
    serde_json::from_str(out.trim()).unwrap()
}

fn outbox(dir: &Path) -> Vec<serde_json::Value> {
    casegate(dir, &["outbox", "list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A reporter's public key, made with casegate's own key generator (public parts only).
fn reporter_key(address: &str) -> (String, String) {
    let cert = casegate::keyring::generate_coordinator_key(address).unwrap();
    let armored = casegate::keyring::armored_public(&cert).unwrap();
    (cert.fingerprint().to_hex(), armored)
}

#[test]
fn attached_key_gets_an_encrypted_acknowledgment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    let (fpr, armored) = reporter_key("rita@reporter.example");
    let raw = format!(
        "From: Rita <rita@reporter.example>\r\nTo: cert@example.test\r\nSubject: RCE in BazCMS\r\n\
Message-ID: <k1@reporter.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
Details.\r\n--b\r\nContent-Type: application/pgp-keys; name=\"rita.asc\"\r\n\
Content-Disposition: attachment; filename=\"rita.asc\"\r\n\r\n{armored}\r\n--b--\r\n"
    );
    let o = ingest(dir, "k1.eml", &raw);
    assert_eq!(o["outcome"], "routed");
    let ack = o["acknowledgment"].as_str().unwrap();
    assert!(ack.contains(&fpr), "{ack}");
    let rows = outbox(dir);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key_fingerprint"], fpr.as_str());
    assert_eq!(rows[0]["address"], "rita@reporter.example");
}

#[test]
fn autocrypt_key_counts_but_only_for_the_sender() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    let cert = casegate::keyring::generate_coordinator_key("rob@reporter.example").unwrap();
    let keydata =
        base64::engine::general_purpose::STANDARD.encode(casegate::keyring::public_bytes(&cert));
    let raw = format!(
        "From: rob@reporter.example\r\nTo: cert@example.test\r\nSubject: SSRF\r\n\
Message-ID: <a1@reporter.example>\r\nAutocrypt: addr=rob@reporter.example; keydata={keydata}\r\n\r\nHi\r\n"
    );
    let o = ingest(dir, "a1.eml", &raw);
    assert!(
        o["acknowledgment"]
            .as_str()
            .unwrap()
            .starts_with("queued, encrypted"),
        "{o}"
    );

    // A key for somebody else is not bound to this sender: plaintext acknowledgment.
    let other = casegate::keyring::generate_coordinator_key("eve@elsewhere.example").unwrap();
    let keydata =
        base64::engine::general_purpose::STANDARD.encode(casegate::keyring::public_bytes(&other));
    let raw = format!(
        "From: sam@reporter.example\r\nTo: cert@example.test\r\nSubject: CSRF\r\n\
Message-ID: <a2@reporter.example>\r\nAutocrypt: addr=sam@reporter.example; keydata={keydata}\r\n\r\nHi\r\n"
    );
    let o = ingest(dir, "a2.eml", &raw);
    assert!(
        o["acknowledgment"]
            .as_str()
            .unwrap()
            .starts_with("queued, unencrypted"),
        "{o}"
    );
}

#[test]
fn no_acknowledgment_for_robots_or_dry_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    let report = |i: u32| {
        format!(
            "From: flood@reporter.example\r\nTo: cert@example.test\r\nSubject: Report number {i}\r\n\
Message-ID: <f{i}@reporter.example>\r\n\r\nText {i}\r\n"
        )
    };
    // A dry run stores and sends nothing.
    std::fs::write(dir.join("dry.eml"), report(0)).unwrap();
    casegate(
        dir,
        &[
            "route",
            "--dry-run",
            "--json",
            dir.join("dry.eml").to_str().unwrap(),
        ],
    );
    assert!(outbox(dir).is_empty());

    let first = ingest(dir, "f1.eml", &report(1));
    assert!(
        first["acknowledgment"]
            .as_str()
            .unwrap()
            .starts_with("queued")
    );
    assert_eq!(outbox(dir).len(), 1);

    // An out-of-office from an unknown address opens nothing and gets no answer.
    let oof = "From: away@else.example\r\nTo: cert@example.test\r\nSubject: Out of office\r\n\
Message-ID: <oof@else.example>\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n";
    let o = ingest(dir, "oof.eml", oof);
    assert_eq!(o["outcome"], "triage");
    assert!(o.get("acknowledgment").is_none());
    assert_eq!(outbox(dir).len(), 1);
}

#[test]
fn at_most_the_daily_limit_per_sender() {
    use casegate::outbox::ack::{AckPolicy, Acknowledged, acknowledge};
    use casegate::store::Store;
    use casegate::tracking::Kind;
    let mut store = Store::open_in_memory().unwrap();
    let coordinator = casegate::keyring::generate_coordinator_key("cert@example.test").unwrap();
    let config = casegate::config::OutboxConfig::default();
    let policy = AckPolicy {
        from: "cert@example.test",
        outbox: &config,
        limit_per_day: 2,
    };
    let mut outcomes = Vec::new();
    for i in 0..3 {
        let t = store
            .create_thread(Kind::Report, None, &format!("r{i}"), chrono::Utc::now())
            .unwrap();
        let c = store
            .add_participant(
                t.id,
                "flood@reporter.example",
                "reporter",
                "flood@reporter.example",
                None,
            )
            .unwrap();
        outcomes.push(acknowledge(&mut store, &coordinator, &t, &c, None, &policy).unwrap());
    }
    assert!(matches!(outcomes[0], Acknowledged::Queued(_)));
    assert!(matches!(outcomes[1], Acknowledged::Queued(_)));
    assert!(matches!(outcomes[2], Acknowledged::Limited { limit: 2 }));
}

#[test]
fn an_owed_acknowledgment_is_sent_once_a_key_exists_never_by_a_dry_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // No `init` yet: the report is stored, its acknowledgment is owed.
    let raw = "From: early@reporter.example\r\nTo: cert@example.test\r\nSubject: Early bird\r\n\
Message-ID: <e1@reporter.example>\r\n\r\nText\r\n";
    let o = ingest(dir, "e1.eml", raw);
    assert_eq!(o["outcome"], "routed");
    assert!(
        o["acknowledgment"]
            .as_str()
            .unwrap()
            .contains("no coordinator key"),
        "{o}"
    );
    casegate(dir, &["init"]);
    assert!(outbox(dir).is_empty());
    // A dry run sends nothing, owed or not.
    casegate(
        dir,
        &["route", "--dry-run", dir.join("e1.eml").to_str().unwrap()],
    );
    assert!(outbox(dir).is_empty());
    // The next real ingest pays the debt, exactly once.
    let other = "From: x@y.example\r\nTo: someone@else.example\r\nSubject: hi\r\nMessage-ID: <x1@y>\r\n\r\nx\r\n";
    ingest(dir, "x1.eml", other);
    let rows = outbox(dir);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["address"], "early@reporter.example");
    ingest(dir, "x2.eml", &other.replace("<x1@y>", "<x2@y>"));
    assert_eq!(outbox(dir).len(), 1);
}
