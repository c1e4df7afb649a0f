//! The sequoia side of `open`: decrypt and/or verify one OpenPGP object.
//!
//! Why a separate file: the MIME walk in `mod.rs` decides *what* covers *what*; this file
//! only answers "what is inside these bytes, and who signed them", with every failure
//! mapped to an `OpenError` or to `SignatureFacts::Bad` — never a panic, never plaintext
//! from a message whose integrity check failed.

use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;

use openpgp::armor;
use openpgp::cert::prelude::*;
use openpgp::crypto::SessionKey;
use openpgp::packet::{PKESK, SKESK, Tag};
use openpgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, MessageLayer, MessageStructure,
    VerificationError, VerificationHelper, VerifierBuilder,
};
use openpgp::parse::{PacketParserBuilder, PacketParserResult, Parse};
use openpgp::policy::StandardPolicy;
use openpgp::types::{RevocationStatus, SymmetricAlgorithm};
use openpgp::{Cert, KeyHandle, Packet};
use sequoia_openpgp as openpgp;

use super::{OpenError, SignatureFacts};
use crate::keyring::Keyring;

/// Sequoia's internal hold-back buffer. Small, because we never use plaintext before the
/// whole message (MDC/AEAD tag and signatures) has been checked anyway, and a small
/// buffer keeps a decompression bomb from ballooning before our own limit trips. Small also
/// because sequoia allocates and zeroes a buffer of this size for each message's encrypted
/// data (its partial-body reader): at 1 MiB that was a tenth of a mixed ingest's CPU time.
const STREAM_BUFFER: usize = 1 << 16;

/// What one OpenPGP message turned out to hold.
#[derive(Debug)]
pub(crate) struct Unwrapped {
    pub plaintext: Vec<u8>,
    /// True when an encryption layer was removed.
    pub encrypted: bool,
    /// Key IDs of all PKESK recipients we saw ("anonymous" for wildcards).
    pub recipients: Vec<String>,
    /// Signatures over the plaintext, if the message carried any.
    pub signature: Option<SignatureFacts>,
    /// File name from the literal data packet, if any.
    pub filename: Option<String>,
}

/// Shared between us and the helper that sequoia owns, so that we can still read what the
/// helper observed when sequoia returns an error.
#[derive(Default)]
struct Observed {
    recipients: Vec<String>,
    saw_sed: bool,
    saw_skesk: bool,
    no_secret_key: bool,
    our_pkesk_failed: bool,
    decrypt_failed: bool,
    /// A session key was accepted: later failures are failures of the ciphertext.
    session_key_ok: bool,
    facts: Option<SignatureFacts>,
    encrypted: bool,
    filename: Option<String>,
}

struct Helper<'k> {
    keyring: &'k Keyring,
    seen: Rc<RefCell<Observed>>,
}

impl VerificationHelper for Helper<'_> {
    fn inspect(&mut self, pp: &openpgp::parse::PacketParser<'_>) -> openpgp::Result<()> {
        if let Packet::Literal(l) = &pp.packet
            && let Some(name) = l.filename()
        {
            self.seen.borrow_mut().filename = Some(String::from_utf8_lossy(name).into_owned());
        }
        if pp.packet.tag() == Tag::SED {
            self.seen.borrow_mut().saw_sed = true;
            return Err(anyhow_msg(
                "symmetrically encrypted data without integrity protection",
            ));
        }
        Ok(())
    }

    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self
            .keyring
            .certs()
            .filter(|c| c.keys().key_handles(ids.iter()).next().is_some())
            .cloned()
            .collect())
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        let mut results: Vec<SignatureFacts> = Vec::new();
        let mut encrypted = false;
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::Encryption { .. } => encrypted = true,
                MessageLayer::Compression { .. } => {}
                MessageLayer::SignatureGroup { results: group } => {
                    for r in group {
                        results.push(match r {
                            Ok(good) => good_facts(&good.ka),
                            Err(e) => error_facts(&e),
                        });
                    }
                }
            }
        }
        let mut seen = self.seen.borrow_mut();
        seen.encrypted = encrypted;
        seen.facts = aggregate(results);
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        {
            let mut seen = self.seen.borrow_mut();
            seen.recipients = pkesks.iter().map(recipient_name).collect();
            seen.saw_skesk = !skesks.is_empty();
        }
        let Some(coordinator) = self.keyring.coordinator().filter(|c| c.is_tsk()) else {
            self.seen.borrow_mut().no_secret_key = true;
            return Err(anyhow_msg("no coordinator secret key"));
        };
        // Any secret (sub)key may decrypt: expiry of an encryption subkey must not make
        // already-sent mail unreadable.
        let keys: Vec<_> = coordinator
            .keys()
            .unencrypted_secret()
            .map(|ka| ka.key().clone())
            .collect();
        if keys.is_empty() {
            self.seen.borrow_mut().no_secret_key = true;
            return Err(anyhow_msg(
                "coordinator secret key is password-protected or absent",
            ));
        }
        // Addressed PKESKs first, then wildcard ones.
        for pass in 0..2 {
            for pkesk in pkesks {
                let targets: Vec<_> = match (pass, pkesk.recipient()) {
                    (0, Some(h)) => keys.iter().filter(|k| h.aliases(k.key_handle())).collect(),
                    (1, None) => keys.iter().collect(),
                    _ => continue,
                };
                for key in targets {
                    let Ok(mut pair) = key.clone().into_keypair() else {
                        continue;
                    };
                    if let Some((algo, sk)) = pkesk.decrypt(&mut pair, sym_algo)
                        && decrypt(algo, &sk)
                    {
                        self.seen.borrow_mut().session_key_ok = true;
                        return Ok(Some(coordinator.clone()));
                    }
                    if pass == 0 {
                        self.seen.borrow_mut().our_pkesk_failed = true;
                    }
                }
            }
        }
        self.seen.borrow_mut().decrypt_failed = true;
        Err(anyhow_msg("no session key for us"))
    }
}

fn anyhow_msg(s: &str) -> anyhow::Error {
    openpgp::Error::InvalidOperation(s.to_string()).into()
}

fn recipient_name(p: &PKESK) -> String {
    match p.recipient() {
        Some(h) => h.to_hex(),
        None => "anonymous".to_string(),
    }
}

/// Facts for a signature sequoia found good *at its creation time*. We also require the
/// certificate and signing key to be alive and unrevoked *now*: mail arrives now, and a
/// back-dated signature from a since-revoked or expired key proves nothing.
fn good_facts(
    ka: &ValidErasedKeyAmalgamation<'_, openpgp::packet::key::PublicParts>,
) -> SignatureFacts {
    let policy = StandardPolicy::new();
    let cert = ka.cert();
    let cert_fpr = cert.fingerprint().to_hex();
    let key_fpr = ka.key().fingerprint().to_hex();
    if let RevocationStatus::Revoked(_) = cert.revocation_status(&policy, None) {
        return SignatureFacts::Bad {
            reason: format!("certificate {cert_fpr} is revoked"),
        };
    }
    let vc = match cert.with_policy(&policy, None) {
        Ok(vc) => vc,
        Err(e) => {
            return SignatureFacts::Bad {
                reason: format!("certificate {cert_fpr} is not valid now: {e}"),
            };
        }
    };
    if vc.alive().is_err() {
        return SignatureFacts::Bad {
            reason: format!("certificate {cert_fpr} has expired"),
        };
    }
    match vc.keys().key_handle(ka.key().key_handle()).next() {
        Some(k) => {
            if k.alive().is_err() {
                return SignatureFacts::Bad {
                    reason: format!("signing key {key_fpr} has expired"),
                };
            }
            if let RevocationStatus::Revoked(_) = k.revocation_status() {
                return SignatureFacts::Bad {
                    reason: format!("signing key {key_fpr} is revoked"),
                };
            }
        }
        None => {
            return SignatureFacts::Bad {
                reason: format!("signing key {key_fpr} is no longer bound to {cert_fpr}"),
            };
        }
    }
    let mut emails: Vec<String> = Vec::new();
    for ua in vc.userids().revoked(false) {
        if let Ok(Some(e)) = ua.userid().email() {
            let e = e.to_ascii_lowercase();
            if !emails.contains(&e) {
                emails.push(e);
            }
        }
    }
    SignatureFacts::Valid {
        signing_key: key_fpr,
        cert: cert_fpr,
        emails,
    }
}

fn error_facts(e: &VerificationError<'_>) -> SignatureFacts {
    match e {
        VerificationError::MissingKey { sig } => SignatureFacts::UnknownKey {
            issuer: sig
                .get_issuers()
                .first()
                .map(|h| h.to_hex())
                .unwrap_or_else(|| "(no issuer)".into()),
        },
        VerificationError::UnboundKey { cert, error, .. } => SignatureFacts::Bad {
            reason: format!(
                "key of {} not valid at signing time: {error}",
                cert.fingerprint().to_hex()
            ),
        },
        VerificationError::BadKey { ka, error, .. } => SignatureFacts::Bad {
            reason: format!(
                "key {} of {} unusable at signing time: {error}",
                ka.key().fingerprint().to_hex(),
                ka.cert().fingerprint().to_hex()
            ),
        },
        VerificationError::BadSignature { ka, error, .. } => SignatureFacts::Bad {
            reason: format!(
                "signature by {} does not verify: {error}",
                ka.cert().fingerprint().to_hex()
            ),
        },
        VerificationError::MalformedSignature { error, .. } => SignatureFacts::Bad {
            reason: format!("malformed signature: {error}"),
        },
        VerificationError::UnknownSignature { sig } => SignatureFacts::Bad {
            reason: format!("unparsable signature: {}", sig.error()),
        },
        _ => SignatureFacts::Bad {
            reason: format!("signature not verified: {e}"),
        },
    }
}

/// Several signatures over the same data: any bad one makes the whole bad (someone
/// tampered, or a key is broken); otherwise the first valid one counts; otherwise unknown.
pub(crate) fn aggregate(results: Vec<SignatureFacts>) -> Option<SignatureFacts> {
    let mut valid = None;
    let mut unknown = None;
    for r in results {
        match r {
            SignatureFacts::Bad { .. } => return Some(r),
            SignatureFacts::Valid { .. } if valid.is_none() => valid = Some(r),
            SignatureFacts::UnknownKey { .. } if unknown.is_none() => unknown = Some(r),
            SignatureFacts::Partial { .. } => return Some(r),
            _ => {}
        }
    }
    valid.or(unknown)
}

/// Removes ASCII armor (tolerating the usual formatting damage). Corrupt armor is an error:
/// the caller claimed this is an OpenPGP block.
pub(crate) fn dearmor(text: &[u8], limit: usize) -> Result<Vec<u8>, OpenError> {
    guard(|| dearmor_inner(text, limit))
        .unwrap_or_else(|| Err(OpenError::Malformed("corrupt armor".into())))
}

fn dearmor_inner(text: &[u8], limit: usize) -> Result<Vec<u8>, OpenError> {
    let mut r = armor::Reader::from_bytes(
        text,
        armor::ReaderMode::Tolerant(Some(armor::Kind::Message)),
    );
    // Base64 carries 3 bytes in 4: one allocation of about the size (growing by doubling
    // would copy it again), never more than the limit allows.
    let mut out = Vec::with_capacity((text.len() / 4 * 3 + 64).min(limit.saturating_add(1)));
    (&mut r)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| OpenError::Malformed(format!("corrupt armor: {e}")))?;
    if out.len() > limit {
        return Err(OpenError::TooLarge);
    }
    if out.is_empty() {
        return Err(OpenError::Malformed("corrupt armor: empty".into()));
    }
    Ok(out)
}

/// What the top-level packets of a binary OpenPGP message are, without decrypting.
#[derive(Debug, Default)]
pub(crate) struct Shape {
    pub recipients: Vec<String>,
    pub sed: bool,
    pub encrypted: bool,
    pub skesk_only: bool,
    /// An encrypted data packet too short to be real (truncated).
    pub truncated: bool,
    /// A plausible OpenPGP message (first packet is one a message may start with).
    pub is_message: bool,
}

/// Walks the top-level packets (not recursing into containers: cheap even for bombs).
pub(crate) fn shape(binary: &[u8]) -> Shape {
    guard(|| shape_inner(binary)).unwrap_or_default()
}

fn shape_inner(binary: &[u8]) -> Shape {
    let mut s = Shape::default();
    let mut pkesk = false;
    let mut skesk = false;
    let Ok(ppr) = PacketParserBuilder::from_bytes(binary)
        .and_then(|b| b.dearmor(openpgp::parse::Dearmor::Disabled).build())
    else {
        return s;
    };
    let mut ppr = ppr;
    let mut first = true;
    let mut plausible_start = false;
    let mut has_content = false;
    let mut count = 0usize;
    while let PacketParserResult::Some(mut pp) = ppr {
        count += 1;
        if count > 10_000 {
            break;
        }
        let tag = pp.packet.tag();
        if first {
            plausible_start = matches!(
                tag,
                Tag::PKESK
                    | Tag::SKESK
                    | Tag::SEIP
                    | Tag::SED
                    | Tag::AED
                    | Tag::OnePassSig
                    | Tag::Signature
                    | Tag::CompressedData
                    | Tag::Literal
                    | Tag::Marker
            ) && !matches!(pp.packet, Packet::Unknown(_) if tag != Tag::SED && tag != Tag::AED);
            first = false;
        }
        // A message has content; a file of bare signatures (a detached .sig) does not.
        if matches!(
            tag,
            Tag::SEIP | Tag::SED | Tag::AED | Tag::CompressedData | Tag::Literal
        ) {
            has_content = true;
        }
        match &pp.packet {
            Packet::PKESK(p) => {
                pkesk = true;
                s.recipients.push(recipient_name(p));
            }
            Packet::SKESK(_) => skesk = true,
            _ => {}
        }
        match tag {
            Tag::SED => {
                s.sed = true;
                s.encrypted = true;
            }
            Tag::SEIP | Tag::AED => s.encrypted = true,
            _ => {}
        }
        if let Packet::SEIP(openpgp::packet::SEIP::V1(_)) = &pp.packet {
            // IV prefix (block size + 2) + smallest literal packet + MDC packet (22): sequoia
            // panics on bodies shorter than prefix + MDC, so refuse them up front.
            let mut head = Vec::with_capacity(40);
            let _ = (&mut pp).take(40).read_to_end(&mut head);
            if head.len() < 40 {
                s.truncated = true;
            }
        }
        ppr = match pp.next() {
            Ok((_, next)) => next,
            Err(_) => break,
        };
    }
    s.skesk_only = skesk && !pkesk;
    s.is_message = plausible_start && has_content;
    s
}

/// Decrypts and/or verifies one OpenPGP message (binary). `limit` bounds the plaintext.
pub(crate) fn unwrap_message(
    binary: &[u8],
    keyring: &Keyring,
    limit: usize,
) -> Result<Unwrapped, OpenError> {
    guard(|| unwrap_message_inner(binary, keyring, limit)).unwrap_or_else(|| {
        Err(OpenError::Malformed(
            "the OpenPGP parser gave up on this data (internal error on malformed input)".into(),
        ))
    })
}

/// Runs sequoia on hostile input. Sequoia has had panics on truncated packets (e.g. an
/// `unwrap` when a SEIP packet ends early); a panic must not take the daemon down, so
/// it becomes a failure of this one message.
fn guard<T>(f: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

fn unwrap_message_inner(
    binary: &[u8],
    keyring: &Keyring,
    limit: usize,
) -> Result<Unwrapped, OpenError> {
    let sh = shape(binary);
    if sh.sed {
        return Err(OpenError::Integrity(
            "encrypted without integrity protection (SED packet, no MDC); not decrypted".into(),
        ));
    }
    if sh.truncated {
        return Err(OpenError::Malformed(
            "encrypted data packet is truncated".into(),
        ));
    }
    if sh.encrypted && keyring.coordinator().filter(|c| c.is_tsk()).is_none() {
        return Err(OpenError::NoSecretKey);
    }
    if sh.encrypted && sh.skesk_only {
        return Err(OpenError::Unsupported(
            "encrypted with a passphrase only, not to the coordinator key".into(),
        ));
    }
    let seen = Rc::new(RefCell::new(Observed {
        recipients: sh.recipients.clone(),
        ..Observed::default()
    }));
    let helper = Helper {
        keyring,
        seen: seen.clone(),
    };
    let policy = StandardPolicy::new();
    let started = DecryptorBuilder::from_bytes(binary)
        .map(|b| b.buffer_size(STREAM_BUFFER))
        .and_then(|b| b.with_policy(&policy, None, helper));
    let mut decryptor = match started {
        Ok(d) => d,
        Err(e) => return Err(classify_after(e, &seen.borrow())),
    };
    // About the ciphertext's size unless it was compressed: one allocation, not a doubling
    // series that copies the plaintext again.
    let mut plaintext = Vec::with_capacity(binary.len().min(limit.saturating_add(1)));
    let read = (&mut decryptor)
        .take(limit as u64 + 1)
        .read_to_end(&mut plaintext);
    if let Err(e) = read {
        drop(decryptor);
        return Err(classify_after(io_to_anyhow(e), &seen.borrow()));
    }
    if plaintext.len() > limit {
        return Err(OpenError::TooLarge);
    }
    if !decryptor.message_processed() {
        return Err(OpenError::Malformed(
            "OpenPGP message not fully processed".into(),
        ));
    }
    drop(decryptor);
    let seen = seen.borrow();
    Ok(Unwrapped {
        plaintext,
        encrypted: seen.encrypted || sh.encrypted,
        recipients: seen.recipients.clone(),
        signature: seen.facts.clone(),
        filename: seen.filename.clone(),
    })
}

/// Like `classify`, but once a session key was accepted any failure to parse the decrypted
/// data is an integrity failure: it was modified (or the sender is broken), and nothing of
/// it is trusted.
fn classify_after(e: anyhow::Error, seen: &Observed) -> OpenError {
    let err = classify(e, seen);
    if !seen.session_key_ok || seen.saw_sed {
        return err;
    }
    match err {
        OpenError::Malformed(m) => OpenError::Integrity(format!(
            "decrypted data is corrupt, the ciphertext was probably modified ({m})"
        )),
        other => other,
    }
}

/// Sequoia's `io::Read` wraps its `anyhow::Error` into an opaque `io::Error`; the typed
/// error cannot be downcast back out. Integrity failures are recovered by their message.
fn io_to_anyhow(e: std::io::Error) -> anyhow::Error {
    let manipulated = openpgp::Error::ManipulatedMessage.to_string();
    let Some(inner) = e.into_inner() else {
        return anyhow::Error::msg("I/O error while reading OpenPGP data");
    };
    let inner = match inner.downcast::<openpgp::Error>() {
        Ok(typed) => return anyhow::Error::from(*typed),
        Err(other) => other,
    };
    let mut texts = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
    while let Some(c) = cur {
        let t = c.to_string();
        if t == manipulated {
            return openpgp::Error::ManipulatedMessage.into();
        }
        texts.push(t);
        cur = c.source();
    }
    anyhow::Error::msg(texts.join(": "))
}

fn find_openpgp_error(e: &anyhow::Error) -> Option<&openpgp::Error> {
    e.chain().find_map(|c| c.downcast_ref::<openpgp::Error>())
}

/// Maps a sequoia failure to why we quarantine. Integrity failures are recognised first.
fn classify(e: anyhow::Error, seen: &Observed) -> OpenError {
    if seen.saw_sed {
        return OpenError::Integrity(
            "encrypted without integrity protection (SED packet, no MDC); not decrypted".into(),
        );
    }
    if seen.no_secret_key {
        return OpenError::NoSecretKey;
    }
    match find_openpgp_error(&e) {
        Some(openpgp::Error::ManipulatedMessage) => {
            return OpenError::Integrity(
                "integrity check (MDC/AEAD) failed: the ciphertext was modified; not decrypted"
                    .into(),
            );
        }
        Some(openpgp::Error::PolicyViolation(what, _))
            if what.contains("Symmetrically Encrypted Data") =>
        {
            return OpenError::Integrity(
                "encrypted without integrity protection (SED packet, no MDC); not decrypted".into(),
            );
        }
        Some(openpgp::Error::UnsupportedSymmetricAlgorithm(a)) => {
            return OpenError::Unsupported(format!("symmetric algorithm {a}"));
        }
        Some(openpgp::Error::UnsupportedAEADAlgorithm(a)) => {
            return OpenError::Unsupported(format!("AEAD algorithm {a}"));
        }
        Some(openpgp::Error::UnsupportedCompressionAlgorithm(a)) => {
            return OpenError::Unsupported(format!("compression algorithm {a}"));
        }
        Some(openpgp::Error::UnsupportedPublicKeyAlgorithm(a)) => {
            return OpenError::Unsupported(format!("public-key algorithm {a}"));
        }
        Some(openpgp::Error::PolicyViolation(what, _)) => {
            return OpenError::Unsupported(format!("rejected by policy: {what}"));
        }
        _ => {}
    }
    if seen.decrypt_failed
        || matches!(
            find_openpgp_error(&e),
            Some(openpgp::Error::MissingSessionKey(_))
        )
    {
        if seen.our_pkesk_failed {
            return OpenError::Integrity(
                "the session key addressed to the coordinator key does not decrypt (corrupted or forged)"
                    .into(),
            );
        }
        if seen.saw_skesk && seen.recipients.is_empty() {
            return OpenError::Unsupported(
                "encrypted with a passphrase only, not to the coordinator key".into(),
            );
        }
        return OpenError::NotForUs {
            recipients: seen.recipients.clone(),
        };
    }
    OpenError::Malformed(one_line(&e))
}

fn one_line(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for (i, c) in e.chain().enumerate() {
        if i > 0 {
            s.push_str(": ");
        }
        s.push_str(&c.to_string());
        if i >= 3 {
            break;
        }
    }
    s.replace(['\n', '\r'], " ")
}

/// Verifies a detached signature (`multipart/signed`) over `data`. Never fails: an
/// unparsable signature is a bad signature.
pub(crate) fn verify_detached(data: &[u8], signature: &[u8], keyring: &Keyring) -> SignatureFacts {
    guard(|| verify_detached_inner(data, signature, keyring)).unwrap_or_else(|| {
        SignatureFacts::Bad {
            reason: "the OpenPGP parser gave up on this signature (malformed)".into(),
        }
    })
}

fn verify_detached_inner(data: &[u8], signature: &[u8], keyring: &Keyring) -> SignatureFacts {
    let seen = Rc::new(RefCell::new(Observed::default()));
    let helper = Helper {
        keyring,
        seen: seen.clone(),
    };
    let policy = StandardPolicy::new();
    let result = DetachedVerifierBuilder::from_bytes(signature)
        .and_then(|b| b.with_policy(&policy, None, helper))
        .and_then(|mut v| v.verify_bytes(data));
    if let Err(e) = result {
        return SignatureFacts::Bad {
            reason: format!("signature could not be checked: {}", one_line(&e)),
        };
    }
    let facts = seen.borrow().facts.clone();
    facts.unwrap_or(SignatureFacts::Bad {
        reason: "signature part holds no signature".into(),
    })
}

/// Verifies a cleartext-signed block; returns the facts and the signed text (dash-escaping
/// removed) when it could be read.
pub(crate) fn verify_cleartext(
    block: &[u8],
    keyring: &Keyring,
    limit: usize,
) -> (SignatureFacts, Option<Vec<u8>>) {
    guard(|| verify_cleartext_inner(block, keyring, limit)).unwrap_or_else(|| {
        (
            SignatureFacts::Bad {
                reason: "the OpenPGP parser gave up on this cleartext signature (malformed)".into(),
            },
            None,
        )
    })
}

fn verify_cleartext_inner(
    block: &[u8],
    keyring: &Keyring,
    limit: usize,
) -> (SignatureFacts, Option<Vec<u8>>) {
    let seen = Rc::new(RefCell::new(Observed::default()));
    let helper = Helper {
        keyring,
        seen: seen.clone(),
    };
    let policy = StandardPolicy::new();
    let started = VerifierBuilder::from_bytes(block)
        .map(|b| b.buffer_size(STREAM_BUFFER))
        .and_then(|b| b.with_policy(&policy, None, helper));
    let mut v = match started {
        Ok(v) => v,
        Err(e) => {
            return (
                SignatureFacts::Bad {
                    reason: format!("cleartext signature could not be checked: {}", one_line(&e)),
                },
                None,
            );
        }
    };
    let mut text = Vec::new();
    if let Err(e) = (&mut v).take(limit as u64 + 1).read_to_end(&mut text) {
        let e = io_to_anyhow(e);
        return (
            SignatureFacts::Bad {
                reason: format!("cleartext signature could not be checked: {}", one_line(&e)),
            },
            None,
        );
    }
    if text.len() > limit || !v.message_processed() {
        return (
            SignatureFacts::Bad {
                reason: "cleartext-signed text too large to check".into(),
            },
            None,
        );
    }
    drop(v);
    let facts = seen.borrow().facts.clone();
    (
        facts.unwrap_or(SignatureFacts::Bad {
            reason: "cleartext block holds no signature".into(),
        }),
        Some(text),
    )
}
