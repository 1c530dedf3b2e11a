"""The chart as people read it: a patient's messages, replies, opt-outs and consents in time
order, in the patient's time zone, each message with its channel, its status in words and why it
was blocked or held (the rule's staff sentence). ``emrcomm records`` prints it; the staff page
under ``emrcomm serve`` shows it. Built from the chart's records and events, the consent ledger
and the directory's consents; it changes nothing.
"""

from __future__ import annotations

import datetime as dt
import heapq
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import evolve, field, frozen

from emrcomm.errors import EmrcommError
from emrcomm.lifecycle.events import Event, Note
from emrcomm.lifecycle.states import LegState
from emrcomm.model import ConsentGrant, Recipient, Record, Request
from emrcomm.plugin.contract import KeepingTransport
from emrcomm.storage.consent import ConsentEvent
from emrcomm.storage.records import Unreadable

if TYPE_CHECKING:
    from emrcomm.host import Host

CHANNEL_NAMES = {"sms": "SMS", "email": "email", "portal": "the portal"}

# The status of a message in words, and its tone: done (it reached the patient or the clinic),
# waiting (it may still go), stopped (it did not go, or no longer counts).
STATUS: dict[str, tuple[str, str]] = {
    LegState.HELD: ("held", "waiting"),
    LegState.QUEUED: ("waiting to be sent", "waiting"),
    LegState.CANCELLED: ("not sent: cancelled", "stopped"),
    LegState.EXPIRED: ("not sent: it expired first", "stopped"),
    LegState.UNDELIVERABLE: ("not sent: the provider would not take it", "stopped"),
    LegState.ACCEPTED: ("sent", "done"),
    LegState.FAILED: ("sent, then reported not delivered", "stopped"),
    LegState.DELIVERED: ("delivered", "done"),
    LegState.RECALLED: ("recalled before it was read", "stopped"),
    LegState.READ: ("read by the patient", "done"),
    LegState.BLOCKED: ("not sent", "stopped"),
    LegState.RECEIVED: ("received", "done"),
}

# What each event says in the list of steps under a message (None: not shown).
STEPS: dict[LegState | Note, str | None] = {
    LegState.HELD: "held", LegState.QUEUED: None, LegState.CANCELLED: "cancelled",
    LegState.EXPIRED: "expired before it could be sent", LegState.UNDELIVERABLE: "given up",
    LegState.ACCEPTED: "sent", LegState.FAILED: "reported not delivered", LegState.DELIVERED: "delivered",
    LegState.RECALLED: "recalled by the clinic", LegState.READ: "read", LegState.BLOCKED: None,
    LegState.RECEIVED: None, Note.ATTEMPT_FAILED: "a try failed; it will be tried again", Note.PROGRESS: None,
    Note.LINK_EXPIRED: "the link expired unread", Note.ANNOUNCED: "staff told the patient",
    Note.REQUEUED: "put back in the outbox by staff", Note.NOT_TOLD: "no notice could tell the patient",
}


@frozen
class Step:
    """One thing that happened to a message after it was decided."""

    at: dt.datetime
    what: str


@frozen
class Entry:
    """One line of the timeline: a message (or a request no channel could carry), a reply from
    the patient, or a consent or opt-out.

    ``why``: the rule's sentence for staff, one per reason the message was blocked, held or not
    sent. ``text``: the words sent or received, when the chart keeps them (never the portal's).
    """

    at: dt.datetime
    kind: str  # message, reply, consent
    headline: str
    status: str = ""
    tone: str = "done"
    why: tuple[str, ...] = ()
    text: str | None = None
    note: str | None = None
    steps: tuple[Step, ...] = ()
    record_id: str | None = None
    request_id: str | None = None
    patient: str | None = None
    kept: str | None = None  # the id under which a channel keeps the words itself (a portal reply)


@frozen
class Timeline:
    """A patient's timeline (``patient`` set), or the clinic's log of every patient."""

    zone: ZoneInfo
    zone_from: str  # "patient" or "clinic"
    entries: Iterable[Entry]
    patient: str | None = None
    name: str | None = None
    undated: tuple[str, ...] = ()  # consents on file with no date
    merged: tuple[str, ...] = ()  # the other charts of this patient (a merge) whose records are shown
    # Records left out: this release cannot read them (the clinic's log fills it as its entries are read).
    unreadable: list[Unreadable] = field(factory=list)

    def local(self, when: dt.datetime) -> dt.datetime:
        return when.astimezone(self.zone)


def for_patient(host: Host, patient: str, *, status: str | None = None, channel: str | None = None,
                category: str | None = None, since: dt.datetime | None = None,
                until: dt.datetime | None = None) -> Timeline:
    """``patient``'s timeline. Its time zone is the patient's (from the directory), else the
    clinic's first. Consents and opt-outs are left out when filtering by status or category.
    The directory's patient may have been merged with other charts (``Recipient.charts``: the
    chart in use, and those merged into it): what was filed under each of them is this patient's."""
    recipient = _recipient(host, patient)
    zone, zone_from = _zone(host, recipient)
    charts = tuple(dict.fromkeys((patient, *(recipient.charts if recipient is not None else ()))))
    unreadable: list[Unreadable] = []
    records = [r for chart in charts
               for r in host.storage.records.find(patient=chart, status=status, channel=channel, category=category,
                                                  since=since, until=until, unreadable=unreadable)]
    events = {r.id: host.storage.records.events(r.id) for r in records}
    entries = [_record_entry(r, events[r.id], {x.id: x for x in records}, zone) for r in records]
    undated: list[str] = []
    if status is None and category is None:
        addresses = list(_addresses(host, recipient))
        ledger = {e.seq: e for chart in charts
                  for e in host.storage.consent.history(patient=chart, addresses=addresses, since=since, until=until)}
        entries += [_ledger_entry(e) for e in sorted(ledger.values(), key=lambda e: e.seq)
                    if channel is None or e.channel == channel]
        for grant in recipient.consents if recipient is not None else ():
            if channel is not None and grant.channel != channel:
                continue
            dated, words = _grant_entries(grant, patient)
            undated += words
            entries += [e for e in dated if (since is None or e.at >= since) and (until is None or e.at < until)]
    entries.sort(key=_order)
    name = " ".join(p for p in (recipient.given_name, recipient.family_name) if p) if recipient else None
    return Timeline(zone=zone, zone_from=zone_from, entries=tuple(entries), patient=patient, name=name or None,
                    undated=tuple(undated), unreadable=unreadable, merged=charts[1:])


def for_clinic(host: Host, *, status: str | None = None, channel: str | None = None, category: str | None = None,
               since: dt.datetime | None = None, until: dt.datetime | None = None) -> Timeline:
    """Every patient's messages and the consent ledger, in time order, in the clinic's time zone.
    Read as it is printed: a clinic's whole chart is never held in memory."""
    zone = ZoneInfo(host.config.clinic.time_zones[0])
    unreadable: list[Unreadable] = []
    records = host.storage.records.find(status=status, channel=channel, category=category, since=since, until=until,
                                        unreadable=unreadable)
    messages = (_record_entry(r, host.storage.records.events(r.id), {}, zone) for r in records)
    streams: list[Iterable[Entry]] = [messages]
    if status is None and category is None:
        ledger = host.storage.consent.history(since=since, until=until)
        streams.append(sorted((_ledger_entry(e) for e in ledger if channel is None or e.channel == channel),
                              key=lambda e: e.at))
    return Timeline(zone=zone, zone_from="clinic", entries=heapq.merge(*streams, key=lambda e: e.at),
                    unreadable=unreadable)


def _order(entry: Entry) -> tuple[dt.datetime, int, int]:
    # At the same moment, cause before effect: a reply, the opt-out it made, the answer to it;
    # a portal message before its notice.
    return entry.at, ("reply", "consent", "message").index(entry.kind), int(entry.headline.find("notice of") >= 0)


# building ----------------------------------------------------------------------------------------
def _recipient(host: Host, patient: str) -> Recipient | None:
    """The directory's patient; None when no directory knows them or it cannot be reached (the
    timeline is still shown, from the chart alone)."""
    try:
        return host.plugins.find_recipient(Request(patient, "appointment-reminder", id="timeline"))
    except (EmrcommError, OSError):
        return None


def _zone(host: Host, recipient: Recipient | None) -> tuple[ZoneInfo, str]:
    if recipient is not None and recipient.time_zone:
        try:
            return ZoneInfo(recipient.time_zone), "patient"
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(host.config.clinic.time_zones[0]), "clinic"


def _addresses(host: Host, recipient: Recipient | None) -> Iterator[tuple[str, str]]:
    """(channel, address) for every address on file that a channel writes to."""
    if recipient is None:
        return
    for channel in host.channels.values():
        for point in recipient.contact_points:
            if channel.address_system and point.system == channel.address_system:
                yield channel.name, point.value


def channel_name(channel: str | None) -> str:
    return CHANNEL_NAMES.get(channel or "", channel or "no channel")


def address_words(channel: str | None, address: str | None) -> str:
    if not address or address.startswith("Patient/"):  # the portal's "address" is the patient
        return ""
    # Here, not at the top: emrcomm.web brings Starlette (~0.1 s), which `emrcomm records` never uses.
    from emrcomm.web.i18n import phone_display

    return phone_display(address) if address.startswith("+") else address


_UNDATED = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# emrcomm's own answers to a patient's message, as staff read them.
_ANSWER_NAMES = {"optout-confirmation": "Opt-out confirmation", "optin-confirmation": "Opt-in confirmation",
                 "help-reply": "Answer to HELP", "auto-answer": "Automatic answer to a reply"}


# What a reply answers, as a noun: "to the clinical message of …", not "to the clinical of …".
_ANSWERED = {"appointment-reminder": "appointment reminder", "results-available": "results notice",
             "invoice": "invoice", "questionnaire": "questionnaire"}


def _answered_name(record: Record) -> str:
    category = record.request.category.value
    if category in _ANSWERED:
        return _ANSWERED[category]
    name = _category(record).lower()
    return name if category in _ANSWER_NAMES else f"{name} message"


def _category(record: Record) -> str:
    category = record.request.category.value
    if category in _ANSWER_NAMES:
        return _ANSWER_NAMES[category]
    words = category.replace("-", " ")
    return words[:1].upper() + words[1:]


def _record_entry(record: Record, events: Sequence[Event], siblings: dict[str, Record], zone: ZoneInfo) -> Entry:
    state = LegState(record.state) if record.state else LegState.QUEUED
    status, tone = STATUS[state]
    # Every filed record has its time; the wall clock never decides where one stands.
    at = record.recorded or record.sent or min((e.at for e in events), default=_UNDATED)
    steps = tuple(_steps(events, record))
    ids = (record.id, record.request.id, record.request.patient_ref)
    if record.role == "reply":
        answered = siblings.get((record.in_response_to or "").removeprefix("Communication/"))
        headline = f"Reply from the patient by {channel_name(record.channel)}"
        if answered is not None:
            headline += f", to the {_answered_name(answered)} of {_short(answered.recorded, zone)}"
        note = ("the words are kept encrypted in the portal (emrcomm inbox --text shows them)"
                if record.payload_reference else None)
        return evolve(_entry(ids, steps, at=record.sent or at, kind="reply", headline=headline, status="received",
                             text=record.text, note=note), kept=_kept_id(record.payload_reference))
    if record.role == "blocked":
        why = _why(record, by_channel=True)
        return _entry(ids, steps, at=at, kind="message", headline=_category(record),
                      status="not sent: no channel could carry it", tone="stopped", why=why)
    to = address_words(record.channel, record.address)
    where = f"by {channel_name(record.channel)}" + (f" to {to}" if to else "")
    author = f" from {record.request.sender_name}" if record.request.sender_name else ""
    headline = (f"{_category(record)}: notice of the portal message {where}" if record.role == "notice"
                else f"{_category(record)}{author} {where}")
    if state is LegState.HELD and record.hold_until is not None:
        status = f"held until {_short(record.hold_until, zone)}"
    if state is LegState.ACCEPTED and record.payload_reference:
        status = "waiting in the portal, not read yet"
    if "PATIENT_NOT_TOLD" in record.reasons:
        status, tone = "kept in the portal, but the patient was not told", "waiting"
    why = _why(record) if state not in (LegState.ACCEPTED, LegState.DELIVERED, LegState.READ) \
        or record.reasons else ()
    note = "the words are kept encrypted in the portal" if record.payload_reference else None
    return _entry(ids, steps, at=at, kind="message", headline=headline, status=status, tone=tone, why=why,
                  text=record.text, note=note)


def _entry(ids: tuple[str, str, str], steps: tuple[Step, ...], *, at: dt.datetime, kind: str, headline: str,
           status: str, tone: str = "done", why: tuple[str, ...] = (), text: str | None = None,
           note: str | None = None) -> Entry:
    record_id, request_id, patient = ids
    return Entry(at=at, kind=kind, headline=headline, status=status, tone=tone, why=why, text=text, note=note,
                 steps=steps, record_id=record_id, request_id=request_id, patient=patient)


def _kept_id(reference: str | None) -> str | None:
    """The kept reply's id from the chart's ``urn:uuid:`` reference to it."""
    if not reference or not reference.startswith("urn:uuid:"):
        return None
    try:
        return uuid.UUID(reference.removeprefix("urn:uuid:")).hex
    except ValueError:
        return None


def with_kept_words(host: Host, entries: Iterable[Entry]) -> list[Entry]:
    """``entries`` with the words of each reply that a channel keeps itself (the portal's,
    decrypted by it): for the staff page, where each read is audited. A reply whose words cannot
    be read keeps its note."""
    keepers = [c.transport for c in host.channels.values() if isinstance(c.transport, KeepingTransport)]
    out = []
    for entry in entries:
        if entry.kept and entry.text is None:
            for transport in keepers:
                try:
                    words = transport.read(entry.kept).get("text")
                except KeyError:
                    continue
                if isinstance(words, str):
                    entry = evolve(entry, text=words, note="kept encrypted in the portal")
                break
        out.append(entry)
    return out


def _why(record: Record, *, by_channel: bool = False) -> tuple[str, ...]:
    """The staff sentence of each rule that stopped or held the record, once each."""
    out: dict[str, None] = {}
    for f in record.findings:
        if f.code not in record.reasons:
            continue
        sentence = f.message
        if by_channel and f.channel:
            sentence = f"{channel_name(f.channel)}: {sentence}"
        out[sentence] = None
    if not out:
        out.update((code, None) for code in record.reasons)
    return tuple(out)


# What a provider or the patient reports about a message sent: told after the "sent" it is about,
# even when its time is earlier (a report filed before the sender recorded "sent", a provider's
# clock or its whole seconds), each with its own time.
REPORTS = frozenset({LegState.DELIVERED, LegState.FAILED, LegState.READ})


def _steps(events: Sequence[Event], record: Record) -> Iterator[Step]:
    sent = min((e.at for e in events if e.kind is LegState.ACCEPTED), default=None)

    def order(event: Event) -> tuple[dt.datetime, bool, int]:
        report = event.kind in REPORTS
        at = max(event.at, sent) if report and sent is not None else event.at
        return at, report, event.seq or 0

    for event in sorted(events, key=order):
        what = STEPS.get(event.kind)
        if what is None:
            continue
        if event.kind is LegState.ACCEPTED and record.payload_reference:
            what = "stored in the portal"
        if event.kind in (LegState.FAILED, LegState.RECALLED, LegState.UNDELIVERABLE, Note.ATTEMPT_FAILED) \
                and event.detail:
            what += f" ({event.detail})"
        yield Step(event.at, what)


def _ledger_entry(event: ConsentEvent) -> Entry:
    where = address_words(event.channel, event.address)
    by = channel_name(event.channel) + (f" at {where}" if where else "")
    purpose = f" for {event.purpose} messages" if event.purpose else ""
    source = f" by {event.source}" if event.source else ""
    if event.revokes:
        headline = f"Opted out of {by}{purpose}{source}"
    else:
        headline = f"Opted in to {by}{purpose}{source}"
    return Entry(at=event.at, kind="consent", headline=headline, tone="stopped" if event.revokes else "done",
                 patient=event.patient)


def _grant_entries(grant: ConsentGrant, patient: str) -> tuple[list[Entry], list[str]]:
    """A consent on file in the directory: dated entries for when it was given and withdrawn, or
    a sentence for the header when the file gives no date."""
    where = address_words(grant.channel, grant.address)
    what = f"{grant.purpose.value} messages by {channel_name(grant.channel)}" + (f" at {where}" if where else "")
    source = f" ({grant.source})" if grant.source else ""
    dated: list[Entry] = []
    if grant.granted is not None:
        dated.append(Entry(at=grant.granted, kind="consent", headline=f"Consented to {what} (patient file)",
                           patient=patient))
    if grant.revoked is not None:
        dated.append(Entry(at=grant.revoked, kind="consent", tone="stopped", patient=patient,
                           headline=f"Withdrew consent to {what}{source} (patient file)"))
    if dated:
        return dated, []
    return [], [f"consents to {what}{source}"]


# text --------------------------------------------------------------------------------------------
def _short(when: dt.datetime | None, zone: ZoneInfo) -> str:
    return _clock(when.astimezone(zone), "%Y-%m-%d %H:%M") if when is not None else "?"


def _clock(local: dt.datetime, form: str) -> str:
    """``local`` written as ``form``, with its UTC offset when the clocks there showed that time
    twice (the hour repeated when daylight saving ends): the two 01:30s are told apart."""
    written = local.strftime(form)
    offset = local.utcoffset()
    if offset is not None and local.replace(fold=1 - local.fold).utcoffset() != offset:
        minutes = int(offset.total_seconds()) // 60
        written += f" (UTC{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d})"
    return written


def text_lines(timeline: Timeline) -> Iterator[str]:
    """The timeline for a terminal, a line at a time (so that ``| head`` stops it early)."""
    zone_name = timeline.zone.key
    if timeline.patient is not None:
        who = f"{timeline.name} ({timeline.patient})" if timeline.name else timeline.patient
        whose = "the patient's" if timeline.zone_from == "patient" else "the clinic's (the patient's is not on file)"
        yield f"{who}: times in {zone_name}, {whose} time zone"
        if timeline.merged:
            yield f"  merged charts: {', '.join(timeline.merged)} (what was filed under them is shown, named)"
        for sentence in timeline.undated:
            yield f"  on file: {sentence}"
    else:
        yield f"Every patient: times in {zone_name}, the clinic's time zone"
    pad = " " * 18
    any_entry = False
    for entry in timeline.entries:
        any_entry = True
        local = entry.at.astimezone(timeline.zone)
        named = timeline.patient is None or entry.patient in timeline.merged
        who = f"{entry.patient}  " if named and entry.patient else ""
        head = f"{_clock(local, '%Y-%m-%d %H:%M')}  {who}{entry.headline}"
        yield head + (f": {entry.status}" if entry.status else "")
        for sentence in entry.why:
            yield f"{pad}why: {sentence}"
        if entry.steps:
            yield pad + steps_line(entry, timeline.zone)
        if entry.text:
            lines = entry.text.splitlines() or [""]
            yield f"{pad}“{lines[0]}" + ("”" if len(lines) == 1 else "")
            for i, line in enumerate(lines[1:], 2):
                yield f"{pad} {line}" + ("”" if i == len(lines) else "")
        if entry.note:
            yield f"{pad}({entry.note})"
    if not any_entry and not timeline.unreadable:
        yield "nothing filed" + (" that matches" if timeline.patient is None else " for this patient")
    yield from unreadable_lines(timeline.unreadable)


def unreadable_lines(unreadable: Iterable[Unreadable]) -> Iterator[str]:
    """A line for each record left out, naming it and why (never its words)."""
    for u in unreadable:
        yield f"not shown: record {u.id} (filed {u.recorded.isoformat(timespec='seconds')}): {u.reason}"


def steps_line(entry: Entry, zone: ZoneInfo) -> str:
    """``sent at 10:00, delivered at 10:01`` (with the date when a step is on another day)."""
    local = entry.at.astimezone(zone)
    return ", ".join(f"{s.what} {_when(s.at, local, zone)}" for s in entry.steps)


def _when(at: dt.datetime, entry_local: dt.datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return f"at {_clock(local, '%H:%M')}" if local.date() == entry_local.date() else f"on {_clock(local, '%Y-%m-%d at %H:%M')}"
