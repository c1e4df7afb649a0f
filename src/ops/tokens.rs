//! Analysts' API tokens. A token is 32 random bytes (base64url, prefixed `cgt_` so it can be
//! recognised in a leak); only its SHA-256 is stored. A fast hash is enough here: the token
//! has 256 bits of entropy, so nothing can be guessed from the hash. The HTTP face calls
//! [`authenticate`] for every request and acts as [`super::Actor::analyst`].

use chrono::{DateTime, Utc};
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::{Actor, Context, OpsError, Page, Paged, audit_record};
use crate::store::{StoreError, StoredToken};

/// Every token begins with this.
pub const TOKEN_PREFIX: &str = "cgt_";

/// How stale `last used` may get before a request writes it again (a write per request would
/// serialize all readers behind the store's write lock).
const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// A token just made (`token add --json`): the only time the token itself is shown.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NewToken {
    pub name: String,
    pub read_only: bool,
    pub created_at: String,
    pub token: String,
}

/// Makes a token for analyst `name`; prints nothing, returns it once. Only its hash is kept.
pub fn add(
    cx: &mut Context,
    actor: &Actor,
    name: &str,
    read_only: bool,
) -> Result<NewToken, OpsError> {
    actor.may_change("make API tokens")?;
    check_name(name)?;
    let token = fresh_token()?;
    let stored = cx.store_mut().atomically(|s| {
        let t = s.add_token(name, &token_hash(&token), read_only, Utc::now())?;
        s.record_audit(&audit_record(
            actor,
            "token add",
            None,
            None,
            format!(
                "{name} ({})",
                if read_only { "read-only" } else { "read-write" }
            ),
        ))?;
        Ok::<_, StoreError>(t)
    })?;
    Ok(NewToken {
        name: stored.name,
        read_only: stored.read_only,
        created_at: stored.created_at,
        token,
    })
}

/// Every token: name, read-only or not, created, last used. Never the token or its hash.
pub fn list(cx: &Context, _actor: &Actor, page: Page) -> Result<Paged<StoredToken>, OpsError> {
    Ok(page.slice(cx.store().tokens()?))
}

/// A token revoked (`token revoke --json`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Revoked {
    pub name: String,
}

/// Revokes analyst `name`'s token: requests with it are refused from now on.
pub fn revoke(cx: &mut Context, actor: &Actor, name: &str) -> Result<Revoked, OpsError> {
    actor.may_change("revoke API tokens")?;
    cx.store_mut().atomically(|s| {
        if !s.revoke_token(name)? {
            return Err(OpsError::NotFound(format!(
                "no token named {name:?}; see `casegate token list`"
            )));
        }
        s.record_audit(&audit_record(
            actor,
            "token revoke",
            None,
            None,
            name.to_string(),
        ))?;
        Ok(())
    })?;
    Ok(Revoked {
        name: name.to_string(),
    })
}

/// Who presented a valid token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Analyst {
    pub name: String,
    pub read_only: bool,
}

/// Why a request is not authenticated (HTTP 401 for the first two, 500 for the last).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no API token given; send `Authorization: Bearer TOKEN` (an administrator makes one with `casegate token add NAME`)"
    )]
    Missing,
    #[error(
        "this API token is not valid (mistyped, or revoked); ask for a new one (`casegate token add NAME`)"
    )]
    Unknown,
    #[error("cannot check the token: {0}")]
    Store(String),
}

/// The analyst whose token `presented` is. Compares the token's SHA-256 with every stored
/// hash in constant time (no early exit), and records `last used` (at most once a minute).
pub fn authenticate(cx: &Context, presented: &str) -> Result<Analyst, AuthError> {
    authenticate_at(cx, presented, Utc::now())
}

/// A token's SHA-256, as the store keeps it: what a web session remembers instead of the
/// token, to check on each request that the token is still valid.
pub fn digest(presented: &str) -> Option<[u8; 32]> {
    let presented = presented.trim();
    (!presented.is_empty()).then(|| sha2::Sha256::digest(presented.as_bytes()).into())
}

/// [`authenticate`] by the token's [`digest`].
pub fn authenticate_digest(cx: &Context, digest: &[u8; 32]) -> Result<Analyst, AuthError> {
    authenticate_digest_at(cx, digest, Utc::now())
}

fn authenticate_at(
    cx: &Context,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Analyst, AuthError> {
    let digest = self::digest(presented).ok_or(AuthError::Missing)?;
    authenticate_digest_at(cx, &digest, now)
}

fn authenticate_digest_at(
    cx: &Context,
    digest: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<Analyst, AuthError> {
    let tokens = cx
        .store()
        .tokens()
        .map_err(|e| AuthError::Store(e.to_string()))?;
    let mut found: Option<&StoredToken> = None;
    for t in &tokens {
        let Ok(stored) = hex::decode(&t.sha256) else {
            continue;
        };
        if bool::from(stored.as_slice().ct_eq(digest.as_slice())) {
            found = Some(t);
        }
    }
    let t = found.ok_or(AuthError::Unknown)?;
    let stale = t
        .last_used_at
        .as_deref()
        .and_then(|l| DateTime::parse_from_rfc3339(l).ok())
        .is_none_or(|l| (now - l.with_timezone(&Utc)).num_seconds() >= LAST_USED_GRANULARITY_SECS);
    if stale && let Err(e) = cx.store().touch_token(t.id, now) {
        // Only the "last used" column is behind; the request itself is fine.
        tracing::warn!(analyst = %t.name, error = %e, "could not record the token's last use");
    }
    Ok(Analyst {
        name: t.name.clone(),
        read_only: t.read_only,
    })
}

/// Hex SHA-256 of a token: what the store keeps.
fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

fn fresh_token() -> Result<String, OpsError> {
    use base64::Engine;
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| OpsError::Internal(format!("no randomness from the system: {e}")))?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// An analyst's name: what the audit trail shows, so plain and short.
fn check_name(name: &str) -> Result<(), OpsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok {
        return Err(OpsError::Invalid(format!(
            "token name {name:?}: use 1 to 64 letters, digits, '.', '_', '-' or '@' (the analyst's name)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{ann, desk};

    #[test]
    fn a_token_authenticates_its_analyst_and_nothing_else_does() {
        let mut d = desk();
        let made = add(&mut d.cx, &ann(), "rita", true).unwrap();
        let other = add(&mut d.cx, &ann(), "sam", false).unwrap();
        assert!(made.token.starts_with(TOKEN_PREFIX));
        assert_eq!(made.token.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(made.token, other.token);

        let rita = authenticate(&d.cx, &made.token).unwrap();
        assert_eq!(
            rita,
            Analyst {
                name: "rita".into(),
                read_only: true
            }
        );
        assert_eq!(Actor::analyst(&rita).name(), "token:rita");
        assert!(Actor::analyst(&rita).read_only());
        assert!(!authenticate(&d.cx, &other.token).unwrap().read_only);
        // Whitespace around a pasted token is forgiven; any other change is not.
        assert!(authenticate(&d.cx, &format!(" {}\n", made.token)).is_ok());
        let mut wrong = made.token.clone();
        wrong.pop();
        wrong.push(if made.token.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(
            authenticate(&d.cx, &wrong),
            Err(AuthError::Unknown)
        ));
        assert!(matches!(authenticate(&d.cx, ""), Err(AuthError::Missing)));
        // The stored hash is the token's SHA-256, and the token is stored nowhere.
        let stored = d.cx.store().tokens().unwrap();
        assert_eq!(stored[0].sha256, token_hash(&made.token));
        assert!(stored.iter().all(|t| !t.sha256.contains(&made.token[4..])));
        let listed = serde_json::to_string(&list(&d.cx, &ann(), Page::ALL).unwrap()).unwrap();
        assert!(!listed.contains(&made.token) && !listed.contains(&stored[0].sha256));

        // Revoked: refused from then on; a second revoke is a not-found.
        revoke(&mut d.cx, &ann(), "rita").unwrap();
        assert!(matches!(
            authenticate(&d.cx, &made.token),
            Err(AuthError::Unknown)
        ));
        assert_eq!(
            revoke(&mut d.cx, &ann(), "rita")
                .unwrap_err()
                .kind()
                .http_status(),
            404
        );
        let audit: Vec<String> =
            d.cx.store()
                .audit_entries(None, None)
                .unwrap()
                .into_iter()
                .map(|e| format!("{} {}", e.action, e.detail))
                .collect();
        assert_eq!(
            audit,
            vec![
                "token add rita (read-only)",
                "token add sam (read-write)",
                "token revoke rita"
            ]
        );
    }

    #[test]
    fn last_use_is_recorded_at_most_once_a_minute() {
        let mut d = desk();
        let made = add(&mut d.cx, &ann(), "rita", false).unwrap();
        let t0 = Utc::now();
        let used = |d: &crate::ops::testing::TestDesk| {
            d.cx.store().tokens().unwrap()[0].last_used_at.clone()
        };
        assert_eq!(used(&d), None);
        authenticate_at(&d.cx, &made.token, t0).unwrap();
        let first = used(&d);
        assert!(first.is_some());
        authenticate_at(&d.cx, &made.token, t0 + chrono::Duration::seconds(30)).unwrap();
        assert_eq!(used(&d), first);
        authenticate_at(&d.cx, &made.token, t0 + chrono::Duration::seconds(61)).unwrap();
        assert_ne!(used(&d), first);
    }

    #[test]
    fn names_are_checked_and_unique() {
        let mut d = desk();
        for bad in ["", "a b", "ann;drop", &"x".repeat(65)] {
            assert_eq!(
                add(&mut d.cx, &ann(), bad, false)
                    .unwrap_err()
                    .kind()
                    .http_status(),
                400,
                "{bad:?}"
            );
        }
        add(&mut d.cx, &ann(), "ann@example.test", false).unwrap();
        let err = add(&mut d.cx, &ann(), "ann@example.test", true).unwrap_err();
        assert_eq!(err.kind().http_status(), 409);
        assert!(err.to_string().contains("token revoke"), "{err}");
        // A read-only analyst cannot make tokens.
        let reader = Actor::named("token:rita", true);
        assert_eq!(
            add(&mut d.cx, &reader, "x", false)
                .unwrap_err()
                .kind()
                .http_status(),
            403
        );
    }
}
