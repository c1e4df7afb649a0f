//! The directory of organizations across cases: each organization's contacts, the keys bound
//! to them, groups, and whether it stays anonymous when its mail is relayed.
//!
//! This is the ONE place where a contact address is bound to OpenPGP keys
//! (`org_contact_keys`); a thread's contacts (`contacts`) point at their directory contact
//! (`org_contact_id`), so every thread sees the same bindings. A participant of a thread is an
//! organization of the directory (`participants.org_id`).
//!
//! Who may name an organization: analysts, by name. Mail never joins an organization by the
//! name it claims: the pipeline puts a new sender into the organization its address already
//! belongs to, or into a new one named after the address ("Name <addr>"), so a stranger cannot
//! become a contact of FooCorp by writing "From: FooCorp <x@evil>".

use chrono::{DateTime, Utc};

use super::sql::{Db, args};
use super::{Store, StoreError, Thread, now_text, thread_by_id_tx, time_text};

/// Schema v13: the directory, and the participants and contacts that existed moved into it
/// without loss (released stores: schema v5). Vendors and coordinators of different threads
/// with the same name (any case) become one organization; reporters and "other" participants,
/// whom mail could have named, each become the organization "Name <address>" (or just the
/// address), never a vendor's. The per-thread key bindings (`contact_keys`) move to the
/// directory contact and the old table is dropped: one place for bindings.
pub(super) const MIGRATION: &str = "
CREATE TABLE orgs (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL UNIQUE,
    anonymous  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE org_groups (
    org_id INTEGER NOT NULL REFERENCES orgs(id),
    name   TEXT NOT NULL,
    PRIMARY KEY (org_id, name)
);
CREATE INDEX org_groups_name ON org_groups(name);
CREATE TABLE org_contacts (
    id         INTEGER PRIMARY KEY,
    org_id     INTEGER NOT NULL REFERENCES orgs(id),
    address    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (org_id, address)
);
CREATE INDEX org_contacts_address ON org_contacts(address);
CREATE TABLE org_keys (
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    fingerprint TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    PRIMARY KEY (org_id, fingerprint)
);
CREATE TABLE org_contact_keys (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES org_contacts(id),
    fingerprint TEXT NOT NULL,
    UNIQUE (contact_id, fingerprint)
);
ALTER TABLE participants ADD COLUMN org_id INTEGER REFERENCES orgs(id);
ALTER TABLE contacts ADD COLUMN org_contact_id INTEGER REFERENCES org_contacts(id);

CREATE TABLE org_migration (
    participant_id INTEGER PRIMARY KEY,
    name           TEXT NOT NULL
);
INSERT INTO org_migration (participant_id, name)
SELECT p.id,
       CASE WHEN p.role IN ('vendor', 'coordinator') THEN trim(p.org)
            ELSE COALESCE(
                (SELECT CASE WHEN lower(trim(p.org)) = min(c.address) THEN min(c.address)
                             ELSE trim(p.org) || ' <' || min(c.address) || '>' END
                 FROM contacts c WHERE c.participant_id = p.id),
                trim(p.org))
       END
FROM participants p;
INSERT INTO orgs (name, name_key, anonymous, created_at)
SELECT min(m.name), lower(m.name), 0, min(t.created_at)
FROM org_migration m
JOIN participants p ON p.id = m.participant_id
JOIN threads t ON t.id = p.thread_id
GROUP BY lower(m.name);
UPDATE participants SET org_id = (
    SELECT o.id FROM org_migration m JOIN orgs o ON o.name_key = lower(m.name)
    WHERE m.participant_id = participants.id);
INSERT INTO org_contacts (org_id, address, created_at)
SELECT p.org_id, c.address, min(t.created_at)
FROM contacts c
JOIN participants p ON p.id = c.participant_id
JOIN threads t ON t.id = p.thread_id
GROUP BY p.org_id, c.address;
UPDATE contacts SET org_contact_id = (
    SELECT oc.id FROM org_contacts oc JOIN participants p ON p.org_id = oc.org_id
    WHERE p.id = contacts.participant_id AND oc.address = contacts.address);
INSERT INTO org_contact_keys (contact_id, fingerprint)
SELECT DISTINCT c.org_contact_id, upper(k.fingerprint)
FROM contact_keys k JOIN contacts c ON c.id = k.contact_id;
INSERT INTO org_keys (org_id, fingerprint, added_at)
SELECT DISTINCT oc.org_id, k.fingerprint, o.created_at
FROM org_contact_keys k
JOIN org_contacts oc ON oc.id = k.contact_id
JOIN orgs o ON o.id = oc.org_id;
DROP TABLE org_migration;
DROP TABLE contact_keys;
CREATE INDEX participants_org ON participants(org_id);
CREATE INDEX contacts_org_contact ON contacts(org_contact_id);
";

/// One organization of the directory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Org {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    /// Its mail relayed into a case discussion is attributed to "a participant", and its
    /// name, addresses and domains are removed from every relayed copy.
    pub anonymous: bool,
    pub created_at: String,
    /// Lower-case group names (`networking`, ...), sorted.
    pub groups: Vec<String>,
}

/// One contact address of an organization, with the keys bound to it (oldest binding first).
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrgContact {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub org_id: i64,
    pub address: String,
    pub created_at: String,
    pub key_fingerprints: Vec<String>,
}

/// A thread an organization takes part in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrgThread {
    #[serde(flatten)]
    pub thread: Thread,
    pub role: String,
}

/// The canonical form of an email address as stored: trimmed, lower-case.
pub(crate) fn normalize_address(address: &str) -> Result<String, StoreError> {
    crate::message::usable_address(address)
        .ok_or_else(|| StoreError::Invalid(format!("{address:?} is not an email address")))
}

fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

fn group_key(group: &str) -> Result<String, StoreError> {
    let g = group.trim().to_lowercase();
    if g.is_empty()
        || g.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
    {
        return Err(StoreError::Invalid(format!(
            "group {group:?} must be one word (letters, digits, - or _)"
        )));
    }
    Ok(g)
}

impl Store {
    /// Adds an organization; a name already taken (in any case) is a conflict.
    pub fn create_org(
        &mut self,
        name: &str,
        groups: &[String],
        now: DateTime<Utc>,
    ) -> Result<Org, StoreError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("the organization name is empty".into()));
        }
        self.db.write(|db| {
            let id: Option<i64> = db.insert(
                "INSERT INTO orgs (name, name_key, anonymous, created_at) VALUES (?1, ?2, 0, ?3)
                 ON CONFLICT (name_key) DO NOTHING",
                args![name, name_key(name), time_text(now)],
            )?;
            let Some(id) = id else {
                return Err(StoreError::Conflict(format!(
                    "an organization named {name:?} exists; see `casegate org show {name:?}`"
                )));
            };
            for g in groups {
                add_group_tx(db, id, g)?;
            }
            org_by_id_tx(db, id)
        })
    }

    /// The organization of this name (any case).
    pub fn org_by_name(&self, name: &str) -> Result<Option<Org>, StoreError> {
        let id: Option<i64> = self.db.opt(
            "SELECT id FROM orgs WHERE name_key = ?1",
            args![name_key(name)],
        )?;
        id.map(|id| org_by_id_tx(&self.db, id)).transpose()
    }

    pub fn org_by_id(&self, id: i64) -> Result<Org, StoreError> {
        org_by_id_tx(&self.db, id)
    }

    /// Every organization (of one group), by name.
    pub fn orgs(&self, group: Option<&str>) -> Result<Vec<Org>, StoreError> {
        let group = group.map(group_key).transpose()?;
        let ids: Vec<i64> = self.db.map(
            "SELECT o.id FROM orgs o
             WHERE o.id IN (SELECT g.org_id FROM org_groups g WHERE g.name = ?1) OR ?1 IS NULL
             ORDER BY o.name_key",
            args![group],
            |r| r.get(0),
        )?;
        ids.into_iter()
            .map(|id| org_by_id_tx(&self.db, id))
            .collect()
    }

    /// Changes whether the organization stays anonymous in relayed mail.
    pub fn set_org_anonymous(&mut self, org_id: i64, on: bool) -> Result<(), StoreError> {
        self.db.write(|db| {
            db.execute(
                "UPDATE orgs SET anonymous = ?2 WHERE id = ?1",
                args![org_id, on],
            )?;
            Ok(())
        })
    }

    /// Puts the organization into (or takes it out of) groups.
    pub fn change_org_groups(
        &mut self,
        org_id: i64,
        add: &[String],
        remove: &[String],
    ) -> Result<(), StoreError> {
        self.db.write(|db| {
            for g in add {
                add_group_tx(db, org_id, g)?;
            }
            for g in remove {
                db.execute(
                    "DELETE FROM org_groups WHERE org_id = ?1 AND name = ?2",
                    args![org_id, group_key(g)?],
                )?;
            }
            Ok(())
        })
    }

    /// Adds a contact to an organization (nothing when it is one already) and to every open
    /// case the organization takes part in. Returns the contact and the cases it joined now.
    pub fn add_org_contact(
        &mut self,
        org_id: i64,
        address: &str,
        now: DateTime<Utc>,
    ) -> Result<(OrgContact, Vec<Thread>), StoreError> {
        self.db.write(|db| {
            let contact_id = org_contact_tx(db, org_id, address, &time_text(now))?;
            let address = normalize_address(address)?;
            let cases: Vec<(i64, i64)> = db.map(
                "SELECT p.id, p.thread_id FROM participants p JOIN threads t ON t.id = p.thread_id
                 WHERE p.org_id = ?1 AND t.kind = 'case' AND t.status = 'open'
                 ORDER BY p.thread_id",
                args![org_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut joined = Vec::new();
            for (participant_id, thread_id) in cases {
                let n = db.execute(
                    "INSERT INTO contacts (participant_id, address, org_contact_id) VALUES (?1, ?2, ?3)
                     ON CONFLICT (participant_id, address) DO NOTHING",
                    args![participant_id, address, contact_id],
                )?;
                if n > 0 {
                    joined.push(thread_by_id_tx(db, thread_id)?);
                }
            }
            let contact = org_contact_by_id_tx(db, contact_id)?;
            Ok((contact, joined))
        })
    }

    /// The organization's contacts, by address.
    pub fn org_contacts(&self, org_id: i64) -> Result<Vec<OrgContact>, StoreError> {
        let ids: Vec<i64> = self.db.map(
            "SELECT id FROM org_contacts WHERE org_id = ?1 ORDER BY address",
            args![org_id],
            |r| r.get(0),
        )?;
        ids.into_iter()
            .map(|id| org_contact_by_id_tx(&self.db, id))
            .collect()
    }

    /// Organizations that have `address` as a contact, oldest first.
    pub fn orgs_of_address(&self, address: &str) -> Result<Vec<Org>, StoreError> {
        let ids: Vec<i64> = self.db.map(
            "SELECT DISTINCT org_id FROM org_contacts WHERE address = ?1 ORDER BY org_id",
            args![address.trim().to_lowercase()],
            |r| r.get(0),
        )?;
        ids.into_iter()
            .map(|id| org_by_id_tx(&self.db, id))
            .collect()
    }

    /// Binds a key to the organization, and to its contact `address` when given (the
    /// contact must exist). Binding again changes nothing.
    pub fn bind_org_key(
        &mut self,
        org_id: i64,
        fingerprint: &str,
        address: Option<&str>,
    ) -> Result<(), StoreError> {
        let fpr = crate::keyring::normalize_fingerprint(fingerprint);
        let address = address
            .map(|a| Ok::<_, StoreError>((a, normalize_address(a)?)))
            .transpose()?;
        self.db.write(|db| {
            org_key_tx(db, org_id, &fpr)?;
            if let Some((a, normalized)) = &address {
                let contact: i64 = db
                    .opt(
                        "SELECT id FROM org_contacts WHERE org_id = ?1 AND address = ?2",
                        args![org_id, normalized],
                    )?
                    .ok_or_else(|| {
                        StoreError::NotFound(format!("{a} is not a contact of this organization"))
                    })?;
                contact_key_tx(db, contact, &fpr)?;
            }
            Ok(())
        })
    }

    /// Fingerprints of the keys bound to the organization (its own and its contacts').
    pub fn org_keys(&self, org_id: i64) -> Result<Vec<String>, StoreError> {
        self.db.map(
            "SELECT fingerprint FROM org_keys WHERE org_id = ?1 ORDER BY added_at, fingerprint",
            args![org_id],
            |r| r.get(0),
        )
    }

    /// Organizations that hold key `fingerprint` (primary, hex).
    pub fn orgs_with_key(&self, fingerprint: &str) -> Result<Vec<Org>, StoreError> {
        let ids: Vec<i64> = self.db.map(
            "SELECT org_id FROM org_keys WHERE fingerprint = ?1 ORDER BY org_id",
            args![crate::keyring::normalize_fingerprint(fingerprint)],
            |r| r.get(0),
        )?;
        ids.into_iter()
            .map(|id| org_by_id_tx(&self.db, id))
            .collect()
    }

    /// The names of the organizations a key is bound to, as [`Store::orgs_with_key`] orders
    /// them: one statement, for routing, which reads them for each signed vendor message.
    pub fn org_names_with_key(&self, fingerprint: &str) -> Result<Vec<String>, StoreError> {
        self.db.map(
            "SELECT o.name FROM org_keys k JOIN orgs o ON o.id = k.org_id
             WHERE k.fingerprint = ?1 ORDER BY k.org_id",
            args![crate::keyring::normalize_fingerprint(fingerprint)],
            |r| r.get(0),
        )
    }

    /// An organization's name (what [`Store::org_by_id`] reads with its groups).
    pub fn org_name(&self, id: i64) -> Result<String, StoreError> {
        self.db
            .opt("SELECT name FROM orgs WHERE id = ?1", args![id])?
            .ok_or_else(|| StoreError::NotFound(format!("no organization with id {id}")))
    }

    /// Threads the organization takes part in, oldest first.
    pub fn org_threads(&self, org_id: i64) -> Result<Vec<OrgThread>, StoreError> {
        let rows: Vec<(i64, String)> = self.db.map(
            "SELECT p.thread_id, p.role FROM participants p WHERE p.org_id = ?1
             ORDER BY p.thread_id",
            args![org_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows.into_iter()
            .map(|(id, role)| {
                Ok(OrgThread {
                    thread: thread_by_id_tx(&self.db, id)?,
                    role,
                })
            })
            .collect()
    }

    /// Makes the organization a participant of the thread with ALL its contacts (their keys
    /// come with them). Returns the thread's contacts of that organization.
    pub fn join_thread(
        &mut self,
        thread_id: i64,
        org_id: i64,
        role: &str,
    ) -> Result<Vec<super::Contact>, StoreError> {
        let participant_id = self.db.write(|db| {
            let participant_id = participant_tx(db, thread_id, org_id, role)?;
            db.execute(
                "INSERT INTO contacts (participant_id, address, org_contact_id)
                 SELECT ?1, oc.address, oc.id FROM org_contacts oc WHERE oc.org_id = ?2
                 ON CONFLICT (participant_id, address) DO NOTHING",
                args![participant_id, org_id],
            )?;
            Ok(participant_id)
        })?;
        Ok(self
            .contacts(thread_id)?
            .into_iter()
            .filter(|c| c.participant_id == participant_id)
            .collect())
    }
}

fn add_group_tx(db: &Db, org_id: i64, group: &str) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO org_groups (org_id, name) VALUES (?1, ?2) ON CONFLICT (org_id, name) DO NOTHING",
        args![org_id, group_key(group)?],
    )?;
    Ok(())
}

fn org_by_id_tx(db: &Db, id: i64) -> Result<Org, StoreError> {
    let r = db
        .row(
            "SELECT name, anonymous, created_at FROM orgs WHERE id = ?1",
            args![id],
        )?
        .ok_or_else(|| StoreError::NotFound(format!("no organization with id {id}")))?;
    let groups = db.map(
        "SELECT name FROM org_groups WHERE org_id = ?1 ORDER BY name",
        args![id],
        |r| r.get(0),
    )?;
    Ok(Org {
        id,
        name: r.get(0)?,
        anonymous: r.get(1)?,
        created_at: r.get(2)?,
        groups,
    })
}

fn org_contact_by_id_tx(db: &Db, id: i64) -> Result<OrgContact, StoreError> {
    let r = db
        .row(
            "SELECT org_id, address, created_at FROM org_contacts WHERE id = ?1",
            args![id],
        )?
        .ok_or_else(|| StoreError::NotFound(format!("no organization contact {id}")))?;
    Ok(OrgContact {
        id,
        org_id: r.get(0)?,
        address: r.get(1)?,
        created_at: r.get(2)?,
        key_fingerprints: contact_keys_tx(db, id)?,
    })
}

/// Keys bound to a directory contact, oldest binding first.
pub(super) fn contact_keys_tx(db: &Db, contact_id: i64) -> Result<Vec<String>, StoreError> {
    db.map(
        "SELECT fingerprint FROM org_contact_keys WHERE contact_id = ?1 ORDER BY id",
        args![contact_id],
        |r| r.get(0),
    )
}

/// The organization named `name` (any case), created when missing: analysts name
/// organizations (never mail; see [`sender_org_tx`]).
pub(super) fn org_named_tx(db: &Db, name: &str) -> Result<i64, StoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::Invalid("the organization name is empty".into()));
    }
    db.execute(
        "INSERT INTO orgs (name, name_key, anonymous, created_at) VALUES (?1, ?2, 0, ?3)
         ON CONFLICT (name_key) DO NOTHING",
        args![name, name_key(name), now_text()],
    )?;
    db.one(
        "SELECT id FROM orgs WHERE name_key = ?1",
        args![name_key(name)],
    )
}

/// An organization [`sender_org_tx`] found or made for a sender.
pub(super) struct SenderOrg {
    pub id: i64,
    pub name: String,
    /// The sender's directory contact in it, when it is one already.
    pub contact: Option<i64>,
}

/// The organization a sender the pipeline adds to a new thread belongs to: one whose contact
/// the address already is (preferring the one named `hint`), else a new organization named
/// after the address — "Display Name <addr>" or "addr" — never one chosen by the name the
/// mail claims. With its name and, when the address is its contact already, that directory
/// contact: what the new thread's participant and contact are made from, not read again.
pub(super) fn sender_org_tx(db: &Db, hint: &str, address: &str) -> Result<SenderOrg, StoreError> {
    let address = normalize_address(address)?;
    let known: Vec<(String, SenderOrg)> = db.map(
        "SELECT o.id, o.name_key, o.name, oc.id FROM org_contacts oc JOIN orgs o ON o.id = oc.org_id
         WHERE oc.address = ?1 ORDER BY o.id",
        args![address],
        |r| {
            Ok((
                r.get(1)?,
                SenderOrg {
                    id: r.get(0)?,
                    name: r.get(2)?,
                    contact: Some(r.get(3)?),
                },
            ))
        },
    )?;
    let hint_key = name_key(hint);
    let pick = known.iter().position(|(k, _)| *k == hint_key).unwrap_or(0);
    if let Some((_, org)) = known.into_iter().nth(pick) {
        return Ok(org);
    }
    let hint = hint.trim();
    let base = if hint.is_empty() || hint.eq_ignore_ascii_case(&address) {
        address.clone()
    } else {
        // Control characters and angle brackets from a display name stay out of the name.
        let clean: String = hint
            .chars()
            .filter(|c| !c.is_control() && !matches!(c, '<' | '>'))
            .take(100)
            .collect();
        format!("{} <{address}>", clean.trim())
    };
    // The name may be taken by an organization this address is not a contact of (an analyst
    // chose it); then a numbered one. Bounded: at most 100 tries.
    for n in 1..=100 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base} ({n})")
        };
        let id: Option<i64> = db.insert(
            "INSERT INTO orgs (name, name_key, anonymous, created_at) VALUES (?1, ?2, 0, ?3)
             ON CONFLICT (name_key) DO NOTHING",
            args![name, name_key(&name), now_text()],
        )?;
        if let Some(id) = id {
            return Ok(SenderOrg {
                id,
                name,
                contact: None,
            });
        }
    }
    Err(StoreError::Conflict(format!(
        "no free organization name for {address}"
    )))
}

/// The directory contact `address` of `org_id`, created when missing.
pub(super) fn org_contact_tx(
    db: &Db,
    org_id: i64,
    address: &str,
    now: &str,
) -> Result<i64, StoreError> {
    let address = normalize_address(address)?;
    // Looked up first: most mail comes from addresses the directory holds already, and then
    // this is one statement, not two.
    if let Some(id) = db.opt(
        "SELECT id FROM org_contacts WHERE org_id = ?1 AND address = ?2",
        args![org_id, address],
    )? {
        return Ok(id);
    }
    db.execute(
        "INSERT INTO org_contacts (org_id, address, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (org_id, address) DO NOTHING",
        args![org_id, address, now],
    )?;
    db.one(
        "SELECT id FROM org_contacts WHERE org_id = ?1 AND address = ?2",
        args![org_id, address],
    )
}

/// The participant row of `org_id` in the thread, created (named as the directory names the
/// organization) when missing.
pub(super) fn participant_tx(
    db: &Db,
    thread_id: i64,
    org_id: i64,
    role: &str,
) -> Result<i64, StoreError> {
    if let Some(id) = db.opt(
        "SELECT id FROM participants WHERE thread_id = ?1 AND org_id = ?2",
        args![thread_id, org_id],
    )? {
        return Ok(id);
    }
    let name: String = db.one("SELECT name FROM orgs WHERE id = ?1", args![org_id])?;
    let id: Option<i64> = db.insert(
        "INSERT INTO participants (thread_id, org, role, org_id) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (thread_id, org) DO NOTHING",
        args![thread_id, name, role, org_id],
    )?;
    id.ok_or_else(|| {
        StoreError::Conflict(format!(
            "the thread already has a participant named {name:?} from another organization; see `casegate show`"
        ))
    })
}

/// [`participant_tx`] in a thread made in this transaction: it has none yet. `org` is the
/// sender's organization as [`sender_org_tx`] read or made it in this transaction.
pub(super) fn first_participant_tx(
    db: &Db,
    thread_id: i64,
    org: &SenderOrg,
    role: &str,
) -> Result<i64, StoreError> {
    db.insert_new(
        "INSERT INTO participants (thread_id, org, role, org_id) VALUES (?1, ?2, ?3, ?4)",
        args![thread_id, org.name, role, org.id],
    )
}

/// Binds a key to an organization; `true` (and the keys generation bumped, so running
/// pipelines and senders reload) when it was not bound before.
pub(super) fn org_key_tx(db: &Db, org_id: i64, fpr: &str) -> Result<bool, StoreError> {
    let n = db.execute(
        "INSERT INTO org_keys (org_id, fingerprint, added_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (org_id, fingerprint) DO NOTHING",
        args![org_id, fpr, now_text()],
    )?;
    if n > 0 {
        super::bump_keys_tx(db)?;
    }
    Ok(n > 0)
}

pub(super) fn contact_key_tx(db: &Db, contact_id: i64, fpr: &str) -> Result<bool, StoreError> {
    let n = db.execute(
        "INSERT INTO org_contact_keys (contact_id, fingerprint) VALUES (?1, ?2)
         ON CONFLICT (contact_id, fingerprint) DO NOTHING",
        args![contact_id, fpr],
    )?;
    if n > 0 {
        super::bump_keys_tx(db)?;
    }
    Ok(n > 0)
}
