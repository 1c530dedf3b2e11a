"""The bounds on what enters emrcomm: request and body sizes, JSON depth, text lengths, ids,
characters. ``[limits]`` in the config may change them (docs/security.md lists each one).

Every check raises RequestError naming the field, what was found and the limit, before anything
is sent or filed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import field, frozen

from emrcomm.errors import RequestError
from emrcomm.model import Identifier, Request

# FHIR's id: letters, digits, '-' and '.', 1 to 64 of them (R4 datatypes: id).
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
MAX_ID = 64
# An identifier's system and its value, each: what an EMR's own ids need, and short enough that
# both fit in one entry of the requests' index on PostgreSQL (at most ~2,700 bytes).
MAX_IDENTIFIER = 256
# The identifiers one request may carry (an EMR sends one or a few: its order, appointment or
# visit numbers). Each is kept with the request and indexed, so the count is bounded.
MAX_IDENTIFIERS = 10
# The times a request may carry (check_time).
EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
LATEST = dt.datetime.max.replace(tzinfo=dt.UTC) - dt.timedelta(days=1)
# Control characters no channel can carry (tab, line feed and carriage return are text), and
# lone surrogates, which cannot be written as UTF-8.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@frozen
class Limits:
    """``[limits]``: each a number, each with a default a clinic rarely needs to change."""

    request_bytes: int = 1_048_576  # one request document (a file, a JSON line, a Host.send str)
    json_depth: int = 32  # nesting of a request document (a CommunicationRequest needs about 8)
    text_chars: int = 50_000  # the text of one request, and each of its string variables
    attachment_bytes: int = 20_971_520  # all of one request's attachments together
    http_body_bytes: int = 65_536  # one HTTP request body to `emrcomm serve`
    http_batch_bytes: int = 8_388_608  # one FHIR API batch body (a batch Bundle, NDJSON) to `emrcomm serve`
    # The longest text each channel takes; a longer one is refused on that channel (TEXT_TOO_LONG)
    # and the next candidate is tried. SMS is bounded by its segments (SMS_TOO_LONG).
    channel_text_chars: Mapping[str, int] = field(factory=lambda: {"email": 20_000, "portal": 50_000})

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> Limits:
        """From the ``[limits]`` table (already checked against the config schema)."""
        values = {k: v for k, v in raw.items() if k != "channel_text_chars"}
        channels = {**cls().channel_text_chars, **raw.get("channel_text_chars", {})}
        return cls(**values, channel_text_chars=channels)


DEFAULT = Limits()


def loads_json(text: str | bytes, *, what: str, limits: Limits = DEFAULT) -> Any:
    """``json.loads`` with the size and depth limits; RequestError for what it cannot read."""
    if len(text) > limits.request_bytes:
        raise RequestError(f"{what} is {len(text):,} bytes; the most a request may be is "
                           f"{limits.request_bytes:,} ([limits] request_bytes)")
    if isinstance(text, bytes):
        try:
            # A byte order mark in front (what .NET and PHP clients write) is not JSON, but RFC 8259
            # 8.1 lets a parser ignore it.
            text = text.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise RequestError(f"{what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise RequestError(f"{what} is nested too deeply (more than {limits.json_depth} levels)") from None
    except ValueError:  # after JSONDecodeError, its subclass: Python's limit on the digits of an int
        raise RequestError(f"{what} holds a number of more than {sys.get_int_max_str_digits():,} digits; no "
                           "FHIR field takes one: remove it, or send it as a string") from None
    check_depth(data, what=what, limits=limits)
    return data


def check_depth(data: Any, *, what: str, limits: Limits = DEFAULT) -> None:
    """RequestError when ``data`` nests objects and arrays deeper than ``limits.json_depth``."""
    level: list[Any] = [data]
    depth = 0
    while level:
        depth += 1
        if depth > limits.json_depth:
            raise RequestError(f"{what} is nested too deeply (more than {limits.json_depth} levels; "
                               "[limits] json_depth)")
        level = [child for item in level if isinstance(item, (dict, list))
                 for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, (dict, list))]


def check_time(value: dt.datetime, where: str) -> None:
    """A time a request carries: storage keeps it in UTC and a message shows it in the patient's
    zone, so it must be a day away from either end of Python's calendar (the years 1 and 9999),
    which a zone can move it past (9999-12-31T23:59:59-05:00 is in the year 10000 in UTC)."""
    try:
        utc = value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise RequestError(f"{where}: {value.isoformat()} cannot be written in UTC and shown in every time zone; "
                           "give a time between the years 0002 and 9998")


def check_text(value: str, where: str, limits: Limits = DEFAULT) -> None:
    """A text a patient would read: not longer than ``text_chars``, no control characters."""
    if len(value) > limits.text_chars:
        raise RequestError(f"{where} is {len(value):,} characters; the most a request may carry is "
                           f"{limits.text_chars:,} ([limits] text_chars): send long documents as an attachment")
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        raise RequestError(f"{where} contains the control character U+{ord(bad.group()):04X} at position "
                           f"{bad.start()}; no channel can carry it: remove it")


def check_id(value: str, where: str) -> None:
    """A request id: 1 to 64 characters (FHIR's limit), no control characters."""
    if not value.strip():
        raise RequestError(f"{where} is empty")
    if len(value) > MAX_ID:
        raise RequestError(f"{where} is {len(value)} characters; FHIR ids are at most {MAX_ID}")
    bad = _CONTROLS.search(value)  # an id is one line: no tab, no line break either
    if bad is not None:
        raise RequestError(f"{where} contains the control character U+{ord(bad.group()):04X}")


def check_identifier(system: str | None, value: str, where: str) -> None:
    """An identifier's system and value: 1 to ``MAX_IDENTIFIER`` characters each, one line."""
    for part, text in (("system", system), ("value", value)):
        if text is None:
            continue
        if not text:
            raise RequestError(f"{where}: its {part} is empty")
        if len(text) > MAX_IDENTIFIER:
            raise RequestError(f"{where}: its {part} is {len(text):,} characters; the most is {MAX_IDENTIFIER}")
        bad = _CONTROLS.search(text)
        if bad is not None:
            raise RequestError(f"{where}: its {part} contains the control character U+{ord(bad.group()):04X}")


def check_identifiers(identifiers: Sequence[Identifier]) -> None:
    """A request's identifiers: at most ``MAX_IDENTIFIERS``, each within :func:`check_identifier`."""
    if len(identifiers) > MAX_IDENTIFIERS:
        raise RequestError(f"the request has {len(identifiers)} identifiers; the most one request may carry is "
                           f"{MAX_IDENTIFIERS} (emrcomm.limits.MAX_IDENTIFIERS): send the EMR's own ids for it, "
                           "not every id it relates to")
    for n, identifier in enumerate(identifiers):
        check_identifier(identifier.system, identifier.value, f"the request's identifier[{n}]")


def check_patient_option(value: str, command: str) -> None:
    """A command's ``--patient``: a FHIR reference, ``Patient/<id>`` (a bare id finds nothing)."""
    if not value.startswith("Patient/") or len(value) <= len("Patient/"):
        raise RequestError(f"{command}: --patient {value[:40]!r}: give it as Patient/<id>")


def check_request(request: Request, limits: Limits = DEFAULT) -> None:
    """A request from any door (FHIR or the Python API) within the limits: its id, its text,
    its string variables, its times, its attachments."""
    check_id(request.id, "request id")
    if request.other_identifiers and request.identifier is None:
        raise RequestError("the request has other_identifiers but no identifier: give the first as identifier")
    check_identifiers(request.identifiers)
    if request.text is not None:
        check_text(request.text, "the request's text", limits)
    if request.subject is not None:
        check_text(request.subject, "the request's subject", limits)
        brk = _LINE_BREAK.search(request.subject)
        if brk is not None:  # an email's Subject is one header line
            raise RequestError(f"the request's subject contains a line break (U+{ord(brk.group()):04X}) at position "
                               f"{brk.start()}; a subject is one line: remove it")
    if request.sender_name is not None:
        check_text(request.sender_name, "the sender's name", limits)
    for name, value in request.variables.items():
        if isinstance(value, str):
            check_text(value, f"variable {name!r}", limits)
        elif isinstance(value, dt.datetime):
            check_time(value, f"variable {name!r}")
    for where, when in (("not_before", request.not_before), ("expires", request.expires),
                        ("appointment", request.appointment)):
        if when is not None:
            if when.utcoffset() is None:
                # Whose 15:00? The clinic's, the patient's and the server's zones differ.
                raise RequestError(f"{where}: {when.isoformat()} has no time zone; give an aware datetime "
                                   "(e.g. tzinfo=ZoneInfo('America/Toronto'))")
            check_time(when, where)
    size = sum(len(a.data) for a in request.attachments)
    if size > limits.attachment_bytes:
        raise RequestError(f"the request's attachments add up to {size:,} bytes; the most is "
                           f"{limits.attachment_bytes:,} ([limits] attachment_bytes)")


def escape_controls(value: str) -> str:
    """``value`` with line breaks and other control characters shown as escapes: one log line
    stays one line, whatever a client put in a URL or a field."""
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)


_LINE_BREAK = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")  # where str.splitlines splits
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
