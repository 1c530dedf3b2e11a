"""What a request asks for, as a short digest kept in the request ledger: the same request id
sent again with other content (another patient, template, variables or words) is not a retry.

The id and the identifiers are left out (they name the request, and a retry may carry another
id), and so is how it was written: the digest is of the parsed request, not of its JSON.
:func:`check_retry` is the rule, for every door (``Host.send``, ``send_many``, ``emrcomm send``,
the FHIR API and its ``If-None-Exist``).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import orjson

from emrcomm.errors import RequestConflict
from emrcomm.fhir import is_patient_link
from emrcomm.limits import escape_controls
from emrcomm.model import Outcome, Request, Status
from emrcomm.storage.records import RETRYABLE, RequestRow

# Fields that name the request, or link it, rather than say what it asks for. An automatic
# answer (a STOP's confirmation, the day's auto-reply) has an id that makes it once per opt-out
# or per day: the patient's second message that day is answered by the same request, linked
# (``in_response_to``) to the message that came first, not a new one under its id.
_NAMES = frozenset({"id", "identifier", "other_identifiers", "based_on", "in_response_to"})


def content_digest(req: Request, named: Callable[[str], str]) -> bytes:
    """The first 16 bytes of the SHA-256 of what ``req`` asks for, in a canonical form (keys
    sorted, times in UTC): equal for a retry however its JSON was written. A patient named by a
    search (``Patient?identifier=system|value``: a health number) is in it as ``named`` gives it,
    the host's keyed digest (``Audit.patient``): an unkeyed hash of a ten-digit number is found
    again by hashing every number. A ``Patient/<id>`` link is in it as written."""
    content = {f.name: _plain(getattr(req, f.name)) for f in attrs.fields(Request) if f.name not in _NAMES}
    if not is_patient_link(req.patient_ref):
        content["patient_ref"] = named(req.patient_ref)
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).digest()[:16]


def check_retry(earlier: RequestRow | None, req: Request, named: Callable[[str], str]) -> None:
    """RequestConflict when ``req``, which repeats request ``earlier`` (its id, or an identifier an
    ``If-None-Exist`` names), asked for something else: the EMR used one id for two messages, and
    answering "already handled" would leave the second patient without theirs. ``req`` is the
    request as the EMR gave it (pipeline.decide.Decision.asked). One that was blocked or not
    filed may come again changed (its cause fixed), and one entered before schema 8 kept no
    digest: neither is a conflict. ``named`` as for :func:`content_digest`; a request named by a
    search and entered before its patient was keyed in the digest (0.2's first schema-8 rows)
    matches its digest of the search as written."""
    if earlier is None or earlier.status in RETRYABLE or earlier.digest is None:
        return
    if earlier.digest == content_digest(req, named):
        return
    if not is_patient_link(req.patient_ref) and earlier.digest == content_digest(req, _as_written):
        return
    raise RequestConflict(conflict_text(req, earlier.id), earlier=earlier.id)


def _as_written(ref: str) -> str:
    return ref


def conflict_text(req: Request, earlier: str) -> str:
    """What a conflict says: which id was used again, that the earlier request differs, that nothing was sent."""
    named = (f"identifier {req.identifier.system or ''}|{req.identifier.value}" if req.identifier is not None
             else f"id {req.id}")
    return (f"{escape_controls(named[:300])} was already used for request {escape_controls(earlier[:300])}, which "
            "asked for something else (another patient, category, template, variables, words or times): this is "
            "not a retry of it, so nothing was sent; give each message its own "
            f"{'identifier' if req.identifier is not None else 'id'} (a retry sends the same content again)")


def is_conflict(outcome: Outcome) -> bool:
    """Whether ``outcome`` is ``send_many``'s answer to a request refused by :func:`check_retry`
    (a ``failed`` outcome marked ``conflict``), not another failure, whatever its words."""
    return outcome.status is Status.FAILED and outcome.error == "conflict"


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
