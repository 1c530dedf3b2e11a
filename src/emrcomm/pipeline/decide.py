"""Deciding a request: who, in what words, on which channel, and why not the others. Reads
only; nothing is written. One routine for ``send``, ``send_many``, ``preview`` and ``check``.

find the recipient -> render -> inspect -> plan -> validate each candidate (a notice is
rendered and inspected on its own) -> the first candidate nothing blocks, or only a hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Protocol

import attrs
from attrs import frozen

from emrcomm.errors import RecipientRefused, RequestError
from emrcomm.fhir import described_ref, is_patient_link
from emrcomm.forms import in_form
from emrcomm.model import (
    Candidate,
    Channel,
    Finding,
    Message,
    Plan,
    Recipient,
    Request,
    Route,
    SendingWindow,
    Sensitivity,
)
from emrcomm.pipeline.records import record_id
from emrcomm.plugin.contract import LinkingTransport
from emrcomm.rules import finding


class Hooks(Protocol):
    """The hook calls a decision makes (the plugin manager gives them, typed)."""

    @property
    def channels(self) -> Mapping[str, Channel]: ...

    def find_recipient(self, request: Request) -> Recipient | None: ...

    def render(self, request: Request, recipient: Recipient) -> Message: ...

    def inspect(self, message: Message) -> tuple[Finding, ...]: ...

    def plan(self, message: Message, recipient: Recipient, facts: tuple[Finding, ...]) -> Plan | None: ...

    def validate(self, message: Message, recipient: Recipient, channel: Channel, route: Route,
                 facts: tuple[Finding, ...], now: dt.datetime) -> tuple[Finding, ...]: ...

    def sending_window(self, message: Message, recipient: Recipient, channel: Channel) -> SendingWindow | None: ...


@frozen
class Leg:
    """One route of the chosen candidate, with its own words and findings. A notice carries the
    link to the message it announces (``link``) and where that message is (``link_from``)."""

    route: Route
    channel: Channel
    message: Message
    findings: tuple[Finding, ...]
    link: str | None = None
    link_from: tuple[str, str] | None = None
    window: SendingWindow | None = None  # QUIET_HOURS, checked again when its outbox row leaves


@frozen
class Verdict:
    candidate: Candidate
    legs: tuple[Leg, ...]
    findings: tuple[Finding, ...]

    @property
    def blocks(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocks)

    @property
    def holdable(self) -> bool:
        """Blocked only by holds (quiet hours): the message waits instead of being refused."""
        blocks = self.blocks
        return bool(blocks) and all(f.hold_until is not None for f in blocks)

    @property
    def passes(self) -> bool:
        return not self.blocks or self.holdable

    @property
    def hold_until(self) -> dt.datetime | None:
        holds = [f.hold_until for f in self.blocks if f.hold_until is not None]
        return max(holds) if holds else None


@frozen
class Decision:
    """What the host decided for one request, before anything is written.

    Exactly one of: ``repeat`` (the id was handled before), ``refusal`` (the request cannot be
    rendered: nothing is filed), ``chosen`` (a candidate passes or is only held), or none of
    them (blocked: ``findings`` has every reason).
    """

    request: Request
    now: dt.datetime
    repeat: bool = False
    # The request as the EMR gave it, when ``request`` names the patient otherwise (the one the
    # directory found, or none): what a retry of it is compared with (pipeline.digest).
    asked: Request | None = None
    refusal: RequestError | None = None
    recipient: Recipient | None = None
    plan: Plan | None = None
    verdicts: tuple[Verdict, ...] = ()
    chosen: Verdict | None = None
    findings: tuple[Finding, ...] = ()
    facts: tuple[Finding, ...] = ()

    @property
    def blocked(self) -> bool:
        return not self.repeat and self.refusal is None and self.chosen is None

    @property
    def rejected_blocks(self) -> tuple[Finding, ...]:
        """The blocks of the candidates tried before the chosen one (why not SMS)."""
        return tuple(f for v in self.verdicts if v is not self.chosen for f in v.blocks)

    @property
    def about(self) -> set[str]:
        """What the decision read that an earlier request of a group could change: its id, the
        patient, the addresses chosen (a group commits before deciding one that shares them)."""
        out = {f"request:{self.request.id}"}
        if self.recipient is not None:
            out.add(f"patient:{self.recipient.patient_ref}")
        for leg in self.chosen.legs if self.chosen else ():
            if leg.route.address:
                out.add(f"to:{leg.channel.name}:{leg.route.address}")
        return out


def decide(hooks: Hooks, request: Request, now: dt.datetime, *, handled: bool,
           every_candidate: bool = False) -> Decision:
    """Decide ``request`` at ``now``. ``handled``: the request id was decided before (a repeat).
    ``every_candidate`` judges them all (a dry run explains each); otherwise judging stops at
    the first candidate that passes or is only held."""
    if handled:
        return Decision(request, now, repeat=True)
    try:
        recipient = hooks.find_recipient(request)
    except RecipientRefused as exc:
        # Known and not to be messaged: blocked, with the directory's reason (ids only), filed as
        # an unknown patient is (a search names nobody on the record).
        return Decision(unnamed(request), now, asked=request, findings=(
            finding("RECIPIENT_REFUSED", plugin=exc.plugin or "host", detail=exc.reason.rstrip(".")),))
    if recipient is None:
        return Decision(unnamed(request), now, asked=request, findings=(
            finding("RECIPIENT_UNKNOWN", plugin="host", detail=described_ref(request.patient_ref)),))
    if not is_patient_link(recipient.patient_ref):
        return Decision(unnamed(request), now, asked=request, findings=(finding(
            "CHECK_FAILED", plugin="host",
            detail="the directory answered a patient that is not named Patient/<id>; it must name the one it found"),))
    # A patient the EMR named by a search is, from here on, the one found: records, events,
    # audit, inbox, consent and opt-out read Patient/<id>, never the search (it may carry a
    # health number). One the EMR named by link stays as the EMR named it (its records are
    # where it looks for them), whatever link the directory answers with, unless the directory
    # found that chart merged into the one it answers (Recipient.replaces): the EMR itself said
    # it is no longer used, so the survivor is the patient, as for a search; the CommunicationRequest
    # (the record's basedOn) and the ledger's digest keep the link as the EMR sent it.
    asked = request
    if not is_patient_link(request.patient_ref) or request.patient_ref in recipient.replaces:
        request = attrs.evolve(request, patient_ref=recipient.patient_ref)
    about = merged(asked, recipient) if request is not asked else ()
    try:
        message = hooks.render(request, recipient)
    except RequestError as exc:
        return Decision(request, now, asked=asked, refusal=exc, recipient=recipient)
    facts = hooks.inspect(message)
    plan = hooks.plan(message, recipient, facts)
    if plan is None or not plan.candidates:
        return Decision(request, now, asked=asked, recipient=recipient, plan=plan, facts=facts,
                        findings=(*about, finding("NO_ROUTE", plugin="host")))
    verdicts: list[Verdict] = []
    chosen: Verdict | None = None
    for candidate in plan.candidates:
        verdict = judge(hooks, candidate, message, recipient, facts, now, about=about)
        verdicts.append(verdict)
        if chosen is None and verdict.passes:
            chosen = verdict
            if not every_candidate:
                break
    found = () if chosen else about + tuple(f for v in verdicts for f in v.findings if f not in about)
    return Decision(request, now, asked=asked, recipient=recipient, plan=plan, verdicts=tuple(verdicts),
                    chosen=chosen, findings=found, facts=facts)


def in_words_sent(hooks: Hooks, form: str | None, message: Message,
                  facts: tuple[Finding, ...]) -> tuple[Message, tuple[Finding, ...]]:
    """``message`` in the words a channel of ``form`` sends (:func:`emrcomm.forms.in_form`: an
    email says how to unsubscribe, never "Reply STOP"; an SMS is spelled in GSM-7), and what the
    inspectors find in them (``facts``: what they found in the words as written). An SMS keeps
    what was found in its words as written too: its spelling changes letters, not what a reader
    makes of them, and an inspector's term spelled with an accent GSM-7 lacks must still block
    (fail closed). Such a finding keeps its span when the spelling kept the text's length."""
    words = in_form(form, message.text)
    if words == message.text:
        return message, facts
    sent = attrs.evolve(message, text=words)
    found = tuple(hooks.inspect(sent))
    if form == "sms":
        seen = {(f.code, f.plugin) for f in found}
        same_length = len(words) == len(message.text)
        found += tuple(f if same_length else attrs.evolve(f, span=None)
                       for f in facts if (f.code, f.plugin) not in seen)
    return sent, found


def merged(asked: Request, recipient: Recipient) -> tuple[Finding, ...]:
    """PATIENT_MERGED when the chart ``asked`` names (or the one its search found) was merged into
    the one ``recipient`` is: staff see the link on every record and in the outcome."""
    if not recipient.replaces:
        return ()
    old = asked.patient_ref if asked.patient_ref in recipient.replaces else recipient.replaces[0]
    return (finding("PATIENT_MERGED", plugin="host", merged=old, survivor=recipient.patient_ref),)


def same_patient(hooks: Hooks, request: Request, search: str) -> bool:
    """Whether the directory finds one patient by ``request``'s own ``patient_ref`` and by
    ``search`` (``Patient?identifier=system|value``), as :func:`decide` finds them: a request that
    names its patient both ways is sent only when they agree. Nobody found by either is no
    agreement."""
    try:
        by_link = hooks.find_recipient(request)
    except RecipientRefused:
        return True  # decide finds it by the reference, refused too: blocked with its reason, nothing sent
    try:
        by_search = hooks.find_recipient(attrs.evolve(request, patient_ref=search))
    except RecipientRefused:
        return False  # found by the reference, refused by the identifier: not one patient
    return by_link is not None and by_search is not None and by_link.patient_ref == by_search.patient_ref


def unnamed(request: Request) -> Request:
    """``request`` as a record of it names a patient nobody found: ``Patient/<id>`` as given,
    anything else (``Patient?identifier=system|value``, ``system|value``) not at all."""
    return request if is_patient_link(request.patient_ref) else attrs.evolve(request, patient_ref="")


def judge(hooks: Hooks, candidate: Candidate, message: Message, recipient: Recipient,
          facts: tuple[Finding, ...], now: dt.datetime, *, about: tuple[Finding, ...] = ()) -> Verdict:
    """Validate every route of a candidate; a notice is rendered (with its link) and inspected.
    ``about``: findings about the patient (PATIENT_MERGED), carried by every leg's record."""
    legs: list[Leg] = []
    if not candidate.routes:  # a plan bug must not read as "nothing objected, sent"
        return Verdict(candidate, (), (finding("CHECK_FAILED", plugin="host",
                                                detail="the plan proposed a candidate with no route"),))
    for route in candidate.routes:
        channel = hooks.channels.get(route.channel)
        if channel is None:
            f = finding("CHECK_FAILED", plugin="host", channel=route.channel,
                        detail=f"the plan names channel {route.channel!r}, which no plugin registers")
            return Verdict(candidate, tuple(legs), (f,))
        leg_message, leg_facts = message, facts
        link: str | None = None
        link_from = announced(hooks.channels, candidate, message.request) if route.template is not None else None
        if route.template is not None:
            try:
                if link_from is not None:
                    linker: LinkingTransport = hooks.channels[link_from[0]].transport  # type: ignore[assignment]
                    link = linker.link_for(link_from[1])
                leg_message = hooks.render(notice_request(message.request, route.template, link), recipient)
            except RequestError as exc:
                f = finding("CHECK_FAILED", plugin="host", channel=route.channel,
                            detail=f"notice template {route.template!r}: {exc}")
                return Verdict(candidate, tuple(legs), (f,))
            leg_facts = hooks.inspect(leg_message)
        leg_message, leg_facts = in_words_sent(hooks, channel.form, leg_message, leg_facts)
        found = about + tuple(f for f in leg_facts if f.code == "CHECK_FAILED")
        found += hooks.validate(leg_message, recipient, channel, route, leg_facts, now)
        window = hooks.sending_window(leg_message, recipient, channel)
        legs.append(Leg(route, channel, leg_message, found, link, link_from if link else None, window))
    return Verdict(candidate, tuple(legs), tuple(f for leg in legs for f in leg.findings))


def announced(channels: Mapping[str, Channel], candidate: Candidate, req: Request) -> tuple[str, str] | None:
    """(channel, message id) of the message a notice in this candidate announces: the primary
    route on a channel that holds content and gives links (``transport.link_for``)."""
    for route in candidate.routes:
        channel = channels.get(route.channel)
        if (route.role == "primary" and channel is not None and channel.holds_content
                and callable(getattr(channel.transport, "link_for", None))):
            return channel.name, record_id(req.id, channel.name, route.role)
    return None


def notice_request(request: Request, template: str, link: str | None) -> Request:
    """A notice carries nothing of the request but its identity and category, and the link."""
    return attrs.evolve(request, template=template, text=None, variables={"link": link} if link else {},
                        sensitivity=Sensitivity.NORMAL, subject=None, attachments=())


def explanation(decision: Decision, *, dry_run: bool = False) -> tuple[str, ...]:
    """Why each channel was or was not used, one line each, as staff read it. ``dry_run``
    speaks of what would happen, and of candidates that would serve as fallbacks."""
    lines = [f"{channel}: not proposed ({why})" for channel, why in (decision.plan.rejected if decision.plan else ())]
    for verdict in decision.verdicts:
        label = verdict.candidate.label
        why = f" ({verdict.candidate.reason})" if verdict.candidate.reason else ""
        codes = ", ".join(sorted({f.code for f in verdict.blocks}))
        if verdict is decision.chosen and verdict.blocks:
            lines.append(f"{label}: {'would be held' if dry_run else 'held'} ({codes})")
        elif verdict is decision.chosen:
            lines.append(f"{label}: {'would be chosen' if dry_run else 'chosen'}{why}")
        elif verdict.blocks:
            lines.append(f"{label}: rejected ({codes})")
        else:
            lines.append(f"{label}: would pass, as a fallback{why}")
    return tuple(lines)
