"""What a request asks for, as a short digest kept in the request ledger: the same request id
sent again with other content (another patient, template, variables or words) is not a retry.

The id and the identifiers are left out (they name the request, and a retry may carry another
id), and so is how it was written: the digest is of the parsed request, not of its JSON.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from emrcomm.model import Request

# Fields that name the request rather than say what it asks for.
_NAMES = frozenset({"id", "identifier", "other_identifiers", "based_on"})


def content_digest(req: Request) -> bytes:
    """The first 16 bytes of the SHA-256 of what ``req`` asks for, in a canonical form (keys
    sorted, times in UTC): equal for a retry however its JSON was written."""
    content = {f.name: _plain(getattr(req, f.name)) for f in attrs.fields(Request) if f.name not in _NAMES}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).digest()[:16]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return ["datetime", value.astimezone(dt.UTC).isoformat()]
    if isinstance(value, dt.date):
        return ["date", value.isoformat()]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if attrs.has(type(value)):
        return {f.name: _plain(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, float):
        return ["decimal", repr(value)]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return ["other", str(value)]
