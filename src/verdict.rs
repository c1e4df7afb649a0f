//! PLACEHOLDER until the `pgp` branch lands.
use crate::open::SignatureFacts;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureVerdict {
    None,
    Good,
    Bad,
    UnknownKey,
    NotParticipant,
}
impl SignatureVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Good => "good",
            Self::Bad => "bad",
            Self::UnknownKey => "unknown-key",
            Self::NotParticipant => "not-participant",
        }
    }
}
pub struct ThreadContact {
    pub address: String,
    pub key_fingerprints: Vec<String>,
}
pub struct Verdict {
    pub signature: SignatureVerdict,
    pub signer: Option<String>,
    pub reason: String,
}
pub fn signature_verdict(
    _facts: &SignatureFacts,
    _from: Option<&str>,
    _contacts: &[ThreadContact],
) -> Verdict {
    Verdict {
        signature: SignatureVerdict::None,
        signer: None,
        reason: "not signed".into(),
    }
}
