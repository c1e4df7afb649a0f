//! Quarantine: messages kept raw because they could not be parsed, opened or accepted, with
//! the reason; shown raw, and retried after a fix.

use super::messages::{self, MessageView, Scope};
use super::{Actor, Context, OpsError, Page, Paged};
use crate::pipeline::Outcome;
use crate::store::MessageRecord;

/// Quarantined messages, oldest first.
pub fn list(cx: &Context, _actor: &Actor, page: Page) -> Result<Paged<MessageRecord>, OpsError> {
    let (items, total) = cx.store().quarantined_page(page.offset, page.limit)?;
    Ok(page.of(items, total))
}

/// One quarantined message (Message-ID or short id): the reason, its raw text, and whatever
/// can be read of it now.
pub fn show(cx: &mut Context, _actor: &Actor, reference: &str) -> Result<MessageView, OpsError> {
    let record = messages::resolve(cx, reference, Scope::Quarantine)?;
    messages::view(cx, record)
}

/// The outcome of a retry (`quarantine retry --json`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Retried {
    pub short_id: String,
    /// Why it was quarantined before this retry.
    pub previous_reason: String,
    /// It left quarantine (routed into a thread, or waiting in triage).
    pub released: bool,
    /// The pipeline's decision now, as `ingest --json` reports it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Runs a quarantined message's stored raw bytes through the pipeline again (after a key
/// import, a restored coordinator key or a configuration fix). If it now routes or waits in
/// triage it leaves quarantine with its new verdicts, in one transaction with the audit
/// record; if not, it stays, with the (possibly new) reason.
pub fn retry(cx: &mut Context, actor: &Actor, reference: &str) -> Result<Retried, OpsError> {
    actor.may_change("retry quarantined messages")?;
    let record = messages::resolve(cx, reference, Scope::Quarantine)?;
    let mut outcome = cx
        .pipeline(Some(actor.name()))?
        .retry_quarantined(record.id)?;
    super::ingest::pay_acknowledgments(cx, actor, std::slice::from_mut(&mut outcome));
    Ok(Retried {
        short_id: record.short_id,
        previous_reason: record.reason,
        released: outcome.outcome != "quarantine",
        outcome,
    })
}
