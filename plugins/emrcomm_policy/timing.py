"""When a message may go: the sending window in the patient's time zone (QUIET_HOURS) and expiry.

The window is [start, end) in local time. With the patient's zone unknown, a message goes only
when every clinic zone is inside its window, and is held until the first such instant.

The arithmetic of the next opening is emrcomm.SendingWindow's (``opening``), which the outbox
uses too when it checks the window again as a row leaves.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import frozen

from emrcomm import ConfigError, SendingWindow

DEFAULT_WINDOW = ("08:00", "21:00")
DEFAULT_BY_JURISDICTION: Mapping[str, tuple[str, str]] = {"US-FL": ("08:00", "20:00")}


@frozen
class Window:
    start: dt.time
    end: dt.time

    def contains(self, at: dt.datetime, zone: dt.tzinfo) -> bool:
        local = at.astimezone(zone).time()
        return self.start <= local < self.end

    def narrowed(self, other: Window) -> Window:
        """The part of this window inside ``other``: a jurisdiction may only narrow it."""
        return Window(max(self.start, other.start), min(self.end, other.end))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


def _time(value: Any, where: str) -> dt.time:
    try:
        hours, minutes = str(value).split(":")
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a time; write it as \"HH:MM\", e.g. \"08:00\"") from None


def parse_window(value: Any, where: str) -> Window:
    """A ``["HH:MM", "HH:MM"]`` setting as a Window; ConfigError naming ``where`` otherwise."""
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ConfigError(f"{where}: {value!r} is not a window; write [\"08:00\", \"21:00\"] (start, end)")
    window = Window(_time(value[0], f"{where}[0]"), _time(value[1], f"{where}[1]"))
    if window.start == window.end:
        raise ConfigError(f"{where}: the window {value!r} is empty: it ends when it starts")
    if window.start > window.end:
        raise ConfigError(f"{where}: the window {value!r} ends before it starts; windows cannot span midnight")
    return window


def zone(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The IANA zone called ``name``, or None when the name is absent or unknown."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def zone_name(z: dt.tzinfo) -> str:
    """The IANA name of a zone this module resolved (UTC for the fallback)."""
    return z.key if isinstance(z, zoneinfo.ZoneInfo) else "UTC"


def next_opening(window: Window, zones: Sequence[dt.tzinfo], now: dt.datetime) -> dt.datetime:
    """The first instant at or after ``now`` (UTC) that is inside ``window`` in every zone; when
    the zones never share an open moment, the opening in the first (emrcomm.SendingWindow.opening)."""
    return SendingWindow(window.start, window.end, ()).opening(now, zones)


def is_open(window: Window, zones: Iterable[dt.tzinfo], now: dt.datetime) -> bool:
    return all(window.contains(now, z) for z in zones)


def aware(value: dt.datetime, default_zone: dt.tzinfo) -> dt.datetime:
    """``value`` with a time zone: a naive time is read in the clinic's zone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=default_zone)
