//! A store made by the last release (schema v5, `tests/store_v5/store-v5.sql`, written by
//! `tests/store_v5/make.py` from that release's own migrations) opened by this casegate: every
//! participant, contact and key binding survives the move into the directory of
//! organizations, nothing else is lost, and a stranger who named himself after a vendor did
//! not become one of its contacts.

use std::collections::{BTreeMap, BTreeSet};

use casegate::store::Store;
use casegate::store::outbox::OutboxFilter;
use casegate::tracking::TrackingNumber;

/// (thread, org, role, address) → bound keys, as the v5 fixture has them.
fn v5_bindings(
    conn: &rusqlite::Connection,
) -> BTreeMap<(String, String, String, String), BTreeSet<String>> {
    let mut out: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT t.number, p.org, p.role, c.address, k.fingerprint FROM contacts c
             JOIN participants p ON p.id = c.participant_id JOIN threads t ON t.id = p.thread_id
             LEFT JOIN contact_keys k ON k.contact_id = c.id",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (key, fpr) = row.unwrap();
        let set = out.entry(key).or_default();
        if let Some(f) = fpr {
            set.insert(f);
        }
    }
    out
}

#[test]
fn a_release_store_opens_with_every_participant_contact_and_key_binding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("casegate.sqlite");
    let sql = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/store_v5/store-v5.sql"),
    )
    .unwrap();
    let before = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&sql).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 5, "the fixture is a schema v5 store");
        v5_bindings(&conn)
    };
    assert!(before.len() >= 10, "the fixture has contacts: {before:?}");

    let store = Store::open(&path).unwrap();
    assert!(store.schema_version().unwrap() > 5);

    // Every (thread, org, role, address) is still a contact, with at least its old keys; a
    // key it has now that it did not have in that thread was bound to the same address of
    // the same organization in another thread (bindings now live in the directory).
    let mut after: BTreeMap<(String, String, String, String), BTreeSet<String>> = BTreeMap::new();
    for t in store.list_threads(None).unwrap() {
        for c in store.contacts(t.thread.id).unwrap() {
            after.insert(
                (t.thread.number.to_string(), c.org, c.role, c.address),
                c.key_fingerprints.into_iter().collect(),
            );
        }
    }
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the same contacts, organizations and roles in every thread"
    );
    for (k, old) in &before {
        let new = &after[k];
        assert!(old.is_subset(new), "{k:?} lost keys: {old:?} → {new:?}");
    }
    let psirt_555 = &after[&(
        "VU#555555".into(),
        "foocorp".into(),
        "vendor".into(),
        "psirt@foocorp.example".into(),
    )];
    assert_eq!(
        psirt_555,
        &BTreeSet::from(["A".repeat(40), "E".repeat(40)]),
        "FooCorp's contact keeps both keys it had in its two cases"
    );

    // The directory: vendors of the same name (any case) are one organization; the stranger
    // who wrote as "FooCorp" is not part of it.
    let foo = store.org_by_name("FOOCORP").unwrap().unwrap();
    let foo_contacts: Vec<String> = store
        .org_contacts(foo.id)
        .unwrap()
        .into_iter()
        .map(|c| c.address)
        .collect();
    assert_eq!(
        foo_contacts,
        ["alice@foocorp.example", "psirt@foocorp.example"]
    );
    assert_eq!(
        store.org_keys(foo.id).unwrap().len(),
        2,
        "both of FooCorp's keys are the organization's"
    );
    let evil = store.orgs_of_address("x@evil.example").unwrap();
    assert_eq!(evil.len(), 1);
    assert_eq!(evil[0].name, "FooCorp <x@evil.example>");
    assert_ne!(evil[0].id, foo.id);
    let rita = store.orgs_of_address("rita@example.test").unwrap();
    assert!(
        rita.iter()
            .any(|o| o.name == "Rita Reporter <rita@example.test>"),
        "{rita:?}"
    );
    let barsoft = store.org_by_name("BarSoft").unwrap().unwrap();
    assert_eq!(store.org_threads(barsoft.id).unwrap().len(), 1);

    // Nothing else was lost: threads, the promotion, messages, the owed acknowledgment, the
    // outbox (a sent copy and a held one), sent Message-IDs, the checkpoint.
    assert_eq!(store.list_threads(None).unwrap().len(), 6);
    let case = store
        .resolve_thread(&TrackingNumber::parse("VRF#25-11-BKQTZ").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(case.number.as_str(), "VU#123456");
    let first = store
        .thread(&TrackingNumber::parse("VU#409117").unwrap())
        .unwrap()
        .unwrap();
    assert!(first.require_signed_statements);
    assert_eq!(first.discussion, "hub");
    assert_eq!(store.thread_messages(first.id).unwrap().len(), 1);
    assert_eq!(store.pending_acks().unwrap().len(), 1);
    let outbox = store.outbox_rows(&OutboxFilter::default()).unwrap();
    assert_eq!(outbox.len(), 2);
    let held = store.held_copies(None).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].address, "alice@foocorp.example");
    assert!(!held[0].notice.relay);
    assert!(
        store
            .thread_of_sent(&["<n1@example.test>".into()])
            .unwrap()
            .is_some()
    );
    assert_eq!(store.certs().unwrap().len(), 5);
    assert_eq!(
        store
            .mailbox_checkpoint("cert", "INBOX")
            .unwrap()
            .unwrap()
            .last_uid,
        2
    );
    assert_eq!(store.signature_cache_entries().unwrap().len(), 1);
}
