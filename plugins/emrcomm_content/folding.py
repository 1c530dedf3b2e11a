"""Case- and accent-folded text with a map back to the original, so matches report original spans.

Folding: invisible characters dropped (zero-width spaces and joiners, soft hyphens, direction
marks, variation selectors: "H\u200bIV" reads "hiv"), Cyrillic and Greek letters that look like
Latin ones, small capitals, parenthesised and regional-indicator letters read as those ("НІV" with
a Cyrillic Н and І, "ʜɪᴠ", "⒣⒤⒱", "🇭🇮🇻" read "hiv"; two regional indicators in a row are a flag,
left as written),
NFKD with combining marks removed (full-width "ＨＩＶ", superscript "ᴴᴵⱽ", bold "𝐇𝐈𝐕" read "hiv"),
case-folded after NFKD too, œ/æ spelled out, curly apostrophes made straight, hyphens and dashes
read as spaces, a trade or service mark (™, ℠, and "ᵀᴹ", "ˢᴹ" in superscript letters after a word)
read as a space (NFKD spells it "TM", glued to the brand before it: "Ozempic™" read "ozempictm"),
and every run of spaces read as one space (a line break stays a line break).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from attrs import frozen

_SPACE_LIKE = frozenset("-‐‑‒–—―\u00a0\u2007\u202f\u2122\u2120")  # and ™ ℠, which NFKD spells "TM", "SM"
_APOSTROPHES = frozenset("’‘ʼ`´")
_LIGATURES = {"œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l"}
# Characters that show nothing but are not spaces (besides every format character, Unicode
# category Cf, and every non-spacing mark): Hangul fillers and the blank Braille pattern.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Cyrillic and Greek letters drawn as a Latin letter in common fonts, in both cases: a text that
# spells "НIV" or "biоpsy" with one of them reads as a person reads it. The map is applied before
# case-folding (a Cyrillic Н is an H, its lower case н is not an h) and to the written form that
# exact-case terms compare (:func:`plain`). Greek μ is left alone (µg, a dose unit).
_LOOK_ALIKES = str.maketrans(
    "АВЕЅІЈКМНОРСТХУԚԜаеоԁһіјӏѕрсхуԛԝ"  # Cyrillic
    "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧοικνρυ",  # Greek
    "ABESIJKMHOPCTXYQWaeodhijlspcxyqw"
    "ABEZHIKMNOPTYXoikvpu",
)
# Small capitals, which NFKD leaves as they are ("Oᴢempic", "ʜɪᴠ"), read as capitals (Unicode has
# none for x): in an exact-case abbreviation they are capitals to whoever reads them. And the
# negative circled and squared capitals ("🅗🅘🅥"), which NFKD leaves too (it reads "Ⓗ" and "🄷").
_LOOK_ALIKES.update(str.maketrans("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘꞯʀꜱᴛᴜᴠᴡʏᴢ", "ABCDEFGHIJKLMNOPQRSTUVWYZ"))
_LOOK_ALIKES.update({0x1F150 + i: 65 + i for i in range(26)})
_LOOK_ALIKES.update({0x1F170 + i: 65 + i for i in range(26)})
# Parenthesised small letters ("⒣⒤⒱"), which NFKD spells with their parentheses ("(h)(i)(v)").
_LOOK_ALIKES.update({0x249C + i: 97 + i for i in range(26)})
# Regional-indicator letters ("🇭🇮🇻", "🇭 🇮 🇻") read as capitals, which NFKD leaves as they are;
# but two in a row draw a flag ("🇨🇦", "🇲🇸" is no MS), and a run of two is left as written.
_REGIONAL = re.compile("[\U0001F1E6-\U0001F1FF]+")
_ENCLOSED = {c: _LOOK_ALIKES[c] for c in
             [*range(0x249C, 0x249C + 26), *range(0x1F150, 0x1F150 + 26), *range(0x1F170, 0x1F170 + 26)]}
_ENCLOSED.update({0x24B6 + i: 65 + i for i in range(26)})  # circled letters, which NFKD reads
_ENCLOSED.update({0x24D0 + i: 97 + i for i in range(26)})
_ENCLOSED.update({0x1F130 + i: 65 + i for i in range(26)})  # squared letters, which NFKD reads
_ENCLOSED_QUICK = re.compile("[\u249c-\u24e9\U0001f130-\U0001f189\U0001f1e6-\U0001f1ff]")
# A mark written in superscript letters glued after a word ("Ozempicᵀᴹ", "Careˢᴹ"): read as ™ is,
# a space. Not inside a run of superscript letters ("ᴴᴵⱽᵀᴹ" is no brand), so not after or before one.
_SUPERSCRIPT_MARK = re.compile("[\u1d40\u1d57\u02e2][\u1d39\u1d50]")


def _regional_letters(text: str) -> str:
    """``text`` with each regional-indicator letter read as a capital, except in a run of two (a flag)."""
    return _REGIONAL.sub(
        lambda m: m.group() if len(m.group()) == 2 else "".join(chr(ord(c) - 0x1F1E6 + 65) for c in m.group()), text)


def letters_of(text: str) -> str:
    """``text`` with its enclosed letters that NFKD leaves or spells with signs (parenthesised,
    regional-indicator, negative circled and squared) read as Latin letters, one character for one:
    squeeze.py reads "⒣ ⒤ ⒱" as it reads "h i v"."""
    if text.isascii() or not _ENCLOSED_QUICK.search(text):
        return text
    if _REGIONAL.search(text):
        text = _regional_letters(text)
    return text.translate(_ENCLOSED)


def _invisible(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category == "Cf" or category == "Mn" or ch in _INVISIBLE


def plain(text: str) -> str:
    """``text`` without its invisible characters and with its look-alike letters read as Latin,
    case and accents kept: the written form that an exact-case term ("HIV", "ITS") is compared
    with."""
    if text.isascii():
        return text
    if _REGIONAL.search(text):
        text = _regional_letters(text)
    return "".join(c for c in text.translate(_LOOK_ALIKES) if not _invisible(c))


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    if ch in "\n\r\v\f\u2028\u2029\x85":
        return "\n"  # kept apart from spaces: a line break ends a sentence for context rules
    if ch in _SPACE_LIKE or ch.isspace():
        return " "
    if ch in _APOSTROPHES:
        return "'"
    if _invisible(ch):
        return ""  # "H\u200bIV" is "HIV" to whoever reads it
    lowered = ch.translate(_LOOK_ALIKES).casefold()
    out = []
    for c in unicodedata.normalize("NFKD", lowered):
        if unicodedata.combining(c):
            continue
        c = c.casefold()  # NFKD spells a superscript or bold capital as a capital: "ᴴ", "𝐇" are "H"
        out.append(_LIGATURES.get(c, c))
    return "".join(out)


def _marks_as_spaces(text: str) -> str:
    """``text`` with each superscript mark after a word ("ᵀᴹ", "ˢᴹ") written as two spaces."""
    marks = [m.start() for m in _SUPERSCRIPT_MARK.finditer(text)
             if m.start() > 0 and text[m.start() - 1].isalpha() and not _modifier(text[m.start() - 1])
             and not (m.end() < len(text) and _modifier(text[m.end()]))]
    for at in reversed(marks):
        text = text[:at] + "  " + text[at + 2 :]
    return text


def _modifier(ch: str) -> bool:
    return unicodedata.category(ch) == "Lm"


_ASCII_FOLD = {i: _fold_char(chr(i)) for i in range(128)}
_SPACES = re.compile(" {2,}")


def fold_text(text: str) -> str:
    """The folded form of ``text`` (for lexicon terms and allow-list phrases)."""
    if text.isascii():  # the same result as Folded.of, without the index (terms are mostly ASCII)
        folded = text.translate(_ASCII_FOLD)
        return _SPACES.sub(" ", folded) if "  " in folded else folded
    return Folded.of(text).text


@frozen
class Folded:
    """``text`` is the folded string; ``index[i]`` is the original position of folded char ``i``."""

    original: str
    text: str
    index: Sequence[int]

    @classmethod
    def of(cls, original: str) -> Folded:
        if original.isascii():  # every ASCII character folds to one (_ASCII_FOLD): no table to build
            text = original.translate(_ASCII_FOLD)
            if "  " not in text:
                return cls(original, text, range(len(original)))
        source = _marks_as_spaces(original) if _SUPERSCRIPT_MARK.search(original) else original
        if _REGIONAL.search(source):
            source = _regional_letters(source)
        table = {c: _fold_char(c) for c in set(source)}
        if all(len(f) == 1 for f in table.values()):  # nearly every text: one char folds to one
            text = "".join([table[c] for c in source])
            if "  " not in text:
                return cls(original, text, range(len(original)))
        chars: list[str] = []
        index: list[int] = []
        for i, ch in enumerate(source):
            folded = table[ch]
            if folded == " " and chars and chars[-1] == " ":
                continue
            for c in folded:
                chars.append(c)
                index.append(i)
        return cls(original, "".join(chars), tuple(index))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the folded span ``[start, end)``."""
        return self.index[start], self.index[end - 1] + 1
