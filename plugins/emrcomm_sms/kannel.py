"""SMS through a Kannel gateway's HTTP sendsms interface (smsbox ``/cgi-bin/sendsms``).

The request is a POST whose body is the text (UTF-8) and whose parameters travel as
``X-Kannel-*`` headers, so the password, the number and the text never appear in a URL (URLs
end up in access logs and in urllib3's debug log). Text outside the GSM-7 alphabet goes as
UCS-2 (``coding=2``); Kannel converts from the declared charset and splits long messages.

Kannel accepts no idempotency key: a request whose answer is lost (read timeout, broken
connection) may have been queued, and sending it again may deliver it twice. Such failures are
raised with ``ambiguous=True``; docs/transports.md describes the window.

Kannel cuts what its sendsms-user may not send whole and still answers "Accepted": without
``max-messages`` and ``concatenation`` in that group (its defaults: 1 and off) a 200-character
message leaves as its first 160 (measured). The transport is told what the group allows
(``max_messages``, ``concatenation``) and refuses a message Kannel would cut; when Kannel says
how many parts it made ("Message splits: N", with ``immediate-sendsms-reply``) and that is
fewer than the message needs, the message was cut, and that is a failure, not a delivery.
Kannel splits UCS-2 at every 67 UTF-16 units, through an emoji's surrogate pair (measured on
1.4.5), so it may make one part fewer of a text than :func:`count_segments` counts; the check
counts the parts as Kannel makes them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable

from emrcomm import Delivery, PermanentDeliveryError, Receipt
from emrcomm.segments import UCS2_PART, UCS2_SINGLE, count_segments

from .callbacks import kannel_dlr_url
from .http import Answer, ProviderClient, first_line

# Kannel's own answers to sendsms (smsbox): "0: Accepted for delivery" and "3: Queued for later
# delivery" (no SMSC connected yet) with 202; refusals are plain sentences with 4xx/5xx.
QUEUED = "3"
# What smsbox says of the parts it made when it answers at once (immediate-sendsms-reply): "Sent."
# for one, "Sent. Message splits: N" for more.
_SPLITS = re.compile(r"Message splits:\s*([0-9]+)")
# Every answer of Kannel's that says it took the message; any other 2xx (a proxy's or web
# server's page, "Authorization failed" with the wrong status, bytes that are not text) is not.
_ACCEPTED = re.compile(r"(0: Accepted for delivery|3: Queued for later delivery|Sent\.(?: Message splits: [0-9]{1,3})?)")


def _refused_credentials(response: Answer) -> bool:
    # Kannel answers 403 both for a wrong password and for "Not routable. Do not try again."
    return response.status_code in (401, 403) and "authori" in first_line(response).lower()


class KannelTransport:
    """Sends through Kannel; the receipt's ``provider_id`` is the record id (Kannel returns none),
    and the delivery-report URL carries it so reports find their record."""

    def __init__(
        self,
        *,
        url: str,
        username: str,
        password: Callable[[], str],
        client: ProviderClient,
        clock: Callable[[], dt.datetime],
        sender: str | None = None,
        smsc: str | None = None,
        dlr_mask: int = 31,
        callback_url: str | None = None,
        callback_secret: Callable[[], str | None] = lambda: None,
        channel: str = "sms",
        max_messages: int = 1,
        concatenation: bool = False,
    ) -> None:
        # The password and the callback secret are resolved when the first message goes (or the
        # gateway is probed): a host that only reads never needs them.
        self.url = url
        self._username = username
        self._password = password
        self.client = client
        client.describe = first_line
        client.refused_credentials = _refused_credentials
        self.clock = clock
        self.sender = sender
        self.smsc = smsc
        self.dlr_mask = dlr_mask
        self.callback_url = callback_url
        self._callback_secret = callback_secret
        self.channel = channel
        # Segments Kannel sends of one message: more are cut. Without concatenation the parts
        # arrive as separate texts (a link split between two breaks), so one is all there is.
        self.max_parts = max_messages if concatenation else 1

    def headers(self, address: str, key: str, encoding: str) -> dict[str, str]:
        """The sendsms parameters for one message (the body is the text itself)."""
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "X-Kannel-Username": self._username,
            "X-Kannel-Password": self._password(),
            "X-Kannel-To": address,
            "X-Kannel-Coding": "2" if encoding == "UCS-2" else "0",
        }
        if self.sender:
            headers["X-Kannel-From"] = self.sender
        if self.smsc:
            headers["X-Kannel-SMSC"] = self.smsc
        if self.callback_url:
            headers["X-Kannel-DLR-Mask"] = str(self.dlr_mask)
            headers["X-Kannel-DLR-URL"] = kannel_dlr_url(self.callback_url, key, self._callback_secret())
        return headers

    def send(self, delivery: Delivery) -> Receipt:
        message, address, key = delivery.message, delivery.address, delivery.key
        encoding, segments = count_segments(message.text)
        if segments > self.max_parts:
            raise PermanentDeliveryError(
                f"kannel: the message needs {segments} segments ({encoding}) and the gateway's sendsms-user sends "
                f"{self.max_parts} whole (max_messages, concatenation in [plugins.sms.kannel]): Kannel would cut it; "
                "nothing was sent", provider="kannel", reason="too-long")
        response = self.client.request("POST", self.url, key=key, sender=self.sender or "default",
                                       headers=self.headers(address, key, encoding),
                                       data=message.text.encode("utf-8"))
        answer = _accepted(response)
        parts = _parts(answer)
        needs = kannel_parts(message.text, encoding, segments)
        if parts is not None and parts < needs:
            raise PermanentDeliveryError(
                f"kannel cut the message: it sent {parts} of its {needs} segments ({encoding}); set max-messages "
                "and concatenation in the sendsms-user group (docs/transports.md)", provider="kannel", reason="cut",
                ambiguous=True)
        status = "queued" if answer.split(":", 1)[0].strip() == QUEUED else "accepted"
        return Receipt(channel=self.channel, address=address, provider_id=key, status=status, at=self.clock(),
                       detail=f"kannel: {answer}; {segments} segment(s), {encoding}")

    def close(self) -> None:
        self.client.close()


def _accepted(response: Answer) -> str:
    """Kannel's answer when it is one that says the message was taken. Anything else in a 2xx is
    a dead letter that may have gone (``reason="protocol"``, ambiguous): not "completed", since
    nothing says it went, and not retried, since Kannel takes no idempotency key and whatever
    answered may have passed it on; staff look, and requeue it if it did not go."""
    try:
        answer = response.content.decode("ascii").strip()
    except UnicodeDecodeError:
        answer = None
    if answer is None or not _ACCEPTED.fullmatch(answer):
        raise PermanentDeliveryError(
            f"kannel: unexpected answer to sendsms (HTTP {response.status_code}, not one of Kannel's own); the "
            "message may have gone: check the gateway (and the url setting), then requeue if it did not",
            provider="kannel", reason="protocol", status=response.status_code, ambiguous=True)
    return answer


def kannel_parts(text: str, encoding: str, segments: int) -> int:
    """The parts Kannel makes of ``text`` sent whole: ``segments`` as counted, except in UCS-2,
    where Kannel cuts at every 67 UTF-16 units even between the two of an emoji."""
    if encoding != "UCS-2":
        return segments  # GSM-7: Kannel keeps an escape and its character together, as counted (measured)
    units = len(text.encode("utf-16-be", "surrogatepass")) // 2
    return 1 if units <= UCS2_SINGLE else math.ceil(units / UCS2_PART)


def _parts(answer: str) -> int | None:
    """How many parts Kannel says it made of a message, when it says (None: it does not)."""
    found = _SPLITS.search(answer)
    if found:
        return int(found.group(1))
    return 1 if answer.startswith("Sent.") else None
