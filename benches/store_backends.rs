//! The store on SQLite next to PostgreSQL (issue 15), one and two instances, as numbers, never
//! asserted. What differs between the backends is the store; parsing, opening and sealing are
//! the same code on both (see `ingest_pgp` and `fanout` for those), so this measures the store
//! work of the same corpus:
//!   - ingest: 2,000 messages (20 KB each, as the PGP/MIME corpus) committed one durable
//!     transaction each (`commit_message`, what every inbound message costs), by one writer
//!     and by two writers at once (two instances, each its own half);
//!   - fan-out: one notice of 1,000 sealed 28 KB copies queued in one transaction, then every
//!     copy claimed and recorded as sent (what the senders do around SMTP), by one instance;
//!     then two instances each queue a notice of 1,000 at the same moment and two senders
//!     (one an instance) claim and record all 2,000.
//!
//! "Two instances" are two store connections of their own in this process, on two threads:
//! the database sees what it sees from two `serve` processes (the daemon around the store is
//! the same code on both backends).
//!
//! SQLite is durable (WAL, synchronous=FULL); PostgreSQL is a private cluster on loopback with
//! its defaults (fsync on), started by `tests/support/postgres`.
//!
//! Run: `cargo bench --bench store_backends` (or `./run bench store_backends`).
//! `CASEGATE_BENCH_N` changes the message count.

#[path = "../tests/support/postgres.rs"]
mod pg_harness;

use std::time::Instant;

use casegate::store::outbox::{AttemptOutcome, CopyKind, NewCopy, NewNotice};
use casegate::store::{Disposition, MessageSource, NewMessage, PgTarget, Store};
use casegate::tracking::{Kind, TrackingNumber};
use chrono::Utc;

const COPIES: usize = 1000;

fn message(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: reporter{i}@example.org\r\nTo: cert@example.test\r\nSubject: bench {i}\r\n\
         Message-ID: <bench-{i}@example.org>\r\n\r\n"
    )
    .into_bytes();
    m.extend(std::iter::repeat_n(b'x', 20 * 1024));
    m
}

/// Commits messages `range` into `store`, one transaction each.
fn ingest(store: &mut Store, range: std::ops::Range<usize>) {
    for i in range {
        let m = NewMessage {
            reason: "bench".into(),
            ..NewMessage::inbound(
                &message(i),
                MessageSource::Replay,
                Utc::now(),
                Disposition::Triage,
            )
        };
        store.commit_message(&m).expect("commit");
    }
}

/// Queues one notice of `COPIES` copies (in a new case `tag`); returns when the queueing
/// started and ended.
fn queue(store: &mut Store, tag: &str) -> (Instant, Instant) {
    let t = store
        .create_thread(
            Kind::Case,
            Some(&TrackingNumber::parse(tag).expect("number")),
            "bench",
            Utc::now(),
        )
        .expect("case");
    let raw = vec![b'y'; 28 * 1024];
    let ids: Vec<(String, String)> = (0..COPIES)
        .map(|i| (format!("v{i}@x.test"), format!("<{tag}-{i}@x.test>")))
        .collect();
    let copies: Vec<NewCopy<'_>> = ids
        .iter()
        .map(|(a, m)| NewCopy::Sealed {
            kind: CopyKind::Notice,
            address: a,
            org: "V",
            message_id: m,
            raw: &raw,
            key_fingerprint: Some("AB"),
        })
        .collect();
    let notice = NewNotice {
        thread_id: t.id,
        sender: "cert@example.test",
        in_reply_to: None,
        automatic: false,
        date_unix: 0,
        signer_fingerprint: "CD",
        inner: b"inner",
        relay_of: None,
    };
    let start = Instant::now();
    store
        .enqueue_notice(&notice, &copies, Utc::now())
        .expect("queue");
    (start, Instant::now())
}

/// Two stores of their own ("two instances"), connected before anything is timed.
fn two(open: &(dyn Fn() -> Store + Sync)) -> [Store; 2] {
    [open(), open()]
}

/// Claims and records copies until none is due; returns how many this sender did.
fn send_all(store: &mut Store, owner: &str) -> usize {
    let mut done = 0;
    loop {
        let now = Utc::now();
        let Some(c) = store
            .claim_due_copy(owner, now, chrono::Duration::seconds(300))
            .expect("claim")
        else {
            return done;
        };
        store
            .record_attempt(c.id, owner, now, &AttemptOutcome::Accepted, "250 ok")
            .expect("record");
        done += 1;
    }
}

struct Row {
    what: String,
    secs: f64,
    count: usize,
}

fn run(name: &str, open: &(dyn Fn() -> Store + Sync), n: usize, tag: u32) -> Vec<Row> {
    let mut rows = Vec::new();
    // Ingest, one writer.
    let mut s = open();
    let start = Instant::now();
    ingest(&mut s, 0..n);
    rows.push(Row {
        what: format!("{name}: ingest, 1 instance"),
        secs: start.elapsed().as_secs_f64(),
        count: n,
    });
    // Ingest, two writers at once (new messages).
    let pair = two(open);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for (w, mut s) in pair.into_iter().enumerate() {
            scope.spawn(move || {
                let base = n + w * n / 2;
                ingest(&mut s, base..base + n / 2);
            });
        }
    });
    rows.push(Row {
        what: format!("{name}: ingest, 2 instances"),
        secs: start.elapsed().as_secs_f64(),
        count: n,
    });
    // Fan-out: queue, then send bookkeeping by one and by two senders.
    let (from, to) = queue(&mut s, &format!("VU#{:06}", 100_000 + tag));
    rows.push(Row {
        what: format!("{name}: queue 1 notice x {COPIES} copies, 1 instance"),
        secs: (to - from).as_secs_f64(),
        count: COPIES,
    });
    let start = Instant::now();
    let sent = send_all(&mut s, "one");
    assert_eq!(
        sent, COPIES,
        "{name}: one sender recorded {sent} of {COPIES} copies"
    );
    rows.push(Row {
        what: format!("{name}: claim+record, 1 instance"),
        secs: start.elapsed().as_secs_f64(),
        count: sent,
    });
    // Two instances queue a notice each at the same moment, then both send.
    let pair = two(open);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..2u32)
            .zip(pair)
            .map(|(w, mut s)| {
                scope.spawn(move || queue(&mut s, &format!("VU#{:06}", 200_000 + 10 * tag + w)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("queue")).collect()
    });
    let first = spans.iter().map(|s| s.0).min().expect("two spans");
    let last = spans.iter().map(|s| s.1).max().expect("two spans");
    rows.push(Row {
        what: format!("{name}: queue 2 notices x {COPIES} copies, 2 instances"),
        secs: (last - first).as_secs_f64(),
        count: 2 * COPIES,
    });
    let pair = two(open);
    let start = Instant::now();
    let sent: usize = std::thread::scope(|scope| {
        let hs: Vec<_> = pair
            .into_iter()
            .enumerate()
            .map(|(w, mut s)| scope.spawn(move || send_all(&mut s, &format!("sender{w}"))))
            .collect();
        hs.into_iter().map(|h| h.join().expect("sender")).sum()
    });
    assert_eq!(
        sent,
        2 * COPIES,
        "{name}: two senders recorded {sent} of {} copies",
        2 * COPIES
    );
    rows.push(Row {
        what: format!("{name}: claim+record, 2 instances"),
        secs: start.elapsed().as_secs_f64(),
        count: sent,
    });
    rows
}

fn main() {
    let n: usize = std::env::var("CASEGATE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("casegate.sqlite");
    let sqlite = run(
        "SQLite",
        &|| Store::open(&path).expect("SQLite store"),
        n,
        1,
    );
    let server = pg_harness::PgServer::start(false);
    let db = server.create_database();
    let target =
        PgTarget::new(&server.url(&db), Some(&server.password), None).expect("PostgreSQL target");
    let pg = run(
        "PostgreSQL",
        &|| Store::open_postgres(&target).expect("PostgreSQL store"),
        n,
        2,
    );
    println!("{:<56} {:>9} {:>11}", "", "seconds", "per second");
    for r in sqlite.iter().chain(pg.iter()) {
        println!(
            "{:<56} {:>9.2} {:>11.0}",
            r.what,
            r.secs,
            r.count as f64 / r.secs
        );
    }
    for (s, p) in sqlite.iter().zip(pg.iter()) {
        let what = s.what.trim_start_matches("SQLite: ");
        println!(
            "ratio: {what}: PostgreSQL takes {:.2}x the time of SQLite",
            p.secs / s.secs
        );
    }
}
