//! IMAP mailbox checkpoints: per (account, mailbox) the UIDVALIDITY and the highest UID whose
//! message is durably stored. Advanced only inside the transaction that stores the message, so
//! after a crash the checkpoint never claims a message the store does not have.

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
use super::sql::{Db, args};

/// Advance the checkpoint of one mailbox, inside the transaction that stored the message.
pub(crate) fn advance(
    db: &Db,
    account: &str,
    mailbox: &str,
    uidvalidity: u32,
    uid: u32,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO mailbox_state (account, mailbox, uidvalidity, last_uid, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (account, mailbox) DO UPDATE SET
           last_uid = CASE WHEN mailbox_state.uidvalidity = excluded.uidvalidity
                            AND mailbox_state.last_uid > excluded.last_uid
                           THEN mailbox_state.last_uid ELSE excluded.last_uid END,
           uidvalidity = excluded.uidvalidity,
           updated_at = excluded.updated_at",
        args![account, mailbox, uidvalidity, uid, super::now_text()],
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
        self.db()
            .row(
                "SELECT uidvalidity, last_uid FROM mailbox_state WHERE account = ?1 AND mailbox = ?2",
                args![account, mailbox],
            )?
            .map(|r| {
                Ok(Checkpoint {
                    uidvalidity: r.get(0)?,
                    last_uid: r.get(1)?,
                })
            })
            .transpose()
    }

    /// The server renumbered the mailbox (new UIDVALIDITY): every old UID is meaningless, so
    /// processing restarts at UID 1 under the new value. Stored messages are recognised by their
    /// SHA-256 when they come again, so nothing is stored twice.
    pub fn mailbox_reset(
        &mut self,
        account: &str,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<(), StoreError> {
        self.db().execute(
            "INSERT INTO mailbox_state (account, mailbox, uidvalidity, last_uid, updated_at)
             VALUES (?1, ?2, ?3, 0, ?4)
             ON CONFLICT (account, mailbox) DO UPDATE SET
               uidvalidity = excluded.uidvalidity, last_uid = 0, updated_at = excluded.updated_at",
            args![account, mailbox, uidvalidity, super::now_text()],
        )?;
        Ok(())
    }

    /// Every mailbox with a checkpoint, and how many messages it brought in since `since`
    /// (e.g. today 00:00 UTC) and how many of those were quarantined: what `casegate status`
    /// shows when the daemon is not asked.
    pub fn mailbox_summaries(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<MailboxSummary>, StoreError> {
        self.db().map(
            "WITH p AS (SELECT account, mailbox, uidvalidity, last_uid, updated_at,
                               'imap://' || account || '/' || mailbox || ';' AS prefix
                          FROM mailbox_state)
             SELECT p.account, p.mailbox, p.uidvalidity, p.last_uid, p.updated_at,
                    (SELECT count(*) FROM messages m
                      WHERE substr(m.source, 1, length(p.prefix)) = p.prefix AND m.received_at >= ?1),
                    (SELECT count(*) FROM messages m JOIN quarantine q ON q.message_ref = m.id
                      WHERE substr(m.source, 1, length(p.prefix)) = p.prefix AND m.received_at >= ?1)
             FROM p
             ORDER BY p.account, p.mailbox",
            args![super::time_text(since)],
            |r| {
                Ok(MailboxSummary {
                    account: r.get(0)?,
                    mailbox: r.get(1)?,
                    uidvalidity: r.get(2)?,
                    last_uid: r.get(3)?,
                    updated_at: r.get(4)?,
                    stored_since: r.get(5)?,
                    quarantined_since: r.get(6)?,
                })
            },
        )
    }
}

/// One mailbox as the store knows it (see [`super::Store::mailbox_summaries`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct MailboxSummary {
    pub account: String,
    pub mailbox: String,
    pub uidvalidity: u32,
    pub last_uid: u32,
    /// When the checkpoint last moved (RFC 3339, UTC).
    pub updated_at: String,
    pub stored_since: i64,
    pub quarantined_since: i64,
}

#[cfg(test)]
mod tests {
    use crate::store::{Disposition, MessageSource, NewMessage};

    fn imap_msg(raw: &[u8], uidvalidity: u32, uid: u32, d: Disposition) -> NewMessage {
        let source = MessageSource::Imap {
            account: "a@h".into(),
            mailbox: "INBOX".into(),
            uidvalidity,
            uid,
        };
        NewMessage {
            reason: "test".into(),
            ..NewMessage::inbound(raw, source, chrono::Utc::now(), d)
        }
    }

    #[test]
    fn reset_restarts_at_zero_and_summaries_count_today() {
        crate::store::testing::for_each_backend(|mut s| {
            s.commit_message(&imap_msg(b"one", 5, 10, Disposition::Triage))
                .unwrap();
            s.commit_message(&imap_msg(b"two", 5, 11, Disposition::Quarantine))
                .unwrap();
            // A lower UID never moves the checkpoint back.
            s.commit_message(&imap_msg(b"three", 5, 3, Disposition::Triage))
                .unwrap();
            let cp = s.mailbox_checkpoint("a@h", "INBOX").unwrap().unwrap();
            assert_eq!((cp.uidvalidity, cp.last_uid), (5, 11));
            s.mailbox_reset("a@h", "INBOX", 9).unwrap();
            let cp = s.mailbox_checkpoint("a@h", "INBOX").unwrap().unwrap();
            assert_eq!((cp.uidvalidity, cp.last_uid), (9, 0));
            let today = chrono::Utc::now() - chrono::Duration::hours(1);
            let sum = s.mailbox_summaries(today).unwrap();
            assert_eq!(sum.len(), 1);
            assert_eq!((sum[0].stored_since, sum[0].quarantined_since), (3, 1));
            let later = chrono::Utc::now() + chrono::Duration::hours(1);
            assert_eq!(s.mailbox_summaries(later).unwrap()[0].stored_since, 0);
        });
    }
}
