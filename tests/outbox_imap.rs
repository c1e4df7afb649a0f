//! Issue 6, item 4, against the project's real mail servers (tests/support: Dovecot IMAP, and
//! an SMTP receiver that delivers into Dovecot over LMTP): a notice to a case with three
//! vendor organisations (one with two contacts, one without a key) — each recipient finds
//! exactly one mail in their INBOX over IMAP, gpg decrypts it with their key and verifies the
//! coordinator, nobody else's address is in it, the keyless copy is held and goes out after
//! a key import; an injected 451 is retried until it clears; a 550 is dead with the reply.

mod outbox_case;
mod outbox_gpg;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use casegate::config::{PasswordSource, SmtpConfig, TlsMode};
use casegate::outbox::{self, OutboxFilter, Selection, SmtpSender};
use casegate::store::Store;
use futures::StreamExt;
use outbox_case::*;
use outbox_gpg::{GpgHome, addresses, coordinator_cert, pgp_block};
use sequoia_openpgp::Cert;
use support::MailServers;

/// The coordinator's relay as a deployment would configure it: STARTTLS with the servers'
/// CA, AUTH as the coordinator.
fn smtp(servers: &MailServers) -> SmtpConfig {
    SmtpConfig {
        host: "localhost".into(),
        port: servers.smtp_port,
        tls: TlsMode::Starttls,
        ca_file: Some(servers.ca_cert.clone()),
        pin: Default::default(),
        username: Some(FROM.into()),
        password: PasswordSource {
            password_file: Some(servers.password_file.clone()),
            password_env: None,
        },
        timeout_secs: 10,
    }
}

/// Every message in `user`'s INBOX, fetched over IMAP (BODY.PEEK[]).
async fn imap_inbox(servers: &MailServers, user: &str) -> Vec<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", servers.imap_port))
        .await
        .unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().unwrap(); // greeting
    let mut session = client
        .login(user, support::PASSWORD)
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let mailbox = session.select("INBOX").await.unwrap();
    let mut out = Vec::new();
    if mailbox.exists > 0 {
        let stream = session.fetch("1:*", "BODY.PEEK[]").await.unwrap();
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            let item = item.unwrap();
            if let Some(body) = item.body() {
                out.push(body.to_vec());
            }
        }
    }
    session.logout().await.unwrap();
    out
}

fn row(store: &Store, addr: &str) -> outbox::OutboxRow {
    store
        .outbox_rows(&OutboxFilter::default())
        .unwrap()
        .into_iter()
        .find(|r| r.address == addr)
        .unwrap()
}

fn signing_fpr(cert: &Cert) -> String {
    cert.keys()
        .with_policy(&sequoia_openpgp::policy::StandardPolicy::new(), None)
        .for_signing()
        .next()
        .unwrap()
        .key()
        .fingerprint()
        .to_hex()
}

/// gpg decrypts with the recipient's key and verifies the coordinator; returns the inner.
fn open_with_gpg(home: &GpgHome, raw: &[u8], signer: &str) -> String {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let (inner, status) = home.decrypt(pgp_block(&text, "MESSAGE").as_bytes());
    assert!(status.contains("DECRYPTION_OKAY"), "{status}");
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(status.contains(&format!("VALIDSIG {signer}")), "{status}");
    String::from_utf8(inner).unwrap()
}

#[test]
fn three_vendor_orgs_each_contact_reads_exactly_one_mail_over_imap() {
    let servers = MailServers::start();
    let data = tempfile::tempdir().unwrap();
    let mut store = Store::open(&data.path().join("casegate.sqlite")).unwrap();
    let thread = case(&mut store, "VU#409117");
    let coordinator = coordinator_cert(FROM);
    let signer = signing_fpr(&coordinator);

    // VendorA: two contacts; VendorB: one; VendorC: one without a key.
    let mut homes: HashMap<&str, GpgHome> = HashMap::new();
    for (org, addr, algo) in [
        ("VendorA", "vendor@example.test", "future-default"),
        ("VendorA", "vendor2@example.test", "rsa3072"),
        ("VendorB", "psirt@example.test", "future-default"),
    ] {
        let home = GpgHome::new();
        let cert = home.gen_key(addr, algo, "encr", "never");
        home.import_cert(&coordinator);
        add(&mut store, &thread, org, addr, Some(&cert));
        homes.insert(addr, home);
    }
    add(&mut store, &thread, "VendorC", "vendor3@example.test", None);
    let everyone = [
        "vendor@example.test",
        "vendor2@example.test",
        "psirt@example.test",
        "vendor3@example.test",
    ];

    let queued = outbox::notify(
        &mut store,
        &coordinator,
        &thread,
        &Selection::All,
        &notice("Advisory draft: stack overflow in the name parameter.\n"),
        &config(),
        FROM,
    )
    .unwrap();
    let lines: Vec<String> = queued.iter().map(|q| q.to_string()).collect();
    assert_eq!(queued.len(), 4, "{lines:#?}");
    assert!(lines.contains(&"vendor3@example.test (VendorC): held: no valid encryption key: no key bound to this contact".to_string()), "{lines:#?}");

    let rt = runtime();
    let sender = rt
        .block_on(async { SmtpSender::new(&smtp(&servers)) })
        .unwrap();
    deliver_all(&mut store, &sender, &rt);

    for (addr, home) in &homes {
        let inbox = rt.block_on(imap_inbox(&servers, addr));
        assert_eq!(inbox.len(), 1, "{addr} has {} mails", inbox.len());
        let r = row(&store, addr);
        assert_eq!(r.status, "sent");
        assert_eq!(r.attempts, 1);
        let mid = r.message_id.clone().unwrap();
        let text = String::from_utf8(inbox[0].clone()).unwrap();
        // Dovecot adds Return-Path/Delivered-To naming this recipient only.
        for a in addresses(&text) {
            assert!(
                a == *addr || a == FROM || format!("<{a}>") == mid || a.ends_with("@localhost"),
                "{a} in the mail to {addr}"
            );
        }
        let inner = open_with_gpg(home, &inbox[0], &signer);
        assert!(inner.contains("Subject: [VU#409117] Buffer overflow in FooRouter"));
        assert!(inner.contains("Advisory draft"));
        for other in everyone {
            assert!(!inner.contains(other), "{other} inside the copy for {addr}");
        }
        // Replies to this copy route to the thread by In-Reply-To.
        assert_eq!(store.thread_of_sent(&[mid]).unwrap().unwrap().1, thread.id);
    }
    // Exactly one envelope recipient per SMTP transaction, authenticated as the coordinator.
    let accepted = servers.smtp_accepted();
    assert_eq!(accepted.len(), 3);
    for copy in &accepted {
        assert_eq!(copy.rcpt_tos.len(), 1);
        assert_eq!(copy.auth_user.as_deref(), Some(FROM));
    }
    assert!(
        rt.block_on(imap_inbox(&servers, "vendor3@example.test"))
            .is_empty()
    );
    assert_eq!(row(&store, "vendor3@example.test").status, "held");
    let listing: Vec<String> = outbox::list(&store, &OutboxFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert!(
        listing.iter().any(|l| l
            .starts_with("VU#409117 vendor@example.test (VendorA) sent attempts=1 key=")
            && l.contains("reply=\"250")),
        "{listing:#?}"
    );
    assert!(
        listing.iter().any(|l| l.contains(
            "vendor3@example.test (VendorC) held attempts=0 key=- reason=\"no valid encryption key"
        )),
        "{listing:#?}"
    );

    // Releasing before a key arrives changes nothing.
    let again = outbox::release_held(&mut store, Some(thread.id)).unwrap();
    assert_eq!((again.len(), again[0].status.as_str()), (1, "held"));

    // The vendor sends a key; release seals the kept signed notice and it arrives.
    let home3 = GpgHome::new();
    let cert3 = home3.gen_key("vendor3@example.test", "future-default", "encr", "never");
    home3.import_cert(&coordinator);
    add(
        &mut store,
        &thread,
        "VendorC",
        "vendor3@example.test",
        Some(&cert3),
    );
    let released = outbox::release_held(&mut store, None).unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].status, "queued");
    deliver_all(&mut store, &sender, &rt);
    let inbox3 = rt.block_on(imap_inbox(&servers, "vendor3@example.test"));
    assert_eq!(inbox3.len(), 1);
    open_with_gpg(&home3, &inbox3[0], &signer);
    for addr in homes.keys() {
        assert_eq!(
            rt.block_on(imap_inbox(&servers, addr)).len(),
            1,
            "{addr} got a second mail"
        );
    }
}

#[test]
fn smtp_fail_temp_retries_then_delivers_and_perm_is_dead() {
    let servers = MailServers::start();
    let rt = runtime();
    let sender = rt
        .block_on(async { SmtpSender::new(&smtp(&servers)) })
        .unwrap();

    let d1 = tempfile::tempdir().unwrap();
    let mut store = one_vendor_store(d1.path(), "VU#300101").0;
    servers.smtp_fail("temp", None);
    rt.block_on(outbox::deliver_due(&mut store, &sender, &config(), None))
        .unwrap();
    // Until the retry falls due (backoff of about a second), a round attempts nothing.
    let due = store.next_due_at().unwrap().unwrap();
    assert!(due > chrono::Utc::now(), "retried at once: {due}");
    while chrono::Utc::now() < due {
        std::thread::sleep(Duration::from_millis(20));
    }
    rt.block_on(outbox::deliver_due(&mut store, &sender, &config(), None))
        .unwrap();
    let r = row(&store, "vendor@example.test");
    assert_eq!(r.status, "retrying");
    assert_eq!(r.attempts, 2, "{r:?}");
    assert!(r.last_reply.as_deref().unwrap().contains("451"));
    assert!(
        rt.block_on(imap_inbox(&servers, "vendor@example.test"))
            .is_empty()
    );
    servers.smtp_fail("off", None);
    deliver_all(&mut store, &sender, &rt);
    assert_eq!(row(&store, "vendor@example.test").status, "sent");
    let attempts = store.outbox_attempts(r.id).unwrap();
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["temporary", "temporary", "accepted"]);
    // The same ledger as an analyst reads it: `outbox list --attempts --json`.
    let config_file = d1.path().join("casegate.toml");
    std::fs::write(
        &config_file,
        format!("[store]\npath = {:?}\n", d1.path().join("s.sqlite")),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_casegate"))
        .arg("--config")
        .arg(&config_file)
        .args(["outbox", "list", "--attempts", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(listed["status"], "sent", "{listed}");
    assert_eq!(listed["attempts"], 3, "{listed}");
    let log = listed["attempt_log"].as_array().unwrap();
    let logged: Vec<&str> = log.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(logged, ["temporary", "temporary", "accepted"]);
    assert!(
        log[0]["reply"].as_str().unwrap().contains("451"),
        "{listed}"
    );
    assert!(
        log[2]["reply"].as_str().unwrap().starts_with("250"),
        "{listed}"
    );
    assert_eq!(
        rt.block_on(imap_inbox(&servers, "vendor@example.test"))
            .len(),
        1
    );

    let d2 = tempfile::tempdir().unwrap();
    let mut store = one_vendor_store(d2.path(), "VU#300102").0;
    servers.smtp_fail("perm", Some("vendor@example.test"));
    rt.block_on(outbox::deliver_due(&mut store, &sender, &config(), None))
        .unwrap();
    let r = row(&store, "vendor@example.test");
    assert_eq!(r.status, "dead");
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("Permanent failure (injected)"),
        "{r:?}"
    );
    assert!(r.last_reply.as_deref().unwrap().contains("550"));
    servers.smtp_fail("off", None);
    let round = rt
        .block_on(outbox::deliver_due(&mut store, &sender, &config(), None))
        .unwrap();
    assert_eq!(round.attempted(), 0);
    assert_eq!(
        rt.block_on(imap_inbox(&servers, "vendor@example.test"))
            .len(),
        1,
        "only the first test's mail"
    );
}
