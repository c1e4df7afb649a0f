//! Shared by the outbox tests that deliver: a store with a case, vendors with keys, a queued
//! notice, and a loop that delivers until nothing waits.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use casegate::config::OutboxConfig;
use casegate::outbox::{self, Notice, OutboxFilter, Selection, SmtpSender};
use casegate::store::{Store, Thread};
use casegate::tracking::{Kind, TrackingNumber};
use chrono::Utc;
use sequoia_openpgp::Cert;

use crate::outbox_gpg::coordinator_cert;

pub const FROM: &str = "cert@example.test";

pub fn config() -> OutboxConfig {
    OutboxConfig {
        max_age_hours: 1,
        retry_base_secs: 1,
        retry_max_secs: 1,
        stub_when_no_key: false,
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn import(store: &mut Store, cert: &Cert) -> String {
    casegate::keyring::import_certs(store, vec![cert.clone()]).unwrap();
    cert.fingerprint().to_hex()
}

pub fn case(store: &mut Store, number: &str) -> Thread {
    store
        .create_thread(
            Kind::Case,
            Some(&TrackingNumber::parse(number).unwrap()),
            "Buffer overflow in FooRouter",
            Utc::now(),
        )
        .unwrap()
}

pub fn add(store: &mut Store, thread: &Thread, org: &str, addr: &str, key: Option<&Cert>) {
    let fpr = key.map(|k| import(store, k));
    store
        .add_participant(thread.id, org, "vendor", addr, fpr.as_deref())
        .unwrap();
}

pub fn notice(body: &str) -> Notice<'_> {
    Notice {
        thread: "",
        subject: "Buffer overflow in FooRouter",
        body,
        in_reply_to: None,
        automatic: false,
    }
}

/// Runs delivery rounds until nothing is queued or retrying (bounded).
pub fn deliver_all(store: &mut Store, sender: &SmtpSender, rt: &tokio::runtime::Runtime) {
    for _ in 0..100 {
        rt.block_on(outbox::deliver_due(store, sender, &config(), None))
            .unwrap();
        let waiting = store
            .outbox_rows(&OutboxFilter::default())
            .unwrap()
            .iter()
            .filter(|r| r.status == "queued" || r.status == "retrying")
            .count();
        if waiting == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("copies still waiting after 100 rounds");
}

pub fn one_vendor_store(dir: &Path, number: &str) -> (Store, Thread) {
    let mut store = Store::open(&dir.join("s.sqlite")).unwrap();
    let thread = case(&mut store, number);
    let coordinator = coordinator_cert(FROM);
    let (cert, _) =
        sequoia_openpgp::cert::CertBuilder::general_purpose(Some("<vendor@example.test>"))
            .generate()
            .unwrap();
    add(
        &mut store,
        &thread,
        "VendorA",
        "vendor@example.test",
        Some(&cert.strip_secret_key_material()),
    );
    outbox::notify(
        &mut store,
        &coordinator,
        &thread,
        &Selection::All,
        &notice("b\n"),
        &config(),
        FROM,
    )
    .unwrap();
    (store, thread)
}
