//! TLS client settings shared by every connection casegate opens (IMAP, SMTP, WKD): rustls with
//! the ring provider (the project's only one), the system roots plus an optional `ca_file`, and
//! optionally a server certificate pinned for that one server.
//!
//! Why pins: small coordinators run Dovecot or Postfix with a certificate made by
//! `openssl req -x509`, which is its own CA (basicConstraints CA:TRUE). rustls refuses such a
//! certificate as a server certificate even when it is a trusted root ("CaUsedAsEndEntity").
//! A pin (its SHA-256, or the certificate itself in a file) trusts exactly that certificate,
//! for that server only, as mbsync's CertificateFile and fetchmail's sslfingerprint do. Every
//! other certificate the server presents is checked as usual (roots, `ca_file`, host name),
//! and other servers never see the pin.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject};
use sha2::Digest;

use crate::config::CertPinConfig;

/// A SHA-256 certificate fingerprint, as `casegate check` prints it and `tls_cert_sha256`
/// takes it: upper-case hex pairs joined by colons.
pub fn fingerprint(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads a fingerprint written with or without colons or spaces, in any case.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '\t'))
        .collect();
    let hex = hex.strip_prefix("SHA256").unwrap_or(&hex);
    let bytes = hex::decode(hex).map_err(|_| {
        format!("tls_cert_sha256 {s:?} is not hex; copy the value `casegate check` prints")
    })?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "tls_cert_sha256 {s:?} has {} bytes, a SHA-256 has 32; copy the value `casegate check` prints",
            b.len()
        )
    })
}

/// The pinned certificates of one server, as SHA-256 digests of their DER bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins(Vec<[u8; 32]>);

impl Pins {
    /// From `tls_cert_sha256` and `tls_cert_file` (PEM, or one DER certificate).
    pub fn from_config(c: &CertPinConfig) -> Result<Pins, String> {
        let mut pins = Vec::new();
        for s in &c.tls_cert_sha256.0 {
            pins.push(parse_fingerprint(s)?);
        }
        if let Some(path) = &c.tls_cert_file {
            for der in read_certs(path, "tls_cert_file")? {
                pins.push(sha2::Sha256::digest(der.as_ref()).into());
            }
        }
        Ok(Pins(pins))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this exact certificate is pinned.
    pub fn matches(&self, der: &[u8]) -> bool {
        self.matches_digest(&sha2::Sha256::digest(der).into())
    }

    /// Whether the certificate with this SHA-256 is pinned.
    pub fn matches_digest(&self, digest: &[u8; 32]) -> bool {
        self.0.contains(digest)
    }
}

/// What a server presented in the last handshake: its certificate's fingerprint, kept so a
/// refusal (or `casegate check`) can print the value to pin.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Option<String>>>);

impl Seen {
    pub fn fingerprint(&self) -> Option<String> {
        self.0.lock().ok().and_then(|g| g.clone())
    }

    fn record(&self, der: &[u8]) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(fingerprint(der));
        }
    }
}

/// The certificate checks of one server: the system roots and `ca_file` with host names, plus
/// the pinned certificates, accepted as they are.
#[derive(Debug, Clone)]
pub struct ServerTrust {
    webpki: Arc<WebPkiServerVerifier>,
    roots: Arc<rustls::RootCertStore>,
    pins: Pins,
    provider: Arc<CryptoProvider>,
    seen: Seen,
}

impl ServerTrust {
    /// The system roots, the CA in `ca_file` (PEM), and the pinned certificates.
    pub fn new(ca_file: Option<&Path>, pins: Pins) -> Result<ServerTrust, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A malformed system certificate is skipped; the rest still count.
            let _ = roots.add(cert);
        }
        if let Some(path) = ca_file {
            for cert in read_certs(path, "ca_file")? {
                roots.add(cert).map_err(|e| {
                    format!(
                        "ca_file {} holds an unusable certificate: {e}",
                        path.display()
                    )
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(roots);
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| {
                    format!(
                        "no trusted root certificates ({e}); install ca-certificates or set ca_file"
                    )
                })?;
        Ok(ServerTrust {
            webpki,
            roots,
            pins,
            provider,
            seen: Seen::default(),
        })
    }

    /// What the server presented in the latest handshake through this trust.
    pub fn seen(&self) -> Seen {
        self.seen.clone()
    }

    pub fn pins(&self) -> &Pins {
        &self.pins
    }

    /// A rustls client configuration that applies these checks.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?;
        // Always through our verifier, pins or not: it records the certificate seen, so a
        // refusal can print the fingerprint to pin; without pins it is exactly webpki's check.
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedOrRoots(self.clone())))
            .with_no_client_auth())
    }

    /// Checks a chain presented in a handshake made elsewhere (lettre's STARTTLS): the pinned
    /// certificate as it is, any other one against the roots and the host name.
    pub fn check_chain(&self, chain: &[Vec<u8>], host: &str) -> Result<(), String> {
        let Some((end, rest)) = chain.split_first() else {
            return Err("the server presented no certificate".into());
        };
        self.seen.record(end);
        if self.pins.matches(end) {
            return Ok(());
        }
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host:?} is not a valid server name: {e}"))?;
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let end = CertificateDer::from(end.as_slice());
        let parsed = rustls::server::ParsedCertificate::try_from(&end)
            .map_err(|e| describe_cert_error(&e, &self.seen))?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            &intermediates,
            UnixTime::now(),
            self.provider.signature_verification_algorithms.all,
        )
        .and_then(|()| rustls::client::verify_server_name(&parsed, &name))
        .map_err(|e| describe_cert_error(&e, &self.seen))
    }
}

/// Says what went wrong with a server certificate and how to make it trusted: the CA for a
/// private CA, the pin (with the fingerprint seen) for a self-signed certificate.
pub fn describe_cert_error(e: &rustls::Error, seen: &Seen) -> String {
    let pin = seen
        .fingerprint()
        .map(|f| {
            format!(
                "; if this is the server's own self-signed certificate, pin it: tls_cert_sha256 = \"{f}\" (check it first, e.g. `openssl x509 -noout -fingerprint -sha256 -in CERT` on the server)"
            )
        })
        .unwrap_or_default();
    match e {
        rustls::Error::InvalidCertificate(cert) => format!(
            "the server's certificate is not trusted ({cert:?}); if it is signed by a private CA, set ca_file to that CA's PEM file{pin}"
        ),
        other => format!("{other}{pin}"),
    }
}

/// Every certificate in a PEM file, or the file as one DER certificate.
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let pem: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what} {} is not valid PEM: {e}", path.display()))?;
    if !pem.is_empty() {
        return Ok(pem);
    }
    // DER: a certificate is an ASN.1 SEQUENCE.
    if bytes.first() == Some(&0x30) {
        return Ok(vec![CertificateDer::from(bytes)]);
    }
    Err(format!(
        "{what} {} contains no certificate (PEM or DER)",
        path.display()
    ))
}

/// The verifier of a server with pins: a pinned certificate is accepted as it is (whoever
/// signed it, whatever names it carries: it is that server's own), anything else goes to the
/// usual checks. The handshake signature is verified either way, so the server must hold the
/// pinned certificate's private key.
#[derive(Debug)]
struct PinnedOrRoots(ServerTrust);

impl ServerCertVerifier for PinnedOrRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0.seen.record(end_entity);
        if self.0.pins.matches(end_entity) {
            return Ok(ServerCertVerified::assertion());
        }
        self.0
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0
            .provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_back_in_every_spelling() {
        let f = fingerprint(b"certificate bytes");
        assert_eq!(f.len(), 32 * 3 - 1);
        let want = parse_fingerprint(&f).unwrap();
        assert_eq!(parse_fingerprint(&f.replace(':', "")).unwrap(), want);
        assert_eq!(parse_fingerprint(&f.to_lowercase()).unwrap(), want);
        assert_eq!(
            parse_fingerprint(&format!("SHA256:{}", f.replace(':', " "))).unwrap(),
            want
        );
        let short = parse_fingerprint("AB:CD").unwrap_err();
        assert!(short.contains("2 bytes"), "{short}");
        assert!(parse_fingerprint("not hex at all").is_err());
        let pins = Pins(vec![want]);
        assert!(pins.matches(b"certificate bytes"));
        assert!(!pins.matches(b"other bytes"));
    }
}
