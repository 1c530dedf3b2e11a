"""What an outbox row keeps for its delivery that the record does not: the HTML part of an
email, the template it was rendered from, for a notice the message whose link it carries
(the link is derived again when it leaves, never stored), and the sending window (QUIET_HOURS)
it must leave in. Versioned, explicit JSON.

Version 3 added the window. A version-2 row (queued by 0.2) does not know it: ``window_known``
is False, and the deliverer asks the ``emrcomm_sending_window`` hook again when it leaves
(emrcomm.pipeline.deliver, fail closed).

A stored payload this release cannot read (corrupted, or of a version it does not know) is read
as a Payload that says so (``unreadable``), never as an error: one such row must not stop the
other rows of a claim, nor the listing of the outbox.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from emrcomm.errors import EmrcommError
from emrcomm.model import SendingWindow

VERSION = 3
READS = (2, 3)  # the versions this release reads
# How ``Unreadable.said`` begins for a row a newer release wrote: the row's last_error once a
# worker of this release has given it back, by which ``emrcomm outbox`` finds the rows waiting.
NEWER = "written by a newer release"


class PayloadError(EmrcommError):
    """An outbox row whose payload this release cannot read; ``version`` is the one it names."""

    def __init__(self, message: str, version: object = None) -> None:
        super().__init__(message)
        self.version = version


@frozen
class Unreadable:
    """Why a stored payload could not be read: ``said`` is for staff (the error's class, never the
    payload's text); ``newer`` when a newer release wrote it (a version above ``VERSION``), for a
    worker of that release to deliver."""

    said: str
    newer: bool = False


@frozen
class Payload:
    """``html`` keeps the link slot (``LINK_SLOT``) where a notice's link goes; ``link_from`` is
    the (channel, message id) of the message the link opens. ``window``: when the row may leave
    (None: any time); ``window_known`` is False for a row written before windows were kept (and
    by default: a payload built without saying is checked again, never sent unchecked)."""

    html: str | None = None
    template: str | None = None
    link_from: tuple[str, str] | None = None
    window: SendingWindow | None = None
    window_known: bool = False
    unreadable: Unreadable | None = None  # set only by ``read``: this release cannot deliver the row

    def to_json(self) -> dict[str, Any]:
        if self.unreadable is not None:
            raise PayloadError("an outbox payload that could not be read is never written back")
        out: dict[str, Any] = {"v": VERSION}
        if self.html is not None:
            out["html"] = self.html
        if self.template is not None:
            out["template"] = self.template
        if self.link_from is not None:
            out["link_from"] = list(self.link_from)
        if self.window_known:
            w = self.window
            out["window"] = None if w is None else {"start": f"{w.start:%H:%M}", "end": f"{w.end:%H:%M}",
                                                    "zones": list(w.zones)}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Payload:
        version = data.get("v")
        if version not in READS:
            raise PayloadError(f"outbox payload version {version!r}; this release reads versions "
                               f"{', '.join(map(str, READS))}", version)
        link = data.get("link_from")
        known = "window" in data
        raw = data.get("window")
        window = None if raw is None else SendingWindow(dt.time.fromisoformat(raw["start"]),
                                                        dt.time.fromisoformat(raw["end"]),
                                                        tuple(str(z) for z in raw["zones"]))
        return cls(html=data.get("html"), template=data.get("template"),
                   link_from=(str(link[0]), str(link[1])) if link else None, window=window, window_known=known)

    @classmethod
    def read(cls, text: str) -> Payload:
        """The payload stored as ``text``; one this release cannot read says why (``unreadable``)."""
        try:
            return cls.from_json(json.loads(text))
        except PayloadError as exc:
            version = exc.version
            if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
                return cls(unreadable=Unreadable(f"{NEWER} (outbox payload version {version}; "
                                                 f"this one reads {', '.join(map(str, READS))})", newer=True))
            return cls(unreadable=Unreadable(_cannot_read(exc)))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:  # corrupted
            return cls(unreadable=Unreadable(_cannot_read(exc)))


def _cannot_read(exc: Exception) -> str:
    return f"its outbox payload cannot be read by this release ({type(exc).__name__})"
