//! Delivery status notifications ("bounces") about mail casegate sent.
//!
//! A bounce is the mail system speaking, not a participant: it says that one copy of a
//! notice did not arrive (or is late). Recognising it lets the caller mark that outbox copy
//! instead of posting a mailer-daemon's text to a case as if the vendor had written (an
//! Exchange NDR even carries `Undeliverable: VU#409117 …` in its subject).
//!
//! Pure: bytes in, facts out. The standard form is RFC 3464 (`multipart/report;
//! report-type=delivery-status`, RFC 6533 for the `global-` variants); the only non-standard
//! forms accepted are the qmail/Yahoo and old Exim plain-text bounces, and only when they come
//! from the mail system (null return path or MAILER-DAEMON/postmaster) and use the exact
//! wording those programs print, so a person quoting a bounce is never taken for one.

use std::borrow::Cow;

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use crate::limits::Limits;

/// A delivery status notification about a message we sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bounce {
    /// Message-ID of the message the report is about, `<...>`: from the returned message or
    /// headers, else the report's `X-Original-Message-ID` (Gmail), else its `In-Reply-To`.
    pub original_message_id: Option<String>,
    /// One entry per recipient the report speaks of. May be empty for a malformed RFC 3464
    /// report: it is still a report, never a participant's message.
    pub recipients: Vec<BouncedRecipient>,
}

/// What happened to one recipient of the original message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BouncedRecipient {
    /// Lower-case address. `Original-Recipient` (the address as we gave it) when it holds an
    /// address, else `Final-Recipient` (which may be the result of the recipient's aliasing).
    pub address: String,
    /// `failed | delayed | delivered | relayed | expanded` (RFC 3464 `Action`, lower-case);
    /// derived from the status class when the field is missing.
    pub action: String,
    /// Enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: Option<String>,
    /// The remote server's words, unfolded to one line, without the `smtp;` type.
    pub diagnostic: Option<String>,
}

impl Bounce {
    /// True when at least one recipient permanently failed: the copy will never arrive.
    pub fn has_failures(&self) -> bool {
        self.recipients.iter().any(|r| r.action == "failed")
    }
}

/// Some(..) when `raw` is a DSN (RFC 3464 multipart/report; report-type=delivery-status), or a
/// common non-standard bounce (qmail/Yahoo and old Exim text bounces with the original headers
/// quoted) that matches reliably; None otherwise. Never panics.
pub fn parse_bounce(raw: &[u8]) -> Option<Bounce> {
    parse_bounce_with(raw, &Limits::default())
}

/// [`parse_bounce`] within `limits` (a message over them is no bounce we read).
pub fn parse_bounce_with(raw: &[u8], limits: &Limits) -> Option<Bounce> {
    bounce_of(&crate::message::parse_mime(raw, limits).ok()?)
}

/// [`parse_bounce_with`] of a parsed message.
pub fn bounce_of(msg: &Message<'_>) -> Option<Bounce> {
    standard_report(msg).or_else(|| text_bounce(msg))
}

/// Lines of a text bounce's explanation read for one recipient (they are one to three).
const MAX_DIAGNOSTIC_LINES: usize = 20;

/// Recipients read from one report, at most: a report about one of our copies names one, and
/// each recipient costs a scan of the report's text.
const MAX_RECIPIENTS: usize = 100;

// ---------------------------------------------------------------------------------------------
// RFC 3464

/// Diagnostic text is kept for a person to read; a remote server's essay is cut here.
const MAX_DIAGNOSTIC_CHARS: usize = 1000;

fn standard_report(msg: &Message<'_>) -> Option<Bounce> {
    // Only the top-level message's own parts: a DSN forwarded as an attachment
    // (message/rfc822) has its parts inside the nested message, and is a person's mail.
    let is_dsn_report = msg.parts.iter().any(|p| {
        is_type(p, "multipart", &["report"])
            && p.content_type()
                .and_then(|ct| ct.attribute("report-type"))
                .is_none_or(|t| {
                    let t = t.trim();
                    t.eq_ignore_ascii_case("delivery-status")
                        || t.eq_ignore_ascii_case("global-delivery-status")
                })
    });
    if !is_dsn_report {
        return None;
    }
    let status_part = msg
        .parts
        .iter()
        .find(|p| is_type(p, "message", &["delivery-status", "global-delivery-status"]))?;
    let fields = part_text(status_part)?;
    let blocks = field_blocks(&fields);

    let mut recipients: Vec<BouncedRecipient> = blocks
        .iter()
        .filter_map(recipient)
        .take(MAX_RECIPIENTS)
        .collect();
    if recipients.is_empty() {
        recipients = failed_recipients_header(msg);
    }
    let reported_id = blocks
        .iter()
        .find_map(|b| field(b, "x-original-message-id"))
        .and_then(bracket);
    let original_message_id = returned_message_id(msg)
        .or(reported_id)
        .or_else(|| first_id(msg.in_reply_to()));
    Some(Bounce {
        original_message_id,
        recipients,
    })
}

/// One field block: lower-case name and unfolded value, in order.
type Block = Vec<(String, String)>;

/// The body of message/delivery-status is header-like "fields" in blocks separated by blank
/// lines (per-message, then one per recipient). Folded lines are joined with a space.
fn field_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Block = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                current.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

fn field<'a>(block: &'a Block, name: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// A per-recipient block: it names a recipient. Blocks without one are per-message fields.
fn recipient(block: &Block) -> Option<BouncedRecipient> {
    let original = field(block, "original-recipient").and_then(typed_address);
    let final_ = field(block, "final-recipient").and_then(typed_address);
    let address = match (original, final_) {
        (Some(o), _) if o.contains('@') => o,
        (_, Some(f)) if f.contains('@') => f,
        (o, f) => o.or(f)?,
    };
    let status = field(block, "status").and_then(status_code);
    let action = field(block, "action")
        .and_then(|a| {
            a.split(|c: char| c.is_whitespace() || c == '(' || c == ';')
                .find(|t| !t.is_empty())
        })
        .map(str::to_ascii_lowercase)
        .or_else(|| status.as_deref().and_then(action_of_status))?;
    let diagnostic = field(block, "diagnostic-code").and_then(diagnostic_text);
    Some(BouncedRecipient {
        address,
        action,
        status,
        diagnostic,
    })
}

/// `rfc822; Nobody@FooCorp.example` → `nobody@foocorp.example` (also `<...>`, no type).
fn typed_address(value: &str) -> Option<String> {
    let addr = value.split_once(';').map_or(value, |(_, a)| a).trim();
    let addr = addr.trim_start_matches('<').trim_end_matches('>').trim();
    (!addr.is_empty()).then(|| addr.to_lowercase())
}

/// The first RFC 3463 enhanced status code in `text`: class 2, 4 or 5, then 1–3 digits twice.
/// An IPv4 address has four components and is not one.
fn status_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|t| t.trim_end_matches('.'))
        .find(|t| {
            let parts: Vec<&str> = t.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// A report without an `Action` still says what happened through its status class.
fn action_of_status(status: &str) -> Option<String> {
    match status.as_bytes().first() {
        Some(b'5') => Some("failed".into()),
        Some(b'4') => Some("delayed".into()),
        Some(b'2') => Some("delivered".into()),
        _ => None,
    }
}

/// `smtp; 550 5.1.1 <x>: User unknown` → `550 5.1.1 <x>: User unknown`, on one line.
fn diagnostic_text(value: &str) -> Option<String> {
    let text = match value.split_once(';') {
        Some((kind, rest))
            if !kind.trim().is_empty()
                && kind.trim().len() <= 20
                && kind
                    .trim()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            rest
        }
        _ => value,
    };
    one_line(text)
}

fn one_line(text: &str) -> Option<String> {
    let line: String = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_DIAGNOSTIC_CHARS)
        .collect();
    (!line.is_empty()).then_some(line)
}

/// The Message-ID of the returned message (message/rfc822, message/global) or of the returned
/// headers (text/rfc822-headers and its aliases).
fn returned_message_id(msg: &Message<'_>) -> Option<String> {
    msg.parts.iter().find_map(|part| {
        let is_message = is_type(part, "message", &["rfc822", "global"]);
        let is_headers = is_type(part, "text", &["rfc822-headers", "rfc822-header"])
            || is_type(part, "message", &["rfc822-headers", "global-headers"]);
        if !(is_message || is_headers) {
            return None;
        }
        match &part.body {
            PartType::Message(inner) => inner.message_id().and_then(bracket),
            _ => part_text(part).and_then(|t| headers_message_id(&t)),
        }
    })
}

/// Message-ID of a header block (the part after a blank line, if any, is ignored).
fn headers_message_id(text: &str) -> Option<String> {
    MessageParser::default()
        .with_limits(Limits::default().parse_limits())
        .parse_headers(text.trim_start().as_bytes())
        .and_then(|m| m.message_id().and_then(bracket))
}

fn failed_recipients_header(msg: &Message<'_>) -> Vec<BouncedRecipient> {
    let Some(list) = msg.header_raw("X-Failed-Recipients") else {
        return Vec::new();
    };
    list.split(',')
        .filter_map(typed_address)
        .filter(|a| a.contains('@') && !a.contains(char::is_whitespace))
        .take(MAX_RECIPIENTS)
        .map(|address| BouncedRecipient {
            address,
            action: "failed".into(),
            status: None,
            diagnostic: None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Non-standard text bounces

/// The programs whose plain-text bounces we recognise, by their fixed wording.
#[derive(Clone, Copy)]
enum TextFormat {
    /// qmail-send, and Yahoo's qmail-derived "Failure Notice".
    Qmail,
    /// Exim before it sent RFC 3464 reports (and Exim built without DSN support).
    Exim,
}

const QMAIL_INTROS: &[&str] = &[
    "This is the qmail-send program at",
    "I'm afraid I wasn't able to deliver your message to the following addresses.",
    "Sorry, we were unable to deliver your message to the following address",
];
const QMAIL_COPY: &[&str] = &[
    "--- Below this line is a copy of the message.",
    "--- Enclosed are the original headers of the message.",
];
const EXIM_INTRO: &str = "This message was created automatically by mail delivery software.";
/// Exim's permanent-failure wording; its delay warnings say "has not yet been delivered".
const EXIM_FAILED: &str = "could not be delivered to one or more of its";
const EXIM_COPY: &str = "------ This is a copy of the message";

fn text_bounce(msg: &Message<'_>) -> Option<Bounce> {
    if !from_mail_system(msg) {
        return None;
    }
    let body = msg.body_text(0)?;
    let format = if QMAIL_INTROS.iter().any(|i| body.contains(i)) {
        TextFormat::Qmail
    } else if body.contains(EXIM_INTRO) && body.contains(EXIM_FAILED) {
        TextFormat::Exim
    } else {
        return None;
    };
    let (report, copy) = match format {
        TextFormat::Qmail => split_at_marker(&body, QMAIL_COPY),
        TextFormat::Exim => split_at_marker(&body, &[EXIM_COPY]),
    };
    let recipients = match format {
        TextFormat::Qmail => qmail_recipients(report),
        TextFormat::Exim => exim_recipients(msg, report),
    };
    if recipients.is_empty() {
        return None;
    }
    let original_message_id = copy.and_then(|c| {
        // Exim adds "------ The body of the message is N characters long; ..." lines.
        let start: usize = c
            .split_inclusive('\n')
            .take_while(|l| l.trim().is_empty() || l.starts_with("---"))
            .map(str::len)
            .sum();
        headers_message_id(c.get(start..).unwrap_or(c))
    });
    Some(Bounce {
        original_message_id,
        recipients,
    })
}

/// A bounce is sent with a null envelope sender (RFC 5321 §4.5.5) from the mail system.
fn from_mail_system(msg: &Message<'_>) -> bool {
    let null_sender = msg
        .header_raw("Return-Path")
        .is_some_and(|rp| rp.trim() == "<>");
    let daemon = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|a| a.split('@').next().unwrap_or(a).trim().to_ascii_lowercase())
        .is_some_and(|local| local == "mailer-daemon" || local == "postmaster");
    null_sender || daemon
}

/// Text before the first line starting with a marker, and the text after that line.
fn split_at_marker<'a>(body: &'a str, markers: &[&str]) -> (&'a str, Option<&'a str>) {
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if markers.iter().any(|m| line.trim_start().starts_with(m)) {
            let report = body.get(..offset).unwrap_or(body);
            let copy = body.get(offset + line.len()..);
            return (report, copy);
        }
        offset += line.len();
    }
    (body, None)
}

/// qmail: `<addr>:` on its own line, then the remote server's words up to a blank line.
fn qmail_recipients(report: &str) -> Vec<BouncedRecipient> {
    let lines: Vec<&str> = report.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        let Some(addr) = line
            .strip_prefix('<')
            .and_then(|l| l.strip_suffix(">:"))
            .filter(|a| a.contains('@') && !a.contains(char::is_whitespace))
        else {
            continue;
        };
        if out.len() == MAX_RECIPIENTS {
            break;
        }
        let words: Vec<&str> = lines
            .get(i + 1..)
            .unwrap_or_default()
            .iter()
            .take_while(|l| !l.trim().is_empty())
            .take(MAX_DIAGNOSTIC_LINES)
            .copied()
            .collect();
        let diagnostic = one_line(&words.join(" "));
        out.push(BouncedRecipient {
            address: addr.to_lowercase(),
            action: "failed".into(),
            status: diagnostic.as_deref().and_then(status_code),
            diagnostic,
        });
    }
    out
}

/// Exim: the addresses in `X-Failed-Recipients` (else the indented lines under "failed:"),
/// each followed in the text by its more-indented explanation.
fn exim_recipients(msg: &Message<'_>, report: &str) -> Vec<BouncedRecipient> {
    let lines: Vec<&str> = report.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut addresses: Vec<String> = failed_recipients_header(msg)
        .into_iter()
        .map(|r| r.address)
        .collect();
    if addresses.is_empty() {
        let after = lines
            .iter()
            .position(|l| l.contains("address(es) failed:"))
            .map_or(lines.len(), |p| p + 1);
        addresses = lines
            .get(after..)
            .unwrap_or_default()
            .iter()
            .filter(|l| indent(l) > 0 && indent(l) <= 2)
            .map(|l| l.trim())
            .filter(|a| a.contains('@') && !a.contains(char::is_whitespace))
            .map(str::to_lowercase)
            .take(MAX_RECIPIENTS)
            .collect();
    }
    addresses
        .into_iter()
        .map(|address| {
            let explanation = lines
                .iter()
                .position(|l| l.trim().eq_ignore_ascii_case(&address))
                .map(|p| {
                    let own = indent(lines[p]); // ok: p comes from position() on lines
                    lines
                        .get(p + 1..)
                        .unwrap_or_default()
                        .iter()
                        .take_while(|l| !l.trim().is_empty() && indent(l) > own)
                        .take(MAX_DIAGNOSTIC_LINES)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" ")
                });
            let diagnostic = explanation.as_deref().and_then(one_line);
            BouncedRecipient {
                status: diagnostic.as_deref().and_then(status_code),
                address,
                action: "failed".into(),
                diagnostic,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn is_type(part: &MessagePart<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ctype)
            && ct
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|want| s.eq_ignore_ascii_case(want)))
    })
}

/// The decoded body of a leaf part as text, whatever mail-parser classified it as.
fn part_text<'a>(part: &'a MessagePart<'_>) -> Option<Cow<'a, str>> {
    match &part.body {
        PartType::Text(t) | PartType::Html(t) => Some(Cow::Borrowed(t.as_ref())),
        PartType::Binary(b) | PartType::InlineBinary(b) => Some(String::from_utf8_lossy(b)),
        PartType::Message(_) | PartType::Multipart(_) => None,
    }
}

fn bracket(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| format!("<{id}>"))
}

fn first_id(v: &mail_parser::HeaderValue<'_>) -> Option<String> {
    match v {
        mail_parser::HeaderValue::Text(t) => bracket(t),
        mail_parser::HeaderValue::TextList(list) => list.first().and_then(|t| bracket(t)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal RFC 3464 report in Postfix's shape, CRLF, with the original returned whole.
    fn postfix_dsn() -> Vec<u8> {
        let text = "Return-Path: <>\n\
From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\n\
To: cert@example.test\n\
Subject: Undelivered Mail Returned to Sender\n\
Auto-Submitted: auto-replied\n\
MIME-Version: 1.0\n\
Content-Type: multipart/report; report-type=delivery-status;\n\
\tboundary=\"B1\"\n\
\n\
--B1\n\
Content-Description: Notification\n\
Content-Type: text/plain; charset=us-ascii\n\
\n\
I'm sorry to have to inform you that your message could not be delivered.\n\
\n\
--B1\n\
Content-Description: Delivery report\n\
Content-Type: message/delivery-status\n\
\n\
Reporting-MTA: dns; mx.example.test\n\
Arrival-Date: Mon, 24 Nov 2025 10:00:00 +0000 (UTC)\n\
\n\
Final-Recipient: rfc822; Nobody@FooCorp.example\n\
Original-Recipient: rfc822;nobody@foocorp.example\n\
Action: failed\n\
Status: 5.1.1\n\
Remote-MTA: dns; mx.foocorp.example\n\
Diagnostic-Code: smtp; 550 5.1.1 <nobody@foocorp.example>: Recipient address\n\
\x20   rejected: User unknown in virtual mailbox table\n\
\n\
Final-Recipient: rfc822; full@foocorp.example\n\
Status: 4.2.2 (mailbox full)\n\
Diagnostic-Code: X-Postfix; over quota\n\
\n\
--B1\n\
Content-Description: Undelivered Message\n\
Content-Type: message/rfc822\n\
\n\
From: cert@example.test\n\
To: nobody@foocorp.example\n\
Subject: VU#409117\n\
Message-ID: <notice-1@casegate.example.test>\n\
\n\
body\n\
\n\
--B1--\n";
        text.replace('\n', "\r\n").into_bytes()
    }

    #[test]
    fn reads_an_rfc3464_report() {
        let b = parse_bounce(&postfix_dsn()).unwrap();
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("<notice-1@casegate.example.test>")
        );
        assert_eq!(b.recipients.len(), 2);
        let r = &b.recipients[0];
        assert_eq!(r.address, "nobody@foocorp.example");
        assert_eq!(r.action, "failed");
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            r.diagnostic.as_deref(),
            Some(
                "550 5.1.1 <nobody@foocorp.example>: Recipient address rejected: \
User unknown in virtual mailbox table"
            )
        );
        // No Action field: the status class says it; the comment after the code is dropped.
        let r = &b.recipients[1];
        assert_eq!(r.address, "full@foocorp.example");
        assert_eq!(r.action, "delayed");
        assert_eq!(r.status.as_deref(), Some("4.2.2"));
        assert_eq!(r.diagnostic.as_deref(), Some("over quota"));
        assert!(b.has_failures());
    }

    #[test]
    fn returned_headers_and_fallback_ids() {
        let raw = String::from_utf8(postfix_dsn()).unwrap().replace(
            "Content-Type: message/rfc822",
            "Content-Type: text/rfc822-headers",
        );
        let b = parse_bounce(raw.as_bytes()).unwrap();
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("<notice-1@casegate.example.test>")
        );
        // Without the returned message: Gmail's X-Original-Message-ID, then In-Reply-To.
        let cut = raw
            .find("--B1\r\nContent-Description: Undelivered")
            .unwrap();
        let mut no_copy = raw[..cut].to_string() + "--B1--\r\n";
        assert_eq!(
            parse_bounce(no_copy.as_bytes())
                .unwrap()
                .original_message_id,
            None
        );
        no_copy = no_copy.replacen(
            "Reporting-MTA: dns; mx.example.test\r\n",
            "Reporting-MTA: dns; mx.example.test\r\nX-Original-Message-ID: <notice-9@casegate.example.test>\r\n",
            1,
        );
        assert_eq!(
            parse_bounce(no_copy.as_bytes())
                .unwrap()
                .original_message_id
                .as_deref(),
            Some("<notice-9@casegate.example.test>")
        );
        let with_irt = raw[..cut].replacen(
            "Subject:",
            "In-Reply-To: <notice-3@casegate.example.test>\r\nSubject:",
            1,
        ) + "--B1--\r\n";
        assert_eq!(
            parse_bounce(with_irt.as_bytes())
                .unwrap()
                .original_message_id
                .as_deref(),
            Some("<notice-3@casegate.example.test>")
        );
    }

    #[test]
    fn other_reports_and_quoted_bounces_are_not_bounces() {
        let raw = String::from_utf8(postfix_dsn()).unwrap();
        // A read receipt is a report, not a delivery status.
        let mdn = raw
            .replace(
                "report-type=delivery-status",
                "report-type=disposition-notification",
            )
            .replace(
                "message/delivery-status",
                "message/disposition-notification",
            );
        assert_eq!(parse_bounce(mdn.as_bytes()), None);
        // A person forwarding the bounce as an attachment.
        let fwd = format!(
            "From: Alice <alice@foocorp.example>\r\nTo: cert@example.test\r\nSubject: Fwd: bounce\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"F\"\r\n\r\n--F\r\n\
Content-Type: text/plain\r\n\r\nsee below\r\n--F\r\nContent-Type: message/rfc822\r\n\r\n{raw}\r\n--F--\r\n"
        );
        assert_eq!(parse_bounce(fwd.as_bytes()), None);
        // A person quoting a qmail bounce inline.
        let quoted = "From: Alice <alice@foocorp.example>\r\nReturn-Path: <alice@foocorp.example>\r\n\
Subject: Fwd: failure notice\r\n\r\nHi. This is the qmail-send program at mx.foocorp.example.\r\n\
<nobody@foocorp.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n";
        assert_eq!(parse_bounce(quoted.as_bytes()), None);
        assert_eq!(
            parse_bounce(b"From: a@b.example\r\nSubject: hi\r\n\r\nhello"),
            None
        );
    }

    #[test]
    fn qmail_text_bounce() {
        let raw = "Return-Path: <>\nFrom: MAILER-DAEMON@mx.foocorp.example\nTo: cert@example.test\n\
Subject: failure notice\n\nHi. This is the qmail-send program at mx.foocorp.example.\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\n\
This is a permanent error; I've given up. Sorry it didn't work out.\n\n\
<Nobody@foocorp.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n\
--- Below this line is a copy of the message.\n\nReturn-Path: <cert@example.test>\n\
Message-ID: <notice-2@casegate.example.test>\nSubject: VU#409117\n\nbody\n";
        let b = parse_bounce(raw.as_bytes()).unwrap();
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("<notice-2@casegate.example.test>")
        );
        assert_eq!(
            b.recipients,
            vec![BouncedRecipient {
                address: "nobody@foocorp.example".into(),
                action: "failed".into(),
                status: Some("5.1.1".into()),
                diagnostic: Some("Sorry, no mailbox here by that name. (#5.1.1)".into()),
            }]
        );
    }

    #[test]
    fn exim_text_bounce_and_its_delay_warning() {
        let raw = "From: Mail Delivery System <Mailer-Daemon@mx.foocorp.example>\n\
To: cert@example.test\nSubject: Mail delivery failed: returning message to sender\n\
X-Failed-Recipients: gone@foocorp.example\n\n\
This message was created automatically by mail delivery software.\n\n\
A message that you sent could not be delivered to one or more of its\n\
recipients. This is a permanent error. The following address(es) failed:\n\n\
\x20 gone@foocorp.example\n    SMTP error from remote mail server after RCPT TO:<gone@foocorp.example>:\n\
\x20   host mx2.foocorp.example [192.0.2.7]: 550 5.1.1 User unknown\n\n\
------ This is a copy of the message, including all the headers. ------\n\
------ The body of the message is 150000 characters long; only the first\n\
------ 106496 or so are included here.\n\n\
Return-path: <cert@example.test>\nMessage-Id: <notice-3@casegate.example.test>\n\nbody\n";
        let b = parse_bounce(raw.as_bytes()).unwrap();
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("<notice-3@casegate.example.test>")
        );
        assert_eq!(b.recipients.len(), 1);
        assert_eq!(b.recipients[0].address, "gone@foocorp.example");
        assert_eq!(b.recipients[0].status.as_deref(), Some("5.1.1"));
        assert!(
            b.recipients[0]
                .diagnostic
                .as_deref()
                .unwrap()
                .ends_with("550 5.1.1 User unknown")
        );
        // Without X-Failed-Recipients the indented list is read.
        let b = parse_bounce(
            raw.replace("X-Failed-Recipients: gone@foocorp.example\n", "")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(b.recipients[0].address, "gone@foocorp.example");
        // A delay warning is not a failure: not matched in text form.
        let warn = raw.replace(
            "could not be delivered to one or more of its",
            "has not yet been delivered to one or more of its",
        );
        assert_eq!(parse_bounce(warn.as_bytes()), None);
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_code("5.1.1").as_deref(), Some("5.1.1"));
        assert_eq!(status_code("550-5.1.10 gone").as_deref(), Some("5.1.10"));
        assert_eq!(
            status_code("host [192.0.2.1]: 550 4.4.7.").as_deref(),
            Some("4.4.7")
        );
        assert_eq!(status_code("550 user unknown"), None);
        assert_eq!(status_code("3.1.1 6.0.0 5.1234.1"), None);
        assert_eq!(diagnostic_text("smtp;550 x").as_deref(), Some("550 x"));
        assert_eq!(
            diagnostic_text("550 5.1.1 a; b").as_deref(),
            Some("550 5.1.1 a; b")
        );
        assert_eq!(
            typed_address("RFC822; <A@B.example>").as_deref(),
            Some("a@b.example")
        );
    }

    #[test]
    fn never_panics_on_truncated_or_mangled_input() {
        let raw = postfix_dsn();
        for end in 0..raw.len() {
            let _ = parse_bounce(&raw[..end]);
        }
        let mut mangled = raw.clone();
        for i in (0..mangled.len()).step_by(7) {
            mangled[i] = [b'\n', b'\0', b':', b';', b'-', 0xff][i % 6];
            let _ = parse_bounce(&mangled);
        }
        let _ = parse_bounce(b"");
        let _ = parse_bounce(b"\xff\xfe\0");
        let _ = parse_bounce(b"Content-Type: multipart/report\r\n\r\n");
    }
}
