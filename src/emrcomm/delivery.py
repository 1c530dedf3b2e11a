"""What a transport raises when a provider did not take a message, so that whoever retries
(the outbox worker) knows whether trying again can help::

    EmrcommError
    └── DeliveryError               the message was not handed over
        ├── TransientDeliveryError  try again later: provider unreachable, timed out, 5xx, 429, SMTP 4xx
        └── PermanentDeliveryError  the same message will fail again: rejected (4xx), SMTP 5xx, auth refused

Every error carries the provider, a short machine-readable ``reason``, the protocol status
(HTTP or SMTP code), ``retry_after`` when the provider said when to come back, and
``ambiguous`` when the request left but no answer came back (the provider may have taken it).
Messages never quote a phone number, an address or the text; provider details are redacted.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re

from emrcomm.errors import EmrcommError

_PHONE = re.compile(r"\+?\d[\d ().-]{5,}\d")
# The local part as RFC 5322 allows it unquoted: an apostrophe (patrick.o'brien@…) is as valid as a dot.
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def redact(text: str, limit: int = 300) -> str:
    """``text`` from a provider with phone numbers and email addresses replaced, cut to ``limit``."""
    return _PHONE.sub("[number]", _EMAIL.sub("[address]", text)).strip()[:limit]


class DeliveryError(EmrcommError):
    """A provider did not take the message. Catch the two subclasses, not this one.

    ``reason`` is one of ``unreachable``, ``timeout``, ``rate-limited``, ``server-error``,
    ``rejected``, ``unauthorized``, ``tls-required``, ``tls-failed``, ``protocol``, ``too-long``
    (the gateway would cut the message: nothing was sent), ``cut`` (the gateway sent part of it).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        reason: str,
        status: int | None = None,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class TransientDeliveryError(DeliveryError):
    """Trying again later may succeed; wait at least ``retry_after`` seconds when it is set.

    When ``ambiguous`` is true the provider may already have taken the message: retry with the
    same idempotency key, and count a possible duplicate where the provider accepts no key.
    """


class PermanentDeliveryError(DeliveryError):
    """Sending the same message again will fail the same way: a rejected request or address,
    refused credentials (``reason == "unauthorized"``: fix the configuration, then requeue)."""


def described(error: BaseException, limit: int = 300) -> str:
    """What went wrong, in words staff and logs may carry: a DeliveryError's reason and message
    (``unreachable: smtp: cannot connect to smtp.example.org:587 (Connection refused)``; its
    message quotes no patient data, by contract), or only the type of any other exception."""
    if isinstance(error, DeliveryError):
        said = str(error)
        return (said if said.startswith(f"{error.reason}:") else f"{error.reason}: {said}")[:limit]
    return type(error).__name__


_SECONDS = re.compile(r"[0-9]{1,30}")


def retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110
    10.2.3), counted from ``now`` (the provider's clock is the wall's: default the system's).
    None when there is none or it cannot be read (a sign, a fraction, digits other than ASCII,
    a date no calendar holds). The wait is as the provider asked, however long: whoever uses it
    bounds it (``retry_after_max`` for a wait inside ``send``, the retry policy for the next try)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())
