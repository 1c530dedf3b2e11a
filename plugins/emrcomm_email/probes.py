"""What ``emrcomm doctor`` tries for the email channel: the SMTP relay as a message would meet it
(TLS or STARTTLS, AUTH, the sender offered, then left before anything is sent), or the folder
the .eml sink writes to."""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path

from emrcomm import Probe, ProbeFailed, redact
from emrcomm.deadline import Deadline

from .eml import EmlSink
from .smtp import REPLY_LIMIT, ReplyTooLong, SmtpTransport, session

__all__ = ["Probe", "probes_of"]


def probes_of(transport: object, plugin: str) -> list[Probe]:
    """The probe of the email channel's transport (none for a transport of another kind)."""
    if isinstance(transport, SmtpTransport):
        return [Probe(f"SMTP relay {transport.host}:{transport.port}", lambda: relay(transport, f"plugins.{plugin}.smtp"))]
    if isinstance(transport, EmlSink):
        return [Probe(f"email file sink {transport.directory}", lambda: folder(transport.directory, plugin))]
    return []


def relay(transport: SmtpTransport, setting: str) -> Iterator[str]:
    """Connect as a message would (TLS, AUTH), offer the sender, then leave without sending:
    yields each step that worked, raises ProbeFailed in words at the first that did not.
    ``setting`` is where the settings live (``plugins.email.smtp``). The whole probe has twice the
    transport's ``timeout``: a relay answering a byte at a time trips no read timeout, and doctor
    would wait on it for good."""
    budget = 2 * transport.timeout
    smtp = session(transport.host, transport.security, transport.timeout, transport.tls)
    with Deadline(budget) as deadline:
        deadline.watch(lambda: getattr(smtp, "sock", None))
        try:
            yield from _steps(transport, smtp, setting)
        except (ProbeFailed, smtplib.SMTPException, OSError) as exc:
            if not deadline.expired:
                if isinstance(exc, ProbeFailed):
                    raise
                if isinstance(exc, ReplyTooLong):
                    raise ProbeFailed(f"the relay answered with {REPLY_LIMIT // 1024} KB and more; not read "
                                      "further") from None
                raise ProbeFailed(f"the session broke ({type(exc).__name__})") from None
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                if not deadline.expired:
                    smtp.quit()
            smtp.close()
    if deadline.expired:
        raise ProbeFailed(f"no complete answer within {budget:g} s (a relay answering a byte at a time, or the "
                          f"wrong {setting}.port?)")


def _steps(transport: SmtpTransport, smtp: smtplib.SMTP, setting: str) -> Iterator[str]:
    where = f"{transport.host}:{transport.port}"
    try:
        code, said = smtp.connect(transport.host, transport.port)
    except ssl.SSLError as exc:
        raise ProbeFailed(_tls_words(exc, setting)) from None
    except TimeoutError:
        raise ProbeFailed(f"no connection within {transport.timeout:g} s: a firewall, or the wrong {setting}.host "
                          "or port?") from None
    except ReplyTooLong:
        raise
    except OSError as exc:
        raise ProbeFailed(f"cannot connect ({exc.strerror or exc}): is the relay running, and are {setting}.host "
                          "and port right?") from None
    if code != 220:
        raise ProbeFailed(f"the server refused the session ({code} {_reply_text(said)})")
    yield "connected" + (", TLS ok" if transport.security == "tls" else "")
    smtp.ehlo()
    if transport.security == "starttls":
        if not smtp.has_extn("starttls"):
            raise ProbeFailed("no STARTTLS offered, and TLS is required: nothing would be sent (enable "
                              f"STARTTLS on the relay, or set {setting}.security = \"tls\" for port 465)")
        try:
            smtp.starttls(context=transport.tls)
        except ssl.SSLError as exc:
            raise ProbeFailed(_tls_words(exc, setting)) from None
        smtp.ehlo()
        yield "STARTTLS ok"
    username, password = transport._username, transport._password  # the transport's own login
    if username is not None and password is not None:
        if not smtp.has_extn("auth"):
            raise ProbeFailed(f"no AUTH offered, but {setting}.username is set")
        try:
            smtp.login(username, password() or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise ProbeFailed(f"AUTH refused ({exc.smtp_code}): check {setting}.username and "
                              f"{setting}.password") from None
        yield "AUTH ok"
    code, said = smtp.mail(transport.envelope_from)
    if code != 250:
        raise ProbeFailed(f"the sender {transport.envelope_from} refused ({code} {_reply_text(said)}): check "
                          f"the email plugin's from, and what {where} lets this account send as")
    smtp.rset()
    yield "sender accepted (nothing sent)"


def folder(directory: Path, plugin: str) -> Iterator[str]:
    yield "nothing leaves this machine (each email is written as a .eml file)"
    found = next(p for p in (directory, *directory.parents) if p.exists())
    if not os.access(found, os.W_OK):
        raise ProbeFailed(f"{found} is not writable by this user: check plugins.{plugin}.directory")
    yield "writable"


def _reply_text(value: bytes | str) -> str:
    return redact(value.decode("utf-8", "replace") if isinstance(value, bytes) else value)


def _tls_words(exc: ssl.SSLError, setting: str) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS: the relay's certificate is not trusted here ({exc.verify_message}): set {setting}.ca_file "
                "to the CA that signed it, or check the host name")
    return f"TLS failed ({exc.reason})"
