//! `read` and `quarantine retry` on OpenPGP mail made by real gpg: decrypted on demand with
//! the coordinator key (and never stored decrypted), the signer named as the participant its
//! key is bound to, a partial signature reported as partial with what it covers, PGP/MIME
//! machinery not listed as attachments, and a message quarantined while the coordinator key
//! was missing read after the key is restored.

mod support;
#[path = "support_gpg/mod.rs"]
mod support_gpg;

use serde_json::Value;
use support::cli::Desk;
use support_gpg::*;

const CASE: &str = "VU#409117";

/// A data dir whose coordinator key gpg knows, with case CASE and the vendor (FooCorp) and
/// reporter as participants bound to their gpg keys.
fn setup() -> (Desk, String) {
    let f = fixture();
    let cg = Desk::empty();
    let coordinator = cg.ok(&["init"]).trim().to_string();
    f.gpg.import(cg.ok(&["key", "export"]).as_bytes());
    cg.ok(&[
        "open",
        "case",
        "--title",
        "FooCorp router RCE",
        "--number",
        CASE,
    ]);
    for (org, who, fpr, role) in [
        ("FooCorp", VENDOR, &f.vendor, "vendor"),
        ("Reporter", REPORTER, &f.reporter, "reporter"),
    ] {
        let key = cg.write(
            &format!("{role}.asc"),
            &f.gpg.run(&["--armor", "--export", fpr], None),
        );
        cg.ok(&[
            "participant",
            "add",
            CASE,
            "--org",
            org,
            "--email",
            who,
            "--key",
            &key,
            "--role",
            role,
        ]);
    }
    (cg, coordinator)
}

/// The one `--json` line a command prints.
fn one(cg: &Desk, args: &[&str]) -> Value {
    let mut lines = cg.json(args);
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines.remove(0)
}

/// An inner entity with protected headers: a secret statement and an attached proof of concept.
fn statement_with_attachment(secret: &str, poc: &str) -> String {
    format!(
        "Content-Type: multipart/mixed; boundary=\"in\"; protected-headers=\"v1\"\r\n\
         Subject: [{CASE}] statement\r\n\r\n\
         --in\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{secret}\r\n\
         --in\r\nContent-Type: text/x-python; name=\"poc.py\"\r\n\
         Content-Disposition: attachment; filename=\"poc.py\"\r\n\r\n{poc}\r\n--in--\r\n"
    )
}

#[test]
fn read_decrypts_on_demand_names_the_signer_and_stores_nothing_decrypted() {
    let f = fixture();
    let (cg, coordinator) = setup();
    let secret = "Affected: FooRouter 2.0 to 2.0.7; unique-marker-4711.";
    let poc = "print('exploit-body-0815')";
    let inner = statement_with_attachment(secret, poc);
    let ct = f.gpg.run(
        &[
            "--armor",
            "--encrypt",
            "-r",
            &coordinator,
            "--sign",
            "-u",
            &f.vendor,
        ],
        Some(inner.as_bytes()),
    );
    let raw = format!("{}{}", headers(VENDOR, "...", "enc1"), pgp_mime(&ct));
    let o = cg.ingest("enc1.eml", raw.as_bytes());
    assert_eq!(o["outcome"], "routed", "{o}");
    assert_eq!(o["signature"], "good", "{o}");

    let v = one(&cg, &["read", "enc1@test.example", "--json"]);
    let d = &v["verdicts"];
    assert_eq!(d["encrypted"], true);
    assert_eq!(d["signature"], "good");
    assert_eq!(d["signer"], f.vendor.as_str());
    assert_eq!(d["signature_covers"], "whole");
    assert_eq!(d["signer_participant"]["org"], "FooCorp");
    assert_eq!(d["signer_participant"]["role"], "vendor");
    assert_eq!(d["signer_participant"]["address"], VENDOR);
    assert_eq!(v["protected_subject"], format!("[{CASE}] statement"));
    assert!(v["text"].as_str().unwrap().contains(secret), "{v}");
    let atts = v["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 1, "{atts:?}");
    assert_eq!(atts[0]["name"], "poc.py");
    let notes = v["notes"].to_string();
    assert!(notes.contains("decrypted"), "{notes}");
    let text = cg.ok(&["read", "enc1@test.example"]);
    assert!(
        text.contains("signature: good by") && text.contains("(FooCorp, vendor, "),
        "{text}"
    );

    let id = v["message"]["short_id"].as_str().unwrap().to_string();
    let out = cg.work.join("poc.py");
    cg.ok(&[
        "attachment",
        "save",
        &id,
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim_end(), poc);

    // Reading decrypted it twice; the store still has only the ciphertext.
    let db = cg.store_bytes();
    for plain in [secret.as_bytes(), poc.as_bytes()] {
        assert!(
            !db.windows(plain.len()).any(|w| w == plain),
            "decrypted text found in the store"
        );
    }
}

#[test]
fn read_says_what_a_partial_signature_covers() {
    let f = fixture();
    let (cg, _) = setup();
    let part = "Content-Type: text/plain; charset=utf-8\r\n\r\nGenuine vendor statement.\r\n";
    let sig = f.gpg.run(
        &["--armor", "--detach-sign", "-u", &f.vendor],
        Some(part.as_bytes()),
    );
    let raw = format!(
        "{}Content-Type: multipart/mixed; boundary=\"w\"\r\n\r\n--w\r\n{}\r\n--w\r\n\
         Content-Type: text/plain\r\n\r\nUnsigned addition: the fix is in 9.9.\r\n--w--\r\n",
        headers(VENDOR, &format!("Re: {CASE}"), "part1"),
        signed_entity(part, &sig)
    );
    let o = cg.ingest("part1.eml", raw.as_bytes());
    assert_eq!(o["signature"], "none", "{o}");

    let v = one(&cg, &["read", "part1@test.example", "--json"]);
    let d = &v["verdicts"];
    assert_eq!(d["signature"], "none");
    assert_eq!(d["signature_covers"], "partial");
    assert!(d["signer_participant"].is_null());
    let reason = d["signature_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("partial:")
            && reason.contains("part 1 of 2")
            && reason.contains(&f.vendor),
        "{reason}"
    );
    // Both parts are shown, so the reader sees what the signature does not cover.
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("Genuine vendor statement."), "{text}");
    assert!(text.contains("the fix is in 9.9"), "{text}");
    // The detached signature is machinery, not an attachment.
    assert!(v["attachments"].as_array().unwrap().is_empty(), "{v}");
    let shown = cg.ok(&["read", "part1@test.example"]);
    assert!(shown.contains("covers only part of it"), "{shown}");

    // A whole-message PGP/MIME signature over text and an attachment: good, covers all, and
    // only the real attachment is listed.
    let part = "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\n\
                Signed statement with log.\r\n--m\r\nContent-Type: text/plain; name=\"log.txt\"\r\n\
                Content-Disposition: attachment; filename=\"log.txt\"\r\n\r\nline 1\r\n--m--";
    let sig = f.gpg.run(
        &["--armor", "--detach-sign", "-u", &f.vendor],
        Some(part.as_bytes()),
    );
    let raw = format!(
        "{}{}",
        headers(VENDOR, &format!("Re: {CASE} log"), "whole1"),
        signed_entity(part, &sig)
    );
    assert_eq!(cg.ingest("whole1.eml", raw.as_bytes())["signature"], "good");
    let v = one(&cg, &["read", "whole1@test.example", "--json"]);
    assert_eq!(v["verdicts"]["signature_covers"], "whole");
    let atts = v["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 1, "{atts:?}");
    assert_eq!(atts[0]["name"], "log.txt");
}

#[test]
fn a_message_quarantined_without_the_coordinator_key_is_read_after_the_key_is_restored() {
    let f = fixture();
    let (cg, coordinator) = setup();
    let key = cg.data.join("coordinator.key");
    let away = cg.data.join("coordinator.key.backup");
    std::fs::rename(&key, &away).unwrap();

    let secret = "Patch ETA: 14 days; marker-9931.";
    let ct = f.gpg.run(
        &[
            "--armor",
            "--encrypt",
            "-r",
            &coordinator,
            "--sign",
            "-u",
            &f.vendor,
        ],
        Some(
            format!(
                "Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\r\n\
                 Subject: [{CASE}] ETA\r\n\r\n{secret}\r\n"
            )
            .as_bytes(),
        ),
    );
    let raw = format!("{}{}", headers(VENDOR, "...", "q1"), pgp_mime(&ct));
    let o = cg.ingest("q1.eml", raw.as_bytes());
    assert_eq!(o["outcome"], "quarantine", "{o}");
    assert!(
        o["reason"]
            .as_str()
            .unwrap()
            .contains("no coordinator secret key"),
        "{o}"
    );

    let listed: Vec<Value> = cg
        .ok(&["quarantine", "list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    let id = listed[0]["short_id"].as_str().unwrap().to_string();
    let shown = cg.ok(&["quarantine", "show", &id]);
    assert!(
        shown.contains("QUARANTINED") && shown.contains("no coordinator secret key"),
        "{shown}"
    );
    assert!(shown.contains("BEGIN PGP MESSAGE"), "{shown}");
    let exact = cg.run(&["quarantine", "show", &id, "--raw"]);
    assert_eq!(exact.stdout, raw.as_bytes());

    // Retried while the key is still missing: it stays, exit 1.
    let still = cg.run(&["quarantine", "retry", &id]);
    assert_eq!(still.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&still.stderr).contains("still in quarantine"));

    std::fs::rename(&away, &key).unwrap();
    let r = one(&cg, &["quarantine", "retry", &id, "--json"]);
    assert_eq!(r["released"], true, "{r}");
    assert_eq!(r["outcome"], "routed", "{r}");
    assert_eq!(r["thread"], CASE, "{r}");
    assert_eq!(r["encrypted"], true, "{r}");
    assert_eq!(r["signature"], "good", "{r}");
    assert_eq!(r["signer"], f.vendor.as_str(), "{r}");
    assert!(cg.ok(&["quarantine", "list", "--json"]).trim().is_empty());

    // It is now an ordinary message of the case, with its new verdicts.
    let case = one(&cg, &["show", CASE, "--json"]);
    let m = case["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["short_id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(m["outcome"], "routed");
    assert_eq!(m["encrypted"], true);
    assert_eq!(m["subject"], format!("[{CASE}] ETA"));
    let v = one(&cg, &["read", &id, "--json"]);
    assert!(v["text"].as_str().unwrap().contains(secret));
    assert!(v["raw"].is_null());
    let trail = cg.ok(&["audit", CASE, "--json"]);
    assert!(trail.contains("quarantine retry"), "{trail}");
}
