//! Acknowledgments of new reports: the reporter learns the report's number and how to write
//! back. Encrypted to the reporter's key when we have one; otherwise a signed plaintext that
//! names the number and nothing of the report's content. Never more than the configured number
//! per sender per UTC day, and always marked `Auto-Submitted: auto-generated` (RFC 3834) so
//! auto-responders do not answer it.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;

use super::compose::{self, ComposeError, Notice, PlainText};
use super::{OutboxError, QueuedCopy, Selection};
use crate::config::OutboxConfig;
use crate::header::{AddrSpec, HeaderText, MessageId};
use crate::store::outbox::{CopyKind, NewCopy, NewNotice};
use crate::store::{Contact, Store, Thread};

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
/// limit counts, and when the copy was queued).
pub fn acknowledge(
    store: &mut Store,
    coordinator: &Cert,
    report: &Thread,
    reporter: &Contact,
    in_reply_to: Option<&str>,
    policy: &AckPolicy<'_>,
    now: DateTime<Utc>,
) -> Result<Acknowledged, OutboxError> {
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
        let copies = super::notify_at(
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
            None,
            now,
        )?;
        if let Some(copy) = copies.into_iter().find(|c| c.address == reporter.address) {
            return Ok(Acknowledged::Queued(copy));
        }
    }
    let text = body(number, from, false);
    let subject = HeaderText::new(&format!("[{number}] Report received"));
    let plain = compose::plain_for(
        &PlainText {
            recipient_addr: &to,
            subject: &subject,
            body: &text,
            in_reply_to: in_reply_to.as_ref(),
            automatic: true,
        },
        coordinator,
        &from_addr,
        SystemTime::from(now),
    )?;
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
    let ids = store.enqueue_notice(&record, std::slice::from_ref(&copy), now)?;
    let id = ids.first().copied().unwrap_or_default();
    Ok(Acknowledged::Queued(super::queued_copy(id, number, &copy)))
}
