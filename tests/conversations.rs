//! Everyday machine mail at a coordinator's address: delivery status notifications in the
//! formats real MTAs and providers send, out-of-office and other auto-replies, list mail, and
//! people who merely *write* "out of office". Each fixture in `fixtures/conversations/` is
//! checked against the table in its README:
//! - `casegate::message::parse` says whether it is automatic (RFC 3834 and practice);
//! - `casegate::bounce::parse_bounce` finds the original Message-ID and per-recipient facts.
//!
//! Then, through the binary only, a mail loop: automatic mail from strangers never opens a
//! thread (so never earns an acknowledgment), and two robots answering each other end there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use casegate::bounce::{Bounce, parse_bounce};
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conversations")
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(file)).unwrap()
}

/// One recipient line of an expected report; `diagnostic` is a substring of the one-line text.
struct Rcpt {
    address: &'static str,
    action: &'static str,
    status: Option<&'static str>,
    diagnostic: Option<&'static str>,
}

const fn r(
    address: &'static str,
    action: &'static str,
    status: Option<&'static str>,
    diagnostic: Option<&'static str>,
) -> Rcpt {
    Rcpt {
        address,
        action,
        status,
        diagnostic,
    }
}

struct Report {
    original: Option<&'static str>,
    recipients: &'static [Rcpt],
}

/// Every fixture on disk; the per-fixture tests below must cover exactly these.
const FILES: &[&str] = &[
    "01-dsn-postfix-user-unknown.eml",
    "02-dsn-exim.eml",
    "03-dsn-sendmail.eml",
    "04-dsn-gmail.eml",
    "05-dsn-m365-ndr.eml",
    "06-dsn-postfix-delayed.eml",
    "07-dsn-two-recipients.eml",
    "08-dsn-postfix-relayed.eml",
    "09-bounce-qmail-text.eml",
    "10-bounce-exim-text.eml",
    "11-bounce-yahoo-text.eml",
    "12-mdn-read-receipt.eml",
    "21-ooo-gmail-vacation.eml",
    "22-ooo-exchange.eml",
    "23-ooo-x-autoreply-only.eml",
    "24-ticket-autoack-rt.eml",
    "25-list-mailman.eml",
    "26-bulk-list-unsubscribe-only.eml",
    "27-human-out-of-office-subject.eml",
    "28-human-reply-to-automatic-reply.eml",
    "29-ooo-sieve-vacation.eml",
];

#[test]
fn the_table_covers_every_fixture() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, FILES);
}

/// `automatic`: the rule the README names for this fixture (the first that matches), or
/// `None` for mail a person wrote.
fn check_automatic(file: &str, automatic: Option<&str>) {
    let view = casegate::message::parse(&read(file))
        .unwrap_or_else(|e| panic!("{file}: message::parse failed: {e}"));
    assert_eq!(view.automatic.as_deref(), automatic, "{file}: automatic");
}

fn check_bounce(file: &str, expected: Option<Report>) {
    let got: Option<Bounce> = parse_bounce(&read(file));
    let Some(want) = expected else {
        assert_eq!(got, None, "{file}: not a delivery report");
        return;
    };
    let got = got.unwrap_or_else(|| panic!("{file}: not recognised as a delivery report"));
    assert_eq!(
        got.original_message_id.as_deref(),
        want.original,
        "{file}: original Message-ID"
    );
    let addresses: Vec<&str> = got.recipients.iter().map(|r| r.address.as_str()).collect();
    let wanted: Vec<&str> = want.recipients.iter().map(|r| r.address).collect();
    assert_eq!(addresses, wanted, "{file}: recipients");
    for (g, w) in got.recipients.iter().zip(want.recipients) {
        assert_eq!(g.action, w.action, "{file}: action of {}", w.address);
        assert_eq!(
            g.status.as_deref(),
            w.status,
            "{file}: status of {}",
            w.address
        );
        match (w.diagnostic, g.diagnostic.as_deref()) {
            (None, _) => {}
            (Some(part), Some(text)) => {
                assert!(
                    text.contains(part),
                    "{file}: diagnostic of {} is {text:?}, lacks {part:?}",
                    w.address
                );
                assert!(
                    !text.contains(['\n', '\r', '\t']) && !text.contains("  "),
                    "{file}: diagnostic not on one line: {text:?}"
                );
            }
            (Some(part), None) => panic!("{file}: no diagnostic, expected one with {part:?}"),
        }
    }
    assert_eq!(
        got.has_failures(),
        want.recipients.iter().any(|r| r.action == "failed"),
        "{file}: has_failures"
    );
}

/// One module per fixture: `automatic` and `bounce` are separate tests so that a gap in
/// message.rs (an ignored `automatic`) does not hide the bounce check.
macro_rules! fixture {
    ($name:ident, $file:literal, automatic: $auto:expr, bounce: $bounce:expr) => {
        mod $name {
            use super::*;

            const EXPECTED: Option<Report> = $bounce;

            #[test]
            fn automatic() {
                check_automatic($file, $auto)
            }

            #[test]
            fn bounce() {
                check_bounce($file, EXPECTED)
            }
        }
    };
}

const USER_UNKNOWN: &str = "Recipient address rejected: User unknown in virtual mailbox table";

fixture!(f01_postfix_user_unknown, "01-dsn-postfix-user-unknown.eml", automatic: Some("Auto-Submitted: auto-replied"),
bounce: Some(Report {
    original: Some("<notice-1@casegate.example.test>"),
    recipients: &[r("nobody@foocorp.example", "failed", Some("5.1.1"),
        Some("550 5.1.1 <nobody@foocorp.example>: Recipient address rejected: User unknown in virtual mailbox table"))],
}));

fixture!(f02_exim, "02-dsn-exim.eml", automatic: Some("Auto-Submitted: auto-replied"),
bounce: Some(Report {
    original: Some("<notice-2@casegate.example.test>"),
    // Exim reports its own generic 5.0.0; the remote's 5.1.1 is in the diagnostic.
    recipients: &[r("former@foocorp.example", "failed", Some("5.0.0"),
        Some("550 5.1.1 <former@foocorp.example>: Recipient address rejected"))],
}));

fixture!(f03_sendmail, "03-dsn-sendmail.eml", automatic: Some("Auto-Submitted: auto-generated (failure)"),
bounce: Some(Report {
    original: Some("<notice-3@casegate.example.test>"),
    // Original-Recipient is the address we sent to; Final-Recipient is foocorp's alias target.
    recipients: &[r("jsmith@foocorp.example", "failed", Some("5.1.1"),
        Some("550 5.1.1 <j.smith@foocorp.example>... User unknown"))],
}));

fixture!(f04_gmail, "04-dsn-gmail.eml", automatic: Some("Auto-Submitted: auto-replied"),
bounce: Some(Report {
    original: Some("<notice-4@casegate.example.test>"),
    recipients: &[r("psirt-team@foocorp.example", "failed", Some("5.1.1"),
        Some("does not exist. Please try 550-5.1.1 double-checking"))],
}));

fixture!(f05_m365_ndr, "05-dsn-m365-ndr.eml", automatic: Some("Auto-Submitted: auto-replied"),
bounce: Some(Report {
    original: Some("<notice-5@casegate.example.test>"),
    recipients: &[r("security@foocorp.example", "failed", Some("5.7.133"),
        Some("550 5.7.133 RESOLVER.RST.SenderNotAuthenticatedForGroup"))],
}));

fixture!(f06_postfix_delayed, "06-dsn-postfix-delayed.eml", automatic: Some("Auto-Submitted: auto-replied"),
bounce: Some(Report {
    original: Some("<notice-6@casegate.example.test>"),
    recipients: &[r("vuln@foocorp.example", "delayed", Some("4.4.1"),
        Some("connect to mx.foocorp.example[192.0.2.25]:25: Connection timed out"))],
}));

fixture!(f07_two_recipients, "07-dsn-two-recipients.eml", automatic: Some("Auto-Submitted: auto-replied"),
bounce: Some(Report {
    original: Some("<8f3a2b1c-5d6e-4f70-9a8b-7c6d5e4f3a2b@example.test>"),
    recipients: &[
        r("nobody@foocorp.example", "failed", Some("5.1.1"), Some(USER_UNKNOWN)),
        r("full@foocorp.example", "failed", Some("5.2.2"),
            Some("552 5.2.2 <full@foocorp.example>: Recipient address rejected: Mailbox full")),
    ],
}));

fixture!(f08_postfix_relayed, "08-dsn-postfix-relayed.eml", automatic: Some("Auto-Submitted: auto-replied"),
bounce: Some(Report {
    original: Some("<notice-8@casegate.example.test>"),
    recipients: &[r("psirt@foocorp.example", "relayed", Some("2.0.0"),
        Some("250 2.0.0 Ok: queued as 4dKq2x1Zz9z1"))],
}));

fixture!(f09_qmail_text, "09-bounce-qmail-text.eml", automatic: Some("sent by mailer-daemon"),
bounce: Some(Report {
    original: Some("<notice-9@casegate.example.test>"),
    recipients: &[r("kim@foocorp.example", "failed", Some("5.1.1"),
        Some("Sorry, no mailbox here by that name. (#5.1.1)"))],
}));

fixture!(f10_exim_text, "10-bounce-exim-text.eml", automatic: Some("Auto-Submitted: auto-replied"),
bounce: Some(Report {
    original: Some("<notice-10@casegate.example.test>"),
    recipients: &[r("r.moore@foocorp.example", "failed", None,
        Some("mailbox is full (MTA-imposed quota exceeded while writing to file /var/mail/r.moore): retry timeout exceeded"))],
}));

fixture!(f11_yahoo_text, "11-bounce-yahoo-text.eml", automatic: Some("sent by mailer-daemon"),
bounce: Some(Report {
    original: Some("<notice-11@casegate.example.test>"),
    recipients: &[r("reporter.old@yahoo.example.com", "failed", None,
        Some("554: delivery error: dd This user doesn't have a yahoo.example.com account"))],
}));

fixture!(f12_read_receipt, "12-mdn-read-receipt.eml", automatic: Some("delivery or disposition report"), bounce: None);
fixture!(f21_gmail_vacation, "21-ooo-gmail-vacation.eml", automatic: Some("Auto-Submitted: auto-replied"), bounce: None);
fixture!(f22_exchange_oof, "22-ooo-exchange.eml", automatic: Some("Auto-Submitted: auto-generated"), bounce: None);
fixture!(f23_x_autoreply_only, "23-ooo-x-autoreply-only.eml", automatic: Some("X-Autoreply: yes"), bounce: None);
fixture!(f24_rt_autoack, "24-ticket-autoack-rt.eml", automatic: Some("Precedence: bulk"), bounce: None);
fixture!(f25_mailman_list, "25-list-mailman.eml", automatic: Some("List-Id present"), bounce: None);
fixture!(f26_list_unsubscribe_only, "26-bulk-list-unsubscribe-only.eml", automatic: Some("List-Unsubscribe present (bulk mail)"), bounce: None);
fixture!(f27_human_out_of_office, "27-human-out-of-office-subject.eml", automatic: None, bounce: None);
fixture!(f28_human_reply_to_auto_reply, "28-human-reply-to-automatic-reply.eml", automatic: None, bounce: None);
fixture!(f29_sieve_vacation, "29-ooo-sieve-vacation.eml", automatic: Some("Auto-Submitted: auto-replied (vacation)"), bounce: None);

// ---------------------------------------------------------------------------------------------
// The mail loop, through the binary.

struct Store {
    _dir: tempfile::TempDir,
    cwd: PathBuf,
    data: PathBuf,
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().to_path_buf();
        let data = cwd.join("data");
        let store = Store {
            _dir: dir,
            cwd,
            data,
        };
        let out = store.run(&["init"]);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        store
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_casegate"))
            .current_dir(&self.cwd)
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Vec<Value> {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "`casegate {}`; stderr:\n{stderr}",
            args.join(" ")
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Writes `raw` as an .eml file and ingests it; returns its one JSON line.
    fn ingest(&self, name: &str, raw: &str) -> Value {
        let path = self.cwd.join(name);
        std::fs::write(&path, raw.replace('\n', "\r\n")).unwrap();
        let mut lines = self.json(&["ingest", "--json", path.to_str().unwrap()]);
        assert_eq!(lines.len(), 1, "one line per message: {lines:?}");
        lines.remove(0)
    }
}

/// A stranger's vacation responder answering something that used cert@ as its sender.
const VACATION: &str = "Return-Path: <>
From: Dana Stranger <dana@example.com>
To: cert@example.test
Subject: Out of the office
Date: Mon, 15 Dec 2025 10:00:00 +0000
Message-ID: <vacation-1@mail.example.com>
In-Reply-To: <unknown-42@example.test>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

I am out of the office until 5 January.
";

/// Robot 1: a help desk's auto-acknowledgment sent to cert@, copied to a colleague.
const ROBOT_1: &str = "Return-Path: <helpdesk@example.com>
From: Example Help Desk <helpdesk@example.com>
To: cert@example.test
Cc: erin@example.com
Subject: [Ticket#20251216-0042] We received your message
Date: Tue, 16 Dec 2025 09:00:00 +0000
Message-ID: <ticket-20251216-0042-ack@helpdesk.example.com>
Precedence: bulk
Auto-Submitted: auto-replied
X-Loop: helpdesk@example.com
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Thank you for contacting us. Your request has been assigned ticket 20251216-0042.
";

/// Robot 2: the colleague's out-of-office answering robot 1, to all.
const ROBOT_2: &str = "Return-Path: <>
From: Erin Example <erin@example.com>
To: Example Help Desk <helpdesk@example.com>
Cc: cert@example.test
Subject: Automatic reply: [Ticket#20251216-0042] We received your message
Date: Tue, 16 Dec 2025 09:00:05 +0000
Message-ID: <oof-erin-1@mail.example.com>
In-Reply-To: <ticket-20251216-0042-ack@helpdesk.example.com>
References: <ticket-20251216-0042-ack@helpdesk.example.com>
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

I am out of the office until 5 January.
";

fn assert_triaged_automatic(line: &Value, id: &str) {
    assert_eq!(line["message_id"], id, "{line}");
    assert_eq!(
        line["outcome"], "triage",
        "automatic mail never opens a thread: {line}"
    );
    assert_eq!(line["automatic"], true, "{line}");
    assert!(line["thread"].is_null(), "{line}");
}

#[test]
fn automatic_mail_from_strangers_never_opens_a_thread() {
    let store = Store::new();
    let threads_before = store.json(&["list", "--json"]);

    let first = store.ingest("vacation.eml", VACATION);
    assert_triaged_automatic(&first, "<vacation-1@mail.example.com>");
    let again = store.ingest("vacation.eml", VACATION);
    assert_eq!(again["outcome"], "duplicate", "{again}");

    // Two robots answering each other, both in cert@'s mailbox: stored, and that is the end.
    let one = store.ingest("robot-1.eml", ROBOT_1);
    assert_triaged_automatic(&one, "<ticket-20251216-0042-ack@helpdesk.example.com>");
    let two = store.ingest("robot-2.eml", ROBOT_2);
    assert_triaged_automatic(&two, "<oof-erin-1@mail.example.com>");

    assert_eq!(
        store.json(&["list", "--json"]),
        threads_before,
        "automatic mail opened a thread (and would be acknowledged)"
    );
    let triage = store.json(&["triage", "list", "--json"]);
    let text = serde_json::to_string(&triage).unwrap();
    assert_eq!(
        triage.len(),
        3,
        "one triage entry per stored message: {text}"
    );
    for id in [
        "vacation-1@mail.example.com",
        "ticket-20251216-0042-ack@helpdesk.example.com",
        "oof-erin-1@mail.example.com",
    ] {
        assert!(text.contains(id), "triage lacks {id}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Every fixture through the pipeline.

/// The copies casegate "sent" before the fixtures arrive: `<notice-N@casegate.example.test>`
/// to the address each report or reply names, in the thread it belongs to.
const SENT: &[(u32, &str, &str)] = &[
    (1, "VU#409117", "nobody@foocorp.example"),
    (2, "VU#409117", "former@foocorp.example"),
    (3, "VU#409117", "jsmith@foocorp.example"),
    (4, "VU#409117", "psirt-team@foocorp.example"),
    (5, "VU#409117", "security@foocorp.example"),
    (6, "VU#409117", "vuln@foocorp.example"),
    (8, "VU#409117", "psirt@foocorp.example"),
    (9, "VU#409117", "kim@foocorp.example"),
    (10, "VU#409117", "r.moore@foocorp.example"),
    (11, "VRF#25-11-BKQTZ", "reporter.old@yahoo.example.com"),
    (12, "VU#409117", "alice@foocorp.example"),
    (21, "VU#409117", "rita@reporter.example"),
    (22, "VU#409117", "bob@foocorp.example"),
    (23, "VU#409117", "carol@foocorp.example"),
    (24, "VU#409117", "psirt@foocorp.example"),
    (27, "VU#409117", "alice@foocorp.example"),
    (29, "VRF#25-11-BKQTZ", "rob@reporter2.example"),
];

/// What the pipeline makes of each fixture: outcome, thread, a substring of the reason, and
/// whether it is marked automatic.
#[rustfmt::skip]
const THROUGH_PIPELINE: &[(&str, &str, Option<&str>, &str, bool)] = &[
    ("01", "routed", Some("VU#409117"), "copy <notice-1@casegate.example.test> to nobody@foocorp.example bounced", true),
    ("02", "routed", Some("VU#409117"), "copy <notice-2@casegate.example.test> to former@foocorp.example bounced", true),
    ("03", "routed", Some("VU#409117"), "copy <notice-3@casegate.example.test> to jsmith@foocorp.example bounced", true),
    ("04", "routed", Some("VU#409117"), "copy <notice-4@casegate.example.test> to psirt-team@foocorp.example bounced", true),
    // The subject names the case too: the report is filed by the copy it is about.
    ("05", "routed", Some("VU#409117"), "copy <notice-5@casegate.example.test> to security@foocorp.example bounced", true),
    ("06", "routed", Some("VU#409117"), "delivery report about <notice-6@casegate.example.test> to vuln@foocorp.example: vuln@foocorp.example delayed 4.4.1", true),
    ("07", "triage", None, "delivery report about a message casegate did not send", true),
    ("08", "routed", Some("VU#409117"), "delivery report about <notice-8@casegate.example.test> to psirt@foocorp.example: psirt@foocorp.example relayed 2.0.0", true),
    ("09", "routed", Some("VU#409117"), "copy <notice-9@casegate.example.test> to kim@foocorp.example bounced", true),
    ("10", "routed", Some("VU#409117"), "copy <notice-10@casegate.example.test> to r.moore@foocorp.example bounced", true),
    ("11", "routed", Some("VRF#25-11-BKQTZ"), "copy <notice-11@casegate.example.test> to reporter.old@yahoo.example.com bounced", true),
    ("12", "routed", Some("VU#409117"), "tracking number VU#409117", true),
    ("21", "routed", Some("VU#409117"), "reply to our message VU#409117", true),
    ("22", "routed", Some("VU#409117"), "tracking number VU#409117", true),
    ("23", "routed", Some("VU#409117"), "tracking number VU#409117", true),
    ("24", "routed", Some("VU#409117"), "tracking number VU#409117", true),
    // A participant's list post naming the case (in its folded subject): filed in the case,
    // marked automatic.
    ("25", "routed", Some("VU#409117"), "tracking number VU#409117", true),
    // Bulk mail from a stranger to the reporting address opens no report.
    ("26", "triage", None, "automatic message (List-Unsubscribe present (bulk mail)) outside any thread", true),
    ("27", "routed", Some("VU#409117"), "tracking number VU#409117", false),
    ("28", "routed", Some("VU#409117"), "tracking number VU#409117", false),
    ("29", "routed", Some("VRF#25-11-BKQTZ"), "tracking number VRF#25-11-BKQTZ", true),
];

#[test]
fn every_fixture_through_the_pipeline() {
    use casegate::store::outbox::{AttemptOutcome, CopyKind, NewCopy, NewNotice};
    let store = Store::new();
    let setup: &[&[&str]] = &[
        &[
            "open",
            "case",
            "--title",
            "Buffer overflow in FooRouter",
            "--number",
            "VU#409117",
        ],
        &[
            "open",
            "report",
            "--title",
            "XSS in BazCMS",
            "--number",
            "VRF#25-11-BKQTZ",
        ],
        &[
            "participant",
            "add",
            "VRF#25-11-BKQTZ",
            "--org",
            "Rob",
            "--email",
            "rob@reporter2.example",
            "--role",
            "reporter",
        ],
        &[
            "participant",
            "add",
            "VU#409117",
            "--org",
            "Reporter",
            "--email",
            "rita@reporter.example",
            "--role",
            "reporter",
        ],
    ];
    for args in setup {
        store.json(&[*args, &["--json"]].concat());
    }
    for who in ["psirt", "alice", "bob", "carol"] {
        let email = format!("{who}@foocorp.example");
        store.json(&[
            "participant",
            "add",
            "VU#409117",
            "--org",
            "FooCorp",
            "--email",
            &email,
            "--json",
        ]);
    }
    {
        // What the outbox would hold had casegate sent these copies and SMTP accepted them.
        let mut db = casegate::store::Store::open(&store.data.join("casegate.sqlite")).unwrap();
        let now = chrono::Utc::now();
        for (n, number, address) in SENT {
            let thread = db
                .thread(&casegate::tracking::TrackingNumber::parse(number).unwrap())
                .unwrap()
                .unwrap();
            let message_id = format!("<notice-{n}@casegate.example.test>");
            let ids = db
                .enqueue_notice(
                    &NewNotice {
                        thread_id: thread.id,
                        sender: "cert@example.test",
                        in_reply_to: None,
                        automatic: false,
                        date_unix: now.timestamp(),
                        signer_fingerprint: "00",
                        inner: b"inner",
                        relay_of: None,
                    },
                    &[NewCopy::Sealed {
                        kind: CopyKind::Notice,
                        address,
                        org: "FooCorp",
                        message_id: &message_id,
                        raw: b"copy",
                        key_fingerprint: None,
                    }],
                    now,
                )
                .unwrap();
            let claimed = db
                .claim_due_copy("test", now, chrono::Duration::minutes(5))
                .unwrap()
                .unwrap();
            assert_eq!(claimed.id, ids[0]);
            db.record_attempt(ids[0], "test", now, &AttemptOutcome::Accepted, "250 OK")
                .unwrap();
        }
    }

    let paths: Vec<String> = FILES
        .iter()
        .map(|f| fixture_dir().join(f).display().to_string())
        .collect();
    let mut args = vec!["ingest", "--json"];
    args.extend(paths.iter().map(String::as_str));
    let lines = store.json(&args);
    assert_eq!(lines.len(), FILES.len());
    assert_eq!(THROUGH_PIPELINE.len(), FILES.len());
    let mut problems = Vec::new();
    for (line, (file, want)) in lines.iter().zip(FILES.iter().zip(THROUGH_PIPELINE)) {
        let (prefix, outcome, thread, reason, automatic) = *want;
        assert!(file.starts_with(prefix), "table order: {file} vs {prefix}");
        assert!(
            line["source"].as_str().unwrap_or_default().ends_with(file),
            "{line}"
        );
        let got_reason = line["reason"].as_str().unwrap_or_default();
        if line["outcome"] != outcome
            || line["thread"].as_str() != thread
            || !got_reason.contains(reason)
            || line["automatic"] != automatic
        {
            problems.push(format!(
                "{file}: expected {outcome} {thread:?} {reason:?} automatic={automatic}; got {line}"
            ));
        }
        // Whatever it is, automatic mail is never answered.
        if automatic {
            assert!(line.get("acknowledgment").is_none(), "{line}");
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The outbox: each copy a failure report names is `bounced` with the report's words; a
    // delay or a success report changes nothing; and nothing new was queued (no robot got an
    // answer).
    let rows = store.json(&["outbox", "list", "--json"]);
    assert_eq!(rows.len(), SENT.len(), "new outbox rows: {rows:?}");
    for (n, _, address) in SENT {
        let id = format!("<notice-{n}@casegate.example.test>");
        let row = rows
            .iter()
            .find(|r| r["message_id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not in the outbox"));
        let bounced = [1, 2, 3, 4, 5, 9, 10, 11].contains(n);
        assert_eq!(
            row["status"],
            if bounced { "bounced" } else { "sent" },
            "{row}"
        );
        if bounced {
            let reason = row["reason"].as_str().unwrap_or_default();
            assert!(
                reason.starts_with(&format!("bounced: {address} failed")),
                "{row}"
            );
        }
    }
}
