//! One page of a long list at a time, for faces whose callers choose how much they see (HTTP):
//! `LIMIT`/`OFFSET` in SQL and a count, so a triage queue of 10,000 costs a page, not 10,000
//! records. Orders match the unpaged methods, so pages concatenate to the whole list.

use super::outbox::{OutboxFilter, OutboxRow};
use super::sql::args;
use super::{AuditEntry, MessageRecord, Store, StoreError};
use crate::tracking::TrackingNumber;

/// `offset`, `limit` as SQL takes them (a limit past `i64::MAX` means all). A caller that wants
/// only the count asks for limit 0, and then no page is read at all: besides the work, SQLite
/// plans a `LIMIT ?` for the value bound, so a cached statement run with limit 0 and then 100
/// is compiled again each time (that was a tenth of a thread page's CPU).
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
        let rows = if l == 0 {
            Vec::new()
        } else {
            self.message_records(
                &one_page(
                    "FROM messages m JOIN triage tr ON tr.message_ref = m.id
                     WHERE (tr.assigned_at IS NULL OR ?1 = 1)",
                    "?2",
                    "?3",
                ),
                args![all, l, o],
            )?
        };
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
        let rows = if l == 0 {
            Vec::new()
        } else {
            self.message_records(
                &one_page(
                    "FROM messages m JOIN quarantine q ON q.message_ref = m.id",
                    "?1",
                    "?2",
                ),
                args![l, o],
            )?
        };
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
        let rows = if l == 0 {
            Vec::new()
        } else {
            self.message_records(
                &one_page(
                    "FROM messages m
                     WHERE m.thread_id = ?1 OR m.thread_id IN (SELECT id FROM threads WHERE promoted_to = ?1)",
                    "?2",
                    "?3",
                ),
                args![thread_id, l, o],
            )?
        };
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
        let rows = if l == 0 {
            Vec::new()
        } else {
            self.outbox_rows_where(
                "WHERE (o.thread_id = ?1 OR ?1 IS NULL) AND (o.status = ?2 OR ?2 IS NULL)
                 ORDER BY o.id LIMIT ?3 OFFSET ?4",
                args![filter.thread_id, filter.status, l, o],
            )?
        };
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
        let rows = if l == 0 {
            Vec::new()
        } else {
            self.db.map(
                &format!(
                    "SELECT a.id, a.at, a.actor, a.action, a.thread, m.message_id, m.sha256, a.detail
                     FROM audit a LEFT JOIN messages m ON m.id = a.message_ref
                     WHERE {filter} ORDER BY a.id DESC LIMIT ?2 OFFSET ?3"
                ),
                args![number, l, o],
                super::audit::audit_entry,
            )?
        };
        let total: i64 = self.db.one(
            &format!("SELECT count(*) FROM audit a WHERE {filter}"),
            args![number],
        )?;
        Ok((rows, total as usize))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use crate::store::testing::for_each_backend;
    use crate::store::{Disposition, MessageRecord, MessageSource, NewMessage, Store};
    use crate::tracking::{Kind, TrackingNumber};

    /// Every page of `size`, from the first to past the end, concatenated.
    fn all_pages(
        size: usize,
        page: impl Fn(usize, usize) -> (Vec<MessageRecord>, usize),
    ) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut offset = 0;
        loop {
            let (items, total) = page(offset, size);
            assert!(items.len() <= size);
            ids.extend(items.iter().map(|m| m.id));
            if items.is_empty() {
                assert_eq!(ids.len(), total, "the pages hold all {total}");
                return ids;
            }
            offset += size;
        }
    }

    fn ids(records: Vec<MessageRecord>) -> Vec<i64> {
        records.into_iter().map(|m| m.id).collect()
    }

    /// Pages are chosen by index and then read: concatenated they are the whole list in the
    /// same order, ties of `received_at` (mail that arrives in the same second) included, and
    /// a thread's pages include the messages of the report promoted into it.
    #[test]
    fn pages_concatenate_to_the_whole_list_in_received_order() {
        for_each_backend(|mut s: Store| {
            let report = s
                .create_thread(Kind::Report, None, "report", Utc::now())
                .unwrap();
            let case_number = TrackingNumber::parse("VU#500001").unwrap();
            let case = s
                .create_thread(Kind::Case, Some(&case_number), "case", Utc::now())
                .unwrap();
            let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
            // Out of order and in threes per second: ids and times do not agree. Halfway, the
            // report becomes a case, which gets messages of its own.
            let mut promoted = None;
            for i in 0..31_i64 {
                if i == 16 {
                    let to = TrackingNumber::parse("VU#500002").unwrap();
                    promoted = Some(s.promote(&report.number, Some(&to), Utc::now()).unwrap());
                }
                let d = match (i % 4, &promoted) {
                    (0, _) => Disposition::Triage,
                    (1, _) => Disposition::Post { thread_id: case.id },
                    (2, None) => Disposition::Post {
                        thread_id: report.id,
                    },
                    (2, Some(p)) => Disposition::Post { thread_id: p.id },
                    _ => Disposition::Quarantine,
                };
                let at = t0 + Duration::seconds((31 - i) / 3);
                let raw = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
                let m = NewMessage {
                    reason: "test".into(),
                    ..NewMessage::inbound(raw.as_bytes(), MessageSource::Stdin, at, d)
                };
                s.commit_message(&m).unwrap();
            }
            let promoted = promoted.unwrap().id;
            assert_eq!(
                s.thread_messages(promoted).unwrap().len(),
                8,
                "the case and its report"
            );
            for size in [1, 3, 7, 100] {
                assert_eq!(
                    all_pages(size, |o, l| s.triage_page(false, o, l).unwrap()),
                    ids(s.triage(false).unwrap()),
                    "triage, pages of {size}"
                );
                assert_eq!(
                    all_pages(size, |o, l| s.quarantined_page(o, l).unwrap()),
                    ids(s.quarantined().unwrap()),
                    "quarantine, pages of {size}"
                );
                for t in [case.id, report.id, promoted] {
                    assert_eq!(
                        all_pages(size, |o, l| s.thread_messages_page(t, o, l).unwrap()),
                        ids(s.thread_messages(t).unwrap()),
                        "thread {t}, pages of {size}"
                    );
                }
            }
            let whole = s.triage(false).unwrap();
            assert_eq!(whole.len(), 8);
            assert!(
                whole
                    .windows(2)
                    .all(|w| (&w[0].received_at, w[0].id) < (&w[1].received_at, w[1].id)),
                "oldest first, then by id"
            );
        });
    }
}
