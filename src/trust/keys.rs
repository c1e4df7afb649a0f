//! Participants' keys over time: a key offered for a contact address is merged, bound, or
//! held for review; keys that expire soon are listed.
//!
//! A key change is never used before an analyst accepts it. When an address that already has
//! an accepted key is offered a certificate with a different primary key that no accepted key
//! certified — whether from `key import`, `participant add --key`, WKD, a new report's
//! attachment or an Autocrypt header — the new key is stored but not bound: outbound copies to
//! the address are held ("key changed, not yet accepted"), its signatures on mail from the
//! address are `unknown-key`, and `key changes` lists it until `key accept ADDRESS
//! FINGERPRINT`. Autocrypt keys of known participants are only offers: listed, never used, and
//! they hold nothing (anyone can write an Autocrypt header into a forged mail). A new subkey
//! or a later expiry on an accepted key is merged without review: the store only ever adds to
//! a certificate (`keyring::import_certs`).

use chrono::{DateTime, Utc};
use sequoia_openpgp::Cert;
use sequoia_openpgp::parse::Parse;

use crate::keyring::{self, CertSummary, KeyringError};
use crate::store::{KeyChange, NewKeyChange, Store, StoreError};

/// Where an offered key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `key import`: binds nothing by itself; replaces an accepted key only after review.
    Import,
    /// `participant add --key`: the key of that contact.
    ParticipantAdd,
    /// A new report's attached or announced key (key on first use).
    FirstUse,
    /// A Web Key Directory lookup (`key refresh`).
    Wkd,
    /// An Autocrypt header of a known participant: an offer only.
    Autocrypt,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Import => "import",
            Source::ParticipantAdd => "participant-add",
            Source::FirstUse => "first-use",
            Source::Wkd => "wkd",
            Source::Autocrypt => "autocrypt",
        }
    }
}

/// What became of one offered key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Offered {
    /// Already the address's accepted key: merged (a new subkey, a later expiry).
    Merged { fingerprint: String },
    /// Bound: the address had no key yet, or an accepted key certified this one.
    Bound {
        fingerprint: String,
        why: String,
        contacts: usize,
    },
    /// Stored, not bound: a key change waiting for an analyst (or an offer).
    Held { change: KeyChange },
    /// Stored only (`key import` of a key for an address without a key).
    Stored { fingerprint: String },
}

/// Which contacts a first key is bound to.
#[derive(Debug, Clone, Copy)]
pub enum BindTo {
    /// The contact with the address in this thread.
    Thread(i64),
    /// Every contact with the address.
    Address,
    /// None: the key is only stored.
    Nobody,
}

/// Offers certificates as `address`'s key. Each is stored first (merged with a stored copy);
/// then, judged against the keys accepted for the address before this call: merged, bound,
/// or held for review (see the module documentation). Certificates without a user ID for
/// `address` are skipped. Store writes only: run it inside `Store::atomically` to group it.
pub fn offer(
    store: &mut Store,
    address: &str,
    certs: &[Cert],
    source: Source,
    bind: BindTo,
    now: DateTime<Utc>,
) -> Result<Vec<Offered>, KeyringError> {
    offer_checked(store, address, certs, source, bind, now, true)
}

/// [`offer`], for a certificate an analyst names for the address although it has no user ID
/// for it (`participant add --key`, with a warning): judged the same way.
pub fn offer_named(
    store: &mut Store,
    address: &str,
    cert: &Cert,
    source: Source,
    bind: BindTo,
    now: DateTime<Utc>,
) -> Result<Vec<Offered>, KeyringError> {
    offer_checked(
        store,
        address,
        std::slice::from_ref(cert),
        source,
        bind,
        now,
        false,
    )
}

fn offer_checked(
    store: &mut Store,
    address: &str,
    certs: &[Cert],
    source: Source,
    bind: BindTo,
    now: DateTime<Utc>,
    require_user_id: bool,
) -> Result<Vec<Offered>, KeyringError> {
    let address = address.trim().to_ascii_lowercase();
    let accepted = store.address_keys(&address)?;
    let accepted_certs: Vec<Cert> = accepted
        .iter()
        .filter_map(|f| store.cert(f).ok().flatten())
        .filter_map(|c| Cert::from_bytes(&c.public_cert).ok())
        .collect();
    let mut out = Vec::new();
    for cert in certs {
        let summary = keyring::summarize(cert);
        if require_user_id && !summary.emails.contains(&address) {
            continue;
        }
        let fingerprint = summary.fingerprint.clone();
        keyring::import_certs(store, vec![cert.clone()])?;
        let certified_by = || {
            accepted_certs
                .iter()
                .find(|old| keyring::certifies(old, cert, &address))
                .map(|old| old.fingerprint().to_hex())
        };
        let why = if accepted.contains(&fingerprint) {
            None
        } else if source == Source::Autocrypt {
            // An Autocrypt header never binds a key by itself.
            out.push(Offered::Held {
                change: record(store, &address, &fingerprint, &accepted, source, now)?,
            });
            continue;
        } else if accepted.is_empty() {
            Some("the address had no key".to_string())
        } else if let Some(old) = certified_by() {
            Some(format!("certified by the accepted key {old}"))
        } else {
            out.push(Offered::Held {
                change: record(store, &address, &fingerprint, &accepted, source, now)?,
            });
            continue;
        };
        // An accepted key, or one that may be bound now: bound where asked (a replacement
        // certified by the old key is the address's key everywhere).
        let replaces = why.is_some() && !accepted.is_empty();
        let mut contacts = match bind {
            BindTo::Thread(t) => usize::from(store.bind_contact_key(t, &address, &fingerprint)?),
            BindTo::Address => store.bind_key_to_address(&address, &fingerprint)?,
            BindTo::Nobody => 0,
        };
        if replaces {
            contacts += store.bind_key_to_address(&address, &fingerprint)?;
        }
        out.push(match why {
            None => Offered::Merged { fingerprint },
            Some(_) if matches!(bind, BindTo::Nobody) && !replaces => {
                Offered::Stored { fingerprint }
            }
            Some(why) => Offered::Bound {
                fingerprint,
                why,
                contacts,
            },
        });
    }
    Ok(out)
}

/// A change held for review (`pending`), or for an Autocrypt key an offer (`offered`).
fn record(
    store: &mut Store,
    address: &str,
    fingerprint: &str,
    accepted: &[String],
    source: Source,
    now: DateTime<Utc>,
) -> Result<KeyChange, StoreError> {
    store.record_key_change(&NewKeyChange {
        address,
        fingerprint,
        previous: accepted,
        source: source.as_str(),
        status: if source == Source::Autocrypt {
            "offered"
        } else {
            "pending"
        },
        at: now,
    })
}

/// Records the keys a known participant's Autocrypt header offers. An offer that only adds
/// to an accepted certificate (a new subkey, a later expiry) is merged — written only when it
/// adds something, so a client that sends the same header with every mail costs one read.
/// Failures are logged: the message itself is stored already.
/// `offers`: the key data of the message's Autocrypt headers for `from`
/// ([`crate::message::autocrypt_keys`]).
pub fn record_autocrypt_offers(
    store: &mut Store,
    from: &str,
    offers: Vec<Vec<u8>>,
    now: DateTime<Utc>,
) {
    if offers.is_empty() {
        return;
    }
    let mut certs = Vec::new();
    for bytes in offers {
        for cert in keyring::parse_certs(&bytes).unwrap_or_default() {
            if unchanged(store, &cert) {
                continue;
            }
            certs.push(cert);
        }
    }
    if certs.is_empty() {
        return;
    }
    match offer(store, from, &certs, Source::Autocrypt, BindTo::Nobody, now) {
        Ok(done) => {
            for o in done {
                if let Offered::Held { change } = o {
                    tracing::info!(address = %change.address, fingerprint = %change.fingerprint, "Autocrypt key offered; listed in `casegate key changes`, not used");
                }
            }
        }
        Err(e) => {
            tracing::warn!(address = %from, error = %e, "Autocrypt key offer not recorded")
        }
    }
}

/// Whether merging `cert` into the stored copy would change nothing.
pub fn unchanged(store: &Store, cert: &Cert) -> bool {
    let Ok(Some(stored)) = store.cert(&cert.fingerprint().to_hex()) else {
        return false;
    };
    let Ok(old) = Cert::from_bytes(&stored.public_cert) else {
        return false;
    };
    match old.clone().merge_public(cert.clone()) {
        Ok(merged) => keyring::public_bytes(&merged) == keyring::public_bytes(&old),
        Err(_) => true,
    }
}

/// A key that expires within the window, with whose it is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Expiring {
    /// `coordinator` or `participant`.
    pub owner: &'static str,
    /// Contact addresses it is bound to.
    pub contacts: Vec<String>,
    #[serde(flatten)]
    pub cert: CertSummary,
    /// Whole days from now until it expires (negative: expired that long ago).
    pub days_left: i64,
}

/// The keys (of the coordinator, and bound to contacts) that expire before `now + days`,
/// soonest first; already expired ones too.
pub fn expiring(
    coordinator: Option<&Cert>,
    bound: &[(Cert, Vec<String>)],
    days: u32,
    now: DateTime<Utc>,
) -> Vec<Expiring> {
    let until = now + chrono::Duration::days(i64::from(days));
    let mut out: Vec<(DateTime<Utc>, Expiring)> = Vec::new();
    let mut consider = |owner: &'static str, cert: &Cert, contacts: &[String]| {
        if let Some(at) = keyring::expiry(cert)
            && at <= until
        {
            out.push((
                at,
                Expiring {
                    owner,
                    contacts: contacts.to_vec(),
                    cert: keyring::summarize(cert),
                    days_left: (at - now).num_days(),
                },
            ));
        }
    };
    if let Some(c) = coordinator {
        consider("coordinator", c, &[]);
    }
    for (cert, contacts) in bound {
        consider("participant", cert, contacts);
    }
    out.sort_by_key(|a| a.0);
    out.into_iter().map(|(_, e)| e).collect()
}

/// Every stored certificate bound to a contact, with the addresses it is bound to.
pub fn bound_certs(store: &Store) -> Result<Vec<(Cert, Vec<String>)>, StoreError> {
    let mut by_fpr: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (address, _) in store.contact_addresses()? {
        for f in store.address_keys(&address)? {
            let v = by_fpr.entry(f).or_default();
            if !v.contains(&address) {
                v.push(address.clone());
            }
        }
    }
    let mut out = Vec::new();
    for (fpr, addresses) in by_fpr {
        if let Some(stored) = store.cert(&fpr)?
            && let Ok(cert) = Cert::from_bytes(&stored.public_cert)
        {
            out.push((cert, addresses));
        }
    }
    Ok(out)
}

/// The one line `serve` logs each day: the keys that expire soon, or `None` when none do.
pub fn expiry_log_line(expiring: &[Expiring], days: u32) -> Option<String> {
    if expiring.is_empty() {
        return None;
    }
    let items: Vec<String> = expiring
        .iter()
        .map(|e| {
            format!(
                "{} {} ({}) {} {}",
                e.owner,
                e.cert.fingerprint,
                if e.contacts.is_empty() {
                    e.cert.emails.join(", ")
                } else {
                    e.contacts.join(", ")
                },
                if e.days_left < 0 {
                    "expired"
                } else {
                    "expires"
                },
                e.cert.expires.as_deref().unwrap_or("?")
            )
        })
        .collect();
    Some(format!(
        "{} key(s) expire within {days} days: {}",
        expiring.len(),
        items.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::Kind;
    use sequoia_openpgp::cert::prelude::*;
    use std::time::{Duration, SystemTime};

    fn key(uid: &str, valid_for: Option<Duration>) -> Cert {
        CertBuilder::general_purpose(Some(uid))
            .set_creation_time(SystemTime::now() - Duration::from_secs(60))
            .set_validity_period(valid_for)
            .generate()
            .unwrap()
            .0
    }

    #[test]
    fn first_key_binds_a_different_one_is_held_a_certified_one_replaces() {
        let mut s = Store::open_in_memory().unwrap();
        let now = Utc::now();
        let t = s.create_thread(Kind::Case, None, "t", now).unwrap();
        s.add_participant(t.id, "V", "vendor", "psirt@v.example", None)
            .unwrap();
        let k1 = key("<psirt@v.example>", None);
        let done = offer(
            &mut s,
            "psirt@v.example",
            std::slice::from_ref(&k1),
            Source::Wkd,
            BindTo::Address,
            now,
        )
        .unwrap();
        assert!(
            matches!(&done[0], Offered::Bound { contacts: 1, .. }),
            "{done:?}"
        );
        // The same key again (say with a new subkey): merged.
        let done = offer(
            &mut s,
            "psirt@v.example",
            std::slice::from_ref(&k1),
            Source::Wkd,
            BindTo::Address,
            now,
        )
        .unwrap();
        assert!(matches!(&done[0], Offered::Merged { .. }), "{done:?}");
        // Another primary key: held for review, not bound.
        let k2 = key("<psirt@v.example>", None);
        let done = offer(
            &mut s,
            "psirt@v.example",
            std::slice::from_ref(&k2),
            Source::Import,
            BindTo::Nobody,
            now,
        )
        .unwrap();
        let Offered::Held { change } = &done[0] else {
            panic!("{done:?}")
        };
        assert_eq!(change.status, "pending");
        assert_eq!(change.previous, vec![k1.fingerprint().to_hex()]);
        assert_eq!(s.address_keys("psirt@v.example").unwrap().len(), 1);
        assert!(
            s.cert(&k2.fingerprint().to_hex()).unwrap().is_some(),
            "stored"
        );
        // A key the accepted one certified replaces it without review.
        let mut signer = k1
            .primary_key()
            .key()
            .clone()
            .parts_into_secret()
            .unwrap()
            .into_keypair()
            .unwrap();
        let k3 = key("<psirt@v.example>", None);
        let uid = k3.userids().next().unwrap().userid().clone();
        let certification = uid.certify(&mut signer, &k3, None, None, None).unwrap();
        let k3 = k3.insert_packets(certification).unwrap().0;
        assert!(keyring::certifies(&k1, &k3, "psirt@v.example"));
        assert!(!keyring::certifies(&k1, &k2, "psirt@v.example"));
        let done = offer(
            &mut s,
            "psirt@v.example",
            std::slice::from_ref(&k3),
            Source::Import,
            BindTo::Nobody,
            now,
        )
        .unwrap();
        assert!(matches!(&done[0], Offered::Bound { .. }), "{done:?}");
        assert_eq!(s.address_keys("psirt@v.example").unwrap().len(), 2);
        // A key for another address is not this address's offer.
        let other = key("<someone@else.example>", None);
        assert!(
            offer(
                &mut s,
                "psirt@v.example",
                &[other],
                Source::Import,
                BindTo::Nobody,
                now
            )
            .unwrap()
            .is_empty()
        );
        // Autocrypt: an offer, never bound, even for an address without a key.
        s.add_participant(t.id, "R", "reporter", "r@r.example", None)
            .unwrap();
        let k4 = key("<r@r.example>", None);
        let done = offer(
            &mut s,
            "r@r.example",
            &[k4],
            Source::Autocrypt,
            BindTo::Nobody,
            now,
        )
        .unwrap();
        let Offered::Held { change } = &done[0] else {
            panic!("{done:?}")
        };
        assert_eq!(change.status, "offered");
        assert!(s.address_keys("r@r.example").unwrap().is_empty());
    }

    #[test]
    fn expiring_lists_keys_within_the_window_soonest_first() {
        let now = Utc::now();
        let day = Duration::from_secs(86_400);
        let soon = key("<a@x.example>", Some(10 * day));
        let later = key("<b@x.example>", Some(100 * day));
        let never = key("<c@x.example>", None);
        let coordinator = key("<cert@x.example>", Some(3 * day));
        let bound = vec![
            (later.clone(), vec!["b@x.example".to_string()]),
            (soon.clone(), vec!["a@x.example".to_string()]),
            (never, vec!["c@x.example".to_string()]),
        ];
        let e = expiring(Some(&coordinator), &bound, 30, now);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].owner, "coordinator");
        assert_eq!(e[1].contacts, vec!["a@x.example"]);
        assert!((9..=10).contains(&e[1].days_left), "{}", e[1].days_left);
        assert!(e[1].cert.expires.is_some());
        assert_eq!(expiring(None, &bound, 365, now).len(), 2);
        let line = expiry_log_line(&e, 30).unwrap();
        assert!(
            line.contains("a@x.example") && line.contains("coordinator"),
            "{line}"
        );
        assert!(expiry_log_line(&[], 30).is_none());
        // An encryption subkey that expires sooner than the primary key decides.
        let (short_sub, _) = CertBuilder::new()
            .add_userid("<d@x.example>")
            .set_creation_time(SystemTime::now() - Duration::from_secs(60))
            .add_signing_subkey()
            .add_subkey(
                sequoia_openpgp::types::KeyFlags::empty().set_transport_encryption(),
                Some(5 * day),
                None,
            )
            .generate()
            .unwrap();
        let at = keyring::expiry(&short_sub).unwrap();
        assert!((at - now).num_days() <= 5);
    }
}
