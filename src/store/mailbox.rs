//! IMAP mailbox checkpoints (owned by the IMAP work; placeholder until it lands).

pub(super) const MIGRATION: &str = "
CREATE TABLE mailbox_state (
    account     TEXT NOT NULL,
    mailbox     TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (account, mailbox)
);
";

use super::StoreError;

/// Advance the checkpoint of one mailbox, inside the transaction that stored the message.
pub(crate) fn advance(
    tx: &rusqlite::Transaction<'_>,
    account: &str,
    mailbox: &str,
    uidvalidity: u32,
    uid: u32,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO mailbox_state (account, mailbox, uidvalidity, last_uid, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account, mailbox) DO UPDATE SET
           last_uid = CASE WHEN uidvalidity = excluded.uidvalidity
                           THEN max(last_uid, excluded.last_uid) ELSE excluded.last_uid END,
           uidvalidity = excluded.uidvalidity,
           updated_at = excluded.updated_at",
        rusqlite::params![account, mailbox, uidvalidity, uid, super::now_text()],
    )?;
    Ok(())
}

/// Where an IMAP mailbox's processing stands: every UID up to `last_uid` (under this
/// `uidvalidity`) is durably stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

impl super::Store {
    pub fn mailbox_checkpoint(
        &self,
        account: &str,
        mailbox: &str,
    ) -> Result<Option<Checkpoint>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn()
            .query_row(
                "SELECT uidvalidity, last_uid FROM mailbox_state WHERE account = ?1 AND mailbox = ?2",
                rusqlite::params![account, mailbox],
                |r| {
                    Ok(Checkpoint {
                        uidvalidity: r.get(0)?,
                        last_uid: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }
}
