"""Built-in secure portal channel: the message waits in the store, encrypted at rest with
AES-GCM under a key ring; the patient is told by a content-free notice on another channel and
opens the message through a magic link after proving their date of birth (docs/portal.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from emrcomm import (
    Channel,
    Command,
    ConfigError,
    Finding,
    Message,
    Migration,
    PluginContext,
    Probe,
    Recipient,
    Route,
    finding,
    hookimpl,
    settings_schema,
)
from emrcomm_portal import commands
from emrcomm_portal.keyring import KeyRing
from emrcomm_portal.service import Opened, PortalService, Rotation, Visit
from emrcomm_portal.storage import MIGRATIONS
from emrcomm_portal.transport import PortalTransport

if TYPE_CHECKING:  # the pages' web stack is imported by emrcomm_web_routes, under `emrcomm serve`
    from starlette.routing import BaseRoute

    from emrcomm.web import WebContext

__all__ = ["Opened", "Plugin", "PortalService", "PortalTransport", "Rotation", "Visit"]

CHANNEL = "portal"


class Plugin:
    """Registers the ``portal`` channel (secure, v3 medium ONLINEWRIT), its patient pages under
    ``emrcomm serve`` and its commands (``emrcomm portal``, ``emrcomm keys``)."""

    settings_schema = settings_schema(__name__)

    def __init__(self, context: PluginContext) -> None:
        settings = context.settings
        self.context = context
        # Written only once start() has seen that the store holds no message a new ring could not open.
        ring = KeyRing.load_or_create(context.path(settings.get("keyring", "emrcomm-data/portal-keyring.json")),
                                      save=False)
        self.transport = PortalTransport(
            context, ring, link_base=settings.get("link_base", context.clinic.portal_url),
            link_days=float(settings.get("link_days", 7)),
        )
        self.service = PortalService(
            context, self.transport, attempts=int(settings.get("identity_attempts", 5)),
            session_minutes=int(settings.get("session_minutes", 30)),
            rate_limit_per_minute=int(settings.get("rate_limit_per_minute", 30)),
        )

    def start(self) -> None:
        """A store whose messages need keys the ring lacks (a database restored without its ring,
        or with an older one) stops start-up, as a lost audit key does: a new ring would open none
        of them, and new messages would go under a key the ring's backup does not hold."""
        if self.context.read_only:
            return
        ring = self.transport.ring
        if problem := self.service.missing_keys():
            raise ConfigError(problem)
        if ring.needs_saving or (ring.path is not None and not ring.path.exists()):
            ring.save()

    @hookimpl
    def emrcomm_migrations(self) -> tuple[Migration, ...]:
        return MIGRATIONS

    @hookimpl
    def emrcomm_web_routes(self, web: WebContext) -> Sequence[BaseRoute]:
        from emrcomm_portal import pages

        return pages.routes(web, self.service)

    @hookimpl
    def emrcomm_cli_commands(self) -> list[Command]:
        return commands.commands()

    @hookimpl
    def emrcomm_probe(self) -> list[Probe]:
        """``emrcomm doctor``: the address magic links start with, without which no notice can
        announce a portal message (each is kept with a task for staff to tell the patient)."""
        return [Probe("portal links", self._links)]

    def _links(self) -> list[str]:
        if not self.transport.link_base:  # a clinic without a portal site yet: kept, not announced
            return ["no address for magic links (clinic.portal_url): a portal message is kept with a task "
                    "for staff to tell the patient, never announced by a notice"]
        return [f"links start with {self.transport.link_base}/"]

    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        return [Channel(name=CHANNEL, secure=True, medium="ONLINEWRIT", transport=self.transport,
                        address_system=None, holds_content=True)]

    @hookimpl
    def emrcomm_validate(self, message: Message, recipient: Recipient, channel: Channel, route: Route) -> list[Finding]:
        """The portal opens a message only for someone who gives the patient's date of birth:
        without one on file, the portal cannot be used for this patient."""
        if channel.name != CHANNEL or route.role != "primary" or channel.transport is not self.transport:
            return []
        if recipient.birth_date is None:
            return [finding("RECIPIENT_INVALID", plugin=self.context.name, channel=CHANNEL,
                            detail="no date of birth on file for the portal's identity check")]
        return []
