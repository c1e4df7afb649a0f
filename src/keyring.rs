//! Certificates and the coordinator's secret key.
//!
//! Why this module exists: every other part of casegate handles OpenPGP keys only through
//! these functions, so there is exactly one place that decides (a) that the coordinator's
//! secret key lives in a 0600 file and nowhere else, (b) that secrets of other people are
//! never kept, (c) what "a usable encryption key" means (sequoia's `StandardPolicy`, now), and
//! (d) that a stored certificate only ever gains information: every path that stores one
//! (`key import`, `participant add --key`, keys offered in mail) goes through [`import_certs`],
//! which merges with the stored copy.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use chrono::{DateTime, Utc};
use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::types::RevocationStatus;
use sequoia_openpgp as openpgp;

use crate::store::{Store, StoreError, StoredCert};

pub use openpgp::Cert;

/// Errors of key handling. They name files and fingerprints, never key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The secret key file is readable by group or others ("run `chmod 600 PATH`").
    #[error(transparent)]
    InsecurePermissions(#[from] crate::at_rest::NotPrivate),
    #[error("secret key file {path} holds no secret key material")]
    NoSecretKey { path: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("not an OpenPGP certificate: {0}")]
    Parse(String),
    #[error("no OpenPGP certificate found in the input")]
    Empty,
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("cannot serialize certificate {fingerprint}: {reason}")]
    Serialize { fingerprint: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The keys `open` may use: the coordinator's TSK (to decrypt) and participants'
/// public certificates (to verify), looked up by primary fingerprint.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    coordinator: Option<Cert>,
    certs: HashMap<String, Cert>,
    /// (address, primary fingerprint) of key changes not accepted yet: such a key's signatures
    /// on mail from that address are `unknown-key`.
    held: std::collections::HashSet<(String, String)>,
}

impl Keyring {
    /// Builds a keyring. Participant certificates are stored public-only, whatever was given.
    pub fn new(coordinator: Option<Cert>, certs: Vec<Cert>) -> Keyring {
        let certs = certs
            .into_iter()
            .map(|c| {
                let c = c.strip_secret_key_material();
                (c.fingerprint().to_hex(), c)
            })
            .collect();
        Keyring {
            coordinator,
            certs,
            held: Default::default(),
        }
    }

    /// The keyring with the key changes not accepted yet (see [`held_key_changes`]).
    pub fn with_held(mut self, held: std::collections::HashSet<(String, String)>) -> Keyring {
        self.held = held;
        self
    }

    /// Whether `fingerprint` is a key change for `address` that no analyst accepted yet.
    pub fn is_held(&self, address: &str, fingerprint: &str) -> bool {
        self.held.contains(&(
            address.trim().to_ascii_lowercase(),
            normalize_fingerprint(fingerprint),
        ))
    }

    /// The coordinator's key (with secret parts when loaded from the key file).
    pub fn coordinator(&self) -> Option<&Cert> {
        self.coordinator.as_ref()
    }

    /// A participant certificate by primary fingerprint (hex, any case, spaces ignored).
    /// The coordinator's own certificate is found too.
    pub fn cert(&self, fingerprint_hex: &str) -> Option<&Cert> {
        let want = normalize_fingerprint(fingerprint_hex);
        if let Some(c) = self.certs.get(&want) {
            return Some(c);
        }
        self.coordinator
            .as_ref()
            .filter(|c| c.fingerprint().to_hex() == want)
    }

    /// Every certificate that may have made a signature: participants and the coordinator.
    pub fn certs(&self) -> impl Iterator<Item = &Cert> {
        self.certs.values().chain(self.coordinator.iter())
    }
}

/// Upper-case hex without spaces, the form fingerprints are compared and stored in.
pub fn normalize_fingerprint(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Creates the coordinator key: Cv25519, certification-only primary, one signing and one
/// encryption subkey, no expiry (the coordinator's key is rotated deliberately, not by a
/// timer that silently stops outbound mail).
pub fn generate_coordinator_key(address: &str) -> Result<Cert, KeyringError> {
    let (cert, _revocation) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .add_userid(format!("casegate coordinator <{address}>"))
        .add_signing_subkey()
        .add_subkey(
            openpgp::types::KeyFlags::empty()
                .set_transport_encryption()
                .set_storage_encryption(),
            None,
            None,
        )
        .generate()
        .map_err(|e| KeyringError::Generate(e.to_string()))?;
    Ok(cert)
}

/// Reads the coordinator's secret key. Refuses a file others can read: a leaked
/// coordinator key lets anyone read every case.
pub fn read_secret_key_file(path: &Path) -> Result<Cert, KeyringError> {
    let shown = path.display().to_string();
    crate::at_rest::require_private_file(path, "secret key file").map_err(|source| {
        KeyringError::Read {
            path: shown.clone(),
            source,
        }
    })??;
    let bytes = fs::read(path).map_err(|source| KeyringError::Read {
        path: shown.clone(),
        source,
    })?;
    // The parse error text from sequoia describes structure, not key bytes.
    let cert = Cert::from_bytes(&bytes).map_err(|e| KeyringError::Parse(e.to_string()))?;
    if !cert.is_tsk() {
        return Err(KeyringError::NoSecretKey { path: shown });
    }
    Ok(cert)
}

/// Writes the coordinator's secret key as an armored TSK, mode 0600 from the first byte,
/// via a temporary file and rename so a crash never leaves half a key.
pub fn write_secret_key_file(path: &Path, key: &Cert) -> Result<(), KeyringError> {
    let shown = path.display().to_string();
    let werr = |source| KeyringError::Write {
        path: shown.clone(),
        source,
    };
    let armored = key
        .as_tsk()
        .armored()
        .to_vec()
        .map_err(|e| KeyringError::Serialize {
            fingerprint: key.fingerprint().to_hex(),
            reason: e.to_string(),
        })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "key".into());
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask cannot widen 0600, but be explicit in case the file system ignores mode.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(&armored)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

/// Parses one or many certificates, armored or binary. Secret parts are dropped: casegate
/// never keeps anybody else's secrets.
pub fn parse_certs(bytes: &[u8]) -> Result<Vec<Cert>, KeyringError> {
    let parser = CertParser::from_bytes(bytes).map_err(|e| KeyringError::Parse(e.to_string()))?;
    let mut out = Vec::new();
    for cert in parser {
        let cert = cert.map_err(|e| KeyringError::Parse(e.to_string()))?;
        out.push(cert.strip_secret_key_material());
    }
    if out.is_empty() {
        return Err(KeyringError::Empty);
    }
    Ok(out)
}

/// Stores certificates, each merged with the copy the store already keeps under the same
/// fingerprint (sequoia's `merge_public`: packets are only ever added, and validity is decided
/// from all of them). So a revocation, a new subkey, a new user ID or a later expiry is never
/// replaced by an older copy: re-importing the copy from before a revocation leaves the key
/// revoked. Each is one store transaction that also bumps the keys generation, so a running
/// daemon uses it from its next message on. Returns what is stored now, summarized.
pub fn import_certs(store: &mut Store, certs: Vec<Cert>) -> Result<Vec<CertSummary>, KeyringError> {
    let mut out = Vec::with_capacity(certs.len());
    for cert in certs {
        let fingerprint = cert.fingerprint().to_hex();
        let mut kept: Option<Cert> = None;
        store.merge_cert(&fingerprint, |stored| {
            let incoming = cert.clone().strip_secret_key_material(); // merge may run again (PostgreSQL retry)
            let merged = match stored.map(|s| Cert::from_bytes(&s.public_cert)) {
                None => incoming,
                Some(Ok(old)) => old.merge_public(incoming).map_err(|e| {
                    StoreError::Invalid(format!("certificate {fingerprint} cannot be merged: {e}"))
                })?,
                Some(Err(e)) => {
                    // Nothing readable to keep: the new copy replaces what cannot be parsed.
                    tracing::warn!(%fingerprint, error = %e, "stored certificate unreadable; replaced by the imported copy");
                    incoming
                }
            };
            let summary = summarize(&merged);
            let stored = StoredCert {
                fingerprint: summary.fingerprint,
                public_cert: public_bytes(&merged),
                user_ids: summary.user_ids,
                imported_at: crate::store::time_text(Utc::now()),
            };
            kept = Some(merged);
            Ok(stored)
        })?;
        if let Some(c) = kept {
            out.push(summarize(&c));
        }
    }
    Ok(out)
}

/// Every certificate the store keeps, parsed; an unreadable one is skipped with a warning.
pub fn stored_certs(store: &Store) -> Result<Vec<Cert>, StoreError> {
    let mut certs = Vec::new();
    for stored in store.certs()? {
        match Cert::from_bytes(&stored.public_cert) {
            Ok(c) => certs.push(c),
            Err(e) => {
                tracing::warn!(fingerprint = %stored.fingerprint, error = %e, "stored certificate unreadable; skipped")
            }
        }
    }
    Ok(certs)
}

/// (address, fingerprint) of every key change not accepted yet (pending or offered).
pub fn held_key_changes(
    store: &Store,
) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
    Ok(store
        .key_changes(true)?
        .into_iter()
        .map(|c| (c.address, normalize_fingerprint(&c.fingerprint)))
        .collect())
}

/// The binary public certificate: what the store keeps.
pub fn public_bytes(cert: &Cert) -> Vec<u8> {
    // Serializing a `Cert` (not `as_tsk()`) never writes secret key material.
    // Serializing an in-memory, already-parsed Cert into a Vec cannot fail in practice;
    // fall back to an empty vector rather than panic.
    cert.to_vec().unwrap_or_default()
}

/// The ASCII-armored public certificate, ready for `gpg --import`.
pub fn armored_public(cert: &Cert) -> Result<String, KeyringError> {
    let bytes = cert
        .armored()
        .to_vec()
        .map_err(|e| KeyringError::Serialize {
            fingerprint: cert.fingerprint().to_hex(),
            reason: e.to_string(),
        })?;
    String::from_utf8(bytes).map_err(|e| KeyringError::Serialize {
        fingerprint: cert.fingerprint().to_hex(),
        reason: e.to_string(),
    })
}

/// What `key list` / `key import` show about a certificate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct CertSummary {
    /// Primary fingerprint, upper-case hex.
    pub fingerprint: String,
    pub user_ids: Vec<String>,
    /// Lower-cased email addresses of the user IDs.
    pub emails: Vec<String>,
    pub can_encrypt: bool,
    pub can_sign: bool,
    pub expired: bool,
    pub revoked: bool,
    /// Creation time of the primary key, RFC 3339 UTC.
    pub created: String,
    /// When mail can no longer be encrypted to it (its own expiry, or that of its last
    /// encryption subkey), RFC 3339 UTC; `None`: never.
    pub expires: Option<String>,
}

/// Summarizes a certificate as of now under the standard policy.
pub fn summarize(cert: &Cert) -> CertSummary {
    let policy = StandardPolicy::new();
    let user_ids: Vec<String> = cert
        .userids()
        .map(|ua| String::from_utf8_lossy(ua.userid().value()).into_owned())
        .collect();
    let mut emails: Vec<String> = Vec::new();
    for ua in cert.userids() {
        if let Ok(Some(e)) = ua.userid().email() {
            let e = e.to_ascii_lowercase();
            if !emails.contains(&e) {
                emails.push(e);
            }
        }
    }
    let created: DateTime<Utc> = cert.primary_key().key().creation_time().into();
    let revoked = matches!(
        cert.revocation_status(&policy, None),
        RevocationStatus::Revoked(_)
    );
    let expires = expiry(cert).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let (expired, can_encrypt, can_sign) = match cert.with_policy(&policy, None) {
        Ok(vc) => {
            let expired = vc.alive().is_err();
            let usable = |it: ValidKeyAmalgamationIter<'_, _, _>| {
                it.supported().alive().revoked(false).next().is_some()
            };
            let enc = usable(vc.keys().for_transport_encryption())
                || usable(vc.keys().for_storage_encryption());
            let sign = usable(vc.keys().for_signing());
            (
                expired,
                enc && !expired && !revoked,
                sign && !expired && !revoked,
            )
        }
        Err(_) => (false, false, false),
    };
    CertSummary {
        fingerprint: cert.fingerprint().to_hex(),
        user_ids,
        emails,
        can_encrypt,
        can_sign,
        expired,
        revoked,
        created: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        expires,
    }
}

/// When mail can no longer be encrypted to `cert`, under the bindings valid now: the earlier
/// of the certificate's own expiry and the latest expiry of its encryption subkeys (`None`:
/// never). A certificate without any encryption key expires with its primary key.
pub fn expiry(cert: &Cert) -> Option<DateTime<Utc>> {
    let policy = StandardPolicy::new();
    let vc = cert.with_policy(&policy, None).ok()?;
    let primary = vc.primary_key().key_expiration_time();
    let mut encryption: Vec<Option<std::time::SystemTime>> = vc
        .keys()
        .subkeys()
        .revoked(false)
        .filter(|k| k.for_transport_encryption() || k.for_storage_encryption())
        .map(|k| k.key_expiration_time())
        .collect();
    if vc.primary_key().for_transport_encryption() || vc.primary_key().for_storage_encryption() {
        encryption.push(primary);
    }
    // Without an encryption key the certificate's own expiry is all there is.
    if encryption.is_empty() {
        return primary.map(DateTime::<Utc>::from);
    }
    // The latest encryption key counts; one that never expires means never.
    let last = if encryption.iter().any(Option::is_none) {
        None
    } else {
        encryption.into_iter().flatten().max()
    };
    // The earlier of the two, `None` being "never".
    let at = match (primary, last) {
        (Some(p), Some(e)) => Some(p.min(e)),
        (p, e) => p.or(e),
    };
    at.map(DateTime::<Utc>::from)
}

/// Whether a key of `old` certified `new`'s user ID for `address` (a third-party
/// certification that verifies and is alive now), and `old` is not revoked: the holder of the
/// old key vouches for the new one, so it replaces it without review.
pub fn certifies(old: &Cert, new: &Cert, address: &str) -> bool {
    let policy = StandardPolicy::new();
    if matches!(
        old.revocation_status(&policy, None),
        RevocationStatus::Revoked(_)
    ) {
        return false;
    }
    let address = address.trim().to_ascii_lowercase();
    let signers: Vec<_> = old.keys().map(|k| k.key().clone()).collect();
    let now = std::time::SystemTime::now();
    new.userids()
        .filter(|ua| {
            ua.userid()
                .email()
                .ok()
                .flatten()
                .is_some_and(|e| e.eq_ignore_ascii_case(&address))
        })
        .any(|ua| {
            ua.certifications().any(|sig| {
                sig.signature_alive(now, std::time::Duration::ZERO).is_ok()
                    && signers.iter().any(|k| {
                        sig.verify_userid_binding(k, new.primary_key().key(), ua.userid())
                            .is_ok()
                    })
            })
        })
}

/// Whether mail may be encrypted to this certificate now. `Err` carries the reason that
/// the outbox shows when it holds a copy ("expired", "revoked", ...).
pub fn encryption_key_valid(cert: &Cert) -> Result<(), String> {
    let policy = StandardPolicy::new();
    let fpr = cert.fingerprint().to_hex();
    if let RevocationStatus::Revoked(_) = cert.revocation_status(&policy, None) {
        return Err(format!("certificate {fpr} is revoked"));
    }
    let vc = cert
        .with_policy(&policy, None)
        .map_err(|e| format!("certificate {fpr} is not valid under the standard policy: {e}"))?;
    vc.alive()
        .map_err(|e| format!("certificate {fpr} is not alive (expired?): {e}"))?;
    let has_key = vc
        .keys()
        .for_transport_encryption()
        .supported()
        .alive()
        .revoked(false)
        .next()
        .is_some()
        || vc
            .keys()
            .for_storage_encryption()
            .supported()
            .alive()
            .revoked(false)
            .next()
            .is_some();
    if !has_key {
        return Err(format!(
            "certificate {fpr} has no valid encryption-capable key (expired, revoked or missing)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_key_shape() {
        let k = generate_coordinator_key("cert@example.test").unwrap();
        assert!(k.is_tsk());
        let s = summarize(&k);
        assert_eq!(s.user_ids, vec!["casegate coordinator <cert@example.test>"]);
        assert_eq!(s.emails, vec!["cert@example.test"]);
        assert!(s.can_encrypt && s.can_sign && !s.expired && !s.revoked);
        assert_eq!(s.fingerprint, k.fingerprint().to_hex());
        let p = StandardPolicy::new();
        let vc = k.with_policy(&p, None).unwrap();
        assert!(vc.primary_key().for_certification());
        assert!(!vc.primary_key().for_signing());
        assert!(encryption_key_valid(&k).is_ok());
    }

    #[test]
    fn public_bytes_have_no_secrets() {
        let k = generate_coordinator_key("cert@example.test").unwrap();
        let back = parse_certs(&public_bytes(&k)).unwrap();
        assert_eq!(back.len(), 1);
        assert!(!back[0].is_tsk());
        let armored = armored_public(&k).unwrap();
        assert!(armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        assert!(!armored.contains("PRIVATE"));
    }

    #[test]
    fn parse_certs_strips_secrets_and_reads_many() {
        let a = generate_coordinator_key("a@example.test").unwrap();
        let b = generate_coordinator_key("b@example.test").unwrap();
        let mut bytes = a.as_tsk().armored().to_vec().unwrap();
        bytes.extend(b.armored().to_vec().unwrap());
        let certs = parse_certs(&bytes).unwrap();
        assert_eq!(certs.len(), 2);
        assert!(certs.iter().all(|c| !c.is_tsk()));
        assert!(parse_certs(b"hello").is_err());
        assert!(parse_certs(b"").is_err());
    }

    #[test]
    fn secret_key_file_roundtrip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coordinator.key");
        let k = generate_coordinator_key("cert@example.test").unwrap();
        write_secret_key_file(&path, &k).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = read_secret_key_file(&path).unwrap();
        assert_eq!(back.fingerprint(), k.fingerprint());
        assert!(back.is_tsk());

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_secret_key_file(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!("chmod 600 {}", path.display())),
            "{err}"
        );

        // Public-only file is refused as a secret key file.
        let pubpath = dir.path().join("public.key");
        fs::write(&pubpath, armored_public(&k).unwrap()).unwrap();
        fs::set_permissions(&pubpath, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_secret_key_file(&pubpath),
            Err(KeyringError::NoSecretKey { .. })
        ));
    }

    #[test]
    fn keyring_lookup_is_case_insensitive_and_public_only() {
        let c = generate_coordinator_key("cert@example.test").unwrap();
        let p = generate_coordinator_key("p@example.test").unwrap();
        let kr = Keyring::new(Some(c.clone()), vec![p.clone()]);
        let lower = p.fingerprint().to_hex().to_lowercase();
        let found = kr.cert(&lower).unwrap();
        assert!(!found.is_tsk());
        assert!(kr.cert(&c.fingerprint().to_hex()).is_some());
        assert!(kr.coordinator().unwrap().is_tsk());
        assert!(kr.cert("0000").is_none());
    }
}
