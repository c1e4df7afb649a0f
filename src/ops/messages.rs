//! Reading stored messages: find one by Message-ID or short id, show it with its verdicts and
//! its text (decrypted on demand, never stored decrypted), and hand out its attachments.

use super::{Actor, Context, OpsError};
use crate::message::{self, HeaderLine, NumberedAttachment};
use crate::store::{MessageRecord, SHORT_ID_LEN};

/// Where a reference is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Any stored message.
    Any,
    /// Messages waiting in triage (not yet assigned).
    Triage,
    /// Quarantined messages.
    Quarantine,
}

impl Scope {
    fn holds(self, m: &MessageRecord) -> bool {
        match self {
            Scope::Any => true,
            Scope::Triage => m.triage_reason.is_some() && m.assigned_at.is_none(),
            Scope::Quarantine => m.outcome == "quarantine",
        }
    }

    fn none_found(self, reference: &str) -> OpsError {
        OpsError::NotFound(match self {
            Scope::Any => format!(
                "no stored message {reference}; the short ids are in `casegate show NUMBER`, `casegate triage list` and `casegate quarantine list`"
            ),
            Scope::Triage => {
                format!("no message {reference} is waiting in triage; see `casegate triage list`")
            }
            Scope::Quarantine => {
                format!("no message {reference} is in quarantine; see `casegate quarantine list`")
            }
        })
    }
}

/// Fewest hex digits accepted as a short id (fewer would name too many messages).
pub const MIN_PREFIX: usize = 8;

/// The stored message `reference` names: a Message-ID (with or without angle brackets) or a
/// short id — a prefix of its SHA-256, at least [`MIN_PREFIX`] hex digits. A reference that
/// names more than one message is an error that lists them.
pub fn resolve(cx: &Context, reference: &str, scope: Scope) -> Result<MessageRecord, OpsError> {
    let r = reference.trim();
    if r.is_empty() || r == "<>" {
        return Err(OpsError::Invalid(
            "no message given; name it by Message-ID (<id@host>) or by the short id `casegate show` prints".into(),
        ));
    }
    let hex = r.chars().all(|c| c.is_ascii_hexdigit());
    let mut by_prefix = Vec::new();
    if hex && (MIN_PREFIX..=64).contains(&r.len()) {
        by_prefix = cx
            .store()
            .messages_by_sha256_prefix(&r.to_ascii_lowercase(), 50)?
            .into_iter()
            .filter(|m| scope.holds(m))
            .collect();
    }
    if !by_prefix.is_empty() {
        return one(by_prefix, || {
            format!("short id {r} is ambiguous: it begins")
        });
    }
    let bracketed = format!("<{}>", r.trim_start_matches('<').trim_end_matches('>'));
    let by_id: Vec<MessageRecord> = cx
        .store()
        .messages_by_message_id(&bracketed)?
        .into_iter()
        .filter(|m| scope.holds(m))
        .collect();
    if by_id.is_empty() {
        if hex && r.len() < MIN_PREFIX {
            return Err(OpsError::Invalid(format!(
                "{r:?} is too short for a short id (at least {MIN_PREFIX} hex digits; `casegate show` prints {SHORT_ID_LEN})"
            )));
        }
        return Err(scope.none_found(r));
    }
    one(by_id, || format!("Message-ID {bracketed} is carried by"))
}

fn one(
    mut found: Vec<MessageRecord>,
    what: impl FnOnce() -> String,
) -> Result<MessageRecord, OpsError> {
    if found.len() == 1 {
        return Ok(found.remove(0));
    }
    let ids: Vec<&str> = found.iter().map(|m| m.short_id.as_str()).collect();
    Err(OpsError::Conflict(format!(
        "{} {} stored messages ({}); give the short id of the one you mean",
        what(),
        found.len(),
        ids.join(", ")
    )))
}

/// Who signed, as a participant of the message's thread.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SignerParticipant {
    pub org: String,
    pub role: String,
    pub address: String,
}

/// What casegate decided about a message's protection when it arrived.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Verdicts {
    /// The whole message was encrypted (never true when only part was).
    pub encrypted: bool,
    /// `partial: ...` when only part of it was encrypted.
    pub encryption_note: Option<String>,
    /// `none | good | bad | unknown-key | not-participant`.
    pub signature: String,
    /// Primary fingerprint of the certificate that signed.
    pub signer: Option<String>,
    /// The thread participant that certificate is bound to.
    pub signer_participant: Option<SignerParticipant>,
    /// `whole` (a signature covers everything the reader sees), `partial` (signatures cover
    /// only parts: see `signature_reason` and `notes`), or `none`.
    pub signature_covers: &'static str,
    pub signature_reason: Option<String>,
    /// Sender authentication (DKIM/DMARC, or the coordinator's MTA): `pass | fail | none |
    /// temperror`, decided when the message arrived.
    pub sender_auth: String,
    pub sender_auth_detail: Option<String>,
}

/// The raw bytes of a message as text, for a person (quarantine): invalid UTF-8 replaced.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RawText {
    pub text: String,
    /// Bytes of the stored message.
    pub size: usize,
    /// Only the first [`RAW_TEXT_LIMIT`] bytes are in `text`; the rest is in the store.
    pub truncated: bool,
}

/// Raw text shown at most (the whole raw message stays available as bytes).
pub const RAW_TEXT_LIMIT: usize = 1 << 20;

/// A message as a person reads it (`read --json`). Decrypted text is made for this answer
/// and never stored.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub message: MessageRecord,
    pub verdicts: Verdicts,
    /// From, To, Cc, Date, Subject, Message-ID, ... of the outer message, decoded.
    pub headers: Vec<HeaderLine>,
    /// The Subject inside the encryption (RFC 9788 protected headers), when it differs.
    pub protected_subject: Option<String>,
    /// What opening the message now found: decryption, each signature and what it covers,
    /// or why it cannot be opened now.
    pub notes: Vec<String>,
    /// The text the reader sees (HTML converted to text, never rendered).
    pub text: Option<String>,
    pub text_from_html: bool,
    pub has_html: bool,
    /// Numbered from 1, for `attachment save MESSAGE N`.
    pub attachments: Vec<NumberedAttachment>,
    /// For a quarantined message: its raw bytes as text (`message.reason` says why it is kept).
    pub raw: Option<RawText>,
}

/// Reads one message: its record and verdicts, its headers, and its text and attachments —
/// decrypted now with the coordinator key when it was encrypted.
pub fn read(cx: &mut Context, _actor: &Actor, reference: &str) -> Result<MessageView, OpsError> {
    let record = resolve(cx, reference, Scope::Any)?;
    view(cx, record)
}

/// [`read`] of a message already found.
pub(crate) fn view(cx: &mut Context, record: MessageRecord) -> Result<MessageView, OpsError> {
    let raw = cx.store().raw_message(record.id)?;
    let signer_participant = match (&record.signer, &record.thread) {
        (Some(fpr), Some(number)) => {
            let thread = cx.thread(number)?;
            cx.store()
                .contacts(thread.id)?
                .into_iter()
                .find(|c| {
                    c.key_fingerprints
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(fpr))
                })
                .map(|c| SignerParticipant {
                    org: c.org,
                    role: c.role,
                    address: c.address,
                })
        }
        _ => None,
    };
    let partial = record
        .signature_reason
        .as_deref()
        .is_some_and(|r| r.starts_with("partial"));
    let verdicts = Verdicts {
        encrypted: record.encrypted,
        encryption_note: record.encryption_note.clone(),
        signature: record.signature.clone(),
        signer: record.signer.clone(),
        signer_participant,
        signature_covers: match record.signature.as_str() {
            "none" if partial => "partial",
            "none" => "none",
            _ => "whole",
        },
        signature_reason: record.signature_reason.clone(),
        sender_auth: record.sender_auth.clone(),
        sender_auth_detail: record.sender_auth_detail.clone(),
    };
    let quarantined = record.outcome == "quarantine";
    let mut notes = Vec::new();
    let mut protected_subject = None;
    let readable =
        if quarantined && raw.len() as u64 > cx.settings().config.policy.max_message_bytes {
            notes.push("too large to open; only the raw text is shown".into());
            None
        } else {
            let entity = opened_entity(cx, &raw, &mut notes, &mut protected_subject)?;
            match message::readable(&entity) {
                Ok(r) => Some(r),
                Err(e) => {
                    notes.push(format!("the content cannot be read as mail: {e}"));
                    None
                }
            }
        };
    let outer_subject = message::parse_entity(&raw).ok().and_then(|v| v.subject);
    let raw_text = quarantined.then(|| RawText {
        text: String::from_utf8_lossy(&raw[..raw.len().min(RAW_TEXT_LIMIT)]).into_owned(),
        size: raw.len(),
        truncated: raw.len() > RAW_TEXT_LIMIT,
    });
    let readable = readable.unwrap_or(message::Readable {
        text: None,
        text_from_html: false,
        has_html: false,
        attachments: Vec::new(),
    });
    Ok(MessageView {
        headers: message::display_headers(&raw),
        protected_subject: protected_subject.filter(|p| Some(p) != outer_subject.as_ref()),
        message: record,
        verdicts,
        notes,
        text: readable.text,
        text_from_html: readable.text_from_html,
        has_html: readable.has_html,
        attachments: readable.attachments,
        raw: raw_text,
    })
}

/// What the reader sees of `raw`: the decrypted (or unwrapped) content when there is any,
/// else the message itself. Why it could not be opened goes to `notes`.
fn opened_entity(
    cx: &mut Context,
    raw: &[u8],
    notes: &mut Vec<String>,
    protected_subject: &mut Option<String>,
) -> Result<Vec<u8>, OpsError> {
    let keyring = cx.keyring()?;
    Ok(match crate::open::open(raw, keyring) {
        Ok(opened) => {
            notes.extend(opened.notes);
            *protected_subject = opened.protected_subject;
            match opened.inner {
                Some(inner) if !inner.is_empty() => inner,
                _ => raw.to_vec(),
            }
        }
        Err(e) => {
            notes.push(format!("cannot open it now: {e}"));
            raw.to_vec()
        }
    })
}

/// One attachment's bytes, as the sender attached them (decrypted first when the message
/// was encrypted). `file_name` is the sender's: show it, never use it as a path.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttachmentFile {
    pub message: String,
    #[serde(flatten)]
    pub attachment: NumberedAttachment,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// Attachment `n` (from 1, as `read` numbers them) of a message.
pub fn attachment(
    cx: &mut Context,
    _actor: &Actor,
    reference: &str,
    n: usize,
) -> Result<AttachmentFile, OpsError> {
    let record = resolve(cx, reference, Scope::Any)?;
    let raw = cx.store().raw_message(record.id)?;
    let mut notes = Vec::new();
    let entity = opened_entity(cx, &raw, &mut notes, &mut None)?;
    match message::attachment(&entity, n) {
        Some((attachment, bytes)) => Ok(AttachmentFile {
            message: record.short_id,
            attachment,
            bytes,
        }),
        None => {
            let count = message::readable(&entity)
                .map(|r| r.attachments.len())
                .unwrap_or(0);
            Err(OpsError::NotFound(format!(
                "message {} has {count} attachment(s), no number {n}; see `casegate read {}`",
                record.short_id, record.short_id
            )))
        }
    }
}

/// The HTML version of a message's text as sent (decrypted when it was encrypted), for a face
/// that sanitizes it before showing it; `None` when it has none. Never show it as is.
pub fn html_source(
    cx: &mut Context,
    _actor: &Actor,
    reference: &str,
) -> Result<Option<String>, OpsError> {
    let record = resolve(cx, reference, Scope::Any)?;
    let raw = cx.store().raw_message(record.id)?;
    let entity = opened_entity(cx, &raw, &mut Vec::new(), &mut None)?;
    Ok(message::html_source(&entity))
}

/// How routing decides about a stored message today (`route --dry-run` over its stored
/// bytes): the steps, and the decision they lead to now. Stores nothing.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Explanation {
    pub short_id: String,
    pub steps: Vec<String>,
    /// `routed | triage | quarantine` as it would be decided now (the store's current threads
    /// and participants), which may differ from what was decided when it arrived.
    pub outcome_now: &'static str,
    pub reason_now: String,
}

pub fn explain(cx: &mut Context, _actor: &Actor, reference: &str) -> Result<Explanation, OpsError> {
    let record = resolve(cx, reference, Scope::Any)?;
    let raw = cx.store().raw_message(record.id)?;
    let o = cx.pipeline(None)?.evaluate_only(&raw)?;
    Ok(Explanation {
        short_id: record.short_id,
        steps: o.steps,
        outcome_now: o.outcome,
        reason_now: o.reason,
    })
}

/// A stored message's raw bytes, exactly as received.
pub fn raw(cx: &Context, _actor: &Actor, reference: &str) -> Result<Vec<u8>, OpsError> {
    let record = resolve(cx, reference, Scope::Any)?;
    Ok(cx.store().raw_message(record.id)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{ann, desk};
    use crate::store::{Disposition, MessageSource, NewMessage};

    fn store_raw(cx: &mut Context, raw: &[u8], message_id: &str) -> MessageRecord {
        let m = NewMessage {
            message_id: Some(message_id.into()),
            sender: Some("a@b.example".into()),
            reason: "test".into(),
            ..NewMessage::inbound(
                raw,
                MessageSource::Stdin,
                chrono::Utc::now(),
                Disposition::Triage,
            )
        };
        let c = cx.store_mut().commit_message(&m).unwrap();
        cx.store().message_record(c.id).unwrap()
    }

    /// Two message texts whose SHA-256 share their first [`MIN_PREFIX`] hex digits (found by
    /// a bounded, deterministic search: a birthday collision in 32 bits).
    fn colliding_pair() -> (String, String) {
        use sha2::Digest;
        let mut seen = std::collections::HashMap::new();
        for i in 0..2_000_000u32 {
            let raw = format!("From: a@b.example\r\n\r\nbody {i}\r\n");
            let sha = hex::encode(sha2::Sha256::digest(raw.as_bytes()));
            if let Some(prev) = seen.insert(sha[..MIN_PREFIX].to_string(), raw.clone()) {
                return (prev, raw);
            }
        }
        panic!("no 32-bit collision in 2,000,000 hashes");
    }

    #[test]
    fn a_shared_prefix_or_message_id_is_an_error_that_lists_the_candidates() {
        let mut d = desk();
        let (x, y) = colliding_pair();
        let x = store_raw(&mut d.cx, x.as_bytes(), "<x@x>");
        let y = store_raw(&mut d.cx, y.as_bytes(), "<y@y>");
        assert_ne!(x.short_id, y.short_id);
        assert!(x.short_id.len() >= SHORT_ID_LEN && x.sha256.starts_with(&x.short_id));
        let err = resolve(&d.cx, &x.sha256[..MIN_PREFIX], Scope::Any).unwrap_err();
        assert_eq!(err.kind().http_status(), 409);
        let text = err.to_string();
        assert!(text.contains("ambiguous"), "{text}");
        assert!(
            text.contains(&x.short_id) && text.contains(&y.short_id),
            "{text}"
        );
        // Each printed short id names exactly its message, in either case.
        assert_eq!(resolve(&d.cx, &x.short_id, Scope::Any).unwrap().id, x.id);
        assert_eq!(
            resolve(&d.cx, &y.short_id.to_uppercase(), Scope::Any)
                .unwrap()
                .id,
            y.id
        );

        let a = store_raw(&mut d.cx, b"From: a@b.example\r\n\r\none\r\n", "<same@x>");
        let b = store_raw(&mut d.cx, b"From: a@b.example\r\n\r\ntwo\r\n", "<same@x>");
        let err = resolve(&d.cx, "same@x", Scope::Any).unwrap_err();
        assert_eq!(err.kind().http_status(), 409);
        let text = err.to_string();
        assert!(
            text.contains(&a.short_id) && text.contains(&b.short_id),
            "{text}"
        );
        for (bad, status) in [("abc", 400), ("", 400), ("<nobody@x>", 404)] {
            let err = resolve(&d.cx, bad, Scope::Any).unwrap_err();
            assert_eq!(err.kind().http_status(), status, "{bad:?}: {err}");
        }
        // Attachment numbers outside the message are a not-found that says how many exist.
        let err = attachment(&mut d.cx, &ann(), &a.short_id, 1).unwrap_err();
        assert!(err.to_string().contains("0 attachment"), "{err}");
    }

    #[test]
    fn explain_gives_the_routing_steps_of_a_stored_message() {
        let mut d = desk();
        let n = crate::tracking::TrackingNumber::parse("VU#409117").unwrap();
        crate::ops::threads::open(
            &mut d.cx,
            &ann(),
            crate::tracking::Kind::Case,
            "t",
            Some(&n),
        )
        .unwrap();
        let raw = b"From: someone@elsewhere.example\r\nTo: cert@example.test\r\n\
Subject: Re: VU#409117\r\nMessage-ID: <e1@elsewhere.example>\r\n\r\nhi\r\n";
        let o = crate::ops::ingest::ingest(&mut d.cx, &ann(), raw, MessageSource::Stdin).unwrap();
        assert_eq!(o.outcome, "triage");
        let e = explain(&mut d.cx, &ann(), "e1@elsewhere.example").unwrap();
        assert_eq!(e.outcome_now, "triage");
        assert!(
            e.steps.iter().any(|s| s.contains("VU#409117")),
            "{:?}",
            e.steps
        );
        // Explaining stored nothing.
        assert_eq!(d.cx.store().triage(true).unwrap().len(), 1);
    }

    #[test]
    fn read_shows_text_and_numbered_attachments_and_hides_pgp_machinery() {
        let mut d = desk();
        let raw = b"From: Vendor <psirt@foocorp.example>\r\nTo: cert@example.test\r\n\
Subject: logs\r\nMessage-ID: <att@foocorp.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
See the two files.\r\n--b1\r\nContent-Type: text/x-diff; name=\"../../etc/passwd\"\r\n\
Content-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\n--- a\r\n+++ b\r\n\
--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"blob.bin\"\r\n\r\nAAECAwQ=\r\n--b1--\r\n";
        let rec = store_raw(&mut d.cx, raw, "<att@foocorp.example>");
        let v = read(&mut d.cx, &ann(), "att@foocorp.example").unwrap();
        assert_eq!(v.text.as_deref().map(str::trim), Some("See the two files."));
        assert_eq!(v.attachments.len(), 2);
        assert_eq!(v.attachments[0].name.as_deref(), Some("../../etc/passwd"));
        assert_eq!(v.attachments[1].size, 5);
        assert!(v.raw.is_none());
        assert!(
            v.headers
                .iter()
                .any(|h| h.name == "From" && h.value == "Vendor <psirt@foocorp.example>")
        );
        let file = attachment(&mut d.cx, &ann(), &rec.short_id, 2).unwrap();
        assert_eq!(file.bytes, vec![0, 1, 2, 3, 4]);
        let diff = attachment(&mut d.cx, &ann(), &rec.short_id, 1).unwrap();
        assert_eq!(diff.bytes, b"--- a\r\n+++ b".to_vec());
    }
}
