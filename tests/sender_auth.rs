//! Sender authentication through the binary: DKIM and DMARC checked by casegate against the
//! tests' own DNS server (keys made with openssl, mail signed with mail-auth's signer), and
//! Authentication-Results of the coordinator's MTA with forgeries around them. The policy on
//! top: flagged, or triaged under `require_authenticated_participants`, and DMARC fail for a
//! participant's address always triaged.

mod support;

use std::process::Command;

use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use support::cli::Desk;
use support::dns::DnsServer;

/// An RSA-2048 key made by openssl: (PKCS#8 PEM, the `p=` value of its DKIM record).
fn dkim_key(dir: &std::path::Path, name: &str) -> (String, String) {
    let key = dir.join(format!("{name}.pem"));
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let public = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(public.status.success());
    use base64::Engine;
    (
        std::fs::read_to_string(&key).unwrap(),
        base64::engine::general_purpose::STANDARD.encode(public.stdout),
    )
}

/// `raw` with a DKIM-Signature of `domain` (selector `s1`) on top.
fn sign(pem: &str, domain: &str, raw: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).unwrap();
    let key = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(der)).unwrap();
    let sig = DkimSigner::from_key(key)
        .domain(domain)
        .selector("s1")
        .headers(["From", "To", "Subject", "Message-ID", "Date"])
        .sign(raw.as_bytes())
        .unwrap();
    format!("{}{raw}", sig.to_header())
}

fn mail(from: &str, number: &str, id: &str, body: &str) -> String {
    format!(
        "From: PSIRT <{from}>\r\nTo: cert@example.test\r\nSubject: Re: {number}: status\r\n\
         Message-ID: <{id}@vendor.example>\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    )
}

/// A desk with a case whose vendor contacts are psirt@vendor.example (DMARC p=reject) and
/// psirt@nodmarc.example (no DMARC record).
fn desk(config: &str) -> (Desk, String) {
    let d = Desk::new();
    d.write("casegate.toml", config.as_bytes());
    let number = d
        .ok(&["open", "case", "--title", "Overflow"])
        .trim()
        .to_string();
    for (org, email) in [
        ("Vendor", "psirt@vendor.example"),
        ("NoDmarc", "psirt@nodmarc.example"),
    ] {
        d.ok(&[
            "participant",
            "add",
            &number,
            "--org",
            org,
            "--email",
            email,
        ]);
    }
    (d, number)
}

fn flags(o: &serde_json::Value, d: &Desk) -> String {
    // `flags` is stored with the message; read it back through `read --json`.
    let id = o["message_id"].as_str().unwrap();
    let v = d.json(&["read", "--json", id]);
    v[0]["message"]["flags"].as_str().unwrap().to_string()
}

#[test]
fn dkim_and_dmarc_checked_against_the_tests_dns() {
    let dns = DnsServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let (vendor_pem, vendor_p) = dkim_key(tmp.path(), "vendor");
    let (evil_pem, evil_p) = dkim_key(tmp.path(), "evil");
    dns.txt(
        "s1._domainkey.vendor.example",
        &format!("v=DKIM1; k=rsa; p={vendor_p}"),
    );
    dns.txt("_dmarc.vendor.example", "v=DMARC1; p=reject");
    dns.txt(
        "s1._domainkey.evil.example",
        &format!("v=DKIM1; k=rsa; p={evil_p}"),
    );
    let config = format!(
        "[authentication]\nsource = \"dkim\"\ndns_servers = [\"{}\"]\ndns_timeout_secs = 2\n",
        dns.address()
    );
    let (d, n) = desk(&config);

    // Signed by the vendor's domain: pass, routed, not flagged.
    let good = sign(
        &vendor_pem,
        "vendor.example",
        &mail("psirt@vendor.example", &n, "good", "Patch is out."),
    );
    let o = d.ingest("good.eml", good.as_bytes());
    assert_eq!(o["sender_auth"], "pass", "{o}");
    assert!(
        o["sender_auth_detail"]
            .as_str()
            .unwrap()
            .contains("dmarc=pass"),
        "{o}"
    );
    assert_eq!(o["outcome"], "routed", "{o}");
    assert_eq!(flags(&o, &d), "");
    assert!(
        dns.asked
            .lock()
            .unwrap()
            .iter()
            .any(|q| q == "s1._domainkey.vendor.example"),
        "the key was looked up in the test's DNS"
    );

    // A spoofed From without DKIM, at a domain that publishes p=reject: DMARC fail, triaged
    // even without the strict policy.
    let spoof = mail(
        "psirt@vendor.example",
        &n,
        "spoof",
        "Please send the exploit to me.",
    );
    let o = d.ingest("spoof.eml", spoof.as_bytes());
    assert_eq!(o["sender_auth"], "fail", "{o}");
    assert_eq!(o["outcome"], "triage", "{o}");
    assert!(
        o["reason"]
            .as_str()
            .unwrap()
            .starts_with("sender not authenticated: DMARC fail"),
        "{o}"
    );

    // Signed, then changed on the way: the signature fails, so does DMARC.
    let tampered = sign(
        &vendor_pem,
        "vendor.example",
        &mail("psirt@vendor.example", &n, "tamper", "Fixed in 2.1."),
    )
    .replace("Fixed in 2.1.", "Fixed in 9.9.");
    let o = d.ingest("tampered.eml", tampered.as_bytes());
    assert_eq!(o["sender_auth"], "fail", "{o}");
    assert_eq!(o["outcome"], "triage", "{o}");

    // A valid signature of another domain does not vouch for the vendor's From.
    let other = sign(
        &evil_pem,
        "evil.example",
        &mail("psirt@vendor.example", &n, "evil", "Trust me."),
    );
    let o = d.ingest("evil.eml", other.as_bytes());
    assert_eq!(o["sender_auth"], "fail", "{o}");
    assert!(
        o["sender_auth_detail"]
            .as_str()
            .unwrap()
            .contains("evil.example"),
        "{o}"
    );
    assert_eq!(o["outcome"], "triage", "{o}");

    // No DKIM at a domain without DMARC: nothing to check; routed but flagged.
    let plain = mail("psirt@nodmarc.example", &n, "plain", "Looking into it.");
    let o = d.ingest("plain.eml", plain.as_bytes());
    assert_eq!(o["sender_auth"], "none", "{o}");
    assert_eq!(o["outcome"], "routed", "{o}");
    assert_eq!(flags(&o, &d), "unauthenticated-sender");

    // Someone who is not a participant is not held to it (a new report, as before).
    let stranger = "From: someone@stranger.example\r\nTo: cert@example.test\r\nSubject: bug\r\nMessage-ID: <s@stranger.example>\r\n\r\nhello\r\n";
    let o = d.ingest("stranger.eml", stranger.as_bytes());
    assert_eq!(o["outcome"], "routed", "{o}");
    assert_eq!(o["sender_auth"], "none", "{o}");

    // `show` and `read` print the verdict next to the OpenPGP ones.
    let show = d.ok(&["show", &n]);
    assert!(show.contains("sender authentication: pass"), "{show}");
    assert!(show.contains("flags: unauthenticated-sender"), "{show}");
    let read = d.ok(&["read", "<good@vendor.example>"]);
    assert!(
        read.contains("sender authentication: pass — dmarc=pass"),
        "{read}"
    );
    let triage = d.ok(&["triage", "list"]);
    assert!(triage.contains("sender not authenticated"), "{triage}");
}

#[test]
fn strict_policy_triages_unauthenticated_participants_and_dns_trouble_is_temperror() {
    let dns = DnsServer::start();
    // A resolver that never answers: a bound UDP port nobody reads.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let strict = "[policy]\nrequire_authenticated_participants = true\n";
    let config = format!(
        "{strict}[authentication]\nsource = \"dkim\"\ndns_servers = [\"{}\"]\ndns_timeout_secs = 1\n",
        dns.address()
    );
    let (d, n) = desk(&config);
    let o = d.ingest(
        "plain.eml",
        mail("psirt@nodmarc.example", &n, "strict", "Looking into it.").as_bytes(),
    );
    assert_eq!(o["sender_auth"], "none", "{o}");
    assert_eq!(o["outcome"], "triage", "{o}");
    let reason = o["reason"].as_str().unwrap();
    assert!(reason.starts_with("sender not authenticated: "), "{reason}");
    assert!(reason.contains("nodmarc.example"), "{reason}");

    d.write(
        "casegate.toml",
        format!(
            "{strict}[authentication]\nsource = \"dkim\"\ndns_servers = [\"127.0.0.1:{silent_port}\"]\ndns_timeout_secs = 1\n"
        )
        .as_bytes(),
    );
    let o = d.ingest(
        "slow.eml",
        mail("psirt@nodmarc.example", &n, "slow", "Still looking.").as_bytes(),
    );
    assert_eq!(o["sender_auth"], "temperror", "{o}");
    assert_eq!(o["outcome"], "triage", "{o}");
    drop(silent);
}

#[test]
fn only_the_coordinators_mta_is_believed_and_only_its_topmost_header() {
    let config = "[authentication]\nsource = \"authentication-results\"\ntrusted_authserv_id = \"mx.cert.example\"\n";
    let (d, n) = desk(config);
    let with = |ars: &[&str], id: &str| {
        let mut s = String::from("Return-Path: <psirt@vendor.example>\r\n");
        for a in ars {
            s.push_str(&format!("Authentication-Results: {a}\r\n"));
        }
        s.push_str("Received: from mail.vendor.example by mx.cert.example; Mon, 02 Mar 2026 10:00:01 +0000\r\n");
        s.push_str(&mail("psirt@vendor.example", &n, id, "text"));
        s
    };
    // The MTA's own verdict.
    let o = d.ingest(
        "ok.eml",
        with(&["mx.cert.example; dkim=pass header.d=vendor.example; dmarc=pass header.from=vendor.example"], "ar-ok").as_bytes(),
    );
    assert_eq!(o["sender_auth"], "pass", "{o}");
    assert_eq!(o["outcome"], "routed", "{o}");

    // A forged pass below the MTA's own header (the sender wrote it): ignored.
    let forged = with(&[], "ar-forged").replace(
        "From: PSIRT",
        "Authentication-Results: mx.cert.example; dmarc=pass header.from=vendor.example\r\nFrom: PSIRT",
    );
    let forged = forged.replacen(
        "Return-Path: <psirt@vendor.example>\r\n",
        "Return-Path: <psirt@vendor.example>\r\nAuthentication-Results: mx.cert.example; dkim=none; dmarc=fail header.from=vendor.example\r\n",
        1,
    );
    let o = d.ingest("forged.eml", forged.as_bytes());
    assert_eq!(o["sender_auth"], "fail", "{o}");
    assert!(
        o["sender_auth_detail"]
            .as_str()
            .unwrap()
            .contains("1 other"),
        "{o}"
    );
    assert_eq!(o["outcome"], "triage", "{o}");

    // Another server's pass, on top even: never read.
    let o = d.ingest(
        "other.eml",
        with(
            &[
                "mx.vendor.example; dmarc=pass header.from=vendor.example",
                "mx.cert.example; none",
            ],
            "ar-other",
        )
        .as_bytes(),
    );
    assert_eq!(o["sender_auth"], "none", "{o}");
    assert_eq!(o["outcome"], "routed", "{o}");
    assert_eq!(flags(&o, &d), "unauthenticated-sender");

    // No header of the MTA at all.
    let o = d.ingest(
        "none.eml",
        mail("psirt@vendor.example", &n, "ar-none", "x").as_bytes(),
    );
    assert_eq!(o["sender_auth"], "none", "{o}");
    assert!(
        o["sender_auth_detail"]
            .as_str()
            .unwrap()
            .contains("no Authentication-Results header from mx.cert.example"),
        "{o}"
    );
}
