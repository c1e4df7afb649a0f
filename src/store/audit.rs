//! The audit trail: who changed what, and when. One row per operation an analyst (or a script
//! acting as one) did through `ops`; written in the transaction of the change it records
//! whenever the change is a store write ([`Store::atomically`]).

use super::sql::{Db, Row, args};
use super::{Store, StoreError, time_text};
use crate::tracking::TrackingNumber;
use chrono::{DateTime, Utc};

pub(super) const MIGRATION: &str = "
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    thread      TEXT,
    message_ref INTEGER REFERENCES messages(id),
    detail      TEXT NOT NULL
);
CREATE INDEX audit_thread ON audit(thread);
";

/// One record to write. `thread` is the tracking number (numbers never change, so the record
/// still reads right after a promotion).
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub at: DateTime<Utc>,
    /// `cli:<os user>`, `token:<analyst>`, ...
    pub actor: String,
    /// What was done, as the command is spelled: `open`, `triage assign`, `token add`, ...
    pub action: String,
    pub thread: Option<TrackingNumber>,
    /// Row id of the message it concerns.
    pub message_ref: Option<i64>,
    /// One line for people: the inputs and the result.
    pub detail: String,
}

/// One record as `casegate audit` shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// UTC, RFC 3339.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub thread: Option<String>,
    /// Message-ID of the message it concerns.
    pub message_id: Option<String>,
    /// SHA-256 of the message it concerns (its short id is a prefix of this).
    pub message_sha256: Option<String>,
    pub detail: String,
}

pub(super) fn insert(db: &Db, a: &NewAudit) -> Result<i64, StoreError> {
    db.insert_new(
        "INSERT INTO audit (at, actor, action, thread, message_ref, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![
            time_text(a.at),
            a.actor,
            a.action,
            a.thread.as_ref().map(TrackingNumber::as_str),
            a.message_ref,
            a.detail
        ],
    )
}

/// One row of `SELECT a.id, a.at, a.actor, a.action, a.thread, m.message_id, m.sha256,
/// a.detail FROM audit a LEFT JOIN messages m ...` (the audit list and its pages).
pub(super) fn audit_entry(r: &Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        thread: r.get(4)?,
        message_id: r.get(5)?,
        message_sha256: r.get(6)?,
        detail: r.get(7)?,
    })
}

impl Store {
    /// Writes one audit record (inside the caller's transaction when there is one).
    pub fn record_audit(&self, a: &NewAudit) -> Result<i64, StoreError> {
        insert(self.db(), a)
    }

    /// Audit records, oldest first: all of them, or those of one thread (and of the reports
    /// promoted into it). `limit` keeps only the newest that many.
    pub fn audit_entries(
        &self,
        thread: Option<&TrackingNumber>,
        limit: Option<usize>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let mut rows = self.db().map(
            "SELECT a.id, a.at, a.actor, a.action, a.thread, m.message_id, m.sha256, a.detail
             FROM audit a LEFT JOIN messages m ON m.id = a.message_ref
             WHERE a.thread = ?1 OR ?1 IS NULL
                OR a.thread IN (SELECT r.number FROM threads r JOIN threads c ON c.id = r.promoted_to
                                WHERE c.number = ?1)
             ORDER BY a.id DESC LIMIT ?2",
            args![thread.map(TrackingNumber::as_str), limit],
            audit_entry,
        )?;
        rows.reverse();
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::Kind;

    fn n(s: &str) -> TrackingNumber {
        TrackingNumber::parse(s).unwrap()
    }

    fn audit(action: &str, thread: Option<&str>) -> NewAudit {
        NewAudit {
            at: Utc::now(),
            actor: "cli:ann".into(),
            action: action.into(),
            thread: thread.map(n),
            message_ref: None,
            detail: format!("did {action}"),
        }
    }

    #[test]
    fn a_failed_change_leaves_no_audit_record_and_a_good_one_leaves_exactly_one() {
        crate::store::testing::for_each_backend(|mut s| {
            let now = Utc::now();
            // The change fails (the number exists) after its audit record was written: both go.
            s.create_thread(Kind::Case, Some(&n("VU#409117")), "t", now)
                .unwrap();
            let r: Result<(), StoreError> = s.atomically(|s| {
                s.record_audit(&audit("open", Some("VU#409117")))?;
                s.create_thread(Kind::Case, Some(&n("VU#409117")), "again", now)?;
                Ok(())
            });
            assert!(matches!(r, Err(StoreError::Conflict(_))));
            assert!(s.audit_entries(None, None).unwrap().is_empty());

            let t: Result<_, StoreError> = s.atomically(|s| {
                let t = s.create_thread(Kind::Report, Some(&n("VRF#25-11-BKQTZ")), "r", now)?;
                s.record_audit(&audit("open", Some("VRF#25-11-BKQTZ")))?;
                Ok(t)
            });
            assert_eq!(t.unwrap().number.as_str(), "VRF#25-11-BKQTZ");
            let all = s.audit_entries(None, None).unwrap();
            assert_eq!(all.len(), 1);
            assert_eq!(all[0].actor, "cli:ann");
            // Nested use is one transaction too: the inner success is undone by the outer failure.
            let r: Result<(), StoreError> = s.atomically(|s| {
                s.atomically(|s| s.record_audit(&audit("inner", None)).map(|_| ()))?;
                Err(StoreError::Invalid("outer fails".into()))
            });
            assert!(r.is_err());
            assert_eq!(s.audit_entries(None, None).unwrap().len(), 1);
        });
    }

    #[test]
    fn a_thread_shows_its_own_records_and_those_of_the_report_it_came_from() {
        crate::store::testing::for_each_backend(|mut s| {
            let now = Utc::now();
            s.create_thread(Kind::Report, Some(&n("VRF#25-11-BKQTZ")), "r", now)
                .unwrap();
            s.record_audit(&audit("open", Some("VRF#25-11-BKQTZ")))
                .unwrap();
            s.promote(&n("VRF#25-11-BKQTZ"), Some(&n("VU#123456")), now)
                .unwrap();
            s.record_audit(&audit("set", Some("VU#123456"))).unwrap();
            s.create_thread(Kind::Case, Some(&n("VU#999999")), "other", now)
                .unwrap();
            s.record_audit(&audit("set", Some("VU#999999"))).unwrap();
            s.record_audit(&audit("token add", None)).unwrap();
            let case: Vec<String> = s
                .audit_entries(Some(&n("VU#123456")), None)
                .unwrap()
                .into_iter()
                .map(|e| e.action)
                .collect();
            assert_eq!(case, vec!["open", "set"]);
            assert_eq!(s.audit_entries(None, None).unwrap().len(), 4);
            let newest = s.audit_entries(None, Some(2)).unwrap();
            assert_eq!(newest.len(), 2);
            assert_eq!(newest[1].action, "token add");
        });
    }
}
