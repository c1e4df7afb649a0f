//! Following up on organizations that do not answer: which are overdue, and whether a
//! contact is due a reminder. Pure: the store gives the times, these functions decide.
//!
//! An organization is overdue in a case when it was notified (a notice queued to one of its
//! contacts, not held) at least `overdue_days` ago and nobody of it has written into the case
//! since (automatic mail does not count). "About two weeks" is when CERT/CC steps in, hence
//! the default of 14 days.

use chrono::{DateTime, Utc};

/// Parses a stored time (RFC 3339); `None` when unreadable.
pub fn time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whole days from `then` to `now` (0 when `then` is in the future).
pub fn days_since(then: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - then).num_days().max(0)
}

/// Days since the first notice when the organization is overdue, else `None`.
pub fn overdue_days(
    first_notified: Option<DateTime<Utc>>,
    last_heard: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    after_days: u32,
) -> Option<i64> {
    let first = first_notified?;
    if last_heard.is_some_and(|heard| heard >= first) {
        return None;
    }
    let days = days_since(first, now);
    (days >= i64::from(after_days)).then_some(days)
}

/// Whether a contact last reminded at `last` may be reminded again at `now`.
pub fn reminder_due(last: Option<DateTime<Utc>>, now: DateTime<Utc>, interval_days: u32) -> bool {
    match last {
        None => true,
        Some(l) => now - l >= chrono::Duration::days(i64::from(interval_days)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn overdue_only_when_notified_long_enough_ago_and_silent_since() {
        let now = Utc::now();
        let d = |n: i64| Some(now - Duration::days(n));
        assert_eq!(overdue_days(None, None, now, 14), None, "never notified");
        assert_eq!(overdue_days(d(13), None, now, 14), None, "not yet");
        assert_eq!(overdue_days(d(14), None, now, 14), Some(14));
        assert_eq!(
            overdue_days(d(30), d(31), now, 14),
            Some(30),
            "heard only before"
        );
        assert_eq!(overdue_days(d(30), d(2), now, 14), None, "answered");
        assert_eq!(
            overdue_days(d(30), d(30), now, 14),
            None,
            "answered at once"
        );
        assert_eq!(overdue_days(d(-1), None, now, 0), Some(0), "clock skew");
    }

    #[test]
    fn reminders_at_most_once_per_interval() {
        let now = Utc::now();
        assert!(reminder_due(None, now, 14));
        assert!(!reminder_due(Some(now - Duration::days(13)), now, 14));
        assert!(reminder_due(Some(now - Duration::days(14)), now, 14));
        assert!(time("2026-11-23T10:00:00Z").is_some());
        assert!(time("yesterday").is_none());
    }
}
