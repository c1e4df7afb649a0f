//! Keys never lose information, and a running `serve` sees changes made by another process:
//! a key bound with the CLI verifies the very next message; a revocation imported with the CLI
//! makes the next one not `good`, and re-importing the copy from before the revocation (by the
//! CLI, or offered again in mail) leaves it revoked; a reporter's key imported while `serve`
//! runs encrypts the very next acknowledgment, and a copy sealed to a key revoked before it
//! left is held instead of sent.

mod outbox_receiver;
mod support;
mod support_gpg;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use outbox_receiver::Receiver;
use sequoia_openpgp::cert::CertBuilder;
use support::cli::{casegate, json_lines, serve, sigterm, wait_for};
use support_gpg::Gpg;

const CASE: &str = "VU#409117";
const VENDOR: &str = "psirt@vendor.example";

struct Daemon {
    dir: PathBuf,
    child: std::process::Child,
    dropped: usize,
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let child = serve(dir);
        let d = Daemon {
            dir: dir.to_path_buf(),
            child,
            dropped: 0,
        };
        wait_for("serve up", Duration::from_secs(30), || {
            d.maildir().join("new").is_dir()
        });
        d
    }

    fn maildir(&self) -> PathBuf {
        self.dir.join("casegate-data/Maildir")
    }

    /// Delivers one message to the drop folder and waits until `serve` stored it.
    fn deliver(&mut self, raw: &[u8]) {
        self.dropped += 1;
        let name = format!("m{:03}", self.dropped);
        std::fs::write(self.maildir().join("tmp").join(&name), raw).unwrap();
        std::fs::rename(
            self.maildir().join("tmp").join(&name),
            self.maildir().join("new").join(&name),
        )
        .unwrap();
        let want = self.dropped;
        let cur = self.maildir().join("cur");
        wait_for("the message stored", Duration::from_secs(30), || {
            std::fs::read_dir(&cur).unwrap().count() >= want
        });
    }

    fn stop(mut self) {
        assert_eq!(sigterm(&mut self.child), Some(0));
    }
}

/// The signature verdict of the message with this Message-ID, as `show --json` reports it.
fn verdict(dir: &Path, message_id: &str) -> (String, String) {
    let show: serde_json::Value =
        serde_json::from_str(casegate(dir, &["show", CASE, "--json"]).trim()).unwrap();
    let m = show["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == message_id)
        .unwrap_or_else(|| panic!("{message_id} not in {CASE}: {show}"));
    (
        m["signature"].as_str().unwrap().to_string(),
        m["signature_reason"].as_str().unwrap_or("").to_string(),
    )
}

fn key_state(dir: &Path, fingerprint: &str) -> serde_json::Value {
    json_lines(&casegate(dir, &["key", "list", "--json"]))
        .into_iter()
        .find(|k| k["fingerprint"] == fingerprint)
        .unwrap_or_else(|| panic!("{fingerprint} not listed"))
}

fn signed_statement(gpg: &Gpg, fpr: &str, n: usize) -> (String, Vec<u8>) {
    let id = format!("<statement-{n}@vendor.example>");
    let body = gpg.run(
        &["-u", fpr, "--clearsign"],
        Some(format!("Statement {n} of the vendor.\n").as_bytes()),
    );
    let mut raw = format!(
        "From: Vendor PSIRT <{VENDOR}>\r\nTo: cert@example.test\r\nSubject: Re: [{CASE}] statement {n}\r\n\
Message-ID: {id}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n"
    )
    .into_bytes();
    raw.extend(
        String::from_utf8(body)
            .unwrap()
            .replace('\n', "\r\n")
            .into_bytes(),
    );
    (id, raw)
}

#[test]
fn keys_bound_or_revoked_by_the_cli_count_for_the_next_inbound_message() {
    let gpg = Gpg::new();
    let fpr = gpg.gen_key(
        &format!("Vendor PSIRT <{VENDOR}>"),
        "ed25519",
        "sign",
        "never",
        &[],
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let before_revocation = dir.join("vendor.pgp");
    std::fs::write(&before_revocation, gpg.export(&fpr)).unwrap();
    casegate(dir, &["init"]);
    casegate(dir, &["open", "case", "--title", "t", "--number", CASE]);
    casegate(
        dir,
        &[
            "participant",
            "add",
            CASE,
            "--org",
            "Vendor",
            "--email",
            VENDOR,
        ],
    );
    let mut daemon = Daemon::start(dir);

    // 1. Signed with a key casegate has not got: unknown.
    let (id1, m1) = signed_statement(&gpg, &fpr, 1);
    daemon.deliver(&m1);
    assert_eq!(verdict(dir, &id1).0, "unknown-key");

    // 2. The CLI binds the key while serve runs: the very next message is good.
    casegate(
        dir,
        &[
            "participant",
            "add",
            CASE,
            "--org",
            "Vendor",
            "--email",
            VENDOR,
            "--key",
            before_revocation.to_str().unwrap(),
        ],
    );
    let (id2, m2) = signed_statement(&gpg, &fpr, 2);
    daemon.deliver(&m2);
    assert_eq!(verdict(dir, &id2).0, "good", "{:?}", verdict(dir, &id2));

    // 3. A revocation imported by the CLI: the very next message is no longer good.
    let (id3, m3) = signed_statement(&gpg, &fpr, 3); // signed before the revocation
    let (id4, m4) = signed_statement(&gpg, &fpr, 4);
    let rev = std::fs::read_to_string(gpg.home.join("openpgp-revocs.d").join(format!("{fpr}.rev")))
        .unwrap()
        .replace(":-----BEGIN", "-----BEGIN");
    gpg.import(rev.as_bytes());
    let revoked = dir.join("vendor-revoked.pgp");
    std::fs::write(&revoked, gpg.export(&fpr)).unwrap();
    casegate(dir, &["key", "import", revoked.to_str().unwrap()]);
    daemon.deliver(&m3);
    let (v3, why3) = verdict(dir, &id3);
    assert_ne!(v3, "good", "a revoked key still verifies under serve");
    assert!(why3.contains("revoked"), "{why3}");

    // 4. The copy from before the revocation imported again: merged, so still revoked.
    let out = casegate(
        dir,
        &[
            "key",
            "import",
            "--json",
            before_revocation.to_str().unwrap(),
        ],
    );
    assert_eq!(json_lines(&out)[0]["revoked"], true, "{out}");
    assert_eq!(key_state(dir, &fpr)["revoked"], true);
    daemon.deliver(&m4);
    assert_ne!(verdict(dir, &id4).0, "good");
    daemon.stop();
    assert_eq!(key_state(dir, &fpr)["revoked"], true);
}

/// A first report from `from` (a new reporter: it opens a report and is acknowledged).
fn report(from: &str, extra_header: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: cert@example.test\r\nSubject: Report from {from}\r\n\
Message-ID: <report@{from}>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n{extra_header}\r\n\
A report.\r\n"
    )
    .into_bytes()
}

/// The outbox row of the acknowledgment to `to`.
fn ack(dir: &Path, to: &str) -> Option<serde_json::Value> {
    json_lines(&casegate(dir, &["outbox", "list", "--json"]))
        .into_iter()
        .find(|r| r["address"] == to)
}

/// A reporter's key, and the same key revoked (as two files to import).
fn reporter_key(dir: &Path, addr: &str) -> (String, sequoia_openpgp::Cert, PathBuf, PathBuf) {
    let (key, revocation) = CertBuilder::general_purpose(Some(format!("<{addr}>")))
        .generate()
        .unwrap();
    let key = key.strip_secret_key_material();
    let armored = |c: &sequoia_openpgp::Cert| casegate::keyring::armored_public(c).unwrap();
    let plain = dir.join(format!("{addr}.asc"));
    let revoked = dir.join(format!("{addr}-revoked.asc"));
    std::fs::write(&plain, armored(&key)).unwrap();
    let revoked_key = key.clone().insert_packets(revocation).unwrap().0;
    std::fs::write(&revoked, armored(&revoked_key)).unwrap();
    (key.fingerprint().to_hex(), key, plain, revoked)
}

#[test]
fn keys_imported_or_revoked_by_the_cli_count_for_the_next_outbound_seal() {
    const NO_KEY: &str = "anna@reporter.example";
    const LATE_KEY: &str = "bert@reporter.example";
    const REVOKED: &str = "cara@reporter.example";
    let rx = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        format!(
            "[outbox]\nretry_base_secs = 1\nretry_max_secs = 1\n\n\
[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout_secs = 10\n",
            rx.plain_port
        ),
    )
    .unwrap();
    casegate(dir, &["init"]);
    let (bert, _, bert_key, bert_revoked) = reporter_key(dir, LATE_KEY);
    let (cara, cara_cert, _, cara_revoked) = reporter_key(dir, REVOKED);
    let mut daemon = Daemon::start(dir);
    let encrypted = |raw: &[u8]| String::from_utf8_lossy(raw).contains("multipart/encrypted");

    // 1. No key: the acknowledgment is plain (names only the number).
    daemon.deliver(&report(NO_KEY, ""));
    wait_for("the plain acknowledgment", Duration::from_secs(30), || {
        rx.inbox(NO_KEY).len() == 1
    });
    assert!(!encrypted(&rx.inbox(NO_KEY)[0].raw));

    // 2. The CLI imports a reporter's key while serve runs: the very next acknowledgment to
    //    that reporter is sealed to it. The relay refuses it for now: it waits, sealed...
    casegate(dir, &["key", "import", bert_key.to_str().unwrap()]);
    rx.control(&format!("temp {LATE_KEY}"));
    daemon.deliver(&report(LATE_KEY, ""));
    wait_for(
        "the sealed acknowledgment tried",
        Duration::from_secs(30),
        || ack(dir, LATE_KEY).is_some_and(|r| r["status"] == "retrying"),
    );
    assert_eq!(
        ack(dir, LATE_KEY).unwrap()["key_fingerprint"],
        bert.as_str()
    );

    // 3. ...and the key is revoked (by the CLI) before the retry: the copy is held, not sent.
    casegate(dir, &["key", "import", bert_revoked.to_str().unwrap()]);
    rx.control("off");
    wait_for("the sealed copy held", Duration::from_secs(30), || {
        ack(dir, LATE_KEY).unwrap()["status"] == "held"
    });
    let held = ack(dir, LATE_KEY).unwrap();
    assert!(
        held["reason"].as_str().unwrap().contains("revoked"),
        "{held}"
    );
    assert!(
        rx.inbox(LATE_KEY).is_empty(),
        "a copy sealed to a revoked key left"
    );

    // 4. A revocation imported before the first report, and the reporter offering the copy
    //    from before it (Autocrypt): merged, the key stays revoked, the acknowledgment is plain.
    casegate(dir, &["key", "import", cara_revoked.to_str().unwrap()]);
    let keydata = base64::engine::general_purpose::STANDARD
        .encode(casegate::keyring::public_bytes(&cara_cert));
    daemon.deliver(&report(
        REVOKED,
        &format!("Autocrypt: addr={REVOKED}; keydata={keydata}\r\n"),
    ));
    wait_for("the acknowledgment", Duration::from_secs(30), || {
        rx.inbox(REVOKED).len() == 1
    });
    assert!(!encrypted(&rx.inbox(REVOKED)[0].raw));
    assert!(ack(dir, REVOKED).unwrap()["key_fingerprint"].is_null());
    assert_eq!(key_state(dir, &cara)["revoked"], true);
    daemon.stop();
}
