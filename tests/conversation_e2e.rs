//! A whole conversation through the running daemon and real mail servers: a new report is
//! acknowledged over SMTP with its number, the reporter's reply routes by that number, the
//! report becomes a case, the vendor writes with the case number, mail quoting the old VRF#
//! lands in the case, and an out-of-office reply is stored but never answered.

mod outbox_gpg;
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::MailServers;
use support::cli::{bin, casegate, json_lines, sigterm, wait_for};

/// Every message in a user's INBOX, raw.
fn inbox(servers: &MailServers, user: &str) -> Vec<Vec<u8>> {
    let md: PathBuf = servers.maildir(user);
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(md.join(sub)) {
            let mut files: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                out.push(std::fs::read(f).unwrap());
            }
        }
    }
    out
}

fn header(raw: &[u8], name: &str) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    msg.header_raw(name).map(|v| v.trim().to_string())
}

fn mail(from: &str, subject: &str, id: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: cert@example.test\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n{extra}\r\nBody of {id}.\r\n"
    )
    .into_bytes()
}

#[test]
fn report_ack_reply_promotion_vendor_reply_and_no_robot_talk() {
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        format!(
            r#"
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
username = "cert@example.test"
password_file = "{pw}"
poll_interval_secs = 2
timeout_secs = 10

[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "starttls"
ca_file = "{ca}"
username = "cert@example.test"
password_file = "{pw}"
timeout_secs = 10
"#,
            imap = servers.imap_port,
            smtp = servers.smtp_port,
            ca = servers.ca_cert.display(),
            pw = servers.password_file.display()
        ),
    )
    .unwrap();
    casegate(dir, &["init"]);
    let mut child = Command::new(bin())
        .arg("serve")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // 1. A new report from someone we have never heard of.
    servers.deliver(
        "cert@example.test",
        &mail(
            "Rita Reporter <reporter@example.test>",
            "Stack overflow in WidgetOS",
            "rep-1@example.test",
            "",
        ),
    );
    wait_for(
        "the acknowledgment in the reporter's inbox",
        Duration::from_secs(60),
        || !inbox(&servers, "reporter@example.test").is_empty(),
    );
    let acks = inbox(&servers, "reporter@example.test");
    assert_eq!(acks.len(), 1);
    let ack = &acks[0];
    let subject = header(ack, "Subject").unwrap();
    let number = casegate::tracking::find_in_subject(&subject);
    assert_eq!(
        number.len(),
        1,
        "ack subject {subject:?} carries the new number"
    );
    let vrf = number[0].as_str().to_string();
    assert!(vrf.starts_with("VRF#"));
    assert_eq!(
        header(ack, "In-Reply-To").as_deref(),
        Some("<rep-1@example.test>")
    );
    assert!(header(ack, "Auto-Submitted").is_some_and(|v| v.starts_with("auto-")));
    let text = String::from_utf8_lossy(ack);
    assert!(
        !text.contains("WidgetOS"),
        "a plaintext ack says nothing about the report"
    );
    // Signed by the coordinator: gpg, knowing only the exported public key, verifies the
    // signed part exactly as it arrived in the reporter's mailbox (RFC 3156).
    let home = outbox_gpg::GpgHome::new();
    {
        use sequoia_openpgp::parse::Parse;
        let exported = casegate(dir, &["key", "export"]);
        home.import_cert(&sequoia_openpgp::Cert::from_bytes(exported.as_bytes()).unwrap());
    }
    // Dovecot stores LF line endings; MIME on the wire is CRLF.
    let wire = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let (signed, signature) = outbox_gpg::first_part_and_signature(&wire);
    let status = home.verify(&signature, &signed);
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(
        status.contains("casegate coordinator <cert@example.test>"),
        "{status}"
    );
    let ack_id = header(ack, "Message-ID").unwrap();

    // 2. The reporter answers the acknowledgment, keeping the number.
    servers.deliver(
        "cert@example.test",
        &mail(
            "Rita Reporter <reporter@example.test>",
            &format!("Re: [{vrf}] Report received"),
            "rep-2@example.test",
            &format!("In-Reply-To: {ack_id}\r\n"),
        ),
    );
    wait_for("the reply in the report", Duration::from_secs(30), || {
        let show = json_lines(&casegate(dir, &["show", &vrf, "--json"]));
        show[0]["messages"].as_array().unwrap().len() == 2
    });

    // 3. The analyst promotes the report and adds the vendor.
    let case = casegate(dir, &["promote", &vrf, "--to", "VU#123456"]);
    assert_eq!(case.trim(), "VU#123456");
    casegate(
        dir,
        &[
            "participant",
            "add",
            "VU#123456",
            "--org",
            "WidgetCorp",
            "--email",
            "vendor@example.test",
        ],
    );

    // 4. The vendor writes with the case number; the reporter still quotes the VRF#.
    servers.deliver(
        "cert@example.test",
        &mail(
            "WidgetCorp PSIRT <vendor@example.test>",
            "RE: VU#123456 vendor statement",
            "ven-1@example.test",
            "",
        ),
    );
    servers.deliver(
        "cert@example.test",
        &mail(
            "Rita Reporter <reporter@example.test>",
            &format!("Fwd: {vrf} more details"),
            "rep-3@example.test",
            "",
        ),
    );
    // 5. An out-of-office answer from the vendor: stored in the case, never acknowledged.
    servers.deliver(
        "cert@example.test",
        &mail(
            "WidgetCorp PSIRT <vendor@example.test>",
            "Automatic reply: VU#123456 vendor statement",
            "oof-1@example.test",
            "Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n",
        ),
    );
    wait_for(
        "all five messages in the case",
        Duration::from_secs(30),
        || {
            let show = json_lines(&casegate(dir, &["show", "VU#123456", "--json"]));
            show[0]["messages"].as_array().unwrap().len() == 5
        },
    );
    let show = json_lines(&casegate(dir, &["show", "VU#123456", "--json"]));
    let messages = show[0]["messages"].as_array().unwrap();
    let oof = messages
        .iter()
        .find(|m| m["message_id"] == "<oof-1@example.test>")
        .unwrap();
    assert_eq!(oof["automatic"], true);
    let vendor = messages
        .iter()
        .find(|m| m["message_id"] == "<ven-1@example.test>")
        .unwrap();
    assert_eq!(vendor["thread"], "VU#123456");
    let contacts: Vec<&str> = show[0]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert!(
        contacts.contains(&"reporter@example.test"),
        "the reporter became a participant of the case"
    );

    // Exactly one acknowledgment ever went out, and nothing answered the robot. An answer is
    // recorded as owed in the transaction that stores the message and queued by the outbox
    // side, so with all five stored and nothing owed the outbox is complete; once nothing in
    // it waits, the mailboxes are too (the SMTP receiver delivers before it says 250).
    let db = dir.join("casegate-data/casegate.sqlite");
    wait_for("no acknowledgment owed", Duration::from_secs(30), || {
        casegate::store::Store::open(&db)
            .and_then(|s| s.pending_acks())
            .is_ok_and(|owed| owed.is_empty())
    });
    let outbox = json_lines(&casegate(dir, &["outbox", "list", "--json"]));
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    wait_for("the outbox to drain", Duration::from_secs(30), || {
        json_lines(&casegate(dir, &["outbox", "list", "--json"]))
            .iter()
            .all(|r| r["status"] == "sent")
    });
    assert_eq!(inbox(&servers, "reporter@example.test").len(), 1);
    assert!(inbox(&servers, "vendor@example.test").is_empty());
    assert_eq!(sigterm(&mut child), Some(0));
}
