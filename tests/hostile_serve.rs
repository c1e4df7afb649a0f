//! Hostile mail under a real `casegate serve`: every class of poison message (tests/
//! hostile_cases) followed by a good one, in the Maildir drop folder and in an IMAP mailbox
//! (the project's Dovecot). Each good message is stored, each poison one quarantined with the
//! reason for its class (or stored, when it is hostile in shape but within every limit), every
//! source moves on, and the daemon keeps running. A message that kills the process (a debug
//! build's `CASEGATE_DEBUG_ABORT_ON`, standing in for a stack overflow or an allocation
//! failure) is given up after `limits.max_attempts` restarts.

mod hostile_cases;
mod support;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hostile_cases::{Case, Expect};
use support::MailServers;
use support::cli::{bin, casegate, json_lines, sigterm, wait_for};

/// `max_message_bytes` in these tests: the deep cases (~6 MB) fit, the oversized one does not.
const MAX_MESSAGE_BYTES: usize = 8 << 20;
const ABORT_MARKER: &str = "CASEGATE-TEST-ABORT-7d1c";

fn maildir(dir: &Path) -> PathBuf {
    dir.join("casegate-data").join("Maildir")
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn deliver(dir: &Path, name: &str, raw: &[u8]) {
    let md = maildir(dir);
    let tmp = md.join("tmp").join(name);
    std::fs::write(&tmp, raw).unwrap();
    std::fs::rename(&tmp, md.join("new").join(name)).unwrap();
}

fn write_config(dir: &Path, extra: &str) {
    std::fs::write(
        dir.join("casegate.toml"),
        format!(
            "[maildir]\npoll_interval_ms = 100\n\n[policy]\nmax_message_bytes = {MAX_MESSAGE_BYTES}\n\n{extra}"
        ),
    )
    .unwrap();
}

/// A `casegate serve` that is killed when dropped, so a failing test leaves no daemon behind.
struct Serve(Child);

impl std::ops::Deref for Serve {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Serve {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start_serve(dir: &Path, log: &str) -> Serve {
    Serve(
        Command::new(bin())
            .arg("serve")
            .current_dir(dir)
            .env("CASEGATE_DEBUG_ABORT_ON", ABORT_MARKER)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(log)).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Subjects of the stored reports: the good messages are new reports.
fn report_titles(dir: &Path) -> Vec<String> {
    json_lines(&casegate(dir, &["list", "--kind", "report", "--json"]))
        .iter()
        .filter_map(|t| t["title"].as_str().map(str::to_string))
        .collect()
}

fn quarantined(dir: &Path) -> Vec<serde_json::Value> {
    json_lines(&casegate(dir, &["quarantine", "list", "--json"]))
}

/// Every case came out as it must: quarantined with its reason, or stored. `key` finds a case's
/// quarantine entry by its source.
fn check_cases(dir: &Path, cases: &[Case], source_of: impl Fn(usize, &Case) -> String) {
    let q = quarantined(dir);
    let by_source: HashMap<String, &serde_json::Value> = q
        .iter()
        .map(|m| (m["source"].as_str().unwrap_or("").to_string(), m))
        .collect();
    for (i, case) in cases.iter().enumerate() {
        let source = source_of(i, case);
        let entry = by_source.get(&source);
        match (&case.expect, entry) {
            (Expect::Quarantine(why), Some(m)) => {
                let reason = m["reason"].as_str().unwrap_or("");
                assert!(
                    reason.contains(why),
                    "{}: quarantined for {reason:?}, expected {why:?}",
                    case.name
                );
            }
            (Expect::Quarantine(why), None) => {
                panic!(
                    "{}: not quarantined (expected {why:?}); quarantine: {q:?}",
                    case.name
                )
            }
            (Expect::Stored, Some(m)) => {
                panic!("{}: quarantined: {}", case.name, m["reason"])
            }
            (Expect::Stored, None) => {}
        }
    }
}

/// Every class, the OpenPGP ones encrypted to this data dir's coordinator key: 40 layers
/// around binary ciphertext (past the default depth of 32), or, for IMAP, where binary does
/// not survive, 10 layers of base64 (past the depth of 8 that config sets).
fn all_cases(dir: &Path, binary: bool) -> Vec<Case> {
    let mut cases = hostile_cases::all(&hostile_cases::clearsigned_text(), MAX_MESSAGE_BYTES);
    let cert = casegate(dir, &["key", "export"]);
    let layers = if binary { 40 } else { 10 };
    cases.extend(hostile_cases::openpgp_nested(
        cert.as_bytes(),
        layers,
        200,
        binary,
    ));
    cases
}

fn assert_running(child: &mut Child, dir: &Path, log: &str) {
    if let Some(status) = child.try_wait().unwrap() {
        let log = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
        panic!("casegate serve exited ({status}); its log:\n{log}");
    }
}

#[test]
fn maildir_poison_messages_never_stop_the_mail_behind_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_config(dir, "");
    casegate(dir, &["init"]);
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir(dir).join(sub)).unwrap();
    }
    let cases = all_cases(dir, true);
    for (i, case) in cases.iter().enumerate() {
        deliver(dir, &format!("{i:02}-a-{}", case.name), &case.raw);
        deliver(dir, &format!("{i:02}-b-good"), &hostile_cases::good(i));
    }
    let mut child = start_serve(dir, "serve.log");
    wait_for(
        "every file to be stored and moved to cur/",
        Duration::from_secs(300),
        || {
            assert_running(&mut child, dir, "serve.log");
            count(&maildir(dir).join("new")) == 0
        },
    );
    assert_eq!(count(&maildir(dir).join("cur")), 2 * cases.len());
    let titles = report_titles(dir);
    for i in 0..cases.len() {
        let want = format!("Vulnerability report {i}");
        assert!(titles.contains(&want), "{want} not stored: {titles:?}");
    }
    check_cases(dir, &cases, |i, c| {
        format!("casegate-data/Maildir/new/{i:02}-a-{}", c.name)
    });
    // The oversized one: its head, size and the SHA-256 of all of it.
    let q = quarantined(dir);
    let big = q
        .iter()
        .find(|m| m["flags"] == "oversized")
        .expect("the oversized message is in quarantine");
    let raw = &cases.iter().find(|c| c.name == "oversized").unwrap().raw;
    assert_eq!(big["raw_size"], raw.len());
    assert_eq!(big["sha256"], sha256_hex(raw));
    assert_running(&mut child, dir, "serve.log");
    assert_eq!(sigterm(&mut child), Some(0));
}

#[test]
fn maildir_message_that_kills_casegate_is_given_up_after_max_attempts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_config(dir, "[limits]\nmax_attempts = 2\n");
    casegate(dir, &["init"]);
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir(dir).join(sub)).unwrap();
    }
    let poison = format!(
        "From: m@evil.example\r\nTo: cert@example.test\r\nSubject: x\r\n\r\n{ABORT_MARKER}\r\n"
    );
    deliver(dir, "1-poison", poison.as_bytes());
    deliver(dir, "2-good", &hostile_cases::good(1));
    // Like a supervisor (systemd's Restart=), start it again whenever it dies.
    let mut aborts = 0;
    let mut child = start_serve(dir, "serve-0.log");
    let start = Instant::now();
    while count(&maildir(dir).join("new")) > 0 {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out");
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.signal(), Some(6), "died of SIGABRT, not {status}");
            aborts += 1;
            assert!(aborts <= 2, "casegate died more than max_attempts times");
            child = start_serve(dir, &format!("serve-{aborts}.log"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(aborts, 2, "each try before giving up killed the process");
    assert_eq!(report_titles(dir), vec!["Vulnerability report 1"]);
    let q = quarantined(dir);
    assert_eq!(q.len(), 1, "{q:?}");
    let reason = q[0]["reason"].as_str().unwrap();
    assert!(reason.contains("given up after 2 tries"), "{reason}");
    assert!(reason.contains("stopped while reading it"), "{reason}");
    assert_running(&mut child, dir, &format!("serve-{aborts}.log"));
    assert_eq!(sigterm(&mut child), Some(0));
}

fn imap_config(servers: &MailServers, extra: &str) -> String {
    format!(
        r#"[maildir]
enabled = false

[policy]
max_message_bytes = {MAX_MESSAGE_BYTES}

{extra}
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
timeout_secs = 20
"#,
        port = servers.imap_port,
        ca = servers.ca_cert.display(),
        pw = servers.password_file.display()
    )
}

#[test]
fn imap_poison_messages_never_stop_the_mail_behind_them() {
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        imap_config(&servers, "[limits]\nmax_nesting_depth = 8\n"),
    )
    .unwrap();
    casegate(dir, &["init"]);
    let cases = all_cases(dir, false);
    let mut uids = Vec::new();
    let mut uid = 0;
    for (i, case) in cases.iter().enumerate() {
        servers.deliver("cert@example.test", &case.raw);
        servers.deliver("cert@example.test", &hostile_cases::good(i));
        uid += 2;
        uids.push(uid - 1);
    }
    let uidvalidity = servers.uidvalidity("cert@example.test", "INBOX");
    let total = 2 * cases.len();
    let mut child = start_serve(dir, "serve.log");
    wait_for(
        "every message to be stored and moved",
        Duration::from_secs(300),
        || {
            assert_running(&mut child, dir, "serve.log");
            servers.count("cert@example.test", "casegate.processed") == total
        },
    );
    assert_eq!(servers.count("cert@example.test", "INBOX"), 0);
    let titles = report_titles(dir);
    for i in 0..cases.len() {
        let want = format!("Vulnerability report {i}");
        assert!(titles.contains(&want), "{want} not stored: {titles:?}");
    }
    check_cases(dir, &cases, |i, _| {
        format!(
            "imap://cert/INBOX;UIDVALIDITY={uidvalidity}/;UID={}",
            uids[i]
        )
    });
    let q = quarantined(dir);
    let big = q
        .iter()
        .find(|m| m["flags"] == "oversized")
        .expect("the oversized message is in quarantine");
    let raw = &cases.iter().find(|c| c.name == "oversized").unwrap().raw;
    assert_eq!(big["raw_size"], raw.len(), "read in chunks to its end");
    assert_eq!(big["sha256"], sha256_hex(raw));
    assert_running(&mut child, dir, "serve.log");
    assert_eq!(sigterm(&mut child), Some(0));
}

#[test]
fn imap_message_that_kills_casegate_is_given_up_after_max_attempts() {
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        imap_config(&servers, "[limits]\nmax_attempts = 2\n"),
    )
    .unwrap();
    casegate(dir, &["init"]);
    let poison = format!(
        "From: m@evil.example\r\nTo: cert@example.test\r\nSubject: x\r\n\r\n{ABORT_MARKER}\r\n"
    );
    servers.deliver("cert@example.test", &hostile_cases::good(1));
    servers.deliver("cert@example.test", poison.as_bytes());
    servers.deliver("cert@example.test", &hostile_cases::good(2));
    let mut aborts = 0;
    let mut child = start_serve(dir, "serve-0.log");
    let start = Instant::now();
    while servers.count("cert@example.test", "casegate.processed") < 3 {
        assert!(start.elapsed() < Duration::from_secs(180), "timed out");
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.signal(), Some(6), "died of SIGABRT, not {status}");
            aborts += 1;
            assert!(aborts <= 2, "casegate died more than max_attempts times");
            child = start_serve(dir, &format!("serve-{aborts}.log"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(aborts, 2);
    let mut titles = report_titles(dir);
    titles.sort();
    assert_eq!(
        titles,
        vec!["Vulnerability report 1", "Vulnerability report 2"]
    );
    let q = quarantined(dir);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0]["reason"]
            .as_str()
            .unwrap()
            .contains("given up after 2 tries"),
        "{q:?}"
    );
    assert_running(&mut child, dir, &format!("serve-{aborts}.log"));
    assert_eq!(sigterm(&mut child), Some(0));
}

fn sha256_hex(raw: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(raw))
}

/// A message the server cannot hand out (its file unreadable to Dovecot: every FETCH of it
/// fails) is fetched alone after the batch failed, counted, and given up: quarantined with
/// what is known, acknowledged, and the mail behind it stored.
#[test]
fn imap_message_the_server_cannot_read_is_given_up() {
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        imap_config(&servers, "[limits]\nmax_attempts = 2\n"),
    )
    .unwrap();
    casegate(dir, &["init"]);
    let marker = "UNREADABLE-ON-THE-SERVER-41f3";
    let bad =
        format!("From: m@evil.example\r\nTo: cert@example.test\r\nSubject: x\r\n\r\n{marker}\r\n");
    servers.deliver("cert@example.test", &hostile_cases::good(1));
    servers.deliver("cert@example.test", bad.as_bytes());
    servers.deliver("cert@example.test", &hostile_cases::good(2));
    // Find its file in Dovecot's Maildir and take away every permission.
    let md = servers.maildir("cert@example.test");
    let file = ["cur", "new"]
        .iter()
        .flat_map(|d| std::fs::read_dir(md.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read(p)
                .map(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
                .unwrap_or(false)
        })
        .expect("the message's file");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();

    let mut child = start_serve(dir, "serve.log");
    wait_for("both good messages", Duration::from_secs(120), || {
        assert_running(&mut child, dir, "serve.log");
        report_titles(dir).len() == 2
    });
    wait_for(
        "the unreadable one given up",
        Duration::from_secs(120),
        || {
            assert_running(&mut child, dir, "serve.log");
            !quarantined(dir).is_empty()
        },
    );
    let q = quarantined(dir);
    assert_eq!(q.len(), 1, "{q:?}");
    let reason = q[0]["reason"].as_str().unwrap();
    assert!(reason.contains("could not be read 2 times"), "{reason}");
    assert_eq!(q[0]["flags"], "unread");
    assert_eq!(q[0]["raw_size"], bad.len());
    assert_running(&mut child, dir, "serve.log");
    assert_eq!(sigterm(&mut child), Some(0));
}
