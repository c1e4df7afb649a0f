//! One daemon per data dir, and no copy sent twice: a second `serve` exits 1 at once naming the
//! first one's PID (and starts once that one is killed); CLI writes succeed while a busy
//! `serve` writes too; two senders on one store claim copies, so each goes out exactly once.

mod outbox_case;
mod outbox_gpg;
mod outbox_receiver;
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use casegate::outbox::{self, OutboxFilter, Selection};
use casegate::store::Store;
use outbox_case::{FROM, add, case, config, notice};
use outbox_gpg::coordinator_cert;
use outbox_receiver::{Receiver, smtp_plain};
use support::cli::{bin, casegate, serve, sigterm, wait_for};

/// Polls the child until it has exited or `limit` passed; whether it exited.
fn wait_until_exit(child: &mut std::process::Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn lock_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("casegate-data/serve.lock"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[test]
fn a_second_serve_on_the_same_data_dir_exits_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut first = serve(dir);
    let up = |child: &std::process::Child| {
        lock_pid(dir) == Some(child.id()) && dir.join("casegate-data/Maildir/new").is_dir()
    };
    wait_for("the first serve up", Duration::from_secs(30), || up(&first));

    // "At once": the second one must end by itself, not wait on the lock. A bounded wait (a
    // second that waited would fail the test here instead of hanging it).
    let mut second = Command::new(bin())
        .arg("serve")
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ended = wait_until_exit(&mut second, Duration::from_secs(20));
    if !ended {
        let _ = second.kill();
        let _ = second.wait();
        let _ = first.kill();
        let _ = first.wait();
        panic!("the second serve waited on the first one's lock instead of exiting");
    }
    let second = second.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("PID {}", first.id())),
        "names the running one: {err}"
    );
    assert!(!err.contains("internal error"), "{err}");
    // The first one is untouched.
    assert!(first.try_wait().unwrap().is_none());

    // The lock dies with its process, however it dies.
    first.kill().unwrap();
    first.wait().unwrap();
    std::fs::remove_dir_all(dir.join("casegate-data/Maildir")).unwrap();
    let mut third = serve(dir);
    wait_for("the new serve up", Duration::from_secs(30), || up(&third));
    assert!(third.try_wait().unwrap().is_none());
    assert_eq!(sigterm(&mut third), Some(0));
}

/// The CLI's writes while `serve` stores a flood of Maildir messages (each a transaction, and
/// a report's acknowledgment another): none fails with "database is locked".
#[test]
fn cli_writes_succeed_while_a_busy_serve_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    let key = casegate::keyring::generate_coordinator_key("v@vendor.example").unwrap();
    std::fs::write(
        dir.join("v.asc"),
        casegate::keyring::armored_public(&key).unwrap(),
    )
    .unwrap();
    let mut daemon = serve(dir);
    let maildir = dir.join("casegate-data/Maildir");
    wait_for("the Maildir", Duration::from_secs(30), || {
        maildir.join("new").is_dir()
    });
    const FLOOD: usize = 300;
    for i in 0..FLOOD {
        let name = format!("flood{i:04}");
        std::fs::write(
            maildir.join("tmp").join(&name),
            format!(
                "From: r{i}@reporter.example\r\nTo: cert@example.test\r\nSubject: Report {i}\r\n\
Message-ID: <flood{i}@reporter.example>\r\n\r\nReport {i}.\r\n"
            ),
        )
        .unwrap();
        std::fs::rename(
            maildir.join("tmp").join(&name),
            maildir.join("new").join(&name),
        )
        .unwrap();
    }

    // Every kind of CLI write, over and over, while the daemon is at it.
    let mut failures = Vec::new();
    let mut round = 0;
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
    };
    while round < 200 {
        let stored = std::fs::read_dir(maildir.join("cur")).unwrap().count();
        if stored >= FLOOD && round >= 20 {
            break;
        }
        let title = format!("case {round}");
        let out = run(&["open", "case", "--title", &title]);
        let number = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut outs = vec![("open", out)];
        if !number.is_empty() {
            outs.push((
                "participant add",
                run(&[
                    "participant",
                    "add",
                    &number,
                    "--org",
                    "V",
                    "--email",
                    "v@vendor.example",
                    "--key",
                    "v.asc",
                ]),
            ));
            outs.push((
                "set",
                run(&["set", &number, "--require-signed-statements", "true"]),
            ));
        }
        let msg = dir.join(format!("cli{round}.eml"));
        std::fs::write(
            &msg,
            format!(
                "From: cli{round}@reporter.example\r\nTo: cert@example.test\r\nSubject: CLI {round}\r\n\
Message-ID: <cli{round}@reporter.example>\r\n\r\nx\r\n"
            ),
        )
        .unwrap();
        outs.push(("ingest", run(&["ingest", msg.to_str().unwrap()])));
        outs.push(("key import", run(&["key", "import", "v.asc"])));
        for (what, o) in outs {
            if !o.status.success() {
                failures.push(format!(
                    "{what}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
        }
        round += 1;
    }
    wait_for("the flood stored", Duration::from_secs(120), || {
        std::fs::read_dir(maildir.join("cur")).unwrap().count() >= FLOOD
    });
    assert!(daemon.try_wait().unwrap().is_none(), "serve died");
    assert_eq!(sigterm(&mut daemon), Some(0));
    assert!(
        failures.is_empty(),
        "{} CLI writes failed: {failures:#?}",
        failures.len()
    );
}

/// Two senders (the daemon's own delivery loop, twice, each with its store connection) on one
/// store: every copy is accepted exactly once. Before claims, two daemons on one data dir
/// delivered some copies twice.
#[test]
fn two_senders_on_one_store_send_each_copy_once() {
    let rx = Receiver::start();
    let data = tempfile::tempdir().unwrap();
    let path: PathBuf = data.path().join("s.sqlite");
    let mut store = Store::open(&path).unwrap();
    let thread = case(&mut store, "VU#300007");
    let coordinator = coordinator_cert(FROM);
    const N: usize = 24;
    for i in 0..N {
        let addr = format!("c{i}@vendor{i}.example");
        let (cert, _) =
            sequoia_openpgp::cert::CertBuilder::general_purpose(Some(format!("<{addr}>")))
                .generate()
                .unwrap();
        add(
            &mut store,
            &thread,
            &format!("V{i}"),
            &addr,
            Some(&cert.strip_secret_key_material()),
        );
    }
    let queued = outbox::notify(
        &mut store,
        &coordinator,
        &thread,
        &Selection::All,
        &notice("n\n"),
        &config(),
        FROM,
    )
    .unwrap();
    assert_eq!(queued.len(), N);
    // Slow answers to DATA: both senders are mid-send most of the time.
    rx.control("slow 0.05");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let senders: Vec<_> = (0..2)
        .map(|_| {
            rt.spawn(outbox::run_sender(
                casegate::store::Location::Sqlite(path.clone()),
                smtp_plain(rx.plain_port),
                config(),
                stop_rx.clone(),
            ))
        })
        .collect();
    wait_for("every copy sent", Duration::from_secs(120), || {
        store
            .outbox_rows(&OutboxFilter::default())
            .unwrap()
            .iter()
            .all(|r| r.status == "sent")
    });
    stop.send(true).unwrap();
    for s in senders {
        rt.block_on(s).unwrap().unwrap();
    }

    let mut by_id: HashMap<String, usize> = HashMap::new();
    for a in rx.accepted() {
        let text = String::from_utf8_lossy(&a.raw).into_owned();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .unwrap()
            .to_string();
        *by_id.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(by_id.len(), N);
    for r in store.outbox_rows(&OutboxFilter::default()).unwrap() {
        assert_eq!(r.attempts, 1, "{r:?}");
    }
}
