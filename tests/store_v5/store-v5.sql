-- A casegate store of schema v5 (release 3c97fad), made by tests/store_v5/make.py.
PRAGMA foreign_keys = OFF;
PRAGMA user_version = 5;
BEGIN TRANSACTION;
CREATE TABLE certs (
    fingerprint TEXT PRIMARY KEY,
    public_cert BLOB NOT NULL,
    user_ids    TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
INSERT INTO "certs" VALUES('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',X'997075626C69632D636572742D41414141414141414141414141414141414141414141414141414141414141414141414141414141','["FooCorp PSIRT <psirt@foocorp.example>"]','2025-11-01T09:00:00Z');
INSERT INTO "certs" VALUES('BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB',X'997075626C69632D636572742D42424242424242424242424242424242424242424242424242424242424242424242424242424242','["BarSoft Security <security@barsoft.example>"]','2025-11-01T09:00:00Z');
INSERT INTO "certs" VALUES('CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC',X'997075626C69632D636572742D43434343434343434343434343434343434343434343434343434343434343434343434343434343','["Rita Reporter <rita@example.test>"]','2025-11-01T09:00:00Z');
INSERT INTO "certs" VALUES('DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD',X'997075626C69632D636572742D44444444444444444444444444444444444444444444444444444444444444444444444444444444','["FooCorp <x@evil.example>"]','2025-11-01T09:00:00Z');
INSERT INTO "certs" VALUES('EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE',X'997075626C69632D636572742D45454545454545454545454545454545454545454545454545454545454545454545454545454545','["FooCorp PSIRT 2027 <psirt@foocorp.example>"]','2025-11-01T09:00:00Z');
CREATE TABLE contact_keys (
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (contact_id, fingerprint)
);
INSERT INTO "contact_keys" VALUES(1,'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
INSERT INTO "contact_keys" VALUES(3,'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB');
INSERT INTO "contact_keys" VALUES(4,'CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC');
INSERT INTO "contact_keys" VALUES(5,'CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC');
INSERT INTO "contact_keys" VALUES(6,'CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC');
INSERT INTO "contact_keys" VALUES(7,'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
INSERT INTO "contact_keys" VALUES(8,'DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD');
INSERT INTO "contact_keys" VALUES(9,'EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE');
CREATE TABLE contacts (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants(id),
    address        TEXT NOT NULL,
    UNIQUE (participant_id, address)
);
INSERT INTO "contacts" VALUES(1,1,'psirt@foocorp.example');
INSERT INTO "contacts" VALUES(2,1,'alice@foocorp.example');
INSERT INTO "contacts" VALUES(3,2,'security@barsoft.example');
INSERT INTO "contacts" VALUES(4,3,'rita@example.test');
INSERT INTO "contacts" VALUES(5,4,'rita@example.test');
INSERT INTO "contacts" VALUES(6,5,'rita@example.test');
INSERT INTO "contacts" VALUES(7,6,'psirt@foocorp.example');
INSERT INTO "contacts" VALUES(8,7,'x@evil.example');
INSERT INTO "contacts" VALUES(9,8,'psirt@foocorp.example');
INSERT INTO "contacts" VALUES(10,9,'psirt@foocorp.example');
CREATE TABLE mailbox_state (
    account     TEXT NOT NULL,
    mailbox     TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (account, mailbox)
);
INSERT INTO "mailbox_state" VALUES('cert','INBOX',7,2,'2025-11-04T10:00:00Z');
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
INSERT INTO "messages" VALUES(1,'1111111111111111111111111111111111111111111111111111111111111111','<v1@foocorp.example>',X'46726F6D3A20707369727440666F6F636F72702E6578616D706C650D0A0D0A68690D0A','in','2025-11-01T12:00:00Z',NULL,'psirt@foocorp.example','Re: VU#409117',1,'routed','tracking number',0,NULL,'good','AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',NULL,0,'','imap://cert/INBOX;UIDVALIDITY=7/;UID=1');
INSERT INTO "messages" VALUES(2,'2222222222222222222222222222222222222222222222222222222222222222','<r1@evil.example>',X'46726F6D3A20466F6F436F7270203C78406576696C2E6578616D706C653E0D0A0D0A7265706F72740D0A','in','2025-11-04T10:00:00Z',NULL,'x@evil.example','Totally a vendor',4,'routed','new report',0,NULL,'none',NULL,NULL,0,'','imap://cert/INBOX;UIDVALIDITY=7/;UID=2');
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    notice_id       INTEGER REFERENCES outbox_notices(id),
    thread_id       INTEGER NOT NULL REFERENCES threads(id),
    kind            TEXT NOT NULL CHECK (kind IN ('notice', 'stub')),
    sender          TEXT NOT NULL,
    address         TEXT NOT NULL,
    org             TEXT NOT NULL,
    message_id      TEXT,
    raw             BLOB,
    key_fingerprint TEXT,
    status          TEXT NOT NULL
                    CHECK (status IN ('queued', 'sent', 'retrying', 'held', 'dead', 'bounced')),
    reason          TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_reply      TEXT,
    next_attempt_at TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT,
    CHECK (status = 'held' OR (raw IS NOT NULL AND message_id IS NOT NULL))
);
INSERT INTO "outbox" VALUES(1,1,1,'notice','cert@example.test','psirt@foocorp.example','FooCorp','<n1@example.test>',X'00','AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA','sent',NULL,1,NULL,NULL,'2025-11-01T11:00:00Z','2025-11-01T11:00:05Z','2025-11-01T11:00:05Z');
INSERT INTO "outbox" VALUES(2,1,1,'notice','cert@example.test','alice@foocorp.example','FooCorp',NULL,NULL,NULL,'held','no valid encryption key: no key bound to this contact',0,NULL,NULL,'2025-11-01T11:00:00Z','2025-11-01T11:00:00Z',NULL);
CREATE TABLE outbox_attempts (
    id        INTEGER PRIMARY KEY,
    outbox_id INTEGER NOT NULL REFERENCES outbox(id),
    at        TEXT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('accepted', 'temporary', 'permanent')),
    reply     TEXT NOT NULL
);
CREATE TABLE outbox_notices (
    id                 INTEGER PRIMARY KEY,
    thread_id          INTEGER NOT NULL REFERENCES threads(id),
    sender             TEXT NOT NULL,
    in_reply_to        TEXT,
    automatic          INTEGER NOT NULL DEFAULT 0,
    date_unix          INTEGER NOT NULL,
    signer_fingerprint TEXT NOT NULL,
    inner              BLOB NOT NULL,
    created_at         TEXT NOT NULL
);
INSERT INTO "outbox_notices" VALUES(1,1,'cert@example.test',NULL,0,1761998400,'F0F0',X'9000','2025-11-01T11:00:00Z');
CREATE TABLE participants (
    id        INTEGER PRIMARY KEY,
    thread_id INTEGER NOT NULL REFERENCES threads(id),
    org       TEXT NOT NULL,
    role      TEXT NOT NULL CHECK (role IN ('vendor', 'reporter', 'coordinator', 'other')),
    UNIQUE (thread_id, org)
);
INSERT INTO "participants" VALUES(1,1,'FooCorp','vendor');
INSERT INTO "participants" VALUES(2,1,'BarSoft','vendor');
INSERT INTO "participants" VALUES(3,1,'Reporter','reporter');
INSERT INTO "participants" VALUES(4,2,'Rita Reporter','reporter');
INSERT INTO "participants" VALUES(5,3,'Rita Reporter','reporter');
INSERT INTO "participants" VALUES(6,3,'FooCorp','vendor');
INSERT INTO "participants" VALUES(7,4,'FooCorp','reporter');
INSERT INTO "participants" VALUES(8,5,'foocorp','vendor');
INSERT INTO "participants" VALUES(9,6,'psirt@foocorp.example','other');
CREATE TABLE pending_acks (
    thread_id   INTEGER PRIMARY KEY REFERENCES threads(id),
    message_ref INTEGER NOT NULL REFERENCES messages(id),
    created_at  TEXT NOT NULL
);
INSERT INTO "pending_acks" VALUES(4,2,'2025-11-04T10:00:00Z');
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
INSERT INTO "sent_message_ids" VALUES('<n1@example.test>',1,'2025-11-01T11:00:00Z');
CREATE TABLE signature_cache (
    entry BLOB PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO "signature_cache" VALUES(X'00112233');
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
INSERT INTO "threads" VALUES(1,'VU#409117','case',NULL,'Buffer overflow in FooRouter','open','2025-11-01T10:00:00Z',NULL,1,NULL);
INSERT INTO "threads" VALUES(2,'VRF#25-11-BKQTZ','report',NULL,'Stack overflow in WidgetOS','promoted','2025-11-02T10:00:00Z',3,0,NULL);
INSERT INTO "threads" VALUES(3,'VU#123456','case',NULL,'Stack overflow in WidgetOS','open','2025-11-03T10:00:00Z',NULL,0,NULL);
INSERT INTO "threads" VALUES(4,'VRF#25-11-CDFGH','report',NULL,'Totally a vendor','open','2025-11-04T10:00:00Z',NULL,0,NULL);
INSERT INTO "threads" VALUES(5,'VU#555555','case',NULL,'Second FooRouter bug','open','2025-11-05T10:00:00Z',NULL,0,NULL);
INSERT INTO "threads" VALUES(6,'General-1','ticket',1,'Question','open','2025-11-06T10:00:00Z',NULL,0,NULL);
CREATE TABLE triage (
    message_ref   INTEGER PRIMARY KEY REFERENCES messages(id),
    reason        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    assigned_at   TEXT,
    assigned_by   TEXT,
    assigned_thread INTEGER REFERENCES threads(id)
);
CREATE INDEX contacts_address ON contacts(address);
CREATE INDEX messages_message_id ON messages(message_id);
CREATE INDEX messages_thread ON messages(thread_id);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_thread ON outbox(thread_id);
CREATE UNIQUE INDEX outbox_message_id ON outbox(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX outbox_attempts_copy ON outbox_attempts(outbox_id);
COMMIT;
