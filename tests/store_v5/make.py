#!/usr/bin/env python3
"""Writes store-v5.sql: a store as casegate's last release (commit 3c97fad, schema v5) made it.

The schema is the release's own migration text, read from git (`git show 3c97fad:...`), run in
order; the rows are what that release's code wrote for participants, contacts and keys
(addresses lower-case, fingerprints upper-case, a promoted report's contacts and keys copied
to its case, a new reporter named after the From display name). Run from the repository root:

    python3 tests/store_v5/make.py > tests/store_v5/store-v5.sql
"""
import re
import sqlite3
import subprocess
import sys

RELEASE = "3c97fad"


def const(path, name):
    src = subprocess.run(["git", "show", f"{RELEASE}:{path}"], check=True,
                         capture_output=True, text=True).stdout
    m = re.search(name + r': &str = (r#"(.*?)"#|"(.*?)");', src, re.S)
    return m.group(2) if m.group(2) is not None else m.group(3)


MIGRATIONS = [
    const("src/store/schema.rs", "CORE"),
    const("src/store/mailbox.rs", "MIGRATION"),
    const("src/store/outbox.rs", "MIGRATION"),
    const("src/store/schema.rs", "PENDING_ACKS"),
    const("src/store/schema.rs", "SIGNATURE_CACHE"),
]

db = sqlite3.connect(":memory:")
for sql in MIGRATIONS:
    db.executescript(sql)
db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

K1 = "A" * 40  # FooCorp PSIRT
K2 = "B" * 40  # BarSoft
K3 = "C" * 40  # Rita (reporter, key sent with her report)
K4 = "D" * 40  # the stranger who called himself "FooCorp"
K5 = "E" * 40  # FooCorp PSIRT's second key, bound in one case only
for fpr, uid in [(K1, "FooCorp PSIRT <psirt@foocorp.example>"),
                 (K2, "BarSoft Security <security@barsoft.example>"),
                 (K3, "Rita Reporter <rita@example.test>"),
                 (K4, "FooCorp <x@evil.example>"),
                 (K5, "FooCorp PSIRT 2027 <psirt@foocorp.example>")]:
    db.execute("INSERT INTO certs VALUES (?, ?, ?, ?)",
               (fpr, b"\x99public-cert-" + fpr.encode(), f'["{uid}"]', "2025-11-01T09:00:00Z"))

threads = [
    (1, "VU#409117", "case", None, "Buffer overflow in FooRouter", "open", "2025-11-01T10:00:00Z", None),
    (2, "VRF#25-11-BKQTZ", "report", None, "Stack overflow in WidgetOS", "promoted", "2025-11-02T10:00:00Z", 3),
    (3, "VU#123456", "case", None, "Stack overflow in WidgetOS", "open", "2025-11-03T10:00:00Z", None),
    (4, "VRF#25-11-CDFGH", "report", None, "Totally a vendor", "open", "2025-11-04T10:00:00Z", None),
    (5, "VU#555555", "case", None, "Second FooRouter bug", "open", "2025-11-05T10:00:00Z", None),
    (6, "General-1", "ticket", 1, "Question", "open", "2025-11-06T10:00:00Z", None),
]
for t in threads:
    db.execute("INSERT INTO threads (id, number, kind, ticket_seq, title, status, created_at, promoted_to)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", t)
db.execute("UPDATE threads SET require_signed_statements = 1 WHERE id = 1")

# (participant id, thread, org, role, [(contact id, address, [keys])])
participants = [
    (1, 1, "FooCorp", "vendor", [(1, "psirt@foocorp.example", [K1]), (2, "alice@foocorp.example", [])]),
    (2, 1, "BarSoft", "vendor", [(3, "security@barsoft.example", [K2])]),
    (3, 1, "Reporter", "reporter", [(4, "rita@example.test", [K3])]),
    (4, 2, "Rita Reporter", "reporter", [(5, "rita@example.test", [K3])]),
    (5, 3, "Rita Reporter", "reporter", [(6, "rita@example.test", [K3])]),  # copied by promote
    (6, 3, "FooCorp", "vendor", [(7, "psirt@foocorp.example", [K1])]),
    (7, 4, "FooCorp", "reporter", [(8, "x@evil.example", [K4])]),  # "From: FooCorp <x@evil.example>"
    (8, 5, "foocorp", "vendor", [(9, "psirt@foocorp.example", [K5])]),
    (9, 6, "psirt@foocorp.example", "other", [(10, "psirt@foocorp.example", [])]),
]
for pid, tid, org, role, contacts in participants:
    db.execute("INSERT INTO participants (id, thread_id, org, role) VALUES (?, ?, ?, ?)", (pid, tid, org, role))
    for cid, addr, keys in contacts:
        db.execute("INSERT INTO contacts (id, participant_id, address) VALUES (?, ?, ?)", (cid, pid, addr))
        for k in keys:
            db.execute("INSERT INTO contact_keys (contact_id, fingerprint) VALUES (?, ?)", (cid, k))

msg = ("INSERT INTO messages (id, sha256, message_id, raw, direction, received_at, date_header, sender,"
       " subject, thread_id, outcome, reason, encrypted, signature, signer, automatic, flags, source)"
       " VALUES (?, ?, ?, ?, 'in', ?, NULL, ?, ?, ?, ?, ?, 0, ?, ?, 0, '', ?)")
db.execute(msg, (1, "1" * 64, "<v1@foocorp.example>", b"From: psirt@foocorp.example\r\n\r\nhi\r\n",
                 "2025-11-01T12:00:00Z", "psirt@foocorp.example", "Re: VU#409117", 1, "routed",
                 "tracking number", "good", K1, "imap://cert/INBOX;UIDVALIDITY=7/;UID=1"))
db.execute(msg, (2, "2" * 64, "<r1@evil.example>", b"From: FooCorp <x@evil.example>\r\n\r\nreport\r\n",
                 "2025-11-04T10:00:00Z", "x@evil.example", "Totally a vendor", 4, "routed",
                 "new report", "none", None, "imap://cert/INBOX;UIDVALIDITY=7/;UID=2"))
db.execute("INSERT INTO pending_acks VALUES (4, 2, '2025-11-04T10:00:00Z')")
db.execute("INSERT INTO mailbox_state VALUES ('cert', 'INBOX', 7, 2, '2025-11-04T10:00:00Z')")
db.execute("INSERT INTO outbox_notices (id, thread_id, sender, in_reply_to, automatic, date_unix,"
           " signer_fingerprint, inner, created_at) VALUES (1, 1, 'cert@example.test', NULL, 0,"
           " 1761998400, 'F0F0', X'9000', '2025-11-01T11:00:00Z')")
db.execute("INSERT INTO outbox (id, notice_id, thread_id, kind, sender, address, org, message_id, raw,"
           " key_fingerprint, status, attempts, created_at, updated_at, sent_at) VALUES (1, 1, 1,"
           " 'notice', 'cert@example.test', 'psirt@foocorp.example', 'FooCorp', '<n1@example.test>',"
           " X'00', ?, 'sent', 1, '2025-11-01T11:00:00Z', '2025-11-01T11:00:05Z', '2025-11-01T11:00:05Z')", (K1,))
db.execute("INSERT INTO outbox (id, notice_id, thread_id, kind, sender, address, org, status, reason,"
           " created_at, updated_at) VALUES (2, 1, 1, 'notice', 'cert@example.test',"
           " 'alice@foocorp.example', 'FooCorp', 'held', 'no valid encryption key: no key bound to"
           " this contact', '2025-11-01T11:00:00Z', '2025-11-01T11:00:00Z')")
db.execute("INSERT INTO sent_message_ids VALUES ('<n1@example.test>', 1, '2025-11-01T11:00:00Z')")
db.execute("INSERT INTO signature_cache VALUES (X'00112233')")
db.commit()

print("-- A casegate store of schema v5 (release 3c97fad), made by tests/store_v5/make.py.")
print("PRAGMA foreign_keys = OFF;")
print(f"PRAGMA user_version = {len(MIGRATIONS)};")
for line in db.iterdump():
    print(line)
