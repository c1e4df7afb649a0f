//! Mail handed in by a person (`casegate ingest`, `route --dry-run`): the same pipeline as
//! IMAP and the Maildir, with the person recorded in the audit trail.

use super::{Actor, Context, OpsError};
use crate::intake::Intake;
use crate::pipeline::Outcome;
use crate::store::MessageSource;
use crate::tracking::TrackingNumber;

/// Parses, opens, routes and durably stores one message; returns after the commit. Its audit
/// record (action `ingest`, by `actor`) is written in the same transaction; a duplicate
/// writes nothing.
pub fn ingest(
    cx: &mut Context,
    actor: &Actor,
    raw: &[u8],
    source: MessageSource,
) -> Result<Outcome, OpsError> {
    actor.may_change("store messages")?;
    let outcome = cx.pipeline(Some(actor.name()))?.process(raw, source)?;
    // A relay this message is owed goes out now (it stays owed if it cannot: the daemon,
    // or the next ingest, pays it).
    if outcome
        .relay
        .as_deref()
        .is_some_and(|r| r.starts_with("owed"))
        && let Err(e) = super::notices::pay_owed_relays(cx, actor)
    {
        tracing::warn!(error = %e, "relay not queued; it stays owed");
    }
    Ok(outcome)
}

/// [`ingest`] of what [`crate::intake`] read: a whole message is handed over (stored without
/// a copy); of one over `max_message_bytes` only its head, size and SHA-256 are quarantined.
pub fn ingest_read(
    cx: &mut Context,
    actor: &Actor,
    got: Intake,
    source: MessageSource,
) -> Result<Outcome, OpsError> {
    actor.may_change("store messages")?;
    let mut pipeline = cx.pipeline(Some(actor.name()))?;
    Ok(match got {
        Intake::Whole(raw) => pipeline.process_owned(raw, source)?,
        Intake::Partial(part) => pipeline.process_partial(&part, source)?,
    })
}

/// [`ingest_read`] of several messages with group commit: stored in ONE transaction (see
/// [`crate::pipeline::PipelineRef::process_batch`]), each with its audit record. The outcomes
/// of the first messages, in order, and why the next one was not stored (the rest were not
/// tried).
pub fn ingest_batch(
    cx: &mut Context,
    actor: &Actor,
    batch: Vec<(MessageSource, Intake)>,
) -> Result<crate::pipeline::Stored, OpsError> {
    actor.may_change("store messages")?;
    let batch = batch
        .into_iter()
        .map(|(source, got)| {
            let input = match got {
                Intake::Whole(raw) => crate::pipeline::Inbound::Whole(raw),
                Intake::Partial(part) => crate::pipeline::Inbound::Partial(part),
            };
            (input, source)
        })
        .collect();
    Ok(cx.pipeline(Some(actor.name()))?.process_batch(batch))
}

/// [`dry_run`] of what [`crate::intake`] read.
pub fn dry_run_read(
    cx: &mut Context,
    _actor: &Actor,
    got: Intake,
    source: MessageSource,
) -> Result<Outcome, OpsError> {
    let pipeline = cx.pipeline(None)?;
    Ok(match got {
        Intake::Whole(raw) => pipeline.dry_run(&raw, source)?,
        Intake::Partial(part) => pipeline.dry_run_partial(&part, source)?,
    })
}

/// The decision `ingest` would make, with the routing steps, stored nowhere.
pub fn dry_run(
    cx: &mut Context,
    _actor: &Actor,
    raw: &[u8],
    source: MessageSource,
) -> Result<Outcome, OpsError> {
    Ok(cx.pipeline(None)?.dry_run(raw, source)?)
}

/// An acknowledgment owed to a new report, and what became of it now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OwedAcknowledgment {
    pub report: TrackingNumber,
    pub result: String,
}

/// Queues the acknowledgments owed from before a crash (or from before `init` made a key).
pub fn flush_pending_acks(
    cx: &mut Context,
    actor: &Actor,
) -> Result<Vec<OwedAcknowledgment>, OpsError> {
    if actor.read_only() {
        return Ok(Vec::new());
    }
    Ok(cx
        .pipeline(None)?
        .flush_pending_acks()?
        .into_iter()
        .map(|(report, result)| OwedAcknowledgment { report, result })
        .collect())
}
