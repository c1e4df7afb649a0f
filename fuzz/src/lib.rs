//! What the fuzz targets share: the test-only keys in `keys/` (made once with gpg, no
//! passphrase, used nowhere else), so the seed corpus's encrypted and signed messages
//! (`seed.sh`) open with the same keyring the targets use; and the pipeline they run in.
//! `tests/fuzz_regressions.rs` includes this file, so a finding is replayed in exactly the
//! setting the fuzzer found it in. Only casegate and sequoia-openpgp are used here.

use casegate::config::{Config, Settings};
use casegate::keyring::{Cert, Keyring};
use casegate::pipeline::{Pipeline, Rules};
use casegate::store::Store;
use casegate::tracking::{Kind, TrackingNumber};
use sequoia_openpgp::parse::Parse;

/// The coordinator's address in the keys and the seed messages.
pub const COORDINATOR: &str = "cert@example.test";
/// The participant's address (a vendor contact of [`CASE`]).
pub const PARTICIPANT: &str = "psirt@vendor.example";
/// The case the participant takes part in.
pub const CASE: &str = "VU#409117";

/// The coordinator's key, secret parts included (it decrypts and signs).
pub fn coordinator() -> Cert {
    Cert::from_bytes(include_bytes!("../keys/coordinator.sec.asc")).expect("fuzz coordinator key")
}

/// The participant's certificate (public parts only, as casegate keeps it).
pub fn participant() -> Cert {
    casegate::keyring::parse_certs(include_bytes!("../keys/participant.asc"))
        .expect("fuzz participant key")
        .remove(0)
}

/// The coordinator and the participant.
pub fn keyring() -> Keyring {
    Keyring::new(Some(coordinator()), vec![participant()])
}

/// A pipeline on a fresh in-memory store: case [`CASE`] with the participant as its vendor
/// contact (certificate stored and bound), the coordinator's key, default limits.
pub fn pipeline() -> Pipeline {
    let mut store = Store::open_in_memory().expect("in-memory store");
    let number = TrackingNumber::parse(CASE).expect("case number");
    let thread = store
        .create_thread(Kind::Case, Some(&number), "fuzz", chrono::Utc::now())
        .expect("case");
    let participant = participant();
    casegate::keyring::import_certs(&mut store, vec![participant.clone()])
        .expect("participant certificate");
    store
        .add_participant(
            thread.id,
            "Vendor",
            "vendor",
            PARTICIPANT,
            Some(&participant.fingerprint().to_hex()),
        )
        .expect("participant");
    Pipeline::from_store(store, Some(coordinator()), rules()).expect("pipeline")
}

/// The rules of a config that names the coordinator and checks senders by its MTA's
/// Authentication-Results (parsing only: nothing here asks DNS), defaults otherwise.
pub fn rules() -> Rules {
    let config = Config::from_toml(&format!(
        "[coordinator]\naddress = \"{COORDINATOR}\"\nreporting_address = \"{COORDINATOR}\"\n\n\
         [authentication]\nsource = \"authentication-results\"\ntrusted_authserv_id = \"mx.example.test\"\n"
    ))
    .expect("fuzz config");
    config.validate().expect("fuzz config is valid");
    Rules::from_settings(&Settings {
        config,
        data_dir: "casegate-data".into(),
        source: None,
    })
}
