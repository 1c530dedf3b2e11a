"""Case- and accent-folded text with a map back to the original, so matches report original spans.

Folding: NFKD with combining marks removed, case-folded, œ/æ spelled out, curly apostrophes made
straight, hyphens and dashes read as spaces, and every run of spaces read as one space (a line
break stays a line break).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from attrs import frozen

_SPACE_LIKE = frozenset("-‐‑‒–—―\u00a0\u2007\u202f")
_APOSTROPHES = frozenset("’‘ʼ`´")
_LIGATURES = {"œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l"}


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    if ch in "\n\r\v\f\u2028\u2029\x85":
        return "\n"  # kept apart from spaces: a line break ends a sentence for context rules
    if ch in _SPACE_LIKE or ch.isspace():
        return " "
    if ch in _APOSTROPHES:
        return "'"
    lowered = ch.casefold()
    out = []
    for c in unicodedata.normalize("NFKD", lowered):
        if unicodedata.combining(c):
            continue
        out.append(_LIGATURES.get(c, c))
    return "".join(out)


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
        table = {c: _fold_char(c) for c in set(original)}
        if all(len(f) == 1 for f in table.values()):  # nearly every text: one char folds to one
            text = "".join([table[c] for c in original])
            if "  " not in text:
                return cls(original, text, range(len(original)))
        chars: list[str] = []
        index: list[int] = []
        for i, ch in enumerate(original):
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
