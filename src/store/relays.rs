//! The case discussion: whether a thread relays participants' mail, and the relays owed.
//!
//! A relay is owed the moment a relayable message is stored: `pending_relays` is written in
//! the message's own transaction (like `pending_acks`), and removed in the transaction that
//! queues the relay's copies (`NoticeWriter::settle_relay`) — so a crash in between relays it
//! later, and two processes paying the same debt relay it once.

use chrono::{DateTime, Utc};

use super::sql::{Db, args};
use super::{Store, StoreError, time_text};

/// Schema v15.
pub(super) const MIGRATION: &str = "
ALTER TABLE threads ADD COLUMN discussion TEXT NOT NULL DEFAULT 'hub'
    CHECK (discussion IN ('hub', 'relay'));
ALTER TABLE outbox_notices ADD COLUMN relay_of INTEGER REFERENCES messages(id);
CREATE TABLE pending_relays (
    message_ref INTEGER PRIMARY KEY REFERENCES messages(id),
    thread_id   INTEGER NOT NULL REFERENCES threads(id),
    created_at  TEXT NOT NULL
);
";

/// A relay owed: the stored message and the thread it was posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwedRelay {
    pub message_ref: i64,
    pub thread_id: i64,
}

impl Store {
    /// `hub` or `relay`.
    pub fn set_discussion(&mut self, thread_id: i64, mode: &str) -> Result<(), StoreError> {
        self.db.write(|db| {
            db.execute(
                "UPDATE threads SET discussion = ?2 WHERE id = ?1",
                args![thread_id, mode],
            )?;
            Ok(())
        })
    }

    /// Relays owed, oldest first.
    pub fn owed_relays(&self) -> Result<Vec<OwedRelay>, StoreError> {
        self.db.map(
            "SELECT message_ref, thread_id FROM pending_relays ORDER BY created_at, message_ref",
            args![],
            |r| {
                Ok(OwedRelay {
                    message_ref: r.get(0)?,
                    thread_id: r.get(1)?,
                })
            },
        )
    }

    /// Gives up a relay that can never be made (nobody else to send to, relaying turned off).
    /// `false` when it was not owed (any more).
    pub fn forget_owed_relay(&mut self, message_ref: i64) -> Result<bool, StoreError> {
        self.db.write(|db| {
            Ok(db.execute(
                "DELETE FROM pending_relays WHERE message_ref = ?1",
                args![message_ref],
            )? > 0)
        })
    }

    /// Whether `message_id` is one casegate sent (a copy of ours coming back).
    pub fn is_sent_message_id(&self, message_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .row(
                "SELECT 1 FROM sent_message_ids WHERE message_id = ?1",
                args![message_id],
            )?
            .is_some())
    }
}

/// Records the relay a stored message is owed (inside its commit).
pub(super) fn owe_relay_tx(
    db: &Db,
    message_ref: i64,
    thread_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO pending_relays (message_ref, thread_id, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (message_ref) DO NOTHING",
        args![message_ref, thread_id, time_text(now)],
    )?;
    Ok(())
}
