"""The value objects that travel through the pipeline.

Everything here is an immutable attrs class with a plain ``__init__``; FHIR is converted at the
edges (``emrcomm.fhir``), so plugins receive these objects and never parse JSON.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen

if TYPE_CHECKING:
    from emrcomm.plugin.contract import Transport


class Category(enum.StrEnum):
    """Why the clinic writes. Decides the purpose that consent must cover and the channels."""

    APPOINTMENT_REMINDER = "appointment-reminder"
    RESULTS_AVAILABLE = "results-available"
    PRESCRIPTION_PICKUP = "prescription-pickup"
    PRESCRIPTION_REFILL = "prescription-refill"
    INVOICE = "invoice"
    QUESTIONNAIRE = "questionnaire"
    EDUCATION = "education"
    CLINICAL = "clinical"
    MARKETING = "marketing"
    # emrcomm's own answers to a patient's message (never requested by an EMR): each is filed
    # under its own category, goes at once, on the channel and to the address it answers.
    OPTOUT_CONFIRMATION = "optout-confirmation"
    OPTIN_CONFIRMATION = "optin-confirmation"
    HELP_REPLY = "help-reply"
    AUTO_ANSWER = "auto-answer"

    @property
    def purpose(self) -> Purpose:
        if self is Category.INVOICE:
            return Purpose.BILLING
        if self is Category.MARKETING:
            return Purpose.COMMERCIAL
        return Purpose.CLINICAL

    @property
    def answers_patient(self) -> bool:
        """An automatic answer to the patient's own message: sent at once, whatever the hour,
        only where that message came from (``Request.in_response_to``)."""
        return self in _ANSWERS

    @property
    def answers_keyword(self) -> bool:
        """The answer carriers require to STOP, START or HELP: it goes whatever consent is on
        file (the patient just wrote to the clinic), and HELP and the one confirmation of an
        opt-out go after the opt-out too."""
        return self in _KEYWORD_ANSWERS


_KEYWORD_ANSWERS = frozenset({Category.OPTOUT_CONFIRMATION, Category.OPTIN_CONFIRMATION, Category.HELP_REPLY})
_ANSWERS = _KEYWORD_ANSWERS | {Category.AUTO_ANSWER}


class Purpose(enum.StrEnum):
    """What a consent covers (docs/rule-catalogue.md A)."""

    CLINICAL = "clinical"
    BILLING = "billing"
    COMMERCIAL = "commercial"


class Sensitivity(enum.StrEnum):
    """``normal`` may travel on any consented channel; ``restricted`` only on a secure one."""

    NORMAL = "normal"
    RESTRICTED = "restricted"


class Severity(enum.StrEnum):
    """``info`` is a fact about the text; ``warn`` lets it go and files the warning; ``block`` stops it."""

    INFO = "info"
    WARN = "warn"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return {"info": 0, "warn": 1, "block": 2}[self.value]


class Status(enum.StrEnum):
    """How a request ended, as the EMR shows it to staff."""

    SENT = "sent"
    # Kept in the secure portal, but no notice could tell the patient: staff have a task to.
    STORED = "stored"
    QUEUED = "queued"
    HELD = "held"
    BLOCKED = "blocked"
    FAILED = "failed"


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _same_time(a: dt.datetime, b: dt.datetime) -> bool | None:
    """Whether two times are the same instant; None when one has a zone and the other not."""
    if (a.tzinfo is None) != (b.tzinfo is None):
        return None
    return a == b


def new_id() -> str:
    return uuid.uuid4().hex


@frozen
class ContactPoint:
    """One way to reach the patient: ``system`` is ``sms``, ``phone`` or ``email``."""

    system: str
    value: str
    use: str | None = None
    rank: int | None = None
    verified: bool = False


@frozen
class ConsentGrant:
    """A consent record: this channel (and address, when given) may be used for this purpose.

    ``revoked`` is the time it was withdrawn (STOP reply, unsubscribe, front-desk note), or None.
    """

    channel: str
    purpose: Purpose
    address: str | None = None
    granted: dt.datetime | None = None
    revoked: dt.datetime | None = None
    source: str | None = None
    accepts_unencrypted_email: bool = False

    def covers(self, channel: str, address: str | None, purpose: Purpose, at: dt.datetime) -> bool:
        """Whether this grant (revoked or not) is about this channel, address and purpose at ``at``."""
        return (
            self.channel == channel
            and self.purpose == purpose
            and (self.address is None or address is None or self.address == address)
            and (self.granted is None or self.granted <= at)
        )

    def in_force(self, channel: str, address: str | None, purpose: Purpose, at: dt.datetime) -> bool:
        """Whether this grant covers the channel, address and purpose and is not revoked at ``at``."""
        return self.covers(channel, address, purpose, at) and (self.revoked is None or self.revoked > at)


@frozen
class Recipient:
    """The patient as the directory knows them: how to reach them and what they agreed to.

    ``preferred_channels`` is the patient's documented order of channels; when
    ``restrict_to_preferred`` is true (a confidential-communication request), no other channel
    may be used. ``jurisdiction`` is ISO 3166-2 (``CA-QC``, ``US-FL``); ``time_zone`` is IANA.
    ``replaces`` names the charts (``Patient/<id>``) the directory found merged into this one
    (FHIR Patient.link ``replaced-by``), the one asked for first: a request that names one of them
    is sent to, and filed under, this patient. ``merged`` names every chart the directory knows
    was merged into this one: ``replaces``, then the charts this one says it replaces (FHIR
    Patient.link ``replaces``). Their consents are among ``consents``, and the records filed under
    them are this patient's (the timeline, the healthcare exemption's frequency count).
    """

    patient_ref: str
    given_name: str = ""
    family_name: str = ""
    contact_points: tuple[ContactPoint, ...] = ()
    consents: tuple[ConsentGrant, ...] = ()
    preferred_channels: tuple[str, ...] = ()
    restrict_to_preferred: bool = False
    language: str = "en"
    time_zone: str | None = None
    jurisdiction: str | None = None
    birth_date: dt.date | None = None
    replaces: tuple[str, ...] = ()
    merged: tuple[str, ...] = ()

    @property
    def charts(self) -> tuple[str, ...]:
        """This patient's chart and every chart merged into it (``merged``), each once: the
        patients the records of this patient are filed under."""
        return tuple(dict.fromkeys((self.patient_ref, *self.merged)))

    def addresses(self, system: str) -> tuple[ContactPoint, ...]:
        """Contact points of one system, best rank first (unranked last, in directory order)."""
        points = [cp for cp in self.contact_points if cp.system == system]
        return tuple(sorted(points, key=lambda cp: cp.rank if cp.rank is not None else 1_000_000))


@frozen
class Identifier:
    """The EMR's own id for a request (a FHIR Identifier): ``value`` within ``system`` (a URI;
    None when the EMR gave none). The request is found by it (``GET
    /fhir/CommunicationRequest?identifier=<system>|<value>``)."""

    system: str | None
    value: str


@frozen
class Request:
    """What the EMR asks for. Build it in Python or from a FHIR CommunicationRequest.

    Exactly one of ``template`` and ``text`` is normally given; when both are, the template
    renders and ``text`` is available to it as ``text``. ``appointment`` is the appointment (or
    pickup) time the message refers to (a datetime variable ``appointment`` sets it when it is
    not given: both say the same thing, and a reminder whose appointment has passed is not
    sent); ``not_before`` is the earliest time to send; ``expires`` is when the message is no
    longer worth sending. ``sender`` is who writes, as a reference (``Practitioner/123``), and
    ``sender_name`` their name as the patient reads it ("Dr. Amara Osei": the portal shows it;
    FHIR ``requester.display``). ``identifier`` is the EMR's own id for the request (from a
    CommunicationRequest, its first identifier with a value), kept with it so that the EMR can
    find it again; a request from Python usually has none. ``other_identifiers`` are the ones
    after it, in the order sent (a CommunicationRequest's further identifiers with a value): the
    request is kept with, and found by, each of them (``identifiers``: all of them, in order).
    """

    patient_ref: str
    category: Category = field(converter=Category)
    id: str = field(factory=new_id)
    text: str | None = None
    template: str | None = None
    variables: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)
    sensitivity: Sensitivity = field(default=Sensitivity.NORMAL, converter=Sensitivity)
    subject: str | None = None
    priority: str = "routine"
    appointment: dt.datetime | None = None
    not_before: dt.datetime | None = None
    expires: dt.datetime | None = None
    sender: str | None = None
    based_on: str | None = None
    channel: str | None = None
    sender_name: str | None = None
    # Files for the patient (a PDF result): only a channel that holds content (the portal) or a
    # secure one carries them; they never travel in a notice.
    attachments: tuple[Attachment, ...] = field(default=(), converter=tuple)
    # An automatic answer: the record id of the patient's message it answers (filed as the
    # answer's Communication.inResponseTo); it goes only to the channel and address that came from.
    in_response_to: str | None = None
    identifier: Identifier | None = None
    other_identifiers: tuple[Identifier, ...] = ()

    @property
    def identifiers(self) -> tuple[Identifier, ...]:
        """Every identifier the request carries, ``identifier`` first."""
        return (self.identifier, *self.other_identifiers) if self.identifier is not None else self.other_identifiers

    def __attrs_post_init__(self) -> None:
        # One way to say when the appointment is, whichever door the request came in by: the
        # variable a template shows and the field the expiry rule reads are the same time.
        shown = self.variables.get("appointment")
        if isinstance(shown, dt.datetime):
            if self.appointment is None:
                object.__setattr__(self, "appointment", shown)
            elif _same_time(shown, self.appointment) is False:
                from emrcomm.errors import RequestError

                raise RequestError(f"request {self.id}: variable 'appointment' ({shown.isoformat()}) and appointment "
                                   f"({self.appointment.isoformat()}) differ; give the appointment's time once")

    @property
    def purpose(self) -> Purpose:
        return self.category.purpose


@frozen
class Attachment:
    content_type: str
    data: bytes = field(repr=False)
    title: str = ""


@frozen
class Message:
    """Rendered words for one patient: what would leave if every check passes."""

    request: Request
    text: str
    language: str = "en"
    subject: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    template: str | None = None

    @property
    def category(self) -> Category:
        return self.request.category

    @property
    def sensitivity(self) -> Sensitivity:
        return self.request.sensitivity


@frozen
class Channel:
    """A way to reach a patient, contributed by a channel plugin.

    ``secure``: the channel may carry clinical content (a clinic can only lower it, in
    ``[channels.NAME]``). ``medium`` is the v3 ParticipationMode code filed in
    Communication.medium (``SMSWRIT``, ``EMAILWRIT``, ``ONLINEWRIT``, or the channel's own).
    ``address_system`` is the system of the patient's contact points it sends to — its own
    (``fax``, ``app``), or ``None`` when it needs no address (the portal). ``form`` says whose
    message-form rules apply: ``sms`` (length, sender, opt-out hint), ``email`` (subject,
    unsubscribe), or ``None`` (the rules every channel has). ``holds_content`` means the
    channel keeps the message itself (encrypted, like the portal): its records carry a
    reference to it, never the text, and a notice on another channel announces it.

    What routing does with a new channel, unless the clinic's ``[plugins.routing]`` says
    otherwise: ``categories`` are the categories an insecure channel may carry itself (after
    the built-in channels of each category's row); ``notices`` says it may carry the
    content-free notice that a portal message waits.
    """

    name: str
    secure: bool
    medium: str
    transport: Transport = field(eq=False, repr=False)
    address_system: str | None = None
    max_segments: int | None = None
    holds_content: bool = False
    plugin: str = ""
    form: str | None = None
    categories: tuple[Category, ...] = field(default=(), converter=lambda cs: tuple(Category(c) for c in cs))
    notices: bool = False


@frozen
class Route:
    """One leg of a candidate: send on ``channel`` to ``address``.

    ``role`` is ``primary`` for the message itself, ``notice`` for a content-free notice that a
    message waits elsewhere; a notice is rendered from ``template``.
    """

    channel: str
    address: str
    role: str = "primary"
    template: str | None = None


@frozen
class Candidate:
    """Routes that go together (``[portal, sms notice]``), and why the planner proposed them."""

    routes: tuple[Route, ...]
    reason: str = ""

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(r.channel for r in self.routes)

    @property
    def label(self) -> str:
        """``portal + sms notice``: how explanations name the candidate."""
        return " + ".join(f"{r.channel}{' notice' if r.role == 'notice' else ''}" for r in self.routes)


@frozen
class Plan:
    """Candidates in order of preference; ``rejected`` says why other channels were not tried."""

    candidates: tuple[Candidate, ...]
    rejected: tuple[tuple[str, str], ...] = ()


@frozen
class Finding:
    """A fact or a verdict about a message.

    ``code`` is a rule code from docs/rules.md; ``message`` is a sentence a receptionist
    understands and ``remedy`` says what to do. ``span`` is the (start, end) of the text that
    triggered it. ``hold_until`` on a block means "not now, at that time" (quiet hours).
    """

    code: str
    severity: Severity = field(converter=Severity)
    message: str
    remedy: str = ""
    plugin: str = ""
    span: tuple[int, int] | None = None
    channel: str | None = None
    hold_until: dt.datetime | None = None
    message_fr: str | None = None
    override: str | None = None

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.BLOCK


WINDOW_LOOKAHEAD_DAYS = 3  # how far SendingWindow.opening looks for a moment open in every zone


@frozen
class SendingWindow:
    """When a message may leave (QUIET_HOURS): local times [start, end) that must hold in every
    zone of ``zones`` (IANA names: the patient's own, or every clinic zone when it is unknown).
    Given by the ``emrcomm_sending_window`` hook; checked again when an outbox row leaves."""

    start: dt.time
    end: dt.time
    zones: tuple[str, ...]

    def contains(self, at: dt.datetime, zones: Sequence[dt.tzinfo]) -> bool:
        """Whether ``at`` is inside the window in every one of ``zones`` (``zones`` resolved)."""
        return all(self.start <= at.astimezone(z).time() < self.end for z in zones)

    def opening(self, at: dt.datetime, zones: Sequence[dt.tzinfo]) -> dt.datetime:
        """The first instant at or after ``at`` inside the window in every one of ``zones``; when
        the zones never share an open moment in the next days (zones too far apart for the
        window), the opening in the first zone: the clinic's main zone decides."""
        first, *others = ([o for o in self._openings(at, z) if o >= at] for z in zones)
        for candidate in sorted({at, *first, *(o for found in others for o in found)}):
            if self.contains(candidate, zones):
                return candidate
        return first[0]  # (a daily window opens within a day: the look-ahead holds one)

    def _openings(self, at: dt.datetime, zone: dt.tzinfo) -> list[dt.datetime]:
        """When the window opens in ``zone`` on the day of ``at`` there and the days after it."""
        today = at.astimezone(zone).date()
        return [dt.datetime.combine(today + dt.timedelta(days=days), self.start, tzinfo=zone).astimezone(dt.UTC)
                for days in range(WINDOW_LOOKAHEAD_DAYS + 1)]


@frozen
class Receipt:
    """What a transport reports after handing a message over."""

    channel: str
    address: str
    provider_id: str | None = None
    status: str = "accepted"
    at: dt.datetime | None = None
    detail: str = ""


@frozen
class Record:
    """One entry in the chart: what happened to one route of one request.

    ``status`` uses FHIR Communication status codes (``in-progress``, ``completed``,
    ``not-done``, ``on-hold``, ``entered-in-error``); ``reasons`` are rule codes for not-done.
    The same ``id`` filed twice is an update, never a second record.
    """

    id: str
    request: Request
    status: str
    channel: str | None = None
    medium: str | None = None
    address: str | None = None
    role: str = "primary"
    text: str | None = None
    subject: str | None = None
    language: str = "en"
    findings: tuple[Finding, ...] = ()
    reasons: tuple[str, ...] = ()
    sent: dt.datetime | None = None
    received: dt.datetime | None = None
    recorded: dt.datetime | None = None
    hold_until: dt.datetime | None = None
    provider_id: str | None = None
    in_response_to: str | None = None
    sender_display: str | None = None
    payload_reference: str | None = None
    # The lifecycle state (emrcomm.lifecycle.states) the record's events put it in, notes they
    # add to the chart (delivered at…, recalled…), and how many events it has had.
    state: str = ""
    notes: tuple[str, ...] = ()
    version: int = 0

    def evolve(self, **changes: Any) -> Record:
        return attrs.evolve(self, **changes)


@frozen
class DeliveryUpdate:
    """Something that happened after hand-off: delivered, failed, read, replied, opted out.

    Identified by ``record_id`` when known, else by (``channel``, ``provider_id``) or, for
    inbound messages, by (``channel``, ``address``). ``key`` says what makes two reports the
    same report (a provider retrying its callback, a replay): the second changes nothing.
    ``source`` is who observed it: ``callback`` (a provider), ``portal``, ``staff``, ``host``.
    """

    kind: str
    at: dt.datetime
    channel: str | None = None
    record_id: str | None = None
    provider_id: str | None = None
    address: str | None = None
    text: str | None = None
    detail: str = ""
    key: str | None = None
    source: str = "callback"
    # Set by the host on a ``reply`` it filed, for the plugins that hear of it: the reply's own
    # record (what a staff task points at, what an automatic answer answers).
    reply_record_id: str | None = None
    # An ``optout`` or ``optin`` for one purpose only (None: every purpose on that address).
    purpose: str | None = None
    # A ``reply`` the provider itself read as a keyword and acted on (Twilio's OptOutType):
    # ``STOP``, ``START`` or ``HELP``. Its block list follows that reading whatever the words
    # (a keyword the clinic added in the provider's console), so the consent ledger does too.
    keyword: str | None = None


@frozen
class Outcome:
    """How one request ended: what staff see and what the EMR stores."""

    request_id: str
    status: Status = field(converter=Status)
    channels: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    record_ids: tuple[str, ...] = ()
    receipts: tuple[Receipt, ...] = ()
    explanation: tuple[str, ...] = ()
    category: Category | None = None
    patient_ref: str | None = None
    identifier: Identifier | None = None
    other_identifiers: tuple[Identifier, ...] = ()
    # Why a request was refused before anything was written (``send_many``'s ``failed`` answer to
    # a RequestError, or to PluginUnavailable: ``transient``, send it again later): its
    # ``issue_code``, ``conflict`` for an id used again for another message.
    # The explanation says it to staff in words that may change; this is what a program reads.
    error: str | None = None

    @property
    def identifiers(self) -> tuple[Identifier, ...]:
        """Every identifier the request was sent with, ``identifier`` first."""
        return (self.identifier, *self.other_identifiers) if self.identifier is not None else self.other_identifiers

    @property
    def blocked(self) -> bool:
        return self.status is Status.BLOCKED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for ``--json`` output and HTTP responses."""
        return {
            "request_id": self.request_id,
            "patient": self.patient_ref,
            "category": self.category.value if self.category else None,
            "status": self.status.value,
            "channels": list(self.channels),
            "record_ids": list(self.record_ids),
            "explanation": list(self.explanation),
            "findings": [finding_to_dict(f) for f in self.findings],
            **({"error": self.error} if self.error is not None else {}),
        }


def finding_to_dict(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": f.code,
        "severity": f.severity.value,
        "message": f.message,
        "remedy": f.remedy,
        "plugin": f.plugin,
        "span": list(f.span) if f.span else None,
    }
    if f.channel:
        out["channel"] = f.channel
    if f.hold_until:
        out["hold_until"] = f.hold_until.isoformat()
    if f.override:
        out["override"] = f.override
    return out
