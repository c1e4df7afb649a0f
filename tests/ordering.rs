//! "A message leaves its source only after it is durably stored", proven by making the store
//! refuse: while every commit fails, the message stays where it came from (IMAP INBOX, Maildir
//! `new/`), untouched — no MOVE, COPY, flag or rename, no checkpoint, no acknowledgment to the
//! sender — and the daemon keeps trying; once the store accepts again, it is stored exactly
//! once and only then acknowledged.
//!
//! The refusal is real SQLite: a trigger that aborts every insert into `messages`, added to the
//! store of a running `casegate serve` from another connection (the watcher-level test uses a
//! sink that fails instead).

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use casegate::imap::{Delivered, MessageSink, SinkError};
use casegate::store::{Checkpoint, MessageSource};
use support::MailServers;
use support::cli::{Serve, casegate, json_lines, wait_for};
use support::imap_sink::{
    StoreSink, Watcher, fast_options, imap_config, init_tracing, stored_hashes, test_message,
    wait_until,
};

const CERT: &str = "cert@example.test";
const PROCESSED: &str = "casegate.processed";
const REFUSAL: &str = "test: the store refuses writes";

/// Makes every insert into `messages` fail (the store is otherwise intact and readable).
fn refuse_writes(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute_batch(&format!(
        "CREATE TRIGGER refuse_writes BEFORE INSERT ON messages \
         BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END;"
    ))
    .unwrap();
}

fn accept_writes(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute_batch("DROP TRIGGER refuse_writes").unwrap();
}

fn count_rows(db: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// What the server says the client did to the mailbox: any of these is an acknowledgment.
fn acknowledging(commands: &[String]) -> Vec<String> {
    commands
        .iter()
        .filter(|c| {
            let c = c.to_ascii_uppercase();
            [
                "UID MOVE",
                "UID COPY",
                "UID STORE",
                "UID EXPUNGE",
                "MOVE",
                "COPY",
                "STORE",
            ]
            .iter()
            .any(|v| c.starts_with(v))
                || c == "EXPUNGE"
        })
        .cloned()
        .collect()
}

/// Flags and keywords of every message in `user`'s INBOX, as doveadm reads them (without
/// `\Recent`, which the server clears itself once a session has seen the message).
fn inbox_flags(servers: &MailServers, user: &str) -> Vec<String> {
    servers
        .doveadm(&["fetch", "-u", user, "flags", "mailbox", "INBOX", "ALL"])
        .lines()
        .map(|l| l.replace("\\Recent", "").trim().to_string())
        .collect()
}

/// A sink that refuses while `refusing` is set and counts what it was offered.
struct Switchable {
    inner: Arc<StoreSink>,
    refusing: AtomicBool,
    offered: AtomicUsize,
}

impl MessageSink for Switchable {
    fn deliver(&self, raw: &[u8], source: MessageSource) -> Result<Delivered, SinkError> {
        self.offered.fetch_add(1, Ordering::SeqCst);
        if self.refusing.load(Ordering::SeqCst) {
            return Err(SinkError(REFUSAL.into()));
        }
        self.inner.deliver(raw, source)
    }
    fn checkpoint(&self, account: &str, mailbox: &str) -> Result<Option<Checkpoint>, SinkError> {
        self.inner.checkpoint(account, mailbox)
    }
    fn reset_checkpoint(&self, a: &str, m: &str, v: u32) -> Result<(), SinkError> {
        self.inner.reset_checkpoint(a, m, v)
    }
}

#[test]
fn imap_watcher_acknowledges_nothing_the_sink_did_not_store() {
    init_tracing();
    let servers = MailServers::start_recording();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    for i in 0..3 {
        servers.deliver(CERT, &test_message("refused", i));
    }
    let flags_before = inbox_flags(&servers, CERT);
    let config = imap_config(&servers, CERT, "none", "");
    let account = config.account_name();
    let sink = Arc::new(Switchable {
        inner: StoreSink::open(&db),
        refusing: AtomicBool::new(true),
        offered: AtomicUsize::new(0),
    });
    let watcher = Watcher::start(config, sink.clone(), fast_options());
    // Refused, reconnected, refused again: the watcher fetched and tried twice.
    assert!(wait_until(30, || sink.offered.load(Ordering::SeqCst) >= 2));
    assert_eq!(servers.count(CERT, "INBOX"), 3);
    assert_eq!(servers.count(CERT, PROCESSED), 0);
    assert_eq!(inbox_flags(&servers, CERT), flags_before, "flags changed");
    assert!(stored_hashes(&db).is_empty());
    assert!(
        sink.inner
            .store
            .lock()
            .unwrap()
            .mailbox_checkpoint(&account, "INBOX")
            .unwrap()
            .is_none(),
        "the checkpoint moved without a commit"
    );
    let commands = servers.imap_commands(CERT);
    assert!(
        acknowledging(&commands).is_empty(),
        "acknowledged without a commit: {commands:?}"
    );
    assert!(
        commands.iter().any(|c| c.starts_with("UID FETCH")),
        "{commands:?}"
    );

    // The store is back: each message stored once, then moved.
    sink.refusing.store(false, Ordering::SeqCst);
    assert!(wait_until(30, || stored_hashes(&db).len() == 3
        && servers.count(CERT, "INBOX") == 0
        && servers.count(CERT, PROCESSED) == 3));
    watcher.stop().unwrap();
    let acks = acknowledging(&servers.imap_commands(CERT));
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert!(acks[0].starts_with("UID MOVE 1:3 "), "{acks:?}");
}

#[test]
fn serve_leaves_imap_mail_in_the_inbox_while_the_store_refuses() {
    let servers = MailServers::start_recording();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        format!(
            "[maildir]\nenabled = false\n\n[[imap]]\nname = \"cert\"\nhost = \"127.0.0.1\"\n\
             port = {}\ntls = \"none\"\nusername = \"{CERT}\"\npassword_file = \"{}\"\n\
             poll_interval_secs = 1\ntimeout_secs = 10\n",
            servers.imap_port,
            servers.password_file.display()
        ),
    )
    .unwrap();
    casegate(dir, &["init"]);
    let db = dir.join("casegate-data/casegate.sqlite");
    refuse_writes(&db);
    // A new report: stored, it would also earn an acknowledgment to its sender.
    let report = "From: Rita <rita@reporter.example>\r\nTo: cert@example.test\r\n\
Subject: Heap overflow in BazCMS\r\nMessage-ID: <refused-1@reporter.example>\r\n\r\nDetails.\r\n";
    servers.deliver(CERT, report.as_bytes());
    let flags_before = inbox_flags(&servers, CERT);

    let serve = Serve::start(dir, &[]);
    // The event: the daemon tried to commit and the store said no; then again (it retries).
    for attempt in 1..=2 {
        serve.wait_log(REFUSAL, attempt, Duration::from_secs(60));
        assert_eq!(servers.count(CERT, "INBOX"), 1);
        assert_eq!(servers.count(CERT, PROCESSED), 0);
        assert_eq!(inbox_flags(&servers, CERT), flags_before, "flags changed");
        let commands = servers.imap_commands(CERT);
        assert!(
            acknowledging(&commands).is_empty(),
            "acknowledged without a commit: {commands:?}"
        );
        for table in ["messages", "mailbox_state", "outbox", "threads"] {
            assert_eq!(count_rows(&db, table), 0, "{table} was written");
        }
    }

    accept_writes(&db);
    wait_for(
        "the report stored and moved",
        Duration::from_secs(60),
        || servers.count(CERT, PROCESSED) == 1,
    );
    assert_eq!(servers.count(CERT, "INBOX"), 0);
    assert_eq!(count_rows(&db, "messages"), 1);
    let reports = json_lines(&casegate(dir, &["list", "--kind", "report", "--json"]));
    assert_eq!(reports.len(), 1);
    // The acknowledgment to the reporter is queued only now, after the report's commit (by
    // the outbox side, from the debt the commit recorded).
    wait_for("the acknowledgment queued", Duration::from_secs(60), || {
        count_rows(&db, "outbox") == 1
    });
    assert_eq!(count_rows(&db, "pending_acks"), 0);
    assert_eq!(serve.stop(), Some(0));
}

#[test]
fn serve_leaves_a_maildir_message_in_new_while_the_store_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    let maildir = dir.join("casegate-data/Maildir");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let db = dir.join("casegate-data/casegate.sqlite");
    refuse_writes(&db);
    let report = "From: Rita <rita@reporter.example>\r\nTo: cert@example.test\r\n\
Subject: Heap overflow in BazCMS\r\nMessage-ID: <refused-2@reporter.example>\r\n\r\nDetails.\r\n";
    std::fs::write(maildir.join("tmp/1.eml"), report).unwrap();
    std::fs::rename(maildir.join("tmp/1.eml"), maildir.join("new/1.eml")).unwrap();

    let serve = Serve::start(dir, &[]);
    // Refused once, and again after the watcher's backoff: still in new/ each time.
    for attempt in 1..=2 {
        serve.wait_log(REFUSAL, attempt, Duration::from_secs(60));
        assert_eq!(
            std::fs::read_dir(maildir.join("cur")).unwrap().count(),
            0,
            "moved to cur/ without a commit"
        );
        assert_eq!(
            std::fs::read(maildir.join("new/1.eml")).unwrap(),
            report.as_bytes(),
            "no longer in new/ as delivered"
        );
        for table in ["messages", "outbox", "threads"] {
            assert_eq!(count_rows(&db, table), 0, "{table} was written");
        }
    }

    accept_writes(&db);
    wait_for(
        "the report stored and moved",
        Duration::from_secs(90),
        || std::fs::read_dir(maildir.join("cur")).unwrap().count() == 1,
    );
    assert!(!maildir.join("new/1.eml").exists());
    assert_eq!(count_rows(&db, "messages"), 1);
    // The acknowledgment is composed by the outbox side after the commit, not with it.
    wait_for("the acknowledgment queued", Duration::from_secs(60), || {
        count_rows(&db, "outbox") == 1
    });
    assert_eq!(count_rows(&db, "pending_acks"), 0);
    assert_eq!(serve.stop(), Some(0));
}
