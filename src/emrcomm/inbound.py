"""What the host does with a message a patient sends back (docs/rule-catalogue.md B), whichever provider
delivered it: STOP, START, HELP, words that read like an opt-out, and every other reply.

STOP reaches the consent ledger before anything else and is confirmed exactly once; HELP gets
the clinic's help reply; START re-subscribes; a probable opt-out in free text goes to staff;
any other reply is filed (``inResponseTo`` the last message to that number) and answered once
a day with the clinic's auto-reply. Answers are ordinary requests: they go through the pipeline
and the outbox like any message.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
from typing import TYPE_CHECKING

from emrcomm.inbox import raise_item
from emrcomm.model import Category, DeliveryUpdate, Request
from emrcomm.storage import ConsentEvent

if TYPE_CHECKING:
    from emrcomm.host import Host

log = logging.getLogger("emrcomm.inbound")


class Handled(enum.StrEnum):
    OPTOUT = "optout"
    OPTIN = "optin"
    HELP = "help"
    STAFF = "staff"  # free text that reads like an opt-out: for staff to confirm
    REPLY = "reply"


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:24]


def handle_inbound(
    host: Host,
    *,
    channel: str,
    address: str,
    text: str,
    at: dt.datetime,
    provider_id: str | None = None,
) -> Handled:
    """Act on one inbound message from ``address``. Safe to call twice for the same message
    (a provider retrying its callback): the ledger, the filed reply and the answers are keyed."""
    from emrcomm_optout.keywords import Keyword, classify, looks_like_revocation

    last = host.storage.records.last_to(channel, address)
    patient = last.request.patient_ref if last else ""
    category = last.request.category if last else Category.APPOINTMENT_REMINDER
    before = host.storage.consent.last(channel=channel, address=address)
    already_out = before is not None and before.revokes
    keyword = classify(text)
    # First the ledger and the chart (the opt-out plugin writes STOP/START from the reply).
    host.delivery_update(DeliveryUpdate(
        kind="reply", at=at, channel=channel, record_id=last.id if last else None,
        provider_id=provider_id, address=address, text=text, detail=patient,
    ))
    message_key = provider_id or f"{address}|{at.isoformat()}"
    if keyword is Keyword.OPT_OUT:
        run = _revoke_run(host.storage.consent.events(channel=channel, address=address))
        if patient and run is not None:
            # Exactly one confirmation per opt-out: the id names the run of revocations this STOP
            # belongs to, so a second STOP or the provider retrying this callback (perhaps after
            # the confirmation failed the first time) finds it already handled or sends it now.
            _answer(host, patient, category, "optout-confirmation", channel,
                    f"optout-confirmation-{_digest(channel, address, run)}")
        log.info("inbound on %s: opt-out (patient %s)", channel, patient or "unknown")
        return Handled.OPTOUT
    if keyword is Keyword.OPT_IN:
        log.info("inbound on %s: opt-in (patient %s)", channel, patient or "unknown")
        return Handled.OPTIN
    if keyword is Keyword.HELP:
        if patient:
            _answer(host, patient, category, "help-reply", channel, f"help-reply-{_digest(channel, message_key)}")
        return Handled.HELP
    if looks_like_revocation(text):
        if patient:
            raise_item(host.storage, kind="reply", key=f"revocation|{message_key}", patient=patient, now=host.clock(),
                       description="The patient's reply reads like a request to stop messages on this channel: "
                                   "confirm with them and record it in the consent ledger.",
                       request_id=last.request.id if last else None,
                       record_id=last.id if last else None,
                       priority="urgent", reasons=("PROBABLE_REVOCATION",), keywords=("opt-out",))
        log.info("inbound on %s: probable opt-out sent to staff (patient %s)", channel, patient or "unknown")
        return Handled.STAFF
    if patient and not already_out:
        day = at.astimezone(dt.UTC).date().isoformat()
        _answer(host, patient, category, "reply-auto-answer", channel, f"auto-answer-{_digest(channel, address, day)}")
    return Handled.REPLY


def _revoke_run(events: list[ConsentEvent]) -> str | None:
    """An id for the current opt-out: the ledger position (``seq``) of the first revocation of
    the trailing run of revocations; None when the ledger's last word is not a revocation."""
    start = None
    for event in reversed(events):
        if not event.revokes:
            break
        start = event
    return None if start is None else str(start.seq)


def _answer(host: Host, patient: str, category: Category, template: str, channel: str, request_id: str) -> None:
    """Send ``template`` to the patient on ``channel`` as an ordinary request (the id makes it once)."""
    outcome = host.send(Request(patient, category, id=request_id, template=template, channel=channel))
    log.info("inbound answer %s: %s", request_id, outcome.status.value)
