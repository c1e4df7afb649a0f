//! The case discussion's relays: a participant's message, quoted, to every other
//! organization of the case — one copy per contact, encrypted to it, signed once by the
//! coordinator, through the outbox like any notice (keyless contacts held, stubs as
//! configured).
//!
//! The inbound pipeline only records that a relay is owed (`pending_relays`, in the message's
//! own transaction); [`pay_owed`] composes and queues it, and settles the debt in the same
//! transaction as the copies. A relay names its sender's organization, or "a participant" when
//! that organization is anonymous; it quotes the text, not the attachments; it says whether
//! the message was signed and by whom. In every copy the names, addresses and mail domains of
//! the case's anonymous organizations are removed from what is quoted, and so is every contact
//! address of the case: participants meet in the discussion, not in each other's mailboxes.

use sequoia_openpgp::Cert;

use super::compose::Notice;
use super::{Extras, OutboxError, QueuedCopy, Selection};
use crate::config::OutboxConfig;
use crate::keyring::Keyring;
use crate::store::{Contact, MessageRecord, NewAudit, OwedRelay, Store, StoreError, Thread};
use crate::tracking::TrackingNumber;

/// What a relay is attributed to when its organization is anonymous.
pub const ANONYMOUS: &str = "a participant";
/// Replaces a removed name.
const NAME_REMOVED: &str = "[a participant]";
/// Replaces a removed address.
const ADDRESS_REMOVED: &str = "[address removed]";
/// Replaces a removed mail domain.
const DOMAIN_REMOVED: &str = "[domain removed]";
/// Quoted text per relay, at most (bytes); the rest is left out, and the copy says so.
const MAX_QUOTED: usize = 256 * 1024;

/// Who relays, and how.
#[derive(Debug, Clone, Copy)]
pub struct RelayPolicy<'a> {
    /// The coordinator's address (From).
    pub from: &'a str,
    /// `[coordinator] private_address`, named in the footer.
    pub private_address: Option<&'a str>,
    pub outbox: &'a OutboxConfig,
    /// Recorded as the actor of the relay's audit record.
    pub actor: &'a str,
}

/// What became of one owed relay.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Relayed {
    pub thread: TrackingNumber,
    /// Message-ID of the relayed message.
    pub message_id: Option<String>,
    #[serde(skip)]
    pub message_ref: i64,
    /// `relayed`, `dropped` (can never be relayed) or `owed` (tried again later).
    pub result: &'static str,
    pub detail: String,
    pub copies: Vec<QueuedCopy>,
}

/// Names, addresses and domains to take out of relayed text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactions {
    pub names: Vec<String>,
    pub addresses: Vec<String>,
    pub domains: Vec<String>,
}

/// The relay's text, before redaction of the quoted parts.
#[derive(Debug, Clone)]
pub struct RelayText<'a> {
    pub thread: &'a str,
    /// The sender's organization, or [`ANONYMOUS`].
    pub from_label: &'a str,
    /// When the message arrived (UTC, RFC 3339).
    pub received_at: &'a str,
    /// One line: whether it was signed, and by whom.
    pub signed: &'a str,
    /// What the sender wrote (the readable text).
    pub text: &'a str,
    pub attachments: usize,
    pub coordinator: &'a str,
    pub private_address: Option<&'a str>,
}

/// Pays every relay owed (oldest first). A relay that cannot be made now (no coordinator
/// key, the message cannot be opened) stays owed; one that never can (relaying turned off,
/// nobody else in the case) is dropped with the reason.
pub fn pay_owed(
    store: &mut Store,
    keyring: &Keyring,
    policy: &RelayPolicy<'_>,
) -> Result<Vec<Relayed>, OutboxError> {
    let Some(coordinator) = keyring.coordinator() else {
        return Ok(Vec::new());
    };
    let mut done = Vec::new();
    for owed in store.owed_relays()? {
        done.push(pay_one(store, keyring, coordinator, policy, owed)?);
    }
    Ok(done)
}

fn pay_one(
    store: &mut Store,
    keyring: &Keyring,
    coordinator: &Cert,
    policy: &RelayPolicy<'_>,
    owed: OwedRelay,
) -> Result<Relayed, OutboxError> {
    let thread = store.thread_by_id(owed.thread_id)?;
    let record = store.message_record(owed.message_ref)?;
    let mut result = Relayed {
        thread: thread.number.clone(),
        message_id: record.message_id.clone(),
        message_ref: owed.message_ref,
        result: "owed",
        detail: String::new(),
        copies: Vec::new(),
    };
    let drop = |store: &mut Store, mut result: Relayed, why: String| {
        store.forget_owed_relay(owed.message_ref)?;
        tracing::info!(thread = %result.thread, message_ref = owed.message_ref, %why, "relay dropped");
        result.result = "dropped";
        result.detail = why;
        Ok::<_, OutboxError>(result)
    };
    if thread.discussion != "relay" {
        return drop(
            store,
            result,
            "the case no longer relays its discussion".into(),
        );
    }
    let contacts = store.contacts(thread.id)?;
    let sender = record.sender.clone().unwrap_or_default();
    let mut sender_orgs: Vec<&Contact> = Vec::new();
    for c in contacts.iter().filter(|c| c.address == sender) {
        if !sender_orgs.iter().any(|s| s.org_id == c.org_id) {
            sender_orgs.push(c);
        }
    }
    if sender_orgs.is_empty() {
        return drop(
            store,
            result,
            format!("{sender} is no longer a participant of {}", thread.number),
        );
    }
    let raw = store.raw_message(owed.message_ref)?;
    let opened = match crate::open::open(&raw, keyring) {
        Ok(o) => o,
        Err(e) => {
            result.detail = format!("cannot open the message now: {e}");
            return Ok(result);
        }
    };
    let entity = opened.inner.as_deref().unwrap_or(&raw);
    let readable = crate::message::readable(entity).ok();
    let text = readable
        .as_ref()
        .and_then(|r| r.text.clone())
        .unwrap_or_default();
    let attachments = readable.as_ref().map_or(0, |r| r.attachments.len());

    let mut anonymous = false;
    for s in &sender_orgs {
        anonymous |= store.org_by_id(s.org_id)?.anonymous;
    }
    let display_name = crate::message::parse(&raw)
        .ok()
        .and_then(|v| v.from.and_then(|m| m.name));
    let redactions = redactions_for(
        store,
        &contacts,
        anonymous.then_some(display_name).flatten(),
    )?;
    let org_label = sender_orgs
        .iter()
        .map(|c| c.org.as_str())
        .collect::<Vec<_>>()
        .join(" / ");
    let label = if anonymous { ANONYMOUS } else { &org_label };
    let signed = signature_line(&record, label, anonymous);
    let body = relay_body(
        &RelayText {
            thread: thread.number.as_str(),
            from_label: label,
            received_at: &record.received_at,
            signed: &signed,
            text: &text,
            attachments,
            coordinator: policy.from,
            private_address: policy.private_address,
        },
        &redactions,
    );
    let subject = relay_subject(
        &thread,
        record
            .subject
            .as_deref()
            .or(opened.protected_subject.as_deref()),
        label,
        &redactions,
    );
    let excluded: Vec<String> = sender_orgs.iter().map(|c| c.org.clone()).collect();
    let audit = NewAudit {
        at: chrono::Utc::now(),
        actor: policy.actor.to_string(),
        action: "relay".into(),
        thread: Some(thread.number.clone()),
        message_ref: Some(owed.message_ref),
        detail: format!(
            "message from {sender} ({}) relayed to the other participants",
            if anonymous { ANONYMOUS } else { &org_label }
        ),
    };
    let queued = super::notify_with(
        store,
        coordinator,
        &thread,
        &Selection::AllExcept(excluded),
        &Notice {
            thread: thread.number.as_str(),
            subject: &subject,
            body: &body,
            in_reply_to: None,
            automatic: false,
        },
        policy.outbox,
        policy.from,
        &Extras {
            audit: Some(&audit),
            relay_of: Some(owed.message_ref),
            reminder: false,
            at: None,
            ack_of: None,
        },
    );
    match queued {
        Ok(copies) => {
            tracing::info!(thread = %thread.number, copies = copies.len(), "relay queued");
            result.result = "relayed";
            result.detail = format!("{} cop(ies)", copies.len());
            result.copies = copies;
            Ok(result)
        }
        Err(OutboxError::NoRecipients(_)) => drop(
            store,
            result,
            "no other organization of the case has a contact".into(),
        ),
        // Another process settled it first: relayed once, by them.
        Err(OutboxError::Store(StoreError::Conflict(_))) => {
            result.result = "relayed";
            result.detail = "relayed by another process".into();
            Ok(result)
        }
        Err(e) => {
            tracing::warn!(thread = %thread.number, error = %e, "relay not queued; it stays owed");
            result.detail = e.to_string();
            Ok(result)
        }
    }
}

/// What to remove from a relay of this case: every contact address of the case; and for each
/// anonymous organization its names (as the directory and the thread call it, and the names
/// in its keys' user IDs), every address of it and their mail domains — plus the display
/// name the relayed message itself carries when its sender is anonymous.
fn redactions_for(
    store: &Store,
    contacts: &[Contact],
    sender_display_name: Option<String>,
) -> Result<Redactions, StoreError> {
    let mut r = Redactions::default();
    let push = |v: &mut Vec<String>, s: &str| {
        let s = s.trim();
        if s.chars().count() >= 2 && !v.iter().any(|x| x.eq_ignore_ascii_case(s)) {
            v.push(s.to_string());
        }
    };
    for c in contacts {
        push(&mut r.addresses, &c.address);
    }
    let mut seen = Vec::new();
    for c in contacts {
        if seen.contains(&c.org_id) {
            continue;
        }
        seen.push(c.org_id);
        let org = store.org_by_id(c.org_id)?;
        if !org.anonymous {
            continue;
        }
        for name in [org.name.as_str(), c.org.as_str()] {
            push(&mut r.names, name);
            // "Name <addr>" names of organizations made from mail: the name part too.
            if let Some((display, _)) = name.split_once(" <") {
                push(&mut r.names, display);
            }
        }
        for oc in store.org_contacts(c.org_id)? {
            push(&mut r.addresses, &oc.address);
            if let Some((_, domain)) = oc.address.rsplit_once('@') {
                push(&mut r.domains, domain);
            }
        }
        for fpr in store.org_keys(c.org_id)? {
            if let Some(cert) = store.cert(&fpr)? {
                for uid in &cert.user_ids {
                    let name = uid.split('<').next().unwrap_or_default();
                    push(&mut r.names, name.trim_end_matches([' ', '(']));
                    if let Some(addr) = uid.split('<').nth(1).and_then(|a| a.split('>').next()) {
                        push(&mut r.addresses, addr);
                        if let Some((_, domain)) = addr.rsplit_once('@') {
                            push(&mut r.domains, domain);
                        }
                    }
                }
            }
        }
    }
    if let Some(n) = sender_display_name {
        push(&mut r.names, &n);
    }
    // Longest first, so that "FooCorp PSIRT" goes before "FooCorp".
    for v in [&mut r.names, &mut r.addresses, &mut r.domains] {
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
    Ok(r)
}

/// Whether it was signed, and by whom — never naming an anonymous organization or its key.
fn signature_line(record: &MessageRecord, label: &str, anonymous: bool) -> String {
    match record.signature.as_str() {
        "good" if anonymous => {
            "signed with the participant's own key; the coordinator checked the signature".into()
        }
        "good" => format!(
            "signed by {label} with key {}; the coordinator checked the signature",
            record.signer.as_deref().unwrap_or("?")
        ),
        "unknown-key" => "signed with a key the coordinator does not know (not checked)".into(),
        _ if record
            .signature_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("partial")) =>
        {
            "only partly signed (it does not count as signed)".into()
        }
        _ => "not signed".into(),
    }
}

/// The relay's subject (inside the encryption): the sender's subject, redacted, with whom
/// it is from.
pub fn relay_subject(
    thread: &Thread,
    subject: Option<&str>,
    label: &str,
    redactions: &Redactions,
) -> String {
    let subject = subject
        .map(|s| redact(s, redactions))
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| thread.title.clone());
    let subject: String = subject
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    format!("{subject} (from {label})")
}

/// The relay's text: who wrote, when, whether signed, the quoted text (redacted), and how to
/// answer. Pure.
pub fn relay_body(t: &RelayText<'_>, redactions: &Redactions) -> String {
    let mut text = strip_signature_block(t.text);
    let mut cut = false;
    if text.len() > MAX_QUOTED {
        let mut end = MAX_QUOTED;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        cut = true;
    }
    let text = redact(&text, redactions);
    let mut label = t.from_label.chars();
    let label: String = label
        .next()
        .map(|c| c.to_uppercase().chain(label).collect())
        .unwrap_or_default();
    let mut out = format!(
        "{label} wrote in the discussion of {} ({}):\n\n",
        t.thread, t.received_at
    );
    for line in text.trim_end().lines() {
        if line.is_empty() {
            out.push_str(">\n");
        } else {
            out.push_str("> ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push('\n');
    if cut {
        out.push_str("[The message was longer; the rest is not relayed.]\n");
    }
    if t.attachments > 0 {
        out.push_str(&format!(
            "[The message had {} attachment(s); attachments are not relayed. Ask the coordinator if you need them.]\n",
            t.attachments
        ));
    }
    out.push_str(&format!("The message was {}.\n", t.signed));
    out.push_str(&format!(
        "\n-- \nThis is the case discussion of {}, relayed by the coordinator ({}). A reply \
         to this message goes to every participant of the case. To write to the coordinator \
         only, put [private] in the subject{}.\n",
        t.thread,
        t.coordinator,
        t.private_address
            .map(|p| format!(" or write to {p}"))
            .unwrap_or_default()
    ));
    out
}

/// The text above a signature separator (`-- ` on a line of its own).
fn strip_signature_block(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if bare == "-- " || bare == "--" {
            break;
        }
        out.push_str(line);
    }
    out
}

/// `text` with every address, then every domain, then every name taken out (any case;
/// domains and names only where they stand as words).
pub fn redact(text: &str, r: &Redactions) -> String {
    let mut out = text.to_string();
    for a in &r.addresses {
        out = replace_all(&out, a, ADDRESS_REMOVED, false);
    }
    for d in &r.domains {
        out = replace_all(&out, d, DOMAIN_REMOVED, true);
    }
    for n in &r.names {
        out = replace_all(&out, n, NAME_REMOVED, true);
    }
    out
}

/// Replaces every occurrence of `needle` (ASCII case folded) in `hay`; with `words`, only
/// where it is not part of a longer word.
fn replace_all(hay: &str, needle: &str, with: &str, words: bool) -> String {
    if needle.is_empty() {
        return hay.to_string();
    }
    let lower_hay = hay.to_lowercase();
    let lower_needle = needle.to_lowercase();
    // Lower-casing can change byte lengths outside ASCII; then fall back to exact matching.
    let (h, n) = if lower_hay.len() == hay.len() && lower_needle.len() == needle.len() {
        (lower_hay.as_str(), lower_needle.as_str())
    } else {
        (hay, needle)
    };
    let word_char = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(hay.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(pos) = h[from..].find(n) {
        let start = from + pos;
        let end = start + n.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        if words && (word_char(before) || word_char(after)) {
            from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        out.push_str(&hay[last..start]);
        out.push_str(with);
        last = end;
        from = end;
    }
    out.push_str(&hay[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon() -> Redactions {
        Redactions {
            names: vec![
                "AnonCorp PSIRT".into(),
                "AnonCorp".into(),
                "Alice Smith".into(),
            ],
            addresses: vec!["alice@anoncorp.example".into(), "bob@foo.example".into()],
            domains: vec!["anoncorp.example".into()],
        }
    }

    #[test]
    fn names_addresses_and_domains_of_anonymous_organizations_are_removed() {
        let text = "Hi, this is ANONCORP psirt (Alice Smith, ALICE@AnonCorp.example).\n\
                    See https://www.anoncorp.example/adv and mail bob@foo.example.\n\
                    Not touched: anoncorporation, myanoncorp.example.org? no: notanoncorp\n";
        let out = redact(text, &anon());
        let lower = out.to_lowercase();
        assert!(!lower.contains("alice"), "{out}");
        assert!(!lower.contains("anoncorp psirt"), "{out}");
        assert!(!lower.contains("@anoncorp.example"), "{out}");
        assert!(!lower.contains("www.anoncorp.example"), "{out}");
        assert!(!lower.contains("bob@foo.example"), "{out}");
        assert!(
            out.contains("anoncorporation"),
            "words that merely contain a name stay: {out}"
        );
        assert!(out.contains("notanoncorp"), "{out}");
        assert!(out.contains("[a participant]") && out.contains("[address removed]"));
    }

    #[test]
    fn the_body_quotes_attributes_and_says_how_it_was_signed() {
        let body = relay_body(
            &RelayText {
                thread: "VU#409117",
                from_label: ANONYMOUS,
                received_at: "2026-11-23T10:00:00Z",
                signed: "not signed",
                text: "We ship a fix on Friday.\r\n\r\nAnonCorp PSIRT\r\n-- \r\nAlice Smith\r\nalice@anoncorp.example\r\n",
                attachments: 2,
                coordinator: "cert@example.test",
                private_address: Some("private@example.test"),
            },
            &anon(),
        );
        assert!(body.starts_with("A participant wrote in the discussion of VU#409117"));
        assert!(
            body.contains("> We ship a fix on Friday.\n>\n> [a participant]\n"),
            "{body}"
        );
        assert!(
            !body.to_lowercase().contains("alice"),
            "signature block dropped: {body}"
        );
        assert!(body.contains("2 attachment(s)"));
        assert!(body.contains("The message was not signed."));
        assert!(body.contains("[private]") && body.contains("private@example.test"));
    }

    #[test]
    fn replacing_is_bounded_and_keeps_other_text() {
        assert_eq!(replace_all("aaaa", "aa", "b", false), "bb");
        assert_eq!(
            replace_all("Ünïcode FooCorp", "foocorp", "X", true),
            "Ünïcode X"
        );
        assert_eq!(replace_all("x", "", "y", false), "x");
        let long = "ab".repeat(100_000);
        assert_eq!(replace_all(&long, "ba", "", false).len(), 2);
    }
}
