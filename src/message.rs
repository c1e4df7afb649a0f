//! The parsed view of one mail (mail-parser), kept beside its raw bytes.
//!
//! Parsing never fails on odd input: mail-parser is lenient, and what it cannot make sense of
//! is reported as a [`ParseError`] so the pipeline can quarantine the raw bytes with a reason.
//! Every parse in casegate goes through [`parse_mime`], which holds it to the [`Limits`]: the
//! sender chooses how deep, how many parts, how many header fields, not casegate's memory.

use std::borrow::Cow;

use mail_parser::{
    Address, HeaderName, HeaderValue, LimitExceeded, Message, MessageParser, PartType,
};

use crate::limits::Limits;

/// Why a message cannot be read as mail at all, or is not read because it passes a limit.
/// Each limit has its own reason, naming the setting.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("not an email message: no header fields found")]
    NoHeaders,
    #[error(
        "no From address (none, or only one with blanks or control characters inside): cannot tell who wrote it"
    )]
    NoFrom,
    #[error("MIME containers nested more than {0} deep (limits.max_nesting_depth)")]
    TooDeep(usize),
    #[error("more than {0} MIME parts (limits.max_parts)")]
    TooManyParts(usize),
    #[error("more than {0} header fields (limits.max_headers)")]
    TooManyHeaders(usize),
    #[error("decodes to more than {0} bytes (limits.max_decoded_bytes)")]
    TooMuchDecoded(u64),
    /// A part with two Content-Type (or Content-Transfer-Encoding) fields: readers disagree on
    /// which one counts (mail-parser takes the last, Thunderbird and Python the first), so
    /// there is no one structure to verify or show.
    #[error("ambiguous MIME structure: a part has {count} {field} fields")]
    Ambiguous { field: &'static str, count: usize },
    /// MIME delimiters interleaved so that the parser cannot tell which entity one closes
    /// (`LimitExceeded::Structure` of the patched mail-parser): no structure to trust.
    #[error(
        "cannot parse the MIME structure ({0}): multipart delimiters and attached messages interleave"
    )]
    Structure(&'static str),
}

impl From<LimitExceeded> for ParseError {
    fn from(e: LimitExceeded) -> Self {
        match e {
            LimitExceeded::Depth(n) => ParseError::TooDeep(n),
            LimitExceeded::Parts(n) => ParseError::TooManyParts(n),
            LimitExceeded::Headers(n) => ParseError::TooManyHeaders(n),
            LimitExceeded::Structure(what) => ParseError::Structure(what),
        }
    }
}

/// Parses one MIME entity (a whole message, or decrypted content) within `limits`: nesting,
/// parts and header fields are bounded while parsing (mail-parser stops at the first one
/// passed), then the decoded size and the structure's ambiguity are checked. The one way
/// casegate calls mail-parser on a message.
pub fn parse_mime<'x>(raw: &'x [u8], limits: &Limits) -> Result<Message<'x>, ParseError> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::Empty);
    }
    #[cfg(test)]
    count_parse();
    let msg = MessageParser::default()
        .with_limits(limits.parse_limits())
        .parse_checked(raw)?
        .ok_or(ParseError::NoHeaders)?;
    if msg.headers().is_empty() {
        return Err(ParseError::NoHeaders);
    }
    let mut decoded: u64 = 0;
    // Attached messages are nested values; walk them with a stack (their depth is bounded
    // by the parse, but the walk need not rely on it).
    let mut pending: Vec<&Message<'_>> = vec![&msg];
    while let Some(m) = pending.pop() {
        for part in &m.parts {
            for (name, field) in [
                (HeaderName::ContentType, "Content-Type"),
                (
                    HeaderName::ContentTransferEncoding,
                    "Content-Transfer-Encoding",
                ),
            ] {
                let count = part.headers.iter().filter(|h| h.name == name).count();
                if count > 1 {
                    return Err(ParseError::Ambiguous { field, count });
                }
            }
            match &part.body {
                PartType::Message(nested) => pending.push(nested),
                PartType::Multipart(_) => {}
                _ => decoded = decoded.saturating_add(part.contents().len() as u64),
            }
        }
        if decoded > limits.max_decoded_bytes {
            return Err(ParseError::TooMuchDecoded(limits.max_decoded_bytes));
        }
    }
    Ok(msg)
}

#[cfg(test)]
thread_local! {
    /// mail-parser runs on this thread (tests: a message is parsed once on the ingest path).
    static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn count_parse() {
    PARSES.with(|n| n.set(n.get() + 1));
}

/// How often mail-parser ran on this thread so far (tests).
#[cfg(test)]
pub(crate) fn parses_on_this_thread() -> usize {
    PARSES.with(std::cell::Cell::get)
}

/// One mailbox: lower-cased address and display name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mailbox {
    pub address: String,
    pub name: Option<String>,
}

/// What casegate reads from a message's headers (its bodies: [`readable_of`], for display).
#[derive(Debug, Clone, Default)]
pub struct MailView {
    /// Decoded (RFC 2047, unfolded) subject.
    pub subject: Option<String>,
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    /// With angle brackets, as in the header: `<id@host>`.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// The Date header in UTC, RFC 3339.
    pub date: Option<String>,
    /// Why this looks like mail written by a machine (RFC 3834 and common practice), if it does.
    pub automatic: Option<String>,
    /// `Content-Type` of the top-level entity, lower-case (`multipart/encrypted`, ...).
    pub content_type: String,
    /// Addresses the receiving MTA says it delivered to (`Delivered-To`, `X-Original-To`),
    /// lower-case: how mail Bcc'd to the private address is recognised.
    pub delivered_to: Vec<String>,
    /// The message carries casegate's relay marker (`X-Casegate-Relay`): a relayed copy.
    pub relay_marker: bool,
}

impl MailView {
    /// Every address in To and Cc.
    pub fn recipients(&self) -> impl Iterator<Item = &Mailbox> {
        self.to.iter().chain(self.cc.iter())
    }
}

/// Parses a complete message within the default [`Limits`]. Fails when there is nothing a
/// person could call a mail, or a limit is passed.
pub fn parse(raw: &[u8]) -> Result<MailView, ParseError> {
    parse_with(raw, &Limits::default())
}

/// [`parse`] within `limits`.
pub fn parse_with(raw: &[u8], limits: &Limits) -> Result<MailView, ParseError> {
    Ok(parse_message(raw, limits)?.1)
}

/// [`parse_with`] that also hands back the parsed message, for the stages after it (bounce
/// detection, opening, offered keys) to read instead of parsing the bytes again.
pub fn parse_message<'x>(
    raw: &'x [u8],
    limits: &Limits,
) -> Result<(Message<'x>, MailView), ParseError> {
    let msg = parse_mime(raw, limits)?;
    let view = view_of(&msg);
    if view.from.is_none() {
        return Err(ParseError::NoFrom);
    }
    Ok((msg, view))
}

/// Parses a MIME entity that may lack the headers of a whole message (a decrypted inner part).
pub fn parse_entity(raw: &[u8]) -> Result<MailView, ParseError> {
    parse_entity_with(raw, &Limits::default())
}

/// [`parse_entity`] within `limits`.
pub fn parse_entity_with(raw: &[u8], limits: &Limits) -> Result<MailView, ParseError> {
    Ok(view_of(&parse_mime(raw, limits)?))
}

/// What casegate reads from a parsed message (see [`parse_mime`]).
pub fn view_of(msg: &Message<'_>) -> MailView {
    let content_type = msg
        .root_part()
        .headers()
        .iter()
        .find_map(|h| h.value().as_content_type())
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        })
        .unwrap_or_else(|| "text/plain".to_string());
    let mut view = MailView {
        subject: msg.subject().map(clean_subject),
        from: mailboxes(msg.from()).into_iter().next(),
        to: mailboxes(msg.to()),
        cc: mailboxes(msg.cc()),
        reply_to: mailboxes(msg.reply_to()),
        message_id: msg.message_id().map(bracket),
        in_reply_to: ids(msg.in_reply_to()),
        references: ids(msg.references()),
        date: msg.date().and_then(|d| {
            chrono::DateTime::from_timestamp(d.to_timestamp(), 0).map(crate::store::time_text)
        }),
        automatic: None,
        content_type,
        delivered_to: msg
            .headers()
            .iter()
            .filter(|h| {
                let n = h.name().to_ascii_lowercase();
                n == "delivered-to" || n == "x-original-to"
            })
            .filter_map(|h| h.value().as_text())
            .take(64)
            .map(|v| {
                v.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_lowercase()
            })
            .collect(),
        relay_marker: msg.headers().iter().any(|h| {
            h.name()
                .eq_ignore_ascii_case(crate::discussion::RELAY_HEADER)
        }),
    };
    view.automatic = automatic_reason(msg, &view);
    view
}

use mail_parser::MimeHeaders;

/// The transfer-decoded body bytes, without charset conversion (signatures are over bytes,
/// and a saved attachment is the file the sender attached, byte for byte).
pub fn body_bytes<'a>(
    msg: &'a mail_parser::Message<'_>,
    part: &'a mail_parser::MessagePart<'_>,
) -> std::borrow::Cow<'a, [u8]> {
    use mail_parser::PartType;
    use std::borrow::Cow;
    match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => Cow::Borrowed(b.as_ref()),
        PartType::Text(_) | PartType::Html(_) => {
            // The buffer the offsets index: for an attached message inside another, the
            // outer input (`raw_message()` would be only the attached message).
            let raw: &[u8] = msg.raw_message.as_ref();
            let s = (part.offset_body as usize).min(raw.len());
            let e = (part.offset_end as usize).min(raw.len()).max(s);
            let body = &raw[s..e];
            let decoded = match part.encoding {
                mail_parser::Encoding::Base64 => mail_parser::decoders::base64::base64_decode(body),
                mail_parser::Encoding::QuotedPrintable => {
                    mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
                }
                mail_parser::Encoding::None => return Cow::Borrowed(body),
            };
            match decoded {
                Some(d) => Cow::Owned(d),
                None => Cow::Borrowed(part.contents()),
            }
        }
        PartType::Message(m) => Cow::Borrowed(m.raw_message()),
        PartType::Multipart(_) => Cow::Borrowed(&[]),
    }
}

/// One header as a person reads it (decoded, addresses as `Name <address>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct HeaderLine {
    pub name: String,
    pub value: String,
}

/// The headers `read` shows, in this order, when present.
const SHOWN_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Date",
    "Subject",
    "Message-ID",
    "In-Reply-To",
];

/// The headers of a message a person wants to see, decoded. Unparseable mail gives none.
pub fn display_headers(raw: &[u8]) -> Vec<HeaderLine> {
    let Some(msg) = reading_parser().parse(raw) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in SHOWN_HEADERS {
        for value in msg.header_values(*name) {
            let shown = match value {
                HeaderValue::Address(a) => a
                    .iter()
                    .map(|addr| match (addr.name(), addr.address()) {
                        (Some(n), Some(a)) => format!("{n} <{a}>"),
                        (None, Some(a)) => a.to_string(),
                        (Some(n), None) => n.to_string(),
                        (None, None) => String::new(),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                HeaderValue::Text(t) => t.to_string(),
                HeaderValue::TextList(l) => l.join(", "),
                HeaderValue::DateTime(d) => d.to_rfc3339(),
                _ => msg
                    .header_raw(*name)
                    .map(|r| r.trim().to_string())
                    .unwrap_or_default(),
            };
            let shown = match *name {
                "Message-ID" | "In-Reply-To" if !shown.is_empty() => {
                    shown.split(", ").map(bracket).collect::<Vec<_>>().join(" ")
                }
                _ => shown,
            };
            out.push(HeaderLine {
                name: (*name).to_string(),
                value: shown,
            });
        }
    }
    out
}

/// A file attached to a message as `read` lists it: numbered from 1 in the order of the MIME
/// tree. The name is the sender's and is only ever shown, never used as a path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct NumberedAttachment {
    pub n: usize,
    pub name: Option<String>,
    pub content_type: String,
    pub size: usize,
}

/// What a person reads of one MIME entity: its text (HTML converted to text, never rendered)
/// and its attachments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Readable {
    pub text: Option<String>,
    /// The text was converted from HTML (the message had no plain-text version).
    pub text_from_html: bool,
    /// The message carries an HTML version.
    pub has_html: bool,
    pub attachments: Vec<NumberedAttachment>,
}

/// Reads an entity (a whole message, or the decrypted content of one) for a person.
pub fn readable(entity: &[u8]) -> Result<Readable, ParseError> {
    Ok(readable_of(&parse_for_reading(entity)?))
}

/// [`readable`] of an entity parsed already.
pub fn readable_of(msg: &Message<'_>) -> Readable {
    // The text parts joined by a blank line, copied once (most mail has one).
    let mut text: Option<String> = None;
    let mut from_html = false;
    for &id in &msg.text_body {
        let Some(part) = msg.part(id) else { continue };
        let piece = match &part.body {
            mail_parser::PartType::Text(t) => Cow::Borrowed(t.as_ref()),
            mail_parser::PartType::Html(h) => {
                from_html = true;
                Cow::Owned(html_to_text(h))
            }
            _ => continue,
        };
        match &mut text {
            Some(all) => {
                all.push_str("\n\n");
                all.push_str(&piece);
            }
            None => text = Some(piece.into_owned()),
        }
    }
    let has_html = msg
        .html_body
        .iter()
        .filter_map(|&id| msg.part(id))
        .any(|p| matches!(p.body, mail_parser::PartType::Html(_)));
    let attachments = listed_attachments(msg)
        .into_iter()
        .enumerate()
        .map(|(i, part)| describe_attachment(i + 1, part))
        .collect();
    Readable {
        text,
        text_from_html: from_html,
        has_html,
        attachments,
    }
}

/// Attachment `n` (from 1, as [`readable`] numbers them) with its bytes, transfer-decoded.
pub fn attachment(entity: &[u8], n: usize) -> Option<(NumberedAttachment, Vec<u8>)> {
    let msg = parse_for_reading(entity).ok()?;
    let parts = listed_attachments(&msg);
    let part = *parts.get(n.checked_sub(1)?)?;
    Some((
        describe_attachment(n, part),
        body_bytes(&msg, part).into_owned(),
    ))
}

/// The HTML version of an entity's text, as sent (for a face that sanitizes it; never to be
/// shown as is).
pub fn html_source(entity: &[u8]) -> Option<String> {
    let msg = parse_for_reading(entity).ok()?;
    msg.html_body
        .iter()
        .filter_map(|&id| msg.part(id))
        .find_map(|p| match &p.body {
            mail_parser::PartType::Html(h) => Some(h.to_string()),
            _ => None,
        })
}

fn parse_for_reading(entity: &[u8]) -> Result<mail_parser::Message<'_>, ParseError> {
    if entity.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::Empty);
    }
    #[cfg(test)]
    count_parse();
    reading_parser().parse(entity).ok_or(ParseError::NoHeaders)
}

/// mail-parser for showing a stored message to a person: within the default [`Limits`], and
/// for a message quarantined for passing them, what was read up to the limit (a person may
/// look at anything in quarantine; casegate never routes or verifies on this reading).
fn reading_parser() -> MessageParser {
    MessageParser::default().with_limits(Limits::default().parse_limits())
}

/// The parts a person would call attachments: everything mail-parser lists as one, except the
/// OpenPGP machinery of PGP/MIME (the detached signature of a `multipart/signed`, the version
/// part of a `multipart/encrypted`), which `read` reports as verdicts instead.
fn listed_attachments<'m>(
    msg: &'m mail_parser::Message<'m>,
) -> Vec<&'m mail_parser::MessagePart<'m>> {
    let mut machinery = std::collections::HashSet::new();
    for part in &msg.parts {
        let mail_parser::PartType::Multipart(children) = &part.body else {
            continue;
        };
        let Some(ct) = part.content_type() else {
            continue;
        };
        let subtype = ct.subtype().unwrap_or("").to_ascii_lowercase();
        let protocol = ct
            .attribute("protocol")
            .map(|p| p.trim().to_ascii_lowercase());
        match (subtype.as_str(), protocol.as_deref()) {
            ("signed", Some("application/pgp-signature")) if children.len() == 2 => {
                machinery.insert(children[1]);
            }
            ("encrypted", Some("application/pgp-encrypted")) if !children.is_empty() => {
                machinery.insert(children[0]);
            }
            _ => {}
        }
    }
    msg.attachments
        .iter()
        .filter(|id| !machinery.contains(*id))
        .filter_map(|&id| msg.part(id))
        .collect()
}

fn describe_attachment(n: usize, part: &mail_parser::MessagePart<'_>) -> NumberedAttachment {
    let content_type = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        })
        .unwrap_or_else(|| match part.body {
            mail_parser::PartType::Message(_) => "message/rfc822".into(),
            _ => "application/octet-stream".into(),
        });
    let name = part.attachment_name().map(str::to_string).or_else(|| {
        part.message()
            .and_then(|m| m.subject())
            .map(|s| format!("forwarded message: {}", clean_subject(s)))
    });
    let size = match &part.body {
        mail_parser::PartType::Message(m) => m.raw_message().len(),
        _ => part.contents().len(),
    };
    NumberedAttachment {
        n,
        name,
        content_type,
        size,
    }
}

/// HTML larger than this is converted by mail-parser's simple linear converter instead.
const MAX_HTML_FOR_LAYOUT: usize = 1 << 20;
/// Element nesting (estimated) past which the same: html5ever's tree building is quadratic in
/// depth, and browsers stop nesting at 512 anyway.
const MAX_HTML_NESTING: usize = 200;
/// Width the text is wrapped to.
const TEXT_WIDTH: usize = 80;

/// HTML as plain text: links and structure kept as text, nothing fetched, nothing rendered.
/// html2text lays out tables and lists; mail that is too large or too deeply nested for that
/// (sender-controlled, so bounded) gets mail-parser's linear tag stripping.
pub fn html_to_text(html: &str) -> String {
    if html.len() <= MAX_HTML_FOR_LAYOUT && html_nesting(html) <= MAX_HTML_NESTING {
        let converted = std::panic::catch_unwind(|| {
            html2text::config::plain()
                .string_from_read(html.as_bytes(), TEXT_WIDTH)
                .ok()
        });
        if let Ok(Some(text)) = converted {
            return text;
        }
    }
    mail_parser::decoders::html::html_to_text(html)
}

/// An upper estimate of how deeply the elements of `html` nest: open tags minus close tags,
/// not counting void elements, self-closed tags and elements a sibling closes implicitly.
/// Linear in the length.
fn html_nesting(html: &str) -> usize {
    const NOT_NESTING: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "p", "li", "td", "th", "tr", "option", "dt", "dd", "!",
    ];
    let bytes = html.as_bytes();
    let (mut depth, mut max) = (0usize, 0usize);
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &bytes[i..]) {
        let start = i + off + 1;
        let close = bytes.get(start) == Some(&b'/');
        let name_start = if close { start + 1 } else { start };
        let name_len = bytes[name_start.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'!')
            .count();
        let end = memchr::memchr(b'>', &bytes[start.min(bytes.len())..])
            .map(|e| start + e)
            .unwrap_or(bytes.len());
        i = (end + 1).min(bytes.len());
        if name_len == 0 {
            continue;
        }
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        let self_closed = end > 0 && bytes.get(end - 1) == Some(&b'/');
        if NOT_NESTING.contains(&name.as_str()) || name.starts_with('!') {
            continue;
        }
        if close {
            depth = depth.saturating_sub(1);
        } else if !self_closed {
            depth += 1;
            max = max.max(depth);
        }
        if i >= bytes.len() {
            break;
        }
    }
    max
}

/// OpenPGP public keys the sender offers: attached keys (`application/pgp-keys`, or an armored
/// public key block in an `.asc`/`.key`/`.pub` attachment) and the `Autocrypt` header's keydata.
/// Whose keys they are is for the caller to check; this only finds them, at most
/// [`MAX_OFFERED_KEYS`] (each is parsed and its signatures checked: a sender's count must not
/// be casegate's work).
pub fn offered_keys(raw: &[u8], limits: &Limits) -> Vec<Vec<u8>> {
    match parse_mime(raw, limits) {
        Ok(msg) => offered_keys_of(&msg),
        Err(_) => Vec::new(),
    }
}

/// [`offered_keys`] of a parsed message.
pub fn offered_keys_of(msg: &Message<'_>) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for part in msg.attachments() {
        if keys.len() == MAX_OFFERED_KEYS {
            break;
        }
        let ct = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase())
            .unwrap_or_default();
        let name = part.attachment_name().unwrap_or("").to_ascii_lowercase();
        let contents = part.contents();
        let armored = contents
            .windows(36)
            .any(|w| w == b"-----BEGIN PGP PUBLIC KEY BLOCK-----");
        if ct == "application/pgp-keys"
            || ([".asc", ".key", ".pub"].iter().any(|e| name.ends_with(e)) && armored)
        {
            keys.push(contents.to_vec());
        }
    }
    for value in msg.header_values("Autocrypt").take(MAX_OFFERED_KEYS) {
        let Some(text) = value.as_text() else {
            continue;
        };
        if let Some(data) = text
            .split(';')
            .find_map(|kv| kv.trim().strip_prefix("keydata="))
        {
            let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
            use base64::Engine;
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) {
                keys.push(bytes);
            }
        }
    }
    keys
}

/// Keys taken from one message (attachments and Autocrypt headers each).
pub const MAX_OFFERED_KEYS: usize = 8;

/// The key data of the `Autocrypt` headers (of the top-level header block) whose `addr=` is
/// `from` — what a participant's mail client announces as its key.
pub fn autocrypt_keys(raw: &[u8], from: &str) -> Vec<Vec<u8>> {
    match MessageParser::default().parse_headers(raw) {
        Some(msg) => autocrypt_keys_of(&msg, from),
        None => Vec::new(),
    }
}

/// [`autocrypt_keys`] of a parsed message.
pub fn autocrypt_keys_of(msg: &Message<'_>, from: &str) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for value in msg.header_values("Autocrypt").take(MAX_OFFERED_KEYS) {
        let Some(text) = value.as_text() else {
            continue;
        };
        let mut addr = None;
        let mut data = None;
        for kv in text.split(';') {
            let kv = kv.trim();
            if let Some(a) = kv.strip_prefix("addr=") {
                addr = Some(a.trim());
            } else if let Some(d) = kv.strip_prefix("keydata=") {
                data = Some(d);
            }
        }
        if !addr.is_some_and(|a| a.eq_ignore_ascii_case(from.trim())) {
            continue;
        }
        if let Some(data) = data {
            let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
            use base64::Engine;
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) {
                keys.push(bytes);
            }
        }
    }
    keys
}

fn clean_subject(s: &str) -> String {
    // Folding is removed by the parser; stray control characters are not meaningful.
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn bracket(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{id}>")
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![bracket(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| bracket(t)).collect(),
        _ => Vec::new(),
    }
}

fn mailboxes(a: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(a) = a else { return Vec::new() };
    a.iter()
        .filter_map(|addr| {
            Some(Mailbox {
                address: usable_address(addr.address()?)?,
                name: addr.name().map(str::to_string),
            })
        })
        .collect()
}

/// An address as casegate keeps it (trimmed, lower-case), or None when it cannot be one: no
/// `@`, or whitespace or control characters inside (a parser may hand those through from a
/// sender's header). The store takes participants' addresses by this same rule, so a From that
/// passes here can always become a report's reporter.
pub fn usable_address(raw: &str) -> Option<String> {
    let a = raw.trim().to_lowercase();
    (a.contains('@') && !a.chars().any(|c| c.is_whitespace() || c.is_control())).then_some(a)
}

/// RFC 3834 and what auto-responders really send. Such mail is never acknowledged.
fn automatic_reason(msg: &mail_parser::Message<'_>, view: &MailView) -> Option<String> {
    let header = |name: &str| msg.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if let Some(v) = header("Auto-Submitted")
        && !v.starts_with("no")
    {
        return Some(format!("Auto-Submitted: {v}"));
    }
    if let Some(v) = header("Precedence")
        && ["bulk", "junk", "list", "auto_reply"].contains(&v.as_str())
    {
        return Some(format!("Precedence: {v}"));
    }
    if header("List-Id").is_some() {
        return Some("List-Id present".into());
    }
    // Bulk senders must carry List-Unsubscribe; people writing mail never do.
    if header("List-Unsubscribe").is_some() {
        return Some("List-Unsubscribe present (bulk mail)".into());
    }
    // RFC 3834 §2 / RFC 5230 §4.6: addresses that are robots by name.
    if let Some(from) = &view.from {
        let local = from.address.split('@').next().unwrap_or("");
        if ["mailer-daemon", "listserv", "majordomo"].contains(&local)
            || local.starts_with("owner-")
            || local.ends_with("-request")
        {
            return Some(format!("sent by {local}"));
        }
    }
    for h in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Auto-Response-Suppress",
        "X-Autogenerated",
    ] {
        if let Some(v) = header(h) {
            // Outlook puts X-Auto-Response-Suppress on ordinary mail too; only "all"/"oof" mean a robot.
            if h == "X-Auto-Response-Suppress" && !(v.contains("all") || v.contains("oof")) {
                continue;
            }
            return Some(format!("{h}: {v}"));
        }
    }
    if let Some(rp) = msg.header_raw("Return-Path")
        && rp.trim() == "<>"
    {
        return Some("empty return path".into());
    }
    if view.content_type == "multipart/report" {
        return Some("delivery or disposition report".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_headers_that_routing_needs() {
        let raw = b"From: \"Alice\" <Alice@FooCorp.example>\r\nTo: cert@example.test\r\n\
Subject: =?UTF-8?Q?Re:_VU#409117_=E2=80=93_statement?=\r\nMessage-ID: <m1@foocorp.example>\r\n\
In-Reply-To: <n1@example.test>\r\nReferences: <n0@example.test>\r\n <n1@example.test>\r\n\
Date: Mon, 24 Nov 2025 10:00:00 +0100\r\n\r\nhello\r\n";
        let v = parse(raw).unwrap();
        assert_eq!(
            v.subject.as_deref(),
            Some("Re: VU#409117 \u{2013} statement")
        );
        assert_eq!(v.from.as_ref().unwrap().address, "alice@foocorp.example");
        assert_eq!(v.message_id.as_deref(), Some("<m1@foocorp.example>"));
        assert_eq!(v.in_reply_to, vec!["<n1@example.test>"]);
        assert_eq!(v.references, vec!["<n0@example.test>", "<n1@example.test>"]);
        assert_eq!(v.date.as_deref(), Some("2025-11-24T09:00:00Z"));
        assert!(v.automatic.is_none());
    }

    #[test]
    fn readable_text_is_every_text_part_a_blank_line_apart() {
        let raw = b"From: a@x.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF\r\n--b\r\n\
Content-Type: text/plain\r\nContent-Disposition: inline\r\n\r\nsecond\r\n--b\r\n\
Content-Type: text/html\r\nContent-Disposition: inline\r\n\r\n<p>third</p>\r\n--b--\r\n";
        let r = readable(raw).unwrap();
        assert_eq!(r.text.as_deref(), Some("first\n\nsecond\n\nthird\n"));
        assert!(r.text_from_html);
        assert_eq!(r.attachments.len(), 1);
        let one = readable(b"From: a@x.example\r\n\r\nonly\r\n").unwrap();
        assert_eq!(one.text.as_deref(), Some("only\r\n"));
        assert!(!one.text_from_html);
        let none = readable(b"From: a@x.example\r\nContent-Type: image/png\r\n\r\nPNG").unwrap();
        assert_eq!(none.text, None);
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        assert!(matches!(parse(b""), Err(ParseError::Empty)));
        assert!(parse(b"\0\0\x01\xff\xfe binary junk \0").is_err());
        assert!(matches!(
            parse(b"Subject: no from\r\n\r\nbody"),
            Err(ParseError::NoFrom)
        ));
        let mut big = b"From: a@b.example\r\nSubject: ".to_vec();
        big.extend(std::iter::repeat_n(b'x', 200_000));
        big.extend(b"\r\n\r\n\xff\xfe\0body");
        assert!(parse(&big).is_ok());
    }

    #[test]
    fn html_becomes_text_and_hostile_nesting_falls_back_to_the_linear_converter() {
        let t = html_to_text(
            "<p>Fix in <b>2.1</b>.</p><script>steal()</script><a href=\"https://x.example/a\">advisory</a>",
        );
        assert!(t.contains("Fix in") && t.contains("2.1"), "{t}");
        assert!(
            t.contains("https://x.example/a"),
            "links are kept as text: {t}"
        );
        assert!(!t.contains("steal()") && !t.contains("<b>"), "{t}");

        // 200,000 nested elements: html5ever's tree building would take hours; the estimate
        // sends it to the linear converter, which still shows the text.
        let deep = format!(
            "{}deep secret{}",
            "<div><span>".repeat(100_000),
            "</span></div>".repeat(100_000)
        );
        assert!(html_nesting(&deep) > MAX_HTML_NESTING);
        let started = std::time::Instant::now();
        let t = html_to_text(&deep);
        assert!(t.contains("deep secret"));
        // A bound, not a benchmark: the quadratic path would take minutes at least.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));

        // What ordinary mail does (unclosed paragraphs and list items, void elements, tables)
        // does not count as nesting.
        let mail = format!(
            "<html><body>{}<table><tr><td>a<td>b</table><br><img src=x></body></html>",
            "<p>para<li>item".repeat(1000)
        );
        assert!(html_nesting(&mail) <= 4, "{}", html_nesting(&mail));
        assert_eq!(html_nesting("<a><b></b></a><c/>"), 2);
        assert_eq!(html_nesting("<<<>>>< / >"), 0);
    }

    #[test]
    fn recognises_robots() {
        let v =
            parse(b"From: a@b.example\r\nAuto-Submitted: auto-replied\r\n\r\nI am away").unwrap();
        assert_eq!(v.automatic.as_deref(), Some("Auto-Submitted: auto-replied"));
        let v = parse(b"From: a@b.example\r\nAuto-Submitted: no\r\n\r\nhi").unwrap();
        assert!(v.automatic.is_none());
        let v = parse(b"From: a@b.example\r\nReturn-Path: <>\r\n\r\nbounce").unwrap();
        assert_eq!(v.automatic.as_deref(), Some("empty return path"));
    }
}
