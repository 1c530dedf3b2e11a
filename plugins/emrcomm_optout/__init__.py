"""Essential plugin: the opt-out ledger. After STOP (or an unsubscribe, or a front-desk note)
nothing more goes to that address on that channel, at once.

Inbound keyword parsing lives with the channels; they report opt-outs as DeliveryUpdates of
kind ``optout`` / ``optin``, which this plugin writes to the ledger.
"""

from __future__ import annotations

from emrcomm import Channel, DeliveryUpdate, Finding, Message, PluginContext, Route, hookimpl
from emrcomm.rules import finding
from emrcomm_optout.keywords import Keyword, classify, normalize

CONFIRMATION = "optout-confirmation"


class Plugin:
    """Suppression (docs/rule-catalogue.md B): CONSENT_REVOKED when the ledger's last word is a revocation."""

    settings_schema = None

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.name = context.name

    @hookimpl
    def emrcomm_validate(self, message: Message, channel: Channel, route: Route) -> list[Finding]:
        if not channel.address_system or not route.address:
            return []
        last = self.context.storage.consent.last(channel=channel.name, address=route.address)
        if last is None or not last.revokes:
            return []
        # The one confirmation after an opt-out is the only message that may still go: only
        # while no confirmation has been queued to that address on that channel since the
        # revocation (other messages cannot have been: this check blocks them). Counting only
        # confirmations keeps a message queued in the same instant as the STOP from blocking it.
        if message.template == CONFIRMATION and not self.context.storage.records.count_to(
            channel=channel.name, address=route.address, since=last.at, template=CONFIRMATION
        ):
            return []
        return [finding("CONSENT_REVOKED", plugin=self.name, channel=channel.name, source=last.source)]

    @hookimpl
    def emrcomm_delivery_update(self, update: DeliveryUpdate) -> None:
        """Opt-outs and opt-ins reach the ledger at once: as such, or as a keyword reply."""
        if not update.channel or not update.address:
            return
        kind, source = update.kind, update.text
        if kind == "reply":
            keyword = classify(update.text or "")
            if keyword not in (Keyword.OPT_OUT, Keyword.OPT_IN):
                return
            kind = "optout" if keyword is Keyword.OPT_OUT else "optin"
            source = f"{normalize(update.text or '')} reply"
        elif kind not in ("optout", "optin"):
            return
        self.context.storage.consent.add(
            patient=update.detail or "unknown",
            channel=update.channel,
            address=update.address,
            purpose=None,
            action="revoke" if kind == "optout" else "grant",
            at=update.at,
            source=source or ("STOP reply" if kind == "optout" else "START reply"),
        )
        self.context.log.info("consent ledger: %s on %s", kind, update.channel)
