//! Organizations, a group notice, the case discussion relay and vendor statements, end to end:
//! the running daemon reads the coordinator's INBOX from the project's Dovecot, sends through
//! its SMTP receiver into each contact's INBOX, and every copy there is decrypted with real gpg
//! by its recipient's own key and searched for the names and addresses it must not contain.
//!
//! Three organizations in one case: Alpha (two contacts), Betamax (anonymous), Gamma (one
//! contact with a key, one without). Alpha and Betamax are the group `networking`, notified as a
//! group; Gamma joins by `participant add --org`. With `--discussion relay`, each organization's
//! contacts get exactly the relays of the others' mail — never their own organization's — and
//! Betamax is never named; private, automatic, badly signed and echoed mail is never relayed.
//! In a second case (hub-and-spoke, signed statements required), statements signed by the
//! vendor's key count, unsigned ones and ones signed by another organization's key do not.

mod outbox_gpg;
mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use outbox_gpg::{GpgHome, addresses, pgp_block};
use serde_json::Value;
use support::MailServers;
use support::cli::{Desk, bin, sigterm, wait_for};

const CASE: &str = "VU#409117";
const HUB_CASE: &str = "VU#555555";
const CERT: &str = "cert@example.test";
const PRIVATE: &str = "private@example.test";

const A1: &str = "a1@alpha.example";
const A2: &str = "a2@alpha.example";
const B1: &str = "psirt@betamax.example";
const G1: &str = "g1@gamma.example";
const G2: &str = "g2@gamma.example";

/// Runs gpg in `home` with the test options; panics with its stderr when it fails.
fn gpg(home: &GpgHome, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("/usr/bin/gpg")
        .arg("--homedir")
        .arg(home.path())
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(["--trust-model", "always", "--armor"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn headers(from: &str, to: &str, subject: &str, id: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n{extra}"
    )
}

fn plain(from: &str, to: &str, subject: &str, id: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{}Content-Type: text/plain; charset=utf-8\r\n\r\n{}",
        headers(from, to, subject, id, extra),
        crlf(body)
    )
    .into_bytes()
}

/// A PGP/MIME signed message (RFC 3156): returns it and the exact signed part.
fn signed(
    home: &GpgHome,
    signer: &str,
    from: &str,
    subject: &str,
    id: &str,
    body: &str,
) -> (Vec<u8>, String) {
    let part = format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{}",
        crlf(body)
    );
    let sig = gpg(
        home,
        &[
            "--local-user",
            signer,
            "--detach-sign",
            "--digest-algo",
            "SHA256",
        ],
        part.as_bytes(),
    );
    let raw = format!(
        "{}Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; boundary=\"sig\"\r\n\r\n\
         --sig\r\n{part}\r\n--sig\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n{}\r\n--sig--\r\n",
        headers(from, CERT, subject, id, ""),
        crlf(&String::from_utf8_lossy(&sig)).trim_end()
    );
    (raw.into_bytes(), part)
}

/// A PGP/MIME message signed and encrypted (to the coordinator) in one OpenPGP message:
/// returns it and the signed entity.
fn signed_encrypted(
    home: &GpgHome,
    signer: &str,
    from: &str,
    subject: &str,
    id: &str,
    body: &str,
) -> (Vec<u8>, String) {
    let entity = format!(
        "Content-Type: text/plain; charset=utf-8\r\n\r\n{}",
        crlf(body)
    );
    let armored = gpg(
        home,
        &[
            "--local-user",
            signer,
            "--recipient",
            CERT,
            "--sign",
            "--encrypt",
        ],
        entity.as_bytes(),
    );
    let raw = format!(
        "{}Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"enc\"\r\n\r\n\
         --enc\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --enc\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n{}\r\n--enc--\r\n",
        headers(from, CERT, subject, id, ""),
        crlf(&String::from_utf8_lossy(&armored)).trim_end()
    );
    (raw.into_bytes(), entity)
}

/// Every message in `user`'s INBOX (the Maildir Dovecot delivers to), raw.
fn inbox(servers: &MailServers, user: &str) -> Vec<Vec<u8>> {
    let md = servers.maildir(user);
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(md.join(sub)) {
            let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                out.push(std::fs::read(f).unwrap());
            }
        }
    }
    out
}

/// A copy as its recipient reads it: gpg decrypts it with the recipient's own key and checks
/// the coordinator's signature. Returns (raw copy, decrypted content as sent and as read).
fn open_copy(home: &GpgHome, raw: &[u8], coordinator_fpr: &str) -> (String, String) {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let (inner, status) = home.decrypt(pgp_block(&text, "MESSAGE").as_bytes());
    assert!(status.contains("DECRYPTION_OKAY"), "{status}");
    assert!(
        status.contains("GOODSIG") && status.contains(coordinator_fpr),
        "the coordinator signed it: {status}"
    );
    // Searched as sent (quoted-printable) and as read (decoded): a soft line break must not
    // hide a name.
    let decoded = mail_parser::MessageParser::default()
        .parse(&inner)
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default();
    assert!(!decoded.is_empty(), "the copy has a readable text");
    (
        text,
        format!("{}\n{decoded}", String::from_utf8(inner).unwrap()),
    )
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// `needle` as a word (case-insensitive): not part of a longer run of letters and digits.
fn contains_word_ci(hay: &str, needle: &str) -> bool {
    let hay = hay.to_lowercase();
    let needle = needle.to_lowercase();
    hay.match_indices(&needle).any(|(i, m)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + m.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_alphanumeric())
    })
}

/// `text` without its OpenPGP armor blocks: their base64 is ciphertext or a signature, where
/// a short name could turn up by chance ("bob" in base64), and says nothing about what a
/// reader sees.
fn without_armor(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_armor = false;
    for line in text.lines() {
        let l = line.trim_start_matches('>').trim();
        if l.starts_with("-----BEGIN PGP ") {
            in_armor = true;
        }
        if !in_armor {
            out.push_str(line);
            out.push('\n');
        }
        if l.starts_with("-----END PGP ") {
            in_armor = false;
        }
    }
    out
}

fn one_json(desk: &Desk, args: &[&str]) -> Value {
    let mut v = desk.json(args);
    assert_eq!(v.len(), 1, "{args:?}: {v:?}");
    v.remove(0)
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(desk: &Desk) -> Daemon {
    Daemon(
        Command::new(bin())
            .current_dir(&desk.work)
            .env("USER", "ann")
            .arg("--data-dir")
            .arg(&desk.data)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn config(servers: &MailServers) -> String {
    format!(
        r#"
[coordinator]
address = "{CERT}"
reporting_address = "{CERT}"
private_address = "{PRIVATE}"

[maildir]
enabled = false

[outbox]
retry_base_secs = 1

[[imap]]
name = "cert"
host = "127.0.0.1"
port = {imap}
tls = "starttls"
ca_file = "{ca}"
username = "{CERT}"
password_file = "{pw}"
poll_interval_secs = 1
timeout_secs = 10

[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "starttls"
ca_file = "{ca}"
username = "{CERT}"
password_file = "{pw}"
timeout_secs = 10
"#,
        imap = servers.imap_port,
        smtp = servers.smtp_port,
        ca = servers.ca_cert.display(),
        pw = servers.password_file.display()
    )
}

#[test]
fn group_notice_relayed_discussion_anonymity_privacy_and_signed_statements() {
    let servers = MailServers::start_with_users(&[A1, A2, B1, G1, G2]);
    let desk = Desk::new();
    std::fs::write(desk.work.join("casegate.toml"), config(&servers)).unwrap();
    let coordinator_pub = desk.ok(&["key", "export"]);
    let coordinator_fpr = desk.ok(&["key", "list", "--json"]);
    let coordinator_fpr = serde_json::from_str::<Value>(coordinator_fpr.lines().next().unwrap())
        .unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();

    // Each contact with a key has its own gpg home: what one can decrypt, only it can.
    let mut homes: HashMap<&str, GpgHome> = HashMap::new();
    for addr in [A1, A2, B1, G1] {
        let home = GpgHome::new();
        home.gen_key(addr, "future-default", "encr", "never");
        gpg(&home, &["--import"], coordinator_pub.as_bytes());
        homes.insert(addr, home);
    }
    let key_file = |addr: &str| -> String {
        desk.write(
            &format!("{addr}.asc"),
            &gpg(&homes[addr], &["--export", addr], b""),
        )
    };

    // The directory.
    desk.ok(&["org", "add", "Alpha", "--group", "networking"]);
    desk.ok(&["org", "add", "Betamax", "--group", "networking"]);
    desk.ok(&["org", "add", "Gamma", "--group", "storage"]);
    for (org, addr) in [("Alpha", A1), ("Alpha", A2), ("Betamax", B1), ("Gamma", G1)] {
        let added = one_json(
            &desk,
            &[
                "org",
                "contact",
                "add",
                org,
                addr,
                "--key",
                &key_file(addr),
                "--json",
            ],
        );
        assert_eq!(added["keys"].as_array().unwrap().len(), 1, "{added}");
    }
    desk.ok(&["org", "contact", "add", "Gamma", G2]);
    let anon = one_json(&desk, &["org", "set", "Betamax", "--anonymous", "--json"]);
    assert_eq!(anon["anonymous"], true);
    let shown = one_json(&desk, &["org", "show", "Alpha", "--json"]);
    assert_eq!(shown["groups"], serde_json::json!(["networking"]));
    assert_eq!(shown["contacts"].as_array().unwrap().len(), 2);
    assert!(
        shown["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["validity"] == "valid")
    );

    // A group notice adds the group's organizations to the case and says who.
    desk.ok(&[
        "open",
        "case",
        "--title",
        "Buffer overflow in routers",
        "--number",
        CASE,
    ]);
    let body = desk.write(
        "notice.txt",
        b"Draft advisory: buffer overflow in the DHCP client.\n",
    );
    let out = desk.json(&[
        "notify",
        CASE,
        "--to",
        "group:networking",
        "--body",
        &body,
        "--json",
    ]);
    let added: Vec<&str> = out
        .iter()
        .filter_map(|l| l["added"]["org"].as_str())
        .collect();
    assert_eq!(added, ["Alpha", "Betamax"]);
    let copies: Vec<&str> = out.iter().filter_map(|l| l["address"].as_str()).collect();
    assert_eq!(copies.len(), 3, "{out:?}");
    assert!(
        out.iter()
            .filter(|l| l["address"].is_string())
            .all(|l| l["status"] == "queued")
    );
    // Gamma joins with all its contacts, without --email.
    let gamma = desk.json(&["participant", "add", CASE, "--org", "Gamma", "--json"]);
    assert_eq!(gamma[0]["contacts"].as_array().unwrap().len(), 2);
    let policy = one_json(&desk, &["set", CASE, "--discussion", "relay", "--json"]);
    assert_eq!(policy["discussion"], "relay");

    // The second case: hub-and-spoke, statements must be signed by the vendor's key.
    desk.ok(&[
        "open",
        "case",
        "--title",
        "Statements case",
        "--number",
        HUB_CASE,
    ]);
    for org in ["Alpha", "Betamax", "Gamma"] {
        desk.ok(&["participant", "add", HUB_CASE, "--org", org]);
    }
    desk.ok(&["set", HUB_CASE, "--require-signed-statements", "true"]);

    let mut daemon = serve(&desk);

    // The group notice: one copy per contact, each readable only with its own key, naming
    // and addressing nobody else.
    wait_for("the group notice", Duration::from_secs(90), || {
        [A1, A2, B1].iter().all(|a| inbox(&servers, a).len() == 1)
    });
    let everyone = [A1, A2, B1, G1, G2];
    for addr in [A1, A2, B1] {
        let (raw, text) = open_copy(&homes[addr], &inbox(&servers, addr)[0], &coordinator_fpr);
        assert!(text.contains("Draft advisory: buffer overflow"), "{text}");
        for other in everyone.iter().filter(|o| **o != addr) {
            assert!(
                !contains_ci(&raw, other) && !contains_ci(&text, other),
                "{addr}'s copy names {other}"
            );
        }
        for org in ["Alpha", "Betamax", "Gamma"] {
            assert!(
                !contains_ci(&text, org),
                "{addr}'s notice names {org}: {text}"
            );
        }
        for a in addresses(&raw).iter().chain(addresses(&text).iter()) {
            assert!(
                a.eq_ignore_ascii_case(addr) || a.ends_with("@example.test"),
                "{addr}'s copy carries {a}"
            );
        }
    }

    // The discussion.
    let deliver = |raw: &[u8]| servers.deliver(CERT, raw);
    deliver(&plain(
        &format!("Alice <{A1}>"),
        CERT,
        &format!("Re: [{CASE}] timeline"),
        "m1@alpha.example",
        "",
        &format!(
            "ALPHA-ONE: our fix ships on Friday. Write to me at {A1} or {B1}.\n\n-- \nAlice, Alpha PSIRT\n"
        ),
    ));
    let (m2, _) = signed(
        &homes[B1],
        B1,
        &format!("Bob Builder <{B1}>"),
        &format!("Re: [{CASE}] Betamax findings"),
        "m2@betamax.example",
        "BETA-TWO: Betamax devices are affected too, see https://www.betamax.example/adv.\nBob Builder, Betamax PSIRT\n-- \nBob Builder\npsirt@betamax.example\n",
    );
    deliver(&m2);
    deliver(&plain(
        G1,
        CERT,
        &format!("[private] {CASE} question"),
        "m3@gamma.example",
        "",
        "GAMMA-PRIVATE-SUBJECT\n",
    ));
    deliver(&plain(
        G1,
        PRIVATE,
        &format!("{CASE} note"),
        "m4@gamma.example",
        "",
        "GAMMA-PRIVATE-ADDRESS\n",
    ));
    deliver(&plain(
        A1,
        CERT,
        &format!("Automatic reply: {CASE}"),
        "m5@alpha.example",
        "Auto-Submitted: auto-replied\r\n",
        "ALPHA-AUTOREPLY\n",
    ));
    deliver(&plain(
        G1,
        CERT,
        &format!("Re: [{CASE}] Encrypted message"),
        "m6@gamma.example",
        &format!("X-Casegate-Relay: {CASE}\r\n"),
        "GAMMA-ECHO of a relay\n",
    ));
    let (bad, _) = signed(
        &homes[A1],
        A1,
        A1,
        &format!("Re: [{CASE}] tampered"),
        "m8@alpha.example",
        "ALPHA-ORIGINAL\n",
    );
    let bad = String::from_utf8(bad)
        .unwrap()
        .replace("ALPHA-ORIGINAL", "ALPHA-TAMPERED");
    deliver(bad.as_bytes());

    // Relays: Alpha's and Betamax's messages reach the other organizations' contacts.
    wait_for("the relays", Duration::from_secs(90), || {
        inbox(&servers, A1).len() >= 2
            && inbox(&servers, B1).len() >= 2
            && inbox(&servers, G1).len() >= 2
    });
    // A reply to a relay (no number in the subject) continues the discussion.
    let relay_id = {
        let raw = &inbox(&servers, G1)[0];
        let msg = mail_parser::MessageParser::default().parse(raw).unwrap();
        msg.message_id().unwrap().to_string()
    };
    deliver(&plain(
        A2,
        CERT,
        "Re: Encrypted message",
        "m7@alpha.example",
        &format!("In-Reply-To: <{relay_id}>\r\n"),
        "ALPHA-SEVEN: agreed, Friday it is.\n",
    ));
    wait_for("the reply's relay", Duration::from_secs(90), || {
        inbox(&servers, B1).len() >= 3 && inbox(&servers, G1).len() >= 3
    });
    // Wait for the daemon to have stored all eight messages before checking nothing more comes.
    wait_for("all messages stored", Duration::from_secs(60), || {
        let show = desk.json(&["show", CASE, "--json"]);
        show[0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "in")
            .count()
            >= 8
    });
    std::thread::sleep(Duration::from_secs(3));

    // Exactly what each contact should get: the notice (if notified) and the others' relays.
    let expect: [(&str, usize, &[&str]); 5] = [
        (A1, 2, &["BETA-TWO"]),
        (A2, 2, &["BETA-TWO"]),
        (B1, 3, &["ALPHA-ONE", "ALPHA-SEVEN"]),
        (G1, 3, &["ALPHA-ONE", "BETA-TWO", "ALPHA-SEVEN"]),
        (G2, 0, &[]),
    ];
    let never = [
        "GAMMA-PRIVATE-SUBJECT",
        "GAMMA-PRIVATE-ADDRESS",
        "ALPHA-AUTOREPLY",
        "GAMMA-ECHO",
        "ALPHA-TAMPERED",
        "ALPHA-ORIGINAL",
    ];
    for (addr, count, relays) in expect {
        let mail = inbox(&servers, addr);
        assert_eq!(mail.len(), count, "{addr} has {} mails", mail.len());
        if count == 0 {
            continue;
        }
        let mut seen = Vec::new();
        for raw in &mail {
            let (raw, text) = open_copy(&homes[addr], raw, &coordinator_fpr);
            let all = format!("{raw}\n{text}");
            // What a reader sees (the copy less its ciphertext and the coordinator's signature).
            let readable = format!("{}\n{}", without_armor(&raw), without_armor(&text));
            for n in never {
                assert!(!all.contains(n), "{addr} got {n}");
            }
            // Never another contact's address; never the anonymous organization (except its
            // own address in copies to it).
            for other in everyone.iter().filter(|o| **o != addr) {
                assert!(
                    !contains_ci(&all, other),
                    "{addr}'s copy carries {other}:\n{text}"
                );
            }
            if addr != B1 {
                for secret in ["betamax", "Bob Builder", "Bob"] {
                    assert!(
                        !contains_ci(&readable, secret) || secret == "Bob",
                        "{addr}'s copy names the anonymous organization ({secret}):\n{text}"
                    );
                    assert!(
                        !contains_word_ci(&readable, secret),
                        "{addr}'s copy names the anonymous organization ({secret}):\n{text}"
                    );
                }
            }
            for tag in ["ALPHA-ONE", "BETA-TWO", "ALPHA-SEVEN"] {
                if text.contains(tag) {
                    seen.push(tag);
                    let (from, signed) = match tag {
                        "BETA-TWO" => (
                            "A participant wrote",
                            "signed with the participant's own key",
                        ),
                        _ => ("Alpha wrote", "not signed"),
                    };
                    assert!(text.contains(from), "{addr}: {text}");
                    assert!(text.contains(signed), "{addr}: {text}");
                    assert!(
                        raw.contains(&format!("X-Casegate-Relay: {CASE}")),
                        "relays are marked"
                    );
                }
            }
        }
        seen.sort();
        let mut want: Vec<&str> = relays.to_vec();
        want.sort();
        assert_eq!(seen, want, "{addr} got exactly the others' relays");
    }
    // The keyless contact's relays are held, and every relay is audited.
    let held = desk.json(&["outbox", "list", CASE, "--status", "held", "--json"]);
    assert_eq!(held.len(), 3, "{held:?}");
    assert!(held.iter().all(|h| h["address"] == G2));
    let audit = desk.json(&["audit", CASE, "--json"]);
    assert_eq!(audit.iter().filter(|a| a["action"] == "relay").count(), 3);

    // Statements in the hub case.
    let (s1, s1_signed) = signed_encrypted(
        &homes[A1],
        A1,
        A1,
        &format!("Re: [{HUB_CASE}] status"),
        "s1@alpha.example",
        "Status: Affected\n\nStatement: Alpha routers 1.x are affected; 1.2 fixes it.\n\n-- \nAlice\n",
    );
    deliver(&s1);
    deliver(&plain(
        G1,
        CERT,
        &format!("Re: [{HUB_CASE}] vendor statement"),
        "s2@gamma.example",
        "",
        "Status: not affected\n\nGamma products do not use the DHCP client.\n",
    ));
    let (s3, _) = signed(
        &homes[A1],
        A1,
        B1,
        &format!("Re: [{HUB_CASE}] statement"),
        "s3@betamax.example",
        "Status: fixed\nStatement: signed with somebody else's key.\n",
    );
    deliver(&s3);
    wait_for("the statements", Duration::from_secs(60), || {
        desk.json(&["show", HUB_CASE, "--json"])[0]["messages"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    });
    let vendors = desk.json(&["vendors", HUB_CASE, "--json"]);
    let by_org = |org: &str| vendors.iter().find(|v| v["org"] == org).unwrap().clone();
    let alpha = by_org("Alpha");
    assert_eq!(alpha["status"], "affected");
    assert_eq!(
        alpha["statement"],
        "Alpha routers 1.x are affected; 1.2 fixes it."
    );
    assert_eq!(alpha["statement_signed_by"].as_str().unwrap().len(), 40);
    let gamma = by_org("Gamma");
    assert_eq!(gamma["status"], "unknown", "unsigned: not counted");
    assert!(gamma["statement"].is_null());
    assert!(
        gamma["not_counted"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not signed")
    );
    let betamax = by_org("Betamax");
    assert_eq!(
        betamax["status"], "unknown",
        "signed by Alpha's key: not counted"
    );
    assert!(
        betamax["not_counted"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("of Alpha"),
        "{betamax}"
    );
    // The statement exactly as signed: the bytes Alice's signature covers.
    let exact = desk.run(&["vendors", HUB_CASE, "--signed-statement", "Alpha"]);
    assert!(exact.status.success());
    assert_eq!(exact.stdout, s1_signed.as_bytes());
    assert_eq!(sigterm(&mut daemon.0), Some(0));
    // Alpha's statement came encrypted: read again from the ciphertext, never stored in clear
    // (Gamma's came in clear and is in the stored message anyway).
    let db = desk.store_bytes();
    let secret = b"Alpha routers 1.x are affected";
    assert!(
        !db.windows(secret.len()).any(|w| w == secret),
        "a decrypted statement is in the store"
    );
}
