"""The portal channel's transport: keeps the message encrypted in the store and gives it a magic
link (an HMAC of its id, so the notice can carry the link before the message is stored; only
the link's SHA-256 digest is stored).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from typing import Any

from cryptography.exceptions import InvalidTag

from emrcomm import Delivery, PluginContext, Receipt, RenderError
from emrcomm_portal.keyring import KeyRing
from emrcomm_portal.storage import PortalStore

LINK_PATH = "/m/"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def aad(message_id: str) -> bytes:
    # The id is bound into the ciphertext: a row's ciphertext copied onto another row fails.
    return message_id.encode()


class PortalTransport:
    """Stores the message encrypted; the record id is the message id, so a retry stores nothing new."""

    def __init__(self, context: PluginContext, ring: KeyRing, *, link_base: str, link_days: float) -> None:
        self.context = context
        self.messages = PortalStore(context.storage.db)
        self.ring = ring
        self.link_base = link_base.rstrip("/")
        self.link_lifetime = dt.timedelta(days=link_days)

    # the Transport protocol --------------------------------------------------------------------
    def send(self, delivery: Delivery) -> Receipt:
        message, address, key = delivery.message, delivery.address, delivery.key
        # The record id is the message id: the filed Communication references urn:uuid:<it>.
        message_id = uuid.UUID(hex=key).hex
        store = self.context.storage
        at = self.context.clock()
        existing = self.messages.get(message_id)
        if existing is None:
            body = {
                "subject": message.subject,
                "text": message.text,
                "language": message.language,
                "attachments": [
                    {"title": a.title, "content_type": a.content_type, "data": base64.b64encode(a.data).decode()}
                    for a in message.attachments or message.request.attachments
                ],
                # what the patient answers to open it (the directory's, as the request was decided)
                "birth_date": birth.isoformat() if (birth := _birth_date(delivery)) else None,
                # who wrote, and the patient's time zone (the page dates the message in it)
                "sender": message.request.sender_name,
                "time_zone": delivery.recipient.time_zone if delivery.recipient is not None else None,
            }
            key_id, nonce, ciphertext = self.ring.encrypt(json.dumps(body).encode("utf-8"), aad=aad(message_id))
            expires = at + self.link_lifetime
            if message.request.expires is not None:
                expires = min(expires, message.request.expires)
            link_key_id, token = self.ring.link_token(message_id)
            with store.transaction():
                self.messages.put(id=message_id, record_id=key, patient=address, key_id=key_id,
                                 nonce=nonce, ciphertext=ciphertext, created=at)
                self.messages.set_link(message_id, digest=digest(token), key_id=link_key_id, expires=expires,
                                      language=message.language)
            self.context.log.info("portal message %s stored under key %s", message_id, key_id)
        return Receipt(channel="portal", address=address, provider_id=message_id, status="stored", at=at)

    # links -------------------------------------------------------------------------------------
    def link_for(self, message_id: str) -> str:
        """The magic link of a message, stored or about to be: what its notice carries."""
        if not self.link_base:
            raise RenderError("the portal has no address for its links: set clinic.portal_url "
                              "or plugins.portal.link_base")
        row = self.messages.get(message_id)
        link_key_id = row["link_key_id"] if row is not None else None
        _, token = self.ring.link_token(message_id, link_key_id)
        return f"{self.link_base}{LINK_PATH}{token}"

    # reading -----------------------------------------------------------------------------------
    def read(self, message_id: str) -> dict[str, Any]:
        """The decrypted message (subject, text, language, attachments, birth_date, sender, time_zone).

        KeyError when there is no such message, or when it does not open (its row altered or
        damaged): what staff read through this (the timeline, ``inbox --text``) goes on without it.
        """
        row = self.messages.get(message_id)
        if row is None:
            raise KeyError(message_id)
        try:
            return self.unseal(row)
        except InvalidTag:
            self.context.log.error("portal message %s does not open: its ciphertext was altered or damaged",
                                   message_id)
            raise KeyError(message_id) from None

    def unseal(self, row: dict[str, Any]) -> dict[str, Any]:
        plain = self.ring.decrypt(row["key_id"], row["nonce"], row["ciphertext"], aad=aad(row["id"]))
        data: dict[str, Any] = json.loads(plain)
        return data

    def seal(self, message_id: str, body: dict[str, Any]) -> tuple[str, bytes, bytes]:
        return self.ring.encrypt(json.dumps(body).encode("utf-8"), aad=aad(message_id))


def _birth_date(delivery: Delivery) -> dt.date | None:
    return delivery.recipient.birth_date if delivery.recipient is not None else None
