//! Two `casegate serve` instances on one PostgreSQL database (over TLS) and one Dovecot
//! mailbox, each with its own data dir (as on two hosts):
//!
//! 1. 500 messages arrive while one instance or the other is killed with SIGKILL again and
//!    again (sometimes staying dead long enough for the other to take the mailbox over):
//!    every message is stored exactly once and moved to the processed folder once.
//! 2. A notice is queued to 200 contacts while instances are killed: every copy reaches the
//!    SMTP server, and copies sent twice are at most one per kill (same Message-ID).
//! 3. The database goes away: nothing new is stored or moved (mail waits in the mailbox), the
//!    instances keep running; when it is back, the waiting mail is stored and moved.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use sequoia_openpgp::cert::CertBuilder;

use casegate::config::OutboxConfig;
use casegate::outbox::{self, Notice, Selection};
use casegate::store::{PgTarget, Store, StoredCert};
use casegate::tracking::{Kind, TrackingNumber};
use support::MailServers;
use support::imap_sink::{sha256_hex, test_message, wait_until};
use support::postgres::PgServer;

const CERT: &str = "cert@example.test";
const MESSAGES: usize = 500;
const CONTACTS: usize = 200;
/// The line the test writes into an instance's log before each start.
const STARTED: &str = "--- test: instance started";

struct Instance {
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    fn start(&mut self) {
        use std::io::Write;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        writeln!(log, "{STARTED}").unwrap();
        self.child = Some(
            Command::new(env!("CARGO_BIN_EXE_casegate"))
                .args(["--config", "casegate.toml", "--data-dir", "data", "serve"])
                .current_dir(&self.dir)
                .env("RUST_LOG", "casegate=info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    /// Whether the last start got as far as serving (its store opened): a `serve` that cannot
    /// open its store at start exits, as it should, so an outage must not begin before.
    fn serving(&self) -> bool {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.rsplit(STARTED)
            .next()
            .is_some_and(|since| since.contains("casegate serving"))
    }

    fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let code = support::cli::sigterm(&mut c);
            assert_eq!(
                code,
                Some(0),
                "SIGTERM must end serve with 0\n{}",
                self.tail()
            );
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

fn config(servers: &MailServers, pg: &PgServer, database: &str, key: &Path) -> String {
    format!(
        "[coordinator]\naddress = \"{CERT}\"\nreporting_address = \"{CERT}\"\nkey_file = \"{key}\"\n\n\
         [store]\nurl = \"{url}\"\npassword_file = \"{pw}\"\ntls = \"require\"\nca_file = \"{ca}\"\nlease_secs = 4\n\n\
         [maildir]\nenabled = false\n\n\
         [outbox]\nretry_base_secs = 1\nretry_max_secs = 2\n\n\
         [[imap]]\nname = \"cert\"\nhost = \"127.0.0.1\"\nport = {imap}\ntls = \"none\"\nusername = \"{CERT}\"\n\
         password_file = \"{mpw}\"\ntimeout_secs = 10\npoll_interval_secs = 1\n\n\
         [smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\ntimeout_secs = 10\n",
        key = key.display(),
        url = pg.url(database),
        pw = pg.password_file.display(),
        ca = pg.ca_cert.display(),
        imap = servers.imap_port,
        mpw = servers.password_file.display(),
        smtp = servers.smtp_port,
    )
}

/// The messages in a Maildir folder, line endings normalised (Dovecot stores LF).
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

fn stored_hashes(pg: &PgServer, database: &str) -> Vec<String> {
    let text = pg.sql_in(
        database,
        "SELECT sha256 FROM messages WHERE direction = 'in' ORDER BY sha256",
    );
    text.lines().map(str::to_string).collect()
}

fn message_id(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.strip_prefix("Message-ID: ")
                .or_else(|| l.strip_prefix("Message-Id: "))
        })
        .map(|v| v.trim().to_string())
}

#[test]
fn two_instances_share_one_database_through_kills_and_an_outage() {
    let contacts: Vec<String> = (0..CONTACTS)
        .map(|i| format!("c{i}@example.test"))
        .collect();
    let users: Vec<&str> = contacts.iter().map(String::as_str).collect();
    let servers = MailServers::start_with_users(&users);
    let pg = PgServer::start(true);
    let database = pg.create_database();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("coordinator.key");
    let mut instances: Vec<Instance> = ["a", "b"]
        .iter()
        .map(|name| {
            let dir = tmp.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("casegate.toml"),
                config(&servers, &pg, &database, &key),
            )
            .unwrap();
            Instance {
                log: tmp.path().join(format!("{name}.log")),
                dir,
                child: None,
            }
        })
        .collect();
    // `init` creates the schema in the empty database and the shared coordinator key.
    support::cli::casegate(
        &instances[0].dir,
        &["--config", "casegate.toml", "--data-dir", "data", "init"],
    );
    for i in &mut instances {
        i.start();
    }

    // 1. Mail arrives while instances are killed.
    let messages: Vec<Vec<u8>> = (0..MESSAGES).map(|i| test_message("pg", i)).collect();
    let delivered = AtomicBool::new(false);
    let kills = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut rng = rand::rng();
            for chunk in messages.chunks(25) {
                servers.deliver_many(CERT, chunk);
                std::thread::sleep(Duration::from_millis(rng.random_range(200..700)));
            }
            delivered.store(true, Ordering::SeqCst);
        });
        let mut rng = rand::rng();
        let mut kills = 0;
        while kills < 8 || !delivered.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(rng.random_range(300..1500)));
            let victim = rng.random_range(0..2);
            instances[victim].kill();
            kills += 1;
            // Sometimes dead longer than a lease (4 s): the other instance takes over.
            std::thread::sleep(Duration::from_millis(rng.random_range(0..6000)));
            instances[victim].start();
        }
        kills
    });
    let processed = servers.maildir(CERT).join(".casegate.processed");
    let done = wait_until(180, || {
        stored_hashes(&pg, &database).len() == MESSAGES && servers.count(CERT, "INBOX") == 0
    });
    assert!(
        done,
        "after {kills} kills: stored {}, inbox {}\n--- a\n{}\n--- b\n{}",
        stored_hashes(&pg, &database).len(),
        servers.count(CERT, "INBOX"),
        instances[0].tail(),
        instances[1].tail()
    );
    let stored = stored_hashes(&pg, &database);
    let want: BTreeSet<String> = messages.iter().map(|m| sha256_hex(m)).collect();
    assert_eq!(stored.len(), MESSAGES, "a message was stored twice");
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), want);
    let moved = maildir_messages(&processed);
    assert_eq!(moved.len(), MESSAGES, "processed folder: {}", moved.len());
    let want: BTreeSet<Vec<u8>> = messages.iter().map(|m| lf(m)).collect();
    assert_eq!(moved.into_iter().collect::<BTreeSet<_>>(), want);
    let takeovers: usize = instances
        .iter()
        .map(|i| {
            std::fs::read_to_string(&i.log)
                .unwrap_or_default()
                .matches("took the mailbox over")
                .count()
        })
        .sum();
    eprintln!("phase 1: {kills} kills, {takeovers} takeovers by the other instance");

    // 2. A notice to 200 contacts, sent while instances are killed.
    let target = PgTarget::new(
        &pg.url(&database),
        Some(&pg.password),
        Some(
            casegate::tls::ServerTrust::new(Some(&pg.ca_cert), casegate::tls::Pins::default())
                .and_then(|t| t.client_config())
                .unwrap(),
        ),
    )
    .unwrap();
    let mut store = Store::open_postgres(&target).unwrap();
    let case = store
        .create_thread(
            Kind::Case,
            Some(&TrackingNumber::parse("VU#424242").unwrap()),
            "Many vendors",
            Utc::now(),
        )
        .unwrap();
    for (i, addr) in contacts.iter().enumerate() {
        let (cert, _) = CertBuilder::general_purpose(Some(format!("<{addr}>")))
            .generate()
            .unwrap();
        let cert = cert.strip_secret_key_material();
        let fpr = cert.fingerprint().to_hex();
        store
            .merge_cert(&fpr, |_| {
                Ok(StoredCert {
                    fingerprint: fpr.clone(),
                    public_cert: sequoia_openpgp::serialize::SerializeInto::to_vec(&cert).unwrap(),
                    user_ids: vec![],
                    imported_at: casegate::store::time_text(Utc::now()),
                })
            })
            .unwrap();
        store
            .add_participant(case.id, &format!("Org{i}"), "vendor", addr, Some(&fpr))
            .unwrap();
    }
    let coordinator =
        casegate::keyring::read_secret_key_file(&key).expect("the coordinator key init made");
    let before = servers.smtp_accepted().len();
    let queued = outbox::notify(
        &mut store,
        &coordinator,
        &case,
        &Selection::All,
        &Notice {
            thread: "",
            subject: "Many vendors",
            body: "A notice to every vendor.\n",
            in_reply_to: None,
            automatic: false,
        },
        &OutboxConfig::default(),
        CERT,
    )
    .unwrap();
    assert_eq!(queued.len(), CONTACTS);
    assert!(queued.iter().all(|c| c.status == "queued"), "{queued:?}");
    let want_ids: BTreeSet<String> = queued.iter().filter_map(|c| c.message_id.clone()).collect();
    let mut rng = rand::rng();
    let mut notice_kills = 0;
    let accepted_ids = |servers: &MailServers| -> Vec<String> {
        servers.smtp_accepted()[before..]
            .iter()
            .filter_map(|c| message_id(&c.raw))
            .filter(|id| want_ids.contains(id))
            .collect()
    };
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(rng.random_range(200..1200)));
        let victim = rng.random_range(0..2);
        instances[victim].kill();
        notice_kills += 1;
        std::thread::sleep(Duration::from_millis(rng.random_range(0..3000)));
        instances[victim].start();
    }
    let all_sent = wait_until(240, || {
        store
            .outbox_rows(&casegate::store::outbox::OutboxFilter {
                thread_id: Some(case.id),
                status: None,
            })
            .unwrap()
            .iter()
            .all(|r| r.status == "sent")
    });
    assert!(
        all_sent,
        "copies not all sent\n--- a\n{}\n--- b\n{}",
        instances[0].tail(),
        instances[1].tail()
    );
    let got = accepted_ids(&servers);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &got {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(
        counts
            .keys()
            .map(|k| k.to_string())
            .collect::<BTreeSet<_>>(),
        want_ids,
        "every copy reaches the SMTP server"
    );
    let resent: usize = counts.values().map(|n| n - 1).sum();
    assert!(
        resent <= notice_kills,
        "{resent} copies sent twice, but only {notice_kills} kills"
    );
    eprintln!("phase 2: {notice_kills} kills, {resent} copies resent");

    // 3. The database goes away: nothing is taken from the mailbox; then it comes back. An
    // instance restarted at the end of phase 2 finishes starting first.
    assert!(
        wait_until(60, || instances.iter().all(Instance::serving)),
        "instances did not start\n--- a\n{}\n--- b\n{}",
        instances[0].tail(),
        instances[1].tail()
    );
    pg.stop();
    let late: Vec<Vec<u8>> = (0..10).map(|i| test_message("outage", i)).collect();
    servers.deliver_many(CERT, &late);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        servers.count(CERT, "INBOX"),
        late.len(),
        "nothing may be acknowledged while the database is down"
    );
    assert!(
        instances.iter_mut().all(|i| i.running()),
        "instances keep running\n--- a\n{}\n--- b\n{}",
        instances[0].tail(),
        instances[1].tail()
    );
    pg.restart();
    let recovered = wait_until(120, || {
        stored_hashes(&pg, &database).len() == MESSAGES + late.len()
            && servers.count(CERT, "INBOX") == 0
    });
    assert!(
        recovered,
        "after the outage: stored {}, inbox {}\n--- a\n{}\n--- b\n{}",
        stored_hashes(&pg, &database).len(),
        servers.count(CERT, "INBOX"),
        instances[0].tail(),
        instances[1].tail()
    );
    for i in &mut instances {
        i.stop();
    }
}

/// Two instances on one host watching one Maildir drop folder (a setup the deploy example does
/// not need, but nothing stops): each file is stored once and moved to `cur/` once, whichever
/// instance read it first, also when one instance is killed between its commit and the move.
#[test]
fn two_instances_share_one_maildir_without_duplicates_or_loss() {
    const FILES: usize = 150;
    let pg = PgServer::shared();
    let database = pg.create_database();
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("coordinator.key");
    let maildir = tmp.path().join("Maildir");
    let cfg = format!(
        "[coordinator]\naddress = \"{CERT}\"\nreporting_address = \"{CERT}\"\nkey_file = \"{key}\"\n\n\
         [store]\nurl = \"{url}\"\npassword_file = \"{pw}\"\ntls = \"require\"\nca_file = \"{ca}\"\n\n\
         [maildir]\nenabled = true\npath = \"{md}\"\npoll_interval_ms = 100\n",
        key = key.display(),
        url = pg.url(&database),
        pw = pg.password_file.display(),
        ca = pg.ca_cert.display(),
        md = maildir.display(),
    );
    let mut instances: Vec<Instance> = ["a", "b"]
        .iter()
        .map(|name| {
            let dir = tmp.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("casegate.toml"), &cfg).unwrap();
            Instance {
                log: tmp.path().join(format!("{name}.log")),
                dir,
                child: None,
            }
        })
        .collect();
    support::cli::casegate(
        &instances[0].dir,
        &["--config", "casegate.toml", "--data-dir", "data", "init"],
    );
    for i in &mut instances {
        i.start();
    }
    for sub in ["tmp", "new", "cur"] {
        assert!(
            wait_until(30, || maildir.join(sub).is_dir()),
            "serve made no Maildir\n{}",
            instances[0].tail()
        );
    }
    // Delivered as an MTA does (written in tmp/, renamed into new/), while instance a is
    // killed and restarted now and then.
    let messages: Vec<Vec<u8>> = (0..FILES).map(|i| test_message("md", i)).collect();
    for (i, m) in messages.iter().enumerate() {
        let name = format!("{i}.drop.localhost");
        std::fs::write(maildir.join("tmp").join(&name), m).unwrap();
        std::fs::rename(
            maildir.join("tmp").join(&name),
            maildir.join("new").join(&name),
        )
        .unwrap();
        if i % 50 == 25 {
            std::thread::sleep(Duration::from_millis(150));
            instances[0].kill();
            instances[0].start();
        }
    }
    let count = |sub: &str| std::fs::read_dir(maildir.join(sub)).unwrap().count();
    assert!(
        wait_until(120, || count("new") == 0 && count("cur") == FILES),
        "new/ {} cur/ {}\n{}\n{}",
        count("new"),
        count("cur"),
        instances[0].tail(),
        instances[1].tail()
    );
    assert!(instances[1].running(), "{}", instances[1].tail());
    for i in &mut instances {
        i.stop();
    }
    let mut expected: Vec<String> = messages.iter().map(|m| sha256_hex(m)).collect();
    expected.sort();
    assert_eq!(
        stored_hashes(pg, &database),
        expected,
        "each file stored once"
    );
    assert_eq!(count("new"), 0);
    assert_eq!(count("cur"), FILES, "each file moved once");
}
