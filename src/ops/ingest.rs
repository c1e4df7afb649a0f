//! Mail handed in by a person (`casegate ingest`, `route --dry-run`): the same pipeline as
//! IMAP and the Maildir, with the person recorded in the audit trail.

use super::{Actor, Context, OpsError};
use crate::intake::Intake;
use crate::keyring::Keyring;
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

/// [`ingest_read`] of batches of messages with group commit (`casegate ingest` of a Maildir or
/// a directory): each batch is stored in ONE transaction (see
/// [`crate::pipeline::PipelineRef::process_batch`]), each message with its audit record, and
/// the acknowledgments it owes are queued after it. While one batch is stored, the next is
/// parsed and opened on the other cores (its tries counted first, as always before reading).
///
/// `each` gets every batch's sources as shown and what became of it, in order: the outcomes of
/// its first messages and why the next one was not stored (the rest were not tried). It
/// returns `false` to stop: nothing more is stored.
pub fn ingest_batches(
    cx: &mut Context,
    actor: &Actor,
    batches: impl Iterator<Item = Vec<(MessageSource, Intake)>>,
    each: &mut dyn FnMut(&[String], crate::pipeline::Stored) -> bool,
) -> Result<(), OpsError> {
    use crate::pipeline::{CountedBatch, ReadBatch, read_batch};
    use std::sync::{Arc, mpsc};
    actor.may_change("store messages")?;
    let rules = cx.rules().clone();
    std::thread::scope(|scope| {
        // The reader: parses and opens the batch after the one being stored. Batches go to it
        // and come back in order; at most one waits there at a time.
        let (to_reader, jobs) = mpsc::channel::<(CountedBatch, Arc<Keyring>)>();
        let (read_tx, read_rx) = mpsc::channel::<ReadBatch>();
        let rules = &rules;
        let reader = std::thread::Builder::new()
            .name("casegate-read".into())
            .spawn_scoped(scope, move || {
                for (counted, keyring) in jobs {
                    if read_tx.send(read_batch(counted, &keyring, rules)).is_err() {
                        return;
                    }
                }
            })
            .is_ok();
        // The batch with the reader: its sources as shown, and the keyring it is read with.
        let mut ahead: Option<(Vec<String>, Arc<Keyring>)> = None;
        for batch in batches {
            let shown: Vec<String> = batch.iter().map(|(s, _)| s.describe()).collect();
            let counted = cx
                .pipeline(Some(actor.name()))?
                .count_batch(to_inbound(batch));
            let counted = if reader && counted.grouped() {
                let keyring = cx.shared_keyring()?;
                match to_reader.send((counted, keyring.clone())) {
                    Ok(()) => {
                        let before = ahead.replace((shown, keyring));
                        if let Some((shown, keyring)) = before
                            && !store_read(cx, actor, &shown, keyring, &read_rx, each)?
                        {
                            return Ok(());
                        }
                        continue;
                    }
                    // The reader is gone: this batch is read here, after the one it holds.
                    Err(mpsc::SendError((counted, _))) => counted,
                }
            } else {
                counted
            };
            // Read and stored here, after the batch ahead of it; nothing after it is counted
            // before it is done (see `count_batch`).
            if let Some((shown, keyring)) = ahead.take()
                && !store_read(cx, actor, &shown, keyring, &read_rx, each)?
            {
                return Ok(());
            }
            let keyring = cx.shared_keyring()?;
            let read = read_batch(counted, &keyring, rules);
            let mut stored = cx.pipeline(Some(actor.name()))?.store_batch(read);
            pay_acknowledgments(cx, actor, &mut stored.outcomes);
            if !each(&shown, stored) {
                return Ok(());
            }
        }
        if let Some((shown, keyring)) = ahead.take() {
            store_read(cx, actor, &shown, keyring, &read_rx, each)?;
        }
        Ok(())
    })
}

/// Stores the batch the reader hands back next (see [`ingest_batches`]) and queues the
/// acknowledgments it owes; what `each` says.
fn store_read(
    cx: &mut Context,
    actor: &Actor,
    shown: &[String],
    read_with: std::sync::Arc<Keyring>,
    reads: &std::sync::mpsc::Receiver<crate::pipeline::ReadBatch>,
    each: &mut dyn FnMut(&[String], crate::pipeline::Stored) -> bool,
) -> Result<bool, OpsError> {
    let Ok(mut read) = reads.recv() else {
        return Err(OpsError::Internal(format!(
            "the thread reading {} messages stopped; they were not stored (their files are where they were)",
            shown.len()
        )));
    };
    // A key imported, bound or revoked since it was read (the acknowledgments before it may
    // bind the keys reporters offered): each message is read again with the keys as they are.
    if !std::sync::Arc::ptr_eq(&read_with, &cx.shared_keyring()?) {
        read.read_again();
    }
    let mut stored = cx.pipeline(Some(actor.name()))?.store_batch(read);
    pay_acknowledgments(cx, actor, &mut stored.outcomes);
    Ok(each(shown, stored))
}

fn to_inbound(
    batch: Vec<(MessageSource, Intake)>,
) -> Vec<(crate::pipeline::Inbound, MessageSource)> {
    batch
        .into_iter()
        .map(|(source, got)| {
            let input = match got {
                Intake::Whole(raw) => crate::pipeline::Inbound::Whole(raw),
                Intake::Partial(part) => crate::pipeline::Inbound::Partial(part),
            };
            (input, source)
        })
        .collect()
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
