"""The chart's view of a record: its fixed facts (what was decided and said) and its events
(what happened since) projected into one :class:`~emrcomm.model.Record`, from which the FHIR
Communication is built. The projection depends on the set of events only, never on the order
they arrived in, so any process may append and any process may project.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from attrs import frozen

from emrcomm.lifecycle.events import Event, Note, Source
from emrcomm.lifecycle.states import RULES, LegState, rank
from emrcomm.model import Category, Finding, Record, Request, Severity, Status
from emrcomm.rules import finding

# States after which the message had left: `sent` is set.
_SENT = frozenset({LegState.ACCEPTED, LegState.FAILED, LegState.DELIVERED, LegState.RECALLED, LegState.READ})
# Events that prove the message had left by their time: the sender's "accepted", and a report
# that it arrived, did not arrive, or was read, which may be observed first (a provider's
# callback can reach `serve` before the worker that sent the message has recorded the send).
_LEFT = frozenset({LegState.ACCEPTED, LegState.DELIVERED, LegState.FAILED, LegState.READ})
# A leg that ended without leaving (or left and did not arrive, or was withdrawn); one that left.
_NOT_DONE = frozenset({LegState.CANCELLED, LegState.EXPIRED, LegState.UNDELIVERABLE, LegState.FAILED,
                       LegState.RECALLED})
_DONE = frozenset({LegState.ACCEPTED, LegState.DELIVERED, LegState.READ})
# "Not sent" ends that a requeue by staff takes back.
_REQUEUABLE = frozenset({LegState.CANCELLED, LegState.EXPIRED, LegState.UNDELIVERABLE})


@frozen
class RecordFacts:
    """What a record says that never changes once it is filed: the request it belongs to, the
    route, the words (a notice's link withheld), the findings of the decision.

    ``announced`` is False for a portal message that no notice announces: the patient was not
    told, so it is not complete until they read it or staff say they told them.
    """

    id: str
    request: Request
    role: str
    recorded: dt.datetime
    channel: str | None = None
    medium: str | None = None
    address: str | None = None
    text: str | None = None
    subject: str | None = None
    language: str = "en"
    findings: tuple[Finding, ...] = ()
    reasons: tuple[str, ...] = ()
    sender_display: str | None = None
    payload_reference: str | None = None
    in_response_to: str | None = None
    announced: bool = True

    # stored form ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        req = self.request
        out: dict[str, Any] = {
            "v": 1, "role": self.role, "recorded": self.recorded.isoformat(),
            "request": {"id": req.id, "patient": req.patient_ref, "category": req.category.value,
                        "priority": req.priority, "based_on": req.based_on, "sender": req.sender,
                        **({"sender_name": req.sender_name} if req.sender_name else {})},
            "channel": self.channel, "medium": self.medium, "address": self.address, "text": self.text,
            "subject": self.subject, "language": self.language,
            "findings": [_finding_json(f) for f in self.findings],
            "reasons": list(self.reasons), "sender_display": self.sender_display,
            "payload_reference": self.payload_reference, "in_response_to": self.in_response_to,
        }
        if not self.announced:
            out["announced"] = False
        return {k: v for k, v in out.items() if v not in (None, [], "")}

    @classmethod
    def from_json(cls, record_id: str, data: Mapping[str, Any]) -> RecordFacts:
        """Raises UnknownValue for what a newer release may write (a category or severity this
        one does not know, a finding with more fields); ValueError, KeyError… for facts damaged."""
        r = data["request"]
        request = Request(r["patient"], _known(Category, r["category"], "a category"), id=r["id"],
                          priority=r.get("priority", "routine"), based_on=r.get("based_on"), sender=r.get("sender"),
                          sender_name=r.get("sender_name"))
        return cls(
            id=record_id, request=request, role=data["role"], recorded=dt.datetime.fromisoformat(data["recorded"]),
            channel=data.get("channel"), medium=data.get("medium"), address=data.get("address"),
            text=data.get("text"), subject=data.get("subject"), language=data.get("language", "en"),
            findings=tuple(_finding_from(f) for f in data.get("findings", ())),
            reasons=tuple(data.get("reasons", ())), sender_display=data.get("sender_display"),
            payload_reference=data.get("payload_reference"), in_response_to=data.get("in_response_to"),
            announced=data.get("announced", True),
        )


def _finding_json(f: Finding) -> list[Any]:
    return [f.code, f.severity.value, f.message, f.remedy, f.plugin, f.channel, f.override]


_E = TypeVar("_E", Category, Severity)
_FINDING_FIELDS = ("code", "severity", "message", "remedy", "plugin", "channel", "override")


class UnknownValue(ValueError):
    """Facts that hold a value this release does not know, as a newer release writes them (a new
    category or severity, a finding with a field added): says which kind, never the value."""


def _known(kind: type[_E], value: Any, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        if isinstance(value, str):  # a word this release does not know; anything else is damage
            raise UnknownValue(what) from None
        raise


def _finding_from(data: list[Any]) -> Finding:
    if isinstance(data, list) and len(data) > len(_FINDING_FIELDS):
        raise UnknownValue("a finding with more fields")
    code, severity, message, remedy, plugin, channel, override = data
    return Finding(code=code, severity=_known(Severity, severity, "a severity"), message=message, remedy=remedy,
                   plugin=plugin, channel=channel, override=override)


def _said(e: Event) -> tuple[Any, ...]:
    """An order of events by time, then by what they say, never by their dedup key (a digest,
    once stored): two events that say the same thing are interchangeable."""
    return (e.at, e.kind.value, e.source.value, e.provider_id or "", e.reason or "", e.detail,
            e.until or e.at)


def after_requeues(events: Iterable[Event], now: dt.datetime) -> dt.datetime:
    """The time for an end (expired, cancelled, undeliverable) written ``now``: a microsecond
    after the leg's last requeue when that is not before ``now`` (a clock that did not move
    between the two). A requeue takes back the ends at or before it, so an end at its instant
    would be read as taken back; the writer knows it came after, and its time says so."""
    requeued = [e.at for e in events if e.kind is Note.REQUEUED]
    last = max(requeued, default=None)
    return now if last is None or last < now else last + dt.timedelta(microseconds=1)


def state_of(events: Iterable[Event]) -> tuple[LegState | None, Event | None]:
    """The state the events put a leg in, and the event that decided it (None: no state yet)."""
    events = list(events)
    requeued = [e.at for e in events if e.kind is Note.REQUEUED]
    last_requeue = max(requeued) if requeued else None
    moving = [e for e in events if isinstance(e.kind, LegState)
              and not (last_requeue is not None and e.kind in _REQUEUABLE and e.at <= last_requeue)]
    if not moving:
        return (LegState.QUEUED, None) if requeued else (None, None)
    # Highest rank wins; among equals the earliest, then what it says: a total order.
    winner = min(moving, key=lambda e: (-rank(e.kind), *_said(e)))  # type: ignore[arg-type]
    if winner.kind is LegState.QUEUED:
        # Held again as it left (its sending window closed: a retry, a requeue, a takeover at
        # night) after it was queued or requeued, and nothing since has moved it further: held,
        # until the window opens. By the events' times, not their arrival: the same set, the
        # same state. A hold at the same instant as the queueing does not count (0.1's records
        # converted carry both at the time filed, and were released).
        held = [e for e in moving if e.kind is LegState.HELD]
        if held:
            last_held = max(held, key=_said)
            since = max([e.at for e in moving if e.kind is LegState.QUEUED] + requeued)
            # A try that failed after it: the window opened, the row was tried, the hold is over.
            tried = any(e.kind is Note.ATTEMPT_FAILED and e.at > last_held.at for e in events)
            if last_held.at > since and not tried:
                return LegState.HELD, last_held
    return LegState(winner.kind), winner


def project(facts: RecordFacts, events: Iterable[Event]) -> Record:
    """The record as the chart shows it now (see the module docstring)."""
    events = sorted(events, key=_said)
    state, decisive = state_of(events)
    if state is None:  # no event yet: as it was filed
        state = LegState.BLOCKED if facts.role == "blocked" else LegState.QUEUED
    accepted = [e for e in events if e.kind is LegState.ACCEPTED]
    first_accepted = accepted[0] if accepted else None
    left = min((e.at for e in events if e.kind in _LEFT), default=None)
    reasons = facts.reasons
    findings = facts.findings
    hold_until = None
    fhir_status = RULES[state].status
    if state is LegState.HELD and decisive is not None:
        hold_until = decisive.until
        reasons = (decisive.reason,) if decisive.reason else ()
    elif state in _NOT_DONE and decisive is not None:
        code = decisive.reason or {LegState.EXPIRED: "MESSAGE_EXPIRED", LegState.RECALLED: "RECALLED"}.get(
            state, "DELIVERY_FAILED")
        reasons = (code,)
        # The event's detail fills the sentence, whichever word it uses for it (CONSENT_REVOKED:
        # the revocation's source, "STOP reply"; the others: the provider's reason).
        said = decisive.detail or "no detail"
        findings = (*findings, finding(code, plugin=decisive.source.value, channel=facts.channel,
                                       severity=Severity.WARN, detail=said, source=said))
    elif (state is LegState.ACCEPTED and (not facts.announced or any(e.kind is Note.NOT_TOLD for e in events))
          and not any(e.kind is Note.ANNOUNCED for e in events)):
        fhir_status = "in-progress"
        reasons = ("PATIENT_NOT_TOLD",)
        findings = (*findings, finding("PATIENT_NOT_TOLD", plugin="host", channel=facts.channel))
    read = next((e for e in events if e.kind is LegState.READ), None)
    received = next((e for e in events if e.kind is LegState.RECEIVED), None)
    return Record(
        id=facts.id, request=facts.request, status=fhir_status, state=state.value, channel=facts.channel,
        medium=facts.medium, address=facts.address, role=facts.role, text=facts.text, subject=facts.subject,
        language=facts.language, findings=findings, reasons=reasons,
        sent=left if left is not None and state in _SENT else received.at if received is not None else None,
        received=read.at if read is not None else received.at if received is not None else None,
        recorded=facts.recorded, hold_until=hold_until,
        provider_id=first_accepted.provider_id if first_accepted is not None else None,
        in_response_to=facts.in_response_to, sender_display=facts.sender_display,
        payload_reference=facts.payload_reference, notes=tuple(_notes(events, accepted)), version=len(events),
    )


def request_status(records: Iterable[Record]) -> Status:
    """How a request stands now, from its records (its legs, or the record of its block): what
    a repeated request and the FHIR API's request ledger answer.

    Sent when every leg left; held or queued while one waits; stored when the portal message
    left but no notice told the patient (none could be sent, or every one ended unsent); failed
    when any other leg ended without leaving (staff requeue it: ``emrcomm outbox requeue``).
    """
    records = list(records)
    legs = [r for r in records if r.role not in ("blocked", "not-filed", "reply")]
    if not legs:
        return Status.BLOCKED if records else Status.QUEUED
    states = {r.id: LegState(r.state) if r.state else LegState.QUEUED for r in legs}
    if LegState.HELD in states.values():
        return Status.HELD
    if LegState.QUEUED in states.values():
        return Status.QUEUED
    if set(states.values()) <= _DONE:
        # A portal message no notice announced is stored until the patient reads it.
        return Status.STORED if any("PATIENT_NOT_TOLD" in r.reasons for r in legs) else Status.SENT
    failed = [r for r in legs if states[r.id] in _NOT_DONE]
    primary_left = any(r.role != "notice" and states[r.id] in _DONE for r in legs)
    if primary_left and all(r.role == "notice" for r in failed):
        return Status.STORED
    return Status.FAILED


def _notes(events: list[Event], accepted: list[Event]) -> list[str]:
    """What the chart says of the events besides its status, oldest first."""
    from emrcomm.fhir import fhir_datetime

    out = []
    for e in events:
        when = fhir_datetime(e.at)
        if e.kind is LegState.DELIVERED:
            out.append(f"delivered {when}")
        elif e.kind is LegState.RECALLED:
            out.append(f"recalled {when}" + (f": {e.detail}" if e.detail else ""))
        elif e.kind is Note.LINK_EXPIRED:
            out.append(f"expired unread {when}")
        elif e.kind is Note.NOT_TOLD:
            out.append(f"no notice could tell the patient {when}")
        elif e.kind is Note.ANNOUNCED:
            out.append(f"the patient was told {'by staff' if e.source is Source.STAFF else 'by a notice'} {when}")
        elif e.kind is Note.REQUEUED:
            out.append(f"put back in the outbox by staff {when}")
    for again in accepted[1:]:
        out.append(f"sent again {fhir_datetime(again.at)} (a worker's lease ran out mid-send)")
    return out
