//! Mail handed in by a person (`casegate ingest`, `route --dry-run`): the same pipeline as
//! IMAP and the Maildir, with the person recorded in the audit trail.

use super::{Actor, Context, OpsError};
use crate::intake::Intake;
use crate::outbox::ack::OwedAck;
use crate::pipeline::Outcome;
use crate::store::MessageSource;

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
    let mut outcome = cx.pipeline(Some(actor.name()))?.process(raw, source)?;
    pay_acknowledgments(cx, actor, std::slice::from_mut(&mut outcome));
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
    let mut outcome = match got {
        Intake::Whole(raw) => pipeline.process_owned(raw, source)?,
        Intake::Partial(part) => pipeline.process_partial(&part, source)?,
    };
    pay_acknowledgments(cx, actor, std::slice::from_mut(&mut outcome));
    Ok(outcome)
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
    let mut stored = cx.pipeline(Some(actor.name()))?.process_batch(batch);
    pay_acknowledgments(cx, actor, &mut stored.outcomes);
    Ok(stored)
}

/// After a commit: the outbox composes and queues the acknowledgments owed (the pipeline only
/// recorded them, [`crate::pipeline::ACK_OWED`]), and each new report's outcome says what became
/// of its own. A failure leaves them owed (the daemon, or the next ingest, pays them).
pub(crate) fn pay_acknowledgments(cx: &mut Context, actor: &Actor, outcomes: &mut [Outcome]) {
    if !outcomes.iter().any(|o| o.acknowledgment.is_some()) {
        return;
    }
    let paid = match flush_pending_acks(cx, actor) {
        Ok(paid) => paid,
        Err(e) => {
            tracing::warn!(error = %e, "acknowledgments not queued; they stay owed");
            return;
        }
    };
    for o in outcomes.iter_mut().filter(|o| o.acknowledgment.is_some()) {
        if let Some(p) = paid.iter().find(|p| Some(&p.report) == o.thread.as_ref()) {
            o.acknowledgment = Some(p.result.clone());
        }
    }
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

/// Composes and queues the acknowledgments owed to new reports (`outbox::ack::queue_owed`, the
/// oldest first, up to one round's worth): those of the messages just stored, and those owed
/// from before a crash or from before `init` made a key. What became of each.
pub fn flush_pending_acks(cx: &mut Context, actor: &Actor) -> Result<Vec<OwedAck>, OpsError> {
    if actor.read_only() || !cx.store().any_pending_ack()? {
        return Ok(Vec::new());
    }
    let settings = cx.settings().clone();
    let (store, keyring) = cx.store_and_keyring()?;
    Ok(crate::outbox::ack::queue_owed(
        store,
        keyring,
        &crate::outbox::ack::AckPolicy {
            from: &settings.config.coordinator.address,
            outbox: &settings.config.outbox,
            limit_per_day: settings.config.policy.ack_limit_per_sender_per_day,
        },
    )?)
}
