//! Who is asking. The API takes `Authorization: Bearer <token>` on every request; the web
//! page trades a token for a session cookie once. Both end in an [`Actor`] for `ops`
//! (`token:<analyst>`, read-only or not), so the audit trail names the analyst either way.
//!
//! Sessions live in memory, keyed by the SHA-256 of the cookie's random value (the value
//! itself is kept nowhere), and remember the token's SHA-256 — never the token — so every
//! request checks again that the token is still valid: revoking a token ends its sessions.
//! Each session has its own CSRF token, required in every form; log-in forms carry a
//! pre-session one (double submit). A restart logs everyone out, which is acceptable for a
//! desk on loopback.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use base64::Engine;
use sha2::Digest;
use subtle::ConstantTimeEq;

use crate::ops::tokens::{self, Analyst, AuthError};
use crate::ops::{Actor, OpsError};

use super::desk::Desk;

/// The session cookie: `__Host-` under TLS (the browser then insists on Secure, Path=/ and
/// no Domain), a plain name on loopback HTTP.
pub fn session_cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-casegate_session"
    } else {
        "casegate_session"
    }
}

/// The log-in form's CSRF cookie (before there is a session).
pub fn login_cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-casegate_login"
    } else {
        "casegate_login"
    }
}

/// Most sessions kept at once; the oldest go first (bounds memory whatever clients do).
const MAX_SESSIONS: usize = 10_000;

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub analyst: String,
    pub read_only: bool,
    /// Hidden in every form, compared with what comes back.
    pub csrf: String,
    token_digest: [u8; 32],
    expires: Instant,
}

impl Session {
    pub fn actor(&self) -> Actor {
        Actor::analyst(&Analyst {
            name: self.analyst.clone(),
            read_only: self.read_only,
        })
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        same_secret(&self.csrf, presented)
    }
}

pub struct Sessions {
    lifetime: Duration,
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Sessions {
        Sessions {
            lifetime,
            by_digest: Mutex::new(HashMap::new()),
        }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Starts a session for `analyst`, whose token had `token_digest`; returns the cookie
    /// value (shown once, kept only as a hash).
    pub fn start(&self, analyst: &Analyst, token_digest: [u8; 32]) -> Result<String, OpsError> {
        let id = random_token()?;
        let session = Session {
            analyst: analyst.name.clone(),
            read_only: analyst.read_only,
            csrf: random_token()?,
            token_digest,
            expires: Instant::now() + self.lifetime,
        };
        let mut map = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(sha256(&id), session);
        Ok(id)
    }

    /// The live session a cookie value names.
    fn find(&self, cookie_value: &str) -> Option<Session> {
        let key = sha256(cookie_value);
        let mut map = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, cookie_value: &str) {
        self.by_digest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sha256(cookie_value));
    }

    /// The session of this request, if its cookie names a live one whose token is still
    /// valid (checked in the store: a revoked token ends the session here).
    pub async fn current(
        &self,
        desk: &Desk,
        headers: &HeaderMap,
        tls: bool,
    ) -> Result<Option<Session>, OpsError> {
        let Some(value) = cookie(headers, session_cookie_name(tls)) else {
            return Ok(None);
        };
        let Some(session) = self.find(&value) else {
            return Ok(None);
        };
        let digest = session.token_digest;
        let still = desk
            .run(move |cx| Ok(tokens::authenticate_digest(cx, &digest)))
            .await?;
        match still {
            Ok(a) => Ok(Some(Session {
                read_only: a.read_only,
                ..session
            })),
            Err(AuthError::Store(e)) => Err(OpsError::Internal(e)),
            Err(_) => {
                self.end(&value);
                Ok(None)
            }
        }
    }
}

/// The analyst whose bearer token this request carries.
pub async fn bearer(desk: &Desk, headers: &HeaderMap) -> Result<Actor, AuthError> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or("")
        .to_string();
    if presented.is_empty() {
        return Err(AuthError::Missing);
    }
    let analyst = desk
        .run(move |cx| Ok(tokens::authenticate(cx, &presented)))
        .await
        .map_err(|e| AuthError::Store(e.to_string()))??;
    Ok(Actor::analyst(&analyst))
}

/// The value of cookie `name` in the request (the first, if a client sends several).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure under TLS; `max_age`
/// zero deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, tls: bool) -> String {
    cookie::Cookie::build((name, value))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .secure(tls)
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .build()
        .to_string()
}

/// 32 random bytes, base64url: session ids and CSRF tokens.
pub fn random_token() -> Result<String, OpsError> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| OpsError::Internal(format!("no randomness from the system: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Compares two secrets without an early exit on the first difference.
pub fn same_secret(expected: &str, presented: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

fn sha256(s: &str) -> [u8; 32] {
    sha2::Sha256::digest(s.as_bytes()).into()
}
