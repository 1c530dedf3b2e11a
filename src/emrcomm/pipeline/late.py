"""Recording, from a thread beside the host, a message that left while the database could not be
reached, once the caller of ``send`` has stopped waiting.

An inline send holds its row's lease for minutes (``write.INLINE_LEASE``) but its
caller only seconds (``deliver.OUTAGE_RECORD_WAIT``): the caller is told the store is away, and
this thread keeps trying to record the message for as long as the lease holds. A database back
within that time (a restart, a failover) takes the record and the row's end; else the row is
taken over when its lease runs out and sent again (the in-flight window), as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from attrs import define

from emrcomm.storage.database import StoreUnavailable

log = logging.getLogger("emrcomm.delivery")

PAUSE = 1.0  # seconds between two rounds of tries


@define
class _Pending:
    key: str  # the outbox row's key (the record id): what the log names
    record: Callable[[], object]
    until: float  # the lease's end on this process's monotonic clock


class LateRecords:
    """The messages still to record; a daemon thread, started by the first, tries them."""

    def __init__(self, pause: float = PAUSE) -> None:
        self.pause = pause
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def keep_trying(self, key: str, record: Callable[[], object], until: float) -> None:
        """Try ``record()`` until it returns or monotonic time ``until`` has passed."""
        with self._lock:
            if self._stop.is_set():
                log.error("outbox %s: not recorded, the host is closing; the row is taken over when its lease "
                          "runs out", key)
                return
            self._pending.append(_Pending(key, record, until))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="emrcomm-late-records", daemon=True)
                self._thread.start()

    def waiting(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self, timeout: float = 5.0) -> None:
        """Stop trying (what is left is taken over when its lease runs out), within ``timeout``."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            for left in self._pending:
                log.error("outbox %s: not recorded before the host closed; the row is taken over when its lease "
                          "runs out", left.key)
            self._pending.clear()

    def _run(self) -> None:
        while not self._stop.wait(self.pause):
            with self._lock:
                pending = list(self._pending)
            for item in pending:
                if self._stop.is_set():
                    return
                done = self._try(item)
                if done or time.monotonic() >= item.until:
                    if not done:
                        log.error("outbox %s: still not recorded as its lease ran out; the row is taken over and "
                                  "sent again", item.key)
                    with self._lock:
                        self._pending.remove(item)

    @staticmethod
    def _try(item: _Pending) -> bool:
        try:
            item.record()
        except StoreUnavailable:
            return False
        except Exception as exc:  # the database answers but cannot take it (full, locked): again later
            log.error("outbox %s: recording it late failed (%s)", item.key, type(exc).__name__)
            return False
        log.info("outbox %s: recorded once the database was back", item.key)
        return True
