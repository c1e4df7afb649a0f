//! One page of a long list at a time, for faces whose callers choose how much they see (HTTP):
//! `LIMIT`/`OFFSET` in SQL and a count, so a triage queue of 10,000 costs a page, not 10,000
//! records. Orders match the unpaged methods, so pages concatenate to the whole list.

use super::outbox::{OutboxFilter, OutboxRow};
use super::sql::args;
use super::{AuditEntry, MessageRecord, Store, StoreError};
use crate::tracking::TrackingNumber;

/// `offset`, `limit` as SQL takes them (a limit past `i64::MAX` means all).
fn bounds(offset: usize, limit: usize) -> (i64, i64) {
    (
        i64::try_from(offset).unwrap_or(i64::MAX),
        i64::try_from(limit).unwrap_or(i64::MAX),
    )
}

/// The tail of a [`Store::message_records`] query for one page of messages in received order
/// (`received_at`, `id`), chosen by `from_where` (over `messages m`). The page's ids are picked
/// first, from the indexes on `(received_at, id)` and `(thread_id, received_at, id)` alone;
/// only its rows are then read and described. Sorting and skipping whole records instead would
/// read every message (their raw bytes included) and work out every record's short id and
/// thread for each request: ~0.1 s for the last page of a triage queue of 10,000.
fn one_page(from_where: &str, limit: &str, offset: &str) -> String {
    format!(
        "JOIN (SELECT m.id AS page_id, m.received_at AS page_at {from_where}
               ORDER BY m.received_at, m.id LIMIT {limit} OFFSET {offset}) p ON p.page_id = m.id
         ORDER BY p.page_at, p.page_id"
    )
}

impl Store {
    /// [`Store::triage`], one page, and how many there are in all.
    pub fn triage_page(
        &self,
        include_assigned: bool,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<MessageRecord>, usize), StoreError> {
        let (o, l) = bounds(offset, limit);
        let all = i64::from(include_assigned);
        let rows = self.message_records(
            &one_page(
                "FROM messages m JOIN triage tr ON tr.message_ref = m.id
                 WHERE (tr.assigned_at IS NULL OR ?1 = 1)",
                "?2",
                "?3",
            ),
            args![all, l, o],
        )?;
        let total: i64 = self.db.one(
            "SELECT count(*) FROM triage WHERE (assigned_at IS NULL OR ?1 = 1)",
            args![all],
        )?;
        Ok((rows, total as usize))
    }

    /// [`Store::quarantined`], one page, and how many there are in all.
    pub fn quarantined_page(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<MessageRecord>, usize), StoreError> {
        let (o, l) = bounds(offset, limit);
        let rows = self.message_records(
            &one_page(
                "FROM messages m JOIN quarantine q ON q.message_ref = m.id",
                "?1",
                "?2",
            ),
            args![l, o],
        )?;
        let total: i64 = self.db.one("SELECT count(*) FROM quarantine", args![])?;
        Ok((rows, total as usize))
    }

    /// [`Store::thread_messages`], one page, and how many there are in all.
    pub fn thread_messages_page(
        &self,
        thread_id: i64,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<MessageRecord>, usize), StoreError> {
        let (o, l) = bounds(offset, limit);
        let rows = self.message_records(
            &one_page(
                "FROM messages m
                 WHERE m.thread_id = ?1 OR m.thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1)",
                "?2",
                "?3",
            ),
            args![thread_id, l, o],
        )?;
        let total: i64 = self.db.one(
            "SELECT count(*) FROM messages m
             WHERE m.thread_id = ?1 OR m.thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1)",
            args![thread_id],
        )?;
        Ok((rows, total as usize))
    }

    /// [`Store::outbox_rows`], one page, and how many there are in all.
    pub fn outbox_rows_page(
        &self,
        filter: &OutboxFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<OutboxRow>, usize), StoreError> {
        let (o, l) = bounds(offset, limit);
        let rows = self.outbox_rows_where(
            "WHERE (o.thread_id = ?1 OR ?1 IS NULL) AND (o.status = ?2 OR ?2 IS NULL)
             ORDER BY o.id LIMIT ?3 OFFSET ?4",
            args![filter.thread_id, filter.status, l, o],
        )?;
        let total: i64 = self.db.one(
            "SELECT count(*) FROM outbox o
             WHERE (o.thread_id = ?1 OR ?1 IS NULL) AND (o.status = ?2 OR ?2 IS NULL)",
            args![filter.thread_id, filter.status],
        )?;
        Ok((rows, total as usize))
    }

    /// Audit records, NEWEST first (of one thread and the reports promoted into it, or all),
    /// one page, and how many there are in all.
    pub fn audit_page(
        &self,
        thread: Option<&TrackingNumber>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<AuditEntry>, usize), StoreError> {
        let (o, l) = bounds(offset, limit);
        let filter = "(a.thread = ?1 OR ?1 IS NULL
                OR a.thread IN (SELECT r.number FROM threads r JOIN threads c ON c.id = r.promoted_to
                                WHERE c.number = ?1))";
        let number = thread.map(TrackingNumber::as_str);
        let rows = self.db.map(
            &format!(
                "SELECT a.id, a.at, a.actor, a.action, a.thread, m.message_id, m.sha256, a.detail
                 FROM audit a LEFT JOIN messages m ON m.id = a.message_ref
                 WHERE {filter} ORDER BY a.id DESC LIMIT ?2 OFFSET ?3"
            ),
            args![number, l, o],
            |r| {
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
            },
        )?;
        let total: i64 = self.db.one(
            &format!("SELECT count(*) FROM audit a WHERE {filter}"),
            args![number],
        )?;
        Ok((rows, total as usize))
    }
}
