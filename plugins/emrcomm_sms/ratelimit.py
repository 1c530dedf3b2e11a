"""Per-sender token buckets: providers limit messages per second per sending number, and a
429 from one means everyone sending from that number should slow down, not only the caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emrcomm.storage import Rates


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; thread-safe.

    A caller that finds the bucket empty reserves the next token (the count goes negative) and
    sleeps outside the lock until its token is due, so callers are served in arrival order and
    never spin.
    """

    def __init__(self, rate: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self) -> float:
        """Take one token, sleeping until it is due. Returns the seconds slept."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Hand out nothing for ``seconds`` (the provider said Retry-After): the next caller waits
        that long, the ones after it keep the normal spacing."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 1.0 - seconds * self.rate)


class SenderLimits:
    """One TokenBucket per sender (a phone number, a messaging service), created on first use."""

    def __init__(self, rate: float, burst: int = 1, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        TokenBucket(rate, burst)  # checks the numbers now, not at the first send
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, sender: str) -> TokenBucket:
        with self._lock:
            found = self._buckets.get(sender)
            if found is None:
                found = self._buckets[sender] = TokenBucket(self.rate, self.burst, clock=self._clock,
                                                            sleep=self._sleep)
            return found

    def acquire(self, sender: str) -> float:
        return self.bucket(sender).acquire()

    def pause(self, sender: str, seconds: float) -> None:
        self.bucket(sender).pause(seconds)


class FleetSenderLimits:
    """Per-sender buckets kept in the database (``emrcomm.storage.Rates``), so that a provider's
    limit of N a second holds for every worker process and machine together, not for each.

    The same behaviour as :class:`SenderLimits`: a caller reserves the next slot and sleeps until
    it is due (callers of every process served in the order they asked); ``pause`` is seen by all.
    One database round trip a message.
    """

    def __init__(self, rates: Rates, rate: float, burst: int = 1, *, scope: str = "sms",
                 sleep: Callable[[float], None] = time.sleep) -> None:
        TokenBucket(rate, burst)  # checks the numbers now, not at the first send
        self.rates = rates
        self.rate = rate
        self.burst = burst
        self.scope = scope
        self._sleep = sleep

    def acquire(self, sender: str) -> float:
        wait = self.rates.take(self.scope, sender, rate=self.rate, burst=self.burst, reserve=True)
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, sender: str, seconds: float) -> None:
        self.rates.pause(self.scope, sender, rate=self.rate, burst=self.burst, seconds=seconds)
