"""Built-in email channel. Transport ``file`` (the default) writes one RFC 5322 .eml file per
message; SMTP plugs in behind the same Transport interface.
"""

from __future__ import annotations

import os
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from emrcomm import Channel, Finding, Message, PluginContext, Receipt, hookimpl
from emrcomm.config import load_schema
from emrcomm.rules import finding

FOOTER = {
    "en": "If you received this message in error, please tell {clinic} at {phone} and delete it.",
    "fr": "Si vous avez reçu ce message par erreur, veuillez en aviser {clinic} au {phone} et le supprimer.",
}


def build_email(message: Message, address: str, sender: str, clinic: str, phone: str, key: str, at,  # type: ignore[no-untyped-def]
                unsubscribe_url: str | None = None, footer: bool = True) -> EmailMessage:
    """The MIME message for one email: plain text with the misdirection footer, Date, Message-ID,
    and the RFC 8058 one-click unsubscribe headers when ``unsubscribe_url`` is given."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = address
    mail["Subject"] = message.subject or clinic
    mail["Date"] = format_datetime(at)
    domain = sender.rsplit("@", 1)[-1].rstrip(">") if "@" in sender else "emrcomm.invalid"
    mail["Message-ID"] = make_msgid(idstring=key, domain=domain)
    if unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    body = message.text
    if footer:
        body += "\n\n-- \n" + FOOTER.get(message.language, FOOTER["en"]).format(clinic=clinic, phone=phone)
    mail.set_content(body + "\n")
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mail.add_attachment(attachment.data, maintype=maintype, subtype=subtype or "octet-stream",
                            filename=attachment.title or "attachment")
    return mail


class EmlSink:
    """Writes ``<key>.eml`` atomically; an existing file means the message was already written."""

    def __init__(self, directory: Path, sender: str, clinic: str, phone: str, clock,  # type: ignore[no-untyped-def]
                 unsubscribe: dict[str, str] | None = None, footer: bool = True) -> None:
        self.directory = directory
        self.unsubscribe = unsubscribe or {}
        self.footer = footer
        self.sender = sender
        self.clinic = clinic
        self.phone = phone
        self.clock = clock
        directory.mkdir(parents=True, exist_ok=True)

    def send(self, message: Message, address: str, key: str) -> Receipt:
        at = self.clock()
        target = self.directory / f"{key}.eml"
        if not target.exists():
            mail = build_email(message, address, self.sender, self.clinic, self.phone, key, at,
                               unsubscribe_url=self.unsubscribe.get(message.category.value), footer=self.footer)
            tmp = target.with_suffix(".tmp")
            with tmp.open("wb") as fh:
                fh.write(bytes(mail))
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(target)
        return Receipt(channel="email", address=address, provider_id=key, status="accepted", at=at)


# Categories that are subscriptions rather than transactions (RULES.md H): they need a one-click
# unsubscribe. Reminders, results, pickups and invoices are transactional.
SUBSCRIPTION_CATEGORIES = ("education", "marketing")
MISDIRECTION_WORDS = ("received this message in error", "reçu ce message par erreur")


class Plugin:
    """Registers the ``email`` channel (insecure, v3 medium EMAILWRIT) and checks the email form
    (RULES.md H): one-click unsubscribe for subscriptions, the misdirection notice."""

    settings_schema = load_schema("plugins/email.schema.json")

    def __init__(self, context: PluginContext) -> None:
        settings = context.settings
        clinic = context.clinic
        self.name = context.name
        sender = settings.get("from") or f"{clinic.name} <{clinic.email or 'noreply@clinic.invalid'}>"
        self.subscriptions = tuple(settings.get("subscription_categories", SUBSCRIPTION_CATEGORIES))
        url = settings.get("unsubscribe_url")
        self.footer = settings.get("misdirection_footer", True)
        self.transport = EmlSink(context.path(settings.get("directory", "emrcomm-data/out/email")),
                                 sender, clinic.name, clinic.phone, context.clock,
                                 unsubscribe={c: url for c in self.subscriptions} if url else None,
                                 footer=self.footer)
        self.unsubscribe_url = url

    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        return [Channel(name="email", secure=False, medium="EMAILWRIT", transport=self.transport,
                        address_system="email")]

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
