//! `imap::watch` against real Dovecot (tests/support/mail-servers): messages are stored, then
//! moved or flagged; new mail during IDLE arrives; Dovecot restarts and UIDVALIDITY changes lose
//! and duplicate nothing; servers without MOVE, IDLE or UIDPLUS are served by the fallbacks, and
//! Dovecot's own record of the session (rawlog) shows which commands really ran.

mod support;

use std::sync::Arc;

use support::imap_sink::{
    StoreSink, Watcher, fast_options, imap_config, init_tracing, stored_hashes, test_message,
    wait_until,
};
use support::{DOVECOT_CAPABILITY, MailServers, ServerOptions};

const CERT: &str = "cert@example.test";
/// Dovecot's default hierarchy delimiter is '.': the configured `casegate/processed` is this.
const PROCESSED: &str = "casegate.processed";

/// The commands of `user`'s sessions that change or wait on the mailbox (no FETCH/SEARCH/...).
fn acting_commands(servers: &MailServers, user: &str) -> Vec<String> {
    servers
        .imap_commands(user)
        .into_iter()
        .filter(|c| {
            let verb = c.to_ascii_uppercase();
            [
                "UID MOVE",
                "UID COPY",
                "UID STORE",
                "UID EXPUNGE",
                "EXPUNGE",
                "MOVE",
                "COPY",
                "STORE",
            ]
            .iter()
            .any(|v| verb.starts_with(v))
                || verb == "IDLE"
                || verb == "NOOP"
        })
        .collect()
}

#[test]
fn stores_and_moves_and_picks_up_new_mail_during_idle() {
    init_tracing();
    let servers = MailServers::start_recording();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    for i in 0..5 {
        servers.deliver(CERT, &test_message("first", i));
    }
    // IDLE is re-issued only every 29 minutes here: shutdown must not wait for that.
    let config = imap_config(&servers, CERT, "none", "poll_interval_secs = 3600");
    let account = config.account_name();
    let sink = StoreSink::open(&db);
    let watcher = Watcher::start(config, sink.clone(), fast_options());

    assert!(
        wait_until(30, || stored_hashes(&db).len() == 5
            && servers.count(CERT, "INBOX") == 0
            && servers.count(CERT, PROCESSED) == 5),
        "stored {}, inbox {}, processed {}",
        stored_hashes(&db).len(),
        servers.count(CERT, "INBOX"),
        servers.count(CERT, PROCESSED)
    );
    // The watcher is in IDLE now (the server has the command); a new message must be picked
    // up without waiting for a re-issue.
    assert!(
        wait_until(10, || servers
            .imap_commands(CERT)
            .iter()
            .any(|c| c == "IDLE")),
        "no IDLE in {:?}",
        servers.imap_commands(CERT)
    );
    servers.deliver(CERT, &test_message("during-idle", 0));
    assert!(
        wait_until(10, || stored_hashes(&db).len() == 6
            && servers.count(CERT, "INBOX") == 0),
        "new mail during IDLE not stored within 10 s"
    );
    let st = watcher.status.get(&account, "INBOX").unwrap();
    assert!(st.connected);
    assert_eq!((st.stored_today, st.last_uid), (6, Some(6)));
    assert!(
        st.to_string()
            .contains("connected, last UID 6, 6 stored today")
    );

    // Shutdown interrupts IDLE: a bound far below the 29-minute re-issue.
    watcher
        .stop_within(std::time::Duration::from_secs(60))
        .unwrap();
    // What ran: MOVE after the commits, then IDLE; no fallback.
    let acted = acting_commands(&servers, CERT);
    assert!(
        acted.iter().any(|c| c.starts_with("UID MOVE 1:5 ")),
        "{acted:?}"
    );
    assert!(
        acted.iter().any(|c| c.starts_with("UID MOVE 6 ")),
        "{acted:?}"
    );
    assert!(
        !acted
            .iter()
            .any(|c| c.starts_with("UID COPY") || c == "NOOP"),
        "a fallback ran although the server has MOVE and IDLE: {acted:?}"
    );
    let cp = sink
        .store
        .lock()
        .unwrap()
        .mailbox_checkpoint(&account, "INBOX")
        .unwrap()
        .unwrap();
    assert_eq!(cp.last_uid, 6);
    assert_eq!(cp.uidvalidity, servers.uidvalidity(CERT, "INBOX"));
    let mut want: Vec<String> = (0..5)
        .map(|i| support::imap_sink::sha256_hex(&test_message("first", i)))
        .collect();
    want.push(support::imap_sink::sha256_hex(&test_message(
        "during-idle",
        0,
    )));
    assert_eq!(
        stored_hashes(&db),
        want,
        "stored in UID order, byte for byte"
    );
}

#[test]
fn dovecot_restart_mid_run_loses_nothing() {
    init_tracing();
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    let first: Vec<Vec<u8>> = (0..600).map(|i| test_message("before", i)).collect();
    servers.deliver_many(CERT, &first);
    let config = imap_config(&servers, CERT, "none", "");
    let mut options = fast_options();
    options.batch_messages = 5;
    let watcher = Watcher::start(config, StoreSink::open(&db), options);
    // Restart while the first messages are still being fetched, then again while idle.
    assert!(wait_until(30, || !stored_hashes(&db).is_empty()));
    servers.restart_imap();
    eprintln!(
        "restarted Dovecot after {} messages were stored",
        stored_hashes(&db).len()
    );
    let second: Vec<Vec<u8>> = (0..50).map(|i| test_message("after", i)).collect();
    servers.deliver_many(CERT, &second[..25]);
    assert!(wait_until(60, || stored_hashes(&db).len() == 625));
    servers.stop_imap();
    servers.deliver_many(CERT, &second[25..]); // arrives while the server is down
    servers.restart_imap();
    assert!(
        wait_until(60, || stored_hashes(&db).len() == 650
            && servers.count(CERT, "INBOX") == 0
            && servers.count(CERT, PROCESSED) == 650),
        "stored {}, inbox {}, processed {}",
        stored_hashes(&db).len(),
        servers.count(CERT, "INBOX"),
        servers.count(CERT, PROCESSED)
    );
    watcher.stop().unwrap();
    let mut got = stored_hashes(&db);
    got.sort();
    let mut want: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|m| support::imap_sink::sha256_hex(m))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn uidvalidity_change_resyncs_without_duplicates() {
    init_tracing();
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    servers.doveadm(&["mailbox", "create", "-u", CERT, "Reports"]);
    for i in 0..3 {
        servers.deliver_to(CERT, "Reports", &test_message("old", i));
    }
    let old_validity = servers.uidvalidity(CERT, "Reports");
    // IDLE is re-issued every 2 s: whether the server announces the deletion during IDLE or
    // not (Dovecot may only notice at its next mailbox check), the next look finds the new
    // UIDVALIDITY.
    let config = imap_config(
        &servers,
        CERT,
        "none",
        "mailboxes = [\"Reports\"]\npoll_interval_secs = 2",
    );
    let account = config.account_name();
    let sink = StoreSink::open(&db);
    let watcher = Watcher::start(config, sink.clone(), fast_options());
    assert!(wait_until(30, || stored_hashes(&db).len() == 3
        && servers.count(CERT, "Reports") == 0));

    // The mailbox is deleted and made again (a restore from backup, a server migration): new
    // UIDVALIDITY, the old messages come back with new UIDs, plus one new message.
    // Dovecot's UIDVALIDITY is a clock (seconds): made again within the same second, the
    // mailbox would keep its value. Recreate it until the value differs (bounded).
    let mut new_validity = old_validity;
    for _ in 0..100 {
        servers.doveadm(&["mailbox", "delete", "-u", CERT, "Reports"]);
        servers.doveadm(&["mailbox", "create", "-u", CERT, "Reports"]);
        new_validity = servers.uidvalidity(CERT, "Reports");
        if new_validity != old_validity {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_ne!(old_validity, new_validity);
    for i in 0..3 {
        servers.deliver_to(CERT, "Reports", &test_message("old", i));
    }
    servers.deliver_to(CERT, "Reports", &test_message("new", 0));

    assert!(
        wait_until(30, || servers.count(CERT, "Reports") == 0
            && stored_hashes(&db).len() == 4
            && servers.count(CERT, PROCESSED) == 7),
        "stored {}, Reports {}, processed {}",
        stored_hashes(&db).len(),
        servers.count(CERT, "Reports"),
        servers.count(CERT, PROCESSED)
    );
    let st = watcher.status.get(&account, "Reports").unwrap();
    assert_eq!(st.duplicates_today, 3);
    watcher.stop().unwrap();
    let cp = sink
        .store
        .lock()
        .unwrap()
        .mailbox_checkpoint(&account, "Reports")
        .unwrap()
        .unwrap();
    assert_eq!((cp.uidvalidity, cp.last_uid), (new_validity, 4));
    assert_eq!(stored_hashes(&db).len(), 4);
}

/// Dovecot's capability list without the named extensions.
fn capabilities_without(missing: &[&str]) -> String {
    DOVECOT_CAPABILITY
        .split(' ')
        .filter(|c| !missing.contains(c))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts that every `UID COPY SET folder` in `acted` is followed by `UID STORE SET
/// +FLAGS.SILENT (\Deleted)` and then by `expunge` (when given) on the same set, before the
/// next copy. Returns the copied sets.
fn copy_flag_expunge(acted: &[String], expunge: Option<&str>) -> Vec<String> {
    let mut sets = Vec::new();
    for (i, c) in acted.iter().enumerate() {
        let Some(rest) = c.strip_prefix("UID COPY ") else {
            continue;
        };
        let set = rest.split(' ').next().unwrap().to_string();
        assert!(
            rest.ends_with(&format!(" {PROCESSED}"))
                || rest.ends_with(&format!(" \"{PROCESSED}\"")),
            "{c}"
        );
        let next = acted.get(i + 1).map(String::as_str).unwrap_or("");
        assert_eq!(
            next,
            format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
            "after {c}: {acted:?}"
        );
        if let Some(verb) = expunge {
            let after = acted.get(i + 2).map(String::as_str).unwrap_or("");
            assert_eq!(after, format!("{verb} {set}"), "after {c}: {acted:?}");
        }
        sets.push(set);
    }
    sets
}

#[test]
fn without_move_and_idle_copies_expunges_and_polls() {
    init_tracing();
    let servers = MailServers::start_with(&ServerOptions {
        imap_capability: Some(capabilities_without(&["MOVE", "IDLE"])),
        rawlog: true,
        ..ServerOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    for i in 0..3 {
        servers.deliver(CERT, &test_message("nomove", i));
    }
    let config = imap_config(&servers, CERT, "none", "poll_interval_secs = 1");
    let watcher = Watcher::start(config, StoreSink::open(&db), fast_options());
    assert!(wait_until(30, || stored_hashes(&db).len() == 3
        && servers.count(CERT, "INBOX") == 0
        && servers.count(CERT, PROCESSED) == 3));
    servers.deliver(CERT, &test_message("polled", 0));
    assert!(wait_until(10, || stored_hashes(&db).len() == 4
        && servers.count(CERT, "INBOX") == 0
        && servers.count(CERT, PROCESSED) == 4));
    watcher.stop().unwrap();

    // The fallbacks ran, as the server saw it: COPY, then \Deleted, then UID EXPUNGE of the
    // same UIDs (never MOVE); and NOOP polls (never IDLE).
    let acted = acting_commands(&servers, CERT);
    assert!(
        !acted.iter().any(|c| c.contains("MOVE") || c == "IDLE"),
        "{acted:?}"
    );
    let sets = copy_flag_expunge(&acted, Some("UID EXPUNGE"));
    assert_eq!(sets.first().map(String::as_str), Some("1:3"), "{acted:?}");
    assert_eq!(sets.last().map(String::as_str), Some("4"), "{acted:?}");
    assert!(
        !acted.iter().any(|c| c == "EXPUNGE"),
        "a plain EXPUNGE would remove others' \\Deleted mail: {acted:?}"
    );
    // The fourth message came in while polling: a NOOP between its copy and the first ones.
    let first_copy = acted
        .iter()
        .position(|c| c.starts_with("UID COPY 1:3"))
        .unwrap();
    let last_copy = acted
        .iter()
        .position(|c| c.starts_with("UID COPY 4 "))
        .unwrap();
    assert!(
        acted[first_copy..last_copy].iter().any(|c| c == "NOOP"),
        "{acted:?}"
    );
}

/// Without UIDPLUS there is no UID EXPUNGE, and a plain EXPUNGE would also remove messages
/// someone else marked \Deleted that casegate never stored. So casegate copies, marks its own
/// messages \Deleted and leaves the expunge to the mailbox's owner; a later session neither
/// fetches nor copies them again.
#[test]
fn without_uidplus_copies_flags_and_never_expunges() {
    init_tracing();
    let servers = MailServers::start_with(&ServerOptions {
        imap_capability: Some(capabilities_without(&["MOVE", "UIDPLUS"])),
        rawlog: true,
        ..ServerOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    for i in 0..3 {
        servers.deliver(CERT, &test_message("nouidplus", i));
    }
    // Somebody else's message, already marked \Deleted by their client: casegate stores it
    // all the same (it arrived), and must not be the one that expunges it.
    servers.deliver(CERT, &test_message("theirs", 0));
    servers.doveadm(&[
        "flags",
        "add",
        "-u",
        CERT,
        "\\Deleted",
        "mailbox",
        "INBOX",
        "UID",
        "4",
    ]);
    let deleted = || {
        servers
            .doveadm(&["search", "-u", CERT, "mailbox", "INBOX", "DELETED"])
            .lines()
            .count()
    };
    let config = imap_config(&servers, CERT, "none", "poll_interval_secs = 1");
    let account = config.account_name();
    let sink = StoreSink::open(&db);
    let watcher = Watcher::start(config.clone(), sink.clone(), fast_options());
    assert!(
        wait_until(30, || stored_hashes(&db).len() == 4
            && servers.count(CERT, PROCESSED) == 4
            && deleted() == 4),
        "stored {}, processed {}, deleted {}",
        stored_hashes(&db).len(),
        servers.count(CERT, PROCESSED),
        deleted()
    );
    watcher.stop().unwrap();
    // Still there, marked: nothing was expunged.
    assert_eq!(servers.count(CERT, "INBOX"), 4);

    // A new session: the marked ones are neither fetched again nor copied again.
    servers.deliver(CERT, &test_message("nouidplus", 3));
    let watcher = Watcher::start(config, sink, fast_options());
    assert!(wait_until(30, || stored_hashes(&db).len() == 5
        && servers.count(CERT, PROCESSED) == 5
        && deleted() == 5));
    let st = watcher.status.get(&account, "INBOX").unwrap();
    assert_eq!((st.stored_today, st.duplicates_today), (1, 0));
    watcher.stop().unwrap();
    assert_eq!(servers.count(CERT, PROCESSED), 5, "copied twice");
    assert_eq!(servers.count(CERT, "INBOX"), 5);

    let acted = acting_commands(&servers, CERT);
    assert!(
        !acted
            .iter()
            .any(|c| c.contains("EXPUNGE") || c.contains("MOVE")),
        "{acted:?}"
    );
    let sets = copy_flag_expunge(&acted, None);
    assert_eq!(sets, vec!["1:4".to_string(), "5".to_string()], "{acted:?}");
}

#[test]
fn flag_mode_leaves_messages_in_place_and_fetches_each_once() {
    init_tracing();
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    for i in 0..4 {
        servers.deliver(CERT, &test_message("flag", i));
    }
    let config = imap_config(&servers, CERT, "none", "after_store = \"flag\"");
    let account = config.account_name();
    let sink: Arc<StoreSink> = StoreSink::open(&db);
    let watcher = Watcher::start(config.clone(), sink.clone(), fast_options());
    let flagged = || {
        servers
            .doveadm(&[
                "search",
                "-u",
                CERT,
                "mailbox",
                "INBOX",
                "KEYWORD",
                "$CasegateStored",
            ])
            .lines()
            .count()
    };
    assert!(wait_until(30, || stored_hashes(&db).len() == 4 && flagged() == 4));
    assert_eq!(servers.count(CERT, "INBOX"), 4);
    assert_eq!(servers.count(CERT, PROCESSED), 0);
    watcher.stop().unwrap();

    // A second run fetches only the new message, not the four flagged ones again. It works in
    // UID order, so once the last message (UID 6) is stored, UIDs 1-4 were either fetched
    // again (counted as duplicates) or not.
    servers.deliver(CERT, &test_message("flag", 4));
    servers.deliver(CERT, &test_message("flag", 5));
    let watcher = Watcher::start(config, sink, fast_options());
    assert!(wait_until(30, || stored_hashes(&db).len() == 6 && flagged() == 6));
    let st = watcher.status.get(&account, "INBOX").unwrap();
    assert_eq!((st.stored_today, st.duplicates_today), (2, 0));
    watcher.stop().unwrap();
}

#[test]
fn several_mailboxes_of_one_account_each_keep_their_own_checkpoint() {
    init_tracing();
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    servers.doveadm(&["mailbox", "create", "-u", CERT, "Lists.security"]);
    for i in 0..3 {
        servers.deliver(CERT, &test_message("inbox", i));
        servers.deliver_to(CERT, "Lists.security", &test_message("list", i));
    }
    // Names in the config use '/' whatever the server's delimiter is.
    let config = imap_config(
        &servers,
        CERT,
        "none",
        "mailboxes = [\"INBOX\", \"Lists/security\"]",
    );
    let account = config.account_name();
    let sink = StoreSink::open(&db);
    let watcher = Watcher::start(config, sink.clone(), fast_options());
    assert!(wait_until(30, || stored_hashes(&db).len() == 6
        && servers.count(CERT, "INBOX") == 0
        && servers.count(CERT, "Lists.security") == 0
        && servers.count(CERT, PROCESSED) == 6));
    let snapshot = watcher.status.snapshot();
    assert_eq!(snapshot.len(), 2);
    assert!(snapshot.iter().all(|s| s.stored_today == 3), "{snapshot:?}");
    watcher.stop().unwrap();
    let store = sink.store.lock().unwrap();
    for mailbox in ["INBOX", "Lists/security"] {
        let cp = store
            .mailbox_checkpoint(&account, mailbox)
            .unwrap()
            .unwrap();
        assert_eq!(cp.last_uid, 3, "{mailbox}");
    }
    let summaries = store
        .mailbox_summaries(chrono::Utc::now() - chrono::Duration::hours(1))
        .unwrap();
    assert_eq!(summaries.len(), 2);
    assert!(
        summaries.iter().all(|s| s.stored_since == 3),
        "{summaries:?}"
    );
}

/// A sink that, before committing each message, checks what the server already holds in the
/// processed folder: only messages committed before. It also counts how often that number grew
/// while the first `backlog` messages were being stored: acknowledgments being batched, far
/// less often than once a batch.
struct CheckingSink {
    inner: Arc<StoreSink>,
    processed: Vec<std::path::PathBuf>,
    backlog: usize,
    committed: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The number last seen in the processed folder, and how many times it grew.
    moves: std::sync::Mutex<(usize, usize)>,
    violations: std::sync::Mutex<Vec<String>>,
}

impl casegate::imap::MessageSink for CheckingSink {
    fn deliver(
        &self,
        raw: &[u8],
        source: casegate::store::MessageSource,
    ) -> Result<casegate::imap::Delivered, casegate::imap::SinkError> {
        let mut committed = self.committed.lock().unwrap();
        let mut moved = 0;
        for dir in &self.processed {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                // A file the server is moving away right now is not there to check.
                let Ok(bytes) = std::fs::read(entry.path()) else {
                    continue;
                };
                moved += 1;
                let hash = support::imap_sink::sha256_hex(&bytes);
                if !committed.contains(&hash) {
                    self.violations
                        .lock()
                        .unwrap()
                        .push(format!("moved before its commit: {hash}"));
                }
            }
        }
        if committed.len() < self.backlog {
            let mut moves = self.moves.lock().unwrap();
            if moved > moves.0 {
                *moves = (moved, moves.1 + 1);
            }
        }
        let d = self.inner.deliver(raw, source)?;
        committed.insert(support::imap_sink::sha256_hex(raw));
        Ok(d)
    }
    fn checkpoint(
        &self,
        account: &str,
        mailbox: &str,
    ) -> Result<Option<casegate::store::Checkpoint>, casegate::imap::SinkError> {
        self.inner.checkpoint(account, mailbox)
    }
    fn reset_checkpoint(&self, a: &str, m: &str, v: u32) -> Result<(), casegate::imap::SinkError> {
        self.inner.reset_checkpoint(a, m, v)
    }
}

#[test]
fn a_backlog_is_acknowledged_in_large_sets_never_before_its_commit_and_new_mail_at_once() {
    init_tracing();
    let without_move: Vec<&str> = DOVECOT_CAPABILITY
        .split(' ')
        .filter(|c| *c != "MOVE")
        .collect();
    for caps in [None, Some(without_move.join(" "))] {
        let servers = MailServers::start_with(&ServerOptions {
            imap_capability: caps.clone(),
            ..ServerOptions::default()
        });
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("store.sqlite");
        let backlog: Vec<Vec<u8>> = (0..250).map(|i| test_message("backlog", i)).collect();
        servers.deliver_many(CERT, &backlog);
        let folder = servers.maildir(CERT).join(format!(".{PROCESSED}"));
        let sink = Arc::new(CheckingSink {
            inner: StoreSink::open(&db),
            processed: vec![folder.join("cur"), folder.join("new")],
            backlog: backlog.len(),
            committed: Default::default(),
            moves: Default::default(),
            violations: Default::default(),
        });
        let mut options = fast_options();
        options.batch_messages = 10;
        // Only the size bound and "nothing more waiting" may trigger an acknowledgment here.
        options.acknowledge = casegate::imap::AckPolicy {
            max_unacknowledged: 100,
            max_wait: std::time::Duration::from_secs(3600),
        };
        let config = imap_config(&servers, CERT, "none", "poll_interval_secs = 120");
        let account = config.account_name();
        let watcher = Watcher::start(config, sink.clone(), options);
        assert!(
            wait_until(60, || servers.count(CERT, "INBOX") == 0
                && servers.count(CERT, PROCESSED) == 250),
            "{caps:?}: stored {}, inbox {}, processed {}",
            stored_hashes(&db).len(),
            servers.count(CERT, "INBOX"),
            servers.count(CERT, PROCESSED)
        );
        // Idle now: one new message is stored and moved at once, not after `max_wait`.
        assert!(wait_until(10, || watcher
            .status
            .get(&account, "INBOX")
            .is_some_and(|s| s.connected)));
        std::thread::sleep(std::time::Duration::from_millis(300));
        servers.deliver(CERT, &test_message("idle", 0));
        assert!(
            wait_until(15, || servers.count(CERT, PROCESSED) == 251
                && servers.count(CERT, "INBOX") == 0),
            "{caps:?}: a new message was not moved at once"
        );
        watcher.stop().unwrap();
        // 25 batches of 10: sets of 100 while fetching, then halving sets while the last
        // batches commit (`src/imap/acknowledge.rs`), never one acknowledgment a batch.
        let (moved, moves) = *sink.moves.lock().unwrap();
        assert!(
            moved > 0 && moves <= 10,
            "{caps:?}: the processed folder grew {moves} times during the sync (to {moved})"
        );
        let violations = sink.violations.lock().unwrap();
        let first: Vec<&String> = violations.iter().take(5).collect();
        assert!(
            violations.is_empty(),
            "{caps:?}: {} violations: {first:?}",
            violations.len()
        );
        assert_eq!(stored_hashes(&db).len(), 251);
    }
}

/// Waits (at most 60 s) until the INBOX is empty and all `n` messages are in the processed
/// folder; fails with what the store and both folders hold.
fn assert_all_moved(servers: &MailServers, db: &std::path::Path, n: usize) {
    assert!(
        wait_until(60, || servers.count(CERT, "INBOX") == 0
            && servers.count(CERT, PROCESSED) == n),
        "stored {}, inbox {}, processed {}",
        stored_hashes(db).len(),
        servers.count(CERT, "INBOX"),
        servers.count(CERT, PROCESSED)
    );
}

/// The UIDs named by an IMAP sequence set such as `1:10,12` (no `*`).
fn uids_of(set: &str) -> Vec<u32> {
    set.split(',')
        .flat_map(|part| match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
                (a.min(b)..=a.max(b)).collect::<Vec<u32>>()
            }
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

/// The body FETCHes among `commands`: `(index, UID set, partial length)`.
fn body_fetches(commands: &[String]) -> Vec<(usize, String, String)> {
    commands
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let rest = c.strip_prefix("UID FETCH ")?;
            let (set, items) = rest.split_once(' ')?;
            let len = items
                .strip_prefix("(UID BODY.PEEK[]<0.")?
                .strip_suffix(">)")?;
            Some((i, set.to_string(), len.to_string()))
        })
        .collect()
}

#[test]
fn a_backlog_is_fetched_in_batches_without_asking_for_sizes_each_message_to_one_byte_past_the_bound()
 {
    init_tracing();
    let servers = MailServers::start_recording();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    let backlog: Vec<Vec<u8>> = (0..250).map(|i| test_message("sized", i)).collect();
    servers.deliver_many(CERT, &backlog);
    let mut options = fast_options();
    options.batch_messages = 10;
    let config = imap_config(&servers, CERT, "none", "poll_interval_secs = 3600");
    let limits = casegate::limits::Limits::default();
    let sink = StoreSink::open(&db);
    let watcher = Watcher::start(config, sink.clone(), options);
    assert_all_moved(&servers, &db, 250);
    servers.deliver(CERT, &test_message("later", 0));
    assert!(
        wait_until(15, || servers.count(CERT, PROCESSED) == 251),
        "new mail after the backlog was not moved"
    );
    watcher.stop().unwrap();

    let commands = servers.imap_commands(CERT);
    assert!(
        !commands.iter().any(|c| c.contains("RFC822.SIZE")),
        "a size was asked for: {commands:?}"
    );
    let fetches = body_fetches(&commands);
    let want_len = (limits.max_message_bytes + 1).to_string();
    assert!(
        fetches.iter().all(|(_, _, len)| *len == want_len),
        "{fetches:?}"
    );
    let sets: Vec<Vec<u32>> = fetches.iter().map(|(_, set, _)| uids_of(set)).collect();
    let lens: Vec<usize> = sets.iter().map(Vec::len).collect();
    let mut want = vec![10; 25];
    want.push(1);
    assert_eq!(lens, want, "{fetches:?}");
    assert_eq!(sets.concat(), (1..=251).collect::<Vec<u32>>());
    // Listed by UID, then fetched at once.
    let first = fetches[0].0;
    assert!(
        commands[..first]
            .iter()
            .any(|c| c.starts_with("UID SEARCH")),
        "the backlog was not listed by UID first: {commands:?}"
    );
    assert_eq!(stored_hashes(&db).len(), 251);
}

#[test]
fn a_message_over_the_bound_in_a_batch_is_read_alone_in_chunks_and_the_rest_fetched_again_in_uid_order()
 {
    init_tracing();
    let servers = MailServers::start_recording();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    let limits = casegate::limits::Limits {
        max_message_bytes: 4096,
        ..casegate::limits::Limits::default()
    };
    // UIDs 1..=8; 3 and 6 are over the bound (6 by a single byte).
    let mut backlog: Vec<Vec<u8>> = (0..8).map(|i| test_message("bound", i)).collect();
    let large = |i: usize, len: usize| {
        let mut raw = test_message("bound", i);
        raw.truncate(raw.len() - 2);
        raw.resize(len - 2, b'x');
        raw.extend_from_slice(b"\r\n");
        raw
    };
    backlog[2] = large(2, 3 * 1024 * 1024 + 17);
    backlog[5] = large(5, 4097);
    servers.deliver_many(CERT, &backlog);
    let mut options = fast_options();
    options.batch_messages = 100;
    let config = imap_config(&servers, CERT, "none", "poll_interval_secs = 3600");
    let sink = StoreSink::open_with(&db, limits);
    let watcher = Watcher::start(config, sink.clone(), options);
    assert!(
        wait_until(60, || servers.count(CERT, PROCESSED) == 8),
        "stored {}, inbox {}, processed {}",
        stored_hashes(&db).len(),
        servers.count(CERT, "INBOX"),
        servers.count(CERT, PROCESSED)
    );
    watcher.stop().unwrap();

    // Stored in UID order: each large one in quarantine in its place, with the size and
    // SHA-256 of all of it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT sha256, reason FROM messages ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 8, "{rows:?}");
    for (i, raw) in backlog.iter().enumerate() {
        let (sha, reason) = &rows[i];
        if raw.len() > 4096 {
            let whole = support::imap_sink::sha256_hex(raw);
            assert!(
                reason.contains(&format!("size {}; sha256 {whole}", raw.len())),
                "message {i}: {reason}"
            );
            assert!(reason.contains("over the limit"), "message {i}: {reason}");
        } else {
            assert_eq!(*sha, support::imap_sink::sha256_hex(raw), "message {i}");
        }
    }
    // One FETCH of the batch, cut at 3; 3 on its own in chunks; the rest fetched again, cut
    // at 6; 6 on its own; then 7 and 8.
    let commands = servers.imap_commands(CERT);
    let sets: Vec<String> = body_fetches(&commands)
        .into_iter()
        .filter(|(_, _, len)| len == "4097")
        .map(|(_, set, _)| set)
        .collect();
    assert_eq!(sets, vec!["1:8", "4:8", "7:8"], "{commands:?}");
    let partial: Vec<&String> = commands
        .iter()
        .filter(|c| c.contains("BODY.PEEK[]<") && !c.contains("BODY.PEEK[]<0.4097>"))
        .collect();
    assert!(
        partial.iter().any(|c| c.starts_with("UID FETCH 3 ")),
        "3 was not read in chunks: {partial:?}"
    );
    assert!(
        partial.iter().any(|c| c.starts_with("UID FETCH 6 ")),
        "6 was not read in chunks: {partial:?}"
    );
}

#[test]
fn a_batch_of_large_messages_is_stored_in_parts_while_it_is_fetched() {
    init_tracing();
    let servers = MailServers::start_recording();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    // 40 messages of ~100 KB in one FETCH, parts of 250 KB: several commits, waited for while
    // the FETCH goes on (the queue is full at 250 KB).
    let backlog: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            let mut raw = test_message("part", i);
            raw.extend(std::iter::repeat_n(b'y', 100_000));
            raw.extend_from_slice(b"\r\n");
            raw
        })
        .collect();
    servers.deliver_many(CERT, &backlog);
    let mut options = fast_options();
    options.batch_messages = 100;
    options.batch_bytes = 250_000;
    let config = imap_config(&servers, CERT, "none", "poll_interval_secs = 3600");
    let sink = StoreSink::open(&db);
    let watcher = Watcher::start(config, sink.clone(), options);
    assert!(
        wait_until(60, || servers.count(CERT, PROCESSED) == 40),
        "stored {}, inbox {}, processed {}",
        stored_hashes(&db).len(),
        servers.count(CERT, "INBOX"),
        servers.count(CERT, PROCESSED)
    );
    watcher.stop().unwrap();
    let want: Vec<String> = backlog
        .iter()
        .map(|r| support::imap_sink::sha256_hex(r))
        .collect();
    assert_eq!(stored_hashes(&db), want, "all of them, once, in UID order");
    let sets: Vec<String> = body_fetches(&servers.imap_commands(CERT))
        .into_iter()
        .map(|(_, set, _)| set)
        .collect();
    assert_eq!(sets, vec!["1:40"], "one FETCH");
    // Stored in parts closed at 250 KB (three messages each; the last part what was left).
    let parts = sink.batches.lock().unwrap().clone();
    let want: Vec<u64> = backlog
        .chunks(3)
        .map(|c| c.iter().map(|r| r.len() as u64).sum())
        .collect();
    assert_eq!(parts, want);
}

#[test]
fn messages_stored_before_a_crash_are_acknowledged_with_the_new_mail_behind_them() {
    init_tracing();
    let servers = MailServers::start_recording();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("store.sqlite");
    let backlog: Vec<Vec<u8>> = (0..250).map(|i| test_message("crashed", i)).collect();
    servers.deliver_many(CERT, &backlog);
    // As a session killed after its commits and before its MOVE leaves them: UIDs 1..=150
    // stored (the checkpoint at 150), all 250 still in the INBOX.
    let config = imap_config(&servers, CERT, "none", "poll_interval_secs = 3600");
    let account = config.account_name();
    let uidvalidity = servers.uidvalidity(CERT, "INBOX");
    let sink = StoreSink::open(&db);
    for (i, raw) in backlog.iter().take(150).enumerate() {
        let source = casegate::store::MessageSource::Imap {
            account: account.clone(),
            mailbox: "INBOX".into(),
            uidvalidity,
            uid: u32::try_from(i + 1).unwrap(),
        };
        casegate::imap::MessageSink::deliver(&*sink, raw, source).unwrap();
    }
    assert_eq!(servers.count(CERT, "INBOX"), 250);
    let mut options = fast_options();
    options.batch_messages = 10;
    options.acknowledge = casegate::imap::AckPolicy {
        max_unacknowledged: 1000,
        max_wait: std::time::Duration::from_secs(3600),
    };
    let watcher = Watcher::start(config, sink.clone(), options);
    assert_all_moved(&servers, &db, 250);
    watcher.stop().unwrap();
    // Each stored once: the 150 confirmed as duplicates, the 100 new ones stored.
    let want: Vec<String> = backlog
        .iter()
        .map(|r| support::imap_sink::sha256_hex(r))
        .collect();
    assert_eq!(stored_hashes(&db), want);
    // One backlog: the confirmed ones are not moved on their own in the halving sets of a
    // sync's end, before the new mail is even fetched. With nothing acknowledged while more
    // waits to be fetched (the policy above), no MOVE comes before the last body FETCH, and
    // the whole of it takes few MOVEs. (Which UIDs the first MOVE names depends on how far
    // the store got while the fetching ended.)
    let commands = servers.imap_commands(CERT);
    let first_move = commands
        .iter()
        .position(|c| c.starts_with("UID MOVE "))
        .expect("no MOVE");
    let fetches = body_fetches(&commands);
    let (last_fetch, last_set, _) = fetches.last().expect("no FETCH");
    assert!(
        *last_fetch < first_move && uids_of(last_set).contains(&250),
        "a MOVE before the new mail was fetched: {commands:?}"
    );
    let moves: Vec<Vec<u32>> = commands
        .iter()
        .filter_map(|c| c.strip_prefix("UID MOVE "))
        .map(|rest| uids_of(rest.split(' ').next().unwrap()))
        .collect();
    assert!(moves.len() <= 6, "{} MOVEs: {moves:?}", moves.len());
    let mut all: Vec<u32> = moves.concat();
    all.sort_unstable();
    assert_eq!(all, (1..=250).collect::<Vec<u32>>());
}
