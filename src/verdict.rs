//! Binds what `open` proved about a signature to the people of one thread.
//!
//! Why separate from `open`: a cryptographically valid signature says only "this key signed
//! these bytes". Whether that makes the message *good* depends on the thread: the key must
//! be bound to a contact of this thread, that contact's address must be the From address,
//! and the certificate itself must carry that address in a user ID. Pure, no I/O.

use crate::keyring::normalize_fingerprint;
use crate::open::SignatureFacts;

/// The signature verdict stored per message and printed in `--json`.
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
    /// The spelling of the JSON contract (`none|good|bad|unknown-key|not-participant`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureVerdict::None => "none",
            SignatureVerdict::Good => "good",
            SignatureVerdict::Bad => "bad",
            SignatureVerdict::UnknownKey => "unknown-key",
            SignatureVerdict::NotParticipant => "not-participant",
        }
    }
}

impl std::fmt::Display for SignatureVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One contact of the thread: an address and the certificate fingerprints bound to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadContact {
    /// Lower-case email address.
    pub address: String,
    /// Primary fingerprints (hex) of the certificates bound to this contact.
    pub key_fingerprints: Vec<String>,
}

/// The verdict with the signer (primary fingerprint) and a one-line reason for `show`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub signature: SignatureVerdict,
    pub signer: Option<String>,
    pub reason: String,
}

/// Decides the signature verdict of one message in one thread. `good` needs all of: a valid
/// signature, its certificate bound to a contact of this thread, that contact's address
/// equal to the From address, and the From address being an email of a user ID of the cert.
pub fn signature_verdict(
    facts: &SignatureFacts,
    from_address: Option<&str>,
    contacts: &[ThreadContact],
) -> Verdict {
    match facts {
        SignatureFacts::None => Verdict {
            signature: SignatureVerdict::None,
            signer: None,
            reason: "not signed".into(),
        },
        SignatureFacts::Partial { reason } => Verdict {
            signature: SignatureVerdict::None,
            signer: None,
            reason: if reason.starts_with("partial:") {
                reason.clone()
            } else {
                format!("partial: {reason}")
            },
        },
        SignatureFacts::Bad { reason } => Verdict {
            signature: SignatureVerdict::Bad,
            signer: None,
            reason: format!("bad signature: {reason}"),
        },
        SignatureFacts::UnknownKey { issuer } => Verdict {
            signature: SignatureVerdict::UnknownKey,
            signer: None,
            reason: format!("signed by key {issuer}, which is not in the keyring"),
        },
        SignatureFacts::Valid {
            signing_key,
            cert,
            emails,
        } => valid_verdict(signing_key, cert, emails, from_address, contacts),
    }
}

fn valid_verdict(
    signing_key: &str,
    cert: &str,
    emails: &[String],
    from_address: Option<&str>,
    contacts: &[ThreadContact],
) -> Verdict {
    let cert_fpr = normalize_fingerprint(cert);
    let key_fpr = normalize_fingerprint(signing_key);
    let not_participant = |reason: String| Verdict {
        signature: SignatureVerdict::NotParticipant,
        signer: Some(cert_fpr.clone()),
        reason,
    };
    let bound: Vec<&ThreadContact> = contacts
        .iter()
        .filter(|c| {
            c.key_fingerprints.iter().any(|f| {
                let f = normalize_fingerprint(f);
                !f.is_empty() && (f == cert_fpr || f == key_fpr)
            })
        })
        .collect();
    if bound.is_empty() {
        return not_participant(format!(
            "valid signature by {cert_fpr}, but that key belongs to no contact of this thread"
        ));
    }
    let Some(from) = from_address
        .map(|f| f.trim().to_ascii_lowercase())
        .filter(|f| !f.is_empty())
    else {
        return not_participant(format!(
            "valid signature by {cert_fpr}, but the message has no From address"
        ));
    };
    if !bound
        .iter()
        .any(|c| c.address.trim().eq_ignore_ascii_case(&from))
    {
        let owners: Vec<&str> = bound.iter().map(|c| c.address.as_str()).collect();
        return not_participant(format!(
            "valid signature by {cert_fpr} of contact {}, but From is {from}",
            owners.join(", ")
        ));
    }
    if !emails.iter().any(|e| e.trim().eq_ignore_ascii_case(&from)) {
        return not_participant(format!(
            "valid signature by {cert_fpr}, but {from} is not a user ID of that certificate"
        ));
    }
    Verdict {
        signature: SignatureVerdict::Good,
        signer: Some(cert_fpr.clone()),
        reason: format!("good signature by {cert_fpr} ({from})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "AAAA1111BBBB2222CCCC3333DDDD4444EEEE5555";
    const SUBKEY: &str = "9999888877776666555544443333222211110000";
    const OTHER: &str = "0123456789ABCDEF0123456789ABCDEF01234567";

    fn valid(emails: &[&str]) -> SignatureFacts {
        SignatureFacts::Valid {
            signing_key: SUBKEY.into(),
            cert: CERT.into(),
            emails: emails.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn contact(addr: &str, fprs: &[&str]) -> ThreadContact {
        ThreadContact {
            address: addr.into(),
            key_fingerprints: fprs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn as_str_and_serde_agree() {
        for v in [
            SignatureVerdict::None,
            SignatureVerdict::Good,
            SignatureVerdict::Bad,
            SignatureVerdict::UnknownKey,
            SignatureVerdict::NotParticipant,
        ] {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
            assert_eq!(v.to_string(), v.as_str());
        }
    }

    #[test]
    fn good_when_everything_binds() {
        let v = signature_verdict(
            &valid(&["psirt@foocorp.example"]),
            Some("psirt@foocorp.example"),
            &[contact("psirt@foocorp.example", &[CERT])],
        );
        assert_eq!(v.signature, SignatureVerdict::Good);
        assert_eq!(v.signer.as_deref(), Some(CERT));
    }

    #[test]
    fn good_is_case_and_format_insensitive() {
        let spaced_lower = "aaaa 1111 bbbb 2222 cccc 3333 dddd 4444 eeee 5555";
        let v = signature_verdict(
            &valid(&["PSIRT@FooCorp.example"]),
            Some(" Psirt@foocorp.EXAMPLE "),
            &[contact("psirt@foocorp.example", &[spaced_lower])],
        );
        assert_eq!(v.signature, SignatureVerdict::Good, "{}", v.reason);
    }

    #[test]
    fn contact_bound_by_signing_subkey_fingerprint_counts() {
        let v = signature_verdict(
            &valid(&["a@x.example"]),
            Some("a@x.example"),
            &[contact("a@x.example", &[SUBKEY])],
        );
        assert_eq!(v.signature, SignatureVerdict::Good);
        assert_eq!(v.signer.as_deref(), Some(CERT));
    }

    #[test]
    fn key_of_nobody_in_thread_is_not_participant() {
        let v = signature_verdict(
            &valid(&["a@x.example"]),
            Some("a@x.example"),
            &[contact("a@x.example", &[OTHER])],
        );
        assert_eq!(v.signature, SignatureVerdict::NotParticipant);
        assert_eq!(v.signer.as_deref(), Some(CERT));
        assert!(v.reason.contains("no contact"), "{}", v.reason);
    }

    #[test]
    fn no_contacts_is_not_participant() {
        let v = signature_verdict(&valid(&["a@x.example"]), Some("a@x.example"), &[]);
        assert_eq!(v.signature, SignatureVerdict::NotParticipant);
    }

    #[test]
    fn empty_fingerprint_binds_nothing() {
        let v = signature_verdict(
            &valid(&["a@x.example"]),
            Some("a@x.example"),
            &[contact("a@x.example", &["", "  "])],
        );
        assert_eq!(v.signature, SignatureVerdict::NotParticipant);
    }

    #[test]
    fn bound_key_but_from_is_someone_else() {
        // The vendor's key signed, but the mail claims to be from the reporter.
        let v = signature_verdict(
            &valid(&["psirt@foocorp.example", "reporter@example.org"]),
            Some("reporter@example.org"),
            &[
                contact("psirt@foocorp.example", &[CERT]),
                contact("reporter@example.org", &[OTHER]),
            ],
        );
        assert_eq!(v.signature, SignatureVerdict::NotParticipant);
        assert!(
            v.reason.contains("From is reporter@example.org"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn bound_and_from_matches_contact_but_not_a_user_id() {
        let v = signature_verdict(
            &valid(&["someone-else@foocorp.example"]),
            Some("psirt@foocorp.example"),
            &[contact("psirt@foocorp.example", &[CERT])],
        );
        assert_eq!(v.signature, SignatureVerdict::NotParticipant);
        assert!(v.reason.contains("not a user ID"), "{}", v.reason);
    }

    #[test]
    fn cert_without_emails_is_never_good() {
        let v = signature_verdict(
            &valid(&[]),
            Some("psirt@foocorp.example"),
            &[contact("psirt@foocorp.example", &[CERT])],
        );
        assert_eq!(v.signature, SignatureVerdict::NotParticipant);
    }

    #[test]
    fn missing_or_empty_from_is_never_good() {
        for from in [None, Some(""), Some("   ")] {
            let v = signature_verdict(
                &valid(&["psirt@foocorp.example"]),
                from,
                &[contact("psirt@foocorp.example", &[CERT])],
            );
            assert_eq!(v.signature, SignatureVerdict::NotParticipant, "{from:?}");
        }
    }

    #[test]
    fn same_key_bound_to_two_contacts_matches_either() {
        let v = signature_verdict(
            &valid(&["a@x.example", "b@x.example"]),
            Some("b@x.example"),
            &[
                contact("a@x.example", &[CERT]),
                contact("b@x.example", &[CERT]),
            ],
        );
        assert_eq!(v.signature, SignatureVerdict::Good);
    }

    #[test]
    fn none_partial_bad_unknown() {
        let c = [contact("a@x.example", &[CERT])];
        let v = signature_verdict(&SignatureFacts::None, Some("a@x.example"), &c);
        assert_eq!((v.signature, v.signer), (SignatureVerdict::None, None));

        let v = signature_verdict(
            &SignatureFacts::Partial {
                reason: "signed part covers 1 of 3 parts".into(),
            },
            Some("a@x.example"),
            &c,
        );
        assert_eq!(v.signature, SignatureVerdict::None);
        assert_eq!(v.reason, "partial: signed part covers 1 of 3 parts");
        assert_eq!(v.signer, None);

        let v = signature_verdict(
            &SignatureFacts::Partial {
                reason: "partial: already prefixed".into(),
            },
            None,
            &c,
        );
        assert_eq!(v.reason, "partial: already prefixed");

        let v = signature_verdict(
            &SignatureFacts::Bad {
                reason: "does not verify".into(),
            },
            Some("a@x.example"),
            &c,
        );
        assert_eq!((v.signature, v.signer), (SignatureVerdict::Bad, None));
        assert!(v.reason.contains("does not verify"));

        let v = signature_verdict(
            &SignatureFacts::UnknownKey {
                issuer: OTHER.into(),
            },
            Some("a@x.example"),
            &c,
        );
        assert_eq!(v.signature, SignatureVerdict::UnknownKey);
        assert!(v.reason.contains(OTHER));
    }
}
