"""SMTP receiver for casegate's tests, started by tests/support/mail-servers.

Accepts mail for the users in DIR/users, delivers it into their Dovecot INBOX over LMTP, and
keeps a copy of every accepted message in DIR/smtp/ (<UTC time>-<n>.eml + .json envelope) so
tests can read exactly what was sent. DIR/smtp-fail ("temp|perm [ADDRESS]") makes RCPT fail.
Usage: smtp_receiver.py DIR PORT
"""
import asyncio
import itertools
import json
import logging
import os
import smtplib
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult

D, PORT = sys.argv[1], int(sys.argv[2])
USERS = {}
with open(f"{D}/users") as f:
    for line in f:
        if ":" in line:
            name, rest = line.split(":", 2)[:2]
            USERS[name.lower()] = rest.split("}", 1)[1]
seq = itertools.count(1)

REPLIES = {
    "temp": "451 4.3.0 Temporary failure (injected)",
    "perm": "550 5.7.1 Permanent failure (injected)",
}


def fault(addr):
    """The injected reply for this recipient, re-read at every RCPT so tests can flip it."""
    try:
        with open(f"{D}/smtp-fail") as f:
            words = f.read().split()
    except FileNotFoundError:
        return None
    if not words or words[0] == "off":
        return None
    if len(words) > 1 and words[1].lower() != addr.lower():
        return None
    return REPLIES.get(words[0])


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = fault(address)
        if reply:
            return reply
        if address.lower() not in USERS:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        try:  # one LMTP transaction per recipient (smtplib.LMTP reads only one DATA reply)
            with smtplib.LMTP(f"{D}/run/lmtp") as lmtp:
                for r in envelope.rcpt_tos:
                    lmtp.sendmail(envelope.mail_from or "", [r], data)
        except Exception as e:
            logging.exception("LMTP delivery failed")
            return f"451 4.3.0 Delivery failed: {e}"
        t = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(t))
        name = f"{D}/smtp/{stamp}.{int(t % 1 * 1e6):06d}-{next(seq):06d}"
        auth = session.auth_data.login.decode() if session.authenticated else None
        with open(name + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "auth_user": auth}, f)
        with open(name + ".eml.tmp", "wb") as f:
            f.write(data)
        os.rename(name + ".eml.tmp", name + ".eml")  # a reader never sees half a message
        return "250 OK delivered"


def authenticate(server, session, envelope, mechanism, data):
    ok = USERS.get(data.login.decode().lower()) == data.password.decode()
    return AuthResult(success=ok, handled=False, auth_data=data)


tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(f"{D}/tls/cert.pem", f"{D}/tls/key.pem")


def factory():
    return SMTP(Handler(), hostname="localhost", tls_context=tls, require_starttls=False,
                authenticator=authenticate, auth_require_tls=False, auth_required=False)


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
loop = asyncio.new_event_loop()
loop.run_until_complete(loop.create_server(factory, "127.0.0.1", PORT))
print(f"smtp listening on 127.0.0.1:{PORT}", flush=True)
open(f"{D}/run/smtpd.ready", "w").close()
loop.run_forever()
