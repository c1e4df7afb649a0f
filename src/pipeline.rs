//! parse → open → route → store: the ONE path every message takes, whether it comes from
//! `casegate ingest`, the Maildir drop folder, IMAP, or a replay. Nothing a sender controls can
//! make it fail: what cannot be parsed, opened or routed is stored raw in quarantine with the
//! reason. Only a store failure is an error, and then nothing of the message was written.
//!
//! Nothing a sender controls can stop it either: the evaluation of one message runs under
//! `catch_unwind` (a panic quarantines that message), every parse is bounded by [`Limits`]
//! (no recursion, work or memory the sender chooses), and a message from a source that tries
//! again (Maildir, IMAP) is counted before it is read, so one that keeps failing — even by
//! aborting the whole process — is quarantined unread after `limits.max_attempts`.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::discussion::{Discussion, RelayFacts, relay_decision};
use crate::intake::Partial;
use crate::keyring::Keyring;
use crate::limits::Limits;
use crate::message::{self, MailView};
use crate::open::{self, Encryption, SignatureFacts};
use crate::route::{self, Action, Knowledge, KnownThread, RouteInput};
use crate::store::{
    Contact, Disposition, MessageSource, NewAudit, NewClaim, NewMessage, NewParticipant, Store,
    StoreError, Thread,
};
use crate::tracking::{self, Kind, TrackingNumber};
use crate::verdict::{self, SignatureVerdict, ThreadContact};

/// The only way the pipeline fails: the store could not record the message. Nothing was
/// written; the caller must not acknowledge the message to its source.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The rules the pipeline applies that come from configuration.
#[derive(Debug, Clone)]
pub struct Rules {
    pub reporting_address: String,
    pub coordinator_address: String,
    pub require_signed_vendor_statements: bool,
    /// What one message may cost (`[limits]`, `[policy] max_message_bytes`).
    pub limits: Limits,
    /// Mail to this address is for the coordinator only: never relayed.
    pub private_address: Option<String>,
    /// Where sender authentication verdicts come from (`[authentication]`).
    pub sender_check: std::sync::Arc<crate::trust::SenderCheck>,
    /// `[policy] require_authenticated_participants`.
    pub require_authenticated_participants: bool,
}

impl Rules {
    pub fn from_settings(s: &Settings) -> Rules {
        Rules {
            reporting_address: s.config.coordinator.reporting_address.to_lowercase(),
            coordinator_address: s.config.coordinator.address.to_lowercase(),
            require_signed_vendor_statements: s.config.policy.require_signed_vendor_statements,
            limits: s.config.limits(),
            private_address: s
                .config
                .coordinator
                .private_address
                .as_deref()
                .map(|a| a.trim().to_lowercase()),
            sender_check: std::sync::Arc::new(crate::trust::SenderCheck::new(
                &s.config.authentication,
            )),
            require_authenticated_participants: s.config.policy.require_authenticated_participants,
        }
    }
}

/// The result for one message, as `ingest --json` prints it (shared/interface.md).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Outcome {
    pub source: String,
    pub message_id: Option<String>,
    /// `routed | triage | quarantine | duplicate`
    pub outcome: &'static str,
    pub thread: Option<TrackingNumber>,
    pub reason: String,
    pub encrypted: bool,
    /// `none | good | bad | unknown-key | not-participant`
    pub signature: &'static str,
    pub signer: Option<String>,
    pub signature_reason: Option<String>,
    /// Sender authentication: `pass | fail | none | temperror`.
    pub sender_auth: &'static str,
    pub sender_auth_detail: Option<String>,
    pub automatic: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// A vendor's status/statement this message carries, and whether it counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimOutcome>,
    /// In a case that relays its discussion: whether this message is relayed, or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// For a new report from a person: what became of its acknowledgment. The pipeline says
    /// it is [`ACK_OWED`] (recorded with the report); the outbox composes and queues it
    /// (`outbox::ack::queue_owed`), and `ops::ingest` reports what the outbox did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledgment: Option<String>,
    /// How routing reached its decision (always filled; printed by `route --dry-run`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
}

/// [`Outcome::acknowledgment`] of a new report as stored: its acknowledgment is owed, to be
/// composed and queued by the outbox.
pub const ACK_OWED: &str = "owed: composed and queued by the outbox";

/// A vendor's status/statement found in a message (`ingest --json`: `claims`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ClaimOutcome {
    pub org: String,
    pub status: Option<String>,
    /// The message carries a statement.
    pub statement: bool,
    /// It sets the organization's status/statement (else it is kept and flagged).
    pub counted: bool,
    pub reason: String,
}

/// One message of a batch (see [`PipelineRef::process_batch`]): all of it, or what is kept of
/// one that is not read whole.
#[derive(Debug)]
pub enum Inbound {
    Whole(Vec<u8>),
    Partial(Partial),
}

/// What became of a batch: the outcomes of its first messages, in order, all committed; when
/// fewer than the batch, `failure` says why the next one could not be stored (the store
/// failed) and the rest were not tried. Only the messages with an outcome may leave their
/// source.
#[derive(Debug)]
pub struct Stored {
    pub outcomes: Vec<Outcome>,
    pub failure: Option<PipelineError>,
}

impl Stored {
    fn failed(e: PipelineError) -> Stored {
        Stored {
            outcomes: Vec::new(),
            failure: Some(e),
        }
    }
}

/// The pipeline owns the store and the keyring for as long as it runs (the daemon's view).
pub struct Pipeline {
    store: Store,
    /// Shared with the batches read ahead of their commit ([`Pipeline::count_batch`]): a batch
    /// read with a keyring that is no longer this one is read again.
    keyring: Arc<Keyring>,
    rules: Rules,
    /// The store's keys generation the keyring matches (see [`Pipeline::refresh_keys`]).
    keys_generation: Option<i64>,
}

/// The same pipeline over borrowed parts, for callers that keep the store themselves (`ops`:
/// `ingest`, `route --dry-run`, `quarantine retry`). Every path runs here; [`Pipeline`] only
/// owns the parts.
pub struct PipelineRef<'a> {
    pub store: &'a mut Store,
    pub keyring: &'a Keyring,
    pub rules: &'a Rules,
    /// When set, every message this pipeline stores (or takes out of quarantine) carries an
    /// audit record by this actor, written in the same transaction.
    pub audit_actor: Option<&'a str>,
}

/// Everything decided about a message before anything is written.
struct Evaluation {
    message: NewMessage,
    outcome: Outcome,
    /// A delivery failure report about one of our copies: (its Message-ID, the diagnostic).
    bounced: Option<(String, String)>,
    /// The keys of Autocrypt headers for the From address (recorded after the commit as
    /// offers when the sender is a known participant).
    autocrypt: Vec<Vec<u8>>,
}

impl Pipeline {
    /// A pipeline with the given keyring, taken to match the store's keys as they are now; from
    /// the store's next key change on, participants' certificates are read from the store.
    pub fn new(store: Store, keyring: Keyring, rules: Rules) -> Pipeline {
        let keys_generation = store.keys_generation().ok();
        Pipeline {
            store,
            keyring: Arc::new(keyring),
            rules,
            keys_generation,
        }
    }

    /// A pipeline whose keyring is `coordinator` and every certificate the store keeps.
    pub fn from_store(
        store: Store,
        coordinator: Option<sequoia_openpgp::Cert>,
        rules: Rules,
    ) -> Result<Pipeline, StoreError> {
        // Read before the certificates: a change in between is seen at the next message.
        let keys_generation = Some(store.keys_generation()?);
        let keyring = Keyring::new(coordinator, crate::keyring::stored_certs(&store)?)
            .with_held(crate::keyring::held_key_changes(&store)?);
        Ok(Pipeline {
            store,
            keyring: Arc::new(keyring),
            rules,
            keys_generation,
        })
    }

    /// Keys imported, revoked or bound by another process (the CLI while `serve` runs) count
    /// from the next message on: one row read per message, the certificates read again only
    /// when it moved.
    fn refresh_keys(&mut self) -> Result<(), StoreError> {
        let now = self.store.keys_generation()?;
        if self.keys_generation != Some(now) {
            let certs = crate::keyring::stored_certs(&self.store)?;
            self.keyring = Arc::new(
                Keyring::new(self.keyring.coordinator().cloned(), certs)
                    .with_held(crate::keyring::held_key_changes(&self.store)?),
            );
            self.keys_generation = Some(now);
            tracing::info!(
                generation = now,
                "keys changed in the store; keyring reloaded"
            );
        }
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The pipeline over its own parts.
    pub fn by_ref(&mut self) -> PipelineRef<'_> {
        PipelineRef {
            store: &mut self.store,
            keyring: &self.keyring,
            rules: &self.rules,
            audit_actor: None,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.rules.limits
    }

    /// Parses, opens, routes and durably stores one message. Returns after the commit.
    pub fn process(&mut self, raw: &[u8], source: MessageSource) -> Result<Outcome, PipelineError> {
        self.refresh_keys()?;
        self.by_ref().process(raw, source)
    }

    /// [`Pipeline::process`] of bytes the caller gives up (stored without a copy).
    pub fn process_owned(
        &mut self,
        raw: Vec<u8>,
        source: MessageSource,
    ) -> Result<Outcome, PipelineError> {
        self.refresh_keys()?;
        self.by_ref().process_owned(raw, source)
    }

    /// See [`PipelineRef::process_partial`].
    pub fn process_partial(
        &mut self,
        partial: &Partial,
        source: MessageSource,
    ) -> Result<Outcome, PipelineError> {
        self.refresh_keys()?;
        self.by_ref().process_partial(partial, source)
    }

    /// See [`PipelineRef::process_batch`].
    pub fn process_batch(&mut self, batch: Vec<(Inbound, MessageSource)>) -> Stored {
        if let Err(e) = self.refresh_keys() {
            return Stored::failed(e.into());
        }
        self.by_ref().process_batch(batch)
    }

    /// The first step of [`Pipeline::process_batch`] in three: counts the batch's tries (see
    /// [`PipelineRef::count_batch`]) and hands out what reading it needs, so that it is read
    /// ([`read_batch`], on any thread) while the batch before it is stored
    /// ([`Pipeline::store_read`]).
    pub fn count_batch(
        &mut self,
        batch: Vec<(Inbound, MessageSource)>,
    ) -> Result<(CountedBatch, Arc<Keyring>, Rules), PipelineError> {
        self.refresh_keys()?;
        let counted = self.by_ref().count_batch(batch);
        Ok((counted, self.keyring.clone(), self.rules.clone()))
    }

    /// Stores a batch counted by [`Pipeline::count_batch`] and read with `read_with`: read
    /// again first if the keys changed since (a key imported, bound or revoked).
    pub fn store_read(&mut self, mut read: ReadBatch, read_with: &Arc<Keyring>) -> Stored {
        if let Err(e) = self.refresh_keys() {
            return Stored::failed(e.into());
        }
        if !Arc::ptr_eq(read_with, &self.keyring) {
            read.read_again();
        }
        self.by_ref().store_batch(read)
    }

    /// See [`PipelineRef::failed_attempts`].
    pub fn failed_attempts(&self, source: &MessageSource) -> Result<(u32, String), PipelineError> {
        failed_attempts(&self.store, source)
    }

    /// See [`PipelineRef::record_failed_attempt`].
    pub fn record_failed_attempt(
        &mut self,
        source: &MessageSource,
        error: &str,
    ) -> Result<u32, PipelineError> {
        self.by_ref().record_failed_attempt(source, error)
    }

    /// See [`PipelineRef::give_up_unread`].
    pub fn give_up_unread(
        &mut self,
        source: MessageSource,
        size: u64,
        tries: u32,
        last_error: &str,
    ) -> Result<Outcome, PipelineError> {
        self.by_ref()
            .give_up_unread(source, size, tries, last_error)
    }

    /// The same decision as [`Pipeline::process`], stored nowhere.
    pub fn dry_run(&mut self, raw: &[u8], source: MessageSource) -> Result<Outcome, PipelineError> {
        self.refresh_keys()?;
        self.by_ref().dry_run(raw, source)
    }
}

impl PipelineRef<'_> {
    /// Parses, opens, routes and durably stores one message. Returns after the commit.
    ///
    /// A message from a source that tries again (its [`MessageSource::attempt_key`]) is
    /// counted first; one that already failed `limits.max_attempts` times without being stored
    /// (the process died while reading it, say) is quarantined unread.
    pub fn process(&mut self, raw: &[u8], source: MessageSource) -> Result<Outcome, PipelineError> {
        self.process_cow(Cow::Borrowed(raw), source)
    }

    /// [`PipelineRef::process`] of bytes the caller gives up: they are stored without a copy
    /// (a large message is then held once, not twice, besides what parsing and SQLite need).
    pub fn process_owned(
        &mut self,
        raw: Vec<u8>,
        source: MessageSource,
    ) -> Result<Outcome, PipelineError> {
        self.process_cow(Cow::Owned(raw), source)
    }

    fn process_cow(
        &mut self,
        raw: Cow<'_, [u8]>,
        source: MessageSource,
    ) -> Result<Outcome, PipelineError> {
        let (tries, last_error) = match source.attempt_key() {
            Some(key) => self.store.begin_attempt(&key)?,
            None => (0, None),
        };
        self.process_counted(raw, source, tries, last_error)
    }

    /// [`PipelineRef::process`] of a message whose try is counted already (`tries` so far,
    /// this one included).
    fn process_counted(
        &mut self,
        raw: Cow<'_, [u8]>,
        source: MessageSource,
        tries: u32,
        last_error: Option<String>,
    ) -> Result<Outcome, PipelineError> {
        let now = Utc::now();
        if tries > self.rules.limits.max_attempts {
            let mut m = NewMessage::inbound_deferred(&raw, source, now, Disposition::Quarantine);
            m.attach_raw(raw.into_owned());
            m.reason = gave_up_reason(tries - 1, last_error.as_deref());
            m.flags = "gave-up".into();
            return self.commit_quarantine(m, now);
        }
        abort_for_tests(&raw);
        let mut eval = self.evaluate_isolated(&raw, source, now)?;
        eval.message.attach_raw(raw.into_owned());
        // Idempotent (only a `sent` copy becomes `bounced`), so it may run before the commit:
        // a crash in between repeats it harmlessly when the report is delivered again.
        if let Some((message_id, reason)) = &eval.bounced {
            self.store.mark_bounced(message_id, reason, now)?;
        }
        let committed = self.commit(&eval.message, &eval.outcome, now)?;
        Ok(self.stored(eval, committed, now))
    }

    /// What follows the commit of an evaluated message: its outcome as stored (for a new
    /// report, that its acknowledgment is owed: recorded with it, paid by the outbox), and the
    /// Autocrypt keys a known participant offered.
    fn stored(
        &mut self,
        eval: Evaluation,
        committed: crate::store::Committed,
        now: DateTime<Utc>,
    ) -> Outcome {
        let mut outcome = eval.outcome;
        // Steps explain a decision before it is made; `route --dry-run` prints them.
        outcome.steps.clear();
        if committed.duplicate {
            outcome.outcome = "duplicate";
            outcome.reason = "already stored (same Message-ID and SHA-256)".into();
        }
        outcome.thread = committed.thread;
        if !committed.duplicate {
            outcome.acknowledgment = ack_owed(&eval.message, &outcome);
            self.record_key_offers(&eval.message, eval.autocrypt, now);
        }
        tracing::info!(
            source = %outcome.source,
            message_id = outcome.message_id.as_deref().unwrap_or("-"),
            outcome = outcome.outcome,
            thread = outcome.thread.as_ref().map(TrackingNumber::as_str).unwrap_or("-"),
            reason = %outcome.reason,
            "message stored"
        );
        outcome
    }

    /// Group commit: parses, opens, routes and durably stores a batch of messages from a
    /// source with ONE transaction (one fsync) for all of them, and one before it that counts
    /// their tries. Returns after the commit; the caller acknowledges to the source only
    /// what [`Stored::outcomes`] holds (a prefix of `batch`, in its order).
    ///
    /// Exactly as [`PipelineRef::process`] one after the other would decide: each message is
    /// evaluated inside the batch's transaction, so it sees what the ones before it stored (a
    /// second copy of a message is a `duplicate`, a reporter's second mail finds the first
    /// report). Processed one at a time instead, each in its own transaction:
    /// - a batch of one, or any batch while `limits.max_attempts` is below 2;
    /// - a batch of which a message already has tries counted (the process died during an
    ///   earlier try — perhaps because of it): a poison message is then found and given up
    ///   after `limits.max_attempts` like a message alone, and never holds up the others
    ///   (their tries are counted only when their turn comes);
    /// - a batch whose transaction failed or panicked: nothing of it was stored, so each
    ///   message goes again on its own (its try is not counted twice).
    pub fn process_batch(&mut self, batch: Vec<(Inbound, MessageSource)>) -> Stored {
        let CountedBatch { batch, plan } = self.count_batch(batch);
        match plan {
            Plan::Grouped(tries) => {
                // Parsing and opening need no store: on every core, before the transaction.
                let (keyring, rules) = (self.keyring, self.rules);
                let budget = rules.limits.max_decoded_bytes;
                let reads = read_all(&batch, keyring, rules, budget, &|r| (r, 0));
                match self.store_grouped(&batch, &reads) {
                    Some(stored) => stored,
                    None => {
                        drop(reads);
                        self.one_at_a_time(batch, Some(tries))
                    }
                }
            }
            plan => self.store_ungrouped(batch, plan),
        }
    }

    /// The first half of [`PipelineRef::process_batch`]: counts the tries of `batch` (in one
    /// transaction without a flush of its own) and decides whether it is stored in one
    /// transaction. Its messages may be read from then on, on any thread ([`read_batch`]), and
    /// it is stored by [`PipelineRef::store_batch`]. A caller may count the next batch and read
    /// it while this one is stored, but only when this one is grouped
    /// ([`CountedBatch::grouped`]): a batch that goes one message at a time is suspect (a
    /// crash during an earlier try), and nothing after it may be counted before it is done, so
    /// a message that kills casegate costs no other message more than one extra try.
    pub fn count_batch(&mut self, batch: Vec<(Inbound, MessageSource)>) -> CountedBatch {
        let plan = match self.fresh_batch(&batch) {
            Err(e) => Plan::Failed(e),
            Ok(false) => Plan::OneAtATime(None),
            Ok(true) => {
                let keys: Vec<Option<String>> =
                    batch.iter().map(|(_, s)| s.attempt_key()).collect();
                let counted: Vec<&str> = keys.iter().flatten().map(String::as_str).collect();
                match self.store.begin_attempts(&counted) {
                    Err(e) => Plan::Failed(e.into()),
                    Ok(t) => {
                        let mut t = t.into_iter();
                        let tries: Vec<(u32, Option<String>)> = keys
                            .iter()
                            .map(|k| match k {
                                Some(_) => t.next().unwrap_or((1, None)),
                                None => (0, None),
                            })
                            .collect();
                        // Another instance counted one meanwhile (PostgreSQL), or
                        // `max_attempts` is 0.
                        if tries
                            .iter()
                            .any(|(n, _)| *n > 1 || *n > self.rules.limits.max_attempts)
                        {
                            Plan::OneAtATime(Some(tries))
                        } else {
                            Plan::Grouped(tries)
                        }
                    }
                }
            }
        };
        CountedBatch { batch, plan }
    }

    /// The second half of [`PipelineRef::process_batch`]: stores a batch counted by
    /// [`PipelineRef::count_batch`] and read by [`read_batch`]. Returns after the commit.
    pub fn store_batch(&mut self, read: ReadBatch) -> Stored {
        let ReadBatch { counted, reads } = read;
        let CountedBatch { batch, plan } = counted;
        match plan {
            Plan::Grouped(tries) => match self.store_grouped(&batch, &reads) {
                Some(stored) => stored,
                None => self.one_at_a_time(batch, Some(tries)),
            },
            plan => self.store_ungrouped(batch, plan),
        }
    }

    fn store_ungrouped(&mut self, batch: Vec<(Inbound, MessageSource)>, plan: Plan) -> Stored {
        match plan {
            Plan::Failed(e) => Stored::failed(e),
            Plan::OneAtATime(tries) => self.one_at_a_time(batch, tries),
            Plan::Grouped(tries) => self.one_at_a_time(batch, Some(tries)),
        }
    }

    /// A counted, grouped batch in ONE transaction, each message evaluated (from `reads`, what
    /// was read of it ahead, or read now when nothing was) on what the ones before it stored.
    /// `None` when the transaction failed or panicked: nothing of it was stored, and each
    /// message goes again on its own (its try is not counted twice).
    fn store_grouped(
        &mut self,
        batch: &[(Inbound, MessageSource)],
        reads: &[Option<Ahead<Read<'_>>>],
    ) -> Option<Stored> {
        let now = Utc::now();
        let (keyring, rules, audit_actor) = (self.keyring, self.rules, self.audit_actor);
        let grouped = caught(|| {
            // A failure anywhere gives the whole batch up: no savepoint per message.
            self.store.atomically_as_one(|store| {
                let mut p = PipelineRef {
                    store,
                    keyring,
                    rules,
                    audit_actor,
                };
                batch
                    .iter()
                    .enumerate()
                    .map(|(k, (input, source))| {
                        let read = reads.get(k).and_then(Option::as_ref);
                        p.evaluate_and_commit(input, source, read, now)
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
        });
        let done = match grouped {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                tracing::warn!(messages = batch.len(), error = %e, "batch not stored; each message goes again on its own");
                return None;
            }
            Err(panic) => {
                tracing::error!(messages = batch.len(), panic = %one_line(&panic, 200), "batch not stored after an internal error; each message goes again on its own");
                return None;
            }
        };
        let outcomes = done
            .into_iter()
            .map(|(eval, committed, partial)| {
                if partial {
                    quarantined_unread(eval.outcome, &committed)
                } else {
                    self.stored(eval, committed, now)
                }
            })
            .collect();
        Some(Stored {
            outcomes,
            failure: None,
        })
    }

    /// Whether no message of `batch` has tries counted already (see
    /// [`PipelineRef::process_batch`]). A batch of one is never grouped, nor any batch when
    /// `max_attempts` is below 2: a crash in a batch counts a try against each message in it,
    /// so each needs room for that one and its own.
    fn fresh_batch(&self, batch: &[(Inbound, MessageSource)]) -> Result<bool, PipelineError> {
        if batch.len() < 2 || self.rules.limits.max_attempts < 2 {
            return Ok(false);
        }
        let keys: Vec<String> = batch.iter().filter_map(|(_, s)| s.attempt_key()).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        Ok(!self.store.any_attempts_of(&keys)?)
    }

    /// Each message of `batch` in its own transaction, in order, up to the first store
    /// failure. `counted`: the tries of each, when the batch counted them already.
    fn one_at_a_time(
        &mut self,
        batch: Vec<(Inbound, MessageSource)>,
        counted: Option<Vec<(u32, Option<String>)>>,
    ) -> Stored {
        let mut counted = counted.map(Vec::into_iter);
        let mut outcomes = Vec::with_capacity(batch.len());
        for (input, source) in batch {
            let tries = counted.as_mut().and_then(Iterator::next);
            let result = match (input, tries) {
                (Inbound::Partial(p), _) => self.process_partial(&p, source),
                (Inbound::Whole(raw), None) => self.process_owned(raw, source),
                (Inbound::Whole(raw), Some((n, last))) => {
                    self.process_counted(Cow::Owned(raw), source, n, last)
                }
            };
            match result {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    return Stored {
                        outcomes,
                        failure: Some(e),
                    };
                }
            }
        }
        Stored {
            outcomes,
            failure: None,
        }
    }

    /// One message of a batch, inside the batch's transaction: decided (on what the batch
    /// stored before it) from `read`, its reading done beforehand, and written. `true` for a message kept only in part.
    fn evaluate_and_commit(
        &mut self,
        input: &Inbound,
        source: &MessageSource,
        read: Option<&Ahead<Read<'_>>>,
        now: DateTime<Utc>,
    ) -> Result<(Evaluation, crate::store::Committed, bool), StoreError> {
        match input {
            Inbound::Partial(partial) => {
                let m = partial_message(partial, source.clone(), now);
                let mut outcome = blank_outcome(&m.source);
                outcome.reason = m.reason.clone();
                let committed = self.commit(&m, &outcome, now)?;
                let eval = Evaluation {
                    message: m,
                    outcome,
                    bounced: None,
                    autocrypt: Vec::new(),
                };
                Ok((eval, committed, true))
            }
            Inbound::Whole(raw) => {
                abort_for_tests(raw);
                let mut eval = match read {
                    Some(ahead) => self.evaluate_read_isolated(raw, source.clone(), now, ahead)?,
                    None => self.evaluate_isolated(raw, source.clone(), now)?,
                };
                // A copy: the transaction may run again (PostgreSQL, a concurrent instance).
                eval.message.attach_raw(raw.clone());
                if let Some((message_id, reason)) = &eval.bounced {
                    self.store.mark_bounced(message_id, reason, now)?;
                }
                let committed = self.commit(&eval.message, &eval.outcome, now)?;
                Ok((eval, committed, false))
            }
        }
    }

    /// Stores the message, with its audit record when this pipeline has an actor, in one
    /// transaction.
    fn commit(
        &mut self,
        message: &NewMessage,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<crate::store::Committed, StoreError> {
        match self.audit_actor {
            None => self.store.commit_message(message),
            Some(actor) => self.store.atomically(|s| {
                let c = s.commit_message(message)?;
                if !c.duplicate {
                    s.record_audit(&NewAudit {
                        at: now,
                        actor: actor.to_string(),
                        action: "ingest".into(),
                        thread: c.thread.clone(),
                        message_ref: Some(c.id),
                        detail: format!(
                            "{} from {}: {}",
                            outcome.outcome, outcome.source, outcome.reason
                        ),
                    })?;
                }
                Ok::<_, StoreError>(c)
            }),
        }
    }

    /// Stores a message casegate keeps only part of (over `max_message_bytes`, or not
    /// readable at all) in quarantine, with the reason; the source may then move on.
    pub fn process_partial(
        &mut self,
        partial: &Partial,
        source: MessageSource,
    ) -> Result<Outcome, PipelineError> {
        let now = Utc::now();
        let m = partial_message(partial, source, now);
        self.commit_quarantine(m, now)
    }

    /// What [`PipelineRef::process_partial`] would do, stored nowhere.
    pub fn dry_run_partial(
        &self,
        partial: &Partial,
        source: MessageSource,
    ) -> Result<Outcome, PipelineError> {
        let mut outcome = blank_outcome(&source);
        outcome.reason = partial.reason.clone();
        if let Some(sha) = &partial.sha256
            && self.store.find_duplicate(sha)?.is_some()
        {
            outcome.outcome = "duplicate";
            outcome.reason = "already stored (same Message-ID and SHA-256)".into();
        }
        Ok(outcome)
    }

    /// How often the message at `source` failed before anything could be stored (see
    /// [`Store::record_failed_attempt`]), and the last failure; 0 for sources that do not
    /// try again.
    pub fn failed_attempts(&self, source: &MessageSource) -> Result<(u32, String), PipelineError> {
        failed_attempts(self.store, source)
    }

    /// Records that reading the message at `source` failed (`error`); returns the count.
    pub fn record_failed_attempt(
        &mut self,
        source: &MessageSource,
        error: &str,
    ) -> Result<u32, PipelineError> {
        match source.attempt_key() {
            Some(key) => Ok(self.store.record_failed_attempt(&key, error)?),
            None => Ok(1),
        }
    }

    /// The message at `source` could not be read `tries` times: quarantine what is known of
    /// it (no content), so the source moves on.
    pub fn give_up_unread(
        &mut self,
        source: MessageSource,
        size: u64,
        tries: u32,
        last_error: &str,
    ) -> Result<Outcome, PipelineError> {
        let reason = format!(
            "could not be read {tries} times (last: {}); not stored, left at the source",
            one_line(last_error, 200)
        );
        self.process_partial(
            &Partial {
                head: Vec::new(),
                size,
                sha256: None,
                reason,
            },
            source,
        )
    }

    fn commit_quarantine(
        &mut self,
        m: NewMessage,
        now: DateTime<Utc>,
    ) -> Result<Outcome, PipelineError> {
        let mut outcome = blank_outcome(&m.source);
        outcome.reason = m.reason.clone();
        let committed = self.commit(&m, &outcome, now)?;
        Ok(quarantined_unread(outcome, &committed))
    }

    /// [`PipelineRef::evaluate`] with a panic turned into a quarantine of this one message: a
    /// bug that sender data reaches must cost that message its routing, not the gateway.
    fn evaluate_isolated(
        &self,
        raw: &[u8],
        source: MessageSource,
        now: DateTime<Utc>,
    ) -> Result<Evaluation, StoreError> {
        match caught(|| self.evaluate(raw, source.clone(), now)) {
            Ok(result) => result,
            Err(what) => Ok(panic_quarantine(raw, source, now, &what)),
        }
    }

    /// [`PipelineRef::evaluate_isolated`] of a message read already.
    fn evaluate_read_isolated(
        &self,
        raw: &[u8],
        source: MessageSource,
        now: DateTime<Utc>,
        ahead: &Ahead<Read<'_>>,
    ) -> Result<Evaluation, StoreError> {
        match caught(|| self.evaluate_read(raw, &ahead.sha256, source.clone(), now, &ahead.read)) {
            Ok(result) => result,
            Err(what) => Ok(panic_quarantine(raw, source, now, &what)),
        }
    }

    /// The same decision as [`PipelineRef::process`], stored nowhere.
    pub fn dry_run(&self, raw: &[u8], source: MessageSource) -> Result<Outcome, PipelineError> {
        let eval = self.evaluate_isolated(raw, source, Utc::now())?;
        let mut outcome = eval.outcome;
        if let Some((_, thread)) = self.store.find_duplicate(&eval.message.sha256)? {
            outcome.outcome = "duplicate";
            outcome.reason = "already stored (same Message-ID and SHA-256)".into();
            outcome.thread = thread;
        }
        Ok(outcome)
    }

    /// The decision for `raw` as the pipeline would make it now, duplicates not considered
    /// (for explaining a message that is already stored). Stores nothing.
    pub fn evaluate_only(&self, raw: &[u8]) -> Result<Outcome, PipelineError> {
        Ok(self
            .evaluate_isolated(raw, MessageSource::Replay, Utc::now())?
            .outcome)
    }

    /// Runs the stored raw bytes of a quarantined message (row id `id`) through the pipeline
    /// again — after a key import, a restored coordinator key or a configuration fix. When it
    /// now routes (or waits in triage) it leaves quarantine with its new decision and
    /// verdicts, atomically; otherwise it stays, with the possibly new reason. A new report
    /// made this way is acknowledged like any other.
    pub fn retry_quarantined(&mut self, id: i64) -> Result<Outcome, PipelineError> {
        let before = self.store.message_record(id)?;
        if before.outcome != "quarantine" {
            return Err(StoreError::Conflict(format!(
                "message {} is not in quarantine (it is {}); see `casegate read {}`",
                before.short_id, before.outcome, before.short_id
            ))
            .into());
        }
        if let Some(size) = before.raw_size {
            return Err(StoreError::Conflict(format!(
                "only part of message {} was kept ({} of {size} bytes: it was over policy.max_message_bytes or could not be read); it cannot be read again — the whole message stays at its source",
                before.short_id,
                self.store.raw_message(id)?.len()
            ))
            .into());
        }
        let raw = self.store.raw_message(id)?;
        let now = Utc::now();
        let eval = self.evaluate_isolated(&raw, MessageSource::Replay, now)?;
        if let Some((message_id, reason)) = &eval.bounced {
            self.store.mark_bounced(message_id, reason, now)?;
        }
        let actor = self.audit_actor;
        let committed = self.store.atomically(|s| {
            let c = s.requeue_quarantined(id, &eval.message)?;
            if let Some(actor) = actor {
                s.record_audit(&NewAudit {
                    at: now,
                    actor: actor.to_string(),
                    action: "quarantine retry".into(),
                    thread: c.thread.clone(),
                    message_ref: Some(id),
                    detail: format!(
                        "was: {}; now {}: {}",
                        before.reason, eval.outcome.outcome, eval.outcome.reason
                    ),
                })?;
            }
            Ok::<_, StoreError>(c)
        })?;
        let mut outcome = eval.outcome;
        outcome.source = before.source;
        outcome.steps.clear();
        outcome.thread = committed.thread;
        outcome.acknowledgment = ack_owed(&eval.message, &outcome);
        tracing::info!(
            message_id = outcome.message_id.as_deref().unwrap_or("-"),
            outcome = outcome.outcome,
            reason = %outcome.reason,
            "quarantined message retried"
        );
        Ok(outcome)
    }

    /// Keys a known participant's mail client announces (Autocrypt) are recorded as offers:
    /// listed by `key changes`, never used on their own (see `trust::keys`).
    fn record_key_offers(
        &mut self,
        message: &NewMessage,
        offers: Vec<Vec<u8>>,
        now: DateTime<Utc>,
    ) {
        let Some(from) = message.sender.as_deref() else {
            return;
        };
        if offers.is_empty() || !matches!(self.store.is_known_address(from), Ok(true)) {
            return;
        }
        crate::trust::keys::record_autocrypt_offers(self.store, from, offers, now);
    }

    /// The decision about one message, nothing written: it is read (no store), what the store
    /// knows that matters to it is gathered into one value, and the decision is made from the
    /// two by a pure function ([`decide`]).
    fn evaluate(
        &self,
        raw: &[u8],
        source: MessageSource,
        now: DateTime<Utc>,
    ) -> Result<Evaluation, StoreError> {
        let read = read_message(raw, self.keyring, self.rules);
        self.evaluate_read(raw, &crate::intake::sha256_hex(raw), source, now, &read)
    }

    /// [`PipelineRef::evaluate`] of a message read already (a batch reads on every core).
    fn evaluate_read(
        &self,
        raw: &[u8],
        sha256: &str,
        source: MessageSource,
        now: DateTime<Utc>,
        read: &Read<'_>,
    ) -> Result<Evaluation, StoreError> {
        let facts = match read {
            Read::Ok(r) => self.gather(r)?,
            Read::Quarantine(_) | Read::Panic(_) => StoreFacts::default(),
        };
        Ok(decide(raw, sha256, source, now, read, &facts, self.rules))
    }

    /// Everything [`decide`] needs from the store (and the keyring's held key changes) about
    /// a message read into `r`. Routing is pure and cheap: it is run here to know which
    /// thread's contacts to read, and again by [`decide`] on the same knowledge.
    fn gather(&self, r: &Reading<'_>) -> Result<StoreFacts, StoreError> {
        let mut f = StoreFacts::default();
        let from = r.outer.from.as_ref().map(|m| m.address.as_str());
        let opened = match &r.content {
            Content::Report(report) => {
                if let Some(id) = &report.original_message_id
                    && let Some((_, thread_id, address, _)) =
                        self.store.outbox_copy_by_message_id(id)?
                {
                    f.reported_copy = Some(ReportedCopy {
                        thread_id,
                        address,
                        number: self.store.thread_by_id(thread_id)?.number,
                    });
                }
                return Ok(f);
            }
            Content::Opened(Err(_)) => return Ok(f),
            Content::Opened(Ok(opened)) => opened,
        };
        let (input, _) = route_input(r, opened, self.rules);
        f.knowledge = self.knowledge(&input)?;
        let mut first_org = None;
        if let Some(from) = from {
            // Routing asks whether the sender is a participant anywhere, and of which of the
            // threads the message names or replies to: a bounded read (a sender may be in
            // thousands of threads).
            let named: Vec<i64> = f
                .knowledge
                .threads
                .values()
                .chain(f.knowledge.replied_to.as_ref().map(|(_, t)| t))
                .map(|t| t.id)
                .collect();
            let standing = self.store.sender_standing(from, &named)?;
            f.knowledge.sender_threads = standing.among;
            // A contact row has a participant (a foreign key): the sender is a contact
            // somewhere exactly when it has a first thread.
            f.from_known = standing.first.is_some();
            if let Some((id, org)) = standing.first {
                if !f.knowledge.sender_threads.contains(&id) {
                    f.knowledge.sender_threads.push(id);
                }
                first_org = Some(org);
            }
        }
        let route = route::decide(&input, &f.knowledge);
        match &route.action {
            Action::Post(t) => {
                let thread = self.store.thread_by_id(t.id)?;
                let contacts = self.store.contacts(t.id)?;
                if let Some(from) = from {
                    for c in &contacts {
                        if c.address == from
                            && c.role == "vendor"
                            && !f.vendor_orgs.iter().any(|o| o.id == c.org_id)
                        {
                            f.vendor_orgs.push(VendorOrg {
                                id: c.org_id,
                                contact_org: c.org.clone(),
                                name: self.store.org_name(c.org_id)?,
                                keys: self.store.org_keys(c.org_id)?,
                            });
                        }
                    }
                }
                if let Some(id) = &r.outer.message_id {
                    f.our_message_id = self.store.is_sent_message_id(id)?;
                }
                f.target = Some((thread, contacts));
            }
            Action::NewTicket => f.from_org = first_org,
            Action::NewReport | Action::Triage => {}
        }
        if let SignatureFacts::Valid { cert, .. } = &opened.signature {
            if !f.vendor_orgs.is_empty() {
                f.signer_orgs = self
                    .store
                    .org_names_with_key(&crate::keyring::normalize_fingerprint(cert))?;
            }
            if let Some(from) = from {
                f.signer_held = self.keyring.is_held(from, cert);
                f.from_keys = self.store.address_keys(from)?;
            }
        }
        Ok(f)
    }

    /// The threads the message names and the one it replies to (the sender's standing is
    /// added by [`PipelineRef::gather`]).
    fn knowledge(&self, input: &RouteInput) -> Result<Knowledge, StoreError> {
        let mut k = Knowledge::default();
        for n in &input.numbers {
            if let Some(t) = self.store.resolve_thread(n)? {
                k.threads.insert(
                    n.clone(),
                    KnownThread {
                        id: t.id,
                        number: t.number,
                    },
                );
            }
        }
        if let Some((id, thread_id)) = self.store.thread_of_sent(&input.reply_ids)? {
            let mut t = self.store.thread_by_id(thread_id)?;
            if let Some(case) = &t.promoted_to
                && let Some(c) = self.store.resolve_thread(case)?
            {
                t = c;
            }
            k.replied_to = Some((
                id,
                KnownThread {
                    id: t.id,
                    number: t.number,
                },
            ));
        }
        Ok(k)
    }
}

/// [`Outcome::acknowledgment`] after the commit: [`ACK_OWED`] for a new report from a person
/// (the store recorded the debt in the message's transaction, `store::file_disposition_tx`).
fn ack_owed(message: &NewMessage, outcome: &Outcome) -> Option<String> {
    let new_report = matches!(
        message.disposition,
        Disposition::NewThread {
            kind: Kind::Report,
            ..
        }
    );
    (new_report && !message.automatic && outcome.thread.is_some()).then(|| ACK_OWED.to_string())
}

/// The record of a message casegate keeps only part of (see [`PipelineRef::process_partial`]).
fn partial_message(partial: &Partial, source: MessageSource, now: DateTime<Utc>) -> NewMessage {
    // Unknown content: a stand-in key that is unique per source and size.
    let sha256 = partial.sha256.clone().unwrap_or_else(|| {
        crate::intake::sha256_hex(
            format!("casegate-unread:{}:{}", source.describe(), partial.size).as_bytes(),
        )
    });
    let mut m = NewMessage::partial(
        &partial.head,
        partial.size,
        sha256,
        source,
        now,
        partial.reason.clone(),
    );
    m.flags = if partial.sha256.is_some() {
        "oversized".into()
    } else {
        "unread".into()
    };
    m
}

/// The outcome of a message stored in quarantine unread.
fn quarantined_unread(mut outcome: Outcome, committed: &crate::store::Committed) -> Outcome {
    if committed.duplicate {
        outcome.outcome = "duplicate";
        outcome.reason = "already stored (same Message-ID and SHA-256)".into();
    }
    tracing::warn!(source = %outcome.source, outcome = outcome.outcome, reason = %outcome.reason, "message quarantined unread");
    outcome
}

/// What is read from a message without asking the store: its one parse, who vouches for its
/// sender, and whether it is a delivery report or what opening it found. The work a batch does
/// on every core.
struct Reading<'r> {
    parsed: mail_parser::Message<'r>,
    outer: MailView,
    sender_auth: crate::trust::SenderAuth,
    content: Content,
    /// The keys of Autocrypt headers for the From address.
    autocrypt: Vec<Vec<u8>>,
}

/// A delivery status notification is about a copy we sent, never a participant's word: it
/// is not opened.
enum Content {
    Report(crate::bounce::Bounce),
    Opened(Result<open::Opened, open::OpenError>),
}

/// A message read ([`read_message`]), or why it goes to quarantine before anything else.
enum Read<'r> {
    Ok(Box<Reading<'r>>),
    /// Over a bound, or not parseable: the reason.
    Quarantine(String),
    /// A panic while reading it: the panic's message.
    Panic(String),
}

impl Read<'_> {
    /// The same read, its parse copied out of the bytes it borrowed.
    fn into_owned(self) -> Read<'static> {
        match self {
            Read::Ok(r) => {
                let Reading {
                    parsed,
                    outer,
                    sender_auth,
                    content,
                    autocrypt,
                } = *r;
                Read::Ok(Box::new(Reading {
                    parsed: parsed.into_owned(),
                    outer,
                    sender_auth,
                    content,
                    autocrypt,
                }))
            }
            Read::Quarantine(why) => Read::Quarantine(why),
            Read::Panic(what) => Read::Panic(what),
        }
    }
}

/// Reads `raw`: parse (once), sender authentication, bounce detection, opening. Touches no
/// store (DKIM may ask DNS); a panic in it is caught and becomes [`Read::Panic`].
fn read_message<'r>(raw: &'r [u8], keyring: &Keyring, rules: &Rules) -> Read<'r> {
    let limits = &rules.limits;
    // The sources never hand over more (see `intake`); a caller that read a file whole may.
    if raw.len() as u64 > limits.max_message_bytes {
        return Read::Quarantine(format!(
            "message is {} bytes, over the limit of {} (policy.max_message_bytes)",
            raw.len(),
            limits.max_message_bytes
        ));
    }
    let read = caught(|| {
        let (parsed, outer) = match message::parse_message(raw, limits) {
            Ok(v) => v,
            Err(e) => return Read::Quarantine(format!("cannot parse: {e}")),
        };
        let autocrypt = outer
            .from
            .as_ref()
            .map(|f| message::autocrypt_keys_of(&parsed, &f.address))
            .unwrap_or_default();
        // Who vouches for the From address besides an OpenPGP signature: DKIM/DMARC or the
        // coordinator's own MTA. One call, on the parsed headers and the bytes as received.
        let sender_auth = rules.sender_check.authenticate(&outer, raw);
        let content = match crate::bounce::bounce_of(&parsed) {
            Some(report) => Content::Report(report),
            None => Content::Opened(open::open_parsed(raw, &parsed, keyring, limits)),
        };
        Read::Ok(Box::new(Reading {
            parsed,
            outer,
            sender_auth,
            content,
            autocrypt,
        }))
    });
    read.unwrap_or_else(Read::Panic)
}

/// What was read of a message ahead of its transaction, with the SHA-256 of its bytes (its
/// dedupe key), hashed on the same core rather than on the thread that stores.
struct Ahead<T> {
    read: T,
    sha256: String,
}

/// Reads the messages of a batch ahead of its transaction, on every core; `None` for a message
/// kept only in part, or not read ahead: once what the reads ahead hold in decrypted content
/// passes `budget` (`limits.max_decoded_bytes`), the rest are read one by one inside the
/// transaction (as alone), so a batch holds little more than one message may. `keep` turns
/// each read into what is kept of it, with the bytes that adds (a copy, for a read that must
/// outlive `batch`).
fn read_all<'b, T: Send>(
    batch: &'b [(Inbound, MessageSource)],
    keyring: &Keyring,
    rules: &Rules,
    budget: u64,
    keep: &(dyn Fn(Read<'b>) -> (T, u64) + Sync),
) -> Vec<Option<Ahead<T>>> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let held = AtomicU64::new(0);
    let ahead = |input: &'b Inbound| -> Option<Ahead<T>> {
        if held.load(Ordering::Relaxed) > budget {
            return None;
        }
        let Inbound::Whole(raw) = input else {
            return None;
        };
        let read = read_message(raw, keyring, rules);
        let decoded = held_bytes(Some(&read));
        let (kept, copied) = keep(read);
        held.fetch_add(decoded + copied, Ordering::Relaxed);
        Some(Ahead {
            read: kept,
            sha256: crate::intake::sha256_hex(raw),
        })
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(batch.len().max(1));
    if threads < 2 {
        return batch.iter().map(|(i, _)| ahead(i)).collect();
    }
    // Each thread takes the next message not taken yet: the threads finish together however
    // the costs of the messages are spread (one shares its core with the thread that stores).
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: Vec<Vec<(usize, Option<Ahead<T>>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (ahead, next) = (&ahead, &next);
                std::thread::Builder::new()
                    // As `serve`'s own threads: recursion is bounded by the limits, this is margin.
                    .stack_size(16 << 20)
                    .spawn_scoped(scope, move || {
                        let mut mine = Vec::new();
                        // Bounded: every turn takes one of the batch's messages.
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            let Some((i, _)) = batch.get(k) else {
                                return mine;
                            };
                            mine.push((k, ahead(i)));
                        }
                    })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| match w {
                Ok(handle) => handle.join().unwrap_or_default(),
                Err(_) => Vec::new(),
            })
            .collect()
    });
    // A thread that could not be started (or died) left its messages unread: they are read
    // inside the transaction.
    let mut reads: Vec<Option<Ahead<T>>> = (0..batch.len()).map(|_| None).collect();
    for (k, r) in done.into_iter().flatten() {
        if let Some(slot) = reads.get_mut(k) {
            *slot = r;
        }
    }
    reads
}

/// A batch whose tries are counted ([`PipelineRef::count_batch`]): it may be read now, on any
/// thread ([`read_batch`]), and then stored ([`PipelineRef::store_batch`]).
pub struct CountedBatch {
    batch: Vec<(Inbound, MessageSource)>,
    plan: Plan,
}

/// How a counted batch is stored (see [`PipelineRef::process_batch`]).
enum Plan {
    /// In one transaction; the tries of each message, counted together.
    Grouped(Vec<(u32, Option<String>)>),
    /// Each message in its own transaction; with their tries when they were counted already.
    OneAtATime(Option<Vec<(u32, Option<String>)>>),
    /// The tries could not be counted: nothing is stored.
    Failed(PipelineError),
}

impl CountedBatch {
    /// Whether the batch is stored in one transaction; only then may the next batch be counted
    /// and read before it is stored (see [`PipelineRef::count_batch`]).
    pub fn grouped(&self) -> bool {
        matches!(self.plan, Plan::Grouped(_))
    }
}

/// A counted batch and what reading its messages found, owned: it can be read on one thread
/// while an earlier batch is stored on another.
pub struct ReadBatch {
    counted: CountedBatch,
    reads: Vec<Option<Ahead<Read<'static>>>>,
}

impl ReadBatch {
    /// A counted batch with nothing read ahead: each message is read inside the transaction.
    pub fn unread(counted: CountedBatch) -> ReadBatch {
        ReadBatch {
            counted,
            reads: Vec::new(),
        }
    }

    /// Forgets what was read, so that each message is read again inside the transaction: for a
    /// batch read with a keyring that has changed since (a key imported, bound or revoked).
    pub fn read_again(&mut self) {
        self.reads.clear();
    }
}

/// Parses and opens the messages of a grouped batch on every core (nothing for one stored one
/// at a time: each is read in its turn). Touches no store.
pub fn read_batch(counted: CountedBatch, keyring: &Keyring, rules: &Rules) -> ReadBatch {
    let read = || {
        read_all(
            &counted.batch,
            keyring,
            rules,
            rules.limits.max_decoded_bytes,
            &|r| {
                // The parse borrows the bytes it was made from; the copy lets it outlive them here.
                let copied = match &r {
                    Read::Ok(reading) => 2 * reading.parsed.raw_message().len() as u64,
                    _ => 0,
                };
                (r.into_owned(), copied)
            },
        )
    };
    // Each message's reading catches its own panic; this is for the rest. The batch is never
    // lost with it: what is not read ahead is read inside the transaction.
    let reads = match counted.plan {
        Plan::Grouped(_) => caught(read).unwrap_or_default(),
        _ => Vec::new(),
    };
    ReadBatch { counted, reads }
}

/// Decrypted bytes a read holds (its plaintext and its parse, and the signed part kept for a
/// statement).
fn held_bytes(read: Option<&Read<'_>>) -> u64 {
    match read {
        Some(Read::Ok(r)) => match &r.content {
            Content::Opened(Ok(o)) => {
                let inner = o.inner.as_ref().map_or(0, Vec::len);
                let signed = o.signed_content.as_ref().map_or(0, Vec::len);
                // Its parse, owned: a copy of the bytes and of the decoded parts.
                let parsed = o
                    .inner_parsed
                    .as_ref()
                    .map_or(0, |m| 2 * m.raw_message().len());
                (inner + signed + parsed) as u64
            }
            _ => 0,
        },
        _ => 0,
    }
}

/// Everything the decision about one message needs from the store, gathered first
/// ([`PipelineRef::gather`]); [`decide`] reads nothing else.
#[derive(Debug, Clone, Default)]
struct StoreFacts {
    /// What routing needs: the threads its numbers name, the one it replies to, the sender's.
    knowledge: Knowledge,
    /// The thread routing posts it to, and that thread's contacts (whose keys count).
    target: Option<(Thread, Vec<Contact>)>,
    /// The vendor organizations the sender is a contact of in the target thread.
    vendor_orgs: Vec<VendorOrg>,
    /// The organizations whose key made the message's valid signature (for the reason a
    /// vendor's statement does not count).
    signer_orgs: Vec<String>,
    /// The signing key is a key change for the From address nobody accepted yet.
    signer_held: bool,
    /// Keys bound to the From address in any thread.
    from_keys: Vec<String>,
    /// The organization the From address is first a contact of (a new ticket's).
    from_org: Option<String>,
    /// The From address is a participant's somewhere.
    from_known: bool,
    /// Its Message-ID is one casegate sent (a relayed copy come back).
    our_message_id: bool,
    /// For a delivery report: the copy it reports on.
    reported_copy: Option<ReportedCopy>,
}

#[derive(Debug, Clone)]
struct VendorOrg {
    id: i64,
    /// As the contact names it.
    contact_org: String,
    /// As the directory names it.
    name: String,
    keys: Vec<String>,
}

#[derive(Debug, Clone)]
struct ReportedCopy {
    thread_id: i64,
    address: String,
    number: TrackingNumber,
}

/// What routing reads from a message, and the subject that counts (protected headers, RFC
/// 9788, over the outer ones, which are often "...": only `open` decides what is a protected
/// header, so a Subject somewhere inside decrypted content never routes).
fn route_input(
    r: &Reading<'_>,
    opened: &open::Opened,
    rules: &Rules,
) -> (RouteInput, Option<String>) {
    let subject = opened
        .protected_subject
        .clone()
        .or_else(|| r.outer.subject.clone());
    let input = RouteInput {
        numbers: subject
            .as_deref()
            .map(tracking::find_in_subject)
            .unwrap_or_default(),
        reply_ids: reply_ids(&r.outer),
        from: r.outer.from.as_ref().map(|m| m.address.clone()),
        to_reporting_address: r
            .outer
            .recipients()
            .any(|m| m.address == rules.reporting_address),
    };
    (input, subject)
}

/// The decision about a message: pure — from what was read, what the store knows
/// ([`StoreFacts`]) and the rules; no I/O.
fn decide(
    raw: &[u8],
    sha256: &str,
    source: MessageSource,
    now: DateTime<Utc>,
    read: &Read<'_>,
    facts: &StoreFacts,
    rules: &Rules,
) -> Evaluation {
    let mut message = NewMessage::inbound_hashed(
        sha256.to_string(),
        source.clone(),
        now,
        Disposition::Quarantine,
    );
    let mut outcome = blank_outcome(&source);
    let r = match read {
        Read::Ok(r) => r,
        Read::Quarantine(reason) => return quarantine(message, outcome, reason.clone()),
        Read::Panic(what) => return panic_quarantine(raw, source, now, what),
    };
    let outer = &r.outer;
    message.message_id = outer.message_id.clone();
    message.date_header = outer.date.clone();
    message.sender = outer.from.as_ref().map(|m| m.address.clone());
    message.subject = outer.subject.clone();
    message.automatic = outer.automatic.is_some();
    outcome.message_id = outer.message_id.clone();
    outcome.automatic = message.automatic;
    message.sender_auth = r.sender_auth.result.as_str().to_string();
    message.sender_auth_detail = Some(r.sender_auth.detail.clone());
    outcome.sender_auth = r.sender_auth.result.as_str();
    outcome.sender_auth_detail = Some(r.sender_auth.detail.clone());
    let mut eval = match &r.content {
        Content::Report(report) => delivery_report(message, outcome, report, facts),
        Content::Opened(Err(e)) => quarantine(message, outcome, format!("cannot open: {e}")),
        Content::Opened(Ok(opened)) => decide_opened(r, opened, facts, rules, message, outcome),
    };
    eval.autocrypt = r.autocrypt.clone();
    eval
}

/// [`decide`] for a message opened (decrypted and verified as far as it goes).
fn decide_opened(
    r: &Reading<'_>,
    opened: &open::Opened,
    facts: &StoreFacts,
    rules: &Rules,
    mut message: NewMessage,
    mut outcome: Outcome,
) -> Evaluation {
    let limits = &rules.limits;
    let outer = &r.outer;
    outcome.notes.extend(opened.notes.iter().cloned());
    match &opened.encryption {
        Encryption::None => {}
        Encryption::Full { .. } => {
            message.encrypted = true;
            outcome.encrypted = true;
        }
        Encryption::Partial { reason } => {
            message.encryption_note = Some(format!("partial: {reason}"));
            outcome.notes.push(format!("partly encrypted: {reason}"));
        }
    }
    // The one parse of what was decrypted: `open`'s when it made one (PGP/MIME), else here
    // (an entity `open` built); say so when it is not readable as MIME.
    let parsed_here;
    let inner: Option<&mail_parser::Message<'_>> =
        match (opened.inner_parsed.as_deref(), opened.inner.as_deref()) {
            (Some(m), _) => Some(m),
            (None, Some(bytes)) => match message::parse_mime(bytes, limits) {
                Ok(m) => {
                    parsed_here = m;
                    Some(&parsed_here)
                }
                Err(e) => {
                    outcome
                        .notes
                        .push(format!("decrypted content unreadable: {e}"));
                    None
                }
            },
            (None, None) => None,
        };
    let (input, subject) = route_input(r, opened, rules);
    if subject != outer.subject {
        message.subject = subject.clone();
    }
    let from = input.from.clone();
    let decision = route::decide(&input, &facts.knowledge);
    outcome.steps = decision.steps.clone();

    // Whose keys count for the signature verdict: the contacts of the thread it goes to.
    let (target, contacts): (Option<&Thread>, &[Contact]) = match (&decision.action, &facts.target)
    {
        (Action::Post(t), Some((thread, contacts))) if thread.id == t.id => {
            (Some(thread), contacts.as_slice())
        }
        _ => (None, &[]),
    };
    let thread_contacts: Vec<ThreadContact> = contacts
        .iter()
        .map(|c| ThreadContact {
            address: c.address.clone(),
            key_fingerprints: c.key_fingerprints.clone(),
        })
        .collect();
    let mut v = verdict::signature_verdict(&opened.signature, from.as_deref(), &thread_contacts);
    // A key change nobody accepted yet does not sign for the address.
    let held_signer = match (&opened.signature, from.as_deref()) {
        (SignatureFacts::Valid { cert, .. }, Some(_)) if facts.signer_held => Some(cert.clone()),
        _ => None,
    };
    if let (Some(cert), Some(f)) = (&held_signer, from.as_deref()) {
        v = verdict::Verdict {
            signature: SignatureVerdict::UnknownKey,
            signer: None,
            reason: format!(
                "signed by key {cert}, a key change for {f} not accepted yet (see `casegate key changes`)"
            ),
        };
    }
    // Signed by a key bound to the From address in any thread (for the sender policy).
    let signed_by_participant = v.signature == SignatureVerdict::Good
        || (held_signer.is_none()
            && matches!(opened.signature, SignatureFacts::Valid { .. })
            && match from.as_deref() {
                Some(f) => {
                    let own = [ThreadContact {
                        address: f.to_string(),
                        key_fingerprints: facts.from_keys.clone(),
                    }];
                    verdict::signature_verdict(&opened.signature, Some(f), &own).signature
                        == SignatureVerdict::Good
                }
                None => false,
            });
    if let SignatureFacts::Partial { reason } = &opened.signature {
        outcome.notes.push(format!("partly signed: {reason}"));
    }
    message.signature = v.signature.as_str().to_string();
    message.signer = v.signer.clone();
    message.signature_reason = Some(v.reason.clone());
    outcome.signature = v.signature.as_str();
    outcome.signer = v.signer.clone();
    outcome.signature_reason = Some(v.reason.clone());

    let title = subject
        .clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "(no subject)".into());
    let mut reason = decision.reason.clone();
    let mut flags = Vec::new();
    message.disposition = match &decision.action {
        Action::Post(t) => Disposition::Post { thread_id: t.id },
        Action::Triage => Disposition::Triage,
        Action::NewTicket | Action::NewReport if message.automatic => {
            reason = format!(
                "automatic message ({}) outside any thread",
                outer.automatic.as_deref().unwrap_or("auto")
            );
            outcome
                .steps
                .push("automatic mail never opens a thread".into());
            Disposition::Triage
        }
        Action::NewTicket => Disposition::NewThread {
            kind: Kind::Ticket,
            title,
            participant: from.clone().map(|address| NewParticipant {
                org: facts.from_org.clone().unwrap_or_else(|| address.clone()),
                role: "other".into(),
                address,
            }),
        },
        Action::NewReport => Disposition::NewThread {
            kind: Kind::Report,
            title,
            participant: from.clone().map(|address| NewParticipant {
                org: outer
                    .from
                    .as_ref()
                    .and_then(|m| m.name.clone())
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| address.clone()),
                role: "reporter".into(),
                address,
            }),
        },
    };

    if let (Some(thread), Disposition::Post { .. }) = (target, &message.disposition) {
        // What the reader sees: the decrypted content (none when it is unreadable), else the
        // message itself.
        let entity = match &opened.inner {
            Some(_) => inner,
            None => Some(&r.parsed),
        };
        // A vendor's status and statement; with signatures required, only one signed by a
        // key of the vendor's organization counts, anything else is flagged.
        if !message.automatic {
            let claims = vendor_claims(
                thread,
                from.as_deref(),
                subject.as_deref(),
                entity,
                opened,
                facts,
                rules,
            );
            if claims.iter().any(|(c, _)| !c.counted) {
                flags.push("unsigned-statement");
            }
            for (c, org) in &claims {
                outcome.claims.push(ClaimOutcome {
                    org: org.clone(),
                    status: c.status.clone(),
                    statement: c.statement.is_some(),
                    counted: c.counted,
                    reason: c.reason.clone(),
                });
            }
            message.claims = claims.into_iter().map(|(c, _)| c).collect();
        }
        // The case discussion: owed now, composed and sealed by the outbox side.
        let recipients: Vec<String> = outer
            .recipients()
            .map(|m| m.address.clone())
            .chain(outer.delivered_to.iter().cloned())
            .collect();
        let discussion = Discussion::parse(&thread.discussion).unwrap_or(Discussion::Hub);
        let decision = relay_decision(&RelayFacts {
            discussion,
            posted: true,
            from_participant: from
                .as_deref()
                .is_some_and(|f| contacts.iter().any(|c| c.address == f)),
            automatic: message.automatic,
            delivery_report: false,
            subject: subject.as_deref(),
            recipients: &recipients,
            private_address: rules.private_address.as_deref(),
            signature: v.signature,
            our_message_id: message.message_id.is_some() && facts.our_message_id,
            relay_marker: outer.relay_marker,
        });
        if discussion == Discussion::Relay {
            outcome.relay = Some(match &decision {
                Ok(()) => "owed: to the other participants".into(),
                Err(why) => format!("not relayed: {why}"),
            });
        }
        message.relay_owed = decision.is_ok();
    }
    // Mail from a participant's address: is it the participant's?
    match crate::trust::policy::decide(&crate::trust::policy::Facts {
        from_participant: from.is_some() && facts.from_known,
        signed_by_participant,
        sender: &r.sender_auth,
        require_authenticated: rules.require_authenticated_participants,
    }) {
        crate::trust::policy::Decision::Accept => {}
        crate::trust::policy::Decision::Flag => {
            flags.push(crate::trust::policy::UNAUTHENTICATED);
            outcome.steps.push(format!(
                "from a participant's address without a good signature or sender authentication pass ({}): flagged",
                r.sender_auth.result
            ));
        }
        crate::trust::policy::Decision::Triage(why) => {
            flags.push(crate::trust::policy::UNAUTHENTICATED);
            outcome.steps.push(why.clone());
            reason = why;
            message.disposition = Disposition::Triage;
        }
    }
    if message.automatic {
        flags.push("automatic");
    }
    message.flags = flags.join(",");
    message.reason = reason.clone();
    outcome.reason = reason;
    outcome.outcome = match message.disposition {
        Disposition::Post { .. } | Disposition::NewThread { .. } => "routed",
        Disposition::Triage => "triage",
        Disposition::Quarantine => "quarantine",
    };
    outcome.thread = target.map(|t| t.number.clone());
    if matches!(message.disposition, Disposition::Triage) {
        outcome.thread = None;
    }
    if let Disposition::NewThread { kind, .. } = &message.disposition {
        outcome
            .steps
            .push(format!("a new {kind} number is minted when stored"));
    }
    // A new report's reporter is answered to the key it offers (trust on first use): the
    // keys are recorded with the acknowledgment owed, for the outbox.
    if !message.automatic
        && let Disposition::NewThread {
            kind: Kind::Report, ..
        } = &message.disposition
    {
        message.offered_keys = message::offered_keys_of(&r.parsed);
        if let Some(inner) = &inner {
            message.offered_keys.extend(message::offered_keys_of(inner));
        }
    }
    Evaluation {
        message,
        outcome,
        bounced: None,
        autocrypt: Vec::new(),
    }
}

/// Files a DSN with the thread of the copy it reports on (flagged, not as a statement), and
/// says which copy bounced; a report about mail we did not send waits in triage.
fn delivery_report(
    mut message: NewMessage,
    mut outcome: Outcome,
    report: &crate::bounce::Bounce,
    facts: &StoreFacts,
) -> Evaluation {
    message.automatic = true;
    outcome.automatic = true;
    let describe = |r: &crate::bounce::BouncedRecipient| {
        format!(
            "{} {}{}{}",
            r.address,
            r.action,
            r.status
                .as_deref()
                .map(|s| format!(" {s}"))
                .unwrap_or_default(),
            r.diagnostic
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )
    };
    let mut bounced = None;
    match (&facts.reported_copy, &report.original_message_id) {
        (Some(copy), Some(id)) => {
            let about: Vec<String> = report.recipients.iter().map(describe).collect();
            let failed = report.recipients.iter().find(|r| r.action == "failed");
            message.reason = match failed {
                Some(r) => {
                    bounced = Some((id.clone(), format!("bounced: {}", describe(r))));
                    format!(
                        "delivery report: copy {id} to {} bounced: {}",
                        copy.address,
                        about.join("; ")
                    )
                }
                None => format!(
                    "delivery report about {id} to {}: {}",
                    copy.address,
                    about.join("; ")
                ),
            };
            message.disposition = Disposition::Post {
                thread_id: copy.thread_id,
            };
            message.flags = "delivery-report,automatic".into();
            outcome.outcome = "routed";
            outcome.thread = Some(copy.number.clone());
        }
        _ => {
            message.reason = "delivery report about a message casegate did not send".into();
            message.disposition = Disposition::Triage;
            message.flags = "delivery-report,automatic".into();
            outcome.outcome = "triage";
        }
    }
    outcome.reason = message.reason.clone();
    Evaluation {
        message,
        outcome,
        bounced,
        autocrypt: Vec::new(),
    }
}

/// The status/statement claims of a message posted to `thread` by a vendor contact: one per
/// vendor organization the sender is a contact of ([`StoreFacts::vendor_orgs`]), judged
/// against that organization's keys; each with the organization's name.
fn vendor_claims(
    thread: &Thread,
    from: Option<&str>,
    subject: Option<&str>,
    entity: Option<&mail_parser::Message<'_>>,
    opened: &open::Opened,
    facts: &StoreFacts,
    rules: &Rules,
) -> Vec<(NewClaim, String)> {
    if from.is_none() || facts.vendor_orgs.is_empty() {
        return Vec::new();
    }
    let text = entity
        .and_then(|m| message::readable_of(m).text)
        .unwrap_or_default();
    let parsed = crate::statement::parse(subject, &text);
    if parsed.is_empty() {
        return Vec::new();
    }
    let required = thread.require_signed_statements || rules.require_signed_vendor_statements;
    let signer = match &opened.signature {
        SignatureFacts::Valid { cert, .. } => Some(crate::keyring::normalize_fingerprint(cert)),
        _ => None,
    };
    let mut out = Vec::with_capacity(facts.vendor_orgs.len());
    for o in &facts.vendor_orgs {
        let org = &o.contact_org;
        let signed_by_org = signer.as_ref().is_some_and(|s| o.keys.contains(s));
        let why_not = || match (&opened.signature, &signer) {
            (_, Some(s)) => {
                if facts.signer_orgs.is_empty() {
                    format!("signed by key {s}, which is not a key of {org}")
                } else {
                    format!(
                        "signed by key {s} of {}, not a key of {org}",
                        facts.signer_orgs.join(", ")
                    )
                }
            }
            (SignatureFacts::None, _) => "not signed".into(),
            (SignatureFacts::Partial { reason }, _) => {
                format!("only partly signed ({reason})")
            }
            (SignatureFacts::Bad { reason }, _) => format!("bad signature ({reason})"),
            (SignatureFacts::UnknownKey { issuer }, _) => {
                format!("signed by unknown key {issuer}")
            }
            (SignatureFacts::Valid { .. }, None) => "not signed".into(),
        };
        let (counted, reason) = if signed_by_org {
            (
                true,
                format!("signed by {org}'s key {}", signer.as_deref().unwrap_or("")),
            )
        } else if required {
            (
                false,
                format!(
                    "not counted: {} requires statements signed by a key of {org}; {}",
                    thread.number,
                    why_not()
                ),
            )
        } else {
            (
                true,
                format!("counted without a signature check: {}", why_not()),
            )
        };
        // Decrypted text is never stored: an encrypted statement stays in the stored
        // ciphertext and is read again from there (`ops::vendors`).
        let sealed = opened.encryption != Encryption::None;
        out.push((
            NewClaim {
                org_id: o.id,
                status: parsed.status.map(|s| s.as_str().to_string()),
                statement: parsed.statement.clone().filter(|_| !sealed),
                signed_part: signer
                    .is_some()
                    .then(|| opened.signed_content.clone())
                    .flatten()
                    .filter(|_| !sealed),
                sealed: sealed && parsed.statement.is_some(),
                signer: signer.clone(),
                signed_by_org,
                counted,
                reason,
            },
            o.name.clone(),
        ));
    }
    out
}

/// The quarantine of a message whose reading panicked: a bug that sender data reaches costs
/// that message its routing, not the gateway.
fn panic_quarantine(
    raw: &[u8],
    source: MessageSource,
    now: DateTime<Utc>,
    what: &str,
) -> Evaluation {
    let reason = format!(
        "internal error while reading this message ({}); stored raw for a person to look at",
        one_line(what, 200)
    );
    tracing::error!(source = %source.describe(), %reason, "message quarantined after a panic");
    let message = NewMessage::inbound_deferred(raw, source.clone(), now, Disposition::Quarantine);
    let mut e = quarantine(message, blank_outcome(&source), reason);
    e.message.flags = "internal-error".into();
    e
}

/// `In-Reply-To` first, then `References` from the newest back.
fn reply_ids(view: &MailView) -> Vec<String> {
    let mut ids: Vec<String> = view.in_reply_to.clone();
    for r in view.references.iter().rev() {
        if !ids.contains(r) {
            ids.push(r.clone());
        }
    }
    ids
}

/// Failed tries counted for `source` in `store`, and the last failure.
fn failed_attempts(store: &Store, source: &MessageSource) -> Result<(u32, String), PipelineError> {
    match source.attempt_key() {
        Some(key) => {
            let (n, last) = store.attempts(&key)?;
            Ok((
                n,
                last.unwrap_or_else(|| "casegate stopped while reading it".into()),
            ))
        }
        None => Ok((0, String::new())),
    }
}

/// Debug builds only (the tests' binary; compiled out of release builds): aborts the process
/// when the message holds the bytes in `CASEGATE_DEBUG_ABORT_ON`, the way a stack overflow or
/// an allocation failure would, so the tests can show that a message which kills casegate is
/// counted and, after `max_attempts`, quarantined unread.
#[cfg(debug_assertions)]
fn abort_for_tests(raw: &[u8]) {
    if let Some(marker) = std::env::var_os("CASEGATE_DEBUG_ABORT_ON") {
        let marker = marker.as_encoded_bytes();
        if !marker.is_empty() && raw.windows(marker.len()).any(|w| w == marker) {
            std::process::abort();
        }
    }
}

#[cfg(not(debug_assertions))]
fn abort_for_tests(_raw: &[u8]) {}

/// An outcome with nothing decided yet (quarantine until something says otherwise).
fn blank_outcome(source: &MessageSource) -> Outcome {
    Outcome {
        source: source.describe(),
        message_id: None,
        outcome: "quarantine",
        thread: None,
        reason: String::new(),
        encrypted: false,
        signature: "none",
        signer: None,
        signature_reason: None,
        sender_auth: "none",
        sender_auth_detail: None,
        automatic: false,
        notes: Vec::new(),
        claims: Vec::new(),
        relay: None,
        acknowledgment: None,
        steps: Vec::new(),
    }
}

/// The quarantine reason for a message given up after `failed` tries that ended without a
/// commit.
fn gave_up_reason(failed: u32, last_error: Option<&str>) -> String {
    match last_error {
        Some(e) => format!(
            "given up after {failed} tries that did not end in storing it (last: {}); stored raw, unread",
            one_line(e, 200)
        ),
        None => format!(
            "given up after {failed} tries that did not end in storing it (casegate stopped while reading it); stored raw, unread"
        ),
    }
}

/// Runs `f`; a panic in it becomes `Err` with the panic's message. The work on one message
/// runs under this, so a bug that sender data reaches costs that message, not the gateway
/// (what `f` touched is only read, or rolled back with its transaction).
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into())
    })
}

/// `text` on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    line.trim().to_string()
}

fn quarantine(mut message: NewMessage, mut outcome: Outcome, reason: String) -> Evaluation {
    message.disposition = Disposition::Quarantine;
    message.reason = reason.clone();
    outcome.outcome = "quarantine";
    outcome.thread = None;
    outcome.reason = reason;
    Evaluation {
        message,
        outcome,
        bounced: None,
        autocrypt: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(limits: Limits) -> Rules {
        Rules {
            reporting_address: "cert@example.test".into(),
            coordinator_address: "cert@example.test".into(),
            require_signed_vendor_statements: false,
            limits,
            private_address: None,
            sender_check: std::sync::Arc::new(crate::trust::SenderCheck::new(&Default::default())),
            require_authenticated_participants: false,
        }
    }

    fn pipeline(limits: Limits) -> Pipeline {
        let store = Store::open_in_memory().unwrap();
        Pipeline::new(store, Keyring::new(None, Vec::new()), rules(limits))
    }

    // ----- the decision, pure: what was read + what the store knows (StoreFacts) -----

    const CASE: &str = "VU#409117";

    fn case_thread(require_signed_statements: bool) -> Thread {
        Thread {
            id: 7,
            number: TrackingNumber::parse(CASE).unwrap(),
            kind: Kind::Case,
            title: "case".into(),
            status: "open".into(),
            created_at: "2026-11-29T00:00:00Z".into(),
            promoted_to: None,
            require_signed_statements,
            publication_date: None,
            discussion: "hub".into(),
        }
    }

    fn vendor_contact() -> Contact {
        Contact {
            contact_id: 1,
            participant_id: 1,
            org_id: 3,
            org_contact_id: 1,
            org: "FooCorp".into(),
            role: "vendor".into(),
            address: "psirt@foocorp.example".into(),
            key_fingerprints: Vec::new(),
        }
    }

    /// Facts of a store in which CASE is thread 7 and the vendor a contact of it.
    fn case_facts(require_signed_statements: bool) -> StoreFacts {
        let number = TrackingNumber::parse(CASE).unwrap();
        let mut knowledge = Knowledge::default();
        knowledge.threads.insert(
            number.clone(),
            KnownThread {
                id: 7,
                number: number.clone(),
            },
        );
        knowledge.sender_threads = vec![7];
        StoreFacts {
            knowledge,
            target: Some((
                case_thread(require_signed_statements),
                vec![vendor_contact()],
            )),
            vendor_orgs: vec![VendorOrg {
                id: 3,
                contact_org: "FooCorp".into(),
                name: "FooCorp Inc.".into(),
                keys: vec!["AB".repeat(20)],
            }],
            from_known: true,
            ..StoreFacts::default()
        }
    }

    fn decided(raw: &[u8], facts: &StoreFacts, rules: &Rules) -> Evaluation {
        let keyring = Keyring::new(None, Vec::new());
        let read = read_message(raw, &keyring, rules);
        let sha256 = crate::intake::sha256_hex(raw);
        decide(raw, &sha256, maildir("m"), Utc::now(), &read, facts, rules)
    }

    fn vendor_mail(subject: &str, body: &str) -> Vec<u8> {
        format!(
            "From: PSIRT <psirt@foocorp.example>\r\nTo: cert@example.test\r\nSubject: {subject}\r\n\
Message-ID: <v1@foocorp.example>\r\n\r\n{body}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn decide_posts_a_known_number_from_a_participant_and_files_the_vendor_status() {
        let rules = rules(Limits::default());
        let raw = vendor_mail(&format!("Re: [{CASE}] status"), "Status: not affected");
        let e = decided(&raw, &case_facts(false), &rules);
        assert!(matches!(
            e.message.disposition,
            Disposition::Post { thread_id: 7 }
        ));
        assert_eq!(e.outcome.outcome, "routed");
        assert_eq!(e.outcome.thread.as_ref().map(|t| t.as_str()), Some(CASE));
        assert_eq!(e.message.claims.len(), 1);
        let claim = &e.message.claims[0];
        assert_eq!(
            (claim.org_id, claim.status.as_deref()),
            (3, Some("not affected"))
        );
        assert!(claim.counted, "{}", claim.reason);
        assert!(claim.reason.contains("not signed"), "{}", claim.reason);
        // The organization as the directory names it.
        assert_eq!(e.outcome.claims[0].org, "FooCorp Inc.");
        assert!(!e.message.flags.contains("unsigned-statement"));
    }

    #[test]
    fn decide_does_not_count_an_unsigned_statement_where_signatures_are_required() {
        let rules = rules(Limits::default());
        let raw = vendor_mail(&format!("Re: [{CASE}] status"), "Status: fixed");
        let e = decided(&raw, &case_facts(true), &rules);
        let claim = &e.message.claims[0];
        assert!(!claim.counted);
        assert!(
            claim
                .reason
                .contains("requires statements signed by a key of FooCorp"),
            "{}",
            claim.reason
        );
        assert!(e.message.flags.contains("unsigned-statement"));
    }

    #[test]
    fn decide_triages_what_the_facts_do_not_support() {
        let rules = rules(Limits::default());
        let raw = vendor_mail(&format!("Re: [{CASE}] status"), "hello");
        // The store knows no such number: triage, whatever the sender.
        let e = decided(&raw, &StoreFacts::default(), &rules);
        assert!(matches!(e.message.disposition, Disposition::Triage));
        assert!(
            e.outcome.reason.contains("unknown tracking number"),
            "{}",
            e.outcome.reason
        );
        // Known, but the sender is not a participant: a number routes, it never authorizes.
        let mut facts = case_facts(false);
        facts.knowledge.sender_threads.clear();
        let e = decided(&raw, &facts, &rules);
        assert!(matches!(e.message.disposition, Disposition::Triage));
        assert!(
            e.outcome.reason.contains("not a participant"),
            "{}",
            e.outcome.reason
        );
        assert_eq!(e.outcome.thread, None);
        // A participant's address, nothing vouches for it, and the policy asks for it.
        let strict = Rules {
            require_authenticated_participants: true,
            ..rules.clone()
        };
        let e = decided(&raw, &case_facts(false), &strict);
        assert!(matches!(e.message.disposition, Disposition::Triage));
        assert!(
            e.message
                .flags
                .contains(crate::trust::policy::UNAUTHENTICATED)
        );
    }

    #[test]
    fn decide_opens_a_report_and_keeps_automatic_mail_out_of_new_threads() {
        let rules = rules(Limits::default());
        let e = decided(&report(3), &StoreFacts::default(), &rules);
        let Disposition::NewThread {
            kind, participant, ..
        } = &e.message.disposition
        else {
            panic!("{:?}", e.message.disposition)
        };
        assert_eq!(*kind, Kind::Report);
        assert_eq!(participant.as_ref().unwrap().address, "r3@example.net");
        let auto = String::from_utf8(report(4))
            .unwrap()
            .replace("Subject:", "Auto-Submitted: auto-replied\r\nSubject:");
        let e = decided(auto.as_bytes(), &StoreFacts::default(), &rules);
        assert!(matches!(e.message.disposition, Disposition::Triage));
        assert!(
            e.outcome.reason.contains("automatic message"),
            "{}",
            e.outcome.reason
        );
    }

    #[test]
    fn decide_files_a_delivery_report_with_the_copy_it_is_about() {
        let rules = rules(Limits::default());
        let dsn = "From: MAILER-DAEMON@mx.example\r\nTo: cert@example.test\r\nSubject: Undelivered\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n\
Final-Recipient: rfc822; gone@foocorp.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <copy-1@cert.example.test>\r\n\r\n\
--b--\r\n";
        let e = decided(dsn.as_bytes(), &StoreFacts::default(), &rules);
        assert!(matches!(e.message.disposition, Disposition::Triage));
        assert!(
            e.outcome.reason.contains("did not send"),
            "{}",
            e.outcome.reason
        );
        let facts = StoreFacts {
            reported_copy: Some(ReportedCopy {
                thread_id: 7,
                address: "gone@foocorp.example".into(),
                number: TrackingNumber::parse(CASE).unwrap(),
            }),
            ..StoreFacts::default()
        };
        let e = decided(dsn.as_bytes(), &facts, &rules);
        assert!(matches!(
            e.message.disposition,
            Disposition::Post { thread_id: 7 }
        ));
        assert!(e.outcome.reason.contains("bounced"), "{}", e.outcome.reason);
        assert_eq!(
            e.bounced.as_ref().map(|(id, _)| id.as_str()),
            Some("<copy-1@cert.example.test>")
        );
    }

    fn report(i: usize) -> Vec<u8> {
        format!(
            "From: r{i}@example.net\r\nTo: cert@example.test\r\nSubject: report {i}\r\n\
Message-ID: <r{i}@example.net>\r\n\r\nDetails {i}.\r\n"
        )
        .into_bytes()
    }

    fn maildir(name: &str) -> MessageSource {
        MessageSource::Maildir(format!("/m/new/{name}"))
    }

    fn whole(raws: Vec<(Vec<u8>, &str)>) -> Vec<(Inbound, MessageSource)> {
        raws.into_iter()
            .map(|(raw, name)| (Inbound::Whole(raw), maildir(name)))
            .collect()
    }

    fn stored_count(p: &Pipeline) -> i64 {
        p.store()
            .db()
            .one("SELECT count(*) FROM messages", crate::store::sql::args![])
            .unwrap()
    }

    /// What the store does for one more message from a sender does not grow with how many
    /// the sender sent before: an initial sync of years of one PSIRT's mail stays linear.
    /// Counted in SQLite's own steps, not time. (Each message after the first opens a new
    /// ticket for a known participant, the heaviest plain path: a thread, its participant, its
    /// contact, and the sender's standing read for routing.)
    #[test]
    fn a_message_costs_the_store_the_same_however_many_the_sender_sent_before() {
        let mut p = pipeline(Limits::default());
        let mail = |i: usize| {
            format!(
                "From: psirt@vendor.example\r\nTo: cert@example.test\r\nSubject: issue {i}\r\n\
Message-ID: <m{i}@vendor.example>\r\n\r\nDetails {i}.\r\n"
            )
            .into_bytes()
        };
        let mut batch_steps = Vec::new();
        for b in 0..12 {
            let batch: Vec<(Vec<u8>, String)> = (b * 50..(b + 1) * 50)
                .map(|i| (mail(i), format!("{i}.eml")))
                .collect();
            let before = p.store().sqlite_steps();
            let compiled = p.store().sqlite_reprepares();
            let done = p.process_batch(whole(
                batch.iter().map(|(r, n)| (r.clone(), n.as_str())).collect(),
            ));
            assert!(done.failure.is_none(), "{:?}", done.failure);
            assert!(done.outcomes.iter().all(|o| o.outcome == "routed"));
            batch_steps.push(p.store().sqlite_steps() - before);
            assert_eq!(
                p.store().sqlite_reprepares() - compiled,
                0,
                "cached statements are compiled once, not again for each new value bound"
            );
        }
        // The first batch holds the new report; from the second on, 50 new tickets each.
        let (early, late) = (batch_steps[1], batch_steps[11]);
        assert!(early > 0, "steps are counted");
        assert!(
            late * 2 <= early * 3,
            "SQLite steps per batch of 50 grew from {early} (messages 51-100) to {late} \
             (551-600): a query walks the sender's history; all: {batch_steps:?}"
        );
    }

    /// Group commit: a batch costs one transaction for its tries and one for all of it,
    /// where the same messages one at a time cost two each; and it decides exactly as one at a
    /// time would (the second mail of a reporter sees the first one's report).
    #[test]
    fn a_batch_is_stored_with_one_transaction() {
        let mut p = pipeline(Limits::default());
        let before = p.store().commits();
        let batch: Vec<(Vec<u8>, String)> =
            (0..10).map(|i| (report(i), format!("{i}.eml"))).collect();
        let done = p.process_batch(whole(
            batch.iter().map(|(r, n)| (r.clone(), n.as_str())).collect(),
        ));
        assert!(done.failure.is_none(), "{:?}", done.failure);
        assert_eq!(done.outcomes.len(), 10);
        assert!(done.outcomes.iter().all(|o| o.outcome == "routed"));
        assert_eq!(p.store().commits() - before, 2, "tries + the batch");
        assert_eq!(stored_count(&p), 10);
        // Every try went with the commit.
        for i in 0..10 {
            let key = maildir(&format!("{i}.eml")).attempt_key().unwrap();
            assert_eq!(p.store().attempts(&key).unwrap().0, 0);
        }
        // Each a report of its own, with its own number, in batch order.
        let numbers: Vec<String> = done
            .outcomes
            .iter()
            .map(|o| o.thread.as_ref().unwrap().as_str().to_string())
            .collect();
        let mut unique = numbers.clone();
        unique.dedup();
        assert_eq!(unique.len(), 10, "{numbers:?}");
        // The same ten again, one at a time: two commits each, all duplicates.
        let before = p.store().commits();
        for (raw, name) in &batch {
            assert_eq!(p.process(raw, maildir(name)).unwrap().outcome, "duplicate");
        }
        assert_eq!(p.store().commits() - before, 20);
    }

    /// Two copies of one message in one batch: stored once, the second is a duplicate.
    #[test]
    fn two_copies_in_one_batch_are_stored_once() {
        let mut p = pipeline(Limits::default());
        let done = p.process_batch(whole(vec![
            (report(1), "a"),
            (report(2), "b"),
            (report(1), "c"),
        ]));
        let outcomes: Vec<&str> = done.outcomes.iter().map(|o| o.outcome).collect();
        assert_eq!(outcomes, ["routed", "routed", "duplicate"]);
        assert_eq!(done.outcomes[2].thread, done.outcomes[0].thread);
        assert_eq!(stored_count(&p), 2);
    }

    /// A store that refuses one message of a batch: nothing of the batch is committed with
    /// it; each message then goes on its own, so those before it are stored (and may leave
    /// their source), it and those after it are not (and stay), and no try is counted twice.
    #[test]
    fn a_refused_message_stops_the_batch_at_it() {
        let mut p = pipeline(Limits::default());
        p.store()
            .db()
            .sqlite_conn()
            .unwrap()
            .execute_batch(
                "CREATE TEMP TRIGGER refuse BEFORE INSERT ON messages
                 WHEN NEW.subject = 'report 3' BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        let before = p.store().commits();
        let done = p.process_batch(whole(
            (1..=5)
                .map(|i| (report(i), ["", "1", "2", "3", "4", "5"][i]))
                .collect(),
        ));
        assert_eq!(done.outcomes.len(), 2, "{:?}", done.outcomes);
        let failure = done.failure.expect("the refused message fails").to_string();
        assert!(failure.contains("disk full"), "{failure}");
        assert_eq!(stored_count(&p), 2);
        // Tries, the failed batch (rolled back), then 1 and 2 each on their own.
        assert_eq!(p.store().commits() - before, 3);
        let tries = |n: &str| {
            p.store()
                .attempts(&maildir(n).attempt_key().unwrap())
                .unwrap()
                .0
        };
        assert_eq!(
            [tries("1"), tries("2"), tries("3"), tries("4")],
            [0, 0, 1, 1]
        );
    }

    /// A batch the process died in (every message counted once) goes one message at a time:
    /// the message that killed it is given up after `max_attempts`, the others are stored,
    /// none of them given up.
    #[test]
    fn after_a_crash_in_a_batch_the_poison_message_is_isolated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let names = ["1", "2", "3", "4"];
        let keys: Vec<String> = names
            .iter()
            .map(|n| maildir(n).attempt_key().unwrap())
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        {
            // The batch was counted, then the process died (on "2", as it turns out)...
            let mut s = Store::open(&path).unwrap();
            s.begin_attempts(&keys).unwrap();
            // ...and twice more on "2" alone, one message at a time.
            for _ in 0..2 {
                s.begin_attempt(keys[1]).unwrap();
            }
        }
        let mut p = pipeline(Limits::default());
        p.store = Store::open(&path).unwrap();
        let before = p.store().commits();
        let done = p.process_batch(whole(
            names
                .iter()
                .map(|n| (report(n.parse().unwrap()), *n))
                .collect(),
        ));
        assert!(done.failure.is_none());
        let outcomes: Vec<&str> = done.outcomes.iter().map(|o| o.outcome).collect();
        assert_eq!(outcomes, ["routed", "quarantine", "routed", "routed"]);
        assert!(
            done.outcomes[1].reason.contains("given up after 3 tries"),
            "{}",
            done.outcomes[1].reason
        );
        // One at a time: a try and a commit each.
        assert_eq!(p.store().commits() - before, 8);
        for k in &keys {
            assert_eq!(p.store().attempts(k).unwrap().0, 0);
        }
    }

    /// With `max_attempts = 1` nothing is grouped: a crash in a batch would count a try
    /// against every message of it, and give up the innocent ones at their next try.
    #[test]
    fn with_one_attempt_allowed_batches_go_one_at_a_time() {
        let mut p = pipeline(Limits {
            max_attempts: 1,
            ..Limits::default()
        });
        let before = p.store().commits();
        let done = p.process_batch(whole(vec![(report(1), "a"), (report(2), "b")]));
        assert_eq!(done.outcomes.len(), 2);
        assert_eq!(p.store().commits() - before, 4);
    }

    /// Reading ahead stops once the decrypted content it holds passes the budget: the rest of
    /// the batch is read inside the transaction, one message at a time, and stored the same.
    #[test]
    fn a_batch_reads_ahead_only_within_the_decoded_budget() {
        use crate::outbox::compose::{Notice, seal_for, sign_notice};
        let coordinator = crate::keyring::generate_coordinator_key("cert@example.test").unwrap();
        let now = std::time::SystemTime::now();
        let me = crate::header::AddrSpec::parse("cert@example.test").unwrap();
        let notice = Notice {
            thread: CASE,
            subject: "sealed",
            body: &"Details.\n".repeat(50),
            in_reply_to: None,
            automatic: false,
        };
        let batch: Vec<(Inbound, MessageSource)> = (0..6)
            .map(|i| {
                let signed = sign_notice(&notice, &coordinator, &me, now).unwrap();
                let public = coordinator.clone().strip_secret_key_material();
                let sealed = seal_for(&signed, &me, &public, now).unwrap();
                (Inbound::Whole(sealed.bytes), maildir(&format!("{i}")))
            })
            .collect();
        let keyring = Keyring::new(Some(coordinator), Vec::new());
        let rules = rules(Limits::default());
        let opened = |reads: &[Option<Ahead<Read<'_>>>]| {
            reads
                .iter()
                .filter(|r| held_bytes(r.as_ref().map(|a| &a.read)) > 0)
                .count()
        };
        let as_is = |r| (r, 0);
        let all = read_all(
            &batch,
            &keyring,
            &rules,
            rules.limits.max_decoded_bytes,
            &as_is,
        );
        assert_eq!(opened(&all), 6, "every message decrypted ahead");
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let few = read_all(&batch, &keyring, &rules, 1, &as_is);
        assert!(
            (1..=threads.min(6)).contains(&opened(&few)),
            "{} read ahead",
            opened(&few)
        );
        assert!(few.iter().skip(threads).all(Option::is_none));
        drop((all, few));
        // Stored all the same, in order.
        let mut p = Pipeline::new(
            Store::open_in_memory().unwrap(),
            keyring,
            Rules {
                limits: Limits {
                    max_decoded_bytes: 4096,
                    ..Limits::default()
                },
                ..rules
            },
        );
        let done = p.process_batch(batch);
        assert!(done.failure.is_none());
        assert_eq!(done.outcomes.len(), 6);
        assert!(
            done.outcomes.iter().all(|o| o.encrypted),
            "{:?}",
            done.outcomes
        );
    }

    /// An encrypted message from `from` (PGP/MIME, signed inside), to the coordinator.
    fn sealed_mail(coordinator: &sequoia_openpgp::Cert, from: &str, body: &str) -> Vec<u8> {
        use crate::outbox::compose::{Notice, seal_for, sign_notice};
        let now = std::time::SystemTime::now();
        let notice = Notice {
            thread: CASE,
            subject: "status",
            body,
            in_reply_to: None,
            automatic: false,
        };
        let from = crate::header::AddrSpec::parse(from).unwrap();
        let to = crate::header::AddrSpec::parse("cert@example.test").unwrap();
        let signed = sign_notice(&notice, coordinator, &from, now).unwrap();
        let public = coordinator.clone().strip_secret_key_material();
        seal_for(&signed, &to, &public, now).unwrap().bytes
    }

    /// Each message and its decrypted content are parsed by mail-parser once on the ingest
    /// path: `open` hands out its parse of the decrypted entity, and the decision (routing,
    /// the vendor's statement read from the decrypted text, offered keys) reads that.
    #[test]
    fn decrypted_content_is_parsed_once() {
        let coordinator = crate::keyring::generate_coordinator_key("cert@example.test").unwrap();
        let raw = sealed_mail(
            &coordinator,
            "psirt@foocorp.example",
            "Status: not affected\n",
        );
        let keyring = Keyring::new(Some(coordinator), Vec::new());
        let rules = rules(Limits::default());
        let before = message::parses_on_this_thread();
        let read = read_message(&raw, &keyring, &rules);
        let e = decide(
            &raw,
            &crate::intake::sha256_hex(&raw),
            maildir("m"),
            Utc::now(),
            &read,
            &case_facts(false),
            &rules,
        );
        assert_eq!(
            message::parses_on_this_thread() - before,
            2,
            "the message, then its decrypted content"
        );
        assert!(e.outcome.encrypted, "{:?}", e.outcome);
        assert!(matches!(
            e.message.disposition,
            Disposition::Post { thread_id: 7 }
        ));
        // The statement is read from the decrypted text (its parse by `open`).
        assert_eq!(e.message.claims.len(), 1, "{:?}", e.outcome);
        assert_eq!(e.message.claims[0].status.as_deref(), Some("not affected"));

        // The whole path through the store too: gathering, deciding, storing.
        let mut p = Pipeline::new(Store::open_in_memory().unwrap(), keyring, rules);
        let before = message::parses_on_this_thread();
        let o = p.process(&raw, maildir("n")).unwrap();
        assert_eq!(message::parses_on_this_thread() - before, 2, "{o:?}");
        assert!(o.encrypted);
    }

    /// A batch read ahead (owned, on another thread) is stored from those reads, each message
    /// decided inside the transaction in order, with nothing parsed again; one read with keys
    /// that changed since (`read_again`) is read inside the transaction with the keys as they
    /// are.
    #[test]
    fn a_batch_read_ahead_is_stored_from_its_reads_or_read_again() {
        let coordinator = crate::keyring::generate_coordinator_key("cert@example.test").unwrap();
        let sealed = sealed_mail(&coordinator, "psirt@foocorp.example", "Status: affected\n");
        let batch = || {
            whole(vec![
                (sealed.clone(), "a"),
                (report(1), "b"),
                (report(1), "c"),
            ])
        };
        let without_key = std::sync::Arc::new(Keyring::new(None, Vec::new()));
        let with_key = Keyring::new(Some(coordinator), Vec::new());
        let rules = rules(Limits::default());
        for again in [false, true] {
            let mut p = Pipeline::new(
                Store::open_in_memory().unwrap(),
                with_key.clone(),
                rules.clone(),
            );
            let counted = p.by_ref().count_batch(batch());
            assert!(counted.grouped());
            let (keys, r) = (without_key.clone(), rules.clone());
            let mut read = std::thread::spawn(move || read_batch(counted, &keys, &r))
                .join()
                .unwrap();
            if again {
                read.read_again();
            }
            let parses = message::parses_on_this_thread();
            let done = p.by_ref().store_batch(read);
            let parsed_here = message::parses_on_this_thread() - parses;
            assert!(done.failure.is_none());
            let outcomes: Vec<&str> = done.outcomes.iter().map(|o| o.outcome).collect();
            if again {
                // Outer and inner parse of the sealed message, one parse of each report.
                assert_eq!(parsed_here, 4);
                assert_eq!(outcomes, ["triage", "routed", "duplicate"]);
                assert!(done.outcomes[0].encrypted);
            } else {
                assert_eq!(parsed_here, 0, "read ahead, not again");
                assert_eq!(outcomes, ["quarantine", "routed", "duplicate"]);
                assert!(
                    done.outcomes[0]
                        .reason
                        .contains("no coordinator secret key"),
                    "{:?}",
                    done.outcomes[0]
                );
            }
        }
    }

    /// A new report's acknowledgment is only recorded as owed, with the keys its reporter
    /// offered, in the report's transaction: the pipeline composes and queues nothing (the
    /// outbox does, `outbox::ack::queue_owed`).
    #[test]
    fn a_new_report_records_its_acknowledgment_as_owed_and_queues_nothing() {
        use sequoia_openpgp::serialize::SerializeInto;
        let coordinator = crate::keyring::generate_coordinator_key("cert@example.test").unwrap();
        let reporter = crate::keyring::generate_coordinator_key("rita@reporter.example").unwrap();
        let armored = String::from_utf8(reporter.armored().to_vec().unwrap()).unwrap();
        let raw = format!(
            "From: rita@reporter.example\r\nTo: cert@example.test\r\nSubject: a bug\r\n\
Message-ID: <r1@reporter.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
Details\r\n--b\r\nContent-Type: application/pgp-keys\r\n\
Content-Disposition: attachment; filename=\"key.asc\"\r\n\r\n{armored}\r\n--b--\r\n"
        );
        let mut p = Pipeline::new(
            Store::open_in_memory().unwrap(),
            Keyring::new(Some(coordinator), Vec::new()),
            rules(Limits::default()),
        );
        let before = p.store().commits();
        let o = p.process(raw.as_bytes(), maildir("r1")).unwrap();
        assert_eq!(o.outcome, "routed", "{o:?}");
        assert_eq!(o.acknowledgment.as_deref(), Some(ACK_OWED));
        assert_eq!(
            p.store().commits() - before,
            2,
            "the try, then the report with its debt"
        );
        let rows = p
            .store()
            .outbox_rows(&crate::store::outbox::OutboxFilter::default())
            .unwrap();
        assert!(rows.is_empty(), "{rows:?}");
        let owed = p.store().pending_acks().unwrap();
        assert_eq!(owed.len(), 1);
        let keys = p.store().pending_ack_keys(owed[0].0).unwrap().unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].starts_with(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        // A duplicate owes nothing more.
        let again = p.process(raw.as_bytes(), maildir("r1-again")).unwrap();
        assert_eq!(again.outcome, "duplicate");
        assert_eq!(again.acknowledgment, None);
        assert_eq!(p.store().pending_acks().unwrap().len(), 1);
    }

    /// A key the reporter attached inside the encryption is found in `open`'s parse of the
    /// decrypted content (not parsed again) and recorded with the acknowledgment owed.
    #[test]
    fn a_key_offered_inside_the_encryption_is_recorded_with_the_debt() {
        use sequoia_openpgp::serialize::SerializeInto;
        let coordinator = crate::keyring::generate_coordinator_key("cert@example.test").unwrap();
        let reporter = crate::keyring::generate_coordinator_key("rita@reporter.example").unwrap();
        let key = String::from_utf8(reporter.armored().to_vec().unwrap()).unwrap();
        let inner = format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"i\"\r\n\r\n\
--i\r\nContent-Type: text/plain\r\n\r\nDetails\r\n--i\r\nContent-Type: application/pgp-keys\r\n\
Content-Disposition: attachment; filename=\"key.asc\"\r\n\r\n{key}\r\n--i--\r\n"
        );
        let public = coordinator.clone().strip_secret_key_material();
        let sealed = crate::open::tests::encrypt_sign(&public, None, inner.as_bytes());
        let sealed = String::from_utf8_lossy(&sealed).replace('\n', "\r\n");
        let raw = format!(
            "From: rita@reporter.example\r\nTo: cert@example.test\r\nSubject: ...\r\n\
Message-ID: <e1@reporter.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
--b\r\nContent-Type: application/octet-stream\r\n\r\n{sealed}\r\n--b--\r\n"
        );
        let mut p = Pipeline::new(
            Store::open_in_memory().unwrap(),
            Keyring::new(Some(coordinator), Vec::new()),
            rules(Limits::default()),
        );
        let before = message::parses_on_this_thread();
        let o = p.process(raw.as_bytes(), maildir("e1")).unwrap();
        assert_eq!(message::parses_on_this_thread() - before, 2, "{o:?}");
        assert!(o.encrypted, "{o:?}");
        assert_eq!(o.outcome, "routed", "{o:?}");
        assert_eq!(o.acknowledgment.as_deref(), Some(ACK_OWED));
        let owed = p.store().pending_acks().unwrap();
        let keys = p.store().pending_ack_keys(owed[0].0).unwrap().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(
            crate::keyring::parse_certs(&keys[0]).unwrap()[0].fingerprint(),
            reporter.fingerprint()
        );
    }

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(caught(|| 7), Ok(7));
        let e = caught(|| -> u8 { panic!("boom at {}", 3) });
        assert_eq!(e, Err("boom at 3".to_string()));
        let e = caught(|| -> u8 { std::panic::panic_any(42u32) });
        assert_eq!(e, Err("no message".to_string()));
    }

    #[test]
    fn each_limit_quarantines_with_its_own_reason_and_the_next_message_goes_on() {
        let limits = Limits {
            max_nesting_depth: 4,
            max_parts: 6,
            max_headers: 40,
            max_decoded_bytes: 2000,
            ..Limits::default()
        };
        let mut p = pipeline(limits);
        let head = "From: x@evil.example\r\nTo: cert@example.test\r\nSubject: poison\r\n";
        let mut deep = head.to_string();
        for _ in 0..5 {
            deep.push_str("Content-Type: message/rfc822\r\n\r\nFrom: y@evil.example\r\n");
        }
        deep.push_str("\r\nx\r\n");
        let mut many_parts = format!("{head}Content-Type: multipart/mixed; boundary=b\r\n\r\n");
        for i in 0..6 {
            many_parts.push_str(&format!("--b\r\n\r\npart {i}\r\n"));
        }
        many_parts.push_str("--b--\r\n");
        let many_headers = format!("{head}{}\r\nbody\r\n", "X-A: b\r\n".repeat(40));
        let big = format!("{head}\r\n{}\r\n", "y".repeat(3000));
        let ambiguous = format!(
            "{head}Content-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\nhi\r\n"
        );
        for (i, (poison, expected)) in [
            (deep, "limits.max_nesting_depth"),
            (many_parts, "limits.max_parts"),
            (many_headers, "limits.max_headers"),
            (big, "limits.max_decoded_bytes"),
            (ambiguous, "2 Content-Type fields"),
        ]
        .into_iter()
        .enumerate()
        {
            let o = p
                .process(poison.as_bytes(), maildir(&format!("poison{i}")))
                .unwrap();
            assert_eq!(o.outcome, "quarantine", "{expected}: {o:?}");
            assert!(o.reason.contains(expected), "{expected}: {}", o.reason);
            let o = p.process(&report(i), maildir(&format!("good{i}"))).unwrap();
            assert_eq!(o.outcome, "routed", "{o:?}");
        }
        let stored = p.store().quarantined().unwrap();
        assert_eq!(stored.len(), 5);
        // Raw bytes are kept for each.
        for r in &stored {
            assert!(!p.store().raw_message(r.id).unwrap().is_empty());
        }
    }

    /// A message whose tries end without a commit (the process died while reading it) is
    /// counted durably, and given up — stored raw, unread — once it failed max_attempts times.
    #[test]
    fn a_message_that_keeps_killing_casegate_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let poison = report(1);
        for _ in 0..3 {
            // Counted, then the "process" dies before the commit.
            let mut s = Store::open(&path).unwrap();
            s.begin_attempt(&maildir("1.eml").attempt_key().unwrap())
                .unwrap();
        }
        let mut p = pipeline(Limits::default());
        p.store = Store::open(&path).unwrap();
        let o = p.process(&poison, maildir("1.eml")).unwrap();
        assert_eq!(o.outcome, "quarantine");
        assert!(o.reason.contains("given up after 3 tries"), "{}", o.reason);
        assert!(
            o.reason.contains("stopped while reading it"),
            "{}",
            o.reason
        );
        let q = p.store().quarantined().unwrap();
        assert_eq!(p.store().raw_message(q[0].id).unwrap(), poison);
        assert_eq!(q[0].flags, "gave-up");
        // Its count went with the commit; a message that is read fine leaves none behind.
        let key = maildir("1.eml").attempt_key().unwrap();
        assert_eq!(p.store().attempts(&key).unwrap().0, 0);
        let o = p.process(&report(2), maildir("2.eml:2,S")).unwrap();
        assert_eq!(o.outcome, "routed");
        assert_eq!(p.store().attempts("maildir:/m/new/2.eml").unwrap().0, 0);
        // A file that cannot be read is counted with its error, then given up.
        let src = maildir("3.eml");
        for n in 1..=3 {
            assert_eq!(
                p.record_failed_attempt(&src, "Permission denied").unwrap(),
                n
            );
        }
        let (n, last) = p.failed_attempts(&src).unwrap();
        assert_eq!((n, last.as_str()), (3, "Permission denied"));
        let o = p.give_up_unread(src, 1234, n, &last).unwrap();
        assert!(
            o.reason.contains("could not be read 3 times"),
            "{}",
            o.reason
        );
        let q = p.store().quarantined().unwrap();
        assert_eq!(q.last().unwrap().raw_size, Some(1234));
    }

    /// The deepest message the default limits let through, and one 100,000 levels deep, are
    /// read on a 1 MiB stack (tokio's threads have 2 MiB; `serve` gives them 16): recursion is
    /// bounded by the nesting limit, not by the sender.
    #[test]
    fn deep_messages_need_little_stack() {
        let nested = |levels: usize| {
            let mut m = String::from("From: d@evil.example\r\nTo: cert@example.test\r\n");
            let mut closes = Vec::new();
            for i in 0..levels {
                if i % 2 == 0 {
                    m.push_str(&format!(
                        "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
                    ));
                    closes.push(format!("\r\n--b{i}--\r\n"));
                } else {
                    m.push_str("Content-Type: message/rfc822\r\n\r\nFrom: e@evil.example\r\n");
                }
            }
            m.push_str("Content-Type: text/plain\r\n\r\ninnermost");
            closes.iter().rev().for_each(|c| m.push_str(c));
            m.into_bytes()
        };
        let limits = Limits::default();
        let (at_limit, far_past) = (nested(limits.max_nesting_depth), nested(100_000));
        let outcomes = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                let mut p = pipeline(limits);
                [at_limit, far_past].map(|raw| p.process(&raw, maildir("deep")).unwrap())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(outcomes[0].outcome, "routed", "{:?}", outcomes[0]);
        assert_eq!(outcomes[1].outcome, "quarantine");
        assert!(outcomes[1].reason.contains("max_nesting_depth"));
    }

    /// Kept in part, a message cannot be read again; kept whole (it fit in the head), it can.
    #[test]
    fn only_a_message_kept_whole_can_be_retried() {
        let mut p = pipeline(Limits::default());
        let whole = report(7);
        let kept_whole = Partial {
            head: whole.clone(),
            size: whole.len() as u64,
            sha256: Some(crate::intake::sha256_hex(&whole)),
            reason: "over the limit".into(),
        };
        let cut = Partial {
            head: whole[..20].to_vec(),
            size: 10_000_000,
            sha256: Some("cd".repeat(32)),
            reason: "over the limit".into(),
        };
        p.process_partial(&kept_whole, maildir("a")).unwrap();
        p.process_partial(&cut, maildir("b")).unwrap();
        let q = p.store().quarantined().unwrap();
        assert_eq!((q[0].raw_size, q[1].raw_size), (None, Some(10_000_000)));
        let retried = p.by_ref().retry_quarantined(q[0].id).unwrap();
        assert_eq!(retried.outcome, "routed", "{retried:?}");
        let err = p.by_ref().retry_quarantined(q[1].id).unwrap_err();
        assert!(err.to_string().contains("only part of"), "{err}");
    }

    #[test]
    fn an_oversized_message_keeps_its_head_size_and_hash_once() {
        let mut p = pipeline(Limits::default());
        let partial = Partial {
            head: b"From: big@example.net\r\n".to_vec(),
            size: 5_000_000_000,
            sha256: Some("ab".repeat(32)),
            reason: "message is 5000000000 bytes, over the limit".into(),
        };
        let o = p.process_partial(&partial, maildir("big.eml")).unwrap();
        assert_eq!(o.outcome, "quarantine");
        let again = p.process_partial(&partial, maildir("big.eml")).unwrap();
        assert_eq!(again.outcome, "duplicate");
        let q = p.store().quarantined().unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].sha256, "ab".repeat(32));
        assert_eq!(q[0].raw_size, Some(5_000_000_000));
        assert_eq!(q[0].flags, "oversized");
        assert_eq!(p.store().raw_message(q[0].id).unwrap(), partial.head);
    }
}
