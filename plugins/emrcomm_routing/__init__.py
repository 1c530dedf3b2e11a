"""Built-in routing: which channels to try for a message, best first (docs/rule-catalogue.md category table),
and a staff follow-up when no channel could reach the patient.

Candidates come from the category x sensitivity x preference x channel capability: channels
that may carry the category's words directly, in the patient's order of preference; a secure
channel with an address (a secure-email network) for anything; then the portal with a
content-free notice on each notice channel, then the portal alone. Consent is left to the
consent plugin, so that staff see its rule codes; the reasons say what is on file. Every
channel not proposed is explained in ``Plan.rejected``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from emrcomm import (
    Candidate,
    Category,
    Channel,
    ConfigError,
    Finding,
    Message,
    Plan,
    PluginContext,
    Purpose,
    Recipient,
    Record,
    Route,
    Sensitivity,
    hookimpl,
    settings_schema,
)

# Insecure channels that may carry the message itself, by category, in default order (docs/rule-catalogue.md
# "Category -> channel"). The portal (with a notice) follows them, or leads when the patient
# prefers it. A clinic may change a row with [plugins.routing.categories].
DIRECT: Mapping[Category, tuple[str, ...]] = {
    Category.APPOINTMENT_REMINDER: ("sms", "email"),
    Category.RESULTS_AVAILABLE: ("sms", "email"),
    Category.PRESCRIPTION_PICKUP: ("sms", "email"),
    Category.PRESCRIPTION_REFILL: ("sms", "email"),
    Category.INVOICE: ("email", "sms"),
    Category.QUESTIONNAIRE: ("email", "sms"),
    Category.EDUCATION: ("email",),
    Category.CLINICAL: (),
    Category.MARKETING: ("email", "sms"),
}
# Why an insecure channel is not in a category's row (the table's own words).
NOT_DIRECT: Mapping[Category, str] = {
    Category.CLINICAL: "a clinician's note never travels by {channel}; the portal carries it and {channel} "
                       "may carry a notice",
    Category.EDUCATION: "education is not sent by {channel} (docs/rule-catalogue.md: avoid); the portal carries it",
}
NOTICE_CHANNELS = ("sms", "email")
# Blocked for one of these reasons, nobody needs to follow up: there was nothing to say.
NO_FOLLOW_UP = frozenset({"MARKETING_BLOCKED", "MESSAGE_EXPIRED"})


class Plugin:
    """``emrcomm_plan``: candidates per category x sensitivity x preference x capability;
    ``emrcomm_file_record``: a blocked request becomes a staff follow-up in the practice inbox."""

    settings_schema = settings_schema(__name__)

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        settings = context.settings
        self.notice_template = settings.get("notice_template", "portal-notice")
        # None: the built-in notice channels, then every channel that declares it carries notices.
        self.notice_channels: tuple[str, ...] | None = (tuple(settings["notice_channels"])
                                                       if "notice_channels" in settings else None)
        self.follow_up = bool(settings.get("staff_follow_up", True))
        direct = dict(DIRECT)
        self.clinic_rows: frozenset[Category] = frozenset()
        for name, row in settings.get("categories", {}).items():
            try:
                category = Category(name)
            except ValueError:
                raise ConfigError(f"plugins.{context.name}.categories.{name}: unknown category; choose one of: "
                                  f"{', '.join(c.value for c in Category)}") from None
            direct[category] = tuple(row)
            self.clinic_rows |= {category}
        self.direct: Mapping[Category, tuple[str, ...]] = direct

    def start(self) -> None:
        # Once the channels are known. A name no plugin registers is left out (a channel switched
        # off for now, or a typo: "SMS"); routing is only more cautious for it, but the clinic is told.
        named = [("notice_channels", name) for name in self.notice_channels or ()]
        named += [(f"categories.{category.value}", name) for category in sorted(self.clinic_rows)
                  for name in self.direct[category]]
        for setting, name in named:
            if name not in self.context.channels:
                self.context.log.warning("plugins.%s.%s: no plugin registers channel %r, left out; the channels are: "
                                         "%s", self.context.name, setting, name, ", ".join(sorted(self.context.channels)))

    def row(self, category: Category, channels: Mapping[str, Channel]) -> tuple[str, ...]:
        """The insecure channels that may carry ``category`` themselves, in order: the clinic's row
        when it set one; else the built-in row, then the channels that declare the category."""
        row = self.direct[category]
        if category in self.clinic_rows:
            return row
        return row + tuple(n for n, ch in channels.items() if category in ch.categories and n not in row)

    def notice_order(self, channels: Mapping[str, Channel]) -> list[str]:
        if self.notice_channels is not None:
            return [c for c in self.notice_channels if c in channels]
        declared = [n for n, ch in channels.items() if ch.notices and n not in NOTICE_CHANNELS]
        return [c for c in (*NOTICE_CHANNELS, *declared) if c in channels]

    @hookimpl
    def emrcomm_plan(
        self,
        message: Message,
        recipient: Recipient,
        channels: Mapping[str, Channel],
        findings: tuple[Finding, ...],
    ) -> Plan:
        category = message.category
        if category.answers_patient:
            return self._answer_plan(message, channels)
        rejected: list[tuple[str, str]] = []
        # A restricted request never tries an insecure channel. Words that look clinical in an
        # ordinary one are left to the validators, so staff see the rule code that refused them.
        unfit = message.sensitivity is Sensitivity.RESTRICTED
        # Capability: files (a PDF result) travel only where the message is kept or secure.
        has_files = bool(message.attachments or message.request.attachments)
        row = self.row(category, channels)
        # Capability: a secure channel that reaches an address may carry anything but marketing.
        secure = [] if category is Category.MARKETING else [
            name for name, ch in channels.items()
            if ch.secure and not ch.holds_content and ch.address_system and name not in row
        ]
        order = self._ordered([*secure, *row], recipient, message.request.channel)
        for name, channel in channels.items():
            if name in order or channel.holds_content or channel.secure:
                continue
            if category in NOT_DIRECT:
                rejected.append((name, NOT_DIRECT[category].format(channel=name)))
            elif name not in row:
                rejected.append((name, f"{category.value} is not sent by {name} (routing categories)"))
        if recipient.restrict_to_preferred:
            for name in order:
                if name not in recipient.preferred_channels:
                    rejected.append((name, "the patient asked to be contacted only by "
                                     + ", ".join(recipient.preferred_channels)))
            order = [c for c in order if c in recipient.preferred_channels]

        candidates: list[Candidate] = []
        for name in order:
            channel = channels.get(name)
            if channel is None:
                rejected.append((name, "channel not enabled"))
                continue
            if not channel.secure and unfit:
                rejected.append((name, "restricted: only a secure channel may carry it"))
                continue
            if not channel.secure and has_files:
                rejected.append((name, "it has attachments: only the portal or a secure channel carries them"))
                continue
            points = recipient.addresses(channel.address_system or name)
            if not points:
                rejected.append((name, f"no {channel.address_system or name} address on file"))
            for point in points:
                consent = _consent_note(recipient, name, point.value, message.request.purpose)
                candidates.append(Candidate((Route(name, point.value),),
                                            f"{name} to the patient's {point.use or 'listed'} address; {consent}"))
        if category is Category.MARKETING:
            if "portal" in channels:
                rejected.append(("portal", "marketing is never sent through the portal"))
        else:
            portal = self._portal_candidates(message, recipient, channels, rejected)
            prefs = list(recipient.preferred_channels)
            portal_first = bool(prefs) and prefs[0] == "portal"
            candidates = portal + candidates if portal_first else candidates + portal
        return Plan(tuple(candidates), tuple(rejected))

    def _answer_plan(self, message: Message, channels: Mapping[str, Channel]) -> Plan:
        """An automatic answer (a STOP confirmation, a HELP reply) goes only where the patient's
        message came from: that channel, that address; never another channel instead."""
        request = message.request
        came = self.context.records.facts(request.in_response_to) if request.in_response_to else None
        if (came is None or came.role != "reply" or came.request.patient_ref != request.patient_ref
                or not came.channel or not came.address or came.channel not in channels):
            why = (f"{message.category.value} answers a message from this patient; the request names none "
                   "(in_response_to: the record of the patient's reply)")
            return Plan((), tuple((name, why) for name in channels))
        rejected = tuple((name, f"an automatic answer goes only by {came.channel}, where the patient's message "
                                "came from") for name in channels if name != came.channel)
        route = Route(came.channel, came.address)
        return Plan((Candidate((route,), f"the answer to the patient's {came.channel} message, on the channel and "
                                         "to the address it came from"),), rejected)

    @staticmethod
    def _ordered(names: Sequence[str], recipient: Recipient, requested: str | None) -> list[str]:
        """The patient's preferences first, then the table's order; a requested channel first of all."""
        order = list(dict.fromkeys(names))
        preferred = [c for c in recipient.preferred_channels if c in order]
        order = preferred + [c for c in order if c not in preferred]
        if requested in order:
            order.remove(requested)
            order.insert(0, requested)
        return order

    def _portal_candidates(
        self, message: Message, recipient: Recipient, channels: Mapping[str, Channel], rejected: list[tuple[str, str]]
    ) -> list[Candidate]:
        portal = channels.get("portal")
        if portal is None:
            return []
        if recipient.restrict_to_preferred and "portal" not in recipient.preferred_channels:
            rejected.append(("portal", "the patient asked to be contacted only by "
                             + ", ".join(recipient.preferred_channels)))
            return []
        primary = Route("portal", recipient.patient_ref)
        out = []
        notice_channels = self.notice_order(channels)
        prefs = [c for c in recipient.preferred_channels if c in notice_channels]
        notice_channels = prefs + [c for c in notice_channels if c not in prefs]
        if recipient.restrict_to_preferred:
            notice_channels = [c for c in notice_channels if c in recipient.preferred_channels]
        for name in notice_channels:
            channel = channels[name]
            for point in recipient.addresses(channel.address_system or name):
                notice = Route(name, point.value, role="notice", template=self.notice_template)
                consent = _consent_note(recipient, name, point.value, message.request.purpose)
                out.append(Candidate((primary, notice),
                                     f"the portal carries the message; a notice by {name} ({consent})"))
        out.append(Candidate((primary,), "the portal alone: no notice channel passed; staff are asked to tell "
                                         "the patient"))
        return out

    @hookimpl
    def emrcomm_file_record(self, record: Record) -> None:
        """Never a silent drop: a request that no channel could carry becomes a follow-up for staff."""
        if not self.follow_up or record.status != "not-done" or not record.reasons:
            return
        if NO_FOLLOW_UP & set(record.reasons):
            return
        codes = tuple(dict.fromkeys(record.reasons))
        self.context.raise_item(
            kind="follow-up", key=record.request.id, patient=record.request.patient_ref,
            now=record.recorded or self.context.clock(), request_id=record.request.id, record_id=record.id,
            reasons=codes, priority="urgent" if record.request.priority == "urgent" else "routine",
            description=f"No channel could carry this {record.request.category.value} message to the patient "
                        f"({', '.join(codes)}): contact them another way, or record a channel they agree to.",
        )
        self.context.log.info("request %s: staff follow-up raised (%s)", record.request.id, ",".join(codes))


def _consent_note(recipient: Recipient, channel: str, address: str, purpose: Purpose) -> str:
    """What the directory has on file for this channel and address (the consent plugin decides)."""
    grants = [g for g in recipient.consents
              if g.channel == channel and g.purpose == purpose and (g.address in (None, address))]
    if any(g.revoked is None for g in grants):
        return f"{purpose.value} consent on file"
    if grants:
        return f"{purpose.value} consent withdrawn"
    return f"no {purpose.value} consent on file"
