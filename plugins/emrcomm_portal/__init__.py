"""Built-in secure portal channel: the message waits in the store, encrypted at rest with
AES-GCM under a key ring; the patient is told by a content-free notice on another channel.
"""

from __future__ import annotations

import json
import uuid

from emrcomm import Channel, Message, PluginContext, Receipt, hookimpl
from emrcomm.config import load_schema
from emrcomm_portal.keyring import KeyRing


class PortalTransport:
    """Stores the message encrypted; the record id is the message id, so a retry stores nothing new."""

    def __init__(self, context: PluginContext, ring: KeyRing) -> None:
        self.context = context
        self.ring = ring

    def send(self, message: Message, address: str, key: str) -> Receipt:
        # The record id is the message id: the filed Communication references urn:uuid:<it>.
        message_id = uuid.UUID(hex=key).hex
        body = json.dumps({"subject": message.subject, "text": message.text, "language": message.language})
        key_id, nonce, ciphertext = self.ring.encrypt(body.encode("utf-8"), aad=message_id.encode())
        at = self.context.clock()
        self.context.store.portal_put(id=message_id, record_id=key, patient=address, key_id=key_id,
                                      nonce=nonce, ciphertext=ciphertext, created=at)
        return Receipt(channel="portal", address=address, provider_id=message_id, status="stored", at=at)

    def read(self, message_id: str) -> dict[str, str]:
        row = self.context.store.portal_get(message_id)
        if row is None:
            raise KeyError(message_id)
        plain = self.ring.decrypt(row["key_id"], row["nonce"], row["ciphertext"], aad=message_id.encode())
        data: dict[str, str] = json.loads(plain)
        return data


class Plugin:
    """Registers the ``portal`` channel (secure, v3 medium ONLINEWRIT)."""

    settings_schema = load_schema("plugins/portal.schema.json")

    def __init__(self, context: PluginContext) -> None:
        ring = KeyRing.load_or_create(context.path(context.settings.get("keyring", "emrcomm-data/portal-keyring.json")))
        self.transport = PortalTransport(context, ring)

    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        return [Channel(name="portal", secure=True, medium="ONLINEWRIT", transport=self.transport,
                        address_system=None, holds_content=True)]
