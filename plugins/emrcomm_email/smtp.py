"""Email over SMTP: STARTTLS required by default (implicit TLS as an option), AUTH, a private
CA when the relay uses one, timeouts, and SMTP replies turned into TransientDeliveryError (4xx,
connection trouble) or PermanentDeliveryError (5xx).

One connection is kept open between messages and checked with NOOP before reuse; a failure
closes it. Logs carry the record id and SMTP codes, never the address or the text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import logging
import smtplib
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emrcomm import (
    Delivery,
    DeliveryError,
    Message,
    PermanentDeliveryError,
    Receipt,
    TransientDeliveryError,
    redact,
)
from emrcomm.deadline import Deadline

from .compose import ascii_address, build_email, wire

SECURITY = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
UPLOAD_RATE = 64 * 1024  # bytes a second: the slowest upload a message's deadline allows for
LOOPBACK = ("localhost", "127.0.0.1", "::1")
# The longest reply read: an EHLO list is under 1 KB. smtplib reads a reply's lines until one has
# no "-", keeping them all, so a relay writing "250-…" lines without end filled the memory at the
# speed of the network (1.2 GB in 2 s on loopback) until the deadline cut it.
REPLY_LIMIT = 64 * 1024


class ReplyTooLong(smtplib.SMTPException):
    """The server's reply went past REPLY_LIMIT; it was not read further and the session is closed."""


class _Budget:
    """The socket's reader for one reply at a time: past ``left`` bytes, the reply is cut."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.left = REPLY_LIMIT
        self.exceeded = False

    def readline(self, size: int = -1) -> bytes:
        if self.left <= 0:
            self.exceeded = True
            raise OSError("reply too long")  # smtplib closes the session on an OSError here
        line: bytes = self.raw.readline(min(size, self.left) if size >= 0 else self.left)
        self.left -= len(line)
        return line

    def close(self) -> None:
        self.raw.close()


class _Capped(smtplib.SMTP):
    """An SMTP session whose every reply is read within REPLY_LIMIT bytes (ReplyTooLong past it)."""

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None:
            self.file = _Budget(self.sock.makefile("rb"))  # type: ignore[assignment]
        reader = self.file
        if isinstance(reader, _Budget):
            reader.left, reader.exceeded = REPLY_LIMIT, False
        try:
            return super().getreply()
        except smtplib.SMTPServerDisconnected:
            if isinstance(reader, _Budget) and reader.exceeded:
                raise ReplyTooLong(f"a reply longer than {REPLY_LIMIT // 1024} KB") from None
            raise


class _CappedSSL(_Capped, smtplib.SMTP_SSL):
    pass


def session(host: str, security: str, timeout: float, tls: ssl.SSLContext) -> smtplib.SMTP:
    """An unconnected session with ``host`` for ``security`` (``tls``: TLS from the first byte),
    its replies capped. Made without connecting so that connecting happens under a deadline; TLS
    checks the certificate against the name smtplib keeps from its constructor (for SMTP_SSL and
    STARTTLS), set here."""
    smtp = _CappedSSL(timeout=timeout, context=tls) if security == "tls" else _Capped(timeout=timeout)
    smtp._host = host  # type: ignore[attr-defined]
    return smtp


def _reply_text(value: bytes | str) -> str:
    return redact(value.decode("utf-8", "replace") if isinstance(value, bytes) else value)


def _by_code(code: int, what: str, detail: bytes | str, *, reason: str = "rejected") -> DeliveryError:
    """4xx: try again later; 5xx: this message will not go through this way."""
    text = f"smtp: {what} ({code} {_reply_text(detail)})".rstrip()
    if 400 <= code < 500:
        return TransientDeliveryError(text, provider="smtp", reason=reason, status=code)
    return PermanentDeliveryError(text, provider="smtp", reason=reason, status=code)


class SmtpTransport:
    """Sends each email through one SMTP relay (a submission server, or a local MTA)."""

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        clinic: str,
        phone: str,
        clock: Callable[[], dt.datetime],
        port: int | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: Callable[[], str | None] | None = None,
        ca_file: Path | None = None,
        timeout: float = 30.0,
        unsubscribe: Callable[[Message, str], str | None] | None = None,
        footer: bool = True,
        reply_to: str | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        if security not in SECURITY:
            raise ValueError(f"security must be one of {', '.join(SECURITY)}")
        if security == "none" and host not in LOOPBACK:
            raise ValueError("security 'none' is only for a relay on this machine (localhost)")
        if (username is None) != (password is None):
            raise ValueError("SMTP AUTH needs both a username and a password")
        self.host = host
        self.port = port or DEFAULT_PORTS[security]
        self.security = security
        self._username = username
        self._password = password  # resolved at the first login: a host that only reads never needs it
        self.tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self.timeout = timeout
        self.sender = sender
        self.envelope_from = email.utils.parseaddr(sender)[1]
        self.clinic = clinic
        self.phone = phone
        self.clock = clock
        self.unsubscribe = unsubscribe
        self.footer = footer
        self.reply_to = reply_to
        self.log = log or logging.getLogger("emrcomm.email.smtp")
        self._lock = threading.Lock()
        self._smtp: smtplib.SMTP | None = None

    # -- the connection --------------------------------------------------------------------------
    def _open(self) -> smtplib.SMTP:
        """A session ready to send: connected, greeted, TLS and AUTH done, all within ``timeout``
        (a socket's timeout is per read: a relay writing its greeting a byte a second never
        trips it, and the deadline cuts it instead)."""
        smtp = session(self.host, self.security, self.timeout, self.tls)
        with Deadline(self.timeout) as deadline:
            deadline.watch(lambda: getattr(smtp, "sock", None))
            try:
                self._start(smtp)
            except DeliveryError:
                if not deadline.expired:
                    raise
        if deadline.expired:
            smtp.close()
            raise TransientDeliveryError(f"smtp: {self.host}:{self.port} did not finish greeting, TLS and login within "
                                         f"{self.timeout} s", provider="smtp", reason="timeout")
        return smtp

    def _start(self, smtp: smtplib.SMTP) -> None:
        try:
            code, said = smtp.connect(self.host, self.port)
        except ssl.SSLError as exc:
            raise TransientDeliveryError(f"smtp: TLS with {self.host}:{self.port} failed ({exc.reason})",
                                         provider="smtp", reason="tls-failed") from None
        except ReplyTooLong:
            raise TransientDeliveryError(f"smtp: {self.host}:{self.port} greeted with {REPLY_LIMIT // 1024} KB and "
                                         "more; not read further", provider="smtp", reason="protocol") from None
        except TimeoutError:
            raise TransientDeliveryError(f"smtp: no connection to {self.host}:{self.port} within {self.timeout} s",
                                         provider="smtp", reason="timeout") from None
        except OSError as exc:
            raise TransientDeliveryError(f"smtp: cannot connect to {self.host}:{self.port} ({exc.strerror or exc})",
                                         provider="smtp", reason="unreachable") from None
        if code != 220:  # smtplib's connect returns the greeting's code and leaves it to us (421, 554)
            smtp.close()
            if 400 <= code < 600:
                raise _by_code(code, "the server refused the session", said, reason="unreachable")
            raise TransientDeliveryError(f"smtp: {self.host}:{self.port} greeted with no SMTP code", provider="smtp",
                                         reason="protocol")
        try:
            self._greet(smtp)
        except ReplyTooLong:
            smtp.close()
            raise TransientDeliveryError(f"smtp: {self.host}:{self.port} answered with {REPLY_LIMIT // 1024} KB and "
                                         "more; not read further", provider="smtp", reason="protocol") from None
        except smtplib.SMTPResponseException as exc:
            smtp.close()
            raise _by_code(exc.smtp_code, "the server refused the session", exc.smtp_error,
                           reason="protocol") from None
        except (smtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise TransientDeliveryError(f"smtp: session with {self.host}:{self.port} broke ({type(exc).__name__})",
                                         provider="smtp", reason="unreachable") from None
        except BaseException:
            smtp.close()
            raise

    def _greet(self, smtp: smtplib.SMTP) -> None:
        smtp.ehlo()
        if self.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise TransientDeliveryError(
                    f"smtp: {self.host}:{self.port} does not offer STARTTLS and TLS is required; nothing was "
                    "sent (fix the server, or set security = \"tls\" for a server that speaks TLS at once)",
                    provider="smtp", reason="tls-required")
            try:
                smtp.starttls(context=self.tls)
            except ssl.SSLError as exc:
                raise TransientDeliveryError(f"smtp: STARTTLS with {self.host}:{self.port} failed ({exc.reason})",
                                             provider="smtp", reason="tls-failed") from None
            smtp.ehlo()
        if self._username is not None and self._password is not None:
            if not smtp.has_extn("auth"):
                raise PermanentDeliveryError(f"smtp: {self.host}:{self.port} offers no AUTH but a username is set",
                                             provider="smtp", reason="unauthorized")
            try:
                smtp.login(self._username, self._password() or "")
            except smtplib.SMTPAuthenticationError as exc:
                raise _by_code(exc.smtp_code, "credentials refused; check username and password",
                               exc.smtp_error, reason="unauthorized") from None

    def _connection(self) -> smtplib.SMTP:
        """The open connection if it still answers, else a new one (nothing of a message was sent
        on a connection found dead here, so reconnecting cannot duplicate anything)."""
        smtp = self._smtp
        if smtp is not None:
            try:
                with Deadline(self.timeout) as deadline:
                    deadline.watch(lambda: smtp.sock)
                    if smtp.noop()[0] == 250 and not deadline.expired:
                        return smtp
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        self._smtp = self._open()
        return self._smtp

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    # -- sending ---------------------------------------------------------------------------------
    def send(self, delivery: Delivery) -> Receipt:
        message, address, key = delivery.message, delivery.address, delivery.key
        at = self.clock()
        mail = build_email(message, address, self.sender, self.clinic, self.phone, key, at,
                           unsubscribe_url=self.unsubscribe(message, key) if self.unsubscribe else None, footer=self.footer,
                           cte="quoted-printable", reply_to=self.reply_to)
        with self._lock:
            try:
                smtp = self._connection()
                reply = self._transfer(smtp, wire(mail, "\r\n"), address, key)
            except DeliveryError as exc:
                # What happened, not just its class: the message names the relay, the step and
                # the server's code, and never the address or the text.
                self.log.warning("record %s: %s (%s)", key, exc, exc.reason)
                self._drop()
                raise
        self.log.info("smtp: record %s: 250 accepted", key)
        return Receipt(channel="email", address=address, provider_id=mail["Message-ID"], status="accepted", at=at,
                       detail=f"smtp: {reply}")

    def _transfer(self, smtp: smtplib.SMTP, data: bytes, address: str, key: str) -> str:
        """MAIL, RCPT, DATA and the final reply, all within ``timeout`` and the time the message
        takes to upload at UPLOAD_RATE: a large one is not cut while the relay reads or checks it
        (cut then, it would be sent again, and may have been taken)."""
        budget = self.timeout + len(data) / UPLOAD_RATE
        with Deadline(budget) as deadline:
            deadline.watch(lambda: smtp.sock)
            try:
                return self._exchange(smtp, data, address)
            except DeliveryError:
                if not deadline.expired:
                    raise
        raise TransientDeliveryError(f"smtp: no complete answer within {budget:.0f} s (it may have been taken)",
                                     provider="smtp", reason="timeout", ambiguous=True)

    def _exchange(self, smtp: smtplib.SMTP, data: bytes, address: str) -> str:
        try:
            code, resp = smtp.mail(self.envelope_from)
            if code != 250:
                raise _by_code(code, "sender refused", resp)
            code, resp = smtp.rcpt(ascii_address(address))
            if code not in (250, 251):
                raise _by_code(code, "recipient refused", resp)
            code, resp = smtp.data(data)  # raises on the 354 step only; the final reply is ours to check
            if code != 250:
                raise _by_code(code, "message refused", resp)
        except smtplib.SMTPDataError as exc:
            raise _by_code(exc.smtp_code, "message refused", exc.smtp_error) from None
        except ReplyTooLong:
            raise TransientDeliveryError(f"smtp: an answer of {REPLY_LIMIT // 1024} KB and more; not read further "
                                         "(it may have been taken)", provider="smtp", reason="protocol",
                                         ambiguous=True) from None
        except smtplib.SMTPServerDisconnected:
            raise TransientDeliveryError("smtp: the server closed the connection mid-message (it may have been taken)",
                                         provider="smtp", reason="unreachable", ambiguous=True) from None
        except TimeoutError:
            raise TransientDeliveryError(f"smtp: no answer within {self.timeout} s (it may have been taken)",
                                         provider="smtp", reason="timeout", ambiguous=True) from None
        except OSError as exc:
            raise TransientDeliveryError(f"smtp: connection broken ({exc.strerror or type(exc).__name__})",
                                         provider="smtp", reason="unreachable", ambiguous=True) from None
        except UnicodeEncodeError:
            raise PermanentDeliveryError("smtp: the address is not ASCII and internationalised mail is not enabled",
                                         provider="smtp", reason="rejected") from None
        return f"{code} {_reply_text(resp)}"

    def close(self) -> None:
        with self._lock:
            if self._smtp is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    self._smtp.quit()
            self._drop()
