//! Participants' keys over time: what expires soon, key changes waiting for review (and
//! accepting them), and looking contacts' keys up by WKD (`key refresh`).

use chrono::Utc;

use super::notices::release_held;
use super::participants::describe_offer;
use super::{Actor, Context, OpsError, audit_record};
use crate::keyring::{self, CertSummary};
use crate::outbox::QueuedCopy;
use crate::store::KeyChange;
use crate::trust::keys::{self as key_life, BindTo, Expiring, Offered, Source};
use crate::trust::wkd::{WkdClient, WkdError};

/// The coordinator's key and the keys bound to contacts that expire within `days` (or have
/// expired), soonest first (`key list --expiring DAYS`).
pub fn expiring(cx: &mut Context, _actor: &Actor, days: u32) -> Result<Vec<Expiring>, OpsError> {
    let bound = key_life::bound_certs(cx.store())?;
    let keyring = cx.keyring()?;
    Ok(key_life::expiring(
        keyring.coordinator(),
        &bound,
        days,
        Utc::now(),
    ))
}

/// A key change as `key changes` shows it: the change and the new key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyChangeView {
    #[serde(flatten)]
    pub change: KeyChange,
    /// The offered key as stored (user IDs, expiry, usable or not).
    pub key: Option<CertSummary>,
}

/// Key changes waiting for an analyst (pending: copies to the address are held; offered: an
/// Autocrypt key, listed only), or with `all` the accepted ones too.
pub fn changes(cx: &Context, _actor: &Actor, all: bool) -> Result<Vec<KeyChangeView>, OpsError> {
    let store = cx.store();
    store
        .key_changes(!all)?
        .into_iter()
        .map(|change| {
            let key = store
                .cert(&change.fingerprint)?
                .and_then(|c| keyring::parse_certs(&c.public_cert).ok())
                .and_then(|certs| certs.into_iter().next())
                .map(|c| keyring::summarize(&c));
            Ok(KeyChangeView { change, key })
        })
        .collect()
}

/// A key change accepted (`key accept`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyAccepted {
    pub change: KeyChange,
    /// Held copies sealed and queued now (to this address with the new key, and any other
    /// whose key the change made usable).
    pub released: Vec<QueuedCopy>,
}

/// An analyst accepts that `fingerprint` is `address`'s key: it is bound to every contact with
/// the address and used from now on; copies held for the change are sealed to it and queued.
pub fn accept(
    cx: &mut Context,
    actor: &Actor,
    address: &str,
    fingerprint: &str,
) -> Result<KeyAccepted, OpsError> {
    actor.may_change("accept key changes")?;
    let change = cx.store_mut().atomically(|s| {
        let change = s.accept_key_change(address, fingerprint, actor.name(), Utc::now())?;
        s.record_audit(&audit_record(
            actor,
            "key accept",
            None,
            None,
            format!(
                "{} is the key of {} (was: {}; {} from {})",
                change.fingerprint,
                change.address,
                if change.previous.is_empty() {
                    "no key".to_string()
                } else {
                    change.previous.join(", ")
                },
                change.status,
                change.source
            ),
        ))?;
        Ok::<_, OpsError>(change)
    })?;
    let released = release_held(cx.store_mut(), actor, None, "outbox release")?
        .into_iter()
        .filter(|c| c.status != "held")
        .collect();
    Ok(KeyAccepted { change, released })
}

/// What a WKD lookup did for one address.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refreshed {
    pub address: String,
    /// `unchanged | merged | bound | held-for-review | not-found | no-key-for-address | error`.
    pub outcome: &'static str,
    pub fingerprint: Option<String>,
    pub detail: String,
}

/// Looks contacts' keys up by WKD — one address, every contact of one organisation, or every
/// contact — and merges what it finds: the same key merges (new subkeys, later expiry), a
/// first key is bound, a different key waits for review (copies to the address held). Each
/// address that changed is audited; copies a new key made sendable are released.
pub fn refresh(
    cx: &mut Context,
    actor: &Actor,
    target: Option<&str>,
) -> Result<Vec<Refreshed>, OpsError> {
    actor.may_change("refresh keys")?;
    let all = cx.store().contact_addresses()?;
    let mut addresses: Vec<String> = match target.map(str::trim) {
        None | Some("") => all.into_iter().map(|(a, _)| a).collect(),
        Some(t) if t.contains('@') => {
            let t = t.to_lowercase();
            if !all.iter().any(|(a, _)| *a == t) {
                return Err(OpsError::NotFound(format!(
                    "{t} is no contact of any thread; add it with `casegate participant add`"
                )));
            }
            vec![t]
        }
        Some(org) => {
            let found: Vec<String> = all
                .into_iter()
                .filter(|(_, o)| o.eq_ignore_ascii_case(org))
                .map(|(a, _)| a)
                .collect();
            if found.is_empty() {
                return Err(OpsError::NotFound(format!(
                    "no organisation {org:?} among the participants; give an organisation or an address"
                )));
            }
            found
        }
    };
    addresses.dedup();
    let client = WkdClient::new(&cx.settings().config.keys.wkd).map_err(|e| match e {
        WkdError::Config(m) => OpsError::Invalid(m),
        e => OpsError::Internal(e.to_string()),
    })?;
    let lookups = client.lookup_all(&addresses);
    let checks_before = crate::signature_cache::snapshot();
    let mut out = Vec::new();
    let mut changed = false;
    for l in lookups {
        let bytes = match l.found {
            Err(e) => {
                out.push(Refreshed {
                    address: l.address,
                    outcome: "error",
                    fingerprint: None,
                    detail: e.to_string(),
                });
                continue;
            }
            Ok(None) => {
                out.push(Refreshed {
                    address: l.address,
                    outcome: "not-found",
                    fingerprint: None,
                    detail: "no key published by WKD".into(),
                });
                continue;
            }
            Ok(Some(b)) => b,
        };
        let certs = match keyring::parse_certs(&bytes) {
            Ok(c) => c,
            Err(e) => {
                out.push(Refreshed {
                    address: l.address,
                    outcome: "error",
                    fingerprint: None,
                    detail: format!("WKD answered with no usable key: {e}"),
                });
                continue;
            }
        };
        let address = l.address.clone();
        // What is already stored, unchanged, as the address's key: nothing to do or audit.
        let accepted = cx.store().address_keys(&address)?;
        if certs.iter().all(|c| {
            accepted.contains(&c.fingerprint().to_hex()) && key_life::unchanged(cx.store(), c)
        }) {
            out.push(Refreshed {
                address: l.address,
                outcome: "unchanged",
                fingerprint: certs.first().map(|c| c.fingerprint().to_hex()),
                detail: "WKD has the key as stored".into(),
            });
            continue;
        }
        let offered = cx.store_mut().atomically(|s| {
            let offered = key_life::offer(
                s,
                &address,
                &certs,
                Source::Wkd,
                BindTo::Address,
                Utc::now(),
            )
            .map_err(|e| OpsError::Internal(format!("cannot store the key: {e}")))?;
            if !offered.is_empty() {
                s.record_audit(&audit_record(
                    actor,
                    "key refresh",
                    None,
                    None,
                    format!(
                        "{address} by WKD: {}",
                        offered
                            .iter()
                            .map(describe_offer)
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                ))?;
                crate::signature_cache::save_since(s, &checks_before)?;
            }
            Ok::<_, OpsError>(offered)
        })?;
        if offered.is_empty() {
            out.push(Refreshed {
                address: l.address.clone(),
                outcome: "no-key-for-address",
                fingerprint: None,
                detail: "WKD answered with keys that carry no user ID for this address".into(),
            });
        }
        for o in offered {
            changed = true;
            let detail = describe_offer(&o);
            let (outcome, fingerprint) = match o {
                Offered::Merged { fingerprint } => ("merged", fingerprint),
                Offered::Bound { fingerprint, .. } => ("bound", fingerprint),
                Offered::Stored { fingerprint } => ("merged", fingerprint),
                Offered::Held { change } => ("held-for-review", change.fingerprint),
            };
            out.push(Refreshed {
                address: l.address.clone(),
                outcome,
                fingerprint: Some(fingerprint),
                detail,
            });
        }
    }
    if changed {
        release_held(cx.store_mut(), actor, None, "outbox release")?;
    }
    Ok(out)
}
