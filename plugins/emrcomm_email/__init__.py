"""Built-in email channel. Transport ``file`` (the default) writes one RFC 5322 .eml file per
message; ``smtp`` sends through an SMTP relay with STARTTLS required by default.
docs/transports.md describes each transport and its settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from email.utils import formataddr
from typing import TYPE_CHECKING, Any

import attrs

from emrcomm import Channel, Finding, Message, PluginContext, Probe, hookimpl, settings_schema
from emrcomm.rules import finding

from . import links
from .compose import FOOTER, build_email
from .eml import EmlSink

if TYPE_CHECKING:
    # The relay's client and probes (with emrcomm.deadline, which brings requests) and the
    # unsubscribe endpoint's web stack are imported where they are used: a file sink, or a
    # command that asks only (`emrcomm --help` loads every plugin), starts without them.
    from starlette.routing import BaseRoute

    from emrcomm.web import WebContext

    from .smtp import SmtpTransport

__all__ = ["FOOTER", "EmlSink", "Plugin", "SmtpTransport", "build_email"]


def __getattr__(name: str) -> Any:
    # ``emrcomm_email.SmtpTransport``, as this package gave it before the relay's client moved to
    # .smtp: a plugin that imports it gets it, with requests, when it asks.
    if name == "SmtpTransport":
        from .smtp import SmtpTransport

        return SmtpTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# An email's unsubscribe link, by the message and the record id it is filed as (None: it has none).
Unsubscribe = Callable[[Message, str], "str | None"]


def make_transport(context: PluginContext, sender: str, unsubscribe: Unsubscribe | None,
                   footer: bool) -> EmlSink | SmtpTransport:
    """The transport the settings ask for (``transport``, default ``file``)."""
    settings = context.settings
    clinic = context.clinic
    # The address staff read: replies go there, whatever the sender (docs/transports.md).
    reply_to = formataddr((clinic.name, clinic.email)) if clinic.email else None
    if settings.get("transport", "file") == "smtp":
        from .smtp import SmtpTransport

        smtp: Any = settings["smtp"]
        sub = attrs.evolve(context, name=f"{context.name}.smtp", settings=smtp)
        return SmtpTransport(
            host=smtp["host"], port=smtp.get("port"), security=smtp.get("security", "starttls"),
            username=smtp.get("username"), password=sub.secret_later("password") if "password" in smtp else None,
            ca_file=context.path(smtp["ca_file"]) if "ca_file" in smtp else None,
            timeout=smtp.get("timeout", 30.0), sender=sender, clinic=clinic.name, phone=clinic.phone,
            clock=context.clock, unsubscribe=unsubscribe, footer=footer, reply_to=reply_to, log=context.log,
        )
    return EmlSink(context.path(settings.get("directory", "emrcomm-data/out/email")), sender, clinic.name,
                   clinic.phone, context.clock, unsubscribe=unsubscribe, footer=footer, reply_to=reply_to)


# Categories that are subscriptions rather than transactions (docs/rule-catalogue.md H): they may not go without
# a one-click unsubscribe. Reminders, results, pickups and invoices are transactional; they carry one too
# whenever the endpoint's address is known (an email says how to stop emails, never "Reply STOP").
SUBSCRIPTION_CATEGORIES = ("education", "marketing")
MISDIRECTION_WORDS = ("received this message in error", "reçu ce message par erreur")


class Plugin:
    """Registers the ``email`` channel (insecure, v3 medium EMAILWRIT) and checks the email form
    (docs/rule-catalogue.md H): one-click unsubscribe for subscriptions, the misdirection notice;
    serves the one-click unsubscribe endpoint under ``emrcomm serve`` (``/unsubscribe/…``)."""

    settings_schema = settings_schema(__name__)

    def __init__(self, context: PluginContext) -> None:
        settings = context.settings
        clinic = context.clinic
        self.name = context.name
        # Quoted as the name needs: "Drs Smith, Jones & Partners" written bare is two mailboxes.
        sender = settings.get("from") or formataddr((clinic.name, clinic.email or "noreply@clinic.invalid"))
        self.context = context
        self.subscriptions = tuple(settings.get("subscription_categories", SUBSCRIPTION_CATEGORIES))
        # Where patients reach this plugin's endpoint: the clinic's portal address (served by the
        # same `emrcomm serve`) unless the clinic names another.
        portal = clinic.portal_url.rstrip("/")
        url = settings.get("unsubscribe_url") or (portal + links.PREFIX if portal.startswith("https://") else None)
        self.footer = settings.get("misdirection_footer", True)
        self.signer = links.Signer(context.path(settings.get("unsubscribe_key",
                                                                 "emrcomm-data/email-unsubscribe.key")))
        self.unsubscribe_url = url
        self.transport = make_transport(context, sender, self.link if url else None, self.footer)

    def link(self, message: Message, record_id: str) -> str | None:
        """The one-click unsubscribe link of the email filed as ``record_id``: every email has
        one but the answers to a patient's own keyword (nothing to unsubscribe from)."""
        if self.unsubscribe_url is None or message.category.answers_keyword:
            return None
        return links.link_maker(self.signer, self.unsubscribe_url)(record_id)

    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        return [Channel(name="email", secure=False, medium="EMAILWRIT", transport=self.transport,
                        address_system="email", form="email")]

    @hookimpl
    def emrcomm_probe(self) -> list[Probe]:
        """``emrcomm doctor``: the relay, tried as a message would be (TLS, AUTH, the sender) and
        left before anything is sent; or the .eml folder."""
        from .probes import probes_of

        return probes_of(self.transport, self.name)

    @hookimpl
    def emrcomm_validate(self, message: Message, channel: Channel) -> list[Finding]:
        if channel.name != "email":
            return []
        found = []
        if message.category.value in self.subscriptions and not self.unsubscribe_url:
            found.append(finding("EMAIL_NO_UNSUBSCRIBE", plugin=self.name, channel="email"))
        text = message.text.lower()
        if not self.footer and not any(words in text for words in MISDIRECTION_WORDS):
            found.append(finding("EMAIL_MISDIRECTION_NOTICE", plugin=self.name, channel="email"))
        return found

    @hookimpl
    def emrcomm_web_routes(self, web: WebContext) -> Sequence[BaseRoute]:
        """``/unsubscribe/<token>``: GET asks to confirm, POST (one click) withdraws email consent."""
        from .unsubscribe import routes

        return routes(self.context, web, self.signer)

    def close(self) -> None:
        """Called by the Host on close: ends the SMTP session, if any."""
        self.transport.close()
