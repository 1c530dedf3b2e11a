"""The default SMS transport: one JSON line per message in a local file, nothing leaves the machine."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from emrcomm import Delivery, Receipt

log = logging.getLogger("emrcomm.plugin.sms")


class FileSink:
    """Appends ``{"id", "to", "text", "at"}`` lines to a file, fsync'd, once per key.

    Keys already in the file are not written again, so a retry after a crash is not a second
    message in the sink.
    """

    def __init__(self, path: Path, channel: str, clock: Callable[[], dt.datetime]) -> None:
        self.path = path
        self.channel = channel
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._torn = False
        if self.path.exists():
            self._seen = self._keys()

    def _keys(self) -> set[str]:
        """The keys already in the file. A line that cannot be read (the last write torn by a crash
        before its fsync, or a hand edit) is skipped with a warning that gives its number: its
        message was never acknowledged, so a retry writes it whole."""
        keys: set[str] = set()
        with self.path.open("rb") as fh:
            data = fh.read()
        self._torn = bool(data) and not data.endswith(b"\n")
        for number, line in enumerate(data.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                keys.add(item["id"])
            except (ValueError, KeyError, TypeError):
                log.warning("%s: line %d cannot be read and is skipped", self.path.name, number)
        return keys

    def send(self, delivery: Delivery) -> Receipt:
        message, address, key = delivery.message, delivery.address, delivery.key
        at = self.clock()
        with self._lock:
            if key not in self._seen:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                line = json.dumps({"id": key, "to": address, "text": message.text, "at": at.isoformat()},
                                  ensure_ascii=False)
                with self.path.open("a", encoding="utf-8") as fh:
                    # After a torn last line, start on a line of our own.
                    fh.write(("\n" if self._torn else "") + line + "\n")
                    self._torn = False
                    fh.flush()
                    os.fsync(fh.fileno())
                self._seen.add(key)
        return Receipt(channel=self.channel, address=address, provider_id=key, status="accepted", at=at)

    def close(self) -> None:
        """Nothing to release; here so every transport can be closed the same way."""
