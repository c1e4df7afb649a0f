//! What sender authentication means for one message: pure, decided from facts the pipeline
//! gathered.
//!
//! Mail from a participant's address is the participant's only when it carries a good OpenPGP
//! signature bound to that participant, or passes sender authentication. Otherwise it is
//! routed as before but flagged `unauthenticated-sender` — or, with
//! `[policy] require_authenticated_participants`, waits in triage. A DMARC `fail` for a
//! participant's address always waits in triage: the domain itself says the mail is not its.

use super::{SenderAuth, SenderResult};

/// The facts about one message.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The From address is a contact of some thread.
    pub from_participant: bool,
    /// A good OpenPGP signature by a key bound to the From address.
    pub signed_by_participant: bool,
    pub sender: &'a SenderAuth,
    /// `[policy] require_authenticated_participants`.
    pub require_authenticated: bool,
}

/// What to do about the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: not a participant's address, or the participant is authenticated.
    Accept,
    /// Route as decided, flagged `unauthenticated-sender`.
    Flag,
    /// To triage, with this reason.
    Triage(String),
}

/// The flag a [`Decision::Flag`] (and a triaged unauthenticated message) carries.
pub const UNAUTHENTICATED: &str = "unauthenticated-sender";

pub fn decide(f: &Facts<'_>) -> Decision {
    if !f.from_participant {
        return Decision::Accept;
    }
    if f.sender.result == SenderResult::Fail {
        return Decision::Triage(format!(
            "sender not authenticated: DMARC fail for a participant's address ({})",
            f.sender.detail
        ));
    }
    if f.signed_by_participant || f.sender.result == SenderResult::Pass {
        return Decision::Accept;
    }
    if f.require_authenticated {
        Decision::Triage(format!(
            "sender not authenticated: no good OpenPGP signature of the participant, sender authentication {} ({})",
            f.sender.result, f.sender.detail
        ))
    } else {
        Decision::Flag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(participant: bool, signed: bool, auth: SenderResult, strict: bool) -> Decision {
        let sender = SenderAuth::new(auth, "detail");
        decide(&Facts {
            from_participant: participant,
            signed_by_participant: signed,
            sender: &sender,
            require_authenticated: strict,
        })
    }

    #[test]
    fn every_combination() {
        use SenderResult::*;
        for auth in [Pass, Fail, None, Temperror] {
            for signed in [false, true] {
                for strict in [false, true] {
                    // Not a participant: sender authentication changes nothing.
                    assert_eq!(facts(false, signed, auth, strict), Decision::Accept);
                    let d = facts(true, signed, auth, strict);
                    let want = match (auth, signed, strict) {
                        (Fail, _, _) => "triage",
                        (Pass, _, _) | (_, true, _) => "accept",
                        (_, false, true) => "triage",
                        (_, false, false) => "flag",
                    };
                    let got = match &d {
                        Decision::Accept => "accept",
                        Decision::Flag => "flag",
                        Decision::Triage(_) => "triage",
                    };
                    assert_eq!(got, want, "{auth} signed={signed} strict={strict}");
                    if let Decision::Triage(reason) = d {
                        assert!(reason.starts_with("sender not authenticated: "), "{reason}");
                        assert!(reason.contains("detail"), "{reason}");
                    }
                }
            }
        }
    }
}
