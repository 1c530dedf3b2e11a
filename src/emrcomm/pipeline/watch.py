"""The transports' sends in flight, watched by one thread: a ``send`` still running past its bound
(``[delivery] send_timeout``, never past its row's lease) is logged as hung, naming the plugin,
the channel and the outbox row, and whoever listens (the worker) is told.

Python cannot interrupt a thread: the call goes on until it returns. Watching a send costs a dict
insert and a removal under a lock (3 µs measured), where a thread hop per send would cost
~50 µs on the inline path. The watching thread looks at least once a TICK, and at the soonest
bound of the sends in flight; a send wakes it only when its own bound comes before that (waking
it on every send cost each inline send a thread switch).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from attrs import define

log = logging.getLogger("emrcomm.delivery")

# A claimed row starts its send within this share of its lease, or is given back: the rest of
# the lease (7/8) must cover the send itself (docs/operations.md: lease_seconds).
HELD_SHARE = 1 / 8
# ``send_timeout`` when the config gives none: three quarters of the lease (90 s of 120), so that
# a hung send is reported while the row is still leased, before another worker takes it over.
SEND_SHARE = 3 / 4
TICK = 1.0  # the longest the watching thread sleeps between two looks


def send_timeout(delivery: Mapping[str, Any]) -> float:
    """``[delivery] send_timeout``, or its default from ``lease_seconds``."""
    lease = float(delivery.get("lease_seconds", 120.0))
    return float(delivery.get("send_timeout", lease * SEND_SHARE))


def check_send_timeout(delivery: Mapping[str, Any]) -> str | None:
    """Why ``[delivery] send_timeout`` cannot be used with ``lease_seconds`` (None: it can)."""
    lease = float(delivery.get("lease_seconds", 120.0))
    bound = send_timeout(delivery)
    if bound > lease * (1 - HELD_SHARE):
        return (f"delivery.send_timeout: {bound:g} s is more than seven eighths of delivery.lease_seconds "
                f"({lease:g} s): a send that long would outlast its row's lease and be sent again by another "
                f"worker; lower send_timeout to at most {lease * (1 - HELD_SHARE):g} or raise lease_seconds")
    return None


@define(eq=False)
class Sending:
    """One call to a transport's ``send``, as the watch sees it."""

    key: str  # the outbox row (the record id): the only id the log gives
    channel: str
    plugin: str
    started: float  # time.monotonic()
    bound: float  # seconds it may run before it is reported hung
    thread: int  # threading.get_ident() of the thread making the call
    hung: bool = False
    owner: str | None = None  # the lease holder of the row (a worker, an inline sender)

    def running(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started


class SendWatch:
    """The sends in flight of one host; a daemon thread, started by the first send, looks at them."""

    def __init__(self, bound: float) -> None:
        self.bound = bound
        self._sending: dict[int, Sending] = {}
        self._listeners: list[Callable[[Sending], None]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()  # a send whose bound comes before the next look began, or close()
        self._next_look = math.inf  # when the watching thread looks next (monotonic)
        self._closed = False
        self._thread: threading.Thread | None = None

    def begin(self, key: str, channel: str, plugin: str, held_until: float | None, owner: str | None = None) -> Sending:
        """A send starts now on this thread; ``held_until``: its row's lease end (monotonic), if
        known; ``owner``: who holds its lease."""
        now = time.monotonic()
        bound = self.bound if held_until is None else max(0.0, min(self.bound, held_until - now))
        sending = Sending(key, channel, plugin, now, bound, threading.get_ident(), owner=owner)
        with self._lock:
            self._sending[id(sending)] = sending
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="emrcomm-send-watch", daemon=True)
                self._thread.start()
            sooner = now + bound < self._next_look
        if sooner:
            self._wake.set()
        return sending

    def end(self, sending: Sending) -> None:
        """The send returned (or raised)."""
        with self._lock:
            self._sending.pop(id(sending), None)
        if sending.hung:
            log.warning("plugin %s: the send of outbox %s (channel %s) returned after %.1f s, after it was "
                        "reported hung", sending.plugin, sending.key, sending.channel, sending.running())

    def listen(self, listener: Callable[[Sending], None]) -> None:
        """Call ``listener(sending)`` (from the watching thread) for each send found hung."""
        with self._lock:
            self._listeners.append(listener)

    def unlisten(self, listener: Callable[[Sending], None]) -> None:
        with self._lock:
            self._listeners = [each for each in self._listeners if each != listener]  # (bound methods are made anew)

    def in_flight(self) -> list[Sending]:
        with self._lock:
            return list(self._sending.values())

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._wake.set()

    def look(self, now: float | None = None) -> list[Sending]:
        """Report the sends past their bound not reported yet (the watching thread calls this)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            found = [s for s in self._sending.values() if not s.hung and now - s.started >= s.bound]
            for sending in found:
                sending.hung = True
            listeners = list(self._listeners)
        for sending in found:
            # Ids only: the row, the channel, the plugin; never the address or the words.
            log.error("plugin %s: its transport's send of outbox %s (channel %s) has not returned after %.1f s "
                      "(delivery.send_timeout %g s): the provider does not answer and the plugin set no timeout "
                      "on it; the row stays leased and is taken over when its lease runs out",
                      sending.plugin, sending.key, sending.channel, now - sending.started, sending.bound)
            for listener in listeners:
                try:
                    listener(sending)
                except Exception as exc:  # one listener's failure does not hide the send from the others
                    log.error("send watch: a listener failed (%s)", type(exc).__name__)
        return found

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                now = time.monotonic()
                wait = min([TICK, *(s.started + s.bound - now + 0.01 for s in self._sending.values() if not s.hung)])
                self._next_look = now + max(wait, 0.0)
                self._wake.clear()
            self._wake.wait(max(wait, 0.0))
            self.look()
