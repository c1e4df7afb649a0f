//! Cases GnuPG 2.2 cannot produce (AEAD / SEIPDv2, signatures by non-signing keys), built
//! with sequoia itself. The GnuPG interop lives in tests/openpgp_interop.rs.

use std::io::Write;

use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message as Out, Signer};
use sequoia_openpgp as openpgp;

use super::*;
use crate::keyring::{Keyring, generate_coordinator_key};

fn participant(email: &str, suite: CipherSuite) -> openpgp::Cert {
    CertBuilder::new()
        .set_cipher_suite(suite)
        .add_userid(format!("P <{email}>"))
        .add_signing_subkey()
        .add_transport_encryption_subkey()
        .generate()
        .unwrap()
        .0
}

/// Encrypts (armored) to `to`, signing with `signer`'s key matching `signing_key_flags`.
pub(crate) fn encrypt_sign(
    to: &openpgp::Cert,
    signer: Option<openpgp::crypto::KeyPair>,
    data: &[u8],
) -> Vec<u8> {
    let p = StandardPolicy::new();
    let mut sink = Vec::new();
    let m = Out::new(&mut sink);
    let m = Armorer::new(m).build().unwrap();
    let recipients = to
        .with_policy(&p, None)
        .unwrap()
        .keys()
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption();
    let m = Encryptor::for_recipients(m, recipients).build().unwrap();
    let m = match signer {
        Some(k) => Signer::new(m, k).unwrap().build().unwrap(),
        None => m,
    };
    let mut w = LiteralWriter::new(m).build().unwrap();
    w.write_all(data).unwrap();
    w.finalize().unwrap();
    sink
}

fn signing_pair(cert: &openpgp::Cert) -> openpgp::crypto::KeyPair {
    let p = StandardPolicy::new();
    cert.with_policy(&p, None)
        .unwrap()
        .keys()
        .secret()
        .for_signing()
        .next()
        .unwrap()
        .key()
        .clone()
        .into_keypair()
        .unwrap()
}

fn pgp_mime(armored: &[u8]) -> Vec<u8> {
    let armored = String::from_utf8_lossy(armored).replace('\n', "\r\n");
    format!(
        "From: p@x.example\r\nSubject: ...\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --b\r\nContent-Type: application/octet-stream\r\n\r\n{armored}\r\n--b--\r\n"
    )
    .into_bytes()
}

const INNER: &[u8] = b"Subject: [VU#1] inner\r\nContent-Type: text/plain\r\n\r\nAEAD body\r\n";

#[test]
fn seipd_v2_aead_decrypts_and_tampering_is_an_integrity_error() {
    let coordinator = generate_coordinator_key("cert@example.test").unwrap();
    let p = participant("p@x.example", CipherSuite::Cv25519);
    let keyring = Keyring::new(Some(coordinator.clone()), vec![p.clone()]);
    let armored = encrypt_sign(&coordinator, Some(signing_pair(&p)), INNER);

    // Sequoia chooses SEIPDv2 (AEAD) because the coordinator key advertises it.
    let bin = crypto::dearmor(&armored, MAX_RAW).unwrap();
    let ppr = openpgp::PacketPile::from_bytes(&bin).unwrap();
    assert!(
        ppr.children()
            .any(|pk| matches!(pk, openpgp::Packet::SEIP(openpgp::packet::SEIP::V2(_)))),
        "expected SEIPDv2"
    );

    let o = open(&pgp_mime(&armored), &keyring).unwrap();
    assert!(matches!(o.encryption, Encryption::Full { .. }));
    match &o.signature {
        SignatureFacts::Valid { cert, emails, .. } => {
            assert_eq!(cert, &p.fingerprint().to_hex());
            assert_eq!(emails, &vec!["p@x.example".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(o.protected_subject.as_deref(), Some("[VU#1] inner"));

    // Flip one byte in the AEAD-protected body.
    let mut bad = bin.clone();
    let i = bad.len() - 40;
    bad[i] ^= 0x20;
    let mut w = openpgp::armor::Writer::new(Vec::new(), openpgp::armor::Kind::Message).unwrap();
    w.write_all(&bad).unwrap();
    let rearmored = w.finalize().unwrap();
    match open(&pgp_mime(&rearmored), &keyring) {
        Err(OpenError::Integrity(_)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn signature_by_a_key_not_marked_for_signing_is_bad() {
    let coordinator = generate_coordinator_key("cert@example.test").unwrap();
    let p = participant("rsa@x.example", CipherSuite::RSA3k);
    let keyring = Keyring::new(Some(coordinator.clone()), vec![p.clone()]);
    // Sign with the RSA *encryption* subkey: mathematically possible, not allowed.
    let pol = StandardPolicy::new();
    let enc_pair = p
        .with_policy(&pol, None)
        .unwrap()
        .keys()
        .secret()
        .for_transport_encryption()
        .next()
        .unwrap()
        .key()
        .clone()
        .into_keypair()
        .unwrap();
    let armored = encrypt_sign(&coordinator, Some(enc_pair), INNER);
    let o = open(&pgp_mime(&armored), &keyring).unwrap();
    match &o.signature {
        SignatureFacts::Bad { reason } => assert!(reason.contains("signing"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn alternatives_signed_by_different_certs_are_partial() {
    let a = participant("a@x.example", CipherSuite::Cv25519);
    let b = participant("b@x.example", CipherSuite::Cv25519);
    let keyring = Keyring::new(None, vec![a.clone(), b.clone()]);
    let clearsign = |cert: &openpgp::Cert, text: &str| {
        let mut sink = Vec::new();
        let m = Out::new(&mut sink);
        let mut s = Signer::new(m, signing_pair(cert))
            .unwrap()
            .cleartext()
            .build()
            .unwrap();
        s.write_all(text.as_bytes()).unwrap();
        s.finalize().unwrap();
        String::from_utf8(sink).unwrap().replace('\n', "\r\n")
    };
    let alt = |x: &str, y: &str| {
        format!(
            "From: a@x.example\r\nContent-Type: multipart/alternative; boundary=\"a\"\r\n\r\n\
             --a\r\nContent-Type: text/plain\r\n\r\n{x}\r\n--a\r\nContent-Type: text/plain\r\n\r\n{y}\r\n--a--\r\n"
        )
        .into_bytes()
    };
    let o = open(
        &alt(&clearsign(&a, "one\n"), &clearsign(&b, "two\n")),
        &keyring,
    )
    .unwrap();
    assert!(
        matches!(o.signature, SignatureFacts::Partial { .. }),
        "{:?}",
        o.signature
    );
    // Same cert on every alternative: the reader sees a signed text whichever it shows.
    let o = open(
        &alt(&clearsign(&a, "one\n"), &clearsign(&a, "one, formatted\n")),
        &keyring,
    )
    .unwrap();
    assert!(
        matches!(o.signature, SignatureFacts::Valid { .. }),
        "{:?}",
        o.signature
    );
    // One signed alternative and one unsigned: partial.
    let o = open(&alt(&clearsign(&a, "one\n"), "attacker text"), &keyring).unwrap();
    assert!(
        matches!(o.signature, SignatureFacts::Partial { .. }),
        "{:?}",
        o.signature
    );
}

#[test]
fn limits() {
    let keyring = Keyring::new(None, vec![]);
    assert!(matches!(
        open(&vec![b'a'; MAX_RAW + 1], &keyring),
        Err(OpenError::TooLarge)
    ));
    // Deep nesting of multiparts stops with an error, not a stack overflow; a depth within
    // the limit opens.
    let nested = |levels: usize| {
        let mut m = String::from("Content-Type: text/plain\r\n\r\nx");
        for i in 0..levels {
            m = format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n{m}\r\n--b{i}--\r\n"
            );
        }
        m
    };
    match open(nested(200).as_bytes(), &keyring) {
        Err(OpenError::Limit(m)) => assert!(m.contains("limits.max_nesting_depth"), "{m}"),
        other => panic!("{other:?}"),
    }
    let max = crate::limits::Limits::default().max_nesting_depth;
    assert!(open(nested(max - 2).as_bytes(), &keyring).is_ok());
}

#[test]
fn error_texts_are_one_line() {
    for e in [
        OpenError::NotForUs {
            recipients: vec!["AAAA".into(), "BBBB".into()],
        },
        OpenError::NotForUs { recipients: vec![] },
        OpenError::NoSecretKey,
        OpenError::Integrity("x".into()),
        OpenError::Malformed("y".into()),
        OpenError::Unsupported("z".into()),
        OpenError::TooLarge,
    ] {
        let t = e.to_string();
        assert!(!t.contains('\n') && !t.is_empty(), "{t}");
    }
}

#[test]
fn big_plain_attachment_is_opened_without_fuss() {
    use base64::Engine;
    let data = vec![0x5au8; 40 << 20];
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    let raw = format!(
        "From: a@x.example\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nbig file\r\n--m\r\n\
         Content-Type: application/octet-stream; name=\"dump.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--m--\r\n"
    );
    let o = open(raw.as_bytes(), &Keyring::new(None, vec![])).unwrap();
    assert_eq!(o.encryption, Encryption::None);
    assert_eq!(o.signature, SignatureFacts::None);
    assert_eq!(o.inner, None);
}

/// The line-at-a-time canonical form is the byte-at-a-time one of RFC 3156 §5.
#[test]
fn canonical_crlf_adds_cr_before_every_bare_lf_only() {
    fn by_byte(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = 0u8;
        for &b in data {
            if b == b'\n' && prev != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            prev = b;
        }
        out
    }
    for data in [
        &b""[..],
        b"\n",
        b"\r\n",
        b"\n\n\r\n\r\r\n",
        b"no newline",
        b"a\nb\r\nc\n",
        b"\r",
        b"ends in cr\r",
        b"\nstarts with lf",
        "non-ascii \u{e9}\n\u{2014}\r\n".as_bytes(),
    ] {
        assert_eq!(canonical_crlf(data), by_byte(data), "{data:?}");
    }
}

/// A synthesized text entity parses back to exactly the text it was given, whatever its
/// lines, length or characters (it is not re-encoded on the way).
#[test]
fn text_entity_parses_back_to_its_text() {
    let long = "x".repeat(5000);
    for text in [
        "plain\nlines\n".to_string(),
        "crlf\r\nlines\r\n".to_string(),
        format!("a line of 5000: {long}\n"),
        "trailing spaces   \nand = signs =3D\n".to_string(),
        "caf\u{e9} \u{2014} \u{1f600}\n".to_string(),
        "--not-a-boundary\n\nFrom: not a header\n".to_string(),
        String::new(),
    ] {
        let entity = text_entity(text.clone());
        let parsed = mail_parser::MessageParser::default()
            .parse(&entity)
            .expect("parses");
        assert_eq!(
            parsed.body_text(0).as_deref(),
            Some(text.as_str()),
            "{text:?}"
        );
    }
}
