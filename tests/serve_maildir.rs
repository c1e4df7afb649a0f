//! `casegate serve` on embedded defaults: the Maildir drop folder is ingested, SIGTERM exits 0,
//! and kill -9 at random moments loses and duplicates nothing. After every kill, everything in
//! cur/ is in the store (moved only after its commit), and the kills that landed between a
//! commit and the move (stored, still in new/) are counted: the test needs some. (That a message
//! stays in new/ while the store refuses is tests/ordering.rs.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;
use support::cli::{bin, casegate, sigterm, wait_for};

fn start_serve(dir: &Path) -> Child {
    Command::new(bin())
        .arg("serve")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn maildir(dir: &Path) -> PathBuf {
    dir.join("casegate-data").join("Maildir")
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Delivers like an MTA: write into tmp/, then rename into new/.
fn deliver(dir: &Path, name: &str, raw: &str) {
    let md = maildir(dir);
    let tmp = md.join("tmp").join(name);
    std::fs::write(&tmp, raw).unwrap();
    std::fs::rename(&tmp, md.join("new").join(name)).unwrap();
}

fn report(i: usize) -> String {
    format!(
        "From: Reporter {i} <reporter{i}@example.net>\r\nTo: cert@example.test\r\n\
Subject: Vulnerability report {i}\r\nMessage-ID: <report-{i}@example.net>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nDetails of issue {i}.\r\n"
    )
}

#[test]
fn serve_ingests_the_drop_folder_and_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut child = start_serve(dir);
    wait_for("the Maildir", Duration::from_secs(60), || {
        maildir(dir).join("new").is_dir()
    });
    deliver(dir, "1.eml", &report(1));
    wait_for(
        "the message to move to cur/",
        Duration::from_secs(20),
        || count(&maildir(dir).join("cur")) == 1,
    );
    assert_eq!(count(&maildir(dir).join("new")), 0);
    // Stored before it moved: the report exists.
    let list = casegate(dir, &["list", "--json"]);
    let threads: Vec<serde_json::Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(threads.len(), 1, "{list}");
    assert_eq!(threads[0]["kind"], "report");
    assert_eq!(threads[0]["messages"], 1);
    // The coordinator key was created on first run.
    assert!(dir.join("casegate-data").join("coordinator.key").is_file());

    assert_eq!(sigterm(&mut child), Some(0));
}

#[test]
fn sigterm_during_start_up_is_a_clean_stop() {
    // A fresh data dir: the store and the coordinator key are being made when SIGTERM lands
    // (as soon as the handler is in place, which is the daemon's first step).
    for _ in 0..5 {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = start_serve(tmp.path());
        assert_eq!(sigterm(&mut child), Some(0));
    }
}

/// How many messages are stored (0 before the store exists).
fn stored_count(dir: &Path) -> i64 {
    rusqlite::Connection::open(dir.join("casegate-data/casegate.sqlite"))
        .and_then(|c| c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)))
        .unwrap_or(0)
}

/// Message-IDs in the store.
fn stored_ids(dir: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(dir.join("casegate-data/casegate.sqlite")).unwrap();
    let mut stmt = conn.prepare("SELECT message_id FROM messages").unwrap();
    stmt.query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .filter_map(|r| r.unwrap())
        .collect()
}

/// Message-IDs of the files in one Maildir subfolder (`report` writes them as `<report-N@...>`).
fn ids_in(sub: &Path) -> BTreeSet<String> {
    std::fs::read_dir(sub)
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .map(|id| id.trim().to_string())
        })
        .collect()
}

#[test]
fn kill_9_at_random_points_stores_every_message_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    std::fs::create_dir_all(maildir(dir).join("tmp")).unwrap();
    std::fs::create_dir_all(maildir(dir).join("new")).unwrap();
    std::fs::create_dir_all(maildir(dir).join("cur")).unwrap();
    // Kills that must land between a message's commit and its move to cur/, and the bound on
    // rounds spent looking for them (10 more messages each).
    let (want_in_window, max_rounds) = (2, 60);
    let mut in_window = 0;
    let mut delivered = 0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut rounds = 0;
    while rounds < 12 || (in_window < want_in_window && rounds < max_rounds) {
        rounds += 1;
        let mut child = start_serve(dir);
        // Mail keeps arriving while the daemon runs and dies.
        for _ in 0..10 {
            delivered += 1;
            deliver(dir, &format!("{delivered:04}.eml"), &report(delivered));
        }
        if rounds % 2 == 0 {
            std::thread::sleep(Duration::from_millis(rand() % 400));
        } else {
            // Right after this child's next commit, where a move before the commit would show.
            let before = stored_count(dir);
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while stored_count(dir) <= before && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let stored = stored_ids(dir);
        let early: Vec<String> = ids_in(&maildir(dir).join("cur"))
            .difference(&stored)
            .cloned()
            .collect();
        assert!(
            early.is_empty(),
            "round {rounds}: in cur/ but not stored: {early:?}"
        );
        if !ids_in(&maildir(dir).join("new")).is_disjoint(&stored) {
            in_window += 1;
        }
    }
    let total = delivered;
    assert!(
        in_window >= want_in_window,
        "only {in_window} of {rounds} kills landed between a commit and the move to cur/"
    );
    eprintln!("{rounds} kills, {in_window} between a commit and the move to cur/");
    // A last clean run drains what is left.
    let mut child = start_serve(dir);
    wait_for(
        "every message to move to cur/",
        Duration::from_secs(120),
        || count(&maildir(dir).join("cur")) == total,
    );
    assert_eq!(sigterm(&mut child), Some(0));

    let list = casegate(dir, &["list", "--json"]);
    let threads: Vec<serde_json::Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(threads.len(), total, "one report per message, none twice");
    assert!(threads.iter().all(|t| t["messages"] == 1));
    let mut titles: Vec<String> = threads
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    titles.dedup();
    assert_eq!(titles.len(), total);
}
