//! Participants' keys over time, through the binary with real gpg keys: a key that expires in
//! ten days is listed (and logged by `serve`); WKD refresh from the tests' own HTTPS server
//! merges a new subkey, and holds a different primary key for review — the outbound copies to
//! the contact are held (by `notify`, and by the running sender for a copy queued before),
//! signatures by the new key are `unknown-key` — until `key accept` releases them, sealed to
//! the new key; a key change by `key import` and an Autocrypt offer are recorded too.

mod outbox_receiver;
mod support;
mod support_gpg;

use std::path::Path;
use std::time::Duration;

use outbox_receiver::Receiver;
use sequoia_openpgp::parse::Parse;
use support::MailServers;
use support::cli::{Desk, sigterm, wait_for};
use support::wkd::Wkd;
use support_gpg::Gpg;

/// One gpg home for the whole binary (`Gpg::new` clears the home of this process).
fn gpg() -> &'static Gpg {
    static G: std::sync::OnceLock<Gpg> = std::sync::OnceLock::new();
    G.get_or_init(Gpg::new)
}

const VENDOR: &str = "psirt@example.test";

/// A new Ed25519 key (with a Cv25519 encryption subkey) for `uid`; its fingerprint (gpg's
/// `--list-keys EMAIL` would name the first of several keys of one address).
fn new_key(gpg: &Gpg, uid: &str, expire: &str) -> String {
    // Tests of this binary run at once and share one gpg home.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fprs = |gpg: &Gpg| -> Vec<String> {
        let out = gpg.try_run(&["--with-colons", "--list-keys"], None);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0].starts_with("pub:") && w[1].starts_with("fpr:"))
            .map(|w| w[1].split(':').nth(9).unwrap().to_string())
            .collect()
    };
    let before = fprs(gpg);
    gpg.run(
        &["--quick-gen-key", uid, "ed25519", "default", expire],
        None,
    );
    let fpr = fprs(gpg).into_iter().find(|f| !before.contains(f)).unwrap();
    gpg.add_subkey(&fpr, "cv25519", "encr");
    fpr
}

fn write(path: &Path, bytes: &[u8]) -> String {
    std::fs::write(path, bytes).unwrap();
    path.display().to_string()
}

fn subkeys(armored_or_binary: &[u8]) -> usize {
    sequoia_openpgp::Cert::from_bytes(armored_or_binary)
        .unwrap()
        .keys()
        .subkeys()
        .count()
}

/// `serve` on the desk's data dir, its log in `work/serve.log`.
fn serve(d: &Desk) -> std::process::Child {
    std::process::Command::new(support::cli::bin())
        .current_dir(&d.work)
        .arg("--data-dir")
        .arg(&d.data)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(d.work.join("serve.log")).unwrap())
        .spawn()
        .unwrap()
}

fn notice(d: &Desk, n: &str, text: &str) -> serde_json::Value {
    let body = d.write("notice.txt", text.as_bytes());
    let mut copies = d.json(&["notify", n, "--body", &body, "--to", "all", "--json"]);
    copies.retain(|c| c["address"] == VENDOR);
    assert_eq!(copies.len(), 1, "{copies:?}");
    copies.remove(0)
}

fn statement(gpg: &Gpg, fpr: &str, n: &str, id: &str) -> Vec<u8> {
    let body = gpg.run(&["-u", fpr, "--clearsign"], Some(b"Fixed in 2.1.\n"));
    let mut raw = format!(
        "From: PSIRT <{VENDOR}>\r\nTo: cert@example.test\r\nSubject: Re: {n}: status\r\n\
         Message-ID: <{id}@example.test>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n"
    )
    .into_bytes();
    raw.extend(support_gpg::crlf(&body).into_bytes());
    raw
}

#[test]
fn a_key_expiring_in_ten_days_is_listed_and_logged() {
    let gpg = gpg();
    let soon = new_key(gpg, "Soon <soon@example.test>", "10d");
    let later = new_key(gpg, "Later <later@example.test>", "200d");
    let d = Desk::new();
    let n = d.ok(&["open", "case", "--title", "t"]).trim().to_string();
    for (email, fpr) in [("soon@example.test", &soon), ("later@example.test", &later)] {
        let key = write(&d.work.join(format!("{email}.pgp")), &gpg.export(fpr));
        d.ok(&[
            "participant",
            "add",
            &n,
            "--org",
            email,
            "--email",
            email,
            "--key",
            &key,
        ]);
    }
    let listed = d.json(&["key", "list", "--expiring", "30", "--json"]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["fingerprint"], soon.as_str());
    assert_eq!(listed[0]["contacts"][0], "soon@example.test");
    let days = listed[0]["days_left"].as_i64().unwrap();
    assert!((9..=10).contains(&days), "{days}");
    assert!(
        d.json(&["key", "list", "--expiring", "5", "--json"])
            .is_empty()
    );
    assert_eq!(
        d.json(&["key", "list", "--expiring", "365", "--json"])
            .len(),
        2
    );
    // The expiry is shown wherever the key is.
    let all = d.ok(&["key", "list"]);
    assert!(
        all.lines()
            .any(|l| l.contains(&soon) && l.contains("expires 20")),
        "{all}"
    );
    let show = d.ok(&["show", &n]);
    assert!(show.contains(&format!("{soon} expires 20")), "{show}");

    // serve's daily line names it (at start, then once a day).
    let log = d.work.join("serve.log");
    let mut child = serve(&d);
    wait_for("the expiry line", Duration::from_secs(60), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("expire within 30 days"))
    });
    assert_eq!(sigterm(&mut child), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("expire within 30 days"))
        .unwrap();
    assert!(
        line.contains(&soon) && line.contains("soon@example.test"),
        "{line}"
    );
    assert!(!line.contains(&later), "{line}");
}

#[test]
fn wkd_merges_a_new_subkey_and_holds_a_new_primary_key_until_accepted() {
    let servers = MailServers::start();
    let (cert, key) = servers.leaf_certificate("wkd", &["openpgpkey.example.test", "example.test"]);
    let wkd = Wkd::start(&cert, &key);
    let rx = Receiver::start();
    let gpg = gpg();
    let k1 = new_key(gpg, &format!("PSIRT <{VENDOR}>"), "never");

    let d = Desk::new();
    let config = format!(
        "[outbox]\nretry_base_secs = 1\nretry_max_secs = 1\n\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout_secs = 10\n\n\
         [keys.wkd]\nca_file = \"{}\"\ntimeout_secs = 10\n\n\
         [keys.wkd.resolve]\n\"openpgpkey.example.test\" = \"127.0.0.1:{}\"\n",
        rx.plain_port,
        servers.ca_cert.display(),
        wkd.port
    );
    d.write("casegate.toml", config.as_bytes());
    let n = d.ok(&["open", "case", "--title", "t"]).trim().to_string();
    let k1_file = write(&d.work.join("k1.pgp"), &gpg.export(&k1));
    d.ok(&[
        "participant",
        "add",
        &n,
        "--org",
        "Vendor",
        "--email",
        VENDOR,
        "--key",
        &k1_file,
    ]);

    // Nothing published yet.
    let r = d.json(&["key", "refresh", VENDOR, "--json"]);
    assert_eq!(r[0]["outcome"], "not-found", "{r:?}");
    assert!(
        wkd.requests()
            .iter()
            .any(|p| p.starts_with("/.well-known/openpgpkey/example.test/hu/")),
        "{:?}",
        wkd.requests()
    );

    // 1. The same key with a new encryption subkey: merged, no review.
    gpg.add_subkey(&k1, "cv25519", "encr");
    wkd.publish(VENDOR, &gpg.export(&k1));
    let r = d.json(&["key", "refresh", "Vendor", "--json"]);
    assert_eq!(r[0]["outcome"], "merged", "{r:?}");
    assert_eq!(r[0]["fingerprint"], k1.as_str());
    assert_eq!(subkeys(d.ok(&["key", "export", &k1]).as_bytes()), 2);
    assert!(d.json(&["key", "changes", "--json"]).is_empty());
    let r = d.json(&["key", "refresh", "--json"]);
    assert_eq!(r[0]["outcome"], "unchanged", "{r:?}");
    let first = notice(&d, &n, "Notice one.");
    assert_eq!(first["status"], "queued", "{first}");
    assert_eq!(first["key_fingerprint"], k1.as_str());

    // 2. A different primary key (not certified by the old one): held for review.
    let k2 = new_key(gpg, &format!("PSIRT new <{VENDOR}>"), "never");
    assert_ne!(k1, k2);
    wkd.publish(VENDOR, &gpg.export(&k2));
    let r = d.json(&["key", "refresh", VENDOR, "--json"]);
    assert_eq!(r[0]["outcome"], "held-for-review", "{r:?}");
    let changes = d.json(&["key", "changes", "--json"]);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["fingerprint"], k2.as_str());
    assert_eq!(changes[0]["previous"][0], k1.as_str());
    assert_eq!(changes[0]["source"], "wkd");
    assert_eq!(changes[0]["status"], "pending");

    // A new notice to the vendor is held...
    let second = notice(&d, &n, "Notice two.");
    assert_eq!(second["status"], "held", "{second}");
    assert!(
        second["reason"]
            .as_str()
            .unwrap()
            .starts_with("key changed, not yet accepted"),
        "{second}"
    );
    // ...and signatures by the new key do not count yet.
    let o = d.ingest("s1.eml", &statement(gpg, &k2, &n, "new-key-1"));
    assert_eq!(o["signature"], "unknown-key", "{o}");
    assert!(
        o["signature_reason"]
            .as_str()
            .unwrap()
            .contains("not accepted"),
        "{o}"
    );

    // The copy queued before the change is held by the running sender, not sent.
    let mut serve = serve(&d);
    let copy = |id: &serde_json::Value| {
        d.json(&["outbox", "list", "--json"])
            .into_iter()
            .find(|c| c["id"] == *id)
            .unwrap()
    };
    wait_for(
        "the queued copy held by the sender",
        Duration::from_secs(60),
        || copy(&first["id"])["status"] == "held",
    );
    assert!(
        copy(&first["id"])["reason"]
            .as_str()
            .unwrap()
            .starts_with("key changed, not yet accepted"),
        "{}",
        copy(&first["id"])
    );
    assert!(
        rx.inbox(VENDOR).is_empty(),
        "a copy left before the change was accepted"
    );

    // 3. An analyst accepts: both copies are sealed to the new key and go out.
    let accepted = d.json(&["key", "accept", VENDOR, &k2, "--json"]);
    assert_eq!(accepted[0]["change"]["status"], "accepted");
    assert_eq!(
        accepted[0]["released"].as_array().unwrap().len(),
        2,
        "{accepted:?}"
    );
    wait_for("both copies delivered", Duration::from_secs(60), || {
        rx.inbox(VENDOR).len() == 2
    });
    for c in [&first, &second] {
        let row = copy(&c["id"]);
        assert_eq!(row["status"], "sent", "{row}");
        assert_eq!(row["key_fingerprint"], k2.as_str(), "{row}");
    }
    // gpg decrypts them with the new key.
    for m in rx.inbox(VENDOR) {
        let text = String::from_utf8_lossy(&m.raw).to_string();
        let armored = &text[text.find("-----BEGIN PGP MESSAGE-----").unwrap()
            ..text.find("-----END PGP MESSAGE-----").unwrap() + 25];
        // (gpg has no copy of the coordinator's key, so it cannot check the signature inside
        // and exits 2; what matters here is that the new key opens the copy.)
        let out = gpg.try_run(
            &["--decrypt"],
            Some(armored.replace("\r\n", "\n").as_bytes()),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("\"PSIRT new <"), "{stderr}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Notice "),
            "{stderr}"
        );
    }
    assert_eq!(sigterm(&mut serve), Some(0));
    assert!(d.json(&["key", "changes", "--json"]).is_empty());
    let all = d.json(&["key", "changes", "--all", "--json"]);
    assert_eq!(all[0]["decided_by"], "cli:ann");
    // Signatures by the accepted key are good now.
    let o = d.ingest("s2.eml", &statement(gpg, &k2, &n, "new-key-2"));
    assert_eq!(o["signature"], "good", "{o}");
    let audit = d.ok(&["audit"]);
    assert!(
        audit.contains("key refresh") && audit.contains("key accept"),
        "{audit}"
    );
}

#[test]
fn an_imported_replacement_and_an_autocrypt_offer_are_recorded_not_used() {
    let gpg = gpg();
    let k1 = new_key(gpg, &format!("PSIRT 1 <{VENDOR}>"), "never");
    let k2 = new_key(gpg, &format!("PSIRT 2 <{VENDOR}>"), "never");
    let k3 = new_key(gpg, &format!("PSIRT 3 <{VENDOR}>"), "never");
    let d = Desk::new();
    let n = d.ok(&["open", "case", "--title", "t"]).trim().to_string();
    let k1_file = write(&d.work.join("k1.pgp"), &gpg.export(&k1));
    d.ok(&[
        "participant",
        "add",
        &n,
        "--org",
        "Vendor",
        "--email",
        VENDOR,
        "--key",
        &k1_file,
    ]);

    // An Autocrypt header of a participant: an offer, listed, not used, nothing held.
    use base64::Engine;
    let keydata = base64::engine::general_purpose::STANDARD.encode(gpg.export(&k3));
    let raw = format!(
        "From: {VENDOR}\r\nTo: cert@example.test\r\nSubject: Re: {n}: hi\r\nMessage-ID: <ac@example.test>\r\n\
         Autocrypt: addr={VENDOR}; prefer-encrypt=mutual; keydata={keydata}\r\n\r\nhello\r\n"
    );
    d.ingest("ac.eml", raw.as_bytes());
    let changes = d.json(&["key", "changes", "--json"]);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0]["status"].as_str(), changes[0]["source"].as_str()),
        (Some("offered"), Some("autocrypt"))
    );
    assert_eq!(notice(&d, &n, "one")["key_fingerprint"], k1.as_str());

    // `key import` of another key for the address: held for review.
    let k2_file = write(&d.work.join("k2.pgp"), &gpg.export(&k2));
    let out = d.run(&["key", "import", &k2_file]);
    assert!(out.status.success());
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("waits for review"), "{warned}");
    let held = notice(&d, &n, "two");
    assert_eq!(held["status"], "held", "{held}");
    // `participant add --key` with another key for the address: held as well.
    let again = d.json(&[
        "participant",
        "add",
        &n,
        "--org",
        "Vendor",
        "--email",
        VENDOR,
        "--key",
        &k2_file,
        "--json",
    ]);
    assert_eq!(
        again[0]["key_change"]["fingerprint"],
        k2.as_str(),
        "{again:?}"
    );
    assert!(again[0]["key_bound"].is_null(), "{again:?}");
    let listed = d.ok(&["key", "list"]);
    assert!(
        listed.contains("key change for psirt@example.test not accepted yet"),
        "{listed}"
    );
    // A wrong fingerprint is refused; the right one releases the held copy, sealed to it.
    let err = d.fails(&["key", "accept", VENDOR, &k1]);
    assert!(err.contains("no open key change"), "{err}");
    let done = d.json(&["key", "accept", VENDOR, &k2, "--json"]);
    let released = done[0]["released"].as_array().unwrap();
    assert!(
        released
            .iter()
            .any(|c| c["id"] == held["id"] && c["key_fingerprint"] == k2.as_str()),
        "{done:?}"
    );
    // The offer stays listed until someone accepts or it is replaced.
    assert_eq!(d.json(&["key", "changes", "--json"]).len(), 1);
}

#[test]
fn serve_with_daily_refresh_holds_a_key_changed_on_wkd() {
    let servers = MailServers::start();
    let (cert, key) = servers.leaf_certificate("wkd", &["openpgpkey.example.test", "example.test"]);
    let wkd = Wkd::start(&cert, &key);
    let gpg = gpg();
    let k1 = new_key(gpg, &format!("PSIRT 4 <{VENDOR}>"), "never");
    let k2 = new_key(gpg, &format!("PSIRT 5 <{VENDOR}>"), "never");
    let d = Desk::new();
    let config = format!(
        "[maildir]\nenabled = true\n\n[keys]\nrefresh_daily = true\n\n\
         [keys.wkd]\nca_file = \"{}\"\ntimeout_secs = 10\n\n\
         [keys.wkd.resolve]\n\"openpgpkey.example.test\" = \"127.0.0.1:{}\"\n",
        servers.ca_cert.display(),
        wkd.port
    );
    d.write("casegate.toml", config.as_bytes());
    let n = d.ok(&["open", "case", "--title", "t"]).trim().to_string();
    let k1_file = write(&d.work.join("k1.pgp"), &gpg.export(&k1));
    d.ok(&[
        "participant",
        "add",
        &n,
        "--org",
        "Vendor",
        "--email",
        VENDOR,
        "--key",
        &k1_file,
    ]);
    // The vendor's directory now publishes another primary key; serve looks at start.
    wkd.publish(VENDOR, &gpg.export(&k2));
    let mut serve = serve(&d);
    wait_for(
        "the daily refresh recorded the change",
        Duration::from_secs(60),
        || !d.json(&["key", "changes", "--json"]).is_empty(),
    );
    assert_eq!(sigterm(&mut serve), Some(0));
    let changes = d.json(&["key", "changes", "--json"]);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["fingerprint"], k2.as_str());
    assert_eq!(changes[0]["source"], "wkd");
    assert_eq!(changes[0]["status"], "pending");
    assert!(
        wkd.requests()
            .iter()
            .any(|r| r.contains("/.well-known/openpgpkey/")),
        "{:?}",
        wkd.requests()
    );
    // Not used: a notice to the vendor is held.
    let held = notice(&d, &n, "After the refresh.");
    assert_eq!(held["status"], "held", "{held}");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .starts_with("key changed, not yet accepted"),
        "{held}"
    );
}
