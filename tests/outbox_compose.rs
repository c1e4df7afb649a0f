//! compose against real gpg: what we seal, gpg decrypts; the coordinator signature verifies;
//! exactly one recipient is named; unusable keys fail closed.

mod outbox_gpg;

use std::time::{Duration, SystemTime};

use casegate::header::{AddrSpec, MessageId};
use casegate::outbox::compose::{ComposeError, Notice, seal_for, sign_notice, stub_for};
use outbox_gpg::{GpgHome, coordinator_cert, first_part_and_signature, pgp_block};
use sequoia_openpgp::parse::Parse;

const FROM: &str = "cert@example.test";

fn addr(s: &str) -> AddrSpec {
    AddrSpec::parse(s).unwrap()
}

fn parent() -> &'static MessageId {
    static PARENT: std::sync::OnceLock<MessageId> = std::sync::OnceLock::new();
    PARENT.get_or_init(|| MessageId::parse("<parent-1@vendor.example>").unwrap())
}

fn notice(body: &str) -> Notice<'_> {
    Notice {
        thread: "VU#409117",
        subject: "Buffer overflow in FooRouter",
        body,
        in_reply_to: Some(parent()),
        automatic: false,
    }
}

#[test]
fn gpg_decrypts_and_verifies_each_copy_and_only_one_recipient_is_named() {
    let coordinator = coordinator_cert(FROM);
    let alice = GpgHome::new();
    let alice_cert = alice.gen_key("vendor@example.test", "future-default", "encr", "never");
    let bob = GpgHome::new();
    let bob_cert = bob.gen_key("vendor2@example.test", "rsa3072", "encr", "never");
    alice.import_cert(&coordinator);
    bob.import_cert(&coordinator);

    let body = "Dear vendor,\n\nline with trailing space \nünïcödé and = signs\n.\nFrom here on\n";
    // After key generation: a key made after `now` has no binding signature yet.
    let now = SystemTime::now();
    let signed = sign_notice(&notice(body), &coordinator, &addr(FROM), now).unwrap();
    let a = seal_for(&signed, &addr("vendor@example.test"), &alice_cert, now).unwrap();
    let b = seal_for(&signed, &addr("vendor2@example.test"), &bob_cert, now).unwrap();
    assert_ne!(a.message_id, b.message_id);
    assert!(a.message_id.starts_with('<') && a.message_id.ends_with("@example.test>"));
    assert_eq!(a.cert_fingerprint, alice_cert.fingerprint().to_hex());

    for (sealed, home, me, other) in [
        (&a, &alice, "vendor@example.test", "vendor2@example.test"),
        (&b, &bob, "vendor2@example.test", "vendor@example.test"),
    ] {
        let outer = String::from_utf8(sealed.bytes.clone()).unwrap();
        assert!(outer.contains(&format!("To: <{me}>\r\n")), "{outer}");
        assert!(!outer.contains(other));
        for addr in outbox_gpg::addresses(&outer) {
            assert!(
                addr == me
                    || addr == FROM
                    || format!("<{addr}>") == sealed.message_id
                    || addr == "parent-1@vendor.example",
                "unexpected address {addr} in the outer message"
            );
        }
        assert!(outer.contains("Subject: [VU#409117] Encrypted message\r\n"));
        assert!(
            !outer.contains("Buffer overflow"),
            "real subject leaked outside"
        );
        assert!(outer.contains("In-Reply-To: <parent-1@vendor.example>\r\n"));
        assert!(outer.contains(&format!("Message-ID: {}\r\n", sealed.message_id)));
        assert!(outer.contains("multipart/encrypted"));
        assert!(!outer.contains("Auto-Submitted"));

        // One `gpg --decrypt` both decrypts and checks the coordinator's signature (RFC 3156
        // §6.2 combined form): no MIME surgery needed to verify.
        let (inner, status) = home.decrypt(pgp_block(&outer, "MESSAGE").as_bytes());
        assert!(status.contains("DECRYPTION_OKAY"), "{status}");
        assert!(status.contains("GOODSIG"), "{status}");
        assert!(
            status.contains(&format!("VALIDSIG {}", signed.signer_fingerprint)),
            "{status}"
        );
        assert!(
            status.contains(&coordinator.fingerprint().to_hex()),
            "{status}"
        );
        let inner = String::from_utf8(inner).unwrap();
        assert!(
            inner.contains("Subject: [VU#409117] Buffer overflow in FooRouter\r\n"),
            "{inner}"
        );
        assert!(inner.contains("protected-headers=\"v1\""));
        assert!(
            !inner.contains(me) && !inner.contains(other),
            "recipient inside signed part"
        );
        // The body survives: mail-parser decodes the signed entity back to what we wrote.
        let parsed = mail_parser::MessageParser::default()
            .parse(inner.as_bytes())
            .unwrap();
        assert_eq!(parsed.body_text(0).unwrap().replace("\r\n", "\n"), body);
    }
}

#[test]
fn one_signature_serves_every_copy() {
    let coordinator = coordinator_cert(FROM);
    let home = GpgHome::new();
    let cert = home.gen_key("vendor@example.test", "future-default", "encr", "never");
    home.import_cert(&coordinator);
    // After key generation: a key made after `now` has no binding signature yet.
    let now = SystemTime::now();
    let signed = sign_notice(&notice("body\n"), &coordinator, &addr(FROM), now).unwrap();
    let x = seal_for(&signed, &addr("vendor@example.test"), &cert, now).unwrap();
    let y = seal_for(&signed, &addr("vendor@example.test"), &cert, now).unwrap();
    let (tx, ty) = (
        String::from_utf8(x.bytes).unwrap(),
        String::from_utf8(y.bytes).unwrap(),
    );
    // Each copy has its own session key and key packet...
    assert_ne!(pgp_block(&tx, "MESSAGE"), pgp_block(&ty, "MESSAGE"));
    let (ix, sx) = home.decrypt(pgp_block(&tx, "MESSAGE").as_bytes());
    let (iy, sy) = home.decrypt(pgp_block(&ty, "MESSAGE").as_bytes());
    // ...around the same signed bytes and the same signature (gpg's SIG_ID is derived from
    // the signature itself).
    assert_eq!(
        ix, iy,
        "the signed inner must be the same bytes in every copy"
    );
    let sig_id = |status: &str| {
        status
            .lines()
            .find(|l| l.contains("SIG_ID"))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no SIG_ID in {status}"))
    };
    assert_eq!(sig_id(&sx), sig_id(&sy));
}

#[test]
fn automatic_mail_is_marked() {
    let coordinator = coordinator_cert(FROM);
    let home = GpgHome::new();
    let cert = home.gen_key("reporter@example.test", "future-default", "encr", "never");
    let mut n = notice("Thanks, we received your report.\n");
    n.automatic = true;
    n.in_reply_to = None;
    // After key generation: a key made after `now` has no binding signature yet.
    let now = SystemTime::now();
    let signed = sign_notice(&n, &coordinator, &addr(FROM), now).unwrap();
    let sealed = seal_for(&signed, &addr("reporter@example.test"), &cert, now).unwrap();
    let outer = String::from_utf8(sealed.bytes).unwrap();
    assert!(outer.contains("Auto-Submitted: auto-generated\r\n"));
    assert!(!outer.contains("In-Reply-To"));
}

fn assert_no_valid_key(r: Result<casegate::outbox::compose::Sealed, ComposeError>, want: &str) {
    match r {
        Err(ComposeError::NoValidKey(reason)) => assert!(reason.contains(want), "{reason}"),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("sealed for a recipient without a valid key"),
    }
}

#[test]
fn unusable_keys_fail_closed() {
    let coordinator = coordinator_cert(FROM);
    let home = GpgHome::new();
    let sign_only = home.gen_key("signonly@example.test", "ed25519", "sign", "never");
    let short = home.gen_key("short@example.test", "future-default", "encr", "1d");
    let revoked = home.gen_key("revoked@example.test", "future-default", "encr", "never");
    let revoked = home.revoke(&revoked);
    // After key generation: a key made after `now` has no binding signature yet.
    let now = SystemTime::now();
    let signed = sign_notice(
        &notice("secret case details\n"),
        &coordinator,
        &addr(FROM),
        now,
    )
    .unwrap();

    assert_no_valid_key(
        seal_for(&signed, &addr("signonly@example.test"), &sign_only, now),
        "no encryption-capable subkey",
    );
    assert!(seal_for(&signed, &addr("short@example.test"), &short, now).is_ok());
    let later = now + Duration::from_secs(3 * 86400);
    assert_no_valid_key(
        seal_for(&signed, &addr("short@example.test"), &short, later),
        "expired",
    );
    assert_no_valid_key(
        seal_for(&signed, &addr("revoked@example.test"), &revoked, now),
        "revoked",
    );
}

#[test]
fn bad_addresses_are_refused() {
    let coordinator = coordinator_cert(FROM);
    let home = GpgHome::new();
    let cert = home.gen_key("vendor@example.test", "future-default", "encr", "never");
    // After key generation: a key made after `now` has no binding signature yet.
    let now = SystemTime::now();
    let signed = sign_notice(&notice("x\n"), &coordinator, &addr(FROM), now).unwrap();
    // seal_for takes only an `AddrSpec`: what would break a header never gets that far.
    for bad in [
        "vendor@example.test, psirt@example.test",
        "vendor@example.test\r\nBcc: stranger@example.test",
        "Vendor <vendor@example.test>",
        "",
    ] {
        assert!(AddrSpec::parse(bad).is_err(), "{bad:?}");
    }
    assert!(seal_for(&signed, &addr("vendor@example.test"), &cert, now).is_ok());
}

#[test]
fn stub_names_only_the_tracking_number_and_is_signed() {
    let coordinator = coordinator_cert(FROM);
    // After key generation: a key made after `now` has no binding signature yet.
    let now = SystemTime::now();
    let stub = stub_for(
        "VU#409117",
        &addr("vendor3@example.test"),
        &coordinator,
        &addr(FROM),
        false,
        now,
    )
    .unwrap();
    let text = String::from_utf8(stub.bytes).unwrap();
    assert!(text.contains("Subject: [VU#409117] Encryption key needed\r\n"));
    assert!(text.contains("To: <vendor3@example.test>\r\n"));
    assert!(text.contains("BEGIN PGP PUBLIC KEY BLOCK"));
    assert!(!text.contains("PRIVATE KEY"));
    let attached =
        sequoia_openpgp::Cert::from_bytes(pgp_block(&text, "PUBLIC KEY BLOCK").as_bytes()).unwrap();
    assert_eq!(attached.fingerprint(), coordinator.fingerprint());
    assert!(
        !attached.is_tsk(),
        "the stub must not carry secret key material"
    );
    let home = GpgHome::new();
    home.import_cert(&coordinator);
    let (first, sig) = first_part_and_signature(&text);
    let parsed = mail_parser::MessageParser::default()
        .parse(first.as_bytes())
        .unwrap();
    let text = parsed.body_text(0).unwrap();
    assert!(
        text.contains("VU#409117") && text.contains("vendor3@example.test"),
        "{text}"
    );
    assert!(home.verify(&sig, &first).contains("GOODSIG"));
}
