//! Mail out: notices to a thread's participants, the outbox, and held copies released once a
//! key is there.

use super::{Actor, Context, OpsError, audit_record};
use crate::app;
use crate::outbox::{self, QueuedCopy, Selection};
use crate::store::Store;
use crate::store::outbox::{AttemptRow, OutboxFilter, OutboxRow};
use crate::tracking::TrackingNumber;

/// What to send (`notify`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NoticeRequest {
    /// The notice text.
    pub body: String,
    /// Default: the thread's title.
    pub subject: Option<String>,
    /// An organisation, or `all`.
    pub to: String,
    /// Message-ID of the message this answers.
    pub in_reply_to: Option<String>,
}

/// The copies of one notice (`notify --json` prints each copy on its own line).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Notified {
    pub copies: Vec<QueuedCopy>,
    /// What the person should know, e.g. that no SMTP server is configured yet.
    pub notes: Vec<String>,
}

/// Queues one copy of a notice per contact of the chosen participants of thread `n`, each
/// encrypted to that contact's key and signed once by the coordinator; contacts without a
/// usable key get a held copy. All copies and the audit record are one transaction.
pub fn notify(
    cx: &mut Context,
    actor: &Actor,
    n: &TrackingNumber,
    request: &NoticeRequest,
) -> Result<Notified, OpsError> {
    actor.may_change("send notices")?;
    let in_reply_to = request
        .in_reply_to
        .as_deref()
        .map(|id| {
            crate::header::MessageId::parse(id).map_err(|e| {
                OpsError::Invalid(format!(
                    "in-reply-to {id:?} is not one Message-ID ({e}); give one like '<id@host.example>'"
                ))
            })
        })
        .transpose()?;
    if request.body.trim().is_empty() {
        return Err(OpsError::Invalid(
            "the notice body is empty; write the notice text first".into(),
        ));
    }
    let t = cx.thread(n)?;
    let coordinator = app::coordinator_key(cx.settings())?.ok_or_else(|| {
        OpsError::Conflict("no coordinator key yet; run `casegate init` first".into())
    })?;
    let selection = Selection::parse(&request.to);
    let subject = request.subject.as_deref().unwrap_or(&t.title);
    let audit = audit_record(
        actor,
        "notify",
        Some(&t.number),
        None,
        format!("to {}: {subject:?}", request.to),
    );
    let settings = cx.settings().clone();
    let copies = outbox::notify_audited(
        cx.store_mut(),
        &coordinator,
        &t,
        &selection,
        &outbox::compose::Notice {
            thread: t.number.as_str(),
            subject,
            body: &request.body,
            in_reply_to: in_reply_to.as_ref(),
            automatic: false,
        },
        &settings.config.outbox,
        &settings.config.coordinator.address,
        Some(&audit),
    )?;
    let mut notes = Vec::new();
    if settings.config.smtp.is_none() {
        notes.push(
            "no [smtp] configured; queued copies are sent once it is and `casegate serve` runs"
                .into(),
        );
    }
    Ok(Notified { copies, notes })
}

/// One outbound copy, with its SMTP attempts when asked for (`outbox list --json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxEntry {
    #[serde(flatten)]
    pub copy: OutboxRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptRow>>,
}

/// The statuses a copy can have.
pub const STATUSES: &[&str] = &["queued", "sent", "retrying", "held", "dead", "bounced"];

/// Outbound copies, oldest first: of one thread and/or one status; with `attempts`, each
/// SMTP attempt and reply too.
pub fn outbox(
    cx: &Context,
    _actor: &Actor,
    n: Option<&TrackingNumber>,
    status: Option<&str>,
    attempts: bool,
) -> Result<Vec<OutboxEntry>, OpsError> {
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(OpsError::Invalid(format!(
            "status {s:?} is not one of {}",
            STATUSES.join(", ")
        )));
    }
    let thread_id = n.map(|n| cx.thread(n).map(|t| t.id)).transpose()?;
    let store = cx.store();
    store
        .outbox_rows(&OutboxFilter {
            thread_id,
            status: status.map(str::to_string),
        })?
        .into_iter()
        .map(|copy| {
            let attempt_log = if attempts {
                Some(store.outbox_attempts(copy.id)?)
            } else {
                None
            };
            Ok(OutboxEntry { copy, attempt_log })
        })
        .collect()
}

/// Seals and queues the held copies (of one thread, or all) whose contact now has a usable
/// key; the others stay held with the current reason. Returns every held copy looked at.
pub fn release(
    cx: &mut Context,
    actor: &Actor,
    n: Option<&TrackingNumber>,
) -> Result<Vec<QueuedCopy>, OpsError> {
    actor.may_change("release held copies")?;
    let thread_id = n.map(|n| cx.thread(n).map(|t| t.id)).transpose()?;
    release_held(cx.store_mut(), actor, thread_id, "outbox release")
}

/// Releases held copies and audits each thread's released ones — one transaction.
pub(crate) fn release_held(
    store: &mut Store,
    actor: &Actor,
    thread_id: Option<i64>,
    action: &str,
) -> Result<Vec<QueuedCopy>, OpsError> {
    store.atomically(|s| {
        let copies = outbox::release_held(s, thread_id)?;
        let mut by_thread: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for c in copies.iter().filter(|c| c.status == "queued") {
            by_thread
                .entry(c.thread.as_str())
                .or_default()
                .push(c.address.as_str());
        }
        for (thread, released) in by_thread {
            s.record_audit(&audit_record(
                actor,
                action,
                TrackingNumber::parse(thread).ok().as_ref(),
                None,
                format!(
                    "{} held cop(ies) sealed and queued: {}",
                    released.len(),
                    released.join(", ")
                ),
            ))?;
        }
        Ok(copies)
    })
}
