"""Is a sending window (QUIET_HOURS) open at an instant, and when does it open next: what the
outbox checks when a row leaves, so that a retry, a requeued dead letter or a takeover does not
go at night. The window comes from the ``emrcomm_sending_window`` hook when the request is
decided, kept in the row's payload.

The window's own arithmetic is SendingWindow's (``contains``, ``opening``), which the policy
plugin uses too; this module resolves a stored row's zone names.

A zone name that no longer resolves (tzdata changed under a stored row) is left out, with a
warning naming the row only; with none left, the clinic's zones (``fallback``) decide. The
message is held, never sent unchecked.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import zoneinfo
from collections.abc import Sequence

from emrcomm.model import SendingWindow

log = logging.getLogger("emrcomm.delivery")


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def zones_of(window: SendingWindow, fallback: Sequence[str] = (), *, key: str = "") -> tuple[dt.tzinfo, ...]:
    """The zones of ``window`` that resolve; those of ``fallback`` when none does; UTC last."""
    found = [z for z in (_zone(n) for n in window.zones) if z is not None]
    if len(found) < len(window.zones):
        log.warning("outbox %s: %d time zone(s) of its sending window are unknown; judged on the others",
                    key or "?", len(window.zones) - len(found))
    if not found:
        found = [z for z in (_zone(n) for n in fallback) if z is not None]
    return tuple(found) or (dt.UTC,)


def closed_until(window: SendingWindow | None, at: dt.datetime, fallback: Sequence[str] = (), *,
                 key: str = "") -> dt.datetime | None:
    """None when ``at`` is inside ``window`` in every one of its zones (or there is no window);
    else the first instant after it that is (SendingWindow.opening). The zones are resolved once."""
    if window is None:
        return None
    zones = zones_of(window, fallback, key=key)
    return None if window.contains(at, zones) else window.opening(at, zones)
