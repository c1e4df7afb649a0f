//! Mailbox leases: with several instances on one database, each IMAP mailbox is watched by one
//! of them at a time. The holder renews its row while it watches; when it dies the row expires
//! and another instance takes the mailbox over.
//!
//! The lease keeps instances from doing the same work twice; it is not what makes delivery
//! exactly-once. That rests, as with one instance, on the message's transaction: its SHA-256
//! is unique and the mailbox checkpoint advances in the same commit, so two instances that both
//! fetched a message (a lease that expired under a paused holder, clocks far apart) store it
//! once, and the second one's MOVE finds nothing left to move.
//!
//! Expiry times are written by the instances' own clocks (UTC): keep the hosts' clocks in step
//! (NTP); a skew shortens or lengthens a lease by that much.

use chrono::{DateTime, SecondsFormat, Utc};

use super::sql::args;
use super::{Store, StoreError};

/// Who holds a mailbox, and until when (RFC 3339, UTC, milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Lease {
    pub account: String,
    pub mailbox: String,
    pub owner: String,
    pub expires_at: String,
}

fn lease_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Store {
    /// Takes the lease on (`account`, `mailbox`) for `owner` until `now + ttl`, or renews it
    /// when `owner` holds it already. `false` when another owner holds an unexpired lease.
    pub fn take_mailbox_lease(
        &mut self,
        account: &str,
        mailbox: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|_| StoreError::Invalid("lease time out of range".into()))?;
        let (now_text, until) = (lease_time(now), lease_time(now + ttl));
        self.db_mut().write(|db| {
            let holder: Option<String> = db.opt(
                "INSERT INTO mailbox_leases (account, mailbox, owner, expires_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (account, mailbox) DO UPDATE SET
                     owner = excluded.owner, expires_at = excluded.expires_at
                 WHERE mailbox_leases.owner = excluded.owner OR mailbox_leases.expires_at < ?5
                 RETURNING owner",
                args![account, mailbox, owner, until, now_text],
            )?;
            Ok(holder.as_deref() == Some(owner))
        })
    }

    /// Gives the lease up (at shutdown), so another instance need not wait for it to expire.
    pub fn release_mailbox_lease(
        &mut self,
        account: &str,
        mailbox: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        self.db().execute(
            "DELETE FROM mailbox_leases WHERE account = ?1 AND mailbox = ?2 AND owner = ?3",
            args![account, mailbox, owner],
        )?;
        Ok(())
    }

    /// Every lease row (expired ones included), for `status`.
    pub fn mailbox_leases(&self) -> Result<Vec<Lease>, StoreError> {
        self.db().map(
            "SELECT account, mailbox, owner, expires_at FROM mailbox_leases
             ORDER BY account, mailbox",
            args![],
            |r| {
                Ok(Lease {
                    account: r.get(0)?,
                    mailbox: r.get(1)?,
                    owner: r.get(2)?,
                    expires_at: r.get(3)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;

    use crate::store::testing::for_each_backend;

    #[test]
    fn one_owner_at_a_time_and_takeover_after_expiry() {
        for_each_backend(|mut s| {
            let t0 = Utc::now();
            let ttl = Duration::from_secs(20);
            assert!(s.take_mailbox_lease("a", "INBOX", "one", t0, ttl).unwrap());
            // Another owner cannot take it while it runs; the holder renews it.
            assert!(!s.take_mailbox_lease("a", "INBOX", "two", t0, ttl).unwrap());
            let t1 = t0 + chrono::Duration::seconds(10);
            assert!(s.take_mailbox_lease("a", "INBOX", "one", t1, ttl).unwrap());
            let t2 = t0 + chrono::Duration::seconds(25);
            assert!(!s.take_mailbox_lease("a", "INBOX", "two", t2, ttl).unwrap());
            // Another mailbox is free.
            assert!(s.take_mailbox_lease("a", "Other", "two", t2, ttl).unwrap());
            // Expired (renewed at t1, 20 s): the other owner takes over; the first one lost it.
            let t3 = t1 + chrono::Duration::seconds(21);
            assert!(s.take_mailbox_lease("a", "INBOX", "two", t3, ttl).unwrap());
            assert!(!s.take_mailbox_lease("a", "INBOX", "one", t3, ttl).unwrap());
            // Released: free at once.
            s.release_mailbox_lease("a", "INBOX", "one").unwrap(); // not the holder: no effect
            assert!(!s.take_mailbox_lease("a", "INBOX", "one", t3, ttl).unwrap());
            s.release_mailbox_lease("a", "INBOX", "two").unwrap();
            assert!(s.take_mailbox_lease("a", "INBOX", "one", t3, ttl).unwrap());
            let leases = s.mailbox_leases().unwrap();
            assert_eq!(leases.len(), 2);
            assert_eq!(leases[0].owner, "one");
        });
    }
}
