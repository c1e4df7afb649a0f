//! Composing outbound notices: sign once, seal per recipient (pure: no I/O).
//!
//! Hub-and-spoke means every participant contact gets its own message, encrypted to its own
//! key, so nobody learns who else is on a case. Signing is the expensive, recipient-independent
//! part, so it happens exactly once per notice ([`sign_notice`]); each copy then only costs one
//! encryption ([`seal_for`]).
//!
//! Shape (RFC 3156 PGP/MIME, §6.2 combined signing and encryption, protected headers):
//!
//! ```text
//! From / To (exactly one) / Subject: [VU#409117] Encrypted message / Message-ID (per copy)
//! multipart/encrypted; protocol="application/pgp-encrypted"
//! ├─ application/pgp-encrypted            "Version: 1"
//! └─ application/octet-stream             ASCII-armored OpenPGP message:
//!    PKESK (this recipient) │ SEIPD ⟨ one-pass signature │ literal data │ signature ⟩
//!                                        literal data = the MIME entity
//!                                        text/plain; charset=utf-8; protected-headers="v1"
//!                                        From, Subject (the real one), Date  (quoted-printable)
//! ```
//!
//! The signed OpenPGP message inside (one-pass signature, literal data, signature) is made once
//! and is byte for byte the same in every copy; only the key packet and the encryption differ.
//! This is the form Thunderbird and Enigmail send, and the one `gpg --decrypt` checks by
//! itself ("Good signature"); the nested form (multipart/signed inside the encryption) would
//! leave the check to MIME-aware readers only.
//! The signed part carries no per-recipient header (no To, no Message-ID): that is what lets it
//! be signed once. For the same reason it uses `protected-headers="v1"` (understood by
//! Thunderbird, Enigmail, Delta Chat, K-9) and not RFC 9788's `hp="cipher"`, whose receivers
//! expect the complete header section, To and Message-ID included, inside the payload.
//! The outer Subject keeps the tracking number so replies route even from clients that drop
//! protected headers.
//!
//! Fail closed: there is no function here that produces case content in plaintext. A recipient
//! whose certificate is revoked, expired, invalid under the standard policy or without a live
//! encryption-capable key gets [`ComposeError::NoValidKey`], and the caller holds the copy.

use std::borrow::Cow;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use mail_builder::encoders::quoted_printable::quoted_printable_encode;
use mail_builder::headers::HeaderType;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use openpgp::Cert;
use openpgp::armor;
use openpgp::crypto::SessionKey;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::Serialize;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Recipient, Signer};
use openpgp::types::{DataFormat, HashAlgorithm, RevocationStatus, SymmetricAlgorithm};
use rand::TryRngCore;
use sequoia_openpgp as openpgp;

use crate::header::{AddrSpec, HeaderText, MessageId as HeaderMessageId};

/// A recipient key we may encrypt to (valid under the policy, alive, not revoked).
type EncryptionKey<'a> = openpgp::cert::amalgamation::key::ValidErasedKeyAmalgamation<
    'a,
    openpgp::packet::key::PublicParts,
>;

/// Hash used for the coordinator's signature; `MICALG` must name the same one (RFC 3156 §5).
const SIGNATURE_HASH: HashAlgorithm = HashAlgorithm::SHA512;
const MICALG: &str = "pgp-sha512";

/// What went wrong while composing. None of these carry key material or message content.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The recipient has no key we may encrypt to; the copy must be held, never sent in clear.
    #[error("no valid encryption key: {0}")]
    NoValidKey(String),
    /// The coordinator key cannot sign (no live signing key, or its secret is locked).
    #[error("coordinator key cannot sign: {0}")]
    CoordinatorKey(String),
    /// A value that cannot go into a header (see `crate::header`).
    #[error(transparent)]
    Header(#[from] crate::header::HeaderError),
    /// OpenPGP serialization failed (signing or encrypting).
    #[error("OpenPGP: {0}")]
    OpenPgp(String),
    /// Writing the MIME structure failed.
    #[error("MIME: {0}")]
    Mime(#[from] std::io::Error),
}

/// One notice as the caller means it, before anything is signed.
#[derive(Clone, Debug)]
pub struct Notice<'a> {
    /// Canonical tracking number of the thread, e.g. `VU#409117`.
    pub thread: &'a str,
    /// The real subject; travels only inside the encryption. The tracking number is added in
    /// front when the subject does not already contain it, so replies route by subject too.
    /// Made safe for a header ([`HeaderText`]) whatever it holds.
    pub subject: &'a str,
    /// Plain-text body (UTF-8).
    pub body: &'a str,
    /// Message-ID of the message this answers.
    pub in_reply_to: Option<&'a HeaderMessageId>,
    /// Set for mail no human wrote (acknowledgments): adds `Auto-Submitted: auto-generated`
    /// (RFC 3834) so auto-responders do not answer it.
    pub automatic: bool,
}

/// A notice signed once by the coordinator: the signed OpenPGP message that every copy
/// encrypts, plus the few recipient-independent facts the outer headers need. Only
/// [`sign_notice`] and the store (which keeps it for held copies) create one, so its bytes are
/// always signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNotice {
    /// Canonical tracking number, used in the outer subject.
    pub thread: String,
    /// Coordinator address (From).
    pub from: AddrSpec,
    /// Message-ID answered.
    pub in_reply_to: Option<HeaderMessageId>,
    /// Whether the copies carry `Auto-Submitted: auto-generated`.
    pub automatic: bool,
    /// Seconds since the Unix epoch (UTC): the Date of the notice, inside and outside.
    pub date: i64,
    /// Fingerprint (hex) of the coordinator signing key.
    pub signer_fingerprint: String,
    /// It relays a participant's message into the case discussion: its copies carry the
    /// relay marker header (see `discussion::RELAY_HEADER`) so that one coming back is never
    /// relayed again.
    pub relay: bool,
    inner: Vec<u8>,
}

impl SignedNotice {
    /// The signed OpenPGP message (one-pass signature, literal data holding the MIME entity
    /// with CRLF line ends, signature), binary, as it is encrypted for each recipient.
    pub fn inner(&self) -> &[u8] {
        &self.inner
    }

    /// Rebuilds a notice from what the store kept of one made by [`sign_notice`]. The stored
    /// header values are checked again (a row may predate the checks): a Message-ID that does
    /// not parse is left out, a sender that does not parse is an error.
    pub(crate) fn from_stored(
        thread: String,
        from: &str,
        in_reply_to: Option<&str>,
        automatic: bool,
        date: i64,
        signer_fingerprint: String,
        inner: Vec<u8>,
    ) -> Result<Self, ComposeError> {
        Ok(Self {
            thread,
            from: AddrSpec::parse(from)?,
            in_reply_to: in_reply_to.and_then(|id| HeaderMessageId::parse(id).ok()),
            automatic,
            date,
            signer_fingerprint,
            relay: false,
            inner,
        })
    }
}

/// One copy ready for SMTP: one recipient, its own Message-ID, encrypted to its key.
#[derive(Clone, Debug)]
pub struct Sealed {
    /// Message-ID in angle brackets (`<random@coordinator-domain>`), the form the store keeps
    /// so that replies' In-Reply-To/References match it.
    pub message_id: String,
    /// The complete RFC 5322 message (CRLF line ends).
    pub bytes: Vec<u8>,
    /// Primary fingerprint (hex, upper case) of the recipient certificate used.
    pub cert_fingerprint: String,
    /// Fingerprints of the subkeys the session key was encrypted to.
    pub subkey_fingerprints: Vec<String>,
}

/// A copy that carries no case content: the "please send us your key" stub.
#[derive(Clone, Debug)]
pub struct Stub {
    /// Message-ID in angle brackets.
    pub message_id: String,
    /// The complete RFC 5322 message (CRLF line ends), signed by the coordinator.
    pub bytes: Vec<u8>,
}

/// Signs the notice once. The result is sealed for each recipient with [`seal_for`].
///
/// `coordinator` must hold an unencrypted secret signing key; `from` is the coordinator address.
pub fn sign_notice(
    notice: &Notice<'_>,
    coordinator: &Cert,
    from: &AddrSpec,
    now: SystemTime,
) -> Result<SignedNotice, ComposeError> {
    let date = unix_seconds(now);
    let subject = HeaderText::new(&inner_subject(notice.thread, notice.subject));
    let text_part = protected_text_part(&subject, from, date, notice.body)?;
    let (inner, signer_fingerprint) = sign_message(&text_part, coordinator, now)?;
    Ok(SignedNotice {
        thread: notice.thread.to_string(),
        from: from.clone(),
        in_reply_to: notice.in_reply_to.cloned(),
        automatic: notice.automatic,
        date,
        signer_fingerprint,
        relay: false,
        inner,
    })
}

/// Encrypts the signed notice for one recipient and wraps it as a complete message to exactly
/// that address. Fails closed with [`ComposeError::NoValidKey`] when `recipient` has no key we
/// may use at `now`.
pub fn seal_for(
    signed: &SignedNotice,
    recipient_addr: &AddrSpec,
    recipient: &Cert,
    now: SystemTime,
) -> Result<Sealed, ComposeError> {
    let policy = StandardPolicy::new();
    let keys = encryption_keys(recipient, &policy, now)?;
    let subkey_fingerprints = keys
        .iter()
        .map(|k| k.key().fingerprint().to_hex())
        .collect();
    let ciphertext = encrypt(signed.inner(), keys)?;
    let message_id = new_message_id(&signed.from)?;

    let encrypted = multipart_encrypted(ciphertext);
    let subject = HeaderText::new(&format!("[{}] Encrypted message", signed.thread));
    let bytes = outer_message(OuterHeaders {
        from: &signed.from,
        to: recipient_addr,
        subject: &subject,
        date: signed.date,
        message_id: &message_id,
        in_reply_to: signed.in_reply_to.as_ref(),
        automatic: signed.automatic,
        relay_of_case: signed.relay.then_some(signed.thread.as_str()),
        body: encrypted,
    })?;
    Ok(Sealed {
        message_id: message_id.bracketed(),
        bytes,
        cert_fingerprint: recipient.fingerprint().to_hex(),
        subkey_fingerprints,
    })
}

/// Whether [`seal_for`] would find a key to encrypt to for this recipient at `now` (a notice's
/// preview): the same checks, nothing encrypted.
pub fn check_sealable(
    recipient_addr: &str,
    recipient: &Cert,
    now: SystemTime,
) -> Result<(), ComposeError> {
    AddrSpec::parse(recipient_addr)?;
    let policy = StandardPolicy::new();
    encryption_keys(recipient, &policy, now).map(|_| ())
}

/// The stub sent instead of case content when a contact has no usable key and the policy allows
/// it: it names the tracking number only, asks for a key, carries the coordinator's public
/// certificate so the contact can encrypt back, and is signed so it can be checked.
pub fn stub_for(
    thread: &str,
    recipient_addr: &AddrSpec,
    coordinator: &Cert,
    from: &AddrSpec,
    automatic: bool,
    now: SystemTime,
) -> Result<Stub, ComposeError> {
    let subject = HeaderText::new(&format!("[{thread}] Encryption key needed"));
    let body = format!(
        "Hello,\r\n\r\nwe have a message for you about {thread}. We send case details only \
         encrypted, and we have no valid OpenPGP key for {recipient_addr}.\r\n\r\nPlease reply \
         to this message (keep {thread} in the subject) with your OpenPGP public key attached. \
         Our key is attached to this message.\r\n\r\n-- \r\n{from}\r\n"
    );
    plain_for(
        &PlainText {
            recipient_addr,
            subject: &subject,
            body: &body,
            in_reply_to: None,
            automatic,
        },
        &PlainSigner::new(coordinator)?,
        from,
        now,
    )
}

/// A signed but unencrypted message. Only for text that carries NO case content (key requests,
/// acknowledgments that name a tracking number): callers build that text themselves.
pub struct PlainText<'a> {
    pub recipient_addr: &'a AddrSpec,
    pub subject: &'a HeaderText,
    pub body: &'a str,
    pub in_reply_to: Option<&'a HeaderMessageId>,
    pub automatic: bool,
}

/// Who signs [`PlainText`] messages: the coordinator's key, and its public certificate as
/// those messages attach it (armored, CRLF line ends), made once for a round of messages
/// rather than once for each.
pub struct PlainSigner<'a> {
    coordinator: &'a Cert,
    armored_public: Vec<u8>,
}

impl<'a> PlainSigner<'a> {
    pub fn new(coordinator: &'a Cert) -> Result<Self, ComposeError> {
        // Public parts only (sequoia's Cert serializes no secrets anyway; this keeps it so
        // even if that ever changed): the message must never carry the coordinator's secret.
        let public = coordinator.clone().strip_secret_key_material();
        let mut armored = Vec::new();
        public
            .armored()
            .serialize(&mut armored)
            .map_err(|e| ComposeError::OpenPgp(e.to_string()))?;
        Ok(PlainSigner {
            coordinator,
            armored_public: crlf(&armored),
        })
    }
}

/// Builds a [`PlainText`] message: text plus the coordinator's public certificate, signed
/// (RFC 3156 multipart/signed) so the recipient can check it and encrypt back.
pub fn plain_for(
    text: &PlainText<'_>,
    signer: &PlainSigner<'_>,
    from: &AddrSpec,
    now: SystemTime,
) -> Result<Stub, ComposeError> {
    let date = unix_seconds(now);
    let mixed = MimePart::new(
        "multipart/mixed",
        vec![
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "utf-8"),
                BodyPart::Text(text.body.to_string().into()),
            ),
            MimePart {
                headers: vec![
                    (
                        "Content-Type".into(),
                        ContentType::new("application/pgp-keys")
                            .attribute("name", "coordinator.asc")
                            .into(),
                    ),
                    (
                        "Content-Disposition".into(),
                        ContentType::new("attachment")
                            .attribute("filename", "coordinator.asc")
                            .into(),
                    ),
                    ("Content-Transfer-Encoding".into(), Raw::new("7bit").into()),
                ],
                contents: BodyPart::Binary(signer.armored_public.as_slice().into()),
            },
        ],
    );
    let mut mixed_bytes = Vec::new();
    mixed.write_part(&mut mixed_bytes)?;
    let (signed, _) = sign_entity(mixed_bytes, signer.coordinator, now)?;
    let message_id = new_message_id(from)?;
    let bytes = outer_message(OuterHeaders {
        from,
        to: text.recipient_addr,
        subject: text.subject,
        date,
        message_id: &message_id,
        in_reply_to: text.in_reply_to,
        automatic: text.automatic,
        relay_of_case: None,
        body: MimePart::raw(BodyPart::Binary(signed.into())),
    })?;
    Ok(Stub {
        message_id: message_id.bracketed(),
        bytes,
    })
}

/// Checks the self-signatures sealing relies on (user ID and key bindings), so that their
/// verifications are in sequoia's cache, to be saved, before the copies are sealed.
pub(crate) fn check_self_signatures(cert: &Cert, now: SystemTime) {
    let policy = StandardPolicy::new();
    // The same checks as sealing makes; whether they pass is decided again there.
    let _ = encryption_keys(cert, &policy, now);
    if let Ok(valid) = cert.with_policy(&policy, now) {
        let _ = (valid.userids().count(), valid.keys().count());
    }
}

/// The live, unrevoked, encryption-capable keys of `cert`, or why there are none.
fn encryption_keys<'a>(
    cert: &'a Cert,
    policy: &'a StandardPolicy<'a>,
    now: SystemTime,
) -> Result<Vec<EncryptionKey<'a>>, ComposeError> {
    let valid = cert.with_policy(policy, now).map_err(|e| {
        ComposeError::NoValidKey(format!(
            "certificate not valid under the standard policy: {e}"
        ))
    })?;
    if let RevocationStatus::Revoked(_) = valid.revocation_status() {
        return Err(ComposeError::NoValidKey("certificate revoked".into()));
    }
    if let Err(e) = valid.alive() {
        return Err(ComposeError::NoValidKey(format!(
            "certificate expired: {e}"
        )));
    }
    let capable = || {
        valid
            .keys()
            .supported()
            .for_transport_encryption()
            .for_storage_encryption()
    };
    let usable: Vec<_> = capable().alive().revoked(false).collect();
    if !usable.is_empty() {
        return Ok(usable);
    }
    if capable().next().is_some() {
        Err(ComposeError::NoValidKey(
            "encryption subkey expired or revoked".into(),
        ))
    } else {
        Err(ComposeError::NoValidKey(
            "no encryption-capable subkey".into(),
        ))
    }
}

/// Encrypts `inner` to `keys` with a fresh AES-256 session key drawn from the OS (getrandom).
///
/// `inner` is the signed OpenPGP message made by [`sign_message`], and goes into the encryption
/// as it is. Held copies queued by casegate before 2026-11-23 kept a MIME entity (multipart/
/// signed) instead: that is wrapped in a literal data packet, as it was then.
///
/// Why not let sequoia draw the session key: its nettle backend seeds a new Yarrow generator
/// (1,500 SHA-256 rounds) for every random draw, which made the session key alone a third of
/// the per-copy cost of a fan-out. The OS generator is at least as strong. AES-256 is what
/// sequoia picks by default too, and every OpenPGP implementation in use supports it.
fn encrypt<'a>(inner: &[u8], keys: Vec<EncryptionKey<'a>>) -> Result<Vec<u8>, ComposeError> {
    let pgp = |e: anyhow::Error| ComposeError::OpenPgp(e.to_string());
    let algo = SymmetricAlgorithm::AES256;
    let mut key = vec![0u8; algo.key_size().map_err(pgp)?];
    rand::rngs::OsRng
        .try_fill_bytes(&mut key)
        .map_err(|e| ComposeError::OpenPgp(format!("no randomness from the OS: {e}")))?;
    // Copied into zeroize-on-drop memory; sequoia clears this buffer, no copy is left behind.
    let session_key = SessionKey::from(key);
    let recipients: Vec<Recipient<'a>> = keys.into_iter().map(Recipient::from).collect();
    let mut sink = Vec::with_capacity(inner.len() * 4 / 3 + 1024);
    let message = Message::new(&mut sink);
    let message = Armorer::new(message)
        .kind(armor::Kind::Message)
        .build()
        .map_err(pgp)?;
    let mut message = Encryptor::with_session_key(message, algo, session_key)
        .map_err(pgp)?
        .add_recipients(recipients)
        .build()
        .map_err(pgp)?;
    // OpenPGP packets always have the top bit of their first byte set; MIME text never does.
    if inner.first().is_some_and(|b| b & 0x80 != 0) {
        message.write_all(inner)?;
        message.finalize().map_err(pgp)?;
    } else {
        let mut literal = LiteralWriter::new(message).build().map_err(pgp)?;
        literal.write_all(inner)?;
        literal.finalize().map_err(pgp)?;
    }
    Ok(sink)
}

/// Signs `entity` (a complete MIME entity, CRLF) into an OpenPGP message: one-pass signature,
/// literal data (binary) holding the entity, signature. Returns it and the signing key's
/// fingerprint.
fn sign_message(
    entity: &[u8],
    coordinator: &Cert,
    now: SystemTime,
) -> Result<(Vec<u8>, String), ComposeError> {
    let pgp = |e: anyhow::Error| ComposeError::OpenPgp(e.to_string());
    let (keypair, signer_fingerprint) = signing_keypair(coordinator, now)?;
    let mut signed = Vec::with_capacity(entity.len() + 512);
    let message = Message::new(&mut signed);
    let signer = Signer::new(message, keypair)
        .map_err(pgp)?
        .hash_algo(SIGNATURE_HASH)
        .map_err(pgp)?
        .creation_time(now)
        .build()
        .map_err(pgp)?;
    let mut literal = LiteralWriter::new(signer)
        .format(DataFormat::Binary)
        .build()
        .map_err(pgp)?;
    literal.write_all(entity)?;
    literal.finalize().map_err(pgp)?;
    Ok((signed, signer_fingerprint))
}

/// The coordinator's live signing key, unlocked, and its fingerprint; or why it cannot sign.
fn signing_keypair(
    coordinator: &Cert,
    now: SystemTime,
) -> Result<(openpgp::crypto::KeyPair, String), ComposeError> {
    let policy = StandardPolicy::new();
    let valid = coordinator
        .with_policy(&policy, now)
        .map_err(|e| ComposeError::CoordinatorKey(e.to_string()))?;
    valid
        .alive()
        .map_err(|e| ComposeError::CoordinatorKey(format!("expired: {e}")))?;
    if let RevocationStatus::Revoked(_) = valid.revocation_status() {
        return Err(ComposeError::CoordinatorKey("revoked".into()));
    }
    let signing = valid
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .unencrypted_secret()
        .next()
        .ok_or_else(|| {
            ComposeError::CoordinatorKey("no live signing key with an unlocked secret".into())
        })?;
    let signer_fingerprint = signing.key().fingerprint().to_hex();
    let keypair = signing
        .key()
        .clone()
        .into_keypair()
        .map_err(|e| ComposeError::CoordinatorKey(e.to_string()))?;
    Ok((keypair, signer_fingerprint))
}

/// Signs `first_part` (a complete MIME part, CRLF) with a detached signature and wraps both in
/// multipart/signed. Returns the entity and the signing key's fingerprint.
fn sign_entity(
    first_part: Vec<u8>,
    coordinator: &Cert,
    now: SystemTime,
) -> Result<(Vec<u8>, String), ComposeError> {
    let pgp = |e: anyhow::Error| ComposeError::OpenPgp(e.to_string());
    let (keypair, signer_fingerprint) = signing_keypair(coordinator, now)?;

    let mut signature = Vec::new();
    {
        let message = Message::new(&mut signature);
        let message = Armorer::new(message)
            .kind(armor::Kind::Signature)
            .build()
            .map_err(pgp)?;
        let mut signer = Signer::new(message, keypair)
            .map_err(pgp)?
            .detached()
            .hash_algo(SIGNATURE_HASH)
            .map_err(pgp)?
            .creation_time(now)
            .build()
            .map_err(pgp)?;
        signer.write_all(&first_part)?;
        signer.finalize().map_err(pgp)?;
    }

    let signed = MimePart::new(
        ContentType::new("multipart/signed")
            .attribute("micalg", MICALG)
            .attribute("protocol", "application/pgp-signature"),
        vec![
            MimePart::raw(BodyPart::Binary(first_part.into())),
            MimePart {
                headers: vec![
                    (
                        "Content-Type".into(),
                        ContentType::new("application/pgp-signature")
                            .attribute("name", "signature.asc")
                            .into(),
                    ),
                    (
                        "Content-Description".into(),
                        Text::new("OpenPGP digital signature").into(),
                    ),
                    (
                        "Content-Disposition".into(),
                        ContentType::new("attachment")
                            .attribute("filename", "signature.asc")
                            .into(),
                    ),
                    ("Content-Transfer-Encoding".into(), Raw::new("7bit").into()),
                ],
                contents: BodyPart::Binary(crlf(&signature).into()),
            },
        ],
    );
    let mut entity = Vec::with_capacity(signed.size() + 512);
    signed.write_part(&mut entity)?;
    Ok((entity, signer_fingerprint))
}

/// The text/plain part that is signed: protected headers plus the body, quoted-printable so
/// that no transport can change the signed bytes (long lines, trailing spaces, 8-bit).
fn protected_text_part(
    subject: &HeaderText,
    from: &AddrSpec,
    date: i64,
    body: &str,
) -> Result<Vec<u8>, ComposeError> {
    // One line-end convention before encoding: the encoder turns LF into CRLF, and a stray
    // CR would otherwise travel as a bare CR.
    let mut text = body.replace("\r\n", "\n").replace('\r', "\n");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let mut encoded = Vec::with_capacity(text.len() + text.len() / 8);
    quoted_printable_encode(text.as_bytes(), &mut encoded, true)?;
    let part = MimePart {
        headers: vec![
            (
                "Content-Type".into(),
                ContentType::new("text/plain")
                    .attribute("charset", "utf-8")
                    .attribute("protected-headers", "v1")
                    .into(),
            ),
            (
                "Content-Transfer-Encoding".into(),
                Raw::new("quoted-printable").into(),
            ),
            (
                "From".into(),
                Address::new_address(None::<&str>, from.as_str()).into(),
            ),
            ("Subject".into(), Text::new(subject.as_str()).into()),
            ("Date".into(), Date::new(date).into()),
        ],
        contents: BodyPart::Binary(encoded.into()),
    };
    let mut out = Vec::with_capacity(part.size() + 512);
    part.write_part(&mut out)?;
    Ok(out)
}

/// multipart/encrypted around an armored OpenPGP message (RFC 3156 §4).
fn multipart_encrypted(armored: Vec<u8>) -> MimePart<'static> {
    MimePart::new(
        ContentType::new("multipart/encrypted").attribute("protocol", "application/pgp-encrypted"),
        vec![
            MimePart {
                headers: vec![
                    (
                        "Content-Type".into(),
                        ContentType::new("application/pgp-encrypted").into(),
                    ),
                    (
                        "Content-Description".into(),
                        Text::new("PGP/MIME version identification").into(),
                    ),
                    ("Content-Transfer-Encoding".into(), Raw::new("7bit").into()),
                ],
                contents: BodyPart::Text("Version: 1\r\n".into()),
            },
            MimePart {
                headers: vec![
                    (
                        "Content-Type".into(),
                        ContentType::new("application/octet-stream")
                            .attribute("name", "encrypted.asc")
                            .into(),
                    ),
                    (
                        "Content-Description".into(),
                        Text::new("OpenPGP encrypted message").into(),
                    ),
                    (
                        "Content-Disposition".into(),
                        ContentType::new("inline")
                            .attribute("filename", "encrypted.asc")
                            .into(),
                    ),
                    ("Content-Transfer-Encoding".into(), Raw::new("7bit").into()),
                ],
                contents: BodyPart::Binary(crlf(&armored).into()),
            },
        ],
    )
}

/// Every value of the outer header section, each of a type that cannot break a header.
struct OuterHeaders<'a> {
    from: &'a AddrSpec,
    to: &'a AddrSpec,
    subject: &'a HeaderText,
    date: i64,
    message_id: &'a HeaderMessageId,
    in_reply_to: Option<&'a HeaderMessageId>,
    automatic: bool,
    /// A relayed copy: the relay marker header, naming the case.
    relay_of_case: Option<&'a str>,
    body: MimePart<'a>,
}

fn outer_message(h: OuterHeaders<'_>) -> Result<Vec<u8>, ComposeError> {
    let mut headers: Vec<(Cow<'_, str>, HeaderType<'_>)> = vec![
        (
            "From".into(),
            Address::new_address(None::<&str>, h.from.as_str()).into(),
        ),
        (
            "To".into(),
            Address::new_address(None::<&str>, h.to.as_str()).into(),
        ),
        ("Subject".into(), Text::new(h.subject.as_str()).into()),
        ("Date".into(), Date::new(h.date).into()),
        (
            "Message-ID".into(),
            MessageId::new(h.message_id.bare()).into(),
        ),
    ];
    if let Some(parent) = h.in_reply_to {
        headers.push(("In-Reply-To".into(), MessageId::new(parent.bare()).into()));
        headers.push(("References".into(), MessageId::new(parent.bare()).into()));
    }
    if h.automatic {
        headers.push(("Auto-Submitted".into(), Raw::new("auto-generated").into()));
    }
    if let Some(case) = h.relay_of_case {
        headers.push((
            crate::discussion::RELAY_HEADER.into(),
            Text::new(case.to_string()).into(),
        ));
    }
    headers.push(("MIME-Version".into(), Raw::new("1.0").into()));
    let mut builder = mail_builder::MessageBuilder::new().body(h.body);
    builder.headers = headers;
    Ok(builder.write_to_vec()?)
}

/// The inner subject: the caller's, with the tracking number in front unless already there.
fn inner_subject(thread: &str, subject: &str) -> String {
    if subject
        .to_ascii_uppercase()
        .contains(&thread.to_ascii_uppercase())
    {
        subject.to_string()
    } else {
        format!("[{thread}] {subject}")
    }
}

/// `<random@domain-of-from>`: 128 random bits, so Message-IDs never collide across copies.
/// (An address literal or non-ASCII domain of `from` falls back to `localhost`.)
fn new_message_id(from: &AddrSpec) -> Result<HeaderMessageId, ComposeError> {
    let random = hex::encode(rand::random::<[u8; 16]>());
    Ok(
        HeaderMessageId::parse(&format!("{random}@{}", from.domain()))
            .or_else(|_| HeaderMessageId::parse(&format!("{random}@localhost")))?,
    )
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Sequoia's armor uses LF; MIME on the wire wants CRLF. (Line by line with memchr: this runs
/// over every byte of every copy of a fan-out.)
fn crlf(lf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 60 + 2);
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', lf) {
        let line = &lf[start..nl];
        out.extend_from_slice(line);
        if !line.ends_with(b"\r") {
            out.push(b'\r');
        }
        out.push(b'\n');
        start = nl + 1;
    }
    out.extend_from_slice(&lf[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::Keyring;
    use crate::open::{Encryption, SignatureFacts, open};
    use mail_parser::MimeHeaders;
    use openpgp::cert::CertBuilder;
    use openpgp::parse::Parse;

    fn addr(s: &str) -> AddrSpec {
        AddrSpec::parse(s).unwrap()
    }

    fn cert(addr: &str) -> Cert {
        CertBuilder::general_purpose(Some(format!("<{addr}>")))
            .generate()
            .unwrap()
            .0
    }

    /// Opens a sealed copy the way casegate opens mail: as the recipient (whose TSK stands in
    /// for the coordinator key), knowing the coordinator's certificate.
    fn open_as(recipient: Cert, coordinator: &Cert, bytes: &[u8]) -> crate::open::Opened {
        let keyring = Keyring::new(
            Some(recipient),
            vec![coordinator.clone().strip_secret_key_material()],
        );
        open(bytes, &keyring).unwrap()
    }

    #[test]
    fn a_copy_is_encrypted_and_signed_in_one_openpgp_message() {
        let coordinator = cert("cert@example.test");
        let vendor = cert("psirt@vendor.example");
        let now = SystemTime::now();
        let notice = Notice {
            thread: "VU#409117",
            subject: "Buffer overflow",
            body: "Details.\n",
            in_reply_to: None,
            automatic: false,
        };
        let signed = sign_notice(&notice, &coordinator, &addr("cert@example.test"), now).unwrap();
        // One-pass signature packet first (tag 4, old or new format), not MIME text.
        assert!(matches!(signed.inner()[0], 0x90..=0x93 | 0xc4));
        let public = vendor.clone().strip_secret_key_material();
        let sealed = seal_for(&signed, &addr("psirt@vendor.example"), &public, now).unwrap();
        let opened = open_as(vendor, &coordinator, &sealed.bytes);
        assert!(
            matches!(opened.encryption, Encryption::Full { .. }),
            "{opened:?}"
        );
        match &opened.signature {
            SignatureFacts::Valid { signing_key, .. } => {
                assert_eq!(signing_key, &signed.signer_fingerprint)
            }
            other => panic!("not validly signed: {other:?}"),
        }
        assert_eq!(
            opened.protected_subject.as_deref(),
            Some("[VU#409117] Buffer overflow")
        );
    }

    #[test]
    fn plain_messages_are_signed_and_attach_the_coordinators_public_certificate_only() {
        let coordinator = cert("cert@example.test");
        let reporter = cert("reporter@example.org");
        let signer = PlainSigner::new(&coordinator).unwrap();
        // One attachment made for a round serves every message of it.
        for number in ["VRF#26-11-AAAAA", "VRF#26-11-BBBBB"] {
            let stub = plain_for(
                &PlainText {
                    recipient_addr: &addr("reporter@example.org"),
                    subject: &HeaderText::new(&format!("[{number}] Report received")),
                    body: &format!("Your report is {number}.\r\n"),
                    in_reply_to: None,
                    automatic: true,
                },
                &signer,
                &addr("cert@example.test"),
                SystemTime::now(),
            )
            .unwrap();
            let opened = open_as(reporter.clone(), &coordinator, &stub.bytes);
            assert!(matches!(opened.encryption, Encryption::None), "{opened:?}");
            assert!(
                matches!(opened.signature, SignatureFacts::Valid { .. }),
                "{opened:?}"
            );
            let parsed = mail_parser::MessageParser::default()
                .parse(&stub.bytes)
                .unwrap();
            let keys: Vec<&[u8]> = parsed
                .parts
                .iter()
                .filter(|p| {
                    p.content_type().is_some_and(|c| {
                        c.c_type == "application" && c.subtype() == Some("pgp-keys")
                    })
                })
                .map(|p| p.contents())
                .collect();
            assert_eq!(keys.len(), 1, "one attached certificate");
            let attached = Cert::from_bytes(keys[0]).unwrap();
            assert_eq!(attached.fingerprint(), coordinator.fingerprint());
            assert!(
                !attached.is_tsk(),
                "the coordinator's secret key was attached"
            );
            let text = String::from_utf8_lossy(&stub.bytes);
            assert!(text.contains(number));
            assert!(
                !text.replace("\r\n", "").contains('\n'),
                "bare LF in {text}"
            );
        }
    }

    #[test]
    fn a_held_copy_kept_in_the_old_mime_form_still_seals_readably() {
        let coordinator = cert("cert@example.test");
        let vendor = cert("psirt@vendor.example");
        let entity = b"Content-Type: text/plain; charset=utf-8\r\n\r\nkept before the upgrade\r\n";
        let legacy = SignedNotice::from_stored(
            "VU#409117".into(),
            "cert@example.test",
            None,
            false,
            0,
            "AB".into(),
            entity.to_vec(),
        )
        .unwrap();
        let public = vendor.clone().strip_secret_key_material();
        let sealed = seal_for(
            &legacy,
            &addr("psirt@vendor.example"),
            &public,
            SystemTime::now(),
        )
        .unwrap();
        let opened = open_as(vendor, &coordinator, &sealed.bytes);
        assert!(
            matches!(opened.encryption, Encryption::Full { .. }),
            "{opened:?}"
        );
        let inner = opened.inner.unwrap();
        assert!(
            String::from_utf8_lossy(&inner).contains("kept before the upgrade"),
            "{}",
            String::from_utf8_lossy(&inner)
        );
    }

    #[test]
    fn crlf_adds_cr_only_where_missing() {
        assert_eq!(crlf(b"a\nb\r\nc\n\nd"), b"a\r\nb\r\nc\r\n\r\nd");
        assert_eq!(crlf(b"\n"), b"\r\n");
        assert_eq!(crlf(b"\r\n\r\n"), b"\r\n\r\n");
        assert_eq!(crlf(b"no newline"), b"no newline");
        assert_eq!(crlf(b""), b"");
    }
}
