"""The one clock every decision reads: quiet hours, expiry, holds, the chart's times, and leases on
SQLite (PostgreSQL times the outbox's and the notifications' leases by the database server's clock).

A Host takes its clock as an argument; without one it uses :func:`default_clock`: the system's,
or the system's shifted by ``EMRCOMM_CLOCK`` so that a whole run — the CLI, ``serve``, workers —
lives at another hour or date while time still moves (tests, demos).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable

from attrs import frozen

from emrcomm.errors import ConfigError

log = logging.getLogger("emrcomm.clock")

VARIABLE = "EMRCOMM_CLOCK"

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """The system clock, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@frozen
class ShiftedClock:
    """The system clock moved by ``offset``: it runs at real speed from another instant.

    Two processes given the same offset agree.
    """

    offset: dt.timedelta

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


def shift_to(instant: dt.datetime, *, at: float | None = None) -> str:
    """The ``EMRCOMM_CLOCK`` value that makes it ``instant`` when the system clock reads ``at``
    (Unix time; default now). Processes started later with it agree with this one."""
    if instant.tzinfo is None:
        raise ValueError("the instant must be aware (give it a time zone)")
    return f"{instant.isoformat()}@{time.time() if at is None else at:.6f}"


def parse(value: str) -> ShiftedClock:
    """Read ``EMRCOMM_CLOCK``: ``INSTANT`` (it is that instant now, when the variable is read)
    or ``INSTANT@UNIXTIME`` (it was that instant when the system clock read UNIXTIME)."""
    text, _, anchor = value.strip().partition("@")
    where = f"{VARIABLE}={value!r}"
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{where}: expected an ISO date-time with a zone, e.g. 2026-11-23T10:00:00-05:00") from None
    if instant.tzinfo is None:
        raise ConfigError(f"{where}: the date-time has no zone; add one, e.g. -05:00 or Z")
    try:
        then = float(anchor) if anchor else time.time()
    except ValueError:
        raise ConfigError(f"{where}: after '@' expected the Unix time at which it held") from None
    return ShiftedClock(instant - dt.datetime.fromtimestamp(then, dt.UTC))


def default_clock() -> Clock:
    """The system clock, or the one ``EMRCOMM_CLOCK`` asks for (logged: it is never for production)."""
    value = os.environ.get(VARIABLE, "").strip()
    if not value:
        return utcnow
    clock = parse(value)
    log.info("the clock is shifted by %s (%s): for tests and demos only", VARIABLE, clock.offset)
    return clock
