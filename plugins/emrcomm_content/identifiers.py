"""Health identifiers: Ontario health numbers, Quebec RAMQ numbers, US SSNs, dates of birth, MRNs.

Each finder yields ``(span, kind)`` with the span in the original text. Numbers are checked
(Luhn, date fields, SSA rules) so that ordinary numbers rarely look like identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from emrcomm_content.folding import Folded

ONTARIO = "Ontario health number"
RAMQ = "Quebec health insurance number"
SSN = "US social security number"
DOB = "date of birth"
MRN = "medical record number"

# 10 digits, optionally 4-3-3 with one kind of separator, optionally a 2-letter version code.
# (Each pattern matches its first character before the look-behind: the scan then jumps from
# candidate to candidate instead of testing the look-behind at every position.)
_ONTARIO = re.compile(r"(\d(?<![\w+]\d)\d{3})([ -]?)(\d{3})\2(\d{3})(?:[ -]?[A-Z]{2})?(?!\w)")
# 4 letters (3 of the family name, 1 of the given name), then YYMMDD (+50 to the month for
# women) and 2 administrative digits: "TREM 8503 1512", in whatever case it was typed.
_RAMQ = re.compile(r"[A-Z](?<!\w[A-Z])[A-Z]{3}[ -]?(\d{2})(\d{2})[ -]?(\d{2})\d{2}(?!\w)", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_SSN = re.compile(r"(\d(?<![\w-]\d)\d{2})-(\d{2})-(\d{4})(?![\w-])")

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
    "|janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre"
    "|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec|janv|fevr|avr|juil"
)
# On folded text: lower case, no accents, hyphens read as spaces ("1985-03-15" is "1985 03 15").
_DOB = re.compile(
    r"(?:\bd\.? ?o\.? ?b\b\.?|\bdate of birth\b|\bbirth ?date\b|\bborn(?: on)?\b|\bnee? le\b"
    r"|\bdate de naissance\b|\bddn\b)"
    r"[ \t]*(?:[:=]|\bis\b|\bwas\b|\best\b)?[ \t]*"
    r"(?:\d{4}[ /.]\d{1,2}[ /.]\d{1,2}"
    r"|\d{1,2}[ /.]\d{1,2}[ /.]\d{2,4}"
    rf"|(?:\d{{1,2}}(?:er|st|nd|rd|th)?[ \t]+)?(?:{_MONTHS})\.?[ \t]+(?:\d{{1,2}}(?:st|nd|rd|th)?,?[ \t]+)?\d{{4}})"
    r"(?!\w)"
)

# Substrings every birth label contains: a cheap test before the full pattern.
_DOB_HINTS = ("dob", "d.o.b", "d o b", "d. o. b", "birth", "born", "ne le", "nee le", "naissance", "ddn")


def luhn_valid(digits: str) -> bool:
    """The Luhn mod-10 check over a string of digits (the last one is the check digit)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def ontario_numbers(text: str, exclude: Iterable[str] = ()) -> Iterator[tuple[int, int]]:
    """Spans of 10-digit numbers whose 10th digit is the Luhn check of the first nine.

    ``exclude`` holds digit strings known not to be health numbers (the clinic's phone number).
    """
    excluded = set(exclude)
    for m in _ONTARIO.finditer(text):
        digits = m.group(1) + m.group(3) + m.group(4)
        if digits not in excluded and luhn_valid(digits):
            yield m.span()


def ramq_numbers(text: str) -> Iterator[tuple[int, int]]:
    for m in _RAMQ.finditer(text):
        month, day = int(m.group(2)), int(m.group(3))
        if (1 <= month <= 12 or 51 <= month <= 62) and 1 <= day <= 31:
            yield m.span()


def ssns(text: str) -> Iterator[tuple[int, int]]:
    for m in _SSN.finditer(text):
        area, group, serial = m.groups()
        if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
            continue
        yield m.span()


def dates_of_birth(folded: Folded) -> Iterator[tuple[int, int]]:
    """A date written right after a birth-date label (DOB, date of birth, né le, date de naissance)."""
    if not any(hint in folded.text for hint in _DOB_HINTS):
        return
    for m in _DOB.finditer(folded.text):
        yield folded.span(*m.span())


def custom(text: str, patterns: Iterable[re.Pattern[str]]) -> Iterator[tuple[int, int]]:
    for pattern in patterns:
        for m in pattern.finditer(text):
            if m.end() > m.start():
                yield m.span()


def find_identifiers(
    text: str, folded: Folded, mrn_patterns: Iterable[re.Pattern[str]] = (), exclude: Iterable[str] = ()
) -> list[tuple[tuple[int, int], str]]:
    """Every identifier in ``text`` as ``(span, kind)``, in text order."""
    found = [(s, MRN) for s in custom(text, mrn_patterns)]
    if not _DIGIT.search(text):
        return found
    found += [(s, ONTARIO) for s in ontario_numbers(text, exclude)]
    found += [(s, RAMQ) for s in ramq_numbers(text)]
    found += [(s, SSN) for s in ssns(text)]
    found += [(s, DOB) for s in dates_of_birth(folded)]
    return sorted(found)
