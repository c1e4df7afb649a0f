//! The "open" stage: find every OpenPGP object in a mail, decrypt what is addressed to the
//! coordinator, verify signatures, and say exactly how much of what the reader sees each
//! of them covers.
//!
//! Why coverage matters more than cryptography here: the practical attacks on mail
//! signatures and encryption ("Johnny, you are fired", EFAIL) do not break OpenPGP; they
//! put a valid signature or ciphertext next to, or inside, content that is not protected.
//! So a signature counts only when it covers the whole reader-visible message, and a
//! message counts as encrypted only when everything in it was encrypted. Everything else
//! is reported as partial, with the plaintext still decrypted for the analyst.
//!
//! One entry point, [`open`]; no network, no store. Failures that must not be stored as
//! trusted content (integrity, not for us, corrupt armor, too large) are [`OpenError`]s:
//! the caller quarantines the raw message with `err.to_string()`.

mod armor;
mod crypto;

use mail_builder::headers::HeaderType;
use mail_builder::headers::content_type::ContentType as BuildContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use mail_parser::{HeaderName, Message, MessagePart, MimeHeaders, PartType};

use crate::keyring::Keyring;
use crate::limits::Limits;
use crate::message::body_bytes;
use armor::{Block, BlockKind};

/// Upper bound on armor handed to the OpenPGP parser (dearmoring never yields more).
pub const MAX_RAW: usize = 256 << 20;
/// OpenPGP objects (decryptions and verifications) per message.
const MAX_CRYPTO_OPS: usize = 64;

/// The result of opening one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Opened {
    /// What the reader sees, as a MIME entity to parse with mail-parser: for an encrypted
    /// message the decrypted inner entity (with its protected headers, e.g. inner Subject);
    /// for inline PGP a synthesized text/plain entity carrying the plaintext; for partly
    /// encrypted messages a rebuilt entity with each encrypted piece replaced by its
    /// plaintext. `None` when nothing was decrypted or unwrapped: the outer message is what
    /// the reader sees.
    pub inner: Option<Vec<u8>>,
    /// `inner` as `open` parsed it (within the same limits as [`crate::message::parse_mime`]),
    /// when it did: the decrypted entity of PGP/MIME, so the caller need not parse it again.
    /// `None` when `inner` is an entity `open` built (inline PGP, a partly encrypted
    /// message) or is not MIME at all.
    pub inner_parsed: Option<Box<Message<'static>>>,
    pub encryption: Encryption,
    pub signature: SignatureFacts,
    /// Decoded inner Subject when the encrypted (or signed) part carries protected headers.
    pub protected_subject: Option<String>,
    /// Human one-liners, e.g. "partial: signed part is part 1 of 2 of a multipart/mixed".
    pub notes: Vec<String>,
    /// The exact bytes the signature in `signature` covers, when one covers the whole
    /// message: the first part of a multipart/signed (CRLF canonical, as verified), the
    /// literal data of a signed OpenPGP message, or the text of a cleartext signature. What a
    /// vendor's statement is kept as.
    pub signed_content: Option<Vec<u8>>,
}

/// How much of the message was encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encryption {
    None,
    /// Everything the reader sees was encrypted; `recipients` are the key IDs of the PKESKs.
    Full {
        recipients: Vec<String>,
    },
    /// Some of it was encrypted (and has been decrypted into `inner`), some was not.
    Partial {
        reason: String,
    },
}

/// What the signatures of a message prove, before binding them to a thread's participants
/// (that is `verdict`'s job).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureFacts {
    None,
    /// A signature valid now and at its creation time that covers everything the reader sees.
    Valid {
        /// Fingerprint (hex) of the (sub)key that made the signature.
        signing_key: String,
        /// Primary fingerprint (hex) of its certificate.
        cert: String,
        /// Lower-cased emails of the certificate's valid, unrevoked user IDs.
        emails: Vec<String>,
    },
    UnknownKey {
        issuer: String,
    },
    /// Does not verify, expired, revoked, key not signing-capable at signing time, ...
    Bad {
        reason: String,
    },
    /// Signatures exist but none covers everything the reader sees.
    Partial {
        reason: String,
    },
}

/// Why a message could not be opened; the caller quarantines it with this text.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("not encrypted to the coordinator key (recipients: {})", list_or_none(.recipients))]
    NotForUs { recipients: Vec<String> },
    #[error("encrypted message, but no coordinator secret key is available")]
    NoSecretKey,
    #[error("integrity check failed: {0}")]
    Integrity(String),
    #[error("malformed OpenPGP data: {0}")]
    Malformed(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error(
        "too large: the message is over policy.max_message_bytes, or what it decrypts and decompresses to is over limits.max_decoded_bytes"
    )]
    TooLarge,
    /// Decrypted content (or the message) passes a [`Limits`] bound.
    #[error("{0}")]
    Limit(String),
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none listed".into()
    } else {
        v.join(", ")
    }
}

/// Opens one raw RFC 5322 message within the default [`Limits`]. See the module
/// documentation for the rules.
pub fn open(raw: &[u8], keyring: &Keyring) -> Result<Opened, OpenError> {
    open_with(raw, keyring, &Limits::default())
}

/// [`open`] within `limits`: nesting (MIME and OpenPGP layers together), parts and header
/// fields of every entity parsed, and all plaintext produced (`max_decoded_bytes`).
pub fn open_with(raw: &[u8], keyring: &Keyring, limits: &Limits) -> Result<Opened, OpenError> {
    if raw.len() as u64 > limits.max_message_bytes {
        return Err(OpenError::TooLarge);
    }
    let ctx = Ctx {
        keyring,
        limits,
        budget: limits.decoded_budget(),
        ops: 0,
        recipients: Vec::new(),
        notes: Vec::new(),
    };
    let Some(msg) = ctx.parse(raw)? else {
        return Ok(Opened {
            inner: None,
            inner_parsed: None,
            encryption: Encryption::None,
            signature: SignatureFacts::None,
            protected_subject: None,
            notes: Vec::new(),
            signed_content: None,
        });
    };
    ctx.open(&msg)
}

/// [`open_with`] of a message parsed already (by [`crate::message::parse_mime`] within the
/// same `limits`, from `raw`): the pipeline parses each message once.
pub fn open_parsed(
    raw: &[u8],
    msg: &Message<'_>,
    keyring: &Keyring,
    limits: &Limits,
) -> Result<Opened, OpenError> {
    if raw.len() as u64 > limits.max_message_bytes {
        return Err(OpenError::TooLarge);
    }
    let ctx = Ctx {
        keyring,
        limits,
        budget: limits.decoded_budget(),
        ops: 0,
        recipients: Vec::new(),
        notes: Vec::new(),
    };
    ctx.open(msg)
}

impl Ctx<'_> {
    /// Opens the whole of `msg`.
    fn open(mut self, msg: &Message<'_>) -> Result<Opened, OpenError> {
        let piece = self.part(msg, 0, 0)?;

        let encryption = match piece.enc {
            Enc::Encrypted => Encryption::Full {
                recipients: dedup(std::mem::take(&mut self.recipients)),
            },
            Enc::Mixed => Encryption::Partial {
                reason: piece
                    .enc_note
                    .clone()
                    .unwrap_or_else(|| "only part of the message is encrypted".into()),
            },
            Enc::Plain | Enc::Empty => Encryption::None,
        };
        if let Encryption::Partial { reason } = &encryption {
            self.notes.push(format!("partial encryption: {reason}"));
        }
        let signature = match piece.covering {
            Some(f) => f,
            None if !piece.nested.is_empty() => SignatureFacts::Partial {
                reason: describe_nested(&piece.nested),
            },
            None => SignatureFacts::None,
        };
        if let SignatureFacts::Partial { reason } = &signature {
            self.notes.push(format!("partial signature: {reason}"));
        }
        for n in &piece.nested {
            self.notes.push(format!(
                "signature on {}: {}",
                n.place,
                facts_line(&n.facts)
            ));
        }
        let signed_content = if matches!(signature, SignatureFacts::Partial { .. }) {
            None
        } else {
            piece.signed
        };
        Ok(Opened {
            inner: piece.view,
            inner_parsed: piece.parsed.map(Box::new),
            encryption,
            signature,
            protected_subject: piece.subject,
            notes: self.notes,
            signed_content,
        })
    }
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for s in v {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn facts_line(f: &SignatureFacts) -> String {
    match f {
        SignatureFacts::None => "none".into(),
        SignatureFacts::Valid { cert, .. } => format!("valid, by {cert}"),
        SignatureFacts::UnknownKey { issuer } => format!("by unknown key {issuer}"),
        SignatureFacts::Bad { reason } => format!("bad: {reason}"),
        SignatureFacts::Partial { reason } => format!("partial: {reason}"),
    }
}

/// The reason text for a partial signature: the most telling nested signature first.
fn describe_nested(nested: &[NestedSig]) -> String {
    let pick = nested
        .iter()
        .find(|n| matches!(n.facts, SignatureFacts::Valid { .. }))
        .or_else(|| {
            nested
                .iter()
                .find(|n| matches!(n.facts, SignatureFacts::Bad { .. }))
        })
        .or_else(|| nested.first());
    let Some(n) = pick else {
        return "no signature covers the whole message".into();
    };
    let mut s = match &n.facts {
        SignatureFacts::Valid { cert, .. } => {
            format!("a valid signature by {cert} covers only {}", n.place)
        }
        SignatureFacts::UnknownKey { issuer } => {
            format!(
                "a signature by unknown key {issuer} covers only {}",
                n.place
            )
        }
        SignatureFacts::Bad { reason } => format!("a bad signature ({reason}) on {}", n.place),
        SignatureFacts::Partial { reason } => reason.clone(),
        SignatureFacts::None => format!("unsigned {}", n.place),
    };
    if nested.len() > 1 {
        s.push_str(&format!(
            " (and {} more partial signature(s))",
            nested.len() - 1
        ));
    }
    s
}

/// Encryption coverage of one entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enc {
    /// Nothing a reader would see (blank text, empty part).
    Empty,
    Plain,
    Encrypted,
    Mixed,
}

/// A signature that covers only part of an entity, and where it sits.
#[derive(Clone, Debug)]
struct NestedSig {
    facts: SignatureFacts,
    place: String,
}

/// What opening one MIME entity produced.
#[derive(Debug)]
struct Piece {
    /// Replacement entity (headers + body) when opening changed what the reader sees.
    view: Option<Vec<u8>>,
    enc: Enc,
    enc_note: Option<String>,
    /// Signature(s) covering this whole entity.
    covering: Option<SignatureFacts>,
    /// The bytes `covering` is over.
    signed: Option<Vec<u8>>,
    /// Signatures covering only parts of it.
    nested: Vec<NestedSig>,
    /// Protected Subject of this entity when it is a crypto container.
    subject: Option<String>,
    /// `view` as parsed while opening, when `view` is exactly the bytes parsed (decrypted
    /// PGP/MIME content): handed out so it is not parsed twice.
    parsed: Option<Message<'static>>,
}

impl Piece {
    fn plain(enc: Enc) -> Piece {
        Piece {
            parsed: None,
            view: None,
            enc,
            enc_note: None,
            covering: None,
            signed: None,
            nested: Vec::new(),
            subject: None,
        }
    }
}

struct Ctx<'k> {
    keyring: &'k Keyring,
    limits: &'k Limits,
    /// Plaintext bytes still allowed.
    budget: usize,
    ops: usize,
    recipients: Vec<String>,
    notes: Vec<String>,
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn content_type_of(part: &MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => (
            lower(ct.ctype()),
            ct.subtype().map(lower).unwrap_or_default(),
        ),
        None => ("text".into(), "plain".into()),
    }
}

fn ct_attr(part: &MessagePart<'_>, name: &str) -> Option<String> {
    part.content_type()
        .and_then(|ct| ct.attribute(name))
        .map(|v| lower(v.trim()))
}

/// The buffer `msg`'s part offsets index: the whole input for the message and for attached
/// messages inside it (mail-parser keeps their offsets in the outer input), the decoded bytes
/// for a base64-encoded attached message.
fn buffer<'a>(msg: &'a Message<'_>) -> &'a [u8] {
    msg.raw_message.as_ref()
}

/// The raw bytes of an entity (headers and body) exactly as in `msg`'s raw input.
fn raw_entity<'a>(msg: &'a Message<'_>, part: &MessagePart<'_>) -> &'a [u8] {
    let raw = buffer(msg);
    let s = (part.offset_header as usize).min(raw.len());
    let e = (part.offset_end as usize).min(raw.len()).max(s);
    &raw[s..e]
}

fn header_subject(part: &MessagePart<'_>) -> Option<String> {
    part.headers
        .iter()
        .find(|h| h.name == HeaderName::Subject)
        .and_then(|h| h.value.as_text())
        .map(|s| s.trim().to_string())
}

fn is_attachment(part: &MessagePart<'_>) -> bool {
    part.content_disposition()
        .map(|d| d.ctype().eq_ignore_ascii_case("attachment"))
        .unwrap_or(false)
}

fn has_pgp_extension(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".asc") || n.ends_with(".gpg") || n.ends_with(".pgp")
}

fn is_signature_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".sig") || n.ends_with(".asc")
}

/// CRLF canonical form required for verifying MIME-signed data (RFC 3156 §5).
fn canonical_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    // Line by line (memchr), not byte by byte: signed parts are most of a signed mail.
    let mut from = 0;
    for nl in memchr::memchr_iter(b'\n', data) {
        out.extend_from_slice(&data[from..nl]);
        if nl == 0 || data[nl - 1] != b'\r' {
            out.push(b'\r');
        }
        from = nl;
    }
    out.extend_from_slice(&data[from..]);
    out
}

/// Serializes a mail-builder part. Writing to a Vec cannot fail; an error would only drop
/// the synthesized view, never the verdicts.
fn write_part(part: MimePart<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    if part.write_part(&mut out).is_err() {
        out.clear();
    }
    out
}

/// A text/plain entity carrying `text`.
fn text_entity(text: String) -> Vec<u8> {
    write_part(text_part(text))
}

/// A text/plain part of `text` as it is (UTF-8, `8bit`): the view is parsed back at once, so
/// an encoding would only be undone again, and mail-builder's choice of one looks at every
/// byte (its 7bit path writes them one at a time).
fn text_part(text: String) -> MimePart<'static> {
    MimePart::new("text/plain", BodyPart::Text(text.into())).transfer_encoding("8bit")
}

impl Ctx<'_> {
    /// Parses an entity within the limits: `None` when it has no headers (not MIME at all).
    fn parse<'x>(&self, raw: &'x [u8]) -> Result<Option<Message<'x>>, OpenError> {
        use crate::message::{ParseError, parse_mime};
        match parse_mime(raw, self.limits) {
            Ok(m) => Ok(Some(m)),
            Err(ParseError::Empty | ParseError::NoHeaders | ParseError::NoFrom) => Ok(None),
            Err(e) => Err(OpenError::Limit(e.to_string())),
        }
    }

    /// Refuses to go deeper than `limits.max_nesting_depth` (MIME and OpenPGP layers).
    fn deeper(&self, depth: usize) -> Result<(), OpenError> {
        let max = self.limits.max_nesting_depth;
        if depth > max {
            return Err(OpenError::Limit(format!(
                "MIME/OpenPGP nesting deeper than {max} levels (limits.max_nesting_depth)"
            )));
        }
        Ok(())
    }

    fn op(&mut self) -> Result<(), OpenError> {
        self.ops += 1;
        if self.ops > MAX_CRYPTO_OPS {
            return Err(OpenError::Unsupported(format!(
                "more than {MAX_CRYPTO_OPS} OpenPGP objects in one message"
            )));
        }
        Ok(())
    }

    /// Decrypts/verifies one binary OpenPGP message within the plaintext budget.
    fn unwrap(&mut self, binary: &[u8]) -> Result<crypto::Unwrapped, OpenError> {
        self.op()?;
        let u = crypto::unwrap_message(binary, self.keyring, self.budget)?;
        self.budget = self.budget.saturating_sub(u.plaintext.len());
        self.recipients.extend(u.recipients.iter().cloned());
        Ok(u)
    }

    /// Opens the MIME entity `id` of `msg`.
    fn part(&mut self, msg: &Message<'_>, id: u32, depth: usize) -> Result<Piece, OpenError> {
        self.deeper(depth)?;
        let Some(part) = msg.part(id) else {
            return Ok(Piece::plain(Enc::Empty));
        };
        let (ctype, subtype) = content_type_of(part);
        match &part.body {
            PartType::Multipart(children) => {
                let protocol = ct_attr(part, "protocol");
                match subtype.as_str() {
                    "encrypted"
                        if protocol.as_deref() == Some("application/pgp-encrypted")
                            || protocol.is_none() =>
                    {
                        self.pgp_mime_encrypted(msg, children, depth)
                    }
                    "signed" if protocol.as_deref() == Some("application/pgp-signature") => {
                        self.pgp_mime_signed(msg, children, depth)
                    }
                    _ => {
                        if subtype == "signed" {
                            self.notes.push(format!(
                                "multipart/signed with protocol {} was not checked",
                                protocol.as_deref().unwrap_or("(none)")
                            ));
                        }
                        self.multipart(msg, &subtype, children, depth)
                    }
                }
            }
            PartType::Message(nested) => self.forwarded(part, nested, depth),
            PartType::Text(_) | PartType::Html(_) if !is_attachment(part) => {
                let html = matches!(part.body, PartType::Html(_));
                self.text_part(msg, part, html, depth)
            }
            _ => self.attachment(msg, part, &ctype, &subtype, depth),
        }
    }

    /// RFC 3156 `multipart/encrypted`: the second part holds the OpenPGP message whose
    /// plaintext is a complete MIME entity.
    fn pgp_mime_encrypted(
        &mut self,
        msg: &Message<'_>,
        children: &[u32],
        depth: usize,
    ) -> Result<Piece, OpenError> {
        let Some(enc_part) = children.get(1).and_then(|&id| msg.part(id)) else {
            return Err(OpenError::Malformed(
                "multipart/encrypted without an encrypted body part".into(),
            ));
        };
        let body = body_bytes(msg, enc_part);
        let binary = self.binary_message(&body)?;
        let u = self.unwrap(&binary)?;
        self.notes.push(format!(
            "decrypted PGP/MIME message (recipients: {})",
            list_or_none(&u.recipients)
        ));
        let parsed = self.parse(&u.plaintext).map_err(|e| match e {
            OpenError::Limit(why) => OpenError::Limit(format!("decrypted content: {why}")),
            e => e,
        })?;
        let Some(inner_msg) = parsed else {
            let mut p = Piece::plain(if u.encrypted {
                Enc::Encrypted
            } else {
                Enc::Empty
            });
            if u.signature.is_some() {
                p.signed = Some(u.plaintext.clone());
            }
            p.covering = u.signature;
            p.view = Some(Vec::new());
            return Ok(p);
        };
        let inner = self.part(&inner_msg, 0, depth + 1)?;
        let subject = inner_msg.part(0).and_then(header_subject).or(inner.subject);
        // What the reader sees is the plaintext itself, unless opening it changed it; its
        // parse goes with it (owned: it outlives the plaintext's buffer), parsed once.
        let (view, parsed) = match inner.view {
            Some(v) => (v, inner.parsed),
            None => (u.plaintext.clone(), Some(inner_msg.into_owned())),
        };
        let signed = if u.signature.is_some() {
            Some(u.plaintext)
        } else {
            inner.signed
        };
        let covering = crypto::aggregate(u.signature.into_iter().chain(inner.covering).collect());
        Ok(Piece {
            parsed,
            signed,
            view: Some(view),
            enc: if u.encrypted {
                Enc::Encrypted
            } else {
                inner.enc
            },
            enc_note: if u.encrypted { None } else { inner.enc_note },
            covering,
            nested: inner.nested,
            subject,
        })
    }

    /// RFC 3156 `multipart/signed`: verify the detached signature over the exact raw bytes
    /// of the first part (CRLF canonical), then open that part.
    fn pgp_mime_signed(
        &mut self,
        msg: &Message<'_>,
        children: &[u32],
        depth: usize,
    ) -> Result<Piece, OpenError> {
        let first = children.first().and_then(|&id| msg.part(id));
        let sig = children.get(1).and_then(|&id| msg.part(id));
        let (Some(first), Some(sig), 2) = (first, sig, children.len()) else {
            let mut p = self.multipart(msg, "signed", children, depth)?;
            p.covering = Some(SignatureFacts::Bad {
                reason: format!(
                    "multipart/signed must have exactly 2 parts, has {}",
                    children.len()
                ),
            });
            return Ok(p);
        };
        let (sct, ssub) = content_type_of(sig);
        self.op()?;
        let data = canonical_crlf(raw_entity(msg, first));
        let facts = if (sct.as_str(), ssub.as_str()) != ("application", "pgp-signature") {
            SignatureFacts::Bad {
                reason: format!("signature part is {sct}/{ssub}, not application/pgp-signature"),
            }
        } else {
            let sig_bytes = body_bytes(msg, sig);
            crypto::verify_detached(&data, &sig_bytes, self.keyring)
        };
        let inner = self.part(msg, children[0], depth + 1)?;
        for n in &inner.nested {
            self.notes.push(format!(
                "signature on {} (inside the signed part): {}",
                n.place,
                facts_line(&n.facts)
            ));
        }
        let subject = inner.subject.or_else(|| header_subject(first));
        Ok(Piece {
            parsed: inner.parsed,
            view: inner.view,
            enc: inner.enc,
            enc_note: inner.enc_note,
            signed: Some(data),
            covering: crypto::aggregate(std::iter::once(facts).chain(inner.covering).collect()),
            nested: Vec::new(),
            subject,
        })
    }

    /// Any other multipart: coverage is the combination of the children; a signature on a
    /// child never covers the whole.
    fn multipart(
        &mut self,
        msg: &Message<'_>,
        subtype: &str,
        children: &[u32],
        depth: usize,
    ) -> Result<Piece, OpenError> {
        let mut pieces = Vec::with_capacity(children.len());
        for &id in children {
            pieces.push(self.part(msg, id, depth + 1)?);
        }
        let mut nested: Vec<NestedSig> = Vec::new();
        self.detached_attachment_signatures(msg, children, &mut nested);

        let visible: Vec<usize> = (0..pieces.len())
            .filter(|&i| pieces[i].enc != Enc::Empty)
            .collect();
        let n = visible.len();

        // Encryption coverage.
        let encs: Vec<Enc> = visible.iter().map(|&i| pieces[i].enc).collect();
        let enc = if encs.is_empty() {
            Enc::Empty
        } else if encs.iter().all(|e| *e == Enc::Encrypted) {
            Enc::Encrypted
        } else if encs.iter().all(|e| *e == Enc::Plain) {
            Enc::Plain
        } else {
            Enc::Mixed
        };
        let enc_note = if enc == Enc::Mixed {
            visible
                .iter()
                .find_map(|&i| pieces[i].enc_note.clone())
                .or_else(|| {
                    let k = encs.iter().filter(|e| **e == Enc::Encrypted).count();
                    Some(format!(
                        "encrypted parts are {k} of {n} parts of a multipart/{subtype}; the rest is plaintext"
                    ))
                })
        } else {
            None
        };

        // Signature coverage. Alternatives are a special case: the reader sees one of them,
        // so if every alternative is validly signed by the same certificate, the whole is.
        let mut covering = None;
        let mut signed = None;
        if subtype == "alternative" && n > 0 {
            let certs: Vec<Option<&str>> = visible
                .iter()
                .map(|&i| match &pieces[i].covering {
                    Some(SignatureFacts::Valid { cert, .. }) => Some(cert.as_str()),
                    _ => None,
                })
                .collect();
            if let Some(Some(first)) = certs.first()
                && certs.iter().all(|c| *c == Some(*first))
            {
                covering = visible.first().and_then(|&i| pieces[i].covering.clone());
                signed = visible.first().and_then(|&i| pieces[i].signed.clone());
            }
        }
        for (pos, piece) in pieces.iter_mut().enumerate() {
            if covering.is_none()
                && let Some(f) = piece.covering.take()
            {
                let k = visible.iter().position(|&i| i == pos).map(|k| k + 1);
                let place = match (k, n) {
                    (Some(_), 1) => {
                        format!("the only part inside an unsigned multipart/{subtype} wrapper")
                    }
                    (Some(k), n) => format!("part {k} of {n} of a multipart/{subtype}"),
                    (None, _) => format!("an empty part of a multipart/{subtype}"),
                };
                nested.push(NestedSig { facts: f, place });
            }
            nested.append(&mut piece.nested);
        }

        // View: rebuild only when a child changed.
        let view = if pieces.iter().any(|p| p.view.is_some()) {
            let mut parts = Vec::with_capacity(pieces.len());
            for (piece, &id) in pieces.iter_mut().zip(children) {
                let bytes = match piece.view.take() {
                    Some(v) => v,
                    None => match msg.part(id) {
                        Some(p) => raw_entity(msg, p).to_vec(),
                        None => continue,
                    },
                };
                parts.push(MimePart::raw(BodyPart::Binary(bytes.into())));
            }
            Some(write_part(MimePart::new(
                BuildContentType::new(format!("multipart/{subtype}")),
                BodyPart::Multipart(parts),
            )))
        } else {
            None
        };
        Ok(Piece {
            parsed: None,
            view,
            enc,
            enc_note,
            covering,
            signed,
            nested,
            subject: None,
        })
    }

    /// `file` + `file.sig`/`file.asc` side by side: verify, and record it as a signature on
    /// that attachment only.
    fn detached_attachment_signatures(
        &mut self,
        msg: &Message<'_>,
        children: &[u32],
        nested: &mut Vec<NestedSig>,
    ) {
        // Each name once (the first part carrying it), so that pairing is linear in the number
        // of parts: searching the siblings for each `*.sig` was quadratic.
        let mut by_name: std::collections::HashMap<&str, &MessagePart<'_>> =
            std::collections::HashMap::with_capacity(children.len());
        for p in children.iter().filter_map(|&id| msg.part(id)) {
            if let Some(name) = p.attachment_name() {
                by_name.entry(name).or_insert(p);
            }
        }
        for &sid in children {
            let Some(sp) = msg.part(sid) else { continue };
            let Some(sname) = sp.attachment_name() else {
                continue;
            };
            if !is_signature_name(sname) {
                continue;
            }
            // `is_signature_name` saw an ASCII suffix of 4 bytes: a char boundary.
            let Some(stem) = sname.get(..sname.len() - 4) else {
                continue;
            };
            let Some(&target) = by_name.get(stem) else {
                continue;
            };
            let sig = body_bytes(msg, sp);
            let looks_like_sig = sig
                .windows(29)
                .take(4096)
                .any(|w| w == b"-----BEGIN PGP SIGNATURE-----")
                || (sig.first().is_some_and(|b| b & 0x80 != 0) && sig.len() < 16 * 1024);
            if !looks_like_sig || self.op().is_err() {
                continue;
            }
            let data = body_bytes(msg, target);
            let facts = crypto::verify_detached(&data, &sig, self.keyring);
            nested.push(NestedSig {
                facts,
                place: format!("attachment {stem}"),
            });
        }
    }

    /// A forwarded message: whatever is inside can never sign or encrypt the outer one.
    fn forwarded(
        &mut self,
        part: &MessagePart<'_>,
        nested_msg: &Message<'_>,
        depth: usize,
    ) -> Result<Piece, OpenError> {
        // Its part offsets index its own `raw_message` buffer (see `buffer`), so no re-parse:
        // re-parsing at each level cost depth × size in work and in memory.
        if nested_msg.parts.is_empty() {
            return Ok(Piece::plain(Enc::Plain));
        }
        let inner = self.part(nested_msg, 0, depth + 1)?;
        let mut nested = Vec::new();
        if let Some(f) = inner.covering {
            nested.push(NestedSig {
                facts: f,
                place: "a forwarded message (message/rfc822)".into(),
            });
        }
        nested.extend(inner.nested.into_iter().map(|mut n| {
            n.place = format!("{} inside a forwarded message", n.place);
            n
        }));
        let view = inner.view.map(|v| {
            let mut spliced = non_mime_headers(nested_msg);
            spliced.extend_from_slice(&v);
            let mut mp = MimePart::new("message/rfc822", BodyPart::Binary(spliced.into()));
            mp.headers.push((
                "Content-Transfer-Encoding".into(),
                HeaderType::Raw(Raw::new("8bit")),
            ));
            if let Some(name) = part.attachment_name() {
                mp = mp.attachment(name.to_string());
            }
            write_part(mp)
        });
        let enc_note =
            match inner.enc {
                Enc::Encrypted | Enc::Mixed => Some(inner.enc_note.unwrap_or_else(|| {
                    "the encrypted content is inside a forwarded message".into()
                })),
                _ => None,
            };
        Ok(Piece {
            parsed: None,
            view,
            // A forwarded message's own headers are plaintext: at best Mixed.
            enc: match inner.enc {
                Enc::Encrypted => Enc::Mixed,
                e => e,
            },
            enc_note,
            covering: None,
            signed: None,
            nested,
            subject: None,
        })
    }

    /// text/plain or text/html body: inline PGP blocks.
    fn text_part(
        &mut self,
        msg: &Message<'_>,
        part: &MessagePart<'_>,
        html: bool,
        depth: usize,
    ) -> Result<Piece, OpenError> {
        let bytes = body_bytes(msg, part);
        let charset = ct_attr(part, "charset");
        let r = if html {
            let source = decode_charset(&bytes, charset.as_deref());
            let lines = armor::html_to_lines(&source);
            // Images, frames, forms … show content that is not text: a block next to them
            // does not cover what the reader sees.
            let media = armor::html_has_media(&source);
            self.inline_text(lines.as_bytes(), Some("utf-8"), media, depth)?
        } else {
            self.inline_text(&bytes, charset.as_deref(), false, depth)?
        };
        if r.changed {
            self.notes.push(if html {
                "inline PGP in text/html was unwrapped into text/plain".into()
            } else {
                "inline PGP in text/plain was unwrapped".into()
            });
        }
        Ok(Piece {
            parsed: None,
            view: r.rendered.filter(|_| r.changed).map(text_entity),
            enc: r.enc,
            enc_note: r.enc_note,
            covering: r.covering,
            signed: r.signed,
            nested: r.nested,
            subject: None,
        })
    }

    /// Finds and opens armored blocks in a text. Blocks alone (with only blanks around)
    /// cover the text; blocks among other text cover only themselves.
    fn inline_text(
        &mut self,
        text: &[u8],
        charset: Option<&str>,
        non_text_content: bool,
        depth: usize,
    ) -> Result<InlineResult, OpenError> {
        self.deeper(depth)?;
        let blocks = armor::find_blocks(text);
        if blocks.is_empty() {
            return Ok(InlineResult {
                rendered: None,
                changed: false,
                enc: if armor::is_blank(text) {
                    Enc::Empty
                } else {
                    Enc::Plain
                },
                enc_note: None,
                covering: None,
                signed: None,
                nested: Vec::new(),
            });
        }
        let mut outside_blank = !non_text_content;
        let mut cursor = 0;
        for b in &blocks {
            if !armor::is_blank(&text[cursor..b.start]) {
                outside_blank = false;
            }
            cursor = b.end;
        }
        if !armor::is_blank(&text[cursor..]) {
            outside_blank = false;
        }
        let whole = outside_blank && blocks.len() == 1;

        let mut rendered = String::new();
        let mut changed = false;
        let mut any_encrypted = false;
        let mut all_encrypted = true;
        let mut covering_all: Vec<Option<SignatureFacts>> = Vec::new();
        let mut signed_all: Vec<Option<Vec<u8>>> = Vec::new();
        let mut nested: Vec<NestedSig> = Vec::new();
        let mut cursor = 0;
        for (idx, b) in blocks.iter().enumerate() {
            rendered.push_str(&decode_charset(&text[cursor..b.start], charset));
            cursor = b.end;
            let block_text = &text[b.start..b.end];
            let (facts, block_rendered, block_encrypted, inner_nested, block_signed) =
                self.open_block(b, block_text, depth)?;
            signed_all.push(block_signed);
            any_encrypted |= block_encrypted;
            all_encrypted &= block_encrypted;
            match block_rendered {
                Some(t) if block_encrypted || whole => {
                    rendered.push_str(&t);
                    changed = true;
                }
                _ => rendered.push_str(&decode_charset(block_text, charset)),
            }
            let place = if blocks.len() == 1 {
                "an inline block inside other text".to_string()
            } else {
                format!("inline block {} of {} in the text", idx + 1, blocks.len())
            };
            nested.extend(inner_nested.into_iter().map(|mut n| {
                n.place = format!("{} within {place}", n.place);
                n
            }));
            covering_all.push(facts.clone());
            if !whole && let Some(f) = facts {
                nested.push(NestedSig { facts: f, place });
            }
        }
        rendered.push_str(&decode_charset(&text[cursor..], charset));

        let (covering, signed) = if whole {
            (
                covering_all.into_iter().next().flatten(),
                signed_all.into_iter().next().flatten(),
            )
        } else {
            (None, None)
        };
        let (enc, enc_note) = if !any_encrypted {
            (Enc::Plain, None)
        } else if outside_blank && all_encrypted {
            (Enc::Encrypted, None)
        } else {
            (
                Enc::Mixed,
                Some(if outside_blank {
                    "some inline blocks are encrypted, others are not".to_string()
                } else {
                    "an inline encrypted block sits inside unencrypted text".to_string()
                }),
            )
        };
        Ok(InlineResult {
            rendered: Some(rendered),
            changed,
            enc,
            enc_note,
            covering,
            signed,
            nested,
        })
    }

    /// Opens one armored block: (signature over the block's content, rendered text,
    /// whether it was encrypted, signatures nested deeper, the bytes the signature is over).
    #[allow(clippy::type_complexity)]
    fn open_block(
        &mut self,
        block: &Block,
        block_text: &[u8],
        depth: usize,
    ) -> Result<
        (
            Option<SignatureFacts>,
            Option<String>,
            bool,
            Vec<NestedSig>,
            Option<Vec<u8>>,
        ),
        OpenError,
    > {
        match block.kind {
            BlockKind::Message => {
                let binary = crypto::dearmor(&armor::normalize_message_armor(block_text), MAX_RAW)?;
                let u = self.unwrap(&binary)?;
                // The plaintext may itself be cleartext-signed text (sign, then encrypt).
                let inner = self.inline_text(&u.plaintext, Some("utf-8"), false, depth + 1)?;
                let signed = if u.signature.is_some() {
                    Some(u.plaintext.clone())
                } else {
                    inner.signed
                };
                let facts =
                    crypto::aggregate(u.signature.into_iter().chain(inner.covering).collect());
                let rendered = inner
                    .rendered
                    .unwrap_or_else(|| decode_charset(&u.plaintext, Some("utf-8")));
                Ok((facts, Some(rendered), u.encrypted, inner.nested, signed))
            }
            BlockKind::Cleartext => {
                self.op()?;
                let (facts, signed_text) =
                    crypto::verify_cleartext(block_text, self.keyring, self.budget);
                self.budget = self
                    .budget
                    .saturating_sub(signed_text.as_ref().map_or(0, Vec::len));
                let rendered = signed_text
                    .as_ref()
                    .map(|t| String::from_utf8_lossy(t).into_owned());
                Ok((Some(facts), rendered, false, Vec::new(), signed_text))
            }
        }
    }

    /// Turns a part body into binary OpenPGP: armored (anywhere in the body) or binary.
    fn binary_message(&mut self, body: &[u8]) -> Result<Vec<u8>, OpenError> {
        let blocks = armor::find_blocks(body);
        match blocks.iter().find(|b| b.kind == BlockKind::Message) {
            Some(b) => crypto::dearmor(
                &armor::normalize_message_armor(&body[b.start..b.end]),
                MAX_RAW,
            ),
            None if crypto::shape(body).is_message => Ok(body.to_vec()),
            None => Err(OpenError::Malformed(
                "encrypted part holds no OpenPGP message".into(),
            )),
        }
    }

    /// A non-text (or attached text) part: `.asc`/`.gpg`/`.pgp` files and armored content.
    fn attachment(
        &mut self,
        msg: &Message<'_>,
        part: &MessagePart<'_>,
        ctype: &str,
        subtype: &str,
        depth: usize,
    ) -> Result<Piece, OpenError> {
        let body = body_bytes(msg, part);
        if body.is_empty() {
            return Ok(Piece::plain(Enc::Empty));
        }
        if ctype == "application" && matches!(subtype, "pkcs7-mime" | "x-pkcs7-mime") {
            self.notes
                .push("S/MIME content (application/pkcs7-mime) was not opened".into());
        }
        let name = part.attachment_name().map(str::to_string);
        let pgp_type =
            ctype == "application" && matches!(subtype, "pgp-encrypted" | "pgp" | "octet-stream");
        let pgp_named = name.as_deref().is_some_and(has_pgp_extension);

        // Armored content: only a block at the very start counts (a text file quoting
        // armor somewhere is just a text file).
        let head_blank = |b: &Block| armor::is_blank(&body[..b.start]);
        let blocks = armor::find_blocks(&body);
        let first = blocks.first().filter(|b| head_blank(b));
        let binary = match first {
            Some(b) if b.kind == BlockKind::Message => Some(crypto::dearmor(
                &armor::normalize_message_armor(&body[b.start..b.end]),
                MAX_RAW,
            )?),
            Some(b) if b.kind == BlockKind::Cleartext => {
                // A clear-signed text file: a signature on this attachment only.
                let r =
                    self.inline_text(&body, ct_attr(part, "charset").as_deref(), false, depth)?;
                return Ok(Piece {
                    parsed: None,
                    view: None,
                    enc: Enc::Plain,
                    enc_note: None,
                    covering: r.covering,
                    signed: r.signed,
                    nested: r.nested,
                    subject: None,
                });
            }
            _ if (pgp_named || pgp_type) && crypto::shape(&body).is_message => Some(body.to_vec()),
            _ => None,
        };
        let Some(binary) = binary else {
            return Ok(Piece::plain(Enc::Plain));
        };
        let u = self.unwrap(&binary)?;
        let shown = name.clone().unwrap_or_else(|| "(unnamed)".into());
        self.notes.push(format!(
            "{} attachment {shown}",
            if u.encrypted {
                "decrypted"
            } else {
                "unwrapped signed"
            }
        ));
        let out_name = u
            .filename
            .clone()
            .filter(|f| !f.is_empty() && !f.starts_with('_'))
            .or_else(|| {
                name.as_deref().map(|n| {
                    if has_pgp_extension(n) {
                        n[..n.len() - 4].to_string()
                    } else {
                        n.to_string()
                    }
                })
            })
            .unwrap_or_else(|| "decrypted.bin".into());
        let is_text = std::str::from_utf8(&u.plaintext)
            .map(|s| {
                !s.chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            })
            .unwrap_or(false);
        let mp = if is_text {
            text_part(String::from_utf8_lossy(&u.plaintext).into_owned())
        } else {
            MimePart::new(
                "application/octet-stream",
                BodyPart::Binary(u.plaintext.clone().into()),
            )
        };
        let view = write_part(mp.attachment(out_name));
        Ok(Piece {
            parsed: None,
            view: Some(view),
            enc: if u.encrypted {
                Enc::Encrypted
            } else {
                Enc::Plain
            },
            enc_note: None,
            signed: u.signature.is_some().then(|| u.plaintext.clone()),
            covering: u.signature,
            nested: Vec::new(),
            subject: None,
        })
    }
}

/// Result of opening the inline blocks of one text.
struct InlineResult {
    /// The text as the reader sees it; `None` when it has no blocks: it reads as it is, and
    /// most callers never need a decoded copy of it.
    rendered: Option<String>,
    changed: bool,
    enc: Enc,
    enc_note: Option<String>,
    covering: Option<SignatureFacts>,
    signed: Option<Vec<u8>>,
    nested: Vec<NestedSig>,
}

/// Decodes text bytes in `charset` for display (signatures were checked on the bytes).
fn decode_charset(bytes: &[u8], charset: Option<&str>) -> String {
    // Most text is valid UTF-8: validating it a word at a time and copying it is several
    // times faster than `from_utf8_lossy`, which walks byte by byte even through ASCII.
    let lossy = |bytes: &[u8]| match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    match charset {
        Some(cs) if !matches!(cs, "utf-8" | "utf8" | "us-ascii" | "ascii") => {
            match mail_parser::decoders::charsets::map::charset_decoder(cs.as_bytes()) {
                Some(dec) => dec(bytes),
                None => lossy(bytes),
            }
        }
        _ => lossy(bytes),
    }
}

/// The header lines of a message that are not about its MIME structure (From, Subject, …),
/// copied verbatim so a rebuilt forwarded message keeps them.
fn non_mime_headers(msg: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(root) = msg.part(0) else { return out };
    let raw = buffer(msg);
    for h in &root.headers {
        let name = h.name.as_str();
        // By bytes: a header name may hold non-ASCII, and slicing a str there panics.
        if name
            .as_bytes()
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"content-"))
        {
            continue;
        }
        if name.eq_ignore_ascii_case("mime-version") {
            continue;
        }
        let s = (h.offset_field as usize).min(raw.len());
        let e = (h.offset_end as usize).min(raw.len()).max(s);
        out.extend_from_slice(&raw[s..e]);
        if !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
