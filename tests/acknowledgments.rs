//! Acknowledgments of new reports, through the binary: encrypted to a key the reporter attached
//! or announced with Autocrypt (gpg decrypts it and verifies the coordinator's signature),
//! signed plaintext naming only the number otherwise (gpg verifies it), never for robots, never
//! for dry runs, and at most the configured number per sender per UTC day (the day rolls over
//! at midnight UTC, shown with an injected clock).

use std::path::Path;

use base64::Engine;

mod outbox_gpg;
mod support;
use outbox_gpg::{GpgHome, first_part_and_signature, pgp_block};
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

/// The bytes of every copy waiting in the outbox (what the sender would hand to SMTP).
fn queued_raw(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let store = casegate::store::Store::open(&dir.join("casegate-data/casegate.sqlite")).unwrap();
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    store
        .due_copies(later, 100)
        .unwrap()
        .into_iter()
        .map(|c| (c.address, c.raw))
        .collect()
}

/// A gpg home that knows the coordinator's public key, as exported by `casegate key export`;
/// returns it with the fingerprint of the coordinator's signing subkey.
fn gpg_knowing_the_coordinator(dir: &Path) -> (GpgHome, String) {
    use sequoia_openpgp::parse::Parse;
    let exported = casegate(dir, &["key", "export"]);
    let cert = sequoia_openpgp::Cert::from_bytes(exported.as_bytes()).unwrap();
    let home = GpgHome::new();
    home.import_cert(&cert);
    let signing = cert
        .keys()
        .with_policy(&sequoia_openpgp::policy::StandardPolicy::new(), None)
        .for_signing()
        .next()
        .unwrap()
        .key()
        .fingerprint()
        .to_hex();
    (home, signing)
}

fn header(raw: &[u8], name: &str) -> Option<String> {
    mail_parser::MessageParser::default()
        .parse(raw)?
        .header_raw(name)
        .map(|v| v.trim().to_string())
}

#[test]
fn attached_key_gets_an_encrypted_acknowledgment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    // The reporter's own gpg makes the key and will read the acknowledgment.
    let (home, coordinator_signing) = gpg_knowing_the_coordinator(dir);
    let cert = home.gen_key("rita@reporter.example", "future-default", "encr", "never");
    let fpr = cert.fingerprint().to_hex();
    let armored = {
        use sequoia_openpgp::serialize::SerializeInto;
        String::from_utf8(cert.armored().to_vec().unwrap()).unwrap()
    };
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
    let number = o["thread"].as_str().unwrap();

    // What will go out: gpg decrypts it with Rita's key and verifies the coordinator.
    let copies = queued_raw(dir);
    assert_eq!(copies.len(), 1);
    let raw = &copies[0].1;
    let outer = String::from_utf8(raw.clone()).unwrap();
    // RFC 3834: marked as automatic mail, so auto-responders do not answer it.
    assert!(
        header(raw, "Auto-Submitted").is_some_and(|v| v.starts_with("auto-")),
        "{outer}"
    );
    assert_eq!(
        header(raw, "In-Reply-To").as_deref(),
        Some("<k1@reporter.example>")
    );
    assert!(
        !outer.contains("RCE in BazCMS"),
        "the report's subject outside encryption"
    );
    let (inner, status) = home.decrypt(pgp_block(&outer, "MESSAGE").as_bytes());
    assert!(status.contains("DECRYPTION_OKAY"), "{status}");
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(
        status.contains(&format!("VALIDSIG {coordinator_signing}")),
        "{status}"
    );
    let inner = mail_parser::MessageParser::default().parse(&inner).unwrap();
    assert_eq!(
        inner.subject(),
        Some(format!("{number}: report received").as_str())
    );
    let body = inner.body_text(0).unwrap();
    assert!(
        body.contains(&format!("tracking number {number}")),
        "{body}"
    );
}

#[test]
fn without_a_key_the_acknowledgment_is_signed_plaintext_naming_only_the_number() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    let (home, coordinator_signing) = gpg_knowing_the_coordinator(dir);
    let raw = "From: Sam <sam@reporter.example>\r\nTo: cert@example.test\r\n\
Subject: Stored XSS in WidgetCMS admin panel\r\nMessage-ID: <p1@reporter.example>\r\n\r\n\
The admin panel echoes the name field.\r\n";
    let o = ingest(dir, "p1.eml", raw);
    let number = o["thread"].as_str().unwrap().to_string();
    assert!(
        o["acknowledgment"]
            .as_str()
            .unwrap()
            .starts_with("queued, unencrypted"),
        "{o}"
    );
    let copies = queued_raw(dir);
    assert_eq!(copies.len(), 1);
    let text = String::from_utf8(copies[0].1.clone()).unwrap();
    assert!(
        !text.contains("WidgetCMS") && !text.contains("admin panel"),
        "{text}"
    );
    assert_eq!(
        header(&copies[0].1, "Subject").as_deref(),
        Some(format!("[{number}] Report received").as_str())
    );
    // gpg checks the signature over the signed part exactly as transmitted (RFC 3156).
    let (first, sig) = first_part_and_signature(&text);
    let status = home.verify(&sig, &first);
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(
        status.contains(&format!("VALIDSIG {coordinator_signing}")),
        "{status}"
    );
    let signed = mail_parser::MessageParser::default()
        .parse(first.as_bytes())
        .unwrap();
    let body = signed.body_text(0).unwrap();
    assert!(
        body.contains(&format!("tracking number {number}")),
        "{body}"
    );
    // Tampering with the signed part breaks it: the check above is a real one.
    let tampered = first.replacen("Content-Type", "Content-type", 1);
    assert_ne!(tampered, first);
    assert!(home.verify(&sig, &tampered).contains("BADSIG"));
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
        outcomes.push(
            acknowledge(
                &mut store,
                &coordinator,
                &t,
                &c,
                None,
                &policy,
                chrono::Utc::now(),
            )
            .unwrap(),
        );
    }
    assert!(matches!(outcomes[0], Acknowledged::Queued(_)));
    assert!(matches!(outcomes[1], Acknowledged::Queued(_)));
    assert!(matches!(outcomes[2], Acknowledged::Limited { limit: 2 }));
}

#[test]
fn an_owed_acknowledgment_is_queued_once_a_key_exists_never_by_a_dry_run() {
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

/// The limit counts acknowledgments per UTC day: it starts over at 00:00:00 UTC, not 24 hours
/// after the first one, and it counts encrypted acknowledgments as well as plaintext ones. The
/// clock is injected (`acknowledge`'s `now`), in a year the wall clock will not reach.
///
/// (Through the pipeline one sender rarely earns two: once their first report is stored they
/// are a participant, and their next mail without a number opens a ticket, not a report. The
/// limit bounds what remains: reports from several threads' contacts, owed acknowledgments
/// repeated after crashes.)
#[test]
fn the_daily_limit_starts_over_at_midnight_utc() {
    use casegate::outbox::ack::{AckPolicy, Acknowledged, acknowledge};
    use casegate::store::{Store, StoredCert};
    use casegate::tracking::Kind;
    use chrono::{DateTime, Utc};
    let mut store = Store::open_in_memory().unwrap();
    let coordinator = casegate::keyring::generate_coordinator_key("cert@example.test").unwrap();
    // Rita has a key (encrypted acknowledgments), Flood has none (signed plaintext).
    let rita = casegate::keyring::generate_coordinator_key("rita@reporter.example").unwrap();
    let rita_fpr = rita.fingerprint().to_hex();
    store
        .merge_cert(&rita_fpr, |_| {
            Ok(StoredCert {
                fingerprint: rita_fpr.clone(),
                public_cert: casegate::keyring::public_bytes(&rita),
                user_ids: vec!["<rita@reporter.example>".into()],
                imported_at: casegate::store::time_text(Utc::now()),
            })
        })
        .unwrap();
    let config = casegate::config::OutboxConfig::default();
    let policy = AckPolicy {
        from: "cert@example.test",
        outbox: &config,
        limit_per_day: 2,
    };
    let at = |t: &str| -> DateTime<Utc> { t.parse().unwrap() };
    let mut ack = |address: &str, when: &str| -> Acknowledged {
        let t = store
            .create_thread(Kind::Report, None, "a report", at(when))
            .unwrap();
        let key = address.starts_with("rita").then_some(rita_fpr.as_str());
        let c = store
            .add_participant(t.id, address, "reporter", address, key)
            .unwrap();
        acknowledge(&mut store, &coordinator, &t, &c, None, &policy, at(when)).unwrap()
    };
    for from in ["flood@reporter.example", "rita@reporter.example"] {
        let encrypted = from.starts_with("rita");
        let queued = |a: Acknowledged| match a {
            Acknowledged::Queued(c) => assert_eq!(c.key_fingerprint.is_some(), encrypted, "{c:?}"),
            Acknowledged::Limited { .. } => panic!("limited for {from}"),
        };
        let limited =
            |a: Acknowledged| assert!(matches!(a, Acknowledged::Limited { limit: 2 }), "{a:?}");
        // Day one, late in the evening UTC.
        queued(ack(from, "2031-03-09T23:58:00Z"));
        queued(ack(from, "2031-03-09T23:59:00Z"));
        limited(ack(from, "2031-03-09T23:59:59Z"));
        // Two seconds later it is another UTC day: 2 again, whatever the last 24 hours held.
        queued(ack(from, "2031-03-10T00:00:01Z"));
        queued(ack(from, "2031-03-10T00:00:30Z"));
        limited(ack(from, "2031-03-10T23:59:59Z"));
    }
}
