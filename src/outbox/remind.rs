//! Reminders to organizations that did not answer: one copy per contact, encrypted like any
//! notice, at most once per interval per contact (when is recorded in the reminder's own
//! transaction, so a crash never sends two).

use chrono::{DateTime, Utc};
use sequoia_openpgp::Cert;

use super::compose::Notice;
use super::{Extras, OutboxError, QueuedCopy, Selection};
use crate::config::OutboxConfig;
use crate::followup;
use crate::store::{NewAudit, Store, Thread};

/// An organization notified in a case that has not answered (`casegate overdue`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OverdueOrg {
    pub thread: String,
    pub title: String,
    pub org: String,
    #[serde(skip)]
    pub org_id: i64,
    #[serde(skip)]
    pub thread_id: i64,
    /// When it was first notified (UTC, RFC 3339).
    pub first_notified_at: String,
    /// Whole days since then.
    pub days: i64,
    /// When anyone of it last wrote into the case (before the notice), if ever.
    pub last_heard_at: Option<String>,
    pub contacts: Vec<String>,
}

/// Vendors of open cases notified at least `after_days` ago that have not answered since.
pub fn overdue(
    store: &Store,
    now: DateTime<Utc>,
    after_days: u32,
) -> Result<Vec<OverdueOrg>, OutboxError> {
    let mut out = Vec::new();
    for p in store.participants_followup(None, Some("vendor"))? {
        let first = p.first_notified_at.as_deref().and_then(followup::time);
        let heard = p.last_heard_at.as_deref().and_then(followup::time);
        if let (Some(days), Some(first_at)) = (
            followup::overdue_days(first, heard, now, after_days),
            p.first_notified_at.clone(),
        ) {
            out.push(OverdueOrg {
                thread: p.thread.number.to_string(),
                title: p.thread.title.clone(),
                org: p.org,
                org_id: p.org_id,
                thread_id: p.thread.id,
                first_notified_at: first_at,
                days,
                last_heard_at: p.last_heard_at,
                contacts: p.contacts,
            });
        }
    }
    Ok(out)
}

/// How reminders are sent.
#[derive(Debug, Clone, Copy)]
pub struct ReminderPolicy<'a> {
    pub from: &'a str,
    pub outbox: &'a OutboxConfig,
    pub interval_days: u32,
    /// Recorded as the actor of each reminder's audit record.
    pub actor: &'a str,
}

fn reminder_text(thread: &Thread, o: &OverdueOrg, from: &str) -> String {
    format!(
        "Hello,\n\nwe wrote to {org} about {number} ({title}) on {first} and have not heard \
         back since.\n\nPlease reply to this message (keep {number} in the subject). To tell \
         us where your products stand, start your reply with one line:\n\n    Status: affected \
         | not affected | fixed | under investigation\n\nand to give a statement for the \
         publication, add a line starting \"Statement:\" followed by it (sign your reply with \
         your organization's OpenPGP key so that it counts).\n\n-- \n{from}\n",
        org = o.org,
        number = thread.number,
        title = thread.title,
        first = o.first_notified_at,
    )
}

/// Sends a reminder to every contact of the overdue organizations that has not been
/// reminded within the interval. Returns the copies queued (or held).
pub fn send_reminders(
    store: &mut Store,
    coordinator: &Cert,
    overdue: &[OverdueOrg],
    policy: &ReminderPolicy<'_>,
) -> Result<Vec<QueuedCopy>, OutboxError> {
    let now = Utc::now();
    let mut sent = Vec::new();
    for o in overdue {
        let mut due = Vec::new();
        for a in &o.contacts {
            let last = store
                .last_reminded(o.thread_id, a)?
                .as_deref()
                .and_then(followup::time);
            if followup::reminder_due(last, now, policy.interval_days) {
                due.push(a.clone());
            }
        }
        if due.is_empty() {
            continue;
        }
        let thread = store.thread_by_id(o.thread_id)?;
        let body = reminder_text(&thread, o, policy.from);
        let audit = NewAudit {
            at: now,
            actor: policy.actor.to_string(),
            action: "remind".into(),
            thread: Some(thread.number.clone()),
            message_ref: None,
            detail: format!(
                "{} notified {} days ago, no reply: reminded {}",
                o.org,
                o.days,
                due.join(", ")
            ),
        };
        let copies = super::notify_with(
            store,
            coordinator,
            &thread,
            &Selection::Addresses(due),
            &Notice {
                thread: thread.number.as_str(),
                subject: &format!("Reminder: {}", thread.title),
                body: &body,
                in_reply_to: None,
                automatic: true,
            },
            policy.outbox,
            policy.from,
            &Extras {
                audit: Some(&audit),
                relay_of: None,
                reminder: true,
                at: None,
                ack_of: None,
            },
        )?;
        sent.extend(copies);
    }
    Ok(sent)
}
