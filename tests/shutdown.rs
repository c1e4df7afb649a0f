//! SIGTERM in the middle of work: while a batch of IMAP mail is being stored, while the Maildir
//! drop folder is being drained, and while an outbox copy is on its way to the SMTP server.
//! Each time `casegate serve` exits 0 having finished the message or copy in hand: everything
//! stored is acknowledged to its source and nothing else is, every copy the server accepted is
//! recorded `sent` and no other; the next start picks up the rest, each exactly once.

mod outbox_receiver;
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use outbox_receiver::Receiver;
use support::MailServers;
use support::cli::{Serve, casegate, json_lines, wait_for};
use support::imap_sink::test_message;

const CERT: &str = "cert@example.test";

/// Message-IDs in the store.
fn stored_ids(db: &Path) -> BTreeSet<String> {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return BTreeSet::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT message_id FROM messages") else {
        return BTreeSet::new();
    };
    stmt.query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .filter_map(|r| r.unwrap())
        .collect()
}

/// Message-IDs of the messages in a Maildir folder (or one of its subfolders).
fn folder_ids(folder: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for sub in ["cur", "new", ""] {
        let Ok(entries) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.path().is_file() {
                continue;
            }
            let raw = std::fs::read(e.path()).unwrap();
            if let Some(id) = mail_parser::MessageParser::default()
                .parse(&raw)
                .and_then(|m| m.message_id().map(|id| format!("<{id}>")))
            {
                out.insert(id);
            }
        }
    }
    out
}

#[test]
fn sigterm_while_imap_mail_is_being_stored() {
    let servers = MailServers::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        format!(
            "[maildir]\nenabled = false\n\n[ingest]\nbatch_messages = 10\n\n[[imap]]\n\
             name = \"cert\"\nhost = \"127.0.0.1\"\n\
             port = {}\ntls = \"none\"\nusername = \"{CERT}\"\npassword_file = \"{}\"\n\
             poll_interval_secs = 1\ntimeout_secs = 10\n",
            servers.imap_port,
            servers.password_file.display()
        ),
    )
    .unwrap();
    casegate(dir, &["init"]);
    let db = dir.join("casegate-data/casegate.sqlite");
    const TOTAL: usize = 1500;
    let messages: Vec<Vec<u8>> = (0..TOTAL).map(|i| test_message("term", i)).collect();
    servers.deliver_many(CERT, &messages);
    let all: BTreeSet<String> = (0..TOTAL)
        .map(|i| format!("<term-{i}@example.test>"))
        .collect();
    let inbox = servers.maildir(CERT);
    let processed = servers.maildir(CERT).join(".casegate.processed");

    let serve = Serve::start(dir, &[]);
    // Past the first batches (of 10: 150 commits for the 1,500, so that SIGTERM lands while
    // some are still waiting): one batch is committing while the next is fetched and the
    // previous one moved.
    wait_for("150 messages stored", Duration::from_secs(120), || {
        stored_ids(&db).len() >= 150
    });
    assert_eq!(serve.stop(), Some(0), "SIGTERM must end serve with 0");

    let stored = stored_ids(&db);
    assert!(
        stored.len() < TOTAL,
        "everything was stored before SIGTERM landed: the test proves nothing"
    );
    // The message in hand was finished; what was stored is acknowledged (moved), and only that.
    let moved = folder_ids(&processed);
    assert_eq!(moved, stored, "moved and stored differ after SIGTERM");
    let waiting = folder_ids(&inbox);
    assert!(
        waiting.is_disjoint(&stored),
        "stored mail left in the INBOX"
    );
    assert_eq!(
        waiting.union(&stored).cloned().collect::<BTreeSet<_>>(),
        all,
        "a message went missing"
    );
    eprintln!("SIGTERM after {} of {TOTAL} messages", stored.len());

    // The next start stores the rest, each once.
    let serve = Serve::start(dir, &[]);
    wait_for(
        "the rest stored and moved",
        Duration::from_secs(300),
        || stored_ids(&db).len() == TOTAL && servers.count(CERT, "INBOX") == 0,
    );
    assert_eq!(serve.stop(), Some(0));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows as usize, TOTAL, "a message was stored twice");
    assert_eq!(folder_ids(&processed), all);
    assert_eq!(servers.count(CERT, "casegate.processed"), TOTAL);
}

#[test]
fn sigterm_while_the_drop_folder_is_being_drained() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    casegate(dir, &["init"]);
    let db = dir.join("casegate-data/casegate.sqlite");
    let maildir = dir.join("casegate-data/Maildir");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    // New reports from different people: each is stored and acknowledged (the slow part).
    // Enough that group commit cannot store them all before SIGTERM lands.
    const TOTAL: usize = 1500;
    let mut all = BTreeSet::new();
    for i in 0..TOTAL {
        let id = format!("<drain-{i}@reporter{i}.example>");
        let raw = format!(
            "From: Reporter {i} <r@reporter{i}.example>\r\nTo: cert@example.test\r\n\
Subject: Report {i}\r\nMessage-ID: {id}\r\n\r\nDetails {i}.\r\n"
        );
        let name = format!("{i:05}.eml");
        std::fs::write(maildir.join("tmp").join(&name), raw).unwrap();
        std::fs::rename(
            maildir.join("tmp").join(&name),
            maildir.join("new").join(&name),
        )
        .unwrap();
        all.insert(id);
    }

    let serve = Serve::start(dir, &[]);
    wait_for("the first message stored", Duration::from_secs(60), || {
        !stored_ids(&db).is_empty()
    });
    assert_eq!(serve.stop(), Some(0), "SIGTERM must end serve with 0");
    let stored = stored_ids(&db);
    assert!(
        stored.len() < TOTAL,
        "everything was stored before SIGTERM landed: the test proves nothing"
    );
    assert_eq!(
        folder_ids(&maildir.join("cur")),
        stored,
        "cur/ and the store differ"
    );
    let waiting = folder_ids(&maildir.join("new"));
    assert!(waiting.is_disjoint(&stored));
    assert_eq!(
        waiting.union(&stored).cloned().collect::<BTreeSet<_>>(),
        all
    );
    // Every stored report has its acknowledgment queued before the daemon exited (what the
    // last messages owed is settled on the way out); none for a report not stored.
    let outbox = json_lines(&casegate(dir, &["outbox", "list", "--json"]));
    let owed = casegate::store::Store::open(&db)
        .unwrap()
        .pending_acks()
        .unwrap()
        .len();
    assert_eq!(owed, 0, "acknowledgments still owed after a clean stop");
    assert_eq!(outbox.len(), stored.len());

    let serve = Serve::start(dir, &[]);
    wait_for("the rest stored", Duration::from_secs(300), || {
        stored_ids(&db).len() == TOTAL
    });
    let queued = || json_lines(&casegate(dir, &["outbox", "list", "--json"])).len();
    wait_for(
        "every acknowledgment queued",
        Duration::from_secs(60),
        || queued() >= TOTAL,
    );
    assert_eq!(serve.stop(), Some(0));
    assert_eq!(folder_ids(&maildir.join("cur")), all);
    let reports = json_lines(&casegate(dir, &["list", "--kind", "report", "--json"]));
    assert_eq!(reports.len(), TOTAL, "a report was stored twice or lost");
    assert_eq!(queued(), TOTAL, "one acknowledgment per report");
}

#[test]
fn sigterm_while_a_copy_is_being_sent() {
    let rx = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("casegate.toml"),
        format!(
            "[maildir]\nenabled = false\n\n[outbox]\nretry_base_secs = 1\n\n[smtp]\n\
             host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout_secs = 30\n",
            rx.plain_port
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
            "VU#409117",
        ],
    );
    const VENDORS: usize = 4;
    let addresses: Vec<String> = (0..VENDORS)
        .map(|i| format!("psirt{i}@vendor{i}.example"))
        .collect();
    for (i, a) in addresses.iter().enumerate() {
        let (cert, _) = sequoia_openpgp::cert::CertBuilder::general_purpose(Some(format!("<{a}>")))
            .generate()
            .unwrap();
        let file = dir.join(format!("vendor{i}.asc"));
        {
            use sequoia_openpgp::serialize::SerializeInto;
            std::fs::write(&file, cert.armored().to_vec().unwrap()).unwrap();
        }
        casegate(
            dir,
            &[
                "participant",
                "add",
                "VU#409117",
                "--org",
                &format!("Vendor{i}"),
                "--email",
                a,
                "--key",
                file.to_str().unwrap(),
            ],
        );
    }
    std::fs::write(dir.join("notice.txt"), "Advisory draft.\n").unwrap();
    let queued = json_lines(&casegate(
        dir,
        &["notify", "VU#409117", "--body", "notice.txt", "--json"],
    ));
    assert_eq!(queued.len(), VENDORS);

    // The server takes each message, then answers DATA two seconds later: SIGTERM lands
    // between "the server has it" and "casegate recorded it".
    rx.control("slow 2");
    let serve = Serve::start(dir, &[]);
    wait_for(
        "the first copy at the server",
        Duration::from_secs(60),
        || !rx.accepted().is_empty(),
    );
    assert_eq!(serve.stop(), Some(0), "SIGTERM must end serve with 0");

    let message_id = |raw: &[u8]| {
        mail_parser::MessageParser::default()
            .parse(raw)
            .and_then(|m| m.message_id().map(|id| format!("<{id}>")))
            .unwrap()
    };
    let accepted: BTreeSet<String> = rx.accepted().iter().map(|a| message_id(&a.raw)).collect();
    let rows = json_lines(&casegate(dir, &["outbox", "list", "--json"]));
    let sent: BTreeSet<String> = rows
        .iter()
        .filter(|r| r["status"] == "sent")
        .map(|r| r["message_id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        accepted.len() < VENDORS,
        "all were sent before SIGTERM landed"
    );
    // The copy in hand was finished and recorded; nothing is `sent` that the server did not take.
    assert_eq!(
        sent, accepted,
        "sent in the outbox vs accepted by the server"
    );
    for r in rows.iter().filter(|r| r["status"] != "sent") {
        assert_eq!(r["status"], "queued", "{r}");
        assert_eq!(r["attempts"], 0, "{r}");
    }

    // The next start sends the rest; nobody gets a copy twice.
    rx.control("off");
    let serve = Serve::start(dir, &[]);
    wait_for("every copy sent", Duration::from_secs(60), || {
        json_lines(&casegate(dir, &["outbox", "list", "--json"]))
            .iter()
            .all(|r| r["status"] == "sent")
    });
    assert_eq!(serve.stop(), Some(0));
    for a in &addresses {
        assert_eq!(rx.inbox(a).len(), 1, "{a}");
    }
}
