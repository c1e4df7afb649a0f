#!/usr/bin/env python3
# casegate project copy of the coordinators' legacy ingest, used as the baseline of benches/ingest_pgp.rs
# and benches/ingest_mixed.rs.
"""Baseline for ingest benchmarks: how coordinators' in-house scripts handle mail today.

Python's `email` parses each message, `gpg` is run as a subprocess for every encrypted or
signed part (as Request Tracker, Znuny and Schleuder do), a regex finds the tracking number,
and each message is committed to SQLite. Every kind of a coordinator's mail is handled: plain,
PGP/MIME (multipart/encrypted: decrypt and verify), multipart/signed (verify the detached
signature over the signed entity), inline PGP (an armored message or a cleartext signature in a
text body). Like casegate, a message without a tracking number opens a new report and its
sender gets an acknowledgment naming the new number, signed by the coordinator (one gpg call)
and queued in an outbox table in the same commit. Usage:

    legacy_ingest.py --gnupghome DIR --db FILE [--coordinator ADDRESS] [--per-message-times] \
        MESSAGE.eml|MAILDIR ...

GNUPGHOME must hold the coordinator's secret key and the participants' public keys.
Prints `N messages in S s (R msg/s); D decrypted, G good signatures, A acknowledged` on the last
line: N counts every message read, D and G only those gpg really decrypted / verified, A the
acknowledgments gpg really signed, so a caller can tell a fast run from a failing one. With --per-message-times, a line `time FILE SECONDS` per message
comes first (measured inside the loop, printed after it).
"""
import argparse, email, email.policy, email.utils, hashlib, os, random, re, sqlite3, subprocess, sys, tempfile, time

NUMBER = re.compile(r"(?i)(?<![A-Z0-9])(VU#\s?[1-9]\d{5}(?!\d)|VRF#\s?\d\d-(?:0[1-9]|1[0-2])-[BCDFGHJKLMNPQRSTVWXYZ]{5}|General-[1-9]\d{0,8})(?![A-Za-z0-9])")

def gpg(args, data, home):
    r = subprocess.run(["gpg", "--batch", "--homedir", home, "--status-fd", "2", *args],
                       input=data, capture_output=True)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")

def open_message(raw, home):
    """Decrypt/verify like the legacy tools: PGP/MIME or inline, via the gpg CLI."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    encrypted, signature = False, "none"
    if msg.get_content_type() == "multipart/encrypted":
        parts = msg.get_payload()
        rc, plain, status = gpg(["--decrypt"], parts[1].get_payload(decode=True) or b"", home)
        encrypted = rc == 0
        signature = "good" if "GOODSIG" in status else ("bad" if "BADSIG" in status else "none")
        if encrypted:
            msg = email.message_from_bytes(plain, policy=email.policy.compat32)
    elif msg.get_content_type() == "multipart/signed":
        signed, sig = msg.get_payload()
        with tempfile.NamedTemporaryFile(suffix=".asc", delete=False) as f:
            f.write(sig.get_payload(decode=True) or b"")
            tmp = f.name
        body = signed.as_bytes().replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
        rc, _, status = gpg(["--verify", tmp, "-"], body, home)
        os.unlink(tmp)
        signature = "good" if "GOODSIG" in status else "bad"
    else:
        text = msg.get_payload(decode=True) if not msg.is_multipart() else b""
        if text and b"-----BEGIN PGP MESSAGE-----" in text:
            rc, _, status = gpg(["--decrypt"], text, home)
            encrypted = rc == 0
            signature = "good" if "GOODSIG" in status else "none"
        elif text and b"-----BEGIN PGP SIGNED MESSAGE-----" in text:
            rc, _, status = gpg(["--verify"], text, home)
            signature = "good" if "GOODSIG" in status else "bad"
    return msg, encrypted, signature

CONSONANTS = "BCDFGHJKLMNPQRSTVWXYZ"

def acknowledge(db, home, coordinator, sender, message_id):
    """A new report: mint its number, sign an acknowledgment with gpg, queue it (the caller's
    transaction commits it with the message). Returns whether gpg signed it."""
    number = time.strftime("VRF#%y-%m-", time.gmtime()) + "".join(random.choice(CONSONANTS) for _ in range(5))
    body = (f"Hello,\r\n\r\nthank you for your report. We have received it and given it the tracking "
            f"number {number}.\r\n\r\nPlease keep {number} in the subject of every message about it.\r\n")
    part = f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    rc, sig, _ = gpg(["--armor", "--detach-sign", "-u", coordinator], part.encode(), home)
    if rc != 0:
        return False
    mail = (f"From: {coordinator}\r\nTo: {sender}\r\nSubject: [{number}] Your report\r\n"
            f"In-Reply-To: {message_id}\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; "
            f"boundary=\"s\"\r\n\r\n--s\r\n{part}\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\n"
            f"{sig.decode()}\r\n--s--\r\n")
    db.execute("INSERT INTO outbox (thread, recipient, raw, status) VALUES (?,?,?,'queued')",
               (number, sender, mail.encode()))
    return True

def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for sub in ("new", "cur", ""):
                d = os.path.join(p, sub)
                if os.path.isdir(d):
                    for n in sorted(os.listdir(d)):
                        f = os.path.join(d, n)
                        if os.path.isfile(f):
                            yield f
        else:
            yield p

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gnupghome", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--coordinator", default="cert@example.test")
    ap.add_argument("--per-message-times", action="store_true")
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    db = sqlite3.connect(a.db)
    db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, message_id TEXT, sha256 TEXT UNIQUE, "
               "thread TEXT, encrypted INT, signature TEXT, subject TEXT, raw BLOB)")
    db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, thread TEXT, recipient TEXT, raw BLOB, "
               "status TEXT)")
    n, decrypted, good, acked, times, t0 = 0, 0, 0, 0, [], time.perf_counter()
    for path in files(a.paths):
        t1 = time.perf_counter()
        raw = open(path, "rb").read()
        msg, enc, sig = open_message(raw, a.gnupghome)
        subject = str(msg.get("Subject", ""))
        m = NUMBER.search(subject)
        thread = re.sub(r"\s", "", m.group(1)).upper() if m else None
        with db:
            cur = db.execute("INSERT OR IGNORE INTO messages (message_id, sha256, thread, encrypted, signature, subject, raw) "
                             "VALUES (?,?,?,?,?,?,?)", (msg.get("Message-ID"), hashlib.sha256(raw).hexdigest(), thread,
                                                       int(enc), sig, subject, raw))
            sender = email.utils.parseaddr(msg.get("From", ""))[1]
            if thread is None and cur.rowcount == 1 and sender:
                acked += int(acknowledge(db, a.gnupghome, a.coordinator, sender, msg.get("Message-ID", "")))
        n += 1
        decrypted += int(enc)
        good += int(sig == "good")
        times.append((path, time.perf_counter() - t1))
    dt = time.perf_counter() - t0
    if a.per_message_times:
        for path, t in times:
            print(f"time {path} {t:.6f}")
    print(f"{n} messages in {dt:.2f} s ({n / dt if dt else 0:.1f} msg/s); "
          f"{decrypted} decrypted, {good} good signatures, {acked} acknowledged")

if __name__ == "__main__":
    sys.exit(main())
