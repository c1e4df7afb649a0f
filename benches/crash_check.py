#!/usr/bin/env python3
"""kill -9 during a large IMAP sync, then the mailbox and the store compared (issue 16's check).

Usage: benches/crash_check.py KEPT [--copies N] [--kills K] [--min S] [--max S] [--seed X]
KEPT: the directory `CASEGATE_BENCH_KEEP=1 ./run bench ingest_mixed` printed (its `maildir`,
`data-fresh` and `work`). Needs the release build (`target/release/casegate`).

Starts the project's Dovecot (tests/support/mail-servers) in a directory of its own, delivers
the kept corpus N times (10: 10,000 messages; each copy's Message-ID made unique) into one
INBOX, and starts `casegate serve` on a copy of `data-fresh` K times, killing it with SIGKILL
after a random S seconds each time. After every kill: nothing is in the processed folder that
is not in the store (no message acknowledged before its commit). Then one last `serve` runs
until the INBOX is empty and no acknowledgment is owed, and every delivered message must be
stored exactly once and in the processed folder exactly once, with no report acknowledged twice.
Prints what it found; exits 1 on any difference, keeping the mailbox and the store to look at
(removed after a clean run). Not a test of the suite (it takes a kept corpus
and a minute); `tests/imap_crash.rs` is that test, on 500 messages.
"""
import argparse
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(ROOT, "target", "release", "casegate")
USER = "crash@example.test"
MESSAGE_ID = re.compile(rb"(?im)^Message-ID:[ \t]*<([^>\r\n]+)>")

ap = argparse.ArgumentParser()
ap.add_argument("kept")
ap.add_argument("--copies", type=int, default=10)
ap.add_argument("--kills", type=int, default=10)
ap.add_argument("--min", type=float, default=0.05)
ap.add_argument("--max", type=float, default=0.6)
ap.add_argument("--seed", type=int, default=None)
args = ap.parse_args()
seed = args.seed if args.seed is not None else random.randrange(1 << 30)
rng = random.Random(seed)
for need in ("maildir", "data-fresh", "work"):
    if not os.path.isdir(os.path.join(args.kept, need)):
        sys.exit(f"crash_check: {args.kept}/{need} is missing: run CASEGATE_BENCH_KEEP=1 ./run bench ingest_mixed first")
if not os.access(BIN, os.X_OK):
    sys.exit(f"crash_check: {BIN} is missing: cargo build --release --locked")

# Dovecot's sockets need a short path, reachable by the dovecot user.
servers = tempfile.mkdtemp(prefix="cg-", dir="/tmp")
os.chmod(servers, 0o755)
out = subprocess.run([os.path.join(ROOT, "tests", "support", "mail-servers"), "start", servers],
                     env=dict(os.environ, MAIL_EXTRA_USERS=USER), capture_output=True, text=True)
if out.returncode != 0:
    sys.exit(f"crash_check: mail-servers did not start: {out.stderr.strip()}")
env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
port = env["MAIL_IMAP_PORT"]


def message_ids(folder):
    ids = []
    for sub in ("cur", "new"):
        d = os.path.join(folder, sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            try:
                with open(os.path.join(d, name), "rb") as f:
                    m = MESSAGE_ID.search(f.read(1 << 16))
            except FileNotFoundError:
                continue  # renamed by Dovecot meanwhile
            ids.append(m.group(1).decode() if m else None)
    return ids


def stored_ids(db):
    if not os.path.exists(db):
        return {}
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        rows = conn.execute("SELECT message_id, count(*) FROM messages WHERE direction = 'in' "
                            "GROUP BY message_id").fetchall()
        conn.close()
    except sqlite3.Error:
        return {}  # killed before the store was made
    return {r[0].strip("<>"): r[1] for r in rows if r[0]}


failures = []
try:
    # Deliver: the kept corpus, each copy with Message-IDs of its own.
    owner = os.stat(os.path.join(servers, "mail"))
    inbox = os.path.join(servers, "mail", USER, "Maildir")
    for p in (os.path.dirname(inbox), inbox, *(os.path.join(inbox, s) for s in ("cur", "new", "tmp"))):
        os.makedirs(p, exist_ok=True)
        os.chown(p, owner.st_uid, owner.st_gid)
    corpus = sorted(os.listdir(os.path.join(args.kept, "maildir", "new")))
    delivered = set()
    for k in range(args.copies):
        for i, name in enumerate(corpus):
            with open(os.path.join(args.kept, "maildir", "new", name), "rb") as f:
                raw = f.read()
            raw, n = MESSAGE_ID.subn(lambda m: b"Message-ID: <" + m.group(1) + b"." + str(k).encode() + b">",
                                     raw, count=1)
            if n != 1:
                sys.exit(f"crash_check: {name} has no Message-ID")
            delivered.add(MESSAGE_ID.search(raw).group(1).decode())
            file = f"{int(time.time())}.M{k}_{i}P{os.getpid()}.crash"
            tmp = os.path.join(inbox, "tmp", file)
            with open(tmp, "wb") as f:
                f.write(raw)
            os.chown(tmp, owner.st_uid, owner.st_gid)
            os.rename(tmp, os.path.join(inbox, "new", file))
    total = len(delivered)
    print(f"delivered {total} messages (seed {seed})", flush=True)

    data = os.path.join(servers, "data")
    shutil.copytree(os.path.join(args.kept, "data-fresh"), data)
    db = os.path.join(data, "casegate.sqlite")
    config = os.path.join(data, "crash.toml")
    with open(config, "w") as f:
        f.write(f"""[maildir]
enabled = false
[http]
enabled = false
[[imap]]
name = "crash"
host = "127.0.0.1"
port = {port}
tls = "none"
username = "{USER}"
password_file = "{env['MAIL_PASSWORD_FILE']}"
mailboxes = ["INBOX"]
processed_folder = "casegate/processed"
timeout_secs = 60
""")
    processed = os.path.join(inbox, ".casegate.processed")
    log = open(os.path.join(data, "serve.log"), "ab")

    def serve():
        return subprocess.Popen([BIN, "--config", config, "--data-dir", data, "serve"],
                                cwd=os.path.join(args.kept, "work"), stdout=subprocess.DEVNULL,
                                stderr=log, env=dict(os.environ, RUST_LOG="casegate=warn"))

    start = time.monotonic()
    in_window = 0
    for k in range(args.kills):
        child = serve()
        time.sleep(rng.uniform(args.min, args.max))
        child.send_signal(signal.SIGKILL)
        child.wait()
        time.sleep(0.2)  # Dovecot ends the command it was in
        stored = stored_ids(db)
        moved = message_ids(processed)
        waiting = message_ids(inbox)
        early = [m for m in moved if m not in stored]
        # Stored, not yet moved: the next serve must move these without storing them again.
        window = sum(1 for m in waiting if m in stored)
        in_window += window > 0
        print(f"kill {k + 1}: stored {len(stored)}, moved {len(moved)}, "
              f"still in the INBOX {len(waiting)} ({window} of them stored)", flush=True)
        if early:
            failures.append(f"kill {k + 1}: {len(early)} moved but not stored, e.g. {early[:3]}")

    child = serve()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if child.poll() is not None:
            failures.append(f"serve exited with {child.returncode}: see {data}/serve.log")
            break
        if not message_ids(inbox) and os.path.exists(db):
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            owed = conn.execute("SELECT count(*) FROM pending_acks").fetchone()[0]
            conn.close()
            if owed == 0:
                break
        time.sleep(0.1)
    else:
        failures.append("the last serve did not empty the INBOX in 600 s")
    child.send_signal(signal.SIGTERM)
    child.wait()
    took = time.monotonic() - start

    stored = stored_ids(db)
    moved = message_ids(processed)
    left = message_ids(inbox)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    # A report thread gets one thing from the coordinator: its acknowledgment (the corpus's
    # strangers send one report each, far below the daily limit per sender).
    per_report = conn.execute(
        "SELECT t.id, count(o.id) FROM threads t LEFT JOIN outbox o ON o.thread_id = t.id "
        "WHERE t.kind = 'report' GROUP BY t.id").fetchall()
    twice = sum(1 for _, n in per_report if n > 1)
    unacknowledged = sum(1 for _, n in per_report if n == 0)
    reports = len(per_report)
    conn.close()
    checks = [
        ("left in the INBOX", len(left), 0),
        ("delivered but not stored", len(delivered - set(stored)), 0),
        ("stored but never delivered", len(set(stored) - delivered), 0),
        ("stored more than once", sum(1 for n in stored.values() if n > 1), 0),
        ("in the processed folder", len(moved), total),
        ("in the processed folder more than once", len(moved) - len(set(moved)), 0),
        ("delivered but not in the processed folder", len(delivered - set(moved)), 0),
        ("reports acknowledged twice", twice, 0),
        ("reports not acknowledged", unacknowledged, 0),
    ]
    for what, got, want in checks:
        print(f"{what}: {got}" + ("" if got == want else f" (want {want})"))
        if got != want:
            failures.append(f"{what}: {got}, want {want}")
    print(f"new reports {reports}; {args.kills} kills ({in_window} with stored mail still in the "
          f"INBOX) and the sync to the end in {took:.1f} s")
finally:
    subprocess.run([os.path.join(ROOT, "tests", "support", "mail-servers"), "stop", servers],
                   capture_output=True)
if failures:
    # Kept for a look: the mailbox, the store and serve's log (data/serve.log).
    print("FAILED:\n  " + "\n  ".join(failures) + f"\nthe mailbox and the store are kept in {servers}")
    sys.exit(1)
shutil.rmtree(servers, ignore_errors=True)  # 10,000 messages twice over: not left in /tmp
print("exactly once: every message stored once and moved once")
