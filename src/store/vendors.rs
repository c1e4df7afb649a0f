//! Vendors in a case: the status and statement each organization sent (every claim kept,
//! with the message that made it and whether it counted), when it was first notified and
//! last heard from, and the reminders sent to those that did not answer.

use chrono::{DateTime, Utc};

use super::sql::{Db, args};
use super::{Store, StoreError, Thread, thread_by_id_tx, time_text};

/// Schema v14.
pub(super) const MIGRATION: &str = "
CREATE TABLE vendor_claims (
    id            INTEGER PRIMARY KEY,
    thread_id     INTEGER NOT NULL REFERENCES threads(id),
    org_id        INTEGER NOT NULL REFERENCES orgs(id),
    message_ref   INTEGER NOT NULL REFERENCES messages(id),
    status        TEXT CHECK (status IS NULL
                              OR status IN ('affected', 'not affected', 'fixed', 'under investigation')),
    statement     TEXT,
    signed_part   BLOB,
    sealed        INTEGER NOT NULL DEFAULT 0,
    signature     TEXT NOT NULL,
    signer        TEXT,
    signed_by_org INTEGER NOT NULL,
    counted       INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    received_at   TEXT NOT NULL
);
CREATE INDEX vendor_claims_thread ON vendor_claims(thread_id, org_id);
CREATE TABLE reminders (
    id        INTEGER PRIMARY KEY,
    thread_id INTEGER NOT NULL REFERENCES threads(id),
    org_id    INTEGER NOT NULL REFERENCES orgs(id),
    address   TEXT NOT NULL,
    outbox_id INTEGER REFERENCES outbox(id),
    sent_at   TEXT NOT NULL
);
CREATE INDEX reminders_thread ON reminders(thread_id, address);
";

/// A status and/or statement an organization sent in one message, as the pipeline judged it.
/// Written in the message's own transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClaim {
    pub org_id: i64,
    /// `affected | not affected | fixed | under investigation`.
    pub status: Option<String>,
    pub statement: Option<String>,
    /// The exact bytes the message's signature covers (when it was validly signed).
    pub signed_part: Option<Vec<u8>>,
    /// The message came encrypted: its statement and signed bytes are NOT stored (decrypted
    /// text never is); `statement`/`signed_part` are `None` and this says a statement is
    /// there, to be read again from the stored ciphertext when asked for.
    pub sealed: bool,
    /// Primary fingerprint of the certificate that signed the message validly.
    pub signer: Option<String>,
    /// That certificate is one of the organization's keys.
    pub signed_by_org: bool,
    /// It sets the organization's status/statement (else it is only kept, and the message
    /// flagged: a signature was required and this one is not the organization's).
    pub counted: bool,
    /// Why it counts or not, for people.
    pub reason: String,
}

/// One claim as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Claim {
    #[serde(skip)]
    pub message_ref: i64,
    /// SHA-256 of the message that made it (its short id is a prefix; `casegate read`).
    pub message_sha256: String,
    pub message_id: Option<String>,
    pub status: Option<String>,
    pub statement: Option<String>,
    #[serde(skip)]
    pub signed_part: Option<Vec<u8>>,
    /// See [`NewClaim::sealed`]: the statement is in the encrypted message only.
    #[serde(skip)]
    pub sealed: bool,
    /// The message's signature verdict (`good`, `none`, `not-participant`, ...).
    pub signature: String,
    pub signer: Option<String>,
    pub signed_by_org: bool,
    pub counted: bool,
    pub reason: String,
    /// When the message arrived (UTC, RFC 3339).
    pub received_at: String,
}

/// A participant organization of a case with what follow-up needs to know.
#[derive(Debug, Clone)]
pub struct ParticipantFollowup {
    pub thread: Thread,
    pub participant_id: i64,
    pub org_id: i64,
    /// As the thread names it.
    pub org: String,
    pub role: String,
    pub contacts: Vec<String>,
    /// The first notice (not an acknowledgment, not a relay) queued to one of its contacts
    /// that was not held or given up.
    pub first_notified_at: Option<String>,
    /// The newest message from one of its contacts routed into the thread (not automatic).
    pub last_heard_at: Option<String>,
}

impl Store {
    /// Every claim an organization made in a thread, oldest first.
    pub fn claims(&self, thread_id: i64, org_id: i64) -> Result<Vec<Claim>, StoreError> {
        self.db.map(
            "SELECT v.message_ref, m.sha256, m.message_id, v.status, v.statement, v.signed_part,
                    v.signature, v.signer, v.signed_by_org, v.counted, v.reason, v.received_at,
                    v.sealed
             FROM vendor_claims v JOIN messages m ON m.id = v.message_ref
             WHERE v.thread_id = ?1 AND v.org_id = ?2 ORDER BY v.received_at, v.id",
            args![thread_id, org_id],
            |r| {
                Ok(Claim {
                    message_ref: r.get(0)?,
                    message_sha256: r.get(1)?,
                    message_id: r.get(2)?,
                    status: r.get(3)?,
                    statement: r.get(4)?,
                    signed_part: r.get(5)?,
                    signature: r.get(6)?,
                    signer: r.get(7)?,
                    signed_by_org: r.get(8)?,
                    counted: r.get(9)?,
                    reason: r.get(10)?,
                    received_at: r.get(11)?,
                    sealed: r.get(12)?,
                })
            },
        )
    }

    /// The participants of one thread (or of every open case), with first notice and last
    /// word; `role` narrows them (e.g. `vendor`).
    pub fn participants_followup(
        &self,
        thread_id: Option<i64>,
        role: Option<&str>,
    ) -> Result<Vec<ParticipantFollowup>, StoreError> {
        let rows: Vec<(i64, i64, i64, String, String)> = self.db.map(
            "SELECT p.id, p.thread_id, COALESCE(p.org_id, 0), p.org, p.role
             FROM participants p JOIN threads t ON t.id = p.thread_id
             WHERE (p.thread_id = ?1 OR ?1 IS NULL AND t.kind = 'case' AND t.status = 'open')
               AND (p.role = ?2 OR ?2 IS NULL)
             ORDER BY p.thread_id, p.org",
            args![thread_id, role],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        rows.into_iter()
            .map(|(participant_id, thread_id, org_id, org, role)| {
                followup_tx(&self.db, participant_id, thread_id, org_id, org, role)
            })
            .collect()
    }

    /// When `address` was last reminded in the thread (UTC, RFC 3339).
    pub fn last_reminded(
        &self,
        thread_id: i64,
        address: &str,
    ) -> Result<Option<String>, StoreError> {
        self.db.one(
            "SELECT max(sent_at) FROM reminders WHERE thread_id = ?1 AND address = ?2",
            args![thread_id, address],
        )
    }
}

fn followup_tx(
    db: &Db,
    participant_id: i64,
    thread_id: i64,
    org_id: i64,
    org: String,
    role: String,
) -> Result<ParticipantFollowup, StoreError> {
    let contacts: Vec<String> = db.map(
        "SELECT address FROM contacts WHERE participant_id = ?1 ORDER BY address",
        args![participant_id],
        |r| r.get(0),
    )?;
    let r = db
        .row(
            "SELECT
            (SELECT min(o.created_at) FROM outbox o JOIN outbox_notices n ON n.id = o.notice_id
             WHERE (o.thread_id = ?1 OR o.thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1))
               AND n.automatic = 0 AND n.relay_of IS NULL AND o.status NOT IN ('held', 'dead')
               AND o.address IN (SELECT address FROM contacts WHERE participant_id = ?2)),
            (SELECT max(m.received_at) FROM messages m
             WHERE (m.thread_id = ?1 OR m.thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1))
               AND m.direction = 'in' AND m.automatic = 0 AND m.outcome = 'routed'
               AND lower(m.sender) IN (SELECT address FROM contacts WHERE participant_id = ?2))",
            args![thread_id, participant_id],
        )?
        .ok_or_else(|| StoreError::Invalid("follow-up query returned no row".into()))?;
    let (first_notified_at, last_heard_at): (Option<String>, Option<String>) =
        (r.get(0)?, r.get(1)?);
    Ok(ParticipantFollowup {
        thread: thread_by_id_tx(db, thread_id)?,
        participant_id,
        org_id,
        org,
        role,
        contacts,
        first_notified_at,
        last_heard_at,
    })
}

/// Writes a message's claims (inside its commit).
pub(super) fn insert_claims_tx(
    db: &Db,
    thread_id: i64,
    message_ref: i64,
    m: &super::NewMessage,
) -> Result<(), StoreError> {
    for c in &m.claims {
        db.execute(
            "INSERT INTO vendor_claims (thread_id, org_id, message_ref, status, statement,
                 signed_part, signature, signer, signed_by_org, counted, reason, received_at,
                 sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            args![
                thread_id,
                c.org_id,
                message_ref,
                c.status,
                c.statement,
                c.signed_part,
                m.signature,
                c.signer,
                c.signed_by_org,
                c.counted,
                c.reason,
                time_text(m.received_at),
                c.sealed
            ],
        )?;
    }
    Ok(())
}

/// Records that `address` was reminded (inside the reminder's notice transaction).
pub(super) fn insert_reminder_tx(
    db: &Db,
    thread_id: i64,
    org_id: i64,
    address: &str,
    outbox_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO reminders (thread_id, org_id, address, outbox_id, sent_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![thread_id, org_id, address, outbox_id, time_text(now)],
    )?;
    Ok(())
}
