//! Which thread a message belongs to: the rules of shared/tracking-numbers.md as one pure
//! function. No I/O: the pipeline asks the store first and hands the answers in as
//! [`Knowledge`], so every rule is unit-testable and `route --dry-run` explains itself.
//!
//! A number routes; it never authorizes. Whoever names a thread must be a participant of it,
//! else the message waits in triage: misrouting leaks a private case to the wrong people.

use std::collections::HashMap;

use crate::tracking::{Kind, TrackingNumber};

/// A thread as routing needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownThread {
    pub id: i64,
    pub number: TrackingNumber,
}

/// What the message says, after opening (the protected subject, if any, already applied).
#[derive(Debug, Clone, Default)]
pub struct RouteInput {
    /// Distinct tracking numbers in the subject, in order.
    pub numbers: Vec<TrackingNumber>,
    /// `In-Reply-To` first, then `References` newest first.
    pub reply_ids: Vec<String>,
    pub from: Option<String>,
    /// The message was addressed (To/Cc) to the reporting address.
    pub to_reporting_address: bool,
}

/// What the store knows that matters to this message.
#[derive(Debug, Clone, Default)]
pub struct Knowledge {
    /// Each number the subject names that the store knows → the thread mail quoting it goes to
    /// (a promoted report's number maps to its case).
    pub threads: HashMap<TrackingNumber, KnownThread>,
    /// The first of `reply_ids` that is a Message-ID we sent, with its thread.
    pub replied_to: Option<(String, KnownThread)>,
    /// Threads in which the sender's address is a contact: each of the threads above it is a
    /// contact of, and one more when it is a contact anywhere (routing needs no more; a
    /// prolific sender is in thousands).
    pub sender_threads: Vec<i64>,
}

/// What to do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Post(KnownThread),
    NewTicket,
    NewReport,
    Triage,
}

/// The decision, its one-line reason (stored and shown), and the steps that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub reason: String,
    pub steps: Vec<String>,
}

/// Applies rules 1–6 of shared/tracking-numbers.md, then the participant check.
pub fn decide(input: &RouteInput, known: &Knowledge) -> Decision {
    let mut steps = Vec::new();
    if !input.numbers.is_empty() {
        let written: Vec<&str> = input.numbers.iter().map(TrackingNumber::as_str).collect();
        steps.push(format!("subject names {}", written.join(", ")));
        let mut known_numbers = Vec::new();
        let mut targets: Vec<&KnownThread> = Vec::new();
        for n in &input.numbers {
            match known.threads.get(n) {
                Some(t) => {
                    if &t.number != n {
                        steps.push(format!("{n} was promoted to {}", t.number));
                    }
                    known_numbers.push(n.as_str());
                    if !targets.iter().any(|x| x.id == t.id) {
                        targets.push(t);
                    }
                }
                None => steps.push(format!("{n} is not known to the store")),
            }
        }
        return match targets.as_slice() {
            [] => {
                let reason = format!("unknown tracking number: {}", written.join(", "));
                steps.push("a number the store does not know never creates a thread".into());
                Decision {
                    action: Action::Triage,
                    reason,
                    steps,
                }
            }
            [one] => {
                steps.push(format!("exactly one known thread: {}", one.number));
                authorize(one, input, known, steps, "tracking number")
            }
            _ => {
                let reason = format!("ambiguous: {}", known_numbers.join(", "));
                steps.push(
                    "several known numbers lead to different threads: a person decides".into(),
                );
                Decision {
                    action: Action::Triage,
                    reason,
                    steps,
                }
            }
        };
    }
    steps.push("no tracking number in the subject".into());
    if let Some((id, thread)) = &known.replied_to {
        steps.push(format!(
            "replies to {id}, which we sent in {}",
            thread.number
        ));
        return authorize(thread, input, known, steps, "reply to our message");
    }
    if input.reply_ids.is_empty() {
        steps.push("not a reply".into());
    } else {
        steps.push("replies to no message we sent".into());
    }
    if !known.sender_threads.is_empty() {
        steps.push("the sender is a known participant: a new General ticket".into());
        return Decision {
            action: Action::NewTicket,
            reason: "new ticket for a known participant".into(),
            steps,
        };
    }
    if input.to_reporting_address {
        steps.push("unknown sender writing to the reporting address: a new report".into());
        return Decision {
            action: Action::NewReport,
            reason: "new report from an unknown sender".into(),
            steps,
        };
    }
    steps.push("unknown sender, not to the reporting address".into());
    Decision {
        action: Action::Triage,
        reason: "no tracking number, not a reply, unknown sender".into(),
        steps,
    }
}

fn authorize(
    thread: &KnownThread,
    input: &RouteInput,
    known: &Knowledge,
    mut steps: Vec<String>,
    how: &str,
) -> Decision {
    if known.sender_threads.contains(&thread.id) {
        steps.push(format!(
            "{} is a participant of {}",
            input.from.as_deref().unwrap_or("the sender"),
            thread.number
        ));
        Decision {
            action: Action::Post(thread.clone()),
            reason: format!("{how} {}", thread.number),
            steps,
        }
    } else {
        let reason = format!("sender is not a participant of {}", thread.number);
        steps.push(reason.clone());
        Decision {
            action: Action::Triage,
            reason,
            steps,
        }
    }
}

/// The kind of thread an action opens, if it opens one.
pub fn new_thread_kind(action: &Action) -> Option<Kind> {
    match action {
        Action::NewTicket => Some(Kind::Ticket),
        Action::NewReport => Some(Kind::Report),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> TrackingNumber {
        TrackingNumber::parse(s).unwrap()
    }

    fn t(id: i64, s: &str) -> KnownThread {
        KnownThread { id, number: n(s) }
    }

    fn knowledge() -> Knowledge {
        let mut k = Knowledge::default();
        k.threads.insert(n("VU#409117"), t(1, "VU#409117"));
        k.threads.insert(n("VU#563210"), t(2, "VU#563210"));
        // A promoted report leads to its case.
        k.threads.insert(n("VRF#25-10-CDFGH"), t(3, "VU#777001"));
        k.threads.insert(n("VU#777001"), t(3, "VU#777001"));
        k.sender_threads = vec![1, 3];
        k
    }

    fn input(numbers: &[&str]) -> RouteInput {
        RouteInput {
            numbers: numbers.iter().map(|s| n(s)).collect(),
            from: Some("psirt@foocorp.example".into()),
            ..Default::default()
        }
    }

    #[test]
    fn one_known_number_routes_to_its_thread() {
        let d = decide(&input(&["VU#409117"]), &knowledge());
        assert_eq!(d.action, Action::Post(t(1, "VU#409117")));
    }

    #[test]
    fn promoted_report_routes_to_its_case_and_counts_once_with_it() {
        let d = decide(&input(&["VRF#25-10-CDFGH"]), &knowledge());
        assert_eq!(d.action, Action::Post(t(3, "VU#777001")));
        let d = decide(&input(&["VRF#25-10-CDFGH", "VU#777001"]), &knowledge());
        assert_eq!(d.action, Action::Post(t(3, "VU#777001")));
    }

    #[test]
    fn different_threads_are_ambiguous() {
        let d = decide(&input(&["VU#409117", "VU#563210"]), &knowledge());
        assert_eq!(d.action, Action::Triage);
        assert_eq!(d.reason, "ambiguous: VU#409117, VU#563210");
    }

    #[test]
    fn unknown_number_never_creates_a_thread() {
        let d = decide(&input(&["VU#999999"]), &knowledge());
        assert_eq!(d.action, Action::Triage);
        assert!(
            d.reason.starts_with("unknown tracking number"),
            "{}",
            d.reason
        );
        // An unknown number beside a known one does not make it ambiguous.
        let d = decide(&input(&["VU#409117", "VU#999999"]), &knowledge());
        assert_eq!(d.action, Action::Post(t(1, "VU#409117")));
    }

    #[test]
    fn a_number_never_authorizes() {
        let d = decide(&input(&["VU#563210"]), &knowledge());
        assert_eq!(d.action, Action::Triage);
        assert_eq!(d.reason, "sender is not a participant of VU#563210");
    }

    #[test]
    fn thread_fallback_then_ticket_then_report() {
        let mut k = knowledge();
        let mut i = input(&[]);
        i.reply_ids = vec!["<x@elsewhere>".into(), "<n1@cert>".into()];
        k.replied_to = Some(("<n1@cert>".into(), t(1, "VU#409117")));
        assert_eq!(decide(&i, &k).action, Action::Post(t(1, "VU#409117")));
        k.replied_to = None;
        assert_eq!(decide(&i, &k).action, Action::NewTicket);
        k.sender_threads.clear();
        assert_eq!(decide(&i, &k).action, Action::Triage);
        i.to_reporting_address = true;
        assert_eq!(decide(&i, &k).action, Action::NewReport);
    }

    #[test]
    fn reply_from_a_non_participant_is_not_posted() {
        let mut k = knowledge();
        k.sender_threads = vec![];
        k.replied_to = Some(("<n1@cert>".into(), t(1, "VU#409117")));
        let d = decide(&input(&[]), &k);
        assert_eq!(d.action, Action::Triage);
        assert_eq!(d.reason, "sender is not a participant of VU#409117");
    }
}
