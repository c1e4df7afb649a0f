//! Hostile messages, one per class of trouble a sender can cause (issue 12), each with what
//! casegate must make of it. Built fresh by code: a class is covered by its shape, not by one
//! stored example. Used by `tests/hostile_serve.rs` (Maildir and IMAP under `serve`).
#![allow(dead_code)]

use std::fmt::Write as _;

/// What must become of a message.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Quarantined, the reason containing this text.
    Quarantine(&'static str),
    /// Stored as mail (routed or triage): hostile in shape, but within every limit.
    Stored,
}

pub struct Case {
    pub name: &'static str,
    pub raw: Vec<u8>,
    pub expect: Expect,
}

fn head(name: &str) -> String {
    format!(
        "From: Mallory <mallory@evil.example>\r\nTo: cert@example.test\r\n\
Subject: {name}\r\nMessage-ID: <{name}@evil.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
    )
}

/// A good report, to be stored whatever came before it.
pub fn good(i: usize) -> Vec<u8> {
    format!(
        "From: Reporter {i} <reporter{i}@example.net>\r\nTo: cert@example.test\r\n\
Subject: Vulnerability report {i}\r\nMessage-ID: <good-{i}@example.net>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nDetails of issue {i}.\r\n"
    )
    .into_bytes()
}

/// `n` attached messages, each inside the one before.
pub fn deep_rfc822(n: usize) -> Vec<u8> {
    let mut m = head("deep-rfc822");
    for _ in 0..n {
        m.push_str("Content-Type: message/rfc822\r\n\r\nFrom: a@b.example\r\n");
    }
    m.push_str("\r\ninnermost\r\n");
    m.into_bytes()
}

/// `n` multiparts, each the first part of the one before.
pub fn deep_multipart(n: usize) -> Vec<u8> {
    let mut m = head("deep-multipart");
    for i in 0..n {
        let _ = write!(
            m,
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        );
    }
    m.push_str("\r\ninnermost\r\n");
    m.into_bytes()
}

/// Attached messages and multiparts alternating, `n` levels.
pub fn deep_mixed(n: usize) -> Vec<u8> {
    let mut open = head("deep-mixed");
    let mut close = String::new();
    for i in 0..n {
        if i % 2 == 0 {
            let _ = write!(
                open,
                "Content-Type: multipart/mixed; boundary=\"m{i}\"\r\n\r\n--m{i}\r\n"
            );
            close = format!("\r\n--m{i}--\r\n{close}");
        } else {
            open.push_str("Content-Type: message/rfc822\r\n\r\nFrom: a@b.example\r\n");
        }
    }
    format!("{open}Content-Type: text/plain\r\n\r\ninnermost{close}").into_bytes()
}

/// Attached messages, each base64-encoded inside the one before, `n` levels (mail-parser
/// decodes three and keeps the rest as an opaque attachment).
pub fn deep_encoded(n: usize) -> Vec<u8> {
    use base64::Engine;
    let mut inner = "From: a@b.example\r\n\r\ninnermost\r\n".to_string();
    for _ in 0..n {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&inner);
        let mut wrapped = String::new();
        for chunk in b64.as_bytes().chunks(76) {
            wrapped.push_str(std::str::from_utf8(chunk).unwrap());
            wrapped.push_str("\r\n");
        }
        inner = format!(
            "From: a@b.example\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{wrapped}"
        );
    }
    format!(
        "{}{}",
        head("deep-encoded"),
        inner.split_once("\r\n").unwrap().1
    )
    .into_bytes()
}

/// `n` header fields.
pub fn many_headers(n: usize) -> Vec<u8> {
    let mut m = head("many-headers");
    for i in 0..n {
        let _ = write!(m, "X-H{}: v\r\n", i % 10);
    }
    m.push_str("\r\nbody\r\n");
    m.into_bytes()
}

/// `n` small attachments whose names end in `ext` (`*.sig` made pairing quadratic).
pub fn many_parts(n: usize, ext: &str) -> Vec<u8> {
    let mut m = head("many-parts");
    m.push_str("Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n--p\r\n\r\nsee attached\r\n");
    for i in 0..n {
        let _ = write!(
            m,
            "--p\r\nContent-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"f{i}{ext}\"\r\n\r\nx\r\n"
        );
    }
    m.push_str("--p--\r\n");
    m.into_bytes()
}

/// `n` parts that each claim to be a multipart whose boundary never occurs (their preamble
/// scan went to the end of the message: quadratic).
pub fn unterminated_multiparts(n: usize) -> Vec<u8> {
    let mut m = head("unterminated-multiparts");
    m.push_str("Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n");
    for i in 0..n {
        let _ = write!(
            m,
            "--o\r\nContent-Type: multipart/mixed; boundary=\"never{i}\"\r\n\r\ntext {i}\r\n"
        );
    }
    m.push_str("--o--\r\n");
    m.into_bytes()
}

/// Header names with non-ASCII bytes, at the top and in an attached message whose body is
/// rebuilt by `open` (a clear-signed text), which used to slice such a name by byte index.
pub fn non_ascii_header_names(clearsigned: &str) -> Vec<u8> {
    let mut m = head("non-ascii-header-names");
    m.push_str("Ünïcødé-Fïeld: x\r\nX-Ab\u{e9}c\u{e9}d: y\r\nConten\u{e9}-Type: z\r\n");
    m.push_str("Content-Type: multipart/mixed; boundary=\"n\"\r\n\r\n--n\r\n\r\nFYI\r\n--n\r\n");
    m.push_str("Content-Type: message/rfc822\r\n\r\n");
    // Byte 8 of each name falls inside a two-byte character.
    m.push_str(
        "From: v@vendor.example\r\nSubject: fwd\r\nAbcdefg\u{e9}: 1\r\nX-Zzzzz\u{e9}\u{e9}: 2\r\n",
    );
    m.push_str("Content\u{e9}-Type: 3\r\n\r\n");
    m.push_str(clearsigned);
    m.push_str("\r\n--n--\r\n");
    m.into_bytes()
}

/// The same part described by two Content-Type fields: readers disagree on which counts.
pub fn ambiguous_content_type() -> Vec<u8> {
    let mut m = head("ambiguous");
    m.push_str(
        "Content-Type: text/plain\r\nContent-Type: multipart/signed; boundary=\"s\"; \
protocol=\"application/pgp-signature\"\r\n\r\n--s\r\n\r\nhello\r\n--s--\r\n",
    );
    m.into_bytes()
}

/// Bytes that are not mail.
pub fn garbage(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// HTML that is one long run of `<` and `&` (the tag and entity searches were quadratic).
pub fn html_brackets(n: usize) -> Vec<u8> {
    let mut m = head("html-brackets");
    m.push_str("Content-Type: text/html; charset=utf-8\r\n\r\n<p>");
    for _ in 0..n {
        m.push_str("<&");
    }
    m.push_str("\r\n");
    m.into_bytes()
}

/// A long subject of glued number-like tokens (each candidate scanned the whole run).
pub fn long_subject(n: usize) -> Vec<u8> {
    let mut m =
        String::from("From: Mallory <mallory@evil.example>\r\nTo: cert@example.test\r\nSubject: ");
    for i in 0..n {
        let _ = write!(m, "VU#{:06}-", 100000 + i % 899999);
    }
    m.push_str("\r\nMessage-ID: <long-subject@evil.example>\r\n\r\nbody\r\n");
    m.into_bytes()
}

/// A text bounce listing `n` recipients (each recipient scanned the rest of the report).
pub fn bounce_recipients(n: usize) -> Vec<u8> {
    let mut m = String::from(
        "From: MAILER-DAEMON@mx.evil.example\r\nTo: cert@example.test\r\nSubject: failure notice\r\n\
Message-ID: <bounce@mx.evil.example>\r\n\r\nHi. This is the qmail-send program at mx.evil.example.\r\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n",
    );
    for i in 0..n {
        let _ = write!(m, "<u{i}@evil.example>:\r\n");
    }
    m.push_str("\r\n--- Below this line is a copy of the message.\r\n\r\nMessage-ID: <x@y>\r\n");
    m.into_bytes()
}

/// A message of `size` bytes (a base64 attachment).
pub fn sized(size: usize) -> Vec<u8> {
    let mut m = head("oversized");
    m.push_str(
        "Content-Type: multipart/mixed; boundary=\"z\"\r\n\r\n--z\r\n\r\nbig\r\n--z\r\n\
Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    while m.len() < size {
        m.push_str(line);
    }
    m.push_str("--z--\r\n");
    m.into_bytes()
}

/// Every class, with a clear-signed text for [`non_ascii_header_names`], for a store whose
/// `max_message_bytes` is `max_message_bytes` (at least 8 MiB: the deep ones are ~6 MB).
pub fn all(clearsigned: &str, max_message_bytes: usize) -> Vec<Case> {
    use Expect::*;
    vec![
        Case {
            name: "deep-rfc822",
            raw: deep_rfc822(120_000),
            expect: Quarantine("limits.max_nesting_depth"),
        },
        Case {
            name: "deep-multipart",
            raw: deep_multipart(100_000),
            expect: Quarantine("limits.max_nesting_depth"),
        },
        Case {
            name: "deep-mixed",
            raw: deep_mixed(60),
            expect: Quarantine("limits.max_nesting_depth"),
        },
        Case {
            name: "deep-encoded",
            raw: deep_encoded(12),
            expect: Stored,
        },
        Case {
            name: "many-headers",
            raw: many_headers(700_000),
            expect: Quarantine("limits.max_headers"),
        },
        Case {
            name: "too-many-parts",
            raw: many_parts(20_000, ".sig"),
            expect: Quarantine("limits.max_parts"),
        },
        Case {
            name: "many-sig-parts",
            raw: many_parts(9_000, ".sig"),
            expect: Stored,
        },
        Case {
            name: "unterminated-multiparts",
            raw: unterminated_multiparts(9_000),
            expect: Stored,
        },
        Case {
            name: "non-ascii-header-names",
            raw: non_ascii_header_names(clearsigned),
            expect: Stored,
        },
        Case {
            name: "ambiguous",
            raw: ambiguous_content_type(),
            expect: Quarantine("ambiguous MIME structure"),
        },
        Case {
            name: "garbage",
            raw: garbage(100_000),
            expect: Quarantine("cannot parse"),
        },
        Case {
            name: "html-brackets",
            raw: html_brackets(1_000_000),
            expect: Stored,
        },
        Case {
            name: "long-subject",
            raw: long_subject(100_000),
            expect: Stored,
        },
        Case {
            name: "bounce-recipients",
            raw: bounce_recipients(50_000),
            expect: Stored,
        },
        Case {
            name: "oversized",
            raw: sized(max_message_bytes + 100_000),
            expect: Quarantine("policy.max_message_bytes"),
        },
    ]
}

/// A clear-signed text made by a key nobody knows (sequoia), for the attached message in
/// [`non_ascii_header_names`].
pub fn clearsigned_text() -> String {
    use openpgp::cert::prelude::*;
    use openpgp::policy::StandardPolicy;
    use openpgp::serialize::stream::{Message, Signer};
    use sequoia_openpgp as openpgp;
    use std::io::Write;
    let (cert, _) = CertBuilder::new()
        .add_userid("Someone <someone@elsewhere.example>")
        .add_signing_subkey()
        .generate()
        .unwrap();
    let p = StandardPolicy::new();
    let key = cert
        .with_policy(&p, None)
        .unwrap()
        .keys()
        .secret()
        .for_signing()
        .next()
        .unwrap()
        .key()
        .clone()
        .into_keypair()
        .unwrap();
    let mut out = Vec::new();
    let m = Message::new(&mut out);
    let mut w = Signer::new(m, key).unwrap().cleartext().build().unwrap();
    w.write_all(b"The vendor's statement.\r\n").unwrap();
    w.finalize().unwrap();
    String::from_utf8(out).unwrap()
}

/// OpenPGP containers nested in each other, for the coordinator's `cert`: `layers` PGP/MIME
/// encryptions, each around the one before, and one encrypted message whose literal data sits
/// in `depth` compressed data packets inside each other. `binary`: the ciphertext is sent as
/// is (each layer adds only a few hundred bytes; for a Maildir), else base64 (each layer
/// grows it by a third; what survives IMAP, whose servers turn bare LF into CRLF).
pub fn openpgp_nested(cert_armored: &[u8], layers: usize, depth: usize, binary: bool) -> Vec<Case> {
    use openpgp::parse::Parse;
    use openpgp::policy::StandardPolicy;
    use openpgp::serialize::stream::{Compressor, Encryptor, LiteralWriter, Message};
    use sequoia_openpgp as openpgp;
    use std::io::Write;
    let cert = openpgp::Cert::from_bytes(cert_armored).unwrap();
    let p = StandardPolicy::new();
    let encrypt = |data: &[u8], compressions: usize| -> Vec<u8> {
        let recipients = cert
            .with_policy(&p, None)
            .unwrap()
            .keys()
            .supported()
            .alive()
            .revoked(false)
            .for_transport_encryption();
        let mut out = Vec::new();
        let m = Message::new(&mut out);
        let mut m = Encryptor::for_recipients(m, recipients).build().unwrap();
        for _ in 0..compressions {
            m = Compressor::new(m).build().unwrap();
        }
        let mut w = LiteralWriter::new(m).build().unwrap();
        w.write_all(data).unwrap();
        w.finalize().unwrap();
        out
    };
    let wrap = |i: usize, ciphertext: &[u8]| -> Vec<u8> {
        let b = format!("pgp-layer-{i}-9f8e7d6c5b4a39281706");
        let cte = if binary { "binary" } else { "base64" };
        let mut e = format!(
            "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"{b}\"\r\n\r\n\
--{b}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
--{b}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
        )
        .into_bytes();
        if binary {
            e.extend_from_slice(ciphertext);
        } else {
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD.encode(ciphertext);
            for chunk in b64.as_bytes().chunks(76) {
                e.extend_from_slice(chunk);
                e.extend_from_slice(b"\r\n");
            }
        }
        e.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        e
    };
    let mut entity = b"Content-Type: text/plain\r\n\r\nthe innermost secret\r\n".to_vec();
    for i in 0..layers {
        entity = wrap(i, &encrypt(&entity, 0));
    }
    let mut layered = head("openpgp-layers").into_bytes();
    layered.extend_from_slice(&entity);
    let mut compressed = head("openpgp-compressed").into_bytes();
    compressed.extend_from_slice(&wrap(
        0,
        &encrypt(b"Content-Type: text/plain\r\n\r\nsecret\r\n", depth),
    ));
    vec![
        Case {
            name: "openpgp-layers",
            raw: layered,
            expect: Expect::Quarantine("limits.max_nesting_depth"),
        },
        Case {
            name: "openpgp-compressed",
            raw: compressed,
            expect: Expect::Quarantine("OpenPGP"),
        },
    ]
}
