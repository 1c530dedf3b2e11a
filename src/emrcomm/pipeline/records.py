"""The one place records are made: their ids, and the facts each kind of record files (a leg
of a request, a blocked request, a message from the patient).

A notice's link opens the patient's message: the chart shows LINK_WITHHELD in its place and
the link is derived again from the message id when the notice leaves (never stored).
"""

from __future__ import annotations

import datetime as dt
import uuid

from emrcomm.lifecycle.projection import RecordFacts
from emrcomm.model import Channel, Finding, Request, Route, Severity

RECORD_NS = uuid.UUID("5b6f2b8e-4d7e-4a53-9d55-6a2b1c9e7f10")
LINK_WITHHELD = "[secure link]"
LINK_SLOT = "{{secure-link}}"  # where an email's HTML part takes the link


def record_id(request_id: str, channel: str | None, role: str) -> str:
    """Deterministic: the same request on the same channel is always the same record."""
    return uuid.uuid5(RECORD_NS, f"{request_id}|{channel or '-'}|{role}").hex


def withheld(text: str | None, link: str | None, mark: str = LINK_WITHHELD) -> str | None:
    return text.replace(link, mark) if text and link else text


def leg_facts(request: Request, route: Route, channel: Channel, *, text: str | None, subject: str | None,
              language: str, link: str | None, findings: tuple[Finding, ...], recorded: dt.datetime,
              clinic: str, announced: bool = True) -> RecordFacts:
    """The facts of one route of a request. A channel that holds the message itself (the portal)
    files a reference to it, never its words."""
    rid = record_id(request.id, channel.name, route.role)
    keeps = channel.holds_content
    return RecordFacts(
        id=rid, request=request, role=route.role, recorded=recorded, channel=channel.name, medium=channel.medium,
        address=route.address, text=None if keeps else withheld(text, link), subject=None if keeps else subject,
        language=language, findings=tuple(f for f in findings if f.severity is not Severity.INFO),
        sender_display=clinic, payload_reference=f"urn:uuid:{uuid.UUID(hex=rid)}" if keeps else None,
        announced=announced,
        # An automatic answer is filed in response to the patient's message it answers.
        in_response_to=f"Communication/{request.in_response_to}" if request.in_response_to else None,
    )


def blocked_facts(request: Request, findings: tuple[Finding, ...], channel: Channel | None, *,
                  recorded: dt.datetime, clinic: str, attempt: int = 1, role: str = "blocked") -> RecordFacts:
    """One not-done record for a request no candidate could carry, with every blocking code.
    A later attempt with the same request id (after consent was recorded, say) files its own."""
    blocks = [f for f in findings if f.blocks]
    key = role if attempt == 1 else f"{role}#{attempt}"
    return RecordFacts(
        id=record_id(request.id, None, key), request=request, role="blocked", recorded=recorded,
        channel=channel.name if channel else None, medium=channel.medium if channel else None,
        findings=findings, reasons=tuple(dict.fromkeys(f.code for f in blocks)), sender_display=clinic,
    )


def reply_facts(original: RecordFacts, *, channel: Channel | None, channel_name: str | None, key: str,
                text: str | None, reference: str | None, recorded: dt.datetime, clinic: str,
                address: str | None = None) -> RecordFacts:
    """A message from the patient, in response to a record (its id derives from the provider's
    id for the reply, so a callback delivered twice files one reply). ``address`` is where it
    came from: where an automatic answer to it goes."""
    return RecordFacts(
        id=record_id(original.request.id, channel_name, f"reply:{key}"), request=original.request, role="reply",
        recorded=recorded, channel=channel_name, medium=channel.medium if channel else None, address=address,
        text=None if channel is not None and channel.holds_content else text, payload_reference=reference,
        in_response_to=f"Communication/{original.id}", sender_display=clinic,
    )
