"""``GET /fhir/Communication`` and ``GET /fhir/CommunicationRequest``: the search parameters the
API takes, read strictly (an unknown one is a 400 that lists those there are), and the searchset
Bundles.

Communications: pages follow filing order; the next link carries where the page ended (an opaque
cursor), so paging stays right while new messages are filed. CommunicationRequests are found by
the identifier the EMR sent them with (one page: an identifier names one request, or a few when
requests with ids of their own shared it).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from emrcomm.api.outcome import ApiError
from emrcomm.errors import RequestError
from emrcomm.fhir import CATEGORY_SYSTEM, communication, fhir_datetime, unreadable_entry
from emrcomm.limits import check_identifier
from emrcomm.model import Category, Identifier, Record
from emrcomm.storage.records import PageQuery, Unreadable

# _format and _pretty are how the answer is written (always JSON; _pretty changes nothing that a
# parser sees), taken by every search since FHIR clients add them on their own.
PARAMS = ("subject", "patient", "status", "category", "based-on", "_lastUpdated", "_count", "_summary", "_total",
          "_cursor", "_format", "_pretty")
TOTALS = ("none", "estimate", "accurate")
STATUSES = ("preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error", "unknown")
PREFIXES = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "eq": "eq", "": "eq"}
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
MAX_VALUES = 20
REQUEST_PARAMS = ("identifier", "_format", "_pretty")
DEFINITION_PARAMS = ("url", "_format", "_pretty")
MAX_REQUESTS = 100  # requests that share one identifier, in one answer
# FHIR's escapes in a search value: a '|', ',' or '$' that is part of it, and the backslash itself.
_ESCAPED = {"|", ",", "$", "\\"}


def parse(params: Sequence[tuple[str, str]], *, page_size: int) -> PageQuery:
    """The records query for a Communication search's parameters; ApiError 400 naming the
    parameter and what it takes. ``_summary=count`` or ``_count=0`` ask for the number of
    matches alone: a query whose limit is 0."""
    seen = _grouped(params, PARAMS, "this server supports", repeatable="_lastUpdated",
                    once="give several values once, separated by commas (any of them matches)")
    one = {name: values[0] for name, values in seen.items()}
    patients = {_patient(one[p], p) for p in ("subject", "patient") if p in one}
    if len(patients) > 1:
        raise ApiError(400, "invalid", "subject and patient name different patients", expression="patient")
    statuses = _list(one.get("status"), "status")
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise ApiError(400, "value", f"status {bad[0][:40]!r} is not a Communication status; one of: "
                       f"{', '.join(STATUSES)}", expression="status")
    categories = tuple(_category(c) for c in _list(one.get("category"), "category"))
    requests = tuple(_based_on(v) for v in _list(one.get("based-on"), "based-on"))
    summary = one.get("_summary", "false")
    if summary not in ("count", "false"):
        raise ApiError(400, "not-supported", f"_summary={summary[:40]!r}: only _summary=count (the number of "
                       "matches alone) and _summary=false (every element, as without it) are supported",
                       expression="_summary")
    if one.get("_pretty", "false") not in ("true", "false"):
        raise ApiError(400, "value", "_pretty is true or false", expression="_pretty")
    if one.get("_total", "none") not in TOTALS:
        raise ApiError(400, "value", f"_total is one of {', '.join(TOTALS)}", expression="_total")
    return PageQuery(
        limit=0 if summary == "count" else _count(one.get("_count"), page_size), patient=next(iter(patients), None), statuses=statuses,
        categories=categories, request_ids=requests,
        updated=tuple(b for v in seen.get("_lastUpdated", ()) for b in _updated(v)),
        after=_cursor(one["_cursor"]) if "_cursor" in one else None,
    )


def total_asked(params: Sequence[tuple[str, str]]) -> bool:
    """Whether a Communication search asks for the number of matches on every page
    (``_total=accurate``; ``estimate`` is answered as accurately). Without it, a first page that
    holds every match says how many there are, and a longer search does not count them."""
    return any(k == "_total" and v in ("estimate", "accurate") for k, v in params)


def request_identifier(params: Sequence[tuple[str, str]]) -> Identifier:
    """The identifier a CommunicationRequest search names (``identifier=<system>|<value>``, or
    ``|<value>`` for one without a system); ApiError 400 naming the parameter and what it takes."""
    seen = _grouped(params, REQUEST_PARAMS, "CommunicationRequests are searched by", once="give it once")
    one = {name: values[0] for name, values in seen.items()}
    if "identifier" not in one:
        raise ApiError(400, "required", "identifier is missing: CommunicationRequests are found by the identifier "
                       "they were sent with, identifier=<system>|<value>", expression="identifier")
    return identifier_token(one["identifier"])


def _grouped(params: Sequence[tuple[str, str]], known: Sequence[str], supported: str, *, once: str,
             repeatable: str | None = None) -> dict[str, list[str]]:
    """Each parameter's values, in order; ApiError 400 for a parameter not ``known`` (naming
    what is, after ``supported``) or one given twice but ``repeatable`` (``once`` says what to do)."""
    seen: dict[str, list[str]] = {}
    for name, value in params:
        if name not in known:
            raise ApiError(400, "not-supported", f"unknown search parameter {name[:60]!r}; {supported}: "
                           f"{', '.join(p for p in known if p != '_cursor')}", expression=name[:60])
        seen.setdefault(name, []).append(value)
    for name, values in seen.items():
        if len(values) > 1 and name != repeatable:
            raise ApiError(400, "invalid", f"{name} is given {len(values)} times: {once}", expression=name)
    return seen


def identifier_token(text: str, expression: str = "identifier") -> Identifier:
    """The identifier a token names (``<system>|<value>``, FHIR's escapes read); ApiError 400
    naming ``expression`` (the parameter, or the header it came in) and what it takes."""
    how = ("identifier=<system>|<value> (|<value> for an identifier without a system; a '|' or ',' that is part "
           "of the system or value written '\\|', '\\,')")
    parts, part, chars = [], [], iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            part.append(following if following in _ESCAPED else char + following)
        elif char == "|":
            parts.append("".join(part))
            part = []
        elif char == ",":
            raise ApiError(400, "value", f"identifier names one identifier: {how}", expression=expression)
        else:
            part.append(char)
    parts.append("".join(part))
    if len(parts) != 2 or not parts[1]:
        raise ApiError(400, "value", f"identifier {text[:60]!r}: {how}", expression=expression)
    system, value = parts[0] or None, parts[1]
    try:
        check_identifier(system, value, "identifier")
    except RequestError as exc:
        raise ApiError(400, "value", str(exc), expression=expression) from None
    return Identifier(system, value)


def request_bundle(found: Sequence[dict[str, Any]], params: Sequence[tuple[str, str]], base: str) -> dict[str, Any]:
    """The searchset Bundle of the CommunicationRequests found (each as a read answers it)."""
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                           "link": [{"relation": "self", "url": f"{base}/CommunicationRequest?{urlencode(params)}"}]}
    if len(found) < MAX_REQUESTS:  # all there are: a client reads "none" from total 0, not from no entry
        out["total"] = len(found)
    if found:
        out["entry"] = [{"fullUrl": f"{base}/CommunicationRequest/{res['id']}", "resource": res,
                         "search": {"mode": "match"}} for res in found]
    return out


def definition_url(params: Sequence[tuple[str, str]]) -> str | None:
    """The canonical URL a StructureDefinition search names (None: every one); ApiError 400 for
    another parameter."""
    seen = _grouped(params, DEFINITION_PARAMS, "StructureDefinitions are searched by", once="give it once")
    one = {name: values[0] for name, values in seen.items()}
    return one.get("url")


def bundle(found: Sequence[tuple[Record, dt.datetime]], query: PageQuery, params: Sequence[tuple[str, str]],
           base: str, *, total: int | None = None, unreadable: Sequence[Unreadable] = ()) -> dict[str, Any]:
    """The searchset Bundle of one page, with ``self`` and (when the page is full) ``next``; its
    ``total`` is ``total`` when counted, else the page's own count when it is the first and
    holds every match (``_total=none`` asks for none). A record of the page this release cannot
    read (``unreadable``) is an OperationOutcome entry (search.mode outcome) after the matches: it
    holds its place in the page, and counts as a match, as the count of matches does."""
    kept = [(k, v) for k, v in params if k != "_cursor"]
    links = [{"relation": "self", "url": f"{base}/Communication" + (f"?{urlencode(params)}" if params else "")}]
    read = len(found) + len(unreadable)
    if read == query.limit and read:
        recorded, last_id = max([*((r.recorded, r.id) for r, _ in found), *((u.recorded, u.id) for u in unreadable)],
                                key=lambda k: (k[0] or dt.datetime.min.replace(tzinfo=dt.UTC), k[1]))
        cursor = cursor_token(recorded, last_id)
        links.append({"relation": "next", "url": f"{base}/Communication?{urlencode([*kept, ('_cursor', cursor)])}"})
    entries = [{"fullUrl": f"{base}/Communication/{record.id}", "resource": resource(record, updated),
                "search": {"mode": "match"}} for record, updated in found]
    entries += [unreadable_entry(u.id, u.reason, newer=u.newer) for u in unreadable]
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if total is None and query.after is None and read < query.limit and ("_total", "none") not in params:
        total = read
    if total is not None:
        out["total"] = total
    if entries:
        out["entry"] = entries
    return out


def total_bundle(total: int, params: Sequence[tuple[str, str]], base: str) -> dict[str, Any]:
    """The searchset Bundle of a count-only search (``_summary=count``, ``_count=0``): its total, no entry."""
    return {"resourceType": "Bundle", "type": "searchset", "total": total,
            "link": [{"relation": "self", "url": f"{base}/Communication?{urlencode(params)}"}]}


def resource(record: Record, updated: dt.datetime) -> dict[str, Any]:
    """The Communication for a record, with its version (events so far) and when it last changed."""
    res = communication(record)
    return {"resourceType": "Communication", "id": record.id,
            "meta": {"versionId": str(max(record.version, 1)), "lastUpdated": fhir_datetime(updated)},
            **{k: v for k, v in res.items() if k not in ("resourceType", "id")}}


def cursor_token(recorded: dt.datetime | None, record_id: str) -> str:
    text = json.dumps([(recorded or dt.datetime.min.replace(tzinfo=dt.UTC)).isoformat(), record_id])
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _cursor(token: str) -> tuple[dt.datetime, str]:
    # Storage compares times in UTC: a time no zone can move there (the year 0) is no cursor of ours,
    # and neither is JSON nested past Python's recursion limit.
    try:
        recorded, record_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        when = dt.datetime.fromisoformat(recorded)
        if when.tzinfo is None or not isinstance(record_id, str) or len(record_id) > 200:
            raise ValueError
        return when.astimezone(dt.UTC), record_id
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError, RecursionError):
        raise ApiError(400, "invalid", "_cursor is not one this server made: follow the next link as it is",
                       expression="_cursor") from None


def _list(value: str | None, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    parts = tuple(v.strip() for v in value.split(","))
    if not all(parts) or len(parts) > MAX_VALUES:
        raise ApiError(400, "invalid", f"{name}: 1 to {MAX_VALUES} values separated by commas, none empty",
                       expression=name)
    return parts


def _patient(value: str, name: str) -> str:
    ident = value[len("Patient/"):] if value.startswith("Patient/") else value
    if not _ID.fullmatch(ident):
        raise ApiError(400, "value", f"{name} must be Patient/<id> or an id (letters, digits, '-', '.')",
                       expression=name)
    return f"Patient/{ident}"


def _category(value: str) -> str:
    system, bar, code = value.rpartition("|")
    if bar and system not in ("", CATEGORY_SYSTEM):
        raise ApiError(400, "value", f"category system must be {CATEGORY_SYSTEM}", expression="category")
    if code not in {c.value for c in Category}:
        raise ApiError(400, "value", f"category {code[:40]!r} is unknown; one of: {', '.join(c.value for c in Category)}",
                       expression="category")
    return code


def _based_on(value: str) -> str:
    ident = value[len("CommunicationRequest/"):] if value.startswith("CommunicationRequest/") else value
    if not _ID.fullmatch(ident):
        raise ApiError(400, "value", "based-on must be CommunicationRequest/<id> (the request id)",
                       expression="based-on")
    return ident


def _count(value: str | None, default: int) -> int:
    if value is None:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", value):
        raise ApiError(400, "value", "_count must be a whole number (0 for the number of matches alone)",
                       expression="_count")
    return min(int(value), 1000)


def _updated(value: str) -> list[tuple[str, dt.datetime]]:
    prefix = value[:2] if value[:2] in PREFIXES else ""
    text = value[len(prefix):]
    try:
        if _DATE.fullmatch(text):
            low = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
            high = low + dt.timedelta(days=1)
        else:
            low = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if low.tzinfo is None:
                raise ValueError
            high = low + dt.timedelta(seconds=1)
        low, high = low.astimezone(dt.UTC), high.astimezone(dt.UTC)  # as storage compares them
    except OverflowError:
        raise ApiError(400, "value", f"_lastUpdated {value[:60]!r} is past the calendar's end in UTC: give a time "
                       "between the years 0002 and 9998", expression="_lastUpdated") from None
    except ValueError:
        # A '+' left as it is in a query string arrives as a space: '...T10:00:00 00:00'.
        plus = (" (a '+' in a URL reads as a space: write the zone's '+' as %2B)"
                if re.search(r"T[0-9:.]+ [0-9]{2}:?[0-9]{2}$", text) else "")
        raise ApiError(400, "value", f"_lastUpdated {value[:60]!r}: a prefix (ge, gt, le, lt, eq) and a date "
                       f"(2026-11-23) or a date-time with a zone (2026-11-23T10:00:00-05:00){plus}",
                       expression="_lastUpdated") from None
    op = PREFIXES[prefix]
    if op == "eq":
        return [(">=", low), ("<", high)]
    return [{">=": (">=", low), ">": (">=", high), "<=": ("<", high), "<": ("<", low)}[op]]
