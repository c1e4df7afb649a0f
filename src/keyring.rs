//! PLACEHOLDER until the `pgp` branch lands.
use sequoia_openpgp::Cert;

pub struct Keyring {
    coordinator: Option<Cert>,
    certs: Vec<Cert>,
}

impl Keyring {
    pub fn new(coordinator: Option<Cert>, certs: Vec<Cert>) -> Keyring {
        Keyring { coordinator, certs }
    }
    pub fn coordinator(&self) -> Option<&Cert> {
        self.coordinator.as_ref()
    }
    pub fn cert(&self, fingerprint_hex: &str) -> Option<&Cert> {
        self.certs.iter().find(|c| {
            c.fingerprint()
                .to_hex()
                .eq_ignore_ascii_case(fingerprint_hex)
        })
    }
}
