"""The URLs a provider calls back with delivery reports, and how they are signed.

Each URL names the record it reports on. Kannel has no signature scheme of its own, so its
delivery-report URL carries ``sig``, an HMAC-SHA256 of the record id under the configured
``callback_secret``: a leaked URL can only ever report on that one record. Twilio signs its
callbacks itself (X-Twilio-Signature over the whole URL with the auth token).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

# Kannel escape codes substituted in the dlr-url: %d the report type (1 delivered, 2 undelivered,
# 4 buffered, 8 accepted by the SMSC, 16 rejected by the SMSC), %A the SMSC's answer, %T the
# time, %F the SMSC's message id (one per segment of a long message).
KANNEL_CODES = {"type": "%d", "answer": "%A", "at": "%T", "smsc_id": "%F"}


def record_signature(secret: str, record_id: str) -> str:
    """What ``sig`` must be for ``record_id``; check it with :func:`valid_signature`."""
    return hmac.new(secret.encode("utf-8"), record_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def valid_signature(secret: str, record_id: str, sig: str) -> bool:
    """Whether ``sig`` signs ``record_id``. Compared as bytes: a ``sig`` of any characters is
    simply wrong (``compare_digest`` refuses non-ASCII text)."""
    return same_secret(record_signature(secret, record_id), sig)


def same_secret(expected: str, given: str) -> bool:
    """``expected == given`` in constant time, for text of any characters."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "surrogatepass"))


def kannel_dlr_url(base: str, record_id: str, secret: str | None) -> str:
    """``{base}/kannel/dlr?record=…[&sig=…]&type=%d&…`` with Kannel's escape codes left for Kannel."""
    query = {"record": record_id}
    if secret:
        query["sig"] = record_signature(secret, record_id)
    escapes = "&".join(f"{name}={code}" for name, code in KANNEL_CODES.items())
    return f"{base.rstrip('/')}/kannel/dlr?{urlencode(query)}&{escapes}"


def mo_token(secret: str) -> str:
    """The ``token`` Kannel's MO get-url carries: an HMAC of ``kannel-mo`` under the callback secret."""
    return record_signature(secret, "kannel-mo")


def kannel_mo_url(base: str, secret: str) -> str:
    """The get-url of the Kannel sms-service that forwards patients' messages (MO) to emrcomm:
    ``%p`` the sender, ``%P`` the receiver, ``%a`` the text, ``%I`` Kannel's message id, ``%T``
    when Kannel received it (Unix time; smsbox's retries repeat it, as they repeat ``%I``), ``%C``
    the charset of the text (``UTF-16BE`` for a message in UCS-2: "ARRÊT", an emoji)."""
    return (f"{base.rstrip('/')}/kannel/mo?{urlencode({'token': mo_token(secret)})}"
            "&from=%p&to=%P&text=%a&id=%I&time=%T&charset=%C")


def twilio_status_url(base: str, record_id: str) -> str:
    return f"{base.rstrip('/')}/twilio/status?{urlencode({'record': record_id})}"
