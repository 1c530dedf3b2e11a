"""Built-in email channel. Transport ``file`` (the default) writes one RFC 5322 .eml file per
message; ``smtp`` sends through an SMTP relay with STARTTLS required by default.
docs/transports.md describes each transport and its settings.
"""

from __future__ import annotations

from typing import Any

import attrs

from emrcomm import Channel, Finding, Message, PluginContext, hookimpl, settings_schema
from emrcomm.rules import finding

from .compose import FOOTER, build_email
from .eml import EmlSink
from .probes import Probe, probes_of
from .smtp import SmtpTransport

__all__ = ["FOOTER", "EmlSink", "Plugin", "SmtpTransport", "build_email"]


def make_transport(context: PluginContext, sender: str, unsubscribe: dict[str, str] | None,
                   footer: bool) -> EmlSink | SmtpTransport:
    """The transport the settings ask for (``transport``, default ``file``)."""
    settings = context.settings
    clinic = context.clinic
    if settings.get("transport", "file") == "smtp":
        smtp: Any = settings["smtp"]
        sub = attrs.evolve(context, name=f"{context.name}.smtp", settings=smtp)
        return SmtpTransport(
            host=smtp["host"], port=smtp.get("port"), security=smtp.get("security", "starttls"),
            username=smtp.get("username"), password=sub.secret_later("password") if "password" in smtp else None,
            ca_file=context.path(smtp["ca_file"]) if "ca_file" in smtp else None,
            timeout=smtp.get("timeout", 30.0), sender=sender, clinic=clinic.name, phone=clinic.phone,
            clock=context.clock, unsubscribe=unsubscribe, footer=footer, log=context.log,
        )
    return EmlSink(context.path(settings.get("directory", "emrcomm-data/out/email")), sender, clinic.name,
                   clinic.phone, context.clock, unsubscribe=unsubscribe, footer=footer)


# Categories that are subscriptions rather than transactions (docs/rule-catalogue.md H): they need a one-click
# unsubscribe. Reminders, results, pickups and invoices are transactional.
SUBSCRIPTION_CATEGORIES = ("education", "marketing")
MISDIRECTION_WORDS = ("received this message in error", "reçu ce message par erreur")


class Plugin:
    """Registers the ``email`` channel (insecure, v3 medium EMAILWRIT) and checks the email form
    (docs/rule-catalogue.md H): one-click unsubscribe for subscriptions, the misdirection notice."""

    settings_schema = settings_schema(__name__)

    def __init__(self, context: PluginContext) -> None:
        settings = context.settings
        clinic = context.clinic
        self.name = context.name
        sender = settings.get("from") or f"{clinic.name} <{clinic.email or 'noreply@clinic.invalid'}>"
        self.subscriptions = tuple(settings.get("subscription_categories", SUBSCRIPTION_CATEGORIES))
        url = settings.get("unsubscribe_url")
        self.footer = settings.get("misdirection_footer", True)
        self.transport = make_transport(context, sender, {c: url for c in self.subscriptions} if url else None,
                                        self.footer)
        self.unsubscribe_url = url

    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        return [Channel(name="email", secure=False, medium="EMAILWRIT", transport=self.transport,
                        address_system="email", form="email")]

    @hookimpl
    def emrcomm_probe(self) -> list[Probe]:
        """``emrcomm doctor``: the relay, tried as a message would be (TLS, AUTH, the sender) and
        left before anything is sent; or the .eml folder."""
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

    def close(self) -> None:
        """Called by the Host on close: ends the SMTP session, if any."""
        self.transport.close()
