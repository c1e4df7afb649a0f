//! The directory of organizations across cases: add one, its contacts and keys, its groups,
//! whether it stays anonymous; list and show; bring one (with all its contacts) into a case.

use chrono::Utc;

use super::participants::{KeyData, parse_certs, release_after_import, store_certs};
use super::{Actor, Context, OpsError, audit_record};
use crate::keyring::{self, CertSummary};
use crate::outbox::QueuedCopy;
use crate::store::{Contact, Org, StoreError};
use crate::tracking::{Kind, TrackingNumber};

/// An organization with how much it holds (`org list --json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrgSummary {
    #[serde(flatten)]
    pub org: Org,
    pub contacts: usize,
    pub keys: usize,
    /// Open cases it takes part in.
    pub open_cases: usize,
}

/// Adds an organization, in the groups given.
pub fn add(
    cx: &mut Context,
    actor: &Actor,
    name: &str,
    groups: &[String],
) -> Result<Org, OpsError> {
    actor.may_change("add organizations")?;
    Ok(cx.store_mut().atomically(|s| {
        let org = s.create_org(name, groups, Utc::now())?;
        s.record_audit(&audit_record(
            actor,
            "org add",
            None,
            None,
            format!("{}{}", org.name, groups_text(&org.groups)),
        ))?;
        Ok::<_, StoreError>(org)
    })?)
}

fn groups_text(groups: &[String]) -> String {
    if groups.is_empty() {
        String::new()
    } else {
        format!(" (groups {})", groups.join(", "))
    }
}

/// The organization named `name`, or a not-found error that says what to do.
pub(crate) fn named(cx: &Context, name: &str) -> Result<Org, OpsError> {
    cx.store().org_by_name(name)?.ok_or_else(|| {
        OpsError::NotFound(format!(
            "no organization {name:?}; see `casegate org list`, or add it with `casegate org add {name:?}`"
        ))
    })
}

/// A contact added to an organization (`org contact add --json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrgContactAdded {
    pub org: String,
    pub address: String,
    /// Keys bound to the contact now.
    pub keys: Vec<String>,
    /// Open cases of the organization the contact joined now.
    pub joined: Vec<TrackingNumber>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Held copies this key let go out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<QueuedCopy>,
}

/// Adds a contact to an organization — it joins the organization's open cases — binding its
/// key when given, and the organization's keys whose user IDs name the address.
pub fn add_contact(
    cx: &mut Context,
    actor: &Actor,
    org: &str,
    address: &str,
    key: Option<KeyData<'_>>,
) -> Result<OrgContactAdded, OpsError> {
    actor.may_change("add contacts")?;
    let org = named(cx, org)?;
    let address_l = address.trim().to_lowercase();
    let checks_before = crate::signature_cache::snapshot();
    let certs = key.map(parse_certs).transpose()?;
    let mut warnings = Vec::new();
    let mut given: Vec<CertSummary> = Vec::new();
    if let Some(certs) = &certs {
        let summaries: Vec<CertSummary> = certs.iter().map(keyring::summarize).collect();
        // The certificate for this address; else the first, with a warning.
        let chosen = summaries
            .iter()
            .find(|s| s.emails.contains(&address_l))
            .or_else(|| summaries.first())
            .cloned();
        if let Some(c) = chosen {
            if !c.emails.contains(&address_l) {
                warnings.push(format!(
                    "certificate {} has no user ID for {address_l}; its signatures will not count as `good` for mail from {address_l}",
                    c.fingerprint
                ));
            }
            given.push(c);
        }
    }
    // The organization's keys already stored whose user IDs name this address.
    let mut matching = Vec::new();
    {
        let org_keys = cx.store().org_keys(org.id)?;
        let keyring = cx.keyring()?;
        for fpr in org_keys {
            if let Some(c) = keyring.cert(&fpr)
                && keyring::summarize(c).emails.contains(&address_l)
            {
                matching.push(fpr);
            }
        }
    }
    let (contact, joined) = cx.store_mut().atomically(|s| {
        if let Some(certs) = &certs {
            store_certs(s, certs, &checks_before)?;
        }
        let (_, joined) = s.add_org_contact(org.id, address, Utc::now())?;
        for fpr in given.iter().map(|c| &c.fingerprint).chain(&matching) {
            s.bind_org_key(org.id, fpr, Some(address))?;
        }
        let contact = s
            .org_contacts(org.id)?
            .into_iter()
            .find(|c| c.address == address_l)
            .ok_or_else(|| OpsError::Internal("the contact vanished".into()))?;
        s.record_audit(&audit_record(
            actor,
            "org contact add",
            None,
            None,
            format!(
                "{} {}{}{}",
                org.name,
                contact.address,
                if contact.key_fingerprints.is_empty() {
                    String::new()
                } else {
                    format!(" keys {}", contact.key_fingerprints.join(", "))
                },
                if joined.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; joined {}",
                        joined
                            .iter()
                            .map(|t| t.number.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        ))?;
        Ok::<_, OpsError>((contact, joined))
    })?;
    let released = if contact.key_fingerprints.is_empty() {
        Vec::new()
    } else {
        release_after_import(cx.store_mut(), actor)?
    };
    Ok(OrgContactAdded {
        org: org.name,
        address: contact.address,
        keys: contact.key_fingerprints,
        joined: joined.into_iter().map(|t| t.number).collect(),
        warnings,
        released,
    })
}

/// Keys imported for an organization (`org key import --json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrgKeysImported {
    pub org: String,
    pub certs: Vec<CertSummary>,
    /// Contacts each key was bound to (by the addresses in its user IDs).
    pub bound: Vec<KeyBinding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<QueuedCopy>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyBinding {
    pub fingerprint: String,
    pub address: String,
}

/// Imports certificates as keys of the organization: each counts for the organization's
/// statements, and is bound to every contact of it whose address a user ID names.
pub fn import_keys(
    cx: &mut Context,
    actor: &Actor,
    org: &str,
    key: KeyData<'_>,
) -> Result<OrgKeysImported, OpsError> {
    actor.may_change("import keys")?;
    let org = named(cx, org)?;
    let checks_before = crate::signature_cache::snapshot();
    let certs = parse_certs(key)?;
    let contacts = cx.store().org_contacts(org.id)?;
    let (summaries, bound) = cx.store_mut().atomically(|s| {
        let summaries = store_certs(s, &certs, &checks_before)?;
        let mut bound = Vec::new();
        for c in &summaries {
            let mut any = false;
            for contact in contacts.iter().filter(|k| c.emails.contains(&k.address)) {
                s.bind_org_key(org.id, &c.fingerprint, Some(&contact.address))?;
                bound.push(KeyBinding {
                    fingerprint: c.fingerprint.clone(),
                    address: contact.address.clone(),
                });
                any = true;
            }
            if !any {
                s.bind_org_key(org.id, &c.fingerprint, None)?;
            }
        }
        s.record_audit(&audit_record(
            actor,
            "org key import",
            None,
            None,
            format!(
                "{}: {}",
                org.name,
                summaries
                    .iter()
                    .map(|c| format!("{} {}", c.fingerprint, c.user_ids.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ))?;
        Ok::<_, OpsError>((summaries, bound))
    })?;
    let warnings = summaries
        .iter()
        .filter(|c| !bound.iter().any(|b| b.fingerprint == c.fingerprint))
        .map(|c| {
            format!(
                "key {} names no contact of {} ({}); it counts for the organization's statements but no mail is encrypted to it",
                c.fingerprint,
                org.name,
                if c.emails.is_empty() { "no email in its user IDs".to_string() } else { c.emails.join(", ") }
            )
        })
        .collect();
    let released = release_after_import(cx.store_mut(), actor)?;
    Ok(OrgKeysImported {
        org: org.name,
        certs: summaries,
        bound,
        warnings,
        released,
    })
}

/// Every organization (of one group), by name.
pub fn list(
    cx: &Context,
    _actor: &Actor,
    group: Option<&str>,
) -> Result<Vec<OrgSummary>, OpsError> {
    let store = cx.store();
    store
        .orgs(group)?
        .into_iter()
        .map(|org| {
            let contacts = store.org_contacts(org.id)?.len();
            let keys = store.org_keys(org.id)?.len();
            let open_cases = store
                .org_threads(org.id)?
                .iter()
                .filter(|t| t.thread.kind == Kind::Case && t.thread.status == "open")
                .count();
            Ok(OrgSummary {
                org,
                contacts,
                keys,
                open_cases,
            })
        })
        .collect()
}

/// A key as `org show` shows it: validity and expiry now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyView {
    pub fingerprint: String,
    /// `valid`, `expired`, `revoked`, `no encryption key`, or `not imported`.
    pub validity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertSummary>,
}

/// One contact with its keys.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContactView {
    pub address: String,
    pub keys: Vec<KeyView>,
}

/// A case the organization takes part in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseRef {
    pub number: TrackingNumber,
    pub title: String,
    pub role: String,
    pub discussion: String,
}

/// One organization in full (`org show --json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrgView {
    #[serde(flatten)]
    pub org: Org,
    pub contacts: Vec<ContactView>,
    /// Every key of the organization (its contacts' and its own).
    pub keys: Vec<KeyView>,
    pub open_cases: Vec<CaseRef>,
}

pub fn show(cx: &mut Context, _actor: &Actor, name: &str) -> Result<OrgView, OpsError> {
    let org = named(cx, name)?;
    let contacts = cx.store().org_contacts(org.id)?;
    let keys = cx.store().org_keys(org.id)?;
    let threads = cx.store().org_threads(org.id)?;
    let keyring = cx.keyring()?;
    let view = |fpr: &str| {
        let cert = keyring.cert(fpr).map(keyring::summarize);
        KeyView {
            fingerprint: fpr.to_string(),
            validity: match &cert {
                None => "not imported".into(),
                Some(c) if c.revoked => "revoked".into(),
                Some(c) if c.expired => "expired".into(),
                Some(c) if !c.can_encrypt => "no encryption key".into(),
                Some(_) => "valid".into(),
            },
            cert,
        }
    };
    Ok(OrgView {
        contacts: contacts
            .iter()
            .map(|c| ContactView {
                address: c.address.clone(),
                keys: c.key_fingerprints.iter().map(|f| view(f)).collect(),
            })
            .collect(),
        keys: keys.iter().map(|f| view(f)).collect(),
        open_cases: threads
            .into_iter()
            .filter(|t| t.thread.kind == Kind::Case && t.thread.status == "open")
            .map(|t| CaseRef {
                number: t.thread.number,
                title: t.thread.title,
                role: t.role,
                discussion: t.thread.discussion,
            })
            .collect(),
        org,
    })
}

/// What `org set` may change.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct OrgChange {
    /// Relayed mail from it names "a participant", never the organization.
    pub anonymous: Option<bool>,
    #[serde(default)]
    pub add_groups: Vec<String>,
    #[serde(default)]
    pub remove_groups: Vec<String>,
}

pub fn set(
    cx: &mut Context,
    actor: &Actor,
    name: &str,
    change: &OrgChange,
) -> Result<Org, OpsError> {
    let org = named(cx, name)?;
    if change.anonymous.is_none() && change.add_groups.is_empty() && change.remove_groups.is_empty()
    {
        return Ok(org);
    }
    actor.may_change("change organizations")?;
    let mut what = Vec::new();
    if let Some(a) = change.anonymous {
        what.push(format!("anonymous={a}"));
    }
    if !change.add_groups.is_empty() {
        what.push(format!("groups +{}", change.add_groups.join(",")));
    }
    if !change.remove_groups.is_empty() {
        what.push(format!("groups -{}", change.remove_groups.join(",")));
    }
    Ok(cx.store_mut().atomically(|s| {
        if let Some(a) = change.anonymous {
            s.set_org_anonymous(org.id, a)?;
        }
        s.change_org_groups(org.id, &change.add_groups, &change.remove_groups)?;
        s.record_audit(&audit_record(
            actor,
            "org set",
            None,
            None,
            format!("{}: {}", org.name, what.join(", ")),
        ))?;
        s.org_by_id(org.id)
    })?)
}

/// An organization brought into a thread (`participant add NUMBER --org ORG`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct OrgJoined {
    pub thread: TrackingNumber,
    pub org: String,
    pub role: String,
    /// The thread's contacts of the organization, with their keys.
    pub contacts: Vec<Contact>,
}

/// Brings organization `org` into thread `n` with all its contacts (and their keys).
pub fn join(
    cx: &mut Context,
    actor: &Actor,
    n: &TrackingNumber,
    org: &str,
    role: &str,
) -> Result<OrgJoined, OpsError> {
    actor.may_change("add participants")?;
    check_role(role)?;
    let org = named(cx, org)?;
    let t = cx.own_thread(n)?;
    let contacts = cx.store_mut().atomically(|s| {
        let contacts = s.join_thread(t.id, org.id, role)?;
        s.record_audit(&audit_record(
            actor,
            "participant add",
            Some(&t.number),
            None,
            format!(
                "{} ({role}) with {}",
                org.name,
                contacts
                    .iter()
                    .map(|c| c.address.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))?;
        Ok::<_, OpsError>(contacts)
    })?;
    if contacts.is_empty() {
        return Err(OpsError::Conflict(format!(
            "{} has no contacts yet, so it cannot take part in {}; add one with `casegate org contact add {:?} ADDRESS`",
            org.name, t.number, org.name
        )));
    }
    Ok(OrgJoined {
        thread: t.number,
        org: org.name,
        role: role.to_string(),
        contacts,
    })
}

pub(crate) fn check_role(role: &str) -> Result<(), OpsError> {
    if !super::participants::ROLES.contains(&role) {
        return Err(OpsError::Invalid(format!(
            "role {role:?} is not one of {}",
            super::participants::ROLES.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{ann, desk};

    #[test]
    fn an_organization_brings_its_contacts_into_a_case_and_later_contacts_join_it() {
        let mut d = desk();
        let cx = &mut d.cx;
        let me = ann();
        add(cx, &me, "FooCorp", &["networking".into()]).unwrap();
        assert!(matches!(
            add(cx, &me, "foocorp", &[]).unwrap_err(),
            OpsError::Conflict(_)
        ));
        add_contact(cx, &me, "FooCorp", "psirt@foocorp.example", None).unwrap();
        let n = TrackingNumber::parse("VU#409117").unwrap();
        crate::ops::threads::open(cx, &me, Kind::Case, "t", Some(&n)).unwrap();
        let joined = join(cx, &me, &n, "foocorp", "vendor").unwrap();
        assert_eq!(joined.contacts.len(), 1);
        let later = add_contact(cx, &me, "FooCorp", "Alice@FooCorp.example", None).unwrap();
        assert_eq!(later.joined, vec![n.clone()]);
        let addresses: Vec<String> = cx
            .store()
            .contacts(cx.store().thread(&n).unwrap().unwrap().id)
            .unwrap()
            .into_iter()
            .map(|c| c.address)
            .collect();
        assert_eq!(
            addresses,
            ["alice@foocorp.example", "psirt@foocorp.example"]
        );
        let shown = show(cx, &me, "FOOCORP").unwrap();
        assert_eq!(shown.org.groups, ["networking"]);
        assert_eq!(shown.open_cases.len(), 1);
        assert_eq!(list(cx, &me, Some("networking")).unwrap().len(), 1);
        assert!(list(cx, &me, Some("storage")).unwrap().is_empty());
        let changed = set(
            cx,
            &me,
            "FooCorp",
            &OrgChange {
                anonymous: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(changed.anonymous);
        assert!(matches!(
            join(cx, &me, &n, "NoSuchOrg", "vendor").unwrap_err(),
            OpsError::NotFound(_)
        ));
    }

    #[test]
    fn mail_never_joins_an_organization_by_the_name_it_claims() {
        use crate::store::{Disposition, MessageSource, NewMessage, NewParticipant};
        let mut d = desk();
        let cx = &mut d.cx;
        let me = ann();
        add(cx, &me, "FooCorp", &[]).unwrap();
        add_contact(cx, &me, "FooCorp", "psirt@foocorp.example", None).unwrap();
        // A stranger writes as "FooCorp <x@evil.example>": a report whose participant is a
        // new organization named after the address, not FooCorp.
        // A new report from `address`, which names itself `claimed`.
        let report = |raw: &'static [u8], claimed: &str, address: &str| NewMessage {
            sender: Some(address.to_lowercase()),
            reason: "t".into(),
            ..NewMessage::inbound(
                raw,
                MessageSource::Stdin,
                Utc::now(),
                Disposition::NewThread {
                    kind: Kind::Report,
                    title: "t".into(),
                    participant: Some(NewParticipant {
                        org: claimed.into(),
                        role: "reporter".into(),
                        address: address.into(),
                    }),
                },
            )
        };
        cx.store_mut()
            .commit_message(&report(b"x", "FooCorp", "x@evil.example"))
            .unwrap();
        let foo = named(cx, "FooCorp").unwrap();
        let foo_contacts: Vec<String> = cx
            .store()
            .org_contacts(foo.id)
            .unwrap()
            .into_iter()
            .map(|c| c.address)
            .collect();
        assert_eq!(foo_contacts, ["psirt@foocorp.example"]);
        let theirs = cx.store().orgs_of_address("x@evil.example").unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].name, "FooCorp <x@evil.example>");

        // FooCorp's own contact writes, whatever name it gives: the new report's participant is
        // FooCorp and its contact the directory's, not a second one.
        let m = report(b"y", "PSIRT team", "PSIRT@foocorp.example");
        let number = cx.store_mut().commit_message(&m).unwrap().thread.unwrap();
        let report = cx.store().resolve_thread(&number).unwrap().unwrap();
        let contacts = cx.store().contacts(report.id).unwrap();
        let directory = cx.store().org_contacts(foo.id).unwrap();
        assert_eq!(directory.len(), 1);
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].org, "FooCorp");
        assert_eq!(contacts[0].org_id, foo.id);
        assert_eq!(contacts[0].address, "psirt@foocorp.example");
        assert_eq!(contacts[0].org_contact_id, directory[0].id);
    }
}
