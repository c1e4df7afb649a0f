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

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("OpenPGP support is not built yet")]
    NotBuilt,
}
#[derive(serde::Serialize)]
pub struct CertSummary {
    pub fingerprint: String,
    pub user_ids: Vec<String>,
    pub emails: Vec<String>,
    pub can_encrypt: bool,
    pub can_sign: bool,
    pub expired: bool,
    pub revoked: bool,
    pub created: String,
}
pub fn generate_coordinator_key(_address: &str) -> Result<Cert, KeyringError> {
    Err(KeyringError::NotBuilt)
}
pub fn read_secret_key_file(_path: &Path) -> Result<Cert, KeyringError> {
    Err(KeyringError::NotBuilt)
}
pub fn write_secret_key_file(_path: &Path, _key: &Cert) -> Result<(), KeyringError> {
    Err(KeyringError::NotBuilt)
}
pub fn parse_certs(_bytes: &[u8]) -> Result<Vec<Cert>, KeyringError> {
    Err(KeyringError::NotBuilt)
}
pub fn public_bytes(_cert: &Cert) -> Vec<u8> {
    Vec::new()
}
pub fn armored_public(_cert: &Cert) -> Result<String, KeyringError> {
    Err(KeyringError::NotBuilt)
}
pub fn summarize(cert: &Cert) -> CertSummary {
    CertSummary {
        fingerprint: cert.fingerprint().to_hex(),
        user_ids: vec![],
        emails: vec![],
        can_encrypt: false,
        can_sign: false,
        expired: false,
        revoked: false,
        created: String::new(),
    }
}
pub fn encryption_key_valid(_cert: &Cert) -> Result<(), String> {
    Err("not built".into())
}
