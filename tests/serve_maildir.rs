//! `casegate serve` on embedded defaults: the Maildir drop folder is ingested, a message moves
//! to cur/ only after it is stored, SIGTERM exits 0, and kill -9 at random moments loses and
//! duplicates nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::cli::{bin, casegate, wait_for};

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

    unsafe { libc_kill(child.id() as i32, 15) };
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn kill_9_at_random_points_stores_every_message_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    std::fs::create_dir_all(maildir(dir).join("tmp")).unwrap();
    std::fs::create_dir_all(maildir(dir).join("new")).unwrap();
    std::fs::create_dir_all(maildir(dir).join("cur")).unwrap();
    let total = 120;
    let mut delivered = 0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _round in 0..12 {
        let mut child = start_serve(dir);
        // Mail keeps arriving while the daemon runs and dies.
        for _ in 0..10 {
            if delivered < total {
                delivered += 1;
                deliver(dir, &format!("{delivered:04}.eml"), &report(delivered));
            }
        }
        std::thread::sleep(Duration::from_millis(rand() % 400));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert_eq!(delivered, total);
    // A last clean run drains what is left.
    let mut child = start_serve(dir);
    wait_for(
        "every message to move to cur/",
        Duration::from_secs(120),
        || count(&maildir(dir).join("cur")) == total,
    );
    unsafe { libc_kill(child.id() as i32, 15) };
    wait_exit(&mut child, Duration::from_secs(20));

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

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(start.elapsed() < limit, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
