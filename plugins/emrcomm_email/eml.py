"""The default email transport: one RFC 5322 ``.eml`` file per message, nothing leaves the machine."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

from emrcomm import Delivery, Message, Receipt

from .compose import build_email, wire


class EmlSink:
    """Writes ``<key>.eml`` atomically; an existing file means the message was already written."""

    def __init__(self, directory: Path, sender: str, clinic: str, phone: str, clock: Callable[[], dt.datetime],
                 unsubscribe: Callable[[Message, str], str | None] | None = None, footer: bool = True,
                 reply_to: str | None = None) -> None:
        self.directory = directory
        self.unsubscribe = unsubscribe
        self.footer = footer
        self.reply_to = reply_to
        self.sender = sender
        self.clinic = clinic
        self.phone = phone
        self.clock = clock

    def send(self, delivery: Delivery) -> Receipt:
        message, address, key = delivery.message, delivery.address, delivery.key
        at = self.clock()
        target = self.directory / f"{key}.eml"
        if not target.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            mail = build_email(message, address, self.sender, self.clinic, self.phone, key, at,
                               unsubscribe_url=self.unsubscribe(message, key) if self.unsubscribe else None, footer=self.footer,
                               reply_to=self.reply_to)
            tmp = target.with_suffix(".tmp")
            with tmp.open("wb") as fh:
                fh.write(wire(mail))
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(target)
        return Receipt(channel="email", address=address, provider_id=key, status="accepted", at=at)

    def close(self) -> None:
        """Nothing to release; here so every transport can be closed the same way."""
