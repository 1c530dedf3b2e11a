"""SMART system scopes: what each operation needs, and how a requested scope string reads.

Scopes are kept in SMART v1 form, ``system/<Type>.read`` or ``system/<Type>.write``; a request
may also use ``*`` (both) or SMART v2 letters (``c``, ``u``, ``d``: write; ``r``, ``s``: read),
and ``system/*.read`` for every type.
"""

from __future__ import annotations

import re

from emrcomm.errors import RequestError

TYPES = ("CommunicationRequest", "Communication", "Consent", "Subscription")
# Exactly the scopes some operation requires (handlers.build; a test holds the two equal): the
# SMART configuration advertises these, and a client is registered with these only. There is no
# Communication write (the records are emrcomm's) and no Consent read (the ledger is not served).
ALL = ("system/CommunicationRequest.read", "system/CommunicationRequest.write", "system/Communication.read",
       "system/Consent.write", "system/Subscription.read", "system/Subscription.write")
_SCOPE = re.compile(r"system/(\*|[A-Za-z]{1,40})\.(read|write|\*|[cruds]{1,5})")


def parse_scopes(text: str, *, strict: bool = False) -> list[str]:
    """The scopes a space-separated string asks for, in v1 form, in :data:`ALL` order.

    ``strict``: an unknown scope is a RequestError (registering a client); otherwise scopes this
    server does not know are left out (a token request: the grant says what was given).
    """
    wanted: set[str] = set()
    for word in text.split():
        match = _SCOPE.fullmatch(word)
        kind = match.group(1) if match else None
        if match is None or (kind != "*" and kind not in TYPES):
            if strict:
                raise RequestError(f"unknown scope {word[:80]!r}; choose from: {' '.join(ALL)}")
            continue
        access = match.group(2)
        actions = ({"read", "write"} if access == "*" else {access} if access in ("read", "write")
                   else {"write" for c in access if c in "cud"} | {"read" for c in access if c in "rs"})
        named = {f"system/{t}.{a}" for t in (TYPES if kind == "*" else (kind,)) for a in actions}
        if strict and not named & set(ALL):
            raise RequestError(f"scope {word[:80]!r} gives nothing: no operation needs it; choose from: {' '.join(ALL)}")
        wanted.update(named)
    return [s for s in ALL if s in wanted]
