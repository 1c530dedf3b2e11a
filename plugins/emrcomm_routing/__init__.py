"""Built-in routing: which channels to try for a message, best first (RULES.md category table).

Direct channels come first in the patient's order of preference; the portal with a content-free
notice is always the fallback, so clinical content refused on SMS still reaches the patient.
"""

from __future__ import annotations

from collections.abc import Mapping

from emrcomm import (
    Candidate,
    Category,
    Channel,
    Finding,
    Message,
    Plan,
    PluginContext,
    Recipient,
    Route,
    hookimpl,
)
from emrcomm.config import load_schema
from emrcomm.model import Sensitivity

# Insecure channels that may carry the message itself, by category, in default order. The
# portal (with a notice) follows them, or leads when the patient prefers it.
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

class Plugin:
    """``emrcomm_plan``: candidates per category x sensitivity x consent x preference."""

    settings_schema = load_schema("plugins/routing.schema.json")

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.notice_template = context.settings.get("notice_template", "portal-notice")

    @hookimpl
    def emrcomm_plan(
        self,
        message: Message,
        recipient: Recipient,
        channels: Mapping[str, Channel],
        findings: tuple[Finding, ...],
    ) -> Plan:
        category = message.category
        rejected: list[tuple[str, str]] = []
        # A restricted request never tries an insecure channel. Words that look clinical in an
        # ordinary one are left to the validators, so staff see the rule code that refused them.
        unfit = message.sensitivity is Sensitivity.RESTRICTED
        order = list(DIRECT[category])
        preferred = [c for c in recipient.preferred_channels if c in order]
        order = preferred + [c for c in order if c not in preferred]
        requested = message.request.channel
        if requested in order:
            order.remove(requested)
            order.insert(0, requested)
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
            points = recipient.addresses(channel.address_system)
            if not points:
                rejected.append((name, f"no {channel.address_system} address on file"))
            for point in points:
                candidates.append(Candidate((Route(name, point.value),), f"{name} to the patient's {point.use or 'listed'} address"))
        if category is not Category.MARKETING:
            portal = self._portal_candidates(recipient, channels)
            prefs = list(recipient.preferred_channels)
            portal_first = bool(prefs) and prefs[0] == "portal"
            candidates = portal + candidates if portal_first else candidates + portal
        return Plan(tuple(candidates), tuple(rejected))

    def _portal_candidates(self, recipient: Recipient, channels: Mapping[str, Channel]) -> list[Candidate]:
        portal = channels.get("portal")
        if portal is None or (recipient.restrict_to_preferred and "portal" not in recipient.preferred_channels):
            return []
        primary = Route("portal", recipient.patient_ref)
        out = []
        notice_channels = [c for c in ("sms", "email") if c in channels]
        prefs = [c for c in recipient.preferred_channels if c in notice_channels]
        notice_channels = prefs + [c for c in notice_channels if c not in prefs]
        if recipient.restrict_to_preferred:
            notice_channels = [c for c in notice_channels if c in recipient.preferred_channels]
        for name in notice_channels:
            channel = channels[name]
            for point in recipient.addresses(channel.address_system or name):
                notice = Route(name, point.value, role="notice", template=self.notice_template)
                out.append(Candidate((primary, notice), f"the portal carries the message; a notice by {name}"))
        out.append(Candidate((primary,), "the portal alone: no notice channel passed; staff should tell the patient"))
        return out
