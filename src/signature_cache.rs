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
    fn validating_a_cert_saves_its_verifications_once() {
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

    const CHILD_STORE: &str = "CASEGATE_SIGNATURE_CACHE_CHILD_STORE";
    const CHILD_CERT: &str = "CASEGATE_SIGNATURE_CACHE_CHILD_CERT";
    const CHILD_SKIP_RESTORE: &str = "CASEGATE_SIGNATURE_CACHE_CHILD_SKIP_RESTORE";

    /// Not a test on its own (ignored, so it never passes by doing nothing): the fresh process
    /// `saved_verifications_are_used_by_a_fresh_process` starts with `--ignored`. Restores the
    /// store's entries (unless told not to), checks the certificate's self-signatures as
    /// sealing does, and prints what sequoia's cache did.
    #[test]
    #[ignore = "the child process of saved_verifications_are_used_by_a_fresh_process"]
    fn restore_child_process() {
        use openpgp::parse::Parse;
        let (Ok(store), Ok(cert)) = (std::env::var(CHILD_STORE), std::env::var(CHILD_CERT)) else {
            panic!("run by saved_verifications_are_used_by_a_fresh_process");
        };
        let store = Store::open(std::path::Path::new(&store)).unwrap();
        let cert = openpgp::Cert::from_file(cert).unwrap();
        if std::env::var_os(CHILD_SKIP_RESTORE).is_none() {
            restore(&store).unwrap();
        }
        SignatureVerificationCache::clear_insertions();
        let hits = SignatureVerificationCache::cache_hits();
        crate::outbox::compose::check_self_signatures(&cert, std::time::SystemTime::now());
        println!(
            "CACHE hits={} insertions={}",
            SignatureVerificationCache::cache_hits() - hits,
            SignatureVerificationCache::insertions()
        );
    }

    /// What one process verified and saved, another process restores and uses instead of
    /// verifying again (the path a one-shot `casegate notify` takes after `key import`).
    #[test]
    fn saved_verifications_are_used_by_a_fresh_process() {
        use openpgp::serialize::Serialize;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.sqlite");
        let mut store = Store::open(&db).unwrap();
        let cert = CertBuilder::general_purpose(Some("<b@example.test>"))
            .generate()
            .unwrap()
            .0;
        let before = snapshot();
        crate::outbox::compose::check_self_signatures(&cert, std::time::SystemTime::now());
        let saved = save_since(&mut store, &before).unwrap();
        assert!(saved >= 3, "saved {saved}");
        drop(store);
        let cert_file = dir.path().join("cert.pgp");
        let mut bytes = Vec::new();
        cert.serialize(&mut bytes).unwrap();
        std::fs::write(&cert_file, bytes).unwrap();

        let child = |skip_restore: bool| -> (usize, usize) {
            let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
            cmd.args([
                "--exact",
                "signature_cache::tests::restore_child_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_STORE, &db)
            .env(CHILD_CERT, &cert_file);
            if skip_restore {
                cmd.env(CHILD_SKIP_RESTORE, "1");
            }
            let out = cmd.output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            let line = text
                .lines()
                .find_map(|l| l.split_once("CACHE ").map(|(_, rest)| rest))
                .unwrap_or_else(|| panic!("no CACHE line: {text}"));
            let number = |key: &str| -> usize {
                line.split(' ')
                    .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
                    .unwrap()
            };
            (number("hits"), number("insertions"))
        };
        // Without the store's entries the checks verify (and insert) anew: how many
        // verifications they need, and proof that the measurement can tell. (Not `saved`:
        // the cache is the process's, so tests running alongside saved entries too.)
        let (hits, needed) = child(true);
        assert_eq!(hits, 0);
        assert!(needed >= 3, "{needed} insertions");
        assert!(
            saved >= needed,
            "saved {saved}, a fresh process needs {needed}"
        );
        // With them restored: every one of those is a hit, nothing is verified anew.
        let (hits, insertions) = child(false);
        assert!(hits >= needed, "{hits} hits for {needed} verifications");
        assert_eq!(insertions, 0, "verified again although restored");
    }
}
