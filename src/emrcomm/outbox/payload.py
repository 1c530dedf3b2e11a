"""What an outbox row keeps for its delivery that the record does not: the HTML part of an
email, the template it was rendered from, and for a notice the message whose link it carries
(the link is derived again when it leaves, never stored). Versioned, explicit JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from emrcomm.errors import EmrcommError

VERSION = 2


class PayloadError(EmrcommError):
    """An outbox row whose payload this release cannot read."""


@frozen
class Payload:
    """``html`` keeps the link slot (``LINK_SLOT``) where a notice's link goes; ``link_from`` is
    the (channel, message id) of the message the link opens."""

    html: str | None = None
    template: str | None = None
    link_from: tuple[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION}
        if self.html is not None:
            out["html"] = self.html
        if self.template is not None:
            out["template"] = self.template
        if self.link_from is not None:
            out["link_from"] = list(self.link_from)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Payload:
        version = data.get("v")
        if version != VERSION:
            raise PayloadError(f"outbox payload version {version!r}; this release reads version {VERSION}")
        link = data.get("link_from")
        return cls(html=data.get("html"), template=data.get("template"),
                   link_from=(str(link[0]), str(link[1])) if link else None)
