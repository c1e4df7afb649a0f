//! The analysts' commands through the binary, without gpg: `read` (plain, HTML-only,
//! multipart with attachments), `attachment save`, short ids from `show`/`triage list`/
//! `quarantine list`, `quarantine show`/`retry` after a configuration fix, the audit trail of
//! every changing command, and API tokens (stored as hashes only).

use std::path::Path;

use serde_json::Value;

mod support;
use support::cli::{Desk, json_lines};

const CASE: &str = "VU#409117";
const VENDOR: &str = "psirt@foocorp.example";

/// The case with the vendor as participant (no key).
trait CaseDesk {
    fn case_with_vendor(&self);
    fn short_id_in_show(&self, subject: &str) -> String;
}

impl CaseDesk for Desk {
    fn case_with_vendor(&self) {
        self.ok(&["open", "case", "--title", "Router RCE", "--number", CASE]);
        self.ok(&[
            "participant",
            "add",
            CASE,
            "--org",
            "FooCorp",
            "--email",
            VENDOR,
        ]);
    }

    /// The short id `show` prints for the message with this subject.
    fn short_id_in_show(&self, subject: &str) -> String {
        let shown = self.json(&["show", CASE, "--json"]);
        let m = shown[0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["subject"] == subject)
            .unwrap_or_else(|| panic!("no message {subject:?} in {}", shown[0]));
        let id = m["short_id"].as_str().unwrap().to_string();
        // The text listing prints the same id.
        assert!(self.ok(&["show", CASE]).contains(&id));
        id
    }
}

fn mail(subject: &str, id: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "From: FooCorp PSIRT <{VENDOR}>\r\nTo: cert@example.test\r\nSubject: {subject}\r\n\
Message-ID: <{id}@foocorp.example>\r\nDate: Mon, 24 Nov 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: {content_type}\r\n\r\n{body}"
    )
    .into_bytes()
}

#[test]
fn read_shows_plain_html_and_attachments_and_saves_attachments_exactly() {
    let d = Desk::new();
    d.case_with_vendor();

    // Plain text, with an escape sequence a terminal would obey.
    let plain = mail(
        &format!("Re: {CASE} status"),
        "plain",
        "text/plain; charset=utf-8",
        "We confirm the bug.\r\n\x1b[2J\x1b]0;pwned\x07Fixed in 2.1.\r\n",
    );
    assert_eq!(d.ingest("plain.eml", &plain)["outcome"], "routed");
    let id = d.short_id_in_show(&format!("Re: {CASE} status"));
    let v = &d.json(&["read", &id, "--json"])[0];
    assert_eq!(v["message"]["short_id"], id.as_str());
    assert_eq!(v["message"]["thread"], CASE);
    assert_eq!(v["verdicts"]["encrypted"], false);
    assert_eq!(v["verdicts"]["signature"], "none");
    assert_eq!(v["verdicts"]["signature_covers"], "none");
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("We confirm the bug.") && text.contains("Fixed in 2.1."));
    assert!(v["attachments"].as_array().unwrap().is_empty());
    assert!(v["raw"].is_null());
    let headers = v["headers"].as_array().unwrap();
    assert!(
        headers
            .iter()
            .any(|h| h["name"] == "From" && h["value"] == format!("FooCorp PSIRT <{VENDOR}>")),
        "{headers:?}"
    );
    // By Message-ID, with or without brackets, the same message; the text form never passes
    // a control character to the terminal.
    for by in ["plain@foocorp.example", "<plain@foocorp.example>"] {
        let shown = d.ok(&["read", by]);
        assert!(shown.contains("Fixed in 2.1."), "{shown}");
        assert!(
            !shown.contains('\x1b') && !shown.contains('\x07'),
            "{shown}"
        );
        assert!(shown.contains(&format!("message {id}")), "{shown}");
    }

    // HTML only: shown as text, never rendered; remote content is not fetched (no network
    // here anyway) and nothing of the markup or the script survives.
    let html = mail(
        &format!("Re: {CASE} advisory"),
        "html",
        "text/html; charset=utf-8",
        "<html><head><style>p{color:red}</style><script>alert('x')</script></head><body>\
<h1>Advisory</h1><p>Upgrade to <b>2.1</b>.</p><img src=\"http://tracker.example/p.gif\">\
<table><tr><td>CVE-2025-0001</td><td>9.8</td></tr></table>\
<a href=\"https://foocorp.example/psa\">details</a></body></html>",
    );
    d.ingest("html.eml", &html);
    let id = d.short_id_in_show(&format!("Re: {CASE} advisory"));
    let v = &d.json(&["read", &id, "--json"])[0];
    assert_eq!(v["text_from_html"], true);
    assert_eq!(v["has_html"], true);
    let text = v["text"].as_str().unwrap();
    for wanted in [
        "Advisory",
        "Upgrade to",
        "2.1",
        "CVE-2025-0001",
        "9.8",
        "details",
    ] {
        assert!(text.contains(wanted), "{wanted:?} missing from {text}");
    }
    for unwanted in ["<p>", "<b>", "alert(", "color:red", "<img"] {
        assert!(!text.contains(unwanted), "{unwanted:?} in {text}");
    }
    assert!(d.ok(&["read", &id]).contains("converted from HTML"));

    // Multipart with attachments: numbered in order; a file name from the mail is only shown.
    let blob: Vec<u8> = (0u8..=255).cycle().take(3000).collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let multipart = mail(
        &format!("Re: {CASE} logs"),
        "att",
        "multipart/mixed; boundary=\"b1\"",
        &format!(
            "--b1\r\nContent-Type: text/plain\r\n\r\nTwo files attached.\r\n\
--b1\r\nContent-Type: text/plain; charset=iso-8859-1; name=\"notes.txt\"\r\n\
Content-Disposition: attachment; filename=\"../../outside.txt\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve=0D=0A\r\n\
--b1\r\nContent-Type: application/octet-stream; name=\"crash.bin\"\r\n\
Content-Disposition: attachment; filename=\"crash.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
{b64}\r\n--b1--\r\n"
        ),
    );
    d.ingest("att.eml", &multipart);
    let id = d.short_id_in_show(&format!("Re: {CASE} logs"));
    let v = &d.json(&["read", &id, "--json"])[0];
    let atts = v["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2, "{atts:?}");
    assert_eq!(atts[0]["n"], 1);
    assert_eq!(atts[0]["name"], "../../outside.txt");
    assert_eq!(atts[1]["n"], 2);
    assert_eq!(atts[1]["name"], "crash.bin");
    assert_eq!(atts[1]["content_type"], "application/octet-stream");
    assert_eq!(atts[1]["size"], 3000);
    let listing = d.ok(&["read", &id]);
    assert!(
        listing.contains("1. ../../outside.txt") && listing.contains("2. crash.bin"),
        "{listing}"
    );

    let work = d.work.clone();
    let out = work.join("saved.bin");
    let out_s = out.to_str().unwrap();
    d.ok(&["attachment", "save", &id, "2", "--out", out_s]);
    assert_eq!(std::fs::read(&out).unwrap(), blob);
    // Byte for byte as attached: no charset conversion of a text attachment.
    let notes = work.join("notes");
    d.ok(&[
        "attachment",
        "save",
        &id,
        "1",
        "--out",
        notes.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&notes).unwrap(), b"na\xefve\r\n");
    for up in ["outside.txt", "../outside.txt", "../../outside.txt"] {
        assert!(!d.work.join(up).exists(), "{up} was written");
    }
    // An existing file is not overwritten without --force.
    std::fs::write(&out, b"keep me").unwrap();
    let err = d.fails(&["attachment", "save", &id, "2", "--out", out_s]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let saved = d.json(&[
        "attachment",
        "save",
        &id,
        "2",
        "--out",
        out_s,
        "--force",
        "--json",
    ]);
    assert_eq!(saved[0]["size"], 3000);
    assert_eq!(std::fs::read(&out).unwrap(), blob);
    // No such attachment, no such message: errors that say where to look.
    let err = d.fails(&["attachment", "save", &id, "3", "--out", out_s]);
    assert!(
        err.contains("2 attachment") && err.contains("casegate read"),
        "{err}"
    );
    let err = d.fails(&["read", "<nobody@nowhere.example>"]);
    assert!(err.contains("short ids"), "{err}");
}

#[test]
fn triage_and_quarantine_print_short_ids_that_read_and_assign_take() {
    let d = Desk::new();
    d.case_with_vendor();
    let stranger = format!(
        "From: someone@elsewhere.example\r\nTo: cert@example.test\r\nSubject: Re: {CASE} me too\r\n\
Message-ID: <t1@elsewhere.example>\r\n\r\nHello\r\n"
    );
    assert_eq!(d.ingest("t1.eml", stranger.as_bytes())["outcome"], "triage");
    let waiting = d.json(&["triage", "list", "--json"]);
    let id = waiting[0]["short_id"].as_str().unwrap().to_string();
    assert!(d.ok(&["triage", "list"]).starts_with(&id));
    let v = &d.json(&["read", &id, "--json"])[0];
    assert_eq!(v["message"]["outcome"], "triage");
    assert!(v["text"].as_str().unwrap().contains("Hello"));
    let assigned = d.json(&["triage", "assign", &id, CASE, "--json"]);
    assert_eq!(assigned[0]["thread"], CASE);
    assert_eq!(assigned[0]["assigned_by"], "ann");

    // Unparseable mail: quarantined; its short id reads it raw with the reason.
    let junk = b"\x00\x01 not mail at all \xff\xfe\r\n".to_vec();
    assert_eq!(d.ingest("junk.eml", &junk)["outcome"], "quarantine");
    let q = d.json(&["quarantine", "list", "--json"]);
    let qid = q[0]["short_id"].as_str().unwrap().to_string();
    assert!(d.ok(&["quarantine", "list"]).contains(&qid));
    for cmd in [["quarantine", "show"], ["read", ""]] {
        let args: Vec<&str> = cmd
            .iter()
            .copied()
            .filter(|a| !a.is_empty())
            .chain([qid.as_str(), "--json"])
            .collect();
        let v = &d.json(&args)[0];
        assert_eq!(v["message"]["outcome"], "quarantine");
        assert!(
            v["message"]["reason"]
                .as_str()
                .unwrap()
                .contains("cannot parse")
        );
        assert!(
            v["raw"]["text"]
                .as_str()
                .unwrap()
                .contains("not mail at all")
        );
        assert_eq!(v["raw"]["size"], junk.len());
    }
    let out = d.run(&["quarantine", "show", &qid, "--raw"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, junk);
    // A message that is not quarantined is not found there.
    let err = d.fails(&["quarantine", "show", &id]);
    assert!(err.contains("quarantine list"), "{err}");
    // Retrying what cannot be fixed: still quarantined, exit 1, the reason says why.
    let err = d.fails(&["quarantine", "retry", &qid]);
    assert!(
        err.contains("still in quarantine") && err.contains("cannot parse"),
        "{err}"
    );
    assert_eq!(d.json(&["quarantine", "list", "--json"]).len(), 1);
}

#[test]
fn a_message_quarantined_for_its_size_is_retried_after_the_limit_is_raised() {
    let d = Desk::new();
    let small = d.write("small.toml", b"[policy]\nmax_message_bytes = 200\n");
    let small = small.as_str();
    let report = format!(
        "From: Rita <rita@reporter.example>\r\nTo: cert@example.test\r\nSubject: RCE in BazCMS\r\n\
Message-ID: <big@reporter.example>\r\n\r\n{}\r\n",
        "Steps to reproduce. ".repeat(20)
    );
    d.write("big.eml", report.as_bytes());
    let o = &d.json(&["--config", small, "ingest", "--json", "big.eml"])[0];
    assert_eq!(o["outcome"], "quarantine");
    assert!(
        o["reason"].as_str().unwrap().contains("max_message_bytes"),
        "{o}"
    );
    let qid = d.json(&["quarantine", "list", "--json"])[0]["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Still too large under the same settings: it stays.
    d.fails(&["--config", small, "quarantine", "retry", &qid]);
    // With the default limit it is a new report from an unknown sender: it leaves quarantine,
    // opens a report with the sender as participant, and is acknowledged.
    let r = &d.json(&["quarantine", "retry", &qid, "--json"])[0];
    assert_eq!(r["released"], true, "{r}");
    assert_eq!(r["outcome"], "routed");
    assert!(
        r["previous_reason"]
            .as_str()
            .unwrap()
            .contains("max_message_bytes")
    );
    let number = r["thread"].as_str().unwrap().to_string();
    assert!(number.starts_with("VRF#"), "{number}");
    assert!(
        r["acknowledgment"].as_str().unwrap().starts_with("queued"),
        "{r}"
    );
    assert!(d.json(&["quarantine", "list", "--json"]).is_empty());
    let shown = &d.json(&["show", &number, "--json"])[0];
    assert_eq!(shown["messages"].as_array().unwrap().len(), 1);
    assert_eq!(shown["participants"][0]["address"], "rita@reporter.example");
    let outbox = d.json(&["outbox", "list", "--json"]);
    assert_eq!(outbox.len(), 1, "one acknowledgment");
    assert_eq!(outbox[0]["address"], "rita@reporter.example");
    // Once out of quarantine, a second retry is refused with where to look.
    let err = d.fails(&["quarantine", "retry", &qid]);
    assert!(err.contains("quarantine list"), "{err}");
}

/// A public key made with casegate's own generator, written to `dir/name`.
fn key_file(dir: &Path, name: &str, address: &str) -> (String, String) {
    let cert = casegate::keyring::generate_coordinator_key(address).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, casegate::keyring::armored_public(&cert).unwrap()).unwrap();
    (cert.fingerprint().to_hex(), path.display().to_string())
}

#[test]
fn every_changing_command_leaves_one_audit_record_and_reads_leave_none() {
    let d = Desk::empty();
    let audit = || d.json(&["audit", "--json"]);
    let count = |before: usize, action: &str| {
        let all = audit();
        let new: Vec<&Value> = all[before..].iter().collect();
        assert!(
            new.iter().any(|e| e["action"] == action),
            "no `{action}` record in {new:?}"
        );
        all.len()
    };
    d.ok(&["init"]);
    let mut n = count(0, "init");
    d.ok(&["init"]); // nothing new made
    assert_eq!(audit().len(), n);

    d.ok(&[
        "open",
        "report",
        "--title",
        "r",
        "--number",
        "VRF#25-11-BKQTZ",
    ]);
    n = count(n, "open");
    d.ok(&["promote", "VRF#25-11-BKQTZ", "--to", CASE]);
    n = count(n, "promote");
    d.ok(&["set", CASE, "--publication-date", "2026-03-01"]);
    n = count(n, "set");
    d.ok(&[
        "participant",
        "add",
        CASE,
        "--org",
        "FooCorp",
        "--email",
        VENDOR,
    ]);
    n = count(n, "participant add");
    let body = d.write("notice.txt", b"Please confirm.\n");
    let copies = d.json(&["notify", CASE, "--body", &body, "--json"]);
    assert_eq!(copies[0]["status"], "held");
    n = count(n, "notify");
    let (_, other_key) = key_file(&d.work, "other.asc", "someone@other.example");
    d.ok(&["key", "import", &other_key]);
    n = count(n, "key import");
    assert_eq!(
        audit().len(),
        n,
        "nothing was released, so no release record"
    );
    // The vendor's key: bound, and the held copy goes out (that release is audited too).
    let (_, vendor_key) = key_file(&d.work, "vendor.asc", VENDOR);
    d.ok(&[
        "participant",
        "add",
        CASE,
        "--org",
        "FooCorp",
        "--email",
        VENDOR,
        "--key",
        &vendor_key,
    ]);
    let all = audit();
    assert_eq!(all.len(), n + 2, "{all:?}");
    assert_eq!(all[n]["action"], "participant add");
    assert_eq!(all[n + 1]["action"], "outbox release");
    assert_eq!(all[n + 1]["thread"], CASE);
    n = all.len();
    d.ok(&["outbox", "release"]); // nothing held any more: no change, no record
    assert_eq!(audit().len(), n);

    let stranger = format!(
        "From: someone@elsewhere.example\r\nTo: cert@example.test\r\nSubject: Re: {CASE}\r\n\
Message-ID: <s1@elsewhere.example>\r\n\r\nHi\r\n"
    );
    d.ingest("s1.eml", stranger.as_bytes());
    n = count(n, "ingest");
    d.ok(&[
        "triage",
        "assign",
        "s1@elsewhere.example",
        CASE,
        "--by",
        "bob",
    ]);
    n = count(n, "triage assign");
    d.ingest("junk.eml", b"\0junk");
    n = count(n, "ingest");
    let qid = d.json(&["quarantine", "list", "--json"])[0]["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    d.fails(&["quarantine", "retry", &qid]);
    n = count(n, "quarantine retry");
    d.ok(&["token", "add", "rita", "--read-only"]);
    n = count(n, "token add");
    d.ok(&["token", "revoke", "rita"]);
    n = count(n, "token revoke");

    // Reads change nothing and record nothing.
    for read in [
        vec!["show", CASE],
        vec!["list"],
        vec!["triage", "list", "--all"],
        vec!["quarantine", "list"],
        vec!["quarantine", "show", &qid],
        vec!["read", "s1@elsewhere.example"],
        vec!["outbox", "list", "--attempts"],
        vec!["key", "list"],
        vec!["participant", "list", CASE],
        vec!["token", "list"],
        vec!["status"],
        vec!["audit", CASE],
    ] {
        d.ok(&read);
    }
    let all = audit();
    assert_eq!(all.len(), n);

    // Who (the OS user), when (UTC, RFC 3339), what, which thread and message.
    for e in &all {
        assert_eq!(e["actor"], "cli:ann", "{e}");
        let at = e["at"].as_str().unwrap();
        assert!(
            at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(at).is_ok(),
            "{at}"
        );
    }
    let assign = all.iter().find(|e| e["action"] == "triage assign").unwrap();
    assert_eq!(assign["thread"], CASE);
    assert_eq!(assign["message_id"], "<s1@elsewhere.example>");
    assert!(
        assign["detail"].as_str().unwrap().contains("bob"),
        "{assign}"
    );
    // One thread's trail includes the report it was promoted from, and nothing else.
    let case: Vec<String> = d
        .json(&["audit", CASE, "--json"])
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        case,
        [
            "open",
            "promote",
            "set",
            "participant add",
            "notify",
            "participant add",
            "outbox release",
            "triage assign"
        ]
    );
    let newest = d.json(&["audit", "--limit", "2", "--json"]);
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[1]["action"], "token revoke");
    assert!(d.ok(&["audit"]).contains("cli:ann triage assign VU#409117"));
}

#[test]
fn tokens_are_shown_once_and_stored_only_as_hashes() {
    let d = Desk::new();
    let token = d.ok(&["token", "add", "rita"]).trim().to_string();
    assert!(token.starts_with("cgt_") && token.len() > 40, "{token}");
    let ro = &d.json(&["token", "add", "sam", "--read-only", "--json"])[0];
    let ro_token = ro["token"].as_str().unwrap().to_string();
    assert_eq!(ro["read_only"], true);
    assert_ne!(token, ro_token);

    let listed = d.ok(&["token", "list", "--json"]);
    let rows = json_lines(&listed);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "rita");
    assert_eq!(rows[0]["read_only"], false);
    assert!(rows[0]["last_used_at"].is_null());
    assert!(!listed.contains(&token) && !listed.contains(&ro_token));
    let text = d.ok(&["token", "list"]);
    assert!(text.contains("rita") && text.contains("never"), "{text}");

    // The store's bytes (main file and write-ahead log) hold each token's SHA-256, never the
    // token — nor its random part on its own.
    let db = d.store_bytes();
    let contains = |needle: &[u8]| db.windows(needle.len()).any(|w| w == needle);
    for t in [&token, &ro_token] {
        assert!(!contains(t.as_bytes()), "token stored in clear");
        assert!(!contains(&t.as_bytes()[4..]), "token's random part stored");
        use sha2::Digest;
        let hash = hex::encode(sha2::Sha256::digest(t.as_bytes()));
        assert!(contains(hash.as_bytes()), "hash of the token not stored");
    }

    let err = d.fails(&["token", "add", "rita"]);
    assert!(err.contains("token revoke rita"), "{err}");
    let err = d.fails(&["token", "add", "no spaces"]);
    assert!(err.contains("letters, digits"), "{err}");
    d.ok(&["token", "revoke", "rita"]);
    assert_eq!(d.json(&["token", "list", "--json"]).len(), 1);
    let err = d.fails(&["token", "revoke", "rita"]);
    assert!(err.contains("token list"), "{err}");
}
