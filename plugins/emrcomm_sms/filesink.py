"""The default SMS transport: one JSON line per message in a local file, nothing leaves the machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from emrcomm import Message, Receipt


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
        if self.path.exists():
            with self.path.open(encoding="utf-8") as fh:
                self._seen = {json.loads(line)["id"] for line in fh if line.strip()}

    def send(self, message: Message, address: str, key: str) -> Receipt:
        at = self.clock()
        with self._lock:
            if key not in self._seen:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                line = json.dumps({"id": key, "to": address, "text": message.text, "at": at.isoformat()},
                                  ensure_ascii=False)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                self._seen.add(key)
        return Receipt(channel=self.channel, address=address, provider_id=key, status="accepted", at=at)

    def close(self) -> None:
        """Nothing to release; here so every transport can be closed the same way."""
