//! `casegate serve` against real Dovecot (the project's own harness): mail delivered to the
//! coordinator's INBOX is routed like `ingest` would route it and moved to the processed folder,
//! new mail during IDLE arrives promptly, and SIGTERM exits 0. (That it is moved only after it
//! is stored is tests/ordering.rs, with a store that refuses writes.)

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::MailServers;
use support::cli::{bin, casegate, json_lines, sigterm, wait_for};

fn mail(from: &str, subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: cert@example.test\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nBody of {id}.\r\n"
    )
    .into_bytes()
}

#[test]
fn serve_routes_imap_mail_like_ingest_and_moves_it() {
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        format!(
            r#"
[maildir]
enabled = false

[[imap]]
name = "cert"
host = "127.0.0.1"
port = {port}
tls = "starttls"
ca_file = "{ca}"
username = "cert@example.test"
password_file = "{pw}"
mailboxes = ["INBOX"]
processed_folder = "casegate/processed"
poll_interval_secs = 2
timeout_secs = 10
"#,
            port = servers.imap_port,
            ca = servers.ca_cert.display(),
            pw = servers.password_file.display()
        ),
    )
    .unwrap();
    casegate(dir, &["init"]);
    casegate(
        dir,
        &[
            "open",
            "case",
            "--title",
            "FooRouter overflow",
            "--number",
            "VU#409117",
        ],
    );
    casegate(
        dir,
        &[
            "participant",
            "add",
            "VU#409117",
            "--org",
            "FooCorp",
            "--email",
            "psirt@foocorp.example",
        ],
    );
    servers.deliver(
        "cert@example.test",
        &mail(
            "FooCorp PSIRT <psirt@foocorp.example>",
            "Re: [VU#409117] statement",
            "s1@foocorp.example",
        ),
    );
    servers.deliver(
        "cert@example.test",
        &mail(
            "Mallory <mallory@evil.example>",
            "VU#409117 please share",
            "m1@evil.example",
        ),
    );
    servers.deliver(
        "cert@example.test",
        &mail(
            "Rita <rita@reporter.example>",
            "SQL injection in BazCMS",
            "r1@reporter.example",
        ),
    );

    let mut child = Command::new(bin())
        .arg("serve")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "3 messages moved to the processed folder",
        Duration::from_secs(60),
        || servers.count("cert@example.test", "casegate.processed") == 3,
    );
    assert_eq!(servers.count("cert@example.test", "INBOX"), 0);

    let show = json_lines(&casegate(dir, &["show", "VU#409117", "--json"]));
    let ids: Vec<&str> = show[0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["<s1@foocorp.example>"],
        "only the participant posts"
    );
    let triage = json_lines(&casegate(dir, &["triage", "list", "--json"]));
    assert_eq!(triage.len(), 1);
    assert_eq!(
        triage[0]["reason"],
        "sender is not a participant of VU#409117"
    );
    let reports = json_lines(&casegate(dir, &["list", "--kind", "report", "--json"]));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["title"], "SQL injection in BazCMS");

    // New mail while the daemon idles is stored without a restart.
    servers.deliver(
        "cert@example.test",
        &mail(
            "FooCorp PSIRT <psirt@foocorp.example>",
            "VU#409117 patch ready",
            "s2@foocorp.example",
        ),
    );
    wait_for(
        "the new message to be stored and moved",
        Duration::from_secs(20),
        || servers.count("cert@example.test", "casegate.processed") == 4,
    );
    let show = json_lines(&casegate(dir, &["show", "VU#409117", "--json"]));
    assert_eq!(show[0]["messages"].as_array().unwrap().len(), 2);

    let status = json_lines(&casegate(dir, &["status", "--json"]));
    let mb = status.iter().find(|s| s["kind"] == "mailbox").unwrap();
    assert_eq!(mb["account"], "cert");
    assert_eq!(mb["stored_since"], 4);

    assert_eq!(sigterm(&mut child), Some(0));
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(!log.contains("secret"), "the password must never be logged");
}
