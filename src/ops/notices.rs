//! Mail out: notices to a thread's participants, the outbox, and held copies released once a
//! key is there.

use super::orgs::OrgJoined;
use super::{Actor, Context, OpsError, Page, Paged, audit_record};
use crate::app;
use crate::outbox::relay::{RelayPolicy, Relayed};
use crate::outbox::{self, QueuedCopy, Selection};
use crate::store::outbox::{AttemptRow, OutboxFilter, OutboxRow};
use crate::store::{Store, Thread};
use crate::tracking::TrackingNumber;

/// What to send (`notify`).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct NoticeRequest {
    /// The notice text.
    pub body: String,
    /// Default: the thread's title.
    pub subject: Option<String>,
    /// An organisation, `all`, or `group:NAME` (the group's organizations are added to the
    /// case with all their contacts first).
    pub to: String,
    /// Message-ID of the message this answers.
    pub in_reply_to: Option<String>,
}

/// The copies of one notice (`notify --json` prints each copy on its own line).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Notified {
    /// Organizations of the group that were added to the case for this notice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<OrgJoined>,
    pub copies: Vec<QueuedCopy>,
    /// What the person should know, e.g. that no SMTP server is configured yet.
    pub notes: Vec<String>,
}

/// Queues one copy of a notice per contact of the chosen participants of thread `n`, each
/// encrypted to that contact's key and signed once by the coordinator; contacts without a
/// usable key get a held copy. All copies and the audit record are one transaction.
pub fn notify(
    cx: &mut Context,
    actor: &Actor,
    n: &TrackingNumber,
    request: &NoticeRequest,
) -> Result<Notified, OpsError> {
    actor.may_change("send notices")?;
    let in_reply_to = request
        .in_reply_to
        .as_deref()
        .map(|id| {
            crate::header::MessageId::parse(id).map_err(|e| {
                OpsError::Invalid(format!(
                    "in-reply-to {id:?} is not one Message-ID ({e}); give one like '<id@host.example>'"
                ))
            })
        })
        .transpose()?;
    if request.body.trim().is_empty() {
        return Err(OpsError::Invalid(
            "the notice body is empty; write the notice text first".into(),
        ));
    }
    let t = cx.thread(n)?;
    let coordinator = app::coordinator_key(cx.settings())?.ok_or_else(|| {
        OpsError::Conflict("no coordinator key yet; run `casegate init` first".into())
    })?;
    let (selection, added) = match request.to.trim().strip_prefix("group:") {
        Some(group) => add_group(cx, actor, &t, group)?,
        None => (Selection::parse(&request.to), Vec::new()),
    };
    let subject = request.subject.as_deref().unwrap_or(&t.title);
    let audit = audit_record(
        actor,
        "notify",
        Some(&t.number),
        None,
        format!("to {}: {subject:?}", request.to),
    );
    let settings = cx.settings().clone();
    let copies = outbox::notify_audited(
        cx.store_mut(),
        &coordinator,
        &t,
        &selection,
        &outbox::compose::Notice {
            thread: t.number.as_str(),
            subject,
            body: &request.body,
            in_reply_to: in_reply_to.as_ref(),
            automatic: false,
        },
        &settings.config.outbox,
        &settings.config.coordinator.address,
        Some(&audit),
    )?;
    let mut notes = Vec::new();
    if settings.config.smtp.is_none() {
        notes.push(
            "no [smtp] configured; queued copies are sent once it is and `casegate serve` runs"
                .into(),
        );
    }
    Ok(Notified {
        added,
        copies,
        notes,
    })
}

/// Adds every organization of `group` that has contacts to thread `t` (as a vendor, with all
/// its contacts) — one transaction, audited — and selects them for the notice. Only the
/// organizations newly added are listed.
fn add_group(
    cx: &mut Context,
    actor: &Actor,
    t: &Thread,
    group: &str,
) -> Result<(Selection, Vec<OrgJoined>), OpsError> {
    let orgs = cx.store().orgs(Some(group))?;
    if orgs.is_empty() {
        return Err(OpsError::NotFound(format!(
            "no organization is in group {group:?}; see `casegate org list`, and add some with `casegate org set ORG --add-group {group}`"
        )));
    }
    let before: Vec<i64> = cx
        .store()
        .contacts(t.id)?
        .iter()
        .map(|c| c.org_id)
        .collect();
    let joined = cx.store_mut().atomically(|s| {
        let mut joined = Vec::new();
        let mut names = Vec::new();
        for org in &orgs {
            if s.org_contacts(org.id)?.is_empty() {
                continue;
            }
            let contacts = s.join_thread(t.id, org.id, "vendor")?;
            names.push(org.name.clone());
            if !before.contains(&org.id) {
                joined.push(OrgJoined {
                    thread: t.number.clone(),
                    org: org.name.clone(),
                    role: "vendor".into(),
                    contacts,
                });
            }
        }
        if !joined.is_empty() {
            s.record_audit(&audit_record(
                actor,
                "participant add",
                Some(&t.number),
                None,
                format!(
                    "group {group}: {}",
                    joined
                        .iter()
                        .map(|j| j.org.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))?;
        }
        Ok::<_, OpsError>((names, joined))
    })?;
    let (names, joined) = joined;
    if names.is_empty() {
        return Err(OpsError::Conflict(format!(
            "no organization of group {group:?} has a contact; add them with `casegate org contact add ORG ADDRESS`"
        )));
    }
    Ok((Selection::Orgs(names), joined))
}

/// Composes and queues the relays the case discussions owe (see `outbox::relay`); those that
/// cannot be made now stay owed.
pub fn pay_owed_relays(cx: &mut Context, actor: &Actor) -> Result<Vec<Relayed>, OpsError> {
    if actor.read_only() || cx.store().owed_relays()?.is_empty() {
        return Ok(Vec::new());
    }
    let settings = cx.settings().clone();
    let (store, keyring) = cx.store_and_keyring()?;
    Ok(outbox::relay::pay_owed(
        store,
        keyring,
        &RelayPolicy {
            from: &settings.config.coordinator.address,
            private_address: settings.config.coordinator.private_address.as_deref(),
            outbox: &settings.config.outbox,
            actor: actor.name(),
        },
    )?)
}

/// Who would get what if a notice went to `to` (an organisation or `all`) of thread `n` now:
/// per contact, encrypted to which key, or held and why. Signs, seals and queues nothing
/// (`notify --dry-run`, the web page's preview).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NoticePreview {
    pub thread: TrackingNumber,
    pub to: String,
    pub recipients: Vec<outbox::PlannedCopy>,
    /// How many would get an encrypted copy, and how many would be held.
    pub encrypted: usize,
    pub held: usize,
}

pub fn preview(
    cx: &mut Context,
    _actor: &Actor,
    n: &TrackingNumber,
    to: &str,
) -> Result<NoticePreview, OpsError> {
    let t = cx.thread(n)?;
    let settings = cx.settings().clone();
    let recipients = outbox::preview(
        cx.store_mut(),
        &t,
        &Selection::parse(to),
        &settings.config.outbox,
        &settings.config.coordinator.address,
    )?;
    let held = recipients.iter().filter(|r| r.status == "held").count();
    Ok(NoticePreview {
        thread: t.number,
        to: to.to_string(),
        encrypted: recipients.len() - held,
        held,
        recipients,
    })
}

/// One outbound copy, with its SMTP attempts when asked for (`outbox list --json`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    #[serde(flatten)]
    pub copy: OutboxRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptRow>>,
}

/// The statuses a copy can have.
pub const STATUSES: &[&str] = &["queued", "sent", "retrying", "held", "dead", "bounced"];

/// Outbound copies, oldest first: of one thread and/or one status; with `attempts`, each
/// SMTP attempt and reply too.
pub fn outbox(
    cx: &Context,
    _actor: &Actor,
    n: Option<&TrackingNumber>,
    status: Option<&str>,
    attempts: bool,
    page: Page,
) -> Result<Paged<OutboxEntry>, OpsError> {
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(OpsError::Invalid(format!(
            "status {s:?} is not one of {}",
            STATUSES.join(", ")
        )));
    }
    let thread_id = n.map(|n| cx.thread(n).map(|t| t.id)).transpose()?;
    let store = cx.store();
    let filter = OutboxFilter {
        thread_id,
        status: status.map(str::to_string),
    };
    let (rows, total) = store.outbox_rows_page(&filter, page.offset, page.limit)?;
    let items = rows
        .into_iter()
        .map(|copy| {
            let attempt_log = if attempts {
                Some(store.outbox_attempts(copy.id)?)
            } else {
                None
            };
            Ok(OutboxEntry { copy, attempt_log })
        })
        .collect::<Result<Vec<_>, OpsError>>()?;
    Ok(page.of(items, total))
}

/// Seals and queues the held copies (of one thread, or all) whose contact now has a usable
/// key; the others stay held with the current reason. Returns every held copy looked at.
pub fn release(
    cx: &mut Context,
    actor: &Actor,
    n: Option<&TrackingNumber>,
) -> Result<Vec<QueuedCopy>, OpsError> {
    actor.may_change("release held copies")?;
    let thread_id = n.map(|n| cx.thread(n).map(|t| t.id)).transpose()?;
    release_held(cx.store_mut(), actor, thread_id, "outbox release")
}

/// Releases held copies and audits each thread's released ones — one transaction.
pub(crate) fn release_held(
    store: &mut Store,
    actor: &Actor,
    thread_id: Option<i64>,
    action: &str,
) -> Result<Vec<QueuedCopy>, OpsError> {
    store.atomically(|s| {
        let copies = outbox::release_held(s, thread_id)?;
        let mut by_thread: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for c in copies.iter().filter(|c| c.status == "queued") {
            by_thread
                .entry(c.thread.as_str())
                .or_default()
                .push(c.address.as_str());
        }
        for (thread, released) in by_thread {
            s.record_audit(&audit_record(
                actor,
                action,
                TrackingNumber::parse(thread).ok().as_ref(),
                None,
                format!(
                    "{} held cop(ies) sealed and queued: {}",
                    released.len(),
                    released.join(", ")
                ),
            ))?;
        }
        Ok(copies)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::followup::tests::key_for;
    use crate::ops::orgs;
    use crate::ops::participants::KeyData;
    use crate::ops::testing::{ann, desk};
    use crate::store::MessageSource;
    use crate::tracking::Kind;

    /// What `cert` (a recipient's TSK) reads in the copies queued for `addr`.
    fn read_copies(cx: &Context, addr: &str, cert: &sequoia_openpgp::Cert) -> Vec<String> {
        let coordinator = crate::app::coordinator_key(cx.settings()).unwrap().unwrap();
        let keyring = crate::keyring::Keyring::new(
            Some(cert.clone()),
            vec![coordinator.strip_secret_key_material()],
        );
        cx.store()
            .due_copies(chrono::Utc::now(), 100)
            .unwrap()
            .into_iter()
            .filter(|c| c.address == addr)
            .map(|c| {
                let opened = crate::open::open(&c.raw, &keyring).unwrap();
                assert!(matches!(
                    opened.signature,
                    crate::open::SignatureFacts::Valid { .. }
                ));
                let text = crate::message::readable(&opened.inner.unwrap()).unwrap();
                format!(
                    "{}\n{}",
                    String::from_utf8_lossy(&c.raw),
                    text.text.unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn a_relay_goes_to_the_other_organizations_only_and_never_names_an_anonymous_one() {
        let mut d = desk();
        let cx = &mut d.cx;
        let me = ann();
        let n = TrackingNumber::parse("VU#409117").unwrap();
        crate::ops::threads::open(cx, &me, Kind::Case, "t", Some(&n)).unwrap();
        let mut tsks = std::collections::HashMap::new();
        for (org, addr) in [
            ("AnonCorp", "psirt@anoncorp.example"),
            ("AnonCorp", "bob@anoncorp.example"),
            ("Named", "sec@named.example"),
        ] {
            if orgs::named(cx, org).is_err() {
                orgs::add(cx, &me, org, &[]).unwrap();
            }
            let (armored, tsk) = key_for(addr);
            orgs::add_contact(
                cx,
                &me,
                org,
                addr,
                Some(KeyData {
                    bytes: armored.as_bytes(),
                    from: "k.asc",
                }),
            )
            .unwrap();
            orgs::join(cx, &me, &n, org, "vendor").unwrap();
            tsks.insert(addr, tsk);
        }
        orgs::set(
            cx,
            &me,
            "AnonCorp",
            &orgs::OrgChange {
                anonymous: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        crate::ops::threads::set(
            cx,
            &me,
            &n,
            &crate::ops::threads::PolicyChange {
                discussion: Some("relay".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let mail = |id: &str, subject: &str, body: &str| {
            format!(
                "From: Bob Smith <bob@anoncorp.example>\r\nTo: cert@example.test\r\n\
                 Subject: {subject}\r\nMessage-ID: <{id}@anoncorp.example>\r\n\r\n{body}"
            )
        };
        let out = crate::ops::ingest::ingest(
            cx,
            &me,
            mail(
                "1",
                "Re: VU#409117 AnonCorp results",
                "RELAYED: AnonCorp is affected; Bob Smith, bob@anoncorp.example.\r\n",
            )
            .as_bytes(),
            MessageSource::Stdin,
        )
        .unwrap();
        assert_eq!(
            out.relay.as_deref(),
            Some("owed: to the other participants")
        );
        assert!(cx.store().owed_relays().unwrap().is_empty(), "paid at once");
        let private = crate::ops::ingest::ingest(
            cx,
            &me,
            mail("2", "[Private] VU#409117", "PRIVATE\r\n").as_bytes(),
            MessageSource::Stdin,
        )
        .unwrap();
        assert!(
            private
                .relay
                .as_deref()
                .unwrap()
                .starts_with("not relayed: marked private")
        );

        let rows = cx.store().outbox_rows(&Default::default()).unwrap();
        let to: Vec<&str> = rows.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(
            to,
            ["sec@named.example"],
            "never back to AnonCorp's contacts"
        );
        let copies = read_copies(cx, "sec@named.example", &tsks["sec@named.example"]);
        assert_eq!(copies.len(), 1);
        let copy = &copies[0];
        assert!(copy.contains("A participant wrote"), "{copy}");
        assert!(
            copy.contains("RELAYED: [a participant] is affected"),
            "{copy}"
        );
        for secret in ["anoncorp", "Bob Smith"] {
            assert!(
                !copy.to_lowercase().contains(&secret.to_lowercase()),
                "{secret} in {copy}"
            );
        }
        let audit = cx.store().audit_entries(None, None).unwrap();
        assert_eq!(audit.iter().filter(|a| a.action == "relay").count(), 1);
    }
}
