//! Participants of threads and the OpenPGP certificates bound to them.

use chrono::Utc;

use super::notices::release_held;
use super::{Actor, Context, OpsError, Page, Paged, audit_record};
use crate::keyring::{self, CertSummary};
use crate::outbox::QueuedCopy;
use crate::store::{Contact, KeyChange, Store, time_text};
use crate::tracking::TrackingNumber;
use crate::trust::keys::{self as key_life, BindTo, Offered, Source};

/// The roles a participant can have.
pub const ROLES: &[&str] = &["vendor", "reporter", "coordinator", "other"];

/// A contact to add to a thread (`participant add`).
#[derive(Debug, Clone)]
pub struct NewContact<'a> {
    pub org: &'a str,
    pub email: &'a str,
    /// `vendor | reporter | coordinator | other`.
    pub role: &'a str,
    /// The contact's certificate(s); imported, and the one for `email` bound.
    pub key: Option<KeyData<'a>>,
}

/// OpenPGP certificates as given (armored or binary, one or many), and where they came from
/// (a file name, an upload) for error messages.
#[derive(Debug, Clone, Copy)]
pub struct KeyData<'a> {
    pub bytes: &'a [u8],
    pub from: &'a str,
}

/// A contact added (`participant add --json`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ContactAdded {
    pub thread: TrackingNumber,
    pub org: String,
    pub role: String,
    pub email: String,
    /// Fingerprints of the keys bound to the contact.
    pub keys: Vec<String>,
    /// The key bound by this call, if one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_bound: Option<String>,
    /// Things the person should check (e.g. a key without a user ID for this address).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Copies held for want of a key that this key let go out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub released: Vec<QueuedCopy>,
    /// The address already had another key: this one waits for `key accept`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_change: Option<KeyChange>,
}

/// Adds a contact of organisation `org` to thread `n` (creating the participant), imports and
/// binds its key when given — one transaction with the audit record — then releases copies
/// that were held for want of that key.
pub fn add(
    cx: &mut Context,
    actor: &Actor,
    n: &TrackingNumber,
    contact: &NewContact<'_>,
) -> Result<ContactAdded, OpsError> {
    actor.may_change("add participants")?;
    if !ROLES.contains(&contact.role) {
        return Err(OpsError::Invalid(format!(
            "role {:?} is not one of {}",
            contact.role,
            ROLES.join(", ")
        )));
    }
    let org = contact.org.trim();
    if org.is_empty() {
        return Err(OpsError::Invalid(
            "the organisation is empty; give one with --org".into(),
        ));
    }
    // Every contact address ends up in a To header: it must be one plain addr-spec.
    crate::header::AddrSpec::parse(contact.email.trim()).map_err(|e| {
        OpsError::Invalid(format!(
            "{:?} is not one plain address ({e}); give one like psirt@vendor.example",
            contact.email
        ))
    })?;
    let t = cx.own_thread(n)?;
    // Self-signatures checked from here on (parsing, summarizing) are remembered in the store.
    let checks_before = crate::signature_cache::snapshot();
    let certs = contact.key.map(parse_certs).transpose()?;
    let email_l = contact.email.trim().to_lowercase();
    let mut warnings = Vec::new();
    let chosen = certs.as_ref().and_then(|certs| {
        let summaries: Vec<CertSummary> = certs.iter().map(keyring::summarize).collect();
        let chosen = summaries
            .iter()
            .find(|s| s.emails.contains(&email_l))
            .or_else(|| summaries.first())
            .cloned()?;
        if !chosen.emails.contains(&email_l) {
            warnings.push(format!(
                "certificate {} has no user ID for {}; its signatures will not count as `good` for mail from {}",
                chosen.fingerprint, contact.email, contact.email
            ));
        }
        Some(chosen)
    });
    let fingerprint = chosen.map(|c| c.fingerprint);
    let chosen_cert = certs.as_ref().and_then(|certs| {
        certs
            .iter()
            .find(|c| Some(c.fingerprint().to_hex()) == fingerprint)
            .cloned()
    });
    let (added, offered) = cx.store_mut().atomically(|s| {
        if let Some(certs) = &certs {
            store_certs(s, certs, &checks_before)?;
        }
        s.add_participant(t.id, org, contact.role, contact.email, None)?;
        // Bound now, unless the address already has another key: then it waits for review.
        let offered = match &chosen_cert {
            Some(cert) => key_life::offer_named(
                s,
                contact.email,
                cert,
                Source::ParticipantAdd,
                BindTo::Thread(t.id),
                chrono::Utc::now(),
            )
            .map_err(|e| OpsError::Internal(format!("cannot store the key: {e}")))?,
            None => Vec::new(),
        };
        let c = s
            .contacts(t.id)?
            .into_iter()
            .find(|c| c.address == email_l && c.org == org)
            .ok_or_else(|| OpsError::Internal("the contact vanished".into()))?;
        s.record_audit(&audit_record(
            actor,
            "participant add",
            Some(&t.number),
            None,
            format!(
                "{} ({}) {}{}",
                c.org,
                c.role,
                c.address,
                offered
                    .iter()
                    .map(describe_offer)
                    .map(|d| format!("; {d}"))
                    .collect::<String>()
            ),
        ))?;
        Ok::<_, OpsError>((c, offered))
    })?;
    let key_change = offered.iter().find_map(|o| match o {
        Offered::Held { change } => Some(change.clone()),
        _ => None,
    });
    if let Some(change) = &key_change {
        warnings.push(format!(
            "{} already has another key; {} waits for review: copies to {} are held until `casegate key accept {} {}`",
            change.address, change.fingerprint, change.address, change.address, change.fingerprint
        ));
    }
    let bound = fingerprint.filter(|f| added.key_fingerprints.contains(f));
    let released = if bound.is_some() {
        release_after_import(cx.store_mut(), actor)?
    } else {
        Vec::new()
    };
    Ok(ContactAdded {
        thread: t.number,
        org: added.org,
        role: added.role,
        email: added.address,
        keys: added.key_fingerprints,
        key_bound: bound,
        warnings,
        released,
        key_change,
    })
}

/// One offered key, for an audit record.
pub(crate) fn describe_offer(o: &Offered) -> String {
    match o {
        Offered::Merged { fingerprint } => format!("key {fingerprint} merged"),
        Offered::Bound {
            fingerprint, why, ..
        } => format!("key {fingerprint} bound ({why})"),
        Offered::Held { change } => format!(
            "key {} for {} held for review ({})",
            change.fingerprint, change.address, change.status
        ),
        Offered::Stored { fingerprint } => format!("key {fingerprint} stored"),
    }
}

/// A key within this many days of its end is `expiring`.
pub const EXPIRING_DAYS: i64 = 30;

/// A contact with the state of the keys bound to it (`participant list --json`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ContactKeys {
    #[serde(flatten)]
    pub contact: Contact,
    /// What a notice to this contact would do: `valid` (encrypted), `expiring` (encrypted,
    /// but the key ends within 30 days), `none` (held: no usable key).
    pub key_state: &'static str,
    pub keys: Vec<BoundKey>,
}

/// One key bound to a contact, as of now.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct BoundKey {
    pub fingerprint: String,
    /// `valid | expiring | unusable | missing` (not imported).
    pub state: &'static str,
    /// Why it cannot be used, for `unusable` and `missing`.
    pub reason: Option<String>,
    /// When encryption to it stops working (RFC 3339 UTC), if it expires.
    pub expires: Option<String>,
}

/// Every contact of thread `n` with the keys bound to it and their state now.
pub fn list(
    cx: &mut Context,
    _actor: &Actor,
    n: &TrackingNumber,
    page: Page,
) -> Result<Paged<ContactKeys>, OpsError> {
    let t = cx.thread(n)?;
    let contacts = page.slice(cx.store().contacts(t.id)?);
    let keyring = cx.keyring()?;
    let now = Utc::now();
    let items = contacts
        .items
        .into_iter()
        .map(|contact| {
            let keys: Vec<BoundKey> = contact
                .key_fingerprints
                .iter()
                .map(|f| bound_key(keyring, f, now))
                .collect();
            let key_state = if keys.iter().any(|k| k.state == "valid") {
                "valid"
            } else if keys.iter().any(|k| k.state == "expiring") {
                "expiring"
            } else {
                "none"
            };
            ContactKeys {
                contact,
                key_state,
                keys,
            }
        })
        .collect();
    Ok(Paged {
        items,
        total: contacts.total,
        offset: contacts.offset,
        next_offset: contacts.next_offset,
    })
}

fn bound_key(keyring: &crate::keyring::Keyring, fpr: &str, now: chrono::DateTime<Utc>) -> BoundKey {
    let Some(cert) = keyring.cert(fpr) else {
        return BoundKey {
            fingerprint: fpr.to_string(),
            state: "missing",
            reason: Some("not imported; import it with `casegate key import`".into()),
            expires: None,
        };
    };
    let expires = keyring::expiry(cert);
    let (state, reason) = match keyring::encryption_key_valid(cert) {
        Err(why) => ("unusable", Some(why)),
        Ok(()) if expires.is_some_and(|e| e - now < chrono::Duration::days(EXPIRING_DAYS)) => {
            ("expiring", None)
        }
        Ok(()) => ("valid", None),
    };
    BoundKey {
        fingerprint: cert.fingerprint().to_hex(),
        state,
        reason,
        expires: expires.map(time_text),
    }
}

/// Certificates imported (`key import`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct KeysImported {
    pub certs: Vec<CertSummary>,
    /// Copies held for want of a key that these keys let go out.
    pub released: Vec<QueuedCopy>,
    /// Imported keys that replace a contact's accepted key: they wait for `key accept`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub key_changes: Vec<KeyChange>,
}

/// Imports OpenPGP certificates (armored or binary, one or many; secret parts dropped), then
/// releases copies that were held for want of a key.
pub fn import_keys(
    cx: &mut Context,
    actor: &Actor,
    key: KeyData<'_>,
) -> Result<KeysImported, OpsError> {
    actor.may_change("import keys")?;
    // Self-signatures checked from here on (parsing, summarizing) are remembered in the store.
    let checks_before = crate::signature_cache::snapshot();
    let certs = parse_certs(key)?;
    let (summaries, offered) = cx.store_mut().atomically(|s| {
        let summaries = store_certs(s, &certs, &checks_before)?;
        // A key for a contact's address: the same key merges; another one, not certified by
        // the accepted key, waits for review (and copies to the address are held).
        let contacts: std::collections::HashSet<String> =
            s.contact_addresses()?.into_iter().map(|(a, _)| a).collect();
        let mut offered = Vec::new();
        for cert in &certs {
            for email in keyring::summarize(cert).emails {
                if contacts.contains(&email) {
                    offered.extend(
                        key_life::offer(
                            s,
                            &email,
                            std::slice::from_ref(cert),
                            Source::Import,
                            BindTo::Nobody,
                            chrono::Utc::now(),
                        )
                        .map_err(|e| OpsError::Internal(format!("cannot store the key: {e}")))?,
                    );
                }
            }
        }
        s.record_audit(&audit_record(
            actor,
            "key import",
            None,
            None,
            summaries
                .iter()
                .map(|c| format!("{} {}", c.fingerprint, c.user_ids.join(", ")))
                .chain(offered.iter().map(describe_offer))
                .collect::<Vec<_>>()
                .join("; "),
        ))?;
        Ok::<_, OpsError>((summaries, offered))
    })?;
    let released = release_after_import(cx.store_mut(), actor)?;
    Ok(KeysImported {
        certs: summaries,
        released,
        key_changes: offered
            .into_iter()
            .filter_map(|o| match o {
                Offered::Held { change } => Some(change),
                _ => None,
            })
            .collect(),
    })
}

/// A certificate as `key list` shows it: whose it is and its state.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct KeyListing {
    /// `coordinator` or `participant`.
    pub owner: &'static str,
    #[serde(flatten)]
    pub cert: CertSummary,
    /// Contact addresses it is bound to (the key casegate encrypts to for them).
    pub contacts: Vec<String>,
    /// Addresses for which it is a key change not accepted yet (see `key changes`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_for: Vec<String>,
}

/// The coordinator's certificate, then every imported one.
pub fn list_keys(
    cx: &mut Context,
    _actor: &Actor,
    page: Page,
) -> Result<Paged<KeyListing>, OpsError> {
    let stored = cx.store().certs()?;
    let mut bound: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (address, _) in cx.store().contact_addresses()? {
        for f in cx.store().address_keys(&address)? {
            let v = bound.entry(f).or_default();
            if !v.contains(&address) {
                v.push(address.clone());
            }
        }
    }
    let mut pending: std::collections::HashMap<String, Vec<String>> = Default::default();
    for c in cx.store().key_changes(true)? {
        pending.entry(c.fingerprint).or_default().push(c.address);
    }
    let keyring = cx.keyring()?;
    let mut all = Vec::new();
    if let Some(c) = keyring.coordinator() {
        all.push(KeyListing {
            owner: "coordinator",
            cert: keyring::summarize(c),
            contacts: Vec::new(),
            pending_for: Vec::new(),
        });
    }
    // In import order; a stored certificate that no longer parses is left out (and logged).
    all.extend(
        stored
            .iter()
            .filter_map(|s| keyring.cert(&s.fingerprint))
            .map(|c| {
                let fpr = c.fingerprint().to_hex();
                KeyListing {
                    owner: "participant",
                    cert: keyring::summarize(c),
                    contacts: bound.get(&fpr).cloned().unwrap_or_default(),
                    pending_for: pending.get(&fpr).cloned().unwrap_or_default(),
                }
            }),
    );
    Ok(page.slice(all))
}

/// The ASCII-armored public certificate `fingerprint` (default: the coordinator's).
pub fn export_key(
    cx: &mut Context,
    _actor: &Actor,
    fingerprint: Option<&str>,
) -> Result<String, OpsError> {
    let keyring = cx.keyring()?;
    let cert = match fingerprint {
        None => keyring.coordinator().ok_or_else(|| {
            OpsError::NotFound("no coordinator key yet; run `casegate init` first".into())
        })?,
        Some(f) => {
            let f = f.replace(' ', "");
            match keyring.coordinator() {
                Some(c) if c.fingerprint().to_hex().eq_ignore_ascii_case(&f) => c,
                _ => keyring.cert(&f).ok_or_else(|| {
                    OpsError::NotFound(format!("no certificate {f}; see `casegate key list`"))
                })?,
            }
        }
    };
    keyring::armored_public(cert).map_err(|e| OpsError::Internal(e.to_string()))
}

pub(crate) fn parse_certs(key: KeyData<'_>) -> Result<Vec<keyring::Cert>, OpsError> {
    keyring::parse_certs(key.bytes).map_err(|e| {
        OpsError::Invalid(format!(
            "{} holds no usable OpenPGP certificate ({e}); export one with `gpg --armor --export ADDRESS`",
            key.from
        ))
    })
}

/// Stores certificates (public parts) and the self-signature checks made since `before`, so
/// later commands need not check them again.
pub(crate) fn store_certs(
    s: &mut Store,
    certs: &[keyring::Cert],
    before: &crate::signature_cache::Snapshot,
) -> Result<Vec<CertSummary>, OpsError> {
    // Merged with copies already stored: nothing an older copy lacks is lost.
    let out = keyring::import_certs(s, certs.to_vec())
        .map_err(|e| OpsError::Internal(format!("cannot store the certificate: {e}")))?;
    crate::signature_cache::save_since(s, before)?;
    Ok(out)
}

/// Copies held for want of a key go out as soon as a usable key is there.
pub(crate) fn release_after_import(
    store: &mut Store,
    actor: &Actor,
) -> Result<Vec<QueuedCopy>, OpsError> {
    Ok(release_held(store, actor, None, "outbox release")?
        .into_iter()
        .filter(|c| c.status != "held")
        .collect())
}
