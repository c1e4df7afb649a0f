//! Analysts' API tokens, as hashes only: the token itself is shown once when it is made and
//! never stored (see `ops::tokens`).

use super::sql::{Row, args};
use super::{Store, StoreError, time_text};
use chrono::{DateTime, Utc};

pub(super) const MIGRATION: &str = "
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    sha256       TEXT NOT NULL UNIQUE,
    read_only    INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
";

/// One analyst's token as stored: the SHA-256 (hex) of the token, never the token.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StoredToken {
    #[serde(skip)]
    pub id: i64,
    /// The analyst's name (what the audit trail records).
    pub name: String,
    #[serde(skip)]
    pub sha256: String,
    pub read_only: bool,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

fn stored_token(r: &Row) -> Result<StoredToken, StoreError> {
    Ok(StoredToken {
        id: r.get(0)?,
        name: r.get(1)?,
        sha256: r.get(2)?,
        read_only: r.get(3)?,
        created_at: r.get(4)?,
        last_used_at: r.get(5)?,
    })
}

impl Store {
    /// Stores a new token's hash under `name`; a name already used is a conflict.
    pub fn add_token(
        &self,
        name: &str,
        sha256: &str,
        read_only: bool,
        now: DateTime<Utc>,
    ) -> Result<StoredToken, StoreError> {
        let inserted: Option<i64> = self.db().insert(
            "INSERT INTO api_tokens (name, sha256, read_only, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING",
            args![name, sha256, read_only, time_text(now)],
        )?;
        let Some(id) = inserted else {
            return Err(StoreError::Conflict(format!(
                "a token named {name:?} exists; revoke it first (`casegate token revoke {name}`) or pick another name"
            )));
        };
        Ok(StoredToken {
            id,
            name: name.to_string(),
            sha256: sha256.to_string(),
            read_only,
            created_at: time_text(now),
            last_used_at: None,
        })
    }

    /// Every token, by name.
    pub fn tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        self.db().map(
            "SELECT id, name, sha256, read_only, created_at, last_used_at FROM api_tokens ORDER BY name",
            args![],
            stored_token,
        )
    }

    /// Removes the token named `name`; `false` when there is none.
    pub fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .db()
            .execute("DELETE FROM api_tokens WHERE name = ?1", args![name])?
            > 0)
    }

    /// Records that a token was just used.
    pub fn touch_token(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.db().execute(
            "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
            args![id, time_text(now)],
        )?;
        Ok(())
    }
}
