"""SMS through Twilio's REST Messages API (``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``).

Form-encoded ``To``, ``From`` or ``MessagingServiceSid``, ``Body`` and ``StatusCallback``; HTTP
basic authentication with the Account SID and the auth token. Every request carries the
record id in ``I-Twilio-Idempotency-Token`` so a retry of the same record can be recognised;
docs/transports.md says what that does and does not guarantee.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from emrcomm import Delivery, Message, PermanentDeliveryError, Receipt

from .callbacks import twilio_status_url
from .http import Answer, ProviderClient, first_line

API_PATH = "/2010-04-01/Accounts/{sid}/Messages.json"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
# A Message SID as Twilio's OpenAPI description gives it: the only provider id taken.
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")
# The statuses of a message Twilio has taken; "failed", "undelivered" and "canceled" say it will not go.
TAKEN = frozenset({"queued", "accepted", "scheduled", "sending", "sent", "delivered", "read", "partially_delivered"})
NOT_SENT = frozenset({"failed", "undelivered", "canceled"})


def _describe(response: Answer) -> str:
    """Twilio's error code and message, or a mock's list of violations (RFC 7807 + validation)."""
    try:
        body = response.json()
    except ValueError:
        return first_line(response)
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("validation"), list):
        return "; ".join(
            f"{'.'.join(str(p) for p in v.get('location', []))}: {v.get('message', '')}"
            for v in body["validation"] if isinstance(v, dict)
        )
    if "code" in body:
        return f"Twilio error {body['code']}: {body.get('message', '')}"
    return str(body.get("detail") or body.get("title") or "")


class TwilioTransport:
    """Sends through Twilio (or anything that speaks its API at ``base_url``); the receipt's
    ``provider_id`` is the Message SID Twilio's status callbacks will name."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: Callable[[], str],
        client: ProviderClient,
        clock: Callable[[], dt.datetime],
        base_url: str = "https://api.twilio.com",
        sender: str | None = None,
        messaging_service_sid: str | None = None,
        callback_url: str | None = None,
        channel: str = "sms",
    ) -> None:
        if not sender and not messaging_service_sid:
            raise ValueError("Twilio needs a sender number or a messaging service SID")
        self.url = base_url.rstrip("/") + API_PATH.format(sid=account_sid)
        self.client = client
        self.account_sid = account_sid
        self._auth_token = auth_token  # resolved at the first request: a host that only reads never needs it
        client.describe = _describe
        self.clock = clock
        self.sender = sender
        self.messaging_service_sid = messaging_service_sid
        self.callback_url = callback_url
        self.channel = channel

    def form(self, message: Message, address: str, key: str) -> dict[str, str]:
        form = {"To": address, "Body": message.text}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        if self.sender:
            form["From"] = self.sender
        if self.callback_url:
            form["StatusCallback"] = twilio_status_url(self.callback_url, key)
        return form

    def authenticate(self) -> None:
        """Give the client its credentials (the auth token resolved now, once)."""
        if self.client.auth is None:
            self.client.auth = (self.account_sid, self._auth_token())

    def send(self, delivery: Delivery) -> Receipt:
        message, address, key = delivery.message, delivery.address, delivery.key
        self.authenticate()
        response = self.client.request(
            "POST", self.url, key=key, sender=self.messaging_service_sid or self.sender or "default",
            headers={IDEMPOTENCY_HEADER: key}, data=self.form(message, address, key))
        sid, status, segments = _accepted(response)
        return Receipt(channel=self.channel, address=address, provider_id=sid, status=status, at=self.clock(),
                       detail=f"twilio: {status}" + (f"; {segments} segment(s)" if segments else ""))

    def close(self) -> None:
        self.client.close()


def _accepted(response: Answer) -> tuple[str, str, int | None]:
    """The Message SID, status and segment count of an answer that says Twilio took the message.
    A JSON message whose status says it will not go is a refusal with Twilio's error code; any
    other 2xx (not JSON, no SID, a SID that is not one) is a dead letter that may have gone
    (``reason="protocol"``, ambiguous): nothing says it went, and staff decide whether to requeue."""
    try:
        body: Any = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    said_status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(said_status, str):
        said_status = None
    if said_status in NOT_SENT and isinstance(body, dict):
        code = body.get("error_code")
        said = f"Twilio error {code}" if isinstance(code, int) and 0 <= code < 10**6 else "no error code"
        raise PermanentDeliveryError(f"twilio: the message was not sent (status {said_status}, {said})",
                                     provider="twilio", reason="rejected", status=response.status_code)
    sid = body.get("sid") if isinstance(body, dict) else None
    if not isinstance(sid, str) or not MESSAGE_SID.fullmatch(sid):
        raise PermanentDeliveryError(
            f"twilio: unexpected answer (HTTP {response.status_code}, no Message SID); the message may have gone: "
            "check the Twilio console, then requeue if it did not", provider="twilio", reason="protocol",
            status=response.status_code, ambiguous=True)
    status = said_status
    segments = body.get("num_segments")
    if isinstance(segments, str) and segments.isdigit() and len(segments) <= 3:
        segments = int(segments)
    return (sid, status if status in TAKEN else "accepted",
            segments if isinstance(segments, int) and not isinstance(segments, bool) and 0 < segments < 1000 else None)
