"""Providers for the conformance kit's run over the built-in channels, each on 127.0.0.1:

- ``TwilioProvider``: an HTTP server that answers the Messages API as Twilio does (201 with a
  message sid; the same ``I-Twilio-Idempotency-Token`` twice is the same message), fails on
  demand (400, 503, an answer that never comes), and signs the status and inbound callbacks it
  makes with the auth token (``X-Twilio-Signature``).
- ``SmtpProvider``: aiosmtpd with STARTTLS and AUTH (tests/mailservers.py); it refuses (550),
  defers (451) or stalls in DATA on demand. Mail has no receipts or replies here.
- ``PortalProvider``: the portal keeps messages itself; what it keeps is read from its store.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emrcomm.testing.conformance import WebCall
from emrcomm_sms.routes import twilio_signature
from mailservers import CertificateAuthority, SmtpServer
from servers import POLL, listening_socket

ACCOUNT_SID = "AC" + "c0" * 16
AUTH_TOKEN = "conformance-twilio-auth-token"


class TwilioProvider:
    def __init__(self) -> None:
        self.messages: dict[str, list[str]] = {}  # StatusCallback record (or token) -> sids
        self.by_token: dict[str, str] = {}
        self.mode = ""
        self._lock = threading.Lock()
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode("utf-8")))
                provider.answer(self, self.headers.get("I-Twilio-Idempotency-Token", ""), form)

        sock = listening_socket()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = sock
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(POLL,), daemon=True)
        self.thread.start()

    def answer(self, handler: http.server.BaseHTTPRequestHandler, token: str, form: dict[str, str]) -> None:
        if self.mode == "timeout":
            time.sleep(3)  # past the client's read timeout: the request went, no answer came
            return
        if self.mode in ("refuse", "unavailable"):
            status, body = (400, {"code": 21211, "message": "Invalid 'To' Phone Number"}) if self.mode == "refuse" \
                else (503, {"code": 20503, "message": "Service unavailable"})
            self._send(handler, status, body)
            return
        with self._lock:
            sid = self.by_token.get(token)
            if sid is None:  # a token Twilio has seen answers the message it made then
                sid = f"SM{len(self.by_token):032x}"
                self.by_token[token] = sid
                self.messages.setdefault(token, []).append(sid)
        self._send(handler, 201, {"sid": sid, "status": "queued", "to": form.get("To"), "body": form.get("Body")})

    @staticmethod
    def _send(handler: http.server.BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    # the Provider protocol ------------------------------------------------------------------------
    def received(self, key: str) -> list[str]:
        return list(self.messages.get(key, []))

    @contextlib.contextmanager
    def failing(self, how: str) -> Iterator[None]:
        self.mode = how
        try:
            yield
        finally:
            self.mode = ""

    def receipt(self, base: str, record_id: str, *, delivered: bool, authentic: bool) -> WebCall:
        path = f"/callbacks/twilio/status?record={record_id}"
        form = {"MessageSid": self.by_token.get(record_id, "SM" + "0" * 32), "AccountSid": ACCOUNT_SID,
                "MessageStatus": "delivered" if delivered else "undelivered"}
        return self._signed(base, path, form, authentic)

    def reply(self, base: str, address: str, text: str, *, authentic: bool) -> WebCall:
        form = {"MessageSid": f"SMin{abs(hash((address, text))):028x}"[:34], "AccountSid": ACCOUNT_SID,
                "From": address, "To": "+16135550100", "Body": text}
        return self._signed(base, "/callbacks/twilio/inbound", form, authentic)

    @staticmethod
    def _signed(base: str, path: str, form: dict[str, str], authentic: bool) -> WebCall:
        token = AUTH_TOKEN if authentic else "not-the-auth-token"
        path_only, _, query = path.partition("?")
        return WebCall("POST", path_only, params=dict(urllib.parse.parse_qsl(query)), data=form,
                       headers={"X-Twilio-Signature": twilio_signature(token, base + path, form)})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpProvider:
    def __init__(self, ca: CertificateAuthority, password: str) -> None:
        self.ca = ca
        self.server = SmtpServer(ca, starttls=True, password=password)

    def received(self, key: str) -> list[str]:
        import email

        ids = [email.message_from_bytes(r.content)["Message-ID"] for r in self.server.handler.received]
        return [i for i in ids if i and i.startswith(f"<{key}@")]

    @contextlib.contextmanager
    def failing(self, how: str) -> Iterator[None]:
        handler = self.server.handler
        local = "*"
        if how == "refuse":
            handler.rcpt_replies[local] = "550 5.1.1 <patient>: no such user"
        elif how == "unavailable":
            handler.rcpt_replies[local] = "451 4.3.0 Local problem, try later"
        elif how == "timeout":
            handler.data_delay = 3.0  # past the client's timeout, after the message went
        try:
            yield
        finally:
            handler.rcpt_replies.pop(local, None)
            handler.data_delay = 0.0

    def receipt(self, base: str, record_id: str, *, delivered: bool, authentic: bool) -> None:
        return None  # SMTP relays send no delivery receipts back

    def reply(self, base: str, address: str, text: str, *, authentic: bool) -> None:
        return None  # replies to email come to the clinic's mailbox, not to emrcomm

    def stop(self) -> None:
        self.server.stop()


class PortalProvider:
    """The portal is its own provider: the messages it keeps are rows of its table in the clinic's
    database (``store``)."""

    def __init__(self, store: Path) -> None:
        self.store = store

    def received(self, key: str) -> list[str]:
        with contextlib.closing(sqlite3.connect(f"file:{self.store}?mode=ro", uri=True)) as db:
            return [row[0] for row in db.execute("SELECT id FROM portal_messages WHERE record_id = ?", (key,))]

    @contextlib.contextmanager
    def failing(self, how: str) -> Iterator[None]:
        yield

    def receipt(self, base: str, record_id: str, *, delivered: bool, authentic: bool) -> None:
        return None  # reads come from the patient's pages, not from a provider

    def reply(self, base: str, address: str, text: str, *, authentic: bool) -> None:
        return None
