"""Case- and accent-folded text with a map back to the original, so matches report original spans.

Folding: NFKD with combining marks removed, case-folded, œ/æ spelled out, curly apostrophes made
straight, hyphens and dashes read as spaces, and every run of white space read as one space.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from attrs import frozen

_SPACE_LIKE = frozenset("-‐‑‒–—―\u00a0\u2007\u202f")
_APOSTROPHES = frozenset("’‘ʼ`´")
_LIGATURES = {"œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l"}


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
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


def fold_text(text: str) -> str:
    """The folded form of ``text`` (for lexicon terms and allow-list phrases)."""
    return Folded.of(text).text


@frozen
class Folded:
    """``text`` is the folded string; ``index[i]`` is the original position of folded char ``i``."""

    original: str
    text: str
    index: tuple[int, ...]

    @classmethod
    def of(cls, original: str) -> Folded:
        chars: list[str] = []
        index: list[int] = []
        for i, ch in enumerate(original):
            if ch.isascii() and ch.isalnum():  # the common case, without a cache look-up
                chars.append(ch.lower())
                index.append(i)
                continue
            folded = _fold_char(ch)
            if folded == " " and chars and chars[-1] == " ":
                continue
            for c in folded:
                chars.append(c)
                index.append(i)
        return cls(original, "".join(chars), tuple(index))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the folded span ``[start, end)``."""
        return self.index[start], self.index[end - 1] + 1

    def folded_span(self, start: int, end: int) -> tuple[int, int]:
        """The folded span that covers the original span ``[start, end)`` (for allow-listing)."""
        lo = next((j for j, i in enumerate(self.index) if i >= start), len(self.index))
        hi = next((j for j, i in enumerate(self.index) if i >= end), len(self.index))
        return lo, hi
