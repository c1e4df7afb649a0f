//! The store: everything casegate knows, in one SQLite file (WAL, foreign keys on).
//!
//! This module is the only place that speaks SQL. Its API is shaped so a PostgreSQL backend can
//! implement the same calls later: every write that belongs together is one method and one
//! transaction (see [`Store::commit_message`]). It knows nothing of IMAP, SMTP or OpenPGP.

pub mod audit;
mod mailbox;
pub mod orgs;
pub mod outbox;
mod pages;
pub mod relays;
mod schema;
pub mod tokens;
pub mod trust;
pub mod vendors;

pub use audit::{AuditEntry, NewAudit};
pub use mailbox::{Checkpoint, MailboxSummary};
pub use orgs::{Org, OrgContact, OrgThread};
pub use relays::OwedRelay;
pub use tokens::StoredToken;
pub use trust::{KeyChange, NewKeyChange};
pub use vendors::{Claim, NewClaim, ParticipantFollowup};

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{
    Connection, OptionalExtension, Savepoint, Transaction, TransactionBehavior, params,
};

use crate::tracking::{self, Kind, TrackingNumber};

/// Why a store operation failed. `Conflict` and `NotFound` are the user's to fix; `Sqlite` is ours.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
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

/// One write: at the top level a transaction that takes the write lock when it begins
/// (`BEGIN IMMEDIATE`, so a busy writer elsewhere makes it wait, never fail half-way), and
/// inside [`Store::atomically`] a savepoint of the enclosing transaction, so store methods nest.
/// Dropped without [`WriteTx::commit`], it undoes everything it wrote.
pub(crate) enum WriteTx<'c> {
    Top(Transaction<'c>),
    Nested(Savepoint<'c>),
}

impl<'c> WriteTx<'c> {
    pub(crate) fn begin(conn: &'c mut Connection) -> Result<WriteTx<'c>, StoreError> {
        Ok(if conn.is_autocommit() {
            // Immediate: the connection's transaction behavior (see `Store::prepare`).
            WriteTx::Top(conn.transaction()?)
        } else {
            WriteTx::Nested(conn.savepoint()?)
        })
    }

    pub(crate) fn commit(self) -> Result<(), StoreError> {
        match self {
            WriteTx::Top(t) => t.commit()?,
            WriteTx::Nested(s) => s.commit()?,
        }
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            WriteTx::Top(t) => t,
            WriteTx::Nested(s) => s,
        }
    }
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
        let mut m = NewMessage::inbound(&[], source, received_at, disposition);
        m.sha256 = hex::encode(sha2::Sha256::digest(raw));
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
    conn: Connection,
}

/// WAL size (pages) at which a commit also checkpoints: SQLite's default.
const AUTOCHECKPOINT_PAGES: i64 = 1000;

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
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
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Store::prepare(conn)
    }

    /// Copies what the write-ahead log holds into the main file, without waiting for readers
    /// or writers (a passive checkpoint). Returns (WAL frames, frames copied). Run by the daemon
    /// now and then, so that large commits (a notice to many contacts) need not do it.
    pub fn checkpoint(&self) -> Result<(i64, i64), StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })?)
    }

    /// A throwaway store for tests and `route --dry-run`.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::prepare(Connection::open_in_memory()?)
    }

    fn prepare(mut conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Several processes share the file (the daemon, the CLI): a writer waits for another
        // up to 10 s. Every transaction here writes, and takes the write lock when it begins
        // (BEGIN IMMEDIATE): a transaction that read first and asked for the lock later could
        // fail at once with "database is locked" when another writer committed in between,
        // since SQLite cannot wait its way out of that.
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.set_transaction_behavior(TransactionBehavior::Immediate);
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = schema::MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::Invalid(format!(
                "the store has schema version {version}, newer than this casegate knows ({known}); run a newer casegate"
            )));
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = WriteTx::begin(&mut self.conn)?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The keys generation: bumped in the same transaction as every change of a stored
    /// certificate or of a key bound to a contact. One cheap read; a process that keeps keys in
    /// memory compares it before each message to see another process's changes.
    pub fn keys_generation(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT value FROM generations WHERE name = 'keys'",
            [],
            |r| r.get(0),
        )?)
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Runs `f` as ONE transaction: every store call inside commits together, or none does
    /// when `f` fails (or panics). Inside it the store's own writes ([`WriteTx`]) are savepoints, so they nest; this
    /// is how an operation writes its audit record together with the change it records.
    ///
    /// Not for [`Store::begin_notice`], which starts a transaction of its own.
    pub fn atomically<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, E>,
    ) -> Result<T, E> {
        let outermost = self.conn.is_autocommit();
        // The outermost one takes the write lock at once, as every write here does (WriteTx).
        let begin = if outermost {
            "BEGIN IMMEDIATE; SAVEPOINT atomically"
        } else {
            "SAVEPOINT atomically"
        };
        self.conn.execute_batch(begin).map_err(StoreError::from)?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        let undo = |conn: &Connection| {
            // The outermost one ends the transaction; a nested one undoes only its own part.
            let _ = if outermost {
                conn.execute_batch("ROLLBACK")
            } else {
                conn.execute_batch("ROLLBACK TO atomically; RELEASE atomically")
            };
        };
        match result {
            Ok(Ok(value)) => match self.conn.execute_batch(if outermost {
                "RELEASE atomically; COMMIT"
            } else {
                "RELEASE atomically"
            }) {
                Ok(()) => Ok(value),
                Err(e) => {
                    undo(&self.conn);
                    Err(StoreError::from(e).into())
                }
            },
            Ok(Err(e)) => {
                undo(&self.conn);
                Err(e)
            }
            Err(panic) => {
                undo(&self.conn);
                std::panic::resume_unwind(panic)
            }
        }
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
        let tx = WriteTx::begin(&mut self.conn)?;
        let id = create_thread_tx(&tx, kind, number, title, now)?;
        let t = thread_by_id_tx(&tx, id)?;
        tx.commit()?;
        Ok(t)
    }

    /// The thread whose own number this is (a promoted report is returned as the report).
    pub fn thread(&self, number: &TrackingNumber) -> Result<Option<Thread>, StoreError> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM threads WHERE number = ?1",
                [number.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => Ok(Some(thread_by_id_tx(&self.conn, id)?)),
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
        thread_by_id_tx(&self.conn, id)
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
        let total: i64 = self.conn.query_row(
            "SELECT count(*) FROM threads t WHERE (t.kind = ?1 OR ?1 IS NULL)",
            [kind],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT t.id,
                    (SELECT count(*) FROM participants p WHERE p.thread_id = t.id),
                    (SELECT count(*) FROM messages m WHERE m.thread_id = t.id),
                    (SELECT max(received_at) FROM messages m WHERE m.thread_id = t.id)
             FROM threads t WHERE (t.kind = ?1 OR ?1 IS NULL) ORDER BY t.created_at, t.id
             LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt
            .query_map(
                params![
                    kind,
                    i64::try_from(limit).unwrap_or(i64::MAX),
                    i64::try_from(offset).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
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
        let (participants, messages, last) = self.conn.query_row(
            "SELECT (SELECT count(*) FROM participants p WHERE p.thread_id = ?1),
                    (SELECT count(*) FROM messages m WHERE m.thread_id = ?1),
                    (SELECT max(received_at) FROM messages m WHERE m.thread_id = ?1)",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        self.summarize_thread(id, participants, messages, last)
    }

    fn summarize_thread(
        &self,
        id: i64,
        participants: i64,
        messages: i64,
        last: Option<String>,
    ) -> Result<ThreadSummary, StoreError> {
        let thread = thread_by_id_tx(&self.conn, id)?;
        let (first_sent, last_sent): (Option<String>, Option<String>) = self.conn.query_row(
            "SELECT min(created_at), max(created_at) FROM sent_message_ids
             WHERE thread_id = ?1 OR thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1)",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let waiting_since: Option<String> = self.conn.query_row(
            "SELECT min(received_at) FROM messages
             WHERE (thread_id = ?1 OR thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1))
               AND direction = 'in' AND automatic = 0 AND outcome = 'routed'
               AND received_at > coalesce(?2, '')",
            params![id, last_sent],
            |r| r.get(0),
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
        let tx = WriteTx::begin(&mut self.conn)?;
        let (report_id, kind, title, promoted): (i64, String, String, Option<i64>) = tx
            .query_row(
                "SELECT id, kind, title, promoted_to FROM threads WHERE number = ?1",
                [report.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "no thread {report}; see `casegate list --kind report`"
                ))
            })?;
        if kind != "report" {
            return Err(StoreError::Invalid(format!(
                "{report} is a {kind}, not a report; only reports (VRF#) can be promoted"
            )));
        }
        if let Some(case_id) = promoted {
            let case = thread_by_id_tx(&tx, case_id)?;
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
        let case_id = create_thread_tx(&tx, Kind::Case, to, &title, now)?;
        tx.execute(
            "UPDATE threads SET promoted_to = ?1, status = 'promoted' WHERE id = ?2",
            params![case_id, report_id],
        )?;
        copy_participants_tx(&tx, report_id, case_id)?;
        let case = thread_by_id_tx(&tx, case_id)?;
        tx.commit()?;
        Ok(case)
    }

    /// Sets (or clears) a thread's planned publication date (RFC 3339 or YYYY-MM-DD).
    pub fn set_publication_date(
        &mut self,
        thread_id: i64,
        date: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE threads SET publication_date = ?1 WHERE id = ?2",
            params![date, thread_id],
        )?;
        Ok(())
    }

    pub fn set_require_signed_statements(
        &mut self,
        thread_id: i64,
        on: bool,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE threads SET require_signed_statements = ?1 WHERE id = ?2",
            params![on, thread_id],
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
        let tx = WriteTx::begin(&mut self.conn)?;
        let org_id = orgs::org_named_tx(&tx, org)?;
        let contact_id = add_contact_tx(&tx, thread_id, org_id, role, address)?;
        if let Some(fpr) = key_fingerprint {
            bind_key_tx(&tx, contact_id, fpr)?;
        }
        tx.commit()?;
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
        let tx = WriteTx::begin(&mut self.conn)?;
        let contact: Option<i64> = tx
            .query_row(
                "SELECT c.id FROM contacts c JOIN participants p ON p.id = c.participant_id
                 WHERE p.thread_id = ?1 AND c.address = ?2",
                params![thread_id, address.trim().to_lowercase()],
                |r| r.get(0),
            )
            .optional()?;
        let bound = match contact {
            Some(id) => {
                bind_key_tx(&tx, id, fingerprint)?;
                true
            }
            None => false,
        };
        tx.commit()?;
        Ok(bound)
    }

    /// Every contact of every participant of a thread, with the key fingerprints bound to
    /// them in the directory (oldest binding first).
    pub fn contacts(&self, thread_id: i64) -> Result<Vec<Contact>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT c.id, p.id, p.org, p.role, c.address, COALESCE(p.org_id, 0),
                    COALESCE(c.org_contact_id, 0)
             FROM contacts c JOIN participants p ON p.id = c.participant_id
             WHERE p.thread_id = ?1 ORDER BY p.org, c.address",
        )?;
        let mut contacts = stmt
            .query_map([thread_id], |r| {
                Ok(Contact {
                    contact_id: r.get(0)?,
                    participant_id: r.get(1)?,
                    org: r.get(2)?,
                    role: r.get(3)?,
                    address: r.get(4)?,
                    org_id: r.get(5)?,
                    org_contact_id: r.get(6)?,
                    key_fingerprints: Vec::new(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for c in &mut contacts {
            c.key_fingerprints = orgs::contact_keys_tx(&self.conn, c.org_contact_id)?;
        }
        Ok(contacts)
    }

    /// Whether this address is a contact of any thread (a "known participant").
    pub fn is_known_address(&self, address: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM contacts WHERE address = ?1 LIMIT 1",
                [address.to_lowercase()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Every thread in which `address` is a contact: (thread id, organisation, role).
    pub fn participations(&self, address: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT p.thread_id, p.org, p.role FROM contacts c
             JOIN participants p ON p.id = c.participant_id
             WHERE c.address = ?1 ORDER BY p.thread_id",
        )?;
        let rows = stmt
            .query_map([address.to_lowercase()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    // ----- certificates -----

    /// Stores a public certificate merged with the copy already kept under the same
    /// fingerprint, and bumps the keys generation, in ONE write transaction. `merge` gets the
    /// stored copy (`None` for a new certificate) and returns what to keep: the caller does the
    /// OpenPGP merging (`keyring::import_certs`); holding the write lock from the read to the
    /// write means two importers at once (the CLI and the daemon) cannot lose each other's
    /// packets. Returns what was stored.
    pub fn merge_cert(
        &mut self,
        fingerprint: &str,
        merge: impl FnOnce(Option<&StoredCert>) -> Result<StoredCert, StoreError>,
    ) -> Result<StoredCert, StoreError> {
        let fingerprint = fingerprint.trim().to_ascii_uppercase();
        let tx = WriteTx::begin(&mut self.conn)?;
        let stored = cert_tx(&tx, &fingerprint)?;
        let cert = merge(stored.as_ref())?;
        if cert.fingerprint != fingerprint {
            return Err(StoreError::Invalid(format!(
                "certificate {} cannot be stored as {fingerprint}",
                cert.fingerprint
            )));
        }
        let uids = serde_json::to_string(&cert.user_ids)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        tx.execute(
            "INSERT INTO certs (fingerprint, public_cert, user_ids, imported_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (fingerprint) DO UPDATE SET public_cert = excluded.public_cert,
                 user_ids = excluded.user_ids, imported_at = excluded.imported_at",
            params![cert.fingerprint, cert.public_cert, uids, cert.imported_at],
        )?;
        bump_keys_tx(&tx)?;
        tx.commit()?;
        Ok(cert)
    }

    pub fn cert(&self, fingerprint: &str) -> Result<Option<StoredCert>, StoreError> {
        // Fingerprints are stored as upper-case hex (the primary key).
        cert_tx(&self.conn, &fingerprint.trim().to_ascii_uppercase())
    }

    pub fn certs(&self) -> Result<Vec<StoredCert>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT fingerprint, public_cert, user_ids, imported_at FROM certs ORDER BY imported_at, fingerprint",
        )?;
        let rows = stmt
            .query_map([], stored_cert)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every signature-verification cache entry kept (see `signature_cache.rs`).
    pub fn signature_cache_entries(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT entry FROM signature_cache")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<Vec<u8>>, _>>()?;
        Ok(rows)
    }

    /// Keeps signature-verification cache entries (already kept ones are ignored).
    pub fn add_signature_cache_entries(&mut self, entries: &[Vec<u8>]) -> Result<(), StoreError> {
        let tx = WriteTx::begin(&mut self.conn)?;
        {
            let mut stmt =
                tx.prepare("INSERT OR IGNORE INTO signature_cache (entry) VALUES (?1)")?;
            for e in entries {
                stmt.execute([e])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    // ----- messages -----

    /// The thread of the first of `message_ids` that is a Message-ID we sent.
    pub fn thread_of_sent(
        &self,
        message_ids: &[String],
    ) -> Result<Option<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT thread_id FROM sent_message_ids WHERE message_id = ?1")?;
        for id in message_ids {
            if let Some(t) = stmt.query_row([id], |r| r.get::<_, i64>(0)).optional()? {
                return Ok(Some((id.clone(), t)));
            }
        }
        Ok(None)
    }

    /// Records a Message-ID we sent, so replies to it route to its thread.
    pub fn record_sent(&mut self, message_id: &str, thread_id: i64) -> Result<(), StoreError> {
        let tx = WriteTx::begin(&mut self.conn)?;
        record_sent_tx(&tx, message_id, thread_id)?;
        tx.commit()?;
        Ok(())
    }

    /// Whether a byte-identical message is already stored: (row id, its thread).
    pub fn find_duplicate(
        &self,
        sha256: &str,
    ) -> Result<Option<(i64, Option<TrackingNumber>)>, StoreError> {
        let row: Option<(i64, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT id, thread_id FROM messages WHERE sha256 = ?1",
                [sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((id, thread)) => {
                let number = match thread {
                    Some(t) => Some(thread_by_id_tx(&self.conn, t)?.number),
                    None => None,
                };
                Ok(Some((id, number)))
            }
        }
    }

    /// Stores one message and its decision in ONE transaction: the raw bytes, the routing
    /// outcome, a new thread if one is opened, the triage or quarantine entry, and for IMAP the
    /// mailbox checkpoint. After a crash the message is either fully stored or not at all.
    pub fn commit_message(&mut self, m: &NewMessage) -> Result<Committed, StoreError> {
        let tx = WriteTx::begin(&mut self.conn)?;
        let existing: Option<(i64, Option<i64>)> = tx
            .query_row(
                "SELECT id, thread_id FROM messages WHERE sha256 = ?1",
                [&m.sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let committed = if let Some((id, thread)) = existing {
            let thread = match thread {
                Some(t) => Some(thread_by_id_tx(&tx, t)?.number),
                None => None,
            };
            Committed {
                id,
                thread,
                duplicate: true,
            }
        } else {
            let now = time_text(m.received_at);
            let (thread_id, outcome) = open_disposition_tx(&tx, m)?;
            tx.execute(
                "INSERT INTO messages (sha256, message_id, raw, direction, received_at, date_header,
                    sender, subject, thread_id, outcome, reason, encrypted, encryption_note,
                    signature, signer, signature_reason, automatic, flags, source, raw_size,
                    sender_auth, sender_auth_detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                    ?21, ?22)",
                params![
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
            let id = tx.last_insert_rowid();
            file_disposition_tx(&tx, m, id, thread_id, &now)?;
            let thread = match thread_id {
                Some(t) => Some(thread_by_id_tx(&tx, t)?.number),
                None => None,
            };
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
            mailbox::advance(&tx, account, mailbox, *uidvalidity, *uid)?;
        }
        if let Some(key) = m.source.attempt_key() {
            tx.execute("DELETE FROM inbound_attempts WHERE source_key = ?1", [&key])?;
        }
        tx.commit()?;
        Ok(committed)
    }

    /// Counts one more try at storing the message under `key` (see
    /// [`MessageSource::attempt_key`]) before it is read; returns (tries so far including this
    /// one, the last recorded failure). The row goes in the message's own commit.
    ///
    /// Durable against a crash of the process (the point: a message that aborts casegate must
    /// not do so forever), not against a power loss: written without an fsync of its own, so
    /// it costs no second disk flush per message; the message's commit then flushes it too.
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
            .conn
            .query_row(
                "SELECT attempts, last_error FROM inbound_attempts WHERE source_key = ?1",
                [key],
                |r| Ok((r.get::<_, u32>(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, None)))
    }

    fn count_attempt(
        &mut self,
        key: &str,
        error: Option<&str>,
    ) -> Result<(u32, Option<String>), StoreError> {
        // Inside a caller's transaction the pragma cannot change; the commit then flushes it.
        let relax = self.conn.is_autocommit();
        if relax {
            self.conn.pragma_update(None, "synchronous", "OFF")?;
        }
        let counted = self.conn.query_row(
            "INSERT INTO inbound_attempts (source_key, attempts, last_error, updated_at)
             VALUES (?1, 1, ?2, ?3)
             ON CONFLICT (source_key) DO UPDATE SET
               attempts = inbound_attempts.attempts + 1,
               last_error = COALESCE(excluded.last_error, inbound_attempts.last_error),
               updated_at = excluded.updated_at
             RETURNING attempts, last_error",
            params![key, error, now_text()],
            |r| Ok((r.get::<_, u32>(0)?, r.get(1)?)),
        );
        let restored = if relax {
            self.conn.pragma_update(None, "synchronous", "FULL")
        } else {
            Ok(())
        };
        let counted = counted?;
        restored?;
        Ok(counted)
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
        let tx = WriteTx::begin(&mut self.conn)?;
        let quarantined: Option<String> = tx
            .query_row(
                "SELECT m.sha256 FROM quarantine q JOIN messages m ON m.id = q.message_ref
                 WHERE q.message_ref = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
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
            tx.execute(
                "UPDATE quarantine SET reason = ?2 WHERE message_ref = ?1",
                params![id, m.reason],
            )?;
        } else {
            tx.execute("DELETE FROM quarantine WHERE message_ref = ?1", [id])?;
        }
        let (thread_id, outcome) = open_disposition_tx(&tx, m)?;
        tx.execute(
            "UPDATE messages SET message_id = ?2, date_header = ?3, sender = ?4, subject = ?5,
                 thread_id = ?6, outcome = ?7, reason = ?8, encrypted = ?9, encryption_note = ?10,
                 signature = ?11, signer = ?12, signature_reason = ?13, automatic = ?14, flags = ?15,
                 sender_auth = ?16, sender_auth_detail = ?17
             WHERE id = ?1",
            params![
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
            file_disposition_tx(&tx, m, id, thread_id, &now)?;
        }
        let thread = match thread_id {
            Some(t) => Some(thread_by_id_tx(&tx, t)?.number),
            None => None,
        };
        tx.commit()?;
        Ok(Committed {
            id,
            thread,
            duplicate: false,
        })
    }

    /// New reports whose acknowledgment is still to be queued: (thread id, message row id).
    pub fn pending_acks(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT thread_id, message_ref FROM pending_acks ORDER BY created_at, thread_id",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The acknowledgment of this report is queued (or given up): forget the to-do.
    pub fn clear_pending_ack(&mut self, thread_id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM pending_acks WHERE thread_id = ?1", [thread_id])?;
        Ok(())
    }

    /// One stored message by row id.
    pub fn message_record(&self, id: i64) -> Result<MessageRecord, StoreError> {
        self.message_records("WHERE m.id = ?1", params![id])?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("no message {id}")))
    }

    /// Messages of a thread (and of the reports promoted into it), oldest first.
    pub fn thread_messages(&self, thread_id: i64) -> Result<Vec<MessageRecord>, StoreError> {
        self.message_records(
            "WHERE m.thread_id = ?1 OR m.thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1)
             ORDER BY m.received_at, m.id",
            params![thread_id],
        )
    }

    /// Messages waiting in triage (unassigned first), oldest first.
    pub fn triage(&self, include_assigned: bool) -> Result<Vec<MessageRecord>, StoreError> {
        self.message_records(
            "JOIN triage tr ON tr.message_ref = m.id WHERE (?1 OR tr.assigned_at IS NULL)
             ORDER BY m.received_at, m.id",
            params![include_assigned],
        )
    }

    pub fn quarantined(&self) -> Result<Vec<MessageRecord>, StoreError> {
        self.message_records(
            "JOIN quarantine q ON q.message_ref = m.id ORDER BY m.received_at, m.id",
            params![],
        )
    }

    /// The raw bytes of a stored message, exactly as received.
    pub fn raw_message(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        self.conn
            .query_row("SELECT raw FROM messages WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
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
            params![prefix, upper, i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// Stored messages with this Message-ID (newest first).
    pub fn messages_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.message_records(
            "WHERE m.message_id = ?1 ORDER BY m.id DESC",
            params![message_id],
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
        let tx = WriteTx::begin(&mut self.conn)?;
        let n = tx.execute(
            "UPDATE triage SET assigned_at = ?1, assigned_by = ?2, assigned_thread = ?3
             WHERE message_ref = ?4 AND assigned_at IS NULL",
            params![time_text(now), by, thread_id, message_ref],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(
                "that message is not waiting in triage; see `casegate triage list`".into(),
            ));
        }
        tx.execute(
            "UPDATE messages SET thread_id = ?1, outcome = 'routed',
                reason = reason || ' (assigned by ' || ?2 || ')' WHERE id = ?3",
            params![thread_id, by, message_ref],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn message_records(
        &self,
        tail: &str,
        args: &[&dyn rusqlite::ToSql],
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
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt
            .query_map(args, |r| {
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
                    sender_auth: r.get(25)?,
                    sender_auth_detail: r.get(26)?,
                    automatic: r.get(16)?,
                    flags: r.get(17)?,
                    source: r.get(18)?,
                    triage_reason: r.get(19)?,
                    assigned_by: r.get(20)?,
                    assigned_at: r.get(21)?,
                    raw_size: r.get(24)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
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

// ----- transaction-level building blocks (shared with the mailbox and outbox submodules) -----

fn thread_by_id_tx(conn: &Connection, id: i64) -> Result<Thread, StoreError> {
    let row = conn
        .query_row(
            "SELECT t.number, t.kind, t.title, t.status, t.created_at,
                    (SELECT number FROM threads c WHERE c.id = t.promoted_to),
                    t.require_signed_statements, t.publication_date, t.discussion
             FROM threads t WHERE t.id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, bool>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, String>(8)?,
                ))
            },
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("no thread with id {id}")))?;
    let number = TrackingNumber::parse(&row.0)
        .map_err(|e| StoreError::Invalid(format!("stored thread number {:?}: {e}", row.0)))?;
    let kind = number.kind();
    Ok(Thread {
        id,
        number,
        kind,
        title: row.2,
        status: row.3,
        created_at: time_text(parse_time(&row.4)),
        promoted_to: row.5.and_then(|n| TrackingNumber::parse(&n).ok()),
        require_signed_statements: row.6,
        publication_date: row.7,
        discussion: row.8,
    })
}

/// The thread a message goes to (opening a new one when the decision says so) and its
/// `outcome` column.
fn open_disposition_tx(
    tx: &Connection,
    m: &NewMessage,
) -> Result<(Option<i64>, &'static str), StoreError> {
    Ok(match &m.disposition {
        Disposition::Post { thread_id } => (Some(*thread_id), "routed"),
        Disposition::NewThread {
            kind,
            title,
            participant,
        } => {
            let id = create_thread_tx(tx, *kind, None, title, m.received_at)?;
            if let Some(p) = participant {
                let org_id = orgs::sender_org_tx(tx, &p.org, &p.address)?;
                add_contact_tx(tx, id, org_id, &p.role, &p.address)?;
            }
            (Some(id), "routed")
        }
        Disposition::Triage => (None, "triage"),
        Disposition::Quarantine => (None, "quarantine"),
    })
}

/// The rows that come with a stored message's decision: its triage or quarantine entry, and
/// the acknowledgment a new report from a person is owed (remembered durably, paid later).
fn file_disposition_tx(
    tx: &Connection,
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
        tx.execute(
            "INSERT INTO pending_acks (thread_id, message_ref, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (thread_id) DO NOTHING",
            params![thread_id, id, now],
        )?;
    }
    if let (Disposition::Post { .. } | Disposition::NewThread { .. }, Some(thread_id)) =
        (&m.disposition, thread_id)
    {
        vendors::insert_claims_tx(tx, thread_id, id, m)?;
        if m.relay_owed && m.inbound {
            relays::owe_relay_tx(tx, id, thread_id, m.received_at)?;
        }
    }
    match m.disposition {
        Disposition::Triage => {
            tx.execute(
                "INSERT INTO triage (message_ref, reason, created_at) VALUES (?1, ?2, ?3)",
                params![id, m.reason, now],
            )?;
        }
        Disposition::Quarantine => {
            tx.execute(
                "INSERT INTO quarantine (message_ref, reason, created_at) VALUES (?1, ?2, ?3)",
                params![id, m.reason, now],
            )?;
        }
        _ => {}
    }
    Ok(())
}

fn number_taken(conn: &Connection, n: &TrackingNumber) -> bool {
    // An error here counts as taken: minting then tries another number, never a duplicate.
    conn.query_row(
        "SELECT 1 FROM threads WHERE number = ?1",
        [n.as_str()],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .unwrap_or(true)
}

fn create_thread_tx(
    tx: &Connection,
    kind: Kind,
    number: Option<&TrackingNumber>,
    title: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let number = match number {
        Some(n) => {
            if n.kind() != kind {
                return Err(StoreError::Invalid(format!(
                    "{n} is a {} number, not a {kind} number",
                    n.kind()
                )));
            }
            if number_taken(tx, n) {
                return Err(StoreError::Conflict(format!(
                    "{n} already exists; see `casegate show {n}`"
                )));
            }
            n.clone()
        }
        None => {
            let mut rng = rand::rng();
            let minted = match kind {
                Kind::Case => tracking::mint_case(&mut rng, |n| number_taken(tx, n)),
                Kind::Report => tracking::mint_report(now, &mut rng, |n| number_taken(tx, n)),
                Kind::Ticket => {
                    let max: Option<i64> =
                        tx.query_row("SELECT max(ticket_seq) FROM threads", [], |r| r.get(0))?;
                    tracking::ticket(max.unwrap_or(0) as u64 + 1)
                }
            };
            minted.map_err(|e| StoreError::Invalid(e.to_string()))?
        }
    };
    tx.execute(
        "INSERT INTO threads (number, kind, ticket_seq, title, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            number.as_str(),
            kind.as_str(),
            number.ticket_seq().map(|s| s as i64),
            title,
            time_text(now)
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Makes `address` a contact of organization `org_id` (in the directory) and of its
/// participant in the thread (created with `role` when missing). Returns the thread contact.
fn add_contact_tx(
    tx: &Connection,
    thread_id: i64,
    org_id: i64,
    role: &str,
    address: &str,
) -> Result<i64, StoreError> {
    let address = orgs::normalize_address(address)?;
    let org_contact = orgs::org_contact_tx(tx, org_id, &address, &now_text())?;
    let participant_id = orgs::participant_tx(tx, thread_id, org_id, role)?;
    tx.execute(
        "INSERT INTO contacts (participant_id, address, org_contact_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (participant_id, address) DO NOTHING",
        params![participant_id, address, org_contact],
    )?;
    // A contact row from before the directory is linked now.
    tx.execute(
        "UPDATE contacts SET org_contact_id = ?3
         WHERE participant_id = ?1 AND address = ?2 AND org_contact_id IS NULL",
        params![participant_id, address, org_contact],
    )?;
    Ok(tx.query_row(
        "SELECT id FROM contacts WHERE participant_id = ?1 AND address = ?2",
        params![participant_id, address],
        |r| r.get(0),
    )?)
}

/// Binds a key to the directory contact behind thread contact `contact_id`, and to its
/// organization (bumping the keys generation when either is new); `true` when the contact's
/// binding is new.
fn bind_key_tx(tx: &Connection, contact_id: i64, fingerprint: &str) -> Result<bool, StoreError> {
    let (org_id, org_contact): (Option<i64>, Option<i64>) = tx.query_row(
        "SELECT p.org_id, c.org_contact_id FROM contacts c
         JOIN participants p ON p.id = c.participant_id WHERE c.id = ?1",
        [contact_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(org_id), Some(org_contact)) = (org_id, org_contact) else {
        return Err(StoreError::Invalid(format!(
            "internal: contact {contact_id} has no organization"
        )));
    };
    let fpr = crate::keyring::normalize_fingerprint(fingerprint);
    orgs::org_key_tx(tx, org_id, &fpr)?;
    orgs::contact_key_tx(tx, org_contact, &fpr)
}

/// See [`Store::keys_generation`].
pub(super) fn bump_keys_tx(tx: &Connection) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE generations SET value = value + 1 WHERE name = 'keys'",
        [],
    )?;
    Ok(())
}

fn cert_tx(conn: &Connection, fingerprint: &str) -> Result<Option<StoredCert>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT fingerprint, public_cert, user_ids, imported_at FROM certs WHERE fingerprint = ?1",
            [fingerprint],
            stored_cert,
        )
        .optional()?)
}

/// A `certs` row (fingerprint, public_cert, user_ids, imported_at).
fn stored_cert(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredCert> {
    let uids: String = r.get(2)?;
    Ok(StoredCert {
        fingerprint: r.get(0)?,
        public_cert: r.get(1)?,
        user_ids: serde_json::from_str(&uids).unwrap_or_default(),
        imported_at: r.get(3)?,
    })
}

/// A promoted report's participants become the case's: the same organizations, roles and
/// contacts (their keys live in the directory and come along).
fn copy_participants_tx(tx: &Connection, from: i64, to: i64) -> Result<(), StoreError> {
    let rows: Vec<(i64, String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT p.org_id, p.role, c.address FROM contacts c
             JOIN participants p ON p.id = c.participant_id
             WHERE p.thread_id = ?1 AND p.org_id IS NOT NULL ORDER BY c.id",
        )?;
        stmt.query_map([from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?
    };
    for (org_id, role, address) in rows {
        add_contact_tx(tx, to, org_id, &role, &address)?;
    }
    Ok(())
}

pub(crate) fn record_sent_tx(
    tx: &Connection,
    message_id: &str,
    thread_id: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO sent_message_ids (message_id, thread_id, created_at) VALUES (?1, ?2, ?3)",
        params![message_id, thread_id, now_text()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn existing_number_conflicts_and_tickets_are_sequential() {
        let mut s = Store::open_in_memory().unwrap();
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
    }

    #[test]
    fn promotion_copies_participants_and_resolves() {
        let mut s = Store::open_in_memory().unwrap();
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
    }

    #[test]
    fn commit_is_atomic_dedupes_and_advances_checkpoint() {
        let mut s = Store::open_in_memory().unwrap();
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
    }

    #[test]
    fn a_quarantined_message_leaves_quarantine_whole_or_not_at_all() {
        let mut s = Store::open_in_memory().unwrap();
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
    }

    #[test]
    fn new_thread_disposition_mints_and_adds_sender() {
        let mut s = Store::open_in_memory().unwrap();
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
    }
}
