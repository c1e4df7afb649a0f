//! Triage: messages that wait for a person, and a person's decision to post one into a thread.

use chrono::Utc;

use super::messages::{self, Scope};
use super::{Actor, Context, OpsError, Page, Paged, audit_record};
use crate::store::{MessageRecord, StoreError};
use crate::tracking::TrackingNumber;

/// Messages waiting in triage, oldest first (with `include_assigned`, also those a person
/// already posted into a thread).
pub fn list(
    cx: &Context,
    _actor: &Actor,
    include_assigned: bool,
    page: Page,
) -> Result<Paged<MessageRecord>, OpsError> {
    let (items, total) = cx
        .store()
        .triage_page(include_assigned, page.offset, page.limit)?;
    Ok(page.of(items, total))
}

/// A triaged message posted into a thread (`triage assign --json`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Assigned {
    pub message_id: Option<String>,
    pub short_id: String,
    pub thread: TrackingNumber,
    pub assigned_by: String,
}

/// Posts the triaged message `reference` (Message-ID or short id) into thread `n`, recording
/// who decided: `decided_by`, else the actor's person.
pub fn assign(
    cx: &mut Context,
    actor: &Actor,
    reference: &str,
    n: &TrackingNumber,
    decided_by: Option<&str>,
) -> Result<Assigned, OpsError> {
    actor.may_change("assign triaged messages")?;
    let t = cx.thread(n)?;
    let m = messages::resolve(cx, reference, Scope::Triage)?;
    let by = decided_by
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .unwrap_or(actor.person())
        .to_string();
    cx.store_mut().atomically(|s| {
        s.triage_assign(m.id, t.id, &by, Utc::now())?;
        s.record_audit(&audit_record(
            actor,
            "triage assign",
            Some(&t.number),
            Some(m.id),
            format!(
                "assigned by {by}; it waited because: {}",
                m.triage_reason.as_deref().unwrap_or(&m.reason)
            ),
        ))?;
        Ok::<_, StoreError>(())
    })?;
    Ok(Assigned {
        message_id: m.message_id,
        short_id: m.short_id,
        thread: t.number,
        assigned_by: by,
    })
}
