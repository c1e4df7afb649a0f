//! Mail servers with a self-signed certificate (`openssl req -x509`, its own CA): the project's
//! Dovecot and SMTP receiver are started with one. rustls refuses it even in `ca_file`;
//! `casegate check` says so and prints the fingerprint; pinned by `tls_cert_sha256` (IMAP,
//! implicit TLS) or `tls_cert_file` (IMAP STARTTLS, SMTP STARTTLS) it is read and sent through;
//! another pin leaves it refused.

mod support;

use std::process::Command;
use std::time::Duration;

use support::cli::{Desk, sigterm, wait_for};
use support::{MailServers, ServerOptions};

/// The certificate's SHA-256 as openssl prints it (`AB:CD:...`).
fn openssl_fingerprint(pem: &std::path::Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .to_string()
}

fn config(servers: &MailServers, imap_pin: &str, smtp_pin: &str) -> String {
    format!(
        "[outbox]\nretry_base_secs = 1\nretry_max_secs = 1\n\n\
         [[imap]]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\nca_file = \"{ca}\"\n\
         username = \"cert@example.test\"\npassword_file = \"{pw}\"\ntimeout_secs = 10\n{imap_pin}\n\n\
         [smtp]\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\nca_file = \"{ca}\"\n\
         username = \"cert@example.test\"\npassword_file = \"{pw}\"\ntimeout_secs = 10\n{smtp_pin}\n",
        servers.imaps_port,
        servers.smtp_port,
        ca = servers.ca_cert.display(),
        pw = servers.password_file.display(),
    )
}

fn finding(d: &Desk, which: &str) -> serde_json::Value {
    let out = d.run(&["check", "--json"]);
    support::cli::json_lines(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .find(|f| f["check"].as_str().unwrap().starts_with(which))
        .unwrap_or_else(|| panic!("no {which} finding"))
}

#[test]
fn a_self_signed_server_is_refused_until_its_certificate_is_pinned() {
    let servers = MailServers::start_with(&ServerOptions {
        self_signed: true,
        ..ServerOptions::default()
    });
    let fpr = openssl_fingerprint(&servers.ca_cert);
    let d = Desk::new();

    // Not pinned: refused although it is the ca_file, and the fingerprint to pin is printed.
    d.write("casegate.toml", config(&servers, "", "").as_bytes());
    let imap = finding(&d, "imap");
    assert_eq!(imap["ok"], false, "{imap}");
    let detail = imap["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("tls_cert_sha256 = \"{fpr}\"")),
        "{detail}"
    );
    let smtp = finding(&d, "smtp");
    assert_eq!(smtp["ok"], false, "{smtp}");
    assert!(smtp["detail"].as_str().unwrap().contains(&fpr), "{smtp}");

    // Another certificate's fingerprint pins nothing.
    let other = "AA:".repeat(31) + "AA";
    d.write(
        "casegate.toml",
        config(&servers, &format!("tls_cert_sha256 = \"{other}\""), "").as_bytes(),
    );
    assert_eq!(finding(&d, "imap")["ok"], false);

    // Pinned (IMAP by fingerprint, written without colons; SMTP by the certificate file).
    let pinned = config(
        &servers,
        &format!(
            "tls_cert_sha256 = \"{}\"",
            fpr.replace(':', "").to_lowercase()
        ),
        &format!("tls_cert_file = \"{}\"", servers.ca_cert.display()),
    );
    d.write("casegate.toml", pinned.as_bytes());
    let imap = finding(&d, "imap");
    assert_eq!(imap["ok"], true, "{imap}");
    assert!(imap["detail"].as_str().unwrap().contains(&fpr), "{imap}");
    let smtp = finding(&d, "smtp");
    assert_eq!(smtp["ok"], true, "{smtp}");
    assert!(
        smtp["detail"].as_str().unwrap().contains("pinned"),
        "{smtp}"
    );

    // serve reads the mailbox over the pinned connection...
    servers.deliver(
        "cert@example.test",
        b"From: reporter@example.test\r\nTo: cert@example.test\r\nSubject: A bug\r\nMessage-ID: <pin-1@example.test>\r\n\r\nDetails.\r\n",
    );
    let mut serve = Command::new(support::cli::bin())
        .current_dir(&d.work)
        .arg("--data-dir")
        .arg(&d.data)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(d.work.join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    wait_for(
        "the message read over IMAP",
        Duration::from_secs(60),
        || d.json(&["list", "--json"]).len() == 1,
    );
    // ...and sends through the pinned relay (the acknowledgment of the new report).
    wait_for("the acknowledgment sent", Duration::from_secs(60), || {
        servers
            .smtp_accepted()
            .iter()
            .any(|c| c.rcpt_tos == ["reporter@example.test"])
    });
    assert_eq!(sigterm(&mut serve), Some(0));

    // IMAP over STARTTLS, pinned the same way.
    let starttls = pinned
        .replace(
            &format!("port = {}", servers.imaps_port),
            &format!("port = {}", servers.imap_port),
        )
        .replacen("tls = \"implicit\"", "tls = \"starttls\"", 1);
    d.write("casegate.toml", starttls.as_bytes());
    assert_eq!(finding(&d, "imap")["ok"], true);
}
