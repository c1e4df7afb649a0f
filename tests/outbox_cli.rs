//! `casegate notify` and `casegate outbox release` through the binary, as an analyst uses them:
//! one copy per contact, encrypted to the contact's key (gpg decrypts it and verifies the
//! coordinator); a contact without a key, or whose key has expired, gets a `held` copy with the
//! reason, and `outbox release` keeps it held until a usable key is there; a renewed key
//! releases it, sealed to that key.

mod outbox_gpg;
mod support;

use std::path::Path;
use std::process::Command;

use outbox_gpg::{GpgHome, pgp_block};
use sequoia_openpgp::Cert;
use sequoia_openpgp::serialize::SerializeInto;
use serde_json::Value;
use support::cli::{bin, casegate, json_lines};

const CASE: &str = "VU#409117";

fn write_key(dir: &Path, name: &str, cert: &Cert) -> String {
    let path = dir.join(name);
    std::fs::write(&path, cert.armored().to_vec().unwrap()).unwrap();
    path.display().to_string()
}

/// The outbox row of one address (the only one, or panics).
fn row_of<'a>(rows: &'a [Value], address: &str) -> &'a Value {
    let found: Vec<&Value> = rows.iter().filter(|r| r["address"] == address).collect();
    assert_eq!(found.len(), 1, "{address}: {rows:?}");
    found[0]
}

/// The bytes of the queued copy to `address`, as the sender will hand them to SMTP.
fn queued_bytes(dir: &Path, address: &str) -> Vec<u8> {
    let store = casegate::store::Store::open(&dir.join("casegate-data/casegate.sqlite")).unwrap();
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let mut copies: Vec<Vec<u8>> = store
        .due_copies(later, 100)
        .unwrap()
        .into_iter()
        .filter(|c| c.address == address)
        .map(|c| c.raw)
        .collect();
    assert_eq!(copies.len(), 1, "{address}");
    copies.remove(0)
}

/// gpg (the recipient's own home) decrypts the copy and verifies the coordinator; returns the
/// inner message.
fn read_with_gpg(home: &GpgHome, raw: &[u8]) -> mail_parser::Message<'static> {
    let outer = String::from_utf8(raw.to_vec()).unwrap();
    let (inner, status) = home.decrypt(pgp_block(&outer, "MESSAGE").as_bytes());
    assert!(status.contains("DECRYPTION_OKAY"), "{status}");
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(
        status.contains("casegate coordinator <cert@example.test>"),
        "{status}"
    );
    mail_parser::MessageParser::default()
        .parse(&inner)
        .unwrap()
        .into_owned()
}

#[test]
fn notify_and_release_through_the_binary_with_missing_and_expired_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    let coordinator = {
        use sequoia_openpgp::parse::Parse;
        Cert::from_bytes(casegate(dir, &["key", "export"]).as_bytes()).unwrap()
    };
    casegate(
        dir,
        &[
            "open",
            "case",
            "--title",
            "Buffer overflow in FooRouter",
            "--number",
            CASE,
        ],
    );
    // VendorA: a good key. VendorB: no key. VendorC: a key that expired two days ago.
    let home_a = GpgHome::new();
    let cert_a = home_a.gen_key("vendor@example.test", "future-default", "encr", "never");
    home_a.import_cert(&coordinator);
    let home_c = GpgHome::new();
    let three_days_ago = (chrono::Utc::now() - chrono::Duration::days(3))
        .format("%Y%m%dT%H%M%S")
        .to_string();
    let (_, err, ok) = home_c.run(
        &[
            "--faked-system-time",
            &three_days_ago,
            "--quick-gen-key",
            "Test <vendor3@example.test>",
            "future-default",
            "default",
            "1d",
        ],
        b"",
    );
    assert!(ok, "{err}");
    let cert_c = home_c.export("vendor3@example.test");
    home_c.import_cert(&coordinator);
    let fpr_c = cert_c.fingerprint().to_hex();
    let key_a = write_key(dir, "a.asc", &cert_a);
    let key_c = write_key(dir, "c.asc", &cert_c);
    for (org, email, key) in [
        ("VendorA", "vendor@example.test", Some(&key_a)),
        ("VendorB", "psirt@example.test", None),
        ("VendorC", "vendor3@example.test", Some(&key_c)),
    ] {
        let mut args = vec!["participant", "add", CASE, "--org", org, "--email", email];
        if let Some(k) = key {
            args.extend(["--key", k.as_str()]);
        }
        casegate(dir, &args);
    }

    std::fs::write(
        dir.join("body.txt"),
        "Advisory draft: the name parameter overflows.\n",
    )
    .unwrap();
    let queued = json_lines(&casegate(
        dir,
        &[
            "notify",
            CASE,
            "--body",
            "body.txt",
            "--subject",
            "Buffer overflow",
            "--json",
        ],
    ));
    assert_eq!(queued.len(), 3, "{queued:?}");
    let a = row_of(&queued, "vendor@example.test");
    assert_eq!(a["status"], "queued", "{a}");
    assert_eq!(a["key_fingerprint"], cert_a.fingerprint().to_hex().as_str());
    assert!(a["message_id"].as_str().is_some(), "{a}");
    let b = row_of(&queued, "psirt@example.test");
    assert_eq!(b["status"], "held", "{b}");
    assert_eq!(
        b["reason"],
        "no valid encryption key: no key bound to this contact"
    );
    let c = row_of(&queued, "vendor3@example.test");
    assert_eq!(c["status"], "held", "{c}");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("no valid encryption key: key {fpr_c}"))
            && reason.contains("expired"),
        "{c}"
    );
    // What VendorA will receive: gpg decrypts it and verifies the coordinator.
    let inner = read_with_gpg(&home_a, &queued_bytes(dir, "vendor@example.test"));
    assert_eq!(inner.subject(), Some("[VU#409117] Buffer overflow"));
    assert!(
        inner
            .body_text(0)
            .unwrap()
            .contains("the name parameter overflows")
    );

    // One organisation only (matched without regard to case), and a name nobody has.
    let only_b = json_lines(&casegate(
        dir,
        &[
            "notify", CASE, "--body", "body.txt", "--to", "vendorb", "--json",
        ],
    ));
    assert_eq!(only_b.len(), 1, "{only_b:?}");
    assert_eq!(only_b[0]["address"], "psirt@example.test");
    let out = Command::new(bin())
        .args(["notify", CASE, "--body", "body.txt", "--to", "NoSuchOrg"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("NoSuchOrg") && err.contains("casegate show VU#409117"),
        "{err}"
    );
    assert_eq!(
        json_lines(&casegate(dir, &["outbox", "list", "--json"])).len(),
        4
    );

    // Release with the key still expired: nothing is sealed, the reason stays the expiry.
    let released = json_lines(&casegate(dir, &["outbox", "release", "--json"]));
    assert_eq!(released.len(), 3, "every held copy looked at: {released:?}");
    assert!(
        released.iter().all(|r| r["status"] == "held"),
        "{released:?}"
    );
    let c = row_of(&released, "vendor3@example.test");
    assert!(c["reason"].as_str().unwrap().contains("expired"), "{c}");
    let rows = json_lines(&casegate(
        dir,
        &["outbox", "list", "--status", "held", "--json"],
    ));
    assert_eq!(rows.len(), 3);
    let out = Command::new(bin())
        .args(["outbox", "release", "VU#999999"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "an unknown thread is an error");

    // VendorC renews its key (same fingerprint, new expiry); importing it releases the copy.
    for extra in [&[][..], &["*"][..]] {
        let mut args = vec!["--quick-set-expire", fpr_c.as_str(), "1y"];
        args.extend(extra);
        let (_, err, ok) = home_c.run(&args, b"");
        assert!(ok, "{err}");
    }
    let renewed = write_key(dir, "c2.asc", &home_c.export("vendor3@example.test"));
    let out = Command::new(bin())
        .args(["key", "import", &renewed])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("released held copy: vendor3@example.test (VendorC): queued"),
        "{err}"
    );
    let rows = json_lines(&casegate(dir, &["outbox", "list", "--json"]));
    let c = row_of(&rows, "vendor3@example.test");
    assert_eq!(c["status"], "queued", "{c}");
    assert_eq!(c["key_fingerprint"], fpr_c.as_str());
    let inner = read_with_gpg(&home_c, &queued_bytes(dir, "vendor3@example.test"));
    assert_eq!(inner.subject(), Some("[VU#409117] Buffer overflow"));
    assert!(
        inner
            .body_text(0)
            .unwrap()
            .contains("the name parameter overflows")
    );
    // Only VendorB's copies are left to release, and stay held.
    let released = json_lines(&casegate(dir, &["outbox", "release", CASE, "--json"]));
    assert_eq!(released.len(), 2, "{released:?}");
    assert!(
        released
            .iter()
            .all(|r| r["address"] == "psirt@example.test" && r["status"] == "held"),
        "{released:?}"
    );
}
