//! The durable outbox: one row per recipient copy, one row per SMTP attempt.
//!
//! Why durable: a notice is "sent" for the coordinator the moment `notify` returns, so every
//! copy must already be on disk then, and must survive crashes and SMTP outages until a server
//! accepted it (or it is given up, with the reason). The signed-once inner entity of a notice is
//! kept once (`outbox_notices`) so that a copy held for want of a key can be sealed later,
//! after a key import, without signing again.
//!
//! This module stores bytes and states; it knows nothing of OpenPGP or SMTP (see `crate::outbox`).

use chrono::{DateTime, SecondsFormat, Utc};

use super::sql::{Backend, Db, Param, Row, TxGuard, args};
use super::{AUTOCHECKPOINT_PAGES, Store, StoreError, parse_time, record_sent_tx, time_text};

pub(super) const MIGRATION: &str = "
CREATE TABLE outbox_notices (
    id                 INTEGER PRIMARY KEY,
    thread_id          INTEGER NOT NULL REFERENCES threads(id),
    sender             TEXT NOT NULL,
    in_reply_to        TEXT,
    automatic          INTEGER NOT NULL DEFAULT 0,
    date_unix          INTEGER NOT NULL,
    signer_fingerprint TEXT NOT NULL,
    inner              BLOB NOT NULL,
    created_at         TEXT NOT NULL
);
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    notice_id       INTEGER REFERENCES outbox_notices(id),
    thread_id       INTEGER NOT NULL REFERENCES threads(id),
    kind            TEXT NOT NULL CHECK (kind IN ('notice', 'stub')),
    sender          TEXT NOT NULL,
    address         TEXT NOT NULL,
    org             TEXT NOT NULL,
    message_id      TEXT,
    raw             BLOB,
    key_fingerprint TEXT,
    status          TEXT NOT NULL
                    CHECK (status IN ('queued', 'sent', 'retrying', 'held', 'dead', 'bounced')),
    reason          TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_reply      TEXT,
    next_attempt_at TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT,
    CHECK (status = 'held' OR (raw IS NOT NULL AND message_id IS NOT NULL))
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_thread ON outbox(thread_id);
CREATE UNIQUE INDEX outbox_message_id ON outbox(message_id) WHERE message_id IS NOT NULL;
CREATE TABLE outbox_attempts (
    id        INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES outbox(id),
    at        TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('accepted', 'temporary', 'permanent')),
    reply     TEXT NOT NULL
);
CREATE INDEX outbox_attempts_copy ON outbox_attempts(outbox_id);
";

/// A sender claims a copy before it hands it to SMTP (see [`Store::claim_due_copy`]): who,
/// and until when (same text format as `next_attempt_at`).
pub(super) const CLAIMS: &str = "
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claim_expires_at TEXT;
CREATE INDEX outbox_claimed ON outbox(claimed_by) WHERE claimed_by IS NOT NULL;
";

/// `next_attempt_at` keeps milliseconds: retries a second apart must compare right, and
/// every value in that column (and every `now` compared with it) has this one format, so
/// text order is time order.
fn due_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What a copy carries: the encrypted notice, or the key-request stub (no case content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CopyKind {
    Notice,
    Stub,
}

impl CopyKind {
    fn as_str(self) -> &'static str {
        match self {
            CopyKind::Notice => "notice",
            CopyKind::Stub => "stub",
        }
    }
    fn parse(s: &str) -> CopyKind {
        if s == "stub" {
            CopyKind::Stub
        } else {
            CopyKind::Notice
        }
    }
}

/// The recipient-independent part of a notice, kept once for all its copies.
#[derive(Debug, Clone)]
pub struct NewNotice<'a> {
    pub thread_id: i64,
    pub sender: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub automatic: bool,
    /// The notice's Date, Unix seconds.
    pub date_unix: i64,
    pub signer_fingerprint: &'a str,
    /// The signed-once inner MIME entity.
    pub inner: &'a [u8],
    /// The stored message this notice relays to the case discussion, if it is a relay.
    pub relay_of: Option<i64>,
}

/// One copy to enqueue: `Sealed` ones go out, `Held` ones wait for a key.
#[derive(Debug, Clone)]
pub enum NewCopy<'a> {
    Sealed {
        kind: CopyKind,
        address: &'a str,
        org: &'a str,
        /// In angle brackets; recorded as sent by the thread so replies route.
        message_id: &'a str,
        raw: &'a [u8],
        key_fingerprint: Option<&'a str>,
    },
    Held {
        address: &'a str,
        org: &'a str,
        reason: &'a str,
    },
}

/// A stored notice, as needed to seal a held copy later.
#[derive(Debug, Clone)]
pub struct StoredNotice {
    pub thread_number: String,
    pub sender: String,
    pub in_reply_to: Option<String>,
    pub automatic: bool,
    pub date_unix: i64,
    pub signer_fingerprint: String,
    pub inner: Vec<u8>,
    /// It relays a participant's message (its copies carry the relay marker).
    pub relay: bool,
}

/// A copy waiting for a usable key.
#[derive(Debug, Clone)]
pub struct HeldCopy {
    pub id: i64,
    pub thread_id: i64,
    pub address: String,
    pub org: String,
    pub notice: StoredNotice,
}

/// A copy the sender should try now (and, from [`Store::claim_due_copy`], holds a claim on).
#[derive(Debug, Clone)]
pub struct DueCopy {
    pub id: i64,
    pub sender: String,
    pub address: String,
    pub message_id: String,
    pub raw: Vec<u8>,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    /// Primary fingerprint of the key the copy is encrypted to (None for stubs).
    pub key_fingerprint: Option<String>,
}

const DUE_COLUMNS: &str =
    "id, sender, address, message_id, raw, attempts, created_at, key_fingerprint";

/// One copy as `outbox list` shows it. Raw bytes are left out on purpose.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct OutboxRow {
    pub id: i64,
    pub thread: String,
    pub kind: CopyKind,
    pub address: String,
    pub org: String,
    /// `queued|sent|retrying|held|dead|bounced`.
    pub status: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub last_reply: Option<String>,
    pub key_fingerprint: Option<String>,
    pub message_id: Option<String>,
    pub created_at: String,
    pub next_attempt_at: Option<String>,
    pub sent_at: Option<String>,
    /// The sender holding the copy (see [`Store::claim_due_copy`]) and until when; a claim past
    /// its time is stale (its sender died) and taken by the next sender.
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<String>,
}

/// One SMTP attempt for one copy, with the server's reply (or the connection error).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AttemptRow {
    pub at: String,
    /// `accepted|temporary|permanent`.
    pub outcome: String,
    pub reply: String,
}

/// What an SMTP attempt means for the copy.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    /// The server accepted the message (2xx after DATA).
    Accepted,
    /// Try again at `next_attempt_at` (4xx or no connection).
    Retry { next_attempt_at: DateTime<Utc> },
    /// Give up: a 5xx, or temporary failures past the configured age. `reason` is for people.
    Dead { reason: String },
    /// A temporary failure, but the copy is too old to try again.
    GiveUp { reason: String },
}

/// Which rows `outbox list` shows.
#[derive(Debug, Clone, Default)]
pub struct OutboxFilter {
    pub thread_id: Option<i64>,
    pub status: Option<String>,
}

impl Store {
    /// How many automatic copies (acknowledgments) went to `address` since `since`.
    pub fn automatic_copies_since(
        &self,
        address: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.db().one(
            "SELECT count(*) FROM outbox o JOIN outbox_notices n ON n.id = o.notice_id
             WHERE n.automatic = 1 AND o.address = ?1 AND o.created_at >= ?2",
            args![address.to_lowercase(), time_text(since)],
        )
    }

    /// Enqueues every copy of one notice and records each Message-ID with the thread, in ONE
    /// transaction: either the whole notice is queued or nothing is. Returns the row ids in
    /// the order of `copies`.
    pub fn enqueue_notice(
        &mut self,
        notice: &NewNotice<'_>,
        copies: &[NewCopy<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let mut writer = self.begin_notice(notice, now)?;
        let ids = copies
            .iter()
            .map(|c| writer.add(c))
            .collect::<Result<Vec<i64>, _>>()?;
        writer.commit()?;
        Ok(ids)
    }

    /// Starts queueing one notice, for callers that produce copies while others are being
    /// written (a large fan-out seals on every core while this thread writes). Nothing is
    /// visible to anyone until [`NoticeWriter::commit`]; dropping the writer queues nothing.
    pub fn begin_notice(
        &mut self,
        notice: &NewNotice<'_>,
        now: DateTime<Utc>,
    ) -> Result<NoticeWriter<'_>, StoreError> {
        // `&mut self` is held for the writer's life: no other transaction can start on it.
        let tx = self.db_mut().begin()?;
        let mut writer = NoticeWriter {
            db: tx.db(),
            tx: Some(tx),
            notice_id: 0,
            thread_id: notice.thread_id,
            sender: notice.sender.to_string(),
            due: due_text(now),
            created_at: time_text(now),
        };
        // From here on, dropping the writer (an error below included) rolls back and turns
        // automatic checkpoints back on.
        // A notice to many contacts is tens of MB. Committing it is durable on its own (WAL,
        // synchronous=FULL); copying it into the main file as well (the automatic checkpoint)
        // would double the time `notify` takes. That checkpoint is left to the daemon's
        // maintenance, the next commit, or closing the store.
        if let Some(c) = writer.db.sqlite_conn() {
            c.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        writer.notice_id = writer.db.insert_new(
            "INSERT INTO outbox_notices (thread_id, sender, in_reply_to, automatic, date_unix,
                 signer_fingerprint, \"inner\", created_at, relay_of)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            args![
                notice.thread_id,
                notice.sender,
                notice.in_reply_to,
                notice.automatic,
                notice.date_unix,
                notice.signer_fingerprint,
                notice.inner,
                writer.created_at,
                notice.relay_of
            ],
        )?;
        Ok(writer)
    }

    /// Copies as `outbox list` shows them, oldest first.
    pub fn outbox_rows(&self, filter: &OutboxFilter) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox_rows_where(
            "WHERE (o.thread_id = ?1 OR ?1 IS NULL) AND (o.status = ?2 OR ?2 IS NULL)
             ORDER BY o.id",
            args![filter.thread_id, filter.status],
        )
    }

    /// One copy by row id.
    pub fn outbox_row(&self, id: i64) -> Result<OutboxRow, StoreError> {
        self.outbox_rows_where("WHERE o.id = ?1", args![id])?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("no outbox copy {id}")))
    }

    pub(super) fn outbox_rows_where(
        &self,
        tail: &str,
        args: &[Param<'_>],
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT o.id, t.number, o.kind, o.address, o.org, o.status, o.reason, o.attempts,
                    o.last_reply, o.key_fingerprint, o.message_id, o.created_at,
                    o.next_attempt_at, o.sent_at, o.claimed_by, o.claim_expires_at
             FROM outbox o JOIN threads t ON t.id = o.thread_id {tail}"
        );
        self.db().map(&sql, args, |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                thread: r.get(1)?,
                kind: CopyKind::parse(&r.get::<String>(2)?),
                address: r.get(3)?,
                org: r.get(4)?,
                status: r.get(5)?,
                reason: r.get(6)?,
                attempts: r.get(7)?,
                last_reply: r.get(8)?,
                key_fingerprint: r.get(9)?,
                message_id: r.get(10)?,
                created_at: r.get(11)?,
                next_attempt_at: r.get(12)?,
                sent_at: r.get(13)?,
                claimed_by: r.get(14)?,
                claim_expires_at: r.get(15)?,
            })
        })
    }

    /// Every SMTP attempt for one copy, oldest first.
    pub fn outbox_attempts(&self, outbox_id: i64) -> Result<Vec<AttemptRow>, StoreError> {
        self.db().map(
            "SELECT at, outcome, reply FROM outbox_attempts WHERE outbox_id = ?1 ORDER BY id",
            args![outbox_id],
            |r| {
                Ok(AttemptRow {
                    at: r.get(0)?,
                    outcome: r.get(1)?,
                    reply: r.get(2)?,
                })
            },
        )
    }

    /// Copies held for want of a key (optionally of one thread), with their signed notice.
    pub fn held_copies(&self, thread_id: Option<i64>) -> Result<Vec<HeldCopy>, StoreError> {
        self.db().map(
            "SELECT o.id, o.thread_id, o.address, o.org, t.number, n.sender, n.in_reply_to,
                    n.automatic, n.date_unix, n.signer_fingerprint, n.\"inner\", n.relay_of
             FROM outbox o JOIN outbox_notices n ON n.id = o.notice_id
                  JOIN threads t ON t.id = o.thread_id
             WHERE o.status = 'held' AND (o.thread_id = ?1 OR ?1 IS NULL) ORDER BY o.id",
            args![thread_id],
            |r| {
                Ok(HeldCopy {
                    id: r.get(0)?,
                    thread_id: r.get(1)?,
                    address: r.get(2)?,
                    org: r.get(3)?,
                    notice: StoredNotice {
                        thread_number: r.get(4)?,
                        sender: r.get(5)?,
                        in_reply_to: r.get(6)?,
                        automatic: r.get(7)?,
                        date_unix: r.get(8)?,
                        signer_fingerprint: r.get(9)?,
                        inner: r.get(10)?,
                        relay: r.get::<Option<i64>>(11)?.is_some(),
                    },
                })
            },
        )
    }

    /// A held copy got sealed: queue it and record its Message-ID with the thread (one
    /// transaction). A copy that is no longer held is a conflict (someone released it first).
    pub fn release_held_copy(
        &mut self,
        id: i64,
        message_id: &str,
        raw: &[u8],
        key_fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let due = due_text(now);
        let now = time_text(now);
        self.db_mut().write(|db| {
            let thread_id: Option<i64> = db.opt(
                "UPDATE outbox SET status = 'queued', reason = NULL, message_id = ?2, raw = ?3,
                     key_fingerprint = ?4, next_attempt_at = ?6, updated_at = ?5
                 WHERE id = ?1 AND status = 'held'
                 RETURNING thread_id",
                args![id, message_id, raw, key_fingerprint, now, due],
            )?;
            let Some(thread_id) = thread_id else {
                return Err(StoreError::Conflict(format!(
                    "outbox copy {id} is not held"
                )));
            };
            record_sent_tx(db, message_id, thread_id)
        })
    }

    /// A held copy is still held; remember the latest reason.
    pub fn update_held_reason(
        &mut self,
        id: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db().execute(
            "UPDATE outbox SET reason = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'held'",
            args![id, reason, time_text(now)],
        )?;
        Ok(())
    }

    /// Copies due for an SMTP attempt at `now` (queued, or retrying whose time has come),
    /// oldest first, at most `limit`, claimed or not. For looking; a sender takes copies with
    /// [`Store::claim_due_copy`].
    pub fn due_copies(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueCopy>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db().map(
            &format!(
                "SELECT {DUE_COLUMNS} FROM outbox
                 WHERE status IN ('queued', 'retrying') AND raw IS NOT NULL AND message_id IS NOT NULL
                   AND (next_attempt_at IS NULL OR next_attempt_at <= ?1)
                 ORDER BY next_attempt_at, id LIMIT ?2"
            ),
            args![due_text(now), limit],
            due_copy,
        )
    }

    /// Claims the oldest copy that is due at `now` for the sender `owner`, until `now + lease`,
    /// and returns it; `None` when no copy is due and unclaimed.
    ///
    /// Contract (one write transaction, one `UPDATE ... WHERE id = (SELECT ...) RETURNING`):
    /// a copy is claimable when it is `queued` or `retrying`, due, and either unclaimed or its
    /// claim has expired (its sender died). Two senders never hold the same copy: the one that
    /// commits second finds it claimed. The holder hands it to SMTP, then records the attempt
    /// with [`Store::record_attempt`], which clears the claim; a claim not recorded before it
    /// expires (the sender died between claim and record) makes the copy claimable again, and
    /// it is sent again with the same Message-ID. `lease` must outlast one SMTP transaction.
    /// On PostgreSQL the inner SELECT takes `FOR UPDATE SKIP LOCKED`: a row another instance
    /// is claiming right now is skipped, not waited for, and row locks (not a serializable
    /// retry) keep two claimants apart.
    pub fn claim_due_copy(
        &mut self,
        owner: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> Result<Option<DueCopy>, StoreError> {
        let skip_locked = match self.db().backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "", // one writer at a time: nothing to skip
        };
        let sql = format!(
            "UPDATE outbox SET claimed_by = ?1, claim_expires_at = ?2
             WHERE id = (SELECT id FROM outbox
                         WHERE status IN ('queued', 'retrying')
                           AND raw IS NOT NULL AND message_id IS NOT NULL
                           AND (next_attempt_at IS NULL OR next_attempt_at <= ?3)
                           AND (claim_expires_at IS NULL OR claim_expires_at <= ?3)
                         ORDER BY next_attempt_at, id LIMIT 1 {skip_locked})
             RETURNING {DUE_COLUMNS}"
        );
        let tx = self.db_mut().begin()?;
        let copy = tx
            .db()
            .row(&sql, args![owner, due_text(now + lease), due_text(now)])?
            .map(|r| due_copy(&r))
            .transpose()?;
        tx.commit()?;
        Ok(copy)
    }

    /// Releases the live claims whose holder `is_dead` says has died (a sender on this host
    /// whose process is gone), so their copies need not wait for the lease to end. A holder
    /// `is_dead` cannot judge (another host) keeps its claim until it expires. Returns how
    /// many copies were released.
    pub fn release_dead_claims(
        &mut self,
        now: DateTime<Utc>,
        is_dead: impl Fn(&str) -> bool,
    ) -> Result<usize, StoreError> {
        let owners: Vec<String> = self.db().map(
            "SELECT DISTINCT claimed_by FROM outbox
             WHERE claimed_by IS NOT NULL AND claim_expires_at > ?1
               AND status IN ('queued', 'retrying')",
            args![due_text(now)],
            |r| r.get(0),
        )?;
        let mut released = 0;
        for owner in owners.iter().filter(|o| is_dead(o)) {
            released += self.db().execute(
                "UPDATE outbox SET claimed_by = NULL, claim_expires_at = NULL
                 WHERE claimed_by = ?1 AND status IN ('queued', 'retrying')",
                args![owner],
            )? as usize;
            tracing::info!(%owner, "outbox: released the claims of a sender that is gone");
        }
        Ok(released)
    }

    /// When the next copy can be claimed (None when nothing waits for SMTP): the later of its
    /// due time and the end of a claim another sender holds on it.
    pub fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<String> = self.db().one(
            "SELECT min(CASE WHEN claim_expires_at IS NOT NULL
                              AND claim_expires_at > COALESCE(next_attempt_at, '')
                         THEN claim_expires_at ELSE next_attempt_at END)
             FROM outbox WHERE status IN ('queued', 'retrying')",
            args![],
        )?;
        Ok(next.map(|t| parse_time(&t)))
    }

    /// The sender holding the claim on copy `id` found, just before sending, that its key may
    /// no longer be used (revoked, expired): the copy goes back to `held` with `reason`, its
    /// sealed bytes dropped, to be sealed again when a valid key is bound (`outbox release`).
    /// `false` when `owner` does not hold the claim (nothing changed).
    pub fn hold_claimed_copy(
        &mut self,
        id: i64,
        owner: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self.db().execute(
            "UPDATE outbox SET status = 'held', reason = ?3, raw = NULL, message_id = NULL,
                 key_fingerprint = NULL, next_attempt_at = NULL, claimed_by = NULL,
                 claim_expires_at = NULL, updated_at = ?4
             WHERE id = ?1 AND claimed_by = ?2 AND status IN ('queued', 'retrying')
               AND notice_id IS NOT NULL",
            args![id, owner, reason, time_text(now)],
        )?;
        Ok(n > 0)
    }

    /// The outbox copy that carried this Message-ID: (copy id, thread id, recipient, status).
    pub fn outbox_copy_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<(i64, i64, String, String)>, StoreError> {
        self.db()
            .row(
                "SELECT id, thread_id, address, status FROM outbox WHERE message_id = ?1",
                args![message_id],
            )?
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .transpose()
    }

    /// A delivery status notification says a sent copy did not arrive: mark it `bounced` with
    /// the reason. For the inbound pipeline, which sees DSNs; `false` when no sent copy has
    /// that Message-ID (angle brackets as stored).
    pub fn mark_bounced(
        &mut self,
        message_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self.db().execute(
            "UPDATE outbox SET status = 'bounced', reason = ?2, updated_at = ?3
             WHERE message_id = ?1 AND status = 'sent'",
            args![message_id, reason, time_text(now)],
        )?;
        Ok(n > 0)
    }

    /// Records one SMTP attempt and its consequence for the copy, in one transaction, and
    /// releases `owner`'s claim. A copy becomes `sent` only here, after the server accepted
    /// it, and only for the sender holding its claim ([`Store::claim_due_copy`]); for anyone
    /// else it is a conflict and nothing is written.
    pub fn record_attempt(
        &mut self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        outcome: &AttemptOutcome,
        reply: &str,
    ) -> Result<(), StoreError> {
        let at = time_text(now);
        let (kind, status, reason, next): (&str, &str, Option<&str>, Option<String>) = match outcome
        {
            AttemptOutcome::Accepted => ("accepted", "sent", None, None),
            AttemptOutcome::Retry { next_attempt_at } => (
                "temporary",
                "retrying",
                None,
                Some(due_text(*next_attempt_at)),
            ),
            AttemptOutcome::Dead { reason } => ("permanent", "dead", Some(reason), None),
            AttemptOutcome::GiveUp { reason } => ("temporary", "dead", Some(reason), None),
        };
        self.db_mut().write(|db| {
            let n = db.execute(
                "UPDATE outbox SET status = ?2, reason = ?3, next_attempt_at = ?4,
                     attempts = attempts + 1, last_reply = ?5, updated_at = ?6,
                     sent_at = CASE WHEN ?2 = 'sent' THEN ?6 ELSE sent_at END,
                     claimed_by = NULL, claim_expires_at = NULL
                 WHERE id = ?1 AND status IN ('queued', 'retrying') AND claimed_by = ?7",
                args![id, status, reason, next, reply, at, owner],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "outbox copy {id} is not waiting for delivery under a claim of {owner}"
                )));
            }
            db.execute(
                "INSERT INTO outbox_attempts (outbox_id, at, outcome, reply) VALUES (?1, ?2, ?3, ?4)",
                args![id, at, kind, reply],
            )?;
            Ok(())
        })
    }
}

fn due_copy(r: &Row) -> Result<DueCopy, StoreError> {
    Ok(DueCopy {
        id: r.get(0)?,
        sender: r.get(1)?,
        address: r.get(2)?,
        message_id: r.get(3)?,
        raw: r.get(4)?,
        attempts: r.get(5)?,
        created_at: parse_time(&r.get::<String>(6)?),
        key_fingerprint: r.get(7)?,
    })
}

/// Turns SQLite's automatic checkpoints back on when dropped.
struct CheckpointsBackOn<'a>(&'a Db);

impl Drop for CheckpointsBackOn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.0.sqlite_conn()
            && let Err(e) = c.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)
        {
            // The notice is queued (or not) either way; only the WAL grows until a checkpoint.
            tracing::warn!(error = %e, "automatic WAL checkpoints not turned back on");
        }
    }
}

/// One notice being queued (see [`Store::begin_notice`]): one open transaction.
pub struct NoticeWriter<'s> {
    db: &'s Db,
    /// `None` only after `commit`.
    tx: Option<TxGuard<'s>>,
    notice_id: i64,
    thread_id: i64,
    sender: String,
    created_at: String,
    due: String,
}

impl NoticeWriter<'_> {
    /// Adds one copy; returns its row id.
    pub fn add(&mut self, copy: &NewCopy<'_>) -> Result<i64, StoreError> {
        if self.tx.is_none() {
            return Err(StoreError::Invalid("notice already committed".into()));
        }
        let db = self.db;
        match copy {
            NewCopy::Sealed {
                kind,
                address,
                org,
                message_id,
                raw,
                key_fingerprint,
            } => {
                let id = db.insert_new(
                    "INSERT INTO outbox (notice_id, thread_id, kind, sender, address, org,
                         message_id, raw, key_fingerprint, status, next_attempt_at, created_at,
                         updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'queued', ?11, ?10, ?10)",
                    args![
                        self.notice_id,
                        self.thread_id,
                        kind.as_str(),
                        self.sender,
                        address,
                        org,
                        message_id,
                        raw,
                        key_fingerprint,
                        self.created_at,
                        self.due
                    ],
                )?;
                record_sent_tx(db, message_id, self.thread_id)?;
                Ok(id)
            }
            NewCopy::Held {
                address,
                org,
                reason,
            } => db.insert_new(
                "INSERT INTO outbox (notice_id, thread_id, kind, sender, address, org, status,
                     reason, created_at, updated_at)
                 VALUES (?1, ?2, 'notice', ?3, ?4, ?5, 'held', ?6, ?7, ?7)",
                args![
                    self.notice_id,
                    self.thread_id,
                    self.sender,
                    address,
                    org,
                    reason,
                    self.created_at
                ],
            ),
        }
    }

    /// Writes an audit record in the notice's transaction: it exists if and only if the
    /// notice is queued.
    pub fn record_audit(&mut self, a: &super::NewAudit) -> Result<(), StoreError> {
        if self.tx.is_none() {
            return Err(StoreError::Invalid("notice already committed".into()));
        }
        super::audit::insert(self.db, a)?;
        Ok(())
    }

    /// Settles the relay owed for `message_ref` in the notice's transaction: the relay is
    /// queued exactly when the debt is gone. A debt already settled (by another process) is a
    /// conflict, and the notice must then be dropped.
    pub fn settle_relay(&mut self, message_ref: i64) -> Result<(), StoreError> {
        if self.tx.is_none() {
            return Err(StoreError::Invalid("notice already committed".into()));
        }
        let n = self.db.execute(
            "DELETE FROM pending_relays WHERE message_ref = ?1",
            args![message_ref],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "the relay of message {message_ref} is not owed any more"
            )));
        }
        Ok(())
    }

    /// Settles, in the notice's transaction, the acknowledgment owed to report `thread_id`: the
    /// notice is that acknowledgment. One that is not owed any more (another process queued
    /// it) is a [`StoreError::Conflict`], and the notice is not queued: acknowledged once.
    pub fn settle_ack(&mut self, thread_id: i64) -> Result<(), StoreError> {
        if self.tx.is_none() {
            return Err(StoreError::Invalid("notice already committed".into()));
        }
        if !super::clear_pending_ack_tx(self.db, thread_id)? {
            return Err(StoreError::Conflict(format!(
                "the acknowledgment of report {thread_id} is not owed any more"
            )));
        }
        Ok(())
    }

    /// Records in the notice's transaction that copy `outbox_id` reminded `address`.
    pub fn record_reminder(
        &mut self,
        org_id: i64,
        address: &str,
        outbox_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if self.tx.is_none() {
            return Err(StoreError::Invalid("notice already committed".into()));
        }
        super::vendors::insert_reminder_tx(self.db, self.thread_id, org_id, address, outbox_id, now)
    }

    /// Queues the notice: every copy added becomes visible at once, durably.
    pub fn commit(mut self) -> Result<(), StoreError> {
        match self.tx.take() {
            Some(tx) => tx.commit(),
            None => Err(StoreError::Invalid("notice already committed".into())),
        }
    }
}

impl Drop for NoticeWriter<'_> {
    /// Rolls back what was not committed; turns automatic checkpoints back on either way.
    fn drop(&mut self) {
        drop(self.tx.take());
        drop(CheckpointsBackOn(self.db));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::{Kind, TrackingNumber};

    /// Creates a case in `s`; returns the record of a notice to it.
    fn notice_to_a_case(s: &mut Store) -> NewNotice<'static> {
        let n = TrackingNumber::parse("VU#409117").unwrap();
        let t = s
            .create_thread(Kind::Case, Some(&n), "t", Utc::now())
            .unwrap();
        NewNotice {
            thread_id: t.id,
            sender: "cert@example.test",
            in_reply_to: None,
            automatic: false,
            date_unix: 0,
            signer_fingerprint: "AB",
            inner: b"inner",
            relay_of: None,
        }
    }

    #[test]
    fn a_notice_is_queued_whole_or_not_at_all() {
        crate::store::testing::for_each_backend(|mut s| {
            let now = Utc::now();
            let notice = notice_to_a_case(&mut s);
            let copy = |addr: &'static str, mid: &'static str| NewCopy::Sealed {
                kind: CopyKind::Notice,
                address: addr,
                org: "V",
                message_id: mid,
                raw: b"raw",
                key_fingerprint: Some("CD"),
            };
            // The second copy reuses a Message-ID: the unique index fails the whole transaction.
            let bad = [copy("a@x.test", "<1@x>"), copy("b@x.test", "<1@x>")];
            assert!(s.enqueue_notice(&notice, &bad, now).is_err());
            assert!(s.outbox_rows(&OutboxFilter::default()).unwrap().is_empty());
            assert!(s.thread_of_sent(&["<1@x>".into()]).unwrap().is_none());

            let good = [
                copy("a@x.test", "<1@x>"),
                NewCopy::Held {
                    address: "c@x.test",
                    org: "W",
                    reason: "no valid encryption key: none",
                },
            ];
            let ids = s.enqueue_notice(&notice, &good, now).unwrap();
            assert_eq!(ids.len(), 2);
            assert_eq!(
                s.thread_of_sent(&["<1@x>".into()]).unwrap().unwrap().1,
                notice.thread_id
            );
            assert_eq!(s.due_copies(now, 10).unwrap().len(), 1);
            assert_eq!(s.held_copies(None).unwrap()[0].notice.inner, b"inner");

            // Sent only through record_attempt by the claim's holder; a copy that is not waiting
            // cannot be "sent" again.
            let lease = chrono::Duration::minutes(10);
            let claimed = s.claim_due_copy("me", now, lease).unwrap().unwrap();
            assert_eq!(claimed.id, ids[0]);
            assert!(
                s.record_attempt(ids[0], "other", now, &AttemptOutcome::Accepted, "250")
                    .is_err()
            );
            s.record_attempt(ids[0], "me", now, &AttemptOutcome::Accepted, "250 ok")
                .unwrap();
            assert_eq!(s.outbox_row(ids[0]).unwrap().status, "sent");
            assert!(
                s.record_attempt(ids[0], "me", now, &AttemptOutcome::Accepted, "250")
                    .is_err()
            );
            assert_eq!(s.outbox_attempts(ids[0]).unwrap().len(), 1);
            assert!(s.due_copies(now, 10).unwrap().is_empty());

            assert!(
                !s.mark_bounced("<other@x>", "550 no such user", now)
                    .unwrap()
            );
            assert!(s.mark_bounced("<1@x>", "550 no such user", now).unwrap());
            assert_eq!(s.outbox_row(ids[0]).unwrap().status, "bounced");
        });
    }

    #[test]
    fn a_notice_writer_dropped_before_commit_queues_nothing() {
        crate::store::testing::for_each_backend(|mut s| {
            let now = Utc::now();
            let notice = notice_to_a_case(&mut s);
            {
                let mut w = s.begin_notice(&notice, now).unwrap();
                w.add(&NewCopy::Held {
                    address: "a@x.test",
                    org: "V",
                    reason: "no valid encryption key: none",
                })
                .unwrap();
            }
            assert!(s.outbox_rows(&OutboxFilter::default()).unwrap().is_empty());
            if let Some(c) = s.db().sqlite_conn() {
                let pages: i64 = c
                    .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
                    .unwrap();
                assert_eq!(pages, AUTOCHECKPOINT_PAGES);
            }
        });
    }

    #[test]
    fn a_notice_that_cannot_start_leaves_automatic_checkpoints_on() {
        crate::store::testing::for_each_backend(|mut s| {
            let mut notice = notice_to_a_case(&mut s);
            notice.thread_id = 999; // no such thread: the foreign key refuses the notice row
            assert!(s.begin_notice(&notice, Utc::now()).is_err());
            if let Some(c) = s.db().sqlite_conn() {
                let pages: i64 = c
                    .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
                    .unwrap();
                assert_eq!(pages, AUTOCHECKPOINT_PAGES);
            }
        });
    }

    #[test]
    fn a_large_notice_is_committed_without_checkpointing_and_checkpointed_later() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        let now = Utc::now();
        let notice = notice_to_a_case(&mut s);
        // 300 copies of 30 KB: about 9 MB, well over the 1,000-page automatic checkpoint.
        let raw = vec![b'x'; 30 * 1024];
        let ids: Vec<(String, String)> = (0..300)
            .map(|i| (format!("v{i}@x.test"), format!("<{i}@x>")))
            .collect();
        let copies: Vec<NewCopy<'_>> = ids
            .iter()
            .map(|(addr, mid)| NewCopy::Sealed {
                kind: CopyKind::Notice,
                address: addr,
                org: "V",
                message_id: mid,
                raw: &raw,
                key_fingerprint: Some("CD"),
            })
            .collect();
        s.enqueue_notice(&notice, &copies, now).unwrap();
        // Still all in the WAL: the commit did not copy it into the main file...
        let main_file = || {
            std::fs::metadata(dir.path().join("s.sqlite"))
                .unwrap()
                .len()
        };
        assert!(main_file() < 1024 * 1024, "main file {} bytes", main_file());
        // ...the explicit checkpoint did, and the automatic one is on again for other commits.
        let (frames, copied) = s.checkpoint().unwrap();
        assert!(frames > 2000, "WAL frames {frames}");
        assert_eq!(copied, frames);
        assert!(
            main_file() > 8 * 1024 * 1024,
            "main file {} bytes",
            main_file()
        );
        let pages: i64 = s
            .db()
            .sqlite_conn()
            .unwrap()
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .unwrap();
        assert_eq!(pages, AUTOCHECKPOINT_PAGES);
        // And everything is there after reopening.
        drop(s);
        let s = Store::open(&dir.path().join("s.sqlite")).unwrap();
        assert_eq!(s.due_copies(now, 1000).unwrap().len(), 300);
    }

    fn queue_copies(s: &mut Store, n: usize, now: DateTime<Utc>) -> Vec<i64> {
        let notice = notice_to_a_case(s);
        let ids: Vec<(String, String)> = (0..n)
            .map(|i| (format!("v{i}@x.test"), format!("<{i}@x>")))
            .collect();
        let copies: Vec<NewCopy<'_>> = ids
            .iter()
            .map(|(addr, mid)| NewCopy::Sealed {
                kind: CopyKind::Notice,
                address: addr,
                org: "V",
                message_id: mid,
                raw: b"raw",
                key_fingerprint: Some("CD"),
            })
            .collect();
        s.enqueue_notice(&notice, &copies, now).unwrap()
    }

    #[test]
    fn a_claim_is_held_by_one_sender_until_recorded_or_expired() {
        crate::store::testing::for_each_backend(|mut s| {
            let now = Utc::now();
            let notice = notice_to_a_case(&mut s);
            let copies: Vec<NewCopy<'_>> = ["<1@x>", "<2@x>"]
                .iter()
                .map(|mid| NewCopy::Sealed {
                    kind: CopyKind::Notice,
                    address: "a@x.test",
                    org: "V",
                    message_id: mid,
                    raw: b"raw",
                    key_fingerprint: Some("CD"),
                })
                .collect();
            let ids = s.enqueue_notice(&notice, &copies, now).unwrap();
            let lease = chrono::Duration::seconds(60);
            let a = s.claim_due_copy("a", now, lease).unwrap().unwrap();
            let b = s.claim_due_copy("b", now, lease).unwrap().unwrap();
            assert_eq!((a.id, b.id), (ids[0], ids[1]));
            assert_eq!(a.key_fingerprint.as_deref(), Some("CD"));
            assert_eq!(
                s.outbox_row(ids[0]).unwrap().claimed_by.as_deref(),
                Some("a")
            );
            // Both held: nobody else gets either, until a claim expires.
            assert!(s.claim_due_copy("c", now, lease).unwrap().is_none());
            // Waiting for a held claim means waiting until it ends, not polling at once.
            assert_eq!(
                s.next_due_at().unwrap().map(|t| t.timestamp()),
                Some((now + lease).timestamp())
            );
            let later = now + lease + chrono::Duration::seconds(1);
            let c = s.claim_due_copy("c", later, lease).unwrap().unwrap();
            assert_eq!(
                c.id, ids[0],
                "an expired claim (its sender died) is claimable again"
            );
            // The dead sender's late record is refused; the new holder's is taken.
            let retry = AttemptOutcome::Retry {
                next_attempt_at: later,
            };
            assert!(s.record_attempt(c.id, "a", later, &retry, "451").is_err());
            s.record_attempt(c.id, "c", later, &retry, "451").unwrap();
            assert_eq!(s.outbox_row(c.id).unwrap().claimed_by, None);
            // The other expired claim goes first (due longer); then the recorded copy, whose claim
            // is gone, is due again for anyone.
            let e = s.claim_due_copy("e", later, lease).unwrap().unwrap();
            assert_eq!(e.id, ids[1]);
            let d = s.claim_due_copy("d", later, lease).unwrap().unwrap();
            assert_eq!(d.id, ids[0]);
            assert!(s.claim_due_copy("f", later, lease).unwrap().is_none());

            // A claim whose holder is known dead is released before its lease ends.
            assert_eq!(s.release_dead_claims(later, |o| o == "nobody").unwrap(), 0);
            assert_eq!(s.release_dead_claims(later, |o| o == "e").unwrap(), 1);
            assert_eq!(
                s.claim_due_copy("f", later, lease).unwrap().map(|c| c.id),
                Some(ids[1])
            );

            // A holder may put its copy back to held (its key was revoked meanwhile).
            assert!(
                !s.hold_claimed_copy(d.id, "x", "key revoked", later)
                    .unwrap()
            );
            assert!(
                s.hold_claimed_copy(d.id, "d", "key revoked", later)
                    .unwrap()
            );
            let row = s.outbox_row(d.id).unwrap();
            assert_eq!((row.status.as_str(), row.message_id), ("held", None));
            assert_eq!(s.held_copies(None).unwrap().len(), 1);
        });
    }

    /// Several senders claiming at once (instances on one database) never get the same copy.
    #[test]
    fn concurrent_claimants_get_disjoint_copies() {
        crate::store::testing::for_each_shared_backend(|open| {
            let now = Utc::now();
            let mut s = open();
            let ids = queue_copies(&mut s, 60, now);
            let got = std::sync::Mutex::new(Vec::new());
            std::thread::scope(|scope| {
                for w in 0..3 {
                    let got = &got;
                    scope.spawn(move || {
                        let mut s = open();
                        let owner = format!("w{w}");
                        let lease = chrono::Duration::seconds(60);
                        while let Some(c) = s.claim_due_copy(&owner, now, lease).unwrap() {
                            s.record_attempt(c.id, &owner, now, &AttemptOutcome::Accepted, "250")
                                .unwrap();
                            got.lock().unwrap().push(c.id);
                        }
                    });
                }
            });
            let mut got = got.into_inner().unwrap();
            got.sort_unstable();
            assert_eq!(got, ids);
        });
    }
}
