//! The end of an outbox copy's life, through `casegate serve` and the project's mail servers:
//! a copy that keeps failing past `max_age_hours` becomes `dead` with its last reply, and a
//! delivery report for a copy casegate sent (arriving over IMAP like any mail) marks that copy
//! `bounced`. Copies are queued with `casegate notify`, read back with `outbox list`.

mod outbox_gpg;
mod support;

use std::path::Path;
use std::time::Duration;

use outbox_gpg::GpgHome;
use serde_json::Value;
use support::MailServers;
use support::cli::{Serve, casegate, json_lines, wait_for};

const CASE: &str = "VU#409117";
const VENDOR: &str = "vendor@example.test";

/// A data dir with a casegate.toml for `servers` (IMAP for cert@, SMTP with STARTTLS and AUTH,
/// retries every second, copies given up after an hour), a case, and the vendor as its
/// participant with a gpg-made key. Returns the vendor's gpg home.
fn setup(dir: &Path, servers: &MailServers) -> GpgHome {
    std::fs::write(
        dir.join("casegate.toml"),
        format!(
            r#"
[maildir]
enabled = false

[outbox]
max_age_hours = 1
retry_base_secs = 1
retry_max_secs = 1

[[imap]]
name = "cert"
host = "127.0.0.1"
port = {imap}
tls = "none"
username = "cert@example.test"
password_file = "{pw}"
poll_interval_secs = 1
timeout_secs = 10

[smtp]
host = "localhost"
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
    casegate(
        dir,
        &[
            "open",
            "case",
            "--title",
            "FooRouter overflow",
            "--number",
            CASE,
        ],
    );
    let home = GpgHome::new();
    let cert = home.gen_key(VENDOR, "future-default", "encr", "never");
    let key = dir.join("vendor.asc");
    {
        use sequoia_openpgp::serialize::SerializeInto;
        std::fs::write(&key, cert.armored().to_vec().unwrap()).unwrap();
    }
    casegate(
        dir,
        &[
            "participant",
            "add",
            CASE,
            "--org",
            "VendorA",
            "--email",
            VENDOR,
            "--key",
            key.to_str().unwrap(),
        ],
    );
    home
}

/// `casegate notify CASE` with `body`; returns the queued copy's Message-ID.
fn notify(dir: &Path, body: &str) -> String {
    std::fs::write(dir.join("notice.txt"), body).unwrap();
    let queued = json_lines(&casegate(
        dir,
        &["notify", CASE, "--body", "notice.txt", "--json"],
    ));
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0]["status"], "queued", "{queued:?}");
    queued[0]["message_id"].as_str().unwrap().to_string()
}

/// The copy with this Message-ID as `outbox list --attempts --json` shows it.
fn copy(dir: &Path, message_id: &str) -> Value {
    json_lines(&casegate(dir, &["outbox", "list", "--attempts", "--json"]))
        .into_iter()
        .find(|r| r["message_id"] == message_id)
        .unwrap_or_else(|| panic!("{message_id} not in the outbox"))
}

#[test]
fn a_copy_failing_past_max_age_hours_is_dead_with_its_last_reply() {
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup(dir, &servers);
    servers.smtp_fail("temp", None);
    let id = notify(dir, "Advisory draft.\n");
    let serve = Serve::start(dir, &[]);

    // The relay keeps answering 451: retried, never given up within the hour.
    wait_for("two failed attempts", Duration::from_secs(60), || {
        copy(dir, &id)["attempts"].as_i64().unwrap_or(0) >= 2
    });
    let row = copy(dir, &id);
    assert_eq!(row["status"], "retrying", "{row}");

    // Make the copy an hour and a minute old, as if it had been failing all that time (the
    // clock of `created_at` is the one max_age_hours counts from).
    let conn = rusqlite::Connection::open(dir.join("casegate-data/casegate.sqlite")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let old = casegate::store::time_text(chrono::Utc::now() - chrono::Duration::minutes(61));
    conn.execute(
        "UPDATE outbox SET created_at = ?1 WHERE message_id = ?2",
        rusqlite::params![old, id],
    )
    .unwrap();
    // The next attempt past the age limit gives it up (the backdating may land during an
    // attempt: allow for one more).
    let before = copy(dir, &id)["attempts"].as_i64().unwrap();
    wait_for("another attempt", Duration::from_secs(60), || {
        let row = copy(dir, &id);
        row["attempts"].as_i64().unwrap() >= before + 2 || row["status"] != "retrying"
    });
    let row = copy(dir, &id);
    assert_eq!(row["status"], "dead", "{row}");
    let attempts = row["attempts"].as_i64().unwrap();
    let reason = row["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("gave up after {attempts} attempts over 1 h: ")),
        "{row}"
    );
    assert!(
        reason.ends_with("(451): 4.3.0 Temporary failure (injected)"),
        "{row}"
    );
    assert_eq!(
        row["last_reply"].as_str().unwrap(),
        row["attempt_log"].as_array().unwrap().last().unwrap()["reply"]
            .as_str()
            .unwrap()
    );
    assert!(
        row["last_reply"]
            .as_str()
            .unwrap()
            .ends_with("(451): 4.3.0 Temporary failure (injected)"),
        "{row}"
    );
    let log = row["attempt_log"].as_array().unwrap();
    assert_eq!(log.len() as i64, attempts);
    assert!(log.iter().all(|a| a["outcome"] == "temporary"), "{row}");

    // Dead is final: with the relay healthy again a new notice goes out, the dead copy does not.
    servers.smtp_fail("off", None);
    let fresh = notify(dir, "Second notice.\n");
    wait_for("the new notice to be sent", Duration::from_secs(60), || {
        copy(dir, &fresh)["status"] == "sent"
    });
    let row = copy(dir, &id);
    assert_eq!(row["status"], "dead");
    assert_eq!(row["attempts"].as_i64().unwrap(), attempts);
    let accepted = servers.smtp_accepted();
    assert_eq!(accepted.len(), 1, "only the new notice was accepted");
    assert!(
        String::from_utf8_lossy(&accepted[0].raw).contains(&fresh),
        "the accepted copy is the new notice"
    );
    assert_eq!(serve.stop(), Some(0));
}

#[test]
fn a_delivery_report_for_a_sent_copy_marks_it_bounced() {
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    setup(dir, &servers);
    let id = notify(dir, "Advisory draft.\n");
    let serve = Serve::start(dir, &[]);
    wait_for("the copy to be sent", Duration::from_secs(60), || {
        copy(dir, &id)["status"] == "sent"
    });

    // The vendor's server accepted it, then failed to deliver it: a Postfix DSN (the fixture's
    // shape) about this very copy reaches the coordinator's INBOX.
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/conversations/01-dsn-postfix-user-unknown.eml"),
    )
    .unwrap();
    let dsn = fixture
        .replace("<notice-1@casegate.example.test>", &id)
        .replace("nobody@foocorp.example", VENDOR);
    assert_ne!(dsn, fixture);
    servers.deliver("cert@example.test", dsn.as_bytes());
    // The event: the report is stored (filed with the case); its copy is marked by then.
    let delivery_report = format!("delivery report: copy {id} to {VENDOR} bounced");
    let filed = |show: &[Value]| -> Option<Value> {
        show[0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                m["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with(&delivery_report))
            })
            .cloned()
    };
    wait_for(
        "the report filed with the case",
        Duration::from_secs(60),
        || filed(&json_lines(&casegate(dir, &["show", CASE, "--json"]))).is_some(),
    );
    let row = copy(dir, &id);
    assert_eq!(row["status"], "bounced", "{row}");
    let reason = row["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("bounced: {VENDOR} failed 5.1.1 (550 5.1.1")),
        "{row}"
    );
    // The report itself is filed with the case as a delivery report, answered by nobody.
    let show = json_lines(&casegate(dir, &["show", CASE, "--json"]));
    let filed = filed(&show).unwrap();
    assert_eq!(filed["automatic"], true, "{filed}");
    assert!(json_lines(&casegate(dir, &["triage", "list", "--json"])).is_empty());
    let rows = json_lines(&casegate(dir, &["outbox", "list", "--json"]));
    assert_eq!(rows.len(), 1, "nothing answered the report: {rows:?}");
    assert_eq!(serve.stop(), Some(0));
}
