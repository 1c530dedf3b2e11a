"""Essential plugin: no message goes without consent for its channel, address and purpose.

Consent comes from the directory (Recipient.consents) and from the consent ledger in the store,
where later events (a START reply, a front-desk re-consent) override earlier directory state.
"""

from __future__ import annotations

import datetime as dt

from emrcomm import Channel, Finding, Message, PluginContext, Purpose, Recipient, Route, hookimpl
from emrcomm.rules import finding


class Plugin:
    """Checks docs/rule-catalogue.md A: CONSENT_MISSING, CONSENT_REVOKED, PREFERENCE_IGNORED."""

    settings_schema = None

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.name = context.name

    @hookimpl
    def emrcomm_validate(
        self, message: Message, recipient: Recipient, channel: Channel, route: Route, now: dt.datetime
    ) -> list[Finding]:
        found: list[Finding] = []
        if message.category.answers_keyword and message.request.in_response_to:
            # The answer to the patient's own STOP, START or HELP, where it came from: carriers
            # require it whatever consent is on file (the optout plugin allows one after STOP).
            return found
        if recipient.restrict_to_preferred and channel.name not in recipient.preferred_channels:
            found.append(finding(
                "PREFERENCE_IGNORED", plugin=self.name, channel=channel.name,
                preferred=", ".join(recipient.preferred_channels) or "none",
            ))
        purpose = message.request.purpose
        address = route.address if channel.address_system else None
        grants = [g for g in recipient.consents if g.covers(channel.name, address, purpose, now)]
        live = [g for g in grants if g.revoked is None or g.revoked > now]
        revoked = [g for g in grants if g.revoked is not None and g.revoked <= now]
        last_revoked = max(revoked, key=lambda g: g.revoked or now, default=None)
        last_granted = max((g.granted or dt.datetime.min.replace(tzinfo=dt.UTC) for g in live), default=None)
        # The latest word wins: a revocation recorded after a grant (a deny Consent added while
        # the old permit stays active) withdraws it; a grant after a revocation restores it.
        if last_revoked is not None and last_granted is not None and last_revoked.revoked is not None \
                and last_revoked.revoked > last_granted:
            live = []
        ledger = self._ledger_state(channel.name, address, purpose)
        if ledger is not None:
            action, at, _source = ledger
            revoked_at = last_revoked.revoked if last_revoked is not None else None
            if action == "grant" and grants and (revoked_at is None or at > revoked_at):
                return found  # re-consented (START, front desk) after the revocation on file
        if live:
            return found
        if last_revoked is None and relies_on_exemption(self.context, recipient, channel, purpose):
            return found  # the policy plugin enforces the exemption's limits (EXEMPTION_FREQUENCY)
        if last_revoked is not None:
            found.append(finding("CONSENT_REVOKED", plugin=self.name, channel=channel.name,
                                 source=last_revoked.source or "recorded in the chart"))
        else:
            found.append(finding("CONSENT_MISSING", plugin=self.name, channel=channel.name,
                                 purpose=purpose.value))
        return found

    def _ledger_state(self, channel: str, address: str | None, purpose: Purpose) -> tuple[str, dt.datetime, str] | None:
        if not address:
            return None
        last = self.context.storage.consent.last(channel=channel, address=address, purpose=purpose.value)
        if last is None:
            return None
        return last.action, last.at, last.source



def relies_on_exemption(context: PluginContext, recipient: Recipient, channel: Channel, purpose: Purpose) -> bool:
    """A US patient texted for care without recorded consent, by a clinic that relies on the
    TCPA healthcare exemption (FCC 15-72). Revocations still apply; billing never qualifies."""
    return (
        context.clinic.us_healthcare_exemption
        and (recipient.jurisdiction or "").startswith("US")
        and channel.address_system == "sms"
        and purpose is Purpose.CLINICAL
    )
