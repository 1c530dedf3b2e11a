"""Essential plugin: no message goes without consent for its channel, address and purpose.

Consent comes from the directory (Recipient.consents) and from the consent ledger in the store,
where later events (a START reply, a front-desk re-consent) override earlier directory state.
"""

from __future__ import annotations

import datetime as dt

from emrcomm import Channel, Finding, Message, PluginContext, Recipient, Route, hookimpl
from emrcomm.rules import finding


class Plugin:
    """Checks RULES.md A: CONSENT_MISSING, CONSENT_REVOKED, PREFERENCE_IGNORED."""

    settings_schema = None

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.name = context.name

    @hookimpl
    def emrcomm_validate(
        self, message: Message, recipient: Recipient, channel: Channel, route: Route, now: dt.datetime
    ) -> list[Finding]:
        found: list[Finding] = []
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
        ledger = self._ledger_state(channel.name, address)
        if ledger is not None:
            action, at, _source = ledger
            latest_revocation = max((g.revoked for g in revoked if g.revoked), default=None)
            if action == "grant" and (latest_revocation is None or at > latest_revocation) and (live or revoked):
                return found  # re-consented after the revocation the directory still shows
        if live:
            return found
        if revoked:
            last = max(revoked, key=lambda g: g.revoked or now)
            found.append(finding("CONSENT_REVOKED", plugin=self.name, channel=channel.name,
                                 source=last.source or "recorded in the chart"))
        else:
            found.append(finding("CONSENT_MISSING", plugin=self.name, channel=channel.name,
                                 purpose=purpose.value))
        return found

    def _ledger_state(self, channel: str, address: str | None) -> tuple[str, dt.datetime, str] | None:
        if not address:
            return None
        events = self.context.store.consent_events(channel=channel, address=address)
        if not events:
            return None
        last = events[-1]
        return last["action"], dt.datetime.fromisoformat(last["at"]), last["source"]

