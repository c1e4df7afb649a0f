//! One raw message through the open stage (MIME, OpenPGP layers, signatures), with the
//! coordinator's key and one participant's certificate. Never panics, whatever the bytes.
#![no_main]

use std::sync::LazyLock;

use casegate::keyring::Keyring;
use libfuzzer_sys::fuzz_target;

static KEYRING: LazyLock<Keyring> = LazyLock::new(casegate_fuzz::keyring);

fuzz_target!(|raw: &[u8]| {
    let _ = casegate::open::open(raw, &KEYRING);
});
