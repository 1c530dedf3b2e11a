"""SMS segment counting as carriers bill it (3GPP TS 23.038 GSM-7 default alphabet, else UCS-2).

National language shift tables (Turkish, Spanish, Portuguese, Indian scripts) are not used:
North American carriers do not apply them, so a character outside the default alphabet means UCS-2.
:func:`to_gsm7` writes a text in GSM-7 where a phone shows the same words: the SMS form of a message.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# 3GPP TS 23.038 section 6.2.1, the default alphabet (0x1B, the escape to the extension table,
# is not a character a sender can write, so it is left out).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Section 6.2.1.1, the extension table: each costs two septets (escape + code).
GSM7_EXTENSION = frozenset("\f^{}\\[]~|€")
_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

# Typography GSM-7 lacks, and what a phone shows instead.
_FOLD = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"',
                       "\u2013": "-", "\u2014": "-", "\u2011": "-", "\u00a0": " ", "\u202f": " ",
                       "\u0153": "oe", "\u0152": "OE"})
# A trade or service mark (™, ℠), which NFKD spells "TM", "SM" glued to the brand before it: a
# phone would show "OzempicTM", a word the content checks do not know. Read as the content
# checks read it (emrcomm_content.folding): a space before a word, else nothing.
_MARKS = re.compile("[\u2122\u2120](\\w?)")

GSM7_SINGLE = 160
GSM7_PART = 153  # 7 septets go to the concatenation header (UDH)
UCS2_SINGLE = 70
UCS2_PART = 67


def _pack(costs: list[int], single: int, part: int) -> int:
    """Segments needed for units of the given costs, never splitting one unit across two segments."""
    if sum(costs) <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > part:
            segments += 1
            used = 0
        used += cost
    return segments


def count_segments(text: str) -> tuple[str, int]:
    """The encoding (``"GSM-7"`` or ``"UCS-2"``) and the number of segments ``text`` is sent as.

    An empty text still costs one segment. In GSM-7 an extension character (``^{}\\[]~|€`` and
    form feed) needs its escape and code in the same segment; in UCS-2 characters outside the
    Basic Multilingual Plane (most emoji) are two UTF-16 code units that must stay together.
    """
    if _GSM7_ALL.issuperset(text):
        if len(text) + sum(text.count(ch) for ch in GSM7_EXTENSION) <= GSM7_SINGLE:
            return "GSM-7", 1  # most texts: one segment, known without packing
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return "GSM-7", _pack(costs, GSM7_SINGLE, GSM7_PART)
    if len(text) <= UCS2_SINGLE // 2:  # even all astral, it fits
        return "UCS-2", 1
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return "UCS-2", _pack(costs, UCS2_SINGLE, UCS2_PART)


@functools.lru_cache(maxsize=4096)
def _bare(ch: str) -> str:
    """``ch`` without its accents, when that is GSM-7; else ``ch`` as it is."""
    bare = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return bare if bare and _GSM7_ALL.issuperset(bare) else ch


def to_gsm7(text: str) -> str:
    """``text`` in the GSM-7 alphabet where a phone shows the same words: accents GSM-7 lacks
    dropped (ô, î, ê, û, ç become o, i, e, u, c; é, è, à, É, Ç are GSM-7 and stay), typographic
    quotes and dashes made plain, œ spelled oe, a ™ or ℠ dropped (a space before a word: never
    glued to the brand as "TM"). A character with no GSM-7 form (an emoji, a
    letter of another script) stays, and the text goes as UCS-2 as before. One character outside
    GSM-7 sends a whole SMS as UCS-2, 70 characters a segment instead of 160."""
    text = text.translate(_FOLD)
    if "\u2122" in text or "\u2120" in text:
        text = _MARKS.sub(lambda m: f" {m.group(1)}" if m.group(1) else "", text)
    if _GSM7_ALL.issuperset(text):
        return text
    return "".join([c if c in _GSM7_ALL else _bare(c) for c in text])
