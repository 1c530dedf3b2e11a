"""Checking a request's variables against a template's declaration, before anything renders.

Values arrive from Python callers and from JSON (FHIR), so a datetime may be an ISO 8601 string
and an amount a decimal string; everything else about a value must match its declared type.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from emrcomm import RenderError
from emrcomm_templates.catalog import Declaration

_EXAMPLE = "2026-11-23T10:30:00-05:00"


class _WrongType(Exception):
    """A value does not fit its type; ``bind`` turns it into a RenderError naming the variable."""


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _WrongType(f"an aware datetime or an ISO 8601 date-time such as {_EXAMPLE}; "
                             "got a string that is not one") from None
    if not isinstance(value, dt.datetime):
        raise _WrongType(f"an aware datetime or an ISO 8601 date-time such as {_EXAMPLE}; "
                         f"got {type(value).__name__}")
    if value.utcoffset() is None:
        raise _WrongType(f"a date-time with a time zone; {value:%Y-%m-%dT%H:%M} has none, so the patient's "
                         f"local time would be a guess (give an offset, e.g. {_EXAMPLE})")
    return value


def _date(value: Any) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _WrongType("a date or an ISO 8601 date such as 2026-11-23; got a string that is not one") from None
        return _datetime(moment)  # a date-time is taken in the patient's zone: it needs one
    if isinstance(value, dt.datetime):
        return _datetime(value)  # aware: the filters take the date in the patient's zone
    if isinstance(value, dt.date):
        return value
    raise _WrongType(f"a date or an ISO 8601 date such as 2026-11-23; got {type(value).__name__}")


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _WrongType(f"a string; got {type(value).__name__}")
    return value


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise _WrongType(f"{what}; got {type(value).__name__}")
    try:
        number = Decimal(str(value).strip()) if isinstance(value, str | float) else Decimal(value)
    except InvalidOperation:
        raise _WrongType(f"{what}; got a string that is not a number") from None
    if not number.is_finite():
        raise _WrongType(f"{what}; got {value!r}")
    return number


def _money(value: Any) -> Decimal:
    return _decimal(value, "an amount (a number or a decimal string such as \"85.00\")")


def _number(value: Any) -> int | Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise _WrongType(f"a number; got {value!r}")
    return _decimal(value, "a number")


CHECKS: Mapping[str, Callable[[Any], Any]] = {
    "datetime": _datetime,
    "date": _date,
    "string": _string,
    "money": _money,
    "number": _number,
}


def bind(
    template: str,
    declaration: Declaration,
    given: Mapping[str, Any],
    *,
    appointment: dt.datetime | None = None,
    link: str | None = None,
) -> dict[str, Any]:
    """The template's variables, checked and converted; optional ones not given are None.

    ``appointment`` (the request's field) fills a declared ``appointment`` variable that was
    not given; ``link`` is the default for the implicit ``link`` variable.
    """
    types = declaration.types
    for key in given:
        if key not in types and key != "link":
            takes = ", ".join(sorted(types)) or "no variables"
            close = difflib.get_close_matches(key, [*types, "link"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RenderError(
                f"template {template!r} does not declare variable {key!r}{hint}; it takes: {takes}"
            )
    values: dict[str, Any] = {"link": link}
    for key, kind in types.items():
        value = given.get(key)
        if value is None and key == "appointment":
            value = appointment
        if value is None:
            if key in declaration.required:
                raise RenderError(
                    f"template {template!r} needs variable {key!r} ({kind}); add it to the request's variables"
                )
            values[key] = None if key != "link" else link
            continue
        try:
            values[key] = CHECKS[kind](value)
        except _WrongType as exc:
            raise RenderError(f"template {template!r}: variable {key!r} must be {exc}") from None
    if "link" in given and "link" not in types:
        try:
            values["link"] = _string(given["link"])
        except _WrongType as exc:
            raise RenderError(f"template {template!r}: variable 'link' must be {exc}") from None
    return values
