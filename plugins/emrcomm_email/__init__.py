"""Built-in email channel. Transport ``file`` (the default) writes one RFC 5322 .eml file per
message; SMTP plugs in behind the same Transport interface.
"""

from __future__ import annotations

import os
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from emrcomm import Channel, Message, PluginContext, Receipt, hookimpl
from emrcomm.config import load_schema

FOOTER = {
    "en": "If you received this message in error, please tell {clinic} at {phone} and delete it.",
    "fr": "Si vous avez reçu ce message par erreur, veuillez en aviser {clinic} au {phone} et le supprimer.",
}


def build_email(message: Message, address: str, sender: str, clinic: str, phone: str, key: str, at) -> EmailMessage:  # type: ignore[no-untyped-def]
    """The MIME message for one email: plain text with the misdirection footer, Date, Message-ID."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = address
    mail["Subject"] = message.subject or clinic
    mail["Date"] = format_datetime(at)
    domain = sender.rsplit("@", 1)[-1].rstrip(">") if "@" in sender else "emrcomm.invalid"
    mail["Message-ID"] = make_msgid(idstring=key, domain=domain)
    footer = FOOTER.get(message.language, FOOTER["en"]).format(clinic=clinic, phone=phone)
    mail.set_content(f"{message.text}\n\n-- \n{footer}\n")
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        mail.add_attachment(attachment.data, maintype=maintype, subtype=subtype or "octet-stream",
                            filename=attachment.title or "attachment")
    return mail


class EmlSink:
    """Writes ``<key>.eml`` atomically; an existing file means the message was already written."""

    def __init__(self, directory: Path, sender: str, clinic: str, phone: str, clock) -> None:  # type: ignore[no-untyped-def]
        self.directory = directory
        self.sender = sender
        self.clinic = clinic
        self.phone = phone
        self.clock = clock
        directory.mkdir(parents=True, exist_ok=True)

    def send(self, message: Message, address: str, key: str) -> Receipt:
        at = self.clock()
        target = self.directory / f"{key}.eml"
        if not target.exists():
            mail = build_email(message, address, self.sender, self.clinic, self.phone, key, at)
            tmp = target.with_suffix(".tmp")
            with tmp.open("wb") as fh:
                fh.write(bytes(mail))
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(target)
        return Receipt(channel="email", address=address, provider_id=key, status="accepted", at=at)


class Plugin:
    """Registers the ``email`` channel (insecure, v3 medium EMAILWRIT)."""

    settings_schema = load_schema("plugins/email.schema.json")

    def __init__(self, context: PluginContext) -> None:
        settings = context.settings
        clinic = context.clinic
        sender = settings.get("from") or f"{clinic.name} <{clinic.email or 'noreply@clinic.invalid'}>"
        self.transport = EmlSink(context.path(settings.get("directory", "emrcomm-data/out/email")),
                                 sender, clinic.name, clinic.phone, context.clock)

    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        return [Channel(name="email", secure=False, medium="EMAILWRIT", transport=self.transport,
                        address_system="email")]
