//! Connection security against real Dovecot with a private CA: implicit TLS and STARTTLS work
//! when `ca_file` names the CA, fail with a plain certificate message without it, and a wrong
//! password is a login error that never repeats the password.

mod support;

use casegate::imap::{self, ImapError};
use support::MailServers;
use support::imap_sink::{
    StoreSink, Watcher, fast_options, imap_config, init_tracing, stored_hashes, test_message,
    wait_until,
};

const CERT: &str = "cert@example.test";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn implicit_tls_and_starttls_trust_the_configured_ca_and_nothing_else() {
    init_tracing();
    let servers = MailServers::start();
    let rt = runtime();
    let ca = format!("ca_file = \"{}\"", servers.ca_cert.display());
    for tls in ["implicit", "starttls"] {
        let report = rt
            .block_on(imap::check(&imap_config(&servers, CERT, tls, &ca)))
            .unwrap_or_else(|e| panic!("{tls} with ca_file: {e}"));
        assert!(
            report.capabilities.iter().any(|c| c == "IDLE"),
            "{report:?}"
        );
        assert_eq!(report.mailboxes, vec![("INBOX".to_string(), 0)]);

        let err = rt
            .block_on(imap::check(&imap_config(&servers, CERT, tls, "")))
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ImapError::Tls { .. }), "{tls}: {err:?}");
        assert!(
            text.contains("certificate is not trusted") && text.contains("ca_file"),
            "{tls}: {text}"
        );
    }
    // The name checked is the configured host: the certificate covers 127.0.0.1 and localhost.
    let mut by_name = imap_config(&servers, CERT, "implicit", &ca);
    by_name.host = "localhost".into();
    rt.block_on(imap::check(&by_name)).unwrap();
}

#[test]
fn watch_over_implicit_tls_stores_and_an_untrusted_server_shows_in_status() {
    init_tracing();
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    servers.deliver(CERT, &test_message("tls", 0));
    let ca = format!("ca_file = \"{}\"", servers.ca_cert.display());
    let watcher = Watcher::start(
        imap_config(&servers, CERT, "implicit", &ca),
        StoreSink::open(&db),
        fast_options(),
    );
    assert!(wait_until(30, || stored_hashes(&db).len() == 1
        && servers.count(CERT, "INBOX") == 0));
    watcher.stop().unwrap();

    // Without the CA the watcher keeps retrying (the operator may fix the server) and says why.
    let config = imap_config(&servers, "vendor@example.test", "implicit", "");
    let account = config.account_name();
    let watcher = Watcher::start(config, StoreSink::open(&db), fast_options());
    assert!(wait_until(10, || watcher
        .status
        .get(&account, "INBOX")
        .and_then(|s| s.last_error)
        .is_some_and(|e| e.contains("certificate is not trusted"))));
    assert!(!watcher.status.get(&account, "INBOX").unwrap().connected);
    watcher.stop().unwrap();
}

#[test]
fn wrong_password_is_a_login_error_without_the_password() {
    init_tracing();
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime();
    for (i, wrong) in ["not-the-secret-42", "pässwört-ünïcode"].iter().enumerate() {
        let file = tmp.path().join(format!("pw{i}"));
        write_secret(&file, &format!("{wrong}\n"));
        let mut config = imap_config(&servers, CERT, "none", "");
        config.password.password_file = Some(file);
        let err = rt.block_on(imap::check(&config)).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(matches!(err, ImapError::Auth { .. }), "{err:?}");
        assert!(text.contains(CERT), "{text}");
        assert!(!text.contains(wrong), "the password leaked: {text}");
    }
    // A password that is not printable ASCII goes through AUTHENTICATE PLAIN and works.
    let user = "unicode@example.test";
    let servers = MailServers::start_with_users(&["unicode@example.test=pässwört-ünïcode"]);
    let file = tmp.path().join("pw-ok");
    write_secret(&file, "pässwört-ünïcode\n");
    let mut config = imap_config(&servers, user, "none", "");
    config.password.password_file = Some(file);
    rt.block_on(imap::check(&config)).unwrap();
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepts TCP connections and says nothing: every step must be bounded.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    write_secret(&pw, "x");
    let text = format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nusername = \"u\"\npassword_file = \"{}\"\ntimeout_secs = 1\n",
        pw.display()
    );
    let config: casegate::config::ImapConfig = toml::from_str(&text).unwrap();
    let err = runtime().block_on(imap::check(&config)).unwrap_err();
    assert!(matches!(err, ImapError::Timeout { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no answer within 1 s to greeting"),
        "{err}"
    );
}

/// A password file as casegate accepts it: mode 0600 (one others can read is refused).
fn write_secret(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
