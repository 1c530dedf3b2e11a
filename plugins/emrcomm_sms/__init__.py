"""Built-in SMS channel. Transport ``file`` (the default) appends one JSON line per message to
a sink file; provider transports (Kannel, Twilio) plug in behind the same Transport interface.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from emrcomm import Channel, Message, PluginContext, Receipt, hookimpl
from emrcomm.config import load_schema


class FileSink:
    """Appends ``{"id", "to", "text", "at"}`` lines to a file, fsync'd, once per key.

    Keys already in the file are not written again, so a retry after a crash is not a second
    message in the sink.
    """

    def __init__(self, path: Path, channel: str, clock) -> None:  # type: ignore[no-untyped-def]
        self.path = path
        self.channel = channel
        self.clock = clock
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seen: set[str] = set()
        if self.path.exists():
            with self.path.open(encoding="utf-8") as fh:
                self._seen = {json.loads(line)["id"] for line in fh if line.strip()}

    def send(self, message: Message, address: str, key: str) -> Receipt:
        at = self.clock()
        with self._lock:
            if key not in self._seen:
                line = json.dumps({"id": key, "to": address, "text": message.text, "at": at.isoformat()},
                                  ensure_ascii=False)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                self._seen.add(key)
        return Receipt(channel=self.channel, address=address, provider_id=key, status="accepted", at=at)


class Plugin:
    """Registers the ``sms`` channel (insecure, v3 medium SMSWRIT)."""

    settings_schema = load_schema("plugins/sms.schema.json")

    def __init__(self, context: PluginContext) -> None:
        settings = context.settings
        self.max_segments = settings.get("max_segments", 3)
        self.transport = FileSink(context.path(settings.get("path", "emrcomm-data/out/sms.jsonl")),
                                  "sms", context.clock)

    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        return [Channel(name="sms", secure=False, medium="SMSWRIT", transport=self.transport,
                        address_system="sms", max_segments=self.max_segments)]
