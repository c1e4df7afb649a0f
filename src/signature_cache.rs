//! Sequoia's signature-verification cache, carried from one process to the next in the store.
//!
//! Why: checking a certificate's self-signatures costs about 0.8 ms (a typical key has four)
//! and sequoia remembers the result only for the life of the process. A one-shot
//! `casegate notify` to 1,000 contacts would otherwise spend most of its time re-checking
//! signatures that were checked when the keys were imported. Sequoia can dump and restore its
//! cache for exactly this case; an entry is an opaque digest of (signature, hash, key), so a hit
//! means this very signature was verified with this very key. Only successful verifications are
//! cached; validity at a given time (expiry, revocation, policy) is still decided every time.
//!
//! Trust: whoever can write the store can already bind any key to any participant, so an entry
//! there opens no new way in. Entries hold no key material and no message content.

use std::collections::HashSet;
use std::sync::Mutex;

use openpgp::packet::signature::cache::SignatureVerificationCache;
use sequoia_openpgp as openpgp;

use crate::store::{Store, StoreError};

/// Entries this process already handed to sequoia or saved, so a store is read into the cache
/// once however many times it is asked.
static KNOWN: Mutex<Option<HashSet<Vec<u8>>>> = Mutex::new(None);

fn with_known<T>(f: impl FnOnce(&mut HashSet<Vec<u8>>) -> T) -> T {
    // A poisoned lock only means another thread panicked while inserting into a set.
    let mut guard = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashSet::new))
}

/// Loads the store's entries into sequoia's cache and waits until they are usable.
pub fn restore(store: &Store) -> Result<(), StoreError> {
    let stored = store.signature_cache_entries()?;
    let fresh: Vec<Vec<u8>> = with_known(|known| {
        stored
            .into_iter()
            .filter(|e| known.insert(e.clone()))
            .collect()
    });
    if fresh.is_empty() {
        return Ok(());
    }
    let (done, finished) = std::sync::mpsc::channel();
    SignatureVerificationCache::restore(fresh.into_iter(), move || {
        let _ = done.send(());
    });
    // If sequoia's restore thread died, lookups simply miss and signatures are verified.
    let _ = finished.recv();
    Ok(())
}

/// The verifications this process has made so far (see [`save_since`]).
pub struct Snapshot(HashSet<Vec<u8>>);

/// What the cache holds now that this process verified itself.
pub fn snapshot() -> Snapshot {
    Snapshot(
        SignatureVerificationCache::dump()
            .into_iter()
            .filter(|e| e.inserted())
            .map(|e| e.value().to_vec())
            .collect(),
    )
}

/// Saves the verifications made since `before` (certificates validated in between) to the
/// store. Returns how many were new.
pub fn save_since(store: &mut Store, before: &Snapshot) -> Result<usize, StoreError> {
    let new: Vec<Vec<u8>> = SignatureVerificationCache::dump()
        .into_iter()
        .filter(|e| e.inserted() && !before.0.contains(e.value()))
        .map(|e| e.value().to_vec())
        .collect();
    if new.is_empty() {
        return Ok(0);
    }
    store.add_signature_cache_entries(&new)?;
    let n = new.len();
    with_known(|known| known.extend(new));
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::cert::CertBuilder;
    use openpgp::policy::StandardPolicy;

    #[test]
    fn validating_a_cert_saves_its_verifications_and_they_restore() {
        let mut store = Store::open_in_memory().unwrap();
        // Before generating: making a key verifies its fresh signatures too.
        let before = snapshot();
        let cert = CertBuilder::general_purpose(Some("<a@example.test>"))
            .generate()
            .unwrap()
            .0;
        let policy = StandardPolicy::new();
        let valid = cert.with_policy(&policy, None).unwrap();
        assert!(valid.keys().count() >= 2);
        let saved = save_since(&mut store, &before).unwrap();
        // The user ID binding and each subkey binding (plus the signing key's back signature).
        assert!(saved >= 3, "saved {saved}");
        assert_eq!(store.signature_cache_entries().unwrap().len(), saved);
        // Nothing saved twice: what is known now is skipped. (Other tests verify signatures in
        // parallel; what they add meanwhile may be saved, but never one of ours again.)
        let after = snapshot();
        let ours = store.signature_cache_entries().unwrap();
        assert!(ours.iter().all(|e| after.0.contains(e)));
        let again = save_since(&mut store, &after).unwrap();
        assert_eq!(
            store.signature_cache_entries().unwrap().len(),
            ours.len() + again
        );
        // Restoring what this process already knows is a no-op, and does not block.
        restore(&store).unwrap();
    }
}
