"""Writing a decision, in one transaction: the request in the ledger, each record's facts and
its first event (queued or held, or blocked), the outbox rows, the portal's encrypted copy, the
filers' copies and the audit entries. No record, no send: a filer that fails undoes all of it.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
from attrs import frozen

from emrcomm.audit import Trail
from emrcomm.errors import RequestConflict
from emrcomm.inbox import raise_item
from emrcomm.lifecycle.events import Event, Source
from emrcomm.lifecycle.projection import RecordFacts, request_status
from emrcomm.lifecycle.states import LegState
from emrcomm.model import Category, Finding, Outcome, Receipt, Recipient, Request, Severity, Status
from emrcomm.outbox.payload import Payload
from emrcomm.pipeline.decide import Decision, Leg, explanation
from emrcomm.pipeline.digest import check_retry, content_digest
from emrcomm.pipeline.records import LINK_SLOT, blocked_facts, leg_facts, withheld
from emrcomm.plugin.contract import Delivery
from emrcomm.plugin.manager import FilingFailed
from emrcomm.rules import finding
from emrcomm.storage.outbox import Item
from emrcomm.storage.records import RecordUnreadable

if TYPE_CHECKING:
    from emrcomm.host import Host

log = logging.getLogger("emrcomm.pipeline")

# The explanation of a repeated request id (the FHIR API answers it 200, not 201).
ALREADY_HANDLED = "already handled: this request id was sent before; nothing sent again"
ENDED_UNSENT = ("a message of it ended unsent: `emrcomm outbox` shows why, and `emrcomm outbox requeue "
                "<record id>` sends it again once the cause is fixed")
# How long an inline send owns its outbox rows before a worker may take them over (by the
# database server's clock on PostgreSQL, as a worker's claim).
INLINE_LEASE = dt.timedelta(minutes=5)


class Raced(Exception):
    """Another process decided the same request id between our check and our write, and sent,
    queued or held it: ours is a repeat of that decision."""


class Overtaken(Exception):
    """Another process decided the same request id, blocked or not filed, between our reading the
    attempt number and our entering it (PostgreSQL only: an SQLite write reads it holding the write
    lock): ours is the next attempt, as it would be had it come second, written with that number."""


@frozen
class Written:
    """A decision as written. ``items`` are the outbox rows an inline send now delivers, leased
    to ``owner``, in leg order (none when queued, held, blocked or failed)."""

    outcome: Outcome
    items: tuple[Item, ...] = ()
    facts: tuple[RecordFacts, ...] = ()
    owner: str | None = None
    recipient: Recipient | None = None


def outcome(decision: Decision, status: Status, findings: list[Finding] | tuple[Finding, ...],
            record_ids: tuple[str, ...], *, channels: tuple[str, ...] = (), dry_run: bool = False,
            lines: tuple[str, ...] | None = None) -> Outcome:
    req = decision.request
    # Two candidates stopped by the same rule on the same channel (sms, then portal + sms notice)
    # are one thing for staff to fix: each finding is reported once, in the order first seen.
    kept = tuple(dict.fromkeys(f for f in findings if f.severity is not Severity.INFO))
    return Outcome(
        request_id=req.id, status=status, channels=channels, findings=kept, record_ids=record_ids,
        explanation=lines if lines is not None else explanation(decision, dry_run=dry_run),
        category=req.category, patient_ref=req.patient_ref or None, identifier=req.identifier,
        other_identifiers=req.other_identifiers,
    )


def write(host: Host, decision: Decision, trail: Trail) -> Written:
    """Write ``decision`` (see the module docstring) and return how it stands."""
    if decision.repeat:
        return Written(repeat_outcome(host, decision, trail))
    if decision.refusal is not None:
        trail.add("request.refused", error=type(decision.refusal).__name__)
        trail.flush()
        raise decision.refusal
    if decision.chosen is None:
        return Written(write_blocked(host, decision, trail))
    return write_dispatch(host, decision, trail)


def repeat_outcome(host: Host, decision: Decision, trail: Trail | None = None) -> Outcome:
    """A request id decided before is not sent again: its records as they stand now. Raises
    RequestConflict (nothing written or sent) when the earlier request asked for something else:
    a repeat found by the ledger before deciding, or by the write that lost a race, alike."""
    req = decision.request
    row = host.storage.records.request(req.id)
    try:
        check_retry(row, decision.asked or req, host.audit.patient)
    except RequestConflict as exc:
        if trail is not None:
            trail.add("request.refused", error=type(exc).__name__)
            trail.flush()
        raise
    try:
        records = host.storage.records.for_request(req.id)
    except RecordUnreadable as exc:
        return unreadable_repeat(decision, row.record_ids if row is not None else (), exc, trail)
    if row is not None and row.patient:
        # Named as it was filed: the patient found then, not the search the EMR gave again.
        decision = attrs.evolve(decision, request=attrs.evolve(req, patient_ref=row.patient))
        if trail is not None:
            trail.defaults["patient"] = host.audit.patient(row.patient)
    ids = row.record_ids if row is not None else tuple(r.id for r in records)
    mine = [r for r in records if r.id in ids]
    legs = [r for r in mine if r.role != "blocked"]
    status = request_status(mine)
    if trail is not None:
        trail.add("request.duplicate", records=list(ids))
        trail.flush()
    return outcome(decision, status, (), tuple(ids), channels=tuple(r.channel for r in legs if r.channel),
                   lines=(ALREADY_HANDLED, ENDED_UNSENT) if status is Status.FAILED else (ALREADY_HANDLED,))


def unreadable_repeat(decision: Decision, ids: tuple[str, ...], exc: RecordUnreadable,
                      trail: Trail | None) -> Outcome:
    """A request decided before whose state cannot be read: one of its records was written by a
    newer release (during an upgrade) or is damaged. How it stands is not known here, so it is
    neither answered "already handled" nor decided again (its message may have gone): a failed
    outcome to try later (``transient``), nothing sent, naming the record, never its words."""
    req = decision.request
    record = exc.record or "?"
    if exc.newer:
        why = (f"its record {record} was {exc}: nothing was sent again; a server of that release answers how it "
               "stands, and this one once it is upgraded")
    else:
        why = (f"its record {record} is damaged ({exc}): nothing was sent again; the clinic's administrator can "
               "restore it from a backup")
    log.warning("request %s: sent before, its record %s cannot be read by this release%s; nothing sent again",
                req.id, record, " (a newer release wrote it)" if exc.newer else "")
    if trail is not None:
        trail.add("request.duplicate", records=list(ids))
        trail.flush()
    return attrs.evolve(outcome(decision, Status.FAILED, (), ids,
                                lines=(f"this request id was sent before, but how it stands cannot be read here: {why}",)),
                        error="transient")


def is_unreadable_repeat(outcome: Outcome) -> bool:
    """Whether ``outcome`` is :func:`unreadable_repeat`'s (a request id decided before whose record
    cannot be read), not a request that could not be decided for now (which has no records)."""
    return outcome.status is Status.FAILED and outcome.error == "transient" and bool(outcome.record_ids)


def is_repeat(outcome: Outcome) -> bool:
    """Whether ``outcome`` is a request id decided before, answered as it stands."""
    return outcome.explanation[:1] == (ALREADY_HANDLED,)


def write_blocked(host: Host, decision: Decision, trail: Trail) -> Outcome:
    """No candidate passed: one not-done record with every blocking code. Another decision of the
    id written since ours was made leaves ours a repeat of it, as for a dispatch (RequestConflict
    when it asked for something else), or, that one blocked or not filed, the next attempt."""
    return _not_done(_write_blocked, host, decision, trail)


def _not_done(write_it: Callable[[Host, Decision, Trail], Outcome], host: Host, decision: Decision,
              trail: Trail) -> Outcome:
    """``write_it`` (a not-done record's transaction), again while another decision of the id
    takes the attempt number it read (Overtaken), or the repeat of one that was sent (Raced)."""
    while True:
        try:
            return write_it(host, decision, trail)
        except Overtaken:
            continue  # rolled back: each turn follows another decision's commit, so this ends
        except Raced:
            return repeat_outcome(host, attrs.evolve(decision, repeat=True), trail)


def _entered(host: Host, decision: Decision, facts: RecordFacts, attempt: int, status: str) -> None:
    """Enter the request in the ledger as attempt ``attempt`` with its one not-done record, or
    raise Raced or Overtaken (see them) when another decision of the id came first."""
    req = decision.request
    entered = host.storage.records.enter_request(
        id=req.id, patient=req.patient_ref, category=req.category.value, now=decision.now, status=status,
        record_ids=[facts.id], identifiers=req.identifiers, digest=content_digest(decision.asked or req, host.audit.patient))
    if entered is None:
        raise Raced
    if entered != attempt:
        raise Overtaken


def _write_blocked(host: Host, decision: Decision, trail: Trail) -> Outcome:
    req, now, findings = decision.request, decision.now, list(decision.findings)
    first_channel = next((f.channel for f in findings if f.blocks and f.channel), None)
    channel = host.channels.get(first_channel) if first_channel else None
    records, clinic = host.storage.records, host.config.clinic.name
    with host.storage.transaction():
        attempt = records.next_attempt(req.id)
        facts = blocked_facts(req, tuple(findings), channel, recorded=now, clinic=clinic, attempt=attempt)
        _entered(host, decision, facts, attempt, "blocked")
        record = records.add(facts, None, [_first(facts.id, LegState.BLOCKED, now)])
        trail.add("blocked", record=record.id, reasons=list(facts.reasons))
        failed = host.file_each(record)
        if failed is not None:
            trail.add("record.not_filed", record=record.id, plugin=failed.plugin,
                      reasons=[*facts.reasons, "RECORD_NOT_FILED"])
        trail.flush()
    if failed is not None:
        log.error("request %s: its blocked record could not be filed by %s", req.id, failed.plugin)
        f = finding("RECORD_NOT_FILED", plugin=failed.plugin, detail=str(failed))
        return outcome(decision, Status.FAILED, [*findings, f], ())
    log.info("request %s blocked: %s", req.id, ",".join(facts.reasons))
    return outcome(decision, Status.BLOCKED, findings, (record.id,))


def _first(record_id: str, state: LegState, now: dt.datetime, **more: object) -> Event:
    return Event(record_id=record_id, kind=state, source=Source.HOST, at=now, dedup=f"{record_id}:{state.value}",
                 **more)  # type: ignore[arg-type]


def write_dispatch(host: Host, decision: Decision, trail: Trail) -> Written:
    """The chosen candidate's legs: records, outbox rows, and the portal's copy, in one commit."""
    req, now, chosen = decision.request, decision.now, decision.chosen
    assert chosen is not None
    hold_until = chosen.hold_until
    if req.not_before is not None and req.not_before > now:
        hold_until = max(filter(None, (hold_until, req.not_before)))
    held = hold_until is not None
    inline = not held and host.config.delivery_mode != "queue"
    owner = f"inline:{uuid.uuid4().hex}" if inline else None
    # Rejected candidates' blocks travel with the records as information: why not SMS.
    context = tuple(attrs.evolve(f, severity=Severity.INFO) for f in decision.rejected_blocks)
    legs = chosen.legs
    # A message kept in the portal that no notice announces: the patient is not told.
    unannounced = len(legs) == 1 and legs[0].channel.holds_content
    clinic = host.config.clinic.name
    facts = tuple(leg_facts(req, leg.route, leg.channel, text=leg.message.text, subject=leg.message.subject,
                            language=leg.message.language, link=leg.link,
                            findings=(*(f for f in leg.findings if f.severity is not Severity.INFO), *context),
                            recorded=now, clinic=clinic, announced=not unannounced) for leg in legs)
    ids = tuple(f.id for f in facts)
    status = "held" if held else "queued" if not inline else "sending"
    first = LegState.HELD if held else LegState.QUEUED
    reason = "QUIET_HOURS" if held and chosen.blocks else None
    stored: dict[str, Receipt] = {}
    try:
        with host.storage.transaction():
            if host.storage.records.enter_request(id=req.id, patient=req.patient_ref, category=req.category.value,
                                                  now=now, status=status, record_ids=ids,
                                                  identifiers=req.identifiers, digest=content_digest(decision.asked or req, host.audit.patient)) is None:
                raise Raced
            records = []
            for f, leg in zip(facts, legs):
                events = [_first(f.id, first, now, until=hold_until, reason=reason)]
                if leg.channel.holds_content:
                    # The channel is the encrypted store itself: the message is kept there now, in
                    # this transaction (the outbox never holds its words), and that is its delivery.
                    # The record points at that copy: without it there is no record, so no send.
                    try:
                        receipt = leg.channel.transport.send(Delivery(leg.message, leg.route.address, f.id,
                                                                      recipient=decision.recipient))
                    except Exception as exc:
                        raise FilingFailed(leg.channel.plugin or leg.channel.name, exc) from exc
                    stored[f.id] = receipt
                    events.append(Event(record_id=f.id, kind=LegState.ACCEPTED, source=Source.HOST,
                                        at=receipt.at or now, dedup=f"{f.id}:accepted:{receipt.provider_id or 'stored'}",
                                        provider_id=receipt.provider_id))
                records.append(host.storage.records.add(f, leg.message.template, events))
            lease = INLINE_LEASE if owner else None
            held_until = time.monotonic() + INLINE_LEASE.total_seconds() if owner else None  # before the rows are put
            items = tuple(_item(req, f, leg, index, held=held, hold_until=hold_until, owner=owner,
                                held_until=held_until)
                          for index, (f, leg) in enumerate(zip(facts, legs)) if not leg.channel.holds_content)
            for item in items:
                host.storage.outbox.put(item, now=now, lease=lease)
            for record in records:
                failed = host.file_each(record)
                if failed is not None:
                    raise failed
            if unannounced:
                raise_item(host.storage, kind="unannounced", key=ids[0], patient=req.patient_ref, now=now,
                           request_id=req.id, record_id=ids[0], message_id=ids[0],
                           description="No notice channel could be used for this portal message: "
                                       "tell the patient it is waiting, or give them the link in person.")
            trail.add("held" if held else "queued" if not inline else "channel.chosen",
                      channels=[leg.channel.name for leg in legs], records=list(ids),
                      until=hold_until.isoformat() if hold_until else None)
            trail.flush()
    except Raced:
        return Written(repeat_outcome(host, attrs.evolve(decision, repeat=True), trail))
    except FilingFailed as failed:
        return Written(write_not_filed(host, decision, trail, failed))
    findings = [f for f in chosen.findings if f.severity is not Severity.INFO] + list(decision.rejected_blocks)
    channels = tuple(leg.channel.name for leg in legs)
    if held:
        log.info("request %s held until %s", req.id, hold_until.isoformat() if hold_until else "?")
        return Written(outcome(decision, Status.HELD, findings, ids, channels=channels), facts=facts)
    if unannounced:
        not_told = finding("PATIENT_NOT_TOLD", plugin="host", channel=legs[0].channel.name)
        return Written(attrs.evolve(outcome(decision, Status.STORED, [*findings, not_told], ids, channels=channels),
                                    receipts=tuple(stored.values())), facts=facts)
    if not inline:
        return Written(outcome(decision, Status.QUEUED, findings, ids, channels=channels), facts=facts)
    return Written(attrs.evolve(outcome(decision, Status.SENT, findings, ids, channels=channels),
                                receipts=tuple(stored.values())), items, facts, owner, decision.recipient)


def _item(req: Request, facts: RecordFacts, leg: Leg, index: int, *, held: bool, hold_until: dt.datetime | None,
          owner: str | None, held_until: float | None) -> Item:
    html = withheld(leg.message.html, leg.link, LINK_SLOT)
    return Item(key=facts.id, request_id=req.id, channel=leg.channel.name, address=leg.route.address or None,
                leg=index, state="held" if held else "sending" if owner else "pending",
                attempts=1 if owner else 0, not_before=hold_until, expires=_expires(req), lease_owner=owner,
                held_until=held_until, payload=Payload(html=html, template=leg.message.template, link_from=leg.link_from,
                                                        window=leg.window, window_known=True))


def _expires(req: Request) -> dt.datetime | None:
    """When the row is no longer worth sending: the request's expiry, or a reminder's appointment
    when that comes first (a reminder held by quiet hours past its appointment is not sent)."""
    times = [req.expires]
    if req.category is Category.APPOINTMENT_REMINDER:
        times.append(req.appointment)
    known = [t for t in times if t is not None]
    return min(known) if known else None


def write_not_filed(host: Host, decision: Decision, trail: Trail, failed: FilingFailed) -> Outcome:
    """A filer refused the records: nothing was written or sent. The chart keeps one not-done
    record saying so; the request id may be sent again once the filer works. Another decision of
    the id written meanwhile is answered as write_blocked says."""
    log.error("request %s: not sent, a record could not be filed by %s", decision.request.id, failed.plugin)
    return _not_done(functools.partial(_write_not_filed, failed=failed), host, decision, trail)


def _write_not_filed(host: Host, decision: Decision, trail: Trail, *, failed: FilingFailed) -> Outcome:
    req, now = decision.request, decision.now
    not_filed = finding("RECORD_NOT_FILED", plugin=failed.plugin,
                        detail=f"{failed.plugin}: {type(failed.error).__name__}")
    with host.storage.transaction():
        attempt = host.storage.records.next_attempt(req.id)
        facts = blocked_facts(req, (not_filed,), None, recorded=now, clinic=host.config.clinic.name, attempt=attempt,
                              role="not-filed")
        _entered(host, decision, facts, attempt, "failed")
        record = host.storage.records.add(facts, None, [_first(facts.id, LegState.BLOCKED, now)])
        host.file_each(record)  # wherever filing still works
        trail.add("record.not_filed", records=[record.id], plugin=failed.plugin, reasons=["RECORD_NOT_FILED"])
        trail.flush()
    findings = [*(x for x in decision.chosen.findings if x.severity is not Severity.INFO), not_filed] \
        if decision.chosen else [not_filed]
    return outcome(decision, Status.FAILED, findings, (record.id,),
                   channels=tuple(leg.channel.name for leg in decision.chosen.legs) if decision.chosen else ())
