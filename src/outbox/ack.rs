//! Acknowledgments of new reports: the reporter learns the report's number and how to write
//! back. Encrypted to the reporter's key when we have one; otherwise a signed plaintext that
//! names the number and nothing of the report's content. Never more than the configured number
//! per sender per UTC day, and always marked `Auto-Submitted: auto-generated` (RFC 3834) so
//! auto-responders do not answer it.
//!
//! The inbound pipeline never composes one: it records in the report's own transaction that
//! an acknowledgment is owed (`pending_acks`, with the keys the reporter offered), and
//! [`queue_owed`] composes, seals and queues it, settling the debt in the same transaction as
//! the copy — so a crash in between queues it later, and two processes paying the same debt
//! queue it once.

use std::collections::HashMap;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;

use super::compose::{self, ComposeError, Notice, PlainSigner, PlainText};
use super::{Extras, OutboxError, QueuedCopy, Selection};
use crate::config::OutboxConfig;
use crate::header::{AddrSpec, HeaderText, MessageId};
use crate::keyring::Keyring;
use crate::store::outbox::{CopyKind, NewCopy, NewNotice};
use crate::store::{Contact, Store, StoreError, Thread};
use crate::tracking::TrackingNumber;

/// What became of an acknowledgment.
#[derive(Debug, Clone)]
pub enum Acknowledged {
    Queued(QueuedCopy),
    /// The sender already got `limit` acknowledgments today.
    Limited {
        limit: u32,
    },
}

fn body(number: &str, from: &str, encrypted: bool) -> String {
    let how = if encrypted {
        "This message is encrypted to your OpenPGP key and signed with our coordinator key."
    } else {
        "This acknowledgment is not encrypted, so it says nothing about the content of your \
         report. To write to us encrypted, use our OpenPGP key, attached to this message; to \
         receive encrypted mail from us, attach your own public key to your reply."
    };
    format!(
        "Hello,\r\n\r\nthank you for your report. We have received it and given it the tracking \
         number {number}.\r\n\r\nPlease keep {number} in the subject of every message about \
         this report, so that it reaches the right people; replying to this message does that.\
         \r\n\r\n{how}\r\n\r\n-- \r\n{from}\r\n"
    )
}

/// Whether any key bound to the contact can be encrypted to now.
fn has_valid_key(store: &Store, contact: &Contact) -> Result<bool, OutboxError> {
    for fpr in &contact.key_fingerprints {
        if let Some(stored) = store.cert(fpr)?
            && let Ok(cert) = Cert::from_bytes(&stored.public_cert)
            && crate::keyring::encryption_key_valid(&cert).is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Who acknowledges, and how often at most.
pub struct AckPolicy<'a> {
    /// The coordinator's address (`From:`).
    pub from: &'a str,
    pub outbox: &'a OutboxConfig,
    pub limit_per_day: u32,
}

/// Queues the acknowledgment of a new report to its reporter, as of `now` (which UTC day the
/// limit counts, and when the copy was queued). Settles no debt: see [`queue_owed`].
pub fn acknowledge(
    store: &mut Store,
    coordinator: &Cert,
    report: &Thread,
    reporter: &Contact,
    in_reply_to: Option<&str>,
    policy: &AckPolicy<'_>,
    now: DateTime<Utc>,
) -> Result<Acknowledged, OutboxError> {
    acknowledge_settling(
        store,
        coordinator,
        report,
        reporter,
        in_reply_to,
        policy,
        now,
        false,
        None,
    )
}

/// [`acknowledge`]; with `settle`, the debt `pending_acks` holds for the report is removed in
/// the copy's own transaction ([`StoreError::Conflict`] and nothing queued when it is not
/// owed any more).
#[allow(clippy::too_many_arguments)]
fn acknowledge_settling(
    store: &mut Store,
    coordinator: &Cert,
    report: &Thread,
    reporter: &Contact,
    in_reply_to: Option<&str>,
    policy: &AckPolicy<'_>,
    now: DateTime<Utc>,
    settle: bool,
    precomposed: Option<Precomposed>,
) -> Result<Acknowledged, OutboxError> {
    let ack_of = settle.then_some(report.id);
    let (from, config, limit_per_day) = (policy.from, policy.outbox, policy.limit_per_day);
    // The reporter's Message-ID answers only if it is one; otherwise it is left out.
    let in_reply_to = in_reply_to.and_then(|id| MessageId::parse(id).ok());
    let to = AddrSpec::parse(&reporter.address).map_err(ComposeError::from)?;
    let from_addr = AddrSpec::parse(from).map_err(ComposeError::from)?;
    let midnight = now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc();
    if store.automatic_copies_since(&reporter.address, midnight)? >= i64::from(limit_per_day) {
        return Ok(Acknowledged::Limited {
            limit: limit_per_day,
        });
    }
    let number = report.number.as_str();
    if has_valid_key(store, reporter)? {
        let text = body(number, from, true);
        let copies = super::notify_with(
            store,
            coordinator,
            report,
            &Selection::Org(reporter.org.clone()),
            &Notice {
                thread: number,
                subject: &format!("{number}: report received"),
                body: &text,
                in_reply_to: in_reply_to.as_ref(),
                automatic: true,
            },
            config,
            from,
            &Extras {
                at: Some(now),
                ack_of,
                ..Extras::default()
            },
        )?;
        if let Some(copy) = copies.into_iter().find(|c| c.address == reporter.address) {
            return Ok(Acknowledged::Queued(copy));
        }
    }
    let plain = match precomposed {
        // Composed ahead for this reporter, from the same report and message, as of `now`.
        Some(p) if p.to == reporter.address => p.stub,
        _ => plain_ack(
            number,
            policy.from,
            &to,
            in_reply_to.as_ref(),
            &PlainSigner::new(coordinator)?,
            &from_addr,
            now,
        )?,
    };
    let fingerprint = coordinator.fingerprint().to_hex();
    let in_reply_to = in_reply_to.map(|id| id.bracketed());
    let record = NewNotice {
        thread_id: report.id,
        sender: from_addr.as_str(),
        in_reply_to: in_reply_to.as_deref(),
        automatic: true,
        date_unix: now.timestamp(),
        signer_fingerprint: &fingerprint,
        inner: &plain.bytes,
        relay_of: None,
    };
    let copy = NewCopy::Sealed {
        kind: CopyKind::Stub,
        address: &reporter.address,
        org: &reporter.org,
        message_id: &plain.message_id,
        raw: &plain.bytes,
        key_fingerprint: None,
    };
    let mut writer = store.begin_notice(&record, now)?;
    let id = writer.add(&copy)?;
    if let Some(thread_id) = ack_of {
        writer.settle_ack(thread_id)?;
    }
    writer.commit()?;
    Ok(Acknowledged::Queued(super::queued_copy(id, number, &copy)))
}

/// What [`queue_owed`] says of an acknowledgment that cannot go out yet for want of a key.
pub const NO_COORDINATOR_KEY: &str = "not sent yet: no coordinator key (run `casegate init`)";

/// What became of one owed acknowledgment ([`queue_owed`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OwedAck {
    pub report: TrackingNumber,
    #[serde(skip)]
    pub thread_id: i64,
    /// For a person: queued (encrypted to which key, or not), not sent (why), or not yet.
    pub result: String,
    /// It stays owed (no coordinator key, or the store failed): tried again later.
    pub owed: bool,
}

/// Composes, seals and queues every acknowledgment owed (oldest first), each atomically with
/// the removal of its debt (a savepoint of a transaction that settles several); what became
/// of each. Kept owed while there is
/// no coordinator key (after `casegate init` the next call sends them) or when the store
/// fails; dropped with the reason when it can never be sent (no sender address, the limit
/// per sender and day reached, a message that cannot be built) and when another process
/// queued it first.
///
/// The keys the reporter offered with the report (attached, Autocrypt; recorded with the
/// debt) are bound to the reporter first — trust on first use, for a reporter we have never
/// seen; for an address that already has a key elsewhere a different one waits for an
/// analyst — so the acknowledgment is encrypted to one of them when it can be. They are
/// parsed here, under `catch_unwind`: a panic on a sender's key costs that acknowledgment
/// only.
pub fn queue_owed(
    store: &mut Store,
    keyring: &Keyring,
    policy: &AckPolicy<'_>,
) -> Result<Vec<OwedAck>, OutboxError> {
    // Settled without a disk flush of their own: a power cut can only bring a debt back with
    // its copy (settled again later), and the copy is claimed by an ordinary commit, which
    // flushes this one, before it is sent.
    store.flushed_by_the_next_commit(|store| {
        let owed = store.oldest_pending_acks(ACKS_PER_ROUND)?;
        // On SQLite several debts share a transaction, whose commit writes their pages once
        // (each debt's writes are savepoints in it: a failure undoes that one only). On
        // PostgreSQL a failed statement dooms its whole transaction and instances race to
        // settle the same debts: one transaction each, as a failure there must cost one debt.
        let per_transaction = match store.backend() {
            crate::store::Backend::Sqlite => ACKS_PER_TRANSACTION,
            crate::store::Backend::Postgres => 1,
        };
        let mut done = Vec::with_capacity(owed.len());
        for chunk in owed.chunks(per_transaction) {
            let now = Utc::now();
            let mut ahead = match keyring.coordinator() {
                Some(c) if chunk.len() > 1 => precompose(store, c, chunk, policy, now),
                _ => HashMap::new(),
            };
            let mut settle = |s: &mut Store| {
                chunk
                    .iter()
                    .filter_map(|&(thread_id, message_ref)| {
                        let composed = ahead.remove(&thread_id);
                        settle_one(s, keyring, policy, (thread_id, message_ref), composed, now)
                    })
                    .collect::<Vec<_>>()
            };
            done.extend(if per_transaction > 1 {
                store.atomically(|s| Ok::<_, StoreError>(settle(s)))?
            } else {
                settle(store)
            });
        }
        Ok(done)
    })?
}

/// Owed acknowledgments settled in one call at most: a flood of new reports is worked off in
/// rounds (the daemon's next comes within a second), not in one pass of unbounded length.
const ACKS_PER_ROUND: i64 = 500;

/// Debts settled in one transaction: the write lock is held for a few milliseconds at a time.
const ACKS_PER_TRANSACTION: usize = 50;

/// One owed acknowledgment: queued, forgotten, or kept owed; `None` when the report cannot be
/// read (the store failed: it stays owed).
fn settle_one(
    store: &mut Store,
    keyring: &Keyring,
    policy: &AckPolicy<'_>,
    (thread_id, message_ref): (i64, i64),
    composed: Option<Precomposed>,
    now: DateTime<Utc>,
) -> Option<OwedAck> {
    let report = match store.thread_by_id(thread_id) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(thread_id, error = %e, "owed acknowledgment: report not read; it stays owed");
            return None;
        }
    };
    let mut owed = OwedAck {
        report: report.number.clone(),
        thread_id,
        result: String::new(),
        owed: true,
    };
    let Some(coordinator) = keyring.coordinator() else {
        owed.result = NO_COORDINATOR_KEY.into();
        return Some(owed);
    };
    match pay_one(
        store,
        keyring,
        coordinator,
        &report,
        message_ref,
        policy,
        composed,
        now,
    ) {
        Paid::Settled(what) => {
            owed.owed = false;
            owed.result = what;
        }
        Paid::Impossible(why) => {
            // Never possible: forget it (another process may have, too).
            if let Err(e) = store.clear_pending_ack(thread_id) {
                tracing::warn!(report = %report.number, error = %e, "could not forget an acknowledgment that cannot be sent; tried again later");
            } else {
                owed.owed = false;
            }
            owed.result = format!("not sent: {why}");
        }
        Paid::Kept(why) => owed.result = format!("not sent yet: {why}; it stays owed"),
    }
    tracing::info!(report = %report.number, acknowledgment = %owed.result, "owed acknowledgment handled");
    Some(owed)
}

/// The acknowledgment of report `number` for a reporter without a key: plaintext, naming only
/// the number, signed by the coordinator, with its public key attached.
fn plain_ack(
    number: &str,
    from: &str,
    to: &AddrSpec,
    in_reply_to: Option<&MessageId>,
    signer: &PlainSigner<'_>,
    from_addr: &AddrSpec,
    now: DateTime<Utc>,
) -> Result<compose::Stub, ComposeError> {
    compose::plain_for(
        &PlainText {
            recipient_addr: to,
            subject: &HeaderText::new(&format!("[{number}] Report received")),
            body: &body(number, from, false),
            in_reply_to,
            automatic: true,
        },
        signer,
        from_addr,
        SystemTime::from(now),
    )
}

/// A plaintext acknowledgment composed and signed ahead of its debt's turn, and whom it is to.
struct Precomposed {
    to: String,
    stub: compose::Stub,
}

/// Composes and signs, on every core, the plaintext acknowledgment each debt of `chunk` would
/// get, as of `now`: most new reports come from people without a key. Signing is what costs
/// (sequoia reseeds its random generator for every signature), and the transaction that
/// settles the debts then only writes. A debt that turns out otherwise (the reporter has a key,
/// the limit is reached) wastes its copy; one that cannot be read here is composed in its turn.
fn precompose(
    store: &Store,
    coordinator: &Cert,
    chunk: &[(i64, i64)],
    policy: &AckPolicy<'_>,
    now: DateTime<Utc>,
) -> HashMap<i64, Precomposed> {
    let Ok(from_addr) = AddrSpec::parse(policy.from) else {
        return HashMap::new();
    };
    let Ok(signer) = PlainSigner::new(coordinator) else {
        return HashMap::new();
    };
    let jobs: Vec<(i64, String, AddrSpec, String, Option<MessageId>)> = chunk
        .iter()
        .filter_map(|&(thread_id, message_ref)| {
            let number = store.thread_by_id(thread_id).ok()?.number;
            let record = store.message_record(message_ref).ok()?;
            let sender = record.sender?;
            let to = AddrSpec::parse(&sender).ok()?;
            let in_reply_to = record.message_id.and_then(|id| MessageId::parse(&id).ok());
            Some((
                thread_id,
                sender,
                to,
                number.as_str().to_string(),
                in_reply_to,
            ))
        })
        .collect();
    let compose_one = |(thread_id, sender, to, number, in_reply_to): &(
        i64,
        String,
        AddrSpec,
        String,
        Option<MessageId>,
    )| {
        let stub = caught(|| {
            plain_ack(
                number,
                policy.from,
                to,
                in_reply_to.as_ref(),
                &signer,
                &from_addr,
                now,
            )
        });
        match stub {
            Ok(Ok(stub)) => Some((
                *thread_id,
                Precomposed {
                    to: sender.clone(),
                    stub,
                },
            )),
            _ => None,
        }
    };
    super::in_parallel(&jobs, compose_one)
        .into_iter()
        .flatten()
        .collect()
}

/// What became of one debt ([`pay_one`]).
enum Paid {
    /// Queued (by us or by another process): the debt is gone with it.
    Settled(String),
    /// Can never be sent: the debt is to be dropped.
    Impossible(String),
    /// Not now (the store failed): the debt stays.
    Kept(String),
}

#[allow(clippy::too_many_arguments)]
fn pay_one(
    store: &mut Store,
    keyring: &Keyring,
    coordinator: &Cert,
    report: &Thread,
    message_ref: i64,
    policy: &AckPolicy<'_>,
    composed: Option<Precomposed>,
    now: DateTime<Utc>,
) -> Paid {
    let kept = |e: &dyn std::fmt::Display| Paid::Kept(e.to_string());
    let record = match store.message_record(message_ref) {
        Ok(r) => r,
        Err(e) => return kept(&e),
    };
    let Some(sender) = record.sender.clone() else {
        return Paid::Impossible("no sender address".into());
    };
    let offered = match store.pending_ack_keys(report.id) {
        Ok(Some(keys)) => keys,
        // Owed since before the keys were recorded with the debt: read them from the message.
        Ok(None) => match store.raw_message(message_ref) {
            Ok(raw) => offered_keys_in(&raw, keyring),
            Err(e) => return kept(&e),
        },
        Err(e) => return kept(&e),
    };
    // The sender's keys are parsed here: a panic costs the acknowledgment, not the caller.
    let Ok(mut certs) = caught(|| {
        #[cfg(test)]
        if offered.iter().any(|k| k == tests::PANIC_ON_PARSE) {
            panic!("a key that sequoia cannot take");
        }
        offered
            .iter()
            .flat_map(|bytes| crate::keyring::parse_certs(bytes).unwrap_or_default())
            .collect::<Vec<Cert>>()
    }) else {
        return Paid::Impossible("internal error while reading the keys it offered".into());
    };
    let stored = match store.certs_naming(&sender) {
        Ok(s) => s,
        Err(e) => return kept(&e),
    };
    for s in stored {
        if s.user_ids.iter().any(|u| {
            u.to_lowercase().contains(&format!("<{sender}>")) || u.eq_ignore_ascii_case(&sender)
        }) && let Ok(c) = Cert::from_bytes(&s.public_cert)
        {
            certs.push(c);
        }
    }
    if !certs.is_empty() {
        // In one transaction that a panic rolls back (and on PostgreSQL may run again).
        let bound = caught(|| {
            store.atomically(|s| {
                crate::trust::keys::offer(
                    s,
                    &sender,
                    &certs,
                    crate::trust::keys::Source::FirstUse,
                    crate::trust::keys::BindTo::Thread(report.id),
                    now,
                )
            })
        });
        match bound {
            Ok(Ok(_)) => {}
            Ok(Err(crate::keyring::KeyringError::Store(e))) => return kept(&e),
            Ok(Err(e)) => return Paid::Impossible(e.to_string()),
            Err(_) => {
                return Paid::Impossible("internal error while reading the keys it offered".into());
            }
        }
    }
    let reporter = match store.contacts(report.id) {
        Ok(contacts) => contacts.into_iter().find(|c| c.address == sender),
        Err(e) => return kept(&e),
    };
    let Some(reporter) = reporter else {
        return Paid::Impossible("the reporter is not a contact of the new report".into());
    };
    let queued = caught(|| {
        acknowledge_settling(
            store,
            coordinator,
            report,
            &reporter,
            record.message_id.as_deref(),
            policy,
            now,
            true,
            composed,
        )
    });
    match queued {
        Ok(Ok(Acknowledged::Queued(c))) => Paid::Settled(match c.key_fingerprint {
            Some(k) => format!("queued, encrypted to {k}"),
            None => "queued, unencrypted (no key for the reporter; names only the number)".into(),
        }),
        Ok(Ok(Acknowledged::Limited { limit })) => Paid::Impossible(format!(
            "{limit} acknowledgments already went to {sender} today"
        )),
        // Another process settled it first: acknowledged once, by them.
        Ok(Err(OutboxError::Store(StoreError::Conflict(_)))) => {
            Paid::Settled("queued by another process".into())
        }
        Ok(Err(OutboxError::Store(e))) => kept(&e),
        Ok(Err(e)) => Paid::Impossible(e.to_string()),
        Err(_) => Paid::Impossible("internal error while composing it".into()),
    }
}

/// The keys a stored message offers, outside and inside its encryption (for a debt recorded
/// before the keys were kept with it). Within the default limits; a panic finds none.
fn offered_keys_in(raw: &[u8], keyring: &Keyring) -> Vec<Vec<u8>> {
    let limits = crate::limits::Limits::default();
    caught(|| {
        let mut keys = crate::message::offered_keys(raw, &limits);
        if let Ok(Some(inner)) = crate::open::open_with(raw, keyring, &limits).map(|o| o.inner) {
            keys.extend(crate::message::offered_keys(&inner, &limits));
        }
        keys
    })
    .unwrap_or_default()
}

/// `f`, with a panic caught.
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| ())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::outbox::OutboxFilter;
    use crate::store::{Disposition, MessageSource, NewMessage, NewParticipant};
    use crate::tracking::Kind;

    /// An offered "key" that makes the key parsing panic (tests only).
    pub(crate) const PANIC_ON_PARSE: &[u8] = b"casegate-test: panic while parsing this key";

    /// Stores a new report from `from` (as the pipeline would: the debt and the offered keys in
    /// its transaction); its thread id.
    fn report(store: &mut Store, from: &str, offered: Vec<Vec<u8>>) -> i64 {
        let raw = format!("From: {from}\r\nSubject: a report\r\n\r\nText\r\n");
        let m = NewMessage {
            message_id: Some(format!("<{from}>")),
            sender: Some(from.into()),
            reason: "new report".into(),
            offered_keys: offered,
            ..NewMessage::inbound(
                raw.as_bytes(),
                MessageSource::Stdin,
                Utc::now(),
                Disposition::NewThread {
                    kind: Kind::Report,
                    title: "a report".into(),
                    participant: Some(NewParticipant {
                        org: from.into(),
                        role: "reporter".into(),
                        address: from.into(),
                    }),
                },
            )
        };
        let c = store.commit_message(&m).unwrap();
        store.thread(&c.thread.unwrap()).unwrap().unwrap().id
    }

    fn copies(store: &Store) -> Vec<crate::store::outbox::OutboxRow> {
        store.outbox_rows(&OutboxFilter::default()).unwrap()
    }

    fn policy(config: &OutboxConfig) -> AckPolicy<'_> {
        AckPolicy {
            from: "cert@example.test",
            outbox: config,
            limit_per_day: 5,
        }
    }

    #[test]
    fn an_owed_acknowledgment_waits_for_the_key_then_goes_once_encrypted_to_the_offered_key() {
        crate::store::testing::for_each_backend(|mut s| {
            let config = OutboxConfig::default();
            let reporter =
                crate::keyring::generate_coordinator_key("rita@reporter.example").unwrap();
            let offered = crate::keyring::public_bytes(&reporter);
            let rita = report(&mut s, "rita@reporter.example", vec![offered]);
            let plain = report(&mut s, "flo@reporter.example", Vec::new());
            assert_eq!(s.pending_acks().unwrap().len(), 2);

            // No coordinator key: nothing is queued, both stay owed.
            let none =
                queue_owed(&mut s, &Keyring::new(None, Vec::new()), &policy(&config)).unwrap();
            assert_eq!(none.len(), 2);
            assert!(
                none.iter()
                    .all(|o| o.owed && o.result == NO_COORDINATOR_KEY),
                "{none:?}"
            );
            assert!(copies(&s).is_empty());
            assert_eq!(s.pending_acks().unwrap().len(), 2);

            let coordinator =
                crate::keyring::generate_coordinator_key("cert@example.test").unwrap();
            let keyring = Keyring::new(Some(coordinator), Vec::new());
            let paid = queue_owed(&mut s, &keyring, &policy(&config)).unwrap();
            assert_eq!(paid.len(), 2);
            assert!(paid.iter().all(|o| !o.owed), "{paid:?}");
            let fpr = reporter.fingerprint().to_hex();
            let by = |t: i64| {
                paid.iter()
                    .find(|o| o.thread_id == t)
                    .unwrap()
                    .result
                    .clone()
            };
            assert_eq!(by(rita), format!("queued, encrypted to {fpr}"));
            assert!(
                by(plain).starts_with("queued, unencrypted"),
                "{}",
                by(plain)
            );
            let rows = copies(&s);
            assert_eq!(rows.len(), 2);
            let to_rita = rows
                .iter()
                .find(|r| r.address == "rita@reporter.example")
                .unwrap();
            assert_eq!(to_rita.key_fingerprint.as_deref(), Some(fpr.as_str()));
            assert!(s.pending_acks().unwrap().is_empty());
            assert_eq!(s.pending_ack_keys(rita).unwrap(), None);

            // Paid is paid: nothing owed, nothing queued again.
            assert!(
                queue_owed(&mut s, &keyring, &policy(&config))
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(copies(&s).len(), 2);
        });
    }

    /// A debt recorded before the keys were kept with it (a store migrated with acknowledgments
    /// owed): the keys are read from the stored message, and the acknowledgment is encrypted
    /// to the one attached.
    #[test]
    fn a_debt_from_before_recorded_keys_reads_them_from_the_message() {
        crate::store::testing::for_each_backend(|mut s| {
            use sequoia_openpgp::serialize::SerializeInto;
            let config = OutboxConfig::default();
            let reporter =
                crate::keyring::generate_coordinator_key("old@reporter.example").unwrap();
            let armored = String::from_utf8(reporter.armored().to_vec().unwrap()).unwrap();
            let raw = format!(
                "From: old@reporter.example\r\nSubject: a report\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
Text\r\n--b\r\nContent-Type: application/pgp-keys\r\n\
Content-Disposition: attachment; filename=\"key.asc\"\r\n\r\n{armored}\r\n--b--\r\n"
            );
            let m = NewMessage {
                sender: Some("old@reporter.example".into()),
                reason: "new report".into(),
                ..NewMessage::inbound(
                    raw.as_bytes(),
                    MessageSource::Stdin,
                    Utc::now(),
                    Disposition::NewThread {
                        kind: Kind::Report,
                        title: "a report".into(),
                        participant: Some(NewParticipant {
                            org: "old@reporter.example".into(),
                            role: "reporter".into(),
                            address: "old@reporter.example".into(),
                        }),
                    },
                )
            };
            let c = s.commit_message(&m).unwrap();
            let thread = s.thread(&c.thread.unwrap()).unwrap().unwrap().id;
            assert_eq!(s.pending_ack_keys(thread).unwrap(), Some(Vec::new()));
            s.forget_recorded_ack_keys(thread).unwrap();
            assert_eq!(s.pending_ack_keys(thread).unwrap(), None);
            let coordinator =
                crate::keyring::generate_coordinator_key("cert@example.test").unwrap();
            let keyring = Keyring::new(Some(coordinator), Vec::new());
            let paid = queue_owed(&mut s, &keyring, &policy(&config)).unwrap();
            let fpr = reporter.fingerprint().to_hex();
            assert_eq!(
                paid[0].result,
                format!("queued, encrypted to {fpr}"),
                "{paid:?}"
            );
            assert!(s.pending_acks().unwrap().is_empty());
        });
    }

    #[test]
    fn a_panic_on_an_offered_key_costs_that_acknowledgment_only() {
        crate::store::testing::for_each_backend(|mut s| {
            let config = OutboxConfig::default();
            let bad = report(
                &mut s,
                "bad@reporter.example",
                vec![PANIC_ON_PARSE.to_vec()],
            );
            let good = report(&mut s, "good@reporter.example", Vec::new());
            let coordinator =
                crate::keyring::generate_coordinator_key("cert@example.test").unwrap();
            let keyring = Keyring::new(Some(coordinator), Vec::new());
            let paid = queue_owed(&mut s, &keyring, &policy(&config)).unwrap();
            let by = |t: i64| paid.iter().find(|o| o.thread_id == t).unwrap();
            assert_eq!(
                by(bad).result,
                "not sent: internal error while reading the keys it offered"
            );
            assert!(!by(bad).owed, "dropped, not tried every second forever");
            assert!(by(good).result.starts_with("queued"), "{paid:?}");
            let rows = copies(&s);
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].address, "good@reporter.example");
            assert!(s.pending_acks().unwrap().is_empty());
            // The store is usable afterwards: no transaction was left open by the panic.
            report(&mut s, "after@reporter.example", Vec::new());
            assert_eq!(s.pending_acks().unwrap().len(), 1);
        });
    }

    /// On SQLite the debts of a round share transactions (one commit writes the pages of many
    /// copies), and a debt whose copy the store refuses stays owed without undoing the others.
    #[test]
    fn a_round_settles_many_debts_in_few_commits_and_a_refused_one_alone_stays_owed() {
        let mut s = Store::open_in_memory().unwrap();
        let config = OutboxConfig::default();
        let threads: Vec<i64> = (0..120)
            .map(|i| report(&mut s, &format!("r{i}@reporter.example"), Vec::new()))
            .collect();
        s.db()
            .sqlite_conn()
            .unwrap()
            .execute_batch(
                "CREATE TEMP TRIGGER refuse BEFORE INSERT ON outbox
                 WHEN NEW.address = 'r57@reporter.example' BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
            )
            .unwrap();
        let coordinator = crate::keyring::generate_coordinator_key("cert@example.test").unwrap();
        let keyring = Keyring::new(Some(coordinator), Vec::new());
        let before = s.commits();
        let paid = queue_owed(&mut s, &keyring, &policy(&config)).unwrap();
        let commits = s.commits() - before;
        assert!(commits <= 3, "{commits} commits for 120 acknowledgments");
        assert_eq!(paid.len(), 120);
        for (i, t) in threads.iter().enumerate() {
            let o = paid.iter().find(|o| o.thread_id == *t).unwrap();
            if i == 57 {
                assert!(o.owed, "{o:?}");
                assert!(o.result.contains("disk full"), "{o:?}");
            } else {
                assert!(!o.owed && o.result.starts_with("queued"), "{i}: {o:?}");
            }
        }
        let rows = copies(&s);
        assert_eq!(rows.len(), 119);
        assert!(rows.iter().all(|r| r.address != "r57@reporter.example"));
        // Composed ahead on other threads: each copy is its own reporter's, about its report.
        let due = s
            .due_copies(Utc::now() + chrono::Duration::days(1), 1000)
            .unwrap();
        assert_eq!(due.len(), 119);
        for copy in &due {
            let raw = String::from_utf8_lossy(&copy.raw);
            let number = &rows
                .iter()
                .find(|r| r.address == copy.address)
                .unwrap()
                .thread;
            assert!(raw.contains(&format!("To: <{}>", copy.address)), "{raw}");
            assert!(
                raw.contains(&format!("In-Reply-To: <{}>", copy.address)),
                "{raw}"
            );
            assert!(
                raw.contains(&format!("Subject: [{number}] Report received")),
                "{raw}"
            );
        }
        let owed: Vec<i64> = s.pending_acks().unwrap().iter().map(|p| p.0).collect();
        assert_eq!(owed, vec![threads[57]]);
    }

    /// Two processes paying the same debts at once (two instances on PostgreSQL; two
    /// connections to one SQLite file): each acknowledgment is queued exactly once.
    #[test]
    fn two_payers_at_once_queue_each_acknowledgment_once() {
        crate::store::testing::for_each_shared_backend(|open| {
            const REPORTS: usize = 6;
            let mut s = open();
            for i in 0..REPORTS {
                report(&mut s, &format!("r{i}@reporter.example"), Vec::new());
            }
            let coordinator =
                crate::keyring::generate_coordinator_key("cert@example.test").unwrap();
            let results: Vec<Vec<OwedAck>> = std::thread::scope(|scope| {
                let payers: Vec<_> = (0..2)
                    .map(|_| {
                        let coordinator = coordinator.clone();
                        scope.spawn(move || {
                            let mut store = open();
                            let config = OutboxConfig::default();
                            let keyring = Keyring::new(Some(coordinator), Vec::new());
                            queue_owed(&mut store, &keyring, &policy(&config)).unwrap()
                        })
                    })
                    .collect();
                payers.into_iter().map(|p| p.join().unwrap()).collect()
            });
            let rows = copies(&s);
            assert_eq!(rows.len(), REPORTS, "{rows:?}");
            let mut addresses: Vec<&str> = rows.iter().map(|r| r.address.as_str()).collect();
            addresses.dedup();
            assert_eq!(addresses.len(), REPORTS);
            assert!(s.pending_acks().unwrap().is_empty());
            let queued_here = results
                .iter()
                .flatten()
                .filter(|o| o.result.starts_with("queued,"))
                .count();
            assert_eq!(queued_here, REPORTS, "{results:?}");
            assert!(results.iter().flatten().all(|o| !o.owed), "{results:?}");
        });
    }
}
