"""Dates, times and amounts in the patient's locale and time zone, as Jinja filters (Babel).

CLDR puts narrow no-break spaces in times ("10:30 a.m.") and amounts ("85,00 $"); they are not
GSM-7 and would turn a whole SMS into UCS-2, so every filter returns plain spaces.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError, dates, numbers
from emrcomm import RenderError
from jinja2 import pass_context
from jinja2.runtime import Context

# Canadian clinics: Canadian English and Quebec French.
LOCALES = {"en": "en_CA", "fr": "fr_CA"}
# How a date and a time join in running text: "Monday, November 23, 2026 at 10:30 a.m.".
CONNECTORS = {"en": " at ", "fr": " à "}
STANDARD = frozenset({"short", "medium", "long", "full"})
_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})
FORMATTER = "_emrcomm_format"  # the context key the filters read the Formatter from


def locale_for(language: str) -> Locale:
    """The Babel locale of a template language: en_CA, fr_CA, else the bare language."""
    for tag in (LOCALES.get(language), f"{language}_CA", language):
        if tag is None:
            continue
        try:
            return Locale.parse(tag)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en_CA")


@functools.lru_cache(maxsize=256)
def zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise RenderError(f"the patient's time zone {name!r} is not an IANA time zone "
                          "(expected a name such as 'America/Toronto'); correct it in the directory") from None


class Formatter:
    """Formatting for one render: a locale, a time zone and a default currency."""

    __slots__ = ("connector", "currency", "locale", "tz")

    def __init__(self, locale: Locale, tz: dt.tzinfo, currency: str, connector: str) -> None:
        self.locale = locale
        self.tz = tz
        self.currency = currency
        self.connector = connector

    def _local(self, value: Any) -> dt.datetime:
        if not isinstance(value, dt.datetime) or value.utcoffset() is None:
            raise TypeError(f"expected a date-time with a time zone, got {type(value).__name__}")
        return value.astimezone(self.tz)

    def date(self, value: Any, format: str = "long") -> str:
        """``short``/``medium``/``long``/``full`` or a CLDR pattern such as ``EEEE d MMMM``."""
        if isinstance(value, dt.datetime):
            value = self._local(value).date()
        elif not isinstance(value, dt.date):
            raise TypeError(f"the date filter needs a date, got {type(value).__name__}")
        return dates.format_date(value, format, locale=self.locale).translate(_SPACES)

    def time(self, value: Any, format: str = "short") -> str:
        local = self._local(value)
        return dates.format_time(local, format, locale=self.locale).translate(_SPACES)

    def datetime(self, value: Any, date_format: str = "full", time_format: str = "short") -> str:
        return self.date(value, date_format) + self.connector + self.time(value, time_format)

    def money(self, value: Any, currency: str | None = None) -> str:
        amount = value if isinstance(value, Decimal | int) else Decimal(str(value))
        text = numbers.format_currency(amount, currency or self.currency, locale=self.locale)
        return text.translate(_SPACES)

    def number(self, value: Any) -> str:
        return numbers.format_decimal(value, locale=self.locale).translate(_SPACES)


def _formatter(ctx: Context) -> Formatter:
    fmt: Formatter = ctx[FORMATTER]
    return fmt


@pass_context
def date_filter(ctx: Context, value: Any, format: str = "long") -> str:
    return _formatter(ctx).date(value, format)


@pass_context
def time_filter(ctx: Context, value: Any, format: str = "short") -> str:
    return _formatter(ctx).time(value, format)


@pass_context
def datetime_filter(ctx: Context, value: Any, date_format: str = "full", time_format: str = "short") -> str:
    return _formatter(ctx).datetime(value, date_format, time_format)


@pass_context
def money_filter(ctx: Context, value: Any, currency: str | None = None) -> str:
    return _formatter(ctx).money(value, currency)


@pass_context
def number_filter(ctx: Context, value: Any) -> str:
    return _formatter(ctx).number(value)


FILTERS = {
    "date": date_filter,
    "time": time_filter,
    "datetime": datetime_filter,
    "money": money_filter,
    "number": number_filter,
}
