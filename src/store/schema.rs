//! Versioned migrations, applied in order on open. SQLite keeps the version in
//! `PRAGMA user_version`, PostgreSQL in the table `casegate_schema`. Never edit a released
//! migration: append a new one.
//!
//! Each migration is written once, for SQLite, with the column types INTEGER, TEXT and BLOB,
//! and runs on PostgreSQL after a mechanical translation ([`super::sql::postgres_ddl`]: INTEGER
//! → BIGINT, `INTEGER PRIMARY KEY` → identity, BLOB → BYTEA, ...). A statement only SQLite
//! needs (e.g. filling a new column from `rowid` in existing stores) ends its line with
//! `-- sqlite-only`. The rules: ARCHITECTURE.md, "Writing a migration";
//! `store::sql::tests::every_migration_is_portable` and
//! `store::tests::schemas_match_on_both_backends` check them.

/// Threads, participants, contacts, certificates, messages, triage, quarantine, sent IDs.
pub(super) const CORE: &str = r#"
CREATE TABLE threads (
    id            INTEGER PRIMARY KEY,
    number        TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('case', 'report', 'ticket')),
    ticket_seq    INTEGER UNIQUE,
    title         TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'open',
    created_at    TEXT NOT NULL,
    promoted_to   INTEGER REFERENCES threads(id),
    require_signed_statements INTEGER NOT NULL DEFAULT 0,
    publication_date TEXT
);
CREATE TABLE participants (
    id        INTEGER PRIMARY KEY,
    thread_id INTEGER NOT NULL REFERENCES threads(id),
    org       TEXT NOT NULL,
    role      TEXT NOT NULL CHECK (role IN ('vendor', 'reporter', 'coordinator', 'other')),
    UNIQUE (thread_id, org)
);
CREATE TABLE contacts (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants(id),
    address        TEXT NOT NULL,
    UNIQUE (participant_id, address)
);
CREATE INDEX contacts_address ON contacts(address);
CREATE TABLE certs (
    fingerprint TEXT PRIMARY KEY,
    public_cert BLOB NOT NULL,
    user_ids    TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE TABLE contact_keys (
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (contact_id, fingerprint)
);
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    sha256        TEXT NOT NULL UNIQUE,
    message_id    TEXT,
    raw           BLOB NOT NULL,
    direction     TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    received_at   TEXT NOT NULL,
    date_header   TEXT,
    sender        TEXT,
    subject       TEXT,
    thread_id     INTEGER REFERENCES threads(id),
    outcome       TEXT NOT NULL CHECK (outcome IN ('routed', 'triage', 'quarantine')),
    reason        TEXT NOT NULL,
    encrypted     INTEGER NOT NULL DEFAULT 0,
    encryption_note TEXT,
    signature     TEXT NOT NULL DEFAULT 'none',
    signer        TEXT,
    signature_reason TEXT,
    automatic     INTEGER NOT NULL DEFAULT 0,
    flags         TEXT NOT NULL DEFAULT '',
    source        TEXT NOT NULL
);
CREATE INDEX messages_message_id ON messages(message_id);
CREATE INDEX messages_thread ON messages(thread_id);
CREATE TABLE triage (
    message_ref   INTEGER PRIMARY KEY REFERENCES messages(id),
    reason        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    assigned_at   TEXT,
    assigned_by   TEXT,
    assigned_thread INTEGER REFERENCES threads(id)
);
CREATE TABLE quarantine (
    message_ref INTEGER PRIMARY KEY REFERENCES messages(id),
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE sent_message_ids (
    message_id TEXT PRIMARY KEY,
    thread_id  INTEGER NOT NULL REFERENCES threads(id),
    created_at TEXT NOT NULL
);
"#;

/// New reports whose acknowledgment is not queued yet: written in the report's own transaction,
/// removed once the acknowledgment is queued, so a crash in between repeats it, never loses it.
pub(super) const PENDING_ACKS: &str = "
CREATE TABLE pending_acks (
    thread_id   INTEGER PRIMARY KEY REFERENCES threads(id),
    message_ref INTEGER NOT NULL REFERENCES messages(id),
    created_at  TEXT NOT NULL
);
";

/// Sequoia's signature-verification cache entries (opaque 32-byte digests of signature, hash
/// and key), so one-shot commands need not re-verify every certificate's self-signatures.
pub(super) const SIGNATURE_CACHE: &str = "
CREATE TABLE signature_cache (
    entry BLOB PRIMARY KEY
) WITHOUT ROWID;
";

/// Several instances on one database: who watches which mailbox ([`super::lease`]). (Key
/// bindings keep their order in `org_contact_keys.id`; see [`super::orgs`].)
pub(super) const INSTANCES: &str = "
CREATE TABLE mailbox_leases (
    account    TEXT NOT NULL,
    mailbox    TEXT NOT NULL,
    owner      TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (account, mailbox)
);
";

/// Counters bumped in the same transaction as every change of their kind, so that a process
/// that keeps something in memory (the daemon's keyring) sees another process's change by
/// reading one row. `keys`: certificates stored or merged, keys bound to contacts.
pub(super) const GENERATIONS: &str = "
CREATE TABLE generations (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO generations (name, value) VALUES ('keys', 0);
";

/// Hostile mail: `inbound_attempts` counts, per Maildir file or IMAP message, the tries that
/// ended without a commit (a crash of the whole process included), so a message that keeps
/// failing is quarantined unread instead of holding up the mail behind it; the row goes in the
/// transaction that stores the message. `messages.raw_size` is set when `raw` holds only part
/// of the message (the head of one over `max_message_bytes`, or nothing of one that could not
/// be read): the size of the whole. NULL: `raw` is all of it.
pub(super) const INBOUND_ATTEMPTS: &str = "
CREATE TABLE inbound_attempts (
    source_key  TEXT PRIMARY KEY,
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    updated_at  TEXT NOT NULL
);
ALTER TABLE messages ADD COLUMN raw_size INTEGER;
";

/// Paged lists in received order (the triage queue, a thread's messages, the quarantine, see
/// `store::pages`): the order and the page come from an index alone, without reading the
/// messages themselves (their raw bytes). `messages_thread_received` serves every lookup by
/// thread that `messages_thread` did. A thread's summary (first and last notice) reads its
/// own sent Message-IDs, not all of them.
pub(super) const LIST_ORDER: &str = "
CREATE INDEX messages_received ON messages(received_at, id);
CREATE INDEX messages_thread_received ON messages(thread_id, received_at, id);
DROP INDEX messages_thread;
CREATE INDEX threads_promoted_to ON threads(promoted_to);
CREATE INDEX sent_message_ids_thread ON sent_message_ids(thread_id, created_at);
";

/// Indexes for what every inbound message asks of the store, so its cost does not grow with
/// the sender's history. Without them SQLite's planner (no statistics) looked a participant up
/// by organization (every participant of the sender's organization: all of them, in a
/// one-organization store) and sorted every contact of the sender to find the first; an
/// initial sync of 10,000 messages from one sender spent three quarters of its time there.
pub(super) const SENDER_LOOKUPS: &str = "
CREATE INDEX contacts_address_participant ON contacts(address, participant_id);
DROP INDEX contacts_address;
CREATE INDEX participants_thread_org ON participants(thread_id, org_id);
";

/// The keys a new report's reporter offered (attached, Autocrypt), recorded with the debt of its
/// acknowledgment in the report's own transaction, so the outbox that composes it later needs
/// neither the raw message nor its decryption. Public keys only, removed with the debt. A debt
/// recorded before this migration (`keys_recorded` 0) has its keys read again from the message.
pub(super) const PENDING_ACK_KEYS: &str = "
ALTER TABLE pending_acks ADD COLUMN keys_recorded INTEGER NOT NULL DEFAULT 0
    CHECK (keys_recorded IN (0, 1));
CREATE TABLE pending_ack_keys (
    id        INTEGER PRIMARY KEY,
    thread_id INTEGER NOT NULL REFERENCES pending_acks(thread_id),
    offered   BLOB NOT NULL
);
CREATE INDEX pending_ack_keys_thread ON pending_ack_keys(thread_id);
";

/// All migrations in order; index + 1 is the schema version.
pub(super) const MIGRATIONS: &[&str] = &[
    CORE,
    super::mailbox::MIGRATION,
    super::outbox::MIGRATION,
    PENDING_ACKS,
    SIGNATURE_CACHE,
    super::audit::MIGRATION,
    super::tokens::MIGRATION,
    super::outbox::CLAIMS,
    GENERATIONS,
    INBOUND_ATTEMPTS,
    super::trust::SENDER_AUTH,
    super::trust::KEY_CHANGES,
    super::orgs::MIGRATION,
    super::vendors::MIGRATION,
    super::relays::MIGRATION,
    INSTANCES,
    LIST_ORDER,
    SENDER_LOOKUPS,
    PENDING_ACK_KEYS,
];

#[cfg(test)]
mod tests {
    /// The migrations of every released schema, as released (fixtures/schema/: v5 is main at
    /// 3c97fad). A store made by a release applied exactly these; changing one would leave those
    /// stores different from new ones. Append a migration instead.
    const RELEASED: &[&str] = &[
        include_str!("../../fixtures/schema/v1.sql"),
        include_str!("../../fixtures/schema/v2.sql"),
        include_str!("../../fixtures/schema/v3.sql"),
        include_str!("../../fixtures/schema/v4.sql"),
        include_str!("../../fixtures/schema/v5.sql"),
    ];

    #[test]
    fn released_migrations_are_never_edited() {
        assert!(super::MIGRATIONS.len() >= RELEASED.len());
        for (i, (now, then)) in super::MIGRATIONS.iter().zip(RELEASED).enumerate() {
            assert_eq!(now, then, "migration {} (schema v{}) was edited", i, i + 1);
        }
    }
}
