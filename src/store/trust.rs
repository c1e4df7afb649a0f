//! Sender authentication verdicts (columns of `messages`) and key changes held for review.

use super::sql::{Db, Row, args};
use super::{Store, StoreError, bump_keys_tx, time_text};
use chrono::{DateTime, Utc};

/// The sender authentication verdict of every inbound message (`pass | fail | none |
/// temperror`) and its detail. Messages stored before have `none` and no detail.
pub(super) const SENDER_AUTH: &str = "
ALTER TABLE messages ADD COLUMN sender_auth TEXT NOT NULL DEFAULT 'none';
ALTER TABLE messages ADD COLUMN sender_auth_detail TEXT;
";

/// A contact address's key replaced by one its accepted key did not certify: held (`pending`)
/// until an analyst accepts it; Autocrypt keys of known participants are `offered` (listed,
/// never used). Keyed by address: contacts of one address share what an analyst decided.
pub(super) const KEY_CHANGES: &str = "
CREATE TABLE key_changes (
    id          INTEGER PRIMARY KEY,
    address     TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    previous    TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'offered', 'accepted')),
    detected_at TEXT NOT NULL,
    decided_at  TEXT,
    decided_by  TEXT,
    UNIQUE (address, fingerprint)
);
";

/// A key change as `key changes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct KeyChange {
    #[serde(skip)]
    pub id: i64,
    pub address: String,
    /// The new certificate's primary fingerprint.
    pub fingerprint: String,
    /// The keys accepted for the address when the change was seen.
    pub previous: Vec<String>,
    /// `import | wkd | autocrypt | first-use | participant-add`.
    pub source: String,
    /// `pending` (outbound copies to the address held), `offered` (listed only), `accepted`.
    pub status: String,
    pub detected_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
}

/// A key change to record.
#[derive(Debug, Clone)]
pub struct NewKeyChange<'a> {
    pub address: &'a str,
    pub fingerprint: &'a str,
    pub previous: &'a [String],
    pub source: &'a str,
    /// `pending` or `offered`.
    pub status: &'a str,
    pub at: DateTime<Utc>,
}

impl Store {
    /// Primary fingerprints bound to any contact with this address: the keys accepted for
    /// the address.
    pub fn address_keys(&self, address: &str) -> Result<Vec<String>, StoreError> {
        self.db.map(
            "SELECT DISTINCT k.fingerprint FROM org_contact_keys k
             JOIN org_contacts c ON c.id = k.contact_id
             WHERE c.address = ?1 ORDER BY k.fingerprint",
            args![address.trim().to_lowercase()],
            |r| r.get::<String>(0),
        )
    }

    /// Every contact address with its organisations (for `key refresh`), sorted.
    pub fn contact_addresses(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.db.map(
            "SELECT DISTINCT c.address, p.org FROM contacts c
             JOIN participants p ON p.id = c.participant_id ORDER BY c.address, p.org",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Binds a key to every contact with this address; returns how many were newly bound.
    pub fn bind_key_to_address(
        &mut self,
        address: &str,
        fingerprint: &str,
    ) -> Result<usize, StoreError> {
        self.db
            .write(|db| bind_to_address_tx(db, address, fingerprint))
    }

    /// Records a key change (or finds the one already recorded for this address and key; an
    /// `offered` one becomes `pending` when the key now arrives another way), and bumps the
    /// keys generation so every process holds copies and masks signatures from now on.
    pub fn record_key_change(&mut self, c: &NewKeyChange<'_>) -> Result<KeyChange, StoreError> {
        let previous =
            serde_json::to_string(c.previous).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.db.write(|db| {
            let id: i64 = db.one(
            "INSERT INTO key_changes (address, fingerprint, previous, source, status, detected_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (address, fingerprint) DO UPDATE SET
                 source = CASE WHEN key_changes.status = 'offered' AND excluded.status = 'pending'
                     THEN excluded.source ELSE key_changes.source END,
                 status = CASE WHEN key_changes.status = 'offered' AND excluded.status = 'pending'
                     THEN 'pending' ELSE key_changes.status END
             RETURNING id",
            args![
                c.address.trim().to_lowercase(),
                c.fingerprint.trim().to_uppercase(),
                previous,
                c.source,
                c.status,
                time_text(c.at),
            ],
        )?;
            bump_keys_tx(db)?;
            key_change_tx(db, id)
        })
    }

    /// Key changes, oldest first: the open ones (`pending`, `offered`), or all.
    pub fn key_changes(&self, open_only: bool) -> Result<Vec<KeyChange>, StoreError> {
        self.db.map(
            "SELECT id, address, fingerprint, previous, source, status, detected_at, decided_at,
                    decided_by
             FROM key_changes WHERE (?1 = 0 OR status IN ('pending', 'offered'))
             ORDER BY detected_at, id",
            args![open_only],
            key_change_row,
        )
    }

    /// An analyst accepts a key change: it is bound to every contact with the address (and
    /// used from now on), in one transaction that bumps the keys generation.
    pub fn accept_key_change(
        &mut self,
        address: &str,
        fingerprint: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<KeyChange, StoreError> {
        let address = address.trim().to_lowercase();
        let fingerprint = fingerprint
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase();
        self.db.write(|db| {
            let id: Option<i64> = db.opt(
                "UPDATE key_changes SET status = 'accepted', decided_at = ?3, decided_by = ?4
                 WHERE address = ?1 AND fingerprint = ?2 AND status IN ('pending', 'offered')
                 RETURNING id",
                args![address, fingerprint, time_text(at), by],
            )?;
            let Some(id) = id else {
                return Err(StoreError::NotFound(format!(
                    "no open key change of {address} to {fingerprint}; see `casegate key changes`"
                )));
            };
            bind_to_address_tx(db, &address, &fingerprint)?;
            bump_keys_tx(db)?;
            key_change_tx(db, id)
        })
    }
}

fn bind_to_address_tx(db: &Db, address: &str, fingerprint: &str) -> Result<usize, StoreError> {
    // Bindings live in the directory: every directory contact with this address (and so
    // every thread contact pointing at one), and its organization.
    let contacts: Vec<(i64, i64)> = db.map(
        "SELECT id, org_id FROM org_contacts WHERE address = ?1 ORDER BY id",
        args![address.trim().to_lowercase()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let fpr = crate::keyring::normalize_fingerprint(fingerprint);
    let mut n = 0;
    for (c, org) in contacts {
        super::orgs::org_key_tx(db, org, &fpr)?;
        if super::orgs::contact_key_tx(db, c, &fpr)? {
            n += 1;
        }
    }
    if n > 0 {
        bump_keys_tx(db)?;
    }
    Ok(n)
}

fn key_change_tx(db: &Db, id: i64) -> Result<KeyChange, StoreError> {
    db.row(
        "SELECT id, address, fingerprint, previous, source, status, detected_at, decided_at,
                decided_by
         FROM key_changes WHERE id = ?1",
        args![id],
    )?
    .ok_or_else(|| StoreError::NotFound(format!("no key change {id}")))
    .and_then(|r| key_change_row(&r))
}

fn key_change_row(r: &Row) -> Result<KeyChange, StoreError> {
    let previous: String = r.get(3)?;
    Ok(KeyChange {
        id: r.get(0)?,
        address: r.get(1)?,
        fingerprint: r.get(2)?,
        previous: serde_json::from_str(&previous).unwrap_or_default(),
        source: r.get(4)?,
        status: r.get(5)?,
        detected_at: r.get(6)?,
        decided_at: r.get(7)?,
        decided_by: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::Kind;

    #[test]
    fn a_change_is_recorded_once_upgraded_from_offer_and_accepted_for_every_contact() {
        let mut s = Store::open_in_memory().unwrap();
        let now = Utc::now();
        let a = s.create_thread(Kind::Case, None, "a", now).unwrap();
        let b = s.create_thread(Kind::Case, None, "b", now).unwrap();
        s.add_participant(a.id, "V", "vendor", "PSIRT@v.example", Some("old1"))
            .unwrap();
        s.add_participant(b.id, "V", "vendor", "psirt@v.example", None)
            .unwrap();
        assert_eq!(s.address_keys("psirt@v.example").unwrap(), vec!["OLD1"]);
        let g0 = s.keys_generation().unwrap();
        let offer = NewKeyChange {
            address: "psirt@v.example",
            fingerprint: "new1",
            previous: &["OLD1".to_string()],
            source: "autocrypt",
            status: "offered",
            at: now,
        };
        let c = s.record_key_change(&offer).unwrap();
        assert_eq!(
            (c.status.as_str(), c.source.as_str()),
            ("offered", "autocrypt")
        );
        assert!(s.keys_generation().unwrap() > g0);
        // The same key arriving by WKD: now pending, one row.
        let c = s
            .record_key_change(&NewKeyChange {
                source: "wkd",
                status: "pending",
                ..offer.clone()
            })
            .unwrap();
        assert_eq!((c.status.as_str(), c.source.as_str()), ("pending", "wkd"));
        // An offer again does not downgrade it.
        let c = s.record_key_change(&offer).unwrap();
        assert_eq!(c.status, "pending");
        assert_eq!(s.key_changes(true).unwrap().len(), 1);
        // Accepting binds it to both contacts of the address.
        let c = s
            .accept_key_change("psirt@v.example", "NEW1", "cli:ann", now)
            .unwrap();
        assert_eq!(c.status, "accepted");
        assert_eq!(c.decided_by.as_deref(), Some("cli:ann"));
        assert_eq!(
            s.address_keys("psirt@v.example").unwrap(),
            vec!["NEW1", "OLD1"]
        );
        for t in [a.id, b.id] {
            assert!(
                s.contacts(t).unwrap()[0]
                    .key_fingerprints
                    .contains(&"NEW1".to_string())
            );
        }
        assert!(s.key_changes(true).unwrap().is_empty());
        assert_eq!(s.key_changes(false).unwrap().len(), 1);
        // Only an open change can be accepted.
        let err = s
            .accept_key_change("psirt@v.example", "NEW1", "cli:ann", now)
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)));
    }
}
