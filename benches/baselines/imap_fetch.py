#!/usr/bin/env python3
"""Baseline for benches/imap_sync.rs: the plainest IMAP client that reads a whole mailbox.

Logs in, EXAMINEs the mailbox (read-only: nothing moves), and fetches every message body by UID
in batches, keeping nothing: no store, no parsing, no acknowledgement. Whatever casegate costs on
top of this is the price of exactly-once storage.
Usage: imap_fetch.py HOST PORT USER PASSWORD_FILE MAILBOX [BATCH]   prints one JSON line
"""
import imaplib
import json
import sys
import time

host, port, user, password_file, mailbox = sys.argv[1:6]
batch = int(sys.argv[6]) if len(sys.argv) > 6 else 100
password = open(password_file).read().rstrip("\r\n")

start = time.monotonic()
imap = imaplib.IMAP4(host, int(port))
imap.login(user, password)
typ, _ = imap.select(mailbox, readonly=True)
assert typ == "OK", typ
typ, data = imap.uid("SEARCH", None, "ALL")
uids = data[0].split()
messages = size = 0
for i in range(0, len(uids), batch):
    chunk = b",".join(uids[i:i + batch]).decode()
    typ, data = imap.uid("FETCH", chunk, "(BODY.PEEK[])")
    assert typ == "OK", typ
    for part in data:
        if isinstance(part, tuple):
            messages += 1
            size += len(part[1])
imap.logout()
print(json.dumps({"messages": messages, "bytes": size, "seconds": time.monotonic() - start}))
