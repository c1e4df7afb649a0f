//! Outbound mail: hub-and-spoke notices through a durable outbox.
//!
//! A notice to a thread becomes one copy per participant contact, each encrypted to that
//! contact's own key and signed (once) by the coordinator ([`compose`]); all copies are in the
//! store before [`notify`] returns; the sender task ([`run_sender`], in `casegate serve`)
//! delivers them over SMTP with retries ([`retry`]) and records every attempt.
//!
//! Fail closed: a contact without a usable key gets no case content. Its copy is `held` with
//! the reason (and, when `[outbox] stub_when_no_key` is on, a stub asking for a key is sent);
//! [`release_held`] seals held copies once a key has been imported.
//!
//! Delivery is at-least-once. A sender claims a copy (a lease, `Store::claim_due_copy`) before
//! handing it to SMTP, so two senders on one store never both send it. A copy is marked `sent`
//! only after the SMTP server accepted it. If the sender dies between that acceptance and the
//! commit, the claim expires and the copy is sent again: the same bytes, the same Message-ID,
//! so the recipient's client can drop the duplicate. Copies go out one at a time, so one crash
//! duplicates at most one copy.
//!
//! Just before sending, the key a copy is encrypted to is checked again (again whenever the
//! store's keys generation moves): a copy whose key was revoked or expired since it was sealed
//! goes back to `held` instead of out.

pub mod ack;
pub mod compose;
pub mod relay;
pub mod remind;
pub mod retry;
pub mod send;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use chrono::Utc;
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;

use crate::config::{OutboxConfig, SmtpConfig};
use crate::header::AddrSpec;
use crate::signature_cache;
use crate::store::outbox::{AttemptOutcome, CopyKind, NewCopy, NewNotice};
use crate::store::{Contact, Location, NewAudit, Store, StoreError, Thread};

pub use crate::store::outbox::{AttemptRow, OutboxFilter, OutboxRow};
pub use compose::{ComposeError, Notice};
pub use send::{SendResult, SmtpSender};

/// The start of the reason a copy is held while its recipient's key change waits for review.
pub const KEY_CHANGED: &str = "key changed, not yet accepted";

/// How often the sender looks for copies queued by other processes (`casegate notify`).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Copies tried per round; the loop goes on at once while rounds are full.
const BATCH: usize = 50;

/// Why an outbox operation failed. Held copies are not errors: they are results.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing failed (coordinator key unusable) or a message could not be built.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// The selection names nobody (no such organisation, or a thread without contacts).
    #[error("{0}")]
    NoRecipients(String),
    /// `[smtp]` settings that cannot work (unreadable CA file, username without password, ...).
    #[error("{0}")]
    Config(String),
}

/// Which participants of the thread get the notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every contact of every participant organisation.
    All,
    /// Every contact of one organisation (matched without regard to case).
    Org(String),
    /// Every contact of these organisations (a group).
    Orgs(Vec<String>),
    /// Every contact of every organisation but these — and no address that is a contact of
    /// one of these (a relay never goes back to its sender's organisation).
    AllExcept(Vec<String>),
    /// These contacts of the thread (reminders).
    Addresses(Vec<String>),
}

impl Selection {
    /// `all` or an organisation name, as `--to` takes it.
    pub fn parse(s: &str) -> Selection {
        if s.eq_ignore_ascii_case("all") {
            Selection::All
        } else {
            Selection::Org(s.to_string())
        }
    }
}

/// What became of one recipient's copy, as `notify` and `outbox release` print it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct QueuedCopy {
    /// Outbox row id.
    pub id: i64,
    pub thread: String,
    pub kind: CopyKind,
    pub address: String,
    pub org: String,
    /// `queued` or `held`.
    pub status: String,
    /// Why a copy is held (`no valid encryption key: ...`).
    pub reason: Option<String>,
    /// Primary fingerprint of the recipient certificate the copy is encrypted to.
    pub key_fingerprint: Option<String>,
    pub message_id: Option<String>,
}

impl std::fmt::Display for QueuedCopy {
    /// `vendor@example.test (Vendor A): queued` / `...: held: no valid encryption key: ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.kind == CopyKind::Stub {
            " key-request stub"
        } else {
            ""
        };
        write!(f, "{} ({}){what}: {}", self.address, self.org, self.status)?;
        if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for OutboxRow {
    /// One line of `casegate outbox list`: thread, recipient, status, attempts, key used, the
    /// last SMTP reply, and why it is held or dead.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({}){} {} attempts={} key={}",
            self.thread,
            self.address,
            self.org,
            if self.kind == CopyKind::Stub {
                " stub"
            } else {
                ""
            },
            self.status,
            self.attempts,
            self.key_fingerprint.as_deref().unwrap_or("-"),
        )?;
        if let Some(reply) = &self.last_reply {
            write!(f, " reply={reply:?}")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, " reason={reason:?}")?;
        }
        Ok(())
    }
}

/// Queues `notice` for the selected contacts of `thread`: signs it once with `coordinator`
/// (a TSK with an unlocked signing key), seals one copy per contact address with the
/// contact's bound key (certificates from the store), holds the copies that have no usable
/// key, and commits all of them, with their Message-IDs recorded for reply routing, in one
/// transaction. `from` is the coordinator address. `notice.thread` is ignored: the thread's
/// number is used.
pub fn notify(
    store: &mut Store,
    coordinator: &Cert,
    thread: &Thread,
    recipients: &Selection,
    notice: &Notice<'_>,
    config: &OutboxConfig,
    from: &str,
) -> Result<Vec<QueuedCopy>, OutboxError> {
    notify_audited(
        store,
        coordinator,
        thread,
        recipients,
        notice,
        config,
        from,
        None,
    )
}

/// [`notify`], with an audit record written in the notice's own transaction. The record's
/// detail gets the count of queued and held copies appended.
#[allow(clippy::too_many_arguments)]
pub fn notify_audited(
    store: &mut Store,
    coordinator: &Cert,
    thread: &Thread,
    recipients: &Selection,
    notice: &Notice<'_>,
    config: &OutboxConfig,
    from: &str,
    audit: Option<&NewAudit>,
) -> Result<Vec<QueuedCopy>, OutboxError> {
    notify_with(
        store,
        coordinator,
        thread,
        recipients,
        notice,
        config,
        from,
        &Extras {
            audit,
            ..Extras::default()
        },
    )
}

/// What else a notice's transaction records, so that it holds exactly when the notice is
/// queued.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    /// An audit record (its detail gets the count of queued and held copies appended).
    pub audit: Option<&'a NewAudit>,
    /// The notice relays this stored message to the case discussion: its copies carry the
    /// relay marker, and the relay owed for it is settled (a relay already settled by another
    /// process queues nothing: [`StoreError::Conflict`]).
    pub relay_of: Option<i64>,
    /// Every copy is a reminder: when each contact was reminded is recorded.
    pub reminder: bool,
    /// The notice acknowledges this new report (thread id): the acknowledgment owed to it is
    /// settled (one already settled by another process queues nothing:
    /// [`StoreError::Conflict`]).
    pub ack_of: Option<i64>,
    /// Signature time, key validity and queueing time (None: now). An acknowledgment is
    /// queued as of the time its report was processed, the time its daily limit counts in.
    pub at: Option<chrono::DateTime<Utc>>,
}

/// [`notify`] with [`Extras`].
#[allow(clippy::too_many_arguments)]
pub fn notify_with(
    store: &mut Store,
    coordinator: &Cert,
    thread: &Thread,
    recipients: &Selection,
    notice: &Notice<'_>,
    config: &OutboxConfig,
    from: &str,
    extras: &Extras<'_>,
) -> Result<Vec<QueuedCopy>, OutboxError> {
    let audit = extras.audit;
    let at = extras.at.unwrap_or_else(Utc::now);
    let now = SystemTime::from(at);
    let from_addr = AddrSpec::parse(from).map_err(ComposeError::from)?;
    let contacts = select_contacts(store.contacts(thread.id)?, recipients, thread, from)?;
    let notice = Notice {
        thread: thread.number.as_str(),
        ..notice.clone()
    };
    let mut signed = compose::sign_notice(&notice, coordinator, &from_addr, now)?;
    signed.relay = extras.relay_of.is_some();
    let certs = CertCache::load(store, &contacts, now)?;
    let in_reply_to = signed.in_reply_to.as_ref().map(|id| id.bracketed());
    let record = NewNotice {
        thread_id: thread.id,
        sender: from_addr.as_str(),
        in_reply_to: in_reply_to.as_deref(),
        automatic: signed.automatic,
        date_unix: signed.date,
        signer_fingerprint: &signed.signer_fingerprint,
        inner: signed.inner(),
        relay_of: extras.relay_of,
    };
    let mut writer = store.begin_notice(&record, at)?;

    // Each sealed copy is written as soon as it is ready, while the other cores seal the next
    // ones; nothing is visible until the commit below. Per contact: the queued copy, or why
    // it is held.
    let mut results: Vec<Option<Result<QueuedCopy, String>>> =
        contacts.iter().map(|_| None).collect();
    in_parallel_each(
        &contacts,
        |c| seal_one(&signed, c, &certs, now),
        |i, sealed| {
            let contact = &contacts[i];
            results[i] = Some(match sealed {
                Ok(s) => {
                    let copy = NewCopy::Sealed {
                        kind: CopyKind::Notice,
                        address: &contact.address,
                        org: &contact.org,
                        message_id: &s.message_id,
                        raw: &s.bytes,
                        key_fingerprint: Some(&s.cert_fingerprint),
                    };
                    let id = writer.add(&copy)?;
                    if extras.reminder {
                        writer.record_reminder(contact.org_id, &contact.address, id, Utc::now())?;
                    }
                    Ok(queued_copy(id, thread.number.as_str(), &copy))
                }
                Err(reason) => Err(reason),
            });
            Ok::<(), StoreError>(())
        },
    )?;

    let mut queued = Vec::with_capacity(contacts.len());
    let mut held = Vec::new();
    for (contact, result) in contacts.iter().zip(results) {
        match result {
            Some(Ok(copy)) => queued.push(copy),
            Some(Err(reason)) => held.push((contact, reason)),
            // Every index gets a result unless writing failed, which returned above.
            None => {
                return Err(OutboxError::Store(StoreError::Invalid(
                    "internal: a copy was neither sealed nor held; nothing was queued".into(),
                )));
            }
        }
    }
    for (contact, reason) in &held {
        let copy = NewCopy::Held {
            address: &contact.address,
            org: &contact.org,
            reason,
        };
        let id = writer.add(&copy)?;
        if extras.reminder {
            writer.record_reminder(contact.org_id, &contact.address, id, Utc::now())?;
        }
        queued.push(queued_copy(id, thread.number.as_str(), &copy));
    }
    // Stubs (optional) for the held ones; signed per stub, they are few.
    if config.stub_when_no_key {
        // A stub asks for a key; a contact whose key change waits for review has one.
        for (contact, _) in held.iter().filter(|(_, r)| !r.starts_with(KEY_CHANGED)) {
            // A contact whose address cannot go into a header gets no stub; it stays held.
            let Ok(to) = AddrSpec::parse(&contact.address) else {
                continue;
            };
            let stub = compose::stub_for(&signed.thread, &to, coordinator, &from_addr, true, now)?;
            let copy = NewCopy::Sealed {
                kind: CopyKind::Stub,
                address: &contact.address,
                org: &contact.org,
                message_id: &stub.message_id,
                raw: &stub.bytes,
                key_fingerprint: None,
            };
            let id = writer.add(&copy)?;
            queued.push(queued_copy(id, thread.number.as_str(), &copy));
        }
    }
    if let Some(a) = audit {
        let held = queued.iter().filter(|c| c.status == "held").count();
        writer.record_audit(&NewAudit {
            detail: format!(
                "{}; {} cop(ies) queued, {held} held",
                a.detail,
                queued.len() - held
            ),
            ..a.clone()
        })?;
    }
    if let Some(message_ref) = extras.relay_of {
        writer.settle_relay(message_ref)?;
    }
    if let Some(thread_id) = extras.ack_of {
        writer.settle_ack(thread_id)?;
    }
    writer.commit()?;
    Ok(queued)
}

/// What a notice to `recipients` would do now, per contact: encrypted to which key, or held
/// and why. The same choice of contacts and keys as [`notify`]; nothing is signed, sealed or
/// stored (except self-signature checks remembered, as any key use does).
pub fn preview(
    store: &mut Store,
    thread: &Thread,
    recipients: &Selection,
    config: &OutboxConfig,
    from: &str,
) -> Result<Vec<PlannedCopy>, OutboxError> {
    let now = SystemTime::now();
    let contacts = select_contacts(store.contacts(thread.id)?, recipients, thread, from)?;
    let certs = CertCache::load(store, &contacts, now)?;
    Ok(contacts
        .iter()
        .map(|c| {
            // A key change waiting for review holds the copy, as `notify` would.
            let key = match certs.changed.get(&c.address.to_ascii_lowercase()) {
                Some(why) => Err(why.clone()),
                None => with_first_usable_key(c, &certs, |cert| {
                    compose::check_sealable(&c.address, cert, now)
                        .map(|()| cert.fingerprint().to_hex())
                }),
            };
            let held = key.is_err();
            PlannedCopy {
                address: c.address.clone(),
                org: c.org.clone(),
                status: if held { "held" } else { "encrypted" },
                key_fingerprint: key.as_ref().ok().cloned(),
                reason: key.err(),
                stub: held && config.stub_when_no_key,
            }
        })
        .collect())
}

/// One recipient of a notice not sent yet (see [`preview`]).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PlannedCopy {
    pub address: String,
    pub org: String,
    /// `encrypted` (a copy sealed to `key_fingerprint`) or `held` (kept until a usable key
    /// is bound; `reason` says why).
    pub status: &'static str,
    pub key_fingerprint: Option<String>,
    pub reason: Option<String>,
    /// A held recipient is sent a key-request stub (no case content) instead.
    pub stub: bool,
}

/// Seals the held copies (of one thread, or all) whose contact now has a usable key, and
/// queues them; the others stay held with their current reason. Returns every held copy
/// looked at, with its new status.
pub fn release_held(
    store: &mut Store,
    thread_id: Option<i64>,
) -> Result<Vec<QueuedCopy>, OutboxError> {
    let now = SystemTime::now();
    let held = store.held_copies(thread_id)?;
    let mut contacts_by_thread: HashMap<i64, Vec<Contact>> = HashMap::new();
    for h in &held {
        if let std::collections::hash_map::Entry::Vacant(e) = contacts_by_thread.entry(h.thread_id)
        {
            e.insert(store.contacts(h.thread_id)?);
        }
    }
    let all_contacts: Vec<Contact> = contacts_by_thread.values().flatten().cloned().collect();
    let certs = CertCache::load(store, &all_contacts, now)?;
    let mut out = Vec::with_capacity(held.len());
    for h in held {
        let mut signed = compose::SignedNotice::from_stored(
            h.notice.thread_number.clone(),
            &h.notice.sender,
            h.notice.in_reply_to.as_deref(),
            h.notice.automatic,
            h.notice.date_unix,
            h.notice.signer_fingerprint.clone(),
            h.notice.inner.clone(),
        )?;
        signed.relay = h.notice.relay;
        // The contact's keys as bound now (a key may have been added since the notice).
        let contact = contacts_by_thread
            .get(&h.thread_id)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.address.eq_ignore_ascii_case(&h.address))
            })
            .cloned()
            .unwrap_or_else(|| Contact {
                contact_id: 0,
                participant_id: 0,
                org_id: 0,
                org_contact_id: 0,
                org: h.org.clone(),
                role: String::new(),
                address: h.address.clone(),
                key_fingerprints: Vec::new(),
            });
        let mut copy = QueuedCopy {
            id: h.id,
            thread: h.notice.thread_number.clone(),
            kind: CopyKind::Notice,
            address: h.address.clone(),
            org: h.org.clone(),
            status: "held".into(),
            reason: None,
            key_fingerprint: None,
            message_id: None,
        };
        match seal_one(&signed, &contact, &certs, now) {
            Ok(sealed) => {
                store.release_held_copy(
                    h.id,
                    &sealed.message_id,
                    &sealed.bytes,
                    &sealed.cert_fingerprint,
                    Utc::now(),
                )?;
                copy.status = "queued".into();
                copy.key_fingerprint = Some(sealed.cert_fingerprint);
                copy.message_id = Some(sealed.message_id);
            }
            Err(reason) => {
                store.update_held_reason(h.id, &reason, Utc::now())?;
                copy.reason = Some(reason);
            }
        }
        out.push(copy);
    }
    Ok(out)
}

/// The outbox as `casegate outbox list` shows it.
pub fn list(store: &Store, filter: &OutboxFilter) -> Result<Vec<OutboxRow>, OutboxError> {
    Ok(store.outbox_rows(filter)?)
}

/// What one delivery round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
    /// Copies put back to `held` because their key may no longer be used.
    pub held: usize,
}

impl Round {
    pub fn attempted(&self) -> usize {
        self.sent + self.retrying + self.dead
    }

    /// Copies this round took from the queue.
    pub fn taken(&self) -> usize {
        self.attempted() + self.held
    }
}

/// Whether the key a sealed copy is encrypted to may still be used: decided once per
/// fingerprint, and again whenever the store's keys generation moves (another process
/// imported a revocation, say).
#[derive(Default)]
struct KeyCheck {
    generation: Option<i64>,
    verdicts: HashMap<String, Result<(), String>>,
    /// Addresses whose key change waits for review, with why copies to them are held.
    changed: HashMap<String, String>,
}

impl KeyCheck {
    /// Why a copy to `address` may not go out now: its key changed and nobody accepted the
    /// change yet (reloaded whenever the keys generation moves).
    fn key_change(&mut self, store: &Store, address: &str) -> Result<Option<String>, StoreError> {
        self.sync(store)?;
        Ok(self.changed.get(&address.to_ascii_lowercase()).cloned())
    }

    fn sync(&mut self, store: &Store) -> Result<(), StoreError> {
        let generation = store.keys_generation()?;
        if self.generation != Some(generation) {
            self.verdicts.clear();
            self.changed = pending_changes(store)?;
            self.generation = Some(generation);
        }
        Ok(())
    }

    fn check(
        &mut self,
        store: &Store,
        fingerprint: &str,
    ) -> Result<Result<(), String>, StoreError> {
        self.sync(store)?;
        if let Some(v) = self.verdicts.get(fingerprint) {
            return Ok(v.clone());
        }
        let verdict = match store.cert(fingerprint)? {
            None => Err(format!("key {fingerprint} is no longer stored")),
            Some(stored) => match Cert::from_bytes(&stored.public_cert) {
                Ok(cert) => crate::keyring::encryption_key_valid(&cert),
                Err(e) => Err(format!("stored key {fingerprint} cannot be read: {e}")),
            },
        };
        self.verdicts
            .insert(fingerprint.to_string(), verdict.clone());
        Ok(verdict)
    }
}

/// One delivery round: claims and tries copies due now (up to a batch), one at a time, one
/// SMTP transaction each, and records each attempt before claiming the next. Stops early when
/// `shutdown` turns true, after the copy in hand.
pub async fn deliver_due(
    store: &mut Store,
    sender: &SmtpSender,
    config: &OutboxConfig,
    shutdown: Option<&tokio::sync::watch::Receiver<bool>>,
) -> Result<Round, OutboxError> {
    let mut round = Round::default();
    let mut keys = KeyCheck::default();
    // A sender on this host that died holding a claim: its copy need not wait for the lease.
    store.release_dead_claims(Utc::now(), send::owner_is_dead)?;
    while round.taken() < BATCH {
        if shutdown.is_some_and(|s| *s.borrow()) {
            break;
        }
        let Some(copy) = store.claim_due_copy(sender.owner(), Utc::now(), sender.lease())? else {
            break;
        };
        if let Some(reason) = keys.key_change(store, &copy.address)? {
            tracing::warn!(address = %copy.address, message_id = %copy.message_id, %reason, "outbox: not sent");
            store.hold_claimed_copy(copy.id, sender.owner(), &reason, Utc::now())?;
            round.held += 1;
            continue;
        }
        if let Some(fpr) = &copy.key_fingerprint
            && let Err(why) = keys.check(store, fpr)?
        {
            let reason = format!(
                "no valid encryption key: {why} (since the copy was sealed); held until a valid key is bound"
            );
            tracing::warn!(address = %copy.address, message_id = %copy.message_id, %reason, "outbox: not sent");
            store.hold_claimed_copy(copy.id, sender.owner(), &reason, Utc::now())?;
            round.held += 1;
            continue;
        }
        let result = sender.send(&copy.sender, &copy.address, &copy.raw).await;
        let now = Utc::now();
        let attempts = u32::try_from(copy.attempts + 1).unwrap_or(u32::MAX);
        let (outcome, reply) = match result {
            SendResult::Accepted(reply) => {
                round.sent += 1;
                tracing::info!(address = %copy.address, message_id = %copy.message_id, %reply, "outbox: sent");
                (AttemptOutcome::Accepted, reply)
            }
            SendResult::Permanent(reply) => {
                round.dead += 1;
                tracing::warn!(address = %copy.address, message_id = %copy.message_id, %reply, "outbox: rejected, dead");
                (
                    AttemptOutcome::Dead {
                        reason: format!("rejected: {reply}"),
                    },
                    reply,
                )
            }
            SendResult::Temporary(reply) => {
                let jitter: f64 = rand::random();
                match retry::next_attempt(config, copy.created_at, attempts, now, jitter) {
                    retry::Retry::At(at) => {
                        round.retrying += 1;
                        tracing::info!(address = %copy.address, %reply, next = %at, "outbox: temporary failure, will retry");
                        (
                            AttemptOutcome::Retry {
                                next_attempt_at: at,
                            },
                            reply,
                        )
                    }
                    retry::Retry::GiveUp => {
                        round.dead += 1;
                        tracing::warn!(address = %copy.address, %reply, "outbox: gave up");
                        (
                            AttemptOutcome::GiveUp {
                                reason: format!(
                                    "gave up after {attempts} attempts over {} h: {reply}",
                                    config.max_age_hours
                                ),
                            },
                            reply,
                        )
                    }
                }
            }
        };
        store.record_attempt(copy.id, sender.owner(), now, &outcome, &reply)?;
    }
    Ok(round)
}

/// The delivery loop of `casegate serve`: delivers due copies until `shutdown` turns true
/// (finishing the copy in hand), looking for new ones every second. Build it inside the tokio
/// runtime (`tokio::spawn(run_sender(...))`). Store errors are logged and retried, so a
/// briefly locked database does not stop delivery; bad `[smtp]` settings fail at once.
pub async fn run_sender(
    location: Location,
    smtp: SmtpConfig,
    config: OutboxConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), OutboxError> {
    let sender = SmtpSender::new(&smtp)?;
    let mut opened: Option<Store> = None;
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        // (Re)open the store: a database that is unreachable now is tried again next round.
        let store = match &mut opened {
            Some(s) => s,
            None => match Store::open_at(&location) {
                Ok(s) => opened.insert(s),
                Err(e) => {
                    tracing::error!(error = %e, "outbox: cannot open the store; retrying");
                    tokio::select! {
                        _ = shutdown.changed() => {}
                        _ = tokio::time::sleep(POLL_INTERVAL) => {}
                    }
                    continue;
                }
            },
        };
        let wait = match deliver_due(store, &sender, &config, Some(&shutdown)).await {
            Ok(round) if round.taken() >= BATCH => Duration::ZERO,
            Ok(_) => until_next_due(store),
            Err(e) => {
                tracing::error!(error = %e, "outbox: delivery round failed; retrying");
                POLL_INTERVAL
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return Ok(()); // the daemon dropped its side: nobody can stop us later
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sleep until the next retry is due, but look again within [`POLL_INTERVAL`] for new copies.
fn until_next_due(store: &Store) -> Duration {
    match store.next_due_at() {
        Ok(Some(at)) => (at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(50), POLL_INTERVAL),
        _ => POLL_INTERVAL,
    }
}

// ----- helpers -----

fn select_contacts(
    contacts: Vec<Contact>,
    selection: &Selection,
    thread: &Thread,
    from: &str,
) -> Result<Vec<Contact>, OutboxError> {
    let mut seen = HashSet::new();
    let named = |org: &str, names: &[String]| names.iter().any(|n| n.eq_ignore_ascii_case(org));
    // A relay never reaches an address of the sender's organisation, even as another's.
    let excluded: HashSet<String> = match selection {
        Selection::AllExcept(orgs) => contacts
            .iter()
            .filter(|c| named(&c.org, orgs))
            .map(|c| c.address.to_ascii_lowercase())
            .collect(),
        _ => HashSet::new(),
    };
    let chosen: Vec<Contact> = contacts
        .into_iter()
        .filter(|c| match selection {
            Selection::All => true,
            Selection::Org(org) => c.org.eq_ignore_ascii_case(org),
            Selection::Orgs(orgs) => named(&c.org, orgs),
            Selection::AllExcept(_) => !excluded.contains(&c.address.to_ascii_lowercase()),
            Selection::Addresses(a) => a.iter().any(|a| a.eq_ignore_ascii_case(&c.address)),
        })
        // Never to ourselves, and one copy per address even if it is a contact of two orgs.
        .filter(|c| !c.address.eq_ignore_ascii_case(from))
        .filter(|c| seen.insert(c.address.to_ascii_lowercase()))
        .collect();
    if chosen.is_empty() {
        return Err(OutboxError::NoRecipients(match selection {
            Selection::All => format!(
                "{} has no participant contacts; add them with `casegate participant add {} --org ORG --email ADDR --key FILE.asc`",
                thread.number, thread.number
            ),
            Selection::Org(org) => format!(
                "{} has no contacts of organisation {org:?}; see `casegate show {}`",
                thread.number, thread.number
            ),
            Selection::Orgs(orgs) => format!(
                "{} has no contacts of {}; add some with `casegate org contact add ORG ADDR`",
                thread.number,
                orgs.join(", ")
            ),
            Selection::AllExcept(orgs) => format!(
                "{} has no participant contacts besides those of {}",
                thread.number,
                orgs.join(", ")
            ),
            Selection::Addresses(a) => {
                format!("none of {} is a contact of {}", a.join(", "), thread.number)
            }
        }));
    }
    Ok(chosen)
}

/// Recipient certificates by fingerprint, parsed once, and the addresses whose key change
/// waits for review.
struct CertCache {
    certs: HashMap<String, Result<Cert, String>>,
    changed: HashMap<String, String>,
}

/// Addresses with a key change waiting for review → why copies to them are held.
fn pending_changes(store: &Store) -> Result<HashMap<String, String>, StoreError> {
    Ok(store
        .key_changes(true)?
        .into_iter()
        .filter(|c| c.status == "pending")
        .map(|c| {
            let reason = format!(
                "{KEY_CHANGED}: {} offered key {} ({}, {}); see `casegate key changes`, then `casegate key accept {} {}`",
                c.address, c.fingerprint, c.source, c.detected_at, c.address, c.fingerprint
            );
            (c.address, reason)
        })
        .collect())
}

impl CertCache {
    /// Parses and validates the contacts' certificates. Their self-signatures are checked with
    /// the verifications the store remembers (see `signature_cache.rs`); new ones are saved.
    fn load(
        store: &mut Store,
        contacts: &[Contact],
        now: SystemTime,
    ) -> Result<CertCache, StoreError> {
        let wanted: HashSet<String> = contacts
            .iter()
            .flat_map(|c| c.key_fingerprints.iter().map(|f| f.to_ascii_uppercase()))
            .collect();
        let mut stored = Vec::with_capacity(wanted.len());
        if !wanted.is_empty() {
            for c in store.certs()? {
                let fpr = c.fingerprint.to_ascii_uppercase();
                if wanted.contains(&fpr) {
                    stored.push((fpr, c.public_cert));
                }
            }
        }
        let changed = pending_changes(store)?;
        if stored.is_empty() {
            return Ok(CertCache {
                certs: HashMap::new(),
                changed,
            });
        }
        signature_cache::restore(store)?;
        let before = signature_cache::snapshot();
        // Parsing and checking self-signatures are a noticeable share of a large fan-out:
        // spread them like the sealing.
        let parsed = in_parallel(&stored, |(fpr, bytes)| {
            let cert = Cert::from_bytes(bytes)
                .map_err(|e| format!("stored key {fpr} cannot be read: {e}"));
            if let Ok(cert) = &cert {
                compose::check_self_signatures(cert, now);
            }
            (fpr.clone(), cert)
        });
        signature_cache::save_since(store, &before)?;
        Ok(CertCache {
            certs: parsed.into_iter().collect(),
            changed,
        })
    }
}

/// `f` over `items` on up to all cores (in chunks of at least 16), results in order.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut out: Vec<Option<R>> = items.iter().map(|_| None).collect();
    let done = in_parallel_each(items, f, |i, r| {
        out[i] = Some(r);
        Ok::<(), std::convert::Infallible>(())
    });
    match done {
        Ok(()) => out.into_iter().flatten().collect(),
        Err(never) => match never {},
    }
}

/// `f` over `items` on up to all cores (in chunks of at least 16); `each(index, result)` runs
/// on the calling thread as results arrive, so it can write one while the next are computed.
/// The first error of `each` stops the workers and is returned.
fn in_parallel_each<T: Sync, R: Send, E>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
    mut each: impl FnMut(usize, R) -> Result<(), E>,
) -> Result<(), E> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().div_ceil(16).max(1));
    if workers <= 1 {
        return items
            .iter()
            .enumerate()
            .try_for_each(|(i, t)| each(i, f(t)));
    }
    let chunk = items.len().div_ceil(workers);
    let f = &f;
    std::thread::scope(|scope| {
        // Bounded: a slow writer holds the workers back instead of piling up copies in memory.
        let (send, receive) = std::sync::mpsc::sync_channel::<(usize, R)>(64);
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(k, part)| {
                let send = send.clone();
                scope.spawn(move || {
                    for (j, t) in part.iter().enumerate() {
                        // The receiver is gone only when `each` failed: stop.
                        if send.send((k * chunk + j, f(t))).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        drop(send);
        let mut result = Ok(());
        for (i, r) in receive.iter() {
            if let Err(e) = each(i, r) {
                result = Err(e);
                break;
            }
        }
        drop(receive);
        for h in handles {
            // A panic in a worker is a bug; re-raise it rather than lose results silently.
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
        result
    })
}

/// Seals with the newest bound key that works; the error says why none did.
fn seal_one(
    signed: &compose::SignedNotice,
    contact: &Contact,
    certs: &CertCache,
    now: SystemTime,
) -> Result<compose::Sealed, String> {
    let to = AddrSpec::parse(&contact.address).map_err(|e| format!("not sent: {e}"))?;
    if let Some(why) = certs.changed.get(&contact.address.to_ascii_lowercase()) {
        return Err(why.clone());
    }
    with_first_usable_key(contact, certs, |cert| {
        compose::seal_for(signed, &to, cert, now)
    })
}

/// `f` with the contact's keys, the most recently bound first, until one works; else why
/// none did (`no valid encryption key: ...`, the reason a held copy carries).
fn with_first_usable_key<T>(
    contact: &Contact,
    certs: &CertCache,
    mut f: impl FnMut(&Cert) -> Result<T, ComposeError>,
) -> Result<T, String> {
    if contact.key_fingerprints.is_empty() {
        return Err("no valid encryption key: no key bound to this contact".into());
    }
    let mut reasons = Vec::new();
    for fpr in contact.key_fingerprints.iter().rev() {
        let fpr = fpr.to_ascii_uppercase();
        match certs.certs.get(&fpr) {
            None => reasons.push(format!("key {fpr} is not imported")),
            Some(Err(e)) => reasons.push(e.clone()),
            Some(Ok(cert)) => match f(cert) {
                Ok(s) => return Ok(s),
                Err(ComposeError::NoValidKey(r)) => reasons.push(format!("key {fpr}: {r}")),
                Err(e) => reasons.push(e.to_string()),
            },
        }
    }
    Err(format!("no valid encryption key: {}", reasons.join("; ")))
}

fn queued_copy(id: i64, thread: &str, copy: &NewCopy<'_>) -> QueuedCopy {
    match copy {
        NewCopy::Sealed {
            kind,
            address,
            org,
            message_id,
            key_fingerprint,
            ..
        } => QueuedCopy {
            id,
            thread: thread.to_string(),
            kind: *kind,
            address: address.to_string(),
            org: org.to_string(),
            status: "queued".into(),
            reason: None,
            key_fingerprint: key_fingerprint.map(str::to_string),
            message_id: Some(message_id.to_string()),
        },
        NewCopy::Held {
            address,
            org,
            reason,
        } => QueuedCopy {
            id,
            thread: thread.to_string(),
            kind: CopyKind::Notice,
            address: address.to_string(),
            org: org.to_string(),
            status: "held".into(),
            reason: Some(reason.to_string()),
            key_fingerprint: None,
            message_id: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{in_parallel, in_parallel_each};

    #[test]
    fn parallel_results_keep_their_index() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            in_parallel(&items, |x| x * 2),
            (0..1000).map(|x| x * 2).collect::<Vec<_>>()
        );
        let mut seen = vec![false; items.len()];
        in_parallel_each(
            &items,
            |x| *x as usize,
            |i, x| {
                assert_eq!(i, x);
                seen[i] = true;
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert!(seen.iter().all(|s| *s));
        assert!(in_parallel(&[] as &[u32], |x| *x).is_empty());
    }

    #[test]
    fn the_first_write_error_stops_and_is_returned() {
        let items: Vec<u32> = (0..1000).collect();
        let mut written = 0;
        let r = in_parallel_each(
            &items,
            |x| *x,
            |_, _| {
                written += 1;
                if written == 10 {
                    Err("disk full")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r, Err("disk full"));
        assert_eq!(written, 10);
    }
}
