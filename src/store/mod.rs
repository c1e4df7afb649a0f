//! The store: everything casegate knows, in one SQLite file (WAL, foreign keys on) — the
//! zero-setup default — or in a PostgreSQL database that several instances share.
//!
//! This module is the only place that speaks SQL. Every write that belongs together is one
//! method and one transaction (see [`Store::commit_message`]). It knows nothing of IMAP, SMTP
//! or OpenPGP.
//!
//! # Writing a store method (once, for both databases)
//!
//! Methods are written once against [`sql::Db`] (`self.db`), which runs the same SQL on
//! SQLite and PostgreSQL:
//!
//! ```ignore
//! pub fn contact_count(&self, thread_id: i64) -> Result<i64, StoreError> {
//!     self.db.one(
//!         "SELECT count(*) FROM contacts c JOIN participants p ON p.id = c.participant_id
//!          WHERE p.thread_id = ?1",
//!         args![thread_id],
//!     )
//! }
//!
//! pub fn rename_thread(&mut self, id: i64, title: &str) -> Result<(), StoreError> {
//!     self.db.write(|db| {
//!         let n = db.execute("UPDATE threads SET title = ?2 WHERE id = ?1", args![id, title])?;
//!         if n == 0 { return Err(StoreError::NotFound(format!("no thread {id}"))); }
//!         Ok(())
//!     })
//! }
//! ```
//!
//! - Reads: `db.rows` / `db.row` / `db.map(sql, args, |r| ...)` / `db.one::<T>` (first column
//!   of the one row) / `db.opt::<T>`; read columns with `r.get::<T>(index)` (`i64`, `u32`,
//!   `bool`, `String`, `Vec<u8>`, `Option<_>`).
//! - Writes that belong together: `self.db.write(|db| ...)`, one transaction. On PostgreSQL
//!   it is SERIALIZABLE and re-run when a concurrent instance got in the way, so the closure
//!   may do nothing but database work (no sending, no file writes, no counters outside).
//! - New ids: `db.insert_new(sql, args)` (or `db.insert` with `ON CONFLICT DO NOTHING`: `None`
//!   when the row was left out) of an INSERT written without RETURNING, into a table keyed by
//!   `id`; an upsert that updates reads its id with `... RETURNING id` and `db.one::<i64>`.
//! - Portable SQL only: numbered placeholders `?1`; `INSERT ... ON CONFLICT (...) DO NOTHING /
//!   DO UPDATE`; `COALESCE`; `CASE` instead of two-argument `max()`/`min()`; booleans are
//!   INTEGER 0/1 (compare `?1 = 1`, not `?1` alone); times are RFC 3339 UTC text made in Rust
//!   (no date functions); `lower()` for case-insensitive matches; no `rowid`; a column named
//!   with a word PostgreSQL reserves is quoted (`"inner"`). PostgreSQL takes a placeholder's
//!   type from its FIRST use: write `(t.kind = ?1 OR ?1 IS NULL)`, not `(?1 IS NULL OR ...)`;
//!   one whose first use says nothing (`SELECT ?1`, `'x' || ?1`) needs `CAST(?1 AS TEXT)`.
//! - Schema: append a migration to `schema::MIGRATIONS`, written for SQLite with the types
//!   INTEGER, TEXT and BLOB; it is translated for PostgreSQL mechanically (see
//!   [`sql::postgres_ddl`]). `store::tests::schemas_match_on_both_backends` checks the result.
//! - Tests: `for_each_backend(|mut s| { ... })` runs a test on SQLite and on a real PostgreSQL
//!   (started by `tests/support/postgres` on a free loopback port, one schema per test).
//!   `cargo test --lib store::` runs all store tests on both.

pub mod audit;
mod copy;
mod lease;
mod mailbox;
pub mod orgs;
pub mod outbox;
mod pages;
mod postgres;
pub mod relays;
mod schema;
pub(crate) mod sql;
#[cfg(test)]
pub(crate) mod testing;
pub mod tokens;
pub mod trust;
mod turns;
pub mod vendors;

pub use audit::{AuditEntry, NewAudit};
pub use copy::{CopyReport, TableCopy, copy_store};
pub use lease::Lease;
pub use mailbox::{Checkpoint, MailboxSummary};
pub use orgs::{Org, OrgContact, OrgThread};
pub use postgres::PgTarget;
pub use relays::OwedRelay;
pub use sql::Backend;
pub use tokens::StoredToken;
pub use trust::{KeyChange, NewKeyChange};
pub use vendors::{Claim, NewClaim, ParticipantFollowup};

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::tracking::{self, Kind, TrackingNumber};
use sql::{Db, args};

/// Why a store operation failed. `Conflict` and `NotFound` are the user's to fix; `Sqlite`,
/// `Postgres` and `Unavailable` are the database's (retry later).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: {}", postgres_text(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The database cannot be reached (or stopped answering); nothing was committed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("store: {0}")]
    Io(#[from] std::io::Error),
}

pub(crate) fn now_text() -> String {
    time_text(Utc::now())
}

/// Every time in the store is UTC, RFC 3339, second precision.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// A case, report or ticket.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Thread {
    #[serde(skip)]
    pub id: i64,
    pub number: TrackingNumber,
    pub kind: Kind,
    pub title: String,
    pub status: String,
    pub created_at: String,
    /// For a report that became a case: the case.
    pub promoted_to: Option<TrackingNumber>,
    /// Vendors' messages count as statements only when signed by a key bound to them.
    pub require_signed_statements: bool,
    pub publication_date: Option<String>,
    /// `hub` (hub-and-spoke: nothing is relayed) or `relay` (participants' mail is relayed to
    /// the other participants; see `outbox::relay`).
    pub discussion: String,
}

/// One contact address of one participant organisation of a thread.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Contact {
    #[serde(skip)]
    pub contact_id: i64,
    #[serde(skip)]
    pub participant_id: i64,
    /// The organization of the directory (0 for a contact made up outside the store).
    #[serde(skip)]
    pub org_id: i64,
    /// The directory contact, where its keys are bound.
    #[serde(skip)]
    pub org_contact_id: i64,
    pub org: String,
    pub role: String,
    pub address: String,
    pub key_fingerprints: Vec<String>,
}

/// A public certificate as stored (never secret key material).
#[derive(Debug, Clone)]
pub struct StoredCert {
    pub fingerprint: String,
    pub public_cert: Vec<u8>,
    pub user_ids: Vec<String>,
    pub imported_at: String,
}

/// Where a message came from; recorded with it, and for IMAP the checkpoint to advance.
#[derive(Debug, Clone)]
pub enum MessageSource {
    File(String),
    Stdin,
    Maildir(String),
    Imap {
        account: String,
        mailbox: String,
        uidvalidity: u32,
        uid: u32,
    },
    Replay,
}

impl MessageSource {
    pub fn describe(&self) -> String {
        match self {
            MessageSource::File(p) => p.clone(),
            MessageSource::Stdin => "-".to_string(),
            MessageSource::Maildir(p) => p.clone(),
            MessageSource::Imap {
                account,
                mailbox,
                uidvalidity,
                uid,
            } => format!("imap://{account}/{mailbox};UIDVALIDITY={uidvalidity}/;UID={uid}"),
            MessageSource::Replay => "replay".to_string(),
        }
    }

    /// The key under which failed tries of this message are counted (`inbound_attempts`): the
    /// sources that try again by themselves, a Maildir file and an IMAP message. A one-shot
    /// `ingest` of a file or stdin reports its failure to the person running it instead.
    pub fn attempt_key(&self) -> Option<String> {
        match self {
            MessageSource::Maildir(path) => {
                // The file's name without its Maildir info (`:2,S`): unchanged when moved.
                let base = path.split(":2,").next().unwrap_or(path);
                Some(format!("maildir:{base}"))
            }
            MessageSource::Imap { .. } => Some(self.describe()),
            MessageSource::File(_) | MessageSource::Stdin | MessageSource::Replay => None,
        }
    }
}

/// What to do with a message, decided by routing and made durable by [`Store::commit_message`].
#[derive(Debug, Clone)]
pub enum Disposition {
    /// Post into an existing thread.
    Post {
        thread_id: i64,
    },
    /// Open a new thread (number minted inside the transaction) and post into it; the sender
    /// becomes a participant when `participant` is given.
    NewThread {
        kind: Kind,
        title: String,
        participant: Option<NewParticipant>,
    },
    Triage,
    Quarantine,
}

/// The sender of a message that opens a thread, who becomes its participant. `org` is only a
/// hint (a display name, the organization of an earlier thread): the organization is the one
/// the address is a contact of, or a new one named after the address (see `store::orgs`).
#[derive(Debug, Clone)]
pub struct NewParticipant {
    pub org: String,
    pub role: String,
    pub address: String,
}

/// Everything recorded about one message. Raw bytes are kept exactly as received.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub raw: Vec<u8>,
    pub sha256: String,
    pub message_id: Option<String>,
    pub inbound: bool,
    pub received_at: DateTime<Utc>,
    pub date_header: Option<String>,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub source: MessageSource,
    pub disposition: Disposition,
    pub reason: String,
    pub encrypted: bool,
    pub encryption_note: Option<String>,
    pub signature: String,
    pub signer: Option<String>,
    pub signature_reason: Option<String>,
    /// Sender authentication: `pass | fail | none | temperror`, and what was checked.
    pub sender_auth: String,
    pub sender_auth_detail: Option<String>,
    pub automatic: bool,
    /// Comma-separated markers for analysts, e.g. `unsigned-statement`.
    pub flags: String,
    /// Vendor status/statement claims the message makes (one per sender organization).
    pub claims: Vec<NewClaim>,
    /// The thread relays its participants' mail and this message is to be relayed: the debt
    /// is recorded in the message's transaction and paid by the outbox side.
    pub relay_owed: bool,
    /// For a new report from a person: the keys its reporter offered (attached, Autocrypt),
    /// recorded with the acknowledgment it is owed (public keys, parsed by the outbox).
    pub offered_keys: Vec<Vec<u8>>,
    /// Set when `raw` holds only part of the message (see [`NewMessage::partial`]): the size
    /// of all of it.
    pub raw_size: Option<u64>,
}

impl NewMessage {
    /// A received message with nothing decided about it yet but where it goes. The SHA-256 is
    /// computed here, from the very bytes that are stored, so the dedupe key cannot drift.
    pub fn inbound(
        raw: &[u8],
        source: MessageSource,
        received_at: DateTime<Utc>,
        disposition: Disposition,
    ) -> NewMessage {
        use sha2::Digest;
        NewMessage {
            raw: raw.to_vec(),
            sha256: hex::encode(sha2::Sha256::digest(raw)),
            message_id: None,
            inbound: true,
            received_at,
            date_header: None,
            sender: None,
            subject: None,
            source,
            disposition,
            reason: String::new(),
            encrypted: false,
            encryption_note: None,
            signature: "none".into(),
            signer: None,
            signature_reason: None,
            sender_auth: "none".into(),
            sender_auth_detail: None,
            automatic: false,
            flags: String::new(),
            claims: Vec::new(),
            relay_owed: false,
            offered_keys: Vec::new(),
            raw_size: None,
        }
    }

    /// [`NewMessage::inbound`] without the bytes yet: they are hashed now and handed over
    /// later with [`NewMessage::attach_raw`] (moved, not copied), so a large message is not
    /// held twice while it is read and decided on.
    pub fn inbound_deferred(
        raw: &[u8],
        source: MessageSource,
        received_at: DateTime<Utc>,
        disposition: Disposition,
    ) -> NewMessage {
        use sha2::Digest;
        let sha256 = hex::encode(sha2::Sha256::digest(raw));
        NewMessage::inbound_hashed(sha256, source, received_at, disposition)
    }

    /// [`NewMessage::inbound_deferred`] of bytes hashed already (`sha256`, hex): a batch hashes
    /// each message on the core that reads it.
    pub fn inbound_hashed(
        sha256: String,
        source: MessageSource,
        received_at: DateTime<Utc>,
        disposition: Disposition,
    ) -> NewMessage {
        let mut m = NewMessage::inbound(&[], source, received_at, disposition);
        m.sha256 = sha256;
        m
    }

    /// Hands over the bytes hashed by [`NewMessage::inbound_deferred`] (debug builds check
    /// that they are those bytes: the dedupe key must not drift).
    pub fn attach_raw(&mut self, raw: Vec<u8>) {
        #[cfg(debug_assertions)]
        {
            use sha2::Digest;
            debug_assert_eq!(
                hex::encode(sha2::Sha256::digest(&raw)),
                self.sha256,
                "attach_raw: not the bytes that were hashed"
            );
        }
        self.raw = raw;
    }

    /// A received message of which only `head` is kept (it is over `max_message_bytes`, or
    /// could not be read at all), quarantined with `reason`. `sha256` is of all `size` bytes
    /// when they could be read, so a second delivery of the same message is a duplicate.
    pub fn partial(
        head: &[u8],
        size: u64,
        sha256: String,
        source: MessageSource,
        received_at: DateTime<Utc>,
        reason: String,
    ) -> NewMessage {
        let mut m = NewMessage::inbound(head, source, received_at, Disposition::Quarantine);
        m.sha256 = sha256;
        // A head that holds all of it is the whole message.
        m.raw_size = (head.len() as u64 != size).then_some(size);
        m.reason = reason;
        m
    }
}

/// Where a sender stands ([`Store::sender_standing`]).
#[derive(Debug, Clone, Default)]
pub struct SenderStanding {
    /// The threads asked about that the sender is a contact of.
    pub among: Vec<i64>,
    /// The first thread it became a contact of (its oldest contact entry), and that
    /// participant's organization.
    pub first: Option<(i64, String)>,
}

/// The result of a commit.
#[derive(Debug, Clone)]
pub struct Committed {
    pub id: i64,
    pub thread: Option<TrackingNumber>,
    /// A byte-identical message was already stored; nothing new was written (but an IMAP
    /// checkpoint still advanced).
    pub duplicate: bool,
}

/// A stored message, as `show` and `triage list` present it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MessageRecord {
    #[serde(skip)]
    pub id: i64,
    pub message_id: Option<String>,
    pub sha256: String,
    /// The shortest prefix of `sha256` (at least [`SHORT_ID_LEN`] digits) that no other stored
    /// message shares: what `show`, `triage list` and `quarantine list` print, and what
    /// `read` takes.
    pub short_id: String,
    pub direction: String,
    pub received_at: String,
    pub date: Option<String>,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub thread: Option<TrackingNumber>,
    pub outcome: String,
    pub reason: String,
    pub encrypted: bool,
    pub encryption_note: Option<String>,
    pub signature: String,
    pub signer: Option<String>,
    pub signature_reason: Option<String>,
    /// Sender authentication (`pass | fail | none | temperror`) and its detail.
    pub sender_auth: String,
    pub sender_auth_detail: Option<String>,
    pub automatic: bool,
    pub flags: String,
    pub source: String,
    /// For triage entries: why it waits, and whether a person has assigned it.
    pub triage_reason: Option<String>,
    pub assigned_by: Option<String>,
    pub assigned_at: Option<String>,
    /// Set when `raw` holds only part of the message: the size of all of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_size: Option<i64>,
}

/// A thread with counts, for `list`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ThreadSummary {
    #[serde(flatten)]
    pub thread: Thread,
    pub participants: i64,
    pub messages: i64,
    pub last_message_at: Option<String>,
    /// The oldest inbound message posted after our last outbound one: waiting for a reply.
    pub waiting_since: Option<String>,
    /// `waiting_since` is older than the published response time (3 days).
    pub overdue: bool,
    /// When we first sent mail in this thread (vendors are notified by mail).
    pub first_notified_at: Option<String>,
    /// Set explicitly, or 45 days after the first notification (cases only).
    pub planned_publication: Option<String>,
}

/// The coordinator's published response time.
pub const RESPONSE_DAYS: i64 = 3;
/// Default embargo: publication this long after the vendor was first notified.
pub const EMBARGO_DAYS: i64 = 45;

pub struct Store {
    db: Db,
}

/// Where a store lives: a SQLite file or a PostgreSQL database.
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(Box<PgTarget>),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(t) => write!(f, "postgres://{}", t.describe()),
        }
    }
}

/// WAL size (pages) at which a commit also checkpoints: SQLite's default.
const AUTOCHECKPOINT_PAGES: i64 = 1000;

/// WAL size (pages, 256 MiB) at which a commit on a connection that leaves checkpoints to
/// another ([`Store::leave_checkpoints_to_another`]) still checkpoints: only if that other
/// stopped doing it, or cannot keep up. The other's checkpoints copy the log while commits go
/// on, but cannot reset it: SQLite starts the log again only at a write that begins when all
/// of it is copied, and during a sync the next batch always began before the copy ended. So
/// the log grows through a sync (an initial sync of 10,000 messages, 58 MB of mail, writes
/// ~130 MB of log), and at 64 MiB this backstop had the storing thread copy the rest itself:
/// ~80–100 ms twice in that sync, a tenth of its time, while the mail waited.
const BACKSTOP_CHECKPOINT_PAGES: i64 = 65_536;

/// The size the WAL file is cut back to when SQLite starts it again (bytes): it keeps the
/// largest size it ever reached otherwise, after a sync ~130 MB.
const WAL_SIZE_KEPT: i64 = 64 * 1024 * 1024;

/// How long a SQLite connection waits for another one's lock before it gives up.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Puts the SQLite file in WAL mode (a no-op when it already is).
///
/// SQLite does not wait on the busy handler for this: a connection switching a new file to WAL
/// takes a read lock, then needs the write lock, and when another process holds it SQLite
/// answers "database is locked" at once rather than risk a deadlock. So instances (or the
/// daemon and a CLI command) opening a new store together retry here, within [`BUSY_WAIT`].
fn switch_to_wal(conn: &rusqlite::Connection, path: &Path) -> Result<(), StoreError> {
    let deadline = std::time::Instant::now() + BUSY_WAIT;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        let attempt = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0));
        match attempt {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(StoreError::Invalid(format!(
                    "SQLite keeps {} in journal mode {mode}, not WAL; put the data directory on a local file system",
                    path.display()
                )));
            }
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path` and brings its schema up to date.
    ///
    /// Private whatever the umask: a missing directory is created 0700 and the database file
    /// 0600 before SQLite opens it (SQLite gives `-wal` and `-shm` the database's mode; see
    /// `crate::at_rest`).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            crate::at_rest::private_dir(dir)?;
        }
        crate::at_rest::private_file(path)?;
        let conn = rusqlite::Connection::open(path)?;
        // Before WAL is switched on: a process opening the store at the same moment waits.
        conn.busy_timeout(BUSY_WAIT)?;
        switch_to_wal(&conn, path)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Reads straight from the OS page cache, shared by every connection, instead of a
        // copy per connection: the page's and API's store connections each read the same
        // index and message pages (writes still go through the WAL as before).
        conn.pragma_update(None, "mmap_size", 256_i64 * 1024 * 1024)?;
        Store::prepare_sqlite(conn, Some(turns::WriteTurns::of(path)))
    }

    /// Connects to the PostgreSQL store and brings its schema up to date (creating it in an
    /// empty database).
    pub fn open_postgres(target: &PgTarget) -> Result<Store, StoreError> {
        let mut store = Store {
            db: Db::postgres(target.connect()?),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens the store wherever it lives.
    pub fn open_at(location: &Location) -> Result<Store, StoreError> {
        match location {
            Location::Sqlite(p) => Store::open(p),
            Location::Postgres(t) => Store::open_postgres(t),
        }
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Copies what the write-ahead log holds into the main file, without waiting for readers
    /// or writers (a passive checkpoint). Returns (WAL frames, frames copied). Run by the daemon
    /// now and then, so that large commits (a notice to many contacts) need not do it.
    /// PostgreSQL checkpoints by itself: (0, 0) there.
    pub fn checkpoint(&self) -> Result<(i64, i64), StoreError> {
        match self.db.sqlite_conn() {
            Some(c) => Ok(c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })?),
            None => Ok((0, 0)),
        }
    }

    /// This connection's commits no longer copy the write-ahead log into the main file when it
    /// passes 4 MB (SQLite's automatic checkpoint, done by the committing thread): another
    /// connection does it, on another core, with [`Store::checkpoint`] (the daemon, every
    /// second, and every 200 ms while the log grows by MBs, as in a sync). Copying a sync's mail a
    /// second time was a third of the pipeline's disk work, done while every message behind it
    /// waited. As a backstop, a commit still checkpoints once the log passes 256 MB. A no-op on
    /// PostgreSQL.
    pub fn leave_checkpoints_to_another(&self) -> Result<(), StoreError> {
        if let Some(c) = self.db.sqlite_conn() {
            c.pragma_update(None, "wal_autocheckpoint", BACKSTOP_CHECKPOINT_PAGES)?;
            c.pragma_update(None, "journal_size_limit", WAL_SIZE_KEPT)?;
        }
        Ok(())
    }

    /// A throwaway store for tests and `route --dry-run`.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::prepare_sqlite(rusqlite::Connection::open_in_memory()?, None)
    }

    fn prepare_sqlite(
        conn: rusqlite::Connection,
        turns: Option<std::sync::Arc<turns::WriteTurns>>,
    ) -> Result<Store, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(BUSY_WAIT)?;
        conn.set_prepared_statement_cache_capacity(128);
        // Statement and savepoint journals in memory, not temporary files: every message of
        // a group commit is a savepoint, and their journals (what rolls one message back
        // without the batch) were nine tenths of the store's write calls. They only ever serve
        // a rollback inside the open transaction, so nothing durable lives there; they are as
        // large as the pages one batch changes.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Plans that do not depend on the values bound. Without this SQLite compiles a cached
        // statement again whenever a new value is bound to a parameter it could plan around
        // (an address compared in a join, a LIMIT): a tenth of an initial sync's CPU went to
        // compiling the same few queries for every message. Our indexes make the plan.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        let mut store = Store {
            db: Db::sqlite(conn, turns),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = schema::MIGRATIONS.len() as i64;
        let too_new = |version: i64| {
            StoreError::Invalid(format!(
                "the store has schema version {version}, newer than this casegate knows ({known}); run a newer casegate"
            ))
        };
        match self.db.backend() {
            Backend::Sqlite => {
                // Each migration in its own IMMEDIATE transaction, the version read inside it:
                // two processes opening a new store at once apply each migration once.
                loop {
                    let tx = self.db.begin()?;
                    let version = sqlite_version(tx.db())?;
                    if version > known {
                        return Err(too_new(version));
                    }
                    let Some(sql) = schema::MIGRATIONS.get(version as usize) else {
                        return Ok(());
                    };
                    tx.db().batch(sql)?;
                    tx.db()
                        .batch(&format!("PRAGMA user_version = {}", version + 1))?;
                    tx.commit()?;
                }
            }
            Backend::Postgres => {
                // One transaction for all pending migrations (PostgreSQL's DDL is
                // transactional), under a lock that instances starting together take in turn.
                let tx = self.db.begin()?;
                let db = tx.db();
                db.one::<Option<String>>(
                    "SELECT CAST(pg_advisory_xact_lock(7305733119) AS TEXT)",
                    args![],
                )?;
                db.batch("CREATE TABLE IF NOT EXISTS casegate_schema (version BIGINT NOT NULL)")?;
                let version = db
                    .opt::<i64>("SELECT version FROM casegate_schema", args![])?
                    .unwrap_or(0);
                if version > known {
                    return Err(too_new(version));
                }
                for sql in schema::MIGRATIONS.iter().skip(version as usize) {
                    db.batch(&sql::postgres_ddl(sql))?;
                }
                db.execute("DELETE FROM casegate_schema", args![])?;
                db.execute(
                    "INSERT INTO casegate_schema (version) VALUES (?1)",
                    args![known],
                )?;
                tx.commit()
            }
        }
    }

    /// The keys generation: bumped in the same transaction as every change of a stored
    /// certificate or of a key bound to a contact. One cheap read; a process that keeps keys in
    /// memory compares it before each message to see another process's changes.
    pub fn keys_generation(&self) -> Result<i64, StoreError> {
        self.db
            .one("SELECT value FROM generations WHERE name = 'keys'", args![])
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        match self.db.backend() {
            Backend::Sqlite => sqlite_version(&self.db),
            Backend::Postgres => Ok(self
                .db
                .opt::<i64>("SELECT version FROM casegate_schema", args![])?
                .unwrap_or(0)),
        }
    }

    /// Transactions this store has committed since it was opened (each one fsync on SQLite):
    /// for tests and benchmarks of group commit.
    pub fn commits(&self) -> u64 {
        self.db.commits()
    }

    /// SQLite virtual-machine steps this store has run since it was opened (0 on PostgreSQL):
    /// the store's work independent of the machine's speed, for tests that a per-message cost
    /// does not grow with what is already stored.
    pub fn sqlite_steps(&self) -> u64 {
        self.db.steps()
    }

    /// Statements SQLite compiled again before running them since the store was opened.
    pub fn sqlite_reprepares(&self) -> u64 {
        self.db.reprepares()
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Runs `f` as ONE transaction: every store call inside commits together, or none does
    /// when `f` fails (or panics). The store's own methods nest inside it (as savepoints);
    /// this is how an operation writes its audit record together with the change it records.
    /// On PostgreSQL, as [`sql::Db::write`]: SERIALIZABLE, and `f` runs again when a
    /// concurrent instance got in the way, so it may do nothing but store work.
    ///
    /// Not for [`Store::begin_notice`], which starts a transaction of its own.
    pub fn atomically<T, E: From<StoreError>>(
        &mut self,
        mut f: impl FnMut(&mut Store) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let scope = self.db.open_scope().map_err(E::from)?;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
            match result {
                Ok(Ok(value)) => match self.db.close_scope(scope, true) {
                    Ok(()) => return Ok(value),
                    Err(e) => {
                        if self.db.retry_scope(scope, &e, attempt) {
                            continue;
                        }
                        return Err(e.into());
                    }
                },
                Ok(Err(e)) => {
                    let _ = self.db.close_scope(scope, false);
                    // `E` cannot say why; the connection knows whether a statement in it
                    // failed for a concurrent transaction.
                    if self
                        .db
                        .retry_scope(scope, &StoreError::Invalid(String::new()), attempt)
                    {
                        continue;
                    }
                    return Err(e);
                }
                Err(panic) => {
                    let _ = self.db.close_scope(scope, false);
                    std::panic::resume_unwind(panic)
                }
            }
        }
    }

    /// [`Store::atomically`] for a transaction that is given up whole when anything in it
    /// fails (a group commit): the store's methods inside open no savepoints of their own
    /// (see `Db::begin_flat`). Inside a transaction already open, as [`Store::atomically`].
    pub fn atomically_as_one<T, E: From<StoreError>>(
        &mut self,
        f: impl FnMut(&mut Store) -> Result<T, E>,
    ) -> Result<T, E> {
        let flat = self.db.begin_flat();
        // Ended however `f` ends, a panic included (the caller may catch it and go on).
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.atomically(f)));
        if flat {
            self.db.end_flat();
        }
        match out {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    pub(crate) fn db_mut(&mut self) -> &mut Db {
        &mut self.db
    }

    // ----- threads -----

    /// Creates a thread with the given number, or mints one. An existing number is a conflict.
    pub fn create_thread(
        &mut self,
        kind: Kind,
        number: Option<&TrackingNumber>,
        title: &str,
        now: DateTime<Utc>,
    ) -> Result<Thread, StoreError> {
        self.db.write(|db| {
            let (id, _) = create_thread_tx(db, kind, number, title, now)?;
            thread_by_id_tx(db, id)
        })
    }

    /// The thread whose own number this is (a promoted report is returned as the report).
    pub fn thread(&self, number: &TrackingNumber) -> Result<Option<Thread>, StoreError> {
        let id: Option<i64> = self.db.opt(
            "SELECT id FROM threads WHERE number = ?1",
            args![number.as_str()],
        )?;
        match id {
            Some(id) => Ok(Some(thread_by_id_tx(&self.db, id)?)),
            None => Ok(None),
        }
    }

    /// The thread mail quoting this number belongs in: a promoted report leads to its case.
    pub fn resolve_thread(&self, number: &TrackingNumber) -> Result<Option<Thread>, StoreError> {
        let mut t = match self.thread(number)? {
            Some(t) => t,
            None => return Ok(None),
        };
        // Follow promotions; bounded so a corrupt cycle cannot hang us.
        for _ in 0..8 {
            match &t.promoted_to {
                Some(next) => match self.thread(next)? {
                    Some(n) => t = n,
                    None => break,
                },
                None => break,
            }
        }
        Ok(Some(t))
    }

    pub fn thread_by_id(&self, id: i64) -> Result<Thread, StoreError> {
        thread_by_id_tx(&self.db, id)
    }

    pub fn list_threads(&self, kind: Option<Kind>) -> Result<Vec<ThreadSummary>, StoreError> {
        Ok(self.threads_page(kind, 0, usize::MAX)?.0)
    }

    /// [`Store::list_threads`], one page, and how many there are in all.
    pub fn threads_page(
        &self,
        kind: Option<Kind>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<ThreadSummary>, usize), StoreError> {
        let kind = kind.map(Kind::as_str);
        let total: i64 = self.db.one(
            "SELECT count(*) FROM threads t WHERE (t.kind = ?1 OR ?1 IS NULL)",
            args![kind],
        )?;
        // Only the count for limit 0 (see `store::pages`).
        let rows = if limit == 0 {
            Vec::new()
        } else {
            self.db.map(
                "SELECT t.id,
                        (SELECT count(*) FROM participants p WHERE p.thread_id = t.id),
                        (SELECT count(*) FROM messages m WHERE m.thread_id = t.id),
                        (SELECT max(received_at) FROM messages m WHERE m.thread_id = t.id)
                 FROM threads t WHERE (t.kind = ?1 OR ?1 IS NULL) ORDER BY t.created_at, t.id
                 LIMIT ?2 OFFSET ?3",
                args![
                    kind,
                    i64::try_from(limit).unwrap_or(i64::MAX),
                    i64::try_from(offset).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok((
                        r.get::<i64>(0)?,
                        r.get::<i64>(1)?,
                        r.get::<i64>(2)?,
                        r.get::<Option<String>>(3)?,
                    ))
                },
            )?
        };
        let summaries = rows
            .into_iter()
            .map(|(id, participants, messages, last)| {
                self.summarize_thread(id, participants, messages, last)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((summaries, total as usize))
    }

    /// One thread's summary (as [`Store::list_threads`] has it).
    pub fn thread_summary(&self, id: i64) -> Result<ThreadSummary, StoreError> {
        let r = self
            .db
            .row(
                "SELECT (SELECT count(*) FROM participants p WHERE p.thread_id = ?1),
                        (SELECT count(*) FROM messages m WHERE m.thread_id = ?1),
                        (SELECT max(received_at) FROM messages m WHERE m.thread_id = ?1)",
                args![id],
            )?
            .ok_or_else(|| StoreError::NotFound(format!("no thread with id {id}")))?;
        let (participants, messages, last) = (r.get(0)?, r.get(1)?, r.get(2)?);
        self.summarize_thread(id, participants, messages, last)
    }

    fn summarize_thread(
        &self,
        id: i64,
        participants: i64,
        messages: i64,
        last: Option<String>,
    ) -> Result<ThreadSummary, StoreError> {
        let thread = thread_by_id_tx(&self.db, id)?;
        let (first_sent, last_sent): (Option<String>, Option<String>) = self
            .db
            .row(
                "SELECT min(created_at), max(created_at) FROM sent_message_ids
                 WHERE thread_id = ?1 OR thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1)",
                args![id],
            )?
            .map(|r| Ok::<_, StoreError>((r.get(0)?, r.get(1)?)))
            .transpose()?
            .unwrap_or((None, None));
        let waiting_since: Option<String> = self.db.one(
            "SELECT min(received_at) FROM messages
             WHERE (thread_id = ?1 OR thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1))
               AND direction = 'in' AND automatic = 0 AND outcome = 'routed'
               AND received_at > coalesce(?2, '')",
            args![id, last_sent],
        )?;
        let overdue = waiting_since
            .as_deref()
            .map(|w| Utc::now() - parse_time(w) > chrono::Duration::days(RESPONSE_DAYS))
            .unwrap_or(false);
        let planned_publication = thread.publication_date.clone().or_else(|| {
            (thread.kind == Kind::Case)
                .then(|| {
                    first_sent
                        .as_deref()
                        .map(|f| time_text(parse_time(f) + chrono::Duration::days(EMBARGO_DAYS)))
                })
                .flatten()
        });
        Ok(ThreadSummary {
            thread,
            participants,
            messages,
            last_message_at: last,
            waiting_since,
            overdue,
            first_notified_at: first_sent,
            planned_publication,
        })
    }

    /// Turns a report into a case (minted or given number). The report keeps its number and
    /// points at the case; its participants and contacts become the case's.
    pub fn promote(
        &mut self,
        report: &TrackingNumber,
        to: Option<&TrackingNumber>,
        now: DateTime<Utc>,
    ) -> Result<Thread, StoreError> {
        self.db.write(|db| {
            let row = db
                .row(
                    "SELECT id, kind, title, promoted_to FROM threads WHERE number = ?1",
                    args![report.as_str()],
                )?
                .ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "no thread {report}; see `casegate list --kind report`"
                    ))
                })?;
            let (report_id, kind, title, promoted): (i64, String, String, Option<i64>) =
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            if kind != "report" {
                return Err(StoreError::Invalid(format!(
                    "{report} is a {kind}, not a report; only reports (VRF#) can be promoted"
                )));
            }
            if let Some(case_id) = promoted {
                let case = thread_by_id_tx(db, case_id)?;
                return Err(StoreError::Conflict(format!(
                    "{report} was already promoted to {}",
                    case.number
                )));
            }
            if let Some(n) = to
                && n.kind() != Kind::Case
            {
                return Err(StoreError::Invalid(format!(
                    "--to {n} is not a case number (VU#123456)"
                )));
            }
            let (case_id, _) = create_thread_tx(db, Kind::Case, to, &title, now)?;
            db.execute(
                "UPDATE threads SET promoted_to = ?1, status = 'promoted' WHERE id = ?2",
                args![case_id, report_id],
            )?;
            copy_participants_tx(db, report_id, case_id)?;
            thread_by_id_tx(db, case_id)
        })
    }

    /// Sets (or clears) a thread's planned publication date (RFC 3339 or YYYY-MM-DD).
    pub fn set_publication_date(
        &mut self,
        thread_id: i64,
        date: Option<&str>,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE threads SET publication_date = ?1 WHERE id = ?2",
            args![date, thread_id],
        )?;
        Ok(())
    }

    pub fn set_require_signed_statements(
        &mut self,
        thread_id: i64,
        on: bool,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE threads SET require_signed_statements = ?1 WHERE id = ?2",
            args![on, thread_id],
        )?;
        Ok(())
    }

    // ----- participants and contacts -----

    /// Adds contact `address` of organisation `org` to a thread: the organization of the
    /// directory with that name (created when missing) becomes a participant, `address` its
    /// contact in the directory and in this thread, and `key_fingerprint` (when given) is bound
    /// to that contact and the organization. Adding the same contact again only adds the key.
    pub fn add_participant(
        &mut self,
        thread_id: i64,
        org: &str,
        role: &str,
        address: &str,
        key_fingerprint: Option<&str>,
    ) -> Result<Contact, StoreError> {
        let contact_id = self.db.write(|db| {
            let org_id = orgs::org_named_tx(db, org)?;
            let contact_id = add_contact_tx(db, thread_id, org_id, role, address)?;
            if let Some(fpr) = key_fingerprint {
                bind_key_tx(db, contact_id, fpr)?;
            }
            Ok(contact_id)
        })?;
        self.contacts(thread_id)?
            .into_iter()
            .find(|c| c.contact_id == contact_id)
            .ok_or_else(|| StoreError::NotFound("contact vanished".into()))
    }

    /// Whether the contact `address` of a thread has any key bound to it.
    pub fn contact_has_keys(&self, thread_id: i64, address: &str) -> Result<bool, StoreError> {
        Ok(self
            .contacts(thread_id)?
            .iter()
            .any(|c| c.address == address.trim().to_lowercase() && !c.key_fingerprints.is_empty()))
    }

    /// Binds a key to the contact `address` of a thread — in the directory, so for every thread
    /// of its organization — and to the organization (no-op when it is not a contact there).
    pub fn bind_contact_key(
        &mut self,
        thread_id: i64,
        address: &str,
        fingerprint: &str,
    ) -> Result<bool, StoreError> {
        self.db.write(|db| {
            let contact: Option<i64> = db.opt(
                "SELECT c.id FROM contacts c JOIN participants p ON p.id = c.participant_id
                 WHERE p.thread_id = ?1 AND c.address = ?2",
                args![thread_id, address.trim().to_lowercase()],
            )?;
            match contact {
                Some(id) => {
                    bind_key_tx(db, id, fingerprint)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }

    /// Every contact of every participant of a thread, with the key fingerprints bound to
    /// them in the directory (oldest binding first).
    pub fn contacts(&self, thread_id: i64) -> Result<Vec<Contact>, StoreError> {
        // Their keys joined in, one row a key: one statement, where two were a tenth of what the
        // store did for each message posted to a case (routing reads its thread's contacts).
        let rows = self.db.map(
            "SELECT c.id, p.id, p.org, p.role, c.address, COALESCE(p.org_id, 0),
                    COALESCE(c.org_contact_id, 0), k.fingerprint
             FROM contacts c JOIN participants p ON p.id = c.participant_id
             LEFT JOIN org_contact_keys k ON k.contact_id = c.org_contact_id
             WHERE p.thread_id = ?1 ORDER BY p.org, c.address, c.id, k.id",
            args![thread_id],
            |r| {
                Ok((
                    Contact {
                        contact_id: r.get(0)?,
                        participant_id: r.get(1)?,
                        org: r.get(2)?,
                        role: r.get(3)?,
                        address: r.get(4)?,
                        org_id: r.get(5)?,
                        org_contact_id: r.get(6)?,
                        key_fingerprints: Vec::new(),
                    },
                    r.get::<Option<String>>(7)?,
                ))
            },
        )?;
        let mut contacts: Vec<Contact> = Vec::new();
        for (contact, key) in rows {
            let same = contacts
                .last()
                .is_some_and(|last| last.contact_id == contact.contact_id);
            if !same {
                contacts.push(contact);
            }
            if let (Some(fpr), Some(last)) = (key, contacts.last_mut()) {
                last.key_fingerprints.push(fpr);
            }
        }
        Ok(contacts)
    }

    /// Whether this address is a contact of any thread (a "known participant").
    pub fn is_known_address(&self, address: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .row(
                "SELECT 1 FROM contacts WHERE address = ?1 LIMIT 1",
                args![address.to_lowercase()],
            )?
            .is_some())
    }

    /// Every thread in which `address` is a contact: (thread id, organisation, role).
    pub fn participations(&self, address: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.db.map(
            "SELECT p.thread_id, p.org, p.role FROM contacts c
             JOIN participants p ON p.id = c.participant_id
             WHERE c.address = ?1 ORDER BY p.thread_id",
            args![address.to_lowercase()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Where `address` stands, for routing a message from it: those of `threads` it is a
    /// contact of, and the first thread it became a contact of anywhere (its oldest contact
    /// entry, found in the index by address) with that participant's organization. A bounded
    /// read, however many threads a prolific sender is in (see [`Store::participations`] for
    /// all of them).
    pub fn sender_standing(
        &self,
        address: &str,
        threads: &[i64],
    ) -> Result<SenderStanding, StoreError> {
        let address = address.to_lowercase();
        let mut among = Vec::new();
        for &t in threads {
            let hit: Option<i64> = self.db.opt(
                "SELECT p.thread_id FROM contacts c
                 JOIN participants p ON p.id = c.participant_id
                 WHERE c.address = ?1 AND p.thread_id = ?2 LIMIT 1",
                args![address, t],
            )?;
            if hit.is_some() && !among.contains(&t) {
                among.push(t);
            }
        }
        let first = self
            .db
            .row(
                "SELECT p.thread_id, p.org FROM contacts c
                 JOIN participants p ON p.id = c.participant_id
                 WHERE c.address = ?1 ORDER BY c.participant_id LIMIT 1",
                args![address],
            )?
            .map(|r| Ok::<_, StoreError>((r.get::<i64>(0)?, r.get::<String>(1)?)))
            .transpose()?;
        Ok(SenderStanding { among, first })
    }

    // ----- certificates -----

    /// Stores a public certificate merged with the copy already kept under the same
    /// fingerprint, and bumps the keys generation, in ONE write transaction. `merge` gets the
    /// stored copy (`None` for a new certificate) and returns what to keep: the caller does the
    /// OpenPGP merging (`keyring::import_certs`); holding the transaction from the read to the
    /// write means two importers at once (the CLI and the daemon, or two instances) cannot
    /// lose each other's packets. Returns what was stored. (On PostgreSQL `merge` runs again
    /// when a concurrent import got in the way.)
    pub fn merge_cert(
        &mut self,
        fingerprint: &str,
        mut merge: impl FnMut(Option<&StoredCert>) -> Result<StoredCert, StoreError>,
    ) -> Result<StoredCert, StoreError> {
        let fingerprint = fingerprint.trim().to_ascii_uppercase();
        self.db.write(|db| {
            let stored = cert_tx(db, &fingerprint)?;
            let cert = merge(stored.as_ref())?;
            if cert.fingerprint != fingerprint {
                return Err(StoreError::Invalid(format!(
                    "certificate {} cannot be stored as {fingerprint}",
                    cert.fingerprint
                )));
            }
            let uids = serde_json::to_string(&cert.user_ids)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            db.execute(
                "INSERT INTO certs (fingerprint, public_cert, user_ids, imported_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (fingerprint) DO UPDATE SET public_cert = excluded.public_cert,
                     user_ids = excluded.user_ids, imported_at = excluded.imported_at",
                args![cert.fingerprint, cert.public_cert, uids, cert.imported_at],
            )?;
            bump_keys_tx(db)?;
            Ok(cert)
        })
    }

    pub fn cert(&self, fingerprint: &str) -> Result<Option<StoredCert>, StoreError> {
        // Fingerprints are stored as upper-case hex (the primary key).
        cert_tx(&self.db, &fingerprint.trim().to_ascii_uppercase())
    }

    pub fn certs(&self) -> Result<Vec<StoredCert>, StoreError> {
        self.db.map(
            "SELECT fingerprint, public_cert, user_ids, imported_at FROM certs ORDER BY imported_at, fingerprint",
            args![],
            stored_cert,
        )
    }

    /// The stored certs a user ID of which may name `address` (a superset: the caller still
    /// compares each user ID), in the order of [`Store::certs`]. Only these are read, not the
    /// whole keyring, for each acknowledgment. An address that is not plain ASCII, or that
    /// JSON would escape, is looked for in every cert: SQLite lowercases ASCII only, and the
    /// user IDs are kept as JSON text.
    pub fn certs_naming(&self, address: &str) -> Result<Vec<StoredCert>, StoreError> {
        let plain = address.is_ascii() && !address.contains(['"', '\\']);
        if !plain || address.is_empty() {
            return self.certs();
        }
        // `%` and `_` in the address only widen the match: the comparison that counts is the
        // caller's.
        self.db.map(
            "SELECT fingerprint, public_cert, user_ids, imported_at FROM certs
             WHERE lower(user_ids) LIKE ?1 ORDER BY imported_at, fingerprint",
            args![format!("%{}%", address.to_ascii_lowercase())],
            stored_cert,
        )
    }

    /// Every signature-verification cache entry kept (see `signature_cache.rs`).
    pub fn signature_cache_entries(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.db
            .map("SELECT entry FROM signature_cache", args![], |r| r.get(0))
    }

    /// Keeps signature-verification cache entries (already kept ones are ignored).
    pub fn add_signature_cache_entries(&mut self, entries: &[Vec<u8>]) -> Result<(), StoreError> {
        self.db.write(|db| {
            for e in entries {
                db.execute(
                    "INSERT INTO signature_cache (entry) VALUES (?1) ON CONFLICT (entry) DO NOTHING",
                    args![e],
                )?;
            }
            Ok(())
        })
    }

    // ----- messages -----

    /// The thread of the first of `message_ids` that is a Message-ID we sent.
    pub fn thread_of_sent(
        &self,
        message_ids: &[String],
    ) -> Result<Option<(String, i64)>, StoreError> {
        for id in message_ids {
            if let Some(t) = self.db.opt::<i64>(
                "SELECT thread_id FROM sent_message_ids WHERE message_id = ?1",
                args![id],
            )? {
                return Ok(Some((id.clone(), t)));
            }
        }
        Ok(None)
    }

    /// Records a Message-ID we sent, so replies to it route to its thread.
    pub fn record_sent(&mut self, message_id: &str, thread_id: i64) -> Result<(), StoreError> {
        self.db
            .write(|db| record_sent_tx(db, message_id, thread_id))
    }

    /// Whether a byte-identical message is already stored: (row id, its thread).
    pub fn find_duplicate(
        &self,
        sha256: &str,
    ) -> Result<Option<(i64, Option<TrackingNumber>)>, StoreError> {
        duplicate_tx(&self.db, sha256)
    }

    /// Stores one message and its decision in ONE transaction: the raw bytes, the routing
    /// outcome, a new thread if one is opened, the triage or quarantine entry, and for IMAP the
    /// mailbox checkpoint. After a crash the message is either fully stored or not at all.
    /// Two instances storing the same bytes at once: one stores, the other gets `duplicate`.
    pub fn commit_message(&mut self, m: &NewMessage) -> Result<Committed, StoreError> {
        self.db.write(|db| commit_message_tx(db, m))
    }

    /// Counts one more try at storing the message under `key` (see
    /// [`MessageSource::attempt_key`]) before it is read; returns (tries so far including this
    /// one, the last recorded failure). The row goes in the message's own commit.
    ///
    /// Durable against a crash of the process (the point: a message that aborts casegate must
    /// not do so forever), not against a power loss: on SQLite written without an fsync of its
    /// own, so it costs no second disk flush per message; the message's commit then flushes it
    /// too. (On PostgreSQL an ordinary commit: instances share the count.)
    pub fn begin_attempt(&mut self, key: &str) -> Result<(u32, Option<String>), StoreError> {
        self.count_attempt(key, None)
    }

    /// Records that a try at `key` failed before anything could be stored (the file could not
    /// be read, the server did not hand out the message); returns the tries so far.
    pub fn record_failed_attempt(&mut self, key: &str, error: &str) -> Result<u32, StoreError> {
        Ok(self.count_attempt(key, Some(error))?.0)
    }

    /// Tries counted under `key` that did not end in a commit, and the last failure.
    pub fn attempts(&self, key: &str) -> Result<(u32, Option<String>), StoreError> {
        Ok(self
            .db
            .row(
                "SELECT attempts, last_error FROM inbound_attempts WHERE source_key = ?1",
                args![key],
            )?
            .map(|r| Ok::<_, StoreError>((r.get::<u32>(0)?, r.get(1)?)))
            .transpose()?
            .unwrap_or((0, None)))
    }

    /// Whether any of `keys` has tries counted ([`Store::attempts`] above 0): one statement for
    /// each 500 keys, not one for each.
    pub fn any_attempts_of(&self, keys: &[&str]) -> Result<bool, StoreError> {
        for chunk in keys.chunks(500) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
            let sql = format!(
                "SELECT 1 FROM inbound_attempts WHERE source_key IN ({}) AND attempts > 0 LIMIT 1",
                list.join(", ")
            );
            let args: Vec<sql::Param<'_>> = chunk.iter().map(|k| sql::Param::Text(k)).collect();
            if self.db.row(&sql, &args)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// [`Store::begin_attempt`] for each of `keys` (a batch of messages about to be read),
    /// in ONE transaction without an fsync of its own; the tries so far of each, in order.
    pub fn begin_attempts(
        &mut self,
        keys: &[&str],
    ) -> Result<Vec<(u32, Option<String>)>, StoreError> {
        self.without_own_fsync(|db| {
            db.write(|db| keys.iter().map(|k| count_attempt_tx(db, k, None)).collect())
        })
    }

    fn count_attempt(
        &mut self,
        key: &str,
        error: Option<&str>,
    ) -> Result<(u32, Option<String>), StoreError> {
        self.without_own_fsync(|db| db.write(|db| count_attempt_tx(db, key, error)))
    }

    /// Runs `f` (its own transactions) with SQLite's `synchronous=OFF`: what it commits is
    /// durable against a crash of the process at once, and against a power loss from the next
    /// ordinary commit on, which flushes the write-ahead log up to and including it. For work
    /// whose loss in a power cut only puts things back as they were before it (the outbox
    /// settling owed acknowledgments: the debt comes back with its copy gone, and is settled
    /// again), and that nothing outside relies on before an ordinary commit follows (an outbox
    /// copy is claimed by an ordinary commit before it is sent). Nested inside a transaction
    /// it changes nothing. On PostgreSQL `f` runs as is.
    pub fn flushed_by_the_next_commit<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> T,
    ) -> Result<T, StoreError> {
        let relax = self.db.sqlite_conn().is_some_and(|c| c.is_autocommit());
        if let (true, Some(c)) = (relax, self.db.sqlite_conn()) {
            c.pragma_update(None, "synchronous", "OFF")?;
        }
        // A panic in `f` must not leave the connection without flushes for what comes after.
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        let restored = match (relax, self.db.sqlite_conn()) {
            (true, Some(c)) => c.pragma_update(None, "synchronous", "FULL"),
            _ => Ok(()),
        };
        let done = done.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        restored?;
        Ok(done)
    }

    /// Runs `f` with SQLite's `synchronous=OFF` (see `begin_attempt`: durable against a crash
    /// of the process, flushed by the next commit). Inside a caller's transaction the pragma
    /// cannot change; that commit then flushes it.
    fn without_own_fsync<T>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.flushed_by_the_next_commit(|s| f(&mut s.db))?
    }

    /// A quarantined message was evaluated again (after a key import or a fix). When it now
    /// goes somewhere, it leaves quarantine and takes its new decision and verdicts — a new
    /// thread when one is opened, a triage entry — all in ONE transaction. When it is still
    /// quarantined, it stays, with the new reason. `m` is the new evaluation of the stored raw
    /// bytes (its raw bytes, hash and source are not written again).
    pub fn requeue_quarantined(
        &mut self,
        id: i64,
        m: &NewMessage,
    ) -> Result<Committed, StoreError> {
        self.db.write(|db| {
            let quarantined: Option<String> = db.opt(
                "SELECT m.sha256 FROM quarantine q JOIN messages m ON m.id = q.message_ref
                 WHERE q.message_ref = ?1",
                args![id],
            )?;
            match quarantined {
                None => {
                    return Err(StoreError::Conflict(
                        "that message is not in quarantine (any more); see `casegate quarantine list`"
                            .into(),
                    ));
                }
                Some(sha) if sha != m.sha256 => {
                    return Err(StoreError::Invalid(
                        "internal: the re-evaluated bytes are not the stored ones".into(),
                    ));
                }
                Some(_) => {}
            }
            let now = now_text();
            if matches!(m.disposition, Disposition::Quarantine) {
                db.execute(
                    "UPDATE quarantine SET reason = ?2 WHERE message_ref = ?1",
                    args![id, m.reason],
                )?;
            } else {
                db.execute("DELETE FROM quarantine WHERE message_ref = ?1", args![id])?;
            }
            let (destination, outcome) = open_disposition_tx(db, m)?;
            let thread_id = destination.id();
            db.execute(
                "UPDATE messages SET message_id = ?2, date_header = ?3, sender = ?4, subject = ?5,
                     thread_id = ?6, outcome = ?7, reason = ?8, encrypted = ?9, encryption_note = ?10,
                     signature = ?11, signer = ?12, signature_reason = ?13, automatic = ?14, flags = ?15,
                     sender_auth = ?16, sender_auth_detail = ?17
                 WHERE id = ?1",
                args![
                    id,
                    m.message_id,
                    m.date_header,
                    m.sender,
                    m.subject,
                    thread_id,
                    outcome,
                    m.reason,
                    m.encrypted,
                    m.encryption_note,
                    m.signature,
                    m.signer,
                    m.signature_reason,
                    m.automatic,
                    m.flags,
                    m.sender_auth,
                    m.sender_auth_detail,
                ],
            )?;
            if !matches!(m.disposition, Disposition::Quarantine) {
                file_disposition_tx(db, m, id, thread_id, &now)?;
            }
            let thread = destination.number(db)?;
            Ok(Committed {
                id,
                thread,
                duplicate: false,
            })
        })
    }

    /// New reports whose acknowledgment is still to be queued: (thread id, message row id).
    pub fn pending_acks(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        self.oldest_pending_acks(i64::MAX)
    }

    /// The `limit` oldest owed acknowledgments (see [`Store::pending_acks`]): one round of the
    /// outbox's work, however many new reports came in.
    pub fn oldest_pending_acks(&self, limit: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        self.db.map(
            "SELECT thread_id, message_ref FROM pending_acks ORDER BY created_at, thread_id
             LIMIT ?1",
            args![limit],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Whether any acknowledgment is owed (one indexed row read, not the list).
    pub fn any_pending_ack(&self) -> Result<bool, StoreError> {
        Ok(!self.oldest_pending_acks(1)?.is_empty())
    }

    /// The keys the reporter offered with the report whose acknowledgment is owed, as recorded
    /// with the debt; `None` for a debt recorded before they were (read them from the message).
    pub fn pending_ack_keys(&self, thread_id: i64) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let recorded: Option<bool> = self.db.opt(
            "SELECT keys_recorded FROM pending_acks WHERE thread_id = ?1",
            args![thread_id],
        )?;
        if recorded != Some(true) {
            return Ok(None);
        }
        Ok(Some(self.db.map(
            "SELECT offered FROM pending_ack_keys WHERE thread_id = ?1 ORDER BY id",
            args![thread_id],
            |r| r.get(0),
        )?))
    }

    /// Makes the debt of report `thread_id` look as one recorded before its keys were (tests
    /// of stores migrated with debts owed).
    #[cfg(test)]
    pub(crate) fn forget_recorded_ack_keys(&mut self, thread_id: i64) -> Result<(), StoreError> {
        self.db.write(|db| {
            db.execute(
                "DELETE FROM pending_ack_keys WHERE thread_id = ?1",
                args![thread_id],
            )?;
            db.execute(
                "UPDATE pending_acks SET keys_recorded = 0 WHERE thread_id = ?1",
                args![thread_id],
            )?;
            Ok(())
        })
    }

    /// The acknowledgment of this report can never be queued (or is, by another process):
    /// forget the to-do. `false` when it was not owed (any more).
    pub fn clear_pending_ack(&mut self, thread_id: i64) -> Result<bool, StoreError> {
        self.db.write(|db| clear_pending_ack_tx(db, thread_id))
    }

    /// One stored message by row id.
    pub fn message_record(&self, id: i64) -> Result<MessageRecord, StoreError> {
        self.message_records("WHERE m.id = ?1", args![id])?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("no message {id}")))
    }

    /// Messages of a thread (and of the reports promoted into it), oldest first.
    pub fn thread_messages(&self, thread_id: i64) -> Result<Vec<MessageRecord>, StoreError> {
        self.message_records(
            "WHERE m.thread_id = ?1 OR m.thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1)
             ORDER BY m.received_at, m.id",
            args![thread_id],
        )
    }

    /// Messages waiting in triage (unassigned first), oldest first.
    pub fn triage(&self, include_assigned: bool) -> Result<Vec<MessageRecord>, StoreError> {
        self.message_records(
            "JOIN triage tr ON tr.message_ref = m.id WHERE (?1 = 1 OR tr.assigned_at IS NULL)
             ORDER BY m.received_at, m.id",
            args![include_assigned],
        )
    }

    pub fn quarantined(&self) -> Result<Vec<MessageRecord>, StoreError> {
        self.message_records(
            "JOIN quarantine q ON q.message_ref = m.id ORDER BY m.received_at, m.id",
            args![],
        )
    }

    /// The raw bytes of a stored message, exactly as received.
    pub fn raw_message(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        self.db
            .opt("SELECT raw FROM messages WHERE id = ?1", args![id])?
            .ok_or_else(|| StoreError::NotFound(format!("no message {id}")))
    }

    /// Stored messages whose SHA-256 starts with `prefix` (lower-case hex), at most `limit`.
    pub fn messages_by_sha256_prefix(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        // Hex digits sort below 'g': [prefix, prefix + "g") is exactly the prefix range, and
        // it uses the index on sha256.
        let upper = format!("{prefix}g");
        self.message_records(
            "WHERE m.sha256 >= ?1 AND m.sha256 < ?2 ORDER BY m.sha256 LIMIT ?3",
            args![prefix, upper, i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// Stored messages with this Message-ID (newest first).
    pub fn messages_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.message_records(
            "WHERE m.message_id = ?1 ORDER BY m.id DESC",
            args![message_id],
        )
    }

    /// A person posts a triaged message into a thread; who and when are recorded.
    pub fn triage_assign(
        &mut self,
        message_ref: i64,
        thread_id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db.write(|db| {
            let n = db.execute(
                "UPDATE triage SET assigned_at = ?1, assigned_by = ?2, assigned_thread = ?3
                 WHERE message_ref = ?4 AND assigned_at IS NULL",
                args![time_text(now), by, thread_id, message_ref],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(
                    "that message is not waiting in triage; see `casegate triage list`".into(),
                ));
            }
            db.execute(
                "UPDATE messages SET thread_id = ?1, outcome = 'routed',
                    reason = reason || ' (assigned by ' || CAST(?2 AS TEXT) || ')' WHERE id = ?3",
                args![thread_id, by, message_ref],
            )?;
            Ok(())
        })
    }

    fn message_records(
        &self,
        tail: &str,
        args: &[sql::Param<'_>],
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let sql = format!(
            "SELECT m.id, m.message_id, m.sha256, m.direction, m.received_at, m.date_header, m.sender,
                    m.subject, (SELECT number FROM threads t WHERE t.id = m.thread_id), m.outcome, m.reason,
                    m.encrypted, m.encryption_note, m.signature, m.signer, m.signature_reason,
                    m.automatic, m.flags, m.source,
                    (SELECT reason FROM triage x WHERE x.message_ref = m.id),
                    (SELECT assigned_by FROM triage x WHERE x.message_ref = m.id),
                    (SELECT assigned_at FROM triage x WHERE x.message_ref = m.id),
                    (SELECT max(x.sha256) FROM messages x WHERE x.sha256 < m.sha256),
                    (SELECT min(x.sha256) FROM messages x WHERE x.sha256 > m.sha256),
                    m.raw_size, m.sender_auth, m.sender_auth_detail
             FROM messages m {tail}"
        );
        self.db.map(&sql, args, |r| {
            let number: Option<String> = r.get(8)?;
            let sha256: String = r.get(2)?;
            let before: Option<String> = r.get(22)?;
            let after: Option<String> = r.get(23)?;
            Ok(MessageRecord {
                id: r.get(0)?,
                message_id: r.get(1)?,
                short_id: short_id(&sha256, [before.as_deref(), after.as_deref()]),
                sha256,
                direction: r.get(3)?,
                received_at: r.get(4)?,
                date: r.get(5)?,
                sender: r.get(6)?,
                subject: r.get(7)?,
                thread: number.and_then(|n| TrackingNumber::parse(&n).ok()),
                outcome: r.get(9)?,
                reason: r.get(10)?,
                encrypted: r.get(11)?,
                encryption_note: r.get(12)?,
                signature: r.get(13)?,
                signer: r.get(14)?,
                signature_reason: r.get(15)?,
                automatic: r.get(16)?,
                flags: r.get(17)?,
                source: r.get(18)?,
                triage_reason: r.get(19)?,
                assigned_by: r.get(20)?,
                assigned_at: r.get(21)?,
                raw_size: r.get(24)?,
                sender_auth: r.get(25)?,
                sender_auth_detail: r.get(26)?,
            })
        })
    }
}

/// Digits of a message's SHA-256 that `show` and the lists print at least.
pub const SHORT_ID_LEN: usize = 12;

/// The shortest prefix of `sha256` (at least [`SHORT_ID_LEN`]) that differs from both of its
/// neighbours in sorted order, hence from every other stored hash.
fn short_id(sha256: &str, neighbours: [Option<&str>; 2]) -> String {
    let common = |other: &str| {
        sha256
            .bytes()
            .zip(other.bytes())
            .take_while(|(a, b)| a == b)
            .count()
    };
    let needed = neighbours
        .iter()
        .flatten()
        .map(|n| common(n) + 1)
        .fold(SHORT_ID_LEN, usize::max)
        .min(sha256.len());
    sha256[..needed].to_string()
}

fn sqlite_version(db: &Db) -> Result<i64, StoreError> {
    match db.sqlite_conn() {
        Some(c) => Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?),
        None => Ok(0),
    }
}

fn postgres_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{}: {d}", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

impl StoreError {
    /// PostgreSQL aborted a transaction because a concurrent one got in its way (serialization
    /// failure, deadlock, or a unique key another transaction just took): running it again
    /// will see that transaction's result.
    pub(crate) fn is_transient_conflict(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            StoreError::Postgres(e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::UNIQUE_VIOLATION
            ),
            _ => false,
        }
    }

    /// The database could not be reached or did not answer: retry later, acknowledge nothing.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

fn stored_cert(r: &sql::Row) -> Result<StoredCert, StoreError> {
    let uids: String = r.get(2)?;
    Ok(StoredCert {
        fingerprint: r.get(0)?,
        public_cert: r.get(1)?,
        user_ids: serde_json::from_str(&uids).unwrap_or_default(),
        imported_at: r.get(3)?,
    })
}

// ----- transaction-level building blocks (shared with the mailbox and outbox submodules) -----

fn thread_by_id_tx(db: &Db, id: i64) -> Result<Thread, StoreError> {
    let r = db
        .row(
            "SELECT t.number, t.kind, t.title, t.status, t.created_at,
                    (SELECT number FROM threads c WHERE c.id = t.promoted_to),
                    t.require_signed_statements, t.publication_date, t.discussion
             FROM threads t WHERE t.id = ?1",
            args![id],
        )?
        .ok_or_else(|| StoreError::NotFound(format!("no thread with id {id}")))?;
    let number = stored_number(&r.get::<String>(0)?)?;
    let kind = number.kind();
    Ok(Thread {
        id,
        number,
        kind,
        title: r.get(2)?,
        status: r.get(3)?,
        created_at: time_text(parse_time(&r.get::<String>(4)?)),
        promoted_to: r
            .get::<Option<String>>(5)?
            .and_then(|n| TrackingNumber::parse(&n).ok()),
        require_signed_statements: r.get(6)?,
        publication_date: r.get(7)?,
        discussion: r.get(8)?,
    })
}

/// The tracking number of thread `id` alone (what a stored message's outcome names; the whole
/// row is read by [`thread_by_id_tx`]).
fn thread_number_tx(db: &Db, id: i64) -> Result<TrackingNumber, StoreError> {
    let raw: String = db
        .row("SELECT number FROM threads WHERE id = ?1", args![id])?
        .ok_or_else(|| StoreError::NotFound(format!("no thread with id {id}")))?
        .get(0)?;
    stored_number(&raw)
}

/// A tracking number as the store holds it (written by casegate, so parsing fails only on a
/// store edited by hand).
fn stored_number(raw: &str) -> Result<TrackingNumber, StoreError> {
    TrackingNumber::parse(raw)
        .map_err(|e| StoreError::Invalid(format!("stored thread number {raw:?}: {e}")))
}

fn number_taken(db: &Db, n: &TrackingNumber) -> bool {
    // An error here counts as taken: minting then tries another number, never a duplicate.
    db.row("SELECT 1 FROM threads WHERE number = ?1", args![n.as_str()])
        .map(|o| o.is_some())
        .unwrap_or(true)
}

fn create_thread_tx(
    db: &Db,
    kind: Kind,
    number: Option<&TrackingNumber>,
    title: &str,
    now: DateTime<Utc>,
) -> Result<(i64, TrackingNumber), StoreError> {
    let number = match number {
        Some(n) => {
            if n.kind() != kind {
                return Err(StoreError::Invalid(format!(
                    "{n} is a {} number, not a {kind} number",
                    n.kind()
                )));
            }
            if number_taken(db, n) {
                return Err(StoreError::Conflict(format!(
                    "{n} already exists; see `casegate show {n}`"
                )));
            }
            n.clone()
        }
        None => {
            let mut rng = rand::rng();
            let minted = match kind {
                Kind::Case => tracking::mint_case(&mut rng, |n| number_taken(db, n)),
                Kind::Report => tracking::mint_report(now, &mut rng, |n| number_taken(db, n)),
                Kind::Ticket => {
                    let max: Option<i64> =
                        db.one("SELECT max(ticket_seq) FROM threads", args![])?;
                    tracking::ticket(max.unwrap_or(0) as u64 + 1)
                }
            };
            minted.map_err(|e| StoreError::Invalid(e.to_string()))?
        }
    };
    let id = db.insert_new(
        "INSERT INTO threads (number, kind, ticket_seq, title, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        args![
            number.as_str(),
            kind.as_str(),
            number.ticket_seq().map(|s| s as i64),
            title,
            time_text(now)
        ],
    )?;
    Ok((id, number))
}

/// The first contact of a thread made in this transaction: the sender of the message that
/// opened it, in its organization `org` ([`orgs::sender_org_tx`]). Nothing to look up or
/// collide with (every new ticket or report from mail makes one).
fn first_contact_tx(
    db: &Db,
    thread_id: i64,
    org: &orgs::SenderOrg,
    role: &str,
    address: &str,
) -> Result<i64, StoreError> {
    let address = orgs::normalize_address(address)?;
    let org_contact = match org.contact {
        Some(id) => id,
        None => orgs::org_contact_tx(db, org.id, &address, &now_text())?,
    };
    let participant_id = orgs::first_participant_tx(db, thread_id, org, role)?;
    db.insert_new(
        "INSERT INTO contacts (participant_id, address, org_contact_id) VALUES (?1, ?2, ?3)",
        args![participant_id, address, org_contact],
    )
}

/// Makes `address` a contact of organization `org_id` (in the directory) and of its
/// participant in the thread (created with `role` when missing). Returns the thread contact.
fn add_contact_tx(
    db: &Db,
    thread_id: i64,
    org_id: i64,
    role: &str,
    address: &str,
) -> Result<i64, StoreError> {
    let address = orgs::normalize_address(address)?;
    let org_contact = orgs::org_contact_tx(db, org_id, &address, &now_text())?;
    let participant_id = orgs::participant_tx(db, thread_id, org_id, role)?;
    // One statement (every new ticket from mail makes one): a new row, or the existing one,
    // linked now to the directory when it was made before the directory was.
    db.one(
        "INSERT INTO contacts (participant_id, address, org_contact_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (participant_id, address) DO UPDATE
             SET org_contact_id = COALESCE(contacts.org_contact_id, excluded.org_contact_id)
         RETURNING id",
        args![participant_id, address, org_contact],
    )
}

/// Binds a key to the directory contact behind thread contact `contact_id`, and to its
/// organization (bumping the keys generation when either is new); `true` when the contact's
/// binding is new.
fn bind_key_tx(db: &Db, contact_id: i64, fingerprint: &str) -> Result<bool, StoreError> {
    let r = db
        .row(
            "SELECT p.org_id, c.org_contact_id FROM contacts c
             JOIN participants p ON p.id = c.participant_id WHERE c.id = ?1",
            args![contact_id],
        )?
        .ok_or_else(|| StoreError::NotFound(format!("no contact {contact_id}")))?;
    let (org_id, org_contact): (Option<i64>, Option<i64>) = (r.get(0)?, r.get(1)?);
    let (Some(org_id), Some(org_contact)) = (org_id, org_contact) else {
        return Err(StoreError::Invalid(format!(
            "internal: contact {contact_id} has no organization"
        )));
    };
    let fpr = crate::keyring::normalize_fingerprint(fingerprint);
    orgs::org_key_tx(db, org_id, &fpr)?;
    orgs::contact_key_tx(db, org_contact, &fpr)
}

/// See [`Store::keys_generation`].
pub(super) fn bump_keys_tx(db: &Db) -> Result<(), StoreError> {
    db.execute(
        "UPDATE generations SET value = value + 1 WHERE name = 'keys'",
        args![],
    )?;
    Ok(())
}

fn cert_tx(db: &Db, fingerprint: &str) -> Result<Option<StoredCert>, StoreError> {
    db.row(
        "SELECT fingerprint, public_cert, user_ids, imported_at FROM certs WHERE fingerprint = ?1",
        args![fingerprint],
    )?
    .map(|r| stored_cert(&r))
    .transpose()
}

/// A promoted report's participants become the case's: the same organizations, roles and
/// contacts (their keys live in the directory and come along).
fn copy_participants_tx(db: &Db, from: i64, to: i64) -> Result<(), StoreError> {
    let rows = db.map(
        "SELECT p.org_id, p.role, c.address FROM contacts c
         JOIN participants p ON p.id = c.participant_id
         WHERE p.thread_id = ?1 AND p.org_id IS NOT NULL ORDER BY c.id",
        args![from],
        |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<String>(2)?)),
    )?;
    for (org_id, role, address) in rows {
        add_contact_tx(db, to, org_id, &role, &address)?;
    }
    Ok(())
}

pub(crate) fn record_sent_tx(db: &Db, message_id: &str, thread_id: i64) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO sent_message_ids (message_id, thread_id, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (message_id) DO NOTHING",
        args![message_id, thread_id, now_text()],
    )?;
    Ok(())
}

fn duplicate_tx(
    db: &Db,
    sha256: &str,
) -> Result<Option<(i64, Option<TrackingNumber>)>, StoreError> {
    let Some(r) = db.row(
        "SELECT id, thread_id FROM messages WHERE sha256 = ?1",
        args![sha256],
    )?
    else {
        return Ok(None);
    };
    let (id, thread): (i64, Option<i64>) = (r.get(0)?, r.get(1)?);
    let number = match thread {
        Some(t) => Some(thread_number_tx(db, t)?),
        None => None,
    };
    Ok(Some((id, number)))
}

/// The thread a message goes to (opening a new one when the decision says so) and its
/// `outcome` column.
fn open_disposition_tx(db: &Db, m: &NewMessage) -> Result<(Destination, &'static str), StoreError> {
    Ok(match &m.disposition {
        Disposition::Post { thread_id } => (Destination::Thread(*thread_id), "routed"),
        Disposition::NewThread {
            kind,
            title,
            participant,
        } => {
            let (id, number) = create_thread_tx(db, *kind, None, title, m.received_at)?;
            if let Some(p) = participant {
                let org = orgs::sender_org_tx(db, &p.org, &p.address)?;
                first_contact_tx(db, id, &org, &p.role, &p.address)?;
            }
            (Destination::New(id, number), "routed")
        }
        Disposition::Triage => (Destination::None, "triage"),
        Disposition::Quarantine => (Destination::None, "quarantine"),
    })
}

/// Where [`open_disposition_tx`] put a message.
enum Destination {
    /// A thread that was there.
    Thread(i64),
    /// A thread made for it, with the number it was given.
    New(i64, TrackingNumber),
    None,
}

impl Destination {
    fn id(&self) -> Option<i64> {
        match self {
            Destination::Thread(id) | Destination::New(id, _) => Some(*id),
            Destination::None => None,
        }
    }

    /// The thread's number (read back only for a thread that was there).
    fn number(self, db: &Db) -> Result<Option<TrackingNumber>, StoreError> {
        match self {
            Destination::Thread(id) => thread_number_tx(db, id).map(Some),
            Destination::New(_, number) => Ok(Some(number)),
            Destination::None => Ok(None),
        }
    }
}

/// Removes the debt of the acknowledgment of report `thread_id` and the keys recorded with it;
/// whether it was owed. Two processes paying it at once: one deletes it, the other sees 0 rows
/// (after the first commits, on PostgreSQL the row lock makes it wait).
pub(crate) fn clear_pending_ack_tx(db: &Db, thread_id: i64) -> Result<bool, StoreError> {
    db.execute(
        "DELETE FROM pending_ack_keys WHERE thread_id = ?1",
        args![thread_id],
    )?;
    Ok(db.execute(
        "DELETE FROM pending_acks WHERE thread_id = ?1",
        args![thread_id],
    )? > 0)
}

/// The rows that come with a stored message's decision: its triage or quarantine entry, and
/// the acknowledgment a new report from a person is owed (remembered durably, paid later).
fn file_disposition_tx(
    db: &Db,
    m: &NewMessage,
    id: i64,
    thread_id: Option<i64>,
    now: &str,
) -> Result<(), StoreError> {
    if let (
        Disposition::NewThread {
            kind: Kind::Report, ..
        },
        Some(thread_id),
    ) = (&m.disposition, thread_id)
        && m.inbound
        && !m.automatic
    {
        let owed = db.execute(
            "INSERT INTO pending_acks (thread_id, message_ref, created_at, keys_recorded)
             VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (thread_id) DO NOTHING",
            args![thread_id, id, now],
        )?;
        if owed > 0 {
            for key in &m.offered_keys {
                db.execute(
                    "INSERT INTO pending_ack_keys (thread_id, offered) VALUES (?1, ?2)",
                    args![thread_id, key.as_slice()],
                )?;
            }
        }
    }
    if let (Disposition::Post { .. } | Disposition::NewThread { .. }, Some(thread_id)) =
        (&m.disposition, thread_id)
    {
        vendors::insert_claims_tx(db, thread_id, id, m)?;
        if m.relay_owed && m.inbound {
            relays::owe_relay_tx(db, id, thread_id, m.received_at)?;
        }
    }
    match m.disposition {
        Disposition::Triage => {
            db.execute(
                "INSERT INTO triage (message_ref, reason, created_at) VALUES (?1, ?2, ?3)",
                args![id, m.reason, now],
            )?;
        }
        Disposition::Quarantine => {
            db.execute(
                "INSERT INTO quarantine (message_ref, reason, created_at) VALUES (?1, ?2, ?3)",
                args![id, m.reason, now],
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// One more try counted under `key` (with its failure, if any): the tries so far and the last
/// recorded failure.
fn count_attempt_tx(
    db: &Db,
    key: &str,
    error: Option<&str>,
) -> Result<(u32, Option<String>), StoreError> {
    // Mostly the first try: a plain insert, without the RETURNING that SQLite runs as a
    // trigger (see `Db::insert`); the upsert below only when one was counted before.
    let first = db.execute(
        "INSERT INTO inbound_attempts (source_key, attempts, last_error, updated_at)
         VALUES (?1, 1, ?2, ?3)
         ON CONFLICT (source_key) DO NOTHING",
        args![key, error, now_text()],
    )?;
    if first == 1 {
        return Ok((1, error.map(str::to_string)));
    }
    let r = db
        .row(
            "INSERT INTO inbound_attempts (source_key, attempts, last_error, updated_at)
             VALUES (?1, 1, ?2, ?3)
             ON CONFLICT (source_key) DO UPDATE SET
               attempts = inbound_attempts.attempts + 1,
               last_error = COALESCE(excluded.last_error, inbound_attempts.last_error),
               updated_at = excluded.updated_at
             RETURNING attempts, last_error",
            args![key, error, now_text()],
        )?
        .ok_or_else(|| StoreError::Invalid("no row from INSERT ... RETURNING".into()))?;
    Ok((r.get::<u32>(0)?, r.get(1)?))
}

fn commit_message_tx(db: &Db, m: &NewMessage) -> Result<Committed, StoreError> {
    let committed = if let Some((id, thread)) = duplicate_tx(db, &m.sha256)? {
        Committed {
            id,
            thread,
            duplicate: true,
        }
    } else {
        let now = time_text(m.received_at);
        let (destination, outcome) = open_disposition_tx(db, m)?;
        let thread_id = destination.id();
        let id: i64 = db.insert_new(
            "INSERT INTO messages (sha256, message_id, raw, direction, received_at, date_header,
                sender, subject, thread_id, outcome, reason, encrypted, encryption_note,
                signature, signer, signature_reason, automatic, flags, source, raw_size,
                sender_auth, sender_auth_detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                ?21, ?22)",
            args![
                m.sha256,
                m.message_id,
                m.raw,
                if m.inbound { "in" } else { "out" },
                now,
                m.date_header,
                m.sender,
                m.subject,
                thread_id,
                outcome,
                m.reason,
                m.encrypted,
                m.encryption_note,
                m.signature,
                m.signer,
                m.signature_reason,
                m.automatic,
                m.flags,
                m.source.describe(),
                m.raw_size.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
                m.sender_auth,
                m.sender_auth_detail,
            ],
        )?;
        file_disposition_tx(db, m, id, thread_id, &now)?;
        let thread = destination.number(db)?;
        Committed {
            id,
            thread,
            duplicate: false,
        }
    };
    if let MessageSource::Imap {
        account,
        mailbox,
        uidvalidity,
        uid,
    } = &m.source
    {
        mailbox::advance(db, account, mailbox, *uidvalidity, *uid)?;
    }
    if let Some(key) = m.source.attempt_key() {
        db.execute(
            "DELETE FROM inbound_attempts WHERE source_key = ?1",
            args![key],
        )?;
    }
    Ok(committed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use testing::for_each_backend;

    fn n(s: &str) -> TrackingNumber {
        TrackingNumber::parse(s).unwrap()
    }

    fn msg(raw: &[u8], d: Disposition) -> NewMessage {
        let source = MessageSource::Imap {
            account: "acct".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 7,
            uid: 42,
        };
        NewMessage {
            message_id: Some("<a@b>".into()),
            sender: Some("x@y.example".into()),
            subject: Some("s".into()),
            reason: "test".into(),
            ..NewMessage::inbound(raw, source, Utc::now(), d)
        }
    }

    #[test]
    fn a_short_id_is_long_enough_to_differ_from_both_neighbours() {
        let me = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(short_id(me, [None, None]), &me[..SHORT_ID_LEN]);
        let near = "0123456789abcdeffffffffffffffffffffffffffffffffffffffffffffffffff";
        assert_eq!(short_id(me, [Some(near), None]), &me[..17]);
        let far = "1123456789abcdef000000000000000000000000000000000000000000000000";
        assert_eq!(short_id(me, [Some(far), Some(near)]), &me[..17]);
        assert_eq!(short_id("abc", [Some("abc"), None]), "abc");
    }

    #[test]
    fn a_quarantined_message_leaves_quarantine_whole_or_not_at_all() {
        for_each_backend(|mut s| {
            let mut q = msg(b"kept raw", Disposition::Quarantine);
            q.reason = "cannot open: no key".into();
            let id = s.commit_message(&q).unwrap().id;
            let again = |d: Disposition, reason: &str| NewMessage {
                reason: reason.into(),
                signature: "good".into(),
                ..msg(b"kept raw", d)
            };
            // Still failing: it stays, with the new reason.
            s.requeue_quarantined(id, &again(Disposition::Quarantine, "still no key"))
                .unwrap();
            let r = s.message_record(id).unwrap();
            assert_eq!(
                (r.outcome.as_str(), r.reason.as_str()),
                ("quarantine", "still no key")
            );
            assert_eq!(s.quarantined().unwrap()[0].reason, "still no key");
            // A failing write (no thread 999) changes nothing.
            let bad = again(Disposition::Post { thread_id: 999 }, "routed");
            assert!(s.requeue_quarantined(id, &bad).is_err());
            assert_eq!(s.quarantined().unwrap().len(), 1);
            // Now it opens a report: thread, contact and the owed acknowledgment, out of quarantine.
            let report = again(
                Disposition::NewThread {
                    kind: Kind::Report,
                    title: "t".into(),
                    participant: Some(NewParticipant {
                        org: "x".into(),
                        role: "reporter".into(),
                        address: "x@y.example".into(),
                    }),
                },
                "new report",
            );
            let c = s.requeue_quarantined(id, &report).unwrap();
            let number = c.thread.unwrap();
            assert!(s.quarantined().unwrap().is_empty());
            let r = s.message_record(id).unwrap();
            assert_eq!(r.outcome, "routed");
            assert_eq!(r.signature, "good");
            assert_eq!(r.thread.as_ref(), Some(&number));
            assert_eq!(s.pending_acks().unwrap().len(), 1);
            // Once out, a second retry is a conflict.
            let err = s.requeue_quarantined(id, &report).unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)));
            // Only the stored bytes can be put back.
            let mut other = msg(b"other", Disposition::Quarantine);
            other.reason = "x".into();
            let other_id = s.commit_message(&other).unwrap().id;
            assert!(s.requeue_quarantined(other_id, &report).is_err());
        });
    }

    #[test]
    fn existing_number_conflicts_and_tickets_are_sequential() {
        for_each_backend(|mut s| {
            let now = Utc::now();
            s.create_thread(Kind::Case, Some(&n("VU#409117")), "a", now)
                .unwrap();
            let err = s
                .create_thread(Kind::Case, Some(&n("VU#409117")), "b", now)
                .unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)));
            s.create_thread(Kind::Ticket, Some(&n("General-1042")), "q", now)
                .unwrap();
            let t = s.create_thread(Kind::Ticket, None, "q2", now).unwrap();
            assert_eq!(t.number.as_str(), "General-1043");
            let c = s.create_thread(Kind::Case, None, "minted", now).unwrap();
            assert_eq!(c.kind, Kind::Case);
        });
    }

    #[test]
    fn promotion_copies_participants_and_resolves() {
        for_each_backend(|mut s| {
            let now = Utc::now();
            let r = s
                .create_thread(Kind::Report, Some(&n("VRF#25-11-BKQTZ")), "r", now)
                .unwrap();
            s.add_participant(
                r.id,
                "Reporter",
                "reporter",
                "Rita@Example.test",
                Some("abcd"),
            )
            .unwrap();
            let case = s
                .promote(&n("VRF#25-11-BKQTZ"), Some(&n("VU#123456")), now)
                .unwrap();
            let contacts = s.contacts(case.id).unwrap();
            assert_eq!(contacts.len(), 1);
            assert_eq!(contacts[0].address, "rita@example.test");
            assert_eq!(contacts[0].key_fingerprints, vec!["ABCD".to_string()]);
            let resolved = s.resolve_thread(&n("VRF#25-11-BKQTZ")).unwrap().unwrap();
            assert_eq!(resolved.number.as_str(), "VU#123456");
            assert!(s.promote(&n("VRF#25-11-BKQTZ"), None, now).is_err());
        });
    }

    /// A connection that commits back to back (the pipeline storing a backlog) must not keep
    /// another connection of the same process (acknowledgments, an analyst's request) from
    /// writing: the other writes right after the transaction in hand, not when the backlog
    /// ends. With SQLite's busy handler alone it waited for a gap between two commits.
    #[test]
    fn a_writer_gets_its_turn_between_the_commits_of_another_that_commits_back_to_back() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("casegate.sqlite");
        let mut busy = Store::open(&path).unwrap();
        let mut other = Store::open(&path).unwrap();
        let (stop, commits) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let committer = {
            let (stop, commits) = (stop.clone(), commits.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                // Bounded: the test stops it, or it gives up after 20,000 transactions.
                while !stop.load(Ordering::SeqCst) && i < 20_000 {
                    i += 1;
                    let mut m = msg(format!("busy {i}").as_bytes(), Disposition::Triage);
                    m.message_id = Some(format!("<busy-{i}@x>"));
                    let r: Result<(), StoreError> = busy.atomically_as_one(|s| {
                        s.commit_message(&m)?;
                        Ok(())
                    });
                    r.unwrap();
                    commits.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        while commits.load(Ordering::SeqCst) < 5 {
            std::thread::yield_now();
        }
        let asked = commits.load(Ordering::SeqCst);
        let mut m = msg(b"the other writer", Disposition::Triage);
        m.message_id = Some("<other@x>".into());
        other.commit_message(&m).unwrap();
        let wrote = commits.load(Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        committer.join().unwrap();
        assert!(
            wrote - asked <= 2,
            "the other writer waited for {} commits of the busy one",
            wrote - asked
        );
        assert!(other.find_duplicate(&m.sha256).unwrap().is_some());
    }

    #[test]
    fn a_transaction_as_one_is_rolled_back_whole_when_a_write_in_it_failed_even_if_swallowed() {
        for_each_backend(|mut s| {
            let ok = msg(b"first", Disposition::Triage);
            let mut bad = msg(b"second", Disposition::Post { thread_id: 999 });
            bad.message_id = Some("<c@d>".into());
            let stored = |s: &Store| s.find_duplicate(&ok.sha256).unwrap().is_some();
            // No savepoint undoes the failed write alone: the whole transaction goes.
            let r: Result<(), StoreError> = s.atomically_as_one(|s| {
                s.commit_message(&ok)?;
                let _ = s.commit_message(&bad);
                Ok(())
            });
            assert!(r.is_err(), "committed around a failed write");
            assert!(!stored(&s));
            // The same with savepoints: the failed write alone is undone. (And the connection
            // is back to savepoints after the flat transaction.)
            let r: Result<(), StoreError> = s.atomically(|s| {
                s.commit_message(&ok)?;
                let _ = s.commit_message(&bad);
                Ok(())
            });
            assert!(r.is_ok(), "{r:?}");
            assert!(stored(&s));
            // Nothing failed: all of it commits, in one transaction.
            let before = s.db().commits();
            let (a, b) = (
                msg(b"third", Disposition::Triage),
                msg(b"fourth", Disposition::Triage),
            );
            let r: Result<(), StoreError> = s.atomically_as_one(|s| {
                s.commit_message(&a)?;
                s.commit_message(&b)?;
                Ok(())
            });
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(s.db().commits(), before + 1);
            assert!(s.find_duplicate(&a.sha256).unwrap().is_some());
            assert!(s.find_duplicate(&b.sha256).unwrap().is_some());
        });
    }

    #[test]
    fn routing_reads_organization_names_as_the_whole_organizations_have_them() {
        for_each_backend(|mut s| {
            let now = Utc::now();
            let bar = s.create_org("BarNet", &["vpn".into()], now).unwrap();
            let foo = s.create_org("FooCorp", &[], now).unwrap();
            s.bind_org_key(foo.id, "ab cd", None).unwrap();
            s.bind_org_key(bar.id, "ABCD", None).unwrap();
            s.bind_org_key(bar.id, "EEEE", None).unwrap();
            let whole: Vec<String> = s
                .orgs_with_key("abcd")
                .unwrap()
                .into_iter()
                .map(|o| o.name)
                .collect();
            assert_eq!(whole, ["BarNet", "FooCorp"]);
            assert_eq!(s.org_names_with_key("abcd").unwrap(), whole);
            assert_eq!(s.org_names_with_key("EEEE").unwrap(), ["BarNet"]);
            assert!(s.org_names_with_key("FFFF").unwrap().is_empty());
            assert_eq!(s.org_name(foo.id).unwrap(), "FooCorp");
            assert_eq!(
                s.org_name(bar.id).unwrap(),
                s.org_by_id(bar.id).unwrap().name
            );
            assert!(matches!(
                s.org_name(foo.id + bar.id + 1),
                Err(StoreError::NotFound(_))
            ));
        });
    }

    #[test]
    fn certs_naming_an_address_are_read_without_the_rest_of_the_keyring() {
        for_each_backend(|mut s| {
            let now = Utc::now();
            for (fpr, uid) in [
                ("AAAA", "Rita <Rita@X.test>"),
                ("BBBB", "Bob <bob@y.test>"),
                ("CCCC", "Rita's other <rita@x.test.example>"),
                ("DDDD", "Zoë <zoë@z.test>"),
            ] {
                s.merge_cert(fpr, |_| {
                    Ok(StoredCert {
                        fingerprint: fpr.into(),
                        public_cert: vec![0x99, 1, 2],
                        user_ids: vec!["first <first@w.test>".into(), uid.into()],
                        imported_at: time_text(now),
                    })
                })
                .unwrap();
            }
            let named = |a: &str| -> Vec<String> {
                s.certs_naming(a)
                    .unwrap()
                    .into_iter()
                    .map(|c| c.fingerprint)
                    .collect()
            };
            // ASCII case ignored; a longer address containing it is the caller's to refuse.
            assert_eq!(named("rita@x.test"), ["AAAA", "CCCC"]);
            assert_eq!(named("BOB@Y.TEST"), ["BBBB"]);
            assert_eq!(named("first@w.test").len(), 4);
            assert!(named("nobody@x.test").is_empty());
            // Not plain ASCII: every cert, for the caller to compare.
            assert_eq!(named("zoë@z.test").len(), 4);
            assert_eq!(named("a\"b@x.test").len(), 4);
        });
    }

    /// A contact added again is the same row, with its keys; one from before the directory
    /// (no directory link) is linked when added again; the thread's contacts come with the keys
    /// of each, and only those.
    #[test]
    fn a_contact_added_again_is_the_same_row_and_an_unlinked_one_is_linked() {
        for_each_backend(|mut s| {
            let t = s
                .create_thread(Kind::Ticket, None, "t", Utc::now())
                .unwrap();
            let a = s
                .add_participant(t.id, "FooCorp", "vendor", "psirt@foo.example", Some("aaaa"))
                .unwrap();
            let b = s
                .add_participant(t.id, "FooCorp", "vendor", "PSIRT@foo.example", Some("bbbb"))
                .unwrap();
            assert_eq!(a.contact_id, b.contact_id);
            let other = s
                .add_participant(t.id, "BarCorp", "vendor", "sec@bar.example", Some("cccc"))
                .unwrap();
            let plain = s
                .add_participant(t.id, "BarCorp", "vendor", "ops@bar.example", None)
                .unwrap();
            let contacts = s.contacts(t.id).unwrap();
            let keys = |id: i64| {
                contacts
                    .iter()
                    .find(|c| c.contact_id == id)
                    .map(|c| c.key_fingerprints.clone())
                    .unwrap()
            };
            assert_eq!(keys(a.contact_id), vec!["AAAA", "BBBB"]);
            assert_eq!(keys(other.contact_id), vec!["CCCC"]);
            assert!(keys(plain.contact_id).is_empty());
            // One entry a contact, however many keys it has, by organization and address.
            let listed: Vec<&str> = contacts.iter().map(|c| c.address.as_str()).collect();
            assert_eq!(
                listed,
                ["ops@bar.example", "sec@bar.example", "psirt@foo.example"]
            );

            // As a store from before the directory has it: the contact row without its link.
            s.db.execute(
                "UPDATE contacts SET org_contact_id = NULL WHERE id = ?1",
                args![plain.contact_id],
            )
            .unwrap();
            let linked: Option<i64> =
                s.db.one(
                    "SELECT org_contact_id FROM contacts WHERE id = ?1",
                    args![plain.contact_id],
                )
                .unwrap();
            assert_eq!(linked, None);
            let again = s
                .add_participant(t.id, "BarCorp", "vendor", "ops@bar.example", None)
                .unwrap();
            assert_eq!(again.contact_id, plain.contact_id);
            let linked: Option<i64> =
                s.db.one(
                    "SELECT org_contact_id FROM contacts WHERE id = ?1",
                    args![plain.contact_id],
                )
                .unwrap();
            assert!(linked.is_some_and(|id| id > 0), "{linked:?}");
            assert_eq!(s.contacts(t.id).unwrap().len(), 3);
        });
    }

    /// Routing's bounded read of a sender's standing: among the named threads, and the first
    /// anywhere.
    #[test]
    fn a_senders_standing_is_read_among_the_named_threads_and_first_anywhere() {
        for_each_backend(|mut s| {
            let now = Utc::now();
            let ids: Vec<i64> = (0..4)
                .map(|_| s.create_thread(Kind::Ticket, None, "t", now).unwrap().id)
                .collect();
            for &t in [ids[1], ids[3]].iter() {
                s.add_participant(t, "FooCorp", "vendor", "PSIRT@foo.example", None)
                    .unwrap();
            }
            let got = s
                .sender_standing("psirt@FOO.example", &[ids[0], ids[3], ids[3]])
                .unwrap();
            assert_eq!(got.among, vec![ids[3]]);
            assert_eq!(got.first.map(|(id, _)| id), Some(ids[1]));
            let got = s.sender_standing("nobody@foo.example", &ids).unwrap();
            assert!(got.among.is_empty() && got.first.is_none());
            // First is the oldest contact entry, not the lowest thread: a sender added later
            // to an older thread keeps the organization it first came with.
            s.add_participant(ids[0], "Other", "vendor", "psirt@foo.example", None)
                .unwrap();
            let got = s.sender_standing("psirt@foo.example", &[]).unwrap();
            assert_eq!(got.first, Some((ids[1], "FooCorp".to_string())));
        });
    }

    #[test]
    fn commit_is_atomic_dedupes_and_advances_checkpoint() {
        for_each_backend(|mut s| {
            let c = s
                .commit_message(&msg(b"hello", Disposition::Triage))
                .unwrap();
            assert!(!c.duplicate);
            assert_eq!(s.triage(false).unwrap().len(), 1);
            let again = s
                .commit_message(&msg(b"hello", Disposition::Triage))
                .unwrap();
            assert!(again.duplicate);
            assert_eq!(again.id, c.id);
            assert_eq!(s.triage(false).unwrap().len(), 1);
            let cp = s.mailbox_checkpoint("acct", "INBOX").unwrap().unwrap();
            assert_eq!((cp.uidvalidity, cp.last_uid), (7, 42));
            // A failing insert (unknown thread id violates the foreign key) leaves nothing behind.
            let mut bad = msg(b"other", Disposition::Post { thread_id: 999 });
            if let MessageSource::Imap { uid, .. } = &mut bad.source {
                *uid = 50;
            }
            assert!(s.commit_message(&bad).is_err());
            assert!(s.find_duplicate(&bad.sha256).unwrap().is_none());
            let cp = s.mailbox_checkpoint("acct", "INBOX").unwrap().unwrap();
            assert_eq!(cp.last_uid, 42);
        });
    }

    #[test]
    fn new_thread_disposition_mints_and_adds_sender() {
        for_each_backend(|mut s| {
            let c = s
                .commit_message(&msg(
                    b"report",
                    Disposition::NewThread {
                        kind: Kind::Report,
                        title: "t".into(),
                        participant: Some(NewParticipant {
                            org: "x@y.example".into(),
                            role: "reporter".into(),
                            address: "x@y.example".into(),
                        }),
                    },
                ))
                .unwrap();
            let number = c.thread.unwrap();
            assert_eq!(number.kind(), Kind::Report);
            let t = s.thread(&number).unwrap().unwrap();
            assert_eq!(s.contacts(t.id).unwrap().len(), 1);
            assert!(s.is_known_address("X@y.example").unwrap());
            assert_eq!(s.thread_messages(t.id).unwrap().len(), 1);
        });
    }

    #[test]
    fn schemas_match_on_both_backends() {
        let sqlite = Store::open_in_memory().unwrap();
        let pg = testing::postgres_store();
        assert_eq!(
            sqlite.schema_version().unwrap(),
            pg.schema_version().unwrap()
        );
        let tables = sqlite.db.tables().unwrap();
        assert_eq!(tables, pg.db.tables().unwrap());
        assert!(tables.contains(&"messages".to_string()));
        for t in &tables {
            let strip = |cs: Vec<sql::Column>| {
                cs.into_iter()
                    .map(|c| (c.name, c.sql_type, c.not_null, c.pk))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                strip(sqlite.db.columns(t).unwrap()),
                strip(pg.db.columns(t).unwrap()),
                "table {t}"
            );
        }
        assert_eq!(sqlite.db.indexes().unwrap(), pg.db.indexes().unwrap());
    }

    /// Processes opening a new SQLite store at the same moment all get it (the daemon and a
    /// CLI command on a first start, or instances started together). Switching a file to WAL
    /// does not wait on SQLite's busy handler, so without a retry one of them would fail with
    /// "database is locked": before the fix one round in ten or so did, so this runs forty.
    #[test]
    fn a_new_sqlite_store_opened_by_several_at_once_opens_for_each() {
        const OPENERS: usize = 4;
        for round in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.sqlite");
            let start = std::sync::Barrier::new(OPENERS);
            let opened: Vec<Result<i64, String>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..OPENERS)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            Store::open(&path)
                                .and_then(|s| s.schema_version())
                                .map_err(|e| e.to_string())
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let known = schema::MIGRATIONS.len() as i64;
            assert_eq!(opened, vec![Ok(known); OPENERS], "round {round}");
        }
    }

    /// Instances starting together on a new database: each migration is applied once (the
    /// advisory lock on PostgreSQL, `BEGIN IMMEDIATE` per migration on SQLite), every opener
    /// gets a store at the current version.
    #[test]
    fn migrations_run_once_when_instances_start_together() {
        testing::for_each_shared_backend(|open| {
            const OPENERS: usize = 4;
            let start = std::sync::Barrier::new(OPENERS);
            let versions: Vec<i64> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..OPENERS)
                    .map(|_| {
                        scope.spawn(|| {
                            start.wait();
                            open().schema_version().unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let known = schema::MIGRATIONS.len() as i64;
            assert_eq!(versions, vec![known; OPENERS]);
            let s = open();
            if s.backend() == Backend::Postgres {
                let rows: i64 =
                    s.db.one("SELECT count(*) FROM casegate_schema", args![])
                        .unwrap();
                assert_eq!(rows, 1);
            }
            // A migration that ran twice would have seeded this row twice (no key on a
            // second run would stop CREATE TABLE from failing first, but check the data too).
            assert_eq!(s.keys_generation().unwrap(), 0);
        });
    }

    /// What another branch's migration looks like when written by the rules (ARCHITECTURE.md,
    /// "Writing a migration"): it runs unedited on PostgreSQL, gives the same columns and
    /// indexes as on SQLite, and the portable statements on it behave the same.
    #[test]
    fn a_portable_migration_runs_unedited_on_postgres() {
        const FUTURE: &str = "
CREATE TABLE teams (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    trusted    INTEGER NOT NULL DEFAULT 0 CHECK (trusted IN (0, 1)),
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX teams_name ON teams(lower(name));
CREATE TABLE team_members (
    team_id  INTEGER NOT NULL REFERENCES teams(id)
                ON DELETE CASCADE,
    address TEXT NOT NULL,
    key     BLOB,
    PRIMARY KEY (team_id, address)
) WITHOUT ROWID;
CREATE TABLE sessions (id INTEGER PRIMARY KEY, team_id INTEGER REFERENCES teams(id) ON DELETE SET NULL, token_hash BLOB NOT NULL UNIQUE);
CREATE INDEX sessions_team ON sessions(team_id) WHERE team_id IS NOT NULL;
ALTER TABLE messages ADD COLUMN team_note TEXT;
ALTER TABLE threads ADD COLUMN team_id INTEGER REFERENCES teams(id);
INSERT INTO generations (name, value) VALUES ('teams', 0) ON CONFLICT (name) DO NOTHING;
";
        assert_eq!(sql::not_portable(FUTURE), None);
        let sqlite = Store::open_in_memory().unwrap();
        sqlite.db.batch(FUTURE).unwrap();
        let pg = testing::postgres_store();
        pg.db.batch(&sql::postgres_ddl(FUTURE)).unwrap();
        let strip = |cs: Vec<sql::Column>| {
            cs.into_iter()
                .map(|c| (c.name, c.sql_type, c.not_null, c.pk))
                .collect::<Vec<_>>()
        };
        for t in ["teams", "team_members", "sessions", "messages", "threads"] {
            assert_eq!(
                strip(sqlite.db.columns(t).unwrap()),
                strip(pg.db.columns(t).unwrap()),
                "table {t}"
            );
        }
        assert_eq!(sqlite.db.indexes().unwrap(), pg.db.indexes().unwrap());
        for s in [&sqlite, &pg] {
            let db = &s.db;
            let id: i64 = db
                .one(
                    "INSERT INTO teams (name, created_at) VALUES (?1, ?2) RETURNING id",
                    args!["Vendor", "2026-01-01T00:00:00Z"],
                )
                .unwrap();
            // lower() unique: the same name in another case is the same org.
            let again = db.execute(
                "INSERT INTO teams (name, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                args!["VENDOR", "2026-01-01T00:00:00Z"],
            );
            assert_eq!(again.unwrap(), 0, "{:?}", s.backend());
            db.execute(
                "INSERT INTO team_members (team_id, address, key) VALUES (?1, ?2, ?3)",
                args![id, "a@x.test", vec![0u8, 255]],
            )
            .unwrap();
            db.execute(
                "INSERT INTO sessions (team_id, token_hash) VALUES (?1, ?2)",
                args![id, vec![1u8; 32]],
            )
            .unwrap();
            assert!(
                db.execute(
                    "INSERT INTO team_members (team_id, address) VALUES (?1, ?2)",
                    args![id + 100, "b@x.test"],
                )
                .is_err(),
                "a foreign key is enforced at once ({:?})",
                s.backend()
            );
            db.execute("DELETE FROM teams WHERE id = ?1", args![id])
                .unwrap();
            let members: i64 = db
                .one("SELECT count(*) FROM team_members", args![])
                .unwrap();
            let orphan: Option<i64> = db.one("SELECT team_id FROM sessions", args![]).unwrap();
            assert_eq!((members, orphan), (0, None), "{:?}", s.backend());
        }
    }

    /// Failed tries of a message are counted durably per source (shared by instances on
    /// PostgreSQL) and cleared by the commit that stores it.
    #[test]
    fn inbound_attempts_are_counted_then_cleared_by_the_commit() {
        for_each_backend(|mut s| {
            let source = MessageSource::Maildir("/m/new/1.x:2,".into());
            let key = source.attempt_key().unwrap();
            assert_eq!(s.attempts(&key).unwrap(), (0, None));
            assert_eq!(s.begin_attempt(&key).unwrap(), (1, None));
            assert_eq!(s.record_failed_attempt(&key, "unreadable").unwrap(), 2);
            assert_eq!(
                s.begin_attempt(&key).unwrap(),
                (3, Some("unreadable".to_string()))
            );
            let m = NewMessage::inbound(b"raw", source, Utc::now(), Disposition::Quarantine);
            s.commit_message(&m).unwrap();
            assert_eq!(s.attempts(&key).unwrap(), (0, None));
            // A first try that failed at once keeps its failure.
            assert_eq!(s.record_failed_attempt(&key, "gone").unwrap(), 1);
            assert_eq!(s.attempts(&key).unwrap(), (1, Some("gone".to_string())));
            assert_eq!(
                s.begin_attempt(&key).unwrap(),
                (2, Some("gone".to_string()))
            );
        });
    }

    /// `Db::insert` returns the new row's key without RETURNING on SQLite (the connection's
    /// last rowid), and `None`, not the key of the row inserted before, when the row was left
    /// out.
    #[test]
    fn an_insert_returns_its_own_key_or_none_when_left_out() {
        for_each_backend(|s| {
            let db = &s.db;
            let insert = |name: &str| {
                db.insert(
                    "INSERT INTO api_tokens (name, sha256, read_only, created_at)
                     VALUES (?1, ?2, 0, '2026-01-01T00:00:00Z') ON CONFLICT (name) DO NOTHING",
                    args![name, format!("{name}-hash")],
                )
                .unwrap()
            };
            let a = insert("a").expect("inserted");
            let b = insert("b").expect("inserted");
            assert_ne!(a, b);
            assert_eq!(insert("a"), None, "{:?}", s.backend());
            let named = |id: i64| -> String {
                db.one("SELECT name FROM api_tokens WHERE id = ?1", args![id])
                    .unwrap()
            };
            assert_eq!((named(a), named(b)), ("a".to_string(), "b".to_string()));
            let err = db
                .insert_new(
                    "INSERT INTO api_tokens (name, sha256, read_only, created_at)
                     VALUES ('b', 'x', 0, '2026-01-01T00:00:00Z') ON CONFLICT (name) DO NOTHING",
                    args![],
                )
                .unwrap_err();
            assert!(err.to_string().contains("no row inserted"), "{err}");
        });
    }

    /// A batch is grouped only when none of its messages has a try counted: asked of all of
    /// them at once, in statements of 500 keys.
    #[test]
    fn any_attempts_of_finds_a_counted_try_among_many_keys() {
        for_each_backend(|mut s| {
            let keys: Vec<String> = (0..1_200).map(|i| format!("maildir:/m/new/{i}")).collect();
            let all: Vec<&str> = keys.iter().map(String::as_str).collect();
            assert!(!s.any_attempts_of(&all).unwrap());
            assert!(!s.any_attempts_of(&[]).unwrap());
            // Another message's try is not one of these.
            s.begin_attempt("maildir:/m/new/other").unwrap();
            assert!(!s.any_attempts_of(&all).unwrap());
            // In the third statement's share.
            s.begin_attempt(&keys[1_100]).unwrap();
            assert!(s.any_attempts_of(&all).unwrap(), "{:?}", s.backend());
            assert!(!s.any_attempts_of(&all[..1_000]).unwrap());
            assert!(s.any_attempts_of(&all[1_100..1_101]).unwrap());
        });
    }

    #[test]
    fn keys_keep_the_order_they_were_bound_in() {
        for_each_backend(|mut s| {
            let t = s
                .create_thread(Kind::Case, Some(&n("VU#409117")), "a", Utc::now())
                .unwrap();
            s.add_participant(t.id, "V", "vendor", "v@x.test", Some("bbbb"))
                .unwrap();
            s.bind_contact_key(t.id, "v@x.test", "aaaa").unwrap();
            s.bind_contact_key(t.id, "v@x.test", "bbbb").unwrap();
            s.bind_contact_key(t.id, "v@x.test", "cccc").unwrap();
            assert_eq!(
                s.contacts(t.id).unwrap()[0].key_fingerprints,
                ["BBBB", "AAAA", "CCCC"]
            );
        });
    }

    /// Several writers at once (two instances on one database): every message is stored once,
    /// each new ticket gets its own number, and the mailbox checkpoint ends at the highest UID.
    #[test]
    fn concurrent_writers_store_each_message_once_and_mint_distinct_numbers() {
        testing::for_each_shared_backend(|open| {
            const WRITERS: usize = 3;
            const MESSAGES: u32 = 30;
            std::thread::scope(|scope| {
                for w in 0..WRITERS {
                    scope.spawn(move || {
                        let mut s = open();
                        // Every writer commits every message, in a different order.
                        let mut order: Vec<u32> = (1..=MESSAGES).collect();
                        order.rotate_left(w * 7);
                        for i in order {
                            let mut m = msg(
                                format!("message {i}").as_bytes(),
                                Disposition::NewThread {
                                    kind: Kind::Ticket,
                                    title: format!("t{i}"),
                                    participant: Some(NewParticipant {
                                        org: format!("org{i}"),
                                        role: "other".into(),
                                        address: format!("p{i}@x.test"),
                                    }),
                                },
                            );
                            if let MessageSource::Imap { uid, .. } = &mut m.source {
                                *uid = i;
                            }
                            s.commit_message(&m).unwrap();
                        }
                    });
                }
            });
            let s = open();
            let threads = s.list_threads(Some(Kind::Ticket)).unwrap();
            assert_eq!(threads.len(), MESSAGES as usize);
            let mut numbers: Vec<u64> = threads
                .iter()
                .map(|t| t.thread.number.ticket_seq().unwrap())
                .collect();
            numbers.sort_unstable();
            assert_eq!(numbers, (1..=u64::from(MESSAGES)).collect::<Vec<_>>());
            assert!(
                threads
                    .iter()
                    .all(|t| t.messages == 1 && t.participants == 1)
            );
            let cp = s.mailbox_checkpoint("acct", "INBOX").unwrap().unwrap();
            assert_eq!(cp.last_uid, MESSAGES);
        });
    }

    #[test]
    fn copy_moves_every_table_both_ways_and_verifies() {
        let mut source = Store::open_in_memory().unwrap();
        let now = Utc::now();
        let r = source
            .create_thread(Kind::Report, Some(&n("VRF#25-11-BKQTZ")), "r", now)
            .unwrap();
        source
            .add_participant(r.id, "Rita", "reporter", "rita@x.test", Some("abcd"))
            .unwrap();
        // The case gets a higher id than the report that points at it: foreign keys must
        // not depend on the order rows are copied in.
        source
            .promote(&n("VRF#25-11-BKQTZ"), Some(&n("VU#123456")), now)
            .unwrap();
        source
            .commit_message(&msg(b"\x00binary\xffbytes", Disposition::Triage))
            .unwrap();
        for i in 0..45 {
            source
                .commit_message(&msg(format!("m{i}").as_bytes(), Disposition::Quarantine))
                .unwrap();
        }
        source
            .add_signature_cache_entries(&[vec![1; 32], vec![2; 32]])
            .unwrap();
        source
            .merge_cert("ABCD", |_| {
                Ok(StoredCert {
                    fingerprint: "ABCD".into(),
                    public_cert: vec![0x99, 1, 2],
                    user_ids: vec!["Rita <rita@x.test>".into()],
                    imported_at: time_text(now),
                })
            })
            .unwrap();
        source
            .commit_message(&NewMessage {
                sender: Some("new@x.test".into()),
                offered_keys: vec![b"\x99offered key".to_vec()],
                ..msg(
                    b"a new report",
                    Disposition::NewThread {
                        kind: Kind::Report,
                        title: "new".into(),
                        participant: None,
                    },
                )
            })
            .unwrap();
        let case = source.thread(&n("VU#123456")).unwrap().unwrap();
        let notice = outbox::NewNotice {
            thread_id: case.id,
            sender: "cert@x.test",
            in_reply_to: None,
            automatic: false,
            date_unix: 0,
            signer_fingerprint: "EF",
            inner: b"inner",
            relay_of: None,
        };
        let ids = source
            .enqueue_notice(
                &notice,
                &[outbox::NewCopy::Sealed {
                    kind: outbox::CopyKind::Notice,
                    address: "rita@x.test",
                    org: "Rita",
                    message_id: "<1@x.test>",
                    raw: b"sealed",
                    key_fingerprint: Some("ABCD"),
                }],
                now,
            )
            .unwrap();
        source
            .claim_due_copy("copier", now, chrono::Duration::seconds(60))
            .unwrap();
        source
            .record_attempt(
                ids[0],
                "copier",
                now,
                &outbox::AttemptOutcome::Accepted,
                "250 ok",
            )
            .unwrap();
        source
            .add_token("ann", &"ab".repeat(32), false, now)
            .unwrap();
        source
            .record_audit(&NewAudit {
                at: now,
                actor: "cli:ann".into(),
                action: "open".into(),
                thread: Some(n("VU#123456")),
                message_ref: Some(1),
                detail: "opened".into(),
            })
            .unwrap();
        source
            .take_mailbox_lease(
                "acct",
                "INBOX",
                "me",
                now,
                std::time::Duration::from_secs(5),
            )
            .unwrap();
        source
            .record_failed_attempt("maildir:1.poison", "unreadable")
            .unwrap();
        source
            .record_key_change(&NewKeyChange {
                address: "rita@x.test",
                fingerprint: "EF01",
                previous: &["ABCD".to_string()],
                source: "wkd",
                status: "pending",
                at: now,
            })
            .unwrap();
        // The directory (orgs, groups, contacts, keys), a vendor's claim, a relay owed, a
        // reminder.
        let rita = source.org_by_name("Rita").unwrap().unwrap();
        source
            .change_org_groups(rita.id, &["networking".to_string()], &[])
            .unwrap();
        let posted = source
            .commit_message(&NewMessage {
                claims: vec![NewClaim {
                    org_id: rita.id,
                    status: Some("affected".into()),
                    statement: Some("we are affected".into()),
                    signed_part: Some(b"signed bytes".to_vec()),
                    sealed: false,
                    signer: None,
                    signed_by_org: false,
                    counted: true,
                    reason: "no signature required".into(),
                }],
                relay_owed: true,
                ..msg(b"a claim", Disposition::Post { thread_id: case.id })
            })
            .unwrap();
        let mut writer = source
            .begin_notice(
                &outbox::NewNotice {
                    relay_of: Some(posted.id),
                    ..notice.clone()
                },
                now,
            )
            .unwrap();
        let reminder = writer
            .add(&outbox::NewCopy::Held {
                address: "rita@x.test",
                org: "Rita",
                reason: "no key",
            })
            .unwrap();
        writer
            .record_reminder(rita.id, "rita@x.test", reminder, now)
            .unwrap();
        writer.commit().unwrap();

        let mut pg = testing::postgres_store();
        let there = copy_store(&mut source, &mut pg).unwrap();
        let messages = there.tables.iter().find(|t| t.table == "messages").unwrap();
        assert_eq!(messages.rows, 48);
        // Every table had rows to copy (a table someone adds should get a row above).
        assert!(there.tables.iter().all(|t| t.rows > 0), "{there:?}");
        // The copy is usable: new rows get new ids, and what was copied reads back the same.
        let t = pg.create_thread(Kind::Ticket, None, "after", now).unwrap();
        assert!(t.id > 3);
        assert_eq!(pg.raw_message(1).unwrap(), b"\x00binary\xffbytes");
        assert_eq!(
            pg.resolve_thread(&n("VRF#25-11-BKQTZ"))
                .unwrap()
                .unwrap()
                .number
                .as_str(),
            "VU#123456"
        );

        // A target that is not empty is refused, and nothing is added to it.
        let err = copy_store(&mut source, &mut pg).unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");

        // And back into a new SQLite store: the same digests.
        let mut back = Store::open_in_memory().unwrap();
        let home = copy_store(&mut pg, &mut back).unwrap();
        assert_eq!(
            home.tables.iter().find(|t| t.table == "messages"),
            there.tables.iter().find(|t| t.table == "messages")
        );
        assert_eq!(
            back.thread_messages(back.thread(&n("VU#123456")).unwrap().unwrap().id)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(back.list_threads(None).unwrap().len(), 4);
        assert_eq!(
            back.claims(case.id, rita.id).unwrap()[0]
                .statement
                .as_deref(),
            Some("we are affected")
        );
        assert_eq!(back.owed_relays().unwrap().len(), 1);
        assert_eq!(
            back.org_by_name("rita").unwrap().unwrap().groups,
            ["networking"]
        );
        assert_eq!(back.outbox_attempts(ids[0]).unwrap()[0].reply, "250 ok");
    }
}
