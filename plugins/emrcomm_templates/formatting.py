"""Dates, times and amounts in the patient's locale and time zone, as Jinja filters (Babel).

CLDR puts narrow no-break spaces in times ("10:30 a.m.") and amounts ("85,00 $"); every filter
returns plain spaces. A time of day on another clock than the clinic's names its zone ("6:00 a.m.
Vancouver time", « 6 h (heure de Bogotá) »). Words are spelled in full: an SMS is written in
GSM-7 as it leaves (emrcomm.forms), not here, so email and the portal keep their accents.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
import zoneinfo
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError, dates, numbers
from jinja2 import pass_context
from jinja2.runtime import Context

from emrcomm import RenderError
from emrcomm.segments import to_gsm7

# Canadian clinics: Canadian English and Quebec French.
LOCALES = {"en": "en_CA", "fr": "fr_CA"}
# How a date and a time join in running text: "Monday, November 23, 2026 at 10:30 a.m.".
CONNECTORS = {"en": " at ", "fr": " à "}
STANDARD = frozenset({"short", "medium", "long", "full"})
# Quebec usage (OQLF) writes 9 h and 7 h 30, where CLDR's fr_CA gives 09 h 00 and 07 h 30.
SHORT_TIMES = {"fr": ("H 'h' mm", "H 'h'")}
_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})
# A time on another clock than the clinic's, and the city that names it: "6:00 a.m. Vancouver time",
# « 6 h (heure de Vancouver) » (the parentheses keep it apart from a place that follows). Other
# languages get CLDR's own region format in parentheses.
ZONE_WORDS = {"en": " {city} time", "fr": " (heure {of}{city})"}
# Where CLDR's city would mislead. Quebec's zone is America/Toronto, a city a patient in Montréal
# does not read as theirs; CLDR's English writes St. John's as "Saint John’s", which reads as
# New Brunswick's Saint John.
CITIES_BY_REGION = {("America/Toronto", "CA-QC"): "Montréal"}
CITIES = {("America/St_Johns", "en"): "St. John's"}
# French elides « de » before a vowel or a mute h (« heure d'Edmonton », « heure d'Halifax »).
_ELIDED = frozenset("aeiouhAEIOUH")
# Pattern fields that write a zone (%(zzzz)s): a template that asks for one gets no second.
_ZONE_FIELD = re.compile(r"%\(([zZvVOXx])\1*\)s")
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
    """Formatting for one render: a locale, a time zone and a default currency.

    ``clinic_tz``: the clinic's zone. A time whose clock there reads otherwise than in ``tz``
    is followed by ``tz``'s name (``place``, the patient's region, picks the city where CLDR's
    would mislead); None names no zone."""

    __slots__ = ("clinic_tz", "connector", "currency", "language", "locale", "place", "short_times", "tz")

    def __init__(self, language: str, locale: Locale, tz: dt.tzinfo, currency: str,
                 clinic_tz: dt.tzinfo | None = None, place: str | None = None) -> None:
        self.language = language
        self.locale = locale
        self.tz = tz
        self.currency = currency
        self.clinic_tz = clinic_tz
        self.place = place
        self.connector = CONNECTORS.get(language, ", ")
        self.short_times = SHORT_TIMES.get(language)

    def _local(self, value: Any) -> dt.datetime:
        if not isinstance(value, dt.datetime) or value.utcoffset() is None:
            raise TypeError(f"expected a date-time with a time zone, got {type(value).__name__}")
        # Through UTC: astimezone() returns a time already in ``tz`` as it is, and a clock time
        # the spring-forward skips (02:30 in Toronto on 2027-03-14) would be written as given,
        # not as the instant it stands for (03:30 on the clocks there).
        return value.astimezone(dt.UTC).astimezone(self.tz)

    def date(self, value: Any, format: str = "long") -> str:
        """``short``/``medium``/``long``/``full`` or a CLDR pattern such as ``EEEE d MMMM``."""
        if isinstance(value, dt.datetime):
            value = self._local(value).date()
        elif not isinstance(value, dt.date):
            raise TypeError(f"the date filter needs a date, got {type(value).__name__}")
        return _format_date(value, format, self.locale)

    def time(self, value: Any, format: str = "short") -> str:
        """``short``/``medium``/``long``/``full`` or a CLDR pattern such as ``HH:mm``."""
        local = self._local(value)
        if format == "short" and self.short_times is not None:
            format = self.short_times[0] if local.minute else self.short_times[1]
        return _format_time(local, format, self.locale) + self._zone_words(local, format)

    def _zone_words(self, local: dt.datetime, format: str) -> str:
        """The zone's name when the clinic's clock reads another time at that moment: the same
        offset (the clinic's own zone, another name for it, Phoenix beside Denver in winter)
        writes the same time, and needs none."""
        if self.clinic_tz is None or self.clinic_tz is self.tz:
            return ""
        if local.utcoffset() == local.astimezone(self.clinic_tz).utcoffset():
            return ""
        if _writes_a_zone(_pattern("time", format, self.locale)):
            return ""
        return zone_words(str(self.tz), self.language, self.locale, self.place)

    def datetime(self, value: Any, date_format: str = "full", time_format: str = "short") -> str:
        return self.date(value, date_format) + self.connector + self.time(value, time_format)

    def money(self, value: Any, currency: str | None = None) -> str:
        amount = value if isinstance(value, Decimal | int) else Decimal(str(value))
        text = numbers.format_currency(amount, currency or self.currency, locale=self.locale)
        return text.translate(_SPACES)

    def number(self, value: Any) -> str:
        return numbers.format_decimal(value, locale=self.locale).translate(_SPACES)


@functools.lru_cache(maxsize=256)
def _pattern(kind: str, format: str, locale: Locale) -> dates.DateTimePattern:
    """A parsed CLDR pattern: the locale's standard one, or the template's own."""
    if format in STANDARD:
        table = locale.date_formats if kind == "date" else locale.time_formats
        pattern: dates.DateTimePattern = table[format]
        return pattern
    return dates.parse_pattern(format)


@functools.lru_cache(maxsize=256)
def _first_day(pattern: dates.DateTimePattern) -> dates.DateTimePattern:
    """French writes the first of a month 1er beside the month's name (« le 1er mars »), where
    CLDR writes 1; a date written in figures (2026-03-01, 01/03) keeps its figure."""
    if not any(f"%({field}" in pattern.format for field in ("MMM", "LLL")):
        return pattern
    return dates.DateTimePattern(pattern.pattern, pattern.format.replace("%(d)s", "%(d)ser"))


# A day's reminders share a handful of dates and time slots, and Babel is most of a render's
# cost: remember the words. Keys never hold aware datetimes, which compare equal across zones.
@functools.lru_cache(maxsize=4096)
def _format_date(value: dt.date, format: str, locale: Locale) -> str:
    pattern = _pattern("date", format, locale)
    if value.day == 1 and locale.language == "fr":
        pattern = _first_day(pattern)
    return pattern.apply(value, locale).translate(_SPACES)


_TIMES: dict[tuple[Any, ...], str] = {}


def _format_time(local: dt.datetime, format: str, locale: Locale) -> str:
    # The same clock time and offset in the same zone reads the same on any day.
    key = (local.time(), local.utcoffset(), local.tzinfo, format, locale)
    text = _TIMES.get(key)
    if text is None:
        if len(_TIMES) >= 4096:
            _TIMES.clear()
        text = _TIMES[key] = _pattern("time", format, locale).apply(local, locale).translate(_SPACES)
    return text


@functools.lru_cache(maxsize=256)
def _writes_a_zone(pattern: dates.DateTimePattern) -> bool:
    return _ZONE_FIELD.search(pattern.format) is not None


@functools.lru_cache(maxsize=256)
def zone_words(key: str, language: str, locale: Locale, place: str | None = None) -> str:
    """How a time names zone ``key`` in ``language``, leading space included, with CLDR's
    exemplar city as it writes it (Açores, Bogotá: an SMS spells it in GSM-7 as it leaves)."""
    city = CITIES_BY_REGION.get((key, place or "")) or CITIES.get((key, language)) \
        or dates.get_timezone_location(key, locale=locale, return_city=True)
    words = ZONE_WORDS.get(language)
    if words is None:  # a clinic's own language: CLDR's "hora de Vancouver", set apart
        region = locale.zone_formats["region"] % city
        return f" {region}" if "(" in region else f" ({region})"
    # By the bare letter: « heure d'île de Pâques », « d'Érevan ».
    return words.format(city=city, of="d'" if unicodedata.normalize("NFKD", city[:1])[:1] in _ELIDED else "de ")


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


@functools.lru_cache(maxsize=64)
def gsm7_filter(value: Any) -> str:
    """The text in the GSM-7 alphabet where it can be (:func:`emrcomm.segments.to_gsm7`). Every
    SMS is written so as it leaves; the filter is for a template author who wants a part of a
    message spelled so on every channel."""
    return to_gsm7(str(value))


FILTERS = {
    "date": date_filter,
    "time": time_filter,
    "datetime": datetime_filter,
    "money": money_filter,
    "number": number_filter,
    "gsm7": gsm7_filter,
}
