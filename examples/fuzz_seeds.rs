//! Writes seed inputs for the fuzz targets into DIR (`fuzz/seed.sh` runs it): the messages
//! `tests/hostile_cases` builds, at sizes small enough to mutate, and mail signed by the fuzz
//! participant and encrypted to the fuzz coordinator (`fuzz/keys/`), so the fuzzer starts from
//! inputs that reach decryption and signature checks.
//!
//! Run: `cargo run --example fuzz_seeds -- DIR`.

#[path = "../tests/hostile_cases/mod.rs"]
mod hostile_cases;

use std::io::Write;
use std::path::Path;

use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};
use sequoia_openpgp as openpgp;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const COORDINATOR: &[u8] = include_bytes!("../fuzz/keys/coordinator.sec.asc");
const PARTICIPANT: &[u8] = include_bytes!("../fuzz/keys/participant.sec.asc");

/// Armored OpenPGP message of `data`: encrypted to `to` when given, signed by `signer` when
/// given, clear-signed when `clear`.
fn pgp(
    to: Option<&openpgp::Cert>,
    signer: Option<&openpgp::Cert>,
    clear: bool,
    data: &[u8],
) -> Result<Vec<u8>> {
    let p = StandardPolicy::new();
    let mut sink = Vec::new();
    let m = Message::new(&mut sink);
    let keypair = match signer {
        Some(c) => Some(
            c.with_policy(&p, None)?
                .keys()
                .secret()
                .for_signing()
                .next()
                .ok_or("no signing key")?
                .key()
                .clone()
                .into_keypair()?,
        ),
        None => None,
    };
    if clear {
        let mut w = Signer::new(m, keypair.ok_or("clear-signing needs a signer")?)?
            .cleartext()
            .build()?;
        w.write_all(data)?;
        w.finalize()?;
        return Ok(sink);
    }
    let mut m = Armorer::new(m).build()?;
    if let Some(to) = to {
        let recipients = to
            .with_policy(&p, None)?
            .keys()
            .supported()
            .alive()
            .revoked(false)
            .for_transport_encryption();
        m = Encryptor::for_recipients(m, recipients).build()?;
    }
    if let Some(k) = keypair {
        m = Signer::new(m, k)?.build()?;
    }
    let mut w = LiteralWriter::new(m).build()?;
    w.write_all(data)?;
    w.finalize()?;
    Ok(sink)
}

/// A detached signature of `data` by `signer`, armored.
fn detached(signer: &openpgp::Cert, data: &[u8]) -> Result<Vec<u8>> {
    let p = StandardPolicy::new();
    let k = signer
        .with_policy(&p, None)?
        .keys()
        .secret()
        .for_signing()
        .next()
        .ok_or("no signing key")?
        .key()
        .clone()
        .into_keypair()?;
    let mut sink = Vec::new();
    let m = Armorer::new(Message::new(&mut sink))
        .kind(openpgp::armor::Kind::Signature)
        .build()?;
    let mut w = Signer::new(m, k)?.detached().build()?;
    w.write_all(data)?;
    w.finalize()?;
    Ok(sink)
}

const HEAD: &str = "From: Vendor PSIRT <psirt@vendor.example>\r\nTo: cert@example.test\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n";

fn crlf(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n")
}

fn pgp_mime(subject: &str, id: &str, armored: &[u8]) -> Vec<u8> {
    format!(
        "{HEAD}Subject: {subject}\r\nMessage-ID: <{id}@vendor.example>\r\n\
Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
--b\r\nContent-Type: application/octet-stream\r\n\r\n{}\r\n--b--\r\n",
        crlf(armored)
    )
    .into_bytes()
}

fn main() -> Result<()> {
    let dir = std::env::args().nth(1).ok_or("usage: fuzz_seeds DIR")?;
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let coordinator = openpgp::Cert::from_bytes(COORDINATOR)?;
    let participant = openpgp::Cert::from_bytes(PARTICIPANT)?;
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();

    // The hostile classes, small: the shape matters to the fuzzer, not the size.
    let clearsigned = hostile_cases::clearsigned_text();
    for (name, raw) in [
        ("good", hostile_cases::good(1)),
        ("deep-rfc822", hostile_cases::deep_rfc822(40)),
        ("deep-multipart", hostile_cases::deep_multipart(40)),
        ("deep-mixed", hostile_cases::deep_mixed(8)),
        ("deep-encoded", hostile_cases::deep_encoded(3)),
        ("many-headers", hostile_cases::many_headers(100)),
        ("many-sig-parts", hostile_cases::many_parts(20, ".sig")),
        ("many-bin-parts", hostile_cases::many_parts(20, ".bin")),
        ("unterminated", hostile_cases::unterminated_multiparts(10)),
        (
            "non-ascii-headers",
            hostile_cases::non_ascii_header_names(&clearsigned),
        ),
        ("ambiguous", hostile_cases::ambiguous_content_type()),
        ("garbage", hostile_cases::garbage(500)),
        ("html-brackets", hostile_cases::html_brackets(500)),
        ("long-subject", hostile_cases::long_subject(200)),
        ("bounce-recipients", hostile_cases::bounce_recipients(10)),
    ] {
        out.push((format!("hostile-{name}.eml"), raw));
    }
    let cert_armored = {
        use openpgp::serialize::SerializeInto;
        coordinator.armored().to_vec()?
    };
    for binary in [false, true] {
        for c in hostile_cases::openpgp_nested(&cert_armored, 3, 3, binary) {
            out.push((format!("hostile-{}-{binary}.eml", c.name), c.raw));
        }
    }

    // Mail from the participant of VU#409117, in each OpenPGP shape casegate opens.
    let inner =
        b"Subject: [VU#409117] statement\r\nContent-Type: text/plain\r\n\r\nWe fixed it.\r\n";
    out.push((
        "pgp-mime-signed-encrypted.eml".into(),
        pgp_mime(
            "...",
            "se",
            &pgp(Some(&coordinator), Some(&participant), false, inner)?,
        ),
    ));
    out.push((
        "pgp-mime-encrypted.eml".into(),
        pgp_mime(
            "VU#409117",
            "e",
            &pgp(Some(&coordinator), None, false, inner)?,
        ),
    ));
    let body = b"We fixed it.\r\n";
    out.push((
        "inline-clearsigned.eml".into(),
        format!(
            "{HEAD}Subject: Re: VU#409117 statement\r\nMessage-ID: <cs@vendor.example>\r\n\
Content-Type: text/plain\r\n\r\n{}",
            crlf(&pgp(None, Some(&participant), true, body)?)
        )
        .into_bytes(),
    ));
    out.push((
        "inline-encrypted.eml".into(),
        format!(
            "{HEAD}Subject: Re: VU#409117\r\nMessage-ID: <ie@vendor.example>\r\n\
Content-Type: text/plain\r\n\r\n{}",
            crlf(&pgp(Some(&coordinator), Some(&participant), false, body)?)
        )
        .into_bytes(),
    ));
    let signed_part = b"Content-Type: text/plain; charset=utf-8\r\n\r\nWe fixed it.\r\n";
    out.push((
        "pgp-mime-signed.eml".into(),
        format!(
            "{HEAD}Subject: [VU#409117] signed\r\nMessage-ID: <ms@vendor.example>\r\n\
Content-Type: multipart/signed; micalg=pgp-sha512; protocol=\"application/pgp-signature\"; boundary=\"s\"\r\n\r\n\
--s\r\n{}\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\n{}\r\n--s--\r\n",
            String::from_utf8_lossy(signed_part).trim_end_matches("\r\n"),
            crlf(&detached(&participant, &signed_part[..signed_part.len() - 2])?)
        )
        .into_bytes(),
    ));

    for (name, raw) in &out {
        std::fs::write(dir.join(name), raw)?;
    }
    eprintln!("fuzz_seeds: {} messages in {}", out.len(), dir.display());
    Ok(())
}
