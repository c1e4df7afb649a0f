//! The case discussion: which messages are relayed to the other participants of a case.
//! Pure: the pipeline gathers the facts, [`relay_decision`] decides, the store records the
//! debt with the message, and `outbox::relay` composes the copies later.
//!
//! A case is hub-and-spoke unless an analyst turned relaying on (`set VU#… --discussion
//! relay`): then a participant's mail routed into it goes, quoted, to every OTHER
//! organization's contacts, each copy encrypted to its recipient and signed by the
//! coordinator. What is never relayed: mail marked private, automatic mail, delivery
//! reports, mail whose signature failed, and our own copies coming back (no loops).

use crate::verdict::SignatureVerdict;

/// How a case's mail is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Discussion {
    /// Hub-and-spoke: participants write to the coordinator; nothing is relayed.
    Hub,
    /// Participants' mail is relayed to the other participants.
    Relay,
}

impl Discussion {
    pub fn parse(s: &str) -> Option<Discussion> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hub" | "hub-and-spoke" | "off" | "none" => Some(Discussion::Hub),
            "relay" | "on" => Some(Discussion::Relay),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Discussion::Hub => "hub",
            Discussion::Relay => "relay",
        }
    }
}

/// The header every relayed copy carries (outside the encryption), so that a copy that comes
/// back — forwarded, looped by a list — is recognised and never relayed again.
pub const RELAY_HEADER: &str = "X-Casegate-Relay";

/// Marks mail for the coordinator only, in the subject.
pub const PRIVATE_MARK: &str = "[private]";

/// What the pipeline knows about a message when it decides whether to relay it.
#[derive(Debug, Clone)]
pub struct RelayFacts<'a> {
    /// The discussion mode of the thread the message was posted to.
    pub discussion: Discussion,
    /// The message is posted into that thread (not triage, quarantine or a new thread).
    pub posted: bool,
    /// The sender's address is a contact of a participant organization of the thread.
    pub from_participant: bool,
    /// Marked automatic (RFC 3834, list headers, empty return path).
    pub automatic: bool,
    /// A delivery status notification.
    pub delivery_report: bool,
    /// The subject the reader sees (the protected one when there is one).
    pub subject: Option<&'a str>,
    /// Every address the message says it was sent or delivered to (To, Cc, Delivered-To,
    /// X-Original-To), lower-case.
    pub recipients: &'a [String],
    /// `[coordinator] private_address`, lower-case.
    pub private_address: Option<&'a str>,
    /// The signature verdict in this thread.
    pub signature: SignatureVerdict,
    /// The message's Message-ID is one casegate sent.
    pub our_message_id: bool,
    /// The message carries [`RELAY_HEADER`].
    pub relay_marker: bool,
}

/// `Ok` when the message is to be relayed; else why not (shown in the outcome's notes).
pub fn relay_decision(f: &RelayFacts<'_>) -> Result<(), String> {
    if f.discussion != Discussion::Relay {
        return Err("the case is hub-and-spoke".into());
    }
    if !f.posted {
        return Err("not posted into the case".into());
    }
    if f.our_message_id || f.relay_marker {
        return Err("a copy of mail casegate sent (relays are never relayed again)".into());
    }
    if f.delivery_report {
        return Err("a delivery report".into());
    }
    if f.automatic {
        return Err("automatic mail".into());
    }
    if f.subject.is_some_and(is_private_subject) {
        return Err(format!("marked private ({PRIVATE_MARK} in the subject)"));
    }
    if let Some(private) = f.private_address
        && f.recipients.iter().any(|r| r.eq_ignore_ascii_case(private))
    {
        return Err(format!("sent to the private address {private}"));
    }
    match f.signature {
        SignatureVerdict::Bad => return Err("its signature failed".into()),
        SignatureVerdict::NotParticipant => {
            return Err("signed by a key that is not the sender's".into());
        }
        _ => {}
    }
    if !f.from_participant {
        return Err("the sender is not a participant of the case".into());
    }
    Ok(())
}

/// `[private]` anywhere in the subject, any case.
pub fn is_private_subject(subject: &str) -> bool {
    subject.to_ascii_lowercase().contains(PRIVATE_MARK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(recipients: &'a [String]) -> RelayFacts<'a> {
        RelayFacts {
            discussion: Discussion::Relay,
            posted: true,
            from_participant: true,
            automatic: false,
            delivery_report: false,
            subject: Some("Re: [VU#409117] patch timeline"),
            recipients,
            private_address: Some("private@cert.example"),
            signature: SignatureVerdict::None,
            our_message_id: false,
            relay_marker: false,
        }
    }

    #[test]
    fn a_participants_mail_in_a_relay_case_is_relayed() {
        let to = vec!["cert@cert.example".to_string()];
        assert_eq!(relay_decision(&facts(&to)), Ok(()));
        for signature in [SignatureVerdict::Good, SignatureVerdict::UnknownKey] {
            assert_eq!(
                relay_decision(&RelayFacts {
                    signature,
                    ..facts(&to)
                }),
                Ok(())
            );
        }
    }

    #[test]
    fn every_exclusion_holds_on_its_own() {
        let to = vec!["cert@cert.example".to_string()];
        let private_to = vec!["Private@Cert.example".to_string()];
        let cases: Vec<(&str, RelayFacts<'_>)> = vec![
            (
                "hub",
                RelayFacts {
                    discussion: Discussion::Hub,
                    ..facts(&to)
                },
            ),
            (
                "not posted",
                RelayFacts {
                    posted: false,
                    ..facts(&to)
                },
            ),
            (
                "our copy",
                RelayFacts {
                    our_message_id: true,
                    ..facts(&to)
                },
            ),
            (
                "relay marker",
                RelayFacts {
                    relay_marker: true,
                    ..facts(&to)
                },
            ),
            (
                "dsn",
                RelayFacts {
                    delivery_report: true,
                    ..facts(&to)
                },
            ),
            (
                "automatic",
                RelayFacts {
                    automatic: true,
                    ..facts(&to)
                },
            ),
            (
                "private subject",
                RelayFacts {
                    subject: Some("RE: [PRIVATE] VU#409117"),
                    ..facts(&to)
                },
            ),
            ("private address", facts(&private_to)),
            (
                "bad signature",
                RelayFacts {
                    signature: SignatureVerdict::Bad,
                    ..facts(&to)
                },
            ),
            (
                "someone else's key",
                RelayFacts {
                    signature: SignatureVerdict::NotParticipant,
                    ..facts(&to)
                },
            ),
            (
                "not a participant",
                RelayFacts {
                    from_participant: false,
                    ..facts(&to)
                },
            ),
        ];
        for (what, f) in cases {
            assert!(relay_decision(&f).is_err(), "{what} must not be relayed");
        }
    }

    #[test]
    fn discussion_modes_parse() {
        assert_eq!(Discussion::parse("Relay"), Some(Discussion::Relay));
        assert_eq!(Discussion::parse("hub-and-spoke"), Some(Discussion::Hub));
        assert_eq!(Discussion::parse("broadcast"), None);
        assert!(is_private_subject("Re: VU#1 [Private]"));
        assert!(!is_private_subject("Re: VU#1 private matters"));
    }
}
