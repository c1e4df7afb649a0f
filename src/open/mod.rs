//! PLACEHOLDER until the `pgp` branch lands.
use crate::keyring::Keyring;

pub struct Opened {
    pub inner: Option<Vec<u8>>,
    pub encryption: Encryption,
    pub signature: SignatureFacts,
    pub protected_subject: Option<String>,
    pub notes: Vec<String>,
}
pub enum Encryption {
    None,
    Full { recipients: Vec<String> },
    Partial { reason: String },
}
pub enum SignatureFacts {
    None,
    Valid {
        signing_key: String,
        cert: String,
        emails: Vec<String>,
    },
    UnknownKey {
        issuer: String,
    },
    Bad {
        reason: String,
    },
    Partial {
        reason: String,
    },
}
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Malformed(String),
}
pub fn open(_raw: &[u8], _keyring: &Keyring) -> Result<Opened, OpenError> {
    Ok(Opened {
        inner: None,
        encryption: Encryption::None,
        signature: SignatureFacts::None,
        protected_subject: None,
        notes: vec![],
    })
}
