//! Exactly once across kill -9: a watcher process is killed at random points, at least 20 times,
//! while 500 messages arrive; afterwards every message is stored exactly once and every stored
//! message has been moved to the processed folder.
//!
//! The killed process is this test binary itself, re-run with only `child_watcher` selected and
//! `CASEGATE_IMAP_CRASH_CHILD` set: it runs `imap::watch_with` on a real `Store` (the test sink)
//! until SIGTERM. This needs no other build target; once `casegate serve` exists the same test
//! can drive it instead.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::Rng;
use support::MailServers;
use support::imap_sink::{
    StoreSink, imap_config, sha256_hex, stored_hashes, test_message, wait_until,
};

const CHILD_ENV: &str = "CASEGATE_IMAP_CRASH_CHILD";
const CERT: &str = "cert@example.test";
const MESSAGES: usize = 500;
const KILLS: usize = 20;

/// Not a test on its own: the process the crash test starts and kills.
#[test]
fn child_watcher() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (db, config_toml) = spec.split_once('\n').unwrap();
    let config: casegate::config::ImapConfig = toml::from_str(config_toml).unwrap();
    let sink = StoreSink::open(Path::new(db));
    support::imap_sink::init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::spawn(async move {
            term.recv().await;
            let _ = tx.send(true);
        });
        let options = casegate::imap::WatchOptions {
            batch_messages: 20,
            ..support::imap_sink::fast_options()
        };
        let status = std::sync::Arc::new(casegate::imap::ImapStatus::new());
        casegate::imap::watch_with(config, sink, rx, status, options).await
    });
    std::process::exit(if result.is_ok() { 0 } else { 1 });
}

fn spawn_child(db: &Path, config_toml: &str, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_watcher",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, format!("{}\n{config_toml}", db.display()))
        .env("RUST_LOG", "casegate=info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The messages in a Maildir folder, line endings normalised (Dovecot stores LF, IMAP sends CRLF).
fn maildir_messages(folder: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for e in entries {
            out.push(lf(&std::fs::read(e.unwrap().path()).unwrap()));
        }
    }
    out
}

fn lf(raw: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(raw)
        .replace("\r\n", "\n")
        .into_bytes()
}

#[test]
fn kill_9_at_random_points_loses_and_duplicates_nothing() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let db: PathBuf = tmp.path().join("store.sqlite");
    let log = tmp.path().join("children.log");
    let config = imap_config(&servers, CERT, "none", "");
    let config_toml = format!(
        "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{CERT}\"\npassword_file = \"{}\"\ntimeout_secs = 10\n",
        config.port,
        servers.password_file.display()
    );
    let messages: Vec<Vec<u8>> = (0..MESSAGES).map(|i| test_message("crash", i)).collect();
    let delivered = AtomicBool::new(false);

    let kills = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut rng = rand::rng();
            for chunk in messages.chunks(25) {
                servers.deliver_many(CERT, chunk);
                std::thread::sleep(Duration::from_millis(rng.random_range(150..600)));
            }
            delivered.store(true, Ordering::SeqCst);
        });
        let mut rng = rand::rng();
        let mut kills = 0;
        while kills < KILLS || !delivered.load(Ordering::SeqCst) {
            let mut child = spawn_child(&db, &config_toml, &log);
            // Anywhere from process start-up (before the store is open or the login is done)
            // to the middle of a batch of fetches, commits and moves.
            std::thread::sleep(Duration::from_millis(rng.random_range(0..700)));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
        }
        kills
    });
    assert!(kills >= KILLS);
    let stored_before_final_run = stored_hashes(&db).len();

    // A last run, left alone: it must finish the job, then stop cleanly on SIGTERM.
    let mut child = spawn_child(&db, &config_toml, &log);
    let processed = servers.maildir(CERT).join(".casegate.processed");
    let done = wait_until(120, || {
        stored_hashes(&db).len() == MESSAGES && servers.count(CERT, "INBOX") == 0
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: String = log_text
        .lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        done,
        "after {kills} kills: stored {}, inbox {}\n{tail}",
        stored_hashes(&db).len(),
        servers.count(CERT, "INBOX")
    );
    assert!(
        exit.success(),
        "SIGTERM must end the watcher with 0: {exit:?}\n{tail}"
    );

    // Exactly once: each message stored once, byte for byte, and nothing else.
    let stored = stored_hashes(&db);
    let unique: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), unique.len(), "a message was stored twice");
    let want: BTreeSet<String> = messages.iter().map(|m| sha256_hex(m)).collect();
    assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), want);
    // Every stored message moved, once.
    let moved = maildir_messages(&processed);
    assert_eq!(
        moved.len(),
        MESSAGES,
        "processed folder holds {} messages",
        moved.len()
    );
    let moved: BTreeSet<Vec<u8>> = moved.into_iter().collect();
    let want: BTreeSet<Vec<u8>> = messages.iter().map(|m| lf(m)).collect();
    assert_eq!(moved, want);
    let recovered = log_text.matches("not yet acknowledged").count();
    eprintln!(
        "{kills} kills; {stored_before_final_run} of {MESSAGES} stored before the final run; \
         {recovered} start(s) found stored-but-unmoved messages and finished them"
    );
}
