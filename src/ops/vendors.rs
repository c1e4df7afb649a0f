//! Vendors of a case: each organization's status and statement as it sent them (by email),
//! who signed the statement, and how long since it was notified and last heard from.

use chrono::Utc;

use super::{Actor, Context, OpsError};
use crate::followup;
use crate::store::Claim;
use crate::tracking::TrackingNumber;

/// One vendor organization of a case (`vendors --json`, one per line).
#[derive(Debug, Clone, serde::Serialize)]
pub struct VendorView {
    pub thread: TrackingNumber,
    pub org: String,
    pub anonymous: bool,
    /// `unknown` until the vendor says; then `affected`, `not affected`, `fixed` or
    /// `under investigation`.
    pub status: String,
    /// When the status was set (the message's arrival, UTC).
    pub status_at: Option<String>,
    /// The message that set it (its short id is a prefix: `casegate read`).
    pub status_message: Option<String>,
    /// The statement text as the vendor wrote it.
    pub statement: Option<String>,
    pub statement_at: Option<String>,
    pub statement_message: Option<String>,
    /// The fingerprint of the organization's key that signed the statement, if one did.
    pub statement_signed_by: Option<String>,
    /// The statement message's signature verdict.
    pub statement_signature: Option<String>,
    /// Why the statement counts ("signed by FooCorp's key …", "counted without a signature
    /// check: not signed").
    pub statement_reason: Option<String>,
    pub contacts: Vec<String>,
    pub last_heard_at: Option<String>,
    pub first_notified_at: Option<String>,
    pub days_since_first_notified: Option<i64>,
    /// Claims that did not count (a signature was required and was not the organization's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_counted: Vec<Claim>,
}

/// The vendors of case `n` (participants with role `vendor`), by name.
pub fn list(
    cx: &mut Context,
    _actor: &Actor,
    n: &TrackingNumber,
) -> Result<Vec<VendorView>, OpsError> {
    let t = cx.thread(n)?;
    let now = Utc::now();
    let mut out = Vec::new();
    for p in cx
        .store()
        .participants_followup(Some(t.id), Some("vendor"))?
    {
        let claims = claims(cx, t.id, p.org_id)?;
        let store = cx.store();
        let status = claims
            .iter()
            .rev()
            .find(|c| c.counted && c.status.is_some());
        let statement = claims
            .iter()
            .rev()
            .find(|c| c.counted && c.statement.is_some());
        let org = store.org_by_id(p.org_id)?;
        out.push(VendorView {
            thread: t.number.clone(),
            org: p.org,
            anonymous: org.anonymous,
            status: status
                .and_then(|c| c.status.clone())
                .unwrap_or_else(|| "unknown".into()),
            status_at: status.map(|c| c.received_at.clone()),
            status_message: status.map(|c| c.message_sha256.clone()),
            statement: statement.and_then(|c| c.statement.clone()),
            statement_at: statement.map(|c| c.received_at.clone()),
            statement_message: statement.map(|c| c.message_sha256.clone()),
            statement_signed_by: statement
                .filter(|c| c.signed_by_org)
                .and_then(|c| c.signer.clone()),
            statement_signature: statement.map(|c| c.signature.clone()),
            statement_reason: statement.map(|c| c.reason.clone()),
            contacts: p.contacts,
            days_since_first_notified: p
                .first_notified_at
                .as_deref()
                .and_then(followup::time)
                .map(|f| followup::days_since(f, now)),
            last_heard_at: p.last_heard_at,
            first_notified_at: p.first_notified_at,
            not_counted: claims.iter().filter(|c| !c.counted).cloned().collect(),
        });
    }
    Ok(out)
}

/// The statement of organization `org` in case `n` exactly as it was signed: the bytes the
/// signature covers (a MIME entity, or the literal data of an OpenPGP message). A statement
/// that was not signed has none: that is an error which says so.
pub fn signed_statement(
    cx: &mut Context,
    _actor: &Actor,
    n: &TrackingNumber,
    org: &str,
) -> Result<Vec<u8>, OpsError> {
    let t = cx.thread(n)?;
    let o = super::orgs::named(cx, org)?;
    let claims = claims(cx, t.id, o.id)?;
    let statement = claims
        .iter()
        .rev()
        .find(|c| c.counted && c.statement.is_some())
        .ok_or_else(|| {
            OpsError::NotFound(format!("{} has no statement in {}", o.name, t.number))
        })?;
    statement.signed_part.clone().ok_or_else(|| {
        OpsError::NotFound(format!(
            "the statement of {} in {} was not signed ({}); `casegate vendors {}` shows its text",
            o.name, t.number, statement.reason, t.number
        ))
    })
}

/// An organization's claims in a thread, sealed statements read again from their stored
/// ciphertext (decrypted now, never stored decrypted; see [`crate::store::NewClaim::sealed`]).
fn claims(cx: &mut Context, thread_id: i64, org_id: i64) -> Result<Vec<Claim>, OpsError> {
    let mut claims = cx.store().claims(thread_id, org_id)?;
    for c in claims.iter_mut().filter(|c| c.sealed) {
        let raw = cx.store().raw_message(c.message_ref)?;
        let keyring = cx.keyring()?;
        let opened = match crate::open::open(&raw, keyring) {
            Ok(o) => o,
            Err(e) => {
                c.statement = Some(format!(
                    "[the statement came encrypted and cannot be decrypted now: {e}]"
                ));
                continue;
            }
        };
        let entity = opened.inner.as_deref().unwrap_or(&raw);
        let subject = opened.protected_subject.clone().or_else(|| {
            mail_parser::MessageParser::default()
                .parse_headers(&raw)
                .and_then(|m| m.subject().map(str::to_string))
        });
        let text = crate::message::readable(entity)
            .ok()
            .and_then(|r| r.text)
            .unwrap_or_default();
        c.statement = crate::statement::parse(subject.as_deref(), &text).statement;
        if c.signer.is_some() {
            c.signed_part = opened.signed_content;
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::followup::tests::case_with_vendor;
    use crate::ops::testing::{ann, desk};
    use crate::store::MessageSource;

    fn mail(n: &TrackingNumber, id: &str, subject: &str, body: &str) -> Vec<u8> {
        format!(
            "From: FooCorp PSIRT <psirt@foocorp.example>\r\nTo: cert@example.test\r\n\
             Subject: {subject} {n}\r\nMessage-ID: <{id}@foocorp.example>\r\n\r\n{body}"
        )
        .into_bytes()
    }

    #[test]
    fn status_and_statement_by_mail_and_only_signed_ones_count_when_required() {
        let mut d = desk();
        let cx = &mut d.cx;
        let me = ann();
        let n = case_with_vendor(cx);
        assert_eq!(list(cx, &me, &n).unwrap()[0].status, "unknown");
        let m = mail(
            &n,
            "1",
            "Re:",
            "Status: Under-Investigation\r\n\r\nWe are looking.\r\n",
        );
        let out = crate::ops::ingest::ingest(cx, &me, &m, MessageSource::Stdin).unwrap();
        assert_eq!(out.claims.len(), 1);
        assert!(out.claims[0].counted);
        let m = mail(
            &n,
            "2",
            "Re: vendor statement for",
            "> Are you affected?\r\n\r\nStatus: not affected\r\n\r\nWe do not ship the library.\r\n-- \r\nBob\r\n",
        );
        crate::ops::ingest::ingest(cx, &me, &m, MessageSource::Stdin).unwrap();
        let v = &list(cx, &me, &n).unwrap()[0];
        assert_eq!(v.status, "not affected");
        assert_eq!(v.statement.as_deref(), Some("We do not ship the library."));
        assert_eq!(v.statement_signed_by, None);
        assert!(v.last_heard_at.is_some());
        assert!(
            signed_statement(cx, &me, &n, "FooCorp").is_err(),
            "it was not signed"
        );

        // Signed statements required: an unsigned one is kept, flagged, and does not count.
        crate::ops::threads::set(
            cx,
            &me,
            &n,
            &crate::ops::threads::PolicyChange {
                require_signed_statements: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        let m = mail(&n, "3", "Re:", "Status: fixed\r\nStatement: all fixed.\r\n");
        let out = crate::ops::ingest::ingest(cx, &me, &m, MessageSource::Stdin).unwrap();
        assert_eq!(out.outcome, "routed", "still in the case, not in triage");
        assert!(!out.claims[0].counted);
        let record = cx
            .store()
            .messages_by_message_id("<3@foocorp.example>")
            .unwrap();
        assert!(record[0].flags.contains("unsigned-statement"));
        let v = &list(cx, &me, &n).unwrap()[0];
        assert_eq!(v.status, "not affected", "unchanged");
        assert_eq!(v.not_counted.len(), 1);
        assert!(
            v.not_counted[0].reason.contains("not signed"),
            "{:?}",
            v.not_counted
        );
        // Mail that is not a vendor's (the analyst's own notes, a reporter) sets nothing.
        let reporter =
            b"From: rita@example.test\r\nSubject: Re: VU#409117\r\n\r\nStatus: fixed\r\n";
        let out = crate::ops::ingest::ingest(cx, &me, reporter, MessageSource::Stdin).unwrap();
        assert!(out.claims.is_empty());
    }
}
