//! Threads (cases, reports, tickets): open, promote, show, list, change policy.

use chrono::Utc;

use super::{Actor, Context, OpsError, Page, Paged, audit_record};
use crate::discussion::Discussion;
use crate::store::outbox::{OutboxFilter, OutboxRow};
use crate::store::{Contact, MessageRecord, StoreError, Thread, ThreadSummary, time_text};
use crate::tracking::{Kind, TrackingNumber};

/// A thread just made (`open --json`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Opened {
    pub number: TrackingNumber,
    pub kind: Kind,
    pub title: String,
}

/// Creates a case, report or ticket; without `number` one is minted. An existing number is a
/// conflict.
pub fn open(
    cx: &mut Context,
    actor: &Actor,
    kind: Kind,
    title: &str,
    number: Option<&TrackingNumber>,
) -> Result<Opened, OpsError> {
    actor.may_change("open threads")?;
    if title.trim().is_empty() {
        return Err(OpsError::Invalid(
            "the title is empty; give one with --title".into(),
        ));
    }
    let t = cx.store_mut().atomically(|s| {
        let t = s.create_thread(kind, number, title, Utc::now())?;
        s.record_audit(&audit_record(
            actor,
            "open",
            Some(&t.number),
            None,
            format!("{kind} {title:?}"),
        ))?;
        Ok::<_, StoreError>(t)
    })?;
    Ok(Opened {
        number: t.number,
        kind: t.kind,
        title: t.title,
    })
}

/// A report turned into a case (`promote --json`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Promoted {
    pub number: TrackingNumber,
    pub kind: Kind,
    pub title: String,
    pub promoted_from: TrackingNumber,
}

/// Turns a report into a case (minted or `to`); the report's participants come along.
pub fn promote(
    cx: &mut Context,
    actor: &Actor,
    report: &TrackingNumber,
    to: Option<&TrackingNumber>,
) -> Result<Promoted, OpsError> {
    actor.may_change("promote reports")?;
    let case = cx.store_mut().atomically(|s| {
        let case = s.promote(report, to, Utc::now())?;
        s.record_audit(&audit_record(
            actor,
            "promote",
            Some(&case.number),
            None,
            format!("{report} became {}", case.number),
        ))?;
        Ok::<_, StoreError>(case)
    })?;
    Ok(Promoted {
        number: case.number,
        kind: case.kind,
        title: case.title,
        promoted_from: report.clone(),
    })
}

/// A thread with its participants, messages and outbound copies (`show --json`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ThreadView {
    #[serde(flatten)]
    pub thread: Thread,
    /// The number asked for, when it is a report that became this case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asked_for: Option<TrackingNumber>,
    pub participants: Vec<Contact>,
    /// The participants' keys by fingerprint: expiry and state.
    pub keys: std::collections::BTreeMap<String, crate::keyring::CertSummary>,
    /// Key changes of participants' addresses waiting for review (copies to them are held).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_changes: Vec<crate::store::KeyChange>,
    /// Oldest first (the page asked for); each with its `short_id` for `read`.
    pub messages: Vec<MessageRecord>,
    /// Messages in the thread in all; `messages` starts at `messages_offset`.
    pub messages_total: usize,
    pub messages_offset: usize,
    /// Outbound copies, oldest first: at most as many as the page of messages.
    pub outbox: Vec<OutboxRow>,
    /// Outbound copies in all (the whole list: the outbox, filtered by thread).
    pub outbox_total: usize,
}

/// One thread with one page of its messages (oldest first); a promoted report is shown as
/// the case it became.
pub fn show(
    cx: &Context,
    _actor: &Actor,
    n: &TrackingNumber,
    messages: Page,
) -> Result<ThreadView, OpsError> {
    let own = cx.own_thread(n)?;
    let t = cx.store().resolve_thread(n)?.unwrap_or(own);
    let store = cx.store();
    let participants = store.contacts(t.id)?;
    let mut keys = std::collections::BTreeMap::new();
    for f in participants.iter().flat_map(|c| &c.key_fingerprints) {
        if let Some(stored) = store.cert(f)?
            && let Ok(certs) = crate::keyring::parse_certs(&stored.public_cert)
            && let Some(c) = certs.first()
        {
            keys.insert(f.clone(), crate::keyring::summarize(c));
        }
    }
    let key_changes = store
        .key_changes(true)?
        .into_iter()
        .filter(|k| participants.iter().any(|c| c.address == k.address))
        .collect();
    let (page, messages_total) =
        store.thread_messages_page(t.id, messages.offset, messages.limit)?;
    let filter = OutboxFilter {
        thread_id: Some(t.id),
        status: None,
    };
    let (outbox, outbox_total) = store.outbox_rows_page(&filter, 0, messages.limit)?;
    Ok(ThreadView {
        asked_for: (n != &t.number).then(|| n.clone()),
        participants,
        keys,
        key_changes,
        messages: page,
        messages_total,
        messages_offset: messages.offset,
        outbox,
        outbox_total,
        thread: t,
    })
}

/// How many messages [`show`] pages through for thread `n` (a promoted report's: its case's),
/// without the rest of the view: where the last page starts.
pub fn message_count(cx: &Context, _actor: &Actor, n: &TrackingNumber) -> Result<usize, OpsError> {
    let t = cx.thread(n)?;
    Ok(cx.store().thread_messages_page(t.id, 0, 0)?.1)
}

/// One thread's summary: counts, last activity, waiting since, planned publication date.
pub fn summary(
    cx: &Context,
    _actor: &Actor,
    n: &TrackingNumber,
) -> Result<ThreadSummary, OpsError> {
    let t = cx.thread(n)?;
    Ok(cx.store().thread_summary(t.id)?)
}

/// Threads, oldest first, optionally of one kind.
pub fn list(
    cx: &Context,
    _actor: &Actor,
    kind: Option<Kind>,
    page: Page,
) -> Result<Paged<ThreadSummary>, OpsError> {
    let (items, total) = cx.store().threads_page(kind, page.offset, page.limit)?;
    Ok(page.of(items, total))
}

/// What `set` may change; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct PolicyChange {
    pub require_signed_statements: Option<bool>,
    /// `YYYY-MM-DD`, an RFC 3339 time, or `none` to go back to the default.
    pub publication_date: Option<String>,
    /// `relay` (participants' mail is relayed to the other participants) or `hub`
    /// (hub-and-spoke, the default: nothing is relayed).
    #[serde(default)]
    pub discussion: Option<String>,
}

/// A thread's policy after `set` (`set --json`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Policy {
    pub number: TrackingNumber,
    pub require_signed_statements: bool,
    /// `None`: the default, 45 days after the first notice.
    pub publication_date: Option<String>,
    /// `hub` or `relay`.
    pub discussion: String,
}

/// Changes a thread's policy (all of `change` or nothing) and returns it.
pub fn set(
    cx: &mut Context,
    actor: &Actor,
    n: &TrackingNumber,
    change: &PolicyChange,
) -> Result<Policy, OpsError> {
    let t = cx.thread(n)?;
    let publication = change
        .publication_date
        .as_deref()
        .map(parse_publication_date)
        .transpose()?;
    let discussion = change
        .discussion
        .as_deref()
        .map(|d| {
            Discussion::parse(d).ok_or_else(|| {
                OpsError::Invalid(format!(
                    "--discussion {d:?} is not `relay` or `hub` (hub-and-spoke)"
                ))
            })
        })
        .transpose()?;
    if discussion.is_some() && t.kind != Kind::Case {
        return Err(OpsError::Invalid(format!(
            "{} is a {}; only cases have a discussion to relay",
            t.number, t.kind
        )));
    }
    if change.require_signed_statements.is_some() || publication.is_some() || discussion.is_some() {
        actor.may_change("change a thread's policy")?;
        let mut what = Vec::new();
        if let Some(d) = discussion {
            what.push(format!("discussion={}", d.as_str()));
        }
        if let Some(on) = change.require_signed_statements {
            what.push(format!("require_signed_statements={on}"));
        }
        if let Some(p) = &publication {
            what.push(format!(
                "publication_date={}",
                p.as_deref().unwrap_or("default")
            ));
        }
        cx.store_mut().atomically(|s| {
            if let Some(on) = change.require_signed_statements {
                s.set_require_signed_statements(t.id, on)?;
            }
            if let Some(p) = &publication {
                s.set_publication_date(t.id, p.as_deref())?;
            }
            if let Some(d) = discussion {
                s.set_discussion(t.id, d.as_str())?;
            }
            s.record_audit(&audit_record(
                actor,
                "set",
                Some(&t.number),
                None,
                what.join(", "),
            ))?;
            Ok::<_, StoreError>(())
        })?;
    }
    let t = cx.store().thread_by_id(t.id)?;
    Ok(Policy {
        number: t.number,
        require_signed_statements: t.require_signed_statements,
        publication_date: t.publication_date,
        discussion: t.discussion,
    })
}

/// `YYYY-MM-DD` or RFC 3339 → UTC RFC 3339; `none` → `None` (the default).
fn parse_publication_date(p: &str) -> Result<Option<String>, OpsError> {
    let p = p.trim();
    if p == "none" {
        return Ok(None);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(p, "%Y-%m-%d") {
        return Ok(Some(time_text(
            d.and_time(chrono::NaiveTime::MIN).and_utc(),
        )));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(p) {
        return Ok(Some(time_text(t.with_timezone(&Utc))));
    }
    Err(OpsError::Invalid(format!(
        "--publication-date {p:?} is not a date; write YYYY-MM-DD, an RFC 3339 time, or none"
    )))
}

/// Records a Message-ID as sent by us in a thread, so replies to it route there (a test and
/// maintenance helper: `casegate debug record-sent`).
pub fn record_sent(
    cx: &mut Context,
    actor: &Actor,
    message_id: &str,
    n: &TrackingNumber,
) -> Result<(), OpsError> {
    actor.may_change("record sent Message-IDs")?;
    let t = cx.own_thread(n)?;
    cx.store_mut().atomically(|s| {
        s.record_sent(message_id, t.id)?;
        s.record_audit(&audit_record(
            actor,
            "debug record-sent",
            Some(&t.number),
            None,
            message_id.to_string(),
        ))?;
        Ok::<_, StoreError>(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{ann, desk};

    fn n(s: &str) -> TrackingNumber {
        TrackingNumber::parse(s).unwrap()
    }

    #[test]
    fn a_read_only_actor_changes_nothing_and_leaves_no_audit_record() {
        let mut d = desk();
        let reader = Actor::named("token:rita", true);
        let err = open(&mut d.cx, &reader, Kind::Case, "t", None).unwrap_err();
        assert_eq!(err.kind().http_status(), 403);
        assert!(err.to_string().contains("read-only"), "{err}");
        assert!(
            list(&d.cx, &reader, None, Page::ALL)
                .unwrap()
                .items
                .is_empty()
        );
        assert!(d.cx.store().audit_entries(None, None).unwrap().is_empty());
        // Reading is allowed.
        let made = open(&mut d.cx, &ann(), Kind::Case, "t", Some(&n("VU#409117"))).unwrap();
        assert_eq!(
            show(&d.cx, &reader, &made.number, Page::ALL)
                .unwrap()
                .thread
                .number,
            made.number
        );
        let change = PolicyChange {
            require_signed_statements: Some(true),
            publication_date: None,
            discussion: None,
        };
        assert_eq!(
            set(&mut d.cx, &reader, &made.number, &change)
                .unwrap_err()
                .kind()
                .http_status(),
            403
        );
    }

    #[test]
    fn set_checks_the_date_before_changing_anything() {
        let mut d = desk();
        open(&mut d.cx, &ann(), Kind::Case, "t", Some(&n("VU#409117"))).unwrap();
        let bad = PolicyChange {
            require_signed_statements: Some(true),
            publication_date: Some("next tuesday".into()),
            discussion: None,
        };
        let err = set(&mut d.cx, &ann(), &n("VU#409117"), &bad).unwrap_err();
        assert_eq!(err.kind().http_status(), 400);
        let unchanged = set(&mut d.cx, &ann(), &n("VU#409117"), &PolicyChange::default()).unwrap();
        assert!(!unchanged.require_signed_statements);
        let good = PolicyChange {
            require_signed_statements: None,
            publication_date: Some("2026-03-01".into()),
            discussion: None,
        };
        let p = set(&mut d.cx, &ann(), &n("VU#409117"), &good).unwrap();
        assert_eq!(p.publication_date.as_deref(), Some("2026-03-01T00:00:00Z"));
        let actions: Vec<String> =
            d.cx.store()
                .audit_entries(None, None)
                .unwrap()
                .into_iter()
                .map(|e| format!("{} {}", e.action, e.detail))
                .collect();
        assert_eq!(
            actions,
            vec![
                "open case \"t\"".to_string(),
                "set publication_date=2026-03-01T00:00:00Z".to_string()
            ]
        );
    }

    #[test]
    fn an_existing_number_is_a_conflict() {
        let mut d = desk();
        open(&mut d.cx, &ann(), Kind::Case, "t", Some(&n("VU#409117"))).unwrap();
        let err = open(&mut d.cx, &ann(), Kind::Case, "t", Some(&n("VU#409117"))).unwrap_err();
        assert_eq!(err.kind().http_status(), 409);
        assert!(err.to_string().contains("casegate show VU#409117"), "{err}");
        assert_eq!(d.cx.store().audit_entries(None, None).unwrap().len(), 1);
    }
}
