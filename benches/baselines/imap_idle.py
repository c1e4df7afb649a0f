#!/usr/bin/env python3
"""Baseline for the IDLE latency of benches/imap_sync.rs: how long the server itself takes to
tell an IDLE client about a new message, with nothing else in the way.

A raw IMAP client (no library) SELECTs the mailbox and IDLEs; a message is dropped into the
Maildir (atomic rename, as a local delivery agent does); the time until the server's EXISTS
line is measured. Dovecot batches change notifications, so this is not zero.
Usage: imap_idle.py HOST PORT USER PASSWORD_FILE MAILDIR SAMPLES   prints one JSON line
"""
import json
import os
import socket
import sys
import time

host, port, user, password_file, maildir, samples = sys.argv[1:7]
password = open(password_file).read().rstrip("\r\n")
owner = os.stat(maildir)

s = socket.create_connection((host, int(port)))
f = s.makefile("rb")


def command(tag, text):
    s.sendall(tag + b" " + text + b"\r\n")
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("connection closed")
        if line.startswith(tag + b" "):
            if not line.startswith(tag + b" OK"):
                raise SystemExit(line.decode(errors="replace"))
            return


f.readline()  # greeting
command(b"a", b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))
command(b"b", b"SELECT INBOX")
latencies = []
for i in range(int(samples)):
    s.sendall(b"c IDLE\r\n")
    f.readline()  # + idling
    time.sleep(0.05)
    name = "%d.M%dP%d.idle-baseline" % (time.time(), i, os.getpid())
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as out:
        out.write(b"Subject: idle baseline %d\r\n\r\nbody\r\n" % i)
    os.chown(tmp, owner.st_uid, owner.st_gid)
    t0 = time.monotonic()
    os.rename(tmp, os.path.join(maildir, "new", name))
    while b"EXISTS" not in f.readline():
        pass
    latencies.append(time.monotonic() - t0)
    s.sendall(b"DONE\r\n")
    while not f.readline().startswith(b"c "):
        pass
s.sendall(b"z LOGOUT\r\n")
latencies.sort()
pick = lambda p: latencies[min(len(latencies) - 1, round((len(latencies) - 1) * p))]
print(json.dumps({"samples": len(latencies), "p50_ms": pick(0.5) * 1e3, "p99_ms": pick(0.99) * 1e3}))
