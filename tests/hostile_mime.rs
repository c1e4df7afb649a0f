//! MIME structure as RFC 2046 defines it, on messages made with real gpg: a boundary delimiter
//! is a whole line (`--boundary`, optional `--`, optional spaces), never text in the middle of
//! one, never a prefix of a longer line; and a delimiter of an enclosing multipart ends a nested
//! one (issue 12, item 2; upstream mail-parser issue 156, fixed in vendor/mail-parser). Where
//! casegate and gpg or a mail client could disagree about structure, casegate reads it as the
//! RFC says.

#[path = "support_gpg/mod.rs"]
mod support_gpg;

use casegate::open::{Encryption, Opened, SignatureFacts, open};
use support_gpg::*;

fn headers(subject: &str) -> String {
    format!(
        "From: Sender <{VENDOR}>\r\nTo: CERT <{COORDINATOR}>\r\nSubject: {subject}\r\n\
         Message-ID: <{}@test.example>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n",
        subject.len()
    )
}

/// MIME wants CRLF; gpg writes LF.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn s(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

fn opened(raw: &[u8]) -> Opened {
    match open(raw, &fixture().keyring) {
        Ok(o) => o,
        Err(e) => panic!(
            "open failed: {e}\n--- message ---\n{}",
            String::from_utf8_lossy(raw)
        ),
    }
}

fn valid_by(o: &Opened, fpr: &str) {
    match &o.signature {
        SignatureFacts::Valid { cert, .. } => assert_eq!(cert, fpr, "{o:?}"),
        other => panic!("expected a valid signature by {fpr}, got {other:?}"),
    }
}

/// A detached signature by `signer` over `data`, which gpg itself verifies.
fn detach_sign_checked(signer: &str, data: &[u8]) -> Vec<u8> {
    let f = fixture();
    let sig = f.gpg.run(
        &[
            "--armor",
            "--detach-sign",
            "-u",
            signer,
            "--digest-algo",
            "SHA256",
        ],
        Some(data),
    );
    let dir = tempfile::tempdir().unwrap();
    let (d, g) = (dir.path().join("data"), dir.path().join("data.asc"));
    std::fs::write(&d, data).unwrap();
    std::fs::write(&g, &sig).unwrap();
    f.gpg.run(
        &["--verify", g.to_str().unwrap(), d.to_str().unwrap()],
        None,
    );
    sig
}

/// PGP/MIME (RFC 3156) around gpg's armor, with `boundary`.
fn pgp_mime(boundary: &str, armored: &[u8]) -> Vec<u8> {
    format!(
        "{}Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\r\n boundary=\"{boundary}\"\r\n\r\n\
         This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n\
         --{boundary}\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --{boundary}\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n{}\r\n--{boundary}--\r\n",
        headers("encrypted"),
        crlf(&s(armored)).trim_end()
    )
    .into_bytes()
}

/// gpg's armor has `-----BEGIN PGP MESSAGE-----` and `-----END PGP MESSAGE-----`: a boundary
/// such as `E` occurs in it (`--E` in `-----END`), in the middle of a line. Quarantined as
/// "corrupt armor" before; decrypted and verified now.
#[test]
fn pgp_mime_whose_boundary_occurs_inside_the_armor_is_decrypted() {
    let f = fixture();
    let inner = "Content-Type: text/plain; charset=utf-8\r\n\r\nThe patch is ready.\r\n";
    let armored = f.gpg.run(
        &[
            "--armor",
            "--encrypt",
            "-r",
            COORDINATOR,
            "--sign",
            "-u",
            &f.vendor,
        ],
        Some(inner.as_bytes()),
    );
    for boundary in [
        "E", "B", "-", "---", "END", "PGP", "MESSAGE-", "M", "N", "=", "S",
    ] {
        let o = opened(&pgp_mime(boundary, &armored));
        assert!(
            matches!(o.encryption, Encryption::Full { .. }),
            "boundary {boundary:?}: {:?}",
            o.encryption
        );
        valid_by(&o, &f.vendor);
        let text = String::from_utf8_lossy(o.inner.as_deref().unwrap()).into_owned();
        assert!(text.contains("The patch is ready."), "{boundary:?}: {text}");
    }
}

/// multipart/signed around `part` (verbatim) with `boundary`, signed by `signer` with gpg.
fn signed(boundary: &str, part: &str, signer: &str) -> Vec<u8> {
    let sig = detach_sign_checked(signer, part.as_bytes());
    format!(
        "{}Content-Type: multipart/signed; micalg=pgp-sha256;\r\n protocol=\"application/pgp-signature\"; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\n{part}\r\n--{boundary}\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n{}\r\n--{boundary}--\r\n",
        headers("signed"),
        crlf(&s(&sig)).trim_end()
    )
    .into_bytes()
}

/// Signed text holding `--BOUNDARY` in the middle of lines, and lines that start with the
/// boundary but go on: gpg verifies the part, and so does casegate (it was `bad`: the part was
/// cut at the first `--BOUNDARY`).
#[test]
fn multipart_signed_with_the_boundary_inside_lines_verifies() {
    let f = fixture();
    for (boundary, body) in [
        (
            "SIGB",
            "See --SIGB for the details, and x--SIGB-- too.\r\n--SIGBX starts like it.\r\n--SIGB- as well.\r\nEnd.\r\n",
        ),
        (
            "=_b",
            "A quoted-printable soft break=\r\n --=_b and a=3D--=_b\r\n",
        ),
        (
            "a",
            "--ab\r\n--a b\r\n-- a\r\nsignature separator follows\r\n-- \r\nme\r\n",
        ),
    ] {
        let cte = if boundary == "=_b" {
            "quoted-printable"
        } else {
            "7bit"
        };
        let part = format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}"
        );
        let o = opened(&signed(boundary, &part, &f.reporter));
        valid_by(&o, &f.reporter);
    }
}

/// A nested multipart inside the signed part whose boundary has the outer one as a prefix
/// (`S` / `S-inner`), with an attachment: verifies.
#[test]
fn a_nested_boundary_with_the_outer_one_as_prefix_is_not_the_outer_one() {
    let f = fixture();
    let part = "Content-Type: multipart/mixed; boundary=\"S-inner\"\r\n\r\n--S-inner\r\n\
Content-Type: text/plain\r\n\r\nStatement.\r\n--S-inner\r\nContent-Type: application/octet-stream; name=\"p.bin\"\r\n\
Content-Disposition: attachment; filename=\"p.bin\"\r\n\r\nbinary --S here\r\n--S-inner--\r\n";
    let o = opened(&signed("S", part, &f.vendor));
    valid_by(&o, &f.vendor);
}

/// RFC 2046: a delimiter of an enclosing multipart cannot occur inside an encapsulated part,
/// so it ends a nested multipart that never closed. Thunderbird reads it so (the signed part
/// ends there, the signature part follows), and gpg verifies that part; casegate used to let
/// the nested multipart swallow the signature part and call the signature bad.
#[test]
fn an_unclosed_nested_multipart_ends_at_the_enclosing_delimiter() {
    let f = fixture();
    let part = "Content-Type: multipart/mixed; boundary=\"inner\"\r\n\r\n--inner\r\n\
Content-Type: text/plain\r\n\r\nStatement without a close delimiter.\r\n--inner\r\n\
Content-Type: text/plain\r\n\r\nSecond part.";
    let o = opened(&signed("outer", part, &f.vendor));
    valid_by(&o, &f.vendor);
}

/// The other side of the rule: a line that *is* a delimiter splits the signed text, as it
/// would for any MIME reader; what gpg signed is then not one part, and casegate never calls
/// the message signed.
#[test]
fn a_delimiter_line_inside_signed_text_is_a_delimiter() {
    let f = fixture();
    let part = "Content-Type: text/plain\r\n\r\nFirst.\r\n--cut\r\nContent-Type: text/plain\r\n\r\nSmuggled.\r\n";
    let o = opened(&signed("cut", part, &f.vendor));
    assert!(
        !matches!(o.signature, SignatureFacts::Valid { .. }),
        "{:?}",
        o.signature
    );
}

/// An attached message is read in place (no re-parse per level, which cost depth × size):
/// its parts' offsets index the outer message, or the decoded bytes of a base64-encoded one.
/// A signature inside is verified either way — and, being inside a forward, covers only it.
#[test]
fn signatures_inside_attached_messages_are_read_in_place_plain_or_base64() {
    use base64::Engine;
    let f = fixture();
    let part = "Content-Type: text/plain\r\n\r\nThe vendor's statement.\r\n";
    let signed_msg = signed("fwd-s", part, &f.vendor);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&signed_msg);
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
        .collect();
    for (cte, body) in [
        ("7bit", String::from_utf8(signed_msg.clone()).unwrap()),
        ("base64", wrapped),
    ] {
        let raw = format!(
            "{}Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n\
Content-Type: text/plain\r\n\r\nFYI, forwarded.\r\n--outer\r\nContent-Type: message/rfc822\r\n\
Content-Transfer-Encoding: {cte}\r\n\r\n{body}\r\n--outer--\r\n",
            headers("forwarded")
        );
        let o = opened(raw.as_bytes());
        let SignatureFacts::Partial { reason } = &o.signature else {
            panic!("{cte}: {:?}", o.signature)
        };
        assert!(reason.contains("forwarded"), "{cte}: {reason}");
        assert!(
            reason.contains(&format!("a valid signature by {}", f.vendor)),
            "{cte}: {reason}"
        );
    }
}
