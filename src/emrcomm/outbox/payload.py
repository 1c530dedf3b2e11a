"""What an outbox row keeps for its delivery that the record does not: the HTML part of an
email, the template it was rendered from, for a notice the message whose link it carries
(the link is derived again when it leaves, never stored), and the sending window (QUIET_HOURS)
it must leave in. Versioned, explicit JSON.

Version 3 added the window. A version-2 row (queued by 0.2) does not know it: ``window_known``
is False, and the deliverer asks the ``emrcomm_sending_window`` hook again when it leaves
(emrcomm.pipeline.deliver, fail closed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from emrcomm.errors import EmrcommError
from emrcomm.model import SendingWindow

VERSION = 3
READS = (2, 3)  # the versions this release reads


class PayloadError(EmrcommError):
    """An outbox row whose payload this release cannot read."""


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

    def to_json(self) -> dict[str, Any]:
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
                               f"{', '.join(map(str, READS))}")
        link = data.get("link_from")
        known = "window" in data
        raw = data.get("window")
        window = None if raw is None else SendingWindow(dt.time.fromisoformat(raw["start"]),
                                                        dt.time.fromisoformat(raw["end"]),
                                                        tuple(str(z) for z in raw["zones"]))
        return cls(html=data.get("html"), template=data.get("template"),
                   link_from=(str(link[0]), str(link[1])) if link else None, window=window, window_known=known)
